//! The agent's strictness, against real Mosquitto over TLS: process trust (the launched-process
//! registry, trusted executables), the client id rules, the agent's certificate, and the
//! silent denial of undeclared topics.

mod common;

use std::time::Duration;

use common::{record, runtime, V5};
use kepm_devagent::{Config, Denial, DevAgent, Trust, AGENT_CERT_NAME};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason};
use rumqttc::v5::{ConnectionError, Event};

const JOB: &str = "trust-job";

fn agent(trust: Trust, denial: Denial) -> DevAgent {
    DevAgent::start(Config {
        allow: vec!["KeeperLogger".into()],
        trust,
        denial,
        ..Config::default()
    })
    .expect("devagent starts")
}

fn settings_status(agent: &DevAgent) -> (u16, String) {
    let http = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build(),
    );
    let mut resp = http
        .get(&agent.settings_url())
        .call()
        .expect("HTTPS request");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().expect("body"))
}

/// CONNACK's reason for a CONNECT as `client_id` from this process.
fn connect_as(agent: &DevAgent, client_id: &str) -> ConnectReturnCode {
    runtime().block_on(async {
        let mut c = V5::new(
            client_id,
            agent.broker_port(),
            agent.client_tls_config(),
            true,
        );
        loop {
            match c.events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) => return a.code,
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("CONNECT as {client_id}: {e}"),
            }
        }
    })
}

fn me() -> u32 {
    std::process::id()
}

#[test]
fn an_unregistered_process_gets_403_and_a_refused_connect() {
    let a = agent(Trust::Registry, Denial::Silent);
    let (status, body) = settings_status(&a);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("not a process the job runner launched"),
        "{body}"
    );
    assert!(
        body.contains("AlternativeSignatures"),
        "the fix is named: {body}"
    );

    let id = format!("{JOB}_Tool_{}", me());
    assert_eq!(connect_as(&a, &id), ConnectReturnCode::NotAuthorized);
    let refusals = a.refusals();
    let rules: Vec<(&str, &str)> = refusals.iter().map(|r| (r.service, r.rule)).collect();
    assert_eq!(
        rules,
        vec![
            ("plugin-settings", "process-trust"),
            ("broker", "process-trust")
        ],
        "{refusals:?}"
    );
    assert_eq!(refusals[1].client_id.as_deref(), Some(id.as_str()));
    assert!(
        refusals[1].detail.contains(&format!("pid {}", me())),
        "{refusals:?}"
    );
    // The broker never saw the refused client.
    assert!(a.clients().is_empty(), "{:?}", a.clients());
}

#[test]
fn a_registered_process_passes_and_its_client_id_must_be_its_own() {
    let a = agent(Trust::Registry, Denial::Silent);
    a.register_process(me(), JOB);
    assert_eq!(settings_status(&a).0, 200);

    let good = format!("{JOB}_Tool_{}", me());
    assert_eq!(connect_as(&a, &good), ConnectReturnCode::Success);
    let cases = [
        (format!("other-job_Tool_{}", me()), "client-id-job"),
        (format!("{JOB}_Tool_{}", me() + 1), "client-id-pid"),
        (format!("{JOB}_Tool_x_{}", me()), "client-id-shape"),
        (format!("{JOB}_Tool"), "client-id-shape"),
        (format!("{JOB}_Tool_abc"), "client-id-shape"),
    ];
    for (id, rule) in &cases {
        assert_eq!(
            connect_as(&a, id),
            ConnectReturnCode::NotAuthorized,
            "{id} must be refused ({rule})"
        );
        let last = a.refusals().pop().expect("a refusal");
        assert_eq!(
            (last.rule, last.client_id.as_deref()),
            (*rule, Some(id.as_str()))
        );
        assert!(!last.fix.is_empty());
    }
    // Once the task ended, the process is unknown again.
    a.unregister_process(me());
    assert_eq!(connect_as(&a, &good), ConnectReturnCode::NotAuthorized);
    assert_eq!(settings_status(&a).0, 403);
}

