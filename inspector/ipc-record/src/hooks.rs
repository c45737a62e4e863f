//! The interposed functions. Each forwards to the real one and returns its result with its
//! errno untouched; recording happens around the call and can only drop records.
//!
//! Prototypes: libqb 2.0.6 `include/qb/qbipcc.h` and glibc `<sys/socket.h>`.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr};

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{iovec, msghdr, size_t, ssize_t};
use totem_wire::ipc::record::{Direction, LibqbCall, RecordHeader, RecordKind, SERVICE_LEN};
use totem_wire::ipc::Channel;

use crate::process::guarded;
use crate::sink::{self, Record};

type ConnectFn = unsafe extern "C" fn(*const c_char, size_t) -> *mut c_void;
type DisconnectFn = unsafe extern "C" fn(*mut c_void);
type SendFn = unsafe extern "C" fn(*mut c_void, *const c_void, size_t) -> ssize_t;
type SendvFn = unsafe extern "C" fn(*mut c_void, *const iovec, size_t) -> ssize_t;
type RecvFn = unsafe extern "C" fn(*mut c_void, *mut c_void, size_t, i32) -> ssize_t;
type SendvRecvFn =
    unsafe extern "C" fn(*mut c_void, *const iovec, u32, *mut c_void, size_t, i32) -> ssize_t;
type SockSendFn = unsafe extern "C" fn(c_int, *const c_void, size_t, c_int) -> ssize_t;
type SockRecvmsgFn = unsafe extern "C" fn(c_int, *mut msghdr, c_int) -> ssize_t;

/// The libqb soname, for the fallback lookup when `RTLD_NEXT` cannot see libqb (a client
/// that `dlopen`s libcpg without RTLD_GLOBAL).
const LIBQB_SONAME: &CStr = c"libqb.so.100";

/// Resolves and caches the real function behind one interposed symbol.
macro_rules! real_fn {
    ($getter:ident, $sym:literal, $ty:ty, $libqb:expr) => {
        fn $getter() -> Option<$ty> {
            static SLOT: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
            let mut p = SLOT.load(Ordering::Acquire);
            if p.is_null() {
                p = resolve($sym, $libqb);
                if p.is_null() {
                    return None;
                }
                SLOT.store(p, Ordering::Release);
            }
            // SAFETY: `p` is the address dlsym returned for this very symbol, whose C
            // prototype (qbipcc.h / sys/socket.h) is `$ty`.
            Some(unsafe { std::mem::transmute::<*mut c_void, $ty>(p) })
        }
    };
}

fn resolve(name: &CStr, libqb: bool) -> *mut c_void {
    // SAFETY: dlsym with a valid NUL-terminated name; RTLD_NEXT means "the next definition
    // after this library in lookup order", i.e. libqb's or glibc's.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if !p.is_null() || !libqb {
        return p;
    }
    // SAFETY: RTLD_NOLOAD only returns a handle if libqb is already loaded (it is: its
    // client is calling it); the handle is never closed, so libqb stays loaded.
    let handle = unsafe { libc::dlopen(LIBQB_SONAME.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a valid handle and name.
    unsafe { libc::dlsym(handle, name.as_ptr()) }
}

real_fn!(real_connect, c"qb_ipcc_connect", ConnectFn, true);
real_fn!(real_disconnect, c"qb_ipcc_disconnect", DisconnectFn, true);
real_fn!(real_send, c"qb_ipcc_send", SendFn, true);
real_fn!(real_sendv, c"qb_ipcc_sendv", SendvFn, true);
real_fn!(real_recv, c"qb_ipcc_recv", RecvFn, true);
real_fn!(real_sendv_recv, c"qb_ipcc_sendv_recv", SendvRecvFn, true);
real_fn!(real_event_recv, c"qb_ipcc_event_recv", RecvFn, true);
real_fn!(real_sock_send, c"send", SockSendFn, false);
real_fn!(real_sock_recvmsg, c"recvmsg", SockRecvmsgFn, false);

thread_local! {
    /// Inside one of our wrappers: libqb's own calls between its functions go through its
    /// PLT (`qb_ipcc_sendv_recv` calls `qb_ipcc_sendv` and `qb_ipcc_recv`), so they reach
    /// us again and must not be recorded twice.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    /// What the `qb_ipcc_sendv` nested in a `qb_ipcc_sendv_recv` returned, if it ran.
    static NESTED_SEND: Cell<Option<isize>> = const { Cell::new(None) };
    /// Setup messages seen by `send`/`recvmsg` while this thread is in `qb_ipcc_connect`.
    static SETUP: RefCell<Option<Vec<sink::SetupMessage>>> = const { RefCell::new(None) };
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = v }
}

fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    (unsafe { libc::syscall(libc::SYS_gettid) }) as u32
}

/// Marks this thread as inside a wrapper for the guard's lifetime.
struct Inside(bool);

impl Inside {
    fn enter() -> Inside {
        Inside(INSIDE.try_with(|i| i.replace(true)).unwrap_or(true))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let previous = self.0;
        let _ = INSIDE.try_with(|i| i.set(previous));
    }
}

fn inside() -> bool {
    INSIDE.try_with(Cell::get).unwrap_or(true)
}

/// Should this call be recorded (recording on, not nested in another wrapper)?
fn recording() -> bool {
    sink::enabled() && !inside()
}

/// Copies the bytes an iovec array describes, up to `limit`.
///
/// # Safety
/// `iov` must point to `count` valid iovecs whose buffers are readable.
unsafe fn gather(iov: *const iovec, count: usize, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if iov.is_null() {
        return out;
    }
    // SAFETY: the caller guarantees `count` iovecs at `iov`.
    let iovs = unsafe { std::slice::from_raw_parts(iov, count) };
    for v in iovs {
        if out.len() >= limit {
            break;
        }
        if v.iov_base.is_null() || v.iov_len == 0 {
            continue;
        }
        let n = v.iov_len.min(limit - out.len());
        // SAFETY: the caller guarantees each buffer holds `iov_len` readable bytes.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), n) });
    }
    out
}

/// `len` bytes at `p` (empty for NULL).
///
/// # Safety
/// `p` must be valid for reading `len` bytes.
unsafe fn bytes<'a>(p: *const c_void, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
}

fn message(
    conn: *mut c_void,
    kind: Channel,
    direction: Direction,
    call: LibqbCall,
    result: isize,
    ts_us: u64,
    payload: &[u8],
) {
    let (number, service) = sink::lookup(conn as usize, false);
    sink::push(
        number,
        service,
        tid(),
        &Record {
            kind: RecordKind::Message(kind),
            direction,
            call,
            failed: result < 0,
            result: result as i64,
            ts_us,
            payload,
        },
    );
}

/// A receive that returned nothing because nothing came within the timeout is not an
/// event of the connection (`cpg_dispatch` polls with timeout 0 until -EAGAIN).
fn is_idle(result: isize) -> bool {
    result == -(libc::EAGAIN as isize) || result == -(libc::ETIMEDOUT as isize)
}

/// `qb_ipcc_connect(name, max_msg_size)`.
///
/// # Safety
/// As for libqb's: `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_connect(name: *const c_char, max_msg_size: size_t) -> *mut c_void {
    let Some(real) = real_connect() else {
        set_errno(libc::ENOSYS);
        return ptr::null_mut();
    };
    if !recording() {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(name, max_msg_size) };
    }
    let _ = SETUP.try_with(|s| *s.borrow_mut() = Some(Vec::new()));
    let ts = sink::now_us();
    let conn = {
        let _inside = Inside::enter();
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(name, max_msg_size) }
    };
    let saved = errno();
    let setup = SETUP
        .try_with(|s| s.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default();
    let service = if name.is_null() {
        [0; SERVICE_LEN]
    } else {
        // SAFETY: libqb's contract: `name` is NUL-terminated.
        RecordHeader::service_field(unsafe { CStr::from_ptr(name) }.to_bytes())
    };
    guarded(|| {
        let failure = conn.is_null().then(|| (-(saved as i64), ts));
        sink::connected(conn as usize, service, setup, failure, tid());
    });
    set_errno(saved);
    conn
}

/// `qb_ipcc_disconnect(c)`.
///
/// # Safety
/// As for libqb's.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_disconnect(c: *mut c_void) {
    let Some(real) = real_disconnect() else {
        return;
    };
    if recording() && !c.is_null() {
        let ts = sink::now_us();
        guarded(|| {
            let (number, service) = sink::lookup(c as usize, true);
            sink::push(
                number,
                service,
                tid(),
                &Record {
                    kind: RecordKind::Disconnect,
                    direction: Direction::ToServer,
                    call: LibqbCall::Disconnect,
                    failed: false,
                    result: 0,
                    ts_us: ts,
                    payload: &[],
                },
            );
        });
    }
    let _inside = Inside::enter();
    // SAFETY: forwarding the caller's argument unchanged.
    unsafe { real(c) }
}

