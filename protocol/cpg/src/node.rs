//! One cluster member: the ring, totempg, the exec layer's dispatch, sync and CPG.

use std::collections::VecDeque;

use totem_srp::{ConfigurationKind, Event, Instant, MembState, Srp, SrpConfig, Transmit};
use totem_wire::exec::cfg::CfgFunction;
use totem_wire::exec::cmap::{CmapItem, CmapMcast, CmapMcastReason, CmapValueType};
use totem_wire::exec::cpg::{
    CpgMcast, CpgMessage, CpgName, CpgPartialMcast, Downlist, JoinList, JoinListEntry,
    MessageSource, PartialType, DOWNLIST_LEN, JOINLIST_ENTRY_LEN, JOINLIST_HEADER_LEN,
    MCAST_FIXED_LEN, PARTIAL_MCAST_FIXED_LEN,
};
use totem_wire::exec::evs::{EvsGroup, EvsMcast, EVS_GROUP_LEN, EVS_MCAST_FIXED_LEN};
use totem_wire::exec::votequorum::NodeInfoFlags;
use totem_wire::exec::{
    CfgMessage, EvsMessage, ExecHeader, ExecMessage, ServiceId, SyncMessage, VotequorumMessage,
};
use totem_wire::pg::{Assembler, AssemblerLimits, Discarded, GroupPrefix, Packer, PgPacket};
use totem_wire::srp::RingId;
use totem_wire::ByteOrder;

use crate::cpg::{ClientEvent, ConnId, Cpg, CpgAddress, CpgError, CpgSend};
use crate::evs::{Evs, EvsConfchg, EvsConnId, EvsError, EvsEvent};
use crate::sync::{Sync, SyncAction};

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id.
    pub nodeid: u32,
    /// Ring timings.
    pub srp: SrpConfig,
    /// The transport's netmtu (1500 for udpu, 65536 for knet).
    pub net_mtu: usize,
    /// The ring seq loaded from the state directory (0 on a first start).
    pub stored_ring_seq: u64,
    /// What this node's votequorum NODEINFO says at start-up (`votequorum_exec_init_fn`);
    /// [`Node::set_nodeinfo`] changes it later.
    pub nodeinfo: OwnNodeInfo,
}

/// This node's entry in its votequorum NODEINFO messages (`votequorum_exec_send_nodeinfo`):
/// the node sends it at start-up and in every votequorum sync round, but votequorum's state
/// is its user's (`totemd`'s quorum module), which keeps it current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnNodeInfo {
    /// `us->votes` (the nodelist's `quorum_votes` for this node).
    pub votes: u32,
    /// `us->expected_votes`.
    pub expected_votes: u32,
    /// `us->flags` (`NODE_FLAGS_*`) but FIRST, which the node keeps itself: set until its
    /// first sync of a ring with more than one member (`votequorum_sync_init`).
    pub flags: NodeInfoFlags,
}

impl OwnNodeInfo {
    /// One vote, these expected votes, no flag.
    pub fn new(expected_votes: u32) -> OwnNodeInfo {
        OwnNodeInfo {
            votes: 1,
            expected_votes,
            flags: NodeInfoFlags(0),
        }
    }
}

/// What a node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// For a local CPG client.
    Client(ClientEvent),
    /// Persist this ring's seq (`ringid_<nodeid>`).
    StoreRingId(RingId),
    /// A totem configuration change (for traces: CPG clients see their own confchgs).
    Configuration {
        /// Transitional or regular.
        kind: ConfigurationKind,
        /// Members.
        members: Vec<u32>,
        /// Left (transitional).
        left: Vec<u32>,
        /// Joined (regular).
        joined: Vec<u32>,
        /// The ring.
        ring_id: RingId,
    },
    /// Every sync round of this ring completed.
    SyncCompleted(RingId),
    /// The ring's membership state changed.
    StateChanged {
        /// From.
        from: MembState,
        /// To.
        to: MembState,
        /// Why.
        reason: &'static str,
    },
}

/// What a node reports through [`Node::poll_output`]: its events and, in agreed order with
/// them, the exec messages of services the node leaves to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutput {
    /// A [`NodeEvent`].
    Event(NodeEvent),
    /// A votequorum exec message was delivered (NODEINFO, RECONFIGURE, ...): votequorum's
    /// state is the user's (`exec/votequorum.c`'s exec handlers), the node only sends this
    /// node's NODEINFO ([`OwnNodeInfo`]).
    Votequorum {
        /// The sending node.
        from: u32,
        /// The message.
        message: VotequorumMessage,
    },
    /// For a local EVS connection (delivery or confchg), in agreed order with everything
    /// else. [`Node::poll_event`] skips these, like votequorum's.
    Evs(EvsEvent),
    /// A cfg exec message was delivered (`exec/cfg.c`'s exec handlers are the user's:
    /// shutting down or killing this node is the daemon's business). Skipped by
    /// [`Node::poll_event`].
    Cfg {
        /// The sending node.
        from: u32,
        /// The message.
        message: CfgExec,
    },
}

/// A cfg exec message (`exec/cfg.c`, `enum cfg_message_req_types`), owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgExec {
    /// `MESSAGE_REQ_EXEC_CFG_SHUTDOWN`: the sender is shutting down.
    Shutdown,
    /// `MESSAGE_REQ_EXEC_CFG_KILLNODE`: `nodeid` must exit.
    KillNode {
        /// The node to stop.
        nodeid: u32,
        /// Why (at most 256 bytes).
        reason: Vec<u8>,
    },
    /// `MESSAGE_REQ_EXEC_CFG_RELOAD_CONFIG`: every node re-reads corosync.conf.
    ReloadConfig {
        /// The requesting node.
        source_nodeid: u32,
        /// Its connection (an opaque handle, answered by the requesting node only).
        source_conn: u64,
    },
    /// Another cfg function (RINGREENABLE, CRYPTO_RECONFIG): corosync 3.1.7 ignores
    /// the first; the second is knet crypto reconfiguration.
    Other(u16),
}

impl CfgExec {
    fn from_wire(m: &CfgMessage<'_>) -> CfgExec {
        match m {
            CfgMessage::Shutdown { .. } => CfgExec::Shutdown,
            CfgMessage::KillNode { nodeid, reason, .. } => CfgExec::KillNode {
                nodeid: *nodeid,
                reason: reason.to_vec(),
            },
            CfgMessage::ReloadConfig {
                source_nodeid,
                source_conn,
                ..
            } => CfgExec::ReloadConfig {
                source_nodeid: *source_nodeid,
                source_conn: *source_conn,
            },
            other => CfgExec::Other(other.header().function()),
        }
    }

