//! The subcommands of the `kepm-devagent` binary, one module each, and what they share.

pub(crate) mod deploy;
pub(crate) mod lint;
mod out;
pub(crate) mod run;
pub(crate) mod serve;
mod serve_jobs;
mod signals;
