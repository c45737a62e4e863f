//! totempg: packing several messages into one MCAST, fragmenting large ones, and the group
//! prefix that routes them (`exec/totempg.c`, spec §3).

mod assembler;
mod groups;
mod packer;
mod packet;

pub use assembler::{Assembled, Assembler, AssemblerLimits, Discarded, Fed};
pub use groups::{GroupPrefix, MAX_GROUPS_PER_MSG};
pub use packer::Packer;
pub use packet::{PgPacket, PG_HEADER_LEN};

#[cfg(test)]
mod tests;
