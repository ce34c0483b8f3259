//! `kepm-devagent serve`: the stand-in agent as a process speaking JSON lines, for tests in
//! other languages and for job authors.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kepm_devagent::run::TriggeredRuns;
use kepm_devagent::view::pretty_message;
use kepm_devagent::{
    timefmt, Config, Denial, DevAgent, Received, ResetProxy, SettingsMode, Trust, FALLBACK_BROKER,
};
use serde_json::{json, Value};

use super::out::{event_first, Out};
use super::serve_jobs::{attach_trigger_runner, curl_create, jobs_api_json};
use super::signals::{install_signal_handlers, Input};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Topic job clients may publish to; repeat for more. Replaces the default
    /// (KeeperLogger), so list KeeperLogger too when you want it.
    #[arg(long = "allow", value_name = "TOPIC")]
    allow: Vec<String>,
    /// Plugin Settings answer: ok, port-string, 403, 500 (any status), garbage,
    /// missing-keys, delay:MS, wrong-port, wrong-types, port-out-of-range, hang, plaintext,
    /// other-ca-cert, non-loopback-broker.
    #[arg(long, value_name = "MODE", default_value = "ok", value_parser = parse_mode)]
    settings: SettingsMode,
    /// Do not start the broker (start it later with the `broker start` command).
    #[arg(long)]
    no_broker: bool,
    /// Broker's Receive Maximum for MQTT v5 clients (Mosquitto max_inflight_messages).
    #[arg(long, value_name = "N")]
    receive_maximum: Option<u16>,
    /// Broker's Maximum Packet Size for MQTT v5 clients (Mosquitto max_packet_size).
    #[arg(long, value_name = "BYTES")]
    max_packet_size: Option<u32>,
    /// Run no capture subscriber (nothing is printed; allowed publishes get PUBACK 0x10):
    /// for benchmarks of the publishing side alone.
    #[arg(long)]
    no_capture: bool,
    /// Human-readable log view instead of JSON lines for messages.
    #[arg(long)]
    pretty: bool,
    /// Keep running at stdin EOF (for running in the background from a shell).
    #[arg(long)]
    ignore_stdin: bool,
    /// Which processes may connect: any (default here, so a test harness's own process can
    /// log) or registry (the agent's rule: only pids registered with `--register PID:JOB` or
    /// the `register PID JOB` command, plus --trust-exe).
    #[arg(long, value_name = "MODE", default_value = "any", value_parser = super::run::parse_trust)]
    trust: Trust,
    /// With --trust registry: a process the job runner launched, as PID:JOB. Repeatable.
    #[arg(long, value_name = "PID:JOB", value_parser = parse_registration)]
    register: Vec<(u32, String)>,
    /// Trust this executable although not launched (the agent's AlternativeSignatures).
    #[arg(long, value_name = "PATH")]
    trust_exe: Vec<std::path::PathBuf>,
    /// With --trust registry: a registered process (and a triggered job's task) is trusted
    /// only this long after its registration, as in the agent's registration race.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    registration_delay: u64,
    /// Answer a publish to a topic not in --allow with PUBACK 0x87 (Mosquitto's answer)
    /// instead of the agent's usual success-and-drop.
    #[arg(long)]
    deny_visible: bool,
    /// Serve the Job Management API on the HTTPS port: public /health, / and
    /// /api/system/status; Plugin tier GET /api/Jobs; Admin tier (a client certificate of
    /// the Admin CA written to the state dir) for create, update, delete, validate, run,
    /// trigger and reload. Hand edits under AGENT_ROOT/Jobs are reverted (Last Known Good).
    #[arg(long)]
    jobs_api: bool,
    /// With --jobs-api: the agent root of the job store (Jobs/, Jobs/bin/{command}/). Default:
    /// agent-root in the devagent's temp dir.
    #[arg(long, value_name = "DIR", requires = "jobs_api")]
    agent_root: Option<std::path::PathBuf>,
}

fn parse_registration(s: &str) -> Result<(u32, String), String> {
    let (pid, job) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected PID:JOB, e.g. 4242:secret-scanner"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{s:?}: {pid:?} is not a process id"))?;
    if job.is_empty() || job.contains('_') {
        return Err(format!("{s:?}: the job id must be non-empty, without `_`"));
    }
    Ok((pid, job.to_string()))
}

fn parse_mode(s: &str) -> Result<SettingsMode, String> {
    s.parse().map_err(|e: kepm_devagent::Error| e.to_string())
}

