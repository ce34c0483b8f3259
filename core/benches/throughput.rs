//! Throughput of kepmlog against the peer a Rust user would otherwise write: a raw rumqttc v5
//! loop publishing QoS 1 over TLS. Both run against the same real Mosquitto (devagent), in one
//! run, with the same payload size. Figures are printed, never asserted.
//!
//! `cargo bench -p kepmlog --bench throughput` (KEPMLOG_BENCH_N=... to change the count)

use std::sync::Arc;
use std::time::{Duration, Instant};

use kepm_devagent::{Config, DevAgent};
use kepmlog::{Level, Logger, Options, Overflow};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};

/// Rounds per peer, alternating, so that both see the same machine load; medians are printed.
const ROUNDS: usize = 3;

fn main() {
    let n: usize = std::env::var("KEPMLOG_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let agent = match DevAgent::start(Config::default()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: cannot start the devagent: {e}");
            std::process::exit(1);
        }
    };
    let message = "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, duration 3 ms, status OK ....";
    let sample = kepmlog::encode(
        &kepmlog::build_metadata(Level::Info, "BenchTool", "Bench", message, "", "")
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let mut k_runs = Vec::new();
    let mut r_runs = Vec::new();
    let mut calls = Vec::new();
    for round in 0..ROUNDS {
        let (secs, c) = bench_kepmlog(&agent, n, message, round);
        k_runs.push(secs);
        calls.extend(c);
        r_runs.push(bench_rumqttc(&agent, n, sample.clone(), round));
        // The capture subscriber keeps every message; free it between rounds.
        agent.clear_messages();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let k_secs = median(&mut k_runs);
    let r_secs = median(&mut r_runs);

    println!();
    println!(
        "{n} QoS 1 records of {} B each, TLS, MQTT v5, loopback Mosquitto (Receive Maximum 20), median of {ROUNDS} rounds",
        sample.len()
    );
    println!(
        "{:<22} {:>10} {:>12} {:>10}",
        "peer", "seconds", "msgs/s", "vs kepmlog"
    );
    let k_rate = n as f64 / k_secs;
    let r_rate = n as f64 / r_secs;
    println!(
        "{:<22} {:>10.3} {:>12.0} {:>10.2}",
        "kepmlog", k_secs, k_rate, 1.0
    );
    println!(
        "{:<22} {:>10.3} {:>12.0} {:>10.2}",
        "raw rumqttc loop",
        r_secs,
        r_rate,
        r_rate / k_rate
    );
    calls.sort_unstable();
    let pct = |p: f64| calls[((calls.len() as f64 - 1.0) * p) as usize];
    println!(
        "kepmlog log() per call while the worker publishes: median {} ns, p99 {} ns",
        pct(0.5),
        pct(0.99),
    );
}

/// Returns (seconds until every record is acknowledged, per-call nanoseconds).
fn bench_kepmlog(agent: &DevAgent, n: usize, message: &str, round: usize) -> (f64, Vec<u64>) {
    let log = Logger::new(
        Options::new("BenchTool")
            .job_id("bench-job")
            .token(format!("bench{round}"))
            .api_base(agent.api_base())
            .args(Vec::<String>::new())
            .queue_capacity(n.max(1))
            .overflow(Overflow::Block(Duration::from_secs(60))),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Connect first so the figure is steady-state throughput, not discovery.
    let _ = log.info("Bench", "warm-up");
    let _ = log.flush(Duration::from_secs(30));
    let mut calls = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let _ = log.info("Bench", message);
        calls.push(t.elapsed().as_nanos() as u64);
    }
    if let Err(e) = log.flush(Duration::from_secs(300)) {
        eprintln!("bench: kepmlog flush: {e}");
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = log.shutdown(Duration::from_secs(5));
    (secs, calls)
}

/// A straightforward rumqttc loop: publish everything, count PUBACKs.
fn bench_rumqttc(agent: &DevAgent, n: usize, payload: Vec<u8>, round: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let tls: Arc<rustls::ClientConfig> = agent.client_tls_config();
    rt.block_on(async move {
        let mut opts = MqttOptions::new(
            format!("bench-job_rumqttc_{round}"),
            agent.broker_host(),
            agent.broker_port(),
        );
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        loop {
            if let Ok(Event::Incoming(Packet::ConnAck(_))) = eventloop.poll().await {
                break;
            }
        }
        let payload = bytes::Bytes::from(payload);
        let start = Instant::now();
        let publisher = tokio::spawn(async move {
            for _ in 0..n {
                if client
                    .publish("KeeperLogger", QoS::AtLeastOnce, false, payload.clone())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            client
        });
        let mut acked = 0;
        while acked < n {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("bench: rumqttc: {e}");
                    break;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = publisher.await;
        secs
    })
}
