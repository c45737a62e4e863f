//! libcfg's calls (corosync 3.1.7 `include/corosync/ipc_cfg.h`, `exec/cfg.c`): those of
//! `corosync-cpgtool`, `corosync-cfgtool` and `corosync-quorumtool`, and Pacemaker's
//! shutdown tracking, with their replies and the TESTSHUTDOWN event. Every header field
//! is 8-byte aligned, like CPG's (ipc.md §2.1):
//!
//! ```text
//! req_lib_cfg_get_node_addrs   header(16) nodeid u32 (+4)                        24 bytes
//! res_lib_cfg_get_node_addrs   header(24) family u32, num_addrs u32,
//!                              num_addrs × TOTEMIP_ADDRLEN (16) address bytes    32 + 16n
//! req_lib_cfg_local_get        header(16)                                        16 bytes
//! res_lib_cfg_local_get        header(24) local_nodeid u32 (+4)                  32 bytes
//! res_lib_cfg_ringstatusget    header(24) interface_count u32 (+4),
//!                              16 × 128 names, 16 × 512 statuses                 10272 bytes
//! res_lib_cfg_testshutdown     header(24) flags u32 (+4)                         32 bytes
//! res_lib_cfg_nodestatusget_v1 header(24) version u32, nodeid u32, six u8 (+2),
//!                              8 × link {3 × u8 (+1), mtu u32, 2 × 256 text}   4200 bytes
//! ```
//!
//! Every other reply is a bare response header (24 bytes).

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
/// `MESSAGE_RES_CFG_TESTSHUTDOWN`: the shutdown question, an event.
pub const TESTSHUTDOWN_ID: i32 = 10;

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

/// A libcfg request. The fixed sizes are libcfg's `sizeof` of each struct (8-aligned):
///
/// ```text
/// req_lib_cfg_killnode         header(16) nodeid u32 (+4), cs_name_t reason
///                              (u16 length, 256 bytes) (+6)                   288 bytes
/// req_lib_cfg_tryshutdown      header(16) flags u32 (+4)                         24 bytes
/// req_lib_cfg_replytoshutdown  header(16) response u32 (+4)                      24 bytes
/// req_lib_cfg_nodestatusget    header(16) nodeid u32 (+4), version u32 (+4)      32 bytes
/// req_lib_cfg_trackstart       header(16) track_flags u8 (+7)                    24 bytes
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgRequest {
    /// `corosync_cfg_get_node_addrs` (nodeid 0 means the local node).
    GetNodeAddrs {
        /// Header.
        header: RequestHeader,
        /// The node asked about.
        nodeid: u32,
    },
    /// `corosync_cfg_kill_node`.
    KillNode {
        /// Header.
        header: RequestHeader,
        /// The node to stop.
        nodeid: u32,
        /// Why (the `cs_name_t`'s `length` bytes, at most [`CS_MAX_NAME_LENGTH`]).
        reason: Vec<u8>,
    },
    /// `corosync_cfg_try_shutdown`.
    TryShutdown {
        /// Header.
        header: RequestHeader,
        /// `COROSYNC_CFG_SHUTDOWN_FLAG_*`.
        flags: u32,
    },
    /// `corosync_cfg_replyto_shutdown`.
    ReplyToShutdown {
        /// Header.
        header: RequestHeader,
        /// `COROSYNC_CFG_SHUTDOWN_FLAG_NO` (0) or `_YES` (1); corosync counts any non-zero
        /// value as yes.
        response: u32,
    },
    /// `corosync_cfg_node_status_get`.
    NodeStatusGet {
        /// Header.
        header: RequestHeader,
        /// The node asked about.
        nodeid: u32,
        /// `corosync_cfg_node_status_version_t`.
        version: u32,
    },
    /// `corosync_cfg_trackstart`.
    TrackStart {
        /// Header.
        header: RequestHeader,
        /// `track_flags` (corosync ignores them: it only tracks shutdowns).
        flags: u8,
    },
    /// Any other request: only its header is read.
    Other {
        /// Header.
        header: RequestHeader,
    },
}

/// `CS_MAX_NAME_LENGTH` (`corotypes.h`).
pub const CS_MAX_NAME_LENGTH: usize = 256;
/// `COROSYNC_CFG_SHUTDOWN_FLAG_REQUEST`.
pub const SHUTDOWN_FLAG_REQUEST: u32 = 0;
/// `COROSYNC_CFG_SHUTDOWN_FLAG_REGARDLESS`.
pub const SHUTDOWN_FLAG_REGARDLESS: u32 = 1;
/// `COROSYNC_CFG_SHUTDOWN_FLAG_IMMEDIATE`.
pub const SHUTDOWN_FLAG_IMMEDIATE: u32 = 2;
/// `CFG_NODE_STATUS_V1`.
pub const NODE_STATUS_V1: u32 = 1;
/// `CFG_MAX_LINKS`.
pub const CFG_MAX_LINKS: usize = 8;
/// `CFG_MAX_HOST_LEN`.
pub const CFG_MAX_HOST_LEN: usize = 256;
const KILLNODE_REQUEST_LEN: usize = 288;
const NODESTATUSGET_REQUEST_LEN: usize = 32;
const ONE_WORD_REQUEST_LEN: usize = 24;
/// `sizeof(struct res_lib_cfg_nodestatusget_v1)`.
pub const NODESTATUS_V1_RESPONSE_LEN: usize = 24 + 16 + CFG_MAX_LINKS * LINK_STATUS_LEN;
const LINK_STATUS_LEN: usize = 8 + 2 * CFG_MAX_HOST_LEN;

