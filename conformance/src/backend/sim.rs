//! The `sim` backend: the scenarios on our own engine, in the deterministic simulator
//! (`totem-sim`), with no root, no corosync and no sockets.
//!
//! Each scenario client is emulated in-process: the agent's own executor
//! (`totem-agent-protocol`, the code the agent process runs) takes the typed commands and
//! drives the pure-Rust libcpg of `totem-client` over an in-memory transport that hands libqb request bytes to the simulated node's CPG service
//! (`Node::ipc_request`, the same code `totemd` serves over libqb IPC). Time is virtual: the
//! driver's waits run the simulation ([`Backend::pass_time`]), so a 20 s timeout costs
//! milliseconds, and a run is reproducible from its seed. EVS clients (docs/evs.md) run the
//! same way: `totem_client::evs` over the simulated node's EVS connections
//! (`Sim::evs_ipc_*`, the request handler totemd serves on `evs`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use totem_agent_protocol::client::{Connect, ConnectEvs, RustCpg, RustEvs};
use totem_agent_protocol::{Event as AgentEvent, Executor, Flow, Host, Request};
use totem_client::{FlowControl, SharedBuffer, Transport, TransportError};
use totem_cpg::LibReply;
use totem_knet::crypto::KnetCrypto;
use totem_knet::KnetSettings;
use totem_sim::{IpcError, NetworkOptions, SharedFile, Sim, Timings};
use totem_srp::MembState;
use totem_wire::ipc::CsError;

use super::{
    Action, Artifacts, BResult, Backend, BackendError, BackendKind, Capabilities, EvsNodes,
};
use crate::scenario::model::Topology;
use crate::scenario::raw::{Ipc, Signal, Transport as ScenarioTransport};
use crate::trace::{from_agent, EventKind, TraceSink};

/// corosync 3.1.7's defaults for `token` and `token_coefficient` (corosync.conf(5)); the
/// real backend runs with them too unless a scenario sets `token_ms`.
const DEFAULT_TOKEN_MS: u32 = 3000;
const DEFAULT_TOKEN_COEFFICIENT_MS: u32 = 650;
/// A blocked IPC call (the daemon is SIGSTOPped) gives up after this much virtual time; the
/// driver then reports NO_ANSWER, as for an agent stuck in libqb.
const STOPPED_CALL_LIMIT: Duration = Duration::from_secs(60);
/// First pid handed to simulated clients (each gets its own).
const FIRST_PID: u32 = 4000;
/// Virtual time one agent command takes end to end.
const COMMAND_LATENCY: Duration = Duration::from_millis(2);
/// First simulated handle value (opaque, like libcpg's).
const FIRST_HANDLE: u64 = 0x7a11_0000_0001;

pub(super) type Shared = Rc<RefCell<Sim>>;

fn sim_time(d: Duration) -> totem_srp::Duration {
    totem_srp::Duration::from_micros(d.as_micros() as u64)
}

/// Which service a simulated libqb connection reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// `cpg` (libcpg).
    Cpg,
    /// `evs` (libevs, docs/evs.md): `Sim::evs_ipc_*`.
    Evs,
}

/// libqb's connection as the simulator offers it.
struct SimTransport {
    sim: Shared,
    node: u32,
    conn: u64,
    closed: bool,
    service: Service,
}

impl Drop for SimTransport {
    fn drop(&mut self) {
        // A process that exits closes its connections.
        self.close();
    }
}

