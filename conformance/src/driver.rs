//! Runs one scenario on one backend: steps, waits, expectations, checkers, verdict.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use totem_agent_protocol::command::Target;
use totem_agent_protocol::{Command, Request};

use crate::backend::{Action, Backend, BackendKind, EvsNodes};
use crate::check::{self, CheckName, Violation};
use crate::cond;
use crate::expectations::Deviations;
use crate::scenario::model::Scenario;
use crate::scenario::raw::{ExpectedRc, Fields, RcExpect, Signal, Step, Transport};
use crate::trace::normalize::{normalize, NormTrace};
use crate::trace::{now_us, EventKind, Trace, TraceSink};
use totem_agent_protocol::svc::Service;

/// Set by the Ctrl-C handler; every wait checks it, then the run tears down.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Passed, and the behaviour is a documented deviation from the man page.
    Deviation(String),
    Skipped(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Deviation(_) => "deviation",
            Self::Skipped(_) => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    pub scenario: String,
    pub backend: BackendKind,
    pub verdict: Verdict,
    pub failures: Vec<String>,
    pub violations: Vec<Violation>,
    pub duration_ms: u64,
    #[serde(skip)]
    pub trace: Option<Trace>,
    #[serde(skip)]
    pub norm: Option<NormTrace>,
    pub artifacts: Vec<PathBuf>,
}

pub struct RunOptions<'a> {
    /// Per-case artifact directory (logs, pcap, agent traces), when a report is written.
    pub artifacts: Option<&'a Path>,
    pub deviations: &'a Deviations,
    pub cmd_timeout: Duration,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn skipped(s: &Scenario, kind: BackendKind, why: String) -> CaseOutcome {
    CaseOutcome {
        scenario: s.id.clone(),
        backend: kind,
        verdict: Verdict::Skipped(why),
        failures: Vec::new(),
        violations: Vec::new(),
        duration_ms: 0,
        trace: None,
        norm: None,
        artifacts: Vec::new(),
    }
}

/// Why a backend cannot run this scenario, from its declared capabilities.
fn unsupported(s: &Scenario, b: &dyn Backend) -> Option<String> {
    let c = b.capabilities();
    if s.topology.nodes < c.min_nodes {
        return Some(format!(
            "needs at least {} nodes, scenario has {}",
            c.min_nodes, s.topology.nodes
        ));
    }
    if s.topology.nodes > c.max_nodes {
        return Some(format!(
            "needs {} nodes, backend has {}",
            s.topology.nodes, c.max_nodes
        ));
    }
    if !c.transports.contains(&s.topology.transport) {
        let t = if s.topology.transport == Transport::Knet {
            "knet"
        } else {
            "udpu"
        };
        return Some(format!("transport {t} not supported"));
    }
    if !c.ipc.contains(&s.topology.ipc) {
        return Some(format!(
            "IPC type {} not supported",
            s.topology.ipc.as_str()
        ));
    }
    if s.topology.link_mtu.is_some() && !c.link_mtu {
        return Some("cannot set the link MTU".into());
    }
    if s.topology.links > c.max_links {
        return Some(format!(
            "{} knet links: this backend builds {}",
            s.topology.links, c.max_links
        ));
    }
    // EVS runs only where the daemon is totemd: corosync 3 has no EVS service.
    for (client, node) in &s.evs_clients {
        if !c.evs_nodes.has(*node) {
            return Some(match c.evs_nodes {
                EvsNodes::None => "EVS: corosync 3 has no EVS service (dropped after 1.4, docs/evs.md)".into(),
                _ => format!(
                    "EVS client {client} is on node {node}, which runs corosync (no EVS service); EVS clients go on totemd nodes"
                ),
            });
        }
    }
    for st in &s.steps {
        if let Some((name, _)) = st.svc() {
            let svc = match name.split('_').next() {
                Some("quorum") => Service::Quorum,
                Some("cmap") => Service::Cmap,
                _ => Service::Cfg,
            };
            if !c.services.contains(&svc) {
                return Some(format!(
                    "{name}: this backend (or its agent) does not serve {svc:?} clients{}",
                    if svc == Service::Cfg {
                        " (cfg shutdown needs a daemon that can leave the ring on request)"
                    } else {
                        ""
                    }
                ));
            }
        }
        match st {
            Step::KillNode(_) | Step::PauseNode(_) | Step::ResumeNode(_) if !c.signals => {
                return Some("needs node signals".into())
            }
            Step::Partition(_) | Step::Heal if !c.partitions => {
                return Some("needs partitions".into())
            }
            _ => {}
        }
    }
    None
}

