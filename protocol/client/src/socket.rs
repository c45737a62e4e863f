//! libqb's *socket* IPC type, client side (spec ipc.md §1.2, §1.4, §1.5, §2): what
//! `qb_ipcc_connect` and friends do for libcpg when the server answers `QB_IPC_SOCKET`,
//! over real Unix sockets. Works against totemd and against corosync configured with
//! `system { qb_ipc_type: socket }`. [`SocketTransport::connect`] speaks this type only
//! and refuses a server that chooses shm (corosync's default) with
//! [`TransportError::Protocol`]; [`crate::connect`] follows the server's choice and
//! takes [`crate::shm::ShmTransport`] then.
//!
//! ```text
//! connect  \0<service>      SOCK_STREAM: 24-byte request (+SCM_CREDENTIALS) → 12328-byte response
//! bind     \0B-response     SOCK_DGRAM, connected to \0B-request: requests out, responses in
//! bind     \0B-event        SOCK_DGRAM, connected to \0B-event-tx: events in (event_fd)
//! mmap     control file     24 bytes: the server's flow-control word, sent counters
//! ```
//!
//! The setup stream stays open as the liveness channel: its hangup means the server is
//! gone (§1.5). Every wait polls it together with the datagram socket, as libqb's
//! `qb_ipc_us_ready` does.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use totem_wire::ipc::setup::IpcType;
use totem_wire::ipc::socket::{
    abstract_name, DgramEnd, SocketNames, CONTROL_EVENT_SENT, CONTROL_FILE_LEN,
    CONTROL_REQUEST_FLOW_CONTROL, CONTROL_REQUEST_SENT, CONTROL_RESPONSE_SENT,
};

use crate::setup::{
    check_incoming, check_request, disconnected, handshake_for, remaining, stream_gone, timed_out,
    Handshake, State,
};
pub use crate::setup::{
    ServerCreds, DEFAULT_SETUP_TIMEOUT, FORCE_FILESYSTEM_SOCKETS_FILE, MAX_NEGOTIATED_MSG_SIZE,
    SOCKET_DIR,
};
use crate::{FlowControl, Transport, TransportError};

/// One libqb socket-type connection (see the module documentation).
pub struct SocketTransport {
    service: String,
    setup: UnixStream,
    /// Bound to `B-response`, connected to `B-request`.
    request: UnixDatagram,
    /// Bound to `B-event`, connected to `B-event-tx`.
    event: UnixDatagram,
    control: sys::ControlMap,
    control_path: PathBuf,
    base: Vec<u8>,
    max_msg_size: usize,
    server: Option<ServerCreds>,
    /// `max_msg_size + 1` bytes: a datagram over the limit shows as one byte too many.
    buf: Vec<u8>,
    request_timeout: Option<Duration>,
    state: State,
    /// The connection's files and sockets are released (by `close` or drop).
    torn_down: bool,
}

/// `set_sock_addr`: a name starting with `/`, or any name when filesystem sockets are off,
/// is abstract (so the datagram sockets, named after `/dev/shm/...`, always are); else a
/// file in [`SOCKET_DIR`].
fn dgram_addr(name: &[u8], fs_mode: bool) -> io::Result<SocketAddr> {
    if name.first() == Some(&b'/') || !fs_mode {
        SocketAddr::from_abstract_name(abstract_name(name))
    } else {
        SocketAddr::from_pathname(Path::new(SOCKET_DIR).join(std::ffi::OsStr::from_bytes(name)))
    }
}

impl SocketTransport {
    /// Connects to `service` (`"cpg"`) as `qb_ipcc_connect(service, max_msg_size)` does,
    /// waiting at most [`DEFAULT_SETUP_TIMEOUT`] for the server's answer.
    ///
    /// Errors: [`TransportError::Disconnected`] when nothing listens or the server closes
    /// the stream (libcpg: CS_ERR_LIBRARY), [`TransportError::Refused`] with the server's
    /// errno (`EACCES`, `EAGAIN` ...), [`TransportError::Protocol`] when the server chose
    /// another IPC type or sent nonsense.
    pub fn connect(service: &str, max_msg_size: usize) -> Result<SocketTransport, TransportError> {
        Self::connect_timeout(service, max_msg_size, Some(DEFAULT_SETUP_TIMEOUT))
    }

    /// [`Self::connect`] with a chosen wait for the setup response (`None`: for ever, like
    /// libqb).
    pub fn connect_timeout(
        service: &str,
        max_msg_size: usize,
        setup_timeout: Option<Duration>,
    ) -> Result<SocketTransport, TransportError> {
        let hs = handshake_for(
            IpcType::Socket,
            "SocketTransport",
            service,
            max_msg_size,
            setup_timeout,
        )?;
        Self::from_handshake(hs)
    }

