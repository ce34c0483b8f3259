#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Plugin Settings faults: every way the agent's HTTPS endpoint can answer wrongly (a status,
//! a body that is not the settings, wrong types, a port out of range, an answer too late or
//! never, plain HTTP, a certificate for another host) ends the same way: one Warning record
//! that names the reason, the fallback broker, the records delivered, and no wait past the
//! settings timeout. A Plugin Settings answer naming a broker off loopback is refused when no
//! CA bundle can verify it.
//!
//! Each test has its own devagent (the fake HTTPS side is the devagent's, the broker a real
//! Mosquitto) and prints one `settings faults:` line with its figures (`-- --nocapture`),
//! summed up in RELIABILITY.md. Times are printed, never asserted; that the logger did not
//! wait for a late answer is asserted by order instead: the record arrived before the
//! endpoint had answered.

mod common;

use std::time::{Duration, Instant};

use common::{agent_with, messages_of, opts, LONG};
use kepm_devagent::{Config, DevAgent, SettingsMode, NON_LOOPBACK_BROKER};
use kepmlog::{Error, Logger, Options};
use serde_json::Value;

/// The settings timeout of the cases that answer at once: the fallback must not depend on it.
const PROMPT: Duration = Duration::from_secs(3);
/// The settings timeout of the cases that answer late or never.
const SHORT: Duration = Duration::from_millis(500);
/// How late a `delay` answer comes: far past [`SHORT`], well inside the test's patience.
const LATE: Duration = Duration::from_secs(20);

struct Case {
    name: &'static str,
    mode: SettingsMode,
    timeout: Duration,
    /// What the warning must say about the reason (case-insensitive).
    reason: &'static [&'static str],
    /// Verify the endpoint with the devagent's CA instead of skipping verification.
    with_ca: bool,
}

/// Runs one fault against a fresh devagent and checks the one warning, the fallback and the
/// delivery; prints the figures.
fn fallback(case: Case) {
    let agent = agent_with(Config {
        settings: case.mode.clone(),
        ..Config::default()
    });
    let api_base = agent.api_base();
    check_fallback(&case, &agent, &api_base);
}

fn check_fallback(case: &Case, agent: &DevAgent, api_base: &str) {
    let job = format!("settings-{}", case.name);
    let mut options = opts(agent, &job)
        .api_base(api_base)
        .settings_timeout(case.timeout)
        .fallback_broker(agent.broker_host(), agent.broker_port())
        .stderr_diagnostics(false);
    if case.with_ca {
        options = options.ca_bundle(agent.ca_path());
    }
    let started = Instant::now();
    let log = Logger::new(options).unwrap();
    let created = started.elapsed();
    log.info("Fallback", "delivered through the fallback")
        .unwrap();
    log.flush(LONG).unwrap();
    let delivered = started.elapsed();
    // Read before anything else can let a late answer through.
    let answers_at_delivery = agent.settings_answers();

    let got: Vec<Value> = agent
        .wait_for_messages("KeeperLogger", 2, LONG)
        .iter()
        .filter_map(|m| m.json())
        .collect();
    let warnings: Vec<&Value> = got
        .iter()
        .filter(|v| v["MetaData"]["Category"] == "kepmlog")
        .collect();
    assert_eq!(warnings.len(), 1, "{}: one warning, got {got:?}", case.name);
    let warning = warnings[0];
    assert_eq!(warning["MetaData"]["LogLevel"], 2, "a Warning record");
    let text = warning["MetaData"]["Message"].as_str().unwrap();
    assert!(text.contains("Plugin Settings unavailable"), "{text}");
    let fallback = format!("{}:{}", agent.broker_host(), agent.broker_port());
    assert!(
        text.contains(&format!("using the fallback broker {fallback}")),
        "{text}"
    );
    let lower = text.to_lowercase();
    for fragment in case.reason {
        assert!(
            lower.contains(&fragment.to_lowercase()),
            "{}: the warning should name {fragment:?}: {text}",
            case.name
        );
    }
    assert_eq!(
        messages_of(&got)
            .iter()
            .filter(|m| *m == "delivered through the fallback")
            .count(),
        1
    );
    assert_eq!(log.stats().broker, Some(fallback));
    assert_eq!(log.stats().last_error.as_deref(), Some(text));
    if matches!(case.mode, SettingsMode::Delay(_) | SettingsMode::Hang) {
        assert_eq!(
            answers_at_delivery, 0,
            "{}: the record went out only after the endpoint answered: the logger waited \
             past its settings timeout",
            case.name
        );
    }
    log.shutdown(LONG).unwrap();
    eprintln!(
        "settings faults: {}: one warning, fallback used, delivered {} ms after Logger::new \
         (settings timeout {} ms, Logger::new itself {} us); requests {}, answers before \
         delivery {}; reason: {}",
        case.name,
        delivered.as_millis(),
        case.timeout.as_millis(),
        created.as_micros(),
        agent.settings_requests(),
        answers_at_delivery,
        text
    );
}

