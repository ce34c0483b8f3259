//! Fork safety: hooks a binding calls around `fork()` so that a child never inherits a
//! one-time initialisation that a worker thread of the parent was in the middle of.
//!
//! A child of `fork()` has only the forking thread. A lock or a `Once`/`LazyLock` that a
//! worker held at that instant stays held in the child forever, and a logger created there
//! hangs on its first use of it. Seen: ureq initialises a `LazyLock` (its Accept-Encoding
//! header) during the first Plugin Settings request; a Python tool that forked while its
//! logger's worker was inside it got a child whose new logger never left discovery.
//! Third-party code (ureq, rustls, ring, tokio) initialises such globals the first time it
//! runs, which is a worker's start-up: runtime, discovery, TLS and the connect. A worker marks
//! those stretches as sections; [`prepare`] stops new ones and waits for the running ones to
//! end, so the fork happens between them. Once a process has connected once, its globals are
//! initialised and a section is a few milliseconds of loopback work.
//!
//! Only atomics: a mutex would itself be one more lock a worker could hold at the fork.
//!
//! Python's binding registers these with `os.register_at_fork`; a C program that forks
//! calls them from `pthread_atfork` (see the C header).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long [`prepare`] waits for a worker's section by default: long enough for start-up
/// against a local agent, short enough that a fork while the agent hangs is only delayed.
pub const DEFAULT_FORK_WAIT: Duration = Duration::from_secs(1);

/// A section waits at most this long for a fork that [`prepare`] announced: a binding that
/// never calls [`parent`] must not stop the worker for good.
const MAX_SECTION_WAIT: Duration = Duration::from_secs(2);

const POLL: Duration = Duration::from_micros(200);

static FORKING: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Call right before `fork()`: new sections wait, and this returns once no worker is in one
/// (true), or after `timeout` (false: the fork goes ahead, with the small risk described in
/// the module documentation).
pub fn prepare(timeout: Duration) -> bool {
    FORKING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + timeout;
    while ACTIVE.load(Ordering::SeqCst) > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// Call in the parent after `fork()` (also when it failed): lets the workers go on.
pub fn parent() {
    FORKING.store(false, Ordering::SeqCst);
}

/// Call in the child after `fork()`: the parent's workers, and their sections, do not exist
/// here.
pub fn child() {
    ACTIVE.store(0, Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
}

/// A stretch of worker code that may run third-party one-time initialisation.
pub(crate) struct Section(());

impl Drop for Section {
    fn drop(&mut self) {
        // Saturating: after `child` reset the count, a section of this thread's making can
        // still end (only in tests, where "child" and "parent" are one process).
        let _ = ACTIVE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}

/// Enters a section, waiting (bounded) while a fork is being prepared. Blocking: a fork is
/// rare and this runs only at start-up and around connects.
pub(crate) fn section() -> Section {
    let start = Instant::now();
    loop {
        while FORKING.load(Ordering::SeqCst) && start.elapsed() < MAX_SECTION_WAIT {
            std::thread::sleep(POLL);
        }
        // Announce, then look again: with `prepare` storing FORKING before it reads ACTIVE
        // (both SeqCst), one of the two always sees the other.
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        if !FORKING.load(Ordering::SeqCst) || start.elapsed() >= MAX_SECTION_WAIT {
            return Section(());
        }
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Mutex;

    // The gate is process-wide: the tests take turns.
    static TURN: Mutex<()> = Mutex::new(());

    #[test]
    fn prepare_waits_for_a_running_section() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let s = section();
            entered_tx.send(()).ok();
            release_rx.recv().ok();
            drop(s);
        });
        entered_rx.recv().ok();
        assert!(!prepare(Duration::from_millis(50)), "a section was running");
        release_tx.send(()).ok();
        assert!(prepare(Duration::from_secs(10)), "the section ended");
        parent();
        worker.join().ok();
        assert_eq!(ACTIVE.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_section_waits_while_a_fork_is_prepared() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        assert!(prepare(Duration::from_secs(10)));
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            let s = section();
            tx.send(()).ok();
            drop(s);
        });
        // The worker cannot enter before `parent`: nothing arrives while we hold the fork.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        assert_eq!(ACTIVE.load(Ordering::SeqCst), 0, "no section while forking");
        parent();
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok());
        worker.join().ok();
    }

    #[test]
    fn child_forgets_the_parents_sections() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let s = section();
        assert!(!prepare(Duration::ZERO));
        // What the child sees: the parent's section is gone with its thread.
        child();
        assert_eq!(ACTIVE.load(Ordering::SeqCst), 0);
        assert!(!FORKING.load(Ordering::SeqCst));
        drop(s);
        assert_eq!(ACTIVE.load(Ordering::SeqCst), 0, "no underflow");
    }
}
