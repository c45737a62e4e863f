//! The `sim` backend: the scenarios on our own engine, in the deterministic simulator
//! (`totem-sim`), with no root, no corosync and no sockets.
//!
//! Each scenario client is emulated in-process: the agent's JSON commands (conformance
//! README, "Agent protocol") drive the pure-Rust libcpg of `totem-client` over an in-memory
//! transport that hands libqb request bytes to the simulated node's CPG service
//! (`Node::ipc_request`, the same code `totemd` serves over libqb IPC). Time is virtual: the
//! driver's waits run the simulation ([`Backend::pass_time`]), so a 20 s timeout costs
//! milliseconds, and a run is reproducible from its seed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use totem_client::cpg::{Callback, Cpg, DispatchMode, DELIVER_INITIAL_TOTEM_CONF};
use totem_client::{FlowControl, SharedBuffer, Transport, TransportError};
use totem_cpg::{CpgName, LibReply};
use totem_knet::KnetSettings;
use totem_sim::{IpcError, NetworkOptions, SharedFile, Sim, Timings};
use totem_srp::MembState;
use totem_wire::exec::cpg::unescape_name;
use totem_wire::ipc::cpg::{CpgAddress, Guarantee, IterationType};
use totem_wire::ipc::CsError;

use super::{Action, Artifacts, BResult, Backend, BackendError, BackendKind, Capabilities};
use crate::payload;
use crate::scenario::model::Topology;
use crate::scenario::raw::{Ipc, Signal, Transport as ScenarioTransport};
use crate::trace::{Addr, EventKind, TraceSink};

/// corosync 3.1.7's defaults for `token` and `token_coefficient` (corosync.conf(5)); the
/// real backend runs with them too unless a scenario sets `token_ms`.
const DEFAULT_TOKEN_MS: u32 = 3000;
const DEFAULT_TOKEN_COEFFICIENT_MS: u32 = 650;
/// A blocked IPC call (the daemon is SIGSTOPped) gives up after this much virtual time; the
/// driver then reports NO_ANSWER, as for an agent stuck in libqb.
const STOPPED_CALL_LIMIT: Duration = Duration::from_secs(60);
/// The agent's cap on zcb_alloc (it refuses bigger ones, corosync-lab.md gotcha 4).
const ZCB_ALLOC_MAX: usize = 128 << 20;
/// First pid handed to simulated clients (each gets its own).
const FIRST_PID: u32 = 4000;
/// Virtual time one agent command takes end to end.
const COMMAND_LATENCY: Duration = Duration::from_millis(2);
/// The agent's exit code when its watchdog ends a call that never returned.
const EXIT_WATCHDOG: i32 = 3;

/// Why a command produced no normal result.
enum Failure {
    /// The agent's `error` field (a refusal, a bad command).
    Error(String),
    /// The call blocked past its timeout: the agent's watchdog ends the process.
    Watchdog { handle: String, mode: String },
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Error(e)
    }
}

impl From<&str> for Failure {
    fn from(e: &str) -> Self {
        Failure::Error(e.to_owned())
    }
}

type Shared = Rc<RefCell<Sim>>;

fn sim_time(d: Duration) -> totem_srp::Duration {
    totem_srp::Duration::from_micros(d.as_micros() as u64)
}

/// libqb's connection as the simulator offers it.
struct SimTransport {
    sim: Shared,
    node: u32,
    conn: u64,
    closed: bool,
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
            let r = self
                .sim
                .borrow_mut()
                .ipc_request(self.node, self.conn, bytes);
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
        self.sim
            .borrow_mut()
            .ipc_next_event(self.node, self.conn)
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
                sim.ipc_disconnect(self.node, self.conn);
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
            let pending = self.sim.borrow().ipc_event_pending(self.node, self.conn);
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

struct Handle {
    value: u64,
    cpg: Cpg<SimTransport>,
    auto_dispatch: bool,
    /// Next payload sequence number (only advanced on CS_OK), as the agent keeps it.
    seq: u64,
}

/// One emulated agent process.
struct Client {
    node: u32,
    pid: u32,
    handles: BTreeMap<String, Handle>,
    /// zcb buffers by scenario name: (handle name, buffer id, size).
    buffers: BTreeMap<String, (String, u64, usize)>,
    /// SIGSTOP: commands wait until SIGCONT.
    stopped: bool,
    pending: Vec<String>,
}

/// The simulator backend.
pub struct SimBackend {
    seed: u64,
    sim: Option<Shared>,
    sink: TraceSink,
    nodes: u32,
    clients: BTreeMap<String, Client>,
    next_pid: u32,
    next_handle: u64,
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
            next_handle: 0x7a11_0000_0001,
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

