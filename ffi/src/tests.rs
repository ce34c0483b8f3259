//! Unit tests of the boundary itself; the C behaviour is tested from C in tests/c.

use super::*;
use crate::status::kepmlog_status::*;
use crate::status::{guard, Failure};
use kepmlog_core::{Error, ErrorKind};
use std::ffi::c_int;
use std::ffi::CStr;
use std::path::Path;

fn last_error() -> String {
    // SAFETY: kepmlog_last_error never returns NULL and the text is NUL-terminated.
    unsafe { CStr::from_ptr(kepmlog_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Fails when include/kepmlog.h is not what cbindgen renders from this crate.
#[test]
fn header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/kepmlog.h");
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => panic!("cannot read ffi/cbindgen.toml: {e}"),
    };
    let bindings = match cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => panic!("cbindgen failed: {e}"),
    };
    let mut rendered = Vec::new();
    bindings.write(&mut rendered);
    // cbindgen writes the prefix before the must-use attribute. C++ wants attributes such as
    // [[nodiscard]] at the start of a declaration, before MSVC's __declspec(dllimport), so the
    // two are swapped here (GCC and Clang accept either order; MSVC documents only this one).
    let rendered = String::from_utf8_lossy(&rendered)
        .replace(
            "KEPMLOG_API KEPMLOG_MUST_USE ",
            "KEPMLOG_MUST_USE KEPMLOG_API ",
        )
        .replace(
            "KEPMLOG_API\nKEPMLOG_MUST_USE\n",
            "KEPMLOG_MUST_USE\nKEPMLOG_API\n",
        )
        .into_bytes();
    if std::env::var_os("KEPMLOG_BLESS_HEADER").is_some() {
        if let Err(e) = std::fs::write(&header, &rendered) {
            panic!("cannot write {}: {e}", header.display());
        }
        return;
    }
    let current = std::fs::read(&header).unwrap_or_default();
    assert!(
        current == rendered,
        "include/kepmlog.h is stale: run `KEPMLOG_BLESS_HEADER=1 cargo test -p kepmlog-ffi \
         header` to regenerate it, then commit it"
    );
}

#[test]
fn version_macros_match_the_package() {
    let v = format!("{KEPMLOG_VERSION_MAJOR}.{KEPMLOG_VERSION_MINOR}.{KEPMLOG_VERSION_PATCH}");
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    // SAFETY: static NUL-terminated string.
    let lib = unsafe { CStr::from_ptr(kepmlog_version()) };
    assert_eq!(lib.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
}

#[test]
fn panics_become_a_status_and_a_text() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let status = guard(|| panic!("boom"));
    std::panic::set_hook(prev);
    assert_eq!(status, KEPMLOG_ERR_PANIC);
    assert!(last_error().contains("boom"), "{}", last_error());
    assert_eq!(guard(|| Ok(())), KEPMLOG_OK);
    assert_eq!(last_error(), "");
}

#[test]
fn every_core_error_kind_has_its_status() {
    let cases = [
        (Error::MissingJobId, KEPMLOG_ERR_MISSING_JOB_ID),
        (Error::EmptyMessage, KEPMLOG_ERR_EMPTY_MESSAGE),
        (Error::InvalidLevel("9".into()), KEPMLOG_ERR_INVALID_LEVEL),
        (Error::QueueFull { capacity: 1 }, KEPMLOG_ERR_QUEUE_FULL),
        (Error::ShutDown, KEPMLOG_ERR_SHUT_DOWN),
        (
            Error::Timeout {
                undelivered: 1,
                last_error: None,
            },
            KEPMLOG_ERR_TIMEOUT,
        ),
        (
            Error::Denied {
                count: 1,
                topics: vec![],
            },
            KEPMLOG_ERR_DENIED,
        ),
        (
            Error::Undeliverable {
                count: 1,
                last_error: None,
            },
            KEPMLOG_ERR_UNDELIVERABLE,
        ),
        (Error::Internal("x".into()), KEPMLOG_ERR_INTERNAL),
    ];
    for (e, s) in cases {
        assert_eq!(Failure::from(e.clone()).status, s, "{e:?}");
    }
    // Every kind maps to a status of its own except the two option-like ones.
    let statuses: std::collections::HashSet<_> = ErrorKind::ALL
        .iter()
        .map(|k| kepmlog_status::from(*k) as i32)
        .collect();
    assert_eq!(statuses.len(), ErrorKind::ALL.len() - 1);
    for (n, status) in kepmlog_status::ALL.iter().enumerate() {
        assert_eq!(*status as usize, n, "ALL is in number order");
        // SAFETY: static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(kepmlog_status_name(n as c_int)) };
        assert_eq!(name, status.name());
        assert!(name.to_string_lossy().starts_with("KEPMLOG_ERR_") || n == 0);
    }
    // SAFETY: static NUL-terminated string.
    let unknown =
        unsafe { CStr::from_ptr(kepmlog_status_name(kepmlog_status::ALL.len() as c_int)) };
    assert_eq!(unknown, c"KEPMLOG_UNKNOWN_STATUS");
}

#[test]
fn null_and_bad_utf8_give_statuses() {
    let mut out: *mut kepmlog_logger = std::ptr::null_mut();
    // SAFETY: NULL options and a valid out pointer.
    let s = unsafe { kepmlog_logger_new(None, &mut out) };
    assert_eq!(s, KEPMLOG_ERR_NULL_ARGUMENT);
    assert!(last_error().contains("options is NULL"));
    let mut opts: *mut kepmlog_options = std::ptr::null_mut();
    // SAFETY: valid out pointer.
    assert_eq!(unsafe { kepmlog_options_new(&mut opts) }, KEPMLOG_OK);
    let bad = [0xffu8, 0xfe, 0];
    // SAFETY: live options (not aliased), NUL-terminated bytes.
    let s = unsafe { kepmlog_options_set_source(opts.as_mut(), bad.as_ptr().cast()) };
    assert_eq!(s, KEPMLOG_ERR_INVALID_UTF8);
    // SAFETY: slot holds a live handle, then NULL.
    unsafe {
        assert_eq!(kepmlog_options_free(&mut opts), KEPMLOG_OK);
        assert!(opts.is_null());
        assert_eq!(kepmlog_options_free(&mut opts), KEPMLOG_OK);
        assert_eq!(kepmlog_options_free(std::ptr::null_mut()), KEPMLOG_OK);
    }
}

#[test]
fn default_close_timeout_is_the_cores() {
    assert_eq!(
        u128::from(KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS),
        kepmlog_core::DEFAULT_CLOSE_TIMEOUT.as_millis()
    );
}
