//! Records the real EVS fixtures of the inspector from a three-totemd ring in network
//! namespaces: `fixtures/pcap/totemd/evs-3node-udpu.pcap` (tcpdump on the ring's bridge) and
//! `fixtures/ipc/evs-totemd-node1.pcapng` (node 1's `totemd --record-ipc`). Not a check:
//! ignored, run by hand (root, under `flock /tmp/lab.lock`) when the fixtures are to be
//! re-recorded:
//!
//! `flock /tmp/lab.lock cargo test -p totemd --test evs_capture -- --ignored`

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use totem_client::evs::{Evs, EvsCallback};
use totem_client::IpcTransport;
use totem_wire::exec::evs::EvsGroup;
use totem_wire::ipc::CsError;

use common::netns::in_netns;
use common::{skip_reason, Lab};

const FORM: Duration = Duration::from_secs(30);
const EVENT: Duration = Duration::from_secs(15);

fn key(name: &[u8]) -> EvsGroup {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name);
    k
}

fn connect(lab: &Lab, n: u32) -> Evs<IpcTransport> {
    in_netns(&lab.ns(n), || {
        Evs::initialize(totem_client::connect("evs", 1 << 20).expect("connect to evs"))
    })
}

/// Calls `f` until it is not CS_ERR_TRY_AGAIN, as libevs programs do.
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

/// tcpdump on the ring's bridge into `path`, in immediate mode so that nothing waits in its
/// buffer when it is stopped (the whole run takes well under a second); returns once it
/// listens.
fn start_tcpdump(lab: &Lab, path: &Path) -> Child {
    let err = path.with_extension("stderr");
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.hub(), "tcpdump", "-i", "br0"])
        .args(["--immediate-mode", "-U", "-Z", "root", "-w"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("tcpdump");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(Instant::now() < deadline, "tcpdump does not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Stops tcpdump once everything sent has reached its file: the daemons are stopped, so the
/// file stops growing.
fn stop_tcpdump(mut child: Child, path: &Path) {
    let size = || std::fs::metadata(path).map_or(0, |m| m.len());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = size();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = size();
        if (now == last && now > 24) || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let _ = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Events of `c` until a delivery of `len` bytes.
fn until_delivery_of(c: &mut Evs<IpcTransport>, len: usize) {
    loop {
        match c.next_event(Some(EVENT)) {
            Ok(Some(EvsCallback::Deliver { data, .. })) if data.len() == len => return,
            Ok(Some(_)) => {}
            other => panic!("no delivery of {len} bytes: {other:?}"),
        }
    }
}

#[test]
#[ignore = "records the inspector's EVS fixtures; run by hand"]
fn record_the_inspector_evs_fixtures() {
    if let Some(why) = skip_reason(false) {
        eprintln!("SKIPPED record_the_inspector_evs_fixtures: {why}");
        return;
    }
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut lab = Lab::new("x", 3).expect("lab");
    let ring_pcap = lab.node_dir(1).join("../ring.pcap");
    let tcpdump = start_tcpdump(&lab, &ring_pcap);
    let record = lab.node_dir(1).join("evs.pcapng");
    let record_arg = record.display().to_string();
    let status1 = lab.status_path(1).display().to_string();
    lab.spawn_totemd_with(
        1,
        3,
        &["--status-file", &status1, "--record-ipc", &record_arg],
    );
    for n in 2..=3 {
        lab.spawn_totemd_status(n, 3);
    }
    let formed = |s: &Value| s["synced"] == true && s["members"] == json!([1, 2, 3]);
    for n in 1..=3 {
        lab.wait_status(n, FORM, formed)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut a, mut b, mut c, mut d) = (
        connect(&lab, 1),
        connect(&lab, 2),
        connect(&lab, 3),
        connect(&lab, 3),
    );
    assert_eq!(a.join(&[key(b"key1"), key(b"key2")]), CsError::Ok);
    assert_eq!(b.join(&[key(b"key2")]), CsError::Ok);
    assert_eq!(c.join(&[key(b"a")]), CsError::Ok);
    // Differs from "a" only after the first NUL: another group.
    assert_eq!(d.join(&[key(b"a\0b")]), CsError::Ok);
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let to = |c: &mut Evs<IpcTransport>, groups: &[EvsGroup], len: usize| {
        assert_eq!(
            retry(|| c.mcast_groups(0, groups, &[&payload[..len]])),
            CsError::Ok
        );
    };
    to(&mut a, &[key(b"key1"), key(b"key2")], 2000);
    assert_eq!(retry(|| b.mcast_joined(0, &[&payload[..100]])), CsError::Ok);
    to(&mut a, &[key(b"a")], 10);
    to(&mut c, &[key(b"a\0b")], 11);
    to(&mut b, &[key(b"key2"), key(b"key2")], 50);
    to(&mut c, &[key(b"key1")], 5000);
    // Node 1's client is in key1 and key2: the 5000-byte message to key1 comes last for it.
    until_delivery_of(&mut a, 5000);
    until_delivery_of(&mut d, 11);
    assert!(a.membership_get().is_ok());
    assert_eq!(b.leave(&[key(b"key2")]), CsError::Ok);
    assert_eq!(b.leave(&[key(b"key2")]), CsError::NotExist);
    for mut client in [a, b, c, d] {
        assert_eq!(client.finalize(), CsError::Ok);
    }
    for n in 1..=3 {
        assert_eq!(lab.stop(n, "TERM"), Some(0));
    }
    stop_tcpdump(tcpdump, &ring_pcap);
    let pcap = ring_pcap;
    std::fs::create_dir_all(fixtures.join("pcap/totemd")).unwrap();
    std::fs::copy(&pcap, fixtures.join("pcap/totemd/evs-3node-udpu.pcap")).unwrap();
    std::fs::copy(&record, fixtures.join("ipc/evs-totemd-node1.pcapng")).unwrap();
}
