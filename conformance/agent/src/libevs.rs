//! [`EvsApi`] over a libevs loaded at run time (`libevs.so.4`, or the path
//! `TOTEM_CONFORM_LIBEVS` names), with the C signatures of corosync 1.4's `evs.h`
//! (docs/evs.md §2). Nothing links `-levs`, so the agent builds and runs without one; the
//! library is opened at the first EVS command. Callbacks reach the running dispatch's
//! handler through a thread-local, as in `libcpg`. This module, `ffi` and `libcpg` hold
//! the agent's only unsafe code.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;
use std::time::Duration;

use totem_agent_protocol::api::{Dispatched, EventFd, EvsApi, EvsCallback, EvsKeyBytes, Handle};
use totem_agent_protocol::values::{DispatchMode, Guarantee};
use totem_wire::ipc::CsError;

use crate::ffi;

/// `evs_handle_t` / `hdb_handle_t`: `uint64_t`.
type EvsHandle = u64;
type Rc = c_int;

/// `struct evs_ring_id` (evs.h): nodeid @0, seq @8, 16 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct EvsRingId {
    nodeid: c_uint,
    seq: u64,
}

type DeliverFn = extern "C" fn(EvsHandle, c_uint, *const c_void, usize);
type ConfchgFn = extern "C" fn(
    EvsHandle,
    *const c_uint,
    usize,
    *const c_uint,
    usize,
    *const c_uint,
    usize,
    *const EvsRingId,
);

/// `evs_callbacks_t` (evs.h): deliver, then confchg.
#[repr(C)]
struct EvsCallbacks {
    deliver: Option<DeliverFn>,
    confchg: Option<ConfchgFn>,
}

/// The nine versioned functions and the unversioned context pair (EVS-CTX-5).
struct Lib {
    _lib: libloading::Library,
    initialize: unsafe extern "C" fn(*mut EvsHandle, *mut EvsCallbacks) -> Rc,
    finalize: unsafe extern "C" fn(EvsHandle) -> Rc,
    fd_get: unsafe extern "C" fn(EvsHandle, *mut c_int) -> Rc,
    context_get: unsafe extern "C" fn(EvsHandle, *mut *mut c_void) -> Rc,
    context_set: unsafe extern "C" fn(EvsHandle, *mut c_void) -> Rc,
    dispatch: unsafe extern "C" fn(EvsHandle, c_int) -> Rc,
    join: unsafe extern "C" fn(EvsHandle, *const EvsKeyBytes, usize) -> Rc,
    leave: unsafe extern "C" fn(EvsHandle, *const EvsKeyBytes, usize) -> Rc,
    mcast_joined: unsafe extern "C" fn(EvsHandle, c_int, *const libc::iovec, c_uint) -> Rc,
    mcast_groups: unsafe extern "C" fn(
        EvsHandle,
        c_int,
        *const EvsKeyBytes,
        usize,
        *const libc::iovec,
        c_uint,
    ) -> Rc,
    membership_get: unsafe extern "C" fn(EvsHandle, *mut c_uint, *mut c_uint, *mut usize) -> Rc,
}

static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();

/// The library the agent loads: `TOTEM_CONFORM_LIBEVS` (a soname or a path) or
/// `libevs.so.4`.
pub(crate) fn library_name() -> String {
    std::env::var("TOTEM_CONFORM_LIBEVS").unwrap_or_else(|_| "libevs.so.4".to_owned())
}

fn load() -> Result<&'static Lib, String> {
    LIB.get_or_init(|| Lib::open(&library_name()))
        .as_ref()
        .map_err(Clone::clone)
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {{
        // SAFETY: the type the symbol is cast to is the prototype of 1.4's evs.h.
        let s = unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .map_err(|e| format!("{}: missing symbol {}: {e}", library_name(), $name))?;
        *s
    }};
}

impl Lib {
    fn open(name: &str) -> Result<Lib, String> {
        // SAFETY: loading a libevs runs only its constructors.
        let lib = unsafe { libloading::Library::new(name) }
            .map_err(|e| format!("cannot load {name}: {e} (set TOTEM_CONFORM_LIBEVS)"))?;
        Ok(Lib {
            initialize: sym!(lib, "evs_initialize"),
            finalize: sym!(lib, "evs_finalize"),
            fd_get: sym!(lib, "evs_fd_get"),
            context_get: sym!(lib, "evs_context_get"),
            context_set: sym!(lib, "evs_context_set"),
            dispatch: sym!(lib, "evs_dispatch"),
            join: sym!(lib, "evs_join"),
            leave: sym!(lib, "evs_leave"),
            mcast_joined: sym!(lib, "evs_mcast_joined"),
            mcast_groups: sym!(lib, "evs_mcast_groups"),
            membership_get: sym!(lib, "evs_membership_get"),
            _lib: lib,
        })
    }
}

