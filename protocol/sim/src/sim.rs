//! The simulated cluster: [`Node`]s on a seeded network, virtual time, scripted and random
//! faults, CPG clients, and a trace of everything that happened.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use serde::Serialize;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use totem_cpg::{
    ClientEvent, ConnId, CpgAddress, CpgError, EvsConnId, EvsError, EvsEvent, EvsGroup, LibReply,
    Node, NodeConfig, NodeEvent, NodeOutput, TotempgNote, ZeroCopyMemory,
};
use totem_knet::crypto::{KnetCrypto, SALT_SIZE};
use totem_knet::{Knet, KnetEvent, KnetSettings, KnetStats, Received};
use totem_srp::fault::{FaultConfig, FaultStats, Faults};
use totem_srp::{ConfigurationKind, Destination, Duration, Instant, SrpConfig, SrpConfigBuilder};
use totem_votequorum::{VoteConfig, Votequorum};
use totem_wire::ipc::cpg::{ZcHead, ZC_SERVER_ADDRESS_OFFSET};
use totem_wire::srp::RingId;

use crate::daemon;
use crate::pcap::PcapWriter;
use crate::rng::Rng;

/// The network's behaviour, drawn from the seed or set by a test (TigerBeetle's packet
/// simulator vocabulary).
#[derive(Debug, Clone, Serialize)]
pub struct NetworkOptions {
    /// Shortest one-way delay (µs).
    pub one_way_delay_min_us: u64,
    /// Mean one-way delay (µs); delays are uniform in [min, 2·mean − min].
    pub one_way_delay_mean_us: u64,
    /// Probability that a datagram is lost.
    pub packet_loss_probability: f64,
    /// Probability that a datagram is delivered twice.
    pub packet_replay_probability: f64,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            one_way_delay_min_us: 50,
            one_way_delay_mean_us: 150,
            packet_loss_probability: 0.0,
            packet_replay_probability: 0.0,
        }
    }
}

/// Timing of the simulated cluster's ring (corosync.conf `totem { }`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    /// `token` (ms), before the coefficient.
    pub token_ms: u32,
    /// `token_coefficient` (ms).
    pub token_coefficient_ms: u32,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            token_ms: 1000,
            token_coefficient_ms: 0,
        }
    }
}

/// One thing that happened, for checkers and people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A node's daemon started (with the ring seq it loaded).
    Start {
        /// Node.
        node: u32,
        /// Loaded ring seq.
        ring_seq: u64,
    },
    /// A node crashed (SIGKILL).
    Crash {
        /// Node.
        node: u32,
    },
    /// A node stopped being scheduled until `until_us`.
    Pause {
        /// Node.
        node: u32,
        /// Virtual time it resumes (µs).
        until_us: i64,
    },
    /// Links were cut (directed pairs).
    Cut {
        /// (from, to) pairs.
        links: Vec<(u32, u32)>,
    },
    /// Every link restored.
    Heal,
    /// knet's link from a node to a host went up or down (libknet's "host: N link: 0 is
    /// up" / "is down"; knet transport only).
    Link {
        /// Node.
        node: u32,
        /// The host at the other end.
        peer: u32,
        /// Up, or down.
        up: bool,
    },
    /// A totem configuration change on a node.
    Totem {
        /// Node.
        node: u32,
        /// `transitional` or `regular`.
        kind: &'static str,
        /// Ring.
        ring: String,
        /// Members.
        members: Vec<u32>,
        /// Left.
        left: Vec<u32>,
        /// Joined.
        joined: Vec<u32>,
    },
    /// Sync finished on a node.
    SyncCompleted {
        /// Node.
        node: u32,
        /// Ring.
        ring: String,
    },
    /// A client's CPG call.
    Call {
        /// Node.
        node: u32,
        /// Connection.
        conn: ConnId,
        /// `join`, `leave`, `mcast`, `finalize`.
        call: &'static str,
        /// Message id for mcast (`node.conn.seq`).
        message: Option<String>,
        /// `CS_OK` or the error.
        result: String,
    },
    /// A confchg callback.
    Confchg {
        /// Node.
        node: u32,
        /// Connection.
        conn: ConnId,
        /// Group.
        group: String,
        /// Members as (nodeid, pid).
        members: Vec<(u32, u32)>,
        /// Left as (nodeid, pid, reason).
        left: Vec<(u32, u32, String)>,
        /// Joined as (nodeid, pid, reason).
        joined: Vec<(u32, u32, String)>,
    },
    /// totempg threw away (part of) a message instead of delivering it: a continuation whose
    /// start this node never had (`totempg_deliver_fn`'s throw-away mode), or a left node's
    /// unfinished message (`app_confchg_fn`).
    TotempgDiscard {
        /// Node.
        node: u32,
        /// The message's sender.
        from_node: u32,
        /// Bytes thrown away.
        bytes: usize,
        /// Why.
        reason: &'static str,
        /// The regular ring the node was on.
        ring: String,
    },
    /// totempg put a message together from pieces that came on two rings (the sender cut it
    /// across a ring change).
    TotempgAcrossRings {
        /// Node.
        node: u32,
        /// The message's sender.
        from_node: u32,
        /// The regular ring of the first piece.
        first_ring: String,
        /// The regular ring of the last piece.
        last_ring: String,
    },
    /// A client's EVS call (docs/evs.md; our extension).
    EvsCall {
        /// Node.
        node: u32,
        /// EVS connection (its own id space, `incarnation << 16 | connection`).
        conn: EvsConnId,
        /// `connect`, `join`, `leave`, `mcast_joined`, `mcast_groups`, `finalize`.
        call: &'static str,
        /// The keys the call named (join, leave, mcast_groups), NULs trimmed from the end,
        /// escaped as CPG names are.
        groups: Vec<String>,
        /// Message id for mcasts (`node.conn.seq`).
        message: Option<String>,
        /// `CS_OK` or the error.
        result: String,
    },
    /// An EVS confchg callback: a totem configuration, node-level (docs/evs.md §5).
    EvsConfchg {
        /// Node.
        node: u32,
        /// EVS connection.
        conn: EvsConnId,
        /// `transitional` or `regular`.
        kind: &'static str,
        /// Ring.
        ring: String,
        /// Members.
        members: Vec<u32>,
        /// Left.
        left: Vec<u32>,
        /// Joined.
        joined: Vec<u32>,
    },
    /// An EVS deliver callback.
    EvsDeliver {
        /// Node.
        node: u32,
        /// EVS connection.
        conn: EvsConnId,
        /// Sender node (the only sender identity EVS gives, EVS-CODE-5).
        from_node: u32,
        /// Message id (the payload).
        message: String,
        /// The ring the delivering node was on.
        ring: String,
    },
    /// A deliver callback.
    Deliver {
        /// Node.
        node: u32,
        /// Connection.
        conn: ConnId,
        /// Group.
        group: String,
        /// Sender node.
        from_node: u32,
        /// Sender pid.
        from_pid: u32,
        /// Message id (the payload).
        message: String,
        /// The ring the delivering node was on.
        ring: String,
    },
}

/// A trace entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceEntry {
    /// Virtual time (µs).
    pub time_us: i64,
    /// What happened.
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SimStats {
    /// Datagrams sent.
    pub datagrams: u64,
    /// Lost by the network.
    pub lost: u64,
    /// Delivered twice.
    pub replayed: u64,
    /// Dropped by a cut link.
    pub cut: u64,
    /// Dropped because the receiving node's socket buffer was full ([`RX_BURST`]).
    pub overflowed: u64,
    /// Sends the sending node's kernel refused (EAGAIN: its socket's send buffer was full,
    /// see [`SendBuffer`]); such a datagram never reaches the wire.
    pub send_failed: u64,
    /// Simulated node-microseconds (alive nodes × elapsed).
    pub node_micros: u128,
    /// The run hit the datagram budget and stopped early.
    pub budget_exhausted: bool,
}

/// Datagrams one run may send: a livelock (a retransmission storm, a token loop) stops the
/// run with a violation instead of exhausting the machine.
pub(crate) const DATAGRAM_BUDGET: u64 = 5_000_000;

