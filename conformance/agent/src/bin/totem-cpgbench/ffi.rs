//! The few libcpg calls the benchmark needs, loaded at run time from `libcpg.so.4`.
//!
//! Adapted from the agent's `ffi` module (same hand-written prototypes from corosync
//! 3.1.7's `cpg.h`/`corotypes.h`), cut down to what a flood client uses. Every `unsafe` of
//! the benchmark lives here.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

/// `cpg_handle_t` (cpg.h).
pub(crate) type CpgHandle = u64;

/// `CS_OK` (corotypes.h).
pub(crate) const CS_OK: c_int = 1;
/// `CS_ERR_TRY_AGAIN` (corotypes.h).
pub(crate) const CS_ERR_TRY_AGAIN: c_int = 6;
/// `CS_DISPATCH_ALL` (corotypes.h): everything pending, then return.
pub(crate) const CS_DISPATCH_ALL: c_int = 2;

/// `CPG_MAX_NAME_LENGTH` (cpg.h).
const CPG_MAX_NAME_LENGTH: usize = 128;

/// `struct cpg_address` (cpg.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CpgAddress {
    pub(crate) nodeid: u32,
    pub(crate) pid: u32,
    pub(crate) reason: u32,
}

/// `struct cpg_name` (cpg.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CpgName {
    length: u32,
    value: [u8; CPG_MAX_NAME_LENGTH],
}

impl CpgName {
    /// `None` when the name does not fit the array.
    pub(crate) fn new(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        if b.len() > CPG_MAX_NAME_LENGTH {
            return None;
        }
        let mut value = [0u8; CPG_MAX_NAME_LENGTH];
        value[..b.len()].copy_from_slice(b);
        Some(Self {
            length: b.len() as u32,
            value,
        })
    }
}

pub(crate) type DeliverFn = extern "C" fn(CpgHandle, *const CpgName, u32, u32, *mut c_void, usize);
pub(crate) type ConfchgFn = extern "C" fn(
    CpgHandle,
    *const CpgName,
    *const CpgAddress,
    usize,
    *const CpgAddress,
    usize,
    *const CpgAddress,
    usize,
);

/// `cpg_callbacks_t` (cpg.h).
#[repr(C)]
pub(crate) struct CpgCallbacks {
    pub(crate) deliver: Option<DeliverFn>,
    pub(crate) confchg: Option<ConfchgFn>,
}

type Rc = c_int;

/// Function pointers resolved from the shared library, which stays loaded for the life of
/// the process (it sits in a `OnceLock`), so the pointers stay valid.
pub(crate) struct Cpg {
    _lib: libloading::Library,
    initialize: unsafe extern "C" fn(*mut CpgHandle, *mut CpgCallbacks) -> Rc,
    finalize: unsafe extern "C" fn(CpgHandle) -> Rc,
    fd_get: unsafe extern "C" fn(CpgHandle, *mut c_int) -> Rc,
    dispatch: unsafe extern "C" fn(CpgHandle, c_int) -> Rc,
    join: unsafe extern "C" fn(CpgHandle, *const CpgName) -> Rc,
    leave: unsafe extern "C" fn(CpgHandle, *const CpgName) -> Rc,
    mcast_joined: unsafe extern "C" fn(CpgHandle, c_int, *const libc::iovec, c_uint) -> Rc,
    local_get: unsafe extern "C" fn(CpgHandle, *mut c_uint) -> Rc,
}

static CPG: OnceLock<Result<Cpg, String>> = OnceLock::new();

/// The library loaded; `TOTEM_CONFORM_LIBCPG` overrides it, as for the agent.
pub(crate) fn library_name() -> String {
    std::env::var("TOTEM_CONFORM_LIBCPG").unwrap_or_else(|_| "libcpg.so.4".to_owned())
}

pub(crate) fn load() -> Result<&'static Cpg, String> {
    CPG.get_or_init(|| Cpg::open(&library_name()))
        .as_ref()
        .map_err(Clone::clone)
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {{
        // SAFETY: the type the symbol is cast to is the prototype declared in cpg.h.
        let s = unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .map_err(|e| format!("{}: missing symbol {}: {e}", library_name(), $name))?;
        *s
    }};
}

