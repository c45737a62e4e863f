use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::srp::{Header, HEADER_LEN, PROCESSOR_COUNT_MAX};

/// `struct memb_join` (spec §2.5): a JOIN, or a LEAVE when `header.nodeid` is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembJoin {
    /// Common header (type 3).
    pub header: Header,
    /// Sender nodeid (also set in a LEAVE).
    pub system_from: u32,
    /// The sender's `my_ring_id.seq`.
    pub ring_seq: u64,
    /// Nodeids the sender believes live, in its insertion order.
    pub proc_list: Vec<u32>,
    /// Nodeids the sender gave up on; in a LEAVE the leaver is the last entry.
    pub failed_list: Vec<u32>,
}

impl MembJoin {
    /// Size before the lists.
    pub const FIXED_LEN: usize = 33;

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<MembJoin> {
        let system_from = d.u32("system_from")?;
        let proc_offset = d.offset();
        let proc_entries = d.u32("proc_list_entries")?;
        let failed_offset = d.offset();
        let failed_entries = d.u32("failed_list_entries")?;
        let ring_seq = d.u64("ring_seq")?;
        // Debian's 3.1.7 security fix drops JOINs with either list longer than 384.
        let p = d.bounded_count(
            "proc_list_entries",
            proc_entries.into(),
            PROCESSOR_COUNT_MAX,
            4,
            proc_offset,
        )?;
        let proc_list = d.u32_list("proc_list", p)?;
        let f = d.bounded_count(
            "failed_list_entries",
            failed_entries.into(),
            PROCESSOR_COUNT_MAX,
            4,
            failed_offset,
        )?;
        let failed_list = d.u32_list("failed_list", f)?;
        Ok(MembJoin {
            header,
            system_from,
            ring_seq,
            proc_list,
            failed_list,
        })
    }

    /// A LEAVE (`memb_leave_message_send`): header nodeid 0.
    pub fn is_leave(&self) -> bool {
        self.header.nodeid == 0
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + 4 * (self.proc_list.len() + self.failed_list.len())
    }

    /// Appends the message in its header's byte order.
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        e.u32(self.system_from);
        e.u32(self.proc_list.len() as u32);
        e.u32(self.failed_list.len() as u32);
        e.u64(self.ring_seq);
        for n in self.proc_list.iter().chain(&self.failed_list) {
            e.u32(*n);
        }
        debug_assert_eq!(HEADER_LEN + 20, Self::FIXED_LEN);
    }
}