/// A node reads (and handles) at most one datagram per this many µs on average: a corosync
/// process is one thread on one socket, so a burst beyond what it can read piles up in the
/// kernel's receive buffer.
pub(crate) const RX_COST_US: i64 = 10;

/// Datagrams the receive buffer holds beyond what the node keeps up with. totemudpu asks for
/// `SO_RCVBUF` = `MCAST_SOCKET_BUFFER_SIZE`, which the kernel caps at `net.core.rmem_max`
/// (212992 bytes by default): a few hundred small datagrams at their true size. Beyond it the
/// kernel drops. Ordinary traffic never comes near (a sweep that overflows nowhere replays
/// exactly as without the model); a JOIN storm does (known-failures.txt, family B).
pub(crate) const RX_BURST: i64 = 256;

/// A node's socket send buffers, the kernel's `SO_SNDBUF` of a nonblocking UDP socket: a
/// datagram occupies its bytes until the stack below has passed it on, which happens at
/// `drain_bytes_per_ms`; a send that finds no room fails with EAGAIN and is lost to that
/// destination, as totemd's and corosync's sendmsg errors are ("non-critical"). totemudpu
/// has one sending socket per member for multicasts (`totemudpu_create_sending_socket`) and
/// sends tokens from its token socket, so each of those has a buffer of its own. Off unless a test sets it: every run without it
/// replays exactly as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SendBuffer {
    /// Capacity in bytes.
    pub bytes: u64,
    /// How fast the bytes leave the buffer.
    pub drain_bytes_per_ms: u64,
}

/// Which of a node's sockets a datagram leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Socket {
    /// The token socket: unicasts (ORF and commit tokens).
    Token,
    /// The member's sending socket: multicasts.
    Member,
}

/// One send buffer's fill, as of `at`.
#[derive(Debug, Clone, Copy)]
struct SendFill {
    bytes: u64,
    at: Instant,
}

#[derive(Debug)]
struct SimNode {
    node: Option<Node>,
    /// Receive capacity left (µs of reading, up to `RX_BURST * RX_COST_US`), as of `rx_at`.
    rx_credit: i64,
    rx_at: Instant,
    stored_ring_seq: u64,
    paused_until: Option<Instant>,
    conns: BTreeMap<ConnId, u32>,
    sends: BTreeMap<ConnId, u64>,
    /// EVS connections (internal ids) and their next message seq.
    evs_sends: BTreeMap<EvsConnId, u64>,
    /// Daemon starts so far: client ids of a restarted daemon must not repeat earlier ones.
    incarnation: u64,
    /// IPC clients (internal conn id): the events waiting on their event channel.
    ipc: BTreeMap<ConnId, VecDeque<Vec<u8>>>,
    /// libevs IPC clients (internal conn id): the events waiting on their event channel.
    evs_ipc: BTreeMap<EvsConnId, VecDeque<Vec<u8>>>,
    /// Zero-copy mappings of this daemon.
    zero_copy: SimZeroCopy,
    /// totemd's `--drop-*` (corosync's `TEST_DROP_*`): received datagrams this node's
    /// daemon throws away before its engine sees them. Kept across restarts, as a command
    /// line is.
    receive_faults: Faults,
    /// Its sockets' send buffers, if modelled ([`Sim::set_send_buffer`]), and their fill per
    /// destination.
    send_buffer: Option<SendBuffer>,
    send_fill: BTreeMap<(u32, Socket), SendFill>,
    /// Sends refused so far (totemd's "send errors").
    send_failed: u64,
    /// The daemon's knet link layer (knet transport only), new with each start.
    knet: Option<Knet>,
    /// The daemon's votequorum, new with each start.
    votequorum: Option<Votequorum>,
    /// The views votequorum handed the quorum service (`quorum_api_set_quorum`) since the
    /// daemon started, the last [`QUORUM_NOTES_MAX`]: what its quorum trackers are sent
    /// (`send_library_notification`), read by the conformance runner's simulated libquorum.
    quorum_notes: QuorumNotes,
}

/// How many quorum views (and configurations) a node keeps for its simulated clients.
pub const QUORUM_NOTES_MAX: usize = 1024;

/// A log numbered from the daemon's start, keeping its last [`QUORUM_NOTES_MAX`] items.
#[derive(Debug, Clone)]
pub struct NoteLog<T> {
    /// The number of `items[0]`.
    pub first: u64,
    /// The items, oldest first.
    pub items: std::collections::VecDeque<T>,
}

impl<T> Default for NoteLog<T> {
    fn default() -> Self {
        NoteLog {
            first: 0,
            items: std::collections::VecDeque::new(),
        }
    }
}

impl<T> NoteLog<T> {
    fn push(&mut self, item: T) {
        if self.items.len() == QUORUM_NOTES_MAX {
            self.items.pop_front();
            self.first += 1;
        }
        self.items.push_back(item);
    }

    /// The number the next item will get.
    pub fn next(&self) -> u64 {
        self.first + self.items.len() as u64
    }

    /// Item number `i`, if still kept.
    pub fn get(&self, i: u64) -> Option<&T> {
        i.checked_sub(self.first)
            .and_then(|k| self.items.get(usize::try_from(k).ok()?))
    }
}

/// What a daemon incarnation's services were told since its start, for the conformance
/// runner's simulated client libraries.
#[derive(Debug, Clone, Default)]
pub struct QuorumNotes {
    /// The views votequorum handed the quorum service (`quorum_api_set_quorum`).
    pub views: NoteLog<totem_votequorum::QuorumView>,
    /// The totem configurations (left, joined), as `main.c::confchg_fn` gets them.
    pub configurations: NoteLog<(Vec<u32>, Vec<u32>)>,
}

impl SimNode {
    /// Datagrams its receive buffer holds beyond what it keeps up with: udpu's socket
    /// ([`RX_BURST`]), or libknet's bigger one.
    fn rx_burst(&self) -> i64 {
        if self.knet.is_some() {
            daemon::KNET_RX_BURST
        } else {
            RX_BURST
        }
    }
}

/// A file in the simulated `/dev/shm`, shared by the client that created it and the daemon
/// that mapped it (both "mmap" the same bytes).
pub type SharedFile = Rc<RefCell<Vec<u8>>>;

/// The simulated `/dev/shm`: files by path, until the daemon unlinks them.
pub type SharedMemory = Rc<RefCell<BTreeMap<Vec<u8>, SharedFile>>>;

/// A daemon's zero-copy mappings: ZC_ALLOC opens and unlinks the client's file
/// (`message_handler_req_lib_cpg_zc_alloc`), the mapping lives on until ZC_FREE.
#[derive(Debug, Default)]
struct SimZeroCopy {
    files: SharedMemory,
    maps: BTreeMap<(ConnId, u64), SharedFile>,
    next_token: u64,
}

impl ZeroCopyMemory for SimZeroCopy {
    fn map(&mut self, conn: ConnId, path: &[u8], map_size: u64) -> Result<u64, String> {
        let file = self
            .files
            .borrow_mut()
            .remove(path)
            .ok_or_else(|| format!("{}: no such file", String::from_utf8_lossy(path)))?;
        file.borrow_mut().resize(map_size as usize, 0);
        self.next_token += 1;
        // The token goes to `server_address` in the shared buffer.
        let token = 0x5a00_0000_0000 | self.next_token;
        let at = ZC_SERVER_ADDRESS_OFFSET;
        if let Some(slot) = file.borrow_mut().get_mut(at..at + 8) {
            slot.copy_from_slice(&ZcHead::server_address_bytes(token));
        }
        self.maps.insert((conn, token), file);
        Ok(token)
    }
    fn contents(&self, conn: ConnId, token: u64) -> Option<Vec<u8>> {
        self.maps.get(&(conn, token)).map(|f| f.borrow().clone())
    }
    fn unmap(&mut self, conn: ConnId, token: u64) -> bool {
        self.maps.remove(&(conn, token)).is_some()
    }
    fn release(&mut self, conn: ConnId) {
        self.maps.retain(|(c, _), _| *c != conn);
    }
}

