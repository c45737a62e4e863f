//! The project's own recording format for libqb IPC: pcapng with link type
//! [`LINKTYPE_QB_IPC`] (LINKTYPE_USER0), each packet a [`RecordHeader`] followed by one
//! whole IPC message as the libqb call carried it. Written by `totem-ipc-record` (the
//! LD_PRELOAD recorder), read by `totem-inspect`. The README's "IPC recording format"
//! section is the reference; this module is its code.
//!
//! All header fields are little-endian. The message after it is in the recording host's
//! order (IPC never leaves the host; x86-64 here).

use crate::error::{ErrorKind, Layer, Result};
use crate::ipc::Channel;
use crate::Error;

/// LINKTYPE_USER0: private use (tcpdump.org link-layer header types, 147–162).
pub const LINKTYPE_QB_IPC: u16 = 147;
/// The first four bytes of every record header.
pub const RECORD_MAGIC: [u8; 4] = *b"QBIP";
/// The version this codec writes and reads.
pub const RECORD_VERSION: u8 = 1;
/// Length of a version-1 header.
pub const RECORD_HEADER_LEN: usize = 56;
/// Length of the service-name field.
pub const SERVICE_LEN: usize = 16;
/// `flags` bit: the libqb call failed; `result` is `-errno`. A failed request still carries
/// the message that was attempted; other failed records carry nothing.
pub const FLAG_FAILED: u8 = 0x01;
/// `flags` bit: more pieces of this message follow in the next record(s).
pub const FLAG_MORE: u8 = 0x02;
/// `flags` bit: the record was written by the server (totemd's own recording), not by the
/// client's preload; `call` then names the client call the message belongs to and `tid`
/// is 0.
pub const FLAG_SERVER: u8 = 0x04;
/// The largest packet libpcap reads back (`MAXIMUM_SNAPLEN`, 262144: it refuses longer
/// pcapng packets as "bigger than snaplen"). Messages that do not fit (up to 1 MiB) are
/// split into pieces of at most this many bytes, header included.
pub const MAX_RECORD_LEN: usize = 262_144;
/// The most message bytes one record carries.
pub const MAX_PIECE_LEN: usize = MAX_RECORD_LEN - RECORD_HEADER_LEN;
/// A request whose call failed (TRY_AGAIN from flow control or a full socket queue, retried
/// by the client in a loop) keeps only this many bytes of its message: enough for every
/// fixed CPG request layout, and a retry storm of 1 MiB requests does not fill the queue.
/// The EPB's original length still gives the whole size.
pub const FAILED_REQUEST_KEEP: usize = 256;

/// Which side sent the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server (setup request, requests).
    ToServer,
    /// Server → client (setup response, responses, events).
    ToClient,
}

/// What a record is about: a message channel, or the end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A message on a channel.
    Message(Channel),
    /// `qb_ipcc_disconnect` was called (no payload).
    Disconnect,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Message(Channel::Setup) => 0,
            RecordKind::Message(Channel::Request) => 1,
            RecordKind::Message(Channel::Response) => 2,
            RecordKind::Message(Channel::Event) => 3,
            RecordKind::Disconnect => 4,
        }
    }

    fn from_code(code: u8) -> Option<RecordKind> {
        Some(match code {
            0 => RecordKind::Message(Channel::Setup),
            1 => RecordKind::Message(Channel::Request),
            2 => RecordKind::Message(Channel::Response),
            3 => RecordKind::Message(Channel::Event),
            4 => RecordKind::Disconnect,
            _ => return None,
        })
    }

    /// `setup`, `request`, `response`, `event`, `disconnect`.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Message(c) => c.name(),
            RecordKind::Disconnect => "disconnect",
        }
    }
}

