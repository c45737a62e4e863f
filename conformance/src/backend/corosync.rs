//! Real daemons, one network namespace per node: corosync 3.1.7 (Debian's package), our
//! `totemd`, or a mix of both in one ring (the `corosync`, `native` and `mixed` backends).
//!
//! How the pieces fit is what corosync-lab.md measured: corosync has no run_dir option and
//! a compiled-in /run/corosync.pid, so each daemon gets a private /run bind-mounted inside
//! the mount namespace `ip netns exec` creates; IPC sockets are abstract and per network
//! namespace, so agents must run in their node's namespace.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::agent::{self, AgentProc};
use super::netns::{self, Net};
use super::{
    Action, Artifacts, BResult, Backend, BackendError, BackendKind, Capabilities, EvsNodes,
};
use crate::scenario::model::{Topology, MAX_NODES};
use crate::scenario::raw::{Ipc, Signal, Transport};
use crate::trace::{Trace, TraceSink};
use totem_agent_protocol::svc::Service;

const TEMPLATE: &str = include_str!("../../../fixtures/corosync/corosync.conf.tmpl");
const COROSYNC: &str = "/usr/sbin/corosync";

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Capture the ring on the bridge with tcpdump (needs an artifacts directory).
    pub pcap: bool,
    /// Seed of the `sim` backend's simulated network.
    pub sim_seed: u64,
}

/// Which daemon runs on each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// corosync everywhere.
    Corosync,
    /// totemd everywhere.
    Native,
    /// totemd on the even-numbered nodes, corosync on the others: 1 of 2 or 3 nodes, 2 of
    /// 4 or 5. A ring of one cannot be mixed.
    Mixed,
}

impl Flavor {
    fn runs_totemd(self, node: u32) -> bool {
        match self {
            Self::Corosync => false,
            Self::Native => true,
            Self::Mixed => node % 2 == 0,
        }
    }
}

struct Node {
    child: Child,
    paused: bool,
    totemd: bool,
}

pub struct Corosync {
    cfg: Config,
    flavor: Flavor,
    net: Option<Net>,
    topology: Option<Topology>,
    dir: Option<PathBuf>,
    keep_dir: bool,
    nodes: BTreeMap<u32, Node>,
    agents: BTreeMap<String, AgentProc>,
    tcpdump: Option<Child>,
    sink: TraceSink,
    scenario: String,
    killed_pids: Vec<u32>,
    /// Nodes whose daemon dropped knet packets it could not decrypt or verify.
    crypto_drops: Vec<String>,
}

