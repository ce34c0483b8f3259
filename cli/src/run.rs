//! `kepmlog run -- PROGRAM [ARGS...]`: kepmlog as the job's task, the child's output as
//! records. The agent trusts the process its runner started; here that is kepmlog itself,
//! so the script it runs needs no signature to be heard.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use kepmlog::{Error, Level, Logger, Overflow};

use crate::protocol::{self, Line};
use crate::tree::{self, Stop};
use crate::Common;

#[derive(Args)]
pub struct RunArgs {
    /// Level of each stdout line without a command or detected prefix.
    #[arg(long, default_value = "info", value_parser = crate::parse_level)]
    stdout_level: Level,
    /// Level of each stderr line without a command or detected prefix.
    #[arg(long, default_value = "warning", value_parser = crate::parse_level)]
    stderr_level: Level,
    /// MetaData.Category of every line a command does not give one (default "General").
    #[arg(long, short, env = "KEPMLOG_CATEGORY", default_value = "")]
    category: String,
    /// Take a text line's level from a prefix such as "ERROR:", "[WARN]" (as `pipe` does).
    #[arg(long, short = 'd')]
    detect_level: bool,
    /// Copy the child's stdout to kepmlog's stdout byte for byte, and its stderr to stderr,
    /// except protocol command lines (::warning::..., ::event::...).
    #[arg(long)]
    tee: bool,
    /// End the child after SECS: SIGTERM to its process group (Windows: the Job Object is
    /// closed), an Error record "timed out after SECS s", the flush, exit 124. Set it below
    /// the task's timeoutSeconds minus --kill-grace minus --timeout.
    #[arg(long, value_name = "SECS")]
    deadline: Option<f64>,
    /// Seconds between asking the child to stop (a forwarded signal, --deadline) and
    /// SIGKILL; also how long output is awaited from what the child left running.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    kill_grace: f64,
    /// Event topic of `::event::` lines (default: the job's Jobs/{jobId}/events).
    #[arg(long, value_name = "TOPIC", env = "KEPMLOG_EVENT_TOPIC")]
    event_topic: Option<String>,
    /// The program and its arguments, after `--`.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, value_name = "PROGRAM")]
    command: Vec<String>,
}

/// The largest line read whole: an event's cap and room for its `::event::` prefix. Longer
/// lines are read to their end but only this much is logged (and the core cuts a message at
/// its own, smaller cap), so a child writing without newlines cannot exhaust memory.
const LINE_CAP: usize = kepmlog::MAX_EVENT_BYTES + 1024;

/// What `timeout(1)` answers for a deadline, so scripts can tell it from the child's codes.
const TIMED_OUT: u8 = 124;
const CANNOT_START: u8 = 127;

struct Ctx {
    log: Logger,
    category: String,
    stdout_level: Level,
    stderr_level: Level,
    detect_level: bool,
    tee: bool,
    timeout: Duration,
    giving_up: AtomicBool,
    sent: AtomicU64,
    skipped: AtomicU64,
    unsent: AtomicU64,
    malformed: AtomicU64,
}

enum Ev {
    Exited(io::Result<ExitStatus>),
    Signal(Stop),
    ReaderDone,
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

pub fn run(c: &Common, a: &RunArgs, timeout: Duration) -> ExitCode {
    let (grace, deadline) = match (secs(a.kill_grace), a.deadline.map(secs)) {
        (Some(g), None) => (g, None),
        (Some(g), Some(Some(d))) => (g, Some(d)),
        _ => {
            eprintln!("kepmlog: --deadline and --kill-grace must be non-negative seconds");
            return ExitCode::from(crate::BAD_INPUT);
        }
    };
    let Some((program, args)) = a.command.split_first() else {
        eprintln!("kepmlog: run needs a program: kepmlog run -- PROGRAM [ARGS...]");
        return ExitCode::from(crate::BAD_INPUT);
    };
    // The registered process is kepmlog, but the operator knows the job by its script.
    let token = crate::parent::from_args(&a.command)
        .script_token
        .unwrap_or_else(|| "kepmlog".to_string());
    let log = match crate::logger(
        c,
        Overflow::Block(timeout.max(Duration::from_secs(1))),
        a.event_topic.as_deref(),
        Some(token),
    ) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let ctx = Arc::new(Ctx {
        log,
        category: a.category.clone(),
        stdout_level: a.stdout_level,
        stderr_level: a.stderr_level,
        detect_level: a.detect_level,
        tee: a.tee,
        timeout,
        giving_up: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        unsent: AtomicU64::new(0),
        malformed: AtomicU64::new(0),
    });

    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("KEEPER_API_BASE", crate::api_base(c))
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut child, mut tree) = match tree::spawn(&mut cmd) {
        Ok(x) => x,
        Err(e) => {
            let why = format!("could not start {program}: {e}");
            eprintln!("kepmlog: {why}");
            let _ = ctx.log.log(Level::Error, &ctx.category, &why);
            let _ = crate::finish(&ctx.log, timeout, "record(s)");
            return ExitCode::from(CANNOT_START);
        }
    };

