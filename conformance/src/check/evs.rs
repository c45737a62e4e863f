//! EVS clients' deliveries and configurations (docs/evs.md) mapped into the shared checkers,
//! with the simulator's EVS reading (`totem_sim::checkers::evs_neutral_trace`): EVS has no
//! group views (EVS-CODE-4), so a handle's first successful `evs_join` stands for its first
//! view ([`Fact::Joined`] plus a [`Fact::Confchg`] naming its keys: EVS-JOIN-4, it is owed
//! what is delivered from then on); configurations are its node's totem rings, which an EVS
//! confchg names by its ring id (EVS-CODE-2, EVS-OVW-21), so virtual synchrony is checked
//! over rings, as the simulator checks it.
//!
//! Where the runner knows more than the simulator's mapping assumes, it says so: a send is
//! owed back to its sender only when the sender had joined one of the message's keys
//! (EVS-OVW-25, EVS-MG-2), and a handle is delivered only messages addressed to a key it
//! joined (EVS-OVW-22, EVS-JOIN-4: otherwise `no_invented`). A change of a handle's keys
//! after its first join ends its membership for the checkers (its later deliveries rightly
//! differ from its peers').

use std::collections::{BTreeMap, BTreeSet};

use totem_check::{self as shared, Check, Configurations, Fact, Rules, SelfDeliveryWindow};

use super::{node_stopped, Violation};
use crate::trace::{evs_confchg_regular, EventKind, Trace};

/// The conformance premises over EVS: configurations are totem rings (what an EVS confchg
/// names) and self delivery is owed until the first end, as for CPG scenarios. FIFO checks
/// the order only: a sender's next message may rightly skip a receiver (it went to keys the
/// receiver did not join, EVS-MG-2), so a gap is no fault; a lost message is caught by
/// virtual synchrony against the handles that got it, and by self delivery.
pub const EVS_RULES: Rules = Rules {
    configurations: Configurations::Rings,
    fifo_gaps: false,
    self_delivery: SelfDeliveryWindow::UntilFirstEnd,
};

/// The shared checks that apply to EVS (confchg lists are node lists without reasons:
/// [`confchg_lists`] stands for the CPG list checks).
const EVS_CHECKS: [Check; 7] = [
    Check::AgreedOrder,
    Check::VirtualSynchrony,
    Check::Fifo,
    Check::SelfDelivery,
    Check::NoDuplicates,
    Check::NoInvented,
    Check::TotemRings,
];

fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn u64_field(fields: &serde_json::Map<String, serde_json::Value>, k: &str) -> Option<u64> {
    fields.get(k).and_then(serde_json::Value::as_u64)
}

/// Which events are regular EVS confchgs ([`evs_confchg_regular`]).
fn regular_flags(trace: &Trace) -> Vec<bool> {
    evs_confchg_regular(&trace.events)
        .into_iter()
        .map(|r| r == Some(true))
        .collect()
}

