use super::*;
use totem_wire::ipc::cfg::{NODE_STATUS_V1, SHUTDOWN_FLAG_REQUEST};
use totem_wire::ipc::RequestHeader;

const H: RequestHeader = RequestHeader { id: 0, size: 0 };

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn conn(n: u64) -> ConnId {
    ConnId::for_test(n)
}

struct World {
    cfg: CfgService,
    nodes: BTreeMap<u32, Vec<IpAddr>>,
    members: Vec<u32>,
    now: Instant,
}

impl World {
    fn new(conns: &[u64]) -> World {
        let mut cfg = CfgService::new();
        for &c in conns {
            cfg.connected(conn(c), c as i32 * 100);
        }
        World {
            cfg,
            nodes: BTreeMap::from([(1, vec!["10.0.0.1".parse().unwrap()])]),
            members: vec![1, 2],
            now: Instant::from_millis(1000),
        }
    }

    fn ask(&mut self, c: u64, request: CfgRequest) -> Vec<CfgAction> {
        self.raw(c, &request.to_bytes())
    }

    fn raw(&mut self, c: u64, bytes: &[u8]) -> Vec<CfgAction> {
        let ctx = CfgContext {
            nodeid: 1,
            members: &self.members,
            node_addrs: &self.nodes,
            net: None,
        };
        let mut out = Vec::new();
        self.cfg.request(self.now, conn(c), bytes, &ctx, &mut out);
        out
    }

    fn track(&mut self, c: u64) {
        let out = self.ask(
            c,
            CfgRequest::TrackStart {
                header: H,
                flags: 0,
            },
        );
        assert_eq!(summary(&out), [format!("respond {c} 2 OK")]);
    }
}

/// One line per action: "respond CONN ID ERROR", "event CONN ERROR flags F", "mcast ...".
fn summary(out: &[CfgAction]) -> Vec<String> {
    out.iter()
        .map(|a| match a {
            CfgAction::Respond(c, b) => {
                format!("respond {} {} {}", c.get(), i32_at(b, 0), err(b))
            }
            CfgAction::Event(c, b) => {
                assert_eq!((b.len(), i32_at(b, 0)), (32, 10), "TESTSHUTDOWN");
                format!("event {} {} flags {}", c.get(), err(b), i32_at(b, 24))
            }
            CfgAction::Mcast(m) => format!("mcast {m:?}"),
            CfgAction::Disconnect(c, _) => format!("disconnect {}", c.get()),
        })
        .collect()
}

fn err(b: &[u8]) -> String {
    CsError::from(i32_at(b, 16))
        .to_string()
        .trim_start_matches("CS_ERR_")
        .trim_start_matches("CS_")
        .to_owned()
}

fn try_shutdown(flags: u32) -> CfgRequest {
    CfgRequest::TryShutdown { header: H, flags }
}

fn reply(response: u32) -> CfgRequest {
    CfgRequest::ReplyToShutdown {
        header: H,
        response,
    }
}

#[test]
fn node_addrs_and_local_get() {
    let mut w = World::new(&[1]);
    let out = w.ask(
        1,
        CfgRequest::GetNodeAddrs {
            header: H,
            nodeid: 1,
        },
    );
    let CfgAction::Respond(_, r) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(r.len(), 48);
    assert_eq!((i32_at(r, 0), i32_at(r, 8), i32_at(r, 16)), (11, 48, 1));
    assert_eq!((i32_at(r, 24), i32_at(r, 28)), (libc::AF_INET, 1));
    assert_eq!(&r[32..36], &[10, 0, 0, 1]);
    // nodeid 0 is this node; an unknown one is NOT_EXIST with no address.
    let again = w.ask(
        1,
        CfgRequest::GetNodeAddrs {
            header: H,
            nodeid: 0,
        },
    );
    assert_eq!(again, out);
    let out = w.ask(
        1,
        CfgRequest::GetNodeAddrs {
            header: H,
            nodeid: 7,
        },
    );
    let CfgAction::Respond(_, r) = &out[0] else {
        panic!()
    };
    assert_eq!((r.len(), i32_at(r, 16), i32_at(r, 28)), (32, 12, 0));
    let local = CfgRequest::Other {
        header: RequestHeader { id: 6, size: 16 },
    };
    let out = w.ask(1, local);
    let CfgAction::Respond(_, r) = &out[0] else {
        panic!()
    };
    assert_eq!((r.len(), i32_at(r, 0), i32_at(r, 24)), (32, 12, 1));
}

