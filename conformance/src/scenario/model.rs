//! The validated scenario: raw YAML plus the cross-field rules serde cannot express
//! (node numbers within the topology, clients started before use, return-code names).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use super::raw::{
    Condition, Crypto, CryptoCipher, CryptoHash, Ipc, NodeSel, RawDeviation, RawScenario, Step,
    Totem, Transport,
};
use crate::check::CheckName;

/// Highest node count a backend builds (N = 1..5).
pub const MAX_NODES: u32 = 5;

#[derive(Debug, Clone)]
pub struct Topology {
    pub nodes: u32,
    pub transport: Transport,
    /// `system.qb_ipc_type` of every node.
    pub ipc: Ipc,
    pub totem: Totem,
    /// MTU of every node's interface; `None` leaves the default.
    pub link_mtu: Option<u32>,
    /// knet crypto of every node; `None`: off.
    pub crypto: Option<Crypto>,
    /// knet links of every node (1 or 2).
    pub links: u32,
}

/// The most knet links a backend builds.
pub const MAX_LINKS: u32 = 2;

/// The interface MTUs a scenario may ask for: IPv4's minimum reassembly size up to a
/// jumbo frame.
pub const LINK_MTU_RANGE: std::ops::RangeInclusive<u32> = 576..=9000;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub id: String,
    pub title: String,
    pub spec_ref: String,
    pub requirement: String,
    pub desc: Option<String>,
    pub tags: Vec<String>,
    pub deviation: Option<RawDeviation>,
    /// Backends it is meant for; empty means all.
    pub backends: Vec<String>,
    pub topology: Topology,
    pub disabled_checks: BTreeMap<CheckName, String>,
    pub steps: Vec<Step>,
    pub expect: Vec<Condition>,
    /// Clients that make EVS calls, with their node: EVS runs only where the daemon is
    /// totemd (corosync 3 has no EVS service).
    pub evs_clients: BTreeMap<String, u32>,
}

/// An error in a scenario file: file, line (when known), key path and message.
#[derive(Debug, Clone)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// `cpg_reason_t` names (cpg.h).
pub const REASONS: &[&str] = &[
    "UNDEFINED",
    "JOIN",
    "LEAVE",
    "NODEDOWN",
    "NODEUP",
    "PROCDOWN",
];

impl NodeSel {
    pub fn resolve(&self, n: u32) -> Vec<u32> {
        match self {
            Self::All(_) => (1..=n).collect(),
            Self::List(v) => v.clone(),
            Self::One(x) => vec![*x],
        }
    }
}

/// The client an agent-command step addresses.
pub fn step_client(step: &Step) -> Option<&str> {
    Some(match step {
        Step::Initialize(c) => &c.client,
        Step::Finalize(c)
        | Step::LocalGet(c)
        | Step::ContextGet(c)
        | Step::FdGet(c)
        | Step::FlowControlStateGet(c)
        | Step::MaxAtomicMsgsizeGet(c) => &c.client,
        Step::Join(c) | Step::Leave(c) | Step::MembershipGet(c) => &c.client,
        Step::Mcast(c) => &c.client,
        Step::ZcbAlloc(c) => &c.client,
        Step::ZcbMcast(c) => &c.client,
        Step::ZcbFree(c) => &c.client,
        Step::ContextSet(c) => &c.client,
        Step::Dispatch(c) => &c.client,
        Step::Iteration(c) => &c.client,
        Step::EvsInitialize(c) => &c.client,
        Step::EvsFinalize(c) | Step::EvsFdGet(c) | Step::EvsContextGet(c) => &c.client,
        Step::EvsContextSet(c) => &c.client,
        Step::EvsDispatch(c) => &c.client,
        Step::EvsJoin(c) | Step::EvsLeave(c) => &c.client,
        Step::EvsMcastJoined(c) | Step::EvsMcastGroups(c) => &c.client,
        Step::EvsMembershipGet(c) => &c.client,
        s if s.svc().is_some() => &s.svc()?.1.client,
        _ => return None,
    })
}

