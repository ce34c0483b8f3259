//! Running a job file: lint, the agent stand-in with the job's ACL, each task in order.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::follow::Follower;
use super::keeperlogger::{KeeperLogger, Level};
use super::output::say;
use super::report::{print_summary, RunSummary, TaskResult};
use super::task::{run_task, TaskEnv};
use crate::agent::DevAgent;
use crate::config::Config;
use crate::error::Error;
use crate::lint::{self, LintOptions};
use crate::os::Os;
use crate::trust::{Denial, Trust};

/// How to run a job.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where `Jobs/bin/{command}/{command}` lives. Default: the directory above `Jobs/` when
    /// the job file sits in one; otherwise only `executablePath` and `PATH` are tried.
    pub agent_root: Option<PathBuf>,
    /// Write the received messages, task results and summary to this file as JSON.
    pub json_out: Option<PathBuf>,
    /// Working directory of the tasks. Default: the current directory.
    pub cwd: Option<PathBuf>,
    /// Set to stop: the running task is killed and the run ends (Ctrl-C).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Run even when lint reports errors (to see what the agent would do with a broken job).
    pub force: bool,
    /// Which processes may connect. Default: the agent's rule, [`Trust::Registry`].
    pub trust: Trust,
    /// Executables trusted although the runner did not start them: the agent's
    /// `AlternativeSignatures` (signed helpers a task's script may start).
    pub trusted_exes: Vec<PathBuf>,
    /// How long a task stays unregistered after its start: the agent's registration race
    /// (`--registration-delay`). Default: zero.
    pub registration_delay: Duration,
    /// How an undeclared topic is answered. Default: the agent's, [`Denial::Silent`].
    pub denial: Denial,
    /// KeeperLogger's minimum level. Default: the documented `system.logging.level`, Warning.
    pub keeperlogger_level: Option<Level>,
    /// Where the KeeperLogger stand-in writes. Default: `{agent root}/Logs/KeeperLogger.log`
    /// when the agent root is known; otherwise nothing is written.
    pub keeperlogger_file: Option<PathBuf>,
    /// Parameter values, as the trigger API's JSON body supplies them (`--param NAME=VALUE`).
    pub params: Vec<(String, String)>,
    /// Run as triggered by this event (`--event NAME`); the job must have that trigger.
    pub event: Option<String>,
}

