//! What one decoded frame is: the structure every view (summary, verbose, JSON, stats)
//! renders. Field names here are the JSON contract documented in the README.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use totem_wire::exec::cpg::ConfchgReason;
use totem_wire::srp::MessageType;

/// One frame of the capture, decoded as far as it goes.
#[derive(Debug, Clone, Serialize)]
pub struct FrameRecord {
    /// 1-based frame number in the file.
    pub frame: u64,
    /// Capture time, seconds since the epoch.
    pub ts: f64,
    /// Bytes captured.
    pub caplen: usize,
    /// Source `ip:port`, when the frame is UDP (port 0 for an IP fragment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<SocketAddr>,
    /// Destination `ip:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<SocketAddr>,
    /// `udpu`, `knet`, `legacy`, `ip-fragment`, `other`.
    pub transport: &'static str,
    /// UDP payload length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_len: Option<usize>,
    /// The knet layer, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knet: Option<KnetRecord>,
    /// The totemsrp message, when one was decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totem: Option<TotemRecord>,
    /// Complete totempg messages that this frame finished (with the frames they span).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageRecord>,
    /// Things worth knowing that are not errors: duplicates, discarded pieces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The first layer that failed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
}

impl FrameRecord {
    /// Frame `frame` of `caplen` bytes captured at `ts`, nothing decoded yet.
    pub fn new(frame: u64, ts: f64, caplen: usize) -> FrameRecord {
        FrameRecord {
            frame,
            ts,
            caplen,
            src: None,
            dst: None,
            transport: "other",
            udp_len: None,
            knet: None,
            totem: None,
            messages: Vec::new(),
            notes: Vec::new(),
            error: None,
        }
    }
}

/// A decode failure, as data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorRecord {
    /// The layer (`ip`, `udp`, `knet`, `totem`, `totempg`, `cpg`, ...).
    pub layer: &'static str,
    /// Byte offset from the start of that layer's enclosing buffer (the frame for link/ip,
    /// the UDP payload for knet and totem, the totem payload for totempg, the message for
    /// exec services).
    pub offset: usize,
    /// Machine name of the kind (`truncated`, `bad_magic`, ...).
    pub kind: &'static str,
    /// A sentence.
    pub reason: String,
}

impl From<&totem_wire::Error> for ErrorRecord {
    fn from(e: &totem_wire::Error) -> Self {
        ErrorRecord {
            layer: e.layer.name(),
            offset: e.offset,
            kind: e.kind_name(),
            reason: e.reason(),
        }
    }
}

/// The knet header of a frame.
#[derive(Debug, Clone, Serialize)]
pub struct KnetRecord {
    /// `DATA`, `PING`, `PONG`, `PMTUD`, `PMTUD_REPLY` or `UNKNOWN(0x..)`.
    #[serde(rename = "type")]
    pub packet_type: String,
    /// Sender host id.
    pub node: u16,
    /// DATA: packet sequence number; PING/PONG: the pinger's tx seq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_num: Option<u16>,
    /// DATA: broadcast flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcast: Option<u8>,
    /// DATA: fragment `seq/num` when fragmented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frag: Option<String>,
    /// DATA: channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<u8>,
    /// PING/PONG/PMTUD: link id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<u8>,
    /// PMTUD: probed size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pmtud_size: Option<u16>,
    /// DATA: frames whose fragments made up the totem message (only when reassembled).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reassembled_from: Vec<u64>,
}

/// A totemsrp message.
#[derive(Debug, Clone, Serialize)]
pub struct TotemRecord {
    /// `ORF_TOKEN`, `MCAST`, `MEMB_MERGE_DETECT`, `MEMB_JOIN`, `MEMB_COMMIT_TOKEN`,
    /// `TOKEN_HOLD_CANCEL`, or `UNKNOWN(0x..)` (1.x/2.x: also `RING_TEST_ACTIVE` ...).
    #[serde(rename = "type")]
    pub message_type: Cow<'static, str>,
    /// The type as a value, for filters (1.x/2.x types are mapped to 3.x's numbers).
    #[serde(skip)]
    pub kind: MessageType,
    /// `le` or `be`.
    pub byte_order: &'static str,
    /// Header nodeid (0 in a LEAVE).
    pub nodeid: u32,
    /// Header target_nodeid (garbage on udpu).
    pub target_nodeid: u32,
    /// Type-specific fields.
    #[serde(flatten)]
    pub body: TotemBody,
}

/// A ring id rendered as corosync prints it (`rep.seq`, hex) plus its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RingRecord {
    /// Representative nodeid.
    pub rep: u32,
    /// Ring sequence.
    pub seq: u64,
}

impl From<totem_wire::srp::RingId> for RingRecord {
    fn from(r: totem_wire::srp::RingId) -> Self {
        RingRecord {
            rep: r.rep,
            seq: r.seq,
        }
    }
}

