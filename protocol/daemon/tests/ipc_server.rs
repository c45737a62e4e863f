//! totemd's libqb socket-type IPC server against our client (`totem_client::socket`), raw
//! sockets playing hostile clients, and the real libcpg.so.4 (ipc.md §5).
//!
//! Each test runs its server on a thread of its own, driven by the same poll loop a daemon
//! uses, under a service name of its own (abstract names are per network namespace, so
//! tests would otherwise collide with each other and with a corosync).

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use totem_client::socket::SocketTransport;
use totem_client::{FlowControl as ClientFlow, Transport, TransportError};
use totem_wire::ipc::setup::{ConnectionRequest, ConnectionResponse, IpcType};
use totem_wire::ipc::socket::{abstract_name, DgramEnd, SocketNames};
use totem_wire::ipc::{CsError, RequestHeader, ResponseHeader};
use totemd::ipc::{
    ConnId, Creds, DisconnectReason, FlowControl, IpcConfig, IpcError, IpcEvent, IpcServer,
    IpcStats,
};

#[path = "ipc_server/shm.rs"]
mod shm;

const WAIT: Duration = Duration::from_secs(10);

type Call = Box<dyn FnOnce(&mut IpcServer) + Send>;
type Responder = Box<dyn FnMut(ConnId, &[u8]) -> Option<Vec<u8>> + Send>;

/// A server on its own thread: requests are answered by a responder on that thread, every
/// IpcEvent is forwarded to the test, and closures run on the server between polls.
struct Server {
    calls: mpsc::Sender<Option<Call>>,
    events: mpsc::Receiver<IpcEvent>,
    thread: Option<JoinHandle<IpcStats>>,
    service: String,
    /// Time the test has moved the server's clock forward (µs): timeouts and retries are
    /// reached by advancing it, not by sleeping.
    skew: Arc<AtomicU64>,
}

