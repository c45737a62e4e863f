//! Invariant checkers over a run's trace (TigerBeetle's state checker, stateright's
//! expectations). Each names the property and what broke it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use totem_srp::MembState;

use crate::sim::{Sim, TraceEntry, TraceEvent};

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which checker.
    pub checker: &'static str,
    /// What it saw.
    pub detail: String,
}

type Client = (u32, u64);
/// A node's step between two rings: (node, when the first began, when the second began).
type RingStep = (u32, i64, i64);

fn violation(checker: &'static str, detail: String) -> Violation {
    Violation { checker, detail }
}

/// Parses a message id `node.conn.seq`.
fn sender_of(message: &str) -> Option<(Client, u64)> {
    let mut parts = message.split('.');
    let node = parts.next()?.parse().ok()?;
    let conn = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some(((node, conn), seq))
}

/// Every safety checker over `trace`.
pub fn check_safety(trace: &[TraceEntry]) -> Vec<Violation> {
    let mut v = Vec::new();
    v.extend(no_duplicate_or_invented(trace));
    v.extend(per_sender_fifo(trace));
    v.extend(agreed_order(trace));
    v.extend(virtual_synchrony(trace));
    v.extend(self_delivery(trace));
    v.extend(membership_agreement(trace));
    v
}

fn deliveries(trace: &[TraceEntry]) -> BTreeMap<Client, Vec<(&str, &str)>> {
    let mut out: BTreeMap<Client, Vec<(&str, &str)>> = BTreeMap::new();
    for e in trace {
        if let TraceEvent::Deliver {
            node,
            conn,
            message,
            ring,
            ..
        } = &e.event
        {
            out.entry((*node, *conn))
                .or_default()
                .push((message.as_str(), ring.as_str()));
        }
    }
    out
}

/// No client receives a message twice, and every delivered message was sent.
pub fn no_duplicate_or_invented(trace: &[TraceEntry]) -> Vec<Violation> {
    let sent: BTreeSet<&str> = trace
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Call {
                call: "mcast",
                message: Some(m),
                result,
                ..
            } if result == "CS_OK" => Some(m.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (client, list) in deliveries(trace) {
        let mut seen = BTreeSet::new();
        for (m, _) in list {
            if !seen.insert(m) {
                out.push(violation(
                    "no_duplicate",
                    format!("client {client:?} got {m} twice"),
                ));
            }
            if !sent.contains(m) {
                out.push(violation(
                    "no_invented",
                    format!("client {client:?} got {m}, never sent"),
                ));
            }
        }
    }
    out
}

/// A client receives each sender's messages in the order they were sent.
pub fn per_sender_fifo(trace: &[TraceEntry]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (client, list) in deliveries(trace) {
        let mut last: HashMap<Client, u64> = HashMap::new();
        for (m, _) in list {
            let Some((sender, seq)) = sender_of(m) else {
                continue;
            };
            if let Some(prev) = last.insert(sender, seq) {
                if seq <= prev {
                    out.push(violation(
                        "per_sender_fifo",
                        format!("client {client:?} got {m} after seq {prev} of {sender:?}"),
                    ));
                }
            }
        }
    }
    out
}

/// Any two clients deliver the messages they both deliver in the same relative order.
pub fn agreed_order(trace: &[TraceEntry]) -> Vec<Violation> {
    let all = deliveries(trace);
    let clients: Vec<&Client> = all.keys().collect();
    let sets: HashMap<&Client, BTreeSet<&str>> = all
        .iter()
        .map(|(c, l)| (c, l.iter().map(|(m, _)| *m).collect()))
        .collect();
    let mut out = Vec::new();
    for (i, a) in clients.iter().enumerate() {
        for b in clients.iter().skip(i + 1) {
            let a_in_b: Vec<&str> = all[*a]
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| sets[*b].contains(m))
                .collect();
            let b_in_a: Vec<&str> = all[*b]
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| sets[*a].contains(m))
                .collect();
            if a_in_b != b_in_a {
                let at = a_in_b
                    .iter()
                    .zip(&b_in_a)
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
                out.push(violation(
                    "agreed_order",
                    format!(
                        "clients {a:?} and {b:?} differ at common message #{at}: {:?} vs {:?}",
                        a_in_b.get(at),
                        b_in_a.get(at)
                    ),
                ));
            }
        }
    }
    out
}

