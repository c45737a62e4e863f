//! corosync's configuration service (`exec/cfg.c`) for libcfg clients: `corosync-cpgtool`
//! and `corosync-quorumtool` (node addresses, the local node id), `corosync-cfgtool -H` and
//! `-k`, and Pacemaker, whose pacemakerd tracks shutdowns (`corosync_cfg_trackstart`) and
//! refuses them while it runs.
//!
//! **Shutdown** (`message_handler_req_lib_cfg_tryshutdown` and `check_shutdown_status`):
//! * IMMEDIATE: the node multicasts cfg's SHUTDOWN and answers CS_OK at once;
//! * another shutdown already asked: CS_ERR_EXIST;
//! * no other tracking connection: CS_OK and SHUTDOWN;
//! * else every other tracker is asked (the TESTSHUTDOWN event) and the requester gets no
//!   answer until all have replied or `cfg.shutdown_timeout` (5000 ms) passed: all yes, or
//!   the REGARDLESS flag, is CS_OK and SHUTDOWN; otherwise CS_ERR_BUSY. At the timeout the
//!   undecided count as no and every tracker is sent TESTSHUTDOWN with CS_ERR_TIMEOUT.
//!   A tracker that stops tracking or goes counts as yes; the requester going cancels.
//!
//! SHUTDOWN, delivered, makes every node log "Node N was shut down by sysadmin" and the
//! sender leave the ring as on SIGTERM (`api->shutdown_request`). KILLNODE, for a node
//! whose `runtime.members.N.status` is "joined" (a member of the current ring), is
//! multicast; the named node logs "Killed by node N : reason" and exits at once with
//! status -1 (255), without a LEAVE (`corosync_fatal_error(COROSYNC_FATAL_ERROR_EXIT)`).
//!
//! NODESTATUSGET (`corosync-cfgtool -s`, `-n`) answers from the transport's view
//! ([`crate::net_status`]).
//!
//! Not done: RELOAD_CONFIG (`corosync-cfgtool -R`) is answered CS_ERR_NOT_SUPPORTED by the
//! asking node alone (totemd does not re-read corosync.conf at run time), and
//! RINGSTATUSGET, which corosync 3's tools no longer call, says CS_ERR_NOT_SUPPORTED with
//! the whole struct libcfg reads.
//!
//! The service is sans-IO: requests, hangups, deliveries and the timer go in,
//! [`CfgAction`]s come out; the layouts are the codec's (`totem_wire::ipc::cfg`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use totem_cpg::CfgExec;
use totem_srp::{Duration, Instant};
use totem_wire::ipc::cfg::{
    CfgRequest, CfgRequestId, CfgResponse, CFG_LIB_ENGINE_COUNT, NODE_STATUS_V1,
    SHUTDOWN_FLAG_IMMEDIATE, SHUTDOWN_FLAG_REGARDLESS, TOTEMIP_ADDRLEN,
};
use totem_wire::ipc::CsError;

use crate::ipc::ConnId;
use crate::net_status::NetStatus;

/// The service name (`cs_ipcs_serv_short_name(CFG_SERVICE)`).
pub const SERVICE: &str = "cfg";

/// `DEFAULT_SHUTDOWN_TIMEOUT` (ms), when `cfg.shutdown_timeout` is not set.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(5000);

/// What the service asks its server and node to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgAction {
    /// The response to a connection's request.
    Respond(ConnId, Vec<u8>),
    /// An event on a connection's dispatch channel.
    Event(ConnId, Vec<u8>),
    /// Multicast a cfg exec message.
    Mcast(CfgExec),
    /// Drop a connection that sent a request it cannot have meant.
    Disconnect(ConnId, String),
}

/// What the node knows that cfg answers from.
pub struct CfgContext<'a> {
    /// This node.
    pub nodeid: u32,
    /// The members of the current ring (`runtime.members.N.status` = "joined").
    pub members: &'a [u32],
    /// Every node's configured addresses (`totem_ifaces_get`).
    pub node_addrs: &'a BTreeMap<u32, Vec<IpAddr>>,
    /// The transport's view of each node (`totempg_nodestatus_get`), when known.
    pub net: Option<&'a NetStatus>,
}

/// A tracker's answer to the shutdown question (`cfg_info.shutdown_reply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Unknown,
    Yes,
    No,
}

#[derive(Debug, Clone)]
struct Client {
    pid: i32,
    /// On `trackers_list`.
    tracking: bool,
    reply: Reply,
}

