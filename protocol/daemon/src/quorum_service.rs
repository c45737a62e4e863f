//! The `quorum`, `votequorum` and `cmap` services for corosync's tools (`corosync-quorumtool`
//! needs all three, with `cfg` from [`crate::cpg_service`]): one more socket-type IPC
//! server ([`crate::ipc`]) as an [`EventSource`] of the daemon's loop. Every request is
//! answered at once from the node's quorum view ([`totem_votequorum::Votequorum`]) or the
//! daemon's icmap ([`crate::cmap::SharedIcmap`], shared with the CPG server's accept check);
//! nothing goes on the ring. Totem configurations update `runtime.members.*` in the map,
//! and cmap track notifications go out on their connections' dispatch channels.
//!
//! As in corosync (`cs_ipcs_connection_accept`): connections are refused with `-EAGAIN`
//! until the first completed sync (`main.c::corosync_sync_completed`), then root, the
//! `uidgid` ids and the `uidgid.uid.N` / `uidgid.gid.N` keys set at run time are accepted; the three services allow inquorate clients. votequorum's state
//! ([`totem_votequorum::Votequorum`]) follows the node's configurations, votequorum messages
//! (the members' NODEINFO) and completed syncs; after each batch of them the node is given
//! this node's record for its next NODEINFO. When a new ring's sync completes
//! (votequorum's `sync_activate`), trackers (CS_TRACK_CHANGES) are told: the quorum
//! NOTIFICATION to quorum clients (`quorum_api_set_quorum` → `send_library_notification`),
//! the NODELIST and QUORUM notifications to votequorum clients; a change of quorate outside
//! sync (a NODEINFO or RECONFIGURE) tells them the quorum and QUORUM notifications.

use std::collections::BTreeMap;
use std::io;

use totem_cpg::{Node, NodeEvent, VotequorumMessage};
use totem_srp::Instant;

use crate::cmap::{self, CmapConn, Icmap, SharedIcmap, Value};
use crate::evs_service::Quorate;
use crate::ipc::{ConnId, IpcConfig, IpcError, IpcEvent, IpcServer, IpcStats};
use crate::logf;
use crate::quorum::{self, QuorumConn, Reply, SyncView};
use crate::runtime::EventSource;
use crate::votequorum::{self, VotequorumConn};
use totem_srp::ConfigurationKind;
use totem_votequorum::NODESTATE_MEMBER;
use totem_votequorum::{VoteConfig, Votequorum};
use totem_wire::exec::votequorum::ReconfigureParam;
use totem_wire::ipc::quorum::QuorumRingId;
use totem_wire::srp::RingId;

/// How the services are set up.
#[derive(Debug, Clone)]
pub struct QuorumServiceConfig {
    /// The IPC server (its `services` are replaced by the three names).
    pub ipc: IpcConfig,
    /// votequorum's settings.
    pub vote: VoteConfig,
    /// The daemon's icmap (also in `ipc.icmap` for the accept check).
    pub icmap: SharedIcmap,
}

impl QuorumServiceConfig {
    /// corosync's policy: root, plus these uids and primary gids (`uidgid { }`).
    pub fn new(allowed_uids: Vec<u32>, allowed_gids: Vec<u32>) -> QuorumServiceConfig {
        let mut ipc = IpcConfig::new(SERVICES);
        ipc.allowed_uids = allowed_uids;
        ipc.allowed_gids = allowed_gids;
        QuorumServiceConfig {
            ipc,
            vote: VoteConfig::default(),
            icmap: Icmap::new().shared(),
        }
    }
}

/// `corosync_quorum_is_quorate` (`vsf_quorum.c`): what the provider last told the quorum
/// service (`quorum_api_set_quorum`); with no provider, always.
fn is_quorate(vq: &Votequorum) -> bool {
    !vq.config().provider || vq.view.quorate
}

/// The services' names.
pub const SERVICES: [&str; 3] = [quorum::SERVICE, votequorum::SERVICE, cmap::SERVICE];

