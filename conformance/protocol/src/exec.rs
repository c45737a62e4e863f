//! The protocol's one implementation: a [`Request`] in, `result` and callback events out,
//! over any [`CpgApi`]. The agent process and the `sim` backend both run it, so what a
//! command means is written once.

use std::collections::BTreeMap;
use std::time::Duration;

use totem_wire::exec::cpg::{unescape_name, CpgName};
use totem_wire::ipc::cpg::CpgAddress;
use totem_wire::ipc::CsError;

use crate::api::{Callback, CpgApi, Dispatched, Handle};
use crate::command::{self, Command, Request, Target};
use crate::event::{Address, CallResult, Event, IterationItem, Outputs, RingId};
use crate::svc_types::{Service, ShutdownReply};
use crate::values::{reason_name, DispatchMode, FlowControlState, Guard, Model, Rc};
use crate::{payload, EXIT_WATCHDOG, ZCB_ALLOC_MAX};

/// `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF` (cpg.h).
const DELIVER_INITIAL_TOTEM_CONF: u32 = 0x01;
/// An iteration that never ends is cut here (a daemon bug must not hang the agent).
const ITERATION_ITEMS_MAX: usize = 10_000;
/// A dispatch guard's default limit.
pub(crate) const DISPATCH_TIMEOUT_DEFAULT: Duration = Duration::from_millis(3000);
/// A burst (`count` > 1) retries TRY_AGAIN this long without progress by default.
pub(crate) const MCAST_RETRY_DEFAULT: Duration = Duration::from_millis(10_000);
/// The pause between TRY_AGAIN retries.
pub(crate) const MCAST_RETRY_PAUSE: Duration = Duration::from_millis(1);

/// Where the executor runs: an agent process (wall clock, stdout, a watchdog thread) or
/// the runner's simulator (virtual time, the trace).
pub trait Host {
    /// Writes one event (the host stamps its time).
    fn emit(&mut self, event: Event);
    /// A monotonic clock.
    fn now(&self) -> Duration;
    /// Lets `d` pass.
    fn sleep(&mut self, d: Duration);
    /// A call that may block for ever is about to be made, guarded by a watchdog of
    /// `after`: a process host arms a timer that writes `report` and ends the process with
    /// [`EXIT_WATCHDOG`] (a C call cannot be abandoned) and returns `None`; an in-process
    /// host returns `Some(after)`, the limit the call itself then keeps.
    fn arm_watchdog(&mut self, after: Duration, report: Event) -> Option<Duration>;
    /// The guarded call returned.
    fn disarm_watchdog(&mut self);
}

/// What the process does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Exit with this code (`quit`: 0; a watchdog: [`EXIT_WATCHDOG`]).
    Exit(i32),
}

/// A handle made by `initialize` (or `evs_initialize`).
#[derive(Debug, Clone)]
pub(crate) struct HandleState {
    pub(crate) value: Handle,
    pub(crate) auto_dispatch: bool,
    pub(crate) finalized: bool,
    /// The descriptor to poll for auto dispatch (`None`: in memory, always dispatched).
    pub(crate) fd: Option<i32>,
    /// Next payload sequence number; advanced only on CS_OK.
    pub(crate) seq: u64,
}

/// A zcb buffer by scenario name.
#[derive(Debug, Clone)]
struct Buffer {
    id: u64,
    capacity: usize,
}

/// Why a command has no return code.
pub(crate) enum NoCall {
    /// The agent did not call: a refusal (`refused: ...`) or a bad command.
    Error(String),
    /// The call was still blocked at its watchdog's limit.
    Blocked {
        handle: String,
        mode: String,
        blocked_ms: u64,
    },
}

impl From<String> for NoCall {
    fn from(e: String) -> Self {
        NoCall::Error(e)
    }
}

/// One client process's protocol state: its handles and zcb buffers, by scenario name.
#[derive(Debug, Default)]
pub struct Executor {
    handles: BTreeMap<String, HandleState>,
    buffers: BTreeMap<String, Buffer>,
    /// EVS handles, by scenario name (a namespace of their own: `evs_*` commands).
    pub(crate) evs_handles: BTreeMap<String, HandleState>,
    /// quorum, cmap and cfg handles, by scenario name (`quorum_*`, `cmap_*`, `cfg_*`).
    pub(crate) svc_handles: BTreeMap<String, SvcHandle>,
}

