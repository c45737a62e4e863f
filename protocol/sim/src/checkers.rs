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
    /// `Some(why)` when corosync 3.1.7 breaks the property the same way: `why` names the
    /// corosync function whose behaviour it is. Such a violation is still a violation (it is
    /// reported and counted), but not a bug of ours.
    pub corosync_equivalent: Option<&'static str>,
}

impl Violation {
    /// Marks the violation as corosync's own behaviour.
    pub fn corosync_equivalent(mut self, why: &'static str) -> Violation {
        self.corosync_equivalent = Some(why);
        self
    }
}

/// Family A of known-failures.txt: what corosync 3.1.7 does with a totempg message cut
/// across a ring change.
pub const TOTEMPG_CUT_ACROSS_RING_CHANGE: &str = "totempg.c totempg_deliver_fn: the message's \
    first piece went out on a ring its sender was on earlier, the rest on a later one \
    (totemsrp keeps new_message_queue, totempg its staged fragment, across ring changes); a \
    node without the first piece (it never installed that ring, it restarted since and \
    started with empty assembly lists, or app_confchg_fn freed the piece when a \
    configuration change listed the sender as left) throws the continuation away in \
    throw-away mode, while the sender's own assembly completes it";

/// The assembler's reason for a continuation it has no start for (`totempg_deliver_fn`).
const CONTINUATION_WITHOUT_START: &str = "continuation of a message whose start was lost";

/// The assembler's reason for a left node's unfinished message (`app_confchg_fn`).
const SENDER_LEFT: &str = "sender left the configuration";

/// Family B of known-failures.txt: corosync 3.1.7's JOIN ping-pong.
pub const JOIN_PING_PONG: &str = "totemsrp.c memb_join_process: two gathering nodes whose \
    failed lists are incomparable, that name neither of them, and that were not on one ring \
    (failures are taken over only from my_memb_list) answer each other's JOINs for ever: \
    every JOIN that is no subset re-enters memb_state_gather_enter, which restarts the \
    consensus timer even though nothing merged";

type Client = (u32, u64);
/// A node's step between two rings: (node, when the first began, when the second began).
type RingStep = (u32, i64, i64);

