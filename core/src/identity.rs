//! Who the job is to the broker: job id, executable token, client id, API base.

use std::path::Path;

use crate::error::Error;
use crate::options::DEFAULT_API_BASE;

/// Environment variable the agent sets to the job's `id` (only when `mqttTopics` is declared).
pub const ENV_JOB_ID: &str = "KEEPER_JOB_ID";
/// Environment variable the agent sets to the job's `name`.
pub const ENV_JOB_NAME: &str = "KEEPER_JOB_NAME";
/// The task argument the agent substitutes with the HTTPS API base.
pub const API_BASE_FLAG: &str = "--keeper-api-base";

/// Checks a job id for use in `{jobId}_{token}_{pid}`: the broker splits client ids on `_`.
pub fn validate_job_id(job_id: &str) -> Result<(), Error> {
    let invalid = |reason: &str| {
        Err(Error::InvalidJobId {
            job_id: job_id.to_string(),
            reason: reason.to_string(),
        })
    };
    if job_id.is_empty() {
        return Err(Error::MissingJobId);
    }
    if job_id.contains('_') {
        return invalid("it contains '_', which the broker uses to split client ids");
    }
    if let Some(c) = job_id.chars().find(|&c| {
        c.is_whitespace()
            || c.is_control()
            || is_noncharacter(c)
            || matches!(c, '/' | '\\' | '+' | '#')
    }) {
        return invalid(&format!("it contains {c:?}"));
    }
    Ok(())
}

/// Unicode noncharacters (U+FDD0..U+FDEF and every U+xxFFFE, U+xxFFFF): MQTT 5 lets a broker
/// treat a client id holding one as a malformed packet, which would refuse every connect.
fn is_noncharacter(c: char) -> bool {
    let u = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE
}

/// Checks an explicit token: letters, digits and hyphens.
pub fn validate_token(token: &str) -> Result<(), Error> {
    if token.is_empty() {
        return Err(Error::InvalidToken {
            token: token.to_string(),
            reason: "it is empty".to_string(),
        });
    }
    if let Some(c) = token
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(Error::InvalidToken {
            token: token.to_string(),
            reason: format!("it contains {c:?}"),
        });
    }
    Ok(())
}

/// Makes a token out of a name: ASCII letters, digits and hyphens, at most 64 characters.
/// Every other run of characters becomes one hyphen; `"job"` when nothing usable is left.
pub fn safe_token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
        if out.len() >= 64 {
            break;
        }
    }
    if out.is_empty() {
        "job".to_string()
    } else {
        out
    }
}

/// The token of the running executable: its file stem (`.exe` dropped on Windows), made safe.
pub fn executable_token(args: &[String]) -> String {
    let from_exe = std::env::current_exe().ok().and_then(|p| path_token(&p));
    from_exe
        .or_else(|| args.first().and_then(|a| path_token(Path::new(a))))
        .unwrap_or_else(|| "job".to_string())
}

/// The token of an executable path: its file stem, made safe. `C:\Jobs\bin\Tool\Tool.exe`
/// gives `Tool` on Windows (where `\` separates directories and the agent starts
/// `{command}.exe`), as `/opt/jobs/bin/Tool/Tool` does everywhere, so one job file yields one
/// client id on every OS. `None` when the path has no file name.
pub fn path_token(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy();
    Some(safe_token(&stem))
}

/// The token of a tool run by an interpreter (Python, Node, a shell): its script's name, not
/// the interpreter's, so `python3 /opt/jobs/bin/scan/scan.py` is `scan` as a compiled `scan`
/// would be. `interpreter` is the token when there is no script file (`-c`, `-m`, `-`, a REPL);
/// a script named `__main__` (`python -m package`) is named after its directory.
pub fn script_token(script: Option<&str>, interpreter: &str) -> String {
    let script = script.map(str::trim).unwrap_or("");
    if matches!(
        script,
        "" | "-" | "-c" | "-m" | "-e" | "-p" | "[eval]" | "[stdin]"
    ) {
        return safe_token(interpreter);
    }
    let path = Path::new(script);
    match path_token(path) {
        // Absolute first, as Python's own `__main__` handling sees it: `python __main__.py`
        // run inside the package directory is named after that directory.
        Some(stem) if stem == "main" && is_main_module(path) => std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .parent()
            .and_then(|dir| dir.file_name())
            .map(|dir| safe_token(&dir.to_string_lossy()))
            .unwrap_or_else(|| safe_token(interpreter)),
        Some(stem) => stem,
        None => safe_token(interpreter),
    }
}

/// `__main__.py` (safe_token turns `__main__` into `main`, so ask the path itself).
fn is_main_module(path: &Path) -> bool {
    path.file_stem().is_some_and(|s| s == "__main__")
}

/// `{jobId}_{token}_{pid}`.
pub fn client_id(job_id: &str, token: &str, pid: u32) -> String {
    format!("{job_id}_{token}_{pid}")
}

