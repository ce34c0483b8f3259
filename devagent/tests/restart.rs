//! "Broker stopped and restarted mid-stream loses nothing": a publisher that republishes
//! whatever was not acknowledged when the connection dropped, and the capture subscriber's
//! persistent session, together must capture every record.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{record, record_id, runtime, wait_until};
use kepm_devagent::{Config, DevAgent};
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};

struct Progress {
    acked: AtomicUsize,
    connacks: AtomicUsize,
    done: AtomicBool,
}

/// Stop-and-wait QoS 1 publisher: record `i` is resent after every reconnect until its
/// own PUBACK (matched by packet id) arrives. Clean sessions, so rumqttc itself never
/// retransmits and the only copies are the ones sent here.
fn publish_until_done(port: u16, tls: Arc<rustls::ClientConfig>, p: &Progress) -> usize {
    let mut opts = MqttOptions::new("restart-test_Publisher_1", "127.0.0.1", port);
    opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
    opts.set_clean_start(true);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 16);
    runtime().block_on(async {
        let mut i = 0usize;
        let mut connected = false;
        let mut need_send = false;
        let mut outstanding = None;
        loop {
            if connected && need_send {
                if p.done.load(Ordering::SeqCst) {
                    return i;
                }
                client
                    .publish("KeeperLogger", QoS::AtLeastOnce, false, record(i))
                    .await
                    .expect("publish request");
                need_send = false;
                outstanding = None;
            }
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    p.connacks.fetch_add(1, Ordering::SeqCst);
                    connected = true;
                    need_send = true;
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => outstanding = Some(pkid),
                Ok(Event::Incoming(Packet::PubAck(a))) if Some(a.pkid) == outstanding => {
                    assert!(
                        matches!(
                            a.reason,
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                        ),
                        "denied: {:?}",
                        a.reason
                    );
                    i += 1;
                    p.acked.store(i, Ordering::SeqCst);
                    need_send = true;
                }
                Ok(_) => {}
                Err(_) => {
                    connected = false;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let agent = DevAgent::start(Config::default()).expect("devagent starts");
    let progress = Arc::new(Progress {
        acked: AtomicUsize::new(0),
        connacks: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    });
    let publisher = {
        let p = Arc::clone(&progress);
        let port = agent.broker_port();
        let tls = agent.client_tls_config();
        std::thread::spawn(move || publish_until_done(port, tls, &p))
    };

    let long = Duration::from_secs(60);
    assert!(
        wait_until(long, || agent.count_on("KeeperLogger") >= 200),
        "capture saw {} before the restart",
        agent.count_on("KeeperLogger")
    );
    agent.stop_broker().expect("broker stops");
    assert!(!agent.broker_running());
    let acked_while_down = progress.acked.load(Ordering::SeqCst);
    agent.start_broker().expect("broker restarts");
    assert!(agent.broker_running());
    assert!(
        wait_until(long, || progress.acked.load(Ordering::SeqCst)
            >= acked_while_down + 300),
        "publisher stalled after the restart at {}",
        progress.acked.load(Ordering::SeqCst)
    );
    progress.done.store(true, Ordering::SeqCst);
    let total = publisher.join().expect("publisher thread");
    assert!(
        progress.connacks.load(Ordering::SeqCst) >= 2,
        "the publisher never reconnected, so the restart was not mid-stream"
    );

    let want: BTreeSet<String> = (0..total).map(|i| format!("id-{i}")).collect();
    let mut seen = BTreeSet::new();
    let complete = wait_until(long, || {
        seen = agent
            .messages_on("KeeperLogger")
            .iter()
            .filter_map(|m| record_id(&m.payload))
            .collect();
        seen.is_superset(&want)
    });
    let missing: Vec<&String> = want.difference(&seen).take(20).collect();
    assert!(
        complete,
        "{} of {total} missing, e.g. {missing:?}",
        want.len() - want.intersection(&seen).count()
    );
    assert!(
        agent
            .clients()
            .iter()
            .filter(|c| *c == "restart-test_Publisher_1")
            .count()
            >= 2
    );
}
