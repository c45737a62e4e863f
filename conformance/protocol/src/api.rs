//! [`CpgApi`]: the libcpg calls the protocol exercises, as one trait, so that the same
//! [`crate::exec::Executor`] drives libcpg through FFI (the agent's default), our pure-Rust
//! `totem-client` over libqb IPC (`totem-conform-agent --client rust`) and `totem-client`
//! over the simulator's in-memory transport (the `sim` backend).
//!
//! Handles are `cpg_handle_t` values; a value the implementation never handed out (or one
//! finalized) answers CS_ERR_BAD_HANDLE, as libcpg's handle database does. Return codes are
//! libcpg's: `Err` carries anything but CS_OK.
//!
//! [`EvsApi`] is the same for libevs (docs/evs.md), implemented over `totem-client` and by
//! the agent's libevs FFI.

use std::time::Duration;

pub use totem_client::cpg::Callback;
use totem_wire::exec::cpg::CpgName;
use totem_wire::ipc::cpg::CpgAddress;
use totem_wire::ipc::CsError;

use crate::values::{DispatchMode, Guarantee, IterationType};

/// `cpg_handle_t`.
pub type Handle = u64;

/// What `cpg_dispatch` came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// It returned `rc`; `finalized` is the return code of the `cpg_finalize` made inside a
    /// callback when `on_callback` asked for one.
    Returned {
        rc: CsError,
        finalized: Option<CsError>,
    },
    /// It was still waiting when `limit` passed (only an implementation that can give up a
    /// call returns this; libcpg's C call cannot be abandoned).
    Blocked,
}

/// The descriptor `cpg_fd_get` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFd {
    /// The descriptor to poll; `None` for an in-memory event channel (the simulator's).
    pub fd: Option<i32>,
    /// Whether it names an open descriptor (an in-memory channel of a live handle is).
    pub open: bool,
}

/// The libcpg calls of cpg.h that the agent protocol makes.
pub trait CpgApi {
    /// What implements the API, for the `hello` event (`libcpg.so.4`, `totem-client`).
    fn library(&self) -> String;
    /// `cpg_initialize` with deliver and confchg callbacks.
    fn initialize(&mut self) -> Result<Handle, CsError>;
    /// `cpg_model_initialize(CPG_MODEL_V1, flags, context)`: the totem confchg callback too.
    fn model_initialize(&mut self, flags: u32, context: u64) -> Result<Handle, CsError>;
    fn finalize(&mut self, h: Handle) -> CsError;
    /// `cpg_join` with the `struct cpg_name` as given (its length field may lie).
    fn join(&mut self, h: Handle, group: &CpgName) -> CsError;
    fn leave(&mut self, h: Handle, group: &CpgName) -> CsError;
    /// `cpg_mcast_joined` of the concatenation of `iovecs` (each an iovec entry).
    fn mcast_joined(&mut self, h: Handle, guarantee: Guarantee, iovecs: &[&[u8]]) -> CsError;
    /// `cpg_zcb_alloc`: the buffer's identity (libcpg: its address) for the calls below.
    fn zcb_alloc(&mut self, h: Handle, size: usize) -> Result<u64, CsError>;
    /// Writes `data` at the start of a buffer `zcb_alloc` returned with `capacity` bytes
    /// (what a C caller does through the pointer).
    fn zcb_write(
        &mut self,
        h: Handle,
        buf: u64,
        capacity: usize,
        data: &[u8],
    ) -> Result<(), String>;
    fn zcb_mcast_joined(
        &mut self,
        h: Handle,
        guarantee: Guarantee,
        buf: u64,
        len: usize,
    ) -> CsError;
    fn zcb_free(&mut self, h: Handle, buf: u64) -> CsError;
    /// `cpg_zcb_free` of memory libcpg never handed out, whose would-be header (the 56
    /// bytes before the pointer) is zeros.
    fn zcb_free_foreign(&mut self, h: Handle) -> CsError;
    fn membership_get(&mut self, h: Handle, group: &CpgName) -> Result<Vec<CpgAddress>, CsError>;
    fn local_get(&mut self, h: Handle) -> Result<u32, CsError>;
    fn context_get(&mut self, h: Handle) -> Result<u64, CsError>;
    fn context_set(&mut self, h: Handle, context: u64) -> CsError;
    fn fd_get(&mut self, h: Handle) -> Result<EventFd, CsError>;
    /// Whether an event is pending within `timeout` (polling `cpg_fd_get`'s descriptor);
    /// `Err` when the handle has no descriptor.
    fn wait_event(&mut self, h: Handle, timeout: Duration) -> Result<bool, CsError>;
    /// `cpg_dispatch`, calling `on_callback` for every callback, synchronously, inside the
    /// call; `true` from it finalizes the handle there and then. `limit`: give up a call
    /// still waiting after that long ([`Dispatched::Blocked`]), where the implementation
    /// can; `None` waits as libcpg does.
    fn dispatch(
        &mut self,
        h: Handle,
        mode: DispatchMode,
        limit: Option<Duration>,
        on_callback: &mut dyn FnMut(&Callback) -> bool,
    ) -> Dispatched;
    /// `cpg_iteration_initialize`; `group` is NULL when `None`.
    fn iteration_initialize(
        &mut self,
        h: Handle,
        kind: IterationType,
        group: Option<&CpgName>,
    ) -> Result<u64, CsError>;
    /// `cpg_iteration_next`: (group, nodeid, pid).
    fn iteration_next(&mut self, it: u64) -> Result<(CpgName, u32, u32), CsError>;
    fn iteration_finalize(&mut self, it: u64) -> CsError;
    /// `cpg_flow_control_state_get`: enabled?
    fn flow_control_state_get(&mut self, h: Handle) -> Result<bool, CsError>;
    fn max_atomic_msgsize_get(&mut self, h: Handle) -> Result<u32, CsError>;
}

