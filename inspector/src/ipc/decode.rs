//! One IPC record → one [`IpcFrame`]: the record header, the message decoded by channel
//! (totem-wire's `ipc` module), and the pairing of each response with its request.
//!
//! Pairing (ipc.md §6.1): ids cannot pair (JOIN's reply, the zc replies and every error
//! reply from corosync's glue all have id 0), but libqb has at most one request in flight
//! per connection that waits for an answer (`qb_ipcc_sendv_recv` sends, then receives), and
//! MCAST never gets one (`cs_ipcs_msg_process`'s `is_async_call`). So a response answers
//! the oldest unanswered non-MCAST request of the same (pid, connection).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use totem_wire::ipc::cpg::{CpgRequestId, CpgResponseId};
use totem_wire::ipc::evs::{
    EvsIpcEvent, EvsRequest, EvsRequestId, EvsResponse, EvsResponseId, EVS_IPC_SERVICE,
};
use totem_wire::ipc::record::{Direction, RecordHeader, RecordKind};
use totem_wire::ipc::{Channel, CpgEvent, CpgRequest, CpgResponse, CsError, IpcMessage};

use crate::capture::RawFrame;
use crate::ipc::errno::{errno_name, qb_to_cs_error};
use crate::ipc::evs;
use crate::ipc::summary::{Connection, CpgId, IpcSummary};
use crate::model::{digest, ErrorRecord, Fields};
use crate::render::ipc_fields;

/// Unanswered requests remembered per connection (libqb has one in flight; more means
/// responses were lost from the recording).
const PENDING_MAX: usize = 16;
/// Connections remembered at once; the oldest is forgotten beyond this.
const CONNECTIONS_MAX: usize = 4096;

/// One decoded IPC record. Keys are the JSON contract (README, "IPC recording format").
#[derive(Debug, Clone, Serialize)]
pub struct IpcFrame {
    /// 1-based record number in the file.
    pub frame: u64,
    /// Time of the record, seconds since the epoch.
    pub ts: f64,
    /// Bytes captured (record header included).
    pub caplen: usize,
    /// Always `libqb-ipc`.
    pub transport: &'static str,
    /// Client process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Client thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// Connection number within the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<u32>,
    /// Service the client connected to (`cpg`).
    pub service: String,
    /// `setup`, `request`, `response`, `event`, `disconnect`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub channel: &'static str,
    /// `to_server` or `to_client`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub direction: &'static str,
    /// The libqb call that carried it (`qb_ipcc_sendv_recv` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// The call's return value (bytes, or -errno).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    /// When the call failed: the errno name and what libcpg turns it into (`qb_to_cs_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_error: Option<CallError>,
    /// Message length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<usize>,
    /// Message name: `CONNECT` (setup), the request's name (JOIN ...) for requests and for
    /// the responses that answer them, the event name (CONFCHG_CALLBACK ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The header id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// The `cs_error_t` of a response or event header, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// CPG group the message is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Decoded fields in wire order.
    #[serde(skip_serializing_if = "Fields::is_empty")]
    pub detail: Fields,
    /// For a response: the frame of the request it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// For a response: time since its request (µs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Things worth knowing that are not errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The first thing that failed to decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// Records the recorder of this process had dropped so far (for stats; a note says
    /// when it grows).
    #[serde(skip)]
    pub recorder_dropped: u32,
    /// A piece of a split message, held until its last piece (not counted by stats).
    #[serde(skip)]
    pub held: bool,
    /// What stats and filters read, typed (`detail` is for the views).
    #[serde(skip)]
    pub summary: IpcSummary,
}

/// A failed libqb call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CallError {
    /// `EAGAIN`, `ENOTCONN` ...
    pub errno: String,
    /// What libcpg returns for it.
    pub cs_error: &'static str,
}

#[derive(Debug, Clone)]
struct Pending {
    frame: u64,
    ts: f64,
    name: String,
    /// The CPG request, when its id is one corosync knows.
    request: Option<CpgRequestId>,
    /// The evs request, when its id is one libevs sends.
    evs_request: Option<EvsRequestId>,
}

