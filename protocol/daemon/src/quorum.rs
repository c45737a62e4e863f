//! The `quorum` service (`exec/vsf_quorum.c`) that libquorum talks to: `corosync-quorumtool`
//! (GETTYPE in `quorum_initialize`, GETQUORATE, TRACKSTART(CS_TRACK_CURRENT), one
//! NOTIFICATION, TRACKSTOP), Pacemaker (model v0, tracking changes) and dlm_controld
//! (`quorum_model_initialize(QUORUM_MODEL_V1)`: the v1 quorum notification carries the whole
//! ring id, and a v1 NODELIST notification with the sync's members, joined and left comes
//! at TRACKSTART and at the end of every sync). The answers come from votequorum's state
//! ([`totem_votequorum::Votequorum`], the protocol crate that the simulator runs too); this
//! module is only its IPC face.

use totem_votequorum::Votequorum;
use totem_wire::ipc::quorum::{
    QuorumNotification, QuorumRequest, QuorumResponse, QuorumResponseId, QuorumRingId,
    V1NodelistNotification, V1QuorumNotification,
};
use totem_wire::ipc::CsError;

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

/// `res_lib_quorum_notification`'s content: the quorum service's view.
pub fn notification(vq: &Votequorum) -> QuorumNotification {
    QuorumNotification {
        quorate: i32::from(vq.view.quorate),
        ring_seq: vq.view.ring.seq,
        view_list: vq.view.members.clone(),
    }
}

/// What one quorum connection asked for (`struct quorum_pd`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumConn {
    /// TRACKSTART with CS_TRACK_CHANGES or CHANGES_ONLY, not stopped since.
    pub tracking: bool,
    /// `LIB_QUORUM_MODEL_V1` (MODEL_GETTYPE asked for it); v0 otherwise.
    pub v1: bool,
}

/// The last sync's ring and members (`last_sync_ring_id`, `my_member_list`) and who
/// joined and left in it, for the v1 NODELIST notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncView {
    /// `last_sync_ring_id`.
    pub ring_id: QuorumRingId,
    /// `my_member_list`.
    pub members: Vec<u32>,
    /// `my_joined_list`.
    pub joined: Vec<u32>,
    /// `my_left_list`.
    pub left: Vec<u32>,
}

