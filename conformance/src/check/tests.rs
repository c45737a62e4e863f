//! Hand-built traces: a clean one passes every checker, and each mutation is caught by the
//! checker responsible for it.

use super::*;
use crate::trace::Event;

fn ev(client: &str, kind: EventKind) -> Event {
    Event {
        t_us: 0,
        client: client.into(),
        kind,
    }
}

fn addr(node: u32, pid: u32, reason: &str) -> Addr {
    Addr {
        nodeid: node,
        pid,
        reason: reason.into(),
    }
}

fn confchg(
    client: &str,
    members: &[(u32, u32)],
    left: &[(u32, u32, &str)],
    joined: &[(u32, u32, &str)],
) -> Event {
    ev(
        client,
        EventKind::Confchg {
            handle: "h1".into(),
            group: "g".into(),
            members: members
                .iter()
                .map(|&(n, p)| addr(n, p, "UNDEFINED"))
                .collect(),
            left: left.iter().map(|&(n, p, r)| addr(n, p, r)).collect(),
            joined: joined.iter().map(|&(n, p, r)| addr(n, p, r)).collect(),
        },
    )
}

fn sent(client: &str, first: u64, n: u64) -> Event {
    let mut fields = serde_json::Map::new();
    fields.insert("tag".into(), serde_json::json!(format!("{client}.h1")));
    fields.insert("first_seq".into(), serde_json::json!(first));
    fields.insert("sent".into(), serde_json::json!(n));
    fields.insert("size".into(), serde_json::json!(64));
    ev(
        client,
        EventKind::Result {
            id: None,
            cmd: "mcast".into(),
            handle: "h1".into(),
            rc: Some("CS_OK".into()),
            error: None,
            fields,
        },
    )
}

fn dl(receiver: &str, sender: &str, pid: u32, seq: u64) -> Event {
    ev(
        receiver,
        EventKind::Deliver {
            handle: "h1".into(),
            group: "g".into(),
            nodeid: pid / 100,
            pid,
            len: 64,
            digest: "x".into(),
            tag: Some(format!("{sender}.h1")),
            seq: Some(seq),
            intact: Some(true),
        },
    )
}

/// a (node 1, pid 100) and b (node 2, pid 200) join, both send 2, both deliver all 4.
fn clean() -> Vec<Event> {
    vec![
        ev("a", EventKind::ClientStarted { node: 1, pid: 100 }),
        ev("b", EventKind::ClientStarted { node: 2, pid: 200 }),
        confchg("a", &[(1, 100)], &[], &[(1, 100, "JOIN")]),
        confchg("a", &[(1, 100), (2, 200)], &[], &[(2, 200, "JOIN")]),
        confchg("b", &[(1, 100), (2, 200)], &[], &[(2, 200, "JOIN")]),
        sent("a", 0, 2),
        sent("b", 0, 2),
        dl("a", "a", 100, 0),
        dl("a", "b", 200, 0),
        dl("a", "a", 100, 1),
        dl("a", "b", 200, 1),
        dl("b", "a", 100, 0),
        dl("b", "b", 200, 0),
        dl("b", "a", 100, 1),
        dl("b", "b", 200, 1),
        confchg("a", &[(1, 100)], &[(2, 200, "PROCDOWN")], &[]),
        confchg("b", &[(1, 100)], &[(2, 200, "PROCDOWN")], &[]),
    ]
}

fn run(events: Vec<Event>) -> Vec<CheckName> {
    let t = Trace {
        scenario: "t".into(),
        backend: "test".into(),
        events,
    };
    let mut v: Vec<CheckName> = run_all(&t, &BTreeSet::new())
        .into_iter()
        .map(|v| v.check)
        .collect();
    v.dedup();
    v
}

#[test]
fn clean_trace_passes_every_checker() {
    assert_eq!(run(clean()), Vec::<CheckName>::new());
}

#[test]
fn agreed_order_catches_swapped_deliveries() {
    let mut e = clean();
    e.swap(11, 12); // b now delivers b#0 before a#0
    assert!(run(e).contains(&CheckName::AgreedOrder));
}

#[test]
fn virtual_synchrony_catches_a_missing_message_before_a_common_transition() {
    let mut e = clean();
    e.remove(14); // b misses b#1, then both pass to the same next configuration
    let r = run(e);
    assert!(r.contains(&CheckName::VirtualSynchrony), "{r:?}");
}

#[test]
fn fifo_catches_reordered_sender() {
    let mut e = clean();
    e.swap(7, 9); // a delivers a#1 before a#0
    assert!(run(e).contains(&CheckName::Fifo));
}

#[test]
fn fifo_catches_a_gap_inside_one_configuration() {
    let mut e = clean();
    e[5] = sent("a", 0, 3);
    e[9] = dl("a", "a", 100, 2);
    e[13] = dl("b", "a", 100, 2);
    assert!(run(e).contains(&CheckName::Fifo));
}

