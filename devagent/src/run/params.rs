//! How a run is triggered: parameter values (`--param NAME=VALUE`, as the trigger API's
//! JSON body supplies them), the event (`--event NAME`), and what the current session
//! cannot reproduce of a task's execution type. Kept apart from `job` and `task`, which
//! only call in here.

use serde_json::Value;

use crate::lint::{declared_parameters, placeholders, Parameter, EXECUTION_TYPES};
use crate::lint::{AGENT_EVENTS, API_BASE_PLACEHOLDER};

/// Checks the trigger (`event`, when given) and resolves the parameter values; the
/// message of `Err` says what to pass instead.
pub fn prepare(
    job: &Value,
    supplied: &[(String, String)],
    event: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    if let Some(e) = event {
        check_event(job, e)?;
    }
    resolve(job, supplied)
}

/// Splits `NAME=VALUE` (the value may be empty and may hold `=`).
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "--param {s:?}: expected NAME=VALUE, e.g. --param TargetPath=/tmp"
        )),
    }
}

/// The value of every declared parameter: the one supplied, else its default. Refuses a
/// supplied name the job does not declare, a value its type does not accept, and a
/// required parameter with neither ("Jobs: Definition & Format": name, type, default,
/// required).
pub fn resolve(
    job: &Value,
    supplied: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let declared = declared_parameters(job);
    let names = || {
        if declared.is_empty() {
            "the job declares none".to_string()
        } else {
            let n: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
            format!("it declares {}", n.join(", "))
        }
    };
    for (n, _) in supplied {
        if !declared.iter().any(|p| &p.name == n) {
            return Err(format!(
                "--param {n}: the job has no parameter {n:?} ({}); parameter names are \
                 case-sensitive",
                names()
            ));
        }
    }
    let mut out = Vec::new();
    for p in &declared {
        // The last of repeated --param wins, as the last key of a JSON body would.
        let given = supplied.iter().rev().find(|(n, _)| *n == p.name);
        let value = match (given, &p.default) {
            (Some((_, v)), _) => {
                check_type(p, v)?;
                v.clone()
            }
            (None, Some(d)) => crate::lint::parameter_value_text(d),
            (None, None) if p.required => {
                return Err(format!(
                    "parameter {:?} is required and has no default: pass --param {}=VALUE \
                     (the trigger API's JSON body on the agent)",
                    p.name, p.name
                ))
            }
            (None, None) => continue,
        };
        out.push((p.name.clone(), value));
    }
    Ok(out)
}

fn check_type(p: &Parameter, v: &str) -> Result<(), String> {
    if p.accepts(v) {
        return Ok(());
    }
    Err(format!(
        "--param {}={v:?}: not a value of type {:?}",
        p.name,
        p.kind.as_deref().unwrap_or("string")
    ))
}

/// Replaces each `{Name}` of a resolved parameter in `line`; other braces stay as written,
/// `{KeeperApiBaseUrl}` included (the task substitutes that one). Values are inserted
/// as they are, before the line is split, so a value with a space splits unless the
/// placeholder stands in quotes (kepmlog assumes the agent substitutes the same way it
/// does `{KeeperApiBaseUrl}`).
pub fn substitute(line: &str, values: &[(String, String)]) -> String {
    let mut out = line.to_string();
    for name in placeholders(line) {
        if format!("{{{name}}}") == API_BASE_PLACEHOLDER {
            continue;
        }
        if let Some((_, v)) = values.iter().find(|(n, _)| n == name) {
            out = out.replace(&format!("{{{name}}}"), v);
        }
    }
    out
}

/// The tasks with parameter values substituted in their `arguments`.
pub fn apply(tasks: &[Value], values: &[(String, String)]) -> Vec<Value> {
    tasks
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(Value::String(line)) = t.get_mut("arguments") {
                *line = substitute(line, values);
            }
            t
        })
        .collect()
}

/// Refuses an event the job has no trigger for.
pub fn check_event(job: &Value, event: &str) -> Result<(), String> {
    let names: Vec<&str> = job
        .get("events")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(crate::lint::event_name).collect())
        .unwrap_or_default();
    if names.contains(&event) {
        return Ok(());
    }
    let known = if AGENT_EVENTS.contains(&event) {
        "the agent's own event"
    } else {
        "a custom event"
    };
    Err(format!(
        "--event {event}: the job has no trigger for {known} {event:?} ({}); add \
         \"events\": [\"{event}\"] or run without --event (as the API would)",
        if names.is_empty() {
            "it has no events".to_string()
        } else {
            format!("its events: {}", names.join(", "))
        }
    ))
}

/// What differs on the agent for a task that runs in a user's session: the devagent runs
/// every task in the current session.
pub fn execution_note(task: &Value) -> Option<String> {
    let t = task
        .get("ExecutionType")
        .or_else(|| task.get("executionType"))
        .and_then(Value::as_str)?;
    if t == "Service" || !EXECUTION_TYPES.contains(&t) {
        return None;
    }
    Some(format!(
        "ExecutionType {t}: run here in the current session as the current user; the agent \
         runs it in the logged-on user's {}session{}, and a non-admin user-session process \
         must be named in Settings:AllowedNonAdminExecutables to reach the broker and Plugin \
         Settings",
        if t == "UserDesktop" { "desktop " } else { "" },
        if t == "UserElevated" {
            ", elevated"
        } else {
            ""
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Value {
        json!({"parameters": [
            {"name": "Target", "type": "string", "required": true},
            {"name": "Depth", "type": "int", "defaultValue": 2},
            {"name": "Label", "type": "string"}
        ]})
    }

    #[test]
    fn values_defaults_and_refusals() {
        let got = resolve(&job(), &[("Target".into(), "/srv".into())]).expect("resolves");
        let want = vec![
            ("Target".to_string(), "/srv".to_string()),
            ("Depth".to_string(), "2".to_string()),
        ];
        assert_eq!(got, want);
        let e = resolve(&job(), &[]).expect_err("Target is required");
        assert!(e.contains("--param Target=VALUE"), "{e}");
        let e = resolve(&job(), &[("target".into(), "x".into())]).expect_err("case");
        assert!(e.contains("declares Target, Depth, Label"), "{e}");
        let e = resolve(
            &job(),
            &[
                ("Target".into(), "x".into()),
                ("Depth".into(), "deep".into()),
            ],
        )
        .expect_err("type");
        assert!(e.contains("type \"int\""), "{e}");
    }

    #[test]
    fn substitution_leaves_the_api_base_and_unknown_names() {
        let v = [("Target".to_string(), "/srv/a b".to_string())];
        assert_eq!(
            substitute("--base={KeeperApiBaseUrl} --t \"{Target}\" {Other} {}", &v),
            "--base={KeeperApiBaseUrl} --t \"/srv/a b\" {Other} {}"
        );
    }

    #[test]
    fn params_and_events() {
        assert_eq!(parse_param("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_param("=x").is_err() && parse_param("x").is_err());
        let j = json!({"events": ["Startup", {"eventType": "my-event"}]});
        assert!(check_event(&j, "my-event").is_ok());
        assert!(check_event(&j, "PolicyEvaluationPending")
            .expect_err("no trigger")
            .contains("the agent's own event"));
        assert!(execution_note(&json!({"executionType": "UserElevated"}))
            .is_some_and(|n| n.contains("AllowedNonAdminExecutables")));
        assert_eq!(execution_note(&json!({"ExecutionType": "Service"})), None);
    }
}
