//! The crash-safe spool: where it lives, and its two counters. Separate functions rather than
//! new fields of `kepmlog_logger_stats`, whose size programs built against an older header
//! have fixed. Split from `lib.rs` by concern; same conventions.

use std::ffi::c_char;

use crate::options::set_string;
use crate::status::{guard, kepmlog_status, Failure};
use crate::types::{kepmlog_logger, kepmlog_options};

/// The crash-safe spool: every accepted record is also written to a file under this directory
/// (one subdirectory per job) before the log call returns, and what a killed run, or one whose
/// broker never came up, did not deliver is sent by the job's next run, before its own records
/// and with the records' original Ids. Unset: the `KEPMLOG_SPOOL_DIR` environment variable,
/// else no spool. The directory must belong to this user and be writable by nobody else; it is
/// created (0700) when missing, and `kepmlog_logger_new` fails with
/// `KEPMLOG_ERR_INVALID_ARGUMENT`, naming the fix, when it is not private.
///
/// # Safety
/// `options` is a live options handle (or NULL); `path` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_spool_dir(
    options: Option<&mut kepmlog_options>,
    path: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, path, "spool directory", |o, v| {
            o.spool_dir = Some(v.into())
        })
    }
}

/// The spool's counters: `*recovered`, records an earlier run of the job left that this logger
/// sent first (part of `accepted`); `*spool_dropped`, records the spool's cap removed from disk
/// before they were delivered (still sent while the process lives; a crash would lose them).
/// Either pointer may be NULL. Both 0 without a spool.
///
/// # Safety
/// `logger` is NULL or a live logger; `recovered` and `spool_dropped` are NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_logger_spool_counts(
    logger: Option<&kepmlog_logger>,
    recovered: Option<&mut u64>,
    spool_dropped: Option<&mut u64>,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let s = l.inner.stats();
        if let Some(out) = recovered {
            *out = s.recovered;
        }
        if let Some(out) = spool_dropped {
            *out = s.spool_dropped;
        }
        Ok(())
    })
}
