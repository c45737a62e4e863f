//! The CPG service (`exec/cpg.c`): the process registry shared by every node, the local
//! connections (`cpg_pd`), the confchg each of them receives, and CPG's part of sync.

use std::collections::BTreeMap;

use totem_wire::exec::cpg::{ConfchgReason, CpgName, PartialType};
use totem_wire::srp::RingId;

/// A local client connection (one `cpg_initialize` handle).
pub type ConnId = u64;

/// `mar_cpg_address_t`: a process in a confchg list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpgAddress {
    /// Its node.
    pub nodeid: u32,
    /// Its pid.
    pub pid: u32,
    /// Why it is listed (UNDEFINED in member lists).
    pub reason: ConfchgReason,
}

/// A CPG call's failure, as libcpg reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpgError {
    /// `CS_ERR_EXIST`.
    Exist,
    /// `CS_ERR_NOT_EXIST`.
    NotExist,
    /// `CS_ERR_BUSY`.
    Busy,
    /// `CS_ERR_TRY_AGAIN`: sync in progress, or the totem queue is full.
    TryAgain,
    /// `CS_ERR_NAME_TOO_LONG`.
    NameTooLong,
    /// `CS_ERR_BAD_HANDLE`: no such connection.
    BadHandle,
    /// `CS_ERR_INTERRUPT`: a confchg reached the sender between pieces of a partial mcast.
    Interrupt,
}

/// What a local client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `MESSAGE_RES_CPG_CONFCHG_CALLBACK`.
    Confchg {
        /// The connection.
        conn: ConnId,
        /// Its group.
        group: CpgName,
        /// The group's processes after the change.
        members: Vec<CpgAddress>,
        /// Processes that left.
        left: Vec<CpgAddress>,
        /// Processes that joined.
        joined: Vec<CpgAddress>,
    },
    /// `MESSAGE_RES_CPG_DELIVER_CALLBACK`.
    Deliver {
        /// The connection.
        conn: ConnId,
        /// The group.
        group: CpgName,
        /// Sending node.
        nodeid: u32,
        /// Sending process.
        pid: u32,
        /// The message.
        data: Vec<u8>,
    },
    /// `MESSAGE_RES_CPG_PARTIAL_DELIVER_CALLBACK`: one piece of a message above libcpg's
    /// atomic size; libcpg reassembles the pieces.
    PartialDeliver {
        /// The connection.
        conn: ConnId,
        /// The group.
        group: CpgName,
        /// Sending node.
        nodeid: u32,
        /// Sending process.
        pid: u32,
        /// Length of the whole message.
        msglen: u32,
        /// FIRST, CONTINUED or LAST.
        kind: PartialType,
        /// This piece.
        data: Vec<u8>,
    },
    /// `MESSAGE_RES_CPG_TOTEM_CONFCHG_CALLBACK` (model v1).
    TotemConfchg {
        /// The connection.
        conn: ConnId,
        /// The ring of the last completed sync.
        ring_id: RingId,
        /// Its members.
        members: Vec<u32>,
    },
}

/// `enum cpd_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CpdState {
    Unjoined,
    JoinStarted,
    JoinCompleted,
    LeaveStarted,
}

#[derive(Debug, Clone)]
struct Connection {
    pid: u32,
    group: CpgName,
    state: CpdState,
    initial_totem_conf: bool,
    initial_totem_conf_sent: bool,
    /// Confchgs sent to this connection (`cpd->transition_counter`): a partial mcast whose
    /// pieces straddle one is interrupted.
    transition_counter: u64,
    initial_transition_counter: u64,
}

/// A process known to the cluster (`struct process_info`). Groups are told apart by name
/// identity (`CpgName`'s `==`: `mar_name_compare`, length + the first `length` bytes), here
/// and for connections, deliveries and sync alike; `group` keeps the bytes it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessInfo {
    nodeid: u32,
    pid: u32,
    group: CpgName,
}

/// Confchg lists being collected per group during sync (`group_notify_map` of
/// `joinlist_inform_clients`, the map of `downlist_inform_clients`). Keyed by the name's
/// identity; the key keeps the bytes of the first process listed, as corosync's map entry
/// keeps that process's `mar_cpg_name_t`, and the confchg carries them.
///
/// corosync keys those two maps by the name as a C string (`qb_map_put(..., value)`), so
/// there names are cut at their first NUL (and, in the joinlist's map, not at `length`):
/// two groups differing only after a NUL share one confchg, sent to one of them. That is a
/// corosync defect; we keep one identity everywhere instead.
type GroupLists = BTreeMap<CpgName, Vec<CpgAddress>>;