    fn to_wire(&self) -> Option<CfgMessage<'_>> {
        let header = |f: CfgFunction, size: usize| ExecHeader::new(ServiceId::Cfg, f.into(), size);
        Some(match self {
            CfgExec::Shutdown => CfgMessage::Shutdown {
                header: header(CfgFunction::Shutdown, 16),
            },
            CfgExec::KillNode { nodeid, reason } => CfgMessage::KillNode {
                header: header(CfgFunction::KillNode, 288),
                nodeid: *nodeid,
                reason,
            },
            CfgExec::ReloadConfig {
                source_nodeid,
                source_conn,
            } => CfgMessage::ReloadConfig {
                header: header(CfgFunction::ReloadConfig, 32),
                source_nodeid: *source_nodeid,
                source_conn: *source_conn,
            },
            CfgExec::Other(_) => return None,
        })
    }
}

/// What totempg did with a message beyond delivering it, for observers (a simulator's
/// checkers tell corosync's own losses from bugs with these). Recorded only when asked for
/// ([`Node::record_totempg_notes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotempgNote {
    /// Bytes thrown away instead of delivered: a continuation whose start this node never
    /// had, or a piece the next packet did not continue (`totempg_deliver_fn` and its
    /// throw-away mode), or the unfinished message of a node that left (`app_confchg_fn`).
    Discarded {
        /// The sending node.
        sender: u32,
        /// Bytes thrown away.
        len: usize,
        /// Why, in the assembler's words.
        reason: &'static str,
        /// The regular ring this node was on.
        ring: RingId,
    },
    /// A message put together from pieces delivered on different rings: its first piece
    /// came while this node was on `first_ring`, its last on `last_ring`.
    AcrossRings {
        /// The sending node.
        sender: u32,
        /// The regular ring of the first piece.
        first_ring: RingId,
        /// The regular ring of the last piece.
        last_ring: RingId,
    },
}

/// A cluster member: `handle_*` in, `poll_*` out, `cpg_*` for local clients.
#[derive(Debug)]
pub struct Node {
    my_id: u32,
    srp: Srp,
    packer: Packer,
    /// totempg's assembly sets; each piece is tagged with the regular ring it came in.
    assembler: Assembler<RingId>,
    trans_assembler: Assembler<RingId>,
    /// The last regular configuration (the ring deliveries belong to).
    delivery_ring: RingId,
    waiting_trans_ack: bool,
    sync: Sync,
    /// Has a sync completed since this node started? main.c's sync_in_process starts at 1
    /// and only corosync_sync_completed clears it, so a node refuses flow-controlled CPG
    /// requests (corosync_sending_allowed: -EINPROGRESS) until its first sync is done.
    synced_once: bool,
    cpg: Cpg,
    evs: Evs,
    trans_list: Vec<u32>,
    nodeinfo: OwnNodeInfo,
    votequorum_first: bool,
    /// totempg's queue level is CRITICAL (`check_q_level`).
    queue_critical: bool,
    /// Open `cpg_iteration_*` snapshots.
    pub(crate) iterations: crate::iteration::Iterations,
    events: VecDeque<NodeOutput>,
    /// totempg's notes, while someone collects them.
    notes: Option<Vec<TotempgNote>>,
}

impl Node {
    /// A node starting now; it begins gathering at once.
    pub fn new(config: NodeConfig, now: Instant) -> Node {
        let limits = AssemblerLimits::default();
        let mut node = Node {
            my_id: config.nodeid,
            srp: Srp::new(
                config.srp,
                config.nodeid,
                config.stored_ring_seq,
                config.net_mtu,
                now,
            ),
            packer: Packer::for_net_mtu(config.net_mtu, ByteOrder::Little),
            assembler: Assembler::corosync(limits),
            trans_assembler: Assembler::corosync(limits),
            waiting_trans_ack: true,
            sync: Sync::new(),
            synced_once: false,
            cpg: Cpg::new(config.nodeid),
            evs: Evs::default(),
            trans_list: Vec::new(),
            nodeinfo: config.nodeinfo,
            votequorum_first: true,
            queue_critical: false,
            iterations: crate::iteration::Iterations::default(),
            events: VecDeque::new(),
            delivery_ring: RingId::default(),
            notes: None,
        };
        // votequorum_exec_init_fn sends NODEINFO at start-up, before any ring exists.
        node.send_nodeinfo();
        node.process_srp_events();
        node
    }

    // ---- getters -------------------------------------------------------------------------

    /// This node.
    pub fn nodeid(&self) -> u32 {
        self.my_id
    }

    /// The ring.
    pub fn ring_id(&self) -> RingId {
        self.srp.ring_id()
    }

    /// Ring members.
    pub fn members(&self) -> &[u32] {
        self.srp.members()
    }

    /// Membership state.
    pub fn state(&self) -> MembState {
        self.srp.state()
    }

    /// The ring's Gather sets (`my_proc_list`, `my_failed_list`, `my_memb_list`, ...).
    pub fn membership(&self) -> &totem_srp::membership::Membership {
        self.srp.membership()
    }

    /// From now on, keep [`TotempgNote`]s for [`Node::take_totempg_notes`].
    pub fn record_totempg_notes(&mut self) {
        self.notes.get_or_insert_with(Vec::new);
    }

