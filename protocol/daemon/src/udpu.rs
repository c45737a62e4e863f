//! The udpu transport as corosync 3.1.7 runs it (`exec/totemudpu.c`), nonblocking, no
//! threads:
//!
//! * one "token socket" bound to `ring0_addr:mcastport` receives everything and sends the
//!   unicasts (ORF and commit tokens) — `totemudpu_build_sockets_ip`, `ucast_sendmsg`;
//! * one more socket per nodelist member, bound to `ring0_addr:0`, sends that member its copy
//!   of every "multicast": a send to all is one unicast per member, this node included, to
//!   `member:mcastport` — `totemudpu_create_sending_socket`, `mcast_sendmsg`;
//! * with `block_unlisted_ips` a datagram whose source address (not port) is not in the
//!   nodelist is dropped, and one that fills the receive buffer is dropped as truncated —
//!   `net_deliver_fn`.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use totem_srp::{Destination, Transmit};

use crate::sys;

/// `UDP_RECEIVE_FRAME_SIZE_MAX`: `PROCESSOR_COUNT_MAX * (INTERFACE_MAX * 2 *
/// sizeof(struct totem_ip_address)) + 1024` = 384 · (8 · 2 · 22) + 1024.
pub const UDP_RECEIVE_FRAME_SIZE_MAX: usize = 384 * (8 * 2 * 22) + 1024;
/// `MCAST_SOCKET_BUFFER_SIZE`: `TRANSMITS_ALLOWED * UDP_RECEIVE_FRAME_SIZE_MAX`.
pub const MCAST_SOCKET_BUFFER_SIZE: usize = 16 * UDP_RECEIVE_FRAME_SIZE_MAX;
/// `BIND_MAX_RETRIES`.
const BIND_MAX_RETRIES: u32 = 10;
/// `BIND_RETRIES_INTERVAL` (ms, multiplied by the attempt number).
const BIND_RETRIES_INTERVAL_MS: u64 = 100;
/// `TC_PRIO_INTERACTIVE`, set as SO_PRIORITY on the token socket
/// (`totemudpu_traffic_control_set`).
pub(crate) const TC_PRIO_INTERACTIVE: i32 = 6;

/// Counters of the transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpuStats {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// sendto failures (corosync: "sendmsg(...) failed (non-critical)").
    pub send_errors: u64,
    /// The errno of the last failure, for the log.
    pub last_send_errno: Option<i32>,
    /// Unicasts to a nodeid not in the nodelist.
    pub unknown_target: u64,
    /// Datagrams accepted.
    pub received: u64,
    /// Dropped by `block_unlisted_ips` ("Packet rejected from ...").
    pub rejected_unlisted: u64,
    /// Dropped as too big ("Received too big message ...").
    pub truncated: u64,
}

impl UdpuStats {
    fn send_failed(&mut self, e: &io::Error, datagrams: u64) {
        self.send_errors += datagrams;
        self.last_send_errno = e.raw_os_error().or(self.last_send_errno);
    }
}

/// What `recv` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// A datagram for the engine: its first `usize` bytes of the buffer.
    Datagram(SocketAddr, usize),
    /// Dropped by `block_unlisted_ips`.
    Rejected(SocketAddr),
    /// Dropped: it filled the receive buffer.
    Truncated(SocketAddr),
}

#[derive(Debug)]
struct Member {
    nodeid: u32,
    addr: SocketAddr,
    socket: UdpSocket,
    /// The kernel has not refused a GSO send to this member.
    gso: bool,
}

/// The transport of one node.
#[derive(Debug)]
pub struct Udpu {
    token: UdpSocket,
    members: Vec<Member>,
    block_unlisted_ips: bool,
    /// Runs of packets may go as UDP GSO sends (knet's, and udpu's to the members whose
    /// route takes them).
    gso: bool,
    /// Counters.
    pub stats: UdpuStats,
}

/// `bind` with corosync's retries: a port still held by a previous instance is usually
/// released within a second.
pub(crate) fn bind_with_retries(addr: SocketAddr) -> io::Result<UdpSocket> {
    let mut attempt = 0;
    loop {
        match UdpSocket::bind(addr) {
            Ok(s) => return Ok(s),
            Err(e) if attempt >= BIND_MAX_RETRIES || e.kind() != io::ErrorKind::AddrInUse => {
                return Err(io::Error::new(e.kind(), format!("bind {addr}: {e}")))
            }
            Err(_) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(
                    BIND_RETRIES_INTERVAL_MS * u64::from(attempt),
                ));
            }
        }
    }
}

