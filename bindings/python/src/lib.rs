//! `kepmlog._kepmlog`: the native half of the `kepmlog` Python package.
//!
//! A thin shell over the Rust core: the Python package (`python/kepmlog/`) owns the public API,
//! keyword handling, fork re-creation and interpreter-exit flushing; this module converts
//! arguments, releases the GIL around every wait and maps core errors onto the package's
//! exception classes (defined in Python so they can subclass `ValueError`, `PermissionError`).
//! The core's worker thread never touches Python, so it never needs the GIL.

use std::borrow::Cow;
use std::time::Duration;

use kepmlog::{Error, ErrorKind, Fallback, Level, Logger, Options, Outcome, Overflow};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

/// The exception classes of `kepmlog._errors`, looked up once: errors can come on hot paths
/// (a handler's records after shutdown, empty messages in a loop), and an import per error
/// costs a module lookup and an attribute lookup each time.
struct ErrorClasses {
    base: Py<PyType>,
    job_id: Py<PyType>,
    invalid_token: Py<PyType>,
    invalid_option: Py<PyType>,
    empty_message: Py<PyType>,
    invalid_level: Py<PyType>,
    invalid_event: Py<PyType>,
    shut_down: Py<PyType>,
    denied: Py<PyType>,
    undeliverable: Py<PyType>,
    forked: Py<PyType>,
}

static ERROR_CLASSES: PyOnceLock<ErrorClasses> = PyOnceLock::new();

impl ErrorClasses {
    fn get(py: Python<'_>) -> PyResult<&ErrorClasses> {
        ERROR_CLASSES.get_or_try_init(py, || {
            let m = py.import("kepmlog._errors")?;
            let class = |name: &str| -> PyResult<Py<PyType>> {
                Ok(m.getattr(name)?.cast_into::<PyType>()?.unbind())
            };
            Ok(ErrorClasses {
                base: class("KepmlogError")?,
                job_id: class("JobIdError")?,
                invalid_token: class("InvalidTokenError")?,
                invalid_option: class("InvalidOptionError")?,
                empty_message: class("EmptyMessageError")?,
                invalid_level: class("InvalidLevelError")?,
                invalid_event: class("InvalidEventError")?,
                shut_down: class("ShutDownError")?,
                denied: class("DeniedError")?,
                undeliverable: class("UndeliverableError")?,
                forked: class("ForkedError")?,
            })
        })
    }

    /// Exhaustive on purpose: a kind added to the core does not compile here until it has a
    /// class.
    fn of(&self, kind: ErrorKind) -> &Py<PyType> {
        match kind {
            ErrorKind::MissingJobId | ErrorKind::InvalidJobId => &self.job_id,
            ErrorKind::InvalidToken => &self.invalid_token,
            ErrorKind::InvalidOption => &self.invalid_option,
            ErrorKind::EmptyMessage => &self.empty_message,
            ErrorKind::InvalidLevel => &self.invalid_level,
            ErrorKind::InvalidEvent => &self.invalid_event,
            ErrorKind::ShutDown => &self.shut_down,
            ErrorKind::Denied => &self.denied,
            ErrorKind::Undeliverable => &self.undeliverable,
            ErrorKind::Forked => &self.forked,
            // No Python class of their own: log calls report a full queue as False and
            // flush/shutdown a deadline as a count, so users never catch these by type.
            ErrorKind::QueueFull | ErrorKind::Timeout | ErrorKind::Internal => &self.base,
        }
    }
}

/// The `kepmlog` exception instance for a core error (message: the core's text).
fn exception<'py>(py: Python<'py>, err: &Error) -> PyResult<Bound<'py, PyAny>> {
    let kind = err.kind();
    let classes = ErrorClasses::get(py)?;
    classes
        .of(kind)
        .bind(py)
        .call1((err.to_string(), kind.as_str()))
}

