//! `kepmlog`: log to the KEPM agent's KeeperLogger from a shell script (`scriptType` jobs in
//! bash or PowerShell), with the same settings discovery and identity rules as the library.
//!
//! Exit status: 0 delivered (acknowledged by the broker); 1 not delivered within `--timeout`
//! (broker unreachable, publish denied, lines dropped); 2 bad usage or input (no
//! KEEPER_JOB_ID, empty message, invalid level or event).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kepmlog::{Error, Fallback, Level, Logger, Options, Overflow};

mod doctor;
mod doctor_mqtt;
mod parent;
mod protocol;
mod run;
mod tree;

#[derive(Parser)]
#[command(
    name = "kepmlog",
    version,
    about = "Send log records and events to the KEPM agent's KeeperLogger from job scripts",
    long_about = "Send log records and events to the KEPM agent's KeeperLogger from job scripts.\n\n\
        Discovery and identity follow the kepmlog library: the job id comes from KEEPER_JOB_ID \
        (set by the agent when the job declares mqttTopics); the agent's API base from \
        --keeper-api-base (or KEEPER_API_BASE), else from the --keeper-api-base argument of \
        the calling script (read from its command line, on Linux only), else \
        https://127.0.0.1:6889. The MQTT client id is \
        {KEEPER_JOB_ID}_{token}_{pid}; the token defaults to the calling script's name, else \
        \"kepmlog\".\n\n\
        Exit status: 0 delivered; 1 not delivered within --timeout; 2 bad usage or input."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
pub(crate) struct Common {
    /// The agent's HTTPS API base (the task argument {KeeperApiBaseUrl}). Default: the
    /// calling script's --keeper-api-base argument (Linux only: elsewhere pass this or set
    /// KEEPER_API_BASE), else https://127.0.0.1:6889.
    #[arg(long, global = true, value_name = "URL", env = "KEEPER_API_BASE")]
    keeper_api_base: Option<String>,
    /// Job id. Default: KEEPER_JOB_ID.
    #[arg(long, global = true, value_name = "ID")]
    job_id: Option<String>,
    /// MetaData.Source shown in the operator's log. Default: the token.
    #[arg(long, global = true, value_name = "NAME", env = "KEPMLOG_SOURCE")]
    source: Option<String>,
    /// Executable token in the client id (letters, digits, hyphens). Default: the calling
    /// script's file stem (Linux only), else "kepmlog".
    #[arg(long, global = true, value_name = "TOKEN", env = "KEPMLOG_TOKEN")]
    token: Option<String>,
    /// PEM CA bundle to trust for the agent's API and broker (else loopback-only, unverified).
    #[arg(long, global = true, value_name = "FILE", env = "KEPMLOG_CA_BUNDLE")]
    ca_bundle: Option<std::path::PathBuf>,
    /// Seconds to wait for the broker to acknowledge everything before giving up.
    #[arg(long, global = true, value_name = "SECS",
          default_value_t = kepmlog::DEFAULT_CLOSE_TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// No kepmlog diagnostics on stderr (failures are still reported).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Without a job id: "error" (exit 2, naming the fix) or "stderr" (write the records to
    /// stderr as text lines, which the agent captures as the task's output; exit 0).
    /// Default: KEPMLOG_FALLBACK, else "error".
    #[arg(long, global = true, value_name = "MODE", value_parser = parse_fallback)]
    fallback: Option<Fallback>,
    /// Do not write the records still undelivered at --timeout to stderr.
    #[arg(long, global = true)]
    no_undelivered_to_stderr: bool,
    /// Crash-safe spool: also write each record to a file under DIR before sending it, so
    /// that what this run does not deliver (killed, broker down) is sent by the job's next
    /// run. Default: KEPMLOG_SPOOL_DIR, else none. DIR must be this user's and private.
    #[arg(long, global = true, value_name = "DIR")]
    spool_dir: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send one record: kepmlog log --level warning --category Scan "message".
    Log(LogArgs),
    /// Send each line of stdin as one record, streaming; exits after the last line is
    /// acknowledged. Empty lines are skipped (and counted).
    Pipe(PipeArgs),
    /// Publish one JSON object to the job's event topic: kepmlog event '{"phase":"scan"}'.
    Event(EventArgs),
    /// Be the job's task and run PROGRAM: each line it writes becomes a record (stdout Info,
    /// stderr Warning; `::warning::text`, `::event::{...}` commands); its exit code is ours.
    Run(run::RunArgs),
    /// Check, from inside a job, what a task can see of the agent's setup; pass/fail each
    /// with the fix. Exit 0 only when every check that could run passed.
    Doctor(doctor::DoctorArgs),
}

#[derive(Args)]
struct LogArgs {
    /// Debug, Info, Warning, Error, Critical, Verbose (or warn, err, fatal, trace, 0..5).
    #[arg(long, short, default_value = "info", value_parser = parse_level)]
    level: Level,
    /// MetaData.Category (default "General").
    #[arg(long, short, env = "KEPMLOG_CATEGORY", default_value = "")]
    category: String,
    #[arg(long, default_value = "")]
    correlation_id: String,
    #[arg(long, default_value = "")]
    context: String,
    /// The message; several words are joined with spaces.
    #[arg(required = true, num_args = 1.., value_name = "MESSAGE")]
    message: Vec<String>,
}

