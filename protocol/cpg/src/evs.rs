//! The EVS service of corosync 1.4.10 (`services/evs.c`), sans-IO, as docs/evs.md specifies
//! it; row ids (EVS-…) name the behaviour each rule follows.
//!
//! EVS keeps no cluster-wide state: groups are joined by connections and never announced
//! (EVS-OVW-5, EVS-CODE-4); a message names its target groups and every node hands it to its
//! own connections that joined one of them (docs/evs.md §4). Configurations are the totem
//! memberships themselves, transitional and regular (EVS-CODE-2), so EVS needs no sync round
//! and adds nothing to SERVICE_BUILD (docs/evs.md §7.3): mixed rings stay byte-identical.
//! Member lists are the totem members, corosync nodes included, as in 1.4 (§7.3's first
//! option; an announcement message 1.4 never had is not invented).

use std::collections::BTreeMap;

use totem_srp::ConfigurationKind;
use totem_wire::exec::evs::{EvsGroup, EVS_GROUPS_MAX, EVS_MSGLEN_MAX};
use totem_wire::srp::RingId;

/// One EVS connection (`evs_initialize`'s handle, daemon side).
pub type EvsConnId = u64;

/// Most groups one `evs_join` may carry (`message_handler_req_evs_join`, EVS-JOIN-7).
pub const EVS_JOIN_GROUPS_MAX: usize = 50;

/// An EVS call's failure, as libevs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvsError {
    /// `CS_ERR_BAD_HANDLE`: no such connection (EVS-FIN-2).
    BadHandle,
    /// `CS_ERR_TRY_AGAIN`: sync in progress or the totem queue is full (EVS-MJ-11,
    /// EVS-CODE-7).
    TryAgain,
    /// `CS_ERR_TOO_MANY_GROUPS`: more than 50 keys in one join (EVS-JOIN-7).
    TooManyGroups,
    /// `CS_ERR_NOT_EXIST`: a leave named a key not joined (EVS-LEAVE-7).
    NotExist,
    /// `CS_ERR_INVALID_PARAM`: a message over totem's size limit (docs/evs.md §6).
    InvalidParam,
}

/// A configuration as EVS reports it (`evs_confchg_fn`'s lists, docs/evs.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvsConfchg {
    /// Transitional or regular (1.4 does not tell the client; ours keeps it for traces).
    pub kind: ConfigurationKind,
    /// Members, in totem's order.
    pub members: Vec<u32>,
    /// Left (transitional only).
    pub left: Vec<u32>,
    /// Joined (regular only).
    pub joined: Vec<u32>,
    /// The ring. 1.4 drops it (EVS-CODE-3); whether our IPC carries it is open (§7.5).
    pub ring_id: RingId,
}

/// What a local EVS connection receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvsEvent {
    /// `MESSAGE_RES_EVS_DELIVER_CALLBACK` (EVS-OVW-3).
    Deliver {
        /// The receiving connection.
        conn: EvsConnId,
        /// The sender's nodeid (EVS-INIT-5: the field 1.4 calls `local_nodeid`).
        nodeid: u32,
        /// The message.
        data: Vec<u8>,
    },
    /// `MESSAGE_RES_EVS_CONFCHG_CALLBACK` (EVS-OVW-4).
    Confchg {
        /// The receiving connection.
        conn: EvsConnId,
        /// The configuration.
        confchg: EvsConfchg,
    },
}

/// The service's state on one node (`struct evs_pd` per connection, the `confchg_notify`
/// list, the global `res_evs_confchg_callback`).
#[derive(Debug, Default)]
pub(crate) struct Evs {
    next_conn: EvsConnId,
    /// Connections in connection order (ids only grow), each with its joined keys in join
    /// order, duplicates kept (EVS-JOIN-5).
    conns: BTreeMap<EvsConnId, Vec<EvsGroup>>,
    /// The last configuration delivered (what a new connection and `membership_get` see).
    last: Option<EvsConfchg>,
    pub(crate) events: Vec<EvsEvent>,
}