/// Turns a core error into the matching `kepmlog` exception.
fn to_py_err(py: Python<'_>, err: &Error) -> PyErr {
    match exception(py, err) {
        Ok(exc) => PyErr::from_value(exc),
        // Only when the package is broken: still say what went wrong.
        Err(_) => PyRuntimeError::new_err(err.to_string()),
    }
}

/// What `flush`/`shutdown` answer for an outcome (the rule of the README's "Flush and
/// shutdown", the same in every binding): the number undelivered at the deadline, unless
/// records were denied or given up, which raises with the whole outcome as attributes.
fn settle(py: Python<'_>, outcome: Outcome) -> PyResult<u64> {
    let err = match outcome.error() {
        Some(e) if e.kind() != ErrorKind::Timeout => e,
        // A deadline alone is a count: the records stay queued (flush) or went to stderr
        // (shutdown), and the caller decides whether that matters.
        _ => return Ok(outcome.undelivered),
    };
    let made = exception(py, &err).and_then(|exc| {
        exc.setattr(intern!(py, "undelivered"), outcome.undelivered)?;
        exc.setattr(intern!(py, "denied"), outcome.denied)?;
        exc.setattr(intern!(py, "denied_topics"), outcome.denied_topics.clone())?;
        exc.setattr(intern!(py, "undeliverable"), outcome.undeliverable)?;
        Ok(exc)
    });
    Err(match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(err.to_string()),
    })
}

/// The broker option: `"HOST:PORT"` parsed by the core, or a `(host, port)` tuple checked by
/// it. `kepmlog.Logger` has already refused other types with a TypeError.
fn broker_option(py: Python<'_>, broker: &Bound<'_, PyAny>) -> PyResult<(String, u16)> {
    if let Ok(text) = broker.cast::<PyString>() {
        return kepmlog::parse_broker(&text.to_cow()?).map_err(|e| to_py_err(py, &e));
    }
    let pair = broker.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
    let Some((host, port)) = pair.and_then(|t| t.extract::<(String, i64)>().ok()) else {
        return Err(PyTypeError::new_err(format!(
            "broker must be 'HOST:PORT' or a (host, port) tuple, not {}",
            type_name(broker)
        )));
    };
    match u16::try_from(port) {
        Ok(port) => kepmlog::check_broker(&host, port)
            .map(|()| (host, port))
            .map_err(|e| to_py_err(py, &e)),
        // The core takes a u16 port, so it cannot see this one: its parser names the range.
        Err(_) => kepmlog::parse_broker(&format!("[{host}]:{port}")).map_err(|e| to_py_err(py, &e)),
    }
}

/// Seconds as a `Duration`; negative, NaN or absurd values are a `ValueError`.
fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a number of seconds >= 0, got {value}"
        ))
    })
}

/// One core logger. The Python `kepmlog.Logger` wraps it; use that.
#[pyclass(module = "kepmlog._kepmlog", frozen)]
struct NativeLogger {
    inner: Option<Logger>,
    /// The process that created it: in a forked child the parent's handle is left alone.
    pid: u32,
    block: bool,
    drop_timeout: Duration,
}

impl NativeLogger {
    fn logger(&self) -> &Logger {
        // `inner` is only emptied by Drop.
        self.inner.as_ref().unwrap_or_else(|| unreachable!())
    }

    fn push(
        &self,
        py: Python<'_>,
        level: Level,
        category: &str,
        message: &str,
        correlation_id: &str,
        context: &str,
    ) -> PyResult<bool> {
        let logger = self.logger();
        let result = if self.block {
            // Waiting for queue room must not hold up the other Python threads.
            py.detach(|| logger.log_with(level, category, message, correlation_id, context))
        } else {
            logger.log_with(level, category, message, correlation_id, context)
        };
        accepted(py, result)
    }
}

