//! Who can have sent a totem message: a datagram that names a node the nodelist does not
//! have, or that claims to come from another node than the one whose address (udpu) or
//! knet host id sent it, cannot come from a member of this ring, and is dropped before the
//! engine sees it.
//!
//! corosync 3.1.7 has no such check: udpu only refuses addresses outside the nodelist
//! (`block_unlisted_ips`) and knet only data from unknown hosts, but the node ids inside
//! the totem message are believed. A listed address sending garbage that happens to parse
//! (a MCAST "from" node 7, a JOIN listing node 9) makes every member enter Gather
//! (`memb_state_gather_enter`, "foreign message in operational state"), and forged or
//! replayed JOINs and tokens "from" the other members keep the ring re-forming: a flood of
//! such datagrams stops delivery (tests/hostile_network.rs). Here, every id a message names
//! must be in the nodelist, and every message but a MCAST must come from the node it names
//! as its sender:
//!
//! * the sender of the ORF token, the commit token, a JOIN, a merge detect and a token hold
//!   cancel is `header.nodeid` (set to `my_id` on every send: `token_send`,
//!   `memb_state_commit_token_send`, `memb_join_message_send`, `memb_merge_detect_transmit`,
//!   `token_hold_cancel_send`), or `system_from` in a LEAVE (`header.nodeid` is 0);
//! * a MCAST is retransmitted by any member with its original sender's header, so only its
//!   ids are checked (`header.nodeid`, `system_from`).
//!
//! And while the ring is Operational, a JOIN, merge detect or MCAST that names a member of
//! it as its sender but another ring (`ring_seq`, `ring_id`) is a replay or a forgery: that
//! member set our ring as its own when it entered Commit (`memb_ring_id_set`), and sends
//! nothing else until it forms a newer ring, which it cannot do without us before our
//! token is lost too. corosync ignores such a JOIN only when its seq is older
//! (`ignore_join_under_operational`: `ring_seq < my_ring_id.seq`) and takes such a
//! MCAST or merge detect as a foreign ring: Gather.
//!
//! Nothing a member of a corosync ring sends is refused: each sends from its own address,
//! a nodelist is static, and a member's view of the ring only moves forward. Dropping a
//! message Totem could have lost anyway costs at most a timeout, never safety. With knet
//! crypto on, forged datagrams do not get this far.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use totem_wire::srp::{Message, RingId};

/// Where a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Our own message, handed back by the transport.
    Loopback,
    /// A udpu datagram from this address.
    Udp(IpAddr),
    /// A knet message from this host.
    Knet(u16),
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It names a node the nodelist does not have.
    Unlisted {
        /// The id.
        nodeid: u32,
    },
    /// A JOIN, merge detect or MCAST "from" a member of our ring, naming another ring than
    /// ours: that member has installed our ring, so it cannot send this any more.
    Stale {
        /// The member it names.
        sender: u32,
        /// The ring seq it names.
        seq: u64,
    },
    /// It claims another sender than the node that sent it.
    Spoofed {
        /// The sender it names.
        claimed: u32,
        /// The node whose address or knet host id it came from.
        transmitter: u32,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Unlisted { nodeid } => {
                write!(f, "it names node {nodeid}, not in the nodelist")
            }
            Refused::Spoofed {
                claimed,
                transmitter,
            } => write!(
                f,
                "it claims to come from node {claimed} but node {transmitter} sent it"
            ),
            Refused::Stale { sender, seq } => write!(
                f,
                "member {sender} of this ring cannot name ring seq {seq:x}"
            ),
        }
    }
}

/// The ring a node is in, for the staleness rule.
#[derive(Debug, Clone, Copy)]
pub struct Ring<'a> {
    /// Operational (the rule applies only then).
    pub operational: bool,
    /// Its id.
    pub id: RingId,
    /// Its members.
    pub members: &'a [u32],
}

/// The nodelist, for the check.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    listed: BTreeSet<u32>,
    by_addr: HashMap<IpAddr, u32>,
}

