//! [`PlainBroker`]: a Mosquitto without TLS, for proving that a client never falls back to
//! plaintext.

use std::time::{Duration, Instant};

use crate::broker::{self, free_port, Mosquitto, SpawnError, PORT_RETRIES, READY_TIMEOUT};
use crate::error::Error;
use crate::tempdir::TempDir;
use crate::wait::wait_while;

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

    /// Waits until at least `n` clients completed CONNECT or `timeout` passes; returns them.
    /// Mosquitto logs a connection and its client on two lines: after an attempt is counted,
    /// its client id may not have been read yet.
    pub fn wait_for_clients(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let log = &self.mosquitto.log;
        let (st, _) = wait_while(&log.cv, log.lock(), deadline, |st| st.clients.len() < n);
        st.clients.clone()
    }

    /// Waits until at least `n` connection attempts were logged or `timeout` passes;
    /// returns the count.
    pub fn wait_for_attempts(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let log = &self.mosquitto.log;
        let (st, _) = wait_while(&log.cv, log.lock(), deadline, |st| {
            st.connection_attempts < n
        });
        st.connection_attempts
    }
}
