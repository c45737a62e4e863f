//! `totem-agent-protocol`: the contract between the conformance runner (`totem-conform`)
//! and an *agent*, one CPG client process it drives. Any implementation of the CPG client
//! API can be put through the suite by speaking it (conformance/README.md, "Agent
//! protocol"; the JSON schema in `schema/` is generated from these types and checked
//! against them by `cargo test`).
//!
//! * [`command`]: the [`Request`] lines the runner writes to the agent's stdin.
//! * [`event`]: the [`Line`]s the agent writes to stdout (`hello` first).
//! * [`values`]: return codes and the C enums, open to invalid values on purpose.
//! * [`payload`]: the bytes a `mcast` sends and a receiver checks.
//! * [`api`]: [`CpgApi`], the libcpg calls; [`client`] implements it over `totem-client`
//!   (the agent's libcpg FFI is the other implementation).
//! * [`exec`]: the [`Executor`], the protocol's one implementation over any `CpgApi`; the
//!   agent and the runner's `sim` backend both run it.
//! * EVS (docs/evs.md): the `evs_*` commands and events, [`EvsApi`] (libevs's calls;
//!   [`client::RustEvs`] over `totem-client`, the agent's libevs FFI), run by the same
//!   executor ([`evs_exec`]).
//! * Pacemaker's other services ([`svc`]): `quorum_*`, `cmap_*` and `cfg_*` commands and
//!   their notification events, [`svc::SvcApi`] (libquorum, libcmap, libcfg).

pub mod api;
pub mod client;
pub mod command;
pub mod event;
pub mod evs_exec;
pub mod exec;
pub mod payload;
pub mod svc;
pub mod svc_types;
pub mod target;
pub mod values;

pub use api::{CpgApi, Dispatched, EventFd, EvsApi, EvsCallback, Handle};
pub use command::{Command, Request};
pub use event::{CallResult, Event, Line, Outputs};
pub use exec::{Executor, Flow, Host};
pub use values::Rc;

/// The protocol's version, sent in `hello`. It changes when a command or event changes
/// meaning or loses a field; the runner refuses an agent of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// The agent's exit code when it cannot load its CPG library (the runner: *skipped*).
pub const EXIT_NO_LIBCPG: i32 = 2;
/// The agent's exit code when a guarded call outlived its watchdog.
pub const EXIT_WATCHDOG: i32 = 3;
/// Largest `zcb_alloc` an agent makes: libcpg writes that many bytes into /dev/shm and
/// asserts on failure (corosync-lab.md, gotcha 4), so bigger ones are refused.
pub const ZCB_ALLOC_MAX: usize = 128 << 20;

/// The JSON schema of the commands (`schema/command.schema.json`).
pub fn command_schema() -> serde_json::Value {
    let mut s = serde_json::to_value(schemars::schema_for!(Request)).unwrap_or_default();
    s["title"] = format!("totem-conform agent protocol v{PROTOCOL_VERSION}: a command line").into();
    s
}

/// The JSON schema of the agent's output lines (`schema/event.schema.json`).
pub fn event_schema() -> serde_json::Value {
    let mut s = serde_json::to_value(schemars::schema_for!(Line)).unwrap_or_default();
    s["title"] = format!("totem-conform agent protocol v{PROTOCOL_VERSION}: an output line").into();
    s
}
