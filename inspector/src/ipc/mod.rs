//! libqb IPC recordings (link type 147, written by `totem-inspect record-ipc`; the README's
//! "IPC recording format"): decoding each record down to CPG fields, pairing responses with
//! their requests, the three views, and `stats`.
//!
//! The pipeline mirrors the Totem one but is its own: a record is not a network frame, so it
//! gets its own [`IpcFrame`] (same JSON conventions: `frame` always, `error` on failure).

pub mod decode;
pub mod errno;
pub mod evs;
pub mod record;
pub mod render;
pub mod stats;
pub mod summary;

use std::io::{self, Write};

use crate::capture::{Next, Source};
use crate::cli::{Config, View};
use crate::filter::Filter;

pub use decode::{IpcDecoder, IpcFrame};
pub use stats::IpcStats;

/// The link type of IPC recordings (LINKTYPE_USER0).
pub const LINKTYPE: i32 = totem_wire::ipc::record::LINKTYPE_QB_IPC as i32;

/// Is this a capture of libqb IPC records?
pub fn is_ipc(linktype: pcap::Linktype) -> bool {
    linktype.0 == LINKTYPE
}

/// Decodes one IPC capture with the configured view (stats go to `stats`). Returns
/// `Ok(false)` when the file ended early (reported on `err`).
pub fn run_source(
    source: &mut Source,
    name: &str,
    several: bool,
    config: &Config,
    stats: &mut IpcStats,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<bool> {
    let mut decoder = IpcDecoder::new();
    let mut number = 0u64;
    let mut t0 = None;
    loop {
        if config.count.is_some_and(|c| number >= c) {
            break;
        }
        let frame = match source.next_frame() {
            Ok(Next::Frame(frame)) => frame,
            Ok(Next::Idle) => continue,
            Ok(Next::End) => break,
            Err(e) => {
                writeln!(
                    err,
                    "totem-inspect: {name}: capture ends early after frame {number}: {e}"
                )?;
                return Ok(false);
            }
        };
        number += 1;
        let record = decoder.decode(number, &frame);
        let start = *t0.get_or_insert(record.ts);
        match config.view {
            View::StatsText | View::StatsJson => stats.add(&record),
            _ if !matches(&config.filter, &record) => {}
            View::Summary => render::write_summary(out, &record, start)?,
            View::Verbose => render::write_verbose(out, &record, start)?,
            View::Json => {
                if several {
                    write!(out, "{{\"file\":{},", serde_json::to_string(name)?)?;
                    let line = serde_json::to_string(&record)?;
                    out.write_all(line.get(1..).unwrap_or_default().as_bytes())?;
                    out.write_all(b"\n")?;
                } else {
                    serde_json::to_writer(&mut *out, &record)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    Ok(true)
}

/// The decode filters, as they apply to IPC records: `--type` matches the message name
/// (`JOIN`, `MCAST`, `CONFCHG_CALLBACK`, with or without `_CALLBACK`), `--service` the
/// service the client connected to (`cpg`, `evs`), `--group` the CPG group or an EVS key the
/// request names, `--node` a nodeid anywhere in the message.
pub fn matches(filter: &Filter, frame: &IpcFrame) -> bool {
    if !filter.ipc_types.is_empty() {
        let Some(name) = frame.name.as_deref() else {
            return false;
        };
        let short = name.strip_suffix("_CALLBACK").unwrap_or(name);
        if !filter
            .ipc_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name) || t.eq_ignore_ascii_case(short))
        {
            return false;
        }
    }
    if !filter.services.is_empty()
        && !filter
            .services
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&frame.service))
    {
        return false;
    }
    if !filter.groups.is_empty()
        && !frame
            .group
            .as_deref()
            .is_some_and(|g| filter.groups.iter().any(|want| want == g))
        && !frame
            .summary
            .evs_groups
            .iter()
            .any(|k| filter.evs_keys.contains(k))
    {
        return false;
    }
    if !filter.nodes.is_empty() && !filter.nodes.iter().any(|n| frame.summary.nodes.contains(n)) {
        return false;
    }
    true
}
