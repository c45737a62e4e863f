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