impl SimTransport {
    fn call(&mut self, bytes: &[u8]) -> Result<LibReply, TransportError> {
        if self.closed {
            return Err(TransportError::Disconnected("closed".into()));
        }
        let mut waited = Duration::ZERO;
        loop {
            let r = match self.service {
                Service::Cpg => self
                    .sim
                    .borrow_mut()
                    .ipc_request(self.node, self.conn, bytes),
                Service::Evs => self
                    .sim
                    .borrow_mut()
                    .evs_ipc_request(self.node, self.conn, bytes),
            };
            match r {
                Ok(reply) => return Ok(reply),
                Err(IpcError::Disconnected) => {
                    return Err(TransportError::Disconnected("daemon gone".into()))
                }
                Err(IpcError::Stopped) if waited < STOPPED_CALL_LIMIT => {
                    // The request waits in the socket until the daemon runs again.
                    self.sim.borrow_mut().run_for_ms(10);
                    waited += Duration::from_millis(10);
                }
                Err(IpcError::Stopped) => {
                    return Err(TransportError::Io(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )))
                }
            }
        }
    }
}

impl Transport for SimTransport {
    fn request(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.call(request)? {
            LibReply::Response(bytes) => Ok(bytes),
            LibReply::NoResponse | LibReply::Retry => Err(TransportError::Protocol(
                "the daemon sent no response".into(),
            )),
            LibReply::Disconnect(why) => Err(TransportError::Disconnected(why)),
        }
    }

    fn send(&mut self, request: &[u8]) -> Result<(), TransportError> {
        let mut waited = Duration::ZERO;
        loop {
            match self.call(request)? {
                LibReply::Disconnect(why) => return Err(TransportError::Disconnected(why)),
                // The daemon holds the request in its socket until the ring has room.
                LibReply::Retry if waited < STOPPED_CALL_LIMIT => {
                    self.sim.borrow_mut().run_for_ms(1);
                    waited += Duration::from_millis(1);
                }
                LibReply::Retry => {
                    return Err(TransportError::Io(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )))
                }
                _ => return Ok(()),
            }
        }
    }

    fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, TransportError> {
        if !self.event_ready(timeout)? {
            return Ok(None);
        }
        let mut sim = self.sim.borrow_mut();
        match self.service {
            Service::Cpg => sim.ipc_next_event(self.node, self.conn),
            Service::Evs => sim.evs_ipc_next_event(self.node, self.conn),
        }
        .map_err(|_| TransportError::Disconnected("daemon gone".into()))
    }

    fn flow_control(&self) -> FlowControl {
        FlowControl::from_raw(self.sim.borrow_mut().ipc_flow_control(self.node))
    }

    fn max_msg_size(&self) -> usize {
        totem_wire::ipc::IPC_MAX_MSG_LEN
    }

    fn event_fd(&self) -> Option<i32> {
        None
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            if let Ok(mut sim) = self.sim.try_borrow_mut() {
                match self.service {
                    Service::Cpg => sim.ipc_disconnect(self.node, self.conn),
                    Service::Evs => sim.evs_ipc_disconnect(self.node, self.conn),
                }
            }
        }
    }

    fn pause(&mut self, d: Duration) {
        let ms = d.as_millis().max(1) as u64;
        self.sim.borrow_mut().run_for_ms(ms);
    }

    fn event_ready(&mut self, timeout: Option<Duration>) -> Result<bool, TransportError> {
        // Waiting on the event channel lets virtual time pass, 1 ms at a time.
        let limit = timeout.unwrap_or(STOPPED_CALL_LIMIT);
        let mut waited = Duration::ZERO;
        loop {
            let pending = match self.service {
                Service::Cpg => self.sim.borrow().ipc_event_pending(self.node, self.conn),
                Service::Evs => self
                    .sim
                    .borrow()
                    .evs_ipc_event_pending(self.node, self.conn),
            };
            match pending {
                Ok(true) => return Ok(true),
                Err(_) => return Err(TransportError::Disconnected("daemon gone".into())),
                Ok(false) if waited >= limit => return Ok(false),
                Ok(false) => {
                    self.sim.borrow_mut().run_for_ms(1);
                    waited += Duration::from_millis(1);
                }
            }
        }
    }

    fn zcb_create(
        &mut self,
        map_size: usize,
    ) -> Result<(Vec<u8>, Box<dyn SharedBuffer>), TransportError> {
        let shm = self
            .sim
            .borrow_mut()
            .shared_memory(self.node)
            .ok_or_else(|| TransportError::Disconnected("no such node".into()))?;
        let n = shm.borrow().len();
        let path = format!(
            "/dev/shm/corosync_zerocopy-sim{:06}",
            self.conn * 1000 + n as u64
        )
        .into_bytes();
        let file: SharedFile = Rc::new(RefCell::new(vec![0; map_size]));
        shm.borrow_mut().insert(path.clone(), file.clone());
        Ok((path, Box::new(SimBuffer(file))))
    }
}

