//! What Mosquitto is told: mosquitto.conf, the ACL file and the capture user's password
//! file, and the checks on the topics that go into them.

use std::path::{Path, PathBuf};

use crate::capture::CAPTURE_CLIENT_ID;
use crate::config::Config;
use crate::error::Error;
use crate::tempdir::set_mode;
use crate::topic;

/// Effectively unlimited, so a slow capture subscriber never loses messages. Not 0
/// ("unlimited" per the docs): Mosquitto 2.0.11 compares its outgoing packet count with
/// this limit after answering a publish denied by the ACL, and with 0 it always disconnects
/// the publisher right after the PUBACK 0x87.
const MAX_QUEUED: u32 = 1_000_000_000;

/// An allowed topic becomes a line of the ACL file, so it must be one valid filter.
pub(crate) fn check_topic(t: &str) -> Result<(), Error> {
    if !topic::is_topic_filter(t) {
        return Err(Error::Invalid(format!(
            "allowed topic {t:?} is not a usable MQTT topic filter: empty, white space or \
             control characters, or a + or # that is not a whole level (# only last)"
        )));
    }
    Ok(())
}

/// Anonymous clients (the jobs) may publish only to the allowed topics; the capture user
/// may read everything.
pub(crate) fn acl_file(allow: &[String], allow_subscribe: &[String]) -> String {
    let mut acl: String = allow.iter().map(|t| format!("topic write {t}\n")).collect();
    // mqttTopics.allowedSubscriptions: what a job may read (the agent's rule; a task that
    // subscribes to its own topics can see whether the broker routed its publishes).
    acl.extend(allow_subscribe.iter().map(|t| format!("topic read {t}\n")));
    acl.push_str(&format!("\nuser {CAPTURE_CLIENT_ID}\ntopic read #\n"));
    acl
}

/// A throwaway password for the capture user, from the OS's CSPRNG.
pub(crate) fn random_password() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::Invalid(format!(
            "the OS random number generator failed while making the capture user's password: {e}"
        ))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What of mosquitto.conf a test can choose.
#[derive(Clone, Debug)]
pub(crate) struct BrokerKnobs {
    pub receive_maximum: Option<u16>,
    pub log_publishes: bool,
    pub max_packet_size: Option<u32>,
    pub refuse_job_clients: bool,
    /// The job listener speaks TLS itself. False when the devagent's gate terminates TLS in
    /// front of it: then it is a plain listener only the gate connects to.
    pub job_tls: bool,
}

impl BrokerKnobs {
    pub fn from_config(cfg: &Config) -> Self {
        BrokerKnobs {
            receive_maximum: cfg.receive_maximum,
            log_publishes: cfg.log_publishes,
            max_packet_size: cfg.max_packet_size,
            refuse_job_clients: cfg.refuse_job_clients,
            job_tls: !cfg.needs_gate(),
        }
    }
}

pub(crate) fn broker_conf(
    dir: &Path,
    job_port: u16,
    capture_port: u16,
    knobs: &BrokerKnobs,
) -> String {
    let d = dir.display();
    let mut c = format!(
        "# written by kepm-devagent\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         log_type notice\n\
         log_type information\n\
         connection_messages true\n\
         persistence true\n\
         persistence_location {d}/db/\n\
         autosave_interval 5\n\
         max_queued_messages {MAX_QUEUED}\n"
    );
    if let Some(n) = knobs.receive_maximum {
        c.push_str(&format!("max_inflight_messages {n}\n"));
    }
    if let Some(n) = knobs.max_packet_size {
        c.push_str(&format!("max_packet_size {n}\n"));
    }
    if knobs.refuse_job_clients {
        // Only the capture subscriber's client id has this prefix: every job client gets
        // CONNACK 0x87 while the capture keeps working.
        c.push_str(&format!("clientid_prefixes {CAPTURE_CLIENT_ID}\n"));
    }
    if knobs.log_publishes {
        // Mosquitto logs ACL denials ("Denied PUBLISH from ...") only at debug level.
        c.push_str("log_type debug\n");
    }
    // One global ACL instead of per_listener_settings: Mosquitto 2.0.11 denies every ACL
    // check of a client with no listener under per-listener settings, and a persistent
    // session restored after a restart has none until it reconnects, so messages queued for
    // the capture subscriber in that window were silently discarded.
    c.push_str(&format!(
        "allow_anonymous true\n\
         password_file {d}/passwd\n\
         acl_file {d}/acl\n\
         \n# job-facing listener: anonymous, may only publish to the allowed topics\n\
         listener {job_port} 127.0.0.1\n"
    ));
    if knobs.job_tls {
        c.push_str(&format!(
            "certfile {d}/server.pem\n\
             keyfile {d}/server.key\n\
             cafile {d}/ca.pem\n"
        ));
    } else {
        c.push_str("# plain: the devagent's gate terminates the jobs' TLS and relays here\n");
    }
    c.push_str(&format!(
        "\n# capture listener: the devagent's own subscriber (user {CAPTURE_CLIENT_ID})\n\
         listener {capture_port} 127.0.0.1\n\
         certfile {d}/capture.pem\n\
         keyfile {d}/capture.key\n\
         cafile {d}/ca.pem\n"
    ));
    c
}

