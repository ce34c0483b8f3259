#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The crash-safe spool against real Mosquitto: a task killed with SIGKILL mid-burst, and a run
//! whose broker never came up, lose nothing: the next run of the job replays what they left,
//! with the records' original Ids. Two live processes of one job never touch each other's
//! spool. Each first run is a child process (this test binary again, running only `child`), so
//! that it can be killed or can end on its own.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kepm_devagent::{Config, DevAgent};
use kepmlog::{Error, Logger, Options, Overflow};
use serde_json::Value;

mod common;
use common::*;

const SCENARIO: &str = "KEPMLOG_TEST_SPOOL_SCENARIO";
const API_BASE: &str = "KEPMLOG_TEST_API_BASE";
const SPOOL: &str = "KEPMLOG_TEST_SPOOL";
const JOB: &str = "KEPMLOG_TEST_JOB";
/// Records of the killed burst: many more than the broker takes in the moment before the kill.
const BURST: usize = 100_000;

fn options(api_base: &str, spool: &str, job: &str) -> Options {
    Options::new("SpoolTool")
        .job_id(job)
        .token("e2e")
        .api_base(api_base)
        .args(Vec::<String>::new())
        .spool_dir(spool)
        .queue_capacity(BURST + 10)
        .overflow(Overflow::Block(LONG))
        .stderr_diagnostics(false)
        .undelivered_to_stderr(false)
}

