#![cfg(target_os = "linux")] // signals by pid, the broker found in /proc
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Fault suite: a real Mosquitto (TLS, MQTT v5) and the devagent's capture subscriber (a
//! persistent session that reconnects, so it survives the faults itself), and exact counts by
//! record: every record of a stream is `r <n>`, and each copy that arrives is matched by its
//! Message and its `Id`. Each test asserts that every record kepmlog accepted arrives at least
//! once, that every copy of a record carries that record's Id (a duplicate is a re-send, never
//! a second record), that nothing else arrives, and prints the duplicates and reconnects.
//!
//! CI variants by default; `KEPMLOG_FAULTS_LONG=1` runs the long ones (1,000,000 records
//! through the resets, 30 s outage, 5 s stall). Every test has its own devagent (broker, ports)
//! and job id, so they run in parallel with each other and with the other test files.
//! Figures go to stderr (`cargo test --test faults -- --nocapture`) and are summed up in
//! RELIABILITY.md.

mod common;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{agent, agent_with, assert_balanced, opts, LONG};
use kepm_devagent::{Config, DevAgent, ResetProxy};
use kepmlog::{Error, Logger, Overflow};
use serde::Deserialize;

/// Long enough for a stream of a million records to drain on a loaded machine.
const DRAIN: Duration = Duration::from_secs(300);

fn long() -> bool {
    std::env::var("KEPMLOG_FAULTS_LONG").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------------------
// What arrived, by record

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(rename = "Id", borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "MetaData", borrow)]
    meta: Meta<'a>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(rename = "Category", borrow)]
    category: Cow<'a, str>,
    #[serde(rename = "Message", borrow)]
    message: Cow<'a, str>,
}

/// One record of a stream as the capture saw it.
#[derive(Clone, Copy, Default)]
struct Seen {
    id: u128,
    copies: u32,
}

/// Everything the capture subscriber received on KeeperLogger, read incrementally: records
/// `<phase> <n>` by phase and number, the end marker, kepmlog's own Warning records, and
/// anything else.
#[derive(Default)]
struct Tally {
    next: usize,
    phases: BTreeMap<String, Vec<Seen>>,
    /// Copies of one message that carried a different Id than its first copy: a second
    /// record with the same text, which a re-send never is.
    id_conflicts: Vec<String>,
    ended: bool,
    kepmlog_warnings: Vec<String>,
    others: Vec<String>,
}

