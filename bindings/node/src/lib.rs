//! N-API addon behind the `kepmlog` npm package. It links the core directly; `index.js` wraps
//! it with type checks (TypeError/RangeError) and the `process.on('exit')` flush.
//!
//! Core errors are thrown as napi errors whose custom status is the core's `ErrorKind`, so
//! `err.code` is the kind (`'denied'`, `'shut_down'`, ...) and the message is the core's text;
//! `index.js` only re-classes them as `KepmlogError`. The errors of `flush`/`shutdown` also
//! carry the core's outcome (`undelivered`, `denied`, `deniedTopics`, `undeliverable`).
//!
//! Nothing here registers a libuv handle except the promise of `flush`/`shutdown` while it is
//! pending, so a script that logs and ends lets the event loop end.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use kepmlog::{identity, Error, ErrorKind, Fallback, Level, Logger, Options, Outcome, Overflow};
use napi::bindgen_prelude::{AsyncTask, JsObjectValue};
use napi::{Env, JsError, JsValue, Status, Task, Unknown};
use napi_derive::napi;

/// Options as `index.js` passes them, already type-checked and defaulted there.
#[napi(object)]
pub struct NativeOptions {
    pub source: Option<String>,
    pub default_category: Option<String>,
    pub job_id: Option<String>,
    pub token: Option<String>,
    pub api_base: Option<String>,
    pub ca_bundle: Option<String>,
    pub broker_host: Option<String>,
    pub broker_port: Option<u32>,
    pub queue_capacity: Option<u32>,
    /// Set: `Overflow::Block` with this wait; unset: `Overflow::Drop`.
    pub overflow_block_ms: Option<f64>,
    pub event_topic: Option<String>,
    pub settings_timeout_ms: Option<f64>,
    pub drop_timeout_ms: Option<f64>,
    pub args: Option<Vec<String>>,
    /// The main script (`process.argv[1]`): the core names the token after it.
    pub script_path: Option<String>,
    pub stderr_diagnostics: Option<bool>,
    /// `"error"` or `"stderr"`; unset: `KEPMLOG_FALLBACK`, else error.
    pub fallback: Option<String>,
    pub undelivered_to_stderr: Option<bool>,
    pub spool_dir: Option<String>,
}

/// Loggers alive in this process, for the exit-time flush.
static LIVE: Mutex<Vec<Weak<Logger>>> = Mutex::new(Vec::new());
/// Loggers garbage-collected without shutdown, still delivering on a background thread.
static ORPHANS: Mutex<usize> = Mutex::new(0);
static ORPHANS_DONE: Condvar = Condvar::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain counters and lists: a panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The napi error status of a core error: napi-rs makes it the JS error's `code`.
pub struct Code(ErrorKind);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

/// The message every binding's error has: the core's text; Node's say where they come from.
fn message(e: &Error) -> String {
    format!("kepmlog: {e}")
}

fn core_error(e: Error) -> napi::Error<Code> {
    let reason = message(&e);
    napi::Error::new(Code(e.kind()), reason)
}

/// The JS error of a failed `flush`/`shutdown`, with the outcome as properties when there is
/// one. Returned as a napi error holding that object, which napi-rs throws (or rejects the
/// promise with) as it is.
fn settle_error(env: Env, e: &Error, outcome: Option<&Outcome>) -> napi::Error {
    let unknown = JsError::from(napi::Error::new(Code(e.kind()), message(e))).into_unknown(env);
    let built = outcome.map_or(Ok(()), |o| with_outcome(&unknown, o));
    match built {
        Ok(()) => napi::Error::from(unknown),
        // Only when the JS engine cannot make objects any more; still say what went wrong.
        Err(_) => napi::Error::new(Status::GenericFailure, message(e)),
    }
}

