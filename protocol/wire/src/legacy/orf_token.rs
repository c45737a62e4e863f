use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::legacy::{Header, RingId, HEADER_LEN, RETRANSMIT_ENTRIES_MAX};

/// Fixed part of `struct orf_token`: header up to `rtr_list_entries` (70 bytes).
pub const ORF_TOKEN_FIXED_LEN: usize = 70;

/// `struct rtr_item` (`exec/totemsrp.c`, v1.4.10/v2.4.6): `{ struct memb_ring_id ring_id;
/// unsigned int seq; }`, packed, 34 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtrItem {
    /// `ring_id`: ring on which `seq` was assigned.
    pub ring_id: RingId,
    /// `seq`: the missing message's sequence number.
    pub seq: u32,
}

impl RtrItem {
    /// Size on the wire.
    pub const LEN: usize = RingId::LEN + 4;
}

/// `struct orf_token` (`exec/totemsrp.c`, v1.4.10/v2.4.6): the ordering token, the same in
/// 1.x and 2.x (it holds no `srp_addr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrfToken {
    /// Common header (type 0).
    pub header: Header,
    /// `seq`: highest message seq assigned on this ring so far.
    pub seq: u32,
    /// `token_seq`: rotation counter, +1 at every hop.
    pub token_seq: u32,
    /// `aru`: all received up to.
    pub aru: u32,
    /// `aru_addr`: nodeid that last lowered `aru`.
    pub aru_addr: u32,
    /// `ring_id`: the ring the token belongs to.
    pub ring_id: RingId,
    /// `backlog`: sum of the members' send backlogs.
    pub backlog: u32,
    /// `fcc`: messages sent during the last rotation.
    pub fcc: u32,
    /// `retrans_flg`: 1 while some member still re-sends old-ring messages.
    pub retrans_flg: i32,
    /// `rtr_list[rtr_list_entries]`: missing messages, at most [`RETRANSMIT_ENTRIES_MAX`]
    /// (`orf_token_rtr` never adds more).
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
        // `int` on the wire: a negative count is refused like a huge one.
        let count = d.bounded_count(
            "rtr_list_entries",
            u64::from(raw as u32),
            RETRANSMIT_ENTRIES_MAX,
            RtrItem::LEN,
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
        ORF_TOKEN_FIXED_LEN + RtrItem::LEN * self.rtr_list.len()
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
        debug_assert_eq!(HEADER_LEN + 16 + RingId::LEN + 16, ORF_TOKEN_FIXED_LEN);
    }
}
