//! libqb's IPC server side (spec ipc.md §1, §5), for unmodified libcpg, libquorum and
//! libcmap clients, in both of libqb's types.
//!
//! libqb 2.0.6 lets the server alone pick the transport (`handle_new_connection` sends
//! `connection_type`; ipc.md §1.3), and every libqb client follows. corosync picks from
//! `system.qb_ipc_type`, native (= shm) by default; [`IpcConfig::ipc_type`] is that choice:
//!
//! ```text
//! listener  SOCK_STREAM  \0<service> (108-byte sun_path, addrlen 110)    one per service
//! per conn  stream from accept()       24-byte request in, 12328-byte response out
//!           /dev/shm/qb-S-C-F-XXXXXX/  the connection's directory
//! socket    the stream is then liveness only: hangup = disconnect (§1.4, §5.2)
//!           SOCK_DGRAM \0B-request     requests in, responses out to \0B-response
//!           SOCK_DGRAM \0B-event-tx    events out to \0B-event
//!           qb-control-<svc> (24 bytes) flow control
//! shm       D-{request,response,event}-<svc>-{header,data}: three rings (`shm`); the
//!           stream carries one byte per request in and per event out, and its hangup
//! ```
//!
//! [`IpcServer`] is sans-policy: it speaks libqb, not CPG. It hands each valid request to
//! the caller as bytes and sends what the caller gives it; the caller decides which request
//! gets a response (every CPG request except MCAST gets exactly one, ipc.md §2.3) and what
//! goes into it. It is driven by the caller's single-threaded poll(2) loop:
//!
//! ```no_run
//! # use totemd::ipc::{IpcConfig, IpcEvent, IpcServer};
//! let clock = totemd::runtime::Clock::new();
//! let mut server = IpcServer::new(IpcConfig::new(["cpg"]), clock.now())?;
//! let (mut fds, mut events) = (Vec::new(), Vec::new());
//! loop {
//!     fds.clear();
//!     server.pollfds(&mut fds); // plus the caller's own descriptors
//!     totemd::ipc::poll(&mut fds, server.poll_timeout(clock.now()))?;
//!     server.process_ready(clock.now(), &fds, &mut events);
//!     for event in events.drain(..) {
//!         if let IpcEvent::Request { conn, bytes } = event {
//!             let _ = (conn, bytes); // parse with totem_wire::ipc::CpgRequest, respond()
//!         }
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The `sent` counters of the control file are left alone: libqb clients update them but
//! never read them (only `flow_control` matters to them, ipcc.c), and the server could
//! not update them atomically without mapping a file the client can truncate (see
//! `conn::ConnFiles`).
//!
//! A client that breaks the protocol (a message shorter than a header, a `size` field
//! that disagrees with the message, more than the negotiated maximum, a ring it scribbled
//! over or truncated), or that does not read what it is sent until its bounded queue
//! overflows, is disconnected; nothing it does reaches other connections. What the server
//! holds per client is bounded: 24 bytes of handshake, a 12328-byte response, the two
//! output FIFOs ([`IpcConfig::queue_max_bytes`]) and, for shm, its three rings' mappings.

mod channel;
mod conn;
pub mod record;
mod shm;
mod sys;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use totem_srp::Instant;

use totem_wire::ipc::setup::{
    ConnectionRequest, ConnectionResponse, IpcType, CONNECTION_REQUEST_LEN,
    CONNECTION_RESPONSE_LEN, MSG_AUTHENTICATE,
};
use totem_wire::ipc::socket::{
    abstract_name, DgramEnd, SocketNames, ABSTRACT_NAME_MAX, CONTROL_FILE_LEN, FLOW_CONTROL_OPEN,
    FLOW_CONTROL_STOP_ALL, FLOW_CONTROL_STOP_MCAST,
};
use totem_wire::ipc::{
    CsError, RequestHeader, ResponseHeader, IPC_MAX_MSG_LEN, REQUEST_HEADER_LEN,
    RESPONSE_HEADER_LEN,
};

use channel::{ChannelError, QueueLimits};
use conn::{Active, Channels, Conn, ConnFiles, OutChannel, Phase};
use shm::ShmChannels;
pub use sys::poll;

/// libqb's `FORCESOCKETSFILE` (Debian: `--sysconfdir=/etc`): when it exists, listening
/// sockets are files in the socket directory instead of abstract names (ipc.md §1.1).
pub const FORCE_FILESYSTEM_SOCKETS_FILE: &str = "/etc/libqb/force-filesystem-sockets";
/// libqb's `SOCKETDIR` default, `$localstatedir/run` (Debian's value was not found in the
/// binary; ipc.md §1.1 \[UNC\]).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run";
/// Where libqb puts connection directories on Linux (`handle_new_connection`).
pub const DEFAULT_SHM_DIR: &str = "/dev/shm";
/// `QB_IPC_MSG_DISCONNECT`: a request with this id means "client wants to disconnect"
/// (ipcs.c `_process_request_`).
const MSG_DISCONNECT: i32 = -3;
/// How often a shm connection's queued responses and events are offered to their rings
/// again while the client has not made room (a ring has nothing to poll).
const SHM_RETRY_INTERVAL: Duration = Duration::from_millis(2);

/// The IPC type the server answers (only the server chooses, ipc.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerIpcType {
    /// `QB_IPC_SOCKET`: datagram sockets per connection.
    Socket,
    /// `QB_IPC_SHM`: shared-memory rings per connection (corosync's default, `native`).
    Shm,
}

impl ServerIpcType {
    /// corosync.conf's `system.qb_ipc_type` (`cs_get_ipc_type`): `native` and `shm` are
    /// shared memory (libqb builds native as shm on Linux), `socket` is sockets.
    pub fn from_config(value: Option<&str>) -> Option<ServerIpcType> {
        match value {
            None | Some("native") | Some("shm") => Some(ServerIpcType::Shm),
            Some("socket") => Some(ServerIpcType::Socket),
            Some(_) => None,
        }
    }

    /// As corosync names it in "Service engine loaded: … (IPC type …)" style logs.
    pub fn name(self) -> &'static str {
        match self {
            ServerIpcType::Socket => "socket",
            ServerIpcType::Shm => "shm",
        }
    }
}

/// The largest [`IpcConfig::max_msg_size`] accepted.
pub const MAX_MSG_SIZE_LIMIT: usize = 16 << 20;

/// A client's credentials (`SCM_CREDENTIALS`: the real ids; `SO_PEERCRED`: the effective
/// ones).
pub type Creds = totem_unix::Ucred;

/// A client connection. Ids are never reused during the life of an [`IpcServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The number behind the id (for logs).
    pub fn get(self) -> u64 {
        self.0
    }

    /// An id no server made (for services' unit tests).
    #[cfg(test)]
    pub(crate) fn for_test(n: u64) -> ConnId {
        ConnId(n)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// The flow-control word of a connection's control file (ipc.md §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowControl {
    /// 0: the client may send everything.
    Open,
    /// 1: the client sends nothing (its calls answer CS_ERR_TRY_AGAIN).
    StopAll,
    /// 2: libcpg's mcasts answer CS_ERR_TRY_AGAIN; other calls go on.
    StopMcast,
}

impl FlowControl {
    /// The value stored in the control file.
    pub fn raw(self) -> i32 {
        match self {
            FlowControl::Open => FLOW_CONTROL_OPEN,
            FlowControl::StopAll => FLOW_CONTROL_STOP_ALL,
            FlowControl::StopMcast => FLOW_CONTROL_STOP_MCAST,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed its setup stream (its normal way out, `qb_ipcc_disconnect`).
    Hangup,
    /// The client sent `QB_IPC_MSG_DISCONNECT` (-3).
    ClientRequest,
    /// The client broke the framing rules (ipc.md §5.3); the text says how.
    BadRequest(String),
    /// The client did not read its responses or events and the bounded queue overflowed.
    QueueOverflow,
    /// The client's datagram sockets could not be reached (gone, or never bound).
    PeerUnreachable(String),
    /// The caller asked for it ([`IpcServer::disconnect`]).
    Server,
    /// A socket reported an error.
    SocketError(String),
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hangup => f.write_str("client hung up"),
            Self::ClientRequest => f.write_str("client asked to disconnect"),
            Self::BadRequest(why) => write!(f, "bad request: {why}"),
            Self::QueueOverflow => f.write_str("output queue overflow"),
            Self::PeerUnreachable(why) => write!(f, "client unreachable: {why}"),
            Self::Server => f.write_str("disconnected by the server"),
            Self::SocketError(why) => write!(f, "socket error: {why}"),
        }
    }
}

