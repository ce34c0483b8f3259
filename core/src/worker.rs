//! The background worker: one thread per logger, owning the broker connection.
//!
//! It discovers the broker, connects (quickly at first, for the agent's registration race,
//! then with capped, jittered backoff), and while connected takes as many records as the
//! broker's window allows, publishes them as one batch, and settles each on its PUBACK. The
//! records in flight live in the [`Ledger`]; a lost connection sends them back for replay.

use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use tokio::time::Instant;

use crate::ledger::{Ledger, Tracked};
use crate::queue::{Item, Kind, Settlements, Shared};
use crate::record::{encode_ref, meta_ref, LOG_TOPIC};
use crate::session::{reason_name, Incoming, Session, SessionError};
use crate::{settings, tls, Level};

/// How often the worker looks around when nothing wakes it (drop reports, stop requests).
const TICK: Duration = Duration::from_millis(100);
/// The agent registers a job's process as trusted right after starting it; until then the
/// broker refuses it. Retry quickly for this long before backing off.
const REGISTRATION_RACE: Duration = Duration::from_millis(2500);
const QUICK_RETRY: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DISCONNECT_TIMEOUT: Duration = Duration::from_millis(300);

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
        Ok(rt) => rt.block_on(run_async(config)),
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

async fn run_async(config: WorkerConfig) {
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

    let mut worker = Worker {
        log_topic: Bytes::from_static(LOG_TOPIC.as_bytes()),
        event_topic_bytes: Bytes::from(config.event_topic.clone().into_bytes()),
        rx: config.rx,
        shared,
        diagnostics,
        host,
        port,
        tls,
        client_id: config.client_id,
        source: config.source,
        event_topic: config.event_topic,
        capacity: config.capacity,
        ever_connected: false,
        failures: 0,
        started: StdInstant::now(),
        outage_reported: false,
        ledger: Ledger::default(),
        internal: VecDeque::new(),
        settlements: Settlements::default(),
        next_seq: 0,
        drops_reported: 0,
        last_drop_report: None,
        last_drop_stderr: None,
        incoming: Vec::new(),
    };
    if let Some(msg) = fallback_warning {
        worker.push_internal(Level::Warning, &msg);
    }
    worker.run().await;
}

struct Worker {
    rx: Receiver<Item>,
    shared: Arc<Shared>,
    diagnostics: bool,
    host: String,
    port: u16,
    tls: Arc<ClientConfig>,
    client_id: String,
    source: String,
    event_topic: String,
    log_topic: Bytes,
    event_topic_bytes: Bytes,
    capacity: usize,
    ever_connected: bool,
    failures: u32,
    started: StdInstant,
    outage_reported: bool,
    ledger: Ledger,
    /// The worker's own Warning records, waiting for a connection.
    internal: VecDeque<Tracked>,
    settlements: Settlements,
    next_seq: u64,
    drops_reported: u64,
    last_drop_report: Option<StdInstant>,
    last_drop_stderr: Option<StdInstant>,
    incoming: Vec<Incoming>,
}

/// How a connected session ended.
enum End {
    Stop(Box<Session>),
    Lost(SessionError),
}

