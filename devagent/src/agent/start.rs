//! Bringing a [`DevAgent`] up: its temp dir, certificates, ACL and password file, the HTTPS
//! endpoint, and Mosquitto on free ports.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::state::{lock, DevAgent, ADMIN_PFX, ADMIN_PFX_PASSWORD};
use crate::broker::{self, free_port, Mosquitto, SpawnError, PORT_RETRIES, READY_TIMEOUT};
use crate::capture::{Capture, CaptureShared, CAPTURE_CLIENT_ID};
use crate::config::Config;
use crate::error::Error;
use crate::gate::{Gate, GateShared};
use crate::https::{App, HttpsServer, SettingsShared};
use crate::jobstore::JobsApi;
use crate::mosquitto_conf::{
    acl_file, broker_conf, check_topic, random_password, write_password_file, BrokerKnobs,
};
use crate::tempdir::{set_mode, TempDir};
use crate::tls;
use crate::trust::Registry;
use crate::wait::wait_while;

impl DevAgent {
    /// Starts everything. Returns once HTTPS is listening and, when `cfg.start_broker`,
    /// the broker accepts TLS connections on the job listener and the capture subscriber
    /// is subscribed.
    pub fn start(cfg: Config) -> Result<DevAgent, Error> {
        for t in &cfg.allow {
            check_topic(t)?;
        }
        let registry = Arc::new(Registry::new(
            cfg.trust,
            &cfg.trusted_exes,
            cfg.registration_delay,
        )?);
        let exe = broker::find_mosquitto()?;
        let dir = TempDir::new()?;
        let pki = tls::generate_pki()?;
        let ca_path = dir.write("ca.pem", &pki.ca_pem, 0o644)?;
        dir.write("server.pem", &pki.server_pem, 0o644)?;
        // World-readable on purpose: throwaway key, and mosquitto must read it after
        // dropping root.
        dir.write("server.key", &pki.key_pem, 0o644)?;
        dir.write("capture.pem", &pki.capture_pem, 0o644)?;
        dir.write("capture.key", &pki.capture_key_pem, 0o644)?;
        dir.write("acl", &acl_file(&cfg.allow, &cfg.allow_subscribe), 0o644)?;
        let capture_password = random_password()?;
        write_password_file(
            &exe,
            &dir.path().join("passwd"),
            CAPTURE_CLIENT_ID,
            &capture_password,
        )?;
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db)
            .map_err(|e| Error::io(format!("creating {}", db.display()), e))?;
        set_mode(&db, 0o777)?;

        let client_tls = tls::client_config(&pki.ca_der)?;
        let server_tls = tls::server_configs(&pki)?;

