//! totemsrp codec tests: the spec's vectors (§7, taken from real captures) decoded field by
//! field, emitted back byte for byte, swept for truncation, and round-tripped by proptest.

use proptest::prelude::*;

use super::*;
use crate::error::ErrorKind;
use crate::strategies;

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn parse_whole(bytes: &[u8]) -> Message<'_> {
    let (message, rest) = Message::parse(bytes).expect("vector parses");
    assert!(rest.is_empty(), "no trailing bytes");
    assert_eq!(message.to_bytes(), bytes, "emit(parse(x)) == x");
    assert_eq!(message.buffer_len(), bytes.len());
    message
}

/// Every strict prefix fails with a `Truncated` error at an offset inside the prefix; none
/// panics.
fn truncation_sweep(bytes: &[u8]) {
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        match Message::parse(prefix) {
            Err(e) => {
                assert!(
                    matches!(e.kind, ErrorKind::Truncated { .. }),
                    "prefix {len}: {e}"
                );
                assert!(
                    e.offset <= len,
                    "prefix {len}: offset {} past the end",
                    e.offset
                );
            }
            // MCAST has no length field: any prefix that holds its header parses.
            Ok((Message::Mcast(m), _)) => {
                assert!(len >= MCAST_HEADER_LEN && m.payload.len() == len - MCAST_HEADER_LEN)
            }
            Ok((other, _)) => panic!("prefix {len} of {} bytes parsed as {other:?}", bytes.len()),
        }
    }
}

// Reference: spec §7 "JOIN, node 1, ring seq 5, proc [1,2]".
#[test]
fn join_vector_decodes_field_by_field() {
    let bytes = hex("70c0 03 03 00 01000000 00000000 01000000 02000000 00000000 0500000000000000 01000000 02000000");
    let Message::MembJoin(join) = parse_whole(&bytes) else {
        panic!("not a JOIN")
    };
    assert_eq!(join.header.order, ByteOrder::Little);
    assert_eq!(join.header.nodeid, 1);
    assert_eq!(join.system_from, 1);
    assert_eq!(join.ring_seq, 5);
    assert_eq!(join.proc_list, vec![1, 2]);
    assert!(join.failed_list.is_empty());
    assert!(!join.is_leave());
    truncation_sweep(&bytes);
}

// Reference: spec §7 "LEAVE from node 2 (header nodeid 0)"; totemsrp.c::memb_leave_message_send.
#[test]
fn leave_vector_is_a_join_with_nodeid_zero() {
    let bytes = hex("70c0 03 03 00 00000000 00000000 02000000 01000000 01000000 0900000000000000 01000000 02000000");
    let Message::MembJoin(leave) = parse_whole(&bytes) else {
        panic!("not a JOIN")
    };
    assert!(leave.is_leave());
    assert_eq!(leave.system_from, 2);
    assert_eq!(leave.proc_list, vec![1]);
    assert_eq!(leave.failed_list, vec![2]);
    assert_eq!(leave.ring_seq, 9);
}

// Reference: spec §7 "COMMIT_TOKEN second hop (node 2 → node 1), ring 1.9, memb_index 2".
#[test]
fn commit_token_vector_decodes_member_entries() {
    let bytes = hex(
        "70c0 03 04 00 02000000 00000000 02000000 01000000 0900000000000000 00000000 02000000 02000000
         01000000 02000000
         01000000 0500000000000000 08000000 08000000 01000000
         02000000 0100000000000000 00000000 00000000 01000000",
    );
    let Message::MembCommitToken(token) = parse_whole(&bytes) else {
        panic!("not a commit token")
    };
    assert_eq!(token.token_seq, 2);
    assert_eq!(token.ring_id, RingId { rep: 1, seq: 9 });
    assert_eq!(token.memb_index, 2);
    assert_eq!(token.addr, vec![1, 2]);
    assert_eq!(token.memb_list[0].ring_id, RingId { rep: 1, seq: 5 });
    assert_eq!(token.memb_list[0].aru, 8);
    assert_eq!(token.memb_list[0].high_delivered, 8);
    assert_eq!(token.memb_list[0].received_flg, 1);
    assert_eq!(token.memb_list[1].ring_id, RingId { rep: 2, seq: 1 });
    assert_eq!(token.ring_id.to_string(), "1.9");
    truncation_sweep(&bytes);
}