/// A shutdown being decided (`shutdown_con` and its counters).
#[derive(Debug, Clone)]
struct Session {
    requester: ConnId,
    flags: u32,
    yes: u32,
    no: u32,
    expected: u32,
    deadline: Instant,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CfgStats {
    /// Shutdowns asked for.
    pub shutdowns_asked: u64,
    /// Of those, refused by a tracker (CS_ERR_BUSY).
    pub shutdowns_refused: u64,
    /// Clients dropped for malformed requests.
    pub bad_requests: u64,
}

/// The cfg service's state: its connections and the shutdown being decided.
#[derive(Debug, Default)]
pub struct CfgService {
    clients: BTreeMap<ConnId, Client>,
    session: Option<Session>,
    shutdown_timeout: Option<Duration>,
    /// Our own SHUTDOWN was delivered: the daemon leaves.
    leave: bool,
    /// A KILLNODE for us was delivered: exit now, with this line.
    killed: Option<String>,
    stats: CfgStats,
}

fn status(id: CfgRequestId, error: CsError) -> Vec<u8> {
    CfgResponse::Status {
        id: id.response_id(),
        error,
    }
    .to_bytes()
}

impl CfgService {
    /// No connection yet.
    pub fn new() -> CfgService {
        CfgService::default()
    }

    /// `cfg.shutdown_timeout` (ms) as the configuration map says, if set.
    pub fn set_shutdown_timeout(&mut self, timeout: Option<Duration>) {
        self.shutdown_timeout = timeout;
    }

    /// Is `conn` one of ours?
    pub fn contains(&self, conn: ConnId) -> bool {
        self.clients.contains_key(&conn)
    }

    /// Connections.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// No connection.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Connections, for a clean stop.
    pub fn conns(&self) -> Vec<ConnId> {
        self.clients.keys().copied().collect()
    }

    /// Counters.
    pub fn stats(&self) -> CfgStats {
        self.stats
    }

    /// Our own SHUTDOWN came back: leave the ring as on SIGTERM.
    pub fn leave_requested(&self) -> bool {
        self.leave
    }

    /// A KILLNODE named us: the line to exit with.
    pub fn killed(&self) -> Option<&str> {
        self.killed.as_deref()
    }

    /// A new connection (`cfg_lib_init_fn`: not tracking).
    pub fn connected(&mut self, conn: ConnId, pid: i32) {
        self.clients.insert(
            conn,
            Client {
                pid,
                tracking: false,
                reply: Reply::Unknown,
            },
        );
    }

    /// A connection went (`cfg_lib_exit_fn`).
    pub fn disconnected(&mut self, conn: ConnId, out: &mut Vec<CfgAction>) {
        self.remove_from_shutdown(conn, out);
        self.clients.remove(&conn);
    }

    /// When the shutdown question times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.as_ref().map(|s| s.deadline)
    }

