//! One Mosquitto child process: start, readiness, log parsing, stop.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::wait::{wait_until, wait_while};

const TAIL_LINES: usize = 40;
/// How long Mosquitto (and the capture subscriber) may take to come up.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports are picked free and then bound by Mosquitto; another process may take one in
/// between, so a start is retried on "address in use" this many times.
pub(crate) const PORT_RETRIES: usize = 5;

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> Result<u16, Error> {
    // A port found free is not held: a devagent configured without a broker (or with it
    // stopped) advertises a port nobody listens on, and the next devagent of the same process
    // (tests run in parallel) could be handed that port for its own Mosquitto, which would
    // then take the first one's records. So a port is given out once per process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..64 {
        let l = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("binding 127.0.0.1:0 to find a free port", e))?;
        let port = l
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| Error::io("reading a free port", e))?;
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    Err(Error::io(
        "finding a free port not given out before",
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "64 tries"),
    ))
}

/// What the broker's log has told us so far.
#[derive(Default)]
pub(crate) struct LogState {
    /// Bumped on every spawn so a dying process's reader cannot flag the new one.
    generation: u64,
    running: bool,
    exited: bool,
    tail: VecDeque<String>,
    /// "ip:port" of a fresh connection -> the listener port it arrived on.
    conn_listener: HashMap<String, u16>,
    pub clients: Vec<String>,
    pub connection_attempts: usize,
    /// Publishes Mosquitto accepted from clients other than the capture subscriber. Only
    /// counted when the broker logs at debug level (`Config::log_publishes`).
    pub publishes: usize,
    /// (client id, topic) of every publish the ACL denied, in log order (debug level only).
    pub denials: Vec<(String, String)>,
}

pub(crate) struct LogShared {
    pub state: Mutex<LogState>,
    pub cv: Condvar,
}

impl LogShared {
    pub fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic elsewhere must not turn every later call into a second panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Mosquitto {
    exe: PathBuf,
    conf: PathBuf,
    /// Only clients and connections on this listener are recorded.
    watch_port: u16,
    child: Mutex<Option<Running>>,
    pub log: Arc<LogShared>,
}

struct Running {
    mosquitto: Child,
    /// `sh` blocked reading a pipe only we write to. When the pipe closes (we stop the
    /// broker, or this process dies, even by SIGKILL) it sends mosquitto SIGTERM, so a
    /// crashed test harness does not leave brokers behind holding ports.
    watchdog: Option<Child>,
}

impl Running {
    /// Closes the watchdog's pipe, which makes it SIGTERM mosquitto, and reaps it.
    fn release_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }
}

fn spawn_watchdog(pid: u32) -> Option<Child> {
    // mosquitto stays unreaped until we wait for it, so its pid cannot be reused by then.
    Command::new("sh")
        .arg("-c")
        .arg("read _ignored; kill -TERM \"$1\" 2>/dev/null")
        .arg("kepm-devagent-watchdog")
        .arg(pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

pub(crate) enum SpawnError {
    AddrInUse(String),
    Other(Error),
}

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::AddrInUse(m) => Error::Broker(m),
            SpawnError::Other(e) => e,
        }
    }
}

/// Finds the mosquitto executable: `KEPM_MOSQUITTO`, then `PATH`, then the usual sbin dirs
/// (Debian installs it in /usr/sbin, which a non-root PATH often lacks).
pub(crate) fn find_mosquitto() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("KEPM_MOSQUITTO").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::MosquittoNotFound {
            tried: format!("KEPM_MOSQUITTO={}", p.display()),
        });
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/sbin",
        "/opt/homebrew/sbin",
        "/usr/local/opt/mosquitto/sbin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    for d in &dirs {
        let p = d.join("mosquitto");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::MosquittoNotFound {
        tried: "KEPM_MOSQUITTO, PATH, /usr/sbin, /usr/local/sbin, /sbin".to_string(),
    })
}

fn verbose() -> bool {
    std::env::var_os("KEPM_DEVAGENT_LOG").is_some_and(|v| !v.is_empty() && v != "0")
}

impl Mosquitto {
    pub fn new(exe: PathBuf, conf: PathBuf, watch_port: u16) -> Self {
        Mosquitto {
            exe,
            conf,
            watch_port,
            child: Mutex::new(None),
            log: Arc::new(LogShared {
                state: Mutex::new(LogState::default()),
                cv: Condvar::new(),
            }),
        }
    }

