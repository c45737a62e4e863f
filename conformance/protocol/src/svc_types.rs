//! The values and commands of libquorum, libcmap and libcfg's shutdown tracking (see
//! [`crate::svc`] for their calls and callbacks): plain data, shared by the command and
//! event types and the executor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::target::Target;

/// Which library a handle belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Quorum,
    Cmap,
    Cfg,
}

/// `quorum_model_t`: v0 (`quorum_initialize`, what Pacemaker 2.1 calls: quorate, ring
/// seq, members) or v1 (`quorum_model_initialize(QUORUM_MODEL_V1)`: the ring id, and a
/// nodelist callback).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuorumModel {
    #[default]
    V0,
    V1,
}

fn q1() -> String {
    "q1".to_owned()
}
fn m1() -> String {
    "m1".to_owned()
}
fn c1() -> String {
    "c1".to_owned()
}
fn t1() -> String {
    "t1".to_owned()
}
fn yes() -> bool {
    true
}

/// `quorum_initialize` (v0) or `quorum_model_initialize` (v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuorumInitialize {
    #[serde(default = "q1")]
    pub handle: String,
    #[serde(default)]
    pub model: QuorumModel,
    /// Dispatch (CS_DISPATCH_ALL) whenever the handle's descriptor is readable.
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
}

/// `CS_TRACK_*` flags (corotypes.h) by name, or a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TrackFlags {
    Names(Vec<String>),
    Raw(u32),
}

impl TrackFlags {
    /// The C value: CURRENT 1, CHANGES 2, CHANGES_ONLY 4.
    pub fn raw(&self) -> Result<u32, String> {
        match self {
            TrackFlags::Raw(v) => Ok(*v),
            TrackFlags::Names(n) => n.iter().try_fold(0, |acc, s| {
                Ok(acc
                    | match s.as_str() {
                        "CURRENT" => 1,
                        "CHANGES" => 2,
                        "CHANGES_ONLY" => 4,
                        o => {
                            return Err(format!(
                                "bad track flag {o:?}: CURRENT, CHANGES or CHANGES_ONLY"
                            ))
                        }
                    })
            }),
        }
    }
}

/// `quorum_trackstart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuorumTrackstart {
    #[serde(flatten)]
    pub target: Target,
    pub flags: TrackFlags,
}

/// A cmap value with its `cmap_value_types_t`, named as `corosync-cmapctl` names types
/// (`i8` .. `u64`, `flt`, `dbl`, `str`, `bin`: hex digits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum CmapValue {
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Flt(f32),
    Dbl(f64),
    Str(String),
    Bin(String),
}

/// Largest value the agent reads or writes (icmap's own limit is below it).
pub const CMAP_VALUE_MAX: usize = 64 * 1024;

impl CmapValue {
    /// `cmap_value_types_t`.
    pub fn c_type(&self) -> u32 {
        match self {
            CmapValue::I8(_) => 1,
            CmapValue::U8(_) => 2,
            CmapValue::I16(_) => 3,
            CmapValue::U16(_) => 4,
            CmapValue::I32(_) => 5,
            CmapValue::U32(_) => 6,
            CmapValue::I64(_) => 7,
            CmapValue::U64(_) => 8,
            CmapValue::Flt(_) => 9,
            CmapValue::Dbl(_) => 10,
            CmapValue::Str(_) => 11,
            CmapValue::Bin(_) => 12,
        }
    }

    /// The bytes `cmap_set` is given: native-endian integers, a string with its NUL.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(match self {
            CmapValue::I8(v) => v.to_ne_bytes().to_vec(),
            CmapValue::U8(v) => v.to_ne_bytes().to_vec(),
            CmapValue::I16(v) => v.to_ne_bytes().to_vec(),
            CmapValue::U16(v) => v.to_ne_bytes().to_vec(),
            CmapValue::I32(v) => v.to_ne_bytes().to_vec(),
            CmapValue::U32(v) => v.to_ne_bytes().to_vec(),
            CmapValue::I64(v) => v.to_ne_bytes().to_vec(),
            CmapValue::U64(v) => v.to_ne_bytes().to_vec(),
            CmapValue::Flt(v) => v.to_ne_bytes().to_vec(),
            CmapValue::Dbl(v) => v.to_ne_bytes().to_vec(),
            CmapValue::Str(s) => {
                if s.contains('\0') {
                    return Err("a cmap string value cannot hold a NUL".into());
                }
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                b
            }
            CmapValue::Bin(hex) => {
                if hex.len() % 2 != 0 || hex.len() / 2 > CMAP_VALUE_MAX {
                    return Err(format!("bad bin value {hex:?}"));
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|d| u8::from_str_radix(d, 16).ok())
                            .ok_or_else(|| format!("bad bin value {hex:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
        })
    }

