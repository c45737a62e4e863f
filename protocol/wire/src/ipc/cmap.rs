//! The `cmap` service's IPC between libcmap and corosync (corosync 3.1.7
//! `include/corosync/ipc_cmap.h`, `lib/cmap.c`, `exec/cmap.c`):
//!
//! ```text
//! mar_name_t        length u16 (+6), value[256]                                       264
//! req  SET          header(16) key_name @16, value_len u64 @280, type u8 @288 (+7),
//!                   value @296                                               296 + value_len
//! req  DELETE       header(16) key_name @16                                           280
//! req  GET          header(16) key_name @16, value_len u64 @280                       288
//! req  ADJUST_INT   header(16) key_name @16, step i32 @280 (+4)                       288
//! req  ITER_INIT    header(16) prefix @16                                             280
//! req  ITER_NEXT / ITER_FINALIZE / TRACK_DELETE   header(16) handle u64               24
//! req  TRACK_ADD    header(16) key_name @16, track_type i32 @280 (+4),
//!                   track_inst_handle u64 @288                                        296
//! req  SET_CURRENT_MAP  header(16) map i32 (+4)                                       24
//! res  GET          header(24) value_len u64, type u8 (+7), value @40        40 + asked
//! res  ITER_INIT / TRACK_ADD / TRACK_DELETE       header(24) handle u64               32
//! res  ITER_NEXT    header(24) key_name @24, value_len u64 @288, type u8 @296 (+7)    304
//! res  others       header(24)                                                        24
//! ev   NOTIFY_CALLBACK (id 9, the dispatch channel) header(24) track_inst_handle u64,
//!                   key_name @32, event i32 @296 (+4), new_value_type u8 @304 (+7),
//!                   old_value_type u8 @312 (+7), new_value_len u64 @320,
//!                   old_value_len u64 @328, new value then old value @336  336 + both
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
/// `sizeof(struct req_lib_cmap_set)`: where the value starts.
pub const SET_REQUEST_FIXED_LEN: usize = 296;
/// `sizeof(struct res_lib_cmap_notify_callback)`: where the new value starts.
pub const NOTIFY_FIXED_LEN: usize = 336;
/// `MESSAGE_RES_CMAP_NOTIFY_CALLBACK`.
pub const NOTIFY_CALLBACK_ID: i32 = 9;
/// `CMAP_TRACK_DELETE`.
pub const TRACK_DELETE: i32 = 1;
/// `CMAP_TRACK_MODIFY`.
pub const TRACK_MODIFY: i32 = 2;
/// `CMAP_TRACK_ADD`.
pub const TRACK_ADD: i32 = 4;
/// `CMAP_TRACK_PREFIX`.
pub const TRACK_PREFIX: i32 = 8;
/// `CMAP_SETMAP_DEFAULT`.
pub const SETMAP_DEFAULT: i32 = 0;
/// `CMAP_SETMAP_STATS`.
pub const SETMAP_STATS: i32 = 1;

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

/// One request of libcmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmapRequest<'a> {
    /// `cmap_set` and its typed forms.
    Set {
        /// The key.
        key: &'a [u8],
        /// `CMAP_VALUETYPE_*` as a byte (unchecked: icmap answers a bad one).
        value_type: u8,
        /// The value, `value_len` bytes (a string with its NUL as libcmap sends it).
        value: &'a [u8],
    },
    /// `cmap_delete`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// `cmap_get`.
    Get {
        /// The key.
        key: &'a [u8],
        /// Room the client has for the value (0: only asks its length and type).
        value_len: u64,
    },
    /// `cmap_inc`, `cmap_dec` (step 1, -1).
    AdjustInt {
        /// The key.
        key: &'a [u8],
        /// Added to the value.
        step: i32,
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
    /// `cmap_track_add`.
    TrackAdd {
        /// The key or prefix (empty: libcmap's NULL, the whole map).
        key: &'a [u8],
        /// `CMAP_TRACK_*` bits.
        track_type: i32,
        /// The client's own handle, echoed in every notification.
        track_inst_handle: u64,
    },
    /// `cmap_track_delete`.
    TrackDelete {
        /// From TRACK_ADD.
        handle: u64,
    },
    /// `cmap_initialize_map`'s request (`CMAP_SETMAP_*`).
    SetCurrentMap {
        /// The map.
        map: i32,
    },
    /// Any other id, its body unread.
    Other {
        /// Header.
        header: RequestHeader,
        /// Everything after it.
        body: &'a [u8],
    },
}