pub(crate) fn serve(args: ServeArgs) -> ExitCode {
    let mut cfg = Config::default();
    if !args.allow.is_empty() {
        cfg.allow = args.allow.clone();
    }
    cfg.settings = args.settings.clone();
    cfg.start_broker = !args.no_broker;
    cfg.receive_maximum = args.receive_maximum;
    cfg.max_packet_size = args.max_packet_size;
    cfg.capture = !args.no_capture;
    cfg.trust = args.trust;
    cfg.trusted_exes = args.trust_exe.clone();
    cfg.registration_delay = Duration::from_millis(args.registration_delay);
    cfg.denial = if args.deny_visible {
        Denial::Visible
    } else {
        Denial::Silent
    };
    cfg.jobs_api = args.jobs_api;
    cfg.agent_root = args.agent_root.clone();

    let (tx, rx) = mpsc::channel::<Input>();
    // Before starting anything: a signal during startup must still lead to cleanup.
    if let Err(e) = install_signal_handlers(tx.clone()) {
        eprintln!("kepm-devagent: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }

    let agent = match DevAgent::start(cfg) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("kepm-devagent: {e}");
            return ExitCode::from(1);
        }
    };
    for (pid, job) in &args.register {
        agent.register_process(*pid, job);
    }
    let out = Out;
    let runs = args.jobs_api.then(|| {
        attach_trigger_runner(
            &agent,
            args.pretty,
            &args.trust_exe,
            Duration::from_millis(args.registration_delay),
            args.deny_visible,
        )
    });

    if !print_ready(&out, &agent, args.pretty) {
        agent.close();
        return ExitCode::SUCCESS;
    }

    if !args.ignore_stdin {
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_stdin(&tx));
        if let Err(e) = spawned {
            eprintln!("kepm-devagent: cannot spawn the stdin reader: {e}");
            agent.close();
            return ExitCode::from(1);
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let agent = Arc::clone(&agent);
        let stop = Arc::clone(&stop);
        let tx = tx.clone();
        let pretty = args.pretty;
        std::thread::Builder::new()
            .name("follower".into())
            .spawn(move || follow(&agent, runs.as_deref(), &stop, &tx, pretty))
    };
    let follower = match follower {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kepm-devagent: cannot spawn the output thread: {e}");
            agent.close();
            return ExitCode::from(1);
        }
    };
    drop(tx);

    let mut proxy = None;
    while let Ok(input) = rx.recv() {
        match input {
            Input::Line(l) => {
                if !handle_command(&out, &agent, &mut proxy, l.trim()) {
                    break;
                }
            }
            Input::Eof => break,
            Input::Signal(name) => {
                eprintln!("kepm-devagent: {name}: shutting down");
                break;
            }
            Input::StdoutClosed => break,
        }
    }

    drop(proxy);
    stop.store(true, Ordering::SeqCst);
    let _ = follower.join();
    // The follower is joined, so this is normally the last reference.
    match Arc::try_unwrap(agent) {
        Ok(a) => a.shutdown(),
        Err(a) => a.close(),
    }
    ExitCode::SUCCESS
}

fn read_stdin(tx: &Sender<Input>) {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let mut buf = String::new();
    loop {
        buf.clear();
        match lock.read_line(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Eof);
                return;
            }
            Ok(_) => {
                if tx.send(Input::Line(buf.clone())).is_err() {
                    return;
                }
            }
        }
    }
}

