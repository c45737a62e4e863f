//! The server's *shm* type (ipc.md §1.6, §5.7) against a client made of the same ring code
//! a libqb client would use (`totem_unix::shm::ShmRing::open`, as `qb_ipcc_shm_connect`),
//! hostile clients that scribble over or truncate their rings, and the real libcpg.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use totem_unix::shm::ShmRing;
use totem_wire::ipc::shm::{data_path, header_path, Ring, HEADER_FILE_LEN};
use totemd::ipc::ServerIpcType;

use super::*;

fn shm_config() -> IpcConfig {
    let mut cfg = config();
    cfg.ipc_type = ServerIpcType::Shm;
    cfg
}

/// What `qb_ipcc_connect` + `qb_ipcc_shm_connect` hold: the setup stream and three rings.
struct RawShmClient {
    stream: UnixStream,
    request: ShmRing,
    response: ShmRing,
    event: ShmRing,
    bases: [Vec<u8>; 3],
}

impl RawShmClient {
    fn connect(service: &str) -> RawShmClient {
        let mut stream = raw_setup(service);
        stream.write_all(&connection_request()).unwrap();
        let mut response = vec![0u8; 12328];
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.read_exact(&mut response).unwrap();
        let response = ConnectionResponse::parse(&response).unwrap();
        assert_eq!(response.refusal_errno(), None);
        assert_eq!(response.connection_type, IpcType::Shm);
        let max = response.max_msg_size as usize;
        let bases = [response.request, response.response, response.event];
        RawShmClient {
            // The request ring carries 4 bytes of user data (flow control); the client maps
            // the other two without (`qb_ipcc_shm_connect`).
            request: ShmRing::open(&bases[0], max, 4).unwrap(),
            response: ShmRing::open(&bases[1], max, 0).unwrap(),
            event: ShmRing::open(&bases[2], max, 0).unwrap(),
            stream,
            bases,
        }
    }

    /// `qb_ipcc_sendv`: the chunk, then one byte on the stream.
    fn send(&mut self, msg: &[u8]) {
        self.request.write(&[msg]).unwrap();
        self.stream.write_all(&[msg.len() as u8]).unwrap();
    }

    /// `qb_ipcc_recv` on the response ring.
    fn response(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(
            self.response.read_timeout(&mut out, WAIT).unwrap(),
            "no response"
        );
        out
    }

    /// `qb_ipcc_event_recv`: one notification byte, then the chunk.
    fn event(&mut self) -> Vec<u8> {
        let mut byte = [1u8];
        self.stream.read_exact(&mut byte).unwrap();
        assert_eq!(byte, [0], "libqb's notification byte");
        let mut out = Vec::new();
        assert!(self.event.try_read(&mut out).unwrap(), "byte without event");
        out
    }
}

