//! Commands: what the runner writes to an agent's stdin, one JSON object per line.
//!
//! `{"id": 7, "cmd": "join", "handle": "h1", "group": "g"}`. Every command but
//! `initialize` and `quit` names its handle by `handle` (the scenario's name for it,
//! default `h1`) or by `handle_value` (a raw `cpg_handle_t`, to pass invalid handles).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{DispatchMode, Guarantee, Guard, IterationType, Model};

/// One command line: an optional `id` the result echoes, and the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Request {
    /// Echoed in the `result`, so the runner can match answers to questions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(flatten)]
    pub command: Command,
}

/// The commands, by `cmd`; each calls the libcpg function of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// `cpg_initialize` or `cpg_model_initialize`.
    Initialize(Initialize),
    /// `cpg_finalize`.
    Finalize(Target),
    /// `cpg_join`.
    Join(GroupCall),
    /// `cpg_leave`.
    Leave(GroupCall),
    /// `cpg_mcast_joined`, `count` times, retrying on CS_ERR_TRY_AGAIN.
    Mcast(Mcast),
    /// `cpg_zcb_alloc`.
    ZcbAlloc(ZcbAlloc),
    /// `cpg_zcb_mcast_joined` of a buffer `zcb_alloc` named.
    ZcbMcast(ZcbMcast),
    /// `cpg_zcb_free`.
    ZcbFree(ZcbFree),
    /// `cpg_membership_get`.
    MembershipGet(GroupCall),
    /// `cpg_local_get`.
    LocalGet(Target),
    /// `cpg_context_get`.
    ContextGet(Target),
    /// `cpg_context_set`.
    ContextSet(ContextSet),
    /// `cpg_fd_get`.
    FdGet(Target),
    /// `cpg_flow_control_state_get`.
    FlowControlStateGet(Target),
    /// `cpg_max_atomic_msgsize_get`.
    MaxAtomicMsgsizeGet(Target),
    /// `cpg_dispatch`, guarded against blocking for ever.
    Dispatch(Dispatch),
    /// `cpg_iteration_initialize`, `_next` until the end, `_finalize`.
    Iteration(Iteration),
    /// Answer, then exit without finalizing (like closing stdin).
    Quit,
    /// `evs_initialize` (docs/evs.md EVS-INIT-*): an EVS handle, named apart from CPG's.
    EvsInitialize(EvsInitialize),
    /// `evs_finalize`.
    EvsFinalize(Target),
    /// `evs_fd_get`.
    EvsFdGet(Target),
    /// `evs_context_get`.
    EvsContextGet(Target),
    /// `evs_context_set`.
    EvsContextSet(ContextSet),
    /// `evs_dispatch` (ONE, ALL, BLOCKING or any number), guarded as `dispatch` is.
    EvsDispatch(Dispatch),
    /// `evs_join` of a list of 32-byte keys.
    EvsJoin(EvsGroups),
    /// `evs_leave` of a list of 32-byte keys.
    EvsLeave(EvsGroups),
    /// `evs_mcast_joined`, `count` times, retrying on CS_ERR_TRY_AGAIN as `mcast` does.
    EvsMcastJoined(EvsMcast),
    /// `evs_mcast_groups` to `groups`, joined or not.
    EvsMcastGroups(EvsMcast),
    /// `evs_membership_get` into an array of `entries` nodeids.
    EvsMembershipGet(EvsMembershipGet),
    /// `quorum_initialize` / `quorum_model_initialize` (a handle named apart, default `q1`).
    QuorumInitialize(crate::svc_types::QuorumInitialize),
    /// `quorum_finalize`.
    QuorumFinalize(Target),
    /// `quorum_trackstart` with CS_TRACK_* flags.
    QuorumTrackstart(crate::svc_types::QuorumTrackstart),
    /// `quorum_trackstop`.
    QuorumTrackstop(Target),
    /// `quorum_getquorate`.
    QuorumGetquorate(Target),
    /// `cmap_initialize` (default handle `m1`).
    CmapInitialize(crate::svc_types::CmapInitialize),
    /// `cmap_finalize`.
    CmapFinalize(Target),
    /// `cmap_get`.
    CmapGet(crate::svc_types::CmapKey),
    /// `cmap_set` of a typed value.
    CmapSet(crate::svc_types::CmapSet),
    /// `cmap_delete`.
    CmapDelete(crate::svc_types::CmapKey),
    /// `cmap_track_add` of a key or prefix.
    CmapTrackAdd(crate::svc_types::CmapTrackAdd),
    /// `cmap_track_delete` of a named track.
    CmapTrackDelete(crate::svc_types::CmapTrackDelete),
    /// `corosync_cfg_initialize` with a shutdown-callback policy (default handle `c1`).
    CfgInitialize(crate::svc_types::CfgInitialize),
    /// `corosync_cfg_finalize`.
    CfgFinalize(Target),
    /// `corosync_cfg_trackstart(h, 0)`.
    CfgTrackstart(Target),
    /// `corosync_cfg_trackstop`.
    CfgTrackstop(Target),
    /// `corosync_cfg_try_shutdown`.
    CfgTryShutdown(crate::svc_types::CfgTryShutdown),
}

