//! What the agent saw: captured messages, and the clients, publishes and denials in
//! Mosquitto's log.

use std::time::{Duration, Instant};

use super::state::DevAgent;
use crate::config::Received;
use crate::wait::wait_while;

impl DevAgent {
    /// Everything captured so far, in arrival order. A broker restart can deliver a
    /// message twice (QoS 1 is at-least-once): deduplicate by content when counting.
    pub fn messages(&self) -> Vec<Received> {
        self.capture_shared.lock().messages.clone()
    }

    /// Captured messages on exactly this topic, in arrival order.
    pub fn messages_on(&self, topic: &str) -> Vec<Received> {
        self.capture_shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Number of messages captured so far (all topics).
    pub fn message_count(&self) -> usize {
        self.capture_shared.lock().messages.len()
    }

    /// Number of messages captured so far on `topic` (cheap: kept as a counter).
    pub fn count_on(&self, topic: &str) -> usize {
        self.capture_shared
            .lock()
            .counts
            .get(topic)
            .copied()
            .unwrap_or(0)
    }

    /// Messages captured after the first `start` ones (all topics), waiting up to
    /// `timeout` for at least one. For followers that stream the capture.
    pub fn messages_from(&self, start: usize, timeout: Duration) -> Vec<Received> {
        let shared = &self.capture_shared;
        let deadline = Instant::now() + timeout;
        let (st, _) = wait_while(&shared.cv, shared.lock(), deadline, |st| {
            st.messages.len() <= start
        });
        st.messages
            .get(start..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Waits until at least `n` messages were captured on `topic`, or `timeout` passes;
    /// returns the messages on `topic` either way (check the length).
    pub fn wait_for_messages(&self, topic: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let shared = &self.capture_shared;
        let deadline = Instant::now() + timeout;
        let (st, _) = wait_while(&shared.cv, shared.lock(), deadline, |st| {
            st.counts.get(topic).copied().unwrap_or(0) < n
        });
        st.messages
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Forgets everything captured so far (long-running tests bound memory with it).
    pub fn clear_messages(&self) {
        let mut st = self.capture_shared.lock();
        st.messages.clear();
        st.counts.clear();
    }

    /// MQTT client ids that connected to the job listener, in connection order (a
    /// client that reconnects appears again). Parsed from Mosquitto's log.
    pub fn clients(&self) -> Vec<String> {
        self.mosquitto.log.lock().clients.clone()
    }

    /// Publishes the broker's ACL refused (each got PUBACK 0x87 under MQTT v5), in order:
    /// `(client id, topic)`. Empty unless [`crate::Config::log_publishes`] was set.
    pub fn denials(&self) -> Vec<(String, String)> {
        self.mosquitto.log.lock().denials.clone()
    }

    /// Publishes the broker accepted from job clients (any topic). Zero unless
    /// [`crate::Config::log_publishes`] was set. A QoS 1 re-send after a reconnect counts again.
    pub fn publishes_received(&self) -> usize {
        self.mosquitto.log.lock().publishes
    }

    /// TCP connections accepted on the job listener (including handshake probes and
    /// clients that never sent CONNECT).
    pub fn connection_attempts(&self) -> usize {
        self.mosquitto.log.lock().connection_attempts
    }

    /// Waits until a client id matching `pred` has connected to the job listener (also
    /// looking at earlier ones); returns it, or `None` at `timeout`.
    pub fn wait_for_client(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let log = &self.mosquitto.log;
        let (st, _) = wait_while(&log.cv, log.lock(), deadline, |st| {
            !st.clients.iter().any(|c| pred(c))
        });
        st.clients.iter().find(|c| pred(c)).cloned()
    }
}
