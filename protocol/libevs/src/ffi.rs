//! The eleven functions of corosync 1.4.10's `evs.h` with its C signatures (docs/evs.md
//! §2.2; our header: `include/corosync/evs.h`). Every function checks its pointers and
//! counts, bounds them before it builds a slice, looks the handle up, and hands the work to
//! the safe [`Instance`]; none lets a panic unwind into C (CS_ERR_LIBRARY instead).
//!
//! This is the crate's only `unsafe` code: reading the caller's arrays and writing its
//! out-parameters, and calling its callbacks.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_ulonglong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use totem_client::evs::{EvsCallback, MAX_REQUEST};
use totem_client::IpcTransport;
use totem_wire::exec::evs::{EvsGroup, EVS_GROUP_LEN};
use totem_wire::ipc::CsError;

use crate::instance::{DispatchMode, Instance};
use crate::table::HandleTable;

/// `evs_handle_t` (and `hdb_handle_t`).
pub type EvsHandle = u64;

/// `cs_error_t` as C passes it (an `int`-sized enum).
pub type CsErrorT = c_int;

/// `struct evs_group`: a 32-byte key, compared whole (EVS-JOIN-6).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EvsGroupC {
    /// The key.
    pub key: [u8; EVS_GROUP_LEN],
}

/// `struct evs_ring_id`: the ring a configuration belongs to. 1.4 always passed NULL; ours
/// is real (docs/evs.md §9).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvsRingId {
    /// The ring's representative.
    pub nodeid: c_uint,
    /// The ring's sequence number.
    pub seq: c_ulonglong,
}

/// `evs_deliver_fn_t`.
pub type EvsDeliverFn =
    unsafe extern "C" fn(handle: EvsHandle, nodeid: c_uint, msg: *const c_void, msg_len: usize);

/// `evs_confchg_fn_t`.
pub type EvsConfchgFn = unsafe extern "C" fn(
    handle: EvsHandle,
    member_list: *const c_uint,
    member_list_entries: usize,
    left_list: *const c_uint,
    left_list_entries: usize,
    joined_list: *const c_uint,
    joined_list_entries: usize,
    ring_id: *const EvsRingId,
);

/// `evs_callbacks_t`; a NULL entry drops that kind of event (EVS-INIT-4).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvsCallbacks {
    /// `evs_deliver_fn`.
    pub evs_deliver_fn: Option<EvsDeliverFn>,
    /// `evs_confchg_fn`.
    pub evs_confchg_fn: Option<EvsConfchgFn>,
}

/// One live handle: the connection and the callbacks copied at initialize (EVS-INIT-4:
/// the caller's struct may go away).
struct Handle {
    instance: Instance<IpcTransport>,
    callbacks: EvsCallbacks,
}

static HANDLES: HandleTable<Handle> = HandleTable::new();

/// The most iovecs one send takes (Linux's `IOV_MAX`). 1.4 copied them into a stack array
/// of 64 without a check (EVS-MJ-9, EVS-MG-11); ours refuses more with
/// CS_ERR_INVALID_PARAM.
pub const EVS_IOV_MAX: usize = 1024;

/// The most keys one call can carry: a request is at most 1 MiB (docs/evs.md §6).
const GROUPS_MAX: usize = MAX_REQUEST / EVS_GROUP_LEN;

fn code(e: CsError) -> CsErrorT {
    i32::from(e)
}

/// Runs `f`, turning a panic into CS_ERR_LIBRARY: nothing unwinds into C.
fn guard(f: impl FnOnce() -> CsError) -> CsErrorT {
    code(catch_unwind(AssertUnwindSafe(f)).unwrap_or(CsError::Library))
}

fn lookup(handle: EvsHandle) -> Result<Arc<Handle>, CsError> {
    HANDLES.get(handle).ok_or(CsError::BadHandle)
}

