//! What the broker sends a publisher, decoded: CONNACK, PUBACK, PINGRESP and DISCONNECT, with
//! rumqttc's `v5::mqttbytes`. Apart from the connection (`session.rs` feeds it what it reads),
//! so that the `mqtt_incoming` fuzz target (fuzz/, through `kepmlog::__fuzz`) runs the
//! session's own read path.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::v5::{ConnAck, ConnectReturnCode, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::Error as CodecError;

use crate::session_error::SessionError;

/// Largest packet the session accepts from the broker (it only expects acks, pings and a
/// DISCONNECT with a reason string).
pub(crate) const MAX_INCOMING: u32 = 64 * 1024;

/// What the broker granted in CONNACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Publishes the broker takes unacknowledged at once (MQTT default 65,535).
    pub receive_maximum: u16,
    /// Largest packet the broker accepts, if it said.
    pub max_packet_size: Option<u32>,
    /// Keep alive in force (the broker's Server Keep Alive when it sent one); zero: none.
    pub keep_alive: Duration,
}

/// What the broker sent that the worker acts on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    PubAck { pkid: u16, code: u8 },
    Disconnect { code: u8, reason: Option<String> },
}

/// The first packet after CONNECT must be CONNACK; takes it from `rbuf` once enough bytes are
/// there (`None`: wait for more).
pub(crate) fn read_connack(rbuf: &mut BytesMut) -> Result<Option<ConnAck>, SessionError> {
    if rbuf.is_empty() {
        return Ok(None);
    }
    match Packet::read(rbuf, Some(MAX_INCOMING)) {
        Ok(Packet::ConnAck(ack)) => Ok(Some(ack)),
        Ok(Packet::Disconnect(d)) => Err(SessionError::Refused {
            code: d.reason_code as u8,
            reason: d.properties.and_then(|p| p.reason_string),
        }),
        Ok(other) => Err(SessionError::Protocol(format!(
            "expected CONNACK, got {other:?}"
        ))),
        Err(CodecError::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(SessionError::Protocol(format!("reading CONNACK: {e}"))),
    }
}

/// What a CONNACK grants: its refusal, or the limits the session then honours.
pub(crate) fn limits_from_connack(
    ack: ConnAck,
    keep_alive: Duration,
) -> Result<Limits, SessionError> {
    let code = connack_code(ack.code);
    let props = ack.properties;
    if code != 0 {
        return Err(SessionError::Refused {
            code,
            reason: props.and_then(|p| p.reason_string),
        });
    }
    let (receive_max, max_packet_size, server_keep_alive) = props
        .map(|p| (p.receive_max, p.max_packet_size, p.server_keep_alive))
        .unwrap_or((None, None, None));
    Ok(Limits {
        receive_maximum: match receive_max {
            Some(0) | None => u16::MAX,
            Some(n) => n,
        },
        max_packet_size,
        keep_alive: server_keep_alive
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(keep_alive),
    })
}

/// Takes every complete packet after the CONNACK from `rbuf` into `out`; true when a PINGRESP
/// was among them.
pub(crate) fn parse_incoming(
    rbuf: &mut BytesMut,
    out: &mut Vec<Incoming>,
) -> Result<bool, SessionError> {
    let mut pingresp = false;
    loop {
        if rbuf.is_empty() {
            return Ok(pingresp);
        }
        match Packet::read(rbuf, Some(MAX_INCOMING)) {
            Ok(Packet::PubAck(ack)) => out.push(Incoming::PubAck {
                pkid: ack.pkid,
                code: puback_code(ack.reason),
            }),
            Ok(Packet::PingResp(_)) => pingresp = true,
            Ok(Packet::Disconnect(d)) => out.push(Incoming::Disconnect {
                code: d.reason_code as u8,
                reason: d.properties.and_then(|p| p.reason_string),
            }),
            Ok(other) => {
                return Err(SessionError::Protocol(format!(
                    "unexpected packet from the broker: {other:?}"
                )))
            }
            Err(CodecError::InsufficientBytes(_)) => return Ok(pingresp),
            Err(e) => return Err(SessionError::Protocol(format!("reading a packet: {e}"))),
        }
    }
}

fn puback_code(reason: PubAckReason) -> u8 {
    match reason {
        PubAckReason::Success => 0x00,
        PubAckReason::NoMatchingSubscribers => 0x10,
        PubAckReason::UnspecifiedError => 0x80,
        PubAckReason::ImplementationSpecificError => 0x83,
        PubAckReason::NotAuthorized => 0x87,
        PubAckReason::TopicNameInvalid => 0x90,
        PubAckReason::PacketIdentifierInUse => 0x91,
        PubAckReason::QuotaExceeded => 0x97,
        PubAckReason::PayloadFormatInvalid => 0x99,
    }
}

/// MQTT v5 CONNACK reason codes (the codec folds v3 and v5 codes into one enum).
fn connack_code(code: ConnectReturnCode) -> u8 {
    use ConnectReturnCode as C;
    match code {
        C::Success => 0x00,
        C::RefusedProtocolVersion => 0x01,
        C::BadClientId => 0x02,
        C::ServiceUnavailable => 0x03,
        C::UnspecifiedError => 0x80,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::UnsupportedProtocolVersion => 0x84,
        C::ClientIdentifierNotValid => 0x85,
        C::BadUserNamePassword => 0x86,
        C::NotAuthorized => 0x87,
        C::ServerUnavailable => 0x88,
        C::ServerBusy => 0x89,
        C::Banned => 0x8A,
        C::BadAuthenticationMethod => 0x8C,
        C::TopicNameInvalid => 0x90,
        C::PacketTooLarge => 0x95,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
        C::RetainNotSupported => 0x9A,
        C::QoSNotSupported => 0x9B,
        C::UseAnotherServer => 0x9C,
        C::ServerMoved => 0x9D,
        C::ConnectionRateExceeded => 0x9F,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_waits_for_split_packets_and_refuses_oversized_ones() {
        let mut rbuf = BytesMut::from(&[0x20u8, 0x03, 0x00][..]);
        assert!(matches!(read_connack(&mut rbuf), Ok(None)));
        rbuf.extend_from_slice(&[0x00, 0x00]);
        let ack = read_connack(&mut rbuf).unwrap().unwrap();
        let limits = limits_from_connack(ack, Duration::from_secs(30)).unwrap();
        assert_eq!(limits.receive_maximum, u16::MAX);
        assert_eq!(limits.keep_alive, Duration::from_secs(30));

        // A PUBACK in two reads, a PINGRESP, a denial.
        let mut out = Vec::new();
        rbuf.extend_from_slice(&[0x40, 0x02, 0x00]);
        assert!(!parse_incoming(&mut rbuf, &mut out).unwrap());
        assert!(out.is_empty());
        rbuf.extend_from_slice(&[0x07, 0xd0, 0x00, 0x40, 0x03, 0x00, 0x08, 0x87]);
        assert!(parse_incoming(&mut rbuf, &mut out).unwrap());
        assert_eq!(
            out,
            [
                Incoming::PubAck { pkid: 7, code: 0 },
                Incoming::PubAck {
                    pkid: 8,
                    code: 0x87
                }
            ]
        );
        assert!(rbuf.is_empty());

        // A header announcing more than MAX_INCOMING is an error at once, not a wait for it.
        rbuf.extend_from_slice(&[0x40, 0xff, 0xff, 0xff, 0x7f]);
        let e = parse_incoming(&mut rbuf, &mut out).unwrap_err();
        assert!(matches!(e, SessionError::Protocol(_)), "{e}");
    }

    #[test]
    fn connack_codes_are_the_v5_values() {
        assert_eq!(connack_code(ConnectReturnCode::Success), 0);
        assert_eq!(connack_code(ConnectReturnCode::NotAuthorized), 0x87);
        assert_eq!(connack_code(ConnectReturnCode::Banned), 0x8A);
        assert_eq!(puback_code(PubAckReason::NoMatchingSubscribers), 0x10);
    }
}