    /// `qb_ipcc_us_connect`: the socket type's part of the connect, after a handshake in
    /// which the server chose [`IpcType::Socket`].
    pub(crate) fn from_handshake(hs: Handshake) -> Result<SocketTransport, TransportError> {
        let Handshake {
            service,
            setup,
            response,
            max_msg_size: max,
            server,
            fs_mode,
        } = hs;
        // The control file must be absolute: relative names come only from libqb before
        // 1.0 (qb_sys_mmap_file_open's "old libqb" branch), which we do not support.
        if response.request.first() != Some(&b'/') || response.response.is_empty() {
            return Err(TransportError::Protocol(format!(
                "connection response names control file {:?} and sockets {:?}",
                String::from_utf8_lossy(&response.request),
                String::from_utf8_lossy(&response.response)
            )));
        }
        let names = SocketNames {
            control: response.request,
            base: response.response,
        };

        // qb_ipcc_us_connect: open the control file O_RDWR, size it to 24 (ftruncate),
        // map it shared.
        let control_path = PathBuf::from(std::ffi::OsStr::from_bytes(&names.control));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&control_path)
            .map_err(|e| {
                TransportError::Io(io::Error::new(
                    e.kind(),
                    format!("control file {}: {e}", control_path.display()),
                ))
            })?;
        file.set_len(CONTROL_FILE_LEN as u64)?;
        let control = sys::ControlMap::map(&file)?;
        drop::<File>(file);

        // qb_ipc_dgram_sock_connect: bind our end, connect to the server's, raise buffers.
        let dgram = |end: DgramEnd| -> io::Result<UnixDatagram> {
            let sock = UnixDatagram::bind_addr(&dgram_addr(&names.dgram(end), fs_mode)?)?;
            sock.connect_addr(&dgram_addr(&names.dgram(end.peer()), fs_mode)?)?;
            sock.set_nonblocking(true)?;
            sys::set_buffer_sizes(sock.as_fd(), max)?;
            Ok(sock)
        };
        let request = dgram(DgramEnd::ClientResponse)?;
        let event = dgram(DgramEnd::ClientEvent)?;
        Ok(SocketTransport {
            service,
            setup,
            request,
            event,
            control,
            control_path,
            base: names.base,
            max_msg_size: max,
            server,
            buf: vec![0; max + 1],
            request_timeout: None,
            state: State::Connected,
            torn_down: false,
        })
    }

    /// Gives up on a response after `timeout` (`None`, the default: wait while the
    /// server lives, as libcpg does with `CS_IPC_TIMEOUT_MS = -1`). A timed-out call
    /// returns an `Io` error of kind `TimedOut` and leaves the connection unusable.
    pub fn set_request_timeout(&mut self, timeout: Option<Duration>) {
        self.request_timeout = timeout;
    }

    /// Still connected, as far as we know without waiting?
    pub fn is_connected(&mut self) -> bool {
        matches!(self.state, State::Connected) && self.check_alive().is_ok()
    }

    /// The service this connection is to.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The base name `B` of the datagram sockets (from the connection response).
    pub fn socket_base(&self) -> &[u8] {
        &self.base
    }

    /// The control file's path.
    pub fn control_path(&self) -> &Path {
        &self.control_path
    }

    /// The server's credentials from the setup response, if the kernel attached them.
    pub fn server_creds(&self) -> Option<ServerCreds> {
        self.server
    }

    /// Disconnects (what dropping does): `qb_ipcc_us_disconnect` removes the control file
    /// and the connection directory and closes event, request and setup sockets; the
    /// server sees the setup stream hang up.
    pub fn disconnect(self) {}

    fn usable(&self) -> Result<(), TransportError> {
        self.state.usable()
    }

    /// The liveness check of `_check_connection_state_with`: hangup, error, EOF on the
    /// setup stream mean the server is gone; so does data on it, which a socket-type
    /// server never sends after the handshake (ipc.md §1.5).
    fn check_alive(&mut self) -> Result<(), TransportError> {
        match stream_gone(&self.setup, false)? {
            None => Ok(()),
            Some(why) => {
                self.state = State::Gone(why.clone());
                Err(disconnected(why))
            }
        }
    }

    fn check_request(&self, msg: &[u8]) -> Result<(), TransportError> {
        check_request(msg, self.max_msg_size)
    }

    /// One request datagram (`qb_ipc_socket_sendv`), counted in the control file.
    fn send_datagram(&mut self, msg: &[u8]) -> Result<(), TransportError> {
        match sys::send_nosignal(self.request.as_fd(), msg) {
            Ok(_) => {
                self.control.add(CONTROL_REQUEST_SENT, 1);
                Ok(())
            }
            // The server's queue is full (net.unix.max_dgram_qlen): CS_ERR_TRY_AGAIN.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(TransportError::WouldBlock),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Err(TransportError::WouldBlock),
            // Above sk_sndbuf - 32 (net.core.wmem_max caps it, ipc.md §2.7).
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(TransportError::TooLarge {
                len: msg.len(),
                max: self.max_msg_size,
            }),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED) | Some(libc::ENOTCONN) | Some(libc::EPIPE)
                ) =>
            {
                let why = format!("request socket: {e}");
                self.state = State::Gone(why.clone());
                Err(disconnected(why))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The next datagram on `which` (response or event socket), waiting up to `timeout`
    /// while the server lives. What has arrived is delivered before a hangup is reported.
    fn recv_on(
        &mut self,
        response: bool,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let sock = if response { &self.request } else { &self.event };
            let fd = sock.as_raw_fd();
            match sock.recv(&mut self.buf) {
                Ok(n) => return check_incoming(&self.buf[..n], self.max_msg_size).map(Some),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            self.check_alive()?;
            let left = remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            let mut fds = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.setup.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            sys::poll(&mut fds, left)?;
        }
    }
}