/// A call on a handle: CS_ERR_BAD_HANDLE for an unknown or finalized one, and no panic
/// crosses the C boundary.
fn with_handle(handle: EvsHandle, f: impl FnOnce(&Arc<Handle>) -> CsError) -> CsErrorT {
    guard(|| match lookup(handle) {
        Ok(h) => f(&h),
        Err(e) => e,
    })
}

/// The caller's keys, bounded before they are read.
///
/// # Safety
/// `groups` must point to `count` readable `struct evs_group` when `count` > 0.
unsafe fn read_groups(groups: *const EvsGroupC, count: usize) -> Result<Vec<EvsGroup>, CsError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if groups.is_null() || count > GROUPS_MAX {
        return Err(CsError::InvalidParam);
    }
    // SAFETY: non-null, `count` ≤ GROUPS_MAX elements of 32 bytes (alignment 1), which the
    // caller promises are readable for this call.
    let slice = unsafe { std::slice::from_raw_parts(groups, count) };
    Ok(slice.iter().map(|g| g.key).collect())
}

/// The caller's iovecs as slices, each and their total bounded by the request size.
///
/// # Safety
/// `iovec` must point to `count` readable `struct iovec`, each describing readable
/// memory, when `count` > 0; the slices borrow that memory for the call.
unsafe fn read_iovecs<'a>(
    iovec: *const libc::iovec,
    count: c_uint,
) -> Result<Vec<&'a [u8]>, CsError> {
    let count = count as usize;
    if count == 0 {
        return Ok(Vec::new());
    }
    if iovec.is_null() || count > EVS_IOV_MAX {
        return Err(CsError::InvalidParam);
    }
    // SAFETY: non-null, at most EVS_IOV_MAX entries the caller promises are readable.
    let iovs = unsafe { std::slice::from_raw_parts(iovec, count) };
    let mut total = 0usize;
    let mut out = Vec::with_capacity(count);
    for v in iovs {
        if v.iov_len == 0 {
            continue;
        }
        total = total.saturating_add(v.iov_len);
        if v.iov_base.is_null() || total > MAX_REQUEST {
            return Err(CsError::InvalidParam);
        }
        // SAFETY: non-null base, length ≤ 1 MiB, memory the caller promises is readable
        // until the call returns (we copy it into the request before that).
        out.push(unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) });
    }
    Ok(out)
}

/// `evs_initialize`: connects to the `evs` service and creates a handle.
///
/// # Safety
/// `handle` must be writable; `callbacks` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn evs_initialize(
    handle: *mut EvsHandle,
    callbacks: *const EvsCallbacks,
) -> CsErrorT {
    guard(|| {
        if handle.is_null() {
            return CsError::InvalidParam;
        }
        let callbacks = if callbacks.is_null() {
            EvsCallbacks::default()
        } else {
            // SAFETY: non-null, and the caller promises a readable evs_callbacks_t; two
            // nullable function pointers, any bit pattern of which is valid.
            unsafe { std::ptr::read(callbacks) }
        };
        let transport = match totem_client::evs::connect() {
            Ok(t) => t,
            Err(e) => return e,
        };
        let instance = match Instance::new(transport) {
            Ok(i) => i,
            Err(e) => return e,
        };
        match HANDLES.insert(Arc::new(Handle {
            instance,
            callbacks,
        })) {
            Some(h) => {
                // SAFETY: checked non-null above; the caller promises it is writable.
                unsafe { handle.write(h) };
                CsError::Ok
            }
            None => CsError::NoMemory,
        }
    })
}

/// `evs_finalize`: closes the connection; the handle is dead from now on.
///
/// # Safety
/// None: any value is accepted.
#[no_mangle]
pub unsafe extern "C" fn evs_finalize(handle: EvsHandle) -> CsErrorT {
    guard(|| match HANDLES.remove(handle) {
        Some(h) => h.instance.finalize(),
        None => CsError::BadHandle,
    })
}

