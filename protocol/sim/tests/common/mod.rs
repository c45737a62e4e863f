//! What the simulator tests shaped after the daemon's lab tests share: a three-node ring
//! set up as the lab runs it, and the nodes' states for a failure message.

use totem_sim::{NetworkOptions, Sim, Timings};

/// Nodes 1–3 with corosync.conf's defaults for three nodes (token 1000 + 650 per node
/// beyond two), on the veths of an idle machine (even seeds) or of a loaded one (odd
/// seeds), where a datagram may wait `loaded_mean_us` on average for its reader to be
/// scheduled; with `pcap`, the traffic is recorded for `totem-inspect`.
pub(crate) fn three_node_lab(seed: u64, loaded_mean_us: u64, pcap: bool) -> Sim {
    let network = if seed % 2 == 0 {
        NetworkOptions::default()
    } else {
        NetworkOptions {
            one_way_delay_min_us: 50,
            one_way_delay_mean_us: loaded_mean_us,
            ..NetworkOptions::default()
        }
    };
    let mut sim = Sim::new(
        seed,
        &[1, 2, 3],
        network,
        Timings {
            token_ms: 1000,
            token_coefficient_ms: 650,
        },
    );
    if pcap {
        sim.capture_to(totem_sim::pcap::PcapWriter::new());
    }
    sim
}

/// One line per node of `ids`: its membership state, ring, members and whether it syncs.
pub(crate) fn node_states(sim: &Sim, ids: &[u32]) -> String {
    ids.iter()
        .map(|n| match sim.node(*n) {
            Some(node) => format!(
                "node {n}: {:?} ring {} members {:?} syncing {}",
                node.state(),
                node.ring_id(),
                node.members(),
                node.syncing()
            ),
            None => format!("node {n}: down"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
