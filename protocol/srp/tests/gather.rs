//! The Gather phase against JOINs, with explicit time: what `exec/totemsrp.c` 3.1.7 does
//! when gathering nodes disagree about who failed (`memb_join_process`,
//! `memb_state_gather_enter`, `memb_state_consensus_timeout_expired`).
//!
//! These pin the behaviour behind the simulator's family B (protocol/sim/known-failures.txt):
//! `memb_join_process` re-enters Gather — sending a JOIN and restarting the consensus timer —
//! for every JOIN whose lists are not a subset of ours, even when merging it changes nothing;
//! and it takes over a sender's failed list only from a member of our last ring
//! (`my_memb_list`) or when the JOIN fails us. Two gathering nodes that were not on one ring,
//! whose failed lists are incomparable and name neither of them, therefore answer each
//! other's JOINs for ever and neither consensus timer ever expires: corosync livelocks too.
//! A third node whose JOIN fails one of them breaks the tie.

use std::collections::{BTreeMap, BTreeSet};

use totem_srp::{Destination, Duration, Instant, MembState, Srp, SrpConfig, SrpConfigBuilder};
use totem_wire::srp::{Header, MembJoin, Message, MessageType};

const DELAY: Duration = Duration::from_micros(100);

fn config() -> SrpConfig {
    let mut b = SrpConfigBuilder::new(5);
    b.token_ms = Some(1000);
    b.token_coefficient_ms = Some(0);
    b.build().expect("valid")
}

fn join(from: u32, proc_list: &[u32], failed_list: &[u32]) -> Vec<u8> {
    Message::MembJoin(MembJoin {
        header: Header::new(MessageType::MembJoin, from),
        system_from: from,
        ring_seq: 1,
        proc_list: proc_list.to_vec(),
        failed_list: failed_list.to_vec(),
    })
    .to_bytes()
}

/// A few nodes on links the test connects; a node's own multicasts always come back to it
/// (udpu sends to every listed node, itself included). JOINs of absent nodes are injected.
struct Net {
    now: Instant,
    nodes: BTreeMap<u32, Srp>,
    links: BTreeSet<(u32, u32)>,
    /// (arrival, sequence, to, bytes)
    in_flight: Vec<(Instant, u64, u32, Vec<u8>)>,
    next_id: u64,
    /// JOINs each node sent, with when and their failed list.
    joins: BTreeMap<u32, Vec<(Instant, Vec<u32>)>>,
}

impl Net {
    fn new(ids: &[u32]) -> Net {
        let mut net = Net {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            links: BTreeSet::new(),
            in_flight: Vec::new(),
            next_id: 0,
            joins: BTreeMap::new(),
        };
        for id in ids {
            net.nodes
                .insert(*id, Srp::new(config(), *id, 0, 1500, Instant::ZERO));
            net.drain(*id);
        }
        net
    }

    fn connect(&mut self, a: u32, b: u32) {
        self.links.insert((a, b));
        self.links.insert((b, a));
    }

    fn node(&self, id: u32) -> &Srp {
        &self.nodes[&id]
    }

    fn failed(&self, id: u32) -> Vec<u32> {
        self.node(id).membership().failed_list.as_slice().to_vec()
    }

    fn proc_set(&self, id: u32) -> BTreeSet<u32> {
        self.node(id)
            .membership()
            .proc_list
            .as_slice()
            .iter()
            .copied()
            .collect()
    }

    fn joins_sent(&self, id: u32) -> &[(Instant, Vec<u32>)] {
        self.joins.get(&id).map_or(&[], Vec::as_slice)
    }

