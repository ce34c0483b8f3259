//! `kepm-devagent lint`: checks a job JSON file against the agent's job rules
//! (docs/kepm-contract.md sections 1, 2, 3, 7 and 8), the way the agent and an operator's
//! pre-launch checklist would.
//!
//! Every [`Finding`] names the file, a JSON path (`$.tasks[0].command`), a stable rule id,
//! whether it is an error (the agent would reject the job, or the task could not log) or a
//! warning (probably a mistake), and the fix.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::cmdline;

/// The topic every log record goes to; must be in `allowedPublications`.
pub const LOG_TOPIC: &str = "KeeperLogger";
/// What the agent substitutes in task arguments.
pub const API_BASE_PLACEHOLDER: &str = "{KeeperApiBaseUrl}";
/// The argument that hands a tool the agent's API base (kepmlog reads it).
pub const API_BASE_ARGUMENT: &str = "--keeper-api-base={KeeperApiBaseUrl}";

const ROOT_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "schedule",
    "events",
    "osFilter",
    "mqttTopics",
    "eventTopic",
    "parameters",
    "tasks",
];
const TASK_FIELDS: &[&str] = &[
    "id",
    "name",
    "command",
    "arguments",
    "executablePath",
    "ExecutionType",
    "timeoutSeconds",
    "continueOnFailure",
    "scriptType",
];
const SCHEDULE_MODES: &[&str] = &["intervalMinutes", "cronExpression", "runAt", "calendar"];
const OS_KEYS: &[&str] = &["windows", "linux", "macOS"];
const MQTT_FIELDS: &[&str] = &["allowedPublications", "allowedSubscriptions"];
const EXECUTION_TYPES: &[&str] = &["Service", "User", "UserDesktop"];
const SCRIPT_TYPES: &[&str] = &["Auto", "PowerShell", "Bash", "Shell", "Python", "Batch"];
const EVENT_TYPES: &[&str] = &["Startup"];
const DAYS: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Error: the agent would reject or fail the job. Warning: probably a mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
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

/// The operating systems of `osFilter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    Windows,
    Linux,
    MacOs,
}

impl Os {
    /// The OS this program was built for (Linux for anything Unix-like but macOS).
    pub fn current() -> Os {
        if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Linux
        }
    }

    /// Its key in `osFilter`.
    pub fn key(self) -> &'static str {
        match self {
            Os::Windows => "windows",
            Os::Linux => "linux",
            Os::MacOs => "macOS",
        }
    }

    /// `.exe` on Windows, else empty.
    pub fn exe_suffix(self) -> &'static str {
        match self {
            Os::Windows => ".exe",
            _ => "",
        }
    }
}

/// How to lint.
#[derive(Clone, Debug)]
pub struct LintOptions {
    /// The agent root whose `Jobs/bin/{command}/{command}` holds the binaries. `None`: the
    /// default for each file ([`default_agent_root`]); when that is `None` too, only
    /// `executablePath` and `PATH` are tried.
    pub agent_root: Option<PathBuf>,
    /// The host whose binaries are checked (skipped when `osFilter` excludes it).
    pub host: Os,
    /// Reference time for "runAt is in the past". Default: now.
    pub now: SystemTime,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            agent_root: None,
            host: Os::current(),
            now: SystemTime::now(),
        }
    }
}

/// The agent root a job file implies: `{root}` when the file is `{root}/Jobs/{id}.json`.
pub fn default_agent_root(job_file: &Path) -> Option<PathBuf> {
    let dir = job_file.parent()?;
    if dir.file_name()? != "Jobs" {
        return None;
    }
    let root = dir.parent()?;
    Some(if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root.to_path_buf()
    })
}

/// The result of linting one file: its findings and, when it parsed, the job.
#[derive(Clone, Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub job: Option<Value>,
    /// The agent root used for binary checks.
    pub agent_root: Option<PathBuf>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
    pub fn warnings(&self) -> usize {
        self.findings.len() - self.errors()
    }
}

