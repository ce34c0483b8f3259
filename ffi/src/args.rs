//! Arguments from C: strings, levels, argv.

use std::ffi::{c_char, c_int, CStr};

use kepmlog_core::Level;

use crate::status::kepmlog_status::*;
use crate::status::Failure;

/// A required string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes.to_str().map_err(|e| {
        Failure::new(
            KEPMLOG_ERR_INVALID_UTF8,
            format!(
                "{what} is not valid UTF-8 (bad byte at offset {}): pass UTF-8 text",
                e.valid_up_to()
            ),
        )
    })
}

/// An optional string argument: NULL means "".
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        Ok("")
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(p, what) }
    }
}

pub(crate) fn level_arg(level: c_int) -> Result<Level, Failure> {
    Level::try_from(i64::from(level)).map_err(Failure::from)
}

/// # Safety
/// `argv` is NULL or points to `argc` pointers, each NULL or a NUL-terminated string.
pub(crate) unsafe fn args_arg(
    argc: c_int,
    argv: *const *const c_char,
) -> Result<Option<Vec<String>>, Failure> {
    if argc < 0 {
        return Err(Failure::new(
            KEPMLOG_ERR_INVALID_ARGUMENT,
            format!("argc is {argc}: pass the argc of main (0 or more)"),
        ));
    }
    if argc == 0 {
        return Ok(None);
    }
    if argv.is_null() {
        return Err(Failure::null("argv (with argc > 0)"));
    }
    let mut args = Vec::with_capacity(argc as usize);
    for i in 0..argc as usize {
        // SAFETY: argv has argc entries per the caller's contract.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            break; // argv[argc] is NULL in main; a shorter list ends early.
        }
        // SAFETY: non-NULL entries are NUL-terminated strings.
        let arg = unsafe { CStr::from_ptr(p) };
        // Lossy: arguments may be file paths in any encoding; only --keeper-api-base and the
        // executable name are read from them.
        args.push(arg.to_string_lossy().into_owned());
    }
    Ok(Some(args))
}
