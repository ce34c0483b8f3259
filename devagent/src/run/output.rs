//! The run's live output: whole lines on stdout, stamped with the UTC time of day.

use std::io::Write;
use std::time::SystemTime;

use crate::timefmt;

/// Prints whole lines to stdout; a closed stdout is ignored (the run still completes).
pub(super) fn say(line: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{line}").and_then(|()| lock.flush());
}

pub(super) fn now_hms() -> String {
    timefmt::hms_millis_utc(SystemTime::now())
}
