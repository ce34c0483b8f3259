//! The bounded queue between the callers and the worker: what a queued publish is, the
//! counters both sides share, the reservations flush waits for, and the bookkeeping of which
//! queue positions are settled.
//!
//! A record takes a queue position when a caller's send succeeds (`reserved` counts them);
//! the worker settles positions in any order (acknowledged, denied, failed) and publishes the
//! lowest position not yet settled (`settled_low`). `flush` waits until `settled_low` reaches
//! the reservation count it saw when it was called.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::item::Item;
use crate::spool::Spool;

/// One logger, as its worker serves it: its own queue, counters and names. Sent to the
/// worker of its connection when the logger is created.
pub(crate) struct MemberSpec {
    pub id: u64,
    pub rx: Receiver<Item>,
    pub shared: std::sync::Arc<Shared>,
    pub source: String,
    pub event_topic: String,
    pub capacity: usize,
    /// Write what is still undelivered when the logger is let go to stderr.
    pub undelivered_to_stderr: bool,
    /// The logger's crash-safe spool, when it has one.
    pub spool: Option<std::sync::Arc<Spool>>,
    /// What earlier runs of the job left in the spool, to send before the queue.
    pub backlog: Vec<Item>,
}

/// What loggers tell the worker they share.
pub(crate) enum Control {
    Attach(MemberSpec),
    /// The logger shut down: serve what it still has until the deadline (a record logged
    /// while shutdown began may still be on its way), then count the rest as failed and
    /// forget it.
    Detach {
        id: u64,
        deadline: std::time::Instant,
    },
}

/// State of one connection (one worker), shared by the loggers that use it.
#[derive(Default)]
pub(crate) struct Signal {
    /// Set by the worker when it waits with room for more records; a caller that sees it
    /// wakes the worker, so a busy worker costs the callers no notification.
    pub worker_idle: AtomicBool,
    pub wake: tokio::sync::Notify,
    pub connected: AtomicBool,
    /// Successful connections after the first one.
    pub reconnects: AtomicU64,
    /// The worker thread has ended (guarded by a lock so the last logger can wait for it).
    finished: Mutex<bool>,
    finished_cv: Condvar,
}

impl Signal {
    /// Called by the worker thread as its very last step.
    pub fn set_finished(&self) {
        *self.finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.finished_cv.notify_all();
    }

    /// Waits until the worker thread has ended or the deadline; returns whether it has.
    pub fn wait_finished(&self, deadline: Instant) -> bool {
        let done = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (done, _) = self
            .finished_cv
            .wait_timeout_while(done, timeout, |finished| !*finished)
            .unwrap_or_else(|e| e.into_inner());
        *done
    }

    pub fn wake_worker(&self) {
        // Pairs with the worker's fence after it sets `worker_idle`: either it sees our record
        // or we see it idle and wake it.
        fence(Ordering::SeqCst);
        if self.worker_idle.load(Ordering::Relaxed)
            && self.worker_idle.swap(false, Ordering::SeqCst)
        {
            self.wake.notify_one();
        }
    }
}

/// State of one logger shared by its callers and the worker.
#[derive(Default)]
pub(crate) struct Shared {
    /// Incremented before every send attempt and decremented when it fails, so it is never
    /// below the number of queue positions taken: what flush waits for.
    pub reserved: AtomicU64,
    pub dropped: AtomicU64,
    pub delivered: AtomicU64,
    pub denied: AtomicU64,
    pub failed: AtomicU64,
    /// Records written to stderr as text lines (see `Stats::printed`).
    pub printed: AtomicU64,
    /// Records an earlier run of the job left in the spool, taken into this logger's queue
    /// (and counted in `reserved`).
    pub recovered: AtomicU64,
    /// Every accepted record whose queue position is below this is settled.
    pub settled_low: AtomicU64,
    pub info: Mutex<Info>,
    /// Threads in `wait_until`: progress is signalled only when someone waits.
    waiters: AtomicUsize,
    /// The lowest `settled_low` a flush waits for (0: none registered). Acks that do not
    /// reach it wake nobody, so a flush over a long stream is not woken per batch.
    settle_target: AtomicU64,
    progress: Mutex<()>,
    progress_cv: Condvar,
}