    /// `shutdown_timer_fn`: the undecided count as no; every tracker hears the timeout.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<CfgAction>) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if now < s.deadline {
            return;
        }
        s.no = s.expected;
        let flags = s.flags;
        self.check_shutdown_status(out);
        for (conn, c) in &self.clients {
            if c.tracking {
                out.push(CfgAction::Event(
                    *conn,
                    CfgResponse::TestShutdown {
                        error: CsError::Timeout,
                        flags,
                    }
                    .to_bytes(),
                ));
            }
        }
    }

    /// One request of a connection.
    pub fn request(
        &mut self,
        now: Instant,
        conn: ConnId,
        bytes: &[u8],
        ctx: &CfgContext<'_>,
        out: &mut Vec<CfgAction>,
    ) {
        if !self.clients.contains_key(&conn) {
            return;
        }
        let request = match CfgRequest::parse(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_requests += 1;
                let pid = self.clients.get(&conn).map_or(0, |c| c.pid);
                out.push(CfgAction::Disconnect(
                    conn,
                    format!("Disconnecting cfg client pid {pid}: {e}"),
                ));
                return;
            }
        };
        let id = CfgRequestId::from(request.header().id);
        if id == CfgRequestId::TrackStop {
            self.remove_from_shutdown(conn, out);
            out.push(CfgAction::Respond(conn, status(id, CsError::Ok)));
            return;
        }
        match request {
            CfgRequest::TrackStart { .. } => self.track_start(conn, out),
            CfgRequest::TryShutdown { flags, .. } => self.try_shutdown(now, conn, flags, out),
            CfgRequest::ReplyToShutdown { response, .. } => {
                self.reply_to_shutdown(conn, response, out);
            }
            CfgRequest::KillNode { nodeid, reason, .. } => {
                // message_handler_req_lib_cfg_killnode: only a "joined" member.
                let error = if ctx.members.contains(&nodeid) {
                    out.push(CfgAction::Mcast(CfgExec::KillNode { nodeid, reason }));
                    CsError::Ok
                } else {
                    CsError::NotExist
                };
                out.push(CfgAction::Respond(conn, status(id, error)));
            }
            other => {
                let reply = answer(&other, ctx);
                out.push(CfgAction::Respond(conn, reply));
            }
        }
    }

    /// A cfg exec message delivered by the ring.
    pub fn delivered(&mut self, from: u32, message: &CfgExec, my_nodeid: u32) {
        match message {
            CfgExec::Shutdown => {
                crate::logf!(Cfg, Notice, "Node {from} was shut down by sysadmin");
                if from == my_nodeid {
                    self.leave = true;
                }
            }
            CfgExec::KillNode { nodeid, reason } => {
                crate::logf!(Cfg, Debug, "request to kill node {nodeid} (us={my_nodeid})");
                if *nodeid == my_nodeid {
                    let reason = String::from_utf8_lossy(
                        reason.split(|&b| b == 0).next().unwrap_or_default(),
                    );
                    crate::logf!(Cfg, Notice, "Killed by node {from} : {reason}");
                    self.killed = Some(format!("Killed by node {from} : {reason}"));
                }
            }
            CfgExec::ReloadConfig { .. } | CfgExec::Other(_) => {}
        }
    }

    /// `message_handler_req_lib_cfg_trackstart`: only shutdowns are tracked; a newcomer
    /// during a shutdown is asked too.
    fn track_start(&mut self, conn: ConnId, out: &mut Vec<CfgAction>) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        if !c.tracking {
            c.tracking = true;
            if let Some(s) = self.session.as_mut() {
                c.reply = Reply::Unknown;
                s.expected += 1;
                out.push(CfgAction::Event(
                    conn,
                    CfgResponse::TestShutdown {
                        error: CsError::Ok,
                        flags: s.flags,
                    }
                    .to_bytes(),
                ));
            }
        }
        out.push(CfgAction::Respond(
            conn,
            status(CfgRequestId::TrackStart, CsError::Ok),
        ));
    }

    fn try_shutdown(&mut self, now: Instant, conn: ConnId, flags: u32, out: &mut Vec<CfgAction>) {
        let id = CfgRequestId::TryShutdown;
        self.stats.shutdowns_asked += 1;
        if flags == SHUTDOWN_FLAG_IMMEDIATE {
            out.push(CfgAction::Mcast(CfgExec::Shutdown));
            out.push(CfgAction::Respond(conn, status(id, CsError::Ok)));
            return;
        }
        if self.session.is_some() {
            out.push(CfgAction::Respond(conn, status(id, CsError::Exist)));
            return;
        }
        let mut expected = 0;
        for (other, c) in self.clients.iter_mut() {
            if c.tracking && *other != conn {
                c.reply = Reply::Unknown;
                expected += 1;
            }
        }
        if expected == 0 {
            out.push(CfgAction::Respond(conn, status(id, CsError::Ok)));
            out.push(CfgAction::Mcast(CfgExec::Shutdown));
            return;
        }
        self.session = Some(Session {
            requester: conn,
            flags,
            yes: 0,
            no: 0,
            expected,
            deadline: now + self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
        });
        // send_test_shutdown(NULL, conn, CS_OK): every tracker but the requester.
        for (other, c) in &self.clients {
            if c.tracking && *other != conn {
                out.push(CfgAction::Event(
                    *other,
                    CfgResponse::TestShutdown {
                        error: CsError::Ok,
                        flags,
                    }
                    .to_bytes(),
                ));
            }
        }
    }

    fn reply_to_shutdown(&mut self, conn: ConnId, response: u32, out: &mut Vec<CfgAction>) {
        let id = CfgRequestId::ReplyToShutdown;
        let Some(s) = self.session.as_mut() else {
            out.push(CfgAction::Respond(conn, status(id, CsError::Access)));
            return;
        };
        let reply = if response != 0 {
            s.yes += 1;
            Reply::Yes
        } else {
            s.no += 1;
            Reply::No
        };
        if let Some(c) = self.clients.get_mut(&conn) {
            c.reply = reply;
        }
        self.check_shutdown_status(out);
        out.push(CfgAction::Respond(conn, status(id, CsError::Ok)));
    }

    /// `check_shutdown_status`: decides once every expected reply is in.
    fn check_shutdown_status(&mut self, out: &mut Vec<CfgAction>) {
        let Some(s) = self.session.as_ref() else {
            return;
        };
        if s.yes + s.no < s.expected {
            return;
        }
        let confirmed = s.yes >= s.expected || s.flags == SHUTDOWN_FLAG_REGARDLESS;
        crate::logf!(
            Cfg,
            Debug,
            "shutdown decision is: (yes count: {}, no count: {}) flags={:x}",
            s.yes,
            s.no,
            s.flags
        );
        let requester = s.requester;
        self.session = None;
        let id = CfgRequestId::TryShutdown;
        if confirmed {
            out.push(CfgAction::Respond(requester, status(id, CsError::Ok)));
            out.push(CfgAction::Mcast(CfgExec::Shutdown));
        } else {
            self.stats.shutdowns_refused += 1;
            out.push(CfgAction::Respond(requester, status(id, CsError::Busy)));
        }
    }

    /// `remove_ci_from_shutdown`: the requester going cancels the question; a tracker
    /// going takes back its answer and counts as yes.
    fn remove_from_shutdown(&mut self, conn: ConnId, out: &mut Vec<CfgAction>) {
        if self.session.as_ref().is_some_and(|s| s.requester == conn) {
            self.session = None;
        }
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        if !c.tracking {
            return;
        }
        c.tracking = false;
        if let Some(s) = self.session.as_mut() {
            match c.reply {
                Reply::Yes => s.yes -= 1,
                Reply::No => s.no -= 1,
                Reply::Unknown => {}
            }
            s.yes += 1;
        }
        c.reply = Reply::Yes;
        self.check_shutdown_status(out);
    }
}

