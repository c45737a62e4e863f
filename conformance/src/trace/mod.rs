//! The backend-neutral trace: what every client saw and every call returned, in the order
//! the runner received it. Real corosync, the simulator and our daemon all produce this.

pub mod normalize;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use totem_agent_protocol as agent;

/// One entry of a confchg list (`struct cpg_address`, reason by name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Addr {
    pub nodeid: u32,
    pub pid: u32,
    pub reason: String,
}

/// Do two group names written as in traces and scenarios (`totem_wire::exec::cpg::
/// escape_name`'s notation: printable ASCII, `\\`, `\xNN`) name the same bytes? Traces hold
/// the canonical form; a scenario may spell a byte either way (`"\x41"` or `"A"`).
pub fn same_group(a: &str, b: &str) -> bool {
    use totem_wire::exec::cpg::unescape_name;
    match (unescape_name(a), unescape_name(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Trace events. `group` fields are the group's identity — the first `length` bytes of the
/// client's `struct cpg_name` (mar_name_compare) — escaped as `escape_name` does, so that
/// distinct names stay distinct (never a lossy UTF-8 conversion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum EventKind {
    /// The runner's own marker for a step (node start, kill, partition ...).
    Step {
        index: usize,
        text: String,
    },
    ClientStarted {
        node: u32,
        pid: u32,
    },
    ClientExited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The agent could not start (e.g. libcpg missing).
    ClientFatal {
        error: String,
    },
    Watchdog {
        handle: String,
        mode: String,
    },
    /// The answer to one call; `fields` holds call-specific values (members, nodeid ...).
    Result {
        id: Option<u64>,
        cmd: String,
        handle: String,
        rc: Option<String>,
        error: Option<String>,
        #[serde(default)]
        fields: serde_json::Map<String, serde_json::Value>,
    },
    Confchg {
        handle: String,
        group: String,
        members: Vec<Addr>,
        left: Vec<Addr>,
        joined: Vec<Addr>,
    },
    Deliver {
        handle: String,
        group: String,
        nodeid: u32,
        pid: u32,
        len: u64,
        digest: String,
        tag: Option<String>,
        seq: Option<u64>,
        intact: Option<bool>,
    },
    TotemConfchg {
        handle: String,
        ring_nodeid: u32,
        ring_seq: u64,
        members: Vec<u32>,
    },
    /// An EVS deliver callback (docs/evs.md): the sender's nodeid, the payload described.
    EvsDeliver {
        handle: String,
        nodeid: u32,
        len: u64,
        digest: String,
        tag: Option<String>,
        seq: Option<u64>,
        intact: Option<bool>,
    },
    /// An EVS confchg callback: node lists; `kind` and the ring when the implementation
    /// passed them.
    EvsConfchg {
        handle: String,
        kind: Option<String>,
        ring: Option<String>,
        members: Vec<u32>,
        left: Vec<u32>,
        joined: Vec<u32>,
    },
    /// A quorum notification; `ring` is `nodeid.seq` (model v1) or `?.seq` (v0).
    QuorumNotify {
        handle: String,
        quorate: bool,
        ring: String,
        members: Vec<u32>,
    },
    /// A model v1 nodelist notification.
    QuorumNodelist {
        handle: String,
        ring: String,
        members: Vec<u32>,
        joined: Vec<u32>,
        left: Vec<u32>,
    },
    /// A cmap track notification; values as `{type, value}`.
    CmapNotify {
        handle: String,
        track: String,
        event: String,
        key: String,
        new: Option<serde_json::Value>,
        old: Option<serde_json::Value>,
    },
    /// A cfg shutdown callback and the policy's answer from inside it.
    CfgShutdown {
        handle: String,
        flags: String,
        reply: String,
        reply_rc: Option<String>,
    },
}

/// For each event, whether it is a regular EVS confchg (`Some(true)`), a transitional one
/// (`Some(false)`) or no EVS confchg (`None`). The implementation says so when it can;
/// libevs's C callback cannot, and then the ring tells: totemsrp gives the transitional and
/// the regular configuration of one change the new ring's id, and a connection gets both
/// (EVS-CODE-2), so a confchg naming the ring of the handle's previous one is the regular
/// of a pair, one naming another ring is a transitional (its regular follows), and a
/// handle's first confchg is the copy of its node's last configuration, which is regular
/// (EVS-CODE-1). Without a ring (1.4's NULL) nothing tells: counted regular.
pub fn evs_confchg_regular(events: &[Event]) -> Vec<Option<bool>> {
    let mut last_ring: std::collections::BTreeMap<(&str, &str), Option<&str>> =
        std::collections::BTreeMap::new();
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::EvsConfchg {
                handle, kind, ring, ..
            } => {
                let prev = last_ring.insert((&e.client, handle), ring.as_deref());
                Some(match (kind.as_deref(), prev) {
                    (Some(k), _) => k == "REGULAR",
                    (None, None) => true,
                    (None, Some(prev)) => ring.is_none() || prev == ring.as_deref(),
                })
            }
            _ => None,
        })
        .collect()
}

