//! The corosync exec layer: the 16-byte request header at the head of every service message
//! carried on group "a", and the messages of every service corosync 3.1.7 loads
//! (spec §4, §5), and our EVS extension (`evs`, docs/evs.md §4).

pub mod cfg;
pub mod cmap;
pub mod cpg;
pub mod evs;
mod header;
pub mod pload;
pub mod sync;
pub mod votequorum;

pub use cfg::CfgMessage;
pub use cmap::{CmapItem, CmapMcast, CmapMcastReason, CmapValueType};
pub use cpg::CpgMessage;
pub use evs::{EvsGroup, EvsMcast, EvsMessage};
pub use header::{ExecHeader, ServiceId, EXEC_HEADER_LEN};
pub use pload::PloadMessage;
pub use sync::SyncMessage;
pub use votequorum::{NodeInfoFlags, VotequorumMessage};

use crate::codec::ByteOrder;
use crate::error::Result;

/// A message of group "a", decoded as far as its service is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecMessage<'a> {
    /// CMAP (service 0).
    Cmap(CmapMcast<'a>),
    /// CFG (service 1).
    Cfg(CfgMessage<'a>),
    /// CPG (service 2).
    Cpg(CpgMessage<'a>),
    /// PLOAD (service 4).
    Pload(PloadMessage<'a>),
    /// VOTEQUORUM (service 5).
    Votequorum(VotequorumMessage),
    /// EVS (service 48: ours, not corosync's).
    Evs(EvsMessage<'a>),
    /// A service or function this codec does not know: shown raw, never fatal.
    Unknown {
        /// The exec header.
        header: ExecHeader,
        /// Bytes after the header.
        body: &'a [u8],
    },
}

impl<'a> ExecMessage<'a> {
    /// Parses an exec message in `order` (the sender's, from the totemsrp magic). Errors carry
    /// offsets from the start of `bytes`.
    pub fn parse(bytes: &'a [u8], order: ByteOrder) -> Result<ExecMessage<'a>> {
        let header = ExecHeader::parse(bytes, order)?;
        let body = bytes.get(EXEC_HEADER_LEN..).unwrap_or_default();
        let message = match header.service() {
            ServiceId::Cmap if header.function() == 0 => {
                ExecMessage::Cmap(CmapMcast::parse_body(header, bytes, order)?)
            }
            ServiceId::Cfg => match CfgMessage::parse_body(header, bytes, order)? {
                Some(m) => ExecMessage::Cfg(m),
                None => ExecMessage::Unknown { header, body },
            },
            ServiceId::Cpg => match CpgMessage::parse_body(header, bytes, order)? {
                Some(m) => ExecMessage::Cpg(m),
                None => ExecMessage::Unknown { header, body },
            },
            ServiceId::Pload => match PloadMessage::parse_body(header, bytes, order)? {
                Some(m) => ExecMessage::Pload(m),
                None => ExecMessage::Unknown { header, body },
            },
            ServiceId::Votequorum => match VotequorumMessage::parse_body(header, bytes, order)? {
                Some(m) => ExecMessage::Votequorum(m),
                None => ExecMessage::Unknown { header, body },
            },
            ServiceId::Evs => match EvsMessage::parse_body(header, bytes, order)? {
                Some(m) => ExecMessage::Evs(m),
                None => ExecMessage::Unknown { header, body },
            },
            _ => ExecMessage::Unknown { header, body },
        };
        Ok(message)
    }

    /// The exec header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            ExecMessage::Cmap(m) => &m.header,
            ExecMessage::Cfg(m) => m.header(),
            ExecMessage::Cpg(m) => m.header(),
            ExecMessage::Pload(m) => m.header(),
            ExecMessage::Votequorum(m) => m.header(),
            ExecMessage::Evs(m) => m.header(),
            ExecMessage::Unknown { header, .. } => header,
        }
    }

    /// `SERVICE/FUNCTION` as corosync names them, e.g. `CPG/PROCJOIN`.
    pub fn name(&self) -> String {
        let h = self.header();
        let function = match self {
            ExecMessage::Cmap(_) => "MCAST".to_string(),
            ExecMessage::Cfg(m) => m.function_name().to_string(),
            ExecMessage::Cpg(m) => m.function_name().to_string(),
            ExecMessage::Pload(m) => m.function_name().to_string(),
            ExecMessage::Votequorum(m) => m.function_name().to_string(),
            ExecMessage::Evs(m) => m.function_name().to_string(),
            ExecMessage::Unknown { .. } => format!("fn{}", h.function()),
        };
        format!("{}/{}", h.service(), function)
    }

    /// Appends the message in `order`. Padding is written as zeros (spec §6): a message
    /// that carried garbage in its padding re-parses equal but is not byte-identical.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        match self {
            ExecMessage::Cmap(m) => m.emit(out, order),
            ExecMessage::Cfg(m) => m.emit(out, order),
            ExecMessage::Cpg(m) => m.emit(out, order),
            ExecMessage::Pload(m) => m.emit(out, order),
            ExecMessage::Votequorum(m) => m.emit(out, order),
            ExecMessage::Evs(m) => m.emit(out, order),
            ExecMessage::Unknown { header, body } => {
                header.emit(out, order);
                out.extend_from_slice(body);
            }
        }
    }
}

/// A decoder over a whole exec message, positioned after its header, so that service
/// errors carry offsets from the start of the message.
pub(crate) fn body_decoder(
    bytes: &[u8],
    order: ByteOrder,
    layer: crate::error::Layer,
) -> Result<crate::codec::Decoder<'_>> {
    let mut d = crate::codec::Decoder::new(bytes, order, layer);
    d.pad(EXEC_HEADER_LEN)?;
    Ok(d)
}

#[cfg(test)]
mod tests;
