//! The job's shape, checked against schemas/job.schema.json: unknown keys, missing keys,
//! types, ranges, enums. Each schema error becomes a finding; the rule id, the fix and the
//! wording come from the schema's own annotations on the property concerned:
//!
//! - `x-rule`: the rule id of any error on the property (default `field-type`), and
//!   `x-severity: "warning"` when it is only a warning;
//! - `x-expect`: what a valid value is, in words ("a positive whole number");
//! - `x-fix`: what to change;
//! - `x-missing-rule`, `x-missing`, `x-missing-fix`: the rule, message and fix when a
//!   required property is absent (`{stem}` stands for the file name without `.json`).

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::finding::{kind, Finding, Linter, Severity};
use super::tasks::arguments_not_a_string;
use crate::schemas::{self, keyword_owner, segments};

/// One schema error turned into a finding, with where it sits in the document.
struct Located {
    order: Vec<usize>,
    finding: Finding,
}

impl Linter<'_> {
    /// Appends the schema's findings, the job's own keys before nested ones and each level in
    /// the order of the document (a missing key after the keys that are there).
    pub(super) fn check_structure(&mut self, job: &Value, stem: &str) {
        let schema = match schemas::job() {
            Ok(s) => s,
            Err(e) => {
                self.error(
                    "$",
                    "schema",
                    e.to_string(),
                    "this is a bug in kepm-devagent: report it",
                );
                return;
            }
        };
        let mut found = Vec::new();
        for err in schema.validator.iter_errors(job) {
            let at = segments(err.instance_path().as_str());
            let Some(owner) = keyword_owner(&schema.doc, err.schema_path().as_str()) else {
                continue;
            };
            let mut add = |at: Vec<String>, sev, rule, message, fix| {
                found.push(Located {
                    order: document_order(job, &at),
                    finding: Finding {
                        file: self.file.to_string(),
                        path: json_path(job, &at),
                        rule,
                        severity: sev,
                        message,
                        fix,
                        position: None,
                    },
                })
            };
            match err.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    let known: Vec<&str> = owner
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    for key in unexpected {
                        let mut l = Linter {
                            file: self.file,
                            out: Vec::new(),
                        };
                        let mut path = at.clone();
                        path.push(key.clone());
                        l.unknown_field(&json_path(job, &path), key, &known);
                        for f in l.out {
                            add(path.clone(), f.severity, f.rule, f.message, f.fix);
                        }
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    let prop = owner.get("properties").and_then(|p| p.get(name));
                    let note = |k: &str| prop.and_then(|p| p.get(k)).and_then(Value::as_str);
                    let rule = note("x-missing-rule")
                        .or(note("x-rule"))
                        .unwrap_or("field-missing");
                    let message = note("x-missing")
                        .map_or_else(|| format!("{name:?} is missing"), str::to_string);
                    let fix = note("x-missing-fix")
                        .or(note("x-fix"))
                        .map_or_else(|| format!("add {name:?}"), |f| f.replace("{stem}", stem));
                    let mut path = at.clone();
                    path.push(name.to_string());
                    add(path, Severity::Error, rule, message, fix);
                }
                other => {
                    let note = |k: &str| owner.get(k).and_then(Value::as_str);
                    let rule = note("x-rule").unwrap_or("field-type");
                    let sev = match note("x-severity") {
                        Some("warning") => Severity::Warning,
                        _ => Severity::Error,
                    };
                    let value = err.instance();
                    let want = note("x-expect").map_or_else(|| expected(owner), str::to_string);
                    let what = note("description")
                        .map(first_sentence)
                        .or(note("title").map(str::to_string))
                        .unwrap_or_else(|| rule.to_string());
                    let (message, fix) = if rule == "task-arguments" {
                        arguments_not_a_string(value)
                    } else {
                        let found = match other {
                            ValidationErrorKind::Type { .. } => kind(value).to_string(),
                            _ => value.to_string(),
                        };
                        (
                            format!("expected {want} ({what}), found {found}"),
                            note("x-fix").map_or_else(|| format!("make it {want}"), str::to_string),
                        )
                    };
                    add(at, sev, rule, message, fix);
                }
            }
        }
        let mut fractions = Vec::new();
        whole_numbers_with_a_fraction(job, &schema.doc, &mut Vec::new(), &mut fractions);
        for (at, owner, value) in fractions {
            let note = |k: &str| owner.get(k).and_then(Value::as_str);
            let rule = note("x-rule").unwrap_or("field-type");
            let want = note("x-expect").map_or_else(|| expected(owner), str::to_string);
            let what = note("description")
                .map(first_sentence)
                .unwrap_or_else(|| rule.to_string());
            let fix = note("x-fix").map_or_else(|| format!("make it {want}"), str::to_string);
            found.push(Located {
                order: document_order(job, &at),
                finding: Finding {
                    file: self.file.to_string(),
                    path: json_path(job, &at),
                    rule,
                    severity: Severity::Error,
                    message: format!("expected {want} ({what}), written without a fraction or exponent, found {value}"),
                    fix,
                    position: None,
                },
            });
        }
        found.sort_by(|a, b| (a.order.len(), &a.order).cmp(&(b.order.len(), &b.order)));
        self.out.extend(found.into_iter().map(|l| l.finding));
    }
}

