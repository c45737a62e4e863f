//! kronosnet v1 packets as libknet 1.25 sends them with crypto and compression off
//! (`knet: libknet/onwire.h`, spec §1.2). knet's own fields are big-endian; the totem
//! message inside a DATA packet keeps the sender's order.

mod defrag;

pub use defrag::{DefragLimits, Defragmented, Defragmenter};

use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{ErrorKind, Layer, Result};
use crate::macros::open_enum;

/// `KNET_HEADER_VERSION`.
pub const KNET_VERSION: u8 = 1;
/// `KNET_HEADER_SIZE`.
pub const KNET_HEADER_LEN: usize = 6;
/// `KNET_HEADER_DATA_SIZE`.
pub const KNET_DATA_HEADER_LEN: usize = 14;
/// `KNET_HEADER_PING_SIZE`.
pub const KNET_PING_LEN: usize = 26;
/// `KNET_HEADER_PMTUD_SIZE`.
pub const KNET_PMTUD_HEADER_LEN: usize = 9;
/// `KNET_MAX_PACKET_SIZE`: largest reassembled user message.
pub const KNET_MAX_PACKET_SIZE: usize = 65536;

open_enum! {
    /// `kh_type`: bit 0x80 marks link-service packets.
    pub enum KnetType(u8) {
        /// `KNET_HEADER_TYPE_DATA`.
        Data = 0x00 => "DATA",
        /// `KNET_HEADER_TYPE_PING`.
        Ping = 0x81 => "PING",
        /// `KNET_HEADER_TYPE_PONG`.
        Pong = 0x82 => "PONG",
        /// `KNET_HEADER_TYPE_PMTUD`.
        Pmtud = 0x83 => "PMTUD",
        /// `KNET_HEADER_TYPE_PMTUD_REPLY`.
        PmtudReply = 0x84 => "PMTUD_REPLY",
    }
}

/// Field offsets of `struct knet_header` (`libknet/onwire.h`).
mod field {
    /// `kh_node`, big-endian.
    pub(super) const NODE: core::ops::Range<usize> = 2..4;
}

/// The 6-byte common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KnetHeader {
    /// `kh_version`, 1.
    pub version: u8,
    /// `kh_type`.
    pub packet_type: KnetType,
    /// `kh_node`: the sender's host id (= corosync nodeid).
    pub node: u16,
    /// `kh_pad1`, `kh_pad2`.
    pub pad: [u8; 2],
}

impl KnetHeader {
    /// `kh_node` of the packet `bytes` starts with, read without parsing anything else:
    /// enough to tell whose packets a datagram holds before cutting it into packets (a UDP
    /// GSO send caught before the kernel cut it). `None` when fewer than 4 bytes are given.
    pub fn peek_node(bytes: &[u8]) -> Option<u16> {
        let node = bytes.get(field::NODE)?;
        Some(u16::from_be_bytes([node[0], node[1]]))
    }
}

/// DATA payload: a totem message or a fragment of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnetData<'a> {
    /// Per-sender packet sequence (all fragments share it; 0 is skipped).
    pub seq_num: u16,
    /// 0 = not compressed.
    pub compress: u8,
    /// `khp_data_pad1`.
    pub pad1: u8,
    /// 1 = broadcast, 0 = unicast.
    pub bcast: u8,
    /// Number of fragments; 1 = not fragmented.
    pub frag_num: u8,
    /// 0 unfragmented; 1..=frag_num for fragments.
    pub frag_seq: u8,
    /// datafd channel, 0 for corosync.
    pub channel: u8,
    /// User data (or a fragment of it).
    pub payload: &'a [u8],
}

/// PING or PONG payload (a PONG echoes the PING unchanged but for type and node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnetPing {
    /// The pinger's link id.
    pub link: u8,
    /// The pinger's `struct timespec`, opaque (pinger's host order).
    pub time: [u8; 16],
    /// The pinger's current data tx seq_num.
    pub seq_num: u16,
    /// 1 = periodic ping, 0 = forced.
    pub timed: u8,
}

impl KnetPing {
    /// `khp_ping_time` read as the [`PingTime`] it holds.
    pub fn ping_time(&self) -> PingTime {
        PingTime::from_bytes(self.time)
    }
}

/// The `struct timespec` in a PING (`khp_ping_time`): libknet copies its
/// `clock_gettime(CLOCK_MONOTONIC)` there as the host lays it out (`_handle_check_each`,
/// `threads_heartbt.c`) and reads it back only from the PONG that echoes it, on the same host
/// (`process_pong`, `threads_rx.c`), to time the round trip. So the layout is the pinger's
/// own; this is x86-64's, where corosync 3.1.7 was recorded: two little-endian i64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PingTime {
    /// `tv_sec`.
    pub secs: i64,
    /// `tv_nsec`.
    pub nanos: i64,
}

impl PingTime {
    /// The time `micros` µs after the clock's origin.
    pub fn from_micros(micros: i64) -> PingTime {
        PingTime {
            secs: micros / 1_000_000,
            nanos: (micros % 1_000_000) * 1000,
        }
    }

    /// Microseconds since the clock's origin; saturates, since a peer may echo anything.
    pub fn total_micros(self) -> i64 {
        self.secs
            .saturating_mul(1_000_000)
            .saturating_add(self.nanos / 1000)
    }

    /// Reads the 16 bytes of `khp_ping_time`.
    pub fn from_bytes(bytes: [u8; 16]) -> PingTime {
        let [s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, n4, n5, n6, n7] = bytes;
        PingTime {
            secs: i64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            nanos: i64::from_le_bytes([n0, n1, n2, n3, n4, n5, n6, n7]),
        }
    }

