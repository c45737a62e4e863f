//! The socket-type client against hand-made servers (each setup outcome of ipc.md §1.2 and
//! §1.7) and against the real corosync 3.1.7 in socket mode, in a network namespace of its
//! own. totemd's server is tested against this client in protocol/daemon/tests.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use totem_client::socket::SocketTransport;
use totem_client::{FlowControl, Transport, TransportError};
use totem_wire::ipc::setup::{ConnectionRequest, ConnectionResponse, IpcType};
use totem_wire::ipc::socket::{
    abstract_name, DgramEnd, SocketNames, CONTROL_EVENT_SENT, CONTROL_FILE_LEN,
    CONTROL_REQUEST_FLOW_CONTROL, CONTROL_REQUEST_SENT,
};
use totem_wire::ipc::{CsError, RequestHeader, ResponseHeader};

const WAIT: Duration = Duration::from_secs(10);

fn unique_service() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "totem-client-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn listen(service: &str) -> UnixListener {
    UnixListener::bind_addr(
        &SocketAddr::from_abstract_name(abstract_name(service.as_bytes())).unwrap(),
    )
    .unwrap()
}

fn abstract_addr(name: &[u8]) -> SocketAddr {
    SocketAddr::from_abstract_name(abstract_name(name)).unwrap()
}

/// Accepts one connection, reads and checks the 24-byte request as libqb sends it.
fn accept_request(listener: &UnixListener) -> UnixStream {
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request = [0u8; 24];
    stream.read_exact(&mut request).unwrap();
    let request = ConnectionRequest::parse(&request).unwrap();
    assert_eq!(request.header, RequestHeader { id: -1, size: 24 });
    assert_eq!(request.max_msg_size, 1 << 20);
    stream
}

fn setup_response(error: i32, kind: IpcType, names: Option<&SocketNames>) -> Vec<u8> {
    let mut out = Vec::new();
    ConnectionResponse {
        header: ResponseHeader {
            id: -1,
            size: 12328,
            error: CsError::from(error),
        },
        connection_type: kind,
        max_msg_size: 1 << 20,
        connection: 0xdead_beef,
        request: names.map(|n| n.control.clone()).unwrap_or_default(),
        response: names.map(|n| n.base.clone()).unwrap_or_default(),
        event: Vec::new(),
    }
    .emit(&mut out);
    out
}

/// A server that answers the handshake with `response` (or closes at once on `None`).
fn one_shot_server(service: &str, response: Option<Vec<u8>>) -> JoinHandle<()> {
    let listener = listen(service);
    std::thread::spawn(move || {
        let mut stream = accept_request(&listener);
        if let Some(r) = response {
            stream.write_all(&r).unwrap();
            // Keep the stream open until the client has read the response and gone.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    })
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

#[test]
fn shm_type_is_not_spoken() {
    let service = unique_service();
    let names = SocketNames::new(b"/dev/shm/qb-1-2-3-abcdef/qb", b"cpg");
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

/// corosync 3.1.7 with `system { qb_ipc_type: socket }` in a network namespace of its own
/// (abstract socket names are per namespace) and a private /run (its pid file is compiled
/// in; corosync-lab.md). Everything is torn down on drop, also when the test fails.
struct Corosync {
    ns: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    netns_created: bool,
}

const COROSYNC: &str = "/usr/sbin/corosync";

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Corosync {
    fn start() -> Result<Corosync, String> {
        // `tcf-` is the prefix `totem-conform cleanup` removes leftovers by.
        let ns = format!("tcf-ipc-{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("totem-ipc-corosync-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut me = Corosync {
            ns,
            dir,
            child: None,
            netns_created: false,
        };
        run(&["ip", "netns", "add", &me.ns])?;
        me.netns_created = true;
        run(&["ip", "-n", &me.ns, "link", "set", "lo", "up"])?;
        let d = me.dir.path();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        let conf = d.join("corosync.conf");
        std::fs::write(
            &conf,
            format!(
                "totem {{\n\tversion: 2\n\tcluster_name: totem-ipc-test\n\ttransport: udpu\n\
                 \tcrypto_cipher: none\n\tcrypto_hash: none\n}}\n\
                 nodelist {{\n\tnode {{\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t}}\n}}\n\
                 quorum {{\n\tprovider: corosync_votequorum\n}}\n\
                 logging {{\n\tto_logfile: yes\n\tlogfile: {log}\n\tto_stderr: no\n\
                 \tto_syslog: no\n\ttimestamp: hires\n}}\n\
                 system {{\n\tstate_dir: {state}\n\tqb_ipc_type: socket\n}}\n",
                log = d.join("corosync.log").display(),
                state = d.join("state").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let script = format!(
            "mount --bind '{}' /run && exec {COROSYNC} -f -c '{}'",
            d.join("run").display(),
            conf.display()
        );
        let out = std::fs::File::create(d.join("corosync.stdout")).map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &me.ns, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("corosync: {e}"))?;
        me.child = Some(child);
        Ok(me)
    }

    fn log(&self) -> String {
        ["corosync.log", "corosync.stdout"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Corosync {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` and `sh -c ... exec` both exec in place: this pid is
            // corosync. SIGTERM lets it remove its /dev/shm blackbox; SIGKILL if it hangs.
            let pid = child.id();
            let _ = run(&["kill", "-TERM", &pid.to_string()]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
            if let Ok(entries) = std::fs::read_dir("/dev/shm") {
                let prefix = format!("qb-corosync-{pid}-");
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        if self.netns_created {
            let _ = run(&["ip", "netns", "del", &self.ns]);
        }
    }
}

/// The example next to this test binary: cargo builds examples with the tests.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("cpg_local_get");
    path.exists().then_some(path)
}

fn skip_reason() -> Option<String> {
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        return Some("needs root (network namespaces)".into());
    }
    if !Path::new(COROSYNC).exists() {
        return Some(format!("{COROSYNC} is not installed"));
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 `ip` is not installed".into());
    }
    if example_binary().is_none() {
        return Some("examples/cpg_local_get was not built next to the tests".into());
    }
    None
}

/// Our client against the real corosync 3.1.7 over socket IPC: handshake, LOCAL_GET
/// (nodeid 1 from the nodelist), FINALIZE, disconnect.
#[test]
fn real_corosync_in_socket_mode() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED real_corosync_in_socket_mode: {why}");
        return;
    }
    let example = example_binary().unwrap();
    let corosync = match Corosync::start() {
        Ok(c) => c,
        Err(e) => panic!("cannot set up corosync: {e}"),
    };
    let mut child = Command::new("ip")
        .args(["netns", "exec", &corosync.ns])
        .arg(&example)
        .args(["--wait", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\ncorosync:\n{}",
        out.status,
        corosync.log()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for want in [
        "local_nodeid=1",
        "finalize=CS_OK",
        "max_msg_size=1048576",
        "flow_control=Open",
    ] {
        assert!(lines.contains(&want), "{want} missing from:\n{stdout}");
    }
    // corosync runs as root: its credentials came with the setup response.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("server_pid=") && l.ends_with("server_uid=0 server_gid=0")),
        "{stdout}"
    );
    drop(corosync);
}