// Reference: spec §7 "Initial ORF token of ring 1.5"; totemsrp.c::orf_token_send_initial.
#[test]
fn initial_orf_token_keeps_garbage_target_nodeid() {
    let bytes = hex(
        "70c0 03 00 00 01000000 000000fe 00000000 00000000 ffffffff 01000000 01000000 0500000000000000
         00000000 00000000 00000000 00000000",
    );
    let Message::OrfToken(token) = parse_whole(&bytes) else {
        panic!("not a token")
    };
    assert_eq!(token.header.target_nodeid, 0xfe00_0000);
    assert_eq!(token.seq, 0);
    assert_eq!(token.aru, 0xffff_ffff, "initial aru is SEQNO_START_MSG - 1");
    assert_eq!(token.aru_addr, 1);
    assert_eq!(token.ring_id, RingId { rep: 1, seq: 5 });
    assert!(token.rtr_list.is_empty());
    truncation_sweep(&bytes);
}

// Reference: spec §7 "MERGE_DETECT (29 bytes)".
#[test]
fn merge_detect_vector() {
    let bytes = hex("70c0 03 02 00 01000000 ff7513fe 01000000 01000000 0500000000000000");
    let Message::MembMergeDetect(m) = parse_whole(&bytes) else {
        panic!("not merge detect")
    };
    assert_eq!(m.system_from, 1);
    assert_eq!(m.ring_id, RingId { rep: 1, seq: 5 });
    truncation_sweep(&bytes);
}

// Reference: spec §7 "MCAST carrying a votequorum NODEINFO (92 bytes)".
#[test]
fn mcast_vector_carries_a_totempg_packet() {
    let bytes = hex(
        "70c0 03 01 02 01000000 00000000 01000000 01000000 00000000 01000000 0500000000000000 00000000 00000000
         0000 0000 00 00 0100 2500 0100 0100 61 00000500 00000000 20000000 00000000
         01000000 01000000 02000000 08000000",
    );
    let Message::Mcast(m) = parse_whole(&bytes) else {
        panic!("not an MCAST")
    };
    assert_eq!(m.encapsulation(), Encapsulation::NotEncapsulated);
    assert_eq!(m.system_from, 1);
    assert_eq!(m.seq, 1);
    assert_eq!(m.ring_id, RingId { rep: 1, seq: 5 });
    assert_eq!(m.payload.len(), 92 - MCAST_HEADER_LEN);
    assert!(m.inner().is_none());
    truncation_sweep(&bytes);
}

#[test]
fn real_capture_frames_round_trip() {
    for bytes in [
        &include_bytes!("../../../../fixtures/wire/srp/orf_token.bin")[..],
        include_bytes!("../../../../fixtures/wire/srp/memb_join-1node.bin"),
        include_bytes!("../../../../fixtures/wire/srp/memb_join-leave.bin"),
        include_bytes!("../../../../fixtures/wire/srp/memb_merge_detect.bin"),
        include_bytes!("../../../../fixtures/wire/srp/memb_commit_token-1node.bin"),
        include_bytes!("../../../../fixtures/wire/srp/mcast-votequorum-nodeinfo.bin"),
    ] {
        parse_whole(bytes);
        truncation_sweep(bytes);
    }
}

#[test]
fn big_endian_sender_is_detected_from_the_magic() {
    let le = include_bytes!("../../../../fixtures/wire/srp/memb_join-leave.bin");
    let (Message::MembJoin(mut join), _) = Message::parse(le).unwrap() else {
        panic!()
    };
    join.header.order = ByteOrder::Big;
    let be = Message::MembJoin(join.clone()).to_bytes();
    assert_eq!(&be[..2], &[0xC0, 0x70]);
    let (Message::MembJoin(back), _) = Message::parse(&be).unwrap() else {
        panic!()
    };
    assert_eq!(back, join);
    assert_eq!(back.header.order, ByteOrder::Big);
}

#[test]
fn encapsulated_mcast_exposes_the_old_ring_message() {
    let inner = include_bytes!("../../../../fixtures/wire/srp/mcast-votequorum-nodeinfo.bin");
    let outer = Mcast {
        header: Header {
            encapsulated: 1,
            ..Header::new(MessageType::Mcast, 2)
        },
        system_from: 2,
        seq: 7,
        this_seqno: 3,
        ring_id: RingId { rep: 1, seq: 9 },
        node_id: 0,
        guarantee: 0,
        payload: inner,
    };
    let mut bytes = Vec::new();
    outer.emit(&mut bytes);
    let Message::Mcast(parsed) = parse_whole(&bytes) else {
        panic!()
    };
    assert_eq!(parsed.encapsulation(), Encapsulation::Encapsulated);
    let old = parsed.inner().expect("encapsulated").expect("inner parses");
    assert_eq!(old.ring_id, RingId { rep: 1, seq: 5 });
    assert_eq!(old.header.nodeid, 1);
}

