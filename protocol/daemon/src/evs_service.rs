//! EVS for libevs clients (docs/evs.md §3, §9): the node's EVS library interface
//! (`Node::evs_*`, the code the simulator answers its clients with) behind the libqb
//! service `evs`. It has no server of its own: [`crate::cpg_service::CpgService`]'s server
//! listens on `evs` too and hands this module what arrives on that service's
//! connections, so the IPC type (`system.qb_ipc_type`), the uid/gid policy, the refusal
//! of every connection until the first completed sync, the request framing checks and the
//! `--record-ipc` recording (each record names its connection's service) are CPG's own.
//!
//! * **connect** → `Node::evs_connect` (its CONFCHG follows as an event, EVS-CODE-1);
//! * **requests** → `Node::evs_ipc_request`, whose response goes back at once; the ring's
//!   refusal (a sync, totem's queue full) is the node's CS_ERR_TRY_AGAIN response, which
//!   the program retries (docs/evs.md §7.6). A request the node cannot parse drops that
//!   client alone, counted and logged (at most [`BAD_REQUEST_LOGS`] lines per
//!   [`BAD_REQUEST_LOG_WINDOW`], then one line with the count of the rest);
//! * **quorum** (EVS-CODE-8): with a quorum provider configured and the node inquorate,
//!   every request is answered CS_ERR_TRY_AGAIN with its own response id, before the node
//!   sees it (`corosync_sending_allowed`: EVS does not set `allow_inquorate`); with no
//!   provider the node counts as quorate ([`Quorate`]);
//! * **events** → [`totem_cpg::evs_event_bytes`] → the connection's event channel;
//! * **hangup** → `Node::evs_disconnect` (silent, EVS-FIN-1).
//!
//! No flow control: a client's requests are never stopped because of its own unread
//! events. 1.4's programs (fixtures/evs/testevs.c) retry `evs_mcast_joined` on
//! CS_ERR_TRY_AGAIN in a tight loop without dispatching, so stopping them until they read
//! would livelock them; 1.4 instead queued events without bound (EVS-CODE-6). Here the
//! queue is bounded by the server's per-connection limits (see
//! [`crate::cpg_service::CpgServiceConfig::new`]: 64 MiB and 40960 messages beyond what
//! the shm ring or socket holds). testevs sends 500 + 500 messages of 2000 bytes
//! (`char buffer[2000]`), each delivered to it once: at most 1000 events of 2040 bytes,
//! about 2 MB, even if it read none of them — 1/32 of the byte bound and 1/40 of the
//! message bound, so it never meets it (nor do three of them on a three-node ring). A
//! client that never reads is disconnected at the bound (logged, counted as lost events),
//! the others are unaffected.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use totem_cpg::{EvsConnId, EvsEvent, LibReply, Node};
use totem_srp::{Duration, Instant};
use totem_wire::ipc::evs::{EvsRequest, EvsResponse};
use totem_wire::ipc::CsError;

use crate::ipc::{ConnId, Creds, DisconnectReason, IpcError, IpcServer};
use crate::log::LogLimit;
use crate::logf;

/// The service name libevs connects to.
pub const SERVICE: &str = totem_wire::ipc::evs::EVS_IPC_SERVICE;

/// Bad-request log lines per window: a program that keeps reconnecting with broken
/// requests must not fill the log.
pub const BAD_REQUEST_LOGS: u32 = 10;
/// The window of [`BAD_REQUEST_LOGS`].
pub const BAD_REQUEST_LOG_WINDOW: Duration = Duration::from_millis(10_000);

/// Whether the node is quorate as `corosync_quorum_is_quorate` answers: the quorum
/// service's view when a provider is configured, else always. Shared between the quorum
/// service, which keeps it current, and the EVS glue, which reads it.
#[derive(Debug, Clone)]
pub struct Quorate(Rc<Cell<bool>>);

impl Quorate {
    /// Starts as `quorate`.
    pub fn new(quorate: bool) -> Quorate {
        Quorate(Rc::new(Cell::new(quorate)))
    }

    /// The current answer.
    pub fn get(&self) -> bool {
        self.0.get()
    }

    /// A new answer.
    pub fn set(&self, quorate: bool) {
        self.0.set(quorate);
    }
}

impl Default for Quorate {
    /// No provider: quorate.
    fn default() -> Quorate {
        Quorate::new(true)
    }
}

/// Counters of the EVS service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvsStats {
    /// Connections made.
    pub connected: u64,
    /// Clients disconnected for a malformed EVS request.
    pub bad_requests: u64,
    /// Events that could not be delivered (the client was gone or overflowed).
    pub events_lost: u64,
    /// Requests answered CS_ERR_TRY_AGAIN because the node was inquorate (EVS-CODE-8).
    pub inquorate_refused: u64,
}

struct Client {
    node: EvsConnId,
    creds: Creds,
}

/// The EVS connections of a server (see the module doc).
pub struct EvsClients {
    clients: BTreeMap<ConnId, Client>,
    by_node: HashMap<EvsConnId, ConnId>,
    quorate: Quorate,
    log_limit: LogLimit,
    stats: EvsStats,
}

impl Default for EvsClients {
    fn default() -> Self {
        EvsClients::new(Quorate::default())
    }
}

impl EvsClients {
    /// No connection yet; requests are refused while `quorate` says no.
    pub fn new(quorate: Quorate) -> EvsClients {
        EvsClients {
            clients: BTreeMap::new(),
            by_node: HashMap::new(),
            quorate,
            log_limit: LogLimit::new(BAD_REQUEST_LOGS, BAD_REQUEST_LOG_WINDOW),
            stats: EvsStats::default(),
        }
    }

