//! Unmodified `corosync-quorumtool` against totemd's quorum, votequorum, cmap and cfg
//! services, in network namespaces (root only; each test prints why it skipped otherwise):
//! a ring of three totemd as it shrinks, and a mixed ring where the totemd node's output
//! must say what the corosync nodes' say.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{addr, skip_reason, Lab};

const FORM: Duration = Duration::from_secs(30);
const SYNCED: &str = "Completed service synchronization, ready to provide service.";

fn skip(test: &str, need_corosync: bool) -> bool {
    let why = skip_reason(need_corosync).or_else(|| {
        (!std::path::Path::new("/usr/sbin/corosync-quorumtool").exists())
            .then(|| "corosync-quorumtool is not installed".to_owned())
    });
    if let Some(why) = why {
        eprintln!("SKIPPED {test}: {why}");
        return true;
    }
    false
}

/// `cmd` in node `n`'s namespace (private /run): its stdout and exit code; stderr is
/// shown.
fn tool(lab: &Lab, n: u32, cmd: &str) -> (String, i32) {
    let (stdout, stderr, code) = lab.tool_output(n, cmd);
    if !stderr.trim().is_empty() {
        eprintln!("node {n} `{cmd}` stderr: {stderr}");
    }
    (stdout, code)
}

/// `corosync-quorumtool -s`'s "Key: value" lines (the Date line dropped) and its
/// membership lines, `(local)` cut off.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    fields: BTreeMap<String, String>,
    members: Vec<String>,
}

fn parse_status(out: &str) -> Status {
    let mut fields = BTreeMap::new();
    let mut members = Vec::new();
    let mut in_members = false;
    for line in out.lines() {
        if line.starts_with("    Nodeid") {
            in_members = true;
            continue;
        }
        if in_members {
            if !line.trim().is_empty() {
                members.push(line.trim_end_matches(" (local)").to_owned());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k != "Date" && !v.trim().is_empty() {
                fields.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }
    Status { fields, members }
}

/// The status as every node of the ring reads it: the same but for `Node ID`.
fn common_fields(s: &Status) -> BTreeMap<String, String> {
    let mut f = s.fields.clone();
    f.remove("Node ID");
    f
}

/// `corosync-quorumtool <args>` on node `n` with its exit code, after checking that the
/// node's own line is marked local.
fn status(lab: &Lab, n: u32, args: &str) -> (Status, i32, String) {
    let (out, code) = tool(lab, n, &format!("corosync-quorumtool {args}"));
    let s = parse_status(&out);
    assert_eq!(
        s.fields.get("Node ID").map(String::as_str),
        Some(n.to_string().as_str()),
        "node {n}:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{n:>10} ")) && l.ends_with(" (local)")),
        "node {n} marks itself local:\n{out}"
    );
    (s, code, out)
}

/// The membership line quorumtool prints for node `n` with one vote, decimal ids. The
/// nodelist has no names, so the name is `getnameinfo`'s for the address: numeric with
/// `-i`; without, whatever the namespace resolves (nothing here, for corosync too).
fn member_line(n: u32, numeric: bool) -> String {
    let name = if numeric { addr(n) } else { String::new() };
    format!("{n:>10} {:>10} {name}", 1)
}

fn members(ids: &[u32], numeric: bool) -> Vec<String> {
    ids.iter().map(|&n| member_line(n, numeric)).collect()
}

fn synced_with(members: &[u32]) -> impl Fn(&Value) -> bool + '_ {
    move |s| s["synced"] == true && s["state"] == "operational" && s["members"] == json!(members)
}