pub(crate) fn rc(e: CsError) -> Option<Rc> {
    Some(Rc(e))
}

fn addresses(list: &[CpgAddress]) -> Vec<Address> {
    list.iter()
        .map(|a| Address {
            nodeid: a.nodeid,
            pid: a.pid,
            reason: reason_name(a.reason),
        })
        .collect()
}

/// The event a callback is reported as.
pub fn callback_event(handle: &str, cb: &Callback) -> Event {
    match cb {
        Callback::Deliver {
            group,
            nodeid,
            pid,
            data,
        } => {
            let parsed = payload::parse(data);
            Event::Deliver {
                handle: handle.to_owned(),
                group: group.to_string(),
                nodeid: *nodeid,
                pid: *pid,
                len: data.len() as u64,
                digest: payload::digest(data),
                tag: parsed.as_ref().map(|p| p.tag.clone()),
                seq: parsed.as_ref().map(|p| p.seq),
                intact: parsed.as_ref().map(|p| p.intact),
            }
        }
        Callback::Confchg {
            group,
            members,
            left,
            joined,
        } => Event::Confchg {
            handle: handle.to_owned(),
            group: group.to_string(),
            members: addresses(members),
            left: addresses(left),
            joined: addresses(joined),
        },
        Callback::TotemConfchg {
            ring_nodeid,
            ring_seq,
            members,
        } => Event::TotemConfchg {
            handle: handle.to_owned(),
            ring: RingId {
                nodeid: *ring_nodeid,
                seq: *ring_seq,
            },
            members: members.clone(),
        },
    }
}

/// The `struct cpg_name` a command names, as a C program fills it: `group` in the escaped
/// notation (NUL and non-UTF-8 bytes included), the array holding its first 128 bytes, the
/// length field the byte count unless `name_length` sets it. libcpg refuses only a length
/// above 128 and sends the rest as given; the daemon names the group by the first `length`
/// bytes (mar_name_compare).
fn c_name(group: &str, name_length: Option<u32>) -> Result<CpgName, String> {
    let bytes = unescape_name(group)?;
    Ok(CpgName::with_length(
        &bytes,
        name_length.unwrap_or(bytes.len() as u32),
    ))
}

/// A payload cut into `n` iovec entries (0: none at all).
pub(crate) fn iovecs(body: &[u8], n: usize) -> Vec<&[u8]> {
    match n {
        0 => Vec::new(),
        1 => vec![body],
        n => {
            let step = body.len().div_ceil(n).max(1);
            let mut v: Vec<&[u8]> = body.chunks(step).collect();
            v.resize(n, &[]);
            v
        }
    }
}

impl Executor {
    /// Handles to dispatch when their descriptor is readable: (name, descriptor).
    pub fn auto_handles(&self) -> Vec<(String, Option<i32>)> {
        self.handles
            .iter()
            .filter(|(_, h)| h.auto_dispatch && !h.finalized)
            .map(|(n, h)| (n.clone(), h.fd))
            .collect()
    }

    /// CS_DISPATCH_ALL on one `auto_dispatch` handle. A failure (e.g. the daemon died:
    /// CS_ERR_LIBRARY) is reported and ends auto dispatch for the handle.
    pub fn auto_dispatch(&mut self, api: &mut dyn CpgApi, host: &mut dyn Host, name: &str) {
        let Some(st) = self.handles.get_mut(name) else {
            return;
        };
        if !st.auto_dispatch || st.finalized {
            return;
        }
        let out = api.dispatch(st.value, DispatchMode::ALL, None, &mut |cb| {
            host.emit(callback_event(name, cb));
            false
        });
        let rc = match out {
            Dispatched::Returned { rc, .. } => rc,
            // An ALL dispatch does not wait; a transport that says otherwise failed.
            Dispatched::Blocked => CsError::Library,
        };
        if rc != CsError::Ok {
            st.auto_dispatch = false;
            host.emit(Event::Result(Box::new(CallResult {
                cmd: "dispatch".into(),
                handle: Some(name.to_owned()),
                rc: Some(Rc(rc)),
                out: Outputs {
                    mode: Some(DispatchMode::ALL.to_string()),
                    auto: Some(true),
                    ..Outputs::default()
                },
                ..CallResult::default()
            })));
        }
    }

    /// Every `auto_dispatch` handle, whether or not anything is pending.
    pub fn auto_dispatch_all(&mut self, api: &mut dyn CpgApi, host: &mut dyn Host) {
        for (name, _) in self.auto_handles() {
            self.auto_dispatch(api, host, &name);
        }
    }

