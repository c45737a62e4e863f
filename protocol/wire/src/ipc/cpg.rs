//! CPG requests, responses and events between libcpg and corosync (corosync
//! `include/corosync/ipc_cpg.h`, `lib/cpg.c`, `exec/cpg.c`; ipc.md §4).
//!
//! Groups are `mar_cpg_name_t`, the same struct the exec messages carry, so
//! [`CpgName`] is shared with [`crate::exec::cpg`].

use crate::codec::{Decoder, Encoder};
use crate::error::{ErrorKind, Result};
use crate::exec::cpg::{ConfchgReason, CpgName, PartialType};
use crate::ipc::{
    check_size, decoder, emit_u32_slot, finish, response_header, u32_slot, CsError, RequestHeader,
    ResponseHeader, IPC_MAX_MSG_LEN, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN,
};
use crate::macros::open_enum;
use crate::ByteOrder;

/// `CPG_MEMBERS_MAX` (corosync `cpg.h`): the size of the arrays `cpg_dispatch` copies a
/// confchg's lists into. More entries would overflow the client's stack.
pub const CPG_MEMBERS_MAX: u64 = 128;
/// `PROCESSOR_COUNT_MAX` (corodefs.h): the size of MEMBERSHIP's member array.
pub const MEMBERSHIP_ARRAY_LEN: usize = 384;
/// `CPG_ZC_PATH_LEN` (ipc_cpg.h).
pub const ZC_PATH_LEN: usize = 128;
/// Size of `mar_cpg_address_t`.
pub const ADDRESS_LEN: usize = 24;
/// Size of `res_lib_cpg_membership_get` (always sent whole).
pub const MEMBERSHIP_RESPONSE_LEN: usize = 9248;
/// Bytes of a DELIVER event before the payload.
pub const DELIVER_FIXED_LEN: usize = 184;
/// Bytes of a PARTIAL_DELIVER event before the fragment.
pub const PARTIAL_DELIVER_FIXED_LEN: usize = 200;
/// Bytes of an MCAST request before the payload.
pub const MCAST_FIXED_LEN: usize = 40;
/// Bytes of a PARTIAL_MCAST request before the fragment.
pub const PARTIAL_MCAST_FIXED_LEN: usize = 56;
/// Bytes of a CONFCHG event before the address lists.
pub const CONFCHG_FIXED_LEN: usize = 184;
/// Bytes of a TOTEM_CONFCHG event before the nodeid list (`member_list` starts at 44).
pub const TOTEM_CONFCHG_LIST_OFFSET: usize = 44;

open_enum! {
    /// Request ids (`enum req_cpg_types`).
    pub enum CpgRequestId(i32) {
        /// `MESSAGE_REQ_CPG_JOIN`.
        Join = 0 => "JOIN",
        /// `MESSAGE_REQ_CPG_LEAVE`.
        Leave = 1 => "LEAVE",
        /// `MESSAGE_REQ_CPG_MCAST`.
        Mcast = 2 => "MCAST",
        /// `MESSAGE_REQ_CPG_MEMBERSHIP`.
        Membership = 3 => "MEMBERSHIP",
        /// `MESSAGE_REQ_CPG_LOCAL_GET`.
        LocalGet = 4 => "LOCAL_GET",
        /// `MESSAGE_REQ_CPG_ITERATIONINITIALIZE`.
        IterationInitialize = 5 => "ITERATIONINITIALIZE",
        /// `MESSAGE_REQ_CPG_ITERATIONNEXT`.
        IterationNext = 6 => "ITERATIONNEXT",
        /// `MESSAGE_REQ_CPG_ITERATIONFINALIZE`.
        IterationFinalize = 7 => "ITERATIONFINALIZE",
        /// `MESSAGE_REQ_CPG_FINALIZE`.
        Finalize = 8 => "FINALIZE",
        /// `MESSAGE_REQ_CPG_ZC_ALLOC`.
        ZcAlloc = 9 => "ZC_ALLOC",
        /// `MESSAGE_REQ_CPG_ZC_FREE`.
        ZcFree = 10 => "ZC_FREE",
        /// `MESSAGE_REQ_CPG_ZC_EXECUTE`.
        ZcExecute = 11 => "ZC_EXECUTE",
        /// `MESSAGE_REQ_CPG_PARTIAL_MCAST`.
        PartialMcast = 12 => "PARTIAL_MCAST",
    }
}

open_enum! {
    /// Response and event ids (`enum res_cpg_types`).
    pub enum CpgResponseId(i32) {
        /// `MESSAGE_RES_CPG_JOIN`; also the id of zc alloc/free replies and of every error
        /// reply from corosync's IPC glue (`cs_ipcs_msg_process`).
        Join = 0 => "JOIN",
        /// `MESSAGE_RES_CPG_LEAVE`.
        Leave = 1 => "LEAVE",
        /// `MESSAGE_RES_CPG_MCAST` (only as the ZC_EXECUTE reply).
        Mcast = 2 => "MCAST",
        /// `MESSAGE_RES_CPG_MEMBERSHIP`.
        Membership = 3 => "MEMBERSHIP",
        /// `MESSAGE_RES_CPG_CONFCHG_CALLBACK` (event).
        ConfchgCallback = 4 => "CONFCHG_CALLBACK",
        /// `MESSAGE_RES_CPG_DELIVER_CALLBACK` (event).
        DeliverCallback = 5 => "DELIVER_CALLBACK",
        /// `MESSAGE_RES_CPG_FLOW_CONTROL_STATE_SET` (never sent).
        FlowControlStateSet = 6 => "FLOW_CONTROL_STATE_SET",
        /// `MESSAGE_RES_CPG_LOCAL_GET`.
        LocalGet = 7 => "LOCAL_GET",
        /// `MESSAGE_RES_CPG_FLOWCONTROL_CALLBACK` (never sent).
        FlowcontrolCallback = 8 => "FLOWCONTROL_CALLBACK",
        /// `MESSAGE_RES_CPG_ITERATIONINITIALIZE`.
        IterationInitialize = 9 => "ITERATIONINITIALIZE",
        /// `MESSAGE_RES_CPG_ITERATIONNEXT`.
        IterationNext = 10 => "ITERATIONNEXT",
        /// `MESSAGE_RES_CPG_ITERATIONFINALIZE`.
        IterationFinalize = 11 => "ITERATIONFINALIZE",
        /// `MESSAGE_RES_CPG_FINALIZE`.
        Finalize = 12 => "FINALIZE",
        /// `MESSAGE_RES_CPG_TOTEM_CONFCHG_CALLBACK` (event).
        TotemConfchgCallback = 13 => "TOTEM_CONFCHG_CALLBACK",
        /// `MESSAGE_RES_CPG_ZC_ALLOC` (unused by 3.1.7).
        ZcAlloc = 14 => "ZC_ALLOC",
        /// `MESSAGE_RES_CPG_ZC_FREE` (unused by 3.1.7).
        ZcFree = 15 => "ZC_FREE",
        /// `MESSAGE_RES_CPG_ZC_EXECUTE` (unused by 3.1.7).
        ZcExecute = 16 => "ZC_EXECUTE",
        /// `MESSAGE_RES_CPG_PARTIAL_DELIVER_CALLBACK` (event).
        PartialDeliverCallback = 17 => "PARTIAL_DELIVER_CALLBACK",
        /// `MESSAGE_RES_CPG_PARTIAL_SEND`.
        PartialSend = 18 => "PARTIAL_SEND",
    }
}

