#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! End-to-end tests: the real library against a real Mosquitto over TLS (MQTT v5), started by
//! the devagent harness on free loopback ports with a fresh CA.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kepm_devagent::{Config, PlainBroker};
use kepmlog::{Error, Level, Logger, Options, Overflow};
use serde_json::Value;

mod common;
use common::*;

#[test]
fn delivers_records_with_exact_shape_and_unique_ids() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "shape-job")).unwrap();
    const N: usize = 3000;
    for i in 0..N {
        log.info("Shape", &format!("record {i}")).unwrap();
    }
    log.flush(LONG).unwrap();
    let got = agent.wait_for_messages("KeeperLogger", N, LONG);
    assert_eq!(got.len(), N);
    let mut ids = HashSet::new();
    for m in &got {
        let text = String::from_utf8(m.payload.clone()).unwrap();
        assert!(text.starts_with("{\"Id\":\""), "{text}");
        assert!(
            text.contains("\",\"Version\":1,\"RespondToTopic\":null,\"MetaData\":{\"MessageType\":4,\"LogLevel\":1,\"Source\":\"E2ETool\",\"Category\":\"Shape\",\"Message\":\"record "),
            "{text}"
        );
        assert!(
            text.ends_with("\",\"CorrelationId\":\"\",\"Context\":\"\"}}"),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let id = v["Id"].as_str().unwrap().to_string();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        ids.insert(id);
    }
    assert_eq!(ids.len(), N, "every Id is fresh");
    let expected: HashSet<String> = (0..N).map(|i| format!("record {i}")).collect();
    let seen: HashSet<String> =
        messages_of(&got.iter().map(|m| m.json().unwrap()).collect::<Vec<_>>())
            .into_iter()
            .collect();
    assert_eq!(seen, expected);
    let s = log.stats();
    assert_eq!(
        (s.accepted, s.delivered, s.dropped, s.denied, s.failed),
        (N as u64, N as u64, 0, 0, 0)
    );
    assert!(s.connected);
    log.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn broker_sees_the_documented_client_id() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "secrets-scanner").token("SecretScanner")).unwrap();
    let expected = format!("secrets-scanner_SecretScanner_{}", std::process::id());
    assert_eq!(log.client_id(), expected);
    log.info("Id", "hello").unwrap();
    log.flush(LONG).unwrap();
    let seen = agent.wait_for_client(|c| c == expected, LONG);
    assert_eq!(
        seen.as_deref(),
        Some(expected.as_str()),
        "clients: {:?}",
        agent.clients()
    );
}

#[test]
fn token_defaults_to_the_executable_name_made_safe() {
    let agent = agent();
    let log = Logger::new(
        Options::new("T")
            .job_id("tok-job")
            .api_base(agent.api_base())
            .args(Vec::<String>::new()),
    )
    .unwrap();
    let token = log.client_id().split('_').nth(1).unwrap().to_string();
    assert!(
        !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{token}"
    );
    assert_eq!(
        log.client_id().matches('_').count(),
        2,
        "{}",
        log.client_id()
    );
}