fn print_ready(out: &Out, agent: &DevAgent, pretty: bool) -> bool {
    let ca = agent.ca_path().display().to_string();
    if pretty {
        if let Some(f) = agent.admin_files() {
            let root = agent.agent_root().unwrap_or_default();
            let lines = [
                format!(
                    "Jobs API on {}: job store {} (hand edits under Jobs/ are reverted); Admin \
                     client certificate {} (key {}, both in {}{})",
                    agent.api_base(),
                    root.display(),
                    f.cert.display(),
                    f.key.display(),
                    f.bundle.display(),
                    f.pfx.as_ref().map_or(String::new(), |p| format!(
                        "; PFX {} password {}",
                        p.display(),
                        f.pfx_password
                    )),
                ),
                format!("  {}", curl_create(agent, &f)),
            ];
            if !lines.iter().all(|l| out.line(l)) {
                return false;
            }
        }
        let lines = [
            format!(
                "kepm-devagent ready: Plugin Settings at {}, MQTT over TLS at {}:{} \
                 (job may publish to: {}; other topics are {}); CA {}; times below are UTC",
                agent.settings_url(),
                agent.broker_host(),
                agent.broker_port(),
                agent.allowed_topics().join(", "),
                if agent.silent_drops_enabled() {
                    "acknowledged and dropped, as on the agent"
                } else {
                    "denied with PUBACK 0x87 (--deny-visible)"
                },
                ca
            ),
            match agent.trust() {
                Trust::Registry => "Process trust: registered processes only (the agent's rule): \
                                    `register PID JOB` on stdin adds one"
                    .to_string(),
                Trust::AnyLocalProcess => "Process trust: OFF, any local process may connect \
                                           (an endpoint trusts only the processes its runner \
                                           starts; --trust registry enforces that here)"
                    .to_string(),
            },
            "Run a job tool against it (Ctrl-C here stops the agent):".to_string(),
            "  export KEEPER_JOB_ID=dev-job KEEPER_JOB_NAME=dev-job".to_string(),
            format!("  your-tool --keeper-api-base={}", agent.api_base()),
        ];
        lines.iter().all(|l| out.line(l))
    } else {
        out.json(&json!({
            "event": "ready",
            "api_base": agent.api_base(),
            "settings_url": agent.settings_url(),
            "broker_host": agent.broker_host(),
            "broker_port": agent.broker_port(),
            "broker_running": agent.broker_running(),
            "ca": ca,
            "fallback_broker": FALLBACK_BROKER,
            "allow": agent.allowed_topics(),
            "settings": agent.settings_mode().to_string(),
            "dir": agent.dir().display().to_string(),
            "pid": std::process::id(),
            "trust": match agent.trust() {
                Trust::Registry => "registry",
                Trust::AnyLocalProcess => "any",
            },
            "denial": if agent.silent_drops_enabled() { "silent" } else { "visible" },
            "jobs_api": jobs_api_json(agent),
        }))
    }
}

/// Streams captured messages and newly connected clients to stdout until `stop`.
fn follow(
    agent: &DevAgent,
    runs: Option<&TriggeredRuns>,
    stop: &AtomicBool,
    tx: &Sender<Input>,
    pretty: bool,
) {
    let out = Out;
    let (mut next_notice, mut next_run) = (0usize, 0usize);
    let mut next_msg = 0usize;
    let mut next_client = 0usize;
    let (mut next_drop, mut next_refusal) = (0usize, 0usize);
    loop {
        let finishing = stop.load(Ordering::SeqCst);
        let wait = if finishing {
            Duration::ZERO
        } else {
            Duration::from_millis(200)
        };
        let batch = agent.messages_from(next_msg, wait);
        next_msg += batch.len();
        let mut ok = true;
        for m in &batch {
            let line = if pretty {
                pretty_message(m)
            } else {
                event_first(&message_json(m))
            };
            if !out.line(&line) {
                ok = false;
                break;
            }
        }
        let clients = agent.clients();
        for c in clients.iter().skip(next_client) {
            let line = if pretty {
                format!(
                    "{} CLIENT   connected as {c}",
                    timefmt::hms_millis_utc(std::time::SystemTime::now())
                )
            } else {
                event_first(&json!({"event": "client", "client_id": c}))
            };
            ok = ok && out.line(&line);
        }
        next_client = next_client.max(clients.len());
        let drops = agent.silent_drops();
        for d in drops.iter().skip(next_drop) {
            let line = if pretty {
                format!(
                    "{} DROPPED  publish to {:?} by {}: not in the allowed topics, silently \
                     dropped as the agent does (the client got a success PUBACK)",
                    timefmt::hms_millis_utc(d.at),
                    d.topic,
                    d.client_id
                )
            } else {
                event_first(
                    &json!({"event": "dropped", "client_id": d.client_id, "topic": d.topic}),
                )
            };
            ok = ok && out.line(&line);
        }
        next_drop = next_drop.max(drops.len());
        let refusals = agent.refusals();
        for r in refusals.iter().skip(next_refusal) {
            let line = if pretty {
                format!("{} REFUSED  {r}", timefmt::hms_millis_utc(r.at))
            } else {
                event_first(
                    &json!({"event": "refused", "service": r.service, "rule": r.rule,
                    "client_id": r.client_id, "detail": r.detail, "fix": r.fix}),
                )
            };
            ok = ok && out.line(&line);
        }
        next_refusal = next_refusal.max(refusals.len());
        let notices = agent.jobs_notices();
        for n in notices.iter().skip(next_notice) {
            let line = if pretty {
                format!("{} JOBS     {}", timefmt::hms_millis_utc(n.at), n.text)
            } else {
                event_first(&json!({"event": "jobs", "at": timefmt::rfc3339_utc(n.at),
                    "text": n.text}))
            };
            ok = ok && out.line(&line);
        }
        next_notice = next_notice.max(notices.len());
        let finished = runs.map(TriggeredRuns::finished).unwrap_or_default();
        for r in finished.iter().skip(next_run) {
            let line = if pretty {
                format!(
                    "{} JOBS     triggered run of {} finished: {} ({} task(s), {} message(s))",
                    timefmt::hms_millis_utc(std::time::SystemTime::now()),
                    r.job_id,
                    if r.ok() { "ok" } else { "FAILED" },
                    r.tasks.len(),
                    r.messages.len()
                )
            } else {
                let mut v = r.to_json();
                v["event"] = json!("run-finished");
                event_first(&v)
            };
            ok = ok && out.line(&line);
        }
        next_run = next_run.max(finished.len());
        if !ok {
            let _ = tx.send(Input::StdoutClosed);
            return;
        }
        if finishing {
            return;
        }
    }
}

