//! kepmlog from Rust, the way a job tool uses it: `Logger::new` with the devagent's broker
//! and CA, `info` per record, `flush` at the end.
//!
//! `bench-kepmlog [throughput]`  log N records (after one warm-up record that connects), flush;
//!                               prints the result line (see the crate docs)
//! `bench-kepmlog spool`         the same with the crash-safe spool on (a fresh directory
//!                               under the temp dir, removed afterwards)
//! `bench-kepmlog down`          N (default 1,000,000) log calls with nothing listening on
//!                               the broker port: RSS sampled at N/10, N/4, N/2 and N calls
//! `bench-kepmlog startup`       `Logger::new` to connected and to the first record
//!                               acknowledged (one record, flush), in ms
//! `bench-kepmlog tool --keeper-api-base=URL`
//!                               a one-record job tool, nothing else: Plugin Settings from URL,
//!                               KEEPER_JOB_ID, one `info`, `shutdown`, exit 0 when delivered
//!                               (the driver times the process and reads its CPU)
//!
//! Settings come from the environment (`KEPMLOG_BENCH_*`, see `kepmlog_bench::Env`), except
//! for `tool`, which finds everything the way a job tool does.

use std::time::{Duration, Instant};

use kepmlog::{Logger, Options, Overflow, DEFAULT_QUEUE_CAPACITY};
use kepmlog_bench::{count, fail, rss_kb, Env, Report, Window, CATEGORY, JOB_ID, SOURCE};
use serde_json::json;

fn main() {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "throughput".into());
    let peer = match mode.as_str() {
        "throughput" => "kepmlog-rust",
        "spool" => "kepmlog-rust-spool",
        "down" => "kepmlog-rust-broker-down",
        "startup" => "kepmlog-rust-startup",
        "tool" => return tool(),
        other => fail(
            "bench-kepmlog",
            &format!("unknown mode {other}: use throughput, spool, down, startup or tool"),
        ),
    };
    let env = Env::from_env().unwrap_or_else(|e| fail(peer, &e));
    let result = match mode.as_str() {
        "down" => down(&env),
        "startup" => startup(&env),
        _ => throughput(&env, peer),
    };
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => fail(peer, &e),
    }
}

fn options(env: &Env, token: &str) -> Options {
    Options::new(SOURCE)
        .job_id(JOB_ID)
        .token(token)
        .broker(env.host.clone(), env.port)
        .ca_bundle(env.ca.clone())
        .args(Vec::<String>::new())
}

