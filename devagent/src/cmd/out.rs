//! Stdout for the subcommands: whole lines, flushed, JSON objects with `event` first.

use std::io::Write;

use serde_json::Value;

/// Writes whole lines to stdout and flushes each, so readers see them immediately.
#[derive(Clone)]
pub(crate) struct Out;

impl Out {
    pub(crate) fn line(&self, s: &str) -> bool {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        writeln!(lock, "{s}").and_then(|()| lock.flush()).is_ok()
    }

    pub(crate) fn json(&self, v: &Value) -> bool {
        self.line(&event_first(v))
    }
}

/// serde_json sorts object keys; readers of the stream (and people) look for `event` first.
pub(crate) fn event_first(v: &Value) -> String {
    let Value::Object(map) = v else {
        return v.to_string();
    };
    let Some(event) = map.get("event") else {
        return v.to_string();
    };
    let mut rest = map.clone();
    rest.remove("event");
    let rest = Value::Object(rest).to_string();
    let tail = rest.strip_prefix('{').unwrap_or(&rest);
    if tail == "}" {
        format!("{{\"event\":{event}}}")
    } else {
        format!("{{\"event\":{event},{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_key_comes_first() {
        // The workspace enables serde_json's preserve_order, so the other keys keep their
        // insertion order; only "event" moves.
        let line = event_first(&json!({"z": 1, "event": "ok", "a": [1]}));
        assert!(line.starts_with(r#"{"event":"ok","#), "{line}");
        let back: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back, json!({"event": "ok", "a": [1], "z": 1}));
        assert_eq!(event_first(&json!({"event": "x"})), r#"{"event":"x"}"#);
        assert_eq!(event_first(&json!({"a": 1})), r#"{"a":1}"#);
    }
}
