//! `totem-knet`: the knet transport as libknet 1.25 runs it under corosync 3.1.7 with
//! compression off (spec §1.2), sans-IO: datagrams and `now` in, datagrams and link
//! events out. No sockets, no OS clock, no global RNG: the caller owns the sockets
//! (totemd's, one per local link address) or the network (the simulator's), and passes
//! time in as [`totem_srp::Instant`], as for `totem_srp::Srp`. Nothing is logged here:
//! link changes come out as [`KnetEvent`]s and refused datagrams as [`KnetDrop`]s, which
//! totemd writes as libknet's `[KNET  ]` lines.
//!
//! What a peer needs from us, and what we do as libknet does it:
//!
//! * **Links** (`links.c`, `host.c`): each host has up to `KNET_MAX_LINK` (8) links, each
//!   with its own address, `knet_link_priority` and heartbeat timers (corosync sets them
//!   per `totem.interface`, `totemknet.c::totemknet_member_add`). A link is up or down on
//!   its own; the host is reachable while any of its links is up
//!   (`host.c::_host_dstcache_update_sync`), so a link failing while another is up changes
//!   nothing above knet: no membership change.
//! * **Link mode** (`knet_host_set_policy`, corosync's `totem.link_mode`): passive (the
//!   default) sends each message over the up link of highest priority, ties going to the
//!   lowest link id (`_host_dstcache_update_sync` keeps the first of the highest); active
//!   over every up link; rr over one up link per message, in turn
//!   (`threads_tx.c::_dispatch_to_links` rotates `active_links` after each message).
//! * **Heartbeat** (`threads_heartbeat.c::_handle_check_each`): a timed PING on every link
//!   of every peer each `knet_ping_interval`, carrying the link id, our monotonic time and
//!   our data tx seq_num. A PONG (`threads_rx.c`, case PONG) is the link's whose id it
//!   carries; one whose round trip is under the pong timeout counts; the link comes up on
//!   the PONG after `knet_pong_count` counted ones and goes down when no PONG came for
//!   `pong_timeout × backoff + 2 × latency` (the backoff starts at 10 and drops by one a
//!   second to 1: `_adjust_pong_timeouts`).
//! * **Answers**: a PING comes back as a PONG on the link it names, the packet echoed with
//!   our node id; a PMTUD probe as a 9-byte PMTUD_REPLY (`threads_rx.c`, cases PING and
//!   PMTUD). corosync only accepts our data once its own pings were answered
//!   (`src_host->status.reachable`).
//! * **Data** (`threads_tx.c::_parse_recv_from_sock`): one tx seq_num per message, 0
//!   skipped (0 tells receivers "restarted, forget my seq_nums", and our first pings carry
//!   it), a forced untimed PING on every link every `SEQ_MAX / 8` messages, fragments of
//!   at most the data MTU, `bcast` = 1 to every reachable peer, 0 to the one target.
//!   corosync's filter (`totemknet.c::dst_host_filter_callback_fn`) reads the totem
//!   header's `target_nodeid`, which the engine sets for the tokens it unicasts and zeroes
//!   otherwise. Our own messages go over knet's loopback link, never the network: the
//!   caller hands them straight back to its engine.
//! * **Receive** (`threads_rx.c::_parse_recv_from_links`): data only from a listed host,
//!   from one of its link addresses (port not compared: the data header carries no link
//!   id, so the link is the one whose address sent it), only while the host is reachable;
//!   each seq_num is delivered once (`host.c::_seq_num_lookup`, a window of
//!   `KNET_CBUFFER_SIZE` seq_nums per host), so a message that came over two links (active
//!   mode, or a failover's overlap) reaches the engine once; fragments are reassembled
//!   per sender (`pckt_defrag`); unicast data for another host is dropped.
//!
//! * **Crypto** ([`crypto`]): this link layer builds and reads clear knet packets; with
//!   crypto on, the caller encrypts every datagram it sends (with a random salt of its own)
//!   and verifies and decrypts every one it receives before [`Knet::receive`] sees it, and
//!   gives the data MTU the crypto overhead ([`KnetConfig::with_crypto`]).
//!
//! Left out, and why: path MTU discovery of our own: the data MTU is fixed from the
//! configured MTU (`totem.knet_mtu`, else a 1500-byte path: 1500 − 20 − 8 − 26 = 1446,
//! what libknet settles on over Ethernet), for every link alike, and corosync's probes of
//! us are answered.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod crypto;

use std::collections::VecDeque;
use std::net::SocketAddr;

use totem_srp::{Destination, Duration, Instant};

use totem_wire::knet::{
    DefragLimits, Defragmented, Defragmenter, KnetBody, KnetData, KnetHeader, KnetPacket, KnetPing,
    KnetPmtud, KnetType, PingTime, KNET_DATA_HEADER_LEN, KNET_MAX_PACKET_SIZE, KNET_VERSION,
};

/// `KNET_MAX_LINK` (`libknet.h`): link ids are 0..8; corosync's `INTERFACE_MAX` is the same.
pub const KNET_MAX_LINK: usize = 8;
/// `SEQ_MAX` of libknet's data seq_num (`onwire.h`).
const SEQ_MAX: u16 = u16::MAX;
/// `KNET_CBUFFER_SIZE` (`internals.h`): how many seq_nums behind the newest a host's
/// duplicate filter remembers.
const CBUFFER_SIZE: usize = 4096;
/// `KNET_LINK_PONG_TIMEOUT_BACKOFF` (`links.h`).
const PONG_TIMEOUT_BACKOFF: u64 = 10;
/// `KNET_LINK_PONG_TIMEOUT_LAT_MUL` (`links.h`).
const PONG_TIMEOUT_LAT_MUL: u64 = 2;
/// IPv4 + UDP headers and knet's `KNET_HEADER_ALL_SIZE`, which libknet subtracts from the
/// path MTU to get the data MTU.
const DATA_MTU_OVERHEAD: usize = 20 + 8 + 26;
/// The path MTU assumed when `totem.knet_mtu` is not set.
pub const DEFAULT_PATH_MTU: usize = 1500;
/// `KNET_PMTUD_MIN_MTU_V4`: no path is assumed smaller.
const MIN_PATH_MTU: usize = 576;
/// The smallest data MTU that keeps the largest message (`KNET_MAX_PACKET_SIZE`) within
/// the 255 fragments `frag_num` can count. Every path MTU from [`MIN_PATH_MTU`] on gives
/// more, with or without crypto (437 with aes and sha512).
const MIN_DATA_MTU: usize = KNET_MAX_PACKET_SIZE.div_ceil(u8::MAX as usize);
/// `knet_link_priority` when `totem.interface` does not set it (`totemconfig.c`).
pub const DEFAULT_LINK_PRIORITY: u8 = 1;

/// corosync's `totem.link_mode`: libknet's host policy (`KNET_LINK_POLICY_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkMode {
    /// `passive`: the up link of highest priority carries the data.
    #[default]
    Passive,
    /// `active`: every up link carries every message.
    Active,
    /// `rr`: the up links carry one message each, in turn.
    Rr,
}

impl LinkMode {
    /// The mode `totem.link_mode` names (`totem_config_validate` accepts these three).
    pub fn from_name(name: &str) -> Option<LinkMode> {
        match name {
            "passive" => Some(LinkMode::Passive),
            "active" => Some(LinkMode::Active),
            "rr" => Some(LinkMode::Rr),
            _ => None,
        }
    }

    /// The name corosync's config and libknet's log use.
    pub fn name(self) -> &'static str {
        match self {
            LinkMode::Passive => "passive",
            LinkMode::Active => "active",
            LinkMode::Rr => "rr",
        }
    }
}

/// One `totem.interface`'s knet keys; `None` means corosync's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnetInterface {
    /// `knet_ping_interval` (ms).
    pub ping_interval_ms: Option<u32>,
    /// `knet_ping_timeout` (ms).
    pub ping_timeout_ms: Option<u32>,
    /// `knet_pong_count`.
    pub pong_count: Option<u32>,
    /// `knet_link_priority`.
    pub priority: Option<u8>,
}

/// The knet keys of corosync.conf that totemd honours (`totem.knet_mtu`,
/// `totem.link_mode`, each link's `interface` keys); `None` means corosync's default
/// ([`KnetConfig::corosync`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnetSettings {
    /// `knet_mtu`.
    pub mtu: Option<u32>,
    /// `link_mode`.
    pub link_mode: LinkMode,
    /// The `interface` section of each link number.
    pub interfaces: [KnetInterface; KNET_MAX_LINK],
}

/// One link of one node's knet: the same link id on every host, each host with its
/// address on it.
#[derive(Debug, Clone)]
pub struct KnetLinkConfig {
    /// The link number (`linknumber`, the `N` of `ringN_addr`), below [`KNET_MAX_LINK`].
    pub id: u8,
    /// The other hosts on this link: (host id, address and port).
    pub peers: Vec<(u16, SocketAddr)>,
    /// `knet_ping_interval`.
    pub ping_interval: Duration,
    /// `knet_ping_timeout`.
    pub ping_timeout: Duration,
    /// `knet_pong_count`.
    pub pong_count: u32,
    /// `knet_link_priority`.
    pub priority: u8,
    /// Our own address on this link (`ringN_addr:port`), for the status only: the caller
    /// owns the socket.
    pub local: Option<SocketAddr>,
}

