//! The public endpoints and the Job Management API, with the vendor's tiers ("Local
//! Endpoints", "HTTP Reference Guide"): public `/health`, `/` and `/api/system/status`;
//! Plugin tier `GET /api/Jobs` (a process the runner launched, or Admin); Admin tier (a
//! client certificate signed by the devagent's Admin CA) for create, update, delete,
//! validate, run, trigger and reload.
//!
//! kepmlog assumes, where the pages are silent: the paths of validate
//! (`POST /api/Jobs/validate`) and reload (`POST /api/Jobs/reload`); `GET /api/Jobs/{id}`
//! in the Plugin tier like the list; the trigger body `{"parameters": {"Name": "value"}}`
//! (a bare `{"Name": "value"}` is accepted too); 409 for a create whose id exists; the
//! shapes of the answers' JSON bodies.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::{json_response, App, Conn};
use crate::jobstore::{errors, safe_id, JobsApi};

/// A refusal answered as is (boxed: a response is large, and most handlers return early).
type Rejected = Box<Response>;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SERVICE: &str = "KeeperPrivilegeManager (kepm-devagent stand-in)";

pub(super) fn public_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/", get(root))
        .route("/api/system/status", get(status))
}

pub(super) fn job_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/Jobs", get(list).post(create))
        .route("/api/Jobs/validate", post(validate))
        .route("/api/Jobs/reload", post(reload))
        .route("/api/Jobs/{id}", get(get_one).put(replace).delete(remove))
        .route("/api/Jobs/{id}/trigger", post(trigger))
        .route("/api/Jobs/{id}/run", post(run))
}

fn now() -> String {
    crate::timefmt::rfc3339_utc(std::time::SystemTime::now())
}

async fn health() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"status": "healthy", "timestamp": now(), "version": VERSION}),
    )
}

async fn root() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"service": SERVICE, "status": "running", "version": VERSION}),
    )
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let (total, enabled) = app.jobs.as_ref().map_or((0, 0), |j| j.counts());
    json_response(
        StatusCode::OK,
        &json!({
            "status": "running",
            "timestamp": now(),
            "version": VERSION,
            "plugins": {"total": 0, "running": 0},
            "jobs": {"total": total, "enabled": enabled},
        }),
    )
}

fn forbidden(tier: &str, detail: String, fix: String) -> Rejected {
    Box::new(json_response(
        StatusCode::FORBIDDEN,
        &json!({
            "error": "Forbidden",
            "requiredTier": tier,
            "detail": detail,
            "fix": fix,
        }),
    ))
}

const ADMIN_FIX: &str = "present the Admin client certificate `kepm-devagent serve --jobs-api` \
     wrote to its state directory: curl --cert admin-client-bundle.pem, PowerShell \
     -Certificate (admin-client.pfx), or kepm-devagent deploy --cert admin-client.pem --key \
     admin-client.key";

/// The Admin tier: a client certificate that verifies against the Admin CA.
fn admin(app: &App, conn: &Conn) -> Result<(), Rejected> {
    let detail = match &conn.certs {
        None => "this endpoint is in the Admin tier and the request presented no client \
                 certificate"
            .to_string(),
        Some(chain) => match app.tls.admin_chain_ok(chain) {
            Ok(()) => return Ok(()),
            Err(e) => format!("this endpoint is in the Admin tier and {e}"),
        },
    };
    Err(forbidden("Admin", detail, ADMIN_FIX.to_string()))
}

/// The Plugin tier: a process the runner launched (the devagent's process-trust rule), or
/// an Admin caller (kepmlog assumes Admin includes Plugin, as deployment tooling reads back
/// what it deployed).
fn plugin(app: &App, conn: &Conn) -> Result<(), Rejected> {
    if admin(app, conn).is_ok() {
        return Ok(());
    }
    app.settings
        .registry
        .admit_plugin_tier("jobs-api", conn.peer, conn.local)
        .map_err(|r| {
            forbidden(
                "Plugin",
                format!("this endpoint is in the Plugin tier: {}", r.detail),
                format!("{}; or present the Admin client certificate", r.fix),
            )
        })
}

