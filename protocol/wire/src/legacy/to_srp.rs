//! 1.x/2.x messages in 3.x's types ([`crate::srp`]), so that whoever reads both grammars
//! (the inspector) has one set of types to read.
//!
//! The two grammars carry the same fields in the same order (`exec/totemsrp.c` kept its
//! structs from 1.x to 3.x but for the addresses): 3.x replaced each `struct srp_addr` and
//! each ring representative's `struct totem_ip_address` by the nodeid that 1.x/2.x already
//! put first in them (`srp_addr_to_nodeid`: `addr[0].nodeid`). So the mapping keeps every
//! field but the addresses' IPs and the second ring's slot, and adds nothing:
//!
//! * the header's `version` is the major version of the grammar (1 or 2; 1.x/2.x headers
//!   have no version byte) and its `target_nodeid` 0 (no such field before 3.x);
//! * `message_type` keeps its number: totemrrp's ring-test messages (6, 7) become
//!   [`crate::srp::MessageType::Unknown`], as does any unknown type, with their body;
//! * an encapsulated MCAST keeps its payload, which is a 1.x/2.x MCAST: read it with
//!   [`Mcast::inner`] of this module, not with the 3.x one.

use crate::legacy::{
    Header, LegacyVersion, Mcast, MembCommitToken, MembJoin, MembMergeDetect, Message, OrfToken,
    RingId, SrpAddr, TokenHoldCancel,
};
use crate::srp;

impl LegacyVersion {
    /// The corosync major version: what a mapped header's `version` says.
    pub fn major(self) -> u8 {
        match self {
            LegacyVersion::Corosync1 => 1,
            LegacyVersion::Corosync2 => 2,
        }
    }
}

impl Header {
    /// The header in 3.x's type (see the module doc for `version` and `target_nodeid`).
    pub fn to_srp(&self) -> srp::Header {
        srp::Header {
            order: self.order,
            version: self.version.major(),
            message_type: u8::from(self.message_type).into(),
            encapsulated: self.encapsulated,
            nodeid: self.nodeid,
            target_nodeid: 0,
        }
    }
}

impl RingId {
    /// The ring id with its representative's nodeid for its address.
    pub fn to_srp(&self) -> srp::RingId {
        srp::RingId {
            rep: self.rep.nodeid,
            seq: self.seq,
        }
    }
}

fn nodeids(list: &[SrpAddr]) -> Vec<u32> {
    list.iter().map(SrpAddr::nodeid).collect()
}

impl<'a> Mcast<'a> {
    /// The MCAST in 3.x's type; the payload is the same slice.
    pub fn to_srp(&self) -> srp::Mcast<'a> {
        srp::Mcast {
            header: self.header.to_srp(),
            system_from: self.system_from.nodeid(),
            seq: self.seq,
            this_seqno: self.this_seqno,
            ring_id: self.ring_id.to_srp(),
            node_id: self.node_id,
            guarantee: self.guarantee,
            payload: self.payload,
        }
    }
}

impl<'a> Message<'a> {
    /// The message in 3.x's types (see the module doc for what is dropped).
    pub fn to_srp(&self) -> srp::Message<'a> {
        match self {
            Message::OrfToken(t) => srp::Message::OrfToken(t.to_srp()),
            Message::Mcast(m) => srp::Message::Mcast(m.to_srp()),
            Message::MembMergeDetect(m) => srp::Message::MembMergeDetect(m.to_srp()),
            Message::MembJoin(j) => srp::Message::MembJoin(j.to_srp()),
            Message::MembCommitToken(c) => srp::Message::MembCommitToken(c.to_srp()),
            Message::TokenHoldCancel(t) => srp::Message::TokenHoldCancel(t.to_srp()),
            Message::Unknown { header, body } => srp::Message::Unknown {
                header: header.to_srp(),
                body,
            },
        }
    }
}

impl OrfToken {
    /// The token in 3.x's type.
    pub fn to_srp(&self) -> srp::OrfToken {
        srp::OrfToken {
            header: self.header.to_srp(),
            seq: self.seq,
            token_seq: self.token_seq,
            aru: self.aru,
            aru_addr: self.aru_addr,
            ring_id: self.ring_id.to_srp(),
            backlog: self.backlog,
            fcc: self.fcc,
            retrans_flg: self.retrans_flg,
            rtr_list: self
                .rtr_list
                .iter()
                .map(|r| srp::RtrItem {
                    ring_id: r.ring_id.to_srp(),
                    seq: r.seq,
                })
                .collect(),
        }
    }
}

impl MembMergeDetect {
    /// The merge detect in 3.x's type.
    pub fn to_srp(&self) -> srp::MembMergeDetect {
        srp::MembMergeDetect {
            header: self.header.to_srp(),
            system_from: self.system_from.nodeid(),
            ring_id: self.ring_id.to_srp(),
        }
    }
}

impl MembJoin {
    /// The join in 3.x's type.
    pub fn to_srp(&self) -> srp::MembJoin {
        srp::MembJoin {
            header: self.header.to_srp(),
            system_from: self.system_from.nodeid(),
            ring_seq: self.ring_seq,
            proc_list: nodeids(&self.proc_list),
            failed_list: nodeids(&self.failed_list),
        }
    }
}

impl MembCommitToken {
    /// The commit token in 3.x's type.
    pub fn to_srp(&self) -> srp::MembCommitToken {
        srp::MembCommitToken {
            header: self.header.to_srp(),
            token_seq: self.token_seq,
            ring_id: self.ring_id.to_srp(),
            retrans_flg: self.retrans_flg,
            memb_index: self.memb_index,
            addr: nodeids(&self.addr),
            memb_list: self
                .memb_list
                .iter()
                .map(|e| srp::CommitMemberEntry {
                    ring_id: e.ring_id.to_srp(),
                    aru: e.aru,
                    high_delivered: e.high_delivered,
                    received_flg: e.received_flg,
                })
                .collect(),
        }
    }
}

impl TokenHoldCancel {
    /// The hold cancel in 3.x's type.
    pub fn to_srp(&self) -> srp::TokenHoldCancel {
        srp::TokenHoldCancel {
            header: self.header.to_srp(),
            ring_id: self.ring_id.to_srp(),
        }
    }
}
