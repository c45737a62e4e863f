//! `--report DIR`: `index.html` (cases x backends matrix) and, per case and backend,
//! `cases/<id>/<backend>/case.html` with an inline-SVG sequence chart of joins, leaves,
//! deliveries and membership changes, next to the logs, pcap and traces.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::{esc, Totals};
use crate::driver::{CaseOutcome, Verdict};
use crate::scenario::model::Scenario;
use crate::trace::{Addr, EventKind, Trace};

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}.pass{background:#c8f0c8}\
.fail{background:#f6b8b8}.deviation{background:#f8e6a0}.skipped{background:#e4e4e4}\
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:30em}";

fn color(v: &Verdict) -> &'static str {
    v.label()
}

pub fn index(outcomes: &[CaseOutcome], scenarios: &[&Scenario], secs: f64) -> String {
    let mut backends: Vec<&str> = outcomes.iter().map(|o| o.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut cell: BTreeMap<(&str, &str), &CaseOutcome> = BTreeMap::new();
    for o in outcomes {
        cell.insert((o.scenario.as_str(), o.backend.as_str()), o);
    }
    let t = Totals::of(outcomes);
    let mut s = format!(
        "<!doctype html><meta charset=utf-8><title>totem-conform report</title><style>{STYLE}</style>\
         <h1>totem-conform</h1><p>{} cases: {} pass, {} fail, {} deviation, {} skipped in {secs:.1} s</p>\
         <table><tr><th>scenario</th><th>title</th><th>tags</th>",
        outcomes.len(),
        t.pass,
        t.fail,
        t.deviation,
        t.skipped
    );
    for b in &backends {
        let _ = write!(s, "<th>{b}</th>");
    }
    s.push_str("</tr>\n");
    for sc in scenarios {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(&sc.id),
            esc(&sc.title),
            esc(&sc.tags.join(" "))
        );
        for b in &backends {
            match cell.get(&(sc.id.as_str(), *b)) {
                Some(o) => {
                    let _ = write!(
                        s,
                        "<td class={}><a href=\"cases/{}/{b}/case.html\">{}</a></td>",
                        color(&o.verdict),
                        esc(&sc.id),
                        o.verdict.label()
                    );
                }
                None => s.push_str("<td></td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>");
    s
}

fn addrs(v: &[Addr]) -> String {
    v.iter()
        .map(|a| format!("{}/{}:{}", a.nodeid, a.pid, a.reason))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row of the chart: lane index (None: across all lanes), label, kind.
type Row = (Option<usize>, String, &'static str);

fn rows(trace: &Trace) -> (Vec<String>, Vec<Row>) {
    let mut lanes: Vec<String> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let lane = |name: String, lanes: &mut Vec<String>| match lanes.iter().position(|l| *l == name) {
        Some(i) => i,
        None => {
            lanes.push(name);
            lanes.len() - 1
        }
    };
    for e in &trace.events {
        let (l, label, kind) = match &e.kind {
            EventKind::Step { text, .. } => (None, text.clone(), "step"),
            EventKind::Confchg {
                handle,
                group,
                members,
                left,
                joined,
            } => (
                Some(lane(format!("{}.{handle}", e.client), &mut lanes)),
                format!(
                    "confchg {group} m={} +[{}] -[{}]",
                    members.len(),
                    addrs(joined),
                    addrs(left)
                ),
                "confchg",
            ),
            EventKind::TotemConfchg {
                handle,
                ring_nodeid,
                ring_seq,
                members,
            } => (
                Some(lane(format!("{}.{handle}", e.client), &mut lanes)),
                format!("totem ring {ring_nodeid}.{ring_seq} {members:?}"),
                "totem",
            ),
            EventKind::Deliver {
                handle,
                nodeid,
                pid,
                tag,
                seq,
                len,
                ..
            } => {
                let l = lane(format!("{}.{handle}", e.client), &mut lanes);
                let what = match (tag, seq) {
                    (Some(t), Some(q)) => format!("{t}#{q}"),
                    _ => format!("{len} B"),
                };
                // Consecutive deliveries on one lane collapse into one row.
                if let Some(last) = rows.last_mut() {
                    if last.0 == Some(l) && last.2 == "deliver" {
                        let n = last
                            .1
                            .split(" x")
                            .nth(1)
                            .and_then(|x| x.parse::<usize>().ok())
                            .unwrap_or(1);
                        let head = last.1.split(" x").next().unwrap_or("").to_owned();
                        last.1 = format!("{head} x{}", n + 1);
                        continue;
                    }
                }
                (
                    Some(l),
                    format!("deliver from {nodeid}/{pid} {what} x1"),
                    "deliver",
                )
            }
            EventKind::Result {
                cmd, handle, rc, ..
            } => {
                let l = lane(format!("{}.{handle}", e.client), &mut lanes);
                (
                    Some(l),
                    format!("{cmd} -> {}", rc.as_deref().unwrap_or("-")),
                    "call",
                )
            }
            EventKind::ClientExited { code, signal } => (
                None,
                format!("{} exited code={code:?} signal={signal:?}", e.client),
                "exit",
            ),
            EventKind::Watchdog { handle, mode } => (
                None,
                format!("{}.{handle} watchdog in dispatch {mode}", e.client),
                "exit",
            ),
            EventKind::EvsConfchg {
                handle,
                kind,
                ring,
                members,
                left,
                joined,
            } => (
                Some(lane(format!("{}.evs.{handle}", e.client), &mut lanes)),
                format!(
                    "evs confchg {} ring {} {members:?} +{joined:?} -{left:?}",
                    kind.as_deref().unwrap_or("?"),
                    ring.as_deref().unwrap_or("NULL")
                ),
                "confchg",
            ),
            EventKind::EvsDeliver {
                handle,
                nodeid,
                tag,
                seq,
                len,
                ..
            } => {
                let what = match (tag, seq) {
                    (Some(t), Some(q)) => format!("{t}#{q}"),
                    _ => format!("{len} B"),
                };
                (
                    Some(lane(format!("{}.evs.{handle}", e.client), &mut lanes)),
                    format!("evs deliver from {nodeid} {what}"),
                    "deliver",
                )
            }
            EventKind::QuorumNotify {
                handle,
                quorate,
                ring,
                members,
            } => (
                Some(lane(format!("{}.{handle}", e.client), &mut lanes)),
                format!("quorum quorate={quorate} ring {ring} {members:?}"),
                "confchg",
            ),
            EventKind::QuorumNodelist {
                handle,
                ring,
                members,
                joined,
                left,
            } => (
                Some(lane(format!("{}.{handle}", e.client), &mut lanes)),
                format!("quorum nodelist ring {ring} {members:?} +{joined:?} -{left:?}"),
                "confchg",
            ),
            EventKind::CmapNotify {
                handle,
                event,
                key,
                new,
                ..
            } => (
                Some(lane(format!("{}.{handle}", e.client), &mut lanes)),
                format!(
                    "cmap {event} {key} = {}",
                    new.as_ref()
                        .and_then(|v| v.get("value"))
                        .map_or_else(|| "-".to_owned(), ToString::to_string)
                ),
                "deliver",
            ),
            EventKind::CfgShutdown {
                handle,
                flags,
                reply,
                ..
            } => (
                Some(lane(format!("{}.{handle}", e.client), &mut lanes)),
                format!("cfg shutdown {flags}: replied {reply}"),
                "call",
            ),
            EventKind::ClientStarted { .. } | EventKind::ClientFatal { .. } => continue,
        };
        rows.push((l, label, kind));
    }
    (lanes, rows)
}

pub fn sequence_svg(trace: &Trace) -> String {
    const LANE_W: usize = 210;
    const ROW_H: usize = 16;
    const MAX_ROWS: usize = 1500;
    let (lanes, rows) = rows(trace);
    let shown = rows.len().min(MAX_ROWS);
    let w = 20 + lanes.len().max(1) * LANE_W;
    let h = 40 + shown * ROW_H + 20;
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-size=\"10\" font-family=\"monospace\">");
    for (i, l) in lanes.iter().enumerate() {
        let x = 20 + i * LANE_W + 8;
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"14\" font-weight=\"bold\">{}</text><line x1=\"{x}\" y1=\"20\" x2=\"{x}\" y2=\"{}\" stroke=\"#bbb\"/>",
            esc(l),
            h - 10
        );
    }
    for (k, (lane, label, kind)) in rows.iter().take(shown).enumerate() {
        let y = 34 + k * ROW_H;
        let fill = match *kind {
            "confchg" => "#1f5fbf",
            "totem" => "#7a3fbf",
            "deliver" => "#2a8a2a",
            "call" => "#c06000",
            "exit" => "#b00000",
            _ => "#666",
        };
        match lane {
            None => {
                let _ = write!(
                    s,
                    "<line x1=\"10\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{fill}\" stroke-dasharray=\"3,3\"/><text x=\"12\" y=\"{}\" fill=\"{fill}\">{}</text>",
                    w - 10,
                    y - 3,
                    esc(label)
                );
            }
            Some(i) => {
                let x = 20 + i * LANE_W + 8;
                let _ = write!(
                    s,
                    "<circle cx=\"{x}\" cy=\"{}\" r=\"4\" fill=\"{fill}\"/><text x=\"{}\" y=\"{y}\" fill=\"{fill}\">{}</text>",
                    y - 4,
                    x + 7,
                    esc(label)
                );
            }
        }
    }
    if rows.len() > shown {
        let _ = write!(
            s,
            "<text x=\"12\" y=\"{}\">... {} more rows</text>",
            h - 6,
            rows.len() - shown
        );
    }
    s.push_str("</svg>");
    s
}

pub fn case_page(o: &CaseOutcome, sc: &Scenario, dir: &Path) -> String {
    let mut s = format!(
        "<!doctype html><meta charset=utf-8><title>{id} on {b}</title><style>{STYLE}</style>\
         <p><a href=\"../../../index.html\">index</a></p><h1>{id} <small>on {b}</small></h1>\
         <p class={c}><b>{v}</b> {reason}</p><p>{title}</p><p><b>spec:</b> {spec}<br><b>requirement:</b> {req}</p>",
        id = esc(&sc.id),
        b = o.backend.as_str(),
        c = color(&o.verdict),
        v = o.verdict.label(),
        reason = match &o.verdict {
            Verdict::Skipped(r) | Verdict::Deviation(r) => esc(r),
            _ => String::new(),
        },
        title = esc(&sc.title),
        spec = esc(&sc.spec_ref),
        req = esc(&sc.requirement),
    );
    if let Some(d) = &sc.deviation {
        let _ = write!(
            s,
            "<p><b>deviation {}</b>: the man page says {}; corosync does {}</p>",
            esc(&d.id),
            esc(&d.man_page_says),
            esc(&d.corosync_does)
        );
    }
    if !o.failures.is_empty() || !o.violations.is_empty() {
        s.push_str("<h2>Failures</h2><ul>");
        for f in &o.failures {
            let _ = write!(s, "<li>{}</li>", esc(f));
        }
        for v in &o.violations {
            let _ = write!(s, "<li>[{}] {}</li>", v.check, esc(&v.message));
        }
        s.push_str("</ul>");
    }
    s.push_str("<h2>Files</h2><ul>");
    let mut files: Vec<String> = o
        .artifacts
        .iter()
        .filter_map(|p| p.strip_prefix(dir).ok())
        .map(|p| p.display().to_string())
        .collect();
    files.extend([
        "trace.json".into(),
        "normalized.yaml".into(),
        "outcome.json".into(),
    ]);
    files.sort();
    files.dedup();
    for f in files {
        let _ = write!(s, "<li><a href=\"{0}\">{0}</a></li>", esc(&f));
    }
    s.push_str("</ul>");
    // The report does not decode the capture; with knet crypto on it needs the run's key.
    if o.artifacts.iter().any(|p| p.ends_with("ring.pcap"))
        && o.artifacts.iter().any(|p| p.ends_with("authkey"))
    {
        s.push_str(
            "<p>The ring ran knet crypto with the key in <code>authkey</code>: decode the \
             capture with <code>totem-inspect decode --keyfile n1/corosync.conf ring.pcap</code> \
             (any node's corosync.conf names the key).</p>",
        );
    }
    s.push_str("<h2>Sequence chart</h2>");
    if let Some(t) = &o.trace {
        s.push_str(&sequence_svg(t));
    }
    if let Some(n) = &o.norm {
        let _ = write!(
            s,
            "<h2>Normalised trace</h2><pre>{}</pre>",
            esc(&n.to_yaml())
        );
    }
    s
}
