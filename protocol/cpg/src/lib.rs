//! `totem-cpg`: what corosync 3.1.7 runs above the ring, composed with [`totem_srp::Srp`] into
//! one sans-IO [`Node`]: totempg (packing, fragmentation and the two assembly sets around
//! sync), the exec layer's group "a", sync v2 (service build and barrier rounds), and the
//! CPG service with its process registry, confchg computation and sync; beside it, the EVS
//! service of corosync 1.4 (docs/evs.md), our extension, driven through the `evs_*` calls.
//!
//! Local clients reach CPG through [`Node::ipc_request`] with libqb IPC request bytes, as
//! libcpg sends them (module `service`), and EVS through [`Node::evs_ipc_request`] with
//! libevs's (module `evs_service`).
//!
//! The call protocol is the ring's: `handle_datagram` / `handle_timeout` / client commands
//! in, then drain `poll_transmit` and `poll_event`, then `poll_timeout`. `poll_output`
//! instead of `poll_event` also yields the votequorum exec messages delivered, in order
//! with the events: votequorum's state is the user's, and [`Node::set_nodeinfo`] tells the
//! node what its own NODEINFO says.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod cpg;
mod evs;
mod evs_service;
mod iteration;
mod node;
mod service;
mod sync;

pub use cpg::{ClientEvent, ConnId, CpgAddress, CpgError};
pub use evs::{EvsConfchg, EvsConnId, EvsError, EvsEvent, EVS_JOIN_GROUPS_MAX};
pub use evs_service::{evs_cs_error, evs_event_bytes};
pub use node::{CfgExec, Node, NodeConfig, NodeEvent, NodeOutput, OwnNodeInfo, TotempgNote};
pub use service::{event_bytes, LibReply, NoZeroCopy, ZeroCopyMemory};
pub use totem_wire::exec::cpg::{ConfchgReason, CpgName};
pub use totem_wire::exec::evs::EvsGroup;
pub use totem_wire::exec::votequorum::{NodeInfoFlags, VotequorumMessage};
