//! Evaluation of scenario conditions (`wait_until` and `expect`) over trace events.

use std::collections::BTreeMap;

use crate::scenario::raw::Condition;
use crate::trace::{evs_confchg_regular, same_group, Event, EventKind};

fn handle_or_default(h: Option<&String>) -> &str {
    h.map_or("h1", String::as_str)
}

/// EVS handles are named apart; a scenario's default is `e1`.
fn evs_handle_or_default(h: Option<&String>) -> &str {
    h.map_or("e1", String::as_str)
}

/// Number of events matching the condition's filters, and the count rule it asks for.
fn count(
    cond: &Condition,
    events: &[Event],
    pids: &BTreeMap<String, u32>,
) -> (usize, Option<usize>, usize) {
    match cond {
        Condition::Confchg(c) => {
            let h = handle_or_default(c.handle.as_ref());
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::Confchg {
                        handle,
                        group,
                        members,
                        left,
                        joined,
                    } => {
                        handle == h
                            && c.group.as_ref().is_none_or(|g| same_group(g, group))
                            && c.members.is_none_or(|m| m == members.len())
                            && c.joined
                                .as_ref()
                                .is_none_or(|r| joined.iter().any(|a| &a.reason == r))
                            && c.left
                                .as_ref()
                                .is_none_or(|r| left.iter().any(|a| &a.reason == r))
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, 1)
        }
        Condition::Delivered(c) => {
            let h = handle_or_default(c.handle.as_ref());
            let from_pid = c.from.as_ref().map(|f| pids.get(f).copied());
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::Deliver {
                        handle, pid, len, ..
                    } => {
                        handle == h
                            && from_pid.is_none_or(|p| p == Some(*pid))
                            && c.len.is_none_or(|l| l == *len)
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, c.at_least.unwrap_or(1))
        }
        Condition::TotemConfchg(c) => {
            let h = handle_or_default(c.handle.as_ref());
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::TotemConfchg {
                        handle, members, ..
                    } => handle == h && c.members.is_none_or(|m| m == members.len()),
                    _ => false,
                })
                .count();
            (n, c.exactly, 1)
        }
        Condition::Exited(c) => {
            let exited = events
                .iter()
                .any(|e| e.client == c.client && matches!(e.kind, EventKind::ClientExited { .. }));
            let watchdog = events
                .iter()
                .any(|e| e.client == c.client && matches!(e.kind, EventKind::Watchdog { .. }));
            let ok = exited && c.watchdog.is_none_or(|w| w == watchdog);
            (usize::from(ok), None, 1)
        }
        Condition::Call(c) => {
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| matches!(&e.kind, EventKind::Result { cmd, rc, .. } if *cmd == c.cmd && rc.as_deref() == Some(c.rc.as_str())))
                .count();
            (n, c.exactly, 1)
        }
        Condition::EvsConfchg(c) => {
            let h = evs_handle_or_default(c.handle.as_ref());
            // The kind as given or, from libevs's C callback, as the rings tell.
            let regular = evs_confchg_regular(events);
            let n = events
                .iter()
                .zip(regular)
                .filter(|(e, _)| e.client == c.client)
                .filter(|(e, regular)| match &e.kind {
                    EventKind::EvsConfchg {
                        handle,
                        ring,
                        members,
                        left,
                        joined,
                        ..
                    } => {
                        let kind = regular.map(|r| if r { "REGULAR" } else { "TRANSITIONAL" });
                        handle == h
                            && c.kind.as_deref().is_none_or(|k| kind == Some(k))
                            && c.members.as_ref().is_none_or(|m| m.matches(members))
                            && c.left.as_ref().is_none_or(|m| m.matches(left))
                            && c.joined.as_ref().is_none_or(|m| m.matches(joined))
                            && c.ring.is_none_or(|r| r == ring.is_some())
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, 1)
        }
        Condition::EvsDelivered(c) => {
            let h = evs_handle_or_default(c.handle.as_ref());
            // Payload tags are `client.handle`: the sender is the tag's client part.
            let from = c.from.as_ref().map(|f| format!("{f}."));
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::EvsDeliver {
                        handle, len, tag, ..
                    } => {
                        handle == h
                            && from.as_ref().is_none_or(|f| {
                                tag.as_ref().is_some_and(|t| t.starts_with(f.as_str()))
                            })
                            && c.len.is_none_or(|l| l == *len)
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, c.at_least.unwrap_or(1))
        }
        Condition::QuorumNotify(c) => {
            let h = c.handle.as_deref().unwrap_or("q1");
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::QuorumNotify {
                        handle,
                        quorate,
                        ring,
                        members,
                    } => {
                        handle == h
                            && c.quorate.is_none_or(|q| q == *quorate)
                            && c.members.as_ref().is_none_or(|m| m.matches(members))
                            && c.ring.is_none_or(|r| r != ring.starts_with('?'))
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, c.at_least.unwrap_or(1))
        }
        Condition::CmapNotify(c) => {
            let h = c.handle.as_deref().unwrap_or("m1");
            // A value is compared by its `value` part: `new: left` matches a string
            // "left" of any type tag.
            let value_is = |want: &Option<serde_json::Value>, got: &Option<serde_json::Value>| {
                want.as_ref().is_none_or(|w| {
                    got.as_ref().and_then(|g| g.get("value")) == Some(w)
                        || (w.is_null() && got.is_none())
                })
            };
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::CmapNotify {
                        handle,
                        track,
                        event,
                        key,
                        new,
                        old,
                    } => {
                        handle == h
                            && c.track.as_ref().is_none_or(|t| t == track)
                            && c.key.as_ref().is_none_or(|k| k == key)
                            && c.event.as_ref().is_none_or(|x| x == event)
                            && value_is(&c.new, new)
                            && value_is(&c.old, old)
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, c.at_least.unwrap_or(1))
        }
        Condition::CfgShutdown(c) => {
            let h = c.handle.as_deref().unwrap_or("c1");
            let n = events
                .iter()
                .filter(|e| e.client == c.client)
                .filter(|e| match &e.kind {
                    EventKind::CfgShutdown {
                        handle,
                        flags,
                        reply,
                        ..
                    } => {
                        handle == h
                            && c.reply.as_ref().is_none_or(|r| r == reply)
                            && c.flags.as_ref().is_none_or(|f| f == flags)
                    }
                    _ => false,
                })
                .count();
            (n, c.exactly, 1)
        }
    }
}

