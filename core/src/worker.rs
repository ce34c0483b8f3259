//! The background worker: one thread per logger, owning the broker connection.
//!
//! rumqttc's `EventLoop` is polled by its own task and reports to the worker task through a
//! channel, so the worker can wait on new records and broker events at once without ever
//! cancelling a `poll()` half-way. The worker keeps its own account of every record it handed
//! to rumqttc until the broker acknowledges it: rumqttc forgets in-flight publishes when it
//! reconnects with a clean session, so after a reconnect the worker publishes them again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;

use crate::logger::{Item, Kind, Shared};
use crate::record::{encode_ref, meta_ref, LOG_TOPIC};
use crate::{settings, tls, Level};

/// Records handed to rumqttc and not yet acknowledged, at most. rumqttc itself keeps no more
/// than the broker's Receive Maximum on the wire; the rest wait in its request channel.
const WINDOW: usize = 1024;
/// How often the worker looks around when nothing wakes it (drop reports, stop requests).
const TICK: Duration = Duration::from_millis(100);
/// The agent registers a job's process as trusted right after starting it; until then the
/// broker refuses it. Retry quickly for this long before backing off.
const REGISTRATION_RACE: Duration = Duration::from_millis(2500);
const QUICK_RETRY: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct WorkerConfig {
    pub rx: Receiver<Item>,
    pub shared: Arc<Shared>,
    pub broker: Option<(String, u16)>,
    pub fallback_broker: (String, u16),
    pub api_base: String,
    pub ca: Option<Vec<CertificateDer<'static>>>,
    pub settings_timeout: Duration,
    pub client_id: String,
    pub source: String,
    pub event_topic: String,
    pub capacity: usize,
    pub diagnostics: bool,
}

/// The worker thread's body: never panics across its boundary, always marks itself done.
pub(crate) fn run(config: WorkerConfig) {
    #[cfg(feature = "log")]
    crate::bridge::mark_worker_thread();
    let shared = config.shared.clone();
    let diagnostics = config.diagnostics;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match rt {
        Ok(rt) => rt.block_on(Worker::run(config)),
        Err(e) => {
            let msg = format!("cannot start the worker runtime: {e}");
            diag(diagnostics, &msg);
            shared.set_last_error(msg);
        }
    }
    shared.info().done = true;
    shared.notify_progress();
}

fn diag(on: bool, msg: &str) {
    if on {
        eprintln!("kepmlog: {msg}");
    }
}

// Nearly every value is the large variant; boxing it would allocate for each event.
#[allow(clippy::large_enum_variant)]
enum Ev {
    Mqtt(Event),
    Down(ConnectionError),
}

/// A record the worker has taken from the queue (or made itself) and not yet settled.
struct Tracked {
    /// Order of dequeue over all records, to re-publish in the original order.
    ord: u64,
    /// Queue position of a caller's record; `None` for the worker's own Warning records.
    index: Option<u64>,
    kind: Kind,
    payload: Bytes,
}

struct Worker {
    rx: Receiver<Item>,
    shared: Arc<Shared>,
    diagnostics: bool,
    source: String,
    event_topic: String,
    capacity: usize,
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Ev>,
    go: mpsc::UnboundedSender<Duration>,
    connected: bool,
    ever_connected: bool,
    failures: u32,
    started: Instant,
    outage_reported: bool,
    /// Handed to rumqttc, waiting for the packet id it gets (`Outgoing::Publish`), in order.
    unassigned: VecDeque<Tracked>,
    /// Written with a packet id, waiting for PUBACK.
    inflight: HashMap<u16, Tracked>,
    /// To publish again after a reconnect, in `ord` order, before anything new.
    retry: VecDeque<Tracked>,
    /// The worker's own Warning records, waiting for a connection.
    internal: VecDeque<Tracked>,
    next_ord: u64,
    /// Queue position of the next record taken from the queue.
    next_index: u64,
    /// Settled flags of the positions from `shared.settled_low` on.
    unsettled: VecDeque<bool>,
    settled_base: u64,
    drops_reported: u64,
    last_drop_report: Option<Instant>,
    last_drop_stderr: Option<Instant>,
}