#[test]
fn plugin_settings_403_falls_back_with_a_warning() {
    fallback(Case {
        name: "403",
        mode: SettingsMode::Status(403),
        timeout: PROMPT,
        // Asked again through the registration race, then given up on.
        reason: &[
            "403 Forbidden",
            "run the tool as a job task",
            "still 403 after",
            "not the agent's registration race",
        ],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_500_falls_back_with_a_warning() {
    fallback(Case {
        name: "500",
        mode: SettingsMode::Status(500),
        timeout: PROMPT,
        reason: &["HTTP 500"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_garbage_falls_back_with_a_warning() {
    fallback(Case {
        name: "garbage",
        mode: SettingsMode::Garbage,
        timeout: PROMPT,
        reason: &["not JSON"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_missing_keys_fall_back_with_a_warning() {
    fallback(Case {
        name: "missing-keys",
        mode: SettingsMode::MissingKeys,
        timeout: PROMPT,
        reason: &["no \"broker.host\""],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_wrong_types_fall_back_with_a_warning() {
    fallback(Case {
        name: "wrong-types",
        mode: SettingsMode::WrongTypes,
        timeout: PROMPT,
        reason: &["\"broker.host\" is not a non-empty string: 127001"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_port_out_of_range_falls_back_with_a_warning() {
    fallback(Case {
        name: "port-out-of-range",
        mode: SettingsMode::PortOutOfRange,
        timeout: PROMPT,
        reason: &["\"broker.port\" is not a port number: 70000"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_answering_late_falls_back_at_the_timeout() {
    fallback(Case {
        name: "late",
        mode: SettingsMode::Delay(LATE),
        timeout: SHORT,
        reason: &["no answer within the settings timeout of 500 ms"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_never_answering_falls_back_at_the_timeout() {
    fallback(Case {
        name: "hang",
        mode: SettingsMode::Hang,
        timeout: SHORT,
        reason: &["no answer within the settings timeout of 500 ms"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_in_plain_http_are_never_read() {
    fallback(Case {
        name: "plaintext",
        mode: SettingsMode::Plaintext,
        timeout: PROMPT,
        reason: &["does not answer in TLS: the agent's API is HTTPS only"],
        with_ca: false,
    });
}

#[test]
fn plugin_settings_with_a_certificate_from_another_ca_are_refused_with_a_ca_bundle() {
    fallback(Case {
        name: "other-ca-cert",
        mode: SettingsMode::OtherCaCert,
        timeout: PROMPT,
        reason: &[
            "does not verify against the CA bundle (ca_bundle)",
            "UnknownIssuer",
        ],
        with_ca: true,
    });
}

#[test]
fn plugin_settings_refusing_the_connection_falls_back_with_a_warning() {
    let agent = agent_with(Config::default());
    // Port 1 (tcpmux): privileged, and not a port another test's devagent can take, unlike
    // an ephemeral port freed a moment ago.
    let case = Case {
        name: "refused",
        mode: SettingsMode::Ok,
        timeout: PROMPT,
        reason: &["nothing listens there: is the agent running"],
        with_ca: false,
    };
    check_fallback(&case, &agent, "https://127.0.0.1:1");
    assert_eq!(agent.settings_requests(), 0);
}

#[test]
fn plugin_settings_port_as_string_is_used() {
    let agent = agent_with(Config {
        settings: SettingsMode::PortAsString,
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "port-string-job").fallback_broker("127.0.0.1", 1)).unwrap();
    log.info("Settings", "via string port").unwrap();
    log.flush(LONG).unwrap();
    assert_eq!(
        log.stats().broker,
        Some(format!("127.0.0.1:{}", agent.broker_port()))
    );
    assert!(agent.settings_requests() >= 1);
}

#[test]
fn plugin_settings_naming_a_broker_off_loopback_are_refused_without_a_ca_bundle() {
    let agent = agent_with(Config {
        settings: SettingsMode::NonLoopbackBroker,
        ..Config::default()
    });
    let log = Logger::new(
        opts(&agent, "settings-off-loopback")
            .fallback_broker(agent.broker_host(), agent.broker_port())
            .stderr_diagnostics(false),
    )
    .unwrap();
    log.info("Tls", "must not leave without verification")
        .unwrap();
    let err = log.flush(Duration::from_secs(2)).unwrap_err();
    let Error::Timeout {
        undelivered,
        last_error,
    } = &err
    else {
        panic!("expected a timeout naming the refusal, got {err:?}");
    };
    assert_eq!(*undelivered, 1);
    let last = last_error.clone().unwrap_or_default();
    assert!(
        last.contains(&format!("non-loopback host {NON_LOOPBACK_BROKER}")),
        "{last}"
    );
    assert!(last.contains("CA bundle (ca_bundle)"), "the fix: {last}");
    let s = log.stats();
    assert!(!s.connected, "{s:?}");
    assert_eq!(
        s.broker,
        Some(format!("{NON_LOOPBACK_BROKER}:{}", agent.broker_port()))
    );
    assert!(
        !agent
            .clients()
            .iter()
            .any(|c| c.starts_with("settings-off-loopback_")),
        "{:?}",
        agent.clients()
    );
    eprintln!("settings faults: non-loopback-broker: refused: {last}");
}

/// The settings an operator sets by hand win over discovery: the endpoint is never asked.
#[test]
fn an_explicit_broker_skips_plugin_settings() {
    let agent = agent_with(Config {
        settings: SettingsMode::Hang,
        ..Config::default()
    });
    let log = Logger::new(
        Options::new("E2ETool")
            .job_id("settings-explicit")
            .token("e2e")
            .api_base(agent.api_base())
            .args(Vec::<String>::new())
            .broker(agent.broker_host(), agent.broker_port()),
    )
    .unwrap();
    log.info("Settings", "explicit broker").unwrap();
    log.flush(LONG).unwrap();
    assert_eq!(agent.settings_requests(), 0);
}
