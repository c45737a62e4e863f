//! libevs's calls (corosync 1.4.10 `lib/evs.c`, docs/evs.md §1–§3) over a [`Transport`] to
//! the `evs` service of totemd or the simulator, on our libqb layout
//! (`totem_wire::ipc::evs`). Every call but `finalize`, `context_*` and `fd_get` is one
//! synchronous request, as in 1.4 (EVS-MJ-11): a send the ring cannot take now comes back
//! as CS_ERR_TRY_AGAIN, which the program retries.

use std::time::Duration;

use totem_wire::exec::evs::EvsGroup;
use totem_wire::ipc::evs::{EvsConfchgKind, EvsIpcEvent, EvsRequest, EvsResponse, EVS_IPC_SERVICE};
use totem_wire::ipc::CsError;

use crate::cpg::DispatchMode;
use crate::{IpcTransport, Transport, TransportError};

/// The service libevs connects to.
pub const SERVICE: &str = EVS_IPC_SERVICE;
/// The request buffer 1.4's libevs had (`IPC_REQUEST_SIZE`): a request above it is refused
/// by the library with CS_ERR_INVALID_PARAM (docs/evs.md §6).
pub const MAX_REQUEST: usize = 1 << 20;

/// A callback `evs_dispatch` would call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsCallback {
    /// `evs_deliver_fn`: the sender's nodeid and the message.
    Deliver {
        /// The sender's node (EVS-INIT-5).
        nodeid: u32,
        /// The message.
        data: Vec<u8>,
    },
    /// `evs_confchg_fn`: node lists, and the ring id 1.4 dropped (EVS-CODE-3).
    Confchg {
        /// Transitional or regular (1.4's callback cannot tell; ours can).
        kind: EvsConfchgKind,
        /// The ring's representative.
        ring_nodeid: u32,
        /// The ring's seq.
        ring_seq: u64,
        /// Members.
        members: Vec<u32>,
        /// Left.
        left: Vec<u32>,
        /// Joined.
        joined: Vec<u32>,
    },
}

/// libqb's errno, as a `cs_error_t` for libevs's calls on a connection.
fn transport_error(e: &TransportError) -> CsError {
    match e {
        TransportError::WouldBlock => CsError::TryAgain,
        // 1.4: a request larger than the request buffer → CS_ERR_INVALID_PARAM.
        TransportError::TooLarge { .. } => CsError::InvalidParam,
        TransportError::Refused(errno) => refusal(*errno),
        TransportError::Disconnected(_) | TransportError::Protocol(_) | TransportError::Io(_) => {
            CsError::Library
        }
    }
}

/// A setup the server refused with `-errno`.
fn refusal(errno: i32) -> CsError {
    match -errno {
        libc::EACCES | libc::EPERM => CsError::Security,
        libc::EAGAIN | libc::ENOENT | libc::ECONNREFUSED => CsError::TryAgain,
        libc::ENOMEM => CsError::NoMemory,
        _ => CsError::Library,
    }
}

/// Connects to [`SERVICE`] as `evs_initialize` does: a daemon that is not there (nothing
/// listens) is CS_ERR_TRY_AGAIN, as 1.4's failed `connect` was (EVS-INIT-9).
pub fn connect() -> Result<IpcTransport, CsError> {
    crate::connect(SERVICE, MAX_REQUEST).map_err(|e| match e {
        TransportError::Disconnected(_) => CsError::TryAgain,
        e => transport_error(&e),
    })
}

/// One `evs_initialize` handle.
pub struct Evs<T: Transport> {
    transport: T,
    context: u64,
    finalized: bool,
}

impl<T: Transport> Evs<T> {
    /// `evs_initialize` on an established connection to [`SERVICE`].
    pub fn initialize(transport: T) -> Self {
        Evs {
            transport,
            context: 0,
            finalized: false,
        }
    }

