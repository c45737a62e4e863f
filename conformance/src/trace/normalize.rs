//! Normalised traces: the part of a run that should be the same on every run and every
//! backend, so that a change in corosync's behaviour or ours shows up as a diff.
//!
//! Every rule that removes or reorders something is named in [`RULES`] and listed in the
//! output, so a reviewer can see why two traces compare equal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Addr, EventKind, Trace};

/// (name, what it does and why).
pub const RULES: &[(&str, &str)] = &[
    ("ids.first-appearance", "nodeids -> N1.., pids -> P1.. in client start order, ring ids -> R1.. by first appearance"),
    ("time.dropped", "timestamps are dropped"),
    ("payload.digest", "payloads appear as sender tag#seq and length (digest when they carry no header)"),
    ("streams.per-handle", "callbacks of different handles are separate streams: corosync does not order callbacks across client processes"),
    ("calls.separate", "call results form a per-client list in call order; their interleaving with callbacks depends on socket timing"),
    ("deliveries.multiset-between-membership-events", "deliveries between two membership events are a multiset, summarised per sender as seq ranges: concurrent senders interleave by token timing (agreed order across members is checked by the agreed_order checker instead)"),
    ("membership.totem-after-cpg", "in a run of adjacent membership events of one handle, totem confchgs are listed after the CPG confchgs (their relative order varies with the cause, corosync-lab.md); CPG confchgs keep their order"),
    ("teardown.dropped", "events after the runner's `teardown` marker are dropped: the order in which agents and daemons are stopped makes them timing-dependent"),
    ("results.volatile-fields", "fd numbers, TRY_AGAIN counts, agent pids and digests of headered payloads are dropped from results"),
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormTrace {
    pub scenario: String,
    pub rules: Vec<String>,
    /// Runner markers (node and network steps).
    pub markers: Vec<String>,
    /// Per client: call results in call order.
    pub calls: BTreeMap<String, Vec<String>>,
    /// Per `client.handle`: callbacks.
    pub streams: BTreeMap<String, Vec<String>>,
    /// Per client: how the agent ended (if it did during the run).
    pub exits: BTreeMap<String, String>,
}

#[derive(Default)]
struct Ids {
    nodes: BTreeMap<u32, usize>,
    pids: BTreeMap<u32, usize>,
    rings: BTreeMap<(u32, u64), usize>,
}

impl Ids {
    fn node(&mut self, n: u32) -> String {
        let k = self.nodes.len() + 1;
        format!("N{}", self.nodes.entry(n).or_insert(k))
    }
    fn pid(&mut self, p: u32) -> String {
        let k = self.pids.len() + 1;
        match self.pids.get(&p) {
            Some(v) => format!("P{v}"),
            None => {
                // A pid no client reported: another process in the group (kept distinct).
                self.pids.insert(p, k);
                format!("P{k}")
            }
        }
    }
    fn ring(&mut self, r: (u32, u64)) -> String {
        let k = self.rings.len() + 1;
        format!("R{}", self.rings.entry(r).or_insert(k))
    }
    fn addrs(&mut self, list: &[Addr], with_reason: bool) -> String {
        let mut raw: Vec<&Addr> = list.iter().collect();
        raw.sort();
        for a in &raw {
            self.node(a.nodeid);
        }
        let mut v: Vec<String> = raw
            .iter()
            .map(|a| {
                let base = format!("{}/{}", self.node(a.nodeid), self.pid(a.pid));
                if with_reason {
                    format!("{base}:{}", a.reason)
                } else {
                    base
                }
            })
            .collect();
        v.sort();
        format!("[{}]", v.join(" "))
    }
}

enum Item {
    Membership(String),
    Deliver {
        group: String,
        sender: String,
        tag: String,
        seq: Option<u64>,
        len: u64,
    },
}

fn seq_ranges(mut seqs: Vec<u64>) -> String {
    seqs.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            format!("{}", seqs[i])
        } else {
            format!("{}..{}", seqs[i], seqs[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Deliveries of one membership interval: (group, sender, tag, len) -> (seqs, count).
type Pending = BTreeMap<(String, String, String, u64), (Vec<u64>, usize)>;

fn flush(out: &mut Vec<String>, pending: &mut Vec<Item>) {
    let mut members: Vec<String> = Vec::new();
    let mut dl: Pending = BTreeMap::new();
    let emit_dl = |out: &mut Vec<String>, dl: &mut Pending| {
        for ((group, sender, tag, len), (seqs, n)) in std::mem::take(dl) {
            let what = if seqs.is_empty() {
                tag
            } else {
                format!("{tag}#{}", seq_ranges(seqs))
            };
            out.push(format!(
                "deliver {group:?} from {sender} {what} len={len} x{n}"
            ));
        }
    };
    for it in pending.drain(..) {
        match it {
            Item::Membership(s) => {
                if !dl.is_empty() {
                    order_membership(&mut members);
                    out.append(&mut members);
                    emit_dl(out, &mut dl);
                }
                members.push(s);
            }
            Item::Deliver {
                group,
                sender,
                tag,
                seq,
                len,
            } => {
                if !members.is_empty() {
                    order_membership(&mut members);
                    out.append(&mut members);
                }
                let e = dl.entry((group, sender, tag, len)).or_default();
                e.0.extend(seq);
                e.1 += 1;
            }
        }
    }
    order_membership(&mut members);
    out.append(&mut members);
    emit_dl(out, &mut dl);
}

/// Rule membership.totem-after-cpg: CPG confchgs in their order, then totem confchgs sorted.
fn order_membership(v: &mut Vec<String>) {
    let (mut totem, cpg): (Vec<String>, Vec<String>) =
        v.drain(..).partition(|s| s.starts_with("totem_confchg"));
    totem.sort();
    v.extend(cpg);
    v.extend(totem);
}

/// The marker the driver records before it stops the backend.
pub const TEARDOWN: &str = "teardown";

const VOLATILE: &[&str] = &["fd", "try_again", "pid", "digest", "blocked_ms", "auto"];

fn value_str(ids: &mut Ids, k: &str, v: &serde_json::Value) -> String {
    if k == "members" {
        if let Ok(list) = serde_json::from_value::<Vec<Addr>>(v.clone()) {
            return ids.addrs(&list, false);
        }
    }
    if k == "nodeid" {
        if let Some(n) = v.as_u64() {
            return ids.node(n as u32);
        }
    }
    if k == "items" {
        if let Some(arr) = v.as_array() {
            let mut items: Vec<String> = arr
                .iter()
                .map(|i| {
                    let n = i
                        .get("nodeid")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0) as u32;
                    let p = i
                        .get("pid")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0) as u32;
                    let g = i
                        .get("group")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("");
                    format!("{g:?}@{}/{}", ids.node(n), ids.pid(p))
                })
                .collect();
            items.sort();
            return format!("[{}]", items.join(" "));
        }
    }
    v.to_string()
}

/// A service ring id (`nodeid.seq`, `?.seq` from quorum's v0 callback) renamed as rings
/// are (`ids.first-appearance`).
fn norm_ring(ids: &mut Ids, ring: &str) -> String {
    match ring
        .split_once('.')
        .and_then(|(n, q)| Some((n.parse::<u32>().ok(), q.parse::<u64>().ok()?)))
    {
        Some((Some(n), q)) => format!("{}@{}", ids.ring((n, q)), ids.node(n)),
        Some((None, q)) => format!("seq:{}", ids.ring((0, q))),
        None => ring.to_owned(),
    }
}

/// Nodeids renamed and sorted (a member list's order is the daemon's).
fn norm_nodes(ids: &mut Ids, nodes: &[u32]) -> String {
    let mut l: Vec<String> = nodes.iter().map(|n| ids.node(*n)).collect();
    l.sort();
    format!("[{}]", l.join(" "))
}

pub fn normalize(trace: &Trace) -> NormTrace {
    let mut ids = Ids::default();
    let mut out = NormTrace {
        scenario: trace.scenario.clone(),
        rules: RULES.iter().map(|(n, _)| (*n).to_owned()).collect(),
        ..NormTrace::default()
    };
    // pids first, in client start order (deterministic: the runner starts clients in turn).
    for e in &trace.events {
        if let EventKind::ClientStarted { pid, .. } = e.kind {
            ids.pid(pid);
        }
    }
    let mut pending: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for e in &trace.events {
        if matches!(&e.kind, EventKind::Step { text, .. } if text == TEARDOWN) {
            break;
        }
        let stream = |h: &str| format!("{}.{h}", e.client);
        match &e.kind {
            EventKind::Step { text, .. } => out.markers.push(text.clone()),
            EventKind::ClientStarted { node, .. } => {
                out.calls
                    .entry(e.client.clone())
                    .or_default()
                    .push(format!("started on node {node}"));
            }
            EventKind::ClientExited { code, signal } => {
                out.exits
                    .insert(e.client.clone(), format!("code={code:?} signal={signal:?}"));
            }
            EventKind::ClientFatal { error } => {
                out.exits
                    .insert(e.client.clone(), format!("fatal: {error}"));
            }
            EventKind::Watchdog { handle, mode } => {
                out.calls
                    .entry(e.client.clone())
                    .or_default()
                    .push(format!("watchdog {handle} dispatch {mode}"));
            }
            EventKind::Result {
                cmd,
                handle,
                rc,
                error,
                fields,
                ..
            } => {
                let mut s = format!("{cmd} {handle} -> {}", rc.as_deref().unwrap_or("-"));
                if let Some(err) = error {
                    s.push_str(&format!(" error={err:?}"));
                }
                if let Some(t) = fields.get("tag").and_then(serde_json::Value::as_str) {
                    tags.insert(t.to_owned(), t.to_owned());
                }
                for (k, v) in fields {
                    if !VOLATILE.contains(&k.as_str()) {
                        let vs = value_str(&mut ids, k, v);
                        s.push_str(&format!(" {k}={vs}"));
                    }
                }
                out.calls.entry(e.client.clone()).or_default().push(s);
            }
            EventKind::Confchg {
                handle,
                group,
                members,
                left,
                joined,
            } => {
                let s = format!(
                    "confchg {group:?} members={} left={} joined={}",
                    ids.addrs(members, false),
                    ids.addrs(left, true),
                    ids.addrs(joined, true)
                );
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Membership(s));
            }
            EventKind::TotemConfchg {
                handle,
                ring_nodeid,
                ring_seq,
                members,
            } => {
                let mut m: Vec<u32> = members.clone();
                m.sort_unstable();
                let mut ms: Vec<String> = m.iter().map(|n| ids.node(*n)).collect();
                ms.sort();
                let s = format!(
                    "totem_confchg ring={}@{} members=[{}]",
                    ids.ring((*ring_nodeid, *ring_seq)),
                    ids.node(*ring_nodeid),
                    ms.join(" ")
                );
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Membership(s));
            }
            EventKind::Deliver {
                handle,
                group,
                nodeid,
                pid,
                len,
                digest,
                tag,
                seq,
                ..
            } => {
                let sender = format!("{}/{}", ids.node(*nodeid), ids.pid(*pid));
                let t = tag.clone().unwrap_or_else(|| format!("digest:{digest}"));
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Deliver {
                        group: group.clone(),
                        sender,
                        tag: t,
                        seq: *seq,
                        len: *len,
                    });
            }
            EventKind::EvsConfchg {
                handle,
                kind,
                ring,
                members,
                left,
                joined,
            } => {
                let mut nodes = |v: &[u32]| {
                    let mut l: Vec<String> = v.iter().map(|n| ids.node(*n)).collect();
                    l.sort();
                    format!("[{}]", l.join(" "))
                };
                let (m, l, j) = (nodes(members), nodes(left), nodes(joined));
                let r = ring
                    .as_deref()
                    .and_then(|r| r.split_once('.'))
                    .and_then(|(n, q)| Some((n.parse::<u32>().ok()?, q.parse::<u64>().ok()?)))
                    .map_or_else(|| "NULL".to_owned(), |(n, q)| ids.ring((n, q)));
                let s = format!(
                    "evs_confchg {} ring={r} members={m} left={l} joined={j}",
                    kind.as_deref().unwrap_or("?")
                );
                pending
                    .entry(stream(&format!("evs.{handle}")))
                    .or_default()
                    .push(Item::Membership(s));
            }
            EventKind::EvsDeliver {
                handle,
                nodeid,
                len,
                digest,
                tag,
                seq,
                ..
            } => {
                let t = tag.clone().unwrap_or_else(|| format!("digest:{digest}"));
                pending
                    .entry(stream(&format!("evs.{handle}")))
                    .or_default()
                    .push(Item::Deliver {
                        group: String::new(),
                        sender: ids.node(*nodeid),
                        tag: t,
                        seq: *seq,
                        len: *len,
                    });
            }
            // Notifications of Pacemaker's other services are membership-like: ordered
            // per handle, ring ids and nodeids renamed.
            EventKind::QuorumNotify {
                handle,
                quorate,
                ring,
                members,
            } => {
                let r = norm_ring(&mut ids, ring);
                let m = norm_nodes(&mut ids, members);
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Membership(format!(
                        "quorum_notify quorate={quorate} ring={r} members={m}"
                    )));
            }
            EventKind::QuorumNodelist {
                handle,
                ring,
                members,
                joined,
                left,
            } => {
                let r = norm_ring(&mut ids, ring);
                let (m, j, l) = (
                    norm_nodes(&mut ids, members),
                    norm_nodes(&mut ids, joined),
                    norm_nodes(&mut ids, left),
                );
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Membership(format!(
                        "quorum_nodelist ring={r} members={m} joined={j} left={l}"
                    )));
            }
            EventKind::CmapNotify {
                handle,
                track,
                event,
                key,
                new,
                old,
            } => {
                let v = |x: &Option<serde_json::Value>| {
                    x.as_ref()
                        .map_or_else(|| "-".to_owned(), ToString::to_string)
                };
                let s = format!(
                    "cmap_notify {track} {event} {key:?} new={} old={}",
                    v(new),
                    v(old)
                );
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Membership(s));
            }
            EventKind::CfgShutdown {
                handle,
                flags,
                reply,
                reply_rc,
            } => {
                let s = format!(
                    "cfg_shutdown {flags} reply={reply} rc={}",
                    reply_rc.as_deref().unwrap_or("-")
                );
                pending
                    .entry(stream(handle))
                    .or_default()
                    .push(Item::Membership(s));
            }
        }
    }
    for (k, mut items) in pending {
        let v = out.streams.entry(k).or_default();
        flush(v, &mut items);
    }
    out
}