#[test]
fn records_logged_before_the_broker_starts_are_delivered() {
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "early-job")).unwrap();
    for i in 0..200 {
        log.warning("Early", &format!("early {i}")).unwrap();
    }
    assert!(
        log.flush(Duration::from_millis(300)).is_err(),
        "nothing can be delivered yet"
    );
    assert_eq!(log.stats().delivered, 0);
    agent.start_broker().unwrap();
    log.flush(LONG).unwrap();
    let got = payloads(&agent, "KeeperLogger", 200);
    let seen: HashSet<String> = messages_of(&got).into_iter().collect();
    assert_eq!(
        seen,
        (0..200)
            .map(|i| format!("early {i}"))
            .collect::<HashSet<_>>()
    );
    assert_eq!(log.stats().delivered, 200);
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "restart-job").overflow(Overflow::Block(LONG))).unwrap();
    const N: usize = 30_000;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                log.info("Restart", &format!("r {i}")).unwrap();
            }
        });
        // Stop the broker while records are in flight, then bring it back.
        wait_until(LONG, || log.stats().delivered >= 2000);
        agent.stop_broker().unwrap();
        std::thread::sleep(Duration::from_millis(800));
        agent.start_broker().unwrap();
    });
    log.flush(LONG).unwrap();
    let want: Vec<String> = (0..N).map(|i| format!("r {i}")).collect();
    let seen = wait_for_all_messages(&agent, "KeeperLogger", &want);
    let missing: Vec<usize> = (0..N)
        .filter(|i| !seen.contains(&format!("r {i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let s = log.stats();
    assert!(s.reconnects >= 1, "{s:?}");
    assert_eq!(s.delivered, N as u64);
    assert_balanced(&log);
}

#[test]
fn ca_bundle_is_verified_and_a_wrong_ca_is_refused() {
    let agent = agent();
    // The right CA: verification on, delivered.
    let good = Logger::new(opts(&agent, "ca-job").ca_bundle(agent.ca_path())).unwrap();
    good.info("Tls", "verified").unwrap();
    good.flush(LONG).unwrap();

    // A CA that did not sign the broker's certificate: never connects, says why.
    let other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut other = other;
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = other.self_signed(&key).unwrap();
    let path = std::env::temp_dir().join(format!("kepmlog-wrong-ca-{}.pem", std::process::id()));
    std::fs::write(&path, cert.pem()).unwrap();
    let bad = Logger::new(
        opts(&agent, "wrong-ca-job")
            .ca_bundle(&path)
            .broker(agent.broker_host(), agent.broker_port())
            .stderr_diagnostics(false),
    )
    .unwrap();
    bad.info("Tls", "must not arrive").unwrap();
    let err = bad.flush(Duration::from_secs(2)).unwrap_err();
    let _ = std::fs::remove_file(&path);
    match &err {
        Error::Timeout {
            undelivered,
            last_error,
        } => {
            assert_eq!(*undelivered, 1);
            let last = last_error.clone().unwrap_or_default();
            assert!(
                last.to_lowercase().contains("certificate") || last.contains("UnknownIssuer"),
                "{last}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(!bad.stats().connected);
    assert!(
        !agent
            .clients()
            .iter()
            .any(|c| c.starts_with("wrong-ca-job_")),
        "{:?}",
        agent.clients()
    );
    assert!(!messages_of(
        &agent
            .messages()
            .iter()
            .filter_map(|m| m.json())
            .collect::<Vec<_>>()
    )
    .contains(&"must not arrive".to_string()));
}

#[test]
fn a_plaintext_broker_is_never_used() {
    let plain = PlainBroker::start().expect("plain broker");
    let log = Logger::new(
        Options::new("Plain")
            .job_id("plain-job")
            .token("plain")
            .broker("127.0.0.1", plain.port())
            .stderr_diagnostics(false),
    )
    .unwrap();
    log.info("Tls", "must not go in clear").unwrap();
    let err = log.flush(Duration::from_secs(2)).unwrap_err();
    assert!(
        matches!(err, Error::Timeout { undelivered: 1, .. }),
        "{err:?}"
    );
    assert!(
        plain.clients().is_empty(),
        "an MQTT session was opened in plaintext: {:?}",
        plain.clients()
    );
    assert!(!log.stats().connected);
}

#[test]
fn shutdown_reports_a_denial_it_saw_with_every_count() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "denied-at-close")).unwrap();
    log.info("Denied", "allowed record").unwrap();
    log.event(&serde_json::json!({"phase": "scan"})).unwrap();
    // No flush before: the denial is reported by shutdown, as flush would have.
    let outcome = log.shutdown_outcome(LONG).unwrap();
    assert_eq!(
        (outcome.undelivered, outcome.denied, outcome.undeliverable),
        (0, 1, 0),
        "{outcome:?}"
    );
    assert_eq!(outcome.denied_topics, vec!["Jobs/denied-at-close/events"]);
    assert_eq!(
        outcome.error().map(|e| e.kind()),
        Some(kepmlog::ErrorKind::Denied)
    );
    // Idempotent: a second shutdown has nothing left to report.
    assert_eq!(log.shutdown(LONG), Ok(()));
}

#[test]
fn a_denied_topic_is_reported_with_the_fix() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "denied-job")).unwrap();
    log.info("Denied", "allowed record").unwrap();
    log.event(&serde_json::json!({"phase": "scan", "progress": 50}))
        .unwrap();
    let err = log.flush(LONG).unwrap_err();
    match &err {
        Error::Denied { count, topics } => {
            assert_eq!(*count, 1);
            assert_eq!(topics, &vec!["Jobs/denied-job/events".to_string()]);
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(err.to_string().contains("allowedPublications"), "{err}");
    let s = log.stats();
    assert_eq!((s.delivered, s.denied), (1, 1));
    assert!(s.last_error.unwrap_or_default().contains("0x87"));
    // Reported once: the next flush has nothing new to say.
    log.flush(LONG).unwrap();
    assert_eq!(
        messages_of(&payloads(&agent, "KeeperLogger", 1)),
        vec!["allowed record"]
    );
}

#[test]
fn events_reach_an_allowed_event_topic() {
    let agent = agent_with(Config {
        allow: vec![
            "KeeperLogger".into(),
            "Jobs/event-job/events".into(),
            "custom/progress".into(),
        ],
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "event-job")).unwrap();
    log.event(&serde_json::json!({"phase": "scan", "progress": 50}))
        .unwrap();
    log.event_json(r#"{"phase":"done"}"#).unwrap();
    assert!(matches!(
        log.event(&serde_json::json!([1, 2])),
        Err(Error::InvalidEvent(_))
    ));
    assert!(matches!(
        log.event_json("{oops"),
        Err(Error::InvalidEvent(_))
    ));
    log.flush(LONG).unwrap();
    let got = payloads(&agent, "Jobs/event-job/events", 2);
    assert_eq!(got[0], serde_json::json!({"phase": "scan", "progress": 50}));
    assert_eq!(got[1], serde_json::json!({"phase": "done"}));

    let custom = Logger::new(opts(&agent, "event-job").event_topic("custom/progress")).unwrap();
    custom.event(&serde_json::json!({"n": 1})).unwrap();
    custom.flush(LONG).unwrap();
    assert_eq!(
        payloads(&agent, "custom/progress", 1)[0],
        serde_json::json!({"n": 1})
    );
}

#[test]
fn queue_overflow_is_counted_exactly_and_reported() {
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let log = Logger::new(
        opts(&agent, "overflow-job")
            .queue_capacity(10)
            .stderr_diagnostics(false),
    )
    .unwrap();
    let mut ok = 0;
    let mut full = 0;
    for i in 0..50 {
        match log.info("Overflow", &format!("o {i}")) {
            Ok(()) => ok += 1,
            Err(Error::QueueFull { capacity: 10 }) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, full), (10, 40));
    let s = log.stats();
    assert_eq!((s.accepted, s.dropped), (10, 40));
    agent.start_broker().unwrap();
    log.flush(LONG).unwrap();
    let got = payloads(&agent, "KeeperLogger", 11);
    let msgs = messages_of(&got);
    for i in 0..10 {
        assert!(msgs.contains(&format!("o {i}")), "{msgs:?}");
    }
    let report = got
        .iter()
        .find(|v| v["MetaData"]["Category"] == "kepmlog")
        .expect("a Warning record about the drops");
    assert_eq!(report["MetaData"]["LogLevel"], 2);
    assert!(
        report["MetaData"]["Message"]
            .as_str()
            .unwrap()
            .contains("dropped 40 record(s)"),
        "{report}"
    );
}

#[test]
fn flush_and_shutdown_honour_their_deadlines_with_the_broker_down() {
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "deadline-job").stderr_diagnostics(false)).unwrap();
    for i in 0..5 {
        log.error("Deadline", &format!("d {i}")).unwrap();
    }
    let budget = Duration::from_millis(700);
    let t0 = Instant::now();
    let err = log.flush(budget).unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(err, Error::Timeout { undelivered: 5, .. }),
        "{err:?}"
    );
    assert!(took >= budget, "returned before its deadline: {took:?}");
    assert!(
        took < budget + Duration::from_secs(5),
        "ignored its deadline: {took:?}"
    );

    let t0 = Instant::now();
    let err = log.shutdown(budget).unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(err, Error::Timeout { undelivered: 5, .. }),
        "{err:?}"
    );
    assert!(
        took < budget + Duration::from_secs(5),
        "ignored its deadline: {took:?}"
    );
    let s = log.stats();
    assert_eq!((s.failed, s.delivered, s.pending), (5, 0, 0), "{s:?}");
    assert_balanced(&log);
}