/// `evs_fd_get`: the descriptor that polls readable when an event waits.
///
/// # Safety
/// `fd` must be writable.
#[no_mangle]
pub unsafe extern "C" fn evs_fd_get(handle: EvsHandle, fd: *mut c_int) -> CsErrorT {
    with_handle(handle, |h| {
        if fd.is_null() {
            return CsError::InvalidParam;
        }
        match h.instance.fd() {
            Ok(v) => {
                // SAFETY: checked non-null; the caller promises it is writable.
                unsafe { fd.write(v) };
                CsError::Ok
            }
            Err(e) => e,
        }
    })
}

/// `evs_context_get`.
///
/// # Safety
/// `context` must be writable.
#[no_mangle]
pub unsafe extern "C" fn evs_context_get(handle: EvsHandle, context: *mut *mut c_void) -> CsErrorT {
    with_handle(handle, |h| {
        if context.is_null() {
            return CsError::InvalidParam;
        }
        match h.instance.context() {
            Ok(v) => {
                // SAFETY: checked non-null; the caller promises it is writable. The value
                // is the pointer the caller stored, returned untouched (EVS-CTX-3).
                unsafe { context.write(v as *mut c_void) };
                CsError::Ok
            }
            Err(e) => e,
        }
    })
}

/// `evs_context_set`.
///
/// # Safety
/// None: the pointer is stored, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn evs_context_set(handle: EvsHandle, context: *mut c_void) -> CsErrorT {
    guard(|| match lookup(handle) {
        Ok(h) => h.instance.set_context(context as usize),
        Err(e) => e,
    })
}

/// Calls the C callback an event is for, if the program gave one.
fn call_back(handle: EvsHandle, callbacks: &EvsCallbacks, event: EvsCallback) {
    match event {
        EvsCallback::Deliver { nodeid, data } => {
            if let Some(f) = callbacks.evs_deliver_fn {
                // SAFETY: the program's own callback with the signature evs.h gives it;
                // `data` lives until the call returns (EVS-INIT-8: valid only during it).
                unsafe { f(handle, nodeid, data.as_ptr().cast(), data.len()) };
            }
        }
        EvsCallback::Confchg {
            ring_nodeid,
            ring_seq,
            members,
            left,
            joined,
            ..
        } => {
            if let Some(f) = callbacks.evs_confchg_fn {
                let ring = EvsRingId {
                    nodeid: ring_nodeid,
                    seq: ring_seq,
                };
                // SAFETY: the program's callback; the three arrays and the ring id live
                // until it returns.
                unsafe {
                    f(
                        handle,
                        members.as_ptr(),
                        members.len(),
                        left.as_ptr(),
                        left.len(),
                        joined.as_ptr(),
                        joined.len(),
                        &ring,
                    )
                };
            }
        }
    }
}

/// `evs_dispatch`: runs the callbacks of waiting events (`dispatch_types`: 1 ONE, 2 ALL,
/// 3 BLOCKING and any other value, EVS-DISP-6).
///
/// # Safety
/// The callbacks given at initialize must still be callable.
#[no_mangle]
pub unsafe extern "C" fn evs_dispatch(handle: EvsHandle, dispatch_types: c_int) -> CsErrorT {
    with_handle(handle, |h| {
        let mode = DispatchMode::from_raw(dispatch_types as u32);
        h.instance
            .dispatch(mode, |event| call_back(handle, &h.callbacks, event))
    })
}

/// `evs_join`.
///
/// # Safety
/// `groups` must point to `group_cnt` readable `struct evs_group`.
#[no_mangle]
pub unsafe extern "C" fn evs_join(
    handle: EvsHandle,
    groups: *const EvsGroupC,
    group_cnt: usize,
) -> CsErrorT {
    with_handle(handle, |h| {
        // SAFETY: the caller's promise, passed on.
        match unsafe { read_groups(groups, group_cnt) } {
            Ok(g) => h.instance.join(&g),
            Err(e) => e,
        }
    })
}