#[test]
fn refusals_keep_the_whole_struct_where_libcfg_reads_one() {
    let mut w = World::new(&[1]);
    let ring = CfgRequest::Other {
        header: RequestHeader { id: 0, size: 16 },
    };
    let out = w.ask(1, ring);
    let CfgAction::Respond(_, r) = &out[0] else {
        panic!()
    };
    assert_eq!((r.len(), i32_at(r, 8), i32_at(r, 24)), (10272, 10272, 0));
    let past = CfgRequest::Other {
        header: RequestHeader { id: 12, size: 16 },
    };
    assert_eq!(summary(&w.ask(1, past)), ["respond 1 0 INVALID_PARAM"]);
    let status = CfgRequest::NodeStatusGet {
        header: H,
        nodeid: 1,
        version: NODE_STATUS_V1,
    };
    assert_eq!(summary(&w.ask(1, status)), ["respond 1 16 NOT_SUPPORTED"]);
    // A request cut short drops its client alone.
    let mut short = try_shutdown(0).to_bytes();
    short.truncate(20);
    short[8..12].copy_from_slice(&20i32.to_ne_bytes());
    assert_eq!(summary(&w.raw(1, &short)), ["disconnect 1"]);
    assert_eq!(w.cfg.stats().bad_requests, 1);
}

/// Pacemaker's pacemakerd tracks and always answers no: `corosync-cfgtool -H` gets
/// CS_ERR_BUSY and nothing is multicast; `-H --force` (REGARDLESS) goes down anyway.
#[test]
fn a_tracker_saying_no_refuses_unless_regardless() {
    let mut w = World::new(&[1, 2]);
    w.track(1);
    // The question goes to the tracker; the requester waits.
    let out = w.ask(2, try_shutdown(SHUTDOWN_FLAG_REQUEST));
    assert_eq!(summary(&out), ["event 1 OK flags 0"]);
    assert_eq!(w.cfg.poll_timeout(), Some(w.now + DEFAULT_SHUTDOWN_TIMEOUT));
    let out = w.ask(1, reply(0));
    assert_eq!(summary(&out), ["respond 2 9 BUSY", "respond 1 13 OK"]);
    assert_eq!(w.cfg.poll_timeout(), None);
    // REGARDLESS: the answer is still asked for, and the no does not count.
    let out = w.ask(2, try_shutdown(SHUTDOWN_FLAG_REGARDLESS));
    assert_eq!(summary(&out), ["event 1 OK flags 1"]);
    let out = w.ask(1, reply(0));
    assert_eq!(
        summary(&out),
        ["respond 2 9 OK", "mcast Shutdown", "respond 1 13 OK"]
    );
    assert_eq!(w.cfg.stats().shutdowns_refused, 1);
}

#[test]
fn every_tracker_saying_yes_shuts_down() {
    let mut w = World::new(&[1, 2, 3]);
    w.track(1);
    w.track(2);
    // The requester's own tracking does not count.
    w.track(3);
    let out = w.ask(3, try_shutdown(SHUTDOWN_FLAG_REQUEST));
    assert_eq!(summary(&out), ["event 1 OK flags 0", "event 2 OK flags 0"]);
    assert_eq!(summary(&w.ask(1, reply(1))), ["respond 1 13 OK"]);
    // A second shutdown while this one is open.
    assert_eq!(
        summary(&w.ask(1, try_shutdown(SHUTDOWN_FLAG_REQUEST))),
        ["respond 1 9 EXIST"]
    );
    assert_eq!(
        summary(&w.ask(2, reply(1))),
        ["respond 3 9 OK", "mcast Shutdown", "respond 2 13 OK"]
    );
}

#[test]
fn no_tracker_or_immediate_goes_at_once() {
    let mut w = World::new(&[1, 2]);
    assert_eq!(
        summary(&w.ask(2, try_shutdown(SHUTDOWN_FLAG_REQUEST))),
        ["respond 2 9 OK", "mcast Shutdown"]
    );
    w.track(1);
    // IMMEDIATE (pacemakerd stopping corosync) asks nobody.
    assert_eq!(
        summary(&w.ask(2, try_shutdown(SHUTDOWN_FLAG_IMMEDIATE))),
        ["mcast Shutdown", "respond 2 9 OK"]
    );
    // A reply with no question open.
    assert_eq!(summary(&w.ask(1, reply(1))), ["respond 1 13 ACCESS"]);
}

