//! Invariant checkers over a backend-neutral [`Trace`]. They run on every scenario and every
//! backend (corosync, sim, native, mixed) alike.
//!
//! The rules come from cpg_overview(3)/cpg_mcast_joined(3) ("messages are delivered in the
//! same order to all members", self delivery, the confchg lists of cpg_initialize(3)) and
//! the Totem/EVS guarantees corosync builds on (agreed order, virtual synchrony).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::trace::{Addr, EventKind, Trace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// Any two members deliver their common messages in the same order.
    AgreedOrder,
    /// Members that pass together from one configuration to the next delivered the same set.
    VirtualSynchrony,
    /// One sender's messages arrive in the order sent, without gaps inside a configuration.
    Fifo,
    /// A joined sender receives its own messages.
    SelfDelivery,
    /// No message is delivered twice to one handle.
    NoDuplicates,
    /// Every delivered message was sent (sender, sequence, length and content match).
    NoInvented,
    /// members = previous members + joined - left, on every confchg.
    ConfchgConsistency,
    /// joined entries carry JOIN/NODEUP, left entries LEAVE/NODEDOWN/PROCDOWN.
    ConfchgReasons,
    /// One ring id always comes with one member list.
    TotemRings,
}

impl CheckName {
    pub const ALL: [Self; 9] = [
        Self::AgreedOrder,
        Self::VirtualSynchrony,
        Self::Fifo,
        Self::SelfDelivery,
        Self::NoDuplicates,
        Self::NoInvented,
        Self::ConfchgConsistency,
        Self::ConfchgReasons,
        Self::TotemRings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgreedOrder => "agreed_order",
            Self::VirtualSynchrony => "virtual_synchrony",
            Self::Fifo => "fifo",
            Self::SelfDelivery => "self_delivery",
            Self::NoDuplicates => "no_duplicates",
            Self::NoInvented => "no_invented",
            Self::ConfchgConsistency => "confchg_consistency",
            Self::ConfchgReasons => "confchg_reasons",
            Self::TotemRings => "totem_rings",
        }
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown check {s:?}; one of {:?}",
                    Self::ALL.map(Self::as_str)
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub check: CheckName,
    pub message: String,
}

/// A delivery as the checkers see it.
#[derive(Debug, Clone)]
struct Dlv {
    key: String,
    tag: Option<String>,
    seq: Option<u64>,
    pid: u32,
    len: u64,
    digest: String,
    intact: Option<bool>,
    /// Index of the configuration (confchg count on this stream) it was delivered in.
    view: usize,
}

type MemberSet = BTreeSet<(u32, u32)>;

#[derive(Debug, Default)]
struct Stream {
    client: String,
    handle: String,
    deliveries: Vec<Dlv>,
    /// Members after each confchg, with the event position and the group it is of (its
    /// exact name as the trace spells it: a handle may leave one group and join another).
    views: Vec<(MemberSet, usize, String)>,
}

/// What a sender's successful calls put on the wire.
#[derive(Debug, Default)]
struct Sent {
    client: String,
    handle: String,
    /// seq -> (size, digest when known, trace position of the result)
    seqs: BTreeMap<u64, (u64, Option<String>, usize)>,
}

fn set(list: &[Addr]) -> MemberSet {
    list.iter().map(|a| (a.nodeid, a.pid)).collect()
}

struct Model {
    streams: BTreeMap<(String, String), Stream>,
    sent: BTreeMap<String, Sent>,
    /// Unheaded single messages: (len, digest) seen in results.
    sent_plain: BTreeSet<(u64, String)>,
    pids: BTreeMap<String, u32>,
}

fn stream_mut<'a>(
    streams: &'a mut BTreeMap<(String, String), Stream>,
    client: &str,
    handle: &str,
) -> &'a mut Stream {
    streams
        .entry((client.to_owned(), handle.to_owned()))
        .or_insert_with(|| Stream {
            client: client.to_owned(),
            handle: handle.to_owned(),
            ..Stream::default()
        })
}

