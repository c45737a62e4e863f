use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::srp::{Header, RingId};

/// `struct token_hold_cancel` (25 bytes): a member with something to send asks the
/// representative to stop holding the token (`token_hold_cancel_send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHoldCancel {
    /// Common header (type 5).
    pub header: Header,
    /// The sender's ring.
    pub ring_id: RingId,
}

impl TokenHoldCancel {
    /// Bytes on the wire.
    pub const LEN: usize = 25;

    pub(crate) fn parse_body(header: Header, d: &mut Decoder<'_>) -> Result<TokenHoldCancel> {
        Ok(TokenHoldCancel {
            header,
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
        self.ring_id.emit(&mut e);
    }
}
