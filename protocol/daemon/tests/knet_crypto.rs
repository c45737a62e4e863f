//! knet crypto in real rings, in network namespaces (root only; each test prints why it
//! skipped otherwise): three totemd with aes256/sha256, two real corosync 3.1.7 with one
//! totemd under nss and openssl, and a totemd with the wrong key. The bridge is captured and
//! every datagram on it is checked against the key.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use totem_knet::crypto::{CryptoCipher, CryptoHash, CryptoModel, KnetCrypto};
use totem_wire::knet::{KnetBody, KnetPacket};

use common::agent::{confchg_with, Agent};
use common::{libcpg_missing, skip_reason, Lab};

const FORM: Duration = Duration::from_secs(30);
const EVENT: Duration = Duration::from_secs(15);
/// libknet 1.25's data MTU with aes256/sha256 on a 1500-byte path ("Global data MTU
/// changed to: 1397", fixtures/pcap/corosync-3.1.7/knet-crypto/README.md).
const DATA_MTU_AES256_SHA256: usize = 1397;

fn skip(test: &str, need_corosync: bool) -> bool {
    if let Some(why) = skip_reason(need_corosync).or_else(libcpg_missing) {
        eprintln!("SKIPPED {test}: {why}");
        return true;
    }
    false
}

/// A key file of 256 random bytes in the lab's directory (what `corosync-keygen` writes).
fn write_key(lab: &Lab, name: &str) -> (String, Vec<u8>) {
    let mut key = vec![0u8; 256];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("urandom");
    let path = lab.dir.join(name);
    std::fs::write(&path, &key).expect("key file");
    (path.display().to_string(), key)
}

fn crypto_lines(model: &str, keyfile: &str) -> String {
    format!(
        "\tcrypto_model: {model}\n\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {keyfile}\n"
    )
}

/// A synced ring of exactly `members` in a status file.
fn synced_with(members: &[u32]) -> impl Fn(&Value) -> bool + '_ {
    move |s| s["synced"] == true && s["state"] == "operational" && s["members"] == json!(members)
}

/// Has corosync's log a ring of `members` ("1 2 3") with sync completed after it?
fn corosync_synced(log: &str, count: usize, members: &str) -> bool {
    log.rfind(&format!("[QUORUM] Members[{count}]: {members}"))
        .is_some_and(|i| log[i..].contains("Completed service synchronization"))
}

/// totemd on node `n` with its status file, sending each datagram with its own system call
/// so that the bridge capture shows the datagrams as sent.
fn spawn_totemd(lab: &mut Lab, n: u32) {
    let status = lab.status_path(n).display().to_string();
    lab.spawn_totemd_with(n, 3, &["--status-file", &status, "--no-udp-gso"]);
}

/// An agent on node `n` with handle h1 joined to `group`; waits for its own JOIN.
fn joined_agent(lab: &Lab, n: u32, name: &str, group: &str) -> Agent {
    let mut a = Agent::spawn(&lab.ns(n), name, &lab.dir);
    a.ok(json!({"cmd": "initialize", "handle": "h1"}));
    a.ok(json!({"cmd": "join", "handle": "h1", "group": group}));
    let pid = a.pid;
    a.wait_for(EVENT, |v| confchg_with(v, group, "joined", pid, "JOIN"))
        .unwrap_or_else(|e| panic!("{e}"));
    a
}

