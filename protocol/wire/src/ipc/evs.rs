//! The `evs` service's IPC between our libevs and totemd: **our layout, not corosync 3.1.7's**
//! (corosync 3 has no EVS). It is the shape corosync 1.99.x gave 1.4's EVS on libqb
//! (docs/evs.md §3.1: service name `"evs"`, libqb's headers with `id` @0), with 1.4's request
//! and response ids and bodies (`include/corosync/ipc_evs.h`, docs/evs.md §3.2), and three
//! changes that only our two ends see (docs/evs.md §9):
//!
//! * every request starts with the 16-byte request header (1.4 began four of them with a
//!   response header whose `error` was garbage);
//! * MEMBERSHIP_GET's reply and CONFCHG carry as many nodeids as there are, not 384-entry
//!   arrays full of earlier configurations' leftovers;
//! * CONFCHG carries its kind (transitional or regular) and its ring id, which 1.4 dropped
//!   (EVS-CODE-3) although its `evs_confchg_fn_t` has a `ring_id` argument.
//!
//! Host order (little-endian here, as every IPC codec of this crate), fields of 8 bytes
//! where 1.4 has `size_t`:
//!
//! ```text
//! req  JOIN (0) / LEAVE (1)     header(16) group_entries u64 @16, groups @24         24 + 32n
//! req  MCAST_JOINED (2)         header(16) guarantee u32 (+4) @16, msg_len u64 @24,
//!                               message @32                                          32 + len
//! req  MCAST_GROUPS (3)         header(16) guarantee u32 (+4) @16, msg_len u64 @24,
//!                               group_entries u64 @32, groups @40, message          40 + 32n + len
//! req  MEMBERSHIP_GET (4)       header(16)                                           16
//! res  JOIN 2 / LEAVE 3 / MCAST_JOINED 4 / MCAST_GROUPS 5: header(24)               24
//! res  MEMBERSHIP_GET (6)       header(24) local_nodeid u32 (+4) @24,
//!                               member_list_entries u64 @32, member_list u32[n] @40  40 + 4n
//! evt  DELIVER (0)              header(24) nodeid u32 (+4) @24 (the sender; 1.4 calls it
//!                               local_nodeid), msg_len u64 @32, message @40          40 + len
//! evt  CONFCHG (1)              header(24) kind u32 (+4) @24 (0 transitional, 1 regular),
//!                               ring_id {nodeid u32 (+4) @32, seq u64 @40},
//!                               member/left/joined entries u64 @48/@56/@64,
//!                               then the three u32 lists back to back @72   72 + 4(m + l + j)
//! ```
//!
//! Every count is bounded before it is trusted: groups by what the message holds and by
//! [`EVS_IPC_GROUPS_MAX`], member lists by [`EVS_MEMBERS_MAX`], lengths exactly against the
//! bytes present.

use crate::codec::{Decoder, Encoder};
use crate::error::{ErrorKind, Result};
use crate::exec::evs::{EvsGroup, EVS_GROUP_LEN};
use crate::ipc::{
    decoder, emit_u32_slot, finish, request_header, response_header, u32_slot, unexpected_id,
    CsError, RequestHeader, ResponseHeader, IPC_MAX_MSG_LEN, REQUEST_HEADER_LEN,
    RESPONSE_HEADER_LEN,
};
use crate::macros::open_enum;
use crate::ByteOrder;

/// The service name libevs connects to (1.99.x's `qb_ipcc_connect("evs", ...)`).
pub const EVS_IPC_SERVICE: &str = "evs";
/// Most nodeids in any list: `PROCESSOR_COUNT_MAX` (corosync's member arrays, 1.4 and 3.x).
pub const EVS_MEMBERS_MAX: usize = 384;
/// Most group keys one request may carry: as many as fit in one IPC message.
pub const EVS_IPC_GROUPS_MAX: u64 = (IPC_MAX_MSG_LEN / EVS_GROUP_LEN) as u64;
/// Size of MCAST_JOINED before its message.
pub const MCAST_JOINED_FIXED_LEN: usize = 32;
/// Size of MCAST_GROUPS before its group keys.
pub const MCAST_GROUPS_FIXED_LEN: usize = 40;
/// Size of DELIVER before its message.
pub const DELIVER_FIXED_LEN: usize = 40;
/// Size of CONFCHG before its lists.
pub const CONFCHG_FIXED_LEN: usize = 72;
/// Size of MEMBERSHIP_GET's reply before its list.
pub const MEMBERSHIP_FIXED_LEN: usize = 40;

