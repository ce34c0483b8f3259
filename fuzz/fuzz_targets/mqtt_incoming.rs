//! What a broker sends: the session's own decode path (`read_connack`, `limits_from_connack`,
//! `parse_incoming` in core/src/packets.rs, through `kepmlog::__fuzz::session_incoming`),
//! which uses rumqttc's `v5::mqttbytes`. The input is cut into the chunks reads would return
//! (each chunk prefixed by one length byte), so packets split across reads are covered too.
//!
//! Invariants: never panics; memory stays bounded (run with -rss_limit_mb): what waits for the
//! rest of a packet is never more than the largest packet kepmlog accepts plus its fixed
//! header; a successful CONNACK grants a receive maximum of at least 1.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

use kepmlog::__fuzz::{session_incoming, MAX_INCOMING};

/// Type byte and up to four bytes of Remaining Length.
const MAX_FIXED_HEADER: usize = 5;

fuzz_target!(|data: &[u8]| {
    let mut chunks = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        // 0: the whole rest at once.
        let n = if len == 0 {
            tail.len()
        } else {
            usize::from(len).min(tail.len())
        };
        let (chunk, tail) = tail.split_at(n);
        chunks.push(chunk);
        rest = tail;
    }
    let trace = session_incoming(&chunks, Duration::from_secs(30));
    assert!(
        trace.max_pending <= MAX_INCOMING as usize + MAX_FIXED_HEADER,
        "{} bytes buffered",
        trace.max_pending
    );
    if let Some((receive_maximum, _, _)) = trace.limits {
        assert!(receive_maximum >= 1);
    }
    if let Some(e) = &trace.error {
        assert!(!e.is_empty());
    }
});
