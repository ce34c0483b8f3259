//! `mqttTopics` and `eventTopic`: what the broker's ACL will let the task publish.

use serde_json::{Map, Value};

use super::finding::Linter;
use crate::topic;

/// The topic every log record goes to; must be in `allowedPublications`.
pub const LOG_TOPIC: &str = "KeeperLogger";
const MQTT_FIELDS: &[&str] = &["allowedPublications", "allowedSubscriptions"];

impl Linter<'_> {
    /// Returns allowedPublications when it is a usable list. That mqttTopics is there and
    /// its shape are the schema's.
    pub(super) fn check_mqtt(&mut self, root: &Map<String, Value>) -> Option<Vec<String>> {
        let Some(mqtt) = root.get("mqttTopics").filter(|v| !v.is_null()) else {
            // Optional for the agent ("Jobs: Definition & Format"): a task that uses no MQTT
            // may omit it, but then it cannot log either.
            self.warning(
                "$.mqttTopics",
                "mqtt-topics-missing",
                "no \"mqttTopics\": the agent sets no KEEPER_JOB_ID/KEEPER_JOB_NAME and the \
                 broker lets the task publish nothing, so it cannot log to KeeperLogger"
                    .into(),
                "add \"mqttTopics\": {\"allowedPublications\": [\"KeeperLogger\"], \
                 \"allowedSubscriptions\": []} unless the task uses no MQTT",
            );
            return None;
        };
        let obj = mqtt.as_object()?;
        let mut publications = None;
        for key in MQTT_FIELDS {
            let Some(list) = obj.get(*key).and_then(Value::as_array) else {
                continue;
            };
            let mut topics = Vec::new();
            for (i, t) in list.iter().enumerate() {
                let Some(s) = t.as_str() else { continue };
                if topic::is_topic_filter(s) {
                    topics.push(s.to_string());
                } else {
                    self.error(
                        &format!("$.mqttTopics.{key}[{i}]"),
                        "mqtt-topic",
                        format!("{t} is not a usable MQTT topic"),
                        "use a non-empty topic string without spaces at either end, with + and # \
                         only as whole levels (# last), e.g. \"Jobs/my-job/events\"",
                    );
                }
            }
            if *key == "allowedPublications" {
                publications = Some(topics);
            }
        }
        let has_log = publications
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t == LOG_TOPIC));
        if !has_log {
            // Only the task knows whether it logs: a job may use MQTT for other topics alone.
            self.warning(
                "$.mqttTopics.allowedPublications",
                "mqtt-keeper-logger",
                "allowedPublications does not list \"KeeperLogger\": every log record would be \
                 denied"
                    .into(),
                "add \"KeeperLogger\" to mqttTopics.allowedPublications",
            );
        }
        publications
    }

    pub(super) fn check_event_topic(
        &mut self,
        root: &Map<String, Value>,
        id: Option<&str>,
        publications: Option<&[String]>,
    ) {
        let publications = publications.unwrap_or_default();
        match root.get("eventTopic") {
            Some(Value::String(t)) => {
                if !topic::is_topic_name(t) {
                    self.error(
                        "$.eventTopic",
                        "event-topic",
                        format!("eventTopic {t:?} is not a topic name (empty, or has + or #)"),
                        "use a plain topic such as \"Jobs/my-job/events\"",
                    );
                } else if !topic_allowed(t, publications) {
                    self.error(
                        "$.eventTopic",
                        "event-topic",
                        format!("eventTopic {t:?} is not in allowedPublications: every event would be denied"),
                        &format!("add {t:?} to mqttTopics.allowedPublications"),
                    );
                }
            }
            Some(_) => {}
            None => {
                let Some(id) = id else { return };
                let default = format!("Jobs/{id}/events");
                if topic_allowed(&default, publications) {
                    return;
                }
                // An events topic for some other id is most likely a renamed job.
                if let Some(other) = publications
                    .iter()
                    .find(|t| t.starts_with("Jobs/") && t.ends_with("/events"))
                {
                    self.warning(
                        "$.mqttTopics.allowedPublications",
                        "event-topic-default",
                        format!(
                            "allowedPublications lists {other:?}, but this job's default event \
                             topic is {default:?}: events would be denied"
                        ),
                        &format!("list {default:?} instead, or set \"eventTopic\": {other:?}"),
                    );
                }
            }
        }
    }
}

/// True when `topic` is matched by one of the ACL `filters` (MQTT `+`/`#` wildcards).
pub fn topic_allowed(topic: &str, filters: &[String]) -> bool {
    filters.iter().any(|f| topic_matches(f, topic))
}

/// MQTT topic filter matching (see [`crate::topic::matches`]).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    topic::matches(filter, topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters() {
        assert!(topic_matches("Jobs/+/events", "Jobs/a/events"));
        assert!(topic_matches("Jobs/#", "Jobs/a/events"));
        assert!(!topic_matches("Jobs/a", "Jobs/a/events"));
        assert!(topic_matches("KeeperLogger", "KeeperLogger"));
        assert!(topic_allowed(
            "Jobs/x/events",
            &["KeeperLogger".into(), "Jobs/+/events".into()]
        ));
        assert!(!topic_allowed("Jobs/x/events", &["KeeperLogger".into()]));
    }
}
