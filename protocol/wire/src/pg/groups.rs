use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{Layer, Result};

/// `MAX_GROUPS_PER_MSG`: a message names at most 32 groups.
pub const MAX_GROUPS_PER_MSG: u64 = 32;

/// The group prefix of a totempg message (spec §3.4): which groups it is for.
/// corosync 3.1.7 uses two: `"a"` (exec messages) and `"sync"` (sync v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPrefix<'a> {
    /// Group names, as bytes (no terminators on the wire).
    pub groups: Vec<&'a [u8]>,
}

impl<'a> GroupPrefix<'a> {
    /// The group of every exec message.
    pub const EXEC: &'static [u8] = b"a";
    /// The group of sync v2 messages.
    pub const SYNC: &'static [u8] = b"sync";

    /// Parses the prefix; returns it and the group payload after it.
    pub fn parse(bytes: &'a [u8], order: ByteOrder) -> Result<(GroupPrefix<'a>, &'a [u8])> {
        let mut d = Decoder::new(bytes, order, Layer::Group);
        let count_offset = d.offset();
        let raw = d.u16("group_count")?;
        let count = d.bounded_count(
            "group_count",
            raw.into(),
            MAX_GROUPS_PER_MSG,
            2,
            count_offset,
        )?;
        let mut lens = Vec::with_capacity(count);
        for _ in 0..count {
            lens.push(usize::from(d.u16("group_len")?));
        }
        let mut groups = Vec::with_capacity(count);
        for len in lens {
            groups.push(d.bytes("group_name", len)?);
        }
        Ok((GroupPrefix { groups }, d.take_rest()))
    }

    /// A prefix naming one group.
    pub fn single(group: &'a [u8]) -> GroupPrefix<'a> {
        GroupPrefix {
            groups: vec![group],
        }
    }

    /// Is `group` among the named groups (exact length and bytes: `group_matches`)?
    pub fn contains(&self, group: &[u8]) -> bool {
        self.groups.contains(&group)
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        2 + self.groups.iter().map(|g| 2 + g.len()).sum::<usize>()
    }

    /// Appends the prefix.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        let mut e = Encoder::new(out, order);
        e.u16(self.groups.len() as u16);
        for g in &self.groups {
            e.u16(g.len() as u16);
        }
        for g in &self.groups {
            e.bytes(g);
        }
    }
}