/// Writes a Mosquitto password file with one user, using `mosquitto_passwd` (same package).
pub(crate) fn write_password_file(
    mosquitto: &Path,
    file: &Path,
    user: &str,
    password: &str,
) -> Result<(), Error> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(dir) = mosquitto.parent() {
        candidates.push(dir.to_path_buf());
        candidates.push(dir.join("../bin"));
    }
    candidates.push(PathBuf::from("/usr/bin"));
    candidates.push(PathBuf::from("/usr/local/bin"));
    let tool = candidates
        .iter()
        .map(|d| d.join("mosquitto_passwd"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::MosquittoNotFound {
            tried: "mosquitto_passwd in PATH, next to mosquitto, /usr/bin, /usr/local/bin".into(),
        })?;
    let out = std::process::Command::new(&tool)
        .arg("-c")
        .arg("-b")
        .arg(file)
        .arg(user)
        .arg(password)
        .output()
        .map_err(|e| Error::io(format!("running {}", tool.display()), e))?;
    if !out.status.success() {
        return Err(Error::Broker(format!(
            "{} failed: {}",
            tool.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // mosquitto_passwd writes it 0600 as root; the broker reads it after dropping root.
    set_mode(file, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_listener_and_acl() {
        let knobs = |receive_maximum, log_publishes| BrokerKnobs {
            receive_maximum,
            log_publishes,
            max_packet_size: None,
            refuse_job_clients: false,
            job_tls: true,
        };
        let c = broker_conf(Path::new("/tmp/x"), 1111, 2222, &knobs(Some(5), false));
        for want in [
            "listener 1111 127.0.0.1",
            "listener 2222 127.0.0.1",
            "acl_file /tmp/x/acl",
            "password_file /tmp/x/passwd",
            "max_inflight_messages 5",
            "max_queued_messages 1000000000",
            "persistence_location /tmp/x/db/",
        ] {
            assert!(c.contains(want), "{want} missing from:\n{c}");
        }
        assert!(!broker_conf(Path::new("/t"), 1, 2, &knobs(None, false)).contains("max_inflight"));
        assert!(!c.contains("log_type debug"));
        assert!(broker_conf(Path::new("/t"), 1, 2, &knobs(None, true)).contains("log_type debug"));
        let limits = BrokerKnobs {
            max_packet_size: Some(2000),
            refuse_job_clients: true,
            ..knobs(None, false)
        };
        let l = broker_conf(Path::new("/t"), 1, 2, &limits);
        assert!(l.contains("max_packet_size 2000"), "{l}");
        assert!(
            l.contains(&format!("clientid_prefixes {CAPTURE_CLIENT_ID}")),
            "{l}"
        );
        assert!(!c.contains("clientid_prefixes") && !c.contains("max_packet_size"));
        assert!(!c.contains("per_listener_settings"));
        assert!(
            c.contains("certfile /tmp/x/server.pem") && c.contains("certfile /tmp/x/capture.pem")
        );
        let gated = broker_conf(
            Path::new("/t"),
            1,
            2,
            &BrokerKnobs {
                job_tls: false,
                ..knobs(None, false)
            },
        );
        assert!(
            !gated.contains("server.pem") && gated.contains("capture.pem"),
            "{gated}"
        );
        let acl = acl_file(
            &["KeeperLogger".to_string(), "Jobs/x/events".to_string()],
            &["Jobs/x/events".to_string()],
        );
        assert!(
            acl.starts_with(
                "topic write KeeperLogger\ntopic write Jobs/x/events\ntopic read Jobs/x/events\n"
            ),
            "{acl}"
        );
        assert!(
            acl.ends_with(&format!("user {CAPTURE_CLIENT_ID}\ntopic read #\n")),
            "{acl}"
        );
    }

    #[test]
    fn topics_that_would_break_the_acl_are_rejected() {
        assert!(check_topic("KeeperLogger").is_ok());
        assert!(check_topic("Jobs/+/events").is_ok());
        assert!(check_topic("Jobs/#").is_ok());
        for bad in ["", " KeeperLogger", "a\nb", "a\0", "Jobs/a+", "Jobs/#/x"] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_random_hex() {
        let (a, b) = (
            random_password().expect("rng"),
            random_password().expect("rng"),
        );
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
