//! The node's quorum as corosync 3.1.7's votequorum computes it, and the `quorum` service
//! (`exec/vsf_quorum.c`) that libquorum talks to: enough for `corosync-quorumtool`, which
//! asks GETTYPE (in `quorum_initialize`), GETQUORATE, then TRACKSTART(CS_TRACK_CURRENT),
//! reads one NOTIFICATION event, and TRACKSTOP.
//!
//! What is computed (`exec/votequorum.c`), at every completed sync of a new ring (when
//! votequorum's `sync_activate` calls `quorum_api_set_quorum`):
//!
//! * votes: each member's `quorum_votes` from the nodelist (1 by default);
//! * expected votes: `quorum.expected_votes`, else the nodelist's total, raised to the
//!   members' total when that is higher (`recalculate_quorum`);
//! * quorum: `max((highest_expected + 2) / 2, (total_votes + 2) / 2)`, never lower than
//!   before, and 1 with `two_node` and at most two members (`calculate_quorum`);
//! * quorate: total votes ≥ quorum; with `wait_for_all` (`two_node` sets it unless the
//!   configuration says otherwise) not before every expected vote was present at once,
//!   and again after quorum was lost (`are_we_quorate`).
//!
//! totemd does not read the other nodes' NODEINFO messages: every node is assumed to have
//! this node's configuration (its expected votes are ours, `highest_expected` is ours),
//! and the wait-for-all release a quorate peer's NODEINFO gives (`votequorum_exec_
//! message_handler_req_exec_votequorum_nodeinfo`) does not happen. There is no qdevice,
//! `last_man_standing`, `auto_tie_breaker` or `allow_downscale`.

use std::collections::BTreeMap;

use totem_wire::ipc::quorum::{
    QuorumNotification, QuorumRequest, QuorumResponse, QuorumResponseId,
};
use totem_wire::ipc::CsError;
use totem_wire::srp::RingId;

/// The service name (`cs_ipcs_serv_short_name(QUORUM_SERVICE)`).
pub const SERVICE: &str = "quorum";

/// `CS_TRACK_CURRENT`.
pub const TRACK_CURRENT: u32 = 1;
/// `CS_TRACK_CHANGES`.
pub const TRACK_CHANGES: u32 = 2;
/// `CS_TRACK_CHANGES_ONLY`.
pub const TRACK_CHANGES_ONLY: u32 = 4;
/// Handlers in `quorum_lib_service` (0..=4).
const LIB_ENGINE_COUNT: i32 = 5;

/// The votequorum settings of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteConfig {
    /// `quorum.provider` is set (`corosync_votequorum`, the only one corosync 3 has).
    pub provider: bool,
    /// `nodelist.node.X.quorum_votes` per nodeid.
    pub votes: BTreeMap<u32, u32>,
    /// `quorum.expected_votes`, else the nodelist's votes.
    pub expected_votes: u32,
    /// `quorum.two_node`.
    pub two_node: bool,
    /// `quorum.wait_for_all`, defaulting to `two_node` (`votequorum_readconfig`).
    pub wait_for_all: bool,
}

/// One node as votequorum lists it (`struct cluster_node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeView {
    /// `NODESTATE_MEMBER` (1) or `NODESTATE_DEAD` (2).
    pub state: u32,
    /// Its votes.
    pub votes: u32,
}

/// votequorum's view, updated at each completed sync.
#[derive(Debug, Clone)]
pub struct Votequorum {
    config: VoteConfig,
    nodeid: u32,
    /// The quorum's members (the last synced ring's), in ring order.
    pub members: Vec<u32>,
    /// Its ring.
    pub ring: RingId,
    /// `cluster_is_quorate`.
    pub quorate: bool,
    /// `quorum`.
    pub quorum: u32,
    /// `us->expected_votes`.
    pub expected_votes: u32,
    /// The members' votes.
    pub total_votes: u32,
    /// `wait_for_all_status`: still waiting for every node.
    pub waiting_for_all: bool,
    /// Every node seen (`cluster_members_list`), this node from the start.
    pub nodes: BTreeMap<u32, NodeView>,
}