impl Command {
    /// The `cmd` name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Initialize(_) => "initialize",
            Self::Finalize(_) => "finalize",
            Self::Join(_) => "join",
            Self::Leave(_) => "leave",
            Self::Mcast(_) => "mcast",
            Self::ZcbAlloc(_) => "zcb_alloc",
            Self::ZcbMcast(_) => "zcb_mcast",
            Self::ZcbFree(_) => "zcb_free",
            Self::MembershipGet(_) => "membership_get",
            Self::LocalGet(_) => "local_get",
            Self::ContextGet(_) => "context_get",
            Self::ContextSet(_) => "context_set",
            Self::FdGet(_) => "fd_get",
            Self::FlowControlStateGet(_) => "flow_control_state_get",
            Self::MaxAtomicMsgsizeGet(_) => "max_atomic_msgsize_get",
            Self::Dispatch(_) => "dispatch",
            Self::Iteration(_) => "iteration",
            Self::Quit => "quit",
            Self::EvsInitialize(_) => "evs_initialize",
            Self::EvsFinalize(_) => "evs_finalize",
            Self::EvsFdGet(_) => "evs_fd_get",
            Self::EvsContextGet(_) => "evs_context_get",
            Self::EvsContextSet(_) => "evs_context_set",
            Self::EvsDispatch(_) => "evs_dispatch",
            Self::EvsJoin(_) => "evs_join",
            Self::EvsLeave(_) => "evs_leave",
            Self::EvsMcastJoined(_) => "evs_mcast_joined",
            Self::EvsMcastGroups(_) => "evs_mcast_groups",
            Self::EvsMembershipGet(_) => "evs_membership_get",
            Self::QuorumInitialize(_) => "quorum_initialize",
            Self::QuorumFinalize(_) => "quorum_finalize",
            Self::QuorumTrackstart(_) => "quorum_trackstart",
            Self::QuorumTrackstop(_) => "quorum_trackstop",
            Self::QuorumGetquorate(_) => "quorum_getquorate",
            Self::CmapInitialize(_) => "cmap_initialize",
            Self::CmapFinalize(_) => "cmap_finalize",
            Self::CmapGet(_) => "cmap_get",
            Self::CmapSet(_) => "cmap_set",
            Self::CmapDelete(_) => "cmap_delete",
            Self::CmapTrackAdd(_) => "cmap_track_add",
            Self::CmapTrackDelete(_) => "cmap_track_delete",
            Self::CfgInitialize(_) => "cfg_initialize",
            Self::CfgFinalize(_) => "cfg_finalize",
            Self::CfgTrackstart(_) => "cfg_trackstart",
            Self::CfgTrackstop(_) => "cfg_trackstop",
            Self::CfgTryShutdown(_) => "cfg_try_shutdown",
        }
    }

    /// Whether the command is an EVS call (its `handle` names an EVS handle).
    pub fn is_evs(&self) -> bool {
        self.name().starts_with("evs_")
    }
}

fn h1() -> String {
    "h1".to_owned()
}

fn b1() -> String {
    "b1".to_owned()
}

fn yes() -> bool {
    true
}

fn sixty_four() -> u64 {
    64
}

fn one() -> u64 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

pub use crate::target::Target;