/// A message split over several records (`FLAG_MORE`), being put back together. The
/// recorder writes the pieces of one message together, so they are consecutive.
#[derive(Debug)]
struct Assembly {
    pid: u32,
    seq: u32,
    next: u16,
    first_frame: u64,
    bytes: Vec<u8>,
}

/// Decodes the records of one recording, in order.
#[derive(Debug, Default)]
pub struct IpcDecoder {
    assembly: Option<Assembly>,
    pending: BTreeMap<(u32, u32), VecDeque<Pending>>,
    /// Highest drop count seen per pid, to report new drops once.
    dropped: BTreeMap<u32, u32>,
}

impl IpcDecoder {
    /// A fresh decoder.
    pub fn new() -> IpcDecoder {
        IpcDecoder::default()
    }

    /// Decodes record number `number`.
    pub fn decode(&mut self, number: u64, raw: &RawFrame<'_>) -> IpcFrame {
        let mut frame = IpcFrame {
            frame: number,
            ts: raw.ts_sec as f64 + raw.ts_usec as f64 / 1e6,
            caplen: raw.data.len(),
            transport: "libqb-ipc",
            pid: None,
            tid: None,
            conn: None,
            service: String::new(),
            channel: "",
            direction: "",
            call: None,
            result: None,
            call_error: None,
            len: None,
            name: None,
            id: None,
            status: None,
            group: None,
            detail: Fields::default(),
            reply_to: None,
            latency_us: None,
            notes: Vec::new(),
            error: None,
            recorder_dropped: 0,
            held: false,
            summary: IpcSummary::default(),
        };
        if (raw.data.len() as u64) < u64::from(raw.wire_len) {
            frame.notes.push(format!(
                "record truncated by the capture: {} of {} bytes captured",
                raw.data.len(),
                raw.wire_len
            ));
        }
        let (header, message) = match RecordHeader::parse(raw.data) {
            Ok(parsed) => parsed,
            Err(e) => {
                frame.error = Some(ErrorRecord::from(&e));
                return frame;
            }
        };
        frame.pid = Some(header.pid);
        frame.tid = Some(header.tid);
        frame.conn = Some(header.conn);
        frame.service = String::from_utf8_lossy(header.service_name()).into_owned();
        frame.channel = header.kind.name();
        frame.direction = match header.direction {
            Direction::ToServer => "to_server",
            Direction::ToClient => "to_client",
        };
        frame.call = Some(header.call.to_string());
        frame.result = Some(header.result);
        frame.recorder_dropped = header.dropped;
        let last_dropped = self.dropped.entry(header.pid).or_default();
        if header.dropped > *last_dropped {
            frame.notes.push(format!(
                "the recorder of pid {} dropped {} record(s) before this one",
                header.pid,
                header.dropped - *last_dropped
            ));
            *last_dropped = header.dropped;
        }
        if header.failed() {
            let errno = header.result.unsigned_abs() as i32;
            frame.call_error = Some(CallError {
                errno: errno_name(errno),
                cs_error: qb_to_cs_error(errno),
            });
        }
        let key = (header.pid, header.conn);
        let assembled;
        let message = if header.more() || header.piece > 0 {
            match self.reassemble(&mut frame, &header, message) {
                Some(whole) => {
                    assembled = whole;
                    assembled.as_slice()
                }
                None => {
                    frame.held = frame.error.is_none();
                    return frame;
                }
            }
        } else {
            if let Some(old) = self.assembly.take() {
                frame.notes.push(format!(
                    "an unfinished split message from frame {} was discarded",
                    old.first_frame
                ));
            }
            message
        };
        match header.kind {
            RecordKind::Disconnect => {
                frame.name = Some("DISCONNECT".into());
                if let Some(left) = self.pending.remove(&key) {
                    if !left.is_empty() {
                        frame.notes.push(format!(
                            "{} request(s) never answered: frames {:?}",
                            left.len(),
                            left.iter().map(|p| p.frame).collect::<Vec<_>>()
                        ));
                    }
                }
            }
            RecordKind::Message(channel) => {
                if !message.is_empty() {
                    frame.len = Some(message.len());
                }
                let cut = (raw.data.len() as u64) < u64::from(raw.wire_len);
                self.decode_message(&mut frame, &header, channel, message, key, cut);
            }
        }
        frame
    }

