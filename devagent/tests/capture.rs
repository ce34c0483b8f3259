mod common;

use std::time::Duration;

use common::{record, record_id, runtime, V5};
use kepm_devagent::{Config, DevAgent, CAPTURE_CLIENT_ID};
use rumqttc::v5::mqttbytes::v5::PubAckReason;

const T: Duration = Duration::from_secs(10);

#[test]
fn captures_allowed_publishes_and_denies_others() {
    let agent = DevAgent::start(Config {
        allow: vec!["KeeperLogger".into(), "Jobs/capture-test/events".into()],
        ..Config::default()
    })
    .expect("devagent starts");
    assert!(agent.broker_running());
    assert!(agent.ca_path().is_file());
    assert_eq!(agent.broker_host(), "127.0.0.1");

    let id = "capture-test_DevagentTest_4242";
    let mut reasons = Vec::new();
    runtime().block_on(async {
        let mut c = V5::new(id, agent.broker_port(), agent.client_tls_config(), true);
        c.connected().await;
        for i in 0..5 {
            reasons.push(c.publish_acked("KeeperLogger", record(i)).await);
        }
        reasons.push(
            c.publish_acked("Jobs/capture-test/events", br#"{"phase":"done"}"#.to_vec())
                .await,
        );
        // Not in the ACL: the broker answers 0x87 and keeps the connection.
        reasons.push(c.publish_acked("Forbidden/topic", b"nope".to_vec()).await);
        // Still usable after the denial.
        reasons.push(c.publish_acked("KeeperLogger", record(5)).await);
    });
    // 0x10 (no matching subscribers) would also be success; with the capture subscribed
    // to `#` it must be plain success.
    assert_eq!(&reasons[..6], &[PubAckReason::Success; 6]);
    assert_eq!(reasons[6], PubAckReason::NotAuthorized);
    assert_eq!(reasons[7], PubAckReason::Success);

    let got = agent.wait_for_messages("KeeperLogger", 6, T);
    let ids: Vec<String> = got.iter().filter_map(|m| record_id(&m.payload)).collect();
    assert_eq!(ids, (0..6).map(|i| format!("id-{i}")).collect::<Vec<_>>());
    let first = got[0].json().expect("payload is JSON");
    assert_eq!(first["MetaData"]["Message"], "record 0");

    let events = agent.wait_for_messages("Jobs/capture-test/events", 1, T);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json(), Some(serde_json::json!({"phase": "done"})));
    // The denied publish was refused before its PUBACK, so it can never show up later.
    assert!(agent.messages_on("Forbidden/topic").is_empty());
    assert_eq!(agent.count_on("KeeperLogger"), 6);

    assert_eq!(
        agent.wait_for_client(|c| c == id, T).as_deref(),
        Some(id),
        "clients: {:?}",
        agent.clients()
    );
    assert!(!agent.clients().iter().any(|c| c == CAPTURE_CLIENT_ID));
    agent.shutdown();
}

#[test]
fn mqtt_311_clients_are_accepted_too() {
    let agent = DevAgent::start(Config::default()).expect("devagent starts");
    let mut opts = rumqttc::MqttOptions::new("v311-test_Tool_1", "127.0.0.1", agent.broker_port());
    opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
        agent.client_tls_config(),
    )));
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 10);
    runtime().block_on(async {
        client
            .publish("KeeperLogger", rumqttc::QoS::AtLeastOnce, false, record(1))
            .await
            .expect("publish request");
        loop {
            let ev = events.poll().await.expect("v3.1.1 connection");
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = ev {
                break;
            }
        }
    });
    let got = agent.wait_for_messages("KeeperLogger", 1, T);
    assert_eq!(got.len(), 1);
    assert_eq!(record_id(&got[0].payload).as_deref(), Some("id-1"));
    assert!(agent
        .wait_for_client(|c| c == "v311-test_Tool_1", T)
        .is_some());
}

#[test]
fn receive_maximum_is_announced() {
    let agent = DevAgent::start(Config {
        receive_maximum: Some(7),
        ..Config::default()
    })
    .expect("devagent starts");
    let ack = runtime().block_on(async {
        let mut c = V5::new(
            "rm-test_Tool_1",
            agent.broker_port(),
            agent.client_tls_config(),
            true,
        );
        c.connected().await
    });
    let rm = ack.properties.and_then(|p| p.receive_max);
    assert_eq!(rm, Some(7));
}

#[test]
fn capture_keeps_up_with_a_pipelined_burst() {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::Event;

    // Some(0): no Receive Maximum announced, i.e. 65,535 in flight.
    let agent = DevAgent::start(Config {
        receive_maximum: Some(0),
        ..Config::default()
    })
    .expect("devagent starts");
    let n = 20_000;
    let ack = runtime().block_on(async {
        let mut c = V5::new(
            "burst_Tool_1",
            agent.broker_port(),
            agent.client_tls_config(),
            true,
        );
        let ack = c.connected().await;
        let client = c.client.clone();
        let producer = tokio::spawn(async move {
            for i in 0..n {
                client
                    .publish("KeeperLogger", QoS::AtLeastOnce, false, record(i))
                    .await
                    .expect("publish request");
            }
        });
        let mut acks = 0;
        while acks < n {
            let ev = c.events.poll().await.expect("connection stays up");
            if let Event::Incoming(Packet::PubAck(a)) = ev {
                assert_eq!(a.reason, PubAckReason::Success);
                acks += 1;
            }
        }
        producer.await.expect("producer");
        ack
    });
    assert_eq!(ack.properties.and_then(|p| p.receive_max), None);
    let got = agent.wait_for_messages("KeeperLogger", n, Duration::from_secs(60));
    assert_eq!(got.len(), n);
    let ids: std::collections::HashSet<String> =
        got.iter().filter_map(|m| record_id(&m.payload)).collect();
    assert_eq!(ids.len(), n);
}

#[test]
fn no_broker_mode_starts_later() {
    let agent = DevAgent::start(Config {
        start_broker: false,
        ..Config::default()
    })
    .expect("devagent starts without a broker");
    assert!(!agent.broker_running());
    agent.start_broker().expect("broker starts on demand");
    assert!(agent.broker_running());
    let reason = runtime().block_on(async {
        let mut c = V5::new(
            "late_Tool_1",
            agent.broker_port(),
            agent.client_tls_config(),
            true,
        );
        c.connected().await;
        c.publish_acked("KeeperLogger", record(9)).await
    });
    assert_eq!(reason, PubAckReason::Success);
    assert_eq!(agent.wait_for_messages("KeeperLogger", 1, T).len(), 1);
}

#[test]
fn shutdown_removes_the_temp_dir_and_stops_mosquitto() {
    let agent = DevAgent::start(Config::default()).expect("devagent starts");
    let dir = agent.dir();
    assert!(dir.join("mosquitto.conf").is_file());
    agent.close();
    assert!(!agent.broker_running());
    assert!(!dir.exists(), "{} left behind", dir.display());
    agent.close(); // idempotent
    drop(agent);

    let agent = DevAgent::start(Config::default()).expect("devagent starts");
    let dir = agent.dir();
    drop(agent);
    assert!(!dir.exists(), "{} left behind by drop", dir.display());
}
