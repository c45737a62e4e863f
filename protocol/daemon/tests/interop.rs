//! totemd in real rings, in network namespaces (root only; skipped with the reason
//! otherwise): three totemd alone, and two real corosync 3.1.7 with one totemd.

mod common;

use std::time::{Duration, Instant};

use common::{skip_reason, Lab};

const FORM: Duration = Duration::from_secs(20);
const SYNCED: &str = "Completed service synchronization, ready to provide service.";

/// The log's lines from the last one containing `marker` on.
fn after_last<'a>(log: &'a str, marker: &str) -> &'a str {
    log.rfind(marker).map_or("", |i| &log[i..])
}

/// Has the node formed a ring of `members` and finished sync on it?
fn synced_with(log: &str, members: &str) -> bool {
    let tail = after_last(log, &format!("[QUORUM] Members[{members}"));
    !tail.is_empty() && tail.contains(SYNCED)
}

/// What 3.1.7 logs when a foreign node trips one of its traps (totem-wire.md §4.5): the
/// config_version shutdown, an assert (votequorum nodeid 0), any exit.
fn assert_no_trap(lab: &Lab, n: u32) {
    let log = lab.log(n);
    for bad in [
        "Assertion",
        "assert",
        "Exiting",
        "exiting",
        "shut down",
        "error",
        "stalled",
    ] {
        assert!(!log.contains(bad), "node {n} logged {bad:?}:\n{log}");
    }
}

