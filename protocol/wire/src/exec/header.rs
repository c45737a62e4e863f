use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{Layer, Result};
use crate::macros::open_enum;

/// Size of `struct qb_ipc_request_header` (`id` @0, `size` @8, each 8-aligned).
pub const EXEC_HEADER_LEN: usize = 16;

open_enum! {
    /// Service ids of corosync 3.1.7 (`include/corosync/corodefs.h`).
    pub enum ServiceId(u16) {
        /// `CMAP_SERVICE`.
        Cmap = 0 => "CMAP",
        /// `CFG_SERVICE`.
        Cfg = 1 => "CFG",
        /// `CPG_SERVICE`.
        Cpg = 2 => "CPG",
        /// `QUORUM_SERVICE` (no exec messages; a sync round only).
        Quorum = 3 => "QUORUM",
        /// `PLOAD_SERVICE`.
        Pload = 4 => "PLOAD",
        /// `VOTEQUORUM_SERVICE`.
        Votequorum = 5 => "VOTEQUORUM",
        /// `MON_SERVICE`.
        Mon = 6 => "MON",
        /// `WD_SERVICE`.
        Wd = 7 => "WD",
        /// EVS: **our extension**, not a corosync 3.1.7 service (3.1.7 drops it silently in
        /// `deliver_fn`); why 48, in `exec::evs`.
        Evs = 0x30 => "EVS",
    }
}

/// `struct qb_ipc_request_header` as the exec layer uses it (spec §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecHeader {
    /// `service << 16 | function` (`SERVICE_ID_MAKE`); a plain number on group "sync".
    pub id: u32,
    /// Total length including the header; informational, not checked by corosync.
    pub size: i32,
}

impl ExecHeader {
    /// A header for `service`/`function` of `size` bytes.
    pub fn new(service: ServiceId, function: u16, size: usize) -> ExecHeader {
        ExecHeader {
            id: (u32::from(u16::from(service)) << 16) | u32::from(function),
            size: size as i32,
        }
    }

    /// Parses the 16-byte header.
    pub fn parse(bytes: &[u8], order: ByteOrder) -> Result<ExecHeader> {
        let mut d = Decoder::new(bytes, order, Layer::Exec);
        let id = d.u32("id")?;
        d.pad(4)?;
        let size = d.i32("size")?;
        d.pad(4)?;
        Ok(ExecHeader { id, size })
    }

    /// The service (high 16 bits of `id`).
    pub fn service(&self) -> ServiceId {
        ((self.id >> 16) as u16).into()
    }

    /// The function (low 16 bits of `id`).
    pub fn function(&self) -> u16 {
        (self.id & 0xFFFF) as u16
    }

    /// Appends the header, padding zeroed.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        let mut e = Encoder::new(out, order);
        e.u32(self.id);
        e.zeros(4);
        e.i32(self.size);
        e.zeros(4);
    }
}