// Reference: corosync-quorumtool.c (show_status, display_quorum_data, display_nodes_data,
// show_nodes), exec/votequorum.c (calculate_quorum, are_we_quorate, getinfo),
// exec/vsf_quorum.c, exec/cmap.c.
/// Waits until totemd on node 2 and corosync on nodes 1 and 3 have synced the ring of all
/// three.
fn wait_mixed_ring_of_three(lab: &Lab) {
    lab.wait_status(2, FORM, synced_with(&[1, 2, 3]))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in [1, 3] {
        lab.wait_log(n, FORM, |l| {
            l.rfind("[QUORUM] Members[3]: 1 2 3")
                .is_some_and(|i| l[i..].contains(SYNCED))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn corosync_quorumtool_reads_a_totemd_ring_as_it_shrinks() {
    if skip(
        "corosync_quorumtool_reads_a_totemd_ring_as_it_shrinks",
        false,
    ) {
        return;
    }
    let mut lab = Lab::new("q", 3).expect("lab");
    for n in 1..=3 {
        lab.spawn_totemd_status(n, 3);
    }
    for n in 1..=3 {
        lab.wait_status(n, FORM, synced_with(&[1, 2, 3]))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut seen = Vec::new();
    for n in 1..=3 {
        let (s, code, out) = status(&lab, n, "-s -i");
        eprintln!("corosync-quorumtool -s -i on totemd node {n} (exit {code}):\n{out}");
        assert_eq!(code, 0, "quorate: exit 0");
        let f = &s.fields;
        for (k, v) in [
            ("Quorum provider", "corosync_votequorum"),
            ("Nodes", "3"),
            ("Quorate", "Yes"),
            ("Expected votes", "3"),
            ("Highest expected", "3"),
            ("Total votes", "3"),
            ("Quorum", "2"),
            ("Flags", "Quorate"),
        ] {
            assert_eq!(
                f.get(k).map(String::as_str),
                Some(v),
                "{k} on node {n}:\n{out}"
            );
        }
        assert!(f["Ring ID"].starts_with("1."), "{out}");
        assert_eq!(s.members, members(&[1, 2, 3], true));
        let (plain, _, _) = status(&lab, n, "-s");
        assert_eq!(common_fields(&plain), common_fields(&s));
        assert_eq!(plain.members, members(&[1, 2, 3], false));
        seen.push(common_fields(&s));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");

    // -l: the members alone (quorum TRACKSTART, votequorum GETINFO, cfg addresses).
    let (out, code) = tool(&lab, 2, "corosync-quorumtool -l -i");
    eprintln!("corosync-quorumtool -l -i on node 2:\n{out}");
    assert_eq!(code, 0);
    assert_eq!(parse_status(&out).members, members(&[1, 2, 3], true));
    // -i prints addresses, -H hex ids: both from the same calls.
    let (out, _) = tool(&lab, 1, "corosync-quorumtool -s -H -i");
    assert!(out.contains("0x00000002          1 10.200.0.12\n"), "{out}");

    // -m on node 1 from now on: CS_TRACK_CHANGES on quorum and votequorum, one block per
    // change (line-buffered, so that what it printed survives the kill).
    let monitor_out = lab.dir.join("monitor.out");
    let script = format!(
        "mount --bind '{}' /run && exec stdbuf -oL corosync-quorumtool -m -i > '{}' 2>&1",
        lab.node_dir(1).join("run").display(),
        monitor_out.display()
    );
    let mut monitor = Command::new("ip")
        .args(["netns", "exec", &lab.ns(1), "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("corosync-quorumtool -m");
    let monitored = || {
        let text = std::fs::read_to_string(&monitor_out).unwrap_or_default();
        let nodes: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Nodes:"))
            .map(|v| v.trim().to_owned())
            .collect();
        (nodes, text)
    };
    let wait_monitored = |want: &[&str]| {
        let deadline = Instant::now() + FORM;
        loop {
            let (mut nodes, text) = monitored();
            nodes.dedup();
            if nodes == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "corosync-quorumtool -m printed Nodes {nodes:?}, not {want:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_monitored(&["3"]);

    // Node 3 leaves: two of three votes still make quorum.
    assert_eq!(lab.stop(3, "TERM"), Some(0));
    for n in 1..=2 {
        lab.wait_status(n, FORM, synced_with(&[1, 2]))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (s, code, out) = status(&lab, 1, "-s -i");
    eprintln!("after node 3 left (exit {code}):\n{out}");
    assert_eq!(code, 0);
    assert_eq!(s.fields["Nodes"], "2");
    assert_eq!(s.fields["Quorate"], "Yes");
    assert_eq!(s.fields["Total votes"], "2");
    assert_eq!(s.members, members(&[1, 2], true));

    // Node 2 leaves: one vote of three is not quorate (exit 2, "Activity blocked").
    assert_eq!(lab.stop(2, "TERM"), Some(0));
    lab.wait_status(1, FORM, synced_with(&[1]))
        .unwrap_or_else(|e| panic!("{e}"));
    let (s, code, out) = status(&lab, 1, "-s -i");
    eprintln!("node 1 alone (exit {code}):\n{out}");
    assert_eq!(code, 2, "EXIT_NOT_QUORATE");
    assert_eq!(s.fields["Quorate"], "No");
    assert_eq!(s.fields["Quorum"], "2 Activity blocked");
    assert_eq!(s.fields.get("Flags"), None, "no flag: {out}");
    assert_eq!(s.members, members(&[1], true));
    // The monitor saw each ring: 3, 2, then 1 node.
    wait_monitored(&["3", "2", "1"]);
    let _ = monitor.kill();
    let _ = monitor.wait();
    let (_, text) = monitored();
    eprintln!("corosync-quorumtool -m -i on node 1:\n{text}");
    assert!(text.contains("Quorate:          No"), "{text}");
    // The stop logs what the services answered; no client was dropped.
    assert_eq!(lab.stop(1, "TERM"), Some(0));
    let log = lab.log(1);
    let line = log
        .lines()
        .find(|l| l.contains("quorum/votequorum/cmap:"))
        .unwrap_or_else(|| panic!("no service counters:\n{log}"));
    assert!(
        line.contains(" 0 clients dropped for bad requests"),
        "{line}"
    );
}

// Reference: as above; the mixed ring as tests/interop.rs forms it (corosync on nodes 1
// and 3, totemd on node 2).
#[test]
fn corosync_quorumtool_on_totemd_agrees_with_corosync_in_a_mixed_ring() {
    if skip(
        "corosync_quorumtool_on_totemd_agrees_with_corosync_in_a_mixed_ring",
        true,
    ) {
        return;
    }
    let mut lab = Lab::new("qm", 3).expect("lab");
    lab.spawn_corosync(1, 3);
    lab.spawn_totemd_status(2, 3);
    lab.spawn_corosync(3, 3);
    wait_mixed_ring_of_three(&lab);
    // corosync's view can trail its log by a moment: retry until all three agree.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let views: Vec<(Status, i32, String)> = (1..=3)
            .flat_map(|n| [status(&lab, n, "-s"), status(&lab, n, "-s -i")])
            .collect();
        let views: Vec<(Status, i32, String)> = views
            .chunks(2)
            .map(|v| {
                let (s, code, out) = &v[0];
                let (numeric, _, out_i) = &v[1];
                assert_eq!(common_fields(s), common_fields(numeric));
                let _ = out;
                (
                    Status {
                        fields: s.fields.clone(),
                        members: [s.members.clone(), numeric.members.clone()].concat(),
                    },
                    *code,
                    format!("{out}{out_i}"),
                )
            })
            .collect();
        let same = views.windows(2).all(|w| {
            common_fields(&w[0].0) == common_fields(&w[1].0) && w[0].0.members == w[1].0.members
        });
        if same || Instant::now() > deadline {
            for (n, (_, code, out)) in views.iter().enumerate() {
                let who = if n == 1 { "totemd" } else { "corosync" };
                eprintln!(
                    "corosync-quorumtool -s on {who} node {} (exit {code}):\n{out}",
                    n + 1
                );
            }
            assert!(same, "the three nodes disagree");
            let (s, code, _) = &views[1];
            assert_eq!(*code, 0);
            assert_eq!(s.fields["Nodes"], "3");
            assert_eq!(s.fields["Quorate"], "Yes");
            assert_eq!(
                s.members,
                [members(&[1, 2, 3], false), members(&[1, 2, 3], true)].concat()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (on_totemd, _) = tool(&lab, 2, "corosync-quorumtool -l");
    let (on_corosync, _) = tool(&lab, 1, "corosync-quorumtool -l");
    assert_eq!(
        parse_status(&on_totemd).members,
        parse_status(&on_corosync).members,
        "-l:\n{on_totemd}\n{on_corosync}"
    );

    // corosync 1 leaves: both remaining views go to two members, still quorate.
    assert_eq!(lab.stop(1, "TERM"), Some(0));
    lab.wait_status(2, FORM, synced_with(&[2, 3]))
        .unwrap_or_else(|e| panic!("{e}"));
    lab.wait_log(3, FORM, |l| {
        l.rfind("[QUORUM] Members[2]: 2 3")
            .is_some_and(|i| l[i..].contains(SYNCED))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (a, _, out_a) = status(&lab, 2, "-s -i");
        let (b, _, out_b) = status(&lab, 3, "-s -i");
        let same = common_fields(&a) == common_fields(&b) && a.members == b.members;
        if same || Instant::now() > deadline {
            assert!(same, "totemd:\n{out_a}\ncorosync:\n{out_b}");
            assert_eq!(a.fields["Nodes"], "2");
            assert_eq!(a.fields["Quorate"], "Yes");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `corosync-quorumtool -s -i` on each of `ids` until all agree on everything but `Node
/// ID` (or 10 s passed): the outputs, printed, and whether they agree.
fn agreed_status(lab: &Lab, ids: &[u32], who: impl Fn(u32) -> &'static str) -> Vec<Status> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let views: Vec<(Status, i32, String)> =
            ids.iter().map(|&n| status(lab, n, "-s -i")).collect();
        let same = views.windows(2).all(|w| {
            common_fields(&w[0].0) == common_fields(&w[1].0) && w[0].0.members == w[1].0.members
        });
        if same || Instant::now() > deadline {
            for (&n, (_, code, out)) in ids.iter().zip(&views) {
                eprintln!(
                    "corosync-quorumtool -s -i on {} node {n} (exit {code}):\n{out}",
                    who(n)
                );
            }
            assert!(same, "the nodes disagree");
            return views.into_iter().map(|v| v.0).collect();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// Reference: exec/votequorum.c (message_handler_req_exec_votequorum_nodeinfo: a node's
// votes are what its NODEINFO says; recalculate_quorum raises expected votes to the total).
// Node 1 (corosync) has `quorum_votes: 2` in its nodelist and corosync 3's; totemd's
// nodelist does not say so, so totemd can only know from node 1's NODEINFO.
#[test]
fn totemd_counts_the_votes_a_corosync_node_announces() {
    if skip("totemd_counts_the_votes_a_corosync_node_announces", true) {
        return;
    }
    let mut lab = Lab::new("qv", 3).expect("lab");
    lab.quorum_votes = vec![(1, 2)];
    lab.spawn_corosync(1, 3);
    lab.spawn_corosync(3, 3);
    lab.quorum_votes.clear();
    lab.spawn_totemd_status(2, 3);
    wait_mixed_ring_of_three(&lab);
    let who = |n| if n == 2 { "totemd" } else { "corosync" };
    let views = agreed_status(&lab, &[1, 2, 3], who);
    let f = &views[1].fields;
    for (k, v) in [
        ("Nodes", "3"),
        ("Quorate", "Yes"),
        ("Expected votes", "4"),
        ("Highest expected", "4"),
        ("Total votes", "4"),
        ("Quorum", "3"),
    ] {
        assert_eq!(
            f.get(k).map(String::as_str),
            Some(v),
            "{k} on totemd: {f:?}"
        );
    }
    let line = |n: u32, votes: u32| format!("{n:>10} {votes:>10} {}", addr(n));
    assert_eq!(views[1].members, vec![line(1, 2), line(2, 1), line(3, 1)]);
    let (on_totemd, _) = tool(&lab, 2, "corosync-quorumtool -l -i");
    let (on_corosync, _) = tool(&lab, 3, "corosync-quorumtool -l -i");
    eprintln!("corosync-quorumtool -l -i on totemd:\n{on_totemd}\non corosync 3:\n{on_corosync}");
    assert_eq!(
        parse_status(&on_totemd).members,
        parse_status(&on_corosync).members
    );

    // Node 1 leaves with its two votes: two of four do not make the quorum of 3.
    assert_eq!(lab.stop(1, "TERM"), Some(0));
    lab.wait_status(2, FORM, synced_with(&[2, 3]))
        .unwrap_or_else(|e| panic!("{e}"));
    lab.wait_log(3, FORM, |l| {
        l.rfind("[QUORUM] Members[2]: 2 3")
            .is_some_and(|i| l[i..].contains(SYNCED))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let views = agreed_status(&lab, &[2, 3], who);
    let f = &views[0].fields;
    for (k, v) in [
        ("Nodes", "2"),
        ("Quorate", "No"),
        ("Expected votes", "4"),
        ("Highest expected", "4"),
        ("Total votes", "2"),
        ("Quorum", "3 Activity blocked"),
    ] {
        assert_eq!(
            f.get(k).map(String::as_str),
            Some(v),
            "{k} on totemd: {f:?}"
        );
    }
    let log = lab.log(2);
    assert!(
        log.contains("This node is within the non-primary component"),
        "totemd logs the lost quorum:\n{log}"
    );
}

/// `corosync-quorumtool -e` and `-v` run on the totemd node of a mixed ring: refused where
/// corosync refuses (expected votes below the votes present), otherwise multicast as a
/// RECONFIGURE that the corosync nodes apply; the corosync node's own `-e` is applied by
/// totemd. Every node's `-s` then agrees.
#[test]
fn corosync_quorumtool_writes_from_totemd_reach_corosync() {
    if skip(
        "corosync_quorumtool_writes_from_totemd_reach_corosync",
        true,
    ) {
        return;
    }
    let mut lab = Lab::new("qw", 3).expect("lab");
    lab.spawn_corosync(1, 3);
    lab.spawn_totemd_status(2, 3);
    let c3 = lab.spawn_corosync(3, 3);
    wait_mixed_ring_of_three(&lab);
    // Three votes present: 2 expected is below them.
    let (out, _) = tool(&lab, 2, "corosync-quorumtool -e 2 2>&1");
    assert!(out.contains("CS_ERR_INVALID_PARAM"), "{out}");
    assert_eq!(lab.stop_pid(c3, "TERM"), Some(0));
    lab.wait_status(2, FORM, synced_with(&[1, 2]))
        .unwrap_or_else(|e| panic!("{e}"));
    lab.wait_log(1, FORM, |l| {
        l.rfind("[QUORUM] Members[2]: 1 2")
            .is_some_and(|i| l[i..].contains(SYNCED))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let agreed = |what: &str, want: &[(&str, &str)]| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let views: Vec<Status> = [1, 2].iter().map(|&n| status(&lab, n, "-s").0).collect();
            let ok = want.iter().all(|(k, v)| {
                views
                    .iter()
                    .all(|s| s.fields.get(*k).map(String::as_str) == Some(*v))
            }) && common_fields(&views[0]) == common_fields(&views[1]);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {want:?} not on both nodes: {views:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // -e 2 from totemd: corosync takes it.
    let (out, _) = tool(&lab, 2, "corosync-quorumtool -e 2 2>&1");
    assert!(!out.contains("Unable"), "{out}");
    agreed(
        "-e 2 from totemd",
        &[("Expected votes", "2"), ("Quorum", "2")],
    );
    // -v 2 for node 1, from totemd.
    let (out, _) = tool(&lab, 2, "corosync-quorumtool -v 2 -n 1 2>&1");
    assert!(!out.contains("Unable"), "{out}");
    agreed(
        "-v 2 -n 1 from totemd",
        &[
            ("Total votes", "3"),
            ("Expected votes", "3"),
            ("Quorum", "2"),
        ],
    );
    // -e 4 from corosync: totemd takes it.
    let (out, _) = tool(&lab, 1, "corosync-quorumtool -e 4 2>&1");
    assert!(!out.contains("Unable"), "{out}");
    agreed(
        "-e 4 from corosync",
        &[("Expected votes", "4"), ("Quorum", "3")],
    );
}