/// One agent per node joined to `group`, each having seen the others join; then the
/// agents of `senders` multicast `count` messages of 3000 bytes each at once (above the
/// data MTU: every message travels as knet fragments). Every agent delivers them all, in
/// one order: the order is returned.
fn cpg_traffic(
    lab: &Lab,
    group: &str,
    senders: &[u32],
    count: u64,
) -> Vec<(String, u64, u64, bool)> {
    let mut agents: Vec<Agent> = (1..=3)
        .map(|n| joined_agent(lab, n, &format!("a{n}"), group))
        .collect();
    let pids: Vec<u32> = agents.iter().map(|a| a.pid).collect();
    // Each sees a configuration with all three (the later ones see the earlier as members
    // already there, not as JOINs).
    for a in agents.iter_mut() {
        a.wait_for(EVENT, |v| {
            v["ev"] == "confchg"
                && v["group"] == group
                && pids.iter().all(|p| {
                    v["members"]
                        .as_array()
                        .is_some_and(|m| m.iter().any(|e| e["pid"] == json!(p)))
                })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let ids: Vec<(usize, u64)> = senders
        .iter()
        .map(|n| {
            let i = *n as usize - 1;
            let tag = format!("n{n}");
            let id = agents[i].send(
                json!({"cmd": "mcast", "handle": "h1", "tag": tag, "size": 3000, "count": count}),
            );
            (i, id)
        })
        .collect();
    for (i, id) in ids {
        let r = agents[i].result(id, Duration::from_secs(60));
        assert_eq!(
            (r["rc"].as_str(), r["sent"].as_u64()),
            (Some("CS_OK"), Some(count)),
            "{r}"
        );
    }
    let total = senders.len() * count as usize;
    for a in agents.iter_mut() {
        a.wait_deliveries(total, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let first = agents[0].deliveries();
    assert_eq!(first.len(), total);
    assert!(first.iter().all(|d| d.3 && d.2 == 3000), "all intact");
    for a in &agents[1..] {
        assert_eq!(a.deliveries(), first, "agent {}: one agreed order", a.name);
    }
    for n in senders {
        let tag = format!("n{n}");
        let seqs: Vec<u64> = first.iter().filter(|d| d.0 == tag).map(|d| d.1).collect();
        assert_eq!(seqs, (0..count).collect::<Vec<_>>(), "{tag}: FIFO, no gap");
    }
    first
}

/// The (source node, UDP payload) of every knet datagram (port 5405) of a little-endian
/// Ethernet/IPv4 pcap.
fn knet_datagrams(path: &std::path::Path) -> Vec<(u8, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + caplen) else {
            break;
        };
        at += 16 + caplen;
        if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let udp = 14 + ihl;
        let port = u16::from_be_bytes([frame[udp + 2], frame[udp + 3]]);
        let len = usize::from(u16::from_be_bytes([frame[udp + 4], frame[udp + 5]]));
        if port != 5405 {
            continue;
        }
        if let Some(p) = frame.get(udp + 8..udp + len) {
            // 10.200.0.1N: node N.
            out.push((frame[14 + 15] - 10, p.to_vec()));
        }
    }
    out
}

/// Every datagram on the bridge verifies and decrypts with `key` (none is clear) and is a
/// knet packet whose encrypted form fits a 1500-byte path; returns the largest DATA
/// payload each node sent (its knet fragment size).
fn check_capture(lab: &mut Lab, key: &[u8], model: CryptoModel) -> Vec<(u8, usize)> {
    let pcap = lab.stop_capture().expect("capture (is tcpdump installed?)");
    let crypto =
        KnetCrypto::new(model, CryptoCipher::Aes256, CryptoHash::Sha256, key).expect("crypto");
    let datagrams = knet_datagrams(&pcap);
    assert!(
        datagrams.len() > 100,
        "{} datagrams captured",
        datagrams.len()
    );
    let mut largest: Vec<(u8, usize)> = Vec::new();
    for (node, d) in &datagrams {
        assert!(
            d.len() + 28 <= 1500,
            "node {node}: a {}-byte datagram",
            d.len()
        );
        let plain = crypto
            .decrypt(d)
            .unwrap_or_else(|e| panic!("node {node}: a datagram of {} bytes: {e}", d.len()));
        let packet = KnetPacket::parse(&plain).unwrap_or_else(|e| panic!("node {node}: {e}"));
        if let KnetBody::Data(data) = packet.body {
            match largest.iter_mut().find(|(n, _)| n == node) {
                Some((_, l)) => *l = (*l).max(data.payload.len()),
                None => largest.push((*node, data.payload.len())),
            }
        }
    }
    largest.sort();
    eprintln!(
        "{} datagrams on the bridge, all encrypted with the ring's key; largest knet DATA payload per node: {largest:?}",
        datagrams.len()
    );
    largest
}

/// SIGTERM, exit 0, and the crypto counters of the exit summary: (encrypted, decrypted,
/// dropped, bad HMAC).
fn stop_and_count(lab: &mut Lab, n: u32) -> (u64, u64, u64, u64) {
    assert_eq!(lab.stop(n, "TERM"), Some(0), "totemd exits 0 on SIGTERM");
    let log = lab.log(n);
    let line = log
        .lines()
        .find(|l| l.contains("[KNET  ] knet crypto: "))
        .unwrap_or_else(|| panic!("node {n}: no crypto summary:\n{log}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    // The timestamp's numbers come first; the summary's five are last.
    let [enc, dec, dropped, bad, _malformed] = numbers[numbers.len() - 5..] else {
        panic!("{line}");
    };
    eprintln!("node {n}: {line}");
    (enc, dec, dropped, bad)
}

// Reference: totemknet.c::totemknet_initialize (crypto set up, clear traffic refused when
// crypto is on), libknet 1.25's crypto framing (totem_knet::crypto, proven on corosync's
// captures) and data MTU (calc_max_data_outlen: 1397 with aes256/sha256).
#[test]
fn three_totemd_with_aes256_sha256_form_a_ring_and_carry_cpg_encrypted() {
    if skip(
        "three_totemd_with_aes256_sha256_form_a_ring_and_carry_cpg_encrypted",
        false,
    ) {
        return;
    }
    let mut lab = Lab::new("ka", 3).expect("lab");
    lab.transport = "knet";
    let (keyfile, key) = write_key(&lab, "authkey");
    lab.crypto = Some(crypto_lines("nss", &keyfile));
    lab.start_capture();
    for n in 1..=3 {
        spawn_totemd(&mut lab, n);
    }
    for n in 1..=3 {
        let s = lab
            .wait_status(n, FORM, synced_with(&[1, 2, 3]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s["knet_crypto_dropped"], 0, "{s}");
        let log = lab.log(n);
        assert!(
            log.contains("pmtud: Global data MTU changed to: 1397"),
            "{log}"
        );
    }
    let order = cpg_traffic(&lab, "crypto", &[1, 3], 100);
    eprintln!(
        "3 totemd, aes256/sha256: {} deliveries in one order on all three",
        order.len()
    );
    for n in (1..=3).rev() {
        let (enc, dec, dropped, _) = stop_and_count(&mut lab, n);
        assert!(enc > 0 && dec > 0, "node {n}");
        assert_eq!(dropped, 0, "node {n}: nothing dropped in a ring of one key");
    }
    let largest = check_capture(&mut lab, &key, CryptoModel::Nss);
    let senders: Vec<(u8, usize)> = largest.into_iter().filter(|(n, _)| *n != 2).collect();
    assert_eq!(
        senders,
        [(1, DATA_MTU_AES256_SHA256), (3, DATA_MTU_AES256_SHA256)],
        "the senders' fragments are libknet's data MTU"
    );
}

/// Two corosync 3.1.7 (nodes 1, 2) and one totemd (node 3), all with `model`,
/// aes256/sha256 and one key: they form one ring and carry CPG traffic from a corosync
/// client and totemd's in one order on all three.
fn mixed_ring_with(model: &str, tag: &str) {
    let mut lab = Lab::new(tag, 3).expect("lab");
    lab.transport = "knet";
    let (keyfile, key) = write_key(&lab, "authkey");
    lab.crypto = Some(crypto_lines(model, &keyfile));
    lab.start_capture();
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(2, 3);
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| corosync_synced(l, 2, "1 2"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    spawn_totemd(&mut lab, 3);
    lab.wait_status(3, FORM, synced_with(&[1, 2, 3]))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| corosync_synced(l, 3, "1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
        let log = lab.log(n);
        assert!(
            log.contains(&format!("crypto_{model}.so has been loaded")),
            "node {n}:\n{log}"
        );
        assert!(!log.contains("Unable to decrypt"), "node {n}:\n{log}");
    }
    let order = cpg_traffic(&lab, "mixedcrypto", &[1, 2, 3], 60);
    let changes = order.windows(2).filter(|w| w[0].0 != w[1].0).count();
    eprintln!(
        "mixed ring ({model}): {} deliveries in one order on all three nodes, sender changes {changes} times",
        order.len()
    );
    let (enc, dec, dropped, _) = stop_and_count(&mut lab, 3);
    assert!(enc > 0 && dec > 0);
    assert_eq!(dropped, 0);
    lab.wait_log(1, FORM, |l| corosync_synced(l, 2, "1 2"))
        .unwrap_or_else(|e| panic!("{e}"));
    let log = lab.log(1);
    let tail = &log[log.rfind("Members[3]").unwrap_or(0)..];
    assert!(
        !tail.contains("Failed to receive the leave message"),
        "totemd left with an encrypted LEAVE:\n{tail}"
    );
    let model = CryptoModel::from_name(model).expect("model");
    let largest = check_capture(&mut lab, &key, model);
    assert_eq!(
        largest,
        [
            (1, DATA_MTU_AES256_SHA256),
            (2, DATA_MTU_AES256_SHA256),
            (3, DATA_MTU_AES256_SHA256)
        ],
        "totemd's knet fragments are the size of corosync's"
    );
}

// Reference: the same, against real corosync 3.1.7 (libknet 1.25's crypto_nss.so).
#[test]
fn mixed_ring_two_corosync_one_totemd_with_nss_crypto_carries_cpg_in_one_order() {
    if skip(
        "mixed_ring_two_corosync_one_totemd_with_nss_crypto_carries_cpg_in_one_order",
        true,
    ) {
        return;
    }
    mixed_ring_with("nss", "kn");
}

// Reference: the same with libknet 1.25's crypto_openssl.so.
#[test]
fn mixed_ring_two_corosync_one_totemd_with_openssl_crypto_carries_cpg_in_one_order() {
    if skip(
        "mixed_ring_two_corosync_one_totemd_with_openssl_crypto_carries_cpg_in_one_order",
        true,
    ) {
        return;
    }
    mixed_ring_with("openssl", "ko");
}

// Reference: libknet's threads_rx.c (a packet that does not authenticate is dropped
// before anything reads it, "Unable to decrypt packet from ..."), corosync's ring of the
// nodes that share the key.
#[test]
fn a_totemd_with_the_wrong_key_does_not_join_and_counts_what_it_drops() {
    if skip(
        "a_totemd_with_the_wrong_key_does_not_join_and_counts_what_it_drops",
        true,
    ) {
        return;
    }
    let mut lab = Lab::new("kw", 3).expect("lab");
    lab.transport = "knet";
    let (keyfile, _) = write_key(&lab, "authkey");
    let (wrong, _) = write_key(&lab, "wrongkey");
    lab.crypto = Some(crypto_lines("nss", &keyfile));
    lab.crypto_for = vec![(3, crypto_lines("nss", &wrong))];
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(2, 3);
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| corosync_synced(l, 2, "1 2"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let marks = lab.log_marks();
    spawn_totemd(&mut lab, 3);
    // totemd hears the others (their heartbeat) but cannot read them: it reports that at
    // once and then at most every 10 s; the second report shows more than 10 s of a ring
    // it could not join.
    lab.wait_log(3, FORM, |l| {
        l.matches("rx: Unable to decrypt packet from 10.200.0.1")
            .count()
            >= 2
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let status = lab.status(3).expect("status");
    assert_eq!(status["members"], json!([3]), "alone: {status}");
    lab.wait_status(3, EVENT, |s| s["knet_crypto_dropped"].as_u64() > Some(10))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in 1..=2 {
        let since = marks.since(&lab.log(n), n);
        assert!(
            !since.contains("Members["),
            "node {n}'s ring changed:\n{since}"
        );
        assert!(
            since.contains("Unable to decrypt packet from 10.200.0.13"),
            "node {n} refuses totemd's packets:\n{since}"
        );
    }
    let q = lab.tool(1, "corosync-quorumtool -s");
    assert!(q.contains("Nodes:            2"), "{q}");
    let log = lab.log(3);
    let reports = log.matches("rx: Unable to decrypt packet").count();
    assert!(reports <= 3, "{reports} reports in about 10 s:\n{log}");
    let (_, dec, dropped, bad) = stop_and_count(&mut lab, 3);
    assert_eq!(dec, 0, "nothing decrypted with the wrong key");
    assert!(
        bad > 10 && bad == dropped,
        "{bad} bad HMACs of {dropped} drops"
    );
    assert!(!log.contains("[QUORUM] Members[2]") && !log.contains("[QUORUM] Members[3]"));
}

// Reference: totemconfig.c::totem_config_keyread: `totem.key` is taken from cmap with its
// length, which for a string counts the terminating NUL; `secauth: on` is aes256/sha256.
// If totemd keyed its HMAC with the characters alone, corosync would refuse every packet.
#[test]
fn a_key_in_corosync_conf_and_secauth_on_make_the_same_ring_with_corosync() {
    if skip(
        "a_key_in_corosync_conf_and_secauth_on_make_the_same_ring_with_corosync",
        true,
    ) {
        return;
    }
    let mut lab = Lab::new("kk", 3).expect("lab");
    lab.transport = "knet";
    // 127 characters: with the NUL, the 128 bytes corosync requires at least.
    let key: String = (0..127)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    lab.crypto = Some(format!("\tsecauth: on\n\tkey: {key}\n"));
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(2, 3);
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| corosync_synced(l, 2, "1 2"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    spawn_totemd(&mut lab, 3);
    lab.wait_status(3, FORM, synced_with(&[1, 2, 3]))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| corosync_synced(l, 3, "1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (enc, dec, dropped, _) = stop_and_count(&mut lab, 3);
    assert!(enc > 0 && dec > 0);
    assert_eq!(dropped, 0);
}