#[test]
fn a_trusted_executable_passes_without_being_registered() {
    let exe = std::env::current_exe().expect("test binary");
    let a = DevAgent::start(Config {
        trust: Trust::Registry,
        trusted_exes: vec![exe],
        denial: Denial::Silent,
        ..Config::default()
    })
    .expect("devagent starts");
    // A trusted executable may serve any job the agent runs, but not an unknown one.
    a.register_process(1, JOB);
    assert_eq!(settings_status(&a).0, 200);
    assert_eq!(
        connect_as(&a, &format!("{JOB}_Tool_{}", me())),
        ConnectReturnCode::Success
    );
    assert_eq!(
        connect_as(&a, &format!("unknown-job_Tool_{}", me())),
        ConnectReturnCode::NotAuthorized
    );
    assert!(DevAgent::start(Config {
        trust: Trust::Registry,
        trusted_exes: vec!["/nonexistent/kepmlog".into()],
        ..Config::default()
    })
    .is_err_and(|e| e.to_string().contains("--trust-exe")));
}

#[test]
fn an_undeclared_topic_is_acknowledged_and_dropped_or_denied_visibly() {
    for denial in [Denial::Silent, Denial::Visible] {
        let a = agent(Trust::AnyLocalProcess, denial);
        let id = format!("{JOB}_Tool_{}", me());
        let (undeclared, allowed) = runtime().block_on(async {
            let mut c = V5::new(&id, a.broker_port(), a.client_tls_config(), true);
            c.connected().await;
            let undeclared = c
                .publish_acked("Jobs/trust-job/events", b"{}".to_vec())
                .await;
            let allowed = c.publish_acked("KeeperLogger", record(1)).await;
            (undeclared, allowed)
        });
        assert!(
            matches!(
                allowed,
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers
            ),
            "{allowed:?}"
        );
        // The allowed one arrives; the undeclared one never reaches any subscriber.
        assert_eq!(
            a.wait_for_messages("KeeperLogger", 1, Duration::from_secs(10))
                .len(),
            1
        );
        assert_eq!(a.count_on("Jobs/trust-job/events"), 0);
        match denial {
            Denial::Silent => {
                assert_eq!(undeclared, PubAckReason::Success, "silent: success PUBACK");
                let drops = a.silent_drops();
                assert_eq!(drops.len(), 1, "{drops:?}");
                assert_eq!(drops[0].topic, "Jobs/trust-job/events");
                assert_eq!(drops[0].client_id, id);
            }
            Denial::Visible => {
                assert_eq!(undeclared, PubAckReason::NotAuthorized, "visible: 0x87");
                assert!(a.silent_drops().is_empty());
            }
        }
    }
}

#[test]
fn the_agent_certificate_names_localhost_and_no_address() {
    let a = agent(Trust::AnyLocalProcess, Denial::Silent);
    let pem = std::fs::read(a.dir().join("server.pem")).expect("server certificate");
    let text = String::from_utf8_lossy(&pem);
    assert!(text.contains("BEGIN CERTIFICATE"));
    // A client that checks the name against 127.0.0.1 (as rustls does by default) fails.
    use rustls::pki_types::pem::PemObject;
    let ca = rustls::pki_types::CertificateDer::from_pem_file(a.ca_path()).expect("CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("root");
    let strict = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let handshake = |name: rustls::pki_types::ServerName<'static>| {
        let mut sock =
            std::net::TcpStream::connect(("127.0.0.1", a.broker_port())).expect("connect");
        let mut conn = rustls::ClientConnection::new(strict.clone(), name).expect("conn");
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok::<(), std::io::Error>(())
    };
    let by_ip = handshake(rustls::pki_types::ServerName::from(std::net::IpAddr::from(
        [127, 0, 0, 1],
    )));
    assert!(by_ip.is_err(), "the certificate must not name 127.0.0.1");
    let by_name =
        handshake(rustls::pki_types::ServerName::try_from(AGENT_CERT_NAME).expect("name"));
    assert!(by_name.is_ok(), "{by_name:?}");
}
