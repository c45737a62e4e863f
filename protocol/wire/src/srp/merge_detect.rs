use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::srp::{Header, RingId};

/// `struct memb_merge_detect` (29 bytes): sent by a representative whose token is idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembMergeDetect {
    /// Common header (type 2).
    pub header: Header,
    /// Sender nodeid.
    pub system_from: u32,
    /// The sender's ring.
    pub ring_id: RingId,
}

impl MembMergeDetect {
    /// Bytes on the wire.
    pub const LEN: usize = 29;

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<MembMergeDetect> {
        Ok(MembMergeDetect {
            header,
            system_from: d.u32("system_from")?,
            ring_id: RingId::parse(d)?,
        })
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Appends the message in its header's byte order.
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        e.u32(self.system_from);
        self.ring_id.emit(&mut e);
    }
}
