//! C ABI of kepmlog: thin `extern "C"` wrappers over the `kepmlog` crate. All logic lives in the
//! core; this crate only converts arguments, maps errors onto [`kepmlog_status`] and keeps the
//! thread-local error text. The header `include/kepmlog.h` is generated from this file by
//! cbindgen (see `cbindgen.toml`); `cargo test -p kepmlog-ffi` fails when it is stale.
//!
//! Every export catches panics, checks every pointer for NULL and every string for UTF-8, so
//! bad input from C gives a status and a text naming the fix, never a crash.
// The exported names are C names (`kepmlog_logger`, `KEPMLOG_OK`), chosen for the header.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use kepmlog_core::{Error, Level, Logger, Options, Overflow};

/// Major version of the library this header belongs to. Compare with `kepmlog_version()`.
pub const KEPMLOG_VERSION_MAJOR: u32 = 0;
/// Minor version: new functions and enum values are only ever added.
pub const KEPMLOG_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const KEPMLOG_VERSION_PATCH: u32 = 0;

/// Outcome of every call. `KEPMLOG_OK` is 0; on anything else `kepmlog_last_error()` returns
/// a text that says what to change. New values may be added: treat unknown ones as errors.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kepmlog_status {
    /// Success.
    KEPMLOG_OK = 0,
    /// A required pointer argument (handle, string, out-parameter) was NULL.
    KEPMLOG_ERR_NULL_ARGUMENT = 1,
    /// A string was not valid UTF-8.
    KEPMLOG_ERR_INVALID_UTF8 = 2,
    /// An argument or option has a value the library cannot use (the text names it).
    KEPMLOG_ERR_INVALID_ARGUMENT = 3,
    /// `KEEPER_JOB_ID` is not set and no job id was given: declare `mqttTopics` in the job.
    KEPMLOG_ERR_MISSING_JOB_ID = 4,
    /// The job id cannot be used in an MQTT client id (e.g. it has an underscore).
    KEPMLOG_ERR_INVALID_JOB_ID = 5,
    /// The message is empty (or only white space) after sanitizing.
    KEPMLOG_ERR_EMPTY_MESSAGE = 6,
    /// The level is not one of `KEPMLOG_LEVEL_*`.
    KEPMLOG_ERR_INVALID_LEVEL = 7,
    /// An event was not one JSON object (or too large).
    KEPMLOG_ERR_INVALID_EVENT = 8,
    /// The queue was full: this record was dropped and counted in `kepmlog_logger_stats.dropped`.
    /// Not fatal: later records are accepted again once the queue drains.
    KEPMLOG_ERR_QUEUE_FULL = 9,
    /// The logger was shut down: create a new one to log again.
    KEPMLOG_ERR_SHUT_DOWN = 10,
    /// The logger was created by the parent of this forked process: create one in the child.
    KEPMLOG_ERR_FORKED = 11,
    /// Flush/shutdown reached the deadline with records still unacknowledged.
    KEPMLOG_ERR_TIMEOUT = 12,
    /// The broker refused publishes: add the topic to `mqttTopics.allowedPublications`.
    KEPMLOG_ERR_DENIED = 13,
    /// The library panicked; the call had no effect beyond what the text says. A bug: report it.
    KEPMLOG_ERR_PANIC = 14,
    /// The operating system refused something the library needs (e.g. a thread).
    KEPMLOG_ERR_INTERNAL = 15,
}

use kepmlog_status::*;

/// The six KeeperLogger levels with their wire values (`MetaData.LogLevel`). Note that
/// `KEPMLOG_LEVEL_VERBOSE` (5) is the least severe level although its number is the highest.
/// Functions take the level as `int` so that an out-of-range number is an error, not UB.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kepmlog_level {
    /// Debug (0).
    KEPMLOG_LEVEL_DEBUG = 0,
    /// Info (1).
    KEPMLOG_LEVEL_INFO = 1,
    /// Warning (2).
    KEPMLOG_LEVEL_WARNING = 2,
    /// Error (3).
    KEPMLOG_LEVEL_ERROR = 3,
    /// Critical (4).
    KEPMLOG_LEVEL_CRITICAL = 4,
    /// Verbose (5): the least severe.
    KEPMLOG_LEVEL_VERBOSE = 5,
}

