//! Backends run a topology and apply steps; the driver owns the scenario logic.
//!
//! `corosync` is real corosync 3.1.7 in network namespaces, `native` the same with our
//! `totemd` on every node and `mixed` with both in one ring (module `corosync`); `sim` is our
//! engine in the deterministic simulator, in virtual time (module `sim`).

pub mod agent;
pub mod corosync;
pub mod netns;
pub mod sim;
mod sim_svc;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::scenario::model::Topology;
use crate::scenario::raw::{Ipc, Signal, Transport};
use crate::trace::TraceSink;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Real corosync 3.1.7 (Debian), one network namespace per node; needs root.
    Corosync,
    /// Our Totem engine (totem-cpg) in the deterministic simulator, in virtual time; no root.
    Sim,
    /// Our daemon totemd on every node, unmodified libcpg clients; needs root.
    Native,
    /// corosync on odd-numbered nodes, totemd on even ones, one ring; needs root.
    Mixed,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Corosync => "corosync",
            Self::Sim => "sim",
            Self::Native => "native",
            Self::Mixed => "mixed",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a backend can do; the driver skips a scenario whose needs exceed it.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub transports: Vec<Transport>,
    pub max_nodes: u32,
    /// Fewest nodes the backend can run (a mixed ring needs two).
    pub min_nodes: u32,
    /// SIGSTOP/SIGCONT/SIGKILL of a node's daemon.
    pub signals: bool,
    pub partitions: bool,
    /// Captures the ring's traffic as pcap.
    pub pcap: bool,
    /// libqb IPC types (`system.qb_ipc_type`) the clients can be served over.
    pub ipc: Vec<Ipc>,
    /// Sets the MTU of the nodes' interfaces (`topology.link_mtu`).
    pub link_mtu: bool,
    /// The most knet links it builds (`topology.links`, `cut_link`).
    pub max_links: u32,
    /// The nodes whose daemon serves EVS (docs/evs.md): totemd's, not corosync 3's.
    pub evs_nodes: EvsNodes,
    /// The client libraries of Pacemaker's other services the backend serves (quorum,
    /// cmap, cfg); a scenario calling another is skipped.
    pub services: Vec<totem_agent_protocol::svc::Service>,
}

/// Where EVS clients can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvsNodes {
    /// Nowhere: every daemon is corosync 3, which has no EVS service.
    None,
    /// Every node (totemd or the simulator everywhere).
    All,
    /// The even-numbered nodes (a mixed ring: totemd there, corosync on the odd ones).
    Even,
}

impl EvsNodes {
    /// Whether an EVS client can run on `node`.
    pub fn has(self, node: u32) -> bool {
        match self {
            EvsNodes::None => false,
            EvsNodes::All => true,
            EvsNodes::Even => node % 2 == 0,
        }
    }
}

/// A step in the terms a backend understands (the driver turns scenario steps into these).
#[derive(Debug, Clone)]
pub enum Action {
    StartNode(u32),
    StopNode(u32),
    KillNode(u32),
    PauseNode(u32),
    ResumeNode(u32),
    Partition(Vec<Vec<u32>>),
    Heal,
    /// Takes knet link `link` of node `node` down (`up` false) or up again.
    SetLink {
        node: u32,
        link: u32,
        up: bool,
    },
    StartClient {
        name: String,
        node: u32,
    },
    SignalClient {
        name: String,
        signal: Signal,
    },
    /// Close the client's stdin.
    QuitClient(String),
    /// One command for the client's agent.
    Command {
        client: String,
        request: totem_agent_protocol::Request,
    },
}

#[derive(Debug)]
pub struct BackendError(pub String);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendError {}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

pub type BResult<T> = Result<T, BackendError>;

/// Files a run leaves for the report.
#[derive(Debug, Default, Clone)]
pub struct Artifacts {
    pub files: Vec<PathBuf>,
}

pub trait Backend {
    fn kind(&self) -> BackendKind;
    fn capabilities(&self) -> Capabilities;
    /// `Err(reason)` when this backend cannot run here: the case is then *skipped*.
    fn availability(&self) -> Result<(), String>;
    /// `Err(reason)` when EVS clients cannot run here (the agent has no EVS library): a
    /// scenario with EVS clients is then *skipped*.
    fn evs_availability(&self) -> Result<(), String> {
        Ok(())
    }
    /// Builds the topology and starts recording into `sink`. `artifacts` is where logs and
    /// captures go (a report directory), when the run keeps them.
    fn start(
        &mut self,
        topology: &Topology,
        sink: TraceSink,
        artifacts: Option<&Path>,
    ) -> BResult<()>;
    fn apply(&mut self, action: &Action) -> BResult<()>;
    /// Current ring membership (node numbers) as seen by `node`'s daemon, when it runs.
    fn ring_members(&mut self, node: u32) -> BResult<Option<Vec<u32>>>;
    /// Everything recorded so far.
    fn observe(&self) -> crate::trace::Trace;
    /// Tears everything down; safe to call twice and after a failed start.
    fn stop(&mut self) -> BResult<Artifacts>;
    /// After [`Backend::stop`]: the knet packets the nodes dropped because they failed
    /// decryption or verification, one line per node. Every node of a run shares one key,
    /// so any drop is a failure.
    fn crypto_drops(&self) -> Vec<String> {
        Vec::new()
    }
    /// The backend's virtual clock, for a simulator: time passes only through
    /// [`Backend::pass_time`], and every wait of the driver is measured on it. `None` (the
    /// default) means wall-clock time.
    fn virtual_now(&self) -> Option<Duration> {
        None
    }
    /// Lets `d` of virtual time pass (runs the simulation). Wall-clock backends are never
    /// asked.
    fn pass_time(&mut self, _d: Duration) {}
    /// How to run exactly this case again, for a backend whose runs repeat (the
    /// simulator's seed); printed with a failure.
    fn replay_hint(&self, _scenario: &str) -> Option<String> {
        None
    }
}

/// A fresh backend instance for one case.
pub fn make(kind: BackendKind, cfg: &corosync::Config) -> Box<dyn Backend> {
    match kind {
        BackendKind::Corosync => Box::new(corosync::Corosync::new(cfg.clone())),
        BackendKind::Sim => Box::new(sim::SimBackend::new(cfg.sim_seed)),
        BackendKind::Native => Box::new(corosync::Corosync::with_flavor(
            cfg.clone(),
            corosync::Flavor::Native,
        )),
        BackendKind::Mixed => Box::new(corosync::Corosync::with_flavor(
            cfg.clone(),
            corosync::Flavor::Mixed,
        )),
    }
}