fn jobs(app: &App) -> Result<&Arc<JobsApi>, Rejected> {
    app.jobs.as_ref().ok_or_else(|| {
        Box::new(json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found"}),
        ))
    })
}

fn bad_request(message: String) -> Rejected {
    Box::new(json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "Bad Request", "detail": message}),
    ))
}

fn not_found(id: &str) -> Rejected {
    Box::new(json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "Not Found", "detail": format!("no job with id {id:?}"),
                "fix": "create it with POST /api/Jobs"}),
    ))
}

fn body(payload: Result<Json<Value>, JsonRejection>) -> Result<Value, Rejected> {
    payload.map(|Json(v)| v).map_err(|e| {
        bad_request(format!(
            "the body must be JSON with Content-Type: application/json: {}",
            e.body_text()
        ))
    })
}

/// Lints `job` as `Jobs/{id}.json`: 400 with the errors, else the warnings and notes.
fn check(api: &JobsApi, id: &str, job: &Value) -> Result<Vec<Value>, Rejected> {
    let findings = api.validate(id, job);
    let errs = errors(&findings);
    if !errs.is_empty() {
        return Err(Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({
                "error": "Job validation failed",
                "jobId": id,
                "errors": errs.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
            }),
        )));
    }
    Ok(findings.iter().map(|f| f.to_json()).collect())
}

fn job_id(job: &Value) -> Result<String, Rejected> {
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("the job has no string \"id\"".into()))?;
    safe_id(id).map_err(bad_request)?;
    Ok(id.to_string())
}

async fn list(State(app): State<Arc<App>>, Extension(conn): Extension<Conn>) -> Response {
    let run = || -> Result<Response, Rejected> {
        plugin(&app, &conn)?;
        Ok(json_response(
            StatusCode::OK,
            &Value::Array(jobs(&app)?.list()),
        ))
    };
    run().unwrap_or_else(|r| *r)
}

async fn get_one(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
) -> Response {
    let run = || -> Result<Response, Rejected> {
        plugin(&app, &conn)?;
        let job = jobs(&app)?.get(&id).ok_or_else(|| not_found(&id))?;
        Ok(json_response(StatusCode::OK, &job))
    };
    run().unwrap_or_else(|r| *r)
}

async fn create(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Response {
    let run = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        let api = jobs(&app)?;
        let job = body(payload)?;
        let id = job_id(&job)?;
        if api.get(&id).is_some() {
            return Err(Box::new(json_response(
                StatusCode::CONFLICT,
                &json!({"error": "Conflict", "detail": format!("job {id:?} exists"),
                        "fix": format!("replace it with PUT /api/Jobs/{id}")}),
            )));
        }
        let findings = check(api, &id, &job)?;
        api.put(&id, &job).map_err(|e| internal(&e))?;
        api.notice(format!("Jobs/{id}.json created through the API"));
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"success": true, "jobId": id, "findings": findings}),
        ))
    };
    run().unwrap_or_else(|r| *r)
}

async fn replace(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Response {
    let run = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        let api = jobs(&app)?;
        let job = body(payload)?;
        safe_id(&id).map_err(bad_request)?;
        if api.get(&id).is_none() {
            return Err(not_found(&id));
        }
        // lint's id rule reports an "id" that differs from the path's (the file name).
        let findings = check(api, &id, &job)?;
        api.put(&id, &job).map_err(|e| internal(&e))?;
        api.notice(format!("Jobs/{id}.json updated through the API"));
        Ok(json_response(
            StatusCode::OK,
            &json!({"success": true, "jobId": id, "findings": findings}),
        ))
    };
    run().unwrap_or_else(|r| *r)
}

