//! The shm-type client (`totem_client::shm`, reached through `totem_client::connect`)
//! against a hand-made shm server built on `totem_unix::shm::ShmRing` (ipc.md §1.6, §5.7),
//! and against the real corosync 3.1.7 in its default IPC type, in a network namespace of
//! its own.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    accept_request, listen, one_shot_server, request_message, response_message, unique_service,
    WAIT,
};
use totem_client::shm::ShmTransport;
use totem_client::{FlowControl, IpcTransport, Transport, TransportError};
use totem_unix::shm::ShmRing;
use totem_wire::ipc::setup::IpcType;
use totem_wire::ipc::shm::Ring;

const MAX: usize = 1 << 20;

/// The server end of one shm connection, made as libqb's `qb_ipcs_shm_connect` makes it:
/// three rings in a fresh directory under /dev/shm, named after the service.
struct ShmServer {
    stream: UnixStream,
    request: ShmRing,
    response: ShmRing,
    event: ShmRing,
    _dir: tempfile::TempDir,
}

/// Where the rings of a server for `service` live: `<dir>/qb-<ring>-<service>`.
fn ring_bases(dir: &std::path::Path, service: &str) -> [Vec<u8>; 3] {
    let mut description = dir.as_os_str().as_encoded_bytes().to_vec();
    description.extend_from_slice(b"/qb");
    Ring::ALL.map(|r| r.base_name(&description, service.as_bytes()))
}

