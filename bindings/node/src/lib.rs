//! N-API addon behind the `kepmlog` npm package. It links the core directly; `index.js` wraps
//! it with argument checks (TypeError/RangeError) and the `process.on('exit')` flush.
//!
//! Errors the core reports cross the boundary as plain values (`"kind:message"` strings) rather
//! than thrown napi errors: napi-rs can only throw with a `Status` code, while the package
//! promises `err.code === Error::kind()`. The JS wrapper turns them into `Error`s with `code`.
//!
//! Nothing here registers a libuv handle except the promise of `flush`/`shutdown` while it is
//! pending, so a script that logs and ends lets the event loop end.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use kepmlog::{identity, Error, Fallback, Level, Logger, Options, Overflow};
use napi::bindgen_prelude::{AsyncTask, Either};
use napi::{Env, Task};
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
    /// The main script: its file stem is the default token (the executable is `node`).
    pub script_path: Option<String>,
    pub stderr_diagnostics: Option<bool>,
    /// `"error"` or `"stderr"`; unset: `KEPMLOG_FALLBACK`, else error.
    pub fallback: Option<String>,
    pub undelivered_to_stderr: Option<bool>,
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

fn encode_error(e: &Error) -> String {
    format!("{}:{e}", e.kind())
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
    opts.token = o.token.or_else(|| {
        o.script_path.as_deref().and_then(|p| {
            Path::new(p)
                .file_stem()
                .map(|s| identity::safe_token(&s.to_string_lossy()))
        })
    });
    opts.api_base = o.api_base;
    opts.ca_bundle = o.ca_bundle.map(Into::into);
    if let Some(host) = o.broker_host {
        // index.js checks the range; 0 is refused by the core with a clear message.
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
    Ok(opts)
}

/// One core logger, owned by one JS `Logger`.
#[napi]
pub struct NativeLogger {
    inner: Arc<Logger>,
    drop_timeout: Duration,
}

/// Creates a logger, or returns `"kind:message"`.
#[napi]
pub fn create_logger(options: NativeOptions) -> Either<NativeLogger, String> {
    let opts = match build_options(options) {
        Ok(opts) => opts,
        Err(e) => return Either::B(encode_error(&e)),
    };
    let drop_timeout = opts.drop_timeout;
    match Logger::new(opts) {
        Ok(logger) => {
            let inner = Arc::new(logger);
            let mut live = lock(&LIVE);
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&inner));
            Either::A(NativeLogger {
                inner,
                drop_timeout,
            })
        }
        Err(e) => Either::B(encode_error(&e)),
    }
}

fn log_result(r: Result<(), Error>) -> Either<bool, String> {
    match r {
        Ok(()) => Either::A(true),
        Err(Error::QueueFull { .. }) => Either::A(false),
        Err(e) => Either::B(encode_error(&e)),
    }
}

/// What `flush`/`shutdown` report to JS: the undelivered count, or `"kind:message"` for a
/// failure other than the deadline.
fn settle(r: Result<(), Error>) -> Either<f64, String> {
    match r {
        Ok(()) => Either::A(0.0),
        Err(Error::Timeout { undelivered, .. }) => Either::A(undelivered as f64),
        Err(e) => Either::B(encode_error(&e)),
    }
}

#[napi]
impl NativeLogger {
    /// `level` is a wire value (0..5), checked by index.js. Returns true (accepted), false
    /// (dropped: queue full) or `"kind:message"`.
    #[napi]
    pub fn log(
        &self,
        level: u32,
        category: String,
        message: String,
        correlation_id: Option<String>,
        context: Option<String>,
    ) -> Either<bool, String> {
        let Some(level) = Level::from_wire(i64::from(level)) else {
            return Either::B(encode_error(&Error::InvalidLevel(level.to_string())));
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
    pub fn event(&self, json: String) -> Either<bool, String> {
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
    pub fn flush_sync(&self, timeout_ms: f64) -> Either<f64, String> {
        settle(self.inner.flush(millis(timeout_ms)))
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
    pub fn shutdown_sync(&self, timeout_ms: f64) -> Either<f64, String> {
        settle(self.inner.shutdown(millis(timeout_ms)))
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
/// `exit` listeners that run after this one.
#[napi]
pub fn flush_all_sync(timeout_ms: f64) -> f64 {
    let deadline = Instant::now() + millis(timeout_ms);
    let live: Vec<Arc<Logger>> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    let mut undelivered = 0u64;
    let mut behind = Vec::new();
    for logger in live {
        if logger.is_shut_down() {
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(Error::Timeout { undelivered: n, .. }) = logger.flush(left) {
            undelivered += n;
            behind.push(logger);
        }
    }
    for logger in behind {
        let _ = logger.shutdown(Duration::ZERO);
    }
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
    type Output = Either<f64, String>;
    type JsValue = Either<f64, String>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(settle(if self.shutdown {
            self.logger.shutdown(self.timeout)
        } else {
            self.logger.flush(self.timeout)
        }))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
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

/// The core's version, for diagnostics.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