impl CpgRequestId {
    /// The response id corosync 3.1.7 answers this request with (ipc.md §4.3): each
    /// `message_handler_req_lib_cpg_*` of `exec/cpg.c` sets its own, except that the zc
    /// alloc/free replies go out with id 0 (JOIN's), ZC_EXECUTE's with MCAST's, and the
    /// IPC glue answers a request it cannot dispatch (an unknown id) with `{id 0, size 24}`
    /// (ipc.md §3.4). MCAST has no response (`is_async_call`); MCAST's id is given for the
    /// ZC_EXECUTE reply that shares it.
    pub fn response_id(self) -> CpgResponseId {
        match self {
            CpgRequestId::Join | CpgRequestId::ZcAlloc | CpgRequestId::ZcFree => {
                CpgResponseId::Join
            }
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
        }
    }
}

open_enum! {
    /// `cpg_iteration_type_t` (cpg.h).
    pub enum IterationType(u32) {
        /// `CPG_ITERATION_NAME_ONLY`.
        NameOnly = 1 => "NAME_ONLY",
        /// `CPG_ITERATION_ONE_GROUP`.
        OneGroup = 2 => "ONE_GROUP",
        /// `CPG_ITERATION_ALL`.
        All = 3 => "ALL",
    }
}

open_enum! {
    /// `cpg_guarantee_t` (cpg.h); corosync ignores it and always delivers AGREED.
    pub enum Guarantee(u32) {
        /// `CPG_TYPE_UNORDERED`.
        Unordered = 0 => "UNORDERED",
        /// `CPG_TYPE_FIFO`.
        Fifo = 1 => "FIFO",
        /// `CPG_TYPE_AGREED`.
        Agreed = 2 => "AGREED",
        /// `CPG_TYPE_SAFE`.
        Safe = 3 => "SAFE",
    }
}

/// `mar_cpg_address_t` (24 bytes: nodeid @0, pid @8, reason @16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpgAddress {
    /// Node.
    pub nodeid: u32,
    /// Process.
    pub pid: u32,
    /// Why it is in the list (member lists carry UNDEFINED).
    pub reason: ConfchgReason,
}

impl CpgAddress {
    fn parse(d: &mut Decoder<'_>) -> Result<CpgAddress> {
        let nodeid = d.u32("address.nodeid")?;
        d.pad(4)?;
        let pid = d.u32("address.pid")?;
        d.pad(4)?;
        let reason = d.u32("address.reason")?.into();
        d.pad(4)?;
        Ok(CpgAddress {
            nodeid,
            pid,
            reason,
        })
    }

    fn emit(&self, e: &mut Encoder<'_>) {
        e.u32(self.nodeid);
        e.zeros(4);
        e.u32(self.pid);
        e.zeros(4);
        e.u32(self.reason.into());
        e.zeros(4);
    }
}

/// A client → server request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpgRequest<'a> {
    /// 0: `req_lib_cpg_join` (168 bytes).
    Join {
        /// Header.
        header: RequestHeader,
        /// The group.
        group: CpgName,
        /// The caller's `getpid()`.
        pid: u32,
        /// `cpg_model_initialize` flags (0x01: deliver the initial totem confchg).
        flags: u32,
    },
    /// 1: `req_lib_cpg_leave` (160 bytes).
    Leave {
        /// Header.
        header: RequestHeader,
        /// The group.
        group: CpgName,
        /// The caller's pid.
        pid: u32,
    },
    /// 2: `req_lib_cpg_mcast`: no response ever comes.
    Mcast {
        /// A response-style header (its `error` is garbage).
        header: ResponseHeader,
        /// Requested ordering.
        guarantee: Guarantee,
        /// Payload length.
        msglen: u32,
        /// Payload.
        data: &'a [u8],
    },
    /// 3: `req_lib_cpg_membership_get` (152 bytes).
    Membership {
        /// Header.
        header: RequestHeader,
        /// The group.
        group: CpgName,
    },
    /// 4: `req_lib_cpg_local_get` (header only).
    LocalGet {
        /// Header.
        header: RequestHeader,
    },
    /// 5: `req_lib_cpg_iterationinitialize` (160 bytes).
    IterationInitialize {
        /// Header.
        header: RequestHeader,
        /// Only meaningful for ONE_GROUP; otherwise uninitialised bytes.
        group: CpgName,
        /// What to iterate.
        iteration_type: IterationType,
    },
    /// 6: `req_lib_cpg_iterationnext` (24 bytes).
    IterationNext {
        /// Header.
        header: RequestHeader,
        /// The handle ITERATIONINITIALIZE returned.
        handle: u64,
    },
    /// 7: `req_lib_cpg_iterationfinalize` (24 bytes).
    IterationFinalize {
        /// Header.
        header: RequestHeader,
        /// The handle.
        handle: u64,
    },
    /// 8: `req_lib_cpg_finalize` (header only).
    Finalize {
        /// Header.
        header: RequestHeader,
    },
    /// 9: `req_lib_cpg_zc_alloc` (152 bytes).
    ZcAlloc {
        /// Header.
        header: RequestHeader,
        /// Size of the shared file: payload + 56.
        map_size: u64,
        /// The client's `/dev/shm/corosync_zerocopy-XXXXXX`, up to its NUL.
        path: Vec<u8>,
    },
    /// 10: `req_lib_cpg_zc_free` (32 bytes).
    ZcFree {
        /// Header.
        header: RequestHeader,
        /// Size of the mapping.
        map_size: u64,
        /// The server's token for it.
        server_address: u64,
    },
    /// 11: `req_lib_cpg_zc_execute` (24 bytes); the payload stays in the shared file.
    ZcExecute {
        /// Header.
        header: RequestHeader,
        /// The server's token for the buffer.
        server_address: u64,
    },
    /// 12: `req_lib_cpg_partial_mcast`: one piece of a message above 1047552 bytes.
    PartialMcast {
        /// A response-style header (its `error` is garbage).
        header: ResponseHeader,
        /// Requested ordering.
        guarantee: Guarantee,
        /// Length of the whole message.
        msglen: u32,
        /// Length of this piece.
        fraglen: u32,
        /// FIRST, CONTINUED or LAST.
        kind: PartialType,
        /// This piece.
        data: &'a [u8],
    },
    /// An id corosync 3.1.7 does not define (it answers CS_ERR_INVALID_PARAM).
    Unknown {
        /// Header.
        header: RequestHeader,
        /// Everything after the header.
        body: &'a [u8],
    },
}

