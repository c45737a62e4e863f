//! totemd serving EVS to libevs clients (`totem_client::evs::Evs`, libevs's calls over
//! libqb IPC, docs/evs.md §9) in network namespaces: a three-node ring whose clients share
//! one order and see a killed node's configurations, both IPC types, a hostile client, a
//! client that never reads, and an inquorate node. Root only; each test prints why it
//! skipped otherwise. Run under `flock /tmp/lab.lock`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use totem_client::evs::{Evs, EvsCallback};
use totem_client::{IpcTransport, Transport};
use totem_wire::exec::evs::EvsGroup;
use totem_wire::ipc::evs::{EvsConfchgKind, EvsRequest};
use totem_wire::ipc::setup::IpcType;
use totem_wire::ipc::CsError;

use common::netns::in_netns;
use common::{skip_reason, Lab};

const FORM: Duration = Duration::from_secs(30);
const EVENT: Duration = Duration::from_secs(15);

type Client = Evs<IpcTransport>;

fn skip(test: &str) -> bool {
    if let Some(why) = skip_reason(false) {
        eprintln!("SKIPPED {test}: {why}");
        return true;
    }
    false
}

/// A synced ring of exactly `members`.
fn synced_with(members: &[u32]) -> impl Fn(&Value) -> bool + '_ {
    move |s| s["synced"] == true && s["state"] == "operational" && s["members"] == json!(members)
}

/// A group key: `name`, zeros, and `last` as the 32nd byte.
fn key(name: &str, last: u8) -> EvsGroup {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name.as_bytes());
    k[31] = last;
    k
}

/// `evs_initialize` on node `n`.
fn connect(lab: &Lab, n: u32) -> Client {
    in_netns(&lab.ns(n), || {
        Evs::initialize(totem_client::connect("evs", 1 << 20).expect("connect to evs"))
    })
}

