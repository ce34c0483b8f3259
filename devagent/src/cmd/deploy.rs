//! `kepm-devagent deploy`: a deployment script's steps against the Jobs API, one line per
//! step with its HTTP status: validate, create (POST) or replace (PUT when the job exists),
//! read back, optionally trigger.
//!
//! Only the vendor's documented requests, with what kepmlog assumes marked in the help:
//! the validate path (`POST /api/Jobs/validate`), `GET /api/Jobs/{id}` for one job, and the
//! trigger body `{"parameters": {...}}`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kepm_devagent::run::parse_param;
use serde_json::{json, Value};

#[derive(Args)]
pub(crate) struct DeployArgs {
    /// Job files to deploy, in order; each is `{id}.json`.
    #[arg(value_name = "JOB.json", required = true)]
    files: Vec<PathBuf>,
    /// The agent's API base, e.g. https://localhost:6889 (the agent's certificate names
    /// Localhost: with --ca-bundle use that name, not 127.0.0.1).
    #[arg(long, value_name = "URL")]
    api: String,
    /// The Admin client certificate (PEM; the chain may follow the leaf).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// CA bundle that verifies the agent's certificate. Without it, verification is off, as
    /// the vendor allows for loopback only, so the API must then be on loopback.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Trigger each job after deploying it (POST /api/Jobs/{id}/trigger).
    #[arg(long)]
    trigger: bool,
    /// A parameter value for the trigger (repeatable); kepmlog assumes the body
    /// {"parameters": {"NAME": "VALUE"}}.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param, requires = "trigger")]
    params: Vec<(String, String)>,
}

/// Exit codes (also in devagent/README.md).
const EXIT_REFUSED: u8 = 1;
const EXIT_INPUT: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;

struct Api {
    http: ureq::Agent,
    base: String,
}

enum Failure {
    /// The API answered, and not as the step needs.
    Refused,
    Input(String),
    Unreachable(String),
}

impl Api {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Failure> {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.http.get(&url).call(),
            ("DELETE", _) => self.http.delete(&url).call(),
            ("PUT", Some(b)) => self
                .http
                .put(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            (_, Some(b)) => self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            (_, None) => self.http.post(&url).send_empty(),
        };
        let mut resp = resp.map_err(|e| Failure::Unreachable(format!("{method} {url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, v))
    }
}

fn step(name: &str, id: &str, status: u16, note: &str) {
    println!("{name:<8} {id}: HTTP {status}{note}");
}

/// Prints why the API refused: the findings of a 400, the detail and fix of a 403.
fn explain(body: &Value) {
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        for e in errors {
            let g = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            println!(
                "  error {} at {}: {}; fix: {}",
                g("rule"),
                g("path"),
                g("message"),
                g("fix")
            );
        }
    }
    for k in ["detail", "fix"] {
        if let Some(t) = body.get(k).and_then(Value::as_str) {
            println!("  {k}: {t}");
        }
    }
    if body.is_string() {
        println!("  body: {body}");
    }
}

fn agent(args: &DeployArgs) -> Result<ureq::Agent, Failure> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| Failure::Input(format!("reading {}: {e}", p.display())))
    };
    let cert_pem = read(&args.cert)?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&cert_pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Failure::Input(format!(
            "{} holds no PEM certificate: pass the Admin client certificate (admin-client.pem)",
            args.cert.display()
        )));
    }
    let key = PrivateKey::from_pem(&read(&args.key)?).map_err(|e| {
        Failure::Input(format!(
            "{}: not a PEM private key ({e}): pass the key of --cert (admin-client.key)",
            args.key.display()
        ))
    })?;
    let tls = TlsConfig::builder().client_cert(Some(ClientCert::new_with_certs(&certs, key)));
    let tls = match &args.ca_bundle {
        Some(p) => {
            let roots: Vec<Certificate<'static>> = ureq::tls::parse_pem(&read(p)?)
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if roots.is_empty() {
                return Err(Failure::Input(format!(
                    "{} holds no PEM certificate",
                    p.display()
                )));
            }
            tls.root_certs(RootCerts::Specific(Arc::new(roots)))
        }
        None => {
            let host = args
                .api
                .split("://")
                .nth(1)
                .and_then(|r| r.split(['/', ':']).next())
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !matches!(host.as_str(), "localhost" | "127.0.0.1" | "[") {
                return Err(Failure::Input(format!(
                    "{}: without --ca-bundle the agent's certificate is not verified, which is \
                     only done on loopback; pass --ca-bundle or a localhost URL",
                    args.api
                )));
            }
            tls.disable_verification(true)
        }
    };
    Ok(ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    ))
}

