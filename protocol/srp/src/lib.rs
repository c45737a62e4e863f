//! `totem-srp`: the Totem single-ring ordering and membership protocol, sans-IO.
//!
//! Deterministic: no sockets, no OS clock, no global RNG. Time is an input ([`Instant`]),
//! every timer corosync arms lives in one [`TimerTable`] keyed by [`Timer`], and the
//! configuration is derived exactly as `exec/totemconfig.c::totem_volatile_config_read`
//! derives it ([`SrpConfig`]).
//!
//! This crate grows with issue #4 (the ring state machine: Gather, Commit, Recovery,
//! Operational). What is here now is the part every later piece stands on.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod config;
pub mod membership;
pub mod seq;
mod time;
mod timer;

pub use config::{ConfigError, SrpConfig, SrpConfigBuilder};
pub use time::{Duration, Instant};
pub use timer::{Timer, TimerTable};