/// Nodes that pass together from one regular configuration to the next delivered the same
/// messages in it: compared for every pair of clients of one group, on two nodes that both
/// went from ring R to ring R', that were joined before R began on their node and stayed
/// until R' began (a client that joins mid-ring rightly misses what came before its join).
pub fn virtual_synchrony(trace: &[TraceEntry]) -> Vec<Violation> {
    // Regular rings per node, with the time each was installed there.
    let mut rings: BTreeMap<u32, Vec<(String, i64)>> = BTreeMap::new();
    // Client lifetimes: (node, conn) -> (group, joined at, gone at).
    let mut joined_at: BTreeMap<Client, (String, i64)> = BTreeMap::new();
    let mut gone_at: BTreeMap<Client, i64> = BTreeMap::new();
    let mut crashes: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for e in trace {
        match &e.event {
            TraceEvent::Totem {
                node,
                kind: "regular",
                ring,
                ..
            } => rings
                .entry(*node)
                .or_default()
                .push((ring.clone(), e.time_us)),
            TraceEvent::Confchg {
                node, conn, group, ..
            } => {
                joined_at
                    .entry((*node, *conn))
                    .or_insert_with(|| (group.clone(), e.time_us));
            }
            TraceEvent::Call {
                node,
                conn,
                call: "leave" | "finalize",
                ..
            } => {
                gone_at.entry((*node, *conn)).or_insert(e.time_us);
            }
            TraceEvent::Crash { node } => crashes.entry(*node).or_default().push(e.time_us),
            _ => {}
        }
    }
    let gone = |client: &Client, joined: i64| -> i64 {
        let by_call = gone_at.get(client).copied().unwrap_or(i64::MAX);
        let by_crash = crashes
            .get(&client.0)
            .and_then(|c| c.iter().copied().find(|t| *t >= joined))
            .unwrap_or(i64::MAX);
        by_call.min(by_crash)
    };
    let mut delivered: BTreeMap<(Client, String), BTreeSet<&str>> = BTreeMap::new();
    for e in trace {
        if let TraceEvent::Deliver {
            node,
            conn,
            message,
            ring,
            ..
        } = &e.event
        {
            delivered
                .entry(((*node, *conn), ring.clone()))
                .or_default()
                .insert(message.as_str());
        }
    }
    // (R, R') -> for each node that made the step: when R and R' began there.
    let mut steps: BTreeMap<(String, String), Vec<RingStep>> = BTreeMap::new();
    for (node, list) in &rings {
        for w in list.windows(2) {
            steps
                .entry((w[0].0.clone(), w[1].0.clone()))
                .or_default()
                .push((*node, w[0].1, w[1].1));
        }
    }
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for ((from, to), nodes) in steps {
        let mut eligible: Vec<(Client, &str)> = Vec::new();
        for (node, r_start, next_start) in &nodes {
            for (client, (group, joined)) in joined_at.range((*node, 0)..=(*node, u64::MAX)) {
                if *joined <= *r_start && gone(client, *joined) >= *next_start {
                    eligible.push((*client, group.as_str()));
                }
            }
        }
        for (i, (a, group)) in eligible.iter().enumerate() {
            for (b, group_b) in eligible.iter().skip(i + 1) {
                if group != group_b || a.0 == b.0 {
                    continue;
                }
                let sa = delivered.get(&(*a, from.clone())).unwrap_or(&empty);
                let sb = delivered.get(&(*b, from.clone())).unwrap_or(&empty);
                if sa != sb {
                    let only_a: Vec<_> = sa.difference(sb).take(3).collect();
                    let only_b: Vec<_> = sb.difference(sa).take(3).collect();
                    out.push(violation(
                        "virtual_synchrony",
                        format!(
                            "clients {a:?} and {b:?} of {group:?} went {from} -> {to} having \
                             delivered different messages in {from}: only {a:?}: {only_a:?}, \
                             only {b:?}: {only_b:?}"
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// A client that stays alive and joined receives its own messages.
pub fn self_delivery(trace: &[TraceEntry]) -> Vec<Violation> {
    let delivered: BTreeSet<(u32, u64, &str)> = trace
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Deliver {
                node,
                conn,
                message,
                ..
            } => Some((*node, *conn, message.as_str())),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (i, e) in trace.iter().enumerate() {
        let TraceEvent::Call {
            node,
            conn,
            call: "mcast",
            message: Some(m),
            result,
        } = &e.event
        else {
            continue;
        };
        if result != "CS_OK" {
            continue;
        }
        let ended = trace[i..].iter().any(|later| match &later.event {
            TraceEvent::Crash { node: n } => n == node,
            TraceEvent::Call {
                node: n,
                conn: c,
                call: "leave" | "finalize",
                ..
            } => n == node && c == conn,
            _ => false,
        });
        if !ended && !delivered.contains(&(*node, *conn, m.as_str())) {
            out.push(violation(
                "self_delivery",
                format!("{m} never came back to its sender"),
            ));
        }
    }
    out
}

/// Every node that installs a ring installs it with the same members.
pub fn membership_agreement(trace: &[TraceEntry]) -> Vec<Violation> {
    let mut seen: BTreeMap<&str, (&Vec<u32>, u32)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in trace {
        if let TraceEvent::Totem {
            node,
            kind: "regular",
            ring,
            members,
            ..
        } = &e.event
        {
            match seen.get(ring.as_str()) {
                Some((first, by)) if *first != members => out.push(violation(
                    "membership_agreement",
                    format!("ring {ring}: node {by} installed {first:?}, node {node} {members:?}"),
                )),
                Some(_) => {}
                None => {
                    seen.insert(ring.as_str(), (members, *node));
                }
            }
        }
    }
    out
}

/// After faults stop: every live node is operational on one ring made of all live nodes.
pub fn liveness(sim: &Sim) -> Vec<Violation> {
    let alive = sim.alive();
    let mut out = Vec::new();
    let mut rings = BTreeSet::new();
    for id in &alive {
        let Some(node) = sim.node(*id) else { continue };
        rings.insert(node.ring_id());
        if node.state() != MembState::Operational {
            out.push(violation(
                "liveness",
                format!("node {id} is in {:?}", node.state()),
            ));
        } else if node.members() != alive.as_slice() {
            out.push(violation(
                "liveness",
                format!(
                    "node {id} has members {:?}, live nodes are {alive:?}",
                    node.members()
                ),
            ));
        }
        if node.syncing() {
            out.push(violation("liveness", format!("node {id} is still syncing")));
        }
    }
    if rings.len() > 1 {
        out.push(violation(
            "liveness",
            format!("live nodes are on {} rings: {rings:?}", rings.len()),
        ));
    }
    out
}
