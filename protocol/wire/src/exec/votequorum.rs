//! VOTEQUORUM exec messages (`exec/votequorum.c`, spec §4.4). These structs are packed
//! after the 8-aligned header.

use core::fmt;

use crate::codec::{ByteOrder, Encoder};
use crate::error::{Layer, Result};
use crate::exec::{body_decoder, ExecHeader};
use crate::macros::open_enum;

/// Size of NODEINFO and RECONFIGURE.
pub const NODEINFO_LEN: usize = 32;
/// Bytes of a qdevice name field.
pub const QDEVICE_NAME_LEN: usize = 255;

open_enum! {
    /// Exec functions of votequorum.
    pub enum VotequorumFunction(u16) {
        /// `MESSAGE_REQ_EXEC_VOTEQUORUM_NODEINFO`.
        NodeInfo = 0 => "NODEINFO",
        /// `MESSAGE_REQ_EXEC_VOTEQUORUM_RECONFIGURE`.
        Reconfigure = 1 => "RECONFIGURE",
        /// `MESSAGE_REQ_EXEC_VOTEQUORUM_QDEVICE_REG`.
        QdeviceReg = 2 => "QDEVICE_REG",
        /// `MESSAGE_REQ_EXEC_VOTEQUORUM_QDEVICE_RECONFIGURE`.
        QdeviceReconfigure = 3 => "QDEVICE_RECONFIGURE",
    }
}

open_enum! {
    /// What a RECONFIGURE changes: `VOTEQUORUM_RECONFIG_PARAM_*` (`exec/votequorum.c`, read
    /// by `message_handler_req_exec_votequorum_reconfigure`, which ignores other values).
    pub enum ReconfigureParam(u8) {
        /// `VOTEQUORUM_RECONFIG_PARAM_EXPECTED_VOTES`: every node's expected votes.
        ExpectedVotes = 1 => "EXPECTED_VOTES",
        /// `VOTEQUORUM_RECONFIG_PARAM_NODE_VOTES`: the votes of `nodeid`.
        NodeVotes = 2 => "NODE_VOTES",
        /// `VOTEQUORUM_RECONFIG_PARAM_CANCEL_WFA`: wait_for_all ends.
        CancelWfa = 3 => "CANCEL_WFA",
    }
}

/// NODEINFO flags (`NODE_FLAGS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NodeInfoFlags(pub u32);

impl NodeInfoFlags {
    const NAMES: [(u32, &'static str); 8] = [
        (1, "QUORATE"),
        (2, "LEAVING"),
        (4, "WFASTATUS"),
        (8, "FIRST"),
        (16, "QDEVICE_REGISTERED"),
        (32, "QDEVICE_ALIVE"),
        (64, "QDEVICE_CAST_VOTE"),
        (128, "QDEVICE_MASTER_WINS"),
    ];
}

impl fmt::Display for NodeInfoFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut rest = self.0;
        for (bit, name) in Self::NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit;
            }
        }
        if rest != 0 || first {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

/// Every votequorum exec message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VotequorumMessage {
    /// `req_exec_quorum_nodeinfo`.
    NodeInfo {
        /// Header.
        header: ExecHeader,
        /// The node described; 0 is the qdevice pseudo-node.
        nodeid: u32,
        /// Its votes.
        votes: u32,
        /// Its expected votes.
        expected_votes: u32,
        /// Its flags.
        flags: NodeInfoFlags,
    },
    /// `req_exec_quorum_reconfigure`.
    Reconfigure {
        /// Header.
        header: ExecHeader,
        /// Target node.
        nodeid: u32,
        /// New value.
        value: u32,
        /// What `value` is.
        param: ReconfigureParam,
    },
    /// `req_exec_quorum_qdevice_reg`.
    QdeviceReg {
        /// Header.
        header: ExecHeader,
        /// 0 unregister, 1 register.
        operation: u32,
        /// Device name (255 bytes, NUL padded).
        name: Box<[u8; QDEVICE_NAME_LEN]>,
    },
    /// `req_exec_quorum_qdevice_reconfigure`.
    QdeviceReconfigure {
        /// Header.
        header: ExecHeader,
        /// Old name.
        oldname: Box<[u8; QDEVICE_NAME_LEN]>,
        /// New name.
        newname: Box<[u8; QDEVICE_NAME_LEN]>,
    },
}

impl VotequorumMessage {
    pub(crate) fn parse_body(
        header: ExecHeader,
        bytes: &[u8],
        order: ByteOrder,
    ) -> Result<Option<VotequorumMessage>> {
        let mut d = body_decoder(bytes, order, Layer::Votequorum)?;
        let message = match VotequorumFunction::from(header.function()) {
            VotequorumFunction::NodeInfo => VotequorumMessage::NodeInfo {
                header,
                nodeid: d.u32("nodeid")?,
                votes: d.u32("votes")?,
                expected_votes: d.u32("expected_votes")?,
                flags: NodeInfoFlags(d.u32("flags")?),
            },
            VotequorumFunction::Reconfigure => {
                let m = VotequorumMessage::Reconfigure {
                    header,
                    nodeid: d.u32("nodeid")?,
                    value: d.u32("value")?,
                    param: d.u8("param")?.into(),
                };
                d.pad(3)?;
                m
            }
            VotequorumFunction::QdeviceReg => {
                let operation = d.u32("operation")?;
                let name = Box::new(d.array::<QDEVICE_NAME_LEN>("qdevice_name")?);
                d.pad(5)?;
                VotequorumMessage::QdeviceReg {
                    header,
                    operation,
                    name,
                }
            }
            VotequorumFunction::QdeviceReconfigure => {
                let oldname = Box::new(d.array::<QDEVICE_NAME_LEN>("oldname")?);
                let newname = Box::new(d.array::<QDEVICE_NAME_LEN>("newname")?);
                d.pad(2)?;
                VotequorumMessage::QdeviceReconfigure {
                    header,
                    oldname,
                    newname,
                }
            }
            VotequorumFunction::Unknown(_) => return Ok(None),
        };
        Ok(Some(message))
    }

    /// The header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            VotequorumMessage::NodeInfo { header, .. }
            | VotequorumMessage::Reconfigure { header, .. }
            | VotequorumMessage::QdeviceReg { header, .. }
            | VotequorumMessage::QdeviceReconfigure { header, .. } => header,
        }
    }

    /// corosync's function name.
    pub fn function_name(&self) -> &'static str {
        VotequorumFunction::from(self.header().function())
            .known_name()
            .unwrap_or("UNKNOWN")
    }

    /// Appends the message, padding zeroed.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header().emit(out, order);
        let mut e = Encoder::new(out, order);
        match self {
            VotequorumMessage::NodeInfo {
                nodeid,
                votes,
                expected_votes,
                flags,
                ..
            } => {
                e.u32(*nodeid);
                e.u32(*votes);
                e.u32(*expected_votes);
                e.u32(flags.0);
            }
            VotequorumMessage::Reconfigure {
                nodeid,
                value,
                param,
                ..
            } => {
                e.u32(*nodeid);
                e.u32(*value);
                e.u8((*param).into());
                e.zeros(3);
            }
            VotequorumMessage::QdeviceReg {
                operation, name, ..
            } => {
                e.u32(*operation);
                e.bytes(&name[..]);
                e.zeros(5);
            }
            VotequorumMessage::QdeviceReconfigure {
                oldname, newname, ..
            } => {
                e.bytes(&oldname[..]);
                e.bytes(&newname[..]);
                e.zeros(2);
            }
        }
    }
}

/// A NUL-padded fixed-size name as text.
pub fn fixed_name_text(name: &[u8]) -> String {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}
