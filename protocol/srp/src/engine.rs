//! The Totem single-ring state machine (`exec/totemsrp.c`), sans-IO.
//!
//! # Call protocol (quinn-proto's shape)
//!
//! * Inputs: [`Srp::handle_datagram`] with the bytes of every totemsrp message that arrives
//!   (the node's own multicasts included: udpu sends them to every listed node, itself too),
//!   [`Srp::handle_timeout`] when the time from [`Srp::poll_timeout`] has come, and
//!   [`Srp::submit`] for application messages (totempg packets).
//! * After any input, drain [`Srp::poll_transmit`] (datagrams: a unicast to the token target
//!   or a multicast to every listed node) and [`Srp::poll_event`] (deliveries in agreed order,
//!   configuration changes, ring ids to persist), then ask [`Srp::poll_timeout`] again.
//!
//! Function and field names follow corosync's so that each rule can be read beside its
//! source. Not implemented yet: the heartbeat (`heartbeat_failures_allowed`, off by
//! default) and big-endian senders' MCAST payload conversion, which totemsrp leaves to the
//! layers above anyway.

use std::collections::VecDeque;

use totem_wire::srp::{
    assign_sequence, Encapsulation, Header, Mcast, MembCommitToken, MembJoin, MembMergeDetect,
    Message, MessageType, OrfToken, RingId, RtrItem, TokenHoldCancel, RETRANSMIT_ENTRIES_MAX,
};

use crate::config::SrpConfig;
use crate::membership::{ignore_join_under_operational, JoinOutcome, Membership, NodeList};
use crate::seq::{seq_lt, seq_lte};
use crate::sort_queue::{SortQueue, QUEUE_RTR_ITEMS_SIZE_MAX};
use crate::time::{Duration, Instant};
use crate::timer::{Timer, TimerTable};

/// `RETRANS_MESSAGE_QUEUE_SIZE_MAX`.
const RETRANS_MESSAGE_QUEUE_SIZE_MAX: usize = 16384;
/// `MESSAGE_SIZE_MAX`: 1 MiB; the new-message queues hold `4 * MESSAGE_SIZE_MAX / net_mtu`.
const MESSAGE_SIZE_MAX: usize = 1 << 20;

/// `enum memb_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembState {
    /// Ordering messages on an installed ring.
    Operational,
    /// Agreeing on the next membership with JOINs.
    Gather,
    /// The commit token's first rotation.
    Commit,
    /// Re-sending the old ring's messages before installing the new ring.
    Recovery,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// One node (the token target): `totemnet_token_send`.
    Node(u32),
    /// Every node of the nodelist, this one included: `totemnet_mcast_*_send`.
    All,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub destination: Destination,
    /// The totemsrp message.
    pub bytes: Vec<u8>,
}

/// `TOTEM_CONFIGURATION_TRANSITIONAL` or `_REGULAR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigurationKind {
    /// The members that pass from the old ring to the new one.
    Transitional,
    /// The new ring.
    Regular,
}

/// What the layers above learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message in agreed order: the sender's nodeid and its payload (a totempg packet).
    Deliver {
        /// The originating node (`mcast.header.nodeid`).
        nodeid: u32,
        /// The MCAST payload.
        payload: Vec<u8>,
    },
    /// A configuration change (`totemsrp_confchg_fn`).
    Configuration {
        /// Transitional or regular.
        kind: ConfigurationKind,
        /// Members of the configuration.
        members: Vec<u32>,
        /// Transitional: the old ring's members that left.
        left: Vec<u32>,
        /// Regular: the members that were not in the transitional configuration.
        joined: Vec<u32>,
        /// The new ring.
        ring_id: RingId,
    },
    /// `waiting_trans_ack` changed (`totemsrp_waiting_trans_ack_cb_fn`): while true, totempg
    /// assembles into its second set of buffers and new messages wait for sync.
    WaitingTransAck(bool),
    /// A new ring id was adopted: persist its seq (`memb_ring_id_store`).
    StoreRingId(RingId),
    /// The membership state changed, and why (corosync's gather reasons, for traces).
    StateChanged {
        /// Old state.
        from: MembState,
        /// New state.
        to: MembState,
        /// Why, in corosync's words.
        reason: &'static str,
    },
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// One node's Totem single-ring protocol.
#[derive(Debug)]
pub struct Srp {
    config: SrpConfig,
    my_id: u32,
    memb_state: MembState,
    membership: Membership,
    my_new_memb_list: Vec<u32>,
    my_trans_memb_list: Vec<u32>,
    my_deliver_memb_list: Vec<u32>,
    my_ring_id: RingId,
    my_old_ring_id: RingId,
    commit_token: Option<MembCommitToken>,
    token_target: u32,

    my_aru: u32,
    my_high_seq_received: u32,
    my_high_delivered: u32,
    my_last_aru: u32,
    last_released: u32,
    my_install_seq: u32,
    my_high_ring_delivered: u32,
    old_ring_state_saved: bool,
    old_ring_state_aru: u32,
    old_ring_state_high_seq_received: u32,

    my_token_seq: u32,
    my_last_seq: u32,
    my_seq_unchanged: u32,
    my_token_held: bool,
    my_aru_count: u32,
    my_retrans_flg_count: u32,
    my_rotation_counter: u32,
    my_set_retrans_flg: bool,
    my_received_flg: bool,
    orf_token_discard: bool,
    originated_orf_token: bool,
    my_trc: u32,
    my_pbl: u32,
    my_cbl: u32,
    waiting_trans_ack: bool,
    global_seqno: i32,

    regular_sort_queue: SortQueue,
    recovery_sort_queue: SortQueue,
    new_message_queue: VecDeque<Vec<u8>>,
    new_message_queue_trans: VecDeque<Vec<u8>>,
    retrans_message_queue: VecDeque<Vec<u8>>,
    message_queue_max: usize,
    token_retransmit_copy: Option<Vec<u8>>,
    pause_timestamp: Instant,

