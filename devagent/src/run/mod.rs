//! `kepm-devagent run`: runs a job locally the way the agent's job runner does, and prints
//! the operator's log view.
//!
//! Lint first; then the HTTPS Plugin Settings endpoint and a Mosquitto whose ACL is the job's
//! `mqttTopics.allowedPublications`; then each task in order (binary resolved like the agent,
//! `{KeeperApiBaseUrl}` substituted in the `arguments` string, which is then split into argv
//! by the agent's rules ([`crate::cmdline::split_command_line`]), `KEEPER_JOB_ID`/`KEEPER_JOB_NAME`
//! only when `mqttTopics` has an entry, `timeoutSeconds` enforced, `continueOnFailure`
//! honoured), with the task's output and every received message shown live; a summary at the
//! end. `params` resolves `--param` values and `--event` before the run starts.
//!
//! By concern: `job` drives the run, `task` starts and watches one task, `follow` shows
//! what the broker received, `report` holds the results and prints the summary, `triggers`
//! runs the jobs the Jobs API triggers.

mod follow;
mod job;
pub mod keeperlogger;
mod output;
mod params;
mod report;
mod task;
mod triggers;

pub use job::{run_job, RunOptions};
pub use output::{set_output_sink, OutputSink};
pub use params::parse_param;
pub use report::{Message, RunSummary, TaskResult};
pub use triggers::{attach_runner, TriggeredRuns};
