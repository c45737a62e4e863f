//! `totemd`: a reference Totem peer. The only crate of the protocol stack with sockets and the
//! OS clock: it drives `totem_cpg::Node` from a udpu transport and serves libcpg clients over
//! libqb socket IPC.
//!
//! * [`config`] reads corosync.conf ([`conf_parse`] is its grammar);
//! * [`udpu`] is the transport, [`runtime`] the poll(2) loop around the node, with
//!   [`runtime::EventSource`] for other inputs such as the IPC server;
//! * [`persist`] keeps the ring seq as corosync does, [`report`] and [`log`] write corosync's
//!   log lines, [`fault`] drops received messages on request;
//! * [`cli`] is the command line and start-up.

pub mod cli;
pub mod conf_parse;
pub mod config;
pub mod fault;
pub mod ipc;
pub mod log;
pub mod persist;
pub mod report;
pub mod runtime;
mod sys;
pub mod udpu;

pub use sys::{pollin, SignalFd};
