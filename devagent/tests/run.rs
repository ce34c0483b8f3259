//! `kepm-devagent run` end to end: real Mosquitto with the job's ACL, fixture tools (bash
//! scripts in tests/agent-root/Jobs/bin that log through the `kepmlog` CLI) and the Rust
//! example. Needs `kepmlog` and `secret-scanner` built next to `kepm-devagent`
//! (`cargo build --workspace`); KEPMLOG_BIN_DIR overrides where they are.
//!
//! The fixtures start `kepmlog` as a child of their script, which the agent trusts only when
//! it is signed and its thumbprint listed: [`run`] passes `--trust-exe` for it, as an author
//! with a signed `kepmlog` would configure the agent; [`run_untrusted`] shows the refusal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kepm_devagent::lint::{lint_file, LintOptions};
use serde_json::Value;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KEPMLOG_BIN_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_BIN_EXE_kepm-devagent"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

fn require(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace), or set \
         KEPMLOG_BIN_DIR",
        p.display()
    );
    p
}

struct Run {
    code: i32,
    out: String,
    took: Duration,
}

fn run(job: &Path, extra: &[&str]) -> Run {
    let kepmlog = require("kepmlog");
    let mut args = vec!["--trust-exe", kepmlog.to_str().expect("path")];
    args.extend_from_slice(extra);
    run_untrusted(job, &args)
}

/// `run` without trusting the `kepmlog` CLI the fixture scripts start.
fn run_untrusted(job: &Path, extra: &[&str]) -> Run {
    require("kepmlog");
    let path = std::env::join_paths(std::iter::once(bin_dir()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kepm-devagent"))
        .arg("run")
        .arg(job)
        .args(extra)
        .env("PATH", path)
        .env("TMPDIR", "/tmp")
        .env_remove("KEEPER_JOB_ID")
        .env_remove("KEPM_AGENT_ROOT")
        .output()
        .expect("run kepm-devagent run");
    let out_text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        out: out_text,
        took: start.elapsed(),
    }
}

fn fixture(name: &str) -> PathBuf {
    manifest().join(format!("tests/agent-root/Jobs/{name}.json"))
}

fn has(r: &Run, s: &str) {
    assert!(r.out.contains(s), "missing {s:?} in:\n{}", r.out);
}

#[test]
fn logs_reach_the_view_with_env_and_substitution() {
    let tmp = temp_dir();
    let json = tmp.path().join("run.json");
    let r = run(
        &fixture("run-log"),
        &["--json", json.to_str().expect("path")],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    has(&r, "args: --keeper-api-base=https://127.0.0.1:");
    has(&r, "x y");
    has(
        &r,
        "[task main] env: KEEPER_JOB_ID=run-log KEEPER_JOB_NAME=Run: log",
    );
    has(&r, "Warning  fixture-log [Fixture] hello from run-log");
    has(&r, "Info     fixture-log [Pipe] piped one");
    has(&r, "Error    fixture-log [Pipe] piped two");
    has(
        &r,
        "messages: 3 on KeeperLogger (Error 1, Info 1, Warning 1), 0 event(s)",
    );
    has(&r, "schema violations: 0");
    has(
        &r,
        "publishes silently dropped by the agent (undeclared topic): 0",
    );
    has(&r, "refused connections: 0");
    has(&r, "result: OK");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("--json file")).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        v["messages"][0]["payload"]["MetaData"]["Source"],
        "fixture-log"
    );
    assert_eq!(v["tasks"][0]["exit_code"], 0);
    // "x y" was quoted in the arguments string: one argv element, shown quoted.
    let argv = &v["tasks"][0]["arguments"];
    assert_eq!(argv.as_array().map(Vec::len), Some(2), "{argv}");
    assert_eq!(argv[1], "x y");
    has(&r, "fixture-log --keeper-api-base=https://127.0.0.1:");
    has(&r, " \"x y\"  [timeout 60s]");
    assert_eq!(v["tasks"][0]["env"]["KEEPER_JOB_ID"], "run-log");
    assert_eq!(v["summary"]["levels"]["Warning"], 1);
    // The client id follows {jobId}_{token}_{pid}, the token being the script's name.
    assert!(
        v["clients"].as_array().expect("clients").iter().all(|c| c
            .as_str()
            .is_some_and(|c| c.starts_with("run-log_fixture-log_"))),
        "{v}"
    );
}