impl Udpu {
    /// Binds the token socket on `local:port` and one sending socket per member.
    /// `members` is the nodelist (this node included) as (nodeid, ring0 address).
    pub fn new(
        local: IpAddr,
        port: u16,
        members: &[(u32, IpAddr)],
        block_unlisted_ips: bool,
    ) -> io::Result<Udpu> {
        let token = bind_with_retries(SocketAddr::new(local, port))?;
        token.set_nonblocking(true)?;
        // Best effort, as in corosync: a smaller buffer only means earlier drops.
        let _ = sys::set_socket_int(
            token.as_raw_fd(),
            libc::SO_RCVBUF,
            MCAST_SOCKET_BUFFER_SIZE as i32,
        );
        let _ = sys::set_socket_int(token.as_raw_fd(), libc::SO_PRIORITY, TC_PRIO_INTERACTIVE);
        let mut list = Vec::with_capacity(members.len());
        for (nodeid, addr) in members {
            let socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
            socket.set_nonblocking(true)?;
            let _ = sys::set_socket_int(
                socket.as_raw_fd(),
                libc::SO_SNDBUF,
                MCAST_SOCKET_BUFFER_SIZE as i32,
            );
            list.push(Member {
                nodeid: *nodeid,
                addr: SocketAddr::new(*addr, port),
                socket,
                gso: true,
            });
        }
        Ok(Udpu {
            token,
            members: list,
            block_unlisted_ips,
            gso: true,
            stats: UdpuStats::default(),
        })
    }

    /// Whether runs of multicasts may go as UDP GSO sends (the default; totemd
    /// `--no-udp-gso` turns it off). The kernel's refusal turns it off too.
    pub fn set_gso(&mut self, on: bool) {
        self.gso = on;
    }

    /// The token socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.token.local_addr()
    }

    /// The receive buffer the kernel granted (for the start-up log).
    pub fn recv_buffer_size(&self) -> io::Result<i32> {
        sys::get_socket_int(self.token.as_raw_fd(), libc::SO_RCVBUF)
    }

    /// The members, as (nodeid, address:port).
    pub fn members(&self) -> impl Iterator<Item = (u32, SocketAddr)> + '_ {
        self.members.iter().map(|m| (m.nodeid, m.addr))
    }

    /// Sends one transmit: a unicast from the token socket, or one copy per member from
    /// that member's socket. Errors are counted and otherwise ignored, as totemsrp
    /// recovers from a lost datagram.
    pub fn send(&mut self, t: &Transmit) {
        match t.destination {
            Destination::Node(id) => {
                let Some(addr) = self.members.iter().find(|m| m.nodeid == id).map(|m| m.addr)
                else {
                    self.stats.unknown_target += 1;
                    return;
                };
                let r = self.token.send_to(&t.bytes, addr);
                self.count(r);
            }
            Destination::All => {
                for i in 0..self.members.len() {
                    let m = &self.members[i];
                    let r = m.socket.send_to(&t.bytes, m.addr);
                    self.count(r);
                }
            }
        }
    }

    /// The socket buffers libknet gives its link sockets: `KNET_RING_RCVBUFF` (8 MiB) both
    /// ways, forced past `rmem_max`/`wmem_max` as root may
    /// (`transport_common.c::_configure_common_socket`). A 64 KiB totem message is 46
    /// knet fragments; the default 208 KiB buffer holds only a few such bursts.
    pub fn use_knet_buffers(&mut self) {
        knet_buffers(self.token.as_raw_fd());
    }

    /// Sends `packets` in order to one address from the token socket (knet's one link
    /// socket), in the batches of [`Udpu::send_to_all`]: the knet fragments of a message
    /// are equal-sized but for the last.
    pub fn send_batch_to(&mut self, addr: SocketAddr, packets: &[&[u8]]) {
        let fd = self.token.as_raw_fd();
        let mut gso = self.gso;
        send_in_batches(&mut self.stats, fd, &addr, &mut gso, packets);
        self.gso = gso;
    }

    /// Sends `packets`, all "multicasts", one copy per member each, in order, with as few
    /// system calls and trips through the kernel's UDP path as it allows (corosync's
    /// `mcast_sendmsg` makes one sendmsg per packet per member): runs of equal-sized
    /// packets go as one UDP GSO send, which the kernel cuts back into the same datagrams;
    /// what is left goes with one sendmmsg. Each member still receives the same datagrams,
    /// in the same order, from the same socket. A packet the kernel refuses is counted and
    /// skipped, as a failed sendto is.
    ///
    /// Whether the kernel takes a GSO send depends on the route, so it is learned per
    /// member: our own copy leaves by the loopback device (MTU 65536) and a peer's by the
    /// interface, whose MTU may be below the segment (EMSGSIZE for GSO, while a plain
    /// datagram of that size is fragmented and gets through).
    pub fn send_to_all(&mut self, packets: &[&[u8]]) {
        for m in &mut self.members {
            let mut gso = self.gso && m.gso;
            send_in_batches(
                &mut self.stats,
                m.socket.as_raw_fd(),
                &m.addr,
                &mut gso,
                packets,
            );
            if self.gso && !gso {
                m.gso = false;
            }
        }
    }

    /// The members to which GSO sends were refused, so that theirs go plain.
    pub fn gso_refused(&self) -> impl Iterator<Item = u32> + '_ {
        self.members.iter().filter(|m| !m.gso).map(|m| m.nodeid)
    }

    fn count(&mut self, r: io::Result<usize>) {
        match r {
            Ok(_) => self.stats.sent += 1,
            Err(e) => self.stats.send_failed(&e, 1),
        }
    }

    /// A receive buffer: one byte more than the largest datagram corosync accepts, so
    /// that a datagram filling it is known to be too big.
    pub fn recv_buffer() -> Vec<u8> {
        vec![0; UDP_RECEIVE_FRAME_SIZE_MAX + 1]
    }

    /// The next datagram on the token socket, read into `buf` (see [`Udpu::recv_buffer`]);
    /// `None` when there is none left (or on a receive error, which like corosync's
    /// `net_deliver_fn` just ends this round).
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<Recv> {
        let (len, from) = self.token.recv_from(buf).ok()?;
        if len == buf.len() {
            self.stats.truncated += 1;
            return Some(Recv::Truncated(from));
        }
        if self.block_unlisted_ips && !self.members.iter().any(|m| m.addr.ip() == from.ip()) {
            self.stats.rejected_unlisted += 1;
            return Some(Recv::Rejected(from));
        }
        self.stats.received += 1;
        Some(Recv::Datagram(from, len))
    }
}

