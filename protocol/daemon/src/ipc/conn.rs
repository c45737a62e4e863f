//! One client connection of the IPC server: what it owns on disk and its outgoing
//! channels, two datagram sockets for the socket type (ipc.md §5.2–§5.4) or three rings
//! for the shm type (`super::shm`).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
use std::path::PathBuf;
use totem_srp::Instant;

use totem_wire::ipc::socket::CONTROL_REQUEST_FLOW_CONTROL;

use super::channel::{ChannelError, QueueLimits};
use super::shm::ShmChannels;
use super::{sys, Creds, FlowControl};

/// The per-connection directory and control file. Dropping it removes both, as
/// `qb_ipcs_us_disconnect` does (unlink the control file, then `remove_tempdir`); either may
/// already be gone, because libqb clients remove them first on a clean disconnect.
pub(super) struct ConnFiles {
    pub(super) dir: PathBuf,
    pub(super) control_path: Option<PathBuf>,
    /// Open read/write. The server writes the flow-control word through it with `pwrite`
    /// instead of mapping it: the file belongs to the client (chown'd, as libqb does), so a
    /// client could truncate it, and a server touching a truncated *mapping* dies of SIGBUS.
    /// `pwrite` just extends the file again. The client maps it (ipc.md §1.4); the page
    /// cache makes our writes visible there.
    pub(super) control: Option<File>,
}

impl ConnFiles {
    pub(super) fn set_flow_control(&self, fc: FlowControl) -> io::Result<()> {
        match &self.control {
            // IPC is host-order (ipc.md §2.1). 0, 1 and 2 differ only in their low byte, so
            // a reader cannot see a torn value even without an atomic store.
            Some(file) => {
                file.write_all_at(&fc.raw().to_ne_bytes(), CONTROL_REQUEST_FLOW_CONTROL as u64)
            }
            None => Ok(()),
        }
    }
}

impl Drop for ConnFiles {
    fn drop(&mut self) {
        self.control = None;
        if let Some(path) = &self.control_path {
            // NotFound is the normal case after a libqb client's own cleanup.
            let _ = std::fs::remove_file(path);
        }
        // rmdir only, like libqb: anything a client left in its directory stays.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A pending lazy connect (`_finish_connecting`: libqb blocks up to 10 × 100 ms; we retry
/// from the main loop instead of blocking it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    pub(super) at: Instant,
    pub(super) left: u32,
}

/// One server → client datagram channel: responses (on the request socket, to
/// `B-response`) or events (`B-event-tx` → `B-event`), each with its FIFO for when the
/// client's receive queue is full (corosync's `outq`, exec/ipc_glue.c `msg_send_or_queue`).
pub(super) struct OutChannel {
    pub(super) sock: UnixDatagram,
    peer: SocketAddr,
    pub(super) connected: bool,
    queue: VecDeque<Vec<u8>>,
    pub(super) queued_bytes: usize,
    pub(super) retry: Option<Retry>,
    /// Messages written to the socket.
    pub(super) sent: u64,
}

/// The peer is not bound (yet): connect fails with ECONNREFUSED for abstract names and
/// ENOENT for paths.
fn not_bound_yet(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED) | Some(libc::ENOENT)
    )
}

/// The receiver's queue is full: `net.unix.max_dgram_qlen` datagrams are waiting, or our
/// send buffer is (ipc.md §2.7). Not an error, the message waits in the FIFO.
fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

impl OutChannel {
    pub(super) fn new(sock: UnixDatagram, peer: SocketAddr) -> OutChannel {
        OutChannel {
            sock,
            peer,
            connected: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            retry: None,
            sent: 0,
        }
    }

    pub(super) fn queued_msgs(&self) -> usize {
        self.queue.len()
    }

    /// Wants POLLOUT: connected with something waiting. An unconnected datagram socket is
    /// always writable, so asking then would spin; the retry timer covers that case.
    pub(super) fn wants_writable(&self) -> bool {
        self.connected && !self.queue.is_empty()
    }

