#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A raw MQTT v5 TLS client against the devagent's job listener.
pub struct V5 {
    pub client: AsyncClient,
    pub events: EventLoop,
}

impl V5 {
    pub fn new(id: &str, port: u16, tls: Arc<rustls::ClientConfig>, clean: bool) -> V5 {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
        opts.set_clean_start(clean);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, events) = AsyncClient::new(opts, 16);
        V5 { client, events }
    }

    /// Polls until CONNACK (panics after 10 s of failures).
    pub async fn connected(&mut self) -> ConnAck {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) => return a,
                Ok(_) => {}
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot connect: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Publishes one QoS 1 message and returns the PUBACK reason.
    pub async fn publish_acked(&mut self, topic: &str, payload: Vec<u8>) -> PubAckReason {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish request");
        let mut pkid = None;
        loop {
            match self.events.poll().await.expect("connection stays up") {
                Event::Outgoing(Outgoing::Publish(p)) => pkid = Some(p),
                Event::Incoming(Packet::PubAck(a)) if Some(a.pkid) == pkid => return a.reason,
                _ => {}
            }
        }
    }
}

pub fn record(i: usize) -> Vec<u8> {
    serde_json::json!({
        "Id": format!("id-{i}"),
        "Version": 1,
        "RespondToTopic": null,
        "MetaData": {
            "MessageType": 4, "LogLevel": 1, "Source": "DevagentTest", "Category": "Test",
            "Message": format!("record {i}"), "CorrelationId": "", "Context": ""
        }
    })
    .to_string()
    .into_bytes()
}

pub fn record_id(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    Some(v.get("Id")?.as_str()?.to_string())
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
