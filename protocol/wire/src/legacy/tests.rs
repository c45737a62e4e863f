//! Unit tests of the 1.x/2.x codec: golden fixtures decoded field by field, truncation
//! sweeps, count bounds, framing detection and proptest round trips.

use std::net::{IpAddr, Ipv4Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use crate::codec::ByteOrder;
use crate::error::{ErrorKind, Layer};
use crate::legacy::*;
use crate::srp::Encapsulation;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/wire/legacy/",
            $name,
            ".bin"
        ))
        .as_slice()
    };
}

/// Every golden datagram: (name, version, bytes).
fn fixtures() -> Vec<(&'static str, LegacyVersion, &'static [u8])> {
    use LegacyVersion::{Corosync1 as V1, Corosync2 as V2};
    vec![
        ("orf_token-v1-le", V1, fixture!("orf_token-v1-le")),
        ("orf_token-v1-be", V1, fixture!("orf_token-v1-be")),
        ("orf_token-v2-le", V2, fixture!("orf_token-v2-le")),
        ("orf_token-v2-be", V2, fixture!("orf_token-v2-be")),
        ("mcast-v1-le", V1, fixture!("mcast-v1-le")),
        ("mcast-v1-be", V1, fixture!("mcast-v1-be")),
        ("mcast-v2-le", V2, fixture!("mcast-v2-le")),
        ("mcast-v2-be", V2, fixture!("mcast-v2-be")),
        (
            "mcast_encapsulated-v1-le",
            V1,
            fixture!("mcast_encapsulated-v1-le"),
        ),
        (
            "mcast_encapsulated-v1-be",
            V1,
            fixture!("mcast_encapsulated-v1-be"),
        ),
        (
            "mcast_encapsulated-v2-le",
            V2,
            fixture!("mcast_encapsulated-v2-le"),
        ),
        (
            "mcast_encapsulated-v2-be",
            V2,
            fixture!("mcast_encapsulated-v2-be"),
        ),
        (
            "memb_merge_detect-v1-le",
            V1,
            fixture!("memb_merge_detect-v1-le"),
        ),
        (
            "memb_merge_detect-v1-be",
            V1,
            fixture!("memb_merge_detect-v1-be"),
        ),
        (
            "memb_merge_detect-v2-le",
            V2,
            fixture!("memb_merge_detect-v2-le"),
        ),
        (
            "memb_merge_detect-v2-be",
            V2,
            fixture!("memb_merge_detect-v2-be"),
        ),
        ("memb_join-v1-le", V1, fixture!("memb_join-v1-le")),
        ("memb_join-v1-be", V1, fixture!("memb_join-v1-be")),
        ("memb_join-v2-le", V2, fixture!("memb_join-v2-le")),
        ("memb_join-v2-be", V2, fixture!("memb_join-v2-be")),
        (
            "memb_commit_token-v1-le",
            V1,
            fixture!("memb_commit_token-v1-le"),
        ),
        (
            "memb_commit_token-v1-be",
            V1,
            fixture!("memb_commit_token-v1-be"),
        ),
        (
            "memb_commit_token-v2-le",
            V2,
            fixture!("memb_commit_token-v2-le"),
        ),
        (
            "memb_commit_token-v2-be",
            V2,
            fixture!("memb_commit_token-v2-be"),
        ),
        (
            "token_hold_cancel-v1-le",
            V1,
            fixture!("token_hold_cancel-v1-le"),
        ),
        (
            "token_hold_cancel-v1-be",
            V1,
            fixture!("token_hold_cancel-v1-be"),
        ),
        (
            "token_hold_cancel-v2-le",
            V2,
            fixture!("token_hold_cancel-v2-le"),
        ),
        (
            "token_hold_cancel-v2-be",
            V2,
            fixture!("token_hold_cancel-v2-be"),
        ),
    ]
}

fn ip4(nodeid: u32, last: u8) -> TotemIpAddress {
    TotemIpAddress::ipv4(nodeid, Ipv4Addr::new(192, 168, 122, last))
}

fn ring(seq: u64) -> RingId {
    RingId {
        rep: ip4(1, 11),
        seq,
    }
}

fn parse_datagram(bytes: &[u8]) -> (LegacyFraming, Message<'_>) {
    let (framing, message, rest) = LegacyFraming::parse(bytes).expect("fixture parses");
    assert!(rest.is_empty());
    (framing, message)
}

// ---------------------------------------------------------------------------------------------
// Golden fixtures, field by field.

