//! `kepmlog doctor`'s subscribing MQTT v5 connection: CONNECT, SUBSCRIBE, and a PUBACK for
//! every QoS 1 publish routed back, on one blocking TLS socket.
//!
//! Hand-written over rumqttc's v5 codec and rustls, as the core's session is, because
//! rumqttc's own client needs its TLS feature, which brings rustls-native-certs and with it
//! Apple's Security framework on macOS: the CLI must link for macOS without it (zig's SDK
//! stubs lack the framework), and the doctor needs no more than these few packets in order.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::v5::{Connect, Filter, Packet, PubAck, Subscribe};
use rumqttc::v5::mqttbytes::{Error as CodecError, QoS};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// Largest packet taken from the broker: a routed-back test record or event is far smaller.
const MAX_INCOMING: u32 = 1024 * 1024;

pub struct Connection {
    stream: StreamOwned<ClientConnection, TcpStream>,
    rbuf: BytesMut,
    next_pkid: u16,
}

impl Connection {
    /// Opens TLS to `host:port` and sends CONNECT (clean start); the CONNACK is read by
    /// [`Connection::next`] like any other packet.
    pub fn open(
        host: &str,
        port: u16,
        tls: Arc<ClientConfig>,
        client_id: &str,
        keep_alive: Duration,
        timeout: Duration,
    ) -> Result<Connection, String> {
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
        // Nagle would hold the small CONNECT and SUBSCRIBE packets back.
        let _ = tcp.set_nodelay(true);
        // The TLS handshake runs inside the first write: a listener that never answers it
        // must fail the check within the timeout, not hang the task.
        tcp.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|e| format!("setting a read timeout: {e}"))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
        let tls = ClientConnection::new(tls, name).map_err(|e| format!("TLS setup: {e}"))?;
        let mut c = Connection {
            stream: StreamOwned::new(tls, tcp),
            rbuf: BytesMut::with_capacity(4096),
            next_pkid: 1,
        };
        let connect = Connect {
            keep_alive: u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX),
            client_id: client_id.to_string(),
            clean_start: true,
            properties: None,
        };
        c.send(&Packet::Connect(connect, None, None), timeout)?;
        Ok(c)
    }

    /// Sends SUBSCRIBE for one filter at QoS 1; its SUBACK comes through `next`.
    pub fn subscribe(&mut self, filter: &str, timeout: Duration) -> Result<(), String> {
        let mut sub = Subscribe::new(Filter::new(filter, QoS::AtLeastOnce), None);
        sub.pkid = self.next_pkid;
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        self.send(&Packet::Subscribe(sub), timeout)
    }

    /// The next packet from the broker, or `None` once `end` passes. A QoS 1 publish is
    /// acknowledged before it is returned, so the broker does not send it again.
    pub fn next(&mut self, end: Instant) -> Result<Option<Packet>, String> {
        loop {
            match Packet::read(&mut self.rbuf, Some(MAX_INCOMING)) {
                Ok(Packet::Publish(p)) => {
                    if p.qos == QoS::AtLeastOnce {
                        let ack = Packet::PubAck(PubAck::new(p.pkid, None));
                        self.send(&ack, end.saturating_duration_since(Instant::now()))?;
                    }
                    return Ok(Some(Packet::Publish(p)));
                }
                Ok(packet) => return Ok(Some(packet)),
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(e) => return Err(format!("reading from the broker: {e}")),
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Zero would mean "block forever" to set_read_timeout.
            let _ = self
                .stream
                .sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the broker closed the connection".into()),
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading from the broker: {e}")),
            }
        }
    }

    fn send(&mut self, packet: &Packet, timeout: Duration) -> Result<(), String> {
        let mut wbuf = BytesMut::new();
        packet
            .write(&mut wbuf, None)
            .map_err(|e| format!("encoding {packet:?}: {e}"))?;
        let _ = self
            .stream
            .sock
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))));
        self.stream
            .write_all(&wbuf)
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("writing to the broker: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_that_never_answers_the_handshake_fails_within_the_timeout() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        // In a thread, so that a regression hangs one thread, not the test run: 60 s is a
        // guard against hanging, 200 times the timeout given, not a speed check.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = Connection::open(
                "127.0.0.1",
                port,
                Arc::new(tls),
                "job_doctor_1",
                Duration::from_secs(30),
                Duration::from_millis(300),
            );
            let _ = tx.send(r.err());
        });
        let e = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("Connection::open hangs on a listener that never answers the handshake")
            .expect("connected to a listener that never answered");
        assert!(e.contains("writing to the broker"), "{e}");
        drop(silent);
    }
}
