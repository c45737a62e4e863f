//! `totem-inspect stats` for IPC recordings: calls and errors per type with their
//! latencies, connections, TRY_AGAIN retry storms, and how long events took to follow the
//! calls that caused them. Fed one record at a time; memory is bounded.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};

use serde::Serialize;

use totem_wire::ipc::cpg::{CpgRequestId, CpgResponseId};

use crate::ipc::decode::IpcFrame;
use crate::ipc::errno::errno_name;
use crate::ipc::summary::{Connection, CpgId};
use crate::stats::Distribution;

/// Latency samples kept per call type (beyond, the distribution covers the first ones and
/// `count` says how many there were).
const SAMPLES_MAX: usize = 100_000;
/// This many TRY_AGAIN results in a row for one call type on one connection is a storm.
const STORM_MIN: u64 = 10;
/// Storms listed in full.
const STORMS_MAX: usize = 100;
/// Multicasts remembered per connection while waiting for their own delivery.
const MCAST_WAIT_MAX: usize = 4096;

/// Per call type (request name).
#[derive(Debug, Default, Serialize)]
pub struct CallStats {
    /// Requests recorded (sent or refused by the library).
    pub calls: u64,
    /// Responses with CS_OK.
    pub ok: u64,
    /// Responses by non-OK status, and failed libqb calls by what libcpg returned.
    pub errors: BTreeMap<String, u64>,
    /// Request → response time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Distribution>,
    #[serde(skip)]
    samples: Vec<f64>,
    #[serde(skip)]
    latencies_seen: u64,
}

/// A run of TRY_AGAIN answers to one call type on one connection.
#[derive(Debug, Clone, Serialize)]
pub struct RetryStorm {
    /// Client process.
    pub pid: u32,
    /// Connection number.
    pub conn: u32,
    /// The call.
    pub call: String,
    /// TRY_AGAIN results in a row.
    pub attempts: u64,
    /// First and last frame of the run.
    pub frames: (u64, u64),
    /// From the first to the last (ms).
    pub duration_ms: f64,
}

#[derive(Debug, Clone)]
struct Run {
    attempts: u64,
    first_frame: u64,
    first_ts: f64,
    last_frame: u64,
    last_ts: f64,
}

/// Aggregates over IPC records.
#[derive(Debug, Default, Serialize)]
pub struct IpcStats {
    /// Records read.
    pub records: u64,
    /// Records by channel.
    pub channels: BTreeMap<String, u64>,
    /// Client processes seen.
    pub processes: u64,
    /// Connections accepted, by service and transport (`cpg/SOCKET`).
    pub connections: BTreeMap<String, u64>,
    /// Connections refused or failed, by reason.
    pub connect_failures: BTreeMap<String, u64>,
    /// Per request type (CPG's by name, other services' as `service/NAME`: `evs/JOIN`).
    pub calls: BTreeMap<String, CallStats>,
    /// Events by name (likewise: `evs/DELIVER_CALLBACK`).
    pub events: BTreeMap<String, u64>,
    /// TRY_AGAIN retry storms (at least 10 in a row).
    pub retry_storms: Vec<RetryStorm>,
    /// Storms beyond those listed.
    pub retry_storms_not_listed: u64,
    /// JOIN request → the CONFCHG that lists the joiner as joined (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_to_confchg_ms: Option<Distribution>,
    /// LEAVE request → the CONFCHG that lists the leaver as left (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave_to_confchg_ms: Option<Distribution>,
    /// MCAST request → its DELIVER back to the sender (same pid and payload digest) (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcast_to_deliver_ms: Option<Distribution>,
    /// evs MCAST_JOINED or MCAST_GROUPS request → the DELIVER of the same payload (digest)
    /// back on the sending connection (only a connection joined to a group it sent to gets
    /// one, EVS-OVW-25) (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evs_mcast_to_deliver_ms: Option<Distribution>,
    /// Records the recorder dropped, per pid.
    pub dropped_records: BTreeMap<u32, u32>,
    /// Decode errors by layer/kind.
    pub decode_errors: BTreeMap<String, u64>,
    #[serde(skip)]
    pids: std::collections::BTreeSet<u32>,
    #[serde(skip)]
    runs: BTreeMap<(u32, u32, String), Run>,
    #[serde(skip)]
    joins: BTreeMap<(u32, u32), f64>,
    #[serde(skip)]
    leaves: BTreeMap<(u32, u32), f64>,
    #[serde(skip)]
    mcasts: BTreeMap<(u32, u32), VecDeque<(u64, f64)>>,
    #[serde(skip)]
    join_delays: Vec<f64>,
    #[serde(skip)]
    leave_delays: Vec<f64>,
    #[serde(skip)]
    mcast_delays: Vec<f64>,
    #[serde(skip)]
    evs_mcasts: BTreeMap<(u32, u32), VecDeque<(u64, f64)>>,
    #[serde(skip)]
    evs_delays: Vec<f64>,
    #[serde(skip)]
    evs_sends: u64,
}

