//! `totem-inspect stats`: what a capture says about the ring. Fed one frame at a time; keeps
//! only aggregates (and bounded per-ring samples), so memory does not grow with the file.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use totem_wire::exec::evs::EvsGroup;

use crate::evs::key_text;
use crate::model::{FrameRecord, MessageKind, RingRecord, TotemBody};

/// Token rotation samples kept per ring; beyond this, a reservoir keeps a fair sample.
const ROTATION_SAMPLES_MAX: usize = 100_000;
/// A seq listed in this many retransmit lists is reported as an anomaly.
const RTR_REPEAT_THRESHOLD: u64 = 10;
/// Anomalies listed in full; the rest are counted.
const ANOMALIES_MAX: usize = 1000;

/// Stats options.
#[derive(Debug, Clone, Copy)]
pub struct StatsOptions {
    /// corosync's token timeout for this cluster (ms).
    pub token_ms: u64,
}

/// How one ring formed, as seen on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct RingFormation {
    /// The ring.
    pub ring_id: RingRecord,
    /// Its representative.
    pub representative: u32,
    /// Members, from the commit token; `None` when no commit token of this ring was captured
    /// (a singleton ring's commit token never leaves its node).
    pub members: Option<Vec<u32>>,
    /// Frame where the ring was first seen.
    pub first_frame: u64,
    /// Capture time (s since the epoch) the ring was first seen.
    pub first_seen: f64,
    /// From the first JOIN of this membership round to the first commit token (ms).
    pub gather_ms: Option<f64>,
    /// From the first commit token to the start of its second rotation (ms).
    pub commit_ms: Option<f64>,
    /// From the second rotation to the first new message on the ring (ms).
    pub recovery_ms: Option<f64>,
    /// Rotation times of the token on this ring.
    pub token_rotation_ms: Option<Distribution>,
    #[serde(skip)]
    recovery_start: Option<f64>,
    #[serde(skip)]
    operational: bool,
    #[serde(skip)]
    rotations: Vec<f64>,
    #[serde(skip)]
    rotations_seen: u64,
    #[serde(skip)]
    last_rep_token: Option<(u32, f64)>,
}

/// min/p50/p99/max of a set of durations.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Samples.
    pub count: u64,
    /// Minimum (ms).
    pub min: f64,
    /// Median (ms).
    pub p50: f64,
    /// 99th percentile (ms).
    pub p99: f64,
    /// Maximum (ms).
    pub max: f64,
}

impl Distribution {
    /// min/p50/p99/max of `samples` (sorted in place); `count` is how many were seen when
    /// only a sample was kept.
    pub(crate) fn of(samples: &mut [f64], count: u64) -> Option<Distribution> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Distribution {
            count,
            min: samples[0],
            p50: at(0.5),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// Traffic of one service.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Traffic {
    /// Messages.
    pub messages: u64,
    /// Bytes (whole totempg messages, group prefix included).
    pub bytes: u64,
}

/// Traffic and membership of one CPG group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupStats {
    /// MCAST and PARTIAL_MCAST messages.
    pub messages: u64,
    /// User bytes carried.
    pub bytes: u64,
    /// PROCJOINs.
    pub joins: u64,
    /// PROCLEAVEs by reason (LEAVE, PROCDOWN).
    pub leaves: BTreeMap<String, u64>,
}

/// EVS traffic of one group key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvsGroupStats {
    /// MCASTs that listed this key (once per message, however often it is listed).
    pub messages: u64,
    /// Their user bytes.
    pub bytes: u64,
    /// The same, per sending node.
    pub senders: BTreeMap<u32, Traffic>,
}

/// Something that looks wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// `token_gap`, `rtr_repeat`, `join_storm`, `decode_error`.
    pub kind: &'static str,
    /// Frame where it was noticed.
    pub frame: u64,
    /// A sentence.
    pub detail: String,
}

/// Everything `stats` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Frames read.
    pub frames: u64,
    /// Frames per transport.
    pub transports: BTreeMap<&'static str, u64>,
    /// Totem messages per type.
    pub totem_types: BTreeMap<String, u64>,
    /// Frames that failed to decode, per layer.
    pub errors: BTreeMap<&'static str, u64>,
    /// Rings in order of formation.
    pub rings: Vec<RingFormation>,
    /// Retransmit-list entries per node that forwarded them.
    pub retransmit_requests: BTreeMap<u32, u64>,
    /// The most requested (ring, seq), most first.
    pub most_retransmitted: Vec<RetransmittedSeq>,
    /// Messages per service.
    pub services: BTreeMap<String, Traffic>,
    /// Per CPG group.
    pub cpg_groups: BTreeMap<String, GroupStats>,
    /// Per EVS group key (as the views print it): a message to several groups counts in
    /// each of them.
    pub evs_groups: BTreeMap<String, EvsGroupStats>,
    /// Every EVS MCAST once, whatever the number of its groups: messages and user bytes.
    pub evs_total: Traffic,
    /// Anomalies, in capture order.
    pub anomalies: Vec<Anomaly>,
    /// Anomalies beyond the listed ones.
    pub anomalies_not_listed: u64,
    #[serde(skip)]
    rtr_counts: BTreeMap<(RingRecord, u32), u64>,
    #[serde(skip)]
    gather_start: Option<(u64, f64)>,
    #[serde(skip)]
    joins_in_gather: u64,
    #[serde(skip)]
    storm_reported: bool,
    #[serde(skip)]
    last_token: Option<(u64, f64)>,
    #[serde(skip)]
    rng_state: u64,
}