/// Why an IPC call to a simulated daemon failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcError {
    /// The daemon is not running (or was restarted since the client connected).
    Disconnected,
    /// The daemon is stopped (SIGSTOP): the call would block until it runs again.
    Stopped,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    id: u64,
    from: u32,
    to: u32,
    bytes: Vec<u8>,
    /// knet's loopback link: a message of the daemon to itself, handed back in memory (not
    /// a datagram); it dies with the daemon incarnation that sent it.
    loopback: Option<u64>,
}

/// A deterministic simulated cluster.
pub struct Sim {
    now: Instant,
    rng: Rng,
    options: NetworkOptions,
    timings: Timings,
    ids: Vec<u32>,
    nodes: BTreeMap<u32, SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    next_id: u64,
    cut: BTreeSet<(u32, u32)>,
    trace: Vec<TraceEntry>,
    stats: SimStats,
    capture: Option<PcapWriter>,
    /// Each node's last regular configuration, as its event stream says: deliveries are
    /// labelled with the ring they were delivered in (old-ring messages come out of
    /// recovery before the transitional configuration).
    delivery_ring: BTreeMap<u32, RingId>,
    /// `SrpConfig::seqno_start` of every node started from now on.
    seqno_start: u32,
    /// The transport is knet with these settings ([`Sim::use_knet`]); udpu without.
    knet: Option<KnetSettings>,
    /// knet crypto of every node ([`Sim::use_knet_crypto`]), and nodes with another one.
    knet_crypto: Option<KnetCrypto>,
    knet_crypto_for: Vec<(u32, KnetCrypto)>,
    /// Datagrams a node's knet crypto refused (wrong key, or not encrypted).
    crypto_dropped: u64,
    /// votequorum's configuration of every node started from now on.
    vote: VoteConfig,
}

impl Sim {
    /// A cluster of `ids` (the nodelist), none started yet.
    pub fn new(seed: u64, ids: &[u32], options: NetworkOptions, timings: Timings) -> Sim {
        Sim {
            now: Instant::ZERO,
            rng: Rng::new(seed),
            options,
            timings,
            ids: ids.to_vec(),
            nodes: ids
                .iter()
                .map(|id| {
                    (
                        *id,
                        SimNode {
                            node: None,
                            rx_credit: RX_BURST * RX_COST_US,
                            rx_at: Instant::ZERO,
                            stored_ring_seq: 0,
                            paused_until: None,
                            conns: BTreeMap::new(),
                            sends: BTreeMap::new(),
                            evs_sends: BTreeMap::new(),
                            incarnation: 0,
                            ipc: BTreeMap::new(),
                            evs_ipc: BTreeMap::new(),
                            zero_copy: SimZeroCopy::default(),
                            receive_faults: Faults::new(FaultConfig::default()),
                            send_buffer: None,
                            send_fill: BTreeMap::new(),
                            send_failed: 0,
                            knet: None,
                            votequorum: None,
                            quorum_notes: QuorumNotes::default(),
                        },
                    )
                })
                .collect(),
            queue: BinaryHeap::new(),
            next_id: 0,
            cut: BTreeSet::new(),
            trace: Vec::new(),
            stats: SimStats::default(),
            capture: None,
            delivery_ring: BTreeMap::new(),
            seqno_start: 0,
            knet: None,
            knet_crypto: None,
            knet_crypto_for: Vec::new(),
            crypto_dropped: 0,
            vote: daemon::vote_config(ids),
        }
    }

    /// Runs the nodes started from now on over knet, as totemd runs `transport: knet` with
    /// these keys: every datagram goes through each node's `totem_knet` link layer (pings
    /// and pongs, links up and down on its timers, fragments of at most the data MTU), totem
    /// packs up to knet's netmtu, a node's own messages come back over the loopback link,
    /// and receive buffers are libknet's.
    pub fn use_knet(&mut self, settings: KnetSettings) {
        self.knet = Some(settings);
    }

    /// Encrypts the knet traffic of the nodes started from now on with `crypto`, as totemd
    /// does with `crypto_cipher`/`crypto_hash` on (`protocol/daemon/src/link_crypto.rs`):
    /// every datagram sealed with a salt from the run's seeded generator, every one received
    /// verified and decrypted before knet reads it, the data MTU lowered by the overhead.
    /// Needs [`Sim::use_knet`].
    pub fn use_knet_crypto(&mut self, crypto: KnetCrypto) {
        self.knet_crypto = Some(crypto);
    }

    /// Node `id` runs `crypto` instead of [`Sim::use_knet_crypto`]'s (another key: it cannot
    /// read the others, nor they it).
    pub fn use_knet_crypto_for(&mut self, id: u32, crypto: KnetCrypto) {
        self.knet_crypto_for.retain(|(n, _)| *n != id);
        self.knet_crypto_for.push((id, crypto));
    }

    /// Datagrams the nodes' knet crypto refused so far.
    pub fn crypto_dropped(&self) -> u64 {
        self.crypto_dropped
    }

    /// votequorum's configuration of the nodes started from now on (default: a vote each,
    /// the nodelist's total expected).
    pub fn set_vote_config(&mut self, config: VoteConfig) {
        self.vote = config;
    }

    /// Records every datagram into a pcap that `totem-inspect` decodes.
    pub fn capture_to(&mut self, writer: PcapWriter) {
        self.capture = Some(writer);
    }

    /// The capture, finished.
    pub fn take_capture(&mut self) -> Option<PcapWriter> {
        self.capture.take()
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Everything recorded.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// The nodelist.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The node, if running.
    pub fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(&id).and_then(|n| n.node.as_ref())
    }