open_enum! {
    /// Request ids (`enum req_lib_evs_types`, 1.4).
    pub enum EvsRequestId(i32) {
        /// `MESSAGE_REQ_EVS_JOIN`.
        Join = 0 => "JOIN",
        /// `MESSAGE_REQ_EVS_LEAVE`.
        Leave = 1 => "LEAVE",
        /// `MESSAGE_REQ_EVS_MCAST_JOINED`.
        McastJoined = 2 => "MCAST_JOINED",
        /// `MESSAGE_REQ_EVS_MCAST_GROUPS`.
        McastGroups = 3 => "MCAST_GROUPS",
        /// `MESSAGE_REQ_EVS_MEMBERSHIP_GET`.
        MembershipGet = 4 => "MEMBERSHIP_GET",
    }
}

open_enum! {
    /// Response and event ids (`enum res_lib_evs_types`, 1.4).
    pub enum EvsResponseId(i32) {
        /// `MESSAGE_RES_EVS_DELIVER_CALLBACK` (event).
        Deliver = 0 => "DELIVER_CALLBACK",
        /// `MESSAGE_RES_EVS_CONFCHG_CALLBACK` (event).
        Confchg = 1 => "CONFCHG_CALLBACK",
        /// `MESSAGE_RES_EVS_JOIN`.
        Join = 2 => "JOIN",
        /// `MESSAGE_RES_EVS_LEAVE`.
        Leave = 3 => "LEAVE",
        /// `MESSAGE_RES_EVS_MCAST_JOINED`.
        McastJoined = 4 => "MCAST_JOINED",
        /// `MESSAGE_RES_EVS_MCAST_GROUPS`.
        McastGroups = 5 => "MCAST_GROUPS",
        /// `MESSAGE_RES_EVS_MEMBERSHIP_GET`.
        MembershipGet = 6 => "MEMBERSHIP_GET",
    }
}

impl EvsRequestId {
    /// The id of the response this request gets.
    pub fn response(self) -> EvsResponseId {
        match self {
            EvsRequestId::Join => EvsResponseId::Join,
            EvsRequestId::Leave => EvsResponseId::Leave,
            EvsRequestId::McastJoined => EvsResponseId::McastJoined,
            EvsRequestId::McastGroups => EvsResponseId::McastGroups,
            EvsRequestId::MembershipGet => EvsResponseId::MembershipGet,
            // An unknown request is answered with the glue's id 0 (as corosync's IPC glue).
            EvsRequestId::Unknown(_) => EvsResponseId::Deliver,
        }
    }
}

/// One request of libevs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsRequest<'a> {
    /// `evs_join`.
    Join {
        /// The keys, in the caller's order.
        groups: Vec<EvsGroup>,
    },
    /// `evs_leave`.
    Leave {
        /// The keys, in the caller's order.
        groups: Vec<EvsGroup>,
    },
    /// `evs_mcast_joined`.
    McastJoined {
        /// `evs_guarantee_t` as the caller passed it (never read, EVS-MJ-4).
        guarantee: u32,
        /// The message (the caller's iovecs, gathered).
        data: &'a [u8],
    },
    /// `evs_mcast_groups`.
    McastGroups {
        /// `evs_guarantee_t` as passed (never read).
        guarantee: u32,
        /// The target keys, as given.
        groups: Vec<EvsGroup>,
        /// The message.
        data: &'a [u8],
    },
    /// `evs_membership_get`.
    MembershipGet,
    /// Any other id (answered CS_ERR_INVALID_PARAM).
    Unknown {
        /// Header.
        header: RequestHeader,
        /// Everything after it.
        body: &'a [u8],
    },
}

