//! [`CpgApi`] over `totem-client`, our pure-Rust libcpg: over libqb IPC to a real daemon
//! ([`IpcConnector`], the agent's `--client rust`) or over any other [`Transport`] (the
//! `sim` backend's in-memory one).

use std::collections::BTreeMap;
use std::time::Duration;

use totem_client::cpg::{Cpg, DispatchMode as ClientDispatchMode};
use totem_client::evs::{Evs, EvsCallback as ClientEvsCallback};
use totem_client::{IpcTransport, Transport, TransportError};
use totem_wire::exec::cpg::CpgName;
use totem_wire::ipc::cpg::{
    CpgAddress, Guarantee as WireGuarantee, IterationType as WireIteration,
};
use totem_wire::ipc::evs::EvsConfchgKind;
use totem_wire::ipc::{CsError, IPC_MAX_MSG_LEN};

use crate::api::{Callback, CpgApi, Dispatched, EventFd, EvsApi, EvsCallback, EvsKeyBytes, Handle};
use crate::values::{DispatchMode, Guarantee, IterationType};

/// How a new handle reaches its daemon (`qb_ipcc_connect` for libcpg).
pub trait Connect {
    type Transport: Transport;
    /// A new connection to the CPG service; the error is what `cpg_initialize` returns.
    fn connect(&mut self) -> Result<Self::Transport, CsError>;
    /// The pid JOIN and LEAVE carry (libcpg sends `getpid()`).
    fn pid(&self) -> u32;
}

/// libqb IPC to the daemon of this network namespace, of the type it chooses.
#[derive(Debug, Default)]
pub struct IpcConnector;

impl Connect for IpcConnector {
    type Transport = IpcTransport;

    fn connect(&mut self) -> Result<IpcTransport, CsError> {
        totem_client::connect("cpg", IPC_MAX_MSG_LEN).map_err(|e| match e {
            // qb_to_cs_error of qb_ipcc_connect's errno, as cpg_initialize returns it.
            TransportError::Refused(errno) if -errno == libc::EAGAIN => CsError::TryAgain,
            TransportError::Refused(errno) if -errno == libc::EACCES => CsError::Access,
            _ => CsError::Library,
        })
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }
}

/// How a new EVS handle reaches its daemon (libevs's connect to the `evs` service).
pub trait ConnectEvs {
    type Transport: Transport;
    /// A new connection to the EVS service; the error is what `evs_initialize` returns.
    fn connect_evs(&mut self) -> Result<Self::Transport, CsError>;
}

impl ConnectEvs for IpcConnector {
    type Transport = IpcTransport;

    fn connect_evs(&mut self) -> Result<IpcTransport, CsError> {
        // libevs's own mapping (EVS-INIT-9: no daemon is CS_ERR_TRY_AGAIN).
        totem_client::evs::connect()
    }
}

/// `totem-client` handles as libcpg's handle database keeps them: by value, finalized ones
/// kept so that later calls on them answer CS_ERR_BAD_HANDLE.
pub struct RustCpg<C: Connect> {
    connector: C,
    handles: BTreeMap<Handle, Cpg<C::Transport>>,
    next_handle: Handle,
    /// Iteration handle -> the handle that made it (libcpg's iteration calls take only
    /// the iteration handle).
    iterations: BTreeMap<u64, Handle>,
}

impl<C: Connect> RustCpg<C> {
    /// Handle values start at `first_handle` (any value: they are opaque).
    pub fn new(connector: C, first_handle: Handle) -> Self {
        RustCpg {
            connector,
            handles: BTreeMap::new(),
            next_handle: first_handle,
            iterations: BTreeMap::new(),
        }
    }

    fn cpg(&mut self, h: Handle) -> Result<&mut Cpg<C::Transport>, CsError> {
        self.handles.get_mut(&h).ok_or(CsError::BadHandle)
    }