/// `logging.LogRecord`, and its `getMessage` as first seen here.
static LOG_RECORD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static GET_MESSAGE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static WITH_EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A `logging.LogRecord` (or any object the handler is given) being read.
struct Record<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    /// `record.__dict__`: where `extra` keys live.
    dict: Bound<'py, PyDict>,
    /// `type(record)`.
    ty: Bound<'py, PyType>,
    /// Exactly a `logging.LogRecord`: its attributes are plain entries of `dict`.
    exact: bool,
}

impl<'a, 'py> Record<'a, 'py> {
    fn new(py: Python<'py>, obj: &'a Bound<'py, PyAny>) -> PyResult<Self> {
        let log_record = LOG_RECORD.import(py, "logging", "LogRecord")?;
        let dict = obj
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()?;
        let ty = obj.get_type();
        let exact = ty.is(log_record);
        Ok(Record {
            obj,
            dict,
            ty,
            exact,
        })
    }

    /// `record.<name>`.
    fn attr(&self, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        if self.exact {
            if let Some(v) = self.dict.get_item(name)? {
                return Ok(v);
            }
        }
        self.obj.getattr(name)
    }

    /// `record.getMessage()`: computed here (`str(msg) % args` when there are args, as
    /// `LogRecord.getMessage` does) unless the record's class has another `getMessage`.
    fn message(&self) -> PyResult<Bound<'py, PyAny>> {
        let py = self.obj.py();
        let original = GET_MESSAGE.get_or_try_init(py, || {
            LOG_RECORD
                .import(py, "logging", "LogRecord")?
                .getattr("getMessage")
                .map(Bound::unbind)
        })?;
        let get_message = intern!(py, "getMessage");
        if !self.ty.getattr(get_message)?.is(original) {
            return self.obj.call_method0(get_message);
        }
        let msg = as_str(&self.attr(intern!(py, "msg"))?)?;
        let args = self.attr(intern!(py, "args"))?;
        if args.is_truthy()? {
            msg.rem(args)
        } else {
            Ok(msg)
        }
    }
}

/// `record.__dict__.get(key)` when it is truthy (the handler's `extra.get(key) or default`).
fn present<'py>(
    extra: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match extra.get_item(key)? {
        Some(v) if v.is_truthy()? => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// `v if type(v) is str else str(v)`.
fn as_str<'py>(v: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if v.is_exact_instance_of::<PyString>() {
        Ok(v.clone())
    } else {
        Ok(v.str()?.into_any())
    }
}

/// The KeeperLogger level of a `logging` level number (`kepmlog.wire_level`).
fn wire_level(levelno: f64) -> Level {
    if levelno >= 50.0 {
        Level::Critical
    } else if levelno >= 40.0 {
        Level::Error
    } else if levelno >= 30.0 {
        Level::Warning
    } else if levelno >= 20.0 {
        Level::Info
    } else if levelno >= 10.0 {
        Level::Debug
    } else {
        Level::Verbose
    }
}