    /// A handle on which every call answers CS_ERR_BAD_HANDLE.
    fn dead_handle(&self) -> Handle {
        let transport = SimTransport {
            sim: self.sim.clone().unwrap_or_else(|| {
                Rc::new(RefCell::new(Sim::new(
                    0,
                    &[],
                    NetworkOptions::default(),
                    Timings::default(),
                )))
            }),
            node: 0,
            conn: 0,
            closed: true,
        };
        let mut cpg = Cpg::initialize(transport, 0);
        let _ = cpg.finalize();
        Handle {
            value: 0,
            cpg,
            auto_dispatch: false,
            seq: 0,
        }
    }

    /// Every auto-dispatched handle dispatches what is pending (the agent's poll loop).
    fn auto_dispatch(&mut self) {
        let names: Vec<String> = self.clients.keys().cloned().collect();
        for name in names {
            let Some(client) = self.clients.get(&name) else {
                continue;
            };
            if client.stopped {
                continue;
            }
            let handles: Vec<String> = client
                .handles
                .iter()
                .filter(|(_, h)| h.auto_dispatch && !h.cpg.is_finalized())
                .map(|(n, _)| n.clone())
                .collect();
            for h in handles {
                self.dispatch_pending(&name, &h);
            }
        }
    }

    /// CS_DISPATCH_ALL on one auto-dispatched handle; a failure stops its auto dispatch and
    /// is reported like the agent reports it.
    fn dispatch_pending(&mut self, client: &str, hname: &str) {
        let mut callbacks = Vec::new();
        let rc = {
            let Some(h) = self
                .clients
                .get_mut(client)
                .and_then(|c| c.handles.get_mut(hname))
            else {
                return;
            };
            let rc = h.cpg.dispatch(DispatchMode::All, None, |cb| {
                callbacks.push(cb.clone());
                false
            });
            if rc != CsError::Ok {
                h.auto_dispatch = false;
            }
            rc
        };
        for cb in callbacks {
            self.emit_callback(client, hname, &cb);
        }
        if rc != CsError::Ok {
            let mut fields = Map::new();
            fields.insert("mode".into(), json!("ALL"));
            fields.insert("auto".into(), json!(true));
            self.push(
                client,
                EventKind::Result {
                    id: None,
                    cmd: "dispatch".into(),
                    handle: hname.into(),
                    rc: Some(rc.to_string()),
                    error: None,
                    fields,
                },
            );
        }
    }

