//! Real corosync 3.1.7 (needs root, ci/install-corosync.sh and the agent binary built).
//! Where the backend cannot run, these tests say so on stderr and check nothing else; CI
//! runs them as root with corosync installed (ci/conformance-real.sh).
//!
//! Scenarios tagged `snapshot` are the ones whose normalised trace is deterministic on
//! corosync; their traces are insta snapshots, so a change in corosync's behaviour (or in
//! our normalisation) shows up as a reviewable diff.

use std::path::PathBuf;
use std::time::Duration;

use totem_conformance::backend::corosync::{self, Corosync};
use totem_conformance::driver::{run_case, RunOptions, Verdict};
use totem_conformance::expectations::Deviations;
use totem_conformance::scenario::load;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn available() -> bool {
    match corosync::availability() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("real corosync backend not available here ({why}); nothing to run");
            false
        }
    }
}

#[test]
fn snapshot_scenarios_have_stable_normalised_traces() {
    if !available() {
        return;
    }
    let all = load::load_dir(&repo().join("fixtures/scenarios")).expect("scenarios load");
    let devs = Deviations::load(&repo().join("fixtures/expectations/deviations.yaml"))
        .expect("deviations");
    let chosen: Vec<_> = all
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == "snapshot"))
        .collect();
    assert!(
        chosen.len() >= 10,
        "expected the snapshot set, got {}",
        chosen.len()
    );
    for s in chosen {
        let mut b = Corosync::new(corosync::Config::default());
        let o = run_case(
            s,
            &mut b,
            &RunOptions {
                artifacts: None,
                deviations: &devs,
                cmd_timeout: Duration::from_secs(30),
            },
        );
        assert!(
            matches!(o.verdict, Verdict::Pass | Verdict::Deviation(_)),
            "{}: {:?} {:?} {:?}",
            s.id,
            o.verdict,
            o.failures,
            o.violations
        );
        insta::assert_yaml_snapshot!(s.id.clone(), o.norm.expect("normalised trace"));
    }
}

#[test]
fn a_wrong_expectation_fails_and_the_cli_exits_1() {
    if !available() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/failing");
    assert_cmd::Command::cargo_bin("totem-conform")
        .expect("bin")
        .arg("--scenarios")
        .arg(&dir)
        .args(["run", "--backend", "corosync"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "returned CS_OK, expected [\"CS_ERR_EXIST\"]",
        ));
}
