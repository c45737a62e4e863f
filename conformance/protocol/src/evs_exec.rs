//! The `evs_*` commands on the one [`Executor`], over any [`EvsApi`]: what each EVS command
//! means is written here once, for the agent process and the `sim` backend alike.

use std::time::Duration;

use totem_wire::ipc::CsError;

use crate::api::{Dispatched, EvsApi, EvsCallback, EvsKeyBytes, Handle};
use crate::command::{self, evs_key_text, Command, EvsKey, Request, Target};
use crate::event::{CallResult, Event, Outputs, RingId};
use crate::exec::{
    iovecs, rc, Executor, Flow, HandleState, Host, NoCall, DISPATCH_TIMEOUT_DEFAULT,
    MCAST_RETRY_DEFAULT, MCAST_RETRY_PAUSE,
};
use crate::payload;
use crate::values::{DispatchMode, Guard};

/// `PROCESSOR_COUNT_MAX`: the member array a 1.4 program passes (ipc_evs.h).
const MEMBERSHIP_ENTRIES_DEFAULT: u64 = 384;
/// Largest array `evs_membership_get` is given (a scenario's `entries` is bounded).
const MEMBERSHIP_ENTRIES_MAX: u64 = 1 << 16;

/// The event an EVS callback is reported as.
pub fn evs_callback_event(handle: &str, cb: &EvsCallback) -> Event {
    match cb {
        EvsCallback::Deliver { nodeid, data } => {
            let parsed = payload::parse(data);
            Event::EvsDeliver {
                handle: handle.to_owned(),
                nodeid: *nodeid,
                len: data.len() as u64,
                digest: payload::digest(data),
                tag: parsed.as_ref().map(|p| p.tag.clone()),
                seq: parsed.as_ref().map(|p| p.seq),
                intact: parsed.as_ref().map(|p| p.intact),
            }
        }
        EvsCallback::Confchg {
            kind,
            ring,
            members,
            left,
            joined,
        } => Event::EvsConfchg {
            handle: handle.to_owned(),
            kind: kind.map(str::to_owned),
            ring: ring.map(|(nodeid, seq)| RingId { nodeid, seq }),
            members: members.clone(),
            left: left.clone(),
            joined: joined.clone(),
        },
    }
}

fn keys(list: &[EvsKey]) -> Result<Vec<EvsKeyBytes>, String> {
    list.iter().map(EvsKey::bytes).collect()
}

fn key_texts(list: &[EvsKeyBytes]) -> Vec<String> {
    list.iter().map(evs_key_text).collect()
}

impl Executor {
    /// EVS handles to dispatch when their descriptor is readable: (name, descriptor).
    pub fn evs_auto_handles(&self) -> Vec<(String, Option<i32>)> {
        self.evs_handles
            .iter()
            .filter(|(_, h)| h.auto_dispatch && !h.finalized)
            .map(|(n, h)| (n.clone(), h.fd))
            .collect()
    }

    /// CS_DISPATCH_ALL on one `auto_dispatch` EVS handle; a failure is reported (a
    /// `result` with `auto: true`) and ends auto dispatch for the handle.
    pub fn evs_auto_dispatch(&mut self, api: &mut dyn EvsApi, host: &mut dyn Host, name: &str) {
        let Some(st) = self.evs_handles.get_mut(name) else {
            return;
        };
        if !st.auto_dispatch || st.finalized {
            return;
        }
        let out = api.dispatch(st.value, DispatchMode::ALL, None, &mut |cb| {
            host.emit(evs_callback_event(name, cb));
            false
        });
        let e = match out {
            Dispatched::Returned { rc, .. } => rc,
            Dispatched::Blocked => CsError::Library,
        };
        if e != CsError::Ok {
            st.auto_dispatch = false;
            host.emit(Event::Result(Box::new(CallResult {
                cmd: "evs_dispatch".into(),
                handle: Some(name.to_owned()),
                rc: rc(e),
                out: Outputs {
                    mode: Some(DispatchMode::ALL.to_string()),
                    auto: Some(true),
                    ..Outputs::default()
                },
                ..CallResult::default()
            })));
        }
    }

