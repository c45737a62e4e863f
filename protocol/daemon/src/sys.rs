//! The few libc calls std does not wrap: poll(2), signalfd(2), getifaddrs(3), socket
//! buffer options and localtime_r(3). Every unsafe block is here, each with its reason.

#![allow(unsafe_code)]

use std::ffi::c_int;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// poll(2). An interrupted call is reported as "nothing ready" so that the caller simply
/// loops (signals arrive through the signalfd, not through EINTR).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the whole call and
    // its length is passed with it.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// A pollfd asking for input on `fd`.
pub fn pollin(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// SIGTERM/SIGINT delivered as readable data, so the single poll loop sees them like any
/// other input (corosync registers them with `qb_loop_signal_add` for the same reason).
#[derive(Debug)]
pub struct SignalFd {
    file: File,
}

impl SignalFd {
    /// Blocks `signals` for this thread and opens a nonblocking signalfd for them.
    pub fn new(signals: &[c_int]) -> io::Result<SignalFd> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t owned by this frame.
        unsafe { libc::sigemptyset(&mut set) };
        for s in signals {
            // SAFETY: as above; an invalid signal number only makes sigaddset fail.
            if unsafe { libc::sigaddset(&mut set, *s) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: `set` is initialised; the old mask is not wanted (null is allowed).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialised.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd just returned this descriptor and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd {
            file: File::from(owned),
        })
    }

    /// The next pending signal, if any.
    pub fn read(&mut self) -> Option<c_int> {
        // struct signalfd_siginfo is 128 bytes and starts with `uint32_t ssi_signo`.
        let mut buf = [0u8; 128];
        match self.file.read(&mut buf) {
            Ok(128) => Some(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as c_int),
            _ => None,
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Every IPv4/IPv6 address configured on a local interface (getifaddrs(3)), as
/// `totemconfig.c::find_local_node` walks them.
pub(crate) fn local_addresses() -> io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; on success it owns a list freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
            let family = c_int::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: the family is AF_INET, so this is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(list) };
    Ok(out)
}

/// setsockopt(SOL_SOCKET, `option`, int). Best effort like corosync's
/// `totemudpu_build_sockets_ip` (a failure is logged there, not fatal).
pub(crate) fn set_socket_int(fd: RawFd, option: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: `value` lives for the call and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// getsockopt(SOL_SOCKET, `option`) as an int.
pub(crate) fn get_socket_int(fd: RawFd, option: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid out-pointers of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Local broken-down time of `secs` since the epoch: (month 0-11, day, hour, min, sec).
pub(crate) fn local_time(secs: i64) -> (usize, u32, u32, u32, u32) {
    let t = secs as libc::time_t;
    // SAFETY: tm is plain data, fully written by localtime_r on success.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the reentrant variant.
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        return (0, 1, 0, 0, 0);
    }
    (
        tm.tm_mon.clamp(0, 11) as usize,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

/// Which of the two name services to ask.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdKind {
    /// getpwnam_r(3).
    User,
    /// getgrnam_r(3).
    Group,
}

/// The uid or gid of a user or group name through NSS (`coroparse.c::uid_determine` /
/// `gid_determine`); `Ok(None)` when there is no such name.
pub(crate) fn id_by_name(kind: IdKind, name: &str) -> io::Result<Option<u32>> {
    let Ok(cname) = std::ffi::CString::new(name) else {
        return Ok(None);
    };
    let mut len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        let rc;
        let mut id = None;
        match kind {
            IdKind::User => {
                // SAFETY: passwd is plain data filled by getpwnam_r; every pointer passed
                // is valid for the call, `buf` for `len` bytes.
                let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
                let mut result: *mut libc::passwd = std::ptr::null_mut();
                // SAFETY: as above; the strings in `pwd` point into `buf`, unused after.
                rc = unsafe {
                    libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr(), len, &mut result)
                };
                if rc == 0 && !result.is_null() {
                    id = Some(pwd.pw_uid);
                }
            }
            IdKind::Group => {
                // SAFETY: as for the user case, with struct group and getgrnam_r.
                let mut grp: libc::group = unsafe { std::mem::zeroed() };
                let mut result: *mut libc::group = std::ptr::null_mut();
                // SAFETY: as above.
                rc = unsafe {
                    libc::getgrnam_r(cname.as_ptr(), &mut grp, buf.as_mut_ptr(), len, &mut result)
                };
                if rc == 0 && !result.is_null() {
                    id = Some(grp.gr_gid);
                }
            }
        }
        match rc {
            0 => return Ok(id),
            // The buffer was too small (uid_determine doubles it, up to 32 KiB).
            libc::ERANGE if len < (1 << 20) => len *= 2,
            // Some NSS modules report "not found" as an error instead of a null result.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `main.c::corosync_set_rr_scheduler`: this process at SCHED_RR's highest priority.
/// Returns that priority.
pub(crate) fn set_rr_scheduler() -> io::Result<c_int> {
    // SAFETY: no pointers; an unsupported policy gives -1 and errno.
    let priority = unsafe { libc::sched_get_priority_max(libc::SCHED_RR) };
    if priority == -1 {
        return Err(io::Error::last_os_error());
    }
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is us.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } == -1 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("Could not set SCHED_RR at priority {priority}: {e}"),
        ));
    }
    Ok(priority)
}

/// `sockaddr_in`/`sockaddr_in6` for `addr`, with its length.
fn raw_sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The most datagrams one [`send_many`] call hands to the kernel (`UIO_MAXIOV`).
pub(crate) const SEND_MANY_MAX: usize = 1024;

/// sendmmsg(2): `packets[..]` as separate datagrams to `to`, in order, in one system call.
/// Returns how many the kernel took from the front (at most [`SEND_MANY_MAX`]); an error
/// only when it took none.
pub(crate) fn send_many(
    fd: RawFd,
    to: &std::net::SocketAddr,
    packets: &[&[u8]],
) -> io::Result<usize> {
    let packets = &packets[..packets.len().min(SEND_MANY_MAX)];
    let (mut addr, addr_len) = raw_sockaddr(to);
    let mut iovs: Vec<libc::iovec> = packets
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = addr_len;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            }
        })
        .collect();
    // SAFETY: every msghdr points at `addr` and at one iovec, which point at the packets;
    // all of them outlive the call, and the kernel only reads the packets and the address
    // (it writes msg_len into `msgs`, which we own).
    let n = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `UDP_SEGMENT` (linux/udp.h): the cmsg that asks for UDP generic segmentation offload.
const UDP_SEGMENT: c_int = 103;
/// The most segments one GSO send may carry (`UDP_MAX_SEGMENTS`).
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;
/// The most bytes one GSO send may carry: one IP datagram's worth of UDP payload.
pub(crate) const GSO_MAX_BYTES: usize = 65_507;

/// sendmsg(2) of `buf` to `to` as datagrams of `segment` bytes each (the last may be
/// shorter), cut by the kernel (UDP GSO, Linux 4.18): one trip through the UDP/IP stack
/// for all of them. The receiver sees ordinary datagrams.
pub(crate) fn send_segmented(
    fd: RawFd,
    to: &std::net::SocketAddr,
    segment: u16,
    buf: &[u8],
) -> io::Result<usize> {
    let (mut addr, addr_len) = raw_sockaddr(to);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // u64 elements for cmsghdr's alignment; 32 bytes hold CMSG_SPACE(sizeof(u16)) = 24.
    let mut control = [0u64; 4];
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = addr_len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    // SAFETY: `msg_control` points at `control`, large enough for one cmsg of a u16 (see
    // above), so CMSG_FIRSTHDR is non-null and CMSG_DATA lies inside `control`; every
    // pointer in `msg` outlives the sendmsg call, which only reads through them.
    let n = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
