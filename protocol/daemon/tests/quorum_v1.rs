//! libquorum's model v1 (`quorum_model_initialize(QUORUM_MODEL_V1)`, what dlm_controld
//! uses) on a mixed ring: corosync on nodes 1 and 3, totemd on node 2. A small client
//! (tests/c/quorumv1.c) tracks changes on node 1 and on node 2 and prints every callback;
//! as node 3 leaves and comes back, the two clients must print the same lines: the v1
//! NODELIST (ring id, members, joined, left) and the v1 quorum notification (quorate, ring
//! id, view), in the same order.
//!
//! Root, corosync, libquorum's headers and gcc needed; skipped with a message otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{skip_reason, Lab};

const SYNCED: &str = "Completed service synchronization, ready to provide service.";

fn missing() -> Option<String> {
    if let Some(why) = skip_reason(true) {
        return Some(why);
    }
    if !Path::new("/usr/include/corosync/quorum.h").exists() {
        return Some("libquorum-dev is not installed".into());
    }
    if Command::new("gcc").arg("--version").output().is_err() {
        return Some("gcc is not installed".into());
    }
    None
}

fn compile(dir: &Path) -> PathBuf {
    let exe = dir.join("quorumv1");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/quorumv1.c");
    let out = Command::new("gcc")
        .args(["-Wall", "-Werror", "-O1", "-o"])
        .arg(&exe)
        .arg(&source)
        .arg("-lquorum")
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until both outputs have `n` lines.
fn wait_lines(outs: &[PathBuf], n: usize, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if outs.iter().all(|o| lines(o).len() >= n) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what}: not {n} lines in 30 s: {:#?}",
        outs.iter().map(|o| lines(o)).collect::<Vec<_>>()
    );
}

#[test]
fn model_v1_callbacks_on_totemd_match_corosyncs() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED model_v1_callbacks_on_totemd_match_corosyncs: {why}");
        return;
    }
    let mut lab = Lab::new("qv1", 3).expect("lab");
    let client = compile(&lab.dir);
    lab.spawn_corosync(1, 3);
    lab.spawn_totemd(2, 3);
    let c3 = lab.spawn_corosync(3, 3);
    for n in 1..=3 {
        lab.wait_log(n, Duration::from_secs(30), |l| {
            l.contains("Members[3]: 1 2 3") && l.contains(SYNCED)
        })
        .expect("ring of three");
    }
    let outs: Vec<PathBuf> = [1, 2]
        .iter()
        .map(|n| lab.dir.join(format!("q{n}.out")))
        .collect();
    for (n, out) in [1, 2].iter().zip(&outs) {
        lab.spawn_program(*n, &format!("'{}' > '{}'", client.display(), out.display()));
    }
    // type, then TRACKSTART's nodelist (no joined/left) and quorum notification.
    wait_lines(&outs, 3, "start");
    let start = lines(&outs[0]);
    assert_eq!(start[0], "type 1");
    assert!(
        start[1].starts_with("nodelist ring ")
            && start[1].ends_with("members 1,2,3 joined - left -"),
        "{start:?}"
    );
    assert!(
        start[2].starts_with("quorum quorate 1 ring ") && start[2].ends_with("view 1,2,3"),
        "{start:?}"
    );

    // Node 3 leaves cleanly, then comes back.
    assert_eq!(lab.stop_pid(c3, "TERM"), Some(0));
    wait_lines(&outs, 5, "node 3 left");
    lab.spawn_corosync(3, 3);
    wait_lines(&outs, 7, "node 3 back");
    std::thread::sleep(Duration::from_secs(1));
    let (corosync, totemd) = (lines(&outs[0]), lines(&outs[1]));
    eprintln!(
        "corosync's client:\n{}\ntotemd's client:\n{}",
        corosync.join("\n"),
        totemd.join("\n")
    );
    assert!(
        corosync[3].ends_with("members 1,2 joined - left 3"),
        "{corosync:?}"
    );
    assert!(
        corosync[5].ends_with("members 1,2,3 joined 3 left -"),
        "{corosync:?}"
    );
    assert_eq!(
        totemd, corosync,
        "the same callbacks on totemd as on corosync"
    );
}
