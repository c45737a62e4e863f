//! The YAML schema of a scenario file, as serde structs (documented in conformance/README.md).
//!
//! Every struct denies unknown keys, so a typo is an error that names file, line and key
//! rather than a silently ignored setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use totem_agent_protocol::command::EvsKey;
use totem_agent_protocol::values::{DispatchMode, Guarantee, Guard, IterationType, Model};
use totem_agent_protocol::Rc;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub id: String,
    pub title: String,
    /// Seed man page and section, or the corosync function, e.g. `cpg_join(3) RETURN VALUE`.
    pub spec_ref: String,
    /// The sentence being checked, quoted from the reference where possible.
    pub requirement: String,
    #[serde(default)]
    pub desc: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Set when corosync 3.1.7 disagrees with its man page: the steps expect what corosync
    /// does, and this says what the page says (mirrored in fixtures/expectations/deviations.yaml).
    #[serde(default)]
    pub deviation: Option<RawDeviation>,
    /// Backends the scenario is meant for (default: all). A scenario that expects a
    /// corosync 3.1.7 bug runs on `corosync` only; its counterpart expecting the man page's
    /// behaviour runs on our implementation (`sim`, `native`).
    #[serde(default)]
    pub backends: Vec<String>,
    pub topology: RawTopology,
    #[serde(default)]
    pub checks: RawChecks,
    pub steps: Vec<SingleKey<Step>>,
    #[serde(default)]
    pub expect: Vec<SingleKey<Condition>>,
}

/// An enum written as `variant: value` (or a bare `variant` for unit variants).
///
/// serde_yaml 0.9 only reads enums from `!tag` syntax; this wrapper reads the plain
/// single-key map form through serde's `MapAccessDeserializer`, keeping key paths.
#[derive(Debug, Clone)]
pub struct SingleKey<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SingleKey<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, IntoDeserializer};
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`name: {...}` with one key, or a bare name such as `heal`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
                T::deserialize(s.into_deserializer())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, m: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
            .map(SingleKey)
    }
}

impl<T: Serialize> Serialize for SingleKey<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeviation {
    /// Key into fixtures/expectations/deviations.yaml.
    pub id: String,
    pub man_page_says: String,
    pub corosync_does: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udpu,
    Knet,
}

/// libqb's IPC type between clients and the daemon: corosync.conf(5) `system.qb_ipc_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipc {
    /// Shared-memory rings (corosync's default `native`, which libqb builds as shm on Linux).
    #[default]
    Shm,
    /// Unix datagram sockets; `cpg_fd_get` names the event socket, which a dead daemon
    /// does not wake.
    Socket,
}

impl Ipc {
    /// The `qb_ipc_type` value written into corosync.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shm => "shm",
            Self::Socket => "socket",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    pub nodes: u32,
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// IPC type every node's daemon serves (default `shm`).
    #[serde(default)]
    pub ipc: Ipc,
    #[serde(default)]
    pub totem: Totem,
    /// MTU of every node's interface (default: the veth's 1500). A link below totem's
    /// `netmtu` makes the kernel fragment full-size datagrams, as an overlay network does.
    #[serde(default)]
    pub link_mtu: Option<u32>,
    /// knet crypto of every node (corosync.conf(5) `crypto_model`, `crypto_cipher`,
    /// `crypto_hash`, `keyfile`); absent: crypto off. knet only.
    #[serde(default)]
    pub crypto: Option<Crypto>,
    /// knet links (1 or 2, default 1): with 2, every node has `ring1_addr` on a second
    /// network of its own (knet only).
    #[serde(default = "one_link")]
    pub links: u32,
}

fn one_link() -> u32 {
    1
}

