//! The run's live output: whole lines on stdout, stamped with the UTC time of day, or, in a
//! process whose stdout is something else's (`serve`'s JSON lines), handed to its sink.

use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::timefmt;

/// Where every run's lines go instead of stdout.
pub type OutputSink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: OnceLock<OutputSink> = OnceLock::new();

/// Sends the live output of every run in this process to `sink` (once per process: the
/// stdout it replaces is the process's). False when a sink was already set.
pub fn set_output_sink(sink: OutputSink) -> bool {
    SINK.set(sink).is_ok()
}

/// Prints whole lines to stdout; a closed stdout is ignored (the run still completes).
pub(super) fn say(line: &str) {
    if let Some(sink) = SINK.get() {
        sink(line);
        return;
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{line}").and_then(|()| lock.flush());
}

pub(super) fn now_hms() -> String {
    timefmt::hms_millis_utc(SystemTime::now())
}
