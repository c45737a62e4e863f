//! Totem timing and flow-control configuration, derived exactly as corosync 3.1.7 derives it
//! from `corosync.conf` (`exec/totemconfig.c::totem_volatile_config_read` and
//! `::totem_volatile_config_validate`). Values are milliseconds unless the name says
//! otherwise, as in corosync.

use core::fmt;

use crate::time::Duration;

/// `TOKEN_TIMEOUT`.
const TOKEN_MS_DEFAULT: u32 = 3000;
/// `TOKEN_COEFFICIENT`: added per node beyond two.
const TOKEN_COEFFICIENT_MS_DEFAULT: u32 = 650;
/// `TOKEN_RETRANSMITS_BEFORE_LOSS_CONST`.
const TOKEN_RETRANSMITS_BEFORE_LOSS_DEFAULT: u32 = 4;
/// `TOKEN_WARNING`, percent of the token timeout.
const TOKEN_WARNING_PERCENT_DEFAULT: u32 = 75;
/// `JOIN_TIMEOUT`.
const JOIN_MS_DEFAULT: u32 = 50;
/// `MERGE_TIMEOUT`.
const MERGE_MS_DEFAULT: u32 = 200;
/// `DOWNCHECK_TIMEOUT`.
const DOWNCHECK_MS_DEFAULT: u32 = 1000;
/// `FAIL_TO_RECV_CONST`: token rotations with an unchanged aru before "FAILED TO RECEIVE".
const FAIL_RECV_CONST_DEFAULT: u32 = 2500;
/// `SEQNO_UNCHANGED_CONST` (`exec/totemsrp.c`): idle rotations before the token is held.
const SEQNO_UNCHANGED_CONST_DEFAULT: u32 = 30;
/// `MAX_NETWORK_DELAY`.
const MAX_NETWORK_DELAY_MS_DEFAULT: u32 = 50;
/// `WINDOW_SIZE`.
const WINDOW_SIZE_DEFAULT: u32 = 50;
/// `MAX_MESSAGES`.
const MAX_MESSAGES_DEFAULT: u32 = 17;
/// `MISS_COUNT_CONST`.
const MISS_COUNT_CONST_DEFAULT: u32 = 5;
/// totemsrp.c's commented-out test setting of `SEQNO_START_MSG` / `SEQNO_START_TOKEN`
/// ("These can be used ot test different rollover points"): 0x200 messages before the
/// 32-bit sequence numbers wrap.
pub const SEQNO_START_NEAR_ROLLOVER: u32 = 0xFFFF_FE00;
/// Linux `HZ` as corosync's build assumes it.
const HZ: u32 = 100;
/// `MINIMUM_TIMEOUT`: `(1000 / HZ) * 3`.
const MINIMUM_TIMEOUT_MS: u32 = (1000 / HZ) * 3;
/// `MINIMUM_TIMEOUT_HOLD`: `(int)(MINIMUM_TIMEOUT * 0.8 - 1000 / HZ)`.
const MINIMUM_TIMEOUT_HOLD_MS: u32 = 14;

/// The derived, validated configuration the engine runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrpConfig {
    /// Nodes in the nodelist (the token coefficient depends on it).
    pub node_count: u32,
    /// Token loss timeout, after the coefficient.
    pub token_ms: u32,
    /// `token_warning`, percent of `token_ms` (0 disables the warning).
    pub token_warning_percent: u32,
    /// `token_retransmits_before_loss_const`.
    pub token_retransmits_before_loss: u32,
    /// Resend the last token after this long without one.
    pub token_retransmit_ms: u32,
    /// How long the representative holds an idle token.
    pub hold_ms: u32,
    /// JOIN resend interval in GATHER.
    pub join_ms: u32,
    /// Consensus timeout in GATHER.
    pub consensus_ms: u32,
    /// Merge-detect interval of an idle representative.
    pub merge_ms: u32,
    /// Interface re-check interval.
    pub downcheck_ms: u32,
    /// `fail_recv_const`.
    pub fail_recv_const: u32,
    /// `seqno_unchanged_const`.
    pub seqno_unchanged_const: u32,
    /// `max_network_delay`.
    pub max_network_delay_ms: u32,
    /// `window_size`: messages a rotation may carry.
    pub window_size: u32,
    /// `max_messages`: messages one node may send per token visit.
    pub max_messages: u32,
    /// `miss_count_const`: tokens a gap must survive before it is requested again.
    pub miss_count_const: u32,
    /// `send_join`: 0, or the upper bound of a random delay before each JOIN.
    pub send_join_ms: u32,
    /// `heartbeat_failures_allowed` (0: heartbeat off).
    pub heartbeat_failures_allowed: u32,
    /// `block_unlisted_ips`.
    pub block_unlisted_ips: bool,
    /// `cancel_token_hold_on_retransmit`.
    pub cancel_token_hold_on_retransmit: bool,
    /// `SEQNO_START_MSG` = `SEQNO_START_TOKEN`: where each new ring's message and token
    /// sequence numbers start. 0 in corosync; a compile-time test setting there, a run-time
    /// one here. Every member of a ring must use the same value.
    pub seqno_start: u32,
}

