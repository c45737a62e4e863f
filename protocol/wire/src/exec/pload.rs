//! PLOAD exec messages (`exec/pload.c`): a load generator's start and filler messages.

use crate::codec::{ByteOrder, Encoder};
use crate::error::{Layer, Result};
use crate::exec::{body_decoder, ExecHeader};

/// Every PLOAD exec message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PloadMessage<'a> {
    /// `req_exec_pload_start` (24 bytes): how many messages of which size follow.
    Start {
        /// Header.
        header: ExecHeader,
        /// Messages to send.
        msg_count: u32,
        /// Size of each.
        msg_size: u32,
    },
    /// `req_exec_pload_mcast`: a header and filler up to `header.size`.
    Mcast {
        /// Header.
        header: ExecHeader,
        /// The filler.
        filler: &'a [u8],
    },
}

impl<'a> PloadMessage<'a> {
    pub(crate) fn parse_body(
        header: ExecHeader,
        bytes: &'a [u8],
        order: ByteOrder,
    ) -> Result<Option<PloadMessage<'a>>> {
        let mut d = body_decoder(bytes, order, Layer::Pload)?;
        Ok(match header.function() {
            0 => Some(PloadMessage::Start {
                header,
                msg_count: d.u32("msg_count")?,
                msg_size: d.u32("msg_size")?,
            }),
            1 => Some(PloadMessage::Mcast {
                header,
                filler: d.take_rest(),
            }),
            _ => None,
        })
    }

    /// The header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            PloadMessage::Start { header, .. } | PloadMessage::Mcast { header, .. } => header,
        }
    }

    /// corosync's function name.
    pub fn function_name(&self) -> &'static str {
        match self {
            PloadMessage::Start { .. } => "START",
            PloadMessage::Mcast { .. } => "MCAST",
        }
    }

    /// Appends the message.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header().emit(out, order);
        let mut e = Encoder::new(out, order);
        match self {
            PloadMessage::Start {
                msg_count,
                msg_size,
                ..
            } => {
                e.u32(*msg_count);
                e.u32(*msg_size);
            }
            PloadMessage::Mcast { filler, .. } => e.bytes(filler),
        }
    }
}