    fn add(&mut self, cpg: Cpg<C::Transport>) -> Handle {
        let h = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(h, cpg);
        h
    }
}

fn status(r: Result<CsError, CsError>) -> CsError {
    r.unwrap_or_else(|e| e)
}

impl<C: Connect> CpgApi for RustCpg<C> {
    fn library(&self) -> String {
        "totem-client".into()
    }

    fn initialize(&mut self) -> Result<Handle, CsError> {
        let t = self.connector.connect()?;
        let cpg = Cpg::initialize(t, self.connector.pid());
        Ok(self.add(cpg))
    }

    fn model_initialize(&mut self, flags: u32, context: u64) -> Result<Handle, CsError> {
        let t = self.connector.connect()?;
        let cpg = Cpg::model_initialize(t, self.connector.pid(), flags, context)?;
        Ok(self.add(cpg))
    }

    fn finalize(&mut self, h: Handle) -> CsError {
        status(self.cpg(h).map(Cpg::finalize))
    }

    fn join(&mut self, h: Handle, group: &CpgName) -> CsError {
        status(self.cpg(h).map(|c| c.join_name(group)))
    }

    fn leave(&mut self, h: Handle, group: &CpgName) -> CsError {
        status(self.cpg(h).map(|c| c.leave_name(group)))
    }

    fn mcast_joined(&mut self, h: Handle, guarantee: Guarantee, iovecs: &[&[u8]]) -> CsError {
        let g = WireGuarantee::from(guarantee.raw());
        status(self.cpg(h).map(|c| c.mcast_joined(g, iovecs)))
    }

    fn zcb_alloc(&mut self, h: Handle, size: usize) -> Result<u64, CsError> {
        self.cpg(h)?.zcb_alloc(size)
    }

    fn zcb_write(&mut self, h: Handle, buf: u64, _: usize, data: &[u8]) -> Result<(), String> {
        self.cpg(h)
            .and_then(|c| c.zcb_write(buf, 0, data))
            .map_err(|e| e.to_string())
    }

    fn zcb_mcast_joined(
        &mut self,
        h: Handle,
        guarantee: Guarantee,
        buf: u64,
        len: usize,
    ) -> CsError {
        let g = WireGuarantee::from(guarantee.raw());
        status(self.cpg(h).map(|c| c.zcb_mcast_joined(buf, g, len)))
    }

    fn zcb_free(&mut self, h: Handle, buf: u64) -> CsError {
        status(self.cpg(h).map(|c| c.zcb_free(buf)))
    }

    fn zcb_free_foreign(&mut self, h: Handle) -> CsError {
        status(self.cpg(h).map(|c| c.zcb_free_foreign(0, 0)))
    }

    fn membership_get(&mut self, h: Handle, group: &CpgName) -> Result<Vec<CpgAddress>, CsError> {
        self.cpg(h)?.membership_get_name(group)
    }

    fn local_get(&mut self, h: Handle) -> Result<u32, CsError> {
        self.cpg(h)?.local_get()
    }

    fn context_get(&mut self, h: Handle) -> Result<u64, CsError> {
        self.cpg(h)?.context()
    }

    fn context_set(&mut self, h: Handle, context: u64) -> CsError {
        status(self.cpg(h).map(|c| c.set_context(context)))
    }

    fn fd_get(&mut self, h: Handle) -> Result<EventFd, CsError> {
        let c = self.cpg(h)?;
        if c.is_finalized() {
            return Err(CsError::BadHandle);
        }
        // A live connection's descriptor is open; the simulator's channel has none.
        Ok(EventFd {
            fd: c.transport().event_fd(),
            open: true,
        })
    }

    fn wait_event(&mut self, h: Handle, timeout: Duration) -> Result<bool, CsError> {
        self.cpg(h)?.wait_event(Some(timeout))
    }

