//! corosync 1.4.10's EVS test programs (fixtures/evs, unchanged) and our own C tests,
//! compiled against include/corosync and libevs.so (always), then run against totemd rings
//! in network namespaces (as root; otherwise skipped with the reason printed). Run the lab
//! under `flock /tmp/lab.lock` so that only one lab uses the machine at a time.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Build, Compiled, Lab};

/// Every program of the harness, compiled into one build directory.
struct Programs {
    build: Build,
    testevs: Compiled,
    testevsth: Compiled,
    evsbench: Compiled,
    evsverify: Compiled,
    threads: Compiled,
    api: Compiled,
    no_daemon: Compiled,
}

fn fixture(name: &str) -> PathBuf {
    common::fixtures_dir().join(name)
}

fn ours(name: &str) -> PathBuf {
    common::crate_dir().join("tests/c").join(name)
}

fn compile_all() -> Programs {
    let build = Build::new();
    let testevs = build.compile(&fixture("testevs.c"), "testevs", &[]);
    // Pre-1.0 callbacks (struct in_addr, no handle): two incompatible-pointer warnings,
    // an error by default from gcc 14 (fixtures/evs/README.md).
    let testevsth = build.compile(
        &fixture("testevsth.c"),
        "testevsth",
        &["-Wno-error=incompatible-pointer-types"],
    );
    let evsbench = build.compile(&fixture("evsbench.c"), "evsbench", &[]);
    let evsverify = build.compile(&fixture("evsverify.c"), "evsverify", &[]);
    let threads = build.compile(&ours("evs_threads.c"), "evs_threads", &[]);
    let api = build.compile(&ours("evs_api.c"), "evs_api", &[]);
    let no_daemon = build.compile(&ours("no_daemon.c"), "no_daemon", &[]);
    Programs {
        build,
        testevs,
        testevsth,
        evsbench,
        evsverify,
        threads,
        api,
        no_daemon,
    }
}

