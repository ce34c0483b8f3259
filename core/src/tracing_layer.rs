//! [`tracing`] support: a [`tracing_subscriber::Layer`] that sends events to KeeperLogger.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::level::Level;
use crate::logger::Logger;
use crate::on_worker::on_worker_thread;

/// The field that names an event's Category instead of its target.
const CATEGORY_FIELD: &str = "category";
/// The field, on an event or a span, whose value is the CorrelationId.
const CORRELATION_FIELD: &str = "correlation_id";
/// What `tracing_log::LogTracer` puts on the events it makes from `log` records: their
/// target is always `log`, the record's own target is this field.
const LOG_TARGET_FIELD: &str = "log.target";

/// A [`tracing_subscriber::Layer`] that sends each event to a kepmlog [`Logger`].
///
/// | tracing | KeeperLogger |
/// |---|---|
/// | `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` | `Verbose`, `Debug`, `Info`, `Warning`, `Error` (`Critical` has no tracing level: use [`Logger::critical`]) |
/// | the `category` field, else the event's target | `Category` |
/// | the `message` field (`info!("x {}", 1)` → `x 1`) | `Message` |
/// | the `correlation_id` field of the event, else of the nearest span that has one, else (with [`with_span_correlation`](Self::with_span_correlation)) the root span's name | `CorrelationId` |
/// | every other field of the event, in order | `Context`, as `key=value` separated by one space |
///
/// A value is written bare unless it is empty or holds white space, `=` or `"`; then it is
/// written in double quotes, with `\` → `\\`, `"` → `\"`, LF → `\n`, CR → `\r`, tab → `\t`
/// (a bare value is never escaped: `path=C:\tmp`). Keys follow the same rule. Strings
/// (`k = "a b"`, `k = %v`) are written as they are, `?v` values as `Debug` writes them:
/// `n=3 user="ann lee" opt="Some(\"x\")"`. An event without a message (`info!(n = 3)`) takes
/// its `key=value` text as its Message and leaves Context empty; one without any text takes
/// the event's name (`event src/main.rs:12`). Events from `log` records
/// (`tracing_log::LogTracer`) use the record's target as their Category and leave out its
/// `log.module_path`, `log.file` and `log.line`.
///
/// Events on kepmlog's own worker thread are ignored (what rustls or ureq log there while
/// kepmlog is delivering must not come back into its queue); other layers still see them.
/// Filter with tracing-subscriber's per-layer filters (`.with_filter(LevelFilter::INFO)`) or a
/// global one: this layer itself takes every level, and does no work for an event that a
/// filter turned away. A record the logger refuses (queue full, shut down) is counted in its
/// [`stats`](Logger::stats), as with [`Logger::log`].
///
/// ```no_run
/// use std::sync::Arc;
/// use tracing_subscriber::prelude::*;
///
/// let logger = Arc::new(kepmlog::Logger::from_env("MyTool")?);
/// tracing_subscriber::registry()
///     .with(kepmlog::TracingLayer::new(logger.clone()).with_span_correlation(true))
///     .init();
///
/// let _run = tracing::info_span!("scan", correlation_id = "run-42").entered();
/// tracing::info!(target: "Scan", files = 18, "scan started in {}", "/opt/app");
/// // Info, Category "Scan", Message "scan started in /opt/app",
/// // CorrelationId "run-42", Context "files=18"
/// logger.shutdown(std::time::Duration::from_secs(5))?;
/// # Ok::<(), kepmlog::Error>(())
/// ```
pub struct TracingLayer {
    logger: Arc<Logger>,
    span_correlation: bool,
    /// Set once a span with a `correlation_id` has been seen: until then an event needs no
    /// walk up its spans unless span names are asked for.
    correlation_spans: AtomicBool,
}

/// A span's `correlation_id`, kept in its extensions.
struct SpanCorrelation(String);

/// One event, translated.
#[derive(Debug, PartialEq, Eq)]
struct Translated {
    level: Level,
    /// Borrowed: the target, the usual case, costs no copy.
    category: Cow<'static, str>,
    message: String,
    correlation_id: String,
    context: String,
}

