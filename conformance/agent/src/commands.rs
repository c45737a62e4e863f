//! Command handling: one JSON command in, one `result` line out (plus callbacks).

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::ffi::{self, CpgAddress, CpgCallbacks, CpgHandle, CpgModelV1Data, CpgName, CpgRingId};
use crate::payload::{self, rc_name, reason_name};
use crate::{emit, EXIT_WATCHDOG};

/// Largest zcb_alloc the agent will attempt: libcpg writes that many bytes into /dev/shm
/// and asserts on failure (corosync-lab.md, gotcha 4), so bigger requests are refused here.
const ZCB_ALLOC_MAX: usize = 128 << 20;

#[derive(PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Quit,
}

struct HandleState {
    value: CpgHandle,
    auto_dispatch: bool,
    finalized: bool,
    fd: c_int,
    /// Next sequence number put in the payload header; only advanced on CS_OK.
    seq: u64,
}

/// Handle value -> scenario name, for callbacks (they only get the numeric handle).
static NAMES: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());
/// When non-zero, the handle value a running dispatch should finalize from a callback.
static FINALIZE_TARGET: AtomicU64 = AtomicU64::new(0);
static FINALIZE_AFTER: AtomicU64 = AtomicU64::new(0);
static FINALIZED_IN_CALLBACK: AtomicBool = AtomicBool::new(false);

fn handle_name(h: CpgHandle) -> String {
    NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&h)
        .cloned()
        .unwrap_or_else(|| format!("0x{h:x}"))
}

/// Counts a callback for `finalize_after`; finalizing inside a callback is how a
/// CS_DISPATCH_BLOCKING call is ended (cpg_dispatch then returns CS_ERR_BAD_HANDLE).
fn count_callback(h: CpgHandle) {
    if FINALIZE_TARGET.load(Ordering::SeqCst) != h {
        return;
    }
    if FINALIZE_AFTER.fetch_sub(1, Ordering::SeqCst) == 1 {
        FINALIZE_TARGET.store(0, Ordering::SeqCst);
        if let Ok(lib) = ffi::load() {
            let rc = lib.finalize(h);
            FINALIZED_IN_CALLBACK.store(true, Ordering::SeqCst);
            emit(
                json!({"ev": "result", "cmd": "finalize", "handle": handle_name(h),
                        "rc": rc_name(rc), "in_callback": true}),
            );
        }
    }
}

fn addrs(list: &[CpgAddress]) -> Value {
    Value::Array(
        list.iter()
            .map(|a| json!({"nodeid": a.nodeid, "pid": a.pid, "reason": reason_name(a.reason)}))
            .collect(),
    )
}

extern "C" fn on_deliver(
    h: CpgHandle,
    group: *const CpgName,
    nodeid: u32,
    pid: u32,
    msg: *mut std::ffi::c_void,
    len: usize,
) {
    let body = ffi::bytes(msg, len);
    let parsed = payload::parse(body);
    emit(json!({
        "ev": "deliver", "handle": handle_name(h), "group": ffi::name(group),
        "nodeid": nodeid, "pid": pid, "len": len, "digest": payload::digest(body),
        "tag": parsed.as_ref().map(|p| p.tag.clone()),
        "seq": parsed.as_ref().map(|p| p.seq),
        "intact": parsed.as_ref().map(|p| p.intact),
    }));
    count_callback(h);
}

#[allow(clippy::too_many_arguments)] // the C callback signature (cpg.h cpg_confchg_fn_t)
extern "C" fn on_confchg(
    h: CpgHandle,
    group: *const CpgName,
    members: *const CpgAddress,
    nm: usize,
    left: *const CpgAddress,
    nl: usize,
    joined: *const CpgAddress,
    nj: usize,
) {
    emit(json!({
        "ev": "confchg", "handle": handle_name(h), "group": ffi::name(group),
        "members": addrs(ffi::addresses(members, nm)),
        "left": addrs(ffi::addresses(left, nl)),
        "joined": addrs(ffi::addresses(joined, nj)),
    }));
    count_callback(h);
}

extern "C" fn on_totem_confchg(h: CpgHandle, ring: CpgRingId, n: u32, members: *const u32) {
    emit(json!({
        "ev": "totem_confchg", "handle": handle_name(h),
        "ring": {"nodeid": ring.nodeid, "seq": ring.seq},
        "members": ffi::u32s(members, n as usize),
    }));
    count_callback(h);
}

