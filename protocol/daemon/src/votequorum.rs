//! The `votequorum` service (`exec/votequorum.c`'s library handlers) over IPC:
//! `corosync-quorumtool` asks TRACKSTART(CS_TRACK_CURRENT) and waits for the
//! NODELIST_NOTIFICATION (for the ring id), then GETINFO for this node and every member;
//! `-e` and `-v` send SETEXPECTED and SETVOTES, checked as corosync checks them and then
//! multicast as a RECONFIGURE that every node applies when it is delivered
//! ([`totem_votequorum::Votequorum::set_expected`], `set_votes`). The qdevice calls are
//! answered CS_ERR_NOT_SUPPORTED: totemd has no quorum device support.

use totem_wire::ipc::votequorum::{
    NodelistNotification, VotequorumInfo, VotequorumRequest, VotequorumResponse,
    VqQuorumNotification, INFO_QUORATE, INFO_TWONODE, INFO_WAIT_FOR_ALL,
};
use totem_wire::ipc::CsError;

use crate::quorum::{Reply, TRACK_CHANGES, TRACK_CHANGES_ONLY, TRACK_CURRENT};
use totem_votequorum::{Votequorum, WriteRefused};
use totem_wire::exec::VotequorumMessage;
use totem_wire::ipc::votequorum::ExpectedVotesNotification;

/// The service name (`cs_ipcs_serv_short_name(VOTEQUORUM_SERVICE)`).
pub const SERVICE: &str = "votequorum";

/// Handlers in `quorum_lib_service` of `exec/votequorum.c` (0..=9).
const LIB_ENGINE_COUNT: i32 = 10;

/// What one votequorum connection asked for (`struct quorum_pd`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VotequorumConn {
    /// Tracking changes, with this context.
    pub tracking: Option<u64>,
}

fn emit(r: VotequorumResponse) -> Vec<u8> {
    let mut out = Vec::new();
    r.emit(&mut out);
    out
}

/// The status reply to a write, and its RECONFIGURE to multicast when it was accepted.
fn write(
    result: Result<VotequorumMessage, WriteRefused>,
    mcast: &mut Vec<VotequorumMessage>,
) -> Reply {
    let error = match result {
        Ok(m) => {
            mcast.push(m);
            CsError::Ok
        }
        Err(WriteRefused::InvalidParam) => CsError::InvalidParam,
        Err(WriteRefused::NameNotFound) => CsError::NameNotFound,
    };
    Reply::of(emit(VotequorumResponse::status(error)))
}

/// `votequorum_exec_send_expectedvotes_notification`: this node's expected votes.
pub fn expectedvotes_event(vq: &Votequorum, context: u64) -> Vec<u8> {
    let mut out = Vec::new();
    ExpectedVotesNotification {
        context,
        expected_votes: vq.us().expected_votes,
    }
    .emit(&mut out);
    out
}

/// `votequorum_exec_send_nodelist_notification`: the quorum's members and ring.
pub fn nodelist_event(vq: &Votequorum, context: u64) -> Vec<u8> {
    let mut out = Vec::new();
    NodelistNotification {
        context,
        ring_nodeid: vq.ring.rep,
        ring_seq: vq.ring.seq,
        nodes: vq.members.clone(),
    }
    .emit(&mut out);
    out
}

/// `votequorum_exec_send_quorum_notification`: every known node and its state, in
/// `cluster_members_list` order.
pub fn quorum_event(vq: &Votequorum, context: u64) -> Vec<u8> {
    let mut out = Vec::new();
    VqQuorumNotification {
        quorate: u32::from(vq.quorate),
        context,
        nodes: vq.listed().map(|(id, n)| (id, n.state)).collect(),
    }
    .emit(&mut out);
    out
}

/// `message_handler_req_lib_votequorum_getinfo`'s answer for `nodeid`: the node's own
/// record, the members' highest expected and total votes, the cluster's quorum and flags.
pub fn getinfo(vq: &Votequorum, nodeid: u32) -> (CsError, VotequorumInfo) {
    // VOTEQUORUM_QDEVICE_NODEID (0) is read as this node.
    let nodeid = if nodeid == 0 { vq.nodeid() } else { nodeid };
    let Some(node) = vq.nodes.get(&nodeid) else {
        return (CsError::NotExist, VotequorumInfo::default());
    };
    let c = vq.config();
    let mut flags = 0;
    if c.two_node {
        flags |= INFO_TWONODE;
    }
    if vq.quorate {
        flags |= INFO_QUORATE;
    }
    if c.wait_for_all {
        flags |= INFO_WAIT_FOR_ALL;
    }
    let (highest_expected, total_votes, _) = vq.member_totals(node.flags);
    let info = VotequorumInfo {
        nodeid,
        state: node.state,
        votes: node.votes,
        expected_votes: node.expected_votes,
        highest_expected,
        total_votes,
        quorum: vq.quorum,
        flags,
        qdevice_votes: vq.qdevice_votes,
        qdevice_name: Vec::new(),
    };
    (CsError::Ok, info)
}

