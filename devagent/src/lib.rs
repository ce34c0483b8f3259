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

mod broker;
mod capture;
pub mod cmdline;
mod error;
mod https;
pub mod lint;
pub mod run;
pub mod schema;
pub mod timefmt;
mod tls;
pub mod view;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

pub use error::Error;
pub use https::SETTINGS_PATH;

use broker::{Mosquitto, SpawnError};
use capture::{Capture, CaptureShared};
use https::{HttpsServer, SettingsShared};

/// Where a job falls back to when Plugin Settings discovery fails (see docs/kepm-contract.md).
pub const FALLBACK_BROKER: &str = "127.0.0.1:8675";
/// The client id of the built-in capture subscriber (it connects to the capture listener,
/// so it never shows up in [`DevAgent::clients`]).
pub const CAPTURE_CLIENT_ID: &str = capture::CAPTURE_CLIENT_ID;

/// Effectively unlimited, so a slow capture subscriber never loses messages. Not 0
/// ("unlimited" per the docs): Mosquitto 2.0.11 compares its outgoing packet count with
/// this limit after answering a publish denied by the ACL, and with 0 it always disconnects
/// the publisher right after the PUBACK 0x87.
const MAX_QUEUED: u32 = 1_000_000_000;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const PORT_RETRIES: usize = 5;

/// How [`DevAgent`] is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Topics the job client may publish to (ACL `topic write`; MQTT wildcards allowed).
    /// Default: `["KeeperLogger"]`.
    pub allow: Vec<String>,
    /// How the Plugin Settings endpoint answers at first. Default: [`SettingsMode::Ok`].
    pub settings: SettingsMode,
    /// Start Mosquitto right away. Default: true. When false, [`DevAgent::start_broker`]
    /// starts it later; the settings endpoint still advertises its (closed) port.
    pub start_broker: bool,
    /// Mosquitto's `max_inflight_messages`, which it announces to MQTT v5 clients as
    /// Receive Maximum. `None`: Mosquitto's default (20). `Some(0)`: no limit (no Receive
    /// Maximum in CONNACK, which MQTT v5 clients read as 65,535).
    pub receive_maximum: Option<u16>,
    /// Run Mosquitto at debug log level so that every publish it accepts and every publish
    /// its ACL denies is seen ([`DevAgent::denials`], [`DevAgent::publishes_received`]).
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
    /// Mosquitto's `clientid_prefixes`); [`DevAgent::set_refuse_job_clients`] changes it
    /// later. Default: false.
    pub refuse_job_clients: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow: vec!["KeeperLogger".to_string()],
            settings: SettingsMode::Ok,
            start_broker: true,
            receive_maximum: None,
            log_publishes: false,
            max_packet_size: None,
            capture: true,
            refuse_job_clients: false,
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
}

impl FromStr for SettingsMode {
    type Err = Error;

    /// Parses `ok`, `port-string`, a status code such as `403`/`500`, `garbage`,
    /// `missing-keys`, `delay:MS`, `wrong-port`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let mode = match s.to_ascii_lowercase().as_str() {
            "ok" => SettingsMode::Ok,
            "port-string" | "port-as-string" => SettingsMode::PortAsString,
            "garbage" => SettingsMode::Garbage,
            "missing-keys" => SettingsMode::MissingKeys,
            "wrong-port" => SettingsMode::WrongPort,
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
                         garbage, missing-keys, delay:MS or wrong-port"
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

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, Error> {
        let n = DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            sweep_stale_dirs();
        }
        let path = std::env::temp_dir().join(format!("kepm-devagent-{}-{n}", std::process::id()));
        // A leftover from a crashed process that had our pid: stale, safe to replace.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let dir = TempDir(path);
        // Mosquitto drops root privileges to user `mosquitto`, which must reach the files.
        set_mode(&dir.0, 0o755)?;
        Ok(dir)
    }

    fn write(&self, name: &str, contents: &str, mode: u32) -> Result<PathBuf, Error> {
        let p = self.0.join(name);
        std::fs::write(&p, contents)
            .map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
        set_mode(&p, mode)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes temp dirs left by devagents that died without cleaning up (SIGKILL). Their
/// brokers are gone too: the watchdog stops them when the owner dies.
fn sweep_stale_dirs() {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("kepm-devagent-")) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {mode:o} {}", p.display()), e))
}

