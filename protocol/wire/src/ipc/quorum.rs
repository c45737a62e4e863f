//! The `quorum` service's IPC between libquorum and corosync (corosync 3.1.7
//! `include/corosync/ipc_quorum.h`, `lib/quorum.c`, `exec/vsf_quorum.c`). Host order, every
//! field in an 8-byte slot where the header says `aligned(8)`:
//!
//! ```text
//! req  GETQUORATE / TRACKSTOP / GETTYPE  header(16)                                   16
//! req  TRACKSTART                        header(16) track_flags u32 (+4)              24
//! req  MODEL_GETTYPE                     header(16) model u32 (+4)                    24
//! res  TRACKSTART / TRACKSTOP            header(24)                                   24
//! res  GETQUORATE                        header(24) quorate u32 (+4)                  32
//! res  GETTYPE / MODEL_GETTYPE           header(24) quorum_type u32 (+4)              32
//! evt  NOTIFICATION (model v0)           header(24) quorate i32 (+4) ring_seq u64
//!                                        view_list_entries u32 @40, view_list @44,
//!                                        4 trailing bytes (sizeof is 48)           48 + 4n
//! evt  V1_QUORUM_NOTIFICATION            header(24) quorate i32 (+4)
//!                                        ring_id {nodeid u32 (+4), seq u64} @32,
//!                                        view_list_entries u32 @48, view_list @52,
//!                                        4 trailing bytes (sizeof is 56)           56 + 4n
//! evt  V1_NODELIST_NOTIFICATION          header(24) ring_id @24, member, joined and
//!                                        left counts @40/@48/@56, then the three
//!                                        lists from @60, 4 trailing bytes
//!                                        (sizeof is 64)                  64 + 4(m+j+l)
//! ```
//!
//! (The v1 offsets were checked with gcc against 3.1.7's `ipc_quorum.h`.)

use crate::codec::Encoder;
use crate::error::Result;
use crate::ipc::{
    decoder, emit_u32_slot, finish, request_header, response_header, u32_slot, unexpected_id,
    CsError, RequestHeader, ResponseHeader,
};
use crate::macros::open_enum;
use crate::ByteOrder;

/// `PROCESSOR_COUNT_MAX` (corodefs.h): `quorum_view_list`'s size in `exec/vsf_quorum.c`.
pub const VIEW_LIST_MAX: usize = 384;
/// `sizeof(struct res_lib_quorum_notification)`; the view list starts 4 bytes earlier.
pub const NOTIFICATION_FIXED_LEN: usize = 48;
/// Where the view list starts in a NOTIFICATION.
pub const NOTIFICATION_LIST_OFFSET: usize = 44;

open_enum! {
    /// Request ids (`enum req_quorum_types`).
    pub enum QuorumRequestId(i32) {
        /// `MESSAGE_REQ_QUORUM_GETQUORATE`.
        GetQuorate = 0 => "GETQUORATE",
        /// `MESSAGE_REQ_QUORUM_TRACKSTART`.
        TrackStart = 1 => "TRACKSTART",
        /// `MESSAGE_REQ_QUORUM_TRACKSTOP`.
        TrackStop = 2 => "TRACKSTOP",
        /// `MESSAGE_REQ_QUORUM_GETTYPE`.
        GetType = 3 => "GETTYPE",
        /// `MESSAGE_REQ_QUORUM_MODEL_GETTYPE`.
        ModelGetType = 4 => "MODEL_GETTYPE",
    }
}

open_enum! {
    /// Response and event ids (`enum res_quorum_types`).
    pub enum QuorumResponseId(i32) {
        /// `MESSAGE_RES_QUORUM_GETQUORATE`.
        GetQuorate = 0 => "GETQUORATE",
        /// `MESSAGE_RES_QUORUM_TRACKSTART`.
        TrackStart = 1 => "TRACKSTART",
        /// `MESSAGE_RES_QUORUM_TRACKSTOP`.
        TrackStop = 2 => "TRACKSTOP",
        /// `MESSAGE_RES_QUORUM_NOTIFICATION` (event).
        Notification = 3 => "NOTIFICATION",
        /// `MESSAGE_RES_QUORUM_GETTYPE`.
        GetType = 4 => "GETTYPE",
        /// `MESSAGE_RES_QUORUM_MODEL_GETTYPE`.
        ModelGetType = 5 => "MODEL_GETTYPE",
        /// `MESSAGE_RES_QUORUM_V1_QUORUM_NOTIFICATION` (event).
        V1QuorumNotification = 6 => "V1_QUORUM_NOTIFICATION",
        /// `MESSAGE_RES_QUORUM_V1_NODELIST_NOTIFICATION` (event).
        V1NodelistNotification = 7 => "V1_NODELIST_NOTIFICATION",
    }
}

