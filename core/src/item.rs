//! What a logger hands its worker: a publish whose payload is final, built on the caller's
//! thread (the queue carries it; the spool keeps a copy on disk).

use bytes::Bytes;

/// A queued publish: the payload is final, built on the caller's thread.
pub(crate) struct Item {
    pub kind: Kind,
    pub payload: Bytes,
    /// When it was logged: the time of its stderr line should it never be delivered.
    pub at: std::time::SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Log,
    Event,
}
