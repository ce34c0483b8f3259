//! Plugin Settings (`GET /api/PluginSettings/KeeperPrivilegeManager`, Plugin tier) and its
//! fault modes: the answers a job task must survive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::{json_response, App, Conn};
use crate::config::SettingsMode;
use crate::trust::Registry;

/// Where a job falls back to when Plugin Settings discovery fails (see docs/kepm-contract.md).
pub const FALLBACK_BROKER: &str = "127.0.0.1:8675";
/// The path a job task calls (matched case-insensitively, like ASP.NET routing).
pub const SETTINGS_PATH: &str = "/api/PluginSettings/KeeperPrivilegeManager";
/// The broker host of [`SettingsMode::NonLoopbackBroker`] (`.invalid` never resolves).
pub const NON_LOOPBACK_BROKER: &str = "broker.example.invalid";

pub(crate) struct SettingsShared {
    pub mode: Mutex<SettingsMode>,
    pub requests: AtomicUsize,
    pub answers: AtomicUsize,
    pub broker_port: u16,
    pub wrong_port: u16,
    /// Plugin Settings is a Plugin-tier endpoint: only trusted processes read it.
    pub registry: Arc<Registry>,
}

impl SettingsShared {
    pub(super) fn mode(&self) -> SettingsMode {
        self.mode.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Everything the router has no route for: Plugin Settings (matched without regard to case,
/// which a route cannot do) or 404.
pub(super) async fn fallback(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    method: Method,
    uri: Uri,
) -> Response {
    if !uri.path().eq_ignore_ascii_case(SETTINGS_PATH) {
        return json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not found"}),
        );
    }
    let shared = &app.settings;
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if method != Method::GET {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "method not allowed"}),
        );
    }
    if let Err(refused) = shared.registry.admit_request(conn.peer, conn.local) {
        shared.answers.fetch_add(1, Ordering::SeqCst);
        return json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({
                "error": "Forbidden",
                "detail": refused.detail,
                "fix": refused.fix,
            }),
        );
    }
    let mode = shared.mode();
    if let SettingsMode::Delay(d) = mode {
        // Async sleep: a delayed answer holds up no other connection.
        tokio::time::sleep(d).await;
    }
    let (status, ctype, body) = settings_response(shared, &mode);
    shared.answers.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(axum::http::header::CONTENT_TYPE, ctype)], body).into_response()
}

/// The settings answer of `mode`: (status, content type, body).
pub(super) fn settings_response(
    shared: &SettingsShared,
    mode: &SettingsMode,
) -> (u16, &'static str, String) {
    let answer = |host: serde_json::Value, port: serde_json::Value| {
        // The two keys the vendor documents, and nothing invented beside them.
        serde_json::json!({
            "broker.host": host,
            "broker.port": port,
        })
        .to_string()
    };
    let ok = |port: serde_json::Value| answer("127.0.0.1".into(), port);
    match mode {
        SettingsMode::Ok
        | SettingsMode::Hang
        | SettingsMode::Plaintext
        | SettingsMode::OtherCaCert
        | SettingsMode::Delay(_) => (200, "application/json", ok(shared.broker_port.into())),
        SettingsMode::PortAsString => (
            200,
            "application/json",
            ok(shared.broker_port.to_string().into()),
        ),
        SettingsMode::WrongPort => (200, "application/json", ok(shared.wrong_port.into())),
        SettingsMode::MissingKeys => (200, "application/json", "{}".to_string()),
        SettingsMode::Garbage => (200, "text/html", "<html>not json</html>".to_string()),
        SettingsMode::WrongTypes => (200, "application/json", answer(127001.into(), true.into())),
        SettingsMode::PortOutOfRange => (200, "application/json", ok(70000.into())),
        SettingsMode::NonLoopbackBroker => (
            200,
            "application/json",
            answer(NON_LOOPBACK_BROKER.into(), shared.broker_port.into()),
        ),
        SettingsMode::Status(code) => (
            *code,
            "application/json",
            serde_json::json!({
                "error": reason(*code),
                "detail": "kepm-devagent is answering with this status on purpose (settings mode)",
            })
            .to_string(),
        ),
    }
}

/// The head of the raw answer of settings mode `plaintext`, which bypasses the HTTP library
/// as it bypasses TLS.
pub(super) fn response_head(status: u16, ctype: &str, len: usize) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        reason(status),
    )
}

fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status")
}