/// What logging does when the queue is full (`kepmlog_options_set_overflow`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kepmlog_overflow {
    /// Drop the new record, count it, return `KEPMLOG_ERR_QUEUE_FULL` (the default; never blocks).
    KEPMLOG_OVERFLOW_DROP = 0,
    /// Wait up to the given timeout for room, then drop and count as above.
    KEPMLOG_OVERFLOW_BLOCK = 1,
}

/// Counters of one logger (`kepmlog_stats`). `accepted = delivered + denied + failed + pending`;
/// `dropped` records were never accepted. Fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct kepmlog_logger_stats {
    /// Records and events taken into the queue.
    pub accepted: u64,
    /// Acknowledged by the broker.
    pub delivered: u64,
    /// Not taken: the queue was full. Not part of `accepted`.
    pub dropped: u64,
    /// Refused by the broker (topic not in `allowedPublications`).
    pub denied: u64,
    /// Given up: still undelivered when the logger shut down.
    pub failed: u64,
    /// Accepted and not settled yet (queued or in flight).
    pub pending: u64,
    /// Successful connections after the first one.
    pub reconnects: u64,
    /// Connected to the broker right now.
    pub connected: bool,
}

/// Options for `kepmlog_logger_new`: create with `kepmlog_options_new`, set fields, free with
/// `kepmlog_options_free`. Unset fields come from the job's environment and arguments.
pub struct kepmlog_options {
    inner: Options,
}

/// A logger: opaque. Safe to use from many threads at once; free it once, with
/// `kepmlog_logger_free`, after every thread is done with it.
pub struct kepmlog_logger {
    inner: Logger,
    client_id: CString,
}

/// A failed call: the status and the text for `kepmlog_last_error`.
struct Failure {
    status: kepmlog_status,
    message: String,
}

impl Failure {
    fn new(status: kepmlog_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
    fn null(what: &str) -> Failure {
        Failure::new(
            KEPMLOG_ERR_NULL_ARGUMENT,
            format!("{what} is NULL: pass a valid pointer"),
        )
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(status_of(&e), e.to_string())
    }
}

/// Maps the core's stable error kinds onto statuses.
fn status_of(e: &Error) -> kepmlog_status {
    match e.kind() {
        "missing_job_id" => KEPMLOG_ERR_MISSING_JOB_ID,
        "invalid_job_id" => KEPMLOG_ERR_INVALID_JOB_ID,
        "invalid_token" | "invalid_option" => KEPMLOG_ERR_INVALID_ARGUMENT,
        "empty_message" => KEPMLOG_ERR_EMPTY_MESSAGE,
        "invalid_level" => KEPMLOG_ERR_INVALID_LEVEL,
        "invalid_event" => KEPMLOG_ERR_INVALID_EVENT,
        "queue_full" => KEPMLOG_ERR_QUEUE_FULL,
        "shut_down" => KEPMLOG_ERR_SHUT_DOWN,
        "forked" => KEPMLOG_ERR_FORKED,
        "timeout" => KEPMLOG_ERR_TIMEOUT,
        "denied" => KEPMLOG_ERR_DENIED,
        _ => KEPMLOG_ERR_INTERNAL,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // try_with: during thread teardown the slot may be gone; the status still says enough.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

/// Runs one export: catches panics, records the error text, returns the status.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> kepmlog_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_last_error("");
            KEPMLOG_OK
        }
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            set_last_error(&format!(
                "kepmlog panicked ({what}): this is a bug in kepmlog, please report it"
            ));
            KEPMLOG_ERR_PANIC
        }
    }
}

/// A required string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
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
unsafe fn opt_str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        Ok("")
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(p, what) }
    }
}

/// # Safety
/// `p` is NULL or a pointer returned by `kepmlog_logger_new*` and not yet freed.
unsafe fn logger_arg<'a>(p: *const kepmlog_logger) -> Result<&'a kepmlog_logger, Failure> {
    // SAFETY: NULL or a live handle per the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null("logger"))
}

/// # Safety
/// `p` is NULL or a pointer returned by `kepmlog_options_new` and not yet freed, used by one
/// thread at a time.
unsafe fn options_arg<'a>(p: *mut kepmlog_options) -> Result<&'a mut kepmlog_options, Failure> {
    // SAFETY: NULL or a live, unaliased handle per the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null("options"))
}

fn level_arg(level: c_int) -> Result<Level, Failure> {
    Level::try_from(i64::from(level)).map_err(Failure::from)
}

