//! Unmodified `corosync-cfgtool` against totemd's cfg service on mixed rings, in network
//! namespaces (root and corosync needed; each test prints why it skipped otherwise):
//!
//! * the same questions asked on a corosync node and on a totemd node of one ring get the
//!   same answers: the ring is corosync 1, totemd 2, corosync 3, so node 2's output with
//!   nodes 1 and 2 swapped must be node 1's, byte for byte (`-s`, `-s -b`, `-n`, `-a`),
//!   over knet (one link and two) and over udpu;
//! * `-k` and `-H` across the two daemons: a corosync node kills a totemd node (it exits
//!   255 without a LEAVE), a totemd node kills a corosync node, and `-H` on a node whose cfg
//!   has no tracker stops either daemon cleanly (exit 0), the others logging "Node N was
//!   shut down by sysadmin".

mod common;

use std::time::Duration;

use common::{addr, addr1, skip_reason, Lab};

const SYNCED: &str = "Completed service synchronization, ready to provide service.";

fn skip(test: &str) -> bool {
    let why = skip_reason(true).or_else(|| {
        (!std::path::Path::new("/usr/sbin/corosync-cfgtool").exists())
            .then(|| "corosync-cfgtool is not installed".to_owned())
    });
    if let Some(why) = why {
        eprintln!("SKIPPED {test}: {why}");
        return true;
    }
    false
}

/// Swaps nodes 1 and 2 in a tool's output: their ids where they stand alone and their
/// addresses.
fn swap_1_2(s: &str) -> String {
    let mut out = s.to_owned();
    for (a1, a2) in [(addr(1), addr(2)), (addr1(1), addr1(2))] {
        out = out
            .replace(&a1, "\u{1}")
            .replace(&a2, &a1)
            .replace('\u{1}', &a2);
    }
    for (from, to) in [("1", "\u{2}"), ("2", "1"), ("\u{2}", "2")] {
        for (pre, post) in [
            ("Local node ID ", ","),
            ("nodeid: ", " "),
            ("nodeid:          ", ":"),
        ] {
            out = out.replace(&format!("{pre}{from}{post}"), &format!("{pre}{to}{post}"));
        }
    }
    out
}

/// Lines in an order that does not depend on which node is which: `-s`'s per-node status
/// lines and `-n`'s per-node blocks sorted, `-b`'s status string's first two places
/// (nodes 1 and 2) swapped when `swap`.
fn canonical(s: &str, swap: bool) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let mut status: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in s.lines() {
        if line.starts_with("\t\tnodeid:") {
            status.push(line.to_owned());
            continue;
        }
        if !status.is_empty() {
            status.sort();
            out.append(&mut status);
        }
        if let Some(brief) = line.strip_prefix("\tstatus\t= ") {
            let mut c: Vec<char> = brief.chars().collect();
            if swap && c.len() >= 2 {
                c.swap(0, 1);
            }
            out.push(format!("\tstatus\t= {}", c.into_iter().collect::<String>()));
        } else if line.starts_with("nodeid: ") {
            blocks.push(line.to_owned());
        } else if line.starts_with("   LINK:") || (line.is_empty() && !blocks.is_empty()) {
            if let Some(b) = blocks.last_mut() {
                b.push('\n');
                b.push_str(line);
            }
        } else {
            out.push(line.to_owned());
        }
    }
    status.sort();
    out.append(&mut status);
    blocks.sort();
    out.extend(blocks);
    out.join("\n")
}

fn mixed_ring(tag: &str, transport: &'static str, two_links: bool) -> Lab {
    let mut lab = Lab::new(tag, 3).expect("lab");
    lab.transport = transport;
    if two_links {
        lab.add_second_link().expect("second link");
    }
    lab.spawn_corosync(1, 3);
    lab.spawn_totemd(2, 3);
    lab.spawn_corosync(3, 3);
    for n in 1..=3 {
        lab.wait_log(n, Duration::from_secs(30), |l| {
            l.matches("Members[3]: 1 2 3").count() >= 1 && l.contains(SYNCED)
        })
        .expect("ring of three");
    }
    // knet's links come up on their own timers (a PONG count after the ring formed).
    std::thread::sleep(Duration::from_secs(3));
    lab
}

