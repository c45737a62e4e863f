//! knet with two links in a mixed ring, in network namespaces (root and corosync only;
//! the test prints why it skipped otherwise): corosync 3.1.7 on nodes 1 and 3, totemd on
//! node 2, link 0 on one bridge and link 1 on another. Link 0 is cut at totemd's node
//! (`ip link set eth0 down` in its namespace): CPG traffic goes on over link 1 with no
//! membership change on any node; healed, link 0 comes back up; with both links cut the
//! node leaves the ring (libknet's host status: `_host_dstcache_update_sync`). The same in
//! each `link_mode`: passive, active (with knet crypto) and rr; and in passive mode with
//! link 1 preferred by `knet_link_priority`, whose cut moves the data to link 0. Each test
//! takes about 28 s.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::agent::{confchg_with, Agent};
use common::{libcpg_missing, skip_reason, Lab};

const FORM: Duration = Duration::from_secs(30);
const EVENT: Duration = Duration::from_secs(15);

fn skip(test: &str) -> bool {
    if let Some(why) = skip_reason(true).or_else(libcpg_missing) {
        eprintln!("SKIPPED {test}: {why}");
        return true;
    }
    false
}

/// Has corosync's log a ring of `members` ("1 2 3") with sync completed after it?
fn corosync_synced(log: &str, count: usize, members: &str) -> bool {
    log.rfind(&format!("[QUORUM] Members[{count}]: {members}"))
        .is_some_and(|i| log[i..].contains("Completed service synchronization"))
}

/// A synced ring of exactly `members` in a status file.
fn synced_with(members: &[u32]) -> impl Fn(&Value) -> bool + '_ {
    move |s| s["synced"] == true && s["state"] == "operational" && s["members"] == json!(members)
}

