//! libqb IPC between a client library (libcpg) and the daemon, as corosync 3.1.7 and
//! libqb 2.0.6 speak it on x86-64 (`shared/spec/ipc.md`).
//!
//! ```text
//! setup stream:  connection request (24 B) → ← connection response (12328 B)   setup
//! after setup:   requests → (16-byte qb_ipc_request_header)                   cpg::CpgRequest
//!                ← responses, one per request except MCAST (24-byte header)    cpg::CpgResponse
//!                ← events, unsolicited callbacks (24-byte header)              cpg::CpgEvent
//! ```
//!
//! IPC never crosses machines, so every integer is in the host's order; this codec reads
//! and writes little-endian (x86-64, where corosync 3.1.7 was recorded). The channel must
//! be known to parse a message: request, response and event ids overlap (ipc.md §6.1).
//!
//! Round trips: these are 8-aligned C structs whose padding (and some unused fields) hold
//! stack garbage on the wire (ipc.md §7), so emit writes zeros there and the contract is
//! `parse(emit(parse(b))) == parse(b)`, as for the exec messages.

pub mod cfg;
pub mod cmap;
pub mod cpg;
pub mod evs;
pub mod quorum;
pub mod record;
pub mod setup;
pub mod shm;
pub mod socket;
pub mod votequorum;

#[cfg(test)]
mod tests;

use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{ErrorKind, Layer, Result};
use crate::macros::open_enum;

pub use cpg::{CpgEvent, CpgRequest, CpgResponse};
pub use setup::{ConnectionRequest, ConnectionResponse, IpcType};

/// Size of `struct qb_ipc_request_header` (`id` @0, `size` @8, each in an 8-byte slot).
pub const REQUEST_HEADER_LEN: usize = 16;
/// Size of `struct qb_ipc_response_header` (`id` @0, `size` @8, `error` @16).
pub const RESPONSE_HEADER_LEN: usize = 24;
/// The largest message libcpg negotiates: `IPC_REQUEST_SIZE` = 8192 × 128 (corosync
/// `lib/util.h`), which `handle_new_connection` (libqb `ipc_setup.c`) keeps as the
/// connection's `max_msg_size`. No IPC message can be longer.
pub const IPC_MAX_MSG_LEN: usize = 1 << 20;

open_enum! {
    /// `cs_error_t` (corosync `include/corosync/corotypes.h`): the `error` field of every
    /// response and event header.
    pub enum CsError(i32) {
        /// Success.
        Ok = 1 => "CS_OK",
        /// Library error.
        Library = 2 => "CS_ERR_LIBRARY",
        /// Version mismatch.
        Version = 3 => "CS_ERR_VERSION",
        /// Not initialised.
        Init = 4 => "CS_ERR_INIT",
        /// Timed out.
        Timeout = 5 => "CS_ERR_TIMEOUT",
        /// Try again.
        TryAgain = 6 => "CS_ERR_TRY_AGAIN",
        /// Invalid parameter.
        InvalidParam = 7 => "CS_ERR_INVALID_PARAM",
        /// Out of memory.
        NoMemory = 8 => "CS_ERR_NO_MEMORY",
        /// Bad handle.
        BadHandle = 9 => "CS_ERR_BAD_HANDLE",
        /// Busy.
        Busy = 10 => "CS_ERR_BUSY",
        /// Access denied.
        Access = 11 => "CS_ERR_ACCESS",
        /// Does not exist.
        NotExist = 12 => "CS_ERR_NOT_EXIST",
        /// Name too long.
        NameTooLong = 13 => "CS_ERR_NAME_TOO_LONG",
        /// Already exists.
        Exist = 14 => "CS_ERR_EXIST",
        /// No space.
        NoSpace = 15 => "CS_ERR_NO_SPACE",
        /// Interrupted.
        Interrupt = 16 => "CS_ERR_INTERRUPT",
        /// Name not found.
        NameNotFound = 17 => "CS_ERR_NAME_NOT_FOUND",
        /// No resources.
        NoResources = 18 => "CS_ERR_NO_RESOURCES",
        /// Not supported.
        NotSupported = 19 => "CS_ERR_NOT_SUPPORTED",
        /// Bad operation.
        BadOperation = 20 => "CS_ERR_BAD_OPERATION",
        /// Failed operation.
        FailedOperation = 21 => "CS_ERR_FAILED_OPERATION",
        /// Message error.
        MessageError = 22 => "CS_ERR_MESSAGE_ERROR",
        /// Queue full.
        QueueFull = 23 => "CS_ERR_QUEUE_FULL",
        /// Queue not available.
        QueueNotAvailable = 24 => "CS_ERR_QUEUE_NOT_AVAILABLE",
        /// Bad flags.
        BadFlags = 25 => "CS_ERR_BAD_FLAGS",
        /// Too big.
        TooBig = 26 => "CS_ERR_TOO_BIG",
        /// No sections (end of an iteration).
        NoSections = 27 => "CS_ERR_NO_SECTIONS",
        /// Context not found.
        ContextNotFound = 28 => "CS_ERR_CONTEXT_NOT_FOUND",
        /// Too many groups.
        TooManyGroups = 30 => "CS_ERR_TOO_MANY_GROUPS",
        /// Security.
        Security = 100 => "CS_ERR_SECURITY",
    }
}

