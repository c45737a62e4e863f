//! The `cmap` service (`exec/cmap.c`) over totemd's `icmap` (`exec/icmap.c`): one writable
//! key-value map shared by every IPC server of the daemon ([`SharedIcmap`]).
//!
//! * The map holds what corosync's holds where we can fill it truthfully: the
//!   configuration's keys as `coroparse.c` stores them ([`Icmap::load_config`]),
//!   `runtime.votequorum.this_node_id`, and `runtime.members.<id>.{ip,join_count,status}`
//!   kept by [`Icmap::confchg`] as `main.c::member_object_joined` / `_left` keep them.
//! * SET, DELETE and ADJUST_INT follow `icmap_set_r` / `icmap_delete_r` /
//!   `icmap_adjust_int_r` with `cmap.c`'s read-only check first (`icmap_is_key_ro`, the
//!   prefixes `main.c` and `votequorum.c` register).
//! * TRACK_ADD / TRACK_DELETE keep tracks as libqb's trie notifies them (an exact key, or
//!   with `CMAP_TRACK_PREFIX` every key starting with it); each change queues a
//!   `res_lib_cmap_notify_callback` for the owning connection ([`Icmap::take_notifications`]),
//!   as `icmap_notify_fn` → `cmap_notify_fn` send it. Tracks end with their connection.
//!
//! Keys are kept in byte order, as libqb's trie iterates them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use totem_wire::ipc::cmap::{
    CmapRequest, CmapResponse, CmapType, GET_RESPONSE_FIXED_LEN, NOTIFY_CALLBACK_ID,
    SETMAP_DEFAULT, SETMAP_STATS, TRACK_ADD, TRACK_DELETE, TRACK_MODIFY, TRACK_PREFIX,
};
use totem_wire::ipc::{CsError, ResponseHeader, IPC_MAX_MSG_LEN};

use crate::config::CorosyncConf;
use crate::quorum::Reply;

/// The service name (`cs_ipcs_serv_short_name(CMAP_SERVICE)`).
pub const SERVICE: &str = "cmap";

/// Open iterations per connection (corosync's hdb has no limit; ours is bounded).
pub const MAX_ITERATIONS: usize = 64;
/// Tracks per connection (bounded for the same reason).
pub const MAX_TRACKS: usize = 256;
/// Keys in the map: a client cannot grow it without bound (corosync has no limit; a SET
/// beyond it is CS_ERR_NO_MEMORY, what `icmap_set_r` answers when malloc fails).
pub const MAX_KEYS: usize = 65_536;
/// `ICMAP_MAX_VALUE_LEN`.
pub const MAX_VALUE_LEN: usize = 16 * 1024;
/// `ICMAP_KEYNAME_MINLEN`.
pub const KEYNAME_MINLEN: usize = 3;
/// `ICMAP_KEYNAME_MAXLEN`.
pub const KEYNAME_MAXLEN: usize = 255;
/// Notifications that may wait for [`Icmap::take_notifications`] (the daemon drains them
/// after every request and node event; the bound only guards against a runaway).
const MAX_PENDING_NOTIFICATIONS: usize = 65_536;

/// One value: its type and bytes (a string with its NUL, as icmap stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// `CMAP_VALUETYPE_*`.
    pub kind: CmapType,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Value {
    /// A `CMAP_VALUETYPE_UINT32`.
    pub fn u32(v: u32) -> Value {
        Value {
            kind: CmapType::Uint32,
            bytes: v.to_ne_bytes().to_vec(),
        }
    }

    /// A `CMAP_VALUETYPE_UINT64`.
    pub fn u64(v: u64) -> Value {
        Value {
            kind: CmapType::Uint64,
            bytes: v.to_ne_bytes().to_vec(),
        }
    }

    /// A `CMAP_VALUETYPE_INT32`.
    pub fn i32(v: i32) -> Value {
        Value {
            kind: CmapType::Int32,
            bytes: v.to_ne_bytes().to_vec(),
        }
    }

    /// A `CMAP_VALUETYPE_UINT8`.
    pub fn u8(v: u8) -> Value {
        Value {
            kind: CmapType::Uint8,
            bytes: vec![v],
        }
    }

    /// A `CMAP_VALUETYPE_STRING`, stored with its NUL.
    pub fn string(s: &str) -> Value {
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        Value {
            kind: CmapType::String,
            bytes,
        }
    }
}

/// `icmap_get_valuetype_len`: the fixed size of a type; 0 for strings, binaries and
/// types icmap does not know.
fn valuetype_len(kind: u8) -> usize {
    match kind {
        1 | 2 => 1,
        3 | 4 => 2,
        5 | 6 | 9 => 4,
        7 | 8 | 10 => 8,
        _ => 0,
    }
}

/// `icmap_is_valid_name_char`.
fn valid_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/' | b':')
}

/// `icmap_check_key_name`.
pub fn key_name_valid(key: &[u8]) -> bool {
    (KEYNAME_MINLEN..=KEYNAME_MAXLEN).contains(&key.len())
        && key.iter().all(|&c| valid_name_char(c))
}

/// `icmap_check_value_len` and the stored form `icmap_set_r` makes: a string is cut at
/// its first NUL (or at `value_len`) and stored with one NUL.
fn stored_value(value: &[u8], kind: u8) -> Result<Vec<u8>, CsError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(CsError::InvalidParam);
    }
    match kind {
        // CMAP_VALUETYPE_STRING: value_len may be shorter than the string, never longer
        // than it plus its NUL.
        11 => {
            let strlen = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            if value.len() > strlen + 1 {
                return Err(CsError::InvalidParam);
            }
            let mut v = value[..strlen.min(value.len())].to_vec();
            v.push(0);
            Ok(v)
        }
        12 => Ok(value.to_vec()),
        k if valuetype_len(k) == value.len() => Ok(value.to_vec()),
        _ => Err(CsError::InvalidParam),
    }
}

/// One track (`struct icmap_track` with `cmap_track_user_data`).
#[derive(Debug, Clone)]
struct Track {
    /// The connection that added it.
    owner: u64,
    /// The key or prefix; `None` is libcmap's NULL key (the trie's root).
    key: Option<Vec<u8>>,
    /// `CMAP_TRACK_*` bits.
    track_type: i32,
    /// The client's handle, echoed in its notifications.
    inst: u64,
}

