//! Invariant checkers over a run's trace (TigerBeetle's state checker, stateright's
//! expectations). Each names the property and what broke it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;
use totem_check::{self as check, Check, Fact, Rules};
use totem_srp::MembState;
use totem_wire::exec::cpg::unescape_name;

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

/// The simulator's trace as the shared checkers (`totem-check`) see it. A client is a
/// connection of one daemon incarnation (`node`, `conn`); it is a member from its successful
/// join call (a mcast succeeds only once joined) and gone at any leave or finalize call or
/// its node's crash; deliveries carry the totem ring their node was on, and messages are the
/// ids `node.conn.seq` the simulator sends.
pub fn neutral_trace(trace: &[TraceEntry]) -> check::Trace {
    let mut out = check::Trace::default();
    let clients = add_clients(&mut out, trace, "", |e| match e {
        TraceEvent::Call { node, conn, .. }
        | TraceEvent::Confchg { node, conn, .. }
        | TraceEvent::Deliver { node, conn, .. } => Some((*node, *conn)),
        _ => None,
    });
    let members = |v: &[(u32, u32, String)]| {
        v.iter()
            .map(|(node, pid, reason)| check::Member {
                node: *node,
                pid: *pid,
                reason: reason.clone(),
            })
            .collect()
    };
    for e in trace {
        let fact = match &e.event {
            TraceEvent::Call {
                node,
                conn,
                call,
                message: m,
                result,
            } => {
                let client = clients[&(*node, *conn)];
                match (*call, m) {
                    ("join", _) if result == "CS_OK" => Fact::Joined { client },
                    ("mcast", Some(m)) if result == "CS_OK" => sent(client, m),
                    ("leave", _) => Fact::Left { client },
                    ("finalize", _) => Fact::ClientEnded { client },
                    _ => continue,
                }
            }
            TraceEvent::Confchg {
                node,
                conn,
                group,
                members: current,
                left,
                joined,
            } => Fact::Confchg {
                client: clients[&(*node, *conn)],
                group: unescape_name(group).unwrap_or_else(|_| group.as_bytes().to_vec()),
                members: current.clone(),
                left: members(left),
                joined: members(joined),
            },
            TraceEvent::Deliver {
                node,
                conn,
                message: m,
                ring,
                ..
            } => delivered(clients[&(*node, *conn)], m, ring),
            other => match node_fact(other) {
                Some(fact) => fact,
                None => continue,
            },
        };
        out.push(e.time_us, fact);
    }
    out
}

/// Adds the clients `pick` finds in `trace` to `out`, in (node, conn) order (the order the
/// checkers compare and report them in), named `{prefix}(node, conn)`.
fn add_clients(
    out: &mut check::Trace,
    trace: &[TraceEntry],
    prefix: &str,
    pick: impl Fn(&TraceEvent) -> Option<Client>,
) -> BTreeMap<Client, check::ClientId> {
    let mut clients: BTreeMap<Client, check::ClientId> = trace
        .iter()
        .filter_map(|e| pick(&e.event))
        .map(|c| (c, 0))
        .collect();
    for (&(node, conn), id) in clients.iter_mut() {
        *id = out.add_client(check::Client {
            name: format!("{prefix}({node}, {conn})"),
            node,
            pid: None,
        });
    }
    clients
}

/// A message the simulator sent: its id `node.conn.seq`, numbered by sender.
fn sim_message(m: &str) -> check::Message {
    check::Message {
        key: m.to_owned(),
        numbered: sender_of(m).map(|((node, conn), seq)| (format!("{node}.{conn}"), seq)),
    }
}

/// `client` sent message `m`.
fn sent(client: check::ClientId, m: &str) -> Fact {
    Fact::Sent {
        client,
        message: Some(sim_message(m)),
        len: None,
        digest: None,
    }
}