#[test]
fn self_delivery_catches_a_lost_own_message() {
    let mut e = clean();
    e.remove(9); // a never gets a#1; b lost nothing
    e.remove(12); // and b drops a#1 too, so only self delivery is wrong (sets stay equal)
    let r = run(e);
    assert!(r.contains(&CheckName::SelfDelivery), "{r:?}");
}

#[test]
fn duplicates_are_caught() {
    let mut e = clean();
    e.insert(9, dl("a", "a", 100, 0));
    assert!(run(e).contains(&CheckName::NoDuplicates));
}

#[test]
fn invented_messages_are_caught() {
    let mut e = clean();
    e.insert(10, dl("a", "zz", 100, 0));
    assert!(run(e).contains(&CheckName::NoInvented));
    let mut e = clean();
    e.insert(10, dl("a", "a", 100, 7));
    assert!(run(e).contains(&CheckName::NoInvented));
}

#[test]
fn corrupted_payload_is_caught() {
    let mut e = clean();
    if let EventKind::Deliver { intact, .. } = &mut e[8].kind {
        *intact = Some(false);
    }
    assert!(run(e).contains(&CheckName::NoInvented));
}

#[test]
fn confchg_arithmetic_is_checked() {
    let mut e = clean();
    // b's last confchg claims both remain although b left.
    e[16] = confchg("b", &[(1, 100), (2, 200)], &[(2, 200, "PROCDOWN")], &[]);
    assert!(run(e).contains(&CheckName::ConfchgConsistency));
}

#[test]
fn confchg_reasons_are_checked() {
    let mut e = clean();
    e[15] = confchg("a", &[(1, 100)], &[(2, 200, "JOIN")], &[]);
    assert!(run(e).contains(&CheckName::ConfchgReasons));
}

#[test]
fn one_ring_id_one_member_list() {
    let tc = |client: &str, members: Vec<u32>| {
        ev(
            client,
            EventKind::TotemConfchg {
                handle: "h1".into(),
                ring_nodeid: 1,
                ring_seq: 8,
                members,
            },
        )
    };
    let mut e = clean();
    e.push(tc("a", vec![1, 2]));
    e.push(tc("b", vec![1, 2]));
    assert!(run(e.clone()).is_empty());
    e.push(tc("b", vec![2]));
    assert!(run(e).contains(&CheckName::TotemRings));
}

#[test]
fn disabled_checks_are_skipped() {
    let mut e = clean();
    e.swap(7, 9);
    let t = Trace {
        scenario: "t".into(),
        backend: "test".into(),
        events: e,
    };
    let off: BTreeSet<CheckName> = [CheckName::Fifo, CheckName::AgreedOrder]
        .into_iter()
        .collect();
    assert!(run_all(&t, &off).iter().all(|v| !off.contains(&v.check)));
}

#[test]
fn check_names_round_trip() {
    for c in CheckName::ALL {
        assert_eq!(c.as_str().parse::<CheckName>(), Ok(c));
    }
    assert!("nope".parse::<CheckName>().is_err());
}

/// One process holds h1 in group `\xff` and h2 in group `\xfe`: the same member sets in both,
/// and only h1's group gets a message. Handles of different groups never pass "together".
#[test]
fn virtual_synchrony_compares_handles_of_one_group_only() {
    let view = |handle: &str, group: &str, members: &[(u32, u32)], joined: (u32, u32)| {
        ev(
            "a",
            EventKind::Confchg {
                handle: handle.into(),
                group: group.into(),
                members: members
                    .iter()
                    .map(|&(n, p)| addr(n, p, "UNDEFINED"))
                    .collect(),
                left: Vec::new(),
                joined: vec![addr(joined.0, joined.1, "JOIN")],
            },
        )
    };
    let events = |second_group: &str| {
        vec![
            ev("a", EventKind::ClientStarted { node: 1, pid: 100 }),
            view("h1", "\\xff", &[(1, 100)], (1, 100)),
            view("h2", second_group, &[(1, 100)], (1, 100)),
            sent("a", 0, 1),
            dl("a", "a", 100, 0),
            view("h1", "\\xff", &[(1, 100), (2, 200)], (2, 200)),
            view("h2", second_group, &[(1, 100), (2, 200)], (2, 200)),
        ]
    };
    let vs = |e| {
        let t = Trace {
            scenario: "t".into(),
            backend: "test".into(),
            events: e,
        };
        let only: BTreeSet<CheckName> = CheckName::ALL
            .into_iter()
            .filter(|c| *c != CheckName::VirtualSynchrony)
            .collect();
        run_all(&t, &only)
    };
    assert_eq!(vs(events("\\xfe")), Vec::new());
    // The same group under both handles: now h2 lacks h1's message.
    assert_eq!(vs(events("\\xff")).len(), 1);
}