/// One connection and what it asked for.
enum Client {
    Quorum(QuorumConn),
    Votequorum(VotequorumConn),
    Cmap(CmapConn),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumServiceStats {
    /// Requests answered.
    pub requests: u64,
    /// Clients disconnected for a malformed request.
    pub bad_requests: u64,
}

/// The three services as an [`EventSource`].
pub struct QuorumService {
    server: IpcServer,
    vq: Votequorum,
    icmap: SharedIcmap,
    /// votequorum's `ev_barrier`: the expected votes read at start, then each
    /// RECONFIGURE of them.
    ev_barrier: u32,
    clients: BTreeMap<ConnId, (Client, i32)>,
    events: Vec<IpcEvent>,
    connections_allowed: bool,
    stats: QuorumServiceStats,
    /// `corosync_quorum_is_quorate`, for the services that are refused while inquorate.
    quorate: Quorate,
    /// The last sync's ring and members (for model-v1 quorum clients).
    sync: SyncView,
    /// The ring being synced and its members (`quorum_sync_init`), until it completes.
    syncing: Option<(RingId, Vec<u32>)>,
    /// RECONFIGUREs asked through libvotequorum, to multicast.
    outgoing: Vec<VotequorumMessage>,
}

impl QuorumService {
    /// Listens on `\0quorum`, `\0votequorum`, `\0cmap` (or their `SOCKETDIR` files).
    pub fn new(
        config: QuorumServiceConfig,
        nodeid: u32,
        now: Instant,
    ) -> io::Result<QuorumService> {
        let mut ipc = config.ipc;
        ipc.services = SERVICES.iter().map(|s| (*s).to_owned()).collect();
        let mut server = IpcServer::new(ipc, now)?;
        server.set_allow_connections(false);
        let vq = Votequorum::new(config.vote, nodeid);
        let ev_barrier = vq.expected_votes();
        let mut service = QuorumService {
            server,
            quorate: Quorate::new(is_quorate(&vq)),
            vq,
            ev_barrier,
            icmap: config.icmap,
            clients: BTreeMap::new(),
            events: Vec::new(),
            connections_allowed: false,
            stats: QuorumServiceStats::default(),
            sync: SyncView::default(),
            syncing: None,
            outgoing: Vec::new(),
        };
        service.votequorum_keys();
        Ok(service)
    }

    /// `runtime.votequorum.*` as `votequorum.c` keeps them: `two_node` and `ev_barrier`
    /// (`update_two_node`, `update_ev_barrier`), `wait_for_all_status` when wait_for_all
    /// is on, and `lowest_node_id` / `highest_node_id` among the members each time the
    /// node is quorate (`are_we_quorate` → `get_lowest_node_id`, `get_highest_node_id`).
    fn votequorum_keys(&mut self) {
        let vq = &self.vq;
        let config = vq.config();
        if !config.provider {
            return;
        }
        let mut m = cmap::lock(&self.icmap);
        m.set_value("runtime.votequorum.ev_barrier", Value::u32(self.ev_barrier));
        m.set_value(
            "runtime.votequorum.two_node",
            Value::u8(u8::from(config.two_node)),
        );
        if config.wait_for_all {
            m.set_value(
                "runtime.votequorum.wait_for_all_status",
                Value::u8(u8::from(vq.waiting_for_all)),
            );
        }
        if vq.quorate {
            let me = vq.nodeid();
            let members = vq
                .nodes
                .iter()
                .filter(|(_, n)| n.state == NODESTATE_MEMBER)
                .map(|(id, _)| *id)
                .chain([me]);
            let (low, high) = members.fold((me, me), |(l, h), id| (l.min(id), h.max(id)));
            m.set_value("runtime.votequorum.lowest_node_id", Value::u32(low));
            m.set_value("runtime.votequorum.highest_node_id", Value::u32(high));
        }
    }

    /// The IPC server's counters.
    pub fn ipc_stats(&self) -> IpcStats {
        self.server.stats()
    }

    /// The services' counters.
    pub fn stats(&self) -> QuorumServiceStats {
        self.stats
    }

    /// The quorum view.
    pub fn votequorum(&self) -> &Votequorum {
        &self.vq
    }

    /// `corosync_quorum_is_quorate`, kept current as the view changes (for EVS,
    /// EVS-CODE-8).
    pub fn quorate(&self) -> Quorate {
        self.quorate.clone()
    }

