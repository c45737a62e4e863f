//! CPG for unmodified libcpg clients: the libqb IPC server ([`crate::ipc`]) in front
//! of the node's CPG library interface (`Node::ipc_*`, the same code the simulator
//! answers its clients with). This is corosync's IPC glue (`exec/ipc_glue.c`, ipc.md §3):
//!
//! * **accept** (`cs_ipcs_connection_accept`, ipc.md §3.2): `-EAGAIN` until the first
//!   "Completed service synchronization" (`cs_ipc_allow_connections(1)` in
//!   `main.c::corosync_sync_completed`), then uid 0 or gid 0, or an id of the `uidgid`
//!   section, else `-EACCES`;
//! * **requests** (`cs_ipcs_msg_process`): each goes to `Node::ipc_request`; its response,
//!   if any, goes back on the connection. An MCAST the ring cannot take now
//!   ([`LibReply::Retry`]) is kept, and nothing more is read from that client until the
//!   ring takes it: corosync drops it with a WARNING, we apply back-pressure instead;
//! * **events**: the node's client events go out on the event channel, in order
//!   ([`totem_cpg::event_bytes`]);
//! * **flow control** (`cs_ipcs_check_for_flow_control`, ipc.md §2.6): after each batch the
//!   node's value (2 during a sync or while totem's queue is critical, else 0) is written to
//!   every connection's control file, and re-checked every millisecond while it is not 0
//!   (`main.c::corosync_recheck_the_q_level`). One addition: a client with more than
//!   [`EVENT_BACKLOG_HIGH`] of unread events gets 2 as well, until it is below
//!   [`EVENT_BACKLOG_LOW`]. corosync queues events without bound (`msg_send_or_queue`);
//!   here the queue is bounded and overflowing it disconnects, so a client that sends faster
//!   than it dispatches (libcpg then answers its mcasts CS_ERR_TRY_AGAIN, and it dispatches)
//!   is slowed down before that;
//! * **disconnection** (`cs_ipcs_connection_closed` → `cpg_lib_exit_fn`): the node sends
//!   PROCLEAVE(PROCDOWN) for a joined client and its zero-copy buffers are freed;
//! * **shutdown**: every client is disconnected first, so that their PROCLEAVEs go out
//!   before the ring LEAVE (`corosync_service_unlink_all` runs before `totempg_finalize`).
//!
//! The same server also listens on `cfg` for the read-only calls of corosync's tools
//! ([`crate::cfg`]): `corosync-cpgtool` will not run without it; and on `evs`, whose
//! connections it hands to [`crate::evs_service`] (so that EVS has CPG's IPC type, access
//! rules, bounds and recording). The flow control above is CPG's alone: EVS connections
//! keep theirs open (see that module).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::IpAddr;

use totem_cpg::{CfgExec, EvsEvent, LibReply, Node, NodeEvent};
use totem_srp::{Duration, Instant};
use totem_wire::exec::cpg::PartialType;
use totem_wire::ipc::cpg::CpgRequestId;
use totem_wire::ipc::{CpgRequest, RequestHeader};

use crate::cfg::{self, CfgAction, CfgContext, CfgService};
use crate::evs_service::{self, EvsClients, EvsStats, Quorate};
use crate::ipc::{
    ConnId, Creds, DisconnectReason, FlowControl, IpcConfig, IpcError, IpcEvent, IpcServer,
    IpcStats,
};
use crate::logf;
use crate::net_status::NetStatus;
use crate::runtime::EventSource;
use crate::zerocopy::{ShmZeroCopy, ZeroCopyLimits, ZeroCopyStats};

/// The service name libcpg connects to (`cs_ipcs_serv_short_name(CPG_SERVICE)`).
pub const SERVICE: &str = "cpg";

/// The services the server listens on.
pub const SERVICES: [&str; 3] = [SERVICE, cfg::SERVICE, evs_service::SERVICE];

