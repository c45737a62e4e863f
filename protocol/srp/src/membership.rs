//! Membership sets and the JOIN rules of the Gather phase, as pure functions over a
//! [`Membership`] (`exec/totemsrp.c`: `memb_set_*`, `memb_consensus_*`, `memb_join_process`,
//! `memb_lowest_in_config`, `memb_state_commit_token_create`, `ignore_join_under_operational`).
//! The state machine applies the [`JoinOutcome`] (entering Gather or Commit), so these rules
//! can be tested one by one.

use totem_wire::srp::{CommitMemberEntry, Header, MembCommitToken, MembJoin, MessageType, RingId};

/// `PROCESSOR_COUNT_MAX`.
pub const PROCESSOR_COUNT_MAX: usize = 384;

/// A list of nodeids with set semantics but insertion order kept: corosync sends its lists in
/// insertion order, and JOINs from it must be reproduced byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeList(Vec<u32>);

impl NodeList {
    /// From nodeids, dropping repeats.
    pub fn from_nodes(nodes: &[u32]) -> NodeList {
        let mut list = NodeList::default();
        list.merge(nodes);
        list
    }

    /// The nodeids, in insertion order.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Membership test.
    pub fn contains(&self, node: u32) -> bool {
        self.0.contains(&node)
    }

    /// `memb_set_merge`: adds the nodes not yet present, in order, up to the protocol bound.
    pub fn merge(&mut self, nodes: &[u32]) {
        for n in nodes {
            if !self.0.contains(n) && self.0.len() < PROCESSOR_COUNT_MAX {
                self.0.push(*n);
            }
        }
    }

    /// Adds one node.
    pub fn insert(&mut self, node: u32) {
        self.merge(&[node]);
    }

    /// `memb_set_subtract`: the nodes of `self` not in `other`, in `self`'s order.
    pub fn minus(&self, other: &[u32]) -> NodeList {
        NodeList(
            self.0
                .iter()
                .copied()
                .filter(|n| !other.contains(n))
                .collect(),
        )
    }

    /// `memb_set_equal`: same nodes, any order.
    pub fn set_eq(&self, other: &[u32]) -> bool {
        // corosync compares counts first, then looks every entry of `other` up in `self`.
        self.0.len() == other.len() && other.iter().all(|n| self.0.contains(n))
    }

    /// `memb_set_subset(other, self)`: is every node of `other` in `self`?
    pub fn contains_all(&self, other: &[u32]) -> bool {
        other.len() <= self.0.len() && other.iter().all(|n| self.0.contains(n))
    }

    /// The nodes, ascending (the ring order of a commit token).
    pub fn sorted(&self) -> Vec<u32> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }
}

/// The membership view a node carries through Gather.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// This node.
    pub my_id: u32,
    /// `my_proc_list`: nodes believed live.
    pub proc_list: NodeList,
    /// `my_failed_list`: nodes given up on.
    pub failed_list: NodeList,
    /// `my_memb_list`: the members of the current (or last) ring.
    pub memb_list: NodeList,
    /// `consensus_list`: nodes whose JOIN matched our lists.
    pub consensus: NodeList,
    /// `token_ring_id_seq`: the highest ring seq seen in JOINs and our own.
    pub token_ring_id_seq: u64,
    /// `failed_to_recv`: we gave ourselves up after "FAILED TO RECEIVE".
    pub failed_to_recv: bool,
}

/// What a JOIN asks of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Consensus is complete and we have the lowest nodeid: this commit token is to be
    /// sent and Commit entered (`memb_state_commit_enter`).
    CreateCommitToken(MembCommitToken),
    /// Our lists grew: (re-)enter Gather, which sends a JOIN
    /// (`TOTEMSRP_GSFROM_MERGE_DURING_JOIN`).
    EnterGather,
    /// Nothing changes in Gather; from Operational, Gather is entered all the same
    /// (`TOTEMSRP_GSFROM_JOIN_DURING_OPERATIONAL_STATE`).
    NoChange,
}