/// A value corosync would refuse, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The corosync.conf key.
    pub key: &'static str,
    /// Why, in corosync's words.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "totem.{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The `totem { }` keys as written in corosync.conf; `None` means "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SrpConfigBuilder {
    /// Nodes in the nodelist.
    pub node_count: u32,
    /// `token`.
    pub token_ms: Option<u32>,
    /// `token_coefficient`.
    pub token_coefficient_ms: Option<u32>,
    /// `token_warning`.
    pub token_warning_percent: Option<u32>,
    /// `token_retransmits_before_loss_const`.
    pub token_retransmits_before_loss: Option<u32>,
    /// `token_retransmit`.
    pub token_retransmit_ms: Option<u32>,
    /// `hold`.
    pub hold_ms: Option<u32>,
    /// `join`.
    pub join_ms: Option<u32>,
    /// `consensus`.
    pub consensus_ms: Option<u32>,
    /// `merge`.
    pub merge_ms: Option<u32>,
    /// `downcheck`.
    pub downcheck_ms: Option<u32>,
    /// `fail_recv_const`.
    pub fail_recv_const: Option<u32>,
    /// `seqno_unchanged_const`.
    pub seqno_unchanged_const: Option<u32>,
    /// `max_network_delay`.
    pub max_network_delay_ms: Option<u32>,
    /// `window_size`.
    pub window_size: Option<u32>,
    /// `max_messages`.
    pub max_messages: Option<u32>,
    /// `miss_count_const`.
    pub miss_count_const: Option<u32>,
    /// `send_join`.
    pub send_join_ms: Option<u32>,
    /// `heartbeat_failures_allowed`.
    pub heartbeat_failures_allowed: Option<u32>,
    /// `block_unlisted_ips`.
    pub block_unlisted_ips: Option<bool>,
    /// `cancel_token_hold_on_retransmit`.
    pub cancel_token_hold_on_retransmit: Option<bool>,
    /// Not a corosync.conf key: see [`SrpConfig::seqno_start`].
    pub seqno_start: Option<u32>,
}

impl SrpConfigBuilder {
    /// Nothing set, for a nodelist of `node_count` nodes.
    pub fn new(node_count: u32) -> SrpConfigBuilder {
        SrpConfigBuilder {
            node_count,
            ..SrpConfigBuilder::default()
        }
    }

