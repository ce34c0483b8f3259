//! The exit hook of C and C++ programs: a tool that returns from `main` (or calls `exit`)
//! without `kepmlog_shutdown` would lose what is still queued, silently, because the process
//! ends its worker threads with it. The first logger registers an `atexit` handler that
//! delivers what every live logger still holds within `KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS`, and
//! shuts down those still behind so their records reach stderr.
//!
//! Not registered where it could not work: in `kepmlog.dll`, whose `atexit` handlers run when
//! the DLL is unloaded, after Windows has already ended every other thread (the workers
//! included). A program linked with the static library registers it in its own C runtime,
//! which runs it from `exit`, while the threads still run. `_exit`, `quick_exit`, a signal
//! that kills, and Go's runtime (which ends the process without the C runtime's exit) skip it.

use std::sync::Once;
use std::time::Instant;

use crate::registry::live_loggers;
use crate::types::kepmlog_logger;

/// Registers the handler once per process (called by every logger creation).
pub(crate) fn register_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if in_a_windows_dll() {
            return;
        }
        // SAFETY: `atexit` with a plain `extern "C" fn()` that never unwinds (it catches every
        // panic); the C runtime calls it at most once, from `exit`.
        let _ = unsafe { libc::atexit(flush_live_loggers_at_exit) };
    });
}

extern "C" fn flush_live_loggers_at_exit() {
    // A panic must not cross into the C runtime's exit.
    let _ = std::panic::catch_unwind(|| {
        // Held to the end: `kepmlog_logger_free` on another thread waits, so no registered
        // logger is freed while the hook uses it.
        let live = live_loggers().lock().unwrap_or_else(|e| e.into_inner());
        if live.is_empty() {
            return;
        }
        let deadline = Instant::now() + kepmlog_core::DEFAULT_CLOSE_TIMEOUT;
        let loggers = live.iter().map(|&address| {
            // SAFETY: every registered address is a `Box<kepmlog_logger>` made by
            // `make_logger` and not freed: `kepmlog_logger_free` unregisters under this lock
            // before it frees, and the lock is held while the reference is used.
            unsafe { &(*(address as *const kepmlog_logger)).inner }
        });
        let undelivered = kepmlog_core::flush_at_exit(loggers, deadline, true);
        if undelivered > 0 {
            eprintln!(
                "kepmlog: {undelivered} record(s) undelivered at exit: call kepmlog_shutdown \
                 before the program ends, with a timeout that lets them be delivered"
            );
        }
    });
}

/// True when this code runs in a DLL rather than in the program's own image (Windows only).
#[cfg(windows)]
fn in_a_windows_dll() -> bool {
    use windows_sys::Win32::Foundation::HMODULE;
    use windows_sys::Win32::System::LibraryLoader::{
        GetModuleHandleExW, GetModuleHandleW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
        GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    };
    let mut ours: HMODULE = std::ptr::null_mut();
    // SAFETY: the address is this function's own; the flags ask for no reference count, so
    // nothing is to be released; `ours` is writable storage for one handle.
    let found = unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            in_a_windows_dll as *const () as *const u16,
            &mut ours,
        )
    };
    // SAFETY: NULL asks for the program's own module; nothing is released.
    let program = unsafe { GetModuleHandleW(std::ptr::null()) };
    // When unsure, assume a DLL: a missing hook only loses what was lost before it existed.
    found == 0 || ours != program
}

#[cfg(not(windows))]
fn in_a_windows_dll() -> bool {
    false
}
