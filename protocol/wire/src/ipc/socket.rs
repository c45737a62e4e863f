//! libqb's *socket* IPC type after the handshake: the 24-byte control file and the names of
//! a connection's datagram sockets (libqb 2.0.6 `lib/ipc_socket.c`: `struct ipc_us_control`,
//! `qb_ipcs_us_connect`, `qb_ipcc_us_connect`, `set_sock_addr`; ipc.md §1.4).
//!
//! Both ends derive every name from the two strings of the connection response:
//! `response.request` is the control file's path and `response.response` is the base `B`
//! of the datagram socket names.
//!
//! ```text
//! server  B-request  <->  B-response  client    requests and their responses (one fd each side)
//! server  B-event-tx  ->  B-event     client    events
//! ```

/// `SHM_CONTROL_SIZE`: three `struct ipc_us_control { int32 sent; int32 flow_control; }`
/// (request, response, event) in the file the server creates and both ends mmap shared.
pub const CONTROL_FILE_LEN: usize = 24;
/// Requests sent and not yet read: the client adds 1 per request, the server subtracts 1
/// per request it reads (`qb_ipc_socket_send`, `qb_ipc_us_recv_at_most`).
pub const CONTROL_REQUEST_SENT: usize = 0;
/// The flow-control state the server publishes and the client reads before every send
/// (`qb_ipc_us_fc_set`, `qb_ipc_us_fc_get`; values [`FLOW_CONTROL_OPEN`] ...).
pub const CONTROL_REQUEST_FLOW_CONTROL: usize = 4;
/// Responses sent and not yet read (informational).
pub const CONTROL_RESPONSE_SENT: usize = 8;
/// Events sent and not yet read (informational; corosync's `event_q_length`).
pub const CONTROL_EVENT_SENT: usize = 16;

/// Flow control off: every request may be sent (`QB_IPCS_RATE_FAST/NORMAL/SLOW`).
pub const FLOW_CONTROL_OPEN: i32 = 0;
/// No request may be sent (`QB_IPCS_RATE_OFF`): the client answers -EAGAIN without sending.
pub const FLOW_CONTROL_STOP_ALL: i32 = 1;
/// Only sends made with `fc_enable_max` 2, i.e. libcpg's mcasts, answer -EAGAIN
/// (`QB_IPCS_RATE_OFF_2`).
pub const FLOW_CONTROL_STOP_MCAST: i32 = 2;

/// `sizeof(((struct sockaddr_un *)0)->sun_path)` on Linux.
pub const SUN_PATH_LEN: usize = 108;
/// The bytes of an abstract name after its leading NUL: libqb zero-fills the whole
/// `sun_path` and always passes `sizeof(struct sockaddr_un)` (110) as the address length
/// (`QB_SUN_LEN` for abstract names), so the padding is part of the name.
pub const ABSTRACT_NAME_LEN: usize = SUN_PATH_LEN - 1;
/// The longest name that survives libqb's `snprintf(sun_path + 1, 107, "%s", name)`: the
/// rest is cut, on both ends alike.
pub const ABSTRACT_NAME_MAX: usize = ABSTRACT_NAME_LEN - 1;

/// The abstract-namespace name libqb binds or connects for `name` (the part after
/// `sun_path[0] == 0`): at most [`ABSTRACT_NAME_MAX`] bytes of `name`, zero-padded to
/// [`ABSTRACT_NAME_LEN`]. Used for the listening socket (`"cpg"`) and the datagram sockets.
pub fn abstract_name(name: &[u8]) -> [u8; ABSTRACT_NAME_LEN] {
    // snprintf stops at the first NUL of its argument too.
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    let n = name.len().min(ABSTRACT_NAME_MAX);
    let mut out = [0u8; ABSTRACT_NAME_LEN];
    out[..n].copy_from_slice(&name[..n]);
    out
}

/// One end of a connection's datagram sockets; each is bound to `B-<suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DgramEnd {
    /// The server's request/response socket (`B-request`).
    ServerRequest,
    /// The client's request/response socket (`B-response`).
    ClientResponse,
    /// The server's event socket (`B-event-tx`).
    ServerEvent,
    /// The client's event socket, the fd `cpg_fd_get` returns (`B-event`).
    ClientEvent,
}

impl DgramEnd {
    /// The suffix after `B-`.
    pub fn suffix(self) -> &'static str {
        match self {
            DgramEnd::ServerRequest => "request",
            DgramEnd::ClientResponse => "response",
            DgramEnd::ServerEvent => "event-tx",
            DgramEnd::ClientEvent => "event",
        }
    }

    /// The end this one is connected to.
    pub fn peer(self) -> DgramEnd {
        match self {
            DgramEnd::ServerRequest => DgramEnd::ClientResponse,
            DgramEnd::ClientResponse => DgramEnd::ServerRequest,
            DgramEnd::ServerEvent => DgramEnd::ClientEvent,
            DgramEnd::ClientEvent => DgramEnd::ServerEvent,
        }
    }
}

/// The names of one socket-type connection: what the connection response carries in its
/// `request` (control file) and `response` (base) arrays.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketNames {
    /// Path of the control file, `D-control-<service>`.
    pub control: Vec<u8>,
    /// Base of the datagram socket names, `D-<service>`.
    pub base: Vec<u8>,
}

