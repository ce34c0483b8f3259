//! The broker's front door, where the agent is stricter than Mosquitto can be told to be.
//!
//! Jobs connect here over TLS (the agent's certificate); the gate reads the CONNECT, asks the
//! [`Registry`] whether the process behind the socket may connect with that client id, and
//! either answers CONNACK "Not authorized" itself or opens a plain connection to Mosquitto's
//! internal listener and relays the session both ways, frame by frame. With
//! [`Denial::Silent`] it also does what the agent does with a publish to an undeclared topic:
//! answers success and drops it, so no subscriber ever sees it, and records it.
//!
//! Why a relay and not Mosquitto alone: Mosquitto knows neither the process behind a socket
//! nor a way to deny a publish silently under MQTT v5 (its ACL always answers 0x87). Packets
//! are decoded with rumqttc's codec (both MQTT 3.1.1 and 5); only the framing (fixed header
//! and remaining length, to cut the byte stream at packet boundaries) is done here, since the
//! codec consumes what it decodes and the relay must forward the original bytes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;
use crate::topic;
use crate::trust::{Denial, Registry};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

/// The largest packet the relay accepts (MQTT's own limit: remaining length < 256 MiB).
const MAX_FRAME: usize = 268_435_455 + 5;

/// A publish the gate answered with success and dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct SilentDrop {
    pub at: SystemTime,
    pub client_id: String,
    pub topic: String,
}

/// What the gate shares with its owner.
pub(crate) struct GateShared {
    pub registry: Arc<Registry>,
    pub denial: Denial,
    /// The topics the job may publish to (MQTT filters).
    pub allow: Vec<String>,
    pub drops: Mutex<Vec<SilentDrop>>,
}

impl GateShared {
    fn allowed(&self, t: &str) -> bool {
        self.allow.iter().any(|f| topic::matches(f, t))
    }
}

pub(crate) struct Gate {
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Gate {
    /// Serves TLS on `listener` (already bound), relaying admitted clients to Mosquitto's
    /// plain listener on `upstream`.
    pub fn start(
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        upstream: u16,
        shared: Arc<GateShared>,
    ) -> Result<Gate, Error> {
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("reading the gate's address", e))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("setting the gate's listener non-blocking", e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the gate's runtime", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("kepm-devagent-gate".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    let acceptor = TlsAcceptor::from(tls);
                    while !stop2.load(Ordering::SeqCst) {
                        let Ok((tcp, peer)) = listener.accept().await else {
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        };
                        if stop2.load(Ordering::SeqCst) {
                            break;
                        }
                        let (acceptor, shared) = (acceptor.clone(), Arc::clone(&shared));
                        tokio::spawn(async move {
                            let _ = serve(tcp, peer, acceptor, upstream, shared).await;
                        });
                    }
                });
            })
            .map_err(|e| Error::io("spawning the gate thread", e))?;
        Ok(Gate {
            stop,
            port,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop notices the flag with the next connection.
        let _ = std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The length of the first complete MQTT packet in `buf`, if there is one.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let total = 1 + i + 1 + len;
            return Ok((buf.len() >= total).then_some(total));
        }
    }
    Err("malformed remaining length".into())
}