fn message_json(m: &Received) -> Value {
    let mut v = json!({
        "event": "message",
        "topic": m.topic,
        "at": timefmt::rfc3339_utc(m.at),
    });
    match m.json() {
        Some(p) => v["payload"] = p,
        None => v["payload_text"] = Value::String(m.text()),
    }
    v
}

/// What `proxy ...` commands answer with: the proxy's port and counts.
fn proxy_json(p: &ResetProxy) -> Value {
    json!({
        "proxy_port": p.port(),
        "upstream_port": p.upstream_port(),
        "connections": p.connections(),
        "open": p.open_connections(),
        "resets": p.resets(),
        "refused": p.refused(),
    })
}

/// `proxy start|reset|stats|stop`: a [`ResetProxy`] in front of the job listener, so that a
/// suite in another language can reset its client's connections mid-stream.
fn proxy_command(
    agent: &DevAgent,
    proxy: &mut Option<ResetProxy>,
    what: &str,
) -> Result<Value, String> {
    match what {
        "start" => {
            if let Some(p) = proxy.as_ref() {
                return Ok(proxy_json(p));
            }
            let p = ResetProxy::start(agent.broker_port()).map_err(|e| e.to_string())?;
            let v = proxy_json(&p);
            *proxy = Some(p);
            Ok(v)
        }
        "stop" => {
            drop(proxy.take());
            Ok(json!({}))
        }
        "reset" | "stats" => {
            let p = proxy
                .as_ref()
                .ok_or_else(|| "no proxy: send `proxy start` first".to_string())?;
            let n = (what == "reset").then(|| p.reset_all());
            let mut v = proxy_json(p);
            if let Some(n) = n {
                v["reset"] = json!(n);
            }
            Ok(v)
        }
        _ => Err("unknown proxy command: use start, reset, stats or stop".to_string()),
    }
}

