//! What every libqb IPC type shares on the client side: the setup handshake on the stream
//! socket (spec ipc.md §1.2, `qb_ipcc_connect` up to `qb_ipcc_connect_continue`), the
//! framing checks of §2.1, and the liveness test of the setup stream (§1.5). The server
//! chooses the type in its answer (`connection_type`); [`crate::socket`] and
//! [`crate::shm`] take over from there.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use totem_wire::ipc::setup::{
    ConnectionRequest, ConnectionResponse, IpcType, CONNECTION_REQUEST_LEN,
    CONNECTION_RESPONSE_LEN, MSG_AUTHENTICATE,
};
use totem_wire::ipc::socket::{abstract_name, ABSTRACT_NAME_MAX};
use totem_wire::ipc::{RequestHeader, ResponseHeader, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN};

use crate::TransportError;

/// libqb's `FORCESOCKETSFILE`: when it exists, the listening socket is a file in
/// [`SOCKET_DIR`] (ipc.md §1.1).
pub const FORCE_FILESYSTEM_SOCKETS_FILE: &str = "/etc/libqb/force-filesystem-sockets";
/// libqb's `SOCKETDIR` default (`$localstatedir/run`).
pub const SOCKET_DIR: &str = "/var/run";
/// How long a connect waits for the setup response. libqb waits for ever (`poll(-1)`,
/// ipc.md §1.2 client step 3); a server that accepted the stream and never answers would
/// then hang the caller, so we give up and report it disconnected.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest `max_msg_size` a server may choose: the client allocates a receive buffer
/// of that size. libcpg asks for 1 MiB and libqb servers answer that.
pub const MAX_NEGOTIATED_MSG_SIZE: usize = 16 << 20;

/// The server's credentials, as the kernel attached them to the setup response.
pub type ServerCreds = totem_unix::Ucred;

/// A connection's state as far as the client knows it.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Connected,
    /// A response did not come in time; if it comes later it would be taken as the
    /// answer to the next call (libqb does not check response ids, ipc.md §2.3), so the
    /// connection cannot be used any more.
    OutOfStep,
    Gone(String),
}

impl State {
    /// Whether a call may go on (`Ok`) or what it fails with.
    pub(crate) fn usable(&self) -> Result<(), TransportError> {
        match self {
            State::Connected => Ok(()),
            State::OutOfStep => Err(TransportError::Protocol(
                "an earlier response timed out; the connection is out of step".into(),
            )),
            State::Gone(why) => Err(disconnected(why.clone())),
        }
    }
}

pub(crate) fn disconnected(why: impl Into<String>) -> TransportError {
    TransportError::Disconnected(why.into())
}

pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

pub(crate) fn timed_out() -> TransportError {
    TransportError::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "no response in time",
    ))
}

pub(crate) fn filesystem_sockets() -> bool {
    Path::new(FORCE_FILESYSTEM_SOCKETS_FILE).exists()
}

/// The outcome of a successful handshake: the server accepted, and the connection's
/// resources (named in `response`) are for the chosen type to open.
pub(crate) struct Handshake {
    pub(crate) service: String,
    /// Nonblocking; stays open as the liveness channel (and, for shm, the notification
    /// channel).
    pub(crate) setup: UnixStream,
    pub(crate) response: ConnectionResponse,
    /// The size the server chose, checked against [`MAX_NEGOTIATED_MSG_SIZE`].
    pub(crate) max_msg_size: usize,
    pub(crate) server: Option<ServerCreds>,
    /// Whether filesystem sockets were forced (the socket type's names depend on it).
    pub(crate) fs_mode: bool,
}

/// [`handshake`] for a transport that speaks only `kind`: any other answer is a
/// [`TransportError::Protocol`] naming `who` (the caller should have used
/// `totem_client::connect`, which follows the server's choice).
pub(crate) fn handshake_for(
    kind: IpcType,
    who: &str,
    service: &str,
    max_msg_size: usize,
    setup_timeout: Option<Duration>,
) -> Result<Handshake, TransportError> {
    let hs = handshake(service, max_msg_size, setup_timeout)?;
    if hs.response.connection_type != kind {
        return Err(TransportError::Protocol(format!(
            "the server chose {} IPC; {who} speaks only the {} type \
             (totem_client::connect follows the server's choice)",
            hs.response.connection_type,
            kind.to_string().to_lowercase()
        )));
    }
    Ok(hs)
}

