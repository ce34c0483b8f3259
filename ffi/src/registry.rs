//! The live loggers of the process, by address: `kepmlog_logger_free` refuses a stale copy of
//! a handle instead of freeing twice, and the exit hook (`at_exit.rs`) finds what to flush.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Addresses of live loggers (as far as an address has not been reused by a newer logger).
pub(crate) fn live_loggers() -> &'static Mutex<HashSet<usize>> {
    static LIVE: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}