    /// The `auto_dispatch` handles whose descriptor is readable now, as an application's
    /// event loop dispatches them. A handle whose daemon died without waking its
    /// descriptor (libqb's socket type) is left alone, as such an application leaves it.
    pub fn auto_dispatch_ready(&mut self, api: &mut dyn CpgApi, host: &mut dyn Host) {
        for (name, _) in self.auto_handles() {
            let Some(value) = self.handles.get(&name).map(|st| st.value) else {
                continue;
            };
            if api.wait_event(value, Duration::ZERO) == Ok(true) {
                self.auto_dispatch(api, host, &name);
            }
        }
    }

    /// Runs one command of either API: CPG commands on `cpg`, `evs_*` commands on `evs`.
    pub fn execute_any(
        &mut self,
        cpg: &mut dyn CpgApi,
        evs: &mut dyn crate::api::EvsApi,
        host: &mut dyn Host,
        req: &Request,
    ) -> Flow {
        if req.command.is_evs() {
            self.execute_evs(evs, host, req)
        } else {
            self.execute(cpg, host, req)
        }
    }

    /// Reports a command's outcome as `execute` does: its result, or the watchdog's event.
    pub(crate) fn finish(
        host: &mut dyn Host,
        mut result: CallResult,
        outcome: Result<(), NoCall>,
    ) -> Flow {
        match outcome {
            Ok(()) => {
                host.emit(Event::Result(Box::new(result)));
                Flow::Continue
            }
            Err(NoCall::Error(e)) => {
                result.error = Some(e);
                host.emit(Event::Result(Box::new(result)));
                Flow::Continue
            }
            Err(NoCall::Blocked {
                handle,
                mode,
                blocked_ms,
            }) => {
                host.emit(Event::Watchdog {
                    handle,
                    mode,
                    blocked_ms,
                });
                Flow::Exit(EXIT_WATCHDOG)
            }
        }
    }

    /// Runs one command: its `result` (and the callbacks of any dispatch it made) go to
    /// `host`.
    pub fn execute(&mut self, api: &mut dyn CpgApi, host: &mut dyn Host, req: &Request) -> Flow {
        let mut result = CallResult {
            id: req.id,
            cmd: req.command.name().to_owned(),
            ..CallResult::default()
        };
        if req.command == Command::Quit {
            host.emit(Event::Result(Box::new(result)));
            return Flow::Exit(0);
        }
        let outcome = self.run(api, host, &req.command, &mut result);
        Self::finish(host, result, outcome)
    }

    /// The handle a command names: `handle_value` passes a raw (possibly invalid) value.
    fn target(&self, t: &Target) -> Result<(String, Handle), String> {
        if let Some(v) = t.handle_value {
            return Ok((format!("0x{v:x}"), v));
        }
        match self.handles.get(&t.handle) {
            Some(h) => Ok((t.handle.clone(), h.value)),
            None => Err(format!(
                "unknown handle {:?} (initialize it first)",
                t.handle
            )),
        }
    }