/// Calls `f` until it is not CS_ERR_TRY_AGAIN (as every 1.4 program does), for at most
/// [`EVENT`]; the short pause only spares the CPU.
fn retry(mut f: impl FnMut() -> CsError) -> CsError {
    let deadline = Instant::now() + EVENT;
    loop {
        let r = f();
        if r != CsError::TryAgain || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The next callback, within [`EVENT`].
fn next(c: &mut Client) -> EvsCallback {
    match c.next_event(Some(EVENT)) {
        Ok(Some(cb)) => cb,
        other => panic!("no event within {EVENT:?}: {other:?}"),
    }
}

/// The configuration a client gets at connect: the current one, as a regular one.
fn first_confchg(c: &mut Client) -> Vec<u32> {
    match next(c) {
        EvsCallback::Confchg {
            kind: EvsConfchgKind::Regular,
            members,
            ..
        } => members,
        other => panic!("first event {other:?}"),
    }
}

/// Deliveries (sender, message) up to and including the message `end`.
fn deliveries_until(c: &mut Client, end: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut got = Vec::new();
    loop {
        match next(c) {
            EvsCallback::Deliver { nodeid, data } => {
                let last = data == end;
                got.push((nodeid, data));
                if last {
                    return got;
                }
            }
            other => panic!("unexpected {other:?} after {} deliveries", got.len()),
        }
    }
}

/// Whether anything arrives within a moment (for a client that must get nothing).
fn quiet(c: &mut Client) -> bool {
    matches!(c.next_event(Some(Duration::from_millis(300))), Ok(None))
}

/// The log's final `evs:` counters line.
fn evs_line(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("[MAIN  ] evs: "))
        .unwrap_or_else(|| panic!("no evs counters in:\n{log}"))
        .to_owned()
}

fn stop_cleanly(lab: &mut Lab, n: u32) -> String {
    assert_eq!(lab.stop(n, "TERM"), Some(0), "totemd exits 0 on SIGTERM");
    let log = lab.log(n);
    assert!(log.contains("totemd exiting normally"), "{log}");
    log
}

// Reference: docs/evs.md EVS-OVW (one agreed order for all), EVS-MJ-2 (mcast_joined to the
// sender's groups), EVS-MG-2 (mcast_groups need not be joined), EVS-JOIN (32-byte keys,
// compared whole), §5 (a crash: transitional {1,2}/{3}/{} then regular {1,2}/{}/{}),
// EVS-CODE-3 (our CONFCHG carries the ring id).
#[test]
fn a_three_totemd_ring_delivers_evs_in_one_order_and_reports_a_crash() {
    if skip("a_three_totemd_ring_delivers_evs_in_one_order_and_reports_a_crash") {
        return;
    }
    let start = Instant::now();
    let mut lab = Lab::new("e", 3).expect("lab");
    for n in 1..=3 {
        lab.spawn_totemd_status(n, 3);
    }
    for n in 1..=3 {
        lab.wait_status(n, FORM, synced_with(&[1, 2, 3]))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let g1 = key("evs-test", 1);
    // Differs from g1 in the last byte only: another group (the whole key counts).
    let g2 = key("evs-test", 2);

    let mut senders: Vec<(u32, Client)> = (1..=3).map(|n| (n, connect(&lab, n))).collect();
    // No `qb_ipc_type`: corosync's default, shm.
    assert_eq!(senders[0].1.transport().ipc_type(), IpcType::Shm);
    let mut other = connect(&lab, 1);
    let mut idle = connect(&lab, 2);
    for (n, c) in senders.iter_mut() {
        let mut members = first_confchg(c);
        members.sort_unstable();
        assert_eq!(members, vec![1, 2, 3]);
        let (local, mut members) = c.membership_get().expect("membership_get");
        members.sort_unstable();
        assert_eq!((local, members), (*n, vec![1, 2, 3]));
        assert_eq!(c.join(&[g1]), CsError::Ok);
    }
    for c in [&mut other, &mut idle] {
        first_confchg(c);
    }
    assert_eq!(other.join(&[g2]), CsError::Ok);

    // Every node's client sends at once: its own messages to its groups, node 2's also
    // some to g2, and `other` (joined to g2 only) to g1.
    const EACH: usize = 30;
    const TO_G1: usize = 10;
    const TO_G2: usize = 5;
    let mut threads = Vec::new();
    for (n, mut c) in senders.drain(..) {
        threads.push(std::thread::spawn(move || {
            for i in 0..EACH {
                let m = format!("a{n}-{i:03}");
                assert_eq!(retry(|| c.mcast_joined(1, &[m.as_bytes()])), CsError::Ok);
            }
            if n == 2 {
                for i in 0..TO_G2 {
                    let m = format!("g2-{i}");
                    let r = retry(|| c.mcast_groups(1, &[g2], &[m.as_bytes()]));
                    assert_eq!(r, CsError::Ok);
                }
            }
            (n, c)
        }));
    }
    for i in 0..TO_G1 {
        let m = format!("o-{i}");
        let r = retry(|| other.mcast_groups(1, &[g1], &[m.as_bytes()]));
        assert_eq!(r, CsError::Ok);
    }
    let mut senders: Vec<(u32, Client)> = threads
        .into_iter()
        .map(|t| t.join().expect("sender"))
        .collect();

    // Once node 1's client has every g1 message, an end marker to both groups comes after
    // all of them in the one order: what a client has not got by then, it never gets.
    let total = 3 * EACH + TO_G1;
    let mut firsts = Vec::new();
    {
        let (_, c1) = &mut senders[0];
        while firsts.len() < total {
            match next(c1) {
                EvsCallback::Deliver { nodeid, data } => firsts.push((nodeid, data)),
                other => panic!("unexpected {other:?}"),
            }
        }
        let r = retry(|| c1.mcast_groups(1, &[g1, g2], &[b"end"]));
        assert_eq!(r, CsError::Ok);
        firsts.extend(deliveries_until(c1, b"end"));
    }
    let mut sequences = vec![firsts];
    for (_, c) in senders.iter_mut().skip(1) {
        sequences.push(deliveries_until(c, b"end"));
    }
    let want: BTreeSet<(u32, Vec<u8>)> = (1..=3u32)
        .flat_map(|n| (0..EACH).map(move |i| (n, format!("a{n}-{i:03}").into_bytes())))
        .chain((0..TO_G1).map(|i| (1, format!("o-{i}").into_bytes())))
        .chain([(1, b"end".to_vec())])
        .collect();
    for (i, s) in sequences.iter().enumerate() {
        assert_eq!(
            s.len(),
            want.len(),
            "node {}: {} deliveries",
            i + 1,
            s.len()
        );
        let got: BTreeSet<(u32, Vec<u8>)> = s.iter().cloned().collect();
        assert_eq!(got, want, "node {}: each g1 message once", i + 1);
        // Each sender's messages in the order it sent them.
        for n in 1..=3u32 {
            let mine: Vec<&Vec<u8>> = s
                .iter()
                .filter(|(from, m)| *from == n && m.starts_with(b"a"))
                .map(|(_, m)| m)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "node {} FIFO", i + 1);
        }
    }
    assert_eq!(sequences[0], sequences[1], "nodes 1 and 2: one order");
    assert_eq!(sequences[0], sequences[2], "nodes 1 and 3: one order");
    let g2_want: Vec<(u32, Vec<u8>)> = (0..TO_G2)
        .map(|i| (2, format!("g2-{i}").into_bytes()))
        .chain([(1, b"end".to_vec())])
        .collect();
    assert_eq!(
        deliveries_until(&mut other, b"end"),
        g2_want,
        "a g2 member gets the g2 messages only"
    );
    assert!(quiet(&mut idle), "a client in no group gets no message");

    // Node 3 crashes: the others' clients see it leave, in the new ring.
    assert_eq!(lab.stop(3, "KILL"), None, "killed, no exit code");
    let status = lab
        .wait_status(1, FORM, synced_with(&[1, 2]))
        .unwrap_or_else(|e| panic!("{e}"));
    let ring = (
        status["ring"]["rep"].as_u64().expect("rep") as u32,
        status["ring"]["seq"].as_u64().expect("seq"),
    );
    let mut survivors: Vec<&mut Client> = senders
        .iter_mut()
        .filter(|(n, _)| *n != 3)
        .map(|(_, c)| c)
        .collect();
    survivors.push(&mut other);
    survivors.push(&mut idle);
    for c in survivors {
        let mut seen = Vec::new();
        for kind in [EvsConfchgKind::Transitional, EvsConfchgKind::Regular] {
            match next(c) {
                EvsCallback::Confchg {
                    kind: k,
                    ring_nodeid,
                    ring_seq,
                    mut members,
                    left,
                    joined,
                } => {
                    members.sort_unstable();
                    seen.push((k, (ring_nodeid, ring_seq), members, left, joined));
                }
                other => panic!("{other:?} instead of a {kind:?} confchg"),
            }
        }
        assert_eq!(
            seen,
            vec![
                (
                    EvsConfchgKind::Transitional,
                    ring,
                    vec![1, 2],
                    vec![3],
                    vec![]
                ),
                (EvsConfchgKind::Regular, ring, vec![1, 2], vec![], vec![]),
            ]
        );
    }
    drop(senders);
    let log = stop_cleanly(&mut lab, 1);
    let line = evs_line(&log);
    assert!(
        line.contains("evs: 2 clients connected (0 now), 0 clients dropped for bad requests, 0 events lost, 0 requests refused while inquorate"),
        "{line}"
    );
    eprintln!("three-node EVS ring test took {:?}", start.elapsed());
}

/// The pcapng file's records: (service, direction is to the server, message).
fn recorded(path: &std::path::Path) -> Vec<(String, bool, Vec<u8>)> {
    use totem_wire::ipc::record::{Direction, RecordHeader};
    let bytes = std::fs::read(path).expect("recording");
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        assert!(len >= 12 && at + len <= bytes.len(), "pcapng block at {at}");
        // An enhanced packet block: interface, time (8), captured and original lengths.
        if kind == 6 {
            let cap = u32::from_le_bytes(bytes[at + 20..at + 24].try_into().unwrap()) as usize;
            let packet = &bytes[at + 28..at + 28 + cap];
            let (h, msg) = RecordHeader::parse(packet).expect("record header");
            out.push((
                String::from_utf8_lossy(h.service_name()).into_owned(),
                h.direction == Direction::ToServer,
                msg.to_vec(),
            ));
        }
        at += len;
    }
    out
}