fn groups(d: &mut Decoder<'_>, count: u64, at: usize) -> Result<Vec<EvsGroup>> {
    let n = d.bounded_count(
        "group_entries",
        count,
        EVS_IPC_GROUPS_MAX,
        EVS_GROUP_LEN,
        at,
    )?;
    (0..n).map(|_| d.array::<EVS_GROUP_LEN>("group")).collect()
}

/// The rest of the message, which must be exactly `len` bytes (declared at `at`).
fn message<'a>(d: &mut Decoder<'a>, len: u64, at: usize) -> Result<&'a [u8]> {
    if len != d.remaining() as u64 {
        return Err(d.error_at(
            at,
            ErrorKind::LengthMismatch {
                field: "msg_len",
                declared: len,
                actual: d.remaining() as u64,
            },
        ));
    }
    Ok(d.take_rest())
}

impl<'a> EvsRequest<'a> {
    /// Parses one request; its `size` must be the bytes given, every count must fit them.
    pub fn parse(bytes: &'a [u8]) -> Result<EvsRequest<'a>> {
        let mut d = decoder(bytes);
        let header = request_header(&mut d, bytes.len())?;
        let request = match EvsRequestId::from(header.id) {
            id @ (EvsRequestId::Join | EvsRequestId::Leave) => {
                let at = d.offset();
                let count = d.u64("group_entries")?;
                let groups = groups(&mut d, count, at)?;
                if id == EvsRequestId::Join {
                    EvsRequest::Join { groups }
                } else {
                    EvsRequest::Leave { groups }
                }
            }
            EvsRequestId::McastJoined => {
                let guarantee = u32_slot(&mut d, "guarantee")?;
                let at = d.offset();
                let len = d.u64("msg_len")?;
                EvsRequest::McastJoined {
                    guarantee,
                    data: message(&mut d, len, at)?,
                }
            }
            EvsRequestId::McastGroups => {
                let guarantee = u32_slot(&mut d, "guarantee")?;
                let len_at = d.offset();
                let len = d.u64("msg_len")?;
                let at = d.offset();
                let count = d.u64("group_entries")?;
                let groups = groups(&mut d, count, at)?;
                EvsRequest::McastGroups {
                    guarantee,
                    groups,
                    data: message(&mut d, len, len_at)?,
                }
            }
            EvsRequestId::MembershipGet => EvsRequest::MembershipGet,
            EvsRequestId::Unknown(_) => EvsRequest::Unknown {
                header,
                body: d.take_rest(),
            },
        };
        finish(&d, "request")?;
        Ok(request)
    }

    /// The request's id.
    pub fn id(&self) -> EvsRequestId {
        match self {
            EvsRequest::Join { .. } => EvsRequestId::Join,
            EvsRequest::Leave { .. } => EvsRequestId::Leave,
            EvsRequest::McastJoined { .. } => EvsRequestId::McastJoined,
            EvsRequest::McastGroups { .. } => EvsRequestId::McastGroups,
            EvsRequest::MembershipGet => EvsRequestId::MembershipGet,
            EvsRequest::Unknown { header, .. } => EvsRequestId::from(header.id),
        }
    }

    /// Bytes [`EvsRequest::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            EvsRequest::Join { groups } | EvsRequest::Leave { groups } => {
                24 + EVS_GROUP_LEN * groups.len()
            }
            EvsRequest::McastJoined { data, .. } => MCAST_JOINED_FIXED_LEN + data.len(),
            EvsRequest::McastGroups { groups, data, .. } => {
                MCAST_GROUPS_FIXED_LEN + EVS_GROUP_LEN * groups.len() + data.len()
            }
            EvsRequest::MembershipGet => REQUEST_HEADER_LEN,
            EvsRequest::Unknown { body, .. } => REQUEST_HEADER_LEN + body.len(),
        }
    }

    /// Appends the request as libevs builds it.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let size = self.buffer_len() as i32;
        let mut e = Encoder::new(out, ByteOrder::Little);
        RequestHeader {
            id: self.id().into(),
            size,
        }
        .emit(&mut e);
        match self {
            EvsRequest::Join { groups } | EvsRequest::Leave { groups } => {
                e.u64(groups.len() as u64);
                groups.iter().for_each(|g| e.bytes(g));
            }
            EvsRequest::McastJoined { guarantee, data } => {
                emit_u32_slot(&mut e, *guarantee);
                e.u64(data.len() as u64);
                e.bytes(data);
            }
            EvsRequest::McastGroups {
                guarantee,
                groups,
                data,
            } => {
                emit_u32_slot(&mut e, *guarantee);
                e.u64(data.len() as u64);
                e.u64(groups.len() as u64);
                groups.iter().for_each(|g| e.bytes(g));
                e.bytes(data);
            }
            EvsRequest::MembershipGet => {}
            EvsRequest::Unknown { body, .. } => e.bytes(body),
        }
    }

    /// The request as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