impl Tally {
    /// Reads what arrived since the last call (waiting up to `wait` for something).
    fn update(&mut self, agent: &DevAgent, wait: Duration) {
        let batch = agent.messages_from(self.next, wait);
        self.next += batch.len();
        for m in &batch {
            if m.topic != "KeeperLogger" {
                self.others.push(format!("{}: {}", m.topic, m.text()));
                continue;
            }
            let Ok(p) = serde_json::from_slice::<Payload<'_>>(&m.payload) else {
                self.others.push(m.text());
                continue;
            };
            let Ok(id) = uuid::Uuid::parse_str(&p.id) else {
                self.others.push(m.text());
                continue;
            };
            let id = id.as_u128();
            if p.meta.category == "kepmlog" {
                self.kepmlog_warnings.push(p.meta.message.into_owned());
                continue;
            }
            if p.meta.message == "end" {
                self.ended = true;
                continue;
            }
            let parsed = p
                .meta
                .message
                .split_once(' ')
                .and_then(|(phase, n)| Some((phase, n.parse::<usize>().ok()?)));
            let Some((phase, n)) = parsed else {
                self.others.push(m.text());
                continue;
            };
            let seen = self.phases.entry(phase.to_string()).or_default();
            if seen.len() <= n {
                seen.resize(n + 1, Seen::default());
            }
            let s = &mut seen[n];
            if s.copies == 0 {
                s.id = id;
            } else if s.id != id {
                self.id_conflicts.push(m.text());
            }
            s.copies += 1;
        }
    }

    /// Reads until the end marker has arrived. The broker hands the capture its messages in
    /// the order it received them, and kepmlog re-sends before anything new, so once the
    /// marker is there every copy of every record before it is too.
    fn until_end(&mut self, agent: &DevAgent, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.ended && Instant::now() < deadline {
            self.update(agent, Duration::from_millis(200));
        }
        assert!(
            self.ended,
            "the end marker did not arrive within {timeout:?}"
        );
    }

    fn copies(&self, phase: &str, n: usize) -> u32 {
        self.phases
            .get(phase)
            .and_then(|v| v.get(n))
            .map_or(0, |s| s.copies)
    }

    /// Checks that every record `want` of `phase` arrived (at least once, each copy with its
    /// record's Id, every record with its own Id) and that no record outside `may` did;
    /// returns the number of duplicate copies.
    fn check_phase_may(
        &self,
        phase: &str,
        want: impl Fn(usize) -> bool,
        may: impl Fn(usize) -> bool,
        expected: usize,
    ) -> u64 {
        let seen = self.phases.get(phase).map(Vec::as_slice).unwrap_or(&[]);
        let missing: Vec<usize> = (0..expected.max(seen.len()))
            .filter(|&n| want(n) && self.copies(phase, n) == 0)
            .collect();
        assert!(
            missing.is_empty(),
            "phase {phase}: {} record(s) never arrived, first {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        let unwanted: Vec<usize> = (0..seen.len())
            .filter(|&n| !may(n) && seen[n].copies > 0)
            .collect();
        assert!(
            unwanted.is_empty(),
            "phase {phase}: {} record(s) arrived that were never accepted, first {:?}",
            unwanted.len(),
            &unwanted[..unwanted.len().min(20)]
        );
        self.check_clean();
        let arrived: Vec<&Seen> = seen.iter().filter(|s| s.copies > 0).collect();
        let ids: HashSet<u128> = arrived.iter().map(|s| s.id).collect();
        assert_eq!(
            ids.len(),
            arrived.len(),
            "phase {phase}: two records share an Id"
        );
        arrived.iter().map(|s| u64::from(s.copies - 1)).sum()
    }

    /// Checks that exactly the records `want` of `phase` arrived; see `check_phase_may`.
    fn check_phase(
        &self,
        phase: &str,
        want: impl Fn(usize) -> bool + Copy,
        expected: usize,
    ) -> u64 {
        self.check_phase_may(phase, want, want, expected)
    }

    /// Nothing was dropped and nothing went wrong: kepmlog sent no Warning record of its own.
    fn no_warnings(&self) {
        assert!(
            self.kepmlog_warnings.is_empty(),
            "kepmlog's own records: {:?}",
            self.kepmlog_warnings
        );
    }

    fn check_clean(&self) {
        assert!(
            self.id_conflicts.is_empty(),
            "{} copies carried another Id than their record's first copy, e.g. {:?}",
            self.id_conflicts.len(),
            &self.id_conflicts[..self.id_conflicts.len().min(3)]
        );
        assert!(
            self.others.is_empty(),
            "{} unexpected message(s), e.g. {:?}",
            self.others.len(),
            &self.others[..self.others.len().min(3)]
        );
    }
}

// ---------------------------------------------------------------------------------------
// A gated stream and the faults

/// Logs `r 0` .. `r {n-1}` on its own thread, never past `allowed`: a test holds the end of
/// the stream back until its last fault, so every fault hits an unfinished stream.
struct Stream {
    allowed: Arc<AtomicUsize>,
    handle: JoinHandle<()>,
}

fn stream(log: &Arc<Logger>, n: usize) -> Stream {
    let allowed = Arc::new(AtomicUsize::new(0));
    let handle = {
        let log = Arc::clone(log);
        let allowed = Arc::clone(&allowed);
        std::thread::spawn(move || {
            for i in 0..n {
                while i >= allowed.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                // Overflow::Block: waits for room; an error here fails the test.
                log.info("Faults", &format!("r {i}")).unwrap();
            }
        })
    };
    Stream { allowed, handle }
}

