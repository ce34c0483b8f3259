//! The checked-in JSON Schemas, `schemas/job.schema.json` and
//! `schemas/keeperlogger.schema.json`, embedded and compiled once. They hold the structural
//! rules (keys, types, ranges); the semantic rules stay in Rust (lint's rule families,
//! [`crate::schema`]).

use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::Value;

/// A schema document and its compiled validator.
pub(crate) struct Schema {
    pub doc: Value,
    pub validator: Validator,
}

fn compile(name: &str, text: &str) -> Result<Schema, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("the embedded {name} is not JSON: {e}"))?;
    let validator = jsonschema::draft202012::new(&doc)
        .map_err(|e| format!("the embedded {name} is not a valid JSON Schema: {e}"))?;
    Ok(Schema { doc, validator })
}

static JOB: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    compile(
        "schemas/job.schema.json",
        include_str!("../../schemas/job.schema.json"),
    )
});

static KEEPER_LOGGER: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    compile(
        "schemas/keeperlogger.schema.json",
        include_str!("../../schemas/keeperlogger.schema.json"),
    )
});

/// The job file schema. `Err` only if the embedded file is broken (a build of this crate
/// with a bad schema; the tests catch it), reported instead of panicking.
pub(crate) fn job() -> Result<&'static Schema, &'static str> {
    JOB.as_ref().map_err(String::as_str)
}

/// The KeeperLogger message schema (see [`job`] for `Err`).
pub(crate) fn keeper_logger() -> Result<&'static Schema, &'static str> {
    KEEPER_LOGGER.as_ref().map_err(String::as_str)
}

/// The reference tokens of a JSON pointer: `/tasks/0/a~1b` -> `["tasks", "0", "a/b"]`.
pub(crate) fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// The subschema that holds the keyword an error points at: `schema_path` without its last
/// token (`/properties/tasks/items/properties/command/type` -> the `command` subschema).
pub(crate) fn keyword_owner<'a>(doc: &'a Value, schema_path: &str) -> Option<&'a Value> {
    let cut = schema_path.rfind('/')?;
    doc.pointer(&schema_path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemas_compile_and_document_every_property() {
        for (name, schema) in [("job", job()), ("keeperlogger", keeper_logger())] {
            let schema = schema.unwrap_or_else(|e| panic!("{e}"));
            let mut missing = Vec::new();
            documented(&schema.doc, "", &mut missing);
            assert!(
                missing.is_empty(),
                "{name}: no title/description at {missing:?}"
            );
        }
    }

    /// Every property (at any depth) needs a title and a description, so editors show help.
    fn documented(v: &Value, at: &str, missing: &mut Vec<String>) {
        let Some(obj) = v.as_object() else { return };
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                let here = format!("{at}/{k}");
                if p.get("title").is_none() || p.get("description").is_none() {
                    missing.push(here.clone());
                }
                documented(p, &here, missing);
            }
        }
        if let Some(items) = obj.get("items") {
            documented(items, &format!("{at}[]"), missing);
        }
    }

    #[test]
    fn pointers() {
        assert_eq!(segments(""), Vec::<String>::new());
        assert_eq!(segments("/tasks/0/a~1b~0c"), ["tasks", "0", "a/b~c"]);
        let doc = serde_json::json!({"properties": {"a": {"type": "string"}}});
        assert_eq!(
            keyword_owner(&doc, "/properties/a/type"),
            Some(&serde_json::json!({"type": "string"}))
        );
    }
}
