//! The KeeperLogger message schema (docs/kepm-contract.md section 6), checked on what the
//! broker received: its shape against schemas/keeperlogger.schema.json, then the rule the
//! schema leaves to Rust (Id is a version-4 UUID).
//!
//! The devagent does not depend on the `kepmlog` crate (its tests depend on us), so the
//! rules are restated from the contract rather than reused.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::schemas::{self, keyword_owner, segments};

/// Every way `payload` breaks the KeeperLogger message schema; empty when it conforms.
/// Each entry names the property and what is wrong.
pub fn check_log_payload(payload: &[u8]) -> Vec<String> {
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => return vec![format!("payload is not JSON ({e})")],
    };
    match v {
        Value::Object(_) => {}
        Value::Array(_) => {
            return vec![
                "payload is a JSON array: one publish must carry exactly one \
                         record object"
                    .to_string(),
            ]
        }
        _ => return vec!["payload is not a JSON object".to_string()],
    }
    let schema = match schemas::keeper_logger() {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    let mut out = Vec::new();
    for err in schema.validator.iter_errors(&v) {
        let name = segments(err.instance_path().as_str()).join(".");
        let found = err.instance();
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let owner = keyword_owner(&schema.doc, err.schema_path().as_str());
                let known: Vec<&str> = owner
                    .and_then(|o| o.get("properties"))
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let prefix = if name.is_empty() {
                    name.clone()
                } else {
                    format!("{name}.")
                };
                for k in unexpected {
                    out.push(match known.iter().find(|n| n.eq_ignore_ascii_case(k)) {
                        Some(n) => format!(
                            "{prefix}{k} has the wrong case: property names are case-sensitive, \
                             use {n}"
                        ),
                        None => format!("{prefix}{k} is not a property of the message"),
                    });
                }
            }
            ValidationErrorKind::Required { property } => {
                let p = property.as_str().unwrap_or_default();
                let full = if name.is_empty() {
                    p.to_string()
                } else {
                    format!("{name}.{p}")
                };
                out.push(if p == "RespondToTopic" {
                    "RespondToTopic is missing (send null)".to_string()
                } else {
                    format!("{full} is missing")
                });
            }
            ValidationErrorKind::Type { .. } => out.push(match name.as_str() {
                "Id" => format!("Id must be a UUID v4 string, found {found}"),
                "RespondToTopic" => format!("RespondToTopic must be null, found {found}"),
                "MetaData" => format!("MetaData must be an object, found {found}"),
                _ => format!("{name} must be a string, found {found}"),
            }),
            ValidationErrorKind::Constant { .. } => {
                out.push(format!("{name} must be 1, found {found}"))
            }
            ValidationErrorKind::Enum { .. } => {
                out.push(format!("{name} must be 4 (Log), found {found}"))
            }
            ValidationErrorKind::AnyOf { .. } => out.push(format!(
                "{name} must be 0..5 (Debug, Info, Warning, Error, Critical, Verbose), \
                 found {found}"
            )),
            ValidationErrorKind::Pattern { pattern } if pattern == "\\S" => {
                out.push(match name.as_str() {
                    "MetaData.Message" => {
                        "MetaData.Message is empty (the logger rejects empty messages)".into()
                    }
                    _ => format!("{name} is empty (name the tool)"),
                })
            }
            ValidationErrorKind::Pattern { .. } => out.push(format!(
                "{name} contains a raw newline (replace it with a space)"
            )),
            _ => out.push(format!("{name}: {err}")),
        }
    }
    if let Some(Value::String(id)) = v.get("Id") {
        if !is_uuid_v4(id) {
            out.push(format!("Id {id:?} is not a UUID v4"));
        }
    }
    out
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
        let optional = GOOD
            .replace(",\n        \"CorrelationId\":\"\",\"Context\":\"\"", "")
            .replace(
                "\"CorrelationId\":\"\",\"Context\":\"\"",
                "\"CorrelationId\":null",
            );
        assert_eq!(check(&optional), Vec::<String>::new(), "{optional}");
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
        let more: &[(&str, &str)] = &[
            (&GOOD.replace("\"Version\":1,", ""), "Version is missing"),
            (
                &GOOD.replace("\"RespondToTopic\":null,", ""),
                "RespondToTopic is missing (send null)",
            ),
            (
                &GOOD.replace("\"RespondToTopic\":null", "\"RespondToTopic\":1"),
                "RespondToTopic must be null",
            ),
            (
                &GOOD.replace(
                    "\"Id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"",
                    "\"Id\":7",
                ),
                "Id must be a UUID v4 string",
            ),
            (
                r#"{"Id":"0f8fad5b-d9cb-469f-a165-70867728950e","Version":1,"RespondToTopic":null,"MetaData":[]}"#,
                "MetaData must be an object",
            ),
            (
                &GOOD.replace("\"Source\":\"SecretScanner\"", "\"Source\":\"  \""),
                "MetaData.Source is empty (name the tool)",
            ),
            (
                &GOOD.replace("\"Category\":\"SecretsScan\"", "\"Category\":3"),
                "MetaData.Category must be a string",
            ),
            (
                &GOOD.replace("\"LogLevel\":1", "\"LogLevel\":\"Loud\""),
                "LogLevel must be 0..5",
            ),
            (
                &GOOD.replace("\"Context\":\"\"", "\"Context\":\"a\\rb\""),
                "Context contains a raw newline",
            ),
        ];
        for (payload, want) in cases.iter().chain(more) {
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