#[test]
fn silence_is_no_at_the_timeout_and_everyone_hears_it() {
    let mut w = World::new(&[1, 2, 3]);
    w.cfg.set_shutdown_timeout(Some(Duration::from_millis(300)));
    w.track(1);
    w.track(2);
    w.ask(3, try_shutdown(SHUTDOWN_FLAG_REQUEST));
    w.ask(1, reply(1));
    let mut out = Vec::new();
    w.cfg
        .handle_timeout(w.now + Duration::from_millis(299), &mut out);
    assert!(out.is_empty());
    w.cfg
        .handle_timeout(w.now + Duration::from_millis(300), &mut out);
    assert_eq!(
        summary(&out),
        [
            "respond 3 9 BUSY",
            "event 1 TIMEOUT flags 0",
            "event 2 TIMEOUT flags 0"
        ]
    );
    // With REGARDLESS the timeout shuts down.
    w.ask(3, try_shutdown(SHUTDOWN_FLAG_REGARDLESS));
    let mut out = Vec::new();
    w.cfg
        .handle_timeout(w.now + Duration::from_millis(300), &mut out);
    assert_eq!(summary(&out)[..2], ["respond 3 9 OK", "mcast Shutdown"]);
}

/// A tracker that goes, or stops tracking, takes back its answer and counts as yes; a
/// newcomer during the question is asked too; the requester going cancels it.
#[test]
fn trackers_coming_and_going_during_the_question() {
    let mut w = World::new(&[1, 2, 3, 4]);
    w.track(1);
    w.track(2);
    w.ask(3, try_shutdown(SHUTDOWN_FLAG_REQUEST));
    w.ask(1, reply(0));
    let out = w.ask(
        4,
        CfgRequest::TrackStart {
            header: H,
            flags: 0,
        },
    );
    assert_eq!(summary(&out), ["event 4 OK flags 0", "respond 4 2 OK"]);
    // 1 said no, then stops tracking: now yes. 2 goes: yes. 4 says yes: all yes.
    let stop = CfgRequest::Other {
        header: RequestHeader { id: 11, size: 16 },
    };
    assert_eq!(summary(&w.ask(1, stop)), ["respond 1 3 OK"]);
    let mut out = Vec::new();
    w.cfg.disconnected(conn(2), &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        summary(&w.ask(4, reply(1))),
        ["respond 3 9 OK", "mcast Shutdown", "respond 4 13 OK"]
    );
    // The requester hangs up: the question is dropped, answers are refused.
    w.track(1);
    w.ask(3, try_shutdown(SHUTDOWN_FLAG_REQUEST));
    let mut out = Vec::new();
    w.cfg.disconnected(conn(3), &mut out);
    assert!(out.is_empty());
    assert_eq!(w.cfg.poll_timeout(), None);
    assert_eq!(summary(&w.ask(1, reply(0))), ["respond 1 13 ACCESS"]);
}

#[test]
fn kill_node_only_for_a_member_and_only_the_named_node_dies() {
    let mut w = World::new(&[1]);
    let kill = |nodeid| CfgRequest::KillNode {
        header: H,
        nodeid,
        reason: b"fenced".to_vec(),
    };
    assert_eq!(
        summary(&w.ask(1, kill(2))),
        [
            "mcast KillNode { nodeid: 2, reason: [102, 101, 110, 99, 101, 100] }",
            "respond 1 8 OK"
        ]
    );
    assert_eq!(summary(&w.ask(1, kill(3))), ["respond 1 8 NOT_EXIST"]);
    let message = CfgExec::KillNode {
        nodeid: 2,
        reason: b"fenced".to_vec(),
    };
    w.cfg.delivered(1, &message, 1);
    assert_eq!(w.cfg.killed(), None);
    w.cfg.delivered(1, &message, 2);
    assert_eq!(w.cfg.killed(), Some("Killed by node 1 : fenced"));
    // SHUTDOWN from another node is only logged; our own makes us leave.
    w.cfg.delivered(2, &CfgExec::Shutdown, 1);
    assert!(!w.cfg.leave_requested());
    w.cfg.delivered(1, &CfgExec::Shutdown, 1);
    assert!(w.cfg.leave_requested());
}
