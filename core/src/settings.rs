//! Plugin Settings discovery: where is the broker?

use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use serde_json::Value;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, TcpConnector};

use crate::https_tls::AgentTls;

use crate::tls::{is_loopback_host, not_loopback_message};

/// The Plugin Settings path of the KEPM plugin.
pub const SETTINGS_PATH: &str = "/api/PluginSettings/KeeperPrivilegeManager";

/// Host part of an `https://host:port/...` URL.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    uri.host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// Validates an API base at creation, so a typo is an error the caller sees at once.
pub(crate) fn check_api_base(api_base: &str, have_ca: bool) -> Result<(), String> {
    if !api_base.starts_with("https://") {
        return Err(format!(
            "{api_base:?} is not an https:// URL: the agent's API is HTTPS only (e.g. https://127.0.0.1:6889)"
        ));
    }
    let host = url_host(api_base).ok_or_else(|| format!("{api_base:?} is not a valid URL"))?;
    if !have_ca && !is_loopback_host(&host) {
        return Err(not_loopback_message(&host));
    }
    Ok(())
}

/// Why one Plugin Settings request failed.
enum Failure {
    /// 403: the agent does not (yet) trust the process.
    Forbidden(String),
    Other(String),
}

/// The first pause between 403 answers; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// Asks again after a 403 until the registration race is over: the agent's runner registers a
/// task just after starting it, so a task's first request can come before its registration
/// (the vendor's guide asks for a short retry for exactly this). A process the agent will
/// never trust costs only that wait before the fallback.
struct RaceRetry {
    started: Instant,
    race: Duration,
    pause: Duration,
    tries: u32,
}

impl RaceRetry {
    /// The race lasts `race` from `started` (the worker's start).
    fn new(started: Instant, race: Duration) -> RaceRetry {
        RaceRetry {
            started,
            race,
            pause: FIRST_PAUSE,
            tries: 1,
        }
    }

