//! Scenario tests of the whole stack (ring, totempg, sync, CPG) on the deterministic
//! network, with every safety checker run on the trace. Names are sentences.

use totem_sim::checkers::{check_safety, liveness};
use totem_sim::{NetworkOptions, Sim, Timings, TraceEvent};

fn cluster(n: u32, seed: u64) -> Sim {
    let ids: Vec<u32> = (1..=n).collect();
    let mut sim = Sim::new(seed, &ids, NetworkOptions::default(), Timings::default());
    for id in &ids {
        sim.start(*id);
    }
    sim.run_for_ms(3000);
    sim
}

fn assert_clean(sim: &Sim) {
    let violations = check_safety(sim.trace());
    assert!(violations.is_empty(), "{violations:#?}");
    let live = liveness(sim);
    assert!(live.is_empty(), "{live:#?}");
}

/// A confchg as (members, left, joined).
type Confchg = (
    Vec<(u32, u32)>,
    Vec<(u32, u32, String)>,
    Vec<(u32, u32, String)>,
);

fn confchgs(sim: &Sim, node: u32) -> Vec<Confchg> {
    sim.trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Confchg {
                node: n,
                members,
                left,
                joined,
                ..
            } if *n == node => Some((members.clone(), left.clone(), joined.clone())),
            _ => None,
        })
        .collect()
}

// Reference: cpg.c do_proc_join / notify_lib_joinlist; captures/udpu-02 clients.txt.
#[test]
fn cpg_three_clients_join_one_group_and_see_every_join_n3() {
    let mut sim = cluster(3, 1);
    for node in 1..=3 {
        let conn = sim.client_connect(node, false).unwrap();
        sim.client_join(node, conn, b"cslab").unwrap();
        sim.run_for_ms(100);
    }
    sim.run_for_ms(1000);
    let first = confchgs(&sim, 1);
    assert_eq!(
        first.len(),
        3,
        "node 1's client sees its own join and two more: {first:?}"
    );
    assert_eq!(first[0].2, vec![(1, 1001, "JOIN".to_string())]);
    assert_eq!(
        first[2].0,
        vec![(1, 1001), (2, 1001), (3, 1001)],
        "members sorted by (nodeid, pid)"
    );
    assert_clean(&sim);
}

// Reference: cpg.c downlist_inform_clients: processes of a node that left are NODEDOWN.
#[test]
fn cpg_a_crashed_nodes_processes_leave_with_nodedown_n3() {
    let mut sim = cluster(3, 2);
    for node in 1..=3 {
        let conn = sim.client_connect(node, false).unwrap();
        sim.client_join(node, conn, b"g").unwrap();
    }
    sim.run_for_ms(1000);
    sim.crash(3);
    sim.run_for_ms(8000);
    let last = confchgs(&sim, 1).pop().unwrap();
    assert_eq!(last.1, vec![(3, 1001, "NODEDOWN".to_string())]);
    assert_eq!(last.0, vec![(1, 1001), (2, 1001)]);
    assert_clean(&sim);
}

// Reference: cpg.c cpg_lib_exit_fn: a joined client that goes away leaves with PROCDOWN;
// one that calls cpg_leave first leaves with LEAVE.
#[test]
fn cpg_a_client_that_exits_leaves_with_procdown_and_a_leaver_with_leave() {
    let mut sim = cluster(2, 3);
    let a = sim.client_connect(1, false).unwrap();
    let b = sim.client_connect(2, false).unwrap();
    let c = sim.client_connect(2, false).unwrap();
    sim.client_join(1, a, b"g").unwrap();
    sim.client_join(2, b, b"g").unwrap();
    sim.client_join(2, c, b"g").unwrap();
    sim.run_for_ms(500);
    sim.client_disconnect(2, b);
    sim.run_for_ms(500);
    sim.client_leave(2, c).unwrap();
    sim.run_for_ms(500);
    let seen = confchgs(&sim, 1);
    let lefts: Vec<_> = seen.iter().flat_map(|c| c.1.clone()).collect();
    assert_eq!(
        lefts,
        vec![
            (2, 1001, "PROCDOWN".to_string()),
            (2, 1002, "LEAVE".to_string())
        ]
    );
    assert_clean(&sim);
}

// Reference: corosync-lab.md: after cpg_leave, 3.1.7 leaves the handle in LEAVE_STARTED and a
// re-join returns CS_ERR_EXIST; we reset the handle (documented deviation).
#[test]
fn cpg_a_handle_can_join_again_after_its_leave_completed() {
    let mut sim = cluster(1, 4);
    let a = sim.client_connect(1, false).unwrap();
    sim.client_join(1, a, b"g").unwrap();
    sim.run_for_ms(200);
    sim.client_leave(1, a).unwrap();
    sim.run_for_ms(200);
    assert_eq!(sim.client_join(1, a, b"g"), Ok(()));
}

// Reference: Totem §3 agreed order; CpgMsgOrderBasic: three senders at once.
#[test]
fn ordering_three_senders_at_once_are_delivered_identically_n3() {
    let mut sim = cluster(3, 5);
    let mut conns = Vec::new();
    for node in 1..=3 {
        let conn = sim.client_connect(node, false).unwrap();
        sim.client_join(node, conn, b"order").unwrap();
        conns.push((node, conn));
    }
    sim.run_for_ms(1000);
    for _ in 0..100 {
        for (node, conn) in &conns {
            sim.client_mcast(*node, *conn).unwrap();
        }
        sim.run_for_ms(2);
    }
    sim.run_for_ms(3000);
    let delivered = sim
        .trace()
        .iter()
        .filter(|e| matches!(e.event, TraceEvent::Deliver { .. }))
        .count();
    assert_eq!(delivered, 3 * 300, "every client got all 300 messages");
    assert_clean(&sim);
}

