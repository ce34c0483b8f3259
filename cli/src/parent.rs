//! Who called us: the job script the agent started. The agent passes
//! `--keeper-api-base={KeeperApiBaseUrl}` to the script, not to `kepmlog`, so the script's
//! command line is where the library's discovery rule finds the API base; and the script's
//! name makes a better token than "kepmlog".
//!
//! Linux only (`/proc`). Windows and macOS have no way to read another process's command
//! line without `unsafe` platform calls (which this crate forbids), so there nothing is found
//! and the defaults apply: the script passes `--keeper-api-base` and `--token` explicitly (or
//! sets KEEPER_API_BASE / KEPMLOG_TOKEN once). Only `caller` and `Caller` exist on every OS;
//! the parsing below is compiled where it is used (Linux, and the tests everywhere).

/// What the calling script's command line says.
#[derive(Debug, Default, PartialEq)]
pub struct Caller {
    /// `--keeper-api-base` from its arguments.
    pub api_base: Option<String>,
    /// Token from the script's file name.
    pub script_token: Option<String>,
    /// The program is a shell or interpreter (its script, if any, is `script_token`).
    pub interpreted: bool,
}

/// Shells and interpreters whose first operand is the script (`kepmlog run -- python3
/// tool.py` is known as `tool`, as is `bash tool.sh`).
const INTERPRETERS: &[&str] = &[
    "bash",
    "sh",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "ash",
    "busybox",
    "pwsh",
    "powershell",
    "env",
    "cmd",
    "python",
    "python3",
    "py",
    "node",
    "perl",
    "ruby",
];
/// Ancestors to look at: a pipeline stage or `$(...)` runs in a subshell of the script.
#[cfg(target_os = "linux")]
const MAX_DEPTH: usize = 4;

/// The calling script's command line, read once per process: the logger, `run`'s child
/// environment and `doctor` all ask, and the ancestors' `/proc` entries do not change.
pub fn caller() -> Option<&'static Caller> {
    static CALLER: std::sync::OnceLock<Option<Caller>> = std::sync::OnceLock::new();
    CALLER.get_or_init(read_caller).as_ref()
}

fn read_caller() -> Option<Caller> {
    #[cfg(target_os = "linux")]
    {
        let mut pid = std::os::unix::process::parent_id();
        let mut found = Caller::default();
        for depth in 0..MAX_DEPTH {
            if pid <= 1 {
                break;
            }
            let Some(args) = cmdline(pid) else { break };
            let c = from_args(&args);
            // Only a script that calls us names us: further up are the agent or a terminal,
            // and a parent that is no interpreter is the agent itself when kepmlog is the
            // task (its name, e.g. the devagent's, is not this job's tool).
            if depth == 0 && c.interpreted {
                found.script_token = c.script_token;
            }
            if c.api_base.is_some() {
                found.api_base = c.api_base;
                break;
            }
            match parent_of(pid) {
                Some(p) => pid = p,
                None => break,
            }
        }
        Some(found)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(target_os = "linux")]
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

#[cfg(target_os = "linux")]
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Reads a command line: the API base from `--keeper-api-base`, and the script name (the
/// first operand of an interpreter, else the program itself). Used on every OS for the
/// command line of `kepmlog run`'s child.
pub fn from_args(args: &[String]) -> Caller {
    let mut c = Caller::default();
    let base = kepmlog::identity::api_base_from_args(args);
    if args
        .iter()
        .any(|a| a.starts_with(kepmlog::identity::API_BASE_FLAG))
        && base != kepmlog::DEFAULT_API_BASE
    {
        c.api_base = Some(base);
    }
    let Some(prog) = args.first() else { return c };
    let prog_name = std::path::Path::new(prog)
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    // A login shell's argv[0] is "-bash".
    let prog_name = prog_name.trim_start_matches('-');
    c.interpreted = INTERPRETERS.contains(&prog_name);
    let script = if c.interpreted {
        let mut it = args.iter().skip(1);
        let mut script = None;
        while let Some(a) = it.next() {
            let l = a.to_ascii_lowercase();
            if l == "-file" || (l == "-f" && prog_name.starts_with("pw")) || l == "/c" || l == "/k"
            {
                script = it.next().cloned();
                break;
            }
            if l == "-c" || l == "-command" || l == "-encodedcommand" {
                break;
            }
            if a.starts_with('-') || a.starts_with('+') {
                continue;
            }
            script = Some(a.clone());
            break;
        }
        script
    } else {
        Some(prog.clone())
    };
    c.script_token = script.as_deref().and_then(script_token);
    c
}

/// The file stem of a script path, made into a token (the library's rule for executables).
fn script_token(path: &str) -> Option<String> {
    // The interpreter name is never used: `script` is only set for a real script path.
    Some(kepmlog::identity::script_token(Some(path), "kepmlog"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scripts_and_api_base() {
        let c = from_args(&args(&[
            "/bin/bash",
            "/opt/kepm/Jobs/bin/scan/scan",
            "--keeper-api-base=https://127.0.0.1:7000",
        ]));
        assert_eq!(c.api_base.as_deref(), Some("https://127.0.0.1:7000"));
        assert_eq!(c.script_token.as_deref(), Some("scan"));
        let c = from_args(&args(&["bash", "-e", "./build.sh"]));
        assert_eq!(c.script_token.as_deref(), Some("build"));
        assert_eq!(c.api_base, None);
        let c = from_args(&args(&["pwsh", "-NoProfile", "-File", "C:/jobs/clean.ps1"]));
        assert_eq!(c.script_token.as_deref(), Some("clean"));
        let c = from_args(&args(&["bash", "-c", "kepmlog log x"]));
        assert_eq!(c.script_token, None);
        let c = from_args(&args(&["cmd", "/c", "script.bat"]));
        assert_eq!(c.script_token.as_deref(), Some("script"));
        let c = from_args(&args(&["python3", "-u", "/opt/tools/sync_db.py", "--full"]));
        assert_eq!(c.script_token.as_deref(), Some("sync-db"));
        let c = from_args(&args(&["-bash"]));
        assert_eq!(c.script_token, None);
        let c = from_args(&args(&[
            "/usr/local/bin/my_tool",
            "--keeper-api-base",
            "https://127.0.0.1:1",
        ]));
        assert_eq!(c.script_token.as_deref(), Some("my-tool"));
        assert_eq!(c.api_base.as_deref(), Some("https://127.0.0.1:1"));
        // caller() names kepmlog after its parent only when that is a script: a parent that
        // is a program is the agent when kepmlog is the task.
        assert!(!c.interpreted);
        assert!(from_args(&args(&["kepm-devagent", "run", "job.json"]))
            .script_token
            .is_some());
        assert!(!from_args(&args(&["kepm-devagent", "run", "job.json"])).interpreted);
        assert!(from_args(&args(&["bash", "-e", "./build.sh"])).interpreted);
    }

    #[test]
    fn tokens_from_script_paths() {
        assert_eq!(script_token("/opt/jobs/scan.sh").as_deref(), Some("scan"));
        // Backslashes separate directories only on Windows.
        assert_eq!(
            script_token("C:\\jobs\\Clean_Up.ps1").as_deref(),
            if cfg!(windows) {
                Some("Clean-Up")
            } else {
                Some("C-jobs-Clean-Up")
            }
        );
    }
}