    let (tx, rx) = mpsc::channel();
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        readers += spawn_reader(out, Stream::Stdout, &ctx, &tx);
    }
    if let Some(err) = child.stderr.take() {
        readers += spawn_reader(err, Stream::Stderr, &ctx, &tx);
    }
    let waiter = tx.clone();
    if let Err(e) = std::thread::Builder::new()
        .name("child".into())
        .spawn(move || {
            let _ = waiter.send(Ev::Exited(child.wait()));
        })
    {
        eprintln!("kepmlog: cannot start the thread that waits for the child: {e}");
        tree.kill();
        return ExitCode::from(crate::NOT_DELIVERED);
    }
    if let Err(e) = install_signal_handlers(tx.clone()) {
        eprintln!("kepmlog: cannot catch SIGTERM/SIGINT ({e}); they will end kepmlog at once");
    }
    drop(tx);

    let start = Instant::now();
    let mut stopped: Option<Stopped> = None;
    let mut kill_at: Option<Instant> = None;
    let mut done_readers = 0;
    let status = loop {
        let wake = match (&stopped, deadline) {
            (None, Some(d)) => Some(start + d),
            (Some(_), _) => kill_at,
            (None, None) => None,
        };
        let ev = match wake {
            Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match ev {
            Ok(Ev::Exited(s)) => break s,
            Ok(Ev::ReaderDone) => done_readers += 1,
            Ok(Ev::Signal(sig)) => {
                if stopped.is_none() {
                    tree.signal(sig);
                    stopped = Some(Stopped::Signal(sig));
                    kill_at = Some(Instant::now() + grace);
                }
            }
            Err(RecvTimeoutError::Timeout) if stopped.is_none() => {
                tree.signal(Stop::Term);
                stopped = Some(Stopped::Deadline(deadline.unwrap_or_default()));
                kill_at = Some(Instant::now() + grace);
            }
            Err(RecvTimeoutError::Timeout) => {
                tree.kill();
                kill_at = None;
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(io::Error::other("lost the thread that waits for the child"))
            }
        }
    };
    // The child is gone; what it started may still hold the pipes. Its output is awaited for
    // the grace period, then the rest of its group is ended.
    let until = Instant::now() + grace;
    let mut killed = false;
    while done_readers < readers {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Ev::ReaderDone) => done_readers += 1,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) if !killed => {
                tree.kill();
                killed = true;
            }
            Err(_) => break,
        }
    }
    tree.kill();
    let _ = io::stdout().flush();

    let code = outcome(&ctx, program, status, stopped);
    let delivered = crate::finish(&ctx.log, timeout, "line(s)");
    let unsent = ctx.unsent.load(Ordering::Relaxed);
    if unsent > 0 {
        eprintln!("kepmlog: run: {unsent} line(s) not sent");
    }
    let malformed = ctx.malformed.load(Ordering::Relaxed);
    if !c.quiet && malformed > 0 {
        eprintln!("kepmlog: run: {malformed} malformed command line(s) logged as text");
    }
    if delivered != ExitCode::SUCCESS || unsent > 0 {
        eprintln!("kepmlog: run: exiting with the child's status {code} although lines were not delivered");
    }
    ExitCode::from(code)
}