/// Numbers the schema wants as integers but the file writes with a fraction or an exponent
/// (`1.0`, `1e2`). JSON Schema counts those as integers; the agent's JSON reader does not
/// read them into its whole-number fields, so the job would fail to load there.
fn whole_numbers_with_a_fraction<'s>(
    doc: &Value,
    schema: &'s Value,
    at: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'s Value, String)>,
) {
    let wants_integer = match schema.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => false,
    };
    match doc {
        Value::Number(n) if wants_integer && n.is_f64() => {
            out.push((at.clone(), schema, n.to_string()));
        }
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, v) in m {
                if let Some(sub) = props.and_then(|p| p.get(k)) {
                    at.push(k.clone());
                    whole_numbers_with_a_fraction(v, sub, at, out);
                    at.pop();
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    at.push(i.to_string());
                    whole_numbers_with_a_fraction(v, items, at, out);
                    at.pop();
                }
            }
        }
        _ => {}
    }
}

/// The first sentence of a property's description, as the "what" of a message:
/// "Whether later tasks run after this one fails." -> "whether later tasks run after this
/// one fails".
fn first_sentence(d: &str) -> String {
    let s = d.split(". ").next().unwrap_or(d).trim_end_matches('.');
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        // Lower-case a leading capital, but not an acronym such as "ONE" or "UTC".
        (Some(c), Some(n)) if c.is_uppercase() && n.is_lowercase() => {
            c.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_string(),
    }
}