impl<'a> CpgRequest<'a> {
    /// Parses one request.
    pub fn parse(bytes: &'a [u8]) -> Result<CpgRequest<'a>> {
        let mut d = decoder(bytes);
        let id = CpgRequestId::from(d.clone().i32("id")?);
        let request = match id {
            CpgRequestId::Mcast => {
                let header = response_header(&mut d, bytes.len())?;
                let guarantee = d.u32("guarantee")?.into();
                d.pad(4)?;
                let len_offset = d.offset();
                let msglen = d.u32("msglen")?;
                d.pad(4)?;
                let data = payload(&mut d, msglen, len_offset, "msglen")?;
                CpgRequest::Mcast {
                    header,
                    guarantee,
                    msglen,
                    data,
                }
            }
            CpgRequestId::PartialMcast => {
                let header = response_header(&mut d, bytes.len())?;
                let guarantee = d.u32("guarantee")?.into();
                d.pad(4)?;
                let msglen = d.u32("msglen")?;
                d.pad(4)?;
                let len_offset = d.offset();
                let fraglen = d.u32("fraglen")?;
                d.pad(4)?;
                let kind = d.u32("type")?.into();
                d.pad(4)?;
                let data = payload(&mut d, fraglen, len_offset, "fraglen")?;
                CpgRequest::PartialMcast {
                    header,
                    guarantee,
                    msglen,
                    fraglen,
                    kind,
                    data,
                }
            }
            _ => {
                let header = RequestHeader::parse(&mut d)?;
                check_size(header.size, bytes.len())?;
                let request = match id {
                    CpgRequestId::Join => {
                        let group = CpgName::parse(&mut d)?;
                        let pid = u32_slot(&mut d, "pid")?;
                        let flags = u32_slot(&mut d, "flags")?;
                        CpgRequest::Join {
                            header,
                            group,
                            pid,
                            flags,
                        }
                    }
                    CpgRequestId::Leave => {
                        let group = CpgName::parse(&mut d)?;
                        let pid = u32_slot(&mut d, "pid")?;
                        CpgRequest::Leave { header, group, pid }
                    }
                    CpgRequestId::Membership => CpgRequest::Membership {
                        header,
                        group: CpgName::parse(&mut d)?,
                    },
                    CpgRequestId::LocalGet => CpgRequest::LocalGet { header },
                    CpgRequestId::IterationInitialize => {
                        let group = CpgName::parse(&mut d)?;
                        let iteration_type = u32_slot(&mut d, "iteration_type")?.into();
                        CpgRequest::IterationInitialize {
                            header,
                            group,
                            iteration_type,
                        }
                    }
                    CpgRequestId::IterationNext => CpgRequest::IterationNext {
                        header,
                        handle: d.u64("iteration_handle")?,
                    },
                    CpgRequestId::IterationFinalize => CpgRequest::IterationFinalize {
                        header,
                        handle: d.u64("iteration_handle")?,
                    },
                    CpgRequestId::Finalize => CpgRequest::Finalize { header },
                    CpgRequestId::ZcAlloc => {
                        let map_size = d.u64("map_size")?;
                        let path =
                            crate::ipc::setup::c_string(d.bytes("path_to_file", ZC_PATH_LEN)?);
                        CpgRequest::ZcAlloc {
                            header,
                            map_size,
                            path,
                        }
                    }
                    CpgRequestId::ZcFree => CpgRequest::ZcFree {
                        header,
                        map_size: d.u64("map_size")?,
                        server_address: d.u64("server_address")?,
                    },
                    CpgRequestId::ZcExecute => CpgRequest::ZcExecute {
                        header,
                        server_address: d.u64("server_address")?,
                    },
                    // MCAST and PARTIAL_MCAST were handled above.
                    CpgRequestId::Mcast | CpgRequestId::PartialMcast | CpgRequestId::Unknown(_) => {
                        CpgRequest::Unknown {
                            header,
                            body: d.take_rest(),
                        }
                    }
                };
                finish(&d, "request")?;
                request
            }
        };
        Ok(request)
    }

    /// The request id.
    pub fn id(&self) -> CpgRequestId {
        match self {
            CpgRequest::Mcast { .. } => CpgRequestId::Mcast,
            CpgRequest::PartialMcast { .. } => CpgRequestId::PartialMcast,
            CpgRequest::Join { header, .. }
            | CpgRequest::Leave { header, .. }
            | CpgRequest::Membership { header, .. }
            | CpgRequest::LocalGet { header }
            | CpgRequest::IterationInitialize { header, .. }
            | CpgRequest::IterationNext { header, .. }
            | CpgRequest::IterationFinalize { header, .. }
            | CpgRequest::Finalize { header }
            | CpgRequest::ZcAlloc { header, .. }
            | CpgRequest::ZcFree { header, .. }
            | CpgRequest::ZcExecute { header, .. }
            | CpgRequest::Unknown { header, .. } => header.id.into(),
        }
    }

    /// Does libcpg wait for a response? Every request except MCAST
    /// (`cs_ipcs_msg_process`'s `is_async_call`).
    pub fn expects_response(&self) -> bool {
        !matches!(self, CpgRequest::Mcast { .. })
    }

    /// The group the request names, if it has one.
    pub fn group(&self) -> Option<&CpgName> {
        match self {
            CpgRequest::Join { group, .. }
            | CpgRequest::Leave { group, .. }
            | CpgRequest::Membership { group, .. } => Some(group),
            CpgRequest::IterationInitialize {
                group,
                iteration_type: IterationType::OneGroup,
                ..
            } => Some(group),
            _ => None,
        }
    }

    /// Appends the request (padding zeroed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Little);
        match self {
            CpgRequest::Join {
                header,
                group,
                pid,
                flags,
            } => {
                header.emit(&mut e);
                group.emit(&mut e);
                emit_u32_slot(&mut e, *pid);
                emit_u32_slot(&mut e, *flags);
            }
            CpgRequest::Leave { header, group, pid } => {
                header.emit(&mut e);
                group.emit(&mut e);
                emit_u32_slot(&mut e, *pid);
            }
            CpgRequest::Mcast {
                header,
                guarantee,
                msglen,
                data,
            } => {
                header.emit(&mut e);
                emit_u32_slot(&mut e, (*guarantee).into());
                emit_u32_slot(&mut e, *msglen);
                e.bytes(data);
            }
            CpgRequest::Membership { header, group } => {
                header.emit(&mut e);
                group.emit(&mut e);
            }
            CpgRequest::LocalGet { header } | CpgRequest::Finalize { header } => {
                header.emit(&mut e)
            }
            CpgRequest::IterationInitialize {
                header,
                group,
                iteration_type,
            } => {
                header.emit(&mut e);
                group.emit(&mut e);
                emit_u32_slot(&mut e, (*iteration_type).into());
            }
            CpgRequest::IterationNext { header, handle }
            | CpgRequest::IterationFinalize { header, handle } => {
                header.emit(&mut e);
                e.u64(*handle);
            }
            CpgRequest::ZcAlloc {
                header,
                map_size,
                path,
            } => {
                header.emit(&mut e);
                e.u64(*map_size);
                // `cpg_zcb_alloc` refuses paths that leave no NUL (CS_ERR_NAME_TOO_LONG),
                // but a decoded message may have none: keep all 128 bytes then.
                let n = path.len().min(ZC_PATH_LEN);
                e.bytes(&path[..n]);
                e.zeros(ZC_PATH_LEN - n);
            }
            CpgRequest::ZcFree {
                header,
                map_size,
                server_address,
            } => {
                header.emit(&mut e);
                e.u64(*map_size);
                e.u64(*server_address);
            }
            CpgRequest::ZcExecute {
                header,
                server_address,
            } => {
                header.emit(&mut e);
                e.u64(*server_address);
            }
            CpgRequest::PartialMcast {
                header,
                guarantee,
                msglen,
                fraglen,
                kind,
                data,
            } => {
                header.emit(&mut e);
                emit_u32_slot(&mut e, (*guarantee).into());
                emit_u32_slot(&mut e, *msglen);
                emit_u32_slot(&mut e, *fraglen);
                emit_u32_slot(&mut e, (*kind).into());
                e.bytes(data);
            }
            CpgRequest::Unknown { header, body } => {
                header.emit(&mut e);
                e.bytes(body);
            }
        }
    }
}