/// `initialize`: a new handle, named for later commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Initialize {
    /// The name later commands use for the new handle.
    #[serde(default = "h1")]
    pub handle: String,
    #[serde(default)]
    pub model: Model,
    /// `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF` (model v1 only).
    #[serde(default)]
    pub initial_totem_conf: bool,
    /// The context `cpg_model_initialize` stores (model v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u64>,
    /// Dispatch (CS_DISPATCH_ALL) whenever the handle's descriptor is readable.
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
}

/// A call that names a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupCall {
    #[serde(flatten)]
    pub target: Target,
    /// The group's bytes in the escaped notation of traces (`\\`, `\xNN`).
    #[serde(default)]
    pub group: String,
    /// The `cpg_name.length` field, when it should differ from the byte count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_length: Option<u32>,
}

/// `mcast`: payloads of `size` bytes with a `TCF1` header (see `payload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Mcast {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default)]
    pub guarantee: Guarantee,
    /// Payload bytes per message (a `TCF1` header, then filler; see `payload`).
    #[serde(default = "sixty_four")]
    pub size: u64,
    #[serde(default = "one")]
    pub count: u64,
    /// iovec entries the payload is cut into (0: an empty iovec array); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iovs: Option<u64>,
    /// The payload's sender tag (default: the handle's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Give up retrying TRY_AGAIN after this long without progress (default 10 s when
    /// `count` > 1, else no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_ms: Option<u64>,
}

/// `zcb_alloc`: a zero-copy buffer, named for `zcb_mcast` and `zcb_free`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZcbAlloc {
    #[serde(flatten)]
    pub target: Target,
    /// The name `zcb_mcast` and `zcb_free` use for the buffer.
    #[serde(default = "b1")]
    pub buf: String,
    #[serde(default = "sixty_four")]
    pub size: u64,
}

/// `zcb_mcast`: a payload written into a named buffer, then sent from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZcbMcast {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default = "b1")]
    pub buf: String,
    /// Bytes to send (default: the whole buffer); more than the buffer is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(default)]
    pub guarantee: Guarantee,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `zcb_free` of a named buffer (or of a bogus pointer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZcbFree {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default = "b1")]
    pub buf: String,
    /// Free a pointer libcpg never handed out (a zeroed buffer's middle).
    #[serde(default, skip_serializing_if = "is_false")]
    pub bogus: bool,
}

/// `context_set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextSet {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default)]
    pub context: u64,
}

/// `dispatch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dispatch {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default)]
    pub mode: DispatchMode,
    /// Default: `watchdog` for BLOCKING, `poll` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// The guard's limit (default 3000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Finalize the handle from inside the N-th callback (how BLOCKING is ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize_after: Option<u64>,
}

/// `iteration`: the whole walk in one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Iteration {
    #[serde(flatten)]
    pub target: Target,
    #[serde(rename = "type", default)]
    pub kind: IterationType,
    /// The group for ONE_GROUP (escaped notation); absent: a NULL `cpg_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_length: Option<u32>,
    /// Also call `_next` and `_finalize` on the finalized iteration handle.
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_finalize: bool,
}

/// `evs_initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvsInitialize {
    /// The name later EVS commands use for the new handle.
    #[serde(default = "h1")]
    pub handle: String,
    /// Dispatch (CS_DISPATCH_ALL) whenever the handle's descriptor is readable.
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
}

/// An EVS group key (`struct evs_group`, 32 bytes compared whole: EVS-JOIN-6): a string in
/// the escaped notation of group names (`\\`, `\xNN`), NUL-padded to 32 bytes, or
/// `{"hex": "..."}` with up to 64 hex digits, NUL-padded (for keys with bytes after a NUL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EvsKey {
    Text(String),
    Hex {
        /// Up to 64 hex digits (32 bytes), padded with zero bytes.
        hex: String,
    },
}

impl From<&str> for EvsKey {
    fn from(s: &str) -> Self {
        EvsKey::Text(s.to_owned())
    }
}

impl EvsKey {
    /// The 32 bytes of the key; an error for a bad escape, bad hex or more than 32 bytes.
    pub fn bytes(&self) -> Result<[u8; 32], String> {
        let raw = match self {
            EvsKey::Text(t) => totem_wire::exec::cpg::unescape_name(t)?,
            EvsKey::Hex { hex } => {
                if hex.len() % 2 != 0 {
                    return Err(format!("hex key {hex:?} has an odd number of digits"));
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|d| u8::from_str_radix(d, 16).ok())
                            .ok_or_else(|| format!("bad hex key {hex:?}"))
                    })
                    .collect::<Result<Vec<u8>, String>>()?
            }
        };
        if raw.len() > 32 {
            return Err(format!("an EVS key has 32 bytes, this one {}", raw.len()));
        }
        let mut key = [0u8; 32];
        key[..raw.len()].copy_from_slice(&raw);
        Ok(key)
    }
}