/// The response to one votequorum request; `Err` for a malformed one (the client is
/// then disconnected).
pub fn reply(
    request: &[u8],
    vq: &mut Votequorum,
    conn: &mut VotequorumConn,
    mcast: &mut Vec<VotequorumMessage>,
) -> Result<Reply, String> {
    let request = VotequorumRequest::parse(request).map_err(|e| e.to_string())?;
    Ok(match request {
        VotequorumRequest::GetInfo { nodeid } => {
            let (error, info) = getinfo(vq, nodeid);
            Reply::of(emit(VotequorumResponse::getinfo(error, info)))
        }
        // message_handler_req_lib_votequorum_trackstart.
        VotequorumRequest::TrackStart {
            context,
            track_flags,
        } => {
            let mut events = Vec::new();
            if track_flags & (TRACK_CURRENT | TRACK_CHANGES) != 0 {
                events.push(nodelist_event(vq, context));
                events.push(quorum_event(vq, context));
            }
            let error = if conn.tracking.is_some() {
                CsError::Exist
            } else {
                if track_flags & (TRACK_CHANGES | TRACK_CHANGES_ONLY) != 0 {
                    conn.tracking = Some(context);
                }
                CsError::Ok
            };
            Reply {
                events,
                response: emit(VotequorumResponse::status(error)),
            }
        }
        // message_handler_req_lib_votequorum_trackstop.
        VotequorumRequest::TrackStop => {
            let error = if conn.tracking.take().is_some() {
                CsError::Ok
            } else {
                CsError::NotExist
            };
            Reply::of(emit(VotequorumResponse::status(error)))
        }
        // message_handler_req_lib_votequorum_setexpected / _setvotes.
        VotequorumRequest::SetExpected { expected_votes } => {
            write(vq.set_expected(expected_votes), mcast)
        }
        VotequorumRequest::SetVotes { votes, nodeid } => write(vq.set_votes(nodeid, votes), mcast),
        VotequorumRequest::Other { header, .. } => {
            if (0..LIB_ENGINE_COUNT).contains(&header.id) {
                Reply::of(emit(VotequorumResponse::status(CsError::NotSupported)))
            } else {
                // cs_ipcs_msg_process: -EINVAL for an id past the engine.
                Reply::of(emit(VotequorumResponse::status(CsError::InvalidParam)))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use totem_votequorum::testing::{config, Cluster};

    fn vq() -> Votequorum {
        let mut c = Cluster::default();
        for n in 1..=3 {
            c.start(n, config(3, false));
        }
        c.ring(&[1]);
        c.ring(&[1, 2]);
        c.node(2).clone()
    }

    fn ask(vq: &Votequorum, r: VotequorumRequest<'_>, conn: &mut VotequorumConn) -> Reply {
        let mut b = Vec::new();
        r.emit(&mut b);
        reply(&b, &mut vq.clone(), conn, &mut Vec::new()).unwrap()
    }

    /// `corosync-quorumtool -e` / `-v` on node 2 of a {1, 2} ring of three expected votes
    /// (quorum 2, total 2): corosync's bounds, and the RECONFIGURE that goes out.
    #[test]
    fn writes_are_checked_then_multicast() {
        let mut vq = vq();
        let mut conn = VotequorumConn::default();
        let mut try_write = |vq: &mut Votequorum, r: VotequorumRequest<'_>| {
            let mut b = Vec::new();
            r.emit(&mut b);
            let mut mcast = Vec::new();
            let r = reply(&b, vq, &mut conn, &mut mcast).unwrap();
            let VotequorumResponse::Status { header } =
                VotequorumResponse::parse(&r.response).unwrap()
            else {
                panic!("not a status");
            };
            let sent = mcast.iter().map(|m| match m {
                VotequorumMessage::Reconfigure {
                    nodeid,
                    value,
                    param,
                    ..
                } => format!("{param:?} {nodeid}={value}"),
                other => format!("{other:?}"),
            });
            (header.error, sent.collect::<Vec<_>>())
        };
        let set = |expected_votes| VotequorumRequest::SetExpected { expected_votes };
        // Below the votes present; or a quorum above them while quorate.
        assert_eq!(try_write(&mut vq, set(1)).0, CsError::InvalidParam);
        assert_eq!(try_write(&mut vq, set(5)).0, CsError::InvalidParam);
        assert_eq!(
            try_write(&mut vq, set(2)),
            (CsError::Ok, vec!["ExpectedVotes 2=2".to_owned()])
        );
        assert_eq!(vq.nodes[&1].expected_votes, 2, "members updated at once");
        let votes = |nodeid, votes| VotequorumRequest::SetVotes { votes, nodeid };
        assert_eq!(try_write(&mut vq, votes(9, 1)).0, CsError::NameNotFound);
        // 0 votes for node 2: quorum 2 above the 1 vote left.
        assert_eq!(try_write(&mut vq, votes(2, 0)).0, CsError::InvalidParam);
        assert_eq!(vq.nodes[&2].votes, 1, "restored");
        assert_eq!(
            try_write(&mut vq, votes(1, 3)),
            (CsError::Ok, vec!["NodeVotes 1=3".to_owned()])
        );
    }

    #[test]
    fn getinfo_as_quorumtool_reads_it() {
        let vq = vq();
        let mut conn = VotequorumConn::default();
        let r = ask(&vq, VotequorumRequest::GetInfo { nodeid: 2 }, &mut conn);
        let VotequorumResponse::GetInfo { header, info } =
            VotequorumResponse::parse(&r.response).unwrap()
        else {
            panic!("not GETINFO");
        };
        assert_eq!(header.error, CsError::Ok);
        assert_eq!(
            (
                info.nodeid,
                info.state,
                info.votes,
                info.expected_votes,
                info.total_votes,
                info.quorum,
                info.flags
            ),
            (2, 1, 1, 3, 2, 2, INFO_QUORATE)
        );
        // 0 is this node; a node never seen does not exist.
        let r0 = ask(&vq, VotequorumRequest::GetInfo { nodeid: 0 }, &mut conn);
        assert_eq!(r0.response, r.response);
        let r = ask(&vq, VotequorumRequest::GetInfo { nodeid: 3 }, &mut conn);
        let VotequorumResponse::GetInfo { header, .. } =
            VotequorumResponse::parse(&r.response).unwrap()
        else {
            panic!("not GETINFO");
        };
        assert_eq!(header.error, CsError::NotExist);
    }

    #[test]
    fn trackstart_sends_the_nodelist_then_the_quorum() {
        let vq = vq();
        let mut conn = VotequorumConn::default();
        let r = ask(
            &vq,
            VotequorumRequest::TrackStart {
                context: 0,
                track_flags: TRACK_CURRENT,
            },
            &mut conn,
        );
        assert_eq!(r.events.len(), 2);
        let n = NodelistNotification::parse(&r.events[0]).unwrap();
        assert_eq!((n.ring_nodeid, n.ring_seq, n.nodes), (1, 8, vec![1, 2]));
        let q = VqQuorumNotification::parse(&r.events[1]).unwrap();
        assert_eq!((q.quorate, q.nodes), (1, vec![(1, 1), (2, 1)]));
        assert_eq!(conn.tracking, None);
        let r = ask(&vq, VotequorumRequest::TrackStop, &mut conn);
        assert_eq!(
            VotequorumResponse::parse(&r.response).unwrap(),
            VotequorumResponse::status(CsError::NotExist)
        );
        // The qdevice calls are refused, an id past the engine is invalid.
        let poll = [8, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        let mut vq = vq;
        let r = reply(&poll, &mut vq, &mut conn, &mut Vec::new()).unwrap();
        assert_eq!(
            VotequorumResponse::parse(&r.response).unwrap(),
            VotequorumResponse::status(CsError::NotSupported)
        );
        let bad = [42, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        let r = reply(&bad, &mut vq, &mut conn, &mut Vec::new()).unwrap();
        assert_eq!(
            VotequorumResponse::parse(&r.response).unwrap(),
            VotequorumResponse::status(CsError::InvalidParam)
        );
    }
}