/// One request of libquorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumRequest<'a> {
    /// `quorum_getquorate`.
    GetQuorate,
    /// `quorum_trackstart`.
    TrackStart {
        /// `CS_TRACK_CURRENT` (1), `CS_TRACK_CHANGES` (2), `CS_TRACK_CHANGES_ONLY` (4).
        track_flags: u32,
    },
    /// `quorum_trackstop`.
    TrackStop,
    /// `quorum_initialize` (model v0).
    GetType,
    /// `quorum_model_initialize`.
    ModelGetType {
        /// `LIB_QUORUM_MODEL_V0` (0) or `_V1` (1).
        model: u32,
    },
    /// Any other id (corosync answers CS_ERR_INVALID_PARAM).
    Unknown {
        /// Header.
        header: RequestHeader,
        /// Everything after it.
        body: &'a [u8],
    },
}

impl<'a> QuorumRequest<'a> {
    /// Parses one request; a known id must come with exactly its struct's size.
    pub fn parse(bytes: &'a [u8]) -> Result<QuorumRequest<'a>> {
        let mut d = decoder(bytes);
        let header = request_header(&mut d, bytes.len())?;
        let request = match QuorumRequestId::from(header.id) {
            QuorumRequestId::GetQuorate => QuorumRequest::GetQuorate,
            QuorumRequestId::TrackStop => QuorumRequest::TrackStop,
            QuorumRequestId::GetType => QuorumRequest::GetType,
            QuorumRequestId::TrackStart => QuorumRequest::TrackStart {
                track_flags: u32_slot(&mut d, "track_flags")?,
            },
            QuorumRequestId::ModelGetType => QuorumRequest::ModelGetType {
                model: u32_slot(&mut d, "model")?,
            },
            QuorumRequestId::Unknown(_) => QuorumRequest::Unknown {
                header,
                body: d.take_rest(),
            },
        };
        finish(&d, "request")?;
        Ok(request)
    }

    /// Appends the request as libquorum builds it.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let (id, body): (i32, Option<u32>) = match self {
            QuorumRequest::GetQuorate => (0, None),
            QuorumRequest::TrackStart { track_flags } => (1, Some(*track_flags)),
            QuorumRequest::TrackStop => (2, None),
            QuorumRequest::GetType => (3, None),
            QuorumRequest::ModelGetType { model } => (4, Some(*model)),
            QuorumRequest::Unknown { header, body } => {
                let mut e = Encoder::new(out, ByteOrder::Little);
                RequestHeader {
                    id: header.id,
                    size: (16 + body.len()) as i32,
                }
                .emit(&mut e);
                e.bytes(body);
                return;
            }
        };
        let mut e = Encoder::new(out, ByteOrder::Little);
        let size = if body.is_some() { 24 } else { 16 };
        RequestHeader { id, size }.emit(&mut e);
        if let Some(v) = body {
            emit_u32_slot(&mut e, v);
        }
    }
}

/// One response of the quorum service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumResponse {
    /// A bare header (TRACKSTART, TRACKSTOP, the glue's error reply).
    Status {
        /// Header.
        header: ResponseHeader,
    },
    /// `res_lib_quorum_getquorate`.
    GetQuorate {
        /// Header.
        header: ResponseHeader,
        /// `primary_designated`.
        quorate: u32,
    },
    /// `res_lib_quorum_gettype` and `res_lib_quorum_model_gettype` (same layout).
    GetType {
        /// Header (its id says which).
        header: ResponseHeader,
        /// 1 with a quorum provider (`QUORUM_SET`), 0 without (`QUORUM_FREE`).
        quorum_type: u32,
    },
}

impl QuorumResponse {
    /// A response of `id` and `error` with its struct's size filled in.
    pub fn status(id: QuorumResponseId, error: CsError) -> QuorumResponse {
        QuorumResponse::Status {
            header: ResponseHeader {
                id: id.into(),
                size: 24,
                error,
            },
        }
    }

