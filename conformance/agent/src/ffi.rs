//! The libcpg C API, loaded at run time from `libcpg.so.4`.
//!
//! The workspace must build on machines without corosync, so nothing links `-lcpg`; the
//! signatures below are written by hand from `/usr/include/corosync/cpg.h` and
//! `corotypes.h` of corosync 3.1.7. Every `unsafe` of the agent lives in this module.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

/// `cpg_handle_t` and `cpg_iteration_handle_t` are both `uint64_t` (cpg.h).
pub(crate) type CpgHandle = u64;

/// `struct cpg_address` (cpg.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CpgAddress {
    pub(crate) nodeid: u32,
    pub(crate) pid: u32,
    pub(crate) reason: u32,
}

/// `CPG_MAX_NAME_LENGTH` (cpg.h).
pub(crate) const CPG_MAX_NAME_LENGTH: usize = 128;
/// `CPG_MEMBERS_MAX` (cpg.h): the largest array `cpg_membership_get` fills.
pub(crate) const CPG_MEMBERS_MAX: usize = 128;

/// `struct cpg_name` (cpg.h). The length field is sent as given, so scenarios can probe
/// lengths beyond the array (cpg_join documents CS_ERR_NAME_TOO_LONG for them).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CpgName {
    pub(crate) length: u32,
    pub(crate) value: [u8; CPG_MAX_NAME_LENGTH],
}

impl CpgName {
    pub(crate) fn new(name: &[u8], length_override: Option<u32>) -> Self {
        let mut value = [0u8; CPG_MAX_NAME_LENGTH];
        let n = name.len().min(CPG_MAX_NAME_LENGTH);
        value[..n].copy_from_slice(&name[..n]);
        Self {
            length: length_override.unwrap_or(name.len() as u32),
            value,
        }
    }
}

/// `struct cpg_iteration_description_t` (cpg.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CpgIterationDescription {
    pub(crate) group: CpgName,
    pub(crate) nodeid: u32,
    pub(crate) pid: u32,
}

/// `struct cpg_ring_id` (cpg.h), passed by value to the totem confchg callback.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CpgRingId {
    pub(crate) nodeid: u32,
    pub(crate) seq: u64,
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
pub(crate) type TotemConfchgFn = extern "C" fn(CpgHandle, CpgRingId, u32, *const u32);

/// `cpg_callbacks_t` (cpg.h).
#[repr(C)]
pub(crate) struct CpgCallbacks {
    pub(crate) deliver: Option<DeliverFn>,
    pub(crate) confchg: Option<ConfchgFn>,
}

/// `CPG_MODEL_V1` (cpg.h).
pub(crate) const CPG_MODEL_V1: c_int = 1;

/// `cpg_model_v1_data_t` (cpg.h).
#[repr(C)]
pub(crate) struct CpgModelV1Data {
    pub(crate) model: c_int,
    pub(crate) deliver: Option<DeliverFn>,
    pub(crate) confchg: Option<ConfchgFn>,
    pub(crate) totem_confchg: Option<TotemConfchgFn>,
    pub(crate) flags: c_uint,
}

type Rc = c_int;