/// `main.c::corosync_recheck_the_q_level`'s period while clients are flow-controlled.
pub const FLOW_CONTROL_RECHECK: Duration = Duration::from_millis(1);

/// Unread events above which a client's mcasts are flow-controlled (see the module doc).
pub const EVENT_BACKLOG_HIGH: usize = 8 << 20;
/// ... and below which they are not any more.
pub const EVENT_BACKLOG_LOW: usize = 4 << 20;
/// The same two marks in messages: small events fill the queue's message bound (16384)
/// long before its byte bound, so both count (the ring benchmark's 64-byte flood was
/// disconnected at 16384 unread events, 4 MB, under the byte mark).
pub const EVENT_BACKLOG_HIGH_MSGS: usize = 8192;
/// Unread messages below which the flow control is lifted again.
pub const EVENT_BACKLOG_LOW_MSGS: usize = 4096;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct CpgServiceConfig {
    /// The IPC server (its `services` are replaced by [`SERVICE`], [`cfg::SERVICE`] and
    /// [`evs_service::SERVICE`]).
    pub ipc: IpcConfig,
    /// Zero-copy buffers.
    pub zero_copy: ZeroCopyLimits,
    /// The nodelist's addresses, for `corosync_cfg_get_node_addrs`.
    pub node_addrs: BTreeMap<u32, Vec<IpAddr>>,
}

impl CpgServiceConfig {
    /// corosync's policy: root, plus these uids and primary gids (`uidgid { }`).
    pub fn new(allowed_uids: Vec<u32>, allowed_gids: Vec<u32>) -> CpgServiceConfig {
        let mut ipc = IpcConfig::new(SERVICES);
        ipc.allowed_uids = allowed_uids;
        ipc.allowed_gids = allowed_gids;
        // What a client may have unread before it is dropped: well above the marks where
        // its mcasts are stopped, by what it may already have sent when it is told. With
        // the shm type that is a full request ring: 1 MiB of MCAST requests, at least 48
        // bytes each with their chunk header, so up to 21846 more events of its own (the
        // 64-byte flood of the ring benchmark overflowed 16384 within 0.3 s).
        // EVS connections share these bounds; why they suit 1.4's programs is in
        // crate::evs_service.
        ipc.queue_max_bytes = 64 << 20;
        ipc.queue_max_msgs = EVENT_BACKLOG_HIGH_MSGS + 32768;
        CpgServiceConfig {
            ipc,
            zero_copy: ZeroCopyLimits::default(),
            node_addrs: BTreeMap::new(),
        }
    }
}

/// Logs a refused connection as `cs_ipcs_connection_accept` does (exec/ipc_glue.c).
pub(crate) fn log_refusal(creds: Creds, errno: i32) {
    match errno {
        libc::EAGAIN => logf!(Main, Debug, "Denied connection, corosync is not ready"),
        libc::EACCES => logf!(
            Main,
            Error,
            "Denied connection attempt from {}:{}",
            creds.uid,
            creds.gid
        ),
        e => logf!(
            Main,
            Error,
            "Could not set up an IPC connection for pid {}: {}",
            creds.pid,
            io::Error::from_raw_os_error(e)
        ),
    }
}

/// Counters of the service (the IPC server and zero-copy buffers have their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpgStats {
    /// Times a client's reading stopped because the ring could not take its MCAST (the
    /// MCAST is kept and offered again, with what the client sent after it).
    pub held_back: u64,
    /// Clients disconnected for a malformed CPG request.
    pub bad_requests: u64,
    /// Client events that could not be delivered (the client was gone or overflowed).
    pub events_lost: u64,
    /// Requests still held back at shutdown, and so never sent.
    pub dropped_at_shutdown: u64,
}