/// `topology.crypto`: the three corosync.conf(5) crypto settings, spelled as there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Crypto {
    pub model: CryptoModel,
    pub cipher: CryptoCipher,
    pub hash: CryptoHash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptoModel {
    Nss,
    Openssl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptoCipher {
    Aes256,
    Aes192,
    Aes128,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptoHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Md5,
    None,
}

impl Crypto {
    /// The same settings as totem_knet's types (the names are corosync.conf's on both sides).
    pub fn knet(
        self,
    ) -> (
        totem_knet::crypto::CryptoModel,
        totem_knet::crypto::CryptoCipher,
        totem_knet::crypto::CryptoHash,
    ) {
        use totem_knet::crypto as k;
        let model = match self.model {
            CryptoModel::Nss => k::CryptoModel::Nss,
            CryptoModel::Openssl => k::CryptoModel::Openssl,
        };
        let cipher = match self.cipher {
            CryptoCipher::Aes256 => k::CryptoCipher::Aes256,
            CryptoCipher::Aes192 => k::CryptoCipher::Aes192,
            CryptoCipher::Aes128 => k::CryptoCipher::Aes128,
            CryptoCipher::None => k::CryptoCipher::None,
        };
        let hash = match self.hash {
            CryptoHash::Sha1 => k::CryptoHash::Sha1,
            CryptoHash::Sha256 => k::CryptoHash::Sha256,
            CryptoHash::Sha384 => k::CryptoHash::Sha384,
            CryptoHash::Sha512 => k::CryptoHash::Sha512,
            CryptoHash::Md5 => k::CryptoHash::Md5,
            CryptoHash::None => k::CryptoHash::None,
        };
        (model, cipher, hash)
    }
}

fn default_transport() -> Transport {
    Transport::Udpu
}

/// Totem timings (corosync.conf(5) `totem` section); unset values keep corosync's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Totem {
    pub token_ms: Option<u32>,
    pub consensus_ms: Option<u32>,
    pub join_ms: Option<u32>,
    pub token_retransmits_before_loss_const: Option<u32>,
    pub max_messages: Option<u32>,
}

/// Switches for the always-on invariant checkers; turning one off needs a reason.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawChecks {
    #[serde(default)]
    pub disable: BTreeMap<String, String>,
}

/// Nodes named by number (1-based), or `all`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NodeSel {
    All(AllKw),
    List(Vec<u32>),
    One(u32),
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllKw {
    All,
}

/// A return code expectation: one or any of several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RcExpect {
    One(ExpectedRc),
    Any(Vec<ExpectedRc>),
}

