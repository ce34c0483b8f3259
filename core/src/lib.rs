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

mod at_exit;
#[cfg(feature = "log")]
mod bridge;
mod error;
pub mod fork;
mod https_tls;
mod hub;
pub mod identity;
mod item;
mod ledger;
mod level;
mod logger;
mod member;
#[cfg(any(feature = "log", feature = "tracing"))]
mod on_worker;
mod options;
mod outcome;
mod packets;
mod queue;
pub mod record;
mod session;
mod session_error;
mod settings;
mod spool;
mod text;
mod tls;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod worker;

pub use at_exit::flush_at_exit;
#[cfg(feature = "log")]
pub use bridge::LogBridge;
pub use error::{Error, ErrorKind};
pub use level::Level;
pub use logger::{Logger, Stats, MAX_EVENT_BYTES};
pub use options::{
    check_broker, check_event_topic, check_queue_capacity, parse_broker, Fallback, Options,
    Overflow, DEFAULT_API_BASE, DEFAULT_CLOSE_TIMEOUT, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SPOOL_MAX_BYTES, ENV_FALLBACK, ENV_SPOOL_DIR, FALLBACK_BROKER_HOST,
    FALLBACK_BROKER_PORT,
};
pub use outcome::Outcome;
pub use record::{build_metadata, encode, MetaData};
pub use settings::SETTINGS_PATH;
pub use tls::is_loopback_host;

/// The logger's own discovery and TLS, for `kepmlog doctor`, which checks each step on its
/// own and needs a subscribing client the logger does not have. Not a stable API.
#[doc(hidden)]
pub mod diag {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    /// GET Plugin Settings: the broker's host and port, or why not (403 explained). A 403 is
    /// asked again for as long as the logger does (the agent's registration race).
    pub fn discover(
        api_base: &str,
        ca_bundle: Option<&Path>,
        timeout: Duration,
    ) -> Result<(String, u16), String> {
        let ca = ca_bundle.map(crate::tls::load_ca_bundle).transpose()?;
        crate::settings::discover_through_race(
            api_base,
            ca.as_deref(),
            timeout,
            std::time::Instant::now(),
            crate::worker::REGISTRATION_RACE,
        )
    }

    /// The rustls client configuration the logger uses for the broker at `host` (ring).
    pub fn tls_client_config(
        ca_bundle: Option<&Path>,
        host: &str,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        let ca = ca_bundle.map(crate::tls::load_ca_bundle).transpose()?;
        crate::tls::client_config(ca.as_deref(), host)
    }
}
#[cfg(feature = "tracing")]
pub use tracing_layer::TracingLayer;

/// Internal functions for the fuzz targets in `fuzz/` (feature `fuzzing`, off by default; see
/// docs/fuzzing.md). Not part of the API: no stability promise, may change in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    use std::time::Duration;

    use bytes::BytesMut;

    /// Largest packet the session accepts from the broker (its CONNECT's Maximum Packet Size).
    pub const MAX_INCOMING: u32 = crate::packets::MAX_INCOMING;

    /// The Plugin Settings body parser of discovery: broker host and port, or why not.
    pub fn parse_settings(body: &str) -> Result<(String, u16), String> {
        crate::settings::parse_settings(body)
    }

    /// What the session made of the bytes a broker sent.
    #[derive(Debug, Default)]
    pub struct SessionTrace {
        /// The CONNACK was a success: (receive maximum, maximum packet size, keep alive).
        pub limits: Option<(u16, Option<u32>, Duration)>,
        /// PUBACKs and DISCONNECTs after the CONNACK, as the worker receives them.
        pub incoming: Vec<String>,
        /// PINGRESPs seen.
        pub pingresps: usize,
        /// Why the session would close the connection (its error's text).
        pub error: Option<String>,
        /// Most bytes left undecoded in the read buffer after a decode that wanted more.
        pub max_pending: usize,
    }

    /// Feeds `chunks` (each one read from the TLS stream) to the session's decoder, the way
    /// `Session::connect` and `Session::drive` do: CONNACK first, then acks, pings and
    /// DISCONNECT. Stops at the first error, as the session does.
    pub fn session_incoming(chunks: &[&[u8]], keep_alive: Duration) -> SessionTrace {
        use crate::packets::{limits_from_connack, parse_incoming, read_connack};
        let mut trace = SessionTrace::default();
        let mut rbuf = BytesMut::new();
        let mut out = Vec::new();
        // The last pass stands for the read after the last chunk: bytes that came with the
        // CONNACK are parsed then, as in `Session::drive`.
        let last: &[u8] = &[];
        for chunk in chunks.iter().copied().chain([last]) {
            rbuf.extend_from_slice(chunk);
            let step = if trace.limits.is_none() {
                match read_connack(&mut rbuf) {
                    Ok(None) => Ok(true),
                    Ok(Some(ack)) => limits_from_connack(ack, keep_alive).map(|l| {
                        trace.limits = Some((l.receive_maximum, l.max_packet_size, l.keep_alive));
                        false
                    }),
                    Err(e) => Err(e),
                }
            } else {
                parse_incoming(&mut rbuf, &mut out).map(|ping| {
                    trace.pingresps += usize::from(ping);
                    true
                })
            };
            match step {
                // Waiting for the rest of a packet: what stays buffered.
                Ok(true) => trace.max_pending = trace.max_pending.max(rbuf.len()),
                Ok(false) => {}
                Err(e) => {
                    trace.error = Some(e.to_string());
                    break;
                }
            }
        }
        trace.incoming = out.iter().map(|i| format!("{i:?}")).collect();
        trace
    }
}
