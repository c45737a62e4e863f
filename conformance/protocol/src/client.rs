//! [`CpgApi`] over `totem-client`, our pure-Rust libcpg: over libqb IPC to a real daemon
//! ([`IpcConnector`], the agent's `--client rust`) or over any other [`Transport`] (the
//! `sim` backend's in-memory one).

use std::collections::BTreeMap;
use std::time::Duration;

use totem_client::cpg::{Cpg, DispatchMode as ClientDispatchMode};
use totem_client::{IpcTransport, Transport, TransportError};
use totem_wire::exec::cpg::CpgName;
use totem_wire::ipc::cpg::{
    CpgAddress, Guarantee as WireGuarantee, IterationType as WireIteration,
};
use totem_wire::ipc::{CsError, IPC_MAX_MSG_LEN};

use crate::api::{Callback, CpgApi, Dispatched, EventFd, Handle};
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