        let api_listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("binding the HTTPS listener on 127.0.0.1", e))?;
        let api_port = api_listener
            .local_addr()
            .map_err(|e| Error::io("reading the HTTPS listener's address", e))?
            .port();

        // With the gate, jobs connect to it and it relays to Mosquitto's plain job listener;
        // its port is bound now, so no other process can take it meanwhile.
        let gate_listener = if cfg.needs_gate() {
            Some(
                TcpListener::bind("127.0.0.1:0")
                    .map_err(|e| Error::io("binding the broker gate on 127.0.0.1", e))?,
            )
        } else {
            None
        };
        let gate_port = match &gate_listener {
            Some(l) => Some(
                l.local_addr()
                    .map_err(|e| Error::io("reading the gate's address", e))?
                    .port(),
            ),
            None => None,
        };
        let conf_path = dir.path().join("mosquitto.conf");
        let knobs = BrokerKnobs::from_config(&cfg);
        let mut attempt = 0;
        let (mosquitto_job_port, capture_port, mosquitto) = loop {
            attempt += 1;
            let job_port = free_port()?;
            let capture_port = free_port()?;
            if job_port == capture_port
                || job_port == api_port
                || capture_port == api_port
                || Some(job_port) == gate_port
                || Some(capture_port) == gate_port
            {
                continue;
            }
            dir.write(
                "mosquitto.conf",
                &broker_conf(dir.path(), job_port, capture_port, &knobs),
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

        let broker_port = gate_port.unwrap_or(mosquitto_job_port);
        let wrong_port = loop {
            let p = free_port()?;
            if p != broker_port && p != capture_port && p != api_port && p != mosquitto_job_port {
                break p;
            }
        };
        let settings = Arc::new(SettingsShared {
            mode: Mutex::new(cfg.settings.clone()),
            requests: AtomicUsize::new(0),
            answers: AtomicUsize::new(0),
            broker_port,
            wrong_port,
            registry: Arc::clone(&registry),
        });
        let gate_shared = Arc::new(GateShared {
            registry: Arc::clone(&registry),
            denial: cfg.denial,
            allow: cfg.allow.clone(),
            drops: Mutex::new(Vec::new()),
        });
        let own_tls = Arc::clone(&server_tls.own);
        let gate = match gate_listener {
            Some(l) => Some(Gate::start(
                l,
                own_tls,
                mosquitto_job_port,
                Arc::clone(&gate_shared),
            )?),
            None => None,
        };
        let jobs = if cfg.jobs_api {
            write_admin_files(&dir, &pki)?;
            let root = match &cfg.agent_root {
                Some(r) => r.clone(),
                None => dir.path().join("agent-root"),
            };
            Some(JobsApi::start(&root)?)
        } else {
            None
        };
        let https = HttpsServer::start(
            api_listener,
            App {
                settings: Arc::clone(&settings),
                tls: server_tls,
                jobs: jobs.clone(),
            },
        )?;

        let agent = DevAgent {
            https: Mutex::new(Some(https)),
            jobs,
            gate: Mutex::new(gate),
            gate_shared,
            registry,
            mosquitto_job_port,
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
            dir_path: dir.path().to_path_buf(),
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
        let shared = &self.capture_shared;
        let (st, timed_out) = wait_while(&shared.cv, shared.lock(), deadline, |st| !st.subscribed);
        drop(st);
        if timed_out {
            let _ = seed.stop();
            return Err(Error::Broker(
                "the capture subscriber did not subscribe on the seed broker".into(),
            ));
        }
        // SIGTERM makes Mosquitto write the session and its subscription to the database.
        seed.stop()?;
        self.capture_shared.lock().subscribed = false;
        Ok(())
    }
}

/// The Admin tier's files for deployment tooling: the CA, the client certificate and key,
/// both in one PEM (curl's `--cert`), and a PFX for PowerShell when `openssl` is there
/// (rcgen writes no PKCS#12).
fn write_admin_files(dir: &TempDir, pki: &tls::Pki) -> Result<(), Error> {
    dir.write("admin-ca.pem", &pki.admin_ca_pem, 0o644)?;
    let cert = dir.write("admin-client.pem", &pki.admin_client_pem, 0o644)?;
    let key = dir.write("admin-client.key", &pki.admin_client_key_pem, 0o600)?;
    dir.write(
        "admin-client-bundle.pem",
        &format!("{}{}", pki.admin_client_pem, pki.admin_client_key_pem),
        0o600,
    )?;
    let pfx = dir.path().join(ADMIN_PFX);
    // PBE-SHA1-3DES and a SHA-1 MAC: the PKCS#12 that Windows PowerShell 5.1 still reads,
    // as well as PowerShell 7. The password is as throwaway as the key.
    let made = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-in"])
        .arg(&cert)
        .arg("-inkey")
        .arg(&key)
        .arg("-out")
        .arg(&pfx)
        .args([
            "-passout",
            &format!("pass:{ADMIN_PFX_PASSWORD}"),
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
            "-name",
            tls::ADMIN_CLIENT_NAME,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "kepm-devagent: no {ADMIN_PFX} for PowerShell: openssl pkcs12 failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!(
            "kepm-devagent: no {ADMIN_PFX} for PowerShell: cannot run openssl ({e}); use \
             admin-client.pem and admin-client.key"
        ),
    }
    Ok(())
}