/// `qb_ipcc_send(c, msg, len)`: a request (libcpg: ITERATIONNEXT).
///
/// # Safety
/// As for libqb's: `msg` holds `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_send(c: *mut c_void, msg: *const c_void, len: size_t) -> ssize_t {
    let Some(real) = real_send() else {
        return -(libc::ENOSYS as ssize_t);
    };
    if !recording() {
        // SAFETY: forwarding unchanged.
        let r = unsafe { real(c, msg, len) };
        let _ = NESTED_SEND.try_with(|n| n.set(Some(r)));
        return r;
    }
    let ts = sink::now_us();
    let r = {
        let _inside = Inside::enter();
        // SAFETY: forwarding unchanged.
        unsafe { real(c, msg, len) }
    };
    let saved = errno();
    // SAFETY: the caller's `msg` holds `len` bytes (libqb reads them too).
    let payload = unsafe { bytes(msg, len) };
    guarded(|| {
        message(
            c,
            Channel::Request,
            Direction::ToServer,
            LibqbCall::Send,
            r,
            ts,
            payload,
        )
    });
    set_errno(saved);
    r
}

/// `qb_ipcc_sendv(c, iov, iov_len)`: a request (libcpg: MCAST, which gets no response).
///
/// # Safety
/// As for libqb's: `iov` holds `iov_len` valid iovecs.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_sendv(
    c: *mut c_void,
    iov: *const iovec,
    iov_len: size_t,
) -> ssize_t {
    let Some(real) = real_sendv() else {
        return -(libc::ENOSYS as ssize_t);
    };
    if !recording() {
        // SAFETY: forwarding unchanged.
        let r = unsafe { real(c, iov, iov_len) };
        let _ = NESTED_SEND.try_with(|n| n.set(Some(r)));
        return r;
    }
    let ts = sink::now_us();
    let r = {
        let _inside = Inside::enter();
        // SAFETY: forwarding unchanged.
        unsafe { real(c, iov, iov_len) }
    };
    let saved = errno();
    guarded(|| {
        // SAFETY: the caller's iovecs are valid (libqb reads them too).
        let payload = unsafe { gather(iov, iov_len, totem_wire::ipc::IPC_MAX_MSG_LEN + 1) };
        message(
            c,
            Channel::Request,
            Direction::ToServer,
            LibqbCall::Sendv,
            r,
            ts,
            &payload,
        );
    });
    set_errno(saved);
    r
}

/// `qb_ipcc_recv(c, msg, len, timeout)`: a response (libcpg: ITERATIONNEXT's).
///
/// # Safety
/// As for libqb's: `msg` is writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_recv(
    c: *mut c_void,
    msg: *mut c_void,
    len: size_t,
    timeout: i32,
) -> ssize_t {
    let Some(real) = real_recv() else {
        return -(libc::ENOSYS as ssize_t);
    };
    if !recording() {
        // SAFETY: forwarding unchanged.
        return unsafe { real(c, msg, len, timeout) };
    }
    let r = {
        let _inside = Inside::enter();
        // SAFETY: forwarding unchanged.
        unsafe { real(c, msg, len, timeout) }
    };
    let ts = sink::now_us();
    let saved = errno();
    if !is_idle(r) {
        // SAFETY: on success libqb wrote `r` (≤ len) bytes to `msg`.
        let payload = if r > 0 {
            unsafe { bytes(msg, (r as usize).min(len)) }
        } else {
            &[]
        };
        guarded(|| {
            message(
                c,
                Channel::Response,
                Direction::ToClient,
                LibqbCall::Recv,
                r,
                ts,
                payload,
            )
        });
    }
    set_errno(saved);
    r
}

/// `qb_ipcc_sendv_recv(...)`: a request and its response (every synchronous libcpg call).
///
/// # Safety
/// As for libqb's.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_sendv_recv(
    c: *mut c_void,
    iov: *const iovec,
    iov_len: u32,
    res_msg: *mut c_void,
    res_len: size_t,
    timeout: i32,
) -> ssize_t {
    let Some(real) = real_sendv_recv() else {
        return -(libc::ENOSYS as ssize_t);
    };
    if !recording() {
        // SAFETY: forwarding unchanged.
        return unsafe { real(c, iov, iov_len, res_msg, res_len, timeout) };
    }
    let ts_request = sink::now_us();
    let _ = NESTED_SEND.try_with(|n| n.set(None));
    let r = {
        let _inside = Inside::enter();
        // SAFETY: forwarding unchanged.
        unsafe { real(c, iov, iov_len, res_msg, res_len, timeout) }
    };
    let ts_response = sink::now_us();
    let saved = errno();
    // libqb sends through its own `qb_ipcc_sendv`, which our hook saw (libqb calls it
    // through its PLT). If it did not run, flow control refused the request before it was
    // sent (`qb_ipcc_sendv_recv`'s fc_get check): the request failed with `r`.
    let sent = NESTED_SEND.try_with(Cell::take).ok().flatten();
    guarded(|| {
        // SAFETY: the caller's iovecs are valid (libqb read them).
        let request =
            unsafe { gather(iov, iov_len as usize, totem_wire::ipc::IPC_MAX_MSG_LEN + 1) };
        let send_result = sent.unwrap_or(if r < 0 { r } else { request.len() as isize });
        message(
            c,
            Channel::Request,
            Direction::ToServer,
            LibqbCall::SendvRecv,
            send_result,
            ts_request,
            &request,
        );
        // A request that never left gets no response record; one that did gets what the
        // client got back: the response, or the receive's failure.
        if send_result >= 0 {
            // SAFETY: on success libqb wrote `r` (≤ res_len) bytes to `res_msg`.
            let payload = if r > 0 {
                unsafe { bytes(res_msg, (r as usize).min(res_len)) }
            } else {
                &[]
            };
            message(
                c,
                Channel::Response,
                Direction::ToClient,
                LibqbCall::SendvRecv,
                r,
                ts_response,
                payload,
            );
        }
    });
    set_errno(saved);
    r
}