    fn work(&mut self, now: Instant, ready: &[libc::pollfd]) {
        let mut events = std::mem::take(&mut self.events);
        self.server.process_ready(now, ready, &mut events);
        for event in events.drain(..) {
            match event {
                IpcEvent::Connected {
                    conn,
                    service,
                    creds,
                } => {
                    let client = match service.as_str() {
                        quorum::SERVICE => Client::Quorum(QuorumConn::default()),
                        votequorum::SERVICE => Client::Votequorum(VotequorumConn::default()),
                        cmap::SERVICE => Client::Cmap(CmapConn::new(conn.get())),
                        _ => {
                            let _ = self.server.disconnect(conn);
                            continue;
                        }
                    };
                    logf!(
                        Main,
                        Debug,
                        "{service} connection created: pid {} uid {} gid {} ({conn})",
                        creds.pid,
                        creds.uid,
                        creds.gid
                    );
                    self.clients.insert(conn, (client, creds.pid));
                }
                IpcEvent::Request { conn, bytes } => self.request(conn, &bytes),
                IpcEvent::Refused { creds, errno, .. } => {
                    crate::cpg_service::log_refusal(creds, errno)
                }
                IpcEvent::Disconnected { conn, .. } => {
                    // cmap_lib_exit_fn: the connection's tracks end with it.
                    if let Some((Client::Cmap(_), _)) = self.clients.remove(&conn) {
                        cmap::lock(&self.icmap).drop_owner(conn.get());
                    }
                }
            }
        }
        self.events = events;
    }

    /// One request: answered at once (events first, as corosync's handlers dispatch them
    /// before the response), or the client goes.
    fn request(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some((client, pid)) = self.clients.get_mut(&conn) else {
            return;
        };
        let (name, result) = match client {
            Client::Quorum(c) => (
                quorum::SERVICE,
                quorum::reply(bytes, &self.vq, &self.sync, c),
            ),
            Client::Votequorum(c) => (
                votequorum::SERVICE,
                votequorum::reply(bytes, &mut self.vq, c, &mut self.outgoing),
            ),
            Client::Cmap(c) => (
                cmap::SERVICE,
                cmap::reply(bytes, &mut cmap::lock(&self.icmap), c),
            ),
        };
        match result {
            Ok(Reply { events, response }) => {
                self.stats.requests += 1;
                for e in &events {
                    self.send_event(conn, e);
                }
                // icmap's track callbacks run inside icmap_set: their events go before the
                // response.
                self.flush_notifications();
                match self.server.respond(conn, &response) {
                    Ok(()) | Err(IpcError::NotConnected(_) | IpcError::Disconnected(_)) => {}
                    Err(e) => logf!(Main, Error, "{name} response to {conn} not sent: {e}"),
                }
            }
            Err(why) => {
                self.stats.bad_requests += 1;
                logf!(
                    Main,
                    Warning,
                    "Disconnecting {name} client pid {pid}: {why}"
                );
                self.clients.remove(&conn);
                let _ = self.server.disconnect(conn);
            }
        }
    }

    /// `cmap_notify_fn`: each queued notification on its connection's dispatch channel.
    fn flush_notifications(&mut self) {
        let notes = cmap::lock(&self.icmap).take_notifications();
        for n in notes {
            let conn = self.clients.keys().find(|c| c.get() == n.owner).copied();
            if let Some(conn) = conn {
                self.send_event(conn, &n.bytes);
            }
        }
    }

    fn send_event(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.server.send_event(conn, bytes) {
            Ok(()) | Err(IpcError::NotConnected(_)) => {}
            Err(e) => logf!(Main, Debug, "event for {conn} not sent: {e}"),
        }
    }

    /// `quorum_sync_activate`: the sync's members become the old list, and model-v1
    /// trackers get the NODELIST with who joined and who left (before votequorum's
    /// activation sets the quorum: services activate in id order).
    fn sync_activated(&mut self, ring: RingId) {
        let Some((syncing, members)) = self.syncing.take() else {
            return;
        };
        if syncing != ring {
            return;
        }
        let old = std::mem::take(&mut self.sync.members);
        self.sync = SyncView {
            ring_id: QuorumRingId {
                nodeid: ring.rep,
                seq: ring.seq,
            },
            joined: members
                .iter()
                .copied()
                .filter(|m| !old.contains(m))
                .collect(),
            left: old
                .iter()
                .copied()
                .filter(|m| !members.contains(m))
                .collect(),
            members,
        };
        let event = quorum::nodelist_event(&self.sync, true);
        let trackers: Vec<ConnId> = self
            .clients
            .iter()
            .filter_map(|(conn, (client, _))| match client {
                Client::Quorum(c) if c.tracking && c.v1 => Some(*conn),
                _ => None,
            })
            .collect();
        for conn in trackers {
            self.send_event(conn, &event);
        }
    }

