//! The handle's calls against an in-process fake of the evs service: requests are answered
//! at once (join/leave kept, a joined mcast delivered back to the sender as the service
//! does for a joined group); a queue of events keeps one byte on a stream socket pair
//! while it is not empty, so that the descriptor polls readable exactly while an event
//! waits, as a real connection's does, and the fake daemon never blocks.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use totem_client::{FlowControl, TransportError};
use totem_wire::ipc::evs::{EvsConfchgKind, EvsIpcEvent, EvsRequest, EvsResponse};

use super::*;

/// The daemon's side of the fake: queues an event.
#[derive(Clone)]
struct Daemon {
    queue: Arc<Mutex<VecDeque<Vec<u8>>>>,
    tx: Arc<UnixStream>,
}

impl Daemon {
    fn send(&self, event: &[u8]) -> std::io::Result<()> {
        let mut q = self.queue.lock().unwrap();
        q.push_back(event.to_vec());
        if q.len() == 1 {
            (&*self.tx).write_all(&[0])?;
        }
        Ok(())
    }
}

struct Fake {
    rx: UnixStream,
    tx: Daemon,
    groups: Vec<EvsGroup>,
    members: Vec<u32>,
    closed: bool,
    /// The next send answers CS_ERR_TRY_AGAIN this many times.
    try_again: Arc<AtomicU32>,
    /// The daemon died: what a real transport's liveness check finds out.
    gone: Arc<AtomicBool>,
}

fn key(s: &str) -> EvsGroup {
    let mut k = [0u8; 32];
    k[..s.len()].copy_from_slice(s.as_bytes());
    k
}

fn fake(members: Vec<u32>) -> (Fake, Daemon) {
    let (rx, tx) = UnixStream::pair().unwrap();
    rx.set_nonblocking(true).unwrap();
    let daemon = Daemon {
        queue: Arc::new(Mutex::new(VecDeque::new())),
        tx: Arc::new(tx),
    };
    let f = Fake {
        rx,
        tx: daemon.clone(),
        groups: Vec::new(),
        members,
        closed: false,
        try_again: Arc::new(AtomicU32::new(0)),
        gone: Arc::new(AtomicBool::new(false)),
    };
    (f, daemon)
}

fn deliver(nodeid: u32, data: &[u8]) -> Vec<u8> {
    EvsIpcEvent::Deliver { nodeid, data }.to_bytes()
}

fn confchg(members: Vec<u32>, joined: Vec<u32>) -> Vec<u8> {
    EvsIpcEvent::Confchg {
        kind: EvsConfchgKind::Regular,
        ring_nodeid: 1,
        ring_seq: 8,
        members,
        left: Vec::new(),
        joined,
    }
    .to_bytes()
}

impl Transport for Fake {
    fn request(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.closed {
            return Err(TransportError::Disconnected("closed".into()));
        }
        let req =
            EvsRequest::parse(request).map_err(|e| TransportError::Protocol(e.to_string()))?;
        let id = req.id().response();
        let status = |e| Ok(EvsResponse::status(id, e).to_bytes());
        match req {
            EvsRequest::Join { groups } => {
                self.groups.extend(groups);
                status(CsError::Ok)
            }
            EvsRequest::Leave { groups } => {
                for g in groups {
                    match self.groups.iter().position(|x| *x == g) {
                        Some(i) => {
                            self.groups.remove(i);
                        }
                        None => return status(CsError::NotExist),
                    }
                }
                status(CsError::Ok)
            }
            EvsRequest::McastJoined { data, .. } => {
                if self.try_again.load(Ordering::SeqCst) > 0 {
                    self.try_again.fetch_sub(1, Ordering::SeqCst);
                    return status(CsError::TryAgain);
                }
                if !self.groups.is_empty() {
                    self.tx.send(&deliver(7, data)).unwrap();
                }
                status(CsError::Ok)
            }
            EvsRequest::McastGroups { groups, data, .. } => {
                if groups.iter().any(|g| self.groups.contains(g)) {
                    self.tx.send(&deliver(7, data)).unwrap();
                }
                status(CsError::Ok)
            }
            EvsRequest::MembershipGet => {
                Ok(EvsResponse::membership(7, self.members.clone()).to_bytes())
            }
            EvsRequest::Unknown { .. } => status(CsError::InvalidParam),
        }
    }

    fn send(&mut self, _: &[u8]) -> Result<(), TransportError> {
        Err(TransportError::Protocol(
            "libevs sends no request without reply".into(),
        ))
    }

    fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, TransportError> {
        if self.closed || self.gone.load(Ordering::SeqCst) {
            return Err(TransportError::Disconnected("closed".into()));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            {
                let mut q = self.tx.queue.lock().unwrap();
                if let Some(event) = q.pop_front() {
                    if q.is_empty() {
                        self.rx.read_exact(&mut [0u8])?;
                    }
                    return Ok(Some(event));
                }
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            let mut fds = [libc::pollfd {
                fd: self.rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            totem_unix::poll(&mut fds, left)?;
        }
    }

    fn flow_control(&self) -> FlowControl {
        FlowControl::Open
    }

    fn max_msg_size(&self) -> usize {
        MAX_REQUEST
    }

    fn event_fd(&self) -> Option<i32> {
        Some(self.rx.as_raw_fd())
    }

    fn close(&mut self) {
        self.closed = true;
        let _ = self.rx.shutdown(std::net::Shutdown::Both);
    }
}

fn collect(inst: &Instance<Fake>, mode: DispatchMode) -> (CsError, Vec<EvsCallback>) {
    let mut got = Vec::new();
    let rc = inst.dispatch(mode, |cb| got.push(cb));
    (rc, got)
}

#[test]
fn all_dispatches_what_waits_and_returns_ok_when_nothing_does() {
    let (f, daemon) = fake(vec![1, 2]);
    let inst = Instance::new(f).unwrap();
    assert_eq!(collect(&inst, DispatchMode::All), (CsError::Ok, vec![]));
    daemon.send(&confchg(vec![1, 2], vec![2])).unwrap();
    daemon.send(&deliver(2, b"hi")).unwrap();
    let (rc, got) = collect(&inst, DispatchMode::All);
    assert_eq!(rc, CsError::Ok);
    assert_eq!(got.len(), 2);
    assert!(
        matches!(&got[0], EvsCallback::Confchg { ring_seq: 8, members, .. } if *members == [1, 2])
    );
    assert_eq!(
        got[1],
        EvsCallback::Deliver {
            nodeid: 2,
            data: b"hi".to_vec()
        }
    );
}

#[test]
fn one_dispatches_exactly_one() {
    let (f, daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    daemon.send(&deliver(1, b"a")).unwrap();
    daemon.send(&deliver(1, b"b")).unwrap();
    let (rc, got) = collect(&inst, DispatchMode::One);
    assert_eq!((rc, got.len()), (CsError::Ok, 1));
    let (rc, got) = collect(&inst, DispatchMode::One);
    assert_eq!(rc, CsError::Ok);
    assert_eq!(
        got,
        vec![EvsCallback::Deliver {
            nodeid: 1,
            data: b"b".to_vec()
        }]
    );
}

#[test]
fn one_waits_for_an_event_sent_later() {
    let (f, daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            // Sent only once the dispatching thread said it is about to wait.
            rx.recv().unwrap();
            daemon.send(&deliver(3, b"late")).unwrap();
        });
        tx.send(()).unwrap();
        let (rc, got) = collect(&inst, DispatchMode::One);
        assert_eq!(rc, CsError::Ok);
        assert_eq!(
            got,
            vec![EvsCallback::Deliver {
                nodeid: 3,
                data: b"late".to_vec()
            }]
        );
    });
}

#[test]
fn membership_is_truncated_to_the_callers_room() {
    let (f, _daemon) = fake(vec![1, 2, 3]);
    let inst = Instance::new(f).unwrap();
    assert_eq!(inst.membership(32), Ok((7, vec![1, 2, 3])));
    assert_eq!(inst.membership(2), Ok((7, vec![1, 2])));
    assert_eq!(inst.membership(0), Ok((7, vec![])));
}

#[test]
fn finalize_makes_every_call_a_bad_handle() {
    let (f, _daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    assert_eq!(inst.set_context(42), CsError::Ok);
    assert_eq!(inst.context(), Ok(42));
    assert_eq!(inst.finalize(), CsError::Ok);
    assert_eq!(inst.finalize(), CsError::BadHandle);
    assert_eq!(inst.join(&[key("k")]), CsError::BadHandle);
    assert_eq!(inst.leave(&[key("k")]), CsError::BadHandle);
    assert_eq!(inst.mcast_joined(2, &[b"x"]), CsError::BadHandle);
    assert_eq!(
        inst.mcast_groups(2, &[key("k")], &[b"x"]),
        CsError::BadHandle
    );
    assert_eq!(inst.membership(4), Err(CsError::BadHandle));
    assert_eq!(inst.fd(), Err(CsError::BadHandle));
    assert_eq!(inst.context(), Err(CsError::BadHandle));
    assert_eq!(inst.set_context(1), CsError::BadHandle);
    assert_eq!(inst.dispatch(DispatchMode::All, |_| {}), CsError::BadHandle);
}

#[test]
fn finalize_inside_a_callback_ends_dispatch_with_ok() {
    let (f, daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    for m in [b"1", b"2", b"3"] {
        daemon.send(&deliver(1, m)).unwrap();
    }
    let mut calls = 0;
    // EVS-FIN-3: the current dispatch finishes the event and returns CS_OK; no more
    // callbacks although two events still wait.
    let rc = inst.dispatch(DispatchMode::Blocking, |_| {
        calls += 1;
        assert_eq!(inst.finalize(), CsError::Ok);
    });
    assert_eq!((rc, calls), (CsError::Ok, 1));
    assert_eq!(inst.dispatch(DispatchMode::All, |_| {}), CsError::BadHandle);
}

#[test]
fn finalize_from_another_thread_ends_a_blocking_dispatch() {
    // The first event proves the dispatch is running; the other thread then finalizes,
    // and the dispatch, polling again or about to, returns CS_OK (EVS-FIN-3).
    let (f, daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    daemon.send(&deliver(1, b"first")).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut calls = 0;
            let rc = inst.dispatch(DispatchMode::Blocking, |_| {
                calls += 1;
                tx.send(()).unwrap();
            });
            (rc, calls)
        });
        rx.recv().unwrap();
        assert_eq!(inst.finalize(), CsError::Ok);
        assert_eq!(t.join().unwrap(), (CsError::Ok, 1));
    });
}

