//! The read-only part of corosync's configuration service (`exec/cfg.c`) over IPC: enough
//! for `corosync-cpgtool`, which opens `cfg` next to `cpg` and asks for every member's
//! addresses (`corosync_cfg_get_node_addrs`), and for `corosync_cfg_local_get`. Every
//! other request (shutdown tracking, kill node, reload, ...) is answered
//! CS_ERR_NOT_SUPPORTED: totemd has none of those mechanisms.
//!
//! Layouts from corosync 3.1.7 `include/corosync/ipc_cfg.h` (host order, every header field
//! 8-byte aligned like the CPG ones, ipc.md §2.1):
//!
//! ```text
//! req_lib_cfg_get_node_addrs   header(16) nodeid u32 (+4 padding)                 24 bytes
//! res_lib_cfg_get_node_addrs   header(24) family u32, num_addrs u32,
//!                              num_addrs × TOTEMIP_ADDRLEN (16) address bytes     32 + 16n
//! req_lib_cfg_local_get        header(16)                                         16 bytes
//! res_lib_cfg_local_get        header(24) local_nodeid u32 (aligned 8)            32 bytes
//! res_lib_cfg_ringstatusget    header(24) interface_count u32 (aligned 8),
//!                              16 × 128 names, 16 × 512 statuses                  10272 bytes
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use totem_wire::ipc::{CsError, RequestHeader, REQUEST_HEADER_LEN};

/// The service name (`cs_ipcs_serv_short_name(CFG_SERVICE)`).
pub const SERVICE: &str = "cfg";

/// `MESSAGE_REQ_CFG_RINGSTATUSGET`.
const REQ_RINGSTATUSGET: i32 = 0;
/// `MESSAGE_REQ_CFG_GET_NODE_ADDRS`.
const REQ_GET_NODE_ADDRS: i32 = 5;
/// `MESSAGE_REQ_CFG_LOCAL_GET`.
const REQ_LOCAL_GET: i32 = 6;
/// Handlers in `cfg_lib_engine` (0..=11); a higher id is -EINVAL in
/// `corosync_sending_allowed`.
const LIB_ENGINE_COUNT: i32 = 12;
/// `TOTEMIP_ADDRLEN` (`sizeof(struct in6_addr)`).
const TOTEMIP_ADDRLEN: usize = 16;
/// `CFG_MAX_INTERFACES`, `CFG_INTERFACE_NAME_MAX_LEN`, `CFG_INTERFACE_STATUS_MAX_LEN`.
const RINGSTATUS_LEN: usize = 24 + 8 + 16 * 128 + 16 * 512;

/// The `res_lib_cfg_types` id answering request `id` (`exec/cfg.c`'s handlers).
fn response_id(id: i32) -> i32 {
    match id {
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
        _ => 0,  // cs_ipcs_msg_process's -EINVAL reply has id 0
    }
}

fn header(out: &mut Vec<u8>, id: i32, size: usize, error: CsError) {
    out.extend_from_slice(&id.to_ne_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(size as i32).to_ne_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&i32::from(error).to_ne_bytes());
    out.extend_from_slice(&[0; 4]);
}

fn status(id: i32, error: CsError) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    header(&mut out, id, 24, error);
    out
}