/// The client's "mmap" of a simulated shared file.
struct SimBuffer(SharedFile);

impl SharedBuffer for SimBuffer {
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> bool {
        let mut f = self.0.borrow_mut();
        match f.get_mut(offset..offset + data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
    fn read(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .get(offset..offset + len)
            .map(<[u8]>::to_vec)
    }
}

/// How a simulated client's `cpg_initialize` reaches its node: libqb's connect, as the
/// simulator offers it.
struct SimConnector {
    sim: Shared,
    node: u32,
    pid: u32,
}

impl Connect for SimConnector {
    type Transport = SimTransport;

    fn connect(&mut self) -> Result<SimTransport, CsError> {
        let conn = self.sim.borrow_mut().ipc_connect(self.node);
        match conn {
            Some(conn) => Ok(SimTransport {
                sim: self.sim.clone(),
                node: self.node,
                conn,
                closed: false,
                service: Service::Cpg,
            }),
            // qb_ipcc_connect fails with ECONNREFUSED: CS_ERR_LIBRARY.
            None => Err(CsError::Library),
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }
}

impl ConnectEvs for SimConnector {
    type Transport = SimTransport;

    fn connect_evs(&mut self) -> Result<SimTransport, CsError> {
        let conn = self.sim.borrow_mut().evs_ipc_connect(self.node);
        match conn {
            Some(conn) => Ok(SimTransport {
                sim: self.sim.clone(),
                node: self.node,
                conn,
                closed: false,
                service: Service::Evs,
            }),
            // No daemon to connect to: evs_initialize's CS_ERR_TRY_AGAIN (EVS-INIT-9).
            None => Err(CsError::TryAgain),
        }
    }
}

/// One emulated agent process: the agent protocol's executor (the agent's own code) over
/// `totem-client` on the simulated node.
struct Client {
    api: RustCpg<SimConnector>,
    /// The client's libevs: `totem_client::evs` on the node's EVS service.
    evs: RustEvs<SimConnector>,
    /// Its libquorum over the node's votequorum (cmap and cfg are not modelled).
    svc: super::sim_svc::SimSvc,
    exec: Executor,
    /// SIGSTOP: commands wait until SIGCONT.
    stopped: bool,
    pending: Vec<Request>,
}

/// The executor's host for a simulated client: virtual time, events into the trace.
struct SimHost<'a> {
    sim: &'a Shared,
    sink: &'a TraceSink,
    client: &'a str,
}

impl Host for SimHost<'_> {
    fn emit(&mut self, event: AgentEvent) {
        let kind = from_agent(event).unwrap_or_else(|error| EventKind::ClientFatal { error });
        let t = self.sim.borrow().now().total_micros() as u64;
        self.sink.push(self.client, kind, t);
    }

    fn now(&self) -> Duration {
        Duration::from_micros(self.sim.borrow().now().total_micros() as u64)
    }

    fn sleep(&mut self, d: Duration) {
        let until = self.sim.borrow().now() + sim_time(d);
        self.sim.borrow_mut().run_until(until);
    }

    fn arm_watchdog(&mut self, after: Duration, _: AgentEvent) -> Option<Duration> {
        // In-process: the call itself gives up after `after`, in virtual time, and the
        // executor then reports the watchdog and ends the client.
        Some(after)
    }

    fn disarm_watchdog(&mut self) {}
}

/// The simulator backend.
pub struct SimBackend {
    seed: u64,
    sim: Option<Shared>,
    sink: TraceSink,
    nodes: u32,
    clients: BTreeMap<String, Client>,
    next_pid: u32,
    /// Knet packets the run's nodes could not decrypt, read at stop.
    crypto_dropped: u64,
    /// Each simulated daemon's icmap (the clients' libcmap).
    cmaps: super::sim_svc::Cmaps,
}

impl SimBackend {
    /// A backend whose network faults (none by default) come from `seed`.
    pub fn new(seed: u64) -> SimBackend {
        SimBackend {
            seed,
            sim: None,
            sink: TraceSink::default(),
            nodes: 0,
            clients: BTreeMap::new(),
            next_pid: FIRST_PID,
            crypto_dropped: 0,
            cmaps: Default::default(),
        }
    }