impl EventKind {
    /// Whether the event belongs to an EVS handle (EVS callbacks, `evs_*` results).
    pub fn is_evs(&self) -> bool {
        match self {
            EventKind::EvsDeliver { .. } | EventKind::EvsConfchg { .. } => true,
            EventKind::Result { cmd, .. } => cmd.starts_with("evs_"),
            _ => false,
        }
    }

    /// Whether the event belongs to a quorum, cmap or cfg handle.
    pub fn is_svc(&self) -> bool {
        match self {
            EventKind::QuorumNotify { .. }
            | EventKind::QuorumNodelist { .. }
            | EventKind::CmapNotify { .. }
            | EventKind::CfgShutdown { .. } => true,
            EventKind::Result { cmd, .. } => {
                cmd.starts_with("quorum_") || cmd.starts_with("cmap_") || cmd.starts_with("cfg_")
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Microseconds since the Unix epoch, as stamped by the agent (or the runner).
    pub t_us: u64,
    /// The client (agent) name from the scenario; empty for runner markers.
    pub client: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub scenario: String,
    pub backend: String,
    pub events: Vec<Event>,
}

impl Trace {
    /// The pid each client reported when it started.
    pub fn client_pids(&self) -> std::collections::BTreeMap<String, u32> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::ClientStarted { pid, .. } => Some((e.client.clone(), pid)),
                _ => None,
            })
            .collect()
    }
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Where backends append events while a scenario runs; the driver waits on it.
#[derive(Clone, Default)]
pub struct TraceSink {
    inner: Arc<(Mutex<Vec<Event>>, Condvar)>,
}

impl TraceSink {
    pub fn push(&self, client: &str, kind: EventKind, t_us: u64) {
        let (m, cv) = &*self.inner;
        m.lock().unwrap_or_else(|e| e.into_inner()).push(Event {
            t_us,
            client: client.to_owned(),
            kind,
        });
        cv.notify_all();
    }