/// `client` was delivered message `m` on `ring`.
fn delivered(client: check::ClientId, m: &str, ring: &str) -> Fact {
    Fact::Delivered {
        client,
        message: sim_message(m),
        sender_pid: None,
        len: None,
        digest: None,
        intact: None,
        ring: Some(ring.to_owned()),
    }
}

/// What a node-level event tells every client's checks: a crash ends its clients, a
/// regular configuration is a ring.
fn node_fact(event: &TraceEvent) -> Option<Fact> {
    match event {
        TraceEvent::Crash { node } => Some(Fact::NodeEnded { node: *node }),
        TraceEvent::Totem {
            node,
            kind: "regular",
            ring,
            members,
            ..
        } => Some(Fact::Ring {
            node: *node,
            observer: format!("node {node}"),
            ring: ring.clone(),
            members: members.clone(),
        }),
        _ => None,
    }
}

fn from_shared(v: check::Violation) -> Violation {
    violation(v.check.as_str(), v.detail)
}

/// Every safety checker over `trace`: the shared ones under the simulator's rules, with
/// virtual synchrony's corosync-equivalent losses classified.
pub fn check_safety(trace: &[TraceEntry]) -> Vec<Violation> {
    safety_over(trace, &neutral_trace(trace))
}

/// The shared checkers over `neutral` (made from `trace`) under the simulator's rules, in
/// the order they report, with virtual synchrony's corosync-equivalent losses classified.
fn safety_over(trace: &[TraceEntry], neutral: &check::Trace) -> Vec<Violation> {
    let shared = |which: Check| {
        check::check(neutral, &Rules::SIMULATOR, which)
            .into_iter()
            .map(from_shared)
    };
    let mut v = Vec::new();
    for which in [
        Check::NoDuplicates,
        Check::NoInvented,
        Check::Fifo,
        Check::AgreedOrder,
    ] {
        v.extend(shared(which));
    }
    v.extend(classified_virtual_synchrony(trace, neutral));
    for which in [Check::SelfDelivery, Check::TotemRings] {
        v.extend(shared(which));
    }
    v
}

/// The shared virtual-synchrony checker over totem rings, each violation marked
/// corosync-equivalent when family A ([`TOTEMPG_CUT_ACROSS_RING_CHANGE`]) explains it.
pub fn virtual_synchrony(trace: &[TraceEntry]) -> Vec<Violation> {
    classified_virtual_synchrony(trace, &neutral_trace(trace))
}

