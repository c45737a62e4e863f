//! libqb IPC recordings: snapshots of every view for the real recordings in fixtures/ipc,
//! bad input, filters, and the recorder's transparency against a real corosync 3.1.7 (the
//! same client, run with and without recording, must print the same thing).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use totem_inspect::cli::{Cli, Config};
use totem_wire::ipc::record::{
    pcapng_file_header, pcapng_packet, Direction, LibqbCall, RecordHeader, RecordKind, FLAG_MORE,
};
use totem_wire::ipc::Channel;

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

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ipc");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/ipc")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("pcapng"))
        .collect();
    found.sort();
    assert!(
        found.len() >= 3,
        "fixtures/ipc holds {} recordings",
        found.len()
    );
    found
}

fn name(path: &Path, view: &str) -> String {
    format!(
        "ipc-{}__{view}",
        path.file_stem().unwrap().to_string_lossy()
    )
}

#[test]
fn ipc_decode_views_of_every_recording() {
    for path in fixtures() {
        let p = path.to_str().unwrap();
        let summary = run(&["totem-inspect", "decode", p]);
        insta::assert_snapshot!(name(&path, "summary"), summary);
        let verbose = run(&["totem-inspect", "decode", "--verbose", p]);
        insta::assert_snapshot!(name(&path, "verbose"), verbose);
        let json = run(&["totem-inspect", "decode", "--format", "json", p]);
        for (i, line) in json.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
            assert_eq!(v["frame"], (i + 1) as u64);
            assert_eq!(v["transport"], "libqb-ipc");
            // Real recordings decode without a single error.
            assert!(v.get("error").is_none(), "{line}");
        }
        insta::assert_snapshot!(name(&path, "json"), json);
    }
}

#[test]
fn ipc_stats_of_every_recording() {
    for path in fixtures() {
        let p = path.to_str().unwrap();
        let text = run(&["totem-inspect", "stats", p]);
        insta::assert_snapshot!(name(&path, "stats"), text);
        let json = run(&["totem-inspect", "stats", "--format", "json", p]);
        let v: serde_json::Value = serde_json::from_str(&json).expect("stats JSON");
        assert!(v["records"].as_u64().unwrap() > 0);
    }
}

/// What the socket-mode client recording must show, whatever the snapshots say.
#[test]
fn ipc_client_recording_pairs_every_response_and_names_errors() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ipc/cpgclient-socket.pcapng");
    let json = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let frames: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut statuses = Vec::new();
    for f in &frames {
        if f["channel"] == "response" {
            let to = f["reply_to"]
                .as_u64()
                .expect("every response answers a request");
            let request = &frames[to as usize - 1];
            assert_eq!(request["channel"], "request");
            assert_eq!(request["name"], f["name"]);
            assert!(f["latency_us"].as_u64().is_some());
            statuses.push(format!(
                "{} {}",
                f["name"].as_str().unwrap(),
                f["status"].as_str().unwrap_or("-")
            ));
        }
    }
    for expected in [
        "JOIN CS_ERR_EXIST",
        "LEAVE CS_ERR_NOT_EXIST",
        "ITERATIONNEXT CS_ERR_NO_SECTIONS",
        "PARTIAL_MCAST CS_OK",
        "ZC_EXECUTE CS_OK",
        "ZC_ALLOC -",
    ] {
        assert!(
            statuses.iter().any(|s| s == expected),
            "{expected} not in {statuses:?}"
        );
    }
    // The large mcast went as PARTIAL_MCAST pieces, FIRST and LAST, each split over records.
    let partial: Vec<_> = frames
        .iter()
        .filter(|f| f["name"] == "PARTIAL_MCAST" && f["channel"] == "request")
        .map(|f| f["detail"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(partial, ["FIRST", "LAST"]);
    // The forked child's connection is there, from another pid.
    let pids: std::collections::BTreeSet<u64> =
        frames.iter().filter_map(|f| f["pid"].as_u64()).collect();
    assert_eq!(pids.len(), 2, "parent and forked child");
}

#[test]
fn ipc_filters_apply_to_ipc_records() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ipc/cpgclient-socket.pcapng");
    let p = path.to_str().unwrap();
    let joins = run(&["totem-inspect", "decode", "--type", "join", p]);
    assert!(!joins.is_empty());
    assert!(joins.lines().all(|l| l.contains(" JOIN")), "{joins}");
    let delivers = run(&[
        "totem-inspect",
        "decode",
        "--type",
        "DELIVER",
        "--group",
        "fixture",
        p,
    ]);
    assert_eq!(delivers.lines().count(), 2, "{delivers}");
    let none = run(&["totem-inspect", "decode", "--service", "cmap", p]);
    assert!(none.is_empty());
    let nodes = run(&[
        "totem-inspect",
        "decode",
        "--node",
        "1",
        "--type",
        "LOCAL_GET",
        p,
    ]);
    assert_eq!(nodes.lines().count(), 2, "{nodes}");
}