/// Reads, parses and lints one job file. Never panics on bad input: unreadable files and
/// malformed JSON become findings.
pub fn lint_file(file: &Path, opts: &LintOptions) -> Report {
    let name = file.display().to_string();
    let agent_root = opts.agent_root.clone().or_else(|| default_agent_root(file));
    let text = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            return Report {
                findings: vec![Finding {
                    file: name,
                    path: "$".into(),
                    rule: "file",
                    severity: Severity::Error,
                    message: format!("cannot read the file: {e}"),
                    fix: "check the path".into(),
                    position: None,
                }],
                job: None,
                agent_root,
            }
        }
    };
    let job: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; we report those separately.
            let msg = msg
                .rsplit_once(" at line ")
                .map(|(m, _)| m.to_string())
                .unwrap_or(msg);
            return Report {
                findings: vec![Finding {
                    file: name,
                    path: "$".into(),
                    rule: "json-syntax",
                    severity: Severity::Error,
                    message: format!("malformed JSON: {msg}"),
                    fix: "correct the JSON at that line and column (a trailing comma, a missing \
                          quote or brace are the usual causes)"
                        .into(),
                    position: Some((e.line(), e.column())),
                }],
                job: None,
                agent_root,
            };
        }
    };
    let stem = file
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".json").unwrap_or(&stem).to_string();
    let findings = lint_value(&name, &stem, &job, agent_root.as_deref(), opts);
    Report {
        findings,
        job: Some(job),
        agent_root,
    }
}

/// Lints a parsed job. `file` labels the findings; `stem` is the file name without `.json`.
pub fn lint_value(
    file: &str,
    stem: &str,
    job: &Value,
    agent_root: Option<&Path>,
    opts: &LintOptions,
) -> Vec<Finding> {
    let mut l = Linter {
        file,
        out: Vec::new(),
    };
    let Some(root) = job.as_object() else {
        l.error(
            "$",
            "json-root",
            format!("the job must be a JSON object, not {}", kind(job)),
            "wrap the job in { ... } with id, enabled, schedule, osFilter, mqttTopics and tasks",
        );
        return l.out;
    };
    l.unknown_fields("$", root, ROOT_FIELDS);
    let id = l.check_id(root, stem);
    for (key, what) in [("name", "the job's display name"), ("description", "text")] {
        match root.get(key) {
            None if key == "name" => l.warning(
                "$.name",
                "name-missing",
                "the job has no name: KEEPER_JOB_NAME will be empty".into(),
                "add \"name\": \"A readable name\"",
            ),
            Some(v) if !v.is_string() => l.field_type(&format!("$.{key}"), v, "a string", what),
            _ => {}
        }
    }
    match root.get("enabled") {
        None => l.error(
            "$.enabled",
            "enabled-missing",
            "\"enabled\" is missing: the agent only runs enabled jobs".into(),
            "add \"enabled\": true",
        ),
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => l.warning(
            "$.enabled",
            "enabled-false",
            "the job is disabled: the agent will neither schedule nor trigger it".into(),
            "set \"enabled\": true when it should run",
        ),
        Some(v) => l.field_type("$.enabled", v, "true or false", "whether the job runs"),
    }
    let has_events = l.check_events(root);
    l.check_schedule(root, has_events, opts.now);
    let host_included = l.check_os_filter(root, opts.host);
    let publications = l.check_mqtt(root);
    l.check_event_topic(root, id.as_deref(), publications.as_deref());
    if let Some(p) = root.get("parameters") {
        if !(p.is_object() || p.is_array()) {
            l.field_type("$.parameters", p, "an object or an array", "job parameters");
        }
    }
    l.check_tasks(root, agent_root, host_included, opts.host);
    l.out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Linter<'a> {
    file: &'a str,
    out: Vec<Finding>,
}

