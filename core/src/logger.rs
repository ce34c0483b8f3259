use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Sender, TrySendError};
use serde::Serialize;

use crate::error::Error;
use crate::hub::{self, Conn, Key};
use crate::identity::{self, ENV_JOB_ID};
use crate::item::{Item, Kind};
use crate::level::Level;
use crate::options::{self, Fallback, Options, Overflow, ENV_SPOOL_DIR};
use crate::outcome::Outcome;
use crate::queue::{MemberSpec, Shared, Signal};
use crate::record::{encode_ref, meta_ref};
use crate::spool::Spool;
use crate::worker::WorkerConfig;
use crate::{settings, text, tls};

/// Largest event payload, in bytes of compact JSON.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What a logger has done so far. `accepted = delivered + denied + failed + pending`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Records (and events) taken into the queue.
    pub accepted: u64,
    /// Acknowledged by the broker with a success reason code.
    pub delivered: u64,
    /// Not taken: the queue was full (see [`Overflow`]). Not part of `accepted`.
    pub dropped: u64,
    /// Refused by the broker (PUBACK reason code >= 0x80, e.g. topic not allowed).
    pub denied: u64,
    /// Given up: still undelivered when the logger shut down.
    pub failed: u64,
    /// Records (and events) written to stderr as text lines: with `fallback = stderr` and no
    /// job id, every one (none is then `accepted`; `accepted`, `delivered` and `pending` stay
    /// 0); otherwise the undelivered ones written at shutdown (also counted in `failed`).
    pub printed: u64,
    /// Accepted and not yet settled (queued or in flight).
    pub pending: u64,
    /// Records an earlier run of the job left in the spool, replayed by this logger before its
    /// own (part of `accepted`).
    pub recovered: u64,
    /// Records the spool's cap removed from disk before they were delivered: still sent while
    /// the process lives, but a crash would lose them.
    pub spool_dropped: u64,
    /// Successful connections after the first one.
    pub reconnects: u64,
    pub connected: bool,
    pub last_error: Option<String>,
    /// `host:port` of the broker in use, once known.
    pub broker: Option<String>,
    pub client_id: String,
}

/// A KeeperLogger client for one job task. Cheap to share (`&Logger` is `Send + Sync`).
///
/// Logging validates, builds the exact JSON and hands it to a bounded queue; a background
/// worker thread discovers the broker, connects over TLS MQTT v5 and publishes with QoS 1.
pub struct Logger {
    /// `None`: no job id and `fallback = stderr`; records become stderr lines.
    broker: Option<BrokerSink>,
    shared: Arc<Shared>,
    source: String,
    default_category: String,
    overflow: Overflow,
    capacity: usize,
    pid: u32,
    job_id: String,
    client_id: String,
    event_topic: String,
    closed: AtomicBool,
    drop_timeout: Duration,
    /// `denied` and `failed` (less those given up at close) as the last outcome saw them.
    seen_by_outcome: Mutex<(u64, u64)>,
}

/// The way to the broker of a logger that has a job id.
struct BrokerSink {
    tx: Sender<Item>,
    /// The connection this logger shares with the other loggers of the process that have
    /// the same client id and broker settings; taken at shutdown.
    conn: Mutex<Option<Arc<Conn>>>,
    signal: Arc<Signal>,
    member_id: u64,
    /// Every accepted record is also written here before `log` returns (`Options::spool_dir`).
    spool: Option<Arc<Spool>>,
}

/// The warning of `fallback = stderr` is printed once per process, however many loggers.
static STDERR_FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