fn distribution(samples: &mut [f64], count: u64) -> Option<Distribution> {
    Distribution::of(samples, count)
}

fn push_sample(samples: &mut Vec<f64>, v: f64) {
    if samples.len() < SAMPLES_MAX {
        samples.push(v);
    }
}

/// Remembers a multicast's digest and time on its connection, the oldest forgotten first.
fn remember(q: &mut VecDeque<(u64, f64)>, digest: u64, ts: f64) {
    if q.len() >= MCAST_WAIT_MAX {
        q.pop_front();
    }
    q.push_back((digest, ts));
}

/// The send time of the multicast of `digest` that a delivery answers, if it was waited for.
/// Everything sent before it was delivered before it (agreed order) or is lost: forgotten.
fn delivered(q: &mut VecDeque<(u64, f64)>, digest: u64) -> Option<f64> {
    let at = q.iter().position(|(d, _)| *d == digest)?;
    let (_, t) = q.remove(at)?;
    q.drain(..at);
    Some(t)
}

fn lists_pid(list: &[totem_wire::ipc::cpg::CpgAddress], pid: u32) -> bool {
    list.iter().any(|a| a.pid == pid)
}

impl IpcStats {
    /// A fresh accumulator.
    pub fn new() -> IpcStats {
        IpcStats::default()
    }

    /// Did any record arrive?
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Adds one record.
    pub fn add(&mut self, frame: &IpcFrame) {
        self.records += 1;
        let channel = if frame.channel.is_empty() {
            "(undecoded)"
        } else {
            frame.channel
        };
        *self.channels.entry(channel.to_string()).or_default() += 1;
        if let Some(e) = &frame.error {
            *self
                .decode_errors
                .entry(format!("{}/{}", e.layer, e.kind))
                .or_default() += 1;
        }
        let (Some(pid), Some(conn)) = (frame.pid, frame.conn) else {
            return;
        };
        if frame.held {
            return;
        }
        if self.pids.insert(pid) {
            self.processes += 1;
        }
        let key = (pid, conn);
        let name = frame.name.clone().unwrap_or_default();
        // CPG's names stand alone (as they always have); another service's calls and events
        // are counted under `service/NAME`, so that evs's JOIN is not CPG's.
        let name = match frame.service.as_str() {
            "cpg" | "" => name,
            service => format!("{service}/{name}"),
        };
        match frame.channel {
            "setup" => self.add_setup(frame),
            "request" => {
                let call = self.calls.entry(name.clone()).or_default();
                call.calls += 1;
                if let Some(e) = &frame.call_error {
                    *call.errors.entry(e.cs_error.to_string()).or_default() += 1;
                    self.note_result(key, &name, frame, e.cs_error == "CS_ERR_TRY_AGAIN");
                    return;
                }
                if matches!(name.as_str(), "evs/MCAST_JOINED" | "evs/MCAST_GROUPS") {
                    self.evs_sends += 1;
                    if let Some(d) = frame.summary.digest {
                        remember(self.evs_mcasts.entry(key).or_default(), d, frame.ts);
                    }
                }
                match frame.summary.message {
                    Some(CpgId::Request(CpgRequestId::Join)) => {
                        self.joins.insert(key, frame.ts);
                    }
                    Some(CpgId::Request(CpgRequestId::Leave)) => {
                        self.leaves.insert(key, frame.ts);
                    }
                    Some(CpgId::Request(CpgRequestId::Mcast)) => {
                        // MCAST has no response: its send is its result.
                        call.ok += 1;
                        self.note_result(key, &name, frame, false);
                        if let Some(d) = frame.summary.digest {
                            remember(self.mcasts.entry(key).or_default(), d, frame.ts);
                        }
                    }
                    _ => {}
                }
            }
            "response" => {
                let call = self.calls.entry(name.clone()).or_default();
                if let Some(us) = frame.latency_us {
                    call.latencies_seen += 1;
                    push_sample(&mut call.samples, us as f64 / 1000.0);
                }
                let try_again = if let Some(e) = &frame.call_error {
                    *call.errors.entry(e.cs_error.to_string()).or_default() += 1;
                    e.cs_error == "CS_ERR_TRY_AGAIN"
                } else {
                    match frame.status.as_deref() {
                        Some("CS_OK") => {
                            call.ok += 1;
                            false
                        }
                        Some(status) => {
                            *call.errors.entry(status.to_string()).or_default() += 1;
                            status == "CS_ERR_TRY_AGAIN"
                        }
                        // zc alloc/free replies carry no status (decode notes why).
                        None => {
                            call.ok += 1;
                            false
                        }
                    }
                };
                self.note_result(key, &name, frame, try_again);
            }
            "event" => {
                *self.events.entry(name.clone()).or_default() += 1;
                let summary = &frame.summary;
                if let ("evs/DELIVER_CALLBACK", Some(d)) = (name.as_str(), summary.digest) {
                    if let Some(t) = self.evs_mcasts.get_mut(&key).and_then(|q| delivered(q, d)) {
                        push_sample(&mut self.evs_delays, (frame.ts - t) * 1000.0);
                    }
                }
                match summary.message {
                    Some(CpgId::Event(CpgResponseId::ConfchgCallback)) => {
                        if lists_pid(&summary.joined, pid) {
                            if let Some(t) = self.joins.remove(&key) {
                                push_sample(&mut self.join_delays, (frame.ts - t) * 1000.0);
                            }
                        }
                        if lists_pid(&summary.left, pid) {
                            if let Some(t) = self.leaves.remove(&key) {
                                push_sample(&mut self.leave_delays, (frame.ts - t) * 1000.0);
                            }
                        }
                    }
                    Some(CpgId::Event(CpgResponseId::DeliverCallback)) => {
                        let own = summary.pid == Some(pid);
                        if let (true, Some(d)) = (own, summary.digest) {
                            if let Some(t) = self.mcasts.get_mut(&key).and_then(|q| delivered(q, d))
                            {
                                push_sample(&mut self.mcast_delays, (frame.ts - t) * 1000.0);
                            }
                        }
                    }
                    _ => {}
                }
            }
            "disconnect" => {
                self.joins.remove(&key);
                self.leaves.remove(&key);
                self.mcasts.remove(&key);
                self.evs_mcasts.remove(&key);
                let names: Vec<_> = self
                    .runs
                    .range((pid, conn, String::new())..)
                    .take_while(|((p, c, _), _)| *p == pid && *c == conn)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in names {
                    if let Some(run) = self.runs.remove(&k) {
                        self.close_run(k, run);
                    }
                }
            }
            _ => {}
        }
        if frame.recorder_dropped > 0 {
            let dropped = self.dropped_records.entry(pid).or_default();
            *dropped = (*dropped).max(frame.recorder_dropped);
        }
    }

