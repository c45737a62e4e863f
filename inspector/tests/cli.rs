//! The command line as a user meets it: exit codes, bad input, truncated files, malformed
//! frames.

use std::io::Write;
use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pcap/corosync-3.1.7")
        .join(name)
}

fn inspect() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("totem-inspect"))
}

#[test]
fn help_names_the_subcommands() {
    inspect()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("decode").and(predicate::str::contains("stats")));
}

#[test]
fn a_file_that_is_not_a_capture_is_one_line_and_exit_2() {
    let mut file = tempfile();
    file.write_all(b"this is not a pcap file at all").unwrap();
    inspect()
        .args(["decode", file.path_str()])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("not a pcap or pcapng capture")
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        );
}

#[test]
fn a_missing_file_is_exit_2() {
    inspect()
        .args(["decode", "/nonexistent/x.pcap"])
        .assert()
        .code(2);
}

#[test]
fn usage_errors_are_exit_2() {
    inspect().args(["decode"]).assert().code(2);
    inspect()
        .args(["decode", "--type", "bogus", "x.pcap"])
        .assert()
        .code(2);
    inspect().args(["frobnicate"]).assert().code(2);
}

#[test]
fn a_truncated_capture_is_decoded_as_far_as_it_goes() {
    let original = std::fs::read(fixture("udpu-02-cpg-join-mcast.pcap")).unwrap();
    let mut file = tempfile();
    file.write_all(&original[..original.len() / 2 + 7]).unwrap();
    let output = inspect()
        .args(["decode", file.path_str()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "incomplete input is exit 1");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.lines().count() > 100,
        "frames before the cut are decoded"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("capture ends early after frame"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_frame_gets_an_error_and_decoding_goes_on() {
    // Corrupt the totem magic of frame 1: pcap header 24, record header 16, Linux cooked v2
    // header 20, IPv4 20, UDP 8.
    let mut bytes = std::fs::read(fixture("udpu-2node-cpg.pcap")).unwrap();
    let first_payload = 24 + 16 + 20 + 20 + 8;
    bytes[first_payload] = 0xde;
    bytes[first_payload + 1] = 0xad;
    let mut file = tempfile();
    file.write_all(&bytes).unwrap();
    let output = inspect()
        .args(["decode", "--format", "json", file.path_str()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["error"]["layer"], "totem");
    assert_eq!(lines[0]["error"]["offset"], 0);
    assert_eq!(lines[0]["error"]["kind"], "bad_magic");
    assert!(lines[1]["totem"].is_object(), "the next frame decodes");
    assert!(lines.len() > 50);
}

#[test]
fn json_lines_carry_frame_numbers_and_stats_json_parses() {
    let path = fixture("knet-3node-steady.pcap");
    let output = inspect()
        .args(["decode", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success());
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["frame"], 1);
    assert_eq!(first["transport"], "knet");
    inspect()
        .args(["stats", "--format", "json"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"rings\""));
}

/// A temporary file removed on drop.
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
}

impl TempFile {
    fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile() -> TempFile {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "totem-inspect-test-{}-{}.pcap",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).unwrap();
    TempFile { path, file }
}

#[test]
fn live_capture_on_loopback_decodes_what_is_sent() {
    // Needs CAP_NET_RAW (CI runs as root); elsewhere say so and stop.
    let probe = pcap::Capture::from_device("lo").and_then(|c| c.open());
    if let Err(e) = probe {
        eprintln!("SKIPPED live capture test: cannot capture on lo ({e})");
        return;
    }
    let token = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/wire/srp/orf_token.bin"),
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("totem-inspect"))
        .args([
            "decode",
            "--interface",
            "lo",
            "--count",
            "2",
            "--type",
            "token",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Send until the capture has seen enough (it may start after the first datagrams).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        socket.send_to(&token, "127.0.0.1:5405").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
        panic!("live capture did not see two tokens within 10 s");
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    // --count counts frames read; other loopback UDP may take a slot, never a line.
    assert!((1..=2).contains(&stdout.lines().count()), "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.contains("ORF_TOKEN from=1 ring=1.d")),
        "{stdout}"
    );
}