#[test]
fn logging_after_shutdown_is_an_error_and_shutdown_is_idempotent() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "closed-job")).unwrap();
    log.info("Closed", "before").unwrap();
    log.shutdown(LONG).unwrap();
    assert_eq!(log.info("Closed", "after"), Err(Error::ShutDown));
    assert_eq!(log.event(&serde_json::json!({})), Err(Error::ShutDown));
    assert_eq!(log.flush(Duration::from_millis(10)), Err(Error::ShutDown));
    log.shutdown(Duration::from_millis(10)).unwrap();
    assert!(log.is_shut_down());
    assert_eq!(log.stats().delivered, 1);
    assert!(Error::ShutDown.to_string().contains("create a new logger"));
}

#[test]
fn dropping_a_logger_delivers_what_it_accepted() {
    let agent = agent();
    {
        let log = Logger::new(opts(&agent, "drop-job")).unwrap();
        for i in 0..500 {
            log.info("Drop", &format!("d {i}")).unwrap();
        }
    }
    assert_eq!(
        agent.wait_for_messages("KeeperLogger", 500, LONG).len(),
        500
    );
}

#[test]
fn bad_input_gets_errors_that_name_the_fix() {
    let agent = agent();
    let err = Logger::new(opts(&agent, "secrets_scanner")).unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_job_id");
    assert!(err.to_string().contains("hyphens"), "{err}");
    let err = Logger::new(opts(&agent, "")).unwrap_err();
    assert_eq!(err, Error::MissingJobId);
    assert!(err.to_string().contains("mqttTopics"), "{err}");
    let err = Logger::new(opts(&agent, "ok-job").token("bad token")).unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_token");
    let err = Logger::new(opts(&agent, "ok-job").queue_capacity(0)).unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_option");
    let err = Logger::new(opts(&agent, "ok-job").api_base("http://127.0.0.1:1")).unwrap_err();
    assert!(err.to_string().contains("https://"), "{err}");
    let err = Logger::new(opts(&agent, "ok-job").broker("broker.example.com", 8883)).unwrap_err();
    assert!(err.to_string().contains("ca_bundle"), "{err}");
    let err = Logger::new(opts(&agent, "ok-job").ca_bundle("/nonexistent/ca.pem")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

    let log = Logger::new(opts(&agent, "input-job")).unwrap();
    assert_eq!(log.info("C", ""), Err(Error::EmptyMessage));
    assert_eq!(log.info("C", "\r\n"), Err(Error::EmptyMessage));
    assert!("loud".parse::<Level>().is_err());
    assert_eq!(log.stats().accepted, 0);
}

#[test]
fn api_base_is_read_from_the_process_arguments() {
    let agent = agent();
    let log = Logger::new(Options::new("Args").job_id("args-job").token("args").args([
        "tool".to_string(),
        "--keeper-api-base".to_string(),
        agent.api_base(),
    ]))
    .unwrap();
    log.info("Args", "found the broker through argv").unwrap();
    log.flush(LONG).unwrap();
    assert_eq!(
        log.stats().broker,
        Some(format!("127.0.0.1:{}", agent.broker_port()))
    );
    assert!(agent.settings_requests() >= 1);
}

#[test]
fn vectors_put_the_expected_metadata_on_the_wire() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/records.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let agent = agent();
    let mut o = opts(&agent, "vector-job")
        .default_category(doc["logger"]["default_category"].as_str().unwrap());
    o.source = Some(doc["logger"]["source"].as_str().unwrap().to_string());
    let log = Logger::new(o).unwrap();
    let mut expected = Vec::new();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let input = &case["input"];
        let level = Level::from_wire(input["level"].as_i64().unwrap()).unwrap();
        assert_eq!(
            input["level_name"]
                .as_str()
                .unwrap()
                .parse::<Level>()
                .unwrap(),
            level
        );
        let s = |k: &str| input[k].as_str().unwrap().to_string();
        let result = log.log_with(
            level,
            &s("category"),
            &s("message"),
            &s("correlation_id"),
            &s("context"),
        );
        match case.get("error") {
            Some(kind) => assert_eq!(
                result.map_err(|e| e.kind().to_string()),
                Err(kind.as_str().unwrap().to_string()),
                "{name}"
            ),
            None => {
                result.unwrap_or_else(|e| panic!("{name}: {e}"));
                expected.push((name.to_string(), case["expect"].clone()));
            }
        }
    }
    log.flush(LONG).unwrap();
    let got = payloads(&agent, "KeeperLogger", expected.len());
    assert_eq!(got.len(), expected.len());
    for ((name, want), got) in expected.iter().zip(&got) {
        assert_eq!(&got["MetaData"], want, "vector {name:?}");
        assert_eq!(got["Version"], 1);
        assert_eq!(got["RespondToTopic"], Value::Null);
    }
}