/// What CPG asks the node to multicast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CpgSend {
    ProcJoin {
        group: CpgName,
        pid: u32,
    },
    ProcLeave {
        group: CpgName,
        pid: u32,
        reason: ConfchgReason,
    },
}

/// The service's state on one node.
#[derive(Debug)]
pub(crate) struct Cpg {
    my_id: u32,
    connections: BTreeMap<ConnId, Connection>,
    /// Connections after FINALIZE: off the list (no events), still owed their PROCDOWN when
    /// the client hangs up (`message_handler_req_lib_cpg_finalize`, `cpg_lib_exit_fn`).
    finalized: BTreeMap<ConnId, Connection>,
    next_conn: ConnId,
    /// Sorted by (nodeid, pid), as `do_proc_join` inserts.
    process_info: Vec<ProcessInfo>,
    /// JOINLIST entries received during this sync: (sender, pid, group).
    joinlist_messages: Vec<(u32, u32, CpgName)>,
    my_member_list: Vec<u32>,
    my_old_member_list: Vec<u32>,
    downlist_left: Vec<u32>,
    last_sync_ring_id: RingId,
    pub(crate) events: Vec<ClientEvent>,
}

impl Cpg {
    pub(crate) fn new(my_id: u32) -> Cpg {
        Cpg {
            my_id,
            connections: BTreeMap::new(),
            finalized: BTreeMap::new(),
            next_conn: 1,
            process_info: Vec::new(),
            joinlist_messages: Vec::new(),
            my_member_list: Vec::new(),
            my_old_member_list: Vec::new(),
            downlist_left: Vec::new(),
            last_sync_ring_id: RingId::default(),
            events: Vec::new(),
        }
    }

    // ---- library side (cpg_lib_*) ------------------------------------------------------

