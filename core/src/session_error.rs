//! How a broker connection ends, as the worker reports it (its `last_error`, the operator's
//! warnings), and the names of the MQTT v5 reason codes in those texts.

use std::fmt;
use std::io;

#[derive(Debug)]
pub(crate) enum SessionError {
    /// TCP connect, read or write failed.
    Io(io::Error),
    Tls(rustls::Error),
    /// CONNACK with a failure reason code.
    Refused {
        code: u8,
        reason: Option<String>,
    },
    /// The broker broke the protocol (or sent what this session cannot read).
    Protocol(String),
    /// The peer closed the connection.
    Closed,
    Timeout(&'static str),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "{e}"),
            SessionError::Tls(e) => write!(f, "TLS: {e}"),
            SessionError::Refused { code, reason } => {
                write!(
                    f,
                    "the broker refused the connection: CONNACK 0x{code:02x} {}",
                    reason_name(*code)
                )?;
                if let Some(r) = reason {
                    write!(f, " ({r})")?;
                }
                if *code == 0x87 || *code == 0x85 {
                    write!(
                        f,
                        "; the agent lets only the processes it started connect, with a \
                         client id {{KEEPER_JOB_ID}}_{{token}}_{{pid}}"
                    )?;
                }
                Ok(())
            }
            SessionError::Protocol(m) => write!(f, "MQTT protocol error: {m}"),
            SessionError::Closed => write!(f, "the broker closed the connection"),
            SessionError::Timeout(what) => write!(f, "timed out {what}"),
        }
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(e)
    }
}

impl From<rustls::Error> for SessionError {
    fn from(e: rustls::Error) -> Self {
        SessionError::Tls(e)
    }
}

/// Names of the MQTT v5 reason codes a publisher can meet (CONNACK, PUBACK, DISCONNECT).
pub(crate) fn reason_name(code: u8) -> &'static str {
    match code {
        0x00 => "Success",
        0x10 => "No matching subscribers",
        0x80 => "Unspecified error",
        0x81 => "Malformed packet",
        0x82 => "Protocol error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported protocol version",
        0x85 => "Client identifier not valid",
        0x86 => "Bad user name or password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep alive timeout",
        0x8E => "Session taken over",
        0x90 => "Topic name invalid",
        0x91 => "Packet identifier in use",
        0x93 => "Receive maximum exceeded",
        0x95 => "Packet too large",
        0x97 => "Quota exceeded",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9F => "Connection rate exceeded",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_reason() {
        let e = SessionError::Refused {
            code: 0x87,
            reason: None,
        };
        let text = e.to_string();
        assert!(text.contains("0x87 Not authorized"), "{text}");
        assert!(text.contains("KEEPER_JOB_ID"), "{text}");
        let e = SessionError::Refused {
            code: 0x89,
            reason: Some("try later".into()),
        };
        assert!(e.to_string().contains("Server busy (try later)"));
    }
}
