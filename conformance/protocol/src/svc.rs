//! The three services Pacemaker depends on beside CPG: libquorum (`quorum_*`), libcmap
//! (`cmap_*`) and libcfg's shutdown tracking (`cfg_*`). Their commands, values and
//! callbacks, the [`SvcApi`] trait (the C calls, one method each) and the executor's half
//! that runs them, written once for the agent (FFI to libquorum.so.5, libcmap.so.4,
//! libcfg.so.7) and the `sim` backend.
//!
//! Handles of the three live in one namespace of their own (scenario defaults `q1`, `m1`,
//! `c1`); cmap tracks are named too (`t1`), and a notification names its track.

use std::collections::BTreeMap;
use std::time::Duration;

use totem_wire::ipc::CsError;

use crate::api::{EventFd, Handle};
use crate::command::{Command, Request, Target};
use crate::event::{CallResult, Event, Outputs, RingId};
use crate::exec::{rc, Executor, Flow, HandleState, Host, NoCall, SvcHandle};
use crate::svc_types::shutdown_flags_name;
pub use crate::svc_types::*;
use crate::values::DispatchMode;

/// A callback one of the three libraries made.
#[derive(Debug, Clone, PartialEq)]
pub enum SvcCallback {
    /// `quorum_notification_fn_t` (v0: no ring nodeid) or the v1 quorum callback.
    Quorum {
        quorate: bool,
        ring_nodeid: Option<u32>,
        ring_seq: u64,
        members: Vec<u32>,
    },
    /// `quorum_v1_nodelist_notification_fn_t`.
    Nodelist {
        ring: (u32, u64),
        members: Vec<u32>,
        joined: Vec<u32>,
        left: Vec<u32>,
    },
    /// `cmap_notify_fn_t`: the track handle, event (cmap.h's CMAP_TRACK_* value), key,
    /// values (`None`: type 0 / absent).
    Cmap {
        track: u64,
        event: i32,
        key: String,
        new: Option<CmapValue>,
        old: Option<CmapValue>,
    },
    /// `corosync_cfg_shutdown_callback_t`, and what the policy answered from inside it:
    /// the reply made (YES 1 / NO 0) and `corosync_cfg_replyto_shutdown`'s return code.
    CfgShutdown {
        flags: u32,
        replied: Option<(u32, CsError)>,
    },
}

/// The library calls of quorum.h, cmap.h and cfg.h that the protocol makes. Handles are
/// the libraries' values; one never handed out answers CS_ERR_BAD_HANDLE.
pub trait SvcApi {
    /// What implements a service (`libquorum.so.5` ...), or why it cannot be loaded.
    fn library(&self, svc: Service) -> Result<String, String>;
    /// `quorum_initialize` (v0) / `quorum_model_initialize` (v1): handle and quorum type.
    fn quorum_initialize(&mut self, model: QuorumModel) -> Result<(Handle, u32), CsError>;
    fn quorum_trackstart(&mut self, h: Handle, flags: u32) -> CsError;
    fn quorum_trackstop(&mut self, h: Handle) -> CsError;
    fn quorum_getquorate(&mut self, h: Handle) -> Result<bool, CsError>;
    fn cmap_initialize(&mut self) -> Result<Handle, CsError>;
    fn cmap_get(&mut self, h: Handle, key: &str) -> Result<Option<CmapValue>, CsError>;
    fn cmap_set(&mut self, h: Handle, key: &str, value: &CmapValue) -> CsError;
    fn cmap_delete(&mut self, h: Handle, key: &str) -> CsError;
    fn cmap_track_add(&mut self, h: Handle, key: &str, track_type: i32) -> Result<u64, CsError>;
    fn cmap_track_delete(&mut self, h: Handle, track: u64) -> CsError;
    fn cfg_initialize(&mut self) -> Result<Handle, CsError>;
    fn cfg_trackstart(&mut self, h: Handle) -> CsError;
    fn cfg_trackstop(&mut self, h: Handle) -> CsError;
    fn cfg_try_shutdown(&mut self, h: Handle, flags: u32) -> CsError;
    /// `*_finalize`.
    fn finalize(&mut self, svc: Service, h: Handle) -> CsError;
    /// `*_fd_get`.
    fn fd_get(&mut self, svc: Service, h: Handle) -> Result<EventFd, CsError>;
    /// Whether an event is pending within `timeout`.
    fn wait_event(&mut self, svc: Service, h: Handle, timeout: Duration) -> Result<bool, CsError>;
    /// `*_dispatch(CS_DISPATCH_ALL)`, reporting each callback; a cfg shutdown callback is
    /// answered from inside it with `shutdown_reply` (YES 1 / NO 0) when that is given.
    fn dispatch(
        &mut self,
        svc: Service,
        h: Handle,
        shutdown_reply: Option<u32>,
        on_callback: &mut dyn FnMut(&SvcCallback),
    ) -> CsError;
}

