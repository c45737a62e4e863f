//! [`SvcApi`] over libquorum.so.5, libcmap.so.4 and libcfg.so.7, each loaded at run time
//! at its first command (as `libevs`), with the prototypes of corosync 3.1.7's quorum.h,
//! cmap.h and cfg.h. Nothing links them, so the agent builds without corosync; a missing
//! library makes that service's calls CS_ERR_LIBRARY. `TOTEM_CONFORM_LIBQUORUM`,
//! `TOTEM_CONFORM_LIBCMAP` and `TOTEM_CONFORM_LIBCFG` name others (a soname or a path).
//! Callbacks reach the running dispatch's handler through a thread-local, as in `libcpg`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;
use std::time::Duration;

use totem_agent_protocol::api::{EventFd, Handle};
use totem_agent_protocol::svc::{
    CmapValue, QuorumModel, Service, SvcApi, SvcCallback, CMAP_VALUE_MAX,
};
use totem_wire::ipc::CsError;

use crate::ffi;

type Rc = c_int;
const CS_DISPATCH_ALL: c_int = 2;

/// `struct quorum_ring_id` (quorum.h): nodeid @0, seq @8.
#[repr(C)]
#[derive(Clone, Copy)]
struct QuorumRingId {
    nodeid: u32,
    seq: u64,
}

type QuorumV0Fn = extern "C" fn(u64, u32, u64, u32, *mut u32);
type QuorumV1Fn = extern "C" fn(u64, u32, QuorumRingId, u32, *const u32);
type NodelistFn =
    extern "C" fn(u64, QuorumRingId, u32, *const u32, u32, *const u32, u32, *const u32);

/// `quorum_callbacks_t`.
#[repr(C)]
struct QuorumCallbacks {
    notify: Option<QuorumV0Fn>,
}

/// `quorum_model_v1_data_t`: the model (an enum, `int`), then the two callbacks.
#[repr(C)]
struct QuorumModelV1Data {
    model: c_int,
    notify: Option<QuorumV1Fn>,
    nodelist: Option<NodelistFn>,
}

/// `struct cmap_notify_value`: type (enum), len (size_t), data.
#[repr(C)]
#[derive(Clone, Copy)]
struct CmapNotifyValue {
    kind: c_int,
    len: usize,
    data: *const c_void,
}

type CmapNotifyFn =
    extern "C" fn(u64, u64, i32, *const c_char, CmapNotifyValue, CmapNotifyValue, *mut c_void);

type CfgShutdownFn = extern "C" fn(u64, c_int);

/// `corosync_cfg_callbacks_t`.
#[repr(C)]
struct CfgCallbacks {
    shutdown: Option<CfgShutdownFn>,
}

struct Quorum {
    _lib: libloading::Library,
    initialize: unsafe extern "C" fn(*mut u64, *mut QuorumCallbacks, *mut u32) -> Rc,
    model_initialize:
        unsafe extern "C" fn(*mut u64, c_int, *mut QuorumModelV1Data, *mut u32, *mut c_void) -> Rc,
    finalize: unsafe extern "C" fn(u64) -> Rc,
    fd_get: unsafe extern "C" fn(u64, *mut c_int) -> Rc,
    dispatch: unsafe extern "C" fn(u64, c_int) -> Rc,
    getquorate: unsafe extern "C" fn(u64, *mut c_int) -> Rc,
    trackstart: unsafe extern "C" fn(u64, u32) -> Rc,
    trackstop: unsafe extern "C" fn(u64) -> Rc,
}

struct Cmap {
    _lib: libloading::Library,
    initialize: unsafe extern "C" fn(*mut u64) -> Rc,
    finalize: unsafe extern "C" fn(u64) -> Rc,
    fd_get: unsafe extern "C" fn(u64, *mut c_int) -> Rc,
    dispatch: unsafe extern "C" fn(u64, c_int) -> Rc,
    set: unsafe extern "C" fn(u64, *const c_char, *const c_void, usize, c_int) -> Rc,
    get: unsafe extern "C" fn(u64, *const c_char, *mut c_void, *mut usize, *mut c_int) -> Rc,
    delete: unsafe extern "C" fn(u64, *const c_char) -> Rc,
    track_add: unsafe extern "C" fn(
        u64,
        *const c_char,
        i32,
        Option<CmapNotifyFn>,
        *mut c_void,
        *mut u64,
    ) -> Rc,
    track_delete: unsafe extern "C" fn(u64, u64) -> Rc,
}