impl Linter<'_> {
    fn push(&mut self, sev: Severity, path: &str, rule: &'static str, msg: String, fix: &str) {
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
    fn error(&mut self, path: &str, rule: &'static str, msg: String, fix: &str) {
        self.push(Severity::Error, path, rule, msg, fix);
    }
    fn warning(&mut self, path: &str, rule: &'static str, msg: String, fix: &str) {
        self.push(Severity::Warning, path, rule, msg, fix);
    }
    fn field_type(&mut self, path: &str, v: &Value, want: &str, what: &str) {
        self.error(
            path,
            "field-type",
            format!("expected {want} ({what}), found {}", kind(v)),
            &format!("make it {want}"),
        );
    }

    fn unknown_fields(&mut self, path: &str, obj: &Map<String, Value>, known: &[&str]) {
        for key in obj.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let p = format!("{path}.{key}");
            match known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
                Some(k) => self.warning(
                    &p,
                    "unknown-field",
                    format!("unknown field {key:?}; the documented name is {k:?}"),
                    &format!("rename it to {k:?}"),
                ),
                None => self.warning(
                    &p,
                    "unknown-field",
                    format!("unknown field {key:?} (ignored)"),
                    &format!("remove it, or use one of: {}", known.join(", ")),
                ),
            }
        }
    }

    fn check_id(&mut self, root: &Map<String, Value>, stem: &str) -> Option<String> {
        let id = match root.get("id") {
            None => {
                self.error(
                    "$.id",
                    "id-missing",
                    "the job has no \"id\"".into(),
                    &format!("add \"id\": {stem:?} (the file name without .json)"),
                );
                return None;
            }
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                self.field_type("$.id", v, "a string", "the job id, equal to the file name");
                return None;
            }
        };
        if id.contains('_') {
            self.error(
                "$.id",
                "id-underscore",
                format!(
                    "id {id:?} contains '_': the broker splits client ids \
                     ({{jobId}}_{{token}}_{{pid}}) on '_', so publish permissions break"
                ),
                &format!(
                    "use hyphens: \"id\": {:?}, and rename the file to match",
                    id.replace('_', "-")
                ),
            );
        }
        if id.is_empty()
            || id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/\\+#".contains(c))
        {
            self.error(
                "$.id",
                "id-characters",
                format!("id {id:?} is empty or contains white space, '/', '\\', '+' or '#'"),
                "use letters, digits and hyphens, e.g. \"secrets-scanner\"",
            );
        }
        if id != stem {
            self.error(
                "$.id",
                "id-file-name",
                format!("id {id:?} does not match the file name {stem:?}.json"),
                &format!("rename the file to {id}.json or set \"id\": {stem:?}"),
            );
        }
        Some(id)
    }

    fn check_events(&mut self, root: &Map<String, Value>) -> bool {
        let Some(events) = root.get("events") else {
            return false;
        };
        let Some(list) = events.as_array() else {
            self.error(
                "$.events",
                "events-shape",
                format!(
                    "\"events\" must be an array of {{\"eventType\": ...}}, found {}",
                    kind(events)
                ),
                "write \"events\": [{\"eventType\": \"Startup\"}]",
            );
            return false;
        };
        for (i, e) in list.iter().enumerate() {
            let p = format!("$.events[{i}]");
            let Some(obj) = e.as_object() else {
                self.error(
                    &p,
                    "events-shape",
                    format!("an event trigger must be an object, found {}", kind(e)),
                    "write {\"eventType\": \"Startup\"}",
                );
                continue;
            };
            self.unknown_fields(&p, obj, &["eventType"]);
            match obj.get("eventType") {
                Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => {}
                Some(Value::String(t)) => self.warning(
                    &format!("{p}.eventType"),
                    "events-type",
                    format!("unknown eventType {t:?}"),
                    &format!("use one of: {}", EVENT_TYPES.join(", ")),
                ),
                _ => self.error(
                    &format!("{p}.eventType"),
                    "events-shape",
                    "the event trigger has no string \"eventType\"".into(),
                    "write {\"eventType\": \"Startup\"}",
                ),
            }
        }
        !list.is_empty()
    }

    fn check_schedule(&mut self, root: &Map<String, Value>, has_events: bool, now: SystemTime) {
        let Some(schedule) = root.get("schedule") else {
            if !has_events {
                self.error(
                    "$.schedule",
                    "schedule-missing",
                    "no \"schedule\" and no \"events\": the job would never run on its own".into(),
                    "add \"schedule\": {\"intervalMinutes\": 60} (or cronExpression, runAt, \
                     calendar), or an event trigger",
                );
            }
            return;
        };
        let Some(obj) = schedule.as_object() else {
            self.field_type(
                "$.schedule",
                schedule,
                "an object",
                "exactly one of intervalMinutes, cronExpression, runAt, calendar",
            );
            return;
        };
        self.unknown_fields("$.schedule", obj, SCHEDULE_MODES);
        let modes: Vec<&str> = SCHEDULE_MODES
            .iter()
            .copied()
            .filter(|m| obj.get(*m).is_some_and(|v| !v.is_null()))
            .collect();
        if modes.len() != 1 {
            let msg = if modes.is_empty() {
                "the schedule sets no mode".to_string()
            } else {
                format!("the schedule sets several modes: {}", modes.join(", "))
            };
            self.error(
                "$.schedule",
                "schedule-mode",
                msg,
                "keep exactly one of intervalMinutes, cronExpression, runAt, calendar",
            );
        }
        if let Some(v) = obj.get("intervalMinutes").filter(|v| !v.is_null()) {
            if v.as_u64().is_none_or(|n| n == 0) {
                self.error(
                    "$.schedule.intervalMinutes",
                    "schedule-interval",
                    format!("intervalMinutes must be a positive whole number, found {v}"),
                    "e.g. \"intervalMinutes\": 60",
                );
            }
        }
        if let Some(v) = obj.get("cronExpression").filter(|v| !v.is_null()) {
            let r = match v.as_str() {
                Some(s) => check_cron(s),
                None => Err(format!("found {}, not a string", kind(v))),
            };
            if let Err(e) = r {
                self.error(
                    "$.schedule.cronExpression",
                    "schedule-cron",
                    format!("invalid 5-field cron expression: {e}"),
                    "use \"minute hour day-of-month month day-of-week\", e.g. \"0 2 * * 1-5\"",
                );
            }
        }
        if let Some(v) = obj.get("runAt").filter(|v| !v.is_null()) {
            match v
                .as_str()
                .ok_or("not a string".to_string())
                .and_then(parse_utc)
            {
                Ok(t) => {
                    if t < now {
                        self.warning(
                            "$.schedule.runAt",
                            "schedule-run-at-past",
                            format!("runAt {v} is in the past: the job will not run"),
                            "set a future time",
                        );
                    }
                }
                Err(e) => self.error(
                    "$.schedule.runAt",
                    "schedule-run-at",
                    format!("runAt {v} is not an ISO-8601 UTC time: {e}"),
                    "write e.g. \"2030-01-31T02:00:00Z\" (UTC, with the Z)",
                ),
            }
        }
        if let Some(v) = obj.get("calendar").filter(|v| !v.is_null()) {
            self.check_calendar(v);
        }
    }

    fn check_calendar(&mut self, v: &Value) {
        const FIX: &str =
            "write \"calendar\": [{\"time\": \"02:30\", \"daysOfWeek\": [\"Monday\", \"Friday\"]}]";
        let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
            self.error(
                "$.schedule.calendar",
                "schedule-calendar",
                format!("calendar must be a non-empty array, found {v}"),
                FIX,
            );
            return;
        };
        for (i, e) in list.iter().enumerate() {
            let p = format!("$.schedule.calendar[{i}]");
            let Some(obj) = e.as_object() else {
                self.error(
                    &p,
                    "schedule-calendar",
                    format!("a calendar entry must be an object, found {}", kind(e)),
                    FIX,
                );
                continue;
            };
            self.unknown_fields(&p, obj, &["time", "daysOfWeek"]);
            let time_ok = obj.get("time").and_then(Value::as_str).is_some_and(|t| {
                let b = t.as_bytes();
                b.len() == 5
                    && b[2] == b':'
                    && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
                    && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
                    && t[..2]
                        .bytes()
                        .chain(t[3..].bytes())
                        .all(|c| c.is_ascii_digit())
            });
            if !time_ok {
                self.error(
                    &format!("{p}.time"),
                    "schedule-calendar",
                    format!(
                        "time must be \"HH:MM\" (24-hour), found {}",
                        obj.get("time").map_or("nothing".into(), |t| t.to_string())
                    ),
                    FIX,
                );
            }
            let days = obj.get("daysOfWeek").and_then(Value::as_array);
            match days {
                Some(d) if !d.is_empty() => {
                    for (j, day) in d.iter().enumerate() {
                        if !day.as_str().is_some_and(is_day) {
                            self.error(
                                &format!("{p}.daysOfWeek[{j}]"),
                                "schedule-calendar",
                                format!("{day} is not a day of the week"),
                                "use English day names: \"Monday\" .. \"Sunday\"",
                            );
                        }
                    }
                }
                _ => self.error(
                    &format!("{p}.daysOfWeek"),
                    "schedule-calendar",
                    "daysOfWeek must be a non-empty array of day names".into(),
                    FIX,
                ),
            }
        }
    }

    /// Returns whether the host OS is included (true when osFilter is unusable, so the
    /// binary is still checked).
    fn check_os_filter(&mut self, root: &Map<String, Value>, host: Os) -> bool {
        let Some(f) = root.get("osFilter") else {
            self.error(
                "$.osFilter",
                "os-filter-missing",
                "\"osFilter\" is missing: the agent cannot tell where the job runs".into(),
                "add \"osFilter\": {\"windows\": true, \"linux\": true, \"macOS\": true} \
                 (false for each OS you ship no binary for)",
            );
            return true;
        };
        let Some(obj) = f.as_object() else {
            self.field_type("$.osFilter", f, "an object", "windows/linux/macOS booleans");
            return true;
        };
        self.unknown_fields("$.osFilter", obj, OS_KEYS);
        let mut any = false;
        for key in OS_KEYS {
            match obj.get(*key) {
                Some(Value::Bool(b)) => any |= b,
                None => {}
                Some(v) => self.field_type(&format!("$.osFilter.{key}"), v, "true or false", key),
            }
        }
        if !any {
            self.error(
                "$.osFilter",
                "os-filter-none",
                "osFilter matches no operating system: the job runs nowhere".into(),
                "set \"windows\", \"linux\" and/or \"macOS\" to true",
            );
        }
        obj.get(host.key())
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Returns allowedPublications when it is a usable list.
    fn check_mqtt(&mut self, root: &Map<String, Value>) -> Option<Vec<String>> {
        const FIX: &str = "add \"mqttTopics\": {\"allowedPublications\": [\"KeeperLogger\"], \
                           \"allowedSubscriptions\": []}";
        let Some(m) = root.get("mqttTopics") else {
            self.error(
                "$.mqttTopics",
                "mqtt-topics-missing",
                "no \"mqttTopics\": the agent does not set KEEPER_JOB_ID/KEEPER_JOB_NAME and \
                 the broker lets the task publish nothing"
                    .into(),
                FIX,
            );
            return None;
        };
        let Some(obj) = m.as_object() else {
            self.field_type(
                "$.mqttTopics",
                m,
                "an object",
                "allowedPublications and allowedSubscriptions",
            );
            return None;
        };
        self.unknown_fields("$.mqttTopics", obj, MQTT_FIELDS);
        let mut publications = None;
        for key in MQTT_FIELDS {
            let p = format!("$.mqttTopics.{key}");
            let Some(v) = obj.get(*key) else {
                continue;
            };
            let Some(list) = v.as_array() else {
                self.field_type(&p, v, "an array of topic strings", key);
                continue;
            };
            let mut topics = Vec::new();
            for (i, t) in list.iter().enumerate() {
                match t.as_str() {
                    Some(s) if valid_topic_filter(s) => topics.push(s.to_string()),
                    _ => self.error(
                        &format!("{p}[{i}]"),
                        "mqtt-topic",
                        format!("{t} is not a usable MQTT topic"),
                        "use a non-empty topic string without spaces at either end, e.g. \
                         \"Jobs/my-job/events\"",
                    ),
                }
            }
            if *key == "allowedPublications" {
                publications = Some(topics);
            }
        }
        let has_log = publications
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t == LOG_TOPIC));
        if !has_log {
            self.error(
                "$.mqttTopics.allowedPublications",
                "mqtt-keeper-logger",
                "allowedPublications does not list \"KeeperLogger\": every log record would be \
                 denied"
                    .into(),
                "add \"KeeperLogger\" to mqttTopics.allowedPublications",
            );
        }
        publications
    }

    fn check_event_topic(
        &mut self,
        root: &Map<String, Value>,
        id: Option<&str>,
        publications: Option<&[String]>,
    ) {
        let publications = publications.unwrap_or_default();
        match root.get("eventTopic") {
            Some(Value::String(t)) => {
                if t.is_empty() || t.contains(['+', '#', '\0']) {
                    self.error(
                        "$.eventTopic",
                        "event-topic",
                        format!("eventTopic {t:?} is not a topic name (empty, or has + or #)"),
                        "use a plain topic such as \"Jobs/my-job/events\"",
                    );
                } else if !topic_allowed(t, publications) {
                    self.error(
                        "$.eventTopic",
                        "event-topic",
                        format!("eventTopic {t:?} is not in allowedPublications: every event would be denied"),
                        &format!("add {t:?} to mqttTopics.allowedPublications"),
                    );
                }
            }
            Some(v) => self.field_type("$.eventTopic", v, "a string", "the event topic"),
            None => {
                let Some(id) = id else { return };
                let default = format!("Jobs/{id}/events");
                if topic_allowed(&default, publications) {
                    return;
                }
                // An events topic for some other id is most likely a renamed job.
                if let Some(other) = publications
                    .iter()
                    .find(|t| t.starts_with("Jobs/") && t.ends_with("/events"))
                {
                    self.warning(
                        "$.mqttTopics.allowedPublications",
                        "event-topic-default",
                        format!(
                            "allowedPublications lists {other:?}, but this job's default event \
                             topic is {default:?}: events would be denied"
                        ),
                        &format!("list {default:?} instead, or set \"eventTopic\": {other:?}"),
                    );
                }
            }
        }
    }

    fn check_tasks(
        &mut self,
        root: &Map<String, Value>,
        agent_root: Option<&Path>,
        host_included: bool,
        host: Os,
    ) {
        let list = match root.get("tasks") {
            Some(Value::Array(l)) if !l.is_empty() => l,
            Some(Value::Array(_)) | None => {
                self.error(
                    "$.tasks",
                    "tasks-missing",
                    "the job has no tasks".into(),
                    "add \"tasks\": [{\"id\": \"main\", \"command\": \"my-tool\", \"arguments\": \
                     \"--keeper-api-base={KeeperApiBaseUrl}\"}]",
                );
                return;
            }
            Some(v) => {
                self.field_type("$.tasks", v, "an array", "the tasks to run in order");
                return;
            }
        };
        let mut ids = HashSet::new();
        for (i, t) in list.iter().enumerate() {
            let p = format!("$.tasks[{i}]");
            let Some(task) = t.as_object() else {
                self.field_type(&p, t, "an object", "one task");
                continue;
            };
            self.unknown_fields(&p, task, TASK_FIELDS);
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
                Some(v) => self.field_type(&format!("{p}.id"), v, "a string", "the task id"),
            }
            if let Some(v) = task.get("name").filter(|v| !v.is_string()) {
                self.field_type(&format!("{p}.name"), v, "a string", "the task name");
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
                _ => {
                    self.error(
                        &format!("{p}.command"),
                        "task-command",
                        "the task has no \"command\"".into(),
                        "set \"command\" to the tool's name: the agent runs \
                         Jobs/bin/{command}/{command}",
                    );
                    None
                }
            };
            self.check_arguments(&p, task);
            if let Some(v) = task.get("ExecutionType") {
                match v.as_str() {
                    Some(s) if EXECUTION_TYPES.contains(&s) => {}
                    _ => self.error(
                        &format!("{p}.ExecutionType"),
                        "task-execution-type",
                        format!("unknown ExecutionType {v}"),
                        "use \"Service\" (the default), \"User\" or \"UserDesktop\"",
                    ),
                }
            }
            if let Some(v) = task.get("timeoutSeconds") {
                if v.as_u64().is_none_or(|n| n == 0) {
                    self.error(
                        &format!("{p}.timeoutSeconds"),
                        "task-timeout",
                        format!("timeoutSeconds must be a positive whole number, found {v}"),
                        "e.g. \"timeoutSeconds\": 300",
                    );
                }
            }
            if let Some(v) = task.get("continueOnFailure").filter(|v| !v.is_boolean()) {
                self.field_type(
                    &format!("{p}.continueOnFailure"),
                    v,
                    "true or false",
                    "whether later tasks run after this one fails",
                );
            }
            if let Some(v) = task.get("scriptType") {
                if !v
                    .as_str()
                    .is_some_and(|s| SCRIPT_TYPES.iter().any(|k| k.eq_ignore_ascii_case(s)))
                {
                    self.warning(
                        &format!("{p}.scriptType"),
                        "task-script-type",
                        format!("unrecognised scriptType {v}"),
                        "use \"Auto\" (the agent picks the interpreter from the file)",
                    );
                }
            }
            let exe_path = match task.get("executablePath") {
                None | Some(Value::Null) => None,
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
                Some(v) => {
                    self.field_type(
                        &format!("{p}.executablePath"),
                        v,
                        "a non-empty string",
                        "the binary's absolute path",
                    );
                    None
                }
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
    fn check_arguments(&mut self, p: &str, task: &Map<String, Value>) {
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
            Some(Value::Array(list)) => {
                // Non-string elements are written as their JSON text: the suggestion is
                // what the author most likely meant, and it stays copy-pasteable.
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
                self.error(
                    &path,
                    "task-arguments",
                    "arguments is an array, but the agent takes one string, a command line it \
                     splits into the task's arguments (whitespace separates, double quotes group)"
                        .into(),
                    &format!("write \"arguments\": {}", Value::from(joined)),
                );
                return;
            }
            Some(v) => {
                self.error(
                    &path,
                    "task-arguments",
                    format!(
                        "arguments must be one string, a command line, found {}",
                        kind(v)
                    ),
                    &format!(
                        "write \"arguments\": {}",
                        Value::from(format!("{API_BASE_ARGUMENT} ..."))
                    ),
                );
                return;
            }
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

/// True when `topic` is matched by one of the ACL `filters` (MQTT `+`/`#` wildcards).
pub fn topic_allowed(topic: &str, filters: &[String]) -> bool {
    filters.iter().any(|f| topic_matches(f, topic))
}

/// MQTT topic filter matching.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn valid_topic_filter(s: &str) -> bool {
    !s.is_empty() && s.trim() == s && !s.contains(['\n', '\r', '\0'])
}

/// `{root}/Jobs/bin/{command}/{command}` (`.exe` on Windows).
pub fn bin_path(root: &Path, command: &str, host: Os) -> PathBuf {
    root.join("Jobs")
        .join("bin")
        .join(command)
        .join(format!("{command}{}", host.exe_suffix()))
}

/// Resolves a task's binary like the agent: `executablePath` when set (and then only it),
/// else `{agent_root}/Jobs/bin/{command}/{command}`, else `command` on `PATH`. On failure,
/// returns the places tried.
pub fn resolve_binary(
    command: &str,
    executable_path: Option<&str>,
    agent_root: Option<&Path>,
    host: Os,
) -> Result<PathBuf, Vec<String>> {
    if let Some(p) = executable_path {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(vec![p.display().to_string()])
        };
    }
    let mut tried = Vec::new();
    if let Some(root) = agent_root {
        let p = bin_path(root, command, host);
        if is_executable(&p) {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    if !command.contains(['/', '\\']) && !command.is_empty() {
        let exe = format!("{command}{}", host.exe_suffix());
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let p = dir.join(&exe);
                if is_executable(&p) {
                    return Ok(p);
                }
            }
        }
        tried.push(format!("{exe} on PATH"));
    }
    Err(tried)
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

fn is_day(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    DAYS.iter()
        .any(|d| *d == l || (l.len() == 3 && d.starts_with(&l)))
}

/// Checks a standard 5-field cron expression (minute hour day-of-month month day-of-week),
/// with lists, ranges, steps, month and day names, and `?`, `L`, `W`, `#` where Quartz-style
/// schedulers accept them.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{expr:?} has {} field(s), expected 5 (seconds and years are not supported)",
            fields.len()
        ));
    }
    const MONTHS: &[&str] = &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DOWS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day-of-month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day-of-week", 0, 7, DOWS, 0),
    ];
    for (field, (name, lo, hi, names, base)) in fields.iter().zip(specs) {
        let value = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(i as u32 + base);
            }
            let n: u32 = s
                .parse()
                .map_err(|_| format!("{name} field {field:?}: {s:?} is not a number"))?;
            if n < lo || n > hi {
                return Err(format!("{name} field {field:?}: {n} is outside {lo}-{hi}"));
            }
            Ok(n)
        };
        for item in field.split(',') {
            if item == "?" && (name == "day-of-month" || name == "day-of-week") {
                continue;
            }
            let special = match name {
                "day-of-month" => {
                    item == "L"
                        || item == "LW"
                        || item.strip_suffix('W').is_some_and(|d| value(d).is_ok())
                }
                "day-of-week" => {
                    item == "L"
                        || item.strip_suffix('L').is_some_and(|d| value(d).is_ok())
                        || item.split_once('#').is_some_and(|(d, k)| {
                            value(d).is_ok() && k.parse::<u8>().is_ok_and(|k| (1..=5).contains(&k))
                        })
                }
                _ => false,
            };
            if special {
                continue;
            }
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().ok().filter(|s| *s > 0).ok_or(format!(
                        "{name} field {field:?}: step {s:?} must be a positive number"
                    ))?;
                    (r, Some(step))
                }
                None => (item, None),
            };
            if range == "*" {
                continue;
            }
            if range.is_empty() {
                return Err(format!("{name} field {field:?} has an empty item"));
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    if a > b {
                        return Err(format!(
                            "{name} field {field:?}: range {a}-{b} runs backwards"
                        ));
                    }
                }
                None => {
                    value(range)?;
                    let _ = step;
                }
            }
        }
    }
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by `Z` or `+00:00`.
pub fn parse_utc(s: &str) -> Result<SystemTime, String> {
    let (body, zone) = if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        (b, "Z")
    } else if s.len() > 6 && (s.ends_with("+00:00") || s.ends_with("-00:00")) {
        (&s[..s.len() - 6], "Z")
    } else if s.len() > 6
        && matches!(s.as_bytes()[s.len() - 6], b'+' | b'-')
        && s.as_bytes()[s.len() - 3] == b':'
    {
        (&s[..s.len() - 6], "offset")
    } else {
        (s, "")
    };
    let (date, time) = body
        .split_once(['T', 't', ' '])
        .ok_or("expected a date and a time separated by T")?;
    let d: Vec<&str> = date.split('-').collect();
    let num = |x: &str, len: usize, what: &str| -> Result<u64, String> {
        if x.len() != len || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad {what} {x:?}"));
        }
        x.parse().map_err(|_| format!("bad {what} {x:?}"))
    };
    if d.len() != 3 {
        return Err("the date must be YYYY-MM-DD".into());
    }
    let (y, mo, da) = (
        num(d[0], 4, "year")?,
        num(d[1], 2, "month")?,
        num(d[2], 2, "day")?,
    );
    let t: Vec<&str> = time.split(':').collect();
    if t.len() < 2 || t.len() > 3 {
        return Err("the time must be HH:MM or HH:MM:SS".into());
    }
    let h = num(t[0], 2, "hour")?;
    let mi = num(t[1], 2, "minute")?;
    let sec = match t.get(2) {
        Some(s) => {
            let whole = s.split_once('.').map_or(*s, |(w, frac)| {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    "x"
                } else {
                    w
                }
            });
            num(whole, 2, "second")?
        }
        None => 0,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || da == 0 || da > mdays[(mo - 1) as usize] {
        return Err(format!("{date} is not a calendar date"));
    }
    if h > 23 || mi > 59 || sec > 59 {
        return Err(format!("{time} is not a time of day"));
    }
    match zone {
        "Z" => {}
        "offset" => {
            return Err("the time has a non-UTC offset: convert it to UTC and end with Z".into())
        }
        _ => return Err("no time zone: end with Z to say UTC".into()),
    }
    // days_from_civil (Howard Hinnant).
    let (yy, m) = (y as i64 - i64::from(mo <= 2), mo as i64);
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + da as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64;
    let secs =
        u64::try_from(secs).map_err(|_| "dates before 1970 are not supported".to_string())?;
    Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions() {
        for ok in [
            "* * * * *",
            "0 2 * * 1-5",
            "*/15 0-23/2 1,15 JAN-DEC/3 MON-FRI",
            "30 4 ? * SUN",
            "0 0 L * ?",
            "0 0 15W * *",
            "0 0 * * 5L",
            "0 0 * * 1#2",
            "59 23 31 12 7",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            ", * * * *",
            "* * * FOO *",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn utc_times() {
        let t = parse_utc("2000-02-29T00:00:00Z").expect("valid");
        assert_eq!(crate::timefmt::rfc3339_utc(t), "2000-02-29T00:00:00.000Z");
        let t = parse_utc("2030-01-31T02:03:04.5+00:00").expect("valid");
        assert_eq!(crate::timefmt::rfc3339_utc(t), "2030-01-31T02:03:04.000Z");
        assert!(parse_utc("2030-01-31T02:03").is_err());
        assert!(parse_utc("2030-01-31T02:03:00+02:00").is_err());
        assert!(parse_utc("2031-02-29T00:00:00Z").is_err());
        assert!(parse_utc("2030-1-31T02:03:00Z").is_err());
        assert!(parse_utc("tomorrow").is_err());
    }

    #[test]
    fn topic_filters() {
        assert!(topic_matches("Jobs/+/events", "Jobs/a/events"));
        assert!(topic_matches("Jobs/#", "Jobs/a/events"));
        assert!(!topic_matches("Jobs/a", "Jobs/a/events"));
        assert!(topic_matches("KeeperLogger", "KeeperLogger"));
    }

    #[test]
    fn agent_root_from_jobs_dir() {
        assert_eq!(
            default_agent_root(Path::new("/opt/kepm/Jobs/x.json")),
            Some(PathBuf::from("/opt/kepm"))
        );
        assert_eq!(
            default_agent_root(Path::new("Jobs/x.json")),
            Some(PathBuf::from("."))
        );
        assert_eq!(default_agent_root(Path::new("examples/jobs/x.json")), None);
    }
}
