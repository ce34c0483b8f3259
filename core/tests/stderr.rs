#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! stderr as the last resort: `fallback = stderr` without a job id, and the records still
//! undelivered when shutdown's deadline passes. Each case runs in a child process (this test
//! binary again, running only `child`) so that its stderr can be read exactly.

use std::process::{Command, Output};
use std::time::Duration;

use kepm_devagent::{Config, DevAgent, SettingsMode};
use kepmlog::{Error, Fallback, Logger, Options};

mod common;
use common::*;

const SCENARIO: &str = "KEPMLOG_TEST_STDERR_SCENARIO";
const API_BASE: &str = "KEPMLOG_TEST_API_BASE";

/// The body of every child; does nothing in a normal test run.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let api_base = std::env::var(API_BASE).unwrap_or_default();
    let broker_opts = || {
        Options::new("StderrTool")
            .job_id("stderr-job")
            .token("e2e")
            .api_base(api_base.clone())
            .args(Vec::<String>::new())
            .stderr_diagnostics(false)
    };
    match scenario.as_str() {
        "fallback" => {
            // KEPMLOG_FALLBACK=stderr and no KEEPER_JOB_ID, as a tool run by hand.
            let log =
                Logger::new(Options::new("SecretScanner").args(Vec::<String>::new())).unwrap();
            let other = Logger::new(Options::new("Other").args(Vec::<String>::new())).unwrap();
            assert!(log.writes_to_stderr() && other.writes_to_stderr());
            for i in 0..10 {
                log.log_with(
                    kepmlog::Level::Warning,
                    "SecretsScan",
                    &format!("record {i}\nsecond line"),
                    "",
                    if i == 0 { "path=a.go" } else { "" },
                )
                .unwrap();
            }
            other.event_json(r#"{"phase":"done"}"#).unwrap();
            log.flush(Duration::from_millis(10)).unwrap();
            log.shutdown(Duration::from_millis(10)).unwrap();
            assert_eq!(log.info("X", "after").unwrap_err(), Error::ShutDown);
            let s = log.stats();
            assert_eq!(
                (s.printed, s.accepted, s.delivered, s.pending),
                (10, 0, 0, 0)
            );
        }
        "bad-env" => {
            let err = Logger::new(Options::new("T").args(Vec::<String>::new())).unwrap_err();
            let text = err.to_string();
            assert!(matches!(
                err,
                Error::InvalidOption {
                    option: "fallback",
                    ..
                }
            ));
            assert!(
                text.contains("KEPMLOG_FALLBACK") && text.contains("\"stderr\""),
                "{text}"
            );
            // An explicit choice wins over the environment.
            let explicit = Options::new("T")
                .args(Vec::<String>::new())
                .fallback(Fallback::Error);
            assert_eq!(Logger::new(explicit).unwrap_err(), Error::MissingJobId);
        }
        "undelivered" | "undelivered-off" => {
            let off = scenario == "undelivered-off";
            let log = Logger::new(broker_opts().undelivered_to_stderr(!off)).unwrap();
            for i in 0..20 {
                log.info("Undelivered", &format!("u {i}")).unwrap();
            }
            let err = log.shutdown(Duration::from_millis(300)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Timeout {
                        undelivered: 20,
                        ..
                    }
                ),
                "{err:?}"
            );
            let s = log.stats();
            assert_eq!(
                (s.failed, s.printed),
                (20, if off { 0 } else { 20 }),
                "{s:?}"
            );
        }
        "many" => {
            let log = Logger::new(broker_opts()).unwrap();
            for i in 0..1005 {
                log.info("Undelivered", &format!("u {i}")).unwrap();
            }
            let _ = log.shutdown(Duration::from_millis(300));
            assert_eq!(log.stats().printed, 1000);
        }
        "shared" => {
            // Two loggers on one connection: each shutdown writes only its own records.
            let a = Logger::new(broker_opts()).unwrap();
            let mut b_opts = broker_opts();
            b_opts.source = Some("OtherTool".to_string());
            let b = Logger::new(b_opts).unwrap();
            assert_eq!(a.client_id(), b.client_id());
            for i in 0..20 {
                a.info("Undelivered", &format!("u {i}")).unwrap();
                b.info("Undelivered", &format!("b {i}")).unwrap();
            }
            let _ = a.shutdown(Duration::from_millis(300));
            eprintln!("-- b");
            let _ = b.shutdown(Duration::from_millis(300));
            assert_eq!((a.stats().printed, b.stats().printed), (20, 20));
        }
        "delivered" => {
            let log = Logger::new(broker_opts()).unwrap();
            for i in 0..20 {
                log.info("Undelivered", &format!("u {i}")).unwrap();
            }
            log.shutdown(LONG).unwrap();
            let s = log.stats();
            assert_eq!((s.delivered, s.printed), (20, 0), "{s:?}");
        }
        "marker" => marker_scenario(),
        other => panic!("unknown scenario {other}"),
    }
}