impl Transport for SocketTransport {
    /// `qb_ipcc_sendv_recv`: refused with [`TransportError::WouldBlock`] while the server's
    /// flow control is [`FlowControl::StopAll`] (libqb's default `fc_enable_max` of 1).
    /// libcpg raises `fc_enable_max` to 2 around PARTIAL_MCAST; a caller sending one should
    /// check [`Transport::flow_control`] for [`FlowControl::StopMcast`] first.
    fn request(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.usable()?;
        self.check_request(request)?;
        self.check_alive()?;
        if self.flow_control() == FlowControl::StopAll {
            return Err(TransportError::WouldBlock);
        }
        self.send_datagram(request)?;
        match self.recv_on(true, self.request_timeout)? {
            Some(response) => {
                self.control.add(CONTROL_RESPONSE_SENT, -1);
                Ok(response)
            }
            None => {
                self.state = State::OutOfStep;
                Err(timed_out())
            }
        }
    }

    /// `qb_ipcc_sendv` with libcpg's `fc_enable_max` of 2 for MCAST: refused with
    /// [`TransportError::WouldBlock`] under either flow-control state.
    fn send(&mut self, request: &[u8]) -> Result<(), TransportError> {
        self.usable()?;
        self.check_request(request)?;
        self.check_alive()?;
        if self.flow_control() != FlowControl::Open {
            return Err(TransportError::WouldBlock);
        }
        self.send_datagram(request)
    }

    fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, TransportError> {
        self.usable()?;
        let event = self.recv_on(false, timeout)?;
        if event.is_some() {
            self.control.add(CONTROL_EVENT_SENT, -1);
        }
        Ok(event)
    }

    fn flow_control(&self) -> FlowControl {
        FlowControl::from_raw(self.control.load(CONTROL_REQUEST_FLOW_CONTROL))
    }

    fn max_msg_size(&self) -> usize {
        self.max_msg_size
    }

    fn event_fd(&self) -> Option<i32> {
        Some(self.event.as_raw_fd())
    }

    /// libcpg's own `/dev/shm` file, which the daemon opens by its path.
    fn zcb_create(
        &mut self,
        map_size: usize,
    ) -> Result<(Vec<u8>, Box<dyn crate::SharedBuffer>), TransportError> {
        crate::zerocopy::create(map_size)
    }

    fn close(&mut self) {
        self.teardown();
        self.state = State::Gone("closed by this client".into());
    }
}

impl Drop for SocketTransport {
    fn drop(&mut self) {
        self.teardown();
    }
}

impl SocketTransport {
    /// Idempotent: `close` and then `drop` tear down once.
    fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        // qb_ipcc_us_disconnect: unlink the control file, rmdir its directory (the
        // server does the same; whoever comes second gets ENOENT), then shutdown+close
        // event, request and setup sockets, in that order. The mapping goes with
        // `control`.
        let _ = std::fs::remove_file(&self.control_path);
        if let Some(dir) = self.control_path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = self.event.shutdown(std::net::Shutdown::Both);
        let _ = self.request.shutdown(std::net::Shutdown::Both);
        let _ = self.setup.shutdown(std::net::Shutdown::Both);
    }
}

