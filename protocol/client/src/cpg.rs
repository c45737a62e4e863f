//! libcpg's calls (corosync `lib/cpg.c`, 3.1.7) over a [`Transport`]: the same requests, the
//! same client-side checks, the same fragmentation of large messages and reassembly of their
//! pieces, the same dispatch modes and return codes.

use std::collections::BTreeMap;
use std::time::Duration;

use totem_wire::exec::cpg::{CpgName, PartialType};
use totem_wire::ipc::cpg::{
    CpgAddress, Guarantee, IterationType, ZcHead, CPG_MEMBERS_MAX, ZC_MAP_SIZE_OFFSET,
    ZC_MCAST_OFFSET, ZC_PAYLOAD_OFFSET,
};
use totem_wire::ipc::{CpgEvent, CpgRequest, CpgResponse, CsError};

use crate::{FlowControl, SharedBuffer, Transport, TransportError};

/// `IPC_REQUEST_SIZE - 1024` (`cpg_model_initialize`): larger messages go in pieces.
pub const MAX_ATOMIC_MSG_SIZE: usize = 1_047_552;
/// `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`.
pub const DELIVER_INITIAL_TOTEM_CONF: u32 = 0x01;
/// `send_fragments` gives up on a piece after this many TRY_AGAIN answers (`MAX_RETRIES`).
const FRAGMENT_RETRIES: u32 = 100;

/// `cs_dispatch_flags_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchMode {
    /// CS_DISPATCH_ONE (1): one callback, waiting for it.
    One,
    /// CS_DISPATCH_ALL (2): every pending callback, without waiting.
    All,
    /// CS_DISPATCH_BLOCKING (3, and any undefined value): callbacks until finalize.
    Blocking,
    /// CS_DISPATCH_ONE_NONBLOCKING (4): at most one callback; TRY_AGAIN when none.
    OneNonblocking,
}

impl DispatchMode {
    /// From the C value; libcpg treats any undefined value like BLOCKING (it only tests for
    /// the other three).
    pub fn from_raw(v: u32) -> DispatchMode {
        match v {
            1 => Self::One,
            2 => Self::All,
            4 => Self::OneNonblocking,
            _ => Self::Blocking,
        }
    }
}

/// A callback `cpg_dispatch` would call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// `cpg_deliver_fn` (a whole message, reassembled from pieces when needed).
    Deliver {
        /// The group.
        group: CpgName,
        /// Sender's node.
        nodeid: u32,
        /// Sender's pid.
        pid: u32,
        /// The message.
        data: Vec<u8>,
    },
    /// `cpg_confchg_fn`.
    Confchg {
        /// The group.
        group: CpgName,
        /// Members after the change.
        members: Vec<CpgAddress>,
        /// Who left.
        left: Vec<CpgAddress>,
        /// Who joined.
        joined: Vec<CpgAddress>,
    },
    /// `cpg_totem_confchg_fn` (model v1).
    TotemConfchg {
        /// Ring id: representative.
        ring_nodeid: u32,
        /// Ring id: sequence.
        ring_seq: u64,
        /// The ring's members.
        members: Vec<u32>,
    },
}

/// Maps a transport failure to what `qb_to_cs_error` makes of libqb's errno.
fn transport_error(e: &TransportError) -> CsError {
    match e {
        TransportError::WouldBlock => CsError::TryAgain,
        TransportError::TooLarge { .. } => CsError::TooBig,
        TransportError::Refused(errno) => match -errno {
            libc::EACCES => CsError::Access,
            libc::EAGAIN => CsError::TryAgain,
            libc::ENOSYS => CsError::NotSupported,
            _ => CsError::Library,
        },
        TransportError::Disconnected(_) | TransportError::Protocol(_) | TransportError::Io(_) => {
            CsError::Library
        }
    }
}

fn name(group: &[u8]) -> Result<CpgName, CsError> {
    CpgName::new(group).ok_or(CsError::NameTooLong)
}

