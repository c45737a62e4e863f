//! The CPG library interface over libqb IPC, sans-IO: corosync's IPC glue
//! (`exec/ipc_glue.c` `cs_ipcs_msg_process`) and the library handlers of `exec/cpg.c`
//! (`message_handler_req_lib_cpg_*`). One request's bytes in, at most one response's bytes
//! out; events come out of [`crate::Node::poll_event`] and [`event_bytes`] encodes them.
//!
//! `totemd` puts this behind its libqb socket server; the simulator calls it directly. Both
//! therefore answer libcpg with the same code.

use totem_wire::exec::cpg::{ConfchgReason, CpgName};
use totem_wire::ipc::cpg::{
    zc_payload, CpgAddress as WireAddress, CpgRequestId, CpgResponseId, IterationType,
    MEMBERSHIP_ARRAY_LEN, ZC_PAYLOAD_OFFSET,
};
use totem_wire::ipc::{CpgEvent, CpgRequest, CpgResponse, CsError};

use crate::cpg::{ClientEvent, ConnId, CpgAddress, CpgError};
use crate::node::Node;

/// What the server does after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibReply {
    /// Send these bytes on the response channel.
    Response(Vec<u8>),
    /// Nothing to answer (MCAST, which libcpg never waits for).
    NoResponse,
    /// An MCAST the ring cannot take now (a sync runs, or totem's queue is full). corosync
    /// drops it with a WARNING (`cs_ipcs_msg_process`), and the client, which was told
    /// nothing, has lost a message. Instead the server keeps it and offers it again later,
    /// reading nothing else from that client meanwhile: back-pressure, not loss.
    Retry,
    /// The request is malformed: drop the client (corosync does not check lengths; a Rust
    /// server must, ipc.md §5.3).
    Disconnect(String),
}

/// The shared-memory side of zero-copy buffers (ipc.md §4.7): the daemon maps the client's
/// `/dev/shm` file, the simulator keeps buffers in memory.
pub trait ZeroCopyMemory {
    /// ZC_ALLOC: open, unlink and map the client's file of `map_size` bytes; returns the
    /// token written to `server_address` (offset 8 of the buffer).
    fn map(&mut self, conn: ConnId, path: &[u8], map_size: u64) -> Result<u64, String>;
    /// ZC_EXECUTE: a copy of the whole mapping behind `token` (header at 16, payload at
    /// 56), if the token is one of this connection's. A copy: the client may write the
    /// buffer again as soon as the call returns, and totem keeps the message until sent.
    fn contents(&self, conn: ConnId, token: u64) -> Option<Vec<u8>>;
    /// ZC_FREE: drops the mapping; false if the token is unknown.
    fn unmap(&mut self, conn: ConnId, token: u64) -> bool;
    /// The connection closed: drop all its mappings.
    fn release(&mut self, conn: ConnId);
}

/// A server that offers no zero-copy (every ZC request is refused with CS_ERR_LIBRARY).
#[derive(Debug, Default)]
pub struct NoZeroCopy;

impl ZeroCopyMemory for NoZeroCopy {
    fn map(&mut self, _: ConnId, _: &[u8], _: u64) -> Result<u64, String> {
        Err("zero-copy buffers are not offered here".into())
    }
    fn contents(&self, _: ConnId, _: u64) -> Option<Vec<u8>> {
        None
    }
    fn unmap(&mut self, _: ConnId, _: u64) -> bool {
        false
    }
    fn release(&mut self, _: ConnId) {}
}

/// `message_handler_req_lib_cpg_iteration_initialize`'s "grouped by name" copy: an entry
/// goes right after the first entry of its group, or at the front for a new group
/// (`qb_list_add` after the match, or after the list head).
fn grouped_snapshot(
    processes: impl Iterator<Item = (CpgName, u32, u32)>,
    kind: IterationType,
    only: &CpgName,
) -> Vec<(CpgName, u32, u32)> {
    let mut out: Vec<(CpgName, u32, u32)> = Vec::new();
    for (group, nodeid, pid) in processes {
        let first = out.iter().position(|(g, _, _)| *g == group);
        let item = match kind {
            IterationType::NameOnly => {
                if first.is_some() {
                    continue;
                }
                (group, 0, 0)
            }
            IterationType::OneGroup if group != *only => continue,
            _ => (group, nodeid, pid),
        };
        match first {
            Some(i) => out.insert(i + 1, item),
            None => out.insert(0, item),
        }
    }
    out
}

fn wire_address(a: &CpgAddress) -> WireAddress {
    WireAddress {
        nodeid: a.nodeid,
        pid: a.pid,
        reason: a.reason,
    }
}

fn cs_error(e: CpgError) -> CsError {
    match e {
        CpgError::Exist => CsError::Exist,
        CpgError::NotExist => CsError::NotExist,
        CpgError::Busy => CsError::Busy,
        CpgError::TryAgain => CsError::TryAgain,
        CpgError::NameTooLong => CsError::NameTooLong,
        CpgError::BadHandle => CsError::BadHandle,
        CpgError::Interrupt => CsError::Interrupt,
    }
}

