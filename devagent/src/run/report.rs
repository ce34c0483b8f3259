//! The results of a run ([`RunSummary`], [`TaskResult`], [`Message`]): their JSON form and
//! the summary printed at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::keeperlogger::KeeperLoggerSummary;
use super::output::say;
use crate::config::Received;
use crate::lint::LOG_TOPIC;
use crate::trust::{Denial, Refusal};
use crate::{timefmt, view};

/// What happened to one task.
#[derive(Clone, Debug, Default)]
pub struct TaskResult {
    pub id: String,
    pub name: String,
    pub command: String,
    pub binary: Option<PathBuf>,
    /// The task's `arguments` string with `{KeeperApiBaseUrl}` substituted: what the agent
    /// splits. `None` when the job gave none (or not a string).
    pub command_line: Option<String>,
    /// The argv the task got (without the program), split from `command_line`.
    pub arguments: Vec<String>,
    /// `None` when it did not start, was killed, or was skipped.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub skipped: bool,
    pub continue_on_failure: bool,
    /// Why it did not start, when it did not.
    pub error: Option<String>,
    pub duration: Duration,
    pub env_job_id: Option<String>,
    pub output: Vec<String>,
}

impl TaskResult {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    pub(super) fn outcome(&self) -> String {
        if self.skipped {
            return "skipped (an earlier task failed)".into();
        }
        if let Some(e) = &self.error {
            return format!("did not start: {e}");
        }
        if self.timed_out {
            return format!(
                "killed: exceeded timeoutSeconds after {:.1}s",
                self.duration.as_secs_f64()
            );
        }
        if self.cancelled {
            return "killed: run cancelled".into();
        }
        match self.exit_code {
            Some(c) => format!("exit {c} after {:.2}s", self.duration.as_secs_f64()),
            None => "killed by a signal".into(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "command": self.command,
            "binary": self.binary.as_ref().map(|b| b.display().to_string()),
            "command_line": self.command_line,
            "arguments": self.arguments,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "cancelled": self.cancelled,
            "skipped": self.skipped,
            "continue_on_failure": self.continue_on_failure,
            "error": self.error,
            "duration_ms": self.duration.as_millis() as u64,
            "env": {"KEEPER_JOB_ID": self.env_job_id},
            "output": self.output,
        })
    }
}

/// One message the broker accepted, with its schema violations (KeeperLogger only).
#[derive(Clone, Debug)]
pub struct Message {
    pub received: Received,
    pub violations: Vec<String>,
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub job_id: String,
    /// Lint errors that stopped the run before anything started.
    pub lint_errors: usize,
    pub lint_warnings: usize,
    /// Set when the run could not start (osFilter excludes this OS, the broker failed...).
    pub not_started: Option<String>,
    pub tasks: Vec<TaskResult>,
    pub messages: Vec<Message>,
    /// `(client id, topic)` of each publish to an undeclared topic: answered 0x87 with
    /// [`Denial::Visible`], silently dropped with [`Denial::Silent`] (see `denial`).
    pub denied: Vec<(String, String)>,
    /// How those were answered.
    pub denial: Denial,
    /// Connections and requests the trust rules refused.
    pub refusals: Vec<Refusal>,
    /// The processes let through at least once (see [`RunSummary::retried`]).
    pub admitted: std::collections::HashSet<u32>,
    pub clients: Vec<String>,
    /// What the KeeperLogger stand-in received, wrote and left out.
    pub keeperlogger: Option<KeeperLoggerSummary>,
}

impl RunSummary {
    /// Messages per level name on KeeperLogger.
    pub fn levels(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for msg in self
            .messages
            .iter()
            .filter(|m| m.received.topic == LOG_TOPIC)
        {
            let level = msg
                .received
                .json()
                .and_then(|v| v.get("MetaData").and_then(|m| m.get("LogLevel")).cloned())
                .map(|l| view::level_name(&l))
                .unwrap_or_else(|| "?".into());
            *m.entry(level).or_insert(0) += 1;
        }
        m
    }

