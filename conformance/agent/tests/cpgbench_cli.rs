//! Smoke test of `totem-cpgbench` and `ci/bench-ring.sh` without a ring: argument parsing,
//! the JSON lines of a dry run, `compare` on synthetic ladders. No timing is asserted.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totem-cpgbench"))
        .args(args)
        .env("TOTEM_CONFORM_LIBCPG", "libtotem-cpgbench-no-such-lib.so.0")
        .output()
        .expect("totem-cpgbench runs")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn help_and_usage_errors() {
    let out = bench(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run") && text.contains("compare"), "{text}");
    let out = bench(&["run", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--sizes"));
    for bad in [
        &["run", "--sizes", "64,abc"][..],
        &["run", "--sizes", "10"],
        &["run", "--sizes", "2000000"],
        &["run", "--duration", "-1"],
        &["run", "--guarantee", "sometimes"],
        &["run", "--no-such-flag"],
        &["compare", "--base", "x"],
        &[],
    ] {
        assert_eq!(bench(bad).status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn dry_run_prints_one_record_per_size() {
    let out = bench(&[
        "run",
        "--dry-run",
        "--sizes",
        "64,320,200000",
        "--label",
        "x",
        "--guarantee",
        "safe",
        "--duration",
        "2.5",
    ]);
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&out);
    assert_eq!(v.len(), 5);
    assert_eq!(v[0]["event"], "start");
    assert_eq!(v[0]["sizes"], serde_json::json!([64, 320, 200000]));
    assert_eq!(v[4]["event"], "done");
    for (r, size) in v[1..4].iter().zip([64, 320, 200000]) {
        assert_eq!(r["event"], "size");
        assert_eq!(r["size"], size);
        assert_eq!(r["label"], "x");
        assert_eq!(r["guarantee"], "safe");
        assert_eq!(r["duration_s"], 2.5);
        assert_eq!(r["dry_run"], true);
        for k in [
            "msgs_per_s",
            "mb_per_s",
            "lat_p50_us",
            "lat_p99_us",
            "lat_max_us",
            "sent",
            "delivered",
            "try_again",
            "undelivered",
        ] {
            assert_eq!(r[k].as_f64(), Some(0.0), "{k}");
        }
    }
    // The default ladder is the issue's.
    let v = json_lines(&bench(&["run", "--dry-run"]));
    assert_eq!(
        v[0]["sizes"],
        serde_json::json!([64, 320, 1600, 8000, 40000, 200000])
    );
}

#[test]
fn without_libcpg_one_error_line() {
    let out = bench(&["run", "--sizes", "64", "--connect-timeout", "0"]);
    assert_eq!(out.status.code(), Some(3));
    let v = json_lines(&out);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["event"], "error");
    assert!(v[0]["error"]
        .as_str()
        .unwrap()
        .contains("libtotem-cpgbench-no-such-lib.so.0"));
}

fn ladder(dir: &std::path::Path, name: &str, label: &str, rows: &[(usize, f64, f64)]) -> PathBuf {
    let out = bench(&["run", "--dry-run", "--label", label, "--sizes", "64,320"]);
    let mut lines = Vec::new();
    for mut v in json_lines(&out) {
        if let Some(&(_, msgs, p99)) = rows.iter().find(|r| v["size"] == r.0) {
            v["msgs_per_s"] = msgs.into();
            v["lat_p99_us"] = p99.into();
            v["dry_run"] = false.into();
        }
        lines.push(v.to_string());
    }
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn compare_reports_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let base = ladder(
        dir.path(),
        "c.jsonl",
        "corosync",
        &[(64, 1000.0, 100.0), (320, 800.0, 200.0)],
    );
    let cand = ladder(
        dir.path(),
        "t.jsonl",
        "totemd",
        &[(64, 1500.0, 90.0), (320, 400.0, 300.0)],
    );
    let json = dir.path().join("results.json");
    let out = bench(&[
        "compare",
        "--base",
        base.to_str().unwrap(),
        "--candidate",
        cand.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--meta",
        "host=test",
    ]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("| 64 |") && table.contains("| met |"),
        "{table}"
    );
    assert!(
        table.contains("| 320 |") && table.contains("| missed |"),
        "{table}"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["meta"]["host"], "test");
    assert_eq!(v["ratios"][0]["size"], 64);
    assert_eq!(v["ratios"][0]["msgs_per_s_ratio"], 1.5);
    assert_eq!(v["ratios"][0]["p99_ratio"], 0.9);
    assert_eq!(v["ratios"][0]["target_met"], true);
    assert_eq!(v["ratios"][1]["msgs_per_s_ratio"], 0.5);
    assert_eq!(v["ratios"][1]["target_met"], false);
    assert_eq!(v["min_msgs_per_s_ratio"], 0.5);
    assert_eq!(v["baseline"]["sizes"].as_array().unwrap().len(), 2);

    // A ladder that could not run is reported, not fatal.
    let out = bench(&[
        "compare",
        "--base",
        base.to_str().unwrap(),
        "--candidate",
        dir.path().join("missing.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("n/a") && table.contains("missing.jsonl"),
        "{table}"
    );
}

#[test]
fn script_help() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ci/bench-ring.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--help")
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in ["--duration", "--sizes", "--load", "--only", "results.json"] {
        assert!(text.contains(opt), "{opt} missing from:\n{text}");
    }
    let out = Command::new("bash")
        .arg(&script)
        .arg("--bogus")
        .output()
        .expect("bash runs");
    assert_eq!(out.status.code(), Some(2));
}