#[derive(Args)]
struct PipeArgs {
    /// Level of each line (unless --detect-level finds one).
    #[arg(long, short, default_value = "info", value_parser = parse_level)]
    level: Level,
    /// MetaData.Category (default "General").
    #[arg(long, short, env = "KEPMLOG_CATEGORY", default_value = "")]
    category: String,
    /// Take the level from a prefix such as "ERROR:", "[WARN]", "warning:", "FATAL:" (any
    /// case) and strip it from the message.
    #[arg(long, short = 'd')]
    detect_level: bool,
    /// Also copy each input line to stdout.
    #[arg(long)]
    tee: bool,
}

#[derive(Args)]
struct EventArgs {
    /// One JSON object; "-" reads it from stdin.
    #[arg(value_name = "JSON")]
    json: String,
    /// Topic (default: the job's eventTopic convention Jobs/{jobId}/events).
    #[arg(long, value_name = "TOPIC", env = "KEPMLOG_EVENT_TOPIC")]
    event_topic: Option<String>,
}

fn parse_fallback(s: &str) -> Result<Fallback, String> {
    Fallback::parse(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_level(s: &str) -> Result<Level, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

pub(crate) const NOT_DELIVERED: u8 = 1;
pub(crate) const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let timeout = match Duration::try_from_secs_f64(cli.common.timeout) {
        Ok(t) => t,
        Err(_) => {
            eprintln!("kepmlog: --timeout must be a non-negative number of seconds");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match cli.cmd {
        Cmd::Log(a) => log(&cli.common, &a, timeout),
        Cmd::Pipe(a) => pipe(&cli.common, &a, timeout),
        Cmd::Event(a) => event(&cli.common, &a, timeout),
        Cmd::Run(a) => run::run(&cli.common, &a, timeout),
        Cmd::Doctor(a) => doctor::doctor(&cli.common, &a, timeout),
    }
}

/// The agent's API base as the logger finds it: the option (or KEEPER_API_BASE), else the
/// calling script's argument, else the agent's default.
pub(crate) fn api_base(c: &Common) -> String {
    c.keeper_api_base
        .clone()
        .or_else(|| parent::caller().and_then(|c| c.api_base.clone()))
        .unwrap_or_else(|| kepmlog::DEFAULT_API_BASE.to_string())
}

/// `token`: the token when `--token` is not given (`run`: the child's script), instead of
/// the calling script's name.
pub(crate) fn logger(
    c: &Common,
    overflow: Overflow,
    event_topic: Option<&str>,
    token: Option<String>,
) -> Result<Logger, ExitCode> {
    let token = c
        .token
        .clone()
        .or(token)
        .or_else(|| parent::caller().and_then(|c| c.script_token.clone()))
        .unwrap_or_else(|| "kepmlog".to_string());
    let source = c.source.clone().unwrap_or_else(|| token.clone());
    let mut opts = Options::new(source)
        .token(token)
        .overflow(overflow)
        .api_base(api_base(c));
    if let Some(j) = &c.job_id {
        opts = opts.job_id(j.clone());
    }
    if let Some(ca) = &c.ca_bundle {
        opts = opts.ca_bundle(ca.clone());
    }
    if let Some(t) = event_topic {
        opts = opts.event_topic(t);
    }
    opts = opts
        .stderr_diagnostics(!c.quiet)
        .undelivered_to_stderr(!c.no_undelivered_to_stderr);
    if let Some(f) = c.fallback {
        opts = opts.fallback(f);
    }
    if let Some(dir) = &c.spool_dir {
        opts = opts.spool_dir(dir.clone());
    }
    Logger::new(opts).map_err(|e| {
        eprintln!("kepmlog: {e}");
        ExitCode::from(BAD_INPUT)
    })
}

/// Waits for delivery and turns the outcome into the exit status: the one mapping of the
/// core's outcome every binding makes (a denial or a give-up first, then the deadline).
pub(crate) fn finish(log: &Logger, timeout: Duration, what: &str) -> ExitCode {
    let outcome = match log.shutdown_outcome(timeout) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kepmlog: {e}");
            return ExitCode::from(NOT_DELIVERED);
        }
    };
    match outcome.error() {
        None => ExitCode::SUCCESS,
        Some(Error::Timeout {
            undelivered,
            last_error,
        }) => {
            eprintln!(
                "kepmlog: {undelivered} {what} not delivered within {:.1}s{}",
                timeout.as_secs_f64(),
                last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
            ExitCode::from(NOT_DELIVERED)
        }
        Some(e) => {
            eprintln!("kepmlog: {e}");
            if outcome.undelivered > 0 {
                eprintln!(
                    "kepmlog: {} {what} not delivered within {:.1}s",
                    outcome.undelivered,
                    timeout.as_secs_f64()
                );
            }
            ExitCode::from(NOT_DELIVERED)
        }
    }
}

fn log(c: &Common, a: &LogArgs, timeout: Duration) -> ExitCode {
    let log = match logger(c, Overflow::Drop, None, None) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let message = a.message.join(" ");
    if let Err(e) = log.log_with(
        a.level,
        &a.category,
        &message,
        &a.correlation_id,
        &a.context,
    ) {
        eprintln!("kepmlog: {e}");
        let _ = log.shutdown(Duration::ZERO);
        return ExitCode::from(BAD_INPUT);
    }
    finish(&log, timeout, "record(s)")
}

fn event(c: &Common, a: &EventArgs, timeout: Duration) -> ExitCode {
    let text = if a.json == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            eprintln!("kepmlog: reading the event from stdin: {e}");
            return ExitCode::from(BAD_INPUT);
        }
        s
    } else {
        a.json.clone()
    };
    let log = match logger(c, Overflow::Drop, a.event_topic.as_deref(), None) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(e) = log.event_json(&text) {
        eprintln!("kepmlog: {e}");
        let _ = log.shutdown(Duration::ZERO);
        return ExitCode::from(BAD_INPUT);
    }
    finish(&log, timeout, "event(s)")
}

