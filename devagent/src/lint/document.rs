//! The job's own fields: `id` (equal to the file name, no `_`), `name`, `description`,
//! `enabled`, `parameters`.

use serde_json::{Map, Value};

use super::finding::Linter;

impl Linter<'_> {
    pub(super) fn check_id(&mut self, root: &Map<String, Value>, stem: &str) -> Option<String> {
        let id = match root.get("id") {
            None => {
                self.error(
                    "$.id",
                    "id-missing",
                    "the job has no \"id\"".into(),
                    &format!("add \"id\": {stem:?} (the file name without .json)"),
                );
                return None;
            }
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                self.field_type("$.id", v, "a string", "the job id, equal to the file name");
                return None;
            }
        };
        if id.contains('_') {
            self.error(
                "$.id",
                "id-underscore",
                format!(
                    "id {id:?} contains '_': the broker splits client ids \
                     ({{jobId}}_{{token}}_{{pid}}) on '_', so publish permissions break"
                ),
                &format!(
                    "use hyphens: \"id\": {:?}, and rename the file to match",
                    id.replace('_', "-")
                ),
            );
        }
        if id.is_empty()
            || id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/\\+#".contains(c))
        {
            self.error(
                "$.id",
                "id-characters",
                format!("id {id:?} is empty or contains white space, '/', '\\', '+' or '#'"),
                "use letters, digits and hyphens, e.g. \"secrets-scanner\"",
            );
        }
        if id != stem {
            self.error(
                "$.id",
                "id-file-name",
                format!("id {id:?} does not match the file name {stem:?}.json"),
                &format!("rename the file to {id}.json or set \"id\": {stem:?}"),
            );
        }
        Some(id)
    }

    /// `name` (a warning when missing: KEEPER_JOB_NAME comes from it), `description`,
    /// `enabled`.
    pub(super) fn check_document_fields(&mut self, root: &Map<String, Value>) {
        for (key, what) in [("name", "the job's display name"), ("description", "text")] {
            match root.get(key) {
                None if key == "name" => self.warning(
                    "$.name",
                    "name-missing",
                    "the job has no name: KEEPER_JOB_NAME will be empty".into(),
                    "add \"name\": \"A readable name\"",
                ),
                Some(v) if !v.is_string() => {
                    self.field_type(&format!("$.{key}"), v, "a string", what)
                }
                _ => {}
            }
        }
        match root.get("enabled") {
            None => self.error(
                "$.enabled",
                "enabled-missing",
                "\"enabled\" is missing: the agent only runs enabled jobs".into(),
                "add \"enabled\": true",
            ),
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => self.warning(
                "$.enabled",
                "enabled-false",
                "the job is disabled: the agent will neither schedule nor trigger it".into(),
                "set \"enabled\": true when it should run",
            ),
            Some(v) => self.field_type("$.enabled", v, "true or false", "whether the job runs"),
        }
    }

    pub(super) fn check_parameters(&mut self, root: &Map<String, Value>) {
        if let Some(p) = root.get("parameters") {
            if !(p.is_object() || p.is_array()) {
                self.field_type("$.parameters", p, "an object or an array", "job parameters");
            }
        }
    }
}
