//! The simulated libquorum of the `sim` backend: [`SvcApi`] over a simulated node's
//! votequorum (the `totem-votequorum` engine every sim node runs, as totemd does). A
//! tracker is sent what totemd's quorum service sends (`protocol/daemon/src/quorum.rs`):
//! the current view on TRACKSTART with CS_TRACK_CURRENT or CS_TRACK_CHANGES, then every
//! view votequorum hands the quorum service (`quorum_api_set_quorum`, recorded by the
//! simulator as `Sim::quorum_notes`). Model v1 (its NODELIST callbacks need the sync's
//! joined and left lists, which the simulator does not record for the quorum service) is
//! not modelled: refused with CS_ERR_NOT_SUPPORTED, and its scenario does not list `sim`.
//!
//! Its libcmap runs totemd's own icmap (`totemd::cmap::Icmap`), one per simulated daemon
//! incarnation, fed the node's totem configurations as totemd's `confchg` feeds it
//! (`runtime.members.<id>.*`), with cmap.c's read-only check before SET and DELETE; a
//! track's notifications go to its connection as totemd queues them. The map holds no
//! configuration keys (the simulator has no corosync.conf), and `runtime.members.<id>.ip`
//! reads "no interface found for nodeid" (no addresses either). cfg is not modelled (no cfg
//! service in the simulator): scenarios calling it are skipped on `sim`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use totem_agent_protocol::api::{EventFd, Handle};
use totem_agent_protocol::svc::{CmapValue, QuorumModel, Service, SvcApi, SvcCallback};
use totem_votequorum::QuorumView;
use totem_wire::ipc::CsError;

use totem_wire::ipc::cmap::CmapResponse;
use totemd::cmap::Icmap;

/// The simulator the sim backend shares between its clients (its `sim::Shared`).
type Shared = std::rc::Rc<std::cell::RefCell<totem_sim::Sim>>;

/// One simulated daemon's icmap and the notifications waiting for each connection.
pub(super) struct NodeCmap {
    incarnation: u64,
    icmap: Icmap,
    /// The number of the next configuration to apply (`QuorumNotes::configurations`).
    applied: u64,
    queues: BTreeMap<u64, VecDeque<Vec<u8>>>,
    next_owner: u64,
}

/// Every node's icmap, shared by the run's simulated clients.
pub(super) type Cmaps = std::rc::Rc<std::cell::RefCell<BTreeMap<u32, NodeCmap>>>;

struct CmapHandle {
    incarnation: u64,
    owner: u64,
    /// The track handles handed out (the notification's `track_inst_handle`) and icmap's.
    tracks: BTreeMap<u64, u64>,
}

/// CS_TRACK_CURRENT, CS_TRACK_CHANGES, CS_TRACK_CHANGES_ONLY (corotypes.h).
const TRACK_CURRENT: u32 = 0x01;
const TRACK_CHANGES: u32 = 0x02;
const TRACK_CHANGES_ONLY: u32 = 0x04;

struct QuorumHandle {
    /// The daemon incarnation it is connected to.
    incarnation: u64,
    tracking: bool,
    /// The number of the next `quorum_notes` view a tracker is owed.
    next: u64,
    pending: VecDeque<QuorumView>,
}

/// One simulated client's libquorum.
pub(super) struct SimSvc {
    pub(super) sim: Shared,
    pub(super) node: u32,
    pub(super) next_handle: u64,
    quorum: BTreeMap<Handle, QuorumHandle>,
    cmaps: Cmaps,
    cmap: BTreeMap<Handle, CmapHandle>,
}

impl SimSvc {
    pub(super) fn new(sim: Shared, cmaps: Cmaps, node: u32, first_handle: u64) -> SimSvc {
        SimSvc {
            sim,
            node,
            next_handle: first_handle,
            quorum: BTreeMap::new(),
            cmaps,
            cmap: BTreeMap::new(),
        }
    }

    /// Brings the node's icmap up to date: a new daemon starts a new map, configurations
    /// since the last look go through `Icmap::confchg`, and the notifications that caused
    /// wait for their connections. The daemon's incarnation, or `None` when it is down.
    fn sync_cmap(&self) -> Option<u64> {
        let sim = self.sim.borrow();
        let (inc, notes) = sim.quorum_notes(self.node)?;
        let mut cmaps = self.cmaps.borrow_mut();
        let c = cmaps.entry(self.node).or_insert_with(|| NodeCmap {
            incarnation: inc,
            icmap: Icmap::new(),
            applied: 0,
            queues: BTreeMap::new(),
            next_owner: 1,
        });
        if c.incarnation != inc {
            *c = NodeCmap {
                incarnation: inc,
                icmap: Icmap::new(),
                applied: 0,
                queues: BTreeMap::new(),
                next_owner: c.next_owner,
            };
        }
        let log = &notes.configurations;
        for i in c.applied.max(log.first)..log.next() {
            if let Some((left, joined)) = log.get(i) {
                c.icmap.confchg(left, joined);
            }
        }
        c.applied = log.next();
        Self::route(c);
        Some(inc)
    }