    /// Derives and validates, in `totem_volatile_config_read`'s order: the coefficient is
    /// added to the token timeout (configured or default) when the nodelist has more than
    /// two nodes, and `token_retransmit`, `hold` and `consensus` are derived from the result.
    pub fn build(&self) -> Result<SrpConfig, ConfigError> {
        let retransmits = self
            .token_retransmits_before_loss
            .unwrap_or(TOKEN_RETRANSMITS_BEFORE_LOSS_DEFAULT);
        let mut token_ms = self.token_ms.unwrap_or(TOKEN_MS_DEFAULT);
        if self.node_count > 2 {
            let coefficient = self
                .token_coefficient_ms
                .unwrap_or(TOKEN_COEFFICIENT_MS_DEFAULT);
            token_ms = token_ms.saturating_add((self.node_count - 2).saturating_mul(coefficient));
        }
        // C: (int)(token_timeout / (token_retransmits_before_loss_const + 0.2)), in double.
        let token_retransmit_ms = self
            .token_retransmit_ms
            .unwrap_or_else(|| (f64::from(token_ms) / (f64::from(retransmits) + 0.2)) as u32);
        // C: (int)(token_retransmit_timeout * 0.8 - (1000/HZ)); negative truncates toward 0
        // and is then refused by validation, as corosync refuses it.
        let hold_ms = self.hold_ms.unwrap_or_else(|| {
            (f64::from(token_retransmit_ms) * 0.8 - f64::from(1000 / HZ)).max(0.0) as u32
        });
        // C: (int)(float)(1.2 * token_timeout): the product goes through a float.
        let consensus_ms = self
            .consensus_ms
            .unwrap_or_else(|| ((1.2 * f64::from(token_ms)) as f32) as u32);
        let config = SrpConfig {
            node_count: self.node_count,
            token_ms,
            token_warning_percent: self
                .token_warning_percent
                .unwrap_or(TOKEN_WARNING_PERCENT_DEFAULT),
            token_retransmits_before_loss: retransmits,
            token_retransmit_ms,
            hold_ms,
            join_ms: self.join_ms.unwrap_or(JOIN_MS_DEFAULT),
            consensus_ms,
            merge_ms: self.merge_ms.unwrap_or(MERGE_MS_DEFAULT),
            downcheck_ms: self.downcheck_ms.unwrap_or(DOWNCHECK_MS_DEFAULT),
            fail_recv_const: self.fail_recv_const.unwrap_or(FAIL_RECV_CONST_DEFAULT),
            seqno_unchanged_const: self
                .seqno_unchanged_const
                .unwrap_or(SEQNO_UNCHANGED_CONST_DEFAULT),
            max_network_delay_ms: self
                .max_network_delay_ms
                .unwrap_or(MAX_NETWORK_DELAY_MS_DEFAULT),
            window_size: self.window_size.unwrap_or(WINDOW_SIZE_DEFAULT),
            max_messages: self.max_messages.unwrap_or(MAX_MESSAGES_DEFAULT),
            miss_count_const: self.miss_count_const.unwrap_or(MISS_COUNT_CONST_DEFAULT),
            send_join_ms: self.send_join_ms.unwrap_or(0),
            heartbeat_failures_allowed: self.heartbeat_failures_allowed.unwrap_or(0),
            block_unlisted_ips: self.block_unlisted_ips.unwrap_or(true),
            cancel_token_hold_on_retransmit: self.cancel_token_hold_on_retransmit.unwrap_or(false),
            seqno_start: self.seqno_start.unwrap_or(0),
        };
        config.validate()?;
        Ok(config)
    }
}

impl SrpConfig {
    /// corosync's defaults for a nodelist of `node_count` nodes.
    pub fn defaults(node_count: u32) -> SrpConfig {
        // The defaults always validate (checked by a test).
        SrpConfigBuilder::new(node_count)
            .build()
            .unwrap_or_else(|e| unreachable!("corosync's defaults are valid: {e}"))
    }