fn deploy_one(api: &Api, args: &DeployArgs, file: &PathBuf) -> Result<(), Failure> {
    let text = std::fs::read(file)
        .map_err(|e| Failure::Input(format!("reading {}: {e}", file.display())))?;
    let job: Value = serde_json::from_slice(&text).map_err(|e| {
        Failure::Input(format!(
            "{}: malformed JSON ({e}): run kepm-devagent lint {}",
            file.display(),
            file.display()
        ))
    })?;
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Input(format!("{}: the job has no string \"id\"", file.display())))?
        .to_string();

    let (s, body) = api.call("POST", "/api/Jobs/validate", Some(&job))?;
    step("validate", &id, s, if s == 200 { "" } else { " (refused)" });
    if s != 200 {
        explain(&body);
        return Err(Failure::Refused);
    }

    let (s, body) = api.call("GET", &format!("/api/Jobs/{id}"), None)?;
    let (name, method, path, want) = match s {
        200 => ("replace", "PUT", format!("/api/Jobs/{id}"), 200),
        404 => ("create", "POST", "/api/Jobs".to_string(), 201),
        _ => {
            step("lookup", &id, s, " (refused)");
            explain(&body);
            return Err(Failure::Refused);
        }
    };
    let (s, body) = api.call(method, &path, Some(&job))?;
    step(
        name,
        &id,
        s,
        if s == want || s == 200 {
            ""
        } else {
            " (refused)"
        },
    );
    if s != want && s != 200 {
        explain(&body);
        return Err(Failure::Refused);
    }

    let (s, stored) = api.call("GET", &format!("/api/Jobs/{id}"), None)?;
    let matches = s == 200 && stored == job;
    step(
        "verify",
        &id,
        s,
        if matches {
            " (stored job matches)"
        } else {
            " (stored job DIFFERS from the file)"
        },
    );
    if !matches {
        explain(&stored);
        return Err(Failure::Refused);
    }

    if args.trigger {
        let params: serde_json::Map<String, Value> = args
            .params
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        let (s, body) = api.call(
            "POST",
            &format!("/api/Jobs/{id}/trigger"),
            Some(&json!({ "parameters": params })),
        )?;
        step("trigger", &id, s, if s == 200 { "" } else { " (refused)" });
        if s != 200 {
            explain(&body);
            return Err(Failure::Refused);
        }
    }
    Ok(())
}

pub(crate) fn deploy(args: &DeployArgs) -> ExitCode {
    let fail = |f: Failure| match f {
        Failure::Refused => ExitCode::from(EXIT_REFUSED),
        Failure::Input(m) => {
            eprintln!("kepm-devagent deploy: {m}");
            ExitCode::from(EXIT_INPUT)
        }
        Failure::Unreachable(m) => {
            eprintln!(
                "kepm-devagent deploy: cannot reach the API: {m} (is the agent or `kepm-devagent \
                 serve --jobs-api` running at --api?)"
            );
            ExitCode::from(EXIT_UNREACHABLE)
        }
    };
    let http = match agent(args) {
        Ok(a) => a,
        Err(f) => return fail(f),
    };
    let api = Api {
        http,
        base: args.api.trim_end_matches('/').to_string(),
    };
    for file in &args.files {
        if let Err(f) = deploy_one(&api, args, file) {
            return fail(f);
        }
    }
    ExitCode::SUCCESS
}
