use std::path::PathBuf;
use std::time::Duration;

/// Default queue capacity, in records (about 25 MB at the largest record size, a few MB for
/// typical ones).
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// Where the agent's HTTPS API listens when nothing says otherwise.
pub const DEFAULT_API_BASE: &str = "https://127.0.0.1:6889";
/// The broker address used when Plugin Settings cannot be read.
pub const FALLBACK_BROKER_HOST: &str = "127.0.0.1";
pub const FALLBACK_BROKER_PORT: u16 = 8675;

/// How long a binding waits for delivery when the process exits or a logger is closed
/// without a timeout (Python's atexit, Node's exit hook, Go's `Close`, the CLI's
/// `--timeout`): long enough for a reconnect, short of the agent's usual task timeouts.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// `HOST:PORT`, with an IPv6 host in brackets (`[::1]:8675`): the broker option of every
/// binding and of the CLI.
pub fn parse_broker(text: &str) -> Result<(String, u16), crate::error::Error> {
    let bad = |why: &str| crate::error::Error::InvalidOption {
        option: "broker",
        reason: format!("{text:?} {why}; write HOST:PORT, e.g. 127.0.0.1:8675 or [::1]:8675"),
    };
    let (host, port) = text
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| bad("has no port"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| bad("has an unclosed '['"))?,
        None if host.contains(':') => return Err(bad("needs brackets around an IPv6 host")),
        None => host,
    };
    let port: u16 = match port.parse() {
        Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(bad("has a port that is not a number from 1 to 65535")),
    };
    check_broker(host, port)?;
    Ok((host.to_string(), port))
}

/// A broker host and port kepmlog can connect to (loopback or not is checked later, with the
/// CA bundle in hand).
pub fn check_broker(host: &str, port: u16) -> Result<(), crate::error::Error> {
    if host.trim().is_empty() || port == 0 {
        return Err(crate::error::Error::InvalidOption {
            option: "broker",
            reason: format!(
                "{host:?}:{port} is not a host and port; pass e.g. host 127.0.0.1, port 8675"
            ),
        });
    }
    Ok(())
}

/// A queue capacity: at least one record.
pub fn check_queue_capacity(capacity: usize) -> Result<(), crate::error::Error> {
    if capacity == 0 {
        return Err(crate::error::Error::InvalidOption {
            option: "queue_capacity",
            reason: format!("must be at least 1 (default {DEFAULT_QUEUE_CAPACITY})"),
        });
    }
    Ok(())
}

/// A topic name kepmlog may publish events to: not empty, no wildcards, no NUL.
pub fn check_event_topic(topic: &str) -> Result<(), crate::error::Error> {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(crate::error::Error::InvalidOption {
            option: "event_topic",
            reason: format!(
                "{topic:?} is not a topic name (empty or has +, # or NUL); pass e.g. \"Jobs/my-job/events\""
            ),
        });
    }
    Ok(())
}

/// What `log` does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the new record, count it, and report the count later in one Warning record.
    Drop,
    /// Wait up to this long for room, then drop and count as above.
    Block(Duration),
}

/// The environment variable read for [`Options::fallback`] when it is not set explicitly.
pub const ENV_FALLBACK: &str = "KEPMLOG_FALLBACK";
/// Environment variable naming the spool directory when `Options::spool_dir` is not set.
pub const ENV_SPOOL_DIR: &str = "KEPMLOG_SPOOL_DIR";
/// What a job's spool may hold on disk by default, over all its runs.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What creating a logger does when the job context is missing (no job id: `KEEPER_JOB_ID`
/// is not set and none was given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Creation fails with [`Error::MissingJobId`](crate::Error::MissingJobId), which names
    /// the fix.
    #[default]
    Error,
    /// The logger is created without a broker session: one `kepmlog:` warning, then every
    /// record is one text line on stderr, which the agent captures as the task's output.
    Stderr,
}

impl Overflow {
    /// `"drop"` or `"block"` (case-insensitive); `block` waits up to `block_timeout`.
    pub fn parse(name: &str, block_timeout: Duration) -> Result<Overflow, crate::error::Error> {
        match name.trim().to_ascii_lowercase().as_str() {
            "drop" => Ok(Overflow::Drop),
            "block" => Ok(Overflow::Block(block_timeout)),
            _ => Err(crate::error::Error::InvalidOption {
                option: "overflow",
                reason: format!("{name:?} is not one of \"drop\", \"block\""),
            }),
        }
    }
}

