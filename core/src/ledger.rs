//! Records handed to the MQTT session and not yet settled: pure bookkeeping, no I/O.
//!
//! Packet ids are given out in sequence (1, 2, …, 65535, 1, …), so the records in flight, in
//! the order they were published, sit in a ring whose i-th slot has packet id
//! `front + i`. An ack finds its record by arithmetic, without hashing; a slot acknowledged
//! out of order stays as a hole until the slots before it settle. A packet id is never given
//! out while still in flight: the ring never spans more than 65,535 ids, so the next id is
//! free whenever there is room.
//!
//! When the connection is lost, everything in flight goes back, in the order it was first
//! taken, ahead of what was waiting to be replayed; the next session publishes it again with
//! new packet ids (a new session: the broker knows none of the old ones) before anything new.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::item::Kind;

/// Packet ids MQTT allows: 1..=65535.
const ID_SPACE: usize = u16::MAX as usize;

/// A record taken from the queue (or made by the worker) and not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Order of taking over all records: replays go out in this order.
    pub seq: u64,
    /// Queue position of a caller's record; `None` for the worker's own records.
    pub index: Option<u64>,
    /// The logger it belongs to (loggers of one process share a connection).
    pub member: u64,
    pub kind: Kind,
    pub payload: Bytes,
    pub at: std::time::SystemTime,
}

#[derive(Debug)]
pub(crate) struct Ledger {
    /// In flight on the current session, in publish order; `None` once acknowledged.
    ring: VecDeque<Option<Tracked>>,
    /// Offset in 0..ID_SPACE of the packet id of `ring[0]` (packet id = offset + 1).
    front: usize,
    in_flight: usize,
    /// The broker's Receive Maximum for the current session.
    window: usize,
    /// Lost with an earlier connection, in `seq` order: published before anything new.
    replay: VecDeque<Tracked>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            ring: VecDeque::new(),
            front: 0,
            in_flight: 0,
            window: ID_SPACE,
            replay: VecDeque::new(),
        }
    }
}

impl Ledger {
    /// A new session: packet ids start again at 1, with the broker's Receive Maximum as the
    /// window (0 means the MQTT default, 65,535). Call after `connection_lost`.
    pub fn start_session(&mut self, receive_maximum: u16) {
        self.connection_lost();
        self.front = 0;
        self.window = match receive_maximum {
            0 => ID_SPACE,
            n => usize::from(n),
        };
    }

    /// True when one more record may be published on this session.
    pub fn has_room(&self) -> bool {
        self.in_flight < self.window && self.ring.len() < ID_SPACE
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    #[cfg(test)]
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// The oldest record lost with an earlier connection, to publish before anything new.
    pub fn next_replay(&mut self) -> Option<Tracked> {
        self.replay.pop_front()
    }

    /// Gives the record the next packet id; the caller publishes it with that id.
    /// Only call when `has_room()`.
    pub fn assign(&mut self, t: Tracked) -> u16 {
        let offset = (self.front + self.ring.len()) % ID_SPACE;
        self.ring.push_back(Some(t));
        self.in_flight += 1;
        offset_to_pkid(offset)
    }

    /// Settles the record published with this packet id. `None` for an id not in flight
    /// (a duplicate ack, or one the broker made up): nothing changes then.
    pub fn ack(&mut self, pkid: u16) -> Option<Tracked> {
        let offset = usize::from(pkid).checked_sub(1)?;
        let i = (offset + ID_SPACE - self.front) % ID_SPACE;
        let t = self.ring.get_mut(i)?.take()?;
        self.in_flight -= 1;
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.front = (self.front + 1) % ID_SPACE;
        }
        Some(t)
    }

    /// The connection is gone: everything in flight waits to be published again, in the
    /// order it was first taken, merged with what was already waiting.
    pub fn connection_lost(&mut self) {
        if self.in_flight == 0 {
            self.ring.clear();
            return;
        }
        let mut back: Vec<Tracked> = self.ring.drain(..).flatten().collect();
        back.extend(self.replay.drain(..));
        back.sort_by_key(|t| t.seq);
        self.replay = back.into();
        self.in_flight = 0;
    }

