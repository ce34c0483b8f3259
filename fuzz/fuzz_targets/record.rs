//! Record building and sanitizing: `kepmlog::build_metadata` and `kepmlog::encode` with
//! arbitrary fields. Each field is a fragment repeated up to a few thousand times, so inputs
//! of a few bytes reach the 16 KiB and 256-byte caps.
//!
//! Invariants: `build_metadata` fails only with `EmptyMessage`, exactly when the sanitized
//! message is empty or white space; every field equals an independent model of the rules
//! (tests/vectors/generate.py: CR and LF become spaces, a field over its cap is cut at a char
//! boundary to at most cap bytes including the marker); `encode` gives one JSON object with
//! the keys in wire order, a UUID v4 `Id`, no raw or escaped CR/LF, whose `MetaData` parses
//! back to the same record.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use kepmlog::record::{MAX_CONTEXT_BYTES, MAX_LABEL_BYTES, MAX_MESSAGE_BYTES, TRUNCATION_MARKER};
use kepmlog::{build_metadata, encode, ErrorKind, Level, MetaData};

#[derive(Arbitrary, Debug)]
struct Field {
    fragment: String,
    repeat: u16,
}

impl Field {
    /// The fragment repeated, up to about `limit` bytes: past the field's cap, still fast.
    fn text(&self, limit: usize) -> String {
        let times = usize::from(self.repeat % 2048).max(1);
        let times = times.min(limit / self.fragment.len().max(1)).max(1);
        self.fragment.repeat(times)
    }
}

/// Fields are built up to about this size: a little past their caps.
const LABEL_LIMIT: usize = 4 * MAX_LABEL_BYTES;
const TEXT_LIMIT: usize = MAX_MESSAGE_BYTES + 4096;

#[derive(Arbitrary, Debug)]
struct Input {
    level: u8,
    source: Field,
    category: Field,
    message: Field,
    correlation_id: Field,
    context: Field,
}

/// generate.py's `cut`, char by char: independent of `kepmlog::record::sanitize`.
fn model(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.replace(['\r', '\n'], " ");
    }
    let budget = cap - TRUNCATION_MARKER.len();
    let mut out = String::new();
    for ch in text.chars() {
        if out.len() + ch.len_utf8() > budget {
            break;
        }
        out.push(if ch == '\r' || ch == '\n' { ' ' } else { ch });
    }
    out.push_str(TRUNCATION_MARKER);
    out
}

fn check_field(name: &str, got: &str, input: &str, cap: usize) {
    assert_eq!(got, model(input, cap), "{name}");
    assert!(
        got.len() <= cap,
        "{name}: {} bytes over the cap {cap}",
        got.len()
    );
    assert!(!got.contains(['\r', '\n']), "{name} has CR or LF");
    if input.len() > cap {
        assert!(
            got.ends_with(TRUNCATION_MARKER),
            "{name} cut without the marker"
        );
    }
}

fn check_uuid_v4(id: &str) {
    let b = id.as_bytes();
    assert_eq!(b.len(), 36, "Id {id:?}");
    for (i, c) in b.iter().enumerate() {
        match i {
            8 | 13 | 18 | 23 => assert_eq!(*c, b'-', "Id {id:?}"),
            14 => assert_eq!(*c, b'4', "Id {id:?} is not version 4"),
            19 => assert!(b"89ab".contains(c), "Id {id:?} is not RFC 4122"),
            _ => assert!(
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
                "Id {id:?}"
            ),
        }
    }
}

fuzz_target!(|input: Input| {
    let level = Level::ALL[usize::from(input.level) % Level::ALL.len()];
    let (source, category, message, correlation_id, context) = (
        input.source.text(LABEL_LIMIT),
        input.category.text(LABEL_LIMIT),
        input.message.text(TEXT_LIMIT),
        input.correlation_id.text(LABEL_LIMIT),
        input.context.text(TEXT_LIMIT),
    );
    let result = build_metadata(
        level,
        &source,
        &category,
        &message,
        &correlation_id,
        &context,
    );
    let expected_message = model(&message, MAX_MESSAGE_BYTES);
    let meta = match result {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::EmptyMessage, "unexpected error: {e}");
            assert!(
                expected_message.trim().is_empty(),
                "refused {message:?}: {e}"
            );
            return;
        }
        Ok(meta) => meta,
    };
    assert!(
        !expected_message.trim().is_empty(),
        "accepted an empty message"
    );
    assert_eq!(meta.message_type, 4);
    assert_eq!(meta.log_level, level.wire_value());
    check_field("Source", &meta.source, &source, MAX_LABEL_BYTES);
    check_field("Category", &meta.category, &category, MAX_LABEL_BYTES);
    check_field("Message", &meta.message, &message, MAX_MESSAGE_BYTES);
    check_field(
        "CorrelationId",
        &meta.correlation_id,
        &correlation_id,
        MAX_LABEL_BYTES,
    );
    check_field("Context", &meta.context, &context, MAX_CONTEXT_BYTES);

    let bytes = encode(&meta);
    let text = std::str::from_utf8(&bytes).expect("payload is not UTF-8");
    assert!(!text.contains(['\r', '\n']), "raw CR/LF in the payload");
    let value: serde_json::Value = serde_json::from_str(text).expect("payload is not JSON");
    let obj = value.as_object().expect("payload is not an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys, ["Id", "Version", "RespondToTopic", "MetaData"]);
    check_uuid_v4(obj["Id"].as_str().expect("Id is not a string"));
    assert_eq!(obj["Version"], 1);
    assert!(obj["RespondToTopic"].is_null());
    let meta_keys: Vec<&str> = obj["MetaData"]
        .as_object()
        .expect("MetaData is not an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        meta_keys,
        [
            "MessageType",
            "LogLevel",
            "Source",
            "Category",
            "Message",
            "CorrelationId",
            "Context"
        ]
    );
    let back: MetaData = serde_json::from_value(obj["MetaData"].clone()).expect("MetaData");
    assert_eq!(back, meta);
});
