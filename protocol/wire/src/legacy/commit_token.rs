use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::legacy::{Header, RingId, SrpAddr, HEADER_LEN, PROCESSOR_COUNT_MAX};

/// `struct memb_commit_token_memb_entry` (`exec/totemsrp.c`, v1.4.10/v2.4.6): what one member
/// brings from its old ring. Packed, 42 bytes, the same in 1.x and 2.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommitMemberEntry {
    /// `ring_id`: the member's old ring; `rep.family` 0 means not filled yet.
    pub ring_id: RingId,
    /// `aru`: its aru on the old ring.
    pub aru: u32,
    /// `high_delivered`: highest old-ring seq it delivered.
    pub high_delivered: u32,
    /// `received_flg`: 1 when it had received everything of the old ring.
    pub received_flg: u32,
}

impl CommitMemberEntry {
    /// Size on the wire.
    pub const LEN: usize = RingId::LEN + 12;
}

/// `struct memb_commit_token` (`exec/totemsrp.c`, v1.4.10/v2.4.6), followed by
/// `struct srp_addr addr[addr_entries]` and then
/// `struct memb_commit_token_memb_entry memb_list[addr_entries]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembCommitToken {
    /// Common header (type 4).
    pub header: Header,
    /// `token_seq`: +1 on every send.
    pub token_seq: u32,
    /// `ring_id`: the new ring.
    pub ring_id: RingId,
    /// `retrans_flg`: unused.
    pub retrans_flg: u32,
    /// `memb_index`: entries filled so far.
    pub memb_index: i32,
    /// `addr[addr_entries]`: members of the new ring.
    pub addr: Vec<SrpAddr>,
    /// `memb_list[addr_entries]`: one entry per member, in `addr` order.
    pub memb_list: Vec<CommitMemberEntry>,
}

impl MembCommitToken {
    /// Size before the lists (54 bytes, both versions).
    pub const FIXED_LEN: usize = HEADER_LEN + 4 + RingId::LEN + 12;

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<MembCommitToken> {
        let version = header.version;
        let token_seq = d.u32("token_seq")?;
        let ring_id = RingId::parse(d)?;
        let retrans_flg = d.u32("retrans_flg")?;
        let memb_index = d.i32("memb_index")?;
        let count_offset = d.offset();
        let raw = d.i32("addr_entries")?;
        // Each member costs one srp_addr plus one memb entry; both are checked up front.
        let n = d.bounded_count(
            "addr_entries",
            u64::from(raw as u32),
            PROCESSOR_COUNT_MAX,
            SrpAddr::wire_len(version) + CommitMemberEntry::LEN,
            count_offset,
        )?;
        let mut addr = Vec::with_capacity(n);
        for _ in 0..n {
            addr.push(SrpAddr::parse(d, version)?);
        }
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
        Self::FIXED_LEN
            + SrpAddr::wire_len(self.header.version) * self.addr.len()
            + CommitMemberEntry::LEN * self.memb_list.len()
    }

    /// Appends the token in its header's byte order and version. `addr` and `memb_list` must
    /// be of the same length (the count is written once, from `addr`).
    pub fn emit(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.addr.len(), self.memb_list.len());
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        e.u32(self.token_seq);
        self.ring_id.emit(&mut e);
        e.u32(self.retrans_flg);
        e.i32(self.memb_index);
        e.i32(self.addr.len() as i32);
        for a in &self.addr {
            debug_assert!(a.fits(self.header.version));
            a.emit(&mut e);
        }
        for entry in &self.memb_list {
            entry.ring_id.emit(&mut e);
            e.u32(entry.aru);
            e.u32(entry.high_delivered);
            e.u32(entry.received_flg);
        }
    }
}