    /// The notes since the last call (empty unless recording).
    pub fn take_totempg_notes(&mut self) -> Vec<TotempgNote> {
        self.notes.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn note_discard(&mut self, discard: &Discarded<RingId>) {
        if let Some(notes) = self.notes.as_mut() {
            notes.push(TotempgNote::Discarded {
                sender: discard.sender,
                len: discard.len,
                reason: discard.reason,
                ring: self.delivery_ring,
            });
        }
    }

    /// What the next votequorum NODEINFO for this node says (FIRST aside).
    pub fn nodeinfo(&self) -> OwnNodeInfo {
        self.nodeinfo
    }

    /// votequorum's state of this node changed: its next NODEINFO says so.
    pub fn set_nodeinfo(&mut self, nodeinfo: OwnNodeInfo) {
        self.nodeinfo = nodeinfo;
    }

    /// Is sync running (CPG requests answer TRY_AGAIN)?
    pub fn syncing(&self) -> bool {
        self.sync.in_progress()
    }

    /// Messages not multicast yet: totempg's staged packet plus totem's queues. A clean
    /// stop waits for it to empty so that clients' PROCLEAVEs leave before the LEAVE.
    pub fn send_backlog(&self) -> usize {
        self.packer.staged_messages() + self.srp.backlog()
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next datagram.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.srp.poll_transmit()
    }

    /// The next event; votequorum deliveries and EVS events before it are dropped (use
    /// [`Node::poll_output`] to have them).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        loop {
            match self.events.pop_front()? {
                NodeOutput::Event(e) => return Some(e),
                NodeOutput::Votequorum { .. } | NodeOutput::Evs(_) | NodeOutput::Cfg { .. } => {}
            }
        }
    }

    /// The next event or votequorum delivery, in order.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<NodeOutput> {
        self.events.pop_front()
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.srp.poll_timeout()
    }

    // ---- inputs --------------------------------------------------------------------------

    /// A datagram arrived. An ORF token first flushes totempg's staged packet into the
    /// ring's queue, as `callback_token_received_fn` does, so it leaves on this token visit.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) -> Result<(), totem_wire::Error> {
        let is_token = matches!(bytes, [0x70, 0xC0, 3, 0, ..] | [0xC0, 0x70, 3, 0, ..]);
        if is_token {
            if let Some(packet) = self.packer.flush() {
                // The queue was checked when the message was staged; a full queue now drops
                // the packet as corosync's ignored totemsrp_mcast result would.
                let _ = self.srp.submit(&packet);
            }
        }
        let result = self.srp.handle_datagram(now, bytes);
        self.process_srp_events();
        result
    }

    /// Timers due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.srp.handle_timeout(now);
        self.process_srp_events();
    }

    /// Clean shutdown: the LEAVE message.
    pub fn leave_ring(&mut self) {
        self.srp.leave();
    }

    // ---- CPG clients ---------------------------------------------------------------------

    /// `cpg_initialize` / `cpg_model_initialize`.
    pub fn cpg_connect(&mut self, initial_totem_conf: bool) -> ConnId {
        self.cpg.connect(initial_totem_conf)
    }

    /// `cpg_join`.
    pub fn cpg_join(&mut self, conn: ConnId, group: &[u8], pid: u32) -> Result<(), CpgError> {
        let name = CpgName::new(group).ok_or(CpgError::NameTooLong)?;
        self.sending_allowed(MCAST_FIXED_LEN)?;
        let send = self.cpg.join(conn, name, pid, None)?;
        self.cpg_send(send);
        Ok(())
    }

    /// `cpg_leave`.
    pub fn cpg_leave(&mut self, conn: ConnId) -> Result<(), CpgError> {
        self.sending_allowed(MCAST_FIXED_LEN)?;
        let send = self.cpg.leave(conn)?;
        self.cpg_send(send);
        Ok(())
    }

    /// `cpg_mcast_joined` (one piece: libcpg splits larger messages itself).
    pub fn cpg_mcast(&mut self, conn: ConnId, data: &[u8]) -> Result<(), CpgError> {
        let (group, pid) = self.cpg.mcast_identity(conn)?;
        self.sending_allowed(MCAST_FIXED_LEN + data.len())?;
        let message = CpgMessage::Mcast(CpgMcast {
            header: ExecHeader::new(ServiceId::Cpg, 3, MCAST_FIXED_LEN + data.len()),
            group,
            msglen: data.len() as u32,
            pid,
            source: MessageSource {
                nodeid: self.my_id,
                conn,
            },
            data,
        });
        let mut bytes = Vec::with_capacity(MCAST_FIXED_LEN + data.len());
        message.emit(&mut bytes, ByteOrder::Little);
        let (fixed, user) = bytes.split_at(MCAST_FIXED_LEN);
        self.send(GroupPrefix::EXEC, &[fixed, user]);
        Ok(())
    }

    /// One piece of a message above libcpg's atomic size (`message_handler_req_lib_cpg_partial_mcast`).
    pub fn cpg_partial_mcast(
        &mut self,
        conn: ConnId,
        msglen: u32,
        kind: PartialType,
        data: &[u8],
    ) -> Result<(), CpgError> {
        self.sending_allowed(PARTIAL_MCAST_FIXED_LEN + data.len())?;
        let (group, pid) = self.cpg.partial_identity(conn, kind)?;
        let message = CpgMessage::PartialMcast(CpgPartialMcast {
            header: ExecHeader::new(ServiceId::Cpg, 6, PARTIAL_MCAST_FIXED_LEN + data.len()),
            group,
            msglen,
            fraglen: data.len() as u32,
            pid,
            kind,
            source: MessageSource {
                nodeid: self.my_id,
                conn,
            },
            data,
        });
        let mut bytes = Vec::with_capacity(PARTIAL_MCAST_FIXED_LEN + data.len());
        message.emit(&mut bytes, ByteOrder::Little);
        let (fixed, user) = bytes.split_at(PARTIAL_MCAST_FIXED_LEN);
        self.send(GroupPrefix::EXEC, &[fixed, user]);
        Ok(())
    }

    /// The control-file flow-control value corosync publishes to every CPG connection
    /// (`cs_ipcs_check_for_flow_control`): 2 (mcasts answer TRY_AGAIN) during a sync or
    /// while totempg's queue is at the CRITICAL level, else 0.
    pub fn ipc_flow_control(&mut self) -> i32 {
        // totempg.c check_q_level: CRITICAL from 75 % used, left below 30 %, between 40 and
        // 50 % or between 60 and 70 % (the gaps are its hysteresis).
        let max = self.srp.queue_max().max(1);
        let used = 100 - (self.srp.avail() * 100 / max).min(100);
        if used >= 75 {
            self.queue_critical = true;
        } else if used < 30 || (40 < used && used < 50) || (60 < used && used < 70) {
            self.queue_critical = false;
        }
        // Also closed while the ring could not take one more largest message: the server
        // then refuses MCAST (corosync_sending_allowed), and a client told beforehand
        // retries instead of having its message held back.
        let room = self
            .sending_allowed(MCAST_FIXED_LEN + totem_wire::exec::cpg::MAX_ATOMIC_MSG_LEN as usize)
            .is_ok();
        if self.sync.in_progress() || !self.synced_once || self.queue_critical || !room {
            2
        } else {
            0
        }
    }

    /// `cpg_finalize`: no more events for the connection; its PROCDOWN waits for the hangup.
    pub fn cpg_finalize(&mut self, conn: ConnId) -> Result<(), CpgError> {
        self.cpg.finalize(conn)
    }

    /// JOIN as it comes over IPC: with the model's DELIVER_INITIAL_TOTEM_CONF flag.
    pub(crate) fn cpg_join_flags(
        &mut self,
        conn: ConnId,
        group: CpgName,
        pid: u32,
        initial_totem_conf: bool,
    ) -> Result<(), CpgError> {
        self.sending_allowed(MCAST_FIXED_LEN)?;
        let send = self.cpg.join(conn, group, pid, Some(initial_totem_conf))?;
        self.cpg_send(send);
        Ok(())
    }

    /// The connection exists and is not finalized.
    pub(crate) fn cpg_is_open(&self, conn: ConnId) -> bool {
        self.cpg.is_open(conn)
    }

    /// Every process of the cluster, in process_info order: (group, nodeid, pid).
    pub(crate) fn cpg_processes(&self) -> impl Iterator<Item = (CpgName, u32, u32)> + '_ {
        self.cpg.processes()
    }

    /// The client went away (`cpg_lib_exit_fn`): its process leaves with PROCDOWN.
    pub fn cpg_disconnect(&mut self, conn: ConnId) {
        if let Some(send) = self.cpg.disconnect(conn) {
            self.cpg_send(send);
        }
    }

    /// `cpg_membership_get`.
    pub fn cpg_membership(&self, group: &[u8]) -> Vec<CpgAddress> {
        CpgName::new(group).map_or_else(Vec::new, |g| self.cpg_membership_of(&g))
    }

    /// `cpg_membership_get` for a name as a client sent it (its identity: length and the
    /// first `length` bytes).
    pub fn cpg_membership_of(&self, group: &CpgName) -> Vec<CpgAddress> {
        self.cpg.membership(group)
    }

    // ---- EVS connections (docs/evs.md §3.3) ---------------------------------------------

    /// Multicasts a votequorum exec message (a RECONFIGURE asked through libvotequorum:
    /// `votequorum_exec_send_reconfigure`); it comes back as [`NodeOutput::Votequorum`].
    pub fn votequorum_mcast(&mut self, message: &VotequorumMessage) {
        let mut bytes = Vec::new();
        message.emit(&mut bytes, ByteOrder::Little);
        self.send(GroupPrefix::EXEC, &[&bytes]);
    }

    /// Multicasts a cfg exec message (`exec/cfg.c` sends them with `api->totem_mcast`);
    /// delivered to every member, this one included, in agreed order with everything else,
    /// as [`NodeOutput::Cfg`]. [`CfgExec::Other`] is not sent.
    pub fn cfg_mcast(&mut self, message: &CfgExec) {
        let Some(wire) = message.to_wire() else {
            return;
        };
        let mut bytes = Vec::new();
        wire.emit(&mut bytes, ByteOrder::Little);
        self.send(GroupPrefix::EXEC, &[&bytes]);
    }

    /// `evs_initialize`: a connection, which at once gets the last configuration
    /// (EVS-CODE-1).
    pub fn evs_connect(&mut self) -> EvsConnId {
        let conn = self.evs.connect();
        self.drain_evs_events();
        conn
    }

    /// `evs_join`: local only, never flow-controlled (EVS-JOIN-2, EVS-CODE-7).
    pub fn evs_join(&mut self, conn: EvsConnId, groups: &[EvsGroup]) -> Result<(), EvsError> {
        self.evs.join(conn, groups)
    }

    /// `evs_leave`: local only (EVS-LEAVE-2, EVS-LEAVE-7).
    pub fn evs_leave(&mut self, conn: EvsConnId, groups: &[EvsGroup]) -> Result<(), EvsError> {
        self.evs.leave(conn, groups)
    }

    /// `evs_mcast_joined`: the connection's whole joined list goes with the message, even an
    /// empty one (EVS-JOIN-3, EVS-MJ-2). The guarantee is not a parameter: every EVS
    /// message is agreed (EVS-MJ-4).
    pub fn evs_mcast_joined(&mut self, conn: EvsConnId, data: &[u8]) -> Result<(), EvsError> {
        let groups = self.evs.joined(conn)?.to_vec();
        self.evs_send(groups, data)
    }

    /// `evs_mcast_groups`: the caller's groups, as given; the sender need not have joined
    /// them (EVS-MG-2).
    pub fn evs_mcast_groups(
        &mut self,
        conn: EvsConnId,
        groups: &[EvsGroup],
        data: &[u8],
    ) -> Result<(), EvsError> {
        self.evs.joined(conn)?;
        self.evs_send(groups.to_vec(), data)
    }

    /// `evs_membership_get`: this node and the members of the last configuration
    /// (EVS-MEMB-2, EVS-MEMB-3).
    pub fn evs_membership_get(&self, conn: EvsConnId) -> Result<(u32, Vec<u32>), EvsError> {
        Ok((self.my_id, self.evs.members(conn)?))
    }

    /// `evs_finalize` or the client's death: silent (EVS-FIN-1).
    pub fn evs_disconnect(&mut self, conn: EvsConnId) -> Result<(), EvsError> {
        self.evs.disconnect(conn)
    }

    /// The exec MCAST on group "a", under CPG's flow control: TRY_AGAIN during sync or when
    /// totem's queue cannot take it (EVS-MJ-11, EVS-CODE-7); INVALID_PARAM above totem's
    /// size limit (`header.size + 1 < totempg_size_limit`, docs/evs.md §6).
    fn evs_send(&mut self, groups: Vec<EvsGroup>, data: &[u8]) -> Result<(), EvsError> {
        Evs::check_send(groups.len(), data.len())?;
        let message = EvsMcast::new(groups, data);
        let len = message.buffer_len();
        let limit = self.srp.queue_max().saturating_sub(3) * self.packer.packet_size();
        if len + 1 >= limit {
            return Err(EvsError::InvalidParam);
        }
        self.sending_allowed(len).map_err(|_| EvsError::TryAgain)?;
        let mut bytes = Vec::with_capacity(len);
        message.emit(&mut bytes, ByteOrder::Little);
        let fixed = EVS_MCAST_FIXED_LEN + EVS_GROUP_LEN * message.groups.len();
        let (head, user) = bytes.split_at(fixed);
        self.send(GroupPrefix::EXEC, &[head, user]);
        Ok(())
    }

    fn drain_evs_events(&mut self) {
        for e in self.evs.events.drain(..) {
            self.events.push_back(NodeOutput::Evs(e));
        }
    }

    /// `corosync_sending_allowed` for flow-controlled CPG requests: nothing during sync, and
    /// only what the ring's queue can take.
    pub(crate) fn sending_allowed(&self, len: usize) -> Result<(), CpgError> {
        if self.sync.in_progress() || !self.synced_once {
            return Err(CpgError::TryAgain);
        }
        let packets = len / self.packer.packet_size().max(1) + 2;
        if self.srp.avail() < packets {
            return Err(CpgError::TryAgain);
        }
        Ok(())
    }

    fn cpg_send(&mut self, send: CpgSend) {
        let message = match send {
            CpgSend::ProcJoin { group, pid } => CpgMessage::procjoin(group, pid),
            CpgSend::ProcLeave { group, pid, reason } => {
                let CpgMessage::ProcJoin(mut m) = CpgMessage::procjoin(group, pid) else {
                    return;
                };
                m.header = ExecHeader::new(ServiceId::Cpg, 1, m.header.size as usize);
                m.reason = reason;
                CpgMessage::ProcLeave(m)
            }
        };
        let mut bytes = Vec::new();
        message.emit(&mut bytes, ByteOrder::Little);
        self.send(GroupPrefix::EXEC, &[&bytes]);
    }

    /// `totempg_groups_mcast_joined` on `group`: the group header and name are iovecs of
    /// their own, which decides where totempg cuts (spec §3.2).
    fn send(&mut self, group: &[u8], iovecs: &[&[u8]]) {
        let mut prefix = Vec::with_capacity(4 + group.len());
        GroupPrefix::single(group).emit(&mut prefix, ByteOrder::Little);
        let (header, name) = prefix.split_at(prefix.len() - group.len());
        let mut all: Vec<&[u8]> = vec![header, name];
        all.extend_from_slice(iovecs);
        let mut packets = Vec::new();
        self.packer.submit(&all, &mut packets);
        for p in packets {
            let _ = self.srp.submit(&p);
        }
        self.srp.new_message_signal();
    }

    // ---- deliveries ----------------------------------------------------------------------

    fn process_srp_events(&mut self) {
        while let Some(event) = self.srp.poll_event() {
            match event {
                Event::Deliver { nodeid, payload } => self.deliver_packet(nodeid, &payload),
                Event::Configuration {
                    kind,
                    members,
                    left,
                    joined,
                    ring_id,
                } => {
                    self.confchg(kind, &members, &left, ring_id);
                    // evs_confchg_fn: both kinds, not waiting for sync (docs/evs.md §5).
                    let evs = EvsConfchg {
                        kind,
                        members: members.clone(),
                        left: left.clone(),
                        joined: joined.clone(),
                        ring_id,
                    };
                    self.push_event(NodeEvent::Configuration {
                        kind,
                        members,
                        left,
                        joined,
                        ring_id,
                    });
                    self.evs.confchg(evs);
                    self.drain_evs_events();
                    self.run_sync_start(kind, ring_id);
                }
                Event::WaitingTransAck(waiting) => {
                    // totempg_waiting_trans_ack_cb: only the choice of assembly set changes;
                    // both sets keep their pieces across rings (assembly_list_inuse_trans
                    // too). The sync hang the simulator once found here (seed 63) came from a
                    // trans_ack that took effect after the next ring's switch, fixed in
                    // Srp::trans_ack.
                    self.waiting_trans_ack = waiting;
                }
                Event::StoreRingId(ring) => self.push_event(NodeEvent::StoreRingId(ring)),
                Event::StateChanged { from, to, reason } => {
                    self.push_event(NodeEvent::StateChanged { from, to, reason })
                }
            }
            self.drain_cpg_events();
        }
    }

    fn push_event(&mut self, event: NodeEvent) {
        self.events.push_back(NodeOutput::Event(event));
    }

    fn drain_cpg_events(&mut self) {
        for e in self.cpg.events.drain(..) {
            self.events
                .push_back(NodeOutput::Event(NodeEvent::Client(e)));
        }
    }

    /// `main.c::confchg_fn`: abort a running sync, remember the transitional list; totempg
    /// forgets the partial messages of nodes that left (`app_confchg_fn`).
    fn confchg(&mut self, kind: ConfigurationKind, members: &[u32], left: &[u32], ring: RingId) {
        if self.sync.abort() {
            self.cpg.sync_abort();
        }
        if kind == ConfigurationKind::Regular {
            self.delivery_ring = ring;
        }
        if kind == ConfigurationKind::Transitional {
            self.trans_list = members.to_vec();
            for n in left {
                let dropped = [self.assembler.reset(*n), self.trans_assembler.reset(*n)];
                for d in dropped.iter().flatten() {
                    self.note_discard(d);
                }
            }
        }
    }

    fn run_sync_start(&mut self, kind: ConfigurationKind, ring_id: RingId) {
        if kind != ConfigurationKind::Regular {
            return;
        }
        let members = self.srp.members().to_vec();
        let trans: Vec<u32> = self
            .trans_list
            .iter()
            .copied()
            .filter(|n| members.contains(n))
            .collect();
        let actions = self.sync.start(ring_id, &members);
        self.cpg.sync_init(&trans, &members, ring_id);
        self.apply_sync(actions);
    }

    fn deliver_packet(&mut self, nodeid: u32, payload: &[u8]) {
        let Ok(packet) = PgPacket::parse(payload, ByteOrder::Little) else {
            return;
        };
        let fed = if self.waiting_trans_ack {
            self.trans_assembler
                .feed(nodeid, &packet, self.delivery_ring)
        } else {
            self.assembler.feed(nodeid, &packet, self.delivery_ring)
        };
        for d in &fed.discarded {
            self.note_discard(d);
        }
        if let Some(notes) = self.notes.as_mut() {
            for m in &fed.delivered {
                if let (Some(first), Some(last)) = (m.sources.first(), m.sources.last()) {
                    if first != last {
                        notes.push(TotempgNote::AcrossRings {
                            sender: nodeid,
                            first_ring: *first,
                            last_ring: *last,
                        });
                    }
                }
            }
        }
        for message in fed.delivered {
            self.deliver_message(nodeid, &message.data);
        }
    }

    fn deliver_message(&mut self, nodeid: u32, data: &[u8]) {
        let Ok((prefix, payload)) = GroupPrefix::parse(data, ByteOrder::Little) else {
            return;
        };
        if prefix.contains(GroupPrefix::SYNC) {
            let Ok(message) = SyncMessage::parse(payload, ByteOrder::Little) else {
                return;
            };
            let actions = match message {
                SyncMessage::ServiceBuild {
                    ring_id, services, ..
                } => {
                    let actions = self.sync.on_service_build(nodeid, ring_id, &services);
                    // The last SERVICE_BUILD: sync_process_call_init runs every service's
                    // sync_init, and votequorum's drops FIRST on a ring of several nodes.
                    if !actions.is_empty() && self.srp.members().len() > 1 {
                        self.votequorum_first = false;
                    }
                    actions
                }
                SyncMessage::Barrier { ring_id, .. } => self.sync.on_barrier(nodeid, ring_id),
                SyncMessage::Unknown { .. } => Vec::new(),
            };
            self.apply_sync(actions);
            return;
        }
        if !prefix.contains(GroupPrefix::EXEC) {
            return;
        }
        // main.c::deliver_fn: services not loaded, or unknown functions, are ignored;
        // votequorum's messages go to the node's user.
        let message = match ExecMessage::parse(payload, ByteOrder::Little) {
            Ok(ExecMessage::Cpg(message)) => message,
            Ok(ExecMessage::Votequorum(message)) => {
                self.events.push_back(NodeOutput::Votequorum {
                    from: nodeid,
                    message,
                });
                return;
            }
            Ok(ExecMessage::Cfg(message)) => {
                self.events.push_back(NodeOutput::Cfg {
                    from: nodeid,
                    message: CfgExec::from_wire(&message),
                });
                return;
            }
            Ok(ExecMessage::Evs(EvsMessage::Mcast(m))) => {
                self.evs.on_mcast(nodeid, &m.groups, m.data);
                self.drain_evs_events();
                return;
            }
            _ => return,
        };
        match message {
            CpgMessage::ProcJoin(m) => self.cpg.on_procjoin(nodeid, m.group, m.pid),
            CpgMessage::ProcLeave(m) => self.cpg.on_procleave(nodeid, m.group, m.pid, m.reason),
            CpgMessage::JoinList(list) => {
                let entries: Vec<(u32, CpgName)> =
                    list.entries.iter().map(|e| (e.pid, e.group)).collect();
                self.cpg.on_joinlist(nodeid, &entries);
            }
            CpgMessage::Mcast(m) => self.cpg.on_mcast(nodeid, m.group, m.pid, m.data),
            // libcpg reassembles the pieces (`cpg_dispatch`).
            CpgMessage::PartialMcast(m) => {
                self.cpg
                    .on_partial_mcast(nodeid, m.group, m.pid, m.msglen, m.kind, m.data);
            }
            // 3.1.7 only logs received downlists.
            CpgMessage::Downlist(_) => {}
        }
        self.drain_cpg_events();
    }

    // ---- sync ----------------------------------------------------------------------------

    fn apply_sync(&mut self, actions: Vec<SyncAction>) {
        let mut queue: VecDeque<SyncAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                SyncAction::SendServiceBuild(ring, services) => {
                    let mut bytes = Vec::new();
                    SyncMessage::service_build(ring, services).emit(&mut bytes, ByteOrder::Little);
                    self.send(GroupPrefix::SYNC, &[&bytes]);
                }
                SyncAction::Process(service, ring) => {
                    self.sync_process(service);
                    let mut bytes = Vec::new();
                    SyncMessage::barrier(ring).emit(&mut bytes, ByteOrder::Little);
                    self.send(GroupPrefix::SYNC, &[&bytes]);
                }
                SyncAction::Activate(service) => {
                    if service == i32::from(u16::from(ServiceId::Cpg)) {
                        self.cpg.sync_activate();
                        self.drain_cpg_events();
                    }
                }
                SyncAction::Completed(ring) => {
                    self.synced_once = true;
                    self.srp.trans_ack();
                    self.push_event(NodeEvent::SyncCompleted(ring));
                }
            }
        }
    }

    /// Each service's `sync_process`: what real 3.1.7 nodes send, so that they accept us
    /// (spec §4.5).
    fn sync_process(&mut self, service: i32) {
        match service {
            0 => {
                // CMAP: totem.config_version as "not exist" (never triggers the shutdown trap).
                let cmap = CmapMcast {
                    header: ExecHeader { id: 0, size: 328 },
                    reason: CmapMcastReason::Sync,
                    items: vec![CmapItem {
                        key: b"totem.config_version",
                        value_type: CmapValueType::NotExist,
                        value: &[],
                    }],
                };
                let mut bytes = Vec::new();
                cmap.emit(&mut bytes, ByteOrder::Little);
                self.send(GroupPrefix::EXEC, &[&bytes]);
            }
            2 => {
                let (old_members, left, joinlist) = self.cpg.sync_messages();
                let downlist = CpgMessage::Downlist(Downlist {
                    header: ExecHeader::new(ServiceId::Cpg, 5, DOWNLIST_LEN),
                    old_members: Some(old_members),
                    left_nodes: left.len() as u32,
                    nodeids: left,
                });
                let mut bytes = Vec::new();
                downlist.emit(&mut bytes, ByteOrder::Little);
                self.send(GroupPrefix::EXEC, &[&bytes]);
                if !joinlist.is_empty() {
                    let size = JOINLIST_HEADER_LEN + JOINLIST_ENTRY_LEN * joinlist.len();
                    let list = CpgMessage::JoinList(JoinList {
                        header: ExecHeader::new(ServiceId::Cpg, 2, size),
                        error: 0,
                        entries: joinlist
                            .into_iter()
                            .map(|(pid, group)| JoinListEntry { pid, group })
                            .collect(),
                    });
                    let mut bytes = Vec::new();
                    list.emit(&mut bytes, ByteOrder::Little);
                    self.send(GroupPrefix::EXEC, &[&bytes]);
                }
            }
            5 => {
                self.send_nodeinfo();
                // The qdevice pseudo-node's entry, after ours (the nodeid-0 assert trap).
                let qdevice = VotequorumMessage::NodeInfo {
                    header: ExecHeader::new(ServiceId::Votequorum, 0, 32),
                    nodeid: 0,
                    votes: 0,
                    expected_votes: 0,
                    flags: NodeInfoFlags(0),
                };
                let mut bytes = Vec::new();
                qdevice.emit(&mut bytes, ByteOrder::Little);
                self.send(GroupPrefix::EXEC, &[&bytes]);
            }
            _ => {}
        }
    }

    fn send_nodeinfo(&mut self) {
        const FIRST: u32 = 8;
        let first = if self.votequorum_first { FIRST } else { 0 };
        let nodeinfo = VotequorumMessage::NodeInfo {
            header: ExecHeader::new(ServiceId::Votequorum, 0, 32),
            nodeid: self.my_id,
            votes: self.nodeinfo.votes,
            expected_votes: self.nodeinfo.expected_votes,
            flags: NodeInfoFlags((self.nodeinfo.flags.0 & !FIRST) | first),
        };
        let mut bytes = Vec::new();
        nodeinfo.emit(&mut bytes, ByteOrder::Little);
        self.send(GroupPrefix::EXEC, &[&bytes]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A node alone: its multicasts come back to it, as udpu's do.
    pub(crate) fn run_alone(node: &mut Node, mut now: Instant, until: Instant) -> Vec<NodeOutput> {
        let mut out = Vec::new();
        while now < until {
            while let Some(t) = node.poll_transmit() {
                let _ = node.handle_datagram(now, &t.bytes);
            }
            while let Some(o) = node.poll_output() {
                out.push(o);
            }
            match node.poll_timeout() {
                Some(t) if t <= until => {
                    now = now.max(t);
                    node.handle_timeout(now);
                }
                _ => break,
            }
        }
        out
    }

    /// cfg's exec messages go round the ring and come back to their sender as outputs
    /// (exec/cfg.c acts on its own SHUTDOWN and on a KILLNODE naming it when delivered).
    #[test]
    fn cfg_messages_come_back_as_outputs() {
        let start = Instant::from_millis(0);
        let mut node = Node::new(
            NodeConfig {
                nodeid: 4,
                srp: totem_srp::SrpConfig::defaults(3),
                net_mtu: 1500,
                stored_ring_seq: 0,
                nodeinfo: OwnNodeInfo::new(1),
            },
            start,
        );
        let synced = run_alone(&mut node, start, Instant::from_millis(5_000));
        assert!(synced
            .iter()
            .any(|o| matches!(o, NodeOutput::Event(NodeEvent::SyncCompleted(_)))));
        let kill = CfgExec::KillNode {
            nodeid: 4,
            reason: b"by test".to_vec(),
        };
        node.cfg_mcast(&kill);
        node.cfg_mcast(&CfgExec::Shutdown);
        node.cfg_mcast(&CfgExec::Other(0));
        let out = run_alone(
            &mut node,
            Instant::from_millis(5_000),
            Instant::from_millis(6_000),
        );
        let cfg: Vec<&CfgExec> = out
            .iter()
            .filter_map(|o| match o {
                NodeOutput::Cfg { from: 4, message } => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(cfg, [&kill, &CfgExec::Shutdown]);
    }

    #[test]
    fn votequorum_messages_come_out_in_order_with_our_nodeinfo() {
        let start = Instant::from_millis(0);
        let mut nodeinfo = OwnNodeInfo::new(3);
        nodeinfo.votes = 2;
        let mut node = Node::new(
            NodeConfig {
                nodeid: 7,
                srp: totem_srp::SrpConfig::defaults(3),
                net_mtu: 1500,
                stored_ring_seq: 0,
                nodeinfo,
            },
            start,
        );
        // What the user says before the sync's NODEINFO (FIRST stays the node's).
        node.set_nodeinfo(OwnNodeInfo {
            flags: NodeInfoFlags(1 | 8),
            ..nodeinfo
        });
        let out = run_alone(&mut node, start, Instant::from_millis(10_000));
        let summary: Vec<String> = out
            .iter()
            .filter_map(|o| match o {
                NodeOutput::Event(NodeEvent::Configuration {
                    kind: ConfigurationKind::Regular,
                    ..
                }) => Some("regular".to_owned()),
                NodeOutput::Event(NodeEvent::SyncCompleted(_)) => Some("synced".to_owned()),
                NodeOutput::Votequorum {
                    from,
                    message:
                        VotequorumMessage::NodeInfo {
                            nodeid,
                            votes,
                            expected_votes,
                            flags,
                            ..
                        },
                } => Some(format!("{from}:{nodeid}/{votes}/{expected_votes}/{flags}")),
                _ => None,
            })
            .collect();
        // The start-up NODEINFO is delivered on the first ring, before its sync's pair;
        // a ring of one keeps FIRST.
        assert_eq!(
            summary,
            [
                "regular",
                "7:7/2/3/FIRST",
                "7:7/2/3/QUORATE|FIRST",
                "7:0/0/0/0x0",
                "synced"
            ],
            "{out:?}"
        );
        assert_eq!(
            node.poll_event(),
            None,
            "poll_event skips votequorum deliveries"
        );
    }

    pub(crate) fn alone(nodeid: u32) -> Node {
        Node::new(
            NodeConfig {
                nodeid,
                srp: totem_srp::SrpConfig::defaults(1),
                net_mtu: 1500,
                stored_ring_seq: 0,
                nodeinfo: OwnNodeInfo::new(1),
            },
            Instant::from_millis(0),
        )
    }

    // Reference: main.c (sync_in_process starts at 1, corosync_sync_completed clears it),
    // corosync_sending_allowed. Seeds 32364 and 80762 of the sweep: a restarted node that
    // had no ring for seconds took its client's join and mcasts, which then went out during
    // a later ring's sync and were delivered by some of its members only.
    #[test]
    fn a_node_refuses_cpg_requests_until_its_first_sync_completes() {
        let mut node = alone(1);
        let conn = node.cpg_connect(false);
        assert!(!node.syncing(), "no ring yet, so no sync running either");
        assert_eq!(node.cpg_join(conn, b"g", 100), Err(CpgError::TryAgain));
        assert_eq!(node.ipc_flow_control(), 2);
        let out = run_alone(
            &mut node,
            Instant::from_millis(0),
            Instant::from_millis(5_000),
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, NodeOutput::Event(NodeEvent::SyncCompleted(_)))),
            "{out:?}"
        );
        assert_eq!(node.ipc_flow_control(), 0);
        node.cpg_join(conn, b"g", 100).unwrap();
        node.cpg_mcast(conn, b"x").unwrap();
    }

    #[test]
    fn names_equal_up_to_their_length_are_one_group() {
        // Two programs name the group {5, "trunkX"} and {5, "trunkY"}: libcpg sends the
        // whole array, corosync compares `length` bytes (mar_name_compare), so both are in
        // group "trunk".
        let mut node = alone(1);
        let out = run_alone(
            &mut node,
            Instant::from_millis(0),
            Instant::from_millis(5_000),
        );
        assert!(!node.syncing(), "{out:?}");
        let (x, y) = (
            CpgName::with_length(b"trunkX", 5),
            CpgName::with_length(b"trunkY", 5),
        );
        let a = node.cpg_connect(false);
        let b = node.cpg_connect(false);
        node.cpg_join_flags(a, x, 100, false).unwrap();
        node.cpg_join_flags(b, y, 200, false).unwrap();
        let mut out = run_alone(
            &mut node,
            Instant::from_millis(5_000),
            Instant::from_millis(6_000),
        );
        node.cpg_mcast(b, b"hello").unwrap();
        out.extend(run_alone(
            &mut node,
            Instant::from_millis(6_000),
            Instant::from_millis(7_000),
        ));
        let events: Vec<&ClientEvent> = out
            .iter()
            .filter_map(|o| match o {
                NodeOutput::Event(NodeEvent::Client(e)) => Some(e),
                _ => None,
            })
            .collect();
        let b_joined = events.iter().find_map(|e| match e {
            ClientEvent::Confchg {
                conn,
                group,
                members,
                joined,
                ..
            } if *conn == a && joined.iter().any(|j| j.pid == 200) => Some((group, members)),
            _ => None,
        });
        let (group, members) = b_joined.expect("a sees b join its group");
        assert_eq!(members.len(), 2);
        // The confchg carries the joiner's bytes (notify_lib_joinlist copies the PROCJOIN's
        // name), not the receiving client's.
        assert!(group.same_bytes(&y), "{group:?}");
        let delivered: Vec<(ConnId, &CpgName)> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Deliver { conn, group, .. } => Some((*conn, group)),
                _ => None,
            })
            .collect();
        assert_eq!(delivered.len(), 2, "{events:?}");
        // A delivery carries the sender's bytes (message_handler_req_exec_cpg_mcast).
        assert!(delivered.iter().all(|(_, g)| g.same_bytes(&y)));
        assert_eq!(node.cpg_membership(b"trunk").len(), 2);
        assert_eq!(
            node.cpg_membership_of(&CpgName::with_length(b"trunkZ", 5))
                .len(),
            2
        );
        assert!(node.cpg_membership(b"trunkX").is_empty());
    }

    fn evs_key(name: &[u8]) -> EvsGroup {
        let mut k = [0u8; EVS_GROUP_LEN];
        k[..name.len()].copy_from_slice(name);
        k
    }

    #[test]
    fn evs_delivers_to_joined_connections_and_refuses_sends_during_sync() {
        let mut node = alone(3);
        // Sync runs on the first ring: sends answer TRY_AGAIN (EVS-CODE-7), joins do not.
        let early = node.evs_connect();
        let mut now = Instant::from_millis(0);
        let mut out = Vec::new();
        let mut steps = 0;
        while !node.syncing() {
            steps += 1;
            assert!(steps < 100_000, "sync never started");
            if let Some(t) = node.poll_transmit() {
                let _ = node.handle_datagram(now, &t.bytes);
            } else if let Some(t) = node.poll_timeout() {
                now = now.max(t);
                node.handle_timeout(now);
            }
            out.extend(std::iter::from_fn(|| node.poll_output()));
        }
        assert_eq!(node.evs_mcast_joined(early, b"x"), Err(EvsError::TryAgain));
        node.evs_join(early, &[evs_key(b"g")]).unwrap();
        out.extend(run_alone(&mut node, now, Instant::from_millis(5_000)));
        assert!(!node.syncing());
        let confchgs: Vec<(ConfigurationKind, Vec<u32>, Vec<u32>)> = out
            .iter()
            .filter_map(|o| match o {
                NodeOutput::Evs(EvsEvent::Confchg { conn, confchg }) if *conn == early => Some((
                    confchg.kind,
                    confchg.members.clone(),
                    confchg.joined.clone(),
                )),
                _ => None,
            })
            .collect();
        // EVS-OVW-17: a lone node's first change is transitional {} then regular {self}.
        assert_eq!(
            confchgs,
            [
                (ConfigurationKind::Transitional, vec![], vec![]),
                (ConfigurationKind::Regular, vec![3], vec![3])
            ]
        );
        // A late connection gets the regular one at once (EVS-CODE-1).
        let late = node.evs_connect();
        let other = node.evs_connect();
        node.evs_join(other, &[evs_key(b"h")]).unwrap();
        assert_eq!(node.evs_membership_get(late).unwrap(), (3, vec![3]));
        node.evs_mcast_joined(early, b"to g").unwrap();
        node.evs_mcast_groups(late, &[evs_key(b"h"), evs_key(b"g")], b"to g and h")
            .unwrap();
        node.evs_mcast_joined(late, b"to nobody").unwrap();
        let out = run_alone(
            &mut node,
            Instant::from_millis(5_000),
            Instant::from_millis(6_000),
        );
        let mut events: Vec<String> = Vec::new();
        for o in &out {
            if let NodeOutput::Evs(e) = o {
                events.push(match e {
                    EvsEvent::Deliver { conn, nodeid, data } => {
                        format!("{conn}<-{nodeid}:{}", String::from_utf8_lossy(data))
                    }
                    EvsEvent::Confchg { conn, confchg } => {
                        format!("{conn}:confchg {:?}", confchg.members)
                    }
                });
            }
        }
        assert_eq!(
            events,
            [
                format!("{late}:confchg [3]"),
                format!("{other}:confchg [3]"),
                format!("{early}<-3:to g"),
                format!("{early}<-3:to g and h"),
                format!("{other}<-3:to g and h"),
            ]
        );
        // Above totem's size limit (docs/evs.md §6): refused, not queued.
        let huge = vec![0u8; 2 << 20];
        assert_eq!(
            node.evs_mcast_joined(early, &huge),
            Err(EvsError::InvalidParam)
        );
        node.evs_disconnect(late).unwrap();
        assert_eq!(node.evs_mcast_joined(late, b"x"), Err(EvsError::BadHandle));
    }
}