impl Membership {
    /// A node that knows only itself.
    pub fn new(my_id: u32, ring_seq: u64) -> Membership {
        Membership {
            my_id,
            proc_list: NodeList::from_nodes(&[my_id]),
            failed_list: NodeList::default(),
            memb_list: NodeList::from_nodes(&[my_id]),
            consensus: NodeList::default(),
            token_ring_id_seq: ring_seq,
            failed_to_recv: false,
        }
    }

    /// proc − failed: the nodes the next ring would have.
    pub fn candidates(&self) -> NodeList {
        self.proc_list.minus(self.failed_list.as_slice())
    }

    /// `memb_consensus_agreed`: every candidate's JOIN matched ours.
    pub fn consensus_agreed(&self) -> bool {
        self.candidates()
            .as_slice()
            .iter()
            .all(|n| self.consensus.contains(*n))
    }

    /// `memb_lowest_in_config`: do we have the lowest nodeid among the candidates?
    pub fn lowest_in_config(&self) -> bool {
        self.candidates().as_slice().iter().min() == Some(&self.my_id)
    }

    /// `memb_consensus_notset` then the consensus-timeout rule
    /// (`memb_state_consensus_timeout_expired`): nodes that did not agree are failed.
    pub fn fail_non_agreeing(&mut self) {
        let silent: Vec<u32> = self
            .proc_list
            .as_slice()
            .iter()
            .copied()
            .filter(|n| !self.consensus.contains(*n))
            .collect();
        self.failed_list.merge(&silent);
    }

    /// `memb_state_gather_enter`'s bookkeeping: self in the proc list, consensus reset to
    /// just ourselves.
    pub fn enter_gather(&mut self) {
        self.proc_list.insert(self.my_id);
        self.consensus = NodeList::from_nodes(&[self.my_id]);
    }

    /// The JOIN this node multicasts (`memb_join_message_send`).
    pub fn join_message(&self, ring_seq: u64) -> MembJoin {
        MembJoin {
            header: Header::new(MessageType::MembJoin, self.my_id),
            system_from: self.my_id,
            ring_seq,
            proc_list: self.proc_list.as_slice().to_vec(),
            failed_list: self.failed_list.as_slice().to_vec(),
        }
    }

    /// The LEAVE sent on a clean shutdown (`memb_leave_message_send`): header nodeid 0, self
    /// moved from the proc list to the end of the failed list.
    pub fn leave_message(&self, ring_seq: u64) -> MembJoin {
        let mut failed = self.failed_list.clone();
        failed.insert(self.my_id);
        MembJoin {
            header: Header::new(MessageType::MembJoin, 0),
            system_from: self.my_id,
            ring_seq,
            proc_list: self.proc_list.minus(&[self.my_id]).as_slice().to_vec(),
            failed_list: failed.as_slice().to_vec(),
        }
    }

    /// `memb_join_process` (spec §2.6, "JOIN processing"), for a JOIN not discarded by the
    /// caller (flushing, or `ignore_join_under_operational`).
    pub fn process_join(&mut self, join: &MembJoin) -> JoinOutcome {
        // Every JOIN raises the ring seq the next commit token is built from.
        self.token_ring_id_seq = self.token_ring_id_seq.max(join.ring_seq);
        let sender = join.system_from;
        if self.proc_list.set_eq(&join.proc_list) && self.failed_list.set_eq(&join.failed_list) {
            if !join.is_leave() {
                self.consensus.insert(sender);
            }
            if self.consensus_agreed() && self.failed_to_recv {
                // We were failed by the others: form a ring of our own.
                self.failed_to_recv = false;
                self.proc_list = NodeList::from_nodes(&[self.my_id]);
                self.failed_list = NodeList::default();
                return JoinOutcome::CreateCommitToken(self.commit_token());
            }
            if self.consensus_agreed() && self.lowest_in_config() {
                return JoinOutcome::CreateCommitToken(self.commit_token());
            }
            return JoinOutcome::NoChange;
        }
        if self.proc_list.contains_all(&join.proc_list)
            && self.failed_list.contains_all(&join.failed_list)
        {
            return JoinOutcome::NoChange;
        }
        if self.failed_list.contains(sender) {
            return JoinOutcome::NoChange;
        }
        self.proc_list.merge(&join.proc_list);
        if join.failed_list.contains(&self.my_id) {
            // It failed us: we fail it back.
            self.failed_list.insert(sender);
        } else if self.memb_list.contains(sender) {
            // A member of our ring: adopt its failures, except (when it already is failed,
            // which the branch above excludes) those of our ring.
            if !self.failed_list.contains(sender) {
                self.failed_list.merge(&join.failed_list);
            } else {
                let outside =
                    NodeList::from_nodes(&join.failed_list).minus(self.memb_list.as_slice());
                self.failed_list.merge(outside.as_slice());
            }
        }
        JoinOutcome::EnterGather
    }