/// The canonical text of a key in results and events: the escaped notation of its bytes
/// without the trailing zero bytes (`"g1"` for `g1` and 30 NULs).
pub fn evs_key_text(key: &[u8; 32]) -> String {
    let end = key.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    totem_wire::exec::cpg::escape_name(&key[..end])
}

/// `evs_join`, `evs_leave`: keys, in order (duplicates kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvsGroups {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default)]
    pub groups: Vec<EvsKey>,
}

/// `evs_mcast_joined` / `evs_mcast_groups`: payloads as `mcast` builds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvsMcast {
    #[serde(flatten)]
    pub target: Target,
    /// `evs_guarantee_t` (EVS_TYPE_*): carried, and ignored by the daemon (EVS-MJ-4).
    #[serde(default)]
    pub guarantee: Guarantee,
    /// `evs_mcast_groups` only: the destination keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<EvsKey>,
    #[serde(default = "sixty_four")]
    pub size: u64,
    #[serde(default = "one")]
    pub count: u64,
    /// iovec entries the payload is cut into (0: an empty iovec array); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iovs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_ms: Option<u64>,
}

/// `evs_membership_get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvsMembershipGet {
    #[serde(flatten)]
    pub target: Target,
    /// The caller's `*member_list_entries`: the size of its array (default 384,
    /// `PROCESSOR_COUNT_MAX`); the answer is truncated to it (EVS-MEMB-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_the_readme_writes_them() {
        let r: Request =
            serde_json::from_str(r#"{"id":7,"cmd":"join","handle":"h2","group":"g"}"#).unwrap();
        assert_eq!(r.id, Some(7));
        let Command::Join(j) = &r.command else {
            panic!("{r:?}")
        };
        assert_eq!((j.target.handle.as_str(), j.group.as_str()), ("h2", "g"));
        let q: Request = serde_json::from_str(r#"{"cmd":"quit"}"#).unwrap();
        assert_eq!(q.command, Command::Quit);
        // Defaults: handle h1, AGREED, 64 bytes, once.
        let m: Request = serde_json::from_str(r#"{"cmd":"mcast"}"#).unwrap();
        let Command::Mcast(m) = m.command else {
            panic!()
        };
        assert_eq!(
            (m.target.handle.as_str(), m.guarantee, m.size, m.count),
            ("h1", Guarantee::AGREED, 64, 1)
        );
    }

    #[test]
    fn commands_round_trip() {
        let r = Request {
            id: Some(3),
            command: Command::Dispatch(Dispatch {
                target: Target {
                    handle: "h1".into(),
                    handle_value: Some(0xdead_beef),
                },
                mode: "99".parse().unwrap(),
                guard: Some(Guard::Watchdog),
                timeout_ms: Some(200),
                finalize_after: None,
            }),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""mode":"99""#), "{line}");
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
    }

    #[test]
    fn evs_keys_are_padded_text_or_hex() {
        let r: Request = serde_json::from_str(
            r#"{"cmd":"evs_join","handle":"e1","groups":["g1",{"hex":"6b00ff"}]}"#,
        )
        .unwrap();
        let Command::EvsJoin(j) = &r.command else {
            panic!("{r:?}")
        };
        let a = j.groups[0].bytes().unwrap();
        assert_eq!(
            (&a[..2], a[2..].iter().all(|b| *b == 0)),
            (&b"g1"[..], true)
        );
        let b = j.groups[1].bytes().unwrap();
        assert_eq!(&b[..4], b"k\0\xff\0");
        assert_eq!(evs_key_text(&b), "k\\x00\\xff");
        assert!(EvsKey::from("x".repeat(33).as_str()).bytes().is_err());
        assert!(EvsKey::Hex { hex: "6".into() }.bytes().is_err());
        assert!(r.command.is_evs());
    }

    #[test]
    fn unknown_commands_are_errors() {
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"jion"}"#).is_err());
    }
}