impl Fallback {
    /// `"error"` or `"stderr"` (case-insensitive, surrounding white space ignored); anything
    /// else is an error naming the accepted values.
    pub fn parse(text: &str) -> Result<Fallback, crate::error::Error> {
        match text.trim().to_ascii_lowercase().as_str() {
            "error" => Ok(Fallback::Error),
            "stderr" => Ok(Fallback::Stderr),
            _ => Err(crate::error::Error::InvalidOption {
                option: "fallback",
                reason: format!("{text:?} is not one of \"error\", \"stderr\""),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fallback::Error => "error",
            Fallback::Stderr => "stderr",
        }
    }

    /// The explicit choice, else `KEPMLOG_FALLBACK`, else [`Fallback::Error`].
    pub(crate) fn resolve(explicit: Option<Fallback>) -> Result<Fallback, crate::error::Error> {
        if let Some(f) = explicit {
            return Ok(f);
        }
        match std::env::var(ENV_FALLBACK) {
            Ok(v) if !v.trim().is_empty() => {
                Fallback::parse(&v).map_err(|_| crate::error::Error::InvalidOption {
                    option: "fallback",
                    reason: format!("{ENV_FALLBACK}={v:?} is not one of \"error\", \"stderr\""),
                })
            }
            _ => Ok(Fallback::Error),
        }
    }
}

/// How to create a [`Logger`](crate::Logger). Unset fields come from the job's environment
/// (`KEEPER_JOB_ID`), its arguments (`--keeper-api-base`) and the defaults documented per field.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// `MetaData.Source`: the tool's name as shown in logs. Default: the executable token.
    pub source: Option<String>,
    /// `MetaData.Category` when a call passes an empty category. Default `"General"`.
    pub default_category: String,
    /// Default: the `KEEPER_JOB_ID` environment variable.
    pub job_id: Option<String>,
    /// Short name of the binary in the client id. Default: the executable's file stem, made safe.
    pub token: Option<String>,
    /// Agent HTTPS API base. Default: `--keeper-api-base` in the process arguments, else
    /// [`DEFAULT_API_BASE`].
    pub api_base: Option<String>,
    /// PEM file of CAs to trust for the agent's HTTPS API and the broker. Without it, certificate
    /// verification is skipped, and only for loopback hosts.
    pub ca_bundle: Option<PathBuf>,
    /// Broker host and port; when set, Plugin Settings discovery is skipped.
    pub broker: Option<(String, u16)>,
    /// Where to connect when Plugin Settings cannot be read. Default `127.0.0.1:8675`, the
    /// agent's standard broker port.
    pub fallback_broker: (String, u16),
    /// Records the queue holds before the overflow policy applies.
    pub queue_capacity: usize,
    pub overflow: Overflow,
    /// Topic of [`Logger::event`](crate::Logger::event). Default `Jobs/{jobId}/events`.
    pub event_topic: Option<String>,
    /// Timeout of the Plugin Settings request. Default 3 s.
    pub settings_timeout: Duration,
    /// How long dropping a logger without `shutdown` may take to deliver what is queued.
    /// Default 5 s.
    pub drop_timeout: Duration,
    /// Process arguments to read `--keeper-api-base` from. Default: `std::env::args()`.
    pub args: Option<Vec<String>>,
    /// Print the library's own diagnostics on stderr (`kepmlog: ...`). Default true.
    pub stderr_diagnostics: bool,
    /// What to do when there is no job id. Default: `KEPMLOG_FALLBACK` (`error` or
    /// `stderr`), else [`Fallback::Error`].
    pub fallback: Option<Fallback>,
    /// At shutdown (or drop), write the records still unacknowledged at the deadline to
    /// stderr as text lines (the first 1,000, then a count of the rest). Default true.
    pub undelivered_to_stderr: bool,
    /// The crash-safe spool: every accepted record is also written to a file in this
    /// directory (in a subdirectory per job) before the log call returns, and what a killed
    /// or cut-off run of the job did not deliver is replayed by its next run. Default: the
    /// `KEPMLOG_SPOOL_DIR` environment variable, else none (no spool). The directory must be
    /// this user's and writable by nobody else; it is created (0700) when missing.
    pub spool_dir: Option<PathBuf>,
    /// What a job's spool may hold on disk, over all its runs; beyond it the oldest records
    /// leave the disk (counted in `Stats::spool_dropped`). Default 64 MiB.
    pub spool_max_bytes: u64,
}

impl Options {
    /// Options for a tool whose logs show `source` as their Source.
    pub fn new(source: impl Into<String>) -> Options {
        Options {
            source: Some(source.into()),
            ..Options::default()
        }
    }