fn agree(transport: &'static str, tag: &str, two_links: bool) {
    let lab = mixed_ring(tag, transport, two_links);
    for cmd in [
        "corosync-cfgtool -s",
        "corosync-cfgtool -s -b",
        "corosync-cfgtool -n",
        "corosync-cfgtool -a 3",
    ] {
        let corosync = lab.try_tool(1, cmd).expect("corosync node");
        let totemd = lab.try_tool(2, cmd).expect("totemd node");
        assert_eq!(
            canonical(&swap_1_2(&totemd), true),
            canonical(&corosync, false),
            "`{cmd}` over {transport}:\n--- corosync (node 1):\n{corosync}\n--- totemd (node 2):\n{totemd}"
        );
        eprintln!("`{cmd}` over {transport} agrees:\n{totemd}");
    }
    // -a for the other one of the pair.
    assert_eq!(
        lab.tool(2, "corosync-cfgtool -a 1"),
        swap_1_2(&lab.tool(1, "corosync-cfgtool -a 2"))
    );
}

#[test]
fn cfgtool_status_on_totemd_agrees_with_corosync_over_knet() {
    if skip("cfgtool_status_on_totemd_agrees_with_corosync_over_knet") {
        return;
    }
    agree("knet", "cfk", false);
}

#[test]
fn cfgtool_status_on_totemd_agrees_with_corosync_over_udpu() {
    if skip("cfgtool_status_on_totemd_agrees_with_corosync_over_udpu") {
        return;
    }
    agree("udpu", "cfu", false);
}

#[test]
fn cfgtool_status_on_totemd_agrees_with_corosync_on_two_knet_links() {
    if skip("cfgtool_status_on_totemd_agrees_with_corosync_on_two_knet_links") {
        return;
    }
    agree("knet", "cf2", true);
}

#[test]
fn cfgtool_kill_and_shutdown_across_corosync_and_totemd() {
    if skip("cfgtool_kill_and_shutdown_across_corosync_and_totemd") {
        return;
    }
    let mut lab = Lab::new("cfh", 4).expect("lab");
    lab.transport = "knet";
    let c1 = lab.spawn_corosync(1, 4);
    let t2 = lab.spawn_totemd(2, 4);
    let c3 = lab.spawn_corosync(3, 4);
    let t4 = lab.spawn_totemd(4, 4);
    for n in 1..=4 {
        lab.wait_log(n, Duration::from_secs(40), |l| {
            l.contains("Members[4]: 1 2 3 4") && l.contains(SYNCED)
        })
        .expect("ring of four");
    }
    // corosync kills totemd: exit 255 at once, no LEAVE (the others see a failure).
    let out = lab.tool(1, "corosync-cfgtool -k 4 2>&1");
    assert!(!out.contains("Could not"), "{out}");
    assert_eq!(lab.wait_exit(t4, Duration::from_secs(10)), Some(255));
    assert!(lab.log(4).contains("Killed by node 1 : "), "{}", lab.log(4));
    lab.wait_log(2, Duration::from_secs(20), |l| {
        l.contains("Members[3]: 1 2 3")
    })
    .expect("4 gone");
    assert!(lab
        .log(2)
        .contains("Failed to receive the leave message. failed: 4"));
    // totemd kills corosync.
    let out = lab.tool(2, "corosync-cfgtool -k 3 2>&1");
    assert!(!out.contains("Could not"), "{out}");
    assert!(
        lab.wait_exit(c3, Duration::from_secs(10)).is_some(),
        "corosync 3 exits"
    );
    assert!(lab.log(3).contains("Killed by node 2"), "{}", lab.log(3));
    lab.wait_log(1, Duration::from_secs(20), |l| {
        l.contains("Members[2]: 1 2")
    })
    .expect("3 gone");
    // An unknown node cannot be killed.
    let out = lab.tool(2, "corosync-cfgtool -k 9 2>&1; true");
    assert!(
        out.contains("error = 12") || out.contains("Could not kill node"),
        "{out}"
    );
    // -H with nobody tracking: totemd 2 leaves cleanly; corosync 1 logs why.
    let out = lab.tool(2, "corosync-cfgtool -H 2>&1");
    assert_eq!(out.trim(), "Shutting down corosync");
    assert_eq!(lab.wait_exit(t2, Duration::from_secs(15)), Some(0));
    lab.wait_log(1, Duration::from_secs(20), |l| {
        l.contains("Node 2 was shut down by sysadmin") && l.contains("Members[1]: 1")
    })
    .expect("corosync 1 sees 2 shut down");
    assert!(
        !lab.log(1).contains("failed: 2"),
        "a clean leave, not a failure"
    );
    assert!(lab.log(2).contains("Node 2 was shut down by sysadmin"));
    let out = lab.tool(1, "corosync-cfgtool -H 2>&1");
    assert_eq!(out.trim(), "Shutting down corosync");
    assert_eq!(lab.wait_exit(c1, Duration::from_secs(15)), Some(0));
}
