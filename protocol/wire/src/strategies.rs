//! Proptest strategies for the wire types (here, in the crate that owns the types, so that
//! downstream property tests and ours share one copy of them).

use proptest::collection::vec;
use proptest::prelude::*;

use crate::srp::{
    CommitMemberEntry, Header, MembCommitToken, MembJoin, MembMergeDetect, Message, MessageType,
    OrfToken, RingId, RtrItem, TokenHoldCancel, VERSION,
};
use crate::ByteOrder;

/// Either byte order.
pub fn byte_order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

/// Any ring id.
pub fn ring_id() -> impl Strategy<Value = RingId> {
    (any::<u32>(), any::<u64>()).prop_map(|(rep, seq)| RingId { rep, seq })
}

fn header(order: ByteOrder, message_type: MessageType) -> impl Strategy<Value = Header> {
    (any::<u8>(), any::<u32>(), any::<u32>()).prop_map(move |(encapsulated, nodeid, target)| {
        Header {
            order,
            version: VERSION,
            message_type,
            encapsulated,
            nodeid,
            target_nodeid: target,
        }
    })
}

/// An ORF token with up to 30 retransmit entries.
pub fn orf_token(order: ByteOrder) -> impl Strategy<Value = OrfToken> {
    (
        header(order, MessageType::OrfToken),
        any::<[u32; 6]>(),
        ring_id(),
        any::<i32>(),
        vec((ring_id(), any::<u32>()), 0..=30),
    )
        .prop_map(|(header, v, ring_id, retrans_flg, rtr)| OrfToken {
            header,
            seq: v[0],
            token_seq: v[1],
            aru: v[2],
            aru_addr: v[3],
            ring_id,
            backlog: v[4],
            fcc: v[5],
            retrans_flg,
            rtr_list: rtr
                .into_iter()
                .map(|(ring_id, seq)| RtrItem { ring_id, seq })
                .collect(),
        })
}

/// A JOIN with lists up to 384 entries.
pub fn memb_join(order: ByteOrder) -> impl Strategy<Value = MembJoin> {
    (
        header(order, MessageType::MembJoin),
        any::<u32>(),
        any::<u64>(),
        vec(any::<u32>(), 0..40),
        vec(any::<u32>(), 0..40),
    )
        .prop_map(
            |(header, system_from, ring_seq, proc_list, failed_list)| MembJoin {
                header,
                system_from,
                ring_seq,
                proc_list,
                failed_list,
            },
        )
}

/// A commit token.
pub fn commit_token(order: ByteOrder) -> impl Strategy<Value = MembCommitToken> {
    (
        header(order, MessageType::MembCommitToken),
        any::<u32>(),
        ring_id(),
        any::<u32>(),
        any::<i32>(),
        vec((any::<u32>(), ring_id(), any::<[u32; 3]>()), 0..20),
    )
        .prop_map(
            |(header, token_seq, ring_id, retrans_flg, memb_index, members)| MembCommitToken {
                header,
                token_seq,
                ring_id,
                retrans_flg,
                memb_index,
                addr: members.iter().map(|m| m.0).collect(),
                memb_list: members
                    .iter()
                    .map(|(_, ring_id, v)| CommitMemberEntry {
                        ring_id: *ring_id,
                        aru: v[0],
                        high_delivered: v[1],
                        received_flg: v[2],
                    })
                    .collect(),
            },
        )
}

/// Any fixed-layout totemsrp message (everything but MCAST, whose payload borrows).
pub fn fixed_message(order: ByteOrder) -> impl Strategy<Value = Message<'static>> {
    prop_oneof![
        orf_token(order).prop_map(Message::OrfToken),
        memb_join(order).prop_map(Message::MembJoin),
        commit_token(order).prop_map(Message::MembCommitToken),
        (
            header(order, MessageType::MembMergeDetect),
            any::<u32>(),
            ring_id()
        )
            .prop_map(|(header, system_from, ring_id)| Message::MembMergeDetect(
                MembMergeDetect {
                    header,
                    system_from,
                    ring_id
                }
            )),
        (header(order, MessageType::TokenHoldCancel), ring_id()).prop_map(|(header, ring_id)| {
            Message::TokenHoldCancel(TokenHoldCancel { header, ring_id })
        }),
    ]
}