fn build(trace: &Trace) -> Model {
    let mut streams: BTreeMap<(String, String), Stream> = BTreeMap::new();
    let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
    let mut sent_plain = BTreeSet::new();
    let mut plain_seen: HashMap<(String, String, u32, String), usize> = HashMap::new();
    for (pos, e) in trace.events.iter().enumerate() {
        match &e.kind {
            EventKind::Confchg {
                handle,
                group,
                members,
                ..
            } => {
                let st = stream_mut(&mut streams, &e.client, handle);
                st.views.push((set(members), pos, group.clone()));
            }
            EventKind::Deliver {
                handle,
                nodeid: _,
                pid,
                len,
                digest,
                tag,
                seq,
                intact,
                ..
            } => {
                let st = stream_mut(&mut streams, &e.client, handle);
                let key = match (tag, seq) {
                    (Some(t), Some(s)) => format!("{t}#{s}"),
                    _ => {
                        let k = plain_seen
                            .entry((e.client.clone(), handle.clone(), *pid, digest.clone()))
                            .or_insert(0);
                        *k += 1;
                        format!("plain:{pid}:{digest}:{k}")
                    }
                };
                let view = st.views.len();
                st.deliveries.push(Dlv {
                    key,
                    tag: tag.clone(),
                    seq: *seq,
                    pid: *pid,
                    len: *len,
                    digest: digest.clone(),
                    intact: *intact,
                    view,
                });
            }
            EventKind::Result {
                cmd,
                handle,
                rc,
                fields,
                ..
            } if cmd == "mcast" || cmd == "zcb_mcast" => {
                let tag = fields
                    .get("tag")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let size = fields
                    .get("size")
                    .or_else(|| fields.get("len"))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let digest = fields
                    .get("digest")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                let (first, n) = if cmd == "mcast" {
                    (
                        fields.get("first_seq").and_then(serde_json::Value::as_u64),
                        fields
                            .get("sent")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0),
                    )
                } else if rc.as_deref() == Some("CS_OK") {
                    (fields.get("seq").and_then(serde_json::Value::as_u64), 1)
                } else {
                    (None, 0)
                };
                if let (Some(d), 1) = (&digest, n) {
                    sent_plain.insert((size, d.clone()));
                }
                if let Some(first) = first {
                    let s = sent.entry(tag).or_default();
                    s.client.clone_from(&e.client);
                    s.handle.clone_from(handle);
                    for q in first..first + n {
                        s.seqs
                            .insert(q, (size, if n == 1 { digest.clone() } else { None }, pos));
                    }
                }
            }
            _ => {}
        }
    }
    Model {
        streams,
        sent,
        sent_plain,
        pids: trace.client_pids(),
    }
}

/// Runs every checker not in `disabled`.
pub fn run_all(trace: &Trace, disabled: &BTreeSet<CheckName>) -> Vec<Violation> {
    let m = build(trace);
    let mut out = Vec::new();
    for c in CheckName::ALL {
        if disabled.contains(&c) {
            continue;
        }
        let msgs = match c {
            CheckName::AgreedOrder => agreed_order(&m),
            CheckName::VirtualSynchrony => virtual_synchrony(&m),
            CheckName::Fifo => fifo(&m),
            CheckName::SelfDelivery => self_delivery(&m, trace),
            CheckName::NoDuplicates => no_duplicates(&m),
            CheckName::NoInvented => no_invented(&m),
            CheckName::ConfchgConsistency => confchg_consistency(trace),
            CheckName::ConfchgReasons => confchg_reasons(trace),
            CheckName::TotemRings => totem_rings(trace),
        };
        // Cap per checker: one broken run must not produce a report of millions of lines.
        let total = msgs.len();
        out.extend(
            msgs.into_iter()
                .take(20)
                .map(|message| Violation { check: c, message }),
        );
        if total > 20 {
            out.push(Violation {
                check: c,
                message: format!("... and {} more", total - 20),
            });
        }
    }
    out
}

fn name(s: &Stream) -> String {
    format!("{}.{}", s.client, s.handle)
}