#[test]
fn orf_token_v1_le_fields() {
    let bytes = fixture!("orf_token-v1-le");
    assert_eq!(&bytes[..8], &[0, 0, 0x22, 0xFF, 1, 0, 0, 0]);
    assert_eq!(bytes.len(), ORF_TOKEN_FIXED_LEN + 2 * RtrItem::LEN);
    assert_eq!(bytes.len(), 138);
    let (framing, m) = parse_datagram(bytes);
    assert_eq!(framing, LegacyFraming::corosync1(ByteOrder::Little));
    let Message::OrfToken(t) = m else {
        panic!("not a token: {m:?}")
    };
    assert_eq!(t.header.order, ByteOrder::Little);
    assert_eq!(t.header.version, LegacyVersion::Corosync1);
    assert_eq!(t.header.message_type, MessageType::OrfToken);
    assert_eq!(t.header.encapsulated, 0);
    assert_eq!(t.header.nodeid, 1);
    assert_eq!(t.seq, 41);
    assert_eq!(t.token_seq, 1234);
    assert_eq!(t.aru, 40);
    assert_eq!(t.aru_addr, 2);
    assert_eq!(t.ring_id, ring(0x1c));
    assert_eq!(
        t.ring_id.rep.ip(),
        Some(IpAddr::V4(Ipv4Addr::new(192, 168, 122, 11)))
    );
    assert_eq!(t.ring_id.to_string(), "1.1c");
    assert_eq!(t.backlog, 3);
    assert_eq!(t.fcc, 5);
    assert_eq!(t.retrans_flg, 1);
    assert_eq!(t.rtr_list.len(), 2);
    assert_eq!(t.rtr_list[0].ring_id, ring(0x1c));
    assert_eq!(t.rtr_list[0].seq, 38);
    assert_eq!(t.rtr_list[1].ring_id, ring(0x18));
    assert_eq!(t.rtr_list[1].seq, 39);
}

#[test]
fn orf_token_is_the_same_in_both_versions() {
    let v1 = fixture!("orf_token-v1-be");
    let v2 = fixture!("orf_token-v2-be");
    assert_eq!(&v2[..4], &[0xFE, 0xFE, 0, 0]);
    assert_eq!(
        &v2[4..],
        v1,
        "no srp_addr in the token: 2.x = FE FE 00 00 + 1.x"
    );
    assert_eq!(&v1[..8], &[0, 0, 0xFF, 0x22, 0, 0, 0, 1]);
}

#[test]
fn memb_join_v2_be_fields() {
    let bytes = fixture!("memb_join-v2-be");
    assert_eq!(
        bytes.len(),
        4 + MembJoin::fixed_len(LegacyVersion::Corosync2) + 4 * 45
    );
    let (framing, m) = parse_datagram(bytes);
    assert_eq!(framing, LegacyFraming::corosync23(ByteOrder::Big));
    assert_eq!(
        framing.transport,
        TransportHeader::Crypto(CryptoConfigHeader::COROSYNC_23)
    );
    let Message::MembJoin(j) = m else {
        panic!("not a join: {m:?}")
    };
    assert_eq!(j.header.order, ByteOrder::Big);
    assert_eq!(j.header.version, LegacyVersion::Corosync2);
    assert_eq!(j.header.nodeid, 3);
    assert!(!j.is_leave());
    assert_eq!(j.system_from.no_addrs, Some(2));
    assert_eq!(j.system_from.addr[0], ip4(3, 13));
    assert_eq!(j.system_from.addr[1], TotemIpAddress::default());
    assert_eq!(j.system_from.nodeid(), 3);
    assert_eq!(j.ring_seq, 0x1c);
    let procs: Vec<u32> = j.proc_list.iter().map(SrpAddr::nodeid).collect();
    assert_eq!(procs, [1, 2, 3]);
    assert_eq!(j.proc_list[1].addr[0], ip4(2, 12));
    assert_eq!(j.failed_list.len(), 1);
    let failed = j.failed_list[0].addr[0];
    assert_eq!(failed.nodeid, 4);
    assert_eq!(failed.family, AF_INET6_LINUX);
    assert_eq!(failed.ip(), Some("fd00:7e::4".parse().unwrap()));
    // Byte-level spot checks of the 2.x srp_addr: no_addrs, then nodeid 3 big-endian.
    assert_eq!(&bytes[4 + 8..4 + 8 + 7], &[2, 0, 0, 0, 3, 0, 2]);
}

#[test]
fn memb_join_v1_has_no_no_addrs() {
    let (_, m) = parse_datagram(fixture!("memb_join-v1-le"));
    let Message::MembJoin(j) = m else {
        panic!("not a join")
    };
    assert_eq!(j.system_from.no_addrs, None);
    assert_eq!(j.buffer_len(), 68 + 4 * 44);
    assert_eq!(j.proc_list[2].addr[0], ip4(3, 13));
}

#[test]
fn commit_token_v1_be_fields() {
    let bytes = fixture!("memb_commit_token-v1-be");
    assert_eq!(bytes.len(), MembCommitToken::FIXED_LEN + 3 * (44 + 42));
    let (_, m) = parse_datagram(bytes);
    let Message::MembCommitToken(c) = m else {
        panic!("not a commit token")
    };
    assert_eq!(c.header.order, ByteOrder::Big);
    assert_eq!(c.header.nodeid, 1);
    assert_eq!(c.token_seq, 2);
    assert_eq!(c.ring_id, ring(0x20));
    assert_eq!(c.retrans_flg, 0);
    assert_eq!(c.memb_index, 1);
    let addrs: Vec<u32> = c.addr.iter().map(SrpAddr::nodeid).collect();
    assert_eq!(addrs, [1, 2, 3]);
    for (i, e) in c.memb_list.iter().enumerate() {
        let n = i as u32 + 1;
        assert_eq!(e.ring_id, ring(0x1c));
        assert_eq!(e.aru, 40 + n);
        assert_eq!(e.high_delivered, 41);
        assert_eq!(e.received_flg, n % 2);
    }
}

