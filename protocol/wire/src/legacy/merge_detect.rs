use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::legacy::{Header, LegacyVersion, RingId, SrpAddr, HEADER_LEN};

/// `struct memb_merge_detect` (`exec/totemsrp.c`, v1.4.10/v2.4.6): sent by a representative
/// whose token is idle (`memb_merge_detect_transmit`). 82 bytes in 1.x, 83 in 2.x.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembMergeDetect {
    /// Common header (type 2).
    pub header: Header,
    /// `system_from`: the sender (`my_id`).
    pub system_from: SrpAddr,
    /// `ring_id`: the sender's ring.
    pub ring_id: RingId,
}

impl MembMergeDetect {
    /// Bytes on the wire in `version`.
    pub fn wire_len(version: LegacyVersion) -> usize {
        HEADER_LEN + SrpAddr::wire_len(version) + RingId::LEN
    }

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<MembMergeDetect> {
        Ok(MembMergeDetect {
            header,
            system_from: SrpAddr::parse(d, header.version)?,
            ring_id: RingId::parse(d)?,
        })
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::wire_len(self.header.version)
    }

    /// Appends the message in its header's byte order and version.
    pub fn emit(&self, out: &mut Vec<u8>) {
        debug_assert!(self.system_from.fits(self.header.version));
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        self.system_from.emit(&mut e);
        self.ring_id.emit(&mut e);
    }
}
