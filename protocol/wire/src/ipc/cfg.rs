//! The calls of libcfg that `corosync-cpgtool` and `corosync-quorumtool` make (corosync
//! 3.1.7 `include/corosync/ipc_cfg.h`, `exec/cfg.c`), and the replies a read-only server
//! gives. Every header field is 8-byte aligned, like CPG's (ipc.md §2.1):
//!
//! ```text
//! req_lib_cfg_get_node_addrs   header(16) nodeid u32 (+4)                        24 bytes
//! res_lib_cfg_get_node_addrs   header(24) family u32, num_addrs u32,
//!                              num_addrs × TOTEMIP_ADDRLEN (16) address bytes    32 + 16n
//! req_lib_cfg_local_get        header(16)                                        16 bytes
//! res_lib_cfg_local_get        header(24) local_nodeid u32 (+4)                  32 bytes
//! res_lib_cfg_ringstatusget    header(24) interface_count u32 (+4),
//!                              16 × 128 names, 16 × 512 statuses                 10272 bytes
//! ```

use crate::codec::Encoder;
use crate::error::{ErrorKind, Result};
use crate::ipc::{
    decoder, emit_u32_slot, request_header, u32_slot, CsError, RequestHeader, ResponseHeader,
};
use crate::macros::open_enum;
use crate::ByteOrder;

open_enum! {
    /// Request ids (`enum req_lib_cfg_types`).
    pub enum CfgRequestId(i32) {
        /// `MESSAGE_REQ_CFG_RINGSTATUSGET`.
        RingStatusGet = 0 => "RINGSTATUSGET",
        /// `MESSAGE_REQ_CFG_RINGREENABLE`.
        RingReenable = 1 => "RINGREENABLE",
        /// `MESSAGE_REQ_CFG_KILLNODE`.
        KillNode = 2 => "KILLNODE",
        /// `MESSAGE_REQ_CFG_TRYSHUTDOWN`.
        TryShutdown = 3 => "TRYSHUTDOWN",
        /// `MESSAGE_REQ_CFG_REPLYTOSHUTDOWN`.
        ReplyToShutdown = 4 => "REPLYTOSHUTDOWN",
        /// `MESSAGE_REQ_CFG_GET_NODE_ADDRS`.
        GetNodeAddrs = 5 => "GET_NODE_ADDRS",
        /// `MESSAGE_REQ_CFG_LOCAL_GET`.
        LocalGet = 6 => "LOCAL_GET",
        /// `MESSAGE_REQ_CFG_RELOAD_CONFIG`.
        ReloadConfig = 7 => "RELOAD_CONFIG",
        /// `MESSAGE_REQ_CFG_REOPEN_LOG_FILES`.
        ReopenLogFiles = 8 => "REOPEN_LOG_FILES",
        /// `MESSAGE_REQ_CFG_NODESTATUSGET`.
        NodeStatusGet = 9 => "NODESTATUSGET",
        /// `MESSAGE_REQ_CFG_TRACKSTART`.
        TrackStart = 10 => "TRACKSTART",
        /// `MESSAGE_REQ_CFG_TRACKSTOP`.
        TrackStop = 11 => "TRACKSTOP",
    }
}

/// Handlers in `cfg_lib_engine`; a higher id is -EINVAL in `corosync_sending_allowed`.
pub const CFG_LIB_ENGINE_COUNT: i32 = 12;
/// `TOTEMIP_ADDRLEN` (`sizeof(struct in6_addr)`).
pub const TOTEMIP_ADDRLEN: usize = 16;
/// `sizeof(struct res_lib_cfg_ringstatusget)`: 16 interfaces of 128-byte names and
/// 512-byte statuses.
pub const RINGSTATUS_RESPONSE_LEN: usize = 24 + 8 + 16 * 128 + 16 * 512;
const GET_NODE_ADDRS_REQUEST_LEN: usize = 24;
const GET_NODE_ADDRS_FIXED_LEN: usize = 32;
const LOCAL_GET_RESPONSE_LEN: usize = 32;