/// `qb_ipcc_connect` up to the type-specific part: connect the stream to `service`, send
/// the 24-byte request with our credentials, read the 12328-byte answer with the server's.
///
/// Errors: [`TransportError::Disconnected`] when nothing listens or the server closes
/// the stream (libcpg: CS_ERR_LIBRARY), [`TransportError::Refused`] with the server's
/// errno (`EACCES`, `EAGAIN` ...), [`TransportError::Protocol`] when the answer is not
/// a valid connection response or chooses an impossible message size.
pub(crate) fn handshake(
    service: &str,
    max_msg_size: usize,
    setup_timeout: Option<Duration>,
) -> Result<Handshake, TransportError> {
    if service.is_empty() || service.len() > ABSTRACT_NAME_MAX || service.contains('\0') {
        return Err(TransportError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid service name {service:?}"),
        )));
    }
    let deadline = setup_timeout.map(|t| Instant::now() + t);
    let fs_mode = filesystem_sockets();
    // qb_ipcc_stream_sock_connect: the listener is `\0<service>`, or SOCKETDIR/<service>.
    let addr = if fs_mode {
        SocketAddr::from_pathname(Path::new(SOCKET_DIR).join(service))?
    } else {
        SocketAddr::from_abstract_name(abstract_name(service.as_bytes()))?
    };
    let setup = UnixStream::connect_addr(&addr)
        .map_err(|e| disconnected(format!("cannot connect to IPC service {service}: {e}")))?;
    setup.set_nonblocking(true)?;
    // qb_ipcc_us_setup_connect: SO_PASSCRED on, so the kernel attaches our credentials
    // to the request and the server's to its response.
    totem_unix::set_passcred(setup.as_fd(), true)?;

    let mut request = Vec::with_capacity(CONNECTION_REQUEST_LEN);
    ConnectionRequest {
        header: RequestHeader {
            id: MSG_AUTHENTICATE,
            size: CONNECTION_REQUEST_LEN as i32,
        },
        // `max(requested, sizeof(response))` (qb_ipcc_connect).
        max_msg_size: u32::try_from(max_msg_size.max(CONNECTION_RESPONSE_LEN)).unwrap_or(u32::MAX),
    }
    .emit(&mut request);
    send_all(&setup, &request, deadline)?;

    let (response, server) = recv_setup_response(&setup, deadline)?;
    let _ = totem_unix::set_passcred(setup.as_fd(), false);
    let response = ConnectionResponse::parse(&response)
        .map_err(|e| TransportError::Protocol(format!("connection response: {e}")))?;
    if let Some(errno) = response.refusal_errno() {
        return Err(TransportError::Refused(errno));
    }
    let max = response.max_msg_size as usize;
    if !(RESPONSE_HEADER_LEN..=MAX_NEGOTIATED_MSG_SIZE).contains(&max) {
        return Err(TransportError::Protocol(format!(
            "server chose a maximum message size of {max} bytes"
        )));
    }
    Ok(Handshake {
        service: service.to_owned(),
        setup,
        response,
        max_msg_size: max,
        server,
        fs_mode,
    })
}

/// Checks a request before it goes out (`qb_ipcc_sendv`: -EMSGSIZE above the maximum);
/// the server would drop the connection for a bad `size` field.
pub(crate) fn check_request(msg: &[u8], max: usize) -> Result<(), TransportError> {
    if msg.len() > max {
        return Err(TransportError::TooLarge {
            len: msg.len(),
            max,
        });
    }
    let header =
        RequestHeader::peek(msg).map_err(|e| TransportError::Protocol(format!("request: {e}")))?;
    if msg.len() < REQUEST_HEADER_LEN || header.size < 0 || header.size as usize != msg.len() {
        return Err(TransportError::Protocol(format!(
            "request of {} bytes has size field {}",
            msg.len(),
            header.size
        )));
    }
    Ok(())
}

/// The framing every response and event must have: at least the 24-byte header, `size`
/// equal to the message, within the maximum (libqb trusts `size`; we check it).
pub(crate) fn check_incoming(bytes: &[u8], max: usize) -> Result<Vec<u8>, TransportError> {
    if bytes.len() > max {
        return Err(TransportError::Protocol(format!(
            "message over the maximum of {max} bytes"
        )));
    }
    let header = ResponseHeader::peek(bytes)
        .map_err(|e| TransportError::Protocol(format!("message of {} bytes: {e}", bytes.len())))?;
    if header.size < 0 || header.size as usize != bytes.len() {
        return Err(TransportError::Protocol(format!(
            "message of {} bytes has size field {}",
            bytes.len(),
            header.size
        )));
    }
    Ok(bytes.to_vec())
}

