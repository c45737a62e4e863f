//! Our implementation against corosync's recorded behaviour, without root or corosync: every
//! scenario tagged `snapshot` runs on the `sim` backend and its normalised trace must equal
//! the snapshot real corosync 3.1.7 produced (`snapshots/real_corosync__<id>.snap`, recorded
//! by tests/real_corosync.rs). Return codes, confchg lists, member lists, delivery order,
//! iteration order and the callbacks each handle saw must all be the same.
//!
//! Scenarios meant for corosync only (they expect its cpg_leave bug) are not compared.

use std::path::PathBuf;
use std::time::Duration;

use totem_conformance::backend::sim::SimBackend;
use totem_conformance::driver::{run_case, RunOptions, Verdict};
use totem_conformance::expectations::Deviations;
use totem_conformance::scenario::load;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn sim_traces_equal_the_real_corosync_snapshots() {
    let all = load::load_dir(&repo().join("fixtures/scenarios")).expect("scenarios load");
    let devs = Deviations::load(&repo().join("fixtures/expectations/deviations.yaml"))
        .expect("deviations");
    let chosen: Vec<_> = all
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == "snapshot"))
        .filter(|s| s.backends.is_empty() || s.backends.iter().any(|b| b == "sim"))
        .collect();
    assert!(chosen.len() >= 10, "snapshot set: {}", chosen.len());
    let mut settings = insta::Settings::clone_current();
    // The same files tests/real_corosync.rs records.
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for s in chosen {
            let mut b = SimBackend::new(1);
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
            insta::assert_yaml_snapshot!(
                format!("real_corosync__{}", s.id),
                o.norm.expect("normalised trace")
            );
        }
    });
}