/// The system calls std does not wrap: those of libqb's socket type come from `totem-unix`
/// (shared with totemd's server); the shared mapping of the control file is the client's
/// own, and its only `unsafe`.
mod sys {
    #![allow(unsafe_code)]

    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicI32, Ordering};

    use totem_wire::ipc::socket::CONTROL_FILE_LEN;

    pub(super) use totem_unix::{poll, send_nosignal};

    /// `set_sock_size` as libqb's client does it: without the privileged `*FORCE` options.
    pub(super) fn set_buffer_sizes(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
        totem_unix::set_buffer_sizes(fd, size, false)
    }

    /// The control file mapped shared (`qb_ipcc_us_connect`), read and updated with
    /// atomics as libqb does (`qb_atomic_int_*`). As with libqb, the server owns the
    /// file: one that truncates it under us would fault the mapping.
    pub(super) struct ControlMap {
        base: NonNull<i32>,
    }

    // SAFETY: the mapping is plain shared memory owned by this value alone; it is only
    // accessed through atomic operations, so moving the owner to another thread is sound.
    unsafe impl Send for ControlMap {}

    impl ControlMap {
        /// Maps the first [`CONTROL_FILE_LEN`] bytes of `file` (the caller sized it).
        pub(super) fn map(file: &File) -> io::Result<ControlMap> {
            // SAFETY: a fresh shared mapping of a file we hold open; no existing memory
            // is touched. The result is checked before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    CONTROL_FILE_LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            NonNull::new(ptr.cast::<i32>())
                .map(|base| ControlMap { base })
                .ok_or_else(|| io::Error::other("mmap returned null"))
        }

        /// The int32 at byte `offset`, if it lies inside the mapping and is aligned.
        fn cell(&self, offset: usize) -> Option<&AtomicI32> {
            if offset % 4 != 0 || offset + 4 > CONTROL_FILE_LEN {
                return None;
            }
            // SAFETY: the mapping is page-aligned and CONTROL_FILE_LEN bytes long, so
            // base + offset/4 is an aligned i32 inside it, valid while `self` lives (the
            // returned borrow ties to `self`). Other processes change it only atomically.
            Some(unsafe { AtomicI32::from_ptr(self.base.as_ptr().add(offset / 4)) })
        }

        pub(super) fn load(&self, offset: usize) -> i32 {
            self.cell(offset).map_or(0, |c| c.load(Ordering::SeqCst))
        }

        pub(super) fn add(&self, offset: usize, delta: i32) {
            if let Some(c) = self.cell(offset) {
                c.fetch_add(delta, Ordering::SeqCst);
            }
        }
    }

    impl Drop for ControlMap {
        fn drop(&mut self) {
            // SAFETY: `base` came from mmap of CONTROL_FILE_LEN bytes and no borrow of it
            // outlives `self`.
            unsafe {
                libc::munmap(self.base.as_ptr().cast(), CONTROL_FILE_LEN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_map_reads_what_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(CONTROL_FILE_LEN as u64).unwrap();
        let map = sys::ControlMap::map(&file).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(&2i32.to_ne_bytes(), CONTROL_REQUEST_FLOW_CONTROL as u64)
            .unwrap();
        assert_eq!(map.load(CONTROL_REQUEST_FLOW_CONTROL), 2);
        map.add(CONTROL_REQUEST_SENT, 1);
        map.add(CONTROL_REQUEST_SENT, 1);
        let mut word = [0u8; 4];
        file.read_exact_at(&mut word, CONTROL_REQUEST_SENT as u64)
            .unwrap();
        assert_eq!(i32::from_ne_bytes(word), 2);
        // Out of range or unaligned offsets are ignored, never touched.
        assert_eq!(map.load(CONTROL_FILE_LEN), 0);
        assert_eq!(map.load(2), 0);
        map.add(CONTROL_FILE_LEN, 1);
    }

    #[test]
    fn datagram_names_are_abstract_for_absolute_names() {
        let a = dgram_addr(b"/dev/shm/qb-1-2-3-abcdef/qb-cpg-response", true).unwrap();
        assert!(a.as_abstract_name().is_some());
        let b = dgram_addr(b"rel-name", true).unwrap();
        assert_eq!(b.as_pathname(), Some(Path::new("/var/run/rel-name")));
        let c = dgram_addr(b"rel-name", false).unwrap();
        assert_eq!(c.as_abstract_name().map(<[u8]>::len), Some(107));
    }
}