    /// Parses one response.
    pub fn parse(bytes: &[u8]) -> Result<QuorumResponse> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        let response = match (QuorumResponseId::from(header.id), bytes.len()) {
            (_, 24) => QuorumResponse::Status { header },
            (QuorumResponseId::GetQuorate, _) => QuorumResponse::GetQuorate {
                header,
                quorate: u32_slot(&mut d, "quorate")?,
            },
            (QuorumResponseId::GetType | QuorumResponseId::ModelGetType, _) => {
                QuorumResponse::GetType {
                    header,
                    quorum_type: u32_slot(&mut d, "quorum_type")?,
                }
            }
            (id, _) => return Err(unexpected_id(&d, i32::from(id))),
        };
        finish(&d, "response")?;
        Ok(response)
    }

    /// Appends the response; `size` is written as the struct's.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Little);
        match self {
            QuorumResponse::Status { header } => ResponseHeader {
                size: 24,
                ..*header
            }
            .emit(&mut e),
            QuorumResponse::GetQuorate { header, quorate: v }
            | QuorumResponse::GetType {
                header,
                quorum_type: v,
            } => {
                ResponseHeader {
                    size: 32,
                    ..*header
                }
                .emit(&mut e);
                emit_u32_slot(&mut e, *v);
            }
        }
    }
}

/// A notification's `view_list_entries`, the list (bounded by [`VIEW_LIST_MAX`] and the
/// bytes present) and the struct's 4 trailing bytes: the tail of the v0 and v1 events.
fn parse_view_list(d: &mut crate::codec::Decoder<'_>) -> Result<Vec<u32>> {
    let at = d.offset();
    let count = d.u32("view_list_entries")?;
    let n = d.bounded_count(
        "view_list_entries",
        count.into(),
        VIEW_LIST_MAX as u64,
        4,
        at,
    )?;
    let view_list = d.u32_list("view_list", n)?;
    d.pad(4)?;
    Ok(view_list)
}

/// The tail [`parse_view_list`] reads.
fn emit_view_list(e: &mut Encoder<'_>, view_list: &[u32]) {
    e.u32(view_list.len() as u32);
    for v in view_list {
        e.u32(*v);
    }
    e.zeros(4);
}

/// `res_lib_quorum_notification`, the model-v0 event (`prepare_library_notification_v0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumNotification {
    /// `primary_designated`.
    pub quorate: i32,
    /// The ring's seq.
    pub ring_seq: u64,
    /// The quorum's members.
    pub view_list: Vec<u32>,
}

impl QuorumNotification {
    /// Parses one NOTIFICATION event.
    pub fn parse(bytes: &[u8]) -> Result<QuorumNotification> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        if QuorumResponseId::from(header.id) != QuorumResponseId::Notification {
            return Err(unexpected_id(&d, header.id));
        }
        let quorate = d.i32("quorate")?;
        d.pad(4)?;
        let ring_seq = d.u64("ring_seq")?;
        let view_list = parse_view_list(&mut d)?;
        finish(&d, "notification")?;
        Ok(QuorumNotification {
            quorate,
            ring_seq,
            view_list,
        })
    }

    /// Appends the event (`size` = sizeof + 4 × entries, as `send_library_notification`);
    /// at most [`VIEW_LIST_MAX`] entries.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let n = self.view_list.len().min(VIEW_LIST_MAX);
        let mut e = Encoder::new(out, ByteOrder::Little);
        ResponseHeader {
            id: QuorumResponseId::Notification.into(),
            size: (NOTIFICATION_FIXED_LEN + 4 * n) as i32,
            error: CsError::Ok,
        }
        .emit(&mut e);
        e.i32(self.quorate);
        e.zeros(4);
        e.u64(self.ring_seq);
        emit_view_list(&mut e, &self.view_list[..n]);
    }
}

/// `sizeof(struct res_lib_quorum_v1_quorum_notification)`.
pub const V1_NOTIFICATION_FIXED_LEN: usize = 56;
/// `sizeof(struct res_lib_quorum_v1_nodelist_notification)`.
pub const V1_NODELIST_FIXED_LEN: usize = 64;

/// `mar_quorum_ring_id_t`: nodeid and seq, each in an 8-byte slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumRingId {
    /// The ring's representative.
    pub nodeid: u32,
    /// Its seq.
    pub seq: u64,
}

fn emit_ring_id(e: &mut Encoder<'_>, r: QuorumRingId) {
    e.u32(r.nodeid);
    e.zeros(4);
    e.u64(r.seq);
}

fn parse_ring_id(d: &mut crate::codec::Decoder<'_>) -> Result<QuorumRingId> {
    let nodeid = d.u32("ring_id.nodeid")?;
    d.pad(4)?;
    let seq = d.u64("ring_id.seq")?;
    Ok(QuorumRingId { nodeid, seq })
}

