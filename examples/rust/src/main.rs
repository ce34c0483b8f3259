//! A KEPM job tool: scans a directory tree for files that look like they hold secrets and
//! reports counts and paths (never the secrets) to the agent's KeeperLogger through kepmlog.
//!
//! Started by the agent as `secret-scanner --keeper-api-base=https://127.0.0.1:6889 [DIR]`
//! with `KEEPER_JOB_ID` in its environment.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use kepmlog::{Logger, Options};

/// Markers of credentials that should not sit in plain files. Only whether a file contains
/// one is reported.
const MARKERS: &[&str] = &[
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----",
    "AKIA",
    "password=",
    "secret_key",
];
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_FILES: usize = 20_000;

fn main() -> ExitCode {
    let log = match Logger::new(Options::new("SecretScanner").default_category("SecretsScan")) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("secret-scanner: cannot log to KEPM: {e}");
            return ExitCode::from(2);
        }
    };
    let root = scan_root();
    let code = run(&log, &root);
    // Deliver everything before the agent records the exit code.
    if let Err(e) = log.shutdown(Duration::from_secs(10)) {
        eprintln!("secret-scanner: {e}");
    }
    code
}

/// The first argument that is not a `--flag` (or the value of `--keeper-api-base`), else ".".
fn scan_root() -> PathBuf {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--keeper-api-base" {
            args.next();
        } else if !a.starts_with("--") {
            return PathBuf::from(a);
        }
    }
    PathBuf::from(".")
}

fn run(log: &Logger, root: &Path) -> ExitCode {
    let _ = log.info(
        "Startup",
        &format!("Scanning {} for plain-text secrets", root.display()),
    );
    let _ = log.event(&serde_json::json!({"phase": "scan", "status": "started"}));
    let mut files = Vec::new();
    collect(root, &mut files, log);
    let mut flagged = 0usize;
    for (n, path) in files.iter().enumerate() {
        match scan_file(path) {
            Ok(true) => {
                flagged += 1;
                let _ = log.warning("Finding", &format!("Possible secret in {}", path.display()));
            }
            Ok(false) => {}
            Err(e) => {
                let _ = log.debug("Access", &format!("Skipped {}: {e}", path.display()));
            }
        }
        if (n + 1) % 1000 == 0 {
            let _ = log.event(&serde_json::json!({"phase": "scan", "files": n + 1}));
        }
    }
    let summary = format!(
        "Scan complete: {flagged} issue(s) detected in {} file(s).",
        files.len()
    );
    let _ = log.event(&serde_json::json!({"phase": "scan", "status": "done", "files": files.len(), "issues": flagged}));
    // Findings are the report, not a failure of the task: the exit code stays 0.
    if flagged > 0 {
        let _ = log.warning("SecretsScan", &summary);
    } else {
        let _ = log.info("SecretsScan", &summary);
    }
    ExitCode::SUCCESS
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, log: &Logger) {
    if out.len() >= MAX_FILES {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let _ = log.warning("Access", &format!("Cannot read {}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect(&path, out, log),
            Ok(t) if t.is_file() && out.len() < MAX_FILES => out.push(path),
            _ => {}
        }
    }
}

fn scan_file(path: &Path) -> std::io::Result<bool> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > MAX_FILE_BYTES {
        return Ok(false);
    }
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(MARKERS.iter().any(|m| text.contains(m)))
}