#[pymethods]
impl NativeLogger {
    #[new]
    #[pyo3(signature = (
        source, default_category, job_id, token, api_base, ca_bundle, broker,
        queue_capacity, overflow, block_timeout, event_topic, args, exit_timeout, diagnostics,
        fallback = None, undelivered_to_stderr = true, spool_dir = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: Option<String>,
        default_category: String,
        job_id: Option<String>,
        token: Option<String>,
        api_base: Option<String>,
        ca_bundle: Option<String>,
        broker: Option<Bound<'_, PyAny>>,
        queue_capacity: i64,
        overflow: &str,
        block_timeout: f64,
        event_topic: Option<String>,
        args: Option<Vec<String>>,
        exit_timeout: f64,
        diagnostics: bool,
        fallback: Option<String>,
        undelivered_to_stderr: bool,
        spool_dir: Option<String>,
    ) -> PyResult<NativeLogger> {
        let core = |e: Error| to_py_err(py, &e);
        // A negative capacity is refused by the core like 0 is ("at least 1").
        let queue_capacity = usize::try_from(queue_capacity).unwrap_or(0);
        kepmlog::check_queue_capacity(queue_capacity).map_err(core)?;
        let mut options = Options::default()
            .default_category(default_category)
            .queue_capacity(queue_capacity)
            .stderr_diagnostics(diagnostics)
            .undelivered_to_stderr(undelivered_to_stderr);
        if let Some(f) = fallback {
            options.fallback = Some(Fallback::parse(&f).map_err(core)?);
        }
        // block_timeout only matters (and is only checked) when the core's answer is block.
        options.overflow = match Overflow::parse(overflow, Duration::ZERO).map_err(core)? {
            Overflow::Block(_) => Overflow::Block(seconds("block_timeout", block_timeout)?),
            other => other,
        };
        let block = matches!(options.overflow, Overflow::Block(_));
        options.source = source;
        options.job_id = job_id;
        options.token = token;
        options.api_base = api_base;
        options.ca_bundle = ca_bundle.map(Into::into);
        options.spool_dir = spool_dir.map(Into::into);
        options.broker = broker.map(|b| broker_option(py, &b)).transpose()?;
        options.event_topic = event_topic;
        options.args = args;
        let drop_timeout = seconds("exit_timeout", exit_timeout)?;
        options.drop_timeout = drop_timeout;
        let logger = Logger::new(options).map_err(core)?;
        Ok(NativeLogger {
            inner: Some(logger),
            pid: std::process::id(),
            block,
            drop_timeout,
        })
    }

    /// Queues one record. True: accepted; False: the queue was full (dropped and counted).
    #[pyo3(signature = (level, category, message, correlation_id, context))]
    fn log(
        &self,
        py: Python<'_>,
        level: i64,
        category: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
        correlation_id: &Bound<'_, PyAny>,
        context: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let level = Level::from_wire(level)
            .ok_or_else(|| to_py_err(py, &Error::InvalidLevel(level.to_string())))?;
        self.push(
            py,
            level,
            &text("category", category)?,
            &text("message", message)?,
            &text("correlation_id", correlation_id)?,
            &text("context", context)?,
        )
    }

    /// `KeeperLoggerHandler.emit` in one call: queues one `logging.LogRecord`. Level from
    /// `levelno` (as `kepmlog.wire_level`), Message `message` (the handler's formatter output)
    /// or else `record.getMessage()`, Category / CorrelationId / Context from the record's
    /// `extra` keys when present and truthy (Category falls back to `default_category`), then
    /// `exc_info` / `stack_info` appended to Context by `kepmlog._handler._with_exception`.
    #[pyo3(signature = (record, default_category, message = None))]
    fn log_record(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        default_category: &Bound<'_, PyAny>,
        message: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let rec = Record::new(py, record)?;
        let levelno: f64 = rec.attr(intern!(py, "levelno"))?.extract()?;
        let message = match message {
            Some(m) => m,
            None => rec.message()?,
        };
        let category = match present(&rec.dict, intern!(py, "category"))? {
            Some(c) => as_str(&c)?,
            None => as_str(default_category)?,
        };
        let correlation_id = match present(&rec.dict, intern!(py, "correlation_id"))? {
            Some(c) => Some(as_str(&c)?),
            None => None,
        };
        let mut context = match present(&rec.dict, intern!(py, "context"))? {
            Some(c) => Some(as_str(&c)?),
            None => None,
        };
        if rec.attr(intern!(py, "exc_info"))?.is_truthy()?
            || rec.attr(intern!(py, "stack_info"))?.is_truthy()?
        {
            let with_exception =
                WITH_EXCEPTION.import(py, "kepmlog._handler", "_with_exception")?;
            let base = context.unwrap_or_else(|| intern!(py, "").clone().into_any());
            context = Some(as_str(&with_exception.call1((record, base))?)?);
        }
        self.push(
            py,
            wire_level(levelno),
            &text("category", &category)?,
            &text("message", &message)?,
            &text_or_empty("correlation_id", &correlation_id)?,
            &text_or_empty("context", &context)?,
        )
    }

    /// Queues one event given as JSON text (one object).
    fn event_json(&self, py: Python<'_>, json: Cow<'_, str>) -> PyResult<bool> {
        let logger = self.logger();
        let result = if self.block {
            py.detach(|| logger.event_json(&json))
        } else {
            logger.event_json(&json)
        };
        accepted(py, result)
    }

    /// Waits (GIL released) until everything accepted is acknowledged or the timeout; returns
    /// the number still undelivered, or raises for denied / given-up records (see `settle`).
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<u64> {
        let timeout = seconds("timeout", timeout)?;
        let logger = self.logger();
        let outcome = py
            .detach(|| logger.flush_outcome(timeout))
            .map_err(|e| to_py_err(py, &e))?;
        settle(py, outcome)
    }

    /// Flushes until the timeout, disconnects, stops the worker (GIL released). Idempotent.
    /// Answers as `flush`: the number of records given up at the deadline.
    fn shutdown(&self, py: Python<'_>, timeout: f64) -> PyResult<u64> {
        let timeout = seconds("timeout", timeout)?;
        let logger = self.logger();
        let outcome = py
            .detach(|| logger.shutdown_outcome(timeout))
            .map_err(|e| to_py_err(py, &e))?;
        settle(py, outcome)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.logger().stats();
        let d = PyDict::new(py);
        d.set_item("accepted", s.accepted)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("denied", s.denied)?;
        d.set_item("failed", s.failed)?;
        d.set_item("printed", s.printed)?;
        d.set_item("pending", s.pending)?;
        d.set_item("recovered", s.recovered)?;
        d.set_item("spool_dropped", s.spool_dropped)?;
        d.set_item("reconnects", s.reconnects)?;
        d.set_item("connected", s.connected)?;
        d.set_item("last_error", s.last_error)?;
        d.set_item("broker", s.broker)?;
        d.set_item("client_id", s.client_id)?;
        Ok(d)
    }

    #[getter]
    fn client_id(&self) -> &str {
        self.logger().client_id()
    }
    #[getter]
    fn job_id(&self) -> &str {
        self.logger().job_id()
    }
    #[getter]
    fn source(&self) -> &str {
        self.logger().source()
    }
    #[getter]
    fn event_topic(&self) -> &str {
        self.logger().event_topic()
    }
    #[getter]
    fn is_shut_down(&self) -> bool {
        self.logger().is_shut_down()
    }
    #[getter]
    fn writes_to_stderr(&self) -> bool {
        self.logger().writes_to_stderr()
    }
}