/// The body of every child; does nothing in a normal test run.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let log = Logger::new(options(&var(API_BASE), &var(SPOOL), &var(JOB))).unwrap();
    match scenario.as_str() {
        "burst" => {
            for i in 0..BURST {
                log.info("Burst", &format!("first {i}")).unwrap();
            }
            // Every record is accepted (and spooled): now the agent's timeout may strike.
            println!("logged");
            std::thread::sleep(LONG);
        }
        "outage" => {
            for i in 0..1000 {
                log.info("Outage", &format!("first {i}")).unwrap();
            }
            let e = log.shutdown(Duration::from_millis(300)).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Timeout {
                        undelivered: 1000,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        "live" => {
            log.info("Live", "the other process").unwrap();
            log.flush(LONG).unwrap();
            println!("logged");
            // Stays alive (its spool run locked) until the parent closes stdin.
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            log.info("Live", "the other process, later").unwrap();
            log.shutdown(LONG).unwrap();
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn spawn_child(scenario: &str, agent_api: &str, spool: &str, job: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(SCENARIO, scenario)
        .env(API_BASE, agent_api)
        .env(SPOOL, spool)
        .env(JOB, job)
        .env_remove("KEEPER_JOB_ID")
        .env_remove("KEPMLOG_SPOOL_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for the child's "logged" line; the rest of its output is read (and dropped) by a
/// thread, so the child never writes to a closed pipe.
fn wait_logged(child: &mut Child) {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    assert!(
        lines.any(|l| l.map(|l| l.trim() == "logged").unwrap_or(false)),
        "the child ended before logging everything"
    );
    std::thread::spawn(move || lines.for_each(drop));
}

/// Every KeeperLogger record the broker received: (Message, Id, Category).
fn received(agent: &DevAgent) -> Vec<(String, String, String)> {
    agent
        .messages_on("KeeperLogger")
        .iter()
        .filter_map(|m| m.json())
        .map(|v: Value| {
            let meta = &v["MetaData"];
            let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
            (s(&meta["Message"]), s(&v["Id"]), s(&meta["Category"]))
        })
        .collect()
}

/// Asserts that every `want` message arrived, each with one Id however often it came; returns
/// the number of duplicate copies.
fn all_once_by_id(got: &[(String, String, String)], want: &[String]) -> usize {
    let mut ids: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut copies = 0;
    for (msg, id, _) in got {
        ids.entry(msg).or_default().insert(id);
        copies += 1;
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|w| !ids.contains_key(w.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} record(s) lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for w in want {
        assert_eq!(ids[w.as_str()].len(), 1, "{w:?} arrived with different Ids");
    }
    let distinct: HashSet<&str> = got.iter().map(|(m, _, _)| m.as_str()).collect();
    copies - distinct.len()
}

fn wait_for(agent: &DevAgent, want: &[String]) -> Vec<(String, String, String)> {
    let want: HashSet<&String> = want.iter().collect();
    wait_until(LONG, || {
        let got: HashSet<String> = received(agent).into_iter().map(|r| r.0).collect();
        want.iter().all(|w| got.contains(*w))
    });
    received(agent)
}

#[test]
fn a_task_killed_mid_burst_loses_nothing_its_next_run_replays_it() {
    let agent = agent();
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();
    let mut first = spawn_child("burst", &agent.api_base(), spool_dir, "spool-kill");
    wait_logged(&mut first);
    first.kill().unwrap(); // SIGKILL: no destructor, no exit hook
    first.wait().unwrap();
    let arrived_before = received(&agent).len();

    let started = Instant::now();
    let log = Logger::new(options(&agent.api_base(), spool_dir, "spool-kill")).unwrap();
    let recovered = log.stats().recovered;
    for i in 0..100 {
        log.info("Second", &format!("second {i}")).unwrap();
    }
    log.flush(LONG).unwrap();
    let flushed = started.elapsed();

    let mut want: Vec<String> = (0..BURST).map(|i| format!("first {i}")).collect();
    want.extend((0..100).map(|i| format!("second {i}")));
    let got = wait_for(&agent, &want);
    let own: Vec<_> = got.iter().filter(|r| r.2 != "kepmlog").cloned().collect();
    let duplicates = all_once_by_id(&own, &want);
    let notes: Vec<&String> = got
        .iter()
        .filter(|r| r.2 == "kepmlog")
        .map(|r| &r.0)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&format!("recovered {recovered} record(s)"))),
        "{notes:?}"
    );
    let s = log.stats();
    assert_eq!(s.accepted, recovered + 100);
    assert_eq!((s.delivered, s.pending), (recovered + 100, 0), "{s:?}");
    log.shutdown(LONG).unwrap();
    // Everything settled: nothing is left on disk.
    let left: Vec<_> = walk(spool.path());
    assert!(left.is_empty(), "{left:?}");
    eprintln!(
        "spool: killed after logging {BURST}; {arrived_before} had arrived by then; the next \
         run recovered {recovered} and delivered them and its 100 in {flushed:?}; every record \
         arrived, {duplicates} duplicate(s) (same Id)"
    );
}

#[test]
fn records_of_a_run_whose_broker_never_came_up_arrive_with_the_next_run() {
    let agent = DevAgent::start(Config {
        start_broker: false,
        ..Config::default()
    })
    .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();
    let status = spawn_child("outage", &agent.api_base(), spool_dir, "spool-outage")
        .wait()
        .unwrap();
    assert!(status.success(), "{status:?}");
    agent.start_broker().unwrap();

    let log = Logger::new(options(&agent.api_base(), spool_dir, "spool-outage")).unwrap();
    assert_eq!(log.stats().recovered, 1000);
    log.info("Second", "second run").unwrap();
    log.shutdown(LONG).unwrap();
    let mut want: Vec<String> = (0..1000).map(|i| format!("first {i}")).collect();
    want.push("second run".to_string());
    let got = wait_for(&agent, &want);
    let own: Vec<_> = got.iter().filter(|r| r.2 != "kepmlog").cloned().collect();
    assert_eq!(all_once_by_id(&own, &want), 0, "nothing was sent twice");
    // The replay went first, in order.
    let order: Vec<&str> = own.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(order.first(), Some(&"first 0"));
    assert_eq!(order.last(), Some(&"second run"));
    assert!(walk(spool.path()).is_empty());
}

#[test]
fn a_live_process_of_the_same_job_keeps_its_spool_to_itself() {
    let agent = agent();
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();
    let mut other = spawn_child("live", &agent.api_base(), spool_dir, "spool-live");
    wait_logged(&mut other);
    let theirs = walk(spool.path());
    assert_eq!(theirs.len(), 3, "lock, ack, segment: {theirs:?}");

    let log = Logger::new(options(&agent.api_base(), spool_dir, "spool-live")).unwrap();
    assert_eq!(log.stats().recovered, 0, "a live run is never replayed");
    log.info("Live", "this process").unwrap();
    log.shutdown(LONG).unwrap();
    for f in &theirs {
        assert!(f.exists(), "{} was touched", f.display());
    }
    drop(other.stdin.take()); // let it go on and end
    assert!(other.wait().unwrap().success());
    let want: Vec<String> = [
        "the other process",
        "this process",
        "the other process, later",
    ]
    .map(String::from)
    .to_vec();
    let got = wait_for(&agent, &want);
    assert_eq!(all_once_by_id(&got, &want), 0);
    assert!(got.iter().all(|r| r.2 != "kepmlog"), "{got:?}");
    assert!(walk(spool.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn a_spool_directory_others_can_write_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let agent = agent();
    let spool = tempfile::tempdir().unwrap();
    std::fs::set_permissions(spool.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Logger::new(options(
        &agent.api_base(),
        spool.path().to_str().unwrap(),
        "spool-perm",
    ))
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            Error::InvalidOption {
                option: "spool_dir",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(text.contains("chmod 700"), "{text}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
