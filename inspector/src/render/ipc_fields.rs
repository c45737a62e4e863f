//! The generic field tree (`detail`) of an IPC record, built from the wire message: what the
//! IPC views print. Stats and filters read the typed
//! [`IpcSummary`](crate::ipc::summary::IpcSummary) instead.

use totem_wire::exec::cpg::CpgName;
use totem_wire::ipc::cpg::{CpgAddress, IterationType};
use totem_wire::ipc::{ConnectionRequest, ConnectionResponse, CpgEvent, CpgRequest, CpgResponse};

use totem_wire::exec::evs::EvsGroup;
use totem_wire::ipc::evs::{EvsConfchgKind, EvsIpcEvent, EvsRequest, EvsResponse};

use crate::evs::key_text;
use crate::ipc::errno::{errno_name, qb_to_cs_error};
use crate::model::{digest, Fields, RingRecord, Value};

/// The digest of a payload: the one the decoder already took, or taken now.
fn payload_digest(known: Option<u64>, data: &[u8]) -> Value {
    Value::Digest(known.unwrap_or_else(|| digest(data)))
}

fn group(f: &mut Fields, name: &CpgName) {
    f.push("group", Value::Str(name.to_string()));
}

fn address_records(list: &[CpgAddress], with_reason: bool) -> Value {
    Value::Records(
        list.iter()
            .map(|a| {
                let mut f = Fields::default();
                f.push("nodeid", Value::U(a.nodeid.into()));
                f.push("pid", Value::U(a.pid.into()));
                if with_reason {
                    f.push("reason", Value::Str(a.reason.to_string()));
                }
                f
            })
            .collect(),
    )
}

/// The fields of a connection request.
pub fn connection_request(request: &ConnectionRequest) -> Fields {
    let mut f = Fields::default();
    f.push("max_msg_size", Value::U(request.max_msg_size.into()));
    f
}

/// The fields of a connection response: why it refused, or what it set up.
pub fn connection_response(response: &ConnectionResponse) -> Fields {
    let mut f = Fields::default();
    match response.refusal_errno() {
        Some(errno) => {
            f.push("refused", Value::Str(errno_name(errno)));
            f.push("libcpg_result", Value::Static(qb_to_cs_error(errno)));
        }
        None => {
            f.push(
                "connection_type",
                Value::Str(response.connection_type.to_string()),
            );
            f.push("max_msg_size", Value::U(response.max_msg_size.into()));
            for (k, v) in [
                ("request", &response.request),
                ("response", &response.response),
                ("event", &response.event),
            ] {
                if !v.is_empty() {
                    f.push(k, Value::Str(String::from_utf8_lossy(v).into_owned()));
                }
            }
        }
    }
    f
}