impl Track {
    /// Does a change of `key` reach this track (libqb's trie: the exact node, or any node
    /// above it with `QB_MAP_NOTIFY_RECURSIVE`)?
    fn matches(&self, key: &[u8], event: i32) -> bool {
        if self.track_type & event == 0 {
            return false;
        }
        match &self.key {
            Some(k) if self.track_type & TRACK_PREFIX != 0 => key.starts_with(k),
            Some(k) => k == key,
            None => self.track_type & TRACK_PREFIX != 0,
        }
    }
}

/// A notification for the connection `owner` (its dispatch channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The connection.
    pub owner: u64,
    /// A `res_lib_cmap_notify_callback`.
    pub bytes: Vec<u8>,
}

/// The map, its read-only keys and its tracks.
#[derive(Debug, Clone)]
pub struct Icmap {
    map: BTreeMap<Vec<u8>, Value>,
    /// `icmap_set_ro_access` entries: (key, prefix).
    ro: Vec<(Vec<u8>, bool)>,
    tracks: BTreeMap<u64, Track>,
    next_track: u64,
    pending: Vec<Notification>,
    /// Each node's addresses (`totempg_ifaces_get`), for `runtime.members.<id>.ip`.
    member_addrs: BTreeMap<u32, Vec<std::net::IpAddr>>,
}

/// The map as the daemon's IPC servers share it. The loop is single-threaded, so the lock
/// is never contended; it is a `Mutex` only so that an [`crate::ipc::IpcConfig`] holding it
/// stays `Send` (tests run servers on threads).
pub type SharedIcmap = Arc<Mutex<Icmap>>;

/// The map behind a [`SharedIcmap`] (a panic elsewhere cannot leave it half-updated: every
/// change is one insert or remove, so a poisoned lock is taken as it is).
pub fn lock(m: &SharedIcmap) -> MutexGuard<'_, Icmap> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Icmap {
    fn default() -> Self {
        Icmap::new()
    }
}

impl Icmap {
    /// An empty map with corosync's read-only keys: `main.c::main` (prefixes, then single
    /// keys) and `votequorum.c::votequorum_readconfig` (its static keys).
    pub fn new() -> Icmap {
        let mut ro = Vec::new();
        for p in [
            "internal_configuration.",
            "runtime.services.",
            "runtime.config.",
            "runtime.totem.",
            "uidgid.config.",
            "system.",
            "nodelist.",
        ] {
            ro.push((p.as_bytes().to_vec(), true));
        }
        for k in [
            "totem.crypto_cipher",
            "totem.crypto_hash",
            "totem.crypto_model",
            "totem.keyfile",
            "totem.key",
            "totem.secauth",
            "totem.ip_version",
            "totem.rrp_mode",
            "totem.transport",
            "totem.cluster_name",
            "totem.netmtu",
            "totem.threads",
            "totem.version",
            "totem.nodeid",
            "totem.clear_node_high_bit",
            "config.reload_in_progress",
            "config.totemconfig_reload_in_progress",
            "quorum.allow_downscale",
            "quorum.wait_for_all",
            "quorum.last_man_standing",
            "quorum.last_man_standing_window",
            "quorum.expected_votes_tracking",
            "quorum.auto_tie_breaker",
            "quorum.auto_tie_breaker_node",
        ] {
            ro.push((k.as_bytes().to_vec(), false));
        }
        Icmap {
            map: BTreeMap::new(),
            ro,
            tracks: BTreeMap::new(),
            next_track: 0,
            pending: Vec::new(),
            member_addrs: BTreeMap::new(),
        }
    }

    /// Shared.
    pub fn shared(self) -> SharedIcmap {
        Arc::new(Mutex::new(self))
    }

    /// `icmap_is_key_ro`.
    pub fn is_ro(&self, key: &[u8]) -> bool {
        self.ro.iter().any(|(k, prefix)| {
            if *prefix {
                key.starts_with(k)
            } else {
                key == k.as_slice()
            }
        })
    }