/// `res_lib_quorum_v1_quorum_notification`, the model-v1 quorum event
/// (`prepare_library_notification_v1`): the ring id whole, not only its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1QuorumNotification {
    /// `primary_designated`.
    pub quorate: i32,
    /// `quorum_ring_id`.
    pub ring_id: QuorumRingId,
    /// The quorum's members.
    pub view_list: Vec<u32>,
}

impl V1QuorumNotification {
    /// Parses one V1_QUORUM_NOTIFICATION event.
    pub fn parse(bytes: &[u8]) -> Result<V1QuorumNotification> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        if QuorumResponseId::from(header.id) != QuorumResponseId::V1QuorumNotification {
            return Err(unexpected_id(&d, header.id));
        }
        let quorate = d.i32("quorate")?;
        d.pad(4)?;
        let ring_id = parse_ring_id(&mut d)?;
        let view_list = parse_view_list(&mut d)?;
        finish(&d, "v1 notification")?;
        Ok(V1QuorumNotification {
            quorate,
            ring_id,
            view_list,
        })
    }

    /// Appends the event; at most [`VIEW_LIST_MAX`] entries.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let n = self.view_list.len().min(VIEW_LIST_MAX);
        let mut e = Encoder::new(out, ByteOrder::Little);
        ResponseHeader {
            id: QuorumResponseId::V1QuorumNotification.into(),
            size: (V1_NOTIFICATION_FIXED_LEN + 4 * n) as i32,
            error: CsError::Ok,
        }
        .emit(&mut e);
        e.i32(self.quorate);
        e.zeros(4);
        emit_ring_id(&mut e, self.ring_id);
        emit_view_list(&mut e, &self.view_list[..n]);
    }
}

/// `res_lib_quorum_v1_nodelist_notification` (`send_nodelist_library_notification`): the
/// last sync's ring and members, and at the end of a sync who joined and who left (empty
/// in the notification TRACKSTART sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1NodelistNotification {
    /// `last_sync_ring_id`.
    pub ring_id: QuorumRingId,
    /// The sync's members.
    pub members: Vec<u32>,
    /// Joined since the previous sync.
    pub joined: Vec<u32>,
    /// Left since the previous sync.
    pub left: Vec<u32>,
}