/// A sequence number that was asked for again and again.
#[derive(Debug, Clone, Serialize)]
pub struct RetransmittedSeq {
    /// Ring.
    pub ring_id: RingRecord,
    /// Seq.
    pub seq: u32,
    /// Tokens that listed it.
    pub requests: u64,
}

impl Stats {
    /// Accounts one frame.
    pub fn add(&mut self, frame: &FrameRecord, options: StatsOptions) {
        self.frames += 1;
        *self.transports.entry(frame.transport).or_default() += 1;
        if let Some(e) = &frame.error {
            *self.errors.entry(e.layer).or_default() += 1;
            self.anomaly(
                "decode_error",
                frame.frame,
                format!("{} at offset {}: {}", e.layer, e.offset, e.reason),
            );
        }
        if let Some(t) = &frame.totem {
            if let Some(n) = self.totem_types.get_mut(t.message_type.as_ref()) {
                *n += 1;
            } else {
                self.totem_types.insert(t.message_type.to_string(), 1);
            }
            self.add_totem(frame, options);
        }
        for m in &frame.messages {
            let traffic = self.services.entry(m.service.to_string()).or_default();
            traffic.messages += 1;
            traffic.bytes += m.len as u64;
            if let Some(group) = &m.cpg_group {
                let g = self.cpg_groups.entry(group.to_string()).or_default();
                match &m.kind {
                    MessageKind::CpgMcast { .. } | MessageKind::CpgPartialMcast { .. } => {
                        g.messages += 1;
                        g.bytes += u64::from(m.kind.cpg_user_bytes().unwrap_or(0));
                    }
                    MessageKind::CpgProcJoin { .. } => g.joins += 1,
                    MessageKind::CpgProcLeave { reason, .. } => {
                        *g.leaves.entry(reason.to_string()).or_default() += 1;
                    }
                    MessageKind::CpgJoinList { .. }
                    | MessageKind::EvsMcast { .. }
                    | MessageKind::Other => {}
                }
            }
            if let MessageKind::EvsMcast { groups, msg_len } = &m.kind {
                self.add_evs(m.sender, groups, *msg_len);
            }
            // The first new message on a ring that finished recovery: it is operational.
            if let Some(TotemBody::Mcast {
                ring_id,
                encapsulated: false,
                ..
            }) = frame.totem.as_ref().map(|t| &t.body)
            {
                if let Some(ring) = self.rings.iter_mut().rev().find(|r| r.ring_id == *ring_id) {
                    if !ring.operational {
                        ring.operational = true;
                        if let Some(start) = ring.recovery_start {
                            ring.recovery_ms = Some((frame.ts - start) * 1000.0);
                        }
                    }
                }
            }
        }
    }

    /// One EVS MCAST of `sender`: once in the total, once in each distinct group it lists.
    fn add_evs(&mut self, sender: u32, groups: &[EvsGroup], msg_len: u64) {
        self.evs_total.messages += 1;
        self.evs_total.bytes += msg_len;
        for (i, key) in groups.iter().enumerate() {
            // The sender's joined list may hold a key twice (EVS-JOIN-5): still one message.
            if groups[..i].contains(key) {
                continue;
            }
            let g = self.evs_groups.entry(key_text(key)).or_default();
            g.messages += 1;
            g.bytes += msg_len;
            let from = g.senders.entry(sender).or_default();
            from.messages += 1;
            from.bytes += msg_len;
        }
    }