/// libknet's link socket buffers on `fd` (see [`Udpu::use_knet_buffers`]).
pub(crate) fn knet_buffers(fd: RawFd) {
    const KNET_RING_RCVBUFF: i32 = 8 * 1024 * 1024;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if sys::set_socket_int(fd, force, KNET_RING_RCVBUFF).is_err() {
            let _ = sys::set_socket_int(fd, plain, KNET_RING_RCVBUFF);
        }
    }
}

/// How many packets from the front of `packets` one GSO send can carry: equal sizes, then
/// at most one shorter packet (the kernel cuts at `segment` bytes), within the kernel's
/// segment and size limits. Below 2 GSO gains nothing.
fn gso_run(packets: &[&[u8]]) -> usize {
    let Some(first) = packets.first() else {
        return 0;
    };
    let segment = first.len();
    if segment == 0 || segment > usize::from(u16::MAX) {
        return 1;
    }
    let mut n = 0;
    let mut bytes = 0;
    for p in packets {
        if n == sys::GSO_MAX_SEGMENTS || bytes + p.len() > sys::GSO_MAX_BYTES || p.len() > segment {
            break;
        }
        n += 1;
        bytes += p.len();
        if p.len() < segment {
            break;
        }
    }
    n
}

/// The kernel refuses UDP GSO on this route, not these datagrams: no checksum offload or
/// an old kernel (EIO, EINVAL, ENOPROTOOPT, EOPNOTSUPP), or a path MTU below the segment
/// (EMSGSIZE: a GSO segment is never IP-fragmented, a plain datagram is).
fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO)
            | Some(libc::EINVAL)
            | Some(libc::ENOPROTOOPT)
            | Some(libc::EOPNOTSUPP)
            | Some(libc::EMSGSIZE)
    )
}