    /// Nodes running now.
    pub fn alive(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.node.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn record(&mut self, event: TraceEvent) {
        self.trace.push(TraceEntry {
            time_us: self.now.total_micros(),
            event,
        });
    }

    fn srp_config(&self) -> SrpConfig {
        let mut b = SrpConfigBuilder::new(self.ids.len() as u32);
        b.token_ms = Some(self.timings.token_ms);
        b.token_coefficient_ms = Some(self.timings.token_coefficient_ms);
        b.seqno_start = Some(self.seqno_start);
        b.build()
            .unwrap_or_else(|_| SrpConfig::defaults(self.ids.len() as u32))
    }

    // ---- scripted actions ----------------------------------------------------------------

    /// Starts (or restarts) a node's daemon with the ring seq it persisted.
    pub fn start(&mut self, id: u32) {
        let votequorum = Votequorum::new(self.vote.clone(), id);
        let srp = self.srp_config();
        let crypto = crypto_of(&self.knet_crypto, &self.knet_crypto_for, id);
        let knet = self
            .knet
            .map(|s| daemon::knet(id, &self.ids, srp.token_ms, &s, crypto, self.now));
        let config = NodeConfig {
            nodeid: id,
            srp,
            net_mtu: if knet.is_some() {
                daemon::KNET_NET_MTU
            } else {
                1500
            },
            stored_ring_seq: self.nodes.get(&id).map_or(0, |n| n.stored_ring_seq),
            // votequorum_exec_init_fn's NODEINFO, as totemd's start-up sets it.
            nodeinfo: votequorum.own_nodeinfo(),
        };
        let ring_seq = config.stored_ring_seq;
        let mut node = Node::new(config, self.now);
        node.record_totempg_notes();
        if let Some(n) = self.nodes.get_mut(&id) {
            n.node = Some(node);
            n.knet = knet;
            n.votequorum = Some(votequorum);
            n.quorum_notes = QuorumNotes::default();
            n.paused_until = None;
            // A new process, a new socket with an empty buffer.
            n.rx_credit = n.rx_burst() * RX_COST_US;
            n.rx_at = self.now;
            n.conns.clear();
            n.ipc.clear();
            n.evs_ipc.clear();
            n.zero_copy.maps.clear();
            n.incarnation += 1;
        }
        self.record(TraceEvent::Start { node: id, ring_seq });
        self.drain(id);
    }

    /// Where message and token sequence numbers start on every ring of the nodes started
    /// from now on (totemd's `--start-seq-near-rollover`, corosync's `SEQNO_START_MSG`).
    pub fn set_seqno_start(&mut self, start: u32) {
        self.seqno_start = start;
    }

    /// Node `id`'s daemon drops received tokens, commit tokens and MCASTs as `config` says
    /// (totemd's `--drop-*` flags); the draws follow that node's traffic only.
    pub fn set_receive_faults(&mut self, id: u32, config: FaultConfig) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.receive_faults = Faults::new(config);
        }
    }

    /// Models node `id`'s socket send buffers (`None`: unbounded, the default): sends that
    /// find them full fail as the kernel's EAGAIN does. Kept across restarts.
    pub fn set_send_buffer(&mut self, id: u32, buffer: Option<SendBuffer>) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.send_buffer = buffer;
            n.send_fill.clear();
        }
    }

    /// Sends node `id`'s kernel refused so far ([`Sim::set_send_buffer`]).
    pub fn send_failures(&self, id: u32) -> u64 {
        self.nodes.get(&id).map_or(0, |n| n.send_failed)
    }

    /// Is node `id` quorate, as its votequorum says (`None`: not running)? The same state
    /// totemd's quorum service answers GETQUORATE from.
    pub fn quorate(&self, id: u32) -> Option<bool> {
        self.votequorum(id).map(|vq| vq.quorate)
    }

    /// The quorum views node `id`'s running daemon handed its quorum service, with the
    /// daemon's incarnation (a client of an earlier one lost its connection).
    pub fn quorum_notes(&self, id: u32) -> Option<(u64, &QuorumNotes)> {
        let n = self.nodes.get(&id)?;
        n.node.as_ref()?;
        Some((n.incarnation, &n.quorum_notes))
    }

    /// Node `id`'s votequorum (`None`: not running).
    pub fn votequorum(&self, id: u32) -> Option<&Votequorum> {
        self.nodes.get(&id).and_then(|n| n.votequorum.as_ref())
    }

    /// Is node `id`'s knet link to `peer` up (`None`: not running, or not knet)?
    pub fn knet_link_up(&self, id: u32, peer: u32) -> Option<bool> {
        let knet = self.nodes.get(&id)?.knet.as_ref()?;
        Some(knet.link_up(u16::try_from(peer).ok()?))
    }

    /// Node `id`'s knet counters (`None`: not running, or not knet).
    pub fn knet_stats(&self, id: u32) -> Option<KnetStats> {
        Some(self.nodes.get(&id)?.knet.as_ref()?.stats)
    }

    /// What node `id`'s daemon dropped so far by [`Sim::set_receive_faults`].
    pub fn receive_fault_stats(&self, id: u32) -> Option<FaultStats> {
        self.nodes.get(&id).map(|n| n.receive_faults.stats)
    }

    /// Kills a node's daemon; its clients die with it.
    pub fn crash(&mut self, id: u32) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.node = None;
            n.knet = None;
            n.votequorum = None;
            n.conns.clear();
            n.evs_sends.clear();
            n.ipc.clear();
            n.evs_ipc.clear();
            n.zero_copy.maps.clear();
        }
        self.record(TraceEvent::Crash { node: id });
    }

    /// Stops scheduling `id` for `duration` (SIGSTOP … SIGCONT).
    pub fn pause(&mut self, id: u32, duration: Duration) {
        let until = self.now + duration;
        if let Some(n) = self.nodes.get_mut(&id) {
            n.paused_until = Some(until);
        }
        self.record(TraceEvent::Pause {
            node: id,
            until_us: until.total_micros(),
        });
    }

    /// Cuts every link between the groups (symmetric partition).
    pub fn partition(&mut self, groups: &[Vec<u32>]) {
        let mut links = Vec::new();
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for x in a {
                    for y in b {
                        links.push((*x, *y));
                        links.push((*y, *x));
                    }
                }
            }
        }
        self.cut_links(&links);
    }

    /// Cuts directed links (asymmetric faults).
    pub fn cut_links(&mut self, links: &[(u32, u32)]) {
        self.cut.extend(links.iter().copied());
        self.record(TraceEvent::Cut {
            links: links.to_vec(),
        });
    }

    /// Is the directed link `from` → `to` cut?
    pub fn link_cut(&self, from: u32, to: u32) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.record(TraceEvent::Heal);
    }

    /// Sets the network's behaviour from now on.
    pub fn set_network(&mut self, options: NetworkOptions) {
        self.options = options;
    }

    /// A CPG client connects on `node`. Its id is unique over the node's restarts
    /// (`incarnation << 16 | connection`); its pid is `1000 + connection`.
    pub fn client_connect(&mut self, node: u32, initial_totem_conf: bool) -> Option<ConnId> {
        let n = self.nodes.get_mut(&node)?;
        let conn = n.node.as_mut()?.cpg_connect(initial_totem_conf);
        n.conns.insert(conn, 1000 + conn as u32);
        Some(n.incarnation << 16 | conn)
    }

    fn internal(conn: ConnId) -> ConnId {
        conn & 0xFFFF
    }

    fn external(&self, node: u32, conn: ConnId) -> ConnId {
        let incarnation = self.nodes.get(&node).map_or(0, |n| n.incarnation);
        incarnation << 16 | conn
    }

    /// `cpg_join`; the result is traced and returned.
    pub fn client_join(&mut self, node: u32, conn: ConnId, group: &[u8]) -> Result<(), CpgError> {
        let result = self.with_node(
            node,
            |n, pid| n.cpg_join(Self::internal(conn), group, pid),
            conn,
        );
        self.record_call(node, conn, "join", None, result);
        self.drain(node);
        result
    }

    /// `cpg_leave`.
    pub fn client_leave(&mut self, node: u32, conn: ConnId) -> Result<(), CpgError> {
        let result = self.with_node(node, |n, _| n.cpg_leave(Self::internal(conn)), conn);
        self.record_call(node, conn, "leave", None, result);
        self.drain(node);
        result
    }

    /// `cpg_mcast_joined` of a unique message `node.conn.seq`.
    pub fn client_mcast(&mut self, node: u32, conn: ConnId) -> Result<(), CpgError> {
        self.client_mcast_sized(node, conn, 0)
    }

    /// `cpg_mcast_joined` of a unique message of at least `size` bytes: the id
    /// `node.conn.seq`, then (when `size` asks for more) a NUL and filler. Traces name it by
    /// its id alone.
    pub fn client_mcast_sized(
        &mut self,
        node: u32,
        conn: ConnId,
        size: usize,
    ) -> Result<(), CpgError> {
        let seq = self
            .nodes
            .get(&node)
            .and_then(|n| n.sends.get(&conn))
            .copied()
            .unwrap_or(0);
        let id = format!("{node}.{conn}.{seq}");
        let mut payload = id.clone().into_bytes();
        if size > payload.len() {
            payload.push(0);
            payload.resize(size, b'.');
        }
        let result = self.with_node(
            node,
            |n, _| n.cpg_mcast(Self::internal(conn), &payload),
            conn,
        );
        if result.is_ok() {
            if let Some(n) = self.nodes.get_mut(&node) {
                n.sends.insert(conn, seq + 1);
            }
        }
        self.record_call(node, conn, "mcast", Some(id), result);
        self.drain(node);
        result
    }

    /// The client exits (`cpg_finalize` or death): PROCDOWN for a joined process.
    pub fn client_disconnect(&mut self, node: u32, conn: ConnId) {
        let _ = self.with_node(
            node,
            |n, _| {
                n.cpg_disconnect(Self::internal(conn));
                Ok(())
            },
            conn,
        );
        if let Some(n) = self.nodes.get_mut(&node) {
            n.conns.remove(&Self::internal(conn));
        }
        self.record_call(node, conn, "finalize", None, Ok(()));
        self.drain(node);
    }

    // ---- EVS clients (docs/evs.md: the engine's calls, no IPC) -------------------------------

    /// `evs_initialize` on `node`; it receives the last configuration at once (EVS-CODE-1).
    /// Its id is unique over the node's restarts (`incarnation << 16 | connection`).
    pub fn evs_connect(&mut self, node: u32) -> Option<EvsConnId> {
        let n = self.nodes.get_mut(&node)?;
        if n.paused_until.is_some() {
            return None;
        }
        let conn = n.node.as_mut()?.evs_connect();
        n.evs_sends.insert(conn, 0);
        let external = n.incarnation << 16 | conn;
        self.record_evs_call(node, external, "connect", &[], None, Ok(()));
        self.drain(node);
        Some(external)
    }

    /// `evs_join`; the result is traced and returned.
    pub fn evs_join(
        &mut self,
        node: u32,
        conn: EvsConnId,
        groups: &[EvsGroup],
    ) -> Result<(), EvsError> {
        let result = self.with_evs(node, conn, |n, c| n.evs_join(c, groups));
        self.record_evs_call(node, conn, "join", groups, None, result);
        result
    }

    /// `evs_leave`.
    pub fn evs_leave(
        &mut self,
        node: u32,
        conn: EvsConnId,
        groups: &[EvsGroup],
    ) -> Result<(), EvsError> {
        let result = self.with_evs(node, conn, |n, c| n.evs_leave(c, groups));
        self.record_evs_call(node, conn, "leave", groups, None, result);
        result
    }

    /// `evs_mcast_joined` of a unique message `node.conn.seq`.
    pub fn evs_mcast_joined(&mut self, node: u32, conn: EvsConnId) -> Result<(), EvsError> {
        self.evs_mcast(node, conn, None)
    }

    /// `evs_mcast_groups` of a unique message `node.conn.seq` to `groups`.
    pub fn evs_mcast_groups(
        &mut self,
        node: u32,
        conn: EvsConnId,
        groups: &[EvsGroup],
    ) -> Result<(), EvsError> {
        self.evs_mcast(node, conn, Some(groups))
    }

    fn evs_mcast(
        &mut self,
        node: u32,
        conn: EvsConnId,
        groups: Option<&[EvsGroup]>,
    ) -> Result<(), EvsError> {
        let internal = Self::internal(conn);
        let seq = self
            .nodes
            .get(&node)
            .and_then(|n| n.evs_sends.get(&internal))
            .copied()
            .unwrap_or(0);
        let message = format!("{node}.{conn}.{seq}");
        let result = self.with_evs(node, conn, |n, c| match groups {
            None => n.evs_mcast_joined(c, message.as_bytes()),
            Some(g) => n.evs_mcast_groups(c, g, message.as_bytes()),
        });
        if result.is_ok() {
            if let Some(n) = self.nodes.get_mut(&node) {
                n.evs_sends.insert(internal, seq + 1);
            }
        }
        let call = if groups.is_some() {
            "mcast_groups"
        } else {
            "mcast_joined"
        };
        self.record_evs_call(
            node,
            conn,
            call,
            groups.unwrap_or(&[]),
            Some(message),
            result,
        );
        self.drain(node);
        result
    }

    /// `evs_membership_get`: (this node, the last configuration's members).
    pub fn evs_membership_get(
        &mut self,
        node: u32,
        conn: EvsConnId,
    ) -> Result<(u32, Vec<u32>), EvsError> {
        let mut out = Err(EvsError::BadHandle);
        let _ = self.with_evs(node, conn, |n, c| {
            out = n.evs_membership_get(c);
            Ok(())
        });
        out
    }

    /// `evs_finalize` (or the client's death): silent for everyone else (EVS-FIN-1).
    pub fn evs_disconnect(&mut self, node: u32, conn: EvsConnId) {
        let result = self.with_evs(node, conn, |n, c| n.evs_disconnect(c));
        if let Some(n) = self.nodes.get_mut(&node) {
            n.evs_sends.remove(&Self::internal(conn));
        }
        self.record_evs_call(node, conn, "finalize", &[], None, result);
    }

    fn with_evs(
        &mut self,
        node: u32,
        conn: EvsConnId,
        f: impl FnOnce(&mut Node, EvsConnId) -> Result<(), EvsError>,
    ) -> Result<(), EvsError> {
        let Some(n) = self.nodes.get_mut(&node) else {
            return Err(EvsError::BadHandle);
        };
        if conn >> 16 != n.incarnation {
            // A client of an earlier daemon: gone with it.
            return Err(EvsError::BadHandle);
        }
        match n.node.as_mut() {
            Some(engine) if n.paused_until.is_none() => f(engine, Self::internal(conn)),
            _ => Err(EvsError::BadHandle),
        }
    }

    fn record_evs_call(
        &mut self,
        node: u32,
        conn: EvsConnId,
        call: &'static str,
        groups: &[EvsGroup],
        message: Option<String>,
        result: Result<(), EvsError>,
    ) {
        let groups = groups
            .iter()
            .map(|g| {
                let end = g.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
                totem_wire::exec::cpg::escape_name(&g[..end])
            })
            .collect();
        let result = match result {
            Ok(()) => "CS_OK".to_string(),
            Err(e) => format!("{e:?}"),
        };
        self.record(TraceEvent::EvsCall {
            node,
            conn,
            call,
            groups,
            message,
            result,
        });
    }

    // ---- libqb IPC clients (the conformance backend's libcpg) ------------------------------

    /// The simulated `/dev/shm` of node `id` (clients create zero-copy files in it).
    pub fn shared_memory(&mut self, id: u32) -> Option<SharedMemory> {
        self.nodes.get(&id).map(|n| n.zero_copy.files.clone())
    }

    /// A libqb connection to node `id`'s CPG service; `None` when the daemon is not
    /// running (libqb's connect fails).
    pub fn ipc_connect(&mut self, id: u32) -> Option<ConnId> {
        let n = self.nodes.get_mut(&id)?;
        let conn = n.node.as_mut()?.ipc_connect();
        n.ipc.insert(conn, VecDeque::new());
        Some(n.incarnation << 16 | conn)
    }

    fn ipc_node(&mut self, id: u32, conn: ConnId) -> Result<&mut SimNode, IpcError> {
        let n = self.nodes.get_mut(&id).ok_or(IpcError::Disconnected)?;
        if conn >> 16 != n.incarnation
            || n.node.is_none()
            || !n.ipc.contains_key(&Self::internal(conn))
        {
            return Err(IpcError::Disconnected);
        }
        if n.paused_until.is_some_and(|r| r > self.now) {
            return Err(IpcError::Stopped);
        }
        Ok(n)
    }

    /// One request on the connection's request channel, handled at once.
    pub fn ipc_request(
        &mut self,
        id: u32,
        conn: ConnId,
        bytes: &[u8],
    ) -> Result<LibReply, IpcError> {
        let n = self.ipc_node(id, conn)?;
        let internal = Self::internal(conn);
        let SimNode {
            node, zero_copy, ..
        } = n;
        let node = node.as_mut().ok_or(IpcError::Disconnected)?;
        let reply = node.ipc_request(internal, bytes, zero_copy);
        if let LibReply::Disconnect(_) = reply {
            node.ipc_disconnect(internal, zero_copy);
            n.ipc.remove(&internal);
        }
        self.drain(id);
        Ok(reply)
    }

    /// The next event waiting on the connection's event channel.
    pub fn ipc_next_event(&mut self, id: u32, conn: ConnId) -> Result<Option<Vec<u8>>, IpcError> {
        let n = self.nodes.get_mut(&id).ok_or(IpcError::Disconnected)?;
        let queue = n.ipc.get_mut(&Self::internal(conn));
        match queue {
            // Events already queued are still readable after the daemon died.
            Some(q) if conn >> 16 == n.incarnation => Ok(q.pop_front()),
            _ => Err(IpcError::Disconnected),
        }
    }

    /// Whether an event waits on the connection.
    pub fn ipc_event_pending(&self, id: u32, conn: ConnId) -> Result<bool, IpcError> {
        let n = self.nodes.get(&id).ok_or(IpcError::Disconnected)?;
        match n.ipc.get(&Self::internal(conn)) {
            Some(q) if conn >> 16 == n.incarnation => Ok(!q.is_empty()),
            _ => Err(IpcError::Disconnected),
        }
    }

    /// The control file's flow-control value for node `id`'s clients.
    pub fn ipc_flow_control(&mut self, id: u32) -> i32 {
        self.nodes
            .get_mut(&id)
            .and_then(|n| n.node.as_mut())
            .map_or(0, Node::ipc_flow_control)
    }

    /// The client closed its connection (finalize, exit or death).
    pub fn ipc_disconnect(&mut self, id: u32, conn: ConnId) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if conn >> 16 != n.incarnation {
            return;
        }
        let internal = Self::internal(conn);
        if n.ipc.remove(&internal).is_none() {
            return;
        }
        let SimNode {
            node, zero_copy, ..
        } = n;
        if let Some(node) = node.as_mut() {
            node.ipc_disconnect(internal, zero_copy);
        }
        self.drain(id);
    }

    // ---- libqb IPC clients of the evs service (the conformance backend's libevs) ---------

    /// A libqb connection to node `id`'s evs service (`evs_initialize`); `None` when the
    /// daemon is not running. The last configuration is queued at once (EVS-CODE-1).
    pub fn evs_ipc_connect(&mut self, id: u32) -> Option<EvsConnId> {
        let n = self.nodes.get_mut(&id)?;
        if n.paused_until.is_some_and(|r| r > self.now) {
            return None;
        }
        let conn = n.node.as_mut()?.evs_connect();
        n.evs_ipc.insert(conn, VecDeque::new());
        let external = n.incarnation << 16 | conn;
        self.drain(id);
        Some(external)
    }

    fn evs_ipc_node(&mut self, id: u32, conn: EvsConnId) -> Result<&mut SimNode, IpcError> {
        let n = self.nodes.get_mut(&id).ok_or(IpcError::Disconnected)?;
        if conn >> 16 != n.incarnation
            || n.node.is_none()
            || !n.evs_ipc.contains_key(&Self::internal(conn))
        {
            return Err(IpcError::Disconnected);
        }
        if n.paused_until.is_some_and(|r| r > self.now) {
            return Err(IpcError::Stopped);
        }
        Ok(n)
    }

    /// One libevs request, handled at once (`Node::evs_ipc_request`).
    pub fn evs_ipc_request(
        &mut self,
        id: u32,
        conn: EvsConnId,
        bytes: &[u8],
    ) -> Result<LibReply, IpcError> {
        let n = self.evs_ipc_node(id, conn)?;
        let internal = Self::internal(conn);
        let node = n.node.as_mut().ok_or(IpcError::Disconnected)?;
        let reply = node.evs_ipc_request(internal, bytes);
        if let LibReply::Disconnect(_) = reply {
            let _ = node.evs_disconnect(internal);
            n.evs_ipc.remove(&internal);
        }
        self.drain(id);
        Ok(reply)
    }

    /// The next event waiting on an evs connection.
    pub fn evs_ipc_next_event(
        &mut self,
        id: u32,
        conn: EvsConnId,
    ) -> Result<Option<Vec<u8>>, IpcError> {
        let n = self.nodes.get_mut(&id).ok_or(IpcError::Disconnected)?;
        match n.evs_ipc.get_mut(&Self::internal(conn)) {
            Some(q) if conn >> 16 == n.incarnation => Ok(q.pop_front()),
            _ => Err(IpcError::Disconnected),
        }
    }

    /// Whether an event waits on an evs connection.
    pub fn evs_ipc_event_pending(&self, id: u32, conn: EvsConnId) -> Result<bool, IpcError> {
        let n = self.nodes.get(&id).ok_or(IpcError::Disconnected)?;
        match n.evs_ipc.get(&Self::internal(conn)) {
            Some(q) if conn >> 16 == n.incarnation => Ok(!q.is_empty()),
            _ => Err(IpcError::Disconnected),
        }
    }

    /// The libevs client closed its connection (`evs_finalize`, exit or death): silent for
    /// everyone else (EVS-FIN-1).
    pub fn evs_ipc_disconnect(&mut self, id: u32, conn: EvsConnId) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if conn >> 16 != n.incarnation {
            return;
        }
        let internal = Self::internal(conn);
        if n.evs_ipc.remove(&internal).is_none() {
            return;
        }
        if let Some(node) = n.node.as_mut() {
            let _ = node.evs_disconnect(internal);
        }
        self.drain(id);
    }

    /// SIGSTOP without a scheduled SIGCONT: the daemon stays stopped until [`Sim::resume`].
    pub fn stop_process(&mut self, id: u32) {
        let until = self.now + Duration::from_millis(1 << 40);
        if let Some(n) = self.nodes.get_mut(&id) {
            n.paused_until = Some(until);
        }
        self.record(TraceEvent::Pause {
            node: id,
            until_us: until.total_micros(),
        });
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: u32) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&id) {
            if n.paused_until.is_some() {
                n.paused_until = Some(now);
            }
        }
    }

    /// A clean stop (SIGTERM): corosync's shutdown lets CPG send PROCLEAVE for its clients
    /// (`cpg_lib_exit_fn` as the IPC service unlinks) and only then leaves the ring.
    pub fn stop_gracefully(&mut self, id: u32, settle: Duration) {
        let conns: Vec<ConnId> = self
            .nodes
            .get(&id)
            .map(|n| n.ipc.keys().map(|c| n.incarnation << 16 | c).collect())
            .unwrap_or_default();
        for c in conns {
            self.ipc_disconnect(id, c);
        }
        let until = self.now + settle;
        self.run_until(until);
        if let Some(node) = self.nodes.get_mut(&id).and_then(|n| n.node.as_mut()) {
            node.leave_ring();
        }
        self.drain(id);
        self.crash(id);
    }

    fn with_node(
        &mut self,
        node: u32,
        f: impl FnOnce(&mut Node, u32) -> Result<(), CpgError>,
        conn: ConnId,
    ) -> Result<(), CpgError> {
        let Some(n) = self.nodes.get_mut(&node) else {
            return Err(CpgError::BadHandle);
        };
        if conn >> 16 != n.incarnation {
            // A client of an earlier daemon: gone with it.
            return Err(CpgError::BadHandle);
        }
        let pid = n.conns.get(&Self::internal(conn)).copied().unwrap_or(0);
        match n.node.as_mut() {
            Some(node) if n.paused_until.is_none() => f(node, pid),
            _ => Err(CpgError::BadHandle),
        }
    }

    fn record_call(
        &mut self,
        node: u32,
        conn: ConnId,
        call: &'static str,
        message: Option<String>,
        result: Result<(), CpgError>,
    ) {
        let result = match result {
            Ok(()) => "CS_OK".to_string(),
            Err(e) => format!("{e:?}"),
        };
        self.record(TraceEvent::Call {
            node,
            conn,
            call,
            message,
            result,
        });
    }

    // ---- running -------------------------------------------------------------------------

    /// Runs until `until`: datagrams and timers in time order.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.queue.peek().map(|Reverse(p)| p.at);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|(id, n)| {
                    let node = n.node.as_ref()?;
                    let timeout = match n.knet.as_ref().and_then(Knet::poll_timeout) {
                        Some(k) => Some(node.poll_timeout().map_or(k, |t| t.min(k))),
                        None => node.poll_timeout(),
                    };
                    let at = match n.paused_until {
                        Some(resume) => timeout?.max(resume),
                        None => timeout?,
                    };
                    Some((at, *id))
                })
                .min();
            let next = match (next_packet, next_timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            if self.stats.datagrams > DATAGRAM_BUDGET {
                self.stats.budget_exhausted = true;
                break;
            }
            self.advance(next);
            match (next_timer, next_packet) {
                (Some((t, id)), _) if t == next => {
                    if let Some(n) = self.nodes.get_mut(&id) {
                        if n.paused_until.is_some_and(|r| r <= next) {
                            n.paused_until = None;
                        }
                        if let Some(node) = n.node.as_mut() {
                            // A knet timer may be what is due: the engine only when its own
                            // deadline passed, as totemd's loop calls it.
                            if node.poll_timeout().is_some_and(|t| t <= next) {
                                node.handle_timeout(next);
                            }
                        }
                    }
                    self.knet_timers(id, next);
                    self.drain(id);
                }
                _ => {
                    let Some(Reverse(packet)) = self.queue.pop() else {
                        break;
                    };
                    self.deliver(packet);
                }
            }
        }
        self.advance(until);
    }

    /// Runs for `ms` of virtual time.
    pub fn run_for_ms(&mut self, ms: u64) {
        let until = self.now + Duration::from_millis(ms);
        self.run_until(until);
    }

    fn advance(&mut self, to: Instant) {
        if to > self.now {
            let alive = self.nodes.values().filter(|n| n.node.is_some()).count() as u128;
            self.stats.node_micros += alive * u128::from((to - self.now).total_micros());
            self.now = to;
        }
    }

    fn deliver(&mut self, packet: InFlight) {
        let Some(n) = self.nodes.get_mut(&packet.to) else {
            return;
        };
        if let Some(resume) = n.paused_until {
            if resume > self.now {
                // A stopped process reads its socket only when it runs again.
                self.queue.push(Reverse(InFlight {
                    at: resume,
                    ..packet
                }));
                return;
            }
            n.paused_until = None;
        }
        if n.node.is_none() {
            return;
        }
        if let Some(incarnation) = packet.loopback {
            // knet's loopback link is the daemon's memory, not its socket: nothing to
            // overflow, and nothing left of it once the daemon is gone.
            if incarnation != n.incarnation {
                return;
            }
        } else {
            // The socket buffer: credit accrues with time, up to the buffer; every datagram
            // read spends RX_COST_US of it; with none left the kernel drops the datagram.
            let burst = n.rx_burst();
            let elapsed = i64::try_from((self.now - n.rx_at).total_micros()).unwrap_or(i64::MAX);
            n.rx_credit = n.rx_credit.saturating_add(elapsed).min(burst * RX_COST_US);
            n.rx_at = self.now;
            if n.rx_credit < RX_COST_US {
                self.stats.overflowed += 1;
                return;
            }
            n.rx_credit -= RX_COST_US;
        }
        let mut bytes = packet.bytes;
        if packet.loopback.is_none() && n.knet.is_some() {
            // totemd's receive: knet first, the engine gets only whole messages for it.
            match self.knet_receive(packet.to, packet.from, &bytes) {
                Some(message) => bytes = message,
                None => return,
            }
        }
        let Some(n) = self.nodes.get_mut(&packet.to) else {
            return;
        };
        if n.receive_faults.drop_received(&bytes) {
            return;
        }
        let Some(node) = n.node.as_mut() else { return };
        // Malformed datagrams cannot occur here (every byte comes from the codec); an error
        // would be dropped as the daemon drops it.
        let _ = node.handle_datagram(self.now, &bytes);
        self.drain(packet.to);
    }

    /// One datagram through node `id`'s knet (`threads_rx.c`): its answers (PONGs, PMTUD
    /// replies) are sent, and a whole totem message for the engine comes back.
    fn knet_receive(&mut self, id: u32, from: u32, bytes: &[u8]) -> Option<Vec<u8>> {
        let now = self.now;
        let decrypted;
        let mut bytes = bytes;
        if let Some(crypto) = crypto_of(&self.knet_crypto, &self.knet_crypto_for, id) {
            match crypto.decrypt(bytes) {
                Ok(plain) => {
                    decrypted = plain;
                    bytes = &decrypted;
                }
                Err(_) => {
                    // totemd drops it before knet reads it, and counts it.
                    self.crypto_dropped += 1;
                    return None;
                }
            }
        }
        let knet = self.nodes.get_mut(&id)?.knet.as_mut()?;
        let mut out = Vec::new();
        let received = knet.receive(now, daemon::node_addr(from), bytes, &mut out);
        self.knet_flush(id, out);
        match received {
            Received::Message(_, message) => Some(message),
            // Dropped datagrams are counted in the knet's stats (totemd logs them at debug).
            Received::Consumed | Received::Dropped(_) => None,
        }
    }

    /// Node `id`'s knet timers, if due (`threads_heartbeat.c`): pings, links timed out.
    fn knet_timers(&mut self, id: u32, now: Instant) {
        let Some(knet) = self.nodes.get_mut(&id).and_then(|n| n.knet.as_mut()) else {
            return;
        };
        if knet.poll_timeout().is_some_and(|t| t <= now) {
            let mut out = Vec::new();
            knet.handle_timeout(now, &mut out);
            self.knet_flush(id, out);
        }
    }

    /// One transmit of node `id`'s engine through its knet: framed for every up link, and
    /// the node's own copy over the loopback link (`totemknet.c` sends to the local host
    /// too, and libknet hands it straight back), read in the daemon's next round.
    fn knet_send(&mut self, id: u32, destination: Destination, bytes: Vec<u8>) {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let incarnation = n.incarnation;
        let Some(knet) = n.knet.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        knet.send(now, destination, &bytes, &mut out);
        if destination == Destination::All || destination == Destination::Node(id) {
            self.next_id += 1;
            self.queue.push(Reverse(InFlight {
                // The next round of the daemon's loop, which costs about what reading a
                // datagram does: a node alone with its token does not spin in one instant.
                at: now + Duration::from_micros(RX_COST_US as u64),
                id: self.next_id,
                from: id,
                to: id,
                bytes,
                loopback: Some(incarnation),
            }));
        }
        self.knet_flush(id, out);
    }

    /// Puts what node `id`'s knet built on the network (from its one link socket) and
    /// traces its link changes.
    fn knet_flush(&mut self, id: u32, mut out: Vec<(std::net::SocketAddr, Vec<u8>)>) {
        if let Some(crypto) = crypto_of(&self.knet_crypto, &self.knet_crypto_for, id) {
            out = out
                .into_iter()
                .filter_map(|(addr, packet)| {
                    let mut salt = [0u8; SALT_SIZE];
                    for chunk in salt.chunks_mut(8) {
                        chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
                    }
                    crypto.encrypt(&packet, &salt).ok().map(|w| (addr, w))
                })
                .collect();
        }
        for (addr, bytes) in out {
            if let Some(to) = daemon::node_of(&self.ids, addr) {
                self.send(id, to, Socket::Token, &bytes);
            }
        }
        let mut changes = Vec::new();
        if let Some(knet) = self.nodes.get_mut(&id).and_then(|n| n.knet.as_mut()) {
            while let Some(event) = knet.poll_event() {
                // The simulator runs link 0 alone: the host's reachability is its link's.
                changes.push(match event {
                    KnetEvent::LinkUp { host, .. } => (u32::from(host), true),
                    KnetEvent::LinkDown { host, .. } => (u32::from(host), false),
                    KnetEvent::Links { .. } => continue,
                });
            }
        }
        for (peer, up) in changes {
            self.record(TraceEvent::Link { node: id, peer, up });
        }
    }

    /// Collects a node's datagrams and events after an input.
    fn drain(&mut self, id: u32) {
        let mut transmits = Vec::new();
        let mut events = Vec::new();
        let mut notes = Vec::new();
        if let Some(n) = self.nodes.get_mut(&id) {
            if let Some(node) = n.node.as_mut() {
                while let Some(t) = node.poll_transmit() {
                    transmits.push(t);
                }
                // votequorum is fed the node's outputs in order, as totemd's quorum service
                // is (`runtime.rs` drain → `EventSource::node_event` / `votequorum`).
                while let Some(output) = node.poll_output() {
                    match output {
                        NodeOutput::Event(e) => {
                            if let Some(vq) = n.votequorum.as_mut() {
                                if vq.node_event(&e) {
                                    n.quorum_notes.views.push(vq.view.clone());
                                }
                            }
                            if let NodeEvent::Configuration { left, joined, .. } = &e {
                                n.quorum_notes
                                    .configurations
                                    .push((left.clone(), joined.clone()));
                            }
                            events.push(Output::Node(e));
                        }
                        NodeOutput::Evs(e) => events.push(Output::Evs(e)),
                        // No simulated client uses cfg.
                        NodeOutput::Cfg { .. } => {}
                        NodeOutput::Votequorum { from, message } => {
                            if let Some(vq) = n.votequorum.as_mut() {
                                if vq.deliver(from, &message) {
                                    n.quorum_notes.views.push(vq.view.clone());
                                }
                            }
                        }
                    }
                }
                notes = node.take_totempg_notes();
                // QuorumService::update_node: the next NODEINFO says votequorum's state.
                if let Some(vq) = n.votequorum.as_ref() {
                    let info = vq.own_nodeinfo();
                    if node.nodeinfo() != info {
                        node.set_nodeinfo(info);
                    }
                }
            }
        }
        for note in notes {
            self.record(match note {
                TotempgNote::Discarded {
                    sender,
                    len,
                    reason,
                    ring,
                } => TraceEvent::TotempgDiscard {
                    node: id,
                    from_node: sender,
                    bytes: len,
                    reason,
                    ring: ring.to_string(),
                },
                TotempgNote::AcrossRings {
                    sender,
                    first_ring,
                    last_ring,
                } => TraceEvent::TotempgAcrossRings {
                    node: id,
                    from_node: sender,
                    first_ring: first_ring.to_string(),
                    last_ring: last_ring.to_string(),
                },
            });
        }
        for e in events {
            match e {
                Output::Node(e) => self.on_node_event(id, e),
                Output::Evs(e) => self.on_evs_event(id, e),
            }
        }
        for t in transmits {
            if self.nodes.get(&id).is_some_and(|n| n.knet.is_some()) {
                self.knet_send(id, t.destination, t.bytes);
                continue;
            }
            let (targets, socket) = match t.destination {
                Destination::Node(to) => (vec![to], Socket::Token),
                Destination::All => (self.ids.clone(), Socket::Member),
            };
            for to in targets {
                self.send(id, to, socket, &t.bytes);
            }
        }
    }

    /// Does node `from`'s socket towards `to` take `len` more bytes now? Charges them if so.
    fn send_buffer_admits(&mut self, from: u32, to: u32, socket: Socket, len: usize) -> bool {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&from) else {
            return true;
        };
        let Some(buffer) = n.send_buffer else {
            return true;
        };
        let fill = n
            .send_fill
            .entry((to, socket))
            .or_insert(SendFill { bytes: 0, at: now });
        let elapsed_ms = (now - fill.at).total_millis();
        if elapsed_ms > 0 {
            fill.bytes = fill
                .bytes
                .saturating_sub(elapsed_ms.saturating_mul(buffer.drain_bytes_per_ms));
            fill.at += Duration::from_millis(elapsed_ms);
        }
        let len = len as u64;
        if fill.bytes + len > buffer.bytes {
            n.send_failed += 1;
            return false;
        }
        fill.bytes += len;
        true
    }

    fn send(&mut self, from: u32, to: u32, socket: Socket, bytes: &[u8]) {
        if !self.send_buffer_admits(from, to, socket, bytes.len()) {
            self.stats.send_failed += 1;
            return;
        }
        self.stats.datagrams += 1;
        if let Some(capture) = self.capture.as_mut() {
            capture.datagram(self.now, from, to, bytes);
        }
        if self.cut.contains(&(from, to)) {
            self.stats.cut += 1;
            return;
        }
        // A node's datagrams to itself go through its own stack: never lost.
        if from != to && self.rng.chance(self.options.packet_loss_probability) {
            self.stats.lost += 1;
            return;
        }
        let copies = if from != to && self.rng.chance(self.options.packet_replay_probability) {
            self.stats.replayed += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let min = self.options.one_way_delay_min_us;
            let max = (2 * self.options.one_way_delay_mean_us)
                .saturating_sub(min)
                .max(min);
            let delay = self.rng.range(min, max);
            self.next_id += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + Duration::from_micros(delay),
                id: self.next_id,
                from,
                to,
                bytes: bytes.to_vec(),
                loopback: None,
            }));
        }
    }

    fn on_evs_event(&mut self, id: u32, event: EvsEvent) {
        let (conn, bytes) = totem_cpg::evs_event_bytes(&event);
        if let Some(q) = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.evs_ipc.get_mut(&conn))
        {
            q.push_back(bytes);
        }
        match event {
            EvsEvent::Confchg { conn, confchg } => self.record(TraceEvent::EvsConfchg {
                node: id,
                conn: self.external(id, conn),
                kind: match confchg.kind {
                    ConfigurationKind::Transitional => "transitional",
                    ConfigurationKind::Regular => "regular",
                },
                ring: confchg.ring_id.to_string(),
                members: confchg.members,
                left: confchg.left,
                joined: confchg.joined,
            }),
            EvsEvent::Deliver { conn, nodeid, data } => {
                let ring = self.delivery_ring.get(&id).copied().unwrap_or_default();
                self.record(TraceEvent::EvsDeliver {
                    node: id,
                    conn: self.external(id, conn),
                    from_node: nodeid,
                    message: String::from_utf8_lossy(&data).into_owned(),
                    ring: ring.to_string(),
                });
            }
        }
    }

    fn on_node_event(&mut self, id: u32, event: NodeEvent) {
        let ring = self.delivery_ring.get(&id).copied().unwrap_or_default();
        if let NodeEvent::Client(e) = &event {
            let (conn, bytes) = totem_cpg::event_bytes(e);
            if let Some(q) = self.nodes.get_mut(&id).and_then(|n| n.ipc.get_mut(&conn)) {
                q.push_back(bytes);
            }
        }
        match event {
            NodeEvent::StoreRingId(r) => {
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.stored_ring_seq = r.seq;
                }
            }
            NodeEvent::Configuration {
                kind,
                members,
                left,
                joined,
                ring_id,
            } => {
                if kind == ConfigurationKind::Regular {
                    self.delivery_ring.insert(id, ring_id);
                }
                self.record(TraceEvent::Totem {
                    node: id,
                    kind: match kind {
                        ConfigurationKind::Transitional => "transitional",
                        ConfigurationKind::Regular => "regular",
                    },
                    ring: ring_id.to_string(),
                    members,
                    left,
                    joined,
                })
            }
            NodeEvent::SyncCompleted(r) => self.record(TraceEvent::SyncCompleted {
                node: id,
                ring: r.to_string(),
            }),
            NodeEvent::StateChanged { .. } => {}
            NodeEvent::Client(ClientEvent::Confchg {
                conn,
                group,
                members,
                left,
                joined,
            }) => {
                let conn = self.external(id, conn);
                let pairs = |v: &[CpgAddress]| v.iter().map(|a| (a.nodeid, a.pid)).collect();
                let triples = |v: &[CpgAddress]| {
                    v.iter()
                        .map(|a| (a.nodeid, a.pid, a.reason.to_string()))
                        .collect()
                };
                self.record(TraceEvent::Confchg {
                    node: id,
                    conn,
                    group: group.to_string(),
                    members: pairs(&members),
                    left: triples(&left),
                    joined: triples(&joined),
                });
            }
            NodeEvent::Client(ClientEvent::Deliver {
                conn,
                group,
                nodeid,
                pid,
                data,
            }) => self.record(TraceEvent::Deliver {
                node: id,
                conn: self.external(id, conn),
                group: group.to_string(),
                from_node: nodeid,
                from_pid: pid,
                // A sized message is its id up to the NUL (`client_mcast_sized`).
                message: String::from_utf8_lossy(data.split(|b| *b == 0).next().unwrap_or(&[]))
                    .into_owned(),
                ring: ring.to_string(),
            }),
            NodeEvent::Client(
                ClientEvent::TotemConfchg { .. } | ClientEvent::PartialDeliver { .. },
            ) => {}
        }
    }
}

/// A node's output in order: its events, and its EVS connections' (which carry the ring of
/// the configuration events before them).
enum Output {
    Node(NodeEvent),
    Evs(EvsEvent),
}

/// Node `id`'s knet crypto: its own, else every node's.
fn crypto_of<'a>(
    all: &'a Option<KnetCrypto>,
    per_node: &'a [(u32, KnetCrypto)],
    id: u32,
) -> Option<&'a KnetCrypto> {
    per_node
        .iter()
        .find(|(n, _)| *n == id)
        .map(|(_, c)| c)
        .or(all.as_ref())
}