    /// `cpg_lib_init_fn`: a new connection.
    pub(crate) fn connect(&mut self, initial_totem_conf: bool) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.connections.insert(
            conn,
            Connection {
                pid: 0,
                group: CpgName::EMPTY,
                state: CpdState::Unjoined,
                initial_totem_conf,
                initial_totem_conf_sent: false,
                transition_counter: 0,
                initial_transition_counter: 0,
            },
        );
        conn
    }

    /// `message_handler_req_lib_cpg_join`.
    pub(crate) fn join(
        &mut self,
        conn: ConnId,
        group: CpgName,
        pid: u32,
        initial_totem_conf: Option<bool>,
    ) -> Result<CpgSend, CpgError> {
        if !self.connections.contains_key(&conn) {
            return Err(CpgError::BadHandle);
        }
        let same =
            |c: &Connection| c.pid == pid && c.group == group && c.state != CpdState::Unjoined;
        if self.connections.values().any(same) {
            return Err(CpgError::Exist);
        }
        if self
            .process_info
            .iter()
            .any(|p| p.nodeid == self.my_id && p.pid == pid && p.group == group)
        {
            // A leave of this process not yet delivered.
            return Err(CpgError::TryAgain);
        }
        if group.is_overlong() {
            return Err(CpgError::NameTooLong);
        }
        let c = self.connections.get_mut(&conn).ok_or(CpgError::BadHandle)?;
        match c.state {
            CpdState::Unjoined => {
                c.state = CpdState::JoinStarted;
                c.pid = pid;
                c.group = group;
                // The model flags travel with JOIN (`req_lib_cpg_join.flags`).
                if let Some(flag) = initial_totem_conf {
                    c.initial_totem_conf = flag;
                }
                Ok(CpgSend::ProcJoin { group, pid })
            }
            CpdState::LeaveStarted => Err(CpgError::Busy),
            CpdState::JoinStarted | CpdState::JoinCompleted => Err(CpgError::Exist),
        }
    }

    /// `message_handler_req_lib_cpg_leave`.
    pub(crate) fn leave(&mut self, conn: ConnId) -> Result<CpgSend, CpgError> {
        let c = self.connections.get_mut(&conn).ok_or(CpgError::BadHandle)?;
        match c.state {
            CpdState::Unjoined | CpdState::LeaveStarted => Err(CpgError::NotExist),
            CpdState::JoinStarted => Err(CpgError::Busy),
            CpdState::JoinCompleted => {
                c.state = CpdState::LeaveStarted;
                Ok(CpgSend::ProcLeave {
                    group: c.group,
                    pid: c.pid,
                    reason: ConfchgReason::Leave,
                })
            }
        }
    }

    /// The group and pid a connection may multicast as (`cpg_lib_mcast`: only a joined one).
    pub(crate) fn mcast_identity(&self, conn: ConnId) -> Result<(CpgName, u32), CpgError> {
        let c = self.connections.get(&conn).ok_or(CpgError::BadHandle)?;
        match c.state {
            CpdState::JoinStarted | CpdState::JoinCompleted | CpdState::LeaveStarted => {
                Ok((c.group, c.pid))
            }
            CpdState::Unjoined => Err(CpgError::NotExist),
        }
    }

    /// PARTIAL_MCAST's state and transition checks (`message_handler_req_lib_cpg_partial_mcast`):
    /// the identity to send as, or NOT_EXIST / INTERRUPT.
    pub(crate) fn partial_identity(
        &mut self,
        conn: ConnId,
        kind: PartialType,
    ) -> Result<(CpgName, u32), CpgError> {
        let c = self.connections.get_mut(&conn).ok_or(CpgError::BadHandle)?;
        let mut result = match c.state {
            CpdState::JoinStarted | CpdState::JoinCompleted => Ok((c.group, c.pid)),
            CpdState::Unjoined | CpdState::LeaveStarted => Err(CpgError::NotExist),
        };
        if kind == PartialType::First {
            c.initial_transition_counter = c.transition_counter;
        }
        if c.transition_counter != c.initial_transition_counter {
            result = Err(CpgError::Interrupt);
        }
        result
    }

    /// `message_handler_req_lib_cpg_finalize`: the connection leaves the list at once (no
    /// more events) but keeps its group until the client hangs up.
    pub(crate) fn finalize(&mut self, conn: ConnId) -> Result<(), CpgError> {
        let c = self.connections.remove(&conn).ok_or(CpgError::BadHandle)?;
        self.finalized.insert(conn, c);
        Ok(())
    }

    /// Whether the connection exists and has not been finalized.
    pub(crate) fn is_open(&self, conn: ConnId) -> bool {
        self.connections.contains_key(&conn)
    }

    /// The processes `cpg_iteration_initialize` lists, in process_info order.
    pub(crate) fn processes(&self) -> impl Iterator<Item = (CpgName, u32, u32)> + '_ {
        self.process_info.iter().map(|p| (p.group, p.nodeid, p.pid))
    }

    /// `cpg_lib_exit_fn`: the client went away; a joined process leaves with PROCDOWN.
    pub(crate) fn disconnect(&mut self, conn: ConnId) -> Option<CpgSend> {
        let c = self
            .connections
            .remove(&conn)
            .or_else(|| self.finalized.remove(&conn))?;
        (c.group.length > 0 && c.state != CpdState::LeaveStarted && c.state != CpdState::Unjoined)
            .then_some(CpgSend::ProcLeave {
                group: c.group,
                pid: c.pid,
                reason: ConfchgReason::ProcDown,
            })
    }

    /// `cpg_membership_get`: the group's processes as this node knows them.
    pub(crate) fn membership(&self, group: &CpgName) -> Vec<CpgAddress> {
        self.process_info
            .iter()
            .filter(|p| p.group == *group)
            .map(|p| CpgAddress {
                nodeid: p.nodeid,
                pid: p.pid,
                reason: ConfchgReason::Undefined,
            })
            .collect()
    }

    // ---- exec side (deliveries in agreed order) ----------------------------------------

    pub(crate) fn on_procjoin(&mut self, nodeid: u32, group: CpgName, pid: u32) {
        self.do_proc_join(group, pid, nodeid, ConfchgReason::Join, None);
    }

    pub(crate) fn on_procleave(
        &mut self,
        nodeid: u32,
        group: CpgName,
        pid: u32,
        reason: ConfchgReason,
    ) {
        self.do_proc_leave(group, pid, nodeid, reason);
    }

    pub(crate) fn on_joinlist(&mut self, nodeid: u32, entries: &[(u32, CpgName)]) {
        for (pid, group) in entries {
            self.joinlist_messages.push((nodeid, *pid, *group));
        }
    }

    /// `message_handler_req_exec_cpg_mcast`: to every local member of the group, but only
    /// if the sender has a process in it ("Unknown node -> we will not deliver message").
    pub(crate) fn on_mcast(&mut self, nodeid: u32, group: CpgName, pid: u32, data: &[u8]) {
        let known = self
            .process_info
            .iter()
            .any(|p| p.nodeid == nodeid && p.group == group);
        if !known {
            return;
        }
        for (conn, c) in &self.connections {
            if matches!(c.state, CpdState::JoinCompleted | CpdState::LeaveStarted)
                && c.group == group
            {
                self.events.push(ClientEvent::Deliver {
                    conn: *conn,
                    group,
                    nodeid,
                    pid,
                    data: data.to_vec(),
                });
            }
        }
    }

    /// `message_handler_req_exec_cpg_partial_mcast`: the same audience and "unknown node"
    /// rule as a whole mcast.
    pub(crate) fn on_partial_mcast(
        &mut self,
        nodeid: u32,
        group: CpgName,
        pid: u32,
        msglen: u32,
        kind: PartialType,
        data: &[u8],
    ) {
        if !self
            .process_info
            .iter()
            .any(|p| p.nodeid == nodeid && p.group == group)
        {
            return;
        }
        for (conn, c) in &self.connections {
            if matches!(c.state, CpdState::JoinCompleted | CpdState::LeaveStarted)
                && c.group == group
            {
                self.events.push(ClientEvent::PartialDeliver {
                    conn: *conn,
                    group,
                    nodeid,
                    pid,
                    msglen,
                    kind,
                    data: data.to_vec(),
                });
            }
        }
    }

    fn do_proc_join(
        &mut self,
        group: CpgName,
        pid: u32,
        nodeid: u32,
        reason: ConfchgReason,
        notify: Option<&mut GroupLists>,
    ) {
        if self
            .process_info
            .iter()
            .any(|p| p.pid == pid && p.nodeid == nodeid && p.group == group)
        {
            return;
        }
        let at = self
            .process_info
            .iter()
            .position(|p| p.nodeid > nodeid || (p.nodeid == nodeid && p.pid > pid))
            .unwrap_or(self.process_info.len());
        self.process_info
            .insert(at, ProcessInfo { nodeid, pid, group });
        let info = CpgAddress {
            nodeid,
            pid,
            reason,
        };
        match notify {
            None => self.notify_lib_joinlist(group, &[info], &[]),
            Some(map) => map.entry(group).or_default().push(info),
        }
    }

    fn do_proc_leave(&mut self, group: CpgName, pid: u32, nodeid: u32, reason: ConfchgReason) {
        let info = CpgAddress {
            nodeid,
            pid,
            reason,
        };
        self.notify_lib_joinlist(group, &[], &[info]);
        self.process_info
            .retain(|p| !(p.pid == pid && p.nodeid == nodeid && p.group == group));
    }

    /// `notify_lib_joinlist`: one confchg to every local connection of the group that has
    /// completed its join (or started leaving); members = registry minus the left list.
    fn notify_lib_joinlist(&mut self, group: CpgName, joined: &[CpgAddress], left: &[CpgAddress]) {
        let members: Vec<CpgAddress> = self
            .process_info
            .iter()
            .filter(|p| p.group == group)
            .filter(|p| !left.iter().any(|l| l.nodeid == p.nodeid && l.pid == p.pid))
            .map(|p| CpgAddress {
                nodeid: p.nodeid,
                pid: p.pid,
                reason: ConfchgReason::Undefined,
            })
            .collect();
        for j in joined {
            if j.nodeid == self.my_id {
                for c in self.connections.values_mut() {
                    if c.pid == j.pid && c.group == group {
                        c.state = CpdState::JoinCompleted;
                    }
                }
            }
        }
        for (conn, c) in self.connections.iter_mut() {
            if c.group == group
                && matches!(c.state, CpdState::JoinCompleted | CpdState::LeaveStarted)
            {
                c.transition_counter += 1;
                self.events.push(ClientEvent::Confchg {
                    conn: *conn,
                    group,
                    members: members.clone(),
                    left: left.to_vec(),
                    joined: joined.to_vec(),
                });
            }
        }
        // corosync resets a leaver's connection in a loop over `joined_list_entries` (not
        // `left_list_entries`), so after cpg_leave the handle stays LEAVE_STARTED and keeps
        // receiving events (corosync-lab.md). We reset it: a documented deviation.
        for l in left {
            if l.nodeid == self.my_id && l.reason == ConfchgReason::Leave {
                for c in self.connections.values_mut() {
                    if c.pid == l.pid && c.group == group {
                        c.pid = 0;
                        c.group = CpgName::EMPTY;
                        c.state = CpdState::Unjoined;
                    }
                }
            }
        }
        let old = self.my_old_member_list.clone();
        let ring = self.last_sync_ring_id;
        for (conn, c) in self.connections.iter_mut() {
            if c.initial_totem_conf && !c.initial_totem_conf_sent {
                c.initial_totem_conf_sent = true;
                self.events.push(ClientEvent::TotemConfchg {
                    conn: *conn,
                    ring_id: ring,
                    members: old.clone(),
                });
            }
        }
    }

    // ---- sync (cpg_sync_*) -------------------------------------------------------------

    /// `cpg_sync_init`: the nodes of the last synced membership not in the transitional
    /// configuration are down.
    pub(crate) fn sync_init(&mut self, trans: &[u32], members: &[u32], ring_id: RingId) {
        self.my_member_list = members.to_vec();
        self.last_sync_ring_id = ring_id;
        self.downlist_left = self
            .my_old_member_list
            .iter()
            .copied()
            .filter(|n| !trans.contains(n))
            .collect();
    }

    /// The DOWNLIST and JOINLIST this node sends in its CPG sync round (`cpg_sync_process`).
    pub(crate) fn sync_messages(&self) -> (u32, Vec<u32>, Vec<(u32, CpgName)>) {
        let joinlist = self
            .process_info
            .iter()
            .filter(|p| p.nodeid == self.my_id)
            .map(|p| (p.pid, p.group))
            .collect();
        (
            self.my_old_member_list.len() as u32,
            self.downlist_left.clone(),
            joinlist,
        )
    }

    /// `cpg_sync_activate`.
    pub(crate) fn sync_activate(&mut self) {
        self.my_old_member_list = self.my_member_list.clone();
        self.downlist_inform_clients();
        self.joinlist_inform_clients();
        self.joinlist_messages.clear();
        let ring = self.last_sync_ring_id;
        let members = self.my_member_list.clone();
        for conn in self.connections.keys() {
            self.events.push(ClientEvent::TotemConfchg {
                conn: *conn,
                ring_id: ring,
                members: members.clone(),
            });
        }
    }

    /// `cpg_sync_abort`.
    pub(crate) fn sync_abort(&mut self) {
        self.joinlist_messages.clear();
    }

    fn downlist_inform_clients(&mut self) {
        let mut by_group: GroupLists = BTreeMap::new();
        let left_nodes = self.downlist_left.clone();
        self.process_info.retain(|p| {
            if left_nodes.contains(&p.nodeid) {
                by_group.entry(p.group).or_default().push(CpgAddress {
                    nodeid: p.nodeid,
                    pid: p.pid,
                    reason: ConfchgReason::NodeDown,
                });
                false
            } else {
                true
            }
        });
        for (group, left) in by_group {
            self.notify_lib_joinlist(group, &[], &left);
        }
    }

    fn joinlist_inform_clients(&mut self) {
        let mut by_group: GroupLists = BTreeMap::new();
        let messages = self.joinlist_messages.clone();
        for (sender, pid, group) in &messages {
            if *sender == self.my_id {
                continue;
            }
            self.do_proc_join(
                *group,
                *pid,
                *sender,
                ConfchgReason::NodeUp,
                Some(&mut by_group),
            );
        }
        for (group, joined) in by_group {
            self.notify_lib_joinlist(group, &joined, &[]);
        }
        // joinlist_remove_zombie_pi_entries: processes of other nodes not re-announced.
        let zombies: Vec<ProcessInfo> = self
            .process_info
            .iter()
            .filter(|p| p.nodeid != self.my_id)
            .filter(|p| {
                !messages.iter().any(|(s, pid, g)| {
                    *s != self.my_id && *s == p.nodeid && *pid == p.pid && *g == p.group
                })
            })
            .copied()
            .collect();
        for z in zombies {
            self.do_proc_leave(z.group, z.pid, z.nodeid, ConfchgReason::ProcDown);
        }
    }
}