    fn run(
        &mut self,
        api: &mut dyn CpgApi,
        host: &mut dyn Host,
        cmd: &Command,
        r: &mut CallResult,
    ) -> Result<(), NoCall> {
        if let Command::Initialize(c) = cmd {
            self.initialize(api, c, r);
            return Ok(());
        }
        let target = match cmd {
            Command::Finalize(t)
            | Command::LocalGet(t)
            | Command::ContextGet(t)
            | Command::FdGet(t)
            | Command::FlowControlStateGet(t)
            | Command::MaxAtomicMsgsizeGet(t) => t,
            Command::Join(c) | Command::Leave(c) | Command::MembershipGet(c) => &c.target,
            Command::Mcast(c) => &c.target,
            Command::ZcbAlloc(c) => &c.target,
            Command::ZcbMcast(c) => &c.target,
            Command::ZcbFree(c) => &c.target,
            Command::ContextSet(c) => &c.target,
            Command::Dispatch(c) => &c.target,
            Command::Iteration(c) => &c.target,
            Command::Initialize(_) | Command::Quit => return Ok(()),
            c if c.is_evs() => {
                return Err("an EVS command needs the agent's EVS implementation"
                    .to_owned()
                    .into())
            }
            c if c.service().is_some() => {
                return Err("a quorum, cmap or cfg command needs the agent's SvcApi"
                    .to_owned()
                    .into())
            }
            _ => return Ok(()),
        };
        let (name, h) = self.target(target)?;
        r.handle = Some(name.clone());
        let o = &mut r.out;
        match cmd {
            Command::Finalize(_) => {
                let e = api.finalize(h);
                r.rc = rc(e);
                if let Some(st) = self.handles.get_mut(&name) {
                    // The stale value stays: later calls on it must give CS_ERR_BAD_HANDLE.
                    st.finalized |= e == CsError::Ok;
                }
            }
            Command::Join(c) | Command::Leave(c) => {
                let g = c_name(&c.group, c.name_length)?;
                o.group = Some(g.to_string());
                r.rc = rc(if matches!(cmd, Command::Join(_)) {
                    api.join(h, &g)
                } else {
                    api.leave(h, &g)
                });
            }
            Command::Mcast(c) => self.mcast(api, host, &name, h, c, r),
            Command::ZcbAlloc(c) => {
                let size = c.size as usize;
                if size > ZCB_ALLOC_MAX {
                    return Err(format!("refused: zcb_alloc of {size} bytes exceeds the agent's {ZCB_ALLOC_MAX}-byte safety cap").into());
                }
                match api.zcb_alloc(h, size) {
                    Ok(id) => {
                        r.rc = rc(CsError::Ok);
                        o.non_null = Some(true);
                        self.buffers
                            .insert(c.buf.clone(), Buffer { id, capacity: size });
                    }
                    Err(e) => {
                        r.rc = rc(e);
                        o.non_null = Some(false);
                    }
                }
            }
            Command::ZcbMcast(c) => {
                let b = self
                    .buffers
                    .get(&c.buf)
                    .ok_or_else(|| format!("unknown zcb buffer {:?}", c.buf))?
                    .clone();
                let len = c.len.map_or(b.capacity, |l| l as usize);
                if len > b.capacity {
                    // corosync-lab.md: a len beyond the allocation crashed corosync 3.1.7.
                    return Err(format!(
                        "refused: len {len} exceeds the {}-byte buffer (crashes corosync 3.1.7)",
                        b.capacity
                    )
                    .into());
                }
                let st = self
                    .handles
                    .get_mut(&name)
                    .ok_or("zcb_mcast needs a named handle".to_owned())?;
                let tag = c.tag.clone().unwrap_or_else(|| name.clone());
                let body = payload::build(&tag, st.seq, len);
                api.zcb_write(h, b.id, b.capacity, &body)?;
                let e = api.zcb_mcast_joined(h, c.guarantee, b.id, len);
                r.rc = rc(e);
                o.tag = Some(tag);
                o.seq = Some(st.seq);
                o.len = Some(len as u64);
                o.digest = Some(Some(payload::digest(&body)));
                if e == CsError::Ok {
                    st.seq += 1;
                }
            }
            Command::ZcbFree(c) if c.bogus => r.rc = rc(api.zcb_free_foreign(h)),
            Command::ZcbFree(c) => {
                let b = self
                    .buffers
                    .remove(&c.buf)
                    .ok_or_else(|| format!("unknown zcb buffer {:?}", c.buf))?;
                r.rc = rc(api.zcb_free(h, b.id));
            }
            Command::MembershipGet(c) => {
                let g = c_name(&c.group, c.name_length)?;
                match api.membership_get(h, &g) {
                    Ok(list) => {
                        r.rc = rc(CsError::Ok);
                        o.members = Some(addresses(&list));
                    }
                    // Outputs of a failed call are whatever was in memory: left out, so
                    // that traces stay comparable across runs and implementations.
                    Err(e) => r.rc = rc(e),
                }
            }
            Command::LocalGet(_) => match api.local_get(h) {
                Ok(n) => {
                    r.rc = rc(CsError::Ok);
                    o.nodeid = Some(n);
                }
                Err(e) => r.rc = rc(e),
            },
            Command::ContextGet(_) => match api.context_get(h) {
                Ok(v) => {
                    r.rc = rc(CsError::Ok);
                    o.context = Some(v);
                }
                Err(e) => r.rc = rc(e),
            },
            Command::ContextSet(c) => r.rc = rc(api.context_set(h, c.context)),
            Command::FdGet(_) => match api.fd_get(h) {
                Ok(fd) => {
                    r.rc = rc(CsError::Ok);
                    o.fd_valid = Some(fd.open);
                }
                Err(e) => {
                    r.rc = rc(e);
                    o.fd_valid = Some(false);
                }
            },
            Command::FlowControlStateGet(_) => match api.flow_control_state_get(h) {
                Ok(on) => {
                    r.rc = rc(CsError::Ok);
                    o.state = Some(if on {
                        FlowControlState::Enabled
                    } else {
                        FlowControlState::Disabled
                    });
                }
                Err(e) => r.rc = rc(e),
            },
            Command::MaxAtomicMsgsizeGet(_) => match api.max_atomic_msgsize_get(h) {
                Ok(v) => {
                    r.rc = rc(CsError::Ok);
                    o.size = Some(u64::from(v));
                }
                Err(e) => r.rc = rc(e),
            },
            Command::Dispatch(c) => self.dispatch(api, host, &name, h, c, r)?,
            Command::Iteration(c) => Self::iteration(api, h, c, r)?,
            _ => {}
        }
        Ok(())
    }