impl Cpg {
    fn open(name: &str) -> Result<Self, String> {
        // SAFETY: loading libcpg runs its constructors, which only set up libqb logging.
        let lib = unsafe { libloading::Library::new(name) }.map_err(|e| {
            format!("cannot load {name}: {e} (install corosync's libcpg4 / libcpg-dev)")
        })?;
        Ok(Self {
            initialize: sym!(lib, "cpg_initialize"),
            finalize: sym!(lib, "cpg_finalize"),
            fd_get: sym!(lib, "cpg_fd_get"),
            dispatch: sym!(lib, "cpg_dispatch"),
            join: sym!(lib, "cpg_join"),
            leave: sym!(lib, "cpg_leave"),
            mcast_joined: sym!(lib, "cpg_mcast_joined"),
            local_get: sym!(lib, "cpg_local_get"),
            _lib: lib,
        })
    }

    pub(crate) fn initialize(&self, callbacks: CpgCallbacks) -> (Rc, CpgHandle) {
        let mut h: CpgHandle = 0;
        let mut cb = callbacks;
        // SAFETY: both pointers are valid for the call; libcpg copies the callbacks.
        let rc = unsafe { (self.initialize)(&mut h, &mut cb) };
        (rc, h)
    }

    pub(crate) fn finalize(&self, h: CpgHandle) -> Rc {
        // SAFETY: handle values are opaque to libcpg's handle database.
        unsafe { (self.finalize)(h) }
    }

    pub(crate) fn fd_get(&self, h: CpgHandle) -> (Rc, c_int) {
        let mut fd: c_int = -1;
        // SAFETY: valid out pointer.
        let rc = unsafe { (self.fd_get)(h, &mut fd) };
        (rc, fd)
    }

    /// Runs the callbacks of pending events on the calling thread. libcpg allows this
    /// concurrently with `mcast_joined` on another thread (cpgbench.c does the same).
    pub(crate) fn dispatch(&self, h: CpgHandle, mode: c_int) -> Rc {
        // SAFETY: the callbacks only touch the benchmark's own synchronised state.
        unsafe { (self.dispatch)(h, mode) }
    }

    pub(crate) fn join(&self, h: CpgHandle, name: &CpgName) -> Rc {
        // SAFETY: valid pointer to a full cpg_name.
        unsafe { (self.join)(h, name) }
    }

    pub(crate) fn leave(&self, h: CpgHandle, name: &CpgName) -> Rc {
        // SAFETY: valid pointer to a full cpg_name.
        unsafe { (self.leave)(h, name) }
    }

    pub(crate) fn mcast_joined(&self, h: CpgHandle, guarantee: c_int, msg: &[u8]) -> Rc {
        let iov = libc::iovec {
            iov_base: msg.as_ptr() as *mut c_void,
            iov_len: msg.len(),
        };
        // SAFETY: the iovec points into a live slice; libcpg only reads it.
        unsafe { (self.mcast_joined)(h, guarantee, &iov, 1) }
    }

    pub(crate) fn local_get(&self, h: CpgHandle) -> (Rc, u32) {
        let mut v: c_uint = 0;
        // SAFETY: valid out pointer.
        let rc = unsafe { (self.local_get)(h, &mut v) };
        (rc, v)
    }
}

/// The member list libcpg hands to the confchg callback.
pub(crate) fn addresses<'a>(p: *const CpgAddress, n: usize) -> &'a [CpgAddress] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: libcpg passes `n` valid entries that live for the callback.
    unsafe { std::slice::from_raw_parts(p, n) }
}

/// The message libcpg hands to the deliver callback.
pub(crate) fn bytes<'a>(p: *const c_void, n: usize) -> &'a [u8] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: libcpg passes a message of `n` bytes that lives for the callback.
    unsafe { std::slice::from_raw_parts(p.cast(), n) }
}

/// `poll(2)` for input on one fd; true when it is readable (or hung up).
pub(crate) fn readable(fd: c_int, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    r > 0 && p.revents != 0
}

/// CPU seconds (user + system) this process has used so far (`getrusage(RUSAGE_SELF)`).
pub(crate) fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}