/// One connected libcpg client.
struct Client {
    /// Its connection in the node's CPG service.
    node: totem_cpg::ConnId,
    creds: Creds,
    /// Requests waiting for the ring, oldest first: the MCAST it refused, then whatever the
    /// client had sent after it. Bounded: reading stops with the first, so what follows is
    /// at most one read batch and the requests left behind by a hangup.
    backlog: VecDeque<Vec<u8>>,
    /// The client hung up while requests were held back: the disconnection waits for them.
    closing: Option<DisconnectReason>,
    /// Its unread events passed EVENT_BACKLOG_HIGH (and not yet back under the low mark).
    backlogged: bool,
    /// What its control file says.
    flow: FlowControl,
    /// It is inside `cpg_mcast_joined` for a message libcpg cuts into PARTIAL_MCASTs
    /// (FIRST handed to the node, LAST not yet): the whole message's length.
    sending_partial: Option<usize>,
    /// Its queue bound was raised for such a message and is not back to normal yet.
    allowance: bool,
}

/// The CPG service as an [`EventSource`] of the daemon's loop.
pub struct CpgService {
    server: IpcServer,
    zc: ShmZeroCopy,
    clients: BTreeMap<ConnId, Client>,
    by_node: HashMap<totem_cpg::ConnId, ConnId>,
    /// Connections to `cfg`, and its shutdown tracking.
    cfg: CfgService,
    /// The transport's view of each node, for cfg's NODESTATUSGET.
    net: Option<NetStatus>,
    /// Connections to `evs`.
    evs: EvsClients,
    node_addrs: BTreeMap<u32, Vec<IpAddr>>,
    events: Vec<IpcEvent>,
    /// What the control files say.
    flow: FlowControl,
    /// Something changed that may change the flow-control value (a sync, a new ring).
    recheck_now: Option<Instant>,
    /// When the last batch ran (the 1 ms re-check counts from it).
    last_work: Instant,
    connections_allowed: bool,
    stats: CpgStats,
}

fn flow_control(raw: i32) -> FlowControl {
    match raw {
        0 => FlowControl::Open,
        1 => FlowControl::StopAll,
        _ => FlowControl::StopMcast,
    }
}

impl CpgService {
    /// Listens on `\0cpg` (or `SOCKETDIR/cpg`); connections are refused with `-EAGAIN`
    /// until the node reports its first completed sync.
    pub fn new(config: CpgServiceConfig, now: Instant) -> io::Result<CpgService> {
        let mut ipc = config.ipc;
        ipc.services = SERVICES.iter().map(|s| (*s).to_owned()).collect();
        let mut server = IpcServer::new(ipc, now)?;
        server.set_allow_connections(false);
        Ok(CpgService {
            server,
            zc: ShmZeroCopy::new(config.zero_copy),
            clients: BTreeMap::new(),
            by_node: HashMap::new(),
            cfg: CfgService::new(),
            net: None,
            evs: EvsClients::default(),
            node_addrs: config.node_addrs,
            events: Vec::new(),
            flow: FlowControl::Open,
            recheck_now: None,
            last_work: now,
            connections_allowed: false,
            stats: CpgStats::default(),
        })
    }

    /// Records every IPC message of every client into `out` (`--record-ipc`).
    pub fn record_ipc_to(&mut self, out: Box<dyn std::io::Write>) -> io::Result<()> {
        self.server.record_to(out)
    }

    /// The IPC server's counters.
    pub fn ipc_stats(&self) -> IpcStats {
        self.server.stats()
    }

    /// The service's own counters.
    pub fn stats(&self) -> CpgStats {
        self.stats
    }

    /// Where EVS learns whether the node is quorate (EVS-CODE-8); without this call it
    /// counts as quorate, as with no quorum provider.
    pub fn set_quorate(&mut self, quorate: Quorate) {
        self.evs.set_quorate(quorate);
    }

    /// The EVS service's counters.
    pub fn evs_stats(&self) -> EvsStats {
        self.evs.stats()
    }

    /// Connected EVS clients.
    pub fn evs_clients(&self) -> usize {
        self.evs.len()
    }

