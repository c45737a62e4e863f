//! totemsrp of corosync 1.x and 2.x (`exec/totemsrp.c` at v1.4.10 and v2.4.6), so that
//! captures of older clusters can be read.
//!
//! The grammar differs from 3.x ([`crate::srp`]) everywhere: an 8-byte header whose byte order
//! comes from the endian detector `0xff22` instead of the `0xC070` magic, and addresses
//! instead of nodeids (`struct totem_ip_address`, 22 bytes; `struct memb_ring_id`, an
//! address and a u64, 30 bytes). 1.x and 2.x differ only in `struct srp_addr` (44 vs 45, see
//! [`SrpAddr`]) and in what the transport puts before the message ([`LegacyFraming`]).
//! Which of the two a message follows cannot be read from the message itself, so
//! [`Message::parse`] takes a [`LegacyVersion`]; [`LegacyFraming::parse`] learns it from the
//! datagram.
//!
//! All structs are packed (`srp_addr` is not declared packed but has no padding), so every
//! message round-trips byte for byte: `emit(parse(b)) == b`.
//!
//! | message (type)          | 1.x bytes          | 2.x bytes          |
//! |-------------------------|--------------------|--------------------|
//! | header                  | 8                  | 8                  |
//! | ORF_TOKEN (0)           | 70 + 34·rtr        | 70 + 34·rtr        |
//! | MCAST (1)               | 98 + payload       | 99 + payload       |
//! | MEMB_MERGE_DETECT (2)   | 82                 | 83                 |
//! | MEMB_JOIN (3)           | 68 + 44·(p+f)      | 69 + 45·(p+f)      |
//! | MEMB_COMMIT_TOKEN (4)   | 54 + (44+42)·n     | 54 + (45+42)·n     |
//! | TOKEN_HOLD_CANCEL (5)   | 38                 | 38                 |

mod addr;
mod commit_token;
pub mod evs;
mod framing;
mod header;
mod join;
mod mcast;
mod merge_detect;
mod orf_token;
mod to_srp;
mod token_hold_cancel;

pub use addr::{RingId, SrpAddr, TotemIpAddress, AF_INET, AF_INET6_LINUX};
pub use commit_token::{CommitMemberEntry, MembCommitToken};
pub use evs::EvsMcast1x;
pub use framing::{detect, CryptoCompat, CryptoConfigHeader, LegacyFraming, TransportHeader};
pub use header::{Header, MessageType, ENDIAN_DETECTOR, HEADER_LEN};
pub use join::MembJoin;
pub use mcast::Mcast;
pub use merge_detect::MembMergeDetect;
pub use orf_token::{OrfToken, RtrItem, ORF_TOKEN_FIXED_LEN};
pub use token_hold_cancel::TokenHoldCancel;

use crate::codec::{ByteOrder, Decoder};
use crate::error::{Layer, Result};

/// `coroipc_request_header_t` of corosync 1.x: `size` at 0 and `id` at 8, each 8-aligned
/// (16 bytes), the reverse of 2.x/3.x's libqb header (spec §4.1). Service ids follow 1.4's
/// table (`EVS_SERVICE` 0 ... `CPG_SERVICE` 8), see [`service_name_1x`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoroipcHeader {
    /// Total length including the header.
    pub size: u32,
    /// `service << 16 | function`.
    pub id: u32,
}

impl CoroipcHeader {
    /// Parses the 16-byte header in `order`.
    pub fn parse(bytes: &[u8], order: ByteOrder) -> Result<CoroipcHeader> {
        let mut d = Decoder::new(bytes, order, Layer::Exec);
        let size = d.u32("size")?;
        d.pad(4)?;
        let id = d.u32("id")?;
        d.pad(4)?;
        Ok(CoroipcHeader { size, id })
    }

    /// The service (high 16 bits of `id`).
    pub fn service(&self) -> u16 {
        (self.id >> 16) as u16
    }

    /// The function (low 16 bits of `id`).
    pub fn function(&self) -> u16 {
        (self.id & 0xFFFF) as u16
    }
}

/// corosync 1.4's name of a service id (`enum corosync_service_types`,
/// `include/corosync/corodefs.h` at v1.4.10; docs/evs.md §4 has the same table).
pub fn service_name_1x(service: u16) -> Option<&'static str> {
    const NAMES: [&str; 20] = [
        "EVS",
        "CLM",
        "AMF",
        "CKPT",
        "EVT",
        "LCK",
        "MSG",
        "CFG",
        "CPG",
        "CMAN",
        "PCMK",
        "CONFDB",
        "QUORUM",
        "PLOAD",
        "TMR",
        "VOTEQUORUM",
        "NTF",
        "AMF_V2",
        "TST_SV1",
        "TST_SV2",
    ];
    NAMES.get(usize::from(service)).copied()
}

