//! Fork hooks for C programs that fork and log in the child: register them with
//! `pthread_atfork(kepmlog_fork_prepare, kepmlog_fork_parent, kepmlog_fork_child)`. Split from
//! `lib.rs` by concern; same conventions. The reason they exist is in the core's `fork` module.

use std::panic::catch_unwind;

/// Before `fork()`: waits (at most one second) until no logger's background worker is in its
/// start-up (discovery, TLS set-up, connect), so that the child does not inherit a one-time
/// initialisation half done and hang on it when it creates its own logger. A logger created
/// by the parent cannot be used in the child (`KEPMLOG_ERR_FORKED`): create a new one there.
#[no_mangle]
pub extern "C" fn kepmlog_fork_prepare() {
    let _ = catch_unwind(|| kepmlog_core::fork::prepare(kepmlog_core::fork::DEFAULT_FORK_WAIT));
}

/// After `fork()`, in the parent (also when `fork()` failed): lets the workers go on.
#[no_mangle]
pub extern "C" fn kepmlog_fork_parent() {
    let _ = catch_unwind(kepmlog_core::fork::parent);
}

/// After `fork()`, in the child, before it creates a logger.
#[no_mangle]
pub extern "C" fn kepmlog_fork_child() {
    let _ = catch_unwind(kepmlog_core::fork::child);
}
