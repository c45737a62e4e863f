//! A simulated knet ring: every node's engine speaks through `totem_knet`'s link layer, as
//! totemd's does with `transport: knet`. Links come up and go down on libknet's timers as
//! the configuration derives them, messages above the data MTU travel as fragments, and the
//! ring re-forms on link loss and heal as it does over udpu.

use totem_knet::KnetSettings;
use totem_sim::checkers::check_safety;
use totem_sim::pcap::PcapWriter;
use totem_sim::{NetworkOptions, Sim, Timings, TraceEvent};

/// `token: 1000`: knet's ping interval is 250 ms and its ping (pong) timeout 500 ms
/// (`calc_knet_ping_timers` with `knet_pong_count` 2).
const TOKEN_MS: u32 = 1000;

fn knet_cluster(seed: u64) -> Sim {
    let ids = [1, 2, 3];
    let timings = Timings {
        token_ms: TOKEN_MS,
        token_coefficient_ms: 0,
    };
    let mut sim = Sim::new(seed, &ids, NetworkOptions::default(), timings);
    sim.use_knet(KnetSettings::default());
    for id in ids {
        sim.start(id);
    }
    sim
}

/// Link changes as (time ms, node, peer, up).
fn links(sim: &Sim) -> Vec<(i64, u32, u32, bool)> {
    sim.trace()
        .iter()
        .filter_map(|e| match e.event {
            TraceEvent::Link { node, peer, up } => Some((e.time_us / 1000, node, peer, up)),
            _ => None,
        })
        .collect()
}

fn members(sim: &Sim, id: u32) -> Vec<u32> {
    let mut m = sim.node(id).expect("running").members().to_vec();
    m.sort_unstable();
    m
}

#[test]
fn links_come_up_after_pong_count_pongs_and_the_ring_forms_over_them() {
    let mut sim = knet_cluster(1);
    // totemd's knet sends its first pings at start, as libknet does when a link is
    // enabled; then every 250 ms.
    sim.run_for_ms(400);
    assert!(links(&sim).is_empty(), "two pongs are not enough");
    assert_eq!(members(&sim, 1), vec![1], "no link: alone");
    sim.run_for_ms(4600);
    let ups = links(&sim);
    // Pings at 0, 250 and 500 ms: the link comes up on the third counted PONG.
    assert_eq!(ups.len(), 6, "every directed link, once: {ups:?}");
    assert!(
        ups.iter()
            .all(|(t, _, _, up)| *up && (500..=510).contains(t)),
        "{ups:?}"
    );
    for id in 1..=3 {
        assert_eq!(members(&sim, id), vec![1, 2, 3], "node {id}");
        assert_eq!(sim.quorate(id), Some(true), "node {id}");
        for peer in (1..=3).filter(|p| *p != id) {
            assert_eq!(sim.knet_link_up(id, peer), Some(true));
        }
    }
    let stats = sim.knet_stats(2).unwrap();
    assert!(stats.pings_sent > 0 && stats.pongs_received > 0 && stats.replies_sent > 0);
    assert!(stats.messages_received > 0, "{stats:?}");
    assert!(check_safety(sim.trace()).is_empty());
}

