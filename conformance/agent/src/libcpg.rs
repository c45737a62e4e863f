//! [`CpgApi`] over the real libcpg (`ffi`), the agent's default client.
//!
//! libcpg calls its callbacks from inside `cpg_dispatch` with nothing but the numeric
//! handle; the executor's closure for the running dispatch is parked in a thread-local for
//! the length of the call, and the C callbacks hand it each callback as a
//! [`Callback`]. This module is the only unsafe code of the agent besides `ffi`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::time::Duration;

use totem_agent_protocol::api::{Callback, CpgApi, Dispatched, EventFd, Handle};
use totem_agent_protocol::values::{DispatchMode, Guarantee, IterationType};
use totem_wire::exec::cpg::{ConfchgReason, CpgName as WireName};
use totem_wire::ipc::cpg::CpgAddress as WireAddress;
use totem_wire::ipc::CsError;

use crate::ffi::{self, CpgAddress, CpgCallbacks, CpgModelV1Data, CpgName, CpgRingId};

type Sink = dyn FnMut(&Callback) -> bool;

thread_local! {
    /// The running dispatch's callback handler (null outside `cpg_dispatch`).
    static SINK: Cell<Option<*mut Sink>> = const { Cell::new(None) };
    /// The return code of a `cpg_finalize` made from inside a callback of this dispatch.
    static FINALIZED: Cell<Option<i32>> = const { Cell::new(None) };
}

fn cs(rc: i32) -> CsError {
    CsError::from(rc)
}

fn ok_or<T>(rc: i32, v: T) -> Result<T, CsError> {
    if rc == 1 {
        Ok(v)
    } else {
        Err(cs(rc))
    }
}

fn c_name(n: &WireName) -> CpgName {
    CpgName {
        length: n.length,
        value: n.value,
    }
}

fn wire_name(p: *const CpgName) -> WireName {
    if p.is_null() {
        return WireName::EMPTY;
    }
    // SAFETY: libcpg passes a valid cpg_name for the callback's duration.
    let n = unsafe { *p };
    WireName {
        length: n.length,
        value: n.value,
    }
}

fn wire_addresses(list: &[CpgAddress]) -> Vec<WireAddress> {
    list.iter()
        .map(|a| WireAddress {
            nodeid: a.nodeid,
            pid: a.pid,
            reason: ConfchgReason::from(a.reason),
        })
        .collect()
}

/// Hands one callback to the running dispatch's handler; finalizes `h` there and then
/// when it asks (how a CS_DISPATCH_BLOCKING call is ended: cpg_dispatch then returns
/// CS_ERR_BAD_HANDLE).
fn deliver(h: ffi::CpgHandle, cb: Callback) {
    let Some(sink) = SINK.with(Cell::get) else {
        return;
    };
    // SAFETY: `dispatch` parks a pointer to a closure that outlives the C call, and
    // clears it before returning; callbacks only run inside that call, on this thread.
    let finalize = unsafe { (*sink)(&cb) };
    if finalize {
        if let Ok(lib) = ffi::load() {
            FINALIZED.with(|f| f.set(Some(lib.finalize(h))));
        }
    }
}

extern "C" fn on_deliver(
    h: ffi::CpgHandle,
    group: *const CpgName,
    nodeid: u32,
    pid: u32,
    msg: *mut std::ffi::c_void,
    len: usize,
) {
    let cb = Callback::Deliver {
        group: wire_name(group),
        nodeid,
        pid,
        data: ffi::bytes(msg, len).to_vec(),
    };
    deliver(h, cb);
}

#[allow(clippy::too_many_arguments)] // the C callback signature (cpg.h cpg_confchg_fn_t)
extern "C" fn on_confchg(
    h: ffi::CpgHandle,
    group: *const CpgName,
    members: *const CpgAddress,
    nm: usize,
    left: *const CpgAddress,
    nl: usize,
    joined: *const CpgAddress,
    nj: usize,
) {
    let cb = Callback::Confchg {
        group: wire_name(group),
        members: wire_addresses(ffi::addresses(members, nm)),
        left: wire_addresses(ffi::addresses(left, nl)),
        joined: wire_addresses(ffi::addresses(joined, nj)),
    };
    deliver(h, cb);
}

extern "C" fn on_totem_confchg(h: ffi::CpgHandle, ring: CpgRingId, n: u32, members: *const u32) {
    let cb = Callback::TotemConfchg {
        ring_nodeid: ring.nodeid,
        ring_seq: ring.seq,
        members: ffi::u32s(members, n as usize).to_vec(),
    };
    deliver(h, cb);
}

/// libcpg, loaded at run time.
pub(crate) struct LibCpg {
    lib: &'static ffi::Cpg,
}

impl LibCpg {
    pub(crate) fn load() -> Result<LibCpg, String> {
        ffi::load().map(|lib| LibCpg { lib })
    }
}

impl CpgApi for LibCpg {
    fn library(&self) -> String {
        ffi::library_name()
    }

    fn initialize(&mut self) -> Result<Handle, CsError> {
        let (rc, h) = self.lib.initialize(CpgCallbacks {
            deliver: Some(on_deliver),
            confchg: Some(on_confchg),
        });
        ok_or(rc, h)
    }

    fn model_initialize(&mut self, flags: u32, context: u64) -> Result<Handle, CsError> {
        let (rc, h) = self.lib.model_initialize(
            CpgModelV1Data {
                model: ffi::CPG_MODEL_V1,
                deliver: Some(on_deliver),
                confchg: Some(on_confchg),
                totem_confchg: Some(on_totem_confchg),
                flags,
            },
            context as usize,
        );
        ok_or(rc, h)
    }