    pub fn len(&self) -> usize {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn snapshot(&self) -> Vec<Event> {
        self.inner
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `pred` holds over the events or `deadline` passes, waking on every new
    /// event and at least every 100 ms (so `stop` can interrupt the wait).
    pub fn wait_for<T>(
        &self,
        deadline: Instant,
        stop: &dyn Fn() -> bool,
        mut pred: impl FnMut(&[Event]) -> Option<T>,
    ) -> Option<T> {
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = pred(&g) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline || stop() {
                return None;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            g = cv
                .wait_timeout(g, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The trace event for one agent protocol event (a `hello` is a start on node 0: the
/// backend knows the node).
pub fn from_agent(event: agent::Event) -> Result<EventKind, String> {
    let addrs = |v: Vec<agent::event::Address>| -> Vec<Addr> {
        v.into_iter()
            .map(|a| Addr {
                nodeid: a.nodeid,
                pid: a.pid,
                reason: a.reason,
            })
            .collect()
    };
    Ok(match event {
        agent::Event::Hello { pid, protocol, .. } => {
            if protocol != agent::PROTOCOL_VERSION {
                return Err(format!(
                    "the agent speaks protocol version {protocol}, this runner {}",
                    agent::PROTOCOL_VERSION
                ));
            }
            EventKind::ClientStarted { node: 0, pid }
        }
        agent::Event::Fatal { error } => EventKind::ClientFatal { error },
        agent::Event::Watchdog { handle, mode, .. } => EventKind::Watchdog { handle, mode },
        agent::Event::Result(r) => {
            // Call-specific outputs stay a map: checkers and conditions read them by name,
            // as the scenario's `expect_fields` names them.
            let fields = match serde_json::to_value(&r.out) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            EventKind::Result {
                id: r.id,
                cmd: r.cmd,
                handle: r.handle.unwrap_or_default(),
                rc: r.rc.map(|rc| rc.to_string()),
                error: r.error,
                fields,
            }
        }
        agent::Event::Confchg {
            handle,
            group,
            members,
            left,
            joined,
        } => EventKind::Confchg {
            handle,
            group,
            members: addrs(members),
            left: addrs(left),
            joined: addrs(joined),
        },
        agent::Event::Deliver {
            handle,
            group,
            nodeid,
            pid,
            len,
            digest,
            tag,
            seq,
            intact,
        } => EventKind::Deliver {
            handle,
            group,
            nodeid,
            pid,
            len,
            digest,
            tag,
            seq,
            intact,
        },
        agent::Event::TotemConfchg {
            handle,
            ring,
            members,
        } => EventKind::TotemConfchg {
            handle,
            ring_nodeid: ring.nodeid,
            ring_seq: ring.seq,
            members,
        },
        agent::Event::EvsDeliver {
            handle,
            nodeid,
            len,
            digest,
            tag,
            seq,
            intact,
        } => EventKind::EvsDeliver {
            handle,
            nodeid,
            len,
            digest,
            tag,
            seq,
            intact,
        },
        agent::Event::EvsConfchg {
            handle,
            kind,
            ring,
            members,
            left,
            joined,
        } => EventKind::EvsConfchg {
            handle,
            kind,
            ring: ring.map(|r| format!("{}.{}", r.nodeid, r.seq)),
            members,
            left,
            joined,
        },
        agent::Event::QuorumNotify {
            handle,
            quorate,
            ring_nodeid,
            ring_seq,
            members,
        } => EventKind::QuorumNotify {
            handle,
            quorate,
            ring: format!(
                "{}.{ring_seq}",
                ring_nodeid.map_or_else(|| "?".to_owned(), |n| n.to_string())
            ),
            members,
        },
        agent::Event::QuorumNodelist {
            handle,
            ring,
            members,
            joined,
            left,
        } => EventKind::QuorumNodelist {
            handle,
            ring: format!("{}.{}", ring.nodeid, ring.seq),
            members,
            joined,
            left,
        },
        agent::Event::CmapNotify {
            handle,
            track,
            event,
            key,
            new,
            old,
        } => EventKind::CmapNotify {
            handle,
            track,
            event,
            key,
            new: new.and_then(|v| serde_json::to_value(v).ok()),
            old: old.and_then(|v| serde_json::to_value(v).ok()),
        },
        agent::Event::CfgShutdown {
            handle,
            flags,
            reply,
            reply_rc,
        } => EventKind::CfgShutdown {
            handle,
            flags,
            reply,
            reply_rc: reply_rc.map(|r| r.to_string()),
        },
    })
}

/// Turns one JSON line from an agent into an event (the agent protocol,
/// `totem-agent-protocol`).
pub fn parse_agent_line(line: &str) -> Result<(u64, EventKind), String> {
    let l: agent::Line =
        serde_json::from_str(line).map_err(|e| format!("bad agent line {line:?}: {e}"))?;
    Ok((l.t, from_agent(l.event)?))
}