impl Logger {
    /// Creates a logger and starts its worker. Never blocks on the network: discovery and
    /// connection happen on the worker; records logged meanwhile are queued.
    pub fn new(options: Options) -> Result<Logger, Error> {
        let args: Vec<String> = options
            .args
            .clone()
            .unwrap_or_else(|| std::env::args().collect());
        let job_id = match &options.job_id {
            Some(j) => j.trim().to_string(),
            None => std::env::var(ENV_JOB_ID)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        let fallback = Fallback::resolve(options.fallback)?;
        let to_stderr = job_id.is_empty() && fallback == Fallback::Stderr;
        if !to_stderr {
            identity::validate_job_id(&job_id)?;
        }
        let token = match &options.token {
            Some(t) => {
                identity::validate_token(t)?;
                t.clone()
            }
            None => identity::executable_token(&args),
        };
        let source = match &options.source {
            Some(s) if !s.trim().is_empty() => s.clone(),
            _ => token.clone(),
        };
        options::check_queue_capacity(options.queue_capacity)?;
        let event_topic = match &options.event_topic {
            Some(t) => {
                options::check_event_topic(t)?;
                t.clone()
            }
            None => format!("Jobs/{job_id}/events"),
        };
        if to_stderr {
            return Ok(Logger::to_stderr(&options, source, event_topic));
        }
        let ca = match &options.ca_bundle {
            Some(path) => {
                Some(
                    tls::load_ca_bundle(path).map_err(|reason| Error::InvalidOption {
                        option: "ca_bundle",
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let api_base = options
            .api_base
            .clone()
            .map(|b| b.trim_end_matches('/').to_string())
            .unwrap_or_else(|| identity::api_base_from_args(&args));
        match &options.broker {
            Some((host, port)) => {
                options::check_broker(host, *port)?;
                if ca.is_none() && !tls::is_loopback_host(host) {
                    return Err(Error::InvalidOption {
                        option: "broker",
                        reason: tls::not_loopback_message(host),
                    });
                }
            }
            None => settings::check_api_base(&api_base, ca.is_some()).map_err(|reason| {
                Error::InvalidOption {
                    option: "api_base",
                    reason,
                }
            })?,
        }

        let pid = std::process::id();
        let client_id = identity::client_id(&job_id, &token, pid);
        let (tx, rx) = crossbeam_channel::bounded(options.queue_capacity);
        let shared = Arc::new(Shared::default());
        let member_id = hub::next_member_id();
        let spool = match options.spool_dir.clone().or_else(|| {
            std::env::var_os(ENV_SPOOL_DIR)
                .filter(|d| !d.is_empty())
                .map(Into::into)
        }) {
            Some(dir) => Some(Arc::new(
                Spool::open(&dir, &job_id, member_id, options.spool_max_bytes).map_err(
                    |reason| Error::InvalidOption {
                        option: "spool_dir",
                        reason,
                    },
                )?,
            )),
            None => None,
        };
        // What earlier runs left: read here, so that it takes the first queue positions
        // before any record of this logger (a flush's target counts positions).
        let backlog = spool.as_ref().map(|s| s.take_backlog()).unwrap_or_default();
        shared
            .reserved
            .store(backlog.len() as u64, Ordering::SeqCst);
        shared
            .recovered
            .store(backlog.len() as u64, Ordering::SeqCst);
        let member = MemberSpec {
            id: member_id,
            rx,
            shared: Arc::clone(&shared),
            source: source.clone(),
            event_topic: event_topic.clone(),
            capacity: options.queue_capacity,
            undelivered_to_stderr: options.undelivered_to_stderr,
            spool: spool.clone(),
            backlog,
        };
        let key = Key {
            client_id: client_id.clone(),
            broker: options.broker.clone(),
            fallback_broker: options.fallback_broker.clone(),
            api_base: api_base.clone(),
            ca_bundle: options.ca_bundle.clone(),
        };
        let conn = hub::attach(key, member, || WorkerConfig {
            broker: options.broker.clone(),
            fallback_broker: options.fallback_broker.clone(),
            api_base,
            ca,
            settings_timeout: options.settings_timeout,
            client_id: client_id.clone(),
            diagnostics: options.stderr_diagnostics,
        })?;
        let signal = Arc::clone(&conn.signal);

        Ok(Logger {
            broker: Some(BrokerSink {
                tx,
                conn: Mutex::new(Some(conn)),
                signal,
                member_id,
                spool,
            }),
            shared,
            source,
            default_category: options.default_category.clone(),
            overflow: options.overflow,
            capacity: options.queue_capacity,
            pid,
            job_id,
            client_id,
            event_topic,
            closed: AtomicBool::new(false),
            drop_timeout: options.drop_timeout,
            seen_by_outcome: Mutex::new((0, 0)),
        })
    }

    /// A logger without a broker session (no worker, no connection, no settings request):
    /// every record is one line on stderr, written on the caller's thread.
    fn to_stderr(options: &Options, source: String, event_topic: String) -> Logger {
        if options.stderr_diagnostics && !STDERR_FALLBACK_WARNED.swap(true, Ordering::SeqCst) {
            text::write_line(
                "kepmlog: no job id (KEEPER_JOB_ID is not set): writing records to stderr \
                 (fallback=stderr); run the tool as a job task, or pass job_id / set \
                 KEEPER_JOB_ID, to publish to KeeperLogger\n",
            );
        }
        Logger {
            broker: None,
            shared: Arc::new(Shared::default()),
            source,
            default_category: options.default_category.clone(),
            overflow: options.overflow,
            capacity: options.queue_capacity,
            pid: std::process::id(),
            job_id: String::new(),
            client_id: String::new(),
            event_topic,
            closed: AtomicBool::new(false),
            drop_timeout: options.drop_timeout,
            seen_by_outcome: Mutex::new((0, 0)),
        }
    }

    /// True when records go to stderr instead of KeeperLogger (`fallback = stderr` and no
    /// job id).
    pub fn writes_to_stderr(&self) -> bool {
        self.broker.is_none()
    }

    /// A logger configured the way the agent starts a job task: job id from `KEEPER_JOB_ID`,
    /// API base from `--keeper-api-base`, token from the executable's name.
    pub fn from_env(source: impl Into<String>) -> Result<Logger, Error> {
        Logger::new(Options::new(source))
    }

    /// Logs one record. Returns at once: `Err(QueueFull)` means it was dropped and counted.
    pub fn log(&self, level: Level, category: &str, message: &str) -> Result<(), Error> {
        self.log_with(level, category, message, "", "")
    }

    /// Logs one record with a correlation id and a context (either may be `""`).
    pub fn log_with(
        &self,
        level: Level,
        category: &str,
        message: &str,
        correlation_id: &str,
        context: &str,
    ) -> Result<(), Error> {
        self.check_usable()?;
        let category = if category.is_empty() {
            &self.default_category
        } else {
            category
        };
        let meta = meta_ref(
            level,
            &self.source,
            category,
            message,
            correlation_id,
            context,
        )?;
        if self.broker.is_none() {
            self.print(&text::meta_ref_line(&meta, SystemTime::now()));
            return Ok(());
        }
        let payload = encode_ref(&meta);
        self.enqueue(Item {
            kind: Kind::Log,
            payload: payload.into(),
            at: SystemTime::now(),
        })
    }

    pub fn debug(&self, category: &str, message: &str) -> Result<(), Error> {
        self.log(Level::Debug, category, message)
    }
    pub fn info(&self, category: &str, message: &str) -> Result<(), Error> {
        self.log(Level::Info, category, message)
    }
    pub fn warning(&self, category: &str, message: &str) -> Result<(), Error> {
        self.log(Level::Warning, category, message)
    }
    pub fn error(&self, category: &str, message: &str) -> Result<(), Error> {
        self.log(Level::Error, category, message)
    }
    pub fn critical(&self, category: &str, message: &str) -> Result<(), Error> {
        self.log(Level::Critical, category, message)
    }
    pub fn verbose(&self, category: &str, message: &str) -> Result<(), Error> {
        self.log(Level::Verbose, category, message)
    }

    /// Publishes a job progress event (one JSON object) to the event topic, QoS 1.
    pub fn event(&self, event: &serde_json::Value) -> Result<(), Error> {
        self.check_usable()?;
        if !event.is_object() {
            return Err(Error::InvalidEvent(format!(
                "got a JSON {}",
                json_kind(event)
            )));
        }
        let payload = serde_json::to_vec(event).map_err(|e| Error::InvalidEvent(e.to_string()))?;
        if payload.len() > MAX_EVENT_BYTES {
            return Err(Error::InvalidEvent(format!(
                "{} bytes is over the {MAX_EVENT_BYTES}-byte limit",
                payload.len()
            )));
        }
        if self.broker.is_none() {
            let json = String::from_utf8_lossy(&payload);
            self.print(&text::event_line(SystemTime::now(), &self.source, &json));
            return Ok(());
        }
        self.enqueue(Item {
            kind: Kind::Event,
            payload: payload.into(),
            at: SystemTime::now(),
        })
    }

    /// [`Logger::event`] from JSON text.
    pub fn event_json(&self, json: &str) -> Result<(), Error> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::InvalidEvent(format!("not JSON ({e})")))?;
        self.event(&value)
    }

    fn print(&self, line: &str) {
        text::write_line(line);
        self.shared.printed.fetch_add(1, Ordering::SeqCst);
    }

    fn enqueue(&self, item: Item) -> Result<(), Error> {
        let Some(sink) = &self.broker else {
            return Err(Error::ShutDown);
        };
        self.shared.reserved.fetch_add(1, Ordering::SeqCst);
        // The spool's copy of the payload (a reference count, taken only with a spool).
        let spooled = sink
            .spool
            .as_ref()
            .map(|spool| (spool, item.kind, item.payload.clone()));
        let send = || match self.overflow {
            Overflow::Drop => sink
                .tx
                .try_send(item)
                .map_err(|e| matches!(e, TrySendError::Disconnected(_))),
            Overflow::Block(timeout) => sink
                .tx
                .send_timeout(item, timeout)
                .map_err(|e| e.is_disconnected()),
        };
        let sent = match spooled {
            Some((spool, kind, payload)) => spool.accept(kind, &payload, send),
            None => send(),
        };
        match sent {
            Ok(()) => {
                sink.signal.wake_worker();
                Ok(())
            }
            Err(disconnected) => {
                self.shared.reserved.fetch_sub(1, Ordering::SeqCst);
                self.shared.dropped.fetch_add(1, Ordering::SeqCst);
                // A flush may be waiting for the reservation just given back.
                self.shared.notify_progress();
                if disconnected {
                    Err(Error::ShutDown)
                } else {
                    Err(Error::QueueFull {
                        capacity: self.capacity,
                    })
                }
            }
        }
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::ShutDown);
        }
        if self.broker.is_none() {
            // No worker to lose in a fork: a child writes to the stderr it inherited.
            return Ok(());
        }
        let pid = std::process::id();
        if pid != self.pid {
            return Err(Error::Forked {
                parent_pid: self.pid,
                pid,
            });
        }
        Ok(())
    }

    /// Waits until every record accepted before the call is acknowledged, or the timeout.
    ///
    /// `Err(Timeout)` carries the number still unacknowledged (they stay queued);
    /// `Err(Denied)` and `Err(Undeliverable)` report records refused or given up since the
    /// previous flush. [`Logger::flush_outcome`] gives all of it at once.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.flush_outcome(timeout)?.into_result()
    }

    /// [`Logger::flush`], answering with every count rather than the first error. `Err` only
    /// for a logger that cannot be used (shut down, or created in the parent of this fork).
    pub fn flush_outcome(&self, timeout: Duration) -> Result<Outcome, Error> {
        self.check_usable()?;
        Ok(self.flush_until(Instant::now() + timeout))
    }

    fn flush_until(&self, deadline: Instant) -> Outcome {
        let Some(sink) = &self.broker else {
            return Outcome::default(); // every line is written by the time log() returns
        };
        let target = self.shared.reserved.load(Ordering::SeqCst);
        sink.signal.wake.notify_one();
        let undelivered = self.shared.wait_settled(target, deadline);
        let mut outcome = self.since_last_outcome(0);
        outcome.undelivered = undelivered;
        outcome
    }

    /// Denials and give-ups since the previous flush or shutdown (`at_close`: records given
    /// up at the shutdown deadline, which are counted in `failed` but are `undelivered`).
    fn since_last_outcome(&self, at_close: u64) -> Outcome {
        let denied = self.shared.denied.load(Ordering::SeqCst);
        let failed = self
            .shared
            .failed
            .load(Ordering::SeqCst)
            .saturating_sub(at_close);
        let mut seen = self
            .seen_by_outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let outcome = Outcome {
            undelivered: 0,
            denied: denied.saturating_sub(seen.0),
            denied_topics: Vec::new(),
            undeliverable: failed.saturating_sub(seen.1),
            last_error: self.shared.info().last_error.clone(),
        };
        *seen = (denied.max(seen.0), failed.max(seen.1));
        drop(seen);
        if outcome.denied > 0 {
            return Outcome {
                denied_topics: self.shared.info().denied_topics.clone(),
                ..outcome
            };
        }
        outcome
    }

    /// Flushes until the deadline, disconnects and stops the worker. Idempotent: later calls
    /// return `Ok(())`; logging afterwards returns [`Error::ShutDown`]. Records still
    /// undelivered at the deadline are counted as failed and written to stderr as text lines
    /// (unless `undelivered_to_stderr` is off). Errors as [`Logger::flush`].
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        self.shutdown_outcome(timeout)?.into_result()
    }

