//! EVS in the inspector (docs/evs.md §3, §4, §9): our exec MCAST (service 48) and corosync
//! 1.4's (service 0 in 1.x captures) in every view, filters, stats, the evs IPC; malformed
//! bodies give a per-message error. Also the generator of the two synthetic EVS captures of
//! fixtures/pcap/synthetic/, which the snapshots cover with the others.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use totem_inspect::cli::{Cli, Config};
use totem_wire::exec::evs::{EvsGroup, EvsMcast};
use totem_wire::legacy::{self, EvsMcast1x, LegacyFraming, LegacyVersion, TotemIpAddress};
use totem_wire::pg::{GroupPrefix, PgPacket};
use totem_wire::ByteOrder;

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

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(path)
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn key(name: &[u8]) -> EvsGroup {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name);
    k
}

const SIM_PCAP: &str = "pcap/totem-sim/evs-3node.pcap";
const SIM_IPC: &str = "ipc/evs-sim-3node.pcapng";
const LEGACY_EVS: &str = "pcap/synthetic/legacy-1x-evs.pcap";
const MALFORMED_EVS: &str = "pcap/synthetic/evs-malformed.pcap";
/// The text of the key `a\0b`: it differs from `a` only after its first NUL.
const HIDDEN: &str = "0x6100620000000000000000000000000000000000000000000000000000000000";

// ---- the synthetic captures --------------------------------------------------------------

