//! The udpu transport on real sockets over loopback (127.0.0.x is all local on Linux):
//! a send to all reaches every nodelist member, this node included; tokens go to one
//! member from the token socket; unlisted sources are dropped (totemudpu.c).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use totem_srp::{Destination, Transmit};
use totemd::udpu::{Recv, Udpu};

mod common;
use common::netns::in_netns;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A free port on 127.0.0.1 (the kernel picks it, then it is released).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads datagrams for up to a second.
fn drain(u: &mut Udpu, want: usize) -> Vec<Recv> {
    let mut buf = Udpu::recv_buffer();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while got.len() < want && Instant::now() < deadline {
        match u.recv(&mut buf) {
            Some(r) => got.push(r),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    got
}

fn source_ip(r: &Recv) -> IpAddr {
    match r {
        Recv::Datagram(from, _) | Recv::Rejected(from) | Recv::Truncated(from) => from.ip(),
    }
}

// Reference: totemudpu.c::mcast_sendmsg (one unicast per member, itself included, from the
// member's own socket on an ephemeral port) and ::ucast_sendmsg (token socket).
#[test]
fn send_to_all_reaches_every_member_including_this_node() {
    let port = free_port();
    let members = [
        (1, ip("127.0.0.1")),
        (2, ip("127.0.0.2")),
        (3, ip("127.0.0.3")),
    ];
    let mut nodes: Vec<Udpu> = members
        .iter()
        .map(|(_, a)| Udpu::new(*a, port, &members, true).unwrap())
        .collect();
    nodes[0].send(&Transmit {
        destination: Destination::All,
        bytes: b"all".to_vec(),
    });
    assert_eq!(nodes[0].stats.sent, 3);
    for (i, n) in nodes.iter_mut().enumerate() {
        let got = drain(n, 1);
        assert_eq!(got.len(), 1, "node {} got {got:?}", i + 1);
        match got[0] {
            Recv::Datagram(from, len) => {
                assert_eq!((from.ip(), len), (ip("127.0.0.1"), 3));
                assert_ne!(
                    from.port(),
                    port,
                    "multicast copies leave from an ephemeral port"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // A token goes to its target only, from the token socket (source port = mcastport).
    nodes[0].send(&Transmit {
        destination: Destination::Node(3),
        bytes: b"token".to_vec(),
    });
    let got = drain(&mut nodes[2], 1);
    assert_eq!(
        got,
        [Recv::Datagram(SocketAddr::new(ip("127.0.0.1"), port), 5)]
    );
    assert!(drain(&mut nodes[1], 1).is_empty());
    // A nodeid outside the nodelist is counted, not sent.
    nodes[0].send(&Transmit {
        destination: Destination::Node(9),
        bytes: b"x".to_vec(),
    });
    assert_eq!(nodes[0].stats.unknown_target, 1);
}

// Reference: totemudpu.c::net_deliver_fn (block_unlisted_ips, find_member_by_sockaddr
// compares the address only).
#[test]
fn unlisted_sources_are_dropped_unless_allowed() {
    let port = free_port();
    let members = [(1, ip("127.0.0.1")), (2, ip("127.0.0.2"))];
    let mut strict = Udpu::new(ip("127.0.0.1"), port, &members, true).unwrap();
    let stranger = UdpSocket::bind("127.0.0.9:0").unwrap();
    stranger.send_to(b"hi", ("127.0.0.1", port)).unwrap();
    let listed = UdpSocket::bind("127.0.0.2:0").unwrap();
    listed.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    let got = drain(&mut strict, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(got[0], Recv::Rejected(_)) && source_ip(&got[0]) == ip("127.0.0.9"));
    assert!(matches!(got[1], Recv::Datagram(_, 5)) && source_ip(&got[1]) == ip("127.0.0.2"));
    assert_eq!(
        (strict.stats.rejected_unlisted, strict.stats.received),
        (1, 1)
    );

    let port = free_port();
    let mut open = Udpu::new(ip("127.0.0.1"), port, &members, false).unwrap();
    stranger.send_to(b"hi", ("127.0.0.1", port)).unwrap();
    assert!(matches!(drain(&mut open, 1)[..], [Recv::Datagram(_, 2)]));
}

// Reference: totemudpu.c::net_deliver_fn and UDP_RECEIVE_FRAME_SIZE_MAX (136192 bytes):
// the largest datagram IPv4 can carry (65507 bytes) fits and is delivered whole. (A
// datagram that fills corosync's frame, dropped as truncated there and here, cannot be
// sent over IPv4 or IPv6 without jumbograms.)
#[test]
fn the_largest_ipv4_datagram_is_received_whole() {
    let port = free_port();
    let members = [(1, ip("127.0.0.1"))];
    let mut u = Udpu::new(ip("127.0.0.1"), port, &members, true).unwrap();
    assert_eq!(totemd::udpu::UDP_RECEIVE_FRAME_SIZE_MAX, 136_192);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&vec![7u8; 65_507], ("127.0.0.1", port)).unwrap();
    let got = drain(&mut u, 1);
    assert!(matches!(got[..], [Recv::Datagram(_, 65_507)]), "{got:?}");
    assert_eq!(u.stats.truncated, 0);
}

/// Reads datagrams (bytes kept) for up to a second.
fn drain_bytes(u: &mut Udpu, want: usize) -> Vec<Vec<u8>> {
    let mut buf = Udpu::recv_buffer();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while got.len() < want && Instant::now() < deadline {
        match u.recv(&mut buf) {
            Some(Recv::Datagram(_, len)) => got.push(buf[..len].to_vec()),
            Some(other) => panic!("{other:?}"),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    got
}

// Reference: knet sends a message's fragments (equal-sized but for the last) from the
// link's one socket (spec §1.2); totemd batches them as GSO runs and sendmmsg. Every
// datagram must still arrive whole, in order, from the token socket, with or without GSO,
// and with knet's 8 MiB buffers.
#[test]
fn a_batch_to_one_address_arrives_as_the_same_datagrams_in_order() {
    let port = free_port();
    let members = [(1, ip("127.0.0.1")), (2, ip("127.0.0.2"))];
    let mut a = Udpu::new(ip("127.0.0.1"), port, &members, true).unwrap();
    let mut b = Udpu::new(ip("127.0.0.2"), port, &members, true).unwrap();
    a.use_knet_buffers();
    b.use_knet_buffers();
    // Two "messages" of 46 fragments of 1460 bytes and a shorter last one, then a token.
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for m in 0..2u8 {
        for f in 0..47u8 {
            let len = if f == 46 { 700 } else { 1460 };
            packets.push(vec![m * 100 + f; len]);
        }
    }
    packets.push(b"token".to_vec());
    for gso in [true, false] {
        a.set_gso(gso);
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        a.send_batch_to(SocketAddr::new(ip("127.0.0.2"), port), &refs);
        let got = drain_bytes(&mut b, packets.len());
        assert_eq!(got, packets, "gso {gso}");
    }
    assert_eq!(a.stats.sent, 2 * packets.len() as u64);
    assert_eq!(a.stats.send_errors, 0);
}

/// `ip` in a checked command line.
fn ip_cmd(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

// Reference: a GSO segment is never IP-fragmented (udp_send_skb), so on a route whose MTU
// is below the segment the kernel refuses the send with EMSGSIZE, while a plain datagram
// of that size is fragmented and delivered; corosync, sending plainly, works on such links.
// Our own copy leaves by the loopback device (MTU 65536), which takes the GSO send: the
// refusal must be learned per member, and nothing lost. Before this was so, every GSO run
// to a peer was counted as send errors and lost, retransmissions too, and a ring of totemd
// on a 1400-byte link did not even form.
#[test]
fn a_link_mtu_below_the_segment_sends_plainly_to_that_member_and_loses_nothing() {
    if let Some(why) = common::skip_reason(false) {
        eprintln!("skipped: {why}");
        return;
    }
    // Two namespaces joined by a veth pair of MTU 1400: a socket keeps the namespace it
    // was made in, so each node's sockets are made in its own.
    let ns: Vec<String> = ["a", "b"]
        .iter()
        .map(|x| format!("totemd-udpu-mtu-{}-{x}", std::process::id()))
        .collect();
    struct Cleanup(Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for ns in &self.0 {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", ns])
                    .status();
            }
        }
    }
    for n in &ns {
        ip_cmd(&["netns", "add", n]);
    }
    let _cleanup = Cleanup(ns.clone());
    ip_cmd(&[
        "-n", &ns[0], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
        &ns[1],
    ]);
    for (n, addr) in ns.iter().zip(["10.231.0.1/24", "10.231.0.2/24"]) {
        ip_cmd(&["-n", n, "link", "set", "lo", "up"]);
        ip_cmd(&["-n", n, "addr", "add", addr, "dev", "eth0"]);
        ip_cmd(&["-n", n, "link", "set", "eth0", "mtu", "1400", "up"]);
    }
    let port = free_port();
    let members = [(1, ip("10.231.0.1")), (2, ip("10.231.0.2"))];
    let mut a = in_netns(&ns[0], || {
        Udpu::new(ip("10.231.0.1"), port, &members, true).unwrap()
    });
    let mut b = in_netns(&ns[1], || {
        Udpu::new(ip("10.231.0.2"), port, &members, true).unwrap()
    });
    {
        // Three rounds of totem-sized packets (1455 bytes: netmtu 1500 less IP and UDP)
        // and a shorter one: GSO runs for both members.
        let packets: Vec<Vec<u8>> = (0..10u8)
            .map(|i| vec![i; if i == 9 { 300 } else { 1455 }])
            .collect();
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        for _ in 0..3 {
            a.send_to_all(&refs);
        }
        let got_b = drain_bytes(&mut b, 3 * packets.len());
        let got_a = drain_bytes(&mut a, 3 * packets.len());
        let want: Vec<Vec<u8>> = (0..3).flat_map(|_| packets.clone()).collect();
        assert_eq!(got_b.len(), want.len(), "datagrams at the peer");
        assert_eq!(got_b, want);
        assert_eq!(got_a, want);
        assert_eq!(a.stats.send_errors, 0, "{:?}", a.stats);
        assert_eq!(a.stats.sent, 2 * want.len() as u64);
        // Only the peer's route refused GSO; our own copy still goes as GSO runs.
        assert_eq!(a.gso_refused().collect::<Vec<_>>(), vec![2]);
    }
}
