//! `kepm-devagent run`: runs a job locally the way the agent's job runner does, and prints
//! the operator's log view.
//!
//! Lint first; then the HTTPS Plugin Settings endpoint and a Mosquitto whose ACL is the job's
//! `mqttTopics.allowedPublications`; then each task in order (binary resolved like the agent,
//! `{KeeperApiBaseUrl}` substituted in the `arguments` string, which is then split into argv
//! by the agent's rules ([`cmdline::split_command_line`]), `KEEPER_JOB_ID`/`KEEPER_JOB_NAME`
//! only when `mqttTopics` has an entry, `timeoutSeconds` enforced, `continueOnFailure`
//! honoured), with the task's output and every received message shown live; a summary at the
//! end.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::agent::DevAgent;
use crate::binary::resolve_binary;
use crate::config::{Config, Received};
use crate::error::Error;
use crate::lint::{self, LintOptions, API_BASE_PLACEHOLDER, LOG_TOPIC};
use crate::os::Os;
use crate::{cmdline, schema, timefmt, view};

/// How long to wait, after a task exits, for what it published to reach the capture.
const SETTLE: Duration = Duration::from_secs(5);
/// Task output lines kept for the `--json` file (all are printed).
const MAX_OUTPUT_LINES: usize = 10_000;

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
}

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

    fn outcome(&self) -> String {
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

    fn to_json(&self) -> Value {
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
    /// `(client id, topic)` of each publish the broker denied.
    pub denied: Vec<(String, String)>,
    pub clients: Vec<String>,
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
            "clients": self.clients,
            "summary": {
                "log_messages": self.log_messages(),
                "levels": self.levels(),
                "events": self.events(),
                "schema_violations": self.violations(),
                "denied_publishes": self.denied.len(),
            },
        })
    }
}

/// Prints whole lines to stdout; a closed stdout is ignored (the run still completes).
fn say(line: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{line}").and_then(|()| lock.flush());
}

fn now_hms() -> String {
    timefmt::hms_millis_utc(SystemTime::now())
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
    let has_topics = !publications.is_empty() || !topics("allowedSubscriptions").is_empty();
    let event_topic = job
        .get("eventTopic")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("Jobs/{}/events", summary.job_id));

    let agent = match DevAgent::start(Config {
        allow: publications.clone(),
        log_publishes: true,
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

    let follower = Follower::start(Arc::clone(&agent));
    let tasks = job
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
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
    let messages = follower.stop();
    summary.messages = messages;
    summary.denied = agent.denials();
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

fn print_summary(s: &RunSummary) {
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
    if s.denied.is_empty() {
        say("  denied publishes: 0");
    } else {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, t) in &s.denied {
            *per.entry(t.as_str()).or_insert(0) += 1;
        }
        let list: Vec<String> = per.iter().map(|(t, n)| format!("{n} to {t:?}")).collect();
        say(&format!(
            "  denied publishes: {} ({}): add the topic(s) to mqttTopics.allowedPublications",
            s.denied.len(),
            list.join(", ")
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

struct TaskEnv<'a> {
    agent: &'a DevAgent,
    agent_root: Option<&'a Path>,
    host: Os,
    job_id: &'a str,
    job_name: &'a str,
    has_topics: bool,
    cwd: Option<&'a Path>,
    cancel: Option<&'a AtomicBool>,
}

fn run_task(r: &mut TaskResult, task: &Value, env: &TaskEnv<'_>) {
    let exe_path = task
        .get("executablePath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let binary = match resolve_binary(&r.command, exe_path, env.agent_root, env.host) {
        Ok(b) => b,
        Err(tried) => {
            r.error = Some(format!("binary not found (tried {})", tried.join(", ")));
            say(&format!("== task {}: {}", r.id, r.outcome()));
            return;
        }
    };
    match task.get("arguments") {
        None | Some(Value::Null) => {}
        Some(Value::String(line)) => {
            // Substitute first, then split, as the agent does: a base URL never holds a
            // space or a quote, so where it lands cannot change how the line splits.
            let line = line.replace(API_BASE_PLACEHOLDER, &env.agent.api_base());
            r.arguments = cmdline::split_command_line(&line);
            r.command_line = Some(line);
        }
        Some(_) => {
            // Only reachable with --force: the agent would not load such a job at all, so
            // there is no argv to guess.
            r.error = Some(
                "\"arguments\" is not a string (the agent takes one command-line string)".into(),
            );
            say(&format!("== task {}: {}", r.id, r.outcome()));
            return;
        }
    }
    r.binary = Some(binary.clone());
    let mut cmd = Command::new(&binary);
    cmd.args(&r.arguments)
        .env_remove("KEEPER_JOB_ID")
        .env_remove("KEEPER_JOB_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if env.has_topics {
        cmd.env("KEEPER_JOB_ID", env.job_id)
            .env("KEEPER_JOB_NAME", env.job_name);
        r.env_job_id = Some(env.job_id.to_string());
    }
    if let Some(dir) = env.cwd {
        cmd.current_dir(dir);
    }
    #[cfg(unix)]
    {
        // Its own process group: a timeout kills the tool and whatever it started, and a
        // Ctrl-C in the terminal reaches us, not the task, so we can report it.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let timeout = task
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .map(Duration::from_secs);
    say(&format!(
        "== task {}{}: {} {}{}{}",
        r.id,
        if r.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.name)
        },
        binary.display(),
        // Quoted where needed, so each shown word is one argv element.
        cmdline::join_command_line(&r.arguments),
        match timeout {
            Some(t) => format!("  [timeout {}s]", t.as_secs()),
            None => String::new(),
        },
        if env.has_topics {
            format!("  [KEEPER_JOB_ID={}]", env.job_id)
        } else {
            "  [no KEEPER_JOB_ID: mqttTopics is empty]".to_string()
        }
    ));
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("cannot start {}: {e}", binary.display()));
            say(&format!("== task {}: {}", r.id, r.outcome()));
            return;
        }
    };
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    if let Some(o) = child.stdout.take() {
        readers.push(spawn_reader(
            o,
            format!("[task {}]", r.id),
            Arc::clone(&output),
        ));
    }
    if let Some(e) = child.stderr.take() {
        readers.push(spawn_reader(
            e,
            format!("[task {} stderr]", r.id),
            Arc::clone(&output),
        ));
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                r.error = Some(format!("waiting for the task: {e}"));
                kill_tree(&mut child);
                break None;
            }
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            r.timed_out = true;
            kill_tree(&mut child);
            break None;
        }
        if env.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            r.cancelled = true;
            kill_tree(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    r.duration = start.elapsed();
    if let Some(st) = status {
        r.exit_code = st.code();
    }
    // Background processes the task left behind may hold its output open: do not wait for
    // them forever.
    let deadline = Instant::now() + Duration::from_secs(2);
    for h in readers {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
    r.output = std::mem::take(&mut *output.lock().unwrap_or_else(|e| e.into_inner()));
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    prefix: String,
    output: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            say(&format!("{} {prefix} {line}", now_hms()));
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            if out.len() < MAX_OUTPUT_LINES {
                out.push(format!("{prefix} {line}"));
            }
        }
    })
}