impl Evs {
    /// `evs_lib_init_fn`: a new connection, which gets the last configuration at once
    /// (EVS-CODE-1). Before any configuration 1.4 queued a zeroed, malformed event; we
    /// queue nothing (the first real configuration follows).
    pub(crate) fn connect(&mut self) -> EvsConnId {
        self.next_conn += 1;
        let conn = self.next_conn;
        self.conns.insert(conn, Vec::new());
        if let Some(confchg) = &self.last {
            self.events.push(EvsEvent::Confchg {
                conn,
                confchg: confchg.clone(),
            });
        }
        conn
    }

    /// `evs_lib_exit_fn` (finalize or client death): the connection is gone; nothing is
    /// multicast, nobody else sees anything (EVS-FIN-1, EVS-CODE-4).
    pub(crate) fn disconnect(&mut self, conn: EvsConnId) -> Result<(), EvsError> {
        self.conns
            .remove(&conn)
            .map(drop)
            .ok_or(EvsError::BadHandle)
    }

    /// `message_handler_req_evs_join`: local only, no message, no confchg (EVS-JOIN-2);
    /// duplicates are stored (EVS-JOIN-5); more than 50 keys → TOO_MANY_GROUPS and nothing
    /// joined; 0 keys → OK, nothing changes (1.4's `realloc(p, 0)` bug is not copied,
    /// EVS-JOIN-7).
    pub(crate) fn join(&mut self, conn: EvsConnId, groups: &[EvsGroup]) -> Result<(), EvsError> {
        let joined = self.conns.get_mut(&conn).ok_or(EvsError::BadHandle)?;
        if groups.len() > EVS_JOIN_GROUPS_MAX {
            return Err(EvsError::TooManyGroups);
        }
        joined.extend_from_slice(groups);
        Ok(())
    }

    /// `message_handler_req_evs_leave`: for each key in order, remove the first equal entry
    /// (32-byte compare, EVS-LEAVE-5); the first key not found stops with NOT_EXIST, the
    /// removals before it stay (EVS-LEAVE-7, kept as 1.4 does it).
    pub(crate) fn leave(&mut self, conn: EvsConnId, groups: &[EvsGroup]) -> Result<(), EvsError> {
        let joined = self.conns.get_mut(&conn).ok_or(EvsError::BadHandle)?;
        for g in groups {
            let at = joined
                .iter()
                .position(|j| j == g)
                .ok_or(EvsError::NotExist)?;
            joined.remove(at);
        }
        Ok(())
    }

    /// The connection's joined keys, for `evs_mcast_joined` (EVS-JOIN-3: all of them,
    /// duplicates included).
    pub(crate) fn joined(&self, conn: EvsConnId) -> Result<&[EvsGroup], EvsError> {
        self.conns
            .get(&conn)
            .map(Vec::as_slice)
            .ok_or(EvsError::BadHandle)
    }

    /// Checks an outgoing message against what the wire accepts (so no receiver rejects it).
    pub(crate) fn check_send(groups: usize, len: usize) -> Result<(), EvsError> {
        if groups as u64 > EVS_GROUPS_MAX || len as u64 > EVS_MSGLEN_MAX {
            return Err(EvsError::InvalidParam);
        }
        Ok(())
    }

    /// `message_handler_req_evs_membership_get`: the members of the last configuration seen
    /// (EVS-MEMB-2; empty before any). Truncation to the caller's array is the library's
    /// (EVS-MEMB-5).
    pub(crate) fn members(&self, conn: EvsConnId) -> Result<Vec<u32>, EvsError> {
        if !self.conns.contains_key(&conn) {
            return Err(EvsError::BadHandle);
        }
        Ok(self
            .last
            .as_ref()
            .map(|c| c.members.clone())
            .unwrap_or_default())
    }

    /// `evs_confchg_fn`: every totem configuration, transitional and regular, to every
    /// connection in connection order (EVS-CODE-2, EVS-OVW-14..17), remembered for new
    /// connections and `membership_get`.
    pub(crate) fn confchg(&mut self, confchg: EvsConfchg) {
        for conn in self.conns.keys() {
            self.events.push(EvsEvent::Confchg {
                conn: *conn,
                confchg: confchg.clone(),
            });
        }
        self.last = Some(confchg);
    }

