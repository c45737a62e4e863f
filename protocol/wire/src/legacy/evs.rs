//! corosync 1.4's own EVS exec message, `struct req_exec_evs_mcast` (`services/evs.c` at
//! v1.4.10, docs/evs.md §4): service 0 (`EVS_SERVICE`), function 0
//! (`MESSAGE_REQ_EXEC_EVS_MCAST`), sent on totempg group "a". Not our EVS exec message
//! ([`crate::exec::evs`], service 48 under libqb's header): this one has 1.4's coroipc
//! header (`size` @0, `id` @8) and its counters are C `size_t`s, written in the sender's
//! byte order with the sender's width. Layout on LP64 (x86-64, where docs/evs.md took the
//! offsets):
//!
//! | off | size | field |
//! | --- | --- | --- |
//! | 0 | 4 (+4) | `header.size` = 32 + 32·n + msg_len |
//! | 8 | 4 (+4) | `header.id` = 0 (`SERVICE_ID_MAKE(EVS_SERVICE, 0)`) |
//! | 16 | 8 | `group_entries` n (`size_t`) |
//! | 24 | 8 | `msg_len` (`size_t`) |
//! | 32 | 32·n | `struct evs_group groups[n]` |
//! | 32 + 32·n | msg_len | the message |
//!
//! 1.4's receiver trusts both counters (EVS-CODE-9); this decoder does not: `size`, `n` and
//! `msg_len` must all agree with the bytes present. A 32-bit sender (`size_t` of 4 bytes)
//! lays the counters out differently and is refused here by those same checks.
//!
//! Cross-endian delivery (EVS-CODE-10): `req_exec_mcast_endian_convert` swaps the two
//! `size_t`s with `swab32`, which reads only the low 32 bits of the value as the receiver
//! loaded it; for a 64-bit value written in the other order those are the sender's high 32
//! bits, so a receiver of the other byte order sees [`received_cross_endian`] of each
//! counter: 0 for every real message, which it then delivers to no group.

use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{ErrorKind, Layer, Result};
use crate::exec::evs::{EvsGroup, EVS_GROUPS_MAX, EVS_GROUP_LEN, EVS_MSGLEN_MAX};
use crate::legacy::CoroipcHeader;

/// 1.4's `EVS_SERVICE`.
pub const EVS_SERVICE_1X: u16 = 0;
/// `MESSAGE_REQ_EXEC_EVS_MCAST`.
pub const EVS_MCAST_FUNCTION_1X: u16 = 0;
/// Size of `struct req_exec_evs_mcast` before its groups (LP64).
pub const EVS_MCAST_1X_FIXED_LEN: usize = 32;

/// `struct req_exec_evs_mcast` of corosync 1.4 and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvsMcast1x<'a> {
    /// The coroipc header (`size`, `id`).
    pub header: CoroipcHeader,
    /// The target groups, in the sender's order (duplicates kept).
    pub groups: Vec<EvsGroup>,
    /// The message.
    pub data: &'a [u8],
}

/// What a 1.4 receiver of the other byte order makes of a `size_t` counter `value` written
/// by a 64-bit sender: `swab32` of the low half of the byte-reversed value, i.e. the high
/// half of `value` (EVS-CODE-10, `req_exec_mcast_endian_convert`).
pub fn received_cross_endian(value: u64) -> u64 {
    value >> 32
}