/// A `str` argument as UTF-8; anything else is a `TypeError` naming the argument.
fn text<'a>(name: &str, value: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    match value.cast::<PyString>() {
        // Under abi3-py39 every other str is copied (twice): skip that for "".
        Ok(s) if s.len()? == 0 => Ok(Cow::Borrowed("")),
        Ok(s) => s.to_cow(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be a str, not {}",
            type_name(value)
        ))),
    }
}

/// [`text`], or "" for an absent field.
fn text_or_empty<'a>(name: &str, value: &'a Option<Bound<'_, PyAny>>) -> PyResult<Cow<'a, str>> {
    match value {
        Some(v) => text(name, v),
        None => Ok(Cow::Borrowed("")),
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn accepted(py: Python<'_>, result: Result<(), Error>) -> PyResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(Error::QueueFull { .. }) => Ok(false),
        Err(e) => Err(to_py_err(py, &e)),
    }
}

impl Drop for NativeLogger {
    fn drop(&mut self) {
        let Some(logger) = self.inner.take() else {
            return;
        };
        if std::process::id() != self.pid {
            // A forked child's copy of the parent's logger: its worker thread does not exist
            // here and its locks may have been held at fork time. The parent owns the
            // connection and the queued records; touching nothing is the only safe move.
            std::mem::forget(logger);
            return;
        }
        if logger.is_shut_down() {
            return;
        }
        // Garbage-collected without shutdown: deliver what is queued, bounded, without
        // holding the GIL while waiting (Drop runs with it held). try_attach is None while
        // the interpreter is finalizing; then the plain bounded shutdown still runs.
        let timeout = self.drop_timeout;
        let attached = Python::try_attach(|py| {
            py.detach(|| {
                let _ = logger.shutdown(timeout);
            })
        });
        if attached.is_none() {
            let _ = logger.shutdown(timeout);
        }
    }
}

/// The level named `name` (vendor names, usual aliases, or "0".."5") as its wire number.
#[pyfunction]
fn parse_level(py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<u8> {
    let text: Cow<'_, str> = name.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "level must be an int (0..5), a str or kepmlog.Level, not {}",
            type_name(name)
        ))
    })?;
    text.parse::<Level>()
        .map(Level::wire_value)
        .map_err(|e| to_py_err(py, &e))
}

