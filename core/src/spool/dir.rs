//! Where a job's spool lives and who may touch it: one directory per job under the spool
//! directory, both private to the user (created 0700; refused when they are symbolic links,
//! belong to another user or are writable by group or others), files created 0600 and opened
//! without following symbolic links. A run is the spool of one logger in one process; it holds
//! an exclusive lock on its lock file for as long as it lives, which the OS lets go when the
//! process ends, however it ends: a run whose lock can be taken is dead.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// One run's files, as found in a job's directory.
#[derive(Debug, Default)]
pub(crate) struct RunFiles {
    pub lock: Option<PathBuf>,
    pub ack: Option<PathBuf>,
    /// By segment number, oldest first.
    pub segments: BTreeMap<u32, PathBuf>,
}

/// `{pid}-{started, ms since the epoch}-{logger}`: unique per logger and process, and ordered
/// by start time across runs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RunName {
    pub started_ms: u64,
    pub pid: u32,
    pub member: u64,
}

impl RunName {
    pub fn as_string(&self) -> String {
        format!("{}-{}-{}", self.pid, self.started_ms, self.member)
    }

    fn parse(s: &str) -> Option<RunName> {
        let mut parts = s.split('-');
        let pid = parts.next()?.parse().ok()?;
        let started_ms = parts.next()?.parse().ok()?;
        let member = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(RunName {
            started_ms,
            pid,
            member,
        })
    }
}

pub(crate) fn lock_path(dir: &Path, run: &RunName) -> PathBuf {
    dir.join(format!("{}.lock", run.as_string()))
}

pub(crate) fn ack_path(dir: &Path, run: &RunName) -> PathBuf {
    dir.join(format!("{}.ack", run.as_string()))
}

pub(crate) fn segment_path(dir: &Path, run: &RunName, segment: u32) -> PathBuf {
    dir.join(format!("{}.{segment:06}.seg", run.as_string()))
}

/// The job's directory under `spool_dir`, both created when missing and checked. The job id
/// names it when it is plain (letters, digits, `.`, `-`); any other job id is spelt in hex, so
/// that no job id can name a path outside the spool directory or a reserved Windows name.
pub(crate) fn job_dir(spool_dir: &Path, job_id: &str) -> Result<PathBuf, String> {
    private_dir(spool_dir, "the spool directory")?;
    let plain = job_id.len() <= 64
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && job_id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !job_id.ends_with('.')
        && !windows_device_name(job_id);
    let name = if plain {
        job_id.to_string()
    } else {
        let hex: String = job_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("job-{hex}")
    };
    let dir = spool_dir.join(name);
    private_dir(&dir, "the job's spool directory")?;
    Ok(dir)
}

/// `CON`, `NUL`, `COM1`, ... (with or without an extension): Windows opens a device instead.
fn windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit())
}

/// Creates `path` (0700) when missing, then checks that it is private.
fn private_dir(path: &Path, what: &str) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(path)
                .map_err(|e| format!("cannot create {what} {}: {e}", path.display()))?;
        }
        Err(e) => return Err(format!("cannot read {what} {}: {e}", path.display())),
    }
    check_private(path, what)
}

fn check_private(path: &Path, what: &str) -> Result<(), String> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{what} {} is a symbolic link, which kepmlog never follows: name the directory itself",
            path.display()
        ));
    }
    if !meta.is_dir() {
        return Err(format!("{what} {} is not a directory", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!(
                "{what} {} belongs to another user (uid {}, this process runs as {me}): use a \
                 directory of this user's",
                path.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} {} can be written by other users (mode {:03o}): `chmod 700` it, or use \
                 a directory only this user can write",
                path.display(),
                meta.mode() & 0o777
            ));
        }
    }
    Ok(())
}

/// Creates a file that must not exist yet (0600; a symbolic link in its place is refused).
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    private_file(&mut options);
    options.open(path)
}

/// Opens an existing file for reading and writing, never through a symbolic link.
pub(crate) fn open_existing(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    private_file(&mut options);
    options.open(path)
}