impl std::fmt::Display for RingRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}.{:x}", self.rep, self.seq)
    }
}

/// The fields of each totemsrp message type.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TotemBody {
    /// ORF_TOKEN.
    OrfToken {
        /// Ring.
        ring_id: RingRecord,
        /// Highest seq assigned.
        seq: u32,
        /// Hop counter.
        token_seq: u32,
        /// All received up to.
        aru: u32,
        /// Who lowered aru.
        aru_addr: u32,
        /// Flow-control backlog.
        backlog: u32,
        /// Flow-control count.
        fcc: u32,
        /// Recovery flag.
        retrans_flg: i32,
        /// Retransmit requests.
        rtr: Vec<RtrRecord>,
    },
    /// MCAST.
    Mcast {
        /// Ring.
        ring_id: RingRecord,
        /// Ring-wide seq.
        seq: u32,
        /// Originator.
        system_from: u32,
        /// Sender-local counter.
        this_seqno: i32,
        /// Always 0 in 3.x.
        node_id: u32,
        /// Guarantee (ignored by 3.x).
        guarantee: i32,
        /// Recovery re-send of an old-ring message.
        encapsulated: bool,
        /// The old-ring message inside an encapsulated MCAST.
        #[serde(skip_serializing_if = "Option::is_none")]
        inner: Option<Box<TotemRecord>>,
        /// The totempg packet.
        #[serde(skip_serializing_if = "Option::is_none")]
        pg: Option<PgRecord>,
        /// Frame number of the first copy when this is a duplicate (udpu sends one copy
        /// per member; retransmissions repeat it).
        #[serde(skip_serializing_if = "Option::is_none")]
        duplicate_of: Option<u64>,
    },
    /// MEMB_MERGE_DETECT.
    MergeDetect {
        /// Ring.
        ring_id: RingRecord,
        /// Sender.
        system_from: u32,
    },
    /// MEMB_JOIN.
    Join {
        /// Sender.
        system_from: u32,
        /// Sender's ring seq.
        ring_seq: u64,
        /// Live nodes as the sender sees them.
        proc_list: Vec<u32>,
        /// Failed nodes.
        failed_list: Vec<u32>,
        /// A LEAVE (header nodeid 0).
        leave: bool,
    },
    /// MEMB_COMMIT_TOKEN.
    CommitToken {
        /// The new ring.
        ring_id: RingRecord,
        /// Hop counter.
        token_seq: u32,
        /// Entries filled.
        memb_index: i32,
        /// Members.
        addr: Vec<u32>,
        /// Per-member old-ring state.
        memb_list: Vec<CommitEntryRecord>,
    },
    /// TOKEN_HOLD_CANCEL.
    TokenHoldCancel {
        /// Ring.
        ring_id: RingRecord,
    },
    /// A type we do not know.
    Unknown {
        /// Bytes after the header.
        body_len: usize,
    },
}

/// One retransmit request.
#[derive(Debug, Clone, Serialize)]
pub struct RtrRecord {
    /// Ring.
    pub ring_id: RingRecord,
    /// Missing seq.
    pub seq: u32,
}

/// One commit-token member entry.
#[derive(Debug, Clone, Serialize)]
pub struct CommitEntryRecord {
    /// Old ring.
    pub ring_id: RingRecord,
    /// Old aru.
    pub aru: u32,
    /// Old high delivered.
    pub high_delivered: u32,
    /// Received everything.
    pub received_flg: u32,
}

/// The totempg packet of an MCAST.
#[derive(Debug, Clone, Serialize)]
pub struct PgRecord {
    /// Fragment tag of the last entry, 0 if complete.
    pub fragmented: u8,
    /// Tag the first entry continues, 0 if it starts a message.
    pub continuation: u8,
    /// Entry lengths.
    pub lens: Vec<usize>,
}

/// A whole totempg message, decoded through group and service.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    /// Sending nodeid.
    pub sender: u32,
    /// Frames it was reassembled from (one for an unfragmented message).
    pub frames: Vec<u64>,
    /// Length with the group prefix.
    pub len: usize,
    /// Group names.
    pub groups: Vec<Cow<'static, str>>,
    /// `SERVICE/FUNCTION` (exec), `SYNC/BARRIER` ..., or `RAW` for other groups.
    pub name: Cow<'static, str>,
    /// Service name, for filters and stats (`CPG`, `SYNC`, `CMAP`, ...).
    pub service: Cow<'static, str>,
    /// Decoded fields, in wire order.
    #[serde(skip_serializing_if = "Fields::is_empty")]
    pub detail: Fields,
    /// CPG group the message is about, if one (interned: a capture names few groups).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shared_opt")]
    pub cpg_group: Option<Arc<str>>,
    /// Failure below the totempg layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// What stats and filters read: typed, set by decode from the wire message itself, so
    /// that renaming a field of `detail` (the generic tree the views print) cannot change
    /// them.
    #[serde(skip)]
    pub kind: MessageKind,
}