/// The channel a message travelled on; it decides how the bytes are read (ipc.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// The setup stream: the connection request and response.
    Setup,
    /// Client → server requests.
    Request,
    /// Server → client responses.
    Response,
    /// Server → client events (callbacks).
    Event,
}

impl Channel {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Setup => "setup",
            Channel::Request => "request",
            Channel::Response => "response",
            Channel::Event => "event",
        }
    }
}

/// Field offsets of libqb's headers: `struct qb_ipc_request_header` is `id`, `size`, and
/// `qb_ipc_response_header` adds `error`, each in an 8-byte slot (`aligned(8)`).
mod field {
    pub(super) const ID: usize = 0;
    pub(super) const ERROR: usize = 16;
}

/// The `id` every request, response and event starts with, from a message that may be too
/// short to parse (the head a failed request's record keeps, a record cut by the capture):
/// what still names it. `None` when fewer than 4 bytes are given.
pub fn peek_id(bytes: &[u8]) -> Option<i32> {
    decoder(bytes.get(field::ID..)?).i32("id").ok()
}

/// The `error` of a response or event header, from a message that may end anywhere after
/// it (see [`peek_id`]). `None` when the message ends before it.
pub fn peek_error(bytes: &[u8]) -> Option<CsError> {
    let error = decoder(bytes.get(field::ERROR..)?).i32("error").ok()?;
    Some(error.into())
}

/// `struct qb_ipc_request_header`: what every request starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHeader {
    /// Request id (`enum req_cpg_types` for CPG; -1 for the setup request).
    pub id: i32,
    /// Total length including the header.
    pub size: i32,
}

impl RequestHeader {
    /// Reads the header at the start of a request without looking at the rest: what a
    /// receiver checks before anything else (`size` against the datagram's length,
    /// `qb_ipc_us_recv_at_most`). Fails only when fewer than 16 bytes are given.
    pub fn peek(bytes: &[u8]) -> Result<RequestHeader> {
        RequestHeader::parse(&mut decoder(bytes))
    }

    pub(crate) fn parse(d: &mut Decoder<'_>) -> Result<RequestHeader> {
        let id = d.i32("id")?;
        d.pad(4)?;
        let size = d.i32("size")?;
        d.pad(4)?;
        Ok(RequestHeader { id, size })
    }

    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        e.i32(self.id);
        e.zeros(4);
        e.i32(self.size);
        e.zeros(4);
    }
}

/// `struct qb_ipc_response_header`: what every response and event starts with (and, in
/// CPG, MCAST and PARTIAL_MCAST requests: `req_lib_cpg_mcast` embeds a response header,
/// corosync `include/corosync/ipc_cpg.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseHeader {
    /// Response or event id.
    pub id: i32,
    /// Total length including the header.
    pub size: i32,
    /// `cs_error_t` (garbage in requests and in the zc alloc/free replies, ipc.md §4.4).
    pub error: CsError,
}

impl ResponseHeader {
    /// Reads the header at the start of a response or event without looking at the rest.
    /// Fails only when fewer than 24 bytes are given.
    pub fn peek(bytes: &[u8]) -> Result<ResponseHeader> {
        ResponseHeader::parse(&mut decoder(bytes))
    }

    pub(crate) fn parse(d: &mut Decoder<'_>) -> Result<ResponseHeader> {
        let id = d.i32("id")?;
        d.pad(4)?;
        let size = d.i32("size")?;
        d.pad(4)?;
        let error = d.i32("error")?.into();
        d.pad(4)?;
        Ok(ResponseHeader { id, size, error })
    }

    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        e.i32(self.id);
        e.zeros(4);
        e.i32(self.size);
        e.zeros(4);
        e.i32(self.error.into());
        e.zeros(4);
    }
}

