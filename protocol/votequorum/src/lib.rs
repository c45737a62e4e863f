//! `totem-votequorum`: the node's quorum as corosync 3.1.7's votequorum computes it
//! (`exec/votequorum.c`), sans-IO: no sockets, no clock, no logging. Its inputs are what a
//! `totem_cpg::Node` reports in agreed order ([`Votequorum::node_event`],
//! [`Votequorum::deliver`] for `NodeOutput::Votequorum`), its outputs the quorum state and
//! this node's next NODEINFO ([`Votequorum::own_nodeinfo`], for `Node::set_nodeinfo`).
//!
//! [`Votequorum`] is `exec/votequorum.c`'s state, fed what the node delivers in agreed
//! order (totemd's quorum service and its log reporter each keep one, and so does the simulator
//! for each of its nodes):
//!
//! * start-up (`votequorum_exec_init_fn`, `votequorum_readconfig`): this node alone, a
//!   member with its nodelist `quorum_votes` (1 without), expected votes
//!   `quorum.expected_votes`, else the nodelist's total; FIRST, and WFASTATUS with
//!   `wait_for_all` (which `two_node` sets unless configured); `recalculate_quorum`;
//! * a regular configuration (`votequorum_sync_init`, run by corosync when the ring's
//!   SERVICE_BUILDs are in: the node's events have it at the configuration, which only
//!   differs for a sync aborted before that point): the last sync's members missing from
//!   the new ring are marked dead (never removed: they stay listed, as in corosync), FIRST
//!   goes with more than one member, the members and ring become the quorum's;
//! * every NODEINFO (`message_handler_req_exec_votequorum_nodeinfo`), this node's own
//!   included: the node's votes, flags and state (member, or leaving with LEAVING); its
//!   expected votes are the ones it sent if it is quorate, else ours; a quorate sender
//!   while we are not sets our expected votes to its own and allows the quorum to go down;
//!   the quorum is recalculated when anything changed (or the node is new, ours, or FIRST);
//!   then a quorate node not waiting for all (no WFASTATUS) ends our wait for all. A
//!   NODEINFO for nodeid 0 is the qdevice's votes (the sender's quorate view wins while we
//!   are not quorate; corosync asserts the sender is known, here an unknown one is
//!   ignored);
//! * RECONFIGURE (`message_handler_req_exec_votequorum_reconfigure`, what
//!   `corosync-quorumtool -e/-v` on another node sends): new expected votes for every
//!   member, a node's votes, or the end of wait-for-all;
//! * the end of sync (`votequorum_sync_activate`): `recalculate_quorum`, and the quorum
//!   service's view (`quorum_api_set_quorum`) becomes the members and `quorate`.
//!
//! `recalculate_quorum`: total votes are the members' plus the qdevice's; our expected
//! votes are raised to them; the quorum is `max((highest_expected + 2) / 2, (total + 2) /
//! 2)` over the members' (highest) expected votes, never lower than before unless allowed,
//! 1 with `two_node` and at most two members (`calculate_quorum`, kept in a `uint8_t` as
//! corosync does); quorate is total ≥ quorum, not before every expected vote was there at
//! once while waiting for all, and the wait starts again when quorum is lost
//! (`are_we_quorate`). A change of quorate outside sync calls `quorum_api_set_quorum` at
//! once ([`Votequorum::deliver`] says so). GETINFO answers come from the same records
//! (`message_handler_req_lib_votequorum_getinfo`): a node's own votes and expected votes,
//! the members' highest expected and total votes.
//!
//! Not implemented: the quorum device (totemd registers none; a peer's qdevice votes are
//! counted as above, but no node of ours casts them), `last_man_standing`,
//! `auto_tie_breaker`, `allow_downscale` and `expected_votes_tracking` (all read as off),
//! the expected-votes library callback, and setting votes or expected votes from here
//! (totemd's votequorum IPC service answers SETEXPECTED / SETVOTES NOT_SUPPORTED).

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::collections::BTreeMap;

use totem_cpg::{NodeEvent, NodeInfoFlags, OwnNodeInfo, VotequorumMessage};
use totem_srp::ConfigurationKind;
use totem_wire::exec::votequorum::ReconfigureParam;
use totem_wire::srp::RingId;

/// `NODESTATE_MEMBER`.
pub const NODESTATE_MEMBER: u32 = 1;
/// `NODESTATE_DEAD`.
pub const NODESTATE_DEAD: u32 = 2;
/// `NODESTATE_LEAVING`.
pub const NODESTATE_LEAVING: u32 = 3;