    fn initialize(&mut self, api: &mut dyn CpgApi, c: &command::Initialize, r: &mut CallResult) {
        r.handle = Some(c.handle.clone());
        let made = match c.model {
            Model::Plain => api.initialize(),
            Model::V1 => api.model_initialize(
                if c.initial_totem_conf {
                    DELIVER_INITIAL_TOTEM_CONF
                } else {
                    0
                },
                c.context.unwrap_or(0),
            ),
        };
        match made {
            Ok(value) => {
                r.rc = rc(CsError::Ok);
                let fd = api.fd_get(value).ok().and_then(|f| f.fd);
                self.handles.insert(
                    c.handle.clone(),
                    HandleState {
                        value,
                        auto_dispatch: c.auto_dispatch,
                        finalized: false,
                        fd,
                        seq: 0,
                    },
                );
            }
            Err(e) => r.rc = rc(e),
        }
    }

    /// `count` messages, retrying CS_ERR_TRY_AGAIN (cpg_mcast_joined's flow control) while
    /// callbacks keep flowing, until `retry_ms` pass without progress.
    fn mcast(
        &mut self,
        api: &mut dyn CpgApi,
        host: &mut dyn Host,
        name: &str,
        h: Handle,
        c: &command::Mcast,
        r: &mut CallResult,
    ) {
        let size = c.size as usize;
        let tag = c.tag.clone().unwrap_or_else(|| name.to_owned());
        let retry = c.retry_ms.map_or(
            if c.count > 1 {
                MCAST_RETRY_DEFAULT
            } else {
                Duration::ZERO
            },
            Duration::from_millis,
        );
        let (mut sent, mut try_again, mut last) = (0u64, 0u64, CsError::Ok);
        let (mut first_seq, mut digest) = (None, None);
        let mut stalled_since = host.now();
        while sent < c.count {
            let seq = self.handles.get(name).map_or(0, |st| st.seq);
            let body = payload::build(&tag, seq, size);
            last = api.mcast_joined(h, c.guarantee, &iovecs(&body, c.iovs.unwrap_or(1) as usize));
            if last == CsError::Ok {
                if let Some(st) = self.handles.get_mut(name) {
                    st.seq += 1;
                }
                first_seq.get_or_insert(seq);
                digest = Some(payload::digest(&body));
                sent += 1;
                stalled_since = host.now();
            } else if last == CsError::TryAgain && host.now() - stalled_since < retry {
                try_again += 1;
                // Callbacks keep flowing while the ring is busy, from the handles that
                // have something to say.
                self.auto_dispatch_ready(api, host);
                host.sleep(MCAST_RETRY_PAUSE);
            } else {
                break;
            }
        }
        r.rc = rc(last);
        let o = &mut r.out;
        o.tag = Some(tag);
        o.sent = Some(sent);
        o.first_seq = Some(first_seq);
        o.size = Some(c.size);
        o.try_again = Some(try_again);
        if c.count == 1 {
            o.digest = Some(digest);
        }
    }