impl CfgRequestId {
    /// The `res_lib_cfg_types` id of the reply to this request (`exec/cfg.c`'s handlers);
    /// an id past the engine gets corosync's glue reply, id 0.
    pub fn response_id(self) -> i32 {
        match i32::from(self) {
            0 => 0,  // RINGSTATUSGET
            1 => 1,  // RINGREENABLE
            2 => 8,  // KILLNODE
            3 => 9,  // TRYSHUTDOWN
            4 => 13, // REPLYTOSHUTDOWN
            5 => 11, // GET_NODE_ADDRS
            6 => 12, // LOCAL_GET
            7 => 14, // RELOAD_CONFIG
            8 => 15, // REOPEN_LOG_FILES
            9 => 16, // NODESTATUSGET
            10 => 2, // TRACKSTART (MESSAGE_RES_CFG_STATETRACKSTART)
            11 => 3, // TRACKSTOP
            _ => 0,
        }
    }
}

/// A libcfg request, as far as a read-only server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgRequest {
    /// `corosync_cfg_get_node_addrs` (nodeid 0 means the local node).
    GetNodeAddrs {
        /// Header.
        header: RequestHeader,
        /// The node asked about.
        nodeid: u32,
    },
    /// Any other request: only its header is read.
    Other {
        /// Header.
        header: RequestHeader,
    },
}

impl CfgRequest {
    /// Parses one request; GET_NODE_ADDRS must carry its nodeid.
    pub fn parse(bytes: &[u8]) -> Result<CfgRequest> {
        let mut d = decoder(bytes);
        let header = request_header(&mut d, bytes.len())?;
        if CfgRequestId::from(header.id) == CfgRequestId::GetNodeAddrs {
            if bytes.len() != GET_NODE_ADDRS_REQUEST_LEN {
                return Err(d.error(ErrorKind::LengthMismatch {
                    field: "req_lib_cfg_get_node_addrs",
                    declared: GET_NODE_ADDRS_REQUEST_LEN as u64,
                    actual: bytes.len() as u64,
                }));
            }
            let nodeid = u32_slot(&mut d, "nodeid")?;
            return Ok(CfgRequest::GetNodeAddrs { header, nodeid });
        }
        Ok(CfgRequest::Other { header })
    }

    /// The header.
    pub fn header(&self) -> &RequestHeader {
        match self {
            CfgRequest::GetNodeAddrs { header, .. } | CfgRequest::Other { header } => header,
        }
    }
}

/// A reply of the read-only server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgResponse {
    /// A header-only reply.
    Status {
        /// Response id.
        id: i32,
        /// Result.
        error: CsError,
    },
    /// `res_lib_cfg_get_node_addrs`.
    NodeAddrs {
        /// Result.
        error: CsError,
        /// `AF_INET`/`AF_INET6` of the first address (0 for none).
        family: u32,
        /// Each address in a 16-byte slot (IPv4 in the first 4).
        addrs: Vec<[u8; TOTEMIP_ADDRLEN]>,
    },
    /// `res_lib_cfg_local_get`.
    LocalGet {
        /// This node.
        nodeid: u32,
    },
    /// `res_lib_cfg_ringstatusget` with no interface: libcfg reads the whole struct
    /// whatever the error says (`corosync_cfg_ring_status_get`).
    RingStatusEmpty {
        /// Result.
        error: CsError,
    },
}

impl CfgResponse {
    /// The whole reply as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, ByteOrder::Little);
        let header = |id: i32, size: usize, error: CsError| ResponseHeader {
            id,
            size: size as i32,
            error,
        };
        match self {
            CfgResponse::Status { id, error } => header(*id, 24, *error).emit(&mut e),
            CfgResponse::NodeAddrs {
                error,
                family,
                addrs,
            } => {
                let size = GET_NODE_ADDRS_FIXED_LEN + TOTEMIP_ADDRLEN * addrs.len();
                let id = CfgRequestId::GetNodeAddrs.response_id();
                header(id, size, *error).emit(&mut e);
                e.u32(*family);
                e.u32(addrs.len() as u32);
                for a in addrs {
                    e.bytes(a);
                }
            }
            CfgResponse::LocalGet { nodeid } => {
                let id = CfgRequestId::LocalGet.response_id();
                header(id, LOCAL_GET_RESPONSE_LEN, CsError::Ok).emit(&mut e);
                emit_u32_slot(&mut e, *nodeid);
            }
            CfgResponse::RingStatusEmpty { error } => {
                let id = CfgRequestId::RingStatusGet.response_id();
                header(id, RINGSTATUS_RESPONSE_LEN, *error).emit(&mut e);
                e.zeros(RINGSTATUS_RESPONSE_LEN - 24);
            }
        }
        out
    }
}