    /// [`Logger::shutdown`], answering with every count rather than the first error; a
    /// second call answers with an empty outcome. `Err` only in a forked child.
    pub fn shutdown_outcome(&self, timeout: Duration) -> Result<Outcome, Error> {
        let Some(sink) = &self.broker else {
            self.closed.store(true, Ordering::SeqCst);
            return Ok(Outcome::default());
        };
        let pid = std::process::id();
        if pid != self.pid {
            // The worker thread does not exist in a fork; the parent still owns the connection.
            return Err(Error::Forked {
                parent_pid: self.pid,
                pid,
            });
        }
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(Outcome::default());
        }
        let deadline = Instant::now() + timeout;
        let flushed = self.flush_until(deadline);
        let conn = sink.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(conn) = conn else {
            return Ok(flushed);
        };
        // The worker serves what is left of this logger until the deadline (a record logged
        // by another thread while shutdown began may still be on its way), counts the rest as
        // failed and lets it go; the other loggers on the connection go on.
        conn.detach(sink.member_id, deadline);
        // Detaching, and for the last logger the disconnect, need a moment even when the
        // flush used the whole budget.
        let join_by = deadline.max(Instant::now() + Duration::from_millis(200));
        let released = self.shared.wait_until(join_by, || self.shared.info().done);
        let left = if released {
            self.shared.info().failed_at_close
        } else {
            self.stats().pending
        };
        // What was refused or given up while the worker finished this logger's records.
        let late = self.since_last_outcome(if released { left } else { 0 });
        let outcome = Outcome {
            undelivered: left,
            denied: flushed.denied + late.denied,
            denied_topics: if late.denied > 0 {
                late.denied_topics
            } else {
                flushed.denied_topics
            },
            undeliverable: flushed.undeliverable + late.undeliverable,
            last_error: late.last_error,
        };
        // The last logger on the connection ends the worker (dropping the connection closes
        // its control channel) and joins it, unless it is stuck in a network call past the
        // deadline: then it stays detached and ends with the process.
        if let Ok(conn) = Arc::try_unwrap(conn) {
            let signal = Arc::clone(&conn.signal);
            let thread = conn.take_thread();
            drop(conn);
            signal.wake.notify_one();
            let finished = signal.wait_finished(join_by);
            if let (true, Some(thread)) = (finished, thread) {
                let _ = thread.join();
            }
        }
        Ok(outcome)
    }

    pub fn stats(&self) -> Stats {
        let dropped = self.shared.dropped.load(Ordering::SeqCst);
        let accepted = self.shared.reserved.load(Ordering::SeqCst);
        let delivered = self.shared.delivered.load(Ordering::SeqCst);
        let denied = self.shared.denied.load(Ordering::SeqCst);
        let failed = self.shared.failed.load(Ordering::SeqCst);
        let printed = self.shared.printed.load(Ordering::SeqCst);
        let info = self.shared.info();
        let (reconnects, connected) = match &self.broker {
            Some(sink) => (
                sink.signal.reconnects.load(Ordering::SeqCst),
                sink.signal.connected.load(Ordering::SeqCst),
            ),
            None => (0, false),
        };
        Stats {
            accepted,
            delivered,
            dropped,
            denied,
            failed,
            printed,
            pending: accepted.saturating_sub(delivered + denied + failed),
            recovered: self.shared.recovered.load(Ordering::SeqCst),
            spool_dropped: self
                .broker
                .as_ref()
                .and_then(|b| b.spool.as_ref())
                .map_or(0, |s| s.dropped()),
            reconnects,
            connected,
            last_error: info.last_error.clone(),
            broker: info.broker.clone(),
            client_id: self.client_id.clone(),
        }
    }

    /// `{jobId}_{token}_{pid}` as sent to the broker.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    pub fn job_id(&self) -> &str {
        &self.job_id
    }
    /// `MetaData.Source` of this logger's records.
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn event_topic(&self) -> &str {
        &self.event_topic
    }
    pub fn is_shut_down(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        if std::process::id() == self.pid && !self.closed.load(Ordering::SeqCst) {
            let _ = self.shutdown(self.drop_timeout);
        }
    }
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("client_id", &self.client_id)
            .field("source", &self.source)
            .field("event_topic", &self.event_topic)
            .finish_non_exhaustive()
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