    fn emit_callback(&self, client: &str, hname: &str, cb: &Callback) {
        let addrs = |v: &[CpgAddress]| -> Vec<Addr> {
            v.iter()
                .map(|a| Addr {
                    nodeid: a.nodeid,
                    pid: a.pid,
                    reason: a.reason.to_string(),
                })
                .collect()
        };
        let kind = match cb {
            Callback::Deliver {
                group,
                nodeid,
                pid,
                data,
            } => {
                let parsed = payload::parse(data);
                EventKind::Deliver {
                    handle: hname.into(),
                    group: group_text(group),
                    nodeid: *nodeid,
                    pid: *pid,
                    len: data.len() as u64,
                    digest: payload::digest(data),
                    tag: parsed.as_ref().map(|p| p.tag.clone()),
                    seq: parsed.as_ref().map(|p| p.seq),
                    intact: parsed.as_ref().map(|p| p.intact),
                }
            }
            Callback::Confchg {
                group,
                members,
                left,
                joined,
            } => EventKind::Confchg {
                handle: hname.into(),
                group: group_text(group),
                members: addrs(members),
                left: addrs(left),
                joined: addrs(joined),
            },
            Callback::TotemConfchg {
                ring_nodeid,
                ring_seq,
                members,
            } => EventKind::TotemConfchg {
                handle: hname.into(),
                ring_nodeid: *ring_nodeid,
                ring_seq: *ring_seq,
                members: members.clone(),
            },
        };
        self.push(client, kind);
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

    /// One agent command line: a `result` event (and callbacks), as the agent emits them.
    fn command(&mut self, client: &str, line: &str) -> BResult<()> {
        if self.clients.get(client).is_some_and(|c| c.stopped) {
            if let Some(c) = self.clients.get_mut(client) {
                c.pending.push(line.to_owned());
            }
            return Ok(());
        }
        let cmd: Value = serde_json::from_str(line)
            .map_err(|e| BackendError(format!("bad command {line:?}: {e}")))?;
        let name = s(&cmd, "cmd").unwrap_or("").to_owned();
        let mut out = Map::new();
        if name == "quit" {
            self.push(client, result_event(&name, &cmd, out));
            self.client_exits(client, None, None);
            return Ok(());
        }
        let mut callbacks = Vec::new();
        let outcome = self.run(client, &name, &cmd, &mut out, &mut callbacks);
        for (h, cb) in &callbacks {
            self.emit_callback(client, h, cb);
        }
        if out.get("finalized_in_callback") == Some(&json!(true)) {
            // The agent reports the cpg_finalize it made from inside the last callback.
            let mut fields = Map::new();
            fields.insert("in_callback".into(), json!(true));
            let handle = out
                .get("handle")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            self.push(
                client,
                EventKind::Result {
                    id: None,
                    cmd: "finalize".into(),
                    handle,
                    rc: Some(CsError::Ok.to_string()),
                    error: None,
                    fields,
                },
            );
        }
        match outcome {
            Ok(()) => self.push(client, result_event(&name, &cmd, out)),
            Err(Failure::Error(e)) => {
                out.insert("error".into(), json!(e));
                self.push(client, result_event(&name, &cmd, out));
            }
            Err(Failure::Watchdog { handle, mode }) => {
                // The agent's watchdog: the call never returned, the process ends.
                self.push(client, EventKind::Watchdog { handle, mode });
                self.client_exits(client, None, Some(EXIT_WATCHDOG));
            }
        }
        Ok(())
    }

    fn target(&self, client: &str, cmd: &Value) -> Result<(String, Option<String>), String> {
        if let Some(v) = u(cmd, "handle_value") {
            // A raw value: valid only if it is one of this client's handles.
            let name = self
                .clients
                .get(client)
                .and_then(|c| c.handles.iter().find(|(_, h)| h.value == v))
                .map(|(n, _)| n.clone());
            return Ok((format!("0x{v:x}"), name));
        }
        let hname = s(cmd, "handle").unwrap_or("h1").to_owned();
        match self.clients.get(client).and_then(|c| c.handles.get(&hname)) {
            Some(_) => Ok((hname.clone(), Some(hname))),
            None => Err(format!("unknown handle {hname:?} (initialize it first)")),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn run(
        &mut self,
        client: &str,
        name: &str,
        cmd: &Value,
        out: &mut Map<String, Value>,
        callbacks: &mut Vec<(String, Callback)>,
    ) -> Result<(), Failure> {
        let mut put = |k: &str, v: Value| {
            out.insert(k.into(), v);
        };
        if name == "initialize" {
            let hname = s(cmd, "handle").unwrap_or("h1").to_owned();
            put("handle", json!(hname));
            let model = s(cmd, "model").unwrap_or("plain");
            let flags = match model {
                "plain" => 0,
                "v1" if cmd.get("initial_totem_conf").and_then(Value::as_bool) == Some(true) => {
                    DELIVER_INITIAL_TOTEM_CONF
                }
                "v1" => 0,
                other => return Err(format!("unknown model {other:?} (plain or v1)").into()),
            };
            let sim = self.sim().map_err(|e| e.0)?;
            let c = self.clients.get(client).ok_or("no such client")?;
            let (node, pid) = (c.node, c.pid);
            let conn = sim.borrow_mut().ipc_connect(node);
            let Some(conn) = conn else {
                // qb_ipcc_connect fails with ECONNREFUSED: CS_ERR_LIBRARY.
                put("rc", json!("CS_ERR_LIBRARY"));
                return Ok(());
            };
            let transport = SimTransport {
                sim,
                node,
                conn,
                closed: false,
            };
            let context = u(cmd, "context").unwrap_or(0);
            let cpg = if model == "plain" {
                Ok(Cpg::initialize(transport, pid))
            } else {
                Cpg::model_initialize(transport, pid, flags, context)
            };
            match cpg {
                Ok(cpg) => {
                    put("rc", json!("CS_OK"));
                    self.next_handle += 1;
                    let h = Handle {
                        value: self.next_handle,
                        cpg,
                        auto_dispatch: cmd
                            .get("auto_dispatch")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                        seq: 0,
                    };
                    if let Some(c) = self.clients.get_mut(client) {
                        c.handles.insert(hname, h);
                    }
                }
                Err(rc) => put("rc", json!(rc.to_string())),
            }
            return Ok(());
        }
        let (hname, resolved) = self.target(client, cmd)?;
        put("handle", json!(hname));
        // A value that is not one of this process's handles: libcpg's handle database
        // refuses every call on it, which a finalized handle does too.
        let mut dead = self.dead_handle();
        let c = self.clients.get_mut(client).ok_or("no such client")?;
        let h = match resolved.as_ref().and_then(|n| c.handles.get_mut(n)) {
            Some(h) => h,
            None => &mut dead,
        };
        let rc = |e: CsError| json!(e.to_string());
        match name {
            "finalize" => put("rc", rc(h.cpg.finalize())),
            "join" | "leave" => {
                let g = c_name(cmd)?;
                put("group", json!(g.to_string()));
                let r = if name == "join" {
                    h.cpg.join_name(&g)
                } else {
                    h.cpg.leave_name(&g)
                };
                put("rc", rc(r));
            }
            "mcast" => {
                let g =
                    guarantee(s(cmd, "guarantee").unwrap_or("AGREED")).ok_or("bad guarantee")?;
                let size = u(cmd, "size").unwrap_or(64) as usize;
                let count = u(cmd, "count").unwrap_or(1);
                let iovs = u(cmd, "iovs").unwrap_or(1) as usize;
                let tag = s(cmd, "tag").map_or_else(|| hname.clone(), str::to_owned);
                let retry = Duration::from_millis(u(cmd, "retry_ms").unwrap_or(if count > 1 {
                    10_000
                } else {
                    0
                }));
                let (mut sent, mut try_again, mut last) = (0u64, 0u64, CsError::Ok);
                let (mut first_seq, mut digest) = (None, None);
                let mut stalled = Duration::ZERO;
                while sent < count {
                    let body = payload::build(&tag, h.seq, size);
                    let parts: Vec<&[u8]> = match iovs {
                        0 => Vec::new(),
                        1 => vec![&body[..]],
                        n => {
                            let step = body.len().div_ceil(n).max(1);
                            let mut v: Vec<&[u8]> = body.chunks(step).collect();
                            v.resize(n, &[]);
                            v
                        }
                    };
                    last = h.cpg.mcast_joined(g, &parts);
                    if last == CsError::Ok {
                        first_seq.get_or_insert(h.seq);
                        h.seq += 1;
                        digest = Some(payload::digest(&body));
                        sent += 1;
                        stalled = Duration::ZERO;
                    } else if last == CsError::TryAgain && stalled < retry {
                        try_again += 1;
                        // The agent dispatches its callbacks and sleeps 1 ms between tries.
                        let _ = h.cpg.dispatch(DispatchMode::All, None, |cb| {
                            callbacks.push((hname.clone(), cb.clone()));
                            false
                        });
                        let _ = h.cpg.wait_event(Some(Duration::from_millis(1)));
                        stalled += Duration::from_millis(1);
                    } else {
                        break;
                    }
                }
                put("rc", rc(last));
                put("tag", json!(tag));
                put("sent", json!(sent));
                put("first_seq", json!(first_seq));
                put("size", json!(size));
                put("try_again", json!(try_again));
                if count == 1 {
                    put("digest", json!(digest));
                }
            }
            "zcb_alloc" => {
                let size = u(cmd, "size").unwrap_or(64) as usize;
                if size > ZCB_ALLOC_MAX {
                    return Err(format!("refused: zcb_alloc of {size} bytes exceeds the agent's {ZCB_ALLOC_MAX}-byte safety cap").into());
                }
                match h.cpg.zcb_alloc(size) {
                    Ok(id) => {
                        put("rc", rc(CsError::Ok));
                        put("non_null", json!(true));
                        let b = s(cmd, "buf").unwrap_or("b1").to_owned();
                        c.buffers.insert(b, (hname.clone(), id, size));
                    }
                    Err(e) => {
                        put("rc", rc(e));
                        put("non_null", json!(false));
                    }
                }
            }
            "zcb_mcast" => {
                let b = s(cmd, "buf").unwrap_or("b1");
                let &(_, id, cap) = c
                    .buffers
                    .get(b)
                    .ok_or_else(|| format!("unknown zcb buffer {b:?}"))?;
                let len = u(cmd, "len").map_or(cap, |l| l as usize);
                if len > cap {
                    return Err(format!(
                        "refused: len {len} exceeds the {cap}-byte buffer (crashes corosync 3.1.7)"
                    )
                    .into());
                }
                let g =
                    guarantee(s(cmd, "guarantee").unwrap_or("AGREED")).ok_or("bad guarantee")?;
                let tag = s(cmd, "tag").map_or_else(|| hname.clone(), str::to_owned);
                let body = payload::build(&tag, h.seq, len);
                h.cpg.zcb_write(id, 0, &body).map_err(|e| e.to_string())?;
                let r = h.cpg.zcb_mcast_joined(id, g, len);
                put("rc", rc(r));
                put("tag", json!(tag));
                put("seq", json!(h.seq));
                put("len", json!(len));
                put("digest", json!(payload::digest(&body)));
                if r == CsError::Ok {
                    h.seq += 1;
                }
            }
            "zcb_free" if cmd.get("bogus").and_then(Value::as_bool) == Some(true) => {
                // The agent passes a zeroed stack buffer: libcpg reads map_size 0 and token 0.
                put("rc", rc(h.cpg.zcb_free_foreign(0, 0)));
            }
            "zcb_free" => {
                let b = s(cmd, "buf").unwrap_or("b1");
                let (_, id, _) = c
                    .buffers
                    .remove(b)
                    .ok_or_else(|| format!("unknown zcb buffer {b:?}"))?;
                put("rc", rc(h.cpg.zcb_free(id)));
            }
            "membership_get" => {
                let (r, list) = match h.cpg.membership_get_name(&c_name(cmd)?) {
                    Ok(l) => (CsError::Ok, l),
                    Err(e) => (e, Vec::new()),
                };
                put("rc", rc(r));
                if r == CsError::Ok {
                    put("members", addresses(&list));
                }
            }
            "local_get" => {
                let (r, n) = match h.cpg.local_get() {
                    Ok(n) => (CsError::Ok, n),
                    Err(e) => (e, 0),
                };
                put("rc", rc(r));
                if r == CsError::Ok {
                    put("nodeid", json!(n));
                }
            }
            "context_get" => {
                let (r, v) = match h.cpg.context() {
                    Ok(v) => (CsError::Ok, v),
                    Err(e) => (e, 0),
                };
                put("rc", rc(r));
                if r == CsError::Ok {
                    put("context", json!(v));
                }
            }
            "context_set" => put("rc", rc(h.cpg.set_context(u(cmd, "context").unwrap_or(0)))),
            "fd_get" => {
                // In the simulator the event channel has no descriptor; a live handle's
                // channel is what cpg_fd_get names.
                let r = if h.cpg.is_finalized() {
                    CsError::BadHandle
                } else {
                    CsError::Ok
                };
                put("rc", rc(r));
                put("fd_valid", json!(r == CsError::Ok));
            }
            "flow_control_state_get" => {
                let (r, v) = match h.cpg.flow_control_state() {
                    Ok(v) => (CsError::Ok, v),
                    Err(e) => (e, false),
                };
                put("rc", rc(r));
                if r == CsError::Ok {
                    put("state", json!(if v { "ENABLED" } else { "DISABLED" }));
                }
            }
            "max_atomic_msgsize_get" => {
                let (r, v) = match h.cpg.max_atomic_msgsize() {
                    Ok(v) => (CsError::Ok, v),
                    Err(e) => (e, 0),
                };
                put("rc", rc(r));
                if r == CsError::Ok {
                    put("size", json!(v));
                }
            }
            "dispatch" => dispatch(h, &hname, cmd, &mut put, callbacks)?,
            "iteration" => iteration(h, cmd, &mut put)?,
            other => return Err(format!("unknown command {other:?}").into()),
        }
        Ok(())
    }
}

fn result_event(name: &str, cmd: &Value, mut out: Map<String, Value>) -> EventKind {
    let handle = out
        .remove("handle")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let rc = out.remove("rc").and_then(|v| v.as_str().map(str::to_owned));
    let error = out
        .remove("error")
        .and_then(|v| v.as_str().map(str::to_owned));
    EventKind::Result {
        id: cmd.get("id").and_then(Value::as_u64),
        cmd: name.into(),
        handle,
        rc,
        error,
        fields: out,
    }
}

fn s<'a>(cmd: &'a Value, key: &str) -> Option<&'a str> {
    cmd.get(key).and_then(Value::as_str)
}

fn u(cmd: &Value, key: &str) -> Option<u64> {
    cmd.get(key).and_then(Value::as_u64)
}

/// The `struct cpg_name` a command names, as the agent fills it: `group` in the escaped
/// notation (`\\`, `\xNN`), the array holding its first 128 bytes, and `name_length`
/// setting the length field apart from them. libcpg refuses only a length above 128
/// (CS_ERR_NAME_TOO_LONG) and sends the rest as given; the daemon names the group by the
/// first `length` bytes (mar_name_compare).
fn c_name(cmd: &Value) -> Result<CpgName, String> {
    let bytes = unescape_name(s(cmd, "group").unwrap_or(""))?;
    let length = u(cmd, "name_length").map_or(bytes.len() as u32, |l| l as u32);
    Ok(CpgName::with_length(&bytes, length))
}

/// A group as the agent prints it: its identity, escaped (`CpgName`'s display).
fn group_text(g: &CpgName) -> String {
    g.to_string()
}

fn addresses(list: &[CpgAddress]) -> Value {
    Value::Array(
        list.iter()
            .map(|a| json!({"nodeid": a.nodeid, "pid": a.pid, "reason": a.reason.to_string()}))
            .collect(),
    )
}

/// A name or a number (scenarios pass invalid values on purpose, as to the agent).
fn guarantee(s: &str) -> Option<Guarantee> {
    Some(match s {
        "UNORDERED" => Guarantee::Unordered,
        "FIFO" => Guarantee::Fifo,
        "AGREED" => Guarantee::Agreed,
        "SAFE" => Guarantee::Safe,
        n => Guarantee::from(n.parse::<u32>().ok()?),
    })
}

/// The agent's `dispatch`: the same guard (poll first for ONE and undefined modes, a
/// watchdog for BLOCKING) and `finalize_after`, on virtual time.
fn dispatch(
    h: &mut Handle,
    hname: &str,
    cmd: &Value,
    put: &mut impl FnMut(&str, Value),
    callbacks: &mut Vec<(String, Callback)>,
) -> Result<(), Failure> {
    let mode_s = s(cmd, "mode").unwrap_or("ALL");
    let raw = match mode_s {
        "ONE" => 1,
        "ALL" => 2,
        "BLOCKING" => 3,
        "ONE_NONBLOCKING" => 4,
        other => other
            .parse::<u32>()
            .map_err(|_| format!("bad dispatch mode {other:?}"))?,
    };
    let mode = DispatchMode::from_raw(raw);
    put("mode", json!(mode_s));
    let timeout = Duration::from_millis(u(cmd, "timeout_ms").unwrap_or(3000));
    let guard = s(cmd, "guard").unwrap_or(if raw == 3 { "watchdog" } else { "poll" });
    if h.cpg.is_finalized() {
        put("rc", json!(CsError::BadHandle.to_string()));
        put("finalized_in_callback", json!(false));
        return Ok(());
    }
    if guard == "poll" && raw != 2 && raw != 4 {
        let ready = h.cpg.wait_event(Some(timeout)).map_err(|e| e.to_string())?;
        if !ready {
            put("would_block", json!(true));
            return Ok(());
        }
    }
    let mut finalize_after = u(cmd, "finalize_after");
    let mut finalized_in_callback = false;
    let rc = h.cpg.dispatch(mode, Some(timeout), |cb| {
        callbacks.push((hname.to_owned(), cb.clone()));
        match finalize_after.as_mut() {
            Some(n) if *n <= 1 => {
                finalize_after = None;
                finalized_in_callback = true;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    });
    if rc == CsError::Timeout {
        // libcpg would still be blocked: the agent's watchdog ends the process.
        return Err(Failure::Watchdog {
            handle: hname.to_owned(),
            mode: mode_s.to_owned(),
        });
    }
    put("rc", json!(rc.to_string()));
    put("finalized_in_callback", json!(finalized_in_callback));
    Ok(())
}

fn iteration(h: &mut Handle, cmd: &Value, put: &mut impl FnMut(&str, Value)) -> Result<(), String> {
    let kind = match s(cmd, "type").unwrap_or("ALL") {
        "NAME_ONLY" => IterationType::NameOnly,
        "ONE_GROUP" => IterationType::OneGroup,
        "ALL" => IterationType::All,
        // Numbers pass invalid values on purpose (the agent accepts them too).
        other => IterationType::from(
            other
                .parse::<u32>()
                .map_err(|_| format!("bad iteration type {other:?}"))?,
        ),
    };
    let group = cmd.get("group").map(|_| c_name(cmd)).transpose()?;
    if group.is_some_and(|g| g.is_overlong()) {
        put("rc", json!(CsError::NameTooLong.to_string()));
        return Ok(());
    }
    let it = match h
        .cpg
        .iteration_initialize(kind, group.as_ref().map(CpgName::as_bytes))
    {
        Ok(it) => it,
        Err(e) => {
            put("rc", json!(e.to_string()));
            return Ok(());
        }
    };
    put("rc", json!(CsError::Ok.to_string()));
    let mut items = Vec::new();
    let end = loop {
        match h.cpg.iteration_next(it) {
            Ok((g, nodeid, pid)) => {
                items.push(json!({"group": group_text(&g), "nodeid": nodeid, "pid": pid}));
            }
            Err(e) => break e,
        }
        if items.len() > 10_000 {
            break CsError::Ok;
        }
    };
    put("items", Value::Array(items));
    put("next_end_rc", json!(end.to_string()));
    put(
        "finalize_rc",
        json!(h.cpg.iteration_finalize(it).to_string()),
    );
    if cmd.get("after_finalize").and_then(Value::as_bool) == Some(true) {
        let next = h.cpg.iteration_next(it).err().unwrap_or(CsError::Ok);
        put("next_after_finalize_rc", json!(next.to_string()));
        put(
            "finalize_after_finalize_rc",
            json!(h.cpg.iteration_finalize(it).to_string()),
        );
    }
    Ok(())
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
        }
    }

    fn availability(&self) -> Result<(), String> {
        Ok(())
    }

    fn start(&mut self, topology: &Topology, sink: TraceSink, _: Option<&Path>) -> BResult<()> {
        self.sink = sink;
        self.nodes = topology.nodes;
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
            Action::StartClient { name, node } => {
                self.check_node(*node)?;
                if self.clients.contains_key(name) {
                    return Err(BackendError(format!("client {name} already started")));
                }
                let pid = self.next_pid;
                self.next_pid += 1;
                self.clients.insert(
                    name.clone(),
                    Client {
                        node: *node,
                        pid,
                        handles: BTreeMap::new(),
                        buffers: BTreeMap::new(),
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
                    for line in pending {
                        self.command(name, &line)?;
                    }
                }
            },
            Action::QuitClient(name) => self.client_exits(name, None, None),
            Action::Command { client, line } => {
                if !self.clients.contains_key(client) {
                    return Err(BackendError(format!("no client {client}")));
                }
                self.command(client, line)?;
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
        self.sim = None;
        Ok(Artifacts::default())
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