    fn dispatch(
        &mut self,
        h: Handle,
        mode: DispatchMode,
        limit: Option<Duration>,
        on_callback: &mut dyn FnMut(&Callback) -> bool,
    ) -> Dispatched {
        let c = match self.cpg(h) {
            Ok(c) => c,
            Err(rc) => {
                return Dispatched::Returned {
                    rc,
                    finalized: None,
                }
            }
        };
        let mode = ClientDispatchMode::from_raw(mode.raw());
        let mut finalized = None;
        let rc = c.dispatch(mode, limit, |cb| {
            let fin = on_callback(cb);
            if fin {
                // totem-client finalizes right after the callback, as libcpg does from it.
                finalized = Some(CsError::Ok);
            }
            fin
        });
        let waits = matches!(mode, ClientDispatchMode::One | ClientDispatchMode::Blocking);
        if rc == CsError::Timeout && waits && limit.is_some() {
            // libcpg would still be waiting.
            return Dispatched::Blocked;
        }
        Dispatched::Returned { rc, finalized }
    }

    fn iteration_initialize(
        &mut self,
        h: Handle,
        kind: IterationType,
        group: Option<&CpgName>,
    ) -> Result<u64, CsError> {
        if group.is_some_and(CpgName::is_overlong) {
            return Err(CsError::NameTooLong);
        }
        let it = self.cpg(h)?.iteration_initialize(
            WireIteration::from(kind.raw()),
            group.map(CpgName::as_bytes),
        )?;
        self.iterations.insert(it, h);
        Ok(it)
    }

    fn iteration_next(&mut self, it: u64) -> Result<(CpgName, u32, u32), CsError> {
        let h = *self.iterations.get(&it).ok_or(CsError::BadHandle)?;
        self.cpg(h)?.iteration_next(it)
    }

    fn iteration_finalize(&mut self, it: u64) -> CsError {
        let Some(&h) = self.iterations.get(&it) else {
            return CsError::BadHandle;
        };
        status(self.cpg(h).map(|c| c.iteration_finalize(it)))
    }

    fn flow_control_state_get(&mut self, h: Handle) -> Result<bool, CsError> {
        self.cpg(h)?.flow_control_state()
    }

    fn max_atomic_msgsize_get(&mut self, h: Handle) -> Result<u32, CsError> {
        self.cpg(h)?.max_atomic_msgsize().map(|v| v as u32)
    }
}

/// `totem_client::evs` handles as libevs's handle database keeps them: by value, finalized
/// ones kept so that later calls on them answer CS_ERR_BAD_HANDLE (EVS-FIN-2).
pub struct RustEvs<C: ConnectEvs> {
    connector: C,
    handles: BTreeMap<Handle, Evs<C::Transport>>,
    next_handle: Handle,
}

impl<C: ConnectEvs> RustEvs<C> {
    /// Handle values start at `first_handle` (opaque, like libevs's).
    pub fn new(connector: C, first_handle: Handle) -> Self {
        RustEvs {
            connector,
            handles: BTreeMap::new(),
            next_handle: first_handle,
        }
    }

    fn evs(&mut self, h: Handle) -> Result<&mut Evs<C::Transport>, CsError> {
        self.handles.get_mut(&h).ok_or(CsError::BadHandle)
    }
}

/// `cs_dispatch_flags_t` as 1.4's `evs_dispatch` reads it: 1 ONE, 2 ALL, anything else
/// BLOCKING (EVS-DISP-6: the value is not validated).
fn evs_dispatch_mode(mode: DispatchMode) -> ClientDispatchMode {
    match mode.raw() {
        1 => ClientDispatchMode::One,
        2 => ClientDispatchMode::All,
        _ => ClientDispatchMode::Blocking,
    }
}