impl<'a> EvsMcast1x<'a> {
    /// A message of `data` to `groups`, its header sized to match.
    pub fn new(groups: Vec<EvsGroup>, data: &'a [u8]) -> EvsMcast1x<'a> {
        let size = EVS_MCAST_1X_FIXED_LEN + EVS_GROUP_LEN * groups.len() + data.len();
        EvsMcast1x {
            header: CoroipcHeader {
                size: size as u32,
                id: u32::from(EVS_SERVICE_1X) << 16 | u32::from(EVS_MCAST_FUNCTION_1X),
            },
            groups,
            data,
        }
    }

    /// Is this header 1.4's EVS MCAST?
    pub fn is_evs_mcast(header: &CoroipcHeader) -> bool {
        header.service() == EVS_SERVICE_1X && header.function() == EVS_MCAST_FUNCTION_1X
    }

    /// Parses the whole message (header included) in the sender's `order`.
    pub fn parse(bytes: &'a [u8], order: ByteOrder) -> Result<EvsMcast1x<'a>> {
        let mut d = Decoder::new(bytes, order, Layer::Evs);
        let size = d.u32("size")?;
        d.pad(4)?;
        let id = d.u32("id")?;
        d.pad(4)?;
        let header = CoroipcHeader { size, id };
        if size as usize != bytes.len() {
            return Err(d.error_at(
                0,
                ErrorKind::LengthMismatch {
                    field: "size",
                    declared: size.into(),
                    actual: bytes.len() as u64,
                },
            ));
        }
        let count_offset = d.offset();
        let count = d.u64("group_entries")?;
        let len_offset = d.offset();
        let len = d.u64("msg_len")?;
        let count =
            d.bounded_count("groups", count, EVS_GROUPS_MAX, EVS_GROUP_LEN, count_offset)?;
        let mut groups = Vec::with_capacity(count);
        for _ in 0..count {
            groups.push(d.array::<EVS_GROUP_LEN>("group")?);
        }
        if len > EVS_MSGLEN_MAX {
            return Err(d.error_at(
                len_offset,
                ErrorKind::CountTooLarge {
                    field: "msg_len",
                    count: len,
                    max: EVS_MSGLEN_MAX,
                },
            ));
        }
        if len != d.remaining() as u64 {
            return Err(d.error_at(
                len_offset,
                ErrorKind::LengthMismatch {
                    field: "msg_len",
                    declared: len,
                    actual: d.remaining() as u64,
                },
            ));
        }
        Ok(EvsMcast1x {
            header,
            groups,
            data: d.take_rest(),
        })
    }

    /// Bytes [`EvsMcast1x::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        EVS_MCAST_1X_FIXED_LEN + EVS_GROUP_LEN * self.groups.len() + self.data.len()
    }

    /// Appends the message in `order`, as a 64-bit 1.4 node of that order writes it (the
    /// header's padding as zeros).
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        let mut e = Encoder::new(out, order);
        e.u32(self.header.size);
        e.zeros(4);
        e.u32(self.header.id);
        e.zeros(4);
        e.u64(self.groups.len() as u64);
        e.u64(self.data.len() as u64);
        for g in &self.groups {
            e.bytes(g);
        }
        e.bytes(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &[u8]) -> EvsGroup {
        let mut k = [0u8; EVS_GROUP_LEN];
        k[..name.len()].copy_from_slice(name);
        k
    }

    /// The message built byte by byte from the layout table of docs/evs.md §4, without the
    /// encoder: the golden sample the encoder and the decoder are held to.
    fn by_hand(order: ByteOrder) -> Vec<u8> {
        let u32b = |v: u32| match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        let u64b = |v: u64| match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        let mut b = Vec::new();
        b.extend_from_slice(&u32b(32 + 64 + 5));
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&u32b(0));
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&u64b(2));
        b.extend_from_slice(&u64b(5));
        b.extend_from_slice(&key(b"key1"));
        b.extend_from_slice(&key(b"a\0b"));
        b.extend_from_slice(b"hello");
        b
    }

    macro_rules! golden {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/wire/legacy/evs/",
                $name
            ))
            .as_slice()
        };
    }

    #[test]
    fn golden_samples_match_the_layout_in_both_orders() {
        for (order, golden) in [
            (ByteOrder::Little, golden!("req_exec_evs_mcast-le.bin")),
            (ByteOrder::Big, golden!("req_exec_evs_mcast-be.bin")),
        ] {
            let bytes = by_hand(order);
            assert_eq!(bytes, golden, "{order:?}");
            let m = EvsMcast1x::parse(golden, order).unwrap();
            assert!(EvsMcast1x::is_evs_mcast(&m.header));
            assert_eq!(m.header.size, 101);
            assert_eq!(m.groups, vec![key(b"key1"), key(b"a\0b")]);
            assert_eq!(m.data, b"hello");
            let mut out = Vec::new();
            m.emit(&mut out, order);
            assert_eq!(out, golden);
            assert_eq!(m.buffer_len(), golden.len());
            assert_eq!(EvsMcast1x::new(m.groups.clone(), b"hello"), m);
        }
    }

    #[test]
    fn counters_that_lie_are_errors_at_their_offset() {
        let good = by_hand(ByteOrder::Little);
        // group_entries 3 where 2 are present (and the size still says 101).
        let mut b = good.clone();
        b[16] = 3;
        assert!(EvsMcast1x::parse(&b, ByteOrder::Little).is_err());
        // group_entries beyond every bound.
        let mut b = good.clone();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = EvsMcast1x::parse(&b, ByteOrder::Little).unwrap_err();
        assert_eq!((e.offset, e.kind_name()), (16, "count_too_large"));
        // msg_len one short.
        let mut b = good.clone();
        b[24] = 4;
        let e = EvsMcast1x::parse(&b, ByteOrder::Little).unwrap_err();
        assert_eq!((e.offset, e.kind_name()), (24, "length_mismatch"));
        // The header's size disagrees with the bytes.
        let mut b = good.clone();
        b[0] = 100;
        let e = EvsMcast1x::parse(&b, ByteOrder::Little).unwrap_err();
        assert_eq!((e.offset, e.kind_name()), (0, "length_mismatch"));
        // Read in the wrong order, the counters are absurd, never trusted.
        assert!(EvsMcast1x::parse(&good, ByteOrder::Big).is_err());
        // Every truncation is an error, never a panic.
        for cut in 0..good.len() {
            assert!(EvsMcast1x::parse(&good[..cut], ByteOrder::Little).is_err());
        }
    }

    #[test]
    fn a_cross_endian_receiver_reads_the_counters_as_their_high_half() {
        // EVS-CODE-10: two groups and five bytes arrive as none and nothing.
        assert_eq!(received_cross_endian(2), 0);
        assert_eq!(received_cross_endian(5), 0);
        assert_eq!(received_cross_endian(7 << 32 | 9), 7);
    }
}