/// The fields of a CPG request; `known_digest` is its payload's digest when the decoder
/// took it already.
pub fn request(request: &CpgRequest<'_>, known_digest: Option<u64>) -> Fields {
    let mut d = Fields::default();
    match request {
        CpgRequest::Join {
            group: g,
            pid,
            flags,
            ..
        } => {
            group(&mut d, g);
            d.push("pid", Value::U((*pid).into()));
            d.push("flags", Value::U((*flags).into()));
        }
        CpgRequest::Leave { group: g, pid, .. } => {
            group(&mut d, g);
            d.push("pid", Value::U((*pid).into()));
        }
        CpgRequest::Membership { group: g, .. } => group(&mut d, g),
        CpgRequest::LocalGet { .. } | CpgRequest::Finalize { .. } => {}
        CpgRequest::IterationInitialize {
            group: g,
            iteration_type,
            ..
        } => {
            d.push("iteration_type", Value::Str(iteration_type.to_string()));
            // The name is only sent meaningfully for ONE_GROUP (`cpg_iteration_initialize`
            // leaves it uninitialised otherwise).
            if *iteration_type == IterationType::OneGroup {
                group(&mut d, g);
            }
        }
        CpgRequest::IterationNext { handle, .. } | CpgRequest::IterationFinalize { handle, .. } => {
            d.push("handle", Value::Str(format!("{handle:#x}")));
        }
        CpgRequest::Mcast {
            guarantee,
            msglen,
            data,
            ..
        } => {
            d.push("guarantee", Value::Str(guarantee.to_string()));
            d.push("msglen", Value::U((*msglen).into()));
            d.push("digest", payload_digest(known_digest, data));
        }
        CpgRequest::PartialMcast {
            guarantee,
            msglen,
            fraglen,
            kind,
            data,
            ..
        } => {
            d.push("guarantee", Value::Str(guarantee.to_string()));
            d.push("msglen", Value::U((*msglen).into()));
            d.push("fraglen", Value::U((*fraglen).into()));
            d.push("type", Value::Str(kind.to_string()));
            d.push("digest", payload_digest(known_digest, data));
        }
        CpgRequest::ZcAlloc { map_size, path, .. } => {
            d.push("map_size", Value::U(*map_size));
            d.push(
                "path",
                Value::Str(String::from_utf8_lossy(path).into_owned()),
            );
        }
        CpgRequest::ZcFree {
            map_size,
            server_address,
            ..
        } => {
            d.push("map_size", Value::U(*map_size));
            d.push("server_address", Value::Str(format!("{server_address:#x}")));
        }
        CpgRequest::ZcExecute { server_address, .. } => {
            d.push("server_address", Value::Str(format!("{server_address:#x}")));
        }
        CpgRequest::Unknown { header, body } => {
            d.push("size", Value::U(header.size as u32 as u64));
            d.push("body_len", Value::U(body.len() as u64));
        }
    }
    d
}

/// The fields of a CPG response.
pub fn response(response: &CpgResponse) -> Fields {
    let mut d = Fields::default();
    match response {
        CpgResponse::Status { .. } => {}
        CpgResponse::Membership { members, .. } => {
            d.push("members", address_records(members, false));
        }
        CpgResponse::LocalGet { local_nodeid, .. } => {
            d.push("local_nodeid", Value::U((*local_nodeid).into()));
        }
        CpgResponse::IterationInitialize { handle, .. } => {
            d.push("handle", Value::Str(format!("{handle:#x}")));
        }
        CpgResponse::IterationNext {
            group: g,
            nodeid,
            pid,
            ..
        } => {
            // Unset (stack garbage) unless the status is CS_OK.
            if response_is_ok(response) {
                group(&mut d, g);
                d.push("nodeid", Value::U((*nodeid).into()));
                d.push("pid", Value::U((*pid).into()));
            }
        }
        CpgResponse::Unknown { body, .. } => {
            d.push("body_len", Value::U(body.len() as u64));
        }
    }
    d
}

/// Does the response say CS_OK? Its other fields are set only then.
pub fn response_is_ok(response: &CpgResponse) -> bool {
    response.header().error == totem_wire::ipc::CsError::Ok
}

/// The fields of a CPG event; `known_digest` as for [`request`].
pub fn event(event: &CpgEvent<'_>, known_digest: Option<u64>) -> Fields {
    let mut d = Fields::default();
    match event {
        CpgEvent::Confchg {
            group: g,
            members,
            left,
            joined,
            ..
        } => {
            group(&mut d, g);
            d.push("members", address_records(members, false));
            d.push("left", address_records(left, true));
            d.push("joined", address_records(joined, true));
        }
        CpgEvent::Deliver {
            group: g,
            msglen,
            nodeid,
            pid,
            data,
            ..
        } => {
            group(&mut d, g);
            d.push("nodeid", Value::U((*nodeid).into()));
            d.push("pid", Value::U((*pid).into()));
            d.push("msglen", Value::U((*msglen).into()));
            d.push("digest", payload_digest(known_digest, data));
        }
        CpgEvent::TotemConfchg {
            ring_nodeid,
            ring_seq,
            members,
            ..
        } => {
            d.push(
                "ring_id",
                Value::Ring(RingRecord {
                    rep: *ring_nodeid,
                    seq: *ring_seq,
                }),
            );
            d.push(
                "members",
                Value::List(members.iter().map(|&n| u64::from(n)).collect()),
            );
        }
        CpgEvent::PartialDeliver {
            group: g,
            msglen,
            fraglen,
            nodeid,
            pid,
            kind,
            data,
            ..
        } => {
            group(&mut d, g);
            d.push("nodeid", Value::U((*nodeid).into()));
            d.push("pid", Value::U((*pid).into()));
            d.push("msglen", Value::U((*msglen).into()));
            d.push("fraglen", Value::U((*fraglen).into()));
            d.push("type", Value::Str(kind.to_string()));
            d.push("digest", payload_digest(known_digest, data));
        }
        CpgEvent::Unknown { body, .. } => {
            d.push("body_len", Value::U(body.len() as u64));
        }
    }
    d
}