/// Function pointers resolved from the shared library. The `Library` is kept alive for
/// the life of the process (it sits in a `OnceLock`), so the pointers stay valid.
pub(crate) struct Cpg {
    _lib: libloading::Library,
    initialize: unsafe extern "C" fn(*mut CpgHandle, *mut CpgCallbacks) -> Rc,
    model_initialize: unsafe extern "C" fn(*mut CpgHandle, c_int, *mut c_void, *mut c_void) -> Rc,
    finalize: unsafe extern "C" fn(CpgHandle) -> Rc,
    fd_get: unsafe extern "C" fn(CpgHandle, *mut c_int) -> Rc,
    max_atomic_msgsize_get: unsafe extern "C" fn(CpgHandle, *mut u32) -> Rc,
    context_get: unsafe extern "C" fn(CpgHandle, *mut *mut c_void) -> Rc,
    context_set: unsafe extern "C" fn(CpgHandle, *mut c_void) -> Rc,
    dispatch: unsafe extern "C" fn(CpgHandle, c_int) -> Rc,
    join: unsafe extern "C" fn(CpgHandle, *const CpgName) -> Rc,
    leave: unsafe extern "C" fn(CpgHandle, *const CpgName) -> Rc,
    mcast_joined: unsafe extern "C" fn(CpgHandle, c_int, *const libc::iovec, c_uint) -> Rc,
    membership_get:
        unsafe extern "C" fn(CpgHandle, *mut CpgName, *mut CpgAddress, *mut c_int) -> Rc,
    local_get: unsafe extern "C" fn(CpgHandle, *mut c_uint) -> Rc,
    flow_control_state_get: unsafe extern "C" fn(CpgHandle, *mut c_int) -> Rc,
    zcb_alloc: unsafe extern "C" fn(CpgHandle, usize, *mut *mut c_void) -> Rc,
    zcb_free: unsafe extern "C" fn(CpgHandle, *mut c_void) -> Rc,
    zcb_mcast_joined: unsafe extern "C" fn(CpgHandle, c_int, *mut c_void, usize) -> Rc,
    iteration_initialize: unsafe extern "C" fn(CpgHandle, c_int, *const CpgName, *mut u64) -> Rc,
    iteration_next: unsafe extern "C" fn(u64, *mut CpgIterationDescription) -> Rc,
    iteration_finalize: unsafe extern "C" fn(u64) -> Rc,
}

static CPG: OnceLock<Result<Cpg, String>> = OnceLock::new();