    fn sim(&self) -> BResult<Shared> {
        self.sim
            .clone()
            .ok_or_else(|| BackendError("simulation not started".into()))
    }

    fn stamp(&self) -> u64 {
        self.sim
            .as_ref()
            .map_or(0, |s| s.borrow().now().total_micros() as u64)
    }

    fn push(&self, client: &str, kind: EventKind) {
        self.sink.push(client, kind, self.stamp());
    }

    fn check_node(&self, n: u32) -> BResult<()> {
        if n == 0 || n > self.nodes {
            return Err(BackendError(format!(
                "no node {n} (topology has {})",
                self.nodes
            )));
        }
        Ok(())
    }

    /// Every auto-dispatched handle dispatches what is pending (the agent's poll loop).
    fn auto_dispatch(&mut self) {
        let Some(sim) = self.sim.as_ref() else {
            return;
        };
        for (name, c) in self.clients.iter_mut().filter(|(_, c)| !c.stopped) {
            let mut host = SimHost {
                sim,
                sink: &self.sink,
                client: name,
            };
            c.exec.auto_dispatch_all(&mut c.api, &mut host);
            c.exec.evs_auto_dispatch_all(&mut c.evs, &mut host);
            c.exec.svc_auto_dispatch_ready(&mut c.svc, &mut host);
        }
    }

    fn client_exits(&mut self, name: &str, signal: Option<i32>, code: Option<i32>) {
        let Some(client) = self.clients.remove(name) else {
            return;
        };
        // Dropping the handles closes their connections (SimTransport's Drop).
        drop(client);
        self.push(
            name,
            EventKind::ClientExited {
                code: if signal.is_some() {
                    None
                } else {
                    code.or(Some(0))
                },
                signal,
            },
        );
    }

