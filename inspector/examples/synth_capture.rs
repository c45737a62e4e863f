//! Writes a large, realistic corosync 3 udpu capture for benchmarks: a 3-node ring passing
//! the token, each node multicasting CPG messages packed by totempg (several per MCAST),
//! some large enough to be fragmented over many MCASTs, every MCAST sent once per peer as
//! udpu does. Every byte is built with totem-wire, so the file decodes cleanly.
//!
//! `cargo run --release -p totem-inspect --example synth_capture -- OUT.pcap FRAMES`

use std::io::{BufWriter, Write};

use totem_wire::exec::cpg::{CpgMcast, CpgMessage, CpgName, MessageSource};
use totem_wire::exec::{ExecHeader, ServiceId};
use totem_wire::pg::{GroupPrefix, PgPacket};
use totem_wire::srp::{Header, Mcast, Message, MessageType, OrfToken, RingId};
use totem_wire::ByteOrder;

const NODES: u32 = 3;
/// totempg's data per packet on udpu (`TOTEMPG_PACKET_SIZE` − 2 for the first length).
const PG_DATA_MAX: usize = 1400;

struct Writer<W: Write> {
    out: W,
    frames: u64,
    time_us: u64,
}

impl<W: Write> Writer<W> {
    fn header(&mut self) -> std::io::Result<()> {
        // Classic pcap, microseconds, Ethernet.
        self.out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        self.out.write_all(&2u16.to_le_bytes())?;
        self.out.write_all(&4u16.to_le_bytes())?;
        self.out.write_all(&[0; 8])?;
        self.out.write_all(&65535u32.to_le_bytes())?;
        self.out.write_all(&1u32.to_le_bytes())
    }

    fn udp(&mut self, from: u32, to: u32, sport: u16, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(42 + payload.len());
        let builder = etherparse::PacketBuilder::ethernet2(mac(from), mac(to))
            .ipv4(
                [10, 200, 0, 10 + from as u8],
                [10, 200, 0, 10 + to as u8],
                64,
            )
            .udp(sport, 5405);
        builder
            .write(&mut frame, payload)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.time_us += 12;
        let sec = (1_795_000_000 + self.time_us / 1_000_000) as u32;
        let usec = (self.time_us % 1_000_000) as u32;
        self.out.write_all(&sec.to_le_bytes())?;
        self.out.write_all(&usec.to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&frame)?;
        self.frames += 1;
        Ok(())
    }
}

fn mac(node: u32) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, node as u8]
}

/// One CPG MCAST exec message wrapped in the group prefix of group "a".
fn cpg_message(sender: u32, pid: u32, counter: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (counter as usize + i) as u8;
    }
    let message = CpgMessage::Mcast(CpgMcast {
        header: ExecHeader::new(ServiceId::Cpg, 3, 184 + len),
        group: CpgName::new(b"bench").expect("short name"),
        msglen: len as u32,
        pid,
        source: MessageSource {
            nodeid: sender,
            conn: 0x5555_0000 + u64::from(sender),
        },
        data: &data,
    });
    let mut out = Vec::new();
    GroupPrefix::single(GroupPrefix::EXEC).emit(&mut out, ByteOrder::Little);
    message.emit(&mut out, ByteOrder::Little);
    out
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(frames)) = (args.get(1), args.get(2).and_then(|f| f.parse::<u64>().ok()))
    else {
        eprintln!("usage: synth_capture OUT.pcap FRAMES");
        std::process::exit(2);
    };
    let file = std::fs::File::create(path)?;
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        frames: 0,
        time_us: 0,
    };
    w.header()?;
    let ring_id = RingId { rep: 1, seq: 0x1c };
    let mut seq = 0u32;
    let mut token_seq = 0u32;
    let mut counter = 0u64;
    let mut fragment_tag = [1u8; NODES as usize + 1];
    let mut holder = 1u32;
    while w.frames < frames {
        // The holder multicasts a burst: small messages packed, and every 40th burst a 64 KiB
        // message that totempg splits over 47 packets.
        let mut pending: Vec<Vec<u8>> = (0..6)
            .map(|i| {
                counter += 1;
                cpg_message(
                    holder,
                    1000 + holder,
                    counter,
                    [100, 320, 64, 1000, 200, 40][i],
                )
            })
            .collect();
        if counter % 240 == 0 {
            pending.push(cpg_message(holder, 1000 + holder, counter, 65536));
        }
        let mut packets: Vec<(u8, u8, Vec<Vec<u8>>)> = Vec::new();
        let mut entries: Vec<Vec<u8>> = Vec::new();
        let mut used = 0usize;
        let mut continuation = 0u8;
        for message in pending {
            let mut rest: &[u8] = &message;
            while !rest.is_empty() {
                let room = PG_DATA_MAX - used - 2 * entries.len();
                if rest.len() <= room {
                    used += rest.len();
                    entries.push(rest.to_vec());
                    rest = &[];
                } else {
                    let (head, tail) = rest.split_at(room);
                    entries.push(head.to_vec());
                    let tag = fragment_tag[holder as usize];
                    fragment_tag[holder as usize] = tag.checked_add(1).unwrap_or(1);
                    packets.push((tag, continuation, std::mem::take(&mut entries)));
                    continuation = tag;
                    used = 0;
                    rest = tail;
                }
            }
        }
        if !entries.is_empty() {
            packets.push((0, continuation, entries));
        }
        for (fragmented, continuation, entries) in &packets {
            seq += 1;
            let pg = PgPacket {
                order: ByteOrder::Little,
                version: 0,
                pg_type: 0,
                fragmented: *fragmented,
                continuation: *continuation,
                entries: entries.iter().map(|e| e.as_slice()).collect(),
            };
            let mut payload = Vec::new();
            pg.emit(&mut payload);
            let mcast = Message::Mcast(Mcast {
                header: Header {
                    encapsulated: 2,
                    ..Header::new(MessageType::Mcast, holder)
                },
                system_from: holder,
                seq,
                this_seqno: seq as i32,
                ring_id,
                node_id: 0,
                guarantee: 0,
                payload: &payload,
            });
            let bytes = mcast.to_bytes();
            for peer in 1..=NODES {
                if peer != holder {
                    w.udp(holder, peer, 40000 + peer as u16, &bytes)?;
                }
            }
        }
        token_seq += 1;
        let next = holder % NODES + 1;
        let token = Message::OrfToken(OrfToken {
            header: Header {
                target_nodeid: next,
                ..Header::new(MessageType::OrfToken, holder)
            },
            seq,
            token_seq,
            aru: seq,
            aru_addr: 0,
            ring_id,
            backlog: 0,
            fcc: packets.len() as u32,
            retrans_flg: 0,
            rtr_list: Vec::new(),
        });
        w.udp(holder, next, 5405, &token.to_bytes())?;
        holder = next;
    }
    w.out.flush()?;
    eprintln!("{path}: {} frames", w.frames);
    Ok(())
}
