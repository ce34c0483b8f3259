//! The line protocol of `kepmlog run`: what a child writes to say more than "a line of text",
//! in the style of CI runners' workflow commands.
//!
//! ```text
//! ::warning::Disk almost full                        level for this line
//! ::error category=Backup::Copy failed               with properties
//! ::log level=info,category=Scan,correlation-id=42,context=host%3Ddb1::Scanned 10 files
//! ::event::{"phase":"scan","status":"done"}          one JSON object to the event topic
//! ```
//!
//! A command is a line that starts with `::NAME` where NAME is one of the names below (any
//! case), then optionally a space and `key=value` properties separated by commas, then `::`
//! and the message. Property values are percent-encoded where they hold `%`, `,`, `:`, `=`,
//! CR or LF (`%25`, `%2C`, `%3A`, `%3D`, `%0D`, `%0A`). No quotes anywhere: `echo` in bash or
//! cmd.exe and `Write-Output '...'` in PowerShell 5.1 print these lines as written.
//!
//! A line whose NAME is not a command is ordinary text. A command that cannot be read (an
//! unknown property, a bad level, an event that is not a JSON object, no message) is
//! [`Line::Malformed`]: the caller logs the whole line as text, so nothing is lost.

use kepmlog::Level;

/// What one line of the child's output asks for.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// Ordinary text: one record at the stream's level (or a detected one).
    Text(&'a str),
    /// A record with what the command set; `None` fields take the run's defaults.
    Log(Record),
    /// One JSON object for the job's event topic (validated as an object here).
    Event(&'a str),
    /// A command that could not be read; the reason goes to the author's stderr.
    Malformed(String),
}

#[derive(Debug, Default, PartialEq)]
pub struct Record {
    pub level: Option<Level>,
    pub category: Option<String>,
    pub correlation_id: String,
    pub context: String,
    pub message: String,
}

const LEVEL_COMMANDS: &[(&str, Level)] = &[
    ("debug", Level::Debug),
    ("info", Level::Info),
    ("warning", Level::Warning),
    ("warn", Level::Warning),
    ("error", Level::Error),
    ("critical", Level::Critical),
    ("verbose", Level::Verbose),
];

/// Reads one line (without its line ending).
pub fn parse(line: &str) -> Line<'_> {
    let Some(rest) = line.strip_prefix("::") else {
        return Line::Text(line);
    };
    let Some((header, message)) = rest.split_once("::") else {
        return Line::Text(line);
    };
    let (name, props) = match header.split_once(' ') {
        Some((n, p)) => (n, Some(p)),
        None => (header, None),
    };
    let name = name.to_ascii_lowercase();
    let level = LEVEL_COMMANDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| *l);
    match (name.as_str(), level) {
        ("event", _) => {
            if props.is_some_and(|p| !p.trim().is_empty()) {
                return Line::Malformed("::event takes no properties".into());
            }
            match serde_json::from_str::<serde_json::Value>(message) {
                Ok(v) if v.is_object() => Line::Event(message),
                Ok(_) => Line::Malformed("::event needs one JSON object, {...}".into()),
                Err(e) => Line::Malformed(format!("::event is not valid JSON ({e})")),
            }
        }
        ("log", _) | (_, Some(_)) => {
            let mut rec = Record {
                level,
                message: message.to_string(),
                ..Record::default()
            };
            if let Some(p) = props {
                if let Err(e) = properties(p, &mut rec, name == "log") {
                    return Line::Malformed(format!("::{name}: {e}"));
                }
            }
            if rec.message.trim().is_empty() {
                return Line::Malformed(format!("::{name} has no message after the closing ::"));
            }
            Line::Log(rec)
        }
        _ => Line::Text(line),
    }
}

fn properties(p: &str, rec: &mut Record, level_allowed: bool) -> Result<(), String> {
    for pair in p.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("property {pair:?} is not key=value"))?;
        let v = decode(v)?;
        match k.trim().to_ascii_lowercase().as_str() {
            "level" if level_allowed => {
                rec.level = Some(v.parse().map_err(|e: kepmlog::Error| e.to_string())?)
            }
            "category" => rec.category = Some(v),
            "correlation-id" | "correlationid" | "correlation" => rec.correlation_id = v,
            "context" => rec.context = v,
            other => {
                return Err(format!(
                    "unknown property {other:?} (level on ::log only, category, \
                     correlation-id, context)"
                ))
            }
        }
    }
    Ok(())
}

/// Percent-decoding of a property value (only what the protocol encodes, plus any `%XX` of
/// ASCII so that an author's over-encoding still reads).
fn decode(v: &str) -> Result<String, String> {
    if !v.contains('%') {
        return Ok(v.to_string());
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(u8::is_ascii)
                .ok_or_else(|| format!("{v:?}: % must start %25, %2C, %3A, %3D, %0D or %0A"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{v:?} is not UTF-8 after decoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse("plain text"), Line::Text("plain text"));
        assert_eq!(
            parse("::not-a-command::x"),
            Line::Text("::not-a-command::x")
        );
        assert_eq!(
            parse("::warning no close"),
            Line::Text("::warning no close")
        );
        assert_eq!(
            parse("::Warning::disk: full"),
            Line::Log(Record {
                level: Some(Level::Warning),
                message: "disk: full".into(),
                ..Record::default()
            })
        );
        assert_eq!(
            parse("::log level=error,category=Back up,correlation-id=r%2C1,context=a%3Db%0A::m"),
            Line::Log(Record {
                level: Some(Level::Error),
                category: Some("Back up".into()),
                correlation_id: "r,1".into(),
                context: "a=b\n".into(),
                message: "m".into(),
            })
        );
        assert_eq!(
            parse("::error category=Copy::failed"),
            Line::Log(Record {
                level: Some(Level::Error),
                category: Some("Copy".into()),
                message: "failed".into(),
                ..Record::default()
            })
        );
        assert_eq!(parse(r#"::event::{"a":1}"#), Line::Event(r#"{"a":1}"#));
    }

    #[test]
    fn malformed_commands_say_why() {
        for (line, why) in [
            ("::event::[1]", "JSON object"),
            ("::event::{nope", "not valid JSON"),
            ("::log level=loud::x", "loud"),
            ("::warning level=error::x", "unknown property"),
            ("::info colour=red::x", "unknown property"),
            ("::info category::x", "key=value"),
            ("::info context=50%::x", "%25"),
            ("::error::", "no message"),
        ] {
            match parse(line) {
                Line::Malformed(m) => assert!(m.contains(why), "{line}: {m}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
