//! The invariant checks of a scenario run: the conformance runner's backend-neutral [`Trace`]
//! mapped into `totem-check`'s neutral trace, and the shared checkers run over it under the
//! conformance rules (configurations are the CPG views a client sees). They run on every
//! scenario and every backend (corosync, sim, native, mixed) alike, and are the same
//! functions the simulator's sweep runs. EVS handles are mapped apart, with the
//! simulator's EVS rules ([`evs`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use totem_check::{self as shared, Fact, Rules};
use totem_wire::exec::cpg::unescape_name;

use crate::trace::{Addr, EventKind, Trace};

/// The checks, by the names scenarios disable them with (`checks.disable`).
pub use totem_check::Check as CheckName;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub check: CheckName,
    pub message: String,
}

/// Runs every checker not in `disabled`: over the CPG handles, then over the EVS handles
/// (module [`evs`]).
pub fn run_all(trace: &Trace, disabled: &BTreeSet<CheckName>) -> Vec<Violation> {
    let mut out = run_cpg(trace, disabled);
    out.extend(evs::run(trace, disabled));
    out
}

fn run_cpg(trace: &Trace, disabled: &BTreeSet<CheckName>) -> Vec<Violation> {
    let neutral = neutral_trace(trace);
    let mut out = Vec::new();
    for c in CheckName::ALL {
        if disabled.contains(&c) {
            continue;
        }
        let found = shared::check(&neutral, &Rules::CONFORMANCE, c);
        // Cap per checker: one broken run must not produce a report of millions of lines.
        let total = found.len();
        out.extend(found.into_iter().take(20).map(|v| Violation {
            check: c,
            message: v.detail,
        }));
        if total > 20 {
            out.push(Violation {
                check: c,
                message: format!("... and {} more", total - 20),
            });
        }
    }
    out
}

/// A trace's group name (escaped, as traces write it) as the bytes it names.
fn group_bytes(group: &str) -> Vec<u8> {
    unescape_name(group).unwrap_or_else(|_| group.as_bytes().to_vec())
}

fn members(list: &[Addr]) -> Vec<shared::Member> {
    list.iter()
        .map(|a| shared::Member {
            node: a.nodeid,
            pid: a.pid,
            reason: a.reason.clone(),
        })
        .collect()
}