type Sink = dyn FnMut(&EvsCallback) -> bool;

thread_local! {
    /// The running dispatch's handler (none outside `evs_dispatch`).
    static SINK: Cell<Option<*mut Sink>> = const { Cell::new(None) };
    /// The return code of an `evs_finalize` made from inside a callback.
    static FINALIZED: Cell<Option<i32>> = const { Cell::new(None) };
}

fn hand_over(h: EvsHandle, cb: EvsCallback) {
    let Some(sink) = SINK.with(Cell::get) else {
        return;
    };
    // SAFETY: `dispatch` parks a pointer to a closure that outlives the C call and clears
    // it before returning; callbacks run only inside that call, on this thread.
    let finalize = unsafe { (*sink)(&cb) };
    if finalize {
        if let Ok(lib) = load() {
            // SAFETY: a handle value is opaque to libevs's handle database.
            FINALIZED.with(|f| f.set(Some(unsafe { (lib.finalize)(h) })));
        }
    }
}

extern "C" fn on_deliver(h: EvsHandle, nodeid: c_uint, msg: *const c_void, len: usize) {
    let data = ffi::bytes(msg, len).to_vec();
    hand_over(h, EvsCallback::Deliver { nodeid, data });
}

#[allow(clippy::too_many_arguments)] // evs_confchg_fn_t (evs.h)
extern "C" fn on_confchg(
    h: EvsHandle,
    members: *const c_uint,
    nm: usize,
    left: *const c_uint,
    nl: usize,
    joined: *const c_uint,
    nj: usize,
    ring: *const EvsRingId,
) {
    // 1.4's library passed NULL (EVS-CODE-3); ours passes the ring.
    let ring = if ring.is_null() {
        None
    } else {
        // SAFETY: a non-NULL ring_id points to a struct evs_ring_id for the call.
        let r = unsafe { *ring };
        Some((r.nodeid, r.seq))
    };
    let cb = EvsCallback::Confchg {
        // The C callback does not say which kind (EVS-INIT-5).
        kind: None,
        ring,
        members: ffi::u32s(members, nm).to_vec(),
        left: ffi::u32s(left, nl).to_vec(),
        joined: ffi::u32s(joined, nj).to_vec(),
    };
    hand_over(h, cb);
}

fn cs(rc: Rc) -> CsError {
    CsError::from(rc)
}

fn ok_or<T>(rc: Rc, v: T) -> Result<T, CsError> {
    if rc == 1 {
        Ok(v)
    } else {
        Err(cs(rc))
    }
}

fn iovecs(parts: &[&[u8]]) -> Vec<libc::iovec> {
    parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut c_void,
            iov_len: p.len(),
        })
        .collect()
}

/// libevs, loaded on first use: a missing library makes every call CS_ERR_LIBRARY and
/// `evs_initialize` says why.
#[derive(Default)]
pub(crate) struct LibEvs;

impl LibEvs {
    fn lib() -> Result<&'static Lib, CsError> {
        load().map_err(|_| CsError::Library)
    }

    /// Whether the library loads (the agent's `--probe`).
    pub(crate) fn probe() -> Result<String, String> {
        load().map(|_| library_name())
    }
}

impl EvsApi for LibEvs {
    fn library(&self) -> String {
        library_name()
    }

    fn initialize(&mut self) -> Result<Handle, CsError> {
        let lib = Self::lib()?;
        let mut h: EvsHandle = 0;
        let mut cb = EvsCallbacks {
            deliver: Some(on_deliver),
            confchg: Some(on_confchg),
        };
        // SAFETY: valid pointers; libevs copies the callbacks (EVS-INIT-4).
        let rc = unsafe { (lib.initialize)(&mut h, &mut cb) };
        ok_or(rc, h)
    }

    fn finalize(&mut self, h: Handle) -> CsError {
        match Self::lib() {
            // SAFETY: bad handles give CS_ERR_BAD_HANDLE.
            Ok(lib) => cs(unsafe { (lib.finalize)(h) }),
            Err(e) => e,
        }
    }