/// The facts of a totempg message that stats and filters use, by message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MessageKind {
    /// CPG PROCJOIN.
    CpgProcJoin {
        /// The joining process.
        pid: u32,
    },
    /// CPG PROCLEAVE.
    CpgProcLeave {
        /// The leaving process.
        pid: u32,
        /// LEAVE, PROCDOWN ...
        reason: ConfchgReason,
    },
    /// CPG JOINLIST.
    CpgJoinList {
        /// The group of every entry.
        groups: Vec<Arc<str>>,
    },
    /// CPG MCAST: a whole user message.
    CpgMcast {
        /// The sending process.
        pid: u32,
        /// User bytes.
        msglen: u32,
    },
    /// CPG PARTIAL_MCAST: one fragment of a user message.
    CpgPartialMcast {
        /// The sending process.
        pid: u32,
        /// Bytes of the whole user message.
        msglen: u32,
        /// User bytes in this fragment.
        fraglen: u32,
    },
    /// EVS MCAST: ours (exec service 48) or corosync 1.4's (service 0 in 1.x captures).
    EvsMcast {
        /// The target keys, as the sender listed them (duplicates kept).
        groups: Vec<totem_wire::exec::evs::EvsGroup>,
        /// User bytes.
        msg_len: u64,
    },
    /// Anything else (other CPG messages, other services, sync, undecoded).
    #[default]
    Other,
}

impl MessageKind {
    /// User bytes a CPG multicast carries (this fragment's, for a PARTIAL_MCAST).
    pub fn cpg_user_bytes(&self) -> Option<u32> {
        match self {
            MessageKind::CpgMcast { msglen, .. } => Some(*msglen),
            MessageKind::CpgPartialMcast { fraglen, .. } => Some(*fraglen),
            _ => None,
        }
    }
}

/// A stable 64-bit digest of user payloads, so that runs can be compared without printing
/// the data: FNV-1a's constants applied to 8-byte words (little-endian) then to the tail,
/// with a final avalanche; about eight times faster than byte-wise FNV on large messages.
pub fn digest(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(w)).wrapping_mul(0x0100_0000_01b3);
        hash ^= hash >> 29;
    }
    for &b in words.remainder() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash
}

/// A value of a decoded field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// An unsigned number.
    U(u64),
    /// A signed number.
    I(i64),
    /// A flag.
    Bool(bool),
    /// Text.
    Str(String),
    /// A name known at compile time (enum values: `JOIN`, `PROCDOWN` ...).
    Static(&'static str),
    /// An interned name (CPG group names).
    #[serde(serialize_with = "shared")]
    Shared(Arc<str>),
    /// A 64-bit digest, shown as 16 hex digits.
    #[serde(serialize_with = "hex16")]
    Digest(u64),
    /// A list of numbers (nodeids, service ids).
    List(Vec<u64>),
    /// A ring id.
    Ring(RingRecord),
    /// A list of records (joinlist entries, cmap items).
    Records(Vec<Fields>),
    /// A list of names (EVS group keys), shown `[a,b]`.
    Texts(Vec<String>),
}

/// Named fields in a fixed order; serialises as a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(pub Vec<(&'static str, Value)>);

impl Fields {
    /// No fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a field.
    pub fn push(&mut self, name: &'static str, value: Value) -> &mut Self {
        self.0.push((name, value));
        self
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Value {
    /// The text of a textual value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Static(s) => Some(s),
            Value::Shared(s) => Some(s),
            _ => None,
        }
    }
}

fn shared<S: serde::Serializer>(v: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(v)
}

fn shared_opt<S: serde::Serializer>(
    v: &Option<Arc<str>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => serializer.serialize_str(v),
        None => serializer.serialize_none(),
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::U(v) => write!(f, "{v}"),
            Value::I(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(v) => f.write_str(v),
            Value::Static(v) => f.write_str(v),
            Value::Shared(v) => f.write_str(v),
            Value::Digest(v) => write!(f, "{v:016x}"),
            Value::List(v) => {
                f.write_str("[")?;
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}")?;
                }
                f.write_str("]")
            }
            Value::Ring(r) => write!(f, "{r}"),
            Value::Texts(v) => write!(f, "[{}]", v.join(",")),
            Value::Records(records) => {
                f.write_str("[")?;
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str("{")?;
                    for (j, (k, v)) in r.0.iter().enumerate() {
                        if j > 0 {
                            f.write_str(" ")?;
                        }
                        write!(f, "{k}={v}")?;
                    }
                    f.write_str("}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn hex16<S: serde::Serializer>(v: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 16];
    serializer.serialize_str(crate::render::fast::hex16(*v, &mut buf))
}