    /// The zero-copy counters.
    pub fn zero_copy_stats(&self) -> ZeroCopyStats {
        self.zc.stats()
    }

    /// Connected CPG clients.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// One batch: what the IPC server reports, then held-back requests, then flow control.
    fn work(&mut self, now: Instant, ready: &[libc::pollfd], node: &mut Node) {
        let mut events = std::mem::take(&mut self.events);
        self.server.process_ready(now, ready, &mut events);
        for event in events.drain(..) {
            match event {
                IpcEvent::Connected {
                    conn,
                    service,
                    creds,
                } => self.connected(conn, &service, creds, node),
                IpcEvent::Request { conn, bytes } if self.cfg.contains(conn) => {
                    self.cfg_request(now, conn, &bytes, node);
                }
                IpcEvent::Request { conn, bytes } if self.evs.contains(conn) => {
                    self.evs.request(now, &mut self.server, conn, &bytes, node);
                }
                IpcEvent::Request { conn, bytes } => {
                    let Some(c) = self.clients.get_mut(&conn) else {
                        // Its connection was dropped earlier in this batch.
                        continue;
                    };
                    if c.backlog.is_empty() && c.closing.is_none() {
                        if !self.request(conn, bytes, node) {
                            self.stats.held_back += 1;
                        }
                    } else {
                        c.backlog.push_back(bytes);
                    }
                }
                IpcEvent::Refused { creds, errno, .. } => log_refusal(creds, errno),
                IpcEvent::Disconnected { conn, .. } if self.cfg.contains(conn) => {
                    let mut actions = Vec::new();
                    self.cfg.disconnected(conn, &mut actions);
                    self.apply_cfg(actions, node);
                }
                IpcEvent::Disconnected { conn, reason } if self.evs.contains(conn) => {
                    self.evs.disconnected(conn, &reason, node);
                }
                IpcEvent::Disconnected { conn, reason } => {
                    let Some(c) = self.clients.get_mut(&conn) else {
                        continue;
                    };
                    if c.backlog.is_empty() {
                        self.disconnected(conn, &reason, node);
                    } else {
                        // Its last requests still wait for the ring; PROCDOWN comes after.
                        c.closing = Some(reason);
                    }
                }
            }
        }
        self.events = events;
        self.retry_backlogs(node);
        self.publish_flow_control(node);
        self.recheck_now = None;
        self.last_work = now;
    }

    fn connected(&mut self, conn: ConnId, service: &str, creds: Creds, node: &mut Node) {
        if service == cfg::SERVICE {
            self.cfg.connected(conn, creds.pid);
            return;
        }
        if service == evs_service::SERVICE {
            self.evs.connected(conn, creds, node);
            return;
        }
        if service != SERVICE {
            let _ = self.server.disconnect(conn);
            return;
        }
        // cs_ipcs_connection_created → cpg_lib_init_fn.
        let node_conn = node.ipc_connect();
        self.zc.register(node_conn, creds.uid);
        self.clients.insert(
            conn,
            Client {
                node: node_conn,
                creds,
                backlog: VecDeque::new(),
                closing: None,
                backlogged: false,
                flow: self.flow,
                sending_partial: None,
                allowance: false,
            },
        );
        self.by_node.insert(node_conn, conn);
        let _ = self.server.set_flow_control(conn, self.flow);
        logf!(
            Main,
            Debug,
            "connection created: pid {} uid {} gid {} ({conn})",
            creds.pid,
            creds.uid,
            creds.gid
        );
    }

