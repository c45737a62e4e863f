//! The per-capture decoding pipeline: UDP payload → knet (and its fragments) → totemsrp →
//! totempg (reassembled per sender) → group → exec service or sync. State lives here
//! (fragments, partial messages, the duplicate window); every frame becomes one
//! [`FrameRecord`], whatever fails on the way.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use totem_wire::exec::cpg::CpgMessage;
use totem_wire::exec::{EvsMessage, ExecMessage, SyncMessage};
use totem_wire::knet::{
    DefragLimits, Defragmented, Defragmenter, KnetBody, KnetHeader, KnetPacket,
    KNET_DATA_HEADER_LEN,
};
use totem_wire::legacy::{EvsMcast1x, LegacyVersion};
use totem_wire::pg::{Assembler, AssemblerLimits, GroupPrefix, PgPacket};
use totem_wire::srp::{Encapsulation, Mcast, Message, MessageType, MCAST_HEADER_LEN};
use totem_wire::{classify, ByteOrder, Framing};

use crate::capture::RawFrame;
use crate::intern::{FxBuild, NameInterner};
use crate::knet_crypto::{encrypted_without_key, CryptoSetting, KnetDecryptor};
use crate::layers::{Datagram, Layered, Layers};
use crate::model::{
    CommitEntryRecord, ErrorRecord, Fields, FrameRecord, KnetRecord, MessageKind, MessageRecord,
    PgRecord, RtrRecord, TotemBody, TotemRecord,
};
use crate::render::fields;

/// corosync's default `mcastport`.
pub const DEFAULT_PORT: u16 = 5405;
/// MCAST keys remembered for duplicate detection (two generations of this many).
const DEDUP_GENERATION: usize = 1 << 16;

/// Decodes the frames of one capture, in order.
pub struct FrameDecoder {
    layers: Layers,
    ports: HashSet<u16>,
    knet_defrag: Defragmenter<(u16, Option<std::net::IpAddr>), u64>,
    assembler: Assembler<u64>,
    dedup: DedupWindow,
    /// For frames that completed a knet reassembly: the frames of its fragments, so that a
    /// totempg message can name every frame it came from. Bounded, oldest dropped first.
    knet_sources: std::collections::BTreeMap<u64, Vec<u64>>,
    names: NameInterner,
    /// Opens encrypted knet packets (`--authkey`); `None`: no key given.
    knet_crypto: Option<KnetDecryptor>,
}

/// knet reassemblies remembered for provenance.
const KNET_SOURCES_MAX: usize = 4096;

/// The totemsrp grammar a message came in. Both are decoded by one path, in 3.x's types
/// (1.x/2.x messages are mapped into them by `totem_wire::legacy::Message::to_srp`); what
/// still differs is said where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grammar {
    /// corosync 3.x.
    Totem3,
    /// corosync 1.x or 2.x.
    Legacy(LegacyVersion),
}

impl Grammar {
    /// Bytes of `struct mcast` before its payload.
    fn mcast_header_len(self) -> usize {
        match self {
            Grammar::Totem3 => MCAST_HEADER_LEN,
            Grammar::Legacy(version) => totem_wire::legacy::Mcast::header_len(version),
        }
    }

    /// corosync's name of a message type, without allocating for the known ones. 1.x/2.x
    /// name totemrrp's ring-test messages, which 3.x's types do not know.
    fn type_name(self, t: MessageType) -> Cow<'static, str> {
        let (known, text) = match self {
            Grammar::Totem3 => (t.known_name(), t.to_string()),
            Grammar::Legacy(_) => {
                let legacy = totem_wire::legacy::MessageType::from(u8::from(t));
                (legacy.known_name(), legacy.to_string())
            }
        };
        match known {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(text),
        }
    }
}

impl FrameDecoder {
    /// A decoder for frames of `linktype`. Datagrams to or from `ports` that are neither
    /// totem nor knet are reported as errors; others are simply "other" traffic.
    pub fn new(linktype: pcap::Linktype, ports: &[u16]) -> FrameDecoder {
        let mut port_set: HashSet<u16> = ports.iter().copied().collect();
        port_set.insert(DEFAULT_PORT);
        FrameDecoder {
            layers: Layers::new(linktype),
            ports: port_set,
            knet_defrag: Defragmenter::new(DefragLimits::default()),
            assembler: Assembler::observer(AssemblerLimits::default()),
            dedup: DedupWindow::default(),
            knet_sources: std::collections::BTreeMap::new(),
            names: NameInterner::default(),
            knet_crypto: None,
        }
    }

    /// Opens knet packets with this key and settings: with a key, every datagram on a
    /// corosync port is decrypted first (corosync with crypto on accepts nothing else).
    pub fn with_knet_crypto(mut self, setting: Option<CryptoSetting>) -> FrameDecoder {
        self.knet_crypto = setting.map(KnetDecryptor::new);
        self
    }

