//! The reading and writing machinery every message module uses.
//!
//! [`Decoder`] walks a byte slice with nom's number and `take` parsers and turns nom's
//! failures into our [`Error`] with the layer, the absolute offset and the field name, so
//! that nom never shows in the public API. [`Encoder`] appends to a `Vec<u8>` in the
//! sender's byte order and can back-patch a length once the body is written.

use nom::number::complete as num;
use nom::number::Endianness;

use crate::error::{Error, ErrorKind, Layer, Result};

/// The byte order a message was sent in.
///
/// corosync writes its integers in host order and the receiver learns the order from the
/// `0xC070` magic (`totemsrp.c::check_message_header_validity`). We emit little-endian and
/// accept both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// Little-endian: x86-64 and aarch64 senders. What we emit.
    #[default]
    Little,
    /// Big-endian: s390x, ppc64 senders.
    Big,
}

impl ByteOrder {
    fn nom(self) -> Endianness {
        match self {
            ByteOrder::Little => Endianness::Little,
            ByteOrder::Big => Endianness::Big,
        }
    }

    /// `"le"` or `"be"`.
    pub fn short_name(self) -> &'static str {
        match self {
            ByteOrder::Little => "le",
            ByteOrder::Big => "be",
        }
    }
}

type NomResult<'a, T> = nom::IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>;

/// A cursor over a message's bytes that reports failures as [`Error`]s.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    full: &'a [u8],
    rest: &'a [u8],
    order: ByteOrder,
    layer: Layer,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8], order: ByteOrder, layer: Layer) -> Self {
        Decoder {
            full: bytes,
            rest: bytes,
            order,
            layer,
        }
    }

    /// Offset of the next byte to be read, from the start of this decoder's buffer.
    pub(crate) fn offset(&self) -> usize {
        self.full.len() - self.rest.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn error(&self, kind: ErrorKind) -> Error {
        Error::new(self.layer, self.offset(), kind)
    }

    pub(crate) fn error_at(&self, offset: usize, kind: ErrorKind) -> Error {
        Error::new(self.layer, offset, kind)
    }

    fn truncated(&self, field: &'static str, needed: usize) -> Error {
        self.error(ErrorKind::Truncated {
            field,
            needed,
            available: self.rest.len(),
        })
    }

    /// Runs one nom parser that needs `width` bytes; a failure becomes `Truncated`.
    fn run<T>(
        &mut self,
        field: &'static str,
        width: usize,
        parser: impl FnOnce(&'a [u8]) -> NomResult<'a, T>,
    ) -> Result<T> {
        match parser(self.rest) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(_) => Err(self.truncated(field, width)),
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8> {
        self.run(field, 1, num::u8)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16> {
        let e = self.order.nom();
        self.run(field, 2, |i| num::u16(e)(i))
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16> {
        let e = self.order.nom();
        self.run(field, 2, |i| num::i16(e)(i))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        let e = self.order.nom();
        self.run(field, 4, |i| num::u32(e)(i))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32> {
        let e = self.order.nom();
        self.run(field, 4, |i| num::i32(e)(i))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64> {
        let e = self.order.nom();
        self.run(field, 8, |i| num::u64(e)(i))
    }

    /// A big-endian u16 whatever the message's order (knet's network-order fields).
    pub(crate) fn u16_be(&mut self, field: &'static str) -> Result<u16> {
        self.run(field, 2, num::be_u16)
    }

    pub(crate) fn bytes(&mut self, field: &'static str, len: usize) -> Result<&'a [u8]> {
        self.run(field, len, |i| nom::bytes::complete::take(len)(i))
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let bytes = self.bytes(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Skips `len` bytes of alignment padding, which carries no data (spec §6).
    pub(crate) fn pad(&mut self, len: usize) -> Result<()> {
        self.bytes("padding", len).map(|_| ())
    }

    /// Everything that is left.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest;
        self.rest = &[];
        rest
    }

    /// Checks a count read from the wire against the protocol maximum and against the bytes
    /// left (`entry_len` each), before anything is allocated for it.
    pub(crate) fn bounded_count(
        &self,
        field: &'static str,
        count: u64,
        max: u64,
        entry_len: usize,
        count_offset: usize,
    ) -> Result<usize> {
        if count > max {
            return Err(self.error_at(count_offset, ErrorKind::CountTooLarge { field, count, max }));
        }
        let needed = (count as usize).saturating_mul(entry_len);
        if needed > self.rest.len() {
            return Err(self.truncated(field, needed));
        }
        Ok(count as usize)
    }

    /// `count` u32s (nodeid lists).
    pub(crate) fn u32_list(&mut self, field: &'static str, count: usize) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.u32(field)?);
        }
        Ok(out)
    }
}

/// Appends a message in one byte order.
#[derive(Debug)]
pub(crate) struct Encoder<'b> {
    buf: &'b mut Vec<u8>,
    order: ByteOrder,
}

impl<'b> Encoder<'b> {
    pub(crate) fn new(buf: &'b mut Vec<u8>, order: ByteOrder) -> Self {
        Encoder { buf, order }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        match self.order {
            ByteOrder::Little => self.buf.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Big => self.buf.extend_from_slice(&v.to_be_bytes()),
        }
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.u16(v as u16);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        match self.order {
            ByteOrder::Little => self.buf.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Big => self.buf.extend_from_slice(&v.to_be_bytes()),
        }
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        match self.order {
            ByteOrder::Little => self.buf.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Big => self.buf.extend_from_slice(&v.to_be_bytes()),
        }
    }

    pub(crate) fn u16_be(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn zeros(&mut self, len: usize) {
        self.buf.resize(self.buf.len() + len, 0);
    }
}

/// Rounds up to a multiple of 8, the alignment of corosync's exec structs (`MAR_ALIGN_UP`).
pub(crate) fn align8(len: usize) -> usize {
    len.saturating_add(7) & !7
}