/// The library name the agent loads; `TOTEM_CONFORM_LIBCPG` overrides it so the same
/// agent can drive a libcpg-compatible client library of our own later.
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
            model_initialize: sym!(lib, "cpg_model_initialize"),
            finalize: sym!(lib, "cpg_finalize"),
            fd_get: sym!(lib, "cpg_fd_get"),
            max_atomic_msgsize_get: sym!(lib, "cpg_max_atomic_msgsize_get"),
            context_get: sym!(lib, "cpg_context_get"),
            context_set: sym!(lib, "cpg_context_set"),
            dispatch: sym!(lib, "cpg_dispatch"),
            join: sym!(lib, "cpg_join"),
            leave: sym!(lib, "cpg_leave"),
            mcast_joined: sym!(lib, "cpg_mcast_joined"),
            membership_get: sym!(lib, "cpg_membership_get"),
            local_get: sym!(lib, "cpg_local_get"),
            flow_control_state_get: sym!(lib, "cpg_flow_control_state_get"),
            zcb_alloc: sym!(lib, "cpg_zcb_alloc"),
            zcb_free: sym!(lib, "cpg_zcb_free"),
            zcb_mcast_joined: sym!(lib, "cpg_zcb_mcast_joined"),
            iteration_initialize: sym!(lib, "cpg_iteration_initialize"),
            iteration_next: sym!(lib, "cpg_iteration_next"),
            iteration_finalize: sym!(lib, "cpg_iteration_finalize"),
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

    pub(crate) fn model_initialize(&self, data: CpgModelV1Data, context: usize) -> (Rc, CpgHandle) {
        let mut h: CpgHandle = 0;
        let mut d = data;
        // SAFETY: valid pointers; libcpg copies the model data. The context is an opaque
        // integer that is never dereferenced (cpg_context_get hands it back).
        let rc = unsafe {
            (self.model_initialize)(
                &mut h,
                CPG_MODEL_V1,
                (&mut d as *mut CpgModelV1Data).cast(),
                context as *mut c_void,
            )
        };
        (rc, h)
    }

    pub(crate) fn finalize(&self, h: CpgHandle) -> Rc {
        // SAFETY: handle values are opaque to libcpg's handle database; bad ones give BAD_HANDLE.
        unsafe { (self.finalize)(h) }
    }

    pub(crate) fn fd_get(&self, h: CpgHandle) -> (Rc, c_int) {
        let mut fd: c_int = -1;
        // SAFETY: valid out pointer.
        let rc = unsafe { (self.fd_get)(h, &mut fd) };
        (rc, fd)
    }

    pub(crate) fn max_atomic_msgsize_get(&self, h: CpgHandle) -> (Rc, u32) {
        let mut v = 0u32;
        // SAFETY: valid out pointer.
        let rc = unsafe { (self.max_atomic_msgsize_get)(h, &mut v) };
        (rc, v)
    }

    pub(crate) fn context_get(&self, h: CpgHandle) -> (Rc, usize) {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid out pointer; the value is only compared, never dereferenced.
        let rc = unsafe { (self.context_get)(h, &mut p) };
        (rc, p as usize)
    }

    pub(crate) fn context_set(&self, h: CpgHandle, v: usize) -> Rc {
        // SAFETY: the context is opaque to libcpg.
        unsafe { (self.context_set)(h, v as *mut c_void) }
    }

    pub(crate) fn dispatch(&self, h: CpgHandle, mode: c_int) -> Rc {
        // SAFETY: callbacks run on this thread and only touch the agent's own state.
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

    pub(crate) fn mcast_joined(&self, h: CpgHandle, guarantee: c_int, parts: &[&[u8]]) -> Rc {
        let iov: Vec<libc::iovec> = parts
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut c_void,
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: every iovec points into a live slice; libcpg only reads them.
        unsafe { (self.mcast_joined)(h, guarantee, iov.as_ptr(), iov.len() as c_uint) }
    }

    pub(crate) fn membership_get(&self, h: CpgHandle, name: &CpgName) -> (Rc, Vec<CpgAddress>) {
        let mut n = name.to_owned();
        let mut list = [CpgAddress {
            nodeid: 0,
            pid: 0,
            reason: 0,
        }; CPG_MEMBERS_MAX];
        let mut entries: c_int = CPG_MEMBERS_MAX as c_int;
        // SAFETY: the array holds CPG_MEMBERS_MAX entries, which `entries` announces.
        let rc = unsafe { (self.membership_get)(h, &mut n, list.as_mut_ptr(), &mut entries) };
        let k = (entries.max(0) as usize).min(CPG_MEMBERS_MAX);
        (rc, list[..k].to_vec())
    }

    pub(crate) fn local_get(&self, h: CpgHandle) -> (Rc, u32) {
        let mut v: c_uint = 0;
        // SAFETY: valid out pointer.
        let rc = unsafe { (self.local_get)(h, &mut v) };
        (rc, v)
    }

    pub(crate) fn flow_control_state_get(&self, h: CpgHandle) -> (Rc, c_int) {
        let mut v: c_int = -1;
        // SAFETY: valid out pointer (cpg_flow_control_state_t is an int-sized enum).
        let rc = unsafe { (self.flow_control_state_get)(h, &mut v) };
        (rc, v)
    }

    pub(crate) fn zcb_alloc(&self, h: CpgHandle, size: usize) -> (Rc, usize) {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid out pointer. The caller bounds `size` (corosync-lab.md: a huge
        // size fills /dev/shm before libcpg asserts).
        let rc = unsafe { (self.zcb_alloc)(h, size, &mut p) };
        (rc, p as usize)
    }

    /// Writes `data` into a buffer that `zcb_alloc` returned with at least `data.len()` bytes.
    pub(crate) fn zcb_fill(&self, buf: usize, capacity: usize, data: &[u8]) {
        let n = data.len().min(capacity);
        // SAFETY: `buf` came from cpg_zcb_alloc with `capacity` usable bytes and is not freed.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf as *mut u8, n) };
    }

    pub(crate) fn zcb_free(&self, h: CpgHandle, buf: usize) -> Rc {
        // SAFETY: libcpg validates the pointer against its own header (CS_ERR_INVALID_PARAM).
        unsafe { (self.zcb_free)(h, buf as *mut c_void) }
    }

    pub(crate) fn zcb_mcast_joined(
        &self,
        h: CpgHandle,
        guarantee: c_int,
        buf: usize,
        len: usize,
    ) -> Rc {
        // SAFETY: `buf` came from cpg_zcb_alloc; the caller keeps `len` within the allocation
        // (corosync-lab.md: a longer len crashed corosync 3.1.7).
        unsafe { (self.zcb_mcast_joined)(h, guarantee, buf as *mut c_void, len) }
    }

    pub(crate) fn iteration_initialize(
        &self,
        h: CpgHandle,
        kind: c_int,
        group: Option<&CpgName>,
    ) -> (Rc, u64) {
        let mut it = 0u64;
        let g = group.map_or(std::ptr::null(), |g| g as *const CpgName);
        // SAFETY: group is NULL or a valid cpg_name; valid out pointer.
        let rc = unsafe { (self.iteration_initialize)(h, kind, g, &mut it) };
        (rc, it)
    }

    pub(crate) fn iteration_next(&self, it: u64) -> (Rc, Option<CpgIterationDescription>) {
        let mut d = CpgIterationDescription {
            group: CpgName::new(b"", None),
            nodeid: 0,
            pid: 0,
        };
        // SAFETY: valid out pointer.
        let rc = unsafe { (self.iteration_next)(it, &mut d) };
        (rc, (rc == 1).then_some(d))
    }

    pub(crate) fn iteration_finalize(&self, it: u64) -> Rc {
        // SAFETY: bad iteration handles give CS_ERR_BAD_HANDLE.
        unsafe { (self.iteration_finalize)(it) }
    }
}

/// Reads the slices libcpg hands to callbacks.
pub(crate) fn addresses<'a>(p: *const CpgAddress, n: usize) -> &'a [CpgAddress] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: libcpg passes `n` valid entries that live for the callback.
    unsafe { std::slice::from_raw_parts(p, n) }
}

