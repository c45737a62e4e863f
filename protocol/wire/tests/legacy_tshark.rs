//! Cross-checks `totem_wire::legacy` against Wireshark's corosync dissectors.
//!
//! One datagram of every corosync 1.x/2.x totemsrp message is built with our `emit`, in both
//! byte orders, written into a classic pcap (Ethernet/IPv4/UDP to port 5405, built here by
//! hand), decoded by `tshark -T pdml`, and every field tshark shows is compared with the value
//! and the byte position we put there.
//!
//! What tshark 4.0 knows (`epan/dissectors/packet-corosync-totemnet.c`, `-totemsrp.c`): the
//! 1.x grammar only. Its `srp_addr` has no `no_addrs` byte and it does not skip the 2.x
//! `crypto_config_header`, so:
//! * 1.x datagrams are compared field by field;
//! * 2.x datagrams as sent (`FE FE 00 00` first) must NOT be taken for totemsrp by tshark
//!   (its type check rejects 0xFE);
//! * 2.x messages with the crypto header stripped are compared up to the first `srp_addr`,
//!   where the two grammars part (everything, for ORF_TOKEN and TOKEN_HOLD_CANCEL).
//!
//! The datagrams are also the golden samples in `fixtures/wire/legacy/`: the test fails when
//! emit no longer produces them (`LEGACY_FIXTURES_BLESS=1` rewrites them).
//!
//! Without `tshark` on the PATH the comparison is skipped with a message (the golden check
//! still runs).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use totem_wire::legacy::{
    CommitMemberEntry, Header, LegacyFraming, LegacyVersion, Mcast, MembCommitToken, MembJoin,
    MembMergeDetect, Message, MessageType, OrfToken, RingId, RtrItem, SrpAddr, TokenHoldCancel,
    TotemIpAddress, AF_INET6_LINUX,
};
use totem_wire::ByteOrder;

const UDP_PAYLOAD_OFFSET: usize = 14 + 20 + 8;

// ---------------------------------------------------------------------------------------------
// The sample messages.

fn node(n: u32) -> TotemIpAddress {
    TotemIpAddress::ipv4(n, Ipv4Addr::new(192, 168, 122, 10 + n as u8))
}

fn node6(n: u32) -> TotemIpAddress {
    let ip: Ipv6Addr = format!("fd00:7e::{n:x}").parse().unwrap();
    TotemIpAddress {
        nodeid: n,
        family: AF_INET6_LINUX,
        addr: ip.octets(),
    }
}

fn srp(version: LegacyVersion, n: u32) -> SrpAddr {
    SrpAddr::single(version, node(n))
}

fn ring(seq: u64) -> RingId {
    RingId { rep: node(1), seq }
}

fn header(
    version: LegacyVersion,
    order: ByteOrder,
    message_type: MessageType,
    nodeid: u32,
) -> Header {
    Header {
        order,
        version,
        message_type,
        encapsulated: 0,
        nodeid,
    }
}

const MCAST_PAYLOAD: &[u8] = b"\x01\x00\x00\x00legacy-payload";

