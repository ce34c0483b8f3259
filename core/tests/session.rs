#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The MQTT v5 session against what a broker may grant or refuse: CONNACK refusals, a
//! Receive Maximum of 1, a Maximum Packet Size below a record. Real Mosquitto over TLS.

use std::time::{Duration, Instant};

use kepm_devagent::{Config, DevAgent, Trust};
use kepmlog::Logger;

mod common;
use common::*;

#[test]
fn a_refused_connack_is_reported_with_its_reason_and_retried_until_accepted() {
    let agent = agent_with(Config {
        refuse_job_clients: true,
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "refused-job").stderr_diagnostics(false)).unwrap();
    for i in 0..50 {
        log.info("Refused", &format!("r {i}")).unwrap();
    }
    // The refusal is visible while it lasts, with its reason code and name.
    let deadline = Instant::now() + LONG;
    let last = loop {
        let s = log.stats();
        let last = s.last_error.clone().unwrap_or_default();
        if last.contains("CONNACK") {
            break last;
        }
        assert!(Instant::now() < deadline, "never saw a refusal: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(last.contains("0x87 Not authorized"), "{last}");
    assert!(!log.stats().connected);
    assert!(
        log.flush(Duration::from_millis(300)).is_err(),
        "nothing can be acknowledged while refused"
    );
    assert_eq!(agent.count_on("KeeperLogger"), 0);

    agent.set_refuse_job_clients(false).unwrap();
    log.flush(LONG).unwrap();
    let got = messages_of(&payloads(&agent, "KeeperLogger", 50));
    let want: Vec<String> = (0..50).map(|i| format!("r {i}")).collect();
    assert_eq!(got, want, "every record, in order, once accepted");
    let s = log.stats();
    assert_eq!((s.delivered, s.failed, s.pending), (50, 0, 0), "{s:?}");
    assert_balanced(&log);
    log.shutdown(LONG).unwrap();
}

/// The agent's runner registers a task just after starting it, so the task's first requests
/// can come first (the vendor's guide asks for a short retry). Here this process is registered
/// now and trusted only after [`RACE`]: until then Plugin Settings answers 403 and the broker
/// refuses CONNECT with 0x87.
const RACE: Duration = Duration::from_millis(1_500);

fn racing_agent(job: &str) -> DevAgent {
    let agent = agent_with(Config {
        trust: Trust::Registry,
        registration_delay: RACE,
        ..Config::default()
    });
    agent.register_process(std::process::id(), job);
    agent
}

/// A loopback port nothing listens on: the fallback broker of the race tests, so that a
/// logger that gave up on Plugin Settings cannot deliver.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The refusals of the race the agent recorded for `service`.
fn raced(agent: &DevAgent, service: &str) -> usize {
    agent
        .refusals()
        .iter()
        .filter(|r| r.service == service)
        .inspect(|r| assert!(r.is_registration_race(), "only the race refuses: {r}"))
        .count()
}

#[test]
fn plugin_settings_refused_by_the_registration_race_is_asked_again() {
    let job = "race-settings";
    let agent = racing_agent(job);
    let started = Instant::now();
    let log = Logger::new(
        opts(&agent, job)
            .fallback_broker("127.0.0.1", closed_port())
            .stderr_diagnostics(false),
    )
    .unwrap();
    log.info("Race", "after the registration").unwrap();
    log.flush(LONG).unwrap();
    let took = started.elapsed();
    let got = payloads(&agent, "KeeperLogger", 1);
    assert_eq!(
        messages_of(&got),
        ["after the registration"],
        "no fallback warning"
    );
    let s = log.stats();
    let broker = format!("{}:{}", agent.broker_host(), agent.broker_port());
    assert_eq!(s.broker.as_deref(), Some(broker.as_str()), "{s:?}");
    assert_eq!(s.last_error, None, "{s:?}");
    let refused = raced(&agent, "plugin-settings");
    assert!(
        refused >= 1,
        "the first request came before the registration"
    );
    eprintln!(
        "registration race: Plugin Settings refused {refused} time(s) in the first {} ms, \
         then answered ({} requests); delivered {} ms after Logger::new",
        RACE.as_millis(),
        agent.settings_requests(),
        took.as_millis()
    );
    log.shutdown(LONG).unwrap();
}

#[test]
fn a_connect_refused_by_the_registration_race_is_retried_quickly() {
    let job = "race-connect";
    let agent = racing_agent(job);
    let started = Instant::now();
    let log = Logger::new(
        opts(&agent, job)
            .broker(agent.broker_host(), agent.broker_port())
            .stderr_diagnostics(false),
    )
    .unwrap();
    log.info("Race", "after the registration").unwrap();
    log.flush(LONG).unwrap();
    let took = started.elapsed();
    assert_eq!(
        messages_of(&payloads(&agent, "KeeperLogger", 1)),
        ["after the registration"]
    );
    let refused = raced(&agent, "broker");
    assert!(
        refused >= 1,
        "the first CONNECT came before the registration"
    );
    eprintln!(
        "registration race: CONNECT refused {refused} time(s) in the first {} ms, then \
         accepted; delivered {} ms after Logger::new",
        RACE.as_millis(),
        took.as_millis()
    );
    log.shutdown(LONG).unwrap();
}

#[test]
fn a_receive_maximum_of_one_still_delivers_everything_in_order() {
    let agent = agent_with(Config {
        receive_maximum: Some(1),
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "window-one")).unwrap();
    let n = 2_000;
    for i in 0..n {
        log.info("Window", &format!("w {i}")).unwrap();
    }
    log.flush(LONG).unwrap();
    let got = messages_of(&payloads(&agent, "KeeperLogger", n));
    let want: Vec<String> = (0..n).map(|i| format!("w {i}")).collect();
    assert_eq!(got, want);
    assert_eq!(log.stats().delivered, n as u64);
    log.shutdown(LONG).unwrap();
}

#[test]
fn a_record_over_the_brokers_maximum_packet_size_fails_alone_with_a_clear_error() {
    let agent = agent_with(Config {
        max_packet_size: Some(2_000),
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "packet-cap").stderr_diagnostics(false)).unwrap();
    log.info("Size", "before").unwrap();
    log.info("Size", &"x".repeat(5_000)).unwrap();
    log.info("Size", "after").unwrap();
    // The record that can never be sent is settled as failed, so flush does not wait for it
    // until its deadline; flush reports it once, and the stats name the broker's limit.
    let outcome = log.flush_outcome(LONG).unwrap();
    assert_eq!(
        (outcome.undelivered, outcome.undeliverable, outcome.denied),
        (0, 1, 0)
    );
    let err = outcome.into_result().unwrap_err();
    assert_eq!(err.kind(), kepmlog::ErrorKind::Undeliverable, "{err}");
    assert!(err.to_string().contains("maximum packet size"), "{err}");
    assert_eq!(
        log.flush(LONG),
        Ok(()),
        "reported once, not by every later flush"
    );
    let got = messages_of(&payloads(&agent, "KeeperLogger", 2));
    assert_eq!(got, vec!["before".to_string(), "after".to_string()]);
    let s = log.stats();
    assert_eq!((s.delivered, s.failed, s.pending), (2, 1, 0), "{s:?}");
    let last = s.last_error.unwrap_or_default();
    assert!(last.contains("maximum packet size (2000 bytes)"), "{last}");
    assert!(s.connected, "the connection stays up");
    assert_balanced(&log);
    log.shutdown(LONG).unwrap();
}
