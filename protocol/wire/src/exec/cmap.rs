//! CMAP's one exec message (`exec/cmap.c`, spec §4.4).

use crate::codec::{align8, ByteOrder, Decoder, Encoder};
use crate::error::{Layer, Result};
use crate::exec::{body_decoder, ExecHeader};
use crate::macros::open_enum;

/// Size of `req_exec_cmap_mcast` before the items.
pub const CMAP_MCAST_FIXED_LEN: usize = 48;
/// Size of an item before its value.
pub const CMAP_ITEM_FIXED_LEN: usize = 280;
/// Bytes of `mar_name_t.value`.
pub const MAR_NAME_VALUE_LEN: usize = 256;
/// Largest value an item may carry: the decoder refuses more before copying
/// (`ICMAP_MAX_VALUE_LEN` is 16 KiB; a little slack for future versions).
pub const CMAP_VALUE_LEN_MAX: u64 = 64 * 1024;

open_enum! {
    /// Why the CMAP message was sent.
    pub enum CmapMcastReason(u8) {
        /// `CMAP_MCAST_REASON_SYNC`.
        Sync = 0 => "SYNC",
        /// `CMAP_MCAST_REASON_NEW_CONFIG_VERSION`.
        NewConfigVersion = 1 => "NEW_CONFIG_VERSION",
    }
}

open_enum! {
    /// `icmap_value_types_t`; 0 on the wire means the key does not exist.
    pub enum CmapValueType(u8) {
        /// Key absent.
        NotExist = 0 => "NOT_EXIST",
        /// i8.
        Int8 = 1 => "INT8",
        /// u8.
        Uint8 = 2 => "UINT8",
        /// i16.
        Int16 = 3 => "INT16",
        /// u16.
        Uint16 = 4 => "UINT16",
        /// i32.
        Int32 = 5 => "INT32",
        /// u32.
        Uint32 = 6 => "UINT32",
        /// i64.
        Int64 = 7 => "INT64",
        /// u64.
        Uint64 = 8 => "UINT64",
        /// f32.
        Float = 9 => "FLOAT",
        /// f64.
        Double = 10 => "DOUBLE",
        /// NUL-terminated string.
        String = 11 => "STRING",
        /// Bytes.
        Binary = 12 => "BINARY",
    }
}

/// One key/value of a CMAP MCAST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmapItem<'a> {
    /// The key name (`mar_name_t`: at most 256 bytes).
    pub key: &'a [u8],
    /// Value type.
    pub value_type: CmapValueType,
    /// Raw value, in the sender's byte order.
    pub value: &'a [u8],
}

impl CmapItem<'_> {
    /// The value rendered for people: integers in the sender's order, strings as text.
    pub fn value_text(&self, order: ByteOrder) -> String {
        let mut d = Decoder::new(self.value, order, Layer::Cmap);
        let text = match self.value_type {
            CmapValueType::NotExist => Some("(not exist)".to_string()),
            CmapValueType::Int8 => d.u8("v").ok().map(|v| (v as i8).to_string()),
            CmapValueType::Uint8 => d.u8("v").ok().map(|v| v.to_string()),
            CmapValueType::Int16 => d.i16("v").ok().map(|v| v.to_string()),
            CmapValueType::Uint16 => d.u16("v").ok().map(|v| v.to_string()),
            CmapValueType::Int32 => d.i32("v").ok().map(|v| v.to_string()),
            CmapValueType::Uint32 => d.u32("v").ok().map(|v| v.to_string()),
            CmapValueType::Int64 => d.u64("v").ok().map(|v| (v as i64).to_string()),
            CmapValueType::Uint64 => d.u64("v").ok().map(|v| v.to_string()),
            CmapValueType::String => {
                let end = self
                    .value
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(self.value.len());
                Some(format!("{:?}", String::from_utf8_lossy(&self.value[..end])))
            }
            _ => None,
        };
        text.unwrap_or_else(|| format!("{} bytes", self.value.len()))
    }
}

/// `req_exec_cmap_mcast`: the sender's copy of keys, sent in sync and on config changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmapMcast<'a> {
    /// Exec header (its `id` is left 0 by corosync, which is CMAP/0 anyway).
    pub header: ExecHeader,
    /// Why it was sent.
    pub reason: CmapMcastReason,
    /// The items.
    pub items: Vec<CmapItem<'a>>,
}

impl<'a> CmapMcast<'a> {
    pub(crate) fn parse_body(
        header: ExecHeader,
        bytes: &'a [u8],
        order: ByteOrder,
    ) -> Result<CmapMcast<'a>> {
        let mut d = body_decoder(bytes, order, Layer::Cmap)?;
        let reason = d.u8("reason")?.into();
        d.pad(7)?;
        let count_offset = d.offset();
        let no_items = d.u8("no_items")?;
        d.pad(7)?;
        d.pad(16)?; // reserved1, reserved2 with their padding
        let n = d.bounded_count(
            "no_items",
            no_items.into(),
            u8::MAX.into(),
            CMAP_ITEM_FIXED_LEN,
            count_offset,
        )?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let start = d.offset();
            let key_len_offset = d.offset();
            let key_len = d.u16("key_name.length")?;
            d.pad(6)?;
            let key_value = d.bytes("key_name.value", MAR_NAME_VALUE_LEN)?;
            let key = key_value.get(..usize::from(key_len)).ok_or_else(|| {
                d.error_at(
                    key_len_offset,
                    crate::error::ErrorKind::CountTooLarge {
                        field: "key_name.length",
                        count: key_len.into(),
                        max: MAR_NAME_VALUE_LEN as u64,
                    },
                )
            })?;
            let value_type = d.u8("value_type")?.into();
            d.pad(7)?;
            let len_offset = d.offset();
            let value_len = d.u64("value_len")?;
            let len = d.bounded_count("value_len", value_len, CMAP_VALUE_LEN_MAX, 1, len_offset)?;
            let value = d.bytes("value", len)?;
            let item_len = align8(CMAP_ITEM_FIXED_LEN + len);
            d.pad(item_len - (d.offset() - start))?;
            items.push(CmapItem {
                key,
                value_type,
                value,
            });
        }
        Ok(CmapMcast {
            header,
            reason,
            items,
        })
    }

    /// Appends the message, padding zeroed.
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header.emit(out, order);
        let mut e = Encoder::new(out, order);
        e.u8(self.reason.into());
        e.zeros(7);
        e.u8(self.items.len() as u8);
        e.zeros(7 + 16);
        for item in &self.items {
            let key_len = item.key.len().min(MAR_NAME_VALUE_LEN);
            e.u16(key_len as u16);
            e.zeros(6);
            e.bytes(&item.key[..key_len]);
            e.zeros(MAR_NAME_VALUE_LEN - key_len);
            e.u8(item.value_type.into());
            e.zeros(7);
            e.u64(item.value.len() as u64);
            e.bytes(item.value);
            let item_len = align8(CMAP_ITEM_FIXED_LEN + item.value.len());
            e.zeros(item_len - CMAP_ITEM_FIXED_LEN - item.value.len());
        }
    }
}
