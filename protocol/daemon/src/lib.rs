//! `totemd`: a reference Totem peer. The only crate of the protocol stack with sockets and the
//! OS clock: it drives `totem_cpg::Node` from a udpu transport and serves libcpg clients over
//! libqb socket IPC.
//!
//! * [`config`] reads corosync.conf ([`conf_parse`] is its grammar);
//! * [`udpu`] is the transport (and the socket of `totem_knet`'s link layer when the
//!   transport is knet, with [`link_crypto`] when knet crypto is on), [`runtime`] the poll(2) loop around the node, with
//!   [`runtime::EventSource`] for other inputs such as the IPC server;
//! * [`persist`] keeps the ring seq as corosync does, [`report`] and [`log`] write corosync's
//!   log lines, [`fault`] drops received messages on request;
//! * [`ipc`] is libqb's IPC server (shm and socket types); [`cpg_service`] puts the node's
//!   CPG behind it for libcpg clients, with [`zerocopy`] buffers in `/dev/shm`, and [`cfg`](mod@cfg) for
//!   corosync's tools, and [`evs_service`] its EVS for libevs clients; [`quorum_service`] serves [`quorum`], [`votequorum`] and [`cmap`]
//!   (what `corosync-quorumtool` reads) on a second server, from `totem_votequorum`'s state;
//! * [`status`] writes the ring's state for test runners (`--status-file`);
//! * [`cli`] is the command line and start-up.

pub mod cfg;
pub mod cli;
pub mod cmap;
pub mod conf_parse;
pub mod config;
pub mod cpg_service;
pub mod evs_service;
pub mod ipc;
pub mod knet_link;
pub mod link_crypto;
pub mod log;
pub mod net_status;
pub mod persist;
pub mod quorum;
pub mod quorum_service;
pub mod report;
pub mod runtime;
pub mod sender_check;
pub mod status;
mod sys;
pub mod udpu;
pub mod votequorum;
pub mod zerocopy;

pub use sys::{pollin, SignalFd};
/// Receive-side fault injection (`--drop-*`), shared with the simulator.
pub use totem_srp::fault;