fn unique_service() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "totemd-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A 24-byte-header message: `id`, `size` = the whole length, `error`, then `body`.
fn response_msg(id: i32, error: CsError, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = 24 + body.len();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(len as i32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&i32::from(error).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(body);
    out
}

/// A 16-byte-header request with `body`.
fn request_msg(id: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = 16 + body.len();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(len as i32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(body);
    out
}

/// Answers every request except id 2 (CPG MCAST) with its id and body echoed back.
fn echo() -> Responder {
    Box::new(|_, req: &[u8]| {
        let h = RequestHeader::peek(req).ok()?;
        (h.id != 2).then(|| response_msg(h.id, CsError::Ok, &req[16..]))
    })
}

impl Server {
    fn start(cfg: IpcConfig, mut responder: Responder) -> Server {
        let service = cfg.services[0].clone();
        let (call_tx, call_rx) = mpsc::channel::<Option<Call>>();
        let (ev_tx, ev_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let skew = Arc::new(AtomicU64::new(0));
        let thread_skew = skew.clone();
        let thread = std::thread::spawn(move || {
            let clock = totemd::runtime::Clock::new();
            let now = || {
                clock.now() + totem_srp::Duration::from_micros(thread_skew.load(Ordering::SeqCst))
            };
            let mut server = match IpcServer::new(cfg, now()) {
                Ok(s) => {
                    ready_tx.send(Ok(())).unwrap();
                    s
                }
                Err(e) => {
                    ready_tx.send(Err(e.to_string())).unwrap();
                    return IpcStats::default();
                }
            };
            let (mut fds, mut events) = (Vec::new(), Vec::new());
            loop {
                loop {
                    match call_rx.try_recv() {
                        Ok(Some(call)) => call(&mut server),
                        Ok(None) | Err(mpsc::TryRecvError::Disconnected) => return server.stats(),
                        Err(mpsc::TryRecvError::Empty) => break,
                    }
                }
                fds.clear();
                server.pollfds(&mut fds);
                // Short polls so that calls from the test run promptly.
                let timeout = server
                    .poll_timeout(now())
                    .map_or(Duration::from_millis(5), |t| {
                        t.min(Duration::from_millis(5))
                    });
                totemd::ipc::poll(&mut fds, Some(timeout)).unwrap();
                server.process_ready(now(), &fds, &mut events);
                for event in events.drain(..) {
                    if let IpcEvent::Request { conn, bytes } = &event {
                        if let Some(response) = responder(*conn, bytes) {
                            // A responder answering a gone client is not the test's concern.
                            let _ = server.respond(*conn, &response);
                        }
                    }
                    let _ = ev_tx.send(event);
                }
            }
        });
        ready_rx.recv_timeout(WAIT).unwrap().expect("server starts");
        Server {
            calls: call_tx,
            events: ev_rx,
            thread: Some(thread),
            service,
            skew,
        }
    }

    /// Lets the server's loop turn twice more (each call is answered at the top of a
    /// turn). It bounds nothing by itself: a test that needs a state waits for it.
    fn settle(&self) {
        self.call(|_| ());
        self.call(|_| ());
    }

    /// The server's counters once `want` holds of them (within [`WAIT`]).
    fn wait_stats(&self, want: impl Fn(&IpcStats) -> bool, what: &str) -> IpcStats {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.call(|s| s.stats());
            if want(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {WAIT:?}: {stats:?}"
            );
            self.settle();
        }
    }

    /// Moves the server's clock forward by `by` and lets it act on it.
    fn advance(&self, by: Duration) {
        self.skew.fetch_add(by.as_micros() as u64, Ordering::SeqCst);
        self.settle();
    }

    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut IpcServer) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.calls
            .send(Some(Box::new(move |s: &mut IpcServer| {
                let _ = tx.send(f(s));
            })))
            .unwrap();
        rx.recv_timeout(WAIT).expect("server thread answers")
    }

    /// The next event that `pick` accepts; others are dropped.
    fn wait_for<T>(&self, mut pick: impl FnMut(&IpcEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.events.recv_timeout(left).expect("event in time");
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    }

    fn connected(&self) -> (ConnId, Creds) {
        self.wait_for(|e| match e {
            IpcEvent::Connected { conn, creds, .. } => Some((*conn, *creds)),
            _ => None,
        })
    }

    fn disconnected(&self, which: ConnId) -> DisconnectReason {
        self.wait_for(|e| match e {
            IpcEvent::Disconnected { conn, reason } if *conn == which => Some(reason.clone()),
            _ => None,
        })
    }

    fn info(&self, conn: ConnId) -> Option<totemd::ipc::ConnInfo> {
        self.call(move |s| s.conn_info(conn))
    }

    fn stop(mut self) -> IpcStats {
        let _ = self.calls.send(None);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.calls.send(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn config() -> IpcConfig {
    IpcConfig::new([unique_service()])
}

fn own_ids() -> (u32, u32) {
    let m = std::fs::metadata("/proc/self").unwrap();
    (m.uid(), m.gid())
}

/// Connects our client and returns it with the server's id for it.
fn connect(server: &Server) -> (SocketTransport, ConnId) {
    let client = SocketTransport::connect(&server.service, 1 << 20).expect("client connects");
    let (conn, _) = server.connected();
    (client, conn)
}

fn raw_sender(client: &SocketTransport) -> (UnixDatagram, SocketAddr) {
    let names = SocketNames {
        control: Vec::new(),
        base: client.socket_base().to_vec(),
    };
    let to = SocketAddr::from_abstract_name(abstract_name(&names.dgram(DgramEnd::ServerRequest)))
        .unwrap();
    (UnixDatagram::unbound().unwrap(), to)
}

#[test]
fn handshake_round_trips_and_ordered_events() {
    let server = Server::start(config(), echo());
    let mut client = SocketTransport::connect(&server.service, 1 << 20).unwrap();
    let (conn, creds) = server.connected();
    let (uid, gid) = own_ids();
    assert_eq!(
        creds,
        Creds {
            pid: std::process::id() as i32,
            uid,
            gid
        }
    );
    assert_eq!(client.max_msg_size(), 1 << 20);
    let server_creds = client
        .server_creds()
        .expect("SCM_CREDENTIALS on the response");
    assert_eq!(server_creds.pid, std::process::id() as i32);

    // The connection directory and control file as libqb lays them out (ipc.md §1.4).
    let info = server.info(conn).unwrap();
    assert_eq!(info.max_msg_size, 1 << 20);
    assert_eq!(info.service, server.service);
    let dir_name = info.dir.file_name().unwrap().to_str().unwrap().to_owned();
    let pid = std::process::id();
    assert!(
        dir_name.starts_with(&format!("qb-{pid}-{pid}-")) && dir_name.len() > 7,
        "{dir_name}"
    );
    assert_eq!(info.dir.parent(), Some(std::path::Path::new("/dev/shm")));
    assert_eq!(
        client.control_path(),
        info.dir.join(format!("qb-control-{}", server.service))
    );
    assert_eq!(
        client.socket_base(),
        info.dir
            .join(format!("qb-{}", server.service))
            .as_os_str()
            .as_encoded_bytes()
    );
    let dir_meta = std::fs::metadata(&info.dir).unwrap();
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o770);
    let control_meta = std::fs::metadata(client.control_path()).unwrap();
    assert_eq!(control_meta.len(), 24);
    assert_eq!(control_meta.permissions().mode() & 0o777, 0o600);
    assert_eq!((control_meta.uid(), control_meta.gid()), (uid, gid));

    // Requests and their responses, small and large (200 kB needs the raised buffers).
    for body in [Vec::new(), b"hello".to_vec(), vec![0x5a; 200_000]] {
        let response = client.request(&request_msg(4, &body)).unwrap();
        let h = ResponseHeader::peek(&response).unwrap();
        assert_eq!(
            (h.id, h.size as usize, h.error),
            (4, 24 + body.len(), CsError::Ok)
        );
        assert_eq!(&response[24..], &body[..]);
    }

    // 1000 events of 8 kB in one go. Our event socket and the client's are connected to
    // each other, so the kernel does not apply net.unix.max_dgram_qlen (ipc.md §2.7
    // expected it); what bounds the kernel queue is our send buffer (2 MiB with the
    // 1 MiB SO_SNDBUFFORCE). 8 MB cannot fit: most events wait in the server's FIFO, and
    // all arrive, in order.
    server.call(move |s| {
        let mut body = vec![0u8; 8192];
        for seq in 0u64..1000 {
            body[..8].copy_from_slice(&seq.to_le_bytes());
            s.send_event(conn, &response_msg(5, CsError::Ok, &body))
                .unwrap();
        }
    });
    assert!(server.info(conn).unwrap().queued_msgs > 0);
    for seq in 0u64..1000 {
        let event = client.recv_event(Some(WAIT)).unwrap().expect("event");
        assert_eq!(event.len(), 24 + 8192);
        assert_eq!(event[24..32], seq.to_le_bytes());
    }
    assert_eq!(client.recv_event(Some(Duration::ZERO)).unwrap(), None);
    assert_eq!(server.info(conn).unwrap().queued_msgs, 0);

    // A clean client disconnect: the server sees the hangup and the directory is gone.
    client.disconnect();
    assert_eq!(server.disconnected(conn), DisconnectReason::Hangup);
    assert!(!info.dir.exists());
    let stats = server.stop();
    assert_eq!(
        (
            stats.accepted,
            stats.requests,
            stats.responses,
            stats.events,
            stats.disconnected,
            stats.connections
        ),
        (1, 3, 3, 1000, 1, 0)
    );
}

#[test]
fn one_response_per_request_and_none_for_mcast() {
    let server = Server::start(config(), echo());
    let (mut client, conn) = connect(&server);
    // An MCAST-style request gets no response; the next call still gets its own.
    client.send(&request_msg(2, b"mcast")).unwrap();
    let response = client.request(&request_msg(7, b"iter")).unwrap();
    assert_eq!(ResponseHeader::peek(&response).unwrap().id, 7);
    assert_eq!(&response[24..], b"iter");
    // Both requests reached the server, in order.
    let ids: Vec<i32> = (0..2)
        .map(|_| {
            server.wait_for(|e| match e {
                IpcEvent::Request { bytes, .. } => Some(RequestHeader::peek(bytes).unwrap().id),
                _ => None,
            })
        })
        .collect();
    assert_eq!(ids, [2, 7]);
    // The server cannot tell MCAST from other requests, but it refuses a response to a
    // connection with no request at all: it would shift every later answer.
    let (_quiet, quiet_conn) = connect(&server);
    let extra = server.call(move |s| s.respond(quiet_conn, &response_msg(0, CsError::Ok, &[])));
    assert!(matches!(extra, Err(IpcError::NoRequestPending(c)) if c == quiet_conn));
    // Malformed outgoing messages are refused without sending anything.
    let bad = server.call(move |s| {
        let mut m = response_msg(5, CsError::Ok, b"x");
        m[8] = 99;
        s.send_event(conn, &m)
    });
    assert!(matches!(bad, Err(IpcError::InvalidMessage(_))));
    assert_eq!(
        client.recv_event(Some(Duration::from_millis(50))).unwrap(),
        None
    );
    // Ids are never reused: a finished connection's id stays unknown.
    let (other, other_conn) = connect(&server);
    drop(other);
    assert_eq!(server.disconnected(other_conn), DisconnectReason::Hangup);
    let gone = server.call(move |s| s.send_event(other_conn, &response_msg(5, CsError::Ok, &[])));
    assert!(matches!(gone, Err(IpcError::NotConnected(c)) if c == other_conn));
    assert!(server.info(other_conn).is_none());
}

#[test]
fn event_queue_overflow_drops_only_that_client() {
    let mut cfg = config();
    cfg.queue_max_msgs = 32;
    let server = Server::start(cfg, echo());
    let (mut slow, slow_conn) = connect(&server);
    let (mut good, good_conn) = connect(&server);
    let slow_dir = server.info(slow_conn).unwrap().dir;

    // The slow client reads nothing: the kernel takes what fits in our 2 MiB send buffer
    // (about 30 events of 64 kB), our FIFO 32 more, and the next one overflows.
    let sent = server.call(move |s| {
        let mut sent = 0;
        let mut body = vec![0u8; 65536];
        for seq in 0u64..1000 {
            body[..8].copy_from_slice(&seq.to_le_bytes());
            match s.send_event(slow_conn, &response_msg(5, CsError::Ok, &body)) {
                Ok(()) => sent += 1,
                Err(IpcError::Disconnected(c)) if c == slow_conn => return Ok(sent),
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("never overflowed".into())
    });
    let sent = sent.unwrap();
    assert!(
        (32..200).contains(&sent),
        "{sent} events before the overflow"
    );
    assert_eq!(
        server.disconnected(slow_conn),
        DisconnectReason::QueueOverflow
    );
    assert!(!slow_dir.exists());

    // The slow client gets what the kernel held, in order, then learns it was dropped.
    let mut got = 0u64;
    let end = loop {
        match slow.recv_event(Some(WAIT)) {
            Ok(Some(e)) => {
                assert_eq!(e[24..32], got.to_le_bytes());
                got += 1;
            }
            Ok(None) => panic!("neither event nor disconnection"),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, TransportError::Disconnected(_)), "{end}");
    assert!(got >= 1 && got < sent, "{got} of {sent}");
    assert!(matches!(
        slow.request(&request_msg(4, &[])),
        Err(TransportError::Disconnected(_))
    ));

    // The other client never noticed.
    let response = good.request(&request_msg(4, b"still here")).unwrap();
    assert_eq!(&response[24..], b"still here");
    server.call(move |s| {
        s.send_event(good_conn, &response_msg(5, CsError::Ok, b"ev"))
            .unwrap()
    });
    assert_eq!(&good.recv_event(Some(WAIT)).unwrap().unwrap()[24..], b"ev");
    let stats = server.stop();
    assert_eq!((stats.overflows, stats.disconnected), (1, 1));
}

#[test]
fn malformed_requests_drop_only_their_client() {
    let mut cfg = config();
    cfg.min_msg_size = 65536;
    cfg.max_msg_size = 65536;
    let server = Server::start(cfg, echo());
    let (mut good, _) = connect(&server);
    assert_eq!(good.max_msg_size(), 65536);

    let mut oversize = request_msg(4, &vec![0; 65536 + 1 - 16]);
    oversize.truncate(65537);
    let mut bad_size = request_msg(4, &[]);
    bad_size[8] = 99;
    for (what, datagram, expect) in [
        ("garbage", b"hello".to_vec(), "shorter"),
        ("empty", Vec::new(), "shorter"),
        ("size field", bad_size, "size field"),
        ("oversize", oversize, "maximum"),
        ("setup id", request_msg(-1, &[]), "setup-level"),
    ] {
        let (mut victim, conn) = connect(&server);
        let (raw, to) = raw_sender(&victim);
        raw.send_to_addr(&datagram, &to).unwrap();
        match server.disconnected(conn) {
            DisconnectReason::BadRequest(why) => assert!(why.contains(expect), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(
            matches!(
                victim.request(&request_msg(4, &[])),
                Err(TransportError::Disconnected(_))
            ),
            "{what}"
        );
        // The well-behaved client is untouched.
        let response = good.request(&request_msg(4, what.as_bytes())).unwrap();
        assert_eq!(&response[24..], what.as_bytes());
    }
    // QB_IPC_MSG_DISCONNECT (-3) is a polite way out, not an error.
    let (victim, conn) = connect(&server);
    let (raw, to) = raw_sender(&victim);
    raw.send_to_addr(&request_msg(-3, &[]), &to).unwrap();
    assert_eq!(server.disconnected(conn), DisconnectReason::ClientRequest);
    let stats = server.stop();
    assert_eq!(stats.bad_requests, 5);
}

#[test]
fn accept_policy_refuses_with_eacces() {
    let (uid, gid) = own_ids();
    let mut cfg = config();
    cfg.trust_root = false;
    cfg.allowed_uids = vec![uid.wrapping_add(1)];
    let server = Server::start(cfg, echo());
    match SocketTransport::connect(&server.service, 1 << 20) {
        Err(TransportError::Refused(errno)) => assert_eq!(errno, libc::EACCES),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    }
    let stats = server.stop();
    assert_eq!(
        (stats.refused, stats.accepted, stats.setup_failed),
        (1, 0, 0)
    );

    // The same client is welcome once its primary gid is on the list.
    let mut cfg = config();
    cfg.trust_root = false;
    cfg.allowed_gids = vec![gid];
    let server = Server::start(cfg, echo());
    let (mut client, _) = connect(&server);
    assert!(client.request(&request_msg(4, &[])).is_ok());
}

// Reference: exec/ipc_glue.c cs_ipcs_connection_accept: -EAGAIN while
// ipc_allow_connections is 0 (ipc.md §3.2 step 1), checked before the credentials.
#[test]
fn connections_are_refused_with_eagain_until_allowed() {
    let server = Server::start(config(), echo());
    server.call(|s| s.set_allow_connections(false));
    match SocketTransport::connect(&server.service, 1 << 20) {
        Err(TransportError::Refused(errno)) => assert_eq!(errno, libc::EAGAIN),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    }
    server.call(|s| s.set_allow_connections(true));
    let (mut client, _) = connect(&server);
    assert!(client.request(&request_msg(4, &[])).is_ok());
    let stats = server.stop();
    assert_eq!((stats.refused, stats.accepted), (1, 1));
}

/// A paused connection's requests stay in the kernel, in order, until it is resumed;
/// responses still go out meanwhile, and other connections are served.
#[test]
fn paused_requests_wait_in_order_until_resumed() {
    let server = Server::start(config(), echo());
    let (mut client, conn) = connect(&server);
    let (mut other, other_conn) = connect(&server);
    assert!(client.request(&request_msg(4, b"first")).is_ok());
    server.call(move |s| s.pause_requests(conn, true).unwrap());
    assert!(server.info(conn).unwrap().requests_paused);
    for i in 0..5u8 {
        client.send(&request_msg(2, &[i])).unwrap();
    }
    // Nothing of them is read while paused, through turns of the server's loop.
    server.settle();
    server.settle();
    assert_eq!(server.info(conn).unwrap().requests, 1);
    assert_eq!(&other.request(&request_msg(4, b"x")).unwrap()[24..], b"x");
    server.call(move |s| s.pause_requests(conn, false).unwrap());
    let mut got = Vec::new();
    while got.len() < 5 {
        got.push(server.wait_for(|e| match e {
            // The id-2 ones (the first request's event is still in the channel).
            IpcEvent::Request { conn: c, bytes } if *c == conn && bytes[0] == 2 => Some(bytes[16]),
            _ => None,
        }));
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(!server.info(conn).unwrap().requests_paused);
    drop(other);
    server.disconnected(other_conn);
    assert!(matches!(
        server.call(move |s| s.pause_requests(other_conn, true)),
        Err(IpcError::NotConnected(_))
    ));
}

#[test]
fn flow_control_reaches_the_client() {
    let server = Server::start(config(), echo());
    let (mut client, conn) = connect(&server);
    assert_eq!(client.flow_control(), ClientFlow::Open);
    let set = |fc| server.call(move |s| s.set_flow_control(conn, fc).unwrap());

    set(FlowControl::StopAll);
    assert_eq!(client.flow_control(), ClientFlow::StopAll);
    assert!(matches!(
        client.request(&request_msg(4, &[])),
        Err(TransportError::WouldBlock)
    ));
    assert!(matches!(
        client.send(&request_msg(2, &[])),
        Err(TransportError::WouldBlock)
    ));
    // The word in the file is libqb's value (qb_ipcs_request_rate_limit: OFF → 1).
    let mut word = [0u8; 4];
    let mut file = std::fs::File::open(client.control_path()).unwrap();
    file.read_exact(&mut word).unwrap();
    file.read_exact(&mut word).unwrap();
    assert_eq!(i32::from_ne_bytes(word), 1);

    set(FlowControl::StopMcast);
    assert_eq!(client.flow_control(), ClientFlow::StopMcast);
    assert!(client.request(&request_msg(4, &[])).is_ok());
    assert!(matches!(
        client.send(&request_msg(2, &[])),
        Err(TransportError::WouldBlock)
    ));

    set(FlowControl::Open);
    assert_eq!(client.flow_control(), ClientFlow::Open);
    client.send(&request_msg(2, &[])).unwrap();
    assert_eq!(server.info(conn).unwrap().flow_control, FlowControl::Open);
}

/// Raw connect to the listening socket, as libqb does it (padded abstract name).
fn raw_setup(service: &str) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(abstract_name(service.as_bytes())).unwrap();
    UnixStream::connect_addr(&addr).unwrap()
}

fn connection_request() -> Vec<u8> {
    let mut out = Vec::new();
    ConnectionRequest {
        header: RequestHeader { id: -1, size: 24 },
        max_msg_size: 1 << 20,
    }
    .emit(&mut out);
    out
}

#[test]
fn handshake_arriving_in_pieces() {
    let server = Server::start(config(), echo());
    let mut stream = raw_setup(&server.service);
    let request = connection_request();
    for piece in request.chunks(10) {
        stream.write_all(piece).unwrap();
        // The server gets turns between the pieces, so it reads them apart.
        server.settle();
    }
    let mut response = vec![0u8; 12328];
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.read_exact(&mut response).unwrap();
    let response = ConnectionResponse::parse(&response).unwrap();
    assert_eq!(response.refusal_errno(), None);
    assert_eq!(response.connection_type, IpcType::Socket);
    assert_eq!(response.max_msg_size, 1 << 20);
    let pid = std::process::id();
    let control = String::from_utf8(response.request.clone()).unwrap();
    let base = String::from_utf8(response.response.clone()).unwrap();
    assert!(
        control.starts_with(&format!("/dev/shm/qb-{pid}-{pid}-")),
        "{control}"
    );
    assert!(
        control.ends_with(&format!("/qb-control-{}", server.service)),
        "{control}"
    );
    assert_eq!(
        base,
        format!(
            "{}/qb-{}",
            control.rsplit_once('/').unwrap().0,
            server.service
        )
    );
    assert!(response.event.is_empty());
    let (conn, _) = server.connected();
    let dir = server.info(conn).unwrap().dir;
    assert!(dir.exists());
    // A client that goes away without ever touching its sockets or files.
    drop(stream);
    assert_eq!(server.disconnected(conn), DisconnectReason::Hangup);
    assert!(!dir.exists());
}

#[test]
fn bad_handshakes_are_closed_without_an_answer() {
    let mut cfg = config();
    cfg.setup_timeout = Duration::from_millis(200);
    let server = Server::start(cfg, echo());
    let eof = |mut s: UnixStream| {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).unwrap(), 0, "closed without a response");
    };
    // Not QB_IPC_MSG_AUTHENTICATE.
    let mut s = raw_setup(&server.service);
    let mut request = connection_request();
    request[0] = 5;
    s.write_all(&request).unwrap();
    eof(s);
    // Silent client: the setup timeout closes it, and not before.
    let silent = raw_setup(&server.service);
    server.settle();
    server.wait_stats(|st| st.in_setup == 1, "the silent client accepted");
    server.advance(Duration::from_millis(200));
    eof(silent);
    // Half a request, then gone.
    let mut s = raw_setup(&server.service);
    s.write_all(&connection_request()[..10]).unwrap();
    drop(s);
    let stats = server.wait_stats(|st| st.setup_failed == 3, "three failed setups");
    assert_eq!(
        (stats.setup_failed, stats.accepted, stats.in_setup),
        (3, 0, 0)
    );
}

#[test]
fn server_side_disconnect_is_seen_by_the_client() {
    let server = Server::start(config(), echo());
    let (mut client, conn) = connect(&server);
    let dir = server.info(conn).unwrap().dir;
    server.call(move |s| s.disconnect(conn).unwrap());
    assert_eq!(server.disconnected(conn), DisconnectReason::Server);
    assert!(!dir.exists());
    assert!(matches!(
        client.recv_event(Some(WAIT)),
        Err(TransportError::Disconnected(_))
    ));
    assert!(!client.is_connected());
    assert!(matches!(
        client.request(&request_msg(4, &[])),
        Err(TransportError::Disconnected(_))
    ));
    let again = server.call(move |s| s.disconnect(conn));
    assert!(matches!(again, Err(IpcError::NotConnected(_))));
}

#[test]
fn events_wait_for_a_client_that_binds_late() {
    let mut cfg = config();
    // Up to a second for the late client (it binds after ~120 ms).
    cfg.connect_retry_interval = Duration::from_millis(50);
    cfg.connect_retries = 20;
    let server = Server::start(cfg, echo());

    // A hand-made client that takes its time to bind its event socket.
    let mut stream = raw_setup(&server.service);
    stream.write_all(&connection_request()).unwrap();
    let mut response = vec![0u8; 12328];
    stream.read_exact(&mut response).unwrap();
    let response = ConnectionResponse::parse(&response).unwrap();
    let (conn, _) = server.connected();
    let names = SocketNames {
        control: response.request.clone(),
        base: response.response.clone(),
    };
    server.call(move |s| {
        s.send_event(conn, &response_msg(5, CsError::Ok, b"early"))
            .unwrap()
    });
    // The server has tried to reach the unbound event socket, and tries again after the
    // retry interval: bound by then, the client gets the event.
    server.settle();
    server.advance(Duration::from_millis(100));
    let addr =
        |end: DgramEnd| SocketAddr::from_abstract_name(abstract_name(&names.dgram(end))).unwrap();
    let event = UnixDatagram::bind_addr(&addr(DgramEnd::ClientEvent)).unwrap();
    event.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = event.recv(&mut buf).unwrap();
    assert_eq!(&buf[24..n], b"early");

    // One that never binds is given up after the retries.
    let mut stream2 = raw_setup(&server.service);
    stream2.write_all(&connection_request()).unwrap();
    let mut response2 = vec![0u8; 12328];
    stream2.read_exact(&mut response2).unwrap();
    let (conn2, _) = server.connected();
    server.call(move |s| {
        s.send_event(conn2, &response_msg(5, CsError::Ok, b"lost"))
            .unwrap()
    });
    match server.disconnected(conn2) {
        DisconnectReason::PeerUnreachable(_) => {}
        other => panic!("{other:?}"),
    }
    drop(stream);
}

#[test]
fn connection_limit_closes_newcomers() {
    let mut cfg = config();
    cfg.max_connections = 1;
    let server = Server::start(cfg, echo());
    let (mut first, _) = connect(&server);
    // Closed at once: the client sees EOF or EPIPE, depending on timing.
    match SocketTransport::connect(&server.service, 1 << 20) {
        Err(TransportError::Disconnected(_)) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("over the limit"),
    }
    assert!(first.request(&request_msg(4, &[])).is_ok());
    assert_eq!(server.stop().setup_failed, 1);
}

/// Driving the server by hand: one process_ready hands out at most `wakeup_max_bytes` of
/// requests; the rest stays in the kernel and comes with the next calls, in order.
#[test]
fn one_call_hands_out_a_bounded_amount() {
    let mut cfg = config();
    cfg.min_msg_size = 65536;
    cfg.max_msg_size = 65536;
    cfg.wakeup_max_bytes = 65536;
    let service = cfg.services[0].clone();
    let clock = totemd::runtime::Clock::new();
    let mut server = IpcServer::new(cfg, clock.now()).unwrap();
    let client = std::thread::spawn(move || SocketTransport::connect(&service, 1 << 20));
    let (mut fds, mut events) = (Vec::new(), Vec::new());
    let step = |server: &mut IpcServer, fds: &mut Vec<libc::pollfd>, events: &mut Vec<IpcEvent>| {
        fds.clear();
        server.pollfds(fds);
        totemd::ipc::poll(fds, Some(Duration::from_millis(20))).unwrap();
        server.process_ready(clock.now(), fds, events);
    };
    let deadline = Instant::now() + WAIT;
    while !events
        .iter()
        .any(|e| matches!(e, IpcEvent::Connected { .. }))
    {
        assert!(Instant::now() < deadline, "no connection");
        step(&mut server, &mut fds, &mut events);
    }
    let mut client = client.join().unwrap().unwrap();
    for i in 0u8..4 {
        client.send(&request_msg(2, &vec![i; 40_000])).unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 4 {
        assert!(Instant::now() < deadline, "requests missing");
        events.clear();
        step(&mut server, &mut fds, &mut events);
        let got: Vec<u8> = events
            .iter()
            .filter_map(|e| match e {
                IpcEvent::Request { bytes, .. } => Some(bytes[16]),
                _ => None,
            })
            .collect();
        assert!(got.len() <= 1, "{} requests in one call", got.len());
        seen.extend(got);
    }
    assert_eq!(seen, [0, 1, 2, 3]);
}

/// libqb's filesystem mode (/etc/libqb/force-filesystem-sockets): the listener is a file
/// in the socket directory, mode 0777, removed when the server goes; the datagram
/// sockets stay abstract because their names start with `/` (ipc.md §1.1, §1.4).
#[test]
fn filesystem_mode_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.filesystem_sockets = Some(true);
    cfg.socket_dir = dir.path().to_owned();
    let path = dir.path().join(&cfg.services[0]);
    let server = Server::start(cfg, echo());
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o777);
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.write_all(&connection_request()).unwrap();
    let mut response = vec![0u8; 12328];
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.read_exact(&mut response).unwrap();
    let response = ConnectionResponse::parse(&response).unwrap();
    assert_eq!(response.refusal_errno(), None);
    let names = SocketNames {
        control: response.request.clone(),
        base: response.response.clone(),
    };
    // The request socket is abstract: a datagram to the abstract name reaches it.
    let (conn, _) = server.connected();
    let raw = UnixDatagram::unbound().unwrap();
    let to = SocketAddr::from_abstract_name(abstract_name(&names.dgram(DgramEnd::ServerRequest)))
        .unwrap();
    raw.send_to_addr(&request_msg(2, b"x"), &to).unwrap();
    server.wait_for(|e| matches!(e, IpcEvent::Request { conn: c, .. } if *c == conn).then_some(()));
    drop(stream);
    assert_eq!(server.disconnected(conn), DisconnectReason::Hangup);
    server.stop();
    assert!(!path.exists());
}

#[test]
fn listening_twice_on_a_name_fails() {
    let cfg = config();
    let now = totem_srp::Instant::ZERO;
    let first = IpcServer::new(cfg.clone(), now).unwrap();
    let second = IpcServer::new(cfg, now);
    assert!(second.is_err());
    drop(first);
}

/// Does the real libcpg.so.4 (libqb 2.0.6) complete the handshake with us, read a
/// response, take an event through cpg_dispatch, and obey our flow control?
#[test]
fn real_libcpg_against_our_server() {
    let cpg = match libcpg::Cpg::open() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED real_libcpg_against_our_server: {why}");
            return;
        }
    };
    // libcpg always connects to "cpg". A thread of our own moved into a new network
    // namespace (root only) cannot clash with a corosync on the host; threads it starts
    // inherit the namespace.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let in_netns = libcpg::unshare_netns();
        let _ = tx.send(libcpg_session(&cpg, in_netns));
    });
    match rx
        .recv_timeout(Duration::from_secs(60))
        .expect("libcpg session ends")
    {
        Ok(()) => {}
        Err(Skip(why)) => eprintln!("SKIPPED real_libcpg_against_our_server: {why}"),
    }
}

