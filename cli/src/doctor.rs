//! `kepmlog doctor`: run as a job's task on a pilot endpoint, it checks from inside what a
//! task can see of the agent's setup and prints each check as PASS/FAIL with the fix.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use kepmlog::{Level, Options};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, SubscribeReasonCode};

use crate::doctor_mqtt::Connection;
use crate::Common;

#[derive(Args)]
pub struct DoctorArgs {
    /// The job's event topic (default Jobs/{jobId}/events).
    #[arg(long, value_name = "TOPIC", env = "KEPMLOG_EVENT_TOPIC")]
    event_topic: Option<String>,
    /// Seconds to wait for the broker to route the test record and event back.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    wait: f64,
}

#[derive(PartialEq)]
enum State {
    Pass,
    Fail,
    /// Could not run: an earlier check failed, or a task cannot see it.
    Skip,
}

struct Check {
    state: State,
    name: &'static str,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.add(State::Pass, name, detail.into(), None);
    }
    fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(State::Fail, name, detail.into(), Some(fix.into()));
    }
    fn skip(&mut self, name: &'static str, detail: impl Into<String>) {
        self.add(State::Skip, name, detail.into(), None);
    }
    fn add(&mut self, state: State, name: &'static str, detail: String, fix: Option<String>) {
        let tag = match state {
            State::Pass => "PASS",
            State::Fail => "FAIL",
            State::Skip => "SKIP",
        };
        // Printed as it happens: a check that hangs (until the agent's timeout) still leaves
        // the earlier ones in the task's output.
        println!("{tag}  {name:<16} {detail}");
        if let Some(f) = &fix {
            println!("      {:<16} fix: {f}", "");
        }
        self.checks.push(Check { state, name });
    }
}

const KEEPERLOGGER_LOG: &str = "the operator reads KeeperLogger.log on the endpoint (kepmlog \
    assumes {agent root}/Logs/KeeperLogger.log; KeeperLogger writes Warning and above by \
    default)";

pub fn doctor(c: &Common, a: &DoctorArgs, timeout: Duration) -> ExitCode {
    let wait = match Duration::try_from_secs_f64(a.wait) {
        Ok(w) => w,
        Err(_) => {
            eprintln!("kepmlog: --wait must be a non-negative number of seconds");
            return ExitCode::from(crate::BAD_INPUT);
        }
    };
    println!(
        "kepmlog doctor {}: what this task can see",
        env!("CARGO_PKG_VERSION")
    );
    let mut r = Report::default();
    let job = check_job(c, &mut r);
    let api_base = check_api_base(c, &mut r);
    let broker = match kepmlog::diag::discover(&api_base, c.ca_bundle.as_deref(), timeout) {
        Ok((host, port)) => {
            r.pass(
                "plugin-settings",
                format!(
                    "{api_base}{} names the broker {host}:{port}",
                    kepmlog::SETTINGS_PATH
                ),
            );
            Some((host, port))
        }
        Err(e) if e.contains("403") => {
            r.fail(
                "plugin-settings",
                e,
                "process trust: the agent answers only the process its job runner started. \
                 Make kepmlog the task (\"command\": \"kepmlog\", arguments \"doctor \
                 --keeper-api-base={KeeperApiBaseUrl}\", or `kepmlog run -- SCRIPT` for \
                 scripts); a kepmlog started by a script needs a signature whose thumbprint \
                 is in Settings:AlternativeSignatures",
            );
            None
        }
        Err(e) => {
            r.fail(
                "plugin-settings",
                e,
                "is the agent's service running, and is --keeper-api-base the task's \
                 {KeeperApiBaseUrl}?",
            );
            None
        }
    };
    let (Some(job), Some((host, port))) = (job, broker) else {
        for name in ["mqtt-connect", "keeperlogger", "event"] {
            r.skip(name, "needs the job id and the broker address (see above)");
        }
        return summary(&r);
    };
    let token = c.token.clone().unwrap_or_else(|| "doctor".to_string());
    let event_topic = a
        .event_topic
        .clone()
        .unwrap_or_else(|| format!("Jobs/{job}/events"));
    let mut watch = Watch::connect(c, &job, &token, &host, port, timeout, &mut r);
    let confirm = watch
        .as_mut()
        .map(|w| w.subscribe(&["KeeperLogger", &event_topic], timeout, &mut r))
        .unwrap_or(false);
    publish_and_confirm(
        c,
        &job,
        &token,
        &event_topic,
        watch,
        confirm,
        timeout,
        wait,
        &mut r,
    );
    summary(&r)
}

