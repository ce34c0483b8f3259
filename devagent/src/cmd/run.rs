//! `kepm-devagent run`: runs one job like the agent's job runner; Ctrl-C kills the task.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kepm_devagent::run::keeperlogger::Level;
use kepm_devagent::run::{parse_param, run_job, RunOptions};
use kepm_devagent::{Denial, Trust};

use super::signals::{install_signal_handlers, Input};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The job file.
    #[arg(value_name = "JOB.json")]
    file: std::path::PathBuf,
    /// Agent root: binaries are looked up at DIR/Jobs/bin/{command}/{command}. Default: the
    /// directory above Jobs/ when the file is in one, else executablePath and PATH only.
    #[arg(long, value_name = "DIR", env = "KEPM_AGENT_ROOT")]
    agent_root: Option<std::path::PathBuf>,
    /// Also write the received messages, task results and summary to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Working directory of the tasks (default: the current directory).
    #[arg(long, value_name = "DIR")]
    cwd: Option<std::path::PathBuf>,
    /// Run even when lint finds errors (the exit status is still 1).
    #[arg(long)]
    force: bool,
    /// A parameter value, as the trigger API's JSON body supplies it (repeatable); it
    /// replaces {NAME} in the tasks' arguments.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Run as triggered by this event (the job must list it in "events").
    #[arg(long, value_name = "NAME")]
    event: Option<String>,
    /// Trust this executable although the runner did not start it, as the agent trusts a
    /// binary signed with a certificate listed in Settings:AlternativeSignatures (a helper a
    /// task's script starts, such as a signed `kepmlog`). Repeatable.
    #[arg(long, value_name = "PATH")]
    trust_exe: Vec<std::path::PathBuf>,
    /// Which processes may connect: registry (the agent's rule: the task processes the runner
    /// starts, plus --trust-exe) or any (any local process: NOT what an endpoint does).
    #[arg(long, value_name = "MODE", default_value = "registry", value_parser = parse_trust)]
    trust: Trust,
    /// Register each task this long after starting it, as the agent's runner can be late (the
    /// registration race): until then its broker connection and Plugin Settings request are
    /// refused, and only a task that retries gets through. 0 registers it at once.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    registration_delay: u64,
    /// Answer a publish to an undeclared topic with PUBACK 0x87, as Mosquitto does, instead of
    /// the agent's usual success-and-drop.
    #[arg(long)]
    deny_visible: bool,
    /// KeeperLogger's minimum level (the agent's system.logging.level; documented default
    /// Warning): records below it are shown but not written to KeeperLogger.log.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    keeperlogger_level: Option<Level>,
    /// Where the KeeperLogger stand-in appends (default: AGENT_ROOT/Logs/KeeperLogger.log).
    #[arg(long, value_name = "FILE")]
    keeperlogger_file: Option<std::path::PathBuf>,
}

pub(crate) fn parse_trust(s: &str) -> Result<Trust, String> {
    s.parse().map_err(|e: kepm_devagent::Error| e.to_string())
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse().map_err(|e: kepm_devagent::Error| e.to_string())
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Input>();
    if let Err(e) = install_signal_handlers(tx) {
        eprintln!("kepm-devagent: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    {
        let cancel = Arc::clone(&cancel);
        let _ = std::thread::Builder::new()
            .name("cancel".into())
            .spawn(move || {
                if let Ok(Input::Signal(name)) = rx.recv() {
                    eprintln!("kepm-devagent: {name}: stopping the job");
                    cancel.store(true, Ordering::SeqCst);
                }
            });
    }
    let opts = RunOptions {
        agent_root: args.agent_root,
        json_out: args.json,
        cwd: args.cwd,
        cancel: Some(cancel),
        force: args.force,
        params: args.params,
        event: args.event,
        trust: args.trust,
        trusted_exes: args.trust_exe,
        registration_delay: Duration::from_millis(args.registration_delay),
        denial: if args.deny_visible {
            Denial::Visible
        } else {
            Denial::Silent
        },
        keeperlogger_level: args.keeperlogger_level,
        keeperlogger_file: args.keeperlogger_file,
    };
    match run_job(&args.file, &opts) {
        Ok(summary) => ExitCode::from(u8::from(!summary.ok())),
        Err(e) => {
            eprintln!("kepm-devagent: {e}");
            ExitCode::from(1)
        }
    }
}
