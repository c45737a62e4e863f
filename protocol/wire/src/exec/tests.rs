//! Property tests: every exec and sync message the codec builds re-parses equal, in both
//! byte orders, and never reads past what it was given.

use proptest::collection::vec;
use proptest::prelude::*;

use super::cpg::{
    escape_name, unescape_name, ConfchgReason, CpgMcast, CpgMessage, CpgName, MessageSource,
    CPG_MAX_NAME_LENGTH,
};
use super::*;
use crate::srp::RingId;
use crate::strategies;
use std::hash::BuildHasher;

/// Names as C programs send them: any length up to 128 and whatever bytes follow it.
fn name() -> impl Strategy<Value = CpgName> {
    (
        0..=CPG_MAX_NAME_LENGTH as u32,
        vec(any::<u8>(), CPG_MAX_NAME_LENGTH),
    )
        .prop_map(|(length, value)| CpgName::with_length(&value, length))
}

proptest! {
    #[test]
    fn cpg_messages_round_trip(
        order in strategies::byte_order(),
        group in name(),
        pid in any::<u32>(),
        reason in 0u32..8,
        data in vec(any::<u8>(), 0..512),
        source in (any::<u32>(), any::<u64>()),
    ) {
        let join = CpgMessage::ProcJoin(cpg::ProcJoin {
            header: ExecHeader::new(ServiceId::Cpg, 0, cpg::PROCJOIN_LEN),
            group,
            pid,
            reason: ConfchgReason::from(reason),
        });
        let mcast = CpgMessage::Mcast(CpgMcast {
            header: ExecHeader::new(ServiceId::Cpg, 3, cpg::MCAST_FIXED_LEN + data.len()),
            group,
            msglen: data.len() as u32,
            pid,
            source: MessageSource { nodeid: source.0, conn: source.1 },
            data: &data,
        });
        for message in [join, mcast] {
            let mut bytes = Vec::new();
            message.emit(&mut bytes, order);
            let parsed = ExecMessage::parse(&bytes, order).unwrap();
            // `==` on names is their identity; the bytes after `length` must survive too.
            let mut again = Vec::new();
            parsed.emit(&mut again, order);
            prop_assert_eq!(&again, &bytes);
            if let ExecMessage::Cpg(m) = &parsed {
                prop_assert!(m.group().is_some_and(|g| g.same_bytes(&group)));
            }
            prop_assert_eq!(parsed, ExecMessage::Cpg(message));
        }
    }

    #[test]
    fn sync_messages_round_trip(
        order in strategies::byte_order(),
        ring_id in strategies::ring_id(),
        services in vec(any::<i32>(), 0..=128),
    ) {
        for message in [SyncMessage::barrier(ring_id), SyncMessage::service_build(ring_id, services.clone())] {
            let mut bytes = Vec::new();
            message.emit(&mut bytes, order);
            prop_assert_eq!(SyncMessage::parse(&bytes, order).unwrap(), message);
        }
    }

    #[test]
    fn escaped_names_give_back_their_bytes(bytes in vec(any::<u8>(), 0..=CPG_MAX_NAME_LENGTH)) {
        let text = escape_name(&bytes);
        prop_assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
        prop_assert_eq!(unescape_name(&text).unwrap(), bytes.clone());
        prop_assert_eq!(CpgName::new(&bytes).unwrap().to_string(), text);
    }

    #[test]
    fn exec_parse_never_panics(order in strategies::byte_order(), bytes in vec(any::<u8>(), 0..2048)) {
        let _ = ExecMessage::parse(&bytes, order);
        let _ = SyncMessage::parse(&bytes, order);
    }
}

#[test]
fn barrier_has_corosyncs_size() {
    let mut bytes = Vec::new();
    SyncMessage::barrier(RingId { rep: 1, seq: 5 }).emit(&mut bytes, ByteOrder::Little);
    assert_eq!(bytes.len(), sync::BARRIER_LEN);
    let mut bytes = Vec::new();
    SyncMessage::service_build(RingId { rep: 1, seq: 5 }, vec![0, 2, 3, 5])
        .emit(&mut bytes, ByteOrder::Little);
    assert_eq!(bytes.len(), sync::SERVICE_BUILD_LEN);
}

#[test]
fn a_name_is_its_length_and_first_length_bytes() {
    // corosync's mar_name_compare: {5, "trunkX"} and {5, "trunkY"} are the group "trunk".
    let x = CpgName::with_length(b"trunkX", 5);
    let y = CpgName::with_length(b"trunkY", 5);
    let plain = CpgName::new(b"trunk").unwrap();
    assert_eq!(x, y);
    assert_eq!(x, plain);
    assert!(!x.same_bytes(&y));
    let state = std::collections::hash_map::RandomState::new();
    assert_eq!(state.hash_one(x), state.hash_one(y));
    assert_eq!(x.cmp(&y), std::cmp::Ordering::Equal);
    assert_eq!(x.to_string(), "trunk");
    // Same bytes, other length: another group.
    assert_ne!(CpgName::with_length(b"trunkX", 6), x);
    assert_ne!(CpgName::with_length(b"trunk\0", 6), plain);
    // 128 bytes differing only in the last: two groups.
    let mut a = [b'n'; CPG_MAX_NAME_LENGTH];
    let b = CpgName::new(&a).unwrap();
    a[CPG_MAX_NAME_LENGTH - 1] = b'm';
    assert_ne!(CpgName::new(&a).unwrap(), b);
}