struct Skip(String);

fn libcpg_session(cpg: &libcpg::Cpg, in_netns: bool) -> Result<(), Skip> {
    use totem_wire::exec::cpg::{ConfchgReason, CpgName};
    use totem_wire::ipc::cpg::{CpgAddress, CpgEvent, CpgRequest, CpgResponse};
    const NODEID: u32 = 0x0102_0304;

    let mut cfg = IpcConfig::new(["cpg"]);
    cfg.filesystem_sockets = Some(false);
    if IpcServer::new(cfg.clone(), totem_srp::Instant::ZERO).is_err() {
        return Err(Skip(format!(
            "\\0cpg is taken in this network namespace (own namespace: {in_netns})"
        )));
    }
    let responder: Responder = Box::new(|_, bytes: &[u8]| {
        let reply = match CpgRequest::parse(bytes).ok()? {
            CpgRequest::LocalGet { .. } => CpgResponse::LocalGet {
                header: ResponseHeader {
                    id: 7,
                    size: 32,
                    error: CsError::Ok,
                },
                local_nodeid: NODEID,
            },
            CpgRequest::Finalize { .. } => CpgResponse::Status {
                header: ResponseHeader {
                    id: 12,
                    size: 24,
                    error: CsError::Ok,
                },
            },
            _ => return None,
        };
        let mut out = Vec::new();
        reply.emit(&mut out);
        Some(out)
    });
    let server = Server::start(cfg, responder);

    let handle = cpg.initialize().expect("cpg_initialize");
    let (conn, creds) = server.connected();
    assert_eq!(creds.pid, std::process::id() as i32);
    let dir = server.info(conn).unwrap().dir;
    assert_eq!(cpg.local_get(handle), Ok(NODEID));

    // A CONFCHG event, dispatched by libcpg to its callback.
    let group = CpgName::new(b"libcpg-test").unwrap();
    let me = CpgAddress {
        nodeid: NODEID,
        pid: std::process::id(),
        reason: ConfchgReason::Join,
    };
    let event = CpgEvent::Confchg {
        header: ResponseHeader {
            id: 4,
            // CONFCHG: 184 fixed bytes and two 24-byte addresses (ipc.md §4.5).
            size: 184 + 2 * 24,
            error: CsError::Ok,
        },
        group,
        members: vec![CpgAddress {
            reason: ConfchgReason::Undefined,
            ..me
        }],
        left: Vec::new(),
        joined: vec![me],
    };
    let mut bytes = Vec::new();
    event.emit(&mut bytes);
    server.call(move |s| s.send_event(conn, &bytes).unwrap());
    let fd = cpg.fd_get(handle).expect("cpg_fd_get");
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    assert_eq!(totemd::ipc::poll(&mut fds, Some(WAIT)).unwrap(), 1);
    assert_eq!(cpg.dispatch_all(handle), 1);
    assert_eq!(
        libcpg::last_confchg(),
        Some((
            "libcpg-test".to_owned(),
            1,
            0,
            1,
            NODEID,
            std::process::id()
        ))
    );

    // Flow control: libqb refuses before sending (CS_ERR_TRY_AGAIN = 6), then goes on.
    server.call(move |s| s.set_flow_control(conn, FlowControl::StopAll).unwrap());
    assert_eq!(cpg.local_get(handle), Err(6));
    server.call(move |s| s.set_flow_control(conn, FlowControl::Open).unwrap());
    assert_eq!(cpg.local_get(handle), Ok(NODEID));

    assert_eq!(cpg.finalize(handle), 1);
    assert_eq!(server.disconnected(conn), DisconnectReason::Hangup);
    assert!(!dir.exists());
    let stats = server.stop();
    assert_eq!((stats.requests, stats.responses, stats.events), (3, 3, 1));
    Ok(())
}