fn header(kind: RecordKind, direction: Direction, flags: u8, piece: u16, seq: u32) -> RecordHeader {
    RecordHeader {
        kind,
        direction,
        call: LibqbCall::SendvRecv,
        flags,
        piece,
        pid: 100,
        tid: 100,
        conn: 1,
        result: 0,
        seq,
        dropped: 0,
        service: RecordHeader::service_field(b"cpg"),
    }
}

fn on_conn(mut h: RecordHeader, conn: u32) -> RecordHeader {
    h.conn = conn;
    h
}

fn packet(h: RecordHeader, message: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    h.emit(&mut p);
    p.extend_from_slice(message);
    p
}

fn write_recording(packets: &[Vec<u8>]) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "totem-inspect-ipc-{}-{}.pcapng",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut bytes = pcapng_file_header();
    for (i, p) in packets.iter().enumerate() {
        pcapng_packet(&mut bytes, 1_700_000_000_000_000 + i as u64 * 10, p);
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn ipc_bad_records_are_errors_and_decoding_goes_on() {
    let mut join = vec![0u8; 168];
    join[8..12].copy_from_slice(&168u32.to_le_bytes());
    let mut short_join = join.clone();
    short_join.truncate(100);
    let mut wrong_size = join.clone();
    wrong_size[8..12].copy_from_slice(&999u32.to_le_bytes());
    let request = RecordKind::Message(Channel::Request);
    let mut bad_magic = packet(header(request, Direction::ToServer, 0, 0, 0), &join);
    bad_magic[0] = b'X';
    let mut bad_version = packet(header(request, Direction::ToServer, 0, 0, 1), &join);
    bad_version[4] = 9;
    let mut confchg = vec![0u8; 184];
    confchg[0] = 4;
    confchg[8..12].copy_from_slice(&184u32.to_le_bytes());
    confchg[160..164].copy_from_slice(&1000u32.to_le_bytes());
    let packets = vec![
        bad_magic,
        bad_version,
        packet(header(request, Direction::ToServer, 0, 0, 2), &short_join),
        packet(header(request, Direction::ToServer, 0, 0, 3), &wrong_size),
        vec![b'Q', b'B'],
        // An orphan second piece.
        packet(header(request, Direction::ToServer, 0, 1, 4), &join),
        packet(
            header(
                RecordKind::Message(Channel::Event),
                Direction::ToClient,
                0,
                0,
                5,
            ),
            &confchg,
        ),
        // A good JOIN split in two pieces, then its answer, on a second connection (the
        // malformed requests above were still sent: they wait for answers on the first).
        packet(
            on_conn(header(request, Direction::ToServer, FLAG_MORE, 0, 6), 2),
            &join[..100],
        ),
        packet(
            on_conn(header(request, Direction::ToServer, 0, 1, 6), 2),
            &join[100..],
        ),
        packet(
            on_conn(
                header(
                    RecordKind::Message(Channel::Response),
                    Direction::ToClient,
                    0,
                    0,
                    7,
                ),
                2,
            ),
            &{
                let mut r = vec![0u8; 24];
                r[8] = 24;
                r[16] = 14;
                r
            },
        ),
    ];
    let path = write_recording(&packets);
    let json = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let frames: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), packets.len());
    let error = |i: usize| {
        (
            frames[i]["error"]["layer"].clone(),
            frames[i]["error"]["kind"].clone(),
            frames[i]["error"]["offset"].clone(),
        )
    };
    assert_eq!(error(0), ("ipc".into(), "bad_magic".into(), 0.into()));
    assert_eq!(
        error(1),
        ("ipc".into(), "unsupported_version".into(), 4.into())
    );
    // The header's size (168) is checked against the bytes present (100) first.
    assert_eq!(error(2), ("ipc".into(), "length_mismatch".into(), 8.into()));
    assert_eq!(error(3), ("ipc".into(), "length_mismatch".into(), 8.into()));
    assert_eq!(error(4).1, "truncated");
    assert_eq!(error(5), ("ipc".into(), "invalid_value".into(), 10.into()));
    assert_eq!(
        error(6),
        ("ipc".into(), "count_too_large".into(), 160.into())
    );
    assert!(frames[7].get("error").is_none());
    assert_eq!(frames[8]["name"], "JOIN", "{}", frames[8]);
    assert_eq!(frames[9]["name"], "JOIN");
    assert_eq!(frames[9]["status"], "CS_ERR_EXIST");
    assert_eq!(frames[9]["reply_to"], 9);
    let text = run(&["totem-inspect", "decode", path.to_str().unwrap()]);
    assert_eq!(text.lines().count(), packets.len());
    let stats = run(&["totem-inspect", "stats", path.to_str().unwrap()]);
    assert!(stats.contains("ipc/bad_magic: 1"), "{stats}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn ipc_stats_find_try_again_storms() {
    let mut mcast = vec![0u8; 40 + 4];
    mcast[0] = 2;
    mcast[8] = 44;
    mcast[32] = 4;
    let request = RecordKind::Message(Channel::Request);
    let mut packets = Vec::new();
    for seq in 0..12 {
        let mut h = header(request, Direction::ToServer, 0x01, 0, seq);
        h.call = LibqbCall::Sendv;
        h.result = -11;
        packets.push(packet(h, &mcast));
    }
    let mut h = header(request, Direction::ToServer, 0, 0, 12);
    h.call = LibqbCall::Sendv;
    h.result = 44;
    packets.push(packet(h, &mcast));
    let path = write_recording(&packets);
    let json = run(&[
        "totem-inspect",
        "stats",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["retry_storms"][0]["attempts"], 12, "{json}");
    assert_eq!(v["retry_storms"][0]["call"], "MCAST");
    assert_eq!(v["calls"]["MCAST"]["errors"]["CS_ERR_TRY_AGAIN"], 12);
    assert_eq!(v["calls"]["MCAST"]["ok"], 1);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn ipc_record_subcommand_needs_a_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_totem-inspect"))
        .args(["record-ipc", "-o", "/tmp/x.pcapng"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---- the recorder against a real corosync ----------------------------------------------

/// Why the real-corosync test cannot run here, if it cannot.
fn real_corosync_missing() -> Option<String> {
    // Root, read from /proc/self/status (no libc in this test crate).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    if uid != "0" {
        return Some("not root: network namespaces need root".into());
    }
    for (what, path) in [
        ("corosync", "/usr/sbin/corosync"),
        ("libcpg-dev", "/usr/include/corosync/cpg.h"),
        ("ip (iproute2)", "/usr/sbin/ip"),
    ] {
        if !Path::new(path).exists() && !Path::new(&path.replace("/usr/sbin", "/sbin")).exists() {
            return Some(format!("{what} is not installed ({path})"));
        }
    }
    if Command::new("gcc").arg("--version").output().is_err() {
        return Some("gcc is not installed".into());
    }
    None
}

pub(crate) fn target_dir() -> PathBuf {
    // .../target/debug/deps/tests-HASH → .../target
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// Builds the preload library with the cargo that runs this test, into the same target dir.
/// Compiles `tests/ipc/cpgclient.c` against the installed libcpg into `work`.
fn compile_cpgclient(work: &Path) -> PathBuf {
    let client = work.join("cpgclient");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipc/cpgclient.c");
    let gcc = Command::new("gcc")
        .args(["-Wall", "-O1", "-o"])
        .arg(&client)
        .arg(&source)
        .args(["-lcpg", "-lpthread"])
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    client
}

/// `totem-inspect decode --format json` of a recording, which must decode without error.
fn decoded_recording(path: &Path, label: &str) -> Vec<serde_json::Value> {
    let json = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let frames: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        frames.iter().all(|f| f.get("error").is_none()),
        "{label}: decode errors"
    );
    frames
}

/// The calls of `cpgclient transparency 3 1100000 300` in a recording (those that went
/// through: a TRY_AGAIN that libcpg's caller retried is recorded as a failed request of
/// its own), the IPC type every setup answered, every response paired. Returns how many
/// calls answered TRY_AGAIN.
fn check_transparency_calls(frames: &[serde_json::Value], label: &str, ipc_type: &str) -> usize {
    let count = |channel: &str, name: &str| {
        frames
            .iter()
            .filter(|f| {
                f["channel"] == channel && f["name"] == name && f.get("call_error").is_none()
            })
            .count()
    };
    // basic(): 2 JOIN + 3 threads × 1 + the flood's; 2 LEAVE + 3; FINALIZE 1 + 3 + the
    // flood's + the child's.
    assert_eq!(count("request", "JOIN"), 6, "{label}");
    assert_eq!(count("request", "LEAVE"), 5, "{label}");
    assert_eq!(count("request", "FINALIZE"), 6, "{label}");
    // 1 in basic(), 20 per thread, 300 in the flood.
    assert_eq!(count("request", "MCAST"), 1 + 3 * 20 + 300, "{label}");
    assert_eq!(count("request", "PARTIAL_MCAST"), 2, "{label}");
    assert_eq!(
        count("event", "DELIVER_CALLBACK"),
        1 + 1 + 3 * 20 + 300,
        "{label}"
    );
    assert_eq!(count("setup", "CONNECT"), 2 * 6, "{label}");
    assert!(frames
        .iter()
        .filter(|f| f["channel"] == "setup" && f["direction"] == "to_client")
        .all(|f| f["detail"]["connection_type"] == ipc_type));
    for f in frames.iter().filter(|f| f["channel"] == "response") {
        assert!(f["reply_to"].as_u64().is_some(), "{label}: unpaired {f}");
    }
    frames
        .iter()
        .filter(|f| f["call_error"]["cs_error"] == "CS_ERR_TRY_AGAIN")
        .count()
}

pub(crate) fn build_preload() -> PathBuf {
    let target = target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "totem-ipc-record"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p totem-ipc-record");
    let lib = target.join("debug/libtotem_ipc_record.so");
    assert!(lib.is_file(), "{} missing", lib.display());
    lib
}

struct Corosync {
    ns: String,
    dir: PathBuf,
}

impl Corosync {
    fn start(ns: &str, dir: &Path, ipc: &str) -> Corosync {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipc/corosync-single.sh");
        let _ = std::fs::remove_dir_all(dir);
        let status = Command::new("bash")
            .arg(&script)
            .args(["start", ns, dir.to_str().unwrap(), ipc])
            .status()
            .unwrap();
        let c = Corosync {
            ns: ns.into(),
            dir: dir.into(),
        };
        assert!(status.success(), "corosync ({ipc}) did not start");
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(["timeout", "120"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Corosync {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipc/corosync-single.sh");
        let _ = Command::new("bash")
            .arg(&script)
            .args(["stop", &self.ns, self.dir.to_str().unwrap()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ipc_recording_is_transparent_against_real_corosync() {
    if let Some(why) = real_corosync_missing() {
        eprintln!("SKIPPED ipc_recording_is_transparent_against_real_corosync: {why}");
        return;
    }
    let work = std::env::temp_dir().join(format!("totem-ipc-transparency-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let client = compile_cpgclient(&work);
    let preload = build_preload();
    let inspect = env!("CARGO_BIN_EXE_totem-inspect");
    for ipc in ["socket", "shm"] {
        let ns = format!("ipct-{}-{ipc}", std::process::id());
        let corosync = Corosync::start(&ns, &work.join(ipc), ipc);
        let client = client.to_str().unwrap();
        // Plain, recorded, plain again: a difference between the two plain runs would be the
        // client's own nondeterminism, not the recorder's.
        let plain = corosync.run(&[client, "transparency", "3", "1100000", "300"]);
        let output = work.join(format!("{ipc}.pcapng"));
        let recorded = corosync.run(&[
            inspect,
            "record-ipc",
            "--preload",
            preload.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--",
            client,
            "transparency",
            "3",
            "1100000",
            "300",
        ]);
        let plain_again = corosync.run(&[client, "transparency", "3", "1100000", "300"]);
        // An output that cannot be written: every record is dropped, the client must not
        // notice (no crash, no hang, same output).
        let unwritable = corosync.run(&[
            "env",
            &format!("LD_PRELOAD={}", preload.display()),
            "TOTEM_IPC_RECORD_OUT=/nonexistent-dir/x.pcapng",
            client,
            "transparency",
            "3",
            "1100000",
            "300",
        ]);
        assert_eq!(
            plain.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&plain.stderr)
        );
        assert_eq!(
            plain.stdout, plain_again.stdout,
            "the client itself is not deterministic"
        );
        assert_eq!(recorded.status.code(), plain.status.code());
        assert_eq!(
            String::from_utf8_lossy(&recorded.stdout),
            String::from_utf8_lossy(&plain.stdout),
            "{ipc}: recording changed what the client saw"
        );
        assert_eq!(recorded.stderr, plain.stderr, "{ipc}: stderr differs");
        assert_eq!(unwritable.status.code(), plain.status.code());
        assert_eq!(
            String::from_utf8_lossy(&unwritable.stdout),
            String::from_utf8_lossy(&plain.stdout),
            "{ipc}: an unwritable output changed what the client saw"
        );
        assert!(!Path::new("/nonexistent-dir").exists());
        // The recording decodes completely: no error, every response paired, every call
        // of the client present.
        let frames = decoded_recording(&output, ipc);
        let expected_type = if ipc == "socket" { "SOCKET" } else { "SHM" };
        let try_again = check_transparency_calls(&frames, ipc, expected_type);
        eprintln!(
            "transparency ({ipc}): {} output lines identical with and without recording \
             (and with an unwritable output); {} records decoded without error, {try_again} \
             TRY_AGAIN calls among them",
            plain.stdout.iter().filter(|&&b| b == b'\n').count(),
            frames.len()
        );
        drop(corosync);
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// No corosync at all (an empty network namespace): libcpg gets ECONNREFUSED, returns
/// CS_ERR_LIBRARY, the client exits 1 — with and without recording — and the recording
/// holds the failed connect.
#[test]
fn ipc_recording_of_a_refused_connection() {
    if let Some(why) = real_corosync_missing() {
        eprintln!("SKIPPED ipc_recording_of_a_refused_connection: {why}");
        return;
    }
    let work = std::env::temp_dir().join(format!("totem-ipc-refused-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let client = work.join("cpgclient");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipc/cpgclient.c");
    let gcc = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&client)
        .arg(&source)
        .args(["-lcpg", "-lpthread"])
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let preload = build_preload();
    let output = work.join("refused.pcapng");
    let plain = Command::new("unshare")
        .args(["-n", "--"])
        .arg(&client)
        .args(["g", "0", "0"])
        .output()
        .unwrap();
    let recorded = Command::new("unshare")
        .args([
            "-n",
            "--",
            env!("CARGO_BIN_EXE_totem-inspect"),
            "record-ipc",
        ])
        .arg("--preload")
        .arg(&preload)
        .arg("-o")
        .arg(&output)
        .arg("--")
        .arg(&client)
        .args(["g", "0", "0"])
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(1));
    assert_eq!(
        recorded.status.code(),
        Some(1),
        "record-ipc passes the exit status on"
    );
    assert_eq!(plain.stdout, recorded.stdout);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "initialize 2\n");
    let json = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        output.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["name"], "CONNECT");
    assert_eq!(v["call_error"]["errno"], "ECONNREFUSED");
    assert_eq!(v["call_error"]["cs_error"], "CS_ERR_LIBRARY");
    let _ = std::fs::remove_dir_all(&work);
}

// ---- the recorder against totemd (issue #6: "recording against totemd") -----------------

/// Builds totemd with the cargo that runs this test, into the same target dir.
fn build_totemd() -> PathBuf {
    let target = target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "totemd"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p totemd");
    let bin = target.join("debug/totemd");
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// One totemd on 127.0.0.1 in a network namespace of its own, serving CPG over libqb's
/// socket IPC. Dropping it stops it (SIGTERM, then SIGKILL), removes what a killed totemd
/// leaves in /dev/shm and deletes the namespace.
struct Totemd {
    ns: String,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl Totemd {
    fn start(bin: &Path, ns: &str, dir: &Path) -> Totemd {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let conf = dir.join("corosync.conf");
        std::fs::write(
            &conf,
            format!(
                "totem {{\n\tversion: 2\n\tcluster_name: ipcrec\n\ttransport: udpu\n\
                 \tcrypto_cipher: none\n\tcrypto_hash: none\n}}\n\
                 nodelist {{\n\tnode {{\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t}}\n}}\n\
                 logging {{\n\tto_logfile: yes\n\tlogfile: {}\n\tto_stderr: no\n\ttimestamp: hires\n}}\n\
                 system {{\n\tstate_dir: {}\n}}\n",
                dir.join("totemd.log").display(),
                dir.join("state").display()
            ),
        )
        .unwrap();
        let mut t = Totemd {
            ns: ns.into(),
            dir: dir.into(),
            child: None,
        };
        let ok = Command::new("ip")
            .args(["netns", "add", ns])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {ns}");
        Command::new("ip")
            .args(["netns", "exec", ns, "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        let status_file = dir.join("status.json");
        t.child = Some(
            Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(bin)
                .args(["-f", "-c"])
                .arg(&conf)
                .arg("--status-file")
                .arg(&status_file)
                // totemd's own recording of every client, decoded below like the preload's.
                .arg("--record-ipc")
                .arg(dir.join("server.pcapng"))
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !std::fs::read_to_string(&status_file)
            .unwrap_or_default()
            .contains("\"synced\":true")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "totemd did not sync; log:\n{}",
                std::fs::read_to_string(dir.join("totemd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        t
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(["timeout", "120"])
            .args(args)
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("totemd.log")).unwrap_or_default()
    }
}

impl Drop for Totemd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            if let Ok(rd) = std::fs::read_dir("/dev/shm") {
                for e in rd.flatten() {
                    if e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("qb-{pid}-"))
                    {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .status();
    }
}

/// The same libcpg client as against corosync, recorded against totemd: it prints the same
/// lines with and without recording, and the recording decodes with the same calls as the
/// corosync one (every response paired, connection type SOCKET); and corosync-cpgtool,
/// which opens `cfg` next to `cpg`.
#[test]
fn ipc_recording_against_totemd() {
    if let Some(why) = real_corosync_missing() {
        eprintln!("SKIPPED ipc_recording_against_totemd: {why}");
        return;
    }
    let work = std::env::temp_dir().join(format!("totem-ipc-totemd-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let client = compile_cpgclient(&work);
    let preload = build_preload();
    let totemd_bin = build_totemd();
    let inspect = env!("CARGO_BIN_EXE_totem-inspect");
    let ns = format!("ipctd-{}", std::process::id());
    let totemd = Totemd::start(&totemd_bin, &ns, &work.join("totemd"));
    let client = client.to_str().unwrap();
    let args = [client, "transparency", "3", "1100000", "300"];
    let plain = totemd.run(&args);
    let output = work.join("totemd.pcapng");
    let mut recorded_args = vec![
        inspect,
        "record-ipc",
        "--preload",
        preload.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--",
    ];
    recorded_args.extend_from_slice(&args);
    let recorded = totemd.run(&recorded_args);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}\ntotemd log:\n{}",
        String::from_utf8_lossy(&plain.stderr),
        totemd.log()
    );
    assert_eq!(recorded.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&recorded.stdout),
        String::from_utf8_lossy(&plain.stdout),
        "recording changed what the client saw"
    );
    let frames = decoded_recording(&output, "totemd");
    // totemd answers corosync's default type (system.qb_ipc_type unset: native = shm).
    let try_again = check_transparency_calls(&frames, "totemd", "SHM");
    // The zero-copy calls, which the corosync run also makes (not checked there).
    let count = |name: &str| {
        frames
            .iter()
            .filter(|f| f["channel"] == "request" && f["name"] == name)
            .filter(|f| f.get("call_error").is_none())
            .count()
    };
    assert_eq!(count("ZC_ALLOC"), 1);
    assert_eq!(count("ZC_EXECUTE"), 1);
    eprintln!(
        "against totemd: {} output lines identical with and without recording; {} records \
         decoded without error, {try_again} TRY_AGAIN calls among them",
        plain.stdout.iter().filter(|&&b| b == b'\n').count(),
        frames.len()
    );

    // totemd --record-ipc saw both runs (plain and recorded) from the server's side: the
    // same calls that reached it, every response paired with its request.
    let server = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        work.join("totemd/server.pcapng").to_str().unwrap(),
    ]);
    let sframes: Vec<serde_json::Value> = server
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        sframes.iter().all(|f| f.get("error").is_none()),
        "decode errors in totemd's own recording"
    );
    let scount = |channel: &str, name: &str| {
        sframes
            .iter()
            .filter(|f| f["channel"] == channel && f["name"] == name)
            .count()
    };
    assert_eq!(scount("request", "JOIN"), 2 * 6);
    assert_eq!(scount("request", "LEAVE"), 2 * 5);
    assert_eq!(scount("request", "FINALIZE"), 2 * 6);
    assert_eq!(scount("request", "MCAST"), 2 * (1 + 3 * 20 + 300));
    assert_eq!(
        scount("event", "DELIVER_CALLBACK"),
        2 * (1 + 1 + 3 * 20 + 300)
    );
    for f in sframes.iter().filter(|f| f["channel"] == "response") {
        assert!(
            f["reply_to"].as_u64().is_some(),
            "unpaired in totemd's recording: {f}"
        );
    }

    // corosync-cpgtool: cpg and cfg connections, the iteration calls answered.
    let cpgtool = work.join("cpgtool.pcapng");
    let recorded = totemd.run(&[
        inspect,
        "record-ipc",
        "--preload",
        preload.to_str().unwrap(),
        "-o",
        cpgtool.to_str().unwrap(),
        "--",
        "corosync-cpgtool",
    ]);
    assert_eq!(
        recorded.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&recorded.stdout),
        "Group Name\t       PID\t   Node ID\n"
    );
    let json = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        cpgtool.to_str().unwrap(),
    ]);
    let frames: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(frames.iter().all(|f| f.get("error").is_none()), "{json}");
    let names: Vec<String> = frames
        .iter()
        .filter(|f| f["channel"] == "request")
        .map(|f| f["name"].as_str().unwrap_or("?").to_owned())
        .collect();
    for call in [
        "ITERATIONINITIALIZE",
        "ITERATIONNEXT",
        "ITERATIONFINALIZE",
        "FINALIZE",
    ] {
        assert!(names.iter().any(|n| n == call), "{call} missing: {names:?}");
    }
    let connects = frames
        .iter()
        .filter(|f| f["channel"] == "setup" && f["direction"] == "to_client")
        .count();
    assert_eq!(connects, 2, "cpg and cfg: {json}");
    for f in frames.iter().filter(|f| f["channel"] == "response") {
        assert!(f["reply_to"].as_u64().is_some(), "unpaired {f}");
    }
    drop(totemd);
    let _ = std::fs::remove_dir_all(&work);
}
