use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::srp::{Header, RingId, HEADER_LEN, RETRANSMIT_ENTRIES_MAX};

/// Fixed part of `struct orf_token`: header up to `rtr_list_entries` (57 bytes).
pub const ORF_TOKEN_FIXED_LEN: usize = 57;

/// `struct rtr_item`: one retransmit request (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtrItem {
    /// Ring on which `seq` was assigned.
    pub ring_id: RingId,
    /// The missing message's sequence number.
    pub seq: u32,
}

/// `struct orf_token`: the ordering token (spec §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrfToken {
    /// Common header (type 0).
    pub header: Header,
    /// Highest message seq assigned on this ring so far.
    pub seq: u32,
    /// Rotation counter, +1 at every hop; duplicates are dropped by it.
    pub token_seq: u32,
    /// All received up to: the ring's low-water mark.
    pub aru: u32,
    /// Nodeid that last lowered `aru`; 0 when `aru == seq`.
    pub aru_addr: u32,
    /// The ring the token belongs to.
    pub ring_id: RingId,
    /// Sum of the members' send backlogs (flow control).
    pub backlog: u32,
    /// Messages sent during the last rotation (flow control).
    pub fcc: u32,
    /// Recovery: 1 while some member still re-sends old-ring messages.
    pub retrans_flg: i32,
    /// Missing messages, at most [`RETRANSMIT_ENTRIES_MAX`].
    pub rtr_list: Vec<RtrItem>,
}

impl OrfToken {
    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<OrfToken> {
        let seq = d.u32("seq")?;
        let token_seq = d.u32("token_seq")?;
        let aru = d.u32("aru")?;
        let aru_addr = d.u32("aru_addr")?;
        let ring_id = RingId::parse(d)?;
        let backlog = d.u32("backlog")?;
        let fcc = d.u32("fcc")?;
        let retrans_flg = d.i32("retrans_flg")?;
        let count_offset = d.offset();
        let raw = d.i32("rtr_list_entries")?;
        // A negative count is as invalid as a huge one; corosync 3.1.7-1+deb12u1 drops both.
        let count = d.bounded_count(
            "rtr_list_entries",
            u64::from(raw as u32),
            RETRANSMIT_ENTRIES_MAX,
            16,
            count_offset,
        )?;
        let mut rtr_list = Vec::with_capacity(count);
        for _ in 0..count {
            rtr_list.push(RtrItem {
                ring_id: RingId::parse(d)?,
                seq: d.u32("rtr_list.seq")?,
            });
        }
        Ok(OrfToken {
            header,
            seq,
            token_seq,
            aru,
            aru_addr,
            ring_id,
            backlog,
            fcc,
            retrans_flg,
            rtr_list,
        })
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        ORF_TOKEN_FIXED_LEN + 16 * self.rtr_list.len()
    }

    /// Appends the token in its header's byte order.
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        e.u32(self.seq);
        e.u32(self.token_seq);
        e.u32(self.aru);
        e.u32(self.aru_addr);
        self.ring_id.emit(&mut e);
        e.u32(self.backlog);
        e.u32(self.fcc);
        e.i32(self.retrans_flg);
        e.i32(self.rtr_list.len() as i32);
        for item in &self.rtr_list {
            item.ring_id.emit(&mut e);
            e.u32(item.seq);
        }
        debug_assert_eq!(HEADER_LEN + 44, ORF_TOKEN_FIXED_LEN);
    }
}
