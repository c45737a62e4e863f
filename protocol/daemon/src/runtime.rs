//! The single-threaded poll(2) loop that drives a [`Node`]: the only place that calls
//! `Node::handle_*` and drains `poll_transmit` / `poll_event`, in the engine's documented
//! order (input, then transmits and events, then the next deadline), as
//! `protocol/sim/src/sim.rs` does with virtual time.
//!
//! One wake-up: read the signalfd; drain the token socket (each datagram: fault filter,
//! engine, drain); let the extra event sources (the IPC server) work; run due timers; send;
//! sleep in poll(2) until the earliest deadline. SIGTERM/SIGINT leave the ring cleanly as
//! corosync does (`main.c::sig_exit_handler` → `totemsrp_finalize` →
//! `memb_leave_message_send`): the LEAVE is multicast, then the process exits 0.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use totem_cpg::{CfgExec, EvsEvent, Node, NodeConfig, NodeEvent, NodeOutput, VotequorumMessage};
use totem_srp::Destination;
use totem_srp::{Duration, Instant};
use totem_wire::srp::{Header, Message, MessageType};

use crate::fault::Faults;
use crate::knet_link::LinkSocket;
use crate::link_crypto::LinkCrypto;
use crate::log::LogLimit;
use crate::net_status::NetStatus;
use crate::report::Reporter;
use crate::sender_check::{Ring, Senders, Source};
use crate::sys::{self, SignalFd};
use crate::udpu::{Recv, Udpu};
use crate::{logf, persist};
use totem_knet::{HostStatus, Knet, KnetConfig, KnetEvent, LinkMode, Outgoing, Received};

