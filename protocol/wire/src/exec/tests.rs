//! Property tests: every exec and sync message the codec builds re-parses equal, in both
//! byte orders, and never reads past what it was given.

use proptest::collection::vec;
use proptest::prelude::*;

use super::cpg::{ConfchgReason, CpgMcast, CpgMessage, CpgName, MessageSource};
use super::*;
use crate::srp::RingId;
use crate::strategies;

fn name() -> impl Strategy<Value = CpgName> {
    vec(any::<u8>(), 0..=128).prop_map(|n| CpgName::new(&n).unwrap())
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
