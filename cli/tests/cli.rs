//! The `kepmlog` binary against the devagent harness (real TLS Mosquitto).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kepm_devagent::{Config, DevAgent};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn agent(allow: &[&str]) -> DevAgent {
    DevAgent::start(Config {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        ..Config::default()
    })
    .expect("devagent starts (needs mosquitto; TMPDIR=/tmp when root)")
}

fn kepmlog(agent: &DevAgent, job: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kepmlog"))
        .args(args)
        .arg(format!("--keeper-api-base={}", agent.api_base()))
        .env("KEEPER_JOB_ID", job)
        .env_remove("KEEPER_API_BASE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kepmlog");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        // A writer thread: kepmlog reads while we write, as in a real pipeline.
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    child.wait_with_output().expect("kepmlog output")
}

fn meta(agent: &DevAgent, n: usize) -> Vec<Value> {
    agent
        .wait_for_messages("KeeperLogger", n, T)
        .iter()
        .map(|m| m.json().expect("JSON payload")["MetaData"].clone())
        .collect()
}

#[test]
fn log_sends_one_record() {
    let a = agent(&["KeeperLogger"]);
    let out = kepmlog(
        &a,
        "cli-log",
        &[
            "log",
            "--level",
            "warning",
            "--category",
            "Scan",
            "disk",
            "almost full",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = meta(&a, 1);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["LogLevel"], 2);
    assert_eq!(m[0]["Category"], "Scan");
    assert_eq!(m[0]["Message"], "disk almost full");
    // Started by a program (the test runner), not a script: token and source are "kepmlog",
    // as when kepmlog is the task and its parent the agent.
    let client = a
        .wait_for_client(|c| c.starts_with("cli-log_"), T)
        .expect("client id");
    let pid = client
        .strip_prefix("cli-log_kepmlog_")
        .expect("token kepmlog");
    assert!(pid.parse::<u32>().is_ok(), "{client}");
    assert_eq!(m[0]["Source"], "kepmlog");
}

#[test]
fn explicit_identity_options() {
    let a = agent(&["KeeperLogger"]);
    let out = kepmlog(
        &a,
        "cli-ident",
        &[
            "log",
            "--token",
            "nightly-build",
            "--source",
            "Nightly Build",
            "-c",
            "Ci",
            "done",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = meta(&a, 1);
    assert_eq!(m[0]["Source"], "Nightly Build");
    assert_eq!(m[0]["LogLevel"], 1);
    let pid_suffix = a
        .wait_for_client(|c| c.starts_with("cli-ident_nightly-build_"), T)
        .expect("client id")
        .rsplit('_')
        .next()
        .map(|p| p.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(pid_suffix, Some(true));
}

#[test]
fn pipe_streams_lines_with_detected_levels_and_skips_empty_ones() {
    let a = agent(&["KeeperLogger"]);
    let input =
        b"starting\nERROR: it broke\n\n[warn] slow disk\r\n   \nFATAL: gone\nnot: a level\n";
    let out = kepmlog(
        &a,
        "cli-pipe",
        &["pipe", "--category", "Build", "--detect-level", "--tee"],
        Some(input),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, input.to_vec(), "--tee copies stdin unchanged");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("5 line(s) sent, 2 empty line(s) skipped"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = meta(&a, 5);
    let got: Vec<(i64, &str)> = m
        .iter()
        .map(|m| {
            (
                m["LogLevel"].as_i64().expect("level"),
                m["Message"].as_str().expect("message"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "starting"),
            (3, "it broke"),
            (2, "slow disk"),
            (4, "gone"),
            (1, "not: a level"),
        ]
    );
    assert!(m.iter().all(|m| m["Category"] == "Build"));
}

#[test]
fn pipe_delivers_ten_thousand_lines() {
    let a = agent(&["KeeperLogger"]);
    let n = 10_000;
    let input: String = (0..n).map(|i| format!("line {i}\n")).collect();
    let start = Instant::now();
    let out = kepmlog(
        &a,
        "cli-bulk",
        &["pipe", "--timeout", "60"],
        Some(input.as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // kepmlog exits only after every line is acknowledged, so all are at the broker now.
    let msgs = a.wait_for_messages("KeeperLogger", n, T);
    assert_eq!(msgs.len(), n);
    let mut seen = std::collections::HashSet::new();
    for m in &msgs {
        let v = m.json().expect("JSON");
        seen.insert(v["MetaData"]["Message"].as_str().expect("msg").to_string());
    }
    assert_eq!(seen.len(), n, "every line exactly once");
    eprintln!("pipe: {n} lines delivered in {:?}", start.elapsed());
}

#[test]
fn event_publishes_to_the_event_topic_and_rejects_non_objects() {
    let a = agent(&["KeeperLogger", "Jobs/cli-event/events"]);
    let out = kepmlog(&a, "cli-event", &["event", r#"{"json": 1}"#], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = a.wait_for_messages("Jobs/cli-event/events", 1, T);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].json(), Some(serde_json::json!({"json": 1})));
    let out = kepmlog(&a, "cli-event", &["event", "[1, 2]"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kepmlog:"));
}

#[test]
fn a_denied_event_exits_non_zero() {
    let a = agent(&["KeeperLogger"]);
    let out = kepmlog(&a, "cli-denied", &["event", "--timeout", "10", "{}"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allowedPublications"), "{err}");
}

#[test]
fn undeliverable_log_exits_non_zero_within_the_timeout() {
    let a = DevAgent::start(Config {
        start_broker: false,
        ..Config::default()
    })
    .expect("devagent");
    let start = Instant::now();
    let out = kepmlog(
        &a,
        "cli-down",
        &["log", "--timeout", "2", "-q", "nobody hears this"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not delivered within 2.0s"));
    assert!(
        start.elapsed() < Duration::from_secs(2 + 10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn bad_input_is_exit_2_with_the_fix() {
    let a = agent(&["KeeperLogger"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kepmlog"));
    let out = cmd
        .args(["log", "hello"])
        .env_remove("KEEPER_JOB_ID")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mqttTopics"));
    let out = kepmlog(&a, "cli-bad", &["log", "   "], None);
    assert_eq!(out.status.code(), Some(2));
    let out = kepmlog(&a, "cli-bad", &["log", "--level", "loud", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(a.message_count(), 0);
}

/// The record lines of stderr without their timestamps (`2026-12-02T01:23:45.678Z `).
fn record_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.starts_with("kepmlog:"))
        .map(|l| {
            assert!(l.len() > 25 && &l[23..25] == "Z ", "not a record line: {l}");
            l[25..].to_string()
        })
        .collect()
}

#[test]
fn without_a_job_id_fallback_stderr_writes_the_records_and_exits_0() {
    for (flag, env) in [(true, None), (false, Some("stderr"))] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kepmlog"));
        cmd.env_remove("KEEPER_JOB_ID")
            .env_remove("KEPMLOG_FALLBACK");
        if flag {
            cmd.args(["--fallback", "stderr"]);
        }
        if let Some(v) = env {
            cmd.env("KEPMLOG_FALLBACK", v);
        }
        let out = cmd
            .args([
                "log", "--source", "Sh", "-c", "Scan", "--level", "warn", "by hand",
            ])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(record_lines(&out.stderr), ["Warning  Sh [Scan] by hand"]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(text.matches("kepmlog: no job id").count(), 1, "{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kepmlog"))
        .env_remove("KEEPER_JOB_ID")
        .args(["--fallback", "console", "log", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"error\", \"stderr\""));
}

fn twenty_lines() -> Vec<u8> {
    (0..20)
        .map(|i| format!("u {i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn pipe_writes_the_records_undelivered_at_the_timeout_to_stderr_in_order() {
    let a = DevAgent::start(Config {
        start_broker: false,
        ..Config::default()
    })
    .expect("devagent");
    let args = [
        "pipe",
        "-q",
        "--timeout",
        "0.3",
        "-c",
        "Undelivered",
        "--source",
        "Sh",
    ];
    let out = kepmlog(&a, "cli-down", &args, Some(&twenty_lines()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let want: Vec<String> = (0..20)
        .map(|i| format!("Info     Sh [Undelivered] u {i}"))
        .collect();
    assert_eq!(record_lines(&out.stderr), want);

    let mut off = args.to_vec();
    off.push("--no-undelivered-to-stderr");
    let out = kepmlog(&a, "cli-down", &off, Some(&twenty_lines()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(record_lines(&out.stderr).is_empty(), "{out:?}");
}

#[test]
fn pipe_with_the_broker_up_writes_no_record_to_stderr() {
    let a = agent(&["KeeperLogger"]);
    let args = ["pipe", "-q", "--timeout", "20", "-c", "Undelivered"];
    let out = kepmlog(&a, "cli-up", &args, Some(&twenty_lines()));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(meta(&a, 20).len(), 20);
}

/// A shell job's line that could not be delivered (the broker down for the whole run) is sent
/// by the job's next run when both pass `--spool-dir`: first, with its original Id.
#[test]
fn a_spooled_line_is_sent_by_the_next_run() {
    let a = DevAgent::start(Config {
        start_broker: false,
        ..Config::default()
    })
    .expect("devagent");
    let spool = tempfile::tempdir().expect("temp dir");
    let dir = spool.path().join("spool");
    let dir = dir.to_str().expect("UTF-8 path");
    let args = |msg: &'static str| vec!["--spool-dir", dir, "log", "--timeout", "0.5", "-q", msg];
    let first = kepmlog(&a, "cli-spool", &args("from the first run"), None);
    assert_eq!(first.status.code(), Some(1), "{first:?}");
    a.start_broker().expect("broker starts");
    let second = kepmlog(&a, "cli-spool", &args("from the second run"), None);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let got: Vec<String> = meta(&a, 3)
        .iter()
        .filter(|m| m["Category"] != "kepmlog")
        .map(|m| m["Message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, ["from the first run", "from the second run"]);
}
