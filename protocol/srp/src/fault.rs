//! Fault injection on receive, the run-time version of corosync's compile-time
//! `TEST_DROP_ORF_TOKEN_PERCENTAGE`, `TEST_DROP_COMMIT_TOKEN_PERCENTAGE` and
//! `TEST_DROP_MCAST_PERCENTAGE` (`exec/totemsrp.c`): a received ORF token, commit token or
//! MCAST is dropped with the given probability before the engine sees it. corosync draws
//! from `random()`; totemd and the simulator draw from a seeded generator so that a run can be
//! repeated.

use totem_wire::srp::{Header, MessageType};

/// Percentages (0-100) of received messages to drop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// ORF tokens.
    pub drop_orf_token_pct: u8,
    /// Commit tokens.
    pub drop_commit_token_pct: u8,
    /// MCASTs.
    pub drop_mcast_pct: u8,
    /// The generator's seed.
    pub seed: u64,
}

/// What was dropped so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// ORF tokens dropped.
    pub orf_tokens: u64,
    /// Commit tokens dropped.
    pub commit_tokens: u64,
    /// MCASTs dropped.
    pub mcasts: u64,
}

/// The dropper.
#[derive(Debug, Clone)]
pub struct Faults {
    config: FaultConfig,
    state: u64,
    /// Counts.
    pub stats: FaultStats,
}

impl Faults {
    /// A dropper seeded from `config.seed`.
    pub fn new(config: FaultConfig) -> Faults {
        Faults {
            config,
            state: config.seed,
            stats: FaultStats::default(),
        }
    }

    /// Does it drop anything at all?
    pub fn active(&self) -> bool {
        self.config.drop_orf_token_pct > 0
            || self.config.drop_commit_token_pct > 0
            || self.config.drop_mcast_pct > 0
    }

    /// splitmix64: small, fast and good enough to spread drops evenly.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `random() % 100 < PERCENTAGE`.
    fn roll(&mut self, pct: u8) -> bool {
        pct > 0 && self.next() % 100 < u64::from(pct)
    }

    /// Should this received datagram be dropped? Only a datagram with a valid header of a
    /// faulted type draws a number, so the draws follow the traffic of those types only.
    pub fn drop_received(&mut self, bytes: &[u8]) -> bool {
        if !self.active() {
            return false;
        }
        let Ok(header) = Header::parse(bytes) else {
            return false;
        };
        match header.message_type {
            MessageType::OrfToken if self.roll(self.config.drop_orf_token_pct) => {
                self.stats.orf_tokens += 1;
                true
            }
            MessageType::MembCommitToken if self.roll(self.config.drop_commit_token_pct) => {
                self.stats.commit_tokens += 1;
                true
            }
            MessageType::Mcast if self.roll(self.config.drop_mcast_pct) => {
                self.stats.mcasts += 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian totemsrp header (magic, version 3, type, encapsulated, nodeid 1,
    /// target 0): all the dropper reads.
    fn datagram(t: MessageType) -> Vec<u8> {
        let code = match t {
            MessageType::OrfToken => 0,
            MessageType::Mcast => 1,
            _ => 4,
        };
        vec![0x70, 0xC0, 3, code, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    }

    #[test]
    fn drops_follow_the_percentage_and_the_seed() {
        let cfg = FaultConfig {
            drop_mcast_pct: 30,
            seed: 7,
            ..FaultConfig::default()
        };
        let mcast = datagram(MessageType::Mcast);
        let token = datagram(MessageType::OrfToken);
        let mut a = Faults::new(cfg);
        let runs: Vec<bool> = (0..1000).map(|_| a.drop_received(&mcast)).collect();
        let dropped = runs.iter().filter(|d| **d).count();
        assert!((250..350).contains(&dropped), "{dropped}");
        assert_eq!(a.stats.mcasts, dropped as u64);
        // Same seed, same drops; tokens are never touched at 0 %.
        let mut b = Faults::new(cfg);
        let again: Vec<bool> = (0..1000).map(|_| b.drop_received(&mcast)).collect();
        assert_eq!(runs, again);
        assert!(!(0..100).any(|_| b.drop_received(&token)));
    }

    #[test]
    fn garbage_is_never_counted_as_dropped() {
        let mut f = Faults::new(FaultConfig {
            drop_orf_token_pct: 100,
            ..FaultConfig::default()
        });
        assert!(!f.drop_received(&[1, 2, 3]));
        assert!(f.drop_received(&datagram(MessageType::OrfToken)));
        assert!(!f.drop_received(&datagram(MessageType::MembCommitToken)));
    }
}