/// `evs_leave`.
///
/// # Safety
/// `groups` must point to `group_cnt` readable `struct evs_group`.
#[no_mangle]
pub unsafe extern "C" fn evs_leave(
    handle: EvsHandle,
    groups: *const EvsGroupC,
    group_cnt: usize,
) -> CsErrorT {
    with_handle(handle, |h| {
        // SAFETY: the caller's promise, passed on.
        match unsafe { read_groups(groups, group_cnt) } {
            Ok(g) => h.instance.leave(&g),
            Err(e) => e,
        }
    })
}

/// `evs_mcast_joined`: `guarantee` is carried and ignored (EVS-MJ-4).
///
/// # Safety
/// `iovec` must point to `iov_len` readable `struct iovec` describing readable memory.
#[no_mangle]
pub unsafe extern "C" fn evs_mcast_joined(
    handle: EvsHandle,
    guarantee: c_int,
    iovec: *const libc::iovec,
    iov_len: c_uint,
) -> CsErrorT {
    with_handle(handle, |h| {
        // SAFETY: the caller's promise, passed on.
        match unsafe { read_iovecs(iovec, iov_len) } {
            Ok(v) => h.instance.mcast_joined(guarantee as u32, &v),
            Err(e) => e,
        }
    })
}

/// `evs_mcast_groups`.
///
/// # Safety
/// `groups` must point to `group_cnt` readable `struct evs_group`, `iovec` to `iov_len`
/// readable `struct iovec` describing readable memory.
#[no_mangle]
pub unsafe extern "C" fn evs_mcast_groups(
    handle: EvsHandle,
    guarantee: c_int,
    groups: *const EvsGroupC,
    group_cnt: usize,
    iovec: *const libc::iovec,
    iov_len: c_uint,
) -> CsErrorT {
    with_handle(handle, |h| {
        // SAFETY: the caller's promises, passed on.
        let g = match unsafe { read_groups(groups, group_cnt) } {
            Ok(g) => g,
            Err(e) => return e,
        };
        // SAFETY: as above.
        match unsafe { read_iovecs(iovec, iov_len) } {
            Ok(v) => h.instance.mcast_groups(guarantee as u32, &g, &v),
            Err(e) => e,
        }
    })
}

/// `evs_membership_get`: `*member_list_entries` is the room in `member_list` on entry and
/// the number written on return, silently truncated (EVS-MEMB-5); `local_nodeid` and
/// `member_list` may be NULL (EVS-MEMB-3, -4).
///
/// # Safety
/// `member_list_entries` must be readable and writable; `local_nodeid` NULL or writable;
/// `member_list` NULL or writable for `*member_list_entries` entries.
#[no_mangle]
pub unsafe extern "C" fn evs_membership_get(
    handle: EvsHandle,
    local_nodeid: *mut c_uint,
    member_list: *mut c_uint,
    member_list_entries: *mut usize,
) -> CsErrorT {
    with_handle(handle, |h| {
        // 1.4 dereferenced it unchecked; we refuse it.
        if member_list_entries.is_null() {
            return CsError::InvalidParam;
        }
        // SAFETY: checked non-null; the caller promises it is readable.
        let room = unsafe { member_list_entries.read() };
        let (local, members) = match h.instance.membership(room) {
            Ok(m) => m,
            Err(e) => return e,
        };
        if !local_nodeid.is_null() {
            // SAFETY: non-null, the caller promises it is writable.
            unsafe { local_nodeid.write(local) };
        }
        if !member_list.is_null() {
            // SAFETY: non-null, writable for `room` entries by the caller's promise, and
            // `members.len()` ≤ `room` (truncated above).
            unsafe { std::ptr::copy_nonoverlapping(members.as_ptr(), member_list, members.len()) };
        }
        // SAFETY: checked non-null; the caller promises it is writable.
        unsafe { member_list_entries.write(members.len()) };
        CsError::Ok
    })
}
