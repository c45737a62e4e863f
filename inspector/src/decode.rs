//! The per-capture decoding pipeline: UDP payload → knet (and its fragments) → totemsrp →
//! totempg (reassembled per sender) → group → exec service or sync. State lives here
//! (fragments, partial messages, the duplicate window); every frame becomes one
//! [`FrameRecord`], whatever fails on the way.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use totem_wire::exec::cmap::CmapMcast;
use totem_wire::exec::cpg::CpgMessage;
use totem_wire::exec::votequorum::fixed_name_text;
use totem_wire::exec::{CfgMessage, ExecMessage, PloadMessage, SyncMessage, VotequorumMessage};
use totem_wire::knet::{
    DefragLimits, Defragmented, Defragmenter, KnetBody, KnetPacket, KNET_DATA_HEADER_LEN,
};
use totem_wire::pg::{Assembler, AssemblerLimits, GroupPrefix, PgPacket};
use totem_wire::srp::{Encapsulation, Mcast, Message, MCAST_HEADER_LEN};
use totem_wire::{classify, ByteOrder, Framing};

use crate::capture::RawFrame;
use crate::layers::{Datagram, Layered, Layers};
use crate::model::{
    CommitEntryRecord, ErrorRecord, Fields, FrameRecord, KnetRecord, MessageRecord, PgRecord,
    RingRecord, RtrRecord, TotemBody, TotemRecord, Value,
};

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
}

