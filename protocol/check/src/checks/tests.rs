//! Where the two callers' premises differ ([`Rules`]), a trace that tells them apart; and
//! the checks both callers share, on hand-built neutral traces.

use super::*;
use crate::Member;

fn msg(sender: &str, seq: u64) -> Message {
    Message {
        key: format!("{sender}#{seq}"),
        numbered: Some((sender.to_owned(), seq)),
    }
}

fn sent(client: ClientId, sender: &str, seq: u64) -> Fact {
    Fact::Sent {
        client,
        message: Some(msg(sender, seq)),
        len: None,
        digest: None,
    }
}

fn delivered(client: ClientId, sender: &str, seq: u64, ring: &str) -> Fact {
    Fact::Delivered {
        client,
        message: msg(sender, seq),
        sender_pid: None,
        len: None,
        digest: None,
        intact: None,
        ring: Some(ring.to_owned()),
    }
}

fn confchg(client: ClientId, members: &[(u32, u32)]) -> Fact {
    Fact::Confchg {
        client,
        group: b"g".to_vec(),
        members: members.to_vec(),
        left: Vec::new(),
        joined: vec![Member {
            node: members[0].0,
            pid: members[0].1,
            reason: "JOIN".into(),
        }],
    }
}

fn ring(node: u32, ring: &str) -> Fact {
    Fact::Ring {
        node,
        observer: format!("node {node}"),
        ring: ring.to_owned(),
        members: vec![1, 2],
    }
}

/// Clients a (node 1) and b (node 2); `facts` at times 0, 1, 2 ...
fn trace(facts: Vec<Fact>) -> Trace {
    let mut t = Trace::default();
    for (name, node) in [("a", 1), ("b", 2)] {
        t.add_client(Client {
            name: name.into(),
            node,
            pid: None,
        });
    }
    for (time, fact) in facts.into_iter().enumerate() {
        t.push(time as i64, fact);
    }
    t
}

/// Both clients join, both nodes go R1 -> R2, but only a delivered a#0 in R1; their CPG
/// views do not change.
fn lost_in_ring_r1() -> Trace {
    trace(vec![
        confchg(0, &[(1, 1), (2, 2)]),
        confchg(1, &[(1, 1), (2, 2)]),
        ring(1, "R1"),
        ring(2, "R1"),
        sent(0, "a", 0),
        delivered(0, "a", 0, "R1"),
        ring(1, "R2"),
        ring(2, "R2"),
    ])
}

#[test]
fn a_ring_step_is_a_configuration_step_only_under_the_rings_rule() {
    let t = lost_in_ring_r1();
    let d = virtual_synchrony(&t, &Rules::SIMULATOR);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].a, d[0].b), (0, 1));
    assert_eq!(d[0].only_a, vec!["a#0".to_string()]);
    assert_eq!((d[0].from.as_str(), d[0].to.as_str()), ("R1", "R2"));
    // The clients never saw a second view: nothing to compare for a libcpg client.
    assert!(virtual_synchrony(&t, &Rules::CONFORMANCE).is_empty());
}

#[test]
fn a_view_step_is_compared_under_the_confchg_rule() {
    let t = trace(vec![
        confchg(0, &[(1, 1)]),
        confchg(1, &[(1, 1)]),
        sent(0, "a", 0),
        delivered(0, "a", 0, "R1"),
        confchg(0, &[(1, 1), (3, 3)]),
        confchg(1, &[(1, 1), (3, 3)]),
    ]);
    let d = virtual_synchrony(&t, &Rules::CONFORMANCE);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].only_a, vec!["a#0".to_string()]);
}

#[test]
fn a_client_that_joined_after_the_ring_began_is_not_held_to_it() {
    let mut t = lost_in_ring_r1();
    // b's first confchg now comes after R1 began on its node.
    let b_join = t.events.remove(1);
    t.events.insert(3, b_join);
    for (time, e) in t.events.iter_mut().enumerate() {
        e.time = time as i64;
    }
    assert!(virtual_synchrony(&t, &Rules::SIMULATOR).is_empty());
}