/// (file stem, message) for one version and order.
fn samples(
    version: LegacyVersion,
    order: ByteOrder,
    inner: &[u8],
) -> Vec<(&'static str, Message<'_>)> {
    let h = |t, n| header(version, order, t, n);
    let mut mcast_header = h(MessageType::Mcast, 2);
    mcast_header.encapsulated = 2;
    let mut encap_header = h(MessageType::Mcast, 1);
    encap_header.encapsulated = 1;
    let mut rtr_ring = ring(0x1c);
    rtr_ring.seq = 0x18;
    vec![
        (
            "orf_token",
            Message::OrfToken(OrfToken {
                header: h(MessageType::OrfToken, 1),
                seq: 41,
                token_seq: 1234,
                aru: 40,
                aru_addr: 2,
                ring_id: ring(0x1c),
                backlog: 3,
                fcc: 5,
                retrans_flg: 1,
                rtr_list: vec![
                    RtrItem {
                        ring_id: ring(0x1c),
                        seq: 38,
                    },
                    RtrItem {
                        ring_id: rtr_ring,
                        seq: 39,
                    },
                ],
            }),
        ),
        (
            "mcast",
            Message::Mcast(Mcast {
                header: mcast_header,
                system_from: srp(version, 2),
                seq: 42,
                this_seqno: 7,
                ring_id: ring(0x1c),
                node_id: 0,
                guarantee: 1,
                payload: MCAST_PAYLOAD,
            }),
        ),
        (
            "mcast_encapsulated",
            Message::Mcast(Mcast {
                header: encap_header,
                system_from: srp(version, 1),
                seq: 3,
                this_seqno: 9,
                ring_id: ring(0x20),
                node_id: 0,
                guarantee: 0,
                payload: inner,
            }),
        ),
        (
            "memb_merge_detect",
            Message::MembMergeDetect(MembMergeDetect {
                header: h(MessageType::MembMergeDetect, 1),
                system_from: srp(version, 1),
                ring_id: ring(0x1c),
            }),
        ),
        (
            "memb_join",
            Message::MembJoin(MembJoin {
                header: h(MessageType::MembJoin, 3),
                system_from: srp(version, 3),
                ring_seq: 0x1c,
                proc_list: vec![srp(version, 1), srp(version, 2), srp(version, 3)],
                failed_list: vec![SrpAddr::single(version, node6(4))],
            }),
        ),
        (
            "memb_commit_token",
            Message::MembCommitToken(MembCommitToken {
                header: h(MessageType::MembCommitToken, 1),
                token_seq: 2,
                ring_id: ring(0x20),
                retrans_flg: 0,
                memb_index: 1,
                addr: vec![srp(version, 1), srp(version, 2), srp(version, 3)],
                memb_list: (1..=3)
                    .map(|n| CommitMemberEntry {
                        ring_id: ring(0x1c),
                        aru: 40 + n,
                        high_delivered: 41,
                        received_flg: n % 2,
                    })
                    .collect(),
            }),
        ),
        (
            "token_hold_cancel",
            Message::TokenHoldCancel(TokenHoldCancel {
                header: h(MessageType::TokenHoldCancel, 3),
                ring_id: ring(0x1c),
            }),
        ),
    ]
}

/// The old-ring MCAST carried by `mcast_encapsulated`.
fn inner_mcast(version: LegacyVersion, order: ByteOrder) -> Vec<u8> {
    let mut h = header(version, order, MessageType::Mcast, 2);
    h.encapsulated = 2;
    Message::Mcast(Mcast {
        header: h,
        system_from: srp(version, 2),
        seq: 17,
        this_seqno: 4,
        ring_id: ring(0x1c),
        node_id: 0,
        guarantee: 0,
        payload: MCAST_PAYLOAD,
    })
    .to_bytes()
}

// ---------------------------------------------------------------------------------------------
// What tshark should show: a walk over the same fields with an independent cursor.

#[derive(Debug)]
struct Expected {
    name: &'static str,
    pos: usize,
    show: String,
}

struct Walk {
    version: LegacyVersion,
    pos: usize,
    fields: Vec<Expected>,
    /// Set at the first 2.x `srp_addr`: tshark reads 1.x there, later fields are not compared.
    diverged: bool,
}

impl Walk {
    fn new(version: LegacyVersion) -> Walk {
        Walk {
            version,
            pos: 0,
            fields: Vec::new(),
            diverged: false,
        }
    }

    fn field(&mut self, name: &'static str, width: usize, show: impl ToString) {
        if !self.diverged {
            self.fields.push(Expected {
                name,
                pos: self.pos,
                show: show.to_string(),
            });
        }
        self.pos += width;
    }

    fn header(&mut self, h: &Header) {
        self.field(
            "corosync_totemsrp.message_header.type",
            1,
            u8::from(h.message_type),
        );
        self.field(
            "corosync_totemsrp.message_header.encapsulated",
            1,
            h.encapsulated,
        );
        self.field(
            "corosync_totemsrp.message_header.endian_detector",
            2,
            "0xff22",
        );
        self.field("corosync_totemsrp.message_header.nodeid", 4, h.nodeid);
    }

    fn ip(&mut self, a: &TotemIpAddress) {
        self.field("corosync_totemsrp.ip_address.nodeid", 4, a.nodeid);
        self.field("corosync_totemsrp.ip_address.family", 2, a.family);
        match a.ip() {
            Some(std::net::IpAddr::V4(ip)) => {
                self.field("corosync_totemsrp.ip_address.addr4", 4, ip);
                self.field(
                    "corosync_totemsrp.ip_address.addr4_padding",
                    12,
                    colon_hex(&a.addr[4..]),
                );
            }
            Some(std::net::IpAddr::V6(ip)) => {
                self.field("corosync_totemsrp.ip_address.addr6", 16, ip)
            }
            None => self.field("corosync_totemsrp.ip_address.addr", 16, colon_hex(&a.addr)),
        }
    }

