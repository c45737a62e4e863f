//! `totem-wire`: every byte format of corosync 3.1.7's Totem stack, in one place.
//!
//! The daemon, the simulator, the inspector and the conformance runner all read and write
//! these bytes through this crate and nowhere else. The formats and their sources are in
//! `shared/spec/totem-wire.md`; each module cites the corosync function it mirrors.
//!
//! # Layers
//!
//! ```text
//! UDP payload ─┬─ udpu: a totemsrp message                        srp::Message
//!              └─ knet v1 header (+ knet fragments) → totemsrp     knet::KnetPacket
//! totemsrp MCAST payload → totempg packet (+ reassembly)           pg::PgPacket, pg::Assembler
//! totempg message → group prefix → "a": exec message              exec::ExecMessage
//!                                  "sync": sync v2 message         exec::SyncMessage
//! ```
//!
//! # Contracts
//!
//! * **Parsing never panics**, whatever the input, and never allocates in proportion to a
//!   count before checking that count against the protocol maximum and the bytes present.
//! * **Errors are data**: an [`Error`] names the [`Layer`], the byte offset from the start
//!   of the buffer the caller passed in, and what was needed there.
//! * **Byte order is decided once**: totemsrp learns it from the `0xC070` magic; every inner
//!   layer of that message is parsed in the same [`ByteOrder`]. We emit little-endian.
//! * **Unknown values are kept**: message types, services, functions, reasons are open
//!   enums whose `Unknown(raw)` re-emits the raw value; unknown services are returned raw.
//! * **Round trips**: totemsrp, totempg and knet are packed formats, so `emit(parse(b)) == b`
//!   byte for byte. Exec messages are 8-aligned structs with padding; emit writes zeros
//!   there (corosync memsets them), so for them `parse(emit(parse(b))) == parse(b)`.
//! * nom does the byte work inside; none of its types appear in this API.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod codec;
mod error;
mod macros;

pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod ipc;
pub mod knet;
pub mod legacy;
pub mod pg;
pub mod srp;
#[cfg(any(test, feature = "proptest"))]
pub mod strategies;

pub use codec::ByteOrder;
pub use error::{Error, ErrorKind, Layer, Result};

/// How a UDP payload is framed, decided by its content (not by its port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// corosync 3.x over udp/udpu: the payload is a totemsrp message.
    Totem(ByteOrder),
    /// kronosnet v1 with crypto off.
    Knet,
    /// corosync 1.x/2.x over udp/udpu (endian detector 0xff22), unencrypted.
    Legacy(legacy::LegacyFraming),
    /// Neither.
    Unknown,
}

/// Classifies a UDP payload. The totem magic is checked first: a knet packet can never
/// start with `70 C0` or `C0 70` because its first byte is the version, 1. knet comes before
/// the 1.x/2.x grammar, whose weaker signature (the endian detector at offset 2) a knet
/// packet from host 8959 or 65314 would also match.
pub fn classify(payload: &[u8]) -> Framing {
    if let Some(order) = srp::looks_like_totem(payload) {
        Framing::Totem(order)
    } else if knet::looks_like_knet(payload) {
        Framing::Knet
    } else if let Some(framing) = legacy::detect(payload) {
        Framing::Legacy(framing)
    } else {
        Framing::Unknown
    }
}