    /// One request of a `cfg` connection.
    fn cfg_request(&mut self, now: Instant, conn: ConnId, bytes: &[u8], node: &mut Node) {
        let ctx = CfgContext {
            nodeid: node.nodeid(),
            members: node.members(),
            node_addrs: &self.node_addrs,
            net: self.net.as_ref(),
        };
        // message_handler_req_lib_cfg_tryshutdown reads cfg.shutdown_timeout each time.
        if let Some(map) = &self.server.config().icmap {
            let timeout = crate::cmap::lock(map).get_u32("cfg.shutdown_timeout");
            self.cfg
                .set_shutdown_timeout(timeout.map(|ms| Duration::from_millis(u64::from(ms))));
        }
        let mut actions = Vec::new();
        self.cfg.request(now, conn, bytes, &ctx, &mut actions);
        self.apply_cfg(actions, node);
    }

    /// What the cfg service asked for.
    fn apply_cfg(&mut self, actions: Vec<CfgAction>, node: &mut Node) {
        for action in actions {
            match action {
                CfgAction::Respond(conn, bytes) => {
                    let _ = self.server.respond(conn, &bytes);
                }
                CfgAction::Event(conn, bytes) => {
                    let _ = self.server.send_event(conn, &bytes);
                }
                CfgAction::Mcast(message) => node.cfg_mcast(&message),
                CfgAction::Disconnect(conn, why) => {
                    self.stats.bad_requests += 1;
                    logf!(Main, Warning, "{why}");
                    let _ = self.server.disconnect(conn);
                    let mut more = Vec::new();
                    self.cfg.disconnected(conn, &mut more);
                    // A tracker going may decide a shutdown: its answers go out too.
                    for a in more {
                        match a {
                            CfgAction::Respond(c, b) => {
                                let _ = self.server.respond(c, &b);
                            }
                            CfgAction::Mcast(m) => node.cfg_mcast(&m),
                            CfgAction::Event(..) | CfgAction::Disconnect(..) => {}
                        }
                    }
                }
            }
        }
    }

    /// Where cfg's NODESTATUSGET reads the transport's view of each node.
    pub fn set_net_status(&mut self, net: NetStatus) {
        self.net = Some(net);
    }

    /// The cfg service's counters.
    pub fn cfg_stats(&self) -> cfg::CfgStats {
        self.cfg.stats()
    }

    /// Hands one request to the node. Returns false when the ring cannot take it yet: it
    /// is then at the front of the client's backlog and the client's reading is paused.
    fn request(&mut self, conn: ConnId, bytes: Vec<u8>, node: &mut Node) -> bool {
        let Some(c) = self.clients.get_mut(&conn) else {
            return true;
        };
        // A message above 1047552 bytes comes as PARTIAL_MCASTs from inside one
        // cpg_mcast_joined call (lib/cpg.c send_fragments), and the sender's own copies of
        // the pieces come back as events it cannot read before the call returns. So while
        // it sends one, its queue may hold the whole message (corosync's outq has no
        // bound at all), and its backlog must not stop it (publish_flow_control): stopped
        // half-way, a libcpg client can neither finish nor dispatch.
        // The header decides; only a PARTIAL_MCAST is decoded here (the node decodes
        // every request anyway).
        match RequestHeader::peek(&bytes).map(|h| CpgRequestId::from(h.id)) {
            Ok(CpgRequestId::PartialMcast) => {
                if let Ok(CpgRequest::PartialMcast { msglen, kind, .. }) = CpgRequest::parse(&bytes)
                {
                    if kind == PartialType::First {
                        c.sending_partial = Some(msglen as usize);
                        c.allowance = true;
                        let _ = self.server.set_queue_allowance(conn, msglen as usize);
                    } else if kind == PartialType::Last {
                        c.sending_partial = None;
                    }
                }
            }
            Ok(CpgRequestId::Mcast) => c.sending_partial = None,
            _ => {}
        }
        match node.ipc_request(c.node, &bytes, &mut self.zc) {
            LibReply::Response(reply) => {
                // corosync publishes a new flow-control value the moment totempg's queue
                // level changes, inside the handler (totempg's q_level callback →
                // cs_ipcs_check_for_flow_control), so before the response: libcpg reads it
                // for its next send as soon as the response is in. Published after the
                // batch instead, a PARTIAL_MCAST client (which sends the next fragment on
                // the response) saw a stale "open" and got its next fragment refused with
                // TRY_AGAIN, which ends cpg_mcast_joined half-way (lib/cpg.c send_fragments).
                // Only a change of the node's value is urgent; the clients' own backlogs
                // are rechecked after the batch.
                if flow_control(node.ipc_flow_control()) != self.flow {
                    self.publish_flow_control(node);
                }
                match self.server.respond(conn, &reply) {
                    // Gone meanwhile (hangup, overflow): its Disconnected follows.
                    Ok(()) | Err(IpcError::NotConnected(_) | IpcError::Disconnected(_)) => {}
                    Err(e) => logf!(Main, Error, "response to {conn} not sent: {e}"),
                }
            }
            LibReply::NoResponse => {}
            LibReply::Retry => {
                c.backlog.push_front(bytes);
                let _ = self.server.pause_requests(conn, true);
                return false;
            }
            LibReply::Disconnect(why) => {
                // corosync would not notice (it does not check lengths, ipc.md §3.4); a
                // broken request cannot be answered, so the client goes.
                self.stats.bad_requests += 1;
                logf!(
                    Main,
                    Warning,
                    "Disconnecting client pid {}: {why}",
                    c.creds.pid
                );
                let _ = self.server.disconnect(conn);
                self.disconnected(conn, &DisconnectReason::Server, node);
            }
        }
        true
    }

