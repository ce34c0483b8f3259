//! `kepm-devagent serve`: the stand-in agent as a process speaking JSON lines, for tests in
//! other languages and for job authors.
//!
//! This file only parses the command line and dispatches to `cmd::{serve, lint, run}`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::deploy::DeployArgs;
use cmd::lint::LintArgs;
use cmd::run::RunArgs;
use cmd::serve::ServeArgs;

#[derive(Parser)]
#[command(
    name = "kepm-devagent",
    version,
    about = "Local stand-in for the KEPM agent: Plugin Settings over HTTPS and a TLS MQTT broker \
             that captures what a job publishes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent stand-in; JSON lines on stdout, commands on stdin.
    ///
    /// Stdout, one JSON object per line: first
    /// {"event":"ready","api_base","broker_host","broker_port","ca","fallback_broker","allow",...};
    /// then {"event":"message","topic","payload" (parsed JSON) or "payload_text","at"} per
    /// captured message, {"event":"client","client_id"} per client connecting to the job
    /// listener, {"event":"dropped","client_id","topic"} per publish to an undeclared topic
    /// (acknowledged and dropped, as the agent does; --deny-visible answers 0x87),
    /// {"event":"refused","service","rule","client_id","detail","fix"} per refusal (with
    /// --trust registry); and one {"event":"ok"|"error","cmd",...} reply per command.
    ///
    /// Stdin commands (one per line): `broker stop`, `broker start`, `settings <mode>`,
    /// `proxy start|reset|stats|stop`, `register PID JOB`, `unregister PID`, `stats`, `quit`.
    /// Stdin EOF (unless --ignore-stdin), SIGINT or SIGTERM also exit cleanly: the broker is
    /// stopped and the temp dir removed. Diagnostics go to stderr; KEPM_DEVAGENT_LOG=1 echoes
    /// Mosquitto's log there too.
    Serve(ServeArgs),
    /// Check job JSON files against the agent's rules (docs/kepm-contract.md).
    ///
    /// Prints each finding with its file, JSON path, rule and fix. A task's "arguments" must
    /// be one string, a command line such as "--scan --keeper-api-base={KeeperApiBaseUrl}"
    /// (an array is an error). Exit status 1 when any file has an error, else 0 (warnings do
    /// not fail).
    Lint(LintArgs),
    /// Run a job locally the way the agent's job runner does, printing the operator's log
    /// view.
    ///
    /// Lints the job, starts the HTTPS Plugin Settings endpoint and a Mosquitto whose ACL is
    /// the job's mqttTopics.allowedPublications, runs the tasks in order (binary resolved
    /// like the agent, {KeeperApiBaseUrl} substituted in the "arguments" string and the
    /// string split into argv by the agent's rules: spaces and tabs separate, double quotes
    /// group, backslashes escape a quote; KEEPER_JOB_ID/KEEPER_JOB_NAME set only when
    /// mqttTopics has an entry, timeoutSeconds enforced, continueOnFailure honoured),
    /// shows task output, log records, events, dropped publishes and refused connections live,
    /// and ends with a summary. As strict as the agent: only the task processes it starts may
    /// connect (--trust-exe for a signed helper), with their own {job}_{token}_{pid} client
    /// id; a publish to an undeclared topic is acknowledged and dropped (--deny-visible:
    /// PUBACK 0x87); KeeperLogger writes records at or above its minimum level (Warning) to
    /// AGENT_ROOT/Logs/KeeperLogger.log. What is modelled and what is not, with the vendor
    /// page and the test for each: docs/devagent-parity.md. Exit status 0 when every task
    /// exited 0 (or failed with continueOnFailure), no message broke the KeeperLogger schema,
    /// no publish was dropped or denied and no connection refused; 1 otherwise.
    Run(RunArgs),
    /// Deploy job files through the Jobs API, as a deployment script does, one line per
    /// step with its HTTP status.
    ///
    /// For each file: POST /api/Jobs/validate (stops with the findings on errors), GET
    /// /api/Jobs/{id}, then POST /api/Jobs (create) or PUT /api/Jobs/{id} (replace), GET
    /// /api/Jobs/{id} to check the stored job equals the file, and with --trigger POST
    /// /api/Jobs/{id}/trigger with {"parameters": {...}}. Works against `kepm-devagent serve
    /// --jobs-api` (its ready line names the Admin certificate and key) and is written for the
    /// agent; kepmlog assumes the validate path, GET of one job and the trigger body shape,
    /// which the vendor's pages do not show. Exit status: 0 every step succeeded; 1 the API
    /// refused a step (400 findings, 403, a stored job that differs); 2 bad input (a file,
    /// certificate, key or URL); 3 the API could not be reached.
    Deploy(DeployArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(args) => cmd::serve::serve(args),
        Cmd::Lint(args) => cmd::lint::lint(&args),
        Cmd::Run(args) => cmd::run::run(args),
        Cmd::Deploy(args) => cmd::deploy::deploy(&args),
    }
}
