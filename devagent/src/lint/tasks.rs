//! `tasks`: command and binary (executablePath checked for the OSes the job targets), the
//! `arguments` command line, ExecutionType, timeouts, continueOnFailure, scriptType.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::finding::{kind, Linter};
use super::paths;
use crate::binary::{bin_path, resolve_binary};
use crate::cmdline;
use crate::os::Os;

/// What the agent substitutes in task arguments.
pub const API_BASE_PLACEHOLDER: &str = "{KeeperApiBaseUrl}";
/// The argument that hands a tool the agent's API base (kepmlog reads it).
pub const API_BASE_ARGUMENT: &str = "--keeper-api-base={KeeperApiBaseUrl}";

const SCRIPT_TYPES: &[&str] = &["Auto", "PowerShell", "Bash", "Shell", "Python", "Batch"];

/// The execution types "Jobs and Applications" documents; `Service` is the default.
pub const EXECUTION_TYPES: &[&str] = &["Service", "User", "UserDesktop", "UserElevated"];

/// Where the tasks are checked: the OSes the job targets (paths), and the OS lint runs as
/// (binaries).
pub(super) struct Target<'a> {
    pub oses: &'a [Os],
    pub host: Os,
    pub agent_root: Option<&'a Path>,
    pub check_binaries: bool,
}

impl Linter<'_> {
    pub(super) fn check_tasks(&mut self, root: &Map<String, Value>, target: &Target<'_>) {
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
            self.check_execution_type(&p, task);
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
                    self.check_executable_path(&p, s, target.oses);
                    Some(s.as_str())
                }
                _ => None,
            };
            // A path that is not absolute here was reported above; looking it up would
            // only repeat that.
            let path_usable = exe_path.is_none_or(|s| paths::is_absolute_on(target.host, s));
            if target.check_binaries && path_usable && target.oses.contains(&target.host) {
                if let Some(cmd) = command {
                    self.check_binary(&p, cmd, exe_path, target);
                }
            }
        }
    }

    /// An absolute path on every OS the job targets (a Windows-only job is checked with
    /// Windows rules wherever lint runs).
    fn check_executable_path(&mut self, p: &str, s: &str, oses: &[Os]) {
        for os in oses {
            if !paths::is_absolute_on(*os, s) {
                self.error(
                    &format!("{p}.executablePath"),
                    "task-executable-path",
                    format!(
                        "executablePath {s:?} is not an absolute path on {} (the job's osFilter \
                         targets it)",
                        os.key()
                    ),
                    &format!(
                        "give the full path as {} writes it (e.g. {:?}), remove it to use \
                         Jobs/bin/{{command}}/{{command}}, or exclude {} in osFilter",
                        os.key(),
                        paths::example(*os),
                        os.key()
                    ),
                );
            }
        }
    }

    /// Both spellings are the vendor's: `ExecutionType` (the Custom Job Guide) and
    /// `executionType` ("Jobs and Applications"); the values are checked by the schema.
    fn check_execution_type(&mut self, p: &str, task: &Map<String, Value>) {
        if let (Some(a), Some(b)) = (task.get("ExecutionType"), task.get("executionType")) {
            if a != b {
                self.warning(
                    &format!("{p}.executionType"),
                    "task-execution-type",
                    format!(
                        "the task sets both ExecutionType {a} and executionType {b}: which one \
                         the agent reads is undocumented"
                    ),
                    "keep one of them",
                );
            }
        }
    }

    /// The binary resolves on the OS lint runs as. Lint running as another OS (`--os`) cannot
    /// see that OS's PATH or its absolute paths, so what it cannot check is a note or warning.
    fn check_binary(&mut self, p: &str, cmd: &str, exe_path: Option<&str>, target: &Target<'_>) {
        let host = target.host;
        let agent_root = target.agent_root;
        if host != Os::current() {
            if let Some(exe) = exe_path {
                self.note(
                    &format!("{p}.executablePath"),
                    "task-binary",
                    format!(
                        "executablePath {exe:?} not checked: lint runs on {} as {}",
                        Os::current().key(),
                        host.key()
                    ),
                    &format!("lint on {} to check the binary exists", host.key()),
                );
                return;
            }
            let Some(root) = agent_root else { return };
            let bin = bin_path(root, cmd, host);
            if !bin.is_file() {
                self.warning(
                    &format!("{p}.command"),
                    "task-binary",
                    format!(
                        "the binary for {cmd:?} is not at {} (PATH on {} not checked)",
                        bin.display(),
                        host.key()
                    ),
                    &format!("install it at {}", bin.display()),
                );
            }
            return;
        }
        if let Err(tried) = resolve_binary(cmd, exe_path, agent_root, host) {
            let fix = match (exe_path, agent_root) {
                (Some(_), _) => "install the binary at executablePath, or fix the path".to_string(),
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
            let (message, fixed) = match api_base_argument(line) {
                // A misspelt placeholder or a literal URL: the agent substitutes only the one
                // spelling, so the fix corrects that argument rather than adding a second.
                Some((start, end)) => (
                    format!(
                        "{:?} is not {{KeeperApiBaseUrl}} (the only spelling the agent \
                         substitutes): the tool will look for the agent's API there",
                        &line[start..end]
                    ),
                    format!("{}{API_BASE_ARGUMENT}{}", &line[..start], &line[end..]),
                ),
                None => (
                    "the arguments do not carry {KeeperApiBaseUrl}: the tool will look for the \
                     agent's API at the default https://127.0.0.1:6889"
                        .to_string(),
                    if line.trim().is_empty() {
                        API_BASE_ARGUMENT.to_string()
                    } else {
                        format!("{} {API_BASE_ARGUMENT}", line.trim_end())
                    },
                ),
            };
            self.warning(
                &path,
                "task-api-base",
                message,
                &format!("write \"arguments\": {}", Value::from(fixed)),
            );
        }
    }
}

/// Where `--keeper-api-base=VALUE` or `--keeper-api-base VALUE` is in `line`: the byte range
/// of the flag and its value, if it has one.
fn api_base_argument(line: &str) -> Option<(usize, usize)> {
    let flag = "--keeper-api-base";
    let start = line.find(flag)?;
    let rest = &line[start + flag.len()..];
    let value = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(char::is_whitespace).map(str::trim_start))?;
    let len = value.find(char::is_whitespace).unwrap_or(value.len());
    if len == 0 || value.starts_with("--") {
        return None;
    }
    let end = line.len() - value.len() + len;
    Some((start, end))
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