/// Text put in every field a caller controls (Category, Message, CorrelationId, Context, an
/// event's JSON); it must never reach stderr through a diagnostic.
const MARKER: &str = "SECRET-MARKER-7f3c";

/// Every path on which the worker writes a diagnostic, each taken with records that carry
/// [`MARKER`]: the Plugin Settings fallback, a denied publish, a record larger than the
/// broker's maximum packet size, a lost connection, a full queue, the reconnection, and
/// records undelivered at shutdown. Records as stderr lines (the last resort) are off: they
/// are records, written on purpose.
fn marker_scenario() {
    let cat = format!("Cat-{MARKER}");
    let log_marked = |log: &Logger, i: usize| {
        log.log_with(
            kepmlog::Level::Error,
            &cat,
            &format!("message {i} {MARKER}"),
            &format!("corr-{MARKER}"),
            &format!("context {MARKER}"),
        )
        .unwrap();
    };
    let agent = DevAgent::start(Config {
        settings: SettingsMode::Status(403),
        max_packet_size: Some(2048),
        ..Config::default()
    })
    .unwrap();
    let base = |job: &str| {
        Options::new("MarkerTool")
            .job_id(job)
            .token("e2e")
            .api_base(agent.api_base())
            .fallback_broker(agent.broker_host(), agent.broker_port())
            .args(Vec::<String>::new())
            .undelivered_to_stderr(false)
    };

    // Settings refused (403): one warning, then the fallback broker.
    let log = Logger::new(base("marker-settings")).unwrap();
    log_marked(&log, 0);
    log.flush(LONG).unwrap();
    // A denied event (its topic is not allowed) and a record over the packet size.
    log.event(&serde_json::json!({ "secret": MARKER })).unwrap();
    log.info(&cat, &format!("{MARKER} {}", "x".repeat(4000)))
        .unwrap();
    assert!(log.flush(LONG).is_err());
    log.shutdown(LONG).unwrap_or_default();

    // The connection lost, a full queue meanwhile, the reconnection, and records left
    // undelivered at shutdown.
    let log = Logger::new(
        base("marker-outage")
            .queue_capacity(4)
            .overflow(kepmlog::Overflow::Drop),
    )
    .unwrap();
    log_marked(&log, 1);
    log.flush(LONG).unwrap();
    agent.stop_broker().unwrap();
    assert!(wait_until(LONG, || !log.stats().connected));
    for i in 0..20 {
        let _ = log.log_with(
            kepmlog::Level::Error,
            &cat,
            &format!("dropped {i} {MARKER}"),
            "",
            MARKER,
        );
    }
    assert!(log.stats().dropped > 0);
    agent.start_broker().unwrap();
    log.flush(LONG).unwrap();
    agent.stop_broker().unwrap();
    assert!(wait_until(LONG, || !log.stats().connected));
    log_marked(&log, 2);
    assert!(log.shutdown(Duration::from_millis(300)).is_err());
}

