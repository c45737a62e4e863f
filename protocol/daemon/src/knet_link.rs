//! The sockets of knet's further links (link 1 and up): libknet binds one UDP socket per
//! link at the link's local address, `ring<N>_addr:port`
//! (`transport_udp.c::udp_transport_link_set_config`, spec §1.2 "knet ports"), and sends
//! that link's packets from it, so that a peer sees them come from our address on that
//! link. Link 0 stays on `udpu`'s token socket, as before: a one-link ring is unchanged.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use crate::sys;
use crate::udpu::{self, Recv, UdpuStats};

/// One link's socket.
#[derive(Debug)]
pub struct LinkSocket {
    link: u8,
    socket: UdpSocket,
    gso: bool,
    /// Counters.
    pub stats: UdpuStats,
}

impl LinkSocket {
    /// Binds link `link`'s socket at `local` (with corosync's bind retries), nonblocking,
    /// with libknet's buffers and the token socket's priority.
    pub fn bind(link: u8, local: SocketAddr, gso: bool) -> io::Result<LinkSocket> {
        let socket = udpu::bind_with_retries(local)?;
        socket.set_nonblocking(true)?;
        udpu::knet_buffers(socket.as_raw_fd());
        let _ = sys::set_socket_int(
            socket.as_raw_fd(),
            libc::SO_PRIORITY,
            udpu::TC_PRIO_INTERACTIVE,
        );
        Ok(LinkSocket {
            link,
            socket,
            gso,
            stats: UdpuStats::default(),
        })
    }

    /// The link it serves.
    pub fn link(&self) -> u8 {
        self.link
    }

    /// Where it is bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `packets` in order to `addr`, batched as the token socket's are.
    pub fn send_batch_to(&mut self, addr: SocketAddr, packets: &[&[u8]]) {
        let fd = self.socket.as_raw_fd();
        udpu::send_in_batches(&mut self.stats, fd, &addr, &mut self.gso, packets);
    }

    /// The next datagram, read into `buf` (one byte longer than the largest accepted);
    /// `None` when there is none left.
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<Recv> {
        let (len, from) = self.socket.recv_from(buf).ok()?;
        if len == buf.len() {
            self.stats.truncated += 1;
            return Some(Recv::Truncated(from));
        }
        self.stats.received += 1;
        Some(Recv::Datagram(from, len))
    }
}

impl AsRawFd for LinkSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