pub fn run_case(s: &Scenario, backend: &mut dyn Backend, opts: &RunOptions<'_>) -> CaseOutcome {
    let kind = backend.kind();
    if !s.backends.is_empty() && !s.backends.iter().any(|b| b == kind.as_str()) {
        return skipped(
            s,
            kind,
            format!("scenario is for {} only", s.backends.join(", ")),
        );
    }
    // What the scenario needs is checked first: a ring of one cannot be mixed whatever is
    // installed.
    if let Some(why) = unsupported(s, backend) {
        return skipped(s, kind, why);
    }
    if let Err(why) = backend.availability() {
        return skipped(s, kind, why);
    }
    if !s.evs_clients.is_empty() {
        if let Err(why) = backend.evs_availability() {
            return skipped(s, kind, why);
        }
    }
    let t0 = Instant::now();
    let sink = TraceSink::default();
    let mut run = Run {
        s,
        backend,
        sink: sink.clone(),
        failures: Vec::new(),
        cmd_timeout: opts.cmd_timeout,
        t0,
    };
    let started = run.backend.start(&s.topology, sink.clone(), opts.artifacts);
    match started {
        Ok(()) => run.steps(),
        Err(e) => run.failures.push(format!("backend start: {e}")),
    }
    if run.failures.is_empty() {
        run.settle();
        for c in &s.expect {
            let ev = sink.snapshot();
            if !cond::holds(c, &ev) {
                run.failures
                    .push(format!("expect: {}", cond::explain(c, &ev)));
            }
        }
    }
    run.marker(s.steps.len(), crate::trace::normalize::TEARDOWN.into());
    let mut trace = run.backend.observe();
    trace.scenario.clone_from(&s.id);
    let artifacts = match run.backend.stop() {
        Ok(a) => a.files,
        Err(e) => {
            run.failures.push(format!("teardown: {e}"));
            Vec::new()
        }
    };
    for d in run.backend.crypto_drops() {
        run.failures.push(format!("knet crypto: {d}"));
    }
    // The checkers see the trace after teardown, with the exits of the agents in it.
    trace.events = sink.snapshot();
    let disabled: BTreeSet<CheckName> = s.disabled_checks.keys().copied().collect();
    let violations = check::run_all(&trace, &disabled);
    let norm = normalize(&trace);
    let mut failures = run.failures;
    if interrupted() {
        failures.push("interrupted (Ctrl-C)".into());
    }
    let verdict = if !failures.is_empty() || !violations.is_empty() {
        if let Some(hint) = backend.replay_hint(&s.id) {
            failures.push(hint);
        }
        Verdict::Fail
    } else if let Some(d) = &s.deviation {
        match opts.deviations.lookup(&d.id, &s.id, kind) {
            Some(reason) => Verdict::Deviation(reason),
            None => {
                failures.push(format!(
                    "scenario declares deviation {:?} but fixtures/expectations/deviations.yaml does not document it",
                    d.id
                ));
                Verdict::Fail
            }
        }
    } else {
        Verdict::Pass
    };
    CaseOutcome {
        scenario: s.id.clone(),
        backend: kind,
        verdict,
        failures,
        violations,
        duration_ms: t0.elapsed().as_millis() as u64,
        trace: Some(trace),
        norm: Some(norm),
        artifacts,
    }
}

struct Run<'a> {
    s: &'a Scenario,
    backend: &'a mut dyn Backend,
    sink: TraceSink,
    failures: Vec<String>,
    cmd_timeout: Duration,
    /// Wall-clock start, for backends without a virtual clock.
    t0: Instant,
}

/// How often a wait on a virtual clock looks at the trace: short enough not to delay a
/// scenario noticeably, long enough that the simulator runs in big steps.
const VIRTUAL_POLL: Duration = Duration::from_millis(10);

fn h(handle: Option<&String>) -> String {
    handle.cloned().unwrap_or_else(|| "h1".into())
}

fn target(handle: Option<&String>, handle_value: Option<u64>) -> Target {
    Target {
        handle: h(handle),
        handle_value,
    }
}

/// An EVS handle's name: scenarios default to `e1`.
fn eh(handle: Option<&String>) -> String {
    handle.cloned().unwrap_or_else(|| "e1".into())
}

fn evs_target(handle: Option<&String>, handle_value: Option<u64>) -> Target {
    Target {
        handle: eh(handle),
        handle_value,
    }
}

/// The payload tag of a client's handle: receivers name the sender by it.
fn tag(client: &str, handle: Option<&String>) -> Option<String> {
    Some(format!("{client}.{}", h(handle)))
}

