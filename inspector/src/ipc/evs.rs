//! The typed facts (for stats and filters) of the `evs` service's IPC messages: our libevs
//! layout, `totem_wire::ipc::evs` (docs/evs.md §9). Their field trees are built in
//! `render::ipc_fields`, beside CPG's.

use totem_wire::ipc::evs::{EvsIpcEvent, EvsRequest, EvsResponse};

use crate::ipc::summary::IpcSummary;
use crate::model::digest;

/// The facts of an evs request: its keys and the digest of what it sends.
pub fn request_summary(request: &EvsRequest<'_>) -> IpcSummary {
    let mut summary = IpcSummary::default();
    match request {
        EvsRequest::Join { groups } | EvsRequest::Leave { groups } => {
            summary.evs_groups = groups.clone();
        }
        EvsRequest::McastJoined { data, .. } => summary.digest = Some(digest(data)),
        EvsRequest::McastGroups { groups, data, .. } => {
            summary.evs_groups = groups.clone();
            summary.digest = Some(digest(data));
        }
        EvsRequest::MembershipGet | EvsRequest::Unknown { .. } => {}
    }
    summary
}

/// The facts of an evs response: the nodes MEMBERSHIP_GET names.
pub fn response_summary(response: &EvsResponse) -> IpcSummary {
    let mut summary = IpcSummary::default();
    if let EvsResponse::MembershipGet {
        local_nodeid,
        members,
        ..
    } = response
    {
        summary.nodes = std::iter::once(*local_nodeid)
            .chain(members.iter().copied())
            .collect();
    }
    summary
}

/// The facts of an evs event: the sender of a delivery and its digest, the nodes of a
/// configuration.
pub fn event_summary(event: &EvsIpcEvent<'_>) -> IpcSummary {
    let mut summary = IpcSummary::default();
    match event {
        EvsIpcEvent::Deliver { nodeid, data } => {
            summary.nodes = vec![*nodeid];
            summary.digest = Some(digest(data));
        }
        EvsIpcEvent::Confchg {
            ring_nodeid,
            members,
            left,
            joined,
            ..
        } => {
            summary.nodes = std::iter::once(*ring_nodeid)
                .chain(members.iter().chain(left).chain(joined).copied())
                .collect();
        }
    }
    summary
}
