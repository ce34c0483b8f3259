//! The running stand-in agent: what it holds, what it tells a test about itself, and how it
//! stops. Starting it is in `start`, driving the broker in `broker_control`, reading the
//! capture in `capture_view`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::broker::Mosquitto;
use crate::capture::{Capture, CaptureShared};
use crate::config::SettingsMode;
use crate::gate::{Gate, GateShared, SilentDrop};
use crate::https::{HttpsServer, SettingsShared, SETTINGS_PATH};
use crate::jobstore::{JobsApi, JobsNotice, TriggerRunner};
use crate::mosquitto_conf::BrokerKnobs;
use crate::tempdir::TempDir;
use crate::trust::{Refusal, Registry, Trust};

/// The running stand-in agent. See the crate docs.
///
/// All methods take `&self`; share it between threads with `Arc` if needed.
pub struct DevAgent {
    // Field order is drop order: servers and broker go before the temp dir.
    pub(super) https: Mutex<Option<HttpsServer>>,
    /// The Jobs API's store, when on.
    pub(super) jobs: Option<Arc<JobsApi>>,
    /// In front of Mosquitto's job listener when trust or silent denial needs it.
    pub(super) gate: Mutex<Option<Gate>>,
    pub(super) gate_shared: Arc<GateShared>,
    pub(super) registry: Arc<Registry>,
    /// Mosquitto's own job listener: plain behind the gate, else the advertised TLS port.
    pub(super) mosquitto_job_port: u16,
    pub(super) capture: Mutex<Option<Capture>>,
    pub(super) mosquitto: Mosquitto,
    pub(super) capture_shared: Arc<CaptureShared>,
    pub(super) settings: Arc<SettingsShared>,
    pub(super) client_tls: Arc<rustls::ClientConfig>,
    /// Serialises broker start/stop.
    pub(super) broker_lock: Mutex<()>,
    pub(super) closed: AtomicBool,
    pub(super) api_port: u16,
    pub(super) broker_port: u16,
    pub(super) capture_port: u16,
    pub(super) capture_password: String,
    pub(super) allow: Vec<String>,
    pub(super) capture_enabled: bool,
    pub(super) knobs: Mutex<BrokerKnobs>,
    pub(super) ca_path: PathBuf,
    pub(super) dir: Mutex<Option<TempDir>>,
    pub(super) dir_path: PathBuf,
}

/// The PFX `serve --jobs-api` writes for PowerShell, and its password.
pub(super) const ADMIN_PFX: &str = "admin-client.pfx";
pub(super) const ADMIN_PFX_PASSWORD: &str = "kepm-devagent";

/// The Admin tier's files a deployment script uses (see [`DevAgent::admin_files`]).
#[derive(Clone, Debug)]
pub struct AdminFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub bundle: PathBuf,
    pub pfx: Option<PathBuf>,
    pub pfx_password: &'static str,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DevAgent {
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

    /// Adds a process to the launched-process registry under `job`, as the agent's runner does
    /// right after starting a task. Only matters with [`Trust::Registry`].
    pub fn register_process(&self, pid: u32, job: &str) {
        self.registry.register(pid, job);
    }

    /// Removes a process from the registry (its task ended).
    pub fn unregister_process(&self, pid: u32) {
        self.registry.unregister(pid);
    }

    /// The trust rule in force.
    pub fn trust(&self) -> Trust {
        self.registry.trust
    }

    /// Every connection and request refused by the trust rules so far.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.registry.refusals()
    }

    /// The launched processes the trust rules have let through at least once: whether a
    /// task refused in the registration race retried past it.
    pub fn admitted_pids(&self) -> std::collections::HashSet<u32> {
        self.registry.admitted()
    }

    /// Every publish to an undeclared topic answered with success and dropped (silent denial).
    pub fn silent_drops(&self) -> Vec<SilentDrop> {
        self.gate_shared
            .drops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `(client id, topic)` of every publish to an undeclared topic, however it was answered:
    /// the silent drops under [`crate::trust::Denial::Silent`], Mosquitto's 0x87 denials
    /// ([`DevAgent::denials`]) otherwise.
    pub fn undeclared_publishes(&self) -> Vec<(String, String)> {
        if self.silent_drops_enabled() {
            self.silent_drops()
                .into_iter()
                .map(|d| (d.client_id, d.topic))
                .collect()
        } else {
            self.denials()
        }
    }

    /// Whether undeclared topics are dropped silently (and listed by
    /// [`DevAgent::silent_drops`]) rather than denied with PUBACK 0x87.
    pub fn silent_drops_enabled(&self) -> bool {
        self.gate_shared.denial == crate::trust::Denial::Silent
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

    /// Plugin Settings answers written in full (a `delay:MS` answer counts once its delay is
    /// over; a `hang` never does): a client that went on before this grew did not wait.
    pub fn settings_answers(&self) -> usize {
        self.settings.answers.load(Ordering::SeqCst)
    }

    /// The agent root of the Jobs API's store, when the Jobs API is on.
    pub fn agent_root(&self) -> Option<PathBuf> {
        self.jobs.as_ref().map(|j| j.root().to_path_buf())
    }

    /// The Admin tier's client certificate files, when the Jobs API is on: (CA, client
    /// certificate, key, certificate and key in one PEM, PFX when `openssl` made one).
    pub fn admin_files(&self) -> Option<AdminFiles> {
        self.jobs.as_ref()?;
        let d = &self.dir_path;
        let pfx = d.join(ADMIN_PFX);
        Some(AdminFiles {
            ca: d.join("admin-ca.pem"),
            cert: d.join("admin-client.pem"),
            key: d.join("admin-client.key"),
            bundle: d.join("admin-client-bundle.pem"),
            pfx: pfx.exists().then_some(pfx),
            pfx_password: ADMIN_PFX_PASSWORD,
        })
    }

    /// What the Jobs API did that the operator should see (deployments, triggers, job files
    /// restored by Last Known Good), in order. Empty when it is off.
    pub fn jobs_notices(&self) -> Vec<JobsNotice> {
        self.jobs.as_ref().map(|j| j.notices()).unwrap_or_default()
    }

    /// Attaches what runs a triggered job (`kepm_devagent::run::attach_runner`). Until one
    /// is attached, a trigger is answered 503. No-op when the Jobs API is off.
    pub fn set_trigger_runner(&self, runner: TriggerRunner) {
        if let Some(j) = &self.jobs {
            j.set_runner(runner);
        }
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
        if let Some(j) = &self.jobs {
            j.stop();
        }
        if let Some(mut g) = lock(&self.gate).take() {
            g.stop();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_thread_safe() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<DevAgent>();
        send_sync::<crate::plain::PlainBroker>();
        send_sync::<crate::config::Received>();
        send_sync::<crate::error::Error>();
    }
}
