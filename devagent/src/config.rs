//! How a [`crate::DevAgent`] is set up ([`Config`], [`SettingsMode`]) and what its capture
//! subscriber hands back ([`Received`]).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::trust::{Denial, Trust};

/// How [`crate::DevAgent`] is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Topics the job client may publish to (ACL `topic write`; MQTT wildcards allowed).
    /// Default: `["KeeperLogger"]`.
    pub allow: Vec<String>,
    /// Topics the job client may subscribe to (ACL `topic read`): the job's
    /// `mqttTopics.allowedSubscriptions`. Default: none.
    pub allow_subscribe: Vec<String>,
    /// How the Plugin Settings endpoint answers at first. Default: [`SettingsMode::Ok`].
    pub settings: SettingsMode,
    /// Start Mosquitto right away. Default: true. When false, [`crate::DevAgent::start_broker`]
    /// starts it later; the settings endpoint still advertises its (closed) port.
    pub start_broker: bool,
    /// Mosquitto's `max_inflight_messages`, which it announces to MQTT v5 clients as
    /// Receive Maximum. `None`: Mosquitto's default (20). `Some(0)`: no limit (no Receive
    /// Maximum in CONNACK, which MQTT v5 clients read as 65,535).
    pub receive_maximum: Option<u16>,
    /// Run Mosquitto at debug log level so that every publish it accepts and every publish
    /// its ACL denies is seen ([`crate::DevAgent::denials`], [`crate::DevAgent::publishes_received`]).
    /// Costs a few log lines per message; meant for `kepm-devagent run`, not for load tests.
    /// Default: false.
    pub log_publishes: bool,
    /// Mosquitto's `max_packet_size`, which it announces to MQTT v5 clients as Maximum
    /// Packet Size. `None`: no limit. Default: `None`.
    pub max_packet_size: Option<u32>,
    /// Run the capture subscriber. When false nothing subscribes (the broker answers every
    /// allowed publish with PUBACK 0x10, "no matching subscribers") and the `messages*`
    /// methods stay empty: for benchmarks of the publishing side alone. Default: true.
    pub capture: bool,
    /// Refuse every job client at CONNECT (CONNACK 0x87 "Not authorized", through
    /// Mosquitto's `clientid_prefixes`); [`crate::DevAgent::set_refuse_job_clients`] changes it
    /// later. Default: false.
    pub refuse_job_clients: bool,
    /// Which local processes may use the broker and Plugin Settings. Default:
    /// [`Trust::AnyLocalProcess`], for test harnesses whose own process logs;
    /// `kepm-devagent run` uses [`Trust::Registry`], the agent's rule.
    pub trust: Trust,
    /// Executables trusted although not launched (the agent's `AlternativeSignatures`).
    pub trusted_exes: Vec<std::path::PathBuf>,
    /// How long a registered process stays untrusted: the agent's registration race, where
    /// the runner registers a task just after starting it and the task's first connection
    /// or Plugin Settings call can come first. Default: zero (registered before the task
    /// can connect).
    pub registration_delay: Duration,
    /// How a publish to an undeclared topic is answered. Default: [`Denial::Visible`]
    /// (PUBACK 0x87), which the library's tests of visible denials need; `run` and `serve`
    /// default to [`Denial::Silent`], the agent's usual answer.
    pub denial: Denial,
    /// Serve the Job Management API on the HTTPS port (Admin tier: client certificates of
    /// the Admin CA, written with the agent's files), with a job store and Last Known Good.
    /// Default: false (its paths answer 404).
    pub jobs_api: bool,
    /// The agent root of the Jobs API's store (`Jobs/`, `Jobs/bin/`, `.lkg/`). Default: an
    /// `agent-root` directory in the devagent's temp dir.
    pub agent_root: Option<std::path::PathBuf>,
}

impl Config {
    /// Whether the jobs' connections go through the devagent's gate (process trust or
    /// silent denial), rather than straight to Mosquitto's TLS listener.
    pub(crate) fn needs_gate(&self) -> bool {
        self.trust == Trust::Registry || self.denial == Denial::Silent
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow: vec!["KeeperLogger".to_string()],
            allow_subscribe: Vec::new(),
            settings: SettingsMode::Ok,
            start_broker: true,
            receive_maximum: None,
            log_publishes: false,
            max_packet_size: None,
            capture: true,
            refuse_job_clients: false,
            trust: Trust::AnyLocalProcess,
            trusted_exes: Vec::new(),
            registration_delay: Duration::ZERO,
            denial: Denial::Visible,
            jobs_api: false,
            agent_root: None,
        }
    }
}