/// Malformed-datagram lines per window (see `Runtime::deliver`).
pub const MALFORMED_LOGS: u32 = 10;
/// The window of [`MALFORMED_LOGS`].
pub const MALFORMED_LOG_WINDOW: Duration = Duration::from_millis(10_000);
/// The monotonic clock mapped to the engine's time: microseconds since the daemon started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// Time starts now.
    pub fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The engine's now.
    pub fn now(&self) -> Instant {
        self.at(std::time::Instant::now())
    }

    /// The engine's time of the monotonic instant `t` (times before the clock started
    /// map to its start).
    pub fn at(&self, t: std::time::Instant) -> Instant {
        let since = t.saturating_duration_since(self.origin);
        Instant::from_micros(since.as_micros().min(i64::MAX as u128) as i64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// poll(2)'s timeout for `deadline`: rounded up to the next millisecond so the deadline has
/// passed when poll returns; -1 (forever) without one.
pub fn poll_timeout_ms(now: Instant, deadline: Option<Instant>) -> i32 {
    match deadline {
        None => -1,
        Some(d) => {
            let micros = (d - now).total_micros();
            micros.div_ceil(1000).min(i32::MAX as u64) as i32
        }
    }
}

/// Another source of input for the loop, such as the IPC server: it gets poll slots, runs
/// when they are ready, may call the node (CPG requests), and sees every node event (client
/// events are for it). The loop drains the node after each call.
pub trait EventSource {
    /// Appends the descriptors to watch.
    fn pollfds(&self, fds: &mut Vec<libc::pollfd>);
    /// Its descriptors, in the order it appended them, with `revents` filled in.
    fn process_ready(&mut self, now: Instant, ready: &[libc::pollfd], node: &mut Node);
    /// One event the node reported, in order.
    fn node_event(&mut self, _now: Instant, _event: &NodeEvent) {}
    /// An EVS event for one of the node's EVS connections, in order with its events.
    fn evs_event(&mut self, _now: Instant, _event: &EvsEvent) {}
    /// A votequorum exec message the node delivered, in order with its events.
    fn votequorum(&mut self, _now: Instant, _from: u32, _message: &VotequorumMessage) {}
    /// A cfg exec message the node delivered, in order with its events.
    fn cfg_exec(&mut self, _now: Instant, _from: u32, _message: &CfgExec, _my_nodeid: u32) {}
    /// The node's outputs were all dispatched: a chance to update it (votequorum's view of
    /// this node, for its next NODEINFO).
    fn update_node(&mut self, _node: &mut Node) {}
    /// Its own next deadline.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// Its deadline passed.
    fn handle_timeout(&mut self, _now: Instant, _node: &mut Node) {}
    /// With knet crypto on: how many received datagrams it dropped so far (told after
    /// every turn of the loop).
    fn knet_crypto_dropped(&mut self, _now: Instant, _dropped: u64) {}
    /// With knet: every host's links as libknet reports them (`knet_host_get_status`,
    /// `knet_link_get_status`), told at the first turn of the loop and after every link
    /// change (for the status file and CFG's NODESTATUSGET).
    fn knet_links(&mut self, _now: Instant, _hosts: &[HostStatus]) {}
    /// Does it ask the daemon to leave the ring and stop (as `corosync-cfgtool -H` asks
    /// corosync through the cfg service)? Checked after each of its calls.
    fn shutdown_requested(&self) -> bool {
        false
    }
    /// Must the daemon exit at once, without leaving the ring (a cfg KILLNODE naming this
    /// node: `corosync_fatal_error(COROSYNC_FATAL_ERROR_EXIT)`)? The line to log.
    fn fatal_requested(&self) -> Option<String> {
        None
    }
    /// The daemon is about to leave the ring (before the LEAVE is sent).
    fn shutdown(&mut self, _node: &mut Node) {}
}

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM or SIGINT: left the ring cleanly.
    Signal(i32),
    /// An event source asked to stop: left the ring cleanly.
    Requested,
    /// Cannot go on; corosync's exit code for it.
    Fatal {
        /// What happened.
        message: String,
        /// `COROSYNC_DONE_*`.
        code: i32,
    },
}

/// `COROSYNC_DONE_STORE_RINGID`.
pub const EXIT_STORE_RINGID: i32 = 21;
/// `COROSYNC_DONE_FATAL_ERR`.
pub const EXIT_FATAL: i32 = 15;
/// `COROSYNC_FATAL_ERROR_EXIT` (-1): `exit(-1)`, status 255.
pub const EXIT_KILLED: i32 = 255;

/// How long a clean stop waits for the clients' PROCLEAVEs to be multicast before the LEAVE.
pub const SETTLE_MAX: totem_srp::Duration = totem_srp::Duration::from_millis(1000);

/// Datagrams read per wake-up before the other inputs get a turn.
const RECV_BATCH: usize = 64;

/// Counters of the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Datagrams the engine refused as malformed.
    pub malformed: u64,
    /// Messages dropped because no member of the ring can have sent them
    /// ([`crate::sender_check`]).
    pub forged: u64,
}

/// The daemon's state.
pub struct Runtime {
    clock: Clock,
    node: Node,
    udpu: Udpu,
    signals: SignalFd,
    faults: Faults,
    reporter: Reporter,
    state_dir: PathBuf,
    nodeid: u32,
    rx: Vec<u8>,
    /// Multicasts taken from the engine and not yet sent (see `drain`).
    mcast_batch: Vec<Vec<u8>>,
    /// With `transport: knet`: the link layer (the socket stays `udpu`'s token socket).
    knet: Option<Knet>,
    /// knet's loopback link: our own messages, handed back to the engine as received.
    loopback: VecDeque<Vec<u8>>,
    /// knet datagrams to send.
    knet_out: Vec<Outgoing>,
    /// The sockets of knet's links other than 0 (link 0's is `udpu`'s token socket).
    link_sockets: Vec<LinkSocket>,
    /// A link changed since the sources were last told ([`EventSource::knet_links`]).
    knet_links_changed: bool,
    /// knet's crypto, when on: what `knet` builds is encrypted before it is sent, what
    /// arrives is decrypted before `knet` sees it.
    crypto: Option<LinkCrypto>,
    /// Counters.
    pub stats: RuntimeStats,
    /// Send errors already reported in the log, and when the last report was.
    send_errors_reported: u64,
    send_errors_reported_at: Option<Instant>,
    /// Malformed datagrams are logged at most [`MALFORMED_LOGS`] per [`MALFORMED_LOG_WINDOW`];
    /// the rest are counted in one line (a flood of garbage must not flood the log).
    malformed_log: LogLimit,
    /// Members whose route refused UDP GSO, already reported.
    gso_refused_reported: Vec<u32>,
    /// The transport's view of each node, kept current for cfg's NODESTATUSGET.
    net_status: Option<NetStatus>,
    /// The nodelist, for the sender check; `None`: every message goes to the engine.
    senders: Option<Senders>,
    /// Forged-message lines, limited like the malformed ones.
    forged_log: LogLimit,
}