    fn add_setup(&mut self, frame: &IpcFrame) {
        let connection = frame
            .summary
            .connection
            .filter(|_| frame.direction == "to_client");
        if let Some(connection) = connection {
            match connection {
                Connection::Accepted(kind) => {
                    *self
                        .connections
                        .entry(format!("{}/{kind}", frame.service))
                        .or_default() += 1;
                }
                Connection::Refused(errno) => {
                    *self
                        .connect_failures
                        .entry(format!("{}: refused {}", frame.service, errno_name(errno)))
                        .or_default() += 1;
                }
            }
        } else if let Some(e) = &frame.call_error {
            *self
                .connect_failures
                .entry(format!("{}: {} ({})", frame.service, e.errno, e.cs_error))
                .or_default() += 1;
        }
    }

    /// Extends or ends the TRY_AGAIN run of `name` on a connection.
    fn note_result(&mut self, key: (u32, u32), name: &str, frame: &IpcFrame, try_again: bool) {
        let run_key = (key.0, key.1, name.to_string());
        if try_again {
            let run = self.runs.entry(run_key).or_insert(Run {
                attempts: 0,
                first_frame: frame.frame,
                first_ts: frame.ts,
                last_frame: frame.frame,
                last_ts: frame.ts,
            });
            run.attempts += 1;
            run.last_frame = frame.frame;
            run.last_ts = frame.ts;
        } else if let Some(run) = self.runs.remove(&run_key) {
            self.close_run(run_key, run);
        }
    }

    fn close_run(&mut self, (pid, conn, call): (u32, u32, String), run: Run) {
        if run.attempts < STORM_MIN {
            return;
        }
        if self.retry_storms.len() >= STORMS_MAX {
            self.retry_storms_not_listed += 1;
            return;
        }
        self.retry_storms.push(RetryStorm {
            pid,
            conn,
            call,
            attempts: run.attempts,
            frames: (run.first_frame, run.last_frame),
            duration_ms: (run.last_ts - run.first_ts) * 1000.0,
        });
    }

