//! Multi-node tests of the ring on a small deterministic network: virtual time, a fixed
//! one-way delay, in-order delivery per link, faults scripted by the test. Names are
//! sentences; each cites the Totem paper or the totemsrp.c function whose rule it checks.

use std::collections::{BTreeMap, BTreeSet};

use totem_srp::{ConfigurationKind, Destination, Event, Instant, MembState, Srp, SrpConfig};
use totem_wire::srp::{Message, RingId};

const DELAY_MICROS: i64 = 100;

struct Net {
    now: Instant,
    nodes: BTreeMap<u32, Srp>,
    alive: BTreeSet<u32>,
    /// (arrival, sequence for ties, to, bytes)
    in_flight: Vec<(Instant, u64, u32, Vec<u8>)>,
    next_id: u64,
    cut: BTreeSet<(u32, u32)>,
    /// Links that lose MCASTs only (tokens still pass).
    mcast_cut: BTreeSet<(u32, u32)>,
    events: BTreeMap<u32, Vec<Event>>,
    encapsulated_sent: usize,
    /// `SrpConfig::seqno_start` of every node.
    seqno_start: u32,
    /// Sequence numbers of the MCASTs sent.
    mcast_seqs: BTreeSet<u32>,
    /// A node acknowledges sync (`trans_ack`) the moment it has this payload delivered, as
    /// the layer above does when that delivery completes its sync.
    ack_on_delivery: BTreeMap<u32, Vec<u8>>,
}

impl Net {
    fn new(ids: &[u32]) -> Net {
        Net::new_with_seqno_start(ids, 0)
    }

    fn new_with_seqno_start(ids: &[u32], seqno_start: u32) -> Net {
        let mut net = Net {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            alive: BTreeSet::new(),
            in_flight: Vec::new(),
            next_id: 0,
            cut: BTreeSet::new(),
            mcast_cut: BTreeSet::new(),
            events: BTreeMap::new(),
            encapsulated_sent: 0,
            seqno_start,
            mcast_seqs: BTreeSet::new(),
            ack_on_delivery: BTreeMap::new(),
        };
        for id in ids {
            net.start(*id, 0);
        }
        net
    }

    fn start(&mut self, id: u32, stored_ring_seq: u64) {
        let n = self.nodes.len().max(3) as u32;
        let mut config = SrpConfig::defaults(n);
        config.seqno_start = self.seqno_start;
        self.nodes
            .insert(id, Srp::new(config, id, stored_ring_seq, 1500, self.now));
        self.alive.insert(id);
        self.drain(id);
    }

    fn crash(&mut self, id: u32) {
        self.alive.remove(&id);
        self.nodes.remove(&id);
    }

    fn partition(&mut self, a: &[u32], b: &[u32]) {
        for x in a {
            for y in b {
                self.cut.insert((*x, *y));
                self.cut.insert((*y, *x));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn drain(&mut self, id: u32) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        while let Some(e) = node.poll_event() {
            if let Event::Deliver { payload, .. } = &e {
                if self.ack_on_delivery.get(&id) == Some(payload) {
                    node.trans_ack();
                }
            }
            self.events.entry(id).or_default().push(e);
        }
        for t in out {
            let targets: Vec<u32> = match t.destination {
                Destination::Node(n) => vec![n],
                Destination::All => self.alive.iter().copied().collect(),
            };
            let is_mcast = t.bytes.get(3) == Some(&1);
            if is_mcast && t.bytes.get(4) == Some(&1) {
                self.encapsulated_sent += 1;
            }
            if let Ok((Message::Mcast(m), _)) = Message::parse(&t.bytes) {
                self.mcast_seqs.insert(m.seq);
            }
            for to in targets {
                if self.cut.contains(&(id, to)) || (is_mcast && self.mcast_cut.contains(&(id, to)))
                {
                    continue;
                }
                self.next_id += 1;
                let arrival = self.now + totem_srp::Duration::from_micros(DELAY_MICROS as u64);
                self.in_flight
                    .push((arrival, self.next_id, to, t.bytes.clone()));
            }
        }
    }

    /// Runs until `until`, processing datagrams and timers in time order.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.in_flight.iter().map(|p| (p.0, p.1)).min();
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|(id, n)| n.poll_timeout().map(|t| (t, *id)))
                .min();
            let next = match (next_packet, next_timer) {
                (Some((p, _)), Some((t, _))) => p.min(t),
                (Some((p, _)), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_packet.is_some_and(|(p, _)| p == next) {
                let (_, id) = next_packet.unwrap();
                let index = self.in_flight.iter().position(|p| p.1 == id).unwrap();
                let (_, _, to, bytes) = self.in_flight.swap_remove(index);
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.handle_datagram(self.now, &bytes).expect("well-formed");
                    self.drain(to);
                }
            } else {
                let (_, id) = next_timer.unwrap();
                self.nodes.get_mut(&id).unwrap().handle_timeout(self.now);
                self.drain(id);
            }
        }
        self.now = until;
    }

