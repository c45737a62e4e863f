//! The totemd binary without root: corosync's `-v` and `-t` with corosync's exit codes, and a
//! one-node ring on loopback that survives garbage, leaves on SIGTERM with exit 0 and
//! continues from its stored ring seq when restarted (main.c, totem-wire.md §2.9).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOTEMD: &str = env!("CARGO_BIN_EXE_totemd");

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A two-node udpu nodelist on loopback (node 2 never runs), logging to `dir/log`.
fn write_conf(dir: &Path, transport: &str, port: u16) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let text = format!(
        "totem {{\n\tversion: 2\n\ttransport: {transport}\n\ttoken: 1000\n\
         \tinterface {{\n\t\tmcastport: {port}\n\t}}\n}}\n\
         nodelist {{\n\tnode {{\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t}}\n\
         \tnode {{\n\t\tring0_addr: 127.0.0.2\n\t\tnodeid: 2\n\t}}\n}}\n\
         quorum {{\n\tprovider: corosync_votequorum\n\ttwo_node: 1\n}}\n\
         logging {{\n\tto_stderr: no\n\tto_logfile: yes\n\tlogfile: {}\n\tdebug: on\n}}\n\
         system {{\n\tstate_dir: {}\n}}\n",
        dir.join("log").display(),
        dir.join("state").display()
    );
    let path = dir.join("corosync.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn totemd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TOTEMD).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_config_test_exit_as_corosync_does() {
    let (code, out, _) = totemd(&["-v"]);
    assert_eq!(code, 0);
    assert!(out.contains("3.1.7"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let good = write_conf(dir.path(), "udpu", 5405);
    let path = good.to_str().unwrap();
    assert_eq!(totemd(&["-t", "-c", path, "--nodeid", "1"]).0, 0);
    assert_eq!(
        totemd(&["-f", "-t", "-c", path, "-n", "2"]).0,
        0,
        "-f is accepted"
    );
    // --nodeid outside the nodelist: COROSYNC_DONE_MAINCONFIGREAD.
    assert_eq!(totemd(&["-t", "-c", path, "--nodeid", "9"]).0, 8);
    // A missing state directory: COROSYNC_DONE_DIR_NOT_PRESENT.
    let (code, _, err) = totemd(&["-t", "-c", path, "-n", "1", "--state-dir", "/nonexistent/x"]);
    assert_eq!(code, 16, "{err}");
    assert!(err.contains("Cannot chdir to state directory"), "{err}");

    let knet = write_conf(&dir.path().join("k"), "knet", 5405);
    assert_eq!(
        totemd(&["-t", "-c", knet.to_str().unwrap(), "-n", "1"]).0,
        0
    );
    let udp = write_conf(&dir.path().join("u"), "udp", 5405);
    let (code, _, err) = totemd(&["-t", "-c", udp.to_str().unwrap(), "-n", "1"]);
    assert_eq!(code, 8, "{err}");
    assert!(
        err.contains(&format!("{}:3: totem.transport:", udp.display()))
            && err.contains("not supported by totemd"),
        "{err}"
    );
    // knet crypto: a key file corosync accepts passes, a short one stops the start with
    // read_keyfile's words, naming the file and the keyfile line.
    let kdir = dir.path().join("c");
    let crypto = write_conf(&kdir, "knet", 5405);
    for (len, ok) in [(256, true), (64, false)] {
        let key = kdir.join(format!("authkey{len}"));
        std::fs::write(&key, vec![5u8; len]).unwrap();
        let text = std::fs::read_to_string(&crypto).unwrap().replacen(
            "\ttoken: 1000\n",
            &format!(
                "\ttoken: 1000\n\tsecauth: on\n\tkeyfile: {}\n",
                key.display()
            ),
            1,
        );
        let conf = kdir.join(format!("crypto{len}.conf"));
        std::fs::write(&conf, text).unwrap();
        let (code, _, err) = totemd(&["-t", "-c", conf.to_str().unwrap(), "-n", "1"]);
        if ok {
            assert_eq!(code, 0, "{err}");
        } else {
            assert_eq!(code, 8, "{err}");
            assert!(
                err.contains(&format!(
                    "{}:6: totem.keyfile: Could only read 512 bits of minimum 1024 bits from {}.",
                    conf.display(),
                    key.display()
                )),
                "{err}"
            );
        }
    }
    let (code, _, err) = totemd(&["-t", "-c", "/nonexistent/corosync.conf"]);
    assert_eq!(code, 8, "{err}");
    let (code, _, err) = totemd(&["-t", "-c", path, "--drop-mcast", "101"]);
    assert_eq!(code, 2, "clap refuses a percentage over 100: {err}");
    // coroparse.c: an unknown uidgid user stops the start with a parser error.
    let mut text = std::fs::read_to_string(&good).unwrap();
    text.push_str("uidgid {\n\tuid: no-such-user-here\n}\n");
    let bad = dir.path().join("uidgid.conf");
    std::fs::write(&bad, text).unwrap();
    let (code, _, err) = totemd(&["-t", "-c", bad.to_str().unwrap(), "-n", "1"]);
    assert_eq!(code, 8, "{err}");
    assert!(
        err.contains("The 'no-such-user-here' user is not found in /etc/passwd"),
        "{err}"
    );
}

fn wait_for(log: &Path, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if pred(&text) {
            return text;
        }
        assert!(start.elapsed() < timeout, "timed out; log:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn(conf: &Path) -> Child {
    let status = conf.with_file_name("status.json");
    Command::new(TOTEMD)
        .args(["-f", "-c", conf.to_str().unwrap(), "--nodeid", "1"])
        .arg("--status-file")
        .arg(status)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn terminate(mut child: Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

// Reference: totemsrp.c main_iface_change_fn (+1) and memb_state_commit_token_create (+4):
// a cold node's first ring is 1.5; restarted with ringid_1 = 5 its next is 1.a.
#[test]
fn a_lone_node_forms_its_ring_survives_garbage_and_restarts_from_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_conf(dir.path(), "udpu", port);
    let log = dir.path().join("log");
    let child = spawn(&conf);
    wait_for(&log, Duration::from_secs(10), |l| {
        l.contains("A new membership (1.5) was formed. Members joined: 1")
            && l.contains("Completed service synchronization, ready to provide service.")
    });
    // --status-file: one JSON line, rewritten when the ring changes.
    let status = dir.path().join("status.json");
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = "{\"nodeid\":1,\"state\":\"operational\",\"ring\":{\"rep\":1,\"seq\":5},\"members\":[1],\"synced\":true}\n";
    while std::fs::read_to_string(&status).unwrap_or_default() != want {
        assert!(
            Instant::now() < deadline,
            "status file: {:?}",
            std::fs::read_to_string(&status)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // From a listed address (127.0.0.2): reaches the engine, which refuses it.
    let peer = UdpSocket::bind("127.0.0.2:0").unwrap();
    peer.send_to(&[0x70, 0xC0, 3], ("127.0.0.1", port)).unwrap();
    // From an unlisted one: dropped by block_unlisted_ips before the engine.
    let stranger = UdpSocket::bind("127.0.0.3:0").unwrap();
    stranger
        .send_to(&[0x70, 0xC0, 3], ("127.0.0.1", port))
        .unwrap();
    // A JOIN whose proc_list claims 2^32-1 entries: refused before any allocation.
    let mut join = vec![0x70, 0xC0, 3, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
    join.extend_from_slice(&[0xFF; 4]);
    peer.send_to(&join, ("127.0.0.1", port)).unwrap();
    let text = wait_for(&log, Duration::from_secs(5), |l| l.contains("2 so far"));
    assert!(text.contains("Packet rejected from 127.0.0.3"), "{text}");
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Malformed datagram"))
        .collect();
    assert_eq!(bad.len(), 2, "{text}");
    for line in bad {
        assert!(
            line.contains("from 127.0.0.2:") && line.contains("at offset"),
            "{line}"
        );
    }
    // A burst: every datagram counted, at most 10 lines per 10 s written (a flood of
    // garbage must not flood the log), and the ring goes on.
    for _ in 0..40 {
        peer.send_to(&[0x70, 0xC0, 3], ("127.0.0.1", port)).unwrap();
    }
    wait_for(&log, Duration::from_secs(5), |l| l.contains("10 so far"));
    assert_eq!(terminate(child), Some(0), "SIGTERM: clean exit");
    let text = std::fs::read_to_string(&log).unwrap();
    let bad = text
        .lines()
        .filter(|l| l.contains("Malformed datagram"))
        .count();
    assert_eq!(bad, 10, "{text}");
    assert!(text.contains(", 42 malformed"), "every one counted: {text}");
    assert!(!status.exists(), "the status file goes with a clean exit");
    let stored = std::fs::read(dir.path().join("state/ringid_1")).unwrap();
    assert_eq!(stored, 5u64.to_ne_bytes());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Node was shut down by a signal"), "{text}");
    // two_node sets wait_for_all (votequorum_readconfig): a node that never saw both
    // nodes is not quorate (are_we_quorate waits for every expected vote).
    assert!(
        !text.contains("This node is within the primary component"),
        "two_node alone: waiting for all"
    );
    assert!(text.contains("[QUORUM] Members[1]: 1"), "{text}");

    let child = spawn(&conf);
    wait_for(&log, Duration::from_secs(10), |l| {
        l.contains("A new membership (1.a) was formed.")
    });
    assert_eq!(terminate(child), Some(0));
    assert_eq!(
        std::fs::read(dir.path().join("state/ringid_1")).unwrap(),
        0xau64.to_ne_bytes()
    );
}