impl KnetLinkConfig {
    /// Link `id` as corosync sets it up for a `token` (ms) and its `interface` keys (0 or
    /// absent: the default): `knet_pong_count` 2, `knet_ping_timeout = token /
    /// pong_count`, `knet_ping_interval = token / (2 · pong_count)`
    /// (`calc_knet_ping_timers`), priority 1.
    pub fn corosync(
        id: u8,
        peers: Vec<(u16, SocketAddr)>,
        token_ms: u32,
        keys: &KnetInterface,
    ) -> KnetLinkConfig {
        let set = |v: Option<u32>| v.filter(|v| *v > 0);
        let pong_count = set(keys.pong_count).unwrap_or(2);
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        KnetLinkConfig {
            id,
            peers,
            ping_interval: ms(set(keys.ping_interval_ms).unwrap_or(token_ms / (2 * pong_count))),
            ping_timeout: ms(set(keys.ping_timeout_ms).unwrap_or(token_ms / pong_count)),
            pong_count,
            priority: keys
                .priority
                .filter(|p| *p > 0)
                .unwrap_or(DEFAULT_LINK_PRIORITY),
            local: None,
        }
    }
}

/// Settings of one node's knet (corosync's defaults come from `totemconfig.c`).
#[derive(Debug, Clone)]
pub struct KnetConfig {
    /// Our host id (the nodeid; knet needs it below 65536).
    pub nodeid: u16,
    /// The links, at most [`KNET_MAX_LINK`], each id once (extra and repeated ones are
    /// left out by [`Knet::new`]).
    pub links: Vec<KnetLinkConfig>,
    /// `link_mode`, the same for every host (`totemknet_member_add`).
    pub link_mode: LinkMode,
    /// Largest user data in one DATA packet.
    pub data_mtu: usize,
}

impl KnetConfig {
    /// One link (link 0) to `peers`, as corosync sets it up for a `token` (ms) and the
    /// file's knet keys ([`KnetLinkConfig::corosync`]); the data MTU for the path MTU
    /// `knet_mtu`, else 1500.
    pub fn corosync(
        nodeid: u16,
        peers: Vec<(u16, SocketAddr)>,
        token_ms: u32,
        settings: &KnetSettings,
    ) -> KnetConfig {
        KnetConfig::corosync_links(nodeid, vec![(0, peers)], token_ms, settings)
    }

    /// Every link of `links` (link id, the other hosts' addresses on it), each with its
    /// `interface` keys from `settings`.
    pub fn corosync_links(
        nodeid: u16,
        links: Vec<(u8, Vec<(u16, SocketAddr)>)>,
        token_ms: u32,
        settings: &KnetSettings,
    ) -> KnetConfig {
        let links = links
            .into_iter()
            .map(|(id, peers)| {
                let keys = settings
                    .interfaces
                    .get(usize::from(id))
                    .copied()
                    .unwrap_or_default();
                KnetLinkConfig::corosync(id, peers, token_ms, &keys)
            })
            .collect();
        KnetConfig {
            nodeid,
            links,
            link_mode: settings.link_mode,
            data_mtu: KnetConfig::path_mtu(settings) - DATA_MTU_OVERHEAD,
        }
    }

    /// The path MTU the data MTU is computed from: `knet_mtu` when set (not below
    /// `KNET_PMTUD_MIN_MTU_V4`), else a 1500-byte path.
    pub fn path_mtu(settings: &KnetSettings) -> usize {
        settings
            .mtu
            .filter(|v| *v > 0)
            .map_or(DEFAULT_PATH_MTU, |m| m as usize)
            .max(MIN_PATH_MTU)
    }

    /// The data MTU libknet computes with this crypto on the same path
    /// (`calc_max_data_outlen`): 1397 with aes256/sha256 on a 1500-byte path, the size of
    /// the knet fragments corosync sends then.
    pub fn with_crypto(mut self, crypto: &crypto::KnetCrypto, settings: &KnetSettings) -> Self {
        let path = KnetConfig::path_mtu(settings);
        self.data_mtu = crypto.data_mtu(path).unwrap_or(MIN_DATA_MTU);
        self
    }
}

/// A link or a host changed state (libknet logs these; corosync shows them as `[KNET  ]`
/// lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnetEvent {
    /// "host: N link: L is up".
    LinkUp {
        /// The host.
        host: u16,
        /// The link.
        link: u8,
    },
    /// "host: N link: L is down".
    LinkDown {
        /// The host.
        host: u16,
        /// The link.
        link: u8,
    },
    /// The host's data links were chosen again after one of its links changed
    /// (`_host_dstcache_update_sync`): "host: N (passive) best link: L (pri: P)" or
    /// "host: N has K active links", and "host: N has no active links" when none is up.
    Links {
        /// The host.
        host: u16,
        /// The link mode.
        mode: LinkMode,
        /// Passive: the best up link and its priority.
        best: Option<(u8, u8)>,
        /// How many links carry data to it now (0: unreachable).
        active: u8,
    },
}

/// Why a received datagram was not used; each is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnetDrop {
    /// Not a knet v1 packet: the codec's error (layer and offset).
    Malformed(String),
    /// `kh_node` is not in the nodelist ("Unable to find source host for this packet").
    UnknownHost(u16),
    /// A PING, PONG or PMTUD naming a link the host does not have.
    UnknownLink(u16, u8),
    /// Data from an address that is none of the host's link addresses ("Unable to
    /// determine source link for data packet").
    WrongAddress(u16),
    /// Data while no link of the host is up ("Source host N not reachable yet").
    NotReachable(u16),
    /// Data whose seq_num was already delivered ("Packet has already been delivered"):
    /// the copy of another link.
    Duplicate(u16),
    /// Unicast data for another host ("Packet is not for us").
    NotForUs(u16),
    /// Compressed data or a channel other than 0: corosync sends neither.
    Unsupported(&'static str),
    /// A fragment the reassembly refused.
    Fragment(&'static str),
}

/// What a received datagram was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A whole totem message for the engine, from this host.
    Message(u16, Vec<u8>),
    /// Consumed by knet itself (heartbeat, PMTUD, a fragment awaiting the rest).
    Consumed,
    /// Dropped.
    Dropped(KnetDrop),
}

/// Counters of the whole knet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnetStats {
    /// DATA packets built (fragments counted one by one, per destination and link).
    pub data_sent: u64,
    /// PINGs sent.
    pub pings_sent: u64,
    /// PONGs received that counted.
    pub pongs_received: u64,
    /// PONGs and PMTUD replies we sent.
    pub replies_sent: u64,
    /// Whole messages delivered.
    pub messages_received: u64,
    /// Datagrams dropped.
    pub dropped: u64,
}

/// Counters of one link to one host (libknet's `knet_link_stats`, the part we keep).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// `tx_data_packets`.
    pub tx_data_packets: u64,
    /// `rx_data_packets`: DATA packets that came over this link (duplicates included).
    pub rx_data_packets: u64,
    /// `tx_ping_packets`.
    pub tx_ping_packets: u64,
    /// `rx_ping_packets`.
    pub rx_ping_packets: u64,
    /// `tx_pong_packets`.
    pub tx_pong_packets: u64,
    /// `rx_pong_packets`.
    pub rx_pong_packets: u64,
    /// Times the link went down (`down_count`).
    pub down_count: u64,
    /// Times the link came up (`up_count`).
    pub up_count: u64,
}

/// One link to one host as libknet reports it (`knet_link_get_status`), for `corosync-cfgtool
/// -s` (CFG NODESTATUSGET) and totemd's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// The link id.
    pub link: u8,
    /// `enabled`: configured and running (always, for a configured link).
    pub enabled: bool,
    /// `connected`: up on the heartbeat.
    pub connected: bool,
    /// Does it carry data to the host now (in `active_links`)?
    pub carries_data: bool,
    /// `knet_link_priority`.
    pub priority: u8,
    /// Our address on it (`src_ipaddr`, `src_port`), when the configuration gave it.
    pub src: Option<SocketAddr>,
    /// The host's address on it (`dst_ipaddr`, `dst_port`).
    pub dst: SocketAddr,
    /// The data MTU (`mtu`: fixed here, libknet's PMTUD result).
    pub mtu: usize,
    /// Mean round trip of its PONGs (`latency`, µs).
    pub latency_us: u64,
    /// Counters.
    pub stats: LinkStats,
}

/// One host as libknet reports it (`knet_host_get_status` and its links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// The host id (nodeid).
    pub host: u16,
    /// `reachable`: some link is up.
    pub reachable: bool,
    /// Its links, by id.
    pub links: Vec<LinkStatus>,
}

#[derive(Debug)]
struct Link {
    id: u8,
    priority: u8,
    addr: SocketAddr,
    ping_interval: Duration,
    ping_timeout_us: u64,
    pong_count: u32,
    up: bool,
    received_pongs: u32,
    ping_last: Option<Instant>,
    pong_last: Option<Instant>,
    /// Mean round trip (µs), as libknet's `status.latency`.
    latency_us: u64,
    samples: u64,
    backoff: u64,
    stats: LinkStats,
}