/// A callback `evs_dispatch` made (docs/evs.md §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsCallback {
    /// `evs_deliver_fn`: the sender's nodeid (EVS-INIT-5) and the message.
    Deliver { nodeid: u32, data: Vec<u8> },
    /// `evs_confchg_fn`: node lists, and what the implementation tells besides them.
    Confchg {
        /// `TRANSITIONAL` / `REGULAR`; `None` where the API cannot tell (the C callback).
        kind: Option<&'static str>,
        /// The `ring_id` argument as (nodeid, seq); `None` when it was NULL (1.4's libevs
        /// always passed NULL, EVS-CODE-3).
        ring: Option<(u32, u64)>,
        members: Vec<u32>,
        left: Vec<u32>,
        joined: Vec<u32>,
    },
}

/// A 32-byte `struct evs_group` key.
pub type EvsKeyBytes = [u8; 32];

/// The libevs calls of evs.h (corosync 1.4, docs/evs.md §2.2). Handles are `evs_handle_t`
/// values; one never handed out, or finalized, answers CS_ERR_BAD_HANDLE (EVS-INIT-3,
/// EVS-FIN-2).
pub trait EvsApi {
    /// What implements the API (`libevs.so.4`, `totem-client`).
    fn library(&self) -> String;
    /// `evs_initialize` with both callbacks.
    fn initialize(&mut self) -> Result<Handle, CsError>;
    fn finalize(&mut self, h: Handle) -> CsError;
    fn fd_get(&mut self, h: Handle) -> Result<EventFd, CsError>;
    /// Whether an event is pending within `timeout` (polling `evs_fd_get`'s descriptor).
    fn wait_event(&mut self, h: Handle, timeout: Duration) -> Result<bool, CsError>;
    fn context_get(&mut self, h: Handle) -> Result<u64, CsError>;
    fn context_set(&mut self, h: Handle, context: u64) -> CsError;
    /// `evs_dispatch`, as [`CpgApi::dispatch`]: `on_callback` returning true finalizes the
    /// handle from inside the callback.
    fn dispatch(
        &mut self,
        h: Handle,
        mode: DispatchMode,
        limit: Option<Duration>,
        on_callback: &mut dyn FnMut(&EvsCallback) -> bool,
    ) -> Dispatched;
    fn join(&mut self, h: Handle, groups: &[EvsKeyBytes]) -> CsError;
    fn leave(&mut self, h: Handle, groups: &[EvsKeyBytes]) -> CsError;
    /// `evs_mcast_joined` of the concatenation of `iovecs`.
    fn mcast_joined(&mut self, h: Handle, guarantee: Guarantee, iovecs: &[&[u8]]) -> CsError;
    fn mcast_groups(
        &mut self,
        h: Handle,
        guarantee: Guarantee,
        groups: &[EvsKeyBytes],
        iovecs: &[&[u8]],
    ) -> CsError;
    /// `evs_membership_get` with an array of `entries` nodeids: (local nodeid, members).
    fn membership_get(&mut self, h: Handle, entries: usize) -> Result<(u32, Vec<u32>), CsError>;
}
