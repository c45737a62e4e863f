//! The summary line and the field tree of an IPC record.

use std::io::{self, Write};

use crate::ipc::decode::IpcFrame;

fn arrow(frame: &IpcFrame) -> &'static str {
    match frame.direction {
        "to_server" => "\u{2192}",
        "to_client" => "\u{2190}",
        _ => " ",
    }
}

/// One line: frame, relative time, pid/conn, service, direction, channel, name, status,
/// fields, the request a response answers and its latency, errors.
pub fn write_summary(out: &mut dyn Write, frame: &IpcFrame, t0: f64) -> io::Result<()> {
    let mut line = String::with_capacity(160);
    use std::fmt::Write as _;
    let _ = write!(line, "{:>6} {:>11.6} ", frame.frame, frame.ts - t0);
    match (frame.pid, frame.conn) {
        (Some(pid), Some(conn)) => {
            let _ = write!(
                line,
                "{pid}/{conn} {} {} {:<8} ",
                frame.service,
                arrow(frame),
                frame.channel
            );
        }
        _ => line.push_str("? "),
    }
    if let Some(name) = &frame.name {
        line.push_str(name);
    }
    if let Some(status) = &frame.status {
        let _ = write!(line, " {status}");
    }
    if let Some(e) = &frame.call_error {
        let _ = write!(line, " call failed: {} ({})", e.errno, e.cs_error);
    }
    for (key, value) in &frame.detail.0 {
        let _ = write!(line, " {key}={value}");
    }
    if let Some(len) = frame.len {
        let _ = write!(line, " ({len}B)");
    }
    if let (Some(to), Some(us)) = (frame.reply_to, frame.latency_us) {
        let _ = write!(line, " [reply to {to}, {us} \u{b5}s]");
    }
    if let Some(e) = &frame.error {
        let _ = write!(
            line,
            " [error: {} at offset {}: {}]",
            e.layer, e.offset, e.reason
        );
    }
    for note in &frame.notes {
        let _ = write!(line, " ({note})");
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// The field tree.
pub fn write_verbose(out: &mut dyn Write, frame: &IpcFrame, t0: f64) -> io::Result<()> {
    writeln!(
        out,
        "Frame {}: {} bytes captured, t={:.6} (+{:.6})",
        frame.frame,
        frame.caplen,
        frame.ts,
        frame.ts - t0
    )?;
    if let (Some(pid), Some(tid), Some(conn)) = (frame.pid, frame.tid, frame.conn) {
        writeln!(
            out,
            "  libqb IPC: pid {pid}, thread {tid}, connection {conn}, service {:?}",
            frame.service
        )?;
        writeln!(
            out,
            "  Channel: {} ({}) by {}, result {}",
            frame.channel,
            frame.direction.replace('_', " "),
            frame.call.as_deref().unwrap_or("?"),
            frame.result.unwrap_or_default()
        )?;
    }
    if let Some(e) = &frame.call_error {
        writeln!(
            out,
            "  Call failed: {} (libcpg returns {})",
            e.errno, e.cs_error
        )?;
    }
    if let Some(name) = &frame.name {
        write!(out, "  {name}")?;
        if let Some(id) = frame.id {
            write!(out, " (id {id}")?;
            if let Some(len) = frame.len {
                write!(out, ", {len} bytes")?;
            }
            write!(out, ")")?;
        }
        writeln!(out)?;
    }
    if let Some(status) = &frame.status {
        writeln!(out, "    status: {status}")?;
    }
    for (key, value) in &frame.detail.0 {
        writeln!(out, "    {key}: {value}")?;
    }
    if let (Some(to), Some(us)) = (frame.reply_to, frame.latency_us) {
        writeln!(out, "  Reply to frame {to} after {us} \u{b5}s")?;
    }
    for note in &frame.notes {
        writeln!(out, "  Note: {note}")?;
    }
    if let Some(e) = &frame.error {
        writeln!(
            out,
            "  Error: {} at offset {} ({}): {}",
            e.layer, e.offset, e.kind, e.reason
        )?;
    }
    writeln!(out)
}