#[derive(Default)]
pub(crate) struct Agent {
    handles: BTreeMap<String, HandleState>,
    /// zcb buffers by scenario name: (handle name, address, size).
    buffers: BTreeMap<String, (String, usize, usize)>,
}

fn s<'a>(cmd: &'a Value, key: &str) -> Option<&'a str> {
    cmd.get(key).and_then(Value::as_str)
}

fn u(cmd: &Value, key: &str) -> Option<u64> {
    cmd.get(key).and_then(Value::as_u64)
}

impl Agent {
    pub(crate) fn auto_fds(&self) -> Vec<(String, c_int)> {
        self.handles
            .iter()
            .filter(|(_, h)| h.auto_dispatch && !h.finalized && h.fd >= 0)
            .map(|(n, h)| (n.clone(), h.fd))
            .collect()
    }

    /// Dispatches everything pending on an auto-dispatched handle. A failure (e.g. the
    /// daemon died: CS_ERR_LIBRARY) is reported and stops auto dispatch for the handle.
    pub(crate) fn auto_dispatch(&mut self, name: &str) {
        let Ok(lib) = ffi::load() else { return };
        let Some(h) = self.handles.get_mut(name) else {
            return;
        };
        let rc = lib.dispatch(h.value, 2);
        if rc != 1 {
            h.auto_dispatch = false;
            emit(
                json!({"ev": "result", "cmd": "dispatch", "handle": name, "mode": "ALL",
                        "auto": true, "rc": rc_name(rc)}),
            );
        }
    }

    /// Resolves the handle a command names; `handle_value` overrides it so scenarios can
    /// pass invalid handles (0, 0xdeadbeef) on purpose.
    fn target(&self, cmd: &Value) -> Result<(String, CpgHandle), String> {
        if let Some(v) = u(cmd, "handle_value") {
            return Ok((format!("0x{v:x}"), v));
        }
        let name = s(cmd, "handle").unwrap_or("h1").to_owned();
        match self.handles.get(&name) {
            Some(h) => Ok((name, h.value)),
            None => Err(format!("unknown handle {name:?} (initialize it first)")),
        }
    }

    /// The `struct cpg_name` a command names: `group` in the escaped notation of traces
    /// (`\\`, `\xNN`, so NUL and non-UTF-8 bytes can be given), `name_length` setting the
    /// length field apart from the bytes, which libcpg sends whole either way.
    fn group(cmd: &Value) -> Result<CpgName, String> {
        let g = totem_wire::exec::cpg::unescape_name(s(cmd, "group").unwrap_or(""))?;
        let len = u(cmd, "name_length").map(|l| l as u32);
        Ok(CpgName::new(&g, len))
    }

    pub(crate) fn handle(&mut self, cmd: &Value) -> Flow {
        let name = s(cmd, "cmd").unwrap_or("").to_owned();
        let mut out = Map::new();
        out.insert("ev".into(), json!("result"));
        out.insert("cmd".into(), json!(name));
        if let Some(id) = cmd.get("id") {
            out.insert("id".into(), id.clone());
        }
        if name == "quit" {
            emit(Value::Object(out));
            return Flow::Quit;
        }
        match self.run(&name, cmd, &mut out) {
            Ok(()) => {}
            Err(e) => {
                out.insert("error".into(), json!(e));
            }
        }
        emit(Value::Object(out));
        Flow::Continue
    }