fn throughput(env: &Env, peer: &'static str) -> Result<String, String> {
    // The whole burst fits in the queue (the default 65,536 would make the caller wait for
    // room once it is N - 65,536 records ahead of the broker); Block is only a safety net.
    let mut opts = options(env, "rust")
        .queue_capacity(env.n.max(DEFAULT_QUEUE_CAPACITY))
        .overflow(Overflow::Block(Duration::from_secs(60)));
    let spool = (peer == "kepmlog-rust-spool")
        .then(|| std::env::temp_dir().join(format!("kepmlog-bench-spool-{}", std::process::id())));
    if let Some(dir) = &spool {
        opts = opts.spool_dir(dir);
    }
    let log = Logger::new(opts).map_err(|e| format!("Logger::new: {e}"))?;
    // Connected before the window starts, as every peer is.
    log.info(CATEGORY, "warm-up")
        .map_err(|e| format!("warm-up: {e}"))?;
    log.flush(Duration::from_secs(30))
        .map_err(|e| format!("warm-up flush (is the broker up?): {e}"))?;
    let before = log.stats().delivered;

    let mut lat = vec![0u64; env.n];
    let mut refused = 0u64;
    let window = Window::start();
    for slot in lat.iter_mut() {
        let t = Instant::now();
        let r = log.info(CATEGORY, &env.message);
        *slot = t.elapsed().as_nanos() as u64;
        if r.is_err() {
            refused += 1;
        }
    }
    let flushed = log.flush(Duration::from_secs(300));
    let (secs, cpu_us) = window.finish();

    let stats = log.stats();
    let _ = log.shutdown(Duration::from_secs(5));
    if let Some(dir) = &spool {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(Report {
        peer,
        n: env.n,
        acked: stats.delivered.saturating_sub(before),
        secs,
        cpu_us,
        lat_ns: &mut lat,
        error: flushed.err().map(|e| format!("flush: {e}")),
        extra: json!({"refused": refused, "dropped": stats.dropped}),
    }
    .line())
}

/// RSS stays bounded by the queue (default capacity, default overflow: drop) however many
/// records a tool logs while the broker is unreachable.
fn down(env: &Env) -> Result<String, String> {
    let n = count("KEPMLOG_BENCH_DOWN_N", 1_000_000)?;
    let log = Logger::new(
        options(env, "rustdown")
            .stderr_diagnostics(false)
            .drop_timeout(Duration::ZERO),
    )
    .map_err(|e| format!("Logger::new: {e}"))?;
    let marks = [n / 10, n / 4, n / 2, n];
    // Filled, not zeroed: its pages are resident before the first sample, so the samples
    // show kepmlog's memory only.
    let mut lat = vec![1u64; n];
    let mut samples = vec![json!([0, rss_kb()])];
    let window = Window::start();
    let mut done = 0usize;
    for mark in marks {
        for slot in &mut lat[done..mark] {
            let t = Instant::now();
            let _ = log.info(CATEGORY, &env.message);
            *slot = t.elapsed().as_nanos() as u64;
        }
        done = mark;
        samples.push(json!([mark, rss_kb()]));
    }
    let (secs, cpu_us) = window.finish();
    let stats = log.stats();
    let _ = log.shutdown(Duration::from_millis(200));
    Ok(Report {
        peer: "kepmlog-rust-broker-down",
        n,
        acked: stats.delivered,
        secs,
        cpu_us,
        lat_ns: &mut lat,
        error: None,
        extra: json!({
            "rss_kb": samples,
            "accepted": stats.accepted,
            "dropped": stats.dropped,
            "queue_capacity": DEFAULT_QUEUE_CAPACITY,
            "connected": stats.connected,
        }),
    }
    .line())
}

/// `Logger::new` to connected (CONNACK) and to the first PUBACK: one record, flush.
fn startup(env: &Env) -> Result<String, String> {
    let t0 = Instant::now();
    let log = Logger::new(options(env, "ruststart")).map_err(|e| format!("Logger::new: {e}"))?;
    log.info(CATEGORY, &env.message)
        .map_err(|e| format!("info: {e}"))?;
    // Polled on this thread, which would otherwise only wait in flush; the worker runs on
    // its own. Polling every 20 µs puts the figure within that of the real moment.
    let connected_ms = loop {
        if log.stats().connected {
            break t0.elapsed().as_secs_f64() * 1e3;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            return Err("not connected within 20 s".into());
        }
        std::thread::sleep(Duration::from_micros(20));
    };
    log.flush(Duration::from_secs(20))
        .map_err(|e| format!("flush: {e}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    log.shutdown(Duration::from_secs(5))
        .map_err(|e| format!("shutdown: {e}"))?;
    Ok(json!({"peer": "kepmlog-rust-startup", "ms": ms, "connected_ms": connected_ms}).to_string())
}

/// A job tool that logs one record: what the agent starts, timed from outside.
fn tool() {
    let run = || -> Result<(), String> {
        let log = Logger::new(Options::new(SOURCE).token("rusttool"))
            .map_err(|e| format!("Logger::new: {e}"))?;
        log.info(CATEGORY, "one record")
            .map_err(|e| format!("info: {e}"))?;
        log.shutdown(Duration::from_secs(10))
            .map_err(|e| format!("shutdown: {e}"))
    };
    if let Err(e) = run() {
        fail("kepmlog-rust-tool", &e);
    }
}
