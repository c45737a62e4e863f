//! What the node reports, logged in corosync 3.1.7's words at corosync's places:
//!
//! * `[QUORUM] Sync members[N]: ...` / `Sync joined` / `Sync left` — `vsf_quorum.c::
//!   quorum_sync_init`, when sync starts on a new ring (before the TOTEM line, as in
//!   corosync's log);
//! * `[TOTEM ] A new membership (R) was formed. Members joined: ... left: ...` and
//!   `Failed to receive the leave message. failed: ...` — `totemsrp.c::
//!   memb_state_operational_enter`;
//! * `[TOTEM ] A processor failed, forming new configuration: token timed out (Xms), waiting
//!   Yms for consensus.` — `timer_function_orf_token_timeout`;
//! * `[TOTEM ] Token has not been received in N ms ` — `timer_function_orf_token_warning`;
//! * `[QUORUM] This node is within the primary component ...` and `Members[N]: ...` —
//!   `vsf_quorum.c::quorum_api_set_quorum`;
//! * `[MAIN  ] Completed service synchronization, ready to provide service.` —
//!   `main.c::corosync_sync_completed`.
//!
//! The engine has no token-warning event, so the warning is kept here: armed while the ring
//! is not gathering, re-armed by every ORF token the engine is given, firing every
//! `token_warning` ms without one, as corosync's timer does. Quorum is computed as
//! votequorum computes it ([`totem_votequorum::Votequorum`], fed the same events and NODEINFO
//! messages as the quorum services) and only logged: CPG does not wait for quorum in
//! corosync either.

use totem_cpg::{NodeEvent, VotequorumMessage};
use totem_srp::{ConfigurationKind, Duration, Instant, MembState};

use crate::logf;
use totem_votequorum::{VoteConfig, Votequorum};

/// The numbers the messages quote.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// `token` after the coefficient.
    pub token_ms: u32,
    /// `consensus`.
    pub consensus_ms: u32,
    /// The token warning interval (zero: disabled).
    pub token_warning: Duration,
    /// This node.
    pub nodeid: u32,
    /// votequorum's settings.
    pub vote: VoteConfig,
}

/// The log side of the node's events.
#[derive(Debug)]
pub struct Reporter {
    config: ReportConfig,
    state: MembState,
    trans_members: Vec<u32>,
    trans_left: Vec<u32>,
    sync_members: Vec<u32>,
    leaves_received: Vec<u32>,
    vq: Votequorum,
    quorate: bool,
    last_token: Instant,
    warning_at: Option<Instant>,
}

/// `log_view_list`: `Sync members[3]: 1 2 3`.
fn view(list: &[u32]) -> String {
    let ids: String = list.iter().map(|n| format!(" {n}")).collect();
    format!("[{}]:{ids}", list.len())
}

fn ids(list: &[u32]) -> String {
    list.iter().map(|n| format!(" {n}")).collect()
}

impl Reporter {
    /// A reporter for a node that starts now (gathering).
    pub fn new(config: ReportConfig, now: Instant) -> Reporter {
        let vq = Votequorum::new(config.vote.clone(), config.nodeid);
        Reporter {
            config,
            state: MembState::Gather,
            trans_members: Vec::new(),
            trans_left: Vec::new(),
            sync_members: Vec::new(),
            leaves_received: Vec::new(),
            vq,
            quorate: false,
            last_token: now,
            warning_at: None,
        }
    }

    /// An ORF token reached the engine.
    pub fn token_received(&mut self, now: Instant) {
        self.last_token = now;
        if self.state != MembState::Gather {
            self.arm_warning(now);
        }
    }

    /// A LEAVE (a JOIN with nodeid 0) from `nodeid` reached the engine
    /// ("Received LEAVE message from N").
    pub fn leave_received(&mut self, nodeid: u32) {
        logf!(Totem, Debug, "Received LEAVE message from {nodeid}");
        if !self.leaves_received.contains(&nodeid) {
            self.leaves_received.push(nodeid);
        }
    }

    fn arm_warning(&mut self, now: Instant) {
        self.warning_at =
            (self.config.token_warning > Duration::ZERO).then(|| now + self.config.token_warning);
    }

