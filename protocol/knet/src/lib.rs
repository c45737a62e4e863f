//! `totem-knet`: the knet transport as libknet 1.25 runs it under corosync 3.1.7 with
//! compression off (spec §1.2), sans-IO: datagrams and `now` in, datagrams and link
//! events out. No sockets, no OS clock, no global RNG: the caller owns the socket (totemd's
//! token socket) or the network (the simulator's), and passes time in as
//! [`totem_srp::Instant`], as for `totem_srp::Srp`. Nothing is logged here: link changes
//! come out as [`KnetEvent`]s and refused datagrams as [`KnetDrop`]s, which totemd writes
//! as libknet's `[KNET  ]` lines.
//!
//! What a peer needs from us, and what we do as libknet does it:
//!
//! * **Heartbeat** (`threads_heartbeat.c::_handle_check_each`): a timed PING to every peer
//!   each `knet_ping_interval`, carrying our monotonic time and our data tx seq_num. A PONG
//!   (`threads_rx.c`, case PONG) whose round trip is under the pong timeout counts; the
//!   link comes up on the PONG after `knet_pong_count` counted ones and goes down when no
//!   PONG came for `pong_timeout × backoff + 2 × latency` (the backoff starts at 10 and
//!   drops by one a second to 1: `_adjust_pong_timeouts`).
//! * **Answers**: a PING comes back as a PONG, the packet echoed with our node id; a PMTUD
//!   probe as a 9-byte PMTUD_REPLY (`threads_rx.c`, cases PING and PMTUD). corosync only
//!   accepts our data once its own pings were answered (`src_host->status.reachable`).
//! * **Data** (`threads_tx.c::_parse_recv_from_sock`): one tx seq_num per message, 0
//!   skipped (0 tells receivers "restarted, forget my seq_nums", and our first pings carry
//!   it), a forced untimed PING every `SEQ_MAX / 8` messages, fragments of at most the data
//!   MTU, `bcast` = 1 to every peer whose link is up, 0 to the one target. corosync's filter
//!   (`totemknet.c::dst_host_filter_callback_fn`) reads the totem header's
//!   `target_nodeid`, which the engine sets for the tokens it unicasts and zeroes otherwise.
//!   Our own messages go over knet's loopback link, never the network: the caller hands
//!   them straight back to its engine.
//! * **Receive** (`threads_rx.c::_parse_recv_from_links`): data only from a listed host,
//!   from its link address (port not compared), only once its link is up; fragments are
//!   reassembled per sender (`pckt_defrag`); unicast data for another host is dropped.
//!
//! * **Crypto** ([`crypto`]): this link layer builds and reads clear knet packets; with
//!   crypto on, the caller encrypts every datagram it sends (with a random salt of its own)
//!   and verifies and decrypts every one it receives before [`Knet::receive`] sees it, and
//!   gives the data MTU the crypto overhead ([`KnetConfig::with_crypto`]).
//!
//! Left out, and why: libknet's per-host dedup of seq_nums (`_seq_num_lookup`): with one
//! link knet sends each packet once, and totemsrp discards repeats itself (MCASTs by seq,
//! tokens by token_seq). Path MTU discovery of our own: the data MTU is fixed from the
//! configured MTU (`totem.knet_mtu`, else a 1500-byte path: 1500 − 20 − 8 − 26 = 1446,
//! what libknet settles on over Ethernet), and corosync's probes of us are answered.

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

/// `SEQ_MAX` of libknet's data seq_num (`onwire.h`).
const SEQ_MAX: u16 = u16::MAX;
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

/// The knet keys of corosync.conf that totemd honours (`totem.knet_mtu`, link 0's
/// `interface` keys); `None` means corosync's default ([`KnetConfig::corosync`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnetSettings {
    /// `knet_mtu`.
    pub mtu: Option<u32>,
    /// `interface.knet_ping_interval` (ms).
    pub ping_interval_ms: Option<u32>,
    /// `interface.knet_ping_timeout` (ms).
    pub ping_timeout_ms: Option<u32>,
    /// `interface.knet_pong_count`.
    pub pong_count: Option<u32>,
}