/// What the stream looked like when a fault hit.
struct Hit {
    /// Accepted and not yet acknowledged.
    pending: u64,
}

/// Injects `faults` faults into a stream of `n` records: fault `k` once `k/(faults+1)` of the
/// stream is delivered and the logger is connected again after fault `k-1`, with the stream
/// let through only half a chunk further; `fault` returns false when it found nothing to
/// break (then it is tried again). Opens the gate at the end.
fn inject(
    log: &Logger,
    s: &Stream,
    n: usize,
    faults: usize,
    mut fault: impl FnMut() -> bool,
) -> Vec<Hit> {
    let mut hits = Vec::new();
    let chunk = n / (faults + 1);
    for k in 1..=faults {
        let at = k * chunk;
        // Half a chunk more than the fault waits for: the stream is unfinished when it hits.
        s.allowed.store(at + chunk / 2, Ordering::SeqCst);
        let at = at as u64;
        loop {
            let ready = poll_until(DRAIN, Duration::from_millis(1), || {
                let st = log.stats();
                st.connected && st.reconnects + 1 >= k as u64 && st.delivered >= at
            });
            assert!(ready, "fault {k}: the stream stalled: {:?}", log.stats());
            let st = log.stats();
            if fault() {
                hits.push(Hit {
                    pending: st.pending,
                });
                break;
            }
        }
    }
    s.allowed.store(n, Ordering::SeqCst);
    hits
}

