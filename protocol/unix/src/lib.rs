//! The few system calls of libqb's socket IPC type that std does not wrap — credential
//! passing, socket options, a peeking receive, poll(2) — for both ends: totemd's server
//! and `totem-client`. Every `unsafe` is here, each behind a safe function whose arguments
//! cannot make it unsound.
#![allow(unsafe_code)]

pub mod shm;

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// A process's credentials as the kernel reports them (`struct ucred`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ucred {
    /// Process id.
    pub pid: i32,
    /// User id (`SCM_CREDENTIALS`: the real uid; `SO_PEERCRED`: the effective one).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` lives across the call and the length passed is its size; the kernel
    // only reads it. `fd` is a descriptor borrowed for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes and `len` holds the buffer's size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `SO_PASSCRED`: have the kernel attach the sender's credentials (`SCM_CREDENTIALS`) to
/// what this socket receives (libqb `qb_ipcs_uc_recv_and_auth` turns it on before reading
/// the connection request and `process_auth` off afterwards).
pub fn set_passcred(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PASSCRED, i32::from(on))
}

/// One nonblocking `recvmsg` into `buf`, with room for one `SCM_CREDENTIALS` control
/// message (`qb_ipc_us_recv_msghdr` + `qb_ipc_auth_creds`). Returns the bytes read and the
/// credentials, if this read carried them.
pub fn recv_with_creds(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<Ucred>)> {
    // u64 elements give the alignment `struct cmsghdr` needs; 64 bytes hold
    // CMSG_SPACE(sizeof(struct ucred)) = 32 with room to spare.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: `msg` points at `iov` (describing `buf`, valid for writes of its length) and
    // at `control` (valid for writes of `msg_controllen` bytes); both outlive the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut creds = None;
    // SAFETY: `msg` was filled by the kernel: CMSG_FIRSTHDR/CMSG_NXTHDR walk only within
    // `msg_control[..msg_controllen]` (the kernel shrinks msg_controllen to what it wrote),
    // and CMSG_DATA of an SCM_CREDENTIALS header whose cmsg_len covers a `struct ucred` is
    // readable for that many bytes; read_unaligned makes no alignment assumption.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let needed = libc::CMSG_LEN(size_of::<libc::ucred>() as u32) as usize;
            if header.cmsg_level == libc::SOL_SOCKET
                && header.cmsg_type == libc::SCM_CREDENTIALS
                && header.cmsg_len >= needed
            {
                let uc: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                creds = Some(Ucred {
                    pid: uc.pid,
                    uid: uc.uid,
                    gid: uc.gid,
                });
                break;
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, creds))
}

/// `SO_PEERCRED`: the credentials the peer had when it connected (effective ids), the
/// fallback when no `SCM_CREDENTIALS` arrived (ipc.md §5.2 step 1).
pub fn peer_creds(fd: BorrowedFd<'_>) -> io::Result<Ucred> {
    let mut uc = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `uc` and `len` are valid for writes and `len` holds the buffer's size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut uc as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED returned a short struct",
        ));
    }
    Ok(Ucred {
        pid: uc.pid,
        uid: uc.uid,
        gid: uc.gid,
    })
}

/// Raises `SO_SNDBUF` and `SO_RCVBUF` to at least `size` (libqb `set_sock_size`). A unix
/// datagram fails with EMSGSIZE above `sk_sndbuf - 32` and `SO_SNDBUF` is capped by
/// `net.core.wmem_max` (ipc.md §2.7). With `force` the `*FORCE` variants are tried first
/// (a server: they need CAP_NET_ADMIN and ignore the cap; libqb's client does not use
/// them). The kernel doubles the value, which leaves room for its bookkeeping.
pub fn set_buffer_sizes(fd: BorrowedFd<'_>, size: usize, force: bool) -> io::Result<()> {
    let want = i32::try_from(size).unwrap_or(i32::MAX);
    for (name, force_name) in [
        (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE),
        (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE),
    ] {
        // getsockopt reports the doubled value; only raise, as libqb does.
        if getsockopt_int(fd, libc::SOL_SOCKET, name)? / 2 >= want {
            continue;
        }
        if !(force && setsockopt_int(fd, libc::SOL_SOCKET, force_name, want).is_ok()) {
            setsockopt_int(fd, libc::SOL_SOCKET, name, want)?;
        }
    }
    Ok(())
}

/// One nonblocking `send` with `MSG_NOSIGNAL` (libqb sends everything with it): a peer
/// that went away must give EPIPE/ECONNREFUSED, never SIGPIPE.
pub fn send_nosignal(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length for the duration of the call.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The effective uid of this process.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// poll(2) over `fds`, retrying on EINTR; `None` waits without limit. Returns how many
/// entries have `revents` set. A convenience for main loops and tests built around
/// [`a server's pollfds`].
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so that a short timeout does not become a busy loop of 0 ms polls.
        Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    };
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A nonblocking `recv(MSG_PEEK)`: looks without consuming.
pub fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the duration of the call.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
