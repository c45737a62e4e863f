//! The totempg sender must cut messages exactly where corosync 3.1.7 cut them: each test
//! takes a sender's MCASTs from a real capture, reassembles the message, submits it to a
//! [`Packer`] as corosync's iovecs, and compares every packet byte for byte.

use std::collections::BTreeMap;

use totem_wire::pg::{Assembler, AssemblerLimits, Packer, PgPacket};
use totem_wire::srp::{Message, MCAST_HEADER_LEN};
use totem_wire::ByteOrder;

/// UDP payloads of a classic pcap (Linux cooked v2 or Ethernet, IPv4, no options).
fn udp_payloads(name: &str) -> Vec<Vec<u8>> {
    let path = format!(
        "{}/../../fixtures/pcap/corosync-3.1.7/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap();
    let linktype = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    let link_len = match linktype {
        1 => 14,
        276 => 20,
        other => panic!("linktype {other}"),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        let ip = &frame[link_len..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        out.push(ip[ihl + 8..].to_vec());
    }
    out
}

/// The totempg packets node `sender` multicast, first copy of each seq, in seq order.
fn packets_of(name: &str, sender: u32) -> Vec<Vec<u8>> {
    let mut by_seq = BTreeMap::new();
    for datagram in udp_payloads(name) {
        if let Ok((Message::Mcast(m), _)) = Message::parse(&datagram) {
            if m.header.nodeid == sender {
                by_seq
                    .entry(m.seq)
                    .or_insert_with(|| datagram[MCAST_HEADER_LEN..].to_vec());
            }
        }
    }
    by_seq.into_values().collect()
}

/// Runs `packets` through an assembler and returns, for the first message longer than
/// `min_len`, the index of its first and last packet and the message.
fn long_message(packets: &[Vec<u8>], min_len: usize) -> (usize, usize, Vec<u8>) {
    let mut assembler = Assembler::corosync(AssemblerLimits::default());
    for (index, p) in packets.iter().enumerate() {
        let packet = PgPacket::parse(p, ByteOrder::Little).unwrap();
        for m in assembler.feed(1, &packet, index).delivered {
            if m.data.len() > min_len {
                return (
                    m.sources[0],
                    *m.sources.last().unwrap(),
                    m.data.into_owned(),
                );
            }
        }
    }
    panic!("no message longer than {min_len}");
}

/// corosync's iovecs for an exec message on group "a": group header, group name, the
/// service's fixed struct, then the user data (`totempg_groups_mcast_joined`, cpg.c).
fn exec_iovecs(message: &[u8], fixed_len: usize) -> Vec<&[u8]> {
    assert_eq!(&message[..5], b"\x01\x00\x01\x00a");
    vec![
        &message[..4],
        &message[4..5],
        &message[5..5 + fixed_len],
        &message[5 + fixed_len..],
    ]
}

#[test]
fn a_64_kib_cpg_message_is_cut_into_47_packets_like_corosync() {
    let packets = packets_of("udpu-03-large-msgs.pcap", 1);
    let (first, last, message) = long_message(&packets, 60_000);
    assert_eq!(message.len(), 5 + 184 + 65536);
    let mut packer = Packer::udpu();
    let mut out = Vec::new();
    packer.submit(&exec_iovecs(&message, 184), &mut out);
    assert_eq!(out.len(), 47);
    assert_eq!(out, packets[first..=last].to_vec());
    assert_eq!(packer.flush(), None, "the last piece went out at once");
}

#[test]
fn a_1_mib_partial_mcast_wraps_the_fragment_tag_like_corosync() {
    let packets = packets_of("udpu-03-large-msgs.pcap", 2);
    let (first, last, message) = long_message(&packets, 1_000_000);
    let mut packer = Packer::udpu();
    let mut out = Vec::new();
    packer.submit(&exec_iovecs(&message, 200), &mut out);
    assert_eq!(out.len(), 749);
    assert_eq!(out, packets[first..=last].to_vec());
}

#[test]
fn the_sync_downlist_is_split_1400_plus_173() {
    let packets = packets_of("udpu-01-formation.pcap", 1);
    let (first, last, message) = long_message(&packets, 1500);
    assert_eq!(message.len(), 1573);
    let mut packer = Packer::udpu();
    let mut out = Vec::new();
    // The DOWNLIST is one iovec of 1568 bytes after the group header and name.
    packer.submit(&[&message[..4], &message[4..5], &message[5..]], &mut out);
    // The iovec never fits whole, so both pieces go out at once: the 168-byte rest too.
    assert_eq!(out, packets[first..=last].to_vec());
    assert_eq!(packer.flush(), None);
}

#[test]
fn small_messages_share_one_packet_until_the_token() {
    // udpu-01 frame 7: CMAP MCAST (sync item) and a sync BARRIER in one MCAST.
    let captured = &udp_payloads("udpu-01-formation.pcap")[6];
    let pg = &captured[MCAST_HEADER_LEN..];
    let packet = PgPacket::parse(pg, ByteOrder::Little).unwrap();
    assert_eq!(packet.entries.len(), 2);
    let (cmap, barrier) = (packet.entries[0], packet.entries[1]);
    let mut packer = Packer::udpu();
    let mut out = Vec::new();
    packer.submit(&[&cmap[..4], &cmap[4..5], &cmap[5..]], &mut out);
    packer.submit(&[&barrier[..4], &barrier[4..8], &barrier[8..]], &mut out);
    assert!(out.is_empty());
    assert_eq!(packer.staged_messages(), 2);
    assert_eq!(packer.flush().unwrap(), pg);
    assert_eq!(packer.flush(), None);
}