    pub fn log_messages(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.received.topic == LOG_TOPIC)
            .count()
    }

    pub fn events(&self) -> usize {
        self.messages.len() - self.log_messages()
    }

    pub fn violations(&self) -> usize {
        self.messages.iter().map(|m| m.violations.len()).sum()
    }

    /// True when the job ran, every task exited 0 (or failed with `continueOnFailure`), no
    /// message broke the schema and the broker denied nothing.
    pub fn ok(&self) -> bool {
        self.lint_errors == 0
            && self.not_started.is_none()
            && !self.tasks.is_empty()
            && self
                .tasks
                .iter()
                .all(|t| !t.skipped && (t.succeeded() || (t.continue_on_failure && !t.cancelled)))
            && self.violations() == 0
            && self.denied.is_empty()
            && self.refused().count() == 0
    }

    /// A refusal of the registration race that its process got past by retrying: the
    /// agent's normal behaviour, not a failure.
    pub fn retried(&self, r: &Refusal) -> bool {
        r.is_registration_race() && r.pid.is_some_and(|p| self.admitted.contains(&p))
    }

    /// Refusals that fail the run: every broken rule, and a registration race the task never
    /// retried past (on the agent it would have logged nothing).
    pub fn refused(&self) -> impl Iterator<Item = &Refusal> {
        self.refusals.iter().filter(|r| !self.retried(r))
    }

    /// Connections and requests refused in the registration race and then retried past.
    pub fn raced(&self) -> usize {
        self.refusals.iter().filter(|r| self.retried(r)).count()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "job": self.job_id,
            "ok": self.ok(),
            "not_started": self.not_started,
            "lint": {"errors": self.lint_errors, "warnings": self.lint_warnings},
            "tasks": self.tasks.iter().map(TaskResult::to_json).collect::<Vec<_>>(),
            "messages": self.messages.iter().map(|m| {
                let mut v = json!({
                    "topic": m.received.topic,
                    "at": timefmt::rfc3339_utc(m.received.at),
                    "violations": m.violations,
                });
                match m.received.json() {
                    Some(p) => v["payload"] = p,
                    None => v["payload_text"] = Value::String(m.received.text()),
                }
                v
            }).collect::<Vec<_>>(),
            "denied": self.denied.iter().map(|(c, t)| json!({"client_id": c, "topic": t})).collect::<Vec<_>>(),
            "denial": match self.denial { Denial::Silent => "silent", Denial::Visible => "visible" },
            "refusals": self.refusals.iter().map(|r| json!({
                "at": timefmt::rfc3339_utc(r.at),
                "service": r.service,
                "rule": r.rule,
                "client_id": r.client_id,
                "pid": r.pid,
                "retried": self.retried(r),
                "detail": r.detail,
                "fix": r.fix,
            })).collect::<Vec<_>>(),
            "keeperlogger": self.keeperlogger.as_ref().map(|k| json!({
                "minimum_level": k.minimum.name(),
                "file": k.path.as_ref().map(|p| p.display().to_string()),
                "received": k.received,
                "written": k.written,
                "below_minimum": k.below,
                "error": k.error,
            })),
            "clients": self.clients,
            "summary": {
                "log_messages": self.log_messages(),
                "levels": self.levels(),
                "events": self.events(),
                "schema_violations": self.violations(),
                "denied_publishes": self.denied.len(),
                "refused_connections": self.refused().count(),
                "registration_race_refusals": self.raced(),
            },
        })
    }
}

pub(super) fn print_summary(s: &RunSummary) {
    say(&format!(
        "== summary: job {}",
        if s.job_id.is_empty() { "?" } else { &s.job_id }
    ));
    if s.lint_errors > 0 || s.lint_warnings > 0 {
        say(&format!(
            "  lint: {} error(s), {} warning(s)",
            s.lint_errors, s.lint_warnings
        ));
    }
    if let Some(n) = &s.not_started {
        say(&format!("  not run: {n}"));
    }
    for t in &s.tasks {
        say(&format!("  task {}: {}", t.id, t.outcome()));
    }
    let levels: Vec<String> = s.levels().iter().map(|(k, v)| format!("{k} {v}")).collect();
    say(&format!(
        "  messages: {} on KeeperLogger{}, {} event(s)",
        s.log_messages(),
        if levels.is_empty() {
            String::new()
        } else {
            format!(" ({})", levels.join(", "))
        },
        s.events()
    ));
    say(&format!("  schema violations: {}", s.violations()));
    if let Some(k) = &s.keeperlogger {
        say(&format!(
            "  KeeperLogger: {} record(s) received, {} written to {}, {} below the minimum level \
             {} (system.logging.level) and not written{}",
            k.received,
            k.written,
            k.path
                .as_ref()
                .map_or("no file (no agent root)".to_string(), |p| p
                    .display()
                    .to_string()),
            k.below,
            k.minimum.name(),
            k.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    // A silent drop is what the agent usually does: the client saw success, the record is
    // gone. So the line says so, rather than "denied", and "0" proves only that nothing was
    // dropped here, where every publish is seen.
    let label = match s.denial {
        Denial::Silent => "publishes silently dropped by the agent (undeclared topic)",
        Denial::Visible => "denied publishes",
    };
    if s.denied.is_empty() {
        say(&format!("  {label}: 0"));
    } else {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, t) in &s.denied {
            *per.entry(t.as_str()).or_insert(0) += 1;
        }
        let list: Vec<String> = per.iter().map(|(t, n)| format!("{n} to {t:?}")).collect();
        say(&format!(
            "  {label}: {} ({}): add the topic(s) to mqttTopics.allowedPublications",
            s.denied.len(),
            list.join(", ")
        ));
    }
    say(&format!("  refused connections: {}", s.refused().count()));
    for r in s.refused() {
        say(&format!("    {r}"));
    }
    if s.raced() > 0 {
        say(&format!(
            "  refused before the task's registration (the registration race; retried): {}",
            s.raced()
        ));
    }
    if !s.clients.is_empty() {
        say(&format!("  clients: {}", s.clients.join(", ")));
    }
    say(&format!(
        "  result: {}",
        if s.ok() { "OK" } else { "FAILED" }
    ));
}
