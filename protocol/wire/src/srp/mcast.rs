use crate::codec::{Decoder, Encoder};
use crate::error::{Layer, Result};
use crate::srp::{Header, RingId, HEADER_LEN};

/// Size of `struct mcast` before the payload.
pub const MCAST_HEADER_LEN: usize = 45;

/// Field offsets of `struct mcast` (spec §2.5).
mod field {
    pub(super) const SEQ: usize = 17;
    pub(super) const THIS_SEQNO: usize = 21;
    pub(super) const RING_REP: usize = 25;
    pub(super) const RING_SEQ: usize = 29;
}

/// Writes `seq`, `this_seqno` and `ring_id` into an emitted MCAST, in the byte order its
/// magic says: a sender queues the message first and learns these when the token comes
/// (`totemsrp.c::orf_token_mcast`). Errors when `bytes` is not an MCAST.
pub fn assign_sequence(bytes: &mut [u8], seq: u32, this_seqno: i32, ring_id: RingId) -> Result<()> {
    let header = Header::parse(bytes)?;
    if header.message_type != crate::srp::MessageType::Mcast || bytes.len() < MCAST_HEADER_LEN {
        return Err(crate::error::Error::new(
            Layer::Totem,
            3,
            crate::error::ErrorKind::InvalidValue {
                field: "MCAST to sequence",
                value: u8::from(header.message_type).into(),
            },
        ));
    }
    let mut fields = Vec::with_capacity(20);
    let mut e = Encoder::new(&mut fields, header.order);
    e.u32(seq);
    e.i32(this_seqno);
    ring_id.emit(&mut e);
    debug_assert_eq!(field::RING_SEQ + 8 - field::SEQ, fields.len());
    debug_assert_eq!(
        (field::THIS_SEQNO, field::RING_REP),
        (field::SEQ + 4, field::SEQ + 8)
    );
    bytes[field::SEQ..field::RING_SEQ + 8].copy_from_slice(&fields);
    Ok(())
}

/// The `encapsulated` byte of an MCAST header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// `MESSAGE_ENCAPSULATED` (1): a recovery re-send; the payload is an old-ring MCAST.
    Encapsulated,
    /// `MESSAGE_NOT_ENCAPSULATED` (2): the payload is a totempg packet.
    NotEncapsulated,
    /// Any other value (corosync treats everything but 1 as not encapsulated).
    Other(u8),
}

impl From<u8> for Encapsulation {
    fn from(v: u8) -> Self {
        match v {
            1 => Encapsulation::Encapsulated,
            2 => Encapsulation::NotEncapsulated,
            other => Encapsulation::Other(other),
        }
    }
}

/// `struct mcast` and its payload (spec §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mcast<'a> {
    /// Common header (type 1); `header.nodeid` is the delivered sender.
    pub header: Header,
    /// Originator nodeid.
    pub system_from: u32,
    /// Ring-wide sequence number.
    pub seq: u32,
    /// Sender-local counter, unused by receivers.
    pub this_seqno: i32,
    /// Ring on which `seq` was assigned.
    pub ring_id: RingId,
    /// Never set by corosync: always 0.
    pub node_id: u32,
    /// 0 = agreed; not interpreted in 3.x.
    pub guarantee: i32,
    /// A totempg packet, or, when encapsulated, a complete inner MCAST.
    pub payload: &'a [u8],
}

impl<'a> Mcast<'a> {
    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'a>) -> Result<Mcast<'a>> {
        Ok(Mcast {
            header,
            system_from: d.u32("system_from")?,
            seq: d.u32("seq")?,
            this_seqno: d.i32("this_seqno")?,
            ring_id: RingId::parse(d)?,
            node_id: d.u32("node_id")?,
            guarantee: d.i32("guarantee")?,
            payload: d.take_rest(),
        })
    }

    /// How the payload is to be read.
    pub fn encapsulation(&self) -> Encapsulation {
        self.header.encapsulated.into()
    }

    /// For an encapsulated (recovery) MCAST: the old-ring message inside, parsed. The error's
    /// offset counts from the start of the outer message.
    pub fn inner(&self) -> Option<Result<Mcast<'a>>> {
        if self.encapsulation() != Encapsulation::Encapsulated {
            return None;
        }
        let parsed = crate::srp::Message::parse(self.payload).and_then(|(m, _)| match m {
            crate::srp::Message::Mcast(inner) => Ok(inner),
            other => Err(crate::error::Error::new(
                Layer::Totem,
                3,
                crate::error::ErrorKind::InvalidValue {
                    field: "encapsulated message type",
                    value: u8::from(other.header().message_type).into(),
                },
            )),
        });
        Some(parsed.map_err(|e| e.add_offset(MCAST_HEADER_LEN)))
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        MCAST_HEADER_LEN + self.payload.len()
    }

    /// Appends the message in its header's byte order.
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.header.emit(out);
        let mut e = Encoder::new(out, self.header.order);
        e.u32(self.system_from);
        e.u32(self.seq);
        e.i32(self.this_seqno);
        self.ring_id.emit(&mut e);
        e.u32(self.node_id);
        e.i32(self.guarantee);
        e.bytes(self.payload);
        debug_assert_eq!(HEADER_LEN + 32, MCAST_HEADER_LEN);
    }
}
