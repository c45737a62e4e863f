//! CPG exec messages (service 2, `exec/cpg.c`, spec §5).

use core::fmt;

use crate::codec::{ByteOrder, Decoder, Encoder};
use crate::error::{ErrorKind, Layer, Result};
use crate::exec::{body_decoder, ExecHeader, ServiceId};
use crate::macros::open_enum;
use crate::srp::PROCESSOR_COUNT_MAX;

/// `CPG_MAX_NAME_LENGTH`.
pub const CPG_MAX_NAME_LENGTH: usize = 128;
/// Size of `mar_cpg_name_t`.
pub const CPG_NAME_LEN: usize = 136;
/// Fixed size of PROCJOIN and PROCLEAVE.
pub const PROCJOIN_LEN: usize = 168;
/// Size of MCAST before the user data.
pub const MCAST_FIXED_LEN: usize = 184;
/// Size of PARTIAL_MCAST before the piece.
pub const PARTIAL_MCAST_FIXED_LEN: usize = 200;
/// Size of DOWNLIST (fn 5).
pub const DOWNLIST_LEN: usize = 1568;
/// Size of DOWNLIST_OLD (fn 4).
pub const DOWNLIST_OLD_LEN: usize = 1560;
/// Size of the JOINLIST response header (`qb_ipc_response_header`).
pub const JOINLIST_HEADER_LEN: usize = 24;
/// Size of one JOINLIST entry.
pub const JOINLIST_ENTRY_LEN: usize = 144;
/// Largest piece libcpg sends as one message: `IPC_REQUEST_SIZE` − 1024.
pub const MAX_ATOMIC_MSG_LEN: u64 = 1_047_552;
/// Largest user data one CPG exec message can carry: totempg's assembly buffer,
/// `MESSAGE_SIZE_MAX` (1 MiB) + `KNET_MAX_PACKET_SIZE` (64 KiB).
pub const MSGLEN_MAX: u64 = (1 << 20) + (1 << 16);

open_enum! {
    /// Exec functions of the CPG service (`enum cpg_message_req_types`).
    pub enum CpgFunction(u16) {
        /// `MESSAGE_REQ_EXEC_CPG_PROCJOIN`.
        ProcJoin = 0 => "PROCJOIN",
        /// `MESSAGE_REQ_EXEC_CPG_PROCLEAVE`.
        ProcLeave = 1 => "PROCLEAVE",
        /// `MESSAGE_REQ_EXEC_CPG_JOINLIST`.
        JoinList = 2 => "JOINLIST",
        /// `MESSAGE_REQ_EXEC_CPG_MCAST`.
        Mcast = 3 => "MCAST",
        /// `MESSAGE_REQ_EXEC_CPG_DOWNLIST_OLD`.
        DownlistOld = 4 => "DOWNLIST_OLD",
        /// `MESSAGE_REQ_EXEC_CPG_DOWNLIST`.
        Downlist = 5 => "DOWNLIST",
        /// `MESSAGE_REQ_EXEC_CPG_PARTIAL_MCAST`.
        PartialMcast = 6 => "PARTIAL_MCAST",
    }
}

open_enum! {
    /// `enum lib_cpg_confchg_reason`, as carried by PROCJOIN/PROCLEAVE and confchg events.
    pub enum ConfchgReason(u32) {
        /// `CPG_REASON_UNDEFINED`: member lists carry it.
        Undefined = 0 => "UNDEFINED",
        /// `CPG_REASON_JOIN`.
        Join = 1 => "JOIN",
        /// `CPG_REASON_LEAVE`.
        Leave = 2 => "LEAVE",
        /// `CPG_REASON_NODEDOWN`.
        NodeDown = 3 => "NODEDOWN",
        /// `CPG_REASON_NODEUP`.
        NodeUp = 4 => "NODEUP",
        /// `CPG_REASON_PROCDOWN`.
        ProcDown = 5 => "PROCDOWN",
    }
}

open_enum! {
    /// `type` of a PARTIAL_MCAST piece (`LIBCPG_PARTIAL_*`).
    pub enum PartialType(u32) {
        /// `LIBCPG_PARTIAL_FIRST`.
        First = 1 => "FIRST",
        /// `LIBCPG_PARTIAL_CONTINUED`.
        Continued = 2 => "CONTINUED",
        /// `LIBCPG_PARTIAL_LAST`.
        Last = 3 => "LAST",
    }
}