    /// Takes one piece of a split message; returns the whole message with its last piece.
    fn reassemble(
        &mut self,
        frame: &mut IpcFrame,
        header: &RecordHeader,
        piece: &[u8],
    ) -> Option<Vec<u8>> {
        if header.piece == 0 {
            if let Some(old) = self.assembly.take() {
                frame.notes.push(format!(
                    "an unfinished split message from frame {} was discarded",
                    old.first_frame
                ));
            }
            self.assembly = Some(Assembly {
                pid: header.pid,
                seq: header.seq,
                next: 1,
                first_frame: frame.frame,
                bytes: piece.to_vec(),
            });
            frame
                .notes
                .push("piece 1 of a split message, held for reassembly".into());
            return None;
        }
        let fits = self.assembly.as_ref().is_some_and(|a| {
            a.pid == header.pid
                && a.seq == header.seq
                && a.next == header.piece
                && a.bytes.len() + piece.len() <= totem_wire::ipc::IPC_MAX_MSG_LEN
        });
        if !fits {
            self.assembly = None;
            frame.error = Some(ErrorRecord {
                layer: "ipc",
                offset: 10,
                kind: "invalid_value",
                reason: format!(
                    "piece {} of a split message without its predecessors (or over 1 MiB)",
                    header.piece + 1
                ),
            });
            return None;
        }
        let assembly = self.assembly.as_mut()?;
        assembly.bytes.extend_from_slice(piece);
        assembly.next += 1;
        if header.more() {
            frame.notes.push(format!(
                "piece {} of a split message, held for reassembly",
                header.piece + 1
            ));
            return None;
        }
        let done = self.assembly.take()?;
        frame.notes.push(format!(
            "message reassembled from frames {}-{}",
            done.first_frame, frame.frame
        ));
        Some(done.bytes)
    }