/// One response of the evs service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsResponse {
    /// A bare header: JOIN, LEAVE, MCAST_JOINED, MCAST_GROUPS, and any call's refusal.
    Status {
        /// Header.
        header: ResponseHeader,
    },
    /// `res_lib_evs_membership_get`.
    MembershipGet {
        /// Header.
        header: ResponseHeader,
        /// This node's nodeid.
        local_nodeid: u32,
        /// The members of the last configuration, in totem's order.
        members: Vec<u32>,
    },
}

impl EvsResponse {
    /// A bare response of `id` and `error`.
    pub fn status(id: EvsResponseId, error: CsError) -> EvsResponse {
        EvsResponse::Status {
            header: ResponseHeader {
                id: id.into(),
                size: RESPONSE_HEADER_LEN as i32,
                error,
            },
        }
    }

    /// MEMBERSHIP_GET's answer (at most [`EVS_MEMBERS_MAX`] members are written).
    pub fn membership(local_nodeid: u32, members: Vec<u32>) -> EvsResponse {
        EvsResponse::MembershipGet {
            header: ResponseHeader {
                id: EvsResponseId::MembershipGet.into(),
                size: (MEMBERSHIP_FIXED_LEN + 4 * members.len().min(EVS_MEMBERS_MAX)) as i32,
                error: CsError::Ok,
            },
            local_nodeid,
            members,
        }
    }

    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        match self {
            EvsResponse::Status { header } | EvsResponse::MembershipGet { header, .. } => header,
        }
    }

    /// Parses one response.
    pub fn parse(bytes: &[u8]) -> Result<EvsResponse> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        let response = match (EvsResponseId::from(header.id), bytes.len()) {
            (_, RESPONSE_HEADER_LEN) => EvsResponse::Status { header },
            (EvsResponseId::MembershipGet, _) => {
                let local_nodeid = u32_slot(&mut d, "local_nodeid")?;
                let at = d.offset();
                let count = d.u64("member_list_entries")?;
                let n =
                    d.bounded_count("member_list_entries", count, EVS_MEMBERS_MAX as u64, 4, at)?;
                EvsResponse::MembershipGet {
                    header,
                    local_nodeid,
                    members: d.u32_list("member_list", n)?,
                }
            }
            (id, _) => return Err(unexpected_id(&d, i32::from(id))),
        };
        finish(&d, "response")?;
        Ok(response)
    }

    /// Appends the response; `size` is written as the bytes are.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Little);
        match self {
            EvsResponse::Status { header } => ResponseHeader {
                size: RESPONSE_HEADER_LEN as i32,
                ..*header
            }
            .emit(&mut e),
            EvsResponse::MembershipGet {
                header,
                local_nodeid,
                members,
            } => {
                let members = &members[..members.len().min(EVS_MEMBERS_MAX)];
                ResponseHeader {
                    size: (MEMBERSHIP_FIXED_LEN + 4 * members.len()) as i32,
                    ..*header
                }
                .emit(&mut e);
                emit_u32_slot(&mut e, *local_nodeid);
                e.u64(members.len() as u64);
                members.iter().for_each(|m| e.u32(*m));
            }
        }
    }

    /// The response as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

/// A configuration's kind, as CONFCHG carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvsConfchgKind {
    /// The transitional configuration (survivors of the old ring).
    Transitional,
    /// The regular configuration (the new ring).
    Regular,
}