/// A server → client response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpgResponse {
    /// A 24-byte header-only reply: JOIN, LEAVE, MCAST (ZC_EXECUTE's reply),
    /// ITERATIONFINALIZE, FINALIZE, PARTIAL_SEND, the zc alloc/free replies (id 0, error
    /// uninitialised) and the glue's error replies (id 0).
    Status {
        /// Header; `error` is the result.
        header: ResponseHeader,
    },
    /// 3: `res_lib_cpg_membership_get` (9248 bytes, always whole).
    Membership {
        /// Header.
        header: ResponseHeader,
        /// The `member_count` meaningful entries (the rest of the 384 are uninitialised).
        members: Vec<CpgAddress>,
    },
    /// 7: `res_lib_cpg_local_get` (32 bytes).
    LocalGet {
        /// Header.
        header: ResponseHeader,
        /// This node's id.
        local_nodeid: u32,
    },
    /// 9: `res_lib_cpg_iterationinitialize` (32 bytes).
    IterationInitialize {
        /// Header.
        header: ResponseHeader,
        /// The new iteration's handle.
        handle: u64,
    },
    /// 10: `res_lib_cpg_iterationnext` (168 bytes); the description is unset when
    /// `error` is CS_ERR_NO_SECTIONS.
    IterationNext {
        /// Header.
        header: ResponseHeader,
        /// The group.
        group: CpgName,
        /// Node (0 for NAME_ONLY).
        nodeid: u32,
        /// Process (0 for NAME_ONLY).
        pid: u32,
    },
    /// Any other id or size.
    Unknown {
        /// Header.
        header: ResponseHeader,
        /// Everything after the header.
        body: Vec<u8>,
    },
}