    /// Decodes frame number `number` (1-based).
    pub fn decode(&mut self, number: u64, raw: &RawFrame<'_>) -> FrameRecord {
        let mut record = FrameRecord::new(
            number,
            raw.ts_sec as f64 + raw.ts_usec as f64 / 1e6,
            raw.data.len(),
        );
        if (raw.data.len() as u64) < u64::from(raw.wire_len) {
            record.notes.push(format!(
                "frame truncated by the capture: {} of {} bytes captured",
                raw.data.len(),
                raw.wire_len
            ));
        }
        match self.layers.peel(raw.data) {
            Err(e) => record.error = Some(ErrorRecord::from(&e)),
            Ok(Layered::NotUdp(what)) => record.notes.push(what.to_string()),
            Ok(Layered::Fragment { src, dst }) => {
                record.transport = "ip-fragment";
                record.src = Some(std::net::SocketAddr::new(src, 0));
                record.dst = Some(std::net::SocketAddr::new(dst, 0));
                record.notes.push("IP fragment, held for reassembly".into());
            }
            Ok(Layered::Udp(datagram)) => {
                let (src, dst, payload, reassembled) = match &datagram {
                    Datagram::Borrowed {
                        src, dst, payload, ..
                    } => (*src, *dst, *payload, false),
                    Datagram::Reassembled { src, dst, payload } => {
                        (*src, *dst, payload.as_slice(), true)
                    }
                };
                record.src = Some(src);
                record.dst = Some(dst);
                record.udp_len = Some(payload.len());
                if reassembled {
                    record
                        .notes
                        .push("UDP datagram reassembled from IP fragments".into());
                }
                let ours = self.ports.contains(&src.port()) || self.ports.contains(&dst.port());
                self.decode_udp(number, payload, dst, ours, &mut record);
            }
        }
        record
    }

    fn decode_udp(
        &mut self,
        frame: u64,
        payload: &[u8],
        dst: std::net::SocketAddr,
        ours: bool,
        record: &mut FrameRecord,
    ) {
        if let (true, Some(crypto)) = (ours, self.knet_crypto.as_mut()) {
            record.transport = "knet";
            match crypto.open(payload) {
                Ok((plain, note)) => {
                    record.notes.extend(note);
                    self.decode_knet(frame, &plain, dst.ip(), record);
                }
                Err(e) => record.error = Some(e),
            }
            return;
        }
        match classify(payload) {
            Framing::Totem(_) => {
                record.transport = "udpu";
                self.decode_totem(frame, payload, 0, record);
            }
            Framing::Knet => {
                record.transport = "knet";
                match knet_gso_segments(payload) {
                    None => self.decode_knet(frame, payload, dst.ip(), record),
                    Some(segments) => self.decode_knet_gso(frame, &segments, dst.ip(), record),
                }
            }
            Framing::Legacy(framing) => {
                record.transport = match framing.version {
                    totem_wire::legacy::LegacyVersion::Corosync1 => "corosync-1.x",
                    totem_wire::legacy::LegacyVersion::Corosync2 => "corosync-2.x",
                };
                self.decode_legacy(frame, payload, record);
            }
            Framing::Unknown if ours && encrypted_without_key(payload).is_some() => {
                record.transport = "knet";
                record.error = encrypted_without_key(payload);
            }
            Framing::Unknown if ours => {
                record.transport = "udpu";
                // Neither magic: let the totem parser say precisely what is wrong.
                if let Err(e) = Message::parse(payload) {
                    record.error = Some(ErrorRecord::from(&e));
                }
            }
            Framing::Unknown => {}
        }
    }

    /// A knet GSO send caught uncut (see [`knet_gso_segments`]): the record shows the
    /// first packet; every later packet is decoded as a datagram of its own, its messages
    /// (and what went wrong with it) going into this frame's record.
    fn decode_knet_gso(
        &mut self,
        frame: u64,
        segments: &[&[u8]],
        receiver: std::net::IpAddr,
        record: &mut FrameRecord,
    ) {
        record.notes.push(format!(
            "UDP GSO: {} knet packets of {} bytes sent as one datagram, captured before the \
             kernel cut them; the header shown is the first's, the messages are all of theirs",
            segments.len(),
            segments[0].len()
        ));
        self.decode_knet(frame, segments[0], receiver, record);
        for (i, segment) in segments.iter().enumerate().skip(1) {
            let mut part = FrameRecord::new(frame, record.ts, segment.len());
            self.decode_knet(frame, segment, receiver, &mut part);
            record.messages.append(&mut part.messages);
            if let Some(e) = part.error {
                record.notes.push(format!(
                    "UDP GSO: packet {} does not decode: {} at offset {}: {}",
                    i + 1,
                    e.layer,
                    e.offset,
                    e.reason
                ));
            }
        }
    }

