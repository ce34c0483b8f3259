//! The background worker: one thread per logger, owning the broker connection.
//!
//! It discovers the broker, connects (quickly at first, for the agent's registration race,
//! then with capped, jittered backoff), and while connected takes as many records as the
//! broker's window allows, publishes them as one batch, and settles each on its PUBACK. The
//! records in flight live in the [`Ledger`]; a lost connection sends them back for replay.
//!
//! One worker serves every logger of the process that shares its connection (see `hub.rs`):
//! each is a member with its own queue and counters, and the worker takes their records in
//! turn, so a flooding logger cannot starve another.

use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, TryRecvError};
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use tokio::time::Instant;

use crate::fork;
use crate::item::Kind;
use crate::ledger::{Ledger, Tracked};
use crate::level::Level;
use crate::member::Member;
use crate::packets::Incoming;
use crate::queue::{Control, Signal};
use crate::record::LOG_TOPIC;
use crate::session::Session;
use crate::session_error::{reason_name, SessionError};
use crate::text::diag;
use crate::{settings, tls};

/// How often the worker looks around when nothing wakes it (drop reports, stop requests).
const TICK: Duration = Duration::from_millis(100);
/// The agent registers a job's process as trusted right after starting it; until then the
/// broker refuses it and Plugin Settings answers 403. Retry quickly for this long (counted
/// from the worker's start) before backing off.
pub(crate) const REGISTRATION_RACE: Duration = Duration::from_millis(2500);
const QUICK_RETRY: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DISCONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// How the connection is made: from the options of the logger that started the worker.
pub(crate) struct WorkerConfig {
    pub broker: Option<(String, u16)>,
    pub fallback_broker: (String, u16),
    pub api_base: String,
    pub ca: Option<Vec<CertificateDer<'static>>>,
    pub settings_timeout: Duration,
    pub client_id: String,
    pub diagnostics: bool,
}

/// The worker thread's body: never panics across its boundary, always marks its loggers done.
pub(crate) fn run(config: WorkerConfig, control: Receiver<Control>, signal: Arc<Signal>) {
    #[cfg(any(feature = "log", feature = "tracing"))]
    crate::on_worker::mark_worker_thread();
    let diagnostics = config.diagnostics;
    let section = fork::section();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    drop(section);
    match rt {
        Ok(rt) => rt.block_on(run_async(config, control, Arc::clone(&signal))),
        Err(e) => {
            let msg = format!("cannot start the worker runtime: {e}");
            diag(diagnostics, &msg);
            // Nobody will serve these loggers: let their flushes and shutdowns return.
            for c in control.try_iter() {
                if let Control::Attach(m) = c {
                    m.shared.set_last_error(msg.clone());
                    m.shared.info().done = true;
                    m.shared.notify_progress();
                }
            }
        }
    }
    signal.set_finished();
}

