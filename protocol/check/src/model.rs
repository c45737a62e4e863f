//! The neutral trace: clients, what they sent and delivered, the configurations they saw, and
//! when they or their nodes ended. Nothing here knows a backend; each caller maps its own
//! record into it (the simulator's `TraceEntry` list, the conformance runner's `Trace`).

/// A client: an index into [`Trace::clients`].
pub type ClientId = usize;

/// One receiver and sender of messages: a CPG handle (conformance: `agent.handle`; the
/// simulator: a connection of one daemon incarnation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// How reports name it.
    pub name: String,
    /// The node its daemon runs on.
    pub node: u32,
    /// The pid deliveries of its messages should report, when the caller knows it.
    pub pid: Option<u32>,
}

/// A message's identity. Two deliveries with one `key` are one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The identity, as reports print it (`1.65537.4`, `a.h1#4`).
    pub key: String,
    /// The sender's label and the message's place in the sender's sequence, when the message
    /// carries them; a message without them (conformance: too short for the header) is known
    /// by its content only.
    pub numbered: Option<(String, u64)>,
}

/// One entry of a confchg list (`struct cpg_address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node id.
    pub node: u32,
    /// Process id.
    pub pid: u32,
    /// The reason by name (`JOIN`, `LEAVE`, `NODEDOWN` ...).
    pub reason: String,
}

/// Something a checker needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The client became a member of its group: messages it sends from here on are owed back
    /// to it.
    Joined {
        /// Who.
        client: ClientId,
    },
    /// A send that succeeded.
    Sent {
        /// The sender.
        client: ClientId,
        /// What was sent; `None` for a send known only by its length and content.
        message: Option<Message>,
        /// Its length, when known.
        len: Option<u64>,
        /// Its content digest, when known.
        digest: Option<String>,
    },
    /// A deliver callback.
    Delivered {
        /// The receiver.
        client: ClientId,
        /// The message.
        message: Message,
        /// The pid the callback named as the sender's, when the caller checks it.
        sender_pid: Option<u32>,
        /// Its length, when known.
        len: Option<u64>,
        /// Its content digest, when known.
        digest: Option<String>,
        /// Whether its content was what its header says was sent, when the receiver could
        /// tell.
        intact: Option<bool>,
        /// The totem ring the receiver's node was on, when the caller knows it.
        ring: Option<String>,
    },
    /// A confchg callback.
    Confchg {
        /// The receiver.
        client: ClientId,
        /// The group's exact name bytes (mar_name_compare: a group is its bytes).
        group: Vec<u8>,
        /// Members as (node, pid).
        members: Vec<(u32, u32)>,
        /// Left entries.
        left: Vec<Member>,
        /// Joined entries.
        joined: Vec<Member>,
    },
    /// A regular totem ring as `observer` saw it installed on `node`.
    Ring {
        /// The node that installed it.
        node: u32,
        /// Who reported it (a node, or a client's totem confchg).
        observer: String,
        /// The ring id.
        ring: String,
        /// Its members.
        members: Vec<u32>,
    },
    /// The client left its group.
    Left {
        /// Who.
        client: ClientId,
    },
    /// The client is gone: finalized, or its process ended.
    ClientEnded {
        /// Who.
        client: ClientId,
    },
    /// The node's daemon stopped or crashed, taking its clients with it.
    NodeEnded {
        /// Which node.
        node: u32,
    },
}

/// A fact and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Microseconds on the caller's clock (virtual or wall); events are in the order they
    /// were recorded, which is also the order of their times.
    pub time: i64,
    /// What.
    pub fact: Fact,
}

/// A run as the checkers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Every client the events name.
    pub clients: Vec<Client>,
    /// In recorded order.
    pub events: Vec<Event>,
}

impl Trace {
    /// Adds a client; returns its id.
    pub fn add_client(&mut self, client: Client) -> ClientId {
        self.clients.push(client);
        self.clients.len() - 1
    }

    /// Appends a fact.
    pub fn push(&mut self, time: i64, fact: Fact) {
        self.events.push(Event { time, fact });
    }
}
