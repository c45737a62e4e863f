//! votequorum in the simulator: each node runs `totem_votequorum` on what its `Node`
//! delivers, as totemd's quorum service does, and its NODEINFOs say what that state is.

use totem_sim::{NetworkOptions, Sim, Timings};
use totem_votequorum::{VoteConfig, NODESTATE_DEAD, NODESTATE_MEMBER};

fn cluster(ids: &[u32], seed: u64, vote: Option<VoteConfig>) -> Sim {
    let mut sim = Sim::new(seed, ids, NetworkOptions::default(), Timings::default());
    if let Some(v) = vote {
        sim.set_vote_config(v);
    }
    sim
}

#[test]
fn the_majority_side_of_a_partition_keeps_quorum_and_the_minority_loses_it() {
    let mut sim = cluster(&[1, 2, 3], 1, None);
    sim.start(1);
    sim.run_for_ms(3000);
    assert_eq!(sim.quorate(1), Some(false), "1 vote of 3 expected");
    sim.start(2);
    sim.start(3);
    sim.run_for_ms(3000);
    for id in 1..=3 {
        assert_eq!(sim.quorate(id), Some(true), "node {id}");
        let vq = sim.votequorum(id).unwrap();
        assert_eq!((vq.quorum, vq.expected_votes()), (2, 3));
        assert_eq!(vq.view.members, vec![1, 2, 3]);
    }
    sim.partition(&[vec![1, 2], vec![3]]);
    sim.run_for_ms(6000);
    assert_eq!(sim.quorate(1), Some(true));
    assert_eq!(sim.quorate(2), Some(true));
    assert_eq!(sim.quorate(3), Some(false));
    let vq = sim.votequorum(3).unwrap();
    assert_eq!(vq.nodes[&1].state, NODESTATE_DEAD, "dead, still listed");
    assert_eq!(sim.votequorum(1).unwrap().nodes[&3].state, NODESTATE_DEAD);
    sim.heal();
    sim.run_for_ms(6000);
    for id in 1..=3 {
        assert_eq!(sim.quorate(id), Some(true), "node {id} after the heal");
        assert!(sim
            .votequorum(id)
            .unwrap()
            .nodes
            .values()
            .all(|n| n.state == NODESTATE_MEMBER));
    }
    sim.crash(2);
    assert_eq!(sim.quorate(2), None);
}

/// `wait_for_all`: the nodes wait until every expected vote was there once, then keep
/// quorum without one. Node 4, restarted while node 5 is down, waits again, and only the
/// others' NODEINFOs (quorate, not waiting) release it, since four votes are not the five
/// expected: the NODEINFOs on the ring carry each node's votequorum state, as totemd's do.
#[test]
fn wait_for_all_holds_until_all_were_seen_and_quorate_peers_nodeinfos_release_a_restart() {
    let ids = [1, 2, 3, 4, 5];
    let vote = VoteConfig {
        provider: true,
        votes: ids.iter().map(|id| (*id, 1)).collect(),
        expected_votes: 5,
        two_node: false,
        wait_for_all: true,
    };
    let mut sim = cluster(&ids, 7, Some(vote));
    for id in 1..=4 {
        sim.start(id);
    }
    sim.run_for_ms(3000);
    assert_eq!(sim.node(1).unwrap().members(), &[1, 2, 3, 4]);
    assert!(
        (1..=4).all(|id| sim.quorate(id) == Some(false)),
        "4 of 5: waiting"
    );
    assert!(sim.votequorum(1).unwrap().waiting_for_all);
    sim.start(5);
    sim.run_for_ms(3000);
    assert!((1..=5).all(|id| sim.quorate(id) == Some(true)));
    sim.crash(5);
    sim.run_for_ms(5000);
    assert!(
        (1..=4).all(|id| sim.quorate(id) == Some(true)),
        "4 of 5 once all were seen"
    );
    sim.crash(4);
    sim.start(4);
    sim.run_for_ms(5000);
    assert_eq!(sim.node(4).unwrap().members(), &[1, 2, 3, 4]);
    assert_eq!(
        sim.quorate(4),
        Some(true),
        "released by the others' NODEINFOs"
    );
    assert!(!sim.votequorum(4).unwrap().waiting_for_all);
}
