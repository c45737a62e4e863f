use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{Error, ErrorKind, Layer, Result};
use crate::legacy::LegacyVersion;
use crate::macros::open_enum;

/// `ENDIAN_LOCAL` (`exec/totemsrp.c`, v1.4.10 and v2.4.6): the sender writes it in its own
/// byte order, so a little-endian sender puts `22 FF` on the wire and a big-endian one `FF 22`.
pub const ENDIAN_DETECTOR: u16 = 0xff22;
/// Size of `struct message_header` (8 bytes, packed) in 1.x and 2.x.
pub const HEADER_LEN: usize = 8;

open_enum! {
    /// `enum message_type` of `exec/totemsrp.c` (v1.4.10, v2.4.6), plus the two ring-test
    /// messages that `exec/totemrrp.c` sends on the same sockets with the same first four bytes.
    pub enum MessageType(u8) {
        /// `MESSAGE_TYPE_ORF_TOKEN`.
        OrfToken = 0 => "ORF_TOKEN",
        /// `MESSAGE_TYPE_MCAST`.
        Mcast = 1 => "MCAST",
        /// `MESSAGE_TYPE_MEMB_MERGE_DETECT`.
        MembMergeDetect = 2 => "MEMB_MERGE_DETECT",
        /// `MESSAGE_TYPE_MEMB_JOIN`.
        MembJoin = 3 => "MEMB_JOIN",
        /// `MESSAGE_TYPE_MEMB_COMMIT_TOKEN`.
        MembCommitToken = 4 => "MEMB_COMMIT_TOKEN",
        /// `MESSAGE_TYPE_TOKEN_HOLD_CANCEL`.
        TokenHoldCancel = 5 => "TOKEN_HOLD_CANCEL",
        /// `MESSAGE_TYPE_RING_TEST_ACTIVE` of `exec/totemrrp.c` (active RRP); its body is not
        /// decoded and is kept raw in [`Message::Unknown`](crate::legacy::Message::Unknown).
        RrpRingTestActive = 6 => "RING_TEST_ACTIVE",
        /// `MESSAGE_TYPE_RING_TEST_ACTIVATE` of `exec/totemrrp.c`; kept raw like type 6.
        RrpRingTestActivate = 7 => "RING_TEST_ACTIVATE",
    }
}

/// `struct message_header` of `exec/totemsrp.c` (v1.4.10, v2.4.6): 8 bytes, packed,
/// `{ char type; char encapsulated; unsigned short endian_detector; unsigned int nodeid; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Byte order learnt from `endian_detector` (`main_deliver_fn` compares it with
    /// `ENDIAN_LOCAL` and byte-swaps the whole message when it differs).
    pub order: ByteOrder,
    /// Which grammar the rest of the message follows. Not on the wire: it comes from the
    /// transport framing ([`LegacyFraming`](crate::legacy::LegacyFraming)) or the caller.
    pub version: LegacyVersion,
    /// `type`.
    pub message_type: MessageType,
    /// `encapsulated`: MCAST 1 = `MESSAGE_ENCAPSULATED`, 2 = `MESSAGE_NOT_ENCAPSULATED`;
    /// 0 in the other messages.
    pub encapsulated: u8,
    /// `nodeid`: the sender's `my_id.addr[0].nodeid`; 0 (`LEAVE_DUMMY_NODEID`) in a LEAVE.
    pub nodeid: u32,
}

/// The byte order the endian detector at bytes 2..4 announces, if it is one.
pub(crate) fn detect_order(bytes: &[u8]) -> Option<ByteOrder> {
    match bytes {
        [_, _, 0x22, 0xFF, ..] => Some(ByteOrder::Little),
        [_, _, 0xFF, 0x22, ..] => Some(ByteOrder::Big),
        _ => None,
    }
}

impl Header {
    /// A little-endian header.
    pub fn new(version: LegacyVersion, message_type: MessageType, nodeid: u32) -> Header {
        Header {
            order: ByteOrder::Little,
            version,
            message_type,
            encapsulated: 0,
            nodeid,
        }
    }

    /// Parses the header of a message in the `version` grammar. The byte order comes from the
    /// endian detector; anything but `0xff22` in one of the two orders is refused with
    /// [`ErrorKind::BadMagic`] (corosync itself byte-swaps on any value other than its own).
    pub fn parse(bytes: &[u8], version: LegacyVersion) -> Result<Header> {
        let order = match (detect_order(bytes), bytes) {
            (Some(order), _) => order,
            (None, [_, _, first, second, ..]) => {
                let detector = u16::from_be_bytes([*first, *second]);
                return Err(Error::new(
                    Layer::LegacyTotem,
                    2,
                    ErrorKind::BadMagic(detector.into()),
                ));
            }
            (None, _) => {
                let (field, offset) = match bytes.len() {
                    0 => ("type", 0),
                    1 => ("encapsulated", 1),
                    _ => ("endian_detector", 2),
                };
                let needed = if offset == 2 { 2 } else { 1 };
                return Err(Error::new(
                    Layer::LegacyTotem,
                    offset,
                    ErrorKind::Truncated {
                        field,
                        needed,
                        available: bytes.len() - offset,
                    },
                ));
            }
        };
        let mut d = Decoder::new(bytes, order, Layer::LegacyTotem);
        let message_type = d.u8("type")?.into();
        let encapsulated = d.u8("encapsulated")?;
        d.pad(2)?;
        Ok(Header {
            order,
            version,
            message_type,
            encapsulated,
            nodeid: d.u32("nodeid")?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, self.order);
        e.u8(self.message_type.into());
        e.u8(self.encapsulated);
        e.u16(ENDIAN_DETECTOR);
        e.u32(self.nodeid);
    }
}
