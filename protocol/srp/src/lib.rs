//! `totem-srp`: the Totem single-ring ordering and membership protocol, sans-IO.
//!
//! Deterministic: no sockets, no OS clock, no global RNG. Time is an input ([`Instant`]),
//! every timer corosync arms lives in one [`TimerTable`] keyed by [`Timer`], and the
//! configuration is derived exactly as `exec/totemconfig.c::totem_volatile_config_read`
//! derives it ([`SrpConfig`]).
//!
//! [`Srp`] is the ring: Gather, Commit, Recovery and Operational, the token with its
//! retransmit list and flow control, agreed-order delivery and configuration changes.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod config;
mod engine;
pub mod fault;
pub mod membership;
pub mod seq;
pub mod sort_queue;
mod time;
mod timer;

pub use config::{ConfigError, SrpConfig, SrpConfigBuilder, SEQNO_START_NEAR_ROLLOVER};
pub use engine::{ConfigurationKind, Destination, Event, MembState, QueueFull, Srp, Transmit};
pub use time::{Duration, Instant};
pub use timer::{Timer, TimerTable};