    /// Every `auto_dispatch` EVS handle, whether or not anything is pending.
    pub fn evs_auto_dispatch_all(&mut self, api: &mut dyn EvsApi, host: &mut dyn Host) {
        for (name, _) in self.evs_auto_handles() {
            self.evs_auto_dispatch(api, host, &name);
        }
    }

    /// The `auto_dispatch` EVS handles whose descriptor is readable now.
    pub fn evs_auto_dispatch_ready(&mut self, api: &mut dyn EvsApi, host: &mut dyn Host) {
        for (name, _) in self.evs_auto_handles() {
            let Some(value) = self.evs_handles.get(&name).map(|st| st.value) else {
                continue;
            };
            if api.wait_event(value, Duration::ZERO) == Ok(true) {
                self.evs_auto_dispatch(api, host, &name);
            }
        }
    }

    /// Runs one `evs_*` command.
    pub fn execute_evs(
        &mut self,
        api: &mut dyn EvsApi,
        host: &mut dyn Host,
        req: &Request,
    ) -> Flow {
        let mut result = CallResult {
            id: req.id,
            cmd: req.command.name().to_owned(),
            ..CallResult::default()
        };
        let outcome = self.run_evs(api, host, &req.command, &mut result);
        Self::finish(host, result, outcome)
    }

    fn evs_target(&self, t: &Target) -> Result<(String, Handle), String> {
        if let Some(v) = t.handle_value {
            return Ok((format!("0x{v:x}"), v));
        }
        match self.evs_handles.get(&t.handle) {
            Some(h) => Ok((t.handle.clone(), h.value)),
            None => Err(format!(
                "unknown EVS handle {:?} (evs_initialize it first)",
                t.handle
            )),
        }
    }