/// The API base from `--keeper-api-base=URL` or `--keeper-api-base URL`, else the default.
pub fn api_base_from_args(args: &[String]) -> String {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix(API_BASE_FLAG) {
            if let Some(v) = value.strip_prefix('=') {
                if !v.is_empty() {
                    return v.trim_end_matches('/').to_string();
                }
            } else if value.is_empty() {
                if let Some(v) = iter.next() {
                    return v.trim_end_matches('/').to_string();
                }
            }
        }
    }
    DEFAULT_API_BASE.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn job_ids() {
        assert!(validate_job_id("secrets-scanner").is_ok());
        let e = validate_job_id("secrets_scanner").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidJobId);
        assert!(e.to_string().contains("hyphens"), "{e}");
        assert_eq!(validate_job_id(""), Err(Error::MissingJobId));
        assert!(validate_job_id("a b").is_err());
        assert!(validate_job_id("a/b").is_err());
    }

    #[test]
    fn tokens() {
        assert_eq!(safe_token("Secret_Scanner v2.exe"), "Secret-Scanner-v2-exe");
        assert_eq!(safe_token("__"), "job");
        assert_eq!(safe_token("scan"), "scan");
        assert!(safe_token(&"x".repeat(200)).len() <= 64);
        assert!(validate_token("SecretScanner").is_ok());
        assert!(validate_token("Secret_Scanner").is_err());
        assert!(validate_token("").is_err());
        assert_eq!(
            client_id("secrets-scanner", "SecretScanner", 48292),
            "secrets-scanner_SecretScanner_48292"
        );
    }

    /// What the broker must never see in a client id: its separator `_`, MQTT's topic
    /// characters, path separators, NUL and every other control or whitespace character.
    fn forbidden_in_client_id(c: char) -> bool {
        c.is_control()
            || c.is_whitespace()
            || is_noncharacter(c)
            || matches!(c, '_' | '/' | '\\' | '+' | '#')
    }

    #[test]
    fn no_character_can_put_a_forbidden_one_into_a_client_id() {
        let mut accepted_job_chars = 0;
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let job_id = format!("job{c}id");
            let valid_job = validate_job_id(&job_id).is_ok();
            assert_eq!(valid_job, !forbidden_in_client_id(c), "{c:?} in a job id");
            accepted_job_chars += usize::from(valid_job);
            // A token made from any name, and an explicit one only when it is safe.
            let token = safe_token(&format!("To{c}ol{c}"));
            assert!(validate_token(&token).is_ok(), "{c:?} made token {token:?}");
            let explicit = format!("To{c}ol");
            if validate_token(&explicit).is_ok() {
                assert!(c.is_ascii_alphanumeric() || c == '-', "{c:?} in a token");
            }
            if valid_job {
                let id = client_id(&job_id, &token, u32::MAX);
                assert_eq!(id.matches('_').count(), 2, "{id:?}");
                assert!(
                    !id.chars().any(forbidden_in_client_id_but_separator),
                    "{c:?} gave {id:?}"
                );
            }
        }
        // Letters of every script stay usable in job ids.
        assert!(accepted_job_chars > 1_000_000, "{accepted_job_chars}");
    }

    fn forbidden_in_client_id_but_separator(c: char) -> bool {
        c != '_' && forbidden_in_client_id(c)
    }

    #[test]
    fn executable_tokens() {
        let token = |p: &str| path_token(Path::new(p));
        assert_eq!(
            token("/opt/kepm/Jobs/bin/Tool/Tool").as_deref(),
            Some("Tool")
        );
        assert_eq!(token("Tool.exe").as_deref(), Some("Tool"));
        assert_eq!(
            token("secret_scanner.EXE").as_deref(),
            Some("secret-scanner")
        );
        assert_eq!(token("/"), None);
        if cfg!(windows) {
            for p in [
                r"C:\Program Files\Keeper\Jobs\bin\Tool\Tool.exe",
                r"\\?\C:\Program Files\Keeper\Jobs\bin\Tool\Tool.exe",
                r"C:/Jobs/bin/Tool/Tool.exe",
            ] {
                assert_eq!(token(p).as_deref(), Some("Tool"), "{p}");
            }
        }
        // The running test binary has a name, so the fallback to args is not taken.
        assert_ne!(executable_token(&[]), "job");
    }

    #[test]
    fn api_base_forms() {
        assert_eq!(
            api_base_from_args(&args(&[
                "tool",
                "--keeper-api-base=https://127.0.0.1:7000/"
            ])),
            "https://127.0.0.1:7000"
        );
        assert_eq!(
            api_base_from_args(&args(&[
                "tool",
                "--keeper-api-base",
                "https://127.0.0.1:7001"
            ])),
            "https://127.0.0.1:7001"
        );
        assert_eq!(
            api_base_from_args(&args(&["tool", "--keeper-api-base"])),
            DEFAULT_API_BASE
        );
        assert_eq!(
            api_base_from_args(&args(&["tool", "--other=1"])),
            DEFAULT_API_BASE
        );
        assert_eq!(
            api_base_from_args(&args(&["tool", "--keeper-api-baseX=1"])),
            DEFAULT_API_BASE
        );
    }

    #[test]
    fn script_tokens() {
        assert_eq!(
            script_token(Some("/opt/kepm/Jobs/bin/scan/scan.py"), "python"),
            "scan"
        );
        assert_eq!(script_token(Some("./build.sh"), "bash"), "build");
        assert_eq!(script_token(Some("C:/jobs/clean.ps1"), "pwsh"), "clean");
        assert_eq!(
            script_token(Some("/src/tool/__main__.py"), "python"),
            "tool"
        );
        let here = std::env::current_dir().unwrap();
        let dir = safe_token(&here.file_name().unwrap().to_string_lossy());
        assert_eq!(script_token(Some("__main__.py"), "python"), dir);
        assert_eq!(script_token(Some("my tool.js"), "node"), "my-tool");
        for none in [
            None,
            Some(""),
            Some("-"),
            Some("-c"),
            Some("-m"),
            Some("[eval]"),
        ] {
            assert_eq!(script_token(none, "python3.11"), "python3-11");
        }
    }
}