impl Worker {
    async fn run(&mut self) {
        while !self.stopping() {
            let connected = Session::connect(
                &self.host,
                self.port,
                self.tls.clone(),
                &self.client_id,
                KEEP_ALIVE,
                CONNECT_TIMEOUT,
            )
            .await;
            match connected {
                Ok(session) => {
                    self.on_connected(&session);
                    match self.serve(session).await {
                        End::Stop(session) => {
                            session.disconnect(DISCONNECT_TIMEOUT).await;
                            break;
                        }
                        End::Lost(err) => self.connection_lost(&err, true),
                    }
                }
                Err(err) => self.connection_lost(&err, false),
            }
            let delay = self.next_delay();
            self.sleep(delay).await;
        }
        self.finish();
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Sleeps, waking early only to stop.
    async fn sleep(&self, delay: Duration) {
        let until = Instant::now() + delay;
        while !self.stopping() && Instant::now() < until {
            let _ = tokio::time::timeout_at(until, self.shared.wake.notified()).await;
        }
    }

    fn on_connected(&mut self, session: &Session) {
        self.ledger.start_session(session.limits().receive_maximum);
        self.shared.connected.store(true, Ordering::SeqCst);
        if self.ever_connected {
            self.shared.reconnects.fetch_add(1, Ordering::SeqCst);
        }
        if self.outage_reported {
            diag(
                self.diagnostics,
                &format!("connected to {}:{}", self.host, self.port),
            );
            self.outage_reported = false;
        }
        self.ever_connected = true;
        self.failures = 0;
    }

    /// The connected loop: publish what the window allows, read acks, keep alive.
    async fn serve(&mut self, mut session: Session) -> End {
        let mut next_keep_alive = None;
        loop {
            if self.stopping() {
                return End::Stop(Box::new(session));
            }
            self.report_drops();
            self.fill(&mut session);
            let now = Instant::now();
            match session.keep_alive(now) {
                Ok(at) => next_keep_alive = at.or(next_keep_alive),
                Err(e) => return End::Lost(e),
            }
            let mut deadline = now + TICK;
            if let Some(at) = next_keep_alive {
                deadline = deadline.min(at);
            }
            let waiting_for_records = self.ledger.has_room() && session.has_write_room();
            if waiting_for_records && !session.has_pending_writes() {
                self.shared.worker_idle.store(true, Ordering::SeqCst);
                // Pairs with the fence in `Shared::wake_worker`.
                fence(Ordering::SeqCst);
                if !self.rx.is_empty() {
                    self.shared.worker_idle.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            let mut incoming = std::mem::take(&mut self.incoming);
            let r = session
                .drive(Some(&self.shared.wake), deadline, &mut incoming)
                .await;
            self.shared.worker_idle.store(false, Ordering::SeqCst);
            let lost = self.handle(&mut incoming);
            self.incoming = incoming;
            if let Err(e) = r {
                return End::Lost(e);
            }
            if let Some(e) = lost {
                return End::Lost(e);
            }
        }
    }

    /// Takes records until the window or the write buffer is full: replays first, then the
    /// worker's own records, then the queue; each is encoded into the session's batch.
    fn fill(&mut self, session: &mut Session) {
        while self.ledger.has_room() && session.has_write_room() {
            let t = if let Some(t) = self.ledger.next_replay() {
                t
            } else if let Some(t) = self.internal.pop_front() {
                t
            } else {
                match self.rx.try_recv() {
                    Ok(item) => self.track(item),
                    Err(_) => break,
                }
            };
            let topic = match t.kind {
                Kind::Log => self.log_topic.clone(),
                Kind::Event => self.event_topic_bytes.clone(),
            };
            let payload = t.payload.clone();
            let pkid = self.ledger.assign(t);
            if let Err(too_large) = session.publish(&topic, pkid, &payload) {
                // It can never be sent: fail it rather than reconnect for it forever.
                let msg = format!(
                    "a record of {} bytes is larger than the broker's maximum packet size \
                     ({} bytes); it was not sent",
                    too_large.size, too_large.max
                );
                diag(self.diagnostics, &msg);
                self.shared.set_last_error(msg);
                if let Some(t) = self.ledger.ack(pkid) {
                    self.fail(t);
                }
            }
        }
    }

    fn track(&mut self, item: Item) -> Tracked {
        let seq = self.next_seq;
        self.next_seq += 1;
        Tracked {
            seq,
            index: Some(self.settlements.take()),
            kind: item.kind,
            payload: item.payload,
        }
    }

    fn push_internal(&mut self, level: Level, message: &str) {
        let Ok(meta) = meta_ref(level, &self.source, "kepmlog", message, "", "") else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.internal.push_back(Tracked {
            seq,
            index: None,
            kind: Kind::Log,
            payload: encode_ref(&meta).into(),
        });
    }

    /// Settles acknowledged records; returns the error when the broker disconnected us.
    fn handle(&mut self, incoming: &mut Vec<Incoming>) -> Option<SessionError> {
        if incoming.is_empty() {
            return None;
        }
        let mut lost = None;
        for inc in incoming.drain(..) {
            match inc {
                Incoming::PubAck { pkid, code } => {
                    if let Some(t) = self.ledger.ack(pkid) {
                        self.settle(t, code);
                    }
                }
                Incoming::Disconnect { code, reason } => {
                    let mut msg = format!(
                        "the broker disconnected us: 0x{code:02x} {}",
                        reason_name(code)
                    );
                    if let Some(r) = reason {
                        msg.push_str(&format!(" ({r})"));
                    }
                    lost = Some(SessionError::Protocol(msg));
                }
            }
        }
        let low = self.settlements.low();
        self.shared.settled_low.store(low, Ordering::SeqCst);
        self.shared.notify_settled(low);
        lost
    }

    fn connection_lost(&mut self, err: &SessionError, was_connected: bool) {
        self.shared.connected.store(false, Ordering::SeqCst);
        self.ledger.connection_lost();
        let broker = format!("{}:{}", self.host, self.port);
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
        self.settlements.settle(index);
    }

    fn fail(&mut self, t: Tracked) {
        if let Some(index) = t.index {
            self.shared.failed.fetch_add(1, Ordering::SeqCst);
            let low = self.settlements.settle(index);
            self.shared.settled_low.store(low, Ordering::SeqCst);
            self.shared.notify_settled(low);
        }
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
        self.last_drop_report = Some(StdInstant::now());
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
            self.last_drop_stderr = Some(StdInstant::now());
        }
        self.push_internal(Level::Warning, &msg);
    }

    /// Counts what was never delivered as failed.
    fn finish(&mut self) {
        let mut failed = 0;
        for t in self.ledger.take_all() {
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