fn result_code(r: Result<(), CpgError>) -> CsError {
    r.map_or_else(cs_error, |()| CsError::Ok)
}

fn status(id: CpgResponseId, error: CsError) -> LibReply {
    LibReply::Response(CpgResponse::status(id, error).to_bytes())
}

/// The handlers `cpg_lib_engine` marks `CS_LIB_FLOW_CONTROL_REQUIRED`.
fn flow_controlled(id: CpgRequestId) -> bool {
    !matches!(
        id,
        CpgRequestId::Membership
            | CpgRequestId::LocalGet
            | CpgRequestId::IterationInitialize
            | CpgRequestId::IterationNext
            | CpgRequestId::IterationFinalize
    )
}

/// Encodes a client event for the event channel: the connection it is for, and its bytes.
pub fn event_bytes(event: &ClientEvent) -> (ConnId, Vec<u8>) {
    match event {
        ClientEvent::Confchg {
            conn,
            group,
            members,
            left,
            joined,
        } => (
            *conn,
            CpgEvent::confchg(
                *group,
                members.iter().map(wire_address).collect(),
                left.iter().map(wire_address).collect(),
                joined.iter().map(wire_address).collect(),
            )
            .to_bytes(),
        ),
        ClientEvent::Deliver {
            conn,
            group,
            nodeid,
            pid,
            data,
        } => (
            *conn,
            CpgEvent::deliver(*group, *nodeid, *pid, data).to_bytes(),
        ),
        ClientEvent::PartialDeliver {
            conn,
            group,
            nodeid,
            pid,
            msglen,
            kind,
            data,
        } => (
            *conn,
            CpgEvent::partial_deliver(*group, *msglen, *nodeid, *pid, *kind, data).to_bytes(),
        ),
        ClientEvent::TotemConfchg {
            conn,
            ring_id,
            members,
        } => (
            *conn,
            CpgEvent::totem_confchg(ring_id.rep, ring_id.seq, members.clone()).to_bytes(),
        ),
    }
}

impl Node {
    /// A new IPC connection (`cpg_lib_init_fn`): UNJOINED until it joins.
    pub fn ipc_connect(&mut self) -> ConnId {
        self.cpg_connect(false)
    }

    /// The connection closed (`cpg_lib_exit_fn`): PROCDOWN for a joined process, then its
    /// zero-copy mappings and iterations are freed.
    pub fn ipc_disconnect(&mut self, conn: ConnId, zc: &mut dyn ZeroCopyMemory) {
        self.cpg_disconnect(conn);
        self.iterations.release(conn);
        zc.release(conn);
    }

