//! # kepmlog
//!
//! Logging for Keeper Privilege Manager (KEPM) job tasks: records go to the agent's
//! `KeeperLogger` topic over TLS MQTT v5 with QoS 1, from a bounded queue drained by one
//! background worker, so logging never blocks the tool and nothing accepted is lost.
//!
//! ```no_run
//! use std::time::Duration;
//! let log = kepmlog::Logger::from_env("SecretScanner")?; // KEEPER_JOB_ID, --keeper-api-base
//! log.info("SecretsScan", "Scan complete: 0 issues detected.")?;
//! log.shutdown(Duration::from_secs(5))?;
//! # Ok::<(), kepmlog::Error>(())
//! ```

#[cfg(feature = "log")]
mod bridge;
mod error;
pub mod fork;
mod hub;
pub mod identity;
mod ledger;
mod level;
mod logger;
#[cfg(any(feature = "log", feature = "tracing"))]
mod on_worker;
mod options;
mod outcome;
mod queue;
pub mod record;
mod session;
mod settings;
mod text;
mod tls;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod worker;

#[cfg(feature = "log")]
pub use bridge::LogBridge;
pub use error::{Error, ErrorKind};
pub use level::Level;
pub use logger::{Logger, Stats, MAX_EVENT_BYTES};
pub use options::{
    check_broker, check_event_topic, check_queue_capacity, parse_broker, Fallback, Options,
    Overflow, DEFAULT_API_BASE, DEFAULT_CLOSE_TIMEOUT, DEFAULT_QUEUE_CAPACITY, ENV_FALLBACK,
    FALLBACK_BROKER_HOST, FALLBACK_BROKER_PORT,
};
pub use outcome::Outcome;
pub use record::{build_metadata, encode, MetaData};
pub use settings::SETTINGS_PATH;
pub use tls::is_loopback_host;
#[cfg(feature = "tracing")]
pub use tracing_layer::TracingLayer;