/// CMAP_TRACK_* of a notification's event, by name.
fn cmap_event_name(e: i32) -> String {
    match e {
        4 => "ADD".into(),
        1 => "DELETE".into(),
        2 => "MODIFY".into(),
        n => n.to_string(),
    }
}

impl Command {
    /// The service of a quorum, cmap or cfg command.
    pub fn service(&self) -> Option<Service> {
        let n = self.name();
        if n.starts_with("quorum_") {
            Some(Service::Quorum)
        } else if n.starts_with("cmap_") {
            Some(Service::Cmap)
        } else if n.starts_with("cfg_") {
            Some(Service::Cfg)
        } else {
            None
        }
    }
}

impl Executor {
    /// quorum/cmap/cfg handles to dispatch when readable: (name, descriptor).
    pub fn svc_auto_handles(&self) -> Vec<(String, Option<i32>)> {
        self.svc_handles
            .iter()
            .filter(|(_, h)| h.state.auto_dispatch && !h.state.finalized)
            .map(|(n, h)| (n.clone(), h.state.fd))
            .collect()
    }

    /// CS_DISPATCH_ALL on one `auto_dispatch` service handle; a failure is reported as a
    /// `result` with `auto: true` and ends auto dispatch for it.
    pub fn svc_auto_dispatch(&mut self, api: &mut dyn SvcApi, host: &mut dyn Host, name: &str) {
        let Some(st) = self.svc_handles.get_mut(name) else {
            return;
        };
        if !st.state.auto_dispatch || st.state.finalized {
            return;
        }
        let reply = match st.shutdown_reply {
            ShutdownReply::Yes => Some(1),
            ShutdownReply::No => Some(0),
            ShutdownReply::None => None,
        };
        let tracks = st.tracks.clone();
        let svc = st.svc;
        let e = api.dispatch(svc, st.state.value, reply, &mut |cb| {
            host.emit(svc_callback_event(name, &tracks, cb));
        });
        if e != CsError::Ok {
            st.state.auto_dispatch = false;
            let cmd = match svc {
                Service::Quorum => "quorum_dispatch",
                Service::Cmap => "cmap_dispatch",
                Service::Cfg => "cfg_dispatch",
            };
            host.emit(Event::Result(Box::new(CallResult {
                cmd: cmd.into(),
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

    /// The `auto_dispatch` service handles whose descriptor is readable now.
    pub fn svc_auto_dispatch_ready(&mut self, api: &mut dyn SvcApi, host: &mut dyn Host) {
        for (name, _) in self.svc_auto_handles() {
            let Some((svc, value)) = self
                .svc_handles
                .get(&name)
                .map(|st| (st.svc, st.state.value))
            else {
                continue;
            };
            if api.wait_event(svc, value, Duration::ZERO) == Ok(true) {
                self.svc_auto_dispatch(api, host, &name);
            }
        }
    }

    /// Runs one quorum, cmap or cfg command.
    pub fn execute_svc(
        &mut self,
        api: &mut dyn SvcApi,
        host: &mut dyn Host,
        req: &Request,
    ) -> Flow {
        let mut result = CallResult {
            id: req.id,
            cmd: req.command.name().to_owned(),
            ..CallResult::default()
        };
        let outcome = self.run_svc(api, &req.command, &mut result);
        Self::finish(host, result, outcome)
    }

    fn svc_target(&self, t: &Target, svc: Service) -> Result<(String, Handle), String> {
        if let Some(v) = t.handle_value {
            return Ok((format!("0x{v:x}"), v));
        }
        match self.svc_handles.get(&t.handle) {
            Some(h) if h.svc == svc => Ok((t.handle.clone(), h.state.value)),
            Some(h) => Err(format!(
                "handle {:?} is a {:?} handle, not {svc:?}",
                t.handle, h.svc
            )),
            None => Err(format!(
                "unknown handle {:?} (initialize it first)",
                t.handle
            )),
        }
    }

    fn svc_new_handle(
        &mut self,
        api: &mut dyn SvcApi,
        svc: Service,
        name: &str,
        value: Handle,
        auto_dispatch: bool,
        shutdown_reply: ShutdownReply,
    ) {
        let fd = api.fd_get(svc, value).ok().and_then(|f| f.fd);
        self.svc_handles.insert(
            name.to_owned(),
            SvcHandle {
                svc,
                state: HandleState {
                    value,
                    auto_dispatch,
                    finalized: false,
                    fd,
                    seq: 0,
                },
                shutdown_reply,
                tracks: BTreeMap::new(),
            },
        );
    }

    fn run_svc(
        &mut self,
        api: &mut dyn SvcApi,
        cmd: &Command,
        r: &mut CallResult,
    ) -> Result<(), NoCall> {
        let Some(svc) = cmd.service() else {
            return Err("not a quorum, cmap or cfg command".to_owned().into());
        };
        // The three initializes: a new handle in the services' namespace.
        let init = match cmd {
            Command::QuorumInitialize(c) => Some((
                &c.handle,
                c.auto_dispatch,
                ShutdownReply::None,
                api.quorum_initialize(c.model)
                    .map(|(v, kind)| (v, Some(kind))),
            )),
            Command::CmapInitialize(c) => Some((
                &c.handle,
                c.auto_dispatch,
                ShutdownReply::None,
                api.cmap_initialize().map(|v| (v, None)),
            )),
            Command::CfgInitialize(c) => Some((
                &c.handle,
                c.auto_dispatch,
                c.shutdown_reply,
                api.cfg_initialize().map(|v| (v, None)),
            )),
            _ => None,
        };
        if let Some((handle, auto_dispatch, shutdown_reply, result)) = init {
            r.handle = Some(handle.clone());
            match result {
                Ok((value, quorum_type)) => {
                    r.rc = rc(CsError::Ok);
                    r.out.quorum_type = quorum_type;
                    self.svc_new_handle(api, svc, handle, value, auto_dispatch, shutdown_reply);
                }
                Err(e) => r.rc = rc(e),
            }
            return Ok(());
        }
        let target = match cmd {
            Command::QuorumFinalize(t)
            | Command::QuorumTrackstop(t)
            | Command::QuorumGetquorate(t)
            | Command::CmapFinalize(t)
            | Command::CfgFinalize(t)
            | Command::CfgTrackstart(t)
            | Command::CfgTrackstop(t) => t,
            Command::QuorumTrackstart(c) => &c.target,
            Command::CmapGet(c) | Command::CmapDelete(c) => &c.target,
            Command::CmapSet(c) => &c.target,
            Command::CmapTrackAdd(c) => &c.target,
            Command::CmapTrackDelete(c) => &c.target,
            Command::CfgTryShutdown(c) => &c.target,
            _ => return Err("not a quorum, cmap or cfg command".to_owned().into()),
        };
        let (name, h) = self.svc_target(target, svc)?;
        r.handle = Some(name.clone());
        let o = &mut r.out;
        match cmd {
            Command::QuorumFinalize(_) | Command::CmapFinalize(_) | Command::CfgFinalize(_) => {
                let e = api.finalize(svc, h);
                r.rc = rc(e);
                if let Some(st) = self.svc_handles.get_mut(&name) {
                    st.state.finalized |= e == CsError::Ok;
                }
            }
            Command::QuorumTrackstart(c) => r.rc = rc(api.quorum_trackstart(h, c.flags.raw()?)),
            Command::QuorumTrackstop(_) => r.rc = rc(api.quorum_trackstop(h)),
            Command::QuorumGetquorate(_) => match api.quorum_getquorate(h) {
                Ok(q) => {
                    r.rc = rc(CsError::Ok);
                    o.quorate = Some(q);
                }
                Err(e) => r.rc = rc(e),
            },
            Command::CmapGet(c) => match api.cmap_get(h, &c.key) {
                Ok(v) => {
                    r.rc = rc(CsError::Ok);
                    o.value = v;
                }
                Err(e) => r.rc = rc(e),
            },
            Command::CmapSet(c) => {
                c.value.bytes()?;
                r.rc = rc(api.cmap_set(h, &c.key, &c.value));
            }
            Command::CmapDelete(c) => r.rc = rc(api.cmap_delete(h, &c.key)),
            Command::CmapTrackAdd(c) => {
                let kind = c.raw()?;
                o.track = Some(c.name.clone());
                match api.cmap_track_add(h, &c.key, kind) {
                    Ok(t) => {
                        r.rc = rc(CsError::Ok);
                        if let Some(st) = self.svc_handles.get_mut(&name) {
                            st.tracks.insert(c.name.clone(), t);
                        }
                    }
                    Err(e) => r.rc = rc(e),
                }
            }
            Command::CmapTrackDelete(c) => {
                let t = self
                    .svc_handles
                    .get(&name)
                    .and_then(|st| st.tracks.get(&c.name).copied())
                    .ok_or_else(|| format!("unknown cmap track {:?}", c.name))?;
                // The stale value stays: deleting it again must give CS_ERR_BAD_HANDLE.
                r.rc = rc(api.cmap_track_delete(h, t));
                o.track = Some(c.name.clone());
            }
            Command::CfgTrackstart(_) => r.rc = rc(api.cfg_trackstart(h)),
            Command::CfgTrackstop(_) => r.rc = rc(api.cfg_trackstop(h)),
            Command::CfgTryShutdown(c) => {
                r.rc = rc(api.cfg_try_shutdown(h, shutdown_flags(&c.flags)?));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The event a service callback is reported as; a cmap track is named as `track_add`
/// named it (a handle value it never returned: `0x<hex>`).
pub fn svc_callback_event(handle: &str, tracks: &BTreeMap<String, u64>, cb: &SvcCallback) -> Event {
    let handle = handle.to_owned();
    match cb {
        SvcCallback::Quorum {
            quorate,
            ring_nodeid,
            ring_seq,
            members,
        } => Event::QuorumNotify {
            handle,
            quorate: *quorate,
            ring_nodeid: *ring_nodeid,
            ring_seq: *ring_seq,
            members: members.clone(),
        },
        SvcCallback::Nodelist {
            ring,
            members,
            joined,
            left,
        } => Event::QuorumNodelist {
            handle,
            ring: RingId {
                nodeid: ring.0,
                seq: ring.1,
            },
            members: members.clone(),
            joined: joined.clone(),
            left: left.clone(),
        },
        SvcCallback::Cmap {
            track,
            event,
            key,
            new,
            old,
        } => Event::CmapNotify {
            handle,
            track: tracks
                .iter()
                .find(|(_, v)| *v == track)
                .map_or_else(|| format!("0x{track:x}"), |(n, _)| n.clone()),
            event: cmap_event_name(*event),
            key: key.clone(),
            new: new.clone(),
            old: old.clone(),
        },
        SvcCallback::CfgShutdown { flags, replied } => Event::CfgShutdown {
            handle,
            flags: shutdown_flags_name(*flags),
            reply: match replied {
                Some((1, _)) => "yes".into(),
                Some((0, _)) => "no".into(),
                Some((n, _)) => n.to_string(),
                None => "none".into(),
            },
            reply_rc: replied.map(|(_, e)| crate::values::Rc(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_c_bytes() {
        for v in [
            CmapValue::U32(7),
            CmapValue::I8(-3),
            CmapValue::Str("joined".into()),
            CmapValue::Bin("00ff10".into()),
            CmapValue::Dbl(1.5),
        ] {
            let b = v.bytes().unwrap();
            assert_eq!(CmapValue::from_c(v.c_type(), &b).unwrap(), Some(v));
        }
        assert!(CmapValue::from_c(6, &[1, 2]).is_err());
        assert_eq!(CmapValue::from_c(0, &[]).unwrap(), None);
        assert!(CmapValue::Str("a\0b".into()).bytes().is_err());
        let j: CmapValue = serde_json::from_str(r#"{"type":"str","value":"left"}"#).unwrap();
        assert_eq!(j, CmapValue::Str("left".into()));
    }

    #[test]
    fn flags_by_name() {
        assert_eq!(
            TrackFlags::Names(vec!["CURRENT".into(), "CHANGES".into()]).raw(),
            Ok(3)
        );
        assert!(TrackFlags::Names(vec!["NOW".into()]).raw().is_err());
        let t = CmapTrackAdd {
            target: Target::named("m1"),
            key: "runtime.members.".into(),
            track: vec!["ADD".into(), "MODIFY".into(), "DELETE".into()],
            prefix: true,
            name: "t1".into(),
        };
        assert_eq!(t.raw(), Ok(15));
        assert_eq!(shutdown_flags("REGARDLESS"), Ok(1));
        assert!(shutdown_flags("SOON").is_err());
    }
}