    fn child(&self) -> MutexGuard<'_, Option<Running>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// True while the process exists and has not exited.
    pub fn running(&self) -> bool {
        let mut g = self.child();
        match g.as_mut() {
            Some(r) => matches!(r.mosquitto.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Spawns mosquitto and waits until its log says it is running (listeners are open
    /// by then), or until it exits or `deadline` passes.
    pub fn spawn(&self, deadline: Instant) -> Result<(), SpawnError> {
        let mut slot = self.child();
        if let Some(r) = slot.as_mut() {
            if matches!(r.mosquitto.try_wait(), Ok(None)) {
                return Ok(());
            }
            r.release_watchdog();
        }
        *slot = None;
        let generation = {
            let mut st = self.log.lock();
            st.generation += 1;
            st.running = false;
            st.exited = false;
            st.tail.clear();
            st.generation
        };
        let mut child = Command::new(&self.exe)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                SpawnError::Other(if e.kind() == std::io::ErrorKind::NotFound {
                    Error::MosquittoNotFound {
                        tried: self.exe.display().to_string(),
                    }
                } else {
                    Error::io(format!("starting {}", self.exe.display()), e)
                })
            })?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SpawnError::Other(Error::Broker(
                "mosquitto's stderr was not captured".into(),
            )));
        };
        let log = Arc::clone(&self.log);
        let watch_port = self.watch_port;
        let reader = std::thread::Builder::new()
            .name("kepm-devagent-mosquitto-log".into())
            .spawn(move || read_log(stderr, &log, generation, watch_port));
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SpawnError::Other(Error::io(
                "spawning the log reader thread",
                e,
            )));
        }
        let watchdog = spawn_watchdog(child.id());
        *slot = Some(Running {
            mosquitto: child,
            watchdog,
        });
        drop(slot);

        let (st, timed_out) = wait_while(&self.log.cv, self.log.lock(), deadline, |st| {
            !st.running && !st.exited
        });
        if st.running {
            return Ok(());
        }
        let tail: Vec<String> = st.tail.iter().cloned().collect();
        drop(st);
        if timed_out {
            let _ = self.stop();
            return Err(SpawnError::Other(Error::Broker(format!(
                "mosquitto did not report \"running\" in time (config {}); its log:\n  {}",
                self.conf.display(),
                tail.join("\n  ")
            ))));
        }
        self.reap();
        let tail = tail.join("\n  ");
        let mut msg = format!(
            "mosquitto ({}) exited during startup with config {}; its log:\n  {tail}",
            self.exe.display(),
            self.conf.display()
        );
        if tail.contains("Unable to") || tail.contains("ermission denied") {
            msg.push_str(
                "\nhint: started as root, mosquitto drops to user `mosquitto`, which must \
                 be able to read the files: every directory above the config must be \
                 world-searchable (try TMPDIR=/tmp)",
            );
        }
        Err(if tail.contains("in use") {
            SpawnError::AddrInUse(msg)
        } else {
            SpawnError::Other(Error::Broker(msg))
        })
    }

    fn reap(&self) {
        if let Some(mut r) = self.child().take() {
            r.release_watchdog();
            let _ = r.mosquitto.wait();
        }
    }

    /// SIGTERM (so Mosquitto saves its persistence database), wait up to 5 s, then SIGKILL.
    pub fn stop(&self) -> Result<(), Error> {
        let mut slot = self.child();
        let Some(mut run) = slot.take() else {
            return Ok(());
        };
        if matches!(run.mosquitto.try_wait(), Ok(Some(_))) {
            run.release_watchdog();
            return Ok(());
        }
        let had_watchdog = run.watchdog.is_some();
        run.release_watchdog();
        // Also signal directly: the watchdog may have been killed (Ctrl-C hits the whole
        // process group). A second SIGTERM is harmless. `kill` because unsafe is forbidden.
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(run.mosquitto.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if termed || had_watchdog {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut exited = false;
            // An error from try_wait ends the wait too: kill() below then reports it.
            let done = wait_until(deadline, Duration::from_millis(10), || {
                match run.mosquitto.try_wait() {
                    Ok(Some(_)) => {
                        exited = true;
                        true
                    }
                    Ok(None) => false,
                    Err(_) => true,
                }
            });
            if exited {
                return Ok(());
            }
            if !done {
                eprintln!("kepm-devagent: mosquitto ignored SIGTERM for 5 s; killing it");
            }
        }
        let _ = run.mosquitto.kill();
        run.mosquitto
            .wait()
            .map(|_| ())
            .map_err(|e| Error::io("waiting for mosquitto to exit", e))
    }

    pub fn tail(&self) -> String {
        let st = self.log.lock();
        st.tail.iter().cloned().collect::<Vec<_>>().join("\n  ")
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn read_log(stderr: std::process::ChildStderr, log: &LogShared, generation: u64, watch_port: u16) {
    let echo = verbose();
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let raw = String::from_utf8_lossy(&buf);
        let line = strip_timestamp(raw.trim_end());
        if echo {
            eprintln!("kepm-devagent: mosquitto: {line}");
        }
        let mut st = log.lock();
        if st.generation == generation {
            if st.tail.len() >= TAIL_LINES {
                st.tail.pop_front();
            }
            st.tail.push_back(line.to_string());
            if line.starts_with("mosquitto version") && line.ends_with(" running") {
                st.running = true;
            }
        }
        parse_line(&mut st, line, watch_port);
        drop(st);
        log.cv.notify_all();
    }
    let mut st = log.lock();
    if st.generation == generation {
        st.exited = true;
        st.running = false;
    }
    drop(st);
    log.cv.notify_all();
}

/// Mosquitto prefixes each line with "<unix seconds>: ".
fn strip_timestamp(line: &str) -> &str {
    match line.split_once(": ") {
        Some((ts, rest)) if !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => line,
    }
}

/// Mosquitto 2.0 logs, per connection:
///   "New connection from 127.0.0.1:41986 on port 18883."
///   "New client connected from 127.0.0.1:41986 as job_A_1 (p5, c1, k60)."
/// The second line does not name the listener, so we join them on the peer address.
fn parse_line(st: &mut LogState, line: &str, watch_port: u16) {
    if let Some(rest) = line.strip_prefix("New connection from ") {
        if let Some((addr, port)) = rest.rsplit_once(" on port ") {
            if let Ok(port) = port.trim_end_matches('.').parse::<u16>() {
                if st.conn_listener.len() > 10_000 {
                    // Connections that never sent CONNECT would otherwise pile up forever.
                    st.conn_listener.clear();
                }
                st.conn_listener.insert(addr.to_string(), port);
                if port == watch_port {
                    st.connection_attempts += 1;
                }
            }
        }
    } else if let Some(rest) = line.strip_prefix("Denied PUBLISH from ") {
        if let Some((client, topic)) = publish_client_topic(rest) {
            st.denials.push((client.to_string(), topic.to_string()));
        }
    } else if let Some(rest) = line.strip_prefix("Received PUBLISH from ") {
        if let Some((client, _)) = publish_client_topic(rest) {
            if client != crate::capture::CAPTURE_CLIENT_ID {
                st.publishes += 1;
            }
        }
    } else if let Some(rest) = line.strip_prefix("New client connected from ") {
        if let Some((addr, after)) = rest.split_once(" as ") {
            let id = match after.rfind(" (") {
                Some(i) => &after[..i],
                None => after.trim_end_matches('.'),
            };
            if st.conn_listener.remove(addr) == Some(watch_port) {
                st.clients.push(id.to_string());
            }
        }
    }
}

/// Splits Mosquitto's debug line tail
/// `job_A_1 (d0, q1, r0, m1, 'Jobs/x/events', ... (2 bytes))` into client id and topic.
/// Client ids never contain spaces here (the job client ids are `{job}_{token}_{pid}`); the
/// topic is taken between the first `'` after the flags and the last `', ... (`.
fn publish_client_topic(rest: &str) -> Option<(&str, &str)> {
    let (client, flags) = rest.split_once(" (d")?;
    let start = flags.find('\'')? + 1;
    let end = flags.rfind("', ... (")?;
    (end >= start).then(|| (client, &flags[start..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_ids_per_listener() {
        let mut st = LogState::default();
        for l in [
            "1795865779: New connection from 127.0.0.1:50884 on port 18884.",
            "1795865779: New client connected from 127.0.0.1:50884 as capt (p5, c1, k60).",
            "1795865780: New connection from 127.0.0.1:41986 on port 18883.",
            "1795865780: New client connected from 127.0.0.1:41986 as job-a_Tool_12 (p5, c1, k60).",
            "1795865780: New connection from 127.0.0.1:42018 on port 18883.",
            "1795865780: Client <unknown> closed its connection.",
        ] {
            parse_line(&mut st, strip_timestamp(l), 18883);
        }
        assert_eq!(st.clients, vec!["job-a_Tool_12".to_string()]);
        assert_eq!(st.connection_attempts, 2);
    }

    #[test]
    fn parses_denied_and_received_publishes() {
        let mut st = LogState::default();
        for l in [
            "1795867545: Denied PUBLISH from job-a_Tool_1 (d0, q1, r0, m1, 'Jobs/x/events', ... (2 bytes))",
            "1795867545: Received PUBLISH from job-a_Tool_2 (d0, q1, r0, m1, 'KeeperLogger', ... (2 bytes))",
            "1795867545: Received PUBLISH from kepm-devagent-capture (d0, q1, r0, m1, 'x', ... (2 bytes))",
            "1795867545: Denied PUBLISH from j_T_3 (d1, q1, r0, m9, 'it's', ... (0 bytes))",
        ] {
            parse_line(&mut st, strip_timestamp(l), 18883);
        }
        assert_eq!(st.publishes, 1);
        assert_eq!(
            st.denials,
            vec![
                ("job-a_Tool_1".to_string(), "Jobs/x/events".to_string()),
                ("j_T_3".to_string(), "it's".to_string())
            ]
        );
    }
}