/// Send errors are reported at most this often (ms): a kernel that refuses every send
/// would otherwise write a line per datagram.
const SEND_ERROR_REPORT_MS: i64 = 10_000;

impl Runtime {
    /// Starts the node now; `signals` must already be blocked (see [`SignalFd::new`]).
    pub fn new(
        clock: Clock,
        config: NodeConfig,
        udpu: Udpu,
        signals: SignalFd,
        faults: Faults,
        reporter: Reporter,
        state_dir: PathBuf,
    ) -> Runtime {
        let nodeid = config.nodeid;
        let node = Node::new(config, clock.now());
        Runtime {
            clock,
            node,
            udpu,
            signals,
            faults,
            reporter,
            state_dir,
            nodeid,
            rx: Udpu::recv_buffer(),
            mcast_batch: Vec::new(),
            knet: None,
            loopback: VecDeque::new(),
            knet_out: Vec::new(),
            link_sockets: Vec::new(),
            knet_links_changed: false,
            crypto: None,
            stats: RuntimeStats::default(),
            send_errors_reported: 0,
            send_errors_reported_at: None,
            malformed_log: LogLimit::new(MALFORMED_LOGS, MALFORMED_LOG_WINDOW),
            gso_refused_reported: Vec::new(),
            net_status: None,
            senders: None,
            forged_log: LogLimit::new(MALFORMED_LOGS, MALFORMED_LOG_WINDOW),
        }
    }

    /// Runs the transport as knet: `udpu`'s token socket carries knet packets built by
    /// `knet`, and our own messages go over the loopback link.
    pub fn use_knet(&mut self, config: KnetConfig) {
        self.knet = Some(Knet::new(config, self.clock.now()));
        self.knet_links_changed = true;
    }

    /// The sockets of knet's links other than 0, one per link (after [`Runtime::use_knet`]).
    pub fn use_knet_links(&mut self, sockets: Vec<LinkSocket>) {
        self.link_sockets = sockets;
    }

    /// The sockets of knet's links other than 0 (for their counters).
    pub fn knet_link_sockets(&self) -> &[LinkSocket] {
        &self.link_sockets
    }

    /// Drops, before the engine, messages no member of the nodelist can have sent.
    pub fn set_senders(&mut self, senders: Senders) {
        self.senders = Some(senders);
    }

    /// Keeps `net` current as knet links go up and down.
    pub fn set_net_status(&mut self, net: NetStatus) {
        self.net_status = Some(net);
    }

    /// Encrypts and authenticates every knet datagram with `crypto` (after [`Runtime::use_knet`]).
    pub fn use_knet_crypto(&mut self, crypto: LinkCrypto) {
        self.crypto = Some(crypto);
    }

    /// knet's crypto, when on (for its counters).
    pub fn knet_crypto(&self) -> Option<&LinkCrypto> {
        self.crypto.as_ref()
    }

