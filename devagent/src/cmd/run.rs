//! `kepm-devagent run`: runs one job like the agent's job runner; Ctrl-C kills the task.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use clap::Args;
use kepm_devagent::run::{parse_param, run_job, RunOptions};

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
    };
    match run_job(&args.file, &opts) {
        Ok(summary) => ExitCode::from(u8::from(!summary.ok())),
        Err(e) => {
            eprintln!("kepm-devagent: {e}");
            ExitCode::from(1)
        }
    }
}