/// What the setup stream says about the server right now (a zero-timeout poll), as
/// `_check_connection_state_with` reads it: `Ok(None)` alive, `Ok(Some(why))` gone.
/// Hangup, error and EOF always mean gone. Pending data means gone too unless
/// `data_expected` (the shm type's event notifications): a socket-type server never
/// writes after the handshake, and libqb counts "setup fd readable" as disconnected
/// (ipc.md §1.5).
pub(crate) fn stream_gone(
    setup: &UnixStream,
    data_expected: bool,
) -> Result<Option<String>, TransportError> {
    let mut fds = [libc::pollfd {
        fd: setup.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    totem_unix::poll(&mut fds, Some(Duration::ZERO))?;
    let revents = fds[0].revents;
    if revents == 0 {
        return Ok(None);
    }
    if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return Ok(Some("the server hung up".to_owned()));
    }
    let mut byte = [0u8; 1];
    Ok(match totem_unix::peek(setup.as_fd(), &mut byte) {
        Ok(0) => Some("the server closed the connection".to_owned()),
        Ok(_) if data_expected => None,
        Ok(_) => Some("the server wrote on the setup stream after the handshake".to_owned()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => Some(format!("setup stream: {e}")),
    })
}

/// Writes all of `bytes` to the nonblocking `stream`, waiting for room until `deadline`;
/// a timeout or a failure counts as a dead server.
pub(crate) fn send_all(
    stream: &UnixStream,
    mut bytes: &[u8],
    deadline: Option<Instant>,
) -> Result<(), TransportError> {
    while !bytes.is_empty() {
        match totem_unix::send_nosignal(stream.as_fd(), bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_for(stream, libc::POLLOUT, deadline)?;
            }
            Err(e) => return Err(disconnected(format!("setup stream: {e}"))),
        }
    }
    Ok(())
}

/// Waits until `stream` is ready for `events`; a timeout counts as a dead server.
fn wait_for(
    stream: &UnixStream,
    events: i16,
    deadline: Option<Instant>,
) -> Result<(), TransportError> {
    let left = remaining(deadline);
    if left == Some(Duration::ZERO) {
        return Err(disconnected("no answer from the server in time"));
    }
    let mut fds = [libc::pollfd {
        fd: stream.as_raw_fd(),
        events,
        revents: 0,
    }];
    totem_unix::poll(&mut fds, left)?;
    Ok(())
}

/// Reads the 12328-byte connection response, in as many pieces as it comes, keeping the
/// server's `SCM_CREDENTIALS` (`qb_ipcc_setup_connect_continue`). EOF first means the
/// server refused without an answer (libqb does that when it cannot read our
/// credentials or our request).
fn recv_setup_response(
    stream: &UnixStream,
    deadline: Option<Instant>,
) -> Result<(Vec<u8>, Option<ServerCreds>), TransportError> {
    let mut buf = vec![0u8; CONNECTION_RESPONSE_LEN];
    let mut got = 0;
    let mut creds = None;
    while got < buf.len() {
        match totem_unix::recv_with_creds(stream.as_fd(), &mut buf[got..]) {
            Ok((0, _)) => {
                return Err(disconnected(format!(
                    "the server closed the connection during setup ({got} of {} bytes of \
                     its response read)",
                    buf.len()
                )))
            }
            Ok((n, c)) => {
                got += n;
                creds = creds.or(c);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_for(stream, libc::POLLIN, deadline)?
            }
            Err(e) => return Err(disconnected(format!("setup stream: {e}"))),
        }
    }
    Ok((buf, creds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: i32, size: i32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        if len >= 24 {
            b[..4].copy_from_slice(&id.to_le_bytes());
            b[8..12].copy_from_slice(&size.to_le_bytes());
        }
        b
    }

    #[test]
    fn incoming_framing() {
        assert_eq!(check_incoming(&response(7, 32, 32), 64).unwrap().len(), 32);
        for (bytes, max) in [
            (response(7, 32, 32), 31),
            (response(7, 33, 32), 64),
            (response(7, -1, 32), 64),
            (vec![0u8; 23], 64),
        ] {
            assert!(matches!(
                check_incoming(&bytes, max),
                Err(TransportError::Protocol(_))
            ));
        }
    }

    #[test]
    fn request_framing() {
        let mut ok = vec![0u8; 16];
        ok[8..12].copy_from_slice(&16i32.to_le_bytes());
        check_request(&ok, 16).unwrap();
        assert!(matches!(
            check_request(&ok, 15),
            Err(TransportError::TooLarge { len: 16, max: 15 })
        ));
        let mut bad = ok.clone();
        bad[8] = 17;
        assert!(matches!(
            check_request(&bad, 64),
            Err(TransportError::Protocol(_))
        ));
        assert!(matches!(
            check_request(&[0u8; 8], 64),
            Err(TransportError::Protocol(_))
        ));
    }

    #[test]
    fn stream_liveness() {
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(stream_gone(&a, false).unwrap(), None);
        use std::io::Write;
        b.write_all(&[0]).unwrap();
        assert_eq!(stream_gone(&a, true).unwrap(), None);
        assert!(stream_gone(&a, false).unwrap().is_some());
        drop(b);
        assert!(stream_gone(&a, true).unwrap().is_some());
    }
}
