use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{ErrorKind, Layer, Result};

/// Size of `struct totempg_mcast` before the length list.
pub const PG_HEADER_LEN: usize = 8;

/// A totempg packet: the payload of a non-encapsulated MCAST (spec §3.1).
///
/// Each entry of the length list is one packed message, or the piece of one that lies in
/// this packet; `fragmented` and `continuation` tie pieces across packets of one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgPacket<'a> {
    /// Byte order (that of the enclosing totemsrp message).
    pub order: ByteOrder,
    /// `header.version`, always 0.
    pub version: i16,
    /// `header.type`, always 0.
    pub pg_type: i16,
    /// 0: the last entry is complete; k: it continues in the next packet with tag k.
    pub fragmented: u8,
    /// 0: the first entry starts a message; k: it continues the piece tagged k.
    pub continuation: u8,
    /// The packed entries, in order.
    pub entries: Vec<&'a [u8]>,
}

impl<'a> PgPacket<'a> {
    /// Parses a packet. corosync drops a packet whose lengths do not sum to its size exactly
    /// (`totempg_deliver_fn`); so does this, with a `LengthMismatch`.
    pub fn parse(bytes: &'a [u8], order: ByteOrder) -> Result<PgPacket<'a>> {
        let mut d = Decoder::new(bytes, order, Layer::Totempg);
        let version = d.i16("version")?;
        let pg_type = d.i16("type")?;
        let fragmented = d.u8("fragmented")?;
        let continuation = d.u8("continuation")?;
        let count_offset = d.offset();
        let msg_count = d.u16("msg_count")?;
        // The length list itself must fit: 2 bytes per entry.
        let count = d.bounded_count(
            "msg_count",
            msg_count.into(),
            u16::MAX.into(),
            2,
            count_offset,
        )?;
        let mut lens = Vec::with_capacity(count);
        for _ in 0..count {
            lens.push(usize::from(d.u16("msg_len")?));
        }
        let total: usize = lens.iter().sum();
        if total != d.remaining() {
            return Err(d.error(ErrorKind::LengthMismatch {
                field: "msg_len sum",
                declared: total as u64,
                actual: d.remaining() as u64,
            }));
        }
        let mut entries = Vec::with_capacity(count);
        for len in lens {
            entries.push(d.bytes("message", len)?);
        }
        Ok(PgPacket {
            order,
            version,
            pg_type,
            fragmented,
            continuation,
            entries,
        })
    }

    /// Offset of entry `index` within the packet.
    pub fn entry_offset(&self, index: usize) -> usize {
        PG_HEADER_LEN
            + 2 * self.entries.len()
            + self
                .entries
                .iter()
                .take(index)
                .map(|e| e.len())
                .sum::<usize>()
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        self.entry_offset(self.entries.len())
    }

    /// Appends the packet. Every entry must be shorter than 64 KiB (totempg never packs more
    /// than `TOTEMPG_PACKET_SIZE`); longer ones are a caller bug.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out, self.order);
        e.i16(self.version);
        e.i16(self.pg_type);
        e.u8(self.fragmented);
        e.u8(self.continuation);
        e.u16(self.entries.len() as u16);
        for entry in &self.entries {
            debug_assert!(entry.len() <= usize::from(u16::MAX));
            e.u16(entry.len() as u16);
        }
        for entry in &self.entries {
            e.bytes(entry);
        }
    }
}