/// The agent command for a step (conformance/README.md, "Agent protocol"), with the
/// client it goes to, the return code expected and the result fields expected.
fn command(step: &Step) -> Option<(String, Command, Option<RcExpect>, Fields)> {
    use totem_agent_protocol::command as c;
    let none = Fields::new;
    if let Some((name, call)) = step.svc() {
        // Validated when the scenario was loaded.
        let cmd = crate::scenario::model::svc_command(name, call).ok()?;
        return Some((
            call.client.clone(),
            cmd,
            call.expect.clone(),
            call.expect_fields.clone(),
        ));
    }
    Some(match step {
        Step::Initialize(x) => (
            x.client.clone(),
            Command::Initialize(c::Initialize {
                handle: h(x.handle.as_ref()),
                model: x.model,
                initial_totem_conf: x.initial_totem_conf,
                context: x.context,
                auto_dispatch: x.auto_dispatch,
            }),
            x.expect.clone(),
            none(),
        ),
        Step::Finalize(x)
        | Step::LocalGet(x)
        | Step::ContextGet(x)
        | Step::FdGet(x)
        | Step::FlowControlStateGet(x)
        | Step::MaxAtomicMsgsizeGet(x) => {
            let t = target(x.handle.as_ref(), x.handle_value);
            let cmd = match step {
                Step::Finalize(_) => Command::Finalize(t),
                Step::LocalGet(_) => Command::LocalGet(t),
                Step::ContextGet(_) => Command::ContextGet(t),
                Step::FdGet(_) => Command::FdGet(t),
                Step::FlowControlStateGet(_) => Command::FlowControlStateGet(t),
                _ => Command::MaxAtomicMsgsizeGet(t),
            };
            (
                x.client.clone(),
                cmd,
                x.expect.clone(),
                x.expect_fields.clone(),
            )
        }
        Step::Join(x) | Step::Leave(x) | Step::MembershipGet(x) => {
            let g = c::GroupCall {
                target: target(x.handle.as_ref(), x.handle_value),
                group: x.group.clone(),
                name_length: x.name_length,
            };
            let cmd = match step {
                Step::Join(_) => Command::Join(g),
                Step::Leave(_) => Command::Leave(g),
                _ => Command::MembershipGet(g),
            };
            (
                x.client.clone(),
                cmd,
                x.expect.clone(),
                x.expect_fields.clone(),
            )
        }
        Step::Mcast(x) => (
            x.client.clone(),
            Command::Mcast(c::Mcast {
                target: target(x.handle.as_ref(), x.handle_value),
                guarantee: x.guarantee,
                size: x.size,
                count: x.count,
                iovs: x.iovs,
                tag: tag(&x.client, x.handle.as_ref()),
                retry_ms: None,
            }),
            x.expect.clone(),
            x.expect_fields.clone(),
        ),
        Step::ZcbAlloc(x) => (
            x.client.clone(),
            Command::ZcbAlloc(c::ZcbAlloc {
                target: target(x.handle.as_ref(), x.handle_value),
                buf: x.buf.clone(),
                size: x.size,
            }),
            x.expect.clone(),
            x.expect_fields.clone(),
        ),
        Step::ZcbMcast(x) => (
            x.client.clone(),
            Command::ZcbMcast(c::ZcbMcast {
                target: target(x.handle.as_ref(), None),
                buf: x.buf.clone(),
                len: x.len,
                guarantee: x.guarantee,
                tag: tag(&x.client, x.handle.as_ref()),
            }),
            x.expect.clone(),
            none(),
        ),
        Step::ZcbFree(x) => (
            x.client.clone(),
            Command::ZcbFree(c::ZcbFree {
                target: target(x.handle.as_ref(), None),
                buf: x.buf.clone(),
                bogus: x.bogus,
            }),
            x.expect.clone(),
            none(),
        ),
        Step::ContextSet(x) => (
            x.client.clone(),
            Command::ContextSet(c::ContextSet {
                target: target(x.handle.as_ref(), x.handle_value),
                context: x.context,
            }),
            x.expect.clone(),
            none(),
        ),
        Step::Dispatch(x) => (
            x.client.clone(),
            Command::Dispatch(c::Dispatch {
                target: target(x.handle.as_ref(), x.handle_value),
                mode: x.mode,
                guard: x.guard,
                timeout_ms: x.timeout_ms,
                finalize_after: x.finalize_after,
            }),
            x.expect.clone(),
            x.expect_fields.clone(),
        ),
        Step::Iteration(x) => (
            x.client.clone(),
            Command::Iteration(c::Iteration {
                target: target(x.handle.as_ref(), x.handle_value),
                kind: x.kind,
                group: x.group.clone(),
                name_length: None,
                after_finalize: x.after_finalize,
            }),
            x.expect.clone(),
            x.expect_fields.clone(),
        ),
        Step::EvsInitialize(x) => (
            x.client.clone(),
            Command::EvsInitialize(c::EvsInitialize {
                handle: eh(x.handle.as_ref()),
                auto_dispatch: x.auto_dispatch,
            }),
            x.expect.clone(),
            none(),
        ),
        Step::EvsFinalize(x) | Step::EvsFdGet(x) | Step::EvsContextGet(x) => {
            let t = evs_target(x.handle.as_ref(), x.handle_value);
            let cmd = match step {
                Step::EvsFinalize(_) => Command::EvsFinalize(t),
                Step::EvsFdGet(_) => Command::EvsFdGet(t),
                _ => Command::EvsContextGet(t),
            };
            (
                x.client.clone(),
                cmd,
                x.expect.clone(),
                x.expect_fields.clone(),
            )
        }
        Step::EvsContextSet(x) => (
            x.client.clone(),
            Command::EvsContextSet(c::ContextSet {
                target: evs_target(x.handle.as_ref(), x.handle_value),
                context: x.context,
            }),
            x.expect.clone(),
            none(),
        ),
        Step::EvsDispatch(x) => (
            x.client.clone(),
            Command::EvsDispatch(c::Dispatch {
                target: evs_target(x.handle.as_ref(), x.handle_value),
                mode: x.mode,
                guard: x.guard,
                timeout_ms: x.timeout_ms,
                finalize_after: x.finalize_after,
            }),
            x.expect.clone(),
            x.expect_fields.clone(),
        ),
        Step::EvsJoin(x) | Step::EvsLeave(x) => {
            let n = x.repeat.unwrap_or(1) as usize;
            let groups: Vec<c::EvsKey> = std::iter::repeat_n(x.groups.iter(), n)
                .flatten()
                .cloned()
                .collect();
            let g = c::EvsGroups {
                target: evs_target(x.handle.as_ref(), x.handle_value),
                groups,
            };
            let cmd = if matches!(step, Step::EvsJoin(_)) {
                Command::EvsJoin(g)
            } else {
                Command::EvsLeave(g)
            };
            (
                x.client.clone(),
                cmd,
                x.expect.clone(),
                x.expect_fields.clone(),
            )
        }
        Step::EvsMcastJoined(x) | Step::EvsMcastGroups(x) => {
            let m = c::EvsMcast {
                target: evs_target(x.handle.as_ref(), x.handle_value),
                guarantee: x.guarantee,
                groups: x.groups.clone(),
                size: x.size,
                count: x.count,
                iovs: x.iovs,
                tag: Some(format!("{}.{}", x.client, eh(x.handle.as_ref()))),
                retry_ms: None,
            };
            let cmd = if matches!(step, Step::EvsMcastJoined(_)) {
                Command::EvsMcastJoined(m)
            } else {
                Command::EvsMcastGroups(m)
            };
            (
                x.client.clone(),
                cmd,
                x.expect.clone(),
                x.expect_fields.clone(),
            )
        }
        Step::EvsMembershipGet(x) => (
            x.client.clone(),
            Command::EvsMembershipGet(c::EvsMembershipGet {
                target: evs_target(x.handle.as_ref(), x.handle_value),
                entries: x.entries,
            }),
            x.expect.clone(),
            x.expect_fields.clone(),
        ),
        _ => return None,
    })
}

