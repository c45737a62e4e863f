//! EVS (docs/evs.md, our extension) on the deterministic network: connections on every node
//! in two groups, traffic through crashes, a partition, a heal and a restart, with the shared
//! checkers over the EVS events (agreed order, virtual synchrony over totem rings, FIFO,
//! self delivery, no duplicate or invented message) and EVS's own confchg rule.

use std::collections::BTreeMap;

use totem_cpg::{EvsError, EvsGroup};
use totem_sim::checkers::{check_evs_safety, check_safety, liveness};
use totem_sim::{NetworkOptions, Sim, Timings, TraceEvent};

fn key(name: &[u8]) -> EvsGroup {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name);
    k
}

/// Which groups a connection joined: "g", "h", or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    G,
    H,
    Both,
}

impl Role {
    fn groups(self) -> Vec<EvsGroup> {
        match self {
            Role::G => vec![key(b"g")],
            Role::H => vec![key(b"h")],
            Role::Both => vec![key(b"g"), key(b"h")],
        }
    }
}

struct Run {
    sim: Sim,
    /// (node, external conn) → role, of the connections still open.
    roles: BTreeMap<(u32, u64), Role>,
    /// Every connection there ever was.
    ever: BTreeMap<(u32, u64), Role>,
}

impl Run {
    fn connect(&mut self, node: u32, role: Role) {
        let conn = self.sim.evs_connect(node).expect("daemon running");
        self.sim.evs_join(node, conn, &role.groups()).unwrap();
        self.roles.insert((node, conn), role);
        self.ever.insert((node, conn), role);
    }

    /// One round of traffic: every G and Both connection of a live node multicasts to its
    /// joined groups, every H connection to "h" with mcast_groups. TRY_AGAIN (sync, queue)
    /// and BAD_HANDLE (crashed, paused) are fine.
    fn traffic(&mut self) -> (u32, u32) {
        let (mut ok, mut again) = (0, 0);
        let conns: Vec<((u32, u64), Role)> = self.roles.iter().map(|(k, r)| (*k, *r)).collect();
        for ((node, conn), role) in conns {
            let result = match role {
                Role::G | Role::Both => self.sim.evs_mcast_joined(node, conn),
                Role::H => self.sim.evs_mcast_groups(node, conn, &[key(b"h")]),
            };
            match result {
                Ok(()) => ok += 1,
                Err(EvsError::TryAgain) => again += 1,
                Err(EvsError::BadHandle) => {}
                Err(e) => panic!("({node}, {conn}): {e:?}"),
            }
        }
        (ok, again)
    }

    fn rounds(&mut self, n: u32, sent: &mut (u32, u32)) {
        for _ in 0..n {
            let (ok, again) = self.traffic();
            sent.0 += ok;
            sent.1 += again;
            self.sim.run_for_ms(40);
        }
    }
}