    fn fd_get(&mut self, h: Handle) -> Result<EventFd, CsError> {
        let lib = Self::lib()?;
        let mut fd: c_int = -1;
        // SAFETY: valid out pointer.
        let rc = unsafe { (lib.fd_get)(h, &mut fd) };
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

    fn context_get(&mut self, h: Handle) -> Result<u64, CsError> {
        let lib = Self::lib()?;
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid out pointer; the context is never dereferenced.
        let rc = unsafe { (lib.context_get)(h, &mut p) };
        ok_or(rc, p as usize as u64)
    }

    fn context_set(&mut self, h: Handle, context: u64) -> CsError {
        match Self::lib() {
            // SAFETY: the context is opaque to libevs (EVS-CTX-3).
            Ok(lib) => cs(unsafe { (lib.context_set)(h, context as usize as *mut c_void) }),
            Err(e) => e,
        }
    }

    fn dispatch(
        &mut self,
        h: Handle,
        mode: DispatchMode,
        _limit: Option<Duration>,
        on_callback: &mut dyn FnMut(&EvsCallback) -> bool,
    ) -> Dispatched {
        let lib = match Self::lib() {
            Ok(l) => l,
            Err(rc) => {
                return Dispatched::Returned {
                    rc,
                    finalized: None,
                }
            }
        };
        let sink: *mut (dyn FnMut(&EvsCallback) -> bool + '_) = on_callback;
        // SAFETY: only the lifetime is erased; the pointer is cleared below, before the
        // borrow ends, and used only by callbacks inside this call.
        let sink: *mut Sink = unsafe { std::mem::transmute(sink) };
        let outer = SINK.with(|s| s.replace(Some(sink)));
        FINALIZED.with(|f| f.set(None));
        // SAFETY: callbacks run on this thread and touch only the agent's state. The C
        // call cannot be abandoned: the host's watchdog ends the process instead.
        let rc = unsafe { (lib.dispatch)(h, mode.raw() as c_int) };
        SINK.with(|s| s.set(outer));
        Dispatched::Returned {
            rc: cs(rc),
            finalized: FINALIZED.with(Cell::take).map(cs),
        }
    }

    fn join(&mut self, h: Handle, groups: &[EvsKeyBytes]) -> CsError {
        match Self::lib() {
            // SAFETY: `groups` is a live array of 32-byte keys (struct evs_group).
            Ok(lib) => cs(unsafe { (lib.join)(h, groups.as_ptr(), groups.len()) }),
            Err(e) => e,
        }
    }

    fn leave(&mut self, h: Handle, groups: &[EvsKeyBytes]) -> CsError {
        match Self::lib() {
            // SAFETY: as join.
            Ok(lib) => cs(unsafe { (lib.leave)(h, groups.as_ptr(), groups.len()) }),
            Err(e) => e,
        }
    }

    fn mcast_joined(&mut self, h: Handle, guarantee: Guarantee, parts: &[&[u8]]) -> CsError {
        let lib = match Self::lib() {
            Ok(l) => l,
            Err(e) => return e,
        };
        let iov = iovecs(parts);
        // SAFETY: every iovec points into a live slice; libevs only reads them.
        cs(unsafe {
            (lib.mcast_joined)(
                h,
                guarantee.raw() as c_int,
                iov.as_ptr(),
                iov.len() as c_uint,
            )
        })
    }

    fn mcast_groups(
        &mut self,
        h: Handle,
        guarantee: Guarantee,
        groups: &[EvsKeyBytes],
        parts: &[&[u8]],
    ) -> CsError {
        let lib = match Self::lib() {
            Ok(l) => l,
            Err(e) => return e,
        };
        let iov = iovecs(parts);
        // SAFETY: live key array and iovecs, only read.
        cs(unsafe {
            (lib.mcast_groups)(
                h,
                guarantee.raw() as c_int,
                groups.as_ptr(),
                groups.len(),
                iov.as_ptr(),
                iov.len() as c_uint,
            )
        })
    }

    fn membership_get(&mut self, h: Handle, entries: usize) -> Result<(u32, Vec<u32>), CsError> {
        let lib = Self::lib()?;
        let mut local: c_uint = 0;
        let mut list = vec![0 as c_uint; entries];
        let mut n = entries;
        // SAFETY: `list` holds `entries` nodeids, which is what `n` tells the library.
        let rc = unsafe { (lib.membership_get)(h, &mut local, list.as_mut_ptr(), &mut n) };
        list.truncate(n.min(entries));
        ok_or(rc, (local, list))
    }
}