/// Compares expected result fields; a number expected for an array compares its length.
fn fields_mismatch(want: &Fields, got: &serde_json::Map<String, Value>) -> Option<String> {
    for (k, w) in want {
        let g = got.get(k).cloned().unwrap_or(Value::Null);
        let ok = match (&g, w) {
            (Value::Array(a), Value::Number(n)) => n.as_u64() == Some(a.len() as u64),
            _ => &g == w,
        };
        if !ok {
            return Some(format!("field {k}: got {g}, expected {w}"));
        }
    }
    None
}

impl Run<'_> {
    /// Time on the backend's clock: virtual for the simulator, wall-clock otherwise.
    fn now(&self) -> Duration {
        self.backend
            .virtual_now()
            .unwrap_or_else(|| self.t0.elapsed())
    }

    /// A trace timestamp in µs: virtual time for the simulator.
    fn stamp(&self) -> u64 {
        self.backend
            .virtual_now()
            .map_or_else(now_us, |d| d.as_micros() as u64)
    }

    /// Waits until `pred` holds on the trace or the backend's clock passes `deadline`.
    fn wait_until<T>(
        &mut self,
        deadline: Duration,
        mut pred: impl FnMut(&[crate::trace::Event]) -> Option<T>,
    ) -> Option<T> {
        if self.backend.virtual_now().is_none() {
            let left = deadline.saturating_sub(self.now());
            return self
                .sink
                .wait_for(Instant::now() + left, &interrupted, pred);
        }
        loop {
            if let Some(v) = pred(&self.sink.snapshot()) {
                return Some(v);
            }
            let now = self.now();
            if now >= deadline || interrupted() {
                return None;
            }
            self.backend.pass_time(VIRTUAL_POLL.min(deadline - now));
        }
    }

    /// Waits up to `timeout` for `pred`.
    fn wait<T>(
        &mut self,
        timeout: Duration,
        pred: impl FnMut(&[crate::trace::Event]) -> Option<T>,
    ) -> Option<T> {
        let deadline = self.now() + timeout;
        self.wait_until(deadline, pred)
    }

    /// Lets `d` pass on the backend's clock.
    fn sleep(&mut self, d: Duration) {
        if self.backend.virtual_now().is_some() {
            self.backend.pass_time(d);
            return;
        }
        let end = Instant::now() + d;
        while Instant::now() < end && !interrupted() {
            std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
    }

    fn marker(&self, index: usize, text: String) {
        let t = self.stamp();
        self.sink.push("", EventKind::Step { index, text }, t);
    }

    fn act(&mut self, a: &Action) -> bool {
        match self.backend.apply(a) {
            Ok(()) => true,
            Err(e) => {
                self.failures.push(format!("{a:?}: {e}"));
                false
            }
        }
    }

    fn steps(&mut self) {
        let n = self.s.topology.nodes;
        for (i, step) in self.s.steps.iter().enumerate() {
            if interrupted() {
                return;
            }
            let text = step_text(step, n);
            self.marker(i, text.clone());
            let ok = self.step(i, step, n);
            if !ok {
                self.failures
                    .push(format!("aborted at steps[{i}] ({text})"));
                return;
            }
        }
    }

    /// Executes one step; false aborts the scenario (later steps would only time out).
    fn step(&mut self, i: usize, step: &Step, n: u32) -> bool {
        match step {
            Step::StartNodes(sel) => sel
                .resolve(n)
                .into_iter()
                .all(|x| self.act(&Action::StartNode(x))),
            Step::StopNode(x) => self.act(&Action::StopNode(*x)),
            Step::KillNode(x) => self.act(&Action::KillNode(*x)),
            Step::PauseNode(x) => self.act(&Action::PauseNode(*x)),
            Step::ResumeNode(x) => self.act(&Action::ResumeNode(*x)),
            Step::Partition(sets) => self.act(&Action::Partition(sets.clone())),
            Step::Heal => self.act(&Action::Heal),
            Step::CutLink(at) | Step::HealLink(at) => self.act(&Action::SetLink {
                node: at.node,
                link: at.link,
                up: matches!(step, Step::HealLink(_)),
            }),
            Step::SleepMs(ms) => {
                self.sleep(Duration::from_millis(*ms));
                true
            }
            Step::WaitRing(w) => self.wait_ring(&w.nodes.resolve(n), &w.members, w.timeout_ms),
            Step::Client(c) => {
                if !self.act(&Action::StartClient {
                    name: c.name.clone(),
                    node: c.node,
                }) {
                    return false;
                }
                let name = c.name.clone();
                let got = self.wait(Duration::from_secs(15), |ev| {
                    ev.iter().find_map(|e| match &e.kind {
                        EventKind::ClientStarted { .. } if e.client == name => Some(Ok(())),
                        EventKind::ClientFatal { error } if e.client == name => {
                            Some(Err(error.clone()))
                        }
                        EventKind::ClientExited { .. } if e.client == name => {
                            Some(Err("exited at start".into()))
                        }
                        _ => None,
                    })
                });
                match got {
                    Some(Ok(())) => true,
                    Some(Err(e)) => {
                        self.failures.push(format!("client {name}: {e}"));
                        false
                    }
                    None => {
                        self.failures
                            .push(format!("client {name}: no hello within 15 s"));
                        false
                    }
                }
            }
            Step::KillClient(k) => {
                if !self.act(&Action::SignalClient {
                    name: k.name.clone(),
                    signal: k.signal,
                }) {
                    return false;
                }
                if matches!(k.signal, Signal::Kill | Signal::Term) {
                    return self.wait_exit(&k.name);
                }
                true
            }
            Step::QuitClient(name) => {
                self.act(&Action::QuitClient(name.clone())) && self.wait_exit(name)
            }
            Step::Burst(b) => self.burst(b),
            Step::WaitUntil(w) => {
                let Ok(c) = w.condition() else { return false };
                if self
                    .wait(Duration::from_millis(w.timeout_ms), |ev| {
                        cond::holds(&c, ev).then_some(())
                    })
                    .is_some()
                {
                    true
                } else {
                    let ev = self.sink.snapshot();
                    self.failures.push(format!(
                        "steps[{i}] wait_until timed out after {} ms: {}",
                        w.timeout_ms,
                        cond::explain(&c, &ev)
                    ));
                    false
                }
            }
            other => {
                let Some((client, cmd, expect, fields)) = command(other) else {
                    self.failures
                        .push(format!("steps[{i}]: not an agent command"));
                    return false;
                };
                let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
                let request = Request {
                    id: Some(id),
                    command: cmd,
                };
                let timeout = match other {
                    Step::Join(c) | Step::Leave(c) | Step::MembershipGet(c) => {
                        c.timeout_ms.map(Duration::from_millis)
                    }
                    _ => None,
                };
                let timeout = timeout.unwrap_or(self.cmd_timeout);
                self.call(i, &client, &request, expect.as_ref(), &fields, timeout)
            }
        }
    }

    fn wait_exit(&mut self, name: &str) -> bool {
        let ok = self
            .wait(Duration::from_secs(10), |ev| {
                ev.iter()
                    .any(|e| e.client == name && matches!(e.kind, EventKind::ClientExited { .. }))
                    .then_some(())
            })
            .is_some();
        if !ok {
            self.failures
                .push(format!("client {name} did not exit within 10 s"));
        }
        ok
    }

    /// Sends one command and checks its result. Returns false only when the scenario cannot
    /// go on (no answer); a wrong return code is recorded and the run continues.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        i: usize,
        client: &str,
        request: &Request,
        expect: Option<&RcExpect>,
        fields: &Fields,
        timeout: Duration,
    ) -> bool {
        if !self.act(&Action::Command {
            client: client.to_owned(),
            request: request.clone(),
        }) {
            return false;
        }
        let id = request.id.unwrap_or_default();
        enum Got {
            Result(
                Option<String>,
                Option<String>,
                serde_json::Map<String, Value>,
            ),
            Watchdog,
            Exited,
        }
        // A watchdog's report comes right before the agent's exit: it wins when both are
        // there (on a virtual clock they arrive at once).
        let got = self.wait(timeout, |ev| {
            let mine = || ev.iter().rev().filter(|e| e.client == client);
            mine()
                .find_map(|e| match &e.kind {
                    EventKind::Result {
                        id: Some(x),
                        rc,
                        error,
                        fields,
                        ..
                    } if *x == id => Some(Got::Result(rc.clone(), error.clone(), fields.clone())),
                    EventKind::Watchdog { .. } => Some(Got::Watchdog),
                    _ => None,
                })
                .or_else(|| {
                    mine()
                        .any(|e| matches!(e.kind, EventKind::ClientExited { .. }))
                        .then_some(Got::Exited)
                })
        });
        let cmd = request.command.name();
        let want = expect.cloned().unwrap_or_default();
        let (rc, error, got_fields) = match got {
            Some(Got::Result(rc, error, f)) => (rc, error, f),
            Some(Got::Watchdog) => (Some("WATCHDOG".into()), None, Default::default()),
            Some(Got::Exited) => {
                self.failures.push(format!(
                    "steps[{i}] {cmd}: client {client} exited before answering"
                ));
                return false;
            }
            None if want.accepts(ExpectedRc::NoAnswer) => return true,
            None => {
                self.failures.push(format!(
                    "steps[{i}] {cmd}: no answer from {client} within {} ms",
                    timeout.as_millis()
                ));
                return false;
            }
        };
        let outcome = match (&rc, &error) {
            (Some(r), _) => match r.parse::<ExpectedRc>() {
                Ok(x) => x,
                Err(e) => {
                    self.failures
                        .push(format!("steps[{i}] {cmd} on {client}: {e}"));
                    return true;
                }
            },
            (None, Some(e)) if e.starts_with("refused") => ExpectedRc::Refused,
            (None, Some(e)) => {
                self.failures
                    .push(format!("steps[{i}] {cmd}: agent error: {e}"));
                return true;
            }
            (None, None) => ExpectedRc::NoCall,
        };
        if !want.accepts(outcome) {
            self.failures.push(format!(
                "steps[{i}] {cmd} on {client}: returned {outcome}, expected {:?}",
                want.names()
            ));
        }
        if let Some(m) = fields_mismatch(fields, &got_fields) {
            self.failures
                .push(format!("steps[{i}] {cmd} on {client}: {m}"));
        }
        outcome != ExpectedRc::Watchdog || want.accepts(ExpectedRc::Watchdog)
    }

    fn burst(&mut self, b: &crate::scenario::raw::Burst) -> bool {
        let mut ids = Vec::new();
        let senders = b
            .senders
            .iter()
            .map(|s| (s, false))
            .chain(b.evs_senders.iter().map(|s| (s, true)));
        for (s, evs) in senders {
            let default = if evs { "e1" } else { "h1" };
            let (client, handle) = s.split_once('.').unwrap_or((s.as_str(), default));
            let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
            let tag = Some(format!("{client}.{handle}"));
            let command = if evs {
                Command::EvsMcastJoined(totem_agent_protocol::command::EvsMcast {
                    target: Target::named(handle),
                    guarantee: b.guarantee,
                    groups: Vec::new(),
                    size: b.size,
                    count: b.count,
                    iovs: None,
                    tag,
                    retry_ms: None,
                })
            } else {
                Command::Mcast(totem_agent_protocol::command::Mcast {
                    target: Target::named(handle),
                    guarantee: b.guarantee,
                    size: b.size,
                    count: b.count,
                    iovs: None,
                    tag,
                    retry_ms: None,
                })
            };
            let request = Request {
                id: Some(id),
                command,
            };
            if !self.act(&Action::Command {
                client: client.to_owned(),
                request,
            }) {
                return false;
            }
            ids.push((client.to_owned(), id));
        }
        let deadline = self.now() + Duration::from_millis(b.timeout_ms);
        for (client, id) in ids {
            let got = self.wait_until(deadline, |ev| {
                ev.iter().rev().find_map(|e| match &e.kind {
                    EventKind::Result {
                        id: Some(x),
                        rc,
                        fields,
                        ..
                    } if e.client == client && *x == id => Some((
                        rc.clone(),
                        fields.get("sent").and_then(Value::as_u64).unwrap_or(0),
                    )),
                    _ => None,
                })
            });
            match got {
                Some((Some(rc), sent)) if rc == "CS_OK" && sent == b.count => {}
                Some((rc, sent)) => {
                    self.failures.push(format!(
                        "burst from {client}: rc {rc:?}, sent {sent} of {}",
                        b.count
                    ));
                }
                None => {
                    self.failures.push(format!(
                        "burst from {client}: no result within {} ms",
                        b.timeout_ms
                    ));
                    return false;
                }
            }
        }
        true
    }

    fn wait_ring(&mut self, nodes: &[u32], members: &[u32], timeout_ms: u64) -> bool {
        let deadline = self.now() + Duration::from_millis(timeout_ms);
        let mut want = members.to_vec();
        want.sort_unstable();
        let mut last = Vec::new();
        loop {
            last.clear();
            let mut all = true;
            for &n in nodes {
                let m = self.backend.ring_members(n).ok().flatten();
                if m.as_deref() != Some(&want[..]) {
                    all = false;
                }
                last.push((n, m));
            }
            if all {
                return true;
            }
            if self.now() > deadline || interrupted() {
                self.failures.push(format!(
                    "wait_ring: wanted members {want:?}, saw {last:?} after {timeout_ms} ms"
                ));
                return false;
            }
            self.sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the trace has been quiet for a moment (bounded), so messages still in
    /// flight are in the trace before expectations and checkers look at it.
    fn settle(&mut self) {
        let end = self.now() + Duration::from_secs(10);
        let mut last = self.sink.len();
        let mut quiet_since = self.now();
        while self.now() < end && !interrupted() {
            self.sleep(Duration::from_millis(50));
            let now = self.sink.len();
            if now != last {
                last = now;
                quiet_since = self.now();
            } else if self.now() - quiet_since > Duration::from_millis(400) {
                return;
            }
        }
    }
}

/// The marker text for a step (kept short; the normalised trace lists these).
pub fn step_text(step: &Step, n: u32) -> String {
    match step {
        Step::StartNodes(sel) => format!("start_nodes {:?}", sel.resolve(n)),
        Step::StopNode(x) => format!("stop_node {x}"),
        Step::KillNode(x) => format!("kill_node {x}"),
        Step::PauseNode(x) => format!("pause_node {x}"),
        Step::ResumeNode(x) => format!("resume_node {x}"),
        Step::Partition(s) => format!("partition {s:?}"),
        Step::Heal => "heal".into(),
        Step::CutLink(at) => format!("cut_link {} of node {}", at.link, at.node),
        Step::HealLink(at) => format!("heal_link {} of node {}", at.link, at.node),
        Step::WaitRing(w) => format!("wait_ring {:?} members {:?}", w.nodes.resolve(n), w.members),
        Step::SleepMs(ms) => format!("sleep {ms} ms"),
        Step::Client(c) => format!("client {} on node {}", c.name, c.node),
        Step::KillClient(k) => format!("kill_client {} {:?}", k.name, k.signal),
        Step::QuitClient(c) => format!("quit_client {c}"),
        Step::Burst(b) if b.evs_senders.is_empty() => format!(
            "burst {:?} x{} of {} B {}",
            b.senders, b.count, b.size, b.guarantee
        ),
        Step::Burst(b) => format!(
            "burst {:?} evs {:?} x{} of {} B {}",
            b.senders, b.evs_senders, b.count, b.size, b.guarantee
        ),
        Step::WaitUntil(w) => format!(
            "wait_until {}",
            w.condition()
                .map(|c| serde_json::to_string(&c).unwrap_or_default())
                .unwrap_or_default()
        ),
        other => command(other)
            .map(|(c, cmd, _, _)| format!("{c}: {}", cmd.name()))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    //! The driver against a scripted in-process backend (a mock, used only here): return
    //! codes, result fields, waits and the deviation bookkeeping decide the verdict.

    use std::path::Path;

    use super::*;
    use crate::backend::{Artifacts, BResult, Capabilities};
    use crate::expectations::Deviation;
    use crate::scenario::load::parse_str;
    use crate::scenario::model::Topology;
    use crate::scenario::raw::Ipc;

    /// Answers every command with `rc` (CS_ERR_EXIST for a join on an already-joined
    /// handle) and a confchg for joins, like a one-node CPG would.
    struct Scripted {
        sink: TraceSink,
        joined: BTreeSet<String>,
        evs_nodes: EvsNodes,
    }

    impl Backend for Scripted {
        fn kind(&self) -> BackendKind {
            BackendKind::Sim
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                transports: vec![Transport::Udpu],
                max_nodes: 5,
                min_nodes: 1,
                signals: false,
                partitions: false,
                pcap: false,
                ipc: vec![Ipc::Shm],
                link_mtu: false,
                max_links: 1,
                evs_nodes: self.evs_nodes,
                services: Vec::new(),
            }
        }
        fn availability(&self) -> Result<(), String> {
            Ok(())
        }
        fn start(&mut self, _: &Topology, sink: TraceSink, _: Option<&Path>) -> BResult<()> {
            self.sink = sink;
            Ok(())
        }
        fn apply(&mut self, a: &Action) -> BResult<()> {
            match a {
                Action::StartClient { name, node } => self.sink.push(
                    name,
                    EventKind::ClientStarted {
                        node: *node,
                        pid: 10,
                    },
                    0,
                ),
                Action::Command { client, request } => {
                    let v: Value = serde_json::to_value(request).expect("json");
                    let cmd = v["cmd"].as_str().unwrap_or_default().to_owned();
                    let handle = v["handle"].as_str().unwrap_or_default().to_owned();
                    let mut rc = "CS_OK";
                    let mut fields = serde_json::Map::new();
                    if cmd == "join" {
                        if self.joined.insert(handle.clone()) {
                            let me = crate::trace::Addr {
                                nodeid: 1,
                                pid: 10,
                                reason: "JOIN".into(),
                            };
                            self.sink.push(
                                client,
                                EventKind::Confchg {
                                    handle: handle.clone(),
                                    group: "g".into(),
                                    members: vec![crate::trace::Addr {
                                        reason: "UNDEFINED".into(),
                                        ..me.clone()
                                    }],
                                    left: vec![],
                                    joined: vec![me],
                                },
                                0,
                            );
                        } else {
                            rc = "CS_ERR_EXIST";
                        }
                    }
                    if cmd == "local_get" {
                        fields.insert("nodeid".into(), serde_json::json!(1));
                    }
                    self.sink.push(
                        client,
                        EventKind::Result {
                            id: v["id"].as_u64(),
                            cmd,
                            handle,
                            rc: Some(rc.into()),
                            error: None,
                            fields,
                        },
                        0,
                    );
                }
                _ => {}
            }
            Ok(())
        }
        fn ring_members(&mut self, _: u32) -> BResult<Option<Vec<u32>>> {
            Ok(Some(vec![1]))
        }
        fn observe(&self) -> Trace {
            Trace::default()
        }
        fn stop(&mut self) -> BResult<Artifacts> {
            Ok(Artifacts::default())
        }
    }

    const BASE: &str = "id: t\ntitle: t\nspec_ref: s\nrequirement: r\ntopology:\n  nodes: 1\nsteps:\n  - start_nodes: all\n  - wait_ring: {nodes: all, members: [1]}\n  - client: {name: a, node: 1}\n  - initialize: {client: a}\n  - join: {client: a, group: g}\n";

    fn run(extra: &str, devs: &Deviations) -> CaseOutcome {
        let s = parse_str(&format!("{BASE}{extra}"), Path::new("t.yaml")).expect("valid scenario");
        let mut b = Scripted {
            sink: TraceSink::default(),
            joined: BTreeSet::new(),
            evs_nodes: EvsNodes::All,
        };
        run_case(
            &s,
            &mut b,
            &RunOptions {
                artifacts: None,
                deviations: devs,
                cmd_timeout: Duration::from_secs(2),
            },
        )
    }

    #[test]
    fn matching_codes_and_fields_pass() {
        let o = run(
            "  - join: {client: a, group: g, expect: CS_ERR_EXIST}\n  - local_get: {client: a, expect_fields: {nodeid: 1}}\n  - wait_until: {confchg: {client: a, joined: JOIN}, timeout_ms: 100}\n",
            &Deviations::default(),
        );
        assert_eq!(o.verdict, Verdict::Pass, "{:?}", o.failures);
    }

    #[test]
    fn wrong_code_field_or_wait_fails() {
        for extra in [
            "  - join: {client: a, group: g}\n",
            "  - local_get: {client: a, expect_fields: {nodeid: 2}}\n",
            "  - wait_until: {confchg: {client: a, left: LEAVE}, timeout_ms: 100}\n",
        ] {
            let o = run(extra, &Deviations::default());
            assert_eq!(o.verdict, Verdict::Fail, "{extra}");
            assert!(!o.failures.is_empty());
        }
    }

    #[test]
    fn declared_deviation_needs_its_entry() {
        let dev = "deviation: {id: d1, man_page_says: x, corosync_does: y}\n";
        let extra = "  - join: {client: a, group: g, expect: CS_ERR_EXIST}\n";
        let s = format!("{BASE}{extra}").replacen("topology:", &format!("{dev}topology:"), 1);
        let parse = |devs: &Deviations| {
            let sc = parse_str(&s, Path::new("t.yaml")).expect("valid");
            let mut b = Scripted {
                sink: TraceSink::default(),
                joined: BTreeSet::new(),
                evs_nodes: EvsNodes::All,
            };
            run_case(
                &sc,
                &mut b,
                &RunOptions {
                    artifacts: None,
                    deviations: devs,
                    cmd_timeout: Duration::from_secs(2),
                },
            )
        };
        assert_eq!(parse(&Deviations::default()).verdict, Verdict::Fail);
        let listed = Deviations {
            deviations: vec![Deviation {
                id: "d1".into(),
                scenarios: "t".into(),
                backends: vec![],
                man_page: "m".into(),
                reason: "because".into(),
            }],
        };
        assert!(matches!(parse(&listed).verdict, Verdict::Deviation(r) if r.contains("because")));
    }

    #[test]
    fn unsupported_steps_skip() {
        let o = run("  - kill_node: 1\n", &Deviations::default());
        assert!(
            matches!(o.verdict, Verdict::Skipped(ref r) if r.contains("signals")),
            "{:?}",
            o.verdict
        );
    }

    #[test]
    fn evs_runs_only_where_the_daemon_serves_it() {
        let text = BASE.replace("  nodes: 1\n", "  nodes: 2\n").replace(
            "  - join: {client: a, group: g}\n",
            "  - evs_initialize: {client: a}\n",
        );
        let s = parse_str(&text, Path::new("t.yaml")).expect("valid scenario");
        let verdict = |evs_nodes| {
            let mut b = Scripted {
                sink: TraceSink::default(),
                joined: BTreeSet::new(),
                evs_nodes,
            };
            run_case(
                &s,
                &mut b,
                &RunOptions {
                    artifacts: None,
                    deviations: &Deviations::default(),
                    cmd_timeout: Duration::from_secs(2),
                },
            )
            .verdict
        };
        assert!(
            matches!(verdict(EvsNodes::None), Verdict::Skipped(ref r) if r.contains("no EVS")),
            "{:?}",
            verdict(EvsNodes::None)
        );
        // Client a is on node 1: a mixed ring runs corosync there.
        assert!(
            matches!(verdict(EvsNodes::Even), Verdict::Skipped(ref r) if r.contains("node 1")),
            "{:?}",
            verdict(EvsNodes::Even)
        );
        assert_eq!(verdict(EvsNodes::All), Verdict::Pass);
    }

    #[test]
    fn service_steps_skip_where_the_backend_does_not_serve_them() {
        let text = format!("{BASE}  - quorum_initialize: {{client: a}}\n");
        let s = parse_str(&text, Path::new("t.yaml")).expect("valid scenario");
        let mut b = Scripted {
            sink: TraceSink::default(),
            joined: BTreeSet::new(),
            evs_nodes: EvsNodes::All,
        };
        let o = run_case(
            &s,
            &mut b,
            &RunOptions {
                artifacts: None,
                deviations: &Deviations::default(),
                cmd_timeout: Duration::from_secs(2),
            },
        );
        assert!(
            matches!(o.verdict, Verdict::Skipped(ref r) if r.contains("not serve Quorum")),
            "{:?}",
            o.verdict
        );
    }

    #[test]
    fn unsupported_ipc_type_skips() {
        let text = BASE.replace("  nodes: 1\n", "  nodes: 1\n  ipc: socket\n");
        let s = parse_str(&text, Path::new("t.yaml")).expect("valid scenario");
        let mut b = Scripted {
            sink: TraceSink::default(),
            joined: BTreeSet::new(),
            evs_nodes: EvsNodes::All,
        };
        let o = run_case(
            &s,
            &mut b,
            &RunOptions {
                artifacts: None,
                deviations: &Deviations::default(),
                cmd_timeout: Duration::from_secs(2),
            },
        );
        assert!(
            matches!(o.verdict, Verdict::Skipped(ref r) if r.contains("IPC type socket")),
            "{:?}",
            o.verdict
        );
    }
}