    /// The knet link layer, when the transport is knet (for its counters).
    pub fn knet(&self) -> Option<&Knet> {
        self.knet.as_ref()
    }

    /// Hands a transmit to knet: our copy to the loopback link, the others framed.
    fn knet_send(&mut self, now: Instant, destination: Destination, bytes: Vec<u8>) {
        let Some(knet) = self.knet.as_mut() else {
            return;
        };
        knet.send(now, destination, &bytes, &mut self.knet_out);
        if destination == Destination::All || destination == Destination::Node(self.nodeid) {
            self.loopback.push_back(bytes);
        }
    }

    /// Sends what knet built: per destination in order, as GSO runs and sendmmsg batches;
    /// the destination of the last datagram (the token, after a token visit's multicasts)
    /// goes last, so that it never overtakes what was sent before it to the others.
    fn flush_knet(&mut self) {
        if let Some(crypto) = self.crypto.as_mut() {
            // libknet encrypts every packet it sends, heartbeat and PMTUD replies included.
            let clear = std::mem::take(&mut self.knet_out);
            self.knet_out.extend(
                clear
                    .into_iter()
                    .filter_map(|(addr, packet)| crypto.seal(&packet).map(|w| (addr, w))),
            );
        }
        if !self.knet_out.is_empty() {
            let mut order: Vec<std::net::SocketAddr> = Vec::new();
            for (addr, _) in self.knet_out.iter().rev() {
                if !order.contains(addr) {
                    order.push(*addr);
                }
            }
            for addr in order.into_iter().rev() {
                let packets: Vec<&[u8]> = self
                    .knet_out
                    .iter()
                    .filter(|(a, _)| *a == addr)
                    .map(|(_, b)| b.as_slice())
                    .collect();
                // Each link's packets leave from that link's socket.
                let link = self
                    .knet
                    .as_ref()
                    .and_then(|k| k.link_of(addr))
                    .unwrap_or(0);
                match self.link_sockets.iter_mut().find(|s| s.link() == link) {
                    Some(socket) => socket.send_batch_to(addr, &packets),
                    None => self.udpu.send_batch_to(addr, &packets),
                }
            }
            self.knet_out.clear();
        }
        if let Some(knet) = self.knet.as_mut() {
            while let Some(event) = knet.poll_event() {
                self.knet_links_changed = true;
                log_knet_event(event);
            }
        }
    }

    fn flush_mcasts(&mut self) {
        if self.mcast_batch.is_empty() {
            return;
        }
        let packets: Vec<&[u8]> = self.mcast_batch.iter().map(Vec::as_slice).collect();
        self.udpu.send_to_all(&packets);
        self.mcast_batch.clear();
    }

    /// The node (for getters).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The transport (for its counters).
    pub fn udpu(&self) -> &Udpu {
        &self.udpu
    }

