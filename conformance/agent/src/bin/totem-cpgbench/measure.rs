//! What one ladder step measures, independent of libcpg: the payload header, the counters
//! the deliver callback updates, and the record printed per size.
//!
//! Times are nanoseconds on the process's monotonic clock (`now_ns`): the benchmark only
//! measures its own messages, so sender and receiver share the clock.

use std::sync::OnceLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Payload header: `"TCB1" u32 step u64 seq u64 sent_ns`, little endian.
pub(crate) const MAGIC: &[u8; 4] = b"TCB1";
pub(crate) const HEADER_LEN: usize = 24;

/// Nanoseconds since the first call in this process (monotonic).
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Writes the header into the first [`HEADER_LEN`] bytes of `buf`.
pub(crate) fn stamp(buf: &mut [u8], step: u32, seq: u64, sent_ns: u64) {
    buf[..4].copy_from_slice(MAGIC);
    buf[4..8].copy_from_slice(&step.to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..24].copy_from_slice(&sent_ns.to_le_bytes());
}

/// `(step, seq, sent_ns)` of a benchmark payload.
pub(crate) fn parse(msg: &[u8]) -> Option<(u32, u64, u64)> {
    if msg.len() < HEADER_LEN || &msg[..4] != MAGIC {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(msg[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(msg[i..i + 8].try_into().unwrap_or_default());
    Some((u32_at(4), u64_at(8), u64_at(16)))
}

/// The counters of the step in progress. Deliveries are counted into the throughput when
/// they arrive inside `[window_start, window_end)`; a latency sample is taken for every
/// own message *sent* inside the window, whenever it is delivered (drain included).
#[derive(Debug, Default)]
pub(crate) struct Step {
    pub(crate) id: u32,
    pub(crate) window_start: u64,
    pub(crate) window_end: u64,
    /// Own messages of this step delivered so far, any time.
    pub(crate) own_delivered: u64,
    /// Own messages delivered inside the window.
    pub(crate) own_in_window: u64,
    /// Messages of other senders delivered inside the window (load mode).
    pub(crate) others_in_window: u64,
    /// Send-to-self-delivery latencies of own messages sent inside the window, ns.
    pub(crate) latencies: Vec<u64>,
    /// Own messages whose bytes were not what was sent (wrong length).
    pub(crate) bad: u64,
}

impl Step {
    pub(crate) fn new(id: u32, window_start: u64, window_end: u64) -> Self {
        Self {
            id,
            window_start,
            window_end,
            ..Self::default()
        }
    }

    fn in_window(&self, t: u64) -> bool {
        t >= self.window_start && t < self.window_end
    }

    /// One delivery at `now`: `own` when this process sent it.
    pub(crate) fn deliver(&mut self, own: bool, msg: &[u8], expected_len: usize, now: u64) {
        if !own {
            if self.in_window(now) {
                self.others_in_window += 1;
            }
            return;
        }
        let Some((step, _seq, sent)) = parse(msg) else {
            self.bad += 1;
            return;
        };
        if step != self.id {
            // A straggler of an earlier step (its drain timed out).
            return;
        }
        if msg.len() != expected_len {
            self.bad += 1;
        }
        self.own_delivered += 1;
        if self.in_window(now) {
            self.own_in_window += 1;
        }
        if self.in_window(sent) {
            self.latencies.push(now.saturating_sub(sent));
        }
    }
}

/// Nearest-rank percentile of sorted samples; 0 when there are none.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of output per message size (`"event": "size"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SizeRecord {
    pub(crate) event: String,
    pub(crate) label: String,
    pub(crate) size: usize,
    pub(crate) guarantee: String,
    pub(crate) duration_s: f64,
    /// Own messages accepted by cpg_mcast_joined inside the window.
    pub(crate) sent: u64,
    /// Own messages delivered inside the window.
    pub(crate) delivered: u64,
    /// `delivered / duration_s`.
    pub(crate) msgs_per_s: f64,
    /// `msgs_per_s * size / 10^6`.
    pub(crate) mb_per_s: f64,
    pub(crate) lat_p50_us: f64,
    pub(crate) lat_p99_us: f64,
    pub(crate) lat_max_us: f64,
    pub(crate) lat_samples: u64,
    /// CS_ERR_TRY_AGAIN answers during the step (warm-up included).
    pub(crate) try_again: u64,
    /// Own messages of the step never delivered before the drain timeout.
    pub(crate) undelivered: u64,
    /// Own deliveries with a wrong length or header.
    pub(crate) bad: u64,
    /// Other senders' messages delivered per second inside the window (load mode).
    pub(crate) others_per_s: f64,
    /// CPU seconds this client used for the step (both threads, warm-up and drain
    /// included).
    #[serde(default)]
    pub(crate) client_cpu_s: f64,
    /// The `--outstanding` limit (0: flood).
    #[serde(default)]
    pub(crate) outstanding: u64,
    pub(crate) dry_run: bool,
}

/// What the sender counted for a step.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendCounts {
    /// Messages accepted over the whole step (warm-up included).
    pub(crate) total: u64,
    /// Messages accepted inside the window.
    pub(crate) in_window: u64,
    pub(crate) try_again: u64,
}

pub(crate) struct RecordMeta<'a> {
    pub(crate) label: &'a str,
    pub(crate) size: usize,
    pub(crate) guarantee: &'a str,
    pub(crate) duration_s: f64,
    pub(crate) outstanding: u64,
    pub(crate) dry_run: bool,
}