impl Votequorum {
    /// The state at start-up (`votequorum_init`): this node alone, not quorate.
    pub fn new(config: VoteConfig, nodeid: u32) -> Votequorum {
        let votes = config.votes.get(&nodeid).copied().unwrap_or(1);
        let expected_votes = config.expected_votes.max(1);
        Votequorum {
            nodeid,
            members: Vec::new(),
            ring: RingId::default(),
            quorate: false,
            quorum: 0,
            expected_votes,
            total_votes: 0,
            waiting_for_all: config.wait_for_all,
            nodes: BTreeMap::from([(nodeid, NodeView { state: 2, votes })]),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VoteConfig {
        &self.config
    }

    /// This node.
    pub fn nodeid(&self) -> u32 {
        self.nodeid
    }

    fn votes_of(&self, nodeid: u32) -> u32 {
        self.config.votes.get(&nodeid).copied().unwrap_or(1)
    }

    /// A new ring's sync completed with these members (`votequorum_sync_activate` →
    /// `recalculate_quorum` → `calculate_quorum`, `are_we_quorate`).
    pub fn activate(&mut self, members: &[u32], ring: RingId) {
        self.members = members.to_vec();
        self.ring = ring;
        for v in self.nodes.values_mut() {
            v.state = 2;
        }
        for &m in members {
            let votes = self.votes_of(m);
            self.nodes.insert(m, NodeView { state: 1, votes });
        }
        let total: u32 = members
            .iter()
            .fold(0u32, |t, &m| t.saturating_add(self.votes_of(m)));
        self.total_votes = total;
        if total > self.expected_votes {
            self.expected_votes = total;
        }
        let q1 = (self.expected_votes.saturating_add(2)) / 2;
        let q2 = (total.saturating_add(2)) / 2;
        let mut quorum = q1.max(q2).max(self.quorum);
        if self.config.two_node && members.len() <= 2 {
            quorum = 1;
        }
        self.quorum = quorum;
        if self.config.wait_for_all && self.waiting_for_all {
            if total != self.expected_votes {
                self.quorate = false;
                return;
            }
            self.waiting_for_all = false;
        }
        self.quorate = total >= quorum;
        if self.config.wait_for_all {
            self.waiting_for_all = !self.quorate;
        }
    }

    /// `res_lib_quorum_notification`'s content.
    pub fn notification(&self) -> QuorumNotification {
        QuorumNotification {
            quorate: i32::from(self.quorate),
            ring_seq: self.ring.seq,
            view_list: self.members.clone(),
        }
    }
}

/// What one quorum connection asked for (`struct quorum_pd`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumConn {
    /// TRACKSTART with CS_TRACK_CHANGES or CHANGES_ONLY, not stopped since.
    pub tracking: bool,
}

/// A response and the events to send before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Events (callbacks), in order.
    pub events: Vec<Vec<u8>>,
    /// The response.
    pub response: Vec<u8>,
}

impl Reply {
    pub(crate) fn of(response: Vec<u8>) -> Reply {
        Reply {
            events: Vec::new(),
            response,
        }
    }
}

fn emit(r: QuorumResponse) -> Vec<u8> {
    let mut out = Vec::new();
    r.emit(&mut out);
    out
}

/// The NOTIFICATION event for the current view (`send_library_notification`).
pub fn notification_event(vq: &Votequorum) -> Vec<u8> {
    let mut out = Vec::new();
    vq.notification().emit(&mut out);
    out
}

