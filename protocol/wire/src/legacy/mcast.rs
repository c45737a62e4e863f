use crate::codec::{Decoder, Encoder};
use crate::error::{Error, ErrorKind, Layer, Result};
use crate::legacy::{Header, LegacyVersion, Message, RingId, SrpAddr, HEADER_LEN};
use crate::srp::Encapsulation;

/// `struct mcast` (`exec/totemsrp.c`, v1.4.10/v2.4.6) and its payload. Its size before the
/// payload is [`Mcast::header_len`]: 98 bytes in 1.x, 99 in 2.x (the `srp_addr` differs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mcast<'a> {
    /// Common header (type 1); `encapsulated` says how to read the payload.
    pub header: Header,
    /// `system_from`: the originator (`my_id`).
    pub system_from: SrpAddr,
    /// `seq`: ring-wide sequence number.
    pub seq: u32,
    /// `this_seqno`: sender-local counter (`global_seqno`), unused by receivers.
    pub this_seqno: i32,
    /// `ring_id`: ring on which `seq` was assigned.
    pub ring_id: RingId,
    /// `node_id`: never set by corosync (whatever was in the buffer, normally 0).
    pub node_id: u32,
    /// `guarantee`: `TOTEM_AGREED` (0) or `TOTEM_SAFE` (1).
    pub guarantee: i32,
    /// A totempg packet, or, when encapsulated, a complete old-ring MCAST of the same version.
    pub payload: &'a [u8],
}

impl<'a> Mcast<'a> {
    /// Size of `struct mcast` (before the payload) in `version`.
    pub fn header_len(version: LegacyVersion) -> usize {
        HEADER_LEN + SrpAddr::wire_len(version) + 8 + RingId::LEN + 8
    }

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'a>) -> Result<Mcast<'a>> {
        Ok(Mcast {
            header,
            system_from: SrpAddr::parse(d, header.version)?,
            seq: d.u32("seq")?,
            this_seqno: d.i32("this_seqno")?,
            ring_id: RingId::parse(d)?,
            node_id: d.u32("node_id")?,
            guarantee: d.i32("guarantee")?,
            payload: d.take_rest(),
        })
    }

    /// How the payload is to be read (the same two values as 3.x).
    pub fn encapsulation(&self) -> Encapsulation {
        self.header.encapsulated.into()
    }

    /// For an encapsulated (recovery) MCAST: the old-ring message inside, parsed in the same
    /// version. The error's offset counts from the start of the outer message.
    pub fn inner(&self) -> Option<Result<Mcast<'a>>> {
        if self.encapsulation() != Encapsulation::Encapsulated {
            return None;
        }
        let parsed = Message::parse(self.payload, self.header.version).and_then(|(m, _)| match m {
            Message::Mcast(inner) => Ok(inner),
            other => Err(Error::new(
                Layer::LegacyTotem,
                0,
                ErrorKind::InvalidValue {
                    field: "encapsulated message type",
                    value: u8::from(other.header().message_type).into(),
                },
            )),
        });
        Some(parsed.map_err(|e| e.add_offset(Self::header_len(self.header.version))))
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::header_len(self.header.version) + self.payload.len()
    }

    /// Appends the message in its header's byte order and version.
    pub fn emit(&self, out: &mut Vec<u8>) {
        debug_assert!(self.system_from.fits(self.header.version));
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        self.system_from.emit(&mut e);
        e.u32(self.seq);
        e.i32(self.this_seqno);
        self.ring_id.emit(&mut e);
        e.u32(self.node_id);
        e.i32(self.guarantee);
        e.bytes(self.payload);
    }
}
