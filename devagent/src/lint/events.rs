//! Where and when else the job runs: `events` triggers and `osFilter`, beyond their shape
//! (schemas/job.schema.json).

use serde_json::{Map, Value};

use super::finding::Linter;
use crate::os::Os;

const ALL_OSES: [Os; 3] = [Os::Windows, Os::Linux, Os::MacOs];
/// The agent's own event names ("Jobs: Definition & Format", "Default Jobs"); any other
/// name is a custom MQTT event, which the vendor documents as valid too.
pub const AGENT_EVENTS: &[&str] = &["Startup", "PolicyEvaluationPending"];

/// The name of one `events` entry: `"Startup"` or `{"eventType": "Startup"}`.
pub fn event_name(e: &Value) -> Option<&str> {
    match e {
        Value::String(s) => Some(s),
        other => other.get("eventType").and_then(Value::as_str),
    }
}

impl Linter<'_> {
    /// Flags an event name that is one of the agent's own but for its case (a custom event
    /// of that spelling would never be published); returns whether the job has any trigger.
    /// The shape of `events` is the schema's.
    pub(super) fn check_events(&mut self, root: &Map<String, Value>) -> bool {
        let Some(list) = root.get("events").and_then(Value::as_array) else {
            return false;
        };
        for (i, e) in list.iter().enumerate() {
            let Some(t) = event_name(e) else { continue };
            let path = match e {
                Value::String(_) => format!("$.events[{i}]"),
                _ => format!("$.events[{i}].eventType"),
            };
            if t.trim().is_empty() {
                self.error(
                    &path,
                    "events-type",
                    "the event name is empty: no event will ever trigger the job".into(),
                    "name the event, e.g. \"Startup\" or \"PolicyEvaluationPending\"",
                );
            } else if let Some(k) = AGENT_EVENTS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(t) && **k != t)
            {
                self.warning(
                    &path,
                    "events-type",
                    format!(
                        "event {t:?} differs from the agent's {k:?} only in case: it is read as \
                         a custom event, which the agent never publishes under that name"
                    ),
                    &format!("write {k:?}"),
                );
            }
        }
        !list.is_empty()
    }

    /// The operating systems the job targets: those set true in `osFilter`, or all three
    /// when it is absent ("Jobs: Definition & Format": optional, it only restricts).
    pub(super) fn check_os_filter(&mut self, root: &Map<String, Value>) -> Vec<Os> {
        let Some(obj) = root.get("osFilter").and_then(Value::as_object) else {
            return ALL_OSES.to_vec();
        };
        let targets: Vec<Os> = ALL_OSES
            .into_iter()
            .filter(|os| obj.get(os.key()).and_then(Value::as_bool) == Some(true))
            .collect();
        if targets.is_empty() {
            self.error(
                "$.osFilter",
                "os-filter-none",
                "osFilter matches no operating system: the job runs nowhere".into(),
                "set \"windows\", \"linux\" and/or \"macOS\" to true, or remove osFilter to run \
                 everywhere",
            );
        }
        targets
    }
}