impl CpgResponse {
    /// Parses one response. The id alone cannot say which request it answers (JOIN's id 0
    /// is also the glue's error reply's); pair it with the outstanding request for that.
    pub fn parse(bytes: &[u8]) -> Result<CpgResponse> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        let response = match (CpgResponseId::from(header.id), bytes.len()) {
            (_, RESPONSE_HEADER_LEN) => CpgResponse::Status { header },
            (CpgResponseId::Membership, _) => {
                let count_offset = d.offset();
                let count = u32_slot(&mut d, "member_count")?;
                let n = d.bounded_count(
                    "member_count",
                    count.into(),
                    MEMBERSHIP_ARRAY_LEN as u64,
                    ADDRESS_LEN,
                    count_offset,
                )?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push(CpgAddress::parse(&mut d)?);
                }
                d.bytes("member_list", (MEMBERSHIP_ARRAY_LEN - n) * ADDRESS_LEN)?;
                CpgResponse::Membership { header, members }
            }
            (CpgResponseId::LocalGet, _) => CpgResponse::LocalGet {
                header,
                local_nodeid: u32_slot(&mut d, "local_nodeid")?,
            },
            (CpgResponseId::IterationInitialize, _) => CpgResponse::IterationInitialize {
                header,
                handle: d.u64("iteration_handle")?,
            },
            (CpgResponseId::IterationNext, _) => {
                let group = CpgName::parse(&mut d)?;
                let nodeid = d.u32("nodeid")?;
                let pid = d.u32("pid")?;
                CpgResponse::IterationNext {
                    header,
                    group,
                    nodeid,
                    pid,
                }
            }
            _ => CpgResponse::Unknown {
                header,
                body: d.take_rest().to_vec(),
            },
        };
        finish(&d, "response")?;
        Ok(response)
    }

    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        match self {
            CpgResponse::Status { header }
            | CpgResponse::Membership { header, .. }
            | CpgResponse::LocalGet { header, .. }
            | CpgResponse::IterationInitialize { header, .. }
            | CpgResponse::IterationNext { header, .. }
            | CpgResponse::Unknown { header, .. } => header,
        }
    }

    /// Appends the response (padding and unused entries zeroed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Little);
        self.header().emit(&mut e);
        match self {
            CpgResponse::Status { .. } => {}
            CpgResponse::Membership { members, .. } => {
                emit_u32_slot(&mut e, members.len() as u32);
                let n = members.len().min(MEMBERSHIP_ARRAY_LEN);
                for m in &members[..n] {
                    m.emit(&mut e);
                }
                e.zeros((MEMBERSHIP_ARRAY_LEN - n) * ADDRESS_LEN);
            }
            CpgResponse::LocalGet { local_nodeid, .. } => emit_u32_slot(&mut e, *local_nodeid),
            CpgResponse::IterationInitialize { handle, .. } => e.u64(*handle),
            CpgResponse::IterationNext {
                group, nodeid, pid, ..
            } => {
                group.emit(&mut e);
                e.u32(*nodeid);
                e.u32(*pid);
            }
            CpgResponse::Unknown { body, .. } => e.bytes(body),
        }
    }
}

/// A server → client event (callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpgEvent<'a> {
    /// 4: `res_lib_cpg_confchg_callback`.
    Confchg {
        /// Header.
        header: ResponseHeader,
        /// The group.
        group: CpgName,
        /// Members after the change.
        members: Vec<CpgAddress>,
        /// Who left.
        left: Vec<CpgAddress>,
        /// Who joined.
        joined: Vec<CpgAddress>,
    },
    /// 5: `res_lib_cpg_deliver_callback`.
    Deliver {
        /// Header.
        header: ResponseHeader,
        /// The group.
        group: CpgName,
        /// Payload length.
        msglen: u32,
        /// Sending node.
        nodeid: u32,
        /// Sending process.
        pid: u32,
        /// Payload.
        data: &'a [u8],
    },
    /// 13: `res_lib_cpg_totem_confchg_callback`.
    TotemConfchg {
        /// Header.
        header: ResponseHeader,
        /// Ring id: representative.
        ring_nodeid: u32,
        /// Ring id: sequence.
        ring_seq: u64,
        /// The ring's members.
        members: Vec<u32>,
    },
    /// 17: `res_lib_cpg_partial_deliver_callback`.
    PartialDeliver {
        /// Header.
        header: ResponseHeader,
        /// The group.
        group: CpgName,
        /// Length of the whole message.
        msglen: u32,
        /// Length of this piece.
        fraglen: u32,
        /// Sending node.
        nodeid: u32,
        /// Sending process.
        pid: u32,
        /// FIRST, CONTINUED or LAST.
        kind: PartialType,
        /// This piece.
        data: &'a [u8],
    },
    /// Any other id: `cpg_dispatch` answers it with CS_ERR_LIBRARY.
    Unknown {
        /// Header.
        header: ResponseHeader,
        /// Everything after the header.
        body: &'a [u8],
    },
}

