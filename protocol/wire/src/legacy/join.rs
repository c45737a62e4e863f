use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::legacy::{Header, LegacyVersion, SrpAddr, HEADER_LEN, PROCESSOR_COUNT_MAX};

/// `struct memb_join` (`exec/totemsrp.c`, v1.4.10/v2.4.6) and its two trailing lists of
/// `struct srp_addr`: a JOIN (`memb_join_message_send`), or a LEAVE
/// (`memb_leave_message_send`) when `header.nodeid` is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembJoin {
    /// Common header (type 3).
    pub header: Header,
    /// `system_from`: the sender; in a LEAVE its `addr[0].nodeid` is 0 as well.
    pub system_from: SrpAddr,
    /// `ring_seq`: the sender's `my_ring_id.seq`.
    pub ring_seq: u64,
    /// `proc_list[proc_list_entries]`: processors the sender believes live.
    pub proc_list: Vec<SrpAddr>,
    /// `failed_list[failed_list_entries]`: processors the sender gave up on.
    pub failed_list: Vec<SrpAddr>,
}

impl MembJoin {
    /// Size before the lists in `version` (68 bytes in 1.x, 69 in 2.x).
    pub fn fixed_len(version: LegacyVersion) -> usize {
        HEADER_LEN + SrpAddr::wire_len(version) + 16
    }

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<MembJoin> {
        let version = header.version;
        let entry_len = SrpAddr::wire_len(version);
        let system_from = SrpAddr::parse(d, version)?;
        let proc_offset = d.offset();
        let proc_entries = d.u32("proc_list_entries")?;
        let failed_offset = d.offset();
        let failed_entries = d.u32("failed_list_entries")?;
        let ring_seq = d.u64("ring_seq")?;
        let p = d.bounded_count(
            "proc_list_entries",
            proc_entries.into(),
            PROCESSOR_COUNT_MAX,
            entry_len,
            proc_offset,
        )?;
        let mut proc_list = Vec::with_capacity(p);
        for _ in 0..p {
            proc_list.push(SrpAddr::parse(d, version)?);
        }
        let f = d.bounded_count(
            "failed_list_entries",
            failed_entries.into(),
            PROCESSOR_COUNT_MAX,
            entry_len,
            failed_offset,
        )?;
        let mut failed_list = Vec::with_capacity(f);
        for _ in 0..f {
            failed_list.push(SrpAddr::parse(d, version)?);
        }
        Ok(MembJoin {
            header,
            system_from,
            ring_seq,
            proc_list,
            failed_list,
        })
    }

    /// A LEAVE (`memb_leave_message_send`): header nodeid `LEAVE_DUMMY_NODEID` (0).
    pub fn is_leave(&self) -> bool {
        self.header.nodeid == 0
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        let version = self.header.version;
        Self::fixed_len(version)
            + SrpAddr::wire_len(version) * (self.proc_list.len() + self.failed_list.len())
    }

    /// Appends the message in its header's byte order and version.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let version = self.header.version;
        debug_assert!(self.system_from.fits(version));
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        self.system_from.emit(&mut e);
        e.u32(self.proc_list.len() as u32);
        e.u32(self.failed_list.len() as u32);
        e.u64(self.ring_seq);
        for a in self.proc_list.iter().chain(&self.failed_list) {
            debug_assert!(a.fits(version));
            a.emit(&mut e);
        }
    }
}