/// Runs one seed; returns (sent, try_again, deliveries, confchgs).
fn crash_partition_heal_restart(seed: u64) -> (u32, u32, usize, usize) {
    let ids = [1, 2, 3, 4];
    let mut sim = Sim::new(seed, &ids, NetworkOptions::default(), Timings::default());
    for id in ids {
        sim.start(id);
    }
    sim.run_for_ms(3000);
    let mut run = Run {
        sim,
        roles: BTreeMap::new(),
        ever: BTreeMap::new(),
    };
    for node in ids {
        run.connect(node, Role::G);
        run.connect(node, Role::H);
    }
    run.connect(1, Role::Both);
    // A connection that joins nothing: it gets confchgs and no message (EVS-OVW-22).
    let idle = run.sim.evs_connect(2).unwrap();
    let mut sent = (0, 0);
    run.rounds(10, &mut sent);
    run.sim.crash(4);
    run.roles.retain(|k, _| k.0 != 4);
    run.rounds(30, &mut sent);
    run.sim.partition(&[vec![1, 2], vec![3]]);
    run.rounds(40, &mut sent);
    run.sim.heal();
    run.rounds(40, &mut sent);
    run.sim.start(4);
    run.rounds(20, &mut sent);
    run.connect(4, Role::G);
    run.connect(4, Role::Both);
    // A finalize in the middle of traffic: nobody else sees it (EVS-FIN-1).
    let g_on_3 = *run
        .roles
        .iter()
        .find(|(k, r)| k.0 == 3 && **r == Role::G)
        .unwrap()
        .0;
    run.rounds(20, &mut sent);
    run.sim.evs_disconnect(g_on_3.0, g_on_3.1);
    run.roles.remove(&g_on_3);
    // A leave in the middle of traffic: local, and nothing more reaches it (EVS-LEAVE-3).
    let h_on_2 = *run
        .roles
        .iter()
        .find(|(k, r)| k.0 == 2 && **r == Role::H)
        .unwrap()
        .0;
    run.sim.evs_leave(h_on_2.0, h_on_2.1, &[key(b"h")]).unwrap();
    assert_eq!(
        run.sim.evs_leave(h_on_2.0, h_on_2.1, &[key(b"h")]),
        Err(EvsError::NotExist)
    );
    run.roles.remove(&h_on_2);
    run.rounds(20, &mut sent);
    run.sim.run_for_ms(10_000);

    let trace = run.sim.trace();
    let evs = check_evs_safety(trace);
    let ours: Vec<_> = evs
        .iter()
        .filter(|v| v.corosync_equivalent.is_none())
        .collect();
    assert!(ours.is_empty(), "seed {seed}: {ours:#?}");
    let cpg = check_safety(trace);
    assert!(cpg.is_empty(), "seed {seed}: {cpg:#?}");
    let live = liveness(&run.sim);
    assert!(live.is_empty(), "seed {seed}: {live:#?}");

    // Each delivery went to a connection joined to one of the message's groups: G senders
    // reach G and Both, H senders H and Both, nobody reaches the idle connection.
    let roles_ever = &run.ever;
    let mut deliveries = 0;
    let mut confchgs = 0;
    let mut h_on_2_left = false;
    for e in trace {
        match &e.event {
            TraceEvent::EvsCall {
                node, conn, call, ..
            } if (*node, *conn) == h_on_2 && *call == "leave" => h_on_2_left = true,
            TraceEvent::EvsDeliver { node, conn, .. } if (*node, *conn) == h_on_2 => {
                assert!(!h_on_2_left, "seed {seed}: delivered after its leave");
                deliveries += 1;
            }
            TraceEvent::EvsDeliver {
                node,
                conn,
                message,
                from_node,
                ..
            } => {
                deliveries += 1;
                assert_ne!((*node, *conn), (2, idle), "seed {seed}: idle got {message}");
                let mut parts = message.split('.');
                let sender: (u32, u64) = (
                    parts.next().unwrap().parse().unwrap(),
                    parts.next().unwrap().parse().unwrap(),
                );
                assert_eq!(sender.0, *from_node, "EVS-INIT-5: the sender's nodeid");
                let (from, to) = (roles_ever[&sender], roles_ever[&(*node, *conn)]);
                let meets = !matches!((from, to), (Role::G, Role::H) | (Role::H, Role::G));
                assert!(meets, "seed {seed}: {from:?} message {message} to {to:?}");
            }
            TraceEvent::EvsConfchg { .. } => confchgs += 1,
            _ => {}
        }
    }
    // The membership every connection reads is the ring's (EVS-MEMB-2).
    for (&(node, conn), _) in run.roles.iter() {
        let (me, members) = run.sim.evs_membership_get(node, conn).unwrap();
        assert_eq!(me, node);
        assert_eq!(members, [1, 2, 3, 4], "seed {seed}");
    }
    (sent.0, sent.1, deliveries, confchgs)
}

#[test]
fn evs_agreed_order_and_virtual_synchrony_through_crash_partition_heal_restart_n4() {
    let mut totals = (0, 0, 0, 0);
    for seed in 1..=6 {
        let (sent, again, delivered, confchgs) = crash_partition_heal_restart(seed);
        assert!(sent > 500, "seed {seed}: only {sent} sends succeeded");
        totals.0 += sent;
        totals.1 += again;
        totals.2 += delivered;
        totals.3 += confchgs;
    }
    eprintln!(
        "6 seeds: {} sends, {} TRY_AGAIN, {} deliveries, {} confchgs",
        totals.0, totals.1, totals.2, totals.3
    );
}