    /// One key.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key)
    }

    /// A UINT32 value (`icmap_get_uint32`: only a key of that type).
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        let v = self.get(key.as_bytes())?;
        if v.kind != CmapType::Uint32 {
            return None;
        }
        Some(u32::from_ne_bytes(v.bytes.as_slice().try_into().ok()?))
    }

    /// `icmap_get_uint8`: the value if the key holds a UINT8.
    pub fn get_u8(&self, key: &str) -> Option<u8> {
        match self.map.get(key.as_bytes()) {
            Some(Value {
                kind: CmapType::Uint8,
                bytes,
            }) => bytes.first().copied(),
            _ => None,
        }
    }

    /// Keys with this prefix, in order.
    pub fn with_prefix(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `icmap_set_r`: `value` of type `kind` (a `CMAP_VALUETYPE_*` byte). An unchanged
    /// value is CS_OK without a notification; a new key must have a valid name
    /// (CS_ERR_NAME_TOO_LONG otherwise, as icmap answers both length and characters).
    pub fn set(&mut self, key: &[u8], value: &[u8], kind: u8) -> Result<(), CsError> {
        let bytes = stored_value(value, kind)?;
        let new = Value {
            kind: CmapType::from(kind),
            bytes,
        };
        let old = match self.map.get(key) {
            Some(old) if *old == new => return Ok(()),
            Some(old) => Some(old.clone()),
            None if !key_name_valid(key) => return Err(CsError::NameTooLong),
            None if self.map.len() >= MAX_KEYS => return Err(CsError::NoMemory),
            None => None,
        };
        let event = if old.is_some() {
            TRACK_MODIFY
        } else {
            TRACK_ADD
        };
        self.notify(key, event, Some(&new), old.as_ref());
        self.map.insert(key.to_vec(), new);
        Ok(())
    }

    /// [`Icmap::set`] of a typed value (the daemon's own keys).
    pub fn set_value(&mut self, key: &str, v: Value) {
        if let Err(e) = self.set(key.as_bytes(), &v.bytes, v.kind.into()) {
            crate::logf!(Main, Error, "icmap: cannot set {key}: {e:?}");
        }
    }

    /// `icmap_delete_r`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), CsError> {
        let old = self.map.remove(key).ok_or(CsError::NotExist)?;
        self.notify(key, TRACK_DELETE, None, Some(&old));
        Ok(())
    }

    /// `icmap_adjust_int_r`: integers wrap at their width as C's unsigned arithmetic does;
    /// floats, strings and binaries are CS_ERR_INVALID_PARAM.
    pub fn adjust_int(&mut self, key: &[u8], step: i32) -> Result<(), CsError> {
        let v = self.map.get(key).ok_or(CsError::NotExist)?;
        let kind = u8::from(v.kind);
        let b = &v.bytes;
        let next: Vec<u8> = match kind {
            1 | 2 => vec![b[0].wrapping_add(step as u8)],
            3 | 4 => u16::from_ne_bytes([b[0], b[1]])
                .wrapping_add(step as u16)
                .to_ne_bytes()
                .to_vec(),
            5 | 6 => u32::from_ne_bytes(b[..4].try_into().unwrap_or_default())
                .wrapping_add(step as u32)
                .to_ne_bytes()
                .to_vec(),
            7 | 8 => u64::from_ne_bytes(b[..8].try_into().unwrap_or_default())
                .wrapping_add(step as i64 as u64)
                .to_ne_bytes()
                .to_vec(),
            9..=12 => return Err(CsError::InvalidParam),
            // A type icmap's switch does not know: nothing happens, CS_OK.
            _ => return Ok(()),
        };
        self.set(key, &next, kind)
    }

    /// `icmap_track_add` for connection `owner`: the track's handle.
    pub fn track_add(
        &mut self,
        owner: u64,
        key: &[u8],
        track_type: i32,
        inst: u64,
    ) -> Result<u64, CsError> {
        if track_type & !(TRACK_ADD | TRACK_DELETE | TRACK_MODIFY | TRACK_PREFIX) != 0 {
            return Err(CsError::InvalidParam);
        }
        if self.tracks.values().filter(|t| t.owner == owner).count() >= MAX_TRACKS {
            return Err(CsError::NoResources);
        }
        self.next_track += 1;
        let handle = self.next_track;
        self.tracks.insert(
            handle,
            Track {
                owner,
                // message_handler_req_lib_cmap_track_add: a zero-length name is NULL.
                key: (!key.is_empty()).then(|| key.to_vec()),
                track_type,
                inst,
            },
        );
        Ok(handle)
    }

    /// `icmap_track_delete` of one of `owner`'s tracks: its `track_inst_handle`.
    pub fn track_delete(&mut self, owner: u64, handle: u64) -> Result<u64, CsError> {
        match self.tracks.get(&handle) {
            Some(t) if t.owner == owner => Ok(self.tracks.remove(&handle).map_or(0, |t| t.inst)),
            _ => Err(CsError::BadHandle),
        }
    }

    /// `cmap_lib_exit_fn`: the connection's tracks go.
    pub fn drop_owner(&mut self, owner: u64) {
        self.tracks.retain(|_, t| t.owner != owner);
        self.pending.retain(|n| n.owner != owner);
    }

    /// Does `owner` have a track?
    pub fn has_tracks(&self, owner: u64) -> bool {
        self.tracks.values().any(|t| t.owner == owner)
    }

    /// The notifications queued since the last call, in order.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.pending)
    }

    /// `icmap_notify_fn` → `cmap_notify_fn` for every track the change reaches: exact-key
    /// tracks first, then prefix tracks from the longest prefix up (the order libqb's trie
    /// walks from the key's node to the root).
    fn notify(&mut self, key: &[u8], event: i32, new: Option<&Value>, old: Option<&Value>) {
        let mut hit: Vec<&Track> = self
            .tracks
            .values()
            .filter(|t| t.matches(key, event))
            .collect();
        if hit.is_empty() {
            return;
        }
        hit.sort_by_key(|t| {
            let prefix = t.track_type & TRACK_PREFIX != 0;
            (
                prefix,
                std::cmp::Reverse(t.key.as_ref().map_or(0, Vec::len)),
            )
        });
        let mut out = Vec::new();
        for t in hit {
            let n = CmapResponse::Notify {
                header: ResponseHeader {
                    id: NOTIFY_CALLBACK_ID,
                    size: 0,
                    error: CsError::Ok,
                },
                track_inst_handle: t.inst,
                key: key.to_vec(),
                event,
                new_value_type: new.map_or(0, |v| v.kind.into()),
                old_value_type: old.map_or(0, |v| v.kind.into()),
                new_value: new.map_or_else(Vec::new, |v| v.bytes.clone()),
                old_value: old.map_or_else(Vec::new, |v| v.bytes.clone()),
            };
            let mut bytes = Vec::new();
            n.emit(&mut bytes);
            out.push(Notification {
                owner: t.owner,
                bytes,
            });
        }
        if self.pending.len() + out.len() > MAX_PENDING_NOTIFICATIONS {
            crate::logf!(
                Main,
                Error,
                "icmap: notifications not drained, dropping some"
            );
            return;
        }
        self.pending.extend(out);
    }
}

/// `coroparse.c::main_config_parser_cb`'s typed keys: the type a key's value is converted
/// to (every other key is stored as the string written).
fn config_key_type(path: &str) -> Option<CmapType> {
    Some(match path {
        "pload.count" | "pload.size" => CmapType::Uint32,
        "quorum.expected_votes"
        | "quorum.votes"
        | "quorum.last_man_standing_window"
        | "quorum.leaving_timeout"
        | "quorum.device.timeout"
        | "quorum.device.sync_timeout"
        | "quorum.device.votes" => CmapType::Uint32,
        "quorum.two_node"
        | "quorum.expected_votes_tracking"
        | "quorum.allow_downscale"
        | "quorum.wait_for_all"
        | "quorum.auto_tie_breaker"
        | "quorum.last_man_standing"
        | "quorum.device.master_wins" => CmapType::Uint8,
        "totem.version"
        | "totem.nodeid"
        | "totem.threads"
        | "totem.token"
        | "totem.token_coefficient"
        | "totem.token_retransmit"
        | "totem.token_warning"
        | "totem.hold"
        | "totem.token_retransmits_before_loss_const"
        | "totem.join"
        | "totem.send_join"
        | "totem.consensus"
        | "totem.merge"
        | "totem.downcheck"
        | "totem.fail_recv_const"
        | "totem.seqno_unchanged_const"
        | "totem.rrp_token_expired_timeout"
        | "totem.rrp_problem_count_timeout"
        | "totem.rrp_problem_count_threshold"
        | "totem.rrp_problem_count_mcast_threshold"
        | "totem.rrp_autorecovery_check_timeout"
        | "totem.heartbeat_failures_allowed"
        | "totem.max_network_delay"
        | "totem.window_size"
        | "totem.max_messages"
        | "totem.miss_count_const"
        | "totem.knet_pmtud_interval"
        | "totem.knet_mtu"
        | "totem.knet_compression_threshold"
        | "totem.netmtu" => CmapType::Uint32,
        "totem.knet_compression_level" => CmapType::Int32,
        "totem.config_version" => CmapType::Uint64,
        _ => return None,
    })
}

