#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! `TracingLayer` (feature `tracing`) against a real Mosquitto over TLS: what `tracing::info!`
//! and friends put on the wire, per-layer filters, and the worker guard.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kepmlog::{Level, Logger, Options, TracingLayer};
use serde_json::{json, Value};
use tracing::Subscriber;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

mod common;
use common::*;

/// Runs `f` with `layer` as this thread's only subscriber (other tests of this binary run
/// beside it with their own).
fn with_layer<L: Layer<Registry> + Send + Sync + 'static>(layer: L, f: impl FnOnce()) {
    tracing::subscriber::with_default(Registry::default().with(layer), f);
}

fn metadata(level: u8, category: &str, message: &str, corr: &str, context: &str) -> Value {
    json!({
        "MessageType": 4,
        "LogLevel": level,
        "Source": "E2ETool",
        "Category": category,
        "Message": message,
        "CorrelationId": corr,
        "Context": context,
    })
}

fn delivered_metadata(agent: &kepm_devagent::DevAgent, log: &Logger, n: usize) -> Vec<Value> {
    log.flush(LONG).unwrap();
    assert_eq!(log.stats().accepted, n as u64, "{:?}", log.stats());
    let got = payloads(agent, "KeeperLogger", n);
    assert_eq!(got.len(), n);
    for v in &got {
        assert_eq!(v["Version"], 1);
        assert_eq!(v["RespondToTopic"], Value::Null);
    }
    got.into_iter().map(|v| v["MetaData"].clone()).collect()
}

#[test]
fn each_level_puts_its_exact_metadata_on_the_wire() {
    let agent = agent();
    let log = Arc::new(Logger::new(opts(&agent, "tracing-levels")).unwrap());
    with_layer(TracingLayer::new(log.clone()), || {
        tracing::trace!(target: "Scan", "trace record");
        tracing::debug!(target: "Scan", "debug record");
        tracing::info!(target: "Scan", "info record");
        tracing::warn!(target: "Scan", "warn record");
        tracing::error!(target: "Scan", "error record");
    });
    assert_eq!(
        delivered_metadata(&agent, &log, 5),
        vec![
            metadata(5, "Scan", "trace record", "", ""),
            metadata(0, "Scan", "debug record", "", ""),
            metadata(1, "Scan", "info record", "", ""),
            metadata(2, "Scan", "warn record", "", ""),
            metadata(3, "Scan", "error record", "", ""),
        ]
    );
    log.shutdown(LONG).unwrap();
}

#[test]
fn category_message_context_and_correlation_reach_the_wire() {
    let agent = agent();
    let log = Arc::new(Logger::new(opts(&agent, "tracing-fields")).unwrap());
    let layer = TracingLayer::new(log.clone()).with_span_correlation(true);
    with_layer(layer, || {
        tracing::info!("from the module path");
        tracing::info!(target: "Scan", category = "Phase 2", "category field wins");
        tracing::warn!(
            target: "Scan",
            path = "/opt/app",
            files = 18,
            user = "ann lee",
            eq = "a=b",
            quoted = r#"say "hi""#,
            flag = ?Some(true),
            "checked {} files in {}",
            18,
            "/opt/app"
        );
        tracing::info!(target: "Scan", n = 3);
        let _scan = tracing::info_span!("scan").entered();
        tracing::info!(target: "Scan", "root span name");
        let _file = tracing::info_span!("file", correlation_id = "run-42").entered();
        tracing::info!(target: "Scan", "span field");
        tracing::info!(target: "Scan", correlation_id = "own", "event field");
    });
    assert_eq!(
        delivered_metadata(&agent, &log, 7),
        vec![
            metadata(1, "tracing", "from the module path", "", ""),
            metadata(1, "Phase 2", "category field wins", "", ""),
            metadata(
                2,
                "Scan",
                "checked 18 files in /opt/app",
                "",
                r#"path=/opt/app files=18 user="ann lee" eq="a=b" quoted="say \"hi\"" flag=Some(true)"#
            ),
            metadata(1, "Scan", "n=3", "", ""),
            metadata(1, "Scan", "root span name", "scan", ""),
            metadata(1, "Scan", "span field", "run-42", ""),
            metadata(1, "Scan", "event field", "own", ""),
        ]
    );
    log.shutdown(LONG).unwrap();
}