/// Reads from `r` until `buf` holds at least one whole packet. `Ok(false)` at end of stream.
async fn fill<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
) -> Result<bool, String> {
    loop {
        if frame_len(buf)?.is_some() {
            return Ok(true);
        }
        if buf.len() > MAX_FRAME {
            return Err("packet larger than MQTT allows".into());
        }
        buf.reserve(16 * 1024);
        match r.read_buf(buf).await {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The length of a packet's fixed header: the type byte and the remaining length's 1-4 bytes.
fn fixed_header_len(frame: &[u8]) -> Option<usize> {
    (1..5)
        .find(|&i| frame.get(i).is_some_and(|b| b & 0x80 == 0))
        .map(|i| i + 1)
}

/// The protocol level byte of a CONNECT packet (4: MQTT 3.1.1, 5: MQTT 5).
fn protocol_level(frame: &[u8]) -> Option<u8> {
    let header = fixed_header_len(frame)?;
    let name_len = usize::from(u16::from_be_bytes([
        *frame.get(header)?,
        *frame.get(header + 1)?,
    ]));
    frame.get(header + 2 + name_len).copied()
}

async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    upstream: u16,
    shared: Arc<GateShared>,
) -> Result<(), String> {
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
    let (mut client_rx, mut client_tx) = tokio::io::split(tls);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    if !fill(&mut client_rx, &mut buf).await? {
        return Ok(());
    }
    let n = frame_len(&buf)?.ok_or("incomplete CONNECT")?;
    let connect = buf.split_to(n);
    if connect.first().map(|b| b >> 4) != Some(1) {
        return Err("the first packet is not CONNECT".into());
    }
    let v5 = protocol_level(&connect) == Some(5);
    let client_id = if v5 {
        match v5::Packet::read(&mut connect.clone(), None) {
            Ok(v5::Packet::Connect(c, _, _)) => c.client_id,
            _ => return Err("undecodable CONNECT".into()),
        }
    } else {
        match v4::Packet::read(&mut connect.clone(), MAX_FRAME) {
            Ok(v4::Packet::Connect(c)) => c.client_id,
            _ => return Err("undecodable CONNECT".into()),
        }
    };
    let admitted = {
        let (registry, id) = (Arc::clone(&shared.registry), client_id.clone());
        // Walking /proc is blocking file I/O.
        tokio::task::spawn_blocking(move || registry.admit_client(peer, local, &id))
            .await
            .map_err(|e| e.to_string())?
    };
    if admitted.is_err() {
        let mut out = BytesMut::new();
        let written = if v5 {
            v5::ConnAck {
                session_present: false,
                code: v5::ConnectReturnCode::NotAuthorized,
                properties: None,
            }
            .write(&mut out)
            .map_err(|e| format!("{e:?}"))
        } else {
            v4::ConnAck::new(v4::ConnectReturnCode::NotAuthorized, false)
                .write(&mut out)
                .map_err(|e| format!("{e:?}"))
        };
        written?;
        client_tx.write_all(&out).await.map_err(|e| e.to_string())?;
        let _ = client_tx.shutdown().await;
        return Ok(());
    }
    let broker = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], upstream)))
        .await
        .map_err(|e| format!("the broker is not reachable: {e}"))?;
    let _ = broker.set_nodelay(true);
    let (mut broker_rx, mut broker_tx) = broker.into_split();
    broker_tx
        .write_all(&connect)
        .await
        .map_err(|e| e.to_string())?;

    // One writer owns the client side: the broker's packets and the gate's own answers
    // (to silently dropped publishes) must not interleave inside a packet.
    let (to_client, mut from_relay) = mpsc::channel::<BytesMut>(64);
    let writer = async move {
        while let Some(chunk) = from_relay.recv().await {
            if client_tx.write_all(&chunk).await.is_err() || client_tx.flush().await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    let to_client2 = to_client.clone();
    let downstream = async move {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            match fill(&mut broker_rx, &mut buf).await {
                Ok(true) => {}
                _ => break,
            }
            let mut whole = 0;
            while let Ok(Some(n)) = frame_len(&buf[whole..]) {
                whole += n;
            }
            if to_client2.send(buf.split_to(whole)).await.is_err() {
                break;
            }
        }
    };
    let upstream_relay = async move {
        let mut filter = Filter {
            v5,
            client_id,
            aliases: HashMap::new(),
            dropped_qos2: HashSet::new(),
        };
        let mut out = BytesMut::with_capacity(16 * 1024);
        loop {
            match fill(&mut client_rx, &mut buf).await {
                Ok(true) => {}
                _ => break,
            }
            let mut answers = BytesMut::new();
            while let Ok(Some(n)) = frame_len(&buf) {
                let frame = buf.split_to(n);
                if shared.denial == Denial::Silent {
                    if let Some(answer) = filter.inspect(&frame, &shared) {
                        answers.extend_from_slice(&answer);
                        continue;
                    }
                }
                out.extend_from_slice(&frame);
            }
            if !out.is_empty() {
                if broker_tx.write_all(&out).await.is_err() {
                    break;
                }
                out.clear();
            }
            if !answers.is_empty() && to_client.send(answers).await.is_err() {
                break;
            }
        }
        let _ = broker_tx.shutdown().await;
    };
    // Whichever side ends first ends the session, as a broker's disconnect would; the writer
    // then drains what the broker sent last (a DISCONNECT, say) and closes the TLS session,
    // since ending the relay drops both senders.
    let relay = async move {
        tokio::select! {
            _ = downstream => {}
            _ = upstream_relay => {}
        }
    };
    tokio::join!(relay, writer);
    Ok(())
}

