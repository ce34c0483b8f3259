//! Shared parts of the Rust benchmark peers that `scripts/bench.sh` runs (see
//! `bench/run.py`, which starts them): settings from the environment, CPU time from
//! `getrusage` and peak memory from /proc/self/status, per-call latency percentiles, and the
//! one JSON result line every peer prints, in any language:
//!
//! `{"peer":..,"n":..,"acked":..,"secs":..,"cpu_us":..,"maxrss_kb":..,"p50_ns":..,"p99_ns":..,"p999_ns":..}`
//!
//! `secs` runs from just before the first log/publish call to the moment every record is
//! acknowledged; `cpu_us` is user + system CPU of the whole process over that window;
//! `maxrss_kb` is the process's peak RSS (`VmHWM`; not `ru_maxrss`, which Linux carries over
//! from the parent across fork + exec, so every peer would show at least the driver's).

use std::path::PathBuf;
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};
use serde_json::{json, Value};

/// The message text of every benchmark record (the driver passes the same text to every
/// peer in `KEPMLOG_BENCH_MESSAGE`; this is the default when it is unset).
pub const DEFAULT_MESSAGE: &str = "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys \
     checked, policy strict, duration 3 ms, status OK ....";
/// Job id in every peer's client id (`{job}_{token}_{pid}`).
pub const JOB_ID: &str = "bench-job";
/// `MetaData.Source` of every record.
pub const SOURCE: &str = "BenchTool";
/// `MetaData.Category` of every record.
pub const CATEGORY: &str = "Bench";
/// The topic every record goes to.
pub const TOPIC: &str = "KeeperLogger";

/// What a peer is told by the driver, through the environment:
/// `KEPMLOG_BENCH_HOST`, `KEPMLOG_BENCH_PORT`, `KEPMLOG_BENCH_CA` (the devagent's broker and
/// CA), `KEPMLOG_BENCH_N` (records, default 100,000), `KEPMLOG_BENCH_MESSAGE`.
#[derive(Clone, Debug)]
pub struct Env {
    pub host: String,
    pub port: u16,
    pub ca: PathBuf,
    pub n: usize,
    pub message: String,
}

impl Env {
    pub fn from_env() -> Result<Env, String> {
        let port = need("KEPMLOG_BENCH_PORT")?;
        let port = port
            .parse()
            .map_err(|_| format!("KEPMLOG_BENCH_PORT={port} is not a port number"))?;
        Ok(Env {
            host: std::env::var("KEPMLOG_BENCH_HOST").unwrap_or_else(|_| "127.0.0.1".into()),
            port,
            ca: need("KEPMLOG_BENCH_CA")?.into(),
            n: count("KEPMLOG_BENCH_N", 100_000)?,
            message: std::env::var("KEPMLOG_BENCH_MESSAGE")
                .ok()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_MESSAGE.to_string()),
        })
    }
}

fn need(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set (run the peers through scripts/bench.sh)"))
}

/// A count from the environment (`_` separators allowed), or `default` when unset.
pub fn count(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .replace('_', "")
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{name}={v} is not a positive count")),
    }
}

/// CPU time (user + system, all threads) of this process so far, in µs.
pub fn cpu_us() -> u64 {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let us =
                |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
            us(u.user_time()) + us(u.system_time())
        }
        Err(_) => 0,
    }
}

fn proc_status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The resident set size right now (`VmRSS` of /proc/self/status), in kB.
pub fn rss_kb() -> Option<u64> {
    proc_status_kb("VmRSS:")
}

/// The peak resident set size of this program (`VmHWM`), in kB.
pub fn peak_rss_kb() -> u64 {
    proc_status_kb("VmHWM:").unwrap_or(0)
}

/// The measured window: wall clock and process CPU from [`Window::start`] to
/// [`Window::finish`].
#[derive(Clone, Copy)]
pub struct Window {
    start: Instant,
    cpu_us: u64,
}

impl Window {
    pub fn start() -> Window {
        let cpu_us = cpu_us();
        Window {
            start: Instant::now(),
            cpu_us,
        }
    }

    /// (seconds, CPU µs) since `start`.
    pub fn finish(&self) -> (f64, u64) {
        let secs = self.start.elapsed().as_secs_f64();
        (secs, cpu_us().saturating_sub(self.cpu_us))
    }
}

/// The `p`-quantile (0..1) of sorted samples: element `floor(p * len)`, clamped (the rule every
/// peer uses).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64) * p) as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The result of one peer run.
pub struct Report<'a> {
    pub peer: &'a str,
    pub n: usize,
    pub acked: u64,
    pub secs: f64,
    pub cpu_us: u64,
    /// Per-call nanoseconds, any order (sorted here).
    pub lat_ns: &'a mut [u64],
    pub error: Option<String>,
    /// More keys for the JSON line.
    pub extra: Value,
}

impl Report<'_> {
    /// The JSON result line (peak RSS read now).
    pub fn line(self) -> String {
        self.lat_ns.sort_unstable();
        let mut v = json!({
            "peer": self.peer,
            "n": self.n,
            "acked": self.acked,
            "secs": self.secs,
            "cpu_us": self.cpu_us,
            "maxrss_kb": peak_rss_kb(),
            "p50_ns": percentile(self.lat_ns, 0.5),
            "p99_ns": percentile(self.lat_ns, 0.99),
            "p999_ns": percentile(self.lat_ns, 0.999),
        });
        if let Some(e) = self.error {
            v["error"] = json!(e);
        }
        if let (Value::Object(extra), Value::Object(out)) = (self.extra, &mut v) {
            out.extend(extra);
        }
        v.to_string()
    }
}

/// One KeeperLogger record as a user builds it without kepmlog (the vendor guide's shape): a
/// fresh UUID and the JSON envelope, every time.
pub fn envelope(message: &str) -> Vec<u8> {
    let v = json!({
        "Id": uuid::Uuid::new_v4().to_string(),
        "Version": 1,
        "RespondToTopic": null,
        "MetaData": {
            "MessageType": 4,
            "LogLevel": 1,
            "Source": SOURCE,
            "Category": CATEGORY,
            "Message": message,
            "CorrelationId": "",
            "Context": "",
        },
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Prints `{"peer":..,"error":..}` (so the driver shows the failure) and exits 1.
pub fn fail(peer: &str, error: &str) -> ! {
    println!("{}", json!({"peer": peer, "error": error}));
    eprintln!("{peer}: {error}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_floor_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 501);
        assert_eq!(percentile(&v, 0.99), 991);
        assert_eq!(percentile(&v, 0.999), 1000);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn envelope_is_the_guide_shape() {
        let v: Value = serde_json::from_slice(&envelope(DEFAULT_MESSAGE)).expect("JSON");
        assert_eq!(v["MetaData"]["Message"], DEFAULT_MESSAGE);
        assert_eq!(v["MetaData"]["LogLevel"], 1);
        assert_eq!(v["Id"].as_str().map(str::len), Some(36));
        let len = envelope(DEFAULT_MESSAGE).len();
        assert!((280..=340).contains(&len), "{len} bytes");
    }

    #[test]
    fn usage_moves() {
        let w = Window::start();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (secs, _cpu) = w.finish();
        assert!(secs > 0.0);
        assert!(peak_rss_kb() > 0);
        assert!(rss_kb().unwrap_or(0) > 0);
        assert!(peak_rss_kb() >= rss_kb().unwrap_or(0));
    }
}