    fn decode_knet(
        &mut self,
        frame: u64,
        payload: &[u8],
        receiver: std::net::IpAddr,
        record: &mut FrameRecord,
    ) {
        let packet = match KnetPacket::parse(payload) {
            Ok(p) => p,
            Err(e) => {
                record.error = Some(ErrorRecord::from(&e));
                return;
            }
        };
        let mut knet = KnetRecord {
            packet_type: packet.header.packet_type.to_string(),
            node: packet.header.node,
            seq_num: None,
            bcast: None,
            frag: None,
            channel: None,
            link: None,
            pmtud_size: None,
            reassembled_from: Vec::new(),
        };
        match &packet.body {
            KnetBody::Data(data) => {
                knet.seq_num = Some(data.seq_num);
                knet.bcast = Some(data.bcast);
                knet.channel = Some(data.channel);
                if data.frag_num > 1 {
                    knet.frag = Some(format!("{}/{}", data.frag_seq, data.frag_num));
                }
                match self
                    .knet_defrag
                    .feed((packet.header.node, Some(receiver)), data, frame)
                {
                    Defragmented::Whole => {
                        record.knet = Some(knet);
                        if data.compress != 0 {
                            record.notes.push(format!(
                                "knet payload compressed (model {}), not decoded",
                                data.compress
                            ));
                        } else {
                            self.decode_totem(frame, data.payload, KNET_DATA_HEADER_LEN, record);
                        }
                        return;
                    }
                    Defragmented::Pending => {
                        record
                            .notes
                            .push("knet fragment, held for reassembly".into());
                    }
                    Defragmented::Dropped(why) => {
                        record.notes.push(format!("knet fragment dropped: {why}"));
                    }
                    Defragmented::Complete {
                        data: whole,
                        sources,
                    } => {
                        if self.knet_sources.len() >= KNET_SOURCES_MAX {
                            self.knet_sources.pop_first();
                        }
                        self.knet_sources.insert(frame, sources.clone());
                        knet.reassembled_from = sources;
                        record.knet = Some(knet);
                        // Offsets of errors in a reassembled message count from its start.
                        self.decode_totem(frame, &whole, 0, record);
                        return;
                    }
                }
            }
            KnetBody::Ping(p) | KnetBody::Pong(p) => {
                knet.seq_num = Some(p.seq_num);
                knet.link = Some(p.link);
            }
            KnetBody::Pmtud(p) | KnetBody::PmtudReply(p) => {
                knet.link = Some(p.link);
                knet.pmtud_size = Some(p.size_le());
            }
            KnetBody::Unknown(_) => {}
        }
        record.knet = Some(knet);
    }

    /// Decodes a totemsrp message that starts at `base` of the UDP payload.
    fn decode_totem(&mut self, frame: u64, bytes: &[u8], base: usize, record: &mut FrameRecord) {
        match Message::parse(bytes) {
            Ok((message, _)) => self.decode_srp(frame, &message, Grammar::Totem3, base, record),
            Err(e) => record.error = Some(ErrorRecord::from(&e.add_offset(base))),
        }
    }

    /// The totem record of a message of either grammar (in 3.x's types), which starts at
    /// `base` of the UDP payload; its totempg packet goes to the reassembly.
    fn decode_srp(
        &mut self,
        frame: u64,
        message: &Message<'_>,
        grammar: Grammar,
        base: usize,
        record: &mut FrameRecord,
    ) {
        let header = *message.header();
        let body = match message {
            Message::OrfToken(t) => TotemBody::OrfToken {
                ring_id: t.ring_id.into(),
                seq: t.seq,
                token_seq: t.token_seq,
                aru: t.aru,
                aru_addr: t.aru_addr,
                backlog: t.backlog,
                fcc: t.fcc,
                retrans_flg: t.retrans_flg,
                rtr: t
                    .rtr_list
                    .iter()
                    .map(|r| RtrRecord {
                        ring_id: r.ring_id.into(),
                        seq: r.seq,
                    })
                    .collect(),
            },
            Message::Mcast(m) => self.decode_mcast(frame, m, grammar, base, record),
            Message::MembMergeDetect(m) => TotemBody::MergeDetect {
                ring_id: m.ring_id.into(),
                system_from: m.system_from,
            },
            Message::MembJoin(j) => TotemBody::Join {
                system_from: j.system_from,
                ring_seq: j.ring_seq,
                proc_list: j.proc_list.clone(),
                failed_list: j.failed_list.clone(),
                leave: j.is_leave(),
            },
            Message::MembCommitToken(c) => TotemBody::CommitToken {
                ring_id: c.ring_id.into(),
                token_seq: c.token_seq,
                memb_index: c.memb_index,
                addr: c.addr.clone(),
                memb_list: c
                    .memb_list
                    .iter()
                    .map(|e| CommitEntryRecord {
                        ring_id: e.ring_id.into(),
                        aru: e.aru,
                        high_delivered: e.high_delivered,
                        received_flg: e.received_flg,
                    })
                    .collect(),
            },
            Message::TokenHoldCancel(t) => TotemBody::TokenHoldCancel {
                ring_id: t.ring_id.into(),
            },
            Message::Unknown { body, .. } => TotemBody::Unknown {
                body_len: body.len(),
            },
        };
        record.totem = Some(TotemRecord {
            message_type: grammar.type_name(header.message_type),
            kind: header.message_type,
            byte_order: header.order.short_name(),
            nodeid: header.nodeid,
            target_nodeid: header.target_nodeid,
            body,
        });
    }