#[test]
fn per_layer_filters_decide_what_the_layer_sees() {
    let agent = agent();
    let log = Arc::new(Logger::new(opts(&agent, "tracing-filter")).unwrap());
    let seen_by_other = Arc::new(AtomicUsize::new(0));
    let kepm = TracingLayer::new(log.clone())
        .with_span_correlation(true)
        .with_filter(LevelFilter::INFO)
        .with_filter(filter_fn(|m| m.name() != "hidden"));
    let subscriber = Registry::default()
        .with(kepm)
        .with(Count(seen_by_other.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(target: "F", "below the layer's level");
        tracing::info!(target: "F", "kept");
        let _hidden = tracing::info_span!("hidden").entered();
        tracing::info!(target: "F", "in a span the filter hides");
        let _shown = tracing::info_span!("shown").entered();
        tracing::info!(target: "F", "in a shown span under it");
    });
    assert_eq!(
        seen_by_other.load(Ordering::SeqCst),
        4,
        "the other layer saw all"
    );
    assert_eq!(
        delivered_metadata(&agent, &log, 3),
        vec![
            metadata(1, "F", "kept", "", ""),
            metadata(1, "F", "in a span the filter hides", "", ""),
            metadata(1, "F", "in a shown span under it", "shown", ""),
        ]
    );
    log.shutdown(LONG).unwrap();
}

/// Counts every event it sees.
struct Count(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for Count {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Emits one vector through tracing: the level must be a constant of the macro.
macro_rules! vector_event {
    ($level:expr, $($rest:tt)*) => {
        match $level {
            Level::Verbose => tracing::trace!($($rest)*),
            Level::Debug => tracing::debug!($($rest)*),
            Level::Info => tracing::info!($($rest)*),
            Level::Warning => tracing::warn!($($rest)*),
            Level::Error => tracing::error!($($rest)*),
            Level::Critical => unreachable!("tracing has no Critical"),
        }
    };
}

/// The shared vectors that tracing can express: not Critical (no tracing level), not the
/// empty messages (the layer never drops an event: it takes the event's name instead), and
/// contexts that are empty or one `path=...` field.
#[test]
fn vectors_put_the_expected_metadata_on_the_wire() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/records.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let agent = agent();
    let mut o = opts(&agent, "tracing-vectors")
        .default_category(doc["logger"]["default_category"].as_str().unwrap());
    o.source = Some(doc["logger"]["source"].as_str().unwrap().to_string());
    let log = Arc::new(Logger::new(o).unwrap());
    let mut expected = Vec::new();
    let mut skipped = Vec::new();
    with_layer(TracingLayer::new(log.clone()), || {
        for case in doc["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let input = &case["input"];
            let level = Level::from_wire(input["level"].as_i64().unwrap()).unwrap();
            let s = |k: &str| input[k].as_str().unwrap().to_string();
            let (category, message, corr, context) = (
                s("category"),
                s("message"),
                s("correlation_id"),
                s("context"),
            );
            if level == Level::Critical || case.get("error").is_some() {
                skipped.push(name.to_string());
                continue;
            }
            if context.is_empty() {
                vector_event!(level, target: "V", category = category.as_str(),
                    correlation_id = corr.as_str(), "{}", message);
            } else if let Some(path) = context.strip_prefix("path=") {
                vector_event!(level, target: "V", category = category.as_str(),
                    correlation_id = corr.as_str(), path, "{}", message);
            } else {
                skipped.push(name.to_string());
                continue;
            }
            expected.push((name.to_string(), case["expect"].clone()));
        }
    });
    assert!(expected.len() >= 20, "{} vectors used", expected.len());
    assert!(
        expected
            .iter()
            .any(|(_, e)| e["Context"] == "path=/opt/app"),
        "the context vector is one of them"
    );
    log.flush(LONG).unwrap();
    let got = payloads(&agent, "KeeperLogger", expected.len());
    assert_eq!(got.len(), expected.len(), "skipped: {skipped:?}");
    for ((name, want), got) in expected.iter().zip(&got) {
        assert_eq!(&got["MetaData"], want, "vector {name:?}");
    }
    log.shutdown(LONG).unwrap();
}

const GUARD_CHILD_ENV: &str = "KEPMLOG_TRACING_GUARD_API_BASE";
const GUARD_CHILD_OK: &str = "guard child: ok";

/// A process-wide subscriber with the layer and `tracing_log::LogTracer` turns what rustls
/// and ureq log on kepmlog's worker into tracing events. Without the guard they would come
/// back into the logger's queue, and each record's delivery would log more. It runs in a
/// process of its own: the global subscriber must not see this binary's other tests, nor the
/// devagent's threads, whose TLS libraries log too.
#[test]
fn worker_diagnostics_never_come_back_through_the_layer() {
    let agent = agent();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "guard_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(GUARD_CHILD_ENV, agent.api_base())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(GUARD_CHILD_OK),
        "child: {}\n{stdout}\n{stderr}",
        out.status
    );
    let got = payloads(&agent, "KeeperLogger", 2);
    let mine: Vec<&Value> = got
        .iter()
        .map(|v| &v["MetaData"])
        .filter(|m| m["Source"] == "GuardTool")
        .collect();
    assert_eq!(mine.len(), 1, "{got:?}");
    assert_eq!(mine[0]["Category"], "Guard");
    assert_eq!(mine[0]["Message"], "from the tool");
}