#[test]
fn env_vars_are_absent_without_mqtt_topics() {
    // An empty mqttTopics is valid to the agent (a task that does not use MQTT): lint warns
    // and the run goes ahead, without the two variables.
    let r = run(&fixture("run-no-topics"), &[]);
    has(&r, "warning[mqtt-keeper-logger]");
    has(&r, "env: KEEPER_JOB_ID=<unset> KEEPER_JOB_NAME=<unset>");
    has(&r, "[no KEEPER_JOB_ID: mqttTopics is empty]");
    has(&r, "messages: 0 on KeeperLogger");
    assert!(!r.out.contains("running anyway (--force)"), "{}", r.out);
    assert_eq!(r.code, 0, "{}", r.out);
}

#[test]
fn an_undeclared_event_topic_is_dropped_silently_and_reported() {
    // As the agent: the tool is told its publish succeeded, and nothing receives it.
    let r = run(&fixture("run-event-denied"), &[]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(
        &r,
        "DROPPED  publish to \"Jobs/run-event-denied/events\" by run-event-denied_fixture-event_",
    );
    has(
        &r,
        "silently dropped by the agent: the client got a success PUBACK",
    );
    has(
        &r,
        "publishes silently dropped by the agent (undeclared topic): 1 (1 to \"Jobs/run-event-denied/events\")",
    );
    has(&r, "add the topic(s) to mqttTopics.allowedPublications");
    // The CLI saw success: it did not report the event as undelivered.
    assert!(!r.out.contains("event not delivered"), "{}", r.out);
    assert!(
        !r.out.contains("EVENT    Jobs/run-event-denied/events"),
        "{}",
        r.out
    );
    // The log record itself still arrived.
    has(
        &r,
        "Info     fixture-event [Fixture] about to publish an event",
    );
    has(&r, "result: FAILED");

    // --deny-visible: Mosquitto's PUBACK 0x87, which kepmlog reports.
    let r = run(&fixture("run-event-denied"), &["--deny-visible"]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(
        &r,
        "DENIED   publish to \"Jobs/run-event-denied/events\" by run-event-denied_fixture-event_",
    );
    has(
        &r,
        "denied publishes: 1 (1 to \"Jobs/run-event-denied/events\")",
    );
    has(&r, "event not delivered");

    let r = run(&fixture("run-event-allowed"), &[]);
    assert_eq!(r.code, 0, "{}", r.out);
    has(
        &r,
        "EVENT    Jobs/run-event-allowed/events {\"phase\":\"fixture\",\"status\":\"done\"}",
    );
    has(&r, "1 event(s)");
    has(
        &r,
        "publishes silently dropped by the agent (undeclared topic): 0",
    );
}

#[test]
fn a_kepmlog_child_of_a_script_is_refused_unless_trusted() {
    // The runner registered the script's process; the kepmlog it starts is another process,
    // unsigned here: Plugin Settings answers 403 and the broker refuses its CONNECT.
    // (The broker's refusal of such a process is in tests/trust.rs: here kepmlog, refused by
    // Plugin Settings, falls back to 127.0.0.1:8675, the agent's broker on an endpoint and
    // nothing here.)
    let r = run_untrusted(&fixture("run-log"), &[]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(&r, "REFUSED  plugin-settings refused (process-trust)");
    has(&r, "/kepmlog) is not a process the job runner launched");
    has(&r, "answered 403 Forbidden");
    has(
        &r,
        "Settings:AlternativeSignatures (here: --trust-exe PATH)",
    );
    has(&r, "messages: 0 on KeeperLogger");
    has(&r, "result: FAILED");
    // Listed as trusted (a signed kepmlog), the same job delivers.
    let r = run(&fixture("run-log"), &[]);
    assert_eq!(r.code, 0, "{}", r.out);
    has(&r, "refused connections: 0");
    has(&r, "messages: 3 on KeeperLogger");
}

#[test]
fn keeperlogger_writes_only_records_at_or_above_its_minimum() {
    let tmp = temp_dir();
    let log = tmp.path().join("Logs/KeeperLogger.log");
    let r = run(
        &fixture("run-log"),
        &["--keeperlogger-file", log.to_str().expect("path")],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    // Every record reached the broker; the Info one is marked, not written.
    has(
        &r,
        "Info     fixture-log [Pipe] piped one   (below Warning: not written to KeeperLogger.log)",
    );
    has(
        &r,
        &format!(
            "KeeperLogger: 3 record(s) received, 2 written to {}, 1 below the minimum level \
             Warning (system.logging.level) and not written",
            log.display()
        ),
    );
    let text = std::fs::read_to_string(&log).expect("KeeperLogger.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains(" Warning  fixture-log [Fixture] hello from run-log"),
        "{text}"
    );
    assert!(
        lines[1].contains(" Error    fixture-log [Pipe] piped two"),
        "{text}"
    );
    assert!(!text.contains("piped one"), "{text}");

    // A lower minimum writes the Info record too.
    let log2 = tmp.path().join("info.log");
    let r = run(
        &fixture("run-log"),
        &[
            "--keeperlogger-file",
            log2.to_str().expect("path"),
            "--keeperlogger-level",
            "info",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    let text = std::fs::read_to_string(&log2).expect("KeeperLogger.log");
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn a_task_over_its_timeout_is_killed_and_reported() {
    let r = run(&fixture("run-timeout"), &[]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(&r, "[task slow] sleeping");
    has(&r, "task slow: killed: exceeded timeoutSeconds");
    has(&r, "task after: skipped");
    assert!(!r.out.contains("woke up"), "{}", r.out);
    // timeoutSeconds is 1: generous bound, but far below the fixture's 60 s sleep.
    assert!(r.took < Duration::from_secs(40), "took {:?}", r.took);
}

#[test]
fn continue_on_failure_true_runs_the_next_task() {
    let r = run(&fixture("run-continue"), &[]);
    has(&r, "task first: exit 3");
    has(&r, "failed, continuing (continueOnFailure)");
    has(&r, "Error    fixture-fail [Fixture] failing on purpose");
    has(&r, "[task second] env: KEEPER_JOB_ID=run-continue");
    has(&r, "task second: exit 0");
    assert_eq!(r.code, 0, "{}", r.out);
}

#[test]
fn continue_on_failure_false_stops_the_job() {
    let r = run(&fixture("run-stop"), &[]);
    has(&r, "task first: exit 3");
    has(&r, "task second: skipped");
    assert!(!r.out.contains("[task second]"), "{}", r.out);
    assert_eq!(r.code, 1, "{}", r.out);
}

#[test]
fn schema_violations_are_shown() {
    let r = run(&fixture("run-bad-schema"), &[]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(&r, "SCHEMA   Id \"not-a-uuid\" is not a UUID v4");
    has(&r, "SCHEMA   MetaData.LogLevel must be 0..5");
    has(&r, "SCHEMA   Version is missing");
    has(&r, "result: FAILED");
}

#[test]
fn the_rust_example_runs_like_on_an_endpoint() {
    let scanner = require("secret-scanner");
    let tmp = temp_dir();
    let root = tmp.path().join("agent-root");
    let bin = root.join("Jobs/bin/secret-scanner");
    std::fs::create_dir_all(&bin).expect("agent root");
    std::fs::copy(&scanner, bin.join("secret-scanner")).expect("install the example");
    let repo = manifest().join("..");
    let job = repo.join("examples/jobs/secret-scanner-rust.json");
    let r = run(
        &job,
        &[
            "--agent-root",
            root.to_str().expect("path"),
            "--cwd",
            repo.to_str().expect("path"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    has(
        &r,
        "SecretScanner [Startup] Scanning examples for plain-text secrets",
    );
    has(&r, "SecretScanner [SecretsScan] Scan complete:");
    has(&r, "EVENT    Jobs/secret-scanner-rust/events");
    has(&r, "result: OK");
}

/// Removed when dropped, also when the test fails.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kepm-run-")
        .tempdir()
        .expect("temp dir")
}

fn json_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("--json file")).expect("JSON")
}

fn log_records(v: &Value) -> Vec<Value> {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["topic"] == "KeeperLogger")
        .map(|m| m["payload"]["MetaData"].clone())
        .collect()
}

#[test]
fn a_quoted_argument_reaches_the_task_as_one_argv_element() {
    // The task is the kepmlog CLI itself: `log --category Args "several words in one"
    // --context "C:\Program Files\X" --keeper-api-base=...`. Split on every space, the
    // message would take "--context"'s spill-over and the context would be "C:\Program".
    let tmp = temp_dir();
    let json = tmp.path().join("args.json");
    let r = run(
        &fixture("run-args"),
        &["--json", json.to_str().expect("path")],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    has(
        &r,
        r#"kepmlog log --category Args "several words in one" --context "C:\Program Files\X" --keeper-api-base=https://127.0.0.1:"#,
    );
    let v = json_report(&json);
    let task = &v["tasks"][0];
    let argv: Vec<&str> = task["arguments"]
        .as_array()
        .expect("arguments")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect();
    assert_eq!(argv.len(), 7, "{argv:?}");
    assert_eq!(
        argv[..6],
        [
            "log",
            "--category",
            "Args",
            "several words in one",
            "--context",
            r"C:\Program Files\X"
        ]
    );
    assert!(
        argv[6].starts_with("--keeper-api-base=https://127.0.0.1:"),
        "{argv:?}"
    );
    let line = task["command_line"].as_str().expect("command_line");
    assert!(
        line.starts_with(r#"log --category Args "several words in one" --context"#)
            && !line.contains("{KeeperApiBaseUrl}"),
        "{line}"
    );
    // What the broker received: exactly one record, from the one message argument.
    let logs = log_records(&v);
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0]["Message"], "several words in one");
    assert_eq!(logs[0]["Category"], "Args");
    assert_eq!(logs[0]["Context"], r"C:\Program Files\X");
}

#[test]
fn a_task_that_retries_gets_through_the_registration_race() {
    // The task is the kepmlog CLI itself, registered a second after its start: its Plugin
    // Settings request and first CONNECT come before that and are refused, as on an agent
    // whose runner is late. kepmlog asks again, so the record arrives and the run passes;
    // the refusals are counted apart from the ones that break a rule. Not trusted by
    // executable: that would let it past the registry.
    let tmp = temp_dir();
    let json = tmp.path().join("race.json");
    let r = run_untrusted(
        &fixture("run-args"),
        &[
            "--registration-delay",
            "1000",
            "--json",
            json.to_str().expect("path"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    has(&r, "RACE     plugin-settings: ");
    has(&r, "whose registration has not completed yet");
    has(&r, "refused connections: 0");
    has(&r, "(the registration race; retried): ");
    has(&r, "result: OK");
    let v = json_report(&json);
    let raced = v["summary"]["registration_race_refusals"]
        .as_u64()
        .expect("registration_race_refusals");
    assert!(raced >= 1, "{}", r.out);
    assert_eq!(v["summary"]["refused_connections"], 0);
    let logs = log_records(&v);
    assert_eq!(
        logs.len(),
        1,
        "the record, and no fallback warning: {logs:#?}"
    );
    assert_eq!(logs[0]["Message"], "several words in one");
}

#[test]
fn a_task_that_never_retries_fails_in_the_registration_race() {
    // A Python tool that asks Plugin Settings once: registered a second late, it gets 403 and
    // gives up, as it would on an agent whose runner is late. It exits 0, yet the run fails,
    // naming the race and the fix.
    let r = run_untrusted(&fixture("run-no-retry"), &["--registration-delay", "1000"]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(&r, "settings: 403");
    has(&r, "refused connections: 1");
    has(&r, "plugin-settings refused (registration-race)");
    has(&r, "retry the first connection and Plugin Settings request");
    has(&r, "result: FAILED");
    // Registered at once, the same tool passes: the failure is the race's.
    let r = run_untrusted(&fixture("run-no-retry"), &["--registration-delay", "0"]);
    assert_eq!(r.code, 0, "{}", r.out);
    has(&r, "settings: 200");
    has(&r, "refused connections: 0");
}

#[test]
fn a_parameterised_job_runs_with_its_values_substituted() {
    // As the trigger API's body would supply them: {Greeting} given, {Area} from its default.
    let r = run(
        &fixture("run-params"),
        &["--param", "Greeting=hello from a parameter"],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    has(&r, "== parameter Greeting = \"hello from a parameter\"");
    has(
        &r,
        "kepmlog log --level warning --category Params \"hello from a parameter\" --keeper-api-base=https://127.0.0.1:",
    );
    has(&r, "[Params] hello from a parameter");
    has(&r, "messages: 1 on KeeperLogger (Warning 1)");
    // A required parameter without a value stops the run before any task starts.
    let r = run(&fixture("run-params"), &[]);
    assert_eq!(r.code, 1, "{}", r.out);
    has(&r, "Greeting");
    assert!(!r.out.contains("== task main"), "{}", r.out);
}

#[test]
fn the_vendor_guide_sample_job_lints_clean_and_runs() {
    // tests/jobs/secrets-scanner.json is the guide's sample made a Linux job (see
    // tests/lint.rs); its tool, Jobs/bin/SecretScanner/SecretScanner, exits 64 unless it
    // gets exactly the two arguments "--scan" and "--keeper-api-base=https://...".
    let root = manifest().join("tests/agent-root");
    let job = manifest().join("tests/jobs/secrets-scanner.json");
    let lint = lint_file(
        &job,
        &LintOptions {
            agent_root: Some(root.clone()),
            ..LintOptions::default()
        },
    );
    assert!(lint.findings.is_empty(), "{:#?}", lint.findings);
    let check = |r: &Run| {
        assert_eq!(r.code, 0, "{}", r.out);
        has(
            r,
            "Info     SecretScanner [SecretsScan] Scan complete: 0 issues detected.",
        );
        has(r, "CLIENT   connected as secrets-scanner_SecretScanner_");
        has(r, "messages: 1 on KeeperLogger (Info 1), 0 event(s)");
        has(r, "result: OK");
    };
    let r = run(&job, &["--agent-root", root.to_str().expect("path")]);
    has(
        &r,
        "/Jobs/bin/SecretScanner/SecretScanner --scan --keeper-api-base=https://127.0.0.1:",
    );
    check(&r);

    // The guide's own shape, executablePath included: the absolute path of the same tool.
    let tool = root.join("Jobs/bin/SecretScanner/SecretScanner");
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(&job).expect("fixture")).expect("JSON");
    v["tasks"][0]["executablePath"] = Value::from(tool.to_str().expect("path"));
    let tmp = temp_dir();
    let dir = tmp.path();
    // The id must match the file name.
    let copy = dir.join("secrets-scanner.json");
    std::fs::write(&copy, serde_json::to_string_pretty(&v).expect("JSON")).expect("write");
    let lint = lint_file(&copy, &LintOptions::default());
    let r = run(&copy, &[]);
    assert!(lint.findings.is_empty(), "{:#?}", lint.findings);
    has(
        &r,
        &format!(
            "{} --scan --keeper-api-base=https://127.0.0.1:",
            tool.display()
        ),
    );
    check(&r);
}