impl Link {
    /// `pong_timeout_adj` (µs): `pong_timeout × backoff + latency × 2`.
    fn pong_timeout_adj(&self) -> u64 {
        self.ping_timeout_us
            .saturating_mul(self.backoff)
            .saturating_add(self.latency_us * PONG_TIMEOUT_LAT_MUL)
    }
}

/// libknet's per-host duplicate filter (`circular_buffer` and `rx_seq_num`, read by
/// `host.c::_seq_num_lookup`): which of the [`CBUFFER_SIZE`] seq_nums up to the newest one
/// seen were delivered. Newer seq_nums move the window on, forgetting what they pass;
/// one far outside it starts it again there.
#[derive(Debug)]
struct SeqWindow {
    /// `rx_seq_num`: the newest seen; 0 is "none yet" (the next seq_num becomes it).
    head: u16,
    delivered: Vec<bool>,
}

impl SeqWindow {
    fn new() -> SeqWindow {
        SeqWindow {
            head: 0,
            delivered: vec![false; CBUFFER_SIZE],
        }
    }

    fn slot(seq: u16) -> usize {
        usize::from(seq) % CBUFFER_SIZE
    }

    /// `_clear_cbuffers`: forget everything; `head` is the new reference.
    fn clear(&mut self, head: u16) {
        self.delivered.fill(false);
        self.head = head;
    }

    /// Is `seq` new (not delivered yet)? Moves the window on to it when it is ahead.
    fn check(&mut self, seq: u16) -> bool {
        if self.head == 0 {
            // A host just (re)started: its first seq_num is the reference.
            self.head = seq;
        }
        let behind = usize::from(self.head.wrapping_sub(seq));
        if behind < CBUFFER_SIZE {
            return !self.delivered[SeqWindow::slot(seq)];
        }
        let ahead = usize::from(seq.wrapping_sub(self.head));
        if ahead <= CBUFFER_SIZE {
            // Forget the slots the window passes over, up to and with the new head.
            let mut s = self.head;
            for _ in 0..ahead {
                s = s.wrapping_add(1);
                self.delivered[SeqWindow::slot(s)] = false;
            }
        } else {
            self.delivered.fill(false);
        }
        self.head = seq;
        true
    }

    /// `_seq_num_set`: `seq` was delivered.
    fn set(&mut self, seq: u16) {
        self.delivered[SeqWindow::slot(seq)] = true;
    }
}

#[derive(Debug)]
struct Host {
    nodeid: u16,
    /// By link id.
    links: Vec<Link>,
    /// `active_links`: indexes into `links` that carry data, in the order libknet keeps
    /// (rr rotates it).
    active: Vec<usize>,
    rx: SeqWindow,
    /// `untimed_rx_seq_num`, `timed_rx_seq_num`, `got_data` (`threads_rx.c`, case PING).
    untimed_rx_seq_num: u16,
    timed_rx_seq_num: u16,
    got_data: bool,
}

impl Host {
    fn reachable(&self) -> bool {
        !self.active.is_empty()
    }
}

/// One node's knet.
#[derive(Debug)]
pub struct Knet {
    config: KnetConfig,
    hosts: Vec<Host>,
    tx_seq_num: u16,
    defrag: Defragmenter<u16, ()>,
    events: VecDeque<KnetEvent>,
    /// When the pong timeouts' backoff next drops (once a second).
    backoff_at: Instant,
    /// When it was made: a link never pinged is due from then on.
    started: Instant,
    /// Counters.
    pub stats: KnetStats,
}

/// A datagram to send: destination and bytes. The destination is one host's address on
/// one link; the caller sends it from its own socket of that link ([`Knet::link_of`]).
pub type Outgoing = (SocketAddr, Vec<u8>);

impl Knet {
    /// A knet with every link down; the first pings are due at once (`now`), as libknet
    /// pings a link the moment it is enabled (its heartbeat thread finds `ping_last`
    /// unset), not one interval later. Links past [`KNET_MAX_LINK`], with an id out of
    /// range or repeated, are left out, as `knet_link_set_config` refuses them.
    pub fn new(mut config: KnetConfig, now: Instant) -> Knet {
        config.data_mtu = config.data_mtu.max(MIN_DATA_MTU);
        let mut seen = [false; KNET_MAX_LINK];
        config.links.retain(|l| {
            let i = usize::from(l.id);
            let keep = i < KNET_MAX_LINK && !seen[i];
            if keep {
                seen[i] = true;
            }
            keep
        });
        config.links.sort_by_key(|l| l.id);
        let mut hosts: Vec<Host> = Vec::new();
        for lc in &config.links {
            for (nodeid, addr) in &lc.peers {
                if *nodeid == config.nodeid {
                    continue;
                }
                let index = match hosts.iter().position(|h| h.nodeid == *nodeid) {
                    Some(i) => i,
                    None => {
                        hosts.push(Host {
                            nodeid: *nodeid,
                            links: Vec::new(),
                            active: Vec::new(),
                            rx: SeqWindow::new(),
                            untimed_rx_seq_num: 0,
                            timed_rx_seq_num: 0,
                            got_data: false,
                        });
                        hosts.len() - 1
                    }
                };
                let host = &mut hosts[index];
                if host.links.iter().any(|l| l.id == lc.id) {
                    // One address per host and link.
                    continue;
                }
                host.links.push(Link {
                    id: lc.id,
                    priority: lc.priority,
                    addr: *addr,
                    ping_interval: lc.ping_interval,
                    ping_timeout_us: lc.ping_timeout.total_micros(),
                    pong_count: lc.pong_count,
                    up: false,
                    received_pongs: 0,
                    ping_last: None,
                    pong_last: None,
                    latency_us: 0,
                    samples: 0,
                    backoff: PONG_TIMEOUT_BACKOFF,
                    stats: LinkStats::default(),
                });
            }
        }
        Knet {
            config,
            hosts,
            tx_seq_num: 0,
            defrag: Defragmenter::new(DefragLimits {
                pending_per_sender_max: 32,
                senders_max: 1024,
            }),
            events: VecDeque::new(),
            backoff_at: now + Duration::from_millis(1000),
            started: now,
            stats: KnetStats::default(),
        }
    }

    /// The configuration in force (links deduplicated and sorted by id).
    pub fn config(&self) -> &KnetConfig {
        &self.config
    }

    /// Is `nodeid` reachable: is some link to it up?
    pub fn link_up(&self, nodeid: u16) -> bool {
        self.host(nodeid).is_some_and(Host::reachable)
    }

    /// The link a destination address of [`Outgoing`] belongs to: the id of the first link
    /// on which some host has exactly this address.
    pub fn link_of(&self, addr: SocketAddr) -> Option<u8> {
        self.config
            .links
            .iter()
            .find(|l| l.peers.iter().any(|(_, a)| *a == addr))
            .map(|l| l.id)
    }

    /// `nodeid` and each of its links as libknet reports them; `None` for a host not in
    /// the configuration (ourselves included: our loopback link is the caller's).
    pub fn host_status(&self, nodeid: u16) -> Option<HostStatus> {
        let host = self.host(nodeid)?;
        Some(HostStatus {
            host: nodeid,
            reachable: host.reachable(),
            links: host
                .links
                .iter()
                .enumerate()
                .map(|(i, l)| LinkStatus {
                    link: l.id,
                    enabled: true,
                    connected: l.up,
                    carries_data: host.active.contains(&i),
                    priority: l.priority,
                    src: self
                        .config
                        .links
                        .iter()
                        .find(|c| c.id == l.id)
                        .and_then(|c| c.local),
                    dst: l.addr,
                    mtu: self.config.data_mtu,
                    latency_us: l.latency_us,
                    stats: l.stats,
                })
                .collect(),
        })
    }