impl<'a> CmapRequest<'a> {
    /// Parses one request; each known id must have its struct's size (SET: plus its
    /// `value_len`).
    pub fn parse(bytes: &'a [u8]) -> Result<CmapRequest<'a>> {
        let mut d = decoder(bytes);
        let header = request_header(&mut d, bytes.len())?;
        let request = match CmapRequestId::from(header.id) {
            CmapRequestId::Set => {
                let key = parse_name(&mut d, "key_name")?;
                let at = d.offset();
                let value_len = d.u64("value_len")?;
                let value_type = d.u8("type")?;
                d.pad(7)?;
                // Bounded by what arrived: the message is exactly sizeof + value_len.
                if value_len != d.remaining() as u64 {
                    return Err(d.error_at(
                        at,
                        ErrorKind::LengthMismatch {
                            field: "value_len",
                            declared: value_len,
                            actual: d.remaining() as u64,
                        },
                    ));
                }
                CmapRequest::Set {
                    key,
                    value_type,
                    value: d.take_rest(),
                }
            }
            CmapRequestId::Delete => CmapRequest::Delete {
                key: parse_name(&mut d, "key_name")?,
            },
            CmapRequestId::Get => CmapRequest::Get {
                key: parse_name(&mut d, "key_name")?,
                value_len: d.u64("value_len")?,
            },
            CmapRequestId::AdjustInt => {
                let key = parse_name(&mut d, "key_name")?;
                let step = d.i32("step")?;
                d.pad(4)?;
                CmapRequest::AdjustInt { key, step }
            }
            CmapRequestId::IterInit => CmapRequest::IterInit {
                prefix: parse_name(&mut d, "prefix")?,
            },
            CmapRequestId::IterNext => CmapRequest::IterNext {
                handle: d.u64("iter_handle")?,
            },
            CmapRequestId::IterFinalize => CmapRequest::IterFinalize {
                handle: d.u64("iter_handle")?,
            },
            CmapRequestId::TrackAdd => {
                let key = parse_name(&mut d, "key_name")?;
                let track_type = d.i32("track_type")?;
                d.pad(4)?;
                CmapRequest::TrackAdd {
                    key,
                    track_type,
                    track_inst_handle: d.u64("track_inst_handle")?,
                }
            }
            CmapRequestId::TrackDelete => CmapRequest::TrackDelete {
                handle: d.u64("track_handle")?,
            },
            CmapRequestId::SetCurrentMap => {
                let map = d.i32("map")?;
                d.pad(4)?;
                CmapRequest::SetCurrentMap { map }
            }
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
        let head = |e: &mut Encoder<'_>, id: i32, size: usize| {
            RequestHeader {
                id,
                size: size as i32,
            }
            .emit(e)
        };
        match self {
            CmapRequest::Set {
                key,
                value_type,
                value,
            } => {
                head(&mut e, 0, SET_REQUEST_FIXED_LEN + value.len());
                emit_name(&mut e, key);
                e.u64(value.len() as u64);
                e.u8(*value_type);
                e.zeros(7);
                e.bytes(value);
            }
            CmapRequest::Delete { key } => {
                head(&mut e, 1, 280);
                emit_name(&mut e, key);
            }
            CmapRequest::Get { key, value_len } => {
                head(&mut e, 2, 288);
                emit_name(&mut e, key);
                e.u64(*value_len);
            }
            CmapRequest::AdjustInt { key, step } => {
                head(&mut e, 3, 288);
                emit_name(&mut e, key);
                e.i32(*step);
                e.zeros(4);
            }
            CmapRequest::IterInit { prefix } => {
                head(&mut e, 4, 280);
                emit_name(&mut e, prefix);
            }
            CmapRequest::IterNext { handle } => {
                head(&mut e, 5, 24);
                e.u64(*handle);
            }
            CmapRequest::IterFinalize { handle } => {
                head(&mut e, 6, 24);
                e.u64(*handle);
            }
            CmapRequest::TrackAdd {
                key,
                track_type,
                track_inst_handle,
            } => {
                head(&mut e, 7, 296);
                emit_name(&mut e, key);
                e.i32(*track_type);
                e.zeros(4);
                e.u64(*track_inst_handle);
            }
            CmapRequest::TrackDelete { handle } => {
                head(&mut e, 8, 24);
                e.u64(*handle);
            }
            CmapRequest::SetCurrentMap { map } => {
                head(&mut e, 9, 24);
                e.i32(*map);
                e.zeros(4);
            }
            CmapRequest::Other { header, body } => {
                head(&mut e, header.id, 16 + body.len());
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
    /// `res_lib_cmap_notify_callback`, an event on the dispatch channel.
    Notify {
        /// Header (id [`NOTIFY_CALLBACK_ID`]).
        header: ResponseHeader,
        /// The client's handle from TRACK_ADD.
        track_inst_handle: u64,
        /// The key that changed.
        key: Vec<u8>,
        /// `CMAP_TRACK_ADD`, `_DELETE` or `_MODIFY`.
        event: i32,
        /// The new value's type (0 after a delete).
        new_value_type: u8,
        /// The old value's type (0 after an add).
        old_value_type: u8,
        /// The new value.
        new_value: Vec<u8>,
        /// The old value.
        old_value: Vec<u8>,
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
            (NOTIFY_CALLBACK_ID, n) if n >= NOTIFY_FIXED_LEN => {
                let track_inst_handle = d.u64("track_inst_handle")?;
                let key = parse_name(&mut d, "key_name")?.to_vec();
                let event = d.i32("event")?;
                d.pad(4)?;
                let new_value_type = d.u8("new_value_type")?;
                d.pad(7)?;
                let old_value_type = d.u8("old_value_type")?;
                d.pad(7)?;
                let at = d.offset();
                let new_len = d.u64("new_value_len")?;
                let old_len = d.u64("old_value_len")?;
                // Both values are bounded by the bytes that follow, together exactly.
                let rest = d.remaining() as u64;
                if new_len.checked_add(old_len) != Some(rest) {
                    return Err(d.error_at(
                        at,
                        ErrorKind::LengthMismatch {
                            field: "new_value_len + old_value_len",
                            declared: new_len.saturating_add(old_len),
                            actual: rest,
                        },
                    ));
                }
                CmapResponse::Notify {
                    header,
                    track_inst_handle,
                    key,
                    event,
                    new_value_type,
                    old_value_type,
                    new_value: d.bytes("new_value", new_len as usize)?.to_vec(),
                    old_value: d.bytes("old_value", old_len as usize)?.to_vec(),
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
            CmapResponse::Notify {
                new_value,
                old_value,
                ..
            } => NOTIFY_FIXED_LEN + new_value.len() + old_value.len(),
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
            CmapResponse::Notify {
                header,
                track_inst_handle,
                key,
                event,
                new_value_type,
                old_value_type,
                new_value,
                old_value,
            } => {
                ResponseHeader { size, ..*header }.emit(&mut e);
                e.u64(*track_inst_handle);
                emit_name(&mut e, key);
                e.i32(*event);
                e.zeros(4);
                e.u8(*new_value_type);
                e.zeros(7);
                e.u8(*old_value_type);
                e.zeros(7);
                e.u64(new_value.len() as u64);
                e.u64(old_value.len() as u64);
                e.bytes(new_value);
                e.bytes(old_value);
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
            (
                CmapRequest::Set {
                    key: b"uidgid.gid.189",
                    value_type: CmapType::Uint8.into(),
                    value: &[1],
                },
                297,
            ),
            (
                CmapRequest::Set {
                    key: b"a.b",
                    value_type: CmapType::String.into(),
                    value: b"x\0",
                },
                298,
            ),
            (CmapRequest::Delete { key: b"a.b" }, 280),
            (
                CmapRequest::AdjustInt {
                    key: b"a.b",
                    step: -1,
                },
                288,
            ),
            (
                CmapRequest::TrackAdd {
                    key: b"runtime.members.",
                    track_type: TRACK_ADD | TRACK_DELETE | TRACK_MODIFY | TRACK_PREFIX,
                    track_inst_handle: 0x1234_5678_9abc,
                },
                296,
            ),
            (CmapRequest::TrackDelete { handle: 7 }, 24),
            (CmapRequest::SetCurrentMap { map: SETMAP_STATS }, 24),
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
        // A SET whose value_len is not what follows, either way.
        let mut b = Vec::new();
        CmapRequest::Set {
            key: b"a.b",
            value_type: 2,
            value: &[1],
        }
        .emit(&mut b);
        assert_eq!(&b[280..288], &1u64.to_le_bytes());
        b[280] = 2;
        assert!(CmapRequest::parse(&b).is_err());
        b[280] = 0;
        assert!(CmapRequest::parse(&b).is_err());
        b[280..288].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(CmapRequest::parse(&b).is_err());
        // Field offsets as ipc_cmap.h aligns them.
        let mut b = Vec::new();
        CmapRequest::TrackAdd {
            key: b"k.k",
            track_type: 8,
            track_inst_handle: 9,
        }
        .emit(&mut b);
        assert_eq!((b[16], b[24], b[280], b[288]), (3, b'k', 8, 9));
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
            CmapResponse::Handle {
                header: ok(7),
                handle: 3,
            },
            CmapResponse::Notify {
                header: ok(NOTIFY_CALLBACK_ID),
                track_inst_handle: 0xdead_beef,
                key: b"runtime.members.2.status".to_vec(),
                event: TRACK_MODIFY,
                new_value_type: CmapType::String.into(),
                old_value_type: CmapType::String.into(),
                new_value: b"left\0".to_vec(),
                old_value: b"joined\0".to_vec(),
            },
            CmapResponse::Notify {
                header: ok(NOTIFY_CALLBACK_ID),
                track_inst_handle: 1,
                key: b"a.b".to_vec(),
                event: TRACK_DELETE,
                new_value_type: 0,
                old_value_type: CmapType::Uint8.into(),
                new_value: Vec::new(),
                old_value: vec![1],
            },
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
        // A notification: offsets as cmap_notify_fn fills them, lengths bounded.
        let mut b = Vec::new();
        CmapResponse::Notify {
            header: ok(NOTIFY_CALLBACK_ID),
            track_inst_handle: 5,
            key: b"abc".to_vec(),
            event: TRACK_ADD,
            new_value_type: 2,
            old_value_type: 0,
            new_value: vec![7],
            old_value: Vec::new(),
        }
        .emit(&mut b);
        assert_eq!(b.len(), 337);
        assert_eq!(
            (b[24], b[32], b[40], b[296], b[304], b[320], b[336]),
            (5, 3, b'a', 4, 2, 1, 7)
        );
        let mut bad = b.clone();
        bad[328] = 1;
        assert!(CmapResponse::parse(&bad).is_err());
        bad[328] = 0;
        bad[320..328].copy_from_slice(&u64::MAX.to_le_bytes());
        bad[328] = 2;
        assert!(CmapResponse::parse(&bad).is_err());
    }
}
