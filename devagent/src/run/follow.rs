//! Shows what the broker received while the tasks run: log records (checked against the
//! KeeperLogger schema, and marked when below KeeperLogger's minimum level), events, denied
//! or silently dropped publishes, refused connections, clients.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::keeperlogger::{KeeperLogger, Verdict};
use super::output::{now_hms, say};
use super::report::Message;
use crate::agent::DevAgent;
use crate::lint::LOG_TOPIC;
use crate::wait::wait_until;
use crate::{schema, timefmt, view};

/// How long to wait, after a task exits, for what it published to reach the capture.
const SETTLE: Duration = Duration::from_secs(5);

/// Prints captured messages, denials and clients as they arrive; checks the schema.
pub(super) struct Follower {
    stop: Arc<AtomicBool>,
    printed: Arc<AtomicUsize>,
    thread: Option<JoinHandle<(Vec<Message>, KeeperLogger)>>,
}

impl Follower {
    pub(super) fn start(agent: Arc<DevAgent>, keeperlogger: KeeperLogger) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let printed = Arc::new(AtomicUsize::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&printed));
        let thread = std::thread::spawn(move || follow(&agent, &s, &p, keeperlogger));
        Follower {
            stop,
            printed,
            thread: Some(thread),
        }
    }

    /// Waits until every publish the broker accepted so far has been captured and printed.
    pub(super) fn settle(&self, agent: &DevAgent) {
        wait_until(Instant::now() + SETTLE, Duration::from_millis(10), || {
            self.printed.load(Ordering::SeqCst) >= agent.publishes_received()
        });
        // Denial lines come from the broker log, which may trail the PUBACK by a moment.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Ends the view; returns what it saw and the KeeperLogger stand-in (not yet flushed:
    /// its `summary` does that). `None` only if the view's thread panicked.
    pub(super) fn stop(mut self) -> Option<(Vec<Message>, KeeperLogger)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

fn follow(
    agent: &DevAgent,
    stop: &AtomicBool,
    printed: &AtomicUsize,
    mut keeperlogger: KeeperLogger,
) -> (Vec<Message>, KeeperLogger) {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let (mut next_denial, mut next_client, mut next_refusal) = (0usize, 0usize, 0usize);
    let silent = agent.silent_drops_enabled();
    loop {
        let finishing = stop.load(Ordering::SeqCst);
        let batch = agent.messages_from(
            out.len(),
            if finishing {
                Duration::ZERO
            } else {
                Duration::from_millis(50)
            },
        );
        let clients = agent.clients();
        for c in clients.iter().skip(next_client) {
            say(&format!("{} CLIENT   connected as {c}", now_hms()));
        }
        next_client = next_client.max(clients.len());
        for m in batch {
            let mut violations = Vec::new();
            if m.topic == LOG_TOPIC {
                violations = schema::check_log_payload(&m.payload);
                if let Some(id) = m
                    .json()
                    .and_then(|v| v.get("Id").and_then(Value::as_str).map(str::to_string))
                {
                    if !ids.insert(id.clone()) {
                        violations.push(format!(
                            "Id {id} was already used by an earlier message (each needs a new UUID)"
                        ));
                    }
                }
            }
            let line = view::pretty_message(&m);
            match keeperlogger.accept(&m) {
                Verdict::BelowMinimum => say(&format!(
                    "{line}   (below {}: not written to KeeperLogger.log)",
                    keeperlogger.minimum.name()
                )),
                Verdict::Written | Verdict::NotARecord => say(&line),
            }
            for v in &violations {
                say(&format!("             SCHEMA   {v}"));
            }
            out.push(Message {
                received: m,
                violations,
            });
            printed.store(out.len(), Ordering::SeqCst);
        }
        let denials = agent.undeclared_publishes();
        for (client, topic) in denials.iter().skip(next_denial) {
            say(&format!(
                "{} {}publish to {topic:?} by {client}: not in mqttTopics.allowedPublications \
                 {}; fix: add it there",
                now_hms(),
                if silent { "DROPPED  " } else { "DENIED   " },
                if silent {
                    "(silently dropped by the agent: the client got a success PUBACK)"
                } else {
                    "(PUBACK 0x87)"
                }
            ));
        }
        next_denial = next_denial.max(denials.len());
        let refusals = agent.refusals();
        for r in refusals.iter().skip(next_refusal) {
            if r.is_registration_race() {
                // Expected, and passed by a retry: one short line, no fix to read.
                say(&format!(
                    "{} RACE     {}: {}",
                    timefmt::hms_millis_utc(r.at),
                    r.service,
                    r.detail
                ));
                continue;
            }
            say(&format!(
                "{} REFUSED  {}{}",
                timefmt::hms_millis_utc(r.at),
                r.client_id
                    .as_ref()
                    .map(|c| format!("client id {c}: "))
                    .unwrap_or_default(),
                r
            ));
        }
        next_refusal = next_refusal.max(refusals.len());
        keeperlogger.flush(finishing);
        if finishing {
            return (out, keeperlogger);
        }
    }
}