impl ShmServer {
    /// Accepts one client, creates the rings and answers the handshake with them.
    fn accept(listener: &UnixListener, service: &str) -> ShmServer {
        let mut stream = accept_request(listener);
        let dir = tempfile::Builder::new()
            .prefix("qb-shm-test-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let bases = ring_bases(dir.path(), service);
        let [request, response, event] = bases
            .clone()
            .map(|b| ShmRing::create(&b, MAX, None, 0o600).unwrap());
        stream
            .write_all(&common::setup_response(
                0,
                IpcType::Shm,
                [&bases[0], &bases[1], &bases[2]],
            ))
            .unwrap();
        ShmServer {
            stream,
            request,
            response,
            event,
            _dir: dir,
        }
    }

    /// Waits until the client has opened all three rings (each count at 2): a server
    /// that answered the handshake may otherwise act before the client holds the rings.
    fn wait_for_client(&self) {
        let deadline = Instant::now() + WAIT;
        while [&self.request, &self.response, &self.event]
            .iter()
            .any(|r| r.ref_count() != 2)
        {
            assert!(
                Instant::now() < deadline,
                "the client never opened the rings"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// One request: its notification byte (the low byte of its length), then the chunk.
    fn recv_request(&mut self) -> Vec<u8> {
        let mut byte = [0u8; 1];
        self.stream.read_exact(&mut byte).unwrap();
        let mut out = Vec::new();
        assert!(
            self.request.try_read(&mut out).unwrap(),
            "a notification byte without a request chunk"
        );
        assert_eq!(byte[0], out.len() as u8, "notification byte");
        out
    }

    /// A response: a chunk in the response ring, no byte.
    fn respond(&mut self, msg: &[u8]) {
        self.response.write(&[msg]).unwrap();
    }

    /// An event: a chunk in the event ring, then one 0 byte on the setup stream.
    fn send_event(&mut self, msg: &[u8]) {
        self.event.write(&[msg]).unwrap();
        self.stream.write_all(&[0]).unwrap();
    }

    fn set_flow_control(&self, value: i32) {
        self.request
            .user_word()
            .unwrap()
            .store(value, std::sync::atomic::Ordering::SeqCst);
    }

    /// What libqb's server leaves behind when it ends a connection: references dropped
    /// (`qb_rb_lastref_and_ret` + `qb_rb_close`), files removed, stream closed.
    fn hang_up(self) {
        for ring in [&self.request, &self.response, &self.event] {
            ring.set_ref_count(0);
            ring.unlink();
        }
        drop(self.stream);
    }
}

/// A server thread: binds `service` now, then accepts one client and runs `script`.
fn serve<R: Send + 'static>(
    service: &str,
    script: impl FnOnce(ShmServer) -> R + Send + 'static,
) -> std::thread::JoinHandle<R> {
    let listener = listen(service);
    let service = service.to_owned();
    std::thread::spawn(move || script(ShmServer::accept(&listener, &service)))
}

fn connect_shm(service: &str) -> ShmTransport {
    match totem_client::connect(service, MAX).unwrap() {
        IpcTransport::Shm(t) => t,
        IpcTransport::Socket(_) => panic!("the server chose shm"),
    }
}

/// A request with `body` after the 16-byte header (`size` counts both).
fn request_with_body(id: i32, body: &[u8]) -> Vec<u8> {
    let mut m = request_message(id);
    m.extend_from_slice(body);
    let size = m.len() as i32;
    m[8..12].copy_from_slice(&size.to_le_bytes());
    m
}

#[test]
fn full_session_against_a_hand_made_shm_server() {
    let service = unique_service();
    let (step_tx, step_rx) = mpsc::channel::<&'static str>();
    let (fc_tx, fc_rx) = mpsc::channel::<()>();
    let server = serve(&service, move |mut s| {
        // Two requests, answered in order; lengths chosen so that the notification byte
        // is the low byte (300 → 44).
        let r = s.recv_request();
        assert_eq!(r, request_message(4));
        s.respond(&response_message(4, &42u32.to_le_bytes()));
        let r = s.recv_request();
        assert_eq!(r.len(), 300);
        s.respond(&response_message(5, &r[16..]));
        // Three events, in order.
        for i in 0..3u8 {
            s.send_event(&response_message(9, &[b'e', b'0' + i]));
        }
        // Flow control, step by step as the client asks.
        for fc in [1, 2] {
            assert_eq!(step_rx.recv_timeout(WAIT).unwrap(), "fc");
            s.set_flow_control(fc);
            fc_tx.send(()).unwrap();
        }
        // Under 2, requests still go through.
        let r = s.recv_request();
        s.respond(&response_message(r[0].into(), b""));
        assert_eq!(step_rx.recv_timeout(WAIT).unwrap(), "fc");
        s.set_flow_control(0);
        fc_tx.send(()).unwrap();
        // An MCAST-style send with no response.
        assert_eq!(s.recv_request(), request_with_body(6, b"mcast"));
        // Then the server goes away while the client waits for an event.
        assert_eq!(step_rx.recv_timeout(WAIT).unwrap(), "hang up");
        std::thread::sleep(Duration::from_millis(200));
        let paths: Vec<PathBuf> = [&s.request, &s.response, &s.event]
            .iter()
            .flat_map(|r| [r.header_path().to_owned(), r.data_path().to_owned()])
            .collect();
        s.hang_up();
        paths
    });

    let mut client = connect_shm(&service);
    assert_eq!(client.max_msg_size(), MAX);
    assert_eq!(client.ref_count(), Some(2));
    assert!(client
        .ring_base(Ring::Request)
        .ends_with(format!("/qb-request-{service}").as_bytes()));
    let creds = client.server_creds().expect("server credentials");
    assert_eq!(creds.pid, std::process::id() as i32);
    assert_eq!(client.flow_control(), FlowControl::Open);

    let reply = client.request(&request_message(4)).unwrap();
    assert_eq!(reply, response_message(4, &42u32.to_le_bytes()));
    let body: Vec<u8> = (0..284).map(|i| i as u8).collect();
    let reply = client.request(&request_with_body(5, &body)).unwrap();
    assert_eq!(reply, response_message(5, &body));

    // The event descriptor is the setup stream: readable while events are announced.
    assert!(client.event_fd().unwrap() >= 0);
    assert!(client.event_ready(Some(WAIT)).unwrap());
    for i in 0..3u8 {
        let event = client.recv_event(Some(WAIT)).unwrap().unwrap();
        assert_eq!(event, response_message(9, &[b'e', b'0' + i]));
    }
    assert_eq!(client.recv_event(Some(Duration::ZERO)).unwrap(), None);
    assert!(!client.event_ready(Some(Duration::ZERO)).unwrap());

    // Flow control 1: nothing goes out. 2: MCAST-style sends only are held back.
    step_tx.send("fc").unwrap();
    fc_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(client.flow_control(), FlowControl::StopAll);
    assert!(matches!(
        client.request(&request_message(7)),
        Err(TransportError::WouldBlock)
    ));
    assert!(matches!(
        client.send(&request_message(7)),
        Err(TransportError::WouldBlock)
    ));
    step_tx.send("fc").unwrap();
    fc_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(client.flow_control(), FlowControl::StopMcast);
    assert!(matches!(
        client.send(&request_message(7)),
        Err(TransportError::WouldBlock)
    ));
    assert_eq!(
        client.request(&request_message(8)).unwrap(),
        response_message(8, b"")
    );
    step_tx.send("fc").unwrap();
    fc_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(client.flow_control(), FlowControl::Open);

    // Requests the server would drop us for are refused locally; nothing goes out.
    let mut bad = request_message(4);
    bad[8] = 17;
    assert!(matches!(
        client.request(&bad),
        Err(TransportError::Protocol(_))
    ));
    assert!(matches!(
        client.send(&vec![0u8; MAX + 1]),
        Err(TransportError::TooLarge { .. })
    ));
    client.send(&request_with_body(6, b"mcast")).unwrap();

    // The server hangs up while we wait for an event without limit.
    step_tx.send("hang up").unwrap();
    let started = Instant::now();
    match client.recv_event(None) {
        Err(TransportError::Disconnected(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < WAIT);
    assert!(!client.is_connected());
    assert!(matches!(
        client.request(&request_message(4)),
        Err(TransportError::Disconnected(_))
    ));
    let paths = server.join().unwrap();
    drop(client);
    for p in paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn server_hangup_is_noticed_while_waiting_for_a_response() {
    let service = unique_service();
    let server = serve(&service, |mut s| {
        s.recv_request();
        // The client now waits on the response ring's semaphore.
        std::thread::sleep(Duration::from_millis(300));
        s.hang_up();
    });
    let mut client = connect_shm(&service);
    let started = Instant::now();
    match client.request(&request_message(4)) {
        Err(TransportError::Disconnected(why)) => assert!(why.contains("server"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Noticed within a slice or two of the semaphore wait, not libqb's 2 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.join().unwrap();
}

#[test]
fn events_announced_before_a_hangup_are_delivered_first() {
    let service = unique_service();
    let server = serve(&service, |mut s| {
        s.wait_for_client();
        s.send_event(&response_message(9, b"first"));
        s.send_event(&response_message(9, b"second"));
        s.hang_up();
    });
    let mut client = connect_shm(&service);
    server.join().unwrap();
    for body in [&b"first"[..], b"second"] {
        assert_eq!(
            client.recv_event(Some(WAIT)).unwrap().unwrap(),
            response_message(9, body)
        );
    }
    assert!(matches!(
        client.recv_event(Some(WAIT)),
        Err(TransportError::Disconnected(_))
    ));
}

/// `qb_ipc_shm_fc_get`: a request ring not held by exactly two ends is a disconnection,
/// even while the setup stream is still open.
#[test]
fn a_reference_count_other_than_two_is_a_disconnection() {
    let service = unique_service();
    let (tx, rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = serve(&service, move |s| {
        s.wait_for_client();
        s.request.set_ref_count(1);
        tx.send(()).unwrap();
        // Keep the stream open until the client has looked.
        done_rx.recv_timeout(WAIT).unwrap();
        s.hang_up();
    });
    let mut client = connect_shm(&service);
    rx.recv_timeout(WAIT).unwrap();
    assert_eq!(client.ref_count(), Some(1));
    match client.send(&request_message(4)) {
        Err(TransportError::Disconnected(why)) => assert!(why.contains("reference"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!client.is_connected());
    assert!(matches!(
        client.request(&request_message(4)),
        Err(TransportError::Disconnected(_))
    ));
    done_tx.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn a_response_timeout_leaves_the_connection_out_of_step() {
    let service = unique_service();
    let (tx, rx) = mpsc::channel::<()>();
    let server = serve(&service, move |mut s| {
        s.recv_request();
        rx.recv_timeout(WAIT).unwrap();
        s.hang_up();
    });
    let mut client = connect_shm(&service);
    client.set_request_timeout(Some(Duration::from_millis(150)));
    let started = Instant::now();
    match client.request(&request_message(4)) {
        Err(TransportError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(matches!(
        client.request(&request_message(4)),
        Err(TransportError::Protocol(_))
    ));
    tx.send(()).unwrap();
    server.join().unwrap();
}

/// `qb_ipcc_shm_disconnect` as the server sees it: the setup stream hangs up and every
/// ring's reference count drops to 0.
#[test]
fn disconnecting_releases_the_rings() {
    let service = unique_service();
    let (tx, rx) = mpsc::channel::<()>();
    let server = serve(&service, move |mut s| {
        s.wait_for_client();
        tx.send(()).unwrap();
        let mut rest = Vec::new();
        s.stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        // The stream closes first, the references go right after.
        let rings = [&s.request, &s.response, &s.event];
        let deadline = Instant::now() + WAIT;
        while rings.iter().any(|r| r.ref_count() != 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let counts = rings.map(ShmRing::ref_count);
        s.hang_up();
        counts
    });
    let client = connect_shm(&service);
    rx.recv_timeout(WAIT).unwrap();
    client.disconnect();
    assert_eq!(server.join().unwrap(), [0, 0, 0]);
}

#[test]
fn each_transport_alone_refuses_the_other_type() {
    let service = unique_service();
    let server = serve(&service, |s| {
        let mut rest = Vec::new();
        let _ = (&s.stream).read_to_end(&mut rest);
        s.hang_up();
    });
    match totem_client::socket::SocketTransport::connect(&service, MAX) {
        Err(TransportError::Protocol(why)) => assert!(why.contains("SHM"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the socket type accepted shm"),
    }
    server.join().unwrap();

    let service = unique_service();
    let server = one_shot_server(
        &service,
        Some(common::setup_response(
            0,
            IpcType::Socket,
            [b"/dev/shm/x/qb-control-cpg", b"/dev/shm/x/qb-cpg", b""],
        )),
    );
    match ShmTransport::connect(&service, MAX) {
        Err(TransportError::Protocol(why)) => assert!(why.contains("SOCKET"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the shm type accepted a socket server"),
    }
    server.join().unwrap();
}

// ---- real corosync ----------------------------------------------------------------------

/// Our client against the real corosync 3.1.7 in its default IPC type (`native`, which is
/// shm): handshake, LOCAL_GET (nodeid 1), FINALIZE, disconnect.
#[test]
fn real_corosync_in_default_shm_mode() {
    if let Some(out) =
        common::example_against_corosync("real_corosync_in_default_shm_mode", None, &[])
    {
        common::assert_local_get(&out, "SHM");
    }
}

/// The event and MCAST paths over shm against the real corosync: join, our confchg,
/// mcast, its delivery, leave, finalize.
#[test]
fn real_corosync_events_over_shm() {
    if let Some(out) = common::example_against_corosync(
        "real_corosync_events_over_shm",
        None,
        &["--join", "totem-shm-test"],
    ) {
        common::assert_lines(
            &out,
            &[
                "ipc_type=SHM",
                "join=CS_OK",
                "confchg members=1 joined=1",
                "mcast=CS_OK",
                "deliver=hello over libqb",
                "leave=CS_OK",
                "confchg left=1",
                "finalize=CS_OK",
            ],
        );
    }
}
