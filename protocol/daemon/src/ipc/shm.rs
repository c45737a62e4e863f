//! One connection of libqb's *shm* IPC type, server side (ipc.md §1.6, §5.7; libqb 2.0.6
//! `ipc_shm.c` `qb_ipcs_shm_connect`, `ipcs.c` `qb_ipcs_dispatch_connection_request`,
//! `new_event_notification`):
//!
//! ```text
//! D-request-<svc>-{header,data}   requests in; user data = the flow-control word
//! D-response-<svc>-{header,data}  responses out; the client waits on the semaphore
//! D-event-<svc>-{header,data}     events out; each also announced by one 0 byte on the
//!                                 setup stream, which is the client's cpg_fd_get fd
//! setup stream                    in: one byte per request the client sent (wakeups only:
//!                                 the semaphore counts the requests); EOF = hangup
//! ```
//!
//! Everything the client can reach is untrusted: the ring code copies chunks out and
//! checks them, and a file the client truncates flags the ring instead of killing us with
//! SIGBUS (`totem_unix::shm`). Either ends this connection only.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use totem_unix::shm::{ReadError, ShmRing, WriteError};
use totem_wire::ipc::shm::Ring;

use super::channel::{ChannelError, QueueLimits};
use super::{sys, FlowControl};

/// A server → client ring with the messages that did not fit yet.
struct OutRing {
    ring: ShmRing,
    queue: VecDeque<Vec<u8>>,
    /// The bytes in `queue`.
    bytes: usize,
}

impl OutRing {
    /// Writes what waits, in order, while it fits. The number written.
    fn flush(&mut self) -> Result<usize, ChannelError> {
        let mut n = 0;
        while let Some(front) = self.queue.front() {
            match self.ring.write(&[front]) {
                Ok(()) => {
                    self.bytes -= front.len();
                    self.queue.pop_front();
                    n += 1;
                }
                Err(WriteError::Full) => break,
                Err(WriteError::TooBig) => return Err(too_big(front.len())),
            }
        }
        if self.ring.faulted() {
            return Err(truncated(&self.ring));
        }
        Ok(n)
    }
}

fn too_big(len: usize) -> ChannelError {
    ChannelError::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("message of {len} bytes over the ring's maximum"),
    ))
}

fn truncated(ring: &ShmRing) -> ChannelError {
    ChannelError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} was truncated by the client",
            ring.header_path().display()
        ),
    ))
}

/// The three rings of a connection and what waits for them.
pub(super) struct ShmChannels {
    request: ShmRing,
    response: OutRing,
    event: OutRing,
    /// Event notification bytes not yet written to the setup stream because it was full
    /// (libqb's `outstanding_notifiers`).
    notifications_owed: usize,
}

