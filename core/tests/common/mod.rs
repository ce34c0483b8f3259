#![allow(dead_code)] // each test file uses its own subset
//! Helpers shared by the end-to-end test files.

use std::time::Duration;

use kepm_devagent::{Config, DevAgent};
use kepmlog::{Logger, Options};
use serde_json::Value;

pub const LONG: Duration = Duration::from_secs(60);

pub fn agent() -> DevAgent {
    DevAgent::start(Config::default()).expect("devagent start (is mosquitto installed?)")
}

pub fn agent_with(cfg: Config) -> DevAgent {
    DevAgent::start(cfg).expect("devagent start")
}

/// Options of a job tool started by this agent: explicit job id and token, no process args.
pub fn opts(agent: &DevAgent, job: &str) -> Options {
    Options::new("E2ETool")
        .job_id(job)
        .token("e2e")
        .api_base(agent.api_base())
        .args(Vec::<String>::new())
}

pub fn payloads(agent: &DevAgent, topic: &str, n: usize) -> Vec<Value> {
    agent
        .wait_for_messages(topic, n, LONG)
        .iter()
        .map(|m| m.json().expect("payload is JSON"))
        .collect()
}

pub fn messages_of(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            v["MetaData"]["Message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

pub fn assert_balanced(log: &Logger) {
    let s = log.stats();
    assert_eq!(
        s.accepted,
        s.delivered + s.denied + s.failed + s.pending,
        "{s:?}"
    );
}

/// Messages of the records the capture subscriber received on `topic`, once every one of
/// `want` is among them (or at the deadline). Unlike a count, this is not fooled by the
/// duplicates QoS 1 allows after a reconnect.
pub fn wait_for_all_messages(
    agent: &DevAgent,
    topic: &str,
    want: &[String],
) -> std::collections::HashSet<String> {
    let seen = || -> std::collections::HashSet<String> {
        let got: Vec<Value> = agent
            .messages_on(topic)
            .iter()
            .filter_map(|m| m.json())
            .collect();
        messages_of(&got).into_iter().collect()
    };
    wait_until(LONG, || {
        let seen = seen();
        want.iter().all(|w| seen.contains(w))
    });
    seen()
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes; returns whether it held. The
/// one wait of the tests that have nothing to block on (broker state seen from outside).
#[allow(dead_code)] // not every test file polls
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
