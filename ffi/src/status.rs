//! Statuses, the thread-local error text, and the guard every export runs in.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use kepmlog_core::{Error, ErrorKind};

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
    pub(crate) const ALL: [kepmlog_status; 17] = [
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

    pub(crate) fn name(self) -> &'static CStr {
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

/// A failed call: the status and the text for `kepmlog_last_error`.
pub(crate) struct Failure {
    pub(crate) status: kepmlog_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: kepmlog_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn null(what: &str) -> Failure {
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
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> kepmlog_status {
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
