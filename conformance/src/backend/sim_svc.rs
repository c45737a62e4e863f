//! The simulated libquorum of the `sim` backend: [`SvcApi`] over a simulated node's
//! votequorum (the `totem-votequorum` engine every sim node runs, as totemd does). A
//! tracker is sent what totemd's quorum service sends (`protocol/daemon/src/quorum.rs`):
//! the current view on TRACKSTART with CS_TRACK_CURRENT or CS_TRACK_CHANGES, then every
//! view votequorum hands the quorum service (`quorum_api_set_quorum`, recorded by the
//! simulator as `Sim::quorum_notes`). Model v1 is refused as totemd refuses it
//! (CS_ERR_NOT_SUPPORTED). cmap and cfg are not modelled: the simulator has no icmap and
//! no cfg service, so scenarios calling them are skipped on `sim` (the backend does not
//! declare them).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use totem_agent_protocol::api::{EventFd, Handle};
use totem_agent_protocol::svc::{CmapValue, QuorumModel, Service, SvcApi, SvcCallback};
use totem_votequorum::QuorumView;
use totem_wire::ipc::CsError;

use super::sim::Shared;

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
}

impl SimSvc {
    pub(super) fn new(sim: Shared, node: u32, first_handle: u64) -> SimSvc {
        SimSvc {
            sim,
            node,
            next_handle: first_handle,
            quorum: BTreeMap::new(),
        }
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
            let from = q.next.max(notes.first);
            for i in from..notes.next() {
                if let Some(v) = notes.views.get((i - notes.first) as usize) {
                    q.pending.push_back(v.clone());
                }
            }
        }
        q.next = notes.next();
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
            other => Err(format!("{other:?} is not modelled by the simulator")),
        }
    }

    fn quorum_initialize(&mut self, model: QuorumModel) -> Result<(Handle, u32), CsError> {
        let (incarnation, next, provider) = {
            let sim = self.sim.borrow();
            match (sim.quorum_notes(self.node), sim.votequorum(self.node)) {
                (Some((inc, notes)), Some(vq)) => (inc, notes.next(), vq.config().provider),
                // No daemon: libqb cannot connect.
                _ => return Err(CsError::Library),
            }
        };
        // totemd's quorum_model_gettype: model v1's notifications are not implemented.
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
            .map_or(0, |(_, n)| n.next());
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
        not_modelled()
    }
    fn cmap_get(&mut self, _: Handle, _: &str) -> Result<Option<CmapValue>, CsError> {
        not_modelled()
    }
    fn cmap_set(&mut self, _: Handle, _: &str, _: &CmapValue) -> CsError {
        CsError::NotSupported
    }
    fn cmap_delete(&mut self, _: Handle, _: &str) -> CsError {
        CsError::NotSupported
    }
    fn cmap_track_add(&mut self, _: Handle, _: &str, _: i32) -> Result<u64, CsError> {
        not_modelled()
    }
    fn cmap_track_delete(&mut self, _: Handle, _: u64) -> CsError {
        CsError::NotSupported
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
        if svc != Service::Quorum {
            return CsError::NotSupported;
        }
        match self.quorum.remove(&h) {
            Some(_) => CsError::Ok,
            None => CsError::BadHandle,
        }
    }

    fn fd_get(&mut self, svc: Service, h: Handle) -> Result<EventFd, CsError> {
        if svc != Service::Quorum {
            return not_modelled();
        }
        self.quorum.get(&h).ok_or(CsError::BadHandle)?;
        // An in-memory event channel, as the simulated CPG connections have.
        Ok(EventFd {
            fd: None,
            open: true,
        })
    }

    fn wait_event(&mut self, svc: Service, h: Handle, _: Duration) -> Result<bool, CsError> {
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