impl RcExpect {
    pub fn accepts(&self, rc: ExpectedRc) -> bool {
        match self {
            Self::One(x) => *x == rc,
            Self::Any(v) => v.contains(&rc),
        }
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            Self::One(x) => vec![x.to_string()],
            Self::Any(v) => v.iter().map(ToString::to_string).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for RcExpect {
    /// By hand, not untagged: an unknown name must be reported as such, with its key.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de;
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = RcExpect;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a return code name or a list of them")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RcExpect, E> {
                s.parse().map(RcExpect::One).map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<RcExpect, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RcExpect::Any)
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for RcExpect {
    fn default() -> Self {
        Self::One(ExpectedRc::Rc(Rc::OK))
    }
}

/// What a call may come to: a `cs_error_t` by name, or one of the runner's pseudo codes,
/// for an outcome without a return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRc {
    Rc(Rc),
    /// A poll-guarded dispatch found nothing pending and did not call.
    NoCall,
    /// The agent refused an unsafe call (zcb_alloc above 128 MiB, zcb_mcast longer than
    /// its buffer).
    Refused,
    /// A guarded dispatch did not return in `timeout_ms`; the agent ended.
    Watchdog,
    /// The call did not return within the step's `timeout_ms` (libcpg loops for ever in a
    /// few documented cases); the client is unusable afterwards.
    NoAnswer,
}

const PSEUDO: &[(&str, ExpectedRc)] = &[
    ("NO_CALL", ExpectedRc::NoCall),
    ("REFUSED", ExpectedRc::Refused),
    ("WATCHDOG", ExpectedRc::Watchdog),
    ("NO_ANSWER", ExpectedRc::NoAnswer),
];

impl std::fmt::Display for ExpectedRc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rc(rc) => write!(f, "{rc}"),
            other => {
                let name = PSEUDO
                    .iter()
                    .find(|(_, v)| v == other)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

impl std::str::FromStr for ExpectedRc {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((_, v)) = PSEUDO.iter().find(|(n, _)| *n == s) {
            return Ok(*v);
        }
        // Only names corotypes.h gives: CS_UNKNOWN_<n> is for reporting, not expecting.
        match s.parse::<Rc>() {
            Ok(rc) if rc.0.known_name().is_some() => Ok(Self::Rc(rc)),
            _ => Err(format!("unknown return code {s:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for ExpectedRc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ExpectedRc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One step. Agent commands carry `client` (a name from a `client` step), `handle`
/// (default `h1`), optional `handle_value` (a raw, possibly invalid handle number) and
/// `expect` (the return code, by name).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    StartNodes(NodeSel),
    /// Clean stop (SIGTERM).
    StopNode(u32),
    /// SIGKILL of corosync.
    KillNode(u32),
    /// SIGSTOP of corosync.
    PauseNode(u32),
    /// SIGCONT of corosync.
    ResumeNode(u32),
    /// Cut the network between sets of nodes; nodes in one set still talk to each other.
    Partition(Vec<Vec<u32>>),
    Heal,
    /// Takes one knet link of one node down (its interface on that link's network).
    CutLink(LinkAt),
    /// Brings it back up.
    HealLink(LinkAt),
    WaitRing(WaitRing),
    SleepMs(u64),
    Client(ClientSpec),
    KillClient(KillClient),
    /// Close the client's stdin: the agent exits without finalizing its handles.
    QuitClient(String),
    Initialize(Initialize),
    Finalize(Call),
    Join(GroupCall),
    Leave(GroupCall),
    Mcast(Mcast),
    ZcbAlloc(ZcbAlloc),
    ZcbMcast(ZcbMcast),
    ZcbFree(ZcbFree),
    MembershipGet(GroupCall),
    LocalGet(Call),
    ContextGet(Call),
    ContextSet(ContextSet),
    FdGet(Call),
    Dispatch(Dispatch),
    Iteration(Iteration),
    FlowControlStateGet(Call),
    MaxAtomicMsgsizeGet(Call),
    /// N messages from each of M senders, sent at once; waits for every sender's result.
    Burst(Burst),
    WaitUntil(Box<WaitUntil>),
    /// `evs_initialize` (docs/evs.md); EVS handles are named apart from CPG's (default
    /// `e1`). A scenario with EVS steps runs only where the daemon is totemd.
    EvsInitialize(EvsInitialize),
    EvsFinalize(Call),
    EvsFdGet(Call),
    EvsContextGet(Call),
    EvsContextSet(ContextSet),
    EvsDispatch(Dispatch),
    EvsJoin(EvsGroupsCall),
    EvsLeave(EvsGroupsCall),
    EvsMcastJoined(EvsMcast),
    EvsMcastGroups(EvsMcast),
    EvsMembershipGet(EvsMembershipGet),
    /// libquorum, libcmap and libcfg calls (Pacemaker's other services): handles named
    /// apart from CPG's (defaults `q1`, `m1`, `c1`).
    QuorumInitialize(SvcCall),
    QuorumFinalize(SvcCall),
    QuorumTrackstart(SvcCall),
    QuorumTrackstop(SvcCall),
    QuorumGetquorate(SvcCall),
    CmapInitialize(SvcCall),
    CmapFinalize(SvcCall),
    CmapGet(SvcCall),
    CmapSet(SvcCall),
    CmapDelete(SvcCall),
    CmapTrackAdd(SvcCall),
    CmapTrackDelete(SvcCall),
    CfgInitialize(SvcCall),
    CfgFinalize(SvcCall),
    CfgTrackstart(SvcCall),
    CfgTrackstop(SvcCall),
    CfgTryShutdown(SvcCall),
}

/// A quorum, cmap or cfg call: `client`, `expect`, `expect_fields`, and the keys of the
/// agent command of the same name (`handle`, `key`, `value`, `flags` ...), checked against
/// that command when the scenario is loaded (`model::svc_command`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SvcCall {
    pub client: String,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
    #[serde(flatten)]
    pub args: serde_json::Map<String, serde_json::Value>,
}

impl Step {
    /// A quorum, cmap or cfg step: its command name and call.
    pub fn svc(&self) -> Option<(&'static str, &SvcCall)> {
        Some(match self {
            Step::QuorumInitialize(c) => ("quorum_initialize", c),
            Step::QuorumFinalize(c) => ("quorum_finalize", c),
            Step::QuorumTrackstart(c) => ("quorum_trackstart", c),
            Step::QuorumTrackstop(c) => ("quorum_trackstop", c),
            Step::QuorumGetquorate(c) => ("quorum_getquorate", c),
            Step::CmapInitialize(c) => ("cmap_initialize", c),
            Step::CmapFinalize(c) => ("cmap_finalize", c),
            Step::CmapGet(c) => ("cmap_get", c),
            Step::CmapSet(c) => ("cmap_set", c),
            Step::CmapDelete(c) => ("cmap_delete", c),
            Step::CmapTrackAdd(c) => ("cmap_track_add", c),
            Step::CmapTrackDelete(c) => ("cmap_track_delete", c),
            Step::CfgInitialize(c) => ("cfg_initialize", c),
            Step::CfgFinalize(c) => ("cfg_finalize", c),
            Step::CfgTrackstart(c) => ("cfg_trackstart", c),
            Step::CfgTrackstop(c) => ("cfg_trackstop", c),
            Step::CfgTryShutdown(c) => ("cfg_try_shutdown", c),
            _ => return None,
        })
    }

    /// Whether the step is an EVS call (`evs_*`, or a burst with EVS senders).
    pub fn is_evs(&self) -> bool {
        matches!(
            self,
            Step::EvsInitialize(_)
                | Step::EvsFinalize(_)
                | Step::EvsFdGet(_)
                | Step::EvsContextGet(_)
                | Step::EvsContextSet(_)
                | Step::EvsDispatch(_)
                | Step::EvsJoin(_)
                | Step::EvsLeave(_)
                | Step::EvsMcastJoined(_)
                | Step::EvsMcastGroups(_)
                | Step::EvsMembershipGet(_)
        ) || matches!(self, Step::Burst(b) if !b.evs_senders.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvsInitialize {
    pub client: String,
    /// Default `e1`.
    pub handle: Option<String>,
    /// Dispatch (CS_DISPATCH_ALL) whenever the fd is readable; off for dispatch-mode cases.
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
    pub expect: Option<RcExpect>,
}

/// `evs_join` / `evs_leave`: keys as strings (escaped notation, NUL-padded to 32 bytes) or
/// `{hex: ...}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvsGroupsCall {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    pub groups: Vec<EvsKey>,
    /// Repeat the list this many times (51 keys without writing 51): default 1.
    pub repeat: Option<u32>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvsMcast {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    /// `evs_mcast_groups` only: the destination keys.
    #[serde(default)]
    pub groups: Vec<EvsKey>,
    /// UNORDERED, FIFO, AGREED, SAFE or a number (EVS_TYPE_*; ignored by EVS, EVS-MJ-4).
    #[serde(default)]
    pub guarantee: Guarantee,
    #[serde(default = "default_size")]
    pub size: u64,
    #[serde(default = "one")]
    pub count: u64,
    pub iovs: Option<u64>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvsMembershipGet {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    /// The caller's array size (default 384); the answer is truncated to it.
    pub entries: Option<u64>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

/// One knet link of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkAt {
    pub node: u32,
    pub link: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitRing {
    pub nodes: NodeSel,
    /// Expected members (node numbers) seen by every node in `nodes`.
    pub members: Vec<u32>,
    #[serde(default = "default_wait_ms")]
    pub timeout_ms: u64,
}

pub(crate) fn default_wait_ms() -> u64 {
    15_000
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub name: String,
    pub node: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    Kill,
    Term,
    Stop,
    Cont,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KillClient {
    pub name: String,
    #[serde(default = "default_signal")]
    pub signal: Signal,
}

fn default_signal() -> Signal {
    Signal::Kill
}

/// Expected result fields other than the return code, compared as JSON values.
pub type Fields = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Initialize {
    pub client: String,
    pub handle: Option<String>,
    /// `plain` (cpg_initialize) or `v1` (cpg_model_initialize with CPG_MODEL_V1).
    #[serde(default)]
    pub model: Model,
    #[serde(default)]
    pub initial_totem_conf: bool,
    pub context: Option<u64>,
    /// Dispatch (CS_DISPATCH_ALL) whenever the fd is readable; off for dispatch-mode cases.
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
    pub expect: Option<RcExpect>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupCall {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    pub group: String,
    /// Overrides `cpg_name.length` (e.g. 129 or 4294967295) to probe the length checks.
    pub name_length: Option<u32>,
    /// How long to wait for the answer (default: `--cmd-timeout`); with `expect: NO_ANSWER`
    /// a call that never returns is the expected outcome.
    pub timeout_ms: Option<u64>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mcast {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    /// UNORDERED, FIFO, AGREED, SAFE or a number.
    #[serde(default)]
    pub guarantee: Guarantee,
    #[serde(default = "default_size")]
    pub size: u64,
    #[serde(default = "one")]
    pub count: u64,
    /// Number of iovec entries the payload is split into (0 = empty iovec array).
    pub iovs: Option<u64>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

fn default_size() -> u64 {
    64
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZcbAlloc {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    #[serde(default = "default_buf")]
    pub buf: String,
    pub size: u64,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

fn default_buf() -> String {
    "b1".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZcbMcast {
    pub client: String,
    pub handle: Option<String>,
    #[serde(default = "default_buf")]
    pub buf: String,
    pub len: Option<u64>,
    #[serde(default)]
    pub guarantee: Guarantee,
    pub expect: Option<RcExpect>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZcbFree {
    pub client: String,
    pub handle: Option<String>,
    #[serde(default = "default_buf")]
    pub buf: String,
    /// Free a pointer libcpg never handed out.
    #[serde(default)]
    pub bogus: bool,
    pub expect: Option<RcExpect>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSet {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    pub context: u64,
    pub expect: Option<RcExpect>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    /// ONE, ALL, BLOCKING, ONE_NONBLOCKING or a number.
    pub mode: DispatchMode,
    /// `poll` (default except BLOCKING): poll the fd first and report `would_block`;
    /// `watchdog`: call for real, the agent exits (code 3) if the call outlives the timeout.
    pub guard: Option<Guard>,
    pub timeout_ms: Option<u64>,
    /// Finalize the handle from inside the N-th callback (ends a BLOCKING dispatch).
    pub finalize_after: Option<u64>,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Iteration {
    pub client: String,
    pub handle: Option<String>,
    pub handle_value: Option<u64>,
    /// NAME_ONLY, ONE_GROUP, ALL or a number.
    #[serde(rename = "type")]
    pub kind: IterationType,
    pub group: Option<String>,
    #[serde(default)]
    pub after_finalize: bool,
    pub expect: Option<RcExpect>,
    #[serde(default)]
    pub expect_fields: Fields,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// `client` or `client.handle`.
    #[serde(default)]
    pub senders: Vec<String>,
    /// EVS senders (`client` or `client.handle`, default handle `e1`), sending
    /// `evs_mcast_joined` at the same time as `senders`.
    #[serde(default)]
    pub evs_senders: Vec<String>,
    pub count: u64,
    #[serde(default = "default_size")]
    pub size: u64,
    #[serde(default)]
    pub guarantee: Guarantee,
    #[serde(default = "default_burst_ms")]
    pub timeout_ms: u64,
}

fn default_burst_ms() -> u64 {
    120_000
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    #[serde(default = "default_wait_ms")]
    pub timeout_ms: u64,
    // One of the following, as in `expect` (a flattened enum cannot deny unknown keys).
    pub confchg: Option<ConfchgCond>,
    pub delivered: Option<DeliveredCond>,
    pub totem_confchg: Option<TotemCond>,
    pub exited: Option<ExitedCond>,
    pub call: Option<CallCond>,
    pub evs_confchg: Option<EvsConfchgCond>,
    pub evs_delivered: Option<EvsDeliveredCond>,
    pub quorum_notify: Option<QuorumNotifyCond>,
    pub cmap_notify: Option<CmapNotifyCond>,
    pub cfg_shutdown: Option<CfgShutdownCond>,
}

impl WaitUntil {
    /// The one condition given, or an error message when there are none or several.
    pub fn condition(&self) -> Result<Condition, String> {
        let mut v = Vec::new();
        if let Some(c) = &self.confchg {
            v.push(Condition::Confchg(c.clone()));
        }
        if let Some(c) = &self.delivered {
            v.push(Condition::Delivered(c.clone()));
        }
        if let Some(c) = &self.totem_confchg {
            v.push(Condition::TotemConfchg(c.clone()));
        }
        if let Some(c) = &self.exited {
            v.push(Condition::Exited(c.clone()));
        }
        if let Some(c) = &self.call {
            v.push(Condition::Call(c.clone()));
        }
        if let Some(c) = &self.evs_confchg {
            v.push(Condition::EvsConfchg(c.clone()));
        }
        if let Some(c) = &self.evs_delivered {
            v.push(Condition::EvsDelivered(c.clone()));
        }
        if let Some(c) = &self.quorum_notify {
            v.push(Condition::QuorumNotify(c.clone()));
        }
        if let Some(c) = &self.cmap_notify {
            v.push(Condition::CmapNotify(c.clone()));
        }
        if let Some(c) = &self.cfg_shutdown {
            v.push(Condition::CfgShutdown(c.clone()));
        }
        match v.len() {
            1 => Ok(v.remove(0)),
            0 => Err(
                "wait_until needs one of confchg, delivered, totem_confchg, exited, call, evs_confchg, evs_delivered, quorum_notify, cmap_notify, cfg_shutdown"
                    .to_owned(),
            ),
            _ => Err("wait_until takes exactly one condition".to_owned()),
        }
    }
}

/// A condition over the trace. In `wait_until` it must become true within the timeout; in
/// `expect` it must hold when the steps are done.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// A confchg on the handle matching every given filter.
    Confchg(ConfchgCond),
    /// Deliveries on the handle matching the filters; at least / exactly a count.
    Delivered(DeliveredCond),
    TotemConfchg(TotemCond),
    /// The agent process has ended.
    Exited(ExitedCond),
    /// A call result with this return code was reported (also the agent's own automatic
    /// dispatch, e.g. CS_ERR_LIBRARY when the daemon dies).
    Call(CallCond),
    /// An EVS confchg on the handle matching every given filter.
    EvsConfchg(EvsConfchgCond),
    /// EVS deliveries on the handle matching the filters.
    EvsDelivered(EvsDeliveredCond),
    /// Quorum notifications on the handle matching the filters.
    QuorumNotify(QuorumNotifyCond),
    /// cmap track notifications on the handle matching the filters.
    CmapNotify(CmapNotifyCond),
    /// cfg shutdown callbacks on the handle matching the filters.
    CfgShutdown(CfgShutdownCond),
}

/// A quorum notification: quorate, members (a count or the nodeids as a set), whether the
/// ring id's nodeid came (model v1).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumNotifyCond {
    pub client: String,
    /// Default `q1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<NodeList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

/// A cmap notification: the track (its name), key, event (ADD, DELETE, MODIFY) and the
/// new / old value (the value alone, compared as JSON: `left`, `5`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CmapNotifyCond {
    pub client: String,
    /// Default `m1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

/// A cfg shutdown callback: what the policy answered (`yes`, `no`, `none`) and the
/// shutdown flags (REQUEST ...).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CfgShutdownCond {
    pub client: String,
    /// Default `c1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvsConfchgCond {
    pub client: String,
    /// Default `e1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// TRANSITIONAL or REGULAR (from an implementation that cannot tell, as its rings tell:
    /// `trace::evs_confchg_regular`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Members: a count, or the nodeids (compared as a set: totem's order is not sorted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<NodeList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<NodeList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<NodeList>,
    /// Whether the callback got a ring id (not NULL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

/// An EVS confchg list in a condition: its length, or its nodeids as a set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NodeList {
    Count(usize),
    Nodes(Vec<u32>),
}

impl NodeList {
    /// Whether `list` is what this says.
    pub fn matches(&self, list: &[u32]) -> bool {
        match self {
            NodeList::Count(n) => *n == list.len(),
            NodeList::Nodes(want) => {
                let mut a = want.clone();
                let mut b = list.to_vec();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvsDeliveredCond {
    pub client: String,
    /// Default `e1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Only messages this client sent (by the payload's sender tag, any of its handles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallCond {
    pub client: String,
    pub cmd: String,
    pub rc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfchgCond {
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    /// Some `joined` entry has this reason (JOIN, NODEUP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<String>,
    /// Some `left` entry has this reason (LEAVE, NODEDOWN, PROCDOWN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    /// Exactly this many matching confchgs (default: at least one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveredCond {
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Only messages sent by this client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TotemCond {
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exactly: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExitedCond {
    pub client: String,
    /// The agent's dispatch watchdog fired (a ONE/BLOCKING dispatch did not return).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<bool>,
}
