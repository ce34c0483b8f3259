//! The capture subscriber: a persistent-session MQTT v5 client subscribed to `#` on the
//! capture listener, recording every message it receives.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::Notify;

use crate::config::Received;
use crate::error::Error;

/// The client id of the built-in capture subscriber (it connects to the capture listener,
/// so it never shows up in [`crate::DevAgent::clients`]). Fixed so that the broker's
/// persisted session (subscription + queued messages) is found again after a restart.
pub const CAPTURE_CLIENT_ID: &str = "kepm-devagent-capture";
const RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// The broker drops messages larger than the packet size a client announces, so announce
/// far more than any test record.
const MAX_PACKET: u32 = 64 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct CaptureState {
    pub messages: Vec<Received>,
    pub counts: HashMap<String, usize>,
    /// Number of CONNACKs seen; lets a (re)start wait for a connection to the *new* broker.
    pub connacks: u64,
    pub subscribed: bool,
    pub last_error: Option<String>,
}

pub(crate) struct CaptureShared {
    pub state: Mutex<CaptureState>,
    pub cv: Condvar,
}

impl CaptureShared {
    pub fn new() -> Self {
        CaptureShared {
            state: Mutex::new(CaptureState::default()),
            cv: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut CaptureState)) {
        f(&mut self.lock());
        self.cv.notify_all();
    }
}

pub(crate) struct Capture {
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    pub fn start(
        port: u16,
        password: String,
        tls: Arc<rustls::ClientConfig>,
        shared: Arc<CaptureShared>,
    ) -> Result<Capture, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("building the capture subscriber's tokio runtime", e))?;
        let stop = Arc::new(Notify::new());
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("kepm-devagent-capture".into())
            .spawn(move || rt.block_on(run(port, password, tls, shared, stop2)))
            .map_err(|e| Error::io("spawning the capture subscriber thread", e))?;
        Ok(Capture {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn run(
    port: u16,
    password: String,
    tls: Arc<rustls::ClientConfig>,
    shared: Arc<CaptureShared>,
    stop: Arc<Notify>,
) {
    let mut opts = MqttOptions::new(CAPTURE_CLIENT_ID, "127.0.0.1", port);
    opts.set_credentials(CAPTURE_CLIENT_ID, password);
    opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
    // Persistent session: what a job publishes while we reconnect after a broker
    // restart is queued for us by the broker instead of being dropped.
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(3600));
    opts.set_max_packet_size(Some(MAX_PACKET));
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);

    loop {
        let ev = tokio::select! {
            _ = stop.notified() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                let present = ack.session_present;
                shared.update(|st| {
                    st.connacks += 1;
                    st.subscribed = present;
                });
                if !present {
                    if let Err(e) = client.try_subscribe("#", QoS::AtLeastOnce) {
                        shared.update(|st| st.last_error = Some(format!("subscribe: {e}")));
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let ok = ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_)));
                if ok {
                    shared.update(|st| st.subscribed = true);
                } else {
                    let msg = format!("capture subscription to # refused: {:?}", ack.return_codes);
                    eprintln!("kepm-devagent: {msg}");
                    shared.update(|st| st.last_error = Some(msg));
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                let rec = Received {
                    topic,
                    payload: p.payload.to_vec(),
                    at: SystemTime::now(),
                };
                shared.update(|st| {
                    *st.counts.entry(rec.topic.clone()).or_insert(0) += 1;
                    st.messages.push(rec);
                });
            }
            Ok(_) => {}
            Err(e) => {
                shared.update(|st| {
                    st.subscribed = false;
                    st.last_error = Some(e.to_string());
                });
                tokio::select! {
                    _ = stop.notified() => break,
                    _ = tokio::time::sleep(RECONNECT_DELAY) => {}
                }
            }
        }
    }
}