/// The keys of an evs request as the Totem views show them.
fn evs_keys(groups: &[EvsGroup]) -> Value {
    Value::Texts(groups.iter().map(key_text).collect())
}

/// The fields of an evs request; `known_digest` as for [`request`].
pub fn evs_request(request: &EvsRequest<'_>, known_digest: Option<u64>) -> Fields {
    let mut d = Fields::default();
    match request {
        EvsRequest::Join { groups } | EvsRequest::Leave { groups } => {
            d.push("groups", evs_keys(groups));
        }
        EvsRequest::McastJoined { guarantee, data } => {
            d.push("guarantee", Value::U((*guarantee).into()));
            d.push("msg_len", Value::U(data.len() as u64));
            d.push("digest", payload_digest(known_digest, data));
        }
        EvsRequest::McastGroups {
            guarantee,
            groups,
            data,
        } => {
            d.push("guarantee", Value::U((*guarantee).into()));
            d.push("groups", evs_keys(groups));
            d.push("msg_len", Value::U(data.len() as u64));
            d.push("digest", payload_digest(known_digest, data));
        }
        EvsRequest::MembershipGet => {}
        EvsRequest::Unknown { header, body } => {
            d.push("size", Value::U(header.size as u32 as u64));
            d.push("body_len", Value::U(body.len() as u64));
        }
    }
    d
}

/// The fields of an evs response.
pub fn evs_response(response: &EvsResponse) -> Fields {
    let mut d = Fields::default();
    if let EvsResponse::MembershipGet {
        local_nodeid,
        members,
        ..
    } = response
    {
        d.push("local_nodeid", Value::U((*local_nodeid).into()));
        d.push(
            "members",
            Value::List(members.iter().map(|&n| u64::from(n)).collect()),
        );
    }
    d
}

/// The fields of an evs event; `known_digest` as for [`request`].
pub fn evs_event(event: &EvsIpcEvent<'_>, known_digest: Option<u64>) -> Fields {
    let mut d = Fields::default();
    let list = |l: &[u32]| Value::List(l.iter().map(|&n| u64::from(n)).collect());
    match event {
        EvsIpcEvent::Deliver { nodeid, data } => {
            d.push("nodeid", Value::U((*nodeid).into()));
            d.push("msg_len", Value::U(data.len() as u64));
            d.push("digest", payload_digest(known_digest, data));
        }
        EvsIpcEvent::Confchg {
            kind,
            ring_nodeid,
            ring_seq,
            members,
            left,
            joined,
        } => {
            d.push(
                "kind",
                Value::Static(match kind {
                    EvsConfchgKind::Transitional => "transitional",
                    EvsConfchgKind::Regular => "regular",
                }),
            );
            d.push(
                "ring_id",
                Value::Ring(RingRecord {
                    rep: *ring_nodeid,
                    seq: *ring_seq,
                }),
            );
            d.push("members", list(members));
            d.push("left", list(left));
            d.push("joined", list(joined));
        }
    }
    d
}