    /// The transport (for `evs_fd_get`).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn open(&self) -> Result<(), CsError> {
        if self.finalized {
            return Err(CsError::BadHandle);
        }
        Ok(())
    }

    fn call(&mut self, request: &EvsRequest<'_>) -> Result<EvsResponse, CsError> {
        self.open()?;
        let len = request.buffer_len();
        if len > MAX_REQUEST.min(self.transport.max_msg_size()) {
            return Err(CsError::InvalidParam);
        }
        let bytes = self
            .transport
            .request(&request.to_bytes())
            .map_err(|e| transport_error(&e))?;
        EvsResponse::parse(&bytes).map_err(|_| CsError::Library)
    }

    fn status(&mut self, request: &EvsRequest<'_>) -> CsError {
        match self.call(request) {
            Ok(r) => r.header().error,
            Err(e) => e,
        }
    }

    /// `evs_join`: appends the keys to this handle's groups (duplicates kept, EVS-JOIN-5);
    /// more than 50 → CS_ERR_TOO_MANY_GROUPS.
    pub fn join(&mut self, groups: &[EvsGroup]) -> CsError {
        self.status(&EvsRequest::Join {
            groups: groups.to_vec(),
        })
    }

    /// `evs_leave`: removes one copy of each key; a key not joined → CS_ERR_NOT_EXIST,
    /// with the keys before it left (EVS-LEAVE-7).
    pub fn leave(&mut self, groups: &[EvsGroup]) -> CsError {
        self.status(&EvsRequest::Leave {
            groups: groups.to_vec(),
        })
    }

    /// `evs_mcast_joined`: the iovecs gathered, to this handle's groups. `guarantee` is
    /// carried and ignored (EVS-MJ-4).
    pub fn mcast_joined(&mut self, guarantee: u32, iovecs: &[&[u8]]) -> CsError {
        let data = iovecs.concat();
        self.status(&EvsRequest::McastJoined {
            guarantee,
            data: &data,
        })
    }

    /// `evs_mcast_groups`: to `groups`, joined or not (EVS-MG-2).
    pub fn mcast_groups(
        &mut self,
        guarantee: u32,
        groups: &[EvsGroup],
        iovecs: &[&[u8]],
    ) -> CsError {
        let data = iovecs.concat();
        self.status(&EvsRequest::McastGroups {
            guarantee,
            groups: groups.to_vec(),
            data: &data,
        })
    }

    /// `evs_membership_get`: this node's id and the last configuration's members (the C
    /// library truncates them to the caller's array, EVS-MEMB-5).
    pub fn membership_get(&mut self) -> Result<(u32, Vec<u32>), CsError> {
        match self.call(&EvsRequest::MembershipGet)? {
            EvsResponse::MembershipGet {
                local_nodeid,
                members,
                ..
            } => Ok((local_nodeid, members)),
            EvsResponse::Status { header } if header.error != CsError::Ok => Err(header.error),
            EvsResponse::Status { .. } => Err(CsError::Library),
        }
    }

    /// `evs_finalize`: no request is sent; the connection is closed and the handle is dead
    /// (EVS-FIN-1, EVS-FIN-2). Nobody else sees anything.
    pub fn finalize(&mut self) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        self.finalized = true;
        self.transport.close();
        CsError::Ok
    }

    /// Whether `finalize` was called.
    pub fn is_finalized(&self) -> bool {
        self.finalized
    }

    /// `evs_context_get` (0 before any set, EVS-CTX-1).
    pub fn context(&self) -> Result<u64, CsError> {
        self.open().map(|()| self.context)
    }

    /// `evs_context_set`.
    pub fn set_context(&mut self, context: u64) -> CsError {
        match self.open() {
            Ok(()) => {
                self.context = context;
                CsError::Ok
            }
            Err(e) => e,
        }
    }

    /// Whether an event arrives within `timeout` (what polling `evs_fd_get`'s descriptor
    /// tells); the event stays queued.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<bool, CsError> {
        self.open()?;
        self.transport
            .event_ready(timeout)
            .map_err(|e| transport_error(&e))
    }

    /// Receives one event as its callback; `Ok(None)` when nothing came in time. An event
    /// that is neither DELIVER nor CONFCHG is CS_ERR_LIBRARY (EVS-DISP-2).
    pub fn next_event(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<EvsCallback>, CsError> {
        self.open()?;
        let Some(bytes) = self
            .transport
            .recv_event(timeout)
            .map_err(|e| transport_error(&e))?
        else {
            return Ok(None);
        };
        Ok(Some(match EvsIpcEvent::parse(&bytes) {
            Ok(EvsIpcEvent::Deliver { nodeid, data }) => EvsCallback::Deliver {
                nodeid,
                data: data.to_vec(),
            },
            Ok(EvsIpcEvent::Confchg {
                kind,
                ring_nodeid,
                ring_seq,
                members,
                left,
                joined,
            }) => EvsCallback::Confchg {
                kind,
                ring_nodeid,
                ring_seq,
                members,
                left,
                joined,
            },
            Err(_) => return Err(CsError::Library),
        }))
    }

    /// `evs_dispatch`, calling `on_callback` for each callback; it returns true to finalize
    /// the handle from inside it, after which dispatch returns CS_OK (EVS-FIN-3). ONE and
    /// BLOCKING wait at most `wait` (`None`: for ever, as libevs; expiry is CS_ERR_TIMEOUT);
    /// ALL returns CS_OK once nothing waits (EVS-DISP-4..6). CS_DISPATCH_ONE_NONBLOCKING did
    /// not exist in 1.4: it behaves like BLOCKING there (any other value, EVS-DISP-6), and
    /// here like ONE without waiting.
    pub fn dispatch(
        &mut self,
        mode: DispatchMode,
        wait: Option<Duration>,
        mut on_callback: impl FnMut(&EvsCallback) -> bool,
    ) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        let timeout = match mode {
            DispatchMode::All | DispatchMode::OneNonblocking => Some(Duration::ZERO),
            DispatchMode::One | DispatchMode::Blocking => wait,
        };
        loop {
            let cb = match self.next_event(timeout) {
                Ok(Some(cb)) => cb,
                Ok(None) => match mode {
                    DispatchMode::All => return CsError::Ok,
                    DispatchMode::OneNonblocking => return CsError::TryAgain,
                    DispatchMode::One | DispatchMode::Blocking => return CsError::Timeout,
                },
                Err(e) => return e,
            };
            if on_callback(&cb) {
                let _ = self.finalize();
                return CsError::Ok;
            }
            if matches!(mode, DispatchMode::One | DispatchMode::OneNonblocking) {
                return CsError::Ok;
            }
        }
    }
}