/// Addresses of live loggers, so that freeing a stale copy of a handle is refused instead of
/// freeing twice (as far as the address has not been reused by a newer logger).
fn live_loggers() -> &'static Mutex<HashSet<usize>> {
    static LIVE: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

/// # Safety
/// `argv` is NULL or points to `argc` pointers, each NULL or a NUL-terminated string.
unsafe fn args_arg(
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

fn make_logger(options: Options, out: *mut *mut kepmlog_logger) -> Result<(), Failure> {
    let inner = Logger::new(options)?;
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

// ---------------------------------------------------------------------------------------------
// Library

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

/// Text of the last failed call on this thread, naming the fix; `""` after a successful call.
/// Valid until the next kepmlog call on the same thread; never NULL; do not free it.
#[no_mangle]
pub extern "C" fn kepmlog_last_error() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ptr())
            .unwrap_or(c"".as_ptr())
    })
    .unwrap_or(c"".as_ptr())
}

/// Name of a status, e.g. `"KEPMLOG_ERR_QUEUE_FULL"`; `"KEPMLOG_UNKNOWN_STATUS"` for other
/// numbers. A static string, never NULL.
#[no_mangle]
pub extern "C" fn kepmlog_status_name(status: c_int) -> *const c_char {
    let name: &'static CStr = match status {
        0 => c"KEPMLOG_OK",
        1 => c"KEPMLOG_ERR_NULL_ARGUMENT",
        2 => c"KEPMLOG_ERR_INVALID_UTF8",
        3 => c"KEPMLOG_ERR_INVALID_ARGUMENT",
        4 => c"KEPMLOG_ERR_MISSING_JOB_ID",
        5 => c"KEPMLOG_ERR_INVALID_JOB_ID",
        6 => c"KEPMLOG_ERR_EMPTY_MESSAGE",
        7 => c"KEPMLOG_ERR_INVALID_LEVEL",
        8 => c"KEPMLOG_ERR_INVALID_EVENT",
        9 => c"KEPMLOG_ERR_QUEUE_FULL",
        10 => c"KEPMLOG_ERR_SHUT_DOWN",
        11 => c"KEPMLOG_ERR_FORKED",
        12 => c"KEPMLOG_ERR_TIMEOUT",
        13 => c"KEPMLOG_ERR_DENIED",
        14 => c"KEPMLOG_ERR_PANIC",
        15 => c"KEPMLOG_ERR_INTERNAL",
        _ => c"KEPMLOG_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

// ---------------------------------------------------------------------------------------------
// Options

/// Creates an options object with every field unset (job defaults). Free it with
/// `kepmlog_options_free`; `kepmlog_logger_new` does not take ownership.
///
/// # Safety
/// `out` is NULL or points to writable storage for one pointer.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_new(out: *mut *mut kepmlog_options) -> kepmlog_status {
    guard(|| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let handle = Box::into_raw(Box::new(kepmlog_options {
            inner: Options::default(),
        }));
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Frees an options object and sets `*options` to NULL, so a second call is a no-op.
/// `kepmlog_options_free(NULL)` and a pointer to NULL are no-ops too.
///
/// # Safety
/// `options` is NULL or points to NULL or to a handle from `kepmlog_options_new`.
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_free(
    options: *mut *mut kepmlog_options,
) -> kepmlog_status {
    guard(|| {
        if options.is_null() {
            return Ok(());
        }
        // SAFETY: non-NULL pointer to a handle slot per the contract.
        let handle = unsafe { std::ptr::replace(options, std::ptr::null_mut()) };
        if !handle.is_null() {
            // SAFETY: the handle came from Box::into_raw in kepmlog_options_new and the slot
            // now holds NULL, so this is the only free through it.
            drop(unsafe { Box::from_raw(handle) });
        }
        Ok(())
    })
}

/// Copies a string option into the options object.
///
/// # Safety
/// As the `kepmlog_options_set_*` string setters.
unsafe fn set_string(
    options: *mut kepmlog_options,
    value: *const c_char,
    what: &str,
    set: impl FnOnce(&mut Options, &str),
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        // SAFETY: forwarded contract.
        let v = unsafe { str_arg(value, what) }?;
        set(&mut o.inner, v);
        Ok(())
    })
}

/// `MetaData.Source`: the tool's name as shown in the operator's logs. Default: the
/// executable's name.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_source(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "source", |o, v| {
            o.source = Some(v.to_string())
        })
    }
}