#[test]
fn mcast_encapsulated_v2_le_fields() {
    let bytes = fixture!("mcast_encapsulated-v2-le");
    let (_, m) = parse_datagram(bytes);
    let Message::Mcast(outer) = m else {
        panic!("not an mcast")
    };
    assert_eq!(Mcast::header_len(LegacyVersion::Corosync2), 99);
    assert_eq!(outer.encapsulation(), Encapsulation::Encapsulated);
    assert_eq!(outer.header.nodeid, 1);
    assert_eq!(outer.system_from.nodeid(), 1);
    assert_eq!(outer.seq, 3);
    assert_eq!(outer.this_seqno, 9);
    assert_eq!(outer.ring_id, ring(0x20));
    assert_eq!(outer.node_id, 0);
    assert_eq!(outer.guarantee, 0);
    let inner = outer.inner().expect("encapsulated").expect("inner parses");
    assert_eq!(inner.encapsulation(), Encapsulation::NotEncapsulated);
    assert_eq!(inner.header.nodeid, 2);
    assert_eq!(inner.system_from.addr[0], ip4(2, 12));
    assert_eq!(inner.seq, 17);
    assert_eq!(inner.this_seqno, 4);
    assert_eq!(inner.ring_id, ring(0x1c));
    assert_eq!(inner.payload, b"\x01\x00\x00\x00legacy-payload");
    assert_eq!(bytes.len(), 4 + 99 + 99 + 18);
}

#[test]
fn mcast_v1_be_fields() {
    let (_, m) = parse_datagram(fixture!("mcast-v1-be"));
    let Message::Mcast(mc) = m else {
        panic!("not an mcast")
    };
    assert_eq!(mc.buffer_len(), 98 + 18);
    assert!(mc.inner().is_none());
    assert_eq!(mc.header.encapsulated, 2);
    assert_eq!(mc.system_from.addr[0], ip4(2, 12));
    assert_eq!(mc.seq, 42);
    assert_eq!(mc.this_seqno, 7);
    assert_eq!(mc.guarantee, 1);
    assert_eq!(mc.payload, b"\x01\x00\x00\x00legacy-payload");
}

#[test]
fn merge_detect_and_hold_cancel_fields() {
    for (name, version, bytes) in fixtures() {
        let (framing, m) = parse_datagram(bytes);
        match m {
            Message::MembMergeDetect(md) => {
                assert_eq!(
                    md.buffer_len(),
                    MembMergeDetect::wire_len(version),
                    "{name}"
                );
                assert_eq!(md.system_from.addr[0], ip4(1, 11), "{name}");
                assert_eq!(md.ring_id, ring(0x1c), "{name}");
                assert_eq!(md.header.nodeid, 1, "{name}");
            }
            Message::TokenHoldCancel(t) => {
                assert_eq!(bytes.len(), framing.offset + TokenHoldCancel::LEN, "{name}");
                assert_eq!(t.ring_id, ring(0x1c), "{name}");
                assert_eq!(t.header.nodeid, 3, "{name}");
            }
            _ => {}
        }
    }
    assert_eq!(MembMergeDetect::wire_len(LegacyVersion::Corosync1), 82);
    assert_eq!(MembMergeDetect::wire_len(LegacyVersion::Corosync2), 83);
}

#[test]
fn every_fixture_round_trips_and_agrees_between_orders() {
    for (name, version, bytes) in fixtures() {
        let (framing, m) = parse_datagram(bytes);
        assert_eq!(framing.version, version, "{name}");
        let mut out = Vec::new();
        framing.emit_prefix(&mut out);
        m.emit(&mut out);
        assert_eq!(out, bytes, "{name}: emit(parse(b)) == b");
        assert_eq!(m.buffer_len() + framing.offset, bytes.len(), "{name}");
        // The same message in the other byte order has the same fields.
        if name.ends_with("-le") {
            let be_name = name.replace("-le", "-be");
            let be_bytes = fixtures()
                .into_iter()
                .find(|(n, _, _)| *n == be_name)
                .unwrap()
                .2;
            let (_, mut be) = parse_datagram(be_bytes);
            set_order(&mut be, ByteOrder::Little);
            if let (Message::Mcast(le_mc), Message::Mcast(be_mc)) = (&m, &mut be) {
                // The encapsulated message is in its own byte order: compare it parsed.
                if let (Some(le_inner), Some(be_inner)) = (le_mc.inner(), be_mc.inner()) {
                    let mut be_inner = Message::Mcast(be_inner.unwrap());
                    set_order(&mut be_inner, ByteOrder::Little);
                    assert_eq!(be_inner, Message::Mcast(le_inner.unwrap()), "{name} inner");
                    be_mc.payload = le_mc.payload;
                }
            }
            assert_eq!(be, m, "{name} vs {be_name}");
        }
    }
}