    /// `totem_volatile_config_validate`: the same bounds, the same messages.
    fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |key: &'static str, what: &str, value: u32, min: u32| {
            if value < min {
                Err(ConfigError {
                    key,
                    reason: format!(
                        "The {what} parameter ({value} ms) may not be less than ({min} ms)."
                    ),
                })
            } else {
                Ok(())
            }
        };
        at_least(
            "max_network_delay",
            "max_network_delay",
            self.max_network_delay_ms,
            MINIMUM_TIMEOUT_MS,
        )?;
        at_least("token", "token timeout", self.token_ms, MINIMUM_TIMEOUT_MS)?;
        if self.token_warning_percent > 100 {
            return Err(ConfigError {
                key: "token_warning",
                reason: format!(
                    "The token warning parameter ({}%) must be between 0 (disabled) and 100.",
                    self.token_warning_percent
                ),
            });
        }
        at_least(
            "token_retransmit",
            "token retransmit timeout",
            self.token_retransmit_ms,
            MINIMUM_TIMEOUT_MS,
        )?;
        at_least(
            "hold",
            "token hold timeout",
            self.hold_ms,
            MINIMUM_TIMEOUT_HOLD_MS,
        )?;
        at_least("join", "join timeout", self.join_ms, MINIMUM_TIMEOUT_MS)?;
        at_least(
            "consensus",
            "consensus timeout",
            self.consensus_ms,
            MINIMUM_TIMEOUT_MS,
        )?;
        if self.consensus_ms < self.join_ms {
            return Err(ConfigError {
                key: "consensus",
                reason: format!(
                    "The consensus timeout parameter ({} ms) may not be less than join timeout ({} ms).",
                    self.consensus_ms, self.join_ms
                ),
            });
        }
        at_least("merge", "merge timeout", self.merge_ms, MINIMUM_TIMEOUT_MS)?;
        at_least(
            "downcheck",
            "downcheck timeout",
            self.downcheck_ms,
            MINIMUM_TIMEOUT_MS,
        )?;
        Ok(())
    }

    /// The token loss timeout.
    pub fn token(&self) -> Duration {
        Duration::from_millis(self.token_ms.into())
    }

    /// When corosync logs "Token has not been received in N ms" (0 when disabled).
    pub fn token_warning(&self) -> Duration {
        Duration::from_millis(
            u64::from(self.token_ms) * u64::from(self.token_warning_percent) / 100,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference: spec §2.8, values read from a 2-node Debian 12 corosync's debug log.
    #[test]
    fn two_nodes_get_corosyncs_logged_values() {
        let c = SrpConfig::defaults(2);
        assert_eq!(
            (c.token_ms, c.token_retransmit_ms, c.hold_ms, c.consensus_ms),
            (3000, 714, 561, 3600)
        );
        assert_eq!((c.join_ms, c.merge_ms, c.downcheck_ms), (50, 200, 1000));
        assert_eq!((c.fail_recv_const, c.seqno_unchanged_const), (2500, 30));
        assert_eq!(
            (c.window_size, c.max_messages, c.miss_count_const),
            (50, 17, 5)
        );
        assert_eq!(c.token_warning(), Duration::from_millis(2250));
    }

    // Reference: corosync-lab.md, 3 nodes: runtime.config.totem.hold = 685, and NODEDOWN after
    // token 3650 ms + consensus 4380 ms.
    #[test]
    fn the_coefficient_applies_beyond_two_nodes() {
        let c = SrpConfig::defaults(3);
        assert_eq!(
            (c.token_ms, c.token_retransmit_ms, c.hold_ms, c.consensus_ms),
            (3650, 869, 685, 4380)
        );
        let mut b = SrpConfigBuilder::new(5);
        b.token_ms = Some(1000);
        b.token_coefficient_ms = Some(0);
        let c = b.build().unwrap();
        assert_eq!((c.token_ms, c.consensus_ms), (1000, 1200));
    }

    #[test]
    fn explicit_values_win_over_derivations() {
        let mut b = SrpConfigBuilder::new(2);
        b.token_ms = Some(1000);
        b.hold_ms = Some(100);
        b.consensus_ms = Some(2000);
        let c = b.build().unwrap();
        assert_eq!(
            (c.token_retransmit_ms, c.hold_ms, c.consensus_ms),
            (238, 100, 2000)
        );
    }

    #[test]
    fn corosyncs_bounds_are_refused_with_its_messages() {
        let mut b = SrpConfigBuilder::new(2);
        b.token_ms = Some(20);
        let e = b.build().unwrap_err();
        assert_eq!(e.key, "token");
        assert_eq!(
            e.reason,
            "The token timeout parameter (20 ms) may not be less than (30 ms)."
        );
        let mut b = SrpConfigBuilder::new(2);
        b.join_ms = Some(500);
        b.consensus_ms = Some(400);
        assert_eq!(b.build().unwrap_err().key, "consensus");
        let mut b = SrpConfigBuilder::new(2);
        b.token_warning_percent = Some(101);
        assert_eq!(b.build().unwrap_err().key, "token_warning");
        // A token so short that the derived hold drops under MINIMUM_TIMEOUT_HOLD.
        let mut b = SrpConfigBuilder::new(2);
        b.token_ms = Some(100);
        assert_eq!(b.build().unwrap_err().key, "token_retransmit");
    }
}
