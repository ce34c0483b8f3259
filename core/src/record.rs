//! The KeeperLogger message (docs/kepm-contract.md): validation, sanitizing and the exact bytes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::level::Level;

/// Largest `Message`, in UTF-8 bytes, including the truncation marker. Larger messages are cut
/// at a character boundary and end with [`TRUNCATION_MARKER`], so the operator sees that text
/// is missing instead of the broker or the agent rejecting the whole record.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Largest `Context`, in UTF-8 bytes, including the truncation marker.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;
/// Largest `Source`, `Category` and `CorrelationId`, in UTF-8 bytes, including the marker.
pub const MAX_LABEL_BYTES: usize = 256;
/// Appended to a field that was cut to its cap.
pub const TRUNCATION_MARKER: &str = "…[truncated]";
/// `MetaData.MessageType` of a log record.
pub const MESSAGE_TYPE_LOG: u8 = 4;
/// The topic every log record is published to.
pub const LOG_TOPIC: &str = "KeeperLogger";

/// `MetaData` of a KeeperLogger message, field for field. Serialized in this order with these
/// case-sensitive names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MetaData {
    pub message_type: u8,
    pub log_level: u8,
    pub source: String,
    pub category: String,
    pub message: String,
    pub correlation_id: String,
    pub context: String,
}

/// Borrowing twin of [`MetaData`]: the hot path sanitizes without copying clean fields.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MetaRef<'a> {
    message_type: u8,
    pub(crate) log_level: u8,
    pub(crate) source: Cow<'a, str>,
    pub(crate) category: Cow<'a, str>,
    pub(crate) message: Cow<'a, str>,
    pub(crate) correlation_id: Cow<'a, str>,
    pub(crate) context: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope<'a, M: Serialize> {
    id: &'a str,
    version: u8,
    respond_to_topic: Option<&'a str>,
    meta_data: &'a M,
}

/// Builds the `MetaData` of one record: the single place where every binding's input becomes
/// wire content, so the same call gives the same bytes from any language.
///
/// `\r` and `\n` become spaces in every field (a raw newline would split the operator's log
/// view); fields longer than their cap are cut with [`TRUNCATION_MARKER`]; a `Message` that is
/// empty or only white space after that is [`Error::EmptyMessage`].
pub fn build_metadata(
    level: Level,
    source: &str,
    category: &str,
    message: &str,
    correlation_id: &str,
    context: &str,
) -> Result<MetaData, Error> {
    let m = meta_ref(level, source, category, message, correlation_id, context)?;
    Ok(MetaData {
        message_type: m.message_type,
        log_level: m.log_level,
        source: m.source.into_owned(),
        category: m.category.into_owned(),
        message: m.message.into_owned(),
        correlation_id: m.correlation_id.into_owned(),
        context: m.context.into_owned(),
    })
}

pub(crate) fn meta_ref<'a>(
    level: Level,
    source: &'a str,
    category: &'a str,
    message: &'a str,
    correlation_id: &'a str,
    context: &'a str,
) -> Result<MetaRef<'a>, Error> {
    let message = sanitize(message, MAX_MESSAGE_BYTES);
    if message.trim().is_empty() {
        return Err(Error::EmptyMessage);
    }
    Ok(MetaRef {
        message_type: MESSAGE_TYPE_LOG,
        log_level: level.wire_value(),
        source: sanitize(source, MAX_LABEL_BYTES),
        category: sanitize(category, MAX_LABEL_BYTES),
        message,
        correlation_id: sanitize(correlation_id, MAX_LABEL_BYTES),
        context: sanitize(context, MAX_CONTEXT_BYTES),
    })
}

/// The payload of one publish: exactly one JSON object with a fresh UUID v4 `Id`.
pub fn encode(meta: &MetaData) -> Vec<u8> {
    encode_any(meta)
}

pub(crate) fn encode_ref(meta: &MetaRef<'_>) -> Vec<u8> {
    encode_any(meta)
}

fn encode_any<M: Serialize + FieldLen>(meta: &M) -> Vec<u8> {
    let mut id_buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id_buf);
    let envelope = Envelope {
        id,
        version: 1,
        respond_to_topic: None,
        meta_data: meta,
    };
    // The envelope around the fields is ~170 bytes; sizing for it avoids a reallocation.
    let mut out = Vec::with_capacity(256 + meta.field_len());
    // Writing plain strings and integers into a Vec cannot fail; were it ever to, the empty
    // payload would be refused downstream instead of crashing the caller.
    let _ = serde_json::to_writer(&mut out, &envelope);
    out
}