/// A classic pcap of Ethernet/IPv4/UDP 5405 datagrams from node N (10.200.0.1N) to the next
/// of three nodes, one per second from a fixed date.
fn pcap(datagrams: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, (from, payload)) in datagrams.iter().enumerate() {
        let to = (*from % 3 + 1) as u8;
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, *from as u8], [2, 0, 0, 0, 0, to])
            .ipv4([10, 200, 0, 10 + *from as u8], [10, 200, 0, 10 + to], 64)
            .udp(5405, 5405)
            .write(&mut frame, payload)
            .expect("frame");
        out.extend_from_slice(&(1_790_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// One whole totempg message on group "a" in one packet: the group prefix, then `exec`.
fn pg_payload(order: ByteOrder, exec: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    GroupPrefix::single(GroupPrefix::EXEC).emit(&mut message, order);
    message.extend_from_slice(exec);
    let mut payload = Vec::new();
    PgPacket {
        order,
        version: 0,
        pg_type: 0,
        fragmented: 0,
        continuation: 0,
        entries: vec![&message],
    }
    .emit(&mut payload);
    payload
}

/// A corosync 1.x MCAST datagram of node `nodeid` carrying `exec`.
fn legacy_mcast(order: ByteOrder, nodeid: u32, seq: u32, exec: &[u8]) -> Vec<u8> {
    use legacy::{Header, Mcast, Message, MessageType, RingId, SrpAddr};
    let v1 = LegacyVersion::Corosync1;
    let payload = pg_payload(order, exec);
    let address =
        |n: u32| TotemIpAddress::ipv4(n, std::net::Ipv4Addr::new(10, 200, 0, 10 + n as u8));
    let mut out = Vec::new();
    LegacyFraming::corosync1(order).emit_prefix(&mut out);
    Message::Mcast(Mcast {
        header: Header {
            order,
            encapsulated: 2,
            ..Header::new(v1, MessageType::Mcast, nodeid)
        },
        system_from: SrpAddr::single(v1, address(nodeid)),
        seq,
        this_seqno: seq as i32,
        ring_id: RingId {
            rep: address(1),
            seq: 8,
        },
        node_id: 0,
        guarantee: 0,
        payload: &payload,
    })
    .emit(&mut out);
    out
}

/// A corosync 3.x (udpu) MCAST datagram of node `nodeid` carrying `exec`.
fn mcast_3x(nodeid: u32, seq: u32, exec: &[u8]) -> Vec<u8> {
    use totem_wire::srp::{Header, Mcast, Message, MessageType, RingId};
    let payload = pg_payload(ByteOrder::Little, exec);
    Message::Mcast(Mcast {
        header: Header {
            encapsulated: 2,
            ..Header::new(MessageType::Mcast, nodeid)
        },
        system_from: nodeid,
        seq,
        this_seqno: seq as i32,
        ring_id: RingId { rep: 1, seq: 8 },
        node_id: 0,
        guarantee: 0,
        payload: &payload,
    })
    .to_bytes()
}

fn set_u64(bytes: &mut [u8], at: usize, value: u64, order: ByteOrder) {
    bytes[at..at + 8].copy_from_slice(&match order {
        ByteOrder::Little => value.to_le_bytes(),
        ByteOrder::Big => value.to_be_bytes(),
    });
}

/// corosync 1.4 EVS as 1.x nodes of both byte orders send it, and bodies that lie.
fn legacy_evs_capture() -> Vec<u8> {
    let (le, be) = (ByteOrder::Little, ByteOrder::Big);
    let exec = |order, groups: Vec<EvsGroup>, data: &[u8]| {
        let mut out = Vec::new();
        EvsMcast1x::new(groups, data).emit(&mut out, order);
        out
    };
    let good = exec(
        le,
        vec![key(b"key1"), key(b"key2")],
        b"hello from a 1.4 node",
    );
    let big = exec(be, vec![key(b"key2"), key(b"a\0b")], b"big-endian");
    // group_entries says 3, two keys are there.
    let mut count_lies = good.clone();
    set_u64(&mut count_lies, 16, 3, le);
    // msg_len one more than the bytes.
    let mut len_lies = good.clone();
    set_u64(&mut len_lies, 24, 22, le);
    // The message cut after its counters (the header's size still says the whole).
    let truncated = good[..40].to_vec();
    // Another 1.x service (CPG, 8): still shown by its header only.
    let mut cpg = Vec::new();
    cpg.extend_from_slice(&16u32.to_le_bytes());
    cpg.extend_from_slice(&[0; 4]);
    cpg.extend_from_slice(&(8u32 << 16).to_le_bytes());
    cpg.extend_from_slice(&[0; 4]);
    pcap(&[
        (1, legacy_mcast(le, 1, 1, &good)),
        (2, legacy_mcast(be, 2, 2, &big)),
        (1, legacy_mcast(le, 1, 3, &count_lies)),
        (3, legacy_mcast(le, 3, 4, &len_lies)),
        (3, legacy_mcast(le, 3, 5, &truncated)),
        (2, legacy_mcast(le, 2, 6, &cpg)),
    ])
}

/// Our EVS exec message (service 48) whole, and with bodies that lie.
fn malformed_evs_capture() -> Vec<u8> {
    let le = ByteOrder::Little;
    let mut good = Vec::new();
    EvsMcast::new(vec![key(b"key1")], b"fine").emit(&mut good, le);
    let mut count_lies = good.clone();
    set_u64(&mut count_lies, 16, u64::MAX, le);
    let mut two_groups_claimed = good.clone();
    set_u64(&mut two_groups_claimed, 16, 2, le);
    let mut len_lies = good.clone();
    set_u64(&mut len_lies, 24, 1 << 20, le);
    let truncated = good[..20].to_vec();
    pcap(&[
        (1, mcast_3x(1, 1, &good)),
        (1, mcast_3x(1, 2, &count_lies)),
        (2, mcast_3x(2, 3, &two_groups_claimed)),
        (2, mcast_3x(2, 4, &len_lies)),
        (3, mcast_3x(3, 5, &truncated)),
    ])
}

/// The synthetic files are exactly what this generator writes (run with
/// `TOTEM_WRITE_FIXTURES=1` to rewrite them after a deliberate change).
#[test]
fn synthetic_evs_captures_are_what_the_generator_writes() {
    for (path, bytes) in [
        (LEGACY_EVS, legacy_evs_capture()),
        (MALFORMED_EVS, malformed_evs_capture()),
    ] {
        let path = fixture(path);
        if std::env::var_os("TOTEM_WRITE_FIXTURES").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).expect("fixture");
        assert!(
            on_disk == bytes,
            "{} is not the generator's",
            path.display()
        );
    }
}

// ---- Totem captures ----------------------------------------------------------------------

fn decode_json(path: &str, extra: &[&str]) -> Vec<Value> {
    let path = fixture(path);
    let mut args = vec!["totem-inspect", "decode", "--format", "json"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    json_lines(&run(&args))
}

fn evs_messages(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .flat_map(|f| f["messages"].as_array().into_iter().flatten())
        .filter(|m| m["service"] == "EVS")
        .collect()
}

#[test]
fn our_evs_mcast_names_its_groups_length_and_cpgs_digest() {
    let frames = decode_json(SIM_PCAP, &[]);
    let messages = evs_messages(&frames);
    let groups: Vec<&Value> = messages.iter().map(|m| &m["detail"]["groups"]).collect();
    assert_eq!(
        groups,
        [
            &serde_json::json!(["key1", "key2"]),
            &serde_json::json!(["key2"]),
            &serde_json::json!([HIDDEN]),
            &serde_json::json!(["a"]),
            &serde_json::json!(["key2", "key2"]),
            &serde_json::json!(["key1"]),
        ]
    );
    // The 2000-byte message (the simulator's example sends bytes i % 251): CPG's digest.
    let first = messages[0];
    assert_eq!(first["name"], "EVS/MCAST");
    assert_eq!(first["detail"]["msg_len"], 2000);
    let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("{:016x}", totem_inspect::model::digest(&data));
    assert_eq!(first["detail"]["digest"], digest.as_str());
    assert_eq!(first["frames"].as_array().unwrap().len(), 2);
    assert!(messages.iter().all(|m| m.get("error").is_none()));
}

fn summary_lines(path: &str, extra: &[&str]) -> Vec<String> {
    let path = fixture(path);
    let mut args = vec!["totem-inspect", "decode"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    run(&args).lines().map(str::to_string).collect()
}

#[test]
fn service_and_group_filters_know_evs() {
    let evs = summary_lines(SIM_PCAP, &["--service", "evs"]);
    assert_eq!(evs.len(), 6);
    assert!(evs.iter().all(|l| l.contains("EVS/MCAST")));
    // A message to several groups is kept for each of them.
    let key2 = summary_lines(SIM_PCAP, &["--group", "key2"]);
    assert_eq!(key2.len(), 3, "{key2:#?}");
    assert!(key2.iter().all(|l| l.contains("key2")));
    assert_eq!(summary_lines(SIM_PCAP, &["--group", "key1"]).len(), 2);
    // `a` and `a\0b` are two groups, named either way.
    let a = summary_lines(SIM_PCAP, &["--group", "a"]);
    assert_eq!(a.len(), 1);
    assert!(a[0].contains("groups=[a] "), "{}", a[0]);
    for spelling in ["a\\x00b", HIDDEN] {
        let hidden = summary_lines(SIM_PCAP, &["--group", spelling]);
        assert_eq!(hidden.len(), 1, "{spelling}");
        assert!(hidden[0].contains(HIDDEN));
    }
    assert!(summary_lines(SIM_PCAP, &["--group", "nope"]).is_empty());
    // `--service evs` also keeps corosync 1.x's EVS, errors included.
    assert_eq!(summary_lines(LEGACY_EVS, &["--service", "evs"]).len(), 5);
    assert_eq!(summary_lines(LEGACY_EVS, &["--group", "key2"]).len(), 2);
}

#[test]
fn stats_count_evs_per_group_per_sender_and_each_message_once_in_the_total() {
    let path = fixture(SIM_PCAP);
    let stats: Value = serde_json::from_str(&run(&[
        "totem-inspect",
        "stats",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    let groups = &stats["evs_groups"];
    // [key1,key2] 2000 from node 1, [key2] 100 and [key2,key2] 50 from node 2.
    assert_eq!(groups["key2"]["messages"], 3);
    assert_eq!(groups["key2"]["bytes"], 2150);
    assert_eq!(
        groups["key2"]["senders"],
        serde_json::json!({"1": {"messages": 1, "bytes": 2000}, "2": {"messages": 2, "bytes": 150}})
    );
    assert_eq!(groups["key1"]["messages"], 2);
    assert_eq!(groups["key1"]["bytes"], 7000);
    assert_eq!(groups["a"]["bytes"], 10);
    assert_eq!(groups[HIDDEN]["bytes"], 11);
    assert_eq!(
        stats["evs_total"],
        serde_json::json!({"messages": 6, "bytes": 7171})
    );
    assert_eq!(stats["services"]["EVS"]["messages"], 6);
    let text = run(&["totem-inspect", "stats", path.to_str().unwrap()]);
    assert!(text.contains("total, each message once: 6 messages, 7171 bytes"));
}

#[test]
fn corosync_1x_evs_decodes_with_its_counters_checked() {
    let frames = decode_json(LEGACY_EVS, &[]);
    let message = |i: usize| &frames[i]["messages"][0];
    assert_eq!(message(0)["name"], "EVS(1.x)/MCAST");
    assert_eq!(message(0)["service"], "EVS(1.x)");
    assert_eq!(
        message(0)["detail"]["groups"],
        serde_json::json!(["key1", "key2"])
    );
    assert_eq!(message(0)["detail"]["msg_len"], 21);
    assert!(frames[0].get("notes").is_none());
    // A big-endian sender: decoded in its order, and EVS-CODE-10 said.
    assert_eq!(frames[1]["totem"]["byte_order"], "be");
    assert_eq!(
        message(1)["detail"]["groups"],
        serde_json::json!(["key2", HIDDEN])
    );
    let notes = frames[1]["notes"].to_string();
    assert!(notes.contains("EVS-CODE-10"), "{notes}");
    // Counters that lie and a cut message: an error on the message, decoding goes on.
    for (i, kind) in [
        (2, "truncated"),
        (3, "length_mismatch"),
        (4, "length_mismatch"),
    ] {
        let e = &message(i)["error"];
        assert_eq!(e["layer"], "evs", "frame {}: {e}", i + 1);
        assert_eq!(e["kind"], kind, "frame {}: {e}", i + 1);
        assert_eq!(message(i)["name"], "EVS(1.x)/MCAST");
    }
    assert_eq!(message(5)["name"], "CPG(1.x)/fn0");
    // The stats count the good ones.
    let path = fixture(LEGACY_EVS);
    let stats: Value = serde_json::from_str(&run(&[
        "totem-inspect",
        "stats",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(stats["evs_total"]["messages"], 2);
    assert_eq!(stats["evs_groups"]["key2"]["messages"], 2);
}

#[test]
fn malformed_evs_bodies_are_per_message_errors() {
    let frames = decode_json(MALFORMED_EVS, &[]);
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[0]["messages"][0]["detail"]["groups"][0], "key1");
    let kinds: Vec<&Value> = frames[1..]
        .iter()
        .map(|f| &f["messages"][0]["error"]["kind"])
        .collect();
    assert_eq!(
        kinds,
        [
            "count_too_large",
            "truncated",
            "length_mismatch",
            "truncated"
        ]
    );
    for f in &frames[1..] {
        let m = &f["messages"][0];
        assert_eq!(m["error"]["layer"], "evs", "{m}");
        assert_eq!(m["service"], "EVS");
    }
}

// ---- the evs IPC -------------------------------------------------------------------------

#[test]
fn evs_ipc_records_decode_pair_filter_and_count() {
    let path = fixture(SIM_IPC);
    let p = path.to_str().unwrap();
    let frames = json_lines(&run(&["totem-inspect", "decode", "--format", "json", p]));
    let mut answered = Vec::new();
    for f in &frames {
        assert_eq!(f["service"], "evs");
        assert!(f.get("error").is_none(), "{f}");
        if f["channel"] == "response" {
            let request = &frames[f["reply_to"].as_u64().expect("paired") as usize - 1];
            assert_eq!(request["name"], f["name"]);
            answered.push(format!("{} {}", f["name"].as_str().unwrap(), f["status"]));
        }
    }
    assert!(answered.contains(&"LEAVE \"CS_ERR_NOT_EXIST\"".to_string()));
    assert_eq!(answered.len(), 13, "every evs request is answered");
    let deliver = frames
        .iter()
        .find(|f| f["name"] == "DELIVER_CALLBACK")
        .unwrap();
    assert_eq!(deliver["detail"]["nodeid"], 1);
    assert_eq!(deliver["detail"]["msg_len"], 2000);
    let confchg = &frames[0];
    assert_eq!(confchg["name"], "CONFCHG_CALLBACK");
    assert_eq!(confchg["detail"]["kind"], "regular");
    assert_eq!(confchg["detail"]["members"], serde_json::json!([1, 2, 3]));

    // --group names EVS keys in requests; --type takes the evs names.
    let key2 = run(&["totem-inspect", "decode", "--group", "key2", p]);
    assert_eq!(key2.lines().count(), 6, "{key2}");
    let sends = run(&["totem-inspect", "decode", "--type", "MCAST_GROUPS", p]);
    assert_eq!(sends.lines().count(), 10, "{sends}");

    let stats: Value =
        serde_json::from_str(&run(&["totem-inspect", "stats", "--format", "json", p])).unwrap();
    assert_eq!(stats["calls"]["evs/MCAST_GROUPS"]["calls"], 5);
    assert_eq!(stats["calls"]["evs/LEAVE"]["errors"]["CS_ERR_NOT_EXIST"], 1);
    assert_eq!(stats["events"]["evs/DELIVER_CALLBACK"], 9);
    assert_eq!(stats["events"]["evs/CONFCHG_CALLBACK"], 4);
    // Back on the sender only where it joined a group it sent to: [key1,key2] from 1011,
    // MCAST_JOINED and [key2,key2] from 1021; not [a] from 1011 nor [a\0b] from 1031.
    assert_eq!(stats["evs_mcast_to_deliver_ms"]["count"], 3);
}

#[test]
fn malformed_evs_ipc_records_are_errors_one_by_one() {
    use totem_wire::ipc::evs::{EvsIpcEvent, EvsRequest};
    use totem_wire::ipc::record::{
        pcapng_file_header, pcapng_packet, Direction, LibqbCall, RecordHeader, RecordKind,
    };
    use totem_wire::ipc::Channel;
    let record = |out: &mut Vec<u8>, seq: u32, channel: Channel, message: &[u8]| {
        let to_server = channel == Channel::Request;
        let header = RecordHeader {
            kind: RecordKind::Message(channel),
            direction: if to_server {
                Direction::ToServer
            } else {
                Direction::ToClient
            },
            call: if to_server {
                LibqbCall::SendvRecv
            } else {
                LibqbCall::EventRecv
            },
            flags: 0,
            piece: 0,
            pid: 7,
            tid: 7,
            conn: 1,
            result: message.len() as i64,
            seq,
            dropped: 0,
            service: RecordHeader::service_field(b"evs"),
        };
        let mut packet = Vec::new();
        header.emit(&mut packet);
        packet.extend_from_slice(message);
        pcapng_packet(out, 1_000_000 * u64::from(seq + 1), &packet);
    };
    let mut join = EvsRequest::Join {
        groups: vec![key(b"g")],
    }
    .to_bytes();
    join[16..24].copy_from_slice(&5u64.to_le_bytes()); // five keys claimed, one there
    let mut mcast = EvsRequest::McastGroups {
        guarantee: 0,
        groups: vec![key(b"g")],
        data: b"data",
    }
    .to_bytes();
    mcast[24..32].copy_from_slice(&u64::MAX.to_le_bytes()); // msg_len
    let deliver = EvsIpcEvent::Deliver {
        nodeid: 2,
        data: b"payload",
    }
    .to_bytes();
    let mut file = pcapng_file_header();
    record(&mut file, 0, Channel::Request, &join);
    record(&mut file, 1, Channel::Request, &mcast);
    record(&mut file, 2, Channel::Event, &deliver[..30]);
    record(&mut file, 3, Channel::Event, &deliver);
    let path =
        std::env::temp_dir().join(format!("totem-inspect-evs-{}.pcapng", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let out = run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let stats = run(&["totem-inspect", "stats", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    let frames = json_lines(&out);
    let names: Vec<&str> = frames.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "JOIN",
            "MCAST_GROUPS",
            "DELIVER_CALLBACK",
            "DELIVER_CALLBACK"
        ]
    );
    for f in &frames[..3] {
        assert_eq!(f["error"]["layer"], "ipc", "{f}");
    }
    assert!(frames[3].get("error").is_none());
    assert_eq!(frames[3]["detail"]["msg_len"], 7);
    assert!(stats.contains("Decode errors:"), "{stats}");
}

// ---- the recorder on an evs connection ---------------------------------------------------

/// Why the recorder test cannot run here, if it cannot.
fn evs_peer_missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        == Some("0");
    if !root {
        return Some("not root: the peer needs a network namespace of its own".into());
    }
    if !Path::new("/usr/include/qb/qbipcs.h").exists() {
        return Some("libqb-dev is not installed".into());
    }
    if std::process::Command::new("gcc")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("gcc is not installed".into());
    }
    None
}

/// A libqb client of the `evs` service (`tests/ipc/evspeer.c`: it speaks our libevs layout
/// to a libqb server in the same program) recorded by the preload library: the client sees
/// the same with and without it, and the recording decodes as evs, every response paired.
#[test]
fn the_recorder_records_a_libqb_evs_client() {
    use std::process::Command;
    if let Some(why) = evs_peer_missing() {
        eprintln!("SKIPPED the_recorder_records_a_libqb_evs_client: {why}");
        return;
    }
    let work = std::env::temp_dir().join(format!("totem-evs-peer-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let peer = work.join("evspeer");
    let gcc = Command::new("gcc")
        .args(["-Wall", "-O1", "-o"])
        .arg(&peer)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipc/evspeer.c"))
        .arg("-lqb")
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let preload = crate::ipc::build_preload();
    let output = work.join("evs.pcapng");
    let plain = Command::new("unshare")
        .args(["-n", "--", "timeout", "60"])
        .arg(&peer)
        .output()
        .unwrap();
    let recorded = Command::new("unshare")
        .args(["-n", "--", "timeout", "60"])
        .arg(env!("CARGO_BIN_EXE_totem-inspect"))
        .arg("record-ipc")
        .arg("--preload")
        .arg(&preload)
        .arg("-o")
        .arg(&output)
        .arg("--")
        .arg(&peer)
        .output()
        .unwrap();
    assert!(plain.status.success(), "{plain:?}");
    assert!(recorded.status.success(), "{recorded:?}");
    assert_eq!(plain.stdout, recorded.stdout, "the client sees the same");
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "join 24 id 2 error 1\nmcast_groups 24 id 5 error 1\nevent 49 id 0 message hello evs\n"
    );
    let frames = json_lines(&run(&[
        "totem-inspect",
        "decode",
        "--format",
        "json",
        output.to_str().unwrap(),
    ]));
    let _ = std::fs::remove_dir_all(&work);
    let seen: Vec<String> = frames
        .iter()
        .map(|f| {
            assert_eq!(f["service"], "evs");
            assert!(f.get("error").is_none(), "{f}");
            format!(
                "{} {}",
                f["channel"].as_str().unwrap(),
                f["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            "setup CONNECT",
            "setup CONNECT",
            "request JOIN",
            "response JOIN",
            "request MCAST_GROUPS",
            "response MCAST_GROUPS",
            "event DELIVER_CALLBACK",
            "disconnect DISCONNECT",
        ]
    );
    assert_eq!(frames[1]["detail"]["connection_type"], "SHM");
    assert_eq!(
        frames[2]["detail"]["groups"],
        serde_json::json!(["key1", "key2"])
    );
    assert_eq!(frames[3]["reply_to"], 3);
    assert_eq!(frames[5]["status"], "CS_OK");
    let digest = format!("{:016x}", totem_inspect::model::digest(b"hello evs"));
    assert_eq!(frames[4]["detail"]["digest"], digest.as_str());
    assert_eq!(frames[6]["detail"]["digest"], digest.as_str());
    assert_eq!(frames[6]["detail"]["nodeid"], 1);
}

/// The real totemd ring and the simulator ran the same clients: their EVS exec messages are
/// the same (groups, length, payload digest), whatever order the two rings agreed on.
#[test]
fn totemd_puts_the_simulators_evs_messages_on_the_wire() {
    let facts = |path: &str| {
        let mut v: Vec<String> = evs_messages(&decode_json(path, &[]))
            .iter()
            .map(|m| {
                assert!(m.get("error").is_none(), "{m}");
                m["detail"].to_string()
            })
            .collect();
        v.sort();
        v
    };
    let real = facts("pcap/totemd/evs-3node-udpu.pcap");
    assert_eq!(real.len(), 6);
    assert_eq!(real, facts(SIM_PCAP));
}