/// `MetaData.Category` used when a log call passes NULL or `""`. Default `"General"`.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_default_category(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "default category", |o, v| {
            o.default_category = v.to_string()
        })
    }
}

/// The job id. Default: the `KEEPER_JOB_ID` environment variable set by the agent.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_job_id(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "job id", |o, v| {
            o.job_id = Some(v.to_string())
        })
    }
}

/// Short name of the binary in the MQTT client id. Default: the executable's file name.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_token(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "token", |o, v| {
            o.token = Some(v.to_string())
        })
    }
}

/// Agent HTTPS API base, e.g. `"https://127.0.0.1:6889"`. Default: `--keeper-api-base`
/// in the arguments, else `https://127.0.0.1:6889`.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_api_base(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "api base", |o, v| {
            o.api_base = Some(v.to_string())
        })
    }
}

/// PEM file of CAs to trust for the agent's API and broker. Without it, certificate checks
/// are skipped, and only for loopback addresses.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_ca_bundle(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "CA bundle path", |o, v| {
            o.ca_bundle = Some(v.into())
        })
    }
}

/// Topic of `kepmlog_event`. Default `Jobs/{jobId}/events`. Must be in the job's
/// `mqttTopics.allowedPublications`.
///
/// # Safety
/// `options` is a live options handle (or NULL); `value` is NULL or a NUL-terminated string.
/// The string is copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_event_topic(
    options: *mut kepmlog_options,
    value: *const c_char,
) -> kepmlog_status {
    // SAFETY: forwarded contract.
    unsafe {
        set_string(options, value, "event topic", |o, v| {
            o.event_topic = Some(v.to_string())
        })
    }
}

/// Broker address; when set, Plugin Settings discovery is skipped.
///
/// # Safety
/// `options` is a live options handle (or NULL); `host` is NULL or a NUL-terminated string.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_broker(
    options: *mut kepmlog_options,
    host: *const c_char,
    port: u16,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        // SAFETY: forwarded contract.
        let host = unsafe { str_arg(host, "broker host") }?;
        if host.trim().is_empty() || port == 0 {
            return Err(Failure::new(
                KEPMLOG_ERR_INVALID_ARGUMENT,
                format!(
                    "broker {host:?}:{port} is not a host and port: pass e.g. \"127.0.0.1\", 8675"
                ),
            ));
        }
        o.inner.broker = Some((host.to_string(), port));
        Ok(())
    })
}

/// Records the queue holds before the overflow policy applies (default 65536, at least 1).
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_queue_capacity(
    options: *mut kepmlog_options,
    capacity: usize,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        if capacity == 0 {
            return Err(Failure::new(
                KEPMLOG_ERR_INVALID_ARGUMENT,
                "queue capacity 0: pass at least 1 (default 65536)",
            ));
        }
        o.inner.queue_capacity = capacity;
        Ok(())
    })
}

/// What logging does when the queue is full: `KEPMLOG_OVERFLOW_DROP` (default) or
/// `KEPMLOG_OVERFLOW_BLOCK`, which waits up to `block_timeout_ms` for room.
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_overflow(
    options: *mut kepmlog_options,
    policy: c_int,
    block_timeout_ms: u64,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        o.inner.overflow = match policy {
            0 => Overflow::Drop,
            1 => Overflow::Block(Duration::from_millis(block_timeout_ms)),
            _ => {
                return Err(Failure::new(
                    KEPMLOG_ERR_INVALID_ARGUMENT,
                    format!("overflow policy {policy}: pass KEPMLOG_OVERFLOW_DROP or KEPMLOG_OVERFLOW_BLOCK"),
                ))
            }
        };
        Ok(())
    })
}

/// Timeout of the Plugin Settings request (default 3000 ms).
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_settings_timeout(
    options: *mut kepmlog_options,
    timeout_ms: u64,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        o.inner.settings_timeout = Duration::from_millis(timeout_ms);
        Ok(())
    })
}

/// How long `kepmlog_logger_free` of a logger that was not shut down may wait to deliver
/// what is queued (default 5000 ms).
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_drop_timeout(
    options: *mut kepmlog_options,
    timeout_ms: u64,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        o.inner.drop_timeout = Duration::from_millis(timeout_ms);
        Ok(())
    })
}