impl<'a> CpgEvent<'a> {
    /// Parses one event.
    pub fn parse(bytes: &'a [u8]) -> Result<CpgEvent<'a>> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        let event = match CpgResponseId::from(header.id) {
            CpgResponseId::ConfchgCallback => {
                let group = CpgName::parse(&mut d)?;
                let m_off = d.offset();
                let m = u32_slot(&mut d, "member_list_entries")?;
                let j_off = d.offset();
                let j = u32_slot(&mut d, "joined_list_entries")?;
                let l_off = d.offset();
                let l = u32_slot(&mut d, "left_list_entries")?;
                // Each list goes into a CPG_MEMBERS_MAX array in `cpg_dispatch`; the three
                // together must also be present.
                let m = d.bounded_count(
                    "member_list_entries",
                    m.into(),
                    CPG_MEMBERS_MAX,
                    ADDRESS_LEN,
                    m_off,
                )?;
                let j =
                    d.bounded_count("joined_list_entries", j.into(), CPG_MEMBERS_MAX, 0, j_off)?;
                let l =
                    d.bounded_count("left_list_entries", l.into(), CPG_MEMBERS_MAX, 0, l_off)?;
                d.bounded_count(
                    "address lists",
                    (m + j + l) as u64,
                    3 * CPG_MEMBERS_MAX,
                    ADDRESS_LEN,
                    m_off,
                )?;
                // Array order is members, left, joined (`cpg_dispatch`), not the order of
                // the count fields.
                let members = addresses(&mut d, m)?;
                let left = addresses(&mut d, l)?;
                let joined = addresses(&mut d, j)?;
                CpgEvent::Confchg {
                    header,
                    group,
                    members,
                    left,
                    joined,
                }
            }
            CpgResponseId::DeliverCallback => {
                let group = CpgName::parse(&mut d)?;
                let len_offset = d.offset();
                let msglen = u32_slot(&mut d, "msglen")?;
                let nodeid = u32_slot(&mut d, "nodeid")?;
                let pid = u32_slot(&mut d, "pid")?;
                let data = payload(&mut d, msglen, len_offset, "msglen")?;
                CpgEvent::Deliver {
                    header,
                    group,
                    msglen,
                    nodeid,
                    pid,
                    data,
                }
            }
            CpgResponseId::TotemConfchgCallback => {
                let ring_nodeid = u32_slot(&mut d, "ring_id.nodeid")?;
                let ring_seq = d.u64("ring_id.seq")?;
                let count_offset = d.offset();
                let n = d.u32("member_list_entries")?;
                let n = d.bounded_count(
                    "member_list_entries",
                    n.into(),
                    CPG_MEMBERS_MAX,
                    4,
                    count_offset,
                )?;
                let members = d.u32_list("member_list", n)?;
                // sizeof(res_lib_cpg_totem_confchg_callback) is 48, the list starts at 44,
                // and corosync sends sizeof + 4n: 4 bytes of garbage follow the list.
                d.pad(4)?;
                CpgEvent::TotemConfchg {
                    header,
                    ring_nodeid,
                    ring_seq,
                    members,
                }
            }
            CpgResponseId::PartialDeliverCallback => {
                let group = CpgName::parse(&mut d)?;
                let msglen = u32_slot(&mut d, "msglen")?;
                let len_offset = d.offset();
                let fraglen = u32_slot(&mut d, "fraglen")?;
                let nodeid = u32_slot(&mut d, "nodeid")?;
                let pid = u32_slot(&mut d, "pid")?;
                let kind = u32_slot(&mut d, "type")?.into();
                let data = payload(&mut d, fraglen, len_offset, "fraglen")?;
                CpgEvent::PartialDeliver {
                    header,
                    group,
                    msglen,
                    fraglen,
                    nodeid,
                    pid,
                    kind,
                    data,
                }
            }
            _ => CpgEvent::Unknown {
                header,
                body: d.take_rest(),
            },
        };
        finish(&d, "event")?;
        Ok(event)
    }

    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        match self {
            CpgEvent::Confchg { header, .. }
            | CpgEvent::Deliver { header, .. }
            | CpgEvent::TotemConfchg { header, .. }
            | CpgEvent::PartialDeliver { header, .. }
            | CpgEvent::Unknown { header, .. } => header,
        }
    }

    /// The group the event is about, if one.
    pub fn group(&self) -> Option<&CpgName> {
        match self {
            CpgEvent::Confchg { group, .. }
            | CpgEvent::Deliver { group, .. }
            | CpgEvent::PartialDeliver { group, .. } => Some(group),
            _ => None,
        }
    }

    /// Appends the event (padding zeroed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Little);
        self.header().emit(&mut e);
        match self {
            CpgEvent::Confchg {
                group,
                members,
                left,
                joined,
                ..
            } => {
                group.emit(&mut e);
                emit_u32_slot(&mut e, members.len() as u32);
                emit_u32_slot(&mut e, joined.len() as u32);
                emit_u32_slot(&mut e, left.len() as u32);
                for a in members.iter().chain(left).chain(joined) {
                    a.emit(&mut e);
                }
            }
            CpgEvent::Deliver {
                group,
                msglen,
                nodeid,
                pid,
                data,
                ..
            } => {
                group.emit(&mut e);
                emit_u32_slot(&mut e, *msglen);
                emit_u32_slot(&mut e, *nodeid);
                emit_u32_slot(&mut e, *pid);
                e.bytes(data);
            }
            CpgEvent::TotemConfchg {
                ring_nodeid,
                ring_seq,
                members,
                ..
            } => {
                emit_u32_slot(&mut e, *ring_nodeid);
                e.u64(*ring_seq);
                e.u32(members.len() as u32);
                for n in members {
                    e.u32(*n);
                }
                e.zeros(4);
            }
            CpgEvent::PartialDeliver {
                group,
                msglen,
                fraglen,
                nodeid,
                pid,
                kind,
                data,
                ..
            } => {
                group.emit(&mut e);
                emit_u32_slot(&mut e, *msglen);
                emit_u32_slot(&mut e, *fraglen);
                emit_u32_slot(&mut e, *nodeid);
                emit_u32_slot(&mut e, *pid);
                emit_u32_slot(&mut e, (*kind).into());
                e.bytes(data);
            }
            CpgEvent::Unknown { body, .. } => e.bytes(body),
        }
    }
}

fn addresses(d: &mut Decoder<'_>, n: usize) -> Result<Vec<CpgAddress>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(CpgAddress::parse(d)?);
    }
    Ok(out)
}

/// A payload of exactly `len` bytes that ends the message.
fn payload<'a>(
    d: &mut Decoder<'a>,
    len: u32,
    len_offset: usize,
    field: &'static str,
) -> Result<&'a [u8]> {
    if len as usize > IPC_MAX_MSG_LEN {
        return Err(d.error_at(
            len_offset,
            ErrorKind::CountTooLarge {
                field,
                count: len.into(),
                max: IPC_MAX_MSG_LEN as u64,
            },
        ));
    }
    if len as usize != d.remaining() {
        return Err(d.error_at(
            len_offset,
            ErrorKind::LengthMismatch {
                field,
                declared: len.into(),
                actual: d.remaining() as u64,
            },
        ));
    }
    d.bytes("data", len as usize)
}

// Keep the header sizes tied to the layouts above.
const _: () = assert!(MCAST_FIXED_LEN == RESPONSE_HEADER_LEN + 16);
const _: () = assert!(CONFCHG_FIXED_LEN == RESPONSE_HEADER_LEN + 136 + 24);
const _: () = assert!(REQUEST_HEADER_LEN + 136 + 16 == 168);

// ---- constructors: the right id and `size` for each message (ipc.md §4.3–§4.5) ----------

fn request_header(id: CpgRequestId, size: usize) -> RequestHeader {
    RequestHeader {
        id: id.into(),
        size: size as i32,
    }
}

fn reply_header(id: CpgResponseId, size: usize, error: CsError) -> ResponseHeader {
    ResponseHeader {
        id: id.into(),
        size: size as i32,
        error,
    }
}

/// Request sizes libcpg sends (ipc.md §4.3).
const JOIN_LEN: usize = 168;
const LEAVE_LEN: usize = 160;
const NAME_REQUEST_LEN: usize = 152;
const HANDLE_REQUEST_LEN: usize = 24;
const ZC_FREE_LEN: usize = 32;
/// Fixed reply sizes (ipc.md §4.4).
const LOCAL_GET_LEN: usize = 32;
const ITERATION_INITIALIZE_LEN: usize = 32;
const ITERATION_NEXT_LEN: usize = 168;
/// `sizeof(struct res_lib_cpg_totem_confchg_callback)`: the list starts at 44 and the
/// struct's size is 48, so 4 bytes trail the list.
const TOTEM_CONFCHG_FIXED_LEN: usize = 48;