    /// Offers held-back requests to the node again, oldest first.
    fn retry_backlogs(&mut self, node: &mut Node) {
        let waiting: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| !c.backlog.is_empty())
            .map(|(&id, _)| id)
            .collect();
        for conn in waiting {
            while let Some(c) = self.clients.get_mut(&conn) {
                let Some(bytes) = c.backlog.pop_front() else {
                    match c.closing.take() {
                        Some(reason) => self.disconnected(conn, &reason, node),
                        None => {
                            let _ = self.server.pause_requests(conn, false);
                        }
                    }
                    break;
                };
                if !self.request(conn, bytes, node) {
                    break;
                }
            }
        }
    }

    /// `cs_ipcs_connection_closed` → `cpg_lib_exit_fn`.
    fn disconnected(&mut self, conn: ConnId, reason: &DisconnectReason, node: &mut Node) {
        let Some(c) = self.clients.remove(&conn) else {
            return;
        };
        self.by_node.remove(&c.node);
        node.ipc_disconnect(c.node, &mut self.zc);
        logf!(
            Main,
            Debug,
            "connection closed: pid {} ({conn}): {reason}",
            c.creds.pid
        );
    }

    /// `cs_ipcs_check_for_flow_control` for every connection, plus each client's own event
    /// backlog; written only where the value changes.
    fn publish_flow_control(&mut self, node: &mut Node) {
        self.flow = flow_control(node.ipc_flow_control());
        for (&conn, c) in self.clients.iter_mut() {
            let (msgs, bytes) = self.server.queued(conn).unwrap_or((0, 0));
            if c.sending_partial.is_some() {
                // See `request`: never stopped inside a fragmented message.
                c.backlogged = false;
            } else if bytes > EVENT_BACKLOG_HIGH || msgs > EVENT_BACKLOG_HIGH_MSGS {
                c.backlogged = true;
            } else if bytes < EVENT_BACKLOG_LOW && msgs < EVENT_BACKLOG_LOW_MSGS {
                c.backlogged = false;
            }
            if c.allowance && c.sending_partial.is_none() && bytes < EVENT_BACKLOG_LOW {
                c.allowance = false;
                let _ = self.server.set_queue_allowance(conn, 0);
            }
            let fc = if c.backlogged && self.flow == FlowControl::Open {
                FlowControl::StopMcast
            } else {
                self.flow
            };
            if fc != c.flow && self.server.set_flow_control(conn, fc).is_ok() {
                c.flow = fc;
            }
        }
    }

    fn forward(&mut self, event: &totem_cpg::ClientEvent) {
        let (node_conn, bytes) = totem_cpg::event_bytes(event);
        let Some(&conn) = self.by_node.get(&node_conn) else {
            return;
        };
        match self.server.send_event(conn, &bytes) {
            Ok(()) => {}
            Err(IpcError::Disconnected(_)) => {
                self.stats.events_lost += 1;
                logf!(
                    Main,
                    Warning,
                    "{conn} does not read its events: disconnected (queue overflow)"
                );
            }
            Err(e) => {
                self.stats.events_lost += 1;
                logf!(Main, Debug, "event for {conn} not sent: {e}");
            }
        }
    }
}

