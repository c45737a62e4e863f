//! The read-only part of corosync's configuration service (`exec/cfg.c`) over IPC: enough
//! for `corosync-cpgtool`, which opens `cfg` next to `cpg` and asks for every member's
//! addresses (`corosync_cfg_get_node_addrs`), and for `corosync_cfg_local_get`. Every
//! other request (shutdown tracking, kill node, reload, ...) is answered
//! CS_ERR_NOT_SUPPORTED: totemd has none of those mechanisms.
//!
//! The layouts are the codec's (`totem_wire::ipc::cfg`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use totem_wire::ipc::cfg::{
    CfgRequest, CfgRequestId, CfgResponse, CFG_LIB_ENGINE_COUNT, TOTEMIP_ADDRLEN,
};
use totem_wire::ipc::CsError;

/// The service name (`cs_ipcs_serv_short_name(CFG_SERVICE)`).
pub const SERVICE: &str = "cfg";

/// The response to one cfg request; `Err` for a request too short for its id (the client
/// is then disconnected: corosync would read past it).
pub fn reply(
    request: &[u8],
    local_nodeid: u32,
    nodes: &BTreeMap<u32, Vec<IpAddr>>,
) -> Result<Vec<u8>, String> {
    let request = CfgRequest::parse(request).map_err(|e| e.to_string())?;
    let id = CfgRequestId::from(request.header().id);
    let response = match request {
        CfgRequest::GetNodeAddrs { nodeid, .. } => {
            // message_handler_req_lib_cfg_get_node_addrs: 0 means this node.
            let nodeid = if nodeid == 0 { local_nodeid } else { nodeid };
            let addrs: &[IpAddr] = nodes.get(&nodeid).map_or(&[], Vec::as_slice);
            // The family of the first interface; corosync leaves it unset for an unknown
            // node, we send 0.
            let family = match addrs.first() {
                Some(IpAddr::V4(_)) => libc::AF_INET as u32,
                Some(IpAddr::V6(_)) => libc::AF_INET6 as u32,
                None => 0,
            };
            CfgResponse::NodeAddrs {
                error: if addrs.is_empty() {
                    CsError::NotExist
                } else {
                    CsError::Ok
                },
                family,
                addrs: addrs
                    .iter()
                    .map(|a| {
                        let mut slot = [0u8; TOTEMIP_ADDRLEN];
                        match a {
                            IpAddr::V4(v4) => slot[..4].copy_from_slice(&v4.octets()),
                            IpAddr::V6(v6) => slot.copy_from_slice(&v6.octets()),
                        }
                        slot
                    })
                    .collect(),
            }
        }
        _ if id == CfgRequestId::LocalGet => CfgResponse::LocalGet {
            nodeid: local_nodeid,
        },
        // libcfg reads interface_count and the arrays whatever the error says
        // (corosync_cfg_ring_status_get): answer the whole struct, with no interface.
        _ if id == CfgRequestId::RingStatusGet => CfgResponse::RingStatusEmpty {
            error: CsError::NotSupported,
        },
        _ if !(0..CFG_LIB_ENGINE_COUNT).contains(&i32::from(id)) => CfgResponse::Status {
            id: 0,
            error: CsError::InvalidParam,
        },
        _ => CfgResponse::Status {
            id: id.response_id(),
            error: CsError::NotSupported,
        },
    };
    Ok(response.to_bytes())
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