/// The response to one cfg request; `Err` for a request too short for its id (the client
/// is then disconnected: corosync would read past it).
pub fn reply(
    request: &[u8],
    local_nodeid: u32,
    nodes: &BTreeMap<u32, Vec<IpAddr>>,
) -> Result<Vec<u8>, String> {
    let h = RequestHeader::peek(request).map_err(|e| e.to_string())?;
    match h.id {
        REQ_GET_NODE_ADDRS => {
            let Some(b) = request.get(REQUEST_HEADER_LEN..REQUEST_HEADER_LEN + 4) else {
                return Err(format!("GET_NODE_ADDRS of {} bytes", request.len()));
            };
            let mut nodeid = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            // message_handler_req_lib_cfg_get_node_addrs: 0 means this node.
            if nodeid == 0 {
                nodeid = local_nodeid;
            }
            let addrs: &[IpAddr] = nodes.get(&nodeid).map_or(&[], Vec::as_slice);
            let mut out = Vec::with_capacity(32 + TOTEMIP_ADDRLEN * addrs.len());
            let error = if addrs.is_empty() {
                CsError::NotExist
            } else {
                CsError::Ok
            };
            header(
                &mut out,
                response_id(h.id),
                32 + TOTEMIP_ADDRLEN * addrs.len(),
                error,
            );
            // The family of the first interface; corosync leaves it unset for an unknown
            // node, we send 0.
            let family = match addrs.first() {
                Some(IpAddr::V4(_)) => libc::AF_INET as u32,
                Some(IpAddr::V6(_)) => libc::AF_INET6 as u32,
                None => 0,
            };
            out.extend_from_slice(&family.to_ne_bytes());
            out.extend_from_slice(&(addrs.len() as u32).to_ne_bytes());
            for a in addrs {
                let mut slot = [0u8; TOTEMIP_ADDRLEN];
                match a {
                    IpAddr::V4(v4) => slot[..4].copy_from_slice(&v4.octets()),
                    IpAddr::V6(v6) => slot.copy_from_slice(&v6.octets()),
                }
                out.extend_from_slice(&slot);
            }
            Ok(out)
        }
        REQ_LOCAL_GET => {
            let mut out = Vec::with_capacity(32);
            header(&mut out, response_id(h.id), 32, CsError::Ok);
            out.extend_from_slice(&local_nodeid.to_ne_bytes());
            out.extend_from_slice(&[0; 4]);
            Ok(out)
        }
        // libcfg reads interface_count and the arrays whatever the error says
        // (corosync_cfg_ring_status_get): answer the whole struct, with no interface.
        REQ_RINGSTATUSGET => {
            let mut out = Vec::with_capacity(RINGSTATUS_LEN);
            header(
                &mut out,
                response_id(h.id),
                RINGSTATUS_LEN,
                CsError::NotSupported,
            );
            out.resize(RINGSTATUS_LEN, 0);
            Ok(out)
        }
        id if !(0..LIB_ENGINE_COUNT).contains(&id) => Ok(status(0, CsError::InvalidParam)),
        id => Ok(status(response_id(id), CsError::NotSupported)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: i32, body: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&id.to_ne_bytes());
        r.extend_from_slice(&[0; 4]);
        r.extend_from_slice(&((16 + body.len()) as i32).to_ne_bytes());
        r.extend_from_slice(&[0; 4]);
        r.extend_from_slice(body);
        r
    }

    fn i32_at(b: &[u8], at: usize) -> i32 {
        i32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn node_addrs_and_local_get() {
        let nodes = BTreeMap::from([(1, vec!["10.0.0.1".parse().unwrap()])]);
        let r = reply(&request(5, &[1, 0, 0, 0, 0, 0, 0, 0]), 1, &nodes).unwrap();
        assert_eq!(r.len(), 48);
        assert_eq!((i32_at(&r, 0), i32_at(&r, 8), i32_at(&r, 16)), (11, 48, 1));
        assert_eq!((i32_at(&r, 24), i32_at(&r, 28)), (libc::AF_INET, 1));
        assert_eq!(&r[32..36], &[10, 0, 0, 1]);
        assert!(r[36..].iter().all(|&b| b == 0));
        // nodeid 0 is this node; an unknown one is NOT_EXIST with no address.
        assert_eq!(reply(&request(5, &[0; 8]), 1, &nodes).unwrap(), r);
        let r = reply(&request(5, &[7, 0, 0, 0, 0, 0, 0, 0]), 1, &nodes).unwrap();
        assert_eq!((r.len(), i32_at(&r, 16), i32_at(&r, 28)), (32, 12, 0));
        let r = reply(&request(6, &[]), 9, &nodes).unwrap();
        assert_eq!((r.len(), i32_at(&r, 0), i32_at(&r, 24)), (32, 12, 9));
        assert!(reply(&request(5, &[1, 0]), 1, &nodes).is_err());
    }

    #[test]
    fn everything_else_is_refused_with_a_whole_struct_where_libcfg_needs_one() {
        let nodes = BTreeMap::new();
        let r = reply(&request(0, &[]), 1, &nodes).unwrap();
        assert_eq!((r.len(), i32_at(&r, 8), i32_at(&r, 24)), (10272, 10272, 0));
        let r = reply(&request(3, &[0; 8]), 1, &nodes).unwrap();
        assert_eq!((r.len(), i32_at(&r, 0), i32_at(&r, 16)), (24, 9, 19));
        let r = reply(&request(12, &[]), 1, &nodes).unwrap();
        assert_eq!((i32_at(&r, 0), i32_at(&r, 16)), (0, 7));
    }
}
