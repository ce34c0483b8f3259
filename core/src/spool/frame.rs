//! One accepted record as the spool keeps it on disk: a frame that checks itself, so a tail torn
//! by a crash, or a byte damaged later, is found and never replayed.
//!
//! Layout (little-endian), a 24-byte header then the payload exactly as it goes on the wire:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `KLS1` |
//! | 4..8 | payload length |
//! | 8..16 | sequence number: the record's queue position in its run |
//! | 16 | kind: 0 a KeeperLogger record, 1 an event |
//! | 17..20 | zero |
//! | 20..24 | CRC-32 (IEEE) of bytes 4..20 and of the payload |

use crate::item::Kind;

const MAGIC: [u8; 4] = *b"KLS1";
pub(crate) const HEADER: usize = 24;
/// Far above any payload the logger accepts (records are capped at a few tens of KiB, events at
/// 256 KiB): a larger length can only be damage.
const MAX_PAYLOAD: usize = 1 << 20;

/// A record read back from a spool segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub seq: u64,
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// Where a segment stops making sense, and why.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Offset of the first byte that is not part of a valid frame.
    pub offset: usize,
    /// Bytes from there to the end of the segment, none of which is replayed.
    pub skipped: usize,
    pub reason: &'static str,
}

/// Appends the frame of one record to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, seq: u64, kind: Kind, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&[kind_byte(kind), 0, 0, 0]);
    let crc = checksum(&buf[start + 4..start + 20], payload);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Every valid frame of a segment, in file order, up to the end or the first damage: a frame
/// whose magic, length, kind or checksum is wrong, or which the segment ends inside of (a
/// write a crash cut short). Nothing after damage is trusted.
pub(crate) fn decode_all(bytes: &[u8]) -> (Vec<Frame>, Option<Damage>) {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match decode_one(&bytes[at..]) {
            Ok((frame, used)) => {
                frames.push(frame);
                at += used;
            }
            Err(reason) => {
                let damage = Damage {
                    offset: at,
                    skipped: bytes.len() - at,
                    reason,
                };
                return (frames, Some(damage));
            }
        }
    }
    (frames, None)
}

fn decode_one(bytes: &[u8]) -> Result<(Frame, usize), &'static str> {
    if bytes.len() < HEADER {
        return Err("a frame header cut short");
    }
    if bytes[..4] != MAGIC {
        return Err("no frame starts here");
    }
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err("an impossible frame length");
    }
    let kind = match bytes[16] {
        0 => Kind::Log,
        1 => Kind::Event,
        _ => return Err("an unknown record kind"),
    };
    let end = HEADER + len;
    if bytes.len() < end {
        return Err("a frame cut short");
    }
    let stored = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    if bytes[17..20] != [0, 0, 0] || checksum(&bytes[4..20], &bytes[HEADER..end]) != stored {
        return Err("a checksum mismatch");
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[8..16]);
    let frame = Frame {
        seq: u64::from_le_bytes(seq),
        kind,
        payload: bytes[HEADER..end].to_vec(),
    };
    Ok((frame, end))
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Log => 0,
        Kind::Event => 1,
    }
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for seq in 0..n {
            let payload = format!(r#"{{"Id":"{seq}","MetaData":{{"Message":"record {seq}"}}}}"#);
            let kind = if seq % 3 == 2 { Kind::Event } else { Kind::Log };
            encode(&mut buf, seq, kind, payload.as_bytes());
            ends.push(buf.len());
        }
        (buf, ends)
    }

    #[test]
    fn frames_read_back_as_written() {
        let (buf, _) = segment(5);
        let (frames, damage) = decode_all(&buf);
        assert_eq!(damage, None);
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[2].kind, Kind::Event);
        assert_eq!(frames[4].seq, 4);
        assert_eq!(
            frames[4].payload,
            br#"{"Id":"4","MetaData":{"Message":"record 4"}}"#
        );
    }

    #[test]
    fn a_tail_cut_at_any_byte_keeps_every_whole_frame_before_it() {
        let (buf, ends) = segment(4);
        let last_start = ends[2];
        for cut in last_start..buf.len() {
            let (frames, damage) = decode_all(&buf[..cut]);
            assert_eq!(frames.len(), 3, "cut at {cut}");
            if cut == last_start {
                assert_eq!(damage, None);
            } else {
                let d = damage.expect("the cut frame is reported");
                assert_eq!(
                    (d.offset, d.skipped),
                    (last_start, cut - last_start),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_stops_the_segment_at_that_frame() {
        let (buf, ends) = segment(4);
        for at in 0..buf.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = buf.clone();
                bad[at] ^= bit;
                let frame = ends.iter().position(|&e| at < e).unwrap_or(ends.len());
                let (frames, damage) = decode_all(&bad);
                assert_eq!(frames.len(), frame, "bit {bit:#x} of byte {at}");
                let d = damage.expect("damage is reported");
                let start = if frame == 0 { 0 } else { ends[frame - 1] };
                assert_eq!(d.offset, start, "bit {bit:#x} of byte {at}");
            }
        }
    }

    #[test]
    fn lengths_beyond_any_record_are_damage_not_allocations() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, Kind::Log, b"x");
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let (frames, damage) = decode_all(&buf);
        assert!(frames.is_empty());
        assert_eq!(damage.map(|d| d.reason), Some("an impossible frame length"));
    }
}