/// `PROCESSOR_COUNT_MAX` of 1.x/2.x (`include/corosync/totem/totem.h`, v1.4.10 and v2.4.6;
/// 16 with `HAVE_SMALL_MEMORY_FOOTPRINT`): no membership list can be longer.
pub const PROCESSOR_COUNT_MAX: u64 = 384;
/// `RETRANSMIT_ENTRIES_MAX` (`exec/totemsrp.c`, v1.4.10 and v2.4.6): `orf_token_rtr` never
/// puts more entries in a token.
pub const RETRANSMIT_ENTRIES_MAX: u64 = 30;
/// `INTERFACE_MAX` (`include/corosync/totem/totem.h`): address slots in every `srp_addr`.
pub const INTERFACE_MAX: usize = 2;

/// Which totemsrp grammar a message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegacyVersion {
    /// corosync 1.0.0 to 1.4.10 (and OpenAIS): `srp_addr` without `no_addrs`.
    Corosync1,
    /// corosync 2.0.0 to 2.4.x: `srp_addr` with a leading `no_addrs` byte.
    Corosync2,
}

impl LegacyVersion {
    /// `"1.x"` or `"2.x"`.
    pub fn short_name(self) -> &'static str {
        match self {
            LegacyVersion::Corosync1 => "1.x",
            LegacyVersion::Corosync2 => "2.x",
        }
    }
}

/// Any 1.x/2.x totemsrp message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// The ordering token (type 0).
    OrfToken(OrfToken),
    /// An application multicast (type 1).
    Mcast(Mcast<'a>),
    /// Merge detection by a ring representative (type 2).
    MembMergeDetect(MembMergeDetect),
    /// A membership join, or a leave when the header nodeid is 0 (type 3).
    MembJoin(MembJoin),
    /// The commit token of a membership change (type 4).
    MembCommitToken(MembCommitToken),
    /// Asks the representative to release a held token (type 5).
    TokenHoldCancel(TokenHoldCancel),
    /// Any other type, kept raw: totemrrp's ring-test messages (6, 7) and unknown values
    /// (which `main_deliver_fn` drops).
    Unknown {
        /// The common header.
        header: Header,
        /// Everything after the header.
        body: &'a [u8],
    },
}

impl<'a> Message<'a> {
    /// Parses one message in the `version` grammar. Returns the message and the bytes after
    /// it (e.g. a 2.2+ trailing HMAC, or anything a longer datagram carries).
    pub fn parse(bytes: &'a [u8], version: LegacyVersion) -> Result<(Message<'a>, &'a [u8])> {
        let header = Header::parse(bytes, version)?;
        let mut d = Decoder::new(bytes, header.order, Layer::LegacyTotem);
        d.pad(HEADER_LEN)?;
        let message = match header.message_type {
            MessageType::OrfToken => Message::OrfToken(OrfToken::parse_body(header, &mut d)?),
            MessageType::Mcast => Message::Mcast(Mcast::parse_body(header, &mut d)?),
            MessageType::MembMergeDetect => {
                Message::MembMergeDetect(MembMergeDetect::parse_body(header, &mut d)?)
            }
            MessageType::MembJoin => Message::MembJoin(MembJoin::parse_body(header, &mut d)?),
            MessageType::MembCommitToken => {
                Message::MembCommitToken(MembCommitToken::parse_body(header, &mut d)?)
            }
            MessageType::TokenHoldCancel => {
                Message::TokenHoldCancel(TokenHoldCancel::parse_body(header, &mut d)?)
            }
            MessageType::RrpRingTestActive
            | MessageType::RrpRingTestActivate
            | MessageType::Unknown(_) => Message::Unknown {
                header,
                body: d.take_rest(),
            },
        };
        Ok((message, d.rest()))
    }

    /// The common header.
    pub fn header(&self) -> &Header {
        match self {
            Message::OrfToken(m) => &m.header,
            Message::Mcast(m) => &m.header,
            Message::MembMergeDetect(m) => &m.header,
            Message::MembJoin(m) => &m.header,
            Message::MembCommitToken(m) => &m.header,
            Message::TokenHoldCancel(m) => &m.header,
            Message::Unknown { header, .. } => header,
        }
    }

    /// Bytes [`Message::emit`] appends.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::OrfToken(m) => m.buffer_len(),
            Message::Mcast(m) => m.buffer_len(),
            Message::MembMergeDetect(m) => m.buffer_len(),
            Message::MembJoin(m) => m.buffer_len(),
            Message::MembCommitToken(m) => m.buffer_len(),
            Message::TokenHoldCancel(m) => m.buffer_len(),
            Message::Unknown { body, .. } => HEADER_LEN + body.len(),
        }
    }

    /// Appends the message in its header's byte order and version.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Message::OrfToken(m) => m.emit(out),
            Message::Mcast(m) => m.emit(out),
            Message::MembMergeDetect(m) => m.emit(out),
            Message::MembJoin(m) => m.emit(out),
            Message::MembCommitToken(m) => m.emit(out),
            Message::TokenHoldCancel(m) => m.emit(out),
            Message::Unknown { header, body } => {
                header.emit(out);
                out.extend_from_slice(body);
            }
        }
    }

    /// The message as a new byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests;