    fn route(c: &mut NodeCmap) {
        for n in c.icmap.take_notifications() {
            if let Some(q) = c.queues.get_mut(&n.owner) {
                q.push_back(n.bytes);
            }
        }
    }

    /// The handle's connection on a live daemon: (owner), after a sync.
    fn cmap_conn(&self, h: Handle) -> Result<u64, CsError> {
        let inc = self.sync_cmap();
        let c = self.cmap.get(&h).ok_or(CsError::BadHandle)?;
        if inc != Some(c.incarnation) {
            return Err(CsError::Library);
        }
        Ok(c.owner)
    }

    /// A change by one connection: cmap.c's read-only check, then icmap.
    fn cmap_change(
        &mut self,
        h: Handle,
        key: &str,
        change: impl FnOnce(&mut Icmap) -> Result<(), CsError>,
    ) -> CsError {
        if let Err(e) = self.cmap_conn(h) {
            return e;
        }
        let mut cmaps = self.cmaps.borrow_mut();
        let Some(c) = cmaps.get_mut(&self.node) else {
            return CsError::Library;
        };
        let r = if c.icmap.is_ro(key.as_bytes()) {
            Err(CsError::Access)
        } else {
            change(&mut c.icmap)
        };
        Self::route(c);
        r.err().unwrap_or(CsError::Ok)
    }

    /// The node's daemon as the handle knows it: its current view, or why not (a handle
    /// of a daemon that died answers CS_ERR_LIBRARY, as libqb's dead connection does).
    fn live(&self, h: Handle) -> Result<QuorumView, CsError> {
        let q = self.quorum.get(&h).ok_or(CsError::BadHandle)?;
        let sim = self.sim.borrow();
        match (sim.quorum_notes(self.node), sim.votequorum(self.node)) {
            (Some((inc, _)), Some(vq)) if inc == q.incarnation => Ok(vq.view.clone()),
            _ => Err(CsError::Library),
        }
    }

    /// Moves the views recorded since the handle last looked into its queue.
    fn collect(&mut self, h: Handle) -> Result<(), CsError> {
        self.live(h)?;
        let sim = self.sim.borrow();
        let Some((_, notes)) = sim.quorum_notes(self.node) else {
            return Err(CsError::Library);
        };
        let Some(q) = self.quorum.get_mut(&h) else {
            return Err(CsError::BadHandle);
        };
        if q.tracking {
            let from = q.next.max(notes.views.first);
            for i in from..notes.views.next() {
                if let Some(v) = notes.views.get(i) {
                    q.pending.push_back(v.clone());
                }
            }
        }
        q.next = notes.views.next();
        Ok(())
    }
}

fn not_modelled<T>() -> Result<T, CsError> {
    Err(CsError::NotSupported)
}

impl SvcApi for SimSvc {
    fn library(&self, svc: Service) -> Result<String, String> {
        match svc {
            Service::Quorum => Ok("totem-votequorum (simulated libquorum)".into()),
            Service::Cmap => Ok("totemd's icmap (simulated libcmap)".into()),
            other => Err(format!("{other:?} is not modelled by the simulator")),
        }
    }

    fn quorum_initialize(&mut self, model: QuorumModel) -> Result<(Handle, u32), CsError> {
        let (incarnation, next, provider) = {
            let sim = self.sim.borrow();
            match (sim.quorum_notes(self.node), sim.votequorum(self.node)) {
                (Some((inc, notes)), Some(vq)) => (inc, notes.views.next(), vq.config().provider),
                // No daemon: libqb cannot connect.
                _ => return Err(CsError::Library),
            }
        };
        // Model v1 is not modelled here (totemd serves it: quorum.rs).
        if model == QuorumModel::V1 {
            return Err(CsError::NotSupported);
        }
        let h = self.next_handle;
        self.next_handle += 1;
        self.quorum.insert(
            h,
            QuorumHandle {
                incarnation,
                tracking: false,
                next,
                pending: VecDeque::new(),
            },
        );
        Ok((h, u32::from(provider)))
    }

