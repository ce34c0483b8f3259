//! C ABI of kepmlog: thin `extern "C"` wrappers over the `kepmlog` crate. All logic lives in the
//! core; this crate only converts arguments, maps errors onto [`kepmlog_status`] and keeps the
//! thread-local error text. The header `include/kepmlog.h` is generated from this crate by
//! cbindgen (see `cbindgen.toml`); `cargo test -p kepmlog-ffi` fails when it is stale.
//!
//! Every export catches panics, checks every pointer for NULL and every string for UTF-8, so
//! bad input from C gives a status and a text naming the fix, never a crash.
// The exported names are C names (`kepmlog_logger`, `KEPMLOG_OK`), chosen for the header.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, CStr};

/// Major version of the library this header belongs to. Compare with `kepmlog_version()`.
pub const KEPMLOG_VERSION_MAJOR: u32 = 0;
/// Minor version: new functions and enum values are only ever added.
pub const KEPMLOG_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const KEPMLOG_VERSION_PATCH: u32 = 0;

/// The timeout every binding uses when it shuts a logger down by itself (at exit, on close):
/// pass it to `kepmlog_shutdown` when in doubt.
/// (A literal so that cbindgen can write it; a test checks it against the core's.)
pub const KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS: u64 = 5000;

/// The library's version, e.g. `"0.1.0"`: a static string, never freed.
#[no_mangle]
pub extern "C" fn kepmlog_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

// The exports, by concern. cbindgen follows these in this order, so the header keeps it.
mod status;
pub use status::*;
mod types;
pub use types::*;
mod args;
mod options;
pub use options::*;
mod logger;
pub use logger::*;
mod stderr;
pub use stderr::*;
mod fork;
pub use fork::*;
mod spool;
pub use spool::*;
mod at_exit;
mod registry;

#[cfg(test)]
mod tests;
