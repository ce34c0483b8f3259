//! One task: binary resolution, `{KeeperApiBaseUrl}` and argv, the job's environment,
//! `timeoutSeconds`, and its output shown live.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::output::{now_hms, say};
use super::report::TaskResult;
use crate::agent::DevAgent;
use crate::binary::resolve_binary;
use crate::cmdline;
use crate::lint::API_BASE_PLACEHOLDER;
use crate::os::Os;
use crate::wait::wait_until;

/// Task output lines kept for the `--json` file (all are printed).
const MAX_OUTPUT_LINES: usize = 10_000;

pub(super) struct TaskEnv<'a> {
    pub(super) agent: &'a DevAgent,
    pub(super) agent_root: Option<&'a Path>,
    pub(super) host: Os,
    pub(super) job_id: &'a str,
    pub(super) job_name: &'a str,
    pub(super) has_topics: bool,
    pub(super) cwd: Option<&'a Path>,
    pub(super) cancel: Option<&'a AtomicBool>,
}

pub(super) fn run_task(r: &mut TaskResult, task: &Value, env: &TaskEnv<'_>) {
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
    // As the agent's runner: the process is trusted from right after its start.
    let pid = child.id();
    env.agent.register_process(pid, env.job_id);
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
    // No timeoutSeconds: wait as long as the task runs (a century stands in for "never").
    let deadline = start + timeout.unwrap_or(Duration::from_secs(100 * 365 * 86_400));
    let mut status = None;
    let ended = wait_until(deadline, Duration::from_millis(20), || {
        match child.try_wait() {
            Ok(Some(st)) => {
                status = Some(st);
                return true;
            }
            Ok(None) => {}
            Err(e) => {
                r.error = Some(format!("waiting for the task: {e}"));
                return true;
            }
        }
        if env.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            r.cancelled = true;
            return true;
        }
        false
    });
    if !ended {
        r.timed_out = true;
    }
    if status.is_none() {
        kill_tree(&mut child);
    }
    r.duration = start.elapsed();
    env.agent.unregister_process(pid);
    if let Some(st) = status {
        r.exit_code = st.code();
    }
    // Background processes the task left behind may hold its output open: do not wait for
    // them forever.
    let deadline = Instant::now() + Duration::from_secs(2);
    wait_until(deadline, Duration::from_millis(10), || {
        readers.iter().all(JoinHandle::is_finished)
    });
    for h in readers {
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
