use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{Error, ErrorKind, Layer, Result};
use crate::macros::open_enum;

/// `TOTEM_MH_MAGIC` (`include/corosync/totem/totem.h`), in the sender's byte order.
pub const MAGIC: u16 = 0xC070;
/// `TOTEM_MH_VERSION`: corosync 3.x drops every other version.
pub const VERSION: u8 = 3;
/// Size of `struct totem_message_header`.
pub const HEADER_LEN: usize = 13;

open_enum! {
    /// `enum message_type` of totemsrp.c.
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
    }
}

/// `struct totem_message_header` (13 bytes, packed, sender's byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Byte order learnt from the magic.
    pub order: ByteOrder,
    /// Protocol version, 3 for corosync 3.x.
    pub version: u8,
    /// Message type.
    pub message_type: MessageType,
    /// MCAST: 2 = not encapsulated, 1 = encapsulated (recovery re-send); 0 elsewhere.
    pub encapsulated: u8,
    /// Sender nodeid; 0 in a leave JOIN (`LEAVE_DUMMY_NODEID`).
    pub nodeid: u32,
    /// knet: the unicast destination or 0. udpu leaves it uninitialised: never rely on it.
    pub target_nodeid: u32,
}

pub(crate) fn detect_order(bytes: &[u8]) -> Option<ByteOrder> {
    match bytes {
        [0x70, 0xC0, ..] => Some(ByteOrder::Little),
        [0xC0, 0x70, ..] => Some(ByteOrder::Big),
        _ => None,
    }
}

impl Header {
    /// A version-3 header in little-endian order.
    pub fn new(message_type: MessageType, nodeid: u32) -> Header {
        Header {
            order: ByteOrder::Little,
            version: VERSION,
            message_type,
            encapsulated: 0,
            nodeid,
            target_nodeid: 0,
        }
    }

    /// Parses the header; the byte order comes from the magic and the version must be 3
    /// (`check_message_header_validity`).
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        let order = match (detect_order(bytes), bytes) {
            (Some(order), _) => order,
            (None, [first, second, ..]) => {
                let magic = u16::from_be_bytes([*first, *second]);
                return Err(Error::new(
                    Layer::Totem,
                    0,
                    ErrorKind::BadMagic(magic.into()),
                ));
            }
            (None, _) => {
                return Err(Error::new(
                    Layer::Totem,
                    0,
                    ErrorKind::Truncated {
                        field: "magic",
                        needed: 2,
                        available: bytes.len(),
                    },
                ))
            }
        };
        let mut d = Decoder::new(bytes, order, Layer::Totem);
        d.pad(2)?;
        let version = d.u8("version")?;
        if version != VERSION {
            return Err(d.error_at(2, ErrorKind::UnsupportedVersion(version.into())));
        }
        Ok(Header {
            order,
            version,
            message_type: d.u8("type")?.into(),
            encapsulated: d.u8("encapsulated")?,
            nodeid: d.u32("nodeid")?,
            target_nodeid: d.u32("target_nodeid")?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, self.order);
        e.u16(MAGIC);
        e.u8(self.version);
        e.u8(self.message_type.into());
        e.u8(self.encapsulated);
        e.u32(self.nodeid);
        e.u32(self.target_nodeid);
    }
}