    fn decode_mcast(
        &mut self,
        frame: u64,
        m: &Mcast<'_>,
        grammar: Grammar,
        base: usize,
        record: &mut FrameRecord,
    ) -> TotemBody {
        let header_len = grammar.mcast_header_len();
        let encapsulated = m.encapsulation() == Encapsulation::Encapsulated;
        let mut inner_record = None;
        let mut pg = None;
        let mut duplicate_of = None;
        // The message whose payload is the totempg packet: the MCAST itself, or for a
        // recovery re-send the old-ring MCAST inside it (spec §2.6).
        let carried = match (encapsulated, grammar) {
            (false, _) => Some((m.clone(), base)),
            (true, Grammar::Totem3) => match m.inner() {
                Some(Ok(inner)) => Some((inner, base + header_len)),
                Some(Err(e)) => {
                    record.error = Some(ErrorRecord::from(&e.add_offset(base)));
                    None
                }
                None => None,
            },
            // A 1.x/2.x recovery re-send is shown by its own header (and told apart from
            // its copies by it); the old-ring message inside is not unpacked.
            (true, Grammar::Legacy(_)) => {
                duplicate_of = self.dedup.check(mcast_key(m), frame);
                None
            }
        };
        if let Some((carrier, carrier_base)) = carried {
            duplicate_of = self.dedup.check(mcast_key(&carrier), frame);
            let mut gso_rest: &[u8] = &[];
            let mut gso_packet_len = 0;
            let parsed = PgPacket::parse(carrier.payload, carrier.header.order).or_else(|e| {
                // totemd's UDP GSO sends are 3.x's.
                let gso = match grammar {
                    Grammar::Totem3 => gso_first_packet(carrier.payload, &e),
                    Grammar::Legacy(_) => None,
                };
                match gso {
                    Some((first, count, packet_len)) => {
                        record.notes.push(format!(
                            "UDP GSO: {count} Totem packets of {packet_len} bytes sent as one \
                             datagram, captured before the kernel cut them; the header shown \
                             is the first's, the messages are all of theirs (totemd \
                             --no-udp-gso sends them one by one)"
                        ));
                        gso_rest = &carrier.payload[first.len()..];
                        gso_packet_len = packet_len;
                        PgPacket::parse(first, carrier.header.order)
                    }
                    None => Err(e),
                }
            });
            match parsed {
                Ok(packet) => {
                    pg = Some(PgRecord {
                        fragmented: packet.fragmented,
                        continuation: packet.continuation,
                        lens: packet.entries.iter().map(|e| e.len()).collect(),
                    });
                    if duplicate_of.is_none() {
                        let sender = carrier.header.nodeid;
                        self.feed_assembler(frame, sender, &packet, grammar, record);
                    }
                    self.feed_gso_rest(frame, gso_rest, gso_packet_len, record);
                }
                Err(e) => {
                    record.error =
                        Some(ErrorRecord::from(&e.add_offset(carrier_base + header_len)));
                }
            }
            if encapsulated {
                inner_record = Some(Box::new(TotemRecord {
                    message_type: grammar.type_name(carrier.header.message_type),
                    kind: carrier.header.message_type,
                    byte_order: carrier.header.order.short_name(),
                    nodeid: carrier.header.nodeid,
                    target_nodeid: carrier.header.target_nodeid,
                    body: TotemBody::Mcast {
                        ring_id: carrier.ring_id.into(),
                        seq: carrier.seq,
                        system_from: carrier.system_from,
                        this_seqno: carrier.this_seqno,
                        node_id: carrier.node_id,
                        guarantee: carrier.guarantee,
                        encapsulated: false,
                        inner: None,
                        pg: pg.take(),
                        duplicate_of: None,
                    },
                }));
            }
        }
        TotemBody::Mcast {
            ring_id: m.ring_id.into(),
            seq: m.seq,
            system_from: m.system_from,
            this_seqno: m.this_seqno,
            node_id: m.node_id,
            guarantee: m.guarantee,
            encapsulated,
            inner: inner_record,
            pg,
            duplicate_of,
        }
    }
}