impl CfgRequest {
    /// Parses one request; the calls that carry arguments must carry exactly libcfg's
    /// struct.
    pub fn parse(bytes: &[u8]) -> Result<CfgRequest> {
        let mut d = decoder(bytes);
        let header = request_header(&mut d, bytes.len())?;
        let exact = |d: &crate::codec::Decoder<'_>, field: &'static str, len: usize| {
            if bytes.len() == len {
                Ok(())
            } else {
                Err(d.error(ErrorKind::LengthMismatch {
                    field,
                    declared: len as u64,
                    actual: bytes.len() as u64,
                }))
            }
        };
        Ok(match CfgRequestId::from(header.id) {
            CfgRequestId::GetNodeAddrs => {
                exact(&d, "req_lib_cfg_get_node_addrs", GET_NODE_ADDRS_REQUEST_LEN)?;
                let nodeid = u32_slot(&mut d, "nodeid")?;
                CfgRequest::GetNodeAddrs { header, nodeid }
            }
            CfgRequestId::KillNode => {
                exact(&d, "req_lib_cfg_killnode", KILLNODE_REQUEST_LEN)?;
                let nodeid = u32_slot(&mut d, "nodeid")?;
                let length = usize::from(d.u16("reason.length")?);
                if length > CS_MAX_NAME_LENGTH {
                    return Err(d.error(ErrorKind::CountTooLarge {
                        field: "reason.length",
                        count: length as u64,
                        max: CS_MAX_NAME_LENGTH as u64,
                    }));
                }
                let reason = d.bytes("reason.value", length)?.to_vec();
                CfgRequest::KillNode {
                    header,
                    nodeid,
                    reason,
                }
            }
            CfgRequestId::TryShutdown => {
                exact(&d, "req_lib_cfg_tryshutdown", ONE_WORD_REQUEST_LEN)?;
                let flags = d.u32("flags")?;
                CfgRequest::TryShutdown { header, flags }
            }
            CfgRequestId::ReplyToShutdown => {
                exact(&d, "req_lib_cfg_replytoshutdown", ONE_WORD_REQUEST_LEN)?;
                let response = d.u32("response")?;
                CfgRequest::ReplyToShutdown { header, response }
            }
            CfgRequestId::NodeStatusGet => {
                exact(&d, "req_lib_cfg_nodestatusget", NODESTATUSGET_REQUEST_LEN)?;
                let nodeid = u32_slot(&mut d, "nodeid")?;
                let version = u32_slot(&mut d, "version")?;
                CfgRequest::NodeStatusGet {
                    header,
                    nodeid,
                    version,
                }
            }
            CfgRequestId::TrackStart => {
                exact(&d, "req_lib_cfg_trackstart", ONE_WORD_REQUEST_LEN)?;
                let flags = d.u8("track_flags")?;
                CfgRequest::TrackStart { header, flags }
            }
            _ => CfgRequest::Other { header },
        })
    }

    /// The header.
    pub fn header(&self) -> &RequestHeader {
        match self {
            CfgRequest::GetNodeAddrs { header, .. }
            | CfgRequest::KillNode { header, .. }
            | CfgRequest::TryShutdown { header, .. }
            | CfgRequest::ReplyToShutdown { header, .. }
            | CfgRequest::NodeStatusGet { header, .. }
            | CfgRequest::TrackStart { header, .. }
            | CfgRequest::Other { header } => header,
        }
    }