    /// Where the quorum answer comes from from now on.
    pub fn set_quorate(&mut self, quorate: Quorate) {
        self.quorate = quorate;
    }

    /// Counters.
    pub fn stats(&self) -> EvsStats {
        self.stats
    }

    /// Connected clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// No client is connected.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Is `conn` one of ours?
    pub fn contains(&self, conn: ConnId) -> bool {
        self.clients.contains_key(&conn)
    }

    /// A libevs client connected (`evs_lib_init_fn`).
    pub fn connected(&mut self, conn: ConnId, creds: Creds, node: &mut Node) {
        let node_conn = node.evs_connect();
        self.clients.insert(
            conn,
            Client {
                node: node_conn,
                creds,
            },
        );
        self.by_node.insert(node_conn, conn);
        self.stats.connected += 1;
        logf!(
            Main,
            Debug,
            "evs connection created: pid {} uid {} gid {} ({conn})",
            creds.pid,
            creds.uid,
            creds.gid
        );
    }

    /// One request of `conn`: answered, or the client is dropped.
    pub fn request(
        &mut self,
        now: Instant,
        server: &mut IpcServer,
        conn: ConnId,
        bytes: &[u8],
        node: &mut Node,
    ) {
        let Some(c) = self.clients.get(&conn) else {
            // Dropped earlier in this batch.
            return;
        };
        let request = EvsRequest::parse(bytes);
        let id = request.as_ref().map(EvsRequest::id).ok();
        let reply = match request {
            Err(e) => LibReply::Disconnect(format!("malformed EVS request: {e}")),
            // corosync's glue answers an id beyond the service's handlers before it asks
            // about quorum (`cs_ipcs_msg_process`): the node gives that answer.
            Ok(EvsRequest::Unknown { .. }) => node.evs_ipc_request(c.node, bytes),
            Ok(r) if !self.quorate.get() => {
                // EVS-CODE-8: `corosync_sending_allowed` refuses every EVS request of an
                // inquorate node.
                self.stats.inquorate_refused += 1;
                let refusal = EvsResponse::status(r.id().response(), CsError::TryAgain);
                LibReply::Response(refusal.to_bytes())
            }
            Ok(_) => node.evs_ipc_request(c.node, bytes),
        };
        let reply = match (reply, id) {
            // Every EVS request is answered (EVS-MJ-11): were the node ever to hold one
            // back, the client would wait for ever, so it is told to try again.
            (LibReply::NoResponse | LibReply::Retry, Some(id)) => {
                LibReply::Response(EvsResponse::status(id.response(), CsError::TryAgain).to_bytes())
            }
            (reply, _) => reply,
        };
        match reply {
            LibReply::Response(response) => match server.respond(conn, &response) {
                // Gone meanwhile (hangup, overflow): its Disconnected follows.
                Ok(()) | Err(IpcError::NotConnected(_) | IpcError::Disconnected(_)) => {}
                Err(e) => logf!(Main, Error, "evs response to {conn} not sent: {e}"),
            },
            LibReply::NoResponse | LibReply::Retry => {}
            LibReply::Disconnect(why) => {
                // corosync 1.4 read whatever the counts said (EVS-CODE-9); a request whose
                // counts do not match its bytes cannot be answered, so the client goes.
                self.stats.bad_requests += 1;
                let allowed = self.log_limit.allow(now);
                if allowed.held_back > 0 {
                    logf!(
                        Main,
                        Warning,
                        "{} more EVS clients were disconnected for bad requests (not logged)",
                        allowed.held_back
                    );
                }
                if allowed.log {
                    logf!(
                        Main,
                        Warning,
                        "Disconnecting evs client pid {}: {why}",
                        c.creds.pid
                    );
                }
                let _ = server.disconnect(conn);
                self.disconnected(conn, &DisconnectReason::Server, node);
            }
        }
    }

    /// `evs_lib_exit_fn`. Not ours: nothing happens.
    pub fn disconnected(&mut self, conn: ConnId, reason: &DisconnectReason, node: &mut Node) {
        let Some(c) = self.clients.remove(&conn) else {
            return;
        };
        self.by_node.remove(&c.node);
        let _ = node.evs_disconnect(c.node);
        logf!(
            Main,
            Debug,
            "evs connection closed: pid {} ({conn}): {reason}",
            c.creds.pid
        );
    }

    /// One event of the node for one of our clients.
    pub fn forward(&mut self, server: &mut IpcServer, event: &EvsEvent) {
        let (node_conn, bytes) = totem_cpg::evs_event_bytes(event);
        let Some(&conn) = self.by_node.get(&node_conn) else {
            return;
        };
        match server.send_event(conn, &bytes) {
            Ok(()) => {}
            Err(IpcError::Disconnected(_)) => {
                self.stats.events_lost += 1;
                let pid = self.clients.get(&conn).map_or(0, |c| c.creds.pid);
                logf!(
                    Main,
                    Warning,
                    "evs client pid {pid} ({conn}) does not read its events: disconnected (queue overflow)"
                );
            }
            Err(e) => {
                self.stats.events_lost += 1;
                logf!(Main, Debug, "evs event for {conn} not sent: {e}");
            }
        }
    }

    /// Every client is disconnected (shutdown).
    pub fn disconnect_all(&mut self, server: &mut IpcServer, node: &mut Node) {
        let conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in conns {
            let _ = server.disconnect(conn);
            self.disconnected(conn, &DisconnectReason::Server, node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_answer_is_shared_and_defaults_to_quorate() {
        let q = Quorate::default();
        assert!(q.get());
        let seen = q.clone();
        q.set(false);
        assert!(!seen.get());
    }
}
