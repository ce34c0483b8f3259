//! The `kepm-devagent serve` process and its JSON-lines protocol.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use common::{record, runtime, V5};
use rumqttc::v5::mqttbytes::v5::PubAckReason;
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

struct Serve {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
}

impl Serve {
    fn spawn(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kepm-devagent"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kepm-devagent");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("stdout line");
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Serve {
            child,
            stdin,
            lines,
        }
    }

    fn next(&self) -> Value {
        self.lines
            .recv_timeout(T)
            .expect("a line from kepm-devagent")
    }

    fn send(&mut self, cmd: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}").expect("write command");
        stdin.flush().expect("flush");
        loop {
            let v = self.next();
            if v["cmd"] == cmd {
                return v;
            }
        }
    }

    fn wait_exit(&mut self) -> i32 {
        for _ in 0..(T.as_millis() / 50) {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s.code().expect("exit code, not a signal");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("kepm-devagent did not exit");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_speaks_json_lines_and_exits_cleanly() {
    let mut s = Serve::spawn(&["--allow", "KeeperLogger", "--allow", "Jobs/bin-test/events"]);
    let ready = s.next();
    assert_eq!(ready["event"], "ready", "{ready}");
    let api_base = ready["api_base"].as_str().expect("api_base").to_string();
    assert!(api_base.starts_with("https://127.0.0.1:"));
    assert_eq!(ready["broker_host"], "127.0.0.1");
    assert_eq!(ready["fallback_broker"], "127.0.0.1:8675");
    assert_eq!(
        ready["allow"],
        serde_json::json!(["KeeperLogger", "Jobs/bin-test/events"])
    );
    let port = u16::try_from(ready["broker_port"].as_u64().expect("port")).expect("u16");
    let ca = PathBuf::from(ready["ca"].as_str().expect("ca"));
    assert!(ca.is_file());
    let dir = PathBuf::from(ready["dir"].as_str().expect("dir"));
    assert!(dir.is_dir());

    // A real publish shows up as a message event, and its client as a client event.
    // Trust the CA from the file, as a job in another language would.
    let tls = ca_client_config(&ca);
    let reason = runtime().block_on(async {
        let mut c = V5::new("bin-test_Tool_7", port, tls.clone(), true);
        c.connected().await;
        let r = c.publish_acked("KeeperLogger", record(1)).await;
        assert_eq!(
            c.publish_acked("Jobs/bin-test/events", b"not json".to_vec())
                .await,
            PubAckReason::Success
        );
        r
    });
    assert_eq!(reason, PubAckReason::Success);
    // Message and client events interleave in no fixed order.
    let (mut messages, mut clients) = (Vec::new(), Vec::new());
    while messages.len() < 2 || clients.is_empty() {
        let v = s.next();
        match v["event"].as_str() {
            Some("message") => messages.push(v),
            Some("client") => clients.push(v),
            _ => panic!("unexpected line {v}"),
        }
    }
    assert_eq!(messages[0]["topic"], "KeeperLogger");
    assert_eq!(messages[0]["payload"]["Id"], "id-1");
    assert!(messages[0]["at"].as_str().expect("at").ends_with('Z'));
    assert_eq!(messages[1]["topic"], "Jobs/bin-test/events");
    assert_eq!(messages[1]["payload_text"], "not json");
    assert_eq!(clients[0]["client_id"], "bin-test_Tool_7");

    let r = s.send("broker stop");
    assert_eq!(r["event"], "ok", "{r}");
    assert_eq!(r["broker_running"], false);
    let r = s.send("broker start");
    assert_eq!(r["event"], "ok", "{r}");
    assert_eq!(r["broker_running"], true);
    let r = s.send("settings 403");
    assert_eq!(r["event"], "ok", "{r}");
    let r = s.send("settings sideways");
    assert_eq!(r["event"], "error", "{r}");
    assert!(r["error"]
        .as_str()
        .expect("error text")
        .contains("unknown settings mode"));
    let r = s.send("stats");
    assert_eq!(r["event"], "ok", "{r}");
    assert_eq!(r["messages"]["KeeperLogger"], 1);
    assert_eq!(r["settings"], "403");
    let r = s.send("quit");
    assert_eq!(r["event"], "ok");

    assert_eq!(s.wait_exit(), 0);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn serve_exits_cleanly_on_stdin_eof() {
    let mut s = Serve::spawn(&["--no-broker", "--settings", "delay:10"]);
    let ready = s.next();
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["broker_running"], false);
    assert_eq!(ready["settings"], "delay:10");
    let dir = PathBuf::from(ready["dir"].as_str().expect("dir"));
    drop(s.stdin.take());
    assert_eq!(s.wait_exit(), 0);
    assert!(!dir.exists());
}

#[test]
fn serve_exits_cleanly_on_sigterm() {
    let mut s = Serve::spawn(&["--ignore-stdin"]);
    let ready = s.next();
    assert_eq!(ready["event"], "ready");
    let dir = PathBuf::from(ready["dir"].as_str().expect("dir"));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(s.wait_exit(), 0);
    assert!(!dir.exists());
}

#[test]
fn serve_rejects_a_bad_settings_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_kepm-devagent"))
        .args(["serve", "--settings", "nope"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown settings mode"));
}

fn ca_client_config(ca: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    kepm_devagent::client_config_from_ca_file(ca).expect("CA PEM")
}
