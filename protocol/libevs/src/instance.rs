//! One `evs_initialize` handle's state and the calls on it, in safe Rust: what 1.4's
//! `struct evs_inst` and `lib/evs.c` did, over [`totem_client::evs::Evs`].
//!
//! Threads. A program may block in `evs_dispatch(CS_DISPATCH_BLOCKING)` in one thread
//! while another sends on the same handle (`testevsth.c`, EVS-DISP-6). So dispatch never
//! holds the connection while it waits: it polls the event descriptor unlocked, then takes
//! the connection to receive one event without waiting, and runs the callback unlocked
//! (a callback may call any libevs function, `evs_finalize` included, EVS-FIN-3). The
//! connection is handed out in arrival order ([`Turns`]), so a thread sending back to back
//! cannot starve the dispatching one while the daemon's queue of events for us grows.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use totem_client::evs::Evs;
use totem_client::evs::{EvsCallback, MAX_REQUEST};
use totem_client::Transport;
use totem_wire::exec::evs::EvsGroup;
use totem_wire::ipc::CsError;

/// How long a dispatch that waits polls the descriptor before it asks the connection
/// whether the daemon is still there. With the shm IPC type the descriptor is the setup
/// stream and a dead daemon wakes the poll at once; a socket-type event socket is not woken
/// by the daemon's death, only by an event or our own finalize, so this bounds how long
/// `evs_dispatch` takes to report CS_ERR_LIBRARY then (EVS-DISP-6).
const LIVENESS_PERIOD: Duration = Duration::from_millis(500);

/// `cs_dispatch_flags_t` as 1.4's `evs_dispatch` reads it (EVS-DISP-4..6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DispatchMode {
    /// CS_DISPATCH_ONE (1): wait for one event, dispatch it.
    One,
    /// CS_DISPATCH_ALL (2): what is waiting, without waiting.
    All,
    /// CS_DISPATCH_BLOCKING (3), and every other value (1.4 did not validate it).
    Blocking,
}

impl DispatchMode {
    /// From the C value.
    pub(crate) fn from_raw(v: u32) -> DispatchMode {
        match v {
            1 => Self::One,
            2 => Self::All,
            _ => Self::Blocking,
        }
    }
}

/// A first-come first-served gate: `Mutex` alone lets the thread that just unlocked take
/// the lock again before a waiter wakes.
struct Turns {
    state: Mutex<(u64, u64)>,
    cv: Condvar,
}

struct Turn<'a>(&'a Turns);

impl Turns {
    fn new() -> Self {
        Turns {
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
        }
    }

    fn take(&self) -> Turn<'_> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = s.0;
        s.0 = s.0.wrapping_add(1);
        while s.1 != ticket {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.1 = s.1.wrapping_add(1);
        drop(s);
        self.0.cv.notify_all();
    }
}

/// The connection while a thread holds its turn.
struct Held<'a, T: Transport> {
    evs: MutexGuard<'a, Evs<T>>,
    _turn: Turn<'a>,
}

impl<T: Transport> std::ops::Deref for Held<'_, T> {
    type Target = Evs<T>;
    fn deref(&self) -> &Evs<T> {
        &self.evs
    }
}

impl<T: Transport> std::ops::DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut Evs<T> {
        &mut self.evs
    }
}

/// One handle.
pub(crate) struct Instance<T: Transport> {
    evs: Mutex<Evs<T>>,
    turns: Turns,
    /// The connection's event descriptor (`evs_fd_get`). It stays open as long as the
    /// connection object does, i.e. as long as this instance: finalize shuts the sockets
    /// down (which wakes a poll on it) but closes nothing.
    event_fd: i32,
    finalized: AtomicBool,
    context: AtomicUsize,
}

impl<T: Transport> Instance<T> {
    /// A handle on an established connection. CS_ERR_LIBRARY if the transport has no
    /// event descriptor (every real one has).
    pub(crate) fn new(transport: T) -> Result<Self, CsError> {
        let event_fd = transport.event_fd().ok_or(CsError::Library)?;
        Ok(Instance {
            evs: Mutex::new(Evs::initialize(transport)),
            turns: Turns::new(),
            event_fd,
            finalized: AtomicBool::new(false),
            context: AtomicUsize::new(0),
        })
    }

    fn is_finalized(&self) -> bool {
        self.finalized.load(Ordering::SeqCst)
    }