fn set_order(m: &mut Message<'_>, order: ByteOrder) {
    match m {
        Message::OrfToken(x) => x.header.order = order,
        Message::Mcast(x) => x.header.order = order,
        Message::MembMergeDetect(x) => x.header.order = order,
        Message::MembJoin(x) => x.header.order = order,
        Message::MembCommitToken(x) => x.header.order = order,
        Message::TokenHoldCancel(x) => x.header.order = order,
        Message::Unknown { header, .. } => header.order = order,
    }
}

/// The `sizeof`s of corosync's packed structs, as gcc computes them from the struct
/// definitions of `exec/totemsrp.c` at v1.4.10 and v2.4.6.
#[test]
fn struct_sizes_match_corosync() {
    use LegacyVersion::{Corosync1 as V1, Corosync2 as V2};
    assert_eq!(HEADER_LEN, 8);
    assert_eq!(TotemIpAddress::LEN, 22);
    assert_eq!(RingId::LEN, 30);
    assert_eq!((SrpAddr::wire_len(V1), SrpAddr::wire_len(V2)), (44, 45));
    assert_eq!(ORF_TOKEN_FIXED_LEN, 70);
    assert_eq!(RtrItem::LEN, 34);
    assert_eq!((Mcast::header_len(V1), Mcast::header_len(V2)), (98, 99));
    assert_eq!(
        (MembMergeDetect::wire_len(V1), MembMergeDetect::wire_len(V2)),
        (82, 83)
    );
    assert_eq!((MembJoin::fixed_len(V1), MembJoin::fixed_len(V2)), (68, 69));
    assert_eq!(MembCommitToken::FIXED_LEN, 54);
    assert_eq!(CommitMemberEntry::LEN, 42);
    assert_eq!(TokenHoldCancel::LEN, 38);
}

#[test]
fn leave_is_a_join_from_nodeid_zero() {
    let mut bytes = fixture!("memb_join-v1-le").to_vec();
    bytes[4..8].copy_from_slice(&[0; 4]);
    let (m, _) = Message::parse(&bytes, LegacyVersion::Corosync1).unwrap();
    let Message::MembJoin(j) = m else {
        panic!("not a join")
    };
    assert!(j.is_leave());
    assert_eq!(j.system_from.addr[0].to_string(), "3/192.168.122.13");
}

// ---------------------------------------------------------------------------------------------
// Truncation.

/// Asserts a consistent `Truncated` error for a prefix of `len` bytes.
fn assert_truncated(name: &str, err: &crate::Error, len: usize) {
    assert_eq!(err.layer, Layer::LegacyTotem, "{name}[..{len}]");
    let ErrorKind::Truncated {
        needed, available, ..
    } = err.kind
    else {
        panic!("{name}[..{len}]: not truncated: {err}");
    };
    assert!(err.offset <= len, "{name}[..{len}]: {err}");
    assert_eq!(available, len - err.offset, "{name}[..{len}]: {err}");
    assert!(err.offset + needed > len, "{name}[..{len}]: {err}");
}

#[test]
fn every_shorter_prefix_is_truncated_at_the_right_offset() {
    for (name, version, bytes) in fixtures() {
        let (framing, m) = parse_datagram(bytes);
        let message = &bytes[framing.offset..];
        // MCAST keeps what follows its header as payload: only a cut header is an error.
        let must_fail = match &m {
            Message::Mcast(_) => Mcast::header_len(version),
            _ => message.len(),
        };
        for len in 0..message.len() {
            let result = Message::parse(&message[..len], version);
            if len < must_fail {
                let err = result.expect_err(name);
                assert_truncated(name, &err, len);
            } else {
                let (cut, rest) = result.expect(name);
                assert!(rest.is_empty());
                if let Message::Mcast(mc) = cut {
                    assert_eq!(mc.payload, &message[must_fail..len]);
                    if let Some(Err(e)) = mc.inner() {
                        assert_truncated(name, &e, len);
                    }
                }
            }
        }
        // Through the framing, offsets count from the start of the datagram.
        if framing.offset > 0 {
            let cut = &bytes[..framing.offset + 20];
            let err = LegacyFraming::parse(cut).unwrap_err();
            assert_truncated(name, &err, cut.len());
        }
    }
}

#[test]
fn truncation_offsets_name_the_field() {
    let bytes = fixture!("orf_token-v1-le");
    let err = Message::parse(&bytes[..69], LegacyVersion::Corosync1).unwrap_err();
    assert_eq!(err.offset, 66);
    assert!(matches!(
        err.kind,
        ErrorKind::Truncated {
            field: "rtr_list_entries",
            needed: 4,
            available: 3
        }
    ));
    // The count is read, the list is checked as a whole before anything is allocated.
    let err = Message::parse(&bytes[..100], LegacyVersion::Corosync1).unwrap_err();
    assert_eq!(err.offset, 70);
    assert!(matches!(
        err.kind,
        ErrorKind::Truncated {
            field: "rtr_list_entries",
            needed: 68,
            available: 30
        }
    ));
    // Header: type, encapsulated, endian detector, nodeid.
    let offsets: Vec<usize> = (0..8)
        .map(|len| {
            Message::parse(&bytes[..len], LegacyVersion::Corosync1)
                .unwrap_err()
                .offset
        })
        .collect();
    assert_eq!(offsets, [0, 1, 2, 2, 4, 4, 4, 4]);
    // 2.x srp_addr: no_addrs at 8, then the first address.
    let join = &fixture!("memb_join-v2-le")[4..];
    let err = Message::parse(&join[..8], LegacyVersion::Corosync2).unwrap_err();
    assert!(matches!(
        err.kind,
        ErrorKind::Truncated {
            field: "srp_addr.no_addrs",
            ..
        }
    ));
    let err = Message::parse(&join[..12], LegacyVersion::Corosync2).unwrap_err();
    assert_eq!(err.offset, 9);
}

