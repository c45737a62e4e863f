//! `totem-cpgbench compare`: two ladders (a baseline and a candidate, e.g. corosync and
//! totemd) side by side, with the ratios the target is stated in.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::measure::{round2, SizeRecord};

/// One side of the comparison: its records by size, or why there are none.
pub(crate) struct Ladder {
    pub(crate) label: String,
    pub(crate) sizes: BTreeMap<usize, SizeRecord>,
    pub(crate) errors: Vec<String>,
    /// How many runs each size's record is the median of.
    pub(crate) runs: BTreeMap<usize, usize>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Ladder {
    /// Several runs of the same ladder (rounds): per size, the median of msgs/s, MB/s, p50
    /// and p99 over the runs that have the size (each metric on its own); the counts are
    /// those of the run with the median msgs/s. Errors of every run are kept.
    pub(crate) fn read_many(label: &str, paths: &[std::path::PathBuf]) -> Self {
        let ladders: Vec<Self> = paths.iter().map(|p| Self::read(label, p)).collect();
        let mut out = Self {
            label: label.to_owned(),
            sizes: BTreeMap::new(),
            errors: ladders.iter().flat_map(|l| l.errors.clone()).collect(),
            runs: BTreeMap::new(),
        };
        let sizes: std::collections::BTreeSet<usize> = ladders
            .iter()
            .flat_map(|l| l.sizes.keys().copied())
            .collect();
        for s in sizes {
            let mut recs: Vec<&SizeRecord> =
                ladders.iter().filter_map(|l| l.sizes.get(&s)).collect();
            recs.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
            let m = |f: fn(&SizeRecord) -> f64| median(recs.iter().map(|r| f(r)).collect());
            let mut r = recs[(recs.len() - 1) / 2].clone();
            r.msgs_per_s = round2(m(|r| r.msgs_per_s));
            r.mb_per_s = round2(m(|r| r.mb_per_s));
            r.lat_p50_us = round2(m(|r| r.lat_p50_us));
            r.lat_p99_us = round2(m(|r| r.lat_p99_us));
            out.runs.insert(s, recs.len());
            out.sizes.insert(s, r);
        }
        out
    }

    /// Reads a JSON-lines file written by `totem-cpgbench run`. A missing file, an
    /// `error` line or an unreadable line is kept as an error of the ladder, not a failure:
    /// the comparison still prints what there is.
    pub(crate) fn read(label: &str, path: &Path) -> Self {
        let mut l = Self {
            label: label.to_owned(),
            sizes: BTreeMap::new(),
            errors: Vec::new(),
            runs: BTreeMap::new(),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                l.errors.push(format!("{}: {e}", path.display()));
                return l;
            }
        };
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    l.errors
                        .push(format!("{}:{}: not JSON: {e}", path.display(), i + 1));
                    continue;
                }
            };
            match v["event"].as_str() {
                Some("size") => match serde_json::from_value::<SizeRecord>(v) {
                    Ok(r) => {
                        l.sizes.insert(r.size, r);
                    }
                    Err(e) => l.errors.push(format!(
                        "{}:{}: bad size record: {e}",
                        path.display(),
                        i + 1
                    )),
                },
                Some("error") => l
                    .errors
                    .push(v["error"].as_str().unwrap_or("unknown error").to_owned()),
                _ => {}
            }
        }
        if l.sizes.is_empty() && l.errors.is_empty() {
            l.errors
                .push(format!("{}: no size records", path.display()));
        }
        l
    }
}

/// The benchmark's targets: candidate msgs/s at least this multiple of the baseline's...
pub(crate) const TARGET_MSGS_RATIO: f64 = 1.2;
/// ...and candidate p99 latency at most this multiple of the baseline's.
pub(crate) const TARGET_P99_RATIO: f64 = 1.0;

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b * 1000.0).round() / 1000.0)
}

