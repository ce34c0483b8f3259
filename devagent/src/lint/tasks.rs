//! `tasks`: command and binary, the `arguments` command line, ExecutionType, timeouts,
//! continueOnFailure, scriptType.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::finding::{kind, Linter};
use crate::binary::{bin_path, resolve_binary};
use crate::cmdline;
use crate::os::Os;

/// What the agent substitutes in task arguments.
pub const API_BASE_PLACEHOLDER: &str = "{KeeperApiBaseUrl}";
/// The argument that hands a tool the agent's API base (kepmlog reads it).
pub const API_BASE_ARGUMENT: &str = "--keeper-api-base={KeeperApiBaseUrl}";

const SCRIPT_TYPES: &[&str] = &["Auto", "PowerShell", "Bash", "Shell", "Python", "Batch"];

impl Linter<'_> {
    pub(super) fn check_tasks(
        &mut self,
        root: &Map<String, Value>,
        agent_root: Option<&Path>,
        host_included: bool,
        host: Os,
    ) {
        // Missing, empty or not an array: the schema reported it.
        let Some(list) = root.get("tasks").and_then(Value::as_array) else {
            return;
        };
        let mut ids = HashSet::new();
        for (i, t) in list.iter().enumerate() {
            let p = format!("$.tasks[{i}]");
            let Some(task) = t.as_object() else {
                continue;
            };
            match task.get("id") {
                None => self.warning(
                    &format!("{p}.id"),
                    "task-id",
                    "the task has no \"id\": its output is hard to tell apart".into(),
                    "add \"id\": \"scan\" (unique within the job)",
                ),
                Some(Value::String(s)) => {
                    if !ids.insert(s.clone()) {
                        self.warning(
                            &format!("{p}.id"),
                            "task-id",
                            format!("task id {s:?} is used twice"),
                            "give each task a unique id",
                        );
                    }
                }
                Some(_) => {}
            }
            let command = match task.get("command") {
                Some(Value::String(c)) if !c.trim().is_empty() => {
                    if c.contains(['/', '\\']) {
                        self.error(
                            &format!("{p}.command"),
                            "task-command",
                            format!("command {c:?} is a path; it must name the tool"),
                            "set \"command\" to the tool's name (binary at \
                             Jobs/bin/{command}/{command}) and put a full path in \
                             \"executablePath\" if needed",
                        );
                    }
                    Some(c.as_str())
                }
                _ => None,
            };
            self.check_arguments(&p, task);
            if let Some(Value::String(s)) = task.get("scriptType") {
                if !SCRIPT_TYPES.iter().any(|k| k.eq_ignore_ascii_case(s)) {
                    self.warning(
                        &format!("{p}.scriptType"),
                        "task-script-type",
                        format!("unrecognised scriptType {s:?}"),
                        "use \"Auto\" (the agent picks the interpreter from the file)",
                    );
                }
            }
            let exe_path = match task.get("executablePath") {
                Some(Value::String(s)) if !s.is_empty() => {
                    if !Path::new(s).is_absolute() {
                        self.error(
                            &format!("{p}.executablePath"),
                            "task-executable-path",
                            format!("executablePath {s:?} is not absolute"),
                            "give the full path, or remove it to use Jobs/bin/{command}/{command}",
                        );
                        None
                    } else {
                        Some(s.as_str())
                    }
                }
                _ => None,
            };
            if host_included {
                if let Some(cmd) = command {
                    if let Err(tried) = resolve_binary(cmd, exe_path, agent_root, host) {
                        let fix = match (exe_path, agent_root) {
                            (Some(_), _) => {
                                "install the binary at executablePath, or fix the path".to_string()
                            }
                            (None, Some(r)) => format!(
                                "build the tool and install it at {}",
                                bin_path(r, cmd, host).display()
                            ),
                            (None, None) => "pass --agent-root DIR (the binary then lives at \
                                 DIR/Jobs/bin/{command}/{command}), set executablePath, or put \
                                 it on PATH"
                                .to_string(),
                        };
                        self.error(
                            &format!(
                                "{p}.{}",
                                if exe_path.is_some() {
                                    "executablePath"
                                } else {
                                    "command"
                                }
                            ),
                            "task-binary",
                            format!(
                                "the binary for {cmd:?} does not exist (tried {})",
                                tried.join(", ")
                            ),
                            &fix,
                        );
                    }
                }
            }
        }
    }

    /// `arguments` is one string, a command line the agent splits into argv; the agent's job
    /// schema has no array form (docs/kepm-contract.md section 3).
    pub(super) fn check_arguments(&mut self, p: &str, task: &Map<String, Value>) {
        let path = format!("{p}.arguments");
        let line = match task.get("arguments") {
            None => {
                self.warning(
                    &path,
                    "task-api-base",
                    "the task gets no arguments, so not the agent's API base: the tool will look \
                     for it at the default https://127.0.0.1:6889"
                        .into(),
                    &format!("add \"arguments\": {}", Value::from(API_BASE_ARGUMENT)),
                );
                return;
            }
            Some(Value::String(line)) => line,
            // Not a string: the schema reported it, with arguments_not_a_string's fix.
            Some(_) => return,
        };
        if !line.contains(API_BASE_PLACEHOLDER) {
            self.warning(
                &path,
                "task-api-base",
                "the arguments do not carry {KeeperApiBaseUrl}: the tool will look for the \
                 agent's API at the default https://127.0.0.1:6889"
                    .into(),
                &format!(
                    "write \"arguments\": {}",
                    Value::from(if line.trim().is_empty() {
                        API_BASE_ARGUMENT.to_string()
                    } else {
                        format!("{} {API_BASE_ARGUMENT}", line.trim_end())
                    })
                ),
            );
        }
    }
}

/// The message and fix when `arguments` is not a string: for an array, the one string the
/// agent would split back into its elements.
pub(super) fn arguments_not_a_string(v: &Value) -> (String, String) {
    match v {
        Value::Array(list) => {
            // Non-string elements are written as their JSON text: the suggestion is what the
            // author most likely meant, and it stays copy-pasteable.
            let words: Vec<String> = list
                .iter()
                .map(|a| match a {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let joined = if words.is_empty() {
                API_BASE_ARGUMENT.to_string()
            } else {
                cmdline::join_command_line(&words)
            };
            (
                "arguments is an array, but the agent takes one string, a command line it \
                 splits into the task's arguments (whitespace separates, double quotes group)"
                    .into(),
                format!("write \"arguments\": {}", Value::from(joined)),
            )
        }
        v => (
            format!(
                "arguments must be one string, a command line, found {}",
                kind(v)
            ),
            format!(
                "write \"arguments\": {}",
                Value::from(format!("{API_BASE_ARGUMENT} ..."))
            ),
        ),
    }
}
