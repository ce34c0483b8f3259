//! C ABI of kepmlog: thin `extern "C"` wrappers over the `kepmlog` crate. All logic lives in the
//! core; this crate only converts arguments, maps errors onto [`kepmlog_status`] and keeps the
//! thread-local error text. The header `include/kepmlog.h` is generated from this crate by
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

use kepmlog_core::{Error, ErrorKind, Level, Logger, Options};

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
    /// Records failed for good since the last flush for another reason than the deadline
    /// (larger than the broker's Maximum Packet Size); they are not retried.
    KEPMLOG_ERR_UNDELIVERABLE = 16,
}

impl kepmlog_status {
    /// Every status, in number order (`kepmlog_status_name` and its test walk it).
    const ALL: [kepmlog_status; 17] = [
        KEPMLOG_OK,
        KEPMLOG_ERR_NULL_ARGUMENT,
        KEPMLOG_ERR_INVALID_UTF8,
        KEPMLOG_ERR_INVALID_ARGUMENT,
        KEPMLOG_ERR_MISSING_JOB_ID,
        KEPMLOG_ERR_INVALID_JOB_ID,
        KEPMLOG_ERR_EMPTY_MESSAGE,
        KEPMLOG_ERR_INVALID_LEVEL,
        KEPMLOG_ERR_INVALID_EVENT,
        KEPMLOG_ERR_QUEUE_FULL,
        KEPMLOG_ERR_SHUT_DOWN,
        KEPMLOG_ERR_FORKED,
        KEPMLOG_ERR_TIMEOUT,
        KEPMLOG_ERR_DENIED,
        KEPMLOG_ERR_PANIC,
        KEPMLOG_ERR_INTERNAL,
        KEPMLOG_ERR_UNDELIVERABLE,
    ];

    fn name(self) -> &'static CStr {
        match self {
            KEPMLOG_OK => c"KEPMLOG_OK",
            KEPMLOG_ERR_NULL_ARGUMENT => c"KEPMLOG_ERR_NULL_ARGUMENT",
            KEPMLOG_ERR_INVALID_UTF8 => c"KEPMLOG_ERR_INVALID_UTF8",
            KEPMLOG_ERR_INVALID_ARGUMENT => c"KEPMLOG_ERR_INVALID_ARGUMENT",
            KEPMLOG_ERR_MISSING_JOB_ID => c"KEPMLOG_ERR_MISSING_JOB_ID",
            KEPMLOG_ERR_INVALID_JOB_ID => c"KEPMLOG_ERR_INVALID_JOB_ID",
            KEPMLOG_ERR_EMPTY_MESSAGE => c"KEPMLOG_ERR_EMPTY_MESSAGE",
            KEPMLOG_ERR_INVALID_LEVEL => c"KEPMLOG_ERR_INVALID_LEVEL",
            KEPMLOG_ERR_INVALID_EVENT => c"KEPMLOG_ERR_INVALID_EVENT",
            KEPMLOG_ERR_QUEUE_FULL => c"KEPMLOG_ERR_QUEUE_FULL",
            KEPMLOG_ERR_SHUT_DOWN => c"KEPMLOG_ERR_SHUT_DOWN",
            KEPMLOG_ERR_FORKED => c"KEPMLOG_ERR_FORKED",
            KEPMLOG_ERR_TIMEOUT => c"KEPMLOG_ERR_TIMEOUT",
            KEPMLOG_ERR_DENIED => c"KEPMLOG_ERR_DENIED",
            KEPMLOG_ERR_PANIC => c"KEPMLOG_ERR_PANIC",
            KEPMLOG_ERR_INTERNAL => c"KEPMLOG_ERR_INTERNAL",
            KEPMLOG_ERR_UNDELIVERABLE => c"KEPMLOG_ERR_UNDELIVERABLE",
        }
    }
}

/// Exhaustive: a kind added to the core does not compile here until it has a status.
impl From<ErrorKind> for kepmlog_status {
    fn from(kind: ErrorKind) -> kepmlog_status {
        match kind {
            ErrorKind::MissingJobId => KEPMLOG_ERR_MISSING_JOB_ID,
            ErrorKind::InvalidJobId => KEPMLOG_ERR_INVALID_JOB_ID,
            ErrorKind::InvalidToken | ErrorKind::InvalidOption => KEPMLOG_ERR_INVALID_ARGUMENT,
            ErrorKind::EmptyMessage => KEPMLOG_ERR_EMPTY_MESSAGE,
            ErrorKind::InvalidLevel => KEPMLOG_ERR_INVALID_LEVEL,
            ErrorKind::InvalidEvent => KEPMLOG_ERR_INVALID_EVENT,
            ErrorKind::QueueFull => KEPMLOG_ERR_QUEUE_FULL,
            ErrorKind::ShutDown => KEPMLOG_ERR_SHUT_DOWN,
            ErrorKind::Forked => KEPMLOG_ERR_FORKED,
            ErrorKind::Timeout => KEPMLOG_ERR_TIMEOUT,
            ErrorKind::Denied => KEPMLOG_ERR_DENIED,
            ErrorKind::Undeliverable => KEPMLOG_ERR_UNDELIVERABLE,
            ErrorKind::Internal => KEPMLOG_ERR_INTERNAL,
        }
    }
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
/// `dropped` records were never accepted. Its size changes only with the major version (a
/// caller compiled against an older header passes a smaller struct): counters added in a
/// minor version get a getter of their own, as `kepmlog_logger_printed` did.
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
        Failure::new(e.kind().into(), e.to_string())
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
    let name = kepmlog_status::ALL
        .iter()
        .find(|s| **s as c_int == status)
        .map_or(c"KEPMLOG_UNKNOWN_STATUS", |s| s.name());
    name.as_ptr()
}

// The exports, by concern. cbindgen follows these in this order, so the header keeps it.
mod options;
pub use options::*;
mod logger;
pub use logger::*;
mod stderr;
pub use stderr::*;

#[cfg(test)]
mod tests;
