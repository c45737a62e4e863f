//! `totem-inspect`: decode pcap/pcapng captures of corosync's Totem traffic.
//!
//! capture (libpcap) → layers (etherparse, IP reassembly) → [`decode::FrameDecoder`]
//! (totem-wire: knet, totemsrp, totempg reassembly, exec/sync/CPG) → a [`model::FrameRecord`]
//! per frame → one of the views in [`render`] or [`stats`].

#![warn(missing_docs, unreachable_pub)]

pub mod capture;
pub mod cli;
pub mod decode;
pub mod filter;
pub mod ipc;
pub mod layers;
pub mod model;
pub mod render;
pub mod stats;

use std::io::{self, Write};
use std::process::ExitCode;

use capture::{CaptureError, Source};
use cli::{Config, Input, View};
use decode::FrameDecoder;
use layers::Layers;
use stats::{Stats, StatsOptions};

/// Exit code: everything read.
pub const EXIT_OK: u8 = 0;
/// Exit code: a capture ended early (truncated or damaged); what was read was decoded.
pub const EXIT_INCOMPLETE: u8 = 1;
/// Exit code: bad usage, or an input that is not a capture.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Where a Totem capture's frames come from.
enum Frames {
    Direct(Source),
    Prefetched(capture::Prefetch),
}

impl Frames {
    fn next_frame(&mut self) -> Result<capture::Next<'_>, CaptureError> {
        match self {
            Frames::Direct(source) => source.next_frame(),
            Frames::Prefetched(p) => Ok(match p.next_frame()? {
                Some(frame) => capture::Next::Frame(frame),
                None => capture::Next::End,
            }),
        }
    }
}

/// Runs the configured command, writing the view to `out` and problems to `err`.
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<ExitCode> {
    let mut stats = Stats::new();
    let mut status = EXIT_OK;
    let sources: Vec<(String, Result<Source, CaptureError>)> = match &config.input {
        Input::Files(files) => files
            .iter()
            .map(|f| (f.display().to_string(), Source::open_file(f)))
            .collect(),
        Input::Live(interface) => vec![(
            interface.clone(),
            Source::open_live(interface, "udp or (ip[6:2] & 0x1fff != 0)"),
        )],
    };
    let several = sources.len() > 1;
    let mut ipc_stats = ipc::IpcStats::new();
    let mut totem_sources = 0usize;
    for (name, source) in sources {
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                writeln!(err, "totem-inspect: {e}")?;
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
        };
        // libqb IPC recordings (`record-ipc`) have their own pipeline.
        if ipc::is_ipc(source.linktype()) {
            if several && matches!(config.view, View::Summary | View::Verbose) {
                writeln!(out, "==> {name} <==")?;
            }
            let stats = &mut ipc_stats;
            if !ipc::run_source(&mut source, &name, several, config, stats, out, err)? {
                status = EXIT_INCOMPLETE;
            }
            continue;
        }
        totem_sources += 1;
        if !Layers::supported(source.linktype()) {
            writeln!(
                err,
                "totem-inspect: {name}: link type {} ({}) is not supported",
                source.linktype().0,
                source.linktype().get_name().unwrap_or_default()
            )?;
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        if several && matches!(config.view, View::Summary | View::Verbose) {
            writeln!(out, "==> {name} <==")?;
        }
        let mut decoder = FrameDecoder::new(source.linktype(), &config.ports);
        let mut number = 0u64;
        let mut t0 = None;
        let mut summary = render::summary::SummaryWriter::default();
        // Files are read ahead on a second thread; a live capture is read as frames come.
        let mut frames = match config.input {
            Input::Files(_) => Frames::Prefetched(capture::Prefetch::spawn(source)),
            Input::Live(_) => Frames::Direct(source),
        };
        loop {
            if config.count.is_some_and(|c| number >= c) {
                break;
            }
            let frame = match frames.next_frame() {
                Ok(capture::Next::Frame(frame)) => frame,
                Ok(capture::Next::Idle) => {
                    out.flush()?;
                    continue;
                }
                Ok(capture::Next::End) => break,
                Err(e) => {
                    writeln!(
                        err,
                        "totem-inspect: {name}: capture ends early after frame {number}: {e}"
                    )?;
                    status = EXIT_INCOMPLETE;
                    break;
                }
            };
            number += 1;
            let record = decoder.decode(number, &frame);
            let start = *t0.get_or_insert(record.ts);
            match config.view {
                View::StatsText | View::StatsJson => stats.add(
                    &record,
                    StatsOptions {
                        token_ms: config.token_ms,
                    },
                ),
                _ if !config.filter.matches(&record) => {}
                View::Summary => summary.write_frame(out, &record, start)?,
                View::Verbose => render::verbose::write_frame(out, &record, start)?,
                View::Json => {
                    if several {
                        write!(out, "{{\"file\":{},", serde_json::to_string(&name)?)?;
                        let line = serde_json::to_string(&record)?;
                        out.write_all(line.get(1..).unwrap_or_default().as_bytes())?;
                        out.write_all(b"\n")?;
                    } else {
                        render::json::write_frame(out, &record)?;
                    }
                }
            }
        }
    }
    if matches!(config.view, View::StatsText | View::StatsJson) && !ipc_stats.is_empty() {
        stats.finish();
        let totem = (totem_sources > 0).then_some(&stats);
        ipc::stats::write(config.view == View::StatsJson, totem, &mut ipc_stats, out)?;
        out.flush()?;
        return Ok(ExitCode::from(status));
    }
    match config.view {
        View::StatsText => {
            stats.finish();
            stats.write_text(out)?;
        }
        View::StatsJson => {
            stats.finish();
            serde_json::to_writer_pretty(&mut *out, &stats)?;
            out.write_all(b"\n")?;
        }
        _ => {}
    }
    out.flush()?;
    Ok(ExitCode::from(status))
}