struct Cfg {
    _lib: libloading::Library,
    initialize: unsafe extern "C" fn(*mut u64, *const CfgCallbacks) -> Rc,
    finalize: unsafe extern "C" fn(u64) -> Rc,
    fd_get: unsafe extern "C" fn(u64, *mut i32) -> Rc,
    dispatch: unsafe extern "C" fn(u64, c_int) -> Rc,
    trackstart: unsafe extern "C" fn(u64, u8) -> Rc,
    trackstop: unsafe extern "C" fn(u64) -> Rc,
    try_shutdown: unsafe extern "C" fn(u64, c_int) -> Rc,
    replyto_shutdown: unsafe extern "C" fn(u64, c_int) -> Rc,
}

static QUORUM: OnceLock<Result<Quorum, String>> = OnceLock::new();
static CMAP: OnceLock<Result<Cmap, String>> = OnceLock::new();
static CFG: OnceLock<Result<Cfg, String>> = OnceLock::new();

/// The library a service is loaded from.
pub(crate) fn library_name(svc: Service) -> String {
    let (var, default) = match svc {
        Service::Quorum => ("TOTEM_CONFORM_LIBQUORUM", "libquorum.so.5"),
        Service::Cmap => ("TOTEM_CONFORM_LIBCMAP", "libcmap.so.4"),
        Service::Cfg => ("TOTEM_CONFORM_LIBCFG", "libcfg.so.7"),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

macro_rules! sym {
    ($lib:expr, $svc:expr, $name:literal) => {{
        // SAFETY: the type the symbol is cast to is its prototype in corosync 3.1.7's
        // header of the service.
        let s = unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .map_err(|e| format!("{}: missing symbol {}: {e}", library_name($svc), $name))?;
        *s
    }};
}

fn open(svc: Service) -> Result<libloading::Library, String> {
    let name = library_name(svc);
    // SAFETY: loading a corosync client library runs only its constructors.
    unsafe { libloading::Library::new(&name) }.map_err(|e| format!("cannot load {name}: {e}"))
}

fn quorum() -> Result<&'static Quorum, String> {
    QUORUM
        .get_or_init(|| {
            let s = Service::Quorum;
            let lib = open(s)?;
            Ok(Quorum {
                initialize: sym!(lib, s, "quorum_initialize"),
                model_initialize: sym!(lib, s, "quorum_model_initialize"),
                finalize: sym!(lib, s, "quorum_finalize"),
                fd_get: sym!(lib, s, "quorum_fd_get"),
                dispatch: sym!(lib, s, "quorum_dispatch"),
                getquorate: sym!(lib, s, "quorum_getquorate"),
                trackstart: sym!(lib, s, "quorum_trackstart"),
                trackstop: sym!(lib, s, "quorum_trackstop"),
                _lib: lib,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn cmap() -> Result<&'static Cmap, String> {
    CMAP.get_or_init(|| {
        let s = Service::Cmap;
        let lib = open(s)?;
        Ok(Cmap {
            initialize: sym!(lib, s, "cmap_initialize"),
            finalize: sym!(lib, s, "cmap_finalize"),
            fd_get: sym!(lib, s, "cmap_fd_get"),
            dispatch: sym!(lib, s, "cmap_dispatch"),
            set: sym!(lib, s, "cmap_set"),
            get: sym!(lib, s, "cmap_get"),
            delete: sym!(lib, s, "cmap_delete"),
            track_add: sym!(lib, s, "cmap_track_add"),
            track_delete: sym!(lib, s, "cmap_track_delete"),
            _lib: lib,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn cfg() -> Result<&'static Cfg, String> {
    CFG.get_or_init(|| {
        let s = Service::Cfg;
        let lib = open(s)?;
        Ok(Cfg {
            initialize: sym!(lib, s, "corosync_cfg_initialize"),
            finalize: sym!(lib, s, "corosync_cfg_finalize"),
            fd_get: sym!(lib, s, "corosync_cfg_fd_get"),
            dispatch: sym!(lib, s, "corosync_cfg_dispatch"),
            trackstart: sym!(lib, s, "corosync_cfg_trackstart"),
            trackstop: sym!(lib, s, "corosync_cfg_trackstop"),
            try_shutdown: sym!(lib, s, "corosync_cfg_try_shutdown"),
            replyto_shutdown: sym!(lib, s, "corosync_cfg_replyto_shutdown"),
            _lib: lib,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

type Sink = dyn FnMut(&SvcCallback);

thread_local! {
    /// The running dispatch's handler (none outside a `*_dispatch`).
    static SINK: Cell<Option<*mut Sink>> = const { Cell::new(None) };
    /// The running cfg dispatch's shutdown answer (YES 1 / NO 0).
    static REPLY: Cell<Option<u32>> = const { Cell::new(None) };
}

fn hand_over(cb: SvcCallback) {
    let Some(sink) = SINK.with(Cell::get) else {
        return;
    };
    // SAFETY: `dispatch` parks a pointer to a closure that outlives the C call and clears
    // it before returning; callbacks run only inside that call, on this thread.
    unsafe { (*sink)(&cb) };
}

extern "C" fn on_quorum_v0(_h: u64, quorate: u32, seq: u64, n: u32, list: *mut u32) {
    hand_over(SvcCallback::Quorum {
        quorate: quorate != 0,
        ring_nodeid: None,
        ring_seq: seq,
        members: ffi::u32s(list, n as usize).to_vec(),
    });
}

extern "C" fn on_quorum_v1(_h: u64, quorate: u32, ring: QuorumRingId, n: u32, list: *const u32) {
    hand_over(SvcCallback::Quorum {
        quorate: quorate != 0,
        ring_nodeid: Some(ring.nodeid),
        ring_seq: ring.seq,
        members: ffi::u32s(list, n as usize).to_vec(),
    });
}

#[allow(clippy::too_many_arguments)] // quorum_v1_nodelist_notification_fn_t (quorum.h)
extern "C" fn on_nodelist(
    _h: u64,
    ring: QuorumRingId,
    nm: u32,
    members: *const u32,
    nj: u32,
    joined: *const u32,
    nl: u32,
    left: *const u32,
) {
    hand_over(SvcCallback::Nodelist {
        ring: (ring.nodeid, ring.seq),
        members: ffi::u32s(members, nm as usize).to_vec(),
        joined: ffi::u32s(joined, nj as usize).to_vec(),
        left: ffi::u32s(left, nl as usize).to_vec(),
    });
}

fn notify_value(v: CmapNotifyValue) -> Option<CmapValue> {
    if v.len > CMAP_VALUE_MAX {
        return Some(CmapValue::Str(format!("<{} bytes>", v.len)));
    }
    let data = ffi::bytes(v.data, v.len);
    // A value whose length does not fit its type is reported, not trusted.
    CmapValue::from_c(v.kind as u32, data).unwrap_or_else(|e| Some(CmapValue::Str(e)))
}

extern "C" fn on_cmap(
    _h: u64,
    track: u64,
    event: i32,
    key: *const c_char,
    new: CmapNotifyValue,
    old: CmapNotifyValue,
    _user: *mut c_void,
) {
    let key = if key.is_null() {
        String::new()
    } else {
        // SAFETY: libcmap passes a NUL-terminated key name for the callback's duration.
        unsafe { CStr::from_ptr(key) }
            .to_string_lossy()
            .into_owned()
    };
    hand_over(SvcCallback::Cmap {
        track,
        event,
        key,
        new: notify_value(new),
        old: notify_value(old),
    });
}

extern "C" fn on_shutdown(h: u64, flags: c_int) {
    // Answered from inside the callback, as pacemakerd's cfg_shutdown_callback does.
    let replied = REPLY.with(Cell::get).and_then(|reply| {
        let lib = cfg().ok()?;
        // SAFETY: a plain call on the handle being dispatched.
        let rc = unsafe { (lib.replyto_shutdown)(h, reply as c_int) };
        Some((reply, CsError::from(rc)))
    });
    hand_over(SvcCallback::CfgShutdown {
        flags: flags as u32,
        replied,
    });
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

fn lib_err<T>(r: Result<T, String>) -> Result<T, CsError> {
    r.map_err(|_| CsError::Library)
}

fn key(k: &str) -> Result<CString, CsError> {
    // A key with a NUL cannot be passed to C; libcmap would see a shorter one.
    CString::new(k).map_err(|_| CsError::InvalidParam)
}

/// The three libraries, each loaded at its first call.
#[derive(Default)]
pub(crate) struct LibSvc;

impl LibSvc {
    /// What `--probe` prints for the three: loaded or why not.
    pub(crate) fn probe() -> String {
        let one = |s: Service, r: Result<(), String>| match r {
            Ok(()) => library_name(s),
            Err(e) => format!("none ({e})"),
        };
        format!(
            "quorum: {}; cmap: {}; cfg: {}",
            one(Service::Quorum, quorum().map(|_| ())),
            one(Service::Cmap, cmap().map(|_| ())),
            one(Service::Cfg, cfg().map(|_| ()))
        )
    }
}

impl SvcApi for LibSvc {
    fn library(&self, svc: Service) -> Result<String, String> {
        match svc {
            Service::Quorum => quorum().map(|_| ()),
            Service::Cmap => cmap().map(|_| ()),
            Service::Cfg => cfg().map(|_| ()),
        }
        .map(|()| library_name(svc))
    }

    fn quorum_initialize(&mut self, model: QuorumModel) -> Result<(Handle, u32), CsError> {
        let lib = lib_err(quorum())?;
        let mut h = 0u64;
        let mut kind = 0u32;
        let rc = match model {
            QuorumModel::V0 => {
                let mut cb = QuorumCallbacks {
                    notify: Some(on_quorum_v0),
                };
                // SAFETY: valid pointers; libquorum copies the callbacks.
                unsafe { (lib.initialize)(&mut h, &mut cb, &mut kind) }
            }
            QuorumModel::V1 => {
                let mut data = QuorumModelV1Data {
                    model: 1,
                    notify: Some(on_quorum_v1),
                    nodelist: Some(on_nodelist),
                };
                // SAFETY: valid pointers; libquorum copies the model data.
                unsafe {
                    (lib.model_initialize)(&mut h, 1, &mut data, &mut kind, std::ptr::null_mut())
                }
            }
        };
        ok_or(rc, (h, kind))
    }

    fn quorum_trackstart(&mut self, h: Handle, flags: u32) -> CsError {
        match quorum() {
            // SAFETY: bad handles give CS_ERR_BAD_HANDLE.
            Ok(lib) => cs(unsafe { (lib.trackstart)(h, flags) }),
            Err(_) => CsError::Library,
        }
    }

    fn quorum_trackstop(&mut self, h: Handle) -> CsError {
        match quorum() {
            // SAFETY: as trackstart.
            Ok(lib) => cs(unsafe { (lib.trackstop)(h) }),
            Err(_) => CsError::Library,
        }
    }

    fn quorum_getquorate(&mut self, h: Handle) -> Result<bool, CsError> {
        let lib = lib_err(quorum())?;
        let mut q: c_int = 0;
        // SAFETY: valid out pointer.
        let rc = unsafe { (lib.getquorate)(h, &mut q) };
        ok_or(rc, q != 0)
    }

    fn cmap_initialize(&mut self) -> Result<Handle, CsError> {
        let lib = lib_err(cmap())?;
        let mut h = 0u64;
        // SAFETY: valid out pointer.
        let rc = unsafe { (lib.initialize)(&mut h) };
        ok_or(rc, h)
    }

    fn cmap_get(&mut self, h: Handle, k: &str) -> Result<Option<CmapValue>, CsError> {
        let lib = lib_err(cmap())?;
        let k = key(k)?;
        let mut buf = vec![0u8; CMAP_VALUE_MAX];
        let mut len = buf.len();
        let mut kind: c_int = 0;
        // SAFETY: `buf` holds `len` bytes, which is what libcmap is told.
        let rc = unsafe { (lib.get)(h, k.as_ptr(), buf.as_mut_ptr().cast(), &mut len, &mut kind) };
        ok_or(rc, ())?;
        let data = &buf[..len.min(buf.len())];
        CmapValue::from_c(kind as u32, data).map_err(|_| CsError::Library)
    }

    fn cmap_set(&mut self, h: Handle, k: &str, value: &CmapValue) -> CsError {
        let Ok(lib) = cmap() else {
            return CsError::Library;
        };
        let (Ok(k), Ok(bytes)) = (key(k), value.bytes()) else {
            return CsError::InvalidParam;
        };
        // SAFETY: `bytes` is live for the call; libcmap copies it.
        cs(unsafe {
            (lib.set)(
                h,
                k.as_ptr(),
                bytes.as_ptr().cast(),
                bytes.len(),
                value.c_type() as c_int,
            )
        })
    }

    fn cmap_delete(&mut self, h: Handle, k: &str) -> CsError {
        let Ok(lib) = cmap() else {
            return CsError::Library;
        };
        let Ok(k) = key(k) else {
            return CsError::InvalidParam;
        };
        // SAFETY: a live NUL-terminated key.
        cs(unsafe { (lib.delete)(h, k.as_ptr()) })
    }

    fn cmap_track_add(&mut self, h: Handle, k: &str, track_type: i32) -> Result<u64, CsError> {
        let lib = lib_err(cmap())?;
        let k = key(k)?;
        let mut t = 0u64;
        // SAFETY: valid pointers; the callback is a plain function, user_data unused.
        let rc = unsafe {
            (lib.track_add)(
                h,
                k.as_ptr(),
                track_type,
                Some(on_cmap),
                std::ptr::null_mut(),
                &mut t,
            )
        };
        ok_or(rc, t)
    }

    fn cmap_track_delete(&mut self, h: Handle, track: u64) -> CsError {
        match cmap() {
            // SAFETY: bad handles give CS_ERR_BAD_HANDLE.
            Ok(lib) => cs(unsafe { (lib.track_delete)(h, track) }),
            Err(_) => CsError::Library,
        }
    }

    fn cfg_initialize(&mut self) -> Result<Handle, CsError> {
        let lib = lib_err(cfg())?;
        let mut h = 0u64;
        let cb = CfgCallbacks {
            shutdown: Some(on_shutdown),
        };
        // SAFETY: valid pointers; libcfg copies the callbacks.
        let rc = unsafe { (lib.initialize)(&mut h, &cb) };
        ok_or(rc, h)
    }

    fn cfg_trackstart(&mut self, h: Handle) -> CsError {
        match cfg() {
            // SAFETY: bad handles give CS_ERR_BAD_HANDLE.
            Ok(lib) => cs(unsafe { (lib.trackstart)(h, 0) }),
            Err(_) => CsError::Library,
        }
    }

    fn cfg_trackstop(&mut self, h: Handle) -> CsError {
        match cfg() {
            // SAFETY: as trackstart.
            Ok(lib) => cs(unsafe { (lib.trackstop)(h) }),
            Err(_) => CsError::Library,
        }
    }

    fn cfg_try_shutdown(&mut self, h: Handle, flags: u32) -> CsError {
        match cfg() {
            // SAFETY: the call blocks until the daemon answers (at most its
            // shutdown_timeout while trackers decide).
            Ok(lib) => cs(unsafe { (lib.try_shutdown)(h, flags as c_int) }),
            Err(_) => CsError::Library,
        }
    }

    fn finalize(&mut self, svc: Service, h: Handle) -> CsError {
        // SAFETY (all three): bad handles give CS_ERR_BAD_HANDLE.
        match svc {
            Service::Quorum => quorum().map(|l| cs(unsafe { (l.finalize)(h) })),
            Service::Cmap => cmap().map(|l| cs(unsafe { (l.finalize)(h) })),
            Service::Cfg => cfg().map(|l| cs(unsafe { (l.finalize)(h) })),
        }
        .unwrap_or(CsError::Library)
    }

    fn fd_get(&mut self, svc: Service, h: Handle) -> Result<EventFd, CsError> {
        let mut fd: c_int = -1;
        // SAFETY (all three): valid out pointer.
        let rc = match svc {
            Service::Quorum => lib_err(quorum()).map(|l| unsafe { (l.fd_get)(h, &mut fd) }),
            Service::Cmap => lib_err(cmap()).map(|l| unsafe { (l.fd_get)(h, &mut fd) }),
            Service::Cfg => lib_err(cfg()).map(|l| unsafe { (l.fd_get)(h, &mut fd) }),
        }?;
        ok_or(
            rc,
            EventFd {
                fd: Some(fd),
                open: ffi::fd_is_open(fd),
            },
        )
    }

    fn wait_event(&mut self, svc: Service, h: Handle, timeout: Duration) -> Result<bool, CsError> {
        let fd = self.fd_get(svc, h)?.fd.unwrap_or(-1);
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        Ok(ffi::poll(&[fd], ms)[0] != 0)
    }

    fn dispatch(
        &mut self,
        svc: Service,
        h: Handle,
        shutdown_reply: Option<u32>,
        on_callback: &mut dyn FnMut(&SvcCallback),
    ) -> CsError {
        let call = match svc {
            Service::Quorum => quorum().map(|l| l.dispatch),
            Service::Cmap => cmap().map(|l| l.dispatch),
            Service::Cfg => cfg().map(|l| l.dispatch),
        };
        let Ok(call) = call else {
            return CsError::Library;
        };
        let sink: *mut (dyn FnMut(&SvcCallback) + '_) = on_callback;
        // SAFETY: only the lifetime is erased; the pointer is cleared below, before the
        // borrow ends, and used only by callbacks inside this call.
        let sink: *mut Sink = unsafe { std::mem::transmute(sink) };
        let outer = SINK.with(|s| s.replace(Some(sink)));
        let outer_reply = REPLY.with(|r| r.replace(shutdown_reply));
        // SAFETY: callbacks run on this thread and touch only the agent's state.
        let rc = unsafe { call(h, CS_DISPATCH_ALL) };
        SINK.with(|s| s.set(outer));
        REPLY.with(|r| r.set(outer_reply));
        cs(rc)
    }
}
