//! The `cmap` service's IPC between libcmap and corosync, the read side (corosync 3.1.7
//! `include/corosync/ipc_cmap.h`, `lib/cmap.c`, `exec/cmap.c`):
//!
//! ```text
//! mar_name_t        length u16 (+6), value[256]                                       264
//! req  GET          header(16) key_name @16, value_len u64 @280                       288
//! req  ITER_INIT    header(16) prefix @16                                             280
//! req  ITER_NEXT / ITER_FINALIZE / TRACK_DELETE   header(16) handle u64               24
//! res  GET          header(24) value_len u64, type u8 (+7), value @40        40 + asked
//! res  ITER_INIT / TRACK_ADD / TRACK_DELETE       header(24) handle u64               32
//! res  ITER_NEXT    header(24) key_name @24, value_len u64 @288, type u8 @296 (+7)    304
//! res  others       header(24)                                                        24
//! ```
//!
//! A GET response is `sizeof + value_len` of the *request* long whatever the value's real
//! length (`message_handler_req_lib_cmap_get`), the value at its start, the rest zeros.

use crate::codec::{Decoder, Encoder};
use crate::error::{ErrorKind, Result};
use crate::ipc::{decoder, finish, CsError, RequestHeader, ResponseHeader};
use crate::ipc::{request_header, response_header, unexpected_id};
use crate::macros::open_enum;
use crate::ByteOrder;

/// `CS_MAX_NAME_LENGTH`: `mar_name_t`'s value array.
pub const NAME_MAX: usize = 256;
/// `sizeof(mar_name_t)`.
pub const NAME_LEN: usize = 264;
/// `sizeof(struct res_lib_cmap_get)`: where the value starts.
pub const GET_RESPONSE_FIXED_LEN: usize = 40;
/// `sizeof(struct res_lib_cmap_iter_next)`.
pub const ITER_NEXT_RESPONSE_LEN: usize = 304;

open_enum! {
    /// Request ids (`enum req_cmap_types`).
    pub enum CmapRequestId(i32) {
        /// `MESSAGE_REQ_CMAP_SET`.
        Set = 0 => "SET",
        /// `MESSAGE_REQ_CMAP_DELETE`.
        Delete = 1 => "DELETE",
        /// `MESSAGE_REQ_CMAP_GET`.
        Get = 2 => "GET",
        /// `MESSAGE_REQ_CMAP_ADJUST_INT`.
        AdjustInt = 3 => "ADJUST_INT",
        /// `MESSAGE_REQ_CMAP_ITER_INIT`.
        IterInit = 4 => "ITER_INIT",
        /// `MESSAGE_REQ_CMAP_ITER_NEXT`.
        IterNext = 5 => "ITER_NEXT",
        /// `MESSAGE_REQ_CMAP_ITER_FINALIZE`.
        IterFinalize = 6 => "ITER_FINALIZE",
        /// `MESSAGE_REQ_CMAP_TRACK_ADD`.
        TrackAdd = 7 => "TRACK_ADD",
        /// `MESSAGE_REQ_CMAP_TRACK_DELETE`.
        TrackDelete = 8 => "TRACK_DELETE",
        /// `MESSAGE_REQ_CMAP_SET_CURRENT_MAP`.
        SetCurrentMap = 9 => "SET_CURRENT_MAP",
    }
}

open_enum! {
    /// `cmap_value_types_t` (`include/corosync/cmap.h`).
    pub enum CmapType(u8) {
        /// `CMAP_VALUETYPE_INT8`.
        Int8 = 1 => "INT8",
        /// `CMAP_VALUETYPE_UINT8`.
        Uint8 = 2 => "UINT8",
        /// `CMAP_VALUETYPE_INT16`.
        Int16 = 3 => "INT16",
        /// `CMAP_VALUETYPE_UINT16`.
        Uint16 = 4 => "UINT16",
        /// `CMAP_VALUETYPE_INT32`.
        Int32 = 5 => "INT32",
        /// `CMAP_VALUETYPE_UINT32`.
        Uint32 = 6 => "UINT32",
        /// `CMAP_VALUETYPE_INT64`.
        Int64 = 7 => "INT64",
        /// `CMAP_VALUETYPE_UINT64`.
        Uint64 = 8 => "UINT64",
        /// `CMAP_VALUETYPE_FLOAT`.
        Float = 9 => "FLOAT",
        /// `CMAP_VALUETYPE_DOUBLE`.
        Double = 10 => "DOUBLE",
        /// `CMAP_VALUETYPE_STRING` (the value carries its NUL).
        String = 11 => "STRING",
        /// `CMAP_VALUETYPE_BINARY`.
        Binary = 12 => "BINARY",
    }
}

/// The response id answering request `id`: the same number, but SET_CURRENT_MAP's is 10
/// (`enum res_cmap_types`).
pub fn response_id(id: i32) -> i32 {
    if id == 9 {
        10
    } else {
        id
    }
}