#[test]
fn counts_above_the_protocol_maximum_are_refused_before_allocation() {
    // A JOIN claiming 100000 processors in 37 bytes.
    let mut bytes =
        hex("70c0 03 03 00 01000000 00000000 01000000 a0860100 00000000 0500000000000000 01000000");
    let e = Message::parse(&bytes).unwrap_err();
    assert_eq!(e.layer, crate::Layer::Totem);
    assert_eq!(e.offset, 17, "points at proc_list_entries");
    assert!(matches!(e.kind, ErrorKind::CountTooLarge { max: 384, .. }));
    // An ORF token with 31 retransmit entries (Debian's deb12u1 fix drops > 30).
    bytes = hex("70c0 03 00 00 01000000 00000000 00000000 00000000 00000000 00000000 01000000 0500000000000000 00000000 00000000 00000000 1f000000");
    let e = Message::parse(&bytes).unwrap_err();
    assert_eq!(e.offset, 53);
    assert!(matches!(
        e.kind,
        ErrorKind::CountTooLarge {
            count: 31,
            max: 30,
            ..
        }
    ));
    // A negative count.
    bytes[53..57].copy_from_slice(&(-1i32).to_le_bytes());
    assert!(matches!(
        Message::parse(&bytes).unwrap_err().kind,
        ErrorKind::CountTooLarge { .. }
    ));
}

#[test]
fn bad_magic_and_version_are_reported_at_their_offsets() {
    let e = Message::parse(&hex("ff22 0000")).unwrap_err();
    assert_eq!((e.offset, e.kind.clone()), (0, ErrorKind::BadMagic(0xff22)));
    let e = Message::parse(&hex("70c0 02 00")).unwrap_err();
    assert_eq!((e.offset, e.kind), (2, ErrorKind::UnsupportedVersion(2)));
}

#[test]
fn unknown_message_types_round_trip() {
    let bytes = hex("70c0 03 09 00 05000000 00000000 deadbeef");
    let (message, _) = Message::parse(&bytes).unwrap();
    assert!(matches!(message, Message::Unknown { .. }));
    assert_eq!(message.header().message_type, MessageType::Unknown(9));
    assert_eq!(message.header().message_type.to_string(), "UNKNOWN(0x9)");
    assert_eq!(message.to_bytes(), bytes);
}

proptest! {
    #[test]
    fn fixed_messages_round_trip_with_trailing_bytes(
        message in strategies::byte_order().prop_flat_map(strategies::fixed_message),
        trailing in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = message.to_bytes();
        prop_assert_eq!(bytes.len(), message.buffer_len());
        bytes.extend_from_slice(&trailing);
        let (parsed, rest) = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &message);
        prop_assert_eq!(rest, &trailing[..]);
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::parse(&bytes);
        crate::fuzzing::all(&bytes);
    }
}

// Reference: totemsrp.c orf_token_mcast: a queued MCAST gets its seq, this_seqno and ring id
// when the token comes, in the sender's own byte order.
#[test]
fn assign_sequence_writes_the_fields_in_the_messages_own_order() {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let queued = Mcast {
            header: Header {
                order,
                encapsulated: 2,
                ..Header::new(MessageType::Mcast, 4)
            },
            system_from: 4,
            seq: 0,
            this_seqno: 0,
            ring_id: RingId::default(),
            node_id: 0,
            guarantee: 0,
            payload: b"payload",
        };
        let mut bytes = Message::Mcast(queued.clone()).to_bytes();
        let ring = RingId { rep: 1, seq: 0x1d };
        assign_sequence(&mut bytes, 42, 7, ring).unwrap();
        let Message::Mcast(sent) = parse_whole(&bytes) else {
            panic!()
        };
        assert_eq!(
            (sent.seq, sent.this_seqno, sent.ring_id),
            (42, 7, ring),
            "{order:?}"
        );
        assert_eq!((sent.system_from, sent.payload), (4, &b"payload"[..]));
    }
    let mut token = hex("70c0 03 02 00 01000000 ff7513fe 01000000 01000000 0500000000000000");
    assert!(
        assign_sequence(&mut token, 1, 1, RingId::default()).is_err(),
        "not an MCAST"
    );
}
