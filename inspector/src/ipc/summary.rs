//! The facts of an IPC record that stats and filters read, typed: set by the decoder from
//! the wire message, beside the generic field tree the views print, so that renaming an
//! output field cannot change a statistic or what a filter keeps.

use totem_wire::ipc::cpg::{CpgAddress, CpgRequestId, CpgResponseId};
use totem_wire::ipc::IpcType;

/// What stats and filters need of one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpcSummary {
    /// The CPG message, by the id in its header (also when its body did not decode).
    pub message: Option<CpgId>,
    /// The process a JOIN or LEAVE request, an ITERATIONNEXT answer or a delivery names.
    pub pid: Option<u32>,
    /// The digest of the user payload of a MCAST or PARTIAL_MCAST request, or of a DELIVER
    /// or PARTIAL_DELIVER event.
    pub digest: Option<u64>,
    /// A CONFCHG's joined list.
    pub joined: Vec<CpgAddress>,
    /// A CONFCHG's left list.
    pub left: Vec<CpgAddress>,
    /// Every nodeid the message names (members, the sender of a delivery, the local node).
    pub nodes: Vec<u32>,
    /// What a connection response said.
    pub connection: Option<Connection>,
    /// The EVS group keys an evs JOIN, LEAVE or MCAST_GROUPS request names.
    pub evs_groups: Vec<totem_wire::exec::evs::EvsGroup>,
}

/// A CPG message id: requests and events share the numbers (ipc.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpgId {
    /// A request (client → server).
    Request(CpgRequestId),
    /// An event (server → client callback).
    Event(CpgResponseId),
}

/// The outcome of `qb_ipcc_connect`, from the server's connection response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Set up, over this IPC type.
    Accepted(IpcType),
    /// Refused with this errno.
    Refused(i32),
}
