//! Where and when else the job runs: `events` triggers and `osFilter`, beyond their shape
//! (schemas/job.schema.json).

use serde_json::{Map, Value};

use super::finding::Linter;
use crate::os::Os;

const OS_KEYS: &[&str] = &["windows", "linux", "macOS"];
const EVENT_TYPES: &[&str] = &["Startup"];

impl Linter<'_> {
    /// Warns about event types the agent does not know; returns whether the job has any
    /// trigger. The shape of `events` is the schema's.
    pub(super) fn check_events(&mut self, root: &Map<String, Value>) -> bool {
        let Some(list) = root.get("events").and_then(Value::as_array) else {
            return false;
        };
        for (i, e) in list.iter().enumerate() {
            if let Some(t) = e.get("eventType").and_then(Value::as_str) {
                if !EVENT_TYPES.contains(&t) {
                    self.warning(
                        &format!("$.events[{i}].eventType"),
                        "events-type",
                        format!("unknown eventType {t:?}"),
                        &format!("use one of: {}", EVENT_TYPES.join(", ")),
                    );
                }
            }
        }
        !list.is_empty()
    }

    /// Returns whether the host OS is included (true when osFilter is unusable, so the
    /// binary is still checked).
    pub(super) fn check_os_filter(&mut self, root: &Map<String, Value>, host: Os) -> bool {
        let Some(obj) = root.get("osFilter").and_then(Value::as_object) else {
            return true;
        };
        let any = OS_KEYS
            .iter()
            .any(|k| obj.get(*k).and_then(Value::as_bool) == Some(true));
        if !any {
            self.error(
                "$.osFilter",
                "os-filter-none",
                "osFilter matches no operating system: the job runs nowhere".into(),
                "set \"windows\", \"linux\" and/or \"macOS\" to true",
            );
        }
        obj.get(host.key())
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}