/// SIGKILL to the task's whole process group (Unix), so children it started die too.
fn kill_tree(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", child.id()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Prints captured messages, denials and clients as they arrive; checks the schema.
struct Follower {
    stop: Arc<AtomicBool>,
    printed: Arc<AtomicUsize>,
    thread: Option<JoinHandle<Vec<Message>>>,
}

impl Follower {
    fn start(agent: Arc<DevAgent>) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let printed = Arc::new(AtomicUsize::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&printed));
        let thread = std::thread::spawn(move || follow(&agent, &s, &p));
        Follower {
            stop,
            printed,
            thread: Some(thread),
        }
    }

    /// Waits until every publish the broker accepted so far has been captured and printed.
    fn settle(&self, agent: &DevAgent) {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            if self.printed.load(Ordering::SeqCst) >= agent.publishes_received() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Denial lines come from the broker log, which may trail the PUBACK by a moment.
        std::thread::sleep(Duration::from_millis(150));
    }

    fn stop(mut self) -> Vec<Message> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn follow(agent: &DevAgent, stop: &AtomicBool, printed: &AtomicUsize) -> Vec<Message> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let (mut next_denial, mut next_client) = (0usize, 0usize);
    loop {
        let finishing = stop.load(Ordering::SeqCst);
        let batch = agent.messages_from(
            out.len(),
            if finishing {
                Duration::ZERO
            } else {
                Duration::from_millis(50)
            },
        );
        let clients = agent.clients();
        for c in clients.iter().skip(next_client) {
            say(&format!("{} CLIENT   connected as {c}", now_hms()));
        }
        next_client = next_client.max(clients.len());
        for m in batch {
            let mut violations = Vec::new();
            if m.topic == LOG_TOPIC {
                violations = schema::check_log_payload(&m.payload);
                if let Some(id) = m
                    .json()
                    .and_then(|v| v.get("Id").and_then(Value::as_str).map(str::to_string))
                {
                    if !ids.insert(id.clone()) {
                        violations.push(format!(
                            "Id {id} was already used by an earlier message (each needs a new UUID)"
                        ));
                    }
                }
            }
            say(&view::pretty_message(&m));
            for v in &violations {
                say(&format!("             SCHEMA   {v}"));
            }
            out.push(Message {
                received: m,
                violations,
            });
            printed.store(out.len(), Ordering::SeqCst);
        }
        let denials = agent.denials();
        for (client, topic) in denials.iter().skip(next_denial) {
            say(&format!(
                "{} DENIED   publish to {topic:?} by {client}: not in mqttTopics.allowedPublications \
                 (PUBACK 0x87)",
                now_hms()
            ));
        }
        next_denial = next_denial.max(denials.len());
        if finishing {
            return out;
        }
    }
}
