//! Many seeds on every core, results in seed order.
//!
//! Each seed is independent and deterministic ([`run_seed`]), so seeds can run on as many
//! threads as there are cores; only their order of completion varies. Workers take the next
//! seed from a shared counter and send a compact [`SeedOutcome`] (never the trace, which can
//! be large); the caller's thread puts them back in seed order, so the output of a sweep is
//! the same whatever the number of jobs, and a replay line names the seed to run alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use crate::checkers::Violation;
use crate::scenario::run_seed;

/// What a sweep keeps of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Faults injected.
    pub faults: u64,
    /// Messages multicast.
    pub messages: u64,
    /// Simulated node time (µs).
    pub node_micros: u128,
    /// Whether a node's socket buffer overflowed.
    pub overflowed: bool,
    /// Broken properties.
    pub violations: Vec<Violation>,
    /// With the determinism check: whether a second run gave a different trace.
    pub nondeterministic: bool,
}

impl SeedOutcome {
    /// Violations that corosync 3.1.7 does not share: bugs of ours.
    pub fn open(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.corosync_equivalent.is_none())
    }
}

fn run_one(seed: u64, determinism: bool) -> SeedOutcome {
    let (report, _) = run_seed(seed, false);
    let nondeterministic = determinism && run_seed(seed, false).0.trace != report.trace;
    SeedOutcome {
        seed,
        faults: report.faults,
        messages: report.messages_sent,
        node_micros: report.stats.node_micros,
        overflowed: report.stats.overflowed > 0,
        violations: report.violations,
        nondeterministic,
    }
}

/// Runs seeds `start .. start + seeds` on `jobs` threads (at least 1) and calls `each` with
/// every outcome in seed order, on the caller's thread.
pub fn sweep(
    start: u64,
    seeds: u64,
    jobs: usize,
    determinism: bool,
    mut each: impl FnMut(SeedOutcome),
) {
    let end = start.saturating_add(seeds);
    let jobs = jobs.clamp(1, seeds.max(1) as usize);
    if jobs == 1 {
        (start..end).for_each(|seed| each(run_one(seed, determinism)));
        return;
    }
    let next = AtomicU64::new(start);
    let (tx, rx) = mpsc::channel::<SeedOutcome>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end || tx.send(run_one(seed, determinism)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Outcomes that arrived ahead of their turn; at most about one per job waits here.
        let mut waiting = BTreeMap::new();
        let mut turn = start;
        for outcome in rx {
            waiting.insert(outcome.seed, outcome);
            while let Some(o) = waiting.remove(&turn) {
                each(o);
                turn += 1;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_jobs_give_the_outcomes_of_one_in_the_same_order() {
        let mut one = Vec::new();
        sweep(40, 6, 1, false, |o| one.push(o));
        let mut two = Vec::new();
        sweep(40, 6, 2, false, |o| two.push(o));
        assert_eq!(
            one.iter().map(|o| o.seed).collect::<Vec<_>>(),
            (40..46).collect::<Vec<_>>()
        );
        assert_eq!(one, two);
    }
}