    fn decode_message(
        &mut self,
        frame: &mut IpcFrame,
        header: &RecordHeader,
        channel: Channel,
        message: &[u8],
        key: (u32, u32),
        cut: bool,
    ) {
        let to_server = header.direction == Direction::ToServer;
        if channel == Channel::Setup {
            frame.name = Some("CONNECT".into());
            if header.failed() && message.is_empty() {
                // qb_ipcc_connect returned NULL. If no response was read, this is the
                // outcome of the setup request still pending.
                if self.pending.get(&key).is_some_and(|q| !q.is_empty()) {
                    self.pair(frame, key);
                }
                return;
            }
            if to_server {
                self.push_pending(frame, key, "CONNECT".into(), None);
            } else {
                self.pair(frame, key);
            }
        }
        let is_cpg = header.service_name() == b"cpg";
        if header.service_name() == EVS_IPC_SERVICE.as_bytes() && channel != Channel::Setup {
            self.decode_evs(frame, header, channel, message, key, cut);
            return;
        }
        let answered = match channel {
            Channel::Response => self.pair(frame, key),
            _ => None,
        };
        if message.is_empty() {
            return;
        }
        if cut {
            // Only the head was recorded (a failed request: `FAILED_REQUEST_KEEP`, or a
            // capture cut short): name it from its header, do not decode the body.
            generic(frame, channel, message, is_cpg);
            return;
        }
        if !is_cpg && channel != Channel::Setup {
            generic(frame, channel, message, false);
            if channel == Channel::Request && !header.failed() {
                let name = frame.name.clone().unwrap_or_default();
                self.push_pending(frame, key, name, None);
            }
            return;
        }
        match IpcMessage::parse(channel, to_server, message) {
            Err(e) => {
                frame.error = Some(ErrorRecord::from(&e));
                // Still name what can be named, from the header alone.
                generic(frame, channel, message, true);
                // MCAST (id 2) is the one request that gets no response.
                if channel == Channel::Request
                    && !header.failed()
                    && frame.id != Some(CpgRequestId::Mcast.into())
                {
                    let name = frame.name.clone().unwrap_or_default();
                    let request = frame.id.map(CpgRequestId::from).filter(is_known);
                    self.push_pending(frame, key, name, request);
                }
            }
            Ok(IpcMessage::ConnectionRequest(r)) => {
                frame.id = Some(r.header.id);
                frame.detail = ipc_fields::connection_request(&r);
            }
            Ok(IpcMessage::ConnectionResponse(r)) => {
                frame.id = Some(r.header.id);
                match r.refusal_errno() {
                    Some(errno) => {
                        frame.status = Some(format!("-{}", errno_name(errno)));
                        frame.summary.connection = Some(Connection::Refused(errno));
                    }
                    None => {
                        frame.status = Some("accepted".into());
                        frame.summary.connection = Some(Connection::Accepted(r.connection_type));
                    }
                }
                frame.detail = ipc_fields::connection_response(&r);
            }
            Ok(IpcMessage::Request(request)) => {
                let id = request.id();
                frame.id = Some(id.into());
                let name = id.to_string();
                frame.name = Some(name.clone());
                frame.summary = request_summary(&request);
                frame.group = request.group().map(|g| g.to_string());
                frame.detail = ipc_fields::request(&request, frame.summary.digest);
                if let CpgRequest::ZcExecute { .. } = request {
                    frame.notes.push(
                        "the payload stays in the zero-copy buffer, not in the IPC stream".into(),
                    );
                }
                if request.expects_response() && !header.failed() {
                    self.push_pending(frame, key, name, Some(id).filter(is_known));
                }
            }
            Ok(IpcMessage::Response(response)) => {
                let h = response.header();
                frame.id = Some(h.id);
                if frame.name.is_none() {
                    frame.name = Some(CpgResponseId::from(h.id).to_string());
                }
                // The zc alloc/free replies leave `error` uninitialised (corosync
                // `message_handler_req_lib_cpg_zc_alloc`/`_free`; libcpg ignores it).
                let garbage_status =
                    matches!(answered, Some(CpgRequestId::ZcAlloc | CpgRequestId::ZcFree));
                if garbage_status {
                    frame.notes.push(format!(
                        "status field {:#x} is not set by corosync for this reply",
                        i32::from(h.error)
                    ));
                } else {
                    frame.status = Some(h.error.to_string());
                }
                if let Some(req) = answered {
                    let expected = i32::from(req.response_id());
                    if h.id != expected && h.id == 0 && h.error != CsError::Ok {
                        frame
                            .notes
                            .push("error reply from corosync's IPC glue (id 0)".into());
                    } else if h.id != expected {
                        frame.notes.push(format!(
                            "response id {} where {} answers {}",
                            h.id, expected, req
                        ));
                    }
                }
                frame.summary = response_summary(&response);
                if let CpgResponse::IterationNext { group, .. } = &response {
                    if ipc_fields::response_is_ok(&response) {
                        frame.group = Some(group.to_string());
                    }
                }
                frame.detail = ipc_fields::response(&response);
            }
            Ok(IpcMessage::Event(event)) => {
                let h = event.header();
                frame.id = Some(h.id);
                frame.name = Some(CpgResponseId::from(h.id).to_string());
                // corosync never sets `error` in DELIVER and PARTIAL_DELIVER
                // (exec/cpg.c `message_handler_req_exec_cpg_mcast`, `..._partial_mcast`:
                // stack garbage), and `cpg_dispatch` reads it for no event: show it only
                // where corosync writes it (confchg and totem confchg: CS_OK).
                let garbage = matches!(
                    event,
                    CpgEvent::Deliver { .. } | CpgEvent::PartialDeliver { .. }
                );
                if !garbage && h.error != CsError::Ok {
                    frame.status = Some(h.error.to_string());
                }
                frame.summary = event_summary(&event);
                frame.group = event.group().map(|g| g.to_string());
                frame.detail = ipc_fields::event(&event, frame.summary.digest);
                if let CpgEvent::Unknown { .. } = event {
                    frame.notes.push(
                        "cpg_dispatch answers an unknown event id with CS_ERR_LIBRARY".into(),
                    );
                }
            }
        }
    }