fn with_outcome(error: &Unknown<'_>, o: &Outcome) -> napi::Result<()> {
    let mut obj = error.coerce_to_object()?;
    // Counts above 2^53 records are not reachable in one process.
    obj.set_named_property("undelivered", o.undelivered as f64)?;
    obj.set_named_property("denied", o.denied as f64)?;
    obj.set_named_property("deniedTopics", o.denied_topics.clone())?;
    obj.set_named_property("undeliverable", o.undeliverable as f64)?;
    Ok(())
}

/// What `flush`/`shutdown` answer (the rule of the README's "Flush and shutdown", the same in
/// every binding): the number undelivered at the deadline, unless records were denied or
/// given up, which is an error carrying the whole outcome.
fn settle(env: Env, result: Result<Outcome, Error>) -> napi::Result<f64> {
    let outcome = result.map_err(|e| settle_error(env, &e, None))?;
    match outcome.error() {
        Some(e) if e.kind() != ErrorKind::Timeout => Err(settle_error(env, &e, Some(&outcome))),
        // A deadline alone is a count: the records stay queued (flush) or went to stderr
        // (shutdown), and the caller decides whether that matters.
        _ => Ok(outcome.undelivered as f64),
    }
}

fn millis(ms: f64) -> Duration {
    // index.js rejects negatives and NaN already; `from_secs_f64` panics on them, so this
    // stays total (NaN and negatives -> 0, huge -> about 30 years).
    let secs = ms / 1000.0;
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(secs.min(1.0e9))
    }
}

fn build_options(o: NativeOptions) -> Result<Options, Error> {
    let mut opts = Options::default();
    opts.source = o.source;
    if let Some(c) = o.default_category {
        opts.default_category = c;
    }
    opts.job_id = o.job_id;
    opts.token = Some(
        o.token
            .unwrap_or_else(|| identity::script_token(o.script_path.as_deref(), "node")),
    );
    opts.api_base = o.api_base;
    opts.ca_bundle = o.ca_bundle.map(Into::into);
    if let Some(host) = o.broker_host {
        // index.js had the core check the pair; 0 is refused by the core again.
        let port = u16::try_from(o.broker_port.unwrap_or(0)).unwrap_or(0);
        opts.broker = Some((host, port));
    }
    if let Some(cap) = o.queue_capacity {
        opts.queue_capacity = cap as usize;
    }
    if let Some(ms) = o.overflow_block_ms {
        opts.overflow = Overflow::Block(millis(ms));
    }
    opts.event_topic = o.event_topic;
    if let Some(ms) = o.settings_timeout_ms {
        opts.settings_timeout = millis(ms);
    }
    if let Some(ms) = o.drop_timeout_ms {
        opts.drop_timeout = millis(ms);
    }
    opts.args = o.args;
    if let Some(on) = o.stderr_diagnostics {
        opts.stderr_diagnostics = on;
    }
    if let Some(f) = o.fallback {
        opts.fallback = Some(Fallback::parse(&f)?);
    }
    if let Some(on) = o.undelivered_to_stderr {
        opts.undelivered_to_stderr = on;
    }
    opts.spool_dir = o.spool_dir.map(Into::into);
    Ok(opts)
}

/// One core logger, owned by one JS `Logger`.
#[napi]
pub struct NativeLogger {
    inner: Arc<Logger>,
    drop_timeout: Duration,
}

/// Creates a logger.
#[napi]
pub fn create_logger(options: NativeOptions) -> napi::Result<NativeLogger, Code> {
    let opts = build_options(options).map_err(core_error)?;
    let drop_timeout = opts.drop_timeout;
    let inner = Arc::new(Logger::new(opts).map_err(core_error)?);
    let mut live = lock(&LIVE);
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(&inner));
    Ok(NativeLogger {
        inner,
        drop_timeout,
    })
}

fn log_result(r: Result<(), Error>) -> napi::Result<bool, Code> {
    match r {
        Ok(()) => Ok(true),
        Err(Error::QueueFull { .. }) => Ok(false),
        Err(e) => Err(core_error(e)),
    }
}