/// Per connection: what the silent denial needs to remember.
struct Filter {
    v5: bool,
    client_id: String,
    /// MQTT 5 topic aliases the client set up (alias -> topic).
    aliases: HashMap<u16, String>,
    /// QoS 2 publishes answered PUBREC by the gate: their PUBREL is the gate's to answer.
    dropped_qos2: HashSet<u16>,
}

impl Filter {
    /// `Some(answer)` when the gate handles `frame` itself (a publish to an undeclared topic,
    /// or the PUBREL of one); `None` to forward it.
    fn inspect(&mut self, frame: &[u8], shared: &GateShared) -> Option<BytesMut> {
        let kind = frame.first()? >> 4;
        if kind == 6 {
            // PUBREL: answer those of dropped QoS 2 publishes (the broker never saw them).
            let pkid = frame_pkid(frame)?;
            if !self.dropped_qos2.remove(&pkid) {
                return None;
            }
            let mut out = BytesMut::new();
            let ok = if self.v5 {
                v5::PubComp::new(pkid, None).write(&mut out).is_ok()
            } else {
                v4::PubComp::new(pkid).write(&mut out).is_ok()
            };
            return ok.then_some(out);
        }
        if kind != 3 {
            return None;
        }
        let (topic, qos, pkid) = if self.v5 {
            let Ok(v5::Packet::Publish(p)) = v5::Packet::read(&mut BytesMut::from(frame), None)
            else {
                return None;
            };
            let named = String::from_utf8_lossy(&p.topic).into_owned();
            let alias = p.properties.as_ref().and_then(|pr| pr.topic_alias);
            let topic = match (named.is_empty(), alias) {
                (false, Some(a)) => {
                    self.aliases.insert(a, named.clone());
                    named
                }
                (true, Some(a)) => self.aliases.get(&a).cloned()?,
                _ => named,
            };
            (topic, p.qos as u8, p.pkid)
        } else {
            let Ok(v4::Packet::Publish(p)) =
                v4::Packet::read(&mut BytesMut::from(frame), MAX_FRAME)
            else {
                return None;
            };
            (p.topic, p.qos as u8, p.pkid)
        };
        if shared.allowed(&topic) {
            return None;
        }
        shared
            .drops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SilentDrop {
                at: SystemTime::now(),
                client_id: self.client_id.clone(),
                topic,
            });
        let mut out = BytesMut::new();
        let ok = match (qos, self.v5) {
            (0, _) => true,
            (1, true) => v5::PubAck::new(pkid, None).write(&mut out).is_ok(),
            (1, false) => v4::PubAck::new(pkid).write(&mut out).is_ok(),
            (_, true) => {
                self.dropped_qos2.insert(pkid);
                v5::PubRec::new(pkid, None).write(&mut out).is_ok()
            }
            (_, false) => {
                self.dropped_qos2.insert(pkid);
                v4::PubRec::new(pkid).write(&mut out).is_ok()
            }
        };
        ok.then_some(out)
    }
}

/// The packet id right after the fixed header (PUBACK, PUBREC, PUBREL, PUBCOMP).
fn frame_pkid(frame: &[u8]) -> Option<u16> {
    let header = fixed_header_len(frame)?;
    let mut b = frame.get(header..header + 2)?;
    Some(b.get_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_their_remaining_length() {
        assert_eq!(frame_len(&[0x30]), Ok(None));
        assert_eq!(frame_len(&[0x30, 2, 0, 0]), Ok(Some(4)));
        assert_eq!(frame_len(&[0x30, 2, 0]), Ok(None));
        assert_eq!(frame_len(&[0x30, 0x80, 0x01]), Ok(None));
        let mut long = vec![0x30, 0x80, 0x01];
        long.resize(3 + 128, 0);
        assert_eq!(frame_len(&long), Ok(Some(131)));
        assert!(frame_len(&[0x30, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(frame_pkid(&[0x62, 2, 0x12, 0x34]), Some(0x1234));
    }

    #[test]
    fn connect_levels_are_read() {
        let mut b = BytesMut::new();
        let c = v5::Connect {
            keep_alive: 10,
            client_id: "job_T_1".into(),
            clean_start: true,
            properties: None,
        };
        v5::Packet::Connect(c, None, None)
            .write(&mut b, None)
            .expect("encode");
        assert_eq!(protocol_level(&b), Some(5));
        let mut b4 = BytesMut::new();
        v4::Connect::new("job_T_1").write(&mut b4).expect("encode");
        assert_eq!(protocol_level(&b4), Some(4));
    }
}