/// Cuts `packets` into runs one UDP GSO send can carry and the stretches between them,
/// and sends them in order from `fd` to `to`. When the kernel refuses a GSO send itself
/// (see [`gso_unsupported`]) nothing of that run was sent: it goes plain, and `gso` is
/// cleared for the rest.
pub(crate) fn send_in_batches(
    stats: &mut UdpuStats,
    fd: RawFd,
    to: &SocketAddr,
    gso: &mut bool,
    packets: &[&[u8]],
) {
    let mut start = 0;
    while start < packets.len() {
        let run = if *gso { gso_run(&packets[start..]) } else { 1 };
        if run >= 2 {
            let buf = packets[start..start + run].concat();
            let segment = packets[start].len() as u16;
            match sys::send_segmented(fd, to, segment, &buf) {
                Ok(_) => {
                    stats.sent += run as u64;
                    start += run;
                    continue;
                }
                Err(e) if gso_unsupported(&e) => *gso = false,
                Err(e) => {
                    stats.send_failed(&e, run as u64);
                    start += run;
                    continue;
                }
            }
        }
        // Up to the next run GSO would take.
        let mut end = start + 1;
        while end < packets.len() && !(*gso && gso_run(&packets[end..]) >= 2) {
            end += 1;
        }
        send_many(stats, fd, to, &packets[start..end]);
        start = end;
    }
}

/// `packets` from `fd` to `to` by sendmmsg, counted; a packet the kernel refuses is
/// counted and skipped, as a failed sendto is.
fn send_many(stats: &mut UdpuStats, fd: RawFd, to: &SocketAddr, packets: &[&[u8]]) {
    let mut rest = packets;
    while !rest.is_empty() {
        match sys::send_many(fd, to, rest) {
            Ok(0) => {
                stats.send_errors += 1;
                rest = &rest[1..];
            }
            Err(e) => {
                stats.send_failed(&e, 1);
                rest = &rest[1..];
            }
            Ok(n) => {
                stats.sent += n as u64;
                rest = &rest[n..];
            }
        }
    }
}

impl AsRawFd for Udpu {
    fn as_raw_fd(&self) -> RawFd {
        self.token.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(lens: &[usize]) -> Vec<Vec<u8>> {
        lens.iter().map(|&n| vec![0u8; n]).collect()
    }

    fn run(lens: &[usize]) -> usize {
        let packets = sizes(lens);
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        gso_run(&refs)
    }

    #[test]
    fn gso_runs_are_equal_sizes_then_at_most_one_shorter() {
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[1400]), 1);
        assert_eq!(run(&[1400, 1400, 1400]), 3);
        assert_eq!(run(&[1400, 1400, 800, 1400]), 3);
        assert_eq!(run(&[1400, 800, 800]), 2);
        // A longer packet cannot follow: the kernel would cut it.
        assert_eq!(run(&[800, 1400]), 1);
        assert_eq!(run(&[0, 0]), 1);
    }

    #[test]
    fn gso_runs_respect_the_kernels_limits() {
        assert_eq!(run(&[100; 100]), sys::GSO_MAX_SEGMENTS);
        // 46 × 1400 = 64400 fits in one IP datagram, 47 do not.
        assert_eq!(run(&[1400; 60]), 46);
    }

    /// On loopback: a GSO send (Linux 4.18 on) and the sendmmsg path (`--no-udp-gso`)
    /// both deliver the same datagrams, in order, as separate sends would.
    #[test]
    fn multicasts_arrive_as_the_datagrams_they_were() {
        for gso in [true, false] {
            let local = IpAddr::from([127, 0, 0, 1]);
            let probe = UdpSocket::bind((local, 0)).unwrap();
            let port = probe.local_addr().unwrap().port();
            drop(probe);
            let mut udpu = Udpu::new(local, port, &[(1, local)], false).unwrap();
            udpu.set_gso(gso);
            let packets: Vec<Vec<u8>> = (0..20u8)
                .map(|i| vec![i; if i == 9 || i == 19 { 300 } else { 1200 }])
                .collect();
            let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
            udpu.send_to_all(&refs);
            // The kernel took the GSO sends (a refusal would have turned GSO off for the
            // member).
            assert_eq!(udpu.gso_refused().count(), 0, "UDP GSO refused on loopback");
            let mut buf = Udpu::recv_buffer();
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while got.len() < packets.len() && std::time::Instant::now() < deadline {
                match udpu.recv(&mut buf) {
                    Some(Recv::Datagram(_, n)) => got.push(buf[..n].to_vec()),
                    Some(other) => panic!("{other:?}"),
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            assert_eq!(got, packets, "gso {gso}");
            assert_eq!(udpu.stats.sent, 20);
            assert_eq!(udpu.stats.send_errors, 0);
        }
    }
}
