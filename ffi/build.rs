//! Gives the shared library an soname, so installs can ship `libkepmlog.so.0` with the usual
//! symlinks and programs keep loading it across compatible (additive) releases.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkepmlog.so.{major}");
    }
}