/// `NODE_FLAGS_QUORATE`.
pub const NODE_FLAGS_QUORATE: u32 = 1;
/// `NODE_FLAGS_LEAVING`.
pub const NODE_FLAGS_LEAVING: u32 = 2;
/// `NODE_FLAGS_WFASTATUS`.
pub const NODE_FLAGS_WFASTATUS: u32 = 4;
/// `NODE_FLAGS_FIRST`.
pub const NODE_FLAGS_FIRST: u32 = 8;
/// `NODE_FLAGS_QDEVICE_CAST_VOTE`.
pub const NODE_FLAGS_QDEVICE_CAST_VOTE: u32 = 64;

/// The votequorum settings of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteConfig {
    /// `quorum.provider` is set (`corosync_votequorum`, the only one corosync 3 has).
    pub provider: bool,
    /// `nodelist.node.X.quorum_votes` per nodeid.
    pub votes: BTreeMap<u32, u32>,
    /// `quorum.expected_votes`, else the nodelist's votes.
    pub expected_votes: u32,
    /// `quorum.two_node`.
    pub two_node: bool,
    /// `quorum.wait_for_all`, defaulting to `two_node` (`votequorum_readconfig`).
    pub wait_for_all: bool,
}

/// One node as votequorum keeps it (`struct cluster_node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeView {
    /// [`NODESTATE_MEMBER`], [`NODESTATE_DEAD`] or [`NODESTATE_LEAVING`].
    pub state: u32,
    /// Its votes.
    pub votes: u32,
    /// Its expected votes.
    pub expected_votes: u32,
    /// Its `NODE_FLAGS_*`, as its last NODEINFO said (ours: as we keep them).
    pub flags: u32,
}

/// What the quorum service (`vsf_quorum.c`) was last told by `quorum_api_set_quorum`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumView {
    /// `primary_designated`.
    pub quorate: bool,
    /// `quorum_view_list`.
    pub members: Vec<u32>,
    /// `quorum_ring_id`.
    pub ring: RingId,
}

/// Why a write through libvotequorum was refused (its `cs_error_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefused {
    /// CS_ERR_INVALID_PARAM: the quorum would be out of bounds.
    InvalidParam,
    /// CS_ERR_NAME_NOT_FOUND: no such node.
    NameNotFound,
}

/// `votequorum_exec_send_reconfigure`'s message (`struct req_exec_quorum_reconfigure`:
/// header, nodeid, value, param; 32 bytes).
fn reconfigure(nodeid: u32, value: u32, param: ReconfigureParam) -> VotequorumMessage {
    VotequorumMessage::Reconfigure {
        header: totem_wire::exec::ExecHeader::new(totem_wire::exec::ServiceId::Votequorum, 1, 32),
        nodeid,
        value,
        param,
    }
}

/// votequorum's state (`exec/votequorum.c`).
#[derive(Debug, Clone)]
pub struct Votequorum {
    config: VoteConfig,
    nodeid: u32,
    /// `quorum_members`: the members of the last sync.
    pub members: Vec<u32>,
    /// `quorum_ringid`.
    pub ring: RingId,
    /// `cluster_is_quorate`.
    pub quorate: bool,
    /// `quorum`.
    pub quorum: u32,
    /// `wait_for_all_status`: still waiting for every node.
    pub waiting_for_all: bool,
    /// `cluster_members_list` (this node included), by nodeid.
    pub nodes: BTreeMap<u32, NodeView>,
    /// The order of `cluster_members_list` (`node_add_ordered`, whose loop puts a node
    /// with the highest id so far before the last one).
    order: Vec<u32>,
    /// `qdevice->votes`.
    pub qdevice_votes: u32,
    /// `sync_in_progress`.
    sync_in_progress: bool,
    /// The quorum service's view.
    pub view: QuorumView,
}

impl Votequorum {
    /// The state at start-up (`votequorum_exec_init_fn`).
    pub fn new(config: VoteConfig, nodeid: u32) -> Votequorum {
        // votequorum_read_nodelist_configuration: our quorum_votes, 1 by default.
        let votes = config.votes.get(&nodeid).copied().unwrap_or(1);
        let expected_votes = config.expected_votes;
        let mut vq = Votequorum {
            nodeid,
            members: Vec::new(),
            ring: RingId::default(),
            quorate: false,
            quorum: 0,
            waiting_for_all: false,
            nodes: BTreeMap::new(),
            order: Vec::new(),
            qdevice_votes: 0,
            sync_in_progress: false,
            view: QuorumView::default(),
            config,
        };
        vq.add_node(nodeid);
        vq.nodes.insert(
            nodeid,
            NodeView {
                state: NODESTATE_MEMBER,
                votes,
                expected_votes,
                flags: NODE_FLAGS_FIRST,
            },
        );
        if vq.config.wait_for_all {
            vq.set_wait_for_all_status(true);
        }
        if vq.recalculate_quorum(false, false) {
            vq.set_view();
        }
        vq
    }

