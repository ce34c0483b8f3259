//! What lint reports ([`Finding`], [`Severity`]) and the machinery every rule family uses
//! to report it ([`Linter`]).

use std::fmt;

use serde_json::{json, Value};

/// Error: the agent refuses the job or it cannot work. Warning: works on the agent, but
/// likely not what the author meant. Note: a kepmlog convention, not an agent rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a job file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The job file as given on the command line.
    pub file: String,
    /// JSON path of the offending value, e.g. `$.tasks[0].command` (`$` for the whole file).
    pub path: String,
    /// Stable rule id, e.g. `task-binary`.
    pub rule: &'static str,
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub fix: String,
    /// Line and column (1-based), for JSON syntax errors.
    pub position: Option<(usize, usize)>,
}

impl Finding {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "file": self.file,
            "path": self.path,
            "rule": self.rule,
            "severity": self.severity.as_str(),
            "message": self.message,
            "fix": self.fix,
        });
        if let Some((line, column)) = self.position {
            v["line"] = json!(line);
            v["column"] = json!(column);
        }
        v
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{}:{l}:{c}", self.file)?,
            None => write!(f, "{}", self.file)?,
        }
        write!(
            f,
            ": {}[{}] {}: {}\n    fix: {}",
            self.severity, self.rule, self.path, self.message, self.fix
        )
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Collects the findings for one file.
pub(super) struct Linter<'a> {
    pub file: &'a str,
    pub out: Vec<Finding>,
}

impl Linter<'_> {
    pub(super) fn push(
        &mut self,
        sev: Severity,
        path: &str,
        rule: &'static str,
        msg: String,
        fix: &str,
    ) {
        self.out.push(Finding {
            file: self.file.to_string(),
            path: path.to_string(),
            rule,
            severity: sev,
            message: msg,
            fix: fix.to_string(),
            position: None,
        });
    }

    pub(super) fn error(&mut self, path: &str, rule: &'static str, msg: String, fix: &str) {
        self.push(Severity::Error, path, rule, msg, fix);
    }

    pub(super) fn warning(&mut self, path: &str, rule: &'static str, msg: String, fix: &str) {
        self.push(Severity::Warning, path, rule, msg, fix);
    }

    pub(super) fn note(&mut self, path: &str, rule: &'static str, msg: String, fix: &str) {
        self.push(Severity::Note, path, rule, msg, fix);
    }

    /// A key the schema does not know, with the documented name when only its case differs.
    pub(super) fn unknown_field(&mut self, path: &str, key: &str, known: &[&str]) {
        match known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
            Some(k) => self.warning(
                path,
                "unknown-field",
                format!("unknown field {key:?}; the documented name is {k:?}"),
                &format!("rename it to {k:?}"),
            ),
            None => self.warning(
                path,
                "unknown-field",
                format!("unknown field {key:?} (ignored)"),
                &format!("remove it, or use one of: {}", known.join(", ")),
            ),
        }
    }
}
