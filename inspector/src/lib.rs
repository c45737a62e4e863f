//! `totem-inspect`: decode pcap/pcapng captures of corosync's Totem traffic.
//!
//! capture (libpcap) → layers (etherparse, IP reassembly) → [`decode::FrameDecoder`]
//! (totem-wire: knet, totemsrp, totempg reassembly, exec/sync/CPG/EVS) → a [`model::FrameRecord`]
//! per frame → one of the views in [`render`] or [`stats`].

#![warn(missing_docs, unreachable_pub)]

pub mod capture;
pub mod cli;
pub mod decode;
pub mod evs;
pub mod filter;
pub mod intern;
pub mod ipc;
pub mod knet_crypto;
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
use model::FrameRecord;
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

/// Frames decoded per batch handed to the rendering thread.
const RENDER_BATCH: usize = 1024;

/// Decodes one capture's frames into the view (or the stats). For files in the JSON and
/// verbose views the rendering runs on its own thread, in order, while this one decodes.
/// Returns false when the capture ended early.
// One call site; bundling these into a struct would only move the list.
#[allow(clippy::too_many_arguments)]
fn decode_frames(
    config: &Config,
    name: &str,
    several: bool,
    mut decoder: FrameDecoder,
    mut frames: Frames,
    stats: &mut Stats,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<bool> {
    let stats_view = matches!(config.view, View::StatsText | View::StatsJson);
    // Measured on the benchmark capture: JSON and the field tree cost enough to pay for a
    // thread (JSON 0.62 s -> 0.46 s); the summary line does not (0.27 s -> 0.30 s, the
    // records' hand-over costs more than the formatting).
    let threaded = matches!(config.view, View::Json | View::Verbose)
        && matches!(frames, Frames::Prefetched(_));
    let mut number = 0u64;
    let mut t0 = None;
    let mut complete = true;
    let mut direct = Renderer::new(config.view, several, name);
    std::thread::scope(|scope| -> io::Result<()> {
        let (to_render, render_rx) = std::sync::mpsc::sync_channel::<(f64, Vec<FrameRecord>)>(4);
        let (rendered_tx, rendered) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
        if threaded {
            let mut renderer = Renderer::new(config.view, several, name);
            scope.spawn(move || {
                for (t0, batch) in render_rx {
                    let mut buf = Vec::with_capacity(batch.len() * 128);
                    let result = batch
                        .iter()
                        .try_for_each(|record| renderer.write(&mut buf, record, t0))
                        .map(|()| buf);
                    if rendered_tx.send(result).is_err() {
                        return;
                    }
                }
            });
        } else {
            drop(render_rx);
            drop(rendered_tx);
        }
        let mut batch = Vec::with_capacity(RENDER_BATCH);
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
                    complete = false;
                    break;
                }
            };
            number += 1;
            let record = decoder.decode(number, &frame);
            let start = *t0.get_or_insert(record.ts);
            if stats_view {
                stats.add(
                    &record,
                    StatsOptions {
                        token_ms: config.token_ms,
                    },
                );
            } else if !config.filter.matches(&record) {
            } else if threaded {
                batch.push(record);
                if batch.len() == RENDER_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(RENDER_BATCH));
                    if to_render.send((start, full)).is_err() {
                        break;
                    }
                    while let Ok(buf) = rendered.try_recv() {
                        out.write_all(&buf?)?;
                    }
                }
            } else {
                direct.write(out, &record, start)?;
            }
        }
        if threaded {
            if !batch.is_empty() {
                let _ = to_render.send((t0.unwrap_or_default(), batch));
            }
            drop(to_render);
            for buf in rendered {
                out.write_all(&buf?)?;
            }
        }
        Ok(())
    })?;
    Ok(complete)
}

/// Writes records in the configured text or JSON view.
struct Renderer<'n> {
    view: View,
    several: bool,
    name: &'n str,
    summary: render::summary::SummaryWriter,
}

impl<'n> Renderer<'n> {
    fn new(view: View, several: bool, name: &'n str) -> Renderer<'n> {
        Renderer {
            view,
            several,
            name,
            summary: render::summary::SummaryWriter::default(),
        }
    }

    fn write(&mut self, out: &mut dyn Write, record: &FrameRecord, t0: f64) -> io::Result<()> {
        match self.view {
            View::Summary => self.summary.write_frame(out, record, t0),
            View::Verbose => render::verbose::write_frame(out, record, t0),
            View::Json if self.several => {
                write!(out, "{{\"file\":{},", serde_json::to_string(self.name)?)?;
                let line = serde_json::to_string(record)?;
                out.write_all(line.get(1..).unwrap_or_default().as_bytes())?;
                out.write_all(b"\n")
            }
            View::Json => render::json::write_frame(out, record),
            View::StatsText | View::StatsJson => Ok(()),
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
        let decoder = FrameDecoder::new(source.linktype(), &config.ports)
            .with_knet_crypto(config.knet_crypto.clone());
        // Files are read ahead on a second thread; a live capture is read as frames come.
        let frames = match config.input {
            Input::Files(_) => Frames::Prefetched(capture::Prefetch::spawn(source)),
            Input::Live(_) => Frames::Direct(source),
        };
        let ok = decode_frames(
            config, &name, several, decoder, frames, &mut stats, out, err,
        )?;
        if !ok {
            status = EXIT_INCOMPLETE;
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
