//! totempg tests on real fragments: the 1573-byte CPG DOWNLIST that corosync split into
//! 1400 + 173 bytes over two MCASTs (udpu-01-formation frames 9 and 11).

use super::*;
use crate::srp::{Message, MCAST_HEADER_LEN};
use crate::{ByteOrder, ErrorKind};

fn pg_of(datagram: &[u8]) -> PgPacket<'_> {
    let (Message::Mcast(m), _) = Message::parse(datagram).unwrap() else {
        panic!("not MCAST")
    };
    PgPacket::parse(m.payload, ByteOrder::Little).unwrap()
}

const PART1: &[u8] = include_bytes!("../../../../fixtures/wire/pg/downlist-part1.bin");
const PART2: &[u8] = include_bytes!("../../../../fixtures/wire/pg/downlist-part2.bin");

#[test]
fn fragmented_packets_carry_matching_tags() {
    let first = pg_of(PART1);
    let second = pg_of(PART2);
    assert_eq!((first.fragmented, first.continuation), (1, 0));
    assert_eq!((second.fragmented, second.continuation), (0, 1));
    assert_eq!(
        first.entries.iter().map(|e| e.len()).collect::<Vec<_>>(),
        vec![1400]
    );
    assert_eq!(
        second.entries.iter().map(|e| e.len()).collect::<Vec<_>>(),
        vec![173]
    );
    let mut out = Vec::new();
    first.emit(&mut out);
    assert_eq!(out, &PART1[MCAST_HEADER_LEN..]);
}

#[test]
fn assembler_joins_the_pieces_and_names_both_packets() {
    for mut assembler in [
        Assembler::corosync(AssemblerLimits::default()),
        Assembler::observer(AssemblerLimits::default()),
    ] {
        let fed = assembler.feed(1, &pg_of(PART1), 9u64);
        assert!(fed.delivered.is_empty());
        assert_eq!(assembler.pending_len(1), 1400);
        let fed = assembler.feed(1, &pg_of(PART2), 11u64);
        assert_eq!(fed.delivered.len(), 1);
        let message = &fed.delivered[0];
        assert_eq!(message.data.len(), 1573);
        assert_eq!(message.sources, vec![9, 11]);
        let (prefix, exec) = GroupPrefix::parse(&message.data, ByteOrder::Little).unwrap();
        assert_eq!(prefix.groups, vec![b"a".as_slice()]);
        assert_eq!(exec.len(), 1568, "CPG DOWNLIST is 1568 bytes");
        assert_eq!(assembler.pending_len(1), 0);
    }
}

#[test]
fn an_orphan_continuation_is_discarded_and_the_observer_keeps_what_follows() {
    // Start mid-message: the continuation arrives without its first piece.
    let mut observer = Assembler::observer(AssemblerLimits::default());
    let fed = observer.feed(1, &pg_of(PART2), 11u64);
    assert!(fed.delivered.is_empty());
    assert_eq!(fed.discarded.len(), 1);
    assert_eq!(fed.discarded[0].len, 173);
    // The next complete message is delivered.
    let fed = observer.feed(1, &pg_of(PART1), 12u64);
    assert!(fed.delivered.is_empty());
    let fed = observer.feed(1, &pg_of(PART2), 13u64);
    assert_eq!(fed.delivered.len(), 1);
}

#[test]
fn corosync_mode_throws_away_like_totempg_deliver_fn() {
    let whole = PgPacket {
        order: ByteOrder::Little,
        version: 0,
        pg_type: 0,
        fragmented: 0,
        continuation: 0,
        entries: vec![b"\x01\x00\x01\x00ahello"],
    };
    let mut corosync = Assembler::corosync(AssemblerLimits::default());
    // An orphan continuation that ends complete: thrown away, and the assembly freed
    // (assembly_deref), so the next packet starts fresh.
    let fed = corosync.feed(1, &pg_of(PART2), 11u64);
    assert!(fed.delivered.is_empty(), "orphan continuation");
    let fed = corosync.feed(1, &whole, 12u64);
    assert_eq!(fed.delivered.len(), 1);
    // An orphan continuation that itself continues (fragmented 2): throw-away mode lasts
    // through it; the next packet with fragmented 1 ends it but delivers nothing.
    let orphan_fragment = PgPacket {
        fragmented: 2,
        continuation: 1,
        ..whole.clone()
    };
    let starts_again = PgPacket {
        fragmented: 1,
        continuation: 0,
        entries: vec![b"\x01\x00\x01\x00ahel", b"\x01\x00\x01\x00apart"],
        ..whole.clone()
    };
    assert!(corosync
        .feed(1, &orphan_fragment, 13u64)
        .delivered
        .is_empty());
    assert!(corosync.feed(1, &starts_again, 14u64).delivered.is_empty());
}