    /// The request as libcfg sends it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, ByteOrder::Little);
        let head = |e: &mut Encoder<'_>, id: CfgRequestId, size: usize| {
            RequestHeader {
                id: id.into(),
                size: size as i32,
            }
            .emit(e)
        };
        match self {
            CfgRequest::GetNodeAddrs { nodeid, .. } => {
                head(
                    &mut e,
                    CfgRequestId::GetNodeAddrs,
                    GET_NODE_ADDRS_REQUEST_LEN,
                );
                emit_u32_slot(&mut e, *nodeid);
            }
            CfgRequest::KillNode { nodeid, reason, .. } => {
                head(&mut e, CfgRequestId::KillNode, KILLNODE_REQUEST_LEN);
                emit_u32_slot(&mut e, *nodeid);
                let reason = &reason[..reason.len().min(CS_MAX_NAME_LENGTH)];
                e.u16(reason.len() as u16);
                e.bytes(reason);
                e.zeros(KILLNODE_REQUEST_LEN - 26 - reason.len());
            }
            CfgRequest::TryShutdown { flags, .. } => {
                head(&mut e, CfgRequestId::TryShutdown, ONE_WORD_REQUEST_LEN);
                emit_u32_slot(&mut e, *flags);
            }
            CfgRequest::ReplyToShutdown { response, .. } => {
                head(&mut e, CfgRequestId::ReplyToShutdown, ONE_WORD_REQUEST_LEN);
                emit_u32_slot(&mut e, *response);
            }
            CfgRequest::NodeStatusGet {
                nodeid, version, ..
            } => {
                head(
                    &mut e,
                    CfgRequestId::NodeStatusGet,
                    NODESTATUSGET_REQUEST_LEN,
                );
                emit_u32_slot(&mut e, *nodeid);
                emit_u32_slot(&mut e, *version);
            }
            CfgRequest::TrackStart { flags, .. } => {
                head(&mut e, CfgRequestId::TrackStart, ONE_WORD_REQUEST_LEN);
                e.u8(*flags);
                e.zeros(7);
            }
            CfgRequest::Other { header } => RequestHeader {
                size: 16,
                ..*header
            }
            .emit(&mut e),
        }
        out
    }
}

/// One knet link in a node status (`struct corosync_knet_link_status_v1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Configured and administratively enabled.
    pub enabled: bool,
    /// Connected for data (this node's view).
    pub connected: bool,
    /// Activated by a remote dynamic address.
    pub dynconnected: bool,
    /// The link's current MTU.
    pub mtu: u32,
    /// Source address, as text (at most 255 bytes are sent).
    pub src_ipaddr: String,
    /// Destination address, as text.
    pub dst_ipaddr: String,
}

/// `struct corosync_cfg_node_status_v1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node.
    pub nodeid: u32,
    /// Reachable over some link.
    pub reachable: bool,
    /// knet's `remote` (the host is not this one).
    pub remote: bool,
    /// knet's `external`.
    pub external: bool,
    /// knet's on-wire versions (min, max, in use).
    pub onwire: (u8, u8, u8),
    /// Links 0..[`CFG_MAX_LINKS`].
    pub links: [LinkStatus; CFG_MAX_LINKS],
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
    /// `res_lib_cfg_testshutdown` (an event on the dispatch channel, header + flags:
    /// 32 bytes): "may this node shut down?", or with `CS_ERR_TIMEOUT` "too late".
    TestShutdown {
        /// `CS_OK`, or `CS_ERR_TIMEOUT` when the question timed out.
        error: CsError,
        /// The requester's `COROSYNC_CFG_SHUTDOWN_FLAG_*`.
        flags: u32,
    },
    /// `res_lib_cfg_nodestatusget_v1` (4200 bytes).
    NodeStatusV1(Box<NodeStatus>),
    /// `res_lib_cfg_nodestatusget_version`: a failure, with the version field zero
    /// (32 bytes).
    NodeStatusVersion {
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
            CfgResponse::TestShutdown { error, flags } => {
                header(TESTSHUTDOWN_ID, 32, *error).emit(&mut e);
                emit_u32_slot(&mut e, *flags);
            }
            CfgResponse::NodeStatusVersion { error } => {
                let id = CfgRequestId::NodeStatusGet.response_id();
                header(id, 32, *error).emit(&mut e);
                e.zeros(8);
            }
            CfgResponse::NodeStatusV1(status) => {
                let id = CfgRequestId::NodeStatusGet.response_id();
                header(id, NODESTATUS_V1_RESPONSE_LEN, CsError::Ok).emit(&mut e);
                e.u32(NODE_STATUS_V1);
                e.u32(status.nodeid);
                e.u8(u8::from(status.reachable));
                e.u8(u8::from(status.remote));
                e.u8(u8::from(status.external));
                e.u8(status.onwire.0);
                e.u8(status.onwire.1);
                e.u8(status.onwire.2);
                e.zeros(2);
                for link in &status.links {
                    e.u8(u8::from(link.enabled));
                    e.u8(u8::from(link.connected));
                    e.u8(u8::from(link.dynconnected));
                    e.zeros(1);
                    e.u32(link.mtu);
                    for text in [&link.src_ipaddr, &link.dst_ipaddr] {
                        // A C string in a fixed slot: at most 255 bytes and its NUL.
                        let b = &text.as_bytes()[..text.len().min(CFG_MAX_HOST_LEN - 1)];
                        e.bytes(b);
                        e.zeros(CFG_MAX_HOST_LEN - b.len());
                    }
                }
            }
        }
        out
    }
}
