//! The backend-neutral trace: what every client saw and every call returned, in the order
//! the runner received it. Real corosync, the simulator and our daemon all produce this.

pub mod normalize;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

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

/// Turns one JSON line from an agent into an event (see the agent protocol in the README).
pub fn parse_agent_line(line: &str) -> Result<(u64, EventKind), String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("bad agent line {line:?}: {e}"))?;
    let o = v.as_object().ok_or("agent line is not an object")?;
    let t = o
        .get("t")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(now_us);
    let s = |k: &str| {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let n = |k: &str| o.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let addrs = |k: &str| -> Result<Vec<Addr>, String> {
        serde_json::from_value(o.get(k).cloned().unwrap_or_default())
            .map_err(|e| format!("bad {k} list: {e}"))
    };
    let kind = match s("ev").as_str() {
        "hello" => EventKind::ClientStarted {
            node: 0,
            pid: n("pid") as u32,
        },
        "fatal" => EventKind::ClientFatal { error: s("error") },
        "watchdog" => EventKind::Watchdog {
            handle: s("handle"),
            mode: s("mode"),
        },
        "result" => {
            let mut fields = o.clone();
            for k in ["ev", "t", "id", "cmd", "handle", "rc", "error"] {
                fields.remove(k);
            }
            EventKind::Result {
                id: o.get("id").and_then(serde_json::Value::as_u64),
                cmd: s("cmd"),
                handle: s("handle"),
                rc: o
                    .get("rc")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                error: o
                    .get("error")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                fields,
            }
        }
        "confchg" => EventKind::Confchg {
            handle: s("handle"),
            group: s("group"),
            members: addrs("members")?,
            left: addrs("left")?,
            joined: addrs("joined")?,
        },
        "deliver" => EventKind::Deliver {
            handle: s("handle"),
            group: s("group"),
            nodeid: n("nodeid") as u32,
            pid: n("pid") as u32,
            len: n("len"),
            digest: s("digest"),
            tag: o
                .get("tag")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            seq: o.get("seq").and_then(serde_json::Value::as_u64),
            intact: o.get("intact").and_then(serde_json::Value::as_bool),
        },
        "totem_confchg" => {
            let ring = o.get("ring").cloned().unwrap_or_default();
            EventKind::TotemConfchg {
                handle: s("handle"),
                ring_nodeid: ring
                    .get("nodeid")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0) as u32,
                ring_seq: ring
                    .get("seq")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
                members: serde_json::from_value(o.get("members").cloned().unwrap_or_default())
                    .map_err(|e| format!("bad members: {e}"))?,
            }
        }
        other => return Err(format!("unknown agent event {other:?}")),
    };
    Ok((t, kind))
}