    fn run(&mut self, name: &str, cmd: &Value, out: &mut Map<String, Value>) -> Result<(), String> {
        let lib = ffi::load()?;
        let mut put = |k: &str, v: Value| {
            out.insert(k.into(), v);
        };
        if name == "initialize" {
            let hname = s(cmd, "handle").unwrap_or("h1").to_owned();
            put("handle", json!(hname));
            let (rc, h) = match s(cmd, "model").unwrap_or("plain") {
                "plain" => lib.initialize(CpgCallbacks {
                    deliver: Some(on_deliver),
                    confchg: Some(on_confchg),
                }),
                "v1" => {
                    let initial = cmd
                        .get("initial_totem_conf")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    lib.model_initialize(
                        CpgModelV1Data {
                            model: ffi::CPG_MODEL_V1,
                            deliver: Some(on_deliver),
                            confchg: Some(on_confchg),
                            totem_confchg: Some(on_totem_confchg),
                            flags: if initial {
                                ffi::CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF
                            } else {
                                0
                            },
                        },
                        u(cmd, "context").unwrap_or(0) as usize,
                    )
                }
                other => return Err(format!("unknown model {other:?} (plain or v1)")),
            };
            put("rc", json!(rc_name(rc)));
            if rc == 1 {
                NAMES
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(h, hname.clone());
                let (frc, fd) = lib.fd_get(h);
                self.handles.insert(
                    hname,
                    HandleState {
                        value: h,
                        auto_dispatch: cmd
                            .get("auto_dispatch")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                        finalized: false,
                        fd: if frc == 1 { fd } else { -1 },
                        seq: 0,
                    },
                );
            }
            return Ok(());
        }
        if name == "zcb_free" && cmd.get("bogus").and_then(Value::as_bool) == Some(true) {
            // cpg_zcb_free on memory libcpg did not hand out: a stack buffer's address.
            let (hn, h) = self.target(cmd)?;
            put("handle", json!(hn));
            // libcpg reads the buffer's header 56 bytes before the pointer
            // (map_size, server_address): with the pointer 64 bytes into a zeroed buffer
            // that header is zeros, so the call is deterministic (ZC_FREE {0, 0}, then
            // munmap of length 0 fails with EINVAL: CS_ERR_INVALID_PARAM). A pointer nearer
            // the start read stack garbage and made the result vary from run to run.
            let probe = [0u8; 128];
            put(
                "rc",
                json!(rc_name(lib.zcb_free(h, probe.as_ptr() as usize + 64))),
            );
            return Ok(());
        }
        let (hname, h) = self.target(cmd)?;
        put("handle", json!(hname));
        match name {
            "finalize" => {
                let rc = lib.finalize(h);
                put("rc", json!(rc_name(rc)));
                if let Some(st) = self.handles.get_mut(&hname) {
                    // The stale value is kept: later calls on it must give CS_ERR_BAD_HANDLE.
                    st.finalized = st.finalized || rc == 1;
                }
            }
            "join" | "leave" => {
                let g = Self::group(cmd)?;
                put("group", json!(g.escaped()));
                let rc = if name == "join" {
                    lib.join(h, &g)
                } else {
                    lib.leave(h, &g)
                };
                put("rc", json!(rc_name(rc)));
            }
            "mcast" => self.mcast(lib, &hname, h, cmd, &mut put)?,
            "zcb_alloc" => {
                let size = u(cmd, "size").unwrap_or(64) as usize;
                if size > ZCB_ALLOC_MAX {
                    return Err(format!("refused: zcb_alloc of {size} bytes exceeds the agent's {ZCB_ALLOC_MAX}-byte safety cap"));
                }
                let (rc, p) = lib.zcb_alloc(h, size);
                put("rc", json!(rc_name(rc)));
                put("non_null", json!(p != 0));
                if rc == 1 {
                    let b = s(cmd, "buf").unwrap_or("b1").to_owned();
                    self.buffers.insert(b, (hname.clone(), p, size));
                }
            }
            "zcb_mcast" => {
                let b = s(cmd, "buf").unwrap_or("b1");
                let &(_, p, cap) = self
                    .buffers
                    .get(b)
                    .ok_or_else(|| format!("unknown zcb buffer {b:?}"))?;
                let len = u(cmd, "len").map_or(cap, |l| l as usize);
                if len > cap {
                    // corosync-lab.md: len > allocation crashed corosync 3.1.7 (SIGSEGV).
                    return Err(format!(
                        "refused: len {len} exceeds the {cap}-byte buffer (crashes corosync 3.1.7)"
                    ));
                }
                let g = payload::guarantee(s(cmd, "guarantee").unwrap_or("AGREED"))
                    .ok_or("bad guarantee")?;
                let st = self
                    .handles
                    .get_mut(&hname)
                    .ok_or("zcb_mcast needs a named handle")?;
                let tag = s(cmd, "tag").map_or_else(|| hname.clone(), str::to_owned);
                let body = payload::build(&tag, st.seq, len);
                lib.zcb_fill(p, cap, &body);
                let rc = lib.zcb_mcast_joined(h, g, p, len);
                put("rc", json!(rc_name(rc)));
                put("tag", json!(tag));
                put("seq", json!(st.seq));
                put("len", json!(len));
                put("digest", json!(payload::digest(&body)));
                if rc == 1 {
                    st.seq += 1;
                }
            }
            "zcb_free" => {
                let b = s(cmd, "buf").unwrap_or("b1");
                let (_, p, _) = self
                    .buffers
                    .remove(b)
                    .ok_or_else(|| format!("unknown zcb buffer {b:?}"))?;
                put("rc", json!(rc_name(lib.zcb_free(h, p))));
            }
            "membership_get" => {
                let g = Self::group(cmd)?;
                let (rc, list) = lib.membership_get(h, &g);
                put("rc", json!(rc_name(rc)));
                // Outputs of a failed call are whatever was in memory: left out, so that
                // traces stay comparable across runs and implementations.
                if rc == 1 {
                    put("members", addrs(&list));
                }
            }
            "local_get" => {
                let (rc, n) = lib.local_get(h);
                put("rc", json!(rc_name(rc)));
                if rc == 1 {
                    put("nodeid", json!(n));
                }
            }
            "context_get" => {
                let (rc, v) = lib.context_get(h);
                put("rc", json!(rc_name(rc)));
                if rc == 1 {
                    put("context", json!(v));
                }
            }
            "context_set" => {
                let rc = lib.context_set(h, u(cmd, "context").unwrap_or(0) as usize);
                put("rc", json!(rc_name(rc)));
            }
            "fd_get" => {
                let (rc, fd) = lib.fd_get(h);
                put("rc", json!(rc_name(rc)));
                put("fd_valid", json!(rc == 1 && ffi::fd_is_open(fd)));
            }
            "flow_control_state_get" => {
                let (rc, v) = lib.flow_control_state_get(h);
                put("rc", json!(rc_name(rc)));
                if rc == 1 {
                    put("state", json!(if v == 0 { "DISABLED" } else { "ENABLED" }));
                }
            }
            "max_atomic_msgsize_get" => {
                let (rc, v) = lib.max_atomic_msgsize_get(h);
                put("rc", json!(rc_name(rc)));
                if rc == 1 {
                    put("size", json!(v));
                }
            }
            "dispatch" => Self::dispatch(lib, h, &hname, cmd, &mut put)?,
            "iteration" => Self::iteration(lib, h, cmd, &mut put)?,
            other => return Err(format!("unknown command {other:?}")),
        }
        Ok(())
    }

