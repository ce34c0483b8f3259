//! stderr as the last resort: the fallback without a job id, and whether records undelivered
//! at shutdown are written to stderr. Split from `lib.rs` by concern; same conventions.

use std::ffi::{c_char, c_int};

use kepmlog_core::Fallback;

use crate::args::str_arg;
use crate::status::kepmlog_status::*;
use crate::status::{guard, kepmlog_status, Failure};
use crate::types::{kepmlog_logger, kepmlog_options};

/// What creating a logger does without a job id (`kepmlog_options_set_fallback`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kepmlog_fallback {
    /// Fail with `KEPMLOG_ERR_MISSING_JOB_ID`, whose text names the fix (the default).
    KEPMLOG_FALLBACK_ERROR = 0,
    /// Create the logger anyway: one `kepmlog:` warning, then every record is one text line on
    /// stderr, which the agent captures as the task's output. No broker session at all.
    KEPMLOG_FALLBACK_STDERR = 1,
}

/// What to do when there is no job id: `KEPMLOG_FALLBACK_ERROR` or `KEPMLOG_FALLBACK_STDERR`.
/// Unset: the `KEPMLOG_FALLBACK` environment variable (`error` or `stderr`), else error.
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_fallback(
    options: Option<&mut kepmlog_options>,
    fallback: c_int,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        let chosen = match fallback {
            0 => Fallback::Error,
            1 => Fallback::Stderr,
            _ => {
                let pass = "pass KEPMLOG_FALLBACK_ERROR or KEPMLOG_FALLBACK_STDERR";
                let message = format!("fallback {fallback}: {pass}");
                return Err(Failure::new(KEPMLOG_ERR_INVALID_ARGUMENT, message));
            }
        };
        o.inner.fallback = Some(chosen);
        Ok(())
    })
}

/// `kepmlog_options_set_fallback` by name: `"error"` or `"stderr"` (case-insensitive), for
/// bindings and tools that take the choice as text (a config file, Go's `Options.Fallback`),
/// so that every one of them accepts the same names with the same error text.
///
/// # Safety
/// `options` is a live options handle (or NULL); `name` is NULL or a NUL-terminated string.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_fallback_name(
    options: Option<&mut kepmlog_options>,
    name: *const c_char,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        // SAFETY: forwarded contract.
        let name = unsafe { str_arg(name, "fallback name") }?;
        o.inner.fallback = Some(Fallback::parse(name)?);
        Ok(())
    })
}

/// Whether shutdown (and free) writes the records still undelivered at its deadline to stderr
/// as text lines (the first 1,000, then a count of the rest). Default true.
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_undelivered_to_stderr(
    options: Option<&mut kepmlog_options>,
    enabled: bool,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        o.inner.undelivered_to_stderr = enabled;
        Ok(())
    })
}

/// `*out`: records written to stderr as text lines. With `KEPMLOG_FALLBACK_STDERR` and no job
/// id, every record (none of them is then `accepted`); otherwise the undelivered records
/// written at shutdown (also counted in `failed`). `*writes_to_stderr` (may be NULL): whether
/// this logger writes its records to stderr instead of publishing them.
///
/// # Safety
/// `logger` is NULL or a live logger; `out` is NULL or writable; `writes_to_stderr` is NULL
/// or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_logger_printed(
    logger: Option<&kepmlog_logger>,
    out: Option<&mut u64>,
    writes_to_stderr: Option<&mut bool>,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let out = out.ok_or_else(|| Failure::null("out"))?;
        *out = l.inner.stats().printed;
        if let Some(w) = writes_to_stderr {
            *w = l.inner.writes_to_stderr();
        }
        Ok(())
    })
}
