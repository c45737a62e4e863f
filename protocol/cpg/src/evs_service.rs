//! The EVS library interface over libqb IPC, sans-IO: what `services/evs.c`'s library
//! handlers (`message_handler_req_evs_*`) did behind corosync 1.4's IPC glue, on the
//! request and event layouts of `totem_wire::ipc::evs` (docs/evs.md §3, §9). One request's
//! bytes in, one response's bytes out; events come out of [`crate::Node::poll_event`] as
//! [`NodeOutput::Evs`](crate::NodeOutput::Evs) and [`evs_event_bytes`] encodes them.
//!
//! `totemd` puts this behind its `evs` IPC service and the simulator calls it directly, so
//! both answer libevs with the same code. Quorum (EVS-CODE-8) is not known here: the
//! daemon's glue refuses requests of an inquorate node before they reach this.

use totem_srp::ConfigurationKind;
use totem_wire::ipc::evs::{
    EvsConfchgKind, EvsIpcEvent, EvsRequest, EvsRequestId, EvsResponse, EvsResponseId,
};
use totem_wire::ipc::CsError;

use crate::evs::{EvsConnId, EvsError, EvsEvent};
use crate::node::Node;
use crate::service::LibReply;

/// The `cs_error_t` libevs returns for an engine refusal.
pub fn evs_cs_error(e: EvsError) -> CsError {
    match e {
        EvsError::BadHandle => CsError::BadHandle,
        EvsError::TryAgain => CsError::TryAgain,
        EvsError::TooManyGroups => CsError::TooManyGroups,
        EvsError::NotExist => CsError::NotExist,
        EvsError::InvalidParam => CsError::InvalidParam,
    }
}

fn status(id: EvsRequestId, r: Result<(), EvsError>) -> LibReply {
    let error = r.map_or_else(evs_cs_error, |()| CsError::Ok);
    LibReply::Response(EvsResponse::status(id.response(), error).to_bytes())
}

impl Node {
    /// One libevs request of connection `conn` (from [`Node::evs_connect`]): its response.
    /// Every request is answered (1.4's calls are all synchronous, EVS-MJ-11); a send the
    /// ring cannot take now is answered CS_ERR_TRY_AGAIN, which libevs returns to the
    /// program (the back-pressure signal every 1.4 program retries on, docs/evs.md §7.6).
    /// A request whose counts do not match its bytes drops the client (EVS-CODE-9 is not
    /// copied); an unknown id gets the glue's `{id 0, CS_ERR_INVALID_PARAM}`.
    pub fn evs_ipc_request(&mut self, conn: EvsConnId, bytes: &[u8]) -> LibReply {
        let request = match EvsRequest::parse(bytes) {
            Ok(r) => r,
            Err(e) => return LibReply::Disconnect(format!("malformed EVS request: {e}")),
        };
        let id = request.id();
        match request {
            EvsRequest::Join { groups } => status(id, self.evs_join(conn, &groups)),
            EvsRequest::Leave { groups } => status(id, self.evs_leave(conn, &groups)),
            // The guarantee is never read: every message is agreed (EVS-MJ-4).
            EvsRequest::McastJoined { data, .. } => status(id, self.evs_mcast_joined(conn, data)),
            EvsRequest::McastGroups { groups, data, .. } => {
                status(id, self.evs_mcast_groups(conn, &groups, data))
            }
            EvsRequest::MembershipGet => match self.evs_membership_get(conn) {
                Ok((local, members)) => {
                    LibReply::Response(EvsResponse::membership(local, members).to_bytes())
                }
                Err(e) => status(id, Err(e)),
            },
            EvsRequest::Unknown { .. } => LibReply::Response(
                EvsResponse::status(EvsResponseId::Deliver, CsError::InvalidParam).to_bytes(),
            ),
        }
    }
}

