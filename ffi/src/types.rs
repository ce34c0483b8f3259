//! The C types other than statuses: levels, overflow policies, statistics, the two handles.

use std::ffi::CString;

use kepmlog_core::{Logger, Options};

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
    pub(crate) inner: Options,
}

/// A logger: opaque. Safe to use from many threads at once; free it once, with
/// `kepmlog_logger_free`, after every thread is done with it.
pub struct kepmlog_logger {
    pub(crate) inner: Logger,
    pub(crate) client_id: CString,
}
