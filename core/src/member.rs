//! One logger as its connection's worker serves it: its queue, what an earlier run left it to
//! replay, its own Warning records, its settled positions, and what happens to its records
//! when it goes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::Bytes;
use crossbeam_channel::Receiver;

use crate::item::{Item, Kind};
use crate::ledger::Tracked;
use crate::level::Level;
use crate::queue::{MemberSpec, Settlements, Shared};
use crate::record::{encode_ref, meta_ref};
use crate::spool::Spool;
use crate::text::{self, diag};

/// A logger as the worker serves it.
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) rx: Receiver<Item>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) source: String,
    pub(crate) event_topic: String,
    pub(crate) event_topic_bytes: Bytes,
    pub(crate) capacity: usize,
    pub(crate) undelivered_to_stderr: bool,
    pub(crate) settlements: Settlements,
    /// The worker's own Warning records for this logger, waiting for a connection.
    pub(crate) internal: VecDeque<Tracked>,
    pub(crate) drops_reported: u64,
    pub(crate) last_drop_report: Option<StdInstant>,
    pub(crate) last_drop_stderr: Option<StdInstant>,
    /// Its logger shut down: serve it until everything it accepted is settled or until then.
    pub(crate) leaving: Option<StdInstant>,
    /// The logger's crash-safe spool, when it has one.
    pub(crate) spool: Option<Arc<Spool>>,
    /// What earlier runs of the job left in the spool: sent before the queue, taking the first
    /// queue positions (`backlog_len` of them).
    pub(crate) backlog: VecDeque<Item>,
    pub(crate) backlog_len: u64,
    /// Every backlog position is settled (the earlier runs' files are gone).
    pub(crate) backlog_settled: bool,
}

impl Member {
    pub(crate) fn new(spec: MemberSpec) -> Member {
        let backlog_len = spec.backlog.len() as u64;
        Member {
            id: spec.id,
            rx: spec.rx,
            shared: spec.shared,
            event_topic_bytes: Bytes::from(spec.event_topic.clone().into_bytes()),
            source: spec.source,
            event_topic: spec.event_topic,
            capacity: spec.capacity,
            undelivered_to_stderr: spec.undelivered_to_stderr,
            settlements: Settlements::default(),
            internal: VecDeque::new(),
            drops_reported: 0,
            last_drop_report: None,
            last_drop_stderr: None,
            leaving: None,
            spool: spec.spool,
            backlog: spec.backlog.into(),
            backlog_len,
            backlog_settled: backlog_len == 0,
        }
    }

    /// Everything its logger accepted is settled.
    pub(crate) fn all_settled(&self) -> bool {
        let settled = self.shared.delivered.load(Ordering::SeqCst)
            + self.shared.denied.load(Ordering::SeqCst)
            + self.shared.failed.load(Ordering::SeqCst);
        settled >= self.shared.reserved.load(Ordering::SeqCst)
    }

    pub(crate) fn push_internal(&mut self, next_seq: &mut u64, level: Level, message: &str) {
        let Ok(meta) = meta_ref(level, &self.source, "kepmlog", message, "", "") else {
            return;
        };
        let seq = *next_seq;
        *next_seq += 1;
        self.internal.push_back(Tracked {
            seq,
            index: None,
            member: self.id,
            kind: Kind::Log,
            payload: encode_ref(&meta).into(),
            at: std::time::SystemTime::now(),
        });
    }

    /// The next record of this logger: its own Warning records first, then what earlier runs
    /// left, then its queue.
    pub(crate) fn next(&mut self, next_seq: &mut u64) -> Option<Tracked> {
        if let Some(t) = self.internal.pop_front() {
            return Some(t);
        }
        let item = match self.backlog.pop_front() {
            Some(item) => item,
            None => self.rx.try_recv().ok()?,
        };
        let seq = *next_seq;
        *next_seq += 1;
        Some(Tracked {
            seq,
            index: Some(self.settlements.take()),
            member: self.id,
            kind: item.kind,
            payload: item.payload,
            at: item.at,
        })
    }

    pub(crate) fn has_records(&self) -> bool {
        !self.internal.is_empty() || !self.backlog.is_empty() || !self.rx.is_empty()
    }

    pub(crate) fn fail(&mut self, index: u64) {
        self.shared.failed.fetch_add(1, Ordering::SeqCst);
        self.settlements.settle(index);
        self.publish_low();
    }

    /// Makes the lowest unsettled position known: to flush waiters, and to the spool, whose
    /// own records start after the backlog's positions.
    pub(crate) fn publish_low(&mut self) {
        let low = self.settlements.low();
        if self.shared.settled_low.load(Ordering::Relaxed) == low {
            return;
        }
        self.shared.settled_low.store(low, Ordering::SeqCst);
        self.shared.notify_settled(low);
        if let Some(spool) = &self.spool {
            if low >= self.backlog_len {
                if !self.backlog_settled {
                    spool.backlog_settled();
                    self.backlog_settled = true;
                }
                spool.settled(low - self.backlog_len);
            }
        }
    }

    /// The logger is gone or the worker ends: whatever it accepted and is not settled is
    /// failed; say so once, and write those records to stderr (`in_ledger`: its records the
    /// ledger still had, in the order they were logged).
    pub(crate) fn close(self, diagnostics: bool, in_ledger: Vec<Tracked>) {
        let low = self.settlements.low();
        let Member {
            rx,
            shared,
            source,
            undelivered_to_stderr,
            spool,
            backlog,
            backlog_len,
            ..
        } = self;
        // Everything still queued was logged after what the ledger had.
        let queued: Vec<Item> = backlog.into_iter().chain(rx.try_iter()).collect();
        // Dropping the receiver makes later sends fail (they give their reservation back),
        // so the count below is final, and no caller holds the spool waiting for room.
        drop(rx);
        if let Some(spool) = spool {
            // What is not settled stays in the spool (given up here, replayed by the next run).
            spool.close(low.saturating_sub(backlog_len), low >= backlog_len);
        }
        let reserved = shared.reserved.load(Ordering::SeqCst);
        let settled = shared.delivered.load(Ordering::SeqCst)
            + shared.denied.load(Ordering::SeqCst)
            + shared.failed.load(Ordering::SeqCst);
        let left = reserved.saturating_sub(settled);
        shared.failed.fetch_add(left, Ordering::SeqCst);
        shared.info().failed_at_close = left;
        if left > 0 {
            let last = shared.info().last_error.clone().unwrap_or_default();
            diag(
                diagnostics,
                &format!("shut down with {left} record(s) not delivered (last error: {last})"),
            );
            if undelivered_to_stderr {
                let lines: Vec<String> = in_ledger
                    .iter()
                    .map(|t| (t.at, t.kind, &t.payload))
                    .chain(queued.iter().map(|i| (i.at, i.kind, &i.payload)))
                    .take(text::MAX_UNDELIVERED_LINES)
                    .map(|(at, kind, payload)| text::payload_line(at, kind, &source, payload))
                    .collect();
                let printed = text::write_undelivered(&lines, left);
                shared.printed.fetch_add(printed, Ordering::SeqCst);
            }
        }
        shared.info().done = true;
        shared.notify_progress();
    }
}
