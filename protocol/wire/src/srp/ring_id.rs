use core::fmt;

use crate::codec::{Decoder, Encoder};
use crate::error::Result;

/// `struct memb_ring_id`: the representative's nodeid and the ring sequence (12 bytes,
/// packed). corosync prints it as `rep.seq` in hex, e.g. `1.9`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RingId {
    /// Nodeid of the ring's representative (its lowest nodeid).
    pub rep: u32,
    /// Ring sequence: +4 for every new ring, persisted across restarts.
    pub seq: u64,
}

impl RingId {
    /// Size on the wire.
    pub const LEN: usize = 12;

    pub(crate) fn parse(d: &mut Decoder<'_>) -> Result<RingId> {
        Ok(RingId {
            rep: d.u32("ring_id.rep")?,
            seq: d.u64("ring_id.seq")?,
        })
    }

    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        e.u32(self.rep);
        e.u64(self.seq);
    }
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:x}", self.rep, self.seq)
    }
}
