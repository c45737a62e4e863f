//! libqb's *shared-memory* IPC type, client side (spec ipc.md §1.2, §1.5, §1.6, §5.7):
//! what `qb_ipcc_connect` and friends do for libcpg when the server answers `QB_IPC_SHM`,
//! the type corosync uses by default (`system { qb_ipc_type: native }`).
//!
//! ```text
//! connect  \0<service>       SOCK_STREAM: the same handshake as the socket type (crate::setup);
//!                            the answer names three ring bases: request, response, event
//! open     <base>-header     each ring: header (+ 4 bytes of user data for the request ring:
//!          <base>-data       the flow-control word), data file mapped twice (totem_unix::shm)
//! request  ring chunk + sem_post, then 1 byte on the setup stream (low byte of the length)
//! response ring chunk + sem_post, no byte: we wait on the response ring's semaphore
//! event    ring chunk + sem_post, then 1 byte (0) on the setup stream: event_fd = setup fd
//! ```
//!
//! The setup stream stays the liveness channel: its hangup or EOF means the server is gone
//! (§1.5). A wait for a response polls it between short slices of `sem_timedwait`.
//! Unlike libqb, what has arrived (a response, an announced event) is delivered before a
//! hangup is reported.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use totem_unix::shm::{ReadError, ShmRing, WriteError};
use totem_wire::ipc::setup::IpcType;
use totem_wire::ipc::shm::{Ring, USER_DATA_LEN};

use crate::setup::{
    check_incoming, check_request, disconnected, handshake_for, remaining, stream_gone, timed_out,
    Handshake, ServerCreds, State, DEFAULT_SETUP_TIMEOUT,
};
use crate::{FlowControl, Transport, TransportError};

/// How long one `sem_timedwait` on the response ring lasts before the setup stream is
/// checked for a hangup (libqb: 2 s slices, `QB_IPC_MAX_WAIT_MS`).
pub const RESPONSE_POLL_SLICE: Duration = Duration::from_millis(100);
/// How long an event announced on the setup stream may take to show in the event ring.
/// A libqb server commits the chunk before it sends the byte, so this is only a guard
/// against a server that announces events it never writes.
const ANNOUNCED_EVENT_WAIT: Duration = Duration::from_secs(1);

/// The connection's three rings, mapped while connected.
struct Rings {
    request: ShmRing,
    response: ShmRing,
    event: ShmRing,
}

impl Rings {
    fn all(&self) -> [&ShmRing; 3] {
        [&self.request, &self.response, &self.event]
    }
}

/// One libqb shm-type connection (see the module documentation).
pub struct ShmTransport {
    service: String,
    /// Nonblocking; liveness, request notifications out, event notifications in.
    setup: UnixStream,
    /// `None` once torn down. Boxed: three rings are large next to the socket type.
    rings: Option<Box<Rings>>,
    /// Request, response, event ring base names from the connection response.
    bases: [Vec<u8>; 3],
    max_msg_size: usize,
    server: Option<ServerCreds>,
    buf: Vec<u8>,
    request_timeout: Option<Duration>,
    state: State,
}

impl ShmTransport {
    /// Connects to `service` (`"cpg"`) as `qb_ipcc_connect(service, max_msg_size)` does,
    /// waiting at most [`DEFAULT_SETUP_TIMEOUT`] for the server's answer, and accepts only
    /// a server that chooses the shm type ([`crate::connect`] follows either choice).
    ///
    /// Errors as [`crate::socket::SocketTransport::connect`]; also
    /// [`TransportError::Protocol`] when the server chose another type or its rings cannot
    /// be opened (a missing file, sizes that do not match the negotiated maximum).
    pub fn connect(service: &str, max_msg_size: usize) -> Result<ShmTransport, TransportError> {
        Self::connect_timeout(service, max_msg_size, Some(DEFAULT_SETUP_TIMEOUT))
    }

    /// [`Self::connect`] with a chosen wait for the setup response (`None`: for ever, like
    /// libqb).
    pub fn connect_timeout(
        service: &str,
        max_msg_size: usize,
        setup_timeout: Option<Duration>,
    ) -> Result<ShmTransport, TransportError> {
        let hs = handshake_for(
            IpcType::Shm,
            "ShmTransport",
            service,
            max_msg_size,
            setup_timeout,
        )?;
        Self::from_handshake(hs)
    }