    fn add_totem(&mut self, frame: &FrameRecord, options: StatsOptions) {
        let Some(t) = &frame.totem else { return };
        match &t.body {
            TotemBody::OrfToken { ring_id, .. }
            | TotemBody::MergeDetect { ring_id, .. }
            | TotemBody::Mcast {
                ring_id,
                encapsulated: false,
                ..
            } => {
                self.ring_index(*ring_id, frame);
            }
            _ => {}
        }
        match &t.body {
            TotemBody::Join { .. } => {
                match self.gather_start {
                    None => {
                        self.gather_start = Some((frame.frame, frame.ts));
                        self.joins_in_gather = 1;
                        self.storm_reported = false;
                    }
                    Some((start_frame, start)) => {
                        self.joins_in_gather += 1;
                        // corosync re-sends JOIN every `join` ms while gathering; a gather
                        // that outlasts two token timeouts without a commit is a storm.
                        if !self.storm_reported
                            && (frame.ts - start) * 1000.0 > 2.0 * options.token_ms as f64
                        {
                            self.storm_reported = true;
                            self.anomaly(
                                "join_storm",
                                start_frame,
                                format!(
                                    "JOINs for more than {} ms without a commit token ({} so far)",
                                    2 * options.token_ms,
                                    self.joins_in_gather
                                ),
                            );
                        }
                    }
                }
            }
            TotemBody::CommitToken {
                ring_id,
                memb_index,
                addr,
                ..
            } => {
                let index = self.ring_index(*ring_id, frame);
                let ring = &mut self.rings[index];
                if ring.members.is_none() {
                    ring.members = Some(addr.clone());
                }
                if *memb_index as usize == addr.len() && ring.recovery_start.is_none() {
                    ring.recovery_start = Some(frame.ts);
                    ring.commit_ms = Some((frame.ts - ring.first_seen) * 1000.0);
                }
            }
            TotemBody::OrfToken {
                ring_id,
                token_seq,
                rtr,
                ..
            } => {
                if let Some((last_frame, last)) = self.last_token {
                    let gap_ms = (frame.ts - last) * 1000.0;
                    if gap_ms > options.token_ms as f64 {
                        self.anomaly(
                            "token_gap",
                            frame.frame,
                            format!(
                                "no token for {gap_ms:.0} ms since frame {last_frame} (token timeout {} ms: corosync logs \"Token has not been received\")",
                                options.token_ms
                            ),
                        );
                    }
                }
                self.last_token = Some((frame.frame, frame.ts));
                *self.retransmit_requests.entry(t.nodeid).or_default() += rtr.len() as u64;
                for r in rtr {
                    let count = self.rtr_counts.entry((r.ring_id, r.seq)).or_default();
                    *count += 1;
                    if *count == RTR_REPEAT_THRESHOLD {
                        self.anomaly(
                            "rtr_repeat",
                            frame.frame,
                            format!(
                                "seq {} of ring {} requested {RTR_REPEAT_THRESHOLD} times",
                                r.seq, r.ring_id
                            ),
                        );
                    }
                }
                self.rotation(frame, *ring_id, t.nodeid, *token_seq);
            }
            _ => {}
        }
    }

    /// The ring's entry, created when the ring is first seen. Seeing a new ring ends the
    /// gather that led to it.
    fn ring_index(&mut self, ring_id: RingRecord, frame: &FrameRecord) -> usize {
        if let Some(i) = self.rings.iter().rposition(|r| r.ring_id == ring_id) {
            return i;
        }
        let gather_ms = self.gather_start.map(|(_, s)| (frame.ts - s) * 1000.0);
        self.gather_start = None;
        self.rings.push(RingFormation {
            ring_id,
            representative: ring_id.rep,
            members: None,
            first_frame: frame.frame,
            first_seen: frame.ts,
            gather_ms,
            commit_ms: None,
            recovery_ms: None,
            token_rotation_ms: None,
            recovery_start: None,
            operational: false,
            rotations: Vec::new(),
            rotations_seen: 0,
            last_rep_token: None,
        });
        self.rings.len() - 1
    }

    fn rotation(&mut self, frame: &FrameRecord, ring_id: RingRecord, sender: u32, token_seq: u32) {
        let Some(ring) = self.rings.iter_mut().rev().find(|r| r.ring_id == ring_id) else {
            return;
        };
        if sender != ring.representative {
            return;
        }
        if let Some((last_seq, last_ts)) = ring.last_rep_token {
            if token_seq == last_seq {
                return; // a retransmitted token, not a new rotation
            }
            let sample = (frame.ts - last_ts) * 1000.0;
            ring.rotations_seen += 1;
            if ring.rotations.len() < ROTATION_SAMPLES_MAX {
                ring.rotations.push(sample);
            } else {
                // Reservoir sampling with a fixed xorshift: deterministic output per file.
                self.rng_state ^= self.rng_state << 13;
                self.rng_state ^= self.rng_state >> 7;
                self.rng_state ^= self.rng_state << 17;
                let slot = (self.rng_state % ring.rotations_seen) as usize;
                if slot < ROTATION_SAMPLES_MAX {
                    ring.rotations[slot] = sample;
                }
            }
        }
        ring.last_rep_token = Some((token_seq, frame.ts));
    }

