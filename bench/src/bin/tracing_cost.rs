//! What one log call costs the tool, by the way it is written: `Logger::log` directly,
//! `log::info!` through `LogBridge`, `tracing::info!` through `TracingLayer`, and, for scale,
//! `tracing::info!` through tracing-subscriber's fmt layer writing to `io::sink` (what a tool
//! pays for tracing's usual text output, minus the terminal).
//!
//! `cargo run --release -p kepmlog-bench --features tracing-cost --bin tracing-cost`, with
//! `KEPMLOG_BENCH_HOST`, `KEPMLOG_BENCH_PORT`, `KEPMLOG_BENCH_CA` pointing at a
//! `kepm-devagent serve` (its ready line) and `KEPMLOG_BENCH_N` records per way (100,000).
//! Not run by scripts/bench.sh nor CI.
//!
//! Per way: `call` = wall time of the loop of N calls / N; `caller cpu` = CPU of the calling
//! thread over that loop / N; `process cpu` = CPU of the whole process from the first call
//! until the broker acknowledged the last record (the worker's encoding, TLS and MQTT
//! included; for fmt, nothing is delivered) / N. Every way logs the same record: Info,
//! Category `Bench`, the benchmark message as a formatted argument.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kepmlog::{Level, LogBridge, Logger, Options, Overflow, TracingLayer};
use kepmlog_bench::{cpu_us, fail, Env, CATEGORY, JOB_ID, SOURCE};
use nix::sys::resource::{getrusage, UsageWho};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

const PEER: &str = "tracing-cost";

fn main() {
    let env = Env::from_env().unwrap_or_else(|e| fail(PEER, &e));
    let mut rows = Vec::new();
    for way in [Way::Direct, Way::LogBridge, Way::Tracing, Way::FmtSink] {
        match run(&env, way) {
            Ok(row) => rows.push(row),
            Err(e) => fail(PEER, &format!("{}: {e}", way.name())),
        }
    }
    println!(
        "| way (N = {}) | call ns | caller cpu ns | process cpu ns | delivered |",
        env.n
    );
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} |",
            r.name, r.call_ns, r.caller_cpu_ns, r.process_cpu_ns, r.delivered
        );
    }
}

#[derive(Clone, Copy)]
enum Way {
    Direct,
    LogBridge,
    Tracing,
    FmtSink,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Direct => "`Logger::log`",
            Way::LogBridge => "`log::info!` → `LogBridge`",
            Way::Tracing => "`tracing::info!` → `TracingLayer`",
            Way::FmtSink => "`tracing::info!` → fmt layer → `io::sink`",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Way::Direct => "direct",
            Way::LogBridge => "logbridge",
            Way::Tracing => "tracing",
            Way::FmtSink => "fmtsink",
        }
    }
}

struct Row {
    name: &'static str,
    call_ns: f64,
    caller_cpu_ns: f64,
    process_cpu_ns: f64,
    delivered: u64,
}

/// CPU time (user + system) of the calling thread so far, in µs.
fn thread_cpu_us() -> u64 {
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let us =
                |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
            us(u.user_time()) + us(u.system_time())
        }
        Err(_) => 0,
    }
}

fn run(env: &Env, way: Way) -> Result<Row, String> {
    let logger = Arc::new(
        Logger::new(
            Options::new(SOURCE)
                .job_id(JOB_ID)
                .token(way.token())
                .broker(env.host.clone(), env.port)
                .ca_bundle(env.ca.clone())
                .args(Vec::<String>::new())
                // The whole burst fits: the calls measure logging, not waiting for room.
                .queue_capacity(env.n.max(kepmlog::DEFAULT_QUEUE_CAPACITY))
                .overflow(Overflow::Block(Duration::from_secs(60))),
        )
        .map_err(|e| format!("Logger::new: {e}"))?,
    );
    logger
        .info(CATEGORY, "warm-up")
        .map_err(|e| format!("warm-up: {e}"))?;
    logger
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("warm-up flush (is the broker up?): {e}"))?;
    let before = logger.stats().delivered;
    let message = env.message.as_str();
    let n = env.n;

    // Set up before the window: only the calls are measured.
    let dispatch = match way {
        Way::Direct => None,
        Way::LogBridge => {
            // The process-wide `log` logger can be set once: this way runs once per process.
            LogBridge::new(logger.clone())
                .install(log::LevelFilter::Info)
                .map_err(|e| format!("install: {e}"))?;
            None
        }
        Way::Tracing => Some(Dispatch::new(
            tracing_subscriber::registry().with(TracingLayer::new(logger.clone())),
        )),
        Way::FmtSink => Some(Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
        )),
    };

    let (start, cpu0, thread0) = (Instant::now(), cpu_us(), thread_cpu_us());
    match (way, &dispatch) {
        (Way::Direct, _) => {
            for _ in 0..n {
                let _ = logger.log(Level::Info, CATEGORY, message);
            }
        }
        (Way::LogBridge, _) => {
            for _ in 0..n {
                log::info!(target: "Bench", "{}", message);
            }
        }
        (Way::Tracing | Way::FmtSink, Some(d)) => tracing::dispatcher::with_default(d, || {
            for _ in 0..n {
                tracing::info!(target: "Bench", "{}", message);
            }
        }),
        (Way::Tracing | Way::FmtSink, None) => return Err("no subscriber".into()),
    }
    let (end, thread1) = (Instant::now(), thread_cpu_us());
    logger
        .flush(Duration::from_secs(300))
        .map_err(|e| format!("flush: {e}"))?;
    let cpu1 = cpu_us();
    let delivered = logger.stats().delivered.saturating_sub(before);
    let _ = logger.shutdown(Duration::from_secs(5));
    let per = |us: u64| us as f64 * 1000.0 / n as f64;
    Ok(Row {
        name: way.name(),
        call_ns: (end - start).as_nanos() as f64 / n as f64,
        caller_cpu_ns: per(thread1.saturating_sub(thread0)),
        process_cpu_ns: per(cpu1.saturating_sub(cpu0)),
        delivered,
    })
}
