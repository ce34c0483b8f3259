use std::fmt;

/// Everything kepmlog can refuse or report. Every message says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `KEEPER_JOB_ID` is not set and no job id was given.
    MissingJobId,
    /// The job id cannot be used in an MQTT client id.
    InvalidJobId { job_id: String, reason: String },
    /// An explicit executable token cannot be used in an MQTT client id.
    InvalidToken { token: String, reason: String },
    /// An option has a value kepmlog cannot use.
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    /// The message is empty (or only white space) after sanitizing.
    EmptyMessage,
    /// Not one of the six levels.
    InvalidLevel(String),
    /// An event must be one JSON object.
    InvalidEvent(String),
    /// The queue was full: the record was dropped (and counted), or the blocking wait timed out.
    QueueFull { capacity: usize },
    /// The logger was shut down.
    ShutDown,
    /// The logger was created in another process: this one is a fork of it.
    Forked { parent_pid: u32, pid: u32 },
    /// `flush`/`shutdown` reached their deadline with records still unacknowledged.
    Timeout {
        undelivered: u64,
        last_error: Option<String>,
    },
    /// The broker refused publishes (PUBACK reason code >= 0x80) since the last flush.
    Denied { count: u64, topics: Vec<String> },
    /// Records failed for good since the last flush for a reason other than a deadline (a
    /// record larger than the broker's Maximum Packet Size); they are not retried.
    Undeliverable {
        count: u64,
        last_error: Option<String>,
    },
    /// The operating system refused something kepmlog needs (e.g. starting its worker thread).
    Internal(String),
}

/// The kind of an [`Error`]: what the bindings map onto their own error types and status
/// codes. Matching on it (rather than on a string) makes a new kind a compile error in every
/// binding that has not mapped it yet.
/// Not `non_exhaustive` on purpose: the bindings match it exhaustively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    MissingJobId,
    InvalidJobId,
    InvalidToken,
    InvalidOption,
    EmptyMessage,
    InvalidLevel,
    InvalidEvent,
    QueueFull,
    ShutDown,
    Forked,
    Timeout,
    Denied,
    Undeliverable,
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order (for tables and tests in the bindings).
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::MissingJobId,
        ErrorKind::InvalidJobId,
        ErrorKind::InvalidToken,
        ErrorKind::InvalidOption,
        ErrorKind::EmptyMessage,
        ErrorKind::InvalidLevel,
        ErrorKind::InvalidEvent,
        ErrorKind::QueueFull,
        ErrorKind::ShutDown,
        ErrorKind::Forked,
        ErrorKind::Timeout,
        ErrorKind::Denied,
        ErrorKind::Undeliverable,
        ErrorKind::Internal,
    ];

    /// The stable snake_case name: Node's `err.code`, Python's `err.kind`, Go's `Kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingJobId => "missing_job_id",
            ErrorKind::InvalidJobId => "invalid_job_id",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InvalidOption => "invalid_option",
            ErrorKind::EmptyMessage => "empty_message",
            ErrorKind::InvalidLevel => "invalid_level",
            ErrorKind::InvalidEvent => "invalid_event",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::ShutDown => "shut_down",
            ErrorKind::Forked => "forked",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Denied => "denied",
            ErrorKind::Undeliverable => "undeliverable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The kind of the variant, for bindings that map errors onto their own types.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MissingJobId => ErrorKind::MissingJobId,
            Error::InvalidJobId { .. } => ErrorKind::InvalidJobId,
            Error::InvalidToken { .. } => ErrorKind::InvalidToken,
            Error::InvalidOption { .. } => ErrorKind::InvalidOption,
            Error::EmptyMessage => ErrorKind::EmptyMessage,
            Error::InvalidLevel(_) => ErrorKind::InvalidLevel,
            Error::InvalidEvent(_) => ErrorKind::InvalidEvent,
            Error::QueueFull { .. } => ErrorKind::QueueFull,
            Error::ShutDown => ErrorKind::ShutDown,
            Error::Forked { .. } => ErrorKind::Forked,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Denied { .. } => ErrorKind::Denied,
            Error::Undeliverable { .. } => ErrorKind::Undeliverable,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingJobId => f.write_str(
                "KEEPER_JOB_ID is not set: the agent sets it only for jobs that declare \
                 mqttTopics; add \"mqttTopics\": {\"allowedPublications\": [\"KeeperLogger\"]} \
                 to the job JSON, or pass the job id explicitly",
            ),
            Error::InvalidJobId { job_id, reason } => write!(
                f,
                "invalid job id {job_id:?}: {reason}; job ids use hyphens (e.g. \
                 \"secrets-scanner\"): rename the job file and its \"id\""
            ),
            Error::InvalidToken { token, reason } => write!(
                f,
                "invalid executable token {token:?}: {reason}; use letters, digits and hyphens only"
            ),
            Error::InvalidOption { option, reason } => {
                write!(f, "invalid option {option}: {reason}")
            }
            Error::EmptyMessage => f.write_str(
                "empty message: KeeperLogger rejects empty messages; log a non-empty text",
            ),
            Error::InvalidLevel(l) => write!(
                f,
                "unknown log level {l:?}: use Debug, Info, Warning, Error, Critical, Verbose \
                 (or their numbers 0..5)"
            ),
            Error::InvalidEvent(why) => write!(f, "invalid event: {why}; pass one JSON object"),
            Error::QueueFull { capacity } => write!(
                f,
                "queue full ({capacity} records): record dropped and counted; raise the queue \
                 capacity or use the blocking overflow mode"
            ),
            Error::ShutDown => f.write_str("logger is shut down: create a new logger to log again"),
            Error::Forked { parent_pid, pid } => write!(
                f,
                "logger was created in process {parent_pid} and cannot be used in its forked \
                 child {pid}: create a new logger in the child"
            ),
            Error::Timeout {
                undelivered,
                last_error,
            } => {
                write!(
                    f,
                    "{undelivered} record(s) not yet acknowledged by the broker at the deadline"
                )?;
                if let Some(e) = last_error {
                    write!(f, " (last error: {e})")?;
                }
                Ok(())
            }
            Error::Denied { count, topics } => write!(
                f,
                "the broker denied {count} publish(es) to {}: add {} to \
                 mqttTopics.allowedPublications in the job JSON",
                quote_list(topics),
                quote_list(topics)
            ),
            Error::Undeliverable { count, last_error } => {
                write!(
                    f,
                    "{count} record(s) could not be delivered and were given up"
                )?;
                if let Some(e) = last_error {
                    write!(f, " ({e})")?;
                }
                f.write_str(": log shorter messages and contexts")
            }
            Error::Internal(why) => write!(f, "kepmlog internal error: {why}"),
        }
    }
}

fn quote_list(topics: &[String]) -> String {
    topics
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::error::Error for Error {}