    /// Every host's status, by host id.
    pub fn hosts_status(&self) -> Vec<HostStatus> {
        let mut ids: Vec<u16> = self.hosts.iter().map(|h| h.nodeid).collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.host_status(id))
            .collect()
    }

    fn host(&self, nodeid: u16) -> Option<&Host> {
        self.hosts.iter().find(|h| h.nodeid == nodeid)
    }

    /// The next link event.
    pub fn poll_event(&mut self) -> Option<KnetEvent> {
        self.events.pop_front()
    }

    fn header(&self, packet_type: KnetType) -> KnetHeader {
        KnetHeader {
            version: KNET_VERSION,
            packet_type,
            node: self.config.nodeid,
            pad: [0; 2],
        }
    }

    fn ping(&self, now: Instant, link: u8, timed: bool) -> Vec<u8> {
        // Only we read it back, from the PONG.
        let time = PingTime::from_micros(now.total_micros()).to_bytes();
        KnetPacket {
            header: self.header(KnetType::Ping),
            body: KnetBody::Ping(KnetPing {
                link,
                time,
                seq_num: self.tx_seq_num,
                timed: u8::from(timed),
            }),
            trailing: &[],
        }
        .to_bytes()
    }

    /// Frames one totem message for `destination` into `out`: nothing for ourselves alone
    /// (the loopback link is the caller's), one packet or its fragments per reachable host
    /// on the links its link mode picks.
    pub fn send(
        &mut self,
        now: Instant,
        destination: Destination,
        message: &[u8],
        out: &mut Vec<Outgoing>,
    ) {
        let any = self
            .hosts
            .iter()
            .any(|h| h.reachable() && destination_includes(destination, h.nodeid));
        if !any || message.is_empty() || message.len() > KNET_MAX_PACKET_SIZE {
            return;
        }
        self.tx_seq_num = self.tx_seq_num.wrapping_add(1);
        if self.tx_seq_num == 0 {
            self.tx_seq_num = 1;
        }
        if self.tx_seq_num % (SEQ_MAX / 8) == 0 {
            // Keeps hosts that see little of our traffic in step with our seq_num
            // (`send_pings_to_all`: every link of every host, up or not).
            let mut pings = Vec::new();
            for h in &mut self.hosts {
                for l in &mut h.links {
                    pings.push((l.addr, l.id));
                    l.stats.tx_ping_packets += 1;
                }
            }
            for (addr, link) in pings {
                out.push((addr, self.ping(now, link, false)));
                self.stats.pings_sent += 1;
            }
        }
        let mtu = self.config.data_mtu;
        let pieces: Vec<&[u8]> = message.chunks(mtu).collect();
        // At most 255 pieces: `new` keeps the data MTU at MIN_DATA_MTU or more.
        let frag_num = u8::try_from(pieces.len()).unwrap_or(u8::MAX);
        let bcast = u8::from(matches!(destination, Destination::All));
        let packets: Vec<Vec<u8>> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut bytes = Vec::with_capacity(KNET_DATA_HEADER_LEN + piece.len());
                KnetPacket {
                    header: self.header(KnetType::Data),
                    body: KnetBody::Data(KnetData {
                        seq_num: self.tx_seq_num,
                        compress: 0,
                        pad1: 0,
                        bcast,
                        frag_num,
                        frag_seq: if frag_num > 1 { i as u8 + 1 } else { 0 },
                        channel: 0,
                        payload: piece,
                    }),
                    trailing: &[],
                }
                .emit(&mut bytes);
                bytes
            })
            .collect();
        let mode = self.config.link_mode;
        for h in &mut self.hosts {
            if !h.reachable() || !destination_includes(destination, h.nodeid) {
                continue;
            }
            // `_dispatch_to_links`: passive has one active link, active every one; rr
            // sends the whole message (every fragment) on the first and rotates.
            let links: &[usize] = if mode == LinkMode::Rr {
                &h.active[..1]
            } else {
                &h.active
            };
            for &i in links {
                let link = &mut h.links[i];
                for bytes in &packets {
                    out.push((link.addr, bytes.clone()));
                    link.stats.tx_data_packets += 1;
                    self.stats.data_sent += 1;
                }
            }
            if mode == LinkMode::Rr && h.active.len() > 1 {
                h.active.rotate_left(1);
            }
        }
    }

    /// One received datagram; answers (PONG, PMTUD_REPLY) go into `out`.
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Received {
        let r = self.receive_inner(now, from, bytes, out);
        match &r {
            Received::Dropped(_) => self.stats.dropped += 1,
            Received::Message(..) => self.stats.messages_received += 1,
            Received::Consumed => {}
        }
        r
    }

    fn receive_inner(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        out: &mut Vec<Outgoing>,
    ) -> Received {
        let packet = match KnetPacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => return Received::Dropped(KnetDrop::Malformed(e.to_string())),
        };
        let host_id = packet.header.node;
        let Some(h) = self.hosts.iter().position(|h| h.nodeid == host_id) else {
            return Received::Dropped(KnetDrop::UnknownHost(host_id));
        };
        // Heartbeat and PMTUD packets name their link; data is the link of its source
        // address (`_parse_recv_from_links`).
        let link_named = |id: u8| {
            let id = id % KNET_MAX_LINK as u8;
            self.hosts[h]
                .links
                .iter()
                .position(|l| l.id == id)
                .ok_or(KnetDrop::UnknownLink(host_id, id))
        };
        match packet.body {
            KnetBody::Ping(ping) => {
                let l = match link_named(ping.link) {
                    Ok(l) => l,
                    Err(why) => return Received::Dropped(why),
                };
                self.ping_seq_num(h, &ping);
                // Answered to the link address, as libknet sends it (not the source).
                let pong = KnetPacket {
                    header: self.header(KnetType::Pong),
                    body: KnetBody::Pong(ping),
                    trailing: packet.trailing,
                }
                .to_bytes();
                let link = &mut self.hosts[h].links[l];
                link.stats.rx_ping_packets += 1;
                link.stats.tx_pong_packets += 1;
                out.push((link.addr, pong));
                self.stats.replies_sent += 1;
                Received::Consumed
            }
            KnetBody::Pong(pong) => {
                match link_named(pong.link) {
                    Ok(l) => self.pong(now, h, l, &pong),
                    Err(why) => return Received::Dropped(why),
                }
                Received::Consumed
            }
            KnetBody::Pmtud(probe) => {
                let l = match link_named(probe.link) {
                    Ok(l) => l,
                    Err(why) => return Received::Dropped(why),
                };
                let reply = KnetPacket {
                    header: self.header(KnetType::PmtudReply),
                    body: KnetBody::PmtudReply(KnetPmtud {
                        link: probe.link,
                        size_raw: probe.size_raw,
                        filler: &[],
                    }),
                    trailing: &[],
                }
                .to_bytes();
                out.push((self.hosts[h].links[l].addr, reply));
                self.stats.replies_sent += 1;
                Received::Consumed
            }
            KnetBody::PmtudReply(_) | KnetBody::Unknown(_) => Received::Consumed,
            KnetBody::Data(data) => self.data(h, from, &data),
        }
    }

    /// What a PING's seq_num tells about the sender's data (`threads_rx.c`, case PING): a
    /// timed 0 is a restart (forget its seq_nums); a new untimed one moves the window on,
    /// and forgets it when no data came since the last one.
    fn ping_seq_num(&mut self, h: usize, ping: &KnetPing) {
        let host = &mut self.hosts[h];
        if ping.timed == 0 {
            let mut wipe = false;
            if ping.seq_num != host.untimed_rx_seq_num {
                host.untimed_rx_seq_num = ping.seq_num;
                wipe = !std::mem::take(&mut host.got_data);
            }
            if wipe {
                host.rx.clear(ping.seq_num);
            }
            host.rx.check(ping.seq_num);
        } else if ping.seq_num != host.timed_rx_seq_num {
            host.timed_rx_seq_num = ping.seq_num;
            if ping.seq_num == 0 {
                host.rx.clear(0);
            }
        }
    }

    fn data(&mut self, h: usize, from: SocketAddr, data: &KnetData<'_>) -> Received {
        let host = &mut self.hosts[h];
        let host_id = host.nodeid;
        // The exact address first: two links may share an IP address on other ports.
        let link = host
            .links
            .iter()
            .position(|l| l.addr == from)
            .or_else(|| host.links.iter().position(|l| l.addr.ip() == from.ip()));
        let Some(link) = link else {
            return Received::Dropped(KnetDrop::WrongAddress(host_id));
        };
        host.links[link].stats.rx_data_packets += 1;
        if !host.reachable() {
            return Received::Dropped(KnetDrop::NotReachable(host_id));
        }
        host.got_data = true;
        if !host.rx.check(data.seq_num) {
            return Received::Dropped(KnetDrop::Duplicate(host_id));
        }
        if data.compress != 0 {
            return Received::Dropped(KnetDrop::Unsupported("compressed data"));
        }
        if data.channel != 0 {
            return Received::Dropped(KnetDrop::Unsupported("a channel other than 0"));
        }
        let message = match self.defrag.feed(host_id, data, ()) {
            Defragmented::Whole => data.payload.to_vec(),
            Defragmented::Complete { data, .. } => data,
            Defragmented::Pending => return Received::Consumed,
            Defragmented::Dropped(why) => return Received::Dropped(KnetDrop::Fragment(why)),
        };
        // Delivered: the other links' copies are duplicates from now on.
        self.hosts[h].rx.set(data.seq_num);
        if data.bcast == 0 {
            // corosync's filter: a unicast is for the totem header's target_nodeid.
            let target = totem_wire::srp::Header::parse(&message)
                .map(|h| h.target_nodeid)
                .unwrap_or(0);
            if target != u32::from(self.config.nodeid) {
                return Received::Dropped(KnetDrop::NotForUs(host_id));
            }
        }
        Received::Message(host_id, message)
    }

    fn pong(&mut self, now: Instant, h: usize, l: usize, pong: &KnetPing) {
        let sent = pong.ping_time().total_micros();
        let rtt = u64::try_from(now.total_micros().saturating_sub(sent)).unwrap_or(u64::MAX);
        let host_id = self.hosts[h].nodeid;
        let link = &mut self.hosts[h].links[l];
        link.stats.rx_pong_packets += 1;
        link.pong_last = Some(now);
        if rtt > link.ping_timeout_us {
            // "has higher latency than pong_timeout. Discarding".
            return;
        }
        self.stats.pongs_received += 1;
        link.samples = (link.samples + 1).min(2048);
        link.latency_us = (link.latency_us * (link.samples - 1) + rtt) / link.samples;
        if !link.up && link.latency_us < link.pong_timeout_adj() {
            if link.received_pongs >= link.pong_count {
                link.up = true;
                link.stats.up_count += 1;
                let id = link.id;
                self.events.push_back(KnetEvent::LinkUp {
                    host: host_id,
                    link: id,
                });
                self.update_active(h);
            } else {
                link.received_pongs += 1;
            }
        }
    }

    /// `_host_dstcache_update_sync`: which up links carry data to host `h` now, by the
    /// link mode; reported as a [`KnetEvent::Links`]. With none, the host is unreachable
    /// and its seq_nums are forgotten (`_clear_cbuffers(host, 0)`).
    fn update_active(&mut self, h: usize) {
        let mode = self.config.link_mode;
        let host = &mut self.hosts[h];
        let up = host.links.iter().enumerate().filter(|(_, l)| l.up);
        host.active = match mode {
            LinkMode::Passive => {
                // The first link of the highest priority, in link id order.
                let mut best: Option<usize> = None;
                for (i, l) in up {
                    if best.is_none_or(|b| l.priority > host.links[b].priority) {
                        best = Some(i);
                    }
                }
                best.into_iter().collect()
            }
            LinkMode::Active | LinkMode::Rr => up.map(|(i, _)| i).collect(),
        };
        let best = match mode {
            LinkMode::Passive => host
                .active
                .first()
                .map(|&i| (host.links[i].id, host.links[i].priority)),
            _ => None,
        };
        if host.active.is_empty() {
            host.rx.clear(0);
        }
        let active = host.active.len() as u8;
        self.events.push_back(KnetEvent::Links {
            host: host.nodeid,
            mode,
            best,
            active,
        });
    }

    /// Sends due pings, takes down links whose PONGs stopped, and lowers the backoff once
    /// a second.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        while now >= self.backoff_at {
            for h in &mut self.hosts {
                for l in &mut h.links {
                    l.backoff = l.backoff.saturating_sub(1).max(1);
                }
            }
            self.backoff_at += Duration::from_millis(1000);
        }
        let mut pings = Vec::new();
        for h in 0..self.hosts.len() {
            let mut changed = false;
            let host_id = self.hosts[h].nodeid;
            for l in &mut self.hosts[h].links {
                if l.ping_last.is_none_or(|t| now >= t + l.ping_interval) {
                    pings.push((l.addr, l.id));
                    l.ping_last = Some(now);
                    l.stats.tx_ping_packets += 1;
                }
                if let Some(last) = l.pong_last {
                    let silent = (now - last).total_micros();
                    if silent >= l.pong_timeout_adj() {
                        // _link_down: counting starts again.
                        l.received_pongs = 0;
                        l.pong_last = None;
                        l.backoff = PONG_TIMEOUT_BACKOFF;
                        if l.up {
                            l.up = false;
                            l.stats.down_count += 1;
                            changed = true;
                            self.events.push_back(KnetEvent::LinkDown {
                                host: host_id,
                                link: l.id,
                            });
                        }
                    }
                }
            }
            if changed {
                self.update_active(h);
            }
        }
        for (addr, link) in pings {
            out.push((addr, self.ping(now, link, true)));
            self.stats.pings_sent += 1;
        }
    }

    /// When [`Knet::handle_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.backoff_at;
        for l in self.hosts.iter().flat_map(|h| &h.links) {
            let ping = l.ping_last.map_or(self.started, |t| t + l.ping_interval);
            next = next.min(ping);
            if let Some(last) = l.pong_last {
                next = next.min(last + Duration::from_micros(l.pong_timeout_adj()));
            }
        }
        Some(next)
    }
}

