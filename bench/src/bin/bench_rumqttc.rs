//! The Rust peer a job author would write without kepmlog: a raw rumqttc v5 client over TLS
//! (rustls, ring provider, trusting the devagent's CA), the event loop polled in a task that
//! counts PUBACKs, and `publish(..).await` of a freshly built record (UUID + JSON) per
//! message, QoS 1. Prints the result line (see the crate docs).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kepmlog_bench::{envelope, fail, Env, Report, Window, JOB_ID, TOPIC};
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;

const PEER: &str = "rumqttc";
/// Requests the client may queue for the event loop before `publish().await` waits.
const CHANNEL_CAPACITY: usize = 1000;

fn main() {
    let env = Env::from_env().unwrap_or_else(|e| fail(PEER, &e));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(PEER, &format!("tokio runtime: {e}")));
    match rt.block_on(run(&env)) {
        Ok(line) => println!("{line}"),
        Err(e) => fail(PEER, &e),
    }
}

fn is_loopback_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

struct Acks {
    acked: u64,
    refused: u64,
    error: Option<String>,
    /// Window end: the last PUBACK (or the error).
    secs: f64,
    cpu_us: u64,
    eventloop: EventLoop,
}

async fn run(env: &Env) -> Result<String, String> {
    // The agent's certificate names "Localhost" and no address; rumqttc checks the name it
    // dials, so a loopback broker is dialled by that name (which resolves to loopback).
    let host = if is_loopback_ip(&env.host) {
        "localhost".to_string()
    } else {
        env.host.clone()
    };
    let mut opts = MqttOptions::new(
        format!("{JOB_ID}_rumqttc_{}", std::process::id()),
        host,
        env.port,
    );
    opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls_config(
        &env.ca,
    )?)));
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, CHANNEL_CAPACITY);
    let connect = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("connect: {e}")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), connect)
        .await
        .map_err(|_| "connect: no CONNACK within 20 s".to_string())??;

    let n = env.n as u64;
    let window = Window::start();
    let acks = tokio::spawn(async move {
        let (mut acked, mut refused, mut error) = (0u64, 0u64, None);
        while acked + refused < n {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(ack))) => match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => acked += 1,
                    _ => refused += 1,
                },
                Ok(_) => {}
                Err(e) => {
                    error = Some(format!("event loop: {e}"));
                    break;
                }
            }
        }
        let (secs, cpu_us) = window.finish();
        Acks {
            acked,
            refused,
            error,
            secs,
            cpu_us,
            eventloop,
        }
    });

    let mut lat = vec![0u64; env.n];
    let mut publish_error = None;
    for slot in lat.iter_mut() {
        let t = Instant::now();
        let r = client
            .publish(TOPIC, QoS::AtLeastOnce, false, envelope(&env.message))
            .await;
        *slot = t.elapsed().as_nanos() as u64;
        if let Err(e) = r {
            publish_error = Some(format!("publish: {e}"));
            break;
        }
    }
    let acks = match tokio::time::timeout(Duration::from_secs(300), acks).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(format!("ack task: {e}")),
        Err(_) => return Err("not every PUBACK within 300 s".into()),
    };

    // A polite DISCONNECT, bounded.
    let mut eventloop = acks.eventloop;
    if client.disconnect().await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(ev) = eventloop.poll().await {
                if let Event::Outgoing(rumqttc::Outgoing::Disconnect) = ev {
                    break;
                }
            }
        })
        .await;
    }
    Ok(Report {
        peer: PEER,
        n: env.n,
        acked: acks.acked,
        secs: acks.secs,
        cpu_us: acks.cpu_us,
        lat_ns: &mut lat,
        error: publish_error.or(acks.error),
        extra: json!({"refused": acks.refused, "channel_capacity": CHANNEL_CAPACITY}),
    }
    .line())
}
