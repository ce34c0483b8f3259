//! A publish-only MQTT v5 session over TLS, owned by the worker.
//!
//! rustls drives TLS directly over tokio's `TcpStream` rather than through a stream wrapper:
//! the session must read PUBACKs while a large batch is still being written, and it wants
//! every PUBLISH of a batch encrypted into as few TLS records and written with as few
//! syscalls as possible. With the connection in hand it does exactly that: publishes are
//! encoded into one plaintext buffer, handed to rustls at once, and written with vectored
//! writes as the socket accepts them; each read takes every TLS record available and yields
//! every PUBACK in them. rumqttc's `v5::mqttbytes` (with rumqttc's network features off)
//! encodes and decodes the packets.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, Connect, ConnectProperties, Disconnect, DisconnectReasonCode, Packet, PingReq, Publish,
};
use rumqttc::v5::mqttbytes::QoS;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::packets::{
    limits_from_connack, parse_incoming, read_connack, Incoming, Limits, MAX_INCOMING,
};
use crate::session_error::SessionError;

/// Encoded publishes wait in the plaintext buffer up to this size before rustls takes them;
/// more waits in the queue, so memory stays bounded while the socket is slow.
const WRITE_BUFFER: usize = 256 * 1024;

/// Why `drive` returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Packets were read (possibly none, e.g. after a PINGRESP).
    Read,
    /// The `wake` notification fired.
    Woken,
    /// The deadline passed.
    Deadline,
}

/// The publish is larger than the broker's Maximum Packet Size: it can never be sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge {
    pub size: usize,
    pub max: u32,
}

pub(crate) struct Session {
    sock: TcpStream,
    tls: ClientConnection,
    /// Decrypted bytes not yet parsed into packets.
    rbuf: BytesMut,
    /// Encoded packets not yet handed to rustls.
    wbuf: BytesMut,
    limits: Limits,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    /// CONNACK accepted: from now on `drive` parses what it reads.
    established: bool,
    /// The broker closed its side; what it sent before is still parsed (a refusing CONNACK
    /// usually arrives together with the close).
    peer_closed: bool,
    /// Bytes were read since the session last sent anything (which carries the ACK).
    ack_pending: bool,
}

/// `io::Read`/`io::Write` over a non-blocking tokio socket, for rustls: `WouldBlock` when the
/// socket is not ready (and tokio's readiness is cleared, so the next `readable()` waits).
struct Nonblocking<'a>(&'a TcpStream);