    /// How long to wait before asking again after `failure`; `None`: give up.
    fn pause_after(&mut self, failure: &Failure) -> Option<Duration> {
        if !matches!(failure, Failure::Forbidden(_))
            || self.started.elapsed() + self.pause >= self.race
        {
            return None;
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        self.tries += 1;
        Some(pause)
    }

    /// What to tell the operator about the failure given up on.
    fn reason(&self, failure: Failure) -> String {
        match failure {
            Failure::Forbidden(msg) if self.tries > 1 => format!(
                "{msg}; still 403 after {} tries over {} ms, so not the agent's registration race",
                self.tries,
                self.started.elapsed().as_millis()
            ),
            Failure::Forbidden(msg) | Failure::Other(msg) => msg,
        }
    }
}

/// [`discover`] through the registration race that began at `started` (the worker's start,
/// or now for `kepmlog doctor`). Blocking: the worker's thread has nothing else to do before
/// it knows its broker. Each request is a fork section, since it runs ureq's one-time
/// initialisation; the pauses between them are not, so a fork is never held up by a wait.
pub(crate) fn discover_through_race(
    api_base: &str,
    ca: Option<&[CertificateDer<'static>]>,
    timeout: Duration,
    started: Instant,
    race: Duration,
) -> Result<(String, u16), String> {
    let mut retry = RaceRetry::new(started, race);
    loop {
        let section = crate::fork::section();
        let found = discover(api_base, ca, timeout);
        drop(section);
        match found {
            Ok(addr) => return Ok(addr),
            Err(f) => match retry.pause_after(&f) {
                Some(pause) => std::thread::sleep(pause),
                None => return Err(retry.reason(f)),
            },
        }
    }
}

/// Reads the broker address from Plugin Settings, once. The error says why, for the
/// fallback warning the operator will read.
fn discover(
    api_base: &str,
    ca: Option<&[CertificateDer<'static>]>,
    timeout: Duration,
) -> Result<(String, u16), Failure> {
    let url = format!("{}{}", api_base.trim_end_matches('/'), SETTINGS_PATH);
    let host =
        url_host(&url).ok_or_else(|| Failure::Other(format!("{url:?} is not a valid URL")))?;
    let tls = crate::tls::client_config(ca, &host).map_err(Failure::Other)?;
    let config = ureq::config::Config::builder()
        .timeout_global(Some(timeout))
        // A proxy from the environment must never see loopback agent traffic.
        .proxy(None)
        .http_status_as_error(false)
        .build();
    let connector = ().chain(TcpConnector::default()).chain(AgentTls { config: tls });
    let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
    let mut response = agent
        .get(&url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| {
            Failure::Other(format!(
                "GET {url} failed: {}",
                explain(&e, ca.is_some(), timeout)
            ))
        })?;
    let status = response.status().as_u16();
    if status == 403 {
        return Err(Failure::Forbidden(format!(
            "GET {url} answered 403 Forbidden: only processes started by the KEPM agent may read \
             Plugin Settings (run the tool as a job task, or set the broker address explicitly)"
        )));
    }
    if status != 200 {
        return Err(Failure::Other(format!("GET {url} answered HTTP {status}")));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(1024 * 1024)
        .read_to_string()
        .map_err(|e| Failure::Other(format!("reading {url}: {e}")))?;
    parse_settings(&body).map_err(|e| Failure::Other(format!("{url}: {e}")))
}

/// ureq's error with what it means for the operator: the bare texts ("timeout: global",
/// "received corrupt message of type InvalidContentType") do not say what to change.
fn explain(e: &ureq::Error, have_ca: bool, timeout: Duration) -> String {
    let hint = match e {
        ureq::Error::Timeout(_) => Some(format!(
            "no answer within the settings timeout of {} ms (Options::settings_timeout)",
            timeout.as_millis()
        )),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => Some(
            "nothing listens there: is the agent running, and is --keeper-api-base right?"
                .to_string(),
        ),
        _ => match rustls_error(e) {
            Some(rustls::Error::InvalidMessage(_)) => {
                Some("the endpoint does not answer in TLS: the agent's API is HTTPS only".into())
            }
            Some(rustls::Error::InvalidCertificate(_)) if have_ca => {
                Some("its certificate does not verify against the CA bundle (ca_bundle)".into())
            }
            _ => None,
        },
    };
    match hint {
        Some(hint) => format!("{hint}: {e}"),
        None => e.to_string(),
    }
}

fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// Finds `broker.host` and `broker.port` (number or string) in a Plugin Settings body. Also
/// accepts them nested as `{"broker": {"host": ..., "port": ...}}`.
pub(crate) fn parse_settings(body: &str) -> Result<(String, u16), String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("response is not JSON ({e})"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "response is not a JSON object".to_string())?;
    let nested = obj.get("broker").and_then(Value::as_object);
    let host = obj
        .get("broker.host")
        .or_else(|| nested.and_then(|b| b.get("host")))
        .ok_or_else(|| "response has no \"broker.host\"".to_string())?;
    let host = host
        .as_str()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("\"broker.host\" is not a non-empty string: {host}"))?;
    let port = obj
        .get("broker.port")
        .or_else(|| nested.and_then(|b| b.get("port")))
        .ok_or_else(|| "response has no \"broker.port\"".to_string())?;
    let port_num = match port {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    let port = port_num
        .filter(|p| (1..=65535).contains(p))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("\"broker.port\" is not a port number: {port}"))?;
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_is_asked_again_with_growing_pauses_until_the_race_is_over() {
        let forbidden = || Failure::Forbidden("answered 403 Forbidden".into());
        let mut retry = RaceRetry::new(Instant::now(), Duration::from_secs(60));
        let pauses: Vec<u64> = (0..5)
            .map(|_| {
                retry
                    .pause_after(&forbidden())
                    .map_or(0, |p| p.as_millis() as u64)
            })
            .collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        assert!(retry
            .reason(forbidden())
            .contains("still 403 after 6 tries"));
        // Anything but a 403 is not the race: no retry, the reason as it was.
        let mut retry = RaceRetry::new(Instant::now(), Duration::from_secs(60));
        let other = || Failure::Other("answered HTTP 500".into());
        assert_eq!(retry.pause_after(&other()), None);
        assert_eq!(retry.reason(other()), "answered HTTP 500");
        // A race already over: the first 403 is final and said as it came.
        let mut retry = RaceRetry::new(Instant::now(), Duration::ZERO);
        assert_eq!(retry.pause_after(&forbidden()), None);
        assert_eq!(retry.reason(forbidden()), "answered 403 Forbidden");
    }

    #[test]
    fn settings_bodies() {
        assert_eq!(
            parse_settings(r#"{"broker.host":"127.0.0.1","broker.port":8675}"#),
            Ok(("127.0.0.1".into(), 8675))
        );
        assert_eq!(
            parse_settings(r#"{"broker.host":"localhost","broker.port":"18675"}"#),
            Ok(("localhost".into(), 18675))
        );
        assert_eq!(
            parse_settings(r#"{"broker":{"host":"127.0.0.1","port":1}}"#),
            Ok(("127.0.0.1".into(), 1))
        );
        for bad in [
            "<html>",
            "[]",
            "{}",
            r#"{"broker.host":"127.0.0.1"}"#,
            r#"{"broker.host":"","broker.port":1}"#,
            r#"{"broker.host":"h","broker.port":0}"#,
            r#"{"broker.host":"h","broker.port":70000}"#,
            r#"{"broker.host":"h","broker.port":"x"}"#,
            r#"{"broker.host":"h","broker.port":1.5}"#,
        ] {
            assert!(parse_settings(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_base_checks() {
        assert!(check_api_base("https://127.0.0.1:6889", false).is_ok());
        assert!(check_api_base("http://127.0.0.1:6889", false)
            .unwrap_err()
            .contains("HTTPS"));
        assert!(check_api_base("https://agent.example.com", false)
            .unwrap_err()
            .contains("ca_bundle"));
        assert!(check_api_base("https://agent.example.com", true).is_ok());
    }
}