    /// Lets go of a logger that is gone: its replays are forgotten, and returned with copies
    /// of its records in flight, those of its caller in the order they were logged. The
    /// records in flight stay until their acks (their packet ids are still the broker's),
    /// which then find no logger: an ack that comes later settles nothing twice.
    pub fn release_member(&mut self, member: u64) -> Vec<Tracked> {
        let mut left: Vec<Tracked> = self
            .ring
            .iter()
            .flatten()
            .filter(|t| t.member == member && t.index.is_some())
            .cloned()
            .collect();
        self.replay.retain(|t| {
            if t.member != member {
                return true;
            }
            if t.index.is_some() {
                left.push(t.clone());
            }
            false
        });
        left.sort_by_key(|t| t.index);
        left
    }

    /// Everything not settled (in flight and waiting for replay), in `seq` order: for giving
    /// up at shutdown.
    pub fn take_all(&mut self) -> Vec<Tracked> {
        self.connection_lost();
        self.replay.drain(..).collect()
    }
}

fn offset_to_pkid(offset: usize) -> u16 {
    // offset < ID_SPACE = 65535, so offset + 1 fits.
    u16::try_from(offset + 1).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> Tracked {
        Tracked {
            seq,
            index: Some(seq),
            member: seq % 2,
            kind: Kind::Log,
            payload: Bytes::from(seq.to_string()),
            at: std::time::UNIX_EPOCH,
        }
    }

    fn assign(l: &mut Ledger, seq: u64) -> u16 {
        l.assign(rec(seq))
    }

    #[test]
    fn ids_start_at_one_and_acks_find_their_records() {
        let mut l = Ledger::default();
        l.start_session(20);
        assert_eq!(assign(&mut l, 0), 1);
        assert_eq!(assign(&mut l, 1), 2);
        assert_eq!(assign(&mut l, 2), 3);
        assert_eq!(l.ack(2).map(|t| t.seq), Some(1));
        assert_eq!(l.ack(1).map(|t| t.seq), Some(0));
        assert_eq!(l.in_flight(), 1);
        assert_eq!(l.ack(3).map(|t| t.seq), Some(2));
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn duplicate_and_unknown_acks_change_nothing() {
        let mut l = Ledger::default();
        l.start_session(0);
        assign(&mut l, 0);
        assign(&mut l, 1);
        assert!(l.ack(1).is_some());
        assert_eq!(l.ack(1), None, "duplicate");
        assert_eq!(l.ack(0), None, "packet id 0 does not exist");
        assert_eq!(l.ack(7), None, "never given out");
        assert_eq!(l.ack(u16::MAX), None);
        assert_eq!(l.in_flight(), 1);
        assert_eq!(l.ack(2).map(|t| t.seq), Some(1));
    }

    #[test]
    fn the_window_is_the_receive_maximum() {
        let mut l = Ledger::default();
        l.start_session(3);
        for s in 0..3 {
            assert!(l.has_room());
            assign(&mut l, s);
        }
        assert!(!l.has_room());
        l.ack(2);
        assert!(
            l.has_room(),
            "an ack out of order frees a place in the window"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "65,535 ids and more take many minutes under Miri")]
    fn packet_ids_wrap_past_65535_without_reuse() {
        let mut l = Ledger::default();
        l.start_session(10);
        let mut seen_wrap = false;
        let mut last = 0u16;
        // 200,000 records through a window of 10, acked in order as they go.
        let mut live = VecDeque::new();
        for s in 0..200_000u64 {
            if !l.has_room() {
                let oldest = live.pop_front().unwrap_or(0);
                assert!(l.ack(oldest).is_some(), "ack {oldest}");
            }
            let id = assign(&mut l, s);
            assert_ne!(id, 0);
            assert!(!live.contains(&id), "{id} is still in flight");
            if last == u16::MAX {
                assert_eq!(id, 1);
                seen_wrap = true;
            } else if last != 0 {
                assert_eq!(id, last + 1);
            }
            live.push_back(id);
            last = id;
        }
        assert!(seen_wrap);
    }

    #[test]
    #[cfg_attr(miri, ignore = "65,535 ids and more take many minutes under Miri")]
    fn a_window_of_65535_fills_every_id_once_and_then_waits() {
        let mut l = Ledger::default();
        l.start_session(u16::MAX);
        let mut ids = std::collections::HashSet::new();
        for s in 0..u64::from(u16::MAX) {
            assert!(l.has_room());
            assert!(ids.insert(assign(&mut l, s)));
        }
        assert_eq!(ids.len(), 65_535);
        assert!(!l.has_room(), "every id is in flight: none may be reused");
        // Acking one in the middle frees a place in the window but not the id ring: the
        // next id would be 1, still in flight.
        assert!(l.ack(30_000).is_some());
        assert!(!l.has_room());
        assert!(l.ack(1).is_some());
        assert!(l.has_room());
        assert_eq!(assign(&mut l, 70_000), 1, "id 1 is free again");
        assert_eq!(l.ack(30_000), None, "30,000 was settled already");
    }

    #[test]
    fn a_lost_connection_replays_in_the_original_order_before_anything_new() {
        let mut l = Ledger::default();
        l.start_session(0);
        for s in 0..5 {
            assign(&mut l, s);
        }
        l.ack(2); // seq 1 settled
        l.start_session(0); // the connection was lost; a new one starts
        assert_eq!(l.replay_len(), 4);
        // Replay two of them, lose the connection again.
        let a = l.next_replay();
        let b = l.next_replay();
        assert_eq!(a.as_ref().map(|t| t.seq), Some(0));
        assert_eq!(b.as_ref().map(|t| t.seq), Some(2));
        for t in [a, b].into_iter().flatten() {
            let id = l.assign(t);
            assert!(id <= 2, "a new session's ids start at 1");
        }
        l.start_session(0);
        let order: Vec<u64> = std::iter::from_fn(|| l.next_replay())
            .map(|t| t.seq)
            .collect();
        assert_eq!(order, vec![0, 2, 3, 4]);
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn a_gone_loggers_records_are_returned_once_and_its_in_flight_records_keep_their_ids() {
        let mut l = Ledger::default();
        l.start_session(0);
        for s in 0..4 {
            assign(&mut l, s); // members 0, 1, 0, 1
        }
        l.start_session(0); // lost: all four wait for replay
        let first = l.next_replay();
        if let Some(t) = first {
            assert_eq!(l.assign(t), 1); // seq 0 (member 0) in flight again
        }
        let released: Vec<u64> = l.release_member(0).iter().map(|t| t.seq).collect();
        assert_eq!(
            released,
            vec![0, 2],
            "member 0's record in flight and its replay, in order"
        );
        let left: Vec<u64> = std::iter::from_fn(|| l.next_replay())
            .map(|t| t.seq)
            .collect();
        assert_eq!(left, vec![1, 3], "only member 1's replays remain");
        assert_eq!(
            l.in_flight(),
            1,
            "member 0's record in flight keeps its packet id"
        );
        assert_eq!(l.ack(1).map(|t| t.member), Some(0));
        assert!(l.release_member(0).is_empty(), "nothing is returned twice");
    }

    #[test]
    fn take_all_returns_everything_unsettled_once() {
        let mut l = Ledger::default();
        l.start_session(0);
        for s in 0..4 {
            assign(&mut l, s);
        }
        l.ack(1);
        l.connection_lost();
        l.start_session(0);
        let t = l.next_replay();
        if let Some(t) = t {
            l.assign(t);
        }
        let all: Vec<u64> = l.take_all().into_iter().map(|t| t.seq).collect();
        assert_eq!(all, vec![1, 2, 3]);
        assert!(l.take_all().is_empty());
        assert_eq!(l.in_flight(), 0);
    }
}