    fn anomaly(&mut self, kind: &'static str, frame: u64, detail: String) {
        if self.anomalies.len() < ANOMALIES_MAX {
            self.anomalies.push(Anomaly {
                kind,
                frame,
                detail,
            });
        } else {
            self.anomalies_not_listed += 1;
        }
    }

    /// Computes the derived figures once the capture has been read.
    pub fn finish(&mut self) {
        self.rng_state = self.rng_state.max(1);
        for ring in &mut self.rings {
            let seen = ring.rotations_seen;
            ring.token_rotation_ms = Distribution::of(&mut ring.rotations, seen);
        }
        let mut most: Vec<_> = self
            .rtr_counts
            .iter()
            .map(|((ring_id, seq), requests)| RetransmittedSeq {
                ring_id: *ring_id,
                seq: *seq,
                requests: *requests,
            })
            .collect();
        most.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.seq.cmp(&b.seq)));
        most.truncate(10);
        self.most_retransmitted = most;
    }

    /// A fresh accumulator.
    pub fn new() -> Stats {
        Stats {
            rng_state: 0x9E37_79B9_7F4A_7C15,
            ..Stats::default()
        }
    }

    /// Writes the report for people.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Frames: {}", self.frames)?;
        for (t, n) in &self.transports {
            writeln!(out, "  {t}: {n}")?;
        }
        writeln!(out, "\nTotem messages:")?;
        for (t, n) in &self.totem_types {
            writeln!(out, "  {t:<20} {n}")?;
        }
        if !self.errors.is_empty() {
            writeln!(out, "\nDecode errors:")?;
            for (layer, n) in &self.errors {
                writeln!(out, "  {layer}: {n}")?;
            }
        }
        writeln!(out, "\nMembership timeline:")?;
        if self.rings.is_empty() {
            writeln!(out, "  (no ring formed in this capture)")?;
        }
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
        for r in &self.rings {
            let members = r
                .members
                .as_ref()
                .map_or("unknown (no commit token captured)".to_string(), |m| {
                    format!("{m:?}")
                });
            writeln!(
                out,
                "  ring {} (frame {}): rep {}, members {members}; gather {}, commit {}, recovery {}",
                r.ring_id,
                r.first_frame,
                r.representative,
                ms(r.gather_ms),
                ms(r.commit_ms),
                ms(r.recovery_ms)
            )?;
            if let Some(d) = &r.token_rotation_ms {
                writeln!(
                    out,
                    "    token rotation: n={} min {:.3} p50 {:.3} p99 {:.3} max {:.3} ms",
                    d.count, d.min, d.p50, d.p99, d.max
                )?;
            }
        }
        writeln!(out, "\nRetransmit requests (rtr entries in tokens sent):")?;
        for (node, n) in &self.retransmit_requests {
            writeln!(out, "  node {node}: {n}")?;
        }
        if !self.most_retransmitted.is_empty() {
            writeln!(out, "  most requested:")?;
            for r in &self.most_retransmitted {
                writeln!(
                    out,
                    "    ring {} seq {}: {} requests",
                    r.ring_id, r.seq, r.requests
                )?;
            }
        }
        writeln!(out, "\nServices:")?;
        for (s, t) in &self.services {
            writeln!(
                out,
                "  {s:<12} {:>8} messages {:>12} bytes",
                t.messages, t.bytes
            )?;
        }
        writeln!(out, "\nCPG groups:")?;
        if self.cpg_groups.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for (g, s) in &self.cpg_groups {
            let leaves: Vec<String> = s.leaves.iter().map(|(r, n)| format!("{r}={n}")).collect();
            writeln!(
                out,
                "  {g:?}: {} messages, {} bytes, {} joins, leaves [{}]",
                s.messages,
                s.bytes,
                s.joins,
                leaves.join(" ")
            )?;
        }
        if self.evs_total.messages > 0 {
            writeln!(
                out,
                "\nEVS groups (user bytes; a message to several groups counts in each):"
            )?;
            for (g, s) in &self.evs_groups {
                let senders: Vec<String> = s
                    .senders
                    .iter()
                    .map(|(node, t)| {
                        format!("node {node}: {} messages, {} bytes", t.messages, t.bytes)
                    })
                    .collect();
                writeln!(
                    out,
                    "  {g}: {} messages, {} bytes ({})",
                    s.messages,
                    s.bytes,
                    senders.join("; ")
                )?;
            }
            writeln!(
                out,
                "  total, each message once: {} messages, {} bytes",
                self.evs_total.messages, self.evs_total.bytes
            )?;
        }
        writeln!(out, "\nAnomalies:")?;
        if self.anomalies.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for a in &self.anomalies {
            writeln!(out, "  frame {}: {}: {}", a.frame, a.kind, a.detail)?;
        }
        if self.anomalies_not_listed > 0 {
            writeln!(out, "  ... and {} more", self.anomalies_not_listed)?;
        }
        Ok(())
    }
}
