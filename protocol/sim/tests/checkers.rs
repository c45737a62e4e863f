//! The checkers' line between corosync's own behaviour and our bugs, on hand-written traces
//! and on the seeds that show each family (protocol/sim/known-failures.txt).

use totem_sim::checkers::{virtual_synchrony, JOIN_PING_PONG, TOTEMPG_CUT_ACROSS_RING_CHANGE};
use totem_sim::{TraceEntry, TraceEvent};

fn at(time_us: i64, event: TraceEvent) -> TraceEntry {
    TraceEntry { time_us, event }
}

fn regular(time_us: i64, node: u32, ring: &str, members: &[u32]) -> TraceEntry {
    at(
        time_us,
        TraceEvent::Totem {
            node,
            kind: "regular",
            ring: ring.to_string(),
            members: members.to_vec(),
            left: Vec::new(),
            joined: Vec::new(),
        },
    )
}

fn joined(time_us: i64, node: u32) -> TraceEntry {
    at(
        time_us,
        TraceEvent::Confchg {
            node,
            conn: 1,
            group: "sim".to_string(),
            members: vec![(node, 1001)],
            left: Vec::new(),
            joined: vec![(node, 1001, "JOIN".to_string())],
        },
    )
}

fn deliver(time_us: i64, node: u32, message: &str, ring: &str) -> TraceEntry {
    at(
        time_us,
        TraceEvent::Deliver {
            node,
            conn: 1,
            group: "sim".to_string(),
            from_node: 1,
            from_pid: 1001,
            message: message.to_string(),
            ring: ring.to_string(),
        },
    )
}

/// Seed 11 in small: node 1 alone on 1.29 sends the first piece of message 1.1.7; the rest
/// goes out on 1.2d, which node 2 joins; node 2 throws the continuation away, node 1
/// delivers; both go on to 1.31.
fn cut_across_rings(with_across_note: bool, node_2_was_on_1_29: bool) -> Vec<TraceEntry> {
    let mut t = vec![
        joined(0, 1),
        joined(0, 2),
        regular(10, 1, "1.29", &[1]),
        regular(10, 2, "2.12", &[2]),
    ];
    if node_2_was_on_1_29 {
        t.push(regular(15, 2, "1.29", &[1, 2]));
    }
    t.extend([
        regular(20, 1, "1.2d", &[1, 2]),
        regular(20, 2, "1.2d", &[1, 2]),
        at(
            30,
            TraceEvent::TotempgDiscard {
                node: 2,
                from_node: 1,
                bytes: 54,
                reason: "continuation of a message whose start was lost",
                ring: "1.2d".to_string(),
            },
        ),
        deliver(30, 1, "1.1.7", "1.2d"),
    ]);
    if with_across_note {
        t.push(at(
            30,
            TraceEvent::TotempgAcrossRings {
                node: 1,
                from_node: 1,
                first_ring: "1.29".to_string(),
                last_ring: "1.2d".to_string(),
            },
        ));
    }
    t.extend([
        regular(40, 1, "1.31", &[1, 2]),
        regular(40, 2, "1.31", &[1, 2]),
    ]);
    t
}

// Reference: totempg.c totempg_deliver_fn (throw-away mode), app_confchg_fn.
#[test]
fn a_message_cut_across_rings_and_lost_by_a_node_without_its_start_is_corosyncs_behaviour() {
    let v = virtual_synchrony(&cut_across_rings(true, false));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(
        v[0].corosync_equivalent,
        Some(TOTEMPG_CUT_ACROSS_RING_CHANGE)
    );
}

#[test]
fn the_same_loss_without_evidence_that_the_message_was_cut_across_rings_stays_open() {
    let v = virtual_synchrony(&cut_across_rings(false, false));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].corosync_equivalent, None);
}

#[test]
fn a_node_that_was_on_the_first_pieces_ring_has_no_excuse_for_losing_the_message() {
    let v = virtual_synchrony(&cut_across_rings(true, true));
    assert!(!v.is_empty());
    assert!(v.iter().all(|v| v.corosync_equivalent.is_none()), "{v:#?}");
}