fn evs_callback(cb: &ClientEvsCallback) -> EvsCallback {
    match cb {
        ClientEvsCallback::Deliver { nodeid, data } => EvsCallback::Deliver {
            nodeid: *nodeid,
            data: data.clone(),
        },
        ClientEvsCallback::Confchg {
            kind,
            ring_nodeid,
            ring_seq,
            members,
            left,
            joined,
        } => EvsCallback::Confchg {
            kind: Some(match kind {
                EvsConfchgKind::Transitional => "TRANSITIONAL",
                EvsConfchgKind::Regular => "REGULAR",
            }),
            ring: Some((*ring_nodeid, *ring_seq)),
            members: members.clone(),
            left: left.clone(),
            joined: joined.clone(),
        },
    }
}

impl<C: ConnectEvs> EvsApi for RustEvs<C> {
    fn library(&self) -> String {
        "totem-client".into()
    }

    fn initialize(&mut self) -> Result<Handle, CsError> {
        let t = self.connector.connect_evs()?;
        let h = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(h, Evs::initialize(t));
        Ok(h)
    }

    fn finalize(&mut self, h: Handle) -> CsError {
        status(self.evs(h).map(Evs::finalize))
    }

    fn fd_get(&mut self, h: Handle) -> Result<EventFd, CsError> {
        let e = self.evs(h)?;
        if e.is_finalized() {
            return Err(CsError::BadHandle);
        }
        Ok(EventFd {
            fd: e.transport().event_fd(),
            open: true,
        })
    }

    fn wait_event(&mut self, h: Handle, timeout: Duration) -> Result<bool, CsError> {
        self.evs(h)?.wait_event(Some(timeout))
    }

    fn context_get(&mut self, h: Handle) -> Result<u64, CsError> {
        self.evs(h)?.context()
    }

    fn context_set(&mut self, h: Handle, context: u64) -> CsError {
        status(self.evs(h).map(|e| e.set_context(context)))
    }

    fn dispatch(
        &mut self,
        h: Handle,
        mode: DispatchMode,
        limit: Option<Duration>,
        on_callback: &mut dyn FnMut(&EvsCallback) -> bool,
    ) -> Dispatched {
        let e = match self.evs(h) {
            Ok(e) => e,
            Err(rc) => {
                return Dispatched::Returned {
                    rc,
                    finalized: None,
                }
            }
        };
        let mode = evs_dispatch_mode(mode);
        let mut finalized = None;
        let rc = e.dispatch(mode, limit, |cb| {
            let fin = on_callback(&evs_callback(cb));
            if fin {
                finalized = Some(CsError::Ok);
            }
            fin
        });
        let waits = matches!(mode, ClientDispatchMode::One | ClientDispatchMode::Blocking);
        if rc == CsError::Timeout && waits && limit.is_some() {
            // libevs would still be waiting.
            return Dispatched::Blocked;
        }
        Dispatched::Returned { rc, finalized }
    }

    fn join(&mut self, h: Handle, groups: &[EvsKeyBytes]) -> CsError {
        status(self.evs(h).map(|e| e.join(groups)))
    }

    fn leave(&mut self, h: Handle, groups: &[EvsKeyBytes]) -> CsError {
        status(self.evs(h).map(|e| e.leave(groups)))
    }

    fn mcast_joined(&mut self, h: Handle, guarantee: Guarantee, iovecs: &[&[u8]]) -> CsError {
        status(self.evs(h).map(|e| e.mcast_joined(guarantee.raw(), iovecs)))
    }

    fn mcast_groups(
        &mut self,
        h: Handle,
        guarantee: Guarantee,
        groups: &[EvsKeyBytes],
        iovecs: &[&[u8]],
    ) -> CsError {
        status(
            self.evs(h)
                .map(|e| e.mcast_groups(guarantee.raw(), groups, iovecs)),
        )
    }

    fn membership_get(&mut self, h: Handle, entries: usize) -> Result<(u32, Vec<u32>), CsError> {
        let (local, mut members) = self.evs(h)?.membership_get()?;
        // The C library copies min(caller's size, count) entries (EVS-MEMB-5).
        members.truncate(entries);
        Ok((local, members))
    }
}
