//! `serve --jobs-api`: the trigger runner whose output joins serve's view, and what the ready
//! line tells a deployment script.

use std::sync::Arc;

use kepm_devagent::run::{attach_runner, set_output_sink, RunOptions, TriggeredRuns};
use kepm_devagent::{AdminFiles, Denial, DevAgent, Trust};
use serde_json::{json, Value};

use super::out::Out;

/// Triggered jobs run as `kepm-devagent run` runs them (the agent's trust rule, this
/// serve's registration delay and denial mode), their live output joining this operator view.
pub(super) fn attach_trigger_runner(
    agent: &DevAgent,
    pretty: bool,
    trusted_exes: &[std::path::PathBuf],
    registration_delay: std::time::Duration,
    deny_visible: bool,
) -> Arc<TriggeredRuns> {
    set_output_sink(Box::new(move |line: &str| {
        if pretty {
            Out.line(&format!("RUN | {line}"));
        } else {
            Out.json(&json!({"event": "run", "line": line}));
        }
    }));
    let opts = RunOptions {
        trust: Trust::Registry,
        trusted_exes: trusted_exes.to_vec(),
        registration_delay,
        denial: if deny_visible {
            Denial::Visible
        } else {
            Denial::Silent
        },
        ..RunOptions::default()
    };
    attach_runner(agent, opts)
}

/// The curl line that creates a job through the Jobs API with the Admin certificate: the
/// agent's certificate names Localhost, so curl is pointed at that name on 127.0.0.1.
pub(super) fn curl_create(agent: &DevAgent, files: &AdminFiles) -> String {
    let port = agent
        .api_base()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    format!(
        "curl --cacert {} --cert {} --resolve localhost:{port}:127.0.0.1 \
         -H 'Content-Type: application/json' --data @JOB.json https://localhost:{port}/api/Jobs",
        agent.ca_path().display(),
        files.bundle.display()
    )
}

pub(super) fn jobs_api_json(agent: &DevAgent) -> Value {
    let Some(f) = agent.admin_files() else {
        return Value::Null;
    };
    let p = |p: &std::path::Path| p.display().to_string();
    json!({
        "agent_root": agent.agent_root().map(|r| p(&r)),
        "admin_ca": p(&f.ca),
        "admin_cert": p(&f.cert),
        "admin_key": p(&f.key),
        "admin_bundle": p(&f.bundle),
        "admin_pfx": f.pfx.as_deref().map(p),
        "admin_pfx_password": f.pfx.as_ref().map(|_| f.pfx_password),
        "curl": curl_create(agent, &f),
    })
}