    fn run_evs(
        &mut self,
        api: &mut dyn EvsApi,
        host: &mut dyn Host,
        cmd: &Command,
        r: &mut CallResult,
    ) -> Result<(), NoCall> {
        let target = match cmd {
            Command::EvsInitialize(c) => {
                r.handle = Some(c.handle.clone());
                match api.initialize() {
                    Ok(value) => {
                        r.rc = rc(CsError::Ok);
                        let fd = api.fd_get(value).ok().and_then(|f| f.fd);
                        self.evs_handles.insert(
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
                return Ok(());
            }
            Command::EvsFinalize(t) | Command::EvsFdGet(t) | Command::EvsContextGet(t) => t,
            Command::EvsContextSet(c) => &c.target,
            Command::EvsDispatch(c) => &c.target,
            Command::EvsJoin(c) | Command::EvsLeave(c) => &c.target,
            Command::EvsMcastJoined(c) | Command::EvsMcastGroups(c) => &c.target,
            Command::EvsMembershipGet(c) => &c.target,
            _ => return Err("not an EVS command".to_owned().into()),
        };
        let (name, h) = self.evs_target(target)?;
        r.handle = Some(name.clone());
        let o = &mut r.out;
        match cmd {
            Command::EvsFinalize(_) => {
                let e = api.finalize(h);
                r.rc = rc(e);
                if let Some(st) = self.evs_handles.get_mut(&name) {
                    st.finalized |= e == CsError::Ok;
                }
            }
            Command::EvsFdGet(_) => match api.fd_get(h) {
                Ok(fd) => {
                    r.rc = rc(CsError::Ok);
                    o.fd_valid = Some(fd.open);
                }
                Err(e) => {
                    r.rc = rc(e);
                    o.fd_valid = Some(false);
                }
            },
            Command::EvsContextGet(_) => match api.context_get(h) {
                Ok(v) => {
                    r.rc = rc(CsError::Ok);
                    o.context = Some(v);
                }
                Err(e) => r.rc = rc(e),
            },
            Command::EvsContextSet(c) => r.rc = rc(api.context_set(h, c.context)),
            Command::EvsJoin(c) | Command::EvsLeave(c) => {
                let k = keys(&c.groups)?;
                o.groups = Some(key_texts(&k));
                r.rc = rc(if matches!(cmd, Command::EvsJoin(_)) {
                    api.join(h, &k)
                } else {
                    api.leave(h, &k)
                });
            }
            Command::EvsMembershipGet(c) => {
                let entries = c.entries.unwrap_or(MEMBERSHIP_ENTRIES_DEFAULT);
                if entries > MEMBERSHIP_ENTRIES_MAX {
                    return Err(format!(
                        "refused: a member array of {entries} entries exceeds the agent's {MEMBERSHIP_ENTRIES_MAX}"
                    )
                    .into());
                }
                match api.membership_get(h, entries as usize) {
                    Ok((local, nodes)) => {
                        r.rc = rc(CsError::Ok);
                        o.nodeid = Some(local);
                        o.nodes = Some(nodes);
                    }
                    Err(e) => r.rc = rc(e),
                }
            }
            Command::EvsMcastJoined(c) | Command::EvsMcastGroups(c) => {
                let groups = if matches!(cmd, Command::EvsMcastGroups(_)) {
                    let k = keys(&c.groups)?;
                    o.groups = Some(key_texts(&k));
                    Some(k)
                } else {
                    None
                };
                self.evs_mcast(api, host, &name, h, c, groups.as_deref(), r);
            }
            Command::EvsDispatch(c) => self.evs_dispatch(api, host, &name, h, c, r)?,
            _ => {}
        }
        Ok(())
    }

    /// `count` messages, retrying CS_ERR_TRY_AGAIN (EVS-MJ-11) while callbacks keep
    /// flowing, as `mcast` does for CPG.
    #[allow(clippy::too_many_arguments)]
    fn evs_mcast(
        &mut self,
        api: &mut dyn EvsApi,
        host: &mut dyn Host,
        name: &str,
        h: Handle,
        c: &command::EvsMcast,
        groups: Option<&[EvsKeyBytes]>,
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
            let seq = self.evs_handles.get(name).map_or(0, |st| st.seq);
            let body = payload::build(&tag, seq, size);
            let iov = iovecs(&body, c.iovs.unwrap_or(1) as usize);
            last = match groups {
                Some(g) => api.mcast_groups(h, c.guarantee, g, &iov),
                None => api.mcast_joined(h, c.guarantee, &iov),
            };
            if last == CsError::Ok {
                if let Some(st) = self.evs_handles.get_mut(name) {
                    st.seq += 1;
                }
                first_seq.get_or_insert(seq);
                digest = Some(payload::digest(&body));
                sent += 1;
                stalled_since = host.now();
            } else if last == CsError::TryAgain && host.now() - stalled_since < retry {
                try_again += 1;
                self.evs_auto_dispatch_ready(api, host);
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

    /// As `dispatch`: ONE and BLOCKING wait for ever when nothing is pending (EVS-DISP-4,
    /// EVS-DISP-6), so the default guard polls first (`would_block`), and `guard:
    /// watchdog` calls for real under a watchdog.
    fn evs_dispatch(
        &mut self,
        api: &mut dyn EvsApi,
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
        // Only ALL returns at once in 1.4; any other value waits (EVS-DISP-6).
        let waits = c.mode != DispatchMode::ALL;
        let guard = c.guard.unwrap_or(if waits && c.mode != DispatchMode::ONE {
            Guard::Watchdog
        } else {
            Guard::Poll
        });
        if guard == Guard::Poll && waits {
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
            Some(timeout)
        };
        let mut finalize_after = c.finalize_after;
        let out = api.dispatch(h, c.mode, limit, &mut |cb| {
            host.emit(evs_callback_event(name, cb));
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
            host.emit(Event::Result(Box::new(CallResult {
                cmd: "evs_finalize".into(),
                handle: Some(name.to_owned()),
                rc: rc(f),
                out: Outputs {
                    in_callback: Some(true),
                    ..Outputs::default()
                },
                ..CallResult::default()
            })));
            if let Some(st) = self.evs_handles.get_mut(name) {
                st.finalized |= f == CsError::Ok;
            }
        }
        r.rc = rc(e);
        r.out.finalized_in_callback = Some(finalized.is_some());
        Ok(())
    }
}