    fn run_for_ms(&mut self, ms: i64) {
        let until = Instant::from_micros(self.now.total_micros() + ms * 1000);
        self.run_until(until);
    }

    fn submit(&mut self, id: u32, payload: &[u8]) {
        self.nodes
            .get_mut(&id)
            .unwrap()
            .submit(payload)
            .expect("room");
        self.drain(id);
    }

    /// Acknowledges sync on every node whose last regular configuration asked for it, as the
    /// layer above does when its sync completes (`totemsrp_trans_ack`).
    fn trans_ack_all(&mut self) {
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for id in ids {
            self.nodes.get_mut(&id).unwrap().trans_ack();
            self.drain(id);
        }
    }

    fn regular_configurations(&self, id: u32) -> Vec<(RingId, Vec<u32>, Vec<u32>)> {
        self.events[&id]
            .iter()
            .filter_map(|e| match e {
                Event::Configuration {
                    kind: ConfigurationKind::Regular,
                    members,
                    joined,
                    ring_id,
                    ..
                } => Some((*ring_id, members.clone(), joined.clone())),
                _ => None,
            })
            .collect()
    }

    fn deliveries(&self, id: u32) -> Vec<(u32, Vec<u8>)> {
        self.events[&id]
            .iter()
            .filter_map(|e| match e {
                Event::Deliver { nodeid, payload } => Some((*nodeid, payload.clone())),
                _ => None,
            })
            .collect()
    }
}

// Reference: totemsrp.c main_iface_change_fn (seq + 1) and memb_state_commit_token_create
// (+ 4): a cold node's first singleton ring is rep.5, as in udpu-01-formation ("1.5").
#[test]
fn membership_a_lone_node_installs_ring_1_5() {
    let mut net = Net::new(&[1]);
    net.run_for_ms(500);
    let node = &net.nodes[&1];
    assert_eq!(node.state(), MembState::Operational);
    assert_eq!(node.ring_id(), RingId { rep: 1, seq: 5 });
    assert_eq!(node.members(), &[1]);
    let regular = net.regular_configurations(1);
    assert_eq!(regular, vec![(RingId { rep: 1, seq: 5 }, vec![1], vec![1])]);
    assert!(net.events[&1].contains(&Event::StoreRingId(RingId { rep: 1, seq: 5 })));
}

// Reference: Totem (Amir et al. 1995) §4 membership; memb_join_process consensus.
#[test]
fn membership_three_nodes_started_together_form_one_ring() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    let ring = net.nodes[&1].ring_id();
    for id in [1, 2, 3] {
        let node = &net.nodes[&id];
        assert_eq!(node.state(), MembState::Operational, "node {id}");
        assert_eq!(node.ring_id(), ring, "node {id}");
        assert_eq!(node.members(), &[1, 2, 3], "node {id}");
    }
    assert_eq!(ring.rep, 1, "the lowest nodeid creates the commit token");
}

