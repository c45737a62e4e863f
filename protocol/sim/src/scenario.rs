//! Random runs (the sweep): one seed chooses the cluster, the network, the client traffic and
//! the faults; a safety phase with faults is followed by a liveness phase without them.

use serde::Serialize;
use totem_cpg::CpgError;
use totem_srp::Duration;

use crate::checkers::{check_safety, classify_join_ping_pong, liveness, Violation};
use crate::rng::Rng;
use crate::sim::{NetworkOptions, Sim, SimStats, Timings, TraceEntry};

/// What a seed chose.
#[derive(Debug, Clone, Serialize)]
pub struct RunOptions {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// The network during the safety phase.
    pub network: NetworkOptions,
    /// Ring timings.
    pub timings: Timings,
    /// Length of the safety phase (ms of virtual time).
    pub safety_ms: u64,
    /// Bound on convergence once faults stop (ms).
    pub liveness_ms: u64,
}

impl RunOptions {
    /// The options seed `seed` stands for.
    pub fn from_seed(seed: u64) -> RunOptions {
        let mut rng = Rng::new(seed ^ 0x5EED_0F70_7E55_1A57);
        let lossy = rng.chance(0.6);
        RunOptions {
            seed,
            nodes: rng.range(2, 5) as u32,
            network: NetworkOptions {
                one_way_delay_min_us: rng.range(20, 200),
                one_way_delay_mean_us: rng.range(200, 2000),
                packet_loss_probability: if lossy {
                    rng.range(0, 80) as f64 / 1000.0
                } else {
                    0.0
                },
                packet_replay_probability: if rng.chance(0.3) {
                    rng.range(0, 50) as f64 / 1000.0
                } else {
                    0.0
                },
            },
            timings: Timings {
                token_ms: rng.range(500, 1500) as u32,
                token_coefficient_ms: 0,
            },
            safety_ms: rng.range(10_000, 30_000),
            liveness_ms: 60_000,
        }
    }
}

/// A CPG client of the scenario, behaving as a libcpg application does: a join or mcast
/// answered CS_ERR_TRY_AGAIN (a node that is syncing, has not completed its first sync since
/// it started — main.c sync_in_process starts at 1 — or whose queue is full:
/// corosync_sending_allowed) is tried again at the next traffic step, not dropped. A client
/// whose join has not succeeded yet sends nothing.
#[derive(Debug, Clone)]
struct Client {
    node: u32,
    conn: u64,
    /// The group a join answered CS_ERR_TRY_AGAIN is still to join.
    join: Option<&'static [u8]>,
    /// An mcast answered CS_ERR_TRY_AGAIN is still to be sent.
    mcast_pending: bool,
}

impl Client {
    /// Connects to `node` as `conn` and joins `group` (or will, once the node lets it).
    fn joining(sim: &mut Sim, node: u32, conn: u64, group: &'static [u8]) -> Client {
        let mut client = Client {
            node,
            conn,
            join: Some(group),
            mcast_pending: false,
        };
        client.try_join(sim);
        client
    }

    fn try_join(&mut self, sim: &mut Sim) {
        if let Some(group) = self.join {
            // Only CS_ERR_TRY_AGAIN is worth another try; any other error ends the join.
            if sim.client_join(self.node, self.conn, group) != Err(CpgError::TryAgain) {
                self.join = None;
            }
        }
    }

    /// Tries again what was answered CS_ERR_TRY_AGAIN; the messages sent (0 or 1).
    fn retry(&mut self, sim: &mut Sim) -> u64 {
        self.try_join(sim);
        if self.mcast_pending {
            self.mcast_pending = false;
            return self.mcast(sim);
        }
        0
    }

    /// `cpg_mcast_joined` of the client's next message; the messages sent (0 or 1).
    fn mcast(&mut self, sim: &mut Sim) -> u64 {
        if self.join.is_some() || self.mcast_pending {
            return 0;
        }
        match sim.client_mcast(self.node, self.conn) {
            Ok(()) => 1,
            Err(CpgError::TryAgain) => {
                self.mcast_pending = true;
                0
            }
            Err(_) => 0,
        }
    }
}

/// The result of one seed.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What was run.
    pub options: RunOptions,
    /// Faults injected (crashes, restarts, partitions, pauses).
    pub faults: u64,
    /// Messages the clients multicast successfully.
    pub messages_sent: u64,
    /// Network counters.
    pub stats: SimStats,
    /// Broken properties.
    pub violations: Vec<Violation>,
    /// The trace (kept for replay output).
    #[serde(skip)]
    pub trace: Vec<TraceEntry>,
}