    /// The configuration.
    pub fn config(&self) -> &VoteConfig {
        &self.config
    }

    /// This node.
    pub fn nodeid(&self) -> u32 {
        self.nodeid
    }

    /// `us`.
    pub fn us(&self) -> NodeView {
        self.nodes[&self.nodeid]
    }

    fn us_mut(&mut self) -> &mut NodeView {
        self.nodes.get_mut(&self.nodeid).expect("us is listed")
    }

    /// `us->expected_votes`.
    pub fn expected_votes(&self) -> u32 {
        self.us().expected_votes
    }

    /// What this node's NODEINFO says (`votequorum_exec_send_nodeinfo(us->node_id)`).
    pub fn own_nodeinfo(&self) -> OwnNodeInfo {
        let us = self.us();
        OwnNodeInfo {
            votes: us.votes,
            expected_votes: us.expected_votes,
            flags: NodeInfoFlags(us.flags & !NODE_FLAGS_FIRST),
        }
    }

    /// The nodes in `cluster_members_list` order.
    pub fn listed(&self) -> impl Iterator<Item = (u32, NodeView)> + '_ {
        self.order.iter().map(|id| (*id, self.nodes[id]))
    }

    /// `allocate_node` → `node_add_ordered`.
    fn add_node(&mut self, nodeid: u32) {
        let at = match self.order.iter().position(|&n| nodeid < n) {
            Some(i) => i,
            // The loop ran to its end: `node` is the last entry, and add_tail puts the
            // new one before it.
            None => self.order.len().saturating_sub(1),
        };
        self.order.insert(at, nodeid);
    }

    fn set_wait_for_all_status(&mut self, waiting: bool) {
        self.waiting_for_all = waiting;
        let us = self.us_mut();
        if waiting {
            us.flags |= NODE_FLAGS_WFASTATUS;
        } else {
            us.flags &= !NODE_FLAGS_WFASTATUS;
        }
    }

    fn set_view(&mut self) {
        self.view = QuorumView {
            quorate: self.quorate,
            members: self.members.clone(),
            ring: self.ring,
        };
    }

    /// The members' highest expected votes and total votes (the qdevice's when `flags`
    /// say it casts its vote), as `calculate_quorum` and GETINFO add them.
    pub fn member_totals(&self, flags: u32) -> (u32, u32, u32) {
        let (mut highest, mut total, mut count) = (0u32, 0u32, 0u32);
        for n in self.nodes.values() {
            if n.state == NODESTATE_MEMBER {
                highest = highest.max(n.expected_votes);
                total = total.wrapping_add(n.votes);
                count += 1;
            }
        }
        if flags & NODE_FLAGS_QDEVICE_CAST_VOTE != 0 {
            total = total.wrapping_add(self.qdevice_votes);
            count += 1;
        }
        (highest, total, count)
    }

    /// `get_total_votes`.
    fn get_total_votes(&self) -> (u32, u32) {
        let (_, mut total, mut members) = self.member_totals(0);
        if self.qdevice_votes != 0 {
            total = total.wrapping_add(self.qdevice_votes);
            members += 1;
        }
        (total, members)
    }

    /// `calculate_quorum`: the new quorum and the total votes.
    fn calculate_quorum(&self, allow_decrease: bool, max_expected: u32) -> (u32, u32) {
        let (mut highest_expected, total, total_nodes) = self.member_totals(self.us().flags);
        if max_expected > 0 {
            highest_expected = max_expected;
        }
        let q1 = highest_expected.wrapping_add(2) / 2;
        let q2 = total.wrapping_add(2) / 2;
        let mut quorum = q1.max(q2);
        if !allow_decrease {
            quorum = quorum.max(self.quorum);
        }
        if self.config.two_node && total_nodes <= 2 {
            quorum = 1;
        }
        (quorum, total)
    }

    /// `update_node_expected_votes`.
    fn update_node_expected_votes(&mut self, expected: u32) {
        if expected != 0 {
            for n in self.nodes.values_mut() {
                if n.state == NODESTATE_MEMBER {
                    n.expected_votes = expected;
                }
            }
        }
    }

    /// `message_handler_req_lib_votequorum_setexpected` (`corosync-quorumtool -e`): the
    /// check, the local update of the members' expected votes, and the RECONFIGURE to
    /// multicast (the change itself happens when it is delivered, on every node).
    pub fn set_expected(&mut self, expected: u32) -> Result<VotequorumMessage, WriteRefused> {
        let (newquorum, total) = self.calculate_quorum(true, expected);
        // "Setting expected_votes < total_votes doesn't make sense. For quorate cluster
        // prevent cluster to become unquorate."
        if expected < total || (self.quorate && newquorum > total) {
            return Err(WriteRefused::InvalidParam);
        }
        self.update_node_expected_votes(expected);
        Ok(reconfigure(
            self.nodeid,
            expected,
            ReconfigureParam::ExpectedVotes,
        ))
    }

    /// `message_handler_req_lib_votequorum_setvotes` (`corosync-quorumtool -v`): the node's
    /// votes are set (and kept) if the quorum they give stays between half the total
    /// votes and the total; the RECONFIGURE to multicast. The qdevice pseudo-node (id 0)
    /// is not a node here.
    pub fn set_votes(
        &mut self,
        nodeid: u32,
        votes: u32,
    ) -> Result<VotequorumMessage, WriteRefused> {
        let Some(node) = self.nodes.get_mut(&nodeid) else {
            return Err(WriteRefused::NameNotFound);
        };
        let saved = node.votes;
        node.votes = votes;
        let (newquorum, total) = self.calculate_quorum(true, 0);
        if newquorum < total / 2 || newquorum > total {
            if let Some(node) = self.nodes.get_mut(&nodeid) {
                node.votes = saved;
            }
            return Err(WriteRefused::InvalidParam);
        }
        Ok(reconfigure(nodeid, votes, ReconfigureParam::NodeVotes))
    }

    /// `recalculate_quorum`; true when `quorum_api_set_quorum` is called (a change of
    /// quorate outside sync).
    fn recalculate_quorum(&mut self, allow_decrease: bool, by_current_nodes: bool) -> bool {
        let (total, members) = self.get_total_votes();
        let members = if by_current_nodes { members } else { 0 };
        if total > self.expected_votes() {
            self.us_mut().expected_votes = total;
        }
        let (quorum, total) = self.calculate_quorum(allow_decrease, members);
        // `static uint8_t quorum`.
        self.quorum = quorum & 0xff;
        self.update_node_expected_votes(members);
        self.are_we_quorate(total)
    }

    /// `are_we_quorate`.
    fn are_we_quorate(&mut self, total_votes: u32) -> bool {
        if self.config.wait_for_all && self.waiting_for_all {
            if total_votes != self.expected_votes() {
                return false;
            }
            self.set_wait_for_all_status(false);
        }
        let quorate = self.quorum <= total_votes;
        let change = quorate != self.quorate;
        self.quorate = quorate;
        let us = self.us_mut();
        if quorate {
            us.flags |= NODE_FLAGS_QUORATE;
        } else {
            us.flags &= !NODE_FLAGS_QUORATE;
        }
        if self.config.wait_for_all {
            self.set_wait_for_all_status(!quorate);
        }
        if change && !self.sync_in_progress {
            self.set_view();
            return true;
        }
        false
    }

    /// A regular configuration: `votequorum_sync_init` for the new ring.
    pub fn sync_init(&mut self, members: &[u32], ring: RingId) {
        self.sync_in_progress = true;
        if members.len() > 1 {
            self.us_mut().flags &= !NODE_FLAGS_FIRST;
        }
        for old in std::mem::take(&mut self.members) {
            if !members.contains(&old) {
                if let Some(n) = self.nodes.get_mut(&old) {
                    n.state = NODESTATE_DEAD;
                }
            }
        }
        self.members = members.to_vec();
        self.ring = ring;
    }

    /// The end of sync (`votequorum_sync_activate`): the quorum service is told.
    pub fn sync_activate(&mut self) {
        self.recalculate_quorum(false, false);
        self.set_view();
        self.sync_in_progress = false;
    }

    /// A delivered votequorum message from `sender`; true when the quorum service is told
    /// a new quorate state outside sync (`quorum_callback` from `are_we_quorate`).
    pub fn deliver(&mut self, sender: u32, message: &VotequorumMessage) -> bool {
        match *message {
            VotequorumMessage::NodeInfo {
                nodeid,
                votes,
                expected_votes,
                flags,
                ..
            } => self.nodeinfo(sender, nodeid, votes, expected_votes, flags.0),
            VotequorumMessage::Reconfigure {
                nodeid,
                value,
                param,
                ..
            } => self.reconfigure(nodeid, value, param),
            // No quorum device here.
            VotequorumMessage::QdeviceReg { .. } | VotequorumMessage::QdeviceReconfigure { .. } => {
                false
            }
        }
    }

    /// `message_handler_req_exec_votequorum_nodeinfo`.
    fn nodeinfo(
        &mut self,
        sender: u32,
        nodeid: u32,
        votes: u32,
        expected: u32,
        flags: u32,
    ) -> bool {
        if nodeid == 0 {
            // The qdevice pseudo-node: corosync asserts that the sender is known.
            let Some(sender_node) = self.nodes.get(&sender) else {
                return false;
            };
            let old = self.qdevice_votes;
            if !self.quorate && sender_node.flags & NODE_FLAGS_QUORATE != 0 {
                self.qdevice_votes = votes;
            } else {
                self.qdevice_votes = self.qdevice_votes.max(votes);
            }
            return old != self.qdevice_votes && self.recalculate_quorum(false, false);
        }
        let new_node = !self.nodes.contains_key(&nodeid);
        if new_node {
            self.add_node(nodeid);
        }
        let old = self.nodes.get(&nodeid).copied().unwrap_or(NodeView {
            state: NODESTATE_DEAD,
            votes: 0,
            expected_votes: 0,
            flags: 0,
        });
        let mut node = NodeView {
            state: NODESTATE_MEMBER,
            votes,
            expected_votes: old.expected_votes,
            flags,
        };
        let (mut allow_downgrade, mut by_node) = (false, false);
        if flags & NODE_FLAGS_LEAVING != 0 {
            node.state = NODESTATE_LEAVING;
            allow_downgrade = true;
            by_node = true;
        }
        self.nodes.insert(nodeid, node);
        if !self.quorate && flags & NODE_FLAGS_QUORATE != 0 {
            allow_downgrade = true;
            self.us_mut().expected_votes = expected;
        }
        let us_expected = self.expected_votes();
        let n = self.nodes.get_mut(&nodeid).expect("inserted");
        n.expected_votes = if flags & NODE_FLAGS_QUORATE != 0 {
            expected
        } else {
            us_expected
        };
        let node = *n;
        let mut told = false;
        if new_node
            || nodeid == self.nodeid
            || node.flags & NODE_FLAGS_FIRST != 0
            || old.votes != node.votes
            || old.expected_votes != node.expected_votes
            || old.flags != node.flags
            || old.state != node.state
        {
            told = self.recalculate_quorum(allow_downgrade, by_node);
        }
        if self.config.wait_for_all
            && node.flags & NODE_FLAGS_WFASTATUS == 0
            && node.flags & NODE_FLAGS_QUORATE != 0
        {
            self.set_wait_for_all_status(false);
        }
        told
    }

    /// `message_handler_req_exec_votequorum_reconfigure`.
    fn reconfigure(&mut self, nodeid: u32, value: u32, param: ReconfigureParam) -> bool {
        match param {
            ReconfigureParam::ExpectedVotes => {
                self.update_node_expected_votes(value);
                self.recalculate_quorum(true, false)
            }
            ReconfigureParam::NodeVotes => {
                let Some(n) = self.nodes.get_mut(&nodeid) else {
                    return false;
                };
                n.votes = value;
                self.recalculate_quorum(true, false)
            }
            ReconfigureParam::CancelWfa => {
                self.set_wait_for_all_status(false);
                self.recalculate_quorum(false, false)
            }
            _ => false,
        }
    }

    /// One event of the node: a regular configuration starts votequorum's sync, the end
    /// of sync activates it. True when the quorum service is told a new state.
    pub fn node_event(&mut self, event: &NodeEvent) -> bool {
        match event {
            NodeEvent::Configuration {
                kind: ConfigurationKind::Regular,
                members,
                ring_id,
                ..
            } => {
                self.sync_init(members, *ring_id);
                false
            }
            NodeEvent::SyncCompleted(_) => {
                self.sync_activate();
                true
            }
            _ => false,
        }
    }
}

