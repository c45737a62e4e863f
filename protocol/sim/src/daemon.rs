//! What a simulated node's daemon runs around its `Node`, as totemd does: knet's link layer
//! (`totem_knet`) when the transport is knet, and votequorum (`totem_votequorum`). The
//! simulator calls them in totemd's order (`protocol/daemon/src/runtime.rs`); this module
//! only holds what both need to agree on with totemd: addresses, buffers, configurations.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use totem_knet::crypto::KnetCrypto;
use totem_knet::{Knet, KnetConfig, KnetSettings};
use totem_srp::Instant;
use totem_votequorum::VoteConfig;

/// corosync's default `mcastport`, the port every node's link listens on.
const PORT: u16 = 5405;

/// The netmtu corosync gives totem over knet (`totem_config_validate`: knet fragments, so
/// totem packs up to `KNET_MAX_PACKET_SIZE`), as totemd's config reader does.
pub(crate) const KNET_NET_MTU: usize = 65536;

/// Datagrams a knet node's receive buffer holds beyond what it keeps up with. libknet sets
/// its link sockets' buffers to `KNET_RING_RCVBUFF` (8 MiB) with `SO_RCVBUFFORCE`
/// (`transport_common.c::_configure_common_socket`), as totemd does for knet
/// (`Udpu::use_knet_buffers`); the kernel doubles the value and charges each datagram its
/// truesize, about 2304 bytes for a full-size fragment (its 2 KiB buffer and the sk_buff).
/// A token visit of 64 KiB totem packets is hundreds of fragments per receiver: with
/// udpu's 212992 bytes they would overflow, with knet's buffers they do not.
pub(crate) const KNET_RX_BURST: i64 = 2 * 8 * 1024 * 1024 / 2304;

/// Node `id`'s link address: 10.0.0.id, as the simulator's pcap writes it.
pub(crate) fn node_addr(id: u32) -> SocketAddr {
    let [_, _, _, last] = id.to_be_bytes();
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), PORT))
}

/// The node a link address belongs to (the inverse of [`node_addr`] over `ids`).
pub(crate) fn node_of(ids: &[u32], addr: SocketAddr) -> Option<u32> {
    ids.iter().copied().find(|id| node_addr(*id) == addr)
}

/// Node `id`'s knet as totemd starts it (`cli.rs`): every other node of the nodelist a
/// host on link 0, the timers derived from the ring's `token` (after the coefficient, as
/// `calc_knet_ping_timers` reads `totem_config->token_timeout`) and the file's knet keys;
/// with crypto, the data MTU lowered by its overhead.
pub(crate) fn knet(
    id: u32,
    ids: &[u32],
    token_ms: u32,
    settings: &KnetSettings,
    crypto: Option<&KnetCrypto>,
    now: Instant,
) -> Knet {
    let peers = ids
        .iter()
        .filter(|n| **n != id)
        .map(|n| (*n as u16, node_addr(*n)))
        .collect();
    let config = KnetConfig::corosync(id as u16, peers, token_ms, settings);
    let config = match crypto {
        Some(c) => config.with_crypto(c, settings),
        None => config,
    };
    Knet::new(config, now)
}

/// votequorum's configuration for a nodelist of `ids` with corosync's defaults
/// (`votequorum_readconfig` with `quorum.provider: corosync_votequorum`, as the
/// conformance suite's corosync.conf sets it): a vote each, expected votes the nodelist's
/// total, neither `two_node` nor `wait_for_all`.
pub(crate) fn vote_config(ids: &[u32]) -> VoteConfig {
    VoteConfig {
        provider: true,
        votes: ids.iter().map(|id| (*id, 1)).collect(),
        expected_votes: ids.len() as u32,
        two_node: false,
        wait_for_all: false,
    }
}