/// One `cpg_initialize` / `cpg_model_initialize` handle.
pub struct Cpg<T: Transport> {
    transport: T,
    pid: u32,
    flags: u32,
    context: u64,
    /// A model-v1 handle has a totem confchg callback; `cpg_initialize`'s does not, and
    /// libcpg drops TOTEM_CONFCHG for it.
    totem_callback: bool,
    finalized: bool,
    /// Iteration handles not yet finalized (libcpg's `cpg_iteration_handle_t_db`).
    iterations: std::collections::BTreeSet<u64>,
    /// Pieces being reassembled per (nodeid, pid) (`cpg_inst->assembly_list_head`).
    assemblies: BTreeMap<(u32, u32), Vec<u8>>,
    /// Zero-copy buffers handed out, by id.
    zcbs: BTreeMap<u64, Box<dyn SharedBuffer>>,
    next_zcb: u64,
}

/// Where the caller's bytes start in a zero-copy buffer (the codec's layout, ipc.md §4.7).
pub const ZCB_PAYLOAD_OFFSET: usize = ZC_PAYLOAD_OFFSET;
/// `cpg_zcb_mcast_joined` refuses more than `IPC_REQUEST_SIZE` with CS_ERR_TOO_BIG.
const ZCB_MCAST_MAX: usize = 1 << 20;

impl<T: Transport> Cpg<T> {
    /// `cpg_initialize` on an established connection: deliver and confchg callbacks only.
    /// `pid` is what JOIN and LEAVE carry (libcpg sends `getpid()`).
    pub fn initialize(transport: T, pid: u32) -> Self {
        Cpg {
            transport,
            pid,
            flags: 0,
            context: 0,
            totem_callback: false,
            finalized: false,
            iterations: std::collections::BTreeSet::new(),
            assemblies: BTreeMap::new(),
            zcbs: BTreeMap::new(),
            next_zcb: 1,
        }
    }

    /// `cpg_model_initialize(CPG_MODEL_V1, flags, context)`: with the totem confchg
    /// callback. Unknown flags are refused with CS_ERR_INVALID_PARAM, as libcpg does.
    pub fn model_initialize(
        transport: T,
        pid: u32,
        flags: u32,
        context: u64,
    ) -> Result<Self, CsError> {
        if flags & !DELIVER_INITIAL_TOTEM_CONF != 0 {
            return Err(CsError::InvalidParam);
        }
        Ok(Cpg {
            transport,
            pid,
            flags,
            context,
            totem_callback: true,
            finalized: false,
            iterations: std::collections::BTreeSet::new(),
            assemblies: BTreeMap::new(),
            zcbs: BTreeMap::new(),
            next_zcb: 1,
        })
    }