    fn mcast(
        &mut self,
        lib: &ffi::Cpg,
        hname: &str,
        h: CpgHandle,
        cmd: &Value,
        put: &mut impl FnMut(&str, Value),
    ) -> Result<(), String> {
        let g =
            payload::guarantee(s(cmd, "guarantee").unwrap_or("AGREED")).ok_or("bad guarantee")?;
        let size = u(cmd, "size").unwrap_or(64) as usize;
        let count = u(cmd, "count").unwrap_or(1);
        let iovs = u(cmd, "iovs").unwrap_or(1) as usize;
        let tag = s(cmd, "tag").map_or_else(|| hname.to_owned(), str::to_owned);
        // Bursts retry on CS_ERR_TRY_AGAIN (cpg_mcast_joined's flow control), dispatching
        // meanwhile so callbacks keep flowing; they give up after `retry_ms` without progress.
        let retry_ms = u(cmd, "retry_ms").unwrap_or(if count > 1 { 10_000 } else { 0 });
        let (mut sent, mut try_again, mut last_rc, mut first_seq) = (0u64, 0u64, 1, None);
        let mut digest = None;
        let mut stalled_since = std::time::Instant::now();
        while sent < count {
            let seq = self.handles.get(hname).map_or(0, |st| st.seq);
            let body = payload::build(&tag, seq, size);
            let parts: Vec<&[u8]> = match iovs {
                0 => Vec::new(),
                1 => vec![&body[..]],
                n => {
                    let step = body.len().div_ceil(n).max(1);
                    let mut v: Vec<&[u8]> = body.chunks(step).collect();
                    v.resize(n, &[]);
                    v
                }
            };
            let rc = lib.mcast_joined(h, g, &parts);
            last_rc = rc;
            if rc == 1 {
                if let Some(st) = self.handles.get_mut(hname) {
                    st.seq += 1;
                }
                first_seq.get_or_insert(seq);
                digest = Some(payload::digest(&body));
                sent += 1;
                stalled_since = std::time::Instant::now();
            } else if rc == 6 && stalled_since.elapsed() < Duration::from_millis(retry_ms) {
                try_again += 1;
                for (n, _) in self.auto_fds() {
                    self.auto_dispatch(&n);
                }
                std::thread::sleep(Duration::from_millis(1));
            } else {
                break;
            }
        }
        put("rc", json!(rc_name(last_rc)));
        put("tag", json!(tag));
        put("sent", json!(sent));
        put("first_seq", json!(first_seq));
        put("size", json!(size));
        put("try_again", json!(try_again));
        if count == 1 {
            put("digest", json!(digest));
        }
        Ok(())
    }