impl NormTrace {
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Event;

    fn ev(client: &str, kind: EventKind) -> Event {
        Event {
            t_us: 0,
            client: client.into(),
            kind,
        }
    }

    fn dl(h: &str, pid: u32, tag: &str, seq: u64) -> EventKind {
        EventKind::Deliver {
            handle: h.into(),
            group: "g".into(),
            nodeid: 7,
            pid,
            len: 64,
            digest: "d".into(),
            tag: Some(tag.into()),
            seq: Some(seq),
            intact: Some(true),
        }
    }

    #[test]
    fn ids_and_interleavings_are_normalised() {
        let mk = |pids: (u32, u32), order: &[(u32, &str, u64)]| {
            let mut events = vec![
                ev(
                    "a",
                    EventKind::ClientStarted {
                        node: 1,
                        pid: pids.0,
                    },
                ),
                ev(
                    "b",
                    EventKind::ClientStarted {
                        node: 1,
                        pid: pids.1,
                    },
                ),
            ];
            for (p, t, s) in order {
                events.push(ev(
                    "a",
                    dl("h1", if *p == 0 { pids.0 } else { pids.1 }, t, *s),
                ));
            }
            Trace {
                scenario: "x".into(),
                backend: "t".into(),
                events,
            }
        };
        let one = mk((100, 200), &[(0, "a", 0), (1, "b", 0), (0, "a", 1)]);
        let two = mk((555, 444), &[(1, "b", 0), (0, "a", 0), (0, "a", 1)]);
        let (n1, n2) = (normalize(&one), normalize(&two));
        assert_eq!(n1, n2);
        insta::assert_yaml_snapshot!(n1.streams, @r#"
        a.h1:
          - "deliver \"g\" from N1/P1 a#0..1 len=64 x2"
          - "deliver \"g\" from N1/P2 b#0 len=64 x1"
        "#);
    }

    #[test]
    fn sender_order_change_inside_one_stream_is_not_hidden_across_confchgs() {
        let conf = EventKind::Confchg {
            handle: "h1".into(),
            group: "g".into(),
            members: vec![],
            left: vec![],
            joined: vec![],
        };
        let a = Trace {
            scenario: "x".into(),
            backend: "t".into(),
            events: vec![
                ev("a", dl("h1", 1, "a", 0)),
                ev("a", conf.clone()),
                ev("a", dl("h1", 1, "a", 1)),
            ],
        };
        let b = Trace {
            events: vec![
                ev("a", dl("h1", 1, "a", 0)),
                ev("a", dl("h1", 1, "a", 1)),
                ev("a", conf),
            ],
            ..a.clone()
        };
        assert_ne!(normalize(&a), normalize(&b));
    }
}
