//! The KeeperLogger message schema (docs/kepm-contract.md section 6), checked on what the
//! broker received.
//!
//! The devagent does not depend on the `kepmlog` crate (its tests depend on us), so the
//! rules are restated here from the contract rather than reused.

use serde_json::{Map, Value};

const ENVELOPE: &[&str] = &["Id", "Version", "RespondToTopic", "MetaData"];
const META: &[&str] = &[
    "MessageType",
    "LogLevel",
    "Source",
    "Category",
    "Message",
    "CorrelationId",
    "Context",
];
const LEVEL_NAMES: &[&str] = &["Debug", "Info", "Warning", "Error", "Critical", "Verbose"];

/// Every way `payload` breaks the KeeperLogger message schema; empty when it conforms.
/// Each entry names the property and what is wrong.
pub fn check_log_payload(payload: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => {
            out.push(format!("payload is not JSON ({e})"));
            return out;
        }
    };
    let Some(obj) = v.as_object() else {
        out.push(match v {
            Value::Array(_) => "payload is a JSON array: one publish must carry exactly one \
                                record object"
                .to_string(),
            _ => "payload is not a JSON object".to_string(),
        });
        return out;
    };
    unknown(&mut out, "", obj, ENVELOPE);
    match obj.get("Id") {
        Some(Value::String(s)) if is_uuid_v4(s) => {}
        Some(Value::String(s)) => out.push(format!("Id {s:?} is not a UUID v4")),
        Some(other) => out.push(format!("Id must be a UUID v4 string, found {other}")),
        None => out.push("Id is missing".into()),
    }
    match obj.get("Version") {
        Some(v) if v.as_i64() == Some(1) => {}
        Some(v) => out.push(format!("Version must be 1, found {v}")),
        None => out.push("Version is missing".into()),
    }
    match obj.get("RespondToTopic") {
        Some(Value::Null) | Some(Value::String(_)) => {}
        Some(v) => out.push(format!("RespondToTopic must be null, found {v}")),
        None => out.push("RespondToTopic is missing (send null)".into()),
    }
    let meta = match obj.get("MetaData") {
        Some(Value::Object(m)) => m,
        Some(v) => {
            out.push(format!("MetaData must be an object, found {v}"));
            return out;
        }
        None => {
            out.push("MetaData is missing".into());
            return out;
        }
    };
    unknown(&mut out, "MetaData.", meta, META);
    match meta.get("MessageType") {
        Some(v) if v.as_i64() == Some(4) || v.as_str() == Some("Log") => {}
        Some(v) => out.push(format!("MetaData.MessageType must be 4 (Log), found {v}")),
        None => out.push("MetaData.MessageType is missing".into()),
    }
    match meta.get("LogLevel") {
        Some(v) if v.as_i64().is_some_and(|n| (0..=5).contains(&n)) => {}
        Some(Value::String(s)) if LEVEL_NAMES.contains(&s.as_str()) => {}
        Some(v) => out.push(format!(
            "MetaData.LogLevel must be 0..5 (Debug, Info, Warning, Error, Critical, Verbose), \
             found {v}"
        )),
        None => out.push("MetaData.LogLevel is missing".into()),
    }
    for key in ["Source", "Category", "Message", "CorrelationId", "Context"] {
        let optional = matches!(key, "CorrelationId" | "Context");
        match meta.get(key) {
            Some(Value::String(s)) => {
                if s.contains(['\r', '\n']) {
                    out.push(format!(
                        "MetaData.{key} contains a raw newline (replace it with a space)"
                    ));
                }
                if key == "Message" && s.trim().is_empty() {
                    out.push(
                        "MetaData.Message is empty (the logger rejects empty messages)".into(),
                    );
                }
                if key == "Source" && s.trim().is_empty() {
                    out.push("MetaData.Source is empty (name the tool)".into());
                }
            }
            None if optional => {}
            Some(Value::Null) if optional => {}
            Some(v) => out.push(format!("MetaData.{key} must be a string, found {v}")),
            None => out.push(format!("MetaData.{key} is missing")),
        }
    }
    out
}