    /// A message of the `evs` service (our libevs layout, `totem_wire::ipc::evs`; docs/evs.md
    /// §9). Every request is answered (EVS-MJ-11), the sends too, so each is paired.
    fn decode_evs(
        &mut self,
        frame: &mut IpcFrame,
        header: &RecordHeader,
        channel: Channel,
        message: &[u8],
        key: (u32, u32),
        cut: bool,
    ) {
        let answered = match channel {
            Channel::Response => self.pair_any(frame, key).and_then(|(_, evs)| evs),
            _ => None,
        };
        if message.is_empty() {
            return;
        }
        let id = totem_wire::ipc::peek_id(message);
        frame.id = id;
        let parsed = if cut {
            // Only the head was recorded: named from its header, the body not decoded.
            Ok(())
        } else {
            match channel {
                Channel::Request => EvsRequest::parse(message).map(|request| {
                    frame.summary = evs::request_summary(&request);
                    frame.detail = ipc_fields::evs_request(&request, frame.summary.digest);
                }),
                Channel::Response => EvsResponse::parse(message).map(|response| {
                    frame.status = Some(response.header().error.to_string());
                    frame.summary = evs::response_summary(&response);
                    frame.detail = ipc_fields::evs_response(&response);
                }),
                Channel::Event => EvsIpcEvent::parse(message).map(|event| {
                    frame.summary = evs::event_summary(&event);
                    frame.detail = ipc_fields::evs_event(&event, frame.summary.digest);
                }),
                Channel::Setup => Ok(()),
            }
        };
        if let Err(e) = parsed {
            frame.error = Some(ErrorRecord::from(&e));
        }
        match channel {
            Channel::Request => {
                let request = id.map(EvsRequestId::from);
                frame.name = Some(request.map_or_else(|| "id=?".into(), |r| r.to_string()));
                if !header.failed() {
                    let name = frame.name.clone().unwrap_or_default();
                    self.push_pending(frame, key, name, None);
                    if let Some(p) = self.pending.get_mut(&key).and_then(VecDeque::back_mut) {
                        p.evs_request = request.filter(|r| r.known_name().is_some());
                    }
                }
            }
            Channel::Response => {
                if frame.name.is_none() {
                    frame.name = id.map(|id| EvsResponseId::from(id).to_string());
                }
                if frame.status.is_none() {
                    frame.status = totem_wire::ipc::peek_error(message).map(|e| e.to_string());
                }
                if let (Some(request), Some(id)) = (answered, id) {
                    let expected = i32::from(request.response());
                    if id == 0 && id != expected {
                        // `{id 0, CS_ERR_INVALID_PARAM}`: our daemon's answer to an unknown
                        // request (docs/evs.md §9), corosync's glue reply in 1.4.
                        frame.notes.push("error reply with id 0".into());
                    } else if id != expected {
                        frame.notes.push(format!(
                            "response id {id} where {expected} answers {request}"
                        ));
                    }
                }
            }
            Channel::Event => {
                frame.name = id.map(|id| EvsResponseId::from(id).to_string());
                if frame.status.is_none() {
                    frame.status = totem_wire::ipc::peek_error(message)
                        .filter(|e| *e != CsError::Ok)
                        .map(|e| e.to_string());
                }
            }
            Channel::Setup => {}
        }
    }

    fn push_pending(
        &mut self,
        frame: &IpcFrame,
        key: (u32, u32),
        name: String,
        request: Option<CpgRequestId>,
    ) {
        if !self.pending.contains_key(&key) && self.pending.len() >= CONNECTIONS_MAX {
            if let Some(oldest) = self.pending.keys().next().copied() {
                self.pending.remove(&oldest);
            }
        }
        let queue = self.pending.entry(key).or_default();
        if queue.len() >= PENDING_MAX {
            queue.pop_front();
        }
        queue.push_back(Pending {
            frame: frame.frame,
            ts: frame.ts,
            name,
            request,
            evs_request: None,
        });
    }

    /// Pairs a response with the oldest unanswered request of its connection; returns
    /// that request, when it is a CPG request corosync knows.
    fn pair(&mut self, frame: &mut IpcFrame, key: (u32, u32)) -> Option<CpgRequestId> {
        self.pair_any(frame, key).and_then(|(cpg, _)| cpg)
    }