async fn run_async(config: WorkerConfig, control: Receiver<Control>, signal: Arc<Signal>) {
    let diagnostics = config.diagnostics;
    let mut worker = Worker {
        control,
        signal,
        diagnostics,
        host: String::new(),
        port: 0,
        tls: None,
        client_id: config.client_id.clone(),
        log_topic: Bytes::from_static(LOG_TOPIC.as_bytes()),
        ever_connected: false,
        failures: 0,
        started: StdInstant::now(),
        outage_reported: false,
        ledger: Ledger::default(),
        members: Vec::new(),
        rr: 0,
        next_seq: 0,
        incoming: Vec::new(),
        control_closed: false,
    };
    // The logger that started the worker is attached already: its records may carry the
    // fallback warning.
    worker.take_control();
    let (host, port) = match config.broker.clone() {
        Some(addr) => addr,
        None => match settings::discover_through_race(
            &config.api_base,
            config.ca.as_deref(),
            config.settings_timeout,
            worker.started,
            REGISTRATION_RACE,
        ) {
            Ok(addr) => addr,
            Err(reason) => {
                let (fh, fp) = &config.fallback_broker;
                let msg = format!(
                    "Plugin Settings unavailable ({reason}); using the fallback broker {fh}:{fp}"
                );
                diag(diagnostics, &format!("warning: {msg}"));
                worker.set_last_error(&msg);
                if let Some(m) = worker.members.first_mut() {
                    m.push_internal(&mut worker.next_seq, Level::Warning, &msg);
                }
                config.fallback_broker.clone()
            }
        },
    };
    worker.host = host;
    worker.port = port;
    worker.set_broker();
    // The TLS set-up runs rustls' one-time initialisation.
    let section = fork::section();
    let tls = tls::client_config(config.ca.as_deref(), &worker.host);
    drop(section);
    match tls {
        Ok(tls) => worker.tls = Some(tls),
        Err(msg) => {
            diag(diagnostics, &format!("cannot connect: {msg}"));
            worker.set_last_error(&msg);
            // Nothing can be delivered; serve detaches until the last logger is gone, so
            // flush reports the reason.
            while !worker.control_closed {
                let _ = tokio::time::timeout(TICK, worker.signal.wake.notified()).await;
                worker.take_control();
            }
            worker.finish();
            return;
        }
    }
    worker.run().await;
}

struct Worker {
    control: Receiver<Control>,
    signal: Arc<Signal>,
    diagnostics: bool,
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    client_id: String,
    log_topic: Bytes,
    ever_connected: bool,
    failures: u32,
    started: StdInstant,
    outage_reported: bool,
    ledger: Ledger,
    members: Vec<Member>,
    /// The member whose turn it is to give a record.
    rr: usize,
    next_seq: u64,
    incoming: Vec<Incoming>,
    /// Every logger dropped its handle on the connection: nobody will attach again.
    control_closed: bool,
}

/// How a connected session ended.
enum End {
    /// No logger is left: disconnect.
    Idle(Box<Session>),
    Lost(SessionError),
}

impl Worker {
    async fn run(&mut self) {
        let Some(tls) = self.tls.clone() else {
            self.finish();
            return;
        };
        loop {
            // With no logger attached, stay disconnected until one is or all are gone.
            while self.members.is_empty() {
                if self.control_closed {
                    self.finish();
                    return;
                }
                let _ = tokio::time::timeout(TICK, self.signal.wake.notified()).await;
                self.take_control();
            }
            let section = fork::section();
            let connected = Session::connect(
                &self.host,
                self.port,
                Arc::clone(&tls),
                &self.client_id,
                KEEP_ALIVE,
                CONNECT_TIMEOUT,
            )
            .await;
            drop(section);
            match connected {
                Ok(session) => {
                    self.on_connected(&session);
                    match self.serve(session).await {
                        End::Idle(session) => {
                            session.disconnect(DISCONNECT_TIMEOUT).await;
                            self.signal.connected.store(false, Ordering::SeqCst);
                            self.ledger.connection_lost();
                            continue;
                        }
                        End::Lost(err) => self.connection_lost(&err, true),
                    }
                }
                Err(err) => self.connection_lost(&err, false),
            }
            let delay = self.next_delay();
            self.sleep(delay).await;
        }
    }

