//! Loggers: creating and freeing them, logging, events, flush, shutdown, statistics.
//! Split from `lib.rs` by concern; the conventions (and the helpers) are that file's.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use kepmlog_core::{Logger, Options, Outcome};

use std::ffi::CString;

use crate::args::{args_arg, level_arg, opt_str_arg, str_arg};
use crate::registry::live_loggers;
use crate::status::kepmlog_status::*;
use crate::status::{guard, kepmlog_status, Failure};
use crate::types::{kepmlog_logger, kepmlog_logger_stats, kepmlog_options};

/// Creates a logger and starts its background worker; returns at once (discovery and the
/// connection happen on the worker, records logged meanwhile are queued). `options` is not
/// consumed: free it when done. On failure `*out` is left unchanged.
///
/// # Safety
/// `options` is NULL or a live options handle; `out` is NULL or writable storage for one
/// pointer.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_logger_new(
    options: Option<&kepmlog_options>,
    out: *mut *mut kepmlog_logger,
) -> kepmlog_status {
    guard(|| {
        let o = options.ok_or_else(|| Failure::null("options"))?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        make_logger(o.inner.clone(), out)
    })
}

/// The common case in one call: a logger for a job task started by the agent. Job id from
/// `KEEPER_JOB_ID`, API base from `--keeper-api-base` in `argv`, token from the executable name.
/// `source` (NULL: the executable name) is the `MetaData.Source`; pass `argc = 0`,
/// `argv = NULL` to read the process's own arguments.
///
/// # Safety
/// `source` is NULL or a NUL-terminated string; `argv` as in `kepmlog_options_set_args`;
/// `out` is NULL or writable storage for one pointer.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_logger_new_from_args(
    source: *const c_char,
    argc: c_int,
    argv: *const *const c_char,
    out: *mut *mut kepmlog_logger,
) -> kepmlog_status {
    guard(|| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let mut options = Options::default();
        if !source.is_null() {
            // SAFETY: forwarded contract.
            options.source = Some(unsafe { str_arg(source, "source") }?.to_string());
        }
        // SAFETY: forwarded contract.
        options.args = unsafe { args_arg(argc, argv) }?;
        make_logger(options, out)
    })
}

/// Frees a logger and sets `*logger` to NULL, so a second call through the same variable is a
/// no-op; `kepmlog_logger_free(NULL)` and a pointer to NULL are no-ops too. A logger not shut
/// down first is shut down here, waiting up to its drop timeout (default 5 s) to deliver.
/// Freeing a stale copy of an already freed handle is refused with
/// `KEPMLOG_ERR_INVALID_ARGUMENT` as far as it can be detected; the handle is invalid after
/// this call. No other thread may use the logger during or after the call.
///
/// # Safety
/// `logger` is NULL or points to NULL or to a handle from `kepmlog_logger_new*`.
#[no_mangle]
pub unsafe extern "C" fn kepmlog_logger_free(logger: *mut *mut kepmlog_logger) -> kepmlog_status {
    guard(|| {
        if logger.is_null() {
            return Ok(());
        }
        // SAFETY: non-NULL pointer to a handle slot per the contract.
        let handle = unsafe { std::ptr::replace(logger, std::ptr::null_mut()) };
        if handle.is_null() {
            return Ok(());
        }
        let was_live = live_loggers()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(handle as usize));
        if !was_live {
            return Err(Failure::new(
                KEPMLOG_ERR_INVALID_ARGUMENT,
                "kepmlog_logger_free: not a live logger (already freed?): free each logger once",
            ));
        }
        // SAFETY: the handle came from Box::into_raw in make_logger and was still registered,
        // so it has not been freed; it is now unregistered, so it is freed only here.
        drop(unsafe { Box::from_raw(handle) });
        Ok(())
    })
}

/// Logs one record. Never blocks (unless `KEPMLOG_OVERFLOW_BLOCK`) and does no I/O.
/// `level` is a `KEPMLOG_LEVEL_*` value; `category` NULL or `""` uses the default category;
/// `message` must be non-empty. `KEPMLOG_ERR_QUEUE_FULL` means this record was dropped and
/// counted. Not marked must-use: the outcome of every record is also in `kepmlog_stats`.
///
/// # Safety
/// `logger` is NULL or a live logger; strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kepmlog_log(
    logger: Option<&kepmlog_logger>,
    level: c_int,
    category: *const c_char,
    message: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract (NULL correlation id and context mean "").
    unsafe {
        kepmlog_log_with(
            logger,
            level,
            category,
            message,
            std::ptr::null(),
            std::ptr::null(),
        )
    }
}