    /// ONE and BLOCKING wait for ever when nothing is pending (corosync-lab.md). The
    /// default guard polls the descriptor first and reports `would_block` instead of
    /// calling; `guard: watchdog` calls for real, and a call that outlives the timeout
    /// ends the process.
    fn dispatch(
        &mut self,
        api: &mut dyn CpgApi,
        host: &mut dyn Host,
        name: &str,
        h: Handle,
        c: &command::Dispatch,
        r: &mut CallResult,
    ) -> Result<(), NoCall> {
        let mode_text = c.mode.to_string();
        r.out.mode = Some(mode_text.clone());
        let timeout = c
            .timeout_ms
            .map_or(DISPATCH_TIMEOUT_DEFAULT, Duration::from_millis);
        let guard = c.guard.unwrap_or(if c.mode == DispatchMode::BLOCKING {
            Guard::Watchdog
        } else {
            Guard::Poll
        });
        if guard == Guard::Poll
            && c.mode != DispatchMode::ALL
            && c.mode != DispatchMode::ONE_NONBLOCKING
        {
            match api.wait_event(h, timeout) {
                Ok(true) => {}
                Ok(false) => {
                    r.out.would_block = Some(true);
                    return Ok(());
                }
                Err(e) => {
                    r.rc = rc(e);
                    r.out.finalized_in_callback = Some(false);
                    return Ok(());
                }
            }
        }
        let limit = if guard == Guard::Watchdog {
            host.arm_watchdog(
                timeout,
                Event::Watchdog {
                    handle: name.to_owned(),
                    mode: mode_text.clone(),
                    blocked_ms: timeout.as_millis() as u64,
                },
            )
        } else {
            // An in-process API keeps the same bound on a poll-guarded call; libcpg's
            // would wait, but the poll said an event is there.
            Some(timeout)
        };
        let mut finalize_after = c.finalize_after;
        let out = api.dispatch(h, c.mode, limit, &mut |cb| {
            host.emit(callback_event(name, cb));
            match finalize_after.as_mut() {
                Some(n) if *n <= 1 => {
                    finalize_after = None;
                    true
                }
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            }
        });
        if guard == Guard::Watchdog {
            host.disarm_watchdog();
        }
        let (e, finalized) = match out {
            Dispatched::Returned { rc, finalized } => (rc, finalized),
            Dispatched::Blocked => {
                return Err(NoCall::Blocked {
                    handle: name.to_owned(),
                    mode: mode_text,
                    blocked_ms: timeout.as_millis() as u64,
                })
            }
        };
        if let Some(f) = finalized {
            // The agent reports the cpg_finalize it made from inside the last callback.
            host.emit(Event::Result(Box::new(CallResult {
                cmd: "finalize".into(),
                handle: Some(name.to_owned()),
                rc: rc(f),
                out: Outputs {
                    in_callback: Some(true),
                    ..Outputs::default()
                },
                ..CallResult::default()
            })));
            if let Some(st) = self.handles.get_mut(name) {
                st.finalized |= f == CsError::Ok;
            }
        }
        r.rc = rc(e);
        r.out.finalized_in_callback = Some(finalized.is_some());
        Ok(())
    }

    fn iteration(
        api: &mut dyn CpgApi,
        h: Handle,
        c: &command::Iteration,
        r: &mut CallResult,
    ) -> Result<(), NoCall> {
        let group = c
            .group
            .as_deref()
            .map(|g| c_name(g, c.name_length))
            .transpose()?;
        let it = match api.iteration_initialize(h, c.kind, group.as_ref()) {
            Ok(it) => it,
            Err(e) => {
                r.rc = rc(e);
                return Ok(());
            }
        };
        r.rc = rc(CsError::Ok);
        let mut items = Vec::new();
        let end = loop {
            match api.iteration_next(it) {
                Ok((g, nodeid, pid)) => items.push(IterationItem {
                    group: g.to_string(),
                    nodeid,
                    pid,
                }),
                Err(e) => break e,
            }
            if items.len() > ITERATION_ITEMS_MAX {
                break CsError::Ok;
            }
        };
        let o = &mut r.out;
        o.items = Some(items);
        o.next_end_rc = rc(end);
        o.finalize_rc = rc(api.iteration_finalize(it));
        if c.after_finalize {
            let next = api.iteration_next(it).err().unwrap_or(CsError::Ok);
            o.next_after_finalize_rc = rc(next);
            o.finalize_after_finalize_rc = rc(api.iteration_finalize(it));
        }
        Ok(())
    }
}

/// A quorum, cmap or cfg handle.
#[derive(Debug, Clone)]
pub(crate) struct SvcHandle {
    pub(crate) svc: Service,
    pub(crate) state: HandleState,
    pub(crate) shutdown_reply: ShutdownReply,
    /// cmap tracks by name: the track handle.
    pub(crate) tracks: BTreeMap<String, u64>,
}