    /// `quorum_api_set_quorum` was called: the trackers are told (with the NODELIST
    /// first at the end of a sync: corosync sends it from `sync_process`).
    fn notify(&mut self, nodelist: bool) {
        let mut out: Vec<(ConnId, Vec<u8>)> = Vec::new();
        for (&conn, (client, _)) in &self.clients {
            match client {
                Client::Quorum(c) if c.tracking => {
                    out.push((conn, quorum::notification_event(&self.vq, c.v1)));
                }
                Client::Votequorum(VotequorumConn {
                    tracking: Some(context),
                }) => {
                    if nodelist {
                        out.push((conn, votequorum::nodelist_event(&self.vq, *context)));
                    }
                    out.push((conn, votequorum::quorum_event(&self.vq, *context)));
                }
                _ => {}
            }
        }
        for (conn, bytes) in out {
            self.send_event(conn, &bytes);
        }
    }
}

impl EventSource for QuorumService {
    fn pollfds(&self, fds: &mut Vec<libc::pollfd>) {
        self.server.pollfds(fds);
    }

    fn process_ready(&mut self, now: Instant, ready: &[libc::pollfd], node: &mut Node) {
        self.work(now, ready);
        for m in self.outgoing.drain(..) {
            node.votequorum_mcast(&m);
        }
    }

    fn node_event(&mut self, _now: Instant, event: &NodeEvent) {
        if let NodeEvent::Configuration {
            left,
            joined,
            kind,
            members,
            ring_id,
        } = event
        {
            // main.c::confchg_fn: runtime.members.<id>.*.
            cmap::lock(&self.icmap).confchg(left, joined);
            self.flush_notifications();
            if *kind == ConfigurationKind::Regular {
                // quorum_sync_init: the new ring and its members.
                self.syncing = Some((*ring_id, members.clone()));
            }
        }
        if let NodeEvent::SyncCompleted(ring) = event {
            self.sync_activated(*ring);
        }
        if self.vq.node_event(event) {
            self.notify(matches!(event, NodeEvent::SyncCompleted(_)));
        }
        self.quorate.set(is_quorate(&self.vq));
        self.votequorum_keys();
        self.flush_notifications();
        if matches!(event, NodeEvent::SyncCompleted(_)) && !self.connections_allowed {
            // main.c::corosync_sync_completed → cs_ipc_allow_connections(1).
            self.connections_allowed = true;
            self.server.set_allow_connections(true);
        }
    }

    fn votequorum(&mut self, _now: Instant, from: u32, message: &VotequorumMessage) {
        if let VotequorumMessage::Reconfigure {
            param: ReconfigureParam::ExpectedVotes,
            value,
            ..
        } = message
        {
            self.ev_barrier = *value;
        }
        let changed = self.vq.deliver(from, message);
        if let VotequorumMessage::Reconfigure {
            param: ReconfigureParam::ExpectedVotes,
            ..
        } = message
        {
            // votequorum_exec_send_expectedvotes_notification, before the quorum is
            // recalculated.
            let trackers: Vec<(ConnId, u64)> = self
                .clients
                .iter()
                .filter_map(|(conn, (client, _))| match client {
                    Client::Votequorum(VotequorumConn {
                        tracking: Some(context),
                    }) => Some((*conn, *context)),
                    _ => None,
                })
                .collect();
            for (conn, context) in trackers {
                let event = votequorum::expectedvotes_event(&self.vq, context);
                self.send_event(conn, &event);
            }
        }
        if changed {
            self.notify(false);
        }
        self.quorate.set(is_quorate(&self.vq));
        self.votequorum_keys();
        self.flush_notifications();
    }

    fn update_node(&mut self, node: &mut Node) {
        // Changes made through another server's handle of the map.
        self.flush_notifications();
        let info = self.vq.own_nodeinfo();
        if node.nodeinfo() != info {
            node.set_nodeinfo(info);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.server.next_deadline()
    }

    fn handle_timeout(&mut self, now: Instant, _node: &mut Node) {
        self.work(now, &[]);
    }

    fn shutdown(&mut self, _node: &mut Node) {
        self.server.set_allow_connections(false);
        for conn in std::mem::take(&mut self.clients).into_keys() {
            let _ = self.server.disconnect(conn);
        }
        let mut events = std::mem::take(&mut self.events);
        self.server
            .process_ready(self.server.now(), &[], &mut events);
        events.clear();
        self.events = events;
    }
}
