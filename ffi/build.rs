//! Gives the shared library the name programs record when they link it, so installs can ship
//! `libkepmlog.so.0` (Linux) or `libkepmlog.0.dylib` (macOS) with the usual symlinks and
//! programs keep loading it across compatible (additive) releases. Windows records the DLL's
//! file name, `kepmlog.dll`, and needs nothing here.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    match os.as_str() {
        "linux" => println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkepmlog.so.{major}"),
        // @rpath: the program says where to look (-Wl,-rpath,...), not this build.
        "macos" => println!(
            "cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libkepmlog.{major}.dylib"
        ),
        _ => {}
    }
}
