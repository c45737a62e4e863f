use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::legacy::{Header, RingId, HEADER_LEN};

/// `struct token_hold_cancel` (`exec/totemsrp.c`, v1.4.10/v2.4.6): 38 bytes in both versions
/// (`token_hold_cancel_send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHoldCancel {
    /// Common header (type 5).
    pub header: Header,
    /// `ring_id`: the sender's ring.
    pub ring_id: RingId,
}

impl TokenHoldCancel {
    /// Bytes on the wire.
    pub const LEN: usize = HEADER_LEN + RingId::LEN;

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