    fn srp_addr(&mut self, a: &SrpAddr) {
        if self.version == LegacyVersion::Corosync2 {
            self.diverged = true;
            self.pos += 1;
        }
        self.ip(&a.addr[0]);
        self.ip(&a.addr[1]);
    }

    fn ring_id(&mut self, r: &RingId) {
        self.ip(&r.rep);
        self.field("corosync_totemsrp.memb_ring_id.seq", 8, r.seq);
    }

    fn message(&mut self, m: &Message<'_>) {
        self.header(m.header());
        match m {
            Message::OrfToken(t) => {
                // tshark registers seq and token_seq under the same name; pos tells them apart.
                self.field("corosync_totemsrp.orf_token.seq", 4, t.seq);
                self.field("corosync_totemsrp.orf_token.seq", 4, t.token_seq);
                self.field("corosync_totemsrp.orf_token.aru", 4, t.aru);
                self.field("corosync_totemsrp.orf_token.aru_addr", 4, t.aru_addr);
                self.ring_id(&t.ring_id);
                self.field("corosync_totemsrp.orf_token.backlog", 4, t.backlog);
                self.field("corosync_totemsrp.orf_token.fcc", 4, t.fcc);
                self.field("corosync_totemsrp.orf_token.retrans_flg", 4, t.retrans_flg);
                self.field(
                    "corosync_totemsrp.orf_token.rtr_list_entries",
                    4,
                    t.rtr_list.len(),
                );
                for item in &t.rtr_list {
                    self.ring_id(&item.ring_id);
                    self.field("corosync_totemsrp.rtr_item.seq", 4, item.seq);
                }
            }
            Message::Mcast(mc) => {
                self.srp_addr(&mc.system_from);
                self.field("corosync_totemsrp.mcast.seq", 4, mc.seq);
                self.field("corosync_totemsrp.mcast.this_seqno", 4, mc.this_seqno);
                self.ring_id(&mc.ring_id);
                self.field("corosync_totemsrp.mcast.node_id", 4, mc.node_id);
                self.field("corosync_totemsrp.mcast.guarantee", 4, mc.guarantee);
                if let Some(inner) = mc.inner() {
                    // tshark dissects the encapsulated message in place.
                    let inner = inner.expect("inner MCAST parses");
                    self.message(&Message::Mcast(inner));
                } else {
                    // A totempg packet: tshark has no dissector for it.
                    self.pos += mc.payload.len();
                }
            }
            Message::MembMergeDetect(md) => {
                self.srp_addr(&md.system_from);
                self.ring_id(&md.ring_id);
            }
            Message::MembJoin(j) => {
                self.srp_addr(&j.system_from);
                self.field(
                    "corosync_totemsrp.memb_join.proc_list_entries",
                    4,
                    j.proc_list.len(),
                );
                self.field(
                    "corosync_totemsrp.memb_join.failed_list_entries",
                    4,
                    j.failed_list.len(),
                );
                self.field("corosync_totemsrp.memb_join.ring_seq", 8, j.ring_seq);
                for a in j.proc_list.iter().chain(&j.failed_list) {
                    self.srp_addr(a);
                }
            }
            Message::MembCommitToken(c) => {
                self.field(
                    "corosync_totemsrp.memb_commit_token.token_seq",
                    4,
                    c.token_seq,
                );
                self.ring_id(&c.ring_id);
                self.field(
                    "corosync_totemsrp.memb_commit_token.retrans_flg",
                    4,
                    c.retrans_flg,
                );
                self.field(
                    "corosync_totemsrp.memb_commit_token.memb_index",
                    4,
                    c.memb_index,
                );
                self.field(
                    "corosync_totemsrp.memb_commit_token.addr_entries",
                    4,
                    c.addr.len(),
                );
                for a in &c.addr {
                    self.srp_addr(a);
                }
                for e in &c.memb_list {
                    self.ring_id(&e.ring_id);
                    self.field(
                        "corosync_totemsrp.memb_commit_token_memb_entry.aru",
                        4,
                        e.aru,
                    );
                    self.field(
                        "corosync_totemsrp.memb_commit_token_memb_entry.high_delivered",
                        4,
                        e.high_delivered,
                    );
                    self.field(
                        "corosync_totemsrp.memb_commit_token_memb_entry.received_flg",
                        4,
                        e.received_flg,
                    );
                }
            }
            Message::TokenHoldCancel(t) => self.ring_id(&t.ring_id),
            Message::Unknown { .. } => unreachable!("no unknown samples"),
        }
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---------------------------------------------------------------------------------------------
// pcap writing, by hand.

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(UDP_PAYLOAD_OFFSET + payload.len());
    // Ethernet: to the IPv4 multicast MAC of 239.192.0.1, from a QEMU-style MAC.
    f.extend_from_slice(&[0x01, 0x00, 0x5e, 0x40, 0x00, 0x01]);
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0x00];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x00, 0x00, 0x40, 0x00, 64, 17, 0, 0]);
    ip.extend_from_slice(&[192, 168, 122, 11]);
    ip.extend_from_slice(&[239, 192, 0, 1]);
    let csum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    // UDP, checksum 0 (none)
    f.extend_from_slice(&5404u16.to_be_bytes());
    f.extend_from_slice(&5405u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn write_pcap(path: &Path, payloads: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, p) in payloads.iter().enumerate() {
        let f = frame(p);
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    std::fs::write(path, out).unwrap();
}

// ---------------------------------------------------------------------------------------------
// PDML reading (one `<field .../>` or `<field ...>` per line), without an XML crate.

#[derive(Debug, Clone)]
struct Shown {
    name: String,
    pos: usize,
    show: String,
}

fn attr(line: &str, key: &str) -> Option<String> {
    let pat = format!(" {key}=\"");
    let start = line.find(&pat)? + pat.len();
    let end = start + line[start..].find('"')?;
    Some(
        line[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Per packet, the corosync fields tshark shows, in document order.
fn run_tshark(pcap: &Path) -> Option<Vec<Vec<Shown>>> {
    let output = match Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-d", "udp.port==5405,corosync_totemnet"])
        .args(["-o", "corosync_totemnet.private_keys:"])
        .args(["-T", "pdml"])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: tshark could not be run ({e}); the tshark cross-check did not run");
            return None;
        }
    };
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut packets = Vec::new();
    let mut current: Option<Vec<Shown>> = None;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with("<packet>") {
            current = Some(Vec::new());
        } else if line.starts_with("</packet>") {
            packets.push(current.take().unwrap());
        } else if line.starts_with("<field ") || line.starts_with("<proto ") {
            let (Some(name), Some(pos)) = (attr(line, "name"), attr(line, "pos")) else {
                continue;
            };
            if name.starts_with("corosync") || name == "data" || name == "data.data" {
                current.as_mut().unwrap().push(Shown {
                    name,
                    pos: pos.parse().unwrap(),
                    show: attr(line, "show").unwrap_or_default(),
                });
            }
        }
    }
    Some(packets)
}

fn tshark_available() -> bool {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!(
                "SKIPPED: tshark is not installed (or does not run); legacy totemsrp was not \
                 cross-checked against Wireshark's corosync dissectors"
            );
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Golden files.

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/wire/legacy")
}

fn check_golden(name: &str, bytes: &[u8]) {
    let path = fixtures_dir().join(format!("{name}.bin"));
    if std::env::var_os("LEGACY_FIXTURES_BLESS").is_some() {
        std::fs::create_dir_all(fixtures_dir()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (LEGACY_FIXTURES_BLESS=1 writes the golden files)",
            path.display()
        )
    });
    assert_eq!(
        golden,
        bytes,
        "{name}: emit differs from {}",
        path.display()
    );
}

