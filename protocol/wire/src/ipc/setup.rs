//! The libqb connection handshake on the setup stream (libqb `lib/ipc_int.h`,
//! `ipc_setup.c::qb_ipcc_us_setup_connect` and `handle_new_connection`; ipc.md §1.2).

use crate::error::{ErrorKind, Result};
use crate::ipc::{decoder, finish, RequestHeader, ResponseHeader};
use crate::macros::open_enum;

/// `QB_IPC_MSG_AUTHENTICATE`: the id of both handshake messages.
pub const MSG_AUTHENTICATE: i32 = -1;
/// Size of `struct qb_ipc_connection_request`.
pub const CONNECTION_REQUEST_LEN: usize = 24;
/// Size of `struct qb_ipc_connection_response` on Linux (`PATH_MAX` = 4096).
pub const CONNECTION_RESPONSE_LEN: usize = 12_328;
/// `PATH_MAX`: the size of each name array in the response.
pub const PATH_LEN: usize = 4096;

open_enum! {
    /// `enum qb_ipc_type` (libqb `include/qb/qbipc_common.h`): the transport the server
    /// chose. Only the server decides (`qb_ipcc_connect_continue` follows it).
    pub enum IpcType(i32) {
        /// `QB_IPC_SOCKET`: unix datagram sockets.
        Socket = 0 => "SOCKET",
        /// `QB_IPC_SHM`: shared-memory ring buffers.
        Shm = 1 => "SHM",
        /// `QB_IPC_POSIX_MQ` (refused by libqb 2.x clients).
        PosixMq = 2 => "POSIX_MQ",
        /// `QB_IPC_SYSV_MQ` (refused by libqb 2.x clients).
        SysvMq = 3 => "SYSV_MQ",
        /// `QB_IPC_NATIVE` (becomes SHM on the server).
        Native = 4 => "NATIVE",
    }
}

/// `struct qb_ipc_connection_request` (24 bytes), sent by `qb_ipcc_us_setup_connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRequest {
    /// `id` -1, `size` 24.
    pub header: RequestHeader,
    /// `max(requested, sizeof(response))`: 1048576 for libcpg.
    pub max_msg_size: u32,
}

impl ConnectionRequest {
    /// Parses the 24 bytes.
    pub fn parse(bytes: &[u8]) -> Result<ConnectionRequest> {
        let mut d = decoder(bytes);
        let header = RequestHeader::parse(&mut d)?;
        check_auth_id(header.id)?;
        crate::ipc::check_size(header.size, bytes.len())?;
        let max_msg_size = d.u32("max_msg_size")?;
        d.pad(4)?;
        finish(&d, "connection request")?;
        Ok(ConnectionRequest {
            header,
            max_msg_size,
        })
    }

    /// Appends the 24 bytes (padding zeroed, as libqb's memset leaves it).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = crate::codec::Encoder::new(out, crate::ByteOrder::Little);
        self.header.emit(&mut e);
        e.u32(self.max_msg_size);
        e.zeros(4);
    }
}

/// `struct qb_ipc_connection_response` (12328 bytes), sent by `handle_new_connection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionResponse {
    /// `id` -1, `size` 12328, `error` 0 or a **negative errno** (not a `cs_error_t`).
    pub header: ResponseHeader,
    /// The transport the server chose.
    pub connection_type: IpcType,
    /// The size every channel will use.
    pub max_msg_size: u32,
    /// The server's connection pointer (opaque; the client ignores it).
    pub connection: u64,
    /// Socket type: control-file path; shm: request-ring base name. Up to the first NUL.
    pub request: Vec<u8>,
    /// Socket type: datagram socket base name; shm: response-ring base name.
    pub response: Vec<u8>,
    /// Shm: event-ring base name; socket type: empty.
    pub event: Vec<u8>,
}

impl ConnectionResponse {
    /// Parses the 12328 bytes.
    pub fn parse(bytes: &[u8]) -> Result<ConnectionResponse> {
        let mut d = decoder(bytes);
        let header = ResponseHeader::parse(&mut d)?;
        check_auth_id(header.id)?;
        crate::ipc::check_size(header.size, bytes.len())?;
        let connection_type = d.i32("connection_type")?.into();
        let max_msg_size = d.u32("max_msg_size")?;
        let connection = d.u64("connection")?;
        let request = c_string(d.bytes("request", PATH_LEN)?);
        let response = c_string(d.bytes("response", PATH_LEN)?);
        let event = c_string(d.bytes("event", PATH_LEN)?);
        finish(&d, "connection response")?;
        Ok(ConnectionResponse {
            header,
            connection_type,
            max_msg_size,
            connection,
            request,
            response,
            event,
        })
    }

    /// The refusal as a positive errno (`-hdr.error`), or `None` when accepted.
    pub fn refusal_errno(&self) -> Option<i32> {
        match i32::from(self.header.error) {
            0 => None,
            e => Some(e.wrapping_neg()),
        }
    }

    /// Appends the 12328 bytes (name arrays NUL-filled, as the server's memset leaves them).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = crate::codec::Encoder::new(out, crate::ByteOrder::Little);
        self.header.emit(&mut e);
        e.i32(self.connection_type.into());
        e.u32(self.max_msg_size);
        e.u64(self.connection);
        for name in [&self.request, &self.response, &self.event] {
            // The parser stops at the first NUL, so a name of PATH_MAX bytes had none.
            let n = name.len().min(PATH_LEN);
            e.bytes(&name[..n]);
            e.zeros(PATH_LEN - n);
        }
    }
}

fn check_auth_id(id: i32) -> Result<()> {
    if id != MSG_AUTHENTICATE {
        return Err(crate::Error::new(
            crate::Layer::Ipc,
            0,
            ErrorKind::InvalidValue {
                field: "id",
                value: id as u32 as u64,
            },
        ));
    }
    Ok(())
}

/// The bytes of a C string in a fixed array, up to its first NUL.
pub(crate) fn c_string(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes[..end].to_vec()
}
