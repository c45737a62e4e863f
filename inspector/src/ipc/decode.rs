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
use totem_wire::exec::cpg::CpgName;
use totem_wire::ipc::cpg::{CpgAddress, CpgRequestId, CpgResponseId, IterationType};
use totem_wire::ipc::record::{Direction, RecordHeader, RecordKind};
use totem_wire::ipc::{Channel, CpgEvent, CpgRequest, CpgResponse, CsError, IpcMessage};

use crate::capture::RawFrame;
use crate::model::{ErrorRecord, Fields, RingRecord, Value};

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
                self.push_pending(frame, key, "CONNECT".into());
            } else {
                self.pair(frame, key);
            }
        }
        let is_cpg = header.service_name() == b"cpg";
        if channel == Channel::Response {
            self.pair(frame, key);
        }
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
                self.push_pending(frame, key, name);
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
                    self.push_pending(frame, key, name);
                }
            }
            Ok(IpcMessage::ConnectionRequest(r)) => {
                frame.id = Some(r.header.id);
                frame
                    .detail
                    .push("max_msg_size", Value::U(r.max_msg_size.into()));
            }
            Ok(IpcMessage::ConnectionResponse(r)) => {
                frame.id = Some(r.header.id);
                match r.refusal_errno() {
                    Some(errno) => {
                        frame.status = Some(format!("-{}", errno_name(errno)));
                        frame.detail.push("refused", Value::Str(errno_name(errno)));
                        frame
                            .detail
                            .push("libcpg_result", Value::Static(qb_to_cs_error(errno)));
                    }
                    None => {
                        frame.status = Some("accepted".into());
                        frame
                            .detail
                            .push("connection_type", Value::Str(r.connection_type.to_string()));
                        frame
                            .detail
                            .push("max_msg_size", Value::U(r.max_msg_size.into()));
                        for (k, v) in [
                            ("request", &r.request),
                            ("response", &r.response),
                            ("event", &r.event),
                        ] {
                            if !v.is_empty() {
                                frame
                                    .detail
                                    .push(k, Value::Str(String::from_utf8_lossy(v).into_owned()));
                            }
                        }
                    }
                }
            }
            Ok(IpcMessage::Request(request)) => {
                let id = request.id();
                frame.id = Some(id.into());
                let name = id.to_string();
                frame.name = Some(name.clone());
                request_fields(frame, &request);
                if request.expects_response() && !header.failed() {
                    self.push_pending(frame, key, name);
                }
            }
            Ok(IpcMessage::Response(response)) => {
                let h = response.header();
                frame.id = Some(h.id);
                let answered = frame.name.as_deref().and_then(request_id_of);
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
                    let expected = expected_response_id(req);
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
                response_fields(frame, &response);
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
                event_fields(frame, &event);
            }
        }
    }

    fn push_pending(&mut self, frame: &IpcFrame, key: (u32, u32), name: String) {
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
        });
    }

    /// Pairs a response with the oldest unanswered request of its connection.
    fn pair(&mut self, frame: &mut IpcFrame, key: (u32, u32)) {
        match self.pending.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(p) => {
                frame.reply_to = Some(p.frame);
                frame.latency_us = Some(((frame.ts - p.ts).max(0.0) * 1e6).round() as u64);
                frame.name = Some(p.name);
            }
            None => frame
                .notes
                .push("no outstanding request on this connection".into()),
        }
    }
}

fn request_id_of(name: &str) -> Option<CpgRequestId> {
    (0..=12)
        .map(CpgRequestId::from)
        .find(|id| id.known_name() == Some(name))
}

/// The response id corosync 3.1.7 answers each request with (ipc.md §4.3).
fn expected_response_id(request: CpgRequestId) -> i32 {
    let id = match request {
        CpgRequestId::Join | CpgRequestId::ZcAlloc | CpgRequestId::ZcFree => CpgResponseId::Join,
        CpgRequestId::Leave => CpgResponseId::Leave,
        CpgRequestId::Mcast | CpgRequestId::ZcExecute => CpgResponseId::Mcast,
        CpgRequestId::Membership => CpgResponseId::Membership,
        CpgRequestId::LocalGet => CpgResponseId::LocalGet,
        CpgRequestId::IterationInitialize => CpgResponseId::IterationInitialize,
        CpgRequestId::IterationNext => CpgResponseId::IterationNext,
        CpgRequestId::IterationFinalize => CpgResponseId::IterationFinalize,
        CpgRequestId::Finalize => CpgResponseId::Finalize,
        CpgRequestId::PartialMcast => CpgResponseId::PartialSend,
        CpgRequestId::Unknown(_) => CpgResponseId::Join,
    };
    id.into()
}