/// A configuration value as `coroparse.c` stores it: converted for the typed keys
/// (`safe_atoq`, `str_to_ull`), else a string. The daemon's reader has already refused a
/// file whose typed values do not convert; one that still does not is left out.
fn config_value(path: &str, value: &str, kind: Option<CmapType>) -> Option<Value> {
    let v = value.trim();
    Some(match kind {
        None => Value::string(value),
        Some(CmapType::Uint8) => Value::u8(v.parse().ok()?),
        Some(CmapType::Uint16) => Value {
            kind: CmapType::Uint16,
            bytes: v.parse::<u16>().ok()?.to_ne_bytes().to_vec(),
        },
        Some(CmapType::Uint32) => Value::u32(v.parse().ok()?),
        Some(CmapType::Int32) => Value::i32(v.parse().ok()?),
        Some(CmapType::Uint64) => Value::u64(v.parse().ok()?),
        Some(other) => {
            crate::logf!(Main, Debug, "icmap: {path}: no conversion to {other:?}");
            return None;
        }
    })
}

/// `totem.interface { }`'s keys after its section end (`PARSER_CB_SECTION_END`):
/// `totem.interface.<linknumber>.<key>`, typed.
fn interface_key_type(key: &str) -> Option<Option<CmapType>> {
    Some(match key {
        "bindnetaddr" | "mcastaddr" | "broadcast" | "knet_transport" => None,
        "mcastport" => Some(CmapType::Uint16),
        "ttl" | "knet_link_priority" => Some(CmapType::Uint8),
        "knet_ping_interval" | "knet_ping_timeout" | "knet_ping_precision" | "knet_pong_count" => {
            Some(CmapType::Uint32)
        }
        _ => return None,
    })
}

/// Every key of a parsed corosync.conf as `coroparse.c::main_config_parser_cb` puts it in
/// icmap: dotted paths, typed keys converted, `nodelist.node.<n>.` numbered from 0 in file
/// order, `totem.interface.<linknumber>.`, `logging.logger_subsys.<subsys>.`, and
/// `uidgid.config.{uid,gid}.<id>` = 1 for the resolved `uidgid` entries.
pub fn config_keys(conf: &CorosyncConf) -> Vec<(String, Value)> {
    use crate::conf_parse::Section;
    let mut out = Vec::new();
    fn walk(path: &str, s: &Section, out: &mut Vec<(String, Value)>, node_number: &mut u32) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        };
        match path {
            "totem.interface" => {
                let link = s
                    .items
                    .iter()
                    .rev()
                    .find(|i| i.key == "linknumber")
                    .and_then(|i| i.value.trim().parse::<u32>().ok())
                    .unwrap_or(0);
                for i in &s.items {
                    match interface_key_type(&i.key) {
                        Some(kind) => {
                            let key = format!("totem.interface.{link}.{}", i.key);
                            if let Some(v) = config_value(&key, &i.value, kind) {
                                out.push((key, v));
                            }
                        }
                        None if i.key == "linknumber" => {}
                        None => out.push((join(&i.key), Value::string(&i.value))),
                    }
                }
                for (m, sub) in s.sections.iter().filter(|x| x.name == "member").enumerate() {
                    if let Some(i) = sub.items.iter().find(|i| i.key == "memberaddr") {
                        out.push((
                            format!("totem.interface.{link}.member.{m}"),
                            Value::string(&i.value),
                        ));
                    }
                }
                return;
            }
            "nodelist.node" => {
                let n = *node_number;
                *node_number += 1;
                for i in &s.items {
                    let key = format!("nodelist.node.{n}.{}", i.key);
                    let kind = matches!(i.key.as_str(), "nodeid" | "quorum_votes")
                        .then_some(CmapType::Uint32);
                    if let Some(v) = config_value(&key, &i.value, kind) {
                        out.push((key, v));
                    }
                }
                return;
            }
            "logging.logger_subsys" => {
                if let Some(sub) = s.items.iter().find(|i| i.key == "subsys") {
                    for i in s.items.iter().filter(|i| i.key != "subsys") {
                        out.push((
                            format!("logging.logger_subsys.{}.{}", sub.value, i.key),
                            Value::string(&i.value),
                        ));
                    }
                }
                return;
            }
            // Resolved by the caller (names to ids, as coroparse does while parsing);
            // logging_daemon's keys are not reproduced.
            "uidgid" | "logging.logging_daemon" => return,
            _ => {}
        }
        for i in &s.items {
            let key = join(&i.key);
            if let Some(v) = config_value(&key, &i.value, config_key_type(&key)) {
                out.push((key, v));
            }
        }
        for sub in &s.sections {
            walk(&join(&sub.name), sub, out, node_number);
        }
    }
    walk("", &conf.root, &mut out, &mut 0);
    if let Ok((uids, gids)) = conf.uidgid.resolve() {
        for u in uids {
            out.push((format!("uidgid.config.uid.{u}"), Value::u8(1)));
        }
        for g in gids {
            out.push((format!("uidgid.config.gid.{g}"), Value::u8(1)));
        }
    }
    out
}

impl Icmap {
    /// The map of a node `nodeid` started with `conf`: its keys ([`config_keys`]) and
    /// `runtime.votequorum.this_node_id` (`votequorum_init`) when votequorum runs.
    pub fn from_config(conf: &CorosyncConf, nodeid: u32) -> Icmap {
        let mut m = Icmap::new();
        for (k, v) in config_keys(conf) {
            m.set_value(&k, v);
        }
        if conf.quorum.provider.is_some() {
            m.set_value("runtime.votequorum.this_node_id", Value::u32(nodeid));
        }
        for n in &conf.nodes {
            m.member_addrs.insert(n.nodeid, vec![n.addr]);
        }
        // totemconfig.c::find_local_node caches our position in the nodelist.
        if let Some(pos) = conf.nodes.iter().position(|n| n.nodeid == nodeid) {
            m.set_value("nodelist.local_node_pos", Value::u32(pos as u32));
            // config_convert_nodelist_to_interface: link 0 binds to our ring0_addr as
            // written (totemd runs one link).
            let ring0 = Value::string(&conf.nodes[pos].ring0_addr);
            m.set_value("totem.interface.0.bindnetaddr", ring0);
        }
        m
    }