#[test]
fn lengths_must_sum_to_the_packet_size() {
    let mut payload = PART2[MCAST_HEADER_LEN..].to_vec();
    payload.push(0);
    let e = PgPacket::parse(&payload, ByteOrder::Little).unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::LengthMismatch {
            declared: 173,
            actual: 174,
            ..
        }
    ));
    assert_eq!(e.offset, 10);
    for len in 0..payload.len() - 1 {
        assert!(PgPacket::parse(&payload[..len], ByteOrder::Little).is_err());
    }
}

#[test]
fn group_prefix_names_the_groups() {
    let (prefix, rest) = GroupPrefix::parse(b"\x01\x00\x04\x00syncXYZ", ByteOrder::Little).unwrap();
    assert!(prefix.contains(GroupPrefix::SYNC));
    assert!(!prefix.contains(GroupPrefix::EXEC));
    assert_eq!(rest, b"XYZ");
    let e = GroupPrefix::parse(b"\x21\x00", ByteOrder::Little).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::CountTooLarge { max: 32, .. }));
}

#[test]
fn oversized_messages_are_dropped_not_buffered() {
    let limits = AssemblerLimits {
        message_len_max: 1000,
        senders_max: 4,
    };
    let mut assembler = Assembler::observer(limits);
    let fed = assembler.feed(1, &pg_of(PART1), 9u64);
    assert_eq!(fed.discarded.len(), 1);
    assert_eq!(assembler.pending_len(1), 0);
}

mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::super::*;
    use crate::{strategies, ByteOrder};

    proptest! {
        #[test]
        fn packets_round_trip(
            order in strategies::byte_order(),
            fragmented in any::<u8>(),
            continuation in any::<u8>(),
            entries in vec(vec(any::<u8>(), 0..64), 0..8),
        ) {
            let packet = PgPacket {
                order,
                version: 0,
                pg_type: 0,
                fragmented,
                continuation,
                entries: entries.iter().map(|e| e.as_slice()).collect(),
            };
            let mut bytes = Vec::new();
            packet.emit(&mut bytes);
            prop_assert_eq!(bytes.len(), packet.buffer_len());
            prop_assert_eq!(PgPacket::parse(&bytes, order).unwrap(), packet);
        }

        /// Any message cut into any number of pieces over consecutive packets comes out whole,
        /// with one source per packet it touched.
        #[test]
        fn assembler_restores_messages_cut_anywhere(
            message in vec(any::<u8>(), 1..3000),
            cuts in vec(1usize..3000, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < message.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut bounds = vec![0];
            bounds.extend(&cuts);
            bounds.push(message.len());
            let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &message[w[0]..w[1]]).collect();
            let mut assembler = Assembler::corosync(AssemblerLimits::default());
            let mut delivered = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let last = i + 1 == pieces.len();
                let packet = PgPacket {
                    order: ByteOrder::Little,
                    version: 0,
                    pg_type: 0,
                    fragmented: if last { 0 } else { (i + 1) as u8 },
                    continuation: i as u8,
                    entries: vec![piece],
                };
                delivered.extend(assembler.feed(7, &packet, i).delivered);
            }
            prop_assert_eq!(delivered.len(), 1);
            prop_assert_eq!(&delivered[0].data[..], &message[..]);
            prop_assert_eq!(delivered[0].sources.clone(), (0..pieces.len()).collect::<Vec<_>>());
        }
    }

    proptest! {
        /// Whatever corosync's sender cuts, the receiver puts back: any sequence of messages
        /// (as iovec lists) with token flushes anywhere comes out whole and in order.
        #[test]
        fn packer_output_reassembles_to_the_messages(
            messages in vec(vec(vec(any::<u8>(), 0..3000), 1..4), 1..12),
            flush_after in vec(any::<bool>(), 12),
            knet in any::<bool>(),
        ) {
            let mut packer = if knet { Packer::knet() } else { Packer::udpu() };
            let mut packets = Vec::new();
            for (i, iovecs) in messages.iter().enumerate() {
                let slices: Vec<&[u8]> = iovecs.iter().map(|v| v.as_slice()).collect();
                packer.submit(&slices, &mut packets);
                if flush_after[i] {
                    packets.extend(packer.flush());
                }
            }
            packets.extend(packer.flush());
            let mut assembler = Assembler::corosync(AssemblerLimits::default());
            let mut delivered = Vec::new();
            for (i, bytes) in packets.iter().enumerate() {
                let packet = PgPacket::parse(bytes, ByteOrder::Little).unwrap();
                prop_assert!(packet.buffer_len() <= packer.packet_size() + PG_HEADER_LEN);
                delivered.extend(assembler.feed(1, &packet, i).delivered.into_iter().map(|m| m.data.into_owned()));
            }
            let expected: Vec<Vec<u8>> = messages
                .iter()
                .map(|iovecs| iovecs.concat())
                .filter(|m| !m.is_empty())
                .collect();
            prop_assert_eq!(delivered, expected);
        }
    }
}
