//! Events: what an agent writes to stdout, one JSON object per line, each with `t`
//! (microseconds since the Unix epoch, or the simulator's virtual clock).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{FlowControlState, Rc};

/// One output line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Line {
    /// When the agent wrote it, µs.
    pub t: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// The events, by `ev`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// First line: the agent is ready for commands.
    Hello {
        pid: u32,
        /// [`crate::PROTOCOL_VERSION`] of the agent; the runner refuses another.
        protocol: u32,
        /// What implements the CPG API (`libcpg.so.4`, `totem-client` ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lib: Option<String>,
    },
    /// The agent cannot work (e.g. no libcpg); it exits with [`crate::EXIT_NO_LIBCPG`].
    Fatal { error: String },
    /// The answer to one command (or the report of an automatic dispatch that failed, or
    /// of a finalize made inside a callback).
    Result(Box<CallResult>),
    /// A confchg callback.
    Confchg {
        handle: String,
        /// The group's identity (its first `length` bytes), escaped.
        group: String,
        members: Vec<Address>,
        left: Vec<Address>,
        joined: Vec<Address>,
    },
    /// A deliver callback; the payload is described, never copied.
    Deliver {
        handle: String,
        group: String,
        nodeid: u32,
        pid: u32,
        len: u64,
        /// First 8 bytes of the payload's SHA-256, hex.
        digest: String,
        /// From the payload's `TCF1` header, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Whether the filler after the header is what the sender put there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intact: Option<bool>,
    },
    /// A totem confchg callback (model v1).
    TotemConfchg {
        handle: String,
        ring: RingId,
        members: Vec<u32>,
    },
    /// An `evs_deliver_fn` callback: the sender's nodeid (EVS-INIT-5) and the payload,
    /// described as for `deliver`.
    EvsDeliver {
        handle: String,
        nodeid: u32,
        len: u64,
        /// First 8 bytes of the payload's SHA-256, hex.
        digest: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intact: Option<bool>,
    },
    /// An `evs_confchg_fn` callback: node lists (EVS-OVW-13).
    EvsConfchg {
        handle: String,
        /// `TRANSITIONAL` or `REGULAR` when the implementation tells (libevs's C callback
        /// cannot: absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        /// The `ring_id` argument; absent when it was NULL (1.4, EVS-CODE-3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ring: Option<RingId>,
        members: Vec<u32>,
        left: Vec<u32>,
        joined: Vec<u32>,
    },
    /// A quorum notification (`quorum_notification_fn_t`; v1: the ring's nodeid too).
    QuorumNotify {
        handle: String,
        quorate: bool,
        /// The ring id's nodeid (model v1 only; v0's callback has the seq alone).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ring_nodeid: Option<u32>,
        ring_seq: u64,
        members: Vec<u32>,
    },
    /// A model v1 nodelist notification.
    QuorumNodelist {
        handle: String,
        ring: RingId,
        members: Vec<u32>,
        joined: Vec<u32>,
        left: Vec<u32>,
    },
    /// A cmap track's notification (`cmap_notify_fn_t`).
    CmapNotify {
        handle: String,
        /// The track's name (`cmap_track_add`'s `name`).
        track: String,
        /// ADD, DELETE, MODIFY (or the number).
        event: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new: Option<crate::svc_types::CmapValue>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<crate::svc_types::CmapValue>,
    },
    /// The cfg shutdown callback fired; `reply` is what the handle's policy answered from
    /// inside it (`yes`, `no`, `none`: no call) and `reply_rc` that call's return code.
    CfgShutdown {
        handle: String,
        flags: String,
        reply: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_rc: Option<Rc>,
    },
    /// A guarded call did not return in time; the agent exits with
    /// [`crate::EXIT_WATCHDOG`] right after this line.
    Watchdog {
        handle: String,
        /// The dispatch mode, as the command gave it.
        mode: String,
        blocked_ms: u64,
    },
}

/// `struct cpg_address`, the reason by name (`UNDEFINED`, `JOIN`, `LEAVE`, `NODEDOWN`,
/// `NODEUP`, `PROCDOWN`, or `REASON_<n>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    pub nodeid: u32,
    pub pid: u32,
    pub reason: String,
}