#[test]
fn many_threads_logging_at_once_all_arrive() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "threads-job").overflow(Overflow::Block(LONG))).unwrap();
    const THREADS: usize = 8;
    const PER: usize = 2500;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let log = &log;
            s.spawn(move || {
                for i in 0..PER {
                    log.info("Threads", &format!("t{t} {i}")).unwrap();
                }
            });
        }
    });
    log.flush(LONG).unwrap();
    let got = payloads(&agent, "KeeperLogger", THREADS * PER);
    let seen: HashSet<String> = messages_of(&got).into_iter().collect();
    assert_eq!(seen.len(), THREADS * PER);
    assert_eq!(log.stats().delivered, (THREADS * PER) as u64);
}

/// Far past 65,535 outstanding messages: packet ids wrap many times; nothing may be lost.
#[test]
fn a_long_stream_past_the_packet_id_space_delivers_every_record() {
    let agent = agent();
    let log = Logger::new(opts(&agent, "volume-job").overflow(Overflow::Block(LONG))).unwrap();
    const N: usize = 200_000;
    for i in 0..N {
        log.info("Volume", &format!("v {i}")).unwrap();
    }
    log.flush(Duration::from_secs(120)).unwrap();
    let got = agent.wait_for_messages("KeeperLogger", N, LONG);
    let mut seen = vec![false; N];
    for m in &got {
        let v = m.json().unwrap();
        let msg = v["MetaData"]["Message"].as_str().unwrap();
        let i: usize = msg.trim_start_matches("v ").parse().unwrap();
        seen[i] = true;
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} of {N} records missing");
    assert_eq!(log.stats().delivered, N as u64);
}