async fn remove(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
) -> Response {
    let run = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        let api = jobs(&app)?;
        if !api.delete(&id).map_err(|e| internal(&e))? {
            return Err(not_found(&id));
        }
        api.notice(format!("Jobs/{id}.json deleted through the API"));
        Ok(json_response(
            StatusCode::OK,
            &json!({"success": true, "jobId": id}),
        ))
    };
    run().unwrap_or_else(|r| *r)
}

async fn validate(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Response {
    let run = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        let api = jobs(&app)?;
        let job = body(payload)?;
        let id = job_id(&job)?;
        let findings = check(api, &id, &job)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"valid": true, "jobId": id, "findings": findings}),
        ))
    };
    run().unwrap_or_else(|r| *r)
}

async fn reload(State(app): State<Arc<App>>, Extension(conn): Extension<Conn>) -> Response {
    let run = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        // The store is read on every request, so there is nothing to reload; the answer
        // says what is loaded.
        let (total, enabled) = jobs(&app)?.counts();
        Ok(json_response(
            StatusCode::OK,
            &json!({"success": true, "jobs": {"total": total, "enabled": enabled}}),
        ))
    };
    run().unwrap_or_else(|r| *r)
}

/// `{"parameters": {...}}` or the bare object; values that are not strings are passed as
/// their JSON text.
fn trigger_params(body: &Value) -> Result<Vec<(String, String)>, String> {
    let obj = match body {
        Value::Null => return Ok(Vec::new()),
        Value::Object(o) => match o.get("parameters") {
            Some(Value::Object(p)) => p,
            Some(other) => {
                return Err(format!(
                    "\"parameters\" must be an object of name/value pairs, not {other}"
                ))
            }
            None => o,
        },
        other => {
            return Err(format!(
                "the trigger body must be a JSON object such as {{\"parameters\": {{\"Name\": \
                 \"value\"}}}}, not {other}"
            ))
        }
    };
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect())
}

async fn trigger(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Response {
    let run = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        let body = match payload {
            Ok(Json(v)) => v,
            // An empty body is a trigger without parameters.
            Err(JsonRejection::MissingJsonContentType(_)) => Value::Null,
            Err(e) => return Err(bad_request(e.body_text())),
        };
        let params = trigger_params(&body).map_err(bad_request)?;
        start(&app, &id, params)
    };
    run().unwrap_or_else(|r| *r)
}

async fn run(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
) -> Response {
    let go = || -> Result<Response, Rejected> {
        admin(&app, &conn)?;
        start(&app, &id, Vec::new())
    };
    go().unwrap_or_else(|r| *r)
}

fn start(app: &App, id: &str, params: Vec<(String, String)>) -> Result<Response, Rejected> {
    let api = jobs(app)?;
    if api.get(id).is_none() {
        return Err(not_found(id));
    }
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let text = format!("job {id} triggered through the API (parameters: {names:?})");
    api.trigger(id, params.clone()).map_err(|e| {
        Box::new(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "Service Unavailable", "detail": e}),
        ))
    })?;
    api.notice(text);
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "jobId": id, "message": "Job triggered"}),
    ))
}

fn internal(e: &crate::error::Error) -> Rejected {
    Box::new(json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"error": "Internal Server Error", "detail": e.to_string()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_bodies() {
        let mut p = trigger_params(&json!({"parameters": {"Target": "/tmp", "Depth": 3}}))
            .expect("an object of values");
        p.sort();
        assert_eq!(
            p,
            vec![
                ("Depth".to_string(), "3".to_string()),
                ("Target".to_string(), "/tmp".to_string())
            ]
        );
        assert_eq!(
            trigger_params(&json!({"Target": "x"})),
            Ok(vec![("Target".to_string(), "x".to_string())])
        );
        assert_eq!(trigger_params(&Value::Null), Ok(vec![]));
        assert!(trigger_params(&json!([1])).is_err());
        assert!(trigger_params(&json!({"parameters": [1]})).is_err());
    }
}