/// libcpg.so.4, loaded at run time so the workspace builds without corosync; signatures
/// from corosync 3.1.7's cpg.h and corotypes.h.
mod libcpg {
    #![allow(unsafe_code)]

    use std::ffi::{c_int, c_void, CStr};
    use std::sync::Mutex;

    type Handle = u64;

    #[repr(C)]
    struct CpgName {
        length: u32,
        value: [u8; 128],
    }

    #[repr(C)]
    struct CpgAddress {
        nodeid: u32,
        pid: u32,
        reason: u32,
    }

    type DeliverFn = extern "C" fn(Handle, *const CpgName, u32, u32, *mut c_void, usize);
    type ConfchgFn = extern "C" fn(
        Handle,
        *const CpgName,
        *const CpgAddress,
        usize,
        *const CpgAddress,
        usize,
        *const CpgAddress,
        usize,
    );

    #[repr(C)]
    struct Callbacks {
        deliver: Option<DeliverFn>,
        confchg: Option<ConfchgFn>,
    }

    /// (group, members, left, joined, first joined nodeid, first joined pid).
    type Confchg = (String, usize, usize, usize, u32, u32);
    static LAST_CONFCHG: Mutex<Option<Confchg>> = Mutex::new(None);

    pub(super) fn last_confchg() -> Option<Confchg> {
        LAST_CONFCHG.lock().unwrap().clone()
    }

