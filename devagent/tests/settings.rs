use std::sync::Arc;
use std::time::Duration;

use kepm_devagent::{Config, DevAgent, SettingsMode};
use serde_json::Value;

fn http(verify_with_ca: Option<&std::path::Path>) -> ureq::Agent {
    let tls = match verify_with_ca {
        Some(ca) => {
            let pem = std::fs::read(ca).expect("read CA");
            let cert = ureq::tls::Certificate::from_pem(&pem).expect("CA PEM");
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build()
        }
        None => ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build(),
    };
    ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build(),
    )
}

fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut resp = agent.get(url).call().expect("HTTPS request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().expect("body");
    (status, body)
}

#[test]
fn settings_modes_are_answered_as_specified() {
    let dev = DevAgent::start(Config {
        start_broker: false,
        ..Config::default()
    })
    .expect("devagent starts");
    let url = dev.settings_url();
    assert!(url.starts_with(&dev.api_base()));
    let c = http(None);

    let (s, b) = get(&c, &url);
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&b).expect("JSON");
    assert_eq!(v["broker.host"], "127.0.0.1");
    assert_eq!(v["broker.port"], u64::from(dev.broker_port()));

    dev.set_settings_mode(SettingsMode::PortAsString);
    let v: Value = serde_json::from_str(&get(&c, &url).1).expect("JSON");
    assert_eq!(v["broker.port"], dev.broker_port().to_string());

    for code in [403u16, 500] {
        dev.set_settings_mode(SettingsMode::Status(code));
        let (s, b) = get(&c, &url);
        assert_eq!(s, code);
        let v: Value = serde_json::from_str(&b).expect("error body is JSON");
        assert!(v["error"].is_string());
    }

    dev.set_settings_mode(SettingsMode::Garbage);
    let (s, b) = get(&c, &url);
    assert_eq!(s, 200);
    assert!(serde_json::from_str::<Value>(&b).is_err(), "{b}");

    dev.set_settings_mode(SettingsMode::MissingKeys);
    assert_eq!(get(&c, &url), (200, "{}".to_string()));

    dev.set_settings_mode(SettingsMode::Delay(Duration::from_millis(200)));
    let v: Value = serde_json::from_str(&get(&c, &url).1).expect("JSON");
    assert_eq!(v["broker.port"], u64::from(dev.broker_port()));

    dev.set_settings_mode(SettingsMode::WrongPort);
    let v: Value = serde_json::from_str(&get(&c, &url).1).expect("JSON");
    let wrong = v["broker.port"].as_u64().expect("numeric port");
    assert_ne!(wrong, u64::from(dev.broker_port()));
    assert_eq!(v["broker.host"], "127.0.0.1");

    dev.set_settings_mode(SettingsMode::WrongTypes);
    let v: Value = serde_json::from_str(&get(&c, &url).1).expect("JSON");
    assert!(
        v["broker.host"].is_number() && v["broker.port"].is_boolean(),
        "{v}"
    );

    dev.set_settings_mode(SettingsMode::PortOutOfRange);
    let v: Value = serde_json::from_str(&get(&c, &url).1).expect("JSON");
    assert_eq!(v["broker.port"], 70000);

    dev.set_settings_mode(SettingsMode::NonLoopbackBroker);
    let v: Value = serde_json::from_str(&get(&c, &url).1).expect("JSON");
    assert_eq!(v["broker.host"], kepm_devagent::NON_LOOPBACK_BROKER);

    assert_eq!(dev.settings_requests(), 11);
    assert_eq!(dev.settings_answers(), 11);
    let (s, _) = get(&c, &format!("{}/api/Jobs", dev.api_base()));
    assert_eq!(s, 404);
    assert_eq!(dev.settings_requests(), 11, "other paths are not counted");

    // The certificate verifies against the throwaway CA by its one name, Localhost, and not by
    // the address: the agent's certificate names no IP address.
    dev.set_settings_mode(SettingsMode::Ok);
    let verified = http(Some(&dev.ca_path()));
    let by_name = url.replace("127.0.0.1", "localhost");
    assert_eq!(get(&verified, &by_name).0, 200);
    let by_ip = verified.get(&url).call();
    assert!(
        by_ip
            .as_ref()
            .is_err_and(|e| e.to_string().contains("Localhost")),
        "a name check against 127.0.0.1 must fail: {by_ip:?}"
    );
    // other-ca-cert: a Localhost certificate from a CA the bundle does not hold.
    dev.set_settings_mode(SettingsMode::OtherCaCert);
    let other = verified.get(&by_name).call();
    assert!(
        other
            .as_ref()
            .is_err_and(|e| e.to_string().contains("UnknownIssuer")),
        "{other:?}"
    );
    assert_eq!(
        get(&c, &url).0,
        200,
        "an unverifying client still gets the answer"
    );
}

#[test]
fn settings_modes_parse_from_cli_syntax() {
    let cases = [
        ("ok", SettingsMode::Ok),
        ("port-string", SettingsMode::PortAsString),
        ("403", SettingsMode::Status(403)),
        ("500", SettingsMode::Status(500)),
        ("garbage", SettingsMode::Garbage),
        ("missing-keys", SettingsMode::MissingKeys),
        (
            "delay:1500",
            SettingsMode::Delay(Duration::from_millis(1500)),
        ),
        ("wrong-port", SettingsMode::WrongPort),
        ("wrong-types", SettingsMode::WrongTypes),
        ("port-out-of-range", SettingsMode::PortOutOfRange),
        ("hang", SettingsMode::Hang),
        ("plaintext", SettingsMode::Plaintext),
        ("other-ca-cert", SettingsMode::OtherCaCert),
        ("non-loopback-broker", SettingsMode::NonLoopbackBroker),
    ];
    for (s, m) in cases {
        assert_eq!(s.parse::<SettingsMode>().expect(s), m);
        assert_eq!(m.to_string(), s);
    }
    for bad in ["", "nope", "delay:x", "99", "600"] {
        assert!(bad.parse::<SettingsMode>().is_err(), "{bad:?} accepted");
    }
}
