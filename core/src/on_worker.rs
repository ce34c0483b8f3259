//! The mark on kepmlog's worker threads, for the logging bridges (`log`, `tracing`): whatever
//! the libraries under the worker (rustls, ureq) log there must not come back into kepmlog's
//! own queue.

use std::cell::Cell;

thread_local! {
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn mark_worker_thread() {
    ON_WORKER.with(|w| w.set(true));
}

pub(crate) fn on_worker_thread() -> bool {
    ON_WORKER.with(|w| w.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_per_thread() {
        assert!(!on_worker_thread());
        let on_worker = std::thread::spawn(|| {
            mark_worker_thread();
            on_worker_thread()
        })
        .join()
        .unwrap_or(false);
        assert!(on_worker);
        assert!(!on_worker_thread(), "the mark is per thread");
    }
}