/// Runs seed `seed`; with `capture`, the simulated traffic is recorded as a pcap.
pub fn run_seed(seed: u64, capture: bool) -> (RunReport, Option<Vec<u8>>) {
    let options = RunOptions::from_seed(seed);
    let ids: Vec<u32> = (1..=options.nodes).collect();
    let mut sim = Sim::new(seed, &ids, options.network.clone(), options.timings);
    if capture {
        sim.capture_to(crate::pcap::PcapWriter::new());
    }
    let mut rng = Rng::new(seed.rotate_left(17) ^ 0xC0FF_EE00);
    for id in &ids {
        sim.start(*id);
    }
    sim.run_for_ms(u64::from(options.timings.token_ms) * 4);
    // One client per node joins group "sim"; some nodes get a second one in group "other".
    let mut clients: Vec<Client> = Vec::new();
    for id in &ids {
        for group in [&b"sim"[..], b"other"] {
            if group == b"other" && !rng.chance(0.3) {
                continue;
            }
            if let Some(conn) = sim.client_connect(*id, rng.chance(0.5)) {
                clients.push(Client::joining(&mut sim, *id, conn, group));
            }
        }
    }
    let mut faults = 0u64;
    let mut messages_sent = 0u64;
    let mut crashed: Vec<u32> = Vec::new();
    let step_ms = 20;
    let steps = options.safety_ms / step_ms;
    for _ in 0..steps {
        // Calls answered CS_ERR_TRY_AGAIN before are tried again, in client order.
        for client in &mut clients {
            messages_sent += client.retry(&mut sim);
        }
        // Traffic: a few messages from random clients.
        for _ in 0..rng.below(3) {
            if clients.is_empty() {
                break;
            }
            let index = rng.below(clients.len() as u64) as usize;
            messages_sent += clients[index].mcast(&mut sim);
        }
        // Faults, rarely.
        match rng.below(1000) {
            0..=3 if crashed.len() + 1 < ids.len() => {
                let victim = ids[rng.below(ids.len() as u64) as usize];
                if !crashed.contains(&victim) {
                    sim.crash(victim);
                    crashed.push(victim);
                    clients.retain(|c| c.node != victim);
                    faults += 1;
                }
            }
            4..=7 if !crashed.is_empty() => {
                let back = crashed.remove(rng.below(crashed.len() as u64) as usize);
                sim.start(back);
                if let Some(conn) = sim.client_connect(back, false) {
                    clients.push(Client::joining(&mut sim, back, conn, b"sim"));
                }
                faults += 1;
            }
            8..=10 => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                for id in &ids {
                    if rng.chance(0.5) {
                        a.push(*id);
                    } else {
                        b.push(*id);
                    }
                }
                if !a.is_empty() && !b.is_empty() {
                    sim.partition(&[a, b]);
                    faults += 1;
                }
            }
            11..=16 => sim.heal(),
            17 => {
                let victim = ids[rng.below(ids.len() as u64) as usize];
                let pause = u64::from(options.timings.token_ms) * rng.range(1, 3) / 2 + 100;
                sim.pause(victim, Duration::from_millis(pause));
                faults += 1;
            }
            18 => {
                // An asymmetric fault: one direction of one link.
                let from = ids[rng.below(ids.len() as u64) as usize];
                let to = ids[rng.below(ids.len() as u64) as usize];
                if from != to {
                    sim.cut_links(&[(from, to)]);
                    faults += 1;
                }
            }
            // A client leaves or exits.
            19 if clients.len() > 1 => {
                let index = rng.below(clients.len() as u64) as usize;
                let client = clients.remove(index);
                if rng.chance(0.5) && client.join.is_none() {
                    // A leave answered CS_ERR_TRY_AGAIN is not retried: the client is gone
                    // from the scenario, as if it exited right after.
                    if sim.client_leave(client.node, client.conn) == Err(CpgError::TryAgain) {
                        sim.client_disconnect(client.node, client.conn);
                    }
                } else {
                    sim.client_disconnect(client.node, client.conn);
                }
            }
            _ => {}
        }
        sim.run_for_ms(step_ms);
        // A spent datagram budget stops the simulation (Sim::run_until runs nothing more):
        // crashes, restarts and calls after it would change the state of nodes that no longer
        // run, and the checkers must judge the cluster as the livelock left it.
        if sim.stats().budget_exhausted {
            break;
        }
    }
    if !sim.stats().budget_exhausted {
        // Liveness phase: no more faults; crashed nodes come back.
        sim.heal();
        sim.set_network(NetworkOptions {
            packet_loss_probability: 0.0,
            packet_replay_probability: 0.0,
            ..options.network.clone()
        });
        for id in crashed {
            sim.start(id);
        }
        sim.run_for_ms(options.liveness_ms);
    }
    let mut violations = check_safety(sim.trace());
    violations.extend(liveness(&sim));
    if sim.stats().budget_exhausted {
        violations.push(Violation {
            checker: "datagram_budget",
            detail: format!(
                "more than {} datagrams by {}: a livelock",
                crate::sim::DATAGRAM_BUDGET,
                sim.now()
            ),
            corosync_equivalent: None,
        });
    }
    classify_join_ping_pong(&sim, &mut violations);
    let capture = sim.take_capture().map(|c| c.into_bytes());
    (
        RunReport {
            options,
            faults,
            messages_sent,
            stats: sim.stats(),
            violations,
            trace: sim.trace().to_vec(),
        },
        capture,
    )
}