impl TracingLayer {
    pub fn new(logger: Arc<Logger>) -> TracingLayer {
        TracingLayer {
            logger,
            span_correlation: false,
            correlation_spans: AtomicBool::new(false),
        }
    }

    /// With `true`, an event that has no `correlation_id` (on itself or on one of its spans)
    /// gets the name of its root span, the outermost one it is in, as its CorrelationId:
    /// every record of one unit of work (`info_span!("scan")`) shares it, however deep the
    /// span it is logged in. Off by default: CorrelationId is then `""` for such events.
    pub fn with_span_correlation(mut self, on: bool) -> TracingLayer {
        self.span_correlation = on;
        self
    }

    /// The kepmlog level for a tracing level.
    pub fn level_for(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::TRACE => Level::Verbose,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::ERROR => Level::Error,
        }
    }

    fn translate<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> Translated
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let category = match (fields.category, fields.log_target) {
            (Some(c), _) => Cow::Owned(c),
            (None, Some(t)) => Cow::Owned(t),
            (None, None) => Cow::Borrowed(meta.target()),
        };
        let correlation_id = match fields.correlation_id {
            Some(c) => c,
            None => self.span_correlation_of(event, ctx).into_owned(),
        };
        let (message, context) = if !fields.message.trim().is_empty() {
            (fields.message, fields.context)
        } else if !fields.context.trim().is_empty() {
            (fields.context, String::new())
        } else {
            (meta.name().to_string(), String::new())
        };
        Translated {
            level: Self::level_for(meta.level()),
            category,
            message,
            correlation_id,
            context,
        }
    }

    fn span_correlation_of<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> Cow<'static, str>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let stored = self.correlation_spans.load(Ordering::Relaxed);
        if !stored && !self.span_correlation {
            return Cow::Borrowed("");
        }
        // The scope honours per-layer filters: a span this layer's filter turned away is
        // not in it.
        let Some(scope) = ctx.event_scope(event) else {
            return Cow::Borrowed("");
        };
        let mut root = "";
        for span in scope {
            if stored {
                if let Some(c) = span.extensions().get::<SpanCorrelation>() {
                    return Cow::Owned(c.0.clone());
                }
            }
            root = span.name();
        }
        if self.span_correlation {
            Cow::Borrowed(root)
        } else {
            Cow::Borrowed("")
        }
    }

    fn store_correlation<S>(&self, id: &Id, value: String, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            match ext.get_mut::<SpanCorrelation>() {
                Some(c) => c.0 = value,
                None => ext.insert(SpanCorrelation(value)),
            }
            self.correlation_spans.store(true, Ordering::Relaxed);
        }
    }
}