fn destination_includes(destination: Destination, nodeid: u16) -> bool {
    match destination {
        Destination::All => true,
        Destination::Node(n) => n == u32::from(nodeid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/wire/knet");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 200, 0, 10 + n as u8], 5405))
    }

    fn at(ms: i64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    /// Node `me` of a nodelist 1..=3, corosync's defaults for token 1000.
    fn knet(me: u16) -> Knet {
        let peers = (1..=3).map(|n| (n, addr(n))).collect();
        Knet::new(
            KnetConfig::corosync(me, peers, 1000, &KnetSettings::default()),
            at(0),
        )
    }

    #[test]
    fn timers_and_mtu_are_corosyncs_unless_the_file_sets_them() {
        let derived = |s: KnetSettings| {
            let c = KnetConfig::corosync(1, Vec::new(), 3000, &s);
            (
                c.links[0].ping_interval.total_millis(),
                c.links[0].ping_timeout.total_millis(),
                c.links[0].pong_count,
                c.data_mtu,
            )
        };
        // token 3000 ⇒ 750 / 1500 ms (spec §1.2); 1500 − 20 − 8 − 26.
        assert_eq!(derived(KnetSettings::default()), (750, 1500, 2, 1446));
        let mut pong_count = KnetSettings {
            mtu: Some(9000),
            ..KnetSettings::default()
        };
        pong_count.interfaces[0].pong_count = Some(3);
        assert_eq!(derived(pong_count), (500, 1000, 3, 8946));
        let mut explicit = KnetSettings::default();
        explicit.interfaces[0] = KnetInterface {
            ping_interval_ms: Some(200),
            ping_timeout_ms: Some(900),
            pong_count: Some(0),
            priority: None,
        };
        assert_eq!(derived(explicit), (200, 900, 2, 1446));
        let tiny = KnetSettings {
            mtu: Some(100),
            ..KnetSettings::default()
        };
        assert_eq!(derived(tiny).3, 576 - 54, "knet's minimum path MTU");
    }

    /// Runs nodes 1 and 2 against each other (1 ms one way) until `until_ms`; what node 2
    /// received as messages.
    fn exchange(a: &mut Knet, b: &mut Knet, from_ms: i64, until_ms: i64) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for ms in from_ms..until_ms {
            let mut out_a = Vec::new();
            let mut out_b = Vec::new();
            a.handle_timeout(at(ms), &mut out_a);
            b.handle_timeout(at(ms), &mut out_b);
            // Only what is addressed to the other of the two is delivered.
            while !out_a.is_empty() || !out_b.is_empty() {
                let mut next_a = Vec::new();
                let mut next_b = Vec::new();
                for (to, bytes) in out_a.drain(..) {
                    if to == addr(2) {
                        if let Received::Message(_, m) =
                            b.receive(at(ms + 1), addr(1), &bytes, &mut next_b)
                        {
                            got.push(m);
                        }
                    }
                }
                for (to, bytes) in out_b.drain(..) {
                    if to == addr(1) {
                        a.receive(at(ms + 1), addr(2), &bytes, &mut next_a);
                    }
                }
                out_a = next_a;
                out_b = next_b;
            }
        }
        got
    }

    fn up_pair() -> (Knet, Knet) {
        let mut a = knet(1);
        let mut b = knet(2);
        exchange(&mut a, &mut b, 0, 2000);
        assert!(a.link_up(2) && b.link_up(1));
        (a, b)
    }

    /// A totem header (little-endian sender) with this type and target, and a body.
    fn totem(target: u32, len: usize) -> Vec<u8> {
        let mut m = vec![0x70, 0xC0, 3, 1, 0];
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&target.to_le_bytes());
        m.resize(len.max(m.len()), 0xAB);
        m
    }

    #[test]
    fn the_first_pings_are_due_at_start_not_an_interval_later() {
        let peers = (1..=3).map(|n| (n, addr(n))).collect();
        let config = KnetConfig::corosync(1, peers, 1000, &KnetSettings::default());
        let mut k = Knet::new(config, at(5));
        assert_eq!(k.poll_timeout(), Some(at(5)));
        let mut out = Vec::new();
        k.handle_timeout(at(5), &mut out);
        let pinged: Vec<SocketAddr> = out
            .iter()
            .filter(|(_, b)| matches!(KnetPacket::parse(b).unwrap().body, KnetBody::Ping(_)))
            .map(|(to, _)| *to)
            .collect();
        assert_eq!(pinged, vec![addr(2), addr(3)], "every peer at once");
        // Then the next round is an interval away.
        assert_eq!(
            k.poll_timeout(),
            Some(at(5) + k.config.links[0].ping_interval),
            "{:?}",
            k.config.links[0].ping_interval
        );
    }

    #[test]
    fn a_captured_pmtud_probe_gets_the_captured_reply() {
        let mut k = knet(2);
        let mut out = Vec::new();
        let r = k.receive(at(0), addr(1), &fixture("pmtud.bin"), &mut out);
        assert_eq!(r, Received::Consumed);
        assert_eq!(out, vec![(addr(1), fixture("pmtud_reply.bin"))]);
    }

    #[test]
    fn a_captured_ping_comes_back_as_a_pong_with_our_node_id_and_nothing_else_changed() {
        let ping = fixture("ping.bin");
        let mut k = knet(3);
        let mut out = Vec::new();
        assert_eq!(
            k.receive(at(0), addr(1), &ping, &mut out),
            Received::Consumed
        );
        let mut expected = ping.clone();
        expected[1] = 0x82;
        expected[2..4].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(out, vec![(addr(1), expected)]);
    }

    #[test]
    fn a_link_comes_up_on_the_pong_after_pong_count_and_data_waits_for_it() {
        let mut a = knet(1);
        let mut b = knet(2);
        let mut out = Vec::new();
        a.send(at(0), Destination::All, &totem(0, 60), &mut out);
        assert!(out.is_empty(), "no link is up yet: {out:?}");
        // Pings every 250 ms (token 1000 / (2 · 2)); the third counted PONG brings it up.
        exchange(&mut a, &mut b, 0, 400);
        assert!(!a.link_up(2));
        exchange(&mut a, &mut b, 400, 600);
        assert!(a.link_up(2), "{:?}", a.stats);
        assert_eq!(a.poll_event(), Some(KnetEvent::LinkUp { host: 2, link: 0 }));
        assert_eq!(
            a.poll_event(),
            Some(KnetEvent::Links {
                host: 2,
                mode: LinkMode::Passive,
                best: Some((0, 1)),
                active: 1
            })
        );
        assert_eq!(a.poll_event(), None);
        // Node 3 never answered.
        assert!(!a.link_up(3));
    }

    #[test]
    fn data_goes_to_up_links_only_and_arrives_whole() {
        let (mut a, mut b) = up_pair();
        let message = totem(0, 300);
        let mut out = Vec::new();
        a.send(at(2000), Destination::All, &message, &mut out);
        assert_eq!(out.len(), 1, "node 3's link is down");
        let (to, bytes) = &out[0];
        assert_eq!(*to, addr(2));
        let packet = KnetPacket::parse(bytes).unwrap();
        let KnetBody::Data(data) = packet.body else {
            panic!("{packet:?}")
        };
        assert_eq!(
            (
                data.seq_num,
                data.bcast,
                data.frag_num,
                data.frag_seq,
                data.channel
            ),
            (1, 1, 1, 0, 0)
        );
        let mut replies = Vec::new();
        assert_eq!(
            b.receive(at(2001), addr(1), bytes, &mut replies),
            Received::Message(1, message)
        );
        // The same bytes from another address of nobody's link are refused.
        assert_eq!(
            b.receive(at(2001), addr(3), bytes, &mut replies),
            Received::Dropped(KnetDrop::WrongAddress(1))
        );
    }

    #[test]
    fn messages_above_the_data_mtu_are_fragmented_and_reassembled() {
        let (mut a, mut b) = up_pair();
        let message = totem(0, 5000);
        let mut out = Vec::new();
        a.send(at(2000), Destination::All, &message, &mut out);
        assert_eq!(out.len(), 4, "5000 bytes in 1446-byte pieces");
        let mut got = None;
        // Out of order, as a network may deliver them.
        for (_, bytes) in out.iter().rev() {
            let packet = KnetPacket::parse(bytes).unwrap();
            let KnetBody::Data(data) = &packet.body else {
                panic!()
            };
            assert_eq!(data.frag_num, 4);
            assert!(data.payload.len() <= 1446);
            if let Received::Message(_, m) = b.receive(at(2001), addr(1), bytes, &mut Vec::new()) {
                got = Some(m);
            }
        }
        assert_eq!(got, Some(message));
    }

    #[test]
    fn unicast_goes_to_its_target_and_a_captured_one_for_another_host_is_dropped() {
        let (mut a, mut b) = up_pair();
        let mut out = Vec::new();
        a.send(at(2000), Destination::Node(2), &totem(2, 80), &mut out);
        assert_eq!(out.len(), 1);
        let packet = KnetPacket::parse(&out[0].1).unwrap();
        let KnetBody::Data(data) = &packet.body else {
            panic!()
        };
        assert_eq!(data.bcast, 0);
        assert!(matches!(
            b.receive(at(2001), addr(1), &out[0].1, &mut Vec::new()),
            Received::Message(1, _)
        ));
        // Captured: node 2's commit token for node 1, unicast.
        let captured = fixture("data-commit-token.bin");
        let mut c = knet(3);
        exchange_up(&mut c, 2);
        assert_eq!(
            c.receive(at(2001), addr(2), &captured, &mut Vec::new()),
            Received::Dropped(KnetDrop::NotForUs(2))
        );
        let mut d = knet(1);
        exchange_up(&mut d, 2);
        assert!(matches!(
            d.receive(at(2001), addr(2), &captured, &mut Vec::new()),
            Received::Message(2, _)
        ));
    }

    /// Marks `k`'s link 0 to `peer` up, as a counted PONG would.
    fn force_up(k: &mut Knet, peer: u16) {
        let h = k.hosts.iter().position(|h| h.nodeid == peer).unwrap();
        k.hosts[h].links[0].up = true;
        k.update_active(h);
    }

    /// Brings `k`'s link to `peer` up with hand-made PONGs.
    fn exchange_up(k: &mut Knet, peer: u16) {
        for ms in [0, 250, 500, 750] {
            let mut out = Vec::new();
            k.handle_timeout(at(ms), &mut out);
            for (to, ping) in out {
                if to == addr(peer) {
                    let mut pong = ping.clone();
                    pong[1] = 0x82;
                    pong[2..4].copy_from_slice(&peer.to_be_bytes());
                    k.receive(at(ms + 1), addr(peer), &pong, &mut Vec::new());
                }
            }
        }
        assert!(k.link_up(peer));
    }

    #[test]
    fn seq_num_skips_zero_and_an_untimed_ping_goes_out_every_eighth_of_the_space() {
        let (mut a, _) = up_pair();
        a.tx_seq_num = u16::MAX;
        let mut out = Vec::new();
        a.send(at(2000), Destination::All, &totem(0, 60), &mut out);
        let KnetBody::Data(data) = KnetPacket::parse(&out[0].1).unwrap().body else {
            panic!()
        };
        assert_eq!(data.seq_num, 1, "0 is the restart marker");
        a.tx_seq_num = SEQ_MAX / 8 - 1;
        out.clear();
        a.send(at(2000), Destination::All, &totem(0, 60), &mut out);
        let pings: Vec<KnetPing> = out
            .iter()
            .filter_map(|(_, b)| match KnetPacket::parse(b).unwrap().body {
                KnetBody::Ping(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(pings.len(), 2, "to every host, up or not");
        assert!(pings
            .iter()
            .all(|p| p.timed == 0 && p.seq_num == SEQ_MAX / 8));
    }

    #[test]
    fn a_link_goes_down_when_its_pongs_stop_after_the_backoff() {
        let (mut a, _) = up_pair();
        while a.poll_event().is_some() {}
        let mut down_at = None;
        for ms in (2000..40_000).step_by(50) {
            a.handle_timeout(at(ms), &mut Vec::new());
            if a.poll_event() == Some(KnetEvent::LinkDown { host: 2, link: 0 }) {
                down_at = Some(ms);
                break;
            }
        }
        // The last PONG came at about 1.75 s; the pong timeout (500 ms) times a backoff that
        // started at 10 and lost one a second (6 by 4 s): down near 4.8 s, as libknet.
        let down_at = down_at.expect("the link went down");
        assert!((4000..5500).contains(&down_at), "{down_at}");
        assert!(!a.link_up(2));
        let mut out = Vec::new();
        a.send(at(down_at), Destination::All, &totem(0, 60), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn garbage_and_strangers_are_dropped_and_counted() {
        let mut k = knet(1);
        let mut out = Vec::new();
        match k.receive(at(0), addr(2), &[1, 0], &mut out) {
            Received::Dropped(KnetDrop::Malformed(e)) => assert!(e.contains("offset"), "{e}"),
            r => panic!("{r:?}"),
        }
        let mut ping = fixture("ping.bin");
        ping[2..4].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(
            k.receive(at(0), addr(2), &ping, &mut out),
            Received::Dropped(KnetDrop::UnknownHost(9))
        );
        let data = fixture("data-commit-token.bin");
        assert_eq!(
            k.receive(at(0), addr(2), &data, &mut out),
            Received::Dropped(KnetDrop::NotReachable(2))
        );
        assert!(out.is_empty());
        assert_eq!(k.stats.dropped, 3);
    }

    // Reference: fixtures/pcap/corosync-3.1.7/knet-crypto/README.md (libknet 1.25 logs
    // "Global data MTU changed to: 1397" with aes256/sha256 on a 1500-byte path).
    #[test]
    fn crypto_lowers_the_data_mtu_as_libknet_does_and_fragments_follow_it() {
        use crypto::{CryptoCipher, CryptoHash, CryptoModel, KnetCrypto};
        let key = vec![7u8; 256];
        let c = |cipher, hash| KnetCrypto::new(CryptoModel::Nss, cipher, hash, &key).unwrap();
        let aes = c(CryptoCipher::Aes256, CryptoHash::Sha256);
        let mtu = |settings: &KnetSettings, k: &KnetCrypto| {
            KnetConfig::corosync(1, Vec::new(), 1000, settings)
                .with_crypto(k, settings)
                .data_mtu
        };
        assert_eq!(mtu(&KnetSettings::default(), &aes), 1397);
        let small = KnetSettings {
            mtu: Some(100),
            ..KnetSettings::default()
        };
        // The smallest path with the largest overhead still leaves room for 255 fragments.
        let big = c(CryptoCipher::Aes128, CryptoHash::Sha512);
        assert_eq!(mtu(&small, &big), 437);
        let peers = (1..=2).map(|n| (n, addr(n))).collect();
        let mut k = Knet::new(
            KnetConfig::corosync(1, peers, 1000, &small).with_crypto(&big, &small),
            at(0),
        );
        force_up(&mut k, 2);
        let mut out = Vec::new();
        k.send(
            at(1),
            Destination::All,
            &vec![0u8; KNET_MAX_PACKET_SIZE],
            &mut out,
        );
        assert_eq!(
            out.len(),
            KNET_MAX_PACKET_SIZE.div_ceil(437),
            "within 255 fragments"
        );
        // A message above the data MTU goes as fragments of exactly that size.
        let peers = (1..=2).map(|n| (n, addr(n))).collect();
        let mut k = Knet::new(
            KnetConfig::corosync(1, peers, 1000, &KnetSettings::default())
                .with_crypto(&aes, &KnetSettings::default()),
            at(0),
        );
        force_up(&mut k, 2);
        let mut out = Vec::new();
        k.send(at(1), Destination::All, &[0u8; 3000], &mut out);
        let sizes: Vec<usize> = out
            .iter()
            .map(|(_, b)| b.len() - KNET_DATA_HEADER_LEN)
            .collect();
        assert_eq!(sizes, [1397, 1397, 206]);
        // Each encrypted fragment fits the 1500-byte path with its IPv4 and UDP headers.
        let wire = aes.encrypt(&out[0].1, &[1; 16]).unwrap();
        assert!(wire.len() + 28 <= 1500, "{}", wire.len());
    }

    // ---- Several links (libknet's links.c, host.c, threads_tx.c, threads_rx.c). ----

    /// Node `n`'s address on link `link`: a subnet and a port of its own per link, as
    /// corosync gives link N `mcastport` 5405 + N.
    fn on(link: u8, n: u16) -> SocketAddr {
        SocketAddr::from(([10, 200 + link, 0, 10 + n as u8], 5405 + u16::from(link)))
    }

    /// Node `me` of nodes 1 and 2 with links 0 and 1 of these priorities, token 1000.
    fn two_links(me: u16, mode: LinkMode, priority: [u8; 2]) -> Knet {
        let mut settings = KnetSettings {
            link_mode: mode,
            ..KnetSettings::default()
        };
        settings.interfaces[0].priority = Some(priority[0]);
        settings.interfaces[1].priority = Some(priority[1]);
        let links = (0..2)
            .map(|l| (l, (1..=2).map(|n| (n, on(l, n))).collect()))
            .collect();
        Knet::new(
            KnetConfig::corosync_links(me, links, 1000, &settings),
            at(0),
        )
    }

    /// The link a datagram of `k` to node `to` went over, from its destination.
    fn link_to(k: &Knet, addr: SocketAddr, to: u16) -> u8 {
        let link = k.link_of(addr).expect("a link address");
        assert_eq!(addr, on(link, to));
        link
    }

    /// Runs nodes 1 (`a`) and 2 (`b`) of [`two_links`] from `from_ms` to `until_ms`, 1 ms
    /// one way; datagrams on the links of `cut` are lost. What `b` received as messages.
    fn run(a: &mut Knet, b: &mut Knet, from_ms: i64, until_ms: i64, cut: &[u8]) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for ms in from_ms..until_ms {
            let mut out_a = Vec::new();
            let mut out_b = Vec::new();
            a.handle_timeout(at(ms), &mut out_a);
            b.handle_timeout(at(ms), &mut out_b);
            while !out_a.is_empty() || !out_b.is_empty() {
                let mut next_a = Vec::new();
                let mut next_b = Vec::new();
                for (to, bytes) in out_a.drain(..) {
                    let link = link_to(a, to, 2);
                    if !cut.contains(&link) {
                        if let Received::Message(_, m) =
                            b.receive(at(ms + 1), on(link, 1), &bytes, &mut next_b)
                        {
                            got.push(m);
                        }
                    }
                }
                for (to, bytes) in out_b.drain(..) {
                    let link = link_to(b, to, 1);
                    if !cut.contains(&link) {
                        a.receive(at(ms + 1), on(link, 2), &bytes, &mut next_a);
                    }
                }
                out_a = next_a;
                out_b = next_b;
            }
        }
        got
    }

    fn events(k: &mut Knet) -> Vec<KnetEvent> {
        std::iter::from_fn(|| k.poll_event()).collect()
    }

    /// The links `a`'s next message to node 2 goes over, in order (one entry a packet).
    fn data_links(a: &mut Knet, ms: i64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        a.send(at(ms), Destination::All, &totem(0, len), &mut out);
        out.iter().map(|(to, _)| link_to(a, *to, 2)).collect()
    }

    #[test]
    fn each_link_is_pinged_with_its_id_at_its_address_and_its_pongs_bring_only_it_up() {
        let mut a = two_links(1, LinkMode::Passive, [1, 1]);
        let mut out = Vec::new();
        a.handle_timeout(at(0), &mut out);
        let pings: Vec<(SocketAddr, u8)> = out
            .iter()
            .map(|(to, b)| match KnetPacket::parse(b).unwrap().body {
                KnetBody::Ping(p) => (*to, p.link),
                body => panic!("{body:?}"),
            })
            .collect();
        assert_eq!(pings, vec![(on(0, 2), 0), (on(1, 2), 1)]);
        // Node 2 answers each on the link the PING names, at its link address.
        let mut b = two_links(2, LinkMode::Passive, [1, 1]);
        let mut pongs = Vec::new();
        for (_, ping) in &out {
            b.receive(at(1), on(0, 1), ping, &mut pongs);
        }
        let answered: Vec<(SocketAddr, u8, bool)> = pongs
            .iter()
            .map(|(to, bytes)| {
                let p = KnetPacket::parse(bytes).unwrap();
                let KnetBody::Pong(pong) = p.body else {
                    panic!("{p:?}")
                };
                (*to, pong.link, p.header.packet_type == KnetType::Pong)
            })
            .collect();
        assert_eq!(answered, vec![(on(0, 1), 0, true), (on(1, 1), 1, true)]);
        // Only link 1 answers from now on: link 1 comes up, link 0 stays down.
        run(&mut a, &mut b, 0, 2000, &[0]);
        let status = a.host_status(2).unwrap();
        let connected: Vec<(u8, bool)> =
            status.links.iter().map(|l| (l.link, l.connected)).collect();
        assert_eq!(connected, vec![(0, false), (1, true)]);
        assert!(status.reachable);
        assert_eq!(
            events(&mut a),
            vec![
                KnetEvent::LinkUp { host: 2, link: 1 },
                KnetEvent::Links {
                    host: 2,
                    mode: LinkMode::Passive,
                    best: Some((1, 1)),
                    active: 1
                }
            ]
        );
        // A PONG naming a link node 2 does not have is refused, and counts nothing.
        let mut pong = pongs[0].1.clone();
        pong[6] = 5;
        assert_eq!(
            a.receive(at(2000), on(0, 2), &pong, &mut Vec::new()),
            Received::Dropped(KnetDrop::UnknownLink(2, 5))
        );
    }

    #[test]
    fn passive_sends_on_the_best_link_fails_over_without_losing_the_host_and_comes_back() {
        // Equal priorities: the lowest link id carries the data.
        let mut a = two_links(1, LinkMode::Passive, [1, 1]);
        let mut b = two_links(2, LinkMode::Passive, [1, 1]);
        run(&mut a, &mut b, 0, 2000, &[]);
        assert_eq!(data_links(&mut a, 2000, 60), vec![0]);
        // Link 1 preferred.
        let mut a = two_links(1, LinkMode::Passive, [1, 5]);
        let mut b = two_links(2, LinkMode::Passive, [1, 5]);
        run(&mut a, &mut b, 0, 2000, &[]);
        assert_eq!(data_links(&mut a, 2000, 3000), vec![1, 1, 1]);
        events(&mut a);
        // Link 1 is cut: it goes down on its own timers, the data moves to link 0, and the
        // host never stops being reachable.
        let mut down_at = None;
        for ms in (2000..20_000).step_by(10) {
            run(&mut a, &mut b, ms, ms + 10, &[1]);
            assert!(a.link_up(2), "reachable throughout, at {ms} ms");
            if down_at.is_none() && !a.host_status(2).unwrap().links[1].connected {
                down_at = Some(ms);
                break;
            }
        }
        let down_at = down_at.expect("link 1 went down");
        assert_eq!(
            events(&mut a),
            vec![
                KnetEvent::LinkDown { host: 2, link: 1 },
                KnetEvent::Links {
                    host: 2,
                    mode: LinkMode::Passive,
                    best: Some((0, 1)),
                    active: 1
                }
            ]
        );
        assert_eq!(data_links(&mut a, down_at + 10, 60), vec![0]);
        // The message sent over link 0 arrives.
        let mut out = Vec::new();
        let m = totem(0, 100);
        a.send(at(down_at + 20), Destination::All, &m, &mut out);
        assert_eq!(
            b.receive(at(down_at + 21), on(0, 1), &out[0].1, &mut Vec::new()),
            Received::Message(1, m)
        );
        // Healed: link 1 comes back up and carries the data again.
        run(&mut a, &mut b, down_at + 30, down_at + 2500, &[]);
        assert_eq!(data_links(&mut a, down_at + 2500, 60), vec![1]);
        assert!(events(&mut a).contains(&KnetEvent::Links {
            host: 2,
            mode: LinkMode::Passive,
            best: Some((1, 5)),
            active: 1
        }));
        // Both cut: the host becomes unreachable, and nothing is sent to it.
        let mut gone = false;
        for ms in (down_at + 2500..down_at + 30_000).step_by(10) {
            run(&mut a, &mut b, ms, ms + 10, &[0, 1]);
            if !a.link_up(2) {
                gone = true;
                break;
            }
        }
        assert!(gone);
        assert!(events(&mut a).contains(&KnetEvent::Links {
            host: 2,
            mode: LinkMode::Passive,
            best: None,
            active: 0
        }));
    }

    #[test]
    fn active_sends_every_message_on_every_up_link_and_the_receiver_delivers_it_once() {
        let mut a = two_links(1, LinkMode::Active, [1, 1]);
        let mut b = two_links(2, LinkMode::Active, [1, 1]);
        run(&mut a, &mut b, 0, 2000, &[]);
        assert!(events(&mut a).contains(&KnetEvent::Links {
            host: 2,
            mode: LinkMode::Active,
            best: None,
            active: 2
        }));
        let m = totem(0, 3000);
        let mut out = Vec::new();
        a.send(at(2000), Destination::All, &m, &mut out);
        let links: Vec<u8> = out.iter().map(|(to, _)| link_to(&a, *to, 2)).collect();
        assert_eq!(links, vec![0, 0, 0, 1, 1, 1], "every fragment on each link");
        // Interleaved as two paths may deliver them: one whole message, the rest refused.
        let mut delivered = Vec::new();
        let mut refused = Vec::new();
        for i in [0, 3, 1, 4, 2, 5] {
            let from = on(links[i], 1);
            match b.receive(at(2001), from, &out[i].1, &mut Vec::new()) {
                Received::Message(from, got) => delivered.push((from, got)),
                Received::Consumed => {}
                Received::Dropped(why) => refused.push(why),
            }
        }
        assert_eq!(delivered, vec![(1, m)]);
        assert_eq!(
            refused,
            vec![
                KnetDrop::Fragment("duplicate fragment"),
                KnetDrop::Fragment("duplicate fragment"),
                KnetDrop::Duplicate(1),
            ]
        );
        let rx: Vec<u64> = b
            .host_status(1)
            .unwrap()
            .links
            .iter()
            .map(|l| l.stats.rx_data_packets)
            .collect();
        assert_eq!(rx, vec![3, 3]);
    }

    #[test]
    fn rr_sends_each_message_whole_on_the_next_up_link_in_turn() {
        let mut a = two_links(1, LinkMode::Rr, [1, 1]);
        let mut b = two_links(2, LinkMode::Rr, [1, 1]);
        run(&mut a, &mut b, 0, 2000, &[]);
        let sent: Vec<Vec<u8>> = (0..4).map(|i| data_links(&mut a, 2000 + i, 60)).collect();
        assert_eq!(sent, vec![vec![0], vec![1], vec![0], vec![1]]);
        assert_eq!(
            data_links(&mut a, 2010, 3000),
            vec![0, 0, 0],
            "fragments together"
        );
        assert_eq!(data_links(&mut a, 2011, 3000), vec![1, 1, 1]);
        // Every message arrives, whichever link carried it.
        let got = {
            let mut got = Vec::new();
            for i in 0..6 {
                let m = totem(0, 100 + i);
                let mut out = Vec::new();
                a.send(at(2020), Destination::All, &m, &mut out);
                let link = link_to(&a, out[0].0, 2);
                if let Received::Message(_, g) =
                    b.receive(at(2021), on(link, 1), &out[0].1, &mut Vec::new())
                {
                    got.push(g.len());
                }
            }
            got
        };
        assert_eq!(got, vec![100, 101, 102, 103, 104, 105]);
    }

    #[test]
    fn a_seq_num_is_delivered_once_until_the_sender_restarts() {
        let mut a = two_links(1, LinkMode::Passive, [1, 1]);
        let mut b = two_links(2, LinkMode::Passive, [1, 1]);
        run(&mut a, &mut b, 0, 2000, &[]);
        let mut out = Vec::new();
        a.send(at(2000), Destination::All, &totem(0, 60), &mut out);
        let packet = out[0].1.clone();
        assert!(matches!(
            b.receive(at(2001), on(0, 1), &packet, &mut Vec::new()),
            Received::Message(1, _)
        ));
        // The same seq_num over the other link, or again: already delivered.
        for link in [1, 0] {
            assert_eq!(
                b.receive(at(2002), on(link, 1), &packet, &mut Vec::new()),
                Received::Dropped(KnetDrop::Duplicate(1))
            );
        }
        // Data from an address of no link of node 1 is refused.
        assert_eq!(
            b.receive(
                at(2002),
                SocketAddr::from(([10, 9, 9, 9], 5405)),
                &packet,
                &mut Vec::new()
            ),
            Received::Dropped(KnetDrop::WrongAddress(1))
        );
        // Node 1's timed PINGs carry its seq_num (1 now); then one with seq_num 0 says
        // it restarted: its seq_nums count again.
        run(&mut a, &mut b, 2003, 2400, &[]);
        assert_eq!(
            b.receive(at(2400), on(0, 1), &packet, &mut Vec::new()),
            Received::Dropped(KnetDrop::Duplicate(1))
        );
        let mut restarted = two_links(1, LinkMode::Passive, [1, 1]);
        let mut pings = Vec::new();
        restarted.handle_timeout(at(2003), &mut pings);
        b.receive(at(2004), on(0, 1), &pings[0].1, &mut Vec::new());
        assert!(matches!(
            b.receive(at(2005), on(0, 1), &packet, &mut Vec::new()),
            Received::Message(1, _)
        ));
    }

    #[test]
    fn the_duplicate_window_moves_on_with_newer_seq_nums_and_restarts_far_away() {
        let mut w = SeqWindow::new();
        assert!(w.check(10));
        w.set(10);
        assert!(!w.check(10));
        // Within KNET_CBUFFER_SIZE behind the newest: remembered.
        for s in 11..=4000 {
            assert!(w.check(s));
            w.set(s);
        }
        assert!(!w.check(10), "4 000 behind is within the window");
        // Moving on past it forgets the slots it reuses: 10 + 4096 is new.
        assert!(w.check(10 + 4096));
        w.set(10 + 4096);
        assert!(!w.check(10 + 4096));
        // Across the wrap of the 16-bit seq_num.
        let mut w = SeqWindow::new();
        assert!(w.check(u16::MAX - 1));
        w.set(u16::MAX - 1);
        assert!(w.check(2));
        w.set(2);
        assert!(!w.check(u16::MAX - 1));
        assert!(!w.check(2));
        // Far ahead: everything is forgotten, the new one is the reference.
        assert!(w.check(30_000));
        w.set(30_000);
        assert!(w.check(2));
    }

    #[test]
    fn links_beyond_knet_max_link_or_repeated_are_left_out() {
        let links = [0u8, 1, 1, 8, 9]
            .iter()
            .map(|l| (*l, vec![(2, on(*l % 8, 2))]))
            .collect();
        let k = Knet::new(
            KnetConfig::corosync_links(1, links, 1000, &KnetSettings::default()),
            at(0),
        );
        let ids: Vec<u8> = k.config().links.iter().map(|l| l.id).collect();
        assert_eq!(ids, vec![0, 1]);
        let status = k.host_status(2).unwrap();
        assert_eq!(status.links.len(), 2);
        assert!(!status.reachable && status.links.iter().all(|l| l.enabled && !l.connected));
        assert_eq!(k.host_status(1), None, "our own loopback is the caller's");
    }

    #[test]
    fn each_link_keeps_its_own_timers_and_priority_from_its_interface() {
        let mut settings = KnetSettings::default();
        settings.interfaces[1] = KnetInterface {
            ping_interval_ms: Some(100),
            ping_timeout_ms: Some(300),
            pong_count: Some(4),
            priority: Some(20),
        };
        let c = KnetConfig::corosync_links(
            1,
            vec![(0, vec![(2, on(0, 2))]), (1, vec![(2, on(1, 2))])],
            3000,
            &settings,
        );
        let l0 = &c.links[0];
        let l1 = &c.links[1];
        assert_eq!(
            (
                l0.ping_interval.total_millis(),
                l0.ping_timeout.total_millis(),
                l0.pong_count,
                l0.priority
            ),
            (750, 1500, 2, 1)
        );
        assert_eq!(
            (
                l1.ping_interval.total_millis(),
                l1.ping_timeout.total_millis(),
                l1.pong_count,
                l1.priority
            ),
            (100, 300, 4, 20)
        );
        // Link 1 pings every 100 ms, link 0 every 750.
        let mut k = Knet::new(c, at(0));
        let mut counts = [0u32; 2];
        for ms in (0..1500).step_by(10) {
            let mut out = Vec::new();
            k.handle_timeout(at(ms), &mut out);
            for (to, _) in out {
                counts[usize::from(k.link_of(to).unwrap())] += 1;
            }
        }
        assert_eq!(counts, [2, 15]);
    }
}