#[test]
fn fixtures_compile_unchanged_with_only_the_expected_warnings() {
    let p = compile_all();
    // With corosync 1.4.10's own headers gcc 12 gave: testevs.c and evsverify.c nothing,
    // evsbench.c glibc's _BSD_SOURCE notice (the file defines it), testevsth.c the two
    // callback initialisers (README of fixtures/evs). Ours must not add any.
    for (c, allowed) in [
        (&p.testevs, &[][..]),
        (&p.evsverify, &[][..]),
        (&p.evsbench, &["_BSD_SOURCE"][..]),
        (&p.testevsth, &["-Wincompatible-pointer-types"][..]),
        (&p.threads, &[][..]),
        (&p.api, &[][..]),
        (&p.no_daemon, &[][..]),
    ] {
        let unexpected: Vec<&str> = common::warnings(&c.stderr)
            .into_iter()
            .filter(|w| !allowed.iter().any(|a| w.contains(a)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{}: unexpected warnings:\n{}",
            c.program.display(),
            c.stderr
        );
        assert!(c.program.exists());
    }
    assert_eq!(
        common::warnings(&p.testevsth.stderr).len(),
        2,
        "testevsth.c: the two callback initialisers:\n{}",
        p.testevsth.stderr
    );
    let _ = &p.build;
}

#[test]
fn the_header_is_cxx_safe() {
    // Compiled and linked as C++: without extern "C" the calls would need mangled
    // symbols libevs.so does not have.
    let build = Build::new();
    let src = build.dir.path().join("cxx.cpp");
    std::fs::write(
        &src,
        "#include <corosync/evs.h>\n\
         int main () {\n\
         \tevs_handle_t h;\n\
         \tevs_callbacks_t cb = { 0, 0 };\n\
         \tcs_error_t r = evs_initialize (&h, &cb);\n\
         \treturn r == CS_OK ? evs_finalize (h) : 0;\n\
         }\n",
    )
    .unwrap();
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let lib = common::libevs_dir();
    let out = Command::new(&cxx)
        .args(["-Wall", "-Werror", "-I"])
        .arg(common::crate_dir().join("include"))
        .arg("-o")
        .arg(build.dir.path().join("cxx"))
        .arg(&src)
        .arg("-L")
        .arg(&lib)
        .arg("-levs")
        .output()
        .unwrap_or_else(|e| panic!("{cxx}: {e}"));
    assert!(
        out.status.success(),
        "evs.h as C++:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_a_daemon_initialize_says_try_again() {
    let p = compile_all();
    // As root, in a network namespace of its own, where certainly nothing listens (the
    // service's socket is abstract, hence per network namespace); otherwise here, where
    // no test starts a daemon outside a namespace.
    let root = common::lab_skip_reason().is_none_or(|why| !why.starts_with("not root"));
    let mut cmd = if root {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(&p.no_daemon.program);
        c
    } else {
        Command::new(&p.no_daemon.program)
    };
    let out = cmd.output().expect("no_daemon");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines of one `CONFIGURATION CHANGE` block of testevs/evsverify output: members,
/// left, joined (hex nodeids).
#[derive(Debug, PartialEq, Eq)]
struct Confchg {
    members: Vec<u32>,
    left: Vec<u32>,
    joined: Vec<u32>,
}

fn confchgs(out: &str) -> Vec<Confchg> {
    let mut res = Vec::new();
    let mut lines = out.lines().peekable();
    while let Some(l) = lines.next() {
        if l != "CONFIGURATION CHANGE" {
            continue;
        }
        let mut lists: [Vec<u32>; 3] = Default::default();
        let mut which = None;
        while let Some(l) = lines.peek() {
            match *l {
                "--------------------" => {}
                "New configuration" => which = Some(0),
                "Members Left:" => which = Some(1),
                "Members Joined:" => which = Some(2),
                hex => match (which, u32::from_str_radix(hex, 16)) {
                    (Some(i), Ok(v)) => lists[i].push(v),
                    _ => break,
                },
            }
            lines.next();
        }
        let [members, left, joined] = lists;
        res.push(Confchg {
            members,
            left,
            joined,
        });
    }
    res
}

/// testevs's delivered message texts, in order ("API '...' msg 'TEXT'").
fn deliveries(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("API '"))
        .filter_map(|l| {
            l.split_once("' msg '")
                .map(|(_, m)| m.trim_end_matches('\''))
        })
        .collect()
}

/// What testevs sends, in order: 500 to its joined groups, then 500 to key2.
fn testevs_sent() -> Vec<String> {
    (0..500)
        .map(|i| format!("evs_mcast_joined: This is message {i}"))
        .chain((0..500).map(|i| format!("evs_mcast_groups: This is message {i}")))
        .collect()
}

/// One testevs alone on node 1: exit 0 after its deliveries, which are its own messages
/// in the order sent (agreed order, self delivery through its joined groups:
/// EVS-OVW-23, -25); the membership it reads and the confchg it gets first (the
/// connect-time one, EVS-CODE-1) are the ring's.
fn testevs_alone(lab: &Lab, p: &Programs, nodes: u32) {
    let mut child = lab.spawn_client(1, &p.testevs.program, "testevs-alone");
    let st = Lab::wait_client(&mut child, Duration::from_secs(120));
    let out = lab.output("testevs-alone");
    assert!(
        st.is_some_and(|s| s.success()),
        "testevs on a {nodes}-node ring: {st:?}\n{}",
        tail(&out)
    );
    let all: Vec<u32> = (1..=nodes).collect();
    assert!(
        out.contains(&format!(
            "Current membership from evs_membership_get entries {nodes}\n"
        )),
        "{}",
        head(&out)
    );
    for (i, n) in all.iter().enumerate() {
        assert!(
            out.contains(&format!("member [{i}] is {n:x}\n")),
            "{}",
            head(&out)
        );
    }
    assert!(out.contains("local processor from evs_membership_get 1\n"));
    assert!(
        out.contains("Init result 1\nJoin result 1\n"),
        "{}",
        head(&out)
    );
    let cc = confchgs(&out);
    assert!(!cc.is_empty(), "no confchg:\n{}", head(&out));
    // EVS-CODE-1, docs/evs.md §5: the copy of the last (regular) configuration: every
    // member, nobody left; joined = who was new at that change (on a lone node itself).
    assert_eq!(cc[0].members, all, "{cc:?}");
    assert!(cc[0].left.is_empty(), "{cc:?}");
    assert!(
        cc[0].joined.iter().all(|j| all.contains(j)),
        "joined outside the ring: {cc:?}"
    );
    if nodes == 1 {
        assert_eq!(cc[0].joined, vec![1], "{cc:?}");
    }
    assert_eq!(cc.len(), 1, "no membership change happened: {cc:?}");
    let got = deliveries(&out);
    let sent = testevs_sent();
    assert!(got.len() >= 500, "{} deliveries", got.len());
    assert_eq!(
        got,
        sent[..got.len()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "own messages in the order sent"
    );
    eprintln!(
        "testevs alone on a {nodes}-node ring: exit 0, {} deliveries, first confchg {:?}",
        got.len(),
        cc[0]
    );
}

fn head(s: &str) -> String {
    s.lines().take(40).collect::<Vec<_>>().join("\n")
}

fn tail(s: &str) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(40)..].join("\n")
}

fn run_ours(lab: &Lab, node: u32, c: &Compiled, name: &str, args: &[&str]) {
    let out = lab.dir.join(format!("{name}.out"));
    let f = std::fs::File::create(&out).unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node)])
        .arg(&c.program)
        .args(args)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let st = Lab::wait_client(&mut child, Duration::from_secs(150));
    let text = lab.output(name);
    assert!(
        st.is_some_and(|s| s.success()) && text.contains("PASS"),
        "{name} on node {node}: {st:?}\n{}",
        tail(&text)
    );
    eprintln!(
        "{name} on node {node}: {}",
        text.lines().last().unwrap_or("")
    );
}

fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status();
}

#[test]
fn fixtures_run_against_totemd() {
    if let Some(why) = common::lab_skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let p = compile_all();

    // One node, shm IPC (totemd's default, as corosync's).
    {
        let mut lab = Lab::new("a", 1, "shm").expect("lab");
        lab.start();
        lab.wait_ring(Duration::from_secs(30)).expect("ring of 1");
        testevs_alone(&lab, &p, 1);
        run_ours(&lab, 1, &p.api, "evs_api", &["1"]);
        run_ours(&lab, 1, &p.threads, "evs_threads", &[]);
    }

    // Three nodes, socket IPC.
    let mut lab = Lab::new("b", 3, "socket").expect("lab");
    lab.start();
    lab.wait_ring(Duration::from_secs(30)).expect("ring of 3");
    testevs_alone(&lab, &p, 3);
    run_ours(&lab, 2, &p.api, "evs_api", &["3"]);
    run_ours(&lab, 3, &p.threads, "evs_threads", &[]);

    // testevs on all three nodes at once: each also gets the others' messages (the same
    // texts), so each must reach its 500 deliveries and exit 0.
    let mut children: Vec<_> = (1..=3)
        .map(|n| lab.spawn_client(n, &p.testevs.program, &format!("testevs-n{n}")))
        .collect();
    for (i, c) in children.iter_mut().enumerate() {
        let n = i + 1;
        let st = Lab::wait_client(c, Duration::from_secs(180));
        let out = lab.output(&format!("testevs-n{n}"));
        assert!(
            st.is_some_and(|s| s.success()),
            "testevs on node {n} of three at once: {st:?}\n{}",
            tail(&out)
        );
        let got = deliveries(&out);
        assert!(got.len() >= 500, "node {n}: {} deliveries", got.len());
        let sent = testevs_sent();
        assert!(
            got.iter().all(|m| sent.iter().any(|s| s == m)),
            "node {n}: a delivery testevs never sent"
        );
        eprintln!(
            "testevs on node {n} of three at once: exit 0, {} deliveries",
            got.len()
        );
    }

    // evsverify on all three nodes for a bounded time: every delivery's SHA-1 must match
    // (it exits 1 on a mismatch); SIGTERM ends it.
    let secs: u64 = std::env::var("EVSVERIFY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut children: Vec<_> = (1..=3)
        .map(|n| lab.spawn_client(n, &p.evsverify.program, &format!("evsverify-n{n}")))
        .collect();
    // A bounded run, not a synchronisation: nothing is awaited but the time.
    std::thread::sleep(Duration::from_secs(secs));
    for c in children.iter_mut() {
        assert!(
            matches!(c.try_wait(), Ok(None)),
            "evsverify exited early: {:?}",
            c.try_wait()
        );
        kill(c.id(), "TERM");
        let _ = c.wait();
    }
    for n in 1..=3 {
        let out = lab.output(&format!("evsverify-n{n}"));
        assert!(!out.contains("incorrect hash"), "node {n}: digest mismatch");
        let verified = out.lines().filter(|l| l.starts_with("SIZE ")).count();
        assert!(
            verified > 0,
            "node {n}: no delivery verified:\n{}",
            head(&out)
        );
        let cc = confchgs(&out);
        assert_eq!(
            cc.first().map(|c| c.members.clone()),
            Some(vec![1, 2, 3]),
            "node {n}"
        );
        eprintln!("evsverify on node {n} for {secs} s: {verified} deliveries verified");
    }
}
