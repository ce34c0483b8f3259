//! `parameters`: each with a name, a type, a default value and a required flag ("Jobs:
//! Definition & Format"), substituted in task arguments. The vendor's pages do not show the
//! placeholder; kepmlog assumes `{Name}`, the form of `{KeeperApiBaseUrl}`
//! (docs/kepm-contract.md section 3).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::finding::{kind, Linter};
use super::tasks::API_BASE_PLACEHOLDER;

/// Parameter types whose values kepmlog checks; others are passed as given.
const TYPES: &[&str] = &[
    "string", "int", "integer", "long", "number", "double", "bool", "boolean",
];

/// One declared parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    pub name: String,
    /// `type`, as written.
    pub kind: Option<String>,
    /// `defaultValue` (or `default`), as written.
    pub default: Option<Value>,
    pub required: bool,
}

impl Parameter {
    /// Whether `value` fits the declared type (true for unknown types, which are not
    /// checked).
    pub fn accepts(&self, value: &str) -> bool {
        match self.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("int" | "integer" | "long") => value.trim().parse::<i64>().is_ok(),
            Some("number" | "double") => value.trim().parse::<f64>().is_ok(),
            Some("bool" | "boolean") => {
                matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false")
            }
            _ => true,
        }
    }
}

/// The text a JSON default stands for in an argument: strings as they are, anything else
/// as its JSON text.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The parameters of a job that are usable (an object with a string `name`), in order.
pub fn declared_parameters(job: &Value) -> Vec<Parameter> {
    let Some(list) = job.get("parameters").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_string();
            Some(Parameter {
                name,
                kind: p.get("type").and_then(Value::as_str).map(str::to_string),
                default: p
                    .get("defaultValue")
                    .or_else(|| p.get("default"))
                    .filter(|v| !v.is_null())
                    .cloned(),
                required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

/// The names between braces in an arguments string: `{Name}` where Name is letters,
/// digits, `_`, `-` or `.`. Other braces (JSON text, `{}`) are left alone.
pub fn placeholders(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find(['{', '}']) {
            Some(end) if after.as_bytes()[end] == b'}' => {
                let name = &after[..end];
                if is_name(name) {
                    out.push(name);
                }
                rest = &after[end + 1..];
            }
            Some(end) => rest = &after[end..],
            None => break,
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Linter<'_> {
    /// Each parameter's shape, and placeholders in the tasks' arguments against them.
    pub(super) fn check_parameters(&mut self, root: &Map<String, Value>) {
        let list = match root.get("parameters") {
            Some(Value::Array(list)) => list.as_slice(),
            Some(Value::Object(m)) if !m.is_empty() => {
                self.note(
                    "$.parameters",
                    "parameter-shape",
                    "parameters is an object; the vendor documents an array of parameters, so \
                     kepmlog neither checks nor substitutes these"
                        .into(),
                    "write \"parameters\": [{\"name\": \"Target\", \"type\": \"string\", \
                     \"required\": true}]",
                );
                &[]
            }
            _ => &[],
        };
        let mut names = HashSet::new();
        for (i, p) in list.iter().enumerate() {
            let path = format!("$.parameters[{i}]");
            let Some(obj) = p.as_object() else {
                self.error(
                    &path,
                    "parameter-shape",
                    format!("a parameter must be an object, found {}", kind(p)),
                    "write {\"name\": \"Target\", \"type\": \"string\", \"required\": false, \
                     \"defaultValue\": \"\"}",
                );
                continue;
            };
            self.check_parameter(&path, obj, &mut names);
        }
        self.check_placeholders(root, &names);
    }

    fn check_parameter(&mut self, path: &str, p: &Map<String, Value>, names: &mut HashSet<String>) {
        match p.get("name") {
            Some(Value::String(n)) if is_name(n) => {
                if n == "KeeperApiBaseUrl" {
                    self.warning(
                        &format!("{path}.name"),
                        "parameter-name",
                        "the parameter is named like the agent's own {KeeperApiBaseUrl}, which \
                         the agent substitutes itself"
                            .into(),
                        "choose another name",
                    );
                } else if !names.insert(n.clone()) {
                    self.error(
                        &format!("{path}.name"),
                        "parameter-name",
                        format!("parameter {n:?} is declared twice"),
                        "give each parameter a unique name",
                    );
                }
            }
            Some(Value::String(n)) => self.error(
                &format!("{path}.name"),
                "parameter-name",
                format!(
                    "parameter name {n:?} cannot stand in a {{placeholder}}: use letters, \
                     digits, '_', '-' or '.'"
                ),
                "rename it, e.g. \"TargetPath\"",
            ),
            other => self.error(
                &format!("{path}.name"),
                "parameter-name",
                match other {
                    None => "the parameter has no \"name\"".to_string(),
                    Some(v) => format!("the parameter's name must be a string, found {}", kind(v)),
                },
                "add \"name\": \"TargetPath\"",
            ),
        }
        let decl = Parameter {
            name: String::new(),
            kind: p.get("type").and_then(Value::as_str).map(str::to_string),
            default: p.get("defaultValue").or_else(|| p.get("default")).cloned(),
            required: p.get("required") == Some(&Value::Bool(true)),
        };
        match p.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => {
                if !TYPES.iter().any(|k| k.eq_ignore_ascii_case(t)) {
                    self.note(
                        &format!("{path}.type"),
                        "parameter-type",
                        format!("kepmlog does not know type {t:?}: values are passed unchecked"),
                        &format!("one of {} is checked", TYPES.join(", ")),
                    );
                }
            }
            Some(v) => self.error(
                &format!("{path}.type"),
                "parameter-type",
                format!("the parameter's type must be a string, found {}", kind(v)),
                "write e.g. \"type\": \"string\"",
            ),
        }
        if let Some(v) = p
            .get("required")
            .filter(|v| !v.is_boolean() && !v.is_null())
        {
            self.error(
                &format!("{path}.required"),
                "parameter-required",
                format!("required must be true or false, found {}", kind(v)),
                "write \"required\": true or false",
            );
        }
        if let Some(d) = decl.default.as_ref().filter(|d| !d.is_null()) {
            let key = if p.contains_key("defaultValue") {
                "defaultValue"
            } else {
                "default"
            };
            if d.is_object() || d.is_array() || !decl.accepts(&value_text(d)) {
                self.warning(
                    &format!("{path}.{key}"),
                    "parameter-default",
                    format!(
                        "the default {d} does not fit type {:?}",
                        decl.kind.as_deref().unwrap_or("string")
                    ),
                    "make the default a value of the parameter's type",
                );
            }
        }
    }

    /// A `{Name}` in a task's arguments that is neither a parameter nor the agent's own
    /// placeholder reaches the task as written (kepmlog assumes: the agent leaves unknown
    /// placeholders alone); a declared parameter no argument uses is noted.
    fn check_placeholders(&mut self, root: &Map<String, Value>, names: &HashSet<String>) {
        let api = API_BASE_PLACEHOLDER.trim_matches(['{', '}']);
        let mut used = HashSet::new();
        let tasks = root.get("tasks").and_then(Value::as_array);
        for (i, t) in tasks.into_iter().flatten().enumerate() {
            let Some(line) = t.get("arguments").and_then(Value::as_str) else {
                continue;
            };
            for name in placeholders(line) {
                if name == api || names.contains(name) {
                    used.insert(name.to_string());
                    continue;
                }
                let close = names.iter().find(|n| n.eq_ignore_ascii_case(name));
                self.warning(
                    &format!("$.tasks[{i}].arguments"),
                    "parameter-undeclared",
                    format!("{{{name}}} is not a declared parameter: the task gets it as written"),
                    &match close {
                        Some(n) => format!("write {{{n}}} (parameter names are case-sensitive)"),
                        None => format!(
                            "declare it: \"parameters\": [{{\"name\": \"{name}\", \"type\": \
                             \"string\", \"required\": true}}]"
                        ),
                    },
                );
            }
        }
        let list = root.get("parameters").and_then(Value::as_array);
        for (i, p) in list.into_iter().flatten().enumerate() {
            let Some(n) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            if names.contains(n) && !used.contains(n) {
                self.note(
                    &format!("$.parameters[{i}]"),
                    "parameter-unused",
                    format!("no task's arguments use {{{n}}}"),
                    &format!("pass it on, e.g. \"arguments\": \"... --{n}={{{n}}}\", or remove it"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholder_names() {
        assert_eq!(
            placeholders("--base={KeeperApiBaseUrl} --p {Target.Path} {} {a b} {{x}} {"),
            ["KeeperApiBaseUrl", "Target.Path", "x"]
        );
        assert!(placeholders("{\"json\": 1}").is_empty());
    }

    #[test]
    fn declared_and_typed() {
        let job = json!({"parameters": [
            {"name": "N", "type": "int", "defaultValue": 3, "required": true},
            {"name": "S", "default": "x"},
            {"type": "string"}
        ]});
        let ps = declared_parameters(&job);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].default, Some(json!(3)));
        assert!(ps[0].required && !ps[1].required);
        assert!(ps[0].accepts("42") && !ps[0].accepts("forty"));
        assert!(ps[1].accepts("anything"));
        assert_eq!(value_text(&json!(3)), "3");
        assert_eq!(value_text(&json!("a b")), "a b");
    }
}