    /// [`IpcDecoder::pair`], giving back whichever request it was (CPG or evs).
    fn pair_any(
        &mut self,
        frame: &mut IpcFrame,
        key: (u32, u32),
    ) -> Option<(Option<CpgRequestId>, Option<EvsRequestId>)> {
        match self.pending.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(p) => {
                frame.reply_to = Some(p.frame);
                frame.latency_us = Some(((frame.ts - p.ts).max(0.0) * 1e6).round() as u64);
                frame.name = Some(p.name);
                Some((p.request, p.evs_request))
            }
            None => {
                frame
                    .notes
                    .push("no outstanding request on this connection".into());
                None
            }
        }
    }
}

fn is_known(id: &CpgRequestId) -> bool {
    id.known_name().is_some()
}

/// The typed facts of a request.
fn request_summary(request: &CpgRequest<'_>) -> IpcSummary {
    let mut summary = IpcSummary {
        message: Some(CpgId::Request(request.id())),
        ..IpcSummary::default()
    };
    match request {
        CpgRequest::Join { pid, .. } | CpgRequest::Leave { pid, .. } => summary.pid = Some(*pid),
        CpgRequest::Mcast { data, .. } | CpgRequest::PartialMcast { data, .. } => {
            summary.digest = Some(digest(data));
        }
        _ => {}
    }
    summary
}

/// The typed facts of a response.
fn response_summary(response: &CpgResponse) -> IpcSummary {
    let mut summary = IpcSummary::default();
    match response {
        CpgResponse::Membership { members, .. } => {
            summary.nodes = members.iter().map(|a| a.nodeid).collect();
        }
        CpgResponse::LocalGet { local_nodeid, .. } => summary.nodes = vec![*local_nodeid],
        // Unset (stack garbage) unless the status is CS_OK.
        CpgResponse::IterationNext { nodeid, pid, .. } if ipc_fields::response_is_ok(response) => {
            summary.nodes = vec![*nodeid];
            summary.pid = Some(*pid);
        }
        _ => {}
    }
    summary
}

/// The typed facts of an event.
fn event_summary(event: &CpgEvent<'_>) -> IpcSummary {
    let mut summary = IpcSummary {
        message: Some(CpgId::Event(CpgResponseId::from(event.header().id))),
        ..IpcSummary::default()
    };
    match event {
        CpgEvent::Confchg {
            members,
            left,
            joined,
            ..
        } => {
            summary.nodes = members
                .iter()
                .chain(left)
                .chain(joined)
                .map(|a| a.nodeid)
                .collect();
            summary.left = left.clone();
            summary.joined = joined.clone();
        }
        CpgEvent::Deliver {
            nodeid, pid, data, ..
        }
        | CpgEvent::PartialDeliver {
            nodeid, pid, data, ..
        } => {
            summary.nodes = vec![*nodeid];
            summary.pid = Some(*pid);
            summary.digest = Some(digest(data));
        }
        CpgEvent::TotemConfchg { members, .. } => summary.nodes = members.clone(),
        CpgEvent::Unknown { .. } => {}
    }
    summary
}

/// Header-only view of a message of a service this decoder does not know (cmap, quorum
/// ...), or of a CPG message whose body failed.
fn generic(frame: &mut IpcFrame, channel: Channel, message: &[u8], cpg: bool) {
    if let Some(id) = totem_wire::ipc::peek_id(message) {
        frame.id.get_or_insert(id);
        if cpg && frame.summary.message.is_none() {
            frame.summary.message = match channel {
                Channel::Request => Some(CpgId::Request(id.into())),
                Channel::Event => Some(CpgId::Event(id.into())),
                Channel::Setup | Channel::Response => None,
            };
        }
        if frame.name.is_none() {
            let known = match channel {
                Channel::Request if cpg => CpgRequestId::from(id).known_name(),
                Channel::Response | Channel::Event if cpg => CpgResponseId::from(id).known_name(),
                _ => None,
            };
            frame.name = Some(known.map_or_else(|| format!("id={id}"), str::to_string));
        }
    }
    if matches!(channel, Channel::Response | Channel::Event) && frame.status.is_none() {
        if let Some(error) = totem_wire::ipc::peek_error(message) {
            frame.status = Some(error.to_string());
        }
    }
}