/// `qb_ipcc_event_recv(c, msg, len, timeout)`: an event (`cpg_dispatch`).
///
/// # Safety
/// As for libqb's.
#[no_mangle]
pub unsafe extern "C" fn qb_ipcc_event_recv(
    c: *mut c_void,
    msg: *mut c_void,
    len: size_t,
    timeout: i32,
) -> ssize_t {
    let Some(real) = real_event_recv() else {
        return -(libc::ENOSYS as ssize_t);
    };
    if !recording() {
        // SAFETY: forwarding unchanged.
        return unsafe { real(c, msg, len, timeout) };
    }
    let r = {
        let _inside = Inside::enter();
        // SAFETY: forwarding unchanged.
        unsafe { real(c, msg, len, timeout) }
    };
    let ts = sink::now_us();
    let saved = errno();
    if !is_idle(r) {
        // SAFETY: on success libqb wrote `r` (≤ len) bytes to `msg`.
        let payload = if r > 0 {
            unsafe { bytes(msg, (r as usize).min(len)) }
        } else {
            &[]
        };
        guarded(|| {
            message(
                c,
                Channel::Event,
                Direction::ToClient,
                LibqbCall::EventRecv,
                r,
                ts,
                payload,
            )
        });
    }
    set_errno(saved);
    r
}

fn capturing_setup() -> bool {
    SETUP
        .try_with(|s| s.try_borrow().map(|s| s.is_some()).unwrap_or(false))
        .unwrap_or(false)
}

fn capture_setup(direction: Direction, ts: u64, result: isize, payload: &[u8]) {
    let _ = SETUP.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if let Some(list) = s.as_mut() {
                list.push((direction, ts, result as i64, payload.to_vec()));
            }
        }
    });
}

/// glibc `send`: records only the setup request that `qb_ipcc_connect` sends on this
/// thread (libqb `qb_ipc_us_send`); everything else passes straight through.
///
/// # Safety
/// As for glibc's.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    let Some(real) = real_sock_send() else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    if !capturing_setup() {
        // SAFETY: forwarding unchanged.
        return unsafe { real(fd, buf, len, flags) };
    }
    let ts = sink::now_us();
    // SAFETY: forwarding unchanged.
    let r = unsafe { real(fd, buf, len, flags) };
    let saved = errno();
    if r > 0 {
        // SAFETY: `buf` holds `len` ≥ `r` bytes.
        let sent = unsafe { bytes(buf, r as usize) };
        guarded(|| capture_setup(Direction::ToServer, ts, r, sent));
    }
    set_errno(saved);
    r
}

/// glibc `recvmsg`: records only the setup response `qb_ipcc_connect` reads on this
/// thread (libqb `qb_ipc_us_recv_msghdr`).
///
/// # Safety
/// As for glibc's.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let Some(real) = real_sock_recvmsg() else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    if !capturing_setup() {
        // SAFETY: forwarding unchanged.
        return unsafe { real(fd, msg, flags) };
    }
    // SAFETY: forwarding unchanged.
    let r = unsafe { real(fd, msg, flags) };
    let ts = sink::now_us();
    let saved = errno();
    if r > 0 && !msg.is_null() {
        guarded(|| {
            // SAFETY: recvmsg succeeded, so `msg` and its iovecs are valid and the first
            // `r` bytes of them were written.
            let received = unsafe { gather((*msg).msg_iov, (*msg).msg_iovlen, r as usize) };
            capture_setup(Direction::ToClient, ts, r, &received);
        });
    }
    set_errno(saved);
    r
}