    /// `totemconfig.c::totem_volatile_config_read`'s `runtime.config.totem.*`: the values
    /// the engine runs with, defaults and derivations applied (`token` after the
    /// coefficient). The knet-only keys are not written: totemd's udpu does not use them,
    /// and its knet settings are the knet layer's.
    pub fn set_totem_runtime(&mut self, srp: &totem_srp::SrpConfig) {
        for (k, v) in [
            ("token", srp.token_ms),
            ("token_warning", srp.token_warning_percent),
            (
                "token_retransmits_before_loss_const",
                srp.token_retransmits_before_loss,
            ),
            ("token_retransmit", srp.token_retransmit_ms),
            ("hold", srp.hold_ms),
            ("join", srp.join_ms),
            ("consensus", srp.consensus_ms),
            ("merge", srp.merge_ms),
            ("downcheck", srp.downcheck_ms),
            ("fail_recv_const", srp.fail_recv_const),
            ("seqno_unchanged_const", srp.seqno_unchanged_const),
            ("max_network_delay", srp.max_network_delay_ms),
            ("window_size", srp.window_size),
            ("max_messages", srp.max_messages),
            ("miss_count_const", srp.miss_count_const),
            ("send_join", srp.send_join_ms),
            ("heartbeat_failures_allowed", srp.heartbeat_failures_allowed),
            // totem_volatile_config_set_boolean_value stores booleans as u32 0/1.
            ("block_unlisted_ips", u32::from(srp.block_unlisted_ips)),
            (
                "cancel_token_hold_on_retransmit",
                u32::from(srp.cancel_token_hold_on_retransmit),
            ),
        ] {
            self.set_value(&format!("runtime.config.totem.{k}"), Value::u32(v));
        }
    }

    /// `service.c::corosync_service_link_and_init`: `runtime.services.<name>.service_id`
    /// for each service totemd runs (corodefs.h ids).
    pub fn set_services(&mut self, services: &[(&str, u16)]) {
        for (name, id) in services {
            self.set_value(
                &format!("runtime.services.{name}.service_id"),
                Value {
                    kind: CmapType::Uint16,
                    bytes: id.to_ne_bytes().to_vec(),
                },
            );
        }
    }

    /// `totempg_ifaces_print`: `r(<link>) ip(<addr>) ` for each of the node's addresses.
    fn ifaces_print(&self, nodeid: u32) -> String {
        match self.member_addrs.get(&nodeid) {
            None => "no interface found for nodeid".to_owned(),
            Some(addrs) => addrs
                .iter()
                .enumerate()
                .map(|(i, a)| format!("r({i}) ip({a}) "))
                .collect(),
        }
    }

    /// `main.c::confchg_fn` for one totem configuration: `member_object_left` for each
    /// node that left, then `member_object_joined` for each that joined.
    pub fn confchg(&mut self, left: &[u32], joined: &[u32]) {
        for &id in left {
            self.set_value(
                &format!("runtime.members.{id}.status"),
                Value::string("left"),
            );
        }
        for &id in joined {
            let ip = format!("runtime.members.{id}.ip");
            let count = format!("runtime.members.{id}.join_count");
            if self.get(ip.as_bytes()).is_some() {
                // icmap_inc: its error (a key of another type) is ignored, as corosync does.
                let _ = self.adjust_int(count.as_bytes(), 1);
            } else {
                let v = Value::string(&self.ifaces_print(id));
                self.set_value(&ip, v);
                self.set_value(&count, Value::u32(1));
            }
            self.set_value(
                &format!("runtime.members.{id}.status"),
                Value::string("joined"),
            );
        }
    }

    /// `cs_ipcs_connection_accept`'s run-time check after root: `uidgid.uid.<uid>`,
    /// `uidgid.config.uid.<uid>`, `uidgid.gid.<gid>`, `uidgid.config.gid.<gid>`, each a
    /// UINT8 equal to 1.
    pub fn uidgid_allows(&self, uid: u32, gid: u32) -> bool {
        [
            format!("uidgid.uid.{uid}"),
            format!("uidgid.config.uid.{uid}"),
            format!("uidgid.gid.{gid}"),
            format!("uidgid.config.gid.{gid}"),
        ]
        .iter()
        .any(|k| self.get_u8(k) == Some(1))
    }
}

/// One connection: its id in the map's tracks and its open iterations
/// (`cmap_conn_info.iter_db`; the tracks are [`Icmap`]'s).
#[derive(Debug, Clone, Default)]
pub struct CmapConn {
    owner: u64,
    iterations: BTreeMap<u64, (Vec<Vec<u8>>, usize)>,
    next_handle: u64,
}

