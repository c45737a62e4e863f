use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::srp::{Header, RingId, PROCESSOR_COUNT_MAX};

/// `struct memb_commit_token_memb_entry` (24 bytes): what one member brings from its old ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommitMemberEntry {
    /// The member's old ring; rep 0 means the entry is not filled yet.
    pub ring_id: RingId,
    /// Its aru on the old ring.
    pub aru: u32,
    /// Highest old-ring seq it delivered.
    pub high_delivered: u32,
    /// 1 when it had received everything of the old ring.
    pub received_flg: u32,
}

/// `struct memb_commit_token` (spec §2.5): circulates twice while a new ring forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembCommitToken {
    /// Common header (type 4).
    pub header: Header,
    /// +1 on every send, starting at 1.
    pub token_seq: u32,
    /// The new ring: rep = creator, seq = highest seen + 4.
    pub ring_id: RingId,
    /// Unused, 0.
    pub retrans_flg: u32,
    /// Entries filled so far; the token goes to `addr[memb_index % n]`.
    pub memb_index: i32,
    /// Members of the new ring, ascending.
    pub addr: Vec<u32>,
    /// One entry per member, in `addr` order.
    pub memb_list: Vec<CommitMemberEntry>,
}

impl MembCommitToken {
    /// Size before the lists.
    pub const FIXED_LEN: usize = 41;

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<MembCommitToken> {
        let token_seq = d.u32("token_seq")?;
        let ring_id = RingId::parse(d)?;
        let retrans_flg = d.u32("retrans_flg")?;
        let memb_index = d.i32("memb_index")?;
        let count_offset = d.offset();
        let raw = d.i32("addr_entries")?;
        // Each member costs 4 bytes of addr plus 24 of memb_list; check both up front.
        let n = d.bounded_count(
            "addr_entries",
            u64::from(raw as u32),
            PROCESSOR_COUNT_MAX,
            28,
            count_offset,
        )?;
        let addr = d.u32_list("addr", n)?;
        let mut memb_list = Vec::with_capacity(n);
        for _ in 0..n {
            memb_list.push(CommitMemberEntry {
                ring_id: RingId::parse(d)?,
                aru: d.u32("memb_list.aru")?,
                high_delivered: d.u32("memb_list.high_delivered")?,
                received_flg: d.u32("memb_list.received_flg")?,
            });
        }
        Ok(MembCommitToken {
            header,
            token_seq,
            ring_id,
            retrans_flg,
            memb_index,
            addr,
            memb_list,
        })
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + 4 * self.addr.len() + 24 * self.memb_list.len()
    }

    /// Appends the token in its header's byte order. `addr` and `memb_list` must be of the
    /// same length (the count is written once, from `addr`).
    pub fn emit(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.addr.len(), self.memb_list.len());
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        e.u32(self.token_seq);
        self.ring_id.emit(&mut e);
        e.u32(self.retrans_flg);
        e.i32(self.memb_index);
        e.i32(self.addr.len() as i32);
        for n in &self.addr {
            e.u32(*n);
        }
        for entry in &self.memb_list {
            entry.ring_id.emit(&mut e);
            e.u32(entry.aru);
            e.u32(entry.high_delivered);
            e.u32(entry.received_flg);
        }
    }
}