    timers: TimerTable,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Srp {
    /// A node that has just loaded `stored_ring_seq` from its state directory, with the
    /// transport's `net_mtu` (1500 udpu, 65536 knet). Like `main_iface_change_fn`, it bumps
    /// the seq by one, so that a restarted representative never reuses a ring id, and
    /// enters Gather at once.
    pub fn new(
        config: SrpConfig,
        my_id: u32,
        stored_ring_seq: u64,
        net_mtu: usize,
        now: Instant,
    ) -> Srp {
        let ring_seq = stored_ring_seq.wrapping_add(1);
        // SEQNO_START_MSG and SEQNO_START_TOKEN: one value, as totemsrp.c's test settings
        // pair them (SrpConfig::seqno_start).
        let seqno_start = config.seqno_start;
        let mut srp = Srp {
            config,
            my_id,
            memb_state: MembState::Operational,
            membership: Membership::new(my_id, ring_seq),
            my_new_memb_list: Vec::new(),
            my_trans_memb_list: Vec::new(),
            my_deliver_memb_list: Vec::new(),
            my_ring_id: RingId {
                rep: my_id,
                seq: ring_seq,
            },
            my_old_ring_id: RingId::default(),
            commit_token: None,
            token_target: my_id,
            my_aru: seqno_start,
            my_high_seq_received: seqno_start,
            my_high_delivered: seqno_start,
            my_last_aru: seqno_start,
            last_released: seqno_start,
            my_install_seq: seqno_start,
            my_high_ring_delivered: 0,
            old_ring_state_saved: false,
            old_ring_state_aru: 0,
            old_ring_state_high_seq_received: 0,
            my_token_seq: seqno_start.wrapping_sub(1),
            my_last_seq: 0,
            my_seq_unchanged: 0,
            my_token_held: false,
            my_aru_count: 0,
            my_retrans_flg_count: 0,
            my_rotation_counter: 0,
            my_set_retrans_flg: false,
            my_received_flg: true,
            orf_token_discard: false,
            originated_orf_token: false,
            my_trc: 0,
            my_pbl: 0,
            my_cbl: 0,
            waiting_trans_ack: true,
            global_seqno: 0,
            regular_sort_queue: SortQueue::new(seqno_start),
            recovery_sort_queue: SortQueue::new(seqno_start),
            new_message_queue: VecDeque::new(),
            new_message_queue_trans: VecDeque::new(),
            retrans_message_queue: VecDeque::new(),
            message_queue_max: (4 * MESSAGE_SIZE_MAX) / net_mtu.saturating_sub(90).max(1),
            token_retransmit_copy: None,
            pause_timestamp: now,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        // The memb list starts empty (the instance is zeroed in corosync).
        srp.membership.memb_list = NodeList::default();
        srp.membership.token_ring_id_seq = ring_seq;
        srp.reset_pause_timeout(now);
        srp.memb_state_gather_enter(now, "interface change");
        srp
    }

    // ------------------------------------------------------------------------------------
    // Getters.

    /// This node.
    pub fn nodeid(&self) -> u32 {
        self.my_id
    }

    /// The membership state.
    pub fn state(&self) -> MembState {
        self.memb_state
    }

    /// The ring this node is on (or forming).
    pub fn ring_id(&self) -> RingId {
        self.my_ring_id
    }

    /// Members of the installed ring.
    pub fn members(&self) -> &[u32] {
        self.membership.memb_list.as_slice()
    }

    /// The Gather sets: proc, failed and consensus lists, the last ring's members
    /// (`my_proc_list`, `my_failed_list`, `consensus_list`, `my_memb_list`).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Messages waiting for the token.
    pub fn backlog(&self) -> usize {
        self.new_message_queue.len() + self.new_message_queue_trans.len()
    }

    /// The queue's capacity (`MESSAGE_QUEUE_MAX`).
    pub fn queue_max(&self) -> usize {
        self.message_queue_max
    }

    /// Room in the queue `submit` uses (`totemsrp_avail`).
    pub fn avail(&self) -> usize {
        self.message_queue_max
            .saturating_sub(self.active_queue_len())
    }

    // ------------------------------------------------------------------------------------
    // Outputs.

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Srp::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    // ------------------------------------------------------------------------------------
    // Commands.

    /// Queues a totempg packet for the next token visit (`totemsrp_mcast`). While
    /// `waiting_trans_ack`, it goes to the queue drained first, so that sync messages precede
    /// older application messages.
    pub fn submit(&mut self, payload: &[u8]) -> Result<(), QueueFull> {
        if self.active_queue_len() >= self.message_queue_max {
            return Err(QueueFull);
        }
        let mcast = Mcast {
            header: Header {
                encapsulated: 2,
                ..Header::new(MessageType::Mcast, self.my_id)
            },
            system_from: self.my_id,
            seq: 0,
            this_seqno: 0,
            ring_id: RingId::default(),
            node_id: 0,
            guarantee: 0,
            payload,
        };
        let mut bytes = Vec::with_capacity(mcast.buffer_len());
        mcast.emit(&mut bytes);
        if self.waiting_trans_ack {
            self.new_message_queue_trans.push_back(bytes);
        } else {
            self.new_message_queue.push_back(bytes);
        }
        // totemsrp_event_signal: wanting to send cancels a held token.
        self.token_hold_cancel_send();
        Ok(())
    }

    /// Something new is waiting to be sent (`totemsrp_event_signal`): if this node saw the
    /// token held, it asks the representative to release it (TOKEN_HOLD_CANCEL).
    pub fn new_message_signal(&mut self) {
        self.token_hold_cancel_send();
    }

    /// Sync is complete (`totemsrp_trans_ack`): new messages go to the regular queue again.
    ///
    /// The layer above calls this while handling the event that completed its sync (a
    /// barrier delivered). In corosync that delivery is a synchronous callback, so the ack
    /// takes effect at that point of the event stream: the `WaitingTransAck(false)` it
    /// reports is the very next event, ahead of what is still queued. And when the events
    /// still queued include a newer ring's switch (`memb_state_operational_enter` delivers
    /// the old ring's messages — which may complete the old ring's sync and call
    /// `totemsrp_trans_ack` — before it sets `waiting_trans_ack` for the new ring), the ack
    /// is the old ring's: the new ring keeps waiting for its own sync.
    pub fn trans_ack(&mut self) {
        let newer_ring_waits = self
            .events
            .iter()
            .any(|e| matches!(e, Event::WaitingTransAck(true)));
        if !newer_ring_waits {
            self.waiting_trans_ack = false;
        }
        self.events.push_front(Event::WaitingTransAck(false));
    }

    /// Are new messages held for sync (`waiting_trans_ack`)?
    pub fn waiting_trans_ack(&self) -> bool {
        self.waiting_trans_ack
    }

    /// A clean shutdown: multicast the LEAVE (`memb_leave_message_send`).
    pub fn leave(&mut self) {
        let leave = self.membership.leave_message(self.my_ring_id.seq);
        self.send_all(&Message::MembJoin(leave));
    }

    fn active_queue_len(&self) -> usize {
        if self.waiting_trans_ack {
            self.new_message_queue_trans.len()
        } else {
            self.new_message_queue.len()
        }
    }

    // ------------------------------------------------------------------------------------
    // Inputs.

    /// A totemsrp message arrived (`main_deliver_fn`). Malformed messages are dropped, as
    /// corosync drops them; the error is returned for counting.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) -> Result<(), totem_wire::Error> {
        let (message, _) = Message::parse(bytes)?;
        match message {
            Message::OrfToken(token) => self.message_handler_orf_token(now, token),
            Message::Mcast(mcast) => self.message_handler_mcast(now, &mcast, bytes),
            Message::MembMergeDetect(m) => self.message_handler_memb_merge_detect(now, &m),
            Message::MembJoin(join) => self.message_handler_memb_join(now, &join),
            Message::MembCommitToken(token) => self.message_handler_memb_commit_token(now, token),
            Message::TokenHoldCancel(m) => self.message_handler_token_hold_cancel(now, &m),
            Message::Unknown { .. } => {}
        }
        Ok(())
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.expire(now) {
            match timer {
                Timer::OrfToken => self.timer_function_orf_token_timeout(now),
                Timer::OrfTokenWarning => {
                    // Log only in corosync; re-armed like `timer_function_orf_token_warning`.
                    self.reset_token_warning(now);
                }
                Timer::OrfTokenRetransmit => self.timer_function_token_retransmit_timeout(now),
                Timer::OrfTokenHoldRetransmit => {
                    if matches!(
                        self.memb_state,
                        MembState::Operational | MembState::Recovery
                    ) {
                        self.token_retransmit();
                    }
                }
                Timer::MergeDetect => {
                    if self.memb_state == MembState::Operational
                        && self.my_ring_id.rep == self.my_id
                    {
                        self.memb_merge_detect_transmit();
                    }
                }
                Timer::GatherJoin => {
                    if matches!(self.memb_state, MembState::Gather | MembState::Commit) {
                        self.memb_join_message_send();
                        self.set_timer(now, Timer::GatherJoin, self.config.join_ms);
                    }
                }
                Timer::GatherConsensus => self.memb_state_consensus_timeout_expired(now),
                Timer::Pause => {
                    self.pause_timestamp = now;
                    self.reset_pause_timeout(now);
                }
                Timer::Commit | Timer::Heartbeat | Timer::Downcheck => {}
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Timers.

    fn set_timer(&mut self, now: Instant, timer: Timer, ms: u32) {
        self.timers
            .set(timer, now + Duration::from_millis(ms.into()));
    }

    fn reset_token_timeout(&mut self, now: Instant) {
        self.set_timer(now, Timer::OrfToken, self.config.token_ms);
        if self.config.token_warning_percent != 0 {
            self.reset_token_warning(now);
        }
    }

    fn reset_token_warning(&mut self, now: Instant) {
        let ms = self.config.token_warning_percent * self.config.token_ms / 100;
        self.set_timer(now, Timer::OrfTokenWarning, ms);
    }

    fn cancel_token_timeout(&mut self) {
        self.timers.cancel(Timer::OrfToken);
        self.timers.cancel(Timer::OrfTokenWarning);
    }

    fn reset_token_retransmit_timeout(&mut self, now: Instant) {
        self.set_timer(
            now,
            Timer::OrfTokenRetransmit,
            self.config.token_retransmit_ms,
        );
    }

    fn start_merge_detect_timeout(&mut self, now: Instant) {
        if !self.timers.is_set(Timer::MergeDetect) {
            self.set_timer(now, Timer::MergeDetect, self.config.merge_ms);
        }
    }

    fn reset_pause_timeout(&mut self, now: Instant) {
        self.set_timer(now, Timer::Pause, self.config.token_ms / 5);
    }

    fn timer_function_orf_token_timeout(&mut self, now: Instant) {
        match self.memb_state {
            MembState::Operational => {
                self.memb_state_gather_enter(now, "The token was lost in the OPERATIONAL state.")
            }
            MembState::Gather => {
                self.memb_state_consensus_timeout_expired(now);
                self.memb_state_gather_enter(now, "The consensus timeout expired.");
            }
            MembState::Commit => {
                self.memb_state_gather_enter(now, "The token was lost in the COMMIT state.")
            }
            MembState::Recovery => {
                self.memb_recovery_state_token_loss(now);
                self.orf_token_discard = true;
            }
        }
    }

    fn timer_function_token_retransmit_timeout(&mut self, now: Instant) {
        if self.memb_state != MembState::Gather {
            self.token_retransmit();
            self.reset_token_retransmit_timeout(now);
        }
    }

    fn token_retransmit(&mut self) {
        if let Some(bytes) = self.token_retransmit_copy.clone() {
            self.transmits.push_back(Transmit {
                destination: Destination::Node(self.token_target),
                bytes,
            });
        }
    }

    fn memb_state_consensus_timeout_expired(&mut self, now: Instant) {
        if self.membership.consensus_agreed() {
            self.membership.consensus = NodeList::from_nodes(&[self.my_id]);
            self.reset_token_timeout(now);
        } else {
            self.membership.fail_non_agreeing();
            self.memb_state_gather_enter(now, "The consensus timeout expired.");
        }
    }

    fn memb_recovery_state_token_loss(&mut self, now: Instant) {
        self.old_ring_state_restore();
        self.memb_state_gather_enter(now, "The token was lost in the RECOVERY state.");
    }

    // ------------------------------------------------------------------------------------
    // Sending.

    fn send_all(&mut self, message: &Message<'_>) {
        self.transmits.push_back(Transmit {
            destination: Destination::All,
            bytes: message.to_bytes(),
        });
    }

    fn memb_join_message_send(&mut self) {
        let join = self.membership.join_message(self.my_ring_id.seq);
        self.send_all(&Message::MembJoin(join));
    }

    fn memb_merge_detect_transmit(&mut self) {
        let m = MembMergeDetect {
            header: Header::new(MessageType::MembMergeDetect, self.my_id),
            system_from: self.my_id,
            ring_id: self.my_ring_id,
        };
        self.send_all(&Message::MembMergeDetect(m));
    }

    fn token_hold_cancel_send(&mut self) {
        if !self.my_token_held {
            return;
        }
        self.my_token_held = false;
        let m = TokenHoldCancel {
            header: Header::new(MessageType::TokenHoldCancel, self.my_id),
            ring_id: self.my_ring_id,
        };
        self.send_all(&Message::TokenHoldCancel(m));
    }

    /// `token_send`: keeps a copy for retransmission, sends unless held.
    fn token_send(&mut self, mut token: OrfToken, forward: bool) {
        token.header.nodeid = self.my_id;
        token.header.target_nodeid = self.token_target;
        let bytes = Message::OrfToken(token).to_bytes();
        if forward {
            self.transmits.push_back(Transmit {
                destination: Destination::Node(self.token_target),
                bytes: bytes.clone(),
            });
        }
        self.token_retransmit_copy = Some(bytes);
    }

    fn commit_token_send(&mut self, now: Instant, mut token: MembCommitToken) {
        token.token_seq = token.token_seq.wrapping_add(1);
        token.header.nodeid = self.my_id;
        token.header.target_nodeid = self.token_target;
        let bytes = Message::MembCommitToken(token.clone()).to_bytes();
        self.transmits.push_back(Transmit {
            destination: Destination::Node(self.token_target),
            bytes: bytes.clone(),
        });
        self.token_retransmit_copy = Some(bytes);
        self.commit_token = Some(token);
        self.reset_token_retransmit_timeout(now);
    }

    // ------------------------------------------------------------------------------------
    // State transitions.

    fn set_state(&mut self, to: MembState, reason: &'static str) {
        let from = self.memb_state;
        self.memb_state = to;
        self.events
            .push_back(Event::StateChanged { from, to, reason });
    }

    fn memb_state_gather_enter(&mut self, now: Instant, reason: &'static str) {
        self.orf_token_discard = true;
        self.originated_orf_token = false;
        self.membership.proc_list.insert(self.my_id);
        self.memb_join_message_send();
        self.set_timer(now, Timer::GatherJoin, self.config.join_ms);
        self.set_timer(now, Timer::GatherConsensus, self.config.consensus_ms);
        self.timers.cancel(Timer::OrfTokenRetransmit);
        self.cancel_token_timeout();
        self.timers.cancel(Timer::MergeDetect);
        self.membership.enter_gather();
        self.set_state(MembState::Gather, reason);
    }

    fn old_ring_state_save(&mut self) {
        if !self.old_ring_state_saved {
            self.old_ring_state_saved = true;
            self.my_old_ring_id = self.my_ring_id;
            self.old_ring_state_aru = self.my_aru;
            self.old_ring_state_high_seq_received = self.my_high_seq_received;
        }
    }

    fn old_ring_state_restore(&mut self) {
        self.my_aru = self.old_ring_state_aru;
        self.my_high_seq_received = self.old_ring_state_high_seq_received;
    }

    /// `memb_state_commit_enter` with `memb_state_commit_token_update` and `_target_set`.
    fn memb_state_commit_enter(&mut self, now: Instant, mut token: MembCommitToken) {
        self.old_ring_state_save();
        // memb_state_commit_token_update: fill my entry.
        self.my_new_memb_list = token.addr.clone();
        let index = usize::try_from(token.memb_index).unwrap_or(usize::MAX);
        self.my_received_flg = self.my_aru == self.my_high_seq_received;
        if let Some(entry) = token.memb_list.get_mut(index) {
            entry.ring_id = self.my_old_ring_id;
            entry.aru = self.old_ring_state_aru;
            entry.received_flg = u32::from(self.my_received_flg);
            entry.high_delivered = self.my_high_delivered;
        }
        if index < token.memb_list.len() {
            let mine = token.memb_list[index].ring_id;
            let mut high_aru = token.memb_list[index].aru;
            for e in token.memb_list.iter().take(index + 1) {
                if e.ring_id == mine && seq_lt(high_aru, e.aru) {
                    high_aru = e.aru;
                }
            }
            for (i, e) in token.memb_list.iter_mut().enumerate().take(index + 1) {
                if e.ring_id == mine && seq_lt(e.aru, high_aru) {
                    e.received_flg = 0;
                    if i == index {
                        self.my_received_flg = false;
                    }
                }
            }
        }
        token.memb_index += 1;
        // memb_state_commit_token_target_set.
        if !token.addr.is_empty() {
            let next = usize::try_from(token.memb_index).unwrap_or(0) % token.addr.len();
            self.token_target = token.addr[next];
        }
        self.timers.cancel(Timer::GatherJoin);
        self.timers.cancel(Timer::GatherConsensus);
        self.my_ring_id = token.ring_id;
        self.events.push_back(Event::StoreRingId(self.my_ring_id));
        self.membership.token_ring_id_seq = self.my_ring_id.seq;
        self.set_state(MembState::Commit, "commit token received");
        self.reset_token_retransmit_timeout(now);
        self.reset_token_timeout(now);
        self.my_trc = 0;
        self.my_pbl = 0;
        self.my_cbl = 0;
        // target_set_completed -> memb_state_commit_token_send.
        self.commit_token_send(now, token);
    }

    fn memb_state_recovery_enter(&mut self, now: Instant, mut token: MembCommitToken) {
        self.orf_token_discard = false;
        self.my_high_ring_delivered = 0;
        self.recovery_sort_queue = SortQueue::new(self.config.seqno_start);
        self.retrans_message_queue.clear();
        // Deliberate deviation from corosync 3.1.7: the counters that end recovery belong to
        // this ring. totemsrp.c resets my_retrans_flg_count and my_rotation_counter only in
        // the ORF token handler once a recovery has finished, and my_set_retrans_flg only
        // when it is the one to send the first token (orf_token_send_initial), so a recovery
        // aborted by a lost token (back to Gather) leaves them behind. If the aborted one had
        // counted two rotations, the next recovery's first token takes the count to 3 and
        // never to exactly 2, so my_install_seq stays SEQNO_START_MSG and the node enters
        // Operational after two rotations, before the recovered messages are in. It frees
        // its recovery queue, and the members still in Recovery ask for a message nobody
        // holds any more until FAILED TO RECEIVE (fail_recv_const rotations: minutes on a
        // lossy ring). A stale my_set_retrans_flg lets a node clear a flag someone else
        // set, to the same end. Nothing of this is on the wire. Regression test:
        // protocol/sim/tests/lossy_join.rs (seed 736 hung without the reset).
        self.my_retrans_flg_count = 0;
        self.my_rotation_counter = 0;
        self.my_set_retrans_flg = false;
        let mut low_ring_aru = self.old_ring_state_high_seq_received;
        // memb_state_commit_token_send_recovery: the second rotation.
        token.token_seq = token.token_seq.wrapping_add(1);
        token.header.nodeid = self.my_id;
        token.header.target_nodeid = self.token_target;
        let bytes = Message::MembCommitToken(token.clone()).to_bytes();
        self.transmits.push_back(Transmit {
            destination: Destination::Node(self.token_target),
            bytes: bytes.clone(),
        });
        self.token_retransmit_copy = Some(bytes);
        self.reset_token_retransmit_timeout(now);
        self.my_token_seq = self.config.seqno_start.wrapping_sub(1);

        // The transitional configuration (memb_set_and_with_ring_id): my old ring's members,
        // in that ring's order, that are in the new ring and come from my old ring.
        let old_members = self.membership.memb_list.clone();
        self.my_trans_memb_list = old_members
            .as_slice()
            .iter()
            .copied()
            .filter(|n| {
                self.my_new_memb_list
                    .iter()
                    .position(|m| m == n)
                    .and_then(|i| token.memb_list.get(i))
                    .is_some_and(|e| e.ring_id == self.my_old_ring_id)
            })
            .collect();
        let mut local_received_flg = true;
        for (n, e) in self.my_new_memb_list.iter().zip(&token.memb_list) {
            if self.my_trans_memb_list.contains(n) && e.received_flg == 0 {
                self.my_deliver_memb_list = self.my_trans_memb_list.clone();
                local_received_flg = false;
                break;
            }
        }
        if !local_received_flg {
            for (n, e) in self.my_new_memb_list.iter().zip(&token.memb_list) {
                if self.my_deliver_memb_list.contains(n) && e.ring_id == self.my_old_ring_id {
                    if seq_lt(e.aru, low_ring_aru) {
                        low_ring_aru = e.aru;
                    }
                    if seq_lt(self.my_high_ring_delivered, e.high_delivered) {
                        self.my_high_ring_delivered = e.high_delivered;
                    }
                }
            }
            // Copy every old-ring message above the lowest aru for re-multicast, encapsulated.
            let range = self
                .old_ring_state_high_seq_received
                .wrapping_sub(low_ring_aru);
            if range < QUEUE_RTR_ITEMS_SIZE_MAX {
                for i in 1..=range {
                    let seq = low_ring_aru.wrapping_add(i);
                    let Some(old) = self.regular_sort_queue.get(seq) else {
                        continue;
                    };
                    let outer = Mcast {
                        header: Header {
                            encapsulated: 1,
                            ..Header::new(MessageType::Mcast, self.my_id)
                        },
                        system_from: self.my_id,
                        seq: 0,
                        this_seqno: 0,
                        ring_id: self.my_ring_id,
                        node_id: 0,
                        guarantee: 0,
                        payload: old,
                    };
                    let mut bytes = Vec::with_capacity(outer.buffer_len());
                    outer.emit(&mut bytes);
                    if self.retrans_message_queue.len() < RETRANS_MESSAGE_QUEUE_SIZE_MAX {
                        self.retrans_message_queue.push_back(bytes);
                    }
                }
            }
        }
        self.my_aru = self.config.seqno_start;
        self.my_aru_count = 0;
        self.my_seq_unchanged = 0;
        self.my_high_seq_received = self.config.seqno_start;
        self.my_install_seq = self.config.seqno_start;
        self.last_released = self.config.seqno_start;
        self.reset_token_timeout(now);
        self.reset_token_retransmit_timeout(now);
        self.commit_token = Some(token);
        self.set_state(
            MembState::Recovery,
            "commit token completed its first rotation",
        );
    }

    /// Recovery's messages move to the regular queue under their old-ring seq.
    fn deliver_messages_from_recovery_to_regular(&mut self) {
        let range = self.my_aru.wrapping_sub(self.config.seqno_start);
        for i in 1..=range.min(QUEUE_RTR_ITEMS_SIZE_MAX) {
            let Some(outer) = self
                .recovery_sort_queue
                .get(self.config.seqno_start.wrapping_add(i))
            else {
                continue;
            };
            let Ok((Message::Mcast(outer), _)) = Message::parse(outer) else {
                continue;
            };
            if outer.encapsulation() != Encapsulation::Encapsulated {
                continue;
            }
            let Some(Ok(inner)) = outer.inner() else {
                continue;
            };
            if inner.ring_id == self.my_old_ring_id
                && self.regular_sort_queue.in_range(inner.seq)
                && !self.regular_sort_queue.contains(inner.seq)
            {
                let seq = inner.seq;
                let bytes = outer.payload.to_vec();
                self.regular_sort_queue.insert(seq, bytes);
                if seq_lt(self.old_ring_state_high_seq_received, seq) {
                    self.old_ring_state_high_seq_received = seq;
                }
            }
        }
    }

    fn memb_state_operational_enter(&mut self, _now: Instant) {
        self.originated_orf_token = false;
        self.membership.consensus = NodeList::default();
        self.old_ring_state_saved = false;
        self.deliver_messages_from_recovery_to_regular();
        let aru_save = self.my_aru;
        self.my_aru = self.old_ring_state_aru;
        self.messages_deliver_to_app(false, self.old_ring_state_high_seq_received);

        let left: Vec<u32> = self
            .membership
            .memb_list
            .as_slice()
            .iter()
            .copied()
            .filter(|n| !self.my_trans_memb_list.contains(n))
            .collect();
        let joined: Vec<u32> = self
            .my_new_memb_list
            .iter()
            .copied()
            .filter(|n| !self.my_trans_memb_list.contains(n))
            .collect();
        self.membership.memb_list = NodeList::from_nodes(&self.my_new_memb_list);
        self.last_released = 0;
        self.my_set_retrans_flg = false;
        self.events.push_back(Event::Configuration {
            kind: ConfigurationKind::Transitional,
            members: self.my_trans_memb_list.clone(),
            left,
            joined: Vec::new(),
            ring_id: self.my_ring_id,
        });
        self.waiting_trans_ack = true;
        self.messages_deliver_to_app(true, self.old_ring_state_high_seq_received);
        self.events.push_back(Event::WaitingTransAck(true));
        self.my_aru = aru_save;
        self.events.push_back(Event::Configuration {
            kind: ConfigurationKind::Regular,
            members: self.my_new_memb_list.clone(),
            left: Vec::new(),
            joined,
            ring_id: self.my_ring_id,
        });
        // The recovery queue becomes the regular queue.
        self.regular_sort_queue = std::mem::take(&mut self.recovery_sort_queue);
        self.recovery_sort_queue = SortQueue::new(self.config.seqno_start);
        self.my_last_aru = self.config.seqno_start;
        self.membership.proc_list = NodeList::from_nodes(&self.my_new_memb_list);
        self.membership.failed_list = NodeList::default();
        // Everything below the last gap under my_high_seq_received counts as delivered
        // ("Not exactly to spec" in corosync): find the highest present seq.
        let mut i = self.my_high_seq_received;
        while i != self.config.seqno_start && !self.regular_sort_queue.contains(i) {
            i -= 1;
        }
        self.my_high_delivered = i;
        self.regular_sort_queue.release_to(self.my_high_delivered);
        self.last_released = self.my_high_delivered;
        self.set_state(MembState::Operational, "ring installed");
        self.my_received_flg = true;
        self.my_old_ring_id = self.my_ring_id;
    }

    // ------------------------------------------------------------------------------------
    // Handlers.

    fn message_handler_memb_join(&mut self, now: Instant, join: &MembJoin) {
        // pause_flush: a process that was not scheduled for token/2 drops queued JOINs.
        if now.saturating_since(self.pause_timestamp).total_millis()
            > u64::from(self.config.token_ms / 2)
        {
            return;
        }
        if self.membership.token_ring_id_seq < join.ring_seq {
            self.membership.token_ring_id_seq = join.ring_seq;
        }
        match self.memb_state {
            MembState::Operational => {
                if !ignore_join_under_operational(&self.membership, join, self.my_ring_id.seq) {
                    self.memb_join_process(now, join);
                }
            }
            MembState::Gather => self.memb_join_process(now, join),
            MembState::Commit => {
                if self.my_new_memb_list.contains(&join.system_from)
                    && join.ring_seq >= self.my_ring_id.seq
                {
                    self.memb_join_process(now, join);
                    self.memb_state_gather_enter(now, "JOIN received in the COMMIT state.");
                }
            }
            MembState::Recovery => {
                if self.my_new_memb_list.contains(&join.system_from)
                    && join.ring_seq >= self.my_ring_id.seq
                {
                    self.memb_join_process(now, join);
                    self.memb_recovery_state_token_loss(now);
                    self.memb_state_gather_enter(now, "JOIN received in the RECOVERY state.");
                }
            }
        }
    }

    fn memb_join_process(&mut self, now: Instant, join: &MembJoin) {
        let was_operational = self.memb_state == MembState::Operational;
        match self.membership.process_join(join) {
            JoinOutcome::CreateCommitToken(token) => self.memb_state_commit_enter(now, token),
            JoinOutcome::EnterGather => {
                self.memb_state_gather_enter(now, "merge during join");
            }
            JoinOutcome::NoChange => {
                if was_operational && self.memb_state == MembState::Operational {
                    self.memb_state_gather_enter(now, "JOIN received in the OPERATIONAL state.");
                }
            }
        }
    }

    fn message_handler_memb_commit_token(&mut self, now: Instant, token: MembCommitToken) {
        match self.memb_state {
            MembState::Operational => {}
            MembState::Gather => {
                let candidates = self.membership.candidates();
                if candidates.set_eq(&token.addr) && token.ring_id.seq > self.my_ring_id.seq {
                    self.memb_state_commit_enter(now, token);
                }
            }
            MembState::Commit => {
                if token.ring_id.seq == self.my_ring_id.seq
                    && usize::try_from(token.memb_index).ok() == Some(token.addr.len())
                {
                    self.memb_state_recovery_enter(now, token);
                }
            }
            MembState::Recovery => {
                if self.my_id == self.my_ring_id.rep && !self.originated_orf_token {
                    self.originated_orf_token = true;
                    self.orf_token_send_initial();
                    self.reset_token_timeout(now);
                    self.reset_token_retransmit_timeout(now);
                }
            }
        }
    }

    fn orf_token_send_initial(&mut self) {
        self.my_set_retrans_flg = !self.retrans_message_queue.is_empty();
        let token = OrfToken {
            header: Header::new(MessageType::OrfToken, self.my_id),
            seq: self.config.seqno_start,
            token_seq: self.config.seqno_start,
            aru: self.config.seqno_start.wrapping_sub(1),
            aru_addr: self.my_id,
            ring_id: self.my_ring_id,
            backlog: 0,
            fcc: 0,
            retrans_flg: i32::from(self.my_set_retrans_flg),
            rtr_list: Vec::new(),
        };
        self.token_send(token, true);
    }

    fn message_handler_memb_merge_detect(&mut self, now: Instant, m: &MembMergeDetect) {
        if m.ring_id == self.my_ring_id {
            return;
        }
        match self.memb_state {
            MembState::Operational => {
                self.membership.proc_list.insert(m.system_from);
                self.memb_state_gather_enter(now, "merge during OPERATIONAL state");
            }
            MembState::Gather => {
                if !self.membership.proc_list.contains(m.system_from) {
                    self.membership.proc_list.insert(m.system_from);
                    self.memb_state_gather_enter(now, "merge during GATHER state");
                }
            }
            MembState::Commit | MembState::Recovery => {}
        }
    }

    fn message_handler_token_hold_cancel(&mut self, now: Instant, m: &TokenHoldCancel) {
        if m.ring_id == self.my_ring_id {
            self.my_seq_unchanged = 0;
            if self.my_ring_id.rep == self.my_id {
                self.timer_function_token_retransmit_timeout(now);
            }
        }
    }

    fn message_handler_mcast(&mut self, now: Instant, mcast: &Mcast<'_>, bytes: &[u8]) {
        let encapsulated = mcast.encapsulation() == Encapsulation::Encapsulated;
        if mcast.ring_id != self.my_ring_id {
            let from = mcast.system_from;
            match self.memb_state {
                MembState::Operational => {
                    self.membership.proc_list.insert(from);
                    self.memb_state_gather_enter(now, "foreign message in OPERATIONAL state");
                }
                MembState::Gather => {
                    if !self.membership.proc_list.contains(from) {
                        self.membership.proc_list.insert(from);
                        self.memb_state_gather_enter(now, "foreign message in GATHER state");
                    }
                }
                MembState::Commit | MembState::Recovery => {}
            }
            return;
        }
        let seq = mcast.seq;
        let queue = if encapsulated {
            &mut self.recovery_sort_queue
        } else {
            &mut self.regular_sort_queue
        };
        if bytes.len() <= 65536 && queue.in_range(seq) && !queue.contains(seq) {
            queue.insert(seq, bytes.to_vec());
            if seq_lt(self.my_high_seq_received, seq) {
                self.my_high_seq_received = seq;
            }
        }
        self.update_aru();
        if self.memb_state == MembState::Operational {
            self.messages_deliver_to_app(false, self.my_high_seq_received);
        }
    }

    fn current_sort_queue(&mut self) -> &mut SortQueue {
        if self.memb_state == MembState::Recovery {
            &mut self.recovery_sort_queue
        } else {
            &mut self.regular_sort_queue
        }
    }

    fn update_aru(&mut self) {
        let range = self.my_high_seq_received.wrapping_sub(self.my_aru);
        let saved = self.my_aru;
        let mut advanced = 0;
        if range < QUEUE_RTR_ITEMS_SIZE_MAX {
            let queue = self.current_sort_queue();
            for i in 1..=range {
                if !queue.contains(saved.wrapping_add(i)) {
                    break;
                }
                advanced = i;
            }
        }
        self.my_aru = saved.wrapping_add(advanced);
    }

    fn messages_deliver_to_app(&mut self, skip: bool, end_point: u32) {
        let range = end_point.wrapping_sub(self.my_high_delivered);
        if range >= QUEUE_RTR_ITEMS_SIZE_MAX {
            return;
        }
        let stored = self.my_high_delivered;
        for i in 1..=range {
            let seq = stored.wrapping_add(i);
            if !self.regular_sort_queue.in_range(seq) {
                break;
            }
            let present = self.regular_sort_queue.contains(seq);
            if !present && !skip {
                break;
            }
            self.my_high_delivered = seq;
            let Some(bytes) = self.regular_sort_queue.get(seq) else {
                continue;
            };
            let Ok((Message::Mcast(m), _)) = Message::parse(bytes) else {
                continue;
            };
            if skip && !self.my_deliver_memb_list.contains(&m.system_from) {
                continue;
            }
            self.events.push_back(Event::Deliver {
                nodeid: m.header.nodeid,
                payload: m.payload.to_vec(),
            });
        }
    }

    fn messages_free(&mut self, token_aru: u32) {
        let mut release_to = token_aru;
        if seq_lt(self.my_last_aru, release_to) {
            release_to = self.my_last_aru;
        }
        if seq_lt(self.my_high_delivered, release_to) {
            release_to = self.my_high_delivered;
        }
        if seq_lt(release_to, self.last_released) {
            return;
        }
        let range = release_to.wrapping_sub(self.last_released);
        if range == 0 || range >= QUEUE_RTR_ITEMS_SIZE_MAX {
            return;
        }
        self.regular_sort_queue.release_to(release_to);
        self.last_released = release_to;
    }

    fn backlog_get(&self) -> u32 {
        let used = match self.memb_state {
            MembState::Operational => self.active_queue_len(),
            MembState::Recovery => self.retrans_message_queue.len(),
            _ => 0,
        };
        used as u32
    }

    fn fcc_calculate(&mut self, token: &OrfToken) -> u32 {
        let mut allowed = self.config.max_messages;
        let window_left = self.config.window_size.wrapping_sub(token.fcc);
        if allowed > window_left {
            allowed = window_left;
        }
        self.my_cbl = self.backlog_get();
        let total = token
            .backlog
            .wrapping_add(self.my_cbl)
            .wrapping_sub(self.my_pbl);
        // Only with a backlog: corosync avoids dividing by zero the same way.
        if let Some(calc) = self
            .config
            .window_size
            .wrapping_mul(self.my_pbl)
            .checked_div(total)
        {
            if calc > 0 && allowed > calc {
                allowed = calc;
            }
        }
        allowed
    }

    fn orf_token_remcast(&mut self, seq: u32) -> bool {
        let queue = if self.memb_state == MembState::Recovery {
            &self.recovery_sort_queue
        } else {
            &self.regular_sort_queue
        };
        if !queue.in_range(seq) {
            return false;
        }
        let Some(bytes) = queue.get(seq) else {
            return false;
        };
        let bytes = bytes.to_vec();
        self.transmits.push_back(Transmit {
            destination: Destination::All,
            bytes,
        });
        true
    }

    fn orf_token_rtr(&mut self, token: &mut OrfToken, allowed: &mut u32) -> u32 {
        let mut remcast = 0;
        let mut i = 0;
        while remcast < *allowed && i < token.rtr_list.len() {
            if token.rtr_list[i].ring_id != self.my_ring_id {
                i += 1;
                continue;
            }
            if self.orf_token_remcast(token.rtr_list[i].seq) {
                token.rtr_list.remove(i);
                remcast += 1;
            } else {
                i += 1;
            }
        }
        *allowed -= remcast;
        let range = token.seq.wrapping_sub(self.my_aru);
        if range >= QUEUE_RTR_ITEMS_SIZE_MAX {
            return remcast;
        }
        let my_aru = self.my_aru;
        let miss_count_const = self.config.miss_count_const;
        let ring_id = self.my_ring_id;
        let mut i = 1;
        while (token.rtr_list.len() as u64) < RETRANSMIT_ENTRIES_MAX && i <= range {
            let seq = my_aru.wrapping_add(i);
            i += 1;
            let queue = self.current_sort_queue();
            if !queue.in_range(seq) {
                break;
            }
            if queue.contains(seq) {
                continue;
            }
            if queue.miss(seq) < miss_count_const {
                continue;
            }
            if !token.rtr_list.iter().any(|r| r.seq == seq) {
                token.rtr_list.push(RtrItem { ring_id, seq });
            }
        }
        remcast
    }

    fn fcc_rtr_limit(&self, token: &OrfToken, allowed: &mut u32) {
        let limit = self
            .last_released
            .wrapping_add(QUEUE_RTR_ITEMS_SIZE_MAX)
            .wrapping_sub(*allowed)
            .wrapping_sub(self.config.window_size);
        if seq_lt(limit, token.seq) {
            *allowed = 0;
        }
    }

    fn orf_token_mcast(&mut self, now: Instant, token: &mut OrfToken, allowed: u32) -> u32 {
        let recovery = self.memb_state == MembState::Recovery;
        if recovery {
            self.reset_token_retransmit_timeout(now);
        }
        let mut sent = 0;
        while sent < allowed {
            let queue = if recovery {
                &mut self.retrans_message_queue
            } else if self.waiting_trans_ack {
                &mut self.new_message_queue_trans
            } else {
                &mut self.new_message_queue
            };
            let Some(mut bytes) = queue.pop_front() else {
                break;
            };
            token.seq = token.seq.wrapping_add(1);
            let this_seqno = self.global_seqno;
            self.global_seqno = self.global_seqno.wrapping_add(1);
            // Queued by us without them: seq, this_seqno and ring id are known only now.
            // Our own emitted MCASTs always take them.
            let _ = assign_sequence(&mut bytes, token.seq, this_seqno, self.my_ring_id);
            let sort_queue = if recovery {
                &mut self.recovery_sort_queue
            } else {
                &mut self.regular_sort_queue
            };
            sort_queue.insert(token.seq, bytes.clone());
            self.transmits.push_back(Transmit {
                destination: Destination::All,
                bytes,
            });
            self.my_high_seq_received = token.seq;
            sent += 1;
        }
        self.update_aru();
        sent
    }

    fn message_handler_orf_token(&mut self, now: Instant, mut token: OrfToken) {
        if self.orf_token_discard {
            return;
        }
        // Merge detection: an unchanged seq means an idle ring.
        if token.seq == self.my_last_seq {
            self.start_merge_detect_timeout(now);
            self.my_seq_unchanged += 1;
        } else {
            self.timers.cancel(Timer::MergeDetect);
            self.timers.cancel(Timer::OrfTokenHoldRetransmit);
            self.my_seq_unchanged = 0;
        }
        self.my_last_seq = token.seq;
        let rep = self.my_ring_id.rep == self.my_id;
        self.my_token_held = if rep {
            self.my_seq_unchanged > self.config.seqno_unchanged_const
        } else {
            self.my_seq_unchanged >= self.config.seqno_unchanged_const
        };
        let mut forward_token = !(rep && self.my_token_held);
        if self.memb_state == MembState::Commit {
            return;
        }
        if token.ring_id != self.my_ring_id {
            return;
        }
        if seq_lte(token.token_seq, self.my_token_seq) {
            return;
        }
        // Deliberate deviation from corosync 3.1.7: messages are freed only on a token of
        // this ring that is not a retransmission. totemsrp.c message_handler_orf_token calls
        // messages_free (release up to min(token aru, last token's aru)) before it discards
        // tokens of another ring and retransmitted ones (token_seq <= my_token_seq). The rule
        // needs the aru to have covered a message on two successive visits, the token having
        // passed every other member in between; a retransmitted copy is the same visit seen
        // again. So when the token a member sends on with a lowered aru (it lacks the
        // message) is lost and the previous holder retransmits its copy, the next node frees
        // a message that member still lacks, and can no longer answer its retransmit request
        // (orf_token_rtr) nor re-send it in recovery (memb_state_recovery_enter): if the
        // sender then fails, the survivors leave the ring having delivered different
        // messages. Freeing one visit later changes nothing on the wire. Regression tests:
        // tests/ring.rs a_retransmitted_token_does_not_free_a_message_a_member_still_lacks,
        // and sweep seeds 1069, 1608, 1998.
        if self.memb_state == MembState::Operational {
            self.messages_free(token.aru);
        }
        let last_aru = self.my_last_aru;
        self.my_last_aru = token.aru;
        let mut allowed = self.fcc_calculate(&token);
        let remcast = self.orf_token_rtr(&mut token, &mut allowed);
        if self.config.cancel_token_hold_on_retransmit
            && self.my_token_held
            && (!token.rtr_list.is_empty() || remcast > 0)
        {
            self.my_token_held = false;
            forward_token = true;
        }
        self.fcc_rtr_limit(&token, &mut allowed);
        let regular = self.orf_token_mcast(now, &mut token, allowed);
        // fcc_token_update.
        let transmitted = remcast + regular;
        token.fcc = token
            .fcc
            .wrapping_add(transmitted)
            .wrapping_sub(self.my_trc);
        token.backlog = token
            .backlog
            .wrapping_add(self.my_cbl)
            .wrapping_sub(self.my_pbl);
        self.my_trc = transmitted;
        self.my_pbl = self.my_cbl;

        if seq_lt(self.my_aru, token.aru) || token.aru_addr == self.my_id || token.aru_addr == 0 {
            token.aru = self.my_aru;
            token.aru_addr = if token.aru == token.seq {
                0
            } else {
                self.my_id
            };
        }
        if token.aru == last_aru && token.aru_addr != 0 {
            self.my_aru_count += 1;
        } else {
            self.my_aru_count = 0;
        }
        if self.my_aru_count > self.config.fail_recv_const && token.aru_addr == self.my_id {
            // "FAILED TO RECEIVE": give ourselves up.
            self.membership.failed_to_recv = true;
            self.membership.failed_list.insert(self.my_id);
            self.memb_state_gather_enter(now, "FAILED TO RECEIVE");
            return;
        }
        self.my_token_seq = token.token_seq;
        token.token_seq = token.token_seq.wrapping_add(1);
        if self.memb_state == MembState::Recovery {
            if !self.retrans_message_queue.is_empty() {
                if token.retrans_flg == 0 {
                    token.retrans_flg = 1;
                    self.my_set_retrans_flg = true;
                }
            } else if token.retrans_flg == 1 && self.my_set_retrans_flg {
                token.retrans_flg = 0;
                self.my_set_retrans_flg = false;
            }
            if token.retrans_flg == 0 {
                self.my_retrans_flg_count += 1;
            } else {
                self.my_retrans_flg_count = 0;
            }
            if self.my_retrans_flg_count == 2 {
                self.my_install_seq = token.seq;
            }
            if self.my_retrans_flg_count >= 2
                && !self.my_received_flg
                && seq_lte(self.my_install_seq, self.my_aru)
            {
                self.my_received_flg = true;
                self.my_deliver_memb_list = self.my_trans_memb_list.clone();
            }
            if self.my_retrans_flg_count >= 3 && seq_lte(self.my_install_seq, token.aru) {
                self.my_rotation_counter += 1;
            } else {
                self.my_rotation_counter = 0;
            }
            if self.my_rotation_counter == 2 {
                self.memb_state_operational_enter(now);
                self.my_rotation_counter = 0;
                self.my_retrans_flg_count = 0;
            }
        }
        self.token_send(token, forward_token);
        if self.memb_state == MembState::Operational {
            self.messages_deliver_to_app(false, self.my_high_seq_received);
        }
        self.reset_token_timeout(now);
        self.reset_token_retransmit_timeout(now);
        if rep && self.my_token_held {
            self.set_timer(now, Timer::OrfTokenHoldRetransmit, self.config.hold_ms);
        }
    }
}
