//! Stopping and (re)starting the agent's Mosquitto, and proving it is ready.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{lock, DevAgent};
use crate::broker::{SpawnError, READY_TIMEOUT};
use crate::capture::Capture;
use crate::error::Error;
use crate::mosquitto_conf::broker_conf;
use crate::wait::{wait_until, wait_while};

impl DevAgent {
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
        let shared = &self.capture_shared;
        let (st, timed_out) = wait_while(&shared.cv, shared.lock(), deadline, |st| {
            let fresh = was_running || st.connacks > connacks_before;
            !(fresh && st.subscribed)
        });
        if !timed_out {
            return Ok(());
        }
        let last = st.last_error.clone().unwrap_or_else(|| "none".into());
        drop(st);
        Err(Error::Broker(format!(
            "the capture subscriber did not connect and subscribe to the broker's \
             capture listener (port {}) within {}s; last error: {last}; broker log:\n  {}",
            self.capture_port,
            READY_TIMEOUT.as_secs(),
            self.mosquitto.tail()
        )))
    }

    /// A bare TLS handshake against the job listener: proves it is up and that the
    /// certificate verifies against the CA. It sends no CONNECT, so it never shows up in
    /// [`DevAgent::clients`].
    fn probe_job_listener(&self, deadline: Instant) -> Result<(), Error> {
        let mut last = String::new();
        let gated = lock(&self.gate).is_some();
        let probe = || {
            if gated {
                // The gate is up with the agent; Mosquitto behind it listens in plain TCP.
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.mosquitto_job_port));
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                    .map(drop)
                    .map_err(|e| format!("connect: {e}"))
            } else {
                tls_handshake(self.broker_port, &self.client_tls)
            }
        };
        let up = wait_until(deadline, Duration::from_millis(50), || match probe() {
            Ok(()) => true,
            Err(e) => {
                last = e;
                false
            }
        });
        if up {
            return Ok(());
        }
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
            broker_conf(
                &self.dir_path,
                self.mosquitto_job_port,
                self.capture_port,
                &knobs,
            )
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
    let name = rustls::pki_types::ServerName::try_from(crate::tls::AGENT_CERT_NAME)
        .map_err(|e| format!("server name: {e}"))?;
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