/// `struct cpg_ring_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RingId {
    pub nodeid: u32,
    pub seq: u64,
}

/// One `cpg_iteration_description_t`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IterationItem {
    pub group: String,
    pub nodeid: u32,
    pub pid: u32,
}

/// A command's answer. No `rc` and no `error`: a guarded dispatch found nothing pending
/// and did not call (`would_block`). An `error` and no `rc`: the agent did not call
/// (a refusal, starting `refused:`, or a bad command).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub cmd: String,
    /// The handle's name, or `0x<hex>` for a `handle_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rc: Option<Rc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub out: Outputs,
}

/// What a call returns besides its return code; each is present only for the commands
/// named (conformance/README.md, "Steps"), and only on CS_OK where libcpg fills it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outputs {
    /// join, leave: the group's identity, escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// membership_get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Address>>,
    /// local_get; evs_membership_get: the local nodeid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodeid: Option<u32>,
    /// context_get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u64>,
    /// fd_get: CS_OK and an open descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_valid: Option<bool>,
    /// flow_control_state_get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<FlowControlState>,
    /// max_atomic_msgsize_get; mcast: bytes per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// dispatch: the mode as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// dispatch: the agent's own dispatch of an `auto_dispatch` handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<bool>,
    /// dispatch: the poll guard found nothing pending; no call was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_block: Option<bool>,
    /// dispatch: `finalize_after` finalized the handle inside a callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalized_in_callback: Option<bool>,
    /// finalize: made inside a callback (`finalize_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_callback: Option<bool>,
    /// zcb_alloc: the returned pointer is not NULL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_null: Option<bool>,
    /// mcast, zcb_mcast: the payload's sender tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// zcb_mcast: the payload's sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// zcb_mcast: bytes sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// mcast: messages sent with CS_OK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// mcast: the first sent message's sequence number (null when none was sent).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<u64>")]
    pub first_seq: Option<Option<u64>>,
    /// mcast: CS_ERR_TRY_AGAIN answers retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub try_again: Option<u64>,
    /// mcast of one message (null when it was not sent), zcb_mcast: the payload's digest.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<String>")]
    pub digest: Option<Option<String>>,
    /// evs_join, evs_leave, evs_mcast_groups: the keys passed, canonical (escaped, trailing
    /// zero bytes dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// evs_membership_get: the member nodeids returned (at most `entries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<u32>>,
    /// quorum_getquorate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorate: Option<bool>,
    /// quorum_initialize: the quorum type (QUORUM_FREE 0, QUORUM_SET 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_type: Option<u32>,
    /// cmap_get: the typed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<crate::svc_types::CmapValue>,
    /// cmap_track_add, cmap_track_delete: the track's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    /// iteration: every description `_next` returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<IterationItem>>,
    /// iteration: what ended the `_next` loop (CS_ERR_NO_SECTIONS at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_end_rc: Option<Rc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize_rc: Option<Rc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_finalize_rc: Option<Rc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize_after_finalize_rc: Option<Rc>,
}

/// A key that is absent (outer `None`), present as `null` (`Some(None)`) or has a value.
mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_output_stays_apart_from_an_absent_one() {
        let r = CallResult {
            cmd: "mcast".into(),
            out: Outputs {
                sent: Some(0),
                first_seq: Some(None),
                ..Outputs::default()
            },
            ..CallResult::default()
        };
        let line = serde_json::to_string(&Event::Result(Box::new(r.clone()))).unwrap();
        assert!(line.contains(r#""first_seq":null"#), "{line}");
        assert!(!line.contains("digest"), "{line}");
        assert_eq!(
            serde_json::from_str::<Event>(&line).unwrap(),
            Event::Result(Box::new(r))
        );
    }

    #[test]
    fn lines_carry_their_time() {
        let l: Line = serde_json::from_str(
            r#"{"t":5,"ev":"totem_confchg","handle":"h1","ring":{"nodeid":1,"seq":8},"members":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(l.t, 5);
        assert!(matches!(l.event, Event::TotemConfchg { ref members, .. } if members == &[1, 2]));
    }
}