// ---------------------------------------------------------------------------------------------
// Bounds, bad input, unknown types.

fn patch_u32(bytes: &[u8], offset: usize, value: u32, order: ByteOrder) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let raw = match order {
        ByteOrder::Little => value.to_le_bytes(),
        ByteOrder::Big => value.to_be_bytes(),
    };
    v[offset..offset + 4].copy_from_slice(&raw);
    v
}

#[test]
fn counts_are_bounded_before_use() {
    let orf = fixture!("orf_token-v1-le");
    for bad in [31, u32::MAX, 0x8000_0000] {
        let v = patch_u32(orf, 66, bad, ByteOrder::Little);
        let err = Message::parse(&v, LegacyVersion::Corosync1).unwrap_err();
        assert_eq!(err.offset, 66);
        assert!(matches!(
            err.kind,
            ErrorKind::CountTooLarge {
                field: "rtr_list_entries",
                max: 30,
                ..
            }
        ));
    }
    // 2.x JOIN: proc_list_entries right after the 45-byte srp_addr.
    let join = &fixture!("memb_join-v2-be")[4..];
    let v = patch_u32(join, 8 + 45, 385, ByteOrder::Big);
    let err = Message::parse(&v, LegacyVersion::Corosync2).unwrap_err();
    assert_eq!(err.offset, 53);
    assert!(matches!(
        err.kind,
        ErrorKind::CountTooLarge { max: 384, .. }
    ));
    let v = patch_u32(join, 8 + 45 + 4, 385, ByteOrder::Big);
    let err = Message::parse(&v, LegacyVersion::Corosync2).unwrap_err();
    assert_eq!(err.offset, 57);
    // Within the maximum but beyond the bytes present: truncated, nothing allocated.
    let v = patch_u32(join, 8 + 45, 384, ByteOrder::Big);
    let err = Message::parse(&v, LegacyVersion::Corosync2).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated { .. }));
    // Commit token: addr_entries at 50.
    let ct = fixture!("memb_commit_token-v1-le");
    let v = patch_u32(ct, 50, u32::MAX, ByteOrder::Little);
    let err = Message::parse(&v, LegacyVersion::Corosync1).unwrap_err();
    assert_eq!(err.offset, 50);
    assert!(matches!(err.kind, ErrorKind::CountTooLarge { .. }));
}

#[test]
fn bad_endian_detector_is_refused() {
    let mut v = fixture!("token_hold_cancel-v1-le").to_vec();
    v[2] = 0x70;
    v[3] = 0xC0;
    let err = Message::parse(&v, LegacyVersion::Corosync1).unwrap_err();
    assert_eq!(err.offset, 2);
    assert_eq!(err.kind, ErrorKind::BadMagic(0x70C0));
}

#[test]
fn unknown_and_rrp_types_are_kept_raw() {
    for t in [6u8, 7, 9, 0xFF] {
        let mut v = fixture!("token_hold_cancel-v1-be").to_vec();
        v[0] = t;
        let (m, rest) = Message::parse(&v, LegacyVersion::Corosync1).unwrap();
        assert!(rest.is_empty());
        let Message::Unknown { header, body } = &m else {
            panic!("type {t} decoded: {m:?}")
        };
        assert_eq!(u8::from(header.message_type), t);
        assert_eq!(body.len(), v.len() - HEADER_LEN);
        assert_eq!(m.to_bytes(), v);
    }
    assert_eq!(MessageType::from(6).to_string(), "RING_TEST_ACTIVE");
    assert_eq!(MessageType::from(9).to_string(), "UNKNOWN(0x9)");
}

// ---------------------------------------------------------------------------------------------
// The mapping into 3.x's types.

#[test]
fn a_legacy_token_maps_into_the_3x_token_field_for_field() {
    let (_, m) = parse_datagram(fixture!("orf_token-v2-be"));
    let crate::srp::Message::OrfToken(t) = m.to_srp() else {
        panic!("not a token")
    };
    assert_eq!(t.header.order, ByteOrder::Big);
    assert_eq!(t.header.version, 2);
    assert_eq!(t.header.message_type, crate::srp::MessageType::OrfToken);
    assert_eq!((t.header.nodeid, t.header.target_nodeid), (1, 0));
    let ring_3x = |seq| crate::srp::RingId { rep: 1, seq };
    assert_eq!(t.ring_id, ring_3x(0x1c));
    assert_eq!((t.seq, t.token_seq, t.aru, t.aru_addr), (41, 1234, 40, 2));
    assert_eq!((t.backlog, t.fcc, t.retrans_flg), (3, 5, 1));
    let rtr: Vec<_> = t.rtr_list.iter().map(|r| (r.ring_id, r.seq)).collect();
    assert_eq!(rtr, vec![(ring_3x(0x1c), 38), (ring_3x(0x18), 39)]);
}

