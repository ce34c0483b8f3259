//! What a binding's exit hook does with the loggers still alive when the process ends: deliver
//! within one deadline, and shut down those that could not, while the process can still write
//! their records to stderr. Node's `process.on('exit')` hook and the C ABI's `atexit` handler
//! use it; Python's exit hook shuts its loggers down one by one in Python.

use std::time::{Duration, Instant};

use crate::logger::Logger;

/// Flushes every logger not shut down yet, all within `deadline`, and returns how many records
/// are still undelivered. With `shut_down_behind`, a logger still behind at the deadline is
/// shut down at once: its shutdown counts those records as failed and writes them to stderr
/// (unless `undelivered_to_stderr` is off). The others stay usable for whatever runs after
/// the hook. Never fails: denials and records given up have nobody to be reported to at exit,
/// and the core has written them on stderr as diagnostics already.
pub fn flush_at_exit<'a>(
    loggers: impl IntoIterator<Item = &'a Logger>,
    deadline: Instant,
    shut_down_behind: bool,
) -> u64 {
    let mut undelivered = 0;
    let mut behind = Vec::new();
    for logger in loggers {
        if logger.is_shut_down() {
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // A logger inherited by a forked child answers at once with an error: it has no
        // worker in this process, and nothing of its queue is this process's to deliver.
        if let Ok(outcome) = logger.flush_outcome(left) {
            if outcome.undelivered > 0 {
                undelivered += outcome.undelivered;
                behind.push(logger);
            }
        }
    }
    if shut_down_behind {
        for logger in behind {
            let _ = logger.shutdown(Duration::ZERO);
        }
    }
    undelivered
}