/// The v1 NODELIST event (`send_nodelist_library_notification`): with the joined and left
/// lists at the end of a sync, without them at TRACKSTART.
pub fn nodelist_event(sync: &SyncView, with_changes: bool) -> Vec<u8> {
    let mut out = Vec::new();
    V1NodelistNotification {
        ring_id: sync.ring_id,
        members: sync.members.clone(),
        joined: if with_changes {
            sync.joined.clone()
        } else {
            Vec::new()
        },
        left: if with_changes {
            sync.left.clone()
        } else {
            Vec::new()
        },
    }
    .emit(&mut out);
    out
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

/// The quorum event for the current view in the connection's model
/// (`send_library_notification`).
pub fn notification_event(vq: &Votequorum, v1: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if v1 {
        V1QuorumNotification {
            quorate: i32::from(vq.view.quorate),
            ring_id: QuorumRingId {
                nodeid: vq.view.ring.rep,
                seq: vq.view.ring.seq,
            },
            view_list: vq.view.members.clone(),
        }
        .emit(&mut out);
    } else {
        notification(vq).emit(&mut out);
    }
    out
}

/// The response to one quorum request; `Err` for a malformed one (the client is then
/// disconnected).
pub fn reply(
    request: &[u8],
    vq: &Votequorum,
    sync: &SyncView,
    conn: &mut QuorumConn,
) -> Result<Reply, String> {
    let request = QuorumRequest::parse(request).map_err(|e| e.to_string())?;
    let quorum_type = u32::from(vq.config().provider);
    let header = |id: QuorumResponseId, error| totem_wire::ipc::ResponseHeader {
        id: id.into(),
        size: 0,
        error,
    };
    Ok(match request {
        // message_handler_req_lib_quorum_getquorate.
        QuorumRequest::GetQuorate => Reply::of(emit(QuorumResponse::GetQuorate {
            header: header(QuorumResponseId::GetQuorate, CsError::Ok),
            quorate: u32::from(vq.view.quorate),
        })),
        // message_handler_req_lib_quorum_trackstart: the current view first (the v1
        // nodelist notification, without joined and left, to v1 connections only).
        QuorumRequest::TrackStart { track_flags } => {
            let mut events = Vec::new();
            if track_flags & (TRACK_CURRENT | TRACK_CHANGES) != 0 {
                if conn.v1 {
                    events.push(nodelist_event(sync, false));
                }
                events.push(notification_event(vq, conn.v1));
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
        // message_handler_req_lib_quorum_model_gettype: the model is the connection's
        // from now on.
        QuorumRequest::ModelGetType { model } => {
            let error = match model {
                0 | 1 => {
                    conn.v1 = model == 1;
                    CsError::Ok
                }
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
    use totem_votequorum::testing::{config, Cluster};

    #[test]
    fn requests_answered_as_vsf_quorum() {
        let mut c = Cluster::default();
        for n in 1..=3 {
            c.start(n, config(3, false));
        }
        for _ in 0..3 {
            c.ring(&[1, 2, 3]);
        }
        let vq = c.node(1).clone();
        let mut conn = QuorumConn::default();
        let ask = |r: QuorumRequest<'_>, conn: &mut QuorumConn| {
            let mut b = Vec::new();
            r.emit(&mut b);
            reply(&b, &vq, &SyncView::default(), conn).unwrap()
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
        assert_eq!((n.quorate, n.ring_seq, n.view_list), (1, 12, vec![1, 2, 3]));
        assert!(!conn.tracking, "CS_TRACK_CURRENT alone does not track");
        ask(QuorumRequest::TrackStart { track_flags: 2 }, &mut conn);
        let r = ask(QuorumRequest::TrackStart { track_flags: 2 }, &mut conn);
        let h = QuorumResponse::parse(&r.response).unwrap();
        assert!(matches!(h, QuorumResponse::Status { header } if header.error == CsError::Exist));
        ask(QuorumRequest::TrackStop, &mut conn);
        assert!(!conn.tracking);
        let r = ask(QuorumRequest::ModelGetType { model: 2 }, &mut conn);
        assert!(matches!(
            QuorumResponse::parse(&r.response).unwrap(),
            QuorumResponse::GetType { header, .. } if header.error == CsError::InvalidParam
        ));
        // Model v1 (dlm_controld): the nodelist, then the v1 quorum event with the ring id.
        let r = ask(QuorumRequest::ModelGetType { model: 1 }, &mut conn);
        assert!(matches!(
            QuorumResponse::parse(&r.response).unwrap(),
            QuorumResponse::GetType { header, quorum_type: 1 } if header.error == CsError::Ok
        ));
        assert!(conn.v1);
        let sync = SyncView {
            ring_id: QuorumRingId { nodeid: 1, seq: 12 },
            members: vec![1, 2, 3],
            joined: vec![3],
            left: vec![],
        };
        let mut b = Vec::new();
        QuorumRequest::TrackStart { track_flags: 1 }.emit(&mut b);
        let r = reply(&b, &vq, &sync, &mut conn).unwrap();
        assert_eq!(r.events.len(), 2);
        let nl = V1NodelistNotification::parse(&r.events[0]).unwrap();
        assert_eq!((nl.members, nl.joined), (vec![1, 2, 3], vec![]));
        let q = V1QuorumNotification::parse(&r.events[1]).unwrap();
        assert_eq!(
            (q.quorate, q.ring_id.seq, q.view_list),
            (1, 12, vec![1, 2, 3])
        );
        assert!(reply(&[0; 8], &vq, &sync, &mut conn).is_err());
    }

    /// Peer input never panics: random requests (valid headers, random bodies) to the
    /// three services' handlers.
    #[test]
    fn arbitrary_requests_never_panic() {
        let mut c = Cluster::default();
        for n in 1..=3 {
            c.start(n, config(3, false));
        }
        c.ring(&[1, 2]);
        let vq = c.node(1).clone();
        let mut vq_w = vq.clone();
        let mut keys = crate::cmap::Icmap::new();
        let (mut q, mut v, mut c) = (
            QuorumConn::default(),
            crate::votequorum::VotequorumConn::default(),
            crate::cmap::CmapConn::new(1),
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
            let _ = reply(&b, &vq, &SyncView::default(), &mut q);
            let _ = crate::votequorum::reply(&b, &mut vq_w, &mut v, &mut Vec::new());
            let _ = crate::cmap::reply(&b, &mut keys, &mut c);
        }
    }
}
