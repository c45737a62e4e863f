//! CFG exec messages (`exec/cfg.c`): all 8-aligned after the header.

use crate::codec::{ByteOrder, Encoder};
use crate::error::{Layer, Result};
use crate::exec::{body_decoder, ExecHeader};
use crate::macros::open_enum;

open_enum! {
    /// Exec functions of CFG (`enum cfg_message_req_types`).
    pub enum CfgFunction(u16) {
        /// `MESSAGE_REQ_EXEC_CFG_RINGREENABLE`.
        RingReenable = 0 => "RINGREENABLE",
        /// `MESSAGE_REQ_EXEC_CFG_KILLNODE`.
        KillNode = 1 => "KILLNODE",
        /// `MESSAGE_REQ_EXEC_CFG_SHUTDOWN`.
        Shutdown = 2 => "SHUTDOWN",
        /// `MESSAGE_REQ_EXEC_CFG_RELOAD_CONFIG`.
        ReloadConfig = 3 => "RELOAD_CONFIG",
        /// `MESSAGE_REQ_EXEC_CFG_CRYPTO_RECONFIG`.
        CryptoReconfig = 4 => "CRYPTO_RECONFIG",
    }
}

/// Every CFG exec message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgMessage<'a> {
    /// `req_exec_cfg_ringreenable`: header + `mar_message_source_t` (32 bytes).
    RingReenable {
        /// Header.
        header: ExecHeader,
        /// Requesting node.
        source_nodeid: u32,
        /// Its connection pointer.
        source_conn: u64,
    },
    /// `req_exec_cfg_killnode`: nodeid @16, `mar_name_t` reason @24 (288 bytes).
    KillNode {
        /// Header.
        header: ExecHeader,
        /// Node to kill.
        nodeid: u32,
        /// Reason text.
        reason: &'a [u8],
    },
    /// `req_exec_cfg_shutdown`: header only.
    Shutdown {
        /// Header.
        header: ExecHeader,
    },
    /// `req_exec_cfg_reload_config`: header + source (32 bytes).
    ReloadConfig {
        /// Header.
        header: ExecHeader,
        /// Requesting node.
        source_nodeid: u32,
        /// Its connection pointer.
        source_conn: u64,
    },
    /// `req_exec_cfg_crypto_reconfig`: phase @16 (24 bytes).
    CryptoReconfig {
        /// Header.
        header: ExecHeader,
        /// Reconfiguration phase.
        phase: u32,
    },
}

impl<'a> CfgMessage<'a> {
    pub(crate) fn parse_body(
        header: ExecHeader,
        bytes: &'a [u8],
        order: ByteOrder,
    ) -> Result<Option<CfgMessage<'a>>> {
        let mut d = body_decoder(bytes, order, Layer::Cfg)?;
        let message = match CfgFunction::from(header.function()) {
            f @ (CfgFunction::RingReenable | CfgFunction::ReloadConfig) => {
                let source_nodeid = d.u32("source.nodeid")?;
                d.pad(4)?;
                let source_conn = d.u64("source.conn")?;
                if f == CfgFunction::RingReenable {
                    CfgMessage::RingReenable {
                        header,
                        source_nodeid,
                        source_conn,
                    }
                } else {
                    CfgMessage::ReloadConfig {
                        header,
                        source_nodeid,
                        source_conn,
                    }
                }
            }
            CfgFunction::KillNode => {
                let nodeid = d.u32("nodeid")?;
                d.pad(4)?;
                let len_offset = d.offset();
                let len = d.u16("reason.length")?;
                d.pad(6)?;
                let value = d.bytes("reason.value", 256)?;
                let reason = value.get(..usize::from(len)).ok_or_else(|| {
                    d.error_at(
                        len_offset,
                        crate::error::ErrorKind::CountTooLarge {
                            field: "reason.length",
                            count: len.into(),
                            max: 256,
                        },
                    )
                })?;
                CfgMessage::KillNode {
                    header,
                    nodeid,
                    reason,
                }
            }
            CfgFunction::Shutdown => CfgMessage::Shutdown { header },
            CfgFunction::CryptoReconfig => {
                let phase = d.u32("phase")?;
                d.pad(4)?;
                CfgMessage::CryptoReconfig { header, phase }
            }
            CfgFunction::Unknown(_) => return Ok(None),
        };
        Ok(Some(message))
    }

    /// The header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            CfgMessage::RingReenable { header, .. }
            | CfgMessage::KillNode { header, .. }
            | CfgMessage::Shutdown { header }
            | CfgMessage::ReloadConfig { header, .. }
            | CfgMessage::CryptoReconfig { header, .. } => header,
        }
    }

    /// corosync's function name.
    pub fn function_name(&self) -> &'static str {
        CfgFunction::from(self.header().function())
            .known_name()
            .unwrap_or("UNKNOWN")
    }

    /// Appends the message, padding zeroed.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header().emit(out, order);
        let mut e = Encoder::new(out, order);
        match self {
            CfgMessage::RingReenable {
                source_nodeid,
                source_conn,
                ..
            }
            | CfgMessage::ReloadConfig {
                source_nodeid,
                source_conn,
                ..
            } => {
                e.u32(*source_nodeid);
                e.zeros(4);
                e.u64(*source_conn);
            }
            CfgMessage::KillNode { nodeid, reason, .. } => {
                e.u32(*nodeid);
                e.zeros(4);
                let len = reason.len().min(256);
                e.u16(len as u16);
                e.zeros(6);
                e.bytes(&reason[..len]);
                e.zeros(256 - len);
            }
            CfgMessage::Shutdown { .. } => {}
            CfgMessage::CryptoReconfig { phase, .. } => {
                e.u32(*phase);
                e.zeros(4);
            }
        }
    }
}
