//! [`ResetProxy`]: a loopback TCP proxy in front of the broker whose open connections can be
//! torn down at once with a TCP RST on both sides, for fault tests ("the connection was reset
//! mid-stream").
//!
//! Hand-written because no crate does this: general-purpose proxies (and toxiproxy-like
//! tools) close with FIN or add latency; what a fault test needs is an abortive close
//! (`SO_LINGER` 0) of every open connection at a moment the test picks, on the client's side
//! and on the broker's side, and a count of what happened. Bytes pass through unchanged (TLS
//! end to end: the proxy sees only ciphertext).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

use crate::error::Error;

/// How long [`ResetProxy::reset_all`] waits for the connections to confirm their reset.
const RESET_CONFIRM: Duration = Duration::from_secs(5);
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A kill switch of one open connection: the task resets both sockets, then drops the
/// confirmation sender it was given.
type Switch = oneshot::Sender<mpsc::Sender<()>>;

#[derive(Default)]
struct Shared {
    connections: AtomicU64,
    resets: AtomicU64,
    refused: AtomicU64,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Switch>>,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Switch>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP proxy on `127.0.0.1:<port>` forwarding every connection to `127.0.0.1:<upstream>`.
///
/// Its own thread runs a current-thread tokio runtime; dropping it (or [`ResetProxy::stop`])
/// closes the listener and every open connection.
pub struct ResetProxy {
    port: u16,
    upstream: u16,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl ResetProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream_port`. A client
    /// that connects while nothing listens upstream is reset at once (counted in
    /// [`ResetProxy::refused`]), as a refused connection would be.
    pub fn start(upstream_port: u16) -> Result<ResetProxy, Error> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Error::io("binding the reset proxy on 127.0.0.1", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("reading the reset proxy's address", e))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("making the reset proxy's listener non-blocking", e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("building the reset proxy's tokio runtime", e))?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(Notify::new());
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("kepm-devagent-proxy".into())
                .spawn(move || rt.block_on(accept_loop(listener, upstream_port, shared, stop)))
                .map_err(|e| Error::io("spawning the reset proxy thread", e))?
        };
        Ok(ResetProxy {
            port,
            upstream: upstream_port,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port it forwards to (on 127.0.0.1).
    pub fn upstream_port(&self) -> u16 {
        self.upstream
    }

    /// Resets every open connection now: `SO_LINGER` 0 and close, on the client's socket and
    /// on the upstream one, so both peers get an RST (unsent data is discarded). Returns how
    /// many connections were reset, once each has been (or after 5 s).
    pub fn reset_all(&self) -> usize {
        let switches: Vec<Switch> = self.shared.open().drain().map(|(_, s)| s).collect();
        let (confirm, confirmed) = mpsc::channel();
        for s in switches {
            // A connection that ended by itself meanwhile has dropped its receiver.
            let _ = s.send(confirm.clone());
        }
        drop(confirm);
        let mut n = 0;
        while confirmed.recv_timeout(RESET_CONFIRM).is_ok() {
            n += 1;
        }
        n
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections reset by [`ResetProxy::reset_all`] so far.
    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::SeqCst)
    }

    /// Connections reset at once because the upstream port refused (or timed out).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open().len()
    }

    /// Stops listening and closes every open connection (normally, with FIN). Idempotent.
    pub fn stop(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ResetProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    upstream: u16,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kepm-devagent: reset proxy: cannot register its listener: {e}");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = stop.notified() => break,
            a = listener.accept() => a,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            // Out of file descriptors and the like: try again shortly rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let (switch, switched) = oneshot::channel();
        shared.open().insert(id, switch);
        tokio::spawn(forward(id, client, upstream, Arc::clone(&shared), switched));
    }
    // Returning drops the runtime, and with it every connection task and its sockets.
}

async fn forward(
    id: u64,
    mut client: TcpStream,
    upstream: u16,
    shared: Arc<Shared>,
    mut switched: oneshot::Receiver<mpsc::Sender<()>>,
) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, upstream));
    let connect = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(addr));
    let mut server = tokio::select! {
        c = connect => match c {
            Ok(Ok(s)) => s,
            _ => {
                shared.open().remove(&id);
                shared.refused.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_zero_linger();
                return;
            }
        },
        confirm = &mut switched => {
            let _ = client.set_zero_linger();
            drop(client);
            if let Ok(confirm) = confirm {
                shared.resets.fetch_add(1, Ordering::SeqCst);
                let _ = confirm.send(());
            }
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        // Either side closed or failed: close the other (dropping both here).
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {
            shared.open().remove(&id);
        }
        confirm = &mut switched => {
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
            drop(client);
            drop(server);
            if let Ok(confirm) = confirm {
                shared.resets.fetch_add(1, Ordering::SeqCst);
                let _ = confirm.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};

    #[test]
    fn forwards_bytes_and_resets_both_sides() {
        let upstream = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let up_port = upstream.local_addr().unwrap().port();
        let proxy = ResetProxy::start(up_port).unwrap();
        let mut c = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).unwrap();
        let (mut s, _) = upstream.accept().unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        s.write_all(b"pong").unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.open_connections(), 1);

        assert_eq!(proxy.reset_all(), 1);
        assert_eq!(proxy.resets(), 1);
        assert_eq!(proxy.open_connections(), 0);
        for side in [&mut c, &mut s] {
            side.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let e = side.read(&mut buf).expect_err("an RST, not EOF");
            assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        }
        // A second reset finds nothing open.
        assert_eq!(proxy.reset_all(), 0);
    }

    #[test]
    fn a_refused_upstream_resets_the_client() {
        let port = {
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let proxy = ResetProxy::start(port).unwrap();
        let mut c = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        let e = c.read(&mut buf).expect_err("an RST, not EOF");
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        assert_eq!(proxy.refused(), 1);
    }
}