/// Runs the job in `job_file`, printing the log view as it goes. Returns the summary (also
/// printed); `Err` only when the JSON file cannot be written.
pub fn run_job(job_file: &Path, opts: &RunOptions) -> Result<RunSummary, Error> {
    let lint_opts = LintOptions {
        agent_root: opts.agent_root.clone(),
        ..LintOptions::default()
    };
    let report = lint::lint_file(job_file, &lint_opts);
    let mut summary = RunSummary {
        lint_errors: report.errors(),
        lint_warnings: report.warnings(),
        ..RunSummary::default()
    };
    for f in &report.findings {
        say(&f.to_string());
    }
    let job = match (&report.job, summary.lint_errors) {
        (Some(job), 0) => job.clone(),
        (Some(job), _) if opts.force => {
            say(&format!(
                "kepm-devagent run: {} lint error(s); running anyway (--force)",
                summary.lint_errors
            ));
            job.clone()
        }
        _ => {
            say(&format!(
                "kepm-devagent run: {} lint error(s): fix them first (kepm-devagent lint {}), \
                 or pass --force",
                summary.lint_errors,
                job_file.display()
            ));
            return finish(summary, opts);
        }
    };
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    summary.job_id = s(&job, "id");
    let job_name = s(&job, "name");
    let host = Os::current();
    if job
        .get("osFilter")
        .and_then(|f| f.get(host.key()))
        .and_then(Value::as_bool)
        != Some(true)
    {
        summary.not_started = Some(format!(
            "osFilter excludes {}: the agent on this machine would not run the job",
            host.key()
        ));
        say(&format!(
            "kepm-devagent run: {}",
            summary.not_started.as_deref().unwrap_or_default()
        ));
        return finish(summary, opts);
    }
    let values = match super::params::prepare(&job, &opts.params, opts.event.as_deref()) {
        Ok(v) => v,
        Err(e) => {
            say(&format!("kepm-devagent run: {e}"));
            summary.not_started = Some(e);
            return finish(summary, opts);
        }
    };
    let topics = |k: &str| -> Vec<String> {
        job.get("mqttTopics")
            .and_then(|m| m.get(k))
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let publications = topics("allowedPublications");
    let subscriptions = topics("allowedSubscriptions");
    let has_topics = !publications.is_empty() || !subscriptions.is_empty();
    let event_topic = job
        .get("eventTopic")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("Jobs/{}/events", summary.job_id));

    let agent = match DevAgent::start(Config {
        allow: publications.clone(),
        allow_subscribe: subscriptions,
        log_publishes: true,
        trust: opts.trust,
        trusted_exes: opts.trusted_exes.clone(),
        registration_delay: opts.registration_delay,
        denial: opts.denial,
        ..Config::default()
    }) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            summary.not_started = Some(format!("cannot start the agent stand-in: {e}"));
            say(&format!("kepm-devagent run: {e}"));
            return finish(summary, opts);
        }
    };
    say(&format!(
        "== job {} ({job_name}) from {}",
        summary.job_id,
        job_file.display()
    ));
    say(&format!(
        "== agent stand-in: Plugin Settings at {}, MQTT over TLS at {}:{}; the job may publish to: \
         {}; event topic {}; times are UTC",
        agent.settings_url(),
        agent.broker_host(),
        agent.broker_port(),
        publications.join(", "),
        event_topic
    ));

    let keeperlogger = KeeperLogger::new(
        opts.keeperlogger_level.unwrap_or(Level::DEFAULT_MINIMUM),
        opts.keeperlogger_file.clone().or_else(|| {
            report
                .agent_root
                .as_ref()
                .map(|r| r.join("Logs").join("KeeperLogger.log"))
        }),
    );
    say(&format!(
        "== process trust: {}; undeclared topics: {}; KeeperLogger writes {} and above to {}",
        match opts.trust {
            Trust::Registry => "only the task processes the runner starts (and --trust-exe)",
            Trust::AnyLocalProcess => "any local process (--trust any: NOT the agent's rule)",
        },
        match opts.denial {
            Denial::Silent => "success PUBACK, dropped (as the agent)",
            Denial::Visible => "PUBACK 0x87 (--deny-visible)",
        },
        keeperlogger.minimum.name(),
        keeperlogger.path.as_ref().map_or(
            "nowhere (no agent root: pass --agent-root)".to_string(),
            |p| { p.display().to_string() }
        ),
    ));
    let follower = Follower::start(Arc::clone(&agent), keeperlogger);
    let tasks = job
        .get("tasks")
        .and_then(Value::as_array)
        .map(|t| super::params::apply(t, &values))
        .unwrap_or_default();
    for (n, v) in &values {
        say(&format!("== parameter {n} = {v:?}"));
    }
    if let Some(e) = &opts.event {
        say(&format!("== triggered by event {e}"));
    }
    let agent_root = report.agent_root.clone();
    let mut failed_hard = false;
    for (i, task) in tasks.iter().enumerate() {
        let mut r = TaskResult {
            id: task
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("task{}", i + 1)),
            name: s(task, "name"),
            command: s(task, "command"),
            continue_on_failure: task
                .get("continueOnFailure")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ..TaskResult::default()
        };
        if failed_hard {
            r.skipped = true;
            say(&format!(
                "== task {}: skipped (an earlier task failed without continueOnFailure)",
                r.id
            ));
            summary.tasks.push(r);
            continue;
        }
        if let Some(note) = super::params::execution_note(task) {
            say(&format!("== task {}: {note}", r.id));
        }
        run_task(
            &mut r,
            task,
            &TaskEnv {
                agent: &agent,
                agent_root: agent_root.as_deref(),
                host,
                job_id: &summary.job_id,
                job_name: &job_name,
                has_topics,
                cwd: opts.cwd.as_deref(),
                cancel: opts.cancel.as_deref(),
            },
        );
        follower.settle(&agent);
        say(&format!("== task {}: {}", r.id, r.outcome()));
        let carry_on = r.succeeded() || (r.continue_on_failure && !r.cancelled);
        if !carry_on {
            failed_hard = true;
        } else if !r.succeeded() {
            say(&format!(
                "== task {}: failed, continuing (continueOnFailure)",
                r.id
            ));
        }
        summary.tasks.push(r);
    }
    if let Some((messages, keeperlogger)) = follower.stop() {
        summary.messages = messages;
        summary.keeperlogger = Some(keeperlogger.summary());
    }
    summary.denial = opts.denial;
    summary.denied = agent.undeclared_publishes();
    summary.refusals = agent.refusals();
    summary.admitted = agent.admitted_pids();
    summary.clients = agent.clients();
    match Arc::try_unwrap(agent) {
        Ok(a) => a.shutdown(),
        Err(a) => a.close(),
    }
    finish(summary, opts)
}

fn finish(summary: RunSummary, opts: &RunOptions) -> Result<RunSummary, Error> {
    print_summary(&summary);
    if let Some(path) = &opts.json_out {
        let text = serde_json::to_string_pretty(&summary.to_json())
            .map_err(|e| Error::Invalid(format!("encoding the run as JSON: {e}")))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        say(&format!("== wrote {}", path.display()));
    }
    Ok(summary)
}