    extern "C" fn on_confchg(
        _: Handle,
        group: *const CpgName,
        _: *const CpgAddress,
        members: usize,
        _: *const CpgAddress,
        left: usize,
        joined_list: *const CpgAddress,
        joined: usize,
    ) {
        // SAFETY: libcpg passes pointers into its dispatch buffer, valid during the
        // callback: the group name, and `joined` entries at `joined_list` (checked > 0).
        let (name, first) = unsafe {
            let g = &*group;
            let len = (g.length as usize).min(128);
            let name = String::from_utf8_lossy(&g.value[..len]).into_owned();
            let first = if joined > 0 && !joined_list.is_null() {
                let a = &*joined_list;
                (a.nodeid, a.pid)
            } else {
                (0, 0)
            };
            (name, first)
        };
        *LAST_CONFCHG.lock().unwrap() = Some((name, members, left, joined, first.0, first.1));
    }

    type InitializeFn = unsafe extern "C" fn(*mut Handle, *mut Callbacks) -> c_int;
    type LocalGetFn = unsafe extern "C" fn(Handle, *mut u32) -> c_int;
    type FdGetFn = unsafe extern "C" fn(Handle, *mut c_int) -> c_int;
    type DispatchFn = unsafe extern "C" fn(Handle, c_int) -> c_int;
    type FinalizeFn = unsafe extern "C" fn(Handle) -> c_int;

