#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Loggers of one process with the same client id share one broker connection; each keeps its
//! own queue, statistics, flush and shutdown. Real Mosquitto over TLS.

use std::time::Duration;

use kepmlog::{Error, Logger, Options, Overflow};

mod common;
use common::*;

fn named(mut options: Options, source: impl Into<String>) -> Options {
    options.source = Some(source.into());
    options
}

/// How many times the broker saw `client_id` connect, after waiting until it saw it at least
/// `at_least` times and a moment more: the connection lines come from the broker's log, which
/// may trail the captured messages (and an extra connection must not be missed either).
fn connections_of(agent: &kepm_devagent::DevAgent, client_id: &str, at_least: usize) -> usize {
    let count = || agent.clients().iter().filter(|c| *c == client_id).count();
    wait_until(Duration::from_secs(20), || count() >= at_least);
    std::thread::sleep(Duration::from_millis(300));
    count()
}

fn many_loggers_share_one_connection(n: usize) {
    let agent = agent();
    let loggers: Vec<Logger> = (0..n)
        .map(|i| Logger::new(named(opts(&agent, "shared-job"), format!("Tool{i}"))).unwrap())
        .collect();
    let client_id = loggers[0].client_id().to_string();
    assert!(loggers.iter().all(|l| l.client_id() == client_id));
    const EACH: usize = 500;
    std::thread::scope(|s| {
        for (i, log) in loggers.iter().enumerate() {
            s.spawn(move || {
                for k in 0..EACH {
                    log.info("Shared", &format!("{i}-{k}")).unwrap();
                }
            });
        }
    });
    for log in &loggers {
        log.flush(LONG).unwrap();
        let s = log.stats();
        assert_eq!(
            (s.accepted, s.delivered, s.pending, s.reconnects),
            (EACH as u64, EACH as u64, 0, 0),
            "{s:?}"
        );
        assert!(s.connected);
    }
    let got = payloads(&agent, "KeeperLogger", n * EACH);
    assert_eq!(got.len(), n * EACH);
    for i in 0..n {
        let source = format!("Tool{i}");
        let mine: Vec<String> = got
            .iter()
            .filter(|v| v["MetaData"]["Source"] == source.as_str())
            .map(|v| v["MetaData"]["Message"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..EACH).map(|k| format!("{i}-{k}")).collect();
        assert_eq!(mine, want, "logger {i}: its own records, in its order");
    }
    assert_eq!(
        connections_of(&agent, &client_id, 1),
        1,
        "{:?}",
        agent.clients()
    );
    for log in &loggers {
        log.shutdown(LONG).unwrap();
    }
}

#[test]
fn two_loggers_share_one_connection() {
    many_loggers_share_one_connection(2);
}

#[test]
fn eight_loggers_share_one_connection() {
    many_loggers_share_one_connection(8);
}

#[test]
fn shutting_one_logger_down_leaves_the_others_logging() {
    let agent = agent();
    let a = Logger::new(named(opts(&agent, "leave-job"), "A")).unwrap();
    let b = Logger::new(named(opts(&agent, "leave-job"), "B")).unwrap();
    a.info("Leave", "a before").unwrap();
    b.info("Leave", "b before").unwrap();
    a.shutdown(LONG).unwrap();
    assert!(matches!(a.info("Leave", "a after"), Err(Error::ShutDown)));
    for k in 0..200 {
        b.info("Leave", &format!("b {k}")).unwrap();
    }
    b.flush(LONG).unwrap();
    let got = messages_of(&payloads(&agent, "KeeperLogger", 202));
    assert!(got.contains(&"a before".to_string()), "{got:?}");
    assert!(got.contains(&"b 199".to_string()));
    assert_eq!(a.stats().delivered, 1);
    assert_eq!(b.stats().delivered, 201);
    assert_eq!(b.stats().reconnects, 0);
    // A logger created after the others: still the same connection.
    let c = Logger::new(named(opts(&agent, "leave-job"), "C")).unwrap();
    c.info("Leave", "c").unwrap();
    c.flush(LONG).unwrap();
    assert_eq!(
        connections_of(&agent, b.client_id(), 1),
        1,
        "{:?}",
        agent.clients()
    );
    b.shutdown(LONG).unwrap();
    c.shutdown(LONG).unwrap();
    // With every logger gone the connection closes; a new logger opens a new one.
    let d = Logger::new(named(opts(&agent, "leave-job"), "D")).unwrap();
    d.info("Leave", "d").unwrap();
    d.flush(LONG).unwrap();
    assert_eq!(
        connections_of(&agent, d.client_id(), 2),
        2,
        "{:?}",
        agent.clients()
    );
    d.shutdown(LONG).unwrap();
}

#[test]
fn a_flooding_logger_drops_only_its_own_records() {
    let agent = agent();
    let flood = Logger::new(
        named(opts(&agent, "fair-job"), "Flood")
            .queue_capacity(16)
            .stderr_diagnostics(false),
    )
    .unwrap();
    let calm = Logger::new(named(opts(&agent, "fair-job"), "Calm").overflow(Overflow::Block(LONG)))
        .unwrap();
    const CALM: usize = 2_000;
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 0..50_000 {
                let _ = flood.info("Flood", &format!("f {k}"));
            }
        });
        s.spawn(|| {
            for k in 0..CALM {
                calm.info("Calm", &format!("c {k}")).unwrap();
            }
        });
    });
    calm.flush(LONG).unwrap();
    let _ = flood.flush(LONG);
    let c = calm.stats();
    assert_eq!((c.delivered, c.dropped), (CALM as u64, 0), "{c:?}");
    let f = flood.stats();
    assert_eq!(f.accepted + f.dropped, 50_000, "{f:?}");
    assert!(f.dropped > 0, "a queue of 16 must overflow: {f:?}");
    assert_eq!(f.delivered, f.accepted, "{f:?}");
    let want: Vec<String> = (0..CALM).map(|k| format!("c {k}")).collect();
    let seen = wait_for_all_messages(&agent, "KeeperLogger", &want);
    assert!(want.iter().all(|w| seen.contains(w)));
    assert_eq!(connections_of(&agent, calm.client_id(), 1), 1);
    flood.shutdown(LONG).unwrap();
    calm.shutdown(LONG).unwrap();
}

#[test]
fn loggers_with_other_client_ids_get_their_own_connections() {
    let agent = agent();
    let a = Logger::new(opts(&agent, "own-job").token("one")).unwrap();
    let b = Logger::new(opts(&agent, "own-job").token("two")).unwrap();
    assert_ne!(a.client_id(), b.client_id());
    a.info("Own", "a").unwrap();
    b.info("Own", "b").unwrap();
    a.flush(LONG).unwrap();
    b.flush(LONG).unwrap();
    assert_eq!(connections_of(&agent, a.client_id(), 1), 1);
    assert_eq!(connections_of(&agent, b.client_id(), 1), 1);
    a.shutdown(Duration::from_secs(5)).unwrap();
    b.shutdown(Duration::from_secs(5)).unwrap();
}
