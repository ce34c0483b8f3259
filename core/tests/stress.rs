#![cfg(target_os = "linux")] // run under ThreadSanitizer by scripts/sanitize.sh, Linux only
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Concurrency stress of the core, small enough for the normal suite and the target of
//! `scripts/sanitize.sh tsan` (docs/sanitizers.md): two loggers sharing one connection, 18
//! threads logging into them, flushes with short deadlines from other threads, the shared
//! connection reset mid-stream through a `ResetProxy`, and two shutdowns of one logger racing
//! each other and its 16 threads still logging. What is asserted is counted exactly, by
//! record: no timing is.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{agent, assert_balanced, opts, wait_until, LONG};
use kepm_devagent::{DevAgent, ResetProxy};
use kepmlog::{Error, Logger, Options, Overflow};

/// Threads logging into logger A, which is shut down while they log.
const A_THREADS: usize = 16;
/// Threads logging into logger B, which shares A's connection and outlives it.
const B_THREADS: usize = 2;
const FLUSHERS: usize = 2;
/// Records each thread logs while the resets happen; A's threads then go on until shut down.
const PER_THREAD: usize = 1_000;
const RESETS: usize = 6;
/// Records of A's tails accepted before the shutdown starts: its threads are all past their
/// fixed part, so the shutdown meets a stream, not a quiet logger.
const TAIL_BEFORE_SHUTDOWN: u64 = 2_000;
/// Small, with `Overflow::Block`: the tails are held to the worker's pace (nothing dropped),
/// and a sender may be blocked on a full queue when the shutdown comes.
const QUEUE: usize = 2_048;

fn named(mut options: Options, source: &str) -> Options {
    options.source = Some(source.to_string());
    options
}

/// The log calls of one of A's threads that returned `Ok`, split by whether the shutdown had
/// begun when the call returned.
#[derive(Default)]
struct Calls {
    /// Must be delivered: shutdown flushes everything accepted before it.
    before: Vec<String>,
    /// May be delivered or counted failed: they raced the shutdown.
    after: Vec<String>,
}

/// Logs `a{t} 0`, `a{t} 1`, ... as far as the gate allows, until the logger says it is shut
/// down; any other error fails the test.
fn log_until_shut_down(
    log: &Logger,
    t: usize,
    gate: &AtomicUsize,
    began: &AtomicBool,
    tail: &AtomicUsize,
) -> Calls {
    let mut calls = Calls::default();
    let mut i = 0;
    loop {
        while i >= gate.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let msg = format!("a{t} {i}");
        match log.info("Stress", &msg) {
            Ok(()) => {
                if i >= PER_THREAD {
                    tail.fetch_add(1, Ordering::SeqCst);
                }
                // Read after the call returned: `false` means the record was queued before
                // `shutdown` read the count it flushes up to.
                if began.load(Ordering::SeqCst) {
                    calls.after.push(msg);
                } else {
                    calls.before.push(msg);
                }
            }
            Err(Error::ShutDown) => return calls,
            Err(e) => panic!("{msg}: {e}"),
        }
        i += 1;
    }
}

fn log_fixed(log: &Logger, t: usize, gate: &AtomicUsize) {
    for i in 0..PER_THREAD {
        while i >= gate.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        log.info("Stress", &format!("b{t} {i}")).unwrap();
    }
}

#[derive(Default, Debug)]
struct Flushes {
    ok: u64,
    timeout: u64,
    shut_down: u64,
}

/// Flushes A and B in turn with deadlines from 0 to 50 ms until told to stop: each either
/// completes, times out with records still unacknowledged, or (A) finds it shut down.
fn flush_until_stopped(a: &Logger, b: &Logger, k: usize, stop: &AtomicBool) -> Flushes {
    const DEADLINES_MS: [u64; 4] = [0, 1, 10, 50];
    let mut f = Flushes::default();
    let mut n = k;
    while !stop.load(Ordering::SeqCst) {
        let deadline = Duration::from_millis(DEADLINES_MS[n % DEADLINES_MS.len()]);
        n += 1;
        for (log, is_a) in [(a, true), (b, false)] {
            match log.flush(deadline) {
                Ok(()) => f.ok += 1,
                Err(Error::Timeout { .. }) => f.timeout += 1,
                Err(Error::ShutDown) if is_a => f.shut_down += 1,
                Err(e) => panic!("flush({deadline:?}) of {}: {e}", log.source()),
            }
        }
        // Once both are settled a flush returns at once: without a pause the two flushers
        // would take the machine's two cores from the threads they are meant to race.
        std::thread::sleep(Duration::from_millis(1));
    }
    f
}