fn check_job(c: &Common, r: &mut Report) -> Option<String> {
    let id = c
        .job_id
        .clone()
        .or_else(|| std::env::var(kepmlog::identity::ENV_JOB_ID).ok());
    let job = match id {
        None => {
            r.fail(
                "job-id",
                "KEEPER_JOB_ID is not set",
                "declare mqttTopics with KeeperLogger in allowedPublications: the agent sets \
                 KEEPER_JOB_ID only for jobs that have mqttTopics",
            );
            None
        }
        Some(id) => match kepmlog::identity::validate_job_id(&id) {
            Ok(()) => {
                r.pass("job-id", format!("KEEPER_JOB_ID={id}"));
                Some(id)
            }
            Err(e) => {
                r.fail(
                    "job-id",
                    e.to_string(),
                    "rename the job: its id goes into the client id {jobId}_{token}_{pid}, so \
                     no `_`, spaces, `/`, `+` or `#` (and the file name must match)",
                );
                None
            }
        },
    };
    match std::env::var(kepmlog::identity::ENV_JOB_NAME) {
        Ok(n) if !n.trim().is_empty() => r.pass("job-name", format!("KEEPER_JOB_NAME={n}")),
        _ => r.fail(
            "job-name",
            "KEEPER_JOB_NAME is missing or empty",
            "give the job a \"name\" (the agent passes it as KEEPER_JOB_NAME)",
        ),
    }
    job
}

fn check_api_base(c: &Common, r: &mut Report) -> String {
    let given = c
        .keeper_api_base
        .clone()
        .or_else(|| crate::parent::caller().and_then(|c| c.api_base.clone()));
    let fallback = kepmlog::DEFAULT_API_BASE.to_string();
    match given {
        None => {
            r.fail(
                "api-base",
                format!("no --keeper-api-base (nor KEEPER_API_BASE); trying {fallback}"),
                "add --keeper-api-base={KeeperApiBaseUrl} to the task's \"arguments\"",
            );
            fallback
        }
        Some(b) if b.contains('{') || b.contains('}') => {
            r.fail(
                "api-base",
                format!("{b:?} was not substituted; trying {fallback}"),
                "the agent substitutes exactly {KeeperApiBaseUrl} (this spelling) in \
                 \"arguments\"",
            );
            fallback
        }
        Some(b) if !b.starts_with("https://") => {
            r.fail(
                "api-base",
                format!("{b:?} is not https://; trying {fallback}"),
                "pass the agent's {KeeperApiBaseUrl} unchanged: its API is HTTPS only",
            );
            fallback
        }
        Some(b) => {
            r.pass("api-base", format!("--keeper-api-base={b}"));
            b
        }
    }
}

/// The subscribing connection, with the client id the agent requires.
struct Watch {
    /// Every SUBACK said success.
    granted: bool,
    conn: Connection,
}

