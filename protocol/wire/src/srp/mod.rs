//! totemsrp v3: the common header and the six messages of corosync 3.x
//! (`exec/totemsrp.c`, spec §2).
//!
//! All totemsrp structs are packed: there is no padding anywhere, so every message
//! round-trips byte for byte, garbage `target_nodeid` values on udpu included.

mod commit_token;
mod header;
mod join;
mod mcast;
mod merge_detect;
mod orf_token;
mod ring_id;
mod token_hold_cancel;

pub use commit_token::{CommitMemberEntry, MembCommitToken};
pub use header::{Header, MessageType, HEADER_LEN, MAGIC, VERSION};
pub use join::MembJoin;
pub use mcast::{assign_sequence, Encapsulation, Mcast, MCAST_HEADER_LEN};
pub use merge_detect::MembMergeDetect;
pub use orf_token::{OrfToken, RtrItem, ORF_TOKEN_FIXED_LEN};
pub use ring_id::RingId;
pub use token_hold_cancel::TokenHoldCancel;

use crate::codec::{ByteOrder, Decoder};
use crate::error::{Layer, Result};

/// `PROCESSOR_COUNT_MAX`: no membership list can be longer (`include/corosync/totem/totem.h`).
pub const PROCESSOR_COUNT_MAX: u64 = 384;
/// `RETRANSMIT_ENTRIES_MAX`: the ORF token's retransmit list holds at most 30 entries; Debian's
/// 3.1.7-1+deb12u1 security fix drops tokens with more.
pub const RETRANSMIT_ENTRIES_MAX: u64 = 30;

/// Any totemsrp message.
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
    /// A message type this codec does not know; dropped by corosync (`main_deliver_fn`).
    Unknown {
        /// The common header.
        header: Header,
        /// Everything after the header.
        body: &'a [u8],
    },
}

impl<'a> Message<'a> {
    /// Parses one totemsrp message. Returns the message and the bytes after it (a message
    /// longer than its fields is accepted by corosync; the rest is returned, not lost).
    pub fn parse(bytes: &'a [u8]) -> Result<(Message<'a>, &'a [u8])> {
        let header = Header::parse(bytes)?;
        let mut d = Decoder::new(bytes, header.order, Layer::Totem);
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
            MessageType::Unknown(_) => Message::Unknown {
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

    /// Appends the message in its header's byte order.
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

/// Does this datagram start like a corosync 3.x totemsrp message (magic in either order)?
pub fn looks_like_totem(bytes: &[u8]) -> Option<ByteOrder> {
    header::detect_order(bytes)
}

#[cfg(test)]
mod tests;
