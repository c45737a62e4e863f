//! A field tree per frame, down to CPG fields, showing which frames a reassembled message
//! came from.

use std::io::{self, Write};

use crate::model::{FrameRecord, MessageRecord, TotemBody, TotemRecord};

/// Writes the tree of `frame`.
pub fn write_frame(out: &mut dyn Write, frame: &FrameRecord, t0: f64) -> io::Result<()> {
    writeln!(
        out,
        "Frame {}: {} bytes captured, t={:.6} (+{:.6})",
        frame.frame,
        frame.caplen,
        frame.ts,
        frame.ts - t0
    )?;
    if let (Some(src), Some(dst)) = (&frame.src, &frame.dst) {
        writeln!(
            out,
            "  UDP {src} \u{2192} {dst}, {} bytes",
            frame.udp_len.unwrap_or(0)
        )?;
    }
    writeln!(out, "  Transport: {}", frame.transport)?;
    if let Some(k) = &frame.knet {
        writeln!(out, "  knet v1 {}", k.packet_type)?;
        writeln!(out, "    node: {}", k.node)?;
        if let Some(v) = k.seq_num {
            writeln!(out, "    seq_num: {v}")?;
        }
        if let Some(v) = k.bcast {
            writeln!(out, "    bcast: {v}")?;
        }
        if let Some(v) = &k.frag {
            writeln!(out, "    fragment: {v}")?;
        }
        if let Some(v) = k.channel {
            writeln!(out, "    channel: {v}")?;
        }
        if let Some(v) = k.link {
            writeln!(out, "    link: {v}")?;
        }
        if let Some(v) = k.pmtud_size {
            writeln!(out, "    pmtud size: {v}")?;
        }
        if !k.reassembled_from.is_empty() {
            writeln!(out, "    reassembled from frames: {:?}", k.reassembled_from)?;
        }
    }
    if let Some(t) = &frame.totem {
        write_totem(out, t, 2)?;
    }
    for m in &frame.messages {
        write_message(out, m)?;
    }
    for note in &frame.notes {
        writeln!(out, "  Note: {note}")?;
    }
    if let Some(e) = &frame.error {
        writeln!(
            out,
            "  Error: {} at offset {}: {} ({})",
            e.layer, e.offset, e.reason, e.kind
        )?;
    }
    writeln!(out)
}

fn write_totem(out: &mut dyn Write, t: &TotemRecord, indent: usize) -> io::Result<()> {
    let pad = " ".repeat(indent);
    writeln!(out, "{pad}Totem {} ({})", t.message_type, t.byte_order)?;
    writeln!(out, "{pad}  nodeid: {}", t.nodeid)?;
    writeln!(out, "{pad}  target_nodeid: {}", t.target_nodeid)?;
    match &t.body {
        TotemBody::OrfToken {
            ring_id,
            seq,
            token_seq,
            aru,
            aru_addr,
            backlog,
            fcc,
            retrans_flg,
            rtr,
        } => {
            writeln!(out, "{pad}  ring_id: {ring_id}")?;
            writeln!(out, "{pad}  seq: {seq}")?;
            writeln!(out, "{pad}  token_seq: {token_seq}")?;
            writeln!(out, "{pad}  aru: {aru}")?;
            writeln!(out, "{pad}  aru_addr: {aru_addr}")?;
            writeln!(out, "{pad}  backlog: {backlog}")?;
            writeln!(out, "{pad}  fcc: {fcc}")?;
            writeln!(out, "{pad}  retrans_flg: {retrans_flg}")?;
            writeln!(out, "{pad}  rtr_list ({} entries)", rtr.len())?;
            for r in rtr {
                writeln!(out, "{pad}    ring {} seq {}", r.ring_id, r.seq)?;
            }
        }
        TotemBody::Mcast {
            ring_id,
            seq,
            system_from,
            this_seqno,
            node_id,
            guarantee,
            encapsulated,
            inner,
            pg,
            duplicate_of,
        } => {
            writeln!(out, "{pad}  system_from: {system_from}")?;
            writeln!(out, "{pad}  seq: {seq}")?;
            writeln!(out, "{pad}  this_seqno: {this_seqno}")?;
            writeln!(out, "{pad}  ring_id: {ring_id}")?;
            writeln!(out, "{pad}  node_id: {node_id}")?;
            writeln!(out, "{pad}  guarantee: {guarantee}")?;
            writeln!(out, "{pad}  encapsulated: {encapsulated}")?;
            if let Some(first) = duplicate_of {
                writeln!(out, "{pad}  duplicate of frame {first}")?;
            }
            if let Some(pg) = pg {
                writeln!(out, "{pad}  totempg")?;
                writeln!(out, "{pad}    fragmented: {}", pg.fragmented)?;
                writeln!(out, "{pad}    continuation: {}", pg.continuation)?;
                writeln!(out, "{pad}    msg_count: {}", pg.lens.len())?;
                writeln!(out, "{pad}    msg_len: {:?}", pg.lens)?;
            }
            if let Some(inner) = inner {
                writeln!(out, "{pad}  encapsulated message:")?;
                write_totem(out, inner, indent + 4)?;
            }
        }
        TotemBody::MergeDetect {
            ring_id,
            system_from,
        } => {
            writeln!(out, "{pad}  system_from: {system_from}")?;
            writeln!(out, "{pad}  ring_id: {ring_id}")?;
        }
        TotemBody::Join {
            system_from,
            ring_seq,
            proc_list,
            failed_list,
            leave,
        } => {
            writeln!(out, "{pad}  system_from: {system_from}")?;
            writeln!(out, "{pad}  ring_seq: {ring_seq} ({ring_seq:#x})")?;
            writeln!(out, "{pad}  proc_list: {proc_list:?}")?;
            writeln!(out, "{pad}  failed_list: {failed_list:?}")?;
            if *leave {
                writeln!(
                    out,
                    "{pad}  (a LEAVE: header nodeid 0, leaver last in failed_list)"
                )?;
            }
        }
        TotemBody::CommitToken {
            ring_id,
            token_seq,
            memb_index,
            addr,
            memb_list,
        } => {
            writeln!(out, "{pad}  token_seq: {token_seq}")?;
            writeln!(out, "{pad}  ring_id: {ring_id}")?;
            writeln!(out, "{pad}  memb_index: {memb_index}")?;
            writeln!(out, "{pad}  addr: {addr:?}")?;
            for (node, e) in addr.iter().zip(memb_list) {
                writeln!(
                    out,
                    "{pad}    node {node}: old ring {} aru {} high_delivered {} received_flg {}",
                    e.ring_id, e.aru, e.high_delivered, e.received_flg
                )?;
            }
        }
        TotemBody::TokenHoldCancel { ring_id } => {
            writeln!(out, "{pad}  ring_id: {ring_id}")?;
        }
        TotemBody::Unknown { body_len } => {
            writeln!(out, "{pad}  body: {body_len} bytes")?;
        }
    }
    Ok(())
}

fn write_message(out: &mut dyn Write, m: &MessageRecord) -> io::Result<()> {
    writeln!(
        out,
        "  Message {} from node {} ({} bytes, group {:?}), frames {:?}",
        m.name, m.sender, m.len, m.groups, m.frames
    )?;
    for (key, value) in &m.detail.0 {
        writeln!(out, "    {key}: {value}")?;
    }
    if let Some(e) = &m.error {
        writeln!(
            out,
            "    Error: {} at offset {}: {}",
            e.layer, e.offset, e.reason
        )?;
    }
    Ok(())
}
