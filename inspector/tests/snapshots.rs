//! insta snapshots of `decode`, `decode --verbose`, `decode --format json` and `stats` for
//! every capture under fixtures/pcap. Output is deterministic for a file (timestamps come from
//! the capture), so no redaction is needed.

use std::path::{Path, PathBuf};

use clap::Parser;
use totem_inspect::cli::{Cli, Config};

fn run(args: &[&str]) -> String {
    let cli = Cli::try_parse_from(args).expect("arguments parse");
    let config = Config::from_cli(cli).expect("arguments validate");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = totem_inspect::run(&config, &mut out, &mut err).expect("run");
    assert_eq!(
        code,
        std::process::ExitCode::SUCCESS,
        "{}",
        String::from_utf8_lossy(&err)
    );
    assert!(err.is_empty(), "stderr: {}", String::from_utf8_lossy(&err));
    String::from_utf8(out).expect("utf-8 output")
}

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap");
    let mut found = Vec::new();
    for version in std::fs::read_dir(&dir).expect("fixtures/pcap") {
        for entry in std::fs::read_dir(version.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                found.push(path);
            }
        }
    }
    found.sort();
    assert!(
        found.len() >= 9,
        "fixtures/pcap holds {} captures",
        found.len()
    );
    found
}

fn snapshot_name(path: &Path, view: &str) -> String {
    format!("{}__{view}", path.file_stem().unwrap().to_string_lossy())
}

#[test]
fn decode_summary_of_every_capture() {
    for path in captures() {
        let output = run(&["totem-inspect", "decode", path.to_str().unwrap()]);
        insta::assert_snapshot!(snapshot_name(&path, "summary"), output);
    }
}

#[test]
fn decode_verbose_of_every_capture() {
    for path in captures() {
        let output = run(&[
            "totem-inspect",
            "decode",
            "--verbose",
            path.to_str().unwrap(),
        ]);
        insta::assert_snapshot!(snapshot_name(&path, "verbose"), output);
    }
}

#[test]
fn decode_json_of_every_capture() {
    for path in captures() {
        let output = run(&[
            "totem-inspect",
            "decode",
            "--format",
            "json",
            path.to_str().unwrap(),
        ]);
        // Every line is an object with a 1-based frame number, in order.
        for (i, line) in output.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
            assert_eq!(v["frame"], (i + 1) as u64);
        }
        insta::assert_snapshot!(snapshot_name(&path, "json"), output);
    }
}

#[test]
fn stats_of_every_capture() {
    for path in captures() {
        let text = run(&["totem-inspect", "stats", path.to_str().unwrap()]);
        insta::assert_snapshot!(snapshot_name(&path, "stats"), text);
        let json = run(&[
            "totem-inspect",
            "stats",
            "--format",
            "json",
            path.to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&json).expect("stats JSON");
        assert!(v["frames"].as_u64().unwrap() > 0);
    }
}

#[test]
fn the_formation_capture_shows_three_rings_forming() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pcap/corosync-3.1.7/udpu-01-formation.pcap");
    let json = run(&[
        "totem-inspect",
        "stats",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rings: Vec<String> = v["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}.{} {}",
                r["ring_id"]["rep"], r["ring_id"]["seq"], r["members"]
            )
        })
        .collect();
    // timeline: n1 alone (1.5: a singleton's commit token stays on its node), n2 starts alone
    // (2.5, seen in its MERGE_DETECTs) and merges (1.9, ring of 2), n3 likewise (3.5, then
    // 1.d = 13); ring seqs start at 1 + 4 and grow by 4 (spec §2.9).
    assert_eq!(
        rings,
        vec![
            "1.5 null",
            "2.5 null",
            "1.9 [1,2]",
            "3.5 null",
            "1.13 [1,2,3]"
        ]
    );
}

#[test]
fn filters_select_cpg_traffic_of_one_group_and_node() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pcap/corosync-3.1.7/udpu-02-cpg-join-mcast.pcap");
    let p = path.to_str().unwrap();
    let out = run(&[
        "totem-inspect",
        "decode",
        "--group",
        "cslab",
        "--node",
        "2",
        p,
    ]);
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(line.contains("group=cslab"), "{line}");
        assert!(line.contains("MCAST from=2"), "{line}");
    }
    // Any byte of a name may be given as \xNN, as the views escape the ones that need it.
    let escaped = run(&[
        "totem-inspect",
        "decode",
        "--group",
        "\\x63slab",
        "--node",
        "2",
        p,
    ]);
    assert_eq!(escaped, out);
    let tokens = run(&["totem-inspect", "decode", "--type", "token", p]);
    assert!(tokens.lines().all(|l| l.contains("ORF_TOKEN")));
    let sync = run(&["totem-inspect", "decode", "--service", "sync", p]);
    assert!(sync.lines().all(|l| l.contains("SYNC/")));
}