// Reference: totem-wire.md §4.5 (a full member finishes sync with everyone) and
// main.c::corosync_sync_completed's message.
#[test]
fn three_totemd_form_a_ring_and_leave_cleanly() {
    if let Some(why) = skip_reason(false) {
        eprintln!("skipped: {why}");
        return;
    }
    let mut lab = Lab::new("a", 3).expect("lab");
    let started = Instant::now();
    for n in 1..=3 {
        lab.spawn_totemd(n, 3);
    }
    for n in 1..=3 {
        lab.wait_log(n, FORM, |l| synced_with(l, "3]: 1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "node {n}: ring of 3 synced {:?} after the start of the first",
            started.elapsed()
        );
        let log = lab.log(n);
        assert!(log.contains("was formed. Members joined:"), "{log}");
    }
    // A clean stop leaves the ring with a LEAVE: the others say "left", not "failed".
    // Only what is logged from now on counts (the ring of 1 and 2 that formed before node 3
    // joined is in the logs already).
    let marks = lab.log_marks();
    assert_eq!(lab.stop(3, "TERM"), Some(0), "totemd exits 0 on SIGTERM");
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| synced_with(&marks.since(l, n), "2]: 1 2"))
            .unwrap_or_else(|e| panic!("{e}"));
        let log = lab.log(n);
        let tail = after_last(&log, "Members left: 3");
        assert!(!tail.is_empty(), "node {n}:\n{log}");
        assert!(
            !tail.contains("Failed to receive the leave message"),
            "node {n}:\n{log}"
        );
    }
    assert!(lab.log(3).contains("Node was shut down by a signal"));
    // A crash: no LEAVE. Node 1 loses the token, says so in corosync's words, and forms a
    // ring alone after token (3650 ms for a 3-node nodelist) + consensus (4380 ms).
    lab.stop(2, "KILL");
    lab.wait_log(1, Duration::from_secs(30), |l| {
        let tail = after_last(l, "Members left: 2");
        tail.contains("[QUORUM] Members[1]: 1") && tail.contains(SYNCED)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let log = lab.log(1);
    let tail = after_last(&log, "Members[2]: 1 2");
    for line in [
        "[TOTEM ] Token has not been received in ",
        "[TOTEM ] A processor failed, forming new configuration: token timed out (3650ms), waiting 4380ms for consensus.",
        "was formed. Members left: 2",
        "[TOTEM ] Failed to receive the leave message. failed: 2",
        "[QUORUM] This node is within the non-primary component and will NOT provide any services.",
    ] {
        assert!(tail.contains(line), "{line:?} missing:\n{log}");
    }
}

// Reference: totemsrp.c's TEST_DROP_*_PERCENTAGE and SEQNO_START_MSG test settings, as
// totemd's run-time flags: a ring of three still forms and finishes sync while each node
// drops received tokens and multicasts, with sequence numbers starting near the wrap.
#[test]
fn three_totemd_with_dropped_messages_and_near_rollover_seqs_still_sync() {
    if let Some(why) = skip_reason(false) {
        eprintln!("skipped: {why}");
        return;
    }
    let mut lab = Lab::new("d", 3).expect("lab");
    for n in 1..=3 {
        let seed = n.to_string();
        lab.spawn_totemd_with(
            n,
            3,
            &[
                "--drop-orf-token",
                "5",
                "--drop-mcast",
                "30",
                "--drop-commit-token",
                "10",
                "--fault-seed",
                &seed,
                "--start-seq-near-rollover",
            ],
        );
    }
    for n in 1..=3 {
        lab.wait_log(n, Duration::from_secs(60), |l| synced_with(l, "3]: 1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::thread::sleep(Duration::from_secs(2));
    for n in 1..=3 {
        assert_eq!(lab.stop(n, "TERM"), Some(0));
        let log = lab.log(n);
        assert!(
            log.contains("message sequence numbers start at 0xfffffe00"),
            "{log}"
        );
        let dropped = log
            .lines()
            .find(|l| l.contains("fault injection dropped"))
            .unwrap_or_else(|| panic!("no fault summary:\n{log}"));
        assert!(
            !dropped.contains(" 0 MCASTs"),
            "node {n} dropped no MCAST: {dropped}"
        );
    }
}

fn quorumtool_members(lab: &Lab, n: u32) -> String {
    lab.tool(n, "corosync-quorumtool -s")
}

/// corosync-cmapctl on node `n`: one key as corosync sees it.
fn cmap(lab: &Lab, n: u32, key: &str) -> String {
    lab.tool(n, &format!("corosync-cmapctl -g {key}"))
}

/// The "Ring ID:" line of corosync-quorumtool -s.
fn ring_id(lab: &Lab, n: u32) -> String {
    let q = quorumtool_members(lab, n);
    q.lines()
        .find_map(|l| l.strip_prefix("Ring ID:"))
        .map(|r| r.trim().to_owned())
        .unwrap_or_else(|| panic!("no Ring ID in:\n{q}"))
}

// Reference: totem-wire.md §4.5 (minimum viable participation: totemsrp, sync barriers,
// cmap config_version, votequorum NODEINFO without the nodeid-0 entry), §2.9 (ring seq
// persistence across a restart), corosync-lab.md (namespaces, private /run).
#[test]
fn mixed_ring_two_corosync_one_totemd_forms_and_reforms_after_a_restart() {
    if let Some(why) = skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let mut lab = Lab::new("b", 3).expect("lab");
    lab.start_capture();
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(2, 3);
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| synced_with(l, "2]: 1 2"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let started = Instant::now();
    lab.spawn_totemd(3, 3);
    lab.wait_log(3, FORM, |l| synced_with(l, "3]: 1 2 3"))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "mixed ring of 3 synced on totemd {:?} after its start",
        started.elapsed()
    );
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| synced_with(l, "3]: 1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
        let q = quorumtool_members(&lab, n);
        assert!(q.contains("Nodes:            3"), "node {n}:\n{q}");
        assert!(q.contains("Quorate:          Yes"), "node {n}:\n{q}");
        let status = cmap(&lab, n, "runtime.members.3.status");
        assert!(status.contains("joined"), "node {n}: {status}");
    }
    let ring_before = ring_id(&lab, 1);
    // Let the ring run a few token rotations and merge detections: nothing must trip.
    std::thread::sleep(Duration::from_secs(3));
    for n in 1..=2 {
        assert!(lab.running(n), "corosync on node {n} died:\n{}", lab.log(n));
        assert_no_trap(&lab, n);
    }

    // SIGKILL: no LEAVE; the others lose node 3, then it comes back with its stored seq.
    // Only what is logged from now on counts.
    let marks = lab.log_marks();
    let since = |l: &str, n: u32| marks.since(l, n);
    lab.stop(3, "KILL");
    let stored = std::fs::read(lab.node_dir(3).join("state/ringid_3")).expect("ringid_3");
    assert_eq!(stored.len(), 8, "corosync's 8-byte ringid file");
    let started = Instant::now();
    lab.spawn_totemd(3, 3);
    lab.wait_log(3, FORM, |l| synced_with(&since(l, 3), "3]: 1 2 3"))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "after SIGKILL, the restarted totemd synced {:?} after its start",
        started.elapsed()
    );
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| {
            let new = since(l, n);
            let tail = after_last(&new, "Members joined: 3");
            tail.contains("[QUORUM] Members[3]: 1 2 3") && tail.contains(SYNCED)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(lab.running(n), "corosync on node {n} died:\n{}", lab.log(n));
        assert_no_trap(&lab, n);
    }
    let ring_after = ring_id(&lab, 1);
    assert_ne!(ring_before, ring_after, "a new ring was formed");
    let q = quorumtool_members(&lab, 2);
    assert!(q.contains("Nodes:            3"), "{q}");

    // SIGTERM: the LEAVE reaches corosync ("left", no "Failed to receive the leave").
    assert_eq!(lab.stop(3, "TERM"), Some(0));
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| {
            let tail = after_last(l, "Members left: 3");
            tail.contains("[QUORUM] Members[2]: 1 2") && tail.contains(SYNCED)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let log = lab.log(n);
        let tail = after_last(&log, "Members left: 3");
        assert!(
            !tail.contains("Failed to receive the leave message"),
            "{log}"
        );
        assert_no_trap(&lab, n);
    }
    // Our inspector reads the whole run, corosync's datagrams and totemd's GSO runs alike.
    check_capture(&mut lab, "udpu");
}

// Reference: totemsrp.c::memb_state_commit_token_create (the lowest nodeid is the
// representative: it creates the commit token and the first ORF token) — here totemd is
// node 1, runs alone first, and the two corosync nodes join its ring.
#[test]
fn mixed_ring_with_totemd_as_representative() {
    if let Some(why) = skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let mut lab = Lab::new("c", 3).expect("lab");
    lab.start_capture();
    lab.spawn_totemd(1, 3);
    lab.wait_log(1, FORM, |l| synced_with(l, "1]: 1"))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    lab.spawn_corosync(2, 3);
    lab.spawn_corosync(3, 3);
    for n in 1..=3 {
        lab.wait_log(n, FORM, |l| synced_with(l, "3]: 1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!(
        "two corosync joined totemd's ring in {:?}",
        started.elapsed()
    );
    let log = lab.log(1);
    let ring = after_last(&log, "A new membership (1.");
    assert!(
        ring.starts_with("A new membership (1."),
        "node 1 is the representative:\n{log}"
    );
    std::thread::sleep(Duration::from_secs(3));
    for n in 2..=3 {
        assert!(lab.running(n), "corosync on node {n} died:\n{}", lab.log(n));
        assert_no_trap(&lab, n);
        assert!(ring_id(&lab, n).starts_with("1."), "{}", ring_id(&lab, n));
        let q = quorumtool_members(&lab, n);
        assert!(q.contains("Nodes:            3"), "node {n}:\n{q}");
    }
    // The representative stops cleanly: the corosync pair re-forms without it.
    assert_eq!(lab.stop(1, "TERM"), Some(0));
    for n in 2..=3 {
        lab.wait_log(n, FORM, |l| {
            let tail = after_last(l, "Members left: 1");
            tail.contains("[QUORUM] Members[2]: 2 3") && tail.contains(SYNCED)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_no_trap(&lab, n);
    }
}

// Reference: totem-wire.md §1.2 (knet v1 framing, heartbeat, loopback link; corosync only
// takes data from a host whose pings were answered), corosync-lab.md (namespaces).
// corosync's default transport: two corosync 3.1.7 nodes and totemd form one ring over
// knet, finish sync, lose totemd and take it back, and totemd's links come up as
// libknet's do.
#[test]
fn mixed_knet_ring_two_corosync_one_totemd_forms_and_reforms_after_a_restart() {
    if let Some(why) = skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let mut lab = Lab::new("k", 3).expect("lab");
    lab.transport = "knet";
    lab.start_capture();
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(2, 3);
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| synced_with(l, "2]: 1 2"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    lab.spawn_totemd(3, 3);
    for n in 1..=3 {
        lab.wait_log(n, FORM, |l| synced_with(l, "3]: 1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let log3 = lab.log(3);
    for line in [
        "Initializing transport (Kronosnet).",
        "[KNET  ] rx: host: 1 link: 0 is up",
        "[KNET  ] rx: host: 2 link: 0 is up",
    ] {
        assert!(log3.contains(line), "{line:?} missing:\n{log3}");
    }
    for n in 1..=2 {
        let q = quorumtool_members(&lab, n);
        assert!(q.contains("Nodes:            3"), "node {n}:\n{q}");
        assert!(lab.log(n).contains("rx: host: 3 link: 0 is up"), "node {n}");
        assert_no_trap(&lab, n);
    }
    // totemd goes and comes back: corosync sees its link go down, then up again, and the
    // restarted totemd's seq_nums (from 1 again) are not taken for repeats. Only what is
    // logged from now on counts.
    let marks = lab.log_marks();
    let since = |l: &str, n: u32| marks.since(l, n);
    assert_eq!(lab.stop(3, "KILL"), None);
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| {
            let new = since(l, n);
            new.contains("host: host: 3 has no active links") && synced_with(&new, "2]: 1 2")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let marks = lab.log_marks();
    let since = |l: &str, n: u32| marks.since(l, n);
    lab.spawn_totemd(3, 3);
    for n in 1..=3 {
        lab.wait_log(n, FORM, |l| synced_with(&since(l, n), "3]: 1 2 3"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for n in 1..=2 {
        assert!(since(&lab.log(n), n).contains("rx: host: 3 link: 0 is up"));
        assert_no_trap(&lab, n);
    }
    // SIGTERM: the LEAVE goes over knet too ("Members left: 3", no failure to receive it).
    let marks = lab.log_marks();
    let since = |l: &str, n: u32| marks.since(l, n);
    assert_eq!(lab.stop(3, "TERM"), Some(0));
    let summary = since(&lab.log(3), 3);
    let counters = summary
        .lines()
        .find(|l| l.contains("[KNET  ] knet: "))
        .unwrap_or_else(|| panic!("no knet counters:\n{summary}"));
    assert!(
        !counters.contains(" 0 data packets") && !counters.contains(" 0 messages received"),
        "{counters}"
    );
    for n in 1..=2 {
        lab.wait_log(n, FORM, |l| {
            let tail = after_last(&since(l, n), "Members left: 3").to_owned();
            tail.contains("[QUORUM] Members[2]: 1 2") && tail.contains(SYNCED)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let new = since(&lab.log(n), n);
        assert!(
            !new.contains("Failed to receive the leave message"),
            "{new}"
        );
    }
    // Our inspector reads the whole run's traffic, corosync's and totemd's knet alike,
    // fragments reassembled.
    check_capture(&mut lab, "knet");
}

/// Stops the lab's capture and holds it to `totem-inspect stats`: no frame that does not
/// decode, more than 100 frames of `transport` and none of another Totem transport, sync
/// messages reassembled. Only a machine without tcpdump has no capture to check.
fn check_capture(lab: &mut Lab, transport: &str) {
    let Some(pcap) = lab.stop_capture() else {
        let tcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        assert!(
            !tcpdump,
            "tcpdump is installed but the capture did not start"
        );
        eprintln!("no capture checked: tcpdump is not installed");
        return;
    };
    let stats = inspect_stats(&pcap);
    assert_eq!(stats["errors"], serde_json::json!({}), "{stats:#}");
    let transports = &stats["transports"];
    assert!(
        transports[transport].as_u64().unwrap_or(0) > 100,
        "{stats:#}"
    );
    for other in ["udpu", "knet"].iter().filter(|t| **t != transport) {
        assert!(transports.get(other).is_none(), "{stats:#}");
    }
    assert!(
        stats["services"]["SYNC"]["messages"].as_u64().unwrap_or(0) > 0,
        "{stats:#}"
    );
}

/// `totem-inspect stats --format json` of a capture.
fn inspect_stats(pcap: &std::path::Path) -> serde_json::Value {
    let cli = <totem_inspect::cli::Cli as clap::Parser>::try_parse_from([
        "totem-inspect",
        "stats",
        "--format",
        "json",
        pcap.to_str().expect("utf-8 path"),
    ])
    .expect("arguments");
    let config = totem_inspect::cli::Config::from_cli(cli).expect("config");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    totem_inspect::run(&config, &mut out, &mut err).expect("decode");
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&err)))
}