/// The response to one quorum request; `Err` for a malformed one (the client is then
/// disconnected).
pub fn reply(request: &[u8], vq: &Votequorum, conn: &mut QuorumConn) -> Result<Reply, String> {
    let request = QuorumRequest::parse(request).map_err(|e| e.to_string())?;
    let quorum_type = u32::from(vq.config.provider);
    let header = |id: QuorumResponseId, error| totem_wire::ipc::ResponseHeader {
        id: id.into(),
        size: 0,
        error,
    };
    Ok(match request {
        // message_handler_req_lib_quorum_getquorate.
        QuorumRequest::GetQuorate => Reply::of(emit(QuorumResponse::GetQuorate {
            header: header(QuorumResponseId::GetQuorate, CsError::Ok),
            quorate: u32::from(vq.quorate),
        })),
        // message_handler_req_lib_quorum_trackstart: the current view first (the v1
        // nodelist notification goes to v1 connections only, and totemd has none).
        QuorumRequest::TrackStart { track_flags } => {
            let mut events = Vec::new();
            if track_flags & (TRACK_CURRENT | TRACK_CHANGES) != 0 {
                events.push(notification_event(vq));
            }
            let error = if conn.tracking {
                CsError::Exist
            } else {
                if track_flags & (TRACK_CHANGES | TRACK_CHANGES_ONLY) != 0 {
                    conn.tracking = true;
                }
                CsError::Ok
            };
            Reply {
                events,
                response: emit(QuorumResponse::status(QuorumResponseId::TrackStart, error)),
            }
        }
        // message_handler_req_lib_quorum_trackstop: CS_OK whether it tracked or not.
        QuorumRequest::TrackStop => {
            conn.tracking = false;
            Reply::of(emit(QuorumResponse::status(
                QuorumResponseId::TrackStop,
                CsError::Ok,
            )))
        }
        // message_handler_req_lib_quorum_gettype.
        QuorumRequest::GetType => Reply::of(emit(QuorumResponse::GetType {
            header: header(QuorumResponseId::GetType, CsError::Ok),
            quorum_type,
        })),
        // message_handler_req_lib_quorum_model_gettype: model v1's notifications are not
        // implemented, so only v0 is accepted.
        QuorumRequest::ModelGetType { model } => {
            let error = match model {
                0 => CsError::Ok,
                1 => CsError::NotSupported,
                _ => CsError::InvalidParam,
            };
            Reply::of(emit(QuorumResponse::GetType {
                header: header(QuorumResponseId::ModelGetType, error),
                quorum_type,
            }))
        }
        // cs_ipcs_msg_process: an id past the engine is -EINVAL, id 0.
        QuorumRequest::Unknown { header: h, .. } if !(0..LIB_ENGINE_COUNT).contains(&h.id) => {
            Reply::of(emit(QuorumResponse::Status {
                header: header(QuorumResponseId::GetQuorate, CsError::InvalidParam),
            }))
        }
        QuorumRequest::Unknown { .. } => Reply::of(emit(QuorumResponse::Status {
            header: header(QuorumResponseId::GetQuorate, CsError::NotSupported),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: u32, two_node: bool) -> VoteConfig {
        VoteConfig {
            provider: true,
            votes: (1..=n).map(|i| (i, 1)).collect(),
            expected_votes: n,
            two_node,
            wait_for_all: two_node,
        }
    }

    fn ring(seq: u64) -> RingId {
        RingId { rep: 1, seq }
    }

    #[test]
    fn majority_of_expected_votes_and_quorum_never_drops() {
        let mut vq = Votequorum::new(config(3, false), 1);
        vq.activate(&[1], ring(4));
        assert_eq!((vq.quorate, vq.quorum, vq.total_votes), (false, 2, 1));
        vq.activate(&[1, 2, 3], ring(8));
        assert_eq!((vq.quorate, vq.quorum, vq.total_votes), (true, 2, 3));
        vq.activate(&[1, 2], ring(12));
        assert!(vq.quorate);
        assert_eq!(vq.nodes[&3].state, 2, "node 3 is dead, still listed");
        vq.activate(&[1], ring(16));
        assert!(!vq.quorate);
        // More votes than expected raise expected_votes and the quorum with them.
        let mut vq = Votequorum::new(config(2, false), 1);
        vq.activate(&[1, 2, 3, 4, 5], ring(4));
        assert_eq!((vq.expected_votes, vq.quorum, vq.quorate), (5, 3, true));
        vq.activate(&[1, 2], ring(8));
        assert_eq!((vq.quorum, vq.quorate), (3, false));
    }

    #[test]
    fn two_node_waits_for_both_once() {
        let mut vq = Votequorum::new(config(2, true), 1);
        vq.activate(&[1], ring(4));
        assert_eq!((vq.quorate, vq.quorum), (false, 1), "wait_for_all");
        vq.activate(&[1, 2], ring(8));
        assert!(vq.quorate);
        vq.activate(&[1], ring(12));
        assert!(vq.quorate, "two_node keeps quorum with one node");
    }

    #[test]
    fn requests_answered_as_vsf_quorum() {
        let mut vq = Votequorum::new(config(3, false), 1);
        vq.activate(&[1, 2, 3], ring(0x10));
        let mut conn = QuorumConn::default();
        let ask = |r: QuorumRequest<'_>, conn: &mut QuorumConn| {
            let mut b = Vec::new();
            r.emit(&mut b);
            reply(&b, &vq, conn).unwrap()
        };
        let r = ask(QuorumRequest::GetType, &mut conn);
        assert_eq!(
            QuorumResponse::parse(&r.response).unwrap(),
            QuorumResponse::GetType {
                header: totem_wire::ipc::ResponseHeader {
                    id: 4,
                    size: 32,
                    error: CsError::Ok
                },
                quorum_type: 1
            }
        );
        let r = ask(QuorumRequest::TrackStart { track_flags: 1 }, &mut conn);
        assert_eq!(r.events.len(), 1);
        let n = QuorumNotification::parse(&r.events[0]).unwrap();
        assert_eq!(
            (n.quorate, n.ring_seq, n.view_list),
            (1, 0x10, vec![1, 2, 3])
        );
        assert!(!conn.tracking, "CS_TRACK_CURRENT alone does not track");
        ask(QuorumRequest::TrackStart { track_flags: 2 }, &mut conn);
        let r = ask(QuorumRequest::TrackStart { track_flags: 2 }, &mut conn);
        let h = QuorumResponse::parse(&r.response).unwrap();
        assert!(matches!(h, QuorumResponse::Status { header } if header.error == CsError::Exist));
        ask(QuorumRequest::TrackStop, &mut conn);
        assert!(!conn.tracking);
        let r = ask(QuorumRequest::ModelGetType { model: 1 }, &mut conn);
        assert!(matches!(
            QuorumResponse::parse(&r.response).unwrap(),
            QuorumResponse::GetType { header, .. } if header.error == CsError::NotSupported
        ));
        assert!(reply(&[0; 8], &vq, &mut conn).is_err());
    }

    /// Peer input never panics: random requests (valid headers, random bodies) to the
    /// three services' handlers.
    #[test]
    fn arbitrary_requests_never_panic() {
        let mut vq = Votequorum::new(config(3, false), 1);
        vq.activate(&[1, 2], ring(4));
        let keys = crate::cmap::Keys::default();
        let (mut q, mut v, mut c) = (
            QuorumConn::default(),
            crate::votequorum::VotequorumConn::default(),
            crate::cmap::CmapConn::default(),
        );
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = 16 + (next() % 300) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            b[0..4].copy_from_slice(&((next() % 12) as i32 - 1).to_le_bytes());
            b[8..12].copy_from_slice(&(len as i32).to_le_bytes());
            let _ = reply(&b, &vq, &mut q);
            let _ = crate::votequorum::reply(&b, &vq, &mut v);
            let _ = crate::cmap::reply(&b, &keys, &mut c);
        }
    }
}