impl FrameDecoder {
    /// A corosync 1.x/2.x datagram: mapped into 3.x's types by the codec, then decoded as
    /// 3.x is (nodeids are those of the srp_addrs, whose IP addresses are not shown). 2.x
    /// exec messages share 3.x's layouts and service ids, so they are decoded; 1.x's
    /// (coroipc header, other service ids) are shown by service and function number.
    fn decode_legacy(&mut self, frame: u64, payload: &[u8], record: &mut FrameRecord) {
        use totem_wire::legacy::{LegacyFraming, TransportHeader};
        let (framing, message, _) = match LegacyFraming::parse(payload) {
            Ok(parsed) => parsed,
            Err(e) => {
                record.error = Some(ErrorRecord::from(&e));
                return;
            }
        };
        if let TransportHeader::Crypto(c) = framing.transport {
            record.notes.push(format!(
                "2.x crypto header cipher={:#04x} hash={:#04x}",
                c.cipher_type, c.hash_type
            ));
        }
        let grammar = Grammar::Legacy(framing.version);
        self.decode_srp(frame, &message.to_srp(), grammar, framing.offset, record);
    }

    /// Replaces frames that completed a knet reassembly by the frames of its fragments.
    fn expand_sources(&self, sources: Vec<u64>) -> Vec<u64> {
        if self.knet_sources.is_empty() {
            return sources;
        }
        let mut frames = Vec::with_capacity(sources.len());
        for frame in sources {
            match self.knet_sources.get(&frame) {
                Some(fragments) => frames.extend_from_slice(fragments),
                None => frames.push(frame),
            }
        }
        frames
    }
}

type DedupKey = (u32, u64, u32, u32);

/// What tells an MCAST from another: its ring, seq and sender (udpu's copies to each
/// member and retransmissions repeat all three).
fn mcast_key(m: &Mcast<'_>) -> DedupKey {
    (m.ring_id.rep, m.ring_id.seq, m.seq, m.header.nodeid)
}

/// Remembers which MCASTs were seen, in two generations so memory stays bounded.
#[derive(Default)]
struct DedupWindow {
    current: HashMap<DedupKey, u64, FxBuild>,
    previous: HashMap<DedupKey, u64, FxBuild>,
}

impl DedupWindow {
    /// `Some(first frame)` when `key` was seen before; otherwise records it.
    fn check(&mut self, key: DedupKey, frame: u64) -> Option<u64> {
        if let Some(first) = self.current.get(&key).or_else(|| self.previous.get(&key)) {
            return Some(*first);
        }
        if self.current.len() >= DEDUP_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, frame);
        None
    }
}

/// Decodes a whole totempg message: group prefix, then exec or sync.
fn decode_message(
    sender: u32,
    data: &[u8],
    frames: Vec<u64>,
    order: ByteOrder,
    names: &mut NameInterner,
) -> MessageRecord {
    let mut record = MessageRecord {
        sender,
        frames,
        len: data.len(),
        groups: Vec::new(),
        name: Cow::Borrowed("RAW"),
        service: Cow::Borrowed("RAW"),
        detail: Fields::default(),
        cpg_group: None,
        error: None,
        kind: MessageKind::Other,
    };
    let (prefix, payload) = match GroupPrefix::parse(data, order) {
        Ok(p) => p,
        Err(e) => {
            record.error = Some(ErrorRecord::from(&e));
            return record;
        }
    };
    let payload_offset = data.len() - payload.len();
    record.groups = prefix
        .groups
        .iter()
        .map(|g| match *g {
            b"a" => Cow::Borrowed("a"),
            b"sync" => Cow::Borrowed("sync"),
            other => Cow::Owned(String::from_utf8_lossy(other).into_owned()),
        })
        .collect();
    if prefix.contains(GroupPrefix::EXEC) {
        match ExecMessage::parse(payload, order) {
            Ok(message) => {
                record.name = exec_name(&message);
                record.service = match message.header().service().known_name() {
                    Some(name) => Cow::Borrowed(name),
                    None => Cow::Owned(message.header().service().to_string()),
                };
                let group = match &message {
                    ExecMessage::Cpg(cpg) => cpg.group().map(|g| names.intern(g)),
                    _ => None,
                };
                match &message {
                    ExecMessage::Cpg(cpg) => record.kind = cpg_kind(cpg, names),
                    ExecMessage::Evs(EvsMessage::Mcast(m)) => {
                        record.kind = MessageKind::EvsMcast {
                            groups: m.groups.clone(),
                            msg_len: m.data.len() as u64,
                        };
                    }
                    _ => {}
                }
                record.detail = fields::exec(&message, order, group.as_ref(), names);
                record.cpg_group = group;
            }
            Err(e) => {
                if let Ok(h) = totem_wire::exec::ExecHeader::parse(payload, order) {
                    record.service = Cow::Owned(h.service().to_string());
                    record.name = match (h.service(), h.function()) {
                        // EVS has one exec message: a body that fails is still its MCAST.
                        (totem_wire::exec::ServiceId::Evs, 0) => Cow::Borrowed("EVS/MCAST"),
                        (service, function) => Cow::Owned(format!("{service}/fn{function}")),
                    };
                }
                record.error = Some(ErrorRecord::from(&e.add_offset(payload_offset)));
            }
        }
    } else if prefix.contains(GroupPrefix::SYNC) {
        record.service = Cow::Borrowed("SYNC");
        match SyncMessage::parse(payload, order) {
            Ok(message) => {
                record.name = match &message {
                    SyncMessage::Barrier { .. } => Cow::Borrowed("SYNC/BARRIER"),
                    SyncMessage::ServiceBuild { .. } => Cow::Borrowed("SYNC/SERVICE_BUILD"),
                    SyncMessage::Unknown { .. } => Cow::Owned(format!("SYNC/{}", message.name())),
                };
                record.detail = fields::sync(&message);
            }
            Err(e) => record.error = Some(ErrorRecord::from(&e.add_offset(payload_offset))),
        }
    } else {
        record.detail = fields::raw(payload);
    }
    record
}