/// Length of the run's knet key: corosync-keygen's default (`DEFAULT_KEYFILE_LEN`).
const AUTHKEY_LEN: usize = 256;
/// The template's crypto-off lines, which a crypto topology replaces (ci/bench-ring.sh
/// does the same).
const CRYPTO_OFF: &str = "\tcrypto_cipher: none\n\tcrypto_hash: none\n";

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Corosync {
    pub fn new(cfg: Config) -> Self {
        Self::with_flavor(cfg, Flavor::Corosync)
    }

    /// The backend for `flavor`'s mix of daemons.
    pub fn with_flavor(cfg: Config, flavor: Flavor) -> Self {
        Self {
            cfg,
            flavor,
            net: None,
            topology: None,
            dir: None,
            keep_dir: false,
            nodes: BTreeMap::new(),
            agents: BTreeMap::new(),
            tcpdump: None,
            sink: TraceSink::default(),
            scenario: String::new(),
            killed_pids: Vec::new(),
            crypto_drops: Vec::new(),
        }
    }

    fn dir(&self) -> BResult<&Path> {
        self.dir
            .as_deref()
            .ok_or_else(|| BackendError("not started".into()))
    }

    fn net(&self) -> BResult<&Net> {
        self.net
            .as_ref()
            .ok_or_else(|| BackendError("not started".into()))
    }

    /// corosync.conf for `node` (corosync.conf(5)); nodeid N has address 10.200.0.1N.
    pub fn render_conf(topo: &Topology, node: u32, dir: &Path) -> String {
        let nd = dir.join(format!("n{node}"));
        let mut timings = String::new();
        let t = &topo.totem;
        for (k, v) in [
            ("token", t.token_ms),
            ("consensus", t.consensus_ms),
            ("join", t.join_ms),
            (
                "token_retransmits_before_loss_const",
                t.token_retransmits_before_loss_const,
            ),
            ("max_messages", t.max_messages),
        ] {
            if let Some(v) = v {
                timings.push_str(&format!("\t{k}: {v}\n"));
            }
        }
        let mut nodelist = String::new();
        for n in 1..=topo.nodes {
            // A multi-link configuration needs every node's name (totem_config_validate).
            let link1 = if topo.links > 1 {
                format!(
                    "\t\tring1_addr: {}\n\t\tname: node{n}\n",
                    netns::link_addr(1, n)
                )
            } else {
                String::new()
            };
            nodelist.push_str(&format!(
                "\tnode {{\n\t\tring0_addr: {}\n{link1}\t\tnodeid: {n}\n\t}}\n",
                netns::addr(n)
            ));
        }
        let crypto = match topo.crypto {
            Some(c) => {
                let (m, ci, h) = c.knet();
                format!(
                    "\tcrypto_model: {m}\n\tcrypto_cipher: {ci}\n\tcrypto_hash: {h}\n\tkeyfile: {}\n",
                    dir.join("authkey").display()
                )
            }
            None => CRYPTO_OFF.into(),
        };
        TEMPLATE
            .replace(CRYPTO_OFF, &crypto)
            .replace(
                "{{transport}}",
                match topo.transport {
                    Transport::Udpu => "udpu",
                    Transport::Knet => "knet",
                },
            )
            .replace("{{ipc}}", topo.ipc.as_str())
            .replace("{{totem_timings}}", &timings)
            .replace("{{nodelist}}", &nodelist)
            .replace(
                "{{logfile}}",
                &nd.join("log/corosync.log").display().to_string(),
            )
            .replace("{{state_dir}}", &nd.join("state").display().to_string())
    }

    fn start_node(&mut self, n: u32) -> BResult<()> {
        if let Some(node) = self.nodes.get_mut(&n) {
            if node.child.try_wait()?.is_none() {
                return Err(BackendError(format!("node {n} is already running")));
            }
        }
        let topo = self
            .topology
            .clone()
            .ok_or_else(|| BackendError("not started".into()))?;
        let dir = self.dir()?.to_owned();
        let nd = dir.join(format!("n{n}"));
        for sub in ["run", "state", "log"] {
            std::fs::create_dir_all(nd.join(sub))?;
        }
        let conf = nd.join("corosync.conf");
        std::fs::write(&conf, Self::render_conf(&topo, n, &dir))?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(nd.join("log/corosync.stdout"))?;
        let totemd = self.flavor.runs_totemd(n);
        // A killed totemd leaves its last status behind; the new one must not be taken for
        // a member before it has formed a ring.
        self.note_crypto_drops(n);
        let _ = std::fs::remove_file(nd.join("state/status.json"));
        let daemon = if totemd {
            // totemd reports its ring in a status file (it has no cmap for corosync-cmapctl).
            format!(
                "{} -f -c '{}' --status-file '{}'",
                agent::totemd_path().map_err(BackendError)?.display(),
                conf.display(),
                nd.join("state/status.json").display()
            )
        } else {
            format!("{COROSYNC} -f -c '{}'", conf.display())
        };
        let script = format!(
            "mount --bind '{}' /run && exec {daemon}",
            nd.join("run").display(),
        );
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.net()?.node_ns(n),
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .map_err(|e| BackendError(format!("cannot start the daemon on node {n}: {e}")))?;
        self.nodes.insert(
            n,
            Node {
                child,
                paused: false,
                totemd,
            },
        );
        Ok(())
    }

    fn node_mut(&mut self, n: u32) -> BResult<&mut Node> {
        self.nodes
            .get_mut(&n)
            .ok_or_else(|| BackendError(format!("node {n} was never started")))
    }

    /// Signals corosync on `n` and, for TERM/KILL, waits for it to exit.
    fn end_node(&mut self, n: u32, sig: i32, grace: Duration) -> BResult<()> {
        let node = self.node_mut(n)?;
        if node.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = node.child.id();
        if node.paused {
            crate::sys::kill(pid as i32, libc::SIGCONT);
            node.paused = false;
        }
        crate::sys::kill(pid as i32, sig);
        let deadline = Instant::now() + grace;
        while node.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                crate::sys::kill(pid as i32, libc::SIGKILL);
                node.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if sig == libc::SIGKILL {
            self.killed_pids.push(pid);
        }
        Ok(())
    }

    fn start_tcpdump(&mut self, dir: &Path) -> BResult<()> {
        if which("tcpdump").is_none() {
            return Ok(());
        }
        let err_path = dir.join("tcpdump.stderr");
        let err = std::fs::File::create(&err_path)?;
        // -B 65536 and -Z root: corosync-lab.md gotchas 3 (drops) and tcpdump's privilege drop.
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.net()?.hub(),
                "tcpdump",
                "-i",
                "br0",
                "-B",
                "65536",
                "-Z",
                "root",
                "-U",
                "-w",
            ])
            .arg(dir.join("ring.pcap"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .process_group(0)
            .spawn()?;
        self.tcpdump = Some(child);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if std::fs::read_to_string(&err_path)
                .unwrap_or_default()
                .contains("listening on")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Files a SIGKILLed corosync leaves in /dev/shm (corosync-lab.md gotcha 5).
    fn clean_shm(pids: &[u32]) {
        let Ok(rd) = std::fs::read_dir("/dev/shm") else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if pids.iter().any(|p| {
                name.starts_with(&format!("qb-corosync-{p}-"))
                    || name.starts_with(&format!("qb-{p}-"))
            }) {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(p)
                } else {
                    std::fs::remove_file(p)
                };
            }
        }
    }
}

