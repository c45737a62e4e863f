//! `totem-sim`: a deterministic simulator of [`totem_cpg::Node`]s.
//!
//! One seed, one run: virtual time, a network whose delays, losses, duplicates and
//! partitions come from the seed ([`rng::Rng`]), scripted faults (crash, restart with the
//! persisted ring seq, pause, partitions, asymmetric cuts), CPG clients, and checkers
//! ([`checkers`]) for agreed order, virtual synchrony, self-delivery, per-sender FIFO, no
//! duplicate or invented message, membership agreement and liveness. A run's traffic can be
//! written as a pcap ([`pcap::PcapWriter`]) that `totem-inspect` decodes.
//!
//! Each node's daemon runs what totemd runs around its `Node`: votequorum
//! (`totem_votequorum`, [`Sim::quorate`]) and, with [`Sim::use_knet`], knet's link layer
//! (`totem_knet`) between the engine and the network.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod checkers;
mod daemon;
pub mod pcap;
pub mod rng;
pub mod scenario;
mod sim;
pub mod sweep;

pub use sim::{
    IpcError, NetworkOptions, QuorumNotes, SendBuffer, SharedFile, SharedMemory, Sim, SimStats,
    Timings, TraceEntry, TraceEvent, QUORUM_NOTES_MAX,
};
