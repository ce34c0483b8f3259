//! The Jobs API's store under an agent root: each job deployed through the API is
//! `{root}/Jobs/{id}.json`, with a Last Known Good reference copy in `{root}/.lkg/{id}.json`
//! written together with it. A thread compares the two every second and puts back a job
//! file changed or removed by hand, as the agent does with Last Known Good enabled: the API
//! is the way to change a job.
//!
//! Validation is `lint` itself ([`crate::lint::lint_value`]), so the API and `kepm-devagent
//! lint` cannot disagree. Triggers are handed to a runner the caller attaches
//! (`kepm_devagent::run::attach_runner`), which keeps the store free of the job runner.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::Error;
use crate::lint::{lint_value, Finding, LintOptions, Severity};

/// How often the reference copies are compared with the job files.
const LKG_PERIOD: Duration = Duration::from_secs(1);

/// A trigger request: the job to run, where it is stored, and the parameter values of the
/// trigger body.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub job_id: String,
    pub job_file: PathBuf,
    pub agent_root: PathBuf,
    pub params: Vec<(String, String)>,
}

/// Starts a triggered job and returns at once; `Err` says why it could not be started.
pub type TriggerRunner = Arc<dyn Fn(Trigger) -> Result<(), String> + Send + Sync>;

/// Something the operator should see: a job file restored by Last Known Good, a deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct JobsNotice {
    pub at: SystemTime,
    pub text: String,
}

pub(crate) struct JobsApi {
    root: PathBuf,
    jobs_dir: PathBuf,
    lkg_dir: PathBuf,
    /// Serialises the API's writes and the Last Known Good check.
    store: Mutex<()>,
    notices: Mutex<Vec<JobsNotice>>,
    runner: Mutex<Option<TriggerRunner>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job id usable as a file name: the lint rules say more about a good id; this only keeps
/// a request from writing outside `Jobs/`.
pub(crate) fn safe_id(id: &str) -> Result<(), String> {
    let bad = id.is_empty()
        || id.starts_with('.')
        || id
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':' | '\0') || c.is_control());
    if bad {
        return Err(format!(
            "job id {id:?} cannot be a file name: use letters, digits and hyphens"
        ));
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("renaming {} into place", tmp.display()), e))
}

impl JobsApi {
    /// A store under `root` (created when missing), with its Last Known Good thread running.
    pub fn start(root: &Path) -> Result<Arc<JobsApi>, Error> {
        let jobs_dir = root.join("Jobs");
        let lkg_dir = root.join(".lkg");
        for d in [&jobs_dir, &lkg_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let api = Arc::new(JobsApi {
            root: root.to_path_buf(),
            jobs_dir,
            lkg_dir,
            store: Mutex::new(()),
            notices: Mutex::new(Vec::new()),
            runner: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            thread: Mutex::new(None),
        });
        let weak: Weak<JobsApi> = Arc::downgrade(&api);
        let stop = Arc::clone(&api.stop);
        let thread = std::thread::Builder::new()
            .name("kepm-devagent-lkg".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(LKG_PERIOD);
                    match weak.upgrade() {
                        Some(api) => api.restore_hand_edits(),
                        None => return,
                    }
                }
            })
            .map_err(|e| Error::io("spawning the Last Known Good thread", e))?;
        *lock(&api.thread) = Some(thread);
        Ok(api)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn job_file(&self, id: &str) -> PathBuf {
        self.jobs_dir.join(format!("{id}.json"))
    }

    fn lkg_file(&self, id: &str) -> PathBuf {
        self.lkg_dir.join(format!("{id}.json"))
    }

    /// The lint findings for `job`, stored as `Jobs/{id}.json`: exactly what `kepm-devagent
    /// lint` reports for that file under this agent root (binaries looked up in
    /// `{root}/Jobs/bin`, skipped when `osFilter` excludes this OS).
    pub fn validate(&self, id: &str, job: &Value) -> Vec<Finding> {
        let opts = LintOptions {
            agent_root: Some(self.root.clone()),
            ..LintOptions::default()
        };
        let label = format!("Jobs/{id}.json");
        lint_value(&label, id, job, Some(&self.root), &opts)
    }