    fn dispatch(
        lib: &ffi::Cpg,
        h: CpgHandle,
        hname: &str,
        cmd: &Value,
        put: &mut impl FnMut(&str, Value),
    ) -> Result<(), String> {
        let mode_s = s(cmd, "mode").unwrap_or("ALL");
        let mode = payload::dispatch_mode(mode_s).ok_or("bad dispatch mode")?;
        put("mode", json!(mode_s));
        let timeout_ms = u(cmd, "timeout_ms").unwrap_or(3000);
        // ONE and BLOCKING wait forever when nothing is pending (corosync-lab.md). The
        // default guard polls the fd first and reports `would_block` instead of calling;
        // `guard: watchdog` calls for real and ends the agent if the call outlives timeout.
        let guard = s(cmd, "guard").unwrap_or(if mode == 3 { "watchdog" } else { "poll" });
        if guard == "poll" && mode != 2 && mode != 4 {
            let (_, fd) = lib.fd_get(h);
            if ffi::poll(&[fd], timeout_ms as i32)[0] == 0 {
                put("would_block", json!(true));
                return Ok(());
            }
        }
        if let Some(n) = u(cmd, "finalize_after") {
            FINALIZE_AFTER.store(n, Ordering::SeqCst);
            FINALIZE_TARGET.store(h, Ordering::SeqCst);
        }
        FINALIZED_IN_CALLBACK.store(false, Ordering::SeqCst);
        let done = std::sync::Arc::new(AtomicBool::new(false));
        if guard == "watchdog" {
            let done2 = done.clone();
            let hn = hname.to_owned();
            let ms = mode_s.to_owned();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(timeout_ms));
                if !done2.load(Ordering::SeqCst) {
                    emit(
                        json!({"ev": "watchdog", "cmd": "dispatch", "handle": hn, "mode": ms,
                                "blocked_ms": timeout_ms}),
                    );
                    ffi::hard_exit(EXIT_WATCHDOG);
                }
            });
        }
        let rc = lib.dispatch(h, mode);
        done.store(true, Ordering::SeqCst);
        FINALIZE_TARGET.store(0, Ordering::SeqCst);
        put("rc", json!(rc_name(rc)));
        put(
            "finalized_in_callback",
            json!(FINALIZED_IN_CALLBACK.load(Ordering::SeqCst)),
        );
        Ok(())
    }

    fn iteration(
        lib: &ffi::Cpg,
        h: CpgHandle,
        cmd: &Value,
        put: &mut impl FnMut(&str, Value),
    ) -> Result<(), String> {
        let kind =
            payload::iteration_type(s(cmd, "type").unwrap_or("ALL")).ok_or("bad iteration type")?;
        let group = cmd.get("group").map(|_| Self::group(cmd)).transpose()?;
        let (rc, it) = lib.iteration_initialize(h, kind, group.as_ref());
        put("rc", json!(rc_name(rc)));
        if rc != 1 {
            return Ok(());
        }
        let mut items = Vec::new();
        let end_rc = loop {
            let (rc, d) = lib.iteration_next(it);
            match d {
                Some(d) => items
                    .push(json!({"group": d.group.escaped(), "nodeid": d.nodeid, "pid": d.pid})),
                None => break rc,
            }
            if items.len() > 10_000 {
                break rc;
            }
        };
        put("items", Value::Array(items));
        put("next_end_rc", json!(rc_name(end_rc)));
        put("finalize_rc", json!(rc_name(lib.iteration_finalize(it))));
        if cmd.get("after_finalize").and_then(Value::as_bool) == Some(true) {
            put(
                "next_after_finalize_rc",
                json!(rc_name(lib.iteration_next(it).0)),
            );
            put(
                "finalize_after_finalize_rc",
                json!(rc_name(lib.iteration_finalize(it))),
            );
        }
        Ok(())
    }
}
