//! Records as text lines on stderr: the last resort when KeeperLogger cannot have them (no
//! job id with `fallback = stderr`, or still undelivered when shutdown's deadline passed).
//! The agent captures a task's stderr as its output, so an operator can still read them.
//!
//! The layout is the operator's view that `kepm-devagent run` prints, with the full UTC date:
//! `2026-12-02T01:23:45.678Z Info     SecretScanner [SecretsScan] message (Context=...)`.
//! Fields come sanitized (`record.rs`: no CR or LF), so a record is always exactly one line.

use std::io::Write;
use std::time::SystemTime;

use time::OffsetDateTime;

use serde::Deserialize;

use crate::item::Kind;
use crate::level::Level;
use crate::record::{MetaData, MetaRef};

/// At most this many undelivered records are written at shutdown; the rest are counted.
pub(crate) const MAX_UNDELIVERED_LINES: usize = 1000;

/// `2026-01-31T12:34:56.789Z`: milliseconds, as the operator's view shows them (the `time`
/// crate's Rfc3339 writes every nanosecond digit).
pub(crate) fn rfc3339_utc(t: SystemTime) -> String {
    let d = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    )
}

/// One record as a line, newline included. `log_level` is the wire value (`MetaData.LogLevel`).
pub(crate) fn record_line(
    at: SystemTime,
    log_level: u8,
    source: &str,
    category: &str,
    message: &str,
    correlation_id: &str,
    context: &str,
) -> String {
    let level = Level::from_wire(i64::from(log_level)).map_or("?", Level::name);
    let mut line = format!(
        "{} {level:<8} {source} [{category}] {message}",
        rfc3339_utc(at)
    );
    match (correlation_id.is_empty(), context.is_empty()) {
        (true, true) => {}
        (false, true) => line.push_str(&format!(" (CorrelationId={correlation_id})")),
        (true, false) => line.push_str(&format!(" (Context={context})")),
        (false, false) => line.push_str(&format!(
            " (CorrelationId={correlation_id}, Context={context})"
        )),
    }
    line.push('\n');
    line
}

/// One event (compact JSON, so without raw newlines) as a line, newline included.
pub(crate) fn event_line(at: SystemTime, source: &str, json: &str) -> String {
    format!("{} EVENT    {source} {json}\n", rfc3339_utc(at))
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "MetaData")]
    meta: MetaData,
}

/// The line of a queued payload (the exact bytes that would have been published).
pub(crate) fn payload_line(at: SystemTime, kind: Kind, source: &str, payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    if kind == Kind::Event {
        return event_line(at, source, &text);
    }
    match serde_json::from_slice::<Wire>(payload) {
        Ok(Wire { meta: m }) => record_line(
            at,
            m.log_level,
            &m.source,
            &m.category,
            &m.message,
            &m.correlation_id,
            &m.context,
        ),
        // Payloads are built by record.rs and always parse; should one not, show it raw.
        Err(_) => format!(
            "{} ?        {source} {}\n",
            rfc3339_utc(at),
            text.trim_end()
        ),
    }
}

/// One line of kepmlog's own diagnostics on stderr (when they are on).
pub(crate) fn diag(on: bool, msg: &str) {
    if on {
        eprintln!("kepmlog: {msg}");
    }
}

/// Writes one line with one `write_all` on the locked stderr, so lines from several threads
/// never interleave. A closed or full stderr is not the tool's problem: ignored.
pub(crate) fn write_line(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Writes the undelivered records of one logger at shutdown, in the order they were logged:
/// the first [`MAX_UNDELIVERED_LINES`], then one line counting the rest. `total` is how many
/// were not delivered (at least `lines.len()`). Returns how many records were written.
pub(crate) fn write_undelivered(lines: &[String], total: u64) -> u64 {
    let shown = lines.len().min(MAX_UNDELIVERED_LINES);
    let more = total.saturating_sub(shown as u64);
    let mut err = std::io::stderr().lock();
    for line in &lines[..shown] {
        let _ = err.write_all(line.as_bytes());
    }
    if more > 0 {
        let _ = err.write_all(
            format!("kepmlog: ... and {more} more record(s) were not delivered\n").as_bytes(),
        );
    }
    shown as u64
}

/// A record built on the log path as one stderr line, newline included.
pub(crate) fn meta_ref_line(meta: &MetaRef<'_>, at: SystemTime) -> String {
    record_line(
        at,
        meta.log_level,
        &meta.source,
        &meta.category,
        &meta.message,
        &meta.correlation_id,
        &meta.context,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_timestamps() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_174_625_678);
        assert_eq!(rfc3339_utc(t), "2026-12-02T01:23:45.678Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn lines_read_like_the_operator_view() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_174_625_678);
        assert_eq!(
            record_line(t, 1, "SecretScanner", "SecretsScan", "done", "", ""),
            "2026-12-02T01:23:45.678Z Info     SecretScanner [SecretsScan] done\n"
        );
        assert_eq!(
            record_line(t, 4, "T", "C", "boom", "c-1", "ctx"),
            "2026-12-02T01:23:45.678Z Critical T [C] boom (CorrelationId=c-1, Context=ctx)\n"
        );
        assert_eq!(
            event_line(t, "T", r#"{"a":1}"#),
            "2026-12-02T01:23:45.678Z EVENT    T {\"a\":1}\n"
        );
    }

    #[test]
    fn payloads_become_their_line() {
        let t = UNIX_EPOCH;
        let meta =
            crate::record::build_metadata(Level::Warning, "S", "Cat", "two\nlines", "", "k=v")
                .unwrap();
        let line = payload_line(t, Kind::Log, "S", &crate::record::encode(&meta));
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z Warning  S [Cat] two lines (Context=k=v)\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }
}
