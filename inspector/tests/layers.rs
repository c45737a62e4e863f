//! Link layers, IPv6 and IP fragment reassembly, on captures written by the test itself
//! (no real capture here has them): every frame must decode to the same totem message.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use totem_inspect::cli::{Cli, Config};

const JOIN: &[u8] = include_bytes!("../../fixtures/wire/srp/memb_join-1node.bin");
const TOKEN: &[u8] = include_bytes!("../../fixtures/wire/srp/orf_token.bin");
const DOWNLIST_PART1: &[u8] = include_bytes!("../../fixtures/wire/pg/downlist-part1.bin");

/// A classic pcap file with one link type.
fn pcap(linktype: u32, frames: &[Vec<u8>]) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "totem-inspect-layers-{}-{}.pcap",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    f.write_all(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    f.write_all(&65535u32.to_le_bytes()).unwrap();
    f.write_all(&linktype.to_le_bytes()).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        f.write_all(&1_700_000_000u32.to_le_bytes()).unwrap();
        f.write_all(&(i as u32).to_le_bytes()).unwrap();
        f.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
        f.write_all(frame).unwrap();
    }
    path
}

fn decode_json(path: &PathBuf) -> Vec<serde_json::Value> {
    let cli = Cli::try_parse_from([
        "totem-inspect",
        "decode",
        "--format",
        "json",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let config = Config::from_cli(cli).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    totem_inspect::run(&config, &mut out, &mut err).unwrap();
    let _ = std::fs::remove_file(path);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn udp4(payload: &[u8]) -> Vec<u8> {
    let mut ip = Vec::new();
    etherparse::PacketBuilder::ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
        .udp(40000, 5405)
        .write(&mut ip, payload)
        .unwrap();
    ip
}

fn udp6(payload: &[u8]) -> Vec<u8> {
    let mut ip = Vec::new();
    let src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut dst = src;
    dst[15] = 2;
    etherparse::PacketBuilder::ipv6(src, dst, 64)
        .udp(40000, 5405)
        .write(&mut ip, payload)
        .unwrap();
    ip
}

#[test]
fn every_link_type_reaches_the_totem_message() {
    let ip = udp4(JOIN);
    let mut ethernet = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    ethernet.extend_from_slice(&ip);
    // Linux cooked v1: packet type, ARPHRD, address length, address (8), protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    // Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    // BSD loopback: address family in host order (2 = AF_INET).
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    for (linktype, frame) in [
        (1, ethernet),
        (113, sll),
        (276, sll2),
        (0, null),
        (101, ip.clone()),
    ] {
        let records = decode_json(&pcap(linktype, &[frame]));
        assert_eq!(
            records[0]["totem"]["type"], "MEMB_JOIN",
            "linktype {linktype}"
        );
        assert_eq!(records[0]["src"], "10.1.0.1:40000", "linktype {linktype}");
    }
}

#[test]
fn ipv6_datagrams_decode() {
    let records = decode_json(&pcap(101, &[udp6(TOKEN)]));
    assert_eq!(records[0]["totem"]["type"], "ORF_TOKEN");
    assert_eq!(records[0]["src"], "[fd00::1]:40000");
}

#[test]
fn ip_fragments_are_reassembled_before_decoding() {
    // An MCAST of 1455 bytes split into IPv4 fragments of 512 bytes of payload (the
    // situation of a 1455-byte MCAST over IPv6, or a commit token for many nodes).
    let whole = udp4(DOWNLIST_PART1);
    let header = &whole[..20];
    let payload = &whole[20..];
    let mut frames = Vec::new();
    for (i, chunk) in payload.chunks(512).enumerate() {
        let mut h = header.to_vec();
        let total = (20 + chunk.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let more = if (i + 1) * 512 < payload.len() {
            0x2000
        } else {
            0
        };
        let offset_words = (i * 512 / 8) as u16;
        h[6..8].copy_from_slice(&(more | offset_words).to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(chunk);
        frames.push(h);
    }
    assert_eq!(frames.len(), 3);
    let records = decode_json(&pcap(101, &frames));
    assert_eq!(records[0]["transport"], "ip-fragment");
    assert_eq!(records[1]["transport"], "ip-fragment");
    assert_eq!(records[2]["totem"]["type"], "MCAST");
    assert_eq!(records[2]["udp_len"], 1455);
    assert_eq!(records[2]["totem"]["pg"]["fragmented"], 1);
}

#[test]
fn frames_cut_by_the_snaplen_report_the_udp_layer() {
    let mut frame = udp4(TOKEN);
    frame.truncate(40);
    let records = decode_json(&pcap(101, &[frame, udp4(TOKEN)]));
    assert!(records[0]["error"].is_object(), "{}", records[0]);
    assert_eq!(
        records[1]["totem"]["type"], "ORF_TOKEN",
        "the next frame decodes"
    );
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP GSO send caught before the kernel cut it (totemd's runs of multicasts, captured
/// on the sending host or behind a veth that passes them uncut) is one UDP datagram made
/// of several Totem packets: equal-sized ones, then at most one shorter. Decoded, it must
/// give the same totempg reassembly as the packets sent one by one, with a note saying
/// what it is. The packets are real: one sender's MCASTs to one receiver in a corosync
/// 3.1.7 capture of large messages, the last run of a message (full packets, then its
/// shorter end) sent as one.
#[test]
fn a_gso_send_decodes_like_its_datagrams() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/pcap/corosync-3.1.7/udpu-03-large-msgs.pcap"
    );
    let mut capture = pcap::Capture::from_file(path).unwrap();
    let mut stream: Vec<Vec<u8>> = Vec::new();
    while let Ok(packet) = capture.next_packet() {
        let Ok(sliced) = etherparse::SlicedPacket::from_ethernet(packet.data) else {
            continue;
        };
        let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport else {
            continue;
        };
        let payload = udp.payload();
        // Non-encapsulated MCASTs from 10.200.0.11 to 10.200.0.12 (udpu sends one copy
        // per member, so this is one sender's stream as one receiver sees it).
        let to_node_2 = matches!(
            sliced.net,
            Some(etherparse::NetSlice::Ipv4(ref ip))
                if ip.header().destination() == [10, 200, 0, 12]
                    && ip.header().source() == [10, 200, 0, 11]
        );
        let mcast = matches!(
            totem_wire::srp::Message::parse(payload),
            Ok((totem_wire::srp::Message::Mcast(ref m), _))
                if m.encapsulation() != totem_wire::srp::Encapsulation::Encapsulated
        );
        if to_node_2 && mcast {
            stream.push(payload.to_vec());
        }
    }
    // Six equal packets, then a shorter one: the end of a large message.
    const RUN: usize = 6;
    let start = (0..stream.len().saturating_sub(RUN))
        .find(|&i| {
            let len = stream[i].len();
            stream[i..i + RUN].iter().all(|p| p.len() == len) && stream[i + RUN].len() < len
        })
        .expect("a message ending in the capture");
    let end = start + RUN + 1;

    let messages_and_notes = |records: &[serde_json::Value]| {
        let mut messages = Vec::new();
        let mut notes = Vec::new();
        for r in records {
            for m in r["messages"].as_array().into_iter().flatten() {
                let mut m = m.clone();
                // Frame numbers differ (separate frames against one); what was
                // reassembled must not.
                if let Some(o) = m.as_object_mut() {
                    o.remove("frames");
                }
                messages.push(m);
            }
            if let Some(n) = r["notes"].as_array() {
                notes.extend(n.iter().filter_map(|n| n.as_str().map(str::to_owned)));
            }
        }
        (messages, notes)
    };
    let one_by_one: Vec<Vec<u8>> = stream[..end].iter().map(|p| udp4(p)).collect();
    let mut with_gso: Vec<Vec<u8>> = stream[..start].iter().map(|p| udp4(p)).collect();
    with_gso.push(udp4(&stream[start..end].concat()));
    let separate = decode_json(&pcap(101, &one_by_one));
    let together = decode_json(&pcap(101, &with_gso));
    let gso = together.last().unwrap();
    assert!(gso.get("error").is_none(), "{gso}");
    assert_eq!(gso["totem"]["type"], "MCAST");
    assert!(
        !gso["messages"].as_array().unwrap().is_empty(),
        "the GSO frame completes the message: {gso}"
    );
    let (m1, n1) = messages_and_notes(&separate);
    let (m2, mut n2) = messages_and_notes(&together);
    let at = n2
        .iter()
        .position(|n| n.starts_with("UDP GSO"))
        .expect("GSO note");
    let note = n2.remove(at);
    assert!(
        note.starts_with(&format!(
            "UDP GSO: {} Totem packets of {} bytes",
            RUN + 1,
            stream[start].len()
        )),
        "{note}"
    );
    assert!(!m1.is_empty());
    assert_eq!(m2, m1);
    assert_eq!(n2, n1);
}