    pub fn job_id(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    pub fn default_category(mut self, category: impl Into<String>) -> Self {
        self.default_category = category.into();
        self
    }
    pub fn api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = Some(api_base.into());
        self
    }
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }
    pub fn broker(mut self, host: impl Into<String>, port: u16) -> Self {
        self.broker = Some((host.into(), port));
        self
    }
    pub fn fallback_broker(mut self, host: impl Into<String>, port: u16) -> Self {
        self.fallback_broker = (host.into(), port);
        self
    }
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }
    pub fn event_topic(mut self, topic: impl Into<String>) -> Self {
        self.event_topic = Some(topic.into());
        self
    }
    pub fn settings_timeout(mut self, timeout: Duration) -> Self {
        self.settings_timeout = timeout;
        self
    }
    pub fn drop_timeout(mut self, timeout: Duration) -> Self {
        self.drop_timeout = timeout;
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }
    pub fn stderr_diagnostics(mut self, on: bool) -> Self {
        self.stderr_diagnostics = on;
        self
    }
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }
    pub fn undelivered_to_stderr(mut self, on: bool) -> Self {
        self.undelivered_to_stderr = on;
        self
    }
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool_max_bytes = bytes;
        self
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            source: None,
            default_category: "General".to_string(),
            job_id: None,
            token: None,
            api_base: None,
            ca_bundle: None,
            broker: None,
            fallback_broker: (FALLBACK_BROKER_HOST.to_string(), FALLBACK_BROKER_PORT),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            overflow: Overflow::Drop,
            event_topic: None,
            settings_timeout: Duration::from_secs(3),
            drop_timeout: Duration::from_secs(5),
            args: None,
            stderr_diagnostics: true,
            fallback: None,
            undelivered_to_stderr: true,
            spool_dir: None,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_names_parse_and_anything_else_names_the_choices() {
        assert_eq!(Fallback::parse("stderr"), Ok(Fallback::Stderr));
        assert_eq!(Fallback::parse(" Error "), Ok(Fallback::Error));
        for f in [Fallback::Error, Fallback::Stderr] {
            assert_eq!(Fallback::parse(f.name()), Ok(f));
        }
        let err = Fallback::parse("console").unwrap_err().to_string();
        assert!(err.contains("\"error\", \"stderr\""), "{err}");
        // An explicit choice never looks at the environment.
        assert_eq!(
            Fallback::resolve(Some(Fallback::Stderr)),
            Ok(Fallback::Stderr)
        );
    }

    #[test]
    fn brokers_parse_and_bad_ones_name_the_form() {
        assert_eq!(
            parse_broker("127.0.0.1:8675"),
            Ok(("127.0.0.1".into(), 8675))
        );
        assert_eq!(parse_broker(" localhost:1 "), Ok(("localhost".into(), 1)));
        assert_eq!(parse_broker("[::1]:8675"), Ok(("::1".into(), 8675)));
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":8675",
            "h:0",
            "h:65536",
            "h:+1",
            "h:x",
            "::1:8675",
            "[::1:8675",
        ] {
            let e = parse_broker(bad).unwrap_err().to_string();
            assert!(
                e.contains("HOST:PORT") || e.contains("host and port"),
                "{bad}: {e}"
            );
        }
        assert!(check_queue_capacity(0).is_err());
        assert!(check_queue_capacity(1).is_ok());
        for bad in ["", "a/+", "a/#", "a\0b"] {
            assert!(check_event_topic(bad).is_err(), "{bad:?}");
        }
        assert!(check_event_topic("Jobs/x/events").is_ok());
        assert_eq!(
            Overflow::parse("Block", Duration::from_millis(7)),
            Ok(Overflow::Block(Duration::from_millis(7)))
        );
        assert!(Overflow::parse("wait", Duration::ZERO)
            .unwrap_err()
            .to_string()
            .contains("\"drop\", \"block\""));
    }
}
