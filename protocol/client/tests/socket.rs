//! The socket-type client against hand-made servers (each setup outcome of ipc.md §1.2 and
//! §1.7) and against the real corosync 3.1.7 in socket mode, in a network namespace of its
//! own. totemd's server is tested against this client in protocol/daemon/tests.

mod common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{abstract_addr, accept_request, listen, one_shot_server, unique_service, WAIT};
use totem_client::socket::SocketTransport;
use totem_client::{FlowControl, IpcTransport, Transport, TransportError};
use totem_wire::ipc::setup::IpcType;
use totem_wire::ipc::socket::{
    DgramEnd, SocketNames, CONTROL_EVENT_SENT, CONTROL_FILE_LEN, CONTROL_REQUEST_FLOW_CONTROL,
    CONTROL_REQUEST_SENT,
};
use totem_wire::ipc::RequestHeader;

/// The socket type's connection response: control file and socket base.
fn setup_response(error: i32, kind: IpcType, names: Option<&SocketNames>) -> Vec<u8> {
    let (control, base) = names.map_or((&[][..], &[][..]), |n| (&n.control[..], &n.base[..]));
    common::setup_response(error, kind, [control, base, b""])
}

#[test]
fn nothing_listening_is_a_disconnection() {
    match SocketTransport::connect(&unique_service(), 1 << 20) {
        Err(TransportError::Disconnected(why)) => assert!(why.contains("connect"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to nobody"),
    }
}

#[test]
fn refusal_carries_the_servers_errno() {
    for errno in [libc::EACCES, libc::EAGAIN, libc::ENOSYS] {
        let service = unique_service();
        let server = one_shot_server(
            &service,
            Some(setup_response(-errno, IpcType::Socket, None)),
        );
        match SocketTransport::connect(&service, 1 << 20) {
            Err(TransportError::Refused(e)) => assert_eq!(e, errno),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        }
        server.join().unwrap();
    }
}

/// `SocketTransport` on its own speaks the socket type only and refuses a server that
/// chooses shm; the generic connect follows the server into shm (and so fails here only
/// because these rings do not exist; tests/shm.rs has servers that make them). Types libqb
/// clients never speak are refused by both.
#[test]
fn shm_type_is_refused_alone_and_followed_by_connect() {
    let names = SocketNames::new(b"/dev/shm/qb-1-2-3-abcdef/qb", b"cpg");
    let service = unique_service();
    let server = one_shot_server(
        &service,
        Some(setup_response(0, IpcType::Shm, Some(&names))),
    );
    match SocketTransport::connect(&service, 1 << 20) {
        Err(TransportError::Protocol(why)) => assert!(why.contains("SHM"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted an shm connection"),
    }
    server.join().unwrap();

    let service = unique_service();
    let server = one_shot_server(
        &service,
        Some(setup_response(0, IpcType::Shm, Some(&names))),
    );
    match IpcTransport::connect(&service, 1 << 20) {
        // The shm type's part of the connect ran: it tried to open the request ring.
        Err(TransportError::Protocol(why)) => assert!(why.contains("Request ring"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened rings that do not exist"),
    }
    server.join().unwrap();

    for kind in [IpcType::PosixMq, IpcType::SysvMq, IpcType::Native] {
        let service = unique_service();
        let server = one_shot_server(&service, Some(setup_response(0, kind, Some(&names))));
        match totem_client::connect(&service, 1 << 20) {
            Err(TransportError::Protocol(why)) => assert!(why.contains(&kind.to_string()), "{why}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {kind}"),
        }
        server.join().unwrap();
    }
}

#[test]
fn server_closing_during_setup_or_staying_silent() {
    // libqb closes without an answer when it cannot authenticate the client.
    let service = unique_service();
    let server = one_shot_server(&service, None);
    match SocketTransport::connect(&service, 1 << 20) {
        Err(TransportError::Disconnected(why)) => assert!(why.contains("during setup"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    }
    server.join().unwrap();

    // A server that takes the request and never answers: our setup timeout ends it.
    let service = unique_service();
    let listener = listen(&service);
    let silent = std::thread::spawn(move || {
        let stream = accept_request(&listener);
        std::thread::sleep(Duration::from_millis(500));
        drop(stream);
    });
    let started = Instant::now();
    let r = SocketTransport::connect_timeout(&service, 1 << 20, Some(Duration::from_millis(100)));
    assert!(matches!(r, Err(TransportError::Disconnected(_))));
    assert!(started.elapsed() < Duration::from_millis(450));
    silent.join().unwrap();
}

/// A hand-made socket-type server (ipc.md §5) good for one connection: it checks what the
/// client does to the control file and sockets, answers one request, sends one event,
/// publishes flow control, then hangs up.
#[test]
fn full_session_against_a_hand_made_server() {
    let service = unique_service();
    let listener = listen(&service);
    let dir = tempfile::Builder::new()
        .prefix("qb-test-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let mut description = dir.path().as_os_str().as_encoded_bytes().to_vec();
    description.extend_from_slice(b"/qb");
    let names = SocketNames::new(&description, service.as_bytes());
    let control_path = PathBuf::from(String::from_utf8(names.control.clone()).unwrap());
    let (step_tx, step_rx) = std::sync::mpsc::channel::<()>();

    let server_names = names.clone();
    let server_control = control_path.clone();
    let server = std::thread::spawn(move || {
        let mut stream = accept_request(&listener);
        let control = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&server_control)
            .unwrap();
        control.set_len(CONTROL_FILE_LEN as u64).unwrap();
        let request =
            UnixDatagram::bind_addr(&abstract_addr(&server_names.dgram(DgramEnd::ServerRequest)))
                .unwrap();
        let event =
            UnixDatagram::bind_addr(&abstract_addr(&server_names.dgram(DgramEnd::ServerEvent)))
                .unwrap();
        stream
            .write_all(&setup_response(0, IpcType::Socket, Some(&server_names)))
            .unwrap();

        request.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 64];
        let n = request.recv(&mut buf).unwrap();
        assert_eq!(
            RequestHeader::peek(&buf[..n]).unwrap(),
            RequestHeader { id: 4, size: 16 }
        );
        // The client counts its requests in the control file, as qb_ipc_socket_send does:
        // after the send, so the count may land a moment after the datagram.
        let mut word = [0u8; 4];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            control
                .read_exact_at(&mut word, CONTROL_REQUEST_SENT as u64)
                .unwrap();
            if i32::from_ne_bytes(word) == 1 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(i32::from_ne_bytes(word), 1);
        request
            .connect_addr(&abstract_addr(
                &server_names.dgram(DgramEnd::ClientResponse),
            ))
            .unwrap();
        let mut reply = vec![0u8; 32];
        reply[..4].copy_from_slice(&7i32.to_le_bytes());
        reply[8..12].copy_from_slice(&32i32.to_le_bytes());
        reply[16..20].copy_from_slice(&1i32.to_le_bytes());
        reply[24..28].copy_from_slice(&42u32.to_le_bytes());
        request.send(&reply).unwrap();

        event
            .connect_addr(&abstract_addr(&server_names.dgram(DgramEnd::ClientEvent)))
            .unwrap();
        let mut ev = vec![0u8; 26];
        ev[..4].copy_from_slice(&5i32.to_le_bytes());
        ev[8..12].copy_from_slice(&26i32.to_le_bytes());
        ev[24..].copy_from_slice(b"hi");
        control
            .write_all_at(&1i32.to_ne_bytes(), CONTROL_EVENT_SENT as u64)
            .unwrap();
        event.send(&ev).unwrap();
        control
            .write_all_at(&2i32.to_ne_bytes(), CONTROL_REQUEST_FLOW_CONTROL as u64)
            .unwrap();
        step_rx.recv_timeout(WAIT).unwrap();
        // Then the server goes away.
        drop(stream);
    });

    let mut client = SocketTransport::connect(&service, 1 << 20).unwrap();
    assert_eq!(client.control_path(), control_path.as_path());
    assert_eq!(client.socket_base(), &names.base[..]);
    assert_eq!(client.max_msg_size(), 1 << 20);
    let creds = client.server_creds().expect("server credentials");
    assert_eq!(creds.pid, std::process::id() as i32);

    let mut local_get = vec![0u8; 16];
    local_get[..4].copy_from_slice(&4i32.to_le_bytes());
    local_get[8..12].copy_from_slice(&16i32.to_le_bytes());
    let reply = client.request(&local_get).unwrap();
    assert_eq!(reply[24..28], 42u32.to_le_bytes());

    let event = client.recv_event(Some(WAIT)).unwrap().unwrap();
    assert_eq!(&event[24..], b"hi");
    // libqb's event counter: +1 by the server, -1 by the client.
    let mut word = [0u8; 4];
    std::fs::File::open(&control_path)
        .unwrap()
        .read_exact_at(&mut word, CONTROL_EVENT_SENT as u64)
        .unwrap();
    assert_eq!(i32::from_ne_bytes(word), 0);
    let event_fd = client.event_fd().unwrap();
    assert!(event_fd >= 0);

    // Flow control 2 stops MCAST-style sends only.
    let deadline = Instant::now() + WAIT;
    while client.flow_control() != FlowControl::StopMcast && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(client.flow_control(), FlowControl::StopMcast);
    assert!(matches!(
        client.send(&local_get),
        Err(TransportError::WouldBlock)
    ));

    // Requests the server would drop us for are refused locally.
    let mut bad = local_get.clone();
    bad[8] = 17;
    assert!(matches!(
        client.request(&bad),
        Err(TransportError::Protocol(_))
    ));
    assert!(matches!(
        client.request(&vec![0u8; (1 << 20) + 1]),
        Err(TransportError::TooLarge { .. })
    ));

    // The server hangs up: the next wait says so.
    step_tx.send(()).unwrap();
    server.join().unwrap();
    assert!(matches!(
        client.recv_event(Some(WAIT)),
        Err(TransportError::Disconnected(_))
    ));
    assert!(!client.is_connected());
    // Dropping cleans up as qb_ipcc_us_disconnect does: control file and directory go.
    drop(client);
    assert!(!control_path.exists());
    assert!(!dir.path().exists());
}

// ---- real corosync ----------------------------------------------------------------------

/// Our client against the real corosync 3.1.7 over socket IPC (`qb_ipc_type: socket`):
/// handshake, LOCAL_GET (nodeid 1 from the nodelist), FINALIZE, disconnect.
#[test]
fn real_corosync_in_socket_mode() {
    if let Some(out) =
        common::example_against_corosync("real_corosync_in_socket_mode", Some("socket"), &[])
    {
        common::assert_local_get(&out, "SOCKET");
    }
}