impl V1NodelistNotification {
    /// Parses one V1_NODELIST_NOTIFICATION event; the three counts together are bounded
    /// by the bytes present and each by [`VIEW_LIST_MAX`].
    pub fn parse(bytes: &[u8]) -> Result<V1NodelistNotification> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        if QuorumResponseId::from(header.id) != QuorumResponseId::V1NodelistNotification {
            return Err(unexpected_id(&d, header.id));
        }
        let ring_id = parse_ring_id(&mut d)?;
        let mut counts = [0usize; 3];
        for (i, field) in [
            "member_list_entries",
            "joined_list_entries",
            "left_list_entries",
        ]
        .into_iter()
        .enumerate()
        {
            let at = d.offset();
            let c = d.u32(field)?;
            if i < 2 {
                d.pad(4)?;
            }
            if c as usize > VIEW_LIST_MAX {
                return Err(d.error_at(
                    at,
                    crate::error::ErrorKind::CountTooLarge {
                        field,
                        count: c.into(),
                        max: VIEW_LIST_MAX as u64,
                    },
                ));
            }
            counts[i] = c as usize;
        }
        let total = counts.iter().sum::<usize>();
        let at = d.offset();
        d.bounded_count(
            "member_list_entries",
            total as u64,
            (3 * VIEW_LIST_MAX) as u64,
            4,
            at,
        )?;
        let members = d.u32_list("member_list", counts[0])?;
        let joined = d.u32_list("joined_list", counts[1])?;
        let left = d.u32_list("left_list", counts[2])?;
        d.pad(4)?;
        finish(&d, "v1 nodelist notification")?;
        Ok(V1NodelistNotification {
            ring_id,
            members,
            joined,
            left,
        })
    }

    /// Appends the event; each list at most [`VIEW_LIST_MAX`] entries.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let cut = |l: &Vec<u32>| l.len().min(VIEW_LIST_MAX);
        let (m, j, l) = (cut(&self.members), cut(&self.joined), cut(&self.left));
        let mut e = Encoder::new(out, ByteOrder::Little);
        ResponseHeader {
            id: QuorumResponseId::V1NodelistNotification.into(),
            size: (V1_NODELIST_FIXED_LEN + 4 * (m + j + l)) as i32,
            error: CsError::Ok,
        }
        .emit(&mut e);
        emit_ring_id(&mut e, self.ring_id);
        emit_u32_slot(&mut e, m as u32);
        emit_u32_slot(&mut e, j as u32);
        e.u32(l as u32);
        for v in self.members[..m]
            .iter()
            .chain(&self.joined[..j])
            .chain(&self.left[..l])
        {
            e.u32(*v);
        }
        e.zeros(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_libquorum_sizes() {
        for (r, len) in [
            (QuorumRequest::GetQuorate, 16),
            (QuorumRequest::TrackStart { track_flags: 1 }, 24),
            (QuorumRequest::TrackStop, 16),
            (QuorumRequest::GetType, 16),
            (QuorumRequest::ModelGetType { model: 1 }, 24),
        ] {
            let mut b = Vec::new();
            r.emit(&mut b);
            assert_eq!(b.len(), len, "{r:?}");
            assert_eq!(QuorumRequest::parse(&b).unwrap(), r);
        }
        // A size that disagrees, a truncated body, an unknown id.
        let mut b = Vec::new();
        QuorumRequest::TrackStart { track_flags: 1 }.emit(&mut b);
        assert!(QuorumRequest::parse(&b[..20]).is_err());
        b[8] = 16;
        assert!(QuorumRequest::parse(&b[..16]).is_err());
        let unknown = [9, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            QuorumRequest::parse(&unknown).unwrap(),
            QuorumRequest::Unknown { .. }
        ));
    }

    #[test]
    fn responses_and_the_v0_notification_round_trip() {
        let h = |id: QuorumResponseId| ResponseHeader {
            id: id.into(),
            size: 0,
            error: CsError::Ok,
        };
        for r in [
            QuorumResponse::GetQuorate {
                header: h(QuorumResponseId::GetQuorate),
                quorate: 1,
            },
            QuorumResponse::GetType {
                header: h(QuorumResponseId::GetType),
                quorum_type: 1,
            },
            QuorumResponse::status(QuorumResponseId::TrackStart, CsError::Exist),
        ] {
            let mut b = Vec::new();
            r.emit(&mut b);
            let back = QuorumResponse::parse(&b).unwrap();
            let mut again = Vec::new();
            back.emit(&mut again);
            assert_eq!(again, b);
        }
        let n = QuorumNotification {
            quorate: 1,
            ring_seq: 0x1c,
            view_list: vec![1, 2, 3],
        };
        let mut b = Vec::new();
        n.emit(&mut b);
        assert_eq!(b.len(), 60);
        assert_eq!(&b[40..48], &[3, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(QuorumNotification::parse(&b).unwrap(), n);
        // A count beyond the bytes present.
        b[40] = 9;
        assert!(QuorumNotification::parse(&b).is_err());
    }

    /// The v1 events at the offsets gcc gives for 3.1.7's structs, and back.
    #[test]
    fn v1_notifications_round_trip_at_corosyncs_offsets() {
        let q = V1QuorumNotification {
            quorate: 1,
            ring_id: QuorumRingId {
                nodeid: 2,
                seq: 0x11,
            },
            view_list: vec![1, 2, 3],
        };
        let mut b = Vec::new();
        q.emit(&mut b);
        assert_eq!(b.len(), 56 + 12);
        assert_eq!(&b[32..36], &2u32.to_le_bytes());
        assert_eq!(&b[40..48], &0x11u64.to_le_bytes());
        assert_eq!(&b[48..52], &3u32.to_le_bytes());
        assert_eq!(&b[52..56], &1u32.to_le_bytes());
        assert_eq!(V1QuorumNotification::parse(&b).unwrap(), q);
        let n = V1NodelistNotification {
            ring_id: QuorumRingId { nodeid: 1, seq: 8 },
            members: vec![1, 2],
            joined: vec![2],
            left: vec![3],
        };
        let mut b = Vec::new();
        n.emit(&mut b);
        assert_eq!(b.len(), 64 + 16);
        assert_eq!(
            (&b[40..44], &b[48..52], &b[56..60]),
            (
                &2u32.to_le_bytes()[..],
                &1u32.to_le_bytes()[..],
                &1u32.to_le_bytes()[..]
            )
        );
        assert_eq!(&b[60..64], &1u32.to_le_bytes());
        assert_eq!(&b[68..72], &2u32.to_le_bytes());
        assert_eq!(&b[72..76], &3u32.to_le_bytes());
        assert_eq!(V1NodelistNotification::parse(&b).unwrap(), n);
        // Counts that promise more than is there are refused.
        let mut bad = b.clone();
        bad[56..60].copy_from_slice(&9u32.to_le_bytes());
        assert!(V1NodelistNotification::parse(&bad).is_err());
        bad[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(V1NodelistNotification::parse(&bad).is_err());
    }
}
