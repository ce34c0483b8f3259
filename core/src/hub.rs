//! One broker connection per process and client id: loggers that resolve to the same client
//! id and broker settings share one worker and its MQTT session.
//!
//! The broker keeps one session per client id: a second connection with the same id takes the
//! session over and drops the first, so two loggers of one tool (a `logging` handler and a
//! direct logger, say) with their own connections would keep kicking each other off. The hub
//! hands every logger of the same connection key the same [`Conn`]; each logger keeps its own
//! queue, counters and flush, and the worker serves them in turn.
//!
//! The worker lives as long as some logger holds its `Conn`: the control channel's sender is
//! in the `Conn`, so when the last logger drops it the worker sees the channel closed,
//! disconnects and ends. The hub keeps only weak references.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::error::Error;
use crate::queue::{Control, MemberSpec, Signal};
use crate::worker::{self, WorkerConfig};

/// What makes two loggers' connections the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub client_id: String,
    pub broker: Option<(String, u16)>,
    pub fallback_broker: (String, u16),
    pub api_base: String,
    pub ca_bundle: Option<std::path::PathBuf>,
}

/// A worker and its connection, shared by the loggers that use it.
pub(crate) struct Conn {
    pub signal: Arc<Signal>,
    control: Sender<Control>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Conn {
    /// Hands a logger to the worker.
    pub fn attach(&self, member: MemberSpec) -> Result<(), Error> {
        self.control
            .send(Control::Attach(member))
            .map_err(|_| Error::Internal("the kepmlog worker has ended".to_string()))?;
        self.signal.wake.notify_one();
        Ok(())
    }

    /// Tells the worker a logger is gone: it serves the logger's last records until the
    /// deadline and counts what is left as failed.
    pub fn detach(&self, id: u64, deadline: std::time::Instant) {
        let _ = self.control.send(Control::Detach { id, deadline });
        self.signal.wake.notify_one();
    }

    /// The worker thread, for the last logger to join.
    pub fn take_thread(&self) -> Option<JoinHandle<()>> {
        self.thread.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

type Registry = Mutex<Vec<(Key, Weak<Conn>)>>;

fn registry() -> &'static Registry {
    static HUB: OnceLock<Registry> = OnceLock::new();
    HUB.get_or_init(|| Mutex::new(Vec::new()))
}

/// A process-unique id for each logger.
pub(crate) fn next_member_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The connection for `key`: the live one if a logger of this process already uses it, else a
/// new worker started with `config`. The member is attached under the registry's lock, so a
/// worker whose last logger is leaving cannot miss it.
pub(crate) fn attach(
    key: Key,
    member: MemberSpec,
    config: impl FnOnce() -> WorkerConfig,
) -> Result<Arc<Conn>, Error> {
    let mut hub = registry().lock().unwrap_or_else(|e| e.into_inner());
    hub.retain(|(_, weak)| weak.strong_count() > 0);
    let existing = hub
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, weak)| weak.upgrade());
    if let Some(conn) = existing {
        // A worker that already ended (its thread failed to start a runtime) refuses.
        if conn.attach(member).is_ok() {
            return Ok(conn);
        }
        return Err(Error::Internal(
            "the kepmlog worker of this connection has ended".to_string(),
        ));
    }
    let (control, control_rx) = crossbeam_channel::unbounded();
    // Queued before the worker starts, so that the worker's first look sees its first logger
    // (the fallback warning, if any, goes to it).
    let _ = control.send(Control::Attach(member));
    let signal = Arc::new(Signal::default());
    let config = config();
    let worker_signal = Arc::clone(&signal);
    let handle = std::thread::Builder::new()
        .name("kepmlog-worker".to_string())
        .spawn(move || worker::run(config, control_rx, worker_signal))
        .map_err(|e| Error::Internal(format!("cannot start the worker thread: {e}")))?;
    let conn = Arc::new(Conn {
        signal,
        control,
        thread: Mutex::new(Some(handle)),
    });
    hub.push((key, Arc::downgrade(&conn)));
    Ok(conn)
}