/// The stateless calls: node addresses, the local node id, and the refusals.
fn answer(request: &CfgRequest, ctx: &CfgContext<'_>) -> Vec<u8> {
    let id = CfgRequestId::from(request.header().id);
    let response = match request {
        CfgRequest::GetNodeAddrs { nodeid, .. } => {
            // message_handler_req_lib_cfg_get_node_addrs: 0 means this node.
            let nodeid = if *nodeid == 0 { ctx.nodeid } else { *nodeid };
            let addrs: &[IpAddr] = ctx.node_addrs.get(&nodeid).map_or(&[], Vec::as_slice);
            // The family of the first interface; corosync leaves it unset for an unknown
            // node, we send 0.
            let family = match addrs.first() {
                Some(IpAddr::V4(_)) => libc::AF_INET as u32,
                Some(IpAddr::V6(_)) => libc::AF_INET6 as u32,
                None => 0,
            };
            CfgResponse::NodeAddrs {
                error: if addrs.is_empty() {
                    CsError::NotExist
                } else {
                    CsError::Ok
                },
                family,
                addrs: addrs
                    .iter()
                    .map(|a| {
                        let mut slot = [0u8; TOTEMIP_ADDRLEN];
                        match a {
                            IpAddr::V4(v4) => slot[..4].copy_from_slice(&v4.octets()),
                            IpAddr::V6(v6) => slot.copy_from_slice(&v6.octets()),
                        }
                        slot
                    })
                    .collect(),
            }
        }
        _ if id == CfgRequestId::LocalGet => CfgResponse::LocalGet { nodeid: ctx.nodeid },
        // message_handler_req_lib_cfg_nodestatusget: the transport first, then the version.
        CfgRequest::NodeStatusGet {
            nodeid, version, ..
        } => match ctx.net.map(|n| n.node_status(*nodeid, ctx.members)) {
            None => CfgResponse::NodeStatusVersion {
                error: CsError::NotSupported,
            },
            Some(Err(error)) => CfgResponse::NodeStatusVersion { error },
            Some(Ok(_)) if *version != NODE_STATUS_V1 => CfgResponse::NodeStatusVersion {
                error: CsError::NotSupported,
            },
            Some(Ok(status)) => CfgResponse::NodeStatusV1(Box::new(status)),
        },
        // libcfg reads interface_count and the arrays whatever the error says
        // (corosync_cfg_ring_status_get): answer the whole struct, with no interface.
        _ if id == CfgRequestId::RingStatusGet => CfgResponse::RingStatusEmpty {
            error: CsError::NotSupported,
        },
        // message_handler_req_lib_cfg_ringreenable: corosync 3 says so too.
        _ if id == CfgRequestId::RingReenable => CfgResponse::Status {
            id: id.response_id(),
            error: CsError::NotSupported,
        },
        // message_handler_req_lib_cfg_reopen_log_files (logrotate).
        _ if id == CfgRequestId::ReopenLogFiles => CfgResponse::Status {
            id: id.response_id(),
            error: match crate::log::reopen() {
                Ok(()) => CsError::Ok,
                Err(e) => {
                    crate::logf!(Main, Error, "Can't reopen the log file: {e}");
                    CsError::Library
                }
            },
        },
        _ if !(0..CFG_LIB_ENGINE_COUNT).contains(&i32::from(id)) => CfgResponse::Status {
            id: 0,
            error: CsError::InvalidParam,
        },
        // RELOAD_CONFIG.
        _ => CfgResponse::Status {
            id: id.response_id(),
            error: CsError::NotSupported,
        },
    };
    response.to_bytes()
}

#[cfg(test)]
mod tests;
