//! Sync v2 (`exec/sync.c`, spec §4.3): after every regular configuration each member
//! multicasts the services it has a sync engine for, then the services synchronise one at a
//! time, each round closed by a BARRIER from every member. Barriers carry no service id: the
//! k-th round belongs to the k-th entry of the merged, sorted list.

use std::collections::BTreeSet;

use totem_wire::srp::RingId;

/// The services this node synchronises, as corosync 3.1.7 with votequorum does: CMAP,
/// CPG, QUORUM, VOTEQUORUM.
pub(crate) const LOCAL_SERVICES: [i32; 4] = [0, 2, 3, 5];

/// What the sync layer asks of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncAction {
    /// Multicast SERVICE_BUILD for this ring with these services.
    SendServiceBuild(RingId, Vec<i32>),
    /// Run this service's sync_process (send its messages), then multicast BARRIER.
    Process(i32, RingId),
    /// This service's round is complete everywhere: activate it.
    Activate(i32),
    /// Every round completed ("Completed service synchronization"): `totempg_trans_ack`.
    Completed(RingId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    ServiceBuild,
    Process,
}

/// One node's sync state.
#[derive(Debug)]
pub(crate) struct Sync {
    phase: Phase,
    ring_id: RingId,
    members: Vec<u32>,
    services: Vec<i32>,
    index: usize,
    received: BTreeSet<u32>,
}

impl Sync {
    pub(crate) fn new() -> Sync {
        Sync {
            phase: Phase::Idle,
            ring_id: RingId::default(),
            members: Vec::new(),
            services: Vec::new(),
            index: 0,
            received: BTreeSet::new(),
        }
    }

    /// Is a sync in progress?
    pub(crate) fn in_progress(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// `sync_abort`: every confchg ends a sync in progress; barriers of the old ring are
    /// ignored from then on (its ring id is forgotten).
    pub(crate) fn abort(&mut self) -> bool {
        let was = self.in_progress();
        self.phase = Phase::Idle;
        self.ring_id = RingId::default();
        was
    }

    /// `sync_start` on a regular configuration.
    pub(crate) fn start(&mut self, ring_id: RingId, members: &[u32]) -> Vec<SyncAction> {
        self.phase = Phase::ServiceBuild;
        self.ring_id = ring_id;
        self.members = members.to_vec();
        self.services = LOCAL_SERVICES.to_vec();
        self.index = 0;
        self.received.clear();
        vec![SyncAction::SendServiceBuild(ring_id, self.services.clone())]
    }

    /// `sync_service_build_handler`.
    pub(crate) fn on_service_build(
        &mut self,
        sender: u32,
        ring_id: RingId,
        services: &[i32],
    ) -> Vec<SyncAction> {
        if self.phase != Phase::ServiceBuild || ring_id != self.ring_id {
            return Vec::new();
        }
        for s in services {
            if !self.services.contains(s) {
                // A service we lack becomes a dummy round: we still owe it a barrier.
                self.services.push(*s);
            }
        }
        self.services.sort_unstable();
        self.received.insert(sender);
        if self.members.iter().all(|m| self.received.contains(m)) {
            self.enter_process()
        } else {
            Vec::new()
        }
    }

    fn enter_process(&mut self) -> Vec<SyncAction> {
        self.phase = Phase::Process;
        self.received.clear();
        match self.services.get(self.index) {
            Some(service) => vec![SyncAction::Process(*service, self.ring_id)],
            None => {
                self.phase = Phase::Idle;
                vec![SyncAction::Completed(self.ring_id)]
            }
        }
    }

    /// `sync_barrier_handler`.
    pub(crate) fn on_barrier(&mut self, sender: u32, ring_id: RingId) -> Vec<SyncAction> {
        if self.phase != Phase::Process || ring_id != self.ring_id {
            return Vec::new();
        }
        self.received.insert(sender);
        if !self.members.iter().all(|m| self.received.contains(m)) {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if let Some(service) = self.services.get(self.index) {
            actions.push(SyncAction::Activate(*service));
        }
        self.index += 1;
        actions.extend(self.enter_process());
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: RingId = RingId { rep: 1, seq: 9 };

    #[test]
    fn rounds_follow_the_merged_service_list() {
        let mut s = Sync::new();
        assert_eq!(
            s.start(RING, &[1, 2]),
            vec![SyncAction::SendServiceBuild(RING, vec![0, 2, 3, 5])]
        );
        assert!(s.on_service_build(1, RING, &[0, 2, 3, 5]).is_empty());
        // Node 2 has a service we lack (4): it becomes a round of its own.
        assert_eq!(
            s.on_service_build(2, RING, &[0, 2, 4]),
            vec![SyncAction::Process(0, RING)]
        );
        assert!(s.on_barrier(1, RING).is_empty());
        assert_eq!(
            s.on_barrier(2, RING),
            vec![SyncAction::Activate(0), SyncAction::Process(2, RING)]
        );
        for service in [2, 3, 4] {
            s.on_barrier(1, RING);
            let next = s.on_barrier(2, RING);
            assert_eq!(next[0], SyncAction::Activate(service));
        }
        s.on_barrier(1, RING);
        assert_eq!(
            s.on_barrier(2, RING),
            vec![SyncAction::Activate(5), SyncAction::Completed(RING)]
        );
        assert!(!s.in_progress());
    }

    #[test]
    fn messages_of_another_ring_are_ignored_and_abort_forgets_the_ring() {
        let mut s = Sync::new();
        s.start(RING, &[1]);
        assert!(s
            .on_service_build(1, RingId { rep: 1, seq: 5 }, &[0])
            .is_empty());
        assert!(s.abort());
        assert!(s.on_service_build(1, RING, &[0]).is_empty());
    }
}
