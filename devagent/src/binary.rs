//! Where the agent finds a task's binary: `executablePath`, else
//! `{agent-root}/Jobs/bin/{command}/{command}`, else `command` on `PATH`. Lint checks it and
//! `run` starts what it finds.

use std::path::{Path, PathBuf};

use crate::os::Os;

/// `{root}/Jobs/bin/{command}/{command}` (`.exe` on Windows).
pub fn bin_path(root: &Path, command: &str, host: Os) -> PathBuf {
    root.join("Jobs")
        .join("bin")
        .join(command)
        .join(format!("{command}{}", host.exe_suffix()))
}

/// Resolves a task's binary like the agent: `executablePath` when set (and then only it),
/// else `{agent_root}/Jobs/bin/{command}/{command}`, else `command` on `PATH`. On failure,
/// returns the places tried.
pub fn resolve_binary(
    command: &str,
    executable_path: Option<&str>,
    agent_root: Option<&Path>,
    host: Os,
) -> Result<PathBuf, Vec<String>> {
    if let Some(p) = executable_path {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(vec![p.display().to_string()])
        };
    }
    let mut tried = Vec::new();
    if let Some(root) = agent_root {
        let p = bin_path(root, command, host);
        if is_executable(&p) {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    if !command.contains(['/', '\\']) && !command.is_empty() {
        let exe = format!("{command}{}", host.exe_suffix());
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let p = dir.join(&exe);
                if is_executable(&p) {
                    return Ok(p);
                }
            }
        }
        tried.push(format!("{exe} on PATH"));
    }
    Err(tried)
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}
