//! Unmodified `corosync-cmapctl` (Debian 12's corosync 3.1.7) against totemd's cmap
//! service, in network namespaces (root only; each test prints why it skipped otherwise):
//! get, set, delete, listing, tracking of keys that change as the ring changes or as
//! another client sets them, run-time `uidgid.uid.<uid>` keys admitting a CPG client, and
//! the whole map side by side with a real corosync's on a mixed ring.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{addr, skip_reason, Lab};

const FORM: Duration = Duration::from_secs(30);
const SYNCED: &str = "Completed service synchronization, ready to provide service.";

fn skip(test: &str, need_corosync: bool) -> bool {
    let why = skip_reason(need_corosync).or_else(|| {
        ["/usr/sbin/corosync-cmapctl", "/usr/sbin/corosync-cpgtool"]
            .iter()
            .find(|p| !std::path::Path::new(p).exists())
            .map(|p| format!("{p} is not installed"))
    });
    if let Some(why) = why {
        eprintln!("SKIPPED {test}: {why}");
        return true;
    }
    false
}

/// `cmd` in node `n`'s namespace (private /run): stdout, stderr and exit code.
fn tool(lab: &Lab, n: u32, cmd: &str) -> (String, String, i32) {
    lab.tool_output(n, cmd)
}

/// A line-buffered tool in the background, its output in `file`; its stdin is a pipe kept
/// open (corosync-cmapctl -t stops at the end of its input).
fn background(lab: &Lab, n: u32, cmd: &str, file: &std::path::Path) -> Child {
    let script = format!(
        "mount --bind '{}' /run && exec stdbuf -oL {cmd} > '{}' 2>&1",
        lab.node_dir(n).join("run").display(),
        file.display()
    );
    Command::new("ip")
        .args(["netns", "exec", &lab.ns(n), "sh", "-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn wait_file(file: &std::path::Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + FORM;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if pred(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} not seen in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn synced_with(members: &[u32]) -> impl Fn(&Value) -> bool + '_ {
    move |s| s["synced"] == true && s["state"] == "operational" && s["members"] == json!(members)
}

/// `corosync-cmapctl`'s listing, `key (type) = value` per line, as a map.
fn listing(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(" = ").or_else(|| l.split_once(" =")))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

// Reference: tools/corosync-cmapctl.c (print_key, set_key, delete_key, track_changes with
// cmap_notify_fn: "create> ", "modify> ", "delete> "), exec/cmap.c, exec/icmap.c,
// exec/main.c (member_object_joined/left), exec/ipc_glue.c (cs_ipcs_connection_accept).
#[test]
fn corosync_cmapctl_reads_writes_and_tracks_a_totemd_node() {
    if skip(
        "corosync_cmapctl_reads_writes_and_tracks_a_totemd_node",
        false,
    ) {
        return;
    }
    let t0 = Instant::now();
    let mut lab = Lab::new("cm", 3).expect("lab");
    for n in 1..=3 {
        lab.spawn_totemd_status(n, 3);
    }
    for n in 1..=3 {
        lab.wait_status(n, FORM, synced_with(&[1, 2, 3]))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // -g: a key of the file, typed as coroparse types it.
    let (out, err, code) = tool(&lab, 1, "corosync-cmapctl -g totem.cluster_name");
    assert_eq!(
        (out.as_str(), code),
        ("totem.cluster_name (str) = totemd-test\n", 0),
        "{err}"
    );
    let (out, _, _) = tool(&lab, 1, "corosync-cmapctl -g nodelist.node.2.nodeid");
    assert_eq!(out, "nodelist.node.2.nodeid (u32) = 3\n");
    // The listing of runtime.members.: every member joined once, at its address.
    let (out, _, code) = tool(&lab, 1, "corosync-cmapctl runtime.members.");
    eprintln!("corosync-cmapctl runtime.members. on node 1:\n{out}");
    assert_eq!(code, 0);
    let mut want = String::new();
    for n in 1..=3 {
        want.push_str(&format!(
            "runtime.members.{n}.ip (str) = r(0) ip({}) \nruntime.members.{n}.join_count (u32) = 1\nruntime.members.{n}.status (str) = joined\n",
            addr(n)
        ));
    }
    assert_eq!(out, want);

    // -t on one key and -T on a prefix, before anything changes.
    let exact = lab.dir.join("track-exact.out");
    let prefix = lab.dir.join("track-prefix.out");
    let mut t1 = background(&lab, 1, "corosync-cmapctl -t test.tracked", &exact);
    let mut t2 = background(&lab, 1, "corosync-cmapctl -T runtime.members.", &prefix);
    std::thread::sleep(Duration::from_millis(500));

    // -s by another cmapctl: the tracker sees the creation, then the change, then the
    // deletion, old and new values as icmap gives them.
    let (_, err, code) = tool(&lab, 1, "corosync-cmapctl -s test.tracked u8 1");
    assert_eq!(code, 0, "{err}");
    let (out, _, _) = tool(&lab, 1, "corosync-cmapctl -g test.tracked");
    assert_eq!(out, "test.tracked (u8) = 1\n");
    tool(&lab, 1, "corosync-cmapctl -s test.tracked u8 2");
    let (_, err, code) = tool(&lab, 1, "corosync-cmapctl -d test.tracked");
    assert_eq!(code, 0, "{err}");
    let (out, err, code) = tool(&lab, 1, "corosync-cmapctl -g test.tracked");
    eprintln!("-g after -d: {out:?} {err:?} exit {code}");
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (
            "",
            "Can't get key test.tracked. Error CS_ERR_NOT_EXIST\n",
            1
        )
    );
    let text = wait_file(&exact, "the deletion", |t| t.contains("delete>"));
    eprintln!("corosync-cmapctl -t test.tracked:\n{text}");
    assert_eq!(
        text,
        "Type \"q\" to finish\ncreate> test.tracked (u8) = 1\nmodify> test.tracked (u8) = 2\ndelete> test.tracked (u8) = 2\n"
    );
    // Read-only keys: corosync's CS_ERR_ACCESS.
    let (out, err, code) = tool(&lab, 1, "corosync-cmapctl -s nodelist.node.0.nodeid u32 9");
    eprintln!("-s of a read-only key: {out:?} {err:?} exit {code}");
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (
            "",
            "Failed to set key nodelist.node.0.nodeid. Error CS_ERR_ACCESS\n",
            1
        )
    );

    // Node 3 leaves: node 1's prefix tracker sees its status change.
    assert_eq!(lab.stop(3, "TERM"), Some(0));
    lab.wait_status(1, FORM, synced_with(&[1, 2]))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = wait_file(&prefix, "node 3 leaving", |t| {
        t.contains("runtime.members.3.status")
    });
    eprintln!("corosync-cmapctl -T runtime.members.:\n{text}");
    assert_eq!(
        text,
        "Type \"q\" to finish\nmodify> runtime.members.3.status (str) = left\n"
    );
    let (out, _, _) = tool(&lab, 1, "corosync-cmapctl -g runtime.members.3.status");
    assert_eq!(out, "runtime.members.3.status (str) = left\n");

    // A uid the configuration does not list is refused by CPG (and cfg, which
    // corosync-cpgtool opens first) until uidgid.uid.<uid> is set at run time.
    let as_stranger = "setpriv --reuid 4242 --regid 4242 --clear-groups corosync-cpgtool";
    let (out, err, code) = tool(&lab, 1, as_stranger);
    eprintln!("cpgtool as 4242 before: {out:?} {err:?} exit {code}");
    assert_ne!(code, 0);
    let (_, err, code) = tool(&lab, 1, "corosync-cmapctl -s uidgid.uid.4242 u8 1");
    assert_eq!(code, 0, "{err}");
    let (out, err, code) = tool(&lab, 1, as_stranger);
    eprintln!("cpgtool as 4242 after: {out:?} {err:?} exit {code}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Group Name"), "{out}");
    // ... and again refused once the key is gone.
    tool(&lab, 1, "corosync-cmapctl -d uidgid.uid.4242");
    let (_, _, code) = tool(&lab, 1, as_stranger);
    assert_ne!(code, 0);

    for c in [&mut t1, &mut t2] {
        let _ = c.kill();
        let _ = c.wait();
    }
    // Tracks end with their connections: the daemon is still fine and logs no error.
    let (out, _, code) = tool(&lab, 1, "corosync-cmapctl -g runtime.members.2.status");
    assert_eq!(
        (out.as_str(), code),
        ("runtime.members.2.status (str) = joined\n", 0)
    );
    eprintln!("took {:?}", t0.elapsed());
}