/// `kepmlog_log` with a correlation id and a context (either may be NULL or `""`).
/// Newlines in any field become spaces; over-long fields are cut with a visible marker.
///
/// # Safety
/// `logger` is NULL or a live logger; strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kepmlog_log_with(
    logger: Option<&kepmlog_logger>,
    level: c_int,
    category: *const c_char,
    message: *const c_char,
    correlation_id: *const c_char,
    context: *const c_char,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let level = level_arg(level)?;
        // SAFETY: forwarded contract.
        let (category, message, correlation_id, context) = unsafe {
            (
                opt_str_arg(category, "category")?,
                str_arg(message, "message")?,
                opt_str_arg(correlation_id, "correlation id")?,
                opt_str_arg(context, "context")?,
            )
        };
        l.inner
            .log_with(level, category, message, correlation_id, context)
            .map_err(Failure::from)
    })
}

/// Publishes a job progress event, one JSON object given as text, to the event topic (QoS 1).
///
/// # Safety
/// `logger` is NULL or a live logger; `json` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kepmlog_event(
    logger: Option<&kepmlog_logger>,
    json: *const c_char,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        // SAFETY: forwarded contract.
        let json = unsafe { str_arg(json, "event JSON") }?;
        l.inner.event_json(json).map_err(Failure::from)
    })
}

/// Waits until every record accepted before the call is acknowledged by the broker, or
/// `timeout_ms`. `undelivered` (may be NULL) receives the number not yet acknowledged (they
/// stay queued; 0 on success). The status, in this order: `KEPMLOG_ERR_DENIED` (the broker
/// refused publishes since the last flush), `KEPMLOG_ERR_UNDELIVERABLE` (records given up
/// since then), `KEPMLOG_ERR_TIMEOUT` (some still pending), else `KEPMLOG_OK`.
///
/// # Safety
/// `logger` is NULL or a live logger; `undelivered` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_flush(
    logger: Option<&kepmlog_logger>,
    timeout_ms: u64,
    undelivered: Option<&mut u64>,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let outcome = l.inner.flush_outcome(Duration::from_millis(timeout_ms))?;
        report(outcome, undelivered)
    })
}

/// Flushes until `timeout_ms`, disconnects and stops the worker. Idempotent (later calls
/// return `KEPMLOG_OK`); logging afterwards returns `KEPMLOG_ERR_SHUT_DOWN`. Records still
/// undelivered at the deadline are given up (counted as failed): `undelivered` (may be NULL)
/// receives their number. Statuses as `kepmlog_flush`. Call it before exiting so the agent
/// sees every record.
///
/// # Safety
/// `logger` is NULL or a live logger; `undelivered` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_shutdown(
    logger: Option<&kepmlog_logger>,
    timeout_ms: u64,
    undelivered: Option<&mut u64>,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let outcome = l
            .inner
            .shutdown_outcome(Duration::from_millis(timeout_ms))?;
        report(outcome, undelivered)
    })
}

/// The core's outcome as C sees it: the count in `*undelivered`, the rest as the status.
fn report(outcome: Outcome, undelivered: Option<&mut u64>) -> Result<(), Failure> {
    if let Some(out) = undelivered {
        *out = outcome.undelivered;
    }
    outcome.into_result().map_err(Failure::from)
}

/// Copies the logger's counters into `*out`. Works after shutdown too.
///
/// # Safety
/// `logger` is NULL or a live logger; `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_stats(
    logger: Option<&kepmlog_logger>,
    out: Option<&mut kepmlog_logger_stats>,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let out = out.ok_or_else(|| Failure::null("out"))?;
        let s = l.inner.stats();
        *out = kepmlog_logger_stats {
            accepted: s.accepted,
            delivered: s.delivered,
            dropped: s.dropped,
            denied: s.denied,
            failed: s.failed,
            pending: s.pending,
            reconnects: s.reconnects,
            connected: s.connected,
        };
        Ok(())
    })
}

/// The MQTT client id, `{jobId}_{token}_{pid}`: `*out` points into the logger and stays valid
/// until it is freed.
///
/// # Safety
/// `logger` is NULL or a live logger; `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_logger_client_id(
    logger: Option<&kepmlog_logger>,
    out: Option<&mut *const c_char>,
) -> kepmlog_status {
    guard(|| {
        let l = logger.ok_or_else(|| Failure::null("logger"))?;
        let out = out.ok_or_else(|| Failure::null("out"))?;
        *out = l.client_id.as_ptr();
        Ok(())
    })
}

pub(crate) fn make_logger(options: Options, out: *mut *mut kepmlog_logger) -> Result<(), Failure> {
    let inner = Logger::new(options)?;
    crate::at_exit::register_once();
    let client_id = CString::new(inner.client_id()).unwrap_or_default();
    let handle = Box::into_raw(Box::new(kepmlog_logger { inner, client_id }));
    live_loggers()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(handle as usize);
    // SAFETY: `out` was checked non-NULL by the caller of make_logger and points to writable
    // storage for one pointer.
    unsafe { *out = handle };
    Ok(())
}