/// What [`IpcServer::process_ready`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcEvent {
    /// A client completed the handshake (the 12328-byte response was sent).
    Connected {
        /// The new connection.
        conn: ConnId,
        /// The service it connected to (the listening socket's name, e.g. `cpg`).
        service: String,
        /// Its credentials.
        creds: Creds,
    },
    /// One request: a whole datagram, 16-byte request header first, with `size` equal to
    /// its length and within the connection's maximum. Nothing past the header is checked.
    /// The last requests of a client that hung up come before its `Disconnected`, in the
    /// same batch; [`IpcServer::respond`] to them answers `NotConnected`.
    Request {
        /// From which connection.
        conn: ConnId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A client was answered with a refusal at setup (then its stream was closed); no
    /// connection was made. For the caller's log: corosync logs "Denied connection
    /// attempt from uid:gid" (`EACCES`) and "Denied connection, corosync is not ready"
    /// (`EAGAIN`) in `cs_ipcs_connection_accept`.
    Refused {
        /// The service it asked for.
        service: String,
        /// Its credentials.
        creds: Creds,
        /// Why, as the positive errno it was sent as `-errno`.
        errno: i32,
    },
    /// A connection reported [`IpcEvent::Connected`] ended; reported exactly once per such
    /// connection, also after [`IpcServer::disconnect`]. Its resources are already freed.
    Disconnected {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why a call on a connection failed.
#[derive(Debug)]
pub enum IpcError {
    /// No such connection (never was, or already disconnected).
    NotConnected(ConnId),
    /// The message is not a well-formed response/event for this connection (a caller bug;
    /// nothing was sent).
    InvalidMessage(String),
    /// More responses than requests: libqb clients take the next response datagram as the
    /// answer to their current call, so an extra one would shift every later answer.
    NoRequestPending(ConnId),
    /// Sending ended the connection (overflow, client gone); a
    /// [`IpcEvent::Disconnected`] follows from the next [`IpcServer::process_ready`].
    Disconnected(ConnId),
    /// A system call failed.
    Io(io::Error),
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected(c) => write!(f, "{c}: not connected"),
            Self::InvalidMessage(why) => write!(f, "invalid message: {why}"),
            Self::NoRequestPending(c) => write!(f, "{c}: no request waits for a response"),
            Self::Disconnected(c) => write!(f, "{c}: disconnected while sending"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IpcError {}

/// What the server does; see each field.
#[derive(Debug, Clone)]
pub struct IpcConfig {
    /// Services to listen on, one socket each (`cpg`; corosync also has `cmap`, `cfg`,
    /// `quorum`, `votequorum`). At most 106 bytes, no NUL, no `/`.
    pub services: Vec<String>,
    /// Accept uid 0 and gid 0 without an allow-list entry (corosync
    /// `cs_ipcs_connection_accept`, ipc.md §3.2 step 4). Tests turn it off to see a refusal.
    pub trust_root: bool,
    /// Further uids allowed (corosync `uidgid { uid: }`).
    pub allowed_uids: Vec<u32>,
    /// Further primary gids allowed (corosync `uidgid { gid: }`).
    pub allowed_gids: Vec<u32>,
    /// The daemon's icmap: `uidgid.uid.<uid>` / `uidgid.gid.<gid>` set at run time (and
    /// `uidgid.config.*`) allow a connection as `cs_ipcs_connection_accept` checks them.
    pub icmap: Option<crate::cmap::SharedIcmap>,
    /// The smallest maximum message size answered: libqb takes
    /// `max(client's, service's)` (`handle_new_connection`), and libcpg needs 1 MiB
    /// (ipc.md §5.2 step 4).
    pub min_msg_size: usize,
    /// The largest maximum message size answered, whatever the client asks; it sizes the
    /// server's one receive buffer.
    pub max_msg_size: usize,
    /// Connections (in setup or established) beyond which new ones are closed at once.
    pub max_connections: usize,
    /// Messages that may wait per connection and channel for a client that does not read.
    pub queue_max_msgs: usize,
    /// Bytes that may wait per connection (responses and events together).
    pub queue_max_bytes: usize,
    /// Requests read from one connection per [`IpcServer::process_ready`], for fairness
    /// (libqb reads at most 5 per wakeup at corosync's priority, ipc.md §2.5).
    pub requests_per_wakeup: usize,
    /// Request bytes handed out per [`IpcServer::process_ready`] over all connections;
    /// the rest waits in the kernel (the descriptors stay readable, so the next poll
    /// returns at once). Bounds what one call can allocate.
    pub wakeup_max_bytes: usize,
    /// How long a client may take to send its 24 bytes and take the response (libqb has
    /// no limit; without one a silent client would hold a descriptor for ever).
    pub setup_timeout: Duration,
    /// Pause between attempts to connect to a client's datagram socket that is not bound
    /// yet (libqb `_finish_connecting`: 100 ms) ...
    pub connect_retry_interval: Duration,
    /// ... and how many attempts (libqb: 10).
    pub connect_retries: u32,
    /// The transport answered to every client (corosync's `system.qb_ipc_type`).
    pub ipc_type: ServerIpcType,
    /// Where connection directories go (`/dev/shm`).
    pub shm_dir: PathBuf,
    /// Where listening sockets go in filesystem mode (`SOCKETDIR`).
    pub socket_dir: PathBuf,
    /// Filesystem sockets (`Some(true)`), abstract (`Some(false)`), or as libqb decides:
    /// filesystem iff [`FORCE_FILESYSTEM_SOCKETS_FILE`] exists (`None`).
    pub filesystem_sockets: Option<bool>,
}

impl IpcConfig {
    /// Defaults for `services`: root trusted, no allow-list, 1 MiB messages, 1024
    /// connections, 4096 messages / 16 MiB of backlog per client.
    pub fn new<S: Into<String>>(services: impl IntoIterator<Item = S>) -> IpcConfig {
        IpcConfig {
            services: services.into_iter().map(Into::into).collect(),
            trust_root: true,
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            icmap: None,
            min_msg_size: IPC_MAX_MSG_LEN,
            max_msg_size: IPC_MAX_MSG_LEN,
            max_connections: 1024,
            queue_max_msgs: 4096,
            queue_max_bytes: 16 << 20,
            requests_per_wakeup: 16,
            wakeup_max_bytes: 16 << 20,
            setup_timeout: Duration::from_secs(10),
            connect_retry_interval: Duration::from_millis(100),
            connect_retries: 10,
            ipc_type: ServerIpcType::Socket,
            shm_dir: PathBuf::from(DEFAULT_SHM_DIR),
            socket_dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            filesystem_sockets: None,
        }
    }

    fn validate(&self) -> io::Result<()> {
        let bad = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        if self.services.is_empty() {
            return bad("no service to listen on".into());
        }
        for s in &self.services {
            if s.is_empty() || s.len() > ABSTRACT_NAME_MAX || s.contains(['\0', '/']) {
                return bad(format!("invalid service name {s:?}"));
            }
        }
        // Every response and event needs its header; CPG's largest fixed reply is 9248.
        // The upper bound keeps the receive buffer sane (libcpg asks for 1 MiB).
        if self.min_msg_size > self.max_msg_size
            || self.max_msg_size < CONNECTION_RESPONSE_LEN
            || self.max_msg_size > MAX_MSG_SIZE_LIMIT
        {
            return bad(format!(
                "message size limits {}..{} out of range",
                self.min_msg_size, self.max_msg_size
            ));
        }
        if self.queue_max_msgs == 0
            || self.requests_per_wakeup == 0
            || self.max_connections == 0
            || self.wakeup_max_bytes < self.max_msg_size
        {
            return bad("queue, wakeup and connection limits must be positive".into());
        }
        Ok(())
    }

    fn allows(&self, creds: Creds) -> bool {
        (self.trust_root && (creds.uid == 0 || creds.gid == 0))
            || self.allowed_uids.contains(&creds.uid)
            || self.allowed_gids.contains(&creds.gid)
            || self
                .icmap
                .as_ref()
                .is_some_and(|m| crate::cmap::lock(m).uidgid_allows(creds.uid, creds.gid))
    }
}

/// Counters for a stats line ([`fmt::Display`] prints one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpcStats {
    /// Established connections now.
    pub connections: usize,
    /// Connections still in the handshake now.
    pub in_setup: usize,
    /// Messages waiting in output queues now.
    pub queued: usize,
    /// Handshakes completed.
    pub accepted: u64,
    /// Handshakes answered with a refusal (accept policy or setup failure).
    pub refused: u64,
    /// Streams closed during the handshake without a response (bad request, no
    /// credentials, timeout, hangup, too many connections).
    pub setup_failed: u64,
    /// Established connections that ended.
    pub disconnected: u64,
    /// Requests handed to the caller.
    pub requests: u64,
    /// Responses sent or queued.
    pub responses: u64,
    /// Events sent or queued.
    pub events: u64,
    /// Connections dropped for a full output queue.
    pub overflows: u64,
    /// Connections dropped for a malformed request.
    pub bad_requests: u64,
}

impl fmt::Display for IpcStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ipc: {} connected, {} in setup, {} queued; accepted {}, refused {}, setup failed {}, \
             disconnected {} (overflow {}, bad request {}); requests {}, responses {}, events {}",
            self.connections,
            self.in_setup,
            self.queued,
            self.accepted,
            self.refused,
            self.setup_failed,
            self.disconnected,
            self.overflows,
            self.bad_requests,
            self.requests,
            self.responses,
            self.events
        )
    }
}

