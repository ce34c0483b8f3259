//! The Jobs API of `DevAgent` (what `serve --jobs-api` serves), driven as a deployment script
//! drives it: curl with the Admin client certificate, and `kepm-devagent deploy`. Needs
//! `curl`, and `kepmlog` and `secret-scanner` built next to `kepm-devagent` for the runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kepm_devagent::run::{attach_runner, RunOptions, TriggeredRuns};
use kepm_devagent::{AdminFiles, Config, DevAgent, Trust};
use serde_json::{json, Value};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_kepm-devagent"))
        .parent()
        .expect("target dir")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: cargo build -p kepmlog-cli -p secret-scanner",
        p.display()
    );
    p
}

struct Api {
    dev: DevAgent,
    admin: AdminFiles,
    root: PathBuf,
    runs: std::sync::Arc<TriggeredRuns>,
    _tmp: tempfile::TempDir,
}

fn start() -> Api {
    let tmp = tempfile::Builder::new()
        .prefix("jobs-api-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let root = tmp.path().join("agent-root");
    let dev = DevAgent::start(Config {
        jobs_api: true,
        agent_root: Some(root.clone()),
        ..Config::default()
    })
    .expect("devagent starts");
    let runs = attach_runner(
        &dev,
        RunOptions {
            trust: Trust::Registry,
            // The example scans `examples`, relative to the repository.
            cwd: Some(manifest().join("..")),
            ..RunOptions::default()
        },
    );
    let admin = dev
        .admin_files()
        .expect("the Jobs API writes the Admin files");
    Api {
        dev,
        admin,
        root,
        runs,
        _tmp: tmp,
    }
}

fn port(dev: &DevAgent) -> String {
    dev.api_base().rsplit(':').next().expect("port").to_string()
}

/// curl as a deployment script runs it: (status, body). `cert` is the PEM with certificate
/// and key; `None` presents none.
fn curl(
    api: &Api,
    method: &str,
    path: &str,
    body: Option<&Value>,
    cert: Option<&Path>,
) -> (u16, Value) {
    let p = port(&api.dev);
    let mut c = Command::new("curl");
    c.args(["-sS", "-X", method, "-w", "\n%{http_code}", "--cacert"])
        .arg(api.dev.ca_path())
        .args(["--resolve", &format!("localhost:{p}:127.0.0.1")]);
    if let Some(cert) = cert {
        c.arg("--cert").arg(cert);
    }
    if let Some(b) = body {
        c.args([
            "-H",
            "Content-Type: application/json",
            "--data",
            &b.to_string(),
        ]);
    }
    c.arg(format!("https://localhost:{p}{path}"));
    let out = c.output().expect("curl runs (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let status = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

fn job(id: &str, command: &str, linux: bool) -> Value {
    json!({
        "id": id,
        "name": id,
        "enabled": true,
        "osFilter": {"windows": !linux, "linux": linux, "macOS": true},
        "mqttTopics": {"allowedPublications": ["KeeperLogger"], "allowedSubscriptions": []},
        "parameters": [{"name": "Greeting", "type": "string", "required": true}],
        "tasks": [{
            "id": "main", "name": "main", "command": command,
            "arguments": "log --level warning --category Api \"{Greeting}\" --keeper-api-base={KeeperApiBaseUrl}",
            "timeoutSeconds": 60, "continueOnFailure": false
        }]
    })
}

fn install(root: &Path, name: &str) {
    let dir = root.join("Jobs/bin").join(name);
    std::fs::create_dir_all(&dir).expect("bin dir");
    std::fs::copy(bin(name), dir.join(name)).expect("install");
}

#[test]
fn admin_endpoints_need_the_admin_certificate_and_public_ones_none() {
    let api = start();
    let body = job("hello", "kepmlog", true);
    let (s, b) = curl(&api, "POST", "/api/Jobs", Some(&body), None);
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["requiredTier"], "Admin", "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no client certificate"),
        "{b}"
    );

    // A client certificate from another CA: 403 too, saying why.
    let dir = tempfile::tempdir_in("/tmp").expect("dir");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).expect("cert");
    drop(ca_cert);
    let foreign = dir.path().join("foreign.pem");
    std::fs::write(&foreign, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");
    let (s, b) = curl(&api, "POST", "/api/Jobs", Some(&body), Some(&foreign));
    assert_eq!(s, 403, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Admin CA"),
        "{b}"
    );

    let (s, b) = curl(&api, "GET", "/health", None, None);
    assert_eq!((s, &b["status"]), (200, &json!("healthy")), "{b}");
    let (s, b) = curl(&api, "GET", "/api/system/status", None, None);
    assert_eq!((s, &b["jobs"]["total"]), (200, &json!(0)), "{b}");
    // Plugin tier: this test process is a local process, and the default trust is "any".
    assert_eq!(curl(&api, "GET", "/api/Jobs", None, None).0, 200);
    assert!(!api.root.join("Jobs/hello.json").exists());
}

#[test]
fn create_checks_the_binary_as_lint_does_and_crud_round_trips() {
    let api = start();
    let cert = Some(api.admin.bundle.as_path());
    let missing = job("needs-bin", "kepmlog", true);
    let (s, b) = curl(&api, "POST", "/api/Jobs", Some(&missing), cert);
    assert_eq!(s, 400, "{b}");
    let rules: Vec<&str> = b["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["rule"].as_str())
        .collect();
    assert!(rules.contains(&"task-binary"), "{b}");
    assert!(!api.root.join("Jobs/needs-bin.json").exists());

    // osFilter excludes this host: the binary check is skipped, as the guide says.
    let elsewhere = job("elsewhere", "kepmlog", false);
    let (s, b) = curl(&api, "POST", "/api/Jobs", Some(&elsewhere), cert);
    assert_eq!(s, 201, "{b}");

    let (s, b) = curl(&api, "POST", "/api/Jobs", Some(&elsewhere), cert);
    assert_eq!(s, 409, "a second create is a conflict: {b}");
    assert_eq!(
        curl(&api, "GET", "/api/Jobs/elsewhere", None, cert),
        (200, elsewhere.clone())
    );
    let (s, list) = curl(&api, "GET", "/api/Jobs", None, cert);
    assert_eq!((s, list), (200, json!([elsewhere.clone()])));
    let file: Value = serde_json::from_slice(
        &std::fs::read(api.root.join("Jobs/elsewhere.json")).expect("job file"),
    )
    .expect("JSON");
    assert_eq!(file, elsewhere);

    let mut renamed = elsewhere.clone();
    renamed["name"] = json!("renamed through the API");
    assert_eq!(
        curl(&api, "PUT", "/api/Jobs/elsewhere", Some(&renamed), cert).0,
        200
    );
    assert_eq!(
        curl(&api, "GET", "/api/Jobs/elsewhere", None, cert).1,
        renamed
    );
    assert_eq!(
        curl(&api, "DELETE", "/api/Jobs/elsewhere", None, cert).0,
        200
    );
    assert_eq!(curl(&api, "GET", "/api/Jobs/elsewhere", None, cert).0, 404);
    assert!(!api.root.join("Jobs/elsewhere.json").exists());
    assert_eq!(
        curl(&api, "DELETE", "/api/Jobs/elsewhere", None, cert).0,
        404
    );
}

#[test]
fn hand_edits_are_reverted_and_api_updates_kept() {
    let api = start();
    let cert = Some(api.admin.bundle.as_path());
    let j = job("kept", "kepmlog", false);
    assert_eq!(curl(&api, "POST", "/api/Jobs", Some(&j), cert).0, 201);
    let file = api.root.join("Jobs/kept.json");
    let deployed = std::fs::read(&file).expect("job file");
    std::fs::write(&file, b"{\"id\": \"kept\", \"enabled\": false}").expect("hand edit");
    let restored = || std::fs::read(&file).map(|b| b == deployed).unwrap_or(false);
    // The store renames the file back before it records the notice: wait for both, or a
    // check between the two sees the file restored and no notice yet.
    let noticed = |what: &str| {
        let text = format!("Jobs/kept.json was {what} by hand and restored");
        api.dev
            .jobs_notices()
            .iter()
            .any(|n| n.text.contains(&text))
    };
    assert!(
        wait(|| restored() && noticed("edited")),
        "Last Known Good did not restore the hand edit and say so: {:?}",
        api.dev.jobs_notices()
    );
    std::fs::remove_file(&file).expect("hand removal");
    assert!(
        wait(|| restored() && noticed("removed")),
        "Last Known Good did not restore the removed file and say so: {:?}",
        api.dev.jobs_notices()
    );

    let mut updated = j.clone();
    updated["name"] = json!("updated");
    assert_eq!(
        curl(&api, "PUT", "/api/Jobs/kept", Some(&updated), cert).0,
        200
    );
    std::thread::sleep(Duration::from_millis(2500));
    let now: Value = serde_json::from_slice(&std::fs::read(&file).expect("file")).expect("JSON");
    assert_eq!(now, updated, "an API update is kept");
}

fn wait(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn trigger_runs_the_job_with_its_parameters_and_records_reach_the_broker() {
    let api = start();
    install(&api.root, "kepmlog");
    let cert = Some(api.admin.bundle.as_path());
    let j = job("greeter", "kepmlog", true);
    let (s, b) = curl(&api, "POST", "/api/Jobs", Some(&j), cert);
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        curl(
            &api,
            "POST",
            "/api/Jobs/greeter/trigger",
            Some(&json!({})),
            None
        )
        .0,
        403
    );
    let (s, b) = curl(
        &api,
        "POST",
        "/api/Jobs/greeter/trigger",
        Some(&json!({"parameters": {"Greeting": "hello through the API"}})),
        cert,
    );
    assert_eq!(s, 200, "{b}");
    let runs = api.runs.wait_for(1, Duration::from_secs(60));
    assert_eq!(runs.len(), 1, "the triggered run did not finish");
    let r = &runs[0];
    assert!(r.ok(), "{}", r.to_json());
    assert!(
        r.messages
            .iter()
            .any(|m| m.received.text().contains("hello through the API")),
        "{}",
        r.to_json()
    );
}

#[test]
fn deploy_and_trigger_the_rust_example() {
    let api = start();
    install(&api.root, "secret-scanner");
    let example = manifest().join("../examples/jobs/secret-scanner-rust.json");
    let url = format!("https://localhost:{}", port(&api.dev));
    let deploy = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kepm-devagent"))
            .arg("deploy")
            .arg(&example)
            .args(["--api", &url, "--cert"])
            .arg(&api.admin.cert)
            .arg("--key")
            .arg(&api.admin.key)
            .args(extra)
            .current_dir(manifest().join(".."))
            .output()
            .expect("deploy runs")
    };
    let out = deploy(&["--trigger"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "validate secret-scanner-rust: HTTP 200",
        "create   secret-scanner-rust: HTTP 201",
        "verify   secret-scanner-rust: HTTP 200 (stored job matches)",
        "trigger  secret-scanner-rust: HTTP 200",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let runs = api.runs.wait_for(1, Duration::from_secs(120));
    assert_eq!(runs.len(), 1);
    assert!(runs[0].ok(), "{}", runs[0].to_json());
    assert!(!runs[0].messages.is_empty(), "{}", runs[0].to_json());
    // A second deploy replaces it.
    let out = deploy(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("replace  secret-scanner-rust: HTTP 200"),
        "{text}"
    );
    // Without the Admin key pair: the step and its 403 are printed, exit 1.
    let bad = Command::new(env!("CARGO_BIN_EXE_kepm-devagent"))
        .arg("deploy")
        .arg(&example)
        .args(["--api", &url, "--cert"])
        .arg(api.dev.ca_path())
        .arg("--key")
        .arg(&api.admin.key)
        .output()
        .expect("deploy runs");
    assert_ne!(bad.status.code(), Some(0));
}