fn pids(events: &[Event]) -> BTreeMap<String, u32> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ClientStarted { pid, .. } => Some((e.client.clone(), pid)),
            _ => None,
        })
        .collect()
}

/// Whether the condition holds now.
pub fn holds(cond: &Condition, events: &[Event]) -> bool {
    let (n, exactly, at_least) = count(cond, events, &pids(events));
    match exactly {
        Some(x) => n == x,
        None => n >= at_least,
    }
}

/// A one-line account of a condition that did not hold, for the report.
pub fn explain(cond: &Condition, events: &[Event]) -> String {
    let (n, exactly, at_least) = count(cond, events, &pids(events));
    let want = exactly.map_or_else(
        || format!("at least {at_least}"),
        |x| format!("exactly {x}"),
    );
    let what = serde_json::to_string(cond).unwrap_or_default();
    format!("{what}: {n} matching event(s), wanted {want}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::raw::{ConfchgCond, DeliveredCond};
    use crate::trace::Addr;

    fn started(c: &str, pid: u32) -> Event {
        Event {
            t_us: 0,
            client: c.into(),
            kind: EventKind::ClientStarted { node: 1, pid },
        }
    }

    #[test]
    fn delivered_counts_only_the_named_sender() {
        let dl = |pid| Event {
            t_us: 0,
            client: "a".into(),
            kind: EventKind::Deliver {
                handle: "h1".into(),
                group: "g".into(),
                nodeid: 1,
                pid,
                len: 8,
                digest: String::new(),
                tag: None,
                seq: None,
                intact: None,
            },
        };
        let ev = vec![started("a", 10), started("b", 20), dl(10), dl(20), dl(20)];
        let c = |from: &str, at_least| {
            Condition::Delivered(DeliveredCond {
                client: "a".into(),
                handle: None,
                from: Some(from.into()),
                len: None,
                at_least: Some(at_least),
                exactly: None,
            })
        };
        assert!(holds(&c("b", 2), &ev));
        assert!(!holds(&c("a", 2), &ev));
    }

    #[test]
    fn confchg_reason_filter() {
        let ev = vec![Event {
            t_us: 0,
            client: "a".into(),
            kind: EventKind::Confchg {
                handle: "h1".into(),
                group: "g".into(),
                members: vec![],
                left: vec![Addr {
                    nodeid: 2,
                    pid: 5,
                    reason: "NODEDOWN".into(),
                }],
                joined: vec![],
            },
        }];
        let mk = |r: &str| {
            Condition::Confchg(ConfchgCond {
                client: "a".into(),
                handle: None,
                group: None,
                members: Some(0),
                joined: None,
                left: Some(r.into()),
                exactly: None,
            })
        };
        assert!(holds(&mk("NODEDOWN"), &ev));
        assert!(!holds(&mk("PROCDOWN"), &ev));
    }
}