impl<'a> CpgRequest<'a> {
    /// `cpg_join`: JOIN with the caller's pid and model flags.
    pub fn join(group: CpgName, pid: u32, flags: u32) -> CpgRequest<'static> {
        CpgRequest::Join {
            header: request_header(CpgRequestId::Join, JOIN_LEN),
            group,
            pid,
            flags,
        }
    }

    /// `cpg_leave`.
    pub fn leave(group: CpgName, pid: u32) -> CpgRequest<'static> {
        CpgRequest::Leave {
            header: request_header(CpgRequestId::Leave, LEAVE_LEN),
            group,
            pid,
        }
    }

    /// `cpg_mcast_joined` of one atomic message (its header is response-shaped, error 0).
    pub fn mcast(guarantee: Guarantee, data: &'a [u8]) -> CpgRequest<'a> {
        CpgRequest::Mcast {
            header: ResponseHeader {
                id: CpgRequestId::Mcast.into(),
                size: (MCAST_FIXED_LEN + data.len()) as i32,
                error: CsError::from(0),
            },
            guarantee,
            msglen: data.len() as u32,
            data,
        }
    }

    /// One piece of `cpg_mcast_joined` above the atomic size (`send_fragments`).
    pub fn partial_mcast(
        guarantee: Guarantee,
        msglen: u32,
        kind: PartialType,
        data: &'a [u8],
    ) -> CpgRequest<'a> {
        CpgRequest::PartialMcast {
            header: ResponseHeader {
                id: CpgRequestId::PartialMcast.into(),
                size: (PARTIAL_MCAST_FIXED_LEN + data.len()) as i32,
                error: CsError::from(0),
            },
            guarantee,
            msglen,
            fraglen: data.len() as u32,
            kind,
            data,
        }
    }

    /// `cpg_membership_get`.
    pub fn membership(group: CpgName) -> CpgRequest<'static> {
        CpgRequest::Membership {
            header: request_header(CpgRequestId::Membership, NAME_REQUEST_LEN),
            group,
        }
    }

    /// `cpg_local_get`.
    pub fn local_get() -> CpgRequest<'static> {
        CpgRequest::LocalGet {
            header: request_header(CpgRequestId::LocalGet, REQUEST_HEADER_LEN),
        }
    }

    /// `cpg_iteration_initialize` (the name only matters for ONE_GROUP).
    pub fn iteration_initialize(
        iteration_type: IterationType,
        group: CpgName,
    ) -> CpgRequest<'static> {
        CpgRequest::IterationInitialize {
            header: request_header(CpgRequestId::IterationInitialize, LEAVE_LEN),
            group,
            iteration_type,
        }
    }

    /// `cpg_iteration_next`.
    pub fn iteration_next(handle: u64) -> CpgRequest<'static> {
        CpgRequest::IterationNext {
            header: request_header(CpgRequestId::IterationNext, HANDLE_REQUEST_LEN),
            handle,
        }
    }

    /// `cpg_iteration_finalize`.
    pub fn iteration_finalize(handle: u64) -> CpgRequest<'static> {
        CpgRequest::IterationFinalize {
            header: request_header(CpgRequestId::IterationFinalize, HANDLE_REQUEST_LEN),
            handle,
        }
    }

    /// `cpg_finalize`.
    pub fn finalize() -> CpgRequest<'static> {
        CpgRequest::Finalize {
            header: request_header(CpgRequestId::Finalize, REQUEST_HEADER_LEN),
        }
    }

    /// `cpg_zcb_alloc`: the shared file's path (without NUL) and its size.
    pub fn zc_alloc(map_size: u64, path: &[u8]) -> CpgRequest<'static> {
        CpgRequest::ZcAlloc {
            header: request_header(CpgRequestId::ZcAlloc, NAME_REQUEST_LEN),
            map_size,
            path: path.to_vec(),
        }
    }

    /// `cpg_zcb_free`.
    pub fn zc_free(map_size: u64, server_address: u64) -> CpgRequest<'static> {
        CpgRequest::ZcFree {
            header: request_header(CpgRequestId::ZcFree, ZC_FREE_LEN),
            map_size,
            server_address,
        }
    }

    /// `cpg_zcb_mcast_joined`.
    pub fn zc_execute(server_address: u64) -> CpgRequest<'static> {
        CpgRequest::ZcExecute {
            header: request_header(CpgRequestId::ZcExecute, HANDLE_REQUEST_LEN),
            server_address,
        }
    }

    /// The 40-byte `req_lib_cpg_mcast` that `cpg_zcb_mcast_joined` writes inside a zero-copy
    /// buffer, in front of `msglen` payload bytes already there (ipc.md §4.7).
    pub fn zc_mcast_header(guarantee: Guarantee, msglen: u32) -> Vec<u8> {
        CpgRequest::Mcast {
            header: ResponseHeader {
                id: CpgRequestId::Mcast.into(),
                size: (MCAST_FIXED_LEN as u32).saturating_add(msglen) as i32,
                error: CsError::from(0),
            },
            guarantee,
            msglen,
            data: &[],
        }
        .to_bytes()
    }

    /// The whole request as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

impl CpgResponse {
    /// A header-only reply (JOIN, LEAVE, FINALIZE, PARTIAL_SEND, the ZC_EXECUTE reply, and the
    /// glue's `{id 0}` error replies).
    pub fn status(id: CpgResponseId, error: CsError) -> CpgResponse {
        CpgResponse::Status {
            header: reply_header(id, RESPONSE_HEADER_LEN, error),
        }
    }

    /// MEMBERSHIP (always 9248 bytes).
    pub fn membership(members: Vec<CpgAddress>, error: CsError) -> CpgResponse {
        CpgResponse::Membership {
            header: reply_header(CpgResponseId::Membership, MEMBERSHIP_RESPONSE_LEN, error),
            members,
        }
    }

    /// LOCAL_GET.
    pub fn local_get(local_nodeid: u32) -> CpgResponse {
        CpgResponse::LocalGet {
            header: reply_header(CpgResponseId::LocalGet, LOCAL_GET_LEN, CsError::Ok),
            local_nodeid,
        }
    }

    /// ITERATIONINITIALIZE.
    pub fn iteration_initialize(handle: u64, error: CsError) -> CpgResponse {
        CpgResponse::IterationInitialize {
            header: reply_header(
                CpgResponseId::IterationInitialize,
                ITERATION_INITIALIZE_LEN,
                error,
            ),
            handle,
        }
    }