/// (link, connected, carries data) of each link to `host` in a status file.
fn links_of(status: &Value, host: u32) -> Vec<(u64, bool, bool)> {
    status["knet"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["host"] == host))
        .and_then(|h| h["links"].as_array())
        .map(|links| {
            links
                .iter()
                .map(|l| {
                    (
                        l["link"].as_u64().unwrap_or(99),
                        l["connected"] == true,
                        l["data"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every link of totemd (node 2) to nodes 1 and 3 as `want` says, link 0 then link 1:
/// (connected, carries data).
fn links_are(want: [(bool, bool); 2]) -> impl Fn(&Value) -> bool {
    move |s| {
        [1, 3]
            .iter()
            .all(|h| links_of(s, *h) == vec![(0, want[0].0, want[0].1), (1, want[1].0, want[1].1)])
    }
}

/// An agent on node `n` with handle h1 joined to `group`; waits for its own JOIN.
fn joined_agent(lab: &Lab, n: u32, group: &str) -> Agent {
    let mut a = Agent::spawn(&lab.ns(n), &format!("a{n}"), &lab.dir);
    a.ok(json!({"cmd": "initialize", "handle": "h1"}));
    a.ok(json!({"cmd": "join", "handle": "h1", "group": group}));
    let pid = a.pid;
    a.wait_for(EVENT, |v| confchg_with(v, group, "joined", pid, "JOIN"))
        .unwrap_or_else(|e| panic!("{e}"));
    a
}

/// Every agent multicasts `count` messages of 3000 bytes (knet fragments) tagged
/// `<round>n<node>` at once; every agent delivers all of them, in one order, FIFO per
/// sender. `so_far` is what each had delivered before.
fn burst(agents: &mut [Agent], round: &str, count: u64, so_far: usize) -> usize {
    let ids: Vec<u64> = agents
        .iter_mut()
        .enumerate()
        .map(|(i, a)| {
            let tag = format!("{round}n{}", i + 1);
            a.send(
                json!({"cmd": "mcast", "handle": "h1", "tag": tag, "size": 3000, "count": count}),
            )
        })
        .collect();
    for (a, id) in agents.iter_mut().zip(ids) {
        let r = a.result(id, Duration::from_secs(60));
        assert_eq!(
            (r["rc"].as_str(), r["sent"].as_u64()),
            (Some("CS_OK"), Some(count)),
            "{r}"
        );
    }
    let total = so_far + agents.len() * count as usize;
    for a in agents.iter_mut() {
        a.wait_deliveries(total, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{round}: {e}"));
    }
    let first = agents[0].deliveries();
    assert!(first.iter().all(|d| d.3 && d.2 == 3000), "all intact");
    for a in &agents[1..] {
        assert_eq!(a.deliveries(), first, "agent {}: one agreed order", a.name);
    }
    for i in 1..=agents.len() {
        let tag = format!("{round}n{i}");
        // The agent numbers a handle's messages on from the previous burst.
        let seqs: Vec<u64> = first.iter().filter(|d| d.0 == tag).map(|d| d.1).collect();
        let start = seqs.first().copied().unwrap_or(0);
        assert_eq!(
            seqs,
            (start..start + count).collect::<Vec<_>>(),
            "{tag}: FIFO, no gap"
        );
    }
    total
}

/// No agent saw a configuration change since `marks` (its event counts then).
fn no_confchg_since(agents: &mut [Agent], marks: &[usize]) {
    for (a, m) in agents.iter_mut().zip(marks) {
        a.poll();
        let changes: Vec<&Value> = a.events[*m..]
            .iter()
            .filter(|v| v["ev"] == "confchg" || v["ev"] == "totem_confchg")
            .collect();
        assert!(changes.is_empty(), "agent {}: {changes:?}", a.name);
    }
}

fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

// Reference: libknet 1.25 host.c::_host_dstcache_update_sync (passive: the best up link
// carries the data; the host stays reachable while any link is up), threads_heartbeat.c
// (a link goes down when its PONGs stop), corosync 3.1.7 totemknet.c (one knet host per
// node, one knet link per ringN_addr).
#[test]
fn a_mixed_ring_on_two_links_fails_over_to_link_1_and_back_and_loses_the_node_without_both() {
    if skip(
        "a_mixed_ring_on_two_links_fails_over_to_link_1_and_back_and_loses_the_node_without_both",
    ) {
        return;
    }
    two_link_ring("lk", "passive", false, 0);
}

// Reference: the same with `link_mode: active` (every up link carries every packet; the
// receiver delivers each seq_num once, host.c::_seq_num_lookup) and knet crypto
// (aes256/sha256, nss) on both links.
#[test]
fn an_active_mode_ring_with_crypto_on_two_links_delivers_once_and_survives_a_cut() {
    if skip("an_active_mode_ring_with_crypto_on_two_links_delivers_once_and_survives_a_cut") {
        return;
    }
    two_link_ring("la", "active", true, 0);
}

// Reference: the same with `link_mode: rr` (each packet on the next up link in turn,
// threads_tx.c::_dispatch_to_links): corosync's packets reach totemd over both links.
#[test]
fn a_round_robin_ring_on_two_links_survives_a_cut() {
    if skip("a_round_robin_ring_on_two_links_survives_a_cut") {
        return;
    }
    two_link_ring("lr", "rr", false, 0);
}

// Reference: the same in passive mode with `knet_link_priority: 5` on link 1 (corosync
// reads it per interface, totemconfig.c; libknet prefers the highest, host.c): link 1
// carries the data, and its cut moves it to link 0.
#[test]
fn a_passive_ring_preferring_link_1_by_priority_fails_over_to_link_0() {
    if skip("a_passive_ring_preferring_link_1_by_priority_fails_over_to_link_0") {
        return;
    }
    two_link_ring("lp", "passive", false, 1);
}

/// A key file of 256 random bytes in the lab's directory (what `corosync-keygen` writes).
fn write_key(lab: &Lab) -> String {
    let mut key = vec![0u8; 256];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("urandom");
    let path = lab.dir.join("authkey");
    std::fs::write(&path, &key).expect("key file");
    path.display().to_string()
}

/// What libknet logs when host 2's data links were chosen again
/// (`_host_dstcache_update_sync`): `link` the best (passive), or `count` links (active).
fn data_links_line(mode: &str, link: u8, count: u8) -> String {
    match mode {
        "passive" => format!("host: 2 (passive) best link: {link}"),
        _ => format!("host: 2 has {count} active links"),
    }
}

/// corosync on nodes 1 and 3, totemd on node 2, two links in link mode `mode`, link
/// `preferred` of higher priority when it is 1: that link cut at node 2 under traffic,
/// healed, then both cut.
fn two_link_ring(tag: &str, mode: &str, crypto: bool, preferred: u8) {
    let p = preferred;
    let o = 1 - p;
    // (connected, carries data) of the preferred and the other link, in link id order.
    let by_link = move |pref: (bool, bool), other: (bool, bool)| {
        if p == 0 {
            [pref, other]
        } else {
            [other, pref]
        }
    };
    let cut_dev = format!("eth{p}");
    // Active and rr: every up link carries data (libknet's active_links).
    let active = mode != "passive";
    let mut lab = Lab::new(tag, 3).expect("lab");
    lab.transport = "knet";
    lab.add_second_link().expect("second link");
    lab.totem_extra = format!("\tlink_mode: {mode}\n");
    if p == 1 {
        lab.totem_extra
            .push_str("\tinterface {\n\t\tlinknumber: 1\n\t\tknet_link_priority: 5\n\t}\n");
    }
    if crypto {
        let keyfile = write_key(&lab);
        lab.crypto = Some(format!(
            "\tcrypto_model: nss\n\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {keyfile}\n"
        ));
    }
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(3, 3);
    let status = lab.status_path(2).display().to_string();
    lab.spawn_totemd_with(2, 3, &["--status-file", &status]);
    lab.wait_status(2, FORM, synced_with(&[1, 2, 3]))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in [1, 3] {
        lab.wait_log(n, FORM, |l| corosync_synced(l, 3, "1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
        // corosync brought both of its links to totemd up.
        lab.wait_log(n, FORM, |l| {
            l.contains("host: 2 link: 0 is up") && l.contains("host: 2 link: 1 is up")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // Both links up; passive mode: the preferred link carries the data (link 0 on equal
    // priorities); active and rr: both do.
    let ring = lab
        .wait_status(2, FORM, links_are(by_link((true, true), (true, active))))
        .unwrap_or_else(|e| panic!("{e}"))["ring"]
        .clone();
    let mut agents: Vec<Agent> = (1..=3).map(|n| joined_agent(&lab, n, "links")).collect();
    let pids: Vec<u32> = agents.iter().map(|a| a.pid).collect();
    for a in agents.iter_mut() {
        a.wait_for(EVENT, |v| {
            v["ev"] == "confchg"
                && pids.iter().all(|p| {
                    v["members"]
                        .as_array()
                        .is_some_and(|m| m.iter().any(|e| e["pid"] == json!(p)))
                })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut delivered = burst(&mut agents, "both", 50, 0);
    // A link just up takes up to ten pong timeouts to be declared down: libknet starts the
    // backoff at KNET_LINK_PONG_TIMEOUT_BACKOFF (10) and lowers it by one a second
    // (threads_heartbeat.c::_adjust_pong_timeouts). Only once it is down to 1 does a cut
    // link go down (pong timeout token / 2 = 1825 ms) before the token is lost (3650 ms),
    // as on any cluster up for more than ten seconds.
    std::thread::sleep(Duration::from_secs(11));

    // Link 0 cut at node 2, with traffic in flight across the failover.
    let marks = lab.log_marks();
    let events: Vec<usize> = agents
        .iter_mut()
        .map(|a| {
            a.poll();
            a.events.len()
        })
        .collect();
    // Timed beside the traffic: when totemd's status first shows the link down.
    let status_path = lab.status_path(2);
    let cut = Instant::now();
    let watch = std::thread::spawn(move || {
        wait_for(FORM, || {
            std::fs::read_to_string(&status_path)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .filter(links_are(by_link((false, false), (true, true))))
                .map(|_| cut.elapsed())
        })
    });
    lab.set_link(2, &cut_dev, false).expect("cut the link");
    delivered = burst(&mut agents, "cut", 100, delivered);
    let burst_took = cut.elapsed();
    let failover = watch
        .join()
        .expect("watcher")
        .unwrap_or_else(|| panic!("link {p} never went down on totemd: {:?}", lab.status(2)));
    for n in [1, 3] {
        lab.wait_log(n, FORM, |l| {
            let new = marks.since(l, n);
            new.contains(&format!("host: 2 link: {p} is down"))
                && new.contains(&data_links_line(mode, o, 1))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let cut_seen_by_corosync = cut.elapsed();
    delivered = burst(&mut agents, "link1", 100, delivered);
    no_confchg_since(&mut agents, &events);
    let status = lab.status(2).expect("status");
    assert_eq!(status["ring"], ring, "no new ring on totemd: {status}");
    assert!(synced_with(&[1, 2, 3])(&status), "{status}");
    for n in [1, 3] {
        let new = marks.since(&lab.log(n), n);
        assert!(
            !new.contains("A new membership"),
            "node {n}: new ring after the cut:\n{new}"
        );
        assert!(!new.contains("has no active links"), "node {n}:\n{new}");
    }
    eprintln!(
        "{mode}: link {p} cut at totemd: down on totemd after {failover:?}, on both corosync by {cut_seen_by_corosync:?}; the burst across it delivered in {burst_took:?}; {delivered} deliveries, no membership change"
    );

    // Healed: the link comes back and carries the data again.
    let marks = lab.log_marks();
    let healed = Instant::now();
    lab.set_link(2, &cut_dev, true).expect("heal the link");
    lab.wait_status(2, FORM, links_are(by_link((true, true), (true, active))))
        .unwrap_or_else(|e| panic!("{e}"));
    let back = healed.elapsed();
    for n in [1, 3] {
        lab.wait_log(n, FORM, |l| {
            let new = marks.since(l, n);
            new.contains(&format!("host: 2 link: {p} is up"))
                && new.contains(&data_links_line(mode, p, 2))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    delivered = burst(&mut agents, "healed", 50, delivered);
    no_confchg_since(&mut agents, &events);
    assert_eq!(
        lab.status(2).expect("status")["ring"],
        ring,
        "still the same ring"
    );
    for n in [1, 3] {
        assert!(
            !marks.since(&lab.log(n), n).contains("A new membership"),
            "node {n}"
        );
    }
    eprintln!(
        "{mode}: link {p} healed: up again on totemd after {back:?}; {delivered} deliveries in all"
    );

    // Both links cut: node 2 is unreachable, the others go on without it.
    let marks = lab.log_marks();
    let gone = Instant::now();
    lab.set_link(2, "eth0", false).expect("cut link 0");
    lab.set_link(2, "eth1", false).expect("cut link 1");
    for n in [1, 3] {
        lab.wait_log(n, FORM, |l| {
            let new = marks.since(l, n);
            new.contains("host: 2 has no active links") && corosync_synced(&new, 2, "1 3")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    lab.wait_status(2, FORM, synced_with(&[2]))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{mode}: both links cut: corosync's ring without node 2 after {:?}",
        gone.elapsed()
    );

    // What each link carried, from totemd's counters at its exit.
    lab.stop(2, "TERM");
    let log = lab.log(2);
    let per_link: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("knet: host ") && l.contains(" link "))
        .collect();
    assert_eq!(per_link.len(), 4, "{log}");
    for line in &per_link {
        eprintln!("{mode}: {}", &line[line.find("knet: host").unwrap_or(0)..]);
    }
    if crypto {
        let counts: Vec<&str> = log.lines().filter(|l| l.contains("knet crypto:")).collect();
        assert!(
            counts.iter().any(|l| l.contains(" 0 dropped")),
            "every datagram verified: {counts:?}"
        );
    }
    drop(agents);
}