    /// `qb_ipcc_shm_connect`: opens the three rings the server created (the request ring
    /// with its 4 bytes of user data, the other two without), each taking a reference.
    /// On failure the rings opened so far are released as libqb does, and dropping the
    /// setup stream tells the server.
    pub(crate) fn from_handshake(hs: Handshake) -> Result<ShmTransport, TransportError> {
        let Handshake {
            service,
            setup,
            response,
            max_msg_size: max,
            server,
            fs_mode: _,
        } = hs;
        let bases = [response.request, response.response, response.event];
        let mut opened: Vec<ShmRing> = Vec::with_capacity(3);
        for (ring, base) in Ring::ALL.into_iter().zip(&bases) {
            let user_data = if ring == Ring::Request {
                USER_DATA_LEN
            } else {
                0
            };
            let result = if base.first() == Some(&b'/') {
                ShmRing::open(base, max, user_data)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the base name is not an absolute path",
                ))
            };
            match result {
                Ok(r) => opened.push(r),
                Err(e) => {
                    for r in &opened {
                        release(r);
                    }
                    return Err(TransportError::Protocol(format!(
                        "{ring:?} ring {:?}: {e}",
                        String::from_utf8_lossy(base)
                    )));
                }
            }
        }
        let mut opened = opened.into_iter();
        let (Some(request), Some(response), Some(event)) =
            (opened.next(), opened.next(), opened.next())
        else {
            unreachable!("three rings were opened");
        };
        Ok(ShmTransport {
            service,
            setup,
            rings: Some(Box::new(Rings {
                request,
                response,
                event,
            })),
            bases,
            max_msg_size: max,
            server,
            buf: Vec::with_capacity(max),
            request_timeout: None,
            state: State::Connected,
        })
    }

    /// Gives up on a response after `timeout` (`None`, the default: wait while the
    /// server lives, as libcpg does with `CS_IPC_TIMEOUT_MS = -1`). A timed-out call
    /// returns an `Io` error of kind `TimedOut` and leaves the connection unusable.
    pub fn set_request_timeout(&mut self, timeout: Option<Duration>) {
        self.request_timeout = timeout;
    }

    /// Still connected, as far as we know without waiting? Also false once the server
    /// dropped its reference on the request ring (`ref_count != 2`).
    pub fn is_connected(&mut self) -> bool {
        matches!(self.state, State::Connected)
            && self.check_alive().is_ok()
            && self.check_refs().is_ok()
    }

    /// The service this connection is to.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The base name of one ring (from the connection response): `<base>-header` and
    /// `<base>-data` are its files.
    pub fn ring_base(&self, ring: Ring) -> &[u8] {
        match ring {
            Ring::Request => &self.bases[0],
            Ring::Response => &self.bases[1],
            Ring::Event => &self.bases[2],
        }
    }

    /// The request ring's reference count (2 while both ends hold it), `None` once torn
    /// down.
    pub fn ref_count(&self) -> Option<i32> {
        self.rings.as_ref().map(|r| r.request.ref_count())
    }

    /// The server's credentials from the setup response, if the kernel attached them.
    pub fn server_creds(&self) -> Option<ServerCreds> {
        self.server
    }

    /// Disconnects (what dropping does): `qb_ipcc_shm_disconnect` closes the setup stream
    /// (the server sees the hangup and removes the ring files), then drops our reference
    /// on each ring and unmaps it.
    pub fn disconnect(self) {}

    fn gone(&mut self, why: String) -> TransportError {
        self.state = State::Gone(why.clone());
        disconnected(why)
    }

    fn rings(&mut self) -> Result<&mut Rings, TransportError> {
        match self.rings.as_mut() {
            Some(r) => Ok(r),
            None => Err(disconnected("closed by this client")),
        }
    }

    /// Hangup, error or EOF on the setup stream; pending bytes are event notifications.
    fn check_alive(&mut self) -> Result<(), TransportError> {
        match stream_gone(&self.setup, true)? {
            None => Ok(()),
            Some(why) => Err(self.gone(why)),
        }
    }

    /// `qb_ipc_shm_fc_get`'s first half: the request ring must be held by both ends.
    fn check_refs(&mut self) -> Result<(), TransportError> {
        let refs = self.rings()?.request.ref_count();
        if refs == 2 {
            Ok(())
        } else {
            Err(self.gone(format!(
                "the request ring's reference count is {refs}, not 2: the server left"
            )))
        }
    }

    /// A ring that no longer reads as libqb writes it cannot be trusted again.
    fn broken(&mut self, ring: Ring, e: ReadError) -> TransportError {
        let why = format!("{ring:?} ring: {e}");
        self.state = State::Gone(why.clone());
        TransportError::Protocol(why)
    }

    /// `qb_ipcc_sendv` for the shm type: flow control (`fc_enable_max` 1 for requests,
    /// 2 for MCAST, [`FlowControl`] as the socket type reads it), one chunk in the request
    /// ring, one notification byte on the setup stream.
    fn send_chunk(&mut self, msg: &[u8], mcast: bool) -> Result<(), TransportError> {
        self.state.usable()?;
        check_request(msg, self.max_msg_size)?;
        self.check_alive()?;
        self.check_refs()?;
        let fc = self.flow_control();
        if fc == FlowControl::StopAll || (mcast && fc == FlowControl::StopMcast) {
            return Err(TransportError::WouldBlock);
        }
        let max = self.max_msg_size;
        match self.rings()?.request.write(&[msg]) {
            Ok(()) => {}
            Err(WriteError::Full) => return Err(TransportError::WouldBlock),
            Err(WriteError::TooBig) => {
                return Err(TransportError::TooLarge {
                    len: msg.len(),
                    max,
                })
            }
        }
        // `qb_ipc_us_send(&c->setup, &res, 1)`: the first byte of the int32 length, which
        // libqb retries while the stream is full. The server reads one byte per request.
        let byte = [msg.len() as u8];
        loop {
            match totem_unix::send_nosignal(self.setup.as_fd(), &byte) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.check_alive()?;
                    let mut fds = [libc::pollfd {
                        fd: self.setup.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    totem_unix::poll(&mut fds, Some(RESPONSE_POLL_SLICE))?;
                }
                Err(e) => return Err(self.gone(format!("setup stream: {e}"))),
            }
        }
    }

    /// `qb_ipcc_recv` on the response ring: `sem_timedwait` in short slices, the setup
    /// stream checked between them. `Ok(None)` when `timeout` passed.
    fn recv_response(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let slice =
                remaining(deadline).map_or(RESPONSE_POLL_SLICE, |r| r.min(RESPONSE_POLL_SLICE));
            let mut buf = std::mem::take(&mut self.buf);
            let got = self.rings()?.response.read_timeout(&mut buf, slice);
            let result = match got {
                Ok(true) => Some(check_incoming(&buf, self.max_msg_size)),
                Ok(false) => None,
                Err(e) => Some(Err(self.broken(Ring::Response, e))),
            };
            self.buf = buf;
            if let Some(r) = result {
                return r.map(Some);
            }
            self.check_alive()?;
            if remaining(deadline) == Some(Duration::ZERO) {
                return Ok(None);
            }
        }
    }

    /// Takes the event an available notification byte announced: the chunk from the event
    /// ring, then the byte (`qb_ipcc_event_recv`).
    fn take_event(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut buf = std::mem::take(&mut self.buf);
        let got = self
            .rings()?
            .event
            .read_timeout(&mut buf, ANNOUNCED_EVENT_WAIT);
        let result = match got {
            Ok(true) => check_incoming(&buf, self.max_msg_size),
            Ok(false) => {
                let why = "an event was announced on the setup stream but none came in the \
                           event ring"
                    .to_owned();
                self.state = State::Gone(why.clone());
                Err(TransportError::Protocol(why))
            }
            Err(e) => Err(self.broken(Ring::Event, e)),
        };
        self.buf = buf;
        if !matches!(self.state, State::Gone(_)) {
            // The byte was seen before the chunk was taken, so this does not block.
            let mut byte = [0u8; 1];
            match (&self.setup).read(&mut byte) {
                Ok(1) => {}
                Ok(_) => {
                    self.state = State::Gone("the server closed the connection".into());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => self.state = State::Gone(format!("setup stream: {e}")),
            }
        }
        result
    }

    /// Releases the rings as `qb_ipcc_shm_disconnect` does: the setup stream first (the
    /// server's signal), then each ring's reference. When the server is known to be dead
    /// (hung up, and its process is gone or unknown) nobody else will remove the files:
    /// libqb's `qb_rb_force_close` then removes them here, and so do we, with the
    /// connection directory if that leaves it empty.
    fn teardown(&mut self) {
        let Some(rings) = self.rings.take() else {
            return;
        };
        let _ = self.setup.shutdown(std::net::Shutdown::Both);
        let force = matches!(self.state, State::Gone(_)) && self.server_dead();
        for ring in rings.all() {
            if force {
                ring.set_ref_count(-1);
                ring.unlink();
            } else {
                release(ring);
            }
        }
        if force {
            if let Some(dir) = rings.request.header_path().parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        drop(rings);
    }

    /// libqb's check: `kill(server_pid, 0)` failing with ESRCH, up to four times 10 ms
    /// apart; a server whose pid we do not know counts as dead. Looks in `/proc` rather
    /// than signalling.
    fn server_dead(&self) -> bool {
        let pid = match self.server {
            Some(c) if c.pid > 0 => c.pid,
            _ => return true,
        };
        let proc_dir = format!("/proc/{pid}");
        for attempt in 0..4 {
            if !Path::new(&proc_dir).exists() {
                return true;
            }
            if attempt < 3 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        false
    }
}

/// `qb_rb_close(qb_rb_lastref_and_ret(..))` on a ring we opened: the count goes to 1,
/// then our reference is dropped, leaving 0 (the server's sends and the client's checks
/// both see the connection over). The server removes the files.
fn release(ring: &ShmRing) {
    ring.set_ref_count(0);
}

impl Transport for ShmTransport {
    /// `qb_ipcc_sendv_recv`: refused with [`TransportError::WouldBlock`] while the server's
    /// flow control is [`FlowControl::StopAll`] (libqb's default `fc_enable_max` of 1);
    /// [`TransportError::Disconnected`] once the request ring's reference count is not 2.
    fn request(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.send_chunk(request, false)?;
        match self.recv_response(self.request_timeout)? {
            Some(response) => Ok(response),
            None => {
                self.state = State::OutOfStep;
                Err(timed_out())
            }
        }
    }

    /// `qb_ipcc_sendv` with libcpg's `fc_enable_max` of 2 for MCAST: refused with
    /// [`TransportError::WouldBlock`] under either flow-control state.
    fn send(&mut self, request: &[u8]) -> Result<(), TransportError> {
        self.send_chunk(request, true)
    }

    /// `qb_ipcc_event_recv`: waits for a notification byte on the setup stream, then takes
    /// the event from the event ring and the byte from the stream. Announced events are
    /// delivered even after the server hung up; then the hangup is reported.
    fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, TransportError> {
        self.state.usable()?;
        self.rings()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let mut byte = [0u8; 1];
            match totem_unix::peek(self.setup.as_fd(), &mut byte) {
                Ok(1) => return self.take_event().map(Some),
                Ok(_) => return Err(self.gone("the server closed the connection".into())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.gone(format!("setup stream: {e}"))),
            }
            self.check_alive()?;
            let left = remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            let mut fds = [libc::pollfd {
                fd: self.setup.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            totem_unix::poll(&mut fds, left)?;
        }
    }

    /// The request ring's user-data word; [`FlowControl::StopAll`] once torn down.
    fn flow_control(&self) -> FlowControl {
        self.rings
            .as_ref()
            .and_then(|r| r.request.user_word().map(|w| w.load(Ordering::SeqCst)))
            .map_or(FlowControl::StopAll, FlowControl::from_raw)
    }

    fn max_msg_size(&self) -> usize {
        self.max_msg_size
    }

    /// The setup stream (`qb_ipcc_fd_get` for the shm type): readable while an event is
    /// announced, and on hangup.
    fn event_fd(&self) -> Option<i32> {
        Some(self.setup.as_raw_fd())
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

impl Drop for ShmTransport {
    fn drop(&mut self) {
        self.teardown();
    }
}

impl std::fmt::Debug for ShmTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmTransport")
            .field("service", &self.service)
            .field("request_ring", &String::from_utf8_lossy(&self.bases[0]))
            .field("max_msg_size", &self.max_msg_size)
            .field("state", &self.state)
            .finish()
    }
}