/// The runner's trace as the shared checkers see it. A client is an agent's handle
/// (`agent.handle`), with the node and pid its agent reported at start; it is a member from
/// the first confchg of its that lists its own pid as joined; its end is a successful
/// finalize, its agent's exit or watchdog, or a `stop_node`/`kill_node` step of its node.
/// Messages carry the header `tag`, `seq` (key `tag#seq`, sender label `tag`); a message too
/// short for the header is known by its pid and digest, the k-th such delivery to a handle
/// being the k-th message (`plain:pid:digest:k`).
pub fn neutral_trace(trace: &Trace) -> shared::Trace {
    let pids = trace.client_pids();
    let mut nodes: BTreeMap<&str, u32> = BTreeMap::new();
    // Every handle any event names, first, so that an agent's end reaches all its handles.
    let mut handles: BTreeMap<(&str, &str), ()> = BTreeMap::new();
    for e in &trace.events {
        match &e.kind {
            EventKind::ClientStarted { node, .. } => {
                nodes.insert(&e.client, *node);
            }
            // EVS handles are another API's (checked by `evs`).
            EventKind::Result { .. } if e.kind.is_evs() || e.kind.is_svc() => {}
            EventKind::Confchg { handle, .. }
            | EventKind::Deliver { handle, .. }
            | EventKind::Result { handle, .. }
            | EventKind::TotemConfchg { handle, .. } => {
                handles.insert((&e.client, handle), ());
            }
            _ => {}
        }
    }
    let mut out = shared::Trace::default();
    let ids: BTreeMap<(&str, &str), shared::ClientId> = handles
        .keys()
        .map(|&(client, handle)| {
            let id = out.add_client(shared::Client {
                name: format!("{client}.{handle}"),
                node: nodes.get(client).copied().unwrap_or(0),
                pid: pids.get(client).copied(),
            });
            ((client, handle), id)
        })
        .collect();
    let of_agent = |client: &str| -> Vec<shared::ClientId> {
        ids.range((client, "")..)
            .take_while(|((c, _), _)| *c == client)
            .map(|(_, id)| *id)
            .collect()
    };
    let mut plain_seen: HashMap<(shared::ClientId, u32, &str), usize> = HashMap::new();
    for e in &trace.events {
        let t = e.t_us as i64;
        let id = |handle: &str| ids[&(e.client.as_str(), handle)];
        match &e.kind {
            EventKind::ClientExited { .. } | EventKind::Watchdog { .. } => {
                for client in of_agent(&e.client) {
                    out.push(t, Fact::ClientEnded { client });
                }
            }
            EventKind::Step { text, .. } => {
                if let Some(node) = node_stopped(text) {
                    out.push(t, Fact::NodeEnded { node });
                }
            }
            EventKind::Result {
                cmd, handle, rc, ..
            } if (cmd == "finalize" || cmd == "leave") && rc.as_deref() == Some("CS_OK") => {
                let client = id(handle);
                out.push(
                    t,
                    if cmd == "finalize" {
                        Fact::ClientEnded { client }
                    } else {
                        Fact::Left { client }
                    },
                );
            }
            EventKind::Result {
                cmd,
                handle,
                rc,
                fields,
                ..
            } if cmd == "mcast" || cmd == "zcb_mcast" => {
                let client = id(handle);
                let tag = fields
                    .get("tag")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
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
                // A batch's digest is of one message: only a single send has its content.
                let digest = if n == 1 { digest } else { None };
                match first {
                    Some(first) => {
                        for seq in first..first + n {
                            out.push(
                                t,
                                Fact::Sent {
                                    client,
                                    message: Some(shared::Message {
                                        key: format!("{tag}#{seq}"),
                                        numbered: Some((tag.to_owned(), seq)),
                                    }),
                                    len: Some(size),
                                    digest: digest.clone(),
                                },
                            );
                        }
                    }
                    None if digest.is_some() => out.push(
                        t,
                        Fact::Sent {
                            client,
                            message: None,
                            len: Some(size),
                            digest,
                        },
                    ),
                    None => {}
                }
            }
            EventKind::Confchg {
                handle,
                group,
                members: current,
                left,
                joined,
            } => {
                let client = id(handle);
                out.push(
                    t,
                    Fact::Confchg {
                        client,
                        group: group_bytes(group),
                        members: current.iter().map(|a| (a.nodeid, a.pid)).collect(),
                        left: members(left),
                        joined: members(joined),
                    },
                );
                let pid = pids.get(&e.client).copied();
                if joined.iter().any(|a| Some(a.pid) == pid) {
                    out.push(t, Fact::Joined { client });
                }
            }
            EventKind::Deliver {
                handle,
                pid,
                len,
                digest,
                tag,
                seq,
                intact,
                ..
            } => {
                let client = id(handle);
                let message = match (tag, seq) {
                    (Some(tag), Some(seq)) => shared::Message {
                        key: format!("{tag}#{seq}"),
                        numbered: Some((tag.clone(), *seq)),
                    },
                    _ => {
                        let k = plain_seen.entry((client, *pid, digest)).or_insert(0);
                        *k += 1;
                        shared::Message {
                            key: format!("plain:{pid}:{digest}:{k}"),
                            numbered: None,
                        }
                    }
                };
                out.push(
                    t,
                    Fact::Delivered {
                        client,
                        message,
                        sender_pid: Some(*pid),
                        len: Some(*len),
                        digest: Some(digest.clone()),
                        intact: *intact,
                        ring: None,
                    },
                );
            }
            EventKind::TotemConfchg {
                handle,
                ring_nodeid,
                ring_seq,
                members,
            } => out.push(
                t,
                Fact::Ring {
                    node: nodes.get(e.client.as_str()).copied().unwrap_or(0),
                    observer: format!("{}.{handle}", e.client),
                    ring: format!("{ring_nodeid}.{ring_seq}"),
                    members: members.clone(),
                },
            ),
            _ => {}
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

pub mod evs;

#[cfg(test)]
mod tests;