/// Reads a `mar_name_t`: `length` bytes of the value (at most 256), cut at a NUL as
/// corosync's handlers read it as a C string.
fn parse_name<'a>(d: &mut Decoder<'a>, field: &'static str) -> Result<&'a [u8]> {
    let at = d.offset();
    let length = d.u16(field)?;
    d.pad(6)?;
    let value = d.bytes(field, NAME_MAX)?;
    if usize::from(length) > NAME_MAX {
        return Err(d.error_at(
            at,
            ErrorKind::CountTooLarge {
                field,
                count: length.into(),
                max: NAME_MAX as u64,
            },
        ));
    }
    let v = &value[..usize::from(length)];
    Ok(v.iter().position(|&b| b == 0).map_or(v, |end| &v[..end]))
}

/// Writes a `mar_name_t` (cut to 255 bytes, so that it stays NUL-terminated).
fn emit_name(e: &mut Encoder<'_>, name: &[u8]) {
    let n = name.len().min(NAME_MAX - 1);
    e.u16(n as u16);
    e.zeros(6);
    e.bytes(&name[..n]);
    e.zeros(NAME_MAX - n);
}

/// One request of libcmap, as far as totemd reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmapRequest<'a> {
    /// `cmap_get`.
    Get {
        /// The key.
        key: &'a [u8],
        /// Room the client has for the value (0: only asks its length and type).
        value_len: u64,
    },
    /// `cmap_iter_init`.
    IterInit {
        /// Keys starting with it (empty: every key).
        prefix: &'a [u8],
    },
    /// `cmap_iter_next`.
    IterNext {
        /// From ITER_INIT.
        handle: u64,
    },
    /// `cmap_iter_finalize`.
    IterFinalize {
        /// From ITER_INIT.
        handle: u64,
    },
    /// Any other id, its body unread (set, delete, adjust, tracking, set_current_map).
    Other {
        /// Header.
        header: RequestHeader,
        /// Everything after it.
        body: &'a [u8],
    },
}

impl<'a> CmapRequest<'a> {
    /// Parses one request; the four read requests must have their struct's size.
    pub fn parse(bytes: &'a [u8]) -> Result<CmapRequest<'a>> {
        let mut d = decoder(bytes);
        let header = request_header(&mut d, bytes.len())?;
        let request = match CmapRequestId::from(header.id) {
            CmapRequestId::Get => CmapRequest::Get {
                key: parse_name(&mut d, "key_name")?,
                value_len: d.u64("value_len")?,
            },
            CmapRequestId::IterInit => CmapRequest::IterInit {
                prefix: parse_name(&mut d, "prefix")?,
            },
            CmapRequestId::IterNext => CmapRequest::IterNext {
                handle: d.u64("iter_handle")?,
            },
            CmapRequestId::IterFinalize => CmapRequest::IterFinalize {
                handle: d.u64("iter_handle")?,
            },
            _ => CmapRequest::Other {
                header,
                body: d.take_rest(),
            },
        };
        finish(&d, "request")?;
        Ok(request)
    }

    /// Appends the request as libcmap builds it.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Little);
        match self {
            CmapRequest::Get { key, value_len } => {
                RequestHeader { id: 2, size: 288 }.emit(&mut e);
                emit_name(&mut e, key);
                e.u64(*value_len);
            }
            CmapRequest::IterInit { prefix } => {
                RequestHeader { id: 4, size: 280 }.emit(&mut e);
                emit_name(&mut e, prefix);
            }
            CmapRequest::IterNext { handle } | CmapRequest::IterFinalize { handle } => {
                let id = if matches!(self, CmapRequest::IterNext { .. }) {
                    5
                } else {
                    6
                };
                RequestHeader { id, size: 24 }.emit(&mut e);
                e.u64(*handle);
            }
            CmapRequest::Other { header, body } => {
                RequestHeader {
                    id: header.id,
                    size: (16 + body.len()) as i32,
                }
                .emit(&mut e);
                e.bytes(body);
            }
        }
    }
}

/// One response of the cmap service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmapResponse {
    /// A bare header (ITER_FINALIZE, SET, DELETE, ADJUST_INT, SET_CURRENT_MAP).
    Status {
        /// Header.
        header: ResponseHeader,
    },
    /// `res_lib_cmap_get`.
    Get {
        /// Header.
        header: ResponseHeader,
        /// The value's real length.
        value_len: u64,
        /// `CMAP_VALUETYPE_*` as a byte.
        value_type: u8,
        /// Everything after the fixed part: the value, then zeros up to what was asked.
        data: Vec<u8>,
    },
    /// `res_lib_cmap_iter_init`, `_track_add`, `_track_delete`: one u64.
    Handle {
        /// Header.
        header: ResponseHeader,
        /// The handle.
        handle: u64,
    },
    /// `res_lib_cmap_iter_next`.
    IterNext {
        /// Header.
        header: ResponseHeader,
        /// The key.
        key: Vec<u8>,
        /// Its value's length.
        value_len: u64,
        /// Its type.
        value_type: u8,
    },
}

