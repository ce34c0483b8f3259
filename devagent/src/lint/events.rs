//! Where and when else the job runs: `events` triggers and `osFilter`.

use serde_json::{Map, Value};

use super::finding::{kind, Linter};
use crate::os::Os;

const OS_KEYS: &[&str] = &["windows", "linux", "macOS"];
const EVENT_TYPES: &[&str] = &["Startup"];

impl Linter<'_> {
    pub(super) fn check_events(&mut self, root: &Map<String, Value>) -> bool {
        let Some(events) = root.get("events") else {
            return false;
        };
        let Some(list) = events.as_array() else {
            self.error(
                "$.events",
                "events-shape",
                format!(
                    "\"events\" must be an array of {{\"eventType\": ...}}, found {}",
                    kind(events)
                ),
                "write \"events\": [{\"eventType\": \"Startup\"}]",
            );
            return false;
        };
        for (i, e) in list.iter().enumerate() {
            let p = format!("$.events[{i}]");
            let Some(obj) = e.as_object() else {
                self.error(
                    &p,
                    "events-shape",
                    format!("an event trigger must be an object, found {}", kind(e)),
                    "write {\"eventType\": \"Startup\"}",
                );
                continue;
            };
            self.unknown_fields(&p, obj, &["eventType"]);
            match obj.get("eventType") {
                Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => {}
                Some(Value::String(t)) => self.warning(
                    &format!("{p}.eventType"),
                    "events-type",
                    format!("unknown eventType {t:?}"),
                    &format!("use one of: {}", EVENT_TYPES.join(", ")),
                ),
                _ => self.error(
                    &format!("{p}.eventType"),
                    "events-shape",
                    "the event trigger has no string \"eventType\"".into(),
                    "write {\"eventType\": \"Startup\"}",
                ),
            }
        }
        !list.is_empty()
    }

    /// Returns whether the host OS is included (true when osFilter is unusable, so the
    /// binary is still checked).
    pub(super) fn check_os_filter(&mut self, root: &Map<String, Value>, host: Os) -> bool {
        let Some(f) = root.get("osFilter") else {
            self.error(
                "$.osFilter",
                "os-filter-missing",
                "\"osFilter\" is missing: the agent cannot tell where the job runs".into(),
                "add \"osFilter\": {\"windows\": true, \"linux\": true, \"macOS\": true} \
                 (false for each OS you ship no binary for)",
            );
            return true;
        };
        let Some(obj) = f.as_object() else {
            self.field_type("$.osFilter", f, "an object", "windows/linux/macOS booleans");
            return true;
        };
        self.unknown_fields("$.osFilter", obj, OS_KEYS);
        let mut any = false;
        for key in OS_KEYS {
            match obj.get(*key) {
                Some(Value::Bool(b)) => any |= b,
                None => {}
                Some(v) => self.field_type(&format!("$.osFilter.{key}"), v, "true or false", key),
            }
        }
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