fn unknown(out: &mut Vec<String>, prefix: &str, obj: &Map<String, Value>, known: &[&str]) {
    for k in obj.keys() {
        if known.contains(&k.as_str()) {
            continue;
        }
        match known.iter().find(|n| n.eq_ignore_ascii_case(k)) {
            Some(n) => out.push(format!(
                "{prefix}{k} has the wrong case: property names are case-sensitive, use {n}"
            )),
            None => out.push(format!("{prefix}{k} is not a property of the message")),
        }
    }
}

/// `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, any hex case: the hyphenated form (the
/// only one 36 characters long; `uuid` also parses the simple, braced and URN forms) of a
/// version-4 UUID with the RFC 4122 variant.
pub fn is_uuid_v4(s: &str) -> bool {
    s.len() == 36
        && uuid::Uuid::try_parse(s)
            .is_ok_and(|u| u.get_version_num() == 4 && u.get_variant() == uuid::Variant::RFC4122)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"Id":"0f8fad5b-d9cb-469f-a165-70867728950e","Version":1,
        "RespondToTopic":null,"MetaData":{"MessageType":4,"LogLevel":1,"Source":"SecretScanner",
        "Category":"SecretsScan","Message":"Scan complete: 0 issues detected.",
        "CorrelationId":"","Context":""}}"#;

    fn check(s: &str) -> Vec<String> {
        check_log_payload(s.as_bytes())
    }

    #[test]
    fn the_spec_example_conforms() {
        assert_eq!(check(GOOD), Vec::<String>::new());
        let named = GOOD
            .replace("\"MessageType\":4", "\"MessageType\":\"Log\"")
            .replace("\"LogLevel\":1", "\"LogLevel\":\"Warning\"");
        assert_eq!(check(&named), Vec::<String>::new());
    }

    #[test]
    fn violations_are_named() {
        let cases: &[(&str, &str)] = &[
            ("[1]", "JSON array"),
            ("nope", "not JSON"),
            ("{}", "Id is missing"),
            (&GOOD.replace("469f", "369f"), "not a UUID v4"),
            (
                &GOOD.replace("\"Version\":1", "\"Version\":2"),
                "Version must be 1",
            ),
            (
                &GOOD.replace("\"LogLevel\":1", "\"LogLevel\":6"),
                "LogLevel must be 0..5",
            ),
            (
                &GOOD.replace("\"MessageType\":4", "\"MessageType\":3"),
                "MessageType must be 4",
            ),
            (
                &GOOD.replace("Scan complete: 0 issues detected.", ""),
                "Message is empty",
            ),
            (&GOOD.replace("complete:", "complete\\n"), "raw newline"),
            (&GOOD.replace("\"Source\"", "\"source\""), "wrong case"),
            (
                &GOOD.replace("\"Version\":1,", "\"Version\":1,\"Extra\":1,"),
                "Extra is not",
            ),
            (
                &GOOD.replace("\"Category\":\"SecretsScan\",", ""),
                "Category is missing",
            ),
        ];
        for (payload, want) in cases {
            let v = check(payload);
            assert!(v.iter().any(|m| m.contains(want)), "{want} not in {v:?}");
        }
    }

    #[test]
    fn uuids() {
        assert!(is_uuid_v4("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_uuid_v4("0f8fad5b-d9cb-469f-c165-70867728950e"));
        assert!(!is_uuid_v4("0f8fad5bd9cb469fa16570867728950e"));
        assert!(is_uuid_v4("0F8FAD5B-D9CB-469F-A165-70867728950E"));
        assert!(!is_uuid_v4("0f8fad5b-d9cb-369f-a165-70867728950e"));
        assert!(!is_uuid_v4("{0f8fad5b-d9cb-469f-a165-70867728950e}"));
        assert!(!is_uuid_v4("urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_uuid_v4("0f8fad5b-d9cb-469f-a165-70867728950"));
        assert!(!is_uuid_v4("0f8fad5b-d9cb-469f-a165_70867728950e"));
        assert!(!is_uuid_v4("0f8fad5b-d9cb-469f-a165-70867728950g"));
    }
}