/// A decoder over one IPC message (little-endian, layer `ipc`).
pub(crate) fn decoder(bytes: &[u8]) -> Decoder<'_> {
    Decoder::new(bytes, ByteOrder::Little, Layer::Ipc)
}

/// Checks the header's `size` against the bytes present, before the body is read: libqb
/// reads exactly `size` bytes of a message (`qb_ipc_us_recv_at_most`) and the recorder
/// records what the libqb call returned, so the two must agree.
pub(crate) fn check_size(size: i32, actual: usize) -> Result<()> {
    if size < 0 || size as usize != actual {
        return Err(crate::Error::new(
            Layer::Ipc,
            8,
            ErrorKind::LengthMismatch {
                field: "size",
                declared: size as i64 as u64,
                actual: actual as u64,
            },
        ));
    }
    if actual > IPC_MAX_MSG_LEN {
        return Err(crate::Error::new(
            Layer::Ipc,
            8,
            ErrorKind::CountTooLarge {
                field: "size",
                count: actual as u64,
                max: IPC_MAX_MSG_LEN as u64,
            },
        ));
    }
    Ok(())
}

/// The request header, its `size` checked against the bytes given.
pub(crate) fn request_header(d: &mut Decoder<'_>, len: usize) -> Result<RequestHeader> {
    let h = RequestHeader::parse(d)?;
    check_size(h.size, len)?;
    Ok(h)
}

/// The response (or event) header, its `size` checked against the bytes given.
pub(crate) fn response_header(d: &mut Decoder<'_>, len: usize) -> Result<ResponseHeader> {
    let h = ResponseHeader::parse(d)?;
    check_size(h.size, len)?;
    Ok(h)
}

/// The error for a message id this parser does not take (an unknown one, or a response
/// id where a particular event was expected).
pub(crate) fn unexpected_id(d: &Decoder<'_>, id: i32) -> crate::Error {
    d.error(ErrorKind::InvalidValue {
        field: "id",
        value: i64::from(id) as u64,
    })
}

/// A u32 in an 8-byte slot (`__attribute__((aligned(8)))` on the fields of corosync's IPC
/// structs).
pub(crate) fn u32_slot(d: &mut Decoder<'_>, field: &'static str) -> Result<u32> {
    let v = d.u32(field)?;
    d.pad(4)?;
    Ok(v)
}

/// Emits a u32 in an 8-byte slot.
pub(crate) fn emit_u32_slot(e: &mut Encoder<'_>, v: u32) {
    e.u32(v);
    e.zeros(4);
}

/// Fails when bytes are left after a fixed-size struct.
pub(crate) fn finish(d: &Decoder<'_>, field: &'static str) -> Result<()> {
    if d.remaining() != 0 {
        return Err(d.error(ErrorKind::LengthMismatch {
            field,
            declared: d.offset() as u64,
            actual: (d.offset() + d.remaining()) as u64,
        }));
    }
    Ok(())
}

/// Any message of a CPG connection, by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcMessage<'a> {
    /// The 24-byte connection request.
    ConnectionRequest(ConnectionRequest),
    /// The 12328-byte connection response.
    ConnectionResponse(Box<ConnectionResponse>),
    /// A CPG request.
    Request(CpgRequest<'a>),
    /// A CPG response.
    Response(CpgResponse),
    /// A CPG event.
    Event(CpgEvent<'a>),
}

impl<'a> IpcMessage<'a> {
    /// Parses `bytes` as a message of `channel`. On the setup channel the direction
    /// (`from_client`) tells the request from the response.
    pub fn parse(channel: Channel, from_client: bool, bytes: &'a [u8]) -> Result<IpcMessage<'a>> {
        Ok(match (channel, from_client) {
            (Channel::Setup, true) => {
                IpcMessage::ConnectionRequest(ConnectionRequest::parse(bytes)?)
            }
            (Channel::Setup, false) => {
                IpcMessage::ConnectionResponse(Box::new(ConnectionResponse::parse(bytes)?))
            }
            (Channel::Request, _) => IpcMessage::Request(CpgRequest::parse(bytes)?),
            (Channel::Response, _) => IpcMessage::Response(CpgResponse::parse(bytes)?),
            (Channel::Event, _) => IpcMessage::Event(CpgEvent::parse(bytes)?),
        })
    }

    /// Appends the message (padding zeroed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            IpcMessage::ConnectionRequest(m) => m.emit(out),
            IpcMessage::ConnectionResponse(m) => m.emit(out),
            IpcMessage::Request(m) => m.emit(out),
            IpcMessage::Response(m) => m.emit(out),
            IpcMessage::Event(m) => m.emit(out),
        }
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}