impl Worker {
    async fn run(config: WorkerConfig) {
        let shared = config.shared.clone();
        let diagnostics = config.diagnostics;
        let mut fallback_warning = None;
        let (host, port) = match config.broker.clone() {
            Some(addr) => addr,
            None => match settings::discover(
                &config.api_base,
                config.ca.as_deref(),
                config.settings_timeout,
            ) {
                Ok(addr) => addr,
                Err(reason) => {
                    let (fh, fp) = &config.fallback_broker;
                    let msg = format!(
                        "Plugin Settings unavailable ({reason}); using the fallback broker {fh}:{fp}"
                    );
                    diag(diagnostics, &format!("warning: {msg}"));
                    shared.set_last_error(msg.clone());
                    fallback_warning = Some(msg);
                    config.fallback_broker.clone()
                }
            },
        };
        shared.info().broker = Some(format!("{host}:{port}"));
        let tls = match tls::client_config(config.ca.as_deref(), &host) {
            Ok(tls) => tls,
            Err(msg) => {
                diag(diagnostics, &format!("cannot connect: {msg}"));
                shared.set_last_error(msg);
                // Nothing can be delivered; stay until shutdown so flush reports the reason.
                while !shared.stop.load(Ordering::SeqCst) {
                    let _ = tokio::time::timeout(TICK, shared.wake.notified()).await;
                }
                fail_rest(&config.rx, &shared, 0, diagnostics);
                return;
            }
        };

        let mut options = MqttOptions::new(config.client_id.clone(), host, port);
        options
            .set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)))
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_start(true)
            .set_connection_timeout(5);
        let (client, eventloop) = AsyncClient::new(options, WINDOW + 8);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (go_tx, go_rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(eventloop, ev_tx, go_rx));

        let mut worker = Worker {
            rx: config.rx,
            shared,
            diagnostics,
            source: config.source,
            event_topic: config.event_topic,
            capacity: config.capacity,
            client,
            events: ev_rx,
            go: go_tx,
            connected: false,
            ever_connected: false,
            failures: 0,
            started: Instant::now(),
            outage_reported: false,
            unassigned: VecDeque::new(),
            inflight: HashMap::new(),
            retry: VecDeque::new(),
            internal: VecDeque::new(),
            next_ord: 0,
            next_index: 0,
            unsettled: VecDeque::new(),
            settled_base: 0,
            drops_reported: 0,
            last_drop_report: None,
            last_drop_stderr: None,
        };
        if let Some(msg) = fallback_warning {
            worker.push_internal(Level::Warning, &msg);
        }
        worker.main_loop().await;
        worker.finish().await;
    }

    async fn main_loop(&mut self) {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if self.connected {
                self.report_drops();
                self.submit();
            }
            let has_room = self.connected && self.outstanding() < WINDOW;
            if has_room {
                self.shared.worker_idle.store(true, Ordering::SeqCst);
                // Pairs with the fence in `Shared::wake_worker`.
                fence(Ordering::SeqCst);
                if !self.rx.is_empty() {
                    self.shared.worker_idle.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            tokio::select! {
                biased;
                ev = self.events.recv() => {
                    let Some(ev) = ev else { return };
                    self.handle(ev);
                    while let Ok(ev) = self.events.try_recv() {
                        self.handle(ev);
                    }
                    self.shared.notify_progress();
                }
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            self.shared.worker_idle.store(false, Ordering::SeqCst);
        }
    }

    fn outstanding(&self) -> usize {
        self.unassigned.len() + self.inflight.len()
    }

    /// Hands records to rumqttc until the window is full: re-sends first, then the worker's
    /// own records, then the queue.
    fn submit(&mut self) {
        while self.outstanding() < WINDOW {
            let tracked = if let Some(t) = self.retry.pop_front() {
                t
            } else if let Some(t) = self.internal.pop_front() {
                t
            } else {
                match self.rx.try_recv() {
                    Ok(item) => self.track(item),
                    Err(_) => break,
                }
            };
            let topic = match tracked.kind {
                Kind::Log => LOG_TOPIC.to_string(),
                Kind::Event => self.event_topic.clone(),
            };
            match self
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, tracked.payload.clone())
            {
                Ok(()) => self.unassigned.push_back(tracked),
                Err(_) => {
                    // The request channel holds more than the window, so this means the event
                    // loop is gone; keep the record for the next connection.
                    self.retry.push_front(tracked);
                    break;
                }
            }
        }
    }

    fn track(&mut self, item: Item) -> Tracked {
        let index = self.next_index;
        self.next_index += 1;
        self.unsettled.push_back(false);
        let ord = self.next_ord;
        self.next_ord += 1;
        Tracked {
            ord,
            index: Some(index),
            kind: item.kind,
            payload: item.payload,
        }
    }

    fn push_internal(&mut self, level: Level, message: &str) {
        let Ok(meta) = meta_ref(level, &self.source, "kepmlog", message, "", "") else {
            return;
        };
        let ord = self.next_ord;
        self.next_ord += 1;
        self.internal.push_back(Tracked {
            ord,
            index: None,
            kind: Kind::Log,
            payload: encode_ref(&meta).into(),
        });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Mqtt(Event::Incoming(Packet::ConnAck(_))) => {
                self.connected = true;
                self.shared.connected.store(true, Ordering::SeqCst);
                if self.ever_connected {
                    self.shared.reconnects.fetch_add(1, Ordering::SeqCst);
                }
                if self.outage_reported {
                    let broker = self.shared.info().broker.clone().unwrap_or_default();
                    diag(self.diagnostics, &format!("connected to {broker}"));
                    self.outage_reported = false;
                }
                self.ever_connected = true;
                self.failures = 0;
            }
            Ev::Mqtt(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(t) = self.unassigned.pop_front() {
                    self.inflight.insert(pkid, t);
                }
            }
            Ev::Mqtt(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(t) = self.inflight.remove(&ack.pkid) {
                    self.settle(t, reason_code(&ack.reason));
                }
            }
            Ev::Mqtt(Event::Incoming(Packet::Disconnect(d))) => {
                self.shared
                    .set_last_error(format!("the broker disconnected us: {:?}", d.reason_code));
            }
            Ev::Mqtt(_) => {}
            Ev::Down(err) => self.connection_lost(err),
        }
    }

    fn connection_lost(&mut self, err: ConnectionError) {
        let was_connected = self.connected;
        self.connected = false;
        self.shared.connected.store(false, Ordering::SeqCst);
        if let ConnectionError::MqttState(StateError::OutgoingPacketTooLarge { pkt_size, max }) =
            &err
        {
            // The record being written when this happened can never be sent: fail it rather
            // than reconnect for it forever.
            if let Some(t) = self.unassigned.pop_front() {
                let msg = format!(
                    "a record of {pkt_size} bytes is larger than the broker's maximum packet \
                     size {max}; it was not sent"
                );
                diag(self.diagnostics, &msg);
                self.shared.set_last_error(msg);
                self.fail(t);
            }
        }
        // Everything handed to rumqttc is forgotten by it on reconnect: take it all back.
        let mut back: Vec<Tracked> = self.unassigned.drain(..).collect();
        back.extend(self.inflight.drain().map(|(_, t)| t));
        back.extend(self.retry.drain(..));
        back.sort_by_key(|t| t.ord);
        self.retry = back.into();

        let broker = self.shared.info().broker.clone().unwrap_or_default();
        let msg = if was_connected {
            format!("lost the connection to {broker}: {err}; reconnecting")
        } else {
            format!("cannot connect to {broker}: {err}; retrying")
        };
        let first_attempts = !self.ever_connected && self.started.elapsed() < REGISTRATION_RACE;
        if !self.outage_reported && !first_attempts {
            diag(self.diagnostics, &msg);
            self.outage_reported = true;
        }
        self.shared.set_last_error(msg);
        self.shared.notify_progress();
        let delay = self.next_delay();
        // The eventloop task waits for this before it reconnects, so nothing handed to rumqttc
        // before this point survives into the new connection twice.
        let _ = self.go.send(delay);
    }

    fn next_delay(&mut self) -> Duration {
        if !self.ever_connected && self.started.elapsed() < REGISTRATION_RACE {
            return QUICK_RETRY;
        }
        self.failures = self.failures.saturating_add(1);
        let exp = QUICK_RETRY.saturating_mul(1u32 << self.failures.min(6));
        let base = exp.min(MAX_BACKOFF);
        // +-25% jitter so that many tools restarted together do not reconnect in lockstep.
        let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u32; // 0..999
        base.mul_f64(0.75 + f64::from(r) / 2000.0)
    }

    fn settle(&mut self, t: Tracked, code: u8) {
        let Some(index) = t.index else {
            return;
        };
        if code < 0x80 {
            self.shared.delivered.fetch_add(1, Ordering::SeqCst);
        } else {
            self.shared.denied.fetch_add(1, Ordering::SeqCst);
            let topic = match t.kind {
                Kind::Log => LOG_TOPIC.to_string(),
                Kind::Event => self.event_topic.clone(),
            };
            let msg = format!(
                "the broker denied a publish to topic {topic:?} (reason 0x{code:02x} {}): add {topic:?} \
                 to mqttTopics.allowedPublications in the job JSON",
                reason_name(code)
            );
            let mut info = self.shared.info();
            if !info.denied_topics.contains(&topic) {
                info.denied_topics.push(topic);
                diag(self.diagnostics, &msg);
            }
            info.last_error = Some(msg);
        }
        self.mark_settled(index);
    }

    fn fail(&mut self, t: Tracked) {
        if let Some(index) = t.index {
            self.shared.failed.fetch_add(1, Ordering::SeqCst);
            self.mark_settled(index);
        }
    }

    fn mark_settled(&mut self, index: u64) {
        let Some(offset) = index.checked_sub(self.settled_base) else {
            return;
        };
        if let Some(flag) = usize::try_from(offset)
            .ok()
            .and_then(|o| self.unsettled.get_mut(o))
        {
            *flag = true;
        }
        while self.unsettled.front() == Some(&true) {
            self.unsettled.pop_front();
            self.settled_base += 1;
        }
        self.shared
            .settled_low
            .store(self.settled_base, Ordering::SeqCst);
    }

    /// Once a second at most: one Warning record saying how many records the full queue dropped.
    fn report_drops(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::SeqCst);
        if dropped <= self.drops_reported {
            return;
        }
        if self
            .last_drop_report
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let delta = dropped - self.drops_reported;
        self.drops_reported = dropped;
        self.last_drop_report = Some(Instant::now());
        let msg = format!(
            "kepmlog dropped {delta} record(s) because its queue (capacity {}) was full \
             ({dropped} in total); raise the queue capacity or use the blocking overflow mode",
            self.capacity
        );
        if self
            .last_drop_stderr
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            diag(self.diagnostics, &msg);
            self.last_drop_stderr = Some(Instant::now());
        }
        self.push_internal(Level::Warning, &msg);
    }

    /// Disconnects politely when connected; counts what was never delivered as failed.
    async fn finish(&mut self) {
        if self.connected && self.client.try_disconnect().is_ok() {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
                match ev {
                    Ev::Mqtt(Event::Outgoing(Outgoing::Disconnect)) | Ev::Down(_) => break,
                    other => self.handle(other),
                }
            }
        }
        let mut left: Vec<Tracked> = self.unassigned.drain(..).collect();
        left.extend(self.inflight.drain().map(|(_, t)| t));
        left.extend(self.retry.drain(..));
        let mut failed = 0;
        for t in left {
            if t.index.is_some() {
                failed += 1;
            }
            self.fail(t);
        }
        self.shared.connected.store(false, Ordering::SeqCst);
        fail_rest(&self.rx, &self.shared, failed, self.diagnostics);
    }
}

