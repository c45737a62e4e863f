//! totemd's own IPC recording (`--record-ipc FILE`): every request, response and event of
//! every connection, as the server saw it, in the pcapng format `totem-inspect record-ipc`
//! writes (link type 147, a 56-byte header per packet; README "Recording libqb IPC"), so
//! `totem-inspect` decodes both alike. Records carry `FLAG_SERVER`.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use totem_wire::ipc::record::{
    pcapng_file_header, pcapng_packet, Direction, LibqbCall, RecordHeader, RecordKind, FLAG_MORE,
    FLAG_SERVER, MAX_PIECE_LEN, RECORD_HEADER_LEN,
};
use totem_wire::ipc::Channel;

/// Writes records to a file (or any writer); a write error stops recording, it never
/// stops the daemon.
pub struct Recorder {
    out: Option<Box<dyn Write>>,
    seq: u32,
    dropped: u32,
    /// The first write error, for the exit log.
    pub error: Option<io::Error>,
}

/// Which message of a connection is recorded.
#[derive(Debug, Clone, Copy)]
pub enum Recorded {
    /// A request received.
    Request,
    /// A response sent.
    Response,
    /// An event sent.
    Event,
    /// The connection ended.
    Disconnect,
}

impl Recorder {
    /// Starts a recording: the pcapng section and interface blocks first.
    pub fn new(mut out: Box<dyn Write>) -> io::Result<Recorder> {
        out.write_all(&pcapng_file_header())?;
        Ok(Recorder {
            out: Some(out),
            seq: 0,
            dropped: 0,
            error: None,
        })
    }

    /// Records one message of connection `conn` (client `pid`, `service`), split in
    /// pieces of at most `MAX_PIECE_LEN` like the preload recorder splits them.
    pub fn record(&mut self, what: Recorded, conn: u64, pid: u32, service: &str, msg: &[u8]) {
        let Some(out) = self.out.as_mut() else {
            self.dropped = self.dropped.wrapping_add(1);
            return;
        };
        let (kind, direction, call) = match what {
            Recorded::Request => (
                RecordKind::Message(Channel::Request),
                Direction::ToServer,
                LibqbCall::SendvRecv,
            ),
            Recorded::Response => (
                RecordKind::Message(Channel::Response),
                Direction::ToClient,
                LibqbCall::SendvRecv,
            ),
            Recorded::Event => (
                RecordKind::Message(Channel::Event),
                Direction::ToClient,
                LibqbCall::EventRecv,
            ),
            Recorded::Disconnect => (
                RecordKind::Disconnect,
                Direction::ToServer,
                LibqbCall::Disconnect,
            ),
        };
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let pieces: Vec<&[u8]> = if msg.is_empty() {
            vec![msg]
        } else {
            msg.chunks(MAX_PIECE_LEN).collect()
        };
        let last = pieces.len() - 1;
        let mut packet = Vec::with_capacity(RECORD_HEADER_LEN + msg.len().min(MAX_PIECE_LEN));
        let mut buf = Vec::new();
        for (i, piece) in pieces.into_iter().enumerate() {
            let header = RecordHeader {
                kind,
                direction,
                call,
                flags: FLAG_SERVER | if i < last { FLAG_MORE } else { 0 },
                piece: i.min(usize::from(u16::MAX)) as u16,
                pid,
                tid: 0,
                conn: conn as u32,
                result: msg.len() as i64,
                // One sequence number per message: its pieces share it (the decoder
                // reassembles on it, as the preload recorder numbers them).
                seq: self.seq,
                dropped: self.dropped,
                service: RecordHeader::service_field(service.as_bytes()),
            };
            packet.clear();
            header.emit(&mut packet);
            packet.extend_from_slice(piece);
            pcapng_packet(&mut buf, micros, &packet);
        }
        self.seq = self.seq.wrapping_add(1);
        if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
            self.error = Some(e);
            self.out = None;
        }
    }
}