// Reference: Totem §3 (agreed order): every member delivers the same sequence.
#[test]
fn ordering_messages_from_every_node_are_delivered_in_one_order() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    net.trans_ack_all();
    for round in 0..20u8 {
        for id in [1u32, 2, 3] {
            net.submit(id, &[id as u8, round]);
        }
        net.run_for_ms(3);
    }
    net.run_for_ms(2000);
    let first = net.deliveries(1);
    assert_eq!(first.len(), 60, "every message delivered once");
    for id in [2, 3] {
        assert_eq!(net.deliveries(id), first, "node {id} saw another order");
    }
    // Per-sender FIFO.
    for sender in [1u32, 2, 3] {
        let rounds: Vec<u8> = first
            .iter()
            .filter(|(n, _)| *n == sender)
            .map(|(_, p)| p[1])
            .collect();
        assert_eq!(rounds, (0..20).collect::<Vec<_>>());
    }
}

// Reference: totemsrp.c timer_function_orf_token_timeout, memb_state_operational_enter
// (transitional configuration = members from the old ring, left = the rest).
#[test]
fn membership_a_crashed_node_leaves_and_two_form_a_ring() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    let old_ring = net.nodes[&1].ring_id();
    net.crash(3);
    // token (3650 ms with 3 nodes) + consensus (4380 ms), then formation.
    net.run_for_ms(12_000);
    for id in [1, 2] {
        let node = &net.nodes[&id];
        assert_eq!(node.state(), MembState::Operational);
        assert_eq!(node.members(), &[1, 2]);
        assert!(node.ring_id().seq > old_ring.seq);
        let transitional = net.events[&id].iter().rev().find_map(|e| match e {
            Event::Configuration {
                kind: ConfigurationKind::Transitional,
                members,
                left,
                ..
            } => Some((members.clone(), left.clone())),
            _ => None,
        });
        assert_eq!(transitional, Some((vec![1, 2], vec![3])), "node {id}");
    }
}

// Reference: totemsrp.c message_handler_memb_merge_detect: an idle representative's
// MERGE_DETECT pulls a partitioned node back in.
#[test]
fn membership_partition_2_1_then_heal_merges_one_ring() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    net.partition(&[1, 2], &[3]);
    net.run_for_ms(12_000);
    assert_eq!(net.nodes[&1].members(), &[1, 2]);
    assert_eq!(net.nodes[&3].members(), &[3]);
    net.heal();
    net.run_for_ms(10_000);
    let ring = net.nodes[&1].ring_id();
    for id in [1, 2, 3] {
        assert_eq!(net.nodes[&id].members(), &[1, 2, 3], "node {id}");
        assert_eq!(net.nodes[&id].ring_id(), ring, "node {id}");
    }
}

// Reference: totemsrp.c memb_state_recovery_enter: messages of the old ring that a
// surviving member missed are re-sent encapsulated, and every survivor delivers them
// before the transitional configuration.
#[test]
fn recovery_messages_sent_as_a_node_dies_reach_every_survivor() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    net.trans_ack_all();
    // Node 2 loses node 3's multicasts; node 3 dies before anyone retransmits them to 2.
    net.mcast_cut.insert((3, 2));
    for i in 0..10u8 {
        net.submit(3, &[3, i]);
        net.submit(1, &[1, i]);
    }
    net.run_for_ms(1);
    net.crash(3);
    net.mcast_cut.clear();
    net.run_for_ms(15_000);
    let one = net.deliveries(1);
    let two = net.deliveries(2);
    assert_eq!(
        one, two,
        "survivors deliver the same messages in the same order"
    );
    let from_one = one.iter().filter(|(n, _)| *n == 1).count();
    assert_eq!(
        from_one, 10,
        "a survivor's own messages are never lost: {one:?}"
    );
    let from_three: Vec<u8> = one
        .iter()
        .filter(|(n, _)| *n == 3)
        .map(|(_, p)| p[1])
        .collect();
    assert_eq!(
        from_three,
        (0..from_three.len() as u8).collect::<Vec<_>>(),
        "a prefix of 3's, in order"
    );
    // Both survivors went through recovery and agree on the new ring.
    assert_eq!(net.nodes[&1].members(), &[1, 2]);
    assert_eq!(net.nodes[&1].ring_id(), net.nodes[&2].ring_id());
    assert!(
        net.encapsulated_sent > 0,
        "node 1 re-sent 3's messages in recovery"
    );
    assert_eq!(
        from_three.len(),
        10,
        "node 2 got all of 3's messages through recovery"
    );
}

