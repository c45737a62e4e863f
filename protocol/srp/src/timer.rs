//! corosync's timers as one table (quinn's `connection/timer.rs` shape): each has at most one
//! deadline; the engine asks for the earliest and is told which expired.

use crate::time::Instant;

/// The timers of `exec/totemsrp.c` (and the transport's downcheck), named after corosync's
/// handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// `timer_orf_token_timeout`: token loss.
    OrfToken,
    /// `timer_orf_token_warning`: "Token has not been received in N ms" (log only).
    OrfTokenWarning,
    /// `timer_orf_token_retransmit_timeout`: resend the last token.
    OrfTokenRetransmit,
    /// `timer_orf_token_hold_retransmit_timeout`: the representative resends a held token.
    OrfTokenHoldRetransmit,
    /// `timer_merge_detect_timeout`: an idle representative multicasts MERGE_DETECT.
    MergeDetect,
    /// `memb_timer_state_gather_join_timeout`: resend JOIN in GATHER.
    GatherJoin,
    /// `memb_timer_state_gather_consensus_timeout`.
    GatherConsensus,
    /// `memb_timer_state_commit_timeout`.
    Commit,
    /// `timer_heartbeat_timeout` (off unless `heartbeat_failures_allowed`).
    Heartbeat,
    /// The transport's interface re-check (`downcheck`).
    Downcheck,
    /// `timer_pause_timeout`: every token/5 the process notes that it ran; a JOIN arriving
    /// more than token/2 after that note means the process was paused (`pause_flush`).
    Pause,
}

impl Timer {
    /// Every timer, in the order expiries at the same instant are reported.
    pub const ALL: [Timer; 11] = [
        Timer::OrfToken,
        Timer::OrfTokenWarning,
        Timer::OrfTokenRetransmit,
        Timer::OrfTokenHoldRetransmit,
        Timer::MergeDetect,
        Timer::GatherJoin,
        Timer::GatherConsensus,
        Timer::Commit,
        Timer::Heartbeat,
        Timer::Downcheck,
        Timer::Pause,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// At most one deadline per [`Timer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 11],
}

impl TimerTable {
    /// Arms (or re-arms) `timer` for `deadline`.
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer.index()] = Some(deadline);
    }

    /// Disarms `timer`.
    pub fn cancel(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// `timer`'s deadline, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Is `timer` armed?
    pub fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest deadline of all, for `poll_timeout`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the timers whose deadline is at or before `now`, earliest first
    /// and, at equal deadlines, in [`Timer::ALL`] order — so a run is deterministic.
    pub fn expire(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> = Timer::ALL
            .iter()
            .filter_map(|t| self.get(*t).filter(|d| *d <= now).map(|d| (d, *t)))
            .collect();
        due.sort();
        for (_, t) in &due {
            self.cancel(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_ordered_and_disarms() {
        let mut table = TimerTable::default();
        table.set(Timer::GatherConsensus, Instant::from_millis(30));
        table.set(Timer::GatherJoin, Instant::from_millis(10));
        table.set(Timer::OrfToken, Instant::from_millis(30));
        table.set(Timer::MergeDetect, Instant::from_millis(99));
        assert_eq!(table.next_deadline(), Some(Instant::from_millis(10)));
        assert_eq!(table.expire(Instant::from_millis(5)), vec![]);
        assert_eq!(
            table.expire(Instant::from_millis(30)),
            vec![Timer::GatherJoin, Timer::OrfToken, Timer::GatherConsensus]
        );
        assert!(!table.is_set(Timer::GatherJoin));
        assert_eq!(table.next_deadline(), Some(Instant::from_millis(99)));
        table.cancel(Timer::MergeDetect);
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn every_timer_has_its_own_slot() {
        let mut table = TimerTable::default();
        for (i, t) in Timer::ALL.iter().enumerate() {
            table.set(*t, Instant::from_millis(i as i64));
        }
        for (i, t) in Timer::ALL.iter().enumerate() {
            assert_eq!(table.get(*t), Some(Instant::from_millis(i as i64)));
        }
    }
}