enum Stopped {
    Signal(Stop),
    Deadline(Duration),
}

fn secs(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok()
}

/// The exit code, with the Error record the operator reads when the child did not end well.
fn outcome(
    ctx: &Ctx,
    program: &str,
    status: io::Result<ExitStatus>,
    stopped: Option<Stopped>,
) -> u8 {
    let (level, text, code) = match (stopped, status) {
        (Some(Stopped::Deadline(d)), _) => (
            Level::Error,
            format!(
                "timed out after {} s: {program} was ended (--deadline)",
                d.as_secs_f64()
            ),
            TIMED_OUT,
        ),
        (_, Err(e)) => (
            Level::Error,
            format!("lost track of {program}: {e}"),
            crate::NOT_DELIVERED,
        ),
        (stop, Ok(s)) => {
            let (code, signal) = exit_code(s);
            let text = match (stop, signal) {
                (Some(Stopped::Signal(sig)), _) => {
                    format!("kepmlog received {sig:?}: {program} was stopped ({s})")
                }
                (None, Some(n)) => format!("{program} was killed by signal {n}"),
                (None, None) if code != 0 => format!("{program} exited with status {code}"),
                _ => return code,
            };
            (Level::Error, text, code)
        }
    };
    if let Err(e) = ctx.log.log(level, &ctx.category, &text) {
        eprintln!("kepmlog: {e}");
    }
    eprintln!("kepmlog: {text}");
    code
}

/// The child's code; a signal death is 128+n (as shells report it) and names the signal.
fn exit_code(s: ExitStatus) -> (u8, Option<i32>) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(n) = s.signal() {
            return (u8::try_from(128 + n).unwrap_or(255), Some(n));
        }
    }
    // Windows codes are 32-bit; the agent reads kepmlog's like any task's, so the low byte
    // would mislead: anything that does not fit is 1.
    let code = s.code().unwrap_or(1);
    (u8::try_from(code).unwrap_or(1), None)
}

/// 1 when the reader thread started (counted by the caller).
fn spawn_reader<R: Read + Send + 'static>(
    input: R,
    stream: Stream,
    ctx: &Arc<Ctx>,
    tx: &Sender<Ev>,
) -> usize {
    let ctx = Arc::clone(ctx);
    let tx = tx.clone();
    let started = std::thread::Builder::new()
        .name(match stream {
            Stream::Stdout => "stdout".into(),
            Stream::Stderr => "stderr".into(),
        })
        .spawn(move || {
            pump(BufReader::with_capacity(64 * 1024, input), stream, &ctx);
            let _ = tx.send(Ev::ReaderDone);
        });
    match started {
        Ok(_) => 1,
        Err(e) => {
            eprintln!("kepmlog: cannot start a reader thread: {e}");
            0
        }
    }
}

/// Reads one stream to its end, one record per line, in order. Each record is handed to the
/// logger (and so to the spool, when there is one) before the next line is read.
fn pump<R: BufRead>(mut input: R, stream: Stream, ctx: &Ctx) {
    let default_level = match stream {
        Stream::Stdout => ctx.stdout_level,
        Stream::Stderr => ctx.stderr_level,
    };
    let mut buf = Vec::new();
    loop {
        let tee = ctx.tee.then_some(stream);
        let overflowed = match next_line(&mut input, &mut buf, LINE_CAP, tee) {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(e) => {
                eprintln!("kepmlog: reading the child's output: {e}");
                break;
            }
        };
        let raw = String::from_utf8_lossy(&buf);
        let line = raw.trim_end_matches(['\n', '\r']);
        let parsed = if overflowed {
            Line::Text(line)
        } else {
            protocol::parse(line)
        };
        let is_command = matches!(parsed, Line::Log(_) | Line::Event(_));
        if let (Some(s), false, false) = (tee, is_command, overflowed) {
            write_through(s, &[&buf]);
        }
        ctx.send(parsed, line, default_level);
    }
}

