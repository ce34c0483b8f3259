//! Jobs triggered through the Jobs API run here, through [`super::run_job`] exactly as
//! `kepm-devagent run` runs a file: each on a thread of its own, with its own broker whose
//! ACL is the job's (as `run` has), so the trigger answers at once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::job::{run_job, RunOptions};
use super::report::RunSummary;
use crate::agent::DevAgent;
use crate::jobstore::Trigger;

/// The runs triggered so far, finished ones with their summaries.
#[derive(Default)]
pub struct TriggeredRuns {
    state: Mutex<Vec<RunSummary>>,
    cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TriggeredRuns {
    /// The summaries of the finished runs, in the order they finished.
    pub fn finished(&self) -> Vec<RunSummary> {
        lock(&self.state).clone()
    }

    /// Waits until `n` runs have finished or `timeout` passes; returns the finished ones.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RunSummary> {
        let deadline = Instant::now() + timeout;
        let (st, _) =
            crate::wait::wait_while(&self.cv, lock(&self.state), deadline, |st| st.len() < n);
        st.clone()
    }
}

/// Makes `agent`'s Jobs API run triggered jobs with `base` (trust, denial, KeeperLogger
/// settings); the job file, agent root and parameters come from each trigger. Returns the
/// record of the runs.
pub fn attach_runner(agent: &DevAgent, base: RunOptions) -> Arc<TriggeredRuns> {
    let runs = Arc::new(TriggeredRuns::default());
    let record = Arc::clone(&runs);
    agent.set_trigger_runner(Arc::new(move |t: Trigger| {
        let mut opts = base.clone();
        opts.agent_root = Some(t.agent_root.clone());
        opts.params = t.params.clone();
        opts.json_out = None;
        let record = Arc::clone(&record);
        std::thread::Builder::new()
            .name(format!("trigger-{}", t.job_id))
            .spawn(move || {
                let summary = run_job(&t.job_file, &opts).unwrap_or_else(|e| RunSummary {
                    job_id: t.job_id.clone(),
                    not_started: Some(e.to_string()),
                    ..RunSummary::default()
                });
                lock(&record.state).push(summary);
                record.cv.notify_all();
            })
            .map(drop)
            .map_err(|e| format!("cannot start a thread for the run: {e}"))
    }));
    runs
}