    /// The transport (for `cpg_fd_get` and the like).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn open(&self) -> Result<(), CsError> {
        if self.finalized {
            return Err(CsError::BadHandle);
        }
        Ok(())
    }

    fn call(&mut self, request: &CpgRequest<'_>) -> Result<CpgResponse, CsError> {
        let bytes = self
            .transport
            .request(&request.to_bytes())
            .map_err(|e| transport_error(&e))?;
        CpgResponse::parse(&bytes).map_err(|_| CsError::Library)
    }

    fn status(&mut self, request: &CpgRequest<'_>) -> CsError {
        match self.call(request) {
            Ok(r) => r.header().error,
            Err(e) => e,
        }
    }

    /// `cpg_join`: retried while the daemon answers CS_ERR_BUSY, as libcpg does (without
    /// sleeping; the daemon must not answer BUSY for ever).
    pub fn join(&mut self, group: &[u8]) -> CsError {
        match name(group) {
            Ok(g) => self.join_name(&g),
            Err(e) => e,
        }
    }

    /// `cpg_join` with a `struct cpg_name` as a C program fills it: the length field as
    /// given (libcpg refuses only one above 128) and the whole array sent, bytes past the
    /// length included; the daemon names the group by the first `length` of them.
    pub fn join_name(&mut self, group: &CpgName) -> CsError {
        let group = *group;
        if group.is_overlong() {
            return CsError::NameTooLong;
        }
        if let Err(e) = self.open() {
            return e;
        }
        loop {
            let rc = self.status(&CpgRequest::join(group, self.pid, self.flags));
            if rc != CsError::Busy {
                return rc;
            }
            self.transport.pause(Duration::ZERO);
        }
    }

    /// `cpg_leave` (the daemon ignores the name and leaves the handle's own group).
    pub fn leave(&mut self, group: &[u8]) -> CsError {
        match name(group) {
            Ok(g) => self.leave_name(&g),
            Err(e) => e,
        }
    }

    /// `cpg_leave` with a `struct cpg_name` as given (see [`Cpg::join_name`]).
    pub fn leave_name(&mut self, group: &CpgName) -> CsError {
        let group = *group;
        if group.is_overlong() {
            return CsError::NameTooLong;
        }
        if let Err(e) = self.open() {
            return e;
        }
        loop {
            let rc = self.status(&CpgRequest::leave(group, self.pid));
            if rc != CsError::Busy {
                return rc;
            }
            self.transport.pause(Duration::ZERO);
        }
    }

    /// `cpg_mcast_joined`: one MCAST up to the atomic size, PARTIAL_MCAST pieces above it.
    /// The payload is the concatenation of `iovecs`; pieces never cross their boundaries.
    pub fn mcast_joined(&mut self, guarantee: Guarantee, iovecs: &[&[u8]]) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        let total: usize = iovecs.iter().map(|v| v.len()).sum();
        if total > MAX_ATOMIC_MSG_SIZE {
            return self.send_fragments(guarantee, total, iovecs);
        }
        // qb_ipcc_sendv with fc_enable_max 2: any flow control the server set refuses it.
        if self.transport.flow_control() != FlowControl::Open {
            return CsError::TryAgain;
        }
        let data = iovecs.concat();
        match self
            .transport
            .send(&CpgRequest::mcast(guarantee, &data).to_bytes())
        {
            Ok(()) => CsError::Ok,
            Err(e) => transport_error(&e),
        }
    }

    /// `send_fragments`: FIRST, CONTINUED..., LAST, each answered by PARTIAL_SEND.
    fn send_fragments(&mut self, guarantee: Guarantee, total: usize, iovecs: &[&[u8]]) -> CsError {
        let mut sent = 0usize;
        for iov in iovecs {
            for piece in iov.chunks(MAX_ATOMIC_MSG_SIZE) {
                let kind = if sent == 0 {
                    PartialType::First
                } else if sent + piece.len() == total {
                    PartialType::Last
                } else {
                    PartialType::Continued
                };
                let request = CpgRequest::partial_mcast(guarantee, total as u32, kind, piece);
                let mut retries = 0;
                let rc = loop {
                    let rc = if self.transport.flow_control() == FlowControl::Open {
                        self.status(&request)
                    } else {
                        CsError::TryAgain
                    };
                    if rc != CsError::TryAgain {
                        break rc;
                    }
                    retries += 1;
                    if retries > FRAGMENT_RETRIES {
                        return CsError::TryAgain;
                    }
                    // libcpg sleeps 10 ms between tries (and prints "sleep. counter=N").
                    self.transport.pause(Duration::from_millis(10));
                };
                if rc != CsError::Ok {
                    return rc;
                }
                sent += piece.len();
            }
        }
        CsError::Ok
    }

    /// `cpg_zcb_alloc`: a shared buffer of `size` payload bytes the daemon maps; returns its
    /// id (libcpg returns a pointer 56 bytes into the mapping).
    pub fn zcb_alloc(&mut self, size: usize) -> Result<u64, CsError> {
        self.open()?;
        let map_size = size + ZCB_PAYLOAD_OFFSET;
        let (path, mut buffer) = self
            .transport
            .zcb_create(map_size)
            .map_err(|e| transport_error(&e))?;
        if path.len() >= totem_wire::ipc::cpg::ZC_PATH_LEN {
            return Err(CsError::NameTooLong);
        }
        // Only the transport's result counts, as in libcpg: corosync leaves the reply's
        // error field unset (stack garbage; read as a code it failed every allocation on
        // real corosync) and the reply may not even parse as a CPG response.
        self.transport
            .request(&CpgRequest::zc_alloc(map_size as u64, &path).to_bytes())
            .map_err(|e| transport_error(&e))?;
        let _ = buffer.write(ZC_MAP_SIZE_OFFSET, &ZcHead::map_size_bytes(map_size as u32));
        let id = self.next_zcb;
        self.next_zcb += 1;
        self.zcbs.insert(id, buffer);
        Ok(id)
    }

    /// Writes the application's bytes into a zero-copy buffer (what a caller does through
    /// the pointer `cpg_zcb_alloc` returned).
    pub fn zcb_write(&mut self, id: u64, offset: usize, data: &[u8]) -> Result<(), CsError> {
        let buffer = self.zcbs.get_mut(&id).ok_or(CsError::InvalidParam)?;
        if buffer.write(ZCB_PAYLOAD_OFFSET + offset, data) {
            Ok(())
        } else {
            Err(CsError::InvalidParam)
        }
    }

    /// `cpg_zcb_mcast_joined`: the MCAST header goes inside the buffer, then ZC_EXECUTE
    /// names it by the daemon's token.
    pub fn zcb_mcast_joined(&mut self, id: u64, guarantee: Guarantee, len: usize) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        if len > ZCB_MCAST_MAX {
            return CsError::TooBig;
        }
        let Some(buffer) = self.zcbs.get_mut(&id) else {
            return CsError::InvalidParam;
        };
        let header = CpgRequest::zc_mcast_header(guarantee, len as u32);
        if !buffer.write(ZC_MCAST_OFFSET, &header) {
            return CsError::InvalidParam;
        }
        let Some(head) = zc_head(buffer.as_ref()) else {
            return CsError::InvalidParam;
        };
        self.status(&CpgRequest::zc_execute(head.server_address))
    }

    /// `cpg_zcb_free`.
    pub fn zcb_free(&mut self, id: u64) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        let Some(buffer) = self.zcbs.get(&id) else {
            return CsError::InvalidParam;
        };
        let Some(head) = zc_head(buffer.as_ref()) else {
            return CsError::InvalidParam;
        };
        let rc = self.status(&CpgRequest::zc_free(
            u64::from(head.map_size),
            head.server_address,
        ));
        if rc == CsError::Library {
            return rc;
        }
        self.zcbs.remove(&id);
        CsError::Ok
    }

    /// `cpg_zcb_free` on memory libcpg never handed out: it reads a header from before the
    /// pointer (`map_size`, `server_address`), sends ZC_FREE with them, and then `munmap`
    /// of that size fails (EINVAL for 0) — CS_ERR_INVALID_PARAM.
    pub fn zcb_free_foreign(&mut self, map_size: u64, server_address: u64) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        let rc = self.status(&CpgRequest::zc_free(map_size, server_address));
        if rc == CsError::Library {
            return rc;
        }
        if map_size == 0 {
            CsError::InvalidParam
        } else {
            CsError::Ok
        }
    }

    /// `cpg_membership_get`: the group's processes as the daemon knows them.
    pub fn membership_get(&mut self, group: &[u8]) -> Result<Vec<CpgAddress>, CsError> {
        self.membership_get_name(&name(group)?)
    }

    /// `cpg_membership_get` with a `struct cpg_name` as given (see [`Cpg::join_name`]).
    pub fn membership_get_name(&mut self, group: &CpgName) -> Result<Vec<CpgAddress>, CsError> {
        let group = *group;
        if group.is_overlong() {
            return Err(CsError::NameTooLong);
        }
        self.open()?;
        match self.call(&CpgRequest::membership(group))? {
            CpgResponse::Membership { header, members } if header.error == CsError::Ok => {
                Ok(members)
            }
            other => Err(error_of(&other)),
        }
    }

    /// `cpg_local_get`.
    pub fn local_get(&mut self) -> Result<u32, CsError> {
        self.open()?;
        match self.call(&CpgRequest::local_get())? {
            CpgResponse::LocalGet {
                header,
                local_nodeid,
            } if header.error == CsError::Ok => Ok(local_nodeid),
            other => Err(error_of(&other)),
        }
    }

    /// `cpg_iteration_initialize`: `group` must be given for ONE_GROUP and only then.
    pub fn iteration_initialize(
        &mut self,
        kind: IterationType,
        group: Option<&[u8]>,
    ) -> Result<u64, CsError> {
        let group = group.map(name).transpose()?;
        if (kind == IterationType::OneGroup) != group.is_some()
            || !matches!(
                kind,
                IterationType::NameOnly | IterationType::OneGroup | IterationType::All
            )
        {
            return Err(CsError::InvalidParam);
        }
        self.open()?;
        let group = group.unwrap_or(CpgName::EMPTY);
        match self.call(&CpgRequest::iteration_initialize(kind, group))? {
            CpgResponse::IterationInitialize { header, handle } if header.error == CsError::Ok => {
                self.iterations.insert(handle);
                Ok(handle)
            }
            other => Err(error_of(&other)),
        }
    }

    /// `cpg_iteration_next`: the next (group, nodeid, pid), or CS_ERR_NO_SECTIONS at the end.
    pub fn iteration_next(&mut self, handle: u64) -> Result<(CpgName, u32, u32), CsError> {
        if !self.iterations.contains(&handle) {
            return Err(CsError::BadHandle);
        }
        match self.call(&CpgRequest::iteration_next(handle))? {
            CpgResponse::IterationNext {
                header,
                group,
                nodeid,
                pid,
            } if header.error == CsError::Ok => Ok((group, nodeid, pid)),
            other => Err(error_of(&other)),
        }
    }

    /// `cpg_iteration_finalize`.
    pub fn iteration_finalize(&mut self, handle: u64) -> CsError {
        if !self.iterations.contains(&handle) {
            return CsError::BadHandle;
        }
        let rc = self.status(&CpgRequest::iteration_finalize(handle));
        if rc == CsError::Ok {
            self.iterations.remove(&handle);
        }
        rc
    }

    /// `cpg_finalize`: FINALIZE, then the handle is dead (later calls: CS_ERR_BAD_HANDLE).
    pub fn finalize(&mut self) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        self.finalized = true;
        let rc = self.status(&CpgRequest::finalize());
        // cpg_inst_finalize: the client disconnects at once; the daemon's exit function
        // then sends PROCDOWN for a process still joined.
        self.transport.close();
        rc
    }

    /// Whether `finalize` was called.
    pub fn is_finalized(&self) -> bool {
        self.finalized
    }

    /// `cpg_context_get`.
    pub fn context(&self) -> Result<u64, CsError> {
        self.open().map(|()| self.context)
    }

    /// `cpg_context_set`.
    pub fn set_context(&mut self, context: u64) -> CsError {
        match self.open() {
            Ok(()) => {
                self.context = context;
                CsError::Ok
            }
            Err(e) => e,
        }
    }

    /// `cpg_max_atomic_msgsize_get`.
    pub fn max_atomic_msgsize(&self) -> Result<usize, CsError> {
        self.open().map(|()| MAX_ATOMIC_MSG_SIZE)
    }

    /// `cpg_flow_control_state_get`: always disabled in 3.1.7 (no IPC is made).
    pub fn flow_control_state(&self) -> Result<bool, CsError> {
        self.open().map(|()| false)
    }

    /// Whether an event arrives within `timeout` (what polling `cpg_fd_get`'s descriptor
    /// tells); the event stays queued.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<bool, CsError> {
        self.open()?;
        self.transport
            .event_ready(timeout)
            .map_err(|e| transport_error(&e))
    }

    /// Receives one event and turns it into at most one callback: a piece of a large
    /// message only gives one with its LAST piece. `Ok(None)` when nothing came in time.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, CsError> {
        self.open()?;
        let Some(bytes) = self
            .transport
            .recv_event(timeout)
            .map_err(|e| transport_error(&e))?
        else {
            return Ok(None);
        };
        let event = CpgEvent::parse(&bytes).map_err(|_| CsError::Library)?;
        Ok(Some(self.callback(event)?))
    }

    fn callback(&mut self, event: CpgEvent<'_>) -> Result<Event, CsError> {
        Ok(match event {
            CpgEvent::Deliver {
                group,
                nodeid,
                pid,
                data,
                ..
            } => Event::Callback(Box::new(Callback::Deliver {
                group,
                nodeid,
                pid,
                data: data.to_vec(),
            })),
            CpgEvent::PartialDeliver {
                group,
                msglen,
                nodeid,
                pid,
                kind,
                data,
                ..
            } => {
                let key = (nodeid, pid);
                if kind == PartialType::First {
                    // A new FIRST drops an unfinished assembly (its sender was interrupted).
                    self.assemblies
                        .insert(key, Vec::with_capacity(msglen as usize));
                }
                let Some(buf) = self.assemblies.get_mut(&key) else {
                    return Ok(Event::Piece);
                };
                if buf.len() + data.len() > msglen as usize {
                    // libcpg would write past its buffer; we drop the assembly instead.
                    self.assemblies.remove(&key);
                    return Err(CsError::Library);
                }
                buf.extend_from_slice(data);
                if kind != PartialType::Last {
                    return Ok(Event::Piece);
                }
                let data = self.assemblies.remove(&key).unwrap_or_default();
                Event::Callback(Box::new(Callback::Deliver {
                    group,
                    nodeid,
                    pid,
                    data,
                }))
            }
            CpgEvent::Confchg {
                group,
                members,
                left,
                joined,
                ..
            } => {
                if members.len().max(left.len()).max(joined.len()) > CPG_MEMBERS_MAX as usize {
                    // libcpg's stack arrays hold 128 (CPG_MEMBERS_MAX).
                    return Err(CsError::Library);
                }
                // A sender that left takes its unfinished assembly with it.
                for l in &left {
                    self.assemblies.remove(&(l.nodeid, l.pid));
                }
                Event::Callback(Box::new(Callback::Confchg {
                    group,
                    members,
                    left,
                    joined,
                }))
            }
            CpgEvent::TotemConfchg { .. } if !self.totem_callback => Event::Piece,
            CpgEvent::TotemConfchg {
                ring_nodeid,
                ring_seq,
                members,
                ..
            } => Event::Callback(Box::new(Callback::TotemConfchg {
                ring_nodeid,
                ring_seq,
                members,
            })),
            CpgEvent::Unknown { .. } => return Err(CsError::Library),
        })
    }

    /// `cpg_dispatch`, calling `on_callback` for each callback. The callback returns true
    /// to finalize the handle from inside it (how a BLOCKING dispatch is ended); dispatch then
    /// returns CS_ERR_BAD_HANDLE. `wait` bounds ONE and BLOCKING, which libcpg lets wait for
    /// ever: `Ok(None)`-like expiry is reported as `Err(CsError::Timeout)`.
    pub fn dispatch(
        &mut self,
        mode: DispatchMode,
        wait: Option<Duration>,
        mut on_callback: impl FnMut(&Callback) -> bool,
    ) -> CsError {
        if let Err(e) = self.open() {
            return e;
        }
        let timeout = match mode {
            DispatchMode::All | DispatchMode::OneNonblocking => Some(Duration::ZERO),
            DispatchMode::One | DispatchMode::Blocking => wait,
        };
        loop {
            let event = match self.next_event(timeout) {
                Ok(Some(e)) => e,
                Ok(None) => match mode {
                    DispatchMode::OneNonblocking => return CsError::TryAgain,
                    DispatchMode::All => return CsError::Ok,
                    DispatchMode::One | DispatchMode::Blocking => return CsError::Timeout,
                },
                Err(e) => return e,
            };
            let Event::Callback(cb) = event else {
                // A piece is a message that produced no callback: keep going.
                if mode == DispatchMode::OneNonblocking || mode == DispatchMode::One {
                    return CsError::Ok;
                }
                continue;
            };
            if on_callback(&cb) {
                let _ = self.finalize();
                return CsError::BadHandle;
            }
            if matches!(mode, DispatchMode::One | DispatchMode::OneNonblocking) {
                return CsError::Ok;
            }
        }
    }
}

/// One received event: a callback, or a message that calls nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// What `cpg_dispatch` calls back.
    Callback(Box<Callback>),
    /// A PARTIAL_DELIVER piece that completed nothing yet, or an event whose callback the
    /// handle does not have.
    Piece,
}

/// The head of a zero-copy buffer, as libcpg reads it through its pointer.
fn zc_head(buffer: &dyn SharedBuffer) -> Option<ZcHead> {
    ZcHead::parse(&buffer.read(0, ZC_PAYLOAD_OFFSET)?).ok()
}

fn error_of(r: &CpgResponse) -> CsError {
    match r.header().error {
        CsError::Ok => CsError::Library,
        e => e,
    }
}