// Reference: docs/evs.md §9 (libqb IPC, the type `qb_ipc_type` says; counts that do not
// match the bytes drop the client, EVS-CODE-9 not copied; unknown id → INVALID_PARAM).
#[test]
fn the_socket_type_serves_evs_drops_a_hostile_client_alone_and_records_evs() {
    if skip("the_socket_type_serves_evs_drops_a_hostile_client_alone_and_records_evs") {
        return;
    }
    serve_hostile_and_record("es", Some("socket"), IpcType::Socket);
}

#[test]
fn the_shm_type_serves_evs_drops_a_hostile_client_alone_and_records_evs() {
    if skip("the_shm_type_serves_evs_drops_a_hostile_client_alone_and_records_evs") {
        return;
    }
    serve_hostile_and_record("em", None, IpcType::Shm);
}

/// One totemd with `qb_ipc_type` (`None`: left out, shm): two clients, a hostile one and
/// one with an unknown request, then the recording.
fn serve_hostile_and_record(tag: &str, qb_ipc_type: Option<&'static str>, want: IpcType) {
    let start = Instant::now();
    let mut lab = Lab::new(tag, 1).expect("lab");
    lab.ipc_type = qb_ipc_type;
    let status = lab.status_path(1).display().to_string();
    let record = lab.dir.join("ipc.pcapng");
    let record_arg = record.display().to_string();
    lab.spawn_totemd_with(
        1,
        1,
        &["--status-file", &status, "--record-ipc", &record_arg],
    );
    lab.wait_status(1, FORM, synced_with(&[1]))
        .unwrap_or_else(|e| panic!("{e}"));
    let g = key("socket", 0);
    let mut a = connect(&lab, 1);
    let mut b = connect(&lab, 1);
    assert_eq!(a.transport().ipc_type(), want);
    for c in [&mut a, &mut b] {
        assert_eq!(first_confchg(c), vec![1]);
        assert_eq!(c.join(&[g]), CsError::Ok);
    }
    assert_eq!(retry(|| a.mcast_joined(1, &[b"one"])), CsError::Ok);

    // Hostile: a JOIN whose count says 3 keys and carries 1, sent on the raw transport.
    let mut raw = in_netns(&lab.ns(1), || {
        totem_client::connect("evs", 1 << 20).expect("connect")
    });
    raw.set_request_timeout(Some(EVENT));
    let mut lying = EvsRequest::Join { groups: vec![g] }.to_bytes();
    lying[16] = 3;
    let answer = raw.request(&lying);
    assert!(answer.is_err(), "no answer to a lying JOIN: {answer:?}");
    assert!(!raw.is_connected(), "the hostile client is dropped");
    // An unknown request id is answered (INVALID_PARAM) and the client stays.
    let mut polite = in_netns(&lab.ns(1), || {
        totem_client::connect("evs", 1 << 20).expect("connect")
    });
    let mut unknown = vec![0u8; 16];
    unknown[0] = 9;
    unknown[8] = 16;
    let reply = polite.request(&unknown).expect("an answer");
    assert_eq!(
        i32::from_le_bytes(reply[16..20].try_into().unwrap()),
        i32::from(CsError::InvalidParam)
    );
    assert!(polite.is_connected());

    // The others never noticed.
    assert_eq!(retry(|| b.mcast_joined(1, &[b"two"])), CsError::Ok);
    for c in [&mut a, &mut b] {
        assert_eq!(
            deliveries_until(c, b"two"),
            vec![(1, b"one".to_vec()), (1, b"two".to_vec())]
        );
    }
    drop((a, b, polite));
    let log = stop_cleanly(&mut lab, 1);
    assert!(log.contains("Disconnecting evs client pid"), "{log}");
    let line = evs_line(&log);
    assert!(
        line.contains("evs: 4 clients connected (0 now), 1 clients dropped for bad requests"),
        "{line}"
    );
    // The recording names each connection's service: the EVS requests are there as
    // `evs`, the lying JOIN among them.
    let records = recorded(&record);
    let evs_requests: Vec<&Vec<u8>> = records
        .iter()
        .filter(|(s, to_server, _)| s == "evs" && *to_server)
        .map(|(_, _, m)| m)
        .collect();
    assert!(evs_requests.contains(&&lying), "{} records", records.len());
    assert!(
        records.iter().all(|(s, _, _)| s == "evs"),
        "only EVS clients here"
    );
    eprintln!("{want:?}-type EVS test took {:?}", start.elapsed());
}