    /// A value read back (`cmap_get`, a notification): `None` for type 0 / no data (a
    /// notification's absent side) or a type the header does not name; a wrong length for
    /// the type is an error.
    pub fn from_c(kind: u32, data: &[u8]) -> Result<Option<CmapValue>, String> {
        fn arr<const N: usize>(d: &[u8]) -> Result<[u8; N], String> {
            d.try_into()
                .map_err(|_| format!("a {N}-byte cmap value came with {} bytes", d.len()))
        }
        Ok(Some(match kind {
            1 => CmapValue::I8(i8::from_ne_bytes(arr(data)?)),
            2 => CmapValue::U8(u8::from_ne_bytes(arr(data)?)),
            3 => CmapValue::I16(i16::from_ne_bytes(arr(data)?)),
            4 => CmapValue::U16(u16::from_ne_bytes(arr(data)?)),
            5 => CmapValue::I32(i32::from_ne_bytes(arr(data)?)),
            6 => CmapValue::U32(u32::from_ne_bytes(arr(data)?)),
            7 => CmapValue::I64(i64::from_ne_bytes(arr(data)?)),
            8 => CmapValue::U64(u64::from_ne_bytes(arr(data)?)),
            9 => CmapValue::Flt(f32::from_ne_bytes(arr(data)?)),
            10 => CmapValue::Dbl(f64::from_ne_bytes(arr(data)?)),
            11 => {
                // icmap stores the terminating NUL; the text is what precedes it.
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                CmapValue::Str(String::from_utf8_lossy(&data[..end]).into_owned())
            }
            12 => CmapValue::Bin(data.iter().map(|b| format!("{b:02x}")).collect()),
            _ => return Ok(None),
        }))
    }
}

/// `cmap_initialize`, `corosync_cfg_initialize` (the cfg one takes a shutdown policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CmapInitialize {
    #[serde(default = "m1")]
    pub handle: String,
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
}

/// `cmap_get`, `cmap_delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CmapKey {
    #[serde(flatten)]
    pub target: Target,
    pub key: String,
}

/// `cmap_set` of a typed value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CmapSet {
    #[serde(flatten)]
    pub target: Target,
    pub key: String,
    pub value: CmapValue,
}

/// `cmap_track_add`: `track` types by name (ADD, DELETE, MODIFY), `prefix` adds
/// CMAP_TRACK_PREFIX; `name` names the track for `cmap_track_delete` and notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CmapTrackAdd {
    #[serde(flatten)]
    pub target: Target,
    pub key: String,
    pub track: Vec<String>,
    #[serde(default)]
    pub prefix: bool,
    #[serde(default = "t1")]
    pub name: String,
}

impl CmapTrackAdd {
    /// The `track_type` argument (cmap.h: ADD 4, DELETE 1, MODIFY 2, PREFIX 8).
    pub fn raw(&self) -> Result<i32, String> {
        let mut v = if self.prefix { 8 } else { 0 };
        for t in &self.track {
            v |= match t.as_str() {
                "ADD" => 4,
                "DELETE" => 1,
                "MODIFY" => 2,
                o => return Err(format!("bad cmap track type {o:?}: ADD, DELETE or MODIFY")),
            };
        }
        Ok(v)
    }
}

/// `cmap_track_delete` of a named track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CmapTrackDelete {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default = "t1")]
    pub name: String,
}

/// What the agent answers when the shutdown callback fires (Pacemaker answers no while
/// it runs resources): `corosync_cfg_replyto_shutdown` with YES or NO from inside the
/// callback, or no call at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownReply {
    Yes,
    No,
    #[default]
    None,
}

/// `corosync_cfg_initialize` with a shutdown callback answering by `shutdown_reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CfgInitialize {
    #[serde(default = "c1")]
    pub handle: String,
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
    #[serde(default)]
    pub shutdown_reply: ShutdownReply,
}

/// `corosync_cfg_try_shutdown`: REQUEST (0), REGARDLESS (1), IMMEDIATE (2) or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CfgTryShutdown {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default = "request")]
    pub flags: String,
}

fn request() -> String {
    "REQUEST".to_owned()
}

/// `corosync_cfg_shutdown_flags_t` by name or number.
pub fn shutdown_flags(s: &str) -> Result<u32, String> {
    match s {
        "REQUEST" => Ok(0),
        "REGARDLESS" => Ok(1),
        "IMMEDIATE" => Ok(2),
        n => n
            .parse()
            .map_err(|_| format!("bad shutdown flags {n:?}: REQUEST, REGARDLESS or IMMEDIATE")),
    }
}

pub(crate) fn shutdown_flags_name(v: u32) -> String {
    match v {
        0 => "REQUEST".into(),
        1 => "REGARDLESS".into(),
        2 => "IMMEDIATE".into(),
        n => n.to_string(),
    }
}