impl Ctx {
    fn send(&self, parsed: Line<'_>, line: &str, default_level: Level) {
        if self.giving_up.load(Ordering::Relaxed) {
            self.unsent.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let result = match parsed {
            Line::Event(json) => self.log.event_json(json).map(Some),
            Line::Log(r) => self
                .log
                .log_with(
                    r.level.unwrap_or(default_level),
                    r.category.as_deref().unwrap_or(&self.category),
                    &r.message,
                    &r.correlation_id,
                    &r.context,
                )
                .map(Some),
            Line::Malformed(why) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                eprintln!("kepmlog: malformed command ({why}); logged as text: {line}");
                self.text(line, default_level)
            }
            Line::Text(t) => self.text(t, default_level),
        };
        match result {
            Ok(Some(())) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(None) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::QueueFull { .. }) => {
                self.unsent.fetch_add(1, Ordering::Relaxed);
                if !self.giving_up.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "kepmlog: the broker has not taken a record for {:.1}s; not sending \
                         the rest of the child's output",
                        self.timeout.as_secs_f64()
                    );
                }
            }
            Err(e) => {
                eprintln!("kepmlog: {e}");
                self.unsent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `Ok(None)`: an empty line, skipped (the core refuses empty messages).
    fn text(&self, line: &str, default_level: Level) -> Result<Option<()>, Error> {
        let (level, message) = if self.detect_level {
            crate::detect_level(line).unwrap_or((default_level, line))
        } else {
            (default_level, line)
        };
        if message.trim().is_empty() {
            return Ok(None);
        }
        self.log.log(level, &self.category, message).map(Some)
    }
}

/// Copies bytes to kepmlog's own stream of the same name. Locked per write, never across a
/// read of the child's output, so one stream waiting on the child cannot block the other.
fn write_through(stream: Stream, parts: &[&[u8]]) {
    fn all(mut w: impl Write, parts: &[&[u8]]) {
        for p in parts {
            let _ = w.write_all(p);
        }
        let _ = w.flush();
    }
    match stream {
        Stream::Stdout => all(io::stdout().lock(), parts),
        Stream::Stderr => all(io::stderr().lock(), parts),
    }
}

/// Reads one line into `buf` (with its line ending), keeping at most `cap` bytes. A longer
/// line is read to its end; what does not fit goes to `tee` (after the head), as text.
/// `None` at end of input; else whether the line was longer than `cap`.
fn next_line<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
    tee: Option<Stream>,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut overflowed = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(any.then_some(overflowed));
        }
        any = true;
        let (chunk, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let take = cap.saturating_sub(buf.len()).min(chunk.len());
        buf.extend_from_slice(&chunk[..take]);
        if take < chunk.len() {
            if let Some(s) = tee {
                let head: &[u8] = if overflowed { &[] } else { buf };
                write_through(s, &[head, &chunk[take..]]);
            }
            overflowed = true;
        }
        let n = chunk.len();
        r.consume(n);
        if done {
            return Ok(Some(overflowed));
        }
    }
}

/// SIGTERM/SIGINT (Windows: Ctrl-C) become an [`Ev::Signal`] for the main loop, which
/// forwards them to the child's group and flushes before exiting.
fn install_signal_handlers(tx: Sender<Ev>) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        rt.block_on(async {
            Ok::<_, io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })?
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            #[cfg(unix)]
            let sig = rt.block_on(async {
                tokio::select! {
                    _ = term.recv() => Stop::Term,
                    _ = int.recv() => Stop::Int,
                }
            });
            #[cfg(not(unix))]
            let sig = match rt.block_on(tokio::signal::ctrl_c()) {
                Ok(()) => Stop::Int,
                Err(_) => return,
            };
            if tx.send(Ev::Signal(sig)).is_err() {
                return;
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_capped_and_read_to_their_end() {
        let data = b"short\r\n0123456789abcdef\nlast".to_vec();
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut r, &mut buf, 8, None).ok(), Some(Some(false)));
        assert_eq!(buf, b"short\r\n");
        assert_eq!(next_line(&mut r, &mut buf, 8, None).ok(), Some(Some(true)));
        assert_eq!(buf, b"01234567");
        assert_eq!(next_line(&mut r, &mut buf, 8, None).ok(), Some(Some(false)));
        assert_eq!(buf, b"last");
        assert_eq!(next_line(&mut r, &mut buf, 8, None).ok(), Some(None));
    }
}