/// The process arguments to read `--keeper-api-base` and the executable name from (pass
/// main's `argc`, `argv`). Default: the process's own arguments.
///
/// # Safety
/// `options` is a live options handle (or NULL); `argv` is NULL or holds `argc` pointers to
/// NUL-terminated strings. The strings are copied.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_args(
    options: *mut kepmlog_options,
    argc: c_int,
    argv: *const *const c_char,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        // SAFETY: forwarded contract.
        o.inner.args = unsafe { args_arg(argc, argv) }?;
        Ok(())
    })
}

/// Whether the library prints its own diagnostics on stderr (`kepmlog: ...`). Default true.
///
/// # Safety
/// `options` is a live options handle (or NULL).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_options_set_stderr_diagnostics(
    options: *mut kepmlog_options,
    enabled: bool,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { options_arg(options) }?;
        o.inner.stderr_diagnostics = enabled;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Logger

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
    options: *const kepmlog_options,
    out: *mut *mut kepmlog_logger,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: NULL or a live options handle per the contract.
        let o = unsafe { options.as_ref() }.ok_or_else(|| Failure::null("options"))?;
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
    logger: *const kepmlog_logger,
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
    logger: *const kepmlog_logger,
    level: c_int,
    category: *const c_char,
    message: *const c_char,
    correlation_id: *const c_char,
    context: *const c_char,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = unsafe { logger_arg(logger) }?;
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
    logger: *const kepmlog_logger,
    json: *const c_char,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = unsafe { logger_arg(logger) }?;
        // SAFETY: forwarded contract.
        let json = unsafe { str_arg(json, "event JSON") }?;
        l.inner.event_json(json).map_err(Failure::from)
    })
}

/// Waits until every record accepted before the call is acknowledged by the broker, or
/// `timeout_ms`. `KEPMLOG_ERR_TIMEOUT`: some are still pending (they stay queued);
/// `KEPMLOG_ERR_DENIED`: the broker refused publishes since the last flush. `undelivered`
/// (may be NULL) receives the number not yet acknowledged (0 on success).
///
/// # Safety
/// `logger` is NULL or a live logger; `undelivered` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_flush(
    logger: *const kepmlog_logger,
    timeout_ms: u64,
    undelivered: *mut u64,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = unsafe { logger_arg(logger) }?;
        let result = l.inner.flush(Duration::from_millis(timeout_ms));
        let count = match &result {
            Ok(()) => 0,
            Err(Error::Timeout { undelivered, .. }) => *undelivered,
            Err(_) => l.inner.stats().pending,
        };
        // SAFETY: NULL or writable per the contract.
        if let Some(out) = unsafe { undelivered.as_mut() } {
            *out = count;
        }
        result.map_err(Failure::from)
    })
}

/// Flushes until `timeout_ms`, disconnects and stops the worker. Idempotent (later calls
/// return `KEPMLOG_OK`); logging afterwards returns `KEPMLOG_ERR_SHUT_DOWN`. Records still
/// undelivered at the deadline are given up (counted as failed): `undelivered` (may be NULL)
/// receives their number. Call it before exiting so the agent sees every record.
///
/// # Safety
/// `logger` is NULL or a live logger; `undelivered` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_shutdown(
    logger: *const kepmlog_logger,
    timeout_ms: u64,
    undelivered: *mut u64,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = unsafe { logger_arg(logger) }?;
        let result = l.inner.shutdown(Duration::from_millis(timeout_ms));
        let count = match &result {
            Err(Error::Timeout { undelivered, .. }) => *undelivered,
            _ => l.inner.stats().failed,
        };
        // SAFETY: NULL or writable per the contract.
        if let Some(out) = unsafe { undelivered.as_mut() } {
            *out = count;
        }
        result.map_err(Failure::from)
    })
}

/// Copies the logger's counters into `*out`. Works after shutdown too.
///
/// # Safety
/// `logger` is NULL or a live logger; `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn kepmlog_stats(
    logger: *const kepmlog_logger,
    out: *mut kepmlog_logger_stats,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = unsafe { logger_arg(logger) }?;
        // SAFETY: NULL or writable per the contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
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
    logger: *const kepmlog_logger,
    out: *mut *const c_char,
) -> kepmlog_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let l = unsafe { logger_arg(logger) }?;
        // SAFETY: NULL or writable per the contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = l.client_id.as_ptr();
        Ok(())
    })
}

mod stderr;
pub use stderr::*;

#[cfg(test)]
mod tests;