fn violation(checker: &'static str, detail: String) -> Violation {
    Violation {
        checker,
        detail,
        corosync_equivalent: None,
    }
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
    // node -> when its daemon (re)started: a new process, whose totempg holds no assembly.
    let mut starts: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    // (node, sender, ring) -> when totempg first threw away a continuation for want of its
    // start there.
    let mut discards: BTreeMap<(u32, u32, String), i64> = BTreeMap::new();
    // (node, sender) -> when the node freed the sender's unfinished message because the
    // sender left its configuration (app_confchg_fn).
    let mut freed: BTreeMap<(u32, u32), Vec<i64>> = BTreeMap::new();
    // (sender, first ring, last ring) of every message some node assembled across rings.
    let mut across: BTreeSet<(u32, String, String)> = BTreeSet::new();
    // (node, ring) -> when the node installed the regular ring.
    let mut installed: BTreeMap<(u32, String), i64> = BTreeMap::new();
    for e in trace {
        match &e.event {
            TraceEvent::Totem {
                node,
                kind: "regular",
                ring,
                ..
            } => {
                installed.entry((*node, ring.clone())).or_insert(e.time_us);
                rings
                    .entry(*node)
                    .or_default()
                    .push((ring.clone(), e.time_us));
            }
            TraceEvent::TotempgAcrossRings {
                from_node,
                first_ring,
                last_ring,
                ..
            } => {
                across.insert((*from_node, first_ring.clone(), last_ring.clone()));
            }
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
            TraceEvent::Start { node, .. } => starts.entry(*node).or_default().push(e.time_us),
            TraceEvent::TotempgDiscard {
                node,
                from_node,
                ring,
                reason,
                ..
            } => {
                if *reason == CONTINUATION_WITHOUT_START {
                    discards
                        .entry((*node, *from_node, ring.clone()))
                        .or_insert(e.time_us);
                } else if *reason == SENDER_LEFT {
                    freed
                        .entry((*node, *from_node))
                        .or_default()
                        .push(e.time_us);
                }
            }
            _ => {}
        }
    }
    // A message one client lacks in ring R is corosync's own loss (family A) when the
    // sender cut it across rings — its first piece came on a ring R0, the rest on R — and the
    // lacking node, without the first piece, threw the continuation away in R: it never
    // installed R0, it restarted after installing R0 (a new corosync process starts with
    // empty assembly lists: totempg_initialize), or it freed the piece when a configuration
    // change after R0 listed the sender as left.
    let explained = |lacking: u32, messages: &BTreeSet<&&str>, ring: &str| {
        messages.iter().all(|m| {
            sender_of(m).is_some_and(|((sender, _), _)| {
                let Some(thrown) = discards.get(&(lacking, sender, ring.to_string())) else {
                    return false;
                };
                across.iter().any(|(s, first, last)| {
                    *s == sender
                        && last == ring
                        && match installed.get(&(lacking, first.clone())) {
                            None => true,
                            Some(since) => {
                                freed
                                    .get(&(lacking, sender))
                                    .is_some_and(|t| t.iter().any(|t| since <= t && t <= thrown))
                                    || starts
                                        .get(&lacking)
                                        .is_some_and(|t| t.iter().any(|t| since < t && t <= thrown))
                            }
                        }
                })
            })
        })
    };
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
                    let only_a: BTreeSet<_> = sa.difference(sb).collect();
                    let only_b: BTreeSet<_> = sb.difference(sa).collect();
                    let mut v = violation(
                        "virtual_synchrony",
                        format!(
                            "clients {a:?} and {b:?} of {group:?} went {from} -> {to} having \
                             delivered different messages in {from}: only {a:?}: {:?}, \
                             only {b:?}: {:?}",
                            only_a.iter().take(3).collect::<Vec<_>>(),
                            only_b.iter().take(3).collect::<Vec<_>>(),
                        ),
                    );
                    if explained(b.0, &only_a, &from) && explained(a.0, &only_b, &from) {
                        v = v.corosync_equivalent(TOTEMPG_CUT_ACROSS_RING_CHANGE);
                    }
                    out.push(v);
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

/// Pairs of live nodes caught in corosync's JOIN ping-pong ([`JOIN_PING_PONG`]): both
/// gather, can hear each other, and each re-enters Gather on the other's JOIN without any
/// list changing (`memb_join_process`'s last branch with nothing to merge).
pub fn join_ping_pong(sim: &Sim) -> Vec<(u32, u32)> {
    let gathering: Vec<(u32, &totem_srp::membership::Membership)> = sim
        .alive()
        .into_iter()
        .filter_map(|id| {
            let node = sim.node(id)?;
            (node.state() == MembState::Gather).then(|| (id, node.membership()))
        })
        .collect();
    // a answers b's JOIN by re-entering Gather, changing nothing.
    let answers = |a: &totem_srp::membership::Membership, b: &totem_srp::membership::Membership| {
        a.proc_list.contains_all(b.proc_list.as_slice())
            && !a.failed_list.contains_all(b.failed_list.as_slice())
            && !a.failed_list.contains(b.my_id)
            && !b.failed_list.contains(a.my_id)
            && !a.memb_list.contains(b.my_id)
    };
    let mut out = Vec::new();
    for (i, (a, ma)) in gathering.iter().enumerate() {
        for (b, mb) in gathering.iter().skip(i + 1) {
            if !sim.link_cut(*a, *b) && !sim.link_cut(*b, *a) && answers(ma, mb) && answers(mb, ma)
            {
                out.push((*a, *b));
            }
        }
    }
    out
}

/// Marks what a JOIN ping-pong explains as corosync's behaviour: a run that ends with one
/// ([`join_ping_pong`]) cannot converge, so its liveness and datagram-budget violations and
/// the lost self-deliveries of the nodes not operational at the end are corosync's too. That
/// includes a node caught in Commit or Recovery, not only the gathering ones: the pair's JOIN
/// storm fills every node's socket (sim.rs RX_BURST; the kernel drops the rest), so a node
/// outside the pair loses its own tokens and sync messages and each ring it forms breaks
/// before its sync completes, until the storm exhausts the datagram budget and ends the run
/// wherever that node is. Seed 8538: node 1 installed singleton rings at 22.1 s and 25.9 s,
/// lost the token in both before sync completed, and was in Recovery (entered 0.5 s before)
/// when nodes 2-5's ping-pong ran out the budget at 28.6 s.
pub fn classify_join_ping_pong(sim: &Sim, violations: &mut [Violation]) {
    let pairs = join_ping_pong(sim);
    if pairs.is_empty() {
        return;
    }
    let stuck: BTreeSet<u32> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let not_operational: BTreeSet<u32> = sim
        .alive()
        .into_iter()
        .filter(|id| {
            sim.node(*id)
                .is_some_and(|n| n.state() != MembState::Operational)
        })
        .collect();
    for v in violations.iter_mut() {
        let explained = match v.checker {
            "liveness" | "datagram_budget" => true,
            "self_delivery" => v
                .detail
                .split_whitespace()
                .next()
                .and_then(sender_of)
                .is_some_and(|((node, _), _)| not_operational.contains(&node)),
            _ => false,
        };
        if explained {
            v.corosync_equivalent = Some(JOIN_PING_PONG);
            if v.checker == "datagram_budget" {
                v.detail = format!("{} (JOIN ping-pong between nodes {stuck:?})", v.detail);
            }
        }
    }
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