    /// Computes the derived figures once every record has been read.
    pub fn finish(&mut self) {
        let runs = std::mem::take(&mut self.runs);
        for (k, run) in runs {
            self.close_run(k, run);
        }
        self.retry_storms.sort_by_key(|s| s.frames.0);
        for call in self.calls.values_mut() {
            let seen = call.latencies_seen;
            call.latency_ms = distribution(&mut call.samples, seen);
        }
        let n = self.join_delays.len() as u64;
        self.join_to_confchg_ms = distribution(&mut self.join_delays, n);
        let n = self.leave_delays.len() as u64;
        self.leave_to_confchg_ms = distribution(&mut self.leave_delays, n);
        let n = self.mcast_delays.len() as u64;
        self.mcast_to_deliver_ms = distribution(&mut self.mcast_delays, n);
        let n = self.evs_delays.len() as u64;
        self.evs_mcast_to_deliver_ms = distribution(&mut self.evs_delays, n);
    }

    /// Writes the report for people.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "IPC records: {}", self.records)?;
        for (channel, n) in &self.channels {
            writeln!(out, "  {channel}: {n}")?;
        }
        writeln!(out, "Client processes: {}", self.processes)?;
        writeln!(out, "\nConnections:")?;
        if self.connections.is_empty() && self.connect_failures.is_empty() {
            writeln!(out, "  (none recorded)")?;
        }
        for (kind, n) in &self.connections {
            writeln!(out, "  {kind}: {n}")?;
        }
        for (why, n) in &self.connect_failures {
            writeln!(out, "  failed, {why}: {n}")?;
        }
        let dist = |d: &Option<Distribution>| {
            d.as_ref().map_or("-".to_string(), |d| {
                format!(
                    "n={} min {:.3} p50 {:.3} p99 {:.3} max {:.3} ms",
                    d.count, d.min, d.p50, d.p99, d.max
                )
            })
        };
        writeln!(out, "\nCalls:")?;
        for (name, c) in &self.calls {
            writeln!(
                out,
                "  {name:<20} {:>6} calls, {:>6} ok; latency {}",
                c.calls,
                c.ok,
                dist(&c.latency_ms)
            )?;
            for (error, n) in &c.errors {
                writeln!(out, "      {error}: {n}")?;
            }
        }
        writeln!(out, "\nEvents:")?;
        if self.events.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for (name, n) in &self.events {
            writeln!(out, "  {name:<26} {n}")?;
        }
        writeln!(out, "\nEvent delays:")?;
        writeln!(
            out,
            "  JOIN -> own CONFCHG:  {}",
            dist(&self.join_to_confchg_ms)
        )?;
        writeln!(
            out,
            "  LEAVE -> own CONFCHG: {}",
            dist(&self.leave_to_confchg_ms)
        )?;
        writeln!(
            out,
            "  MCAST -> own DELIVER: {}",
            dist(&self.mcast_to_deliver_ms)
        )?;
        if self.evs_sends > 0 {
            writeln!(
                out,
                "  evs MCAST_JOINED/MCAST_GROUPS -> DELIVER on the sender: {}",
                dist(&self.evs_mcast_to_deliver_ms)
            )?;
        }
        writeln!(out, "\nTRY_AGAIN retry storms (>= {STORM_MIN} in a row):")?;
        if self.retry_storms.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for s in &self.retry_storms {
            writeln!(
                out,
                "  pid {} conn {} {}: {} attempts, frames {}-{}, {:.1} ms",
                s.pid, s.conn, s.call, s.attempts, s.frames.0, s.frames.1, s.duration_ms
            )?;
        }
        if self.retry_storms_not_listed > 0 {
            writeln!(out, "  ... and {} more", self.retry_storms_not_listed)?;
        }
        if !self.dropped_records.is_empty() {
            writeln!(out, "\nRecords dropped by the recorder:")?;
            for (pid, n) in &self.dropped_records {
                writeln!(out, "  pid {pid}: {n}")?;
            }
        }
        if !self.decode_errors.is_empty() {
            writeln!(out, "\nDecode errors:")?;
            for (what, n) in &self.decode_errors {
                writeln!(out, "  {what}: {n}")?;
            }
        }
        Ok(())
    }
}

/// Writes the stats of a run that read IPC recordings: the IPC report alone, or after the
/// Totem one when Totem captures were read too (JSON: `{"totem": ..., "ipc": ...}`).
pub fn write(
    json: bool,
    totem: Option<&crate::stats::Stats>,
    ipc: &mut IpcStats,
    out: &mut dyn Write,
) -> io::Result<()> {
    ipc.finish();
    if json {
        match totem {
            Some(totem) => serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({ "totem": totem, "ipc": ipc }),
            )?,
            None => serde_json::to_writer_pretty(&mut *out, ipc)?,
        }
        out.write_all(b"\n")
    } else {
        if let Some(totem) = totem {
            totem.write_text(out)?;
            writeln!(out)?;
        }
        ipc.write_text(out)
    }
}
