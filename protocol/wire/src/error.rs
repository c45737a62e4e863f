//! The one error type of the codec: every failure names the layer, the byte offset where it
//! happened, and what was expected there.

use core::fmt;

/// The protocol layer an error belongs to, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// The capture file or live capture handle.
    Capture,
    /// Ethernet, Linux cooked capture, loopback.
    Link,
    /// IPv4 or IPv6, including fragment reassembly.
    Ip,
    /// UDP.
    Udp,
    /// The kronosnet v1 header and its own fragmentation.
    Knet,
    /// A totemsrp message of corosync 3.x (`struct totem_message_header` and body).
    Totem,
    /// A totemsrp message of corosync 1.x/2.x (endian detector 0xff22).
    LegacyTotem,
    /// A totempg packet (`struct totempg_mcast` and its length list).
    Totempg,
    /// The totempg group prefix ("a", "sync", ...).
    Group,
    /// The exec header (`qb_ipc_request_header` at the head of every service message).
    Exec,
    /// Sync v2 (`exec/sync.c`).
    Sync,
    /// The CPG service (`exec/cpg.c`).
    Cpg,
    /// The CMAP service (`exec/cmap.c`).
    Cmap,
    /// The votequorum service (`exec/votequorum.c`).
    Votequorum,
    /// The CFG service (`exec/cfg.c`).
    Cfg,
    /// The PLOAD service (`exec/pload.c`).
    Pload,
    /// EVS, our extension (corosync 1.4's `services/evs.c`).
    Evs,
    /// libqb IPC between a client library and the daemon.
    Ipc,
}

impl Layer {
    /// Short lower-case name, used in rendered errors and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Capture => "capture",
            Layer::Link => "link",
            Layer::Ip => "ip",
            Layer::Udp => "udp",
            Layer::Knet => "knet",
            Layer::Totem => "totem",
            Layer::LegacyTotem => "totem-legacy",
            Layer::Totempg => "totempg",
            Layer::Group => "group",
            Layer::Exec => "exec",
            Layer::Sync => "sync",
            Layer::Cpg => "cpg",
            Layer::Cmap => "cmap",
            Layer::Votequorum => "votequorum",
            Layer::Cfg => "cfg",
            Layer::Pload => "pload",
            Layer::Evs => "evs",
            Layer::Ipc => "ipc",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fewer bytes than the field needs.
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The first bytes are not a magic this layer knows.
    BadMagic(u32),
    /// A version this codec cannot decode.
    UnsupportedVersion(u32),
    /// A count or length above the protocol's maximum, refused before anything is allocated.
    CountTooLarge {
        /// The field that carried the count.
        field: &'static str,
        /// The count on the wire.
        count: u64,
        /// The largest value the protocol allows.
        max: u64,
    },
    /// Lengths that must agree do not.
    LengthMismatch {
        /// What was being checked.
        field: &'static str,
        /// The length the message claims.
        declared: u64,
        /// The length actually present.
        actual: u64,
    },
    /// A value outside the field's domain.
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value seen.
        value: u64,
    },
}

/// A decode failure: layer, absolute byte offset (from the start of the buffer the caller
/// handed in, after [`Error::add_offset`] by enclosing layers) and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The layer whose bytes were malformed.
    pub layer: Layer,
    /// Offset of the offending field.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// A new error at `offset` of `layer`.
    pub fn new(layer: Layer, offset: usize, kind: ErrorKind) -> Self {
        Error {
            layer,
            offset,
            kind,
        }
    }

    /// The same error, seen from an enclosing buffer in which this one starts at `base`.
    #[must_use]
    pub fn add_offset(mut self, base: usize) -> Self {
        self.offset += base;
        self
    }

    /// A one-line reason without the layer and offset, e.g. `need 4 bytes for seq, have 2`.
    pub fn reason(&self) -> String {
        match &self.kind {
            ErrorKind::Truncated {
                field,
                needed,
                available,
            } => format!("truncated: need {needed} bytes for {field}, have {available}"),
            ErrorKind::BadMagic(m) => format!("bad magic {m:#06x}"),
            ErrorKind::UnsupportedVersion(v) => format!("unsupported version {v}"),
            ErrorKind::CountTooLarge { field, count, max } => {
                format!("{field} = {count} exceeds the maximum {max}")
            }
            ErrorKind::LengthMismatch {
                field,
                declared,
                actual,
            } => format!("{field}: declared {declared} bytes, found {actual}"),
            ErrorKind::InvalidValue { field, value } => format!("invalid {field} {value:#x}"),
        }
    }

    /// Short machine name of the kind, stable for JSON output.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::Truncated { .. } => "truncated",
            ErrorKind::BadMagic(_) => "bad_magic",
            ErrorKind::UnsupportedVersion(_) => "unsupported_version",
            ErrorKind::CountTooLarge { .. } => "count_too_large",
            ErrorKind::LengthMismatch { .. } => "length_mismatch",
            ErrorKind::InvalidValue { .. } => "invalid_value",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.layer,
            self.offset,
            self.reason()
        )
    }
}

impl std::error::Error for Error {}

/// Result of a codec operation.
pub type Result<T> = core::result::Result<T, Error>;