    /// `message_handler_req_exec_mcast`, in agreed order: one delivery per connection whose
    /// joined keys meet the message's (EVS-OVW-22, EVS-INIT-8), the sender's own connections
    /// included only through a matching join (EVS-OVW-25).
    pub(crate) fn on_mcast(&mut self, nodeid: u32, groups: &[EvsGroup], data: &[u8]) {
        for (conn, joined) in &self.conns {
            if joined.iter().any(|j| groups.contains(j)) {
                self.events.push(EvsEvent::Deliver {
                    conn: *conn,
                    nodeid,
                    data: data.to_vec(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &[u8]) -> EvsGroup {
        let mut k = [0u8; 32];
        k[..name.len()].copy_from_slice(name);
        k
    }

    #[test]
    fn join_keeps_duplicates_and_leave_removes_one_copy() {
        // EVS-JOIN-5, EVS-LEAVE-2.
        let mut evs = Evs::default();
        let c = evs.connect();
        evs.join(c, &[key(b"a"), key(b"a")]).unwrap();
        evs.leave(c, &[key(b"a")]).unwrap();
        assert_eq!(evs.joined(c).unwrap(), &[key(b"a")]);
    }

    #[test]
    fn leave_stops_at_the_first_key_not_joined_keeping_earlier_removals() {
        // EVS-LEAVE-7.
        let mut evs = Evs::default();
        let c = evs.connect();
        evs.join(c, &[key(b"a"), key(b"b"), key(b"c")]).unwrap();
        assert_eq!(
            evs.leave(c, &[key(b"a"), key(b"x"), key(b"b")]),
            Err(EvsError::NotExist)
        );
        assert_eq!(evs.joined(c).unwrap(), &[key(b"b"), key(b"c")]);
    }

    #[test]
    fn join_refuses_more_than_50_and_accepts_none() {
        // EVS-JOIN-7.
        let mut evs = Evs::default();
        let c = evs.connect();
        assert_eq!(evs.join(c, &[key(b"a"); 51]), Err(EvsError::TooManyGroups));
        assert!(evs.joined(c).unwrap().is_empty());
        evs.join(c, &[]).unwrap();
        evs.join(c, &[key(b"a"); 50]).unwrap();
        evs.leave(c, &[key(b"a"); 50]).unwrap();
        // After everything was left, an empty join is still OK (no realloc(p, 0) bug).
        evs.join(c, &[]).unwrap();
    }

    #[test]
    fn keys_are_compared_whole() {
        // EVS-JOIN-6: "key1" + zeros is not "key1" + garbage.
        let mut evs = Evs::default();
        let c = evs.connect();
        evs.join(c, &[key(b"key1")]).unwrap();
        let mut other = key(b"key1");
        other[31] = 1;
        evs.on_mcast(2, &[other], b"x");
        assert!(evs.events.is_empty());
        evs.on_mcast(2, &[other, key(b"key1"), key(b"key1")], b"y");
        // Once per connection however many keys match (EVS-INIT-8).
        assert_eq!(
            evs.events,
            [EvsEvent::Deliver {
                conn: c,
                nodeid: 2,
                data: b"y".to_vec()
            }]
        );
    }

    #[test]
    fn a_new_connection_gets_the_last_configuration_and_finalize_is_silent() {
        // EVS-CODE-1, EVS-FIN-1/2.
        let mut evs = Evs::default();
        let early = evs.connect();
        assert!(
            evs.events.is_empty(),
            "no configuration yet: nothing queued"
        );
        let regular = EvsConfchg {
            kind: ConfigurationKind::Regular,
            members: vec![1, 2],
            left: vec![],
            joined: vec![2],
            ring_id: RingId { rep: 1, seq: 8 },
        };
        evs.confchg(regular.clone());
        let late = evs.connect();
        assert_eq!(
            evs.events,
            [
                EvsEvent::Confchg {
                    conn: early,
                    confchg: regular.clone()
                },
                EvsEvent::Confchg {
                    conn: late,
                    confchg: regular
                }
            ]
        );
        assert_eq!(evs.members(late).unwrap(), [1, 2]);
        evs.disconnect(early).unwrap();
        assert_eq!(evs.disconnect(early), Err(EvsError::BadHandle));
        assert_eq!(evs.join(early, &[]), Err(EvsError::BadHandle));
    }
}