fn poll_until(timeout: Duration, every: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// The pid of this agent's running Mosquitto: the process started as `mosquitto -c <conf>`.
fn broker_pid(agent: &DevAgent) -> u32 {
    let conf = agent.mosquitto_conf();
    let conf = conf.to_str().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.len() >= 3
            && args[0].ends_with(b"mosquitto")
            && args[1] == b"-c"
            && args[2] == conf.as_bytes()
        {
            return pid;
        }
    }
    panic!("no mosquitto process with config {conf}");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Ends a stream with the marker and reads until it arrived.
fn finish(log: &Logger, agent: &DevAgent, tally: &mut Tally) {
    log.info("Faults", "end").unwrap();
    log.flush(DRAIN).unwrap();
    tally.until_end(agent, DRAIN);
}

fn summary(pending: &[Hit]) -> String {
    let mut p: Vec<u64> = pending.iter().map(|h| h.pending).collect();
    p.sort_unstable();
    match (p.first(), p.get(p.len() / 2), p.last()) {
        (Some(min), Some(med), Some(max)) => {
            format!("accepted and unacknowledged at the faults: min {min} median {med} max {max}")
        }
        _ => "no faults".to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The faults

/// (a) Every connection reset (RST both ways) 20 times mid-stream: nothing lost.
#[test]
fn connection_resets_mid_stream_lose_nothing() {
    let n = if long() { 1_000_000 } else { 200_000 };
    const RESETS: usize = 20;
    let started = Instant::now();
    let agent = agent();
    let proxy = ResetProxy::start(agent.broker_port()).unwrap();
    let log = Arc::new(
        Logger::new(
            opts(&agent, "faults-reset")
                .broker("127.0.0.1", proxy.port())
                .overflow(Overflow::Block(DRAIN)),
        )
        .unwrap(),
    );
    let mut tally = Tally::default();
    let s = stream(&log, n);
    let hits = inject(&log, &s, n, RESETS, || proxy.reset_all() > 0);
    s.handle.join().unwrap();
    log.flush(DRAIN).unwrap();
    finish(&log, &agent, &mut tally);

    let dups = tally.check_phase("r", |i| i < n, n);
    tally.no_warnings();
    let st = log.stats();
    assert_eq!(proxy.resets(), RESETS as u64);
    assert!(st.reconnects >= RESETS as u64, "{st:?}");
    assert!(
        hits.iter().any(|h| h.pending > 0),
        "no reset hit unacknowledged records"
    );
    assert_eq!((st.delivered, st.dropped, st.failed), (n as u64 + 1, 0, 0));
    assert_balanced(&log);
    eprintln!(
        "faults: resets: {n} records, {RESETS} resets, {} reconnects, {} proxy connections, \
         {dups} duplicate(s), {}; {:.1} s",
        st.reconnects,
        proxy.connections(),
        summary(&hits),
        started.elapsed().as_secs_f64()
    );
}

/// (b) The broker stopped (SIGTERM: it saves its persistence database) and started again 10
/// times mid-stream: nothing lost.
#[test]
fn graceful_broker_restarts_mid_stream_lose_nothing() {
    let n = if long() { 200_000 } else { 40_000 };
    const RESTARTS: usize = 10;
    let started = Instant::now();
    let agent = agent();
    let log = Arc::new(
        Logger::new(opts(&agent, "faults-restart").overflow(Overflow::Block(DRAIN))).unwrap(),
    );
    let mut tally = Tally::default();
    let s = stream(&log, n);
    let hits = inject(&log, &s, n, RESTARTS, || {
        agent.stop_broker().unwrap();
        agent.start_broker().unwrap();
        true
    });
    s.handle.join().unwrap();
    log.flush(DRAIN).unwrap();
    finish(&log, &agent, &mut tally);

    let dups = tally.check_phase("r", |i| i < n, n);
    tally.no_warnings();
    let st = log.stats();
    assert!(st.reconnects >= RESTARTS as u64, "{st:?}");
    assert_eq!((st.delivered, st.dropped, st.failed), (n as u64 + 1, 0, 0));
    assert_balanced(&log);
    eprintln!(
        "faults: graceful restarts: {n} records, {RESTARTS} restarts, {} reconnects, \
         {dups} duplicate(s), {}; {:.1} s",
        st.reconnects,
        summary(&hits),
        started.elapsed().as_secs_f64()
    );
}

/// (c) The broker killed with SIGKILL mid-stream and started again. kepmlog's promise: every
/// record the broker had not acknowledged when it died is sent again. Mosquitto acknowledges
/// a QoS 1 publish before it has written it to disk (autosave every 5 s here), so records it
/// had acknowledged and not yet handed to the capture may die with it: that is the broker's
/// loss, computed and printed, not kepmlog's.
#[test]
fn broker_sigkill_mid_stream_resends_everything_unacknowledged() {
    let n = if long() { 200_000 } else { 40_000 };
    let started = Instant::now();
    let agent = agent();
    // A graceful restart saves the capture's session (its subscription) to disk, so the
    // broker restarted after the kill queues records for the capture before it reconnects.
    agent.stop_broker().unwrap();
    agent.start_broker().unwrap();
    let log = Arc::new(
        Logger::new(opts(&agent, "faults-kill").overflow(Overflow::Block(DRAIN))).unwrap(),
    );
    let mut tally = Tally::default();
    let s = stream(&log, n);
    let mut acked_at_kill = 0;
    let hits = inject(&log, &s, n, 1, || {
        signal(broker_pid(&agent), "KILL");
        // Its sockets close before it has exited: start it again only once it is gone.
        assert!(poll_until(LONG, Duration::from_millis(1), || !agent.broker_running()));
        // Once the worker has seen the connection go, no acknowledgement of the dead broker
        // can come any more: `delivered` is what it acknowledged.
        assert!(poll_until(LONG, Duration::from_millis(1), || !log
            .stats()
            .connected));
        acked_at_kill = log.stats().delivered;
        agent.start_broker().unwrap();
        true
    });
    s.handle.join().unwrap();
    log.flush(DRAIN).unwrap();
    finish(&log, &agent, &mut tally);

    // One logger, one stream, Mosquitto acknowledges in order: the records acknowledged
    // before the kill are `r 0` .. `r {acked_at_kill - 1}`; every later one must arrive.
    let acked = usize::try_from(acked_at_kill).unwrap();
    assert!(
        acked < n && hits[0].pending > 0,
        "the kill did not hit mid-stream"
    );
    let dups = tally.check_phase_may("r", |i| i >= acked && i < n, |i| i < n, n);
    tally.no_warnings();
    let broker_lost = (0..acked).filter(|&i| tally.copies("r", i) == 0).count();
    let st = log.stats();
    assert!(st.reconnects >= 1, "{st:?}");
    assert_eq!((st.delivered, st.dropped, st.failed), (n as u64 + 1, 0, 0));
    assert_balanced(&log);
    eprintln!(
        "faults: SIGKILL: {n} records, {acked} acknowledged before the kill, {} accepted and unacknowledged then, \
         all {} unacknowledged arrived; lost by the broker after acknowledging: {broker_lost}; \
         {dups} duplicate(s), {} reconnects; {:.1} s",
        hits[0].pending,
        n - acked,
        st.reconnects,
        started.elapsed().as_secs_f64()
    );
}

/// (d) The broker down at start, then up: everything logged meanwhile (within the queue's
/// capacity) is delivered.
#[test]
fn broker_down_at_start_delivers_everything_queued() {
    let outage = Duration::from_secs(if long() { 30 } else { 5 });
    const N: usize = 20_000;
    const STEPS: usize = 10;
    let started = Instant::now();
    let agent = agent_with(Config {
        start_broker: false,
        ..Config::default()
    });
    let log = Logger::new(opts(&agent, "faults-down")).unwrap();
    let mut tally = Tally::default();
    for step in 0..STEPS {
        for i in step * N / STEPS..(step + 1) * N / STEPS {
            log.info("Faults", &format!("r {i}")).unwrap();
        }
        std::thread::sleep(outage / STEPS as u32);
    }
    let st = log.stats();
    assert_eq!((st.accepted, st.delivered, st.dropped), (N as u64, 0, 0));
    assert!(!st.connected);
    agent.start_broker().unwrap();
    let up = Instant::now();
    log.flush(DRAIN).unwrap();
    let to_flush = up.elapsed();
    finish(&log, &agent, &mut tally);

    let dups = tally.check_phase("r", |i| i < N, N);
    tally.no_warnings();
    let st = log.stats();
    assert_eq!((st.delivered, st.dropped, st.failed), (N as u64 + 1, 0, 0));
    assert_balanced(&log);
    eprintln!(
        "faults: down at start: {N} records over {outage:?} down, all delivered {:.1} s after \
         the broker came up, {dups} duplicate(s), {} reconnects; {:.1} s",
        to_flush.as_secs_f64(),
        st.reconnects,
        started.elapsed().as_secs_f64()
    );
}

/// (e) The broker frozen (SIGSTOP) mid-stream: in drop mode log() never waits (its p99.9 is
/// printed, not asserted), a flush inside the stall returns at its deadline with the number
/// still unacknowledged, and after SIGCONT the stream goes on; what was dropped never arrives,
/// everything accepted does.
#[test]
fn broker_stall_never_blocks_callers_and_flush_keeps_its_deadline() {
    let stall = Duration::from_secs(if long() { 5 } else { 2 });
    const CAPACITY: usize = 10_000;
    const WARM: usize = 5_000;
    const AFTER: usize = 5_000;
    let started = Instant::now();
    let agent = agent();
    let log = Logger::new(opts(&agent, "faults-stall").queue_capacity(CAPACITY)).unwrap();
    let mut tally = Tally::default();
    for i in 0..WARM {
        log.info("Faults", &format!("w {i}")).unwrap();
    }
    log.flush(LONG).unwrap();

    let pid = broker_pid(&agent);
    signal(pid, "STOP");
    let stopped = Instant::now();
    // Log as fast as possible for half the stall: the window, then the queue, fill up, and
    // every later call must return at once with QueueFull.
    let mut accepted = Vec::new();
    let mut nanos: Vec<u64> = Vec::with_capacity(4_000_000);
    let mut i = 0usize;
    // At least twice the queue's capacity, however slow the machine: the broker stays frozen
    // until the SIGCONT below in any case.
    while (stopped.elapsed() < stall / 2 || i < 2 * CAPACITY) && nanos.len() < 4_000_000 {
        let msg = format!("s {i}");
        let t = Instant::now();
        let r = log.info("Faults", &msg);
        nanos.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        match r {
            Ok(()) => accepted.push(true),
            Err(Error::QueueFull { .. }) => accepted.push(false),
            Err(e) => panic!("log during the stall: {e}"),
        }
        i += 1;
    }
    let during = log.stats();
    // Nothing can be acknowledged while the broker is frozen: the flush must end at its
    // deadline with exactly what is unsettled.
    let deadline = stall / 4;
    let t = Instant::now();
    let outcome = log.flush_outcome(deadline).unwrap();
    let flush_took = t.elapsed();
    let after_flush = log.stats();
    // The broker stays frozen until this SIGCONT, however long the flush took.
    std::thread::sleep(stall.saturating_sub(stopped.elapsed()));
    signal(pid, "CONT");

    assert!(
        flush_took >= deadline,
        "flush returned before its deadline: {flush_took:?}"
    );
    let unsettled =
        during.accepted - (after_flush.delivered + after_flush.denied + after_flush.failed);
    assert!(unsettled > 0, "{during:?}");
    assert_eq!(
        outcome.undelivered, unsettled,
        "{outcome:?} {during:?} {after_flush:?}"
    );
    assert!(during.dropped > 0, "the queue never filled: {during:?}");
    let dropped = accepted.iter().filter(|a| !**a).count() as u64;
    assert_eq!(during.dropped, dropped);

    // The stream recovers: everything accepted during the stall is delivered, and what is
    // logged next goes through.
    log.flush(LONG).unwrap();
    for j in 0..AFTER {
        log.info("Faults", &format!("t {j}")).unwrap();
    }
    log.flush(LONG).unwrap();
    finish(&log, &agent, &mut tally);

    let mut dups = tally.check_phase("w", |j| j < WARM, WARM);
    dups += tally.check_phase(
        "s",
        |j| accepted.get(j).copied().unwrap_or(false),
        accepted.len(),
    );
    dups += tally.check_phase("t", |j| j < AFTER, AFTER);
    assert!(
        tally
            .kepmlog_warnings
            .iter()
            .all(|w| w.starts_with("kepmlog dropped ")),
        "{:?}",
        tally.kepmlog_warnings
    );
    assert!(
        !tally.kepmlog_warnings.is_empty(),
        "the drops were never reported"
    );
    let st = log.stats();
    assert_eq!(st.failed, 0);
    assert_balanced(&log);
    nanos.sort_unstable();
    let pct = |p: f64| nanos[((nanos.len() as f64 * p) as usize).min(nanos.len() - 1)];
    eprintln!(
        "faults: SIGSTOP {stall:?}: {} log() calls during the stall ({} accepted, {dropped} \
         dropped), call time p50 {} ns, p99.9 {} ns, max {} ns; flush({deadline:?}) returned \
         after {:.0} ms with {} undelivered; {dups} duplicate(s), {} drop report(s); {:.1} s",
        nanos.len(),
        accepted.len() as u64 - dropped,
        pct(0.5),
        pct(0.999),
        nanos[nanos.len() - 1],
        flush_took.as_secs_f64() * 1e3,
        outcome.undelivered,
        tally.kepmlog_warnings.len(),
        started.elapsed().as_secs_f64()
    );
}
