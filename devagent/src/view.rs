//! The operator's log view: one line per captured message, as `serve --pretty` and `run`
//! print it: `HH:MM:SS.mmm LEVEL    Source [Category] Message`.

use serde_json::Value;

use crate::config::Received;
use crate::timefmt;

/// The vendor's level name for a `LogLevel` value (number or string).
pub fn level_name(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(0) => "Debug".into(),
            Some(1) => "Info".into(),
            Some(2) => "Warning".into(),
            Some(3) => "Error".into(),
            Some(4) => "Critical".into(),
            Some(5) => "Verbose".into(),
            _ => format!("Level{n}"),
        },
        Value::String(s) => s.clone(),
        _ => "?".into(),
    }
}

/// One line of the operator's view for a captured message (log record, event or other).
pub fn pretty_message(m: &Received) -> String {
    let t = timefmt::hms_millis_utc(m.at);
    let parsed = m.json();
    let meta = parsed
        .as_ref()
        .and_then(|v| v.get("MetaData"))
        .filter(|v| v.is_object());
    if let Some(meta) = meta {
        let s = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
        let level = meta.get("LogLevel").map(level_name).unwrap_or("?".into());
        let mut line = format!(
            "{t} {level:<8} {} [{}] {}",
            s("Source"),
            s("Category"),
            s("Message")
        );
        let mut extra = Vec::new();
        for k in ["CorrelationId", "Context"] {
            if !s(k).is_empty() {
                extra.push(format!("{k}={}", s(k)));
            }
        }
        if !extra.is_empty() {
            line.push_str(&format!(" ({})", extra.join(", ")));
        }
        return line;
    }
    match parsed {
        Some(v) if m.topic != "KeeperLogger" => format!("{t} EVENT    {} {v}", m.topic),
        _ => format!("{t} ?        {} {}", m.topic, m.text()),
    }
}