impl CmapConn {
    /// A connection whose tracks are `owner`'s.
    pub fn new(owner: u64) -> CmapConn {
        CmapConn {
            owner,
            ..CmapConn::default()
        }
    }
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

fn status(id: i32, r: Result<(), CsError>) -> Vec<u8> {
    emit(CmapResponse::status(id, r.err().unwrap_or(CsError::Ok)))
}

/// The response to one cmap request; `Err` for a malformed one (the client is then
/// disconnected). Notifications the request caused wait in `map`
/// ([`Icmap::take_notifications`]).
pub fn reply(request: &[u8], map: &mut Icmap, conn: &mut CmapConn) -> Result<Reply, String> {
    let request = CmapRequest::parse(request).map_err(|e| e.to_string())?;
    let response = match request {
        // message_handler_req_lib_cmap_set / _delete / _adjust_int: the read-only check,
        // then icmap.
        CmapRequest::Set {
            key,
            value_type,
            value,
        } => status(
            0,
            if map.is_ro(key) {
                Err(CsError::Access)
            } else {
                map.set(key, value, value_type)
            },
        ),
        CmapRequest::Delete { key } => status(
            1,
            if map.is_ro(key) {
                Err(CsError::Access)
            } else {
                map.delete(key)
            },
        ),
        CmapRequest::AdjustInt { key, step } => status(
            3,
            if map.is_ro(key) {
                Err(CsError::Access)
            } else {
                map.adjust_int(key, step)
            },
        ),
        // message_handler_req_lib_cmap_get → icmap_get: with no room asked, the length
        // and type only; too little room is CS_ERR_INVALID_PARAM; the response is as long
        // as the room asked.
        CmapRequest::Get { key, value_len } => match map.get(key) {
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
        // message_handler_req_lib_cmap_iter_init: an empty prefix is every key. The keys
        // are taken now; one deleted meanwhile is skipped by ITER_NEXT (libqb's iterator
        // does not return removed nodes either).
        CmapRequest::IterInit { prefix } => {
            if conn.iterations.len() >= MAX_ITERATIONS {
                emit(CmapResponse::Handle {
                    header: header(4, CsError::NoResources),
                    handle: 0,
                })
            } else {
                conn.next_handle += 1;
                let handle = conn.next_handle;
                conn.iterations.insert(handle, (map.with_prefix(prefix), 0));
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
                Some((list, pos)) => loop {
                    match list.get(*pos) {
                        None => break (CsError::NoSections, Vec::new(), None),
                        Some(k) => {
                            *pos += 1;
                            if let Some(v) = map.get(k) {
                                break (CsError::Ok, k.clone(), Some(v));
                            }
                        }
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
        // message_handler_req_lib_cmap_track_add: the handle is 0 on an error.
        CmapRequest::TrackAdd {
            key,
            track_type,
            track_inst_handle,
        } => {
            let (error, handle) =
                match map.track_add(conn.owner, key, track_type, track_inst_handle) {
                    Ok(h) => (CsError::Ok, h),
                    Err(e) => (e, 0),
                };
            emit(CmapResponse::Handle {
                header: header(7, error),
                handle,
            })
        }
        // message_handler_req_lib_cmap_track_delete answers the track_inst_handle.
        CmapRequest::TrackDelete { handle } => {
            let (error, inst) = match map.track_delete(conn.owner, handle) {
                Ok(i) => (CsError::Ok, i),
                Err(e) => (e, 0),
            };
            emit(CmapResponse::Handle {
                header: header(8, error),
                handle: inst,
            })
        }
        // message_handler_req_lib_cmap_set_current_map: CS_ERR_BUSY with iterations or
        // tracks open; the stats map (stats.c) is not kept by totemd.
        CmapRequest::SetCurrentMap { map: which } => {
            let error = if !conn.iterations.is_empty() || map.has_tracks(conn.owner) {
                CsError::Busy
            } else {
                match which {
                    SETMAP_DEFAULT => CsError::Ok,
                    SETMAP_STATS => CsError::NotSupported,
                    _ => CsError::NotExist,
                }
            };
            emit(CmapResponse::status(9, error))
        }
        // Every id of the engine has its struct (a wrong size is malformed, above);
        // cs_ipcs_msg_process answers an id past the engine with -EINVAL as id 0.
        CmapRequest::Other { .. } => emit(CmapResponse::status(0, CsError::InvalidParam)),
    };
    Ok(Reply::of(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use totem_wire::ipc::cmap::CmapType;

    fn map() -> Icmap {
        let mut k = Icmap::new();
        k.set_value("quorum.provider", Value::string("corosync_votequorum"));
        k.set_value("runtime.votequorum.this_node_id", Value::u32(2));
        for (i, id) in [(0, 1), (1, 2), (10, 11)] {
            k.set_value(&format!("nodelist.node.{i}.nodeid"), Value::u32(id));
        }
        k.set_value("nodelist.node.1.name", Value::string("n2"));
        k
    }

    fn ask(r: CmapRequest<'_>, k: &mut Icmap, conn: &mut CmapConn) -> CmapResponse {
        let mut b = Vec::new();
        r.emit(&mut b);
        CmapResponse::parse(&reply(&b, k, conn).unwrap().response).unwrap()
    }

    fn error(r: &CmapResponse) -> CsError {
        match r {
            CmapResponse::Status { header }
            | CmapResponse::Get { header, .. }
            | CmapResponse::Handle { header, .. }
            | CmapResponse::IterNext { header, .. }
            | CmapResponse::Notify { header, .. } => header.error,
        }
    }

    fn set(k: &mut Icmap, c: &mut CmapConn, key: &[u8], t: CmapType, v: &[u8]) -> CsError {
        error(&ask(
            CmapRequest::Set {
                key,
                value_type: t.into(),
                value: v,
            },
            k,
            c,
        ))
    }

    fn notes(k: &mut Icmap) -> Vec<(u64, CmapResponse)> {
        k.take_notifications()
            .into_iter()
            .map(|n| (n.owner, CmapResponse::parse(&n.bytes).unwrap()))
            .collect()
    }

    #[test]
    fn get_string_as_cmap_get_string_does_it() {
        let mut k = map();
        let mut c = CmapConn::new(1);
        let key = b"quorum.provider";
        let r = ask(CmapRequest::Get { key, value_len: 0 }, &mut k, &mut c);
        assert!(
            matches!(r, CmapResponse::Get { header, value_len: 20, value_type: 11, ref data }
                if header.error == CsError::Ok && data.is_empty()),
            "{r:?}"
        );
        let r = ask(CmapRequest::Get { key, value_len: 20 }, &mut k, &mut c);
        let CmapResponse::Get { data, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(data, b"corosync_votequorum\0");
        for (key, len, e) in [
            (&b"nope"[..], 0, CsError::NotExist),
            (key, 3, CsError::InvalidParam),
            (key, u64::MAX, CsError::NoMemory),
        ] {
            let r = ask(
                CmapRequest::Get {
                    key,
                    value_len: len,
                },
                &mut k,
                &mut c,
            );
            assert_eq!(error(&r), e);
        }
    }

    #[test]
    fn set_delete_adjust_follow_icmap() {
        let mut k = map();
        let mut c = CmapConn::new(1);
        // Pacemaker's cmap_set_uint8("uidgid.gid.<gid>", 1).
        assert_eq!(
            set(&mut k, &mut c, b"uidgid.gid.189", CmapType::Uint8, &[1]),
            CsError::Ok
        );
        assert_eq!(k.get_u8("uidgid.gid.189"), Some(1));
        assert!(k.uidgid_allows(5000, 189) && !k.uidgid_allows(5000, 190));
        // Read-only prefixes and keys (main.c, votequorum.c): CS_ERR_ACCESS.
        for key in [
            &b"nodelist.node.0.nodeid"[..],
            b"runtime.totem.x",
            b"uidgid.config.uid.5",
            b"totem.cluster_name",
            b"quorum.wait_for_all",
        ] {
            assert_eq!(
                set(&mut k, &mut c, key, CmapType::Uint8, &[1]),
                CsError::Access
            );
            let r = ask(CmapRequest::Delete { key }, &mut k, &mut c);
            assert_eq!(error(&r), CsError::Access);
        }
        // Value lengths: a fixed type must have its size; strings no longer than
        // strlen + 1; at most 16 KiB.
        assert_eq!(
            set(&mut k, &mut c, b"a.b", CmapType::Uint32, &[1]),
            CsError::InvalidParam
        );
        assert_eq!(
            set(&mut k, &mut c, b"a.b", CmapType::String, b"ab\0\0"),
            CsError::InvalidParam
        );
        let big = vec![1u8; MAX_VALUE_LEN + 1];
        assert_eq!(
            set(&mut k, &mut c, b"a.b", CmapType::Binary, &big),
            CsError::InvalidParam
        );
        assert_eq!(
            set(&mut k, &mut c, b"a.b", CmapType::Binary, &big[1..]),
            CsError::Ok
        );
        // A string without its NUL is stored with one.
        assert_eq!(
            set(&mut k, &mut c, b"a.s", CmapType::String, b"xy"),
            CsError::Ok
        );
        assert_eq!(k.get(b"a.s").unwrap().bytes, b"xy\0");
        // Key names of a new key: 3..=255 bytes of [a-zA-Z0-9._/:-].
        for bad in [&b"ab"[..], b"a b.c", b"k\xff.x"] {
            assert_eq!(
                set(&mut k, &mut c, bad, CmapType::Uint8, &[1]),
                CsError::NameTooLong
            );
        }
        // (The wire's mar_name_t cannot carry 256 bytes and a NUL.)
        assert_eq!(k.set(&[b'a'; 256], &[1], 2), Err(CsError::NameTooLong));
        assert_eq!(
            set(&mut k, &mut c, &[b'a'; 255], CmapType::Uint8, &[1]),
            CsError::Ok
        );
        // DELETE.
        let r = ask(CmapRequest::Delete { key: b"a.s" }, &mut k, &mut c);
        assert_eq!((error(&r), k.get(b"a.s")), (CsError::Ok, None));
        let r = ask(CmapRequest::Delete { key: b"a.s" }, &mut k, &mut c);
        assert_eq!(error(&r), CsError::NotExist);
        // ADJUST_INT wraps at the width; strings are refused.
        assert_eq!(
            set(&mut k, &mut c, b"a.u8", CmapType::Uint8, &[255]),
            CsError::Ok
        );
        let r = ask(
            CmapRequest::AdjustInt {
                key: b"a.u8",
                step: 2,
            },
            &mut k,
            &mut c,
        );
        assert_eq!((error(&r), k.get_u8("a.u8")), (CsError::Ok, Some(1)));
        assert_eq!(
            set(
                &mut k,
                &mut c,
                b"a.i64",
                CmapType::Int64,
                &5i64.to_ne_bytes()
            ),
            CsError::Ok
        );
        ask(
            CmapRequest::AdjustInt {
                key: b"a.i64",
                step: -7,
            },
            &mut k,
            &mut c,
        );
        assert_eq!(k.get(b"a.i64").unwrap().bytes, (-2i64).to_ne_bytes());
        let r = ask(
            CmapRequest::AdjustInt {
                key: b"quorum.provider",
                step: 1,
            },
            &mut k,
            &mut c,
        );
        assert_eq!(error(&r), CsError::InvalidParam);
        let r = ask(
            CmapRequest::AdjustInt {
                key: b"no.such",
                step: 1,
            },
            &mut k,
            &mut c,
        );
        assert_eq!(error(&r), CsError::NotExist);
    }

    #[test]
    fn tracks_notify_as_icmap_does_and_end_with_the_connection() {
        let mut k = map();
        let (mut a, mut b) = (CmapConn::new(1), CmapConn::new(2));
        // a: every change under runtime.members. (corosync-cmapctl -T); b: one key, modify
        // only.
        let all = TRACK_ADD | TRACK_DELETE | TRACK_MODIFY;
        let r = ask(
            CmapRequest::TrackAdd {
                key: b"runtime.members.",
                track_type: all | TRACK_PREFIX,
                track_inst_handle: 77,
            },
            &mut k,
            &mut a,
        );
        let CmapResponse::Handle { header, handle: ha } = r else {
            panic!("{r:?}")
        };
        assert_eq!((header.error, ha != 0), (CsError::Ok, true));
        ask(
            CmapRequest::TrackAdd {
                key: b"runtime.members.2.status",
                track_type: TRACK_MODIFY,
                track_inst_handle: 88,
            },
            &mut k,
            &mut b,
        );
        k.member_addrs.insert(2, vec!["10.0.0.2".parse().unwrap()]);
        k.confchg(&[], &[2]);
        let n = notes(&mut k);
        // ip, join_count, status added: only a sees them (b tracks modifications).
        assert_eq!(n.len(), 3, "{n:?}");
        assert!(n.iter().all(|(o, _)| *o == 1));
        let CmapResponse::Notify {
            key,
            event,
            new_value,
            track_inst_handle,
            ..
        } = &n[0].1
        else {
            panic!()
        };
        assert_eq!(
            (&key[..], *event, &new_value[..], *track_inst_handle),
            (
                &b"runtime.members.2.ip"[..],
                TRACK_ADD,
                &b"r(0) ip(10.0.0.2) \0"[..],
                77
            )
        );
        k.confchg(&[2], &[]);
        let n = notes(&mut k);
        assert_eq!(n.len(), 2);
        // The exact-key track first, then the prefix one; old and new values.
        assert_eq!(n[0].0, 2);
        let CmapResponse::Notify {
            event,
            new_value,
            old_value,
            new_value_type,
            old_value_type,
            ..
        } = &n[0].1
        else {
            panic!()
        };
        assert_eq!(
            (
                *event,
                &new_value[..],
                &old_value[..],
                *new_value_type,
                *old_value_type
            ),
            (TRACK_MODIFY, &b"left\0"[..], &b"joined\0"[..], 11, 11)
        );
        // Rejoin: join_count 2, status joined again; nothing when a value is unchanged.
        k.confchg(&[], &[2]);
        assert_eq!(
            k.get(b"runtime.members.2.join_count").unwrap().bytes,
            2u32.to_ne_bytes()
        );
        assert_eq!(notes(&mut k).len(), 3);
        k.set_value("runtime.members.2.status", Value::string("joined"));
        assert!(notes(&mut k).is_empty());
        // A delete reaches the prefix track with the old value only.
        k.delete(b"runtime.members.2.ip").unwrap();
        let n = notes(&mut k);
        let CmapResponse::Notify {
            event,
            new_value,
            old_value_type,
            ..
        } = &n[0].1
        else {
            panic!()
        };
        assert_eq!(
            (*event, new_value.len(), *old_value_type),
            (TRACK_DELETE, 0, 11)
        );
        // Bad track types, other connections' handles, SET_CURRENT_MAP while tracking.
        let r = ask(
            CmapRequest::TrackAdd {
                key: b"x.y",
                track_type: 16,
                track_inst_handle: 1,
            },
            &mut k,
            &mut a,
        );
        assert_eq!(error(&r), CsError::InvalidParam);
        let r = ask(CmapRequest::TrackDelete { handle: ha }, &mut k, &mut b);
        assert_eq!(error(&r), CsError::BadHandle);
        let r = ask(CmapRequest::SetCurrentMap { map: 0 }, &mut k, &mut a);
        assert_eq!(error(&r), CsError::Busy);
        let r = ask(CmapRequest::TrackDelete { handle: ha }, &mut k, &mut a);
        assert_eq!(
            r,
            CmapResponse::Handle {
                header: r_header(8),
                handle: 77
            }
        );
        let r = ask(CmapRequest::SetCurrentMap { map: 0 }, &mut k, &mut a);
        assert_eq!(error(&r), CsError::Ok);
        // An empty key with CMAP_TRACK_PREFIX is libcmap's NULL: every key.
        let r = ask(
            CmapRequest::TrackAdd {
                key: b"",
                track_type: TRACK_ADD | TRACK_PREFIX,
                track_inst_handle: 5,
            },
            &mut k,
            &mut a,
        );
        assert_eq!(error(&r), CsError::Ok);
        k.set_value("zz.new", Value::u8(1));
        let n = notes(&mut k);
        assert_eq!(n.len(), 1);
        assert!(
            matches!(&n[0].1, CmapResponse::Notify { track_inst_handle: 5, event, .. } if *event == TRACK_ADD)
        );
        // b's connection ends: its track goes with it.
        k.drop_owner(2);
        k.set_value("runtime.members.2.status", Value::string("left"));
        assert!(notes(&mut k).is_empty());
    }

    fn r_header(id: i32) -> ResponseHeader {
        ResponseHeader {
            id,
            size: 32,
            error: CsError::Ok,
        }
    }

    #[test]
    fn iteration_in_trie_order_then_no_sections() {
        let mut k = map();
        let mut c = CmapConn::new(1);
        let r = ask(
            CmapRequest::IterInit {
                prefix: b"nodelist.node.",
            },
            &mut k,
            &mut c,
        );
        let CmapResponse::Handle { handle, .. } = r else {
            panic!("{r:?}")
        };
        // A key deleted during the iteration is skipped.
        k.delete(b"nodelist.node.1.nodeid").unwrap();
        let mut seen = Vec::new();
        loop {
            match ask(CmapRequest::IterNext { handle }, &mut k, &mut c) {
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
                "nodelist.node.10.nodeid"
            ]
        );
        let r = ask(CmapRequest::IterFinalize { handle }, &mut k, &mut c);
        assert_eq!(r, CmapResponse::status(6, CsError::Ok));
        for _ in 0..MAX_ITERATIONS {
            ask(CmapRequest::IterInit { prefix: b"" }, &mut k, &mut c);
        }
        let r = ask(CmapRequest::IterInit { prefix: b"" }, &mut k, &mut c);
        assert_eq!(error(&r), CsError::NoResources);
    }

    #[test]
    fn config_keys_as_coroparse_stores_them() {
        let text = "totem {\n version: 2\n transport: knet\n cluster_name: lab\n token: 3000\n config_version: 7\n interface {\n  linknumber: 0\n  knet_ping_interval: 200\n  mcastport: 5405\n }\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n  nodeid: 1\n  name: n1\n }\n node {\n  ring0_addr: 10.0.0.2\n  nodeid: 2\n }\n}\nquorum {\n provider: corosync_votequorum\n two_node: 1\n}\nlogging {\n to_stderr: yes\n logger_subsys {\n  subsys: QUORUM\n  debug: on\n }\n}\nuidgid {\n uid: 0\n gid: 0\n}\n";
        let conf = crate::config::parse_str(text, "t.conf").unwrap().config;
        let m = Icmap::from_config(&conf, 2);
        let get = |k: &str| m.get(k.as_bytes()).cloned();
        assert_eq!(get("totem.version"), Some(Value::u32(2)));
        assert_eq!(get("totem.token"), Some(Value::u32(3000)));
        assert_eq!(get("totem.config_version"), Some(Value::u64(7)));
        assert_eq!(get("totem.cluster_name"), Some(Value::string("lab")));
        assert_eq!(
            get("totem.interface.0.knet_ping_interval"),
            Some(Value::u32(200))
        );
        assert_eq!(
            get("totem.interface.0.mcastport"),
            Some(Value {
                kind: CmapType::Uint16,
                bytes: 5405u16.to_ne_bytes().to_vec()
            })
        );
        assert_eq!(get("nodelist.node.1.nodeid"), Some(Value::u32(2)));
        assert_eq!(get("nodelist.node.0.name"), Some(Value::string("n1")));
        assert_eq!(
            get("nodelist.node.1.ring0_addr"),
            Some(Value::string("10.0.0.2"))
        );
        assert_eq!(get("quorum.two_node"), Some(Value::u8(1)));
        assert_eq!(get("logging.to_stderr"), Some(Value::string("yes")));
        assert_eq!(
            get("logging.logger_subsys.QUORUM.debug"),
            Some(Value::string("on"))
        );
        assert_eq!(get("uidgid.config.uid.0"), Some(Value::u8(1)));
        assert_eq!(get("runtime.votequorum.this_node_id"), Some(Value::u32(2)));
        assert_eq!(get("totem.interface.linknumber"), None);
    }

    #[test]
    fn malformed_requests_disconnect() {
        let mut k = map();
        let mut c = CmapConn::new(1);
        // A SET of 16 bytes (no key), a truncated header.
        let set = [0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        assert!(reply(&set, &mut k, &mut c).is_err());
        assert!(reply(&[2, 0, 0, 0], &mut k, &mut c).is_err());
        // An id past the engine: CS_ERR_INVALID_PARAM with id 0.
        let other = [10, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        let r = CmapResponse::parse(&reply(&other, &mut k, &mut c).unwrap().response).unwrap();
        assert_eq!(r, CmapResponse::status(0, CsError::InvalidParam));
    }
}