#[napi]
impl NativeLogger {
    /// `level` is a wire value (0..5), checked by index.js. Returns true (accepted) or false
    /// (dropped: queue full).
    #[napi]
    pub fn log(
        &self,
        level: u32,
        category: String,
        message: String,
        correlation_id: Option<String>,
        context: Option<String>,
    ) -> napi::Result<bool, Code> {
        let Some(level) = Level::from_wire(i64::from(level)) else {
            return Err(core_error(Error::InvalidLevel(level.to_string())));
        };
        // index.js passes undefined for the usual empty fields: cheaper than converting "".
        log_result(self.inner.log_with(
            level,
            &category,
            &message,
            correlation_id.as_deref().unwrap_or(""),
            context.as_deref().unwrap_or(""),
        ))
    }

    /// `json` is the `JSON.stringify` of the caller's object.
    #[napi]
    pub fn event(&self, json: String) -> napi::Result<bool, Code> {
        log_result(self.inner.event_json(&json))
    }

    #[napi]
    pub fn flush(&self, timeout_ms: f64) -> AsyncTask<Settle> {
        AsyncTask::new(Settle {
            logger: self.inner.clone(),
            timeout: millis(timeout_ms),
            shutdown: false,
        })
    }

    #[napi]
    pub fn flush_sync(&self, env: Env, timeout_ms: f64) -> napi::Result<f64> {
        settle(env, self.inner.flush_outcome(millis(timeout_ms)))
    }

    #[napi]
    pub fn shutdown(&self, timeout_ms: f64) -> AsyncTask<Settle> {
        AsyncTask::new(Settle {
            logger: self.inner.clone(),
            timeout: millis(timeout_ms),
            shutdown: true,
        })
    }

    #[napi]
    pub fn shutdown_sync(&self, env: Env, timeout_ms: f64) -> napi::Result<f64> {
        settle(env, self.inner.shutdown_outcome(millis(timeout_ms)))
    }

    /// `Stats` as JSON text: u64 counters and nullable strings map onto JS most simply so.
    #[napi]
    pub fn stats_json(&self) -> String {
        serde_json::to_string(&self.inner.stats()).unwrap_or_else(|_| "{}".to_string())
    }

    #[napi(getter)]
    pub fn client_id(&self) -> String {
        self.inner.client_id().to_string()
    }

    #[napi(getter)]
    pub fn job_id(&self) -> String {
        self.inner.job_id().to_string()
    }

    #[napi(getter)]
    pub fn source(&self) -> String {
        self.inner.source().to_string()
    }

    #[napi(getter)]
    pub fn event_topic(&self) -> String {
        self.inner.event_topic().to_string()
    }

    #[napi(getter)]
    pub fn is_shut_down(&self) -> bool {
        self.inner.is_shut_down()
    }

    /// True when records go to stderr instead of KeeperLogger (fallback "stderr", no job id).
    #[napi(getter)]
    pub fn writes_to_stderr(&self) -> bool {
        self.inner.writes_to_stderr()
    }
}

impl Drop for NativeLogger {
    /// Runs in the GC finalizer on the JS thread: the core's bounded shutdown would block the
    /// event loop for up to `drop_timeout`, so it runs on its own thread, which the exit-time
    /// flush waits for.
    fn drop(&mut self) {
        if self.inner.is_shut_down() {
            return;
        }
        let logger = self.inner.clone();
        let timeout = self.drop_timeout;
        *lock(&ORPHANS) += 1;
        let spawned = std::thread::Builder::new()
            .name("kepmlog-drop".to_string())
            .spawn(move || {
                let _ = logger.shutdown(timeout);
                drop(logger);
                let mut n = lock(&ORPHANS);
                *n = n.saturating_sub(1);
                ORPHANS_DONE.notify_all();
            });
        if spawned.is_err() {
            // No thread to be had: the core's own Drop does the bounded shutdown here instead.
            let mut n = lock(&ORPHANS);
            *n = n.saturating_sub(1);
        }
    }
}