#[test]
fn a_daemon_that_goes_away_ends_blocking_dispatch_with_library() {
    // A socket-type event socket is not woken by the daemon's death: the dispatch finds
    // out at its next liveness check (EVS-DISP-6, CS_ERR_LIBRARY).
    let (f, _daemon) = fake(vec![1]);
    let gone = Arc::clone(&f.gone);
    let inst = Instance::new(f).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            tx.send(()).unwrap();
            inst.dispatch(DispatchMode::Blocking, |_| {})
        });
        rx.recv().unwrap();
        gone.store(true, Ordering::SeqCst);
        assert_eq!(t.join().unwrap(), CsError::Library);
    });
}

#[test]
fn sends_while_another_thread_dispatches_blocking() {
    // testevsth.c's pattern: BLOCKING in one thread, the other sends; every send comes
    // back through the dispatching thread, and no call waits for the other's event.
    const N: usize = 2000;
    let (f, _daemon) = fake(vec![1]);
    let retries = Arc::clone(&f.try_again);
    retries.store(50, Ordering::SeqCst);
    let inst = Instance::new(f).unwrap();
    assert_eq!(inst.join(&[key("key1")]), CsError::Ok);
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut seen = Vec::new();
            let rc = inst.dispatch(DispatchMode::Blocking, |cb| {
                if let EvsCallback::Deliver { data, .. } = cb {
                    seen.push(u32::from_le_bytes(data[..4].try_into().unwrap()));
                    if seen.len() == N {
                        assert_eq!(inst.finalize(), CsError::Ok);
                    }
                }
            });
            (rc, seen)
        });
        let mut sent = 0u32;
        let mut again = 0;
        while (sent as usize) < N {
            match inst.mcast_joined(2, &[&sent.to_le_bytes(), &[0u8; 100]]) {
                CsError::Ok => sent += 1,
                CsError::TryAgain => again += 1,
                e => panic!("mcast: {e:?}"),
            }
        }
        assert_eq!(again, 50);
        let (rc, seen) = t.join().unwrap();
        assert_eq!(rc, CsError::Ok);
        assert_eq!(seen, (0..N as u32).collect::<Vec<_>>());
    });
}

#[test]
fn join_leave_and_group_sends_reach_the_service() {
    let (f, _daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    assert_eq!(inst.join(&[key("a"), key("b")]), CsError::Ok);
    assert_eq!(inst.leave(&[key("a"), key("zz")]), CsError::NotExist);
    assert_eq!(
        inst.mcast_groups(0, &[key("a")], &[b"not for us"]),
        CsError::Ok
    );
    assert_eq!(
        inst.mcast_groups(0, &[key("b")], &[b"for", b" us"]),
        CsError::Ok
    );
    let (rc, got) = collect(&inst, DispatchMode::All);
    assert_eq!(rc, CsError::Ok);
    assert_eq!(
        got,
        vec![EvsCallback::Deliver {
            nodeid: 7,
            data: b"for us".to_vec()
        }]
    );
}

#[test]
fn a_message_over_the_request_size_is_refused_before_sending() {
    let (f, _daemon) = fake(vec![1]);
    let inst = Instance::new(f).unwrap();
    let big = vec![0u8; MAX_REQUEST];
    assert_eq!(inst.mcast_joined(2, &[&big, b"x"]), CsError::InvalidParam);
    assert_eq!(
        inst.mcast_groups(2, &[key("a")], &[&big]),
        CsError::InvalidParam
    );
}

#[test]
fn dispatch_modes_from_c_values() {
    assert_eq!(DispatchMode::from_raw(1), DispatchMode::One);
    assert_eq!(DispatchMode::from_raw(2), DispatchMode::All);
    assert_eq!(DispatchMode::from_raw(3), DispatchMode::Blocking);
    // 1.4 did not validate: anything else loops like BLOCKING (EVS-DISP-6).
    assert_eq!(DispatchMode::from_raw(0), DispatchMode::Blocking);
    assert_eq!(DispatchMode::from_raw(4), DispatchMode::Blocking);
}