    /// The 16 bytes of `khp_ping_time`.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.secs.to_le_bytes());
        bytes[8..].copy_from_slice(&self.nanos.to_le_bytes());
        bytes
    }
}

/// PMTUD probe or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnetPmtud<'a> {
    /// Link id.
    pub link: u8,
    /// Probe size, in the sender's host order (libknet does not swap it); kept raw.
    pub size_raw: [u8; 2],
    /// Padding up to the probed size.
    pub filler: &'a [u8],
}

impl KnetPmtud<'_> {
    /// The probe size read as little-endian (every sender we know of).
    pub fn size_le(&self) -> u16 {
        u16::from_le_bytes(self.size_raw)
    }
}

/// The payload of a knet packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnetBody<'a> {
    /// DATA.
    Data(KnetData<'a>),
    /// PING.
    Ping(KnetPing),
    /// PONG.
    Pong(KnetPing),
    /// PMTUD.
    Pmtud(KnetPmtud<'a>),
    /// PMTUD_REPLY.
    PmtudReply(KnetPmtud<'a>),
    /// A type this codec does not know.
    Unknown(&'a [u8]),
}

/// One knet packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnetPacket<'a> {
    /// Common header.
    pub header: KnetHeader,
    /// Type-specific payload.
    pub body: KnetBody<'a>,
    /// Bytes after a fixed-size body (PING/PONG are 26 bytes; libknet ignores anything
    /// more). Kept so that the packet re-emits byte for byte.
    pub trailing: &'a [u8],
}

impl<'a> KnetPacket<'a> {
    /// Parses a knet v1 packet (the whole UDP payload).
    pub fn parse(bytes: &'a [u8]) -> Result<KnetPacket<'a>> {
        // knet's own fields are network order; the order argument only matters for fields
        // read with the message-order readers, which knet does not use.
        let mut d = Decoder::new(bytes, ByteOrder::Big, Layer::Knet);
        let version = d.u8("kh_version")?;
        if version != KNET_VERSION {
            return Err(d.error_at(0, ErrorKind::UnsupportedVersion(version.into())));
        }
        let header = KnetHeader {
            version,
            packet_type: d.u8("kh_type")?.into(),
            node: d.u16_be("kh_node")?,
            pad: d.array::<2>("kh_pad")?,
        };
        let body = match header.packet_type {
            KnetType::Data => KnetBody::Data(KnetData {
                seq_num: d.u16_be("khp_data_seq_num")?,
                compress: d.u8("khp_data_compress")?,
                pad1: d.u8("khp_data_pad1")?,
                bcast: d.u8("khp_data_bcast")?,
                frag_num: d.u8("khp_data_frag_num")?,
                frag_seq: d.u8("khp_data_frag_seq")?,
                channel: d.u8("khp_data_channel")?,
                payload: d.take_rest(),
            }),
            KnetType::Ping | KnetType::Pong => {
                let ping = KnetPing {
                    link: d.u8("khp_ping_link")?,
                    time: d.array::<16>("khp_ping_time")?,
                    seq_num: d.u16_be("khp_ping_seq_num")?,
                    timed: d.u8("khp_ping_timed")?,
                };
                if header.packet_type == KnetType::Ping {
                    KnetBody::Ping(ping)
                } else {
                    KnetBody::Pong(ping)
                }
            }
            KnetType::Pmtud | KnetType::PmtudReply => {
                let pmtud = KnetPmtud {
                    link: d.u8("khp_pmtud_link")?,
                    size_raw: d.array::<2>("khp_pmtud_size")?,
                    filler: d.take_rest(),
                };
                if header.packet_type == KnetType::Pmtud {
                    KnetBody::Pmtud(pmtud)
                } else {
                    KnetBody::PmtudReply(pmtud)
                }
            }
            KnetType::Unknown(_) => KnetBody::Unknown(d.take_rest()),
        };
        Ok(KnetPacket {
            header,
            body,
            trailing: d.take_rest(),
        })
    }

    /// Appends the packet.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, ByteOrder::Big);
        e.u8(self.header.version);
        e.u8(self.header.packet_type.into());
        e.u16_be(self.header.node);
        e.bytes(&self.header.pad);
        match &self.body {
            KnetBody::Data(data) => {
                e.u16_be(data.seq_num);
                e.u8(data.compress);
                e.u8(data.pad1);
                e.u8(data.bcast);
                e.u8(data.frag_num);
                e.u8(data.frag_seq);
                e.u8(data.channel);
                e.bytes(data.payload);
            }
            KnetBody::Ping(p) | KnetBody::Pong(p) => {
                e.u8(p.link);
                e.bytes(&p.time);
                e.u16_be(p.seq_num);
                e.u8(p.timed);
            }
            KnetBody::Pmtud(p) | KnetBody::PmtudReply(p) => {
                e.u8(p.link);
                e.bytes(&p.size_raw);
                e.bytes(p.filler);
            }
            KnetBody::Unknown(rest) => e.bytes(rest),
        }
        e.bytes(self.trailing);
    }

    /// The packet as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

/// Does this datagram look like a knet v1 packet? (Version 1, a known type, zero pads.)
pub fn looks_like_knet(bytes: &[u8]) -> bool {
    match bytes {
        [KNET_VERSION, t, _, _, 0, 0, ..] => !matches!(KnetType::from(*t), KnetType::Unknown(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
