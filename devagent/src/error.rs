use std::fmt;

/// Everything that can go wrong while starting or driving a [`crate::DevAgent`].
///
/// Every message names what failed and, where there is one, the fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The `mosquitto` executable could not be found or started.
    MosquittoNotFound {
        /// Where we looked.
        tried: String,
    },
    /// An I/O operation failed.
    Io {
        /// What we were doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Mosquitto refused to start, exited early, or did not become ready in time.
    Broker(String),
    /// Certificate generation or TLS configuration failed.
    Tls(String),
    /// A caller-supplied value is invalid.
    Invalid(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MosquittoNotFound { tried } => write!(
                f,
                "mosquitto not found (looked in {tried}): apt-get install mosquitto \
                 (or set KEPM_MOSQUITTO=/path/to/mosquitto)"
            ),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Broker(m) | Error::Tls(m) | Error::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