/// How the Plugin Settings endpoint answers.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingsMode {
    /// 200 with `broker.host` and `broker.port` (a number) pointing at the job listener.
    Ok,
    /// Like `Ok` but `broker.port` is a JSON string, e.g. `"8883"`.
    PortAsString,
    /// That HTTP status with a short JSON error body (403 is what non-agent processes get).
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with `{}`.
    MissingKeys,
    /// Sleep this long, then answer like `Ok` (for client timeouts).
    Delay(Duration),
    /// The `Ok` shape, but the port is one where nothing listens.
    WrongPort,
    /// 200 with `broker.host` a number and `broker.port` a boolean.
    WrongTypes,
    /// 200 with `broker.port` 70000.
    PortOutOfRange,
    /// Accept the connection and never answer, not even the TLS handshake (until the client
    /// gives up or the agent stops).
    Hang,
    /// Answer like `Ok`, but in plain HTTP without TLS: a client that reads it has
    /// skipped TLS.
    Plaintext,
    /// Answer like `Ok` over TLS with a "Localhost" certificate signed by another CA than
    /// the devagent's: refused by a client that verifies with the devagent's CA bundle.
    /// (A certificate for another host signed by the right CA is no test any more: clients
    /// do not check the name on loopback, as the agent's certificate names only Localhost.)
    OtherCaCert,
    /// 200 naming a broker that is not on loopback (`broker.example.invalid`), which a
    /// client without a CA bundle must refuse.
    NonLoopbackBroker,
}

impl FromStr for SettingsMode {
    type Err = Error;

    /// Parses `ok`, `port-string`, a status code such as `403`/`500`, `garbage`,
    /// `missing-keys`, `delay:MS`, `wrong-port`, `wrong-types`, `port-out-of-range`, `hang`,
    /// `plaintext`, `other-ca-cert`, `non-loopback-broker`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let mode = match s.to_ascii_lowercase().as_str() {
            "ok" => SettingsMode::Ok,
            "port-string" | "port-as-string" => SettingsMode::PortAsString,
            "garbage" => SettingsMode::Garbage,
            "missing-keys" => SettingsMode::MissingKeys,
            "wrong-port" => SettingsMode::WrongPort,
            "wrong-types" => SettingsMode::WrongTypes,
            "port-out-of-range" => SettingsMode::PortOutOfRange,
            "hang" => SettingsMode::Hang,
            "plaintext" => SettingsMode::Plaintext,
            "other-ca-cert" => SettingsMode::OtherCaCert,
            "non-loopback-broker" => SettingsMode::NonLoopbackBroker,
            other => {
                if let Some(ms) = other.strip_prefix("delay:") {
                    let ms: u64 = ms.trim().parse().map_err(|_| {
                        Error::Invalid(format!(
                            "settings mode {s:?}: delay needs milliseconds, e.g. delay:3000"
                        ))
                    })?;
                    SettingsMode::Delay(Duration::from_millis(ms))
                } else if let Ok(code) = other.parse::<u16>() {
                    if !(100..=599).contains(&code) {
                        return Err(Error::Invalid(format!(
                            "settings mode {s:?}: HTTP status must be 100..=599"
                        )));
                    }
                    SettingsMode::Status(code)
                } else {
                    return Err(Error::Invalid(format!(
                        "unknown settings mode {s:?}: use ok, port-string, 403, 500 (any status), \
                         garbage, missing-keys, delay:MS, wrong-port, wrong-types, \
                         port-out-of-range, hang, plaintext, other-ca-cert or \
                         non-loopback-broker"
                    )));
                }
            }
        };
        Ok(mode)
    }
}

impl std::fmt::Display for SettingsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsMode::Ok => f.write_str("ok"),
            SettingsMode::PortAsString => f.write_str("port-string"),
            SettingsMode::Status(c) => write!(f, "{c}"),
            SettingsMode::Garbage => f.write_str("garbage"),
            SettingsMode::MissingKeys => f.write_str("missing-keys"),
            SettingsMode::Delay(d) => write!(f, "delay:{}", d.as_millis()),
            SettingsMode::WrongPort => f.write_str("wrong-port"),
            SettingsMode::WrongTypes => f.write_str("wrong-types"),
            SettingsMode::PortOutOfRange => f.write_str("port-out-of-range"),
            SettingsMode::Hang => f.write_str("hang"),
            SettingsMode::Plaintext => f.write_str("plaintext"),
            SettingsMode::OtherCaCert => f.write_str("other-ca-cert"),
            SettingsMode::NonLoopbackBroker => f.write_str("non-loopback-broker"),
        }
    }
}

/// One message the capture subscriber received.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The topic it was published to.
    pub topic: String,
    /// The raw payload.
    pub payload: Vec<u8>,
    /// When the capture subscriber received it.
    pub at: SystemTime,
}

impl Received {
    /// The payload parsed as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }

    /// The payload as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}