/// Runs one stdin command; false means "exit now".
fn handle_command(out: &Out, agent: &DevAgent, proxy: &mut Option<ResetProxy>, line: &str) -> bool {
    if line.is_empty() {
        return true;
    }
    let reply = |r: Result<Value, String>| -> bool {
        let v = match r {
            Ok(mut extra) => {
                extra["event"] = json!("ok");
                extra["cmd"] = json!(line);
                extra
            }
            Err(e) => json!({"event": "error", "cmd": line, "error": e}),
        };
        out.json(&v)
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["quit"] | ["exit"] => {
            let _ = reply(Ok(json!({})));
            false
        }
        ["broker", "stop"] => reply(
            agent
                .stop_broker()
                .map(|()| json!({"broker_running": agent.broker_running()}))
                .map_err(|e| e.to_string()),
        ),
        ["broker", "start"] => reply(
            agent
                .start_broker()
                .map(|()| json!({"broker_running": agent.broker_running()}))
                .map_err(|e| e.to_string()),
        ),
        ["settings", mode] => reply(
            mode.parse::<SettingsMode>()
                .map(|m| {
                    agent.set_settings_mode(m.clone());
                    json!({"settings": m.to_string()})
                })
                .map_err(|e| e.to_string()),
        ),
        ["proxy", what] => reply(proxy_command(agent, proxy, what)),
        ["register", pid, job] => reply(parse_registration(&format!("{pid}:{job}")).map(
            |(pid, job)| {
                agent.register_process(pid, &job);
                json!({"pid": pid, "job": job})
            },
        )),
        ["unregister", pid] => reply(
            pid.parse::<u32>()
                .map(|pid| {
                    agent.unregister_process(pid);
                    json!({"pid": pid})
                })
                .map_err(|_| format!("{pid:?} is not a process id")),
        ),
        ["stats"] => {
            let mut per_topic: BTreeMap<String, usize> = BTreeMap::new();
            let msgs = agent.messages();
            for m in &msgs {
                *per_topic.entry(m.topic.clone()).or_insert(0) += 1;
            }
            reply(Ok(json!({
                "messages": per_topic,
                "total": msgs.len(),
                "clients": agent.clients(),
                "settings_requests": agent.settings_requests(),
                "dropped": agent.silent_drops().len(),
                "refused": agent.refusals().len(),
                "settings": agent.settings_mode().to_string(),
                "broker_running": agent.broker_running(),
            })))
        }
        _ => reply(Err(
            "unknown command: use `broker stop`, `broker start`, `settings <mode>`, \
             `proxy start|reset|stats|stop`, `register PID JOB`, `unregister PID`, `stats` or \
             `quit`"
                .to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn rec(topic: &str, payload: &str) -> Received {
        Received {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
            at: UNIX_EPOCH + Duration::from_millis(3_723_004),
        }
    }

    #[test]
    fn pretty_lines() {
        let log = r#"{"Id":"1","Version":1,"RespondToTopic":null,"MetaData":{"MessageType":4,
            "LogLevel":4,"Source":"Tool","Category":"Scan","Message":"boom",
            "CorrelationId":"c-1","Context":"ctx"}}"#;
        assert_eq!(
            pretty_message(&rec("KeeperLogger", log)),
            "01:02:03.004 Critical Tool [Scan] boom (CorrelationId=c-1, Context=ctx)"
        );
        let named = r#"{"MetaData":{"LogLevel":"Info","Source":"T","Category":"C","Message":"m"}}"#;
        assert_eq!(
            pretty_message(&rec("KeeperLogger", named)),
            "01:02:03.004 Info     T [C] m"
        );
        assert_eq!(
            pretty_message(&rec("Jobs/j/events", r#"{"a":1}"#)),
            "01:02:03.004 EVENT    Jobs/j/events {\"a\":1}"
        );
        assert_eq!(
            pretty_message(&rec("KeeperLogger", "text")),
            "01:02:03.004 ?        KeeperLogger text"
        );
    }

    #[test]
    fn proxy_commands_start_reset_and_stop_a_proxy() {
        let agent = DevAgent::start(Config {
            start_broker: false,
            ..Config::default()
        })
        .unwrap();
        let mut proxy = None;
        let err = proxy_command(&agent, &mut proxy, "reset").unwrap_err();
        assert!(err.contains("proxy start"), "{err}");
        let started = proxy_command(&agent, &mut proxy, "start").unwrap();
        assert_eq!(started["upstream_port"], json!(agent.broker_port()));
        let port = started["proxy_port"].as_u64().unwrap();
        // Started once: a second start answers with the same proxy.
        let again = proxy_command(&agent, &mut proxy, "start").unwrap();
        assert_eq!(again["proxy_port"].as_u64(), Some(port));
        let reset = proxy_command(&agent, &mut proxy, "reset").unwrap();
        assert_eq!(
            (reset["reset"].as_u64(), reset["resets"].as_u64()),
            (Some(0), Some(0))
        );
        assert!(proxy_command(&agent, &mut proxy, "bogus")
            .unwrap_err()
            .contains("unknown proxy command"));
        assert_eq!(
            proxy_command(&agent, &mut proxy, "stop").unwrap(),
            json!({})
        );
        assert!(proxy.is_none());
    }

    #[test]
    fn message_events_carry_json_or_text() {
        let v = message_json(&rec("KeeperLogger", r#"{"a":1}"#));
        assert_eq!(v["payload"], json!({"a": 1}));
        assert_eq!(v["at"], "1970-01-01T01:02:03.004Z");
        let v = message_json(&rec("KeeperLogger", "x"));
        assert_eq!(v["payload_text"], "x");
        assert!(v.get("payload").is_none());
    }
}
