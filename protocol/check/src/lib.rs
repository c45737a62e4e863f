//! The invariant checkers of CPG over Totem, written once: the simulator's sweep and every
//! conformance backend (corosync, sim, native, mixed) map what they recorded into one neutral
//! [`Trace`] and call the same functions.
//!
//! The rules come from cpg_overview(3)/cpg_mcast_joined(3) ("messages are delivered in the
//! same order to all members", self delivery, the confchg lists of cpg_initialize(3)) and the
//! Totem/EVS guarantees corosync builds on (agreed order, virtual synchrony).
//!
//! The two callers observe different things, and where that makes the property's premise
//! differ the difference is a [`Rules`] field, not a second checker: the simulator sees every
//! node's totem ring and tags each delivery with it, the conformance runner sees only what a
//! client sees (its confchgs); the simulator's faults cut senders off mid-flight, a scenario's
//! steps do not.

mod checks;
mod model;

pub use checks::{
    agreed_order, check, confchg_consistency, confchg_reasons, fifo, no_duplicates, no_invented,
    self_delivery, totem_rings, virtual_synchrony, Divergence,
};
pub use model::{Client, ClientId, Event, Fact, Member, Message, Trace};

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The properties, by the names scenarios disable them with (`checks.disable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Any two clients deliver their common messages in the same order.
    AgreedOrder,
    /// Clients of one group that pass together from one configuration to the next delivered
    /// the same set in it.
    VirtualSynchrony,
    /// One sender's messages arrive in the order sent (and, under [`Rules::fifo_gaps`],
    /// without gaps inside a configuration).
    Fifo,
    /// A joined sender receives its own messages.
    SelfDelivery,
    /// No message is delivered twice to one client.
    NoDuplicates,
    /// Every delivered message was sent (sender, sequence, length and content match).
    NoInvented,
    /// members = previous members + joined - left, on every confchg.
    ConfchgConsistency,
    /// joined entries carry JOIN/NODEUP, left entries LEAVE/NODEDOWN/PROCDOWN.
    ConfchgReasons,
    /// One ring id always comes with one member list.
    TotemRings,
}

impl Check {
    /// Every check, in the order [`check`] runs them.
    pub const ALL: [Self; 9] = [
        Self::AgreedOrder,
        Self::VirtualSynchrony,
        Self::Fifo,
        Self::SelfDelivery,
        Self::NoDuplicates,
        Self::NoInvented,
        Self::ConfchgConsistency,
        Self::ConfchgReasons,
        Self::TotemRings,
    ];

    /// The name in traces, reports and scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgreedOrder => "agreed_order",
            Self::VirtualSynchrony => "virtual_synchrony",
            Self::Fifo => "fifo",
            Self::SelfDelivery => "self_delivery",
            Self::NoDuplicates => "no_duplicates",
            Self::NoInvented => "no_invented",
            Self::ConfchgConsistency => "confchg_consistency",
            Self::ConfchgReasons => "confchg_reasons",
            Self::TotemRings => "totem_rings",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Check {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown check {s:?}; one of {:?}",
                    Self::ALL.map(Self::as_str)
                )
            })
    }
}

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which property.
    pub check: Check,
    /// What broke it, in words.
    pub detail: String,
    /// The client the violation is about, when it is about one (self delivery: the sender),
    /// so that a caller can classify it without parsing `detail`.
    pub client: Option<ClientId>,
}

/// What a configuration is, for virtual synchrony and FIFO gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Configurations {
    /// A client's CPG views: it passes from one confchg of a group to the next of the same
    /// group, and what it delivered between them was delivered in the first. Clients pass
    /// "together" when their views' member lists match and it is the same (n-th) such step
    /// on each. All a client of libcpg sees; the conformance runner's notion.
    Confchg,
    /// The totem rings of the clients' nodes ([`Fact::Ring`], [`Fact::Delivered::ring`]):
    /// a client passes from ring R to R' when its node installed R then R', and it was a
    /// member (first confchg) before R began there and did not leave, end or lose its node
    /// before R' began. The simulator's notion: it sees every node's ring, and a ring is
    /// the configuration EVS's virtual synchrony is stated over.
    Rings,
}

/// Which messages a sender is owed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfDeliveryWindow {
    /// Every message sent after its own join confchg and before its first leave, end or node
    /// end: a scenario ends clients by steps that come after what they sent has arrived,
    /// so even a message sent just before such an end must come back.
    UntilFirstEnd,
    /// Every message after which the sender never leaves, ends or loses its node: the
    /// simulator crashes nodes and closes clients at random, in the middle of traffic, so
    /// any end after a send may rightly have taken it.
    UnlessEndedLater,
}

/// The premises that differ between callers (see [`Configurations`], [`SelfDeliveryWindow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// What a configuration is.
    pub configurations: Configurations,
    /// Whether FIFO also requires no gap inside one configuration: a sender's next message,
    /// if sent, must come next. Without it only the order is checked (the simulator's
    /// totempg loses a message cut across a ring change on the nodes without its start, as
    /// corosync does; virtual synchrony reports and classifies that).
    pub fifo_gaps: bool,
    /// Which messages a sender is owed back.
    pub self_delivery: SelfDeliveryWindow,
}

impl Rules {
    /// The conformance runner's premises: configurations as clients see them.
    pub const CONFORMANCE: Rules = Rules {
        configurations: Configurations::Confchg,
        fifo_gaps: true,
        self_delivery: SelfDeliveryWindow::UntilFirstEnd,
    };

    /// The simulator's premises: configurations are totem rings.
    pub const SIMULATOR: Rules = Rules {
        configurations: Configurations::Rings,
        fifo_gaps: false,
        self_delivery: SelfDeliveryWindow::UnlessEndedLater,
    };
}