pub(crate) fn bytes<'a>(p: *const c_void, n: usize) -> &'a [u8] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: libcpg passes a message of `n` bytes that lives for the callback.
    unsafe { std::slice::from_raw_parts(p.cast(), n) }
}

pub(crate) fn u32s<'a>(p: *const u32, n: usize) -> &'a [u32] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: libcpg passes `n` node ids that live for the callback.
    unsafe { std::slice::from_raw_parts(p, n) }
}

/// Caps the size of files this process may write, so a zero-copy allocation cannot fill
/// /dev/shm (corosync-lab.md gotcha 4: cpg_zcb_alloc writes N zero bytes to a shm file).
pub(crate) fn limit_file_size(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: plain syscall with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) };
}

/// `poll(2)` on a set of fds; returns the revents per fd.
pub(crate) fn poll(fds: &[c_int], timeout_ms: i32) -> Vec<i16> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: the array is valid for its length.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r <= 0 {
        return vec![0; fds.len()];
    }
    p.iter().map(|x| x.revents).collect()
}

/// A pipe used to wake the main loop when the stdin thread has a command.
pub(crate) fn pipe() -> (c_int, c_int) {
    let mut fds = [0 as c_int; 2];
    // SAFETY: valid array of two ints.
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    (fds[0], fds[1])
}

pub(crate) fn write_byte(fd: c_int) {
    let b = [1u8];
    // SAFETY: writes one byte from a valid buffer.
    unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
}

pub(crate) fn drain(fd: c_int) {
    let mut b = [0u8; 256];
    // SAFETY: reads into a valid buffer; the fd is non-blocking-safe because poll said readable.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) };
}

/// Whether `fd` is an open descriptor (cpg_fd_get must return one).
pub(crate) fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD has no side effects.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
}

/// Ends the process at once, without running atexit handlers of libqb that could block.
pub(crate) fn hard_exit(code: c_int) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}