fn agreed_order(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    let streams: Vec<&Stream> = m.streams.values().collect();
    for (i, a) in streams.iter().enumerate() {
        let in_a: HashMap<&str, usize> = a
            .deliveries
            .iter()
            .enumerate()
            .map(|(k, d)| (d.key.as_str(), k))
            .collect();
        for b in &streams[i + 1..] {
            // The common messages, in b's order, must have increasing positions in a.
            let mut last: Option<(usize, &str)> = None;
            for d in &b.deliveries {
                if let Some(&pa) = in_a.get(d.key.as_str()) {
                    if let Some((lp, lk)) = last {
                        if pa < lp {
                            out.push(format!(
                                "{} delivered {} before {}, {} the other way round",
                                name(a),
                                d.key,
                                lk,
                                name(b)
                            ));
                            break;
                        }
                    }
                    last = Some((pa, d.key.as_str()));
                }
            }
        }
    }
    out
}

fn virtual_synchrony(m: &Model) -> Vec<String> {
    // transition id (group, view, next view, occurrence) -> (stream name, messages delivered
    // in view). The group is part of it: one process in two groups has the same member set
    // in both, and its two handles rightly deliver different messages.
    type Tid = (String, MemberSet, MemberSet, usize);
    let mut seen: BTreeMap<Tid, Vec<(String, BTreeSet<&str>)>> = BTreeMap::new();
    for s in m.streams.values() {
        let mut occ: BTreeMap<(String, MemberSet, MemberSet), usize> = BTreeMap::new();
        for k in 0..s.views.len().saturating_sub(1) {
            let group = s.views[k].2.clone();
            if s.views[k + 1].2 != group {
                // Left one group and joined another: no transition of either.
                continue;
            }
            let from = s.views[k].0.clone();
            let to = s.views[k + 1].0.clone();
            let n = occ
                .entry((group.clone(), from.clone(), to.clone()))
                .or_insert(0);
            *n += 1;
            // Deliveries after confchg k and before confchg k+1 have view index k+1.
            let msgs = s
                .deliveries
                .iter()
                .filter(|d| d.view == k + 1)
                .map(|d| d.key.as_str())
                .collect();
            seen.entry((group, from, to, *n))
                .or_default()
                .push((name(s), msgs));
        }
    }
    let mut out = Vec::new();
    for ((group, from, to, _), v) in &seen {
        for w in v.windows(2) {
            if w[0].1 != w[1].1 {
                let only_a: Vec<_> = w[0].1.difference(&w[1].1).take(5).collect();
                let only_b: Vec<_> = w[1].1.difference(&w[0].1).take(5).collect();
                out.push(format!(
                    "{} and {} of group {group:?} passed from {:?} to {:?} but delivered different sets (only first: {:?}; only second: {:?})",
                    w[0].0, w[1].0, from, to, only_a, only_b
                ));
            }
        }
    }
    out
}

fn fifo(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for s in m.streams.values() {
        let mut last: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
        for d in &s.deliveries {
            let (Some(tag), Some(seq)) = (&d.tag, d.seq) else {
                continue;
            };
            if let Some(&(prev, view)) = last.get(tag.as_str()) {
                if seq <= prev {
                    out.push(format!(
                        "{}: {tag}#{seq} delivered after {tag}#{prev}",
                        name(s)
                    ));
                } else if view == d.view
                    && seq != prev + 1
                    && m.sent
                        .get(tag)
                        .is_some_and(|x| x.seqs.contains_key(&(prev + 1)))
                {
                    out.push(format!(
                        "{}: gap in one configuration, {tag}#{prev} then {tag}#{seq}",
                        name(s)
                    ));
                }
            }
            last.insert(tag, (seq, d.view));
        }
    }
    out
}