impl ShmChannels {
    /// Creates the rings of connection `description` (`D`, the `/dev/shm/qb-…/qb` prefix)
    /// for `service`, owned by `owner` when given, with `mode`. Returns them and the three
    /// base names for the connection response, in `Ring::ALL` order.
    pub(super) fn create(
        description: &[u8],
        service: &[u8],
        max_msg_size: usize,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> io::Result<(ShmChannels, [Vec<u8>; 3])> {
        let names = Ring::ALL.map(|r| r.base_name(description, service));
        let mut made: Vec<ShmRing> = Vec::with_capacity(3);
        for name in &names {
            match ShmRing::create(name, max_msg_size, owner, mode) {
                Ok(ring) => made.push(ring),
                Err(e) => {
                    made.iter().for_each(ShmRing::unlink);
                    return Err(e);
                }
            }
        }
        let event = made.pop().expect("three rings");
        let response = made.pop().expect("three rings");
        let request = made.pop().expect("three rings");
        let out = |ring| OutRing {
            ring,
            queue: VecDeque::new(),
            bytes: 0,
        };
        Ok((
            ShmChannels {
                request,
                response: out(response),
                event: out(event),
                notifications_owed: 0,
            },
            names,
        ))
    }

    /// Requests committed and not yet taken.
    pub(super) fn requests_waiting(&self) -> bool {
        self.request.committed() > 0
    }

    /// Takes one request into `out`; `Ok(false)` when none is committed.
    pub(super) fn read_request(&mut self, out: &mut Vec<u8>) -> Result<bool, ReadError> {
        self.request.try_read(out)
    }

    /// Publishes `fc` in the request ring's user data (`qb_ipc_shm_fc_set`).
    pub(super) fn set_flow_control(&self, fc: FlowControl) -> io::Result<()> {
        match self.request.user_word() {
            Some(word) => {
                word.store(fc.raw(), Ordering::Release);
                if self.request.faulted() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request ring truncated by the client",
                    ));
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Messages waiting in our queues (not yet in a ring).
    pub(super) fn queued_msgs(&self) -> usize {
        self.response.queue.len() + self.event.queue.len()
    }

    /// Bytes waiting in our queues.
    pub(super) fn queued_bytes(&self) -> usize {
        self.response.bytes + self.event.bytes
    }

    /// The client has not made room for what waits: the caller retries on a timer (a
    /// ring has no descriptor to poll for space).
    pub(super) fn wants_retry(&self) -> bool {
        self.queued_msgs() > 0
    }

    /// Notification bytes wait for room in the setup stream: poll it for POLLOUT.
    pub(super) fn wants_writable(&self) -> bool {
        self.notifications_owed > 0
    }

    fn push(
        &mut self,
        stream: BorrowedFd<'_>,
        msg: &[u8],
        limits: QueueLimits,
        event: bool,
    ) -> Result<(), ChannelError> {
        let queued = self.queued_bytes();
        let out = if event {
            &mut self.event
        } else {
            &mut self.response
        };
        if out.queue.is_empty() {
            match out.ring.write(&[msg]) {
                Ok(()) => {
                    if out.ring.faulted() {
                        return Err(truncated(&out.ring));
                    }
                    if event {
                        self.notifications_owed += 1;
                        self.notify(stream)?;
                    }
                    return Ok(());
                }
                Err(WriteError::Full) => {}
                Err(WriteError::TooBig) => return Err(too_big(msg.len())),
            }
        }
        if out.queue.len() >= limits.max_msgs || queued + msg.len() > limits.max_bytes {
            return Err(ChannelError::Overflow);
        }
        out.queue.push_back(msg.to_vec());
        out.bytes += msg.len();
        Ok(())
    }

    /// Writes a response into the response ring, or queues it behind others.
    pub(super) fn push_response(
        &mut self,
        stream: BorrowedFd<'_>,
        msg: &[u8],
        limits: QueueLimits,
    ) -> Result<(), ChannelError> {
        self.push(stream, msg, limits, false)
    }

    /// Writes an event into the event ring and announces it on the setup stream, or
    /// queues it behind others.
    pub(super) fn push_event(
        &mut self,
        stream: BorrowedFd<'_>,
        msg: &[u8],
        limits: QueueLimits,
    ) -> Result<(), ChannelError> {
        self.push(stream, msg, limits, true)
    }

    /// Moves queued messages into their rings as room appears, and sends owed
    /// notification bytes.
    pub(super) fn flush(&mut self, stream: BorrowedFd<'_>) -> Result<(), ChannelError> {
        self.response.flush()?;
        self.notifications_owed += self.event.flush()?;
        self.notify(stream)
    }

    /// Sends the owed event notification bytes (value 0, as libqb sends
    /// `outstanding_notifiers`' first byte) while the stream takes them.
    fn notify(&mut self, stream: BorrowedFd<'_>) -> Result<(), ChannelError> {
        const ZEROS: [u8; 64] = [0; 64];
        while self.notifications_owed > 0 {
            let n = self.notifications_owed.min(ZEROS.len());
            match sys::send_nosignal(stream, &ZEROS[..n]) {
                Ok(sent) => self.notifications_owed -= sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ChannelError::Io(e)),
            }
        }
        Ok(())
    }
}

impl Drop for ShmChannels {
    fn drop(&mut self) {
        // `qb_rb_lastref_and_ret` + `qb_rb_close`: the count drops below 2, so a client
        // still running gets ENOTCONN from its next send instead of waiting for an answer;
        // then the files go (the client keeps its mappings until it closes).
        for ring in [&self.request, &self.response.ring, &self.event.ring] {
            ring.set_ref_count(0);
            ring.unlink();
        }
    }
}