/// knet reassemblies remembered for provenance.
const KNET_SOURCES_MAX: usize = 4096;

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
        }
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
        let message = match Message::parse(bytes) {
            Ok((m, _)) => m,
            Err(e) => {
                record.error = Some(ErrorRecord::from(&e.add_offset(base)));
                return;
            }
        };
        let header = *message.header();
        let body = match &message {
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
            Message::Mcast(m) => self.decode_mcast(frame, m, base, record),
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
            message_type: type_name(header.message_type),
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
        base: usize,
        record: &mut FrameRecord,
    ) -> TotemBody {
        let encapsulated = m.encapsulation() == Encapsulation::Encapsulated;
        let mut inner_record = None;
        let mut pg = None;
        let mut duplicate_of = None;
        // The message whose payload is the totempg packet: the MCAST itself, or for a
        // recovery re-send the old-ring MCAST inside it (spec §2.6).
        let carried = if encapsulated {
            match m.inner() {
                Some(Ok(inner)) => Some((inner, base + MCAST_HEADER_LEN)),
                Some(Err(e)) => {
                    record.error = Some(ErrorRecord::from(&e.add_offset(base)));
                    None
                }
                None => None,
            }
        } else {
            Some((m.clone(), base))
        };
        if let Some((carrier, carrier_base)) = carried {
            let key = (
                carrier.ring_id.rep,
                carrier.ring_id.seq,
                carrier.seq,
                carrier.header.nodeid,
            );
            duplicate_of = self.dedup.check(key, frame);
            let mut gso_rest: &[u8] = &[];
            let mut gso_packet_len = 0;
            let parsed = PgPacket::parse(carrier.payload, carrier.header.order).or_else(|e| {
                match gso_first_packet(carrier.payload, &e) {
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
                        self.feed_assembler(frame, carrier.header.nodeid, &packet, record);
                    }
                    self.feed_gso_rest(frame, gso_rest, gso_packet_len, record);
                }
                Err(e) => {
                    record.error = Some(ErrorRecord::from(
                        &e.add_offset(carrier_base + MCAST_HEADER_LEN),
                    ));
                }
            }
            if encapsulated {
                inner_record = Some(Box::new(TotemRecord {
                    message_type: type_name(carrier.header.message_type),
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
    /// A corosync 1.x/2.x datagram: the same fields, with nodeids taken from the srp_addr
    /// (whose IP addresses the verbose view does not repeat). 2.x exec messages share 3.x's
    /// layouts and service ids, so they are decoded; 1.x's (coroipc header, other service
    /// ids) are shown by service and function number.
    fn decode_legacy(&mut self, frame: u64, payload: &[u8], record: &mut FrameRecord) {
        use totem_wire::legacy::{LegacyFraming, LegacyVersion, Message as L, TransportHeader};
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
        let ring = |r: &totem_wire::legacy::RingId| RingRecord {
            rep: r.rep.nodeid,
            seq: r.seq,
        };
        let nodes =
            |list: &[totem_wire::legacy::SrpAddr]| list.iter().map(|a| a.nodeid()).collect();
        let (header_nodeid, type_name, order) = {
            let h = match &message {
                L::OrfToken(m) => &m.header,
                L::Mcast(m) => &m.header,
                L::MembMergeDetect(m) => &m.header,
                L::MembJoin(m) => &m.header,
                L::MembCommitToken(m) => &m.header,
                L::TokenHoldCancel(m) => &m.header,
                L::Unknown { header, .. } => header,
            };
            (h.nodeid, h.message_type.to_string(), h.order)
        };
        let body = match &message {
            L::OrfToken(t) => TotemBody::OrfToken {
                ring_id: ring(&t.ring_id),
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
                        ring_id: ring(&r.ring_id),
                        seq: r.seq,
                    })
                    .collect(),
            },
            L::Mcast(m) => {
                let key = (m.ring_id.rep.nodeid, m.ring_id.seq, m.seq, m.header.nodeid);
                let duplicate_of = self.dedup.check(key, frame);
                let mut pg_record = None;
                if m.header.encapsulated != 1 {
                    match PgPacket::parse(m.payload, order) {
                        Ok(packet) => {
                            pg_record = Some(PgRecord {
                                fragmented: packet.fragmented,
                                continuation: packet.continuation,
                                lens: packet.entries.iter().map(|e| e.len()).collect(),
                            });
                            if duplicate_of.is_none() {
                                let fed = self.assembler.feed(m.header.nodeid, &packet, frame);
                                for a in fed.delivered {
                                    record.messages.push(
                                        if framing.version == LegacyVersion::Corosync2 {
                                            decode_message(
                                                a.sender,
                                                &a.data,
                                                a.sources,
                                                order,
                                                &mut self.names,
                                            )
                                        } else {
                                            decode_message_1x(a.sender, &a.data, a.sources, order)
                                        },
                                    );
                                }
                            }
                        }
                        Err(e) => {
                            let offset = framing.offset + m.buffer_len() - m.payload.len();
                            record.error = Some(ErrorRecord::from(&e.add_offset(offset)));
                        }
                    }
                }
                TotemBody::Mcast {
                    ring_id: ring(&m.ring_id),
                    seq: m.seq,
                    system_from: m.system_from.nodeid(),
                    this_seqno: m.this_seqno,
                    node_id: m.node_id,
                    guarantee: m.guarantee,
                    encapsulated: m.header.encapsulated == 1,
                    inner: None,
                    pg: pg_record,
                    duplicate_of,
                }
            }
            L::MembMergeDetect(m) => TotemBody::MergeDetect {
                ring_id: ring(&m.ring_id),
                system_from: m.system_from.nodeid(),
            },
            L::MembJoin(j) => TotemBody::Join {
                system_from: j.system_from.nodeid(),
                ring_seq: j.ring_seq,
                proc_list: nodes(&j.proc_list),
                failed_list: nodes(&j.failed_list),
                leave: j.header.nodeid == 0,
            },
            L::MembCommitToken(c) => TotemBody::CommitToken {
                ring_id: ring(&c.ring_id),
                token_seq: c.token_seq,
                memb_index: c.memb_index,
                addr: nodes(&c.addr),
                memb_list: c
                    .memb_list
                    .iter()
                    .map(|e| CommitEntryRecord {
                        ring_id: ring(&e.ring_id),
                        aru: e.aru,
                        high_delivered: e.high_delivered,
                        received_flg: e.received_flg,
                    })
                    .collect(),
            },
            L::TokenHoldCancel(t) => TotemBody::TokenHoldCancel {
                ring_id: ring(&t.ring_id),
            },
            L::Unknown { body, .. } => TotemBody::Unknown {
                body_len: body.len(),
            },
        };
        record.totem = Some(TotemRecord {
            message_type: Cow::Owned(type_name),
            byte_order: order.short_name(),
            nodeid: header_nodeid,
            target_nodeid: 0,
            body,
        });
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

/// A multiply-rotate hasher for small integer keys (FxHash's scheme): the dedup window is
/// looked up for every MCAST, and SipHash's flood resistance buys nothing for a file.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
type DedupKey = (u32, u64, u32, u32);

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
                let (fields, group) = exec_fields(&message, order, names);
                record.detail = fields;
                record.cpg_group = group;
            }
            Err(e) => {
                if let Ok(h) = totem_wire::exec::ExecHeader::parse(payload, order) {
                    record.service = Cow::Owned(h.service().to_string());
                    record.name = Cow::Owned(format!("{}/fn{}", h.service(), h.function()));
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
                let mut f = Fields::default();
                if let Some(ring) = message.ring_id() {
                    f.push("ring_id", Value::Ring(ring.into()));
                }
                if let SyncMessage::ServiceBuild { services, .. } = &message {
                    f.push(
                        "services",
                        Value::List(services.iter().map(|s| *s as u32 as u64).collect()),
                    );
                }
                record.detail = f;
            }
            Err(e) => record.error = Some(ErrorRecord::from(&e.add_offset(payload_offset))),
        }
    } else {
        let mut f = Fields::default();
        f.push("payload_len", Value::U(payload.len() as u64));
        record.detail = f;
    }
    record
}

/// A corosync 1.x totempg message: the group prefix, then a coroipc header
/// (`totem_wire::legacy::CoroipcHeader`); 1.x service bodies are not decoded.
fn decode_message_1x(
    sender: u32,
    data: &[u8],
    frames: Vec<u64>,
    order: ByteOrder,
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
    match totem_wire::legacy::CoroipcHeader::parse(payload, order) {
        Ok(h) => {
            let name = totem_wire::legacy::service_name_1x(h.service()).unwrap_or("UNKNOWN");
            record.service = Cow::Owned(format!("{name}(1.x)"));
            record.name = Cow::Owned(format!("{name}(1.x)/fn{}", h.function()));
            record.detail.push("size", Value::U(h.size.into()));
        }
        Err(e) => record.error = Some(ErrorRecord::from(&e.add_offset(data.len() - payload.len()))),
    }
    record
}

/// corosync's name of a totemsrp message type, without allocating for the known ones.
fn type_name(t: totem_wire::srp::MessageType) -> Cow<'static, str> {
    match t.known_name() {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(t.to_string()),
    }
}

fn text(s: impl std::fmt::Display) -> Value {
    Value::Str(s.to_string())
}

/// The name of an open-enum value: borrowed when known.
fn name_of(known: Option<&'static str>, value: impl std::fmt::Display) -> Value {
    match known {
        Some(name) => Value::Static(name),
        None => text(value),
    }
}

/// Shares one allocation per distinct CPG group name (a capture names a handful; each
/// message used to allocate two copies). Bounded: past the limit names are not interned.
#[derive(Default)]
struct NameInterner {
    names: HashMap<Vec<u8>, Arc<str>, FxBuild>,
}

/// Distinct names kept by a [`NameInterner`].
const INTERNED_NAMES_MAX: usize = 4096;

impl NameInterner {
    fn intern(&mut self, name: &totem_wire::exec::cpg::CpgName) -> Arc<str> {
        if let Some(shared) = self.names.get(name.as_bytes()) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name.to_string());
        if self.names.len() < INTERNED_NAMES_MAX {
            self.names.insert(name.as_bytes().to_vec(), shared.clone());
        }
        shared
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
        _ => None,
    };
    match known {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(message.name()),
    }
}