    fn quorum_trackstart(&mut self, h: Handle, flags: u32) -> CsError {
        let view = match self.live(h) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let next = self
            .sim
            .borrow()
            .quorum_notes(self.node)
            .map_or(0, |(_, n)| n.views.next());
        let Some(q) = self.quorum.get_mut(&h) else {
            return CsError::BadHandle;
        };
        // message_handler_req_lib_quorum_trackstart: the current view first.
        if flags & (TRACK_CURRENT | TRACK_CHANGES) != 0 {
            q.pending.push_back(view);
        }
        if q.tracking {
            return CsError::Exist;
        }
        if flags & (TRACK_CHANGES | TRACK_CHANGES_ONLY) != 0 {
            q.tracking = true;
            q.next = next;
        }
        CsError::Ok
    }

    fn quorum_trackstop(&mut self, h: Handle) -> CsError {
        if let Err(e) = self.collect(h) {
            return e;
        }
        if let Some(q) = self.quorum.get_mut(&h) {
            q.tracking = false;
        }
        CsError::Ok
    }

    fn quorum_getquorate(&mut self, h: Handle) -> Result<bool, CsError> {
        // corosync_quorum_is_quorate: what the provider last told the quorum service.
        self.live(h).map(|v| v.quorate)
    }

    fn cmap_initialize(&mut self) -> Result<Handle, CsError> {
        let inc = self.sync_cmap().ok_or(CsError::Library)?;
        let owner = {
            let mut cmaps = self.cmaps.borrow_mut();
            let c = cmaps.get_mut(&self.node).ok_or(CsError::Library)?;
            let owner = c.next_owner;
            c.next_owner += 1;
            c.queues.insert(owner, VecDeque::new());
            owner
        };
        let h = self.next_handle;
        self.next_handle += 1;
        self.cmap.insert(
            h,
            CmapHandle {
                incarnation: inc,
                owner,
                tracks: BTreeMap::new(),
            },
        );
        Ok(h)
    }

    fn cmap_get(&mut self, h: Handle, key: &str) -> Result<Option<CmapValue>, CsError> {
        self.cmap_conn(h)?;
        let cmaps = self.cmaps.borrow();
        let c = cmaps.get(&self.node).ok_or(CsError::Library)?;
        let v = c.icmap.get(key.as_bytes()).ok_or(CsError::NotExist)?;
        CmapValue::from_c(u32::from(u8::from(v.kind)), &v.bytes).map_err(|_| CsError::Library)
    }

    fn cmap_set(&mut self, h: Handle, key: &str, value: &CmapValue) -> CsError {
        let Ok(bytes) = value.bytes() else {
            return CsError::InvalidParam;
        };
        let kind = value.c_type() as u8;
        self.cmap_change(h, key, |m| m.set(key.as_bytes(), &bytes, kind))
    }

    fn cmap_delete(&mut self, h: Handle, key: &str) -> CsError {
        self.cmap_change(h, key, |m| m.delete(key.as_bytes()))
    }

    fn cmap_track_add(&mut self, h: Handle, key: &str, track_type: i32) -> Result<u64, CsError> {
        let owner = self.cmap_conn(h)?;
        // The handle the notification names (libcmap's track instance).
        let inst = self.next_handle;
        self.next_handle += 1;
        let icmap_handle = {
            let mut cmaps = self.cmaps.borrow_mut();
            let c = cmaps.get_mut(&self.node).ok_or(CsError::Library)?;
            c.icmap.track_add(owner, key.as_bytes(), track_type, inst)?
        };
        if let Some(c) = self.cmap.get_mut(&h) {
            c.tracks.insert(inst, icmap_handle);
        }
        Ok(inst)
    }

    fn cmap_track_delete(&mut self, h: Handle, track: u64) -> CsError {
        let owner = match self.cmap_conn(h) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let Some(icmap_handle) = self
            .cmap
            .get(&h)
            .and_then(|c| c.tracks.get(&track).copied())
        else {
            return CsError::BadHandle;
        };
        let mut cmaps = self.cmaps.borrow_mut();
        let Some(c) = cmaps.get_mut(&self.node) else {
            return CsError::Library;
        };
        match c.icmap.track_delete(owner, icmap_handle) {
            Ok(_) => {
                if let Some(ch) = self.cmap.get_mut(&h) {
                    ch.tracks.remove(&track);
                }
                CsError::Ok
            }
            Err(e) => e,
        }
    }