    /// One request from a client, as `cs_ipcs_msg_process` and the CPG lib handlers treat
    /// it. `pid` is the client's pid from the connection's credentials.
    pub fn ipc_request(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        zc: &mut dyn ZeroCopyMemory,
    ) -> LibReply {
        let request = match CpgRequest::parse(bytes) {
            Ok(r) => r,
            Err(e) => return LibReply::Disconnect(format!("malformed CPG request: {e}")),
        };
        let id = request.id();
        if let CpgRequest::Unknown { .. } = request {
            // cs_ipcs_msg_process: an id past the engine's 13 handlers is -EINVAL.
            return status(CpgResponseId::Join, CsError::InvalidParam);
        }
        if !self.cpg_is_open(conn) && !matches!(request, CpgRequest::Finalize { .. }) {
            return LibReply::Disconnect("request after FINALIZE".into());
        }
        // corosync_sending_allowed: flow-controlled handlers are refused during a sync or
        // when totem has no room; an async MCAST is then dropped (with a WARNING log in
        // corosync), everything else gets {id 0, CS_ERR_TRY_AGAIN}.
        if flow_controlled(id) && self.sending_allowed(bytes.len()).is_err() {
            return match request {
                CpgRequest::Mcast { .. } => LibReply::Retry,
                _ => status(CpgResponseId::Join, CsError::TryAgain),
            };
        }
        match request {
            CpgRequest::Join {
                group, pid, flags, ..
            } => {
                let r = self.cpg_join_flags(conn, group, pid, flags & 1 != 0);
                status(CpgResponseId::Join, result_code(r))
            }
            CpgRequest::Leave { .. } => {
                // The request's group and pid are ignored: the connection's own are used
                // (message_handler_req_lib_cpg_leave).
                status(CpgResponseId::Leave, result_code(self.cpg_leave(conn)))
            }
            CpgRequest::Mcast { data, .. } => {
                // No reply ever; a refusal is only logged by corosync.
                let _ = self.cpg_mcast(conn, data);
                LibReply::NoResponse
            }
            CpgRequest::PartialMcast {
                msglen, kind, data, ..
            } => {
                let r = self.cpg_partial_mcast(conn, msglen, kind, data);
                status(CpgResponseId::PartialSend, result_code(r))
            }
            CpgRequest::Membership { group, .. } => {
                // By the request's name as sent (mar_name_compare in
                // message_handler_req_lib_cpg_membership), its length included.
                let members: Vec<WireAddress> = self
                    .cpg_membership_of(&group)
                    .iter()
                    .take(MEMBERSHIP_ARRAY_LEN)
                    .map(|a| WireAddress {
                        reason: ConfchgReason::Undefined,
                        ..wire_address(a)
                    })
                    .collect();
                LibReply::Response(CpgResponse::membership(members, CsError::Ok).to_bytes())
            }
            CpgRequest::LocalGet { .. } => {
                LibReply::Response(CpgResponse::local_get(self.nodeid()).to_bytes())
            }
            CpgRequest::IterationInitialize {
                group,
                iteration_type,
                ..
            } => {
                let items = grouped_snapshot(self.cpg_processes(), iteration_type, &group);
                let reply = match self.iterations.create(conn, items) {
                    Some(h) => CpgResponse::iteration_initialize(h, CsError::Ok),
                    None => CpgResponse::iteration_initialize(0, CsError::NoMemory),
                };
                LibReply::Response(reply.to_bytes())
            }
            CpgRequest::IterationNext { handle, .. } => {
                let empty = CpgName::EMPTY;
                let reply = match self.iterations.next(handle) {
                    None => CpgResponse::iteration_next(empty, 0, 0, CsError::Library),
                    Some(Some((group, nodeid, pid))) => {
                        CpgResponse::iteration_next(group, nodeid, pid, CsError::Ok)
                    }
                    Some(None) => CpgResponse::iteration_next(empty, 0, 0, CsError::NoSections),
                };
                LibReply::Response(reply.to_bytes())
            }
            CpgRequest::IterationFinalize { handle, .. } => {
                let error = if self.iterations.finalize(handle) {
                    CsError::Ok
                } else {
                    CsError::Library
                };
                status(CpgResponseId::IterationFinalize, error)
            }
            CpgRequest::Finalize { .. } => {
                let _ = self.cpg_finalize(conn);
                status(CpgResponseId::Finalize, CsError::Ok)
            }
            CpgRequest::ZcAlloc { map_size, path, .. } => {
                // The file is the client's memory, not ours: any size it could create is
                // fine, but it must hold the buffer's header.
                if map_size < ZC_PAYLOAD_OFFSET as u64 {
                    return LibReply::Disconnect(format!("ZC_ALLOC of {map_size} bytes"));
                }
                match zc.map(conn, &path, map_size) {
                    // The reply's error is not read by libcpg (ipc.md §4.4): id 0, OK.
                    Ok(_) => status(CpgResponseId::Join, CsError::Ok),
                    Err(_) => status(CpgResponseId::Join, CsError::Library),
                }
            }
            CpgRequest::ZcFree { server_address, .. } => {
                let ok = zc.unmap(conn, server_address);
                status(
                    CpgResponseId::Join,
                    if ok { CsError::Ok } else { CsError::NotExist },
                )
            }
            CpgRequest::ZcExecute { server_address, .. } => {
                // corosync trusts the token and msglen; we check both (ipc.md §4.7).
                let Some(buffer) = zc.contents(conn, server_address) else {
                    return status(CpgResponseId::Mcast, CsError::NotExist);
                };
                let Ok(payload) = zc_payload(&buffer).map(<[u8]>::to_vec) else {
                    return status(CpgResponseId::Mcast, CsError::InvalidParam);
                };
                status(
                    CpgResponseId::Mcast,
                    result_code(self.cpg_mcast(conn, &payload)),
                )
            }
            CpgRequest::Unknown { .. } => status(CpgResponseId::Join, CsError::InvalidParam),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> CpgName {
        CpgName::new(s.as_bytes()).expect("short")
    }

    #[test]
    fn iteration_groups_like_corosync() {
        // process_info order (nodeid, pid): g1/1/1, g1/1/2, g2/2/3, g1/3/4. corosync's list
        // insertion yields g2 first, then g1 with later entries right after its first one.
        let pi = vec![
            (name("g1"), 1, 1),
            (name("g1"), 1, 2),
            (name("g2"), 2, 3),
            (name("g1"), 3, 4),
        ];
        let all = grouped_snapshot(pi.clone().into_iter(), IterationType::All, &name(""));
        let pids: Vec<u32> = all.iter().map(|x| x.2).collect();
        assert_eq!(pids, [3, 1, 4, 2]);
        let names = grouped_snapshot(pi.clone().into_iter(), IterationType::NameOnly, &name(""));
        assert_eq!(names, vec![(name("g2"), 0, 0), (name("g1"), 0, 0)]);
        let one = grouped_snapshot(pi.into_iter(), IterationType::OneGroup, &name("g1"));
        let pids: Vec<u32> = one.iter().map(|x| x.2).collect();
        assert_eq!(pids, [1, 4, 2]);
    }
}