fn exec_fields(
    message: &ExecMessage<'_>,
    order: ByteOrder,
    names: &mut NameInterner,
) -> (Fields, Option<Arc<str>>) {
    let mut f = Fields(Vec::with_capacity(6));
    let mut group = None;
    match message {
        ExecMessage::Cpg(cpg) => {
            if let Some(g) = cpg.group() {
                let shared = names.intern(g);
                f.push("group", Value::Shared(shared.clone()));
                group = Some(shared);
            }
            match cpg {
                CpgMessage::ProcJoin(p) | CpgMessage::ProcLeave(p) => {
                    f.push("pid", Value::U(p.pid.into()));
                    f.push("reason", name_of(p.reason.known_name(), p.reason));
                }
                CpgMessage::JoinList(j) => {
                    f.push(
                        "entries",
                        Value::Records(
                            j.entries
                                .iter()
                                .map(|e| {
                                    let mut r = Fields::default();
                                    r.push("pid", Value::U(e.pid.into()));
                                    r.push("group", Value::Shared(names.intern(&e.group)));
                                    r
                                })
                                .collect(),
                        ),
                    );
                }
                CpgMessage::Mcast(m) => {
                    f.push("pid", Value::U(m.pid.into()));
                    f.push("source_nodeid", Value::U(m.source.nodeid.into()));
                    f.push("msglen", Value::U(m.msglen.into()));
                    f.push("digest", Value::Digest(digest(m.data)));
                }
                CpgMessage::PartialMcast(m) => {
                    f.push("pid", Value::U(m.pid.into()));
                    f.push("source_nodeid", Value::U(m.source.nodeid.into()));
                    f.push("type", name_of(m.kind.known_name(), m.kind));
                    f.push("msglen", Value::U(m.msglen.into()));
                    f.push("fraglen", Value::U(m.fraglen.into()));
                    f.push("digest", Value::Digest(digest(m.data)));
                }
                CpgMessage::Downlist(d) => {
                    if let Some(old) = d.old_members {
                        f.push("old_members", Value::U(old.into()));
                    }
                    f.push("left_nodes", Value::U(d.left_nodes.into()));
                    f.push(
                        "nodeids",
                        Value::List(d.nodeids.iter().map(|n| u64::from(*n)).collect()),
                    );
                }
            }
        }
        ExecMessage::Cmap(CmapMcast { reason, items, .. }) => {
            f.push("reason", name_of(reason.known_name(), reason));
            f.push(
                "items",
                Value::Records(
                    items
                        .iter()
                        .map(|i| {
                            let mut r = Fields::default();
                            r.push(
                                "key",
                                Value::Str(String::from_utf8_lossy(i.key).into_owned()),
                            );
                            r.push("type", name_of(i.value_type.known_name(), i.value_type));
                            r.push("value", Value::Str(i.value_text(order)));
                            r
                        })
                        .collect(),
                ),
            );
        }
        ExecMessage::Votequorum(v) => match v {
            VotequorumMessage::NodeInfo {
                nodeid,
                votes,
                expected_votes,
                flags,
                ..
            } => {
                f.push("nodeid", Value::U((*nodeid).into()));
                f.push("votes", Value::U((*votes).into()));
                f.push("expected_votes", Value::U((*expected_votes).into()));
                f.push("flags", text(flags));
            }
            VotequorumMessage::Reconfigure {
                nodeid,
                value,
                param,
                ..
            } => {
                f.push("nodeid", Value::U((*nodeid).into()));
                f.push("value", Value::U((*value).into()));
                // An unknown param shows as its number.
                let raw = u8::from(*param);
                f.push("param", name_of(param.known_name(), raw));
            }
            VotequorumMessage::QdeviceReg {
                operation, name, ..
            } => {
                f.push(
                    "operation",
                    Value::Str(
                        if *operation == 1 {
                            "register"
                        } else {
                            "unregister"
                        }
                        .into(),
                    ),
                );
                f.push("name", Value::Str(fixed_name_text(&name[..])));
            }
            VotequorumMessage::QdeviceReconfigure {
                oldname, newname, ..
            } => {
                f.push("oldname", Value::Str(fixed_name_text(&oldname[..])));
                f.push("newname", Value::Str(fixed_name_text(&newname[..])));
            }
        },
        ExecMessage::Cfg(c) => match c {
            CfgMessage::RingReenable { source_nodeid, .. }
            | CfgMessage::ReloadConfig { source_nodeid, .. } => {
                f.push("source_nodeid", Value::U((*source_nodeid).into()));
            }
            CfgMessage::KillNode { nodeid, reason, .. } => {
                f.push("nodeid", Value::U((*nodeid).into()));
                f.push(
                    "reason",
                    Value::Str(String::from_utf8_lossy(reason).into_owned()),
                );
            }
            CfgMessage::Shutdown { .. } => {}
            CfgMessage::CryptoReconfig { phase, .. } => {
                f.push("phase", Value::U((*phase).into()));
            }
        },
        ExecMessage::Pload(p) => match p {
            PloadMessage::Start {
                msg_count,
                msg_size,
                ..
            } => {
                f.push("msg_count", Value::U((*msg_count).into()));
                f.push("msg_size", Value::U((*msg_size).into()));
            }
            PloadMessage::Mcast { filler, .. } => {
                f.push("len", Value::U(filler.len() as u64));
            }
        },
        ExecMessage::Unknown { body, .. } => {
            f.push("body_len", Value::U(body.len() as u64));
        }
    }
    (f, group)
}

/// A UDP GSO send caught before segmentation (a capture on the sending host or on a veth
/// that passes it uncut): one "datagram" that is several Totem packets back to back, all
/// of one length but the last (the kernel cuts it at that length). totempg then finds
/// more bytes than its message lengths declare, and the bytes past the declared ones start
/// another Totem header. Returns the first packet's totempg payload, the number of
/// packets, and their length.
impl FrameDecoder {
    /// Gives one totempg packet to the reassembly; what it completes (or discards) goes
    /// into `record`.
    fn feed_assembler(
        &mut self,
        frame: u64,
        nodeid: u32,
        packet: &PgPacket<'_>,
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
            record.messages.push(decode_message(
                assembled.sender,
                &assembled.data,
                frames,
                packet.order,
                &mut self.names,
            ));
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
                    let key = (m.ring_id.rep, m.ring_id.seq, m.seq, m.header.nodeid);
                    if self.dedup.check(key, frame).is_some() {
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
                Ok((nodeid, p)) => self.feed_assembler(frame, nodeid, &p, record),
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
    let node = payload.get(2..4)?;
    let header_at = |at: usize| {
        payload
            .get(at..)
            .is_some_and(|rest| totem_wire::knet::looks_like_knet(rest) && &rest[2..4] == node)
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