impl Watch {
    fn connect(
        c: &Common,
        job: &str,
        token: &str,
        host: &str,
        port: u16,
        timeout: Duration,
        r: &mut Report,
    ) -> Option<Watch> {
        let client_id = kepmlog::identity::client_id(job, token, std::process::id());
        let tls = match kepmlog::diag::tls_client_config(c.ca_bundle.as_deref(), host) {
            Ok(t) => t,
            Err(e) => {
                r.fail(
                    "mqtt-connect",
                    e,
                    "fix --ca-bundle (a PEM file of the agent's CA)",
                );
                return None;
            }
        };
        let end = Instant::now() + timeout;
        let unreachable = "the broker Plugin Settings names does not answer in TLS MQTT: is the \
                           agent's broker running (and not blocked by a firewall)?";
        let mut conn = match Connection::open(
            host,
            port,
            tls,
            &client_id,
            Duration::from_secs(30),
            timeout,
        ) {
            Ok(conn) => conn,
            Err(e) => {
                r.fail("mqtt-connect", format!("{host}:{port}: {e}"), unreachable);
                return None;
            }
        };
        loop {
            match conn.next(end) {
                Ok(Some(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                    r.pass(
                        "mqtt-connect",
                        format!("TLS MQTT v5 to {host}:{port} as {client_id}"),
                    );
                    return Some(Watch {
                        granted: false,
                        conn,
                    });
                }
                Ok(Some(Packet::ConnAck(ack))) => {
                    let fix = match ack.code {
                        ConnectReturnCode::NotAuthorized => {
                            "process trust: only the process the job runner started may \
                             connect (make kepmlog the task, or sign it and list the \
                             thumbprint in Settings:AlternativeSignatures)"
                        }
                        ConnectReturnCode::ClientIdentifierNotValid => {
                            "the client id must be {jobId}_{token}_{pid} of this process"
                        }
                        _ => "see the agent's log for why it refused the connection",
                    };
                    r.fail(
                        "mqtt-connect",
                        format!("{host}:{port} refused {client_id}: {:?}", ack.code),
                        fix,
                    );
                    return None;
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    r.fail("mqtt-connect", format!("{host}:{port}: {e}"), unreachable);
                    return None;
                }
                Ok(None) => {
                    r.fail(
                        "mqtt-connect",
                        format!("no CONNACK from {host}:{port} within {timeout:?}"),
                        unreachable,
                    );
                    return None;
                }
            }
        }
    }

    /// Whether every topic could be subscribed (so routing can be confirmed).
    fn subscribe(&mut self, topics: &[&str], timeout: Duration, r: &mut Report) -> bool {
        for t in topics {
            if let Err(e) = self.conn.subscribe(t, timeout) {
                r.skip("subscribe", format!("cannot subscribe to {t}: {e}"));
                return false;
            }
        }
        let end = Instant::now() + timeout;
        let mut refused = Vec::new();
        let mut acks = 0;
        while acks < topics.len() {
            match self.conn.next(end) {
                Ok(Some(Packet::SubAck(ack))) => {
                    // SUBACKs come in the order of the SUBSCRIBEs (one topic each).
                    if let Some(t) = topics.get(acks) {
                        if !matches!(
                            ack.return_codes.first(),
                            Some(SubscribeReasonCode::Success(_))
                        ) {
                            refused.push(format!("{t} ({:?})", ack.return_codes.first()));
                        }
                    }
                    acks += 1;
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    r.skip(
                        "subscribe",
                        format!("connection lost while subscribing: {e}"),
                    );
                    return false;
                }
                Ok(None) => {
                    r.skip(
                        "subscribe",
                        "no SUBACK in time; delivery cannot be confirmed",
                    );
                    return false;
                }
            }
        }
        if refused.is_empty() {
            self.granted = true;
            r.pass(
                "subscribe",
                format!(
                    "subscribed to {}: the broker's routing of this task's publishes is checked",
                    topics.join(", ")
                ),
            );
            true
        } else {
            r.skip(
                "subscribe",
                format!(
                    "not allowed: {}. Delivery cannot be confirmed from inside (the agent \
                     answers success to a publish it drops); {KEEPERLOGGER_LOG}. To let doctor \
                     confirm it, list the topics in mqttTopics.allowedSubscriptions",
                    refused.join(", ")
                ),
            );
            false
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn publish_and_confirm(
    c: &Common,
    job: &str,
    token: &str,
    event_topic: &str,
    mut watch: Option<Watch>,
    confirm: bool,
    timeout: Duration,
    wait: Duration,
    r: &mut Report,
) {
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    // A second connection for the library's own publishing path, with its own token: two
    // connections with one client id would take each other's session over.
    let mut opts = Options::new("kepmlog doctor")
        .token(format!("{token}-send"))
        .job_id(job)
        .api_base(crate::api_base(c))
        .event_topic(event_topic)
        .stderr_diagnostics(!c.quiet)
        .undelivered_to_stderr(false);
    if let Some(ca) = &c.ca_bundle {
        opts = opts.ca_bundle(ca.clone());
    }
    let log = match kepmlog::Logger::new(opts) {
        Ok(l) => l,
        Err(e) => {
            r.fail("keeperlogger", e.to_string(), "see the error");
            r.skip("event", "no logger");
            return;
        }
    };
    let message =
        format!("kepmlog doctor: test record {nonce} (Warning, so KeeperLogger writes it)");
    let logged = log.log(Level::Warning, "kepmlog-doctor", &message);
    let evented = log.event(&serde_json::json!({"kepmlog": "doctor", "nonce": nonce}));
    let outcome = log.shutdown_outcome(timeout);
    let (denied, undelivered, err) = match &outcome {
        Ok(o) => (
            o.denied_topics.clone(),
            o.undelivered,
            o.error().map(|e| e.to_string()),
        ),
        Err(e) => (Vec::new(), 0, Some(e.to_string())),
    };
    let mut routed = (false, false);
    if let (true, Some(w)) = (confirm, &mut watch) {
        let end = Instant::now() + wait;
        while !(routed.0 && routed.1) {
            match w.conn.next(end) {
                Ok(Some(Packet::Publish(p))) => {
                    let body = String::from_utf8_lossy(&p.payload);
                    if body.contains(&nonce) {
                        if &p.topic[..] == b"KeeperLogger" {
                            routed.0 = true;
                        } else if p.topic[..] == *event_topic.as_bytes() {
                            routed.1 = true;
                        }
                    }
                }
                Ok(Some(_)) => {}
                Err(_) | Ok(None) => break,
            }
        }
    }
    // Neither came back although the SUBACKs said yes: the broker may grant a subscription and
    // then deliver nothing (Mosquitto does so for a topic its ACL does not let the client
    // read), so routing cannot be judged. One back and the other not is a dropped publish.
    let confirm = confirm && (routed.0 || routed.1);
    if let (true, false) = (watch.is_some(), confirm) {
        if routed == (false, false) && subscribed_ok(&watch) {
            r.skip(
                "routing",
                format!(
                    "nothing was routed back within {wait:?} although the subscriptions were                      granted: the broker does not deliver to this task (allowedSubscriptions \
                     empty?), or it dropped both publishes; delivery cannot be confirmed from \
                     inside: {KEEPERLOGGER_LOG}"
                ),
            );
        }
    }
    for (name, topic, queued, got) in [
        (
            "keeperlogger",
            "KeeperLogger",
            logged.map_err(|e| e.to_string()),
            routed.0,
        ),
        (
            "event",
            event_topic,
            evented.map_err(|e| e.to_string()),
            routed.1,
        ),
    ] {
        let allow_fix = format!("add \"{topic}\" to mqttTopics.allowedPublications");
        if let Err(e) = queued {
            r.fail(name, e, "see the error");
        } else if denied.iter().any(|t| t == topic) {
            r.fail(
                name,
                format!("the broker denied the publish to {topic} (0x87)"),
                allow_fix,
            );
        } else if undelivered > 0 || err.is_some() {
            r.fail(
                name,
                format!(
                    "not acknowledged within {timeout:?}: {}",
                    err.clone().unwrap_or_default()
                ),
                "see the checks above; a longer --timeout if the broker is slow",
            );
        } else if !confirm {
            r.pass(
                name,
                format!(
                    "publish to {topic} acknowledged; delivery cannot be confirmed from inside: \
                     {KEEPERLOGGER_LOG}"
                ),
            );
        } else if got {
            r.pass(
                name,
                format!("publish to {topic} acknowledged and routed back by the broker"),
            );
        } else {
            r.fail(
                name,
                format!(
                    "the broker answered success to the publish to {topic} but never routed it \
                     (waited {wait:?}): the agent dropped it silently"
                ),
                allow_fix,
            );
        }
    }
    drop(watch);
}

fn subscribed_ok(w: &Option<Watch>) -> bool {
    w.as_ref().is_some_and(|w| w.granted)
}

fn summary(r: &Report) -> ExitCode {
    let count = |s: State| r.checks.iter().filter(|c| c.state == s).count();
    let (pass, fail, skip) = (count(State::Pass), count(State::Fail), count(State::Skip));
    let failed: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.state == State::Fail)
        .map(|c| c.name)
        .collect();
    println!(
        "doctor: {pass} passed, {fail} failed, {skip} could not run{}",
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", failed.join(", "))
        }
    );
    if fail == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::NOT_DELIVERED)
    }
}