/// A corosync 1.x totempg message: the group prefix, then a coroipc header
/// (`totem_wire::legacy::CoroipcHeader`). Of the 1.x service bodies only EVS's MCAST is
/// decoded (`totem_wire::legacy::EvsMcast1x`); what is worth a word about it goes to `notes`.
fn decode_message_1x(
    sender: u32,
    data: &[u8],
    frames: Vec<u64>,
    order: ByteOrder,
    notes: &mut Vec<String>,
) -> MessageRecord {
    let mut record = MessageRecord {
        sender,
        frames,
        len: data.len(),
        groups: Vec::new(),
        name: Cow::Borrowed("RAW"),
        service: Cow::Borrowed("RAW"),
        detail: Fields::default(),
        cpg_group: None,
        error: None,
        kind: MessageKind::Other,
    };
    let (prefix, payload) = match GroupPrefix::parse(data, order) {
        Ok(p) => p,
        Err(e) => {
            record.error = Some(ErrorRecord::from(&e));
            return record;
        }
    };
    record.groups = prefix
        .groups
        .iter()
        .map(|g| Cow::Owned(String::from_utf8_lossy(g).into_owned()))
        .collect();
    let payload_offset = data.len() - payload.len();
    match totem_wire::legacy::CoroipcHeader::parse(payload, order) {
        Ok(h) if EvsMcast1x::is_evs_mcast(&h) => {
            record.service = Cow::Borrowed("EVS(1.x)");
            record.name = Cow::Borrowed("EVS(1.x)/MCAST");
            match EvsMcast1x::parse(payload, order) {
                Ok(m) => {
                    record.detail = fields::evs_mcast(&m.groups, m.data);
                    record.kind = MessageKind::EvsMcast {
                        groups: m.groups,
                        msg_len: m.data.len() as u64,
                    };
                    if order == ByteOrder::Big {
                        notes.push(format!(
                            "corosync 1.4 EVS MCAST from big-endian node {sender}: a 1.4 node of \
                             the other byte order reads group_entries and msg_len as 0 (swab32 \
                             of a 64-bit size_t, EVS-CODE-10) and delivers it to no group"
                        ));
                    }
                }
                Err(e) => {
                    record.detail = fields::coroipc_1x(&h);
                    record.error = Some(ErrorRecord::from(&e.add_offset(payload_offset)));
                }
            }
        }
        Ok(h) => {
            let name = totem_wire::legacy::service_name_1x(h.service()).unwrap_or("UNKNOWN");
            record.service = Cow::Owned(format!("{name}(1.x)"));
            record.name = Cow::Owned(format!("{name}(1.x)/fn{}", h.function()));
            record.detail = fields::coroipc_1x(&h);
        }
        Err(e) => record.error = Some(ErrorRecord::from(&e.add_offset(payload_offset))),
    }
    record
}