impl Senders {
    /// Every node of the nodelist with its addresses.
    pub fn new(nodes: impl IntoIterator<Item = (u32, Vec<IpAddr>)>) -> Senders {
        let mut s = Senders::default();
        for (nodeid, addrs) in nodes {
            s.listed.insert(nodeid);
            for a in addrs {
                s.by_addr.insert(a, nodeid);
            }
        }
        s
    }

    fn listed(&self, nodeid: u32) -> Result<(), Refused> {
        if self.listed.contains(&nodeid) {
            Ok(())
        } else {
            Err(Refused::Unlisted { nodeid })
        }
    }

    /// Checks one datagram. A datagram the codec cannot read passes: the engine refuses
    /// and counts it as malformed (so every bad datagram is counted once, as one or the
    /// other).
    pub fn check(&self, source: Source, bytes: &[u8], ring: Ring<'_>) -> Result<(), Refused> {
        let transmitter = match source {
            Source::Loopback => return Ok(()),
            Source::Udp(addr) => self.by_addr.get(&addr).copied(),
            Source::Knet(host) => Some(u32::from(host)),
        };
        let Ok((message, _)) = Message::parse(bytes) else {
            return Ok(());
        };
        // A member of our ring naming another ring, while we are Operational.
        let stale = |sender: u32, seq: u64, other_ring: bool| {
            if ring.operational && other_ring && ring.members.contains(&sender) {
                Err(Refused::Stale { sender, seq })
            } else {
                Ok(())
            }
        };
        let sender = match &message {
            Message::Mcast(m) => {
                self.listed(m.header.nodeid)?;
                self.listed(m.system_from)?;
                // message_handler_mcast: another ring's MCAST is "foreign" and starts a
                // Gather; from a member of ours it is a replay (or a datagram so late that
                // Totem may drop it anyway).
                stale(m.system_from, m.ring_id.seq, m.ring_id != ring.id)?;
                return Ok(());
            }
            Message::MembJoin(join) => {
                for id in join.proc_list.iter().chain(&join.failed_list) {
                    self.listed(*id)?;
                }
                self.listed(join.system_from)?;
                if join.header.nodeid == 0 {
                    // A LEAVE: its sender is system_from.
                    join.system_from
                } else {
                    stale(
                        join.system_from,
                        join.ring_seq,
                        join.ring_seq != ring.id.seq,
                    )?;
                    join.header.nodeid
                }
            }
            Message::MembMergeDetect(m) => {
                // memb_merge_detect_transmit: system_from is the sender (my_id), and a
                // merge detect makes it a candidate member (message_handler_memb_merge_detect).
                self.listed(m.system_from)?;
                stale(m.system_from, m.ring_id.seq, m.ring_id != ring.id)?;
                if m.system_from != m.header.nodeid {
                    return Err(Refused::Spoofed {
                        claimed: m.system_from,
                        transmitter: m.header.nodeid,
                    });
                }
                m.header.nodeid
            }
            Message::MembCommitToken(c) => {
                for id in &c.addr {
                    self.listed(*id)?;
                }
                c.header.nodeid
            }
            Message::OrfToken(t) => t.header.nodeid,
            Message::TokenHoldCancel(t) => t.header.nodeid,
            Message::Unknown { header, .. } => header.nodeid,
        };
        self.listed(sender)?;
        match transmitter {
            Some(t) if t != sender => Err(Refused::Spoofed {
                claimed: sender,
                transmitter: t,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use totem_wire::srp::{Header, MembJoin, MessageType};
    use totem_wire::ByteOrder;

    const NONE: Ring<'static> = Ring {
        operational: false,
        id: RingId { rep: 0, seq: 0 },
        members: &[],
    };

    /// In Operational on ring seq 0x20 with 1, 2, 3: a JOIN of 2 naming seq 8 or 0x24 is
    /// a replay or a forgery; naming ours, or from a node not in the ring, it is not; out
    /// of Operational nothing is stale.
    #[test]
    fn an_older_ring_from_a_member_is_a_replay() {
        let s = senders();
        let ring = Ring {
            operational: true,
            id: RingId { rep: 1, seq: 0x20 },
            members: &[1, 2, 3],
        };
        let joined = |seq: u64, from: u32| {
            let mut b = join(from, from, &[1, 2, 3]);
            // ring_seq follows the header (16 bytes: spec), system_from and the counts.
            let at = b.len() - 12 - 8;
            b[at..at + 8].copy_from_slice(&seq.to_le_bytes());
            b
        };
        assert_eq!(
            s.check(udp(2), &joined(8, 2), ring),
            Err(Refused::Stale { sender: 2, seq: 8 })
        );
        assert_eq!(s.check(udp(2), &joined(0x20, 2), ring), Ok(()));
        assert_eq!(
            s.check(udp(2), &joined(0x24, 2), ring),
            Err(Refused::Stale {
                sender: 2,
                seq: 0x24
            })
        );
        let outside = Ring {
            members: &[1, 3],
            ..ring
        };
        assert_eq!(s.check(udp(2), &joined(8, 2), outside), Ok(()));
        let gather = Ring {
            operational: false,
            ..ring
        };
        assert_eq!(s.check(udp(2), &joined(8, 2), gather), Ok(()));
    }

    fn senders() -> Senders {
        Senders::new((1..=3).map(|n| (n, vec![format!("10.0.0.{n}").parse().unwrap()])))
    }

    fn join(header_nodeid: u32, from: u32, procs: &[u32]) -> Vec<u8> {
        let j = MembJoin {
            header: Header {
                order: ByteOrder::Little,
                version: 3,
                message_type: MessageType::MembJoin,
                encapsulated: 0,
                nodeid: header_nodeid,
                target_nodeid: 0,
            },
            system_from: from,
            ring_seq: 8,
            proc_list: procs.to_vec(),
            failed_list: vec![],
        };
        let mut b = Vec::new();
        Message::MembJoin(j).emit(&mut b);
        b
    }

    fn udp(n: u32) -> Source {
        Source::Udp(format!("10.0.0.{n}").parse().unwrap())
    }

    #[test]
    fn a_member_sending_as_itself_passes() {
        let s = senders();
        assert_eq!(s.check(udp(2), &join(2, 2, &[1, 2, 3]), NONE), Ok(()));
        assert_eq!(s.check(Source::Knet(2), &join(2, 2, &[1, 2]), NONE), Ok(()));
        // A LEAVE names its sender in system_from.
        assert_eq!(s.check(udp(3), &join(0, 3, &[1, 2]), NONE), Ok(()));
        assert_eq!(s.check(Source::Loopback, &join(9, 9, &[9]), NONE), Ok(()));
        // Not a totem message at all: the engine's to count.
        assert_eq!(s.check(udp(1), b"\x01\x02garbage", NONE), Ok(()));
    }

    #[test]
    fn forged_and_foreign_senders_are_refused() {
        let s = senders();
        assert_eq!(
            s.check(udp(1), &join(2, 2, &[1, 2, 3]), NONE),
            Err(Refused::Spoofed {
                claimed: 2,
                transmitter: 1
            })
        );
        assert_eq!(
            s.check(udp(1), &join(0, 3, &[1, 2]), NONE),
            Err(Refused::Spoofed {
                claimed: 3,
                transmitter: 1
            })
        );
        assert_eq!(
            s.check(Source::Knet(1), &join(2, 2, &[1, 2]), NONE),
            Err(Refused::Spoofed {
                claimed: 2,
                transmitter: 1
            })
        );
        assert_eq!(
            s.check(udp(1), &join(1, 1, &[1, 7]), NONE),
            Err(Refused::Unlisted { nodeid: 7 })
        );
        assert_eq!(
            s.check(udp(1), &join(9, 9, &[1]), NONE),
            Err(Refused::Unlisted { nodeid: 9 })
        );
    }
}