// Reference: totemsrp.c memb_state_operational_enter: the old ring's messages are
// delivered (messages_deliver_to_app) before waiting_trans_ack is set for the new ring, and
// the delivery that completes a sync calls totemsrp_trans_ack synchronously. Found by
// `totem-sim sweep` (seed 558): a late ack cleared the new ring's wait, and the node sent
// its application backlog ahead of the new ring's sync messages.
#[test]
fn a_sync_completed_by_the_old_rings_last_messages_does_not_end_the_new_rings_wait() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    // Node 2 never acknowledged the first ring's sync: it still waits. Node 3's messages
    // reach node 2 only through recovery, as the ring re-forms without 3; the last of them
    // completes node 2's sync.
    assert!(net.nodes[&2].waiting_trans_ack());
    net.mcast_cut.insert((3, 2));
    for i in 0..10u8 {
        net.submit(3, &[3, i]);
    }
    net.run_for_ms(1);
    net.crash(3);
    net.mcast_cut.clear();
    net.ack_on_delivery.insert(2, vec![3, 9]);
    net.run_for_ms(15_000);
    assert_eq!(net.nodes[&2].members(), &[1, 2]);

    let events = &net.events[&2];
    let last = events
        .iter()
        .position(|e| matches!(e, Event::Deliver { payload, .. } if payload == &[3, 9]))
        .expect("3's last message delivered through recovery");
    let after: Vec<&Event> = events[last + 1..]
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::WaitingTransAck(_) | Event::Configuration { .. } | Event::Deliver { .. }
            )
        })
        .collect();
    assert!(
        matches!(after.first(), Some(Event::WaitingTransAck(false))),
        "the ack comes right after the delivery that completed the sync: {after:?}"
    );
    let kinds: Vec<String> = after
        .iter()
        .filter_map(|e| match e {
            Event::WaitingTransAck(w) => Some(format!("waiting {w}")),
            Event::Configuration { kind, .. } => Some(format!("{kind:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        ["waiting false", "Transitional", "waiting true", "Regular"],
        "the new ring's wait comes after the old ring's ack"
    );
    assert!(
        net.nodes[&2].waiting_trans_ack(),
        "the new ring waits for its own sync"
    );
}

// Reference: udpu-01-formation frame 1, the first datagram of a cold node 1: its JOIN.
// Byte for byte, but for target_nodeid, which corosync leaves uninitialised on udpu.
#[test]
fn wire_a_cold_nodes_first_join_matches_corosyncs() {
    let captured = include_bytes!("../../../fixtures/wire/srp/memb_join-1node.bin");
    let mut node = Srp::new(SrpConfig::defaults(3), 1, 0, 1500, Instant::ZERO);
    let first = node.poll_transmit().expect("a JOIN at start");
    assert_eq!(first.destination, Destination::All);
    let mut ours = first.bytes.clone();
    ours[9..13].copy_from_slice(&captured[9..13]);
    assert_eq!(&ours[..], &captured[..]);
}

// Reference: totemsrp.c's test setting SEQNO_START_MSG = SEQNO_START_TOKEN = 0xfffffe00
// ("These can be used ot test different rollover points") and sq.h's rollover-adjusted
// comparisons: ordering, then a membership change with recovery, across the 32-bit wrap.
#[test]
fn ordering_and_recovery_survive_the_sequence_number_rollover() {
    let start = totem_srp::SEQNO_START_NEAR_ROLLOVER;
    let mut net = Net::new_with_seqno_start(&[1, 2, 3], start);
    net.run_for_ms(2000);
    net.trans_ack_all();
    for round in 0..250u16 {
        for id in [1u32, 2, 3] {
            net.submit(id, &[id as u8, (round >> 8) as u8, round as u8]);
        }
        net.run_for_ms(3);
    }
    net.run_for_ms(2000);
    // 750 messages from 0xfffffe01: the sequence numbers wrapped past 0.
    assert!(
        net.mcast_seqs.contains(&(start + 1)),
        "the ring started at seqno_start"
    );
    assert!(net.mcast_seqs.contains(&0xFFFF_FFFF) && net.mcast_seqs.contains(&100));
    let first = net.deliveries(1);
    assert_eq!(first.len(), 750, "every message delivered once");
    for id in [2, 3] {
        assert_eq!(net.deliveries(id), first, "node {id} saw another order");
    }
    for sender in [1u8, 2, 3] {
        let rounds: Vec<u16> = first
            .iter()
            .filter(|(_, p)| p[0] == sender)
            .map(|(_, p)| u16::from(p[1]) << 8 | u16::from(p[2]))
            .collect();
        assert_eq!(
            rounds,
            (0..250).collect::<Vec<_>>(),
            "FIFO of node {sender}"
        );
    }
    // After the wrap, node 2 misses node 3's multicasts and node 3 dies: node 1 re-sends
    // them encapsulated in recovery (recovery_sort_queue starts at seqno_start again), and
    // both survivors deliver them, in the same order.
    net.mcast_cut.insert((3, 2));
    for i in 0..5u8 {
        net.submit(3, &[3, 0, i]);
    }
    net.run_for_ms(1);
    net.crash(3);
    net.mcast_cut.clear();
    net.run_for_ms(15_000);
    for id in [1, 2] {
        assert_eq!(net.nodes[&id].state(), MembState::Operational, "node {id}");
        assert_eq!(net.nodes[&id].members(), &[1, 2], "node {id}");
    }
    assert!(net.encapsulated_sent > 0, "recovery re-sent 3's messages");
    let one = net.deliveries(1);
    assert_eq!(one, net.deliveries(2), "survivors agree");
    assert_eq!(one.len(), 755, "{:?}", &one[750..]);
    net.trans_ack_all();
    net.submit(2, b"after");
    net.run_for_ms(2000);
    assert_eq!(net.deliveries(1).last(), Some(&(2, b"after".to_vec())));
}

// Reference: Totem (Amir et al. 1995): a message may be discarded once the token's aru has
// covered it on two successive visits. totemsrp.c message_handler_orf_token calls
// messages_free before it discards a retransmitted token, and a retransmitted copy is the
// same visit seen twice, so freeing on it lets a node drop a message a member still lacks.
// Here node 3 misses node 1's message, its token (aru lowered) is lost on the way back to 1,
// and 1's token retransmission brings node 2 the aru it already saw; then 1 dies. Found by
// `totem-sim sweep` (seeds 1069, 1608, 1998): node 2 had freed the message, recovery re-sent
// it from nobody, and the survivors left the ring having delivered different messages.
#[test]
fn a_retransmitted_token_does_not_free_a_message_a_member_still_lacks() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for_ms(2000);
    net.trans_ack_all();
    let message = (1, b"lost to 3".to_vec());
    net.mcast_cut.insert((1, 3));
    net.submit(1, &message.1);
    // The idle ring's representative holds the token: totempg's new-message signal
    // (token_hold_cancel_send) releases it.
    net.nodes.get_mut(&1).unwrap().new_message_signal();
    net.drain(1);
    // Step until node 2 has the message; the token that carried it is then between 2 and 3,
    // and the one node 3 passes on (its aru below the message) is lost on its way to 1.
    for _ in 0..100 {
        if net.deliveries(2).contains(&message) {
            break;
        }
        net.run_until(net.now + totem_srp::Duration::from_micros(50));
    }
    assert!(net.deliveries(2).contains(&message), "node 2 delivered it");
    net.cut.insert((3, 1));
    // Past node 1's token retransmit timeout (token / (4 + 0.2)), short of the token timeout.
    net.run_for_ms(1500);
    assert!(
        !net.deliveries(3).contains(&message),
        "node 3 still lacks it"
    );
    net.crash(1);
    net.heal();
    net.mcast_cut.clear();
    net.run_for_ms(15_000);
    for id in [2, 3] {
        assert_eq!(net.nodes[&id].state(), MembState::Operational, "node {id}");
        assert_eq!(net.nodes[&id].members(), &[2, 3], "node {id}");
    }
    assert_eq!(
        net.deliveries(3),
        net.deliveries(2),
        "survivors of one ring deliver the same messages in it"
    );
}