/// Settings of one node's knet (corosync's defaults come from `totemconfig.c`).
#[derive(Debug, Clone)]
pub struct KnetConfig {
    /// Our host id (the nodeid; knet needs it below 65536).
    pub nodeid: u16,
    /// The other hosts: (host id, link 0 address and port).
    pub peers: Vec<(u16, SocketAddr)>,
    /// `knet_ping_interval`.
    pub ping_interval: Duration,
    /// `knet_ping_timeout`.
    pub ping_timeout: Duration,
    /// `knet_pong_count`.
    pub pong_count: u32,
    /// Largest user data in one DATA packet.
    pub data_mtu: usize,
}

impl KnetConfig {
    /// Link 0 as corosync sets it up for a `token` (ms) and the file's knet keys (0 or
    /// absent: the default): `knet_pong_count` 2, `knet_ping_timeout = token / pong_count`,
    /// `knet_ping_interval = token / (2 · pong_count)` (`calc_knet_ping_timers`); the data
    /// MTU for the path MTU `knet_mtu`, else 1500.
    pub fn corosync(
        nodeid: u16,
        peers: Vec<(u16, SocketAddr)>,
        token_ms: u32,
        settings: &KnetSettings,
    ) -> KnetConfig {
        let set = |v: Option<u32>| v.filter(|v| *v > 0);
        let pong_count = set(settings.pong_count).unwrap_or(2);
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        KnetConfig {
            nodeid,
            peers,
            ping_interval: ms(set(settings.ping_interval_ms).unwrap_or(token_ms / (2 * pong_count))),
            ping_timeout: ms(set(settings.ping_timeout_ms).unwrap_or(token_ms / pong_count)),
            pong_count,
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

/// A link changed state (libknet logs these; corosync shows them as `[KNET  ]` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnetEvent {
    /// "host: N link: 0 is up".
    LinkUp(u16),
    /// "host: N link: 0 is down".
    LinkDown(u16),
}

/// Why a received datagram was not used; each is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnetDrop {
    /// Not a knet v1 packet: the codec's error (layer and offset).
    Malformed(String),
    /// `kh_node` is not in the nodelist ("Unable to find source host for this packet").
    UnknownHost(u16),
    /// Data from an address that is not the host's link address.
    WrongAddress(u16),
    /// Data before the host's link is up ("Source host N not reachable yet").
    NotReachable(u16),
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

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnetStats {
    /// DATA packets built (fragments counted one by one, per destination).
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

#[derive(Debug)]
struct Link {
    nodeid: u16,
    addr: SocketAddr,
    up: bool,
    received_pongs: u32,
    ping_last: Option<Instant>,
    pong_last: Option<Instant>,
    /// Mean round trip (µs), as libknet's `status.latency`.
    latency_us: u64,
    samples: u64,
    backoff: u64,
}

/// One node's knet.
#[derive(Debug)]
pub struct Knet {
    config: KnetConfig,
    links: Vec<Link>,
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

/// A datagram to send: destination and bytes.
pub type Outgoing = (SocketAddr, Vec<u8>);

impl Knet {
    /// A knet with every link down; the first pings are due at once (`now`), as libknet
    /// pings a link the moment it is enabled (its heartbeat thread finds `ping_last`
    /// unset), not one interval later.
    pub fn new(mut config: KnetConfig, now: Instant) -> Knet {
        config.data_mtu = config.data_mtu.max(MIN_DATA_MTU);
        let links = config
            .peers
            .iter()
            .filter(|(id, _)| *id != config.nodeid)
            .map(|(nodeid, addr)| Link {
                nodeid: *nodeid,
                addr: *addr,
                up: false,
                received_pongs: 0,
                ping_last: None,
                pong_last: None,
                latency_us: 0,
                samples: 0,
                backoff: PONG_TIMEOUT_BACKOFF,
            })
            .collect();
        Knet {
            config,
            links,
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

    /// Is the link to `nodeid` up?
    pub fn link_up(&self, nodeid: u16) -> bool {
        self.links.iter().any(|l| l.nodeid == nodeid && l.up)
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

    fn ping(&self, now: Instant, timed: bool) -> Vec<u8> {
        // Only we read it back, from the PONG.
        let time = PingTime::from_micros(now.total_micros()).to_bytes();
        KnetPacket {
            header: self.header(KnetType::Ping),
            body: KnetBody::Ping(KnetPing {
                link: 0,
                time,
                seq_num: self.tx_seq_num,
                timed: u8::from(timed),
            }),
            trailing: &[],
        }
        .to_bytes()
    }

    /// Frames one totem message for `destination` into `out`: nothing for ourselves alone
    /// (the loopback link is the caller's), one packet or its fragments per up link.
    pub fn send(
        &mut self,
        now: Instant,
        destination: Destination,
        message: &[u8],
        out: &mut Vec<Outgoing>,
    ) {
        let targets: Vec<SocketAddr> = self
            .links
            .iter()
            .filter(|l| l.up && destination_includes(destination, l.nodeid))
            .map(|l| l.addr)
            .collect();
        if targets.is_empty() || message.is_empty() || message.len() > KNET_MAX_PACKET_SIZE {
            return;
        }
        self.tx_seq_num = self.tx_seq_num.wrapping_add(1);
        if self.tx_seq_num == 0 {
            self.tx_seq_num = 1;
        }
        if self.tx_seq_num % (SEQ_MAX / 8) == 0 {
            // Keeps hosts that see little of our traffic in step with our seq_num.
            let ping = self.ping(now, false);
            for l in &mut self.links {
                out.push((l.addr, ping.clone()));
                self.stats.pings_sent += 1;
            }
        }
        let mtu = self.config.data_mtu;
        let pieces: Vec<&[u8]> = message.chunks(mtu).collect();
        // At most 255 pieces: `new` keeps the data MTU at MIN_DATA_MTU or more.
        let frag_num = u8::try_from(pieces.len()).unwrap_or(u8::MAX);
        let bcast = u8::from(matches!(destination, Destination::All));
        for (i, piece) in pieces.iter().enumerate() {
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
            for addr in &targets {
                out.push((*addr, bytes.clone()));
                self.stats.data_sent += 1;
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
        let host = packet.header.node;
        let Some(index) = self.links.iter().position(|l| l.nodeid == host) else {
            return Received::Dropped(KnetDrop::UnknownHost(host));
        };
        match packet.body {
            KnetBody::Ping(ping) => {
                // Answered to the link address, as libknet sends it (not the source).
                let pong = KnetPacket {
                    header: self.header(KnetType::Pong),
                    body: KnetBody::Pong(ping),
                    trailing: packet.trailing,
                }
                .to_bytes();
                out.push((self.links[index].addr, pong));
                self.stats.replies_sent += 1;
                Received::Consumed
            }
            KnetBody::Pong(pong) => {
                self.pong(now, index, &pong);
                Received::Consumed
            }
            KnetBody::Pmtud(probe) => {
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
                out.push((self.links[index].addr, reply));
                self.stats.replies_sent += 1;
                Received::Consumed
            }
            KnetBody::PmtudReply(_) | KnetBody::Unknown(_) => Received::Consumed,
            KnetBody::Data(data) => self.data(index, from, &data),
        }
    }

    fn data(&mut self, index: usize, from: SocketAddr, data: &KnetData<'_>) -> Received {
        let link = &self.links[index];
        let host = link.nodeid;
        if link.addr.ip() != from.ip() {
            return Received::Dropped(KnetDrop::WrongAddress(host));
        }
        if !link.up {
            return Received::Dropped(KnetDrop::NotReachable(host));
        }
        if data.compress != 0 {
            return Received::Dropped(KnetDrop::Unsupported("compressed data"));
        }
        if data.channel != 0 {
            return Received::Dropped(KnetDrop::Unsupported("a channel other than 0"));
        }
        let message = match self.defrag.feed(host, data, ()) {
            Defragmented::Whole => data.payload.to_vec(),
            Defragmented::Complete { data, .. } => data,
            Defragmented::Pending => return Received::Consumed,
            Defragmented::Dropped(why) => return Received::Dropped(KnetDrop::Fragment(why)),
        };
        if data.bcast == 0 {
            // corosync's filter: a unicast is for the totem header's target_nodeid.
            let target = totem_wire::srp::Header::parse(&message)
                .map(|h| h.target_nodeid)
                .unwrap_or(0);
            if target != u32::from(self.config.nodeid) {
                return Received::Dropped(KnetDrop::NotForUs(host));
            }
        }
        Received::Message(host, message)
    }

    fn pong(&mut self, now: Instant, index: usize, pong: &KnetPing) {
        let sent = pong.ping_time().total_micros();
        let rtt = u64::try_from(now.total_micros().saturating_sub(sent)).unwrap_or(u64::MAX);
        let timeout_us = self.config.ping_timeout.total_micros();
        let pong_count = self.config.pong_count;
        let link = &mut self.links[index];
        link.pong_last = Some(now);
        if rtt > timeout_us {
            // "has higher latency than pong_timeout. Discarding".
            return;
        }
        self.stats.pongs_received += 1;
        link.samples = (link.samples + 1).min(2048);
        link.latency_us = (link.latency_us * (link.samples - 1) + rtt) / link.samples;
        if !link.up && link.latency_us < pong_timeout_adj(timeout_us, link) {
            if link.received_pongs >= pong_count {
                link.up = true;
                self.events.push_back(KnetEvent::LinkUp(link.nodeid));
            } else {
                link.received_pongs += 1;
            }
        }
    }

    /// Sends due pings, takes down links whose PONGs stopped, and lowers the backoff once
    /// a second.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        while now >= self.backoff_at {
            for l in &mut self.links {
                l.backoff = l.backoff.saturating_sub(1).max(1);
            }
            self.backoff_at += Duration::from_millis(1000);
        }
        let interval = self.config.ping_interval;
        let timeout_us = self.config.ping_timeout.total_micros();
        let ping = self.ping(now, true);
        for l in &mut self.links {
            if l.ping_last.is_none_or(|t| now >= t + interval) {
                out.push((l.addr, ping.clone()));
                l.ping_last = Some(now);
                self.stats.pings_sent += 1;
            }
            if let Some(last) = l.pong_last {
                let silent = (now - last).total_micros();
                if silent >= pong_timeout_adj(timeout_us, l) {
                    // _link_down: counting starts again.
                    l.received_pongs = 0;
                    l.pong_last = None;
                    l.backoff = PONG_TIMEOUT_BACKOFF;
                    if l.up {
                        l.up = false;
                        self.events.push_back(KnetEvent::LinkDown(l.nodeid));
                    }
                }
            }
        }
    }

    /// When [`Knet::handle_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout_us = self.config.ping_timeout.total_micros();
        let mut next = self.backoff_at;
        for l in &self.links {
            let ping = l
                .ping_last
                .map_or(self.started, |t| t + self.config.ping_interval);
            next = next.min(ping);
            if let Some(last) = l.pong_last {
                let adj = pong_timeout_adj(timeout_us, l);
                next = next.min(last + Duration::from_micros(adj));
            }
        }
        Some(next)
    }
}

/// `pong_timeout_adj` (µs): `pong_timeout × backoff + latency × 2`.
fn pong_timeout_adj(timeout_us: u64, link: &Link) -> u64 {
    timeout_us
        .saturating_mul(link.backoff)
        .saturating_add(link.latency_us * PONG_TIMEOUT_LAT_MUL)
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
                c.ping_interval.total_millis(),
                c.ping_timeout.total_millis(),
                c.pong_count,
                c.data_mtu,
            )
        };
        // token 3000 ⇒ 750 / 1500 ms (spec §1.2); 1500 − 20 − 8 − 26.
        assert_eq!(derived(KnetSettings::default()), (750, 1500, 2, 1446));
        let pong_count = KnetSettings {
            pong_count: Some(3),
            mtu: Some(9000),
            ..KnetSettings::default()
        };
        assert_eq!(derived(pong_count), (500, 1000, 3, 8946));
        let explicit = KnetSettings {
            ping_interval_ms: Some(200),
            ping_timeout_ms: Some(900),
            pong_count: Some(0),
            mtu: None,
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
            Some(at(5) + k.config.ping_interval),
            "{:?}",
            k.config.ping_interval
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
        assert_eq!(a.poll_event(), Some(KnetEvent::LinkUp(2)));
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
        let _ = a.poll_event();
        let mut down_at = None;
        for ms in (2000..40_000).step_by(50) {
            a.handle_timeout(at(ms), &mut Vec::new());
            if a.poll_event() == Some(KnetEvent::LinkDown(2)) {
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
        k.links[0].up = true;
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
        k.links[0].up = true;
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
}