    /// Applies what loggers said: new members, members gone, every handle dropped.
    fn take_control(&mut self) {
        loop {
            match self.control.try_recv() {
                Ok(Control::Attach(spec)) => {
                    let mut member = Member::new(spec);
                    if self.port != 0 {
                        member.shared.info().broker = Some(format!("{}:{}", self.host, self.port));
                    }
                    // What the spool recovered is said before the recovered records go out.
                    self.report_spool(&mut member);
                    self.members.push(member);
                }
                Ok(Control::Detach { id, deadline }) => {
                    if let Some(m) = self.members.iter_mut().find(|m| m.id == id) {
                        m.leaving = Some(deadline);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.control_closed = true;
                    break;
                }
            }
        }
        self.let_go();
    }

    /// Lets the leaving loggers go that have nothing left, or whose deadline has passed.
    fn let_go(&mut self) {
        let now = StdInstant::now();
        let mut i = 0;
        while i < self.members.len() {
            let m = &self.members[i];
            let go = m
                .leaving
                .is_some_and(|deadline| now >= deadline || m.all_settled());
            if go {
                let member = self.members.remove(i);
                let in_ledger = self.ledger.release_member(member.id);
                member.close(self.diagnostics, in_ledger);
            } else {
                i += 1;
            }
        }
    }

    fn set_broker(&self) {
        let broker = format!("{}:{}", self.host, self.port);
        for m in &self.members {
            m.shared.info().broker = Some(broker.clone());
        }
    }

    /// Connection-wide news goes to every logger's `last_error`.
    fn set_last_error(&self, msg: &str) {
        for m in &self.members {
            m.shared.set_last_error(msg);
        }
    }

    fn notify_all(&self) {
        for m in &self.members {
            m.shared.notify_progress();
        }
    }

    /// Sleeps, looking at the loggers at least every tick (a leaving one has a deadline).
    async fn sleep(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            let step = until.min(Instant::now() + TICK);
            let _ = tokio::time::timeout_at(step, self.signal.wake.notified()).await;
            self.take_control();
            if self.members.is_empty() {
                return;
            }
        }
    }