/// `mar_cpg_name_t`: a length and 128 bytes.
///
/// A group is named by its length and its first `length` bytes: corosync compares names with
/// `mar_name_compare` (include/corosync/ipc_cpg.h: equal lengths, then `memcmp` over
/// `length` bytes) everywhere in exec/cpg.c, and libcpg copies the whole 128-byte array of
/// the caller's `struct cpg_name` (`marshall_to_mar_cpg_name_t`), so the bytes after
/// `length` are whatever the program left there. Equality, hashing, ordering and display
/// therefore see only that identity; the array is still kept whole, so a name is re-emitted
/// byte for byte ([`CpgName::same_bytes`] compares the whole array).
#[derive(Clone, Copy)]
pub struct CpgName {
    /// The length field; may exceed 128 in a malformed message.
    pub length: u32,
    /// The value array, bytes past `length` included.
    pub value: [u8; CPG_MAX_NAME_LENGTH],
}

impl CpgName {
    /// The empty name (length 0, zero bytes): an unjoined connection's.
    pub const EMPTY: CpgName = CpgName {
        length: 0,
        value: [0; CPG_MAX_NAME_LENGTH],
    };

    /// A name from bytes; `None` when longer than 128 (`CS_ERR_NAME_TOO_LONG`).
    pub fn new(name: &[u8]) -> Option<CpgName> {
        let mut value = [0u8; CPG_MAX_NAME_LENGTH];
        value.get_mut(..name.len())?.copy_from_slice(name);
        Some(CpgName {
            length: name.len() as u32,
            value,
        })
    }

    /// The C struct as a program fills it: `length` as given (it may be shorter than the
    /// bytes, or beyond 128), the array holding the first 128 of `bytes` and zeros after.
    pub fn with_length(bytes: &[u8], length: u32) -> CpgName {
        let mut value = [0u8; CPG_MAX_NAME_LENGTH];
        let n = bytes.len().min(CPG_MAX_NAME_LENGTH);
        value[..n].copy_from_slice(&bytes[..n]);
        CpgName { length, value }
    }

    /// The meaningful bytes (at most 128 even when `length` claims more).
    pub fn as_bytes(&self) -> &[u8] {
        let len = (self.length as usize).min(CPG_MAX_NAME_LENGTH);
        &self.value[..len]
    }

    /// Does `length` exceed the array? corosync rejects such names at the library.
    pub fn is_overlong(&self) -> bool {
        self.length as usize > CPG_MAX_NAME_LENGTH
    }

    /// The whole struct equal, the bytes after `length` included (`==` compares identity).
    pub fn same_bytes(&self, other: &CpgName) -> bool {
        self.length == other.length && self.value == other.value
    }

    pub(crate) fn parse(d: &mut Decoder<'_>) -> Result<CpgName> {
        let length = d.u32("group_name.length")?;
        d.pad(4)?;
        let value = d.array::<CPG_MAX_NAME_LENGTH>("group_name.value")?;
        Ok(CpgName { length, value })
    }

    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        e.u32(self.length);
        e.zeros(4);
        e.bytes(&self.value);
    }
}

impl PartialEq for CpgName {
    /// `mar_name_compare`: same length, same first `length` bytes.
    fn eq(&self, other: &CpgName) -> bool {
        self.length == other.length && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CpgName {}

impl core::hash::Hash for CpgName {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.length.hash(state);
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for CpgName {
    fn partial_cmp(&self, other: &CpgName) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CpgName {
    /// By the meaningful bytes, then the length (which differs only for overlong names):
    /// groups sort as their names read.
    fn cmp(&self, other: &CpgName) -> core::cmp::Ordering {
        self.as_bytes()
            .cmp(other.as_bytes())
            .then(self.length.cmp(&other.length))
    }
}

impl fmt::Debug for CpgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_overlong() {
            write!(f, "CpgName(length {}, \"{self}\")", self.length)
        } else {
            write!(f, "CpgName(\"{self}\")")
        }
    }
}

impl fmt::Display for CpgName {
    /// The meaningful bytes escaped as [`escape_name`] does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.as_bytes())
    }
}

/// A group name's bytes as text that keeps them all: printable ASCII as is, `\` for a
/// backslash, `\xNN` (lower-case hex) for every other byte. Distinct names give distinct
/// text, and [`unescape_name`] reverses it. Names are bytes, not text: a lossy conversion
/// would make `"\xff"` and `"\xfe"` one group in a trace.
pub fn escape_name(bytes: &[u8]) -> String {
    struct Escaped<'a>(&'a [u8]);
    impl fmt::Display for Escaped<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_escaped(f, self.0)
        }
    }
    Escaped(bytes).to_string()
}