/// Resets the shared connection `RESETS` times, each once the worker is connected again and
/// the stream has moved on, letting the threads only half a chunk further than each reset
/// waits for, so that every reset hits an unfinished stream. Returns what was pending at each.
fn reset_mid_stream(a: &Logger, proxy: &ResetProxy, gate: &AtomicUsize) -> Vec<u64> {
    let chunk = PER_THREAD / (RESETS + 1);
    let mut pending = Vec::new();
    for k in 1..=RESETS {
        gate.store(k * chunk + chunk / 2, Ordering::SeqCst);
        let at = (k * chunk * A_THREADS) as u64;
        let ready = wait_until(LONG, || {
            let st = a.stats();
            st.connected && st.reconnects + 1 >= k as u64 && st.delivered >= at
        });
        assert!(ready, "reset {k}: the stream stalled: {:?}", a.stats());
        pending.push(a.stats().pending);
        // One connection, shared by both loggers.
        assert_eq!(proxy.reset_all(), 1, "reset {k}");
    }
    pending
}

/// What the capture subscriber received, deduplicated by message (QoS 1 re-sends after a
/// reset are copies of the same record).
#[derive(Default)]
struct Arrivals {
    a: HashSet<String>,
    b: HashSet<String>,
    ended: bool,
    kepmlog_warnings: Vec<String>,
    others: Vec<String>,
}

/// Reads the capture until B's end marker. It was published after A's shutdown had returned
/// and the broker forwards in the order it received, so everything before it is there too.
fn read_until_end(agent: &DevAgent) -> Arrivals {
    let mut got = Arrivals::default();
    let mut next = 0;
    let ended = wait_until(LONG, || {
        let batch = agent.messages_from(next, Duration::from_millis(200));
        next += batch.len();
        for m in &batch {
            let Some(v) = m.json().filter(|_| m.topic == "KeeperLogger") else {
                got.others.push(format!("{}: {}", m.topic, m.text()));
                continue;
            };
            let meta = &v["MetaData"];
            let message = meta["Message"].as_str().unwrap_or_default().to_string();
            match (meta["Category"].as_str(), meta["Source"].as_str()) {
                (Some("kepmlog"), _) => got.kepmlog_warnings.push(message),
                (Some("Stress"), Some("StressA")) => {
                    got.a.insert(message);
                }
                (Some("Stress"), Some("StressB")) if message == "end" => got.ended = true,
                (Some("Stress"), Some("StressB")) => {
                    got.b.insert(message);
                }
                _ => got.others.push(m.text()),
            }
        }
        got.ended
    });
    assert!(ended, "B's end marker never arrived");
    got
}