#[test]
fn escaped_names_are_distinct_where_the_bytes_are() {
    // A control byte, and the four characters that spell its escape.
    assert_ne!(escape_name(b"a\x01"), escape_name(b"a\\x01"));
    assert_eq!(escape_name(b"a\x01"), "a\\x01");
    assert_eq!(escape_name(b"a\\x01"), "a\\\\x01");
    assert_eq!(escape_name(&[0xff, 0x00, b'g']), "\\xff\\x00g");
    assert_ne!(escape_name(&[0xff]), escape_name(&[0xfe]));
    assert_eq!(unescape_name("gr\u{fc}\\x00").unwrap(), b"gr\xc3\xbc\x00");
    assert!(unescape_name("a\\n").is_err());
    assert!(unescape_name("a\\x4").is_err());
    assert!(unescape_name("a\\xzz").is_err());
}

#[test]
fn trailing_name_bytes_are_re_emitted() {
    let stack = b"trunkX\xff\x01rest of the stack";
    let group = CpgName::with_length(stack, 5);
    let join = CpgMessage::procjoin(group, 42);
    let mut bytes = Vec::new();
    join.emit(&mut bytes, ByteOrder::Little);
    assert_eq!(&bytes[cpg_name_offset()..][..stack.len()], stack);
    let parsed = ExecMessage::parse(&bytes, ByteOrder::Little).unwrap();
    let mut again = Vec::new();
    parsed.emit(&mut again, ByteOrder::Little);
    assert_eq!(again, bytes);
}

/// Where PROCJOIN's name bytes start: the exec header, then the 8-byte length field.
fn cpg_name_offset() -> usize {
    EXEC_HEADER_LEN + 8
}

/// 32-byte keys as C programs pass them: any bytes, NULs and all.
fn evs_group() -> impl Strategy<Value = evs::EvsGroup> {
    vec(any::<u8>(), evs::EVS_GROUP_LEN).prop_map(|v| {
        let mut g = [0u8; evs::EVS_GROUP_LEN];
        g.copy_from_slice(&v);
        g
    })
}

proptest! {
    #[test]
    fn evs_mcast_round_trips(
        order in strategies::byte_order(),
        groups in vec(evs_group(), 0..8),
        data in vec(any::<u8>(), 0..512),
    ) {
        let message = EvsMessage::Mcast(EvsMcast::new(groups, &data));
        let mut bytes = Vec::new();
        message.emit(&mut bytes, order);
        let EvsMessage::Mcast(m) = &message;
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let parsed = ExecMessage::parse(&bytes, order).unwrap();
        prop_assert_eq!(&parsed, &ExecMessage::Evs(message.clone()));
        let mut again = Vec::new();
        parsed.emit(&mut again, order);
        prop_assert_eq!(again, bytes);
    }
}

#[test]
fn evs_mcast_layout() {
    let mut g1 = [0u8; 32];
    g1[..4].copy_from_slice(b"key1");
    let g2 = [0xa5u8; 32];
    let message = EvsMcast::new(vec![g1, g2], b"hello");
    let mut bytes = Vec::new();
    message.emit(&mut bytes, ByteOrder::Little);
    assert_eq!(bytes.len(), 32 + 64 + 5);
    // id = 48 << 16 | 0, size = 101.
    assert_eq!(&bytes[0..4], &[0, 0, 0x30, 0]);
    assert_eq!(&bytes[8..12], &101i32.to_le_bytes());
    assert_eq!(&bytes[16..24], &2u64.to_le_bytes());
    assert_eq!(&bytes[24..32], &5u64.to_le_bytes());
    assert_eq!(&bytes[32..64], &g1);
    assert_eq!(&bytes[64..96], &g2);
    assert_eq!(&bytes[96..], b"hello");
    let parsed = ExecMessage::parse(&bytes, ByteOrder::Little).unwrap();
    assert_eq!(parsed.name(), "EVS/MCAST");
    // Big endian: the u64 counters are swapped whole (not 1.4's swab32, EVS-CODE-10).
    let mut be = Vec::new();
    message.emit(&mut be, ByteOrder::Big);
    assert_eq!(&be[16..24], &2u64.to_be_bytes());
    assert_eq!(ExecMessage::parse(&be, ByteOrder::Big).unwrap(), parsed);
}

#[test]
fn evs_mcast_truncation_and_bad_counts_are_errors() {
    let message = EvsMcast::new(vec![[7u8; 32]; 3], b"payload");
    let mut bytes = Vec::new();
    message.emit(&mut bytes, ByteOrder::Little);
    // Every shorter prefix fails: msg_len must match exactly what is left.
    for len in 0..bytes.len() {
        let err = ExecMessage::parse(&bytes[..len], ByteOrder::Little).unwrap_err();
        let expected = if len < 32 + 96 {
            "truncated"
        } else {
            "length_mismatch"
        };
        assert_eq!(err.kind_name(), expected, "prefix {len}: {err}");
    }
    // A trailing byte: msg_len no longer matches.
    let mut longer = bytes.clone();
    longer.push(0);
    let err = ExecMessage::parse(&longer, ByteOrder::Little).unwrap_err();
    assert_eq!(err.kind_name(), "length_mismatch");
    // A group count beyond the maximum is refused before any allocation.
    let mut huge = bytes.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = ExecMessage::parse(&huge, ByteOrder::Little).unwrap_err();
    assert_eq!(err.kind_name(), "count_too_large");
    assert_eq!(err.offset, 16);
    // A count within the maximum but beyond the bytes present: truncated.
    let mut many = bytes.clone();
    many[16..24].copy_from_slice(&1000u64.to_le_bytes());
    let err = ExecMessage::parse(&many, ByteOrder::Little).unwrap_err();
    assert_eq!(err.kind_name(), "truncated");
    // Another function of our service: kept raw.
    let mut other = bytes.clone();
    other[0] = 1;
    assert!(matches!(
        ExecMessage::parse(&other, ByteOrder::Little).unwrap(),
        ExecMessage::Unknown { .. }
    ));
}