// Reference: totempg.c totempg_initialize (a new process starts with empty assembly lists),
// totempg_deliver_fn. Seed 1115 in small: node 2 was on the first piece's ring, then crashed
// and restarted, and its new client lacks the message like a node that was never there.
#[test]
fn a_node_restarted_since_the_first_pieces_ring_lost_it_as_corosync_does() {
    let mut t = cut_across_rings(true, true);
    let restart = [
        at(16, TraceEvent::Crash { node: 2 }),
        at(
            17,
            TraceEvent::Start {
                node: 2,
                ring_seq: 0x29,
            },
        ),
        at(
            18,
            TraceEvent::Confchg {
                node: 2,
                conn: 2,
                group: "sim".to_string(),
                members: vec![(2, 1002)],
                left: Vec::new(),
                joined: vec![(2, 1002, "JOIN".to_string())],
            },
        ),
    ];
    let after_install = t.iter().position(|e| e.time_us > 15).unwrap();
    t.splice(after_install..after_install, restart);
    let v = virtual_synchrony(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(
        v[0].corosync_equivalent,
        Some(TOTEMPG_CUT_ACROSS_RING_CHANGE)
    );
}

// Reference: totemsrp.c memb_join_process, memb_state_gather_enter; seed 2264 of the sweep:
// nodes 3 and 5 ping-pong until the datagram budget stops the simulation at 17.74 s, in the
// safety phase. The scenario stops with it, so the pair is found as the storm left it (not
// after restarts of nodes that no longer ran), and node 4, alone on its own ring outside the
// storm, loses none of its client's messages (none are sent into the stopped simulation).
#[test]
fn seed_2264_ends_in_corosyncs_join_ping_pong_and_every_violation_says_so() {
    let (report, _) = totem_sim::scenario::run_seed(2264, false);
    assert!(!report.violations.is_empty());
    let open: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.corosync_equivalent != Some(JOIN_PING_PONG))
        .collect();
    assert!(open.is_empty(), "{open:#?}");
    assert!(report
        .violations
        .iter()
        .any(|v| v.checker == "datagram_budget"
            && v.detail.contains("JOIN ping-pong between nodes {3, 5}")));
    assert!(
        !report
            .violations
            .iter()
            .any(|v| v.checker == "self_delivery" && v.detail.starts_with("4.")),
        "{:#?}",
        report.violations
    );
}

// Reference: totempg.c app_confchg_fn -> assembly_deref_from_normal_and_trans, which frees the
// left nodes' assemblies whatever they held. Seed 24413 in small: node 2 was on the first
// piece's ring but was cut off before the piece reached it; its next ring's transitional
// configuration lists node 1 as left (with nothing of node 1's to free, so no totempg note),
// and it lacks the message like a node that was never on 1.29.
#[test]
fn a_node_whose_configuration_listed_the_sender_as_left_lost_it_as_corosync_does() {
    let mut t = cut_across_rings(true, true);
    let cut_off = at(
        17,
        TraceEvent::Totem {
            node: 2,
            kind: "transitional",
            ring: "2.2b".to_string(),
            members: vec![2],
            left: vec![1],
            joined: Vec::new(),
        },
    );
    let after_install = t.iter().position(|e| e.time_us > 15).unwrap();
    t.insert(after_install, cut_off);
    let v = virtual_synchrony(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(
        v[0].corosync_equivalent,
        Some(TOTEMPG_CUT_ACROSS_RING_CHANGE)
    );
}

// The same node 2, listed node 1 as left only after it had thrown the continuation away:
// that configuration change freed nothing the continuation needed, so the loss stays ours.
#[test]
fn a_sender_listed_as_left_only_after_the_discard_does_not_explain_it() {
    let mut t = cut_across_rings(true, true);
    t.push(at(
        35,
        TraceEvent::Totem {
            node: 2,
            kind: "transitional",
            ring: "2.30".to_string(),
            members: vec![2],
            left: vec![1],
            joined: Vec::new(),
        },
    ));
    t.sort_by_key(|e| e.time_us);
    let v = virtual_synchrony(&t);
    assert!(!v.is_empty());
    assert!(v.iter().all(|v| v.corosync_equivalent.is_none()), "{v:#?}");
}
