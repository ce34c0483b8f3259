//! Waiting for something until a deadline: the one place that does it, so that every wait
//! in the devagent ends at its deadline and none forgets to re-check after a wake-up.

use std::sync::{Condvar, MutexGuard};
use std::time::{Duration, Instant};

/// Calls `ready` every `poll` until it returns true (then true) or `deadline` has passed
/// (then false). `ready` is called at least once, also when the deadline is already over.
pub(crate) fn wait_until(
    deadline: Instant,
    poll: Duration,
    mut ready: impl FnMut() -> bool,
) -> bool {
    loop {
        if ready() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}

/// Waits on `cv` while `pending` holds for the guarded state, until `deadline`. Returns the
/// guard and whether `pending` still holds (the deadline passed first).
pub(crate) fn wait_while<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Instant,
    pending: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    let timeout = deadline.saturating_duration_since(Instant::now());
    // A panic while another thread held the lock must not turn this wait into a second one.
    let (guard, result) = cv
        .wait_timeout_while(guard, timeout, pending)
        .unwrap_or_else(|e| e.into_inner());
    (guard, result.timed_out())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn polls_until_ready_or_deadline() {
        let mut calls = 0;
        let start = Instant::now();
        assert!(wait_until(
            start + Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                calls += 1;
                calls == 3
            }
        ));
        assert_eq!(calls, 3);
        let mut calls = 0;
        assert!(!wait_until(start, Duration::from_millis(1), || {
            calls += 1;
            false
        }));
        assert_eq!(calls, 1, "checked once even past the deadline");
        let t = Instant::now();
        assert!(!wait_until(
            t + Duration::from_millis(30),
            Duration::from_secs(10),
            || false
        ));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the poll is cut at the deadline"
        );
    }

    #[test]
    fn condvar_wait_sees_a_notification_and_times_out() {
        let shared = Arc::new((Mutex::new(0u32), Condvar::new()));
        let s2 = Arc::clone(&shared);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            *s2.0.lock().expect("lock") = 7;
            s2.1.notify_all();
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let g = shared.0.lock().expect("lock");
        let (g, timed_out) = wait_while(&shared.1, g, deadline, |n| *n != 7);
        assert!(!timed_out);
        assert_eq!(*g, 7);
        let (g, timed_out) = wait_while(&shared.1, g, Instant::now(), |n| *n != 8);
        assert!(timed_out);
        drop(g);
        t.join().expect("thread");
    }
}