/// A client-id-safe token made from a name (letters, digits, hyphens), as the core derives
/// one from an executable name.
#[pyfunction]
fn safe_token(name: &str) -> String {
    kepmlog::identity::safe_token(name)
}

/// The token of a tool run by Python: its script's name (`sys.argv[0]`), the package of a
/// `__main__.py`, else "python" (`-c`, `-m`, a REPL), as the core names every interpreted tool.
#[pyfunction]
#[pyo3(signature = (script, interpreter = "python"))]
fn script_token(script: Option<&str>, interpreter: &str) -> String {
    kepmlog::identity::script_token(script, interpreter)
}

/// The exact `MetaData` the core builds for one record, as JSON text (for tests and tools).
#[pyfunction]
#[pyo3(signature = (level, source, category, message, correlation_id = "", context = ""))]
fn build_metadata(
    py: Python<'_>,
    level: i64,
    source: &str,
    category: &str,
    message: &str,
    correlation_id: &str,
    context: &str,
) -> PyResult<String> {
    let level = Level::try_from(level).map_err(|e| to_py_err(py, &e))?;
    let meta = kepmlog::build_metadata(level, source, category, message, correlation_id, context)
        .map_err(|e| to_py_err(py, &e))?;
    let bytes = kepmlog::encode(&meta);
    String::from_utf8(bytes).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Before `os.fork()`: waits (at most `kepmlog::fork::DEFAULT_FORK_WAIT`) until no worker is
/// in its start-up, so the child inherits no half-done one-time initialisation. The GIL stays
/// held: workers never take it.
#[pyfunction]
fn fork_prepare() -> bool {
    kepmlog::fork::prepare(kepmlog::fork::DEFAULT_FORK_WAIT)
}

/// After `os.fork()`, in the parent.
#[pyfunction]
fn fork_parent() {
    kepmlog::fork::parent();
}

/// After `os.fork()`, in the child, before any logger is re-created there.
#[pyfunction]
fn fork_child() {
    kepmlog::fork::child();
}

#[pymodule]
fn _kepmlog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeLogger>()?;
    m.add_function(wrap_pyfunction!(parse_level, m)?)?;
    m.add_function(wrap_pyfunction!(safe_token, m)?)?;
    m.add_function(wrap_pyfunction!(script_token, m)?)?;
    m.add_function(wrap_pyfunction!(build_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(fork_prepare, m)?)?;
    m.add_function(wrap_pyfunction!(fork_parent, m)?)?;
    m.add_function(wrap_pyfunction!(fork_child, m)?)?;
    m.add("DEFAULT_QUEUE_CAPACITY", kepmlog::DEFAULT_QUEUE_CAPACITY)?;
    m.add("DEFAULT_API_BASE", kepmlog::DEFAULT_API_BASE)?;
    m.add(
        "DEFAULT_CLOSE_TIMEOUT",
        kepmlog::DEFAULT_CLOSE_TIMEOUT.as_secs_f64(),
    )?;
    m.add("CORE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