/// One event of the evs service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsIpcEvent<'a> {
    /// `res_evs_deliver_callback`.
    Deliver {
        /// The sender's nodeid.
        nodeid: u32,
        /// The message.
        data: &'a [u8],
    },
    /// `res_evs_confchg_callback`, with its kind and ring id (see the module doc).
    Confchg {
        /// Transitional or regular.
        kind: EvsConfchgKind,
        /// The ring's representative.
        ring_nodeid: u32,
        /// The ring's seq.
        ring_seq: u64,
        /// Members.
        members: Vec<u32>,
        /// Left (transitional).
        left: Vec<u32>,
        /// Joined (regular).
        joined: Vec<u32>,
    },
}

impl<'a> EvsIpcEvent<'a> {
    /// Parses one event.
    pub fn parse(bytes: &'a [u8]) -> Result<EvsIpcEvent<'a>> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        let event = match EvsResponseId::from(header.id) {
            EvsResponseId::Deliver => {
                let nodeid = u32_slot(&mut d, "nodeid")?;
                let at = d.offset();
                let len = d.u64("msg_len")?;
                EvsIpcEvent::Deliver {
                    nodeid,
                    data: message(&mut d, len, at)?,
                }
            }
            EvsResponseId::Confchg => {
                let kind_at = d.offset();
                let kind = match u32_slot(&mut d, "kind")? {
                    0 => EvsConfchgKind::Transitional,
                    1 => EvsConfchgKind::Regular,
                    v => {
                        return Err(d.error_at(
                            kind_at,
                            ErrorKind::InvalidValue {
                                field: "kind",
                                value: v.into(),
                            },
                        ))
                    }
                };
                let ring_nodeid = u32_slot(&mut d, "ring_id.nodeid")?;
                let ring_seq = d.u64("ring_id.seq")?;
                let mut counts = [0usize; 3];
                for (count, field) in counts.iter_mut().zip([
                    "member_list_entries",
                    "left_list_entries",
                    "joined_list_entries",
                ]) {
                    let at = d.offset();
                    let n = d.u64(field)?;
                    // Bounded each, and together by the bytes left after the counts.
                    *count = d.bounded_count(field, n, EVS_MEMBERS_MAX as u64, 0, at)?;
                }
                let [m, l, j] = counts;
                let members = d.u32_list("member_list", m)?;
                let left = d.u32_list("left_list", l)?;
                let joined = d.u32_list("joined_list", j)?;
                EvsIpcEvent::Confchg {
                    kind,
                    ring_nodeid,
                    ring_seq,
                    members,
                    left,
                    joined,
                }
            }
            id => return Err(unexpected_id(&d, i32::from(id))),
        };
        finish(&d, "event")?;
        Ok(event)
    }