#[cfg(unix)]
fn private_file(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW's value differs between Linux and macOS: rustix knows it.
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits();
    options
        .mode(0o600)
        .custom_flags(i32::try_from(nofollow).unwrap_or(0));
}

#[cfg(not(unix))]
fn private_file(_options: &mut OpenOptions) {}

/// The runs whose files are in `dir`, oldest first. Anything else there (a symbolic link, a
/// name kepmlog does not write) is left alone.
pub(crate) fn list_runs(dir: &Path) -> io::Result<BTreeMap<RunName, RunFiles>> {
    let mut runs: BTreeMap<RunName, RunFiles> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = entry.path();
        if let Some(run) = name.strip_suffix(".lock").and_then(RunName::parse) {
            runs.entry(run).or_default().lock = Some(path);
        } else if let Some(run) = name.strip_suffix(".ack").and_then(RunName::parse) {
            runs.entry(run).or_default().ack = Some(path);
        } else if let Some(rest) = name.strip_suffix(".seg") {
            let Some((run, segment)) = rest.rsplit_once('.') else {
                continue;
            };
            if let (Some(run), Ok(segment)) = (RunName::parse(run), segment.parse()) {
                runs.entry(run).or_default().segments.insert(segment, path);
            }
        }
    }
    Ok(runs)
}

/// Takes a run's lock when nobody holds it: `Ok(Some(file))` for a dead run (the lock is then
/// this process's until the file is dropped), `Ok(None)` for a live one.
pub(crate) fn lock_if_dead(path: &Path) -> io::Result<Option<File>> {
    let file = open_existing(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_round_trip_and_order_by_start() {
        let a = RunName {
            started_ms: 1_700_000_000_000,
            pid: 99,
            member: 3,
        };
        assert_eq!(RunName::parse(&a.as_string()), Some(a.clone()));
        let b = RunName {
            started_ms: 1_700_000_000_001,
            pid: 1,
            member: 1,
        };
        assert!(a < b);
        for bad in ["", "1-2", "1-2-3-4", "x-2-3", "1--3"] {
            assert_eq!(RunName::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn job_ids_name_directories_inside_the_spool_only() {
        let base = tempfile::tempdir().unwrap();
        let spool = base.path().join("spool");
        for (job, name) in [
            ("secrets-scanner", "secrets-scanner"),
            ("..", "job-2e2e"),
            (".", "job-2e"),
            ("CON", "job-434f4e"),
            ("nul.txt", "job-6e756c2e747874"),
            ("com1", "job-636f6d31"),
            ("scan.v2", "scan.v2"),
            ("a:b", "job-613a62"),
            ("naïve", "job-6e61c3af7665"),
        ] {
            let dir = job_dir(&spool, job).unwrap();
            assert_eq!(dir, spool.join(name), "{job:?}");
            assert!(dir.starts_with(&spool));
        }
    }

    #[cfg(unix)]
    #[test]
    fn shared_or_linked_directories_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let spool = base.path().join("spool");
        job_dir(&spool, "job").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&spool), 0o700);
        assert_eq!(mode(&spool.join("job")), 0o700);

        fs::set_permissions(&spool, fs::Permissions::from_mode(0o777)).unwrap();
        let e = job_dir(&spool, "job").unwrap_err();
        assert!(
            e.contains("can be written by other users") && e.contains("chmod 700"),
            "{e}"
        );
        fs::set_permissions(&spool, fs::Permissions::from_mode(0o700)).unwrap();

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&spool, &link).unwrap();
        let e = job_dir(&link, "job").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");

        // A symbolic link where a spool file will be created is never followed.
        let target = base.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, spool.join("job").join("x.lock")).unwrap();
        assert!(create_new(&spool.join("job").join("x.lock")).is_err());
        assert!(open_existing(&spool.join("job").join("x.lock")).is_err());
        assert!(!target.exists());

        let f = create_new(&spool.join("job").join("y.lock")).unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_lock_held_by_a_live_run_is_not_taken() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("1-2-3.lock");
        let held = create_new(&path).unwrap();
        held.lock().unwrap();
        assert!(lock_if_dead(&path).unwrap().is_none());
        drop(held);
        assert!(lock_if_dead(&path).unwrap().is_some());
    }
}
