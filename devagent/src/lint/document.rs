//! The job's own fields beyond their shape (schemas/job.schema.json): `id` equal to the
//! file name and without `_`, a `name`, `enabled` true.

use serde_json::{Map, Value};

use super::finding::Linter;

impl Linter<'_> {
    pub(super) fn check_id(&mut self, root: &Map<String, Value>, stem: &str) -> Option<String> {
        // Missing or not a string: the schema reported it.
        let id = root.get("id")?.as_str()?.to_string();
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

    /// `name` (KEEPER_JOB_NAME comes from it) and `enabled`; their types are the schema's.
    pub(super) fn check_document_fields(&mut self, root: &Map<String, Value>) {
        if root.get("name").is_none() {
            self.warning(
                "$.name",
                "name-missing",
                "the job has no name: KEEPER_JOB_NAME will be empty".into(),
                "add \"name\": \"A readable name\"",
            );
        }
        if root.get("enabled") == Some(&Value::Bool(false)) {
            self.warning(
                "$.enabled",
                "enabled-false",
                "the job is disabled: the agent will neither schedule nor trigger it".into(),
                "set \"enabled\": true when it should run",
            );
        }
    }
}
