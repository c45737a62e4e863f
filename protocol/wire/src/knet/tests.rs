//! knet round trips and defragmentation.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn data_packets_round_trip(
        node in any::<u16>(),
        seq_num in any::<u16>(),
        flags in any::<[u8; 6]>(),
        payload in vec(any::<u8>(), 0..256),
    ) {
        let packet = KnetPacket {
            header: KnetHeader { version: 1, packet_type: KnetType::Data, node, pad: [0, 0] },
            body: KnetBody::Data(KnetData {
                seq_num,
                compress: flags[0],
                pad1: flags[1],
                bcast: flags[2],
                frag_num: flags[3],
                frag_seq: flags[4],
                channel: flags[5],
                payload: &payload,
            }),
            trailing: &[],
        };
        let bytes = packet.to_bytes();
        prop_assert_eq!(KnetPacket::parse(&bytes).unwrap(), packet);
    }

    /// Fragments in any order give back the message, once.
    #[test]
    fn defragmenter_reorders(message in vec(any::<u8>(), 1..4000), mtu in 100usize..1500, seed in any::<u64>()) {
        let pieces: Vec<&[u8]> = message.chunks(mtu).collect();
        prop_assume!(pieces.len() > 1 && pieces.len() < 256);
        let n = pieces.len() as u8;
        let mut order: Vec<usize> = (0..pieces.len()).collect();
        let mut s = seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut d: Defragmenter<u16, usize> = Defragmenter::new(DefragLimits::default());
        let mut done = Vec::new();
        for i in order {
            let data = KnetData { seq_num: 9, compress: 0, pad1: 0, bcast: 1, frag_num: n, frag_seq: i as u8 + 1, channel: 0, payload: pieces[i] };
            if let Defragmented::Complete { data, sources } = d.feed(3, &data, i) {
                done.push((data, sources));
            }
        }
        prop_assert_eq!(done.len(), 1);
        prop_assert_eq!(&done[0].0, &message);
        prop_assert_eq!(done[0].1.clone(), (0..pieces.len()).collect::<Vec<_>>());
    }
}

#[test]
fn fragments_outside_their_count_are_dropped() {
    let mut d: Defragmenter<u16, ()> = Defragmenter::new(DefragLimits::default());
    let data = KnetData {
        seq_num: 1,
        compress: 0,
        pad1: 0,
        bcast: 1,
        frag_num: 2,
        frag_seq: 3,
        channel: 0,
        payload: b"x",
    };
    assert!(matches!(d.feed(1, &data, ()), Defragmented::Dropped(_)));
}

#[test]
fn a_pong_longer_than_26_bytes_keeps_its_tail() {
    // Found by the knet fuzz target: a PONG with bytes after its 20-byte payload.
    let bytes = include_bytes!("../../../fuzz/corpus/knet/pong-with-trailing-bytes");
    let packet = KnetPacket::parse(bytes).unwrap();
    assert!(matches!(packet.body, KnetBody::Pong(_)));
    assert_eq!(packet.trailing.len(), bytes.len() - KNET_PING_LEN);
    assert_eq!(packet.to_bytes(), bytes);
}

#[test]
fn peek_node_reads_kh_node_of_any_packet() {
    let ping = [1u8, 0x81, 0x01, 0x02, 0, 0];
    assert_eq!(KnetHeader::peek_node(&ping), Some(0x0102));
    assert_eq!(KnetHeader::peek_node(&ping[..4]), Some(0x0102));
    assert_eq!(KnetHeader::peek_node(&ping[..3]), None);
}

#[test]
fn ping_time_is_an_x86_64_timespec() {
    let t = PingTime::from_micros(12_345_678_901);
    assert_eq!((t.secs, t.nanos), (12_345, 678_901_000));
    assert_eq!(t.total_micros(), 12_345_678_901);
    let bytes = t.to_bytes();
    assert_eq!(&bytes[..8], &12_345i64.to_le_bytes());
    assert_eq!(&bytes[8..], &678_901_000i64.to_le_bytes());
    assert_eq!(PingTime::from_bytes(bytes), t);
    let ping = KnetPing {
        link: 0,
        time: bytes,
        seq_num: 1,
        timed: 1,
    };
    assert_eq!(ping.ping_time(), t);
    // Whatever a peer echoes back, reading it does not overflow.
    let echoed = PingTime {
        secs: i64::MAX,
        nanos: i64::MAX,
    };
    assert_eq!(
        PingTime::from_bytes(echoed.to_bytes()).total_micros(),
        i64::MAX
    );
}