// Reference: cpg.c joinlist_inform_clients: after a partition heals, the other side's
// processes come back as NODEUP.
#[test]
fn membership_partition_2_1_then_heal_brings_processes_back_as_nodeup_n3() {
    let mut sim = cluster(3, 6);
    for node in 1..=3 {
        let conn = sim.client_connect(node, false).unwrap();
        sim.client_join(node, conn, b"g").unwrap();
    }
    sim.run_for_ms(1000);
    sim.partition(&[vec![1, 2], vec![3]]);
    sim.run_for_ms(8000);
    sim.heal();
    sim.run_for_ms(15_000);
    let last = confchgs(&sim, 1).pop().unwrap();
    assert_eq!(last.2, vec![(3, 1001, "NODEUP".to_string())]);
    assert_clean(&sim);
}

// Reference: spec §2.9: a restarted node comes back with its persisted ring seq.
#[test]
fn membership_a_restarted_node_merges_with_its_persisted_ring_seq_n3() {
    let mut sim = cluster(3, 7);
    let before = sim.node(1).unwrap().ring_id();
    sim.crash(3);
    sim.run_for_ms(6000);
    sim.start(3);
    sim.run_for_ms(8000);
    let restart = sim
        .trace()
        .iter()
        .rev()
        .find_map(|e| match e.event {
            TraceEvent::Start { node: 3, ring_seq } => Some(ring_seq),
            _ => None,
        })
        .unwrap();
    assert!(
        restart >= before.seq,
        "node 3 restarted from its stored seq {restart}"
    );
    assert_eq!(sim.node(3).unwrap().members(), &[1, 2, 3]);
    assert_clean(&sim);
}

// Reference: totemsrp.c pause_flush: a paused node (SIGSTOP) longer than the token is
// declared failed; when it runs again the ring merges back.
#[test]
fn membership_a_pause_longer_than_the_token_splits_then_merges_n3() {
    let mut sim = cluster(3, 8);
    sim.pause(2, totem_srp::Duration::from_millis(2500));
    sim.run_for_ms(20_000);
    assert_eq!(sim.node(1).unwrap().members(), &[1, 2, 3]);
    let rings: Vec<String> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Totem {
                node: 1,
                kind: "regular",
                ring,
                ..
            } => Some(ring.clone()),
            _ => None,
        })
        .collect();
    assert!(rings.len() >= 3, "formation, split, merge: {rings:?}");
    assert_clean(&sim);
}

// Reference: the simulator's own contract: one seed, one run.
#[test]
fn determinism_a_seed_replays_to_the_same_trace() {
    for seed in [3, 17, 29] {
        let (a, _) = totem_sim::scenario::run_seed(seed, false);
        let (b, _) = totem_sim::scenario::run_seed(seed, false);
        assert_eq!(a.trace, b.trace, "seed {seed}");
    }
}

// The simulated traffic is a capture totem-inspect decodes without a single error.
#[test]
fn pcap_of_a_run_decodes_cleanly_with_totem_inspect() {
    let (report, pcap) = totem_sim::scenario::run_seed(5, true);
    assert!(report.violations.is_empty());
    let path = std::env::temp_dir().join(format!("totem-sim-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap.unwrap()).unwrap();
    let cli = <totem_inspect::cli::Cli as clap::Parser>::try_parse_from([
        "totem-inspect",
        "stats",
        "--format",
        "json",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let config = totem_inspect::cli::Config::from_cli(cli).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    totem_inspect::run(&config, &mut out, &mut err).unwrap();
    let _ = std::fs::remove_file(&path);
    let stats: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        stats["errors"],
        serde_json::json!({}),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(stats["services"]["CPG"]["messages"].as_u64().unwrap() > 100);
    assert!(stats["rings"].as_array().unwrap().len() >= 2);
}

// Reference: cpg.c mar_name_compare. Group names are bytes: the trace must name groups so
// that distinct names stay distinct, or the checkers compare clients of different groups.
#[test]
fn cpg_groups_named_by_a_control_byte_and_by_its_escape_stay_apart_in_the_trace_n3() {
    let mut sim = cluster(3, 7);
    // Node 1's client is in the group of byte 0x01; node 2's in the group of the four
    // characters `\x01`. Node 3 leaves the ring, node 1 multicasts on the new one, node 3
    // comes back: both clients pass from that ring to the next having delivered different
    // messages in it, rightly.
    let a = sim.client_connect(1, false).unwrap();
    sim.client_join(1, a, b"\x01").unwrap();
    let b = sim.client_connect(2, false).unwrap();
    sim.client_join(2, b, b"\\x01").unwrap();
    sim.run_for_ms(500);
    sim.crash(3);
    sim.run_for_ms(5000);
    sim.client_mcast(1, a).unwrap();
    sim.run_for_ms(500);
    sim.start(3);
    sim.run_for_ms(5000);
    assert_clean(&sim);
    let mut groups: Vec<(u32, String)> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Confchg { node, group, .. } => Some((*node, group.clone())),
            _ => None,
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [(1, "\\x01".to_string()), (2, "\\\\x01".to_string())]
    );
}
