//! [`DevAgent`], by concern: its state and accessors, starting it, driving its broker, and
//! reading what it captured.

mod broker_control;
mod capture_view;
mod start;
mod state;

pub use state::{AdminFiles, DevAgent};