    /// Connects to the client's socket if not yet done. `Ok(false)` when the client has not
    /// bound it yet (it binds right after reading the setup response).
    pub(super) fn try_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        match self.sock.connect_addr(&self.peer) {
            Ok(()) => {
                self.connected = true;
                self.retry = None;
                Ok(true)
            }
            Err(e) if not_bound_yet(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends `msg` now or queues it behind what already waits. `other_bytes` is what the
    /// connection's other channel holds, for the shared byte bound; `retry` is when to try
    /// connecting again, and how often, if the peer is not bound yet.
    pub(super) fn push(
        &mut self,
        msg: &[u8],
        limits: QueueLimits,
        other_bytes: usize,
        retry: (Instant, u32),
    ) -> Result<bool, ChannelError> {
        if !self.try_connect().map_err(ChannelError::Io)? && self.retry.is_none() {
            self.retry = Some(Retry {
                at: retry.0,
                left: retry.1,
            });
        }
        if self.connected && self.queue.is_empty() {
            match sys::send_nosignal(self.sock.as_fd(), msg) {
                Ok(n) if n == msg.len() => {
                    self.sent += 1;
                    return Ok(true);
                }
                // A datagram is all or nothing; a short count would mean a broken kernel.
                Ok(n) => {
                    return Err(ChannelError::Io(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("datagram of {} bytes sent as {n}", msg.len()),
                    )))
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(ChannelError::Io(e)),
            }
        }
        if self.queue.len() >= limits.max_msgs
            || self.queued_bytes + other_bytes + msg.len() > limits.max_bytes
        {
            return Err(ChannelError::Overflow);
        }
        self.queued_bytes += msg.len();
        self.queue.push_back(msg.to_vec());
        Ok(false)
    }

    /// Writes what waits, in order, until the client's queue is full again.
    pub(super) fn flush(&mut self) -> Result<(), ChannelError> {
        if !self.connected {
            return Ok(());
        }
        while let Some(front) = self.queue.front() {
            match sys::send_nosignal(self.sock.as_fd(), front) {
                Ok(_) => {
                    self.queued_bytes -= front.len();
                    self.queue.pop_front();
                    self.sent += 1;
                }
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(ChannelError::Io(e)),
            }
        }
        Ok(())
    }
}

/// How far a connection got.
pub(super) enum Phase {
    /// Reading the 24-byte connection request (`process_auth`).
    Auth {
        buf: [u8; totem_wire::ipc::setup::CONNECTION_REQUEST_LEN],
        got: usize,
        creds: Option<Creds>,
    },
    /// Writing the 12328-byte response; `accepted` is `None` for a refusal, after which the
    /// stream is closed.
    Reply {
        bytes: Vec<u8>,
        sent: usize,
        accepted: Option<Box<Active>>,
    },
    /// Handshake done: requests, responses, events.
    Active(Box<Active>),
}

/// How an accepted connection's messages travel (the type the server answered).
pub(super) enum Channels {
    /// `QB_IPC_SOCKET`.
    Socket {
        /// Bound to `B-request`; receives requests and sends responses to `B-response`.
        request: OutChannel,
        /// Bound to `B-event-tx`; sends events to `B-event`.
        event: OutChannel,
    },
    /// `QB_IPC_SHM`: three rings, wakeups on the setup stream.
    Shm(ShmChannels),
}

/// The resources of an accepted connection.
pub(super) struct Active {
    pub(super) creds: Creds,
    pub(super) max_msg_size: usize,
    /// Declared before `files`: the ring files go before their directory.
    pub(super) channels: Channels,
    pub(super) files: ConnFiles,
    pub(super) requests_in: u64,
    pub(super) responses_out: u64,
    pub(super) flow: FlowControl,
    /// Requests are left unread (`IpcServer::pause_requests`).
    pub(super) paused: bool,
    /// Bytes this connection may have waiting beyond `queue_max_bytes`
    /// (`IpcServer::set_queue_allowance`).
    pub(super) allowance: usize,
}

impl Active {
    pub(super) fn queued_bytes(&self) -> usize {
        match &self.channels {
            Channels::Socket { request, event } => request.queued_bytes + event.queued_bytes,
            Channels::Shm(shm) => shm.queued_bytes(),
        }
    }

    pub(super) fn queued_msgs(&self) -> usize {
        match &self.channels {
            Channels::Socket { request, event } => request.queued_msgs() + event.queued_msgs(),
            Channels::Shm(shm) => shm.queued_msgs(),
        }
    }

    /// The socket type's two channels, if this connection has them.
    pub(super) fn sockets(&mut self) -> Option<(&mut OutChannel, &mut OutChannel)> {
        match &mut self.channels {
            Channels::Socket { request, event } => Some((request, event)),
            Channels::Shm(_) => None,
        }
    }
}

/// One accepted stream and what hangs off it.
pub(super) struct Conn {
    pub(super) service: usize,
    pub(super) stream: UnixStream,
    pub(super) phase: Phase,
    /// Until the handshake is done: when to give up on a client that stalls.
    pub(super) deadline: Option<Instant>,
}