/// The agent command of a quorum, cmap or cfg step: its keys (but `client`, `expect`,
/// `expect_fields`) read as the command's, the handle defaulting to `q1`, `m1` or `c1`. A
/// key the command does not have is an error (the protocol's types accept and drop them).
pub fn svc_command(
    name: &str,
    call: &super::raw::SvcCall,
) -> Result<totem_agent_protocol::Command, String> {
    use totem_agent_protocol::command::Request;
    let mut args = call.args.clone();
    let handle = match name.split('_').next() {
        Some("quorum") => "q1",
        Some("cmap") => "m1",
        _ => "c1",
    };
    args.entry("handle")
        .or_insert_with(|| serde_json::Value::from(handle));
    args.insert("cmd".into(), name.into());
    let req: Request = serde_json::from_value(serde_json::Value::Object(args.clone()))
        .map_err(|e| e.to_string())?;
    // Keys that did not survive a round trip were not the command's.
    let back = serde_json::to_value(&req.command).map_err(|e| e.to_string())?;
    for k in args.keys() {
        if back.get(k).is_none() {
            return Err(format!("unknown field {k}"));
        }
    }
    Ok(req.command)
}

/// The EVS keys a step passes.
fn step_keys(step: &Step) -> &[totem_agent_protocol::command::EvsKey] {
    match step {
        Step::EvsJoin(c) | Step::EvsLeave(c) => &c.groups,
        Step::EvsMcastJoined(c) | Step::EvsMcastGroups(c) => &c.groups,
        _ => &[],
    }
}

fn cond_clients(c: &Condition) -> Vec<&str> {
    match c {
        Condition::Confchg(x) => vec![x.client.as_str()],
        Condition::Delivered(x) => {
            let mut v = vec![x.client.as_str()];
            v.extend(x.from.as_deref());
            v
        }
        Condition::TotemConfchg(x) => vec![x.client.as_str()],
        Condition::Exited(x) => vec![x.client.as_str()],
        Condition::Call(x) => vec![x.client.as_str()],
        Condition::EvsConfchg(x) => vec![x.client.as_str()],
        Condition::EvsDelivered(x) => {
            let mut v = vec![x.client.as_str()];
            v.extend(x.from.as_deref());
            v
        }
        Condition::QuorumNotify(x) => vec![x.client.as_str()],
        Condition::CmapNotify(x) => vec![x.client.as_str()],
        Condition::CfgShutdown(x) => vec![x.client.as_str()],
    }
}

/// EVS confchg kinds a condition may name.
const EVS_KINDS: &[&str] = &["TRANSITIONAL", "REGULAR"];

fn cond_evs_kind(c: &Condition) -> Option<&str> {
    match c {
        Condition::EvsConfchg(x) => x.kind.as_deref(),
        _ => None,
    }
}