    /// The token warning's deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.warning_at
    }

    /// Time passed: the token warning, if due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.warning_at.is_some_and(|at| at <= now) {
            // corosync's message ends with a space.
            logf!(
                Totem,
                Notice,
                "Token has not been received in {} ms ",
                (now - self.last_token).total_millis()
            );
            self.arm_warning(now);
        }
    }

    /// A votequorum message the node delivered: a change of quorate outside sync is
    /// logged as `quorum_api_set_quorum` logs it.
    pub fn votequorum(&mut self, from: u32, message: &VotequorumMessage) {
        if self.vq.deliver(from, message) {
            self.set_quorum();
        }
    }

    /// One event of the node.
    pub fn event(&mut self, now: Instant, event: &NodeEvent) {
        self.vq.node_event(event);
        match event {
            NodeEvent::StateChanged { from, to, reason } => {
                self.state_changed(now, *from, *to, reason)
            }
            NodeEvent::Configuration {
                kind: ConfigurationKind::Transitional,
                members,
                left,
                ..
            } => {
                self.trans_members = members.clone();
                self.trans_left = left.clone();
            }
            NodeEvent::Configuration {
                kind: ConfigurationKind::Regular,
                members,
                joined,
                ring_id,
                ..
            } => {
                self.sync_init(members);
                let joined = if joined.is_empty() {
                    String::new()
                } else {
                    format!(" joined:{}", ids(joined))
                };
                let left = if self.trans_left.is_empty() {
                    String::new()
                } else {
                    format!(" left:{}", ids(&self.trans_left))
                };
                logf!(
                    Totem,
                    Notice,
                    "A new membership ({ring_id}) was formed. Members{joined}{left}"
                );
                let failed: Vec<u32> = self
                    .trans_left
                    .iter()
                    .copied()
                    .filter(|n| !self.leaves_received.contains(n))
                    .collect();
                if !failed.is_empty() {
                    logf!(
                        Totem,
                        Notice,
                        "Failed to receive the leave message. failed:{}",
                        ids(&failed)
                    );
                }
                self.leaves_received.clear();
                self.trans_left.clear();
            }
            NodeEvent::SyncCompleted(_) => {
                self.set_quorum();
                logf!(
                    Main,
                    Notice,
                    "Completed service synchronization, ready to provide service."
                );
            }
            NodeEvent::StoreRingId(ring) => {
                logf!(
                    Totem,
                    Debug,
                    "Storing new sequence id for ring {:x}",
                    ring.seq
                );
            }
            NodeEvent::Client(_) => {}
        }
    }

    fn state_changed(&mut self, now: Instant, from: MembState, to: MembState, reason: &str) {
        let name = match to {
            MembState::Operational => "OPERATIONAL",
            MembState::Gather => "GATHER",
            MembState::Commit => "COMMIT",
            MembState::Recovery => "RECOVERY",
        };
        logf!(
            Totem,
            Debug,
            "entering {name} state ({}).",
            reason.trim_end_matches('.')
        );
        if from == MembState::Operational
            && to == MembState::Gather
            && reason == "The token was lost in the OPERATIONAL state."
        {
            logf!(
                Totem,
                Notice,
                "A processor failed, forming new configuration: token timed out ({}ms), waiting {}ms for consensus.",
                self.config.token_ms,
                self.config.consensus_ms
            );
        }
        self.state = to;
        match to {
            // memb_state_gather_enter -> cancel_token_timeout cancels the warning too.
            MembState::Gather => self.warning_at = None,
            // memb_state_commit_enter -> reset_token_timeout arms it.
            MembState::Commit => self.arm_warning(now),
            MembState::Operational | MembState::Recovery => {}
        }
    }

    /// `quorum_sync_init`: joined are the new members not in the last sync's members, or
    /// in its left list; left are the last sync's members missing from the transitional
    /// configuration or from the new ring.
    fn sync_init(&mut self, members: &[u32]) {
        let old = std::mem::replace(&mut self.sync_members, members.to_vec());
        let left: Vec<u32> = old
            .iter()
            .copied()
            .filter(|n| !self.trans_members.contains(n) || !members.contains(n))
            .collect();
        let joined: Vec<u32> = members
            .iter()
            .copied()
            .filter(|n| !old.contains(n) || left.contains(n))
            .collect();
        logf!(Quorum, Notice, "Sync members{}", view(members));
        if !joined.is_empty() {
            logf!(Quorum, Notice, "Sync joined{}", view(&joined));
        }
        if !left.is_empty() {
            logf!(Quorum, Notice, "Sync left{}", view(&left));
        }
    }

    /// `quorum_api_set_quorum` as votequorum calls it (when sync activates, or when quorate
    /// changes outside sync).
    fn set_quorum(&mut self) {
        let quorate = self.vq.view.quorate;
        if quorate && !self.quorate {
            logf!(
                Quorum,
                Notice,
                "This node is within the primary component and will provide service."
            );
        } else if !quorate && self.quorate {
            logf!(
                Quorum,
                Notice,
                "This node is within the non-primary component and will NOT provide any services."
            );
        }
        self.quorate = quorate;
        logf!(Quorum, Notice, "Members{}", view(&self.vq.view.members));
    }
}
