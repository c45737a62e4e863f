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