#[test]
fn every_legacy_message_maps_with_its_nodeids_and_rings() {
    for (name, version, bytes) in fixtures() {
        let (_, legacy) = parse_datagram(bytes);
        let mapped = legacy.to_srp();
        let (h, h3) = (legacy.header(), mapped.header());
        assert_eq!(
            u8::from(h.message_type),
            u8::from(h3.message_type),
            "{name}"
        );
        assert_eq!(
            (h.order, h.encapsulated, h.nodeid),
            (h3.order, h3.encapsulated, h3.nodeid)
        );
        assert_eq!(h3.version, version.major(), "{name}");
        match (&legacy, &mapped) {
            (Message::Mcast(l), crate::srp::Message::Mcast(m)) => {
                assert_eq!(m.system_from, l.system_from.nodeid(), "{name}");
                assert_eq!(m.ring_id.rep, l.ring_id.rep.nodeid, "{name}");
                assert_eq!(
                    (m.seq, m.this_seqno, m.payload),
                    (l.seq, l.this_seqno, l.payload)
                );
                // The payload of a recovery re-send stays in the 1.x/2.x grammar.
                assert_eq!(
                    m.encapsulation() == Encapsulation::Encapsulated,
                    l.inner().is_some()
                );
            }
            (Message::MembJoin(l), crate::srp::Message::MembJoin(j)) => {
                assert_eq!(j.system_from, l.system_from.nodeid(), "{name}");
                let ids = |list: &[SrpAddr]| list.iter().map(SrpAddr::nodeid).collect::<Vec<_>>();
                assert_eq!(j.proc_list, ids(&l.proc_list), "{name}");
                assert_eq!(j.failed_list, ids(&l.failed_list), "{name}");
                assert_eq!(j.is_leave(), l.is_leave(), "{name}");
            }
            (Message::MembCommitToken(l), crate::srp::Message::MembCommitToken(c)) => {
                let ids: Vec<u32> = l.addr.iter().map(SrpAddr::nodeid).collect();
                assert_eq!(c.addr, ids, "{name}");
                assert_eq!(c.memb_list.len(), l.memb_list.len(), "{name}");
                assert_eq!(c.memb_index, l.memb_index, "{name}");
            }
            (Message::MembMergeDetect(l), crate::srp::Message::MembMergeDetect(m)) => {
                assert_eq!(m.system_from, l.system_from.nodeid(), "{name}");
                assert_eq!(m.ring_id, l.ring_id.to_srp(), "{name}");
            }
            (Message::OrfToken(_), crate::srp::Message::OrfToken(_))
            | (Message::TokenHoldCancel(_), crate::srp::Message::TokenHoldCancel(_)) => {}
            (l, m) => panic!("{name}: {l:?} mapped to {m:?}"),
        }
    }
}

#[test]
fn ring_test_messages_map_to_unknown_3x_types() {
    let mut v = fixture!("token_hold_cancel-v1-be").to_vec();
    v[0] = 6;
    let (m, _) = Message::parse(&v, LegacyVersion::Corosync1).unwrap();
    let crate::srp::Message::Unknown { header, body } = m.to_srp() else {
        panic!("type 6 mapped to a known 3.x message")
    };
    assert_eq!(header.message_type, crate::srp::MessageType::Unknown(6));
    assert_eq!(body, &v[HEADER_LEN..]);
}

#[test]
fn trailing_bytes_are_returned() {
    // A 2.2+ node with cipher none but a hash appends the HMAC after the message.
    let mut v = fixture!("token_hold_cancel-v2-le").to_vec();
    v.extend_from_slice(&[0xAA; 20]);
    let (framing, m, rest) = LegacyFraming::parse(&v).unwrap();
    assert_eq!(framing.offset, 4);
    assert!(matches!(m, Message::TokenHoldCancel(_)));
    assert_eq!(rest, &[0xAA; 20]);
}

// ---------------------------------------------------------------------------------------------
// Framing detection.