/// What is known about an established connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Service name.
    pub service: String,
    /// Credentials.
    pub creds: Creds,
    /// The negotiated maximum message size.
    pub max_msg_size: usize,
    /// The connection directory (`/dev/shm/qb-…`), removed at disconnect.
    pub dir: PathBuf,
    /// Messages waiting (responses and events).
    pub queued_msgs: usize,
    /// Bytes waiting.
    pub queued_bytes: usize,
    /// Requests received.
    pub requests: u64,
    /// Responses given.
    pub responses: u64,
    /// The current flow-control state.
    pub flow_control: FlowControl,
    /// Requests are not being read ([`IpcServer::pause_requests`]).
    pub requests_paused: bool,
}

struct Listener {
    service: String,
    sock: UnixListener,
    /// Filesystem mode: the socket file, unlinked on drop (`qb_ipcs_us_withdraw`).
    path: Option<PathBuf>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Which of our descriptors a pollfd is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    // Datagram work before stream hangups: a client that sends and exits at once still
    // has its last requests read (they stay queued after its sockets close).
    Request,
    Event,
    Stream,
}

/// The IPC server (either type). See the module documentation.
pub struct IpcServer {
    cfg: IpcConfig,
    listeners: Vec<Listener>,
    conns: BTreeMap<ConnId, Conn>,
    next_id: u64,
    /// Disconnections that happened outside `process_ready`, reported by the next call.
    pending: VecDeque<IpcEvent>,
    /// One receive buffer for all connections: `max_msg_size + 1` bytes, so that a
    /// datagram over the limit shows as one byte too many instead of being cut silently.
    recv_buf: Vec<u8>,
    stats: IpcStats,
    our_pid: u32,
    /// What is left of `wakeup_max_bytes` in the current `process_ready`.
    budget: usize,
    /// New connections are accepted ([`IpcServer::set_allow_connections`]).
    allow_connections: bool,
    /// `--record-ipc`: every message, as the preload recorder would have written it.
    recorder: Option<record::Recorder>,
    /// When the server was made: the deadline of work that is due at once.
    /// The time the caller last gave: the server reads no clock.
    now: Instant,
    /// When shm connections' queued responses and events are next offered to their rings
    /// (a ring has nothing to poll for space); `None` while nothing waits.
    shm_retry_at: Option<Instant>,
}

fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(abstract_name(name))
}

fn filesystem_mode(cfg: &IpcConfig) -> bool {
    cfg.filesystem_sockets
        .unwrap_or_else(|| Path::new(FORCE_FILESYSTEM_SOCKETS_FILE).exists())
}

/// Six characters for mkdtemp's `XXXXXX`, from the kernel's random source: the datagram
/// names derived from the directory are the only thing keeping strangers from a
/// connection's sockets (ipc.md §1.4).
fn random_suffix() -> io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect())
}