impl Corosync {
    /// One random key for the run, from the OS generator, in the case's directory (the
    /// capture's decoder needs it) and readable by every node's daemon.
    fn write_authkey(dir: &Path) -> BResult<()> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let mut key = vec![0u8; AUTHKEY_LEN];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
        let path = dir.join("authkey");
        std::fs::write(&path, &key)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    /// Records the knet crypto drops a totemd node's status file reports
    /// (`knet_crypto_dropped`): with one key on every node a healthy ring drops none.
    fn note_crypto_drops(&mut self, node: u32) {
        if self.topology.as_ref().is_none_or(|t| t.crypto.is_none()) {
            return;
        }
        let Some(dir) = self.dir.as_ref() else { return };
        let Ok(text) = std::fs::read_to_string(dir.join(format!("n{node}/state/status.json")))
        else {
            return;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        if let Some(d) = v["knet_crypto_dropped"].as_u64().filter(|d| *d > 0) {
            self.crypto_drops.push(format!(
                "node {node} (totemd) dropped {d} knet packet(s) it could not decrypt (status file knet_crypto_dropped)"
            ));
        }
    }

    /// Records the "Unable to decrypt" lines of every node's log: libknet's message for a
    /// packet that fails its HMAC or decryption, which totemd writes too
    /// (protocol/daemon/src/link_crypto.rs); its status file's count lags by up to a second.
    fn note_log_crypto_drops(&mut self) {
        if self.topology.as_ref().is_none_or(|t| t.crypto.is_none()) {
            return;
        }
        let Some(dir) = self.dir.clone() else { return };
        let n = self.topology.as_ref().map_or(0, |t| t.nodes);
        for node in 1..=n {
            let Ok(log) = std::fs::read_to_string(dir.join(format!("n{node}/log/corosync.log")))
            else {
                continue;
            };
            let c = log
                .lines()
                .filter(|l| l.contains("Unable to decrypt"))
                .count();
            if c > 0 {
                let daemon = if self.flavor.runs_totemd(node) {
                    "totemd"
                } else {
                    "corosync"
                };
                self.crypto_drops.push(format!(
                    "node {node} ({daemon}) logged \"Unable to decrypt\" {c} time(s)"
                ));
            }
        }
    }

    /// The ring a totemd node reports in its status file once operational and synced
    /// (`--status-file`: one JSON object, replaced atomically).
    fn totemd_members(&self, node: u32) -> Option<Vec<u32>> {
        let path = self
            .dir
            .as_ref()?
            .join(format!("n{node}/state/status.json"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        if v["state"] != "operational" || v["synced"] != true {
            return None;
        }
        let mut m: Vec<u32> = v["members"]
            .as_array()?
            .iter()
            .filter_map(|x| x.as_u64().map(|n| n as u32))
            .collect();
        m.sort_unstable();
        Some(m)
    }
}

pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Why the real backend cannot run here, if it cannot.
pub fn availability() -> Result<(), String> {
    flavor_availability(Flavor::Corosync)
}

fn flavor_availability(flavor: Flavor) -> Result<(), String> {
    if !crate::sys::is_root() {
        return Err("needs root (network namespaces, bind mounts)".into());
    }
    if flavor != Flavor::Native && !Path::new(COROSYNC).is_file() {
        return Err(format!("{COROSYNC} not found (run ci/install-corosync.sh)"));
    }
    if flavor != Flavor::Corosync {
        agent::totemd_path()?;
    }
    for p in ["ip"] {
        if which(p).is_none() {
            return Err(format!("`{p}` not found (iproute2)"));
        }
    }
    let (agent, args) = agent::agent_command()?;
    let out = Command::new(&agent)
        .args(&args)
        .arg("--probe")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", agent.display()))?;
    if !out.status.success() {
        return Err(format!(
            "agent cannot load its CPG library: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok(())
}

/// The services whose client library the agent loads: its `--probe` line says
/// `quorum: none (why)` (`cmap: `, `cfg: `) for one that does not load; an agent that
/// names none of them is taken to serve all three. Asked once per run.
fn agent_services() -> Vec<Service> {
    static SERVICES: std::sync::OnceLock<Vec<Service>> = std::sync::OnceLock::new();
    SERVICES
        .get_or_init(|| {
            let text = agent::agent_command()
                .ok()
                .and_then(|(agent, args)| {
                    Command::new(agent).args(args).arg("--probe").output().ok()
                })
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            [
                (Service::Quorum, "quorum: "),
                (Service::Cmap, "cmap: "),
                (Service::Cfg, "cfg: "),
            ]
            .into_iter()
            .filter(|(_, tag)| {
                !text
                    .split(tag)
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with("none"))
            })
            .map(|(s, _)| s)
            .collect()
        })
        .clone()
}

/// Whether the agent can make EVS calls: its `--probe` line ends `evs: none (why)` when
/// its EVS library does not load (an agent that says nothing is taken at its word).
fn agent_evs_availability() -> Result<(), String> {
    let (agent, args) = agent::agent_command()?;
    let out = Command::new(&agent)
        .args(&args)
        .arg("--probe")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", agent.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split("evs: ").nth(1) {
        Some(evs) if evs.starts_with("none") => Err(format!(
            "the agent has no EVS library {}",
            evs.trim().trim_start_matches("none").trim()
        )),
        _ => Ok(()),
    }
}

impl Backend for Corosync {
    fn crypto_drops(&self) -> Vec<String> {
        self.crypto_drops.clone()
    }

    fn evs_availability(&self) -> Result<(), String> {
        agent_evs_availability()
    }

    fn kind(&self) -> BackendKind {
        match self.flavor {
            Flavor::Corosync => BackendKind::Corosync,
            Flavor::Native => BackendKind::Native,
            Flavor::Mixed => BackendKind::Mixed,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // corosync and totemd both speak udpu and knet (with or without crypto).
            transports: vec![Transport::Udpu, Transport::Knet],
            max_nodes: MAX_NODES,
            min_nodes: if self.flavor == Flavor::Mixed { 2 } else { 1 },
            signals: true,
            partitions: true,
            pcap: which("tcpdump").is_some(),
            // corosync and totemd both serve system.qb_ipc_type.
            ipc: vec![Ipc::Shm, Ipc::Socket],
            link_mtu: true,
            // A second bridge for knet's link 1 (corosync and totemd both run two links).
            max_links: 2,
            // EVS is totemd's alone (Flavor::runs_totemd).
            evs_nodes: match self.flavor {
                Flavor::Corosync => EvsNodes::None,
                Flavor::Native => EvsNodes::All,
                Flavor::Mixed => EvsNodes::Even,
            },
            // The agent's libquorum, libcmap and libcfg talk to either daemon, where they
            // load.
            services: agent_services(),
        }
    }

    fn availability(&self) -> Result<(), String> {
        flavor_availability(self.flavor)
    }

    fn start(
        &mut self,
        topology: &Topology,
        sink: TraceSink,
        artifacts: Option<&Path>,
    ) -> BResult<()> {
        let k = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{}{}-{k}-", netns::NS_PREFIX, std::process::id());
        let dir = match artifacts {
            Some(d) => {
                self.keep_dir = true;
                d.to_owned()
            }
            None => std::env::temp_dir().join(format!("totem-conform-{}-{k}", std::process::id())),
        };
        std::fs::create_dir_all(&dir)?;
        self.dir = Some(dir.clone());
        self.topology = Some(topology.clone());
        self.sink = sink;
        self.crypto_drops.clear();
        if topology.crypto.is_some() {
            Self::write_authkey(&dir)?;
        }
        let mut net = Net::new(prefix, topology.nodes);
        net.link_mtu = topology.link_mtu;
        net.links = topology.links;
        let r = net.create();
        self.net = Some(net);
        r?;
        if self.cfg.pcap && artifacts.is_some() {
            self.start_tcpdump(&dir)?;
        }
        Ok(())
    }

    fn apply(&mut self, action: &Action) -> BResult<()> {
        match action {
            Action::StartNode(n) => self.start_node(*n),
            Action::StopNode(n) => self.end_node(*n, libc::SIGTERM, Duration::from_secs(15)),
            Action::KillNode(n) => self.end_node(*n, libc::SIGKILL, Duration::from_secs(5)),
            Action::PauseNode(n) => {
                let node = self.node_mut(*n)?;
                crate::sys::kill(node.child.id() as i32, libc::SIGSTOP);
                node.paused = true;
                Ok(())
            }
            Action::ResumeNode(n) => {
                let node = self.node_mut(*n)?;
                crate::sys::kill(node.child.id() as i32, libc::SIGCONT);
                node.paused = false;
                Ok(())
            }
            Action::Partition(sets) => self.net()?.partition(sets),
            Action::Heal => {
                self.net()?.heal();
                Ok(())
            }
            Action::SetLink { node, link, up } => self.net()?.set_link(*node, *link, *up),
            Action::StartClient { name, node } => {
                if self.agents.contains_key(name) {
                    return Err(BackendError(format!("client {name} already started")));
                }
                let ns = self.net()?.node_ns(*node);
                let (path, args) = agent::agent_command().map_err(BackendError)?;
                let p = agent::spawn(
                    name,
                    *node,
                    Some(&ns),
                    (&path, &args),
                    self.dir()?,
                    self.sink.clone(),
                )?;
                self.agents.insert(name.clone(), p);
                Ok(())
            }
            Action::SignalClient { name, signal } => {
                let a = self
                    .agents
                    .get(name)
                    .ok_or_else(|| BackendError(format!("no client {name}")))?;
                a.signal(match signal {
                    Signal::Kill => libc::SIGKILL,
                    Signal::Term => libc::SIGTERM,
                    Signal::Stop => libc::SIGSTOP,
                    Signal::Cont => libc::SIGCONT,
                });
                Ok(())
            }
            Action::QuitClient(name) => {
                let a = self
                    .agents
                    .get_mut(name)
                    .ok_or_else(|| BackendError(format!("no client {name}")))?;
                a.close_stdin();
                Ok(())
            }
            Action::Command { client, request } => {
                let line = serde_json::to_string(request)
                    .map_err(|e| BackendError(format!("command for {client}: {e}")))?;
                self.agents
                    .get_mut(client)
                    .ok_or_else(|| BackendError(format!("no client {client}")))?
                    .send(&line)
            }
        }
    }

    fn ring_members(&mut self, node: u32) -> BResult<Option<Vec<u32>>> {
        let running = match self.nodes.get_mut(&node) {
            Some(n) => n.child.try_wait()?.is_none() && !n.paused,
            None => false,
        };
        if !running {
            return Ok(None);
        }
        if self.nodes.get(&node).is_some_and(|n| n.totemd) {
            return Ok(self.totemd_members(node));
        }
        let ns = self.net()?.node_ns(node);
        // runtime.members.<nodeid>.status = joined|left (cmap_keys(8)).
        let Ok(out) = netns::run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "corosync-cmapctl",
            "-b",
            "runtime.members",
        ]) else {
            return Ok(None);
        };
        let mut m: Vec<u32> = out
            .lines()
            .filter(|l| l.contains(".status") && l.trim_end().ends_with("= joined"))
            .filter_map(|l| {
                l.strip_prefix("runtime.members.")?
                    .split('.')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        m.sort_unstable();
        Ok(Some(m))
    }

    fn observe(&self) -> Trace {
        Trace {
            scenario: self.scenario.clone(),
            backend: self.kind().as_str().into(),
            events: self.sink.snapshot(),
        }
    }

    fn stop(&mut self) -> BResult<Artifacts> {
        let mut art = Artifacts::default();
        for (_, mut a) in std::mem::take(&mut self.agents) {
            a.stop(Duration::from_secs(2));
        }
        let nodes: Vec<u32> = self.nodes.keys().copied().collect();
        // totemd removes its status file when it stops: read the drop counts first.
        for &n in &nodes {
            if self.nodes.get(&n).is_some_and(|x| x.totemd) {
                self.note_crypto_drops(n);
            }
        }
        for n in nodes {
            let _ = self.end_node(n, libc::SIGTERM, Duration::from_secs(10));
        }
        self.note_log_crypto_drops();
        let mut pids = std::mem::take(&mut self.killed_pids);
        pids.extend(self.nodes.values().map(|n| n.child.id()));
        self.nodes.clear();
        if let Some(mut t) = self.tcpdump.take() {
            crate::sys::kill(t.id() as i32, libc::SIGTERM);
            let _ = t.wait();
        }
        if let Some(mut net) = self.net.take() {
            net.destroy();
        }
        Self::clean_shm(&pids);
        if let Some(d) = self.dir.take() {
            if self.keep_dir {
                let mut files = Vec::new();
                collect_files(&d, &mut files);
                art.files = files;
            } else {
                let _ = std::fs::remove_dir_all(&d);
            }
        }
        Ok(art)
    }
}

fn collect_files(d: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(d) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

impl Drop for Corosync {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::raw::{Crypto, CryptoCipher, CryptoHash, CryptoModel, Totem};

    fn topo(crypto: Option<Crypto>) -> Topology {
        Topology {
            nodes: 3,
            transport: Transport::Knet,
            ipc: Ipc::Shm,
            totem: Totem::default(),
            link_mtu: None,
            crypto,
            links: 1,
        }
    }

    const AES: Crypto = Crypto {
        model: CryptoModel::Openssl,
        cipher: CryptoCipher::Aes256,
        hash: CryptoHash::Sha256,
    };

    #[test]
    fn crypto_topology_writes_the_crypto_lines_and_keyfile() {
        let dir = Path::new("/tmp/case");
        let on = Corosync::render_conf(&topo(Some(AES)), 1, dir);
        assert!(on.contains("\tcrypto_model: openssl\n\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: /tmp/case/authkey\n"), "{on}");
        assert!(!on.contains("crypto_cipher: none"), "{on}");
        let off = Corosync::render_conf(&topo(None), 1, dir);
        assert!(
            off.contains(CRYPTO_OFF) && !off.contains("keyfile"),
            "{off}"
        );
    }

    #[test]
    fn authkey_is_256_random_bytes_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("conform-authkey-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Corosync::write_authkey(&d).unwrap();
        let a = std::fs::read(d.join("authkey")).unwrap();
        let mode = std::fs::metadata(d.join("authkey"))
            .unwrap()
            .permissions()
            .mode();
        Corosync::write_authkey(&d).unwrap();
        let b = std::fs::read(d.join("authkey")).unwrap();
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(a.len(), 256);
        assert_ne!(a, b, "two runs, two keys");
        assert_eq!(mode & 0o444, 0o444);
    }

    #[test]
    fn drops_in_status_files_and_logs_are_reported() {
        let d = std::env::temp_dir().join(format!("conform-drops-{}", std::process::id()));
        for n in 1..=3 {
            std::fs::create_dir_all(d.join(format!("n{n}/log"))).unwrap();
            std::fs::create_dir_all(d.join(format!("n{n}/state"))).unwrap();
            std::fs::write(d.join(format!("n{n}/log/corosync.log")), "ring formed\n").unwrap();
        }
        let mut b = Corosync::with_flavor(Config::default(), Flavor::Mixed);
        b.topology = Some(topo(Some(AES)));
        b.dir = Some(d.clone());
        std::fs::write(
            d.join("n2/state/status.json"),
            "{\"state\":\"operational\",\"knet_crypto_dropped\":0}\n",
        )
        .unwrap();
        b.note_crypto_drops(2);
        b.note_log_crypto_drops();
        assert!(b.crypto_drops().is_empty(), "{:?}", b.crypto_drops());
        std::fs::write(
            d.join("n2/state/status.json"),
            "{\"state\":\"operational\",\"knet_crypto_dropped\":4}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("n3/log/corosync.log"),
            "[KNET  ] rx: Unable to decrypt packet from 10.200.0.12:5405 (size 200)!\n",
        )
        .unwrap();
        b.note_crypto_drops(2);
        b.note_log_crypto_drops();
        let drops = b.crypto_drops();
        b.dir = None;
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(drops.len(), 2, "{drops:?}");
        assert!(drops[0].contains("node 2 (totemd) dropped 4"), "{drops:?}");
        assert!(drops[1].contains("node 3 (corosync)"), "{drops:?}");
    }
}