#[test]
fn detect_framings() {
    let v1 = fixture!("memb_join-v1-be");
    let d = detect(v1).unwrap();
    assert_eq!(
        (d.version, d.order, d.offset),
        (LegacyVersion::Corosync1, ByteOrder::Big, 0)
    );
    let v2 = fixture!("memb_join-v2-le");
    let d = detect(v2).unwrap();
    assert_eq!(
        (d.version, d.order, d.offset),
        (LegacyVersion::Corosync2, ByteOrder::Little, 4)
    );
    assert_eq!(
        CryptoConfigHeader::parse(v2).unwrap().compat(),
        Some(CryptoCompat::Corosync23)
    );

    // 2.2 (FF FF 00 00) and 2.0/2.1 with cipher and hash none (00 00 00 00).
    for (prefix, compat) in [
        ([0xFF, 0xFF, 0, 0], CryptoCompat::Corosync22),
        ([0, 0, 0, 0], CryptoCompat::Corosync20),
    ] {
        let mut p = prefix.to_vec();
        p.extend_from_slice(&v2[4..]);
        let (f, m, _) = LegacyFraming::parse(&p).unwrap();
        assert_eq!(f.offset, 4);
        assert_eq!(f.version, LegacyVersion::Corosync2);
        let TransportHeader::Crypto(c) = f.transport else {
            panic!()
        };
        assert_eq!(c.compat(), Some(compat));
        assert!(matches!(m, Message::MembJoin(_)));
        let mut out = Vec::new();
        f.emit_prefix(&mut out);
        m.emit(&mut out);
        assert_eq!(out, p);
    }

    // 2.0 with cipher none and hash sha1: the 20-byte HMAC precedes the message.
    let mut p = vec![0, 2, 0, 0];
    p.extend_from_slice(&[0x5A; 20]);
    p.extend_from_slice(&v2[4..]);
    let d = detect(&p).unwrap();
    assert_eq!(d.offset, 24);

    // Not legacy: corosync 3 (70 C0 magic), knet, encrypted 2.x, pads set, too short.
    assert!(detect(&[0x70, 0xC0, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
    assert!(detect(&[0x01, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
    let mut enc = vec![0xFE, 0xFE, 0, 0];
    enc.extend_from_slice(&[0x9C; 40]);
    assert!(detect(&enc).is_none());
    let mut pads = v2.to_vec();
    pads[3] = 1;
    assert!(detect(&pads).is_none());
    assert!(detect(&v1[..7]).is_none());
    assert!(detect(&[]).is_none());
    let err = LegacyFraming::parse(&[0x70, 0xC0]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadMagic(0x70C0));
}

// ---------------------------------------------------------------------------------------------
// Property tests.

fn any_version() -> impl Strategy<Value = LegacyVersion> {
    prop_oneof![
        Just(LegacyVersion::Corosync1),
        Just(LegacyVersion::Corosync2)
    ]
}

fn any_order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

fn ip_address() -> impl Strategy<Value = TotemIpAddress> {
    (any::<u32>(), any::<u16>(), any::<[u8; 16]>()).prop_map(|(nodeid, family, addr)| {
        TotemIpAddress {
            nodeid,
            family,
            addr,
        }
    })
}

fn ring_id() -> impl Strategy<Value = RingId> {
    (ip_address(), any::<u64>()).prop_map(|(rep, seq)| RingId { rep, seq })
}

fn srp_addr(version: LegacyVersion) -> impl Strategy<Value = SrpAddr> {
    (any::<u8>(), ip_address(), ip_address()).prop_map(move |(n, a, b)| SrpAddr {
        no_addrs: (version == LegacyVersion::Corosync2).then_some(n),
        addr: [a, b],
    })
}

fn header(
    version: LegacyVersion,
    order: ByteOrder,
    t: MessageType,
) -> impl Strategy<Value = Header> {
    (prop_oneof![3 => 0u8..=2, 1 => any::<u8>()], any::<u32>()).prop_map(
        move |(encapsulated, nodeid)| Header {
            order,
            version,
            message_type: t,
            encapsulated,
            nodeid,
        },
    )
}

/// Any message but MCAST (whose payload borrows), in one version and order.
fn fixed_message(version: LegacyVersion, order: ByteOrder) -> BoxedStrategy<Message<'static>> {
    let orf = (
        header(version, order, MessageType::OrfToken),
        any::<[u32; 6]>(),
        ring_id(),
        any::<i32>(),
        vec((ring_id(), any::<u32>()), 0..=30),
    )
        .prop_map(|(header, v, ring_id, retrans_flg, rtr)| {
            Message::OrfToken(OrfToken {
                header,
                seq: v[0],
                token_seq: v[1],
                aru: v[2],
                aru_addr: v[3],
                ring_id,
                backlog: v[4],
                fcc: v[5],
                retrans_flg,
                rtr_list: rtr
                    .into_iter()
                    .map(|(ring_id, seq)| RtrItem { ring_id, seq })
                    .collect(),
            })
        });
    let join = (
        header(version, order, MessageType::MembJoin),
        srp_addr(version),
        any::<u64>(),
        vec(srp_addr(version), 0..12),
        vec(srp_addr(version), 0..12),
    )
        .prop_map(|(header, system_from, ring_seq, proc_list, failed_list)| {
            Message::MembJoin(MembJoin {
                header,
                system_from,
                ring_seq,
                proc_list,
                failed_list,
            })
        });
    let commit = (
        header(version, order, MessageType::MembCommitToken),
        any::<u32>(),
        ring_id(),
        any::<u32>(),
        any::<i32>(),
        vec((srp_addr(version), ring_id(), any::<[u32; 3]>()), 0..12),
    )
        .prop_map(
            |(header, token_seq, ring_id, retrans_flg, memb_index, members)| {
                Message::MembCommitToken(MembCommitToken {
                    header,
                    token_seq,
                    ring_id,
                    retrans_flg,
                    memb_index,
                    addr: members.iter().map(|m| m.0).collect(),
                    memb_list: members
                        .iter()
                        .map(|(_, ring_id, v)| CommitMemberEntry {
                            ring_id: *ring_id,
                            aru: v[0],
                            high_delivered: v[1],
                            received_flg: v[2],
                        })
                        .collect(),
                })
            },
        );
    let merge = (
        header(version, order, MessageType::MembMergeDetect),
        srp_addr(version),
        ring_id(),
    )
        .prop_map(|(header, system_from, ring_id)| {
            Message::MembMergeDetect(MembMergeDetect {
                header,
                system_from,
                ring_id,
            })
        });
    let cancel = (
        header(version, order, MessageType::TokenHoldCancel),
        ring_id(),
    )
        .prop_map(|(header, ring_id)| {
            Message::TokenHoldCancel(TokenHoldCancel { header, ring_id })
        });
    prop_oneof![orf, join, commit, merge, cancel].boxed()
}

fn message() -> impl Strategy<Value = Message<'static>> {
    (any_version(), any_order()).prop_flat_map(|(v, o)| fixed_message(v, o))
}

proptest! {
    #[test]
    fn parse_emit_round_trip(m in message()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let (parsed, rest) = Message::parse(&bytes, m.header().version).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(&parsed, &m);
        // And through the framing of its version.
        let framing = match m.header().version {
            LegacyVersion::Corosync1 => LegacyFraming::corosync1(m.header().order),
            LegacyVersion::Corosync2 => LegacyFraming::corosync23(m.header().order),
        };
        let mut datagram = Vec::new();
        framing.emit_prefix(&mut datagram);
        datagram.extend_from_slice(&bytes);
        let (f, again, _) = LegacyFraming::parse(&datagram).unwrap();
        prop_assert_eq!(f, framing);
        prop_assert_eq!(again, m);
    }

    #[test]
    fn mcast_round_trip(
        version in any_version(),
        order in any_order(),
        encapsulated in any::<u8>(),
        nodeid in any::<u32>(),
        system_from in any_version().prop_flat_map(srp_addr),
        v in any::<(u32, i32, u32, i32)>(),
        ring_id in ring_id(),
        payload in vec(any::<u8>(), 0..64),
    ) {
        let system_from = SrpAddr {
            no_addrs: (version == LegacyVersion::Corosync2).then_some(system_from.no_addrs.unwrap_or(2)),
            ..system_from
        };
        let m = Message::Mcast(Mcast {
            header: Header { order, version, message_type: MessageType::Mcast, encapsulated, nodeid },
            system_from,
            seq: v.0,
            this_seqno: v.1,
            ring_id,
            node_id: v.2,
            guarantee: v.3,
            payload: &payload,
        });
        let bytes = m.to_bytes();
        let (parsed, rest) = Message::parse(&bytes, version).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(parsed, m);
    }

    /// Arbitrary bytes behind a valid-looking header: never a panic, and whatever parses
    /// emits back exactly the bytes it consumed.
    #[test]
    fn emit_parse_is_identity_on_bytes(
        version in any_version(),
        t in 0u8..9,
        enc in any::<u8>(),
        big in any::<bool>(),
        nodeid in any::<[u8; 4]>(),
        tail in vec(any::<u8>(), 0..600),
        counts in any::<[u8; 2]>(),
    ) {
        let mut bytes = vec![t, enc];
        bytes.extend_from_slice(if big { &[0xFF, 0x22] } else { &[0x22, 0xFF] });
        bytes.extend_from_slice(&nodeid);
        bytes.extend_from_slice(&tail);
        // Give the count fields small values now and then, so that lists get parsed.
        let srp = SrpAddr::wire_len(version);
        let count_offsets: &[usize] = match t {
            0 => &[66],
            3 => &[8 + srp, 12 + srp],
            4 => &[50],
            _ => &[],
        };
        for (i, &at) in count_offsets.iter().enumerate() {
            if bytes.len() >= at + 4 && counts[i] < 200 {
                let n = u32::from(counts[i] % 4);
                let raw = if big { n.to_be_bytes() } else { n.to_le_bytes() };
                bytes[at..at + 4].copy_from_slice(&raw);
            }
        }
        match Message::parse(&bytes, version) {
            Ok((m, rest)) => {
                let mut out = m.to_bytes();
                out.extend_from_slice(rest);
                prop_assert_eq!(&out, &bytes);
                if let Message::Mcast(mc) = &m {
                    if let Some(Ok(inner)) = mc.inner() {
                        prop_assert_eq!(Message::Mcast(inner).to_bytes(), mc.payload);
                    }
                }
            }
            Err(e) => prop_assert_eq!(e.layer, Layer::LegacyTotem),
        }
        let _ = LegacyFraming::parse(&bytes);
    }
}

#[test]
fn service_names_follow_the_1_4_table() {
    assert_eq!(service_name_1x(0), Some("EVS"));
    assert_eq!(service_name_1x(8), Some("CPG"));
    assert_eq!(service_name_1x(9), Some("CMAN"));
    assert_eq!(service_name_1x(10), Some("PCMK"));
    assert_eq!(service_name_1x(11), Some("CONFDB"));
    assert_eq!(service_name_1x(17), Some("AMF_V2"));
    assert_eq!(service_name_1x(20), None);
}
