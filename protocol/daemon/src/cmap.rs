//! A read-only `cmap` service (`exec/cmap.c`'s GET and ITER_* handlers over `icmap`) with
//! the few keys corosync's tools read from a node that runs votequorum:
//!
//! * `corosync-quorumtool`: `quorum.provider` (`get_quorum_type`),
//!   `runtime.votequorum.this_node_id` (`init_all`), and `nodelist.node.` iterated for each
//!   `nodelist.node.N.nodeid` and `.name` (`node_name_by_nodelist`);
//! * besides those: `nodelist.node.N.ring0_addr`, `quorum.expected_votes`,
//!   `quorum.two_node`, `quorum.wait_for_all` and `totem.cluster_name` when configured.
//!
//! Keys are kept in byte order, as libqb's trie iterates them. SET, DELETE, ADJUST_INT,
//! TRACK_ADD, TRACK_DELETE and SET_CURRENT_MAP are answered CS_ERR_NOT_SUPPORTED.

use std::collections::BTreeMap;

use totem_wire::ipc::cmap::{CmapRequest, CmapResponse, CmapType, GET_RESPONSE_FIXED_LEN};
use totem_wire::ipc::{CsError, ResponseHeader, IPC_MAX_MSG_LEN};

use crate::config::CorosyncConf;
use crate::quorum::Reply;

/// The service name (`cs_ipcs_serv_short_name(CMAP_SERVICE)`).
pub const SERVICE: &str = "cmap";

/// Handlers in `cmap_lib_engine` (0..=9).
const LIB_ENGINE_COUNT: i32 = 10;
/// Open iterations per connection (corosync's hdb has no limit; ours is bounded).
pub const MAX_ITERATIONS: usize = 64;

/// One value: its type and bytes (a string with its NUL, as icmap stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// `CMAP_VALUETYPE_*`.
    pub kind: CmapType,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Value {
    fn u32(v: u32) -> Value {
        Value {
            kind: CmapType::Uint32,
            bytes: v.to_ne_bytes().to_vec(),
        }
    }

    fn u8(v: u8) -> Value {
        Value {
            kind: CmapType::Uint8,
            bytes: vec![v],
        }
    }

    fn string(s: &str) -> Value {
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        Value {
            kind: CmapType::String,
            bytes,
        }
    }
}

/// The keys, fixed at start-up.
#[derive(Debug, Clone, Default)]
pub struct Keys(BTreeMap<Vec<u8>, Value>);

impl Keys {
    /// What corosync's icmap holds for these keys with this configuration, on node `nodeid`.
    pub fn from_config(conf: &CorosyncConf, nodeid: u32) -> Keys {
        let mut k = BTreeMap::new();
        let mut put = |key: String, v: Value| {
            k.insert(key.into_bytes(), v);
        };
        // coroparse.c numbers the nodelist's nodes from 0 in file order.
        for (i, n) in conf.nodes.iter().enumerate() {
            put(format!("nodelist.node.{i}.nodeid"), Value::u32(n.nodeid));
            put(
                format!("nodelist.node.{i}.ring0_addr"),
                Value::string(&n.ring0_addr),
            );
            if let Some(name) = &n.name {
                put(format!("nodelist.node.{i}.name"), Value::string(name));
            }
        }
        if let Some(p) = &conf.quorum.provider {
            put("quorum.provider".into(), Value::string(p));
            // votequorum_init (exec/votequorum.c).
            put("runtime.votequorum.this_node_id".into(), Value::u32(nodeid));
        }
        if let Some(e) = conf.quorum.expected_votes {
            put("quorum.expected_votes".into(), Value::u32(e));
        }
        if conf.quorum.two_node {
            put("quorum.two_node".into(), Value::u8(1));
        }
        if let Some(w) = conf.quorum.wait_for_all {
            put("quorum.wait_for_all".into(), Value::u8(u8::from(w)));
        }
        if let Some(name) = &conf.totem.cluster_name {
            put("totem.cluster_name".into(), Value::string(name));
        }
        Keys(k)
    }

    /// One key.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.0.get(key)
    }

    /// Keys with this prefix, in order.
    pub fn with_prefix(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.0
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: &str, v: Value) {
        self.0.insert(key.as_bytes().to_vec(), v);
    }
}

/// One connection's open iterations (`cmap_conn_info.iter_db`).
#[derive(Debug, Clone, Default)]
pub struct CmapConn {
    iterations: BTreeMap<u64, (Vec<Vec<u8>>, usize)>,
    next_handle: u64,
}