/// A cluster of votequorum states, each with its own configuration, whose syncs exchange
/// the NODEINFO messages corosync's nodes send (`votequorum_sync_process`).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    #![allow(missing_docs)]
    use super::*;
    use totem_wire::exec::{ExecHeader, ServiceId};

    pub fn config(n: u32, two_node: bool) -> VoteConfig {
        VoteConfig {
            provider: true,
            votes: (1..=n).map(|i| (i, 1)).collect(),
            expected_votes: n,
            two_node,
            wait_for_all: two_node,
        }
    }

    pub fn nodeinfo(nodeid: u32, votes: u32, expected_votes: u32, flags: u32) -> VotequorumMessage {
        VotequorumMessage::NodeInfo {
            header: ExecHeader::new(ServiceId::Votequorum, 0, 32),
            nodeid,
            votes,
            expected_votes,
            flags: NodeInfoFlags(flags),
        }
    }

    /// `votequorum_exec_send_nodeinfo(us->node_id)`, FIRST included.
    pub fn own(vq: &Votequorum) -> VotequorumMessage {
        let us = vq.us();
        nodeinfo(vq.nodeid(), us.votes, us.expected_votes, us.flags)
    }

    #[derive(Default)]
    pub struct Cluster {
        pub nodes: BTreeMap<u32, Votequorum>,
        seq: u64,
    }

    impl Cluster {
        /// A node starts (or restarts) with this configuration.
        pub fn start(&mut self, id: u32, config: VoteConfig) {
            self.nodes.insert(id, Votequorum::new(config, id));
        }

        pub fn node(&self, id: u32) -> &Votequorum {
            &self.nodes[&id]
        }

        /// A ring of these members, synced: each member's sync_init, then its NODEINFO
        /// and the qdevice's, delivered to every member in this order, then activation.
        pub fn ring(&mut self, members: &[u32]) -> RingId {
            self.seq += 4;
            let ring = RingId {
                rep: members[0],
                seq: self.seq,
            };
            for m in members {
                self.nodes.get_mut(m).unwrap().sync_init(members, ring);
            }
            let sent: Vec<(u32, VotequorumMessage)> = members
                .iter()
                .flat_map(|m| [(*m, own(&self.nodes[m])), (*m, nodeinfo(0, 0, 0, 0))])
                .collect();
            for (from, message) in &sent {
                for m in members {
                    self.nodes.get_mut(m).unwrap().deliver(*from, message);
                }
            }
            for m in members {
                self.nodes.get_mut(m).unwrap().sync_activate();
            }
            ring
        }

        /// (quorate, quorum, total votes, expected votes, highest expected) on `id`.
        pub fn numbers(&self, id: u32) -> (bool, u32, u32, u32, u32) {
            let vq = self.node(id);
            let (highest, total, _) = vq.member_totals(vq.us().flags);
            (vq.quorate, vq.quorum, total, vq.expected_votes(), highest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{config, nodeinfo, Cluster};
    use super::*;

    fn with_votes(votes: &[(u32, u32)], expected_votes: u32) -> VoteConfig {
        VoteConfig {
            provider: true,
            votes: votes.iter().copied().collect(),
            expected_votes,
            two_node: false,
            wait_for_all: false,
        }
    }

    #[test]
    fn majority_of_expected_votes_and_quorum_never_drops() {
        let mut c = Cluster::default();
        for n in 1..=3 {
            c.start(n, config(3, false));
        }
        c.ring(&[1]);
        assert_eq!(c.numbers(1), (false, 2, 1, 3, 3));
        c.ring(&[1, 2, 3]);
        for n in 1..=3 {
            assert_eq!(c.numbers(n), (true, 2, 3, 3, 3), "node {n}");
        }
        c.ring(&[1, 2]);
        assert!(c.node(1).quorate);
        assert_eq!(
            c.node(1).nodes[&3].state,
            NODESTATE_DEAD,
            "dead, still listed"
        );
        c.ring(&[1]);
        assert!(!c.node(1).quorate);
        assert_eq!(c.node(1).view.members, vec![1]);
        // More votes than expected raise expected_votes and the quorum with them.
        let mut c = Cluster::default();
        for n in 1..=5 {
            c.start(n, config(2, false));
        }
        c.ring(&[1, 2, 3, 4, 5]);
        assert_eq!(c.numbers(1), (true, 3, 5, 5, 5));
        c.ring(&[1, 2]);
        assert_eq!(c.numbers(1), (false, 3, 2, 5, 5));
    }

    #[test]
    fn two_node_waits_for_both_once() {
        let mut c = Cluster::default();
        c.start(1, config(2, true));
        c.start(2, config(2, true));
        c.ring(&[1]);
        assert_eq!(
            (c.node(1).quorate, c.node(1).quorum),
            (false, 1),
            "wait_for_all"
        );
        assert!(c.node(1).waiting_for_all);
        c.ring(&[1, 2]);
        assert!(c.node(1).quorate && !c.node(1).waiting_for_all);
        c.ring(&[1]);
        assert!(c.node(1).quorate, "two_node keeps quorum with one node");
    }

    /// Node 1 has two votes in the nodelist. Nodes whose nodelist says so and a node whose
    /// nodelist does not agree on 4 votes: the votes come from node 1's NODEINFO.
    #[test]
    fn each_node_counts_with_the_votes_its_nodeinfo_says() {
        let mut c = Cluster::default();
        c.start(1, with_votes(&[(1, 2), (2, 1), (3, 1)], 4));
        c.start(2, with_votes(&[(1, 2), (2, 1), (3, 1)], 4));
        c.start(3, with_votes(&[(1, 1), (2, 1), (3, 1)], 3));
        c.ring(&[1, 2, 3]);
        for n in 1..=3 {
            let vq = c.node(n);
            assert_eq!(c.numbers(n), (true, 3, 4, 4, 4), "node {n}");
            let votes: Vec<u32> = vq.nodes.values().map(|v| v.votes).collect();
            assert_eq!(votes, vec![2, 1, 1], "node {n}");
        }
        // Node 1 leaves: two votes of four are not quorate, node 1 is dead with its votes.
        c.ring(&[2, 3]);
        for n in 2..=3 {
            assert_eq!(c.numbers(n), (false, 3, 2, 4, 4), "node {n}");
            assert_eq!(c.node(n).nodes[&1].state, NODESTATE_DEAD);
            assert_eq!(c.node(n).nodes[&1].votes, 2);
        }
        // Without node 3 instead: 3 votes of 4 are quorate.
        c.ring(&[1, 2, 3]);
        c.ring(&[1, 2]);
        assert_eq!(c.numbers(2), (true, 3, 3, 4, 4));
    }

    /// A quorate node's expected votes are taken; a joining inquorate node adopts them.
    #[test]
    fn expected_votes_of_a_quorate_peer_raise_ours() {
        let mut c = Cluster::default();
        for n in 1..=3 {
            c.start(n, config(3, false));
        }
        c.nodes.insert(1, Votequorum::new(with_votes(&[], 5), 1));
        c.ring(&[1, 2, 3]);
        // Node 1's NODEINFO was not quorate: the others took their own expected votes.
        assert_eq!(c.numbers(2), (true, 2, 3, 3, 3));
        assert_eq!(c.numbers(1), (true, 3, 3, 5, 5));
        c.ring(&[1, 2, 3]);
        // Now it is: its 5 are node 1's expected votes everywhere, the highest.
        assert_eq!(c.numbers(2), (true, 3, 3, 3, 5));
        assert_eq!(c.node(2).nodes[&1].expected_votes, 5);
        // A node configured for 2 joins: while inquorate it takes each quorate node's
        // expected votes as its own (5, then 3 and 3), raised to the total (4); the
        // highest is node 1's 5 and makes the quorum.
        c.start(4, config(2, false));
        c.ring(&[4]);
        assert_eq!(c.numbers(4), (false, 2, 1, 2, 2));
        c.ring(&[1, 2, 3, 4]);
        assert_eq!(c.numbers(4), (true, 3, 4, 4, 5));
        assert_eq!(c.numbers(2), (true, 3, 4, 4, 5));
    }

    /// wait_for_all: a node that restarts into a ring of quorate nodes not waiting is
    /// released by their NODEINFO, though not every expected vote is there.
    #[test]
    fn wait_for_all_is_released_by_a_quorate_peer() {
        let wfa = VoteConfig {
            wait_for_all: true,
            ..config(4, false)
        };
        let mut c = Cluster::default();
        for n in 1..=4 {
            c.start(n, wfa.clone());
        }
        c.ring(&[1, 2, 3]);
        assert!(!c.node(1).quorate, "3 of 4 expected: still waiting for all");
        assert!(c.node(1).us().flags & NODE_FLAGS_WFASTATUS != 0);
        c.ring(&[1, 2, 3, 4]);
        assert!(c.node(1).quorate && !c.node(1).waiting_for_all);
        c.ring(&[1, 2, 3]);
        assert!(c.node(1).quorate, "3 of 4 once all were seen");
        // Node 3 restarts, waiting for all; alone it is not quorate.
        c.start(3, wfa.clone());
        c.ring(&[3]);
        assert!(!c.node(3).quorate && c.node(3).waiting_for_all);
        c.ring(&[1, 2, 3]);
        assert!(c.node(3).quorate, "released by nodes 1 and 2");
        assert!(!c.node(3).waiting_for_all);
        assert_eq!(c.numbers(3), (true, 3, 3, 4, 4));
        // Without a quorate peer the wait goes on.
        let mut c = Cluster::default();
        for n in 1..=4 {
            c.start(n, wfa.clone());
        }
        c.ring(&[1, 2, 3]);
        assert!(c
            .nodes
            .values()
            .take(3)
            .all(|v| !v.quorate && v.waiting_for_all));
    }

    #[test]
    fn qdevice_reconfigure_and_list_order() {
        let mut vq = Votequorum::new(config(3, false), 2);
        let ring = RingId { rep: 1, seq: 8 };
        vq.sync_init(&[1, 2, 3], ring);
        // Known sender, all-zero qdevice entry: nothing; unknown sender: ignored.
        assert!(!vq.deliver(1, &nodeinfo(0, 0, 0, 0)));
        assert_eq!(vq.qdevice_votes, 0);
        for n in [1, 3] {
            vq.deliver(n, &nodeinfo(n, 1, 3, 0));
        }
        vq.deliver(2, &testing::own(&vq));
        vq.sync_activate();
        assert_eq!((vq.quorate, vq.quorum), (true, 2));
        // cluster_members_list: 2 first, 1 before it, 3 before the last (node_add_ordered).
        let order: Vec<u32> = vq.listed().map(|(id, _)| id).collect();
        assert_eq!(order, vec![1, 3, 2]);
        // A quorate peer's qdevice votes count in get_total_votes (they raise expected).
        vq.deliver(1, &nodeinfo(1, 1, 3, NODE_FLAGS_QUORATE));
        vq.deliver(1, &nodeinfo(0, 2, 0, 0));
        assert_eq!((vq.qdevice_votes, vq.expected_votes()), (2, 5));
        // RECONFIGURE: expected votes for every member, quorum allowed down; a node's votes.
        let reconf = |param, nodeid, value| VotequorumMessage::Reconfigure {
            header: totem_wire::exec::ExecHeader::new(
                totem_wire::exec::ServiceId::Votequorum,
                1,
                32,
            ),
            nodeid,
            value,
            param,
        };
        vq.deliver(1, &nodeinfo(0, 0, 0, 0));
        vq.qdevice_votes = 0;
        vq.deliver(1, &reconf(ReconfigureParam::ExpectedVotes, 0, 3));
        assert_eq!((vq.expected_votes(), vq.quorum), (3, 2));
        vq.deliver(1, &reconf(ReconfigureParam::NodeVotes, 3, 4));
        assert_eq!(vq.nodes[&3].votes, 4);
        assert_eq!(vq.expected_votes(), 6, "raised to the total");
        assert_eq!(vq.quorum, 4);
        // A LEAVING node: its state, and expected votes set to the members' count.
        vq.deliver(
            3,
            &nodeinfo(3, 4, 6, NODE_FLAGS_LEAVING | NODE_FLAGS_QUORATE),
        );
        assert_eq!(vq.nodes[&3].state, NODESTATE_LEAVING);
        assert_eq!((vq.nodes[&1].expected_votes, vq.quorum), (2, 2));
        assert!(vq.quorate);
    }

    #[test]
    fn quorate_changes_outside_sync_tell_the_quorum_service() {
        let mut c = Cluster::default();
        for n in 1..=3 {
            c.start(n, config(3, false));
        }
        c.ring(&[1, 2]);
        let vq = c.nodes.get_mut(&1).unwrap();
        assert!(vq.quorate && vq.view.quorate);
        // corosync-quorumtool -e 5 on node 2: quorum 3, lost at once.
        let reconf = VotequorumMessage::Reconfigure {
            header: totem_wire::exec::ExecHeader::new(
                totem_wire::exec::ServiceId::Votequorum,
                1,
                32,
            ),
            nodeid: 0,
            value: 5,
            param: ReconfigureParam::ExpectedVotes,
        };
        assert!(vq.deliver(2, &reconf));
        assert!(!vq.quorate && !vq.view.quorate);
        assert_eq!(vq.view.members, vec![1, 2]);
        // During a sync the service waits for the activation.
        vq.sync_init(&[1, 2], RingId { rep: 1, seq: 100 });
        let reconf = VotequorumMessage::Reconfigure {
            header: totem_wire::exec::ExecHeader::new(
                totem_wire::exec::ServiceId::Votequorum,
                1,
                32,
            ),
            nodeid: 0,
            value: 2,
            param: ReconfigureParam::ExpectedVotes,
        };
        assert!(!vq.deliver(2, &reconf));
        assert!(vq.quorate && !vq.view.quorate);
        vq.sync_activate();
        assert!(vq.view.quorate);
        assert_eq!(vq.own_nodeinfo().flags, NodeInfoFlags(NODE_FLAGS_QUORATE));
    }
}