    /// The fault injector (for its counters).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Runs until a signal, a source's request to stop, or a fatal error.
    pub fn run(&mut self, sources: &mut [&mut dyn EventSource]) -> Exit {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(sources.len());
        loop {
            let now = self.clock.now();
            if let Err(exit) = self.drain(now, sources) {
                return exit;
            }
            if let Err(exit) = self.loopback(now, sources) {
                return exit;
            }
            let deadline = [
                self.node.poll_timeout(),
                self.reporter.poll_timeout(),
                self.knet.as_ref().and_then(Knet::poll_timeout),
            ]
            .into_iter()
            .chain(sources.iter().map(|s| s.poll_timeout()))
            .flatten()
            .min();
            fds.clear();
            fds.push(sys::pollin(self.udpu.as_raw_fd()));
            fds.push(sys::pollin(self.signals.as_raw_fd()));
            for socket in &self.link_sockets {
                fds.push(sys::pollin(socket.as_raw_fd()));
            }
            spans.clear();
            for s in sources.iter() {
                let start = fds.len();
                s.pollfds(&mut fds);
                spans.push((start, fds.len()));
            }
            let timeout = if self.loopback.is_empty() {
                poll_timeout_ms(self.clock.now(), deadline)
            } else {
                0
            };
            if let Err(e) = sys::poll(&mut fds, timeout) {
                return Exit::Fatal {
                    message: format!("poll: {e}"),
                    code: EXIT_FATAL,
                };
            }
            let now = self.clock.now();
            if fds[1].revents != 0 {
                if let Some(signal) = self.signals.read() {
                    logf!(Main, Notice, "Node was shut down by a signal");
                    self.leave(now, sources);
                    return Exit::Signal(signal);
                }
            }
            if fds[0].revents != 0 {
                if let Err(exit) = self.receive(now, None, sources) {
                    return exit;
                }
            }
            for link in 0..self.link_sockets.len() {
                if fds[2 + link].revents != 0 {
                    if let Err(exit) = self.receive(now, Some(link), sources) {
                        return exit;
                    }
                }
            }
            for (i, (start, end)) in spans.iter().enumerate() {
                let ready = &fds[*start..*end];
                if ready.iter().any(|f| f.revents != 0) {
                    sources[i].process_ready(now, ready, &mut self.node);
                    if let Err(exit) = self.drain(now, sources) {
                        return exit;
                    }
                }
            }
            self.timers(sources);
            if let Some(why) = sources.iter().find_map(|s| s.fatal_requested()) {
                return Exit::Fatal {
                    message: format!("{why}: exiting with status -1, without leaving the ring"),
                    code: EXIT_KILLED,
                };
            }
            if sources.iter().any(|s| s.shutdown_requested()) {
                let now = self.clock.now();
                self.leave(now, sources);
                return Exit::Requested;
            }
        }
    }