/// The facts of a CPG message that stats and filters read.
fn cpg_kind(message: &CpgMessage<'_>, names: &mut NameInterner) -> MessageKind {
    match message {
        CpgMessage::ProcJoin(p) => MessageKind::CpgProcJoin { pid: p.pid },
        CpgMessage::ProcLeave(p) => MessageKind::CpgProcLeave {
            pid: p.pid,
            reason: p.reason,
        },
        CpgMessage::JoinList(j) => MessageKind::CpgJoinList {
            groups: j.entries.iter().map(|e| names.intern(&e.group)).collect(),
        },
        CpgMessage::Mcast(m) => MessageKind::CpgMcast {
            pid: m.pid,
            msglen: m.msglen,
        },
        CpgMessage::PartialMcast(m) => MessageKind::CpgPartialMcast {
            pid: m.pid,
            msglen: m.msglen,
            fraglen: m.fraglen,
        },
        CpgMessage::Downlist(_) => MessageKind::Other,
    }
}

/// `SERVICE/FUNCTION`, borrowed for the messages corosync 3.1.7 sends.
fn exec_name(message: &ExecMessage<'_>) -> Cow<'static, str> {
    let known = match message {
        ExecMessage::Cpg(m) => Some(match m {
            CpgMessage::ProcJoin(_) => "CPG/PROCJOIN",
            CpgMessage::ProcLeave(_) => "CPG/PROCLEAVE",
            CpgMessage::JoinList(_) => "CPG/JOINLIST",
            CpgMessage::Mcast(_) => "CPG/MCAST",
            CpgMessage::PartialMcast(_) => "CPG/PARTIAL_MCAST",
            CpgMessage::Downlist(d) if d.old_members.is_some() => "CPG/DOWNLIST",
            CpgMessage::Downlist(_) => "CPG/DOWNLIST_OLD",
        }),
        ExecMessage::Cmap(_) => Some("CMAP/MCAST"),
        ExecMessage::Evs(EvsMessage::Mcast(_)) => Some("EVS/MCAST"),
        _ => None,
    };
    match known {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(message.name()),
    }
}

impl FrameDecoder {
    /// Gives one totempg packet to the reassembly; what it completes (or discards) goes
    /// into `record`.
    fn feed_assembler(
        &mut self,
        frame: u64,
        nodeid: u32,
        packet: &PgPacket<'_>,
        grammar: Grammar,
        record: &mut FrameRecord,
    ) {
        let fed = self.assembler.feed(nodeid, packet, frame);
        for d in fed.discarded {
            record.notes.push(format!(
                "totempg: {} bytes from node {} discarded: {}",
                d.len, d.sender, d.reason
            ));
        }
        for assembled in fed.delivered {
            let frames = self.expand_sources(assembled.sources);
            let (sender, data, order) = (assembled.sender, &assembled.data, packet.order);
            record.messages.push(match grammar {
                Grammar::Legacy(LegacyVersion::Corosync1) => {
                    decode_message_1x(sender, data, frames, order, &mut record.notes)
                }
                Grammar::Legacy(LegacyVersion::Corosync2) | Grammar::Totem3 => {
                    decode_message(sender, data, frames, order, &mut self.names)
                }
            });
        }
    }

    /// The packets after the first of a GSO send (see [`gso_first_packet`]): each is fed
    /// to the reassembly like a datagram of its own, its messages going into this frame's
    /// record; one that does not decode ends the walk with a note.
    fn feed_gso_rest(
        &mut self,
        frame: u64,
        mut rest: &[u8],
        packet_len: usize,
        record: &mut FrameRecord,
    ) {
        while !rest.is_empty() && packet_len > 0 {
            let (segment, next) = rest.split_at(packet_len.min(rest.len()));
            rest = next;
            let packet = match Message::parse(segment) {
                Ok((Message::Mcast(m), _)) if m.encapsulation() != Encapsulation::Encapsulated => {
                    if self.dedup.check(mcast_key(&m), frame).is_some() {
                        continue;
                    }
                    PgPacket::parse(m.payload, m.header.order).map(|p| (m.header.nodeid, p))
                }
                Ok(_) => {
                    record
                        .notes
                        .push("UDP GSO: a later packet is not a plain MCAST".into());
                    return;
                }
                Err(e) => Err(e),
            };
            match packet {
                Ok((nodeid, p)) => self.feed_assembler(frame, nodeid, &p, Grammar::Totem3, record),
                Err(e) => {
                    record
                        .notes
                        .push(format!("UDP GSO: a later packet does not decode: {e}"));
                    return;
                }
            }
        }
    }
}

/// A UDP GSO send of knet packets caught before segmentation (totemd sends a token visit's
/// packets to each host that way): several knet packets of one sender back to back, all of
/// the first's length but the last (the kernel cuts at that length). Tried only on a
/// datagram that cannot be one knet packet ([`knet_may_be_gso`]); the cut is the shortest
/// length at which every cut starts a knet header of the same node. `None` for one packet.
fn knet_gso_segments(payload: &[u8]) -> Option<Vec<&[u8]>> {
    if !knet_may_be_gso(payload) {
        return None;
    }
    let node = KnetHeader::peek_node(payload)?;
    let header_at = |at: usize| {
        payload.get(at..).is_some_and(|rest| {
            totem_wire::knet::looks_like_knet(rest) && KnetHeader::peek_node(rest) == Some(node)
        })
    };
    let size = (totem_wire::knet::KNET_HEADER_LEN + 1..payload.len())
        .find(|&size| (size..payload.len()).step_by(size).all(header_at))?;
    let segments: Vec<&[u8]> = payload.chunks(size).collect();
    segments
        .iter()
        .all(|s| KnetPacket::parse(s).is_ok())
        .then_some(segments)
}

/// Is this more than one knet packet? A PING, PONG or PMTUD reply with bytes after it, a
/// fragment longer than knet sends on Ethernet, or unfragmented data whose totem message
/// does not end where the datagram does (bytes after it, or totempg lengths that do not
/// add up).
fn knet_may_be_gso(payload: &[u8]) -> bool {
    let Ok(packet) = KnetPacket::parse(payload) else {
        return false;
    };
    match &packet.body {
        KnetBody::Ping(_) | KnetBody::Pong(_) => !packet.trailing.is_empty(),
        KnetBody::PmtudReply(reply) => !reply.filler.is_empty(),
        KnetBody::Data(data) if data.frag_num > 1 => payload.len() > 1500,
        KnetBody::Data(data) => match Message::parse(data.payload) {
            Err(_) => true,
            Ok((_, rest)) if !rest.is_empty() => true,
            Ok((Message::Mcast(m), _)) if m.encapsulation() != Encapsulation::Encapsulated => {
                PgPacket::parse(m.payload, m.header.order).is_err()
            }
            Ok(_) => false,
        },
        KnetBody::Pmtud(_) | KnetBody::Unknown(_) => false,
    }
}

/// A UDP GSO send caught before segmentation (a capture on the sending host or on a veth
/// that passes it uncut): one "datagram" that is several Totem packets back to back, all
/// of one length but the last (the kernel cuts it at that length). totempg then finds
/// more bytes than its message lengths declare, and the bytes past the declared ones start
/// another Totem header. Returns the first packet's totempg payload, the number of
/// packets, and their length.
fn gso_first_packet<'a>(
    pg_payload: &'a [u8],
    error: &totem_wire::Error,
) -> Option<(&'a [u8], usize, usize)> {
    let totem_wire::ErrorKind::LengthMismatch {
        field: "msg_len sum",
        declared,
        actual,
    } = error.kind
    else {
        return None;
    };
    let excess = usize::try_from(actual.checked_sub(declared)?).ok()?;
    let first_len = pg_payload.len().checked_sub(excess)?;
    let rest = &pg_payload[first_len..];
    if !matches!(classify(rest), Framing::Totem(_)) {
        return None;
    }
    let packet_len = MCAST_HEADER_LEN + first_len;
    let total = MCAST_HEADER_LEN + pg_payload.len();
    Some((
        &pg_payload[..first_len],
        total.div_ceil(packet_len),
        packet_len,
    ))
}