fn write_escaped(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'\\';
    // The common case, a printable ASCII name, in one write.
    if bytes.iter().all(|&b| plain(b)) {
        return f.write_str(core::str::from_utf8(bytes).map_err(|_| fmt::Error)?);
    }
    for &b in bytes {
        if plain(b) {
            f.write_char(b as char)?;
        } else if b == b'\\' {
            f.write_str("\\\\")?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// The bytes of an escaped name: `\\` is a backslash, `\xNN` a byte, any other character
/// its UTF-8 bytes (so `"grüße"` names the group of those bytes). Any other backslash
/// sequence is an error.
pub fn unescape_name(text: &str) -> core::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let tail = &rest[at + 1..];
        if let Some(after) = tail.strip_prefix('\\') {
            out.push(b'\\');
            rest = after;
        } else if let Some(hex) = tail.strip_prefix('x').and_then(|h| h.get(..2)) {
            let byte = u8::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or_else(|| format!("bad escape \\x{hex} in group name {text:?}"))?;
            out.push(byte);
            rest = &tail[3..];
        } else {
            return Err(format!(
                "bad escape in group name {text:?}: only \\\\ and \\xNN are known"
            ));
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// `mar_message_source_t`: the sender's nodeid and its local IPC connection pointer
/// (meaningless to others, kept for exact round trips).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageSource {
    /// Sending nodeid.
    pub nodeid: u32,
    /// The sender's `conn` pointer.
    pub conn: u64,
}

impl MessageSource {
    fn parse(d: &mut Decoder<'_>) -> Result<MessageSource> {
        let nodeid = d.u32("source.nodeid")?;
        d.pad(4)?;
        Ok(MessageSource {
            nodeid,
            conn: d.u64("source.conn")?,
        })
    }

    fn emit(&self, e: &mut Encoder<'_>) {
        e.u32(self.nodeid);
        e.zeros(4);
        e.u64(self.conn);
    }
}

/// PROCJOIN or PROCLEAVE (`req_exec_cpg_procjoin`, 168 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcJoin {
    /// Exec header.
    pub header: ExecHeader,
    /// The group.
    pub group: CpgName,
    /// The process.
    pub pid: u32,
    /// JOIN for a join; LEAVE or PROCDOWN for a leave.
    pub reason: ConfchgReason,
}

/// One entry of a JOINLIST: a process of the sender and its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinListEntry {
    /// The process.
    pub pid: u32,
    /// Its group.
    pub group: CpgName,
}

/// JOINLIST: the sender's own processes, sent during sync (response header + entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinList {
    /// Exec header (`id`, `size` of the response header).
    pub header: ExecHeader,
    /// The response header's `error` field, 0.
    pub error: i32,
    /// The processes.
    pub entries: Vec<JoinListEntry>,
}

/// MCAST (`req_exec_cpg_mcast`): one application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpgMcast<'a> {
    /// Exec header.
    pub header: ExecHeader,
    /// The group.
    pub group: CpgName,
    /// Length of the user data.
    pub msglen: u32,
    /// Sending process.
    pub pid: u32,
    /// Sending node and its connection.
    pub source: MessageSource,
    /// The user data.
    pub data: &'a [u8],
}

/// PARTIAL_MCAST: one piece of a message larger than libcpg's atomic size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpgPartialMcast<'a> {
    /// Exec header.
    pub header: ExecHeader,
    /// The group.
    pub group: CpgName,
    /// Length of the whole message.
    pub msglen: u32,
    /// Length of this piece.
    pub fraglen: u32,
    /// Sending process.
    pub pid: u32,
    /// FIRST, CONTINUED or LAST.
    pub kind: PartialType,
    /// Sending node and its connection.
    pub source: MessageSource,
    /// This piece.
    pub data: &'a [u8],
}

/// DOWNLIST (fn 5) or DOWNLIST_OLD (fn 4): only logged by 3.1.7 receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downlist {
    /// Exec header.
    pub header: ExecHeader,
    /// Members before the change; `None` in DOWNLIST_OLD, which lacks the field.
    pub old_members: Option<u32>,
    /// Number of meaningful entries in `nodeids`.
    pub left_nodes: u32,
    /// The first `left_nodes` entries of the 384-entry array (the rest is zero-filled on
    /// emit).
    pub nodeids: Vec<u32>,
}