impl IpcServer {
    /// Listens on every service of `config` (ipc.md §5.1). Fails if a name is taken: the
    /// abstract names are per network namespace, so a running corosync there holds `cpg`.
    pub fn new(config: IpcConfig, now: Instant) -> io::Result<IpcServer> {
        config.validate()?;
        let fs_mode = filesystem_mode(&config);
        let mut listeners = Vec::new();
        for service in &config.services {
            let (sock, path) = if fs_mode {
                // qb_ipcs_us_publish: the directory must exist; unlink, bind, chmod 0777
                // ("the IPC layer handles security").
                if !config.socket_dir.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "socket directory {} not present",
                            config.socket_dir.display()
                        ),
                    ));
                }
                let path = config.socket_dir.join(service);
                let _ = std::fs::remove_file(&path);
                let sock = UnixListener::bind(&path)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
                (sock, Some(path))
            } else {
                let sock =
                    UnixListener::bind_addr(&abstract_addr(service.as_bytes())?).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot listen on abstract socket \\0{service}: {e} (is corosync \
                                 running in this network namespace?)"
                            ),
                        )
                    })?;
                (sock, None)
            };
            sock.set_nonblocking(true)?;
            // On the listener, so that accepted sockets have it from the first byte.
            sys::set_passcred(sock.as_fd(), true)?;
            listeners.push(Listener {
                service: service.clone(),
                sock,
                path,
            });
        }
        Ok(IpcServer {
            recv_buf: vec![0; config.max_msg_size + 1],
            cfg: config,
            listeners,
            conns: BTreeMap::new(),
            next_id: 1,
            pending: VecDeque::new(),
            stats: IpcStats::default(),
            our_pid: std::process::id(),
            budget: 0,
            allow_connections: true,
            recorder: None,
            now,
            shm_retry_at: None,
        })
    }

    /// The time the caller gave last (to [`Self::new`] or [`Self::process_ready`]).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The configuration in use.
    pub fn config(&self) -> &IpcConfig {
        &self.cfg
    }

    /// Appends a pollfd for every descriptor the server waits on (`revents` zeroed).
    /// Rebuild the list before every poll: it changes as clients come and go.
    pub fn pollfds(&self, out: &mut Vec<libc::pollfd>) {
        let mut add = |fd: RawFd, events: i16| {
            out.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
        };
        for l in &self.listeners {
            add(l.sock.as_raw_fd(), libc::POLLIN);
        }
        for conn in self.conns.values() {
            let stream = conn.stream.as_raw_fd();
            match &conn.phase {
                Phase::Auth { .. } => add(stream, libc::POLLIN),
                Phase::Reply { .. } => add(stream, libc::POLLOUT),
                Phase::Active(a) => match &a.channels {
                    Channels::Socket { request, event } => {
                        add(stream, libc::POLLIN);
                        // A paused connection's requests wait in the kernel (ipc.md §5.3:
                        // "stop reading the request socket"); its responses still go out.
                        let mut ev = if a.paused { 0 } else { libc::POLLIN };
                        if request.wants_writable() {
                            ev |= libc::POLLOUT;
                        }
                        if ev != 0 {
                            add(request.sock.as_raw_fd(), ev);
                        }
                        if event.wants_writable() {
                            add(event.sock.as_raw_fd(), libc::POLLOUT);
                        }
                    }
                    // The stream carries the request wakeups: a paused connection leaves
                    // them unread (its requests wait in the ring) and still sees a
                    // hangup, which poll reports whatever the events asked.
                    Channels::Shm(shm) => {
                        let mut ev = if a.paused { 0 } else { libc::POLLIN };
                        if shm.wants_writable() {
                            ev |= libc::POLLOUT;
                        }
                        add(stream, ev);
                    }
                },
            }
        }
    }

    /// The longest the caller may sleep in poll before calling [`Self::process_ready`]
    /// again (for handshake timeouts, connect retries and disconnections to report);
    /// `None` when only descriptors matter. See [`Self::next_deadline`].
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|t| Duration::from_micros((t - now).total_micros()))
    }

    /// When [`Self::process_ready`] must run again even if no descriptor is ready: an
    /// absolute time, so that asking twice gives the same answer (a loop that checks
    /// "is it due yet?" after computing its sleep must see it due). Work that is due now
    /// has a deadline in the past.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return Some(self.now);
        }
        let mut earliest = self.shm_retry_at;
        for c in self.conns.values() {
            if let Phase::Active(a) = &c.phase {
                match &a.channels {
                    // Requests beyond one wakeup's share have no byte left to wake us.
                    Channels::Shm(shm) if !a.paused && shm.requests_waiting() => {
                        return Some(self.now);
                    }
                    Channels::Shm(_) => {}
                    Channels::Socket { request, event } => {
                        for r in [request.retry, event.retry].into_iter().flatten() {
                            earliest = Some(earliest.map_or(r.at, |e| e.min(r.at)));
                        }
                    }
                }
            }
            if let Some(d) = c.deadline {
                earliest = Some(earliest.map_or(d, |e| e.min(d)));
            }
        }
        earliest
    }

    /// Handles what poll reported in `ready` (entries for other descriptors are ignored)
    /// and the timers, appending what happened to `out`. Call it after every poll, also
    /// when poll timed out.
    pub fn process_ready(&mut self, now: Instant, ready: &[libc::pollfd], out: &mut Vec<IpcEvent>) {
        // Time never runs backwards here, whatever the caller's clock did.
        self.now = self.now.max(now);
        out.extend(self.pending.drain(..));
        self.budget = self.cfg.wakeup_max_bytes;

        // Resolve every descriptor before acting on any: handling one entry can close a
        // descriptor and accepting can reuse its number, so a later entry of the same
        // poll must not be taken for the new socket. ConnIds are never reused.
        let mut roles: HashMap<RawFd, (ConnId, Role)> = HashMap::new();
        for (&id, conn) in &self.conns {
            roles.insert(conn.stream.as_raw_fd(), (id, Role::Stream));
            if let Phase::Active(a) = &conn.phase {
                if let Channels::Socket { request, event } = &a.channels {
                    roles.insert(request.sock.as_raw_fd(), (id, Role::Request));
                    roles.insert(event.sock.as_raw_fd(), (id, Role::Event));
                }
            }
        }
        let listener_fds: Vec<RawFd> = self.listeners.iter().map(|l| l.sock.as_raw_fd()).collect();
        let mut work = Vec::new();
        let mut accept_on = Vec::new();
        for p in ready.iter().filter(|p| p.revents != 0) {
            if let Some(&(id, role)) = roles.get(&p.fd) {
                work.push((role, id, p.revents));
            } else if let Some(i) = listener_fds.iter().position(|&fd| fd == p.fd) {
                accept_on.push(i);
            }
        }
        work.sort_by_key(|&(role, id, _)| (role, id));
        for (role, id, revents) in work {
            match role {
                Role::Request => self.on_request_socket(id, revents, out),
                Role::Event => self.on_event_socket(id, revents, out),
                Role::Stream => self.on_stream(id, revents, out),
            }
        }
        for i in accept_on {
            self.accept(i);
        }
        self.service_shm(out);
        self.run_timers(out);
        self.refresh_gauges();
    }

    /// Records every message from now on into `out` (totemd `--record-ipc`).
    pub fn record_to(&mut self, out: Box<dyn std::io::Write>) -> io::Result<()> {
        self.recorder = Some(record::Recorder::new(out)?);
        Ok(())
    }

    /// The recording's write error, if one stopped it.
    pub fn recording_error(&self) -> Option<&io::Error> {
        self.recorder.as_ref().and_then(|r| r.error.as_ref())
    }

    fn record(&mut self, id: ConnId, what: record::Recorded, msg: &[u8]) {
        let Some(rec) = self.recorder.as_mut() else {
            return;
        };
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let Phase::Active(a) = &conn.phase else {
            return;
        };
        let service = &self.listeners[conn.service].service;
        rec.record(what, id.get(), a.creds.pid as u32, service, msg);
    }

    /// Sends the response to the oldest request of `conn` that has none yet. `msg` must
    /// be a whole message: 24-byte response header first, `size` equal to its length, at
    /// most the connection's maximum. Queued (in order) while the client's queue is full.
    pub fn respond(&mut self, conn: ConnId, msg: &[u8]) -> Result<(), IpcError> {
        let a = self.active_mut(conn)?;
        check_outgoing(msg, a.max_msg_size)?;
        if a.responses_out >= a.requests_in {
            return Err(IpcError::NoRequestPending(conn));
        }
        a.responses_out += 1;
        self.stats.responses += 1;
        self.record(conn, record::Recorded::Response, msg);
        self.send_on(conn, true, msg)
    }

    /// Sends an event (a callback: 24-byte response header first, `size` equal to its
    /// length, at most the connection's maximum). Events keep their order; while the
    /// client does not read they wait in a bounded queue, and overflowing it disconnects
    /// the client (ipc.md §5.4).
    pub fn send_event(&mut self, conn: ConnId, msg: &[u8]) -> Result<(), IpcError> {
        let a = self.active_mut(conn)?;
        check_outgoing(msg, a.max_msg_size)?;
        self.stats.events += 1;
        self.record(conn, record::Recorded::Event, msg);
        self.send_on(conn, false, msg)
    }

    /// Publishes a flow-control state in the connection's control file; the client reads
    /// it before each send (ipc.md §2.6). The server itself keeps reading requests.
    pub fn set_flow_control(&mut self, conn: ConnId, fc: FlowControl) -> Result<(), IpcError> {
        let a = self.active_mut(conn)?;
        match &a.channels {
            Channels::Socket { .. } => a.files.set_flow_control(fc),
            Channels::Shm(shm) => shm.set_flow_control(fc),
        }
        .map_err(IpcError::Io)?;
        a.flow = fc;
        Ok(())
    }

    /// Stops (`true`) or resumes reading `conn`'s requests. While paused its requests wait
    /// in the kernel's queue, so a libqb client blocks in its next send once that is full:
    /// back-pressure without loss (libqb's own server does the same while a connection is
    /// flow-controlled, `qb_ipcs_dispatch_connection_request`). Responses and events still
    /// go out, and a hangup is still seen: the requests the client left behind are then
    /// read and reported before its `Disconnected`, as for any hangup.
    pub fn pause_requests(&mut self, conn: ConnId, paused: bool) -> Result<(), IpcError> {
        self.active_mut(conn)?.paused = paused;
        Ok(())
    }

    /// Lets `conn` have `extra_bytes` waiting beyond [`IpcConfig::queue_max_bytes`] before
    /// it overflows (0: back to the common bound). For a client that will have to take
    /// more at once than the common bound, such as its own deliveries of a message it is
    /// still sending.
    pub fn set_queue_allowance(
        &mut self,
        conn: ConnId,
        extra_bytes: usize,
    ) -> Result<(), IpcError> {
        self.active_mut(conn)?.allowance = extra_bytes;
        Ok(())
    }

    /// Accepts new connections (`true`, the default) or refuses them with `-EAGAIN`
    /// (libcpg: CS_ERR_TRY_AGAIN), as corosync does until its first "Completed service
    /// synchronization" (`cs_ipc_allow_connections`, checked first in
    /// `cs_ipcs_connection_accept`; ipc.md §3.2 step 1). Established connections go on.
    pub fn set_allow_connections(&mut self, allow: bool) {
        self.allow_connections = allow;
    }

    /// Ends a connection now (descriptors closed, directory removed); its
    /// [`IpcEvent::Disconnected`] comes from the next [`Self::process_ready`].
    pub fn disconnect(&mut self, conn: ConnId) -> Result<(), IpcError> {
        self.active_mut(conn)?;
        self.teardown(conn, DisconnectReason::Server, None);
        self.refresh_gauges();
        Ok(())
    }

    /// Established connections.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Active(_)))
            .map(|(&id, _)| id)
    }

    /// What is known about an established connection.
    pub fn conn_info(&self, conn: ConnId) -> Option<ConnInfo> {
        let c = self.conns.get(&conn)?;
        let Phase::Active(a) = &c.phase else {
            return None;
        };
        Some(ConnInfo {
            service: self.listeners[c.service].service.clone(),
            creds: a.creds,
            max_msg_size: a.max_msg_size,
            dir: a.files.dir.clone(),
            queued_msgs: a.queued_msgs(),
            queued_bytes: a.queued_bytes(),
            requests: a.requests_in,
            responses: a.responses_out,
            flow_control: a.flow,
            requests_paused: a.paused,
        })
    }

    /// Bytes waiting to be sent to an established connection (responses and events), or
    /// `None` when it is not one; cheaper than [`Self::conn_info`].
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.queued(conn).map(|(_, bytes)| bytes)
    }

    /// Messages and bytes waiting for `conn` (responses and events), without the copies
    /// [`IpcServer::conn_info`] makes.
    pub fn queued(&self, conn: ConnId) -> Option<(usize, usize)> {
        match &self.conns.get(&conn)?.phase {
            Phase::Active(a) => Some((a.queued_msgs(), a.queued_bytes())),
            _ => None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> IpcStats {
        self.stats
    }

    fn refresh_gauges(&mut self) {
        let (mut active, mut setup, mut queued) = (0, 0, 0);
        for c in self.conns.values() {
            match &c.phase {
                Phase::Active(a) => {
                    active += 1;
                    queued += a.queued_msgs();
                }
                _ => setup += 1,
            }
        }
        self.stats.connections = active;
        self.stats.in_setup = setup;
        self.stats.queued = queued;
    }

    fn active_mut(&mut self, conn: ConnId) -> Result<&mut Active, IpcError> {
        match self.conns.get_mut(&conn).map(|c| &mut c.phase) {
            Some(Phase::Active(a)) => Ok(a),
            _ => Err(IpcError::NotConnected(conn)),
        }
    }

    fn send_on(&mut self, conn: ConnId, response: bool, msg: &[u8]) -> Result<(), IpcError> {
        let retry = (
            after(self.now, self.cfg.connect_retry_interval),
            self.cfg.connect_retries,
        );
        let Some(Conn {
            stream,
            phase: Phase::Active(a),
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return Err(IpcError::NotConnected(conn));
        };
        let limits = QueueLimits {
            max_msgs: self.cfg.queue_max_msgs,
            max_bytes: self.cfg.queue_max_bytes.saturating_add(a.allowance),
        };
        let result = match &mut a.channels {
            Channels::Socket { request, event } if response => {
                let other = event.queued_bytes;
                request.push(msg, limits, other, retry).map(drop)
            }
            Channels::Socket { request, event } => {
                let other = request.queued_bytes;
                event.push(msg, limits, other, retry).map(drop)
            }
            Channels::Shm(shm) => {
                let pushed = if response {
                    shm.push_response(stream.as_fd(), msg, limits)
                } else {
                    shm.push_event(stream.as_fd(), msg, limits)
                };
                if shm.wants_retry() && self.shm_retry_at.is_none() {
                    self.shm_retry_at = Some(after(self.now, SHM_RETRY_INTERVAL));
                }
                pushed
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                if matches!(e, ChannelError::Overflow) {
                    self.stats.overflows += 1;
                }
                self.teardown(conn, e.into(), None);
                self.refresh_gauges();
                Err(IpcError::Disconnected(conn))
            }
        }
    }

    /// Frees everything of `conn`. An established connection is reported Disconnected,
    /// into `out` when inside `process_ready`, else at the next call.
    fn teardown(&mut self, id: ConnId, reason: DisconnectReason, out: Option<&mut Vec<IpcEvent>>) {
        self.record(id, record::Recorded::Disconnect, &[]);
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        // libqb `qb_ipcc_us_sock_close`: shutdown then close, so the client sees the
        // hangup even if a descriptor were shared.
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        if matches!(conn.phase, Phase::Active(_)) {
            self.stats.disconnected += 1;
            let event = IpcEvent::Disconnected { conn: id, reason };
            match out {
                Some(out) => out.push(event),
                None => self.pending.push_back(event),
            }
        } else {
            self.stats.setup_failed += 1;
        }
        // Dropping `conn` closes its sockets and removes its files (ConnFiles::drop).
    }

    fn accept(&mut self, listener: usize) {
        // Bounded per wakeup so that a connect storm cannot starve other work.
        for _ in 0..64 {
            let stream = match self.listeners[listener].sock.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Anything else (EMFILE, ENOBUFS ...) is transient
                // and the listener stays readable, so the next wakeup tries again.
                Err(_) => return,
            };
            if self.conns.len() >= self.cfg.max_connections {
                self.stats.setup_failed += 1;
                continue; // dropped: the client reads EOF (libcpg: CS_ERR_LIBRARY)
            }
            if stream.set_nonblocking(true).is_err()
                || sys::set_passcred(stream.as_fd(), true).is_err()
            {
                self.stats.setup_failed += 1;
                continue;
            }
            let id = ConnId(self.next_id);
            self.next_id += 1;
            self.conns.insert(
                id,
                Conn {
                    service: listener,
                    stream,
                    phase: Phase::Auth {
                        buf: [0; CONNECTION_REQUEST_LEN],
                        got: 0,
                        creds: None,
                    },
                    deadline: Some(after(self.now, self.cfg.setup_timeout)),
                },
            );
        }
    }

    fn on_stream(&mut self, id: ConnId, revents: i16, out: &mut Vec<IpcEvent>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let hangup = revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0;
        match &mut conn.phase {
            Phase::Auth { buf, got, creds } => {
                // process_auth: NVAL or HUP closes without a response, even with data.
                if hangup {
                    self.teardown(id, DisconnectReason::Hangup, Some(out));
                    return;
                }
                loop {
                    match sys::recv_with_creds(conn.stream.as_fd(), &mut buf[*got..]) {
                        Ok((0, _)) => {
                            self.teardown(id, DisconnectReason::Hangup, Some(out));
                            return;
                        }
                        Ok((n, c)) => {
                            *got += n;
                            if creds.is_none() {
                                *creds = c;
                            }
                            if *got == CONNECTION_REQUEST_LEN {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) => {
                            self.teardown(
                                id,
                                DisconnectReason::SocketError(e.to_string()),
                                Some(out),
                            );
                            return;
                        }
                    }
                }
                self.finish_auth(id, out);
            }
            Phase::Reply { .. } => {
                if hangup && revents & libc::POLLOUT == 0 {
                    self.teardown(id, DisconnectReason::Hangup, Some(out));
                } else {
                    self.write_reply(id, out);
                }
            }
            Phase::Active(a) if matches!(a.channels, Channels::Shm(_)) => {
                let Channels::Shm(shm) = &mut a.channels else {
                    return;
                };
                if revents & libc::POLLOUT != 0 {
                    if let Err(e) = shm.flush(conn.stream.as_fd()) {
                        self.teardown(id, e.into(), Some(out));
                        return;
                    }
                }
                if hangup {
                    self.drain_then_teardown(id, DisconnectReason::Hangup, out);
                    return;
                }
                if revents & libc::POLLIN != 0 {
                    // One byte per request sent (`qb_ipcc_sendv`). They only wake us: the
                    // request ring's semaphore counts the requests, and a byte may come
                    // before or after its request is taken. EOF is the client leaving.
                    if let Err(reason) = drain_stream(&conn.stream) {
                        self.drain_then_teardown(id, reason, out);
                        return;
                    }
                    self.read_requests(id, false, out);
                }
            }
            Phase::Active(_) => {
                // `_sock_connection_liveliness`: hangup, or readable with EOF or an error,
                // ends the connection; stray bytes are read and dropped.
                if hangup {
                    self.drain_then_teardown(id, DisconnectReason::Hangup, out);
                    return;
                }
                if let Err(reason) = drain_stream(&conn.stream) {
                    self.drain_then_teardown(id, reason, out);
                }
            }
        }
    }

    /// A client that sends and then exits at once (mcast, then exit) leaves its last
    /// requests queued on our socket: hand them over before the disconnection.
    fn drain_then_teardown(
        &mut self,
        id: ConnId,
        reason: DisconnectReason,
        out: &mut Vec<IpcEvent>,
    ) {
        self.read_requests(id, true, out);
        self.teardown(id, reason, Some(out));
    }

    /// The 24 bytes are in: check them and the client, set the connection up, and start
    /// writing the response (`process_auth` → `handle_new_connection`).
    fn finish_auth(&mut self, id: ConnId, out: &mut Vec<IpcEvent>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Phase::Auth { buf, creds, .. } = &conn.phase else {
            return;
        };
        let _ = sys::set_passcred(conn.stream.as_fd(), false);
        // process_auth closes without a response unless the id is QB_IPC_MSG_AUTHENTICATE;
        // the codec also wants size == 24, which every libqb client sends.
        let request = match ConnectionRequest::parse(buf) {
            Ok(r) if r.header.id == MSG_AUTHENTICATE => r,
            _ => {
                self.teardown(
                    id,
                    DisconnectReason::BadRequest("connection request".into()),
                    Some(out),
                );
                return;
            }
        };
        // SCM_CREDENTIALS as libqb reads them, else SO_PEERCRED (ipc.md §5.2 step 1);
        // libqb closes without a response when it has none.
        let creds = match creds.map_or_else(|| sys::peer_creds(conn.stream.as_fd()), Ok) {
            Ok(c) => c,
            Err(e) => {
                self.teardown(id, DisconnectReason::SocketError(e.to_string()), Some(out));
                return;
            }
        };
        let service = conn.service;
        let setup_fd = conn.stream.as_raw_fd();
        let chosen = (request.max_msg_size as usize)
            .max(self.cfg.min_msg_size)
            .min(self.cfg.max_msg_size);

        let (error, accepted) = if !self.allow_connections {
            // cs_ipcs_connection_accept: "Denied connection, corosync is not ready".
            (-libc::EAGAIN, None)
        } else if !self.cfg.allows(creds) {
            // corosync: "Denied connection attempt from uid:gid" → -EACCES (ipc.md §3.2).
            (-libc::EACCES, None)
        } else {
            match self.open_connection(service, setup_fd, creds, chosen) {
                Ok(a) => (0, Some(a)),
                Err(e) => (-e.raw_os_error().unwrap_or(libc::EIO), None),
            }
        };
        let response = match &accepted {
            Some((_, kind, [request, response, event])) => ConnectionResponse {
                header: auth_header(0),
                connection_type: *kind,
                max_msg_size: chosen as u32,
                // libqb sends its connection pointer; clients ignore it.
                connection: id.0,
                request: request.clone(),
                response: response.clone(),
                event: event.clone(),
            },
            None => ConnectionResponse {
                header: auth_header(error),
                connection_type: IpcType::Socket,
                max_msg_size: 0,
                connection: 0,
                request: Vec::new(),
                response: Vec::new(),
                event: Vec::new(),
            },
        };
        let mut bytes = Vec::with_capacity(CONNECTION_RESPONSE_LEN);
        response.emit(&mut bytes);
        if accepted.is_none() {
            self.stats.refused += 1;
            out.push(IpcEvent::Refused {
                service: self.listeners[service].service.clone(),
                creds,
                errno: -error,
            });
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::Reply {
                bytes,
                sent: 0,
                accepted: accepted.map(|(a, _, _)| Box::new(a)),
            };
        }
        self.write_reply(id, out);
    }

    /// Creates the directory, control file and datagram sockets of a connection
    /// (`handle_new_connection` + `qb_ipcs_us_connect`; ipc.md §5.2 steps 4–6).
    fn open_connection(
        &self,
        service: usize,
        setup_fd: RawFd,
        creds: Creds,
        max_msg_size: usize,
    ) -> io::Result<(Active, IpcType, [Vec<u8>; 3])> {
        let mut dir = None;
        for _ in 0..100 {
            let path = self.cfg.shm_dir.join(format!(
                "qb-{}-{}-{}-{}",
                self.our_pid,
                creds.pid,
                setup_fd,
                random_suffix()?
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    dir = Some(path);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        let dir = dir.ok_or_else(|| io::Error::from_raw_os_error(libc::EEXIST))?;
        // From here on `files` removes what exists on every error path.
        let mut files = ConnFiles {
            dir,
            control_path: None,
            control: None,
        };
        std::fs::set_permissions(&files.dir, std::fs::Permissions::from_mode(0o770))?;
        // Fails when we are not root; libqb ignores that. Then the client can only use
        // the directory if it is us, so open it up instead (ipc.md §5.2 step 5): 0711 lets
        // the client reach the control file without listing the directory.
        let owned = std::os::unix::fs::chown(&files.dir, Some(creds.uid), Some(creds.gid)).is_ok();
        let client_can_use = owned || creds.uid == sys::geteuid();
        if !client_can_use {
            std::fs::set_permissions(&files.dir, std::fs::Permissions::from_mode(0o711))?;
        }

        let mut description = files.dir.as_os_str().as_bytes().to_vec();
        description.extend_from_slice(b"/qb");
        let service_name = self.listeners[service].service.as_bytes();
        let mode = if client_can_use { 0o600 } else { 0o666 };
        let active = |channels, files| Active {
            creds,
            max_msg_size,
            channels,
            files,
            requests_in: 0,
            responses_out: 0,
            flow: FlowControl::Open,
            paused: false,
            allowance: 0,
        };
        if self.cfg.ipc_type == ServerIpcType::Shm {
            // qb_ipcs_shm_connect: three rings, chowned to the client (ipc.md §1.6).
            let owner = owned.then_some((creds.uid, creds.gid));
            let (shm, names) =
                ShmChannels::create(&description, service_name, max_msg_size, owner, mode)?;
            let channels = Channels::Shm(shm);
            return Ok((active(channels, files), IpcType::Shm, names));
        }
        let names = SocketNames::new(&description, service_name);

        let control_path = PathBuf::from(OsStr::from_bytes(&names.control));
        let control = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&control_path)?;
        files.control_path = Some(control_path.clone());
        control.set_len(CONTROL_FILE_LEN as u64)?;
        if owned {
            let _ = std::os::unix::fs::chown(&control_path, Some(creds.uid), Some(creds.gid));
        }
        std::fs::set_permissions(&control_path, std::fs::Permissions::from_mode(mode))?;
        files.control = Some(control);

        // Both bound before the response goes out; connected when first used (§1.4).
        let request = bind_dgram(&names, DgramEnd::ServerRequest, max_msg_size)?;
        let event = bind_dgram(&names, DgramEnd::ServerEvent, max_msg_size)?;
        let channels = Channels::Socket { request, event };
        // libqb leaves the event name empty for the socket type.
        let SocketNames { control, base } = names;
        Ok((
            active(channels, files),
            IpcType::Socket,
            [control, base, Vec::new()],
        ))
    }

    fn write_reply(&mut self, id: ConnId, out: &mut Vec<IpcEvent>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Phase::Reply { bytes, sent, .. } = &mut conn.phase else {
            return;
        };
        while *sent < bytes.len() {
            match sys::send_nosignal(conn.stream.as_fd(), &bytes[*sent..]) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.teardown(id, DisconnectReason::SocketError(e.to_string()), Some(out));
                    return;
                }
            }
        }
        let Phase::Reply { accepted, .. } = std::mem::replace(
            &mut conn.phase,
            Phase::Auth {
                buf: [0; CONNECTION_REQUEST_LEN],
                got: 0,
                creds: None,
            },
        ) else {
            return;
        };
        match accepted {
            Some(active) => {
                let creds = active.creds;
                conn.phase = Phase::Active(active);
                conn.deadline = None;
                self.stats.accepted += 1;
                out.push(IpcEvent::Connected {
                    conn: id,
                    service: self.listeners[conn.service].service.clone(),
                    creds,
                });
            }
            // A refusal is sent, then the stream closed (handle_new_connection); it was
            // counted as `refused`, not as a failed setup.
            None => {
                if let Some(conn) = self.conns.remove(&id) {
                    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }

    fn on_request_socket(&mut self, id: ConnId, revents: i16, out: &mut Vec<IpcEvent>) {
        if revents & libc::POLLOUT != 0 {
            if let Some((request, _)) = self.active_mut(id).ok().and_then(Active::sockets) {
                if let Err(e) = request.flush() {
                    self.teardown(id, e.into(), Some(out));
                    return;
                }
            }
        }
        let paused = self.active_mut(id).is_ok_and(|a| a.paused);
        if revents & libc::POLLIN != 0 && !paused {
            self.read_requests(id, false, out);
        } else if revents & (libc::POLLERR | libc::POLLNVAL | libc::POLLHUP) != 0 {
            // Not expected on our datagram sockets; ending the connection keeps a
            // condition that poll would report for ever from becoming a busy loop.
            self.teardown(
                id,
                DisconnectReason::SocketError("request socket".into()),
                Some(out),
            );
        }
    }

    fn on_event_socket(&mut self, id: ConnId, revents: i16, out: &mut Vec<IpcEvent>) {
        if revents & (libc::POLLERR | libc::POLLNVAL | libc::POLLHUP) != 0 {
            self.teardown(
                id,
                DisconnectReason::SocketError("event socket".into()),
                Some(out),
            );
            return;
        }
        if let Some((_, event)) = self.active_mut(id).ok().and_then(Active::sockets) {
            if let Err(e) = event.flush() {
                self.teardown(id, e.into(), Some(out));
            }
        }
    }

    /// Reads up to `requests_per_wakeup` requests (datagrams, or chunks of the request
    /// ring) and checks their framing (ipc.md §5.3). Stops early when the call's byte
    /// budget is spent, unless `draining` a connection about to end (its requests could
    /// not be read later).
    fn read_requests(&mut self, id: ConnId, draining: bool, out: &mut Vec<IpcEvent>) {
        for _ in 0..self.cfg.requests_per_wakeup {
            if !draining && self.budget < self.cfg.max_msg_size {
                return;
            }
            let Some(Conn {
                phase: Phase::Active(a),
                ..
            }) = self.conns.get_mut(&id)
            else {
                return;
            };
            let first = a.requests_in == 0;
            let bytes = match &mut a.channels {
                Channels::Socket { request, event } => {
                    let n = match request.sock.recv(&mut self.recv_buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) => {
                            let reason = DisconnectReason::SocketError(e.to_string());
                            self.teardown(id, reason, Some(out));
                            return;
                        }
                    };
                    if first {
                        // By its first request the client has bound both of its sockets
                        // (`qb_ipcc_connect` returns only then): connect now rather than
                        // on first use. Failure is not fatal here; first use retries.
                        let _ = request.try_connect();
                        let _ = event.try_connect();
                    }
                    self.recv_buf[..n].to_vec()
                }
                Channels::Shm(shm) => {
                    let mut bytes = Vec::new();
                    match shm.read_request(&mut bytes) {
                        Ok(true) => bytes,
                        Ok(false) => return,
                        Err(e) => {
                            self.stats.bad_requests += 1;
                            let reason = DisconnectReason::BadRequest(format!("request ring: {e}"));
                            self.teardown(id, reason, Some(out));
                            return;
                        }
                    }
                }
            };
            if let Err(reason) = check_request(&bytes, a.max_msg_size) {
                if matches!(reason, DisconnectReason::BadRequest(_)) {
                    self.stats.bad_requests += 1;
                }
                self.teardown(id, reason, Some(out));
                return;
            }
            a.requests_in += 1;
            self.stats.requests += 1;
            self.budget = self.budget.saturating_sub(bytes.len());
            self.record(id, record::Recorded::Request, &bytes);
            out.push(IpcEvent::Request { conn: id, bytes });
        }
    }

    /// The shm connections' work that no descriptor announces: requests left over from
    /// an earlier wakeup, and queued responses and events waiting for ring space.
    fn service_shm(&mut self, out: &mut Vec<IpcEvent>) {
        let mut readable = Vec::new();
        let mut failed = Vec::new();
        let mut waiting = false;
        for (&id, c) in &mut self.conns {
            let Phase::Active(a) = &mut c.phase else {
                continue;
            };
            let Channels::Shm(shm) = &mut a.channels else {
                continue;
            };
            if shm.wants_retry() || shm.wants_writable() {
                if let Err(e) = shm.flush(c.stream.as_fd()) {
                    failed.push((id, DisconnectReason::from(e)));
                    continue;
                }
            }
            waiting |= shm.wants_retry();
            if !a.paused && shm.requests_waiting() {
                readable.push(id);
            }
        }
        // Reading requests queues nothing (responses come from the caller, and
        // `send_on` arms the timer for those), so `waiting` is final here.
        self.shm_retry_at = match (waiting, self.shm_retry_at) {
            (false, _) => None,
            (true, Some(at)) if at > self.now => Some(at),
            (true, _) => Some(after(self.now, SHM_RETRY_INTERVAL)),
        };
        for (id, reason) in failed {
            self.teardown(id, reason, Some(out));
        }
        for id in readable {
            self.read_requests(id, false, out);
        }
    }

    fn run_timers(&mut self, out: &mut Vec<IpcEvent>) {
        let now = self.now;
        let mut expired = Vec::new();
        let mut retry_due = Vec::new();
        for (&id, c) in &self.conns {
            if c.deadline.is_some_and(|d| d <= now) {
                expired.push(id);
            } else if let Phase::Active(a) = &c.phase {
                if let Channels::Socket { request, event } = &a.channels {
                    if [request.retry, event.retry]
                        .iter()
                        .flatten()
                        .any(|r| r.at <= now)
                    {
                        retry_due.push(id);
                    }
                }
            }
        }
        for id in expired {
            self.teardown(
                id,
                DisconnectReason::SocketError("setup timed out".into()),
                Some(out),
            );
        }
        let interval = self.cfg.connect_retry_interval;
        for id in retry_due {
            let Some((request, event)) = self.active_mut(id).ok().and_then(Active::sockets) else {
                continue;
            };
            let mut failure = None;
            for ch in [request, event] {
                let Some(r) = ch.retry else {
                    continue;
                };
                if r.at > now {
                    continue;
                }
                match ch.try_connect() {
                    Ok(true) => {
                        if let Err(e) = ch.flush() {
                            failure = Some(e.into());
                        }
                    }
                    Ok(false) if r.left > 1 => {
                        ch.retry = Some(conn::Retry {
                            at: after(now, interval),
                            left: r.left - 1,
                        });
                    }
                    Ok(false) => {
                        failure = Some(DisconnectReason::PeerUnreachable(
                            "client socket never bound".into(),
                        ))
                    }
                    Err(e) => failure = Some(DisconnectReason::PeerUnreachable(e.to_string())),
                }
            }
            if let Some(reason) = failure {
                self.teardown(id, reason, Some(out));
            }
        }
    }
}

/// `now` plus a configured span, in the engine's time.
fn after(now: Instant, span: Duration) -> Instant {
    now + totem_srp::Duration::from_micros(span.as_micros().min(u128::from(u64::MAX)) as u64)
}

/// Reads and drops what the setup stream holds (the shm type's wakeup bytes, stray bytes
/// of the socket type); `Err` when the client has gone: EOF or an error
/// (`_sock_connection_liveliness`, `qb_ipcs_dispatch_connection_request`).
fn drain_stream(stream: &std::os::unix::net::UnixStream) -> Result<(), DisconnectReason> {
    let mut bytes = [0u8; 256];
    match (&*stream).read(&mut bytes) {
        Ok(0) => Err(DisconnectReason::Hangup),
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(DisconnectReason::SocketError(e.to_string())),
    }
}

/// `{id -1, size 12328, error}`: both the acceptance and the refusal (`send_response`).
fn auth_header(error: i32) -> ResponseHeader {
    ResponseHeader {
        id: MSG_AUTHENTICATE,
        size: CONNECTION_RESPONSE_LEN as i32,
        error: CsError::from(error),
    }
}

/// Binds one of our datagram sockets for `names` and aims it at its client peer.
fn bind_dgram(names: &SocketNames, end: DgramEnd, max_msg_size: usize) -> io::Result<OutChannel> {
    let sock = UnixDatagram::bind_addr(&abstract_addr(&names.dgram(end))?)?;
    sock.set_nonblocking(true)?;
    sys::set_buffer_sizes(sock.as_fd(), max_msg_size, true)?;
    let peer = abstract_addr(&names.dgram(end.peer()))?;
    Ok(OutChannel::new(sock, peer))
}

/// The framing rules every request must meet before the caller sees it (ipc.md §5.3;
/// `qb_ipc_us_recv_at_most` reads `size` bytes and `_process_request_` disconnects on a
/// 0-byte read or `QB_IPC_MSG_DISCONNECT`).
fn check_request(bytes: &[u8], max: usize) -> Result<(), DisconnectReason> {
    let bad = |why: String| Err(DisconnectReason::BadRequest(why));
    if bytes.len() < REQUEST_HEADER_LEN {
        return bad(format!(
            "datagram of {} bytes is shorter than a request header",
            bytes.len()
        ));
    }
    if bytes.len() > max {
        return bad(format!(
            "datagram over the connection's maximum of {max} bytes"
        ));
    }
    let Ok(header) = RequestHeader::peek(bytes) else {
        return bad("unreadable request header".into());
    };
    if header.size < 0 || header.size as usize != bytes.len() {
        return bad(format!(
            "size field {} but the datagram has {} bytes",
            header.size,
            bytes.len()
        ));
    }
    if header.id == MSG_DISCONNECT {
        return Err(DisconnectReason::ClientRequest);
    }
    if header.id < 0 {
        return bad(format!("setup-level id {} after setup", header.id));
    }
    Ok(())
}

/// What the server sends must be a message the client can take: libqb receivers trust the
/// `size` field and do not check it against their buffer (ipc.md §2.1).
fn check_outgoing(msg: &[u8], max: usize) -> Result<(), IpcError> {
    if msg.len() < RESPONSE_HEADER_LEN || msg.len() > max {
        return Err(IpcError::InvalidMessage(format!(
            "{} bytes, not within {RESPONSE_HEADER_LEN}..={max}",
            msg.len()
        )));
    }
    let header = ResponseHeader::peek(msg).map_err(|e| IpcError::InvalidMessage(e.to_string()))?;
    if header.size < 0 || header.size as usize != msg.len() {
        return Err(IpcError::InvalidMessage(format!(
            "size field {} but the message has {} bytes",
            header.size,
            msg.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: i32, size: i32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        if len >= 16 {
            b[..4].copy_from_slice(&id.to_le_bytes());
            b[8..12].copy_from_slice(&size.to_le_bytes());
        }
        b
    }

    #[test]
    fn request_framing_rules() {
        assert_eq!(check_request(&request(4, 16, 16), 100), Ok(()));
        assert_eq!(check_request(&request(2, 45, 45), 100), Ok(()));
        for (bytes, what) in [
            (Vec::new(), "shorter"),
            (vec![0u8; 15], "shorter"),
            (request(4, 17, 16), "size field"),
            (request(4, 15, 16), "size field"),
            (request(4, -16, 16), "size field"),
            (request(4, 101, 101), "maximum"),
            (request(-1, 16, 16), "setup-level"),
        ] {
            match check_request(&bytes, 100) {
                Err(DisconnectReason::BadRequest(why)) => assert!(why.contains(what), "{why}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        assert_eq!(
            check_request(&request(MSG_DISCONNECT, 16, 16), 100),
            Err(DisconnectReason::ClientRequest)
        );
    }

    #[test]
    fn outgoing_messages_are_checked() {
        let mut ok = vec![0u8; 32];
        ok[..4].copy_from_slice(&7i32.to_le_bytes());
        ok[8..12].copy_from_slice(&32i32.to_le_bytes());
        assert!(check_outgoing(&ok, 64).is_ok());
        assert!(matches!(
            check_outgoing(&ok, 31),
            Err(IpcError::InvalidMessage(_))
        ));
        assert!(matches!(
            check_outgoing(&ok[..23], 64),
            Err(IpcError::InvalidMessage(_))
        ));
        let mut bad = ok.clone();
        bad[8..12].copy_from_slice(&24i32.to_le_bytes());
        assert!(matches!(
            check_outgoing(&bad, 64),
            Err(IpcError::InvalidMessage(_))
        ));
    }

    #[test]
    fn accept_policy() {
        let mut cfg = IpcConfig::new(["cpg"]);
        let user = Creds {
            pid: 1,
            uid: 1000,
            gid: 1000,
        };
        assert!(!cfg.allows(user));
        assert!(cfg.allows(Creds { uid: 0, ..user }));
        assert!(cfg.allows(Creds { gid: 0, ..user }));
        cfg.allowed_gids.push(1000);
        assert!(cfg.allows(user));
        cfg.allowed_gids.clear();
        cfg.allowed_uids.push(1000);
        assert!(cfg.allows(user));
        cfg.trust_root = false;
        let stranger = Creds {
            pid: 1,
            uid: 2000,
            gid: 2000,
        };
        assert!(!cfg.allows(Creds { uid: 0, ..stranger }));
        assert!(!cfg.allows(Creds { gid: 0, ..stranger }));
        assert!(cfg.allows(user));
        // Keys set at run time count as the configuration's do (uidgid.uid.N = 1, u8).
        let map = crate::cmap::Icmap::new().shared();
        cfg.icmap = Some(map.clone());
        assert!(!cfg.allows(stranger));
        let key = format!("uidgid.uid.{}", stranger.uid);
        crate::cmap::lock(&map)
            .set(key.as_bytes(), &[2], 2)
            .unwrap();
        assert!(!cfg.allows(stranger), "only the value 1 allows");
        crate::cmap::lock(&map)
            .set(key.as_bytes(), &[1, 0, 0, 0], 6)
            .unwrap();
        assert!(!cfg.allows(stranger), "only a UINT8 allows");
        crate::cmap::lock(&map)
            .set(key.as_bytes(), &[1], 2)
            .unwrap();
        assert!(cfg.allows(stranger));
        crate::cmap::lock(&map).delete(key.as_bytes()).unwrap();
        let key = format!("uidgid.gid.{}", stranger.gid);
        crate::cmap::lock(&map)
            .set(key.as_bytes(), &[1], 2)
            .unwrap();
        assert!(cfg.allows(stranger));
    }

    #[test]
    fn config_validation() {
        assert!(IpcConfig::new(Vec::<String>::new()).validate().is_err());
        assert!(IpcConfig::new(["a/b"]).validate().is_err());
        assert!(IpcConfig::new(["a\0b"]).validate().is_err());
        assert!(IpcConfig::new(["x".repeat(107)]).validate().is_err());
        assert!(IpcConfig::new(["cpg"]).validate().is_ok());
        let mut small = IpcConfig::new(["cpg"]);
        small.max_msg_size = 1000;
        small.min_msg_size = 1000;
        assert!(small.validate().is_err());
    }

    #[test]
    fn flow_control_values_are_libqbs() {
        assert_eq!(FlowControl::Open.raw(), 0);
        assert_eq!(FlowControl::StopAll.raw(), 1);
        assert_eq!(FlowControl::StopMcast.raw(), 2);
    }
}
