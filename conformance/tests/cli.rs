//! The `totem-conform` command line: listing, input errors, verdicts and exit codes.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("totem-conform").expect("binary built by cargo test")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn here(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

#[test]
fn help_names_the_backends_and_commands() {
    bin().arg("--help").assert().success().stdout(
        predicate::str::contains("corosync")
            .and(predicate::str::contains("list"))
            .and(predicate::str::contains("diff")),
    );
    bin()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--junit").and(predicate::str::contains("sim")));
}

/// native and mixed run (they are not placeholders), and users are not sent to the
/// project's issue numbers to learn what a backend is.
#[test]
fn help_describes_every_backend_as_it_is() {
    for args in [&["--help"][..], &["run", "--help"]] {
        bin().args(args).assert().success().stdout(
            predicate::str::contains("totemd")
                .and(predicate::str::contains("not built").not())
                .and(predicate::str::contains("report skipped").not())
                .and(predicate::str::contains("issue").not()),
        );
    }
}

#[test]
fn list_shows_at_least_forty_scenarios_and_hides_long_ones() {
    let out = bin()
        .arg("list")
        .arg("--format")
        .arg("json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    let all = v.as_array().expect("array");
    assert!(all.len() >= 40, "only {} scenarios", all.len());
    assert!(all
        .iter()
        .all(|s| !s["tags"].as_array().unwrap().iter().any(|t| t == "long")));
    bin()
        .args(["list", "--tag", "long"])
        .assert()
        .success()
        .stdout(predicate::str::contains("order-msgorderbasic-long"));
}

#[test]
fn every_scenario_cites_a_spec_and_a_requirement() {
    let out = bin()
        .args(["list", "--include-long", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    for s in v.as_array().expect("array") {
        assert!(
            !s["spec_ref"].as_str().unwrap_or("").trim().is_empty(),
            "{s}"
        );
        assert!(
            !s["requirement"].as_str().unwrap_or("").trim().is_empty(),
            "{s}"
        );
    }
}

#[test]
fn bad_scenario_file_names_file_line_and_key() {
    bin()
        .arg("--scenarios")
        .arg(here("bad"))
        .arg("list")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("typo.yaml:10")
                .and(predicate::str::contains("steps[2]"))
                .and(predicate::str::contains("grop")),
        );
}

#[test]
fn a_case_a_backend_cannot_run_is_skipped_with_its_reason() {
    // A ring of one cannot mix corosync and totemd; the simulator has no socket IPC.
    let out = bin()
        .args([
            "run",
            "--backend",
            "mixed,sim",
            "--scenario",
            "cpg-join-basic",
            "--scenario",
            "recovery-daemon-restart-socket-ipc",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    let verdict = |scenario: &str, backend: &str| {
        cases
            .iter()
            .find(|c| c["scenario"] == scenario && c["backend"] == backend)
            .map(|c| c["verdict"].clone())
            .expect("case")
    };
    let skip = verdict("cpg-join-basic", "mixed");
    assert_eq!(skip["verdict"], "skipped");
    let why = skip["reason"].as_str().expect("reason");
    assert!(
        why.contains("at least 2 nodes") || why.contains("root"),
        "{why}"
    );
    assert_eq!(verdict("cpg-join-basic", "sim")["verdict"], "pass");
    let socket = verdict("recovery-daemon-restart-socket-ipc", "sim");
    assert_eq!(socket["verdict"], "skipped");
    assert!(socket["reason"]
        .as_str()
        .expect("reason")
        .contains("socket"));
}

#[test]
fn corosync_backend_without_agent_is_skipped_with_the_reason() {
    let dir = tempfile::tempdir().expect("tmp");
    let junit = dir.path().join("junit.xml");
    bin()
        .env("TOTEM_CONFORM_AGENT", "/nonexistent/totem-conform-agent")
        .args([
            "run",
            "--backend",
            "corosync",
            "--scenario",
            "cpg-join-*",
            "--junit",
        ])
        .arg(&junit)
        .assert()
        .success()
        .stderr(predicate::str::contains("SKIPPED").and(predicate::str::contains("PASS").not()));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<skipped message="), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn empty_selection_is_a_usage_error() {
    bin()
        .args(["run", "--backend", "sim", "--scenario", "no-such-*"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no scenario matches"));
}

#[test]
fn deviations_file_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("deviations.yaml");
    std::fs::write(
        &bad,
        "deviations:\n  - id: x\n    scenarios: \"*\"\n    reasn: typo\n",
    )
    .expect("write");
    bin()
        .arg("--deviations")
        .arg(&bad)
        .args(["run", "--backend", "sim", "--scenario", "cpg-join-basic"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("reasn"));
}

#[test]
fn diff_reports_equal_and_different_traces() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    let c = dir.path().join("c.yaml");
    let base = "scenario: x\nrules: []\nmarkers: [m]\ncalls: {}\nstreams:\n  a.h1: [\"confchg\"]\nexits: {}\n";
    std::fs::write(&a, base).expect("write");
    std::fs::write(&b, base.replace("scenario: x", "scenario: y")).expect("write");
    std::fs::write(&c, base.replace("confchg", "deliver")).expect("write");
    bin()
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .assert()
        .success()
        .stdout(predicate::str::contains("equal"));
    bin().arg("diff").arg(&a).arg(&c).assert().code(1).stdout(
        predicate::str::contains("-")
            .and(predicate::str::contains("+"))
            .and(predicate::str::contains("deliver")),
    );
}

#[test]
fn scenario_fixtures_all_load() {
    bin()
        .arg("--scenarios")
        .arg(fixtures().join("scenarios"))
        .args(["list", "--include-long"])
        .assert()
        .success();
}

#[test]
fn report_dir_has_a_matrix_and_case_pages() {
    let dir = tempfile::tempdir().expect("tmp");
    let rep = dir.path().join("rep");
    bin()
        .args([
            "run",
            "--backend",
            "sim,mixed",
            "--scenario",
            "cpg-join-basic",
            "--scenario",
            "err-*",
            "--report",
        ])
        .arg(&rep)
        .assert()
        .success();
    let index = std::fs::read_to_string(rep.join("index.html")).expect("index.html");
    assert!(
        index.contains("<th>mixed</th>") && index.contains("<th>sim</th>"),
        "{index}"
    );
    assert!(
        index.contains("cases/err-join-twice/sim/case.html"),
        "{index}"
    );
    let case =
        std::fs::read_to_string(rep.join("cases/err-join-twice/sim/case.html")).expect("case page");
    assert!(
        case.contains("deviation") && case.contains("join-twice-returns-exist"),
        "{case}"
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rep.join("results.json")).expect("results.json"),
    )
    .expect("json");
    let cases = results["cases"].as_array().expect("cases");
    // The simulator runs every case; mixed skips every one (rings of one node).
    assert_eq!(results["totals"]["skipped"], cases.len() / 2);
    assert_eq!(results["totals"]["fail"], 0);
}

/// The embedded simulator needs neither root nor corosync: the whole default set runs,
/// nothing fails, and one seed gives one normalised trace.
#[test]
fn sim_backend_runs_the_default_set_and_repeats_itself() {
    let run = |seed: &str| {
        let out = bin()
            .args([
                "run",
                "--backend",
                "sim",
                "--seed",
                seed,
                "--format",
                "json",
            ])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice::<serde_json::Value>(&out).expect("json")
    };
    let v = run("7");
    assert_eq!(v["totals"]["fail"], 0, "{v}");
    assert!(v["totals"]["pass"].as_u64().expect("pass") >= 40, "{v}");
    // knet rings too: the simulator runs totem-knet's link layer.
    let knet: Vec<&serde_json::Value> = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["scenario"].as_str().is_some_and(|s| s.ends_with("-knet")))
        .collect();
    assert!(knet.len() >= 3, "{v}");
    assert!(
        knet.iter().all(|c| c["verdict"]["verdict"] == "pass"),
        "{knet:?}"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let trace = |n: &str, scenario: &str| {
        let rep = dir.path().join(n);
        bin()
            .args([
                "run",
                "--backend",
                "sim",
                "--seed",
                "7",
                "--scenario",
                scenario,
                "--report",
            ])
            .arg(&rep)
            .assert()
            .success();
        std::fs::read_to_string(rep.join(format!("cases/{scenario}/sim/normalized.yaml")))
            .expect("normalized trace")
    };
    for scenario in ["order-3node-agreed-udpu", "order-3node-agreed-knet"] {
        assert_eq!(trace("a", scenario), trace("b", scenario), "{scenario}");
    }
}

/// A failing simulator case fails the run (exit 1) and says how to replay it.
#[test]
fn a_failing_sim_case_exits_1_and_prints_its_replay_command() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/failing");
    bin()
        .arg("--scenarios")
        .arg(&dir)
        .args(["run", "--backend", "sim", "--seed", "5"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "returned CS_OK, expected [\"CS_ERR_EXIST\"]",
        ))
        .stderr(predicates::str::contains(
            "replay: totem-conform run --backend sim --seed 5 --scenario",
        ));
}
