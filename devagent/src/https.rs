//! The agent's Plugin Settings endpoint over HTTPS: just enough HTTP/1.1 for one GET per
//! connection.
//!
//! Kept hand-written over rustls on purpose. Its job is to answer wrongly on demand (403,
//! 500, any status, a body that is not JSON, missing keys, wrong types, the port as a string,
//! a wrong port, a delay long enough to trip client timeouts, no answer at all, plain HTTP, a
//! certificate for another host), and a library makes the broken
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
use crate::tls::ServerTls;
use crate::trust::Registry;

/// Where a job falls back to when Plugin Settings discovery fails (see docs/kepm-contract.md).
pub const FALLBACK_BROKER: &str = "127.0.0.1:8675";
/// The path a job task calls (matched case-insensitively, like ASP.NET routing).
pub const SETTINGS_PATH: &str = "/api/PluginSettings/KeeperPrivilegeManager";
const MAX_HEAD: usize = 16 * 1024;
/// The broker host of [`SettingsMode::NonLoopbackBroker`] (`.invalid` never resolves).
pub const NON_LOOPBACK_BROKER: &str = "broker.example.invalid";

pub(crate) struct SettingsShared {
    pub mode: Mutex<SettingsMode>,
    pub requests: AtomicUsize,
    pub answers: AtomicUsize,
    pub broker_port: u16,
    pub wrong_port: u16,
    /// Plugin Settings is a Plugin-tier endpoint: only trusted processes read it.
    pub registry: Arc<Registry>,
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
        tls: ServerTls,
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
            .spawn(move || accept_loop(listener, Arc::new(tls), shared, stop2))
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
    tls: Arc<ServerTls>,
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
    tls: Arc<ServerTls>,
    shared: &SettingsShared,
) -> std::io::Result<()> {
    let mode = shared.mode();
    if mode == SettingsMode::Hang {
        return hang(stream);
    }
    let (peer, local) = (stream.peer_addr()?, stream.local_addr()?);
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    if mode == SettingsMode::Plaintext {
        return answer_in_plaintext(stream, shared);
    }
    let config = match mode {
        SettingsMode::OtherCaCert => Arc::clone(&tls.other_ca),
        _ => Arc::clone(&tls.own),
    };
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
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
    if let Err(refused) = shared.registry.admit_request(peer, local) {
        let body = serde_json::json!({
            "error": "Forbidden",
            "detail": refused.detail,
            "fix": refused.fix,
        })
        .to_string();
        respond(&mut tls, 403, "application/json", body.as_bytes())?;
        shared.answers.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    let (status, ctype, body) = settings_response(shared, mode);
    respond(&mut tls, status, ctype, body.as_bytes())?;
    shared.answers.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Holds the connection without a byte in return until the client closes it (or a minute
/// passes, so a forgotten client cannot keep the thread forever).
fn hang(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf)? > 0 {}
    Ok(())
}

/// Whatever the client sent (a TLS ClientHello, from any client that does TLS), the answer
/// is the `Ok` settings in plain HTTP.
fn answer_in_plaintext(mut stream: TcpStream, shared: &SettingsShared) -> std::io::Result<()> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mut buf = [0u8; 4096];
    if stream.read(&mut buf)? == 0 {
        return Ok(());
    }
    let (status, ctype, body) = settings_response(shared, SettingsMode::Ok);
    stream.write_all(response_head(status, ctype, body.len()).as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    shared.answers.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn settings_response(shared: &SettingsShared, mode: SettingsMode) -> (u16, &'static str, String) {
    let answer = |host: serde_json::Value, port: serde_json::Value| {
        // The two keys the vendor documents, and nothing invented beside them.
        serde_json::json!({
            "broker.host": host,
            "broker.port": port,
        })
        .to_string()
    };
    let ok = |port: serde_json::Value| answer("127.0.0.1".into(), port);
    match mode {
        SettingsMode::Ok
        | SettingsMode::Hang
        | SettingsMode::Plaintext
        | SettingsMode::OtherCaCert => (200, "application/json", ok(shared.broker_port.into())),
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
        SettingsMode::WrongTypes => (200, "application/json", answer(127001.into(), true.into())),
        SettingsMode::PortOutOfRange => (200, "application/json", ok(70000.into())),
        SettingsMode::NonLoopbackBroker => (
            200,
            "application/json",
            answer(NON_LOOPBACK_BROKER.into(), shared.broker_port.into()),
        ),
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

fn response_head(status: u16, ctype: &str, len: usize) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        reason(status),
    )
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
    tls.write_all(response_head(status, ctype, body.len()).as_bytes())?;
    tls.write_all(body)?;
    tls.conn.send_close_notify();
    tls.flush()
}
