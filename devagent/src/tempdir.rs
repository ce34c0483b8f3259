//! The devagent's private temp dir (Mosquitto's config, certificates, password file and
//! persistence database), removed on drop.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::error::Error;

/// The name every devagent temp dir starts with; the owner's pid follows, so that a later
/// devagent can tell which ones were left by a process that is gone.
const PREFIX: &str = "kepm-devagent-";

/// A private temp dir, removed on drop.
pub(crate) struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new() -> Result<TempDir, Error> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale_dirs);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| Error::io("creating the devagent's temp dir", e))?;
        // tempfile creates it 0700; Mosquitto drops root privileges to user `mosquitto`,
        // which must reach the files.
        set_mode(dir.path(), 0o755)?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn write(&self, name: &str, contents: &str, mode: u32) -> Result<PathBuf, Error> {
        let p = self.path().join(name);
        std::fs::write(&p, contents)
            .map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
        set_mode(&p, mode)?;
        Ok(p)
    }
}

/// Removes temp dirs left by devagents that died without cleaning up: tempfile removes its
/// dir on drop, which a SIGKILLed process never reaches, and a test suite that is killed
/// repeatedly would otherwise fill /tmp with certificates and broker databases. Their
/// brokers are gone too: the watchdog stops them when the owner dies.
fn sweep_stale_dirs() {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(unix)]
pub(crate) fn set_mode(p: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {mode:o} {}", p.display()), e))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_p: &Path, _mode: u32) -> Result<(), Error> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn mosquitto_can_reach_it_and_drop_removes_it() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().to_path_buf();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.starts_with(&format!("{PREFIX}{}-", std::process::id())),
            "{name}"
        );
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o755);
        let f = dir.write("acl", "topic write x\n", 0o644).expect("write");
        assert_eq!(mode(&f), 0o644);
        drop(dir);
        assert!(!path.exists());
    }
}
