//! The agent's Plugin Settings endpoint over HTTPS: just enough HTTP/1.1 for one GET per
//! connection.
//!
//! Kept hand-written over rustls on purpose. Its job is to answer wrongly on demand (403,
//! 500, any status, a body that is not JSON, missing keys, the port as a string, a wrong
//! port, a delay long enough to trip client timeouts), and a library makes the broken
//! answers no simpler: each is a status line and a body either way. What a library would add
//! costs more here: tiny_http 0.12's TLS is rustls 0.20, a second rustls beside the
//! workspace's 0.23 that loads certificates its own way, and its fixed worker pool lets a
//! `delay:MS` request hold up the others, where here every connection has its own thread;
//! hyper with tokio-rustls would bring an async server into a test harness whose other parts
//! are threads. The parsing is one request line per connection, bounded (MAX_HEAD) and with
//! read/write timeouts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::SettingsMode;
use crate::error::Error;

/// Where a job falls back to when Plugin Settings discovery fails (see docs/kepm-contract.md).
pub const FALLBACK_BROKER: &str = "127.0.0.1:8675";
/// The path a job task calls (matched case-insensitively, like ASP.NET routing).
pub const SETTINGS_PATH: &str = "/api/PluginSettings/KeeperPrivilegeManager";
const MAX_HEAD: usize = 16 * 1024;

pub(crate) struct SettingsShared {
    pub mode: Mutex<SettingsMode>,
    pub requests: AtomicUsize,
    pub broker_port: u16,
    pub wrong_port: u16,
}

impl SettingsShared {
    fn mode(&self) -> SettingsMode {
        self.mode.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub(crate) struct HttpsServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpsServer {
    pub fn start(
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shared: Arc<SettingsShared>,
    ) -> Result<HttpsServer, Error> {
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("reading the HTTPS listener's address", e))?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("kepm-devagent-https".into())
            .spawn(move || accept_loop(listener, tls, shared, stop2))
            .map_err(|e| Error::io("spawning the HTTPS accept thread", e))?;
        Ok(HttpsServer {
            port,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A blocking accept() only notices the flag when a connection arrives.
        let _ = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<SettingsShared>,
    stop: Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            // EMFILE and friends: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let tls = Arc::clone(&tls);
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("kepm-devagent-https-conn".into())
            .spawn(move || {
                let _ = serve_one(stream, tls, &shared);
            });
        if let Err(e) = spawned {
            eprintln!("kepm-devagent: cannot spawn an HTTPS connection thread: {e}");
        }
    }
}

fn serve_one(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    shared: &SettingsShared,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);

    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return respond(
                &mut tls,
                431,
                "application/json",
                br#"{"error":"header too large"}"#,
            );
        }
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split(['?', '#']).next().unwrap_or_default();

    if !path.eq_ignore_ascii_case(SETTINGS_PATH) {
        return respond(
            &mut tls,
            404,
            "application/json",
            br#"{"error":"not found"}"#,
        );
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if method != "GET" {
        return respond(
            &mut tls,
            405,
            "application/json",
            br#"{"error":"method not allowed"}"#,
        );
    }
    let (status, ctype, body) = settings_response(shared);
    respond(&mut tls, status, ctype, body.as_bytes())
}

fn settings_response(shared: &SettingsShared) -> (u16, &'static str, String) {
    let ok = |port: serde_json::Value| {
        serde_json::json!({
            "broker.host": "127.0.0.1",
            "broker.port": port,
            "broker.protocol": "mqtts",
            "broker.mqttVersion": "5.0",
            "plugin.name": "KeeperPrivilegeManager",
            "plugin.enabled": true,
            "agent.source": "kepm-devagent",
        })
        .to_string()
    };
    match shared.mode() {
        SettingsMode::Ok => (200, "application/json", ok(shared.broker_port.into())),
        SettingsMode::Delay(d) => {
            std::thread::sleep(d);
            (200, "application/json", ok(shared.broker_port.into()))
        }
        SettingsMode::PortAsString => (
            200,
            "application/json",
            ok(shared.broker_port.to_string().into()),
        ),
        SettingsMode::WrongPort => (200, "application/json", ok(shared.wrong_port.into())),
        SettingsMode::MissingKeys => (200, "application/json", "{}".to_string()),
        SettingsMode::Garbage => (200, "text/html", "<html>not json</html>".to_string()),
        SettingsMode::Status(code) => (
            code,
            "application/json",
            serde_json::json!({
                "error": reason(code),
                "detail": "kepm-devagent is answering with this status on purpose (settings mode)",
            })
            .to_string(),
        ),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn respond(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    status: u16,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    tls.conn.send_close_notify();
    tls.flush()
}