impl Read for Nonblocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Windows: turns the delayed ACK off for this socket (SIO_TCP_SET_ACK_FREQUENCY = 1: ACK
/// each segment). Its delayed-ACK timer is 200 ms, and the broker's Nagle waits for that ACK
/// before CONNACK (after a TLS 1.3 session ticket) and before the last PUBACKs of a flush.
/// Windows has nothing like Linux's one-shot TCP_QUICKACK, so this holds for the whole
/// connection: a publisher receives little (acks), and most of its ACKs ride on its own
/// segments anyway. Best effort: where the ioctl is refused (older Windows, Wine), the
/// session then works with the stall, as it did without this.
#[cfg(windows)]
fn acknowledge_every_segment(sock: &TcpStream) {
    let _ = socket2::SockRef::from(sock).set_tcp_ack_frequency(1);
}

/// Elsewhere the ACK is sent when it is needed ([`Session::ack_now`]), or not at all (macOS).
#[cfg(not(windows))]
fn acknowledge_every_segment(_sock: &TcpStream) {}

impl Session {
    /// TCP connect, TLS handshake, CONNECT (clean start) and CONNACK, all within `timeout`.
    pub async fn connect(
        host: &str,
        port: u16,
        tls: Arc<ClientConfig>,
        client_id: &str,
        keep_alive: Duration,
        timeout: Duration,
    ) -> Result<Session, SessionError> {
        match tokio::time::timeout(
            timeout,
            Self::connect_inner(host, port, tls, client_id, keep_alive),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SessionError::Timeout(
                "connecting (TCP, TLS, CONNECT/CONNACK)",
            )),
        }
    }

    async fn connect_inner(
        host: &str,
        port: u16,
        tls: Arc<ClientConfig>,
        client_id: &str,
        keep_alive: Duration,
    ) -> Result<Session, SessionError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let sock = TcpStream::connect((bare, port)).await?;
        // Acks and lone records must not wait for Nagle.
        sock.set_nodelay(true)?;
        acknowledge_every_segment(&sock);
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| SessionError::Protocol(format!("{host:?} is not a host name: {e}")))?;
        let mut conn = ClientConnection::new(tls, name)?;
        // The session bounds what it hands over itself (WRITE_BUFFER and the window).
        conn.set_buffer_limit(None);
        let mut s = Session {
            sock,
            tls: conn,
            rbuf: BytesMut::with_capacity(8 * 1024),
            wbuf: BytesMut::with_capacity(64 * 1024),
            limits: Limits {
                receive_maximum: u16::MAX,
                max_packet_size: None,
                keep_alive,
            },
            last_sent: Instant::now(),
            ping_sent: None,
            established: false,
            peer_closed: false,
            ack_pending: false,
        };
        s.handshake().await?;

        let mut props = ConnectProperties::new();
        props.max_packet_size = Some(MAX_INCOMING);
        let connect = Connect {
            keep_alive: u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX),
            client_id: client_id.to_string(),
            clean_start: true,
            properties: Some(props),
        };
        Packet::Connect(connect, None, None)
            .write(&mut s.wbuf, None)
            .map_err(|e| SessionError::Protocol(format!("encoding CONNECT: {e}")))?;
        let mut incoming = Vec::new();
        let connack = loop {
            s.drive(
                None,
                Instant::now() + Duration::from_secs(3600),
                &mut incoming,
            )
            .await?;
            if let Some(ack) = s.take_connack()? {
                break ack;
            }
        };
        s.accept_connack(connack, keep_alive)?;
        Ok(s)
    }

    async fn handshake(&mut self) -> Result<(), SessionError> {
        while self.tls.is_handshaking() {
            if self.tls.wants_write() {
                self.write_tls().await?;
                continue;
            }
            self.sock.readable().await?;
            self.read_tls()?;
            if self.peer_closed {
                return Err(SessionError::Closed);
            }
        }
        // The client's Finished may still be buffered.
        while self.tls.wants_write() {
            self.write_tls().await?;
        }
        Ok(())
    }

    /// The first packet after CONNECT must be CONNACK; reads it once enough bytes are there.
    fn take_connack(&mut self) -> Result<Option<ConnAck>, SessionError> {
        read_connack(&mut self.rbuf)
    }

    fn accept_connack(&mut self, ack: ConnAck, keep_alive: Duration) -> Result<(), SessionError> {
        self.limits = limits_from_connack(ack, keep_alive)?;
        self.established = true;
        Ok(())
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// True while the plaintext buffer takes more publishes.
    pub fn has_write_room(&self) -> bool {
        self.wbuf.len() < WRITE_BUFFER
    }

    /// Encodes one QoS 1 PUBLISH into the batch `drive` writes next.
    pub fn publish(&mut self, topic: &Bytes, pkid: u16, payload: &Bytes) -> Result<(), TooLarge> {
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.clone(),
            pkid,
            payload: payload.clone(),
            properties: None,
        };
        if let Some(max) = self.limits.max_packet_size {
            let size = publish.size();
            if size > max as usize {
                return Err(TooLarge { size, max });
            }
        }
        // Writing into a BytesMut cannot fail but for a payload beyond MQTT's 256 MB, which
        // the record and event size caps rule out.
        if publish.write(&mut self.wbuf).is_err() {
            return Err(TooLarge {
                size: publish.size(),
                max: u32::MAX,
            });
        }
        Ok(())
    }

    /// Writes what is buffered, then waits until the broker sends something (every packet
    /// available is appended to `out`), `wake` fires, or the deadline passes. Writing goes
    /// on while waiting, so a large batch never stops acks from being read.
    pub async fn drive(
        &mut self,
        wake: Option<&Notify>,
        deadline: Instant,
        out: &mut Vec<Incoming>,
    ) -> Result<Wake, SessionError> {
        loop {
            if self.peer_closed {
                return Err(SessionError::Closed);
            }
            if !self.wbuf.is_empty() && !self.tls.wants_write() {
                // rustls takes all of it (no buffer limit) and seals records of up to 16 KiB.
                // Only once it has written the previous batch: together with WRITE_BUFFER this
                // bounds what waits in memory while the socket is slow.
                self.tls.writer().write_all(&self.wbuf)?;
                self.wbuf.clear();
                self.last_sent = Instant::now();
            }
            if self.tls.wants_write() {
                match self.tls.write_tls(&mut Nonblocking(&self.sock)) {
                    Ok(_) => {
                        self.ack_pending = false;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let wants_write = self.tls.wants_write();
            if !wants_write && self.ack_pending {
                // About to wait with nothing to send: nothing would carry the ACK.
                self.ack_now();
            }
            tokio::select! {
                biased;
                r = self.sock.readable() => {
                    r?;
                    if self.read_tls()? {
                        if self.established {
                            self.parse(out)?;
                        }
                        return Ok(Wake::Read);
                    }
                }
                r = self.sock.writable(), if wants_write => { r?; }
                _ = notified(wake) => return Ok(Wake::Woken),
                _ = tokio::time::sleep_until(deadline) => return Ok(Wake::Deadline),
            }
        }
    }

    /// Reads every TLS record the socket has; true when TLS records arrived. `WouldBlock` with
    /// nothing read is `false`; so is the peer's close with nothing before it (`peer_closed`).
    fn read_tls(&mut self) -> Result<bool, SessionError> {
        let mut progressed = false;
        loop {
            if self.peer_closed {
                return Ok(progressed);
            }
            match self.tls.read_tls(&mut Nonblocking(&self.sock)) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(progressed);
                }
                Ok(_) => {
                    self.tls.process_new_packets()?;
                    self.drain_plaintext()?;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ack_pending |= progressed;
                    if progressed && !self.established {
                        self.ack_now();
                    }
                    return Ok(progressed);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Acknowledges what was just read at once instead of after the delayed-ACK timer.
    ///
    /// A broker with Nagle on (Mosquitto's default) holds a small packet back while an earlier
    /// one is unacknowledged. After a read the session often sends nothing (it waits for the
    /// next ack), so the ACK would wait for the timer, ~40 ms on Linux: TLS 1.3 session
    /// tickets (OpenSSL sends one more when it reads CONNECT) held CONNACK back that way on
    /// every connection. TCP_QUICKACK sends the pending ACK now; it is Linux's. Windows has no
    /// one-shot form: there the socket acknowledges every segment from the start
    /// ([`acknowledge_every_segment`]). macOS has neither (see ARCHITECTURE.md).
    fn ack_now(&mut self) {
        self.ack_pending = false;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let _ = socket2::SockRef::from(&self.sock).set_tcp_quickack(true);
        }
    }

    fn drain_plaintext(&mut self) -> Result<(), SessionError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.tls.reader().read(&mut chunk) {
                Ok(0) => {
                    // close_notify
                    self.peer_closed = true;
                    return Ok(());
                }
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Parses every complete packet after the CONNACK.
    fn parse(&mut self, out: &mut Vec<Incoming>) -> Result<(), SessionError> {
        if parse_incoming(&mut self.rbuf, out)? {
            self.ping_sent = None;
        }
        Ok(())
    }

    /// Keep alive: a PINGREQ after half the keep-alive interval without sending; an error
    /// when the broker leaves a PINGREQ unanswered for a whole interval. Returns when to call
    /// again at the latest.
    pub fn keep_alive(&mut self, now: Instant) -> Result<Option<Instant>, SessionError> {
        let interval = self.limits.keep_alive;
        if interval.is_zero() {
            return Ok(None);
        }
        if let Some(sent) = self.ping_sent {
            if now >= sent + interval {
                return Err(SessionError::Timeout("waiting for PINGRESP"));
            }
            return Ok(Some(sent + interval));
        }
        let due = self.last_sent + interval / 2;
        if now >= due {
            // Cannot fail: a fixed two-byte packet into a BytesMut.
            let _ = PingReq::write(&mut self.wbuf);
            self.ping_sent = Some(now);
            return Ok(Some(now + interval));
        }
        Ok(Some(due))
    }

    /// True when encoded packets wait to be written (the caller should `drive`).
    pub fn has_pending_writes(&self) -> bool {
        !self.wbuf.is_empty() || self.tls.wants_write()
    }

    /// DISCONNECT (normal), close_notify, and a bounded wait for it to be written.
    pub async fn disconnect(mut self, timeout: Duration) {
        let _ = Packet::Disconnect(Disconnect::new(DisconnectReasonCode::NormalDisconnection))
            .write(&mut self.wbuf, None);
        let _ = self.tls.writer().write_all(&self.wbuf);
        self.wbuf.clear();
        self.tls.send_close_notify();
        let deadline = Instant::now() + timeout;
        while self.tls.wants_write() && Instant::now() < deadline {
            match self.tls.write_tls(&mut Nonblocking(&self.sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = tokio::time::timeout_at(deadline, self.sock.writable()).await;
                }
                Err(_) => return,
            }
        }
    }

    async fn write_tls(&mut self) -> Result<(), SessionError> {
        loop {
            match self.tls.write_tls(&mut Nonblocking(&self.sock)) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.sock.writable().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

async fn notified(wake: Option<&Notify>) {
    match wake {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}