impl CmapResponse {
    /// A bare header answering request `request_id`.
    pub fn status(request_id: i32, error: CsError) -> CmapResponse {
        CmapResponse::Status {
            header: ResponseHeader {
                id: response_id(request_id),
                size: 24,
                error,
            },
        }
    }

    /// Parses one response.
    pub fn parse(bytes: &[u8]) -> Result<CmapResponse> {
        let mut d = decoder(bytes);
        let header = response_header(&mut d, bytes.len())?;
        let response = match (header.id, bytes.len()) {
            (_, 24) => CmapResponse::Status { header },
            (2, n) if n >= GET_RESPONSE_FIXED_LEN => {
                let value_len = d.u64("value_len")?;
                let value_type = d.u8("type")?;
                d.pad(7)?;
                CmapResponse::Get {
                    header,
                    value_len,
                    value_type,
                    data: d.take_rest().to_vec(),
                }
            }
            (4 | 7 | 8, 32) => CmapResponse::Handle {
                header,
                handle: d.u64("handle")?,
            },
            (5, ITER_NEXT_RESPONSE_LEN) => {
                let key = parse_name(&mut d, "key_name")?.to_vec();
                let value_len = d.u64("value_len")?;
                let value_type = d.u8("type")?;
                d.pad(7)?;
                CmapResponse::IterNext {
                    header,
                    key,
                    value_len,
                    value_type,
                }
            }
            (id, _) => return Err(unexpected_id(&d, id)),
        };
        finish(&d, "response")?;
        Ok(response)
    }

    /// The length [`CmapResponse::emit`] writes.
    pub fn len(&self) -> usize {
        match self {
            CmapResponse::Status { .. } => 24,
            CmapResponse::Get { data, .. } => GET_RESPONSE_FIXED_LEN + data.len(),
            CmapResponse::Handle { .. } => 32,
            CmapResponse::IterNext { .. } => ITER_NEXT_RESPONSE_LEN,
        }
    }

    /// Never empty (a header at least); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the response, `size` set to what is written.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let size = self.len() as i32;
        let mut e = Encoder::new(out, ByteOrder::Little);
        match self {
            CmapResponse::Status { header } => ResponseHeader { size, ..*header }.emit(&mut e),
            CmapResponse::Get {
                header,
                value_len,
                value_type,
                data,
            } => {
                ResponseHeader { size, ..*header }.emit(&mut e);
                e.u64(*value_len);
                e.u8(*value_type);
                e.zeros(7);
                e.bytes(data);
            }
            CmapResponse::Handle { header, handle } => {
                ResponseHeader { size, ..*header }.emit(&mut e);
                e.u64(*handle);
            }
            CmapResponse::IterNext {
                header,
                key,
                value_len,
                value_type,
            } => {
                ResponseHeader { size, ..*header }.emit(&mut e);
                emit_name(&mut e, key);
                e.u64(*value_len);
                e.u8(*value_type);
                e.zeros(7);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_libcmap_sizes() {
        for (r, len) in [
            (
                CmapRequest::Get {
                    key: b"quorum.provider",
                    value_len: 0,
                },
                288,
            ),
            (
                CmapRequest::IterInit {
                    prefix: b"nodelist.node.",
                },
                280,
            ),
            (CmapRequest::IterNext { handle: 5 }, 24),
            (CmapRequest::IterFinalize { handle: 5 }, 24),
        ] {
            let mut b = Vec::new();
            r.emit(&mut b);
            assert_eq!(b.len(), len, "{r:?}");
            assert_eq!(CmapRequest::parse(&b).unwrap(), r);
        }
        // A name length beyond the array, a truncated GET.
        let mut b = Vec::new();
        CmapRequest::Get {
            key: b"k",
            value_len: 4,
        }
        .emit(&mut b);
        b[16] = 0xff;
        b[17] = 0xff;
        assert!(CmapRequest::parse(&b).is_err());
        b[8] = 200;
        assert!(CmapRequest::parse(&b[..200]).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let ok = |id| ResponseHeader {
            id,
            size: 0,
            error: CsError::Ok,
        };
        for r in [
            CmapResponse::Get {
                header: ok(2),
                value_len: 4,
                value_type: CmapType::Uint32.into(),
                data: vec![3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            },
            CmapResponse::Handle {
                header: ok(4),
                handle: 1,
            },
            CmapResponse::IterNext {
                header: ok(5),
                key: b"nodelist.node.0.nodeid".to_vec(),
                value_len: 4,
                value_type: 6,
            },
            CmapResponse::status(9, CsError::NotSupported),
        ] {
            let mut b = Vec::new();
            r.emit(&mut b);
            assert_eq!(b.len(), r.len());
            let back = CmapResponse::parse(&b).unwrap();
            let mut again = Vec::new();
            back.emit(&mut again);
            assert_eq!(again, b, "{r:?}");
        }
        let mut b = Vec::new();
        CmapResponse::status(9, CsError::Ok).emit(&mut b);
        assert_eq!(b[0], 10, "SET_CURRENT_MAP is answered with id 10");
    }
}