    /// Bytes [`EvsIpcEvent::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            EvsIpcEvent::Deliver { data, .. } => DELIVER_FIXED_LEN + data.len(),
            EvsIpcEvent::Confchg {
                members,
                left,
                joined,
                ..
            } => {
                let n = |l: &Vec<u32>| l.len().min(EVS_MEMBERS_MAX);
                CONFCHG_FIXED_LEN + 4 * (n(members) + n(left) + n(joined))
            }
        }
    }

    /// Appends the event (lists cut at [`EVS_MEMBERS_MAX`]).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let size = self.buffer_len() as i32;
        let mut e = Encoder::new(out, ByteOrder::Little);
        match self {
            EvsIpcEvent::Deliver { nodeid, data } => {
                ResponseHeader {
                    id: EvsResponseId::Deliver.into(),
                    size,
                    error: CsError::Ok,
                }
                .emit(&mut e);
                emit_u32_slot(&mut e, *nodeid);
                e.u64(data.len() as u64);
                e.bytes(data);
            }
            EvsIpcEvent::Confchg {
                kind,
                ring_nodeid,
                ring_seq,
                members,
                left,
                joined,
            } => {
                ResponseHeader {
                    id: EvsResponseId::Confchg.into(),
                    size,
                    error: CsError::Ok,
                }
                .emit(&mut e);
                emit_u32_slot(
                    &mut e,
                    match kind {
                        EvsConfchgKind::Transitional => 0,
                        EvsConfchgKind::Regular => 1,
                    },
                );
                emit_u32_slot(&mut e, *ring_nodeid);
                e.u64(*ring_seq);
                let lists = [members, left, joined].map(|l| &l[..l.len().min(EVS_MEMBERS_MAX)]);
                for l in lists {
                    e.u64(l.len() as u64);
                }
                for l in lists {
                    l.iter().for_each(|v| e.u32(*v));
                }
            }
        }
    }

    /// The event as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &[u8]) -> EvsGroup {
        let mut k = [0u8; EVS_GROUP_LEN];
        k[..name.len()].copy_from_slice(name);
        k
    }

    #[test]
    fn requests_round_trip_with_the_documented_sizes() {
        let data = b"hello";
        let cases = [
            (
                EvsRequest::Join {
                    groups: vec![key(b"key1"), key(b"key2")],
                },
                24 + 64,
            ),
            (
                EvsRequest::Leave {
                    groups: vec![key(b"key1")],
                },
                24 + 32,
            ),
            (EvsRequest::McastJoined { guarantee: 2, data }, 32 + 5),
            (
                EvsRequest::McastGroups {
                    guarantee: 99,
                    groups: vec![key(b"key2")],
                    data,
                },
                40 + 32 + 5,
            ),
            (EvsRequest::MembershipGet, 16),
        ];
        for (request, size) in cases {
            let bytes = request.to_bytes();
            assert_eq!(bytes.len(), size, "{request:?}");
            assert_eq!(RequestHeader::peek(&bytes).unwrap().size as usize, size);
            assert_eq!(EvsRequest::parse(&bytes).unwrap(), request);
        }
    }

    #[test]
    fn request_counts_are_checked_against_the_bytes() {
        let mut bytes = EvsRequest::Join {
            groups: vec![key(b"a")],
        }
        .to_bytes();
        bytes[16] = 2; // group_entries says 2, one key present
        assert!(EvsRequest::parse(&bytes).is_err());
        let mut bytes = EvsRequest::McastGroups {
            guarantee: 0,
            groups: vec![key(b"a")],
            data: b"xyz",
        }
        .to_bytes();
        bytes[24] = 4; // msg_len 4, 3 present
        assert!(EvsRequest::parse(&bytes).is_err());
        bytes[24] = 3;
        bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(EvsRequest::parse(&bytes).is_err());
    }

    #[test]
    fn responses_and_events_round_trip() {
        let r = EvsResponse::membership(2, vec![1, 2, 3]);
        let bytes = r.to_bytes();
        assert_eq!(bytes.len(), 40 + 12);
        assert_eq!(EvsResponse::parse(&bytes).unwrap(), r);
        let s = EvsResponse::status(EvsResponseId::Leave, CsError::NotExist);
        assert_eq!(EvsResponse::parse(&s.to_bytes()).unwrap(), s);

        let d = EvsIpcEvent::Deliver {
            nodeid: 3,
            data: b"msg",
        };
        assert_eq!(d.to_bytes().len(), 43);
        assert_eq!(EvsIpcEvent::parse(&d.to_bytes()).unwrap(), d);
        let c = EvsIpcEvent::Confchg {
            kind: EvsConfchgKind::Transitional,
            ring_nodeid: 1,
            ring_seq: 12,
            members: vec![1, 2],
            left: vec![3],
            joined: vec![],
        };
        let bytes = c.to_bytes();
        assert_eq!(bytes.len(), 72 + 12);
        assert_eq!(EvsIpcEvent::parse(&bytes).unwrap(), c);
    }

    #[test]
    fn confchg_counts_are_bounded() {
        let c = EvsIpcEvent::Confchg {
            kind: EvsConfchgKind::Regular,
            ring_nodeid: 1,
            ring_seq: 4,
            members: vec![1],
            left: vec![],
            joined: vec![1],
        };
        let mut bytes = c.to_bytes();
        bytes[48..56].copy_from_slice(&1000u64.to_le_bytes());
        assert!(EvsIpcEvent::parse(&bytes).is_err());
        let mut bytes = c.to_bytes();
        bytes[24] = 7; // no such kind
        assert!(EvsIpcEvent::parse(&bytes).is_err());
    }
}