impl<S> Layer<S> for TracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // Only spans that declare the field pay for a visit.
        if on_worker_thread() || attrs.metadata().fields().field(CORRELATION_FIELD).is_none() {
            return;
        }
        let mut v = CorrelationField(None);
        attrs.record(&mut v);
        if let Some(value) = v.0 {
            self.store_correlation(id, value, &ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // `info_span!("x", correlation_id = Empty)` then `span.record("correlation_id", ..)`.
        if on_worker_thread() {
            return;
        }
        let field = ctx
            .metadata(id)
            .and_then(|m| m.fields().field(CORRELATION_FIELD));
        if !field.is_some_and(|f| values.contains(&f)) {
            return;
        }
        let mut v = CorrelationField(None);
        values.record(&mut v);
        if let Some(value) = v.0 {
            self.store_correlation(id, value, &ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if on_worker_thread() {
            return;
        }
        let t = self.translate(event, &ctx);
        // A dropped record has no better place to be reported than the stats.
        let _ = self.logger.log_with(
            t.level,
            &t.category,
            &t.message,
            &t.correlation_id,
            &t.context,
        );
    }
}

/// Reads a span's `correlation_id` (string, `%display` or `?debug`).
struct CorrelationField(Option<String>);

impl Visit for CorrelationField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == CORRELATION_FIELD {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == CORRELATION_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// An event's fields, sorted into the record's parts.
#[derive(Default)]
struct EventFields {
    message: String,
    category: Option<String>,
    correlation_id: Option<String>,
    log_target: Option<String>,
    context: String,
}

impl EventFields {
    /// Where a field goes: `None` for the ones left out.
    fn slot(&mut self, name: &str) -> Option<Slot<'_>> {
        match name {
            "message" => Some(Slot::Text(&mut self.message)),
            CATEGORY_FIELD => Some(Slot::Text(self.category.get_or_insert_with(String::new))),
            CORRELATION_FIELD => Some(Slot::Text(
                self.correlation_id.get_or_insert_with(String::new),
            )),
            LOG_TARGET_FIELD => Some(Slot::Text(self.log_target.get_or_insert_with(String::new))),
            "log.module_path" | "log.file" | "log.line" => None,
            key => {
                if !self.context.is_empty() {
                    self.context.push(' ');
                }
                push_token(&mut self.context, key);
                self.context.push('=');
                Some(Slot::Value(&mut self.context))
            }
        }
    }
}

enum Slot<'a> {
    /// Taken as it is (a repeated field: the last one wins).
    Text(&'a mut String),
    /// Appended to the context under the quoting rule.
    Value(&'a mut String),
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.slot(field.name()) {
            Some(Slot::Text(s)) => {
                s.clear();
                s.push_str(value);
            }
            Some(Slot::Value(s)) => push_token(s, value),
            None => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match self.slot(field.name()) {
            Some(Slot::Text(s)) => {
                s.clear();
                // Writing to a String cannot fail.
                let _ = write!(s, "{value:?}");
            }
            Some(Slot::Value(s)) => {
                let text = format!("{value:?}");
                push_token(s, &text);
            }
            None => {}
        }
    }
}

/// Appends a key or a value under the quoting rule of [`TracingLayer`]'s docs.
fn push_token(out: &mut String, token: &str) {
    let bare = !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c == '"');
    if bare {
        out.push_str(token);
        return;
    }
    out.reserve(token.len() + 2);
    out.push('"');
    for c in token.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Registry;

    fn token(s: &str) -> String {
        let mut out = String::new();
        push_token(&mut out, s);
        out
    }

    #[test]
    fn tokens_are_bare_unless_they_need_quotes() {
        assert_eq!(token("abc"), "abc");
        assert_eq!(token(r"C:\tmp"), r"C:\tmp");
        assert_eq!(token("/opt/app"), "/opt/app");
        assert_eq!(token(""), r#""""#);
        assert_eq!(token("a b"), r#""a b""#);
        assert_eq!(token("a=b"), r#""a=b""#);
        assert_eq!(token(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(token(r#"a\b c"#), r#""a\\b c""#);
        assert_eq!(token("l1\nl2\r\tx"), r#""l1\nl2\r\tx""#);
        assert_eq!(token("été"), "été");
        assert_eq!(
            token("a\u{2003}b"),
            "\"a\u{2003}b\"",
            "any white space quotes"
        );
    }

    #[test]
    fn levels_map_onto_five_of_the_six() {
        let l = |t| TracingLayer::level_for(&t);
        assert_eq!(l(tracing::Level::TRACE), Level::Verbose);
        assert_eq!(l(tracing::Level::DEBUG), Level::Debug);
        assert_eq!(l(tracing::Level::INFO), Level::Info);
        assert_eq!(l(tracing::Level::WARN), Level::Warning);
        assert_eq!(l(tracing::Level::ERROR), Level::Error);
    }

    /// The layer's translation, caught before it reaches the logger.
    struct Probe(TracingLayer, Arc<Mutex<Vec<Translated>>>);

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Probe {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            self.0.on_new_span(attrs, id, ctx);
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            self.0.on_record(id, values, ctx);
        }
        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            if let Ok(mut out) = self.1.lock() {
                out.push(self.0.translate(event, &ctx));
            }
        }
    }

    fn translated(span_correlation: bool, f: impl FnOnce()) -> Vec<Translated> {
        // Never used: records go to the probe. A stderr logger needs no broker.
        let logger = Logger::new(
            crate::Options::new("Unit")
                .job_id("")
                .fallback(crate::Fallback::Stderr)
                .args(Vec::<String>::new()),
        )
        .unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let layer = TracingLayer::new(Arc::new(logger)).with_span_correlation(span_correlation);
        let subscriber = Registry::default().with(Probe(layer, out.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let got = std::mem::take(&mut *out.lock().unwrap());
        got
    }

    fn t(level: Level, category: &str, message: &str, corr: &str, ctx: &str) -> Translated {
        Translated {
            level,
            category: Cow::Owned(category.to_string()),
            message: message.into(),
            correlation_id: corr.into(),
            context: ctx.into(),
        }
    }

    #[test]
    fn fields_become_category_message_and_context() {
        #[derive(Debug)]
        struct Opt {
            #[allow(dead_code)] // read by Debug only
            name: &'static str,
        }
        let mut line = 0;
        let got = translated(false, || {
            tracing::info!(target: "Scan", "x {}", 1);
            tracing::warn!(target: "Scan", category = "Phase 2", files = 18, user = "ann lee", "done");
            tracing::error!(
                target: "Scan",
                ok = true,
                ratio = 0.5,
                path = %"/opt/app",
                opt = ?Opt { name: "x" },
                text = ?"q",
                "failed"
            );
            tracing::debug!(target: "Scan", n = 3, empty = "");
            line = line!() + 1;
            tracing::trace!(target: "Scan", "");
        });
        assert_eq!(
            got,
            vec![
                t(Level::Info, "Scan", "x 1", "", ""),
                t(
                    Level::Warning,
                    "Phase 2",
                    "done",
                    "",
                    r#"files=18 user="ann lee""#
                ),
                t(
                    Level::Error,
                    "Scan",
                    "failed",
                    "",
                    r#"ok=true ratio=0.5 path=/opt/app opt="Opt { name: \"x\" }" text="\"q\"""#
                ),
                t(Level::Debug, "Scan", r#"n=3 empty="""#, "", ""),
                t(
                    Level::Verbose,
                    "Scan",
                    &format!("event {}:{line}", file!()),
                    "",
                    ""
                ),
            ]
        );
    }

    #[test]
    fn the_target_is_the_category_without_a_field() {
        let got = translated(false, || tracing::info!("plain"));
        assert_eq!(got[0].category, module_path!());
    }

    #[test]
    fn correlation_comes_from_the_event_then_spans_then_the_root_name() {
        let run = || {
            tracing::info!(target: "C", "outside");
            let _root = tracing::info_span!("scan").entered();
            tracing::info!(target: "C", "in root");
            {
                let _inner = tracing::info_span!("file", correlation_id = "run-42").entered();
                tracing::info!(target: "C", "in inner");
                tracing::info!(target: "C", correlation_id = "own", "own id");
                let _deeper = tracing::info_span!("parse").entered();
                tracing::info!(target: "C", "deeper");
            }
            let later = tracing::info_span!("late", correlation_id = tracing::field::Empty);
            later.record("correlation_id", "set-later");
            later.in_scope(|| tracing::info!(target: "C", "recorded later"));
        };
        let corr = |v: Vec<Translated>| -> Vec<String> {
            v.into_iter().map(|t| t.correlation_id).collect()
        };
        assert_eq!(
            corr(translated(true, run)),
            ["", "scan", "run-42", "own", "run-42", "set-later"]
        );
        assert_eq!(
            corr(translated(false, run)),
            ["", "", "run-42", "own", "run-42", "set-later"]
        );
    }

    #[test]
    fn worker_threads_are_ignored_but_other_layers_see_them() {
        let seen = Arc::new(Mutex::new(0usize));
        struct Count(Arc<Mutex<usize>>);
        impl<S: Subscriber> Layer<S> for Count {
            fn on_event(&self, _e: &Event<'_>, _c: Context<'_, S>) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let logger = Arc::new(
            Logger::new(
                crate::Options::new("Unit")
                    .job_id("")
                    .fallback(crate::Fallback::Stderr)
                    .args(Vec::<String>::new()),
            )
            .unwrap(),
        );
        let subscriber = Registry::default()
            .with(TracingLayer::new(logger.clone()))
            .with(Count(seen.clone()));
        let dispatch = tracing::Dispatch::new(subscriber);
        std::thread::spawn(move || {
            crate::on_worker::mark_worker_thread();
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(target: "Worker", "from the worker");
            });
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), 1, "the other layer saw it");
        assert_eq!(logger.stats().printed, 0, "kepmlog did not take it");
    }
}