fn run_child(scenario: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .env_remove("KEEPER_JOB_ID")
        .env_remove("KEPMLOG_FALLBACK");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "child {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `2026-12-02T01:23:45.678Z ` is 25 bytes: what follows is the same on every run.
fn without_time(line: &str) -> &str {
    let (time, rest) = line.split_at(25.min(line.len()));
    assert!(
        time.len() == 25 && time.ends_with("Z ") && time.as_bytes()[10] == b'T',
        "{line}"
    );
    rest
}

#[test]
fn without_a_job_id_fallback_stderr_writes_each_record_once_after_one_warning() {
    let out = run_child("fallback", &[("KEPMLOG_FALLBACK", "stderr")]);
    let lines = stderr_lines(&out);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("kepmlog:")).collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert!(warnings[0].contains("KEEPER_JOB_ID is not set") && warnings[0].contains("job_id"));
    let records: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with("kepmlog:"))
        .map(|l| without_time(l))
        .collect();
    let mut want: Vec<String> = (0..10)
        .map(|i| format!("Warning  SecretScanner [SecretsScan] record {i} second line"))
        .collect();
    want[0].push_str(" (Context=path=a.go)");
    want.push("EVENT    Other {\"phase\":\"done\"}".to_string());
    assert_eq!(records, want);
}

#[test]
fn a_fallback_value_other_than_error_or_stderr_is_refused() {
    let out = run_child("bad-env", &[("KEPMLOG_FALLBACK", "console")]);
    assert!(stderr_lines(&out).is_empty(), "{out:?}");
}

fn twenty() -> Vec<String> {
    (0..20)
        .map(|i| format!("Info     StderrTool [Undelivered] u {i}"))
        .collect()
}

#[test]
fn records_undelivered_at_the_deadline_are_written_to_stderr_in_order() {
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let out = run_child("undelivered", &[(API_BASE, &agent.api_base())]);
    let lines = stderr_lines(&out);
    let records: Vec<&str> = lines.iter().map(|l| without_time(l)).collect();
    assert_eq!(records, twenty());

    let off = run_child("undelivered-off", &[(API_BASE, &agent.api_base())]);
    assert!(stderr_lines(&off).is_empty(), "{off:?}");
}

#[test]
fn past_1000_undelivered_records_the_rest_are_counted() {
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let out = run_child("many", &[(API_BASE, &agent.api_base())]);
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1001, "{:?}", lines.last());
    assert_eq!(
        without_time(&lines[999]),
        "Info     StderrTool [Undelivered] u 999"
    );
    assert_eq!(
        lines[1000],
        "kepmlog: ... and 5 more record(s) were not delivered"
    );
}

#[test]
fn loggers_sharing_a_connection_each_write_only_their_own_records() {
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let out = run_child("shared", &[(API_BASE, &agent.api_base())]);
    let lines = stderr_lines(&out);
    let split = lines.iter().position(|l| l == "-- b").unwrap();
    let a: Vec<&str> = lines[..split].iter().map(|l| without_time(l)).collect();
    assert_eq!(a, twenty());
    let b: Vec<&str> = lines[split + 1..].iter().map(|l| without_time(l)).collect();
    let want: Vec<String> = (0..20)
        .map(|i| format!("Info     OtherTool [Undelivered] b {i}"))
        .collect();
    assert_eq!(b, want);
}

#[test]
fn delivered_records_are_never_written_to_stderr() {
    let agent = agent();
    let out = run_child("delivered", &[(API_BASE, &agent.api_base())]);
    assert!(stderr_lines(&out).is_empty(), "{out:?}");
    let got = payloads(&agent, "KeeperLogger", 20);
    assert_eq!(messages_of(&got).len(), 20);
}

#[test]
fn diagnostics_never_carry_a_records_content() {
    let out = run_child("marker", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Every diagnostic path was taken, so the scan below has something to look at.
    for said in [
        "kepmlog: warning: Plugin Settings unavailable",
        "kepmlog: the broker denied a publish",
        "larger than the broker's maximum packet size",
        "kepmlog: lost the connection to",
        "kepmlog: kepmlog dropped",
        "kepmlog: connected to",
        "record(s) not delivered",
    ] {
        assert!(stderr.contains(said), "no {said:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains(MARKER) && !stdout.contains(MARKER),
        "a record's content reached stderr or stdout:\n{stderr}\n{stdout}"
    );
}
