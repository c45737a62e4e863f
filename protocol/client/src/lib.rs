//! A pure-Rust CPG client: the calls of libcpg (`lib/cpg.c`) over a libqb IPC connection;
//! and beside it an EVS client ([`evs`]): libevs's calls (corosync 1.4) to the `evs` service.
//!
//! The CPG layer ([`cpg`]) is written against [`Transport`], the three channels of one libqb
//! connection. Two real transports speak libqb's IPC types, after the handshake they share
//! ([`setup`]): [`socket::SocketTransport`], the *socket* type over Unix datagram sockets
//! (totemd, or corosync with `system { qb_ipc_type: socket }`), and [`shm::ShmTransport`],
//! the *shared-memory* type (corosync's default). The server chooses the type; [`connect`]
//! follows its choice and returns an [`IpcTransport`]. The simulator plugs in an in-memory
//! transport that reaches a simulated node's CPG service directly.

use std::fmt;
use std::time::Duration;

use totem_wire::ipc::setup::IpcType;

pub mod cpg;
pub mod evs;
pub mod setup;
pub mod shm;
pub mod socket;
pub mod zerocopy;

use setup::{ServerCreds, DEFAULT_SETUP_TIMEOUT};
use shm::ShmTransport;
use socket::SocketTransport;

/// Why an IPC operation failed.
#[derive(Debug)]
pub enum TransportError {
    /// The server is gone (hangup, refused, or the connection was torn down).
    Disconnected(String),
    /// The server refused the connection at setup with this errno (`-EACCES` ...).
    Refused(i32),
    /// The server sent something that is not a valid libqb/CPG message.
    Protocol(String),
    /// The request is larger than the connection's maximum message size.
    TooLarge { len: usize, max: usize },
    /// The kernel queue is full (libqb answers CS_ERR_TRY_AGAIN).
    WouldBlock,
    /// Any other system error.
    Io(std::io::Error),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected(why) => write!(f, "disconnected: {why}"),
            Self::Refused(errno) => write!(f, "connection refused by the server (errno {errno})"),
            Self::Protocol(why) => write!(f, "protocol error: {why}"),
            Self::TooLarge { len, max } => {
                write!(f, "request of {len} bytes exceeds the connection's {max}")
            }
            Self::WouldBlock => f.write_str("the request queue is full"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Flow-control state the server publishes for a connection (libqb's control file, int32 at
/// offset 4 of the request ring's user data; spec ipc.md §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    /// 0: everything may be sent.
    Open,
    /// 1: no request may be sent (`qb_ipcc_sendv` answers -EAGAIN).
    StopAll,
    /// 2: libcpg's mcasts answer CS_ERR_TRY_AGAIN, other calls go on.
    StopMcast,
}

impl FlowControl {
    /// The control file's integer.
    pub fn from_raw(v: i32) -> FlowControl {
        match v {
            0 => Self::Open,
            2 => Self::StopMcast,
            _ => Self::StopAll,
        }
    }
}

/// A zero-copy buffer's memory, shared with the daemon (libcpg's `/dev/shm` mapping).
pub trait SharedBuffer {
    /// Size of the mapping.
    fn len(&self) -> usize;
    /// Whether the mapping is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Writes `data` at `offset`; false when it does not fit.
    fn write(&mut self, offset: usize, data: &[u8]) -> bool;
    /// Reads `len` bytes at `offset`.
    fn read(&self, offset: usize, len: usize) -> Option<Vec<u8>>;
}

/// One libqb IPC connection to one service, as libcpg uses it.
pub trait Transport {
    /// Sends a request and waits for its one response (`qb_ipcc_sendv_recv`); `request` is a
    /// whole message, 16-byte request header first.
    fn request(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// Sends a request that gets no response (CPG MCAST, `qb_ipcc_sendv`).
    fn send(&mut self, request: &[u8]) -> Result<(), TransportError>;
    /// The next event (24-byte response header first): `Some(Duration::ZERO)` polls, `None`
    /// blocks. `Ok(None)` when nothing arrived in time.
    fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, TransportError>;
    /// The server's current flow-control state for this connection.
    fn flow_control(&self) -> FlowControl;
    /// The largest message the connection carries (negotiated at setup).
    fn max_msg_size(&self) -> usize;
    /// The descriptor an application polls for events (`cpg_fd_get`), if the transport has one.
    fn event_fd(&self) -> Option<i32>;
    /// Whether an event is waiting, without taking it (what polling the `cpg_fd_get`
    /// descriptor tells): `Some(Duration::ZERO)` polls, `None` waits for ever. The default
    /// polls [`Transport::event_fd`].
    fn event_ready(&mut self, timeout: Option<Duration>) -> Result<bool, TransportError> {
        let fd = self.event_fd().ok_or_else(|| {
            TransportError::Protocol("the transport has no event descriptor".into())
        })?;
        let mut fds = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        Ok(totem_unix::poll(&mut fds, timeout)? > 0)
    }
    /// Closes the connection (`qb_ipcc_disconnect`); later calls fail with
    /// [`TransportError::Disconnected`]. The server sees the hangup.
    fn close(&mut self);
    /// Waits `d` before a call is repeated (libcpg sleeps 10 ms between PARTIAL_MCAST
    /// retries, and re-sends JOIN and LEAVE at once, `d` = 0, while the daemon answers
    /// CS_ERR_BUSY). Real transports sleep; the simulator lets virtual time pass, at least
    /// a little, so that the simulated daemon makes progress.
    fn pause(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
    /// Creates a zero-copy buffer file of `map_size` bytes the daemon can open (libcpg's
    /// `memory_map` in `/dev/shm`): its path and the client's mapping of it.
    fn zcb_create(
        &mut self,
        map_size: usize,
    ) -> Result<(Vec<u8>, Box<dyn SharedBuffer>), TransportError> {
        let _ = map_size;
        Err(TransportError::Protocol(
            "this transport offers no zero-copy buffers".into(),
        ))
    }
}

/// Connects to `service` (`"cpg"`) as `qb_ipcc_connect(service, max_msg_size)` does and
/// speaks whichever IPC type the server chooses (ipc.md §1.3): the socket type with totemd
/// or `qb_ipc_type: socket`, the shm type with stock corosync. Waits at most
/// [`DEFAULT_SETUP_TIMEOUT`] for the server's answer.
///
/// Errors: [`TransportError::Disconnected`] when nothing listens or the server closes the
/// stream, [`TransportError::Refused`] with the server's errno, [`TransportError::Protocol`]
/// for a type libqb 2.x clients do not speak either (POSIX or SysV message queues) or a
/// malformed answer.
pub fn connect(service: &str, max_msg_size: usize) -> Result<IpcTransport, TransportError> {
    IpcTransport::connect_timeout(service, max_msg_size, Some(DEFAULT_SETUP_TIMEOUT))
}

/// A libqb connection of the type the server chose (see [`connect`]).
pub enum IpcTransport {
    /// `QB_IPC_SOCKET`.
    Socket(SocketTransport),
    /// `QB_IPC_SHM` (what `QB_IPC_NATIVE` servers answer).
    Shm(ShmTransport),
}

impl IpcTransport {
    /// [`connect`].
    pub fn connect(service: &str, max_msg_size: usize) -> Result<IpcTransport, TransportError> {
        connect(service, max_msg_size)
    }

    /// [`connect`] with a chosen wait for the setup response (`None`: for ever, like
    /// libqb).
    pub fn connect_timeout(
        service: &str,
        max_msg_size: usize,
        setup_timeout: Option<Duration>,
    ) -> Result<IpcTransport, TransportError> {
        let hs = setup::handshake(service, max_msg_size, setup_timeout)?;
        // qb_ipcc_connect_continue: SHM, SOCKET, else ENOTSUP/EINVAL.
        match hs.response.connection_type {
            IpcType::Socket => SocketTransport::from_handshake(hs).map(IpcTransport::Socket),
            IpcType::Shm => ShmTransport::from_handshake(hs).map(IpcTransport::Shm),
            other => Err(TransportError::Protocol(format!(
                "the server chose {other} IPC, which libqb clients do not speak"
            ))),
        }
    }

    /// The type the server chose: [`IpcType::Socket`] or [`IpcType::Shm`].
    pub fn ipc_type(&self) -> IpcType {
        match self {
            Self::Socket(_) => IpcType::Socket,
            Self::Shm(_) => IpcType::Shm,
        }
    }

    fn inner(&self) -> &(dyn Transport + Send) {
        match self {
            Self::Socket(t) => t,
            Self::Shm(t) => t,
        }
    }

    fn inner_mut(&mut self) -> &mut (dyn Transport + Send) {
        match self {
            Self::Socket(t) => t,
            Self::Shm(t) => t,
        }
    }

    /// The service this connection is to.
    pub fn service(&self) -> &str {
        match self {
            Self::Socket(t) => t.service(),
            Self::Shm(t) => t.service(),
        }
    }

    /// The server's credentials from the setup response, if the kernel attached them.
    pub fn server_creds(&self) -> Option<ServerCreds> {
        match self {
            Self::Socket(t) => t.server_creds(),
            Self::Shm(t) => t.server_creds(),
        }
    }

    /// Gives up on a response after `timeout` (`None`, the default: wait while the server
    /// lives). A timed-out call leaves the connection unusable.
    pub fn set_request_timeout(&mut self, timeout: Option<Duration>) {
        match self {
            Self::Socket(t) => t.set_request_timeout(timeout),
            Self::Shm(t) => t.set_request_timeout(timeout),
        }
    }

    /// Still connected, as far as we know without waiting?
    pub fn is_connected(&mut self) -> bool {
        match self {
            Self::Socket(t) => t.is_connected(),
            Self::Shm(t) => t.is_connected(),
        }
    }

    /// Disconnects (what dropping does), as `qb_ipcc_disconnect` does for the type.
    pub fn disconnect(self) {}
}

impl Transport for IpcTransport {
    fn request(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.inner_mut().request(request)
    }

    fn send(&mut self, request: &[u8]) -> Result<(), TransportError> {
        self.inner_mut().send(request)
    }

    fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, TransportError> {
        self.inner_mut().recv_event(timeout)
    }

    fn flow_control(&self) -> FlowControl {
        self.inner().flow_control()
    }

    fn max_msg_size(&self) -> usize {
        self.inner().max_msg_size()
    }

    fn event_fd(&self) -> Option<i32> {
        self.inner().event_fd()
    }

    fn event_ready(&mut self, timeout: Option<Duration>) -> Result<bool, TransportError> {
        self.inner_mut().event_ready(timeout)
    }

    fn close(&mut self) {
        self.inner_mut().close()
    }

    fn pause(&mut self, d: Duration) {
        self.inner_mut().pause(d)
    }

    fn zcb_create(
        &mut self,
        map_size: usize,
    ) -> Result<(Vec<u8>, Box<dyn SharedBuffer>), TransportError> {
        self.inner_mut().zcb_create(map_size)
    }
}

impl fmt::Debug for IpcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpcTransport")
            .field("ipc_type", &self.ipc_type())
            .field("service", &self.service())
            .field("max_msg_size", &self.max_msg_size())
            .finish()
    }
}
