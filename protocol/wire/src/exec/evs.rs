//! EVS exec messages: **our extension, not corosync 3.1.7's**. corosync 1.4.10's EVS service
//! (`services/evs.c`, docs/evs.md §4) had one exec message, `MESSAGE_REQ_EXEC_EVS_MCAST`;
//! we carry the same fields under libqb's exec header, with fixed-width counts.
//!
//! **Service id** (docs/evs.md §7.1): 1.4's id 0 is CMAP in 3.1.7, so it cannot be reused.
//! 3.1.7's `main.c` `deliver_fn` returns silently for any service that is not loaded and
//! has no bound check against `SERVICES_COUNT_MAX` (64), so an id must lie in 8..63 for
//! corosync nodes in a mixed ring to drop the message without a word (6 MON and 7 WD are
//! loaded by some builds). We take [`EVS_SERVICE_ID`] = 48 (0x30): inside that range, and
//! far from 8, where corosync would put a next service of its own.
//!
//! Layout of `MCAST` (function 0), in the sender's byte order (docs/evs.md §7.4: the 1.4
//! `size_t` counters become u64s, swapped whole — EVS-CODE-10 is not copied):
//!
//! | off | size | field |
//! | --- | --- | --- |
//! | 0 | 16 | exec header (`id` = 48 << 16, `size` = 32 + 32·n + msg_len) |
//! | 16 | 8 | `group_entries` n |
//! | 24 | 8 | `msg_len` |
//! | 32 | 32·n | the 32-byte group keys, as the sender gave them (duplicates kept) |
//! | 32 + 32·n | msg_len | the message |
//!
//! Unlike 1.4 (EVS-CODE-9, "nothing is checked"), both counts are checked against the bytes
//! present: n against [`EVS_GROUPS_MAX`] and the rest, `msg_len` exactly against what is left.

use crate::codec::{ByteOrder, Encoder};
use crate::error::{ErrorKind, Layer, Result};
use crate::exec::{body_decoder, ExecHeader, ServiceId};

/// Our exec service id for EVS (see the module doc): not a corosync id.
pub const EVS_SERVICE_ID: u16 = 0x30;
/// Size of an EVS group key (`struct evs_group`): compared whole, never as a string.
pub const EVS_GROUP_LEN: usize = 32;
/// Size of MCAST before its group keys.
pub const EVS_MCAST_FIXED_LEN: usize = 32;
/// Most keys one MCAST may carry: as many as fit in 1.4's 1 MiB request buffer.
pub const EVS_GROUPS_MAX: u64 = (1 << 20) / EVS_GROUP_LEN as u64;
/// Largest message one MCAST may carry: totempg's assembly buffer, as for CPG.
pub const EVS_MSGLEN_MAX: u64 = crate::exec::cpg::MSGLEN_MAX;

/// A 32-byte EVS group key (`struct evs_group`, EVS-JOIN-6): the whole key is the identity.
pub type EvsGroup = [u8; EVS_GROUP_LEN];

/// Every EVS exec message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsMessage<'a> {
    /// `MESSAGE_REQ_EXEC_EVS_MCAST` (function 0).
    Mcast(EvsMcast<'a>),
}

/// `req_exec_evs_mcast`: a message and the groups it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvsMcast<'a> {
    /// Header.
    pub header: ExecHeader,
    /// The target groups, in the sender's order.
    pub groups: Vec<EvsGroup>,
    /// The message.
    pub data: &'a [u8],
}

impl<'a> EvsMcast<'a> {
    /// An MCAST of `data` to `groups`, its header sized to match.
    pub fn new(groups: Vec<EvsGroup>, data: &'a [u8]) -> EvsMcast<'a> {
        let size = EVS_MCAST_FIXED_LEN + EVS_GROUP_LEN * groups.len() + data.len();
        EvsMcast {
            header: ExecHeader::new(ServiceId::Evs, 0, size),
            groups,
            data,
        }
    }

    /// Bytes [`EvsMcast::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        EVS_MCAST_FIXED_LEN + EVS_GROUP_LEN * self.groups.len() + self.data.len()
    }

    /// Appends the message.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header.emit(out, order);
        let mut e = Encoder::new(out, order);
        e.u64(self.groups.len() as u64);
        e.u64(self.data.len() as u64);
        for g in &self.groups {
            e.bytes(g);
        }
        e.bytes(self.data);
    }
}

impl<'a> EvsMessage<'a> {
    /// Parses the body after `header`; `None` for a function we do not know.
    pub(crate) fn parse_body(
        header: ExecHeader,
        bytes: &'a [u8],
        order: ByteOrder,
    ) -> Result<Option<EvsMessage<'a>>> {
        if header.function() != 0 {
            return Ok(None);
        }
        let mut d = body_decoder(bytes, order, Layer::Evs)?;
        let count_offset = d.offset();
        let count = d.u64("group_entries")?;
        let len_offset = d.offset();
        let len = d.u64("msg_len")?;
        let count =
            d.bounded_count("groups", count, EVS_GROUPS_MAX, EVS_GROUP_LEN, count_offset)?;
        let mut groups = Vec::with_capacity(count);
        for _ in 0..count {
            groups.push(d.array::<EVS_GROUP_LEN>("group")?);
        }
        if len > EVS_MSGLEN_MAX {
            return Err(d.error_at(
                len_offset,
                ErrorKind::CountTooLarge {
                    field: "msg_len",
                    count: len,
                    max: EVS_MSGLEN_MAX,
                },
            ));
        }
        if len != d.remaining() as u64 {
            return Err(d.error_at(
                len_offset,
                ErrorKind::LengthMismatch {
                    field: "msg_len",
                    declared: len,
                    actual: d.remaining() as u64,
                },
            ));
        }
        let data = d.take_rest();
        Ok(Some(EvsMessage::Mcast(EvsMcast {
            header,
            groups,
            data,
        })))
    }

    /// The header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            EvsMessage::Mcast(m) => &m.header,
        }
    }

    /// The function's name (1.4's, without its prefix).
    pub fn function_name(&self) -> &'static str {
        match self {
            EvsMessage::Mcast(_) => "MCAST",
        }
    }

    /// Appends the message.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        match self {
            EvsMessage::Mcast(m) => m.emit(out, order),
        }
    }
}