// EVS-OVW-17, EVS-CODE-1/2, docs/evs.md §5's examples: a node joining a 3-node ring gives
// existing connections transitional {1,2,3} then regular {1,2,3,4} joined {4}; a crash
// transitional {1,2,3}/{4} then regular {1,2,3}.
#[test]
fn evs_confchgs_are_the_totem_configurations_n4() {
    let mut sim = Sim::new(
        7,
        &[1, 2, 3, 4],
        NetworkOptions::default(),
        Timings::default(),
    );
    for id in 1..=3 {
        sim.start(id);
    }
    sim.run_for_ms(3000);
    let conn = sim.evs_connect(1).unwrap();
    sim.start(4);
    // While the new ring's sync runs, sends answer TRY_AGAIN as CPG's do (EVS-CODE-7).
    let mut steps = 0;
    while !sim.node(1).unwrap().syncing() {
        sim.run_for_ms(1);
        steps += 1;
        assert!(steps < 10_000, "no sync seen");
    }
    assert_eq!(sim.evs_mcast_joined(1, conn), Err(EvsError::TryAgain));
    sim.run_for_ms(3000);
    sim.crash(4);
    sim.run_for_ms(5000);
    type Seen<'a> = (&'a str, Vec<u32>, Vec<u32>, Vec<u32>);
    let seen: Vec<Seen<'_>> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::EvsConfchg {
                node: 1,
                conn: c,
                kind,
                members,
                left,
                joined,
                ..
            } if *c == conn => Some((*kind, members.clone(), left.clone(), joined.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        [
            // At connect: the last configuration, regular {1,2,3}.
            ("regular", vec![1, 2, 3], vec![], seen[0].3.clone()),
            ("transitional", vec![1, 2, 3], vec![], vec![]),
            ("regular", vec![1, 2, 3, 4], vec![], vec![4]),
            ("transitional", vec![1, 2, 3], vec![4], vec![]),
            ("regular", vec![1, 2, 3], vec![], vec![]),
        ]
    );
    assert!(check_evs_safety(sim.trace()).is_empty());
}

/// The checkers see EVS deliveries: one delivery dropped, or two swapped, in a clean run's
/// trace is reported.
#[test]
fn evs_checkers_catch_a_lost_and_a_reordered_delivery() {
    let mut sim = Sim::new(
        3,
        &[1, 2, 3, 4],
        NetworkOptions::default(),
        Timings::default(),
    );
    for id in 1..=4 {
        sim.start(id);
    }
    sim.run_for_ms(3000);
    let conns: Vec<(u32, u64)> = (1..=3)
        .map(|n| {
            let c = sim.evs_connect(n).unwrap();
            sim.evs_join(n, c, &[key(b"g")]).unwrap();
            (n, c)
        })
        .collect();
    // Virtual synchrony compares connections that were there before a ring began: the
    // traffic goes on a ring installed after the joins, which node 4's return ends.
    sim.crash(4);
    sim.run_for_ms(3000);
    for _ in 0..20 {
        for (n, c) in &conns {
            sim.evs_mcast_joined(*n, *c).unwrap();
        }
        sim.run_for_ms(20);
    }
    sim.start(4);
    sim.run_for_ms(5000);
    let trace = sim.trace().to_vec();
    assert!(check_evs_safety(&trace).is_empty());
    let delivered: Vec<usize> = trace
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(&e.event, TraceEvent::EvsDeliver { node: 2, .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(delivered.len(), 60);
    // Node 1's message, lost on node 2 only.
    let from_1 = delivered
        .iter()
        .copied()
        .find(|i| {
            matches!(
                &trace[*i].event,
                TraceEvent::EvsDeliver { from_node: 1, .. }
            )
        })
        .unwrap();
    let mut lost = trace.clone();
    lost.remove(from_1);
    let v = check_evs_safety(&lost);
    assert!(v.iter().any(|v| v.checker == "virtual_synchrony"), "{v:#?}");
    let mut swapped = trace.clone();
    let (a, b) = (delivered[10], delivered[11]);
    let ea = swapped[a].event.clone();
    swapped[a].event = swapped[b].event.clone();
    swapped[b].event = ea;
    let v = check_evs_safety(&swapped);
    assert!(v.iter().any(|v| v.checker == "agreed_order"), "{v:#?}");
}