/// Header-only view of a message of a service this decoder does not know (cmap, quorum
/// ...), or of a CPG message whose body failed.
fn generic(frame: &mut IpcFrame, channel: Channel, message: &[u8], cpg: bool) {
    let word = |at: usize| {
        message
            .get(at..at + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if let Some(id) = word(0) {
        frame.id.get_or_insert(id);
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
        if let Some(error) = word(16) {
            frame.status = Some(CsError::from(error).to_string());
        }
    }
}

fn group(frame: &mut IpcFrame, name: &CpgName) {
    let text = name.to_string();
    frame.detail.push("group", Value::Str(text.clone()));
    frame.group = Some(text);
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

fn request_fields(frame: &mut IpcFrame, request: &CpgRequest<'_>) {
    let d = &mut frame.detail;
    match request {
        CpgRequest::Join {
            group: g,
            pid,
            flags,
            ..
        } => {
            group(frame, g);
            frame.detail.push("pid", Value::U((*pid).into()));
            frame.detail.push("flags", Value::U((*flags).into()));
        }
        CpgRequest::Leave { group: g, pid, .. } => {
            group(frame, g);
            frame.detail.push("pid", Value::U((*pid).into()));
        }
        CpgRequest::Membership { group: g, .. } => group(frame, g),
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
                group(frame, g);
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
            d.push("digest", Value::Digest(crate::decode::digest(data)));
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
            d.push("digest", Value::Digest(crate::decode::digest(data)));
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
            frame
                .notes
                .push("the payload stays in the zero-copy buffer, not in the IPC stream".into());
        }
        CpgRequest::Unknown { header, body } => {
            d.push("size", Value::U(header.size as u32 as u64));
            d.push("body_len", Value::U(body.len() as u64));
        }
    }
}

fn response_fields(frame: &mut IpcFrame, response: &CpgResponse) {
    let ok = response.header().error == CsError::Ok;
    match response {
        CpgResponse::Status { .. } => {}
        CpgResponse::Membership { members, .. } => {
            frame
                .detail
                .push("members", address_records(members, false));
        }
        CpgResponse::LocalGet { local_nodeid, .. } => {
            frame
                .detail
                .push("local_nodeid", Value::U((*local_nodeid).into()));
        }
        CpgResponse::IterationInitialize { handle, .. } => {
            frame
                .detail
                .push("handle", Value::Str(format!("{handle:#x}")));
        }
        CpgResponse::IterationNext {
            group: g,
            nodeid,
            pid,
            ..
        } => {
            // Unset (stack garbage) unless the status is CS_OK.
            if ok {
                group(frame, g);
                frame.detail.push("nodeid", Value::U((*nodeid).into()));
                frame.detail.push("pid", Value::U((*pid).into()));
            }
        }
        CpgResponse::Unknown { body, .. } => {
            frame.detail.push("body_len", Value::U(body.len() as u64));
        }
    }
}

fn event_fields(frame: &mut IpcFrame, event: &CpgEvent<'_>) {
    match event {
        CpgEvent::Confchg {
            group: g,
            members,
            left,
            joined,
            ..
        } => {
            group(frame, g);
            frame
                .detail
                .push("members", address_records(members, false));
            frame.detail.push("left", address_records(left, true));
            frame.detail.push("joined", address_records(joined, true));
        }
        CpgEvent::Deliver {
            group: g,
            msglen,
            nodeid,
            pid,
            data,
            ..
        } => {
            group(frame, g);
            frame.detail.push("nodeid", Value::U((*nodeid).into()));
            frame.detail.push("pid", Value::U((*pid).into()));
            frame.detail.push("msglen", Value::U((*msglen).into()));
            frame
                .detail
                .push("digest", Value::Digest(crate::decode::digest(data)));
        }
        CpgEvent::TotemConfchg {
            ring_nodeid,
            ring_seq,
            members,
            ..
        } => {
            frame.detail.push(
                "ring_id",
                Value::Ring(RingRecord {
                    rep: *ring_nodeid,
                    seq: *ring_seq,
                }),
            );
            frame.detail.push(
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
            group(frame, g);
            frame.detail.push("nodeid", Value::U((*nodeid).into()));
            frame.detail.push("pid", Value::U((*pid).into()));
            frame.detail.push("msglen", Value::U((*msglen).into()));
            frame.detail.push("fraglen", Value::U((*fraglen).into()));
            frame.detail.push("type", Value::Str(kind.to_string()));
            frame
                .detail
                .push("digest", Value::Digest(crate::decode::digest(data)));
        }
        CpgEvent::Unknown { body, .. } => {
            frame.detail.push("body_len", Value::U(body.len() as u64));
            frame
                .notes
                .push("cpg_dispatch answers an unknown event id with CS_ERR_LIBRARY".into());
        }
    }
}

/// Linux errno names for the values libqb returns (x86-64 numbering).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        32 => "EPIPE",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        42 => "ENOMSG",
        52 => "EBADE",
        62 => "ETIME",
        74 => "EBADMSG",
        75 => "EOVERFLOW",
        90 => "EMSGSIZE",
        95 => "ENOTSUP",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        107 => "ENOTCONN",
        108 => "ESHUTDOWN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        7 => "E2BIG",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// corosync `common_lib/error_conversion.c::qb_to_cs_error`: what libcpg returns for a
/// failed libqb call (ipc.md §4.8).
pub fn qb_to_cs_error(errno: i32) -> &'static str {
    match errno {
        9 => "CS_ERR_BAD_HANDLE",
        12 => "CS_ERR_NO_MEMORY",
        42 | 105 | 110 | 11 => "CS_ERR_TRY_AGAIN",
        52 => "CS_ERR_FAILED_OPERATION",
        62 => "CS_ERR_TIMEOUT",
        22 => "CS_ERR_INVALID_PARAM",
        16 => "CS_ERR_BUSY",
        13 => "CS_ERR_ACCESS",
        75 => "CS_ERR_NAME_TOO_LONG",
        17 => "CS_ERR_EXIST",
        28 => "CS_ERR_NO_SPACE",
        4 => "CS_ERR_INTERRUPT",
        2 | 19 => "CS_ERR_NOT_EXIST",
        38 | 95 => "CS_ERR_NOT_SUPPORTED",
        74 => "CS_ERR_MESSAGE_ERROR",
        90 | 7 => "CS_ERR_TOO_BIG",
        _ => "CS_ERR_LIBRARY",
    }
}