    /// One agent command: the executor's `result` event (and callbacks), as the agent
    /// emits them.
    fn command(&mut self, client: &str, request: &Request) -> BResult<()> {
        let sim = self.sim()?;
        let Some(c) = self.clients.get_mut(client) else {
            return Err(BackendError(format!("no client {client}")));
        };
        if c.stopped {
            c.pending.push(request.clone());
            return Ok(());
        }
        let mut host = SimHost {
            sim: &sim,
            sink: &self.sink,
            client,
        };
        if request.command.service().is_some() {
            c.exec.execute_svc(&mut c.svc, &mut host, request);
            return Ok(());
        }
        match c
            .exec
            .execute_any(&mut c.api, &mut c.evs, &mut host, request)
        {
            Flow::Continue => {}
            Flow::Exit(code) => self.client_exits(client, None, Some(code)),
        }
        Ok(())
    }
}

impl Backend for SimBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sim
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // knet: each simulated node runs totem_knet's link layer, as totemd does.
            transports: vec![ScenarioTransport::Udpu, ScenarioTransport::Knet],
            max_nodes: 16,
            min_nodes: 1,
            signals: true,
            partitions: true,
            pcap: true,
            // The in-memory transport wakes a client whose node died, as shm does; socket
            // IPC's silent event descriptor is not simulated.
            ipc: vec![Ipc::Shm],
            // The simulated network carries a datagram of any size whole: there is no
            // interface, so nothing to fragment.
            link_mtu: false,
            // The simulator gives each node one knet link (totem_knet runs several, but the
            // simulated network has one address per node): scenarios of a second link are
            // skipped here.
            max_links: 1,
            // Every simulated node runs totem-cpg's EVS service.
            evs_nodes: EvsNodes::All,
            // libquorum over each node's votequorum, libcmap over totemd's icmap; no cfg
            // service.
            services: vec![
                totem_agent_protocol::svc::Service::Quorum,
                totem_agent_protocol::svc::Service::Cmap,
            ],
        }
    }

    fn availability(&self) -> Result<(), String> {
        Ok(())
    }

    fn start(&mut self, topology: &Topology, sink: TraceSink, _: Option<&Path>) -> BResult<()> {
        self.sink = sink;
        self.nodes = topology.nodes;
        self.crypto_dropped = 0;
        let ids: Vec<u32> = (1..=topology.nodes).collect();
        let timings = Timings {
            token_ms: topology.totem.token_ms.unwrap_or(DEFAULT_TOKEN_MS),
            token_coefficient_ms: DEFAULT_TOKEN_COEFFICIENT_MS,
        };
        let network = NetworkOptions {
            packet_loss_probability: 0.0,
            packet_replay_probability: 0.0,
            ..NetworkOptions::default()
        };
        let mut sim = Sim::new(self.seed, &ids, network, timings);
        if topology.transport == ScenarioTransport::Knet {
            // The suite's corosync.conf sets no knet key: corosync's defaults.
            sim.use_knet(KnetSettings::default());
            if let Some(c) = topology.crypto {
                let (model, cipher, hash) = c.knet();
                // The lab backends draw a key from the OS; the simulator's comes from its
                // seed, so that a replay with the same seed is the same run.
                let mut x = self.seed ^ 0x9e37_79b9_7f4a_7c15;
                let key: Vec<u8> = (0..256)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let crypto = KnetCrypto::new(model, cipher, hash, &key)
                    .map_err(|e| BackendError(format!("knet crypto: {e:?}")))?;
                sim.use_knet_crypto(crypto);
            }
        }
        self.sim = Some(Rc::new(RefCell::new(sim)));
        Ok(())
    }

    fn apply(&mut self, action: &Action) -> BResult<()> {
        let sim = self.sim()?;
        match action {
            Action::StartNode(n) => {
                self.check_node(*n)?;
                sim.borrow_mut().start(*n);
            }
            Action::StopNode(n) => {
                self.check_node(*n)?;
                sim.borrow_mut()
                    .stop_gracefully(*n, sim_time(Duration::from_millis(500)));
            }
            Action::KillNode(n) => {
                self.check_node(*n)?;
                sim.borrow_mut().crash(*n);
            }
            Action::PauseNode(n) => {
                self.check_node(*n)?;
                sim.borrow_mut().stop_process(*n);
            }
            Action::ResumeNode(n) => {
                self.check_node(*n)?;
                sim.borrow_mut().resume(*n);
            }
            Action::Partition(sets) => sim.borrow_mut().partition(sets),
            Action::Heal => sim.borrow_mut().heal(),
            Action::SetLink { .. } => {
                return Err(BackendError(
                    "the simulator models one knet link per node".into(),
                ))
            }
            Action::StartClient { name, node } => {
                self.check_node(*node)?;
                if self.clients.contains_key(name) {
                    return Err(BackendError(format!("client {name} already started")));
                }
                let pid = self.next_pid;
                self.next_pid += 1;
                let connector = || SimConnector {
                    sim: sim.clone(),
                    node: *node,
                    pid,
                };
                // Handle values are opaque: each client's own range, as processes have.
                let first_handle = FIRST_HANDLE + (u64::from(pid) << 16);
                self.clients.insert(
                    name.clone(),
                    Client {
                        api: RustCpg::new(connector(), first_handle),
                        evs: RustEvs::new(connector(), first_handle + 0x8000),
                        svc: super::sim_svc::SimSvc::new(
                            sim.clone(),
                            self.cmaps.clone(),
                            *node,
                            first_handle + 0xc000,
                        ),
                        exec: Executor::default(),
                        stopped: false,
                        pending: Vec::new(),
                    },
                );
                self.push(name, EventKind::ClientStarted { node: *node, pid });
            }
            Action::SignalClient { name, signal } => match signal {
                Signal::Kill | Signal::Term => {
                    let sig = if *signal == Signal::Kill {
                        libc::SIGKILL
                    } else {
                        libc::SIGTERM
                    };
                    self.client_exits(name, Some(sig), None);
                }
                Signal::Stop => {
                    if let Some(c) = self.clients.get_mut(name) {
                        c.stopped = true;
                    }
                }
                Signal::Cont => {
                    let pending = match self.clients.get_mut(name) {
                        Some(c) => {
                            c.stopped = false;
                            std::mem::take(&mut c.pending)
                        }
                        None => Vec::new(),
                    };
                    for request in pending {
                        self.command(name, &request)?;
                    }
                }
            },
            Action::QuitClient(name) => self.client_exits(name, None, None),
            Action::Command { client, request } => {
                self.command(client, request)?;
                // A real agent's command costs a scheduling round trip (JSON line in,
                // libcpg call, result line out): calls from the driver never land in the
                // same instant, as they cannot on a real machine.
                self.pass_time(COMMAND_LATENCY);
            }
        }
        self.auto_dispatch();
        Ok(())
    }

    fn ring_members(&mut self, node: u32) -> BResult<Option<Vec<u32>>> {
        let sim = self.sim()?;
        let sim = sim.borrow();
        Ok(sim.node(node).and_then(|n| {
            (n.state() == MembState::Operational && !n.syncing()).then(|| {
                let mut m = n.members().to_vec();
                m.sort_unstable();
                m
            })
        }))
    }

    fn observe(&self) -> crate::trace::Trace {
        crate::trace::Trace {
            scenario: String::new(),
            backend: BackendKind::Sim.as_str().into(),
            events: self.sink.snapshot(),
        }
    }

    fn stop(&mut self) -> BResult<Artifacts> {
        let names: Vec<String> = self.clients.keys().cloned().collect();
        for n in names {
            self.client_exits(&n, Some(libc::SIGTERM), None);
        }
        self.crypto_dropped = self.sim.as_ref().map_or(0, |s| s.borrow().crypto_dropped());
        self.sim = None;
        Ok(Artifacts::default())
    }

    fn crypto_drops(&self) -> Vec<String> {
        if self.crypto_dropped == 0 {
            return Vec::new();
        }
        vec![format!(
            "the simulated nodes dropped {} knet packet(s) they could not decrypt",
            self.crypto_dropped
        )]
    }

    fn replay_hint(&self, scenario: &str) -> Option<String> {
        Some(format!(
            "replay: totem-conform run --backend sim --seed {} --scenario {scenario} --report DIR",
            self.seed
        ))
    }

    fn virtual_now(&self) -> Option<Duration> {
        Some(Duration::from_micros(self.stamp()))
    }

    fn pass_time(&mut self, d: Duration) {
        // Small steps: clients dispatch between them, so their callbacks carry the time
        // they arrived at.
        let step = Duration::from_millis(5);
        let mut left = d;
        while !left.is_zero() {
            let dt = left.min(step);
            if let Ok(sim) = self.sim() {
                let until = sim.borrow().now() + sim_time(dt);
                sim.borrow_mut().run_until(until);
            }
            self.auto_dispatch();
            left -= dt;
        }
    }
}