    fn cfg_initialize(&mut self) -> Result<Handle, CsError> {
        not_modelled()
    }
    fn cfg_trackstart(&mut self, _: Handle) -> CsError {
        CsError::NotSupported
    }
    fn cfg_trackstop(&mut self, _: Handle) -> CsError {
        CsError::NotSupported
    }
    fn cfg_try_shutdown(&mut self, _: Handle, _: u32) -> CsError {
        CsError::NotSupported
    }

    fn finalize(&mut self, svc: Service, h: Handle) -> CsError {
        if svc == Service::Cmap {
            let Some(c) = self.cmap.remove(&h) else {
                return CsError::BadHandle;
            };
            // cmap_lib_exit_fn: the connection's tracks go.
            if let Some(n) = self.cmaps.borrow_mut().get_mut(&self.node) {
                if n.incarnation == c.incarnation {
                    n.icmap.drop_owner(c.owner);
                    n.queues.remove(&c.owner);
                }
            }
            return CsError::Ok;
        }
        if svc != Service::Quorum {
            return CsError::NotSupported;
        }
        match self.quorum.remove(&h) {
            Some(_) => CsError::Ok,
            None => CsError::BadHandle,
        }
    }

    fn fd_get(&mut self, svc: Service, h: Handle) -> Result<EventFd, CsError> {
        match svc {
            Service::Quorum => self.quorum.get(&h).map(|_| ()).ok_or(CsError::BadHandle)?,
            Service::Cmap => self.cmap.get(&h).map(|_| ()).ok_or(CsError::BadHandle)?,
            Service::Cfg => return not_modelled(),
        }
        // An in-memory event channel, as the simulated CPG connections have.
        Ok(EventFd {
            fd: None,
            open: true,
        })
    }

    fn wait_event(&mut self, svc: Service, h: Handle, _: Duration) -> Result<bool, CsError> {
        if svc == Service::Cmap {
            return match self.cmap_conn(h) {
                Ok(owner) => Ok(self
                    .cmaps
                    .borrow()
                    .get(&self.node)
                    .and_then(|c| c.queues.get(&owner))
                    .is_some_and(|q| !q.is_empty())),
                Err(CsError::Library) => Ok(true),
                Err(e) => Err(e),
            };
        }
        if svc != Service::Quorum {
            return not_modelled();
        }
        match self.collect(h) {
            Ok(()) => Ok(self.quorum.get(&h).is_some_and(|q| !q.pending.is_empty())),
            // A dead connection is readable: dispatch then reports the error.
            Err(CsError::Library) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn dispatch(
        &mut self,
        svc: Service,
        h: Handle,
        _: Option<u32>,
        on_callback: &mut dyn FnMut(&SvcCallback),
    ) -> CsError {
        if svc == Service::Cmap {
            let owner = match self.cmap_conn(h) {
                Ok(o) => o,
                Err(e) => return e,
            };
            let queued: Vec<Vec<u8>> = self
                .cmaps
                .borrow_mut()
                .get_mut(&self.node)
                .and_then(|c| c.queues.get_mut(&owner))
                .map(|q| q.drain(..).collect())
                .unwrap_or_default();
            for bytes in queued {
                // The res_lib_cmap_notify_callback totemd would send, as libcmap reads it.
                let Ok(CmapResponse::Notify {
                    track_inst_handle,
                    key,
                    event,
                    new_value_type,
                    old_value_type,
                    new_value,
                    old_value,
                    ..
                }) = CmapResponse::parse(&bytes)
                else {
                    return CsError::Library;
                };
                let value = |t: u8, v: &[u8]| CmapValue::from_c(u32::from(t), v).ok().flatten();
                on_callback(&SvcCallback::Cmap {
                    track: track_inst_handle,
                    event,
                    key: String::from_utf8_lossy(&key).into_owned(),
                    new: value(new_value_type, &new_value),
                    old: value(old_value_type, &old_value),
                });
            }
            return CsError::Ok;
        }
        if svc != Service::Quorum {
            return CsError::NotSupported;
        }
        if let Err(e) = self.collect(h) {
            return e;
        }
        let Some(q) = self.quorum.get_mut(&h) else {
            return CsError::BadHandle;
        };
        while let Some(v) = q.pending.pop_front() {
            // The v0 notification: quorate, the ring's seq, the view's members.
            on_callback(&SvcCallback::Quorum {
                quorate: v.quorate,
                ring_nodeid: None,
                ring_seq: v.ring.seq,
                members: v.members.clone(),
            });
        }
        CsError::Ok
    }
}