crate::macros::open_enum! {
    /// The interposed libqb client call that produced a record.
    pub enum LibqbCall(u8) {
        /// `qb_ipcc_connect` (its setup messages; or its failure).
        Connect = 1 => "qb_ipcc_connect",
        /// `qb_ipcc_disconnect`.
        Disconnect = 2 => "qb_ipcc_disconnect",
        /// `qb_ipcc_send`.
        Send = 3 => "qb_ipcc_send",
        /// `qb_ipcc_sendv`.
        Sendv = 4 => "qb_ipcc_sendv",
        /// `qb_ipcc_recv`.
        Recv = 5 => "qb_ipcc_recv",
        /// `qb_ipcc_sendv_recv`.
        SendvRecv = 6 => "qb_ipcc_sendv_recv",
        /// `qb_ipcc_event_recv`.
        EventRecv = 7 => "qb_ipcc_event_recv",
    }
}

/// The per-packet metadata header (56 bytes, version 1).
///
/// ```text
///  0  [4]  magic "QBIP"
///  4  u8   version (1)
///  5  u8   header length (56)
///  6  u8   kind: 0 setup, 1 request, 2 response, 3 event, 4 disconnect
///  7  u8   direction: 0 client→server, 1 server→client
///  8  u8   call: 1 connect, 2 disconnect, 3 send, 4 sendv, 5 recv, 6 sendv_recv, 7 event_recv
///  9  u8   flags: bit 0 = the call failed (result = -errno); bit 1 = more pieces follow;
///           bit 2 = written by the server (totemd --record-ipc)
/// 10  u16  piece: index of this piece of a message split over several records (0 first)
/// 12  u32  pid of the client process
/// 16  u32  tid of the calling thread
/// 20  u32  connection number, per process, from 1 in qb_ipcc_connect order
/// 24  i64  result: the libqb call's return value (bytes, or -errno)
/// 32  u32  sequence number of this record in its process (dropped ones count too)
/// 36  u32  records this process dropped so far (queue full, write errors)
/// 40  [16] service name given to qb_ipcc_connect ("cpg"), NUL-padded
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// What the record is.
    pub kind: RecordKind,
    /// Who sent it.
    pub direction: Direction,
    /// The libqb call.
    pub call: LibqbCall,
    /// [`FLAG_FAILED`], [`FLAG_MORE`].
    pub flags: u8,
    /// Index of this piece (0 unless a message was split).
    pub piece: u16,
    /// Client pid.
    pub pid: u32,
    /// Client thread id.
    pub tid: u32,
    /// Connection number within the process.
    pub conn: u32,
    /// The call's return value.
    pub result: i64,
    /// Sequence number within the process.
    pub seq: u32,
    /// Records dropped so far by this process.
    pub dropped: u32,
    /// Service name bytes, NUL-padded.
    pub service: [u8; SERVICE_LEN],
}

impl RecordHeader {
    /// Parses the header at the start of a packet; returns it and the message after it.
    pub fn parse(bytes: &[u8]) -> Result<(RecordHeader, &[u8])> {
        let mut d = crate::ipc::decoder(bytes);
        let magic = d.array::<4>("magic")?;
        if magic != RECORD_MAGIC {
            return Err(Error::new(
                Layer::Ipc,
                0,
                ErrorKind::BadMagic(u32::from_be_bytes(magic)),
            ));
        }
        let version = d.u8("version")?;
        if version != RECORD_VERSION {
            return Err(Error::new(
                Layer::Ipc,
                4,
                ErrorKind::UnsupportedVersion(version.into()),
            ));
        }
        let header_len = d.u8("header_len")?;
        if usize::from(header_len) < RECORD_HEADER_LEN {
            return Err(Error::new(
                Layer::Ipc,
                5,
                ErrorKind::InvalidValue {
                    field: "header_len",
                    value: header_len.into(),
                },
            ));
        }
        let kind_code = d.u8("kind")?;
        let kind = RecordKind::from_code(kind_code).ok_or_else(|| {
            Error::new(
                Layer::Ipc,
                6,
                ErrorKind::InvalidValue {
                    field: "kind",
                    value: kind_code.into(),
                },
            )
        })?;
        let direction = match d.u8("direction")? {
            0 => Direction::ToServer,
            1 => Direction::ToClient,
            other => {
                return Err(Error::new(
                    Layer::Ipc,
                    7,
                    ErrorKind::InvalidValue {
                        field: "direction",
                        value: other.into(),
                    },
                ))
            }
        };
        let call = d.u8("call")?.into();
        let flags = d.u8("flags")?;
        let piece = d.u16("piece")?;
        let pid = d.u32("pid")?;
        let tid = d.u32("tid")?;
        let conn = d.u32("conn")?;
        let result = d.u64("result")? as i64;
        let seq = d.u32("seq")?;
        let dropped = d.u32("dropped")?;
        let service = d.array::<SERVICE_LEN>("service")?;
        // A later version may append fields: skip what this one does not know.
        d.pad(usize::from(header_len) - RECORD_HEADER_LEN)?;
        Ok((
            RecordHeader {
                kind,
                direction,
                call,
                flags,
                piece,
                pid,
                tid,
                conn,
                result,
                seq,
                dropped,
                service,
            },
            d.take_rest(),
        ))
    }