/// Flushes every live logger and waits for garbage-collected ones still delivering, all within
/// one deadline. Returns the number of records still undelivered. Called from the
/// `process.on('exit')` hook, where nothing asynchronous can run any more.
///
/// A logger that still has undelivered records at the deadline is shut down at once: the
/// process is ending, and its shutdown writes those records to stderr (unless
/// `undeliveredToStderr` is off) where the agent captures them. The others stay usable for
/// `exit` listeners that run after this one. `shut_down_behind: false` (a signal the program
/// handles itself, so the process may go on) leaves every logger running instead.
#[napi]
pub fn flush_all_sync(timeout_ms: f64, shut_down_behind: Option<bool>) -> f64 {
    let deadline = Instant::now() + millis(timeout_ms);
    let live: Vec<Arc<Logger>> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    let undelivered = kepmlog::flush_at_exit(
        live.iter().map(Arc::as_ref),
        deadline,
        shut_down_behind.unwrap_or(true),
    );
    let mut n = lock(&ORPHANS);
    while *n > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        n = match ORPHANS_DONE.wait_timeout(n, left) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
    }
    undelivered as f64
}

/// `flush`/`shutdown` on the libuv thread pool, so the JS thread never waits on the network.
pub struct Settle {
    logger: Arc<Logger>,
    timeout: Duration,
    shutdown: bool,
}

impl Task for Settle {
    type Output = Result<Outcome, Error>;
    type JsValue = f64;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(if self.shutdown {
            self.logger.shutdown_outcome(self.timeout)
        } else {
            self.logger.flush_outcome(self.timeout)
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        // An error here rejects the promise with the error object settle built.
        settle(env, output)
    }
}

/// The wire value of a level name, parsed by the core (its names and aliases, any case, or
/// "0".."5"), so every binding accepts the same names; -1 when it is not a level.
#[napi]
pub fn parse_level(name: String) -> i32 {
    name.parse::<Level>()
        .map(|l| i32::from(l.wire_value()))
        .unwrap_or(-1)
}

/// `"HOST:PORT"` (an IPv6 host in brackets) as the core parses it.
#[napi(object)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u32,
}

#[napi]
pub fn parse_broker(text: String) -> napi::Result<BrokerAddress, Code> {
    let (host, port) = kepmlog::parse_broker(&text).map_err(core_error)?;
    Ok(BrokerAddress {
        host,
        port: u32::from(port),
    })
}

/// A `{ host, port }` broker, checked by the core. `port` is any integer index.js was given.
#[napi]
pub fn check_broker(host: String, port: i64) -> napi::Result<(), Code> {
    match u16::try_from(port) {
        Ok(port) => kepmlog::check_broker(&host, port).map_err(core_error),
        // The core takes a u16 port, so it cannot see this one: its parser names the range.
        Err(_) => kepmlog::parse_broker(&format!("[{host}]:{port}"))
            .map(drop)
            .map_err(core_error),
    }
}

#[napi]
pub fn check_queue_capacity(capacity: u32) -> napi::Result<(), Code> {
    kepmlog::check_queue_capacity(capacity as usize).map_err(core_error)
}

/// Whether the overflow name (the core's: "drop" or "block", any case) means block.
#[napi]
pub fn overflow_blocks(name: String) -> napi::Result<bool, Code> {
    let overflow = Overflow::parse(&name, Duration::ZERO).map_err(core_error)?;
    Ok(matches!(overflow, Overflow::Block(_)))
}

/// The core's token of a tool run by Node: its script's name, else "node".
#[napi]
pub fn script_token(script: Option<String>) -> String {
    identity::script_token(script.as_deref(), "node")
}

/// The core's timeout for a logger closed without one: the exit hook's.
#[napi]
pub fn default_close_timeout_ms() -> f64 {
    kepmlog::DEFAULT_CLOSE_TIMEOUT.as_secs_f64() * 1000.0
}

/// Every `err.code` a core error can have.
#[napi]
pub fn error_kinds() -> Vec<String> {
    ErrorKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect()
}

/// The core's version, for diagnostics.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
