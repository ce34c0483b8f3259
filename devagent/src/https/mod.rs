//! The agent's local HTTPS API on one port: Plugin Settings (`settings`), the public
//! endpoints and, with the Jobs API on, the Job Management API (`jobs`).
//!
//! axum routes the requests and decodes their JSON bodies; hyper (through hyper-util) speaks
//! HTTP/1.1 on each TLS stream that tokio-rustls hands over. The accept loop stays ours:
//! three Plugin Settings fault modes act before or at TLS (`hang` never answers, not even the
//! handshake; `plaintext` answers in plain HTTP; `other-ca-cert` shakes hands with another
//! CA's certificate), so each connection's mode is picked before any library sees it. One
//! request per connection (no keep-alive): a mode switched between two requests must apply
//! to the second, also for clients that pool connections.

mod jobs;
mod settings;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::config::SettingsMode;
use crate::error::Error;
use crate::jobstore::JobsApi;
use crate::tls::ServerTls;

pub(crate) use settings::SettingsShared;
pub use settings::{FALLBACK_BROKER, NON_LOOPBACK_BROKER, SETTINGS_PATH};

/// How long a client may take over its TLS handshake and request head.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `hang` connection is held at most, so a forgotten client cannot keep it.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// What every request handler shares.
pub(crate) struct App {
    pub settings: Arc<SettingsShared>,
    pub tls: ServerTls,
    /// `None`: the Jobs API is off and its paths answer 404.
    pub jobs: Option<Arc<JobsApi>>,
}

/// The connection a request came on: who is behind it (process trust) and the client
/// certificate it presented (Admin tier).
#[derive(Clone)]
pub(crate) struct Conn {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub certs: Option<Vec<CertificateDer<'static>>>,
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) struct HttpsServer {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpsServer {
    pub fn start(listener: TcpListener, app: App) -> Result<HttpsServer, Error> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("making the HTTPS listener non-blocking", e))?;
        // Two workers: a `delay:MS` answer sleeps asynchronously, and nothing here blocks
        // for long (a trigger runs its job on a thread of its own).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kepm-devagent-https")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the HTTPS runtime", e))?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let router = router(Arc::new(app));
        let thread = std::thread::Builder::new()
            .name("kepm-devagent-https".into())
            .spawn(move || {
                rt.block_on(accept_loop(listener, router, stop_rx));
                // Connections still open (a `hang`, a slow client) are dropped here.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| Error::io("spawning the HTTPS accept thread", e))?;
        Ok(HttpsServer {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
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

fn router(app: Arc<App>) -> (Router, Arc<App>) {
    let mut r = Router::new().merge(jobs::public_routes());
    if app.jobs.is_some() {
        r = r.merge(jobs::job_routes());
    }
    let r = r.fallback(settings::fallback).with_state(Arc::clone(&app));
    (r, app)
}

async fn accept_loop(
    listener: TcpListener,
    (router, app): (Router, Arc<App>),
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kepm-devagent: the HTTPS listener cannot join the runtime: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, router.clone(), Arc::clone(&app)));
                }
                // EMFILE and friends: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, router: Router, app: Arc<App>) {
    let mode = app.settings.mode();
    if mode == SettingsMode::Hang {
        hang(stream).await;
        return;
    }
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    if mode == SettingsMode::Plaintext {
        answer_in_plaintext(stream, &app.settings).await;
        return;
    }
    let config = match mode {
        SettingsMode::OtherCaCert => Arc::clone(&app.tls.other_ca),
        _ => Arc::clone(&app.tls.own),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match tokio::time::timeout(IO_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        _ => return,
    };
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
    let service = TowerToHyperService::new(router.layer(Extension(Conn { peer, local, certs })));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IO_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Holds the connection without a byte in return until the client closes it.
async fn hang(mut stream: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(HANG_LIMIT, async {
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Whatever the client sent (a TLS ClientHello, from any client that does TLS), the answer
/// is the `Ok` settings in plain HTTP.
async fn answer_in_plaintext(mut stream: tokio::net::TcpStream, shared: &SettingsShared) {
    use std::sync::atomic::Ordering;
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let (status, ctype, body) = settings::settings_response(shared, &SettingsMode::Ok);
    let mut out = settings::response_head(status, ctype, body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    if stream.write_all(&out).await.is_ok() && stream.flush().await.is_ok() {
        shared.answers.fetch_add(1, Ordering::SeqCst);
    }
}
