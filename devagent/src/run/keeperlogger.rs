//! A stand-in for the agent's KeeperLogger: what it does with the records a job publishes.
//!
//! The vendor documents a minimum level (`system.logging.level`, default Warning: records
//! below it are not written), a log file `KeeperLogger.log` (rotated daily or by size), and
//! a flush to disk every 5 seconds. Where the file lives on an endpoint and the layout of
//! its lines are not documented: kepmlog assumes `{agent root}/Logs/KeeperLogger.log` and the
//! line format of [`KeeperLogger::line`]. Rotation and retention are not modelled.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::Received;
use crate::error::Error;
use crate::lint::LOG_TOPIC;
use crate::timefmt;

/// How often KeeperLogger writes what it holds to disk (documented: every 5 s).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// KeeperLogger's levels in order of severity (the wire's LogLevel numbers are not in that
/// order: Verbose is 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Verbose,
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// The documented default of `system.logging.level`.
    pub const DEFAULT_MINIMUM: Level = Level::Warning;

    pub fn name(self) -> &'static str {
        match self {
            Level::Verbose => "Verbose",
            Level::Debug => "Debug",
            Level::Info => "Info",
            Level::Warning => "Warning",
            Level::Error => "Error",
            Level::Critical => "Critical",
        }
    }

    /// A record's `MetaData.LogLevel`: a number 0..=5 or a level name.
    fn of_payload(v: &Value) -> Option<Level> {
        match v {
            Value::Number(n) => match n.as_u64()? {
                0 => Some(Level::Debug),
                1 => Some(Level::Info),
                2 => Some(Level::Warning),
                3 => Some(Level::Error),
                4 => Some(Level::Critical),
                5 => Some(Level::Verbose),
                _ => None,
            },
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl FromStr for Level {
    type Err = Error;

    fn from_str(s: &str) -> Result<Level, Error> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "verbose" | "trace" => Level::Verbose,
            "debug" => Level::Debug,
            "info" | "information" => Level::Info,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            "critical" | "fatal" => Level::Critical,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown KeeperLogger level {s:?}: use verbose, debug, info, warning, error \
                     or critical"
                )))
            }
        })
    }
}

/// What KeeperLogger did with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a KeeperLogger record (an event), or one KeeperLogger cannot read.
    NotARecord,
    /// Written (or held for the next flush).
    Written,
    /// Received, but below the minimum level: never written.
    BelowMinimum,
}

/// What the stand-in did over a run.
#[derive(Clone, Debug, PartialEq)]
pub struct KeeperLoggerSummary {
    pub minimum: Level,
    pub path: Option<PathBuf>,
    /// KeeperLogger records received.
    pub received: usize,
    /// Written to the file (at or above the minimum).
    pub written: usize,
    /// Below the minimum: received, never written.
    pub below: usize,
    pub error: Option<String>,
}

/// The stand-in: counts, holds and writes records as KeeperLogger does.
pub struct KeeperLogger {
    pub minimum: Level,
    /// `None`: no agent root known, nothing is written (the counts still are kept).
    pub path: Option<PathBuf>,
    pub received: usize,
    pub written: usize,
    pub below: usize,
    held: Vec<String>,
    last_flush: Instant,
    /// The first error writing the file (reported once, in the summary).
    pub error: Option<String>,
}

impl KeeperLogger {
    pub fn new(minimum: Level, path: Option<PathBuf>) -> KeeperLogger {
        KeeperLogger {
            minimum,
            path,
            received: 0,
            written: 0,
            below: 0,
            held: Vec::new(),
            last_flush: Instant::now(),
            error: None,
        }
    }

    /// One line of `KeeperLogger.log` (kepmlog assumes this layout): UTC time, level,
    /// Source, [Category], Message, and CorrelationId/Context when set.
    pub fn line(m: &Received, level: Level, meta: &Value) -> String {
        let s = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
        let mut line = format!(
            "{} {:<8} {} [{}] {}",
            timefmt::rfc3339_utc(m.at),
            level.name(),
            s("Source"),
            s("Category"),
            s("Message")
        );
        for k in ["CorrelationId", "Context"] {
            if !s(k).is_empty() {
                line.push_str(&format!(" {k}={}", s(k)));
            }
        }
        line
    }

    /// Writes what it holds and says what it did.
    pub fn summary(mut self) -> KeeperLoggerSummary {
        self.flush(true);
        KeeperLoggerSummary {
            minimum: self.minimum,
            path: self.path,
            received: self.received,
            written: self.written,
            below: self.below,
            error: self.error,
        }
    }

    /// Takes one message the broker delivered.
    pub fn accept(&mut self, m: &Received) -> Verdict {
        if m.topic != LOG_TOPIC {
            return Verdict::NotARecord;
        }
        let Some(payload) = m.json() else {
            return Verdict::NotARecord;
        };
        let Some(meta) = payload.get("MetaData") else {
            return Verdict::NotARecord;
        };
        let Some(level) = meta.get("LogLevel").and_then(Level::of_payload) else {
            return Verdict::NotARecord;
        };
        self.received += 1;
        if level < self.minimum {
            self.below += 1;
            return Verdict::BelowMinimum;
        }
        self.written += 1;
        self.held.push(Self::line(m, level, meta));
        Verdict::Written
    }

    /// Writes what is held when the flush interval has passed (or `now_anyway`).
    pub fn flush(&mut self, now_anyway: bool) {
        if !now_anyway && self.last_flush.elapsed() < FLUSH_INTERVAL {
            return;
        }
        self.last_flush = Instant::now();
        let Some(path) = &self.path else {
            self.held.clear();
            return;
        };
        if self.held.is_empty() {
            return;
        }
        let text: String = self.held.drain(..).map(|l| l + "\n").collect();
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?
                    .write_all(text.as_bytes())
            });
        if let Err(e) = written {
            self.error
                .get_or_insert(format!("writing {}: {e}", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(level: Value) -> Received {
        Received {
            topic: LOG_TOPIC.into(),
            payload: serde_json::json!({"MetaData": {"LogLevel": level, "Source": "S",
                "Category": "C", "Message": "m", "CorrelationId": "", "Context": "k=v"}})
            .to_string()
            .into_bytes(),
            at: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_minimum_level_decides_what_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Logs/KeeperLogger.log");
        let mut k = KeeperLogger::new(Level::Warning, Some(path.clone()));
        assert_eq!(k.accept(&record(1.into())), Verdict::BelowMinimum);
        assert_eq!(k.accept(&record(5.into())), Verdict::BelowMinimum);
        assert_eq!(k.accept(&record(2.into())), Verdict::Written);
        assert_eq!(k.accept(&record("Critical".into())), Verdict::Written);
        let event = Received {
            topic: "Jobs/x/events".into(),
            ..record(3.into())
        };
        assert_eq!(k.accept(&event), Verdict::NotARecord);
        k.flush(false);
        assert!(
            !path.exists(),
            "nothing is written before the flush interval"
        );
        k.flush(true);
        let text = std::fs::read_to_string(&path).expect("log");
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000Z Warning  S [C] m Context=k=v\n\
             1970-01-01T00:00:00.000Z Critical S [C] m Context=k=v\n"
        );
        assert_eq!((k.received, k.written, k.below), (4, 2, 2));
        assert!("Information".parse::<Level>().is_ok());
        assert!("loud".parse::<Level>().is_err());
    }
}