/// The group names a step passes (in `escape_name`'s notation).
fn step_groups(step: &Step) -> Vec<&str> {
    match step {
        Step::Join(c) | Step::Leave(c) | Step::MembershipGet(c) => vec![c.group.as_str()],
        Step::Iteration(c) => c.group.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

fn cond_groups(c: &Condition) -> Vec<&str> {
    match c {
        Condition::Confchg(x) => x.group.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A group name must be valid escaped text (`\\` and `\xNN` only).
fn check_group(name: &str) -> Result<(), String> {
    totem_wire::exec::cpg::unescape_name(name).map(|_| ())
}

fn cond_reasons(c: &Condition) -> Vec<&str> {
    match c {
        Condition::Confchg(x) => x
            .joined
            .iter()
            .chain(x.left.iter())
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    }
}

impl Scenario {
    /// Checks the rules serde cannot; `line_of_step` maps a step index to its line.
    pub fn from_raw(
        raw: RawScenario,
        path: PathBuf,
        line_of_step: &dyn Fn(usize) -> Option<usize>,
    ) -> Result<Self, ScenarioError> {
        let err = |key: String, line: Option<usize>, message: String| ScenarioError {
            file: path.clone(),
            line,
            column: None,
            key,
            message,
        };
        let n = raw.topology.nodes;
        if !(1..=MAX_NODES).contains(&n) {
            return Err(err(
                "topology.nodes".into(),
                None,
                format!("must be 1..={MAX_NODES}, got {n}"),
            ));
        }
        if let Some(mtu) = raw.topology.link_mtu {
            if !LINK_MTU_RANGE.contains(&mtu) {
                return Err(err(
                    "topology.link_mtu".into(),
                    None,
                    format!(
                        "must be {}..={}, got {mtu}",
                        LINK_MTU_RANGE.start(),
                        LINK_MTU_RANGE.end()
                    ),
                ));
            }
        }
        if let Some(c) = raw.topology.crypto {
            // corosync.conf(5): crypto_* are knet's ("only valid for knet"); udpu has none.
            let why = if raw.topology.transport != Transport::Knet {
                Some("knet only: udpu has no crypto (set `transport: knet`)")
            } else if c.cipher == CryptoCipher::None && c.hash == CryptoHash::None {
                Some("cipher and hash both none is crypto off: leave `crypto` out")
            } else if c.cipher != CryptoCipher::None && c.hash == CryptoHash::None {
                // corosync's totem_config refuses crypto_cipher without crypto_hash.
                Some("a cipher needs a hash (corosync refuses crypto_cipher without crypto_hash)")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(err("topology.crypto".into(), None, why.into()));
            }
        }
        let links = raw.topology.links;
        if !(1..=MAX_LINKS).contains(&links) {
            return Err(err(
                "topology.links".into(),
                None,
                format!("must be 1..={MAX_LINKS}, got {links}"),
            ));
        }
        if links > 1 && raw.topology.transport != Transport::Knet {
            return Err(err(
                "topology.links".into(),
                None,
                "knet only: udpu runs one link (set `transport: knet`)".into(),
            ));
        }
        let mut disabled = BTreeMap::new();
        for (k, reason) in &raw.checks.disable {
            let c: CheckName = k
                .parse()
                .map_err(|e: String| err(format!("checks.disable.{k}"), None, e))?;
            if reason.trim().is_empty() {
                return Err(err(
                    format!("checks.disable.{k}"),
                    None,
                    "a disabled check needs a reason".into(),
                ));
            }
            disabled.insert(c, reason.clone());
        }
        let mut clients = BTreeSet::new();
        let mut client_nodes: BTreeMap<String, u32> = BTreeMap::new();
        let mut evs_clients: BTreeMap<String, u32> = BTreeMap::new();
        let node_ok = |x: u32| (1..=n).contains(&x);
        for (i, step) in raw.steps.iter().map(|s| &s.0).enumerate() {
            let line = line_of_step(i);
            let key = |k: &str| format!("steps[{i}].{k}");
            let bad_node =
                |k: &str, x: u32| err(key(k), line, format!("node {x} is not in 1..={n}"));
            match step {
                Step::StartNodes(sel) => {
                    for x in sel.resolve(n) {
                        if !node_ok(x) {
                            return Err(bad_node("start_nodes", x));
                        }
                    }
                }
                Step::StopNode(x)
                | Step::KillNode(x)
                | Step::PauseNode(x)
                | Step::ResumeNode(x)
                    if !node_ok(*x) =>
                {
                    return Err(bad_node("node", *x));
                }
                Step::CutLink(at) | Step::HealLink(at) => {
                    if !node_ok(at.node) {
                        return Err(bad_node("node", at.node));
                    }
                    if at.link >= links {
                        return Err(err(
                            key("link"),
                            line,
                            format!("link {} is not one of the topology's {links}", at.link),
                        ));
                    }
                }
                Step::Partition(sets) => {
                    for x in sets.iter().flatten() {
                        if !node_ok(*x) {
                            return Err(bad_node("partition", *x));
                        }
                    }
                    if sets.len() < 2 {
                        return Err(err(
                            key("partition"),
                            line,
                            "needs at least two sets".into(),
                        ));
                    }
                }
                Step::WaitRing(w) => {
                    for x in w
                        .nodes
                        .resolve(n)
                        .into_iter()
                        .chain(w.members.iter().copied())
                    {
                        if !node_ok(x) {
                            return Err(bad_node("wait_ring", x));
                        }
                    }
                }
                Step::Client(c) => {
                    if !node_ok(c.node) {
                        return Err(bad_node("client.node", c.node));
                    }
                    clients.insert(c.name.clone());
                    client_nodes.insert(c.name.clone(), c.node);
                }
                Step::KillClient(k) if !clients.contains(&k.name) => {
                    return Err(err(
                        key("kill_client.name"),
                        line,
                        format!("unknown client {:?}", k.name),
                    ));
                }
                Step::QuitClient(name) if !clients.contains(name) => {
                    return Err(err(
                        key("quit_client"),
                        line,
                        format!("unknown client {name:?}"),
                    ));
                }
                Step::Burst(b) => {
                    if b.senders.is_empty() && b.evs_senders.is_empty() {
                        return Err(err(
                            key("burst"),
                            line,
                            "needs senders or evs_senders".into(),
                        ));
                    }
                    for (k, list) in [
                        ("burst.senders", &b.senders),
                        ("burst.evs_senders", &b.evs_senders),
                    ] {
                        for s in list {
                            let c = s.split('.').next().unwrap_or(s);
                            if !clients.contains(c) {
                                return Err(err(key(k), line, format!("unknown client {c:?}")));
                            }
                        }
                    }
                    for s in &b.evs_senders {
                        let c = s.split('.').next().unwrap_or(s);
                        if let Some(node) = client_nodes.get(c) {
                            evs_clients.insert(c.to_owned(), *node);
                        }
                    }
                }
                Step::WaitUntil(w) => {
                    let c = w.condition().map_err(|e| err(key("wait_until"), line, e))?;
                    for g in cond_groups(&c) {
                        check_group(g).map_err(|e| err(key("wait_until"), line, e))?;
                    }
                    for name in cond_clients(&c) {
                        if !clients.contains(name) {
                            return Err(err(
                                key("wait_until"),
                                line,
                                format!("unknown client {name:?}"),
                            ));
                        }
                    }
                    for r in cond_reasons(&c) {
                        if !REASONS.contains(&r) {
                            return Err(err(
                                key("wait_until"),
                                line,
                                format!("unknown reason {r:?}; one of {REASONS:?}"),
                            ));
                        }
                    }
                }
                _ => {}
            }
            for g in step_groups(step) {
                check_group(g).map_err(|e| err(key("group"), line, e))?;
            }
            for (j, k) in step_keys(step).iter().enumerate() {
                k.bytes()
                    .map_err(|e| err(key(&format!("groups[{j}]")), line, e))?;
            }
            if let Step::WaitUntil(w) = step {
                if let Some(kind) = w.condition().ok().as_ref().and_then(cond_evs_kind) {
                    if !EVS_KINDS.contains(&kind) {
                        return Err(err(
                            key("wait_until.evs_confchg.kind"),
                            line,
                            format!("unknown kind {kind:?}; one of {EVS_KINDS:?}"),
                        ));
                    }
                }
            }
            if let Some((name, call)) = step.svc() {
                svc_command(name, call).map_err(|e| err(key(name), line, e))?;
            }
            if step.is_evs() {
                if let Some(c) = step_client(step) {
                    if let Some(node) = client_nodes.get(c) {
                        evs_clients.insert(c.to_owned(), *node);
                    }
                }
            }
            if let Some(client) = step_client(step) {
                if !clients.contains(client) {
                    return Err(err(
                        key("client"),
                        line,
                        format!("unknown client {client:?} (start it with a `client` step first)"),
                    ));
                }
            }
        }
        for (i, c) in raw.expect.iter().map(|s| &s.0).enumerate() {
            for g in cond_groups(c) {
                check_group(g).map_err(|e| err(format!("expect[{i}]"), None, e))?;
            }
            for name in cond_clients(c) {
                if !clients.contains(name) {
                    return Err(err(
                        format!("expect[{i}]"),
                        None,
                        format!("unknown client {name:?}"),
                    ));
                }
            }
            if let Some(kind) = cond_evs_kind(c) {
                if !EVS_KINDS.contains(&kind) {
                    return Err(err(
                        format!("expect[{i}].evs_confchg.kind"),
                        None,
                        format!("unknown kind {kind:?}; one of {EVS_KINDS:?}"),
                    ));
                }
            }
            for r in cond_reasons(c) {
                if !REASONS.contains(&r) {
                    return Err(err(
                        format!("expect[{i}]"),
                        None,
                        format!("unknown reason {r:?}; one of {REASONS:?}"),
                    ));
                }
            }
        }
        const BACKENDS: &[&str] = &["corosync", "sim", "native", "mixed"];
        for (i, b) in raw.backends.iter().enumerate() {
            if !BACKENDS.contains(&b.as_str()) {
                return Err(err(
                    format!("backends[{i}]"),
                    None,
                    format!("unknown backend {b:?}; one of {BACKENDS:?}"),
                ));
            }
        }
        Ok(Self {
            path,
            id: raw.id,
            title: raw.title,
            spec_ref: raw.spec_ref,
            requirement: raw.requirement,
            desc: raw.desc,
            tags: raw.tags,
            deviation: raw.deviation,
            backends: raw.backends,
            topology: Topology {
                nodes: n,
                transport: raw.topology.transport,
                ipc: raw.topology.ipc,
                totem: raw.topology.totem,
                link_mtu: raw.topology.link_mtu,
                crypto: raw.topology.crypto,
                links,
            },
            disabled_checks: disabled,
            steps: raw.steps.into_iter().map(|s| s.0).collect(),
            expect: raw.expect.into_iter().map(|s| s.0).collect(),
            evs_clients,
        })
    }
}