// Reference: docs/evs.md EVS-CODE-6 (1.4 queued without bound) and evs_service's module
// doc (bounded here: a client that never reads is dropped alone, at the bound).
#[test]
fn a_client_that_never_reads_is_dropped_at_the_bound_and_the_others_keep_receiving() {
    if skip("a_client_that_never_reads_is_dropped_at_the_bound_and_the_others_keep_receiving") {
        return;
    }
    let start = Instant::now();
    let mut lab = Lab::new("eb", 1).expect("lab");
    lab.spawn_totemd_status(1, 1);
    lab.wait_status(1, FORM, synced_with(&[1]))
        .unwrap_or_else(|e| panic!("{e}"));
    let g = key("flood", 0);
    let mut lazy = connect(&lab, 1);
    let mut reader = connect(&lab, 1);
    let mut flooder = connect(&lab, 1);
    for c in [&mut lazy, &mut reader, &mut flooder] {
        assert_eq!(first_confchg(c), vec![1]);
    }
    for c in [&mut lazy, &mut reader] {
        assert_eq!(c.join(&[g]), CsError::Ok);
    }
    // The flooder is in no group: it has nothing to read. 60000 events of 140 bytes are
    // more than the shm event ring (1 MiB) and the queue's 40960 messages behind it.
    const N: usize = 60_000;
    // The reader must never be near the bound itself, however slowly it is scheduled: the
    // flooder stays at most WINDOW messages ahead of what the reader has taken (EVS has no
    // flow control on a client's own backlog, so without this a starved reader would be
    // dropped too). The lazy client takes nothing and reaches the bound.
    const WINDOW: usize = 8_000;
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reading = {
        let taken = taken.clone();
        std::thread::spawn(move || {
            let mut got = 0usize;
            let mut in_order = true;
            while got < N {
                match next(&mut reader) {
                    EvsCallback::Deliver { data, .. } => {
                        in_order &= data.get(..8) == Some(&(got as u64).to_le_bytes()[..]);
                        got += 1;
                        taken.store(got, std::sync::atomic::Ordering::Relaxed);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (reader, got, in_order)
        })
    };
    let flood_start = Instant::now();
    for i in 0..N {
        while i - taken.load(std::sync::atomic::Ordering::Relaxed) > WINDOW {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut m = vec![0u8; 100];
        m[..8].copy_from_slice(&(i as u64).to_le_bytes());
        assert_eq!(retry(|| flooder.mcast_groups(1, &[g], &[&m])), CsError::Ok);
    }
    let flood_took = flood_start.elapsed();
    let (mut reader, got, in_order) = reading.join().expect("reader");
    assert_eq!(got, N);
    assert!(in_order, "the reader got every message, in order");
    lab.wait_log(1, EVENT, |l| {
        l.contains("does not read its events: disconnected (queue overflow)")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        lazy.membership_get(),
        Err(CsError::Library),
        "the lazy client's connection is gone"
    );
    // The reader and the flooder are still served.
    assert_eq!(reader.membership_get(), Ok((1, vec![1])));
    assert_eq!(
        retry(|| flooder.mcast_groups(1, &[g], &[b"after"])),
        CsError::Ok
    );
    assert_eq!(
        deliveries_until(&mut reader, b"after"),
        vec![(1, b"after".to_vec())]
    );
    drop((lazy, reader, flooder));
    let log = stop_cleanly(&mut lab, 1);
    let line = evs_line(&log);
    assert!(
        line.contains("evs: 3 clients connected (0 now), 0 clients dropped for bad requests"),
        "{line}"
    );
    assert!(!line.contains(", 0 events lost"), "{line}");
    let ipc = log
        .lines()
        .find(|l| l.contains("[MAIN  ] ipc: "))
        .expect("ipc stats");
    assert!(ipc.contains("(overflow 1,"), "{ipc}");
    eprintln!(
        "{N} mcasts of 100 bytes in {flood_took:?}; {line}; test took {:?}",
        start.elapsed()
    );
}

// Reference: docs/evs.md EVS-CODE-8 (a quorum provider and an inquorate node: every EVS
// request CS_ERR_TRY_AGAIN; an unknown id is still INVALID_PARAM).
#[test]
fn an_inquorate_node_answers_every_evs_request_try_again_until_quorate() {
    if skip("an_inquorate_node_answers_every_evs_request_try_again_until_quorate") {
        return;
    }
    let start = Instant::now();
    // Three nodes listed, one vote each (expected 3, quorum 2): node 1 alone is inquorate.
    let mut lab = Lab::new("eq", 2).expect("lab");
    lab.spawn_totemd_status(1, 3);
    lab.wait_status(1, FORM, synced_with(&[1]))
        .unwrap_or_else(|e| panic!("{e}"));
    let g = key("quorum", 0);
    let mut c = connect(&lab, 1);
    assert_eq!(first_confchg(&mut c), vec![1]);
    assert_eq!(c.join(&[g]), CsError::TryAgain);
    assert_eq!(c.leave(&[g]), CsError::TryAgain);
    assert_eq!(c.mcast_joined(1, &[b"no"]), CsError::TryAgain);
    assert_eq!(c.mcast_groups(1, &[g], &[b"no"]), CsError::TryAgain);
    assert_eq!(c.membership_get(), Err(CsError::TryAgain));
    let mut raw = in_netns(&lab.ns(1), || {
        totem_client::connect("evs", 1 << 20).expect("connect")
    });
    // Each refusal carries the request's own response id (JOIN → 2).
    let reply = raw
        .request(&EvsRequest::Join { groups: vec![g] }.to_bytes())
        .expect("answer");
    assert_eq!(i32::from_le_bytes(reply[8..12].try_into().unwrap()), 24);
    assert_eq!(
        (
            i32::from_le_bytes(reply[0..4].try_into().unwrap()),
            i32::from_le_bytes(reply[16..20].try_into().unwrap())
        ),
        (2, i32::from(CsError::TryAgain))
    );
    let mut unknown = vec![0u8; 16];
    unknown[0] = 7;
    unknown[8] = 16;
    let reply = raw.request(&unknown).expect("answer");
    assert_eq!(
        i32::from_le_bytes(reply[16..20].try_into().unwrap()),
        i32::from(CsError::InvalidParam),
        "an unknown id is answered before quorum is asked"
    );
    assert!(quiet(&mut c), "nothing was sent");

    // Node 2 makes two votes of three: quorate.
    lab.spawn_totemd_status(2, 3);
    lab.wait_status(1, FORM, synced_with(&[1, 2]))
        .unwrap_or_else(|e| panic!("{e}"));
    // The quorum view changes when votequorum's sync ends, after the ring's: poll.
    assert_eq!(retry(|| c.join(&[g])), CsError::Ok);
    let (local, mut members) = c.membership_get().expect("membership_get");
    members.sort_unstable();
    assert_eq!((local, members), (1, vec![1, 2]));
    assert_eq!(retry(|| c.mcast_joined(1, &[b"yes"])), CsError::Ok);
    let mut delivered = Vec::new();
    loop {
        match next(&mut c) {
            EvsCallback::Deliver { nodeid, data } => {
                delivered.push((nodeid, data));
                break;
            }
            EvsCallback::Confchg { .. } => {}
        }
    }
    assert_eq!(delivered, vec![(1, b"yes".to_vec())]);
    drop((c, raw));
    let log = stop_cleanly(&mut lab, 1);
    let line = evs_line(&log);
    let refused: u64 = line
        .rsplit(" requests refused")
        .nth(1)
        .and_then(|t| t.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("refused count");
    assert!(refused >= 6, "{line}");
    eprintln!("inquorate EVS test took {:?}; {line}", start.elapsed());
}