/// Bytes of the text fields, to size the payload buffer.
/// The five text fields of a record, whichever form it is in (owned or borrowed).
trait FieldLen {
    fn fields(&self) -> [&str; 5];
    fn field_len(&self) -> usize {
        self.fields().iter().map(|f| f.len()).sum()
    }
}

impl FieldLen for MetaData {
    fn fields(&self) -> [&str; 5] {
        let m = self;
        [
            &m.source,
            &m.category,
            &m.message,
            &m.correlation_id,
            &m.context,
        ]
    }
}

impl FieldLen for MetaRef<'_> {
    fn fields(&self) -> [&str; 5] {
        let m = self;
        [
            &m.source,
            &m.category,
            &m.message,
            &m.correlation_id,
            &m.context,
        ]
    }
}

/// Replaces `\r` and `\n` by spaces and cuts to `cap` bytes (marker included) at a char
/// boundary. Borrows when there is nothing to change.
pub fn sanitize(text: &str, cap: usize) -> Cow<'_, str> {
    let needs_replace = memchr::memchr2(b'\r', b'\n', text.as_bytes()).is_some();
    if text.len() <= cap {
        return if needs_replace {
            Cow::Owned(text.replace(['\r', '\n'], " "))
        } else {
            Cow::Borrowed(text)
        };
    }
    let mut end = cap.saturating_sub(TRUNCATION_MARKER.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = if needs_replace {
        text[..end].replace(['\r', '\n'], " ")
    } else {
        text[..end].to_string()
    };
    out.push_str(TRUNCATION_MARKER);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_shape_and_key_order() {
        let meta = build_metadata(
            Level::Info,
            "SecretScanner",
            "SecretsScan",
            "Scan complete: 0 issues detected.",
            "",
            "",
        )
        .unwrap();
        let bytes = encode(&meta);
        let text = String::from_utf8(bytes).unwrap();
        let id_end = text.find("\",\"Version\"").unwrap();
        assert!(text.starts_with("{\"Id\":\""));
        let id = &text[7..id_end];
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(
            &text[id_end..],
            "\",\"Version\":1,\"RespondToTopic\":null,\"MetaData\":{\"MessageType\":4,\"LogLevel\":1,\
             \"Source\":\"SecretScanner\",\"Category\":\"SecretsScan\",\"Message\":\"Scan complete: 0 \
             issues detected.\",\"CorrelationId\":\"\",\"Context\":\"\"}}"
        );
    }

    #[test]
    fn ids_are_fresh() {
        let meta = build_metadata(Level::Debug, "s", "c", "m", "", "").unwrap();
        let a: serde_json::Value = serde_json::from_slice(&encode(&meta)).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&encode(&meta)).unwrap();
        assert_ne!(a["Id"], b["Id"]);
    }

    #[test]
    fn truncation_keeps_char_boundaries_and_cap() {
        let text = "é".repeat(MAX_MESSAGE_BYTES); // 2 bytes each
        let out = sanitize(&text, MAX_MESSAGE_BYTES);
        assert!(out.len() <= MAX_MESSAGE_BYTES);
        assert!(out.ends_with(TRUNCATION_MARKER));
        assert!(out.len() > MAX_MESSAGE_BYTES - TRUNCATION_MARKER.len() - 2);
        let exact = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(sanitize(&exact, MAX_MESSAGE_BYTES), exact);
    }

    #[test]
    fn windows_line_ends_become_spaces_in_every_field() {
        // Windows tools and PowerShell emit "\r\n": each byte becomes a space, like a lone "\n".
        let meta = build_metadata(
            Level::Warning,
            "Tool\r\n",
            "Scan\r\n",
            "line one\r\nline two\r",
            "id\r\n1",
            "C:\\Temp\r\nD:\\x",
        )
        .unwrap();
        assert_eq!(meta.source, "Tool  ");
        assert_eq!(meta.category, "Scan  ");
        assert_eq!(meta.message, "line one  line two ");
        assert_eq!(meta.correlation_id, "id  1");
        assert_eq!(meta.context, "C:\\Temp  D:\\x");
        let text = String::from_utf8(encode(&meta)).unwrap();
        assert!(!text.contains(['\r', '\n']), "{text}");
        assert!(!text.contains("\\r") && !text.contains("\\n"), "{text}");
    }

    #[test]
    fn empty_after_sanitizing_is_an_error() {
        assert_eq!(
            build_metadata(Level::Info, "s", "c", "\r\n \t", "", ""),
            Err(Error::EmptyMessage)
        );
        assert_eq!(
            build_metadata(Level::Info, "s", "c", "", "", ""),
            Err(Error::EmptyMessage)
        );
    }
}
