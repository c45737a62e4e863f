//! Pacemaker 2.1.5 (Debian 12's package, unmodified) on a 3-node totemd ring and on a
//! mixed ring (corosync 3.1.7 on node 1, totemd on nodes 2 and 3), knet, in network
//! namespaces; every step is read back from `crm_mon --output-as=xml`:
//!
//! 1. every node starts pacemakerd; one DC is elected and `crm_mon` on each node shows all
//!    three online, with quorum;
//! 2. `ocf:pacemaker:Dummy` (Pacemaker's own test agent) is started on one node;
//! 3. that node's daemon and Pacemaker are killed: the others see it offline and the
//!    resource is started on a survivor;
//! 4. the cfg shutdown handshake on a survivor: `corosync-cfgtool -H` while Pacemaker runs
//!    is refused (pacemakerd answers no: CS_ERR_BUSY, the node stays); once its
//!    Pacemaker has stopped, `corosync-cfgtool -H --force` (what corosync.service's
//!    ExecStop runs) makes the daemon leave the ring and exit 0, and the last node shows it
//!    offline.
//!
//! Pacemaker authorizes its own group at run time (`cmap_set uidgid.gid.<haclient>`), so the
//! corosync.conf has no `uidgid` section. Each node gets its own /run, /dev/shm,
//! /var/lib/pacemaker and /var/log/pacemaker (bind mounts inside its namespace), and node
//! names from the nodelist (`name: pnodeN`), since the namespaces share the host's uname.
//!
//! Root, corosync and Pacemaker needed; skipped with a message otherwise. Slow (about a
//! minute per ring: Pacemaker's own timers).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{skip_reason, Lab};

const PACEMAKERD: &str = "/usr/sbin/pacemakerd";

fn pacemaker_missing() -> Option<String> {
    if let Some(why) = skip_reason(true) {
        return Some(why);
    }
    if !Path::new(PACEMAKERD).exists() {
        return Some(format!("{PACEMAKERD} is not installed"));
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Daemon {
    Totemd,
    Corosync,
}

/// One node as `crm_mon --output-as=xml` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeView {
    name: String,
    online: bool,
    is_dc: bool,
}

/// What `crm_mon --output-as=xml` says on one node.
#[derive(Debug, Clone, Default)]
struct MonView {
    quorum: bool,
    dc: Option<String>,
    nodes: Vec<NodeView>,
    /// Resource id → the nodes it is active on.
    resources: Vec<(String, Vec<String>)>,
}

fn parse_mon(xml: &str) -> Result<MonView, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("{e}: {xml}"))?;
    let mut view = MonView::default();
    for n in doc.descendants() {
        match n.tag_name().name() {
            "current_dc" => {
                view.quorum = n.attribute("with_quorum") == Some("true");
                if n.attribute("present") == Some("true") {
                    view.dc = n.attribute("name").map(str::to_owned);
                }
            }
            "node" if n.parent().is_some_and(|p| p.tag_name().name() == "nodes") => {
                view.nodes.push(NodeView {
                    name: n.attribute("name").unwrap_or_default().to_owned(),
                    online: n.attribute("online") == Some("true"),
                    is_dc: n.attribute("is_dc") == Some("true"),
                });
            }
            "resource" if n.attribute("active") == Some("true") => {
                let on = n
                    .children()
                    .filter(|c| c.tag_name().name() == "node")
                    .filter_map(|c| c.attribute("name").map(str::to_owned))
                    .collect();
                view.resources
                    .push((n.attribute("id").unwrap_or_default().to_owned(), on));
            }
            _ => {}
        }
    }
    Ok(view)
}

struct Cluster {
    lab: Lab,
    daemons: Vec<(u32, Daemon, u32)>,
    pacemakers: Vec<(u32, u32)>,
}

