//! The poll loop in process, on loopback, with a stand-in for the IPC server: an event source
//! whose descriptor becomes readable, which then calls the node (a CPG join), sees the
//! node's events (its own confchg, delivered through the ring over real UDP), and asks the
//! daemon to stop — which leaves the ring with a LEAVE like a signal does.

use std::io::Write;
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use totem_cpg::{ClientEvent, Node, NodeEvent};
use totem_srp::{Instant, SrpConfig};
use totem_wire::srp::{Message, MessageType};
use totemd::fault::{FaultConfig, Faults};
use totemd::report::{ReportConfig, Reporter};
use totemd::runtime::{poll_timeout_ms, Clock, EventSource, Exit, Runtime};
use totemd::udpu::Udpu;
use totemd::{pollin, SignalFd};

struct FakeClient {
    stream: UnixStream,
    conn: Option<u64>,
    confchgs: Vec<Vec<(u32, u32)>>,
    events_seen: usize,
    done: bool,
}

impl EventSource for FakeClient {
    fn pollfds(&self, fds: &mut Vec<libc::pollfd>) {
        fds.push(pollin(self.stream.as_raw_fd()));
    }

    fn process_ready(&mut self, _now: Instant, ready: &[libc::pollfd], node: &mut Node) {
        assert_eq!(ready.len(), 1, "exactly the descriptors it added");
        let mut buf = [0u8; 16];
        let _ = std::io::Read::read(&mut self.stream, &mut buf);
        if self.conn.is_none() {
            let conn = node.cpg_connect(false);
            node.cpg_join(conn, b"group", 4242).expect("join");
            self.conn = Some(conn);
        }
    }

    fn node_event(&mut self, _now: Instant, event: &NodeEvent) {
        self.events_seen += 1;
        if let NodeEvent::Client(ClientEvent::Confchg { conn, members, .. }) = event {
            assert_eq!(Some(*conn), self.conn);
            self.confchgs
                .push(members.iter().map(|a| (a.nodeid, a.pid)).collect());
            self.done = true;
        }
    }

    fn shutdown_requested(&self) -> bool {
        self.done
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn an_event_source_drives_the_node_and_asks_it_to_leave() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Node 2 is a plain socket: it receives what node 1 sends to all (the LEAVE included).
    let members = [(1, ip("127.0.0.1")), (2, ip("127.0.0.2"))];
    let peer = UdpSocket::bind(("127.0.0.2", port)).unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let udpu = Udpu::new(ip("127.0.0.1"), port, &members, true).unwrap();
    let state = tempfile::tempdir().unwrap();
    let srp = SrpConfig::defaults(2);
    let clock = Clock::new();
    let reporter = Reporter::new(
        ReportConfig {
            token_ms: srp.token_ms,
            consensus_ms: srp.consensus_ms,
            token_warning: srp.token_warning(),
            nodeid: 1,
            vote: totem_votequorum::VoteConfig {
                provider: true,
                votes: [(1, 1), (2, 1)].into(),
                expected_votes: 2,
                two_node: false,
                wait_for_all: false,
            },
        },
        clock.now(),
    );
    let config = totem_cpg::NodeConfig {
        nodeid: 1,
        srp,
        net_mtu: 1500,
        stored_ring_seq: 0,
        nodeinfo: totem_cpg::OwnNodeInfo::new(2),
    };
    // SIGUSR2 only: the test harness keeps its own handling of SIGTERM and SIGINT.
    let signals = SignalFd::new(&[libc::SIGUSR2]).unwrap();
    let mut rt = Runtime::new(
        clock,
        config,
        udpu,
        signals,
        Faults::new(FaultConfig::default()),
        reporter,
        state.path().to_owned(),
    );
    let (mut outside, inside) = UnixStream::pair().unwrap();
    inside.set_nonblocking(true).unwrap();
    let mut client = FakeClient {
        stream: inside,
        conn: None,
        confchgs: Vec::new(),
        events_seen: 0,
        done: false,
    };
    outside.write_all(b"go").unwrap();
    let exit = rt.run(&mut [&mut client]);
    assert_eq!(exit, Exit::Requested);
    assert_eq!(
        client.confchgs,
        [vec![(1, 4242)]],
        "its own join, through the ring"
    );
    assert!(
        client.events_seen > client.confchgs.len(),
        "it sees every node event"
    );
    assert_eq!(rt.node().members(), &[1]);
    // The ring id was stored as corosync stores it.
    let stored = std::fs::read(state.path().join("ringid_1")).unwrap();
    assert_eq!(stored, 5u64.to_ne_bytes());
    // Among what node 2's address received: node 1's LEAVE (a JOIN with nodeid 0).
    let mut buf = [0u8; 2048];
    let mut leave = false;
    while let Ok((n, _)) = peer.recv_from(&mut buf) {
        if let Ok((Message::MembJoin(j), _)) = Message::parse(&buf[..n]) {
            leave |= j.header.message_type == MessageType::MembJoin && j.is_leave();
        }
    }
    assert!(leave, "the LEAVE was sent before run returned");
    assert_eq!(rt.stats.malformed, 0);
}

#[test]
fn poll_timeouts_round_up_so_deadlines_have_passed() {
    let now = Instant::from_micros(1_000);
    assert_eq!(poll_timeout_ms(now, None), -1);
    assert_eq!(poll_timeout_ms(now, Some(Instant::from_micros(500))), 0);
    assert_eq!(poll_timeout_ms(now, Some(Instant::from_micros(1_001))), 1);
    assert_eq!(poll_timeout_ms(now, Some(Instant::from_micros(3_000))), 2);
    assert_eq!(poll_timeout_ms(now, Some(Instant::from_micros(3_001))), 3);
}