    fn finalize(&mut self, h: Handle) -> CsError {
        cs(self.lib.finalize(h))
    }

    fn join(&mut self, h: Handle, group: &WireName) -> CsError {
        cs(self.lib.join(h, &c_name(group)))
    }

    fn leave(&mut self, h: Handle, group: &WireName) -> CsError {
        cs(self.lib.leave(h, &c_name(group)))
    }

    fn mcast_joined(&mut self, h: Handle, guarantee: Guarantee, iovecs: &[&[u8]]) -> CsError {
        cs(self.lib.mcast_joined(h, guarantee.raw() as i32, iovecs))
    }

    fn zcb_alloc(&mut self, h: Handle, size: usize) -> Result<u64, CsError> {
        let (rc, p) = self.lib.zcb_alloc(h, size);
        ok_or(rc, p as u64)
    }

    fn zcb_write(
        &mut self,
        _: Handle,
        buf: u64,
        capacity: usize,
        data: &[u8],
    ) -> Result<(), String> {
        self.lib.zcb_fill(buf as usize, capacity, data);
        Ok(())
    }

    fn zcb_mcast_joined(
        &mut self,
        h: Handle,
        guarantee: Guarantee,
        buf: u64,
        len: usize,
    ) -> CsError {
        cs(self
            .lib
            .zcb_mcast_joined(h, guarantee.raw() as i32, buf as usize, len))
    }

    fn zcb_free(&mut self, h: Handle, buf: u64) -> CsError {
        cs(self.lib.zcb_free(h, buf as usize))
    }

    fn zcb_free_foreign(&mut self, h: Handle) -> CsError {
        // libcpg reads the buffer's header 56 bytes before the pointer (map_size,
        // server_address): with the pointer 64 bytes into a zeroed buffer that header is
        // zeros, so the call is deterministic (ZC_FREE {0, 0}, then munmap of length 0
        // fails with EINVAL: CS_ERR_INVALID_PARAM). A pointer nearer the start read stack
        // garbage and made the result vary from run to run.
        let probe = [0u8; 128];
        cs(self.lib.zcb_free(h, probe.as_ptr() as usize + 64))
    }

    fn membership_get(&mut self, h: Handle, group: &WireName) -> Result<Vec<WireAddress>, CsError> {
        let (rc, list) = self.lib.membership_get(h, &c_name(group));
        ok_or(rc, wire_addresses(&list))
    }

    fn local_get(&mut self, h: Handle) -> Result<u32, CsError> {
        let (rc, n) = self.lib.local_get(h);
        ok_or(rc, n)
    }

    fn context_get(&mut self, h: Handle) -> Result<u64, CsError> {
        let (rc, v) = self.lib.context_get(h);
        ok_or(rc, v as u64)
    }

    fn context_set(&mut self, h: Handle, context: u64) -> CsError {
        cs(self.lib.context_set(h, context as usize))
    }

    fn fd_get(&mut self, h: Handle) -> Result<EventFd, CsError> {
        let (rc, fd) = self.lib.fd_get(h);
        ok_or(
            rc,
            EventFd {
                fd: Some(fd),
                open: ffi::fd_is_open(fd),
            },
        )
    }

    fn wait_event(&mut self, h: Handle, timeout: Duration) -> Result<bool, CsError> {
        let fd = self.fd_get(h)?.fd.unwrap_or(-1);
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        Ok(ffi::poll(&[fd], ms)[0] != 0)
    }

    fn dispatch(
        &mut self,
        h: Handle,
        mode: DispatchMode,
        _limit: Option<Duration>,
        on_callback: &mut dyn FnMut(&Callback) -> bool,
    ) -> Dispatched {
        // The C call cannot be abandoned: the host's watchdog ends the process instead.
        let sink: *mut (dyn FnMut(&Callback) -> bool + '_) = on_callback;
        // SAFETY: only the lifetime is erased; the pointer is cleared below, before
        // `on_callback`'s borrow ends, and used only by callbacks inside this call.
        let sink: *mut Sink = unsafe { std::mem::transmute(sink) };
        let outer = SINK.with(|s| s.replace(Some(sink)));
        FINALIZED.with(|f| f.set(None));
        let rc = self.lib.dispatch(h, mode.raw() as i32);
        SINK.with(|s| s.set(outer));
        Dispatched::Returned {
            rc: cs(rc),
            finalized: FINALIZED.with(Cell::take).map(cs),
        }
    }

    fn iteration_initialize(
        &mut self,
        h: Handle,
        kind: IterationType,
        group: Option<&WireName>,
    ) -> Result<u64, CsError> {
        let g = group.map(c_name);
        let (rc, it) = self
            .lib
            .iteration_initialize(h, kind.raw() as i32, g.as_ref());
        ok_or(rc, it)
    }

    fn iteration_next(&mut self, it: u64) -> Result<(WireName, u32, u32), CsError> {
        match self.lib.iteration_next(it) {
            (_, Some(d)) => Ok((
                WireName {
                    length: d.group.length,
                    value: d.group.value,
                },
                d.nodeid,
                d.pid,
            )),
            (rc, None) => Err(cs(rc)),
        }
    }

    fn iteration_finalize(&mut self, it: u64) -> CsError {
        cs(self.lib.iteration_finalize(it))
    }

    fn flow_control_state_get(&mut self, h: Handle) -> Result<bool, CsError> {
        let (rc, v) = self.lib.flow_control_state_get(h);
        ok_or(rc, v != 0)
    }

    fn max_atomic_msgsize_get(&mut self, h: Handle) -> Result<u32, CsError> {
        let (rc, v) = self.lib.max_atomic_msgsize_get(h);
        ok_or(rc, v)
    }
}