/// Every CPG exec message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpgMessage<'a> {
    /// fn 0.
    ProcJoin(ProcJoin),
    /// fn 1.
    ProcLeave(ProcJoin),
    /// fn 2.
    JoinList(JoinList),
    /// fn 3.
    Mcast(CpgMcast<'a>),
    /// fn 4 or 5.
    Downlist(Downlist),
    /// fn 6.
    PartialMcast(CpgPartialMcast<'a>),
}

impl<'a> CpgMessage<'a> {
    /// Parses a CPG message from the whole exec message (header included). `Ok(None)` for a
    /// function this codec does not know.
    pub(crate) fn parse_body(
        header: ExecHeader,
        bytes: &'a [u8],
        order: ByteOrder,
    ) -> Result<Option<CpgMessage<'a>>> {
        let mut d = body_decoder(bytes, order, Layer::Cpg)?;
        let message = match CpgFunction::from(header.function()) {
            CpgFunction::ProcJoin => CpgMessage::ProcJoin(parse_procjoin(header, &mut d)?),
            CpgFunction::ProcLeave => CpgMessage::ProcLeave(parse_procjoin(header, &mut d)?),
            CpgFunction::JoinList => {
                let error = d.i32("error")?;
                d.pad(4)?;
                // Entries fill the rest of the message: bounded by what is there.
                let count = d.remaining() / JOINLIST_ENTRY_LEN;
                if d.remaining() % JOINLIST_ENTRY_LEN != 0 {
                    return Err(d.error(ErrorKind::LengthMismatch {
                        field: "joinlist entries",
                        declared: (count * JOINLIST_ENTRY_LEN) as u64,
                        actual: d.remaining() as u64,
                    }));
                }
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let pid = d.u32("pid")?;
                    d.pad(4)?;
                    entries.push(JoinListEntry {
                        pid,
                        group: CpgName::parse(&mut d)?,
                    });
                }
                CpgMessage::JoinList(JoinList {
                    header,
                    error,
                    entries,
                })
            }
            CpgFunction::Mcast => {
                let group = CpgName::parse(&mut d)?;
                let len_offset = d.offset();
                let msglen = d.u32("msglen")?;
                d.pad(4)?;
                let pid = d.u32("pid")?;
                d.pad(4)?;
                let source = MessageSource::parse(&mut d)?;
                let data = user_data(&mut d, msglen, len_offset)?;
                CpgMessage::Mcast(CpgMcast {
                    header,
                    group,
                    msglen,
                    pid,
                    source,
                    data,
                })
            }
            CpgFunction::PartialMcast => {
                let group = CpgName::parse(&mut d)?;
                let msglen = d.u32("msglen")?;
                d.pad(4)?;
                let len_offset = d.offset();
                let fraglen = d.u32("fraglen")?;
                d.pad(4)?;
                let pid = d.u32("pid")?;
                d.pad(4)?;
                let kind = d.u32("type")?.into();
                d.pad(4)?;
                let source = MessageSource::parse(&mut d)?;
                let data = user_data(&mut d, fraglen, len_offset)?;
                CpgMessage::PartialMcast(CpgPartialMcast {
                    header,
                    group,
                    msglen,
                    fraglen,
                    pid,
                    kind,
                    source,
                    data,
                })
            }
            CpgFunction::DownlistOld | CpgFunction::Downlist => {
                let old_members = if header.function() == 5 {
                    let v = d.u32("old_members")?;
                    d.pad(4)?;
                    Some(v)
                } else {
                    None
                };
                let count_offset = d.offset();
                let left_nodes = d.u32("left_nodes")?;
                d.pad(4)?;
                let n = d.bounded_count(
                    "left_nodes",
                    left_nodes.into(),
                    PROCESSOR_COUNT_MAX,
                    4,
                    count_offset,
                )?;
                let nodeids = d.u32_list("nodeids", n)?;
                let rest = PROCESSOR_COUNT_MAX as usize - n;
                d.bytes("nodeids", rest * 4)?;
                CpgMessage::Downlist(Downlist {
                    header,
                    old_members,
                    left_nodes,
                    nodeids,
                })
            }
            CpgFunction::Unknown(_) => return Ok(None),
        };
        Ok(Some(message))
    }

    /// The exec header.
    pub fn header(&self) -> &ExecHeader {
        match self {
            CpgMessage::ProcJoin(m) | CpgMessage::ProcLeave(m) => &m.header,
            CpgMessage::JoinList(m) => &m.header,
            CpgMessage::Mcast(m) => &m.header,
            CpgMessage::Downlist(m) => &m.header,
            CpgMessage::PartialMcast(m) => &m.header,
        }
    }

    /// corosync's function name.
    pub fn function_name(&self) -> &'static str {
        CpgFunction::from(self.header().function())
            .known_name()
            .unwrap_or("UNKNOWN")
    }

    /// The group the message is about, when it has exactly one.
    pub fn group(&self) -> Option<&CpgName> {
        match self {
            CpgMessage::ProcJoin(m) | CpgMessage::ProcLeave(m) => Some(&m.group),
            CpgMessage::Mcast(m) => Some(&m.group),
            CpgMessage::PartialMcast(m) => Some(&m.group),
            CpgMessage::JoinList(_) | CpgMessage::Downlist(_) => None,
        }
    }

    /// Appends the message; padding is zeroed, `header` is written as it is (callers that
    /// build messages set `size` with [`ExecHeader::new`]).
    pub fn emit(&self, out: &mut Vec<u8>, order: ByteOrder) {
        self.header().emit(out, order);
        let mut e = Encoder::new(out, order);
        match self {
            CpgMessage::ProcJoin(m) | CpgMessage::ProcLeave(m) => {
                m.group.emit(&mut e);
                e.u32(m.pid);
                e.zeros(4);
                e.u32(m.reason.into());
                e.zeros(4);
            }
            CpgMessage::JoinList(m) => {
                e.i32(m.error);
                e.zeros(4);
                for entry in &m.entries {
                    e.u32(entry.pid);
                    e.zeros(4);
                    entry.group.emit(&mut e);
                }
            }
            CpgMessage::Mcast(m) => {
                m.group.emit(&mut e);
                e.u32(m.msglen);
                e.zeros(4);
                e.u32(m.pid);
                e.zeros(4);
                m.source.emit(&mut e);
                e.bytes(m.data);
            }
            CpgMessage::PartialMcast(m) => {
                m.group.emit(&mut e);
                e.u32(m.msglen);
                e.zeros(4);
                e.u32(m.fraglen);
                e.zeros(4);
                e.u32(m.pid);
                e.zeros(4);
                e.u32(m.kind.into());
                e.zeros(4);
                m.source.emit(&mut e);
                e.bytes(m.data);
            }
            CpgMessage::Downlist(m) => {
                if let Some(old) = m.old_members {
                    e.u32(old);
                    e.zeros(4);
                }
                e.u32(m.left_nodes);
                e.zeros(4);
                for n in &m.nodeids {
                    e.u32(*n);
                }
                e.zeros((PROCESSOR_COUNT_MAX as usize - m.nodeids.len()) * 4);
            }
        }
    }

    /// Builds a PROCJOIN (reason JOIN) as `cpg.c::cpg_lib_join` multicasts it.
    pub fn procjoin(group: CpgName, pid: u32) -> CpgMessage<'static> {
        CpgMessage::ProcJoin(ProcJoin {
            header: ExecHeader::new(ServiceId::Cpg, 0, PROCJOIN_LEN),
            group,
            pid,
            reason: ConfchgReason::Join,
        })
    }
}

fn parse_procjoin(header: ExecHeader, d: &mut Decoder<'_>) -> Result<ProcJoin> {
    let group = CpgName::parse(d)?;
    let pid = d.u32("pid")?;
    d.pad(4)?;
    let reason = d.u32("reason")?.into();
    d.pad(4)?;
    Ok(ProcJoin {
        header,
        group,
        pid,
        reason,
    })
}

/// The user data of an MCAST or PARTIAL_MCAST: exactly `len` bytes must follow.
fn user_data<'a>(d: &mut Decoder<'a>, len: u32, len_offset: usize) -> Result<&'a [u8]> {
    if u64::from(len) > MSGLEN_MAX {
        return Err(d.error_at(
            len_offset,
            ErrorKind::CountTooLarge {
                field: "msglen",
                count: len.into(),
                max: MSGLEN_MAX,
            },
        ));
    }
    if len as usize != d.remaining() {
        return Err(d.error_at(
            len_offset,
            ErrorKind::LengthMismatch {
                field: "msglen",
                declared: len.into(),
                actual: d.remaining() as u64,
            },
        ));
    }
    d.bytes("data", len as usize)
}