impl Cluster {
    fn new(tag: &str, kinds: &[Daemon]) -> Cluster {
        let mut lab = Lab::new(tag, kinds.len() as u32).expect("lab");
        lab.transport = "knet";
        lab.node_names = Some("pnode");
        lab.add_private_dir("shm", "/dev/shm", None);
        lab.add_private_dir("pcmk-lib", "/var/lib/pacemaker", Some("hacluster:haclient"));
        lab.add_private_dir("pcmk-log", "/var/log/pacemaker", Some("hacluster:haclient"));
        for n in 1..=kinds.len() as u32 {
            use std::os::unix::fs::PermissionsExt;
            let shm = lab.node_dir(n).join("shm");
            std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o1777)).unwrap();
            // What the package creates under /var/lib/pacemaker.
            for sub in ["cib", "pengine", "blackbox", "cores"] {
                let d = lab.node_dir(n).join("pcmk-lib").join(sub);
                std::fs::create_dir_all(&d).unwrap();
                let status = std::process::Command::new("chown")
                    .args(["hacluster:haclient", &d.display().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
        let nodes = kinds.len() as u32;
        let mut daemons = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let n = i as u32 + 1;
            let pid = match kind {
                Daemon::Totemd => lab.spawn_totemd(n, nodes),
                Daemon::Corosync => lab.spawn_corosync(n, nodes),
            };
            daemons.push((n, *kind, pid));
        }
        Cluster {
            lab,
            daemons,
            pacemakers: Vec::new(),
        }
    }

    fn daemon_pid(&self, n: u32) -> u32 {
        self.daemons.iter().find(|d| d.0 == n).unwrap().2
    }

    fn start_pacemaker(&mut self, n: u32) {
        let pid = self.lab.spawn_program(
            n,
            &format!("env PCMK_logfile=/var/log/pacemaker/pacemaker.log {PACEMAKERD} -f"),
        );
        self.pacemakers.push((n, pid));
    }

    fn pacemaker_pid(&self, n: u32) -> u32 {
        self.pacemakers.iter().rev().find(|p| p.0 == n).unwrap().1
    }

    fn mon(&self, n: u32) -> Result<MonView, String> {
        let xml = self.lab.try_tool(n, "crm_mon -1 --output-as=xml")?;
        parse_mon(&xml)
    }

    fn pcmk_log(&self, n: u32) -> String {
        std::fs::read_to_string(self.lab.node_dir(n).join("pcmk-log/pacemaker.log"))
            .unwrap_or_default()
    }

    /// Polls `crm_mon` on node `n` until `pred` holds.
    fn wait_mon(
        &self,
        n: u32,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&MonView) -> bool,
    ) -> MonView {
        let start = Instant::now();
        let mut last = Err(String::from("not asked yet"));
        while start.elapsed() < timeout {
            last = self.mon(n);
            if let Ok(v) = &last {
                if pred(v) {
                    eprintln!("node {n}: {what} after {:?}", start.elapsed());
                    return v.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "node {n}: {what} not seen in {timeout:?}; last crm_mon: {last:?}\n--- pacemaker log:\n{}\n--- daemon log:\n{}",
            tail(&self.pcmk_log(n), 60),
            tail(&self.lab.log(n), 40)
        );
    }
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn online(v: &MonView) -> Vec<String> {
    v.nodes
        .iter()
        .filter(|n| n.online)
        .map(|n| n.name.clone())
        .collect()
}

fn names(ns: &[u32]) -> Vec<String> {
    ns.iter().map(|n| format!("pnode{n}")).collect()
}

const DUMMY: &str = r#"<primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy"><operations><op id="dummy-monitor" name="monitor" interval="5s"/></operations></primitive>"#;

fn run_cluster(tag: &str, kinds: &[Daemon]) {
    let mut c = Cluster::new(tag, kinds);
    let all = [1, 2, 3];
    // Pacemaker waits for the daemon's IPC (it retries); start it once the ring is up.
    for &n in &all {
        c.lab
            .wait_log(n, Duration::from_secs(20), |l| {
                l.contains("Completed service synchronization")
            })
            .expect("ring up");
    }
    for &n in &all {
        c.start_pacemaker(n);
    }

    // 1. One DC, everyone online with quorum, seen from every node.
    let mut dcs = Vec::new();
    for &n in &all {
        let v = c.wait_mon(n, "DC and 3 nodes online", Duration::from_secs(120), |v| {
            v.dc.is_some() && v.quorum && online(v) == names(&all)
        });
        dcs.push(v.dc.clone().unwrap());
        assert_eq!(v.nodes.iter().filter(|n| n.is_dc).count(), 1, "{v:?}");
    }
    assert!(dcs.windows(2).all(|w| w[0] == w[1]), "one DC: {dcs:?}");
    let log = c.pcmk_log(2);
    assert!(
        !log.contains("Could not authorize group with Corosync"),
        "pacemakerd's uidgid.gid write was refused:\n{}",
        tail(&log, 40)
    );

    // 2. A Dummy resource, started somewhere.
    c.lab
        .try_tool(
            1,
            "crm_attribute --type crm_config --name stonith-enabled --update false",
        )
        .expect("stonith-enabled=false");
    c.lab
        .try_tool(
            1,
            &format!("cibadmin --create -o resources --xml-text '{DUMMY}'"),
        )
        .expect("create dummy");
    let v = c.wait_mon(1, "dummy started", Duration::from_secs(60), |v| {
        v.resources
            .iter()
            .any(|(id, on)| id == "dummy" && on.len() == 1)
    });
    let host = v
        .resources
        .iter()
        .find(|(id, _)| id == "dummy")
        .map(|(_, on)| on[0].clone())
        .unwrap();
    let victim: u32 = host.trim_start_matches("pnode").parse().unwrap();
    eprintln!("dummy runs on {host}");

    // 3. Its node dies (daemon and Pacemaker killed): the resource moves.
    let pcmk = c.pacemaker_pid(victim);
    c.lab.stop_pid(pcmk, "KILL");
    let daemon = c.daemon_pid(victim);
    c.lab.stop_pid(daemon, "KILL");
    let rest: Vec<u32> = all.iter().copied().filter(|&n| n != victim).collect();
    let watcher = rest[0];
    let v = c.wait_mon(watcher, "dummy moved", Duration::from_secs(90), |v| {
        online(v) == names(&rest)
            && v.quorum
            && v.resources
                .iter()
                .any(|(id, on)| id == "dummy" && on.len() == 1 && on[0] != host)
    });
    eprintln!("after the kill: {v:?}");

    // 4. The shutdown handshake on the other survivor.
    let leaver = rest[1];
    // corosync-cfgtool exits 0 whatever the answer (shutdown_do returns nothing); only
    // its stderr tells.
    let refused = c.lab.tool(leaver, "corosync-cfgtool -H 2>&1");
    assert!(
        refused.contains("Could not shutdown (error = 10)"),
        "CS_ERR_BUSY expected while Pacemaker runs: {refused}"
    );
    let log = c.pcmk_log(leaver);
    assert!(
        log.contains("Corosync wants to shut down: optional"),
        "pacemakerd was not asked:\n{}",
        tail(&log, 30)
    );
    assert!(
        c.lab.running(leaver),
        "the daemon must stay after a refused shutdown"
    );
    // Pacemaker stops (its resources move first), then the daemon is stopped as
    // corosync.service's ExecStop does it.
    let pcmk = c.pacemaker_pid(leaver);
    assert_eq!(c.lab.stop_pid(pcmk, "TERM"), Some(0), "pacemakerd's exit");
    c.lab
        .try_tool(leaver, "corosync-cfgtool -H --force")
        .expect("corosync-cfgtool -H --force");
    let daemon = c.daemon_pid(leaver);
    assert_eq!(
        c.lab.wait_exit(daemon, Duration::from_secs(15)),
        Some(0),
        "the daemon leaves the ring and exits 0"
    );
    let v = c.wait_mon(
        watcher,
        "the leaver offline",
        Duration::from_secs(60),
        |v| online(v) == names(&[watcher]),
    );
    eprintln!("after the shutdown: {v:?}");
    let log = c.lab.log(watcher);
    assert!(
        log.contains(&format!("Node {leaver} was shut down by sysadmin")),
        "the last node logs the shutdown:\n{}",
        tail(&log, 30)
    );
}

#[test]
fn pacemaker_runs_on_a_totemd_ring() {
    if let Some(why) = pacemaker_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    run_cluster("pm", &[Daemon::Totemd, Daemon::Totemd, Daemon::Totemd]);
}

#[test]
fn pacemaker_runs_on_a_mixed_ring() {
    if let Some(why) = pacemaker_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    run_cluster("pmx", &[Daemon::Corosync, Daemon::Totemd, Daemon::Totemd]);
}