    /// `memb_state_commit_token_create`: the new ring is ours, its seq the highest seen + 4,
    /// members ascending, every entry empty.
    pub fn commit_token(&self) -> MembCommitToken {
        let members = self.candidates().sorted();
        MembCommitToken {
            header: Header::new(MessageType::MembCommitToken, self.my_id),
            token_seq: 0,
            ring_id: RingId {
                rep: self.my_id,
                seq: self.token_ring_id_seq + 4,
            },
            retrans_flg: 0,
            memb_index: 0,
            memb_list: vec![CommitMemberEntry::default(); members.len()],
            addr: members,
        }
    }
}

/// `ignore_join_under_operational`: in Operational a JOIN is ignored when it fails us, or
/// when it comes from a member of our ring with an older ring seq (a node that restarted
/// without its ring seq, until our token times out).
pub fn ignore_join_under_operational(m: &Membership, join: &MembJoin, my_ring_seq: u64) -> bool {
    if join.failed_list.contains(&m.my_id) {
        return true;
    }
    m.memb_list.contains(join.system_from) && join.ring_seq < my_ring_seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(from: u32, ring_seq: u64, proc_list: &[u32], failed_list: &[u32]) -> MembJoin {
        MembJoin {
            header: Header::new(MessageType::MembJoin, from),
            system_from: from,
            ring_seq,
            proc_list: proc_list.to_vec(),
            failed_list: failed_list.to_vec(),
        }
    }

    // Reference: udpu-01-formation: node 1 (ring 1.5) and node 2 (ring 2.5) gather; node 1,
    // the lowest, creates ring 1.9 with members [1, 2].
    #[test]
    fn two_nodes_agree_and_the_lowest_creates_the_commit_token() {
        let mut one = Membership::new(1, 5);
        one.enter_gather();
        assert_eq!(
            one.process_join(&join(2, 5, &[2], &[])),
            JoinOutcome::EnterGather
        );
        assert_eq!(one.proc_list.as_slice(), &[1, 2]);
        // Node 2 now sends proc [2, 1]: equal as a set.
        let outcome = one.process_join(&join(2, 5, &[2, 1], &[]));
        let JoinOutcome::CreateCommitToken(token) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(token.ring_id, RingId { rep: 1, seq: 9 });
        assert_eq!(token.addr, vec![1, 2]);
        assert_eq!(token.memb_list.len(), 2);

        let mut two = Membership::new(2, 5);
        two.enter_gather();
        two.process_join(&join(1, 5, &[1], &[]));
        assert_eq!(
            two.process_join(&join(1, 5, &[1, 2], &[])),
            JoinOutcome::NoChange,
            "2 is not the lowest"
        );
        assert!(two.consensus_agreed());
    }

    #[test]
    fn a_join_that_fails_us_is_failed_back() {
        let mut m = Membership::new(1, 9);
        m.enter_gather();
        assert_eq!(
            m.process_join(&join(3, 9, &[2, 3], &[1])),
            JoinOutcome::EnterGather
        );
        assert!(m.failed_list.contains(3));
        assert_eq!(m.candidates().as_slice(), &[1, 2]);
    }

    #[test]
    fn a_ring_member_passes_its_failures_on() {
        let mut m = Membership::new(1, 9);
        m.memb_list = NodeList::from_nodes(&[1, 2, 3]);
        m.proc_list = NodeList::from_nodes(&[1, 2, 3]);
        m.enter_gather();
        assert_eq!(
            m.process_join(&join(2, 9, &[1, 2, 3], &[3])),
            JoinOutcome::EnterGather
        );
        assert_eq!(m.failed_list.as_slice(), &[3]);
        // From a stranger the same failure list is not adopted.
        let mut n = Membership::new(1, 9);
        n.enter_gather();
        n.process_join(&join(4, 9, &[4, 3], &[3]));
        assert!(n.failed_list.is_empty());
    }

    #[test]
    fn subsets_and_failed_senders_change_nothing() {
        let mut m = Membership::new(1, 9);
        m.proc_list = NodeList::from_nodes(&[1, 2, 3]);
        m.failed_list = NodeList::from_nodes(&[3]);
        m.enter_gather();
        assert_eq!(
            m.process_join(&join(2, 9, &[1, 2], &[])),
            JoinOutcome::NoChange
        );
        assert_eq!(
            m.process_join(&join(3, 9, &[3, 4], &[])),
            JoinOutcome::NoChange
        );
        assert!(!m.proc_list.contains(4));
    }

    #[test]
    fn a_leave_does_not_count_as_agreement() {
        let mut m = Membership::new(1, 9);
        m.memb_list = NodeList::from_nodes(&[1, 2]);
        m.proc_list = NodeList::from_nodes(&[1, 2]);
        m.enter_gather();
        let mut leave = join(2, 9, &[1], &[2]);
        leave.header.nodeid = 0;
        assert!(leave.is_leave());
        // Not equal to our lists: merged, 2's self-failure adopted (it is a ring member).
        assert_eq!(m.process_join(&leave), JoinOutcome::EnterGather);
        assert_eq!(m.candidates().as_slice(), &[1]);
        m.enter_gather();
        // Seen again, the LEAVE changes nothing and votes for nothing.
        assert_eq!(m.process_join(&leave), JoinOutcome::NoChange);
        assert!(!m.consensus.contains(2));
        // Our own JOIN comes back to us (udpu sends to every listed node, us included): our
        // vote is the only one needed now.
        let own = m.join_message(9);
        let outcome = m.process_join(&own);
        assert!(matches!(outcome, JoinOutcome::CreateCommitToken(ref t) if t.addr == vec![1]));
    }

    #[test]
    fn the_next_ring_seq_comes_from_the_highest_seen() {
        let mut m = Membership::new(1, 5);
        m.enter_gather();
        m.process_join(&join(2, 0x20, &[2], &[]));
        assert_eq!(m.commit_token().ring_id.seq, 0x24);
    }

    #[test]
    fn consensus_timeout_fails_the_silent() {
        let mut m = Membership::new(1, 9);
        m.proc_list = NodeList::from_nodes(&[1, 2, 3]);
        m.enter_gather();
        m.consensus.insert(2);
        m.fail_non_agreeing();
        assert_eq!(m.failed_list.as_slice(), &[3]);
        assert!(m.consensus_agreed());
    }

    #[test]
    fn operational_ignores_stale_or_hostile_joins() {
        let mut m = Membership::new(1, 9);
        m.memb_list = NodeList::from_nodes(&[1, 2]);
        assert!(ignore_join_under_operational(&m, &join(2, 5, &[2], &[]), 9));
        assert!(!ignore_join_under_operational(
            &m,
            &join(2, 9, &[2], &[]),
            9
        ));
        assert!(ignore_join_under_operational(
            &m,
            &join(3, 20, &[3], &[1]),
            9
        ));
        assert!(!ignore_join_under_operational(
            &m,
            &join(3, 1, &[3], &[]),
            9
        ));
    }

    #[test]
    fn the_leave_message_matches_the_captured_one() {
        // udpu-05: "JOIN nodeid=0 from=3 ring_seq=d proc=[1, 2] failed=[3]".
        let mut m = Membership::new(3, 0xd);
        m.proc_list = NodeList::from_nodes(&[1, 2, 3]);
        let leave = m.leave_message(0xd);
        assert_eq!((leave.header.nodeid, leave.system_from), (0, 3));
        assert_eq!((leave.proc_list, leave.failed_list), (vec![1, 2], vec![3]));
        m.proc_list = NodeList::from_nodes(&[3, 1, 2]);
        let bytes = totem_wire::srp::Message::MembJoin(m.leave_message(0xd)).to_bytes();
        assert_eq!(bytes.len(), 45);
    }
}