#[derive(Default)]
pub(crate) struct Info {
    pub last_error: Option<String>,
    pub broker: Option<String>,
    pub denied_topics: Vec<String>,
    /// The worker is done with this logger (detached, or the worker ended).
    pub done: bool,
    /// Records still unsettled when the worker let this logger go (counted as failed).
    pub failed_at_close: u64,
}

impl Shared {
    pub fn info(&self) -> MutexGuard<'_, Info> {
        // The lock guards plain data; a panic while holding it leaves nothing half-done.
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_last_error(&self, e: impl Into<String>) {
        self.info().last_error = Some(e.into());
    }

    /// Wakes flush and shutdown waiters after progress (a no-op when nobody waits).
    pub fn notify_progress(&self) {
        // Pairs with the increment in `wait_until`: either the waiter sees the progress
        // made before this call, or this sees the waiter.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _g = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        self.progress_cv.notify_all();
    }

    /// After acks moved `settled_low` to `low`: wakes the waiters once a flush's target is
    /// reached (or when no target is registered).
    pub fn notify_settled(&self, low: u64) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let target = self.settle_target.load(Ordering::SeqCst);
        if target != 0 && low < target {
            return;
        }
        // Woken waiters register their targets again before they wait.
        self.settle_target.store(0, Ordering::SeqCst);
        let _g = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        self.progress_cv.notify_all();
    }

    /// Waits on progress notifications until `done()` or the deadline; returns `done()`.
    pub fn wait_until(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        self.wait_for(deadline, 0, done)
    }

    /// `wait_until`, woken by acks only once `settled_low` reaches `target` (0: any progress).
    fn wait_for(&self, deadline: Instant, target: u64, done: impl Fn() -> bool) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let result = loop {
            if target != 0 {
                let _ = self
                    .settle_target
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                        (t == 0 || t > target).then_some(target)
                    });
            }
            if done() {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            // Woken by progress; the cap bounds the wait should a notification race the check.
            let wait = (deadline - now).min(Duration::from_millis(100));
            guard = match self.progress_cv.wait_timeout(guard, wait) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Waits until every queue position below `target` is settled, the worker is done, or the
    /// deadline passes. Returns how many are still unsettled.
    ///
    /// `target` was read from `reserved` at the call; a send in progress then that has failed
    /// since gave its reservation back, so the target follows `reserved` down (`reserved`
    /// never drops below the positions taken).
    pub fn wait_settled(&self, target: u64, deadline: Instant) -> u64 {
        let unsettled = || {
            let target = target.min(self.reserved.load(Ordering::SeqCst));
            target.saturating_sub(self.settled_low.load(Ordering::SeqCst))
        };
        self.wait_for(deadline, target, || unsettled() == 0 || self.info().done);
        unsettled()
    }
}

/// The worker's account of queue positions: which of those taken from the queue are settled.
/// Positions settle out of order (a denial, a failure, acks after a replay); `low()` only
/// moves over a contiguous settled prefix.
#[derive(Debug, Default)]
pub(crate) struct Settlements {
    /// Position of the next record taken from the queue.
    next: u64,
    /// Settled flags of the positions from `low` on.
    flags: VecDeque<bool>,
    low: u64,
}

impl Settlements {
    /// Gives the next record taken from the queue its position.
    pub fn take(&mut self) -> u64 {
        let index = self.next;
        self.next += 1;
        self.flags.push_back(false);
        index
    }

    /// The lowest position not yet settled.
    pub fn low(&self) -> u64 {
        self.low
    }

    /// Marks a position settled; returns the new lowest unsettled position.
    pub fn settle(&mut self, index: u64) -> u64 {
        if let Some(flag) = index
            .checked_sub(self.low)
            .and_then(|o| usize::try_from(o).ok())
            .and_then(|o| self.flags.get_mut(o))
        {
            *flag = true;
        }
        while self.flags.front() == Some(&true) {
            self.flags.pop_front();
            self.low += 1;
        }
        self.low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_moves_over_contiguous_settled_positions_only() {
        let mut s = Settlements::default();
        let a = s.take();
        let b = s.take();
        let c = s.take();
        assert_eq!(s.settle(b), 0);
        assert_eq!(s.settle(c), 0);
        assert_eq!(s.settle(a), 3);
        // Settling twice or settling an unknown position changes nothing.
        assert_eq!(s.settle(a), 3);
        assert_eq!(s.settle(99), 3);
        let d = s.take();
        assert_eq!(d, 3);
        assert_eq!(s.settle(d), 4);
    }
}