#[cfg(test)]
mod knet_gso_tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/wire/knet/");
        std::fs::read(format!("{dir}{name}")).expect("fixture")
    }

    #[test]
    fn captured_knet_packets_are_each_one_packet() {
        for name in [
            "data-commit-token.bin",
            "data-merge-detect.bin",
            "ping.bin",
            "pong.bin",
            "pmtud.bin",
            "pmtud_reply.bin",
        ] {
            assert_eq!(knet_gso_segments(&fixture(name)), None, "{name}");
        }
    }

    #[test]
    fn a_gso_send_of_knet_packets_is_cut_where_the_kernel_cuts_it() {
        // node 2's commit token, then its (shorter) merge detect, as one uncut GSO send.
        let token = fixture("data-commit-token.bin");
        let merge = fixture("data-merge-detect.bin");
        assert!(merge.len() <= token.len());
        let sent = [token.clone(), token.clone(), merge.clone()].concat();
        let segments = knet_gso_segments(&sent).expect("three packets");
        assert_eq!(segments, vec![&token[..], &token[..], &merge[..]]);
        // Two pings back to back.
        let ping = fixture("ping.bin");
        let two = [ping.clone(), ping.clone()].concat();
        assert_eq!(knet_gso_segments(&two), Some(vec![&ping[..], &ping[..]]));
        // A packet of another node after the first is not a GSO send of this one.
        let mut other = token.clone();
        other[2..4].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(knet_gso_segments(&[token.clone(), other].concat()), None);
    }
}