    pub(super) struct Cpg {
        initialize: InitializeFn,
        local_get: LocalGetFn,
        fd_get: FdGetFn,
        dispatch: DispatchFn,
        finalize: FinalizeFn,
    }

    // SAFETY: plain function pointers into a library that stays loaded (never dlclosed).
    unsafe impl Send for Cpg {}

    const CS_OK: c_int = 1;
    const CS_DISPATCH_ALL: c_int = 2;

    fn dlerror() -> String {
        // SAFETY: dlerror returns null or a valid C string owned by libdl.
        unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown dl error".into()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        }
    }

    impl Cpg {
        pub(super) fn open() -> Result<Cpg, String> {
            // SAFETY: dlopen with a valid C string; the handle is never closed, so the
            // symbols stay valid for the life of the process.
            let lib = unsafe { libc::dlopen(c"libcpg.so.4".as_ptr(), libc::RTLD_NOW) };
            if lib.is_null() {
                return Err(format!("libcpg.so.4 is not installed ({})", dlerror()));
            }
            let sym = |name: &CStr| -> Result<*mut c_void, String> {
                // SAFETY: `lib` is a live handle and `name` a valid C string.
                let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
                if p.is_null() {
                    Err(format!("{name:?}: {}", dlerror()))
                } else {
                    Ok(p)
                }
            };
            // SAFETY: each symbol is the libcpg function of that name, whose C signature
            // (cpg.h, corosync 3.1.7) is the one it is transmuted to.
            unsafe {
                Ok(Cpg {
                    initialize: std::mem::transmute::<*mut c_void, InitializeFn>(sym(
                        c"cpg_initialize",
                    )?),
                    local_get: std::mem::transmute::<*mut c_void, LocalGetFn>(sym(
                        c"cpg_local_get",
                    )?),
                    fd_get: std::mem::transmute::<*mut c_void, FdGetFn>(sym(c"cpg_fd_get")?),
                    dispatch: std::mem::transmute::<*mut c_void, DispatchFn>(sym(c"cpg_dispatch")?),
                    finalize: std::mem::transmute::<*mut c_void, FinalizeFn>(sym(c"cpg_finalize")?),
                })
            }
        }

