//! Linting one job file: reading and parsing it, its shape against the schema, then every
//! rule family in turn.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use super::finding::{Finding, Linter, Severity};
use super::tasks::Target;
use crate::os::Os;

/// How to lint.
#[derive(Clone, Debug)]
pub struct LintOptions {
    /// The agent root whose `Jobs/bin/{command}/{command}` holds the binaries. `None`: the
    /// default for each file ([`default_agent_root`]); when that is `None` too, only
    /// `executablePath` and `PATH` are tried.
    pub agent_root: Option<PathBuf>,
    /// The host whose binaries are checked (skipped when `osFilter` excludes it).
    pub host: Os,
    /// Reference time for "runAt is in the past". Default: now.
    pub now: SystemTime,
    /// Whether binaries are looked up (`task-binary`). Off for a CI gate that lints jobs
    /// whose binaries are built or installed elsewhere.
    pub check_binaries: bool,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            agent_root: None,
            host: Os::current(),
            now: SystemTime::now(),
            check_binaries: true,
        }
    }
}

/// The agent root a job file implies: `{root}` when the file is `{root}/Jobs/{id}.json`.
pub fn default_agent_root(job_file: &Path) -> Option<PathBuf> {
    let dir = job_file.parent()?;
    if dir.file_name()? != "Jobs" {
        return None;
    }
    let root = dir.parent()?;
    Some(if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root.to_path_buf()
    })
}

/// The result of linting one file: its findings and, when it parsed, the job.
#[derive(Clone, Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub job: Option<Value>,
    /// The agent root used for binary checks.
    pub agent_root: Option<PathBuf>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }
    pub fn notes(&self) -> usize {
        self.count(Severity::Note)
    }
    fn count(&self, sev: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == sev).count()
    }
}

/// Reads, parses and lints one job file. Never panics on bad input: unreadable files and
/// malformed JSON become findings.
pub fn lint_file(file: &Path, opts: &LintOptions) -> Report {
    let name = file.display().to_string();
    let agent_root = opts.agent_root.clone().or_else(|| default_agent_root(file));
    let text = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            return Report {
                findings: vec![Finding {
                    file: name,
                    path: "$".into(),
                    rule: "file",
                    severity: Severity::Error,
                    message: format!("cannot read the file: {e}"),
                    fix: "check the path".into(),
                    position: None,
                }],
                job: None,
                agent_root,
            }
        }
    };
    let job: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; we report those separately.
            let msg = msg
                .rsplit_once(" at line ")
                .map(|(m, _)| m.to_string())
                .unwrap_or(msg);
            return Report {
                findings: vec![Finding {
                    file: name,
                    path: "$".into(),
                    rule: "json-syntax",
                    severity: Severity::Error,
                    message: format!("malformed JSON: {msg}"),
                    fix: "correct the JSON at that line and column (a trailing comma, a missing \
                          quote or brace are the usual causes)"
                        .into(),
                    position: Some((e.line(), e.column())),
                }],
                job: None,
                agent_root,
            };
        }
    };
    let stem = file
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".json").unwrap_or(&stem).to_string();
    let findings = lint_value(&name, &stem, &job, agent_root.as_deref(), opts);
    Report {
        findings,
        job: Some(job),
        agent_root,
    }
}

/// Lints a parsed job. `file` labels the findings; `stem` is the file name without `.json`.
pub fn lint_value(
    file: &str,
    stem: &str,
    job: &Value,
    agent_root: Option<&Path>,
    opts: &LintOptions,
) -> Vec<Finding> {
    let mut l = Linter {
        file,
        out: Vec::new(),
    };
    l.check_structure(job, stem);
    // Not an object: the schema said so (json-root), and no other rule applies.
    let Some(root) = job.as_object() else {
        return l.out;
    };
    let id = l.check_id(root, stem);
    l.check_document_fields(root);
    let has_events = l.check_events(root);
    l.check_schedule(root, has_events, opts.now);
    let targets = l.check_os_filter(root);
    let publications = l.check_mqtt(root);
    l.check_event_topic(root, id.as_deref(), publications.as_deref());
    l.check_parameters(root);
    l.check_tasks(
        root,
        &Target {
            oses: &targets,
            host: opts.host,
            agent_root,
            check_binaries: opts.check_binaries,
        },
    );
    l.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_root_from_jobs_dir() {
        assert_eq!(
            default_agent_root(Path::new("/opt/kepm/Jobs/x.json")),
            Some(PathBuf::from("/opt/kepm"))
        );
        assert_eq!(
            default_agent_root(Path::new("Jobs/x.json")),
            Some(PathBuf::from("."))
        );
        assert_eq!(default_agent_root(Path::new("examples/jobs/x.json")), None);
    }
}
