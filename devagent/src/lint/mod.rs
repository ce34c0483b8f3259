//! `kepm-devagent lint`: checks a job JSON file against the agent's job rules
//! (docs/kepm-contract.md sections 1, 2, 3, 7 and 8), the way the agent and an operator's
//! pre-launch checklist would.
//!
//! Every [`Finding`] names the file, a JSON path (`$.tasks[0].command`), a stable rule id,
//! whether it is an error (the agent refuses the job or it cannot work), a warning (works on
//! the agent, but likely not what the author meant) or a note (a kepmlog convention, not an
//! agent rule), and the fix.
//!
//! `structure` checks the job's shape against schemas/job.schema.json; one module per rule
//! family (`document`, `schedule`, `events`, `topics`, `params`, `tasks`) adds the rules a schema
//! cannot express. All report through the `Linter` of `finding`; `job` reads the file and
//! runs them in order.

mod document;
mod events;
mod finding;
mod job;
mod params;
mod paths;
mod schedule;
mod structure;
mod tasks;
mod topics;

pub use crate::binary::{bin_path, resolve_binary};
pub use crate::os::Os;
pub use events::{event_name, AGENT_EVENTS};
pub use finding::{Finding, Severity};
pub use job::{default_agent_root, lint_file, lint_value, LintOptions, Report};
pub use params::{
    declared_parameters, placeholders, value_text as parameter_value_text, Parameter,
};
pub use paths::is_absolute_on;
pub use schedule::{check_cron, parse_utc};
pub use tasks::{API_BASE_ARGUMENT, API_BASE_PLACEHOLDER, EXECUTION_TYPES};
pub use topics::{topic_allowed, topic_matches, LOG_TOPIC};