    /// The connection, in turn. A panic while it was held (caught at the FFI boundary)
    /// leaves it as the client left it: the next call finds it usable or reports the
    /// transport's own error.
    fn hold(&self) -> Held<'_, T> {
        let turn = self.turns.take();
        let evs = self.evs.lock().unwrap_or_else(PoisonError::into_inner);
        Held { evs, _turn: turn }
    }

    fn open(&self) -> Result<Held<'_, T>, CsError> {
        if self.is_finalized() {
            return Err(CsError::BadHandle);
        }
        Ok(self.hold())
    }

    /// `evs_fd_get` (EVS-FD-2).
    pub(crate) fn fd(&self) -> Result<i32, CsError> {
        if self.is_finalized() {
            return Err(CsError::BadHandle);
        }
        Ok(self.event_fd)
    }

    /// `evs_context_get`: 0 (NULL) before any set (EVS-CTX-1).
    pub(crate) fn context(&self) -> Result<usize, CsError> {
        if self.is_finalized() {
            return Err(CsError::BadHandle);
        }
        Ok(self.context.load(Ordering::SeqCst))
    }

    /// `evs_context_set`: stored, never read by the library (EVS-CTX-2, -3).
    pub(crate) fn set_context(&self, context: usize) -> CsError {
        if self.is_finalized() {
            return CsError::BadHandle;
        }
        self.context.store(context, Ordering::SeqCst);
        CsError::Ok
    }

    /// `evs_join`.
    pub(crate) fn join(&self, groups: &[EvsGroup]) -> CsError {
        match self.open() {
            Ok(mut evs) => evs.join(groups),
            Err(e) => e,
        }
    }

    /// `evs_leave`.
    pub(crate) fn leave(&self, groups: &[EvsGroup]) -> CsError {
        match self.open() {
            Ok(mut evs) => evs.leave(groups),
            Err(e) => e,
        }
    }

    /// `evs_mcast_joined`: the gathered message must fit the 1 MiB request (EVS-MJ-11).
    pub(crate) fn mcast_joined(&self, guarantee: u32, iovecs: &[&[u8]]) -> CsError {
        if total_len(iovecs) > MAX_REQUEST {
            return CsError::InvalidParam;
        }
        match self.open() {
            Ok(mut evs) => evs.mcast_joined(guarantee, iovecs),
            Err(e) => e,
        }
    }

    /// `evs_mcast_groups`.
    pub(crate) fn mcast_groups(
        &self,
        guarantee: u32,
        groups: &[EvsGroup],
        iovecs: &[&[u8]],
    ) -> CsError {
        if total_len(iovecs) > MAX_REQUEST {
            return CsError::InvalidParam;
        }
        match self.open() {
            Ok(mut evs) => evs.mcast_groups(guarantee, groups, iovecs),
            Err(e) => e,
        }
    }

    /// `evs_membership_get`: this node's id and the members, truncated to `room` entries
    /// without an error (EVS-MEMB-5).
    pub(crate) fn membership(&self, room: usize) -> Result<(u32, Vec<u32>), CsError> {
        let (local, mut members) = self.open()?.membership_get()?;
        members.truncate(room);
        Ok((local, members))
    }

    /// `evs_finalize`: the first call closes the connection (no request, EVS-FIN-1); any
    /// later one is CS_ERR_BAD_HANDLE (EVS-FIN-2). Closing wakes a dispatch polling the
    /// descriptor in another thread, which then returns CS_OK (EVS-FIN-3).
    pub(crate) fn finalize(&self) -> CsError {
        if self.finalized.swap(true, Ordering::SeqCst) {
            return CsError::BadHandle;
        }
        self.hold().finalize()
    }

    /// Waits until the event descriptor is readable (or hung up), at most `timeout`,
    /// without holding the connection.
    fn wait_readable(&self, timeout: Duration) -> Result<(), CsError> {
        let mut fds = [libc::pollfd {
            fd: self.event_fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        totem_unix::poll(&mut fds, Some(timeout))
            .map(|_| ())
            .map_err(|_| CsError::Library)
    }

    /// `evs_dispatch`: calls `on_callback` for each event, unlocked. Returns CS_OK as soon
    /// as the handle is finalized, from a callback or from another thread (EVS-FIN-3); ONE
    /// returns after one event (a dropped one counts, EVS-DISP-4), ALL once nothing waits
    /// (EVS-DISP-5), BLOCKING only then or on an error (EVS-DISP-6: CS_ERR_LIBRARY when
    /// the daemon is gone or sent an unknown event).
    pub(crate) fn dispatch(
        &self,
        mode: DispatchMode,
        mut on_callback: impl FnMut(EvsCallback),
    ) -> CsError {
        if self.is_finalized() {
            return CsError::BadHandle;
        }
        loop {
            if mode != DispatchMode::All {
                if let Err(e) = self.wait_readable(LIVENESS_PERIOD) {
                    return e;
                }
            }
            if self.is_finalized() {
                return CsError::Ok;
            }
            let event = self.hold().next_event(Some(Duration::ZERO));
            match event {
                Ok(Some(cb)) => {
                    on_callback(cb);
                    if self.is_finalized() || mode == DispatchMode::One {
                        return CsError::Ok;
                    }
                }
                // Nothing (any more): ALL is done; a waiting mode was woken by the
                // liveness period, or another thread took the event first.
                Ok(None) if mode == DispatchMode::All => return CsError::Ok,
                Ok(None) => {}
                // Finalized between the check above and the receive.
                Err(CsError::BadHandle) => return CsError::Ok,
                Err(e) => return e,
            }
        }
    }
}

fn total_len(iovecs: &[&[u8]]) -> usize {
    iovecs
        .iter()
        .fold(0usize, |sum, v| sum.saturating_add(v.len()))
}

#[cfg(test)]
mod tests;