        pub(super) fn initialize(&self) -> Result<Handle, c_int> {
            let mut handle: Handle = 0;
            // libcpg copies the callbacks struct during the call.
            let mut callbacks = Callbacks {
                deliver: None,
                confchg: Some(on_confchg),
            };
            // SAFETY: valid out-pointer and callbacks struct for the call's duration.
            let rc = unsafe { (self.initialize)(&mut handle, &mut callbacks) };
            if rc == CS_OK {
                Ok(handle)
            } else {
                Err(rc)
            }
        }

        pub(super) fn local_get(&self, handle: Handle) -> Result<u32, c_int> {
            let mut nodeid = 0u32;
            // SAFETY: valid out-pointer; libcpg checks the handle.
            let rc = unsafe { (self.local_get)(handle, &mut nodeid) };
            if rc == CS_OK {
                Ok(nodeid)
            } else {
                Err(rc)
            }
        }

        pub(super) fn fd_get(&self, handle: Handle) -> Result<c_int, c_int> {
            let mut fd: c_int = -1;
            // SAFETY: valid out-pointer; libcpg checks the handle.
            let rc = unsafe { (self.fd_get)(handle, &mut fd) };
            if rc == CS_OK {
                Ok(fd)
            } else {
                Err(rc)
            }
        }

        pub(super) fn dispatch_all(&self, handle: Handle) -> c_int {
            // SAFETY: libcpg checks the handle; the callback above matches its type.
            unsafe { (self.dispatch)(handle, CS_DISPATCH_ALL) }
        }

        pub(super) fn finalize(&self, handle: Handle) -> c_int {
            // SAFETY: libcpg checks the handle.
            unsafe { (self.finalize)(handle) }
        }
    }

    /// Moves the calling thread into a new network namespace (needs CAP_SYS_ADMIN);
    /// false when that is not allowed, and the thread stays where it was.
    pub(super) fn unshare_netns() -> bool {
        // SAFETY: unshare(CLONE_NEWNET) affects only the calling thread's namespaces.
        unsafe { libc::unshare(libc::CLONE_NEWNET) == 0 }
    }
}