fn classified_virtual_synchrony(trace: &[TraceEntry], neutral: &check::Trace) -> Vec<Violation> {
    // The totempg facts family A is read from; they are the simulator's alone (corosync
    // reports none of them), so they stay out of the neutral trace.
    // node -> when its daemon (re)started: a new process, whose totempg holds no assembly.
    let mut starts: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    // (node, sender, ring) -> when totempg first threw away a continuation for want of its
    // start there.
    let mut discards: BTreeMap<(u32, u32, &str), i64> = BTreeMap::new();
    // (node, sender) -> when the node freed the sender's unfinished message because the
    // sender left its configuration (app_confchg_fn).
    let mut freed: BTreeMap<(u32, u32), Vec<i64>> = BTreeMap::new();
    // (node, sender) -> when a configuration change of the node listed the sender as left:
    // app_confchg_fn frees the sender's assembly then whether or not it held a piece, so
    // afterwards the node has no start for a message the sender began before.
    let mut left_conf: BTreeMap<(u32, u32), Vec<i64>> = BTreeMap::new();
    // (sender, first ring, last ring) of every message some node assembled across rings.
    let mut across: BTreeSet<(u32, &str, &str)> = BTreeSet::new();
    // (node, ring) -> when the node installed the regular ring.
    let mut installed: BTreeMap<(u32, &str), i64> = BTreeMap::new();
    for e in trace {
        match &e.event {
            TraceEvent::Totem {
                node,
                kind: "regular",
                ring,
                ..
            } => {
                installed.entry((*node, ring)).or_insert(e.time_us);
            }
            TraceEvent::Totem { node, left, .. } => {
                for sender in left {
                    left_conf
                        .entry((*node, *sender))
                        .or_default()
                        .push(e.time_us);
                }
            }
            TraceEvent::TotempgAcrossRings {
                from_node,
                first_ring,
                last_ring,
                ..
            } => {
                across.insert((*from_node, first_ring, last_ring));
            }
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
                        .entry((*node, *from_node, ring))
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
    // empty assembly lists: totempg_initialize), or a configuration change after R0 listed
    // the sender as left (app_confchg_fn -> assembly_deref_from_normal_and_trans frees
    // whatever the node held of the sender, which may be nothing: a node cut off before the
    // first piece reached it never held it).
    let explained = |lacking: u32, messages: &[String], ring: &str| {
        messages.iter().all(|m| {
            sender_of(m).is_some_and(|((sender, _), _)| {
                let Some(thrown) = discards.get(&(lacking, sender, ring)) else {
                    return false;
                };
                across.iter().any(|(s, first, last)| {
                    *s == sender
                        && *last == ring
                        && match installed.get(&(lacking, *first)) {
                            None => true,
                            Some(since) => {
                                freed
                                    .get(&(lacking, sender))
                                    .is_some_and(|t| t.iter().any(|t| since <= t && t <= thrown))
                                    || left_conf
                                        .get(&(lacking, sender))
                                        .is_some_and(|t| t.iter().any(|t| since < t && t <= thrown))
                                    || starts
                                        .get(&lacking)
                                        .is_some_and(|t| t.iter().any(|t| since < t && t <= thrown))
                            }
                        }
                })
            })
        })
    };
    check::virtual_synchrony(neutral, &Rules::SIMULATOR)
        .into_iter()
        .map(|d| {
            let (a, b) = (neutral.clients[d.a].node, neutral.clients[d.b].node);
            let v = from_shared(d.violation(neutral));
            if explained(b, &d.only_a, &d.from) && explained(a, &d.only_b, &d.from) {
                v.corosync_equivalent(TOTEMPG_CUT_ACROSS_RING_CHANGE)
            } else {
                v
            }
        })
        .collect()
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

// ---- EVS (docs/evs.md; our extension) -------------------------------------------------------

/// The simulator's EVS events as the shared checkers see them. A client is an EVS connection
/// of one daemon incarnation. EVS has no group views (EVS-CODE-4), so a successful join call
/// stands for the client's first view: [`Fact::Joined`] plus a [`Fact::Confchg`] naming the
/// keys it joined (EVS-JOIN-4: it is owed what is delivered from then on); a client is
/// compared with others joined to the same keys, so a test joins each connection once. Its
/// sends (both mcasts) are owed back to it, so a test sends only to keys the sender joined
/// (EVS-OVW-25). Leave, finalize and crash end it; configurations are the totem rings, and
/// messages the ids `node.conn.seq` the simulator sends.
pub fn evs_neutral_trace(trace: &[TraceEntry]) -> check::Trace {
    let mut out = check::Trace::default();
    let clients = add_clients(&mut out, trace, "evs ", |e| match e {
        TraceEvent::EvsCall { node, conn, .. }
        | TraceEvent::EvsConfchg { node, conn, .. }
        | TraceEvent::EvsDeliver { node, conn, .. } => Some((*node, *conn)),
        _ => None,
    });
    for e in trace {
        let facts = match &e.event {
            TraceEvent::EvsCall {
                node,
                conn,
                call,
                groups,
                message: m,
                result,
            } => {
                let client = clients[&(*node, *conn)];
                match (*call, m) {
                    ("join", _) if result == "CS_OK" => vec![
                        Fact::Joined { client },
                        Fact::Confchg {
                            client,
                            group: groups.join("\n").into_bytes(),
                            members: Vec::new(),
                            left: Vec::new(),
                            joined: Vec::new(),
                        },
                    ],
                    ("mcast_joined" | "mcast_groups", Some(m)) if result == "CS_OK" => {
                        vec![sent(client, m)]
                    }
                    ("leave", _) => vec![Fact::Left { client }],
                    ("finalize", _) => vec![Fact::ClientEnded { client }],
                    _ => continue,
                }
            }
            TraceEvent::EvsDeliver {
                node,
                conn,
                message: m,
                ring,
                ..
            } => vec![delivered(clients[&(*node, *conn)], m, ring)],
            other => match node_fact(other) {
                Some(fact) => vec![fact],
                None => continue,
            },
        };
        for fact in facts {
            out.push(e.time_us, fact);
        }
    }
    out
}

/// Every safety checker over the EVS events of `trace`: the shared ones under the
/// simulator's rules (virtual synchrony over totem rings, its corosync-equivalent losses
/// classified as for CPG), and [`evs_confchgs`].
pub fn check_evs_safety(trace: &[TraceEntry]) -> Vec<Violation> {
    let mut v = safety_over(trace, &evs_neutral_trace(trace));
    v.extend(evs_confchgs(trace));
    v
}

/// EVS configurations are the node's totem configurations (docs/evs.md §5): a connection
/// gets, in order, its node's last configuration when it connects (EVS-CODE-1) and then
/// every transitional and regular configuration of its node (EVS-CODE-2), each with the
/// node's lists, until it is finalized or its node ends.
pub fn evs_confchgs(trace: &[TraceEntry]) -> Vec<Violation> {
    type Config = (&'static str, String, Vec<u32>, Vec<u32>, Vec<u32>);
    let mut last: BTreeMap<u32, Config> = BTreeMap::new();
    let mut owed: BTreeMap<Client, VecDeque<Config>> = BTreeMap::new();
    let mut out = Vec::new();
    for e in trace {
        match &e.event {
            TraceEvent::Totem {
                node,
                kind,
                ring,
                members,
                left,
                joined,
            } => {
                let config = (
                    *kind,
                    ring.clone(),
                    members.clone(),
                    left.clone(),
                    joined.clone(),
                );
                for ((n, _), q) in owed.iter_mut() {
                    if n == node {
                        q.push_back(config.clone());
                    }
                }
                last.insert(*node, config);
            }
            TraceEvent::Start { node, .. } => {
                last.remove(node);
            }
            TraceEvent::Crash { node } => {
                last.remove(node);
                owed.retain(|(n, _), _| n != node);
            }
            TraceEvent::EvsCall {
                node, conn, call, ..
            } => match *call {
                "connect" => {
                    owed.insert(
                        (*node, *conn),
                        last.get(node).cloned().into_iter().collect(),
                    );
                }
                "finalize" => {
                    if let Some(q) = owed.remove(&(*node, *conn)) {
                        if !q.is_empty() {
                            out.push(violation(
                                "evs_confchgs",
                                format!("({node}, {conn}) finalized owed {q:?}"),
                            ));
                        }
                    }
                }
                _ => {}
            },
            TraceEvent::EvsConfchg {
                node,
                conn,
                kind,
                ring,
                members,
                left,
                joined,
            } => {
                let got = (
                    *kind,
                    ring.clone(),
                    members.clone(),
                    left.clone(),
                    joined.clone(),
                );
                let expected = owed.get_mut(&(*node, *conn)).and_then(VecDeque::pop_front);
                if expected.as_ref() != Some(&got) {
                    out.push(violation(
                        "evs_confchgs",
                        format!(
                            "({node}, {conn}) at {}: got {got:?}, expected {expected:?}",
                            e.time_us
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    for ((node, conn), q) in owed {
        if !q.is_empty() {
            out.push(violation(
                "evs_confchgs",
                format!("({node}, {conn}) never got {q:?}"),
            ));
        }
    }
    out
}