/// Counts the records still queued as failed and says so once.
fn fail_rest(rx: &Receiver<Item>, shared: &Shared, already: u64, diagnostics: bool) {
    let queued = rx.try_iter().count() as u64;
    shared.failed.fetch_add(queued, Ordering::SeqCst);
    let total = already + queued;
    if total > 0 {
        let last = shared.info().last_error.clone().unwrap_or_default();
        diag(
            diagnostics,
            &format!("shut down with {total} record(s) not delivered (last error: {last})"),
        );
    }
}

/// Polls the event loop forever; after an error, waits for the worker's go (with the delay
/// to wait) and purges what rumqttc kept from the old connection before reconnecting.
async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::UnboundedSender<Ev>,
    mut go: mpsc::UnboundedReceiver<Duration>,
) {
    loop {
        match eventloop.poll().await {
            Ok(ev) => {
                if events.send(Ev::Mqtt(ev)).is_err() {
                    return;
                }
            }
            Err(err) => {
                // Acks read just before the connection broke are still queued in rumqttc's
                // state: hand them over first, so that only really unacknowledged records are
                // published again.
                for ev in eventloop.state.events.drain(..) {
                    if events.send(Ev::Mqtt(ev)).is_err() {
                        return;
                    }
                }
                if events.send(Ev::Down(err)).is_err() {
                    return;
                }
                let Some(delay) = go.recv().await else {
                    return;
                };
                eventloop.clean();
                eventloop.pending.clear();
                eventloop.state.events.clear();
                eventloop.state.collision = None;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn reason_code(reason: &PubAckReason) -> u8 {
    match reason {
        PubAckReason::Success => 0x00,
        PubAckReason::NoMatchingSubscribers => 0x10,
        PubAckReason::UnspecifiedError => 0x80,
        PubAckReason::ImplementationSpecificError => 0x83,
        PubAckReason::NotAuthorized => 0x87,
        PubAckReason::TopicNameInvalid => 0x90,
        PubAckReason::PacketIdentifierInUse => 0x91,
        PubAckReason::QuotaExceeded => 0x97,
        PubAckReason::PayloadFormatInvalid => 0x99,
    }
}

fn reason_name(code: u8) -> &'static str {
    match code {
        0x80 => "Unspecified error",
        0x83 => "Implementation specific error",
        0x87 => "Not authorized",
        0x90 => "Topic name invalid",
        0x91 => "Packet identifier in use",
        0x97 => "Quota exceeded",
        0x99 => "Payload format invalid",
        _ => "refused",
    }
}