#[test]
fn a_gap_inside_one_configuration_is_a_fifo_violation_only_with_fifo_gaps() {
    let t = trace(vec![
        confchg(0, &[(1, 1)]),
        sent(0, "a", 0),
        sent(0, "a", 1),
        sent(0, "a", 2),
        delivered(0, "a", 0, "R1"),
        delivered(0, "a", 2, "R1"),
    ]);
    assert_eq!(fifo(&t, &Rules::CONFORMANCE).len(), 1);
    assert!(fifo(&t, &Rules::SIMULATOR).is_empty());
    // Order is both callers' rule.
    let t = trace(vec![delivered(0, "a", 1, "R1"), delivered(0, "a", 0, "R1")]);
    assert_eq!(fifo(&t, &Rules::CONFORMANCE).len(), 1);
    assert_eq!(fifo(&t, &Rules::SIMULATOR).len(), 1);
}

/// a joins and sends a#0 and a#1; a#1 never comes back; then `end` happens, between or
/// after the sends.
fn self_delivery_with(end: Fact, end_before_second_send: bool) -> Trace {
    let mut facts = vec![Fact::Joined { client: 0 }, sent(0, "a", 0)];
    if end_before_second_send {
        facts.push(end.clone());
    }
    facts.extend([sent(0, "a", 1), delivered(0, "a", 0, "R1")]);
    if !end_before_second_send {
        facts.push(end);
    }
    trace(facts)
}

#[test]
fn an_end_after_a_send_excuses_it_only_under_the_simulators_window() {
    for end in [
        Fact::Left { client: 0 },
        Fact::ClientEnded { client: 0 },
        Fact::NodeEnded { node: 1 },
    ] {
        let t = self_delivery_with(end.clone(), false);
        let v = self_delivery(&t, &Rules::CONFORMANCE);
        assert_eq!(v.len(), 1, "{end:?}");
        assert_eq!(v[0].client, Some(0));
        assert!(v[0].detail.starts_with("a#1 "), "{}", v[0].detail);
        assert!(self_delivery(&t, &Rules::SIMULATOR).is_empty(), "{end:?}");
        // Sent after the end: owed under neither.
        let t = self_delivery_with(end.clone(), true);
        assert!(self_delivery(&t, &Rules::CONFORMANCE).is_empty(), "{end:?}");
        // ... except that the simulator's window looks only at later ends.
        assert_eq!(self_delivery(&t, &Rules::SIMULATOR).len(), 1, "{end:?}");
    }
}

#[test]
fn nothing_is_owed_before_the_sender_joined() {
    let t = trace(vec![sent(0, "a", 0), Fact::Joined { client: 0 }]);
    assert!(self_delivery(&t, &Rules::CONFORMANCE).is_empty());
    assert!(self_delivery(&t, &Rules::SIMULATOR).is_empty());
}

#[test]
fn agreed_order_duplicates_and_invented_messages_are_one_rule() {
    let clean = || {
        vec![
            sent(0, "a", 0),
            sent(1, "b", 0),
            delivered(0, "a", 0, "R1"),
            delivered(0, "b", 0, "R1"),
            delivered(1, "a", 0, "R1"),
            delivered(1, "b", 0, "R1"),
        ]
    };
    assert!(agreed_order(&trace(clean())).is_empty());
    assert!(no_duplicates(&trace(clean())).is_empty());
    assert!(no_invented(&trace(clean())).is_empty());
    let mut swapped = clean();
    swapped.swap(4, 5);
    assert_eq!(agreed_order(&trace(swapped)).len(), 1);
    let mut twice = clean();
    twice.push(delivered(1, "b", 0, "R1"));
    assert_eq!(no_duplicates(&trace(twice)).len(), 1);
    let mut invented = clean();
    invented.push(delivered(1, "b", 7, "R1"));
    invented.push(delivered(1, "zz", 0, "R1"));
    assert_eq!(no_invented(&trace(invented)).len(), 2);
}

#[test]
fn a_ring_seen_with_two_member_lists_is_caught_whoever_reports_it() {
    let mut t = trace(vec![ring(1, "R1"), ring(2, "R1")]);
    assert!(totem_rings(&t).is_empty());
    t.push(
        9,
        Fact::Ring {
            node: 2,
            observer: "b".into(),
            ring: "R1".into(),
            members: vec![2],
        },
    );
    assert_eq!(totem_rings(&t).len(), 1);
}