    /// Appends the 56 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&RECORD_MAGIC);
        out.push(RECORD_VERSION);
        out.push(RECORD_HEADER_LEN as u8);
        out.push(self.kind.code());
        out.push(match self.direction {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        });
        out.push(self.call.into());
        out.push(self.flags);
        out.extend_from_slice(&self.piece.to_le_bytes());
        out.extend_from_slice(&self.pid.to_le_bytes());
        out.extend_from_slice(&self.tid.to_le_bytes());
        out.extend_from_slice(&self.conn.to_le_bytes());
        out.extend_from_slice(&self.result.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.dropped.to_le_bytes());
        out.extend_from_slice(&self.service);
    }

    /// Did the call fail?
    pub fn failed(&self) -> bool {
        self.flags & FLAG_FAILED != 0
    }

    /// Do more pieces of this message follow?
    pub fn more(&self) -> bool {
        self.flags & FLAG_MORE != 0
    }

    /// The service name, up to its first NUL.
    pub fn service_name(&self) -> &[u8] {
        let end = self
            .service
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(SERVICE_LEN);
        &self.service[..end]
    }

    /// A service field from a name (cut to 16 bytes).
    pub fn service_field(name: &[u8]) -> [u8; SERVICE_LEN] {
        let mut out = [0u8; SERVICE_LEN];
        let n = name.len().min(SERVICE_LEN);
        out[..n].copy_from_slice(&name[..n]);
        out
    }
}

/// The pcapng Section Header Block and the one Interface Description Block (link type
/// [`LINKTYPE_QB_IPC`], microsecond timestamps) every recording starts with.
pub fn pcapng_file_header() -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // SHB: type, length, byte-order magic, version 1.0, section length unknown (-1).
    block(&mut out, 0x0A0D_0D0A, |b| {
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
    });
    // IDB: link type, reserved, snaplen 0 (unlimited); no options, so if_tsresol is the
    // default 10^-6.
    block(&mut out, 0x0000_0001, |b| {
        b.extend_from_slice(&LINKTYPE_QB_IPC.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
    });
    out
}

/// Appends one pcapng Enhanced Packet Block on interface 0 holding `packet`, time-stamped
/// `micros` since the epoch.
pub fn pcapng_packet(out: &mut Vec<u8>, micros: u64, packet: &[u8]) {
    pcapng_packet_cut(out, micros, packet, packet.len());
}

/// Like [`pcapng_packet`] for a packet of which only the first `packet.len()` of
/// `original_len` bytes are kept (the EPB's captured and original lengths differ).
pub fn pcapng_packet_cut(out: &mut Vec<u8>, micros: u64, packet: &[u8], original_len: usize) {
    block(out, 0x0000_0006, |b| {
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(micros as u32).to_le_bytes());
        b.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        b.extend_from_slice(&(original_len.max(packet.len()) as u32).to_le_bytes());
        b.extend_from_slice(packet);
        b.extend_from_slice(&[0; 3][..(4 - packet.len() % 4) % 4]);
    });
}

/// A pcapng block: type, total length, body, total length again.
fn block(out: &mut Vec<u8>, block_type: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    body(out);
    let total = (out.len() - start + 4) as u32;
    out[start + 4..start + 8].copy_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
}