    /// ITERATIONNEXT (an unset description with CS_ERR_NO_SECTIONS at the end).
    pub fn iteration_next(group: CpgName, nodeid: u32, pid: u32, error: CsError) -> CpgResponse {
        CpgResponse::IterationNext {
            header: reply_header(CpgResponseId::IterationNext, ITERATION_NEXT_LEN, error),
            group,
            nodeid,
            pid,
        }
    }

    /// The whole response as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

impl<'a> CpgEvent<'a> {
    /// CONFCHG_CALLBACK.
    pub fn confchg(
        group: CpgName,
        members: Vec<CpgAddress>,
        left: Vec<CpgAddress>,
        joined: Vec<CpgAddress>,
    ) -> CpgEvent<'static> {
        let n = members.len() + left.len() + joined.len();
        CpgEvent::Confchg {
            header: reply_header(
                CpgResponseId::ConfchgCallback,
                CONFCHG_FIXED_LEN + ADDRESS_LEN * n,
                CsError::Ok,
            ),
            group,
            members,
            left,
            joined,
        }
    }

    /// DELIVER_CALLBACK.
    pub fn deliver(group: CpgName, nodeid: u32, pid: u32, data: &'a [u8]) -> CpgEvent<'a> {
        CpgEvent::Deliver {
            header: reply_header(
                CpgResponseId::DeliverCallback,
                DELIVER_FIXED_LEN + data.len(),
                CsError::Ok,
            ),
            group,
            msglen: data.len() as u32,
            nodeid,
            pid,
            data,
        }
    }

    /// TOTEM_CONFCHG_CALLBACK.
    pub fn totem_confchg(ring_nodeid: u32, ring_seq: u64, members: Vec<u32>) -> CpgEvent<'static> {
        CpgEvent::TotemConfchg {
            header: reply_header(
                CpgResponseId::TotemConfchgCallback,
                TOTEM_CONFCHG_FIXED_LEN + 4 * members.len(),
                CsError::Ok,
            ),
            ring_nodeid,
            ring_seq,
            members,
        }
    }

    /// PARTIAL_DELIVER_CALLBACK.
    pub fn partial_deliver(
        group: CpgName,
        msglen: u32,
        nodeid: u32,
        pid: u32,
        kind: PartialType,
        data: &'a [u8],
    ) -> CpgEvent<'a> {
        CpgEvent::PartialDeliver {
            header: reply_header(
                CpgResponseId::PartialDeliverCallback,
                PARTIAL_DELIVER_FIXED_LEN + data.len(),
                CsError::Ok,
            ),
            group,
            msglen,
            fraglen: data.len() as u32,
            nodeid,
            pid,
            kind,
            data,
        }
    }

    /// The whole event as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

// ---- zero-copy buffers (ipc.md §4.7) ---------------------------------------------------

/// Where `struct coroipcs_zc_header.map_size` (an int) sits in a zero-copy buffer; libcpg
/// writes it after ZC_ALLOC.
pub const ZC_MAP_SIZE_OFFSET: usize = 0;
/// Where `coroipcs_zc_header.server_address` (a u64) sits; the server writes its token.
pub const ZC_SERVER_ADDRESS_OFFSET: usize = 8;
/// Where `cpg_zcb_mcast_joined` writes a `req_lib_cpg_mcast` header, after the 16-byte
/// `coroipcs_zc_header`.
pub const ZC_MCAST_OFFSET: usize = 16;
/// Where the caller's payload starts: the pointer `cpg_zcb_alloc` returns.
pub const ZC_PAYLOAD_OFFSET: usize = ZC_MCAST_OFFSET + MCAST_FIXED_LEN;

/// What the first [`ZC_PAYLOAD_OFFSET`] bytes of a zero-copy buffer say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZcHead {
    /// `coroipcs_zc_header.map_size`.
    pub map_size: u32,
    /// `coroipcs_zc_header.server_address`: the server's token.
    pub server_address: u64,
    /// `req_lib_cpg_mcast.msglen` (meaningful once `cpg_zcb_mcast_joined` wrote it).
    pub msglen: u32,
}

impl ZcHead {
    /// Reads the head of a buffer (at least [`ZC_PAYLOAD_OFFSET`] bytes).
    pub fn parse(bytes: &[u8]) -> Result<ZcHead> {
        let mut d = decoder(bytes);
        let map_size = u32_slot(&mut d, "zc.map_size")?;
        let server_address = d.u64("zc.server_address")?;
        ResponseHeader::parse(&mut d)?;
        u32_slot(&mut d, "zc.guarantee")?;
        let msglen = u32_slot(&mut d, "zc.msglen")?;
        Ok(ZcHead {
            map_size,
            server_address,
            msglen,
        })
    }

    /// The bytes of `map_size`, for [`ZC_MAP_SIZE_OFFSET`].
    pub fn map_size_bytes(map_size: u32) -> [u8; 4] {
        map_size.to_le_bytes()
    }

    /// The bytes of a token, for [`ZC_SERVER_ADDRESS_OFFSET`].
    pub fn server_address_bytes(token: u64) -> [u8; 8] {
        token.to_le_bytes()
    }
}

/// The payload a ZC_EXECUTE sends: `msglen` bytes at [`ZC_PAYLOAD_OFFSET`], which must lie
/// within the buffer (corosync trusts `msglen`; we do not).
pub fn zc_payload(buffer: &[u8]) -> Result<&[u8]> {
    let head = ZcHead::parse(buffer)?;
    let mut d = decoder(buffer);
    d.bytes("zc.head", ZC_PAYLOAD_OFFSET)?;
    d.bytes("zc.payload", head.msglen as usize)
}

/// Is `name` the name of a CPG IPC message (a request, a response or an event, the last
/// with or without its `_CALLBACK` suffix), or `CONNECT`/`DISCONNECT`, the setup and
/// teardown records of an IPC recording? Case does not matter.
pub fn is_message_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let known = |n: &str| n == upper || n.strip_suffix("_CALLBACK") == Some(upper.as_str());
    matches!(upper.as_str(), "CONNECT" | "DISCONNECT")
        || CpgRequestId::KNOWN
            .iter()
            .any(|id| id.known_name().is_some_and(known))
        || CpgResponseId::KNOWN
            .iter()
            .any(|id| id.known_name().is_some_and(known))
}