/// What a subschema without `x-expect` wants, from its `type`.
fn expected(schema: &Value) -> String {
    let word = |t: &str| match t {
        "string" => "a string",
        "boolean" => "true or false",
        "object" => "an object",
        "array" => "an array",
        "integer" => "a whole number",
        "number" => "a number",
        _ => "null",
    };
    match schema.get("type") {
        Some(Value::String(t)) => word(t).to_string(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(word)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a valid value".to_string(),
    }
}

/// `$.tasks[0].command` for the tokens `tasks`, `0`, `command` (indexes where the document
/// has an array).
fn json_path(doc: &Value, at: &[String]) -> String {
    let mut out = String::from("$");
    let mut v = Some(doc);
    for seg in at {
        match v {
            Some(Value::Array(a)) => {
                out.push_str(&format!("[{seg}]"));
                v = seg.parse::<usize>().ok().and_then(|i| a.get(i));
            }
            _ => {
                out.push('.');
                out.push_str(seg);
                v = v.and_then(|v| v.get(seg));
            }
        }
    }
    out
}

/// Where `at` sits in the document: per level, the key's position in its object (keys keep
/// the file's order) or the array index; `usize::MAX` for what is not there.
fn document_order(doc: &Value, at: &[String]) -> Vec<usize> {
    let mut order = Vec::new();
    let mut v = Some(doc);
    for seg in at {
        let (pos, next) = match v {
            Some(Value::Object(m)) => match m.keys().position(|k| k == seg) {
                Some(p) => (p, m.get(seg)),
                None => (usize::MAX, None),
            },
            Some(Value::Array(a)) => match seg.parse::<usize>() {
                Ok(i) => (i, a.get(i)),
                Err(_) => (usize::MAX, None),
            },
            _ => (usize::MAX, None),
        };
        order.push(pos);
        v = next;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn findings(job: Value) -> Vec<(Severity, &'static str, String, String)> {
        let mut l = Linter {
            file: "j.json",
            out: Vec::new(),
        };
        l.check_structure(&job, "j");
        l.out
            .into_iter()
            .map(|f| (f.severity, f.rule, f.path, f.message))
            .collect()
    }

    #[test]
    fn schema_errors_name_path_rule_and_value() {
        let got = findings(json!({
            "id": "j", "enabled": "yes", "Tasks": [],
            "osFilter": {"linux": true}, "mqttTopics": {},
            "schedule": {"intervalMinutes": 0},
            "tasks": [{"command": "t", "timeoutSeconds": -1, "ExecutionType": "Root"}]
        }));
        let want: &[(Severity, &str, &str, &str)] = &[
            (Severity::Error, "field-type", "$.enabled", "expected true or false (must be true, or the agent neither schedules nor triggers the job), found a string"),
            (Severity::Warning, "unknown-field", "$.Tasks", "unknown field \"Tasks\"; the documented name is \"tasks\""),
            (Severity::Error, "schedule-interval", "$.schedule.intervalMinutes", "expected a positive whole number (minutes between runs, counted from the scheduler's start, not clock-aligned), found 0"),
            (Severity::Error, "task-timeout", "$.tasks[0].timeoutSeconds", "expected a positive whole number (the agent kills the task after this many seconds), found -1"),
            (Severity::Error, "task-execution-type", "$.tasks[0].ExecutionType", "expected \"Service\", \"User\", \"UserDesktop\" or \"UserElevated\" (whose session the task runs in), found \"Root\""),
        ];
        let got: Vec<(Severity, &str, &str, &str)> = got
            .iter()
            .map(|(s, r, p, m)| (*s, *r, p.as_str(), m.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_missing_key_gets_the_schemas_rule_and_fix() {
        let mut l = Linter {
            file: "j.json",
            out: Vec::new(),
        };
        l.check_structure(
            &json!({"enabled": true, "osFilter": {}, "mqttTopics": {}, "tasks": [{}]}),
            "my-job",
        );
        let rules: Vec<(&str, &str)> = l.out.iter().map(|f| (f.rule, f.path.as_str())).collect();
        assert_eq!(
            rules,
            [
                ("id-missing", "$.id"),
                ("task-command", "$.tasks[0].command")
            ]
        );
        assert_eq!(
            l.out[0].fix,
            "add \"id\": \"my-job\" (the file name without .json)"
        );
    }

    #[test]
    fn paths_and_order() {
        let doc = json!({"a": [{"b": 1}], "c": {"d/e": 2}});
        assert_eq!(
            json_path(&doc, &["a".into(), "0".into(), "b".into()]),
            "$.a[0].b"
        );
        assert_eq!(json_path(&doc, &["c".into(), "d/e".into()]), "$.c.d/e");
        assert_eq!(
            document_order(&doc, &["c".into(), "x".into()]),
            [1, usize::MAX]
        );
        assert!(document_order(&doc, &["a".into()]) < document_order(&doc, &["c".into()]));
    }

    #[test]
    fn type_words() {
        assert_eq!(first_sentence("Whether it runs. More."), "whether it runs");
        assert_eq!(first_sentence("ONE string, a line."), "ONE string, a line");
        assert_eq!(expected(&json!({"type": ["string", "null"]})), "a string");
        assert_eq!(
            expected(&json!({"type": ["object", "array"]})),
            "an object or an array"
        );
    }

    #[test]
    fn whole_numbers_written_with_a_fraction_are_errors() {
        let got = findings(json!({
            "id": "j", "enabled": true, "schedule": {"intervalMinutes": 60.0},
            "tasks": [{"command": "t", "timeoutSeconds": 3e2}, {"command": "u", "timeoutSeconds": 30}]
        }));
        let fractions: Vec<_> = got
            .iter()
            .filter(|(_, _, _, m)| m.contains("without a fraction"))
            .map(|(s, r, p, m)| (*s, *r, p.as_str(), m.as_str()))
            .collect();
        assert_eq!(fractions.len(), 2, "{got:#?}");
        assert_eq!(fractions[0].0, Severity::Error);
        assert_eq!(
            (fractions[0].1, fractions[0].2),
            ("schedule-interval", "$.schedule.intervalMinutes")
        );
        assert!(fractions[0].3.ends_with("found 60.0"), "{}", fractions[0].3);
        assert_eq!(
            (fractions[1].1, fractions[1].2),
            ("task-timeout", "$.tasks[0].timeoutSeconds")
        );
    }
}