fn emit(r: CmapResponse) -> Vec<u8> {
    let mut out = Vec::new();
    r.emit(&mut out);
    out
}

fn header(id: i32, error: CsError) -> ResponseHeader {
    ResponseHeader { id, size: 0, error }
}

/// `message_handler_req_lib_cmap_get`'s error reply: the fixed struct, zeroed.
fn get_error(error: CsError) -> Vec<u8> {
    emit(CmapResponse::Get {
        header: header(2, error),
        value_len: 0,
        value_type: 0,
        data: Vec::new(),
    })
}

/// The response to one cmap request; `Err` for a malformed one (the client is then
/// disconnected).
pub fn reply(request: &[u8], keys: &Keys, conn: &mut CmapConn) -> Result<Reply, String> {
    let request = CmapRequest::parse(request).map_err(|e| e.to_string())?;
    let response = match request {
        // message_handler_req_lib_cmap_get → icmap_get: with no room asked, the length
        // and type only; too little room is CS_ERR_INVALID_PARAM; the response is as long
        // as the room asked.
        CmapRequest::Get { key, value_len } => match keys.get(key) {
            None => get_error(CsError::NotExist),
            Some(_) if value_len > (IPC_MAX_MSG_LEN - GET_RESPONSE_FIXED_LEN) as u64 => {
                // corosync mallocs sizeof + value_len; we cannot send it.
                get_error(CsError::NoMemory)
            }
            Some(v) if value_len != 0 && value_len < v.bytes.len() as u64 => {
                get_error(CsError::InvalidParam)
            }
            Some(v) => {
                let mut data = vec![0u8; value_len as usize];
                if value_len != 0 {
                    data[..v.bytes.len()].copy_from_slice(&v.bytes);
                }
                emit(CmapResponse::Get {
                    header: header(2, CsError::Ok),
                    value_len: v.bytes.len() as u64,
                    value_type: v.kind.into(),
                    data,
                })
            }
        },
        // message_handler_req_lib_cmap_iter_init: an empty prefix is every key.
        CmapRequest::IterInit { prefix } => {
            if conn.iterations.len() >= MAX_ITERATIONS {
                emit(CmapResponse::Handle {
                    header: header(4, CsError::NoResources),
                    handle: 0,
                })
            } else {
                conn.next_handle += 1;
                let handle = conn.next_handle;
                conn.iterations
                    .insert(handle, (keys.with_prefix(prefix), 0));
                emit(CmapResponse::Handle {
                    header: header(4, CsError::Ok),
                    handle,
                })
            }
        }
        // message_handler_req_lib_cmap_iter_next: CS_ERR_NO_SECTIONS at the end.
        CmapRequest::IterNext { handle } => {
            let (error, key, value) = match conn.iterations.get_mut(&handle) {
                None => (CsError::BadHandle, Vec::new(), None),
                Some((list, pos)) => match list.get(*pos) {
                    None => (CsError::NoSections, Vec::new(), None),
                    Some(k) => {
                        *pos += 1;
                        (CsError::Ok, k.clone(), keys.get(k))
                    }
                },
            };
            emit(CmapResponse::IterNext {
                header: header(5, error),
                key,
                value_len: value.map_or(0, |v| v.bytes.len() as u64),
                value_type: value.map_or(0, |v| v.kind.into()),
            })
        }
        CmapRequest::IterFinalize { handle } => {
            let error = if conn.iterations.remove(&handle).is_some() {
                CsError::Ok
            } else {
                CsError::BadHandle
            };
            emit(CmapResponse::status(6, error))
        }
        CmapRequest::Other { header: h, .. } => match h.id {
            // res_lib_cmap_track_add / _track_delete carry a handle.
            7 | 8 => emit(CmapResponse::Handle {
                header: header(h.id, CsError::NotSupported),
                handle: 0,
            }),
            id if (0..LIB_ENGINE_COUNT).contains(&id) => {
                emit(CmapResponse::status(id, CsError::NotSupported))
            }
            // cs_ipcs_msg_process: -EINVAL for an id past the engine, id 0.
            _ => emit(CmapResponse::status(0, CsError::InvalidParam)),
        },
    };
    Ok(Reply::of(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let mut k = Keys::default();
        k.insert("quorum.provider", Value::string("corosync_votequorum"));
        k.insert("runtime.votequorum.this_node_id", Value::u32(2));
        for (i, id) in [(0, 1), (1, 2), (10, 11)] {
            k.insert(&format!("nodelist.node.{i}.nodeid"), Value::u32(id));
        }
        k.insert("nodelist.node.1.name", Value::string("n2"));
        k
    }

    fn ask(r: CmapRequest<'_>, k: &Keys, conn: &mut CmapConn) -> CmapResponse {
        let mut b = Vec::new();
        r.emit(&mut b);
        CmapResponse::parse(&reply(&b, k, conn).unwrap().response).unwrap()
    }

    #[test]
    fn get_string_as_cmap_get_string_does_it() {
        let k = keys();
        let mut c = CmapConn::default();
        let key = b"quorum.provider";
        // Length first, then the value with its NUL.
        let r = ask(CmapRequest::Get { key, value_len: 0 }, &k, &mut c);
        assert!(
            matches!(r, CmapResponse::Get { header, value_len: 20, value_type: 11, ref data }
                if header.error == CsError::Ok && data.is_empty()),
            "{r:?}"
        );
        let r = ask(CmapRequest::Get { key, value_len: 20 }, &k, &mut c);
        let CmapResponse::Get { data, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(data, b"corosync_votequorum\0");
        // cmap_get_uint32: 16 bytes of room, 4 used.
        let r = ask(
            CmapRequest::Get {
                key: b"runtime.votequorum.this_node_id",
                value_len: 16,
            },
            &k,
            &mut c,
        );
        let CmapResponse::Get {
            value_len, data, ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (value_len, data.len(), &data[..4]),
            (4, 16, &[2, 0, 0, 0][..])
        );
        for (key, len, error) in [
            (&b"nope"[..], 0, CsError::NotExist),
            (key, 3, CsError::InvalidParam),
            (key, u64::MAX, CsError::NoMemory),
        ] {
            let r = ask(
                CmapRequest::Get {
                    key,
                    value_len: len,
                },
                &k,
                &mut c,
            );
            let CmapResponse::Get { header, data, .. } = r else {
                panic!("{r:?}")
            };
            assert_eq!((header.error, data.len()), (error, 0));
        }
    }

    #[test]
    fn iteration_in_trie_order_then_no_sections() {
        let k = keys();
        let mut c = CmapConn::default();
        let r = ask(
            CmapRequest::IterInit {
                prefix: b"nodelist.node.",
            },
            &k,
            &mut c,
        );
        let CmapResponse::Handle { handle, .. } = r else {
            panic!("{r:?}")
        };
        let mut seen = Vec::new();
        loop {
            match ask(CmapRequest::IterNext { handle }, &k, &mut c) {
                CmapResponse::IterNext { header, key, .. } if header.error == CsError::Ok => {
                    seen.push(String::from_utf8(key).unwrap())
                }
                CmapResponse::IterNext { header, .. } => {
                    assert_eq!(header.error, CsError::NoSections);
                    break;
                }
                r => panic!("{r:?}"),
            }
        }
        assert_eq!(
            seen,
            [
                "nodelist.node.0.nodeid",
                "nodelist.node.1.name",
                "nodelist.node.1.nodeid",
                "nodelist.node.10.nodeid"
            ]
        );
        let r = ask(CmapRequest::IterFinalize { handle }, &k, &mut c);
        assert_eq!(r, CmapResponse::status(6, CsError::Ok));
        let r = ask(CmapRequest::IterNext { handle }, &k, &mut c);
        assert!(
            matches!(r, CmapResponse::IterNext { header, .. } if header.error == CsError::BadHandle)
        );
        // Iterations are bounded per connection.
        for _ in 0..MAX_ITERATIONS {
            ask(CmapRequest::IterInit { prefix: b"" }, &k, &mut c);
        }
        let r = ask(CmapRequest::IterInit { prefix: b"" }, &k, &mut c);
        assert!(
            matches!(r, CmapResponse::Handle { header, .. } if header.error == CsError::NoResources)
        );
    }

    #[test]
    fn writes_are_not_supported() {
        let k = keys();
        let mut c = CmapConn::default();
        let set = [0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        let r = CmapResponse::parse(&reply(&set, &k, &mut c).unwrap().response).unwrap();
        assert_eq!(r, CmapResponse::status(0, CsError::NotSupported));
        let track = [7, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        let r = reply(&track, &k, &mut c).unwrap().response;
        assert_eq!((r.len(), r[16]), (32, 19));
        assert!(reply(&[2, 0, 0, 0], &k, &mut c).is_err());
    }
}