    fn on_connected(&mut self, session: &Session) {
        self.ledger.start_session(session.limits().receive_maximum);
        self.signal.connected.store(true, Ordering::SeqCst);
        if self.ever_connected {
            self.signal.reconnects.fetch_add(1, Ordering::SeqCst);
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
            self.take_control();
            if self.members.is_empty() {
                return End::Idle(Box::new(session));
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
                self.signal.worker_idle.store(true, Ordering::SeqCst);
                // Pairs with the fence in `Signal::wake_worker`.
                fence(Ordering::SeqCst);
                if self.members.iter().any(Member::has_records) || !self.control.is_empty() {
                    self.signal.worker_idle.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            let mut incoming = std::mem::take(&mut self.incoming);
            let r = session
                .drive(Some(&self.signal.wake), deadline, &mut incoming)
                .await;
            self.signal.worker_idle.store(false, Ordering::SeqCst);
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

    /// Takes records until the window or the write buffer is full: replays first, then one
    /// record of each logger in turn; each is encoded into the session's batch.
    fn fill(&mut self, session: &mut Session) {
        let mut idle_turns = 0;
        while self.ledger.has_room() && session.has_write_room() {
            let t = if let Some(t) = self.ledger.next_replay() {
                t
            } else {
                if self.members.is_empty() || idle_turns >= self.members.len() {
                    break;
                }
                self.rr = (self.rr + 1) % self.members.len();
                match self.members[self.rr].next(&mut self.next_seq) {
                    Some(t) => {
                        idle_turns = 0;
                        t
                    }
                    None => {
                        idle_turns += 1;
                        continue;
                    }
                }
            };
            let member = self.members.iter().position(|m| m.id == t.member);
            let topic = match (t.kind, member) {
                (Kind::Event, Some(i)) => self.members[i].event_topic_bytes.clone(),
                _ => self.log_topic.clone(),
            };
            let payload = t.payload.clone();
            let index = t.index;
            let pkid = self.ledger.assign(t);
            if let Err(too_large) = session.publish(&topic, pkid, &payload) {
                // It can never be sent: fail it rather than reconnect for it forever.
                let msg = format!(
                    "a record of {} bytes is larger than the broker's maximum packet size \
                     ({} bytes); it was not sent",
                    too_large.size, too_large.max
                );
                diag(self.diagnostics, &msg);
                let _ = self.ledger.ack(pkid);
                if let Some(i) = member {
                    self.members[i].shared.set_last_error(msg);
                    if let Some(index) = index {
                        self.members[i].fail(index);
                    }
                }
            }
        }
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
        for m in &mut self.members {
            m.publish_low();
        }
        lost
    }

    fn connection_lost(&mut self, err: &SessionError, was_connected: bool) {
        self.signal.connected.store(false, Ordering::SeqCst);
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
        self.set_last_error(&msg);
        self.notify_all();
    }

    fn next_delay(&mut self) -> Duration {
        if !self.ever_connected && self.started.elapsed() < REGISTRATION_RACE {
            return QUICK_RETRY;
        }
        self.failures = self.failures.saturating_add(1);
        let exp = QUICK_RETRY.saturating_mul(1u32 << self.failures.min(6));
        let base = exp.min(MAX_BACKOFF);
        // +-25% jitter so that many tools restarted together do not reconnect in lockstep.
        base.mul_f64(0.75 + fastrand::f64() / 2.0)
    }

    fn settle(&mut self, t: Tracked, code: u8) {
        let Some(index) = t.index else {
            return;
        };
        // A record of a logger that has shut down since: it was counted as failed then.
        let Some(m) = self.members.iter_mut().find(|m| m.id == t.member) else {
            return;
        };
        if code < 0x80 {
            m.shared.delivered.fetch_add(1, Ordering::SeqCst);
        } else {
            m.shared.denied.fetch_add(1, Ordering::SeqCst);
            let topic = match t.kind {
                Kind::Log => LOG_TOPIC.to_string(),
                Kind::Event => m.event_topic.clone(),
            };
            let msg = format!(
                "the broker denied a publish to topic {topic:?} (reason 0x{code:02x} {}): add {topic:?} \
                 to mqttTopics.allowedPublications in the job JSON",
                reason_name(code)
            );
            let mut info = m.shared.info();
            if !info.denied_topics.contains(&topic) {
                info.denied_topics.push(topic);
                diag(self.diagnostics, &msg);
            }
            info.last_error = Some(msg);
        }
        m.settlements.settle(index);
    }

    /// Once a second at most per logger: one Warning record saying how many records its full
    /// queue dropped.
    fn report_drops(&mut self) {
        let mut members = std::mem::take(&mut self.members);
        for m in &mut members {
            self.report_spool(m);
        }
        self.members = members;
        for m in &mut self.members {
            let dropped = m.shared.dropped.load(Ordering::SeqCst);
            if dropped <= m.drops_reported {
                continue;
            }
            if m.last_drop_report
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            {
                continue;
            }
            let delta = dropped - m.drops_reported;
            m.drops_reported = dropped;
            m.last_drop_report = Some(StdInstant::now());
            let msg = format!(
                "kepmlog dropped {delta} record(s) because its queue (capacity {}) was full \
                 ({dropped} in total); raise the queue capacity or use the blocking overflow mode",
                m.capacity
            );
            if m.last_drop_stderr
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
            {
                diag(self.diagnostics, &msg);
                m.last_drop_stderr = Some(StdInstant::now());
            }
            m.push_internal(&mut self.next_seq, Level::Warning, &msg);
        }
    }

    /// The spool's news (records recovered, damage, its cap reached, a write failing): one
    /// diagnostic line and one Warning record each.
    fn report_spool(&mut self, m: &mut Member) {
        let Some(spool) = m.spool.clone() else {
            return;
        };
        for note in spool.take_reports() {
            diag(self.diagnostics, &note);
            m.push_internal(&mut self.next_seq, Level::Warning, &note);
        }
    }

    /// The worker ends: every logger still attached gets what is left counted as failed.
    fn finish(&mut self) {
        self.take_control();
        let mut left = self.ledger.take_all();
        left.retain(|t| t.index.is_some());
        left.sort_by_key(|t| t.index);
        self.signal.connected.store(false, Ordering::SeqCst);
        for m in self.members.drain(..) {
            let (mine, others) = left.into_iter().partition(|t| t.member == m.id);
            left = others;
            m.close(self.diagnostics, mine);
        }
    }
}
