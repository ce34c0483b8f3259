//! `kepm-devagent`: a local stand-in for the KEPM agent's side of a job task.
//!
//! [`DevAgent::start`] brings up, on loopback:
//! - an HTTPS Plugin Settings endpoint (`GET /api/PluginSettings/KeeperPrivilegeManager`)
//!   whose answer can be switched between good and broken shapes ([`SettingsMode`]);
//! - a Mosquitto broker with a TLS job-facing listener that lets anonymous clients publish
//!   only to the allowed topics (others get PUBACK 0x87 under MQTT v5), and a second TLS
//!   listener for the built-in capture subscriber, which records every message;
//! - a throwaway CA (written to [`DevAgent::ca_path`]) that signed both server certificates.
//!
//! Everything lives in a private temp dir that is removed on [`DevAgent::shutdown`]/drop.
//! Requires the `mosquitto` executable (Debian: `apt-get install mosquitto`); set
//! `KEPM_MOSQUITTO` to use another one, and `KEPM_DEVAGENT_LOG=1` to echo its log to stderr.
//! If the owning process dies without cleaning up, a watchdog stops its Mosquitto and the
//! next devagent removes the stale temp dir.
//!
//! For job authors: [`lint`] checks job JSON files, [`run::run_job`] runs a job the way the
//! agent's job runner does (binary resolution, `{KeeperApiBaseUrl}`, `KEEPER_JOB_ID`, the
//! job's ACL, timeouts) and [`schema`] checks KeeperLogger payloads (docs/kepm-contract.md).

mod agent;
mod binary;
mod broker;
mod capture;
pub mod cmdline;
mod config;
mod error;
mod gate;
mod https;
mod jobstore;
pub mod lint;
mod mosquitto_conf;
mod os;
mod plain;
mod procs;
mod proxy;
pub mod run;
pub mod schema;
mod schemas;
mod tempdir;
pub mod timefmt;
mod tls;
pub mod topic;
pub mod trust;
pub mod view;
mod wait;

pub use agent::{AdminFiles, DevAgent};
pub use capture::CAPTURE_CLIENT_ID;
pub use config::{Config, Received, SettingsMode};
pub use error::Error;
pub use gate::SilentDrop;
pub use https::{FALLBACK_BROKER, NON_LOOPBACK_BROKER, SETTINGS_PATH};
pub use jobstore::{JobsNotice, Trigger, TriggerRunner};
pub use plain::PlainBroker;
pub use proxy::ResetProxy;
pub use tls::{client_config_from_ca_file, AGENT_CERT_NAME};
pub use trust::{Denial, Refusal, Trust};