#[test]
fn shm_connection_is_laid_out_as_libqb_does_and_carries_requests_and_events() {
    let server = Server::start(shm_config(), echo());
    let mut client = RawShmClient::connect(&server.service);
    let (conn, _) = server.connected();
    let dir = server.info(conn).unwrap().dir;
    let pid = std::process::id();
    for (ring, base) in Ring::ALL.iter().zip(&client.bases) {
        let base = String::from_utf8(base.clone()).unwrap();
        let word = format!("{ring:?}").to_lowercase();
        assert!(
            base.starts_with(&format!("/dev/shm/qb-{pid}-{pid}-")),
            "{base}"
        );
        assert!(
            base.ends_with(&format!("/qb-{word}-{}", server.service)),
            "{base}"
        );
        for (path, len) in [
            (header_path(base.as_bytes()), HEADER_FILE_LEN as u64),
            (data_path(base.as_bytes()), 1_052_672),
        ] {
            let meta = std::fs::metadata(String::from_utf8(path).unwrap()).unwrap();
            assert_eq!(meta.len(), len, "{base}");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }
    // Both ends hold the rings (qb_ipc_shm_fc_get wants exactly 2).
    assert_eq!(client.request.ref_count(), 2);

    for i in 0..50u32 {
        let body = i.to_le_bytes().repeat(i as usize);
        client.send(&request_msg(4, &body));
        let r = client.response();
        assert_eq!(ResponseHeader::peek(&r).unwrap().id, 4);
        assert_eq!(&r[24..], &body[..]);
    }
    // An mcast (id 2) gets no response; events come in order, each with its byte.
    client.send(&request_msg(2, b"mcast"));
    server.call(move |s| {
        for i in 0..10u8 {
            s.send_event(conn, &response_msg(9, CsError::Ok, &[i; 100]))
                .unwrap();
        }
    });
    for i in 0..10u8 {
        assert_eq!(&client.event()[24..], &[i; 100]);
    }

    // Flow control lands in the request ring's user data.
    for (fc, raw) in [
        (FlowControl::StopAll, 1),
        (FlowControl::StopMcast, 2),
        (FlowControl::Open, 0),
    ] {
        server.call(move |s| s.set_flow_control(conn, fc).unwrap());
        let word = client.request.user_word().unwrap();
        assert_eq!(word.load(Ordering::Acquire), raw);
    }

    // Hangup: the server ends the connection, lowers the reference count so that a live
    // client's next send fails, and removes the rings and their directory.
    let RawShmClient {
        stream, request, ..
    } = client;
    drop(stream);
    assert_eq!(server.disconnected(conn), DisconnectReason::Hangup);
    assert!(request.ref_count() < 2);
    assert!(!dir.exists());
}

#[test]
fn requests_are_counted_by_the_semaphore_not_by_their_bytes() {
    // libqb's client posts the semaphore before it writes the byte, and a server reads at
    // most a few requests per wakeup: every committed request is served even when the
    // bytes come late, together, or beyond one wakeup's share.
    let mut cfg = shm_config();
    cfg.requests_per_wakeup = 3;
    let server = Server::start(cfg, echo());
    let mut client = RawShmClient::connect(&server.service);
    let (conn, _) = server.connected();
    for i in 0..40u32 {
        client
            .request
            .write(&[&request_msg(2, &i.to_le_bytes())])
            .unwrap();
    }
    client.stream.write_all(&[0]).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 40 {
        seen.push(server.wait_for(|e| match e {
            IpcEvent::Request { conn: c, bytes } if *c == conn => {
                Some(u32::from_le_bytes(bytes[16..20].try_into().unwrap()))
            }
            _ => None,
        }));
    }
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
}

#[test]
fn events_wait_for_ring_space_and_keep_their_order() {
    let server = Server::start(shm_config(), echo());
    let mut client = RawShmClient::connect(&server.service);
    let (conn, _) = server.connected();
    // 64 events of 60 kB: more than the 1 MiB ring; the rest waits in the server's queue.
    server.call(move |s| {
        let mut body = vec![0u8; 60_000];
        for seq in 0u64..64 {
            body[..8].copy_from_slice(&seq.to_le_bytes());
            s.send_event(conn, &response_msg(5, CsError::Ok, &body))
                .unwrap();
        }
    });
    let queued = server.info(conn).unwrap().queued_msgs;
    assert!((40..64).contains(&queued), "{queued} waiting");
    for seq in 0u64..64 {
        assert_eq!(client.event()[24..32], seq.to_le_bytes());
    }
    assert_eq!(server.info(conn).unwrap().queued_msgs, 0);
}

#[test]
fn shm_clients_that_break_their_rings_are_dropped_alone() {
    let server = Server::start(shm_config(), echo());
    let mut good = RawShmClient::connect(&server.service);
    let (good_conn, _) = server.connected();

    // 1. A chunk whose size runs past what was written.
    let mut liar = RawShmClient::connect(&server.service);
    let (liar_conn, _) = server.connected();
    let data = PathBuf::from(OsStr::from_bytes(&data_path(&liar.bases[0])));
    liar.request.write(&[&request_msg(4, b"hello")]).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .write_all_at(&1_000_000u32.to_ne_bytes(), 0)
        .unwrap();
    liar.stream.write_all(&[0]).unwrap();
    match server.disconnected(liar_conn) {
        DisconnectReason::BadRequest(why) => assert!(why.contains("size"), "{why}"),
        other => panic!("{other:?}"),
    }

    // 2. A data file truncated to nothing under the server's mapping: without the SIGBUS
    //    guard the next access would kill the daemon.
    let mut truncator = RawShmClient::connect(&server.service);
    let (truncator_conn, _) = server.connected();
    truncator.request.write(&[&request_msg(4, b"x")]).unwrap();
    let data = PathBuf::from(OsStr::from_bytes(&data_path(&truncator.bases[0])));
    OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(0)
        .unwrap();
    truncator.stream.write_all(&[0]).unwrap();
    match server.disconnected(truncator_conn) {
        DisconnectReason::BadRequest(why) => assert!(why.contains("truncated"), "{why}"),
        other => panic!("{other:?}"),
    }

    // 3. A frame that lies in its own header (size field != chunk length).
    let mut framer = RawShmClient::connect(&server.service);
    let (framer_conn, _) = server.connected();
    let mut bad = request_msg(4, b"abc");
    bad[8..12].copy_from_slice(&100i32.to_le_bytes());
    framer.send(&bad);
    assert!(matches!(
        server.disconnected(framer_conn),
        DisconnectReason::BadRequest(_)
    ));

    // The well-behaved client never noticed.
    good.send(&request_msg(4, b"still here"));
    assert_eq!(&good.response()[24..], b"still here");
    server.call(move |s| {
        s.send_event(good_conn, &response_msg(5, CsError::Ok, b"ev"))
            .unwrap()
    });
    assert_eq!(&good.event()[24..], b"ev");
    let stats = server.stop();
    assert_eq!((stats.bad_requests, stats.disconnected), (3, 3));
}