/// The per-size ratios, candidate over baseline.
pub(crate) fn ratios(base: &Ladder, cand: &Ladder) -> Vec<Value> {
    let sizes: std::collections::BTreeSet<usize> = base
        .sizes
        .keys()
        .chain(cand.sizes.keys())
        .copied()
        .collect();
    sizes
        .into_iter()
        .map(|s| {
            let (b, c) = (base.sizes.get(&s), cand.sizes.get(&s));
            let msgs = b
                .zip(c)
                .and_then(|(b, c)| ratio(c.msgs_per_s, b.msgs_per_s));
            let p99 = b
                .zip(c)
                .and_then(|(b, c)| ratio(c.lat_p99_us, b.lat_p99_us));
            let met = match (msgs, p99) {
                (Some(m), Some(p)) => json!(m >= TARGET_MSGS_RATIO && p <= TARGET_P99_RATIO),
                _ => Value::Null,
            };
            json!({"size": s, "msgs_per_s_ratio": msgs, "p99_ratio": p99, "target_met": met})
        })
        .collect()
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

/// The Markdown table printed by `compare`.
pub(crate) fn table(base: &Ladder, cand: &Ladder) -> String {
    let (b, c) = (&base.label, &cand.label);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| size B | {b} msg/s | {c} msg/s | {b} MB/s | {c} MB/s | {b} p50 µs | {c} p50 µs | {b} p99 µs | {c} p99 µs | msg/s {c}/{b} | p99 {c}/{b} | target |"
    );
    let _ = writeln!(out, "|{}", "---|".repeat(12));
    for r in ratios(base, cand) {
        let s = r["size"].as_u64().unwrap_or(0) as usize;
        let (x, y) = (base.sizes.get(&s), cand.sizes.get(&s));
        let f = |rec: Option<&SizeRecord>, g: fn(&SizeRecord) -> f64, d| cell(rec.map(g), d);
        let _ = writeln!(
            out,
            "| {s} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f(x, |r| r.msgs_per_s, 0),
            f(y, |r| r.msgs_per_s, 0),
            f(x, |r| r.mb_per_s, 2),
            f(y, |r| r.mb_per_s, 2),
            f(x, |r| r.lat_p50_us, 0),
            f(y, |r| r.lat_p50_us, 0),
            f(x, |r| r.lat_p99_us, 0),
            f(y, |r| r.lat_p99_us, 0),
            cell(r["msgs_per_s_ratio"].as_f64(), 2),
            cell(r["p99_ratio"].as_f64(), 2),
            match r["target_met"].as_bool() {
                Some(true) => "met",
                Some(false) => "missed",
                None => "n/a",
            }
        );
    }
    for l in [base, cand] {
        let n: std::collections::BTreeSet<usize> = l.runs.values().copied().collect();
        if n.iter().any(|&k| k > 1) {
            let n: Vec<String> = n.iter().map(usize::to_string).collect();
            let _ = writeln!(
                out,
                "\n{}: medians of {} runs per size",
                l.label,
                n.join("/")
            );
        }
    }
    for (l, e) in [(base, &base.errors), (cand, &cand.errors)] {
        for e in e {
            let _ = writeln!(out, "\n{}: {e}", l.label);
        }
    }
    out
}

/// `results.json`: both ladders, the ratios and the caller's metadata.
pub(crate) fn results(base: &Ladder, cand: &Ladder, meta: &[(String, String)]) -> Value {
    let side = |l: &Ladder| {
        json!({
            "label": l.label,
            "sizes": l.sizes.values().collect::<Vec<_>>(),
            "runs_per_size": l.runs,
            "errors": l.errors,
        })
    };
    let meta: Map<String, Value> = meta
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "meta": meta,
        "target": {"msgs_per_s_ratio_min": TARGET_MSGS_RATIO, "p99_ratio_max": TARGET_P99_RATIO},
        "baseline": side(base),
        "candidate": side(cand),
        "ratios": ratios(base, cand),
        "min_msgs_per_s_ratio": ratios(base, cand)
            .iter()
            .filter_map(|r| r["msgs_per_s_ratio"].as_f64())
            .reduce(f64::min)
            .map(round2),
    })
}