impl SizeRecord {
    pub(crate) fn new(meta: &RecordMeta<'_>, step: &mut Step, sent: SendCounts) -> Self {
        step.latencies.sort_unstable();
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        let rate = |n: u64| {
            if meta.duration_s > 0.0 {
                n as f64 / meta.duration_s
            } else {
                0.0
            }
        };
        let msgs_per_s = rate(step.own_in_window);
        Self {
            event: "size".into(),
            label: meta.label.to_owned(),
            size: meta.size,
            guarantee: meta.guarantee.to_owned(),
            duration_s: meta.duration_s,
            sent: sent.in_window,
            delivered: step.own_in_window,
            msgs_per_s: round2(msgs_per_s),
            mb_per_s: round2(msgs_per_s * meta.size as f64 / 1e6),
            lat_p50_us: us(percentile(&step.latencies, 50.0)),
            lat_p99_us: us(percentile(&step.latencies, 99.0)),
            lat_max_us: us(step.latencies.last().copied().unwrap_or(0)),
            lat_samples: step.latencies.len() as u64,
            try_again: sent.try_again,
            undelivered: sent.total.saturating_sub(step.own_delivered),
            bad: step.bad,
            others_per_s: round2(rate(step.others_in_window)),
            client_cpu_s: 0.0,
            outstanding: meta.outstanding,
            dry_run: meta.dry_run,
        }
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut b = vec![0u8; 64];
        stamp(&mut b, 3, 77, 123_456);
        assert_eq!(parse(&b), Some((3, 77, 123_456)));
        assert_eq!(parse(&b[..23]), None);
        b[0] = b'X';
        assert_eq!(parse(&b), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn step_counts_window_and_latency() {
        let mut s = Step::new(2, 1_000, 2_000);
        let msg = |step: u32, sent: u64| {
            let mut b = vec![0u8; 32];
            stamp(&mut b, step, 0, sent);
            b
        };
        // sent in warm-up, delivered in window: throughput yes, latency no
        s.deliver(true, &msg(2, 900), 32, 1_100);
        // sent and delivered in window
        s.deliver(true, &msg(2, 1_200), 32, 1_500);
        // sent in window, delivered during the drain: latency only
        s.deliver(true, &msg(2, 1_900), 32, 2_300);
        // earlier step's straggler: ignored
        s.deliver(true, &msg(1, 1_300), 32, 1_400);
        // someone else's message in the window
        s.deliver(false, &msg(9, 0), 32, 1_600);
        // wrong length
        s.deliver(true, &msg(2, 1_300), 40, 1_700);
        assert_eq!(s.own_delivered, 4);
        assert_eq!(s.own_in_window, 3);
        assert_eq!(s.others_in_window, 1);
        assert_eq!(s.bad, 1);
        let meta = RecordMeta {
            label: "x",
            size: 32,
            guarantee: "agreed",
            duration_s: 1e-6,
            outstanding: 0,
            dry_run: false,
        };
        let sent = SendCounts {
            total: 5,
            in_window: 4,
            try_again: 2,
        };
        let r = SizeRecord::new(&meta, &mut s, sent);
        assert_eq!(r.delivered, 3);
        assert_eq!(r.lat_samples, 3);
        assert_eq!(r.undelivered, 1);
        assert_eq!(r.msgs_per_s, 3e6);
        assert_eq!(r.mb_per_s, 96.0);
    }
}