/// A trace's EVS events as the shared checkers see them, and the addressing violations
/// found on the way.
pub fn evs_neutral_trace(trace: &Trace) -> (shared::Trace, Vec<String>) {
    let pids = trace.client_pids();
    let mut nodes: BTreeMap<&str, u32> = BTreeMap::new();
    let mut handles: BTreeSet<(&str, &str)> = BTreeSet::new();
    for e in &trace.events {
        match &e.kind {
            EventKind::ClientStarted { node, .. } => {
                nodes.insert(&e.client, *node);
            }
            EventKind::EvsConfchg { handle, .. }
            | EventKind::EvsDeliver { handle, .. }
            | EventKind::Result { handle, .. }
                if e.kind.is_evs() =>
            {
                handles.insert((&e.client, handle));
            }
            _ => {}
        }
    }
    let mut out = shared::Trace::default();
    let node_of = |client: &str| nodes.get(client).copied().unwrap_or(0);
    let mut ids: BTreeMap<(&str, &str), shared::ClientId> = BTreeMap::new();
    // A send not owed back (its sender joined none of its keys) comes from a client of its
    // own, which never joins.
    let mut unowed: BTreeMap<(&str, &str), shared::ClientId> = BTreeMap::new();
    for &(client, handle) in &handles {
        let c = shared::Client {
            name: format!("{client}.{handle}"),
            node: node_of(client),
            pid: pids.get(client).copied(),
        };
        ids.insert((client, handle), out.add_client(c.clone()));
        unowed.insert(
            (client, handle),
            out.add_client(shared::Client {
                name: format!("{} (sending to keys it has not joined)", c.name),
                ..c
            }),
        );
    }
    let regular = regular_flags(trace);
    // Per handle: its keys now, every key it ever joined, whether it has begun (its first
    // join), whether a key change ended it, and the ring of its last regular confchg.
    let mut keys: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    let mut ever: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    let mut begun: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut ring_of: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut rings_seen: BTreeSet<(u32, String)> = BTreeSet::new();
    // Message key -> its destination keys.
    let mut dest: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut addressing = Vec::new();
    for (i, e) in trace.events.iter().enumerate() {
        let t = e.t_us as i64;
        let client_name = e.client.as_str();
        match &e.kind {
            EventKind::ClientExited { .. } | EventKind::Watchdog { .. } => {
                for (&(c, _), id) in ids.range((e.client.as_str(), "")..) {
                    if c != e.client {
                        break;
                    }
                    out.push(t, Fact::ClientEnded { client: *id });
                }
            }
            EventKind::Step { text, .. } => {
                if let Some(node) = node_stopped(text) {
                    out.push(t, Fact::NodeEnded { node });
                }
            }
            EventKind::Result {
                cmd,
                handle,
                rc,
                fields,
                ..
            } if e.kind.is_evs() => {
                let h = (client_name, handle.as_str());
                let Some(&client) = ids.get(&h) else { continue };
                let rc = rc.as_deref().unwrap_or("");
                match cmd.as_str() {
                    "evs_finalize" if rc == "CS_OK" => out.push(t, Fact::ClientEnded { client }),
                    "evs_join" | "evs_leave" => {
                        let given = strings(fields.get("groups"));
                        let list = keys.entry(h).or_default();
                        let before = list.clone();
                        if cmd == "evs_join" && rc == "CS_OK" {
                            list.extend(given.iter().cloned());
                            ever.entry(h).or_default().extend(given);
                        } else if cmd == "evs_leave" && (rc == "CS_OK" || rc == "CS_ERR_NOT_EXIST")
                        {
                            // Each key removes one copy, in order; the first key not joined
                            // stops the call there (EVS-LEAVE-7).
                            for k in &given {
                                match list.iter().position(|x| x == k) {
                                    Some(p) => {
                                        list.remove(p);
                                    }
                                    None => break,
                                }
                            }
                        }
                        if *list == before {
                            continue;
                        }
                        if begun.contains(&h) {
                            out.push(t, Fact::Left { client });
                        } else if !list.is_empty() {
                            begun.insert(h);
                            let mut group: Vec<&String> = list.iter().collect();
                            group.sort();
                            group.dedup();
                            let group: Vec<&str> = group.iter().map(|s| s.as_str()).collect();
                            out.push(t, Fact::Joined { client });
                            out.push(
                                t,
                                Fact::Confchg {
                                    client,
                                    group: group.join("\n").into_bytes(),
                                    members: Vec::new(),
                                    left: Vec::new(),
                                    joined: Vec::new(),
                                },
                            );
                        }
                    }
                    "evs_mcast_joined" | "evs_mcast_groups" => {
                        let to: BTreeSet<String> = if cmd == "evs_mcast_groups" {
                            strings(fields.get("groups")).into_iter().collect()
                        } else {
                            keys.get(&h)
                                .cloned()
                                .unwrap_or_default()
                                .into_iter()
                                .collect()
                        };
                        let joined_now = keys.get(&h).cloned().unwrap_or_default();
                        let owed = joined_now.iter().any(|k| to.contains(k));
                        let sender = if owed { client } else { unowed[&h] };
                        let tag = fields
                            .get("tag")
                            .and_then(|v| v.as_str())
                            .unwrap_or_default();
                        let n = u64_field(fields, "sent").unwrap_or(0);
                        let digest = fields
                            .get("digest")
                            .and_then(|v| v.as_str())
                            .filter(|_| n == 1)
                            .map(str::to_owned);
                        if let Some(first) = u64_field(fields, "first_seq") {
                            for seq in first..first + n {
                                let key = format!("{tag}#{seq}");
                                dest.insert(key.clone(), to.clone());
                                out.push(
                                    t,
                                    Fact::Sent {
                                        client: sender,
                                        message: Some(shared::Message {
                                            key,
                                            numbered: Some((tag.to_owned(), seq)),
                                        }),
                                        len: u64_field(fields, "size"),
                                        digest: digest.clone(),
                                    },
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
            EventKind::EvsConfchg {
                handle,
                ring: Some(ring),
                members,
                ..
            } if regular[i] => {
                ring_of.insert((client_name, handle.as_str()), ring.clone());
                let node = node_of(&e.client);
                if rings_seen.insert((node, ring.clone())) {
                    out.push(
                        t,
                        Fact::Ring {
                            node,
                            observer: format!("{}.{handle}", e.client),
                            ring: ring.clone(),
                            members: members.clone(),
                        },
                    );
                }
            }
            EventKind::EvsDeliver {
                handle,
                len,
                digest,
                tag,
                seq,
                intact,
                ..
            } => {
                let h = (client_name, handle.as_str());
                let Some(&client) = ids.get(&h) else { continue };
                let message = match (tag, seq) {
                    (Some(tag), Some(seq)) => shared::Message {
                        key: format!("{tag}#{seq}"),
                        numbered: Some((tag.clone(), *seq)),
                    },
                    // Too short for the header: known by content (no_invented matches it).
                    _ => shared::Message {
                        key: format!("plain:{digest}:{i}"),
                        numbered: None,
                    },
                };
                if let Some(to) = dest.get(&message.key) {
                    let mine = ever.get(&h);
                    if !to.iter().any(|k| mine.is_some_and(|m| m.contains(k))) {
                        addressing.push(format!(
                            "{}.{handle}: {} was sent to keys {to:?}, none of which it joined",
                            e.client, message.key
                        ));
                    }
                }
                out.push(
                    t,
                    Fact::Delivered {
                        client,
                        message,
                        sender_pid: None,
                        len: Some(*len),
                        digest: Some(digest.clone()),
                        intact: *intact,
                        ring: ring_of.get(&h).cloned(),
                    },
                );
            }
            _ => {}
        }
    }
    (out, addressing)
}

/// An EVS handle's configurations are its node's (docs/evs.md §5): each transitional one
/// keeps the previous members minus `left` and joins nobody, each regular one is the
/// transitional members plus `joined` and loses nobody, and handles of one node that both
/// saw a ring saw it with the same lists.
pub fn confchg_lists(trace: &Trace) -> Vec<String> {
    let regular = regular_flags(trace);
    let mut out = Vec::new();
    let mut prev: BTreeMap<(&str, &str), BTreeSet<u32>> = BTreeMap::new();
    let mut by_node: BTreeMap<(u32, &str, bool), (&str, &Vec<u32>)> = BTreeMap::new();
    let nodes: BTreeMap<&str, u32> = trace
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ClientStarted { node, .. } => Some((e.client.as_str(), node)),
            _ => None,
        })
        .collect();
    for (i, e) in trace.events.iter().enumerate() {
        let EventKind::EvsConfchg {
            handle,
            ring,
            members,
            left,
            joined,
            ..
        } = &e.kind
        else {
            continue;
        };
        let who = format!("{}.{handle}", e.client);
        let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        let now = set(members);
        if let Some(before) = prev.get(&(e.client.as_str(), handle.as_str())) {
            let want = if regular[i] {
                before | &set(joined)
            } else {
                before - &set(left)
            };
            if now != want
                || (regular[i] && !left.is_empty())
                || (!regular[i] && !joined.is_empty())
            {
                out.push(format!(
                    "{who}: confchg members {members:?} left {left:?} joined {joined:?} after members {before:?}"
                ));
            }
        }
        if let Some(r) = ring {
            let node = nodes.get(e.client.as_str()).copied().unwrap_or(0);
            match by_node.get(&(node, r.as_str(), regular[i])) {
                Some((first, m)) if *m != members => out.push(format!(
                    "node {node} ring {r}: {first} saw members {m:?}, {who} saw {members:?}"
                )),
                Some(_) => {}
                None => {
                    by_node.insert((node, r.as_str(), regular[i]), (e.client.as_str(), members));
                }
            }
        }
        prev.insert((e.client.as_str(), handle.as_str()), now);
    }
    out
}

/// Every EVS check not in `disabled`, each violation marked `evs:`.
pub fn run(trace: &Trace, disabled: &BTreeSet<Check>) -> Vec<Violation> {
    let (neutral, addressing) = evs_neutral_trace(trace);
    if neutral.clients.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut push = |check: Check, list: Vec<String>| {
        let total = list.len();
        out.extend(list.into_iter().take(20).map(|m| Violation {
            check,
            message: format!("evs: {m}"),
        }));
        if total > 20 {
            out.push(Violation {
                check,
                message: format!("evs: ... and {} more", total - 20),
            });
        }
    };
    for c in EVS_CHECKS {
        if disabled.contains(&c) {
            continue;
        }
        let mut found: Vec<String> = shared::check(&neutral, &EVS_RULES, c)
            .into_iter()
            .map(|v| v.detail)
            .collect();
        if c == Check::NoInvented {
            found.extend(addressing.iter().cloned());
        }
        push(c, found);
    }
    if !disabled.contains(&Check::ConfchgConsistency) {
        push(Check::ConfchgConsistency, confchg_lists(trace));
    }
    out
}

#[cfg(test)]
mod tests {
    //! Hand-built EVS traces: a clean one passes, and each fault is named by its checker.

    use super::*;
    use crate::trace::Event;

    fn ev(t: u64, client: &str, kind: EventKind) -> Event {
        Event {
            t_us: t,
            client: client.into(),
            kind,
        }
    }

    fn started(client: &str, node: u32, pid: u32) -> Event {
        ev(0, client, EventKind::ClientStarted { node, pid })
    }

    fn result(t: u64, client: &str, cmd: &str, rc: &str, fields: serde_json::Value) -> Event {
        let serde_json::Value::Object(fields) = fields else {
            panic!("fields")
        };
        ev(
            t,
            client,
            EventKind::Result {
                id: None,
                cmd: cmd.into(),
                handle: "e1".into(),
                rc: Some(rc.into()),
                error: None,
                fields,
            },
        )
    }

    fn join(t: u64, client: &str, keys: &[&str]) -> Event {
        result(
            t,
            client,
            "evs_join",
            "CS_OK",
            serde_json::json!({ "groups": keys }),
        )
    }

    fn send(t: u64, client: &str, seq: u64, to: Option<&[&str]>) -> Event {
        let (cmd, mut f) = match to {
            Some(keys) => ("evs_mcast_groups", serde_json::json!({ "groups": keys })),
            None => ("evs_mcast_joined", serde_json::json!({})),
        };
        f["tag"] = format!("{client}.e1").into();
        f["first_seq"] = seq.into();
        f["sent"] = 1.into();
        f["size"] = 64.into();
        result(t, client, cmd, "CS_OK", f)
    }

    fn deliver(t: u64, client: &str, from: &str, seq: u64) -> Event {
        ev(
            t,
            client,
            EventKind::EvsDeliver {
                handle: "e1".into(),
                nodeid: 1,
                len: 64,
                digest: String::new(),
                tag: Some(format!("{from}.e1")),
                seq: Some(seq),
                intact: Some(true),
            },
        )
    }

    fn regular(t: u64, client: &str, ring: &str, members: &[u32]) -> Event {
        ev(
            t,
            client,
            EventKind::EvsConfchg {
                handle: "e1".into(),
                kind: Some("REGULAR".into()),
                ring: Some(ring.into()),
                members: members.to_vec(),
                left: Vec::new(),
                joined: Vec::new(),
            },
        )
    }

    fn transitional(t: u64, client: &str, ring: &str, members: &[u32], left: &[u32]) -> Event {
        ev(
            t,
            client,
            EventKind::EvsConfchg {
                handle: "e1".into(),
                kind: Some("TRANSITIONAL".into()),
                ring: Some(ring.into()),
                members: members.to_vec(),
                left: left.to_vec(),
                joined: Vec::new(),
            },
        )
    }

    fn checks(events: Vec<Event>) -> Vec<(Check, String)> {
        let trace = Trace {
            scenario: "t".into(),
            backend: "sim".into(),
            events,
        };
        run(&trace, &BTreeSet::new())
            .into_iter()
            .map(|v| (v.check, v.message))
            .collect()
    }

    /// a (node 1) and b (node 2) joined to g, c (node 2) to h; a sends to g twice, and once
    /// to h without having joined it.
    fn clean() -> Vec<Event> {
        vec![
            started("a", 1, 10),
            started("b", 2, 20),
            started("c", 2, 30),
            join(1, "a", &["g"]),
            join(1, "b", &["g"]),
            join(1, "c", &["h"]),
            // The ring began after the joins: virtual synchrony compares what came in it.
            regular(2, "a", "1.4", &[1, 2]),
            regular(2, "b", "1.4", &[1, 2]),
            regular(2, "c", "1.4", &[1, 2]),
            send(3, "a", 0, None),
            send(3, "a", 1, Some(&["h"])),
            send(3, "a", 2, None),
            deliver(4, "a", "a", 0),
            deliver(4, "b", "a", 0),
            deliver(4, "c", "a", 1),
            deliver(5, "a", "a", 2),
            deliver(5, "b", "a", 2),
            transitional(6, "a", "1.8", &[1], &[2]),
            regular(6, "a", "1.8", &[1]),
            transitional(6, "b", "2.8", &[2], &[1]),
            regular(6, "b", "2.8", &[2]),
        ]
    }

    #[test]
    fn a_clean_trace_passes() {
        assert_eq!(checks(clean()), Vec::new());
    }

    #[test]
    fn a_delivery_to_a_handle_not_joined_to_its_keys_is_invented() {
        let mut t = clean();
        t.push(deliver(7, "b", "a", 1));
        let v = checks(t);
        assert!(
            v.iter().any(|(c, m)| *c == Check::NoInvented
                && m.contains("b.e1")
                && m.contains("a.e1#1")),
            "{v:?}"
        );
    }

    #[test]
    fn a_joined_sender_is_owed_its_message_an_unjoined_one_is_not() {
        let t: Vec<Event> = clean()
            .into_iter()
            .filter(|e| {
                !(e.client == "a" && matches!(e.kind, EventKind::EvsDeliver { seq: Some(2), .. }))
            })
            .collect();
        let v = checks(t);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, Check::SelfDelivery);
        assert!(v[0].1.contains("a.e1#2"), "{v:?}");
    }

    #[test]
    fn handles_that_disagree_on_order_are_named() {
        let mut t = clean();
        t.extend([
            send(7, "b", 0, None),
            send(7, "a", 3, None),
            deliver(8, "a", "a", 3),
            deliver(8, "a", "b", 0),
            deliver(8, "b", "b", 0),
            deliver(8, "b", "a", 3),
        ]);
        let v = checks(t);
        assert!(
            v.iter()
                .any(|(c, m)| *c == Check::AgreedOrder && m.contains("a.e1") && m.contains("b.e1")),
            "{v:?}"
        );
    }

    #[test]
    fn handles_that_pass_together_to_a_new_ring_delivered_the_same() {
        // Both pass from ring 1.4 to 1.8 (nodes 1 and 2 together); b lacks a.e1#2.
        let mut t: Vec<Event> = clean()
            .into_iter()
            .filter(|e| {
                let lost =
                    e.client == "b" && matches!(e.kind, EventKind::EvsDeliver { seq: Some(2), .. });
                let partition = matches!(e.kind, EventKind::EvsConfchg { .. } if e.t_us == 6);
                !lost && !partition
            })
            .collect();
        t.extend([
            transitional(6, "a", "1.8", &[1, 2], &[]),
            regular(6, "a", "1.8", &[1, 2]),
            transitional(6, "b", "1.8", &[1, 2], &[]),
            regular(6, "b", "1.8", &[1, 2]),
        ]);
        let v = checks(t);
        assert!(
            v.iter()
                .any(|(c, m)| *c == Check::VirtualSynchrony && m.contains("a.e1#2")),
            "{v:?}"
        );
    }

    #[test]
    fn confchg_lists_must_follow_from_the_last() {
        let mut t = clean();
        t.push(transitional(9, "a", "1.12", &[1, 2], &[]));
        let v = checks(t);
        assert!(
            v.iter().any(|(c, _)| *c == Check::ConfchgConsistency),
            "{v:?}"
        );
    }

    #[test]
    fn the_kind_is_inferred_from_a_pair_sharing_a_ring() {
        let mut t = clean();
        for e in &mut t {
            if let EventKind::EvsConfchg { kind, .. } = &mut e.kind {
                *kind = None;
            }
        }
        assert_eq!(checks(t), Vec::new());
    }
}