    fn drain(&mut self, id: u32) {
        let node = self.nodes.get_mut(&id).expect("node");
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        while node.poll_event().is_some() {}
        for t in out {
            if let Ok((Message::MembJoin(j), _)) = Message::parse(&t.bytes) {
                self.joins
                    .entry(id)
                    .or_default()
                    .push((self.now, j.failed_list.clone()));
            }
            let targets: Vec<u32> = match t.destination {
                Destination::Node(n) => vec![n],
                Destination::All => self.nodes.keys().copied().collect(),
            };
            for to in targets {
                if to == id || self.links.contains(&(id, to)) {
                    self.next_id += 1;
                    self.in_flight
                        .push((self.now + DELAY, self.next_id, to, t.bytes.clone()));
                }
            }
        }
    }

    /// A JOIN from an absent node arrives now.
    fn inject(&mut self, to: u32, bytes: &[u8]) {
        let now = self.now;
        self.nodes
            .get_mut(&to)
            .expect("node")
            .handle_datagram(now, bytes)
            .expect("well-formed");
        self.drain(to);
    }

    fn run_until(&mut self, until: Instant) {
        loop {
            let packet = self.in_flight.iter().map(|p| (p.0, p.1)).min();
            let timer = self
                .nodes
                .iter()
                .filter_map(|(id, n)| n.poll_timeout().map(|t| (t, *id)))
                .min();
            let next = match (packet, timer) {
                (Some((p, _)), Some((t, _))) => p.min(t),
                (Some((p, _)), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            match packet {
                Some((at, seq)) if at == next => {
                    let index = self.in_flight.iter().position(|p| p.1 == seq).unwrap();
                    let (_, _, to, bytes) = self.in_flight.swap_remove(index);
                    self.nodes
                        .get_mut(&to)
                        .unwrap()
                        .handle_datagram(next, &bytes)
                        .expect("well-formed");
                    self.drain(to);
                }
                _ => {
                    let (_, id) = timer.unwrap();
                    self.nodes.get_mut(&id).unwrap().handle_timeout(next);
                    self.drain(id);
                }
            }
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }
}

/// Node 4 alone on ring [4] (as after a partition), then gathering with proc {2, 3, 4, 5}
/// and failed {5}: node 5 told it so (its JOIN failed 4, so 4 fails 5 back).
fn node_4_failed_5(net: &mut Net) {
    net.inject(4, &join(5, &[5], &[]));
    net.inject(4, &join(5, &[5, 4, 3, 2], &[4]));
    assert_eq!(net.node(4).state(), MembState::Gather);
    assert_eq!(net.failed(4), vec![5]);
}

/// Node 3 alone on ring [3], then gathering with proc {2, 3, 4, 5} and failed {2}: node 2's
/// consensus timeout failed 3, so 3 fails 2 back.
fn node_3_failed_2(net: &mut Net) {
    net.inject(3, &join(2, &[2], &[]));
    net.inject(3, &join(2, &[2, 3, 4, 5], &[3]));
    assert_eq!(net.node(3).state(), MembState::Gather);
    assert_eq!(net.failed(3), vec![2]);
}

/// Reference: totemsrp.c memb_join_process (the last branch: merge, then
/// memb_state_gather_enter whatever the merge changed) and memb_state_gather_enter (which
/// sends a JOIN and restarts the consensus timer); memb_state_consensus_timeout_expired.
#[test]
fn a_join_that_is_no_subset_restarts_the_consensus_timer_even_when_merging_it_changes_nothing() {
    let mut net = Net::new(&[3]);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.node(3).state(), MembState::Operational);
    node_3_failed_2(&mut net);
    let consensus = Duration::from_millis(config().consensus_ms.into());
    assert_eq!(consensus, Duration::from_millis(1200));

    // Node 4's JOIN (failed [5]) every second, for five seconds: each is no subset of node
    // 3's lists, and each brings nothing new (4 is not of 3's last ring, 3 not in its
    // failed list). Yet every one is answered at once and restarts the consensus timer.
    let j4 = join(4, &[4, 5, 3, 2], &[5]);
    let mut last = net.now;
    for _ in 0..5 {
        net.run_for(Duration::from_millis(1000));
        let before = net.joins_sent(3).len();
        net.inject(3, &j4);
        last = net.now;
        let sent = &net.joins_sent(3)[before..];
        assert_eq!(sent.len(), 1, "answered at once: {sent:?}");
        assert_eq!(sent[0], (last, vec![2]), "lists unchanged");
        assert_eq!(net.node(3).state(), MembState::Gather);
    }
    assert_eq!(
        net.proc_set(3),
        BTreeSet::from([2, 3, 4, 5]),
        "nothing merged"
    );
    // Four seconds past the first consensus deadline: nobody was failed.
    assert_eq!(net.failed(3), vec![2]);

    // Without further JOINs from 4 the timer expires exactly consensus_ms after the last
    // one, and everyone who did not agree (4 and 5) is failed.
    net.run_until(last + Duration::from_millis(1199));
    assert_eq!(net.failed(3), vec![2]);
    net.run_until(last + consensus);
    assert_eq!(net.failed(3), vec![2, 4, 5]);
    let (at, failed) = net.joins_sent(3).last().expect("a JOIN").clone();
    assert_eq!((at, failed), (last + consensus, vec![2, 4, 5]));
}

/// Reference: totemsrp.c memb_join_process, memb_state_gather_enter. Seeds 144 and 271 of
/// `totem-sim sweep` reach this state (with nodes 1 and 4 on one side).
#[test]
fn two_gathering_nodes_with_incomparable_failed_lists_keep_each_other_in_gather_for_ever() {
    let mut net = Net::new(&[3, 4]);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.node(3).state(), MembState::Operational);
    assert_eq!(net.node(4).state(), MembState::Operational);
    node_4_failed_5(&mut net);
    node_3_failed_2(&mut net);
    net.connect(3, 4);

    // Ten consensus timeouts later: still gathering, no list changed, and the two keep
    // answering each other's JOINs (one round trip each, 200 µs here).
    net.run_for(Duration::from_millis(12_000));
    for id in [3, 4] {
        assert_eq!(net.node(id).state(), MembState::Gather, "node {id}");
        assert_eq!(net.proc_set(id), BTreeSet::from([2, 3, 4, 5]), "node {id}");
    }
    assert_eq!(net.failed(3), vec![2]);
    assert_eq!(net.failed(4), vec![5]);
    let t0 = net.now;
    net.run_for(Duration::from_millis(1000));
    for id in [3, 4] {
        let recent = net.joins_sent(id).iter().filter(|(at, _)| *at > t0).count();
        // The join timer alone would send 20 (join_ms = 50); the ping-pong sends thousands.
        assert!(recent > 1000, "node {id} sent {recent} JOINs in a second");
    }
}

/// Reference: totemsrp.c memb_join_process (a JOIN that fails us: its sender is failed),
/// memb_state_consensus_timeout_expired. Seeds 271 and 326 end this way once the
/// simulator's receive buffers bound the JOIN storm.
#[test]
fn a_third_nodes_join_that_fails_one_side_ends_the_join_ping_pong() {
    let mut net = Net::new(&[3, 4]);
    net.run_for(Duration::from_millis(100));
    node_4_failed_5(&mut net);
    node_3_failed_2(&mut net);
    net.connect(3, 4);
    net.run_for(Duration::from_millis(3000));
    assert_eq!(net.node(4).state(), MembState::Gather);

    // Node 2's consensus timer expired (it had failed 3 already): its JOIN fails 4, so 4
    // fails 2; its failed list {5, 2} now holds 3's {2} and 3's JOINs are subsets of its
    // lists: 4 stops answering, the consensus timers run out and rings form.
    net.inject(4, &join(2, &[2, 3, 4, 5], &[3, 4]));
    assert_eq!(net.failed(4), vec![5, 2]);
    let consensus = Duration::from_millis(config().consensus_ms.into());
    net.run_for(consensus + consensus + Duration::from_millis(500));
    for id in [3, 4] {
        assert_eq!(net.node(id).state(), MembState::Operational, "node {id}");
    }
}