// ---------------------------------------------------------------------------------------------

struct Sample {
    name: String,
    version: LegacyVersion,
    payload: Vec<u8>,
    /// What tshark should show, offsets from the start of the totemsrp message.
    expected: Vec<Expected>,
}

fn build_samples() -> Vec<Sample> {
    let mut out = Vec::new();
    for version in [LegacyVersion::Corosync1, LegacyVersion::Corosync2] {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let inner = inner_mcast(version, order);
            for (stem, message) in samples(version, order, &inner) {
                let framing = match version {
                    LegacyVersion::Corosync1 => LegacyFraming::corosync1(order),
                    LegacyVersion::Corosync2 => LegacyFraming::corosync23(order),
                };
                let mut payload = Vec::new();
                framing.emit_prefix(&mut payload);
                message.emit(&mut payload);
                assert_eq!(payload.len(), framing.offset + message.buffer_len());

                // Our own decoder agrees with itself before tshark is asked.
                let (f, parsed, rest) = LegacyFraming::parse(&payload).unwrap();
                assert_eq!(f, framing, "{stem}: framing detection");
                assert_eq!(parsed, message, "{stem}: parse(emit(m)) == m");
                assert!(rest.is_empty());

                let mut walk = Walk::new(version);
                walk.message(&message);
                assert_eq!(
                    walk.pos,
                    message.buffer_len(),
                    "{stem}: walk covers the message"
                );

                let name = format!(
                    "{stem}-v{}-{}",
                    match version {
                        LegacyVersion::Corosync1 => 1,
                        LegacyVersion::Corosync2 => 2,
                    },
                    order.short_name()
                );
                check_golden(&name, &payload);
                out.push(Sample {
                    name,
                    version,
                    payload,
                    expected: walk.fields,
                });
            }
        }
    }
    out
}