impl SocketNames {
    /// The names a server derives from its connection description `D` (libqb:
    /// `/dev/shm/qb-<server pid>-<client pid>-<fd>-XXXXXX/qb`) and the service name
    /// (`qb_ipcs_us_connect`).
    pub fn new(description: &[u8], service: &[u8]) -> SocketNames {
        let mut control = description.to_vec();
        control.extend_from_slice(b"-control-");
        control.extend_from_slice(service);
        let mut base = description.to_vec();
        base.push(b'-');
        base.extend_from_slice(service);
        SocketNames { control, base }
    }

    /// The name `end` is bound to: `B-<suffix>` (`qb_ipc_dgram_sock_setup`). Pass it
    /// through [`abstract_name`] for the address.
    pub fn dgram(&self, end: DgramEnd) -> Vec<u8> {
        let mut name = self.base.clone();
        name.push(b'-');
        name.extend_from_slice(end.suffix().as_bytes());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_lab_run() {
        // ipc.md §1.4 / §7: /dev/shm/qb-14544-14556-18-wQinuu/qb-control-cpg and .../qb-cpg.
        let names = SocketNames::new(b"/dev/shm/qb-14544-14556-18-wQinuu/qb", b"cpg");
        assert_eq!(
            names.control,
            b"/dev/shm/qb-14544-14556-18-wQinuu/qb-control-cpg".to_vec()
        );
        assert_eq!(
            names.base,
            b"/dev/shm/qb-14544-14556-18-wQinuu/qb-cpg".to_vec()
        );
        assert_eq!(
            names.dgram(DgramEnd::ServerRequest),
            b"/dev/shm/qb-14544-14556-18-wQinuu/qb-cpg-request".to_vec()
        );
        assert_eq!(
            names.dgram(DgramEnd::ServerEvent),
            b"/dev/shm/qb-14544-14556-18-wQinuu/qb-cpg-event-tx".to_vec()
        );
        for end in [
            DgramEnd::ServerRequest,
            DgramEnd::ClientResponse,
            DgramEnd::ServerEvent,
            DgramEnd::ClientEvent,
        ] {
            assert_eq!(end.peer().peer(), end);
            assert_ne!(end.peer(), end);
        }
        assert_eq!(DgramEnd::ClientEvent.peer(), DgramEnd::ServerEvent);
    }

    #[test]
    fn abstract_names_are_padded_and_cut_like_snprintf() {
        let cpg = abstract_name(b"cpg");
        assert_eq!(cpg.len(), 107);
        assert_eq!(&cpg[..3], b"cpg");
        assert!(cpg[3..].iter().all(|&b| b == 0));

        let long = vec![b'x'; 200];
        let cut = abstract_name(&long);
        assert!(cut[..ABSTRACT_NAME_MAX].iter().all(|&b| b == b'x'));
        assert_eq!(cut[ABSTRACT_NAME_MAX], 0);

        // A NUL ends the name, as it ends snprintf's %s.
        assert_eq!(abstract_name(b"ab\0cd"), abstract_name(b"ab"));
        assert_eq!(abstract_name(b""), [0u8; ABSTRACT_NAME_LEN]);
    }

    #[test]
    fn control_offsets_are_the_three_structs() {
        assert_eq!(CONTROL_FILE_LEN, 3 * 8);
        assert_eq!(CONTROL_REQUEST_FLOW_CONTROL, CONTROL_REQUEST_SENT + 4);
        assert_eq!(CONTROL_RESPONSE_SENT, 8);
        assert_eq!(CONTROL_EVENT_SENT, 16);
        for off in [
            CONTROL_REQUEST_SENT,
            CONTROL_REQUEST_FLOW_CONTROL,
            CONTROL_RESPONSE_SENT,
            CONTROL_EVENT_SENT,
        ] {
            assert_eq!(off % 4, 0);
            assert!(off + 4 <= CONTROL_FILE_LEN);
        }
    }

    #[test]
    fn header_peeks_read_only_the_header() {
        use crate::ipc::{CsError, RequestHeader, ResponseHeader};
        // LOCAL_GET request (16 bytes) followed by bytes peek must not look at.
        let mut req = vec![0xAAu8; 40];
        req[..4].copy_from_slice(&4i32.to_le_bytes());
        req[8..12].copy_from_slice(&16i32.to_le_bytes());
        assert_eq!(
            RequestHeader::peek(&req).unwrap(),
            RequestHeader { id: 4, size: 16 }
        );
        assert!(RequestHeader::peek(&req[..15]).is_err());

        let mut res = vec![0u8; 32];
        res[..4].copy_from_slice(&7i32.to_le_bytes());
        res[8..12].copy_from_slice(&32i32.to_le_bytes());
        res[16..20].copy_from_slice(&1i32.to_le_bytes());
        let h = ResponseHeader::peek(&res).unwrap();
        assert_eq!((h.id, h.size, h.error), (7, 32, CsError::Ok));
        assert!(ResponseHeader::peek(&res[..23]).is_err());
    }
}