#[test]
fn threads_log_and_flush_through_resets_and_a_racing_shutdown_loses_nothing_accepted() {
    let agent = agent();
    let proxy = ResetProxy::start(agent.broker_port()).unwrap();
    let base = opts(&agent, "stress-job")
        .broker("127.0.0.1", proxy.port())
        .queue_capacity(QUEUE)
        .overflow(Overflow::Block(LONG))
        .stderr_diagnostics(false);
    let a = Logger::new(named(base.clone(), "StressA")).unwrap();
    let b = Logger::new(named(base, "StressB")).unwrap();
    assert_eq!(a.client_id(), b.client_id(), "the two share one connection");

    let gate = AtomicUsize::new(0);
    let began = AtomicBool::new(false);
    let stop_flushing = AtomicBool::new(false);
    let tail = AtomicUsize::new(0);
    let (calls, flushes, shutdowns, pending_at_resets) = std::thread::scope(|s| {
        let (a, b, gate, began, tail) = (&a, &b, &gate, &began, &tail);
        let loggers: Vec<_> = (0..A_THREADS)
            .map(|t| s.spawn(move || log_until_shut_down(a, t, gate, began, tail)))
            .collect();
        let b_loggers: Vec<_> = (0..B_THREADS)
            .map(|t| s.spawn(move || log_fixed(b, t, gate)))
            .collect();
        let flushers: Vec<_> = (0..FLUSHERS)
            .map(|k| {
                let stop = &stop_flushing;
                s.spawn(move || flush_until_stopped(a, b, k, stop))
            })
            .collect();

        let pending_at_resets = reset_mid_stream(a, &proxy, gate);
        gate.store(usize::MAX, Ordering::SeqCst);
        for h in b_loggers {
            h.join().unwrap();
        }
        let tails = || tail.load(Ordering::SeqCst) as u64 >= TAIL_BEFORE_SHUTDOWN;
        assert!(
            wait_until(LONG, tails),
            "the tails stalled: {:?}",
            a.stats()
        );

        // Two shutdowns race each other, the 16 threads and the flushers: one flushes and
        // detaches, the other returns at once (shutdown is idempotent).
        began.store(true, Ordering::SeqCst);
        let other = s.spawn(move || a.shutdown(LONG));
        let first = a.shutdown(LONG);
        let shutdowns = [first, other.join().unwrap()];
        // Every log call now fails: each thread has seen it and ended.
        let calls: Vec<Calls> = loggers.into_iter().map(|h| h.join().unwrap()).collect();
        stop_flushing.store(true, Ordering::SeqCst);
        let flushes: Vec<Flushes> = flushers.into_iter().map(|h| h.join().unwrap()).collect();
        (calls, flushes, shutdowns, pending_at_resets)
    });

    // A shutdown gives up only records that raced it, and says how many.
    let mut given_up = 0;
    for r in &shutdowns {
        match r {
            Ok(()) => {}
            Err(Error::Timeout { undelivered, .. }) => given_up += undelivered,
            Err(e) => panic!("shutdown: {e}"),
        }
    }
    assert!(a.is_shut_down());
    assert_eq!(a.info("Stress", "late"), Err(Error::ShutDown));
    assert_eq!(a.flush(LONG), Err(Error::ShutDown));
    assert_eq!(a.shutdown(LONG), Ok(()));

    b.info("Stress", "end").unwrap();
    b.flush(LONG).unwrap();
    let got = read_until_end(&agent);

    let before: HashSet<&String> = calls.iter().flat_map(|c| &c.before).collect();
    let after: HashSet<&String> = calls.iter().flat_map(|c| &c.after).collect();
    let a_st = a.stats();
    assert_eq!(
        a_st.accepted as usize,
        before.len() + after.len(),
        "every Ok is one accepted record: {a_st:?}"
    );
    let missing: Vec<&&String> = before.iter().filter(|m| !got.a.contains(**m)).collect();
    assert!(
        missing.is_empty(),
        "{} record(s) accepted before the shutdown never arrived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let unaccepted: Vec<&String> = got
        .a
        .iter()
        .filter(|m| !before.contains(m) && !after.contains(m))
        .collect();
    assert!(unaccepted.is_empty(), "never accepted: {unaccepted:?}");
    // A record counted failed at the shutdown was never published: what arrived is exactly
    // what the broker acknowledged.
    assert_eq!(a_st.delivered, got.a.len() as u64, "{a_st:?}");
    assert_eq!(
        (a_st.denied, a_st.pending, a_st.failed),
        (0, 0, given_up),
        "{a_st:?}"
    );
    // Each thread's one `Err(ShutDown)` counts as dropped when it came from the queue.
    assert!(a_st.dropped <= A_THREADS as u64, "{a_st:?}");
    assert_balanced(&a);

    let b_st = b.stats();
    let b_total = B_THREADS * PER_THREAD;
    let b_want: HashSet<String> = (0..B_THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| format!("b{t} {i}")))
        .collect();
    assert_eq!(got.b, b_want, "B lost records with A's shutdown");
    assert_eq!(
        (b_st.accepted, b_st.delivered, b_st.dropped, b_st.failed),
        (b_total as u64 + 1, b_total as u64 + 1, 0, 0),
        "{b_st:?}"
    );
    assert_balanced(&b);
    assert!(
        got.kepmlog_warnings.is_empty(),
        "{:?}",
        got.kepmlog_warnings
    );
    assert!(
        got.others.is_empty(),
        "{:?}",
        &got.others[..got.others.len().min(3)]
    );

    // One connection for both loggers: every reset cost exactly one reconnect.
    assert_eq!(proxy.resets(), RESETS as u64);
    assert_eq!(
        (a_st.reconnects, b_st.reconnects),
        (RESETS as u64, RESETS as u64)
    );
    assert_eq!(proxy.connections(), RESETS as u64 + 1);
    assert!(
        pending_at_resets.iter().any(|p| *p > 0),
        "no reset hit unacknowledged records: {pending_at_resets:?}"
    );
    let total = flushes.iter().fold(Flushes::default(), |t, f| Flushes {
        ok: t.ok + f.ok,
        timeout: t.timeout + f.timeout,
        shut_down: t.shut_down + f.shut_down,
    });
    assert!(total.ok > 0, "{total:?}");
    b.shutdown(LONG).unwrap();
    eprintln!(
        "stress: A {} accepted ({} before the shutdown, {} racing it), {} delivered, {} given \
         up, {} dropped at the shutdown; B {} delivered; {RESETS} resets, {} reconnects, \
         pending at the resets {pending_at_resets:?}; flushes {total:?}",
        a_st.accepted,
        before.len(),
        after.len(),
        a_st.delivered,
        a_st.failed,
        a_st.dropped,
        b_st.delivered,
        a_st.reconnects,
    );
}