fn compare(sample: &Sample, shown: &[Shown], base: usize) -> usize {
    let totem: Vec<&Shown> = shown
        .iter()
        .filter(|s| s.name.starts_with("corosync_totemsrp."))
        .collect();
    let mut compared = 0;
    for e in &sample.expected {
        let pos = base + e.pos;
        let hit = totem.iter().find(|s| s.name == e.name && s.pos == pos);
        let Some(hit) = hit else {
            let near: Vec<_> = totem.iter().filter(|s| s.pos == pos).collect();
            panic!(
                "{}: tshark shows no {} at frame offset {pos} (message offset {}); \
                 there: {near:?}",
                sample.name, e.name, e.pos
            );
        };
        assert_eq!(
            hit.show, e.show,
            "{}: {} at message offset {}",
            sample.name, e.name, e.pos
        );
        compared += 1;
    }
    compared
}

#[test]
fn legacy_frames_match_tshark() {
    let samples = build_samples();
    if !tshark_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("legacy-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Every datagram as it was sent.
    let pcap = dir.join("legacy.pcap");
    write_pcap(
        &pcap,
        &samples
            .iter()
            .map(|s| s.payload.clone())
            .collect::<Vec<_>>(),
    );
    let Some(packets) = run_tshark(&pcap) else {
        return;
    };
    assert_eq!(packets.len(), samples.len());
    let mut compared = 0;
    for (sample, shown) in samples.iter().zip(&packets) {
        match sample.version {
            LegacyVersion::Corosync1 => {
                compared += compare(sample, shown, UDP_PAYLOAD_OFFSET);
                // Every corosync field tshark shows was expected (nothing tshark reads that
                // we do not, apart from its container items).
                let leaf: Vec<_> = shown
                    .iter()
                    .filter(|s| {
                        s.name.starts_with("corosync_totemsrp.")
                            && !s.show.is_empty()
                            && !sample
                                .expected
                                .iter()
                                .any(|e| e.name == s.name && e.pos + UDP_PAYLOAD_OFFSET == s.pos)
                    })
                    .collect();
                assert!(
                    leaf.is_empty(),
                    "{}: unexpected fields {leaf:?}",
                    sample.name
                );
            }
            LegacyVersion::Corosync2 => {
                // tshark 4.0 does not know the 2.x crypto header: not totemsrp to it.
                assert!(
                    !shown
                        .iter()
                        .any(|s| s.name.starts_with("corosync_totemsrp.")),
                    "{}: tshark unexpectedly decoded a 2.x datagram as totemsrp",
                    sample.name
                );
            }
        }
    }

    // 2. 2.x messages without their crypto header: the same up to the first srp_addr.
    let v2: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.version == LegacyVersion::Corosync2)
        .collect();
    let pcap2 = dir.join("legacy-v2-stripped.pcap");
    write_pcap(
        &pcap2,
        &v2.iter()
            .map(|s| s.payload[4..].to_vec())
            .collect::<Vec<_>>(),
    );
    let packets2 = run_tshark(&pcap2).unwrap();
    assert_eq!(packets2.len(), v2.len());
    for (sample, shown) in v2.iter().zip(&packets2) {
        compared += compare(sample, shown, UDP_PAYLOAD_OFFSET);
    }
    eprintln!(
        "tshark agreed on {compared} fields of {} datagrams",
        samples.len() + v2.len()
    );
    assert!(compared > 500);
    let _ = std::fs::remove_dir_all(&dir);
}