#[test]
fn a_message_above_the_data_mtu_travels_as_fragments_and_is_delivered_whole() {
    let mut sim = knet_cluster(2);
    sim.capture_to(PcapWriter::new());
    sim.run_for_ms(3000);
    let conns: Vec<_> = (1..=3)
        .map(|id| {
            let c = sim.client_connect(id, false).unwrap();
            sim.client_join(id, c, b"g").unwrap();
            c
        })
        .collect();
    sim.run_for_ms(500);
    // 5000 bytes: four fragments of at most 1446 bytes (a 1500-byte path).
    sim.client_mcast_sized(1, conns[0], 5000).unwrap();
    sim.run_for_ms(500);
    let id = format!("1.{}.0", conns[0]);
    let mut delivered: Vec<u32> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Deliver { node, message, .. } if *message == id => Some(*node),
            _ => None,
        })
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, vec![1, 2, 3]);
    assert!(check_safety(sim.trace()).is_empty());

    // On the wire: knet only, nothing above the data MTU, and the inspector reassembles
    // the fragments into the CPG message.
    let pcap = sim.take_capture().unwrap().into_bytes();
    let path = std::env::temp_dir().join(format!("totem-sim-knet-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap).unwrap();
    let cli = <totem_inspect::cli::Cli as clap::Parser>::try_parse_from([
        "totem-inspect",
        "decode",
        "--format",
        "json",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let config = totem_inspect::cli::Config::from_cli(cli).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    totem_inspect::run(&config, &mut out, &mut err).unwrap();
    let _ = std::fs::remove_file(&path);
    let frames: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert!(frames.len() > 100);
    for f in &frames {
        assert_eq!(f["transport"], "knet", "{f}");
        assert!(f.get("error").is_none(), "{f}");
        assert!(f["udp_len"].as_u64().unwrap() <= 1446 + 26, "{f}");
    }
    let big: Vec<&serde_json::Value> = frames
        .iter()
        .flat_map(|f| f["messages"].as_array().into_iter().flatten())
        .filter(|m| m["sender"] == 1 && m["len"].as_u64().unwrap() > 5000)
        .collect();
    // Reassembled from four fragments (the inspector reports the copy for the other
    // receiver as the same message).
    assert!(!big.is_empty());
    assert!(big
        .iter()
        .all(|m| m["frames"].as_array().unwrap().len() == 4));
}

#[test]
fn a_partition_takes_the_links_down_on_the_pong_timeout_and_a_heal_brings_them_up() {
    let run = |seed| {
        let mut sim = knet_cluster(seed);
        // Long enough for the pong timeouts' backoff to have come down to 1.
        sim.run_for_ms(12_000);
        let cut_ms = sim.now().total_millis();
        sim.partition(&[vec![1, 2], vec![3]]);
        sim.run_for_ms(8_000);
        let heal_ms = sim.now().total_millis();
        sim.heal();
        sim.run_for_ms(8_000);
        (sim, cut_ms, heal_ms)
    };
    let (sim, cut_ms, heal_ms) = run(3);
    let changes: Vec<_> = links(&sim)
        .into_iter()
        .filter(|(t, ..)| *t >= cut_ms)
        .collect();
    // Down after the last PONG (at most one ping interval before the cut) + the pong
    // timeout (500 ms × backoff 1 + twice the latency): within 250..=501 ms of the cut.
    let downs: Vec<_> = changes.iter().filter(|c| !c.3).collect();
    assert_eq!(downs.len(), 4, "1↔3 and 2↔3: {changes:?}");
    assert!(
        downs
            .iter()
            .all(|(t, ..)| (cut_ms + 250..=cut_ms + 501).contains(t)),
        "{downs:?}"
    );
    assert!(downs.iter().all(|(_, n, p, _)| *n == 3 || *p == 3));
    // Up on the third counted PONG after the heal: within 3 ping intervals.
    let ups: Vec<_> = changes.iter().filter(|c| c.3).collect();
    assert_eq!(ups.len(), 4, "{changes:?}");
    assert!(
        ups.iter()
            .all(|(t, ..)| (heal_ms + 500..=heal_ms + 760).contains(t)),
        "{ups:?}"
    );
    // The rings followed the links, and so did the quorum.
    let regular: Vec<(i64, u32, Vec<u32>)> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::Totem {
                node,
                kind: "regular",
                members,
                ..
            } => Some((e.time_us / 1000, *node, members.clone())),
            _ => None,
        })
        .collect();
    let during = |node: u32| {
        regular
            .iter()
            .filter(|(t, n, _)| *n == node && *t > cut_ms && *t < heal_ms)
            .map(|(_, _, m)| m.clone())
            .next_back()
    };
    assert_eq!(during(1), Some(vec![1, 2]));
    assert_eq!(during(3), Some(vec![3]));
    for id in 1..=3 {
        assert_eq!(members(&sim, id), vec![1, 2, 3], "node {id} after the heal");
        assert_eq!(sim.quorate(id), Some(true));
    }
    assert!(check_safety(sim.trace()).is_empty());
    // Deterministic: the same seed, the same run.
    let (again, ..) = run(3);
    assert_eq!(sim.trace(), again.trace());
}

fn crypto(key_byte: u8) -> totem_knet::crypto::KnetCrypto {
    use totem_knet::crypto::{CryptoCipher, CryptoHash, CryptoModel, KnetCrypto};
    let key: Vec<u8> = (0..256u32).map(|i| (i as u8) ^ key_byte).collect();
    KnetCrypto::new(
        CryptoModel::Nss,
        CryptoCipher::Aes256,
        CryptoHash::Sha256,
        &key,
    )
    .unwrap()
}

fn crypto_cluster(seed: u64, wrong_key_node: Option<u32>) -> Sim {
    let ids = [1, 2, 3];
    let timings = Timings {
        token_ms: TOKEN_MS,
        token_coefficient_ms: 0,
    };
    let mut sim = Sim::new(seed, &ids, NetworkOptions::default(), timings);
    sim.use_knet(KnetSettings::default());
    sim.use_knet_crypto(crypto(0));
    if let Some(id) = wrong_key_node {
        sim.use_knet_crypto_for(id, crypto(0x5a));
    }
    for id in ids {
        sim.start(id);
    }
    sim
}

// Reference: totemd's knet crypto (protocol/daemon/src/link_crypto.rs): the ring forms and
// carries fragmented messages encrypted, on every seed tried.
#[test]
fn an_encrypted_knet_ring_forms_and_delivers_fragmented_messages_on_every_seed() {
    for seed in 1..=8 {
        let mut sim = crypto_cluster(seed, None);
        sim.run_for_ms(3000);
        let conns: Vec<_> = (1..=3)
            .map(|id| {
                let c = sim.client_connect(id, false).unwrap();
                sim.client_join(id, c, b"g").unwrap();
                c
            })
            .collect();
        sim.run_for_ms(500);
        // 5000 bytes: fragments of at most 1397 bytes (aes256/sha256 on a 1500-byte path).
        sim.client_mcast_sized(1, conns[0], 5000).unwrap();
        sim.run_for_ms(500);
        let id = format!("1.{}.0", conns[0]);
        let mut delivered: Vec<u32> = sim
            .trace()
            .iter()
            .filter_map(|e| match &e.event {
                TraceEvent::Deliver { node, message, .. } if *message == id => Some(*node),
                _ => None,
            })
            .collect();
        delivered.sort_unstable();
        assert_eq!(delivered, vec![1, 2, 3], "seed {seed}");
        for n in 1..=3 {
            assert_eq!(members(&sim, n), vec![1, 2, 3], "seed {seed} node {n}");
        }
        assert_eq!(sim.crypto_dropped(), 0, "seed {seed}");
        assert!(check_safety(sim.trace()).is_empty(), "seed {seed}");
    }
}

// Reference: libknet's threads_rx.c: a node with another key reads nothing and is read by
// no one; the others' ring goes on without it.
#[test]
fn a_node_with_another_key_stays_alone_and_the_others_ring_is_intact() {
    let mut sim = crypto_cluster(3, Some(3));
    sim.run_for_ms(10_000);
    assert_eq!(members(&sim, 1), vec![1, 2]);
    assert_eq!(members(&sim, 2), vec![1, 2]);
    assert_eq!(members(&sim, 3), vec![3]);
    assert_eq!(sim.knet_link_up(1, 3), Some(false));
    assert!(sim.crypto_dropped() > 20, "{}", sim.crypto_dropped());
    assert!(check_safety(sim.trace()).is_empty());
}
