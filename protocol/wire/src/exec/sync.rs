//! Sync v2 messages, carried on group "sync" (`exec/sync.c`, spec §4.3).
//!
//! The header `id` is a plain number here, and sync never byte-swaps: a big-endian sender's
//! sync messages are read in its own order by this codec, which is what the bytes say.

use crate::codec::{ByteOrder, Encoder};
use crate::error::{ErrorKind, Layer, Result};
use crate::exec::{body_decoder, ExecHeader};
use crate::macros::open_enum;
use crate::srp::RingId;

/// Size of BARRIER.
pub const BARRIER_LEN: usize = 32;
/// Size of SERVICE_BUILD.
pub const SERVICE_BUILD_LEN: usize = 552;
/// Entries of SERVICE_BUILD's service array (`SERVICES_COUNT_MAX` × 2).
pub const SERVICE_LIST_MAX: usize = 128;

open_enum! {
    /// Sync v2 message ids (`enum sync_message_req_types`).
    pub enum SyncId(u32) {
        /// `MESSAGE_REQ_SYNC_BARRIER`.
        Barrier = 0 => "BARRIER",
        /// `MESSAGE_REQ_SYNC_SERVICE_BUILD`.
        ServiceBuild = 1 => "SERVICE_BUILD",
    }
}

/// A sync v2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage<'a> {
    /// End of one service's round; the k-th barrier round is the k-th service of the list.
    Barrier {
        /// Header.
        header: ExecHeader,
        /// The ring being synchronised.
        ring_id: RingId,
    },
    /// The sender's list of services with a sync engine.
    ServiceBuild {
        /// Header.
        header: ExecHeader,
        /// The ring being synchronised.
        ring_id: RingId,
        /// Service ids, ascending in corosync's messages.
        services: Vec<i32>,
    },
    /// An id this codec does not know.
    Unknown {
        /// Header.
        header: ExecHeader,
        /// Bytes after the header.
        body: &'a [u8],
    },
}

impl<'a> SyncMessage<'a> {
    /// Parses a message of group "sync".
    pub fn parse(bytes: &'a [u8], order: ByteOrder) -> Result<SyncMessage<'a>> {
        let header = ExecHeader::parse(bytes, order).map_err(|mut e| {
            e.layer = Layer::Sync;
            e
        })?;
        let mut d = body_decoder(bytes, order, Layer::Sync)?;
        match SyncId::from(header.id) {
            SyncId::Barrier => {
                let ring_id = RingId::parse(&mut d)?;
                d.pad(4)?;
                Ok(SyncMessage::Barrier { header, ring_id })
            }
            SyncId::ServiceBuild => {
                let ring_id = RingId::parse(&mut d)?;
                d.pad(4)?;
                let count_offset = d.offset();
                let entries = d.i32("service_list_entries")?;
                d.pad(4)?;
                if !(0..=SERVICE_LIST_MAX as i32).contains(&entries) {
                    return Err(d.error_at(
                        count_offset,
                        ErrorKind::CountTooLarge {
                            field: "service_list_entries",
                            count: u64::from(entries as u32),
                            max: SERVICE_LIST_MAX as u64,
                        },
                    ));
                }
                let mut services = Vec::with_capacity(entries as usize);
                for _ in 0..entries {
                    services.push(d.i32("service_list")?);
                }
                d.bytes("service_list", (SERVICE_LIST_MAX - entries as usize) * 4)?;
                Ok(SyncMessage::ServiceBuild {
                    header,
                    ring_id,
                    services,
                })
            }
            SyncId::Unknown(_) => Ok(SyncMessage::Unknown {
                header,
                body: d.take_rest(),
            }),
        }
    }

    /// The header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            SyncMessage::Barrier { header, .. }
            | SyncMessage::ServiceBuild { header, .. }
            | SyncMessage::Unknown { header, .. } => header,
        }
    }

    /// The ring id, for the two known messages.
    pub fn ring_id(&self) -> Option<RingId> {
        match self {
            SyncMessage::Barrier { ring_id, .. } | SyncMessage::ServiceBuild { ring_id, .. } => {
                Some(*ring_id)
            }
            SyncMessage::Unknown { .. } => None,
        }
    }

    /// `BARRIER`, `SERVICE_BUILD`, or `UNKNOWN(id)`.
    pub fn name(&self) -> String {
        SyncId::from(self.header().id).to_string()
    }

    /// A BARRIER for `ring_id`, as `sync.c::sync_barrier_send` builds it.
    pub fn barrier(ring_id: RingId) -> SyncMessage<'static> {
        SyncMessage::Barrier {
            header: ExecHeader {
                id: 0,
                size: BARRIER_LEN as i32,
            },
            ring_id,
        }
    }

    /// A SERVICE_BUILD for `ring_id` listing `services`.
    pub fn service_build(ring_id: RingId, services: Vec<i32>) -> SyncMessage<'static> {
        SyncMessage::ServiceBuild {
            header: ExecHeader {
                id: 1,
                size: SERVICE_BUILD_LEN as i32,
            },
            ring_id,
            services,
        }
    }

    /// Appends the message, padding zeroed. At most 128 services are written.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header().emit(out, order);
        let mut e = Encoder::new(out, order);
        match self {
            SyncMessage::Barrier { ring_id, .. } => {
                ring_id.emit(&mut e);
                e.zeros(4);
            }
            SyncMessage::ServiceBuild {
                ring_id, services, ..
            } => {
                ring_id.emit(&mut e);
                e.zeros(4);
                let n = services.len().min(SERVICE_LIST_MAX);
                e.i32(n as i32);
                e.zeros(4);
                for s in services.iter().take(n) {
                    e.i32(*s);
                }
                e.zeros((SERVICE_LIST_MAX - n) * 4);
            }
            SyncMessage::Unknown { body, .. } => e.bytes(body),
        }
    }
}