fn self_delivery(m: &Model, trace: &Trace) -> Vec<String> {
    let mut out = Vec::new();
    // Where each handle's life (as a receiver) ends: finalize, client exit or node down.
    let mut ends: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut client_end: BTreeMap<String, usize> = BTreeMap::new();
    let mut client_node: BTreeMap<String, u32> = BTreeMap::new();
    let mut node_down: BTreeMap<u32, usize> = BTreeMap::new();
    let mut own_join: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut own_leave: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (pos, e) in trace.events.iter().enumerate() {
        match &e.kind {
            EventKind::ClientStarted { node, .. } => {
                client_node.insert(e.client.clone(), *node);
            }
            EventKind::ClientExited { .. } | EventKind::Watchdog { .. } => {
                client_end.entry(e.client.clone()).or_insert(pos);
            }
            EventKind::Step { text, .. } => {
                if let Some(n) = node_stopped(text) {
                    node_down.entry(n).or_insert(pos);
                }
            }
            EventKind::Result {
                cmd, handle, rc, ..
            } if (cmd == "finalize" || cmd == "leave") && rc.as_deref() == Some("CS_OK") => {
                let map = if cmd == "finalize" {
                    &mut ends
                } else {
                    &mut own_leave
                };
                map.entry((e.client.clone(), handle.clone())).or_insert(pos);
            }
            EventKind::Confchg { handle, joined, .. } => {
                let pid = m.pids.get(&e.client).copied();
                if joined.iter().any(|a| Some(a.pid) == pid) {
                    own_join
                        .entry((e.client.clone(), handle.clone()))
                        .or_insert(pos);
                }
            }
            _ => {}
        }
    }
    for (tag, s) in &m.sent {
        let k = (s.client.clone(), s.handle.clone());
        let Some(&joined_at) = own_join.get(&k) else {
            continue;
        };
        let end = [
            ends.get(&k).copied(),
            client_end.get(&s.client).copied(),
            client_node
                .get(&s.client)
                .and_then(|n| node_down.get(n).copied()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(usize::MAX);
        let got: BTreeSet<u64> = m
            .streams
            .get(&k)
            .map(|st| {
                st.deliveries
                    .iter()
                    .filter(|d| d.tag.as_deref() == Some(tag))
                    .filter_map(|d| d.seq)
                    .collect()
            })
            .unwrap_or_default();
        // Messages too short for the header come back without tag and seq; they are
        // matched by digest instead, each delivery used once.
        let mut plain: Vec<&str> = m
            .streams
            .get(&k)
            .map(|st| {
                st.deliveries
                    .iter()
                    .filter(|d| d.tag.is_none())
                    .map(|d| d.digest.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<u64> = s
            .seqs
            .iter()
            .filter(|(_, &(_, _, pos))| {
                pos > joined_at && pos < end && own_leave.get(&k).is_none_or(|&l| pos < l)
            })
            .filter(|(q, (_, digest, _))| {
                if got.contains(q) {
                    return false;
                }
                match digest
                    .as_deref()
                    .and_then(|d| plain.iter().position(|p| *p == d))
                {
                    Some(i) => {
                        plain.swap_remove(i);
                        false
                    }
                    None => true,
                }
            })
            .map(|(q, _)| *q)
            .collect();
        if !missing.is_empty() {
            out.push(format!(
                "{}.{} did not receive {} of its own messages (tag {tag}, first missing seq {})",
                s.client,
                s.handle,
                missing.len(),
                missing[0]
            ));
        }
    }
    out
}

/// Node numbers from runner markers that take a node's corosync away.
pub fn node_stopped(step_text: &str) -> Option<u32> {
    let mut it = step_text.split_whitespace();
    match (it.next(), it.next()) {
        (Some("stop_node" | "kill_node"), Some(n)) => n.parse().ok(),
        _ => None,
    }
}

fn no_duplicates(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for s in m.streams.values() {
        let mut seen = BTreeSet::new();
        for d in &s.deliveries {
            if !seen.insert(d.key.as_str()) {
                out.push(format!("{}: {} delivered twice", name(s), d.key));
            }
        }
    }
    out
}

fn no_invented(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for s in m.streams.values() {
        for d in &s.deliveries {
            match (&d.tag, d.seq) {
                (Some(tag), Some(seq)) => {
                    let Some(sender) = m.sent.get(tag) else {
                        out.push(format!(
                            "{}: {} from a sender that never sent",
                            name(s),
                            d.key
                        ));
                        continue;
                    };
                    match sender.seqs.get(&seq) {
                        None => out.push(format!("{}: {} was never sent", name(s), d.key)),
                        Some((size, digest, _)) => {
                            if *size != d.len {
                                out.push(format!(
                                    "{}: {} has {} bytes, sent {}",
                                    name(s),
                                    d.key,
                                    d.len,
                                    size
                                ));
                            }
                            if digest.as_ref().is_some_and(|x| *x != d.digest)
                                || d.intact == Some(false)
                            {
                                out.push(format!(
                                    "{}: {} content differs from what was sent",
                                    name(s),
                                    d.key
                                ));
                            }
                        }
                    }
                    if m.pids.get(&sender.client).is_some_and(|&p| p != d.pid) {
                        out.push(format!(
                            "{}: {} reported with pid {}, sender's pid differs",
                            name(s),
                            d.key,
                            d.pid
                        ));
                    }
                }
                _ => {
                    if !m.sent_plain.contains(&(d.len, d.digest.clone())) {
                        out.push(format!(
                            "{}: unheaded message of {} bytes (digest {}) was never sent",
                            name(s),
                            d.len,
                            d.digest
                        ));
                    }
                }
            }
        }
    }
    out
}

fn confchg_consistency(trace: &Trace) -> Vec<String> {
    let mut out = Vec::new();
    let mut prev: BTreeMap<(String, String, String), MemberSet> = BTreeMap::new();
    for e in &trace.events {
        let EventKind::Confchg {
            handle,
            group,
            members,
            left,
            joined,
        } = &e.kind
        else {
            continue;
        };
        let k = (e.client.clone(), handle.clone(), group.clone());
        let (m, l, j) = (set(members), set(left), set(joined));
        let who = format!("{}.{} group {group:?}", e.client, handle);
        if let Some(p) = prev.get(&k) {
            if let Some(x) = j.intersection(p).next() {
                out.push(format!("{who}: {x:?} joined but was already a member"));
            }
            if let Some(x) = l.difference(p).next() {
                out.push(format!("{who}: {x:?} left but was not a member"));
            }
            let expect: MemberSet = p.union(&j).filter(|x| !l.contains(x)).copied().collect();
            if expect != m {
                out.push(format!(
                    "{who}: members {m:?} != previous {p:?} + joined {j:?} - left {l:?}"
                ));
            }
        } else if !l.is_empty() && j.is_empty() {
            out.push(format!(
                "{who}: first confchg has left entries but nobody joined"
            ));
        }
        if let Some(x) = j.intersection(&l).next() {
            out.push(format!("{who}: {x:?} both joined and left"));
        }
        prev.insert(k, m);
    }
    out
}

fn confchg_reasons(trace: &Trace) -> Vec<String> {
    let mut out = Vec::new();
    for e in &trace.events {
        let EventKind::Confchg {
            handle,
            joined,
            left,
            ..
        } = &e.kind
        else {
            continue;
        };
        for a in joined {
            if !matches!(a.reason.as_str(), "JOIN" | "NODEUP") {
                out.push(format!(
                    "{}.{handle}: joined entry {a:?} has reason {}",
                    e.client, a.reason
                ));
            }
        }
        for a in left {
            if !matches!(a.reason.as_str(), "LEAVE" | "NODEDOWN" | "PROCDOWN") {
                out.push(format!(
                    "{}.{handle}: left entry {a:?} has reason {}",
                    e.client, a.reason
                ));
            }
        }
    }
    out
}

fn totem_rings(trace: &Trace) -> Vec<String> {
    let mut out = Vec::new();
    let mut rings: BTreeMap<(u32, u64), (String, BTreeSet<u32>)> = BTreeMap::new();
    for e in &trace.events {
        let EventKind::TotemConfchg {
            handle,
            ring_nodeid,
            ring_seq,
            members,
        } = &e.kind
        else {
            continue;
        };
        let m: BTreeSet<u32> = members.iter().copied().collect();
        let who = format!("{}.{handle}", e.client);
        match rings.get(&(*ring_nodeid, *ring_seq)) {
            Some((first, pm)) if *pm != m => out.push(format!(
                "ring {ring_nodeid}.{ring_seq}: {first} saw members {pm:?}, {who} saw {m:?}"
            )),
            Some(_) => {}
            None => {
                rings.insert((*ring_nodeid, *ring_seq), (who, m));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