    /// The stored job `id` (its reference copy), or `None`.
    pub fn get(&self, id: &str) -> Option<Value> {
        safe_id(id).ok()?;
        let _g = lock(&self.store);
        let bytes = std::fs::read(self.lkg_file(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every stored job, by id.
    pub fn list(&self) -> Vec<Value> {
        let _g = lock(&self.store);
        let mut ids = self.ids();
        ids.sort();
        ids.iter()
            .filter_map(|id| std::fs::read(self.lkg_file(id)).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    fn ids(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.lkg_dir) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect()
    }

    /// Writes the job file and its reference copy together (create or replace).
    pub fn put(&self, id: &str, job: &Value) -> Result<(), Error> {
        safe_id(id).map_err(Error::Invalid)?;
        let text = serde_json::to_string_pretty(job)
            .map_err(|e| Error::Invalid(format!("encoding job {id}: {e}")))?
            + "\n";
        let _g = lock(&self.store);
        write_atomically(&self.lkg_file(id), text.as_bytes())?;
        write_atomically(&self.job_file(id), text.as_bytes())
    }

    /// Removes the job file and its reference copy; false when there was no such job.
    pub fn delete(&self, id: &str) -> Result<bool, Error> {
        safe_id(id).map_err(Error::Invalid)?;
        let _g = lock(&self.store);
        let lkg = self.lkg_file(id);
        if !lkg.exists() {
            return Ok(false);
        }
        std::fs::remove_file(&lkg)
            .map_err(|e| Error::io(format!("removing {}", lkg.display()), e))?;
        let file = self.job_file(id);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", file.display()), e))
            }
            _ => Ok(true),
        }
    }

    /// (total, enabled) over the stored jobs, for `/api/system/status`.
    pub fn counts(&self) -> (usize, usize) {
        let jobs = self.list();
        let enabled = jobs
            .iter()
            .filter(|j| j.get("enabled").and_then(Value::as_bool) == Some(true))
            .count();
        (jobs.len(), enabled)
    }

    /// Puts back every job file that differs from its reference copy or is gone.
    fn restore_hand_edits(&self) {
        let _g = lock(&self.store);
        for id in self.ids() {
            let Ok(reference) = std::fs::read(self.lkg_file(&id)) else {
                continue;
            };
            let file = self.job_file(&id);
            let what = match std::fs::read(&file) {
                Ok(now) if now == reference => continue,
                Ok(_) => "edited",
                Err(_) => "removed",
            };
            let text = match write_atomically(&file, &reference) {
                Ok(()) => format!(
                    "Jobs/{id}.json was {what} by hand and restored from Last Known Good; \
                     deploy through the API"
                ),
                Err(e) => format!("Jobs/{id}.json was {what} by hand and cannot be restored: {e}"),
            };
            self.notice(text);
        }
    }

    pub fn notice(&self, text: String) {
        lock(&self.notices).push(JobsNotice {
            at: SystemTime::now(),
            text,
        });
    }

    pub fn notices(&self) -> Vec<JobsNotice> {
        lock(&self.notices).clone()
    }

    pub fn set_runner(&self, runner: TriggerRunner) {
        *lock(&self.runner) = Some(runner);
    }

    /// Hands the stored job `id` to the runner with `params`.
    pub fn trigger(&self, id: &str, params: Vec<(String, String)>) -> Result<(), String> {
        let runner = lock(&self.runner).clone().ok_or_else(|| {
            "no job runner is attached to this devagent (kepm_devagent::run::attach_runner; \
             `kepm-devagent serve --jobs-api` attaches one)"
                .to_string()
        })?;
        runner(Trigger {
            job_id: id.to_string(),
            job_file: self.job_file(id),
            agent_root: self.root.clone(),
            params,
        })
    }
}

impl Drop for JobsApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Only the errors of `findings`.
pub(crate) fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}
