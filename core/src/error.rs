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
    /// The operating system refused something kepmlog needs (e.g. starting its worker thread).
    Internal(String),
}

impl Error {
    /// A stable, short name of the variant, for bindings that map errors onto their own types.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::MissingJobId => "missing_job_id",
            Error::InvalidJobId { .. } => "invalid_job_id",
            Error::InvalidToken { .. } => "invalid_token",
            Error::InvalidOption { .. } => "invalid_option",
            Error::EmptyMessage => "empty_message",
            Error::InvalidLevel(_) => "invalid_level",
            Error::InvalidEvent(_) => "invalid_event",
            Error::QueueFull { .. } => "queue_full",
            Error::ShutDown => "shut_down",
            Error::Forked { .. } => "forked",
            Error::Timeout { .. } => "timeout",
            Error::Denied { .. } => "denied",
            Error::Internal(_) => "internal",
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