fn pipe(c: &Common, a: &PipeArgs, timeout: Duration) -> ExitCode {
    // Block instead of dropping: a fast producer is slowed to the broker's pace and no line
    // is lost. Once a wait times out the broker is presumably gone; the rest of stdin is
    // still read (so the producer is not killed by SIGPIPE) but counted as not sent.
    let log = match logger(
        c,
        Overflow::Block(timeout.max(Duration::from_secs(1))),
        None,
        None,
    ) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut buf = Vec::new();
    let (mut sent, mut skipped, mut unsent) = (0u64, 0u64, 0u64);
    let mut giving_up = false;
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("kepmlog: reading stdin: {e}");
                break;
            }
        }
        if a.tee {
            let mut out = stdout.lock();
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
        let raw = String::from_utf8_lossy(&buf);
        let line = raw.trim_end_matches(['\n', '\r']);
        let (level, message) = if a.detect_level {
            detect_level(line).unwrap_or((a.level, line))
        } else {
            (a.level, line)
        };
        if message.trim().is_empty() {
            skipped += 1;
            continue;
        }
        if giving_up {
            unsent += 1;
            continue;
        }
        match log.log(level, &a.category, message) {
            Ok(()) => sent += 1,
            Err(Error::QueueFull { .. }) => {
                unsent += 1;
                giving_up = true;
                eprintln!(
                    "kepmlog: the broker has not taken a record for {:.1}s; not sending the \
                     rest of stdin",
                    timeout.as_secs_f64()
                );
            }
            Err(e) => {
                eprintln!("kepmlog: {e}");
                unsent += 1;
            }
        }
    }
    let code = finish(&log, timeout, "line(s)");
    if !c.quiet && skipped > 0 {
        eprintln!("kepmlog: pipe: {sent} line(s) sent, {skipped} empty line(s) skipped");
    }
    if unsent > 0 {
        eprintln!("kepmlog: pipe: {unsent} line(s) not sent");
        return ExitCode::from(NOT_DELIVERED);
    }
    code
}

/// Recognises a level prefix: `ERROR: x`, `[error] x`, `[WARN]: x`, `Fatal: x`. Returns the
/// level and the message without the prefix.
pub(crate) fn detect_level(line: &str) -> Option<(Level, &str)> {
    let t = line.trim_start();
    let (word, rest) = if let Some(r) = t.strip_prefix('[') {
        let (w, rest) = r.split_once(']')?;
        (w, rest.strip_prefix(':').unwrap_or(rest))
    } else {
        let (w, rest) = t.split_once(':')?;
        (w, rest)
    };
    let level = match word.trim().to_ascii_lowercase().as_str() {
        "error" | "err" => Level::Error,
        "warn" | "warning" => Level::Warning,
        "info" => Level::Info,
        "debug" => Level::Debug,
        "critical" | "crit" | "fatal" => Level::Critical,
        "verbose" | "trace" => Level::Verbose,
        _ => return None,
    };
    Some((level, rest.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_prefixes() {
        for (line, level, msg) in [
            ("ERROR: disk full", Level::Error, "disk full"),
            ("error:disk full", Level::Error, "disk full"),
            ("[WARN] slow", Level::Warning, "slow"),
            ("[warning]: slow", Level::Warning, "slow"),
            ("  INFO: x", Level::Info, "x"),
            ("DEBUG: y", Level::Debug, "y"),
            ("FATAL: z", Level::Critical, "z"),
            ("Critical: z", Level::Critical, "z"),
            ("[TRACE] t", Level::Verbose, "t"),
            ("VERBOSE: v", Level::Verbose, "v"),
        ] {
            assert_eq!(detect_level(line), Some((level, msg)), "{line}");
        }
        for none in ["no prefix here", "http://x", "[build] ok", "Note: x", ""] {
            assert_eq!(detect_level(none), None, "{none}");
        }
    }
}