#[cfg(not(unix))]
fn set_mode(_p: &Path, _mode: u32) -> Result<(), Error> {
    Ok(())
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("binding 127.0.0.1:0 to find a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("reading a free port", e))
}

fn check_topic(t: &str) -> Result<(), Error> {
    if t.is_empty() || t.contains(['\n', '\r', '\0']) || t.trim() != t {
        return Err(Error::Invalid(format!(
            "allowed topic {t:?} is empty or contains whitespace/control characters"
        )));
    }
    Ok(())
}

/// Anonymous clients (the jobs) may publish only to the allowed topics; the capture user
/// may read everything.
fn acl_file(allow: &[String]) -> String {
    let mut acl: String = allow.iter().map(|t| format!("topic write {t}\n")).collect();
    acl.push_str(&format!("\nuser {CAPTURE_CLIENT_ID}\ntopic read #\n"));
    acl
}

/// A throwaway password for the capture user, good enough for a loopback broker that lives
/// as long as one test.
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// What of mosquitto.conf a test can choose.
#[derive(Clone, Debug)]
struct BrokerKnobs {
    receive_maximum: Option<u16>,
    log_publishes: bool,
    max_packet_size: Option<u32>,
    refuse_job_clients: bool,
}

impl BrokerKnobs {
    fn from_config(cfg: &Config) -> Self {
        BrokerKnobs {
            receive_maximum: cfg.receive_maximum,
            log_publishes: cfg.log_publishes,
            max_packet_size: cfg.max_packet_size,
            refuse_job_clients: cfg.refuse_job_clients,
        }
    }
}

fn broker_conf(dir: &Path, job_port: u16, capture_port: u16, knobs: &BrokerKnobs) -> String {
    let d = dir.display();
    let mut c = format!(
        "# written by kepm-devagent\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         log_type notice\n\
         log_type information\n\
         connection_messages true\n\
         persistence true\n\
         persistence_location {d}/db/\n\
         autosave_interval 5\n\
         max_queued_messages {MAX_QUEUED}\n"
    );
    if let Some(n) = knobs.receive_maximum {
        c.push_str(&format!("max_inflight_messages {n}\n"));
    }
    if let Some(n) = knobs.max_packet_size {
        c.push_str(&format!("max_packet_size {n}\n"));
    }
    if knobs.refuse_job_clients {
        // Only the capture subscriber's client id has this prefix: every job client gets
        // CONNACK 0x87 while the capture keeps working.
        c.push_str(&format!("clientid_prefixes {CAPTURE_CLIENT_ID}\n"));
    }
    if knobs.log_publishes {
        // Mosquitto logs ACL denials ("Denied PUBLISH from ...") only at debug level.
        c.push_str("log_type debug\n");
    }
    // One global ACL instead of per_listener_settings: Mosquitto 2.0.11 denies every ACL
    // check of a client with no listener under per-listener settings, and a persistent
    // session restored after a restart has none until it reconnects, so messages queued for
    // the capture subscriber in that window were silently discarded.
    c.push_str(&format!(
        "allow_anonymous true\n\
         password_file {d}/passwd\n\
         acl_file {d}/acl\n\
         \n# job-facing listener: anonymous, may only publish to the allowed topics\n\
         listener {job_port} 127.0.0.1\n\
         certfile {d}/server.pem\n\
         keyfile {d}/server.key\n\
         cafile {d}/ca.pem\n\
         \n# capture listener: the devagent's own subscriber (user {CAPTURE_CLIENT_ID})\n\
         listener {capture_port} 127.0.0.1\n\
         certfile {d}/server.pem\n\
         keyfile {d}/server.key\n\
         cafile {d}/ca.pem\n"
    ));
    c
}

/// The running stand-in agent. See the crate docs.
///
/// All methods take `&self`; share it between threads with `Arc` if needed.
pub struct DevAgent {
    // Field order is drop order: servers and broker go before the temp dir.
    https: Mutex<Option<HttpsServer>>,
    capture: Mutex<Option<Capture>>,
    mosquitto: Mosquitto,
    capture_shared: Arc<CaptureShared>,
    settings: Arc<SettingsShared>,
    client_tls: Arc<rustls::ClientConfig>,
    /// Serialises broker start/stop.
    broker_lock: Mutex<()>,
    closed: AtomicBool,
    api_port: u16,
    broker_port: u16,
    capture_port: u16,
    capture_password: String,
    allow: Vec<String>,
    capture_enabled: bool,
    knobs: Mutex<BrokerKnobs>,
    ca_path: PathBuf,
    dir: Mutex<Option<TempDir>>,
    dir_path: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DevAgent {
    /// Starts everything. Returns once HTTPS is listening and, when `cfg.start_broker`,
    /// the broker accepts TLS connections on the job listener and the capture subscriber
    /// is subscribed.
    pub fn start(cfg: Config) -> Result<DevAgent, Error> {
        for t in &cfg.allow {
            check_topic(t)?;
        }
        let exe = broker::find_mosquitto()?;
        let dir = TempDir::new()?;
        let pki = tls::generate_pki()?;
        let ca_path = dir.write("ca.pem", &pki.ca_pem, 0o644)?;
        dir.write("server.pem", &pki.server_pem, 0o644)?;
        // World-readable on purpose: throwaway key, and mosquitto must read it after
        // dropping root.
        dir.write("server.key", &pki.key_pem, 0o644)?;
        dir.write("acl", &acl_file(&cfg.allow), 0o644)?;
        let capture_password = random_password();
        broker::write_password_file(
            &exe,
            &dir.0.join("passwd"),
            CAPTURE_CLIENT_ID,
            &capture_password,
        )?;
        let db = dir.0.join("db");
        std::fs::create_dir_all(&db)
            .map_err(|e| Error::io(format!("creating {}", db.display()), e))?;
        set_mode(&db, 0o777)?;

        let client_tls = tls::client_config(&pki.ca_der)?;
        let server_tls = tls::server_config(&pki)?;

        let api_listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("binding the HTTPS listener on 127.0.0.1", e))?;
        let api_port = api_listener
            .local_addr()
            .map_err(|e| Error::io("reading the HTTPS listener's address", e))?
            .port();

        let conf_path = dir.0.join("mosquitto.conf");
        let knobs = BrokerKnobs::from_config(&cfg);
        let mut attempt = 0;
        let (broker_port, capture_port, mosquitto) = loop {
            attempt += 1;
            let job_port = free_port()?;
            let capture_port = free_port()?;
            if job_port == capture_port || job_port == api_port || capture_port == api_port {
                continue;
            }
            dir.write(
                "mosquitto.conf",
                &broker_conf(&dir.0, job_port, capture_port, &knobs),
                0o644,
            )?;
            let m = Mosquitto::new(exe.clone(), conf_path.clone(), job_port);
            if !cfg.start_broker {
                break (job_port, capture_port, m);
            }
            // The ports were free a moment ago; another process may have taken one since.
            match m.spawn(Instant::now() + READY_TIMEOUT) {
                Ok(()) => break (job_port, capture_port, m),
                Err(SpawnError::AddrInUse(_)) if attempt < PORT_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        };

        let wrong_port = loop {
            let p = free_port()?;
            if p != broker_port && p != capture_port && p != api_port {
                break p;
            }
        };
        let settings = Arc::new(SettingsShared {
            mode: Mutex::new(cfg.settings.clone()),
            requests: AtomicUsize::new(0),
            broker_port,
            wrong_port,
        });
        let https = HttpsServer::start(api_listener, server_tls, Arc::clone(&settings))?;

        let agent = DevAgent {
            https: Mutex::new(Some(https)),
            capture: Mutex::new(None),
            mosquitto,
            capture_shared: Arc::new(CaptureShared::new()),
            settings,
            client_tls,
            broker_lock: Mutex::new(()),
            closed: AtomicBool::new(false),
            api_port,
            broker_port,
            capture_port,
            capture_password,
            allow: cfg.allow.clone(),
            capture_enabled: cfg.capture,
            knobs: Mutex::new(knobs),
            ca_path,
            dir_path: dir.0.clone(),
            dir: Mutex::new(Some(dir)),
        };
        if cfg.start_broker {
            // Mosquitto is already up; this adds the probe and the capture subscription.
            agent.start_broker()?;
        } else if cfg.capture {
            agent.seed_capture_session(&exe, &conf_path)?;
        }
        Ok(agent)
    }

    /// Base URL of the HTTPS API, e.g. `https://127.0.0.1:40123`.
    pub fn api_base(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    /// Full URL of the Plugin Settings endpoint.
    pub fn settings_url(&self) -> String {
        format!("{}{}", self.api_base(), SETTINGS_PATH)
    }

    /// Host of the job-facing broker listener: always `127.0.0.1`.
    pub fn broker_host(&self) -> String {
        "127.0.0.1".to_string()
    }

    /// Port of the job-facing TLS listener (what Plugin Settings advertises).
    pub fn broker_port(&self) -> u16 {
        self.broker_port
    }

    /// Port of the capture listener (TLS, anonymous, may subscribe to everything).
    pub fn capture_port(&self) -> u16 {
        self.capture_port
    }

    /// PEM file of the throwaway CA that signed the HTTPS and broker certificates.
    pub fn ca_path(&self) -> PathBuf {
        self.ca_path.clone()
    }

    /// The private temp dir (config, certificates, persistence database).
    pub fn dir(&self) -> PathBuf {
        self.dir_path.clone()
    }

    /// The topics the job listener lets clients publish to.
    pub fn allowed_topics(&self) -> Vec<String> {
        self.allow.clone()
    }

    /// A rustls (ring) client configuration trusting only the throwaway CA: handy for
    /// test publishers (`TlsConfiguration::Rustls(agent.client_tls_config())`).
    pub fn client_tls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.client_tls)
    }

    /// Switches how the Plugin Settings endpoint answers from now on.
    pub fn set_settings_mode(&self, m: SettingsMode) {
        *lock(&self.settings.mode) = m;
    }

    /// The current Plugin Settings mode.
    pub fn settings_mode(&self) -> SettingsMode {
        lock(&self.settings.mode).clone()
    }

    /// Requests received on the Plugin Settings path (any method, any mode).
    pub fn settings_requests(&self) -> usize {
        self.settings.requests.load(Ordering::SeqCst)
    }

    /// Stops Mosquitto: SIGTERM (it saves its persistence database), then SIGKILL if it
    /// has not exited within 5 s. No-op when it is not running.
    pub fn stop_broker(&self) -> Result<(), Error> {
        let _g = lock(&self.broker_lock);
        let r = self.mosquitto.stop();
        // The capture may not have noticed the dead socket yet; start_broker must not
        // mistake that stale state for a subscription on the new broker.
        self.capture_shared.lock().subscribed = false;
        r
    }

    /// (Re)starts Mosquitto on the same ports. Returns when the job listener completes a
    /// TLS handshake and the capture subscriber is connected and subscribed (10 s
    /// deadline). No-op beyond those checks when it is already running.
    pub fn start_broker(&self) -> Result<(), Error> {
        let _g = lock(&self.broker_lock);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Invalid("start_broker after shutdown".into()));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let was_running = self.mosquitto.running();
        let connacks_before = self.capture_shared.lock().connacks;
        if !was_running {
            self.mosquitto.spawn(deadline).map_err(|e| match e {
                SpawnError::AddrInUse(m) => Error::Broker(format!(
                    "{m}\n(another process took one of the devagent's ports while the \
                     broker was stopped)"
                )),
                SpawnError::Other(e) => e,
            })?;
        }
        self.probe_job_listener(deadline)?;
        if !self.capture_enabled {
            return Ok(());
        }
        {
            let mut cap = lock(&self.capture);
            if cap.is_none() {
                *cap = Some(Capture::start(
                    self.capture_port,
                    self.capture_password.clone(),
                    Arc::clone(&self.client_tls),
                    Arc::clone(&self.capture_shared),
                )?);
            }
        }
        let mut st = self.capture_shared.lock();
        loop {
            let fresh = was_running || st.connacks > connacks_before;
            if fresh && st.subscribed {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                let last = st.last_error.clone().unwrap_or_else(|| "none".into());
                drop(st);
                return Err(Error::Broker(format!(
                    "the capture subscriber did not connect and subscribe to the broker's \
                     capture listener (port {}) within {}s; last error: {last}; broker log:\n  {}",
                    self.capture_port,
                    READY_TIMEOUT.as_secs(),
                    self.mosquitto.tail()
                )));
            }
            st = self
                .capture_shared
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// With the broker not started, a job that connects the moment it is started would
    /// publish before the capture subscriber could subscribe, and those records would be
    /// lost to the operator's view. So the capture's persistent session is created first on
    /// a capture-only Mosquitto sharing the persistence database; the real broker restores it
    /// at start, before any job can connect.
    fn seed_capture_session(&self, exe: &Path, conf_path: &Path) -> Result<(), Error> {
        let full = std::fs::read_to_string(conf_path)
            .map_err(|e| Error::io(format!("reading {}", conf_path.display()), e))?;
        let capture_only = match full.find("\n# job-facing listener") {
            Some(job) => {
                let capture = full.find("\n# capture listener").unwrap_or(full.len());
                format!("{}{}", &full[..job], &full[capture..])
            }
            None => full.clone(),
        };
        let seed_conf = self.dir_path.join("mosquitto-seed.conf");
        std::fs::write(&seed_conf, capture_only)
            .map_err(|e| Error::io(format!("writing {}", seed_conf.display()), e))?;
        set_mode(&seed_conf, 0o644)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let seed = Mosquitto::new(exe.to_path_buf(), seed_conf, self.capture_port);
        seed.spawn(deadline).map_err(|e| match e {
            SpawnError::AddrInUse(m) => Error::Broker(m),
            SpawnError::Other(e) => e,
        })?;
        *lock(&self.capture) = Some(Capture::start(
            self.capture_port,
            self.capture_password.clone(),
            Arc::clone(&self.client_tls),
            Arc::clone(&self.capture_shared),
        )?);
        let mut st = self.capture_shared.lock();
        while !st.subscribed {
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                let _ = seed.stop();
                return Err(Error::Broker(
                    "the capture subscriber did not subscribe on the seed broker".into(),
                ));
            }
            st = self
                .capture_shared
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(st);
        // SIGTERM makes Mosquitto write the session and its subscription to the database.
        seed.stop()?;
        self.capture_shared.lock().subscribed = false;
        Ok(())
    }

    /// A bare TLS handshake against the job listener: proves it is up and that the
    /// certificate verifies against the CA. It sends no CONNECT, so it never shows up in
    /// [`DevAgent::clients`].
    fn probe_job_listener(&self, deadline: Instant) -> Result<(), Error> {
        let last = loop {
            let err = match tls_handshake(self.broker_port, &self.client_tls) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() + Duration::from_millis(50) >= deadline {
                break err;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Err(Error::Broker(format!(
            "the broker's job listener 127.0.0.1:{} did not complete a TLS handshake: {last}; \
             broker log:\n  {}",
            self.broker_port,
            self.mosquitto.tail()
        )))
    }

    /// True while Mosquitto is running.
    pub fn broker_running(&self) -> bool {
        self.mosquitto.running()
    }

    /// Everything captured so far, in arrival order. A broker restart can deliver a
    /// message twice (QoS 1 is at-least-once): deduplicate by content when counting.
    pub fn messages(&self) -> Vec<Received> {
        self.capture_shared.lock().messages.clone()
    }

    /// Captured messages on exactly this topic, in arrival order.
    pub fn messages_on(&self, topic: &str) -> Vec<Received> {
        self.capture_shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Number of messages captured so far (all topics).
    pub fn message_count(&self) -> usize {
        self.capture_shared.lock().messages.len()
    }

    /// Number of messages captured so far on `topic` (cheap: kept as a counter).
    pub fn count_on(&self, topic: &str) -> usize {
        self.capture_shared
            .lock()
            .counts
            .get(topic)
            .copied()
            .unwrap_or(0)
    }

    /// Messages captured after the first `start` ones (all topics), waiting up to
    /// `timeout` for at least one. For followers that stream the capture.
    pub fn messages_from(&self, start: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut st = self.capture_shared.lock();
        loop {
            if st.messages.len() > start {
                return st.messages[start..].to_vec();
            }
            let now = Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            st = self
                .capture_shared
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until at least `n` messages were captured on `topic`, or `timeout` passes;
    /// returns the messages on `topic` either way (check the length).
    pub fn wait_for_messages(&self, topic: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut st = self.capture_shared.lock();
        loop {
            let have = st.counts.get(topic).copied().unwrap_or(0);
            let now = Instant::now();
            if have >= n || now >= deadline {
                return st
                    .messages
                    .iter()
                    .filter(|m| m.topic == topic)
                    .cloned()
                    .collect();
            }
            st = self
                .capture_shared
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Forgets everything captured so far (long-running tests bound memory with it).
    pub fn clear_messages(&self) {
        let mut st = self.capture_shared.lock();
        st.messages.clear();
        st.counts.clear();
    }

    /// MQTT client ids that connected to the job listener, in connection order (a
    /// client that reconnects appears again). Parsed from Mosquitto's log.
    pub fn clients(&self) -> Vec<String> {
        self.mosquitto.log.lock().clients.clone()
    }

    /// Publishes the broker's ACL refused (each got PUBACK 0x87 under MQTT v5), in order:
    /// `(client id, topic)`. Empty unless [`Config::log_publishes`] was set.
    pub fn denials(&self) -> Vec<(String, String)> {
        self.mosquitto.log.lock().denials.clone()
    }

    /// Publishes the broker accepted from job clients (any topic). Zero unless
    /// [`Config::log_publishes`] was set. A QoS 1 re-send after a reconnect counts again.
    pub fn publishes_received(&self) -> usize {
        self.mosquitto.log.lock().publishes
    }

    /// TCP connections accepted on the job listener (including handshake probes and
    /// clients that never sent CONNECT).
    pub fn connection_attempts(&self) -> usize {
        self.mosquitto.log.lock().connection_attempts
    }

    /// Waits until a client id matching `pred` has connected to the job listener (also
    /// looking at earlier ones); returns it, or `None` at `timeout`.
    pub fn wait_for_client(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let log = &self.mosquitto.log;
        let mut st = log.lock();
        loop {
            if let Some(c) = st.clients.iter().find(|c| pred(c)) {
                return Some(c.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = log
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Refuses (or again accepts) every job client at CONNECT with CONNACK 0x87: rewrites
    /// mosquitto.conf and restarts the broker when it is running.
    pub fn set_refuse_job_clients(&self, refuse: bool) -> Result<(), Error> {
        let running = self.broker_running();
        if running {
            self.stop_broker()?;
        }
        let conf = {
            let mut knobs = lock(&self.knobs);
            knobs.refuse_job_clients = refuse;
            broker_conf(&self.dir_path, self.broker_port, self.capture_port, &knobs)
        };
        let path = self.mosquitto.conf_path().to_path_buf();
        std::fs::write(&path, conf)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        if running {
            self.start_broker()?;
        }
        Ok(())
    }

    /// Path of the generated mosquitto.conf (for debugging).
    pub fn mosquitto_conf(&self) -> PathBuf {
        self.mosquitto.conf_path().to_path_buf()
    }

    /// Stops everything now (capture, broker, HTTPS) and removes the temp dir. Idempotent;
    /// later calls on this agent see a stopped broker. [`DevAgent::shutdown`] and drop do
    /// the same.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _g = lock(&self.broker_lock);
        if let Some(mut c) = lock(&self.capture).take() {
            c.stop();
        }
        if let Err(e) = self.mosquitto.stop() {
            eprintln!("kepm-devagent: stopping mosquitto: {e}");
        }
        if let Some(mut h) = lock(&self.https).take() {
            h.stop();
        }
        drop(lock(&self.dir).take());
    }

    /// Stops everything and removes the temp dir (drop does the same).
    pub fn shutdown(self) {
        self.close();
    }
}

impl Drop for DevAgent {
    fn drop(&mut self) {
        self.close();
    }
}

fn tls_handshake(port: u16, cfg: &Arc<rustls::ClientConfig>) -> Result<(), String> {
    use std::net::{SocketAddr, TcpStream};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    sock.set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut conn = rustls::ClientConnection::new(Arc::clone(cfg), name)
        .map_err(|e| format!("TLS setup: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    Ok(())
}

/// A Mosquitto with only a plaintext TCP listener on a free loopback port, to prove a
/// client never falls back to plaintext. Records who connected (from its log).
pub struct PlainBroker {
    mosquitto: Mosquitto,
    port: u16,
    _dir: TempDir,
}

impl PlainBroker {
    /// Starts it; returns once Mosquitto reports it is running. No probe connection is
    /// made, so [`PlainBroker::connection_attempts`] counts only real clients.
    pub fn start() -> Result<Self, Error> {
        let exe = broker::find_mosquitto()?;
        let dir = TempDir::new()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let conf = format!(
                "# written by kepm-devagent (plaintext only)\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n\
                 log_type notice\n\
                 log_type information\n\
                 connection_messages true\n\
                 listener {port} 127.0.0.1\n\
                 allow_anonymous true\n"
            );
            let conf_path = dir.write("mosquitto.conf", &conf, 0o644)?;
            let m = Mosquitto::new(exe.clone(), conf_path, port);
            match m.spawn(Instant::now() + READY_TIMEOUT) {
                Ok(()) => {
                    return Ok(PlainBroker {
                        mosquitto: m,
                        port,
                        _dir: dir,
                    })
                }
                Err(SpawnError::AddrInUse(_)) if attempt < PORT_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The plaintext listener's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// MQTT client ids that completed CONNECT.
    pub fn clients(&self) -> Vec<String> {
        self.mosquitto.log.lock().clients.clone()
    }

    /// TCP connections accepted ("New connection from" log lines), whether or not they
    /// sent a valid CONNECT (a TLS ClientHello counts too).
    pub fn connection_attempts(&self) -> usize {
        self.mosquitto.log.lock().connection_attempts
    }

    /// Waits until at least `n` connection attempts were logged or `timeout` passes;
    /// returns the count.
    pub fn wait_for_attempts(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let log = &self.mosquitto.log;
        let mut st = log.lock();
        loop {
            let now = Instant::now();
            if st.connection_attempts >= n || now >= deadline {
                return st.connection_attempts;
            }
            st = log
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_thread_safe() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<DevAgent>();
        send_sync::<PlainBroker>();
        send_sync::<Received>();
        send_sync::<Error>();
    }

    #[test]
    fn config_lists_every_listener_and_acl() {
        let knobs = |receive_maximum, log_publishes| BrokerKnobs {
            receive_maximum,
            log_publishes,
            max_packet_size: None,
            refuse_job_clients: false,
        };
        let c = broker_conf(Path::new("/tmp/x"), 1111, 2222, &knobs(Some(5), false));
        for want in [
            "listener 1111 127.0.0.1",
            "listener 2222 127.0.0.1",
            "acl_file /tmp/x/acl",
            "password_file /tmp/x/passwd",
            "max_inflight_messages 5",
            "max_queued_messages 1000000000",
            "persistence_location /tmp/x/db/",
        ] {
            assert!(c.contains(want), "{want} missing from:\n{c}");
        }
        assert!(!broker_conf(Path::new("/t"), 1, 2, &knobs(None, false)).contains("max_inflight"));
        assert!(!c.contains("log_type debug"));
        assert!(broker_conf(Path::new("/t"), 1, 2, &knobs(None, true)).contains("log_type debug"));
        let limits = BrokerKnobs {
            max_packet_size: Some(2000),
            refuse_job_clients: true,
            ..knobs(None, false)
        };
        let l = broker_conf(Path::new("/t"), 1, 2, &limits);
        assert!(l.contains("max_packet_size 2000"), "{l}");
        assert!(
            l.contains(&format!("clientid_prefixes {CAPTURE_CLIENT_ID}")),
            "{l}"
        );
        assert!(!c.contains("clientid_prefixes") && !c.contains("max_packet_size"));
        assert!(!c.contains("per_listener_settings"));
        let acl = acl_file(&["KeeperLogger".to_string(), "Jobs/x/events".to_string()]);
        assert!(
            acl.starts_with("topic write KeeperLogger\ntopic write Jobs/x/events\n"),
            "{acl}"
        );
        assert!(
            acl.ends_with(&format!("user {CAPTURE_CLIENT_ID}\ntopic read #\n")),
            "{acl}"
        );
    }

    #[test]
    fn topics_with_control_characters_are_rejected() {
        assert!(check_topic("KeeperLogger").is_ok());
        assert!(check_topic("Jobs/+/events").is_ok());
        for bad in ["", " KeeperLogger", "a\nb", "a\0"] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
    }
}