    /// Due timers of the node, the reporter and the sources.
    fn timers(&mut self, sources: &mut [&mut dyn EventSource]) {
        let now = self.clock.now();
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
        self.knet_timers(now);
        self.reporter.handle_timeout(now);
        let dropped = self.crypto.as_ref().map(|c| c.stats.dropped());
        let links = match self.knet.as_ref() {
            Some(knet) if std::mem::take(&mut self.knet_links_changed) => knet.hosts_status(),
            _ => Vec::new(),
        };
        if !links.is_empty() {
            if let Some(n) = &self.net_status {
                n.set_knet_hosts(&links);
            }
        }
        for s in sources.iter_mut() {
            if let Some(d) = dropped {
                s.knet_crypto_dropped(now, d);
            }
            if !links.is_empty() {
                s.knet_links(now, &links);
            }
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now, &mut self.node);
            }
        }
    }

    fn knet_timers(&mut self, now: Instant) {
        if let Some(knet) = self.knet.as_mut() {
            if knet.poll_timeout().is_some_and(|t| t <= now) {
                knet.handle_timeout(now, &mut self.knet_out);
            }
        }
        self.flush_knet();
    }

    /// Up to a batch of datagrams from the token socket (`None`) or knet link socket
    /// `link`, each given to the engine and drained at once.
    fn receive(
        &mut self,
        now: Instant,
        link: Option<usize>,
        sources: &mut [&mut dyn EventSource],
    ) -> Result<(), Exit> {
        let mut buf = std::mem::take(&mut self.rx);
        let result = self.receive_into(now, link, &mut buf, sources);
        self.rx = buf;
        result
    }

    fn receive_into(
        &mut self,
        now: Instant,
        link: Option<usize>,
        buf: &mut [u8],
        sources: &mut [&mut dyn EventSource],
    ) -> Result<(), Exit> {
        for _ in 0..RECV_BATCH {
            let received = match link {
                None => self.udpu.recv(buf),
                Some(i) => self.link_sockets[i].recv(buf),
            };
            let (from, len) = match received {
                None => return Ok(()),
                Some(Recv::Datagram(from, len)) => (from, len),
                Some(Recv::Rejected(from)) => {
                    logf!(Totem, Debug, "Packet rejected from {}", from.ip());
                    continue;
                }
                Some(Recv::Truncated(from)) => {
                    logf!(
                        Totem,
                        Error,
                        "Received too big message from {from}. Dropping packet."
                    );
                    continue;
                }
            };
            let mut bytes = &buf[..len];
            let plain;
            if let Some(crypto) = self.crypto.as_mut() {
                match crypto.open(now, from, bytes) {
                    Some(p) => {
                        plain = p;
                        bytes = &plain;
                    }
                    None => continue,
                }
            }
            match self.knet.as_mut() {
                None => self.deliver(now, from, Source::Udp(from.ip()), bytes),
                Some(knet) => {
                    let received = knet.receive(now, from, bytes, &mut self.knet_out);
                    self.flush_knet();
                    match received {
                        Received::Message(host, message) => {
                            self.deliver(now, from, Source::Knet(host), &message)
                        }
                        Received::Consumed => continue,
                        Received::Dropped(why) => {
                            logf!(Knet, Debug, "rx: datagram from {from} dropped: {why:?}");
                            continue;
                        }
                    }
                }
            }
            self.drain(now, sources)?;
        }
        Ok(())
    }

    /// knet's loopback link: what we sent ourselves comes back as received, in order, like
    /// a datagram read in the next round of the loop (libknet writes it to corosync's datafd),
    /// so what it makes us send waits for the round after: a node alone with its token
    /// does not spin inside one round.
    fn loopback(&mut self, now: Instant, sources: &mut [&mut dyn EventSource]) -> Result<(), Exit> {
        let queued = std::mem::take(&mut self.loopback);
        for own in queued {
            self.deliver(now, "loopback", Source::Loopback, &own);
            self.drain(now, sources)?;
        }
        Ok(())
    }

    /// Logs what the kernel refused since the last report, at most every
    /// [`SEND_ERROR_REPORT_MS`] (corosync logs each failed sendmsg as "non-critical": the
    /// ring retransmits what was lost), and each member whose route refused a GSO send.
    fn report_send_errors(&mut self, now: Instant) {
        for nodeid in self.udpu.gso_refused() {
            if !self.gso_refused_reported.contains(&nodeid) {
                self.gso_refused_reported.push(nodeid);
                logf!(
                    Totem,
                    Notice,
                    "UDP GSO refused on the route to node {nodeid}: its datagrams go one by one"
                );
            }
        }
        let s = self.udpu.stats;
        let new = s.send_errors - self.send_errors_reported;
        let due = self
            .send_errors_reported_at
            .is_none_or(|at| (now - at).total_millis() as i64 >= SEND_ERROR_REPORT_MS);
        if new == 0 || !due {
            return;
        }
        let last = s
            .last_send_errno
            .map(|e| std::io::Error::from_raw_os_error(e).to_string())
            .unwrap_or_else(|| "none taken".into());
        logf!(
            Totem,
            Warning,
            "sendmsg failed (non-critical): {new} datagrams refused by the kernel since the last report ({} in all), last error: {last}",
            s.send_errors
        );
        self.send_errors_reported = s.send_errors;
        self.send_errors_reported_at = Some(now);
    }

    /// One totem message to the engine, as received (faults, log observations, malformed
    /// input counted and logged).
    fn deliver(
        &mut self,
        now: Instant,
        from: impl std::fmt::Display,
        source: Source,
        bytes: &[u8],
    ) {
        if self.faults.drop_received(bytes) {
            return;
        }
        let ring = Ring {
            operational: self.node.state() == totem_srp::MembState::Operational,
            id: self.node.ring_id(),
            members: self.node.members(),
        };
        if let Some(Err(why)) = self.senders.as_ref().map(|s| s.check(source, bytes, ring)) {
            self.stats.forged += 1;
            let allowed = self.forged_log.allow(now);
            if allowed.held_back > 0 {
                logf!(
                    Totem,
                    Warning,
                    "{} more forged messages dropped (not logged; {} in all)",
                    allowed.held_back,
                    self.stats.forged
                );
            }
            if allowed.log {
                logf!(
                    Totem,
                    Warning,
                    "{} from {from} dropped ({} so far): {why}",
                    Header::parse(bytes)
                        .map_or("message".into(), |h| format!("{:?}", h.message_type)),
                    self.stats.forged
                );
            }
            return;
        }
        self.observe(now, bytes);
        if let Err(e) = self.node.handle_datagram(now, bytes) {
            self.stats.malformed += 1;
            let allowed = self.malformed_log.allow(now);
            if allowed.held_back > 0 {
                logf!(
                    Totem,
                    Warning,
                    "{} more malformed datagrams dropped (not logged; {} in all)",
                    allowed.held_back,
                    self.stats.malformed
                );
            }
            if allowed.log {
                logf!(
                    Totem,
                    Warning,
                    "Malformed datagram from {from} ({} bytes, {} so far) dropped: {e}",
                    bytes.len(),
                    self.stats.malformed
                );
            }
        }
    }

    /// What the log needs that the engine does not report: ORF token arrivals (token
    /// warning) and LEAVEs ("Failed to receive the leave message"). Only the header is
    /// parsed for other messages.
    fn observe(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(header) = Header::parse(bytes) else {
            return;
        };
        match header.message_type {
            MessageType::OrfToken => self.reporter.token_received(now),
            // LEAVE_DUMMY_NODEID in the header marks a leave.
            MessageType::MembJoin if header.nodeid == 0 => {
                if let Ok((Message::MembJoin(join), _)) = Message::parse(bytes) {
                    self.reporter.leave_received(join.system_from);
                }
            }
            _ => {}
        }
    }

    /// Sends every transmit and dispatches every event.
    fn drain(&mut self, now: Instant, sources: &mut [&mut dyn EventSource]) -> Result<(), Exit> {
        // The multicasts of one token visit go out together (one sendmmsg per member);
        // a unicast (the token, a commit token) first flushes what came before it, so
        // that every datagram leaves in the engine's order.
        while let Some(t) = self.node.poll_transmit() {
            if self.knet.is_some() {
                // Sent together after the loop (flush_knet).
                self.knet_send(now, t.destination, t.bytes);
                continue;
            }
            match t.destination {
                Destination::All => self.mcast_batch.push(t.bytes),
                Destination::Node(_) => {
                    self.flush_mcasts();
                    self.udpu.send(&t);
                }
            }
        }
        self.flush_mcasts();
        self.flush_knet();
        self.report_send_errors(now);
        while let Some(output) = self.node.poll_output() {
            let event = match output {
                NodeOutput::Event(event) => event,
                NodeOutput::Votequorum { from, message } => {
                    self.reporter.votequorum(from, &message);
                    for s in sources.iter_mut() {
                        s.votequorum(now, from, &message);
                    }
                    continue;
                }
                NodeOutput::Evs(event) => {
                    for s in sources.iter_mut() {
                        s.evs_event(now, &event);
                    }
                    continue;
                }
                NodeOutput::Cfg { from, message } => {
                    for s in sources.iter_mut() {
                        s.cfg_exec(now, from, &message, self.nodeid);
                    }
                    continue;
                }
            };
            if let NodeEvent::StoreRingId(ring) = &event {
                if let Err(e) = persist::store(&self.state_dir, self.nodeid, ring.seq) {
                    let message = format!(
                        "Couldn't store new ring id {:x} to stable storage: {e}",
                        ring.seq
                    );
                    logf!(Main, Error, "{message}");
                    return Err(Exit::Fatal {
                        message,
                        code: EXIT_STORE_RINGID,
                    });
                }
            }
            self.reporter.event(now, &event);
            for s in sources.iter_mut() {
                s.node_event(now, &event);
            }
        }
        for s in sources.iter_mut() {
            s.update_node(&mut self.node);
        }
        Ok(())
    }

    /// The clean exit: sources first (clients' leaves), then the LEAVE, sent before exit.
    /// corosync unloads its services before `totempg_finalize` (`corosync_service_unlink_all`
    /// → `cs_ipcs_service_destroy` → `cpg_lib_exit_fn`, whose PROCLEAVEs are multicast while
    /// the main loop still runs), so that the other nodes' clients see PROCDOWN for them,
    /// not NODEDOWN: the ring runs on until what the sources queued has been multicast, or
    /// [`SETTLE_MAX`] passed.
    fn leave(&mut self, now: Instant, sources: &mut [&mut dyn EventSource]) {
        for s in sources.iter_mut() {
            s.shutdown(&mut self.node);
        }
        self.settle(sources);
        self.node.leave_ring();
        // A failure to store a ring id now would not change the exit: the node is leaving.
        let _ = self.drain(now, sources);
        // Our own LEAVE is not for us (over udpu it would still be in the socket).
        self.loopback.clear();
    }

    /// Runs the ring alone (token socket and timers; no source, no signal) until the node
    /// has nothing left to multicast or [`SETTLE_MAX`] passed.
    fn settle(&mut self, sources: &mut [&mut dyn EventSource]) {
        let start = self.clock.now();
        let until = start + SETTLE_MAX;
        loop {
            let now = self.clock.now();
            if self.drain(now, sources).is_err() || self.loopback(now, sources).is_err() {
                return;
            }
            let backlog = self.node.send_backlog();
            if backlog == 0 || now >= until {
                logf!(
                    Main,
                    Debug,
                    "shutdown: {backlog} messages not multicast after {} ms",
                    (now - start).total_millis()
                );
                return;
            }
            let deadline = [
                self.node.poll_timeout(),
                self.knet.as_ref().and_then(Knet::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .fold(until, Instant::min);
            let timeout = if self.loopback.is_empty() {
                poll_timeout_ms(now, Some(deadline))
            } else {
                0
            };
            let mut fds = vec![sys::pollin(self.udpu.as_raw_fd())];
            for socket in &self.link_sockets {
                fds.push(sys::pollin(socket.as_raw_fd()));
            }
            if sys::poll(&mut fds, timeout).is_err() {
                return;
            }
            let now = self.clock.now();
            if fds[0].revents != 0 && self.receive(now, None, sources).is_err() {
                return;
            }
            for link in 0..self.link_sockets.len() {
                if fds[1 + link].revents != 0 && self.receive(now, Some(link), sources).is_err() {
                    return;
                }
            }
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            self.knet_timers(now);
            self.reporter.handle_timeout(now);
        }
    }
}

/// libknet's lines for a link change: `threads_rx.c` ("is up"), `threads_heartbeat.c`
/// ("is down"), `host.c::_host_dstcache_update_sync` (the host's data links).
fn log_knet_event(event: KnetEvent) {
    match event {
        KnetEvent::LinkUp { host, link } => {
            logf!(Knet, Info, "rx: host: {host} link: {link} is up");
        }
        KnetEvent::LinkDown { host, link } => {
            logf!(Knet, Info, "link: host: {host} link: {link} is down");
        }
        KnetEvent::Links {
            host,
            mode,
            best,
            active,
        } => {
            match (mode, best) {
                (LinkMode::Passive, Some((link, pri))) => logf!(
                    Knet,
                    Info,
                    "host: host: {host} (passive) best link: {link} (pri: {pri})"
                ),
                (LinkMode::Passive, None) => {}
                _ => logf!(Knet, Info, "host: host: {host} has {active} active links"),
            }
            if active == 0 {
                logf!(Knet, Warning, "host: host: {host} has no active links");
            }
        }
    }
}