/// Encodes an EVS event for the event channel: the connection it is for, and its bytes.
pub fn evs_event_bytes(event: &EvsEvent) -> (EvsConnId, Vec<u8>) {
    match event {
        EvsEvent::Deliver { conn, nodeid, data } => (
            *conn,
            EvsIpcEvent::Deliver {
                nodeid: *nodeid,
                data,
            }
            .to_bytes(),
        ),
        EvsEvent::Confchg { conn, confchg } => (
            *conn,
            EvsIpcEvent::Confchg {
                kind: match confchg.kind {
                    ConfigurationKind::Transitional => EvsConfchgKind::Transitional,
                    ConfigurationKind::Regular => EvsConfchgKind::Regular,
                },
                ring_nodeid: confchg.ring_id.rep,
                ring_seq: confchg.ring_id.seq,
                members: confchg.members.clone(),
                left: confchg.left.clone(),
                joined: confchg.joined.clone(),
            }
            .to_bytes(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use totem_srp::Instant;
    use totem_wire::exec::evs::EvsGroup;
    use totem_wire::ipc::evs::EvsRequest;

    use super::*;
    use crate::node::tests::{alone, run_alone};
    use crate::NodeOutput;

    fn key(name: &[u8]) -> EvsGroup {
        let mut k = [0u8; 32];
        k[..name.len()].copy_from_slice(name);
        k
    }

    fn reply(node: &mut Node, conn: EvsConnId, r: EvsRequest<'_>) -> EvsResponse {
        match node.evs_ipc_request(conn, &r.to_bytes()) {
            LibReply::Response(b) => EvsResponse::parse(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn error(node: &mut Node, conn: EvsConnId, r: EvsRequest<'_>) -> CsError {
        reply(node, conn, r).header().error
    }

    #[test]
    fn libevs_requests_answer_as_1_4_and_events_encode() {
        let mut node = alone(3);
        let _ = run_alone(
            &mut node,
            Instant::from_millis(0),
            Instant::from_millis(5_000),
        );
        let c = node.evs_connect();
        let join = |g: Vec<EvsGroup>| EvsRequest::Join { groups: g };
        assert_eq!(
            error(&mut node, c, join(vec![key(b"a"); 51])),
            CsError::TooManyGroups
        );
        assert_eq!(
            error(&mut node, c, join(vec![key(b"a"), key(b"b")])),
            CsError::Ok
        );
        assert_eq!(
            error(
                &mut node,
                c,
                EvsRequest::Leave {
                    groups: vec![key(b"b"), key(b"x")]
                }
            ),
            CsError::NotExist
        );
        assert_eq!(
            reply(&mut node, c, EvsRequest::MembershipGet),
            EvsResponse::membership(3, vec![3])
        );
        assert_eq!(
            error(
                &mut node,
                c,
                EvsRequest::McastJoined {
                    guarantee: 99,
                    data: b"m"
                }
            ),
            CsError::Ok
        );
        // An unknown id: the glue's answer, the client stays.
        let unknown = EvsRequest::Unknown {
            header: totem_wire::ipc::RequestHeader { id: 9, size: 16 },
            body: &[],
        };
        assert_eq!(error(&mut node, c, unknown), CsError::InvalidParam);
        // Counts that lie about the bytes: the client goes.
        let mut bad = join(vec![key(b"a")]).to_bytes();
        bad[16] = 3;
        assert!(matches!(
            node.evs_ipc_request(c, &bad),
            LibReply::Disconnect(_)
        ));

        let out = run_alone(
            &mut node,
            Instant::from_millis(5_000),
            Instant::from_millis(6_000),
        );
        let events: Vec<Vec<u8>> = out
            .iter()
            .filter_map(|o| match o {
                NodeOutput::Evs(e) => Some(evs_event_bytes(e)),
                _ => None,
            })
            .filter(|(conn, _)| *conn == c)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(
            events.len(),
            2,
            "the connect-time confchg, then one delivery"
        );
        assert!(matches!(
            EvsIpcEvent::parse(&events[0]).unwrap(),
            EvsIpcEvent::Confchg { kind: EvsConfchgKind::Regular, ref members, .. } if members == &[3]
        ));
        assert_eq!(
            EvsIpcEvent::parse(&events[1]).unwrap(),
            EvsIpcEvent::Deliver {
                nodeid: 3,
                data: b"m"
            }
        );
    }
}
