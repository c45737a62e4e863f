//! Message payloads the agent sends and checks.
//!
//! A payload starts with a header `"TCF1" u16 tag_len, tag, u64 seq` (little endian) and
//! is filled with bytes derived from tag and seq, so a receiver can tell the sender's
//! sequence number and whether the bytes arrived intact without any side channel.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"TCF1";

pub fn header_len(tag: &str) -> usize {
    4 + 2 + tag.len() + 8
}

fn fill_byte(seed: u64, i: usize) -> u8 {
    (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) & 0xff) as u8
}

fn seed(tag: &str, seq: u64) -> u64 {
    tag.bytes()
        .fold(seq, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(b)))
}

/// Builds a payload of exactly `size` bytes; when `size` is smaller than the header the
/// payload is plain filler and receivers report it without tag and seq.
pub fn build(tag: &str, seq: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    if size >= header_len(tag) {
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        v.extend_from_slice(tag.as_bytes());
        v.extend_from_slice(&seq.to_le_bytes());
    }
    let s = seed(tag, seq);
    while v.len() < size {
        v.push(fill_byte(s, v.len()));
    }
    v
}

pub struct Parsed {
    pub(crate) tag: String,
    pub(crate) seq: u64,
    pub(crate) intact: bool,
}

pub fn parse(msg: &[u8]) -> Option<Parsed> {
    if msg.len() < 6 || &msg[..4] != MAGIC {
        return None;
    }
    let tl = u16::from_le_bytes([msg[4], msg[5]]) as usize;
    if msg.len() < 6 + tl + 8 {
        return None;
    }
    let tag = String::from_utf8_lossy(&msg[6..6 + tl]).into_owned();
    let mut seq_b = [0u8; 8];
    seq_b.copy_from_slice(&msg[6 + tl..6 + tl + 8]);
    let seq = u64::from_le_bytes(seq_b);
    let s = seed(&tag, seq);
    let start = 6 + tl + 8;
    let intact = msg[start..]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == fill_byte(s, start + i));
    Some(Parsed { tag, seq, intact })
}

/// First 8 bytes of SHA-256, hex: traces carry digests, never payloads.
pub fn digest(msg: &[u8]) -> String {
    let d = Sha256::digest(msg);
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_detects_corruption() {
        let mut p = build("c1/h1", 42, 300);
        assert_eq!(p.len(), 300);
        let q = parse(&p).expect("header");
        assert_eq!((q.tag.as_str(), q.seq, q.intact), ("c1/h1", 42, true));
        p[200] ^= 1;
        assert!(!parse(&p).expect("header").intact);
    }

    #[test]
    fn short_payloads_have_no_header() {
        assert!(parse(&build("tag", 1, 5)).is_none());
        assert_eq!(build("tag", 1, 0).len(), 0);
    }
}