impl EventSource for CpgService {
    fn pollfds(&self, fds: &mut Vec<libc::pollfd>) {
        self.server.pollfds(fds);
    }

    fn process_ready(&mut self, now: Instant, ready: &[libc::pollfd], node: &mut Node) {
        self.work(now, ready, node);
    }

    fn evs_event(&mut self, _now: Instant, event: &EvsEvent) {
        self.evs.forward(&mut self.server, event);
    }

    fn node_event(&mut self, now: Instant, event: &NodeEvent) {
        match event {
            NodeEvent::Client(e) => self.forward(e),
            NodeEvent::SyncCompleted(_) => {
                if !self.connections_allowed {
                    // main.c::corosync_sync_completed → cs_ipc_allow_connections(1).
                    self.connections_allowed = true;
                    self.server.set_allow_connections(true);
                }
                self.recheck_now = Some(now);
            }
            NodeEvent::Configuration { .. } | NodeEvent::StateChanged { .. } => {
                self.recheck_now = Some(now);
            }
            NodeEvent::StoreRingId(_) => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let server = self.server.next_deadline();
        let held = self.clients.values().any(|c| !c.backlog.is_empty());
        let recheck =
            (held || self.flow != FlowControl::Open).then(|| self.last_work + FLOW_CONTROL_RECHECK);
        [server, recheck, self.recheck_now, self.cfg.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant, node: &mut Node) {
        let mut actions = Vec::new();
        self.cfg.handle_timeout(now, &mut actions);
        self.apply_cfg(actions, node);
        self.work(now, &[], node);
    }

    fn cfg_exec(&mut self, _now: Instant, from: u32, message: &CfgExec, my_nodeid: u32) {
        self.cfg.delivered(from, message, my_nodeid);
    }

    fn shutdown_requested(&self) -> bool {
        self.cfg.leave_requested()
    }

    fn fatal_requested(&self) -> Option<String> {
        self.cfg.killed().map(str::to_owned)
    }

    /// Every client is disconnected (PROCLEAVE for the joined ones) and no new one is
    /// accepted; the runtime then lets those messages out before the LEAVE.
    fn shutdown(&mut self, node: &mut Node) {
        self.server.set_allow_connections(false);
        self.retry_backlogs(node);
        for conn in self.cfg.conns() {
            let _ = self.server.disconnect(conn);
            self.cfg.disconnected(conn, &mut Vec::new());
        }
        self.evs.disconnect_all(&mut self.server, node);
        let conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in conns {
            if let Some(c) = self.clients.get(&conn) {
                if !c.backlog.is_empty() {
                    self.stats.dropped_at_shutdown += c.backlog.len() as u64;
                    logf!(
                        Main,
                        Warning,
                        "{} requests of client pid {} were still waiting for the ring at shutdown",
                        c.backlog.len(),
                        c.creds.pid
                    );
                }
            }
            let _ = self.server.disconnect(conn);
            self.disconnected(conn, &DisconnectReason::Server, node);
        }
        // The server's Disconnected reports are for clients already gone.
        let mut events = std::mem::take(&mut self.events);
        self.server
            .process_ready(self.server.now(), &[], &mut events);
        events.clear();
        self.events = events;
    }
}