/// `corosync-cmapctl`'s whole map on a mixed ring of two: corosync on node 1, totemd on
/// node 2 with the same file. Keys both have must agree (node-specific ones aside); the
/// keys only one of them has are printed (the README lists why).
#[test]
fn cmapctl_listing_matches_corosync_on_a_mixed_ring() {
    if skip("cmapctl_listing_matches_corosync_on_a_mixed_ring", true) {
        return;
    }
    let mut lab = Lab::new("cc", 2).expect("lab");
    lab.spawn_corosync(1, 2);
    lab.spawn_totemd_status(2, 2);
    lab.wait_status(2, FORM, synced_with(&[1, 2]))
        .unwrap_or_else(|e| panic!("{e}"));
    lab.wait_log(1, FORM, |l| {
        l.rfind("[QUORUM] Members[2]: 1 2")
            .is_some_and(|i| l[i..].contains(SYNCED))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (c_out, _, code) = tool(&lab, 1, "corosync-cmapctl");
    assert_eq!(code, 0);
    let (t_out, _, code) = tool(&lab, 2, "corosync-cmapctl");
    assert_eq!(code, 0);
    let _ = std::fs::write(lab.dir.join("corosync.cmap"), &c_out);
    let _ = std::fs::write(lab.dir.join("totemd.cmap"), &t_out);
    let c = listing(&c_out);
    let t = listing(&t_out);
    // Per node: its log file, state directory, own id, place in the nodelist and address.
    let node_specific = |k: &str| {
        let name = k.split(" (").next().unwrap_or(k);
        [
            "logging.logfile",
            "system.state_dir",
            "runtime.votequorum.this_node_id",
            "nodelist.local_node_pos",
            "totem.interface.0.bindnetaddr",
        ]
        .contains(&name)
    };
    let mut differ = Vec::new();
    for (k, v) in &t {
        if let Some(cv) = c.get(k) {
            if cv != v && !node_specific(k) {
                differ.push(format!("{k}: corosync {cv:?}, totemd {v:?}"));
            }
        }
    }
    let only_c: Vec<&String> = c.keys().filter(|k| !t.contains_key(*k)).collect();
    let only_t: Vec<&String> = t.keys().filter(|k| !c.contains_key(*k)).collect();
    eprintln!("keys only corosync has ({}):", only_c.len());
    let mut text = String::new();
    for k in &only_c {
        text.push_str(&format!("{k} = {}\n", c[*k]));
    }
    eprint!("{text}");
    let _ = std::fs::write(lab.dir.join("only-corosync.cmap"), &text);
    eprintln!("keys only totemd has ({}): {only_t:?}", only_t.len());
    eprintln!("keys in both: {}", t.len() - only_t.len());
    assert!(differ.is_empty(), "values differ:\n{}", differ.join("\n"));
    assert!(only_t.is_empty(), "totemd invents keys: {only_t:?}");
    // The ring's truth on both: members 1 and 2, joined once.
    for n in 1..=2 {
        for key in ["ip", "join_count", "status"] {
            let k = format!("runtime.members.{n}.{key} (");
            let ck = c.keys().find(|x| x.starts_with(&k));
            assert!(ck.is_some() && t.contains_key(ck.unwrap()), "{k}");
        }
    }
}
