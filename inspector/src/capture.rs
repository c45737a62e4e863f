//! Capture sources: pcap and pcapng files and live interfaces, through libpcap (the `pcap`
//! crate). Frames are streamed one at a time; nothing holds the whole file.

use std::path::Path;

use pcap::{Active, Capture, Linktype, Offline};

/// One captured frame, borrowed from libpcap's buffer until the next call.
#[derive(Debug)]
pub struct RawFrame<'a> {
    /// Seconds since the epoch.
    pub ts_sec: i64,
    /// Microseconds.
    pub ts_usec: i64,
    /// Bytes on the wire.
    pub wire_len: u32,
    /// Bytes captured (may be less than `wire_len` with a snaplen).
    pub data: &'a [u8],
}

/// Why a capture could not be opened or read on.
#[derive(Debug)]
pub enum CaptureError {
    /// The file could not be opened as pcap or pcapng.
    Open(String),
    /// Reading stopped before the end: a truncated or damaged file.
    Read(String),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Open(m) | CaptureError::Read(m) => f.write_str(m),
        }
    }
}

/// What [`Source::next_frame`] found.
#[derive(Debug)]
pub enum Next<'a> {
    /// A frame.
    Frame(RawFrame<'a>),
    /// A live capture's read timed out; nothing arrived.
    Idle,
    /// The end of the file.
    End,
}

enum Handle {
    File(Capture<Offline>),
    Live(Capture<Active>),
}

/// An open capture.
pub struct Source {
    handle: Handle,
    linktype: Linktype,
}

impl Source {
    /// Opens a pcap or pcapng file.
    pub fn open_file(path: &Path) -> Result<Source, CaptureError> {
        let capture = Capture::from_file(path).map_err(|e| {
            CaptureError::Open(format!(
                "{}: not a pcap or pcapng capture ({e})",
                path.display()
            ))
        })?;
        let linktype = capture.get_datalink();
        Ok(Source {
            handle: Handle::File(capture),
            linktype,
        })
    }

    /// Opens a live capture on `interface`, with a UDP filter so that only candidate traffic
    /// is copied out of the kernel.
    pub fn open_live(interface: &str, filter: &str) -> Result<Source, CaptureError> {
        let mut capture = Capture::from_device(interface)
            .and_then(|c| {
                c.promisc(false)
                    .snaplen(65535)
                    .timeout(200)
                    .immediate_mode(true)
                    .open()
            })
            .map_err(|e| CaptureError::Open(format!("{interface}: cannot capture ({e})")))?;
        capture
            .filter(filter, true)
            .map_err(|e| CaptureError::Open(format!("{interface}: bad filter {filter:?} ({e})")))?;
        let linktype = capture.get_datalink();
        Ok(Source {
            handle: Handle::Live(capture),
            linktype,
        })
    }

    /// The capture's link-layer type.
    pub fn linktype(&self) -> Linktype {
        self.linktype
    }

    /// The next frame; `Ok(Next::End)` at the end of a file, `Ok(Next::Idle)` when a live
    /// capture's read timed out with nothing to show (call again).
    pub fn next_frame(&mut self) -> Result<Next<'_>, CaptureError> {
        let result = match &mut self.handle {
            Handle::File(c) => c.next_packet(),
            Handle::Live(c) => c.next_packet(),
        };
        match result {
            Ok(packet) => Ok(Next::Frame(RawFrame {
                ts_sec: packet.header.ts.tv_sec,
                ts_usec: packet.header.ts.tv_usec,
                wire_len: packet.header.len,
                data: packet.data,
            })),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(e) => Err(CaptureError::Read(e.to_string())),
        }
    }
}

/// Frames read by a second thread in batches, so that libpcap's reads and copies (about a
/// quarter of `decode`'s time on a large file, measured with perf) overlap with decoding.
/// Order is kept; a read error arrives after the frames before it.
pub struct Prefetch {
    rx: std::sync::mpsc::Receiver<Batch>,
    current: Option<Batch>,
    index: usize,
    finished: bool,
}

/// Frames copied out of libpcap's buffer.
struct Batch {
    data: Vec<u8>,
    /// (ts_sec, ts_usec, wire_len, start, end) per frame.
    frames: Vec<(i64, i64, u32, usize, usize)>,
    /// Set on the last batch: the end of the file, or why reading stopped.
    end: Option<Result<(), String>>,
}

/// Frames per batch, and bytes per batch: enough to amortise the channel, small enough to
/// keep memory flat.
const BATCH_FRAMES: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;

impl Prefetch {
    /// Starts reading `source` on its own thread.
    pub fn spawn(mut source: Source) -> Prefetch {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
        std::thread::spawn(move || loop {
            let mut batch = Batch {
                data: Vec::with_capacity(BATCH_BYTES),
                frames: Vec::with_capacity(BATCH_FRAMES),
                end: None,
            };
            while batch.frames.len() < BATCH_FRAMES && batch.data.len() < BATCH_BYTES {
                match source.next_frame() {
                    Ok(Next::Frame(f)) => {
                        let start = batch.data.len();
                        batch.data.extend_from_slice(f.data);
                        batch.frames.push((
                            f.ts_sec,
                            f.ts_usec,
                            f.wire_len,
                            start,
                            batch.data.len(),
                        ));
                    }
                    Ok(Next::Idle) => {}
                    Ok(Next::End) => {
                        batch.end = Some(Ok(()));
                        break;
                    }
                    Err(e) => {
                        batch.end = Some(Err(e.to_string()));
                        break;
                    }
                }
            }
            let last = batch.end.is_some();
            // The reader stops when the consumer has gone (an early `--count`, a closed pipe).
            if tx.send(batch).is_err() || last {
                return;
            }
        });
        Prefetch {
            rx,
            current: None,
            index: 0,
            finished: false,
        }
    }

    /// The next frame, `Ok(None)` at the end.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, CaptureError> {
        loop {
            if let Some(batch) = &self.current {
                if self.index < batch.frames.len() {
                    break;
                }
                let end = batch.end.clone();
                self.current = None;
                match end {
                    Some(Ok(())) => {
                        self.finished = true;
                        return Ok(None);
                    }
                    Some(Err(e)) => {
                        self.finished = true;
                        return Err(CaptureError::Read(e));
                    }
                    None => {}
                }
            }
            if self.finished {
                return Ok(None);
            }
            match self.rx.recv() {
                Ok(batch) => {
                    self.current = Some(batch);
                    self.index = 0;
                }
                Err(_) => {
                    self.finished = true;
                    return Err(CaptureError::Read("reader thread stopped".into()));
                }
            }
        }
        let batch = self
            .current
            .as_ref()
            .ok_or_else(|| CaptureError::Read("no batch".into()))?;
        let (ts_sec, ts_usec, wire_len, start, end) = batch.frames[self.index];
        self.index += 1;
        Ok(Some(RawFrame {
            ts_sec,
            ts_usec,
            wire_len,
            data: &batch.data[start..end],
        }))
    }
}