#[test]
#[ignore = "run in a process of its own by worker_diagnostics_never_come_back_through_the_layer"]
fn guard_child() {
    let Ok(api_base) = std::env::var(GUARD_CHILD_ENV) else {
        return;
    };
    let options = |source: &str, token: &str| {
        Options::new(source)
            .job_id("guard-job")
            .token(token)
            .api_base(api_base.clone())
            .args(Vec::<String>::new())
    };
    let tool = Arc::new(Logger::new(options("GuardTool", "guard")).unwrap());
    let on_worker = Arc::new(AtomicUsize::new(0));
    let subscriber = Registry::default()
        .with(TracingLayer::new(tool.clone()).with_span_correlation(true))
        .with(WorkerEvents(on_worker.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // `LogTracer::init` needs tracing-log's std feature, which would turn on log's for the
    // whole workspace (see core/Cargo.toml): install it by hand.
    tracing_log::log::set_logger(Box::leak(Box::new(tracing_log::LogTracer::new()))).unwrap();
    tracing_log::log::set_max_level(tracing_log::log::LevelFilter::Trace);
    // Another client id: another worker, whose settings request and TLS handshake all happen
    // under the subscriber.
    let other = Logger::new(options("OtherTool", "guardother")).unwrap();
    other.info("Other", "from the other logger").unwrap();
    other.flush(LONG).unwrap();
    tracing::info!(target: "Guard", "from the tool");
    tool.flush(LONG).unwrap();
    assert!(
        on_worker.load(Ordering::SeqCst) > 0,
        "the worker's libraries logged nothing: the guard was not exercised"
    );
    let s = tool.stats();
    assert_eq!((s.accepted, s.delivered), (1, 1), "{s:?}");
    other.shutdown(LONG).unwrap();
    tool.shutdown(LONG).unwrap();
    println!("{GUARD_CHILD_OK}");
}

/// Counts the events logged on kepmlog's worker threads (named by the library).
struct WorkerEvents(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for WorkerEvents {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if std::thread::current().name() == Some("kepmlog-worker") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
