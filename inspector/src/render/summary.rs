//! One line per frame, like tshark's summary: number, relative time, addresses, length,
//! the totem message and what it carried.

use std::io::{self, Write};

use crate::model::{FrameRecord, MessageRecord, TotemBody, TotemRecord};

/// Writes the summary line of `frame`; `t0` is the capture's first timestamp.
pub fn write_frame(out: &mut dyn Write, frame: &FrameRecord, t0: f64) -> io::Result<()> {
    write!(out, "{:>6} {:>11.6} ", frame.frame, frame.ts - t0)?;
    match (&frame.src, &frame.dst) {
        (Some(src), Some(dst)) => write!(out, "{src} \u{2192} {dst} ")?,
        _ => write!(out, "- ")?,
    }
    match frame.udp_len {
        Some(len) => write!(out, "{} {len}B", frame.transport)?,
        None => write!(out, "{} {}B", frame.transport, frame.caplen)?,
    }
    if let Some(knet) = &frame.knet {
        if knet.packet_type != "DATA" || frame.totem.is_none() {
            write!(out, " knet {} node={}", knet.packet_type, knet.node)?;
            if let Some(seq) = knet.seq_num {
                write!(out, " seq={seq}")?;
            }
            if let Some(frag) = &knet.frag {
                write!(out, " frag={frag}")?;
            }
            if let Some(size) = knet.pmtud_size {
                write!(out, " size={size}")?;
            }
        }
    }
    if let Some(totem) = &frame.totem {
        out.write_all(b" ")?;
        write_totem(out, totem)?;
    }
    for message in &frame.messages {
        out.write_all(b" | ")?;
        write_message(out, message)?;
    }
    for note in &frame.notes {
        write!(out, " ({note})")?;
    }
    if let Some(e) = &frame.error {
        write!(
            out,
            " [error: {} at offset {}: {}]",
            e.layer, e.offset, e.reason
        )?;
    }
    out.write_all(b"\n")
}

/// The totemsrp part of a summary line.
pub fn write_totem(out: &mut dyn Write, t: &TotemRecord) -> io::Result<()> {
    match &t.body {
        TotemBody::OrfToken {
            ring_id,
            seq,
            token_seq,
            aru,
            aru_addr,
            rtr,
            retrans_flg,
            ..
        } => {
            write!(
                out,
                "ORF_TOKEN from={} ring={ring_id} token_seq={token_seq} seq={seq} aru={aru}",
                t.nodeid
            )?;
            if *aru_addr != 0 {
                write!(out, " aru_addr={aru_addr}")?;
            }
            if *retrans_flg != 0 {
                write!(out, " retrans_flg={retrans_flg}")?;
            }
            if !rtr.is_empty() {
                write!(out, " rtr=[")?;
                for (i, r) in rtr.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    write!(out, "{}", r.seq)?;
                }
                out.write_all(b"]")?;
            }
            Ok(())
        }
        TotemBody::Mcast {
            ring_id,
            seq,
            encapsulated,
            inner,
            pg,
            duplicate_of,
            ..
        } => {
            write!(out, "MCAST from={} ring={ring_id} seq={seq}", t.nodeid)?;
            if *encapsulated {
                out.write_all(b" encapsulated")?;
                if let Some(inner) = inner {
                    if let TotemBody::Mcast { ring_id, seq, .. } = &inner.body {
                        write!(out, "(from={} ring={ring_id} seq={seq})", inner.nodeid)?;
                    }
                }
            }
            let pg = pg.as_ref().or(match inner.as_deref() {
                Some(TotemRecord {
                    body: TotemBody::Mcast { pg, .. },
                    ..
                }) => pg.as_ref(),
                _ => None,
            });
            if let Some(pg) = pg {
                write!(out, " pg[{}]", pg.lens.len())?;
                if pg.continuation != 0 {
                    write!(out, " cont={}", pg.continuation)?;
                }
                if pg.fragmented != 0 {
                    write!(out, " frag={}", pg.fragmented)?;
                }
            }
            if let Some(first) = duplicate_of {
                write!(out, " dup-of={first}")?;
            }
            Ok(())
        }
        TotemBody::MergeDetect { ring_id, .. } => {
            write!(out, "MEMB_MERGE_DETECT from={} ring={ring_id}", t.nodeid)
        }
        TotemBody::Join {
            system_from,
            ring_seq,
            proc_list,
            failed_list,
            leave,
        } => {
            let kind = if *leave { "MEMB_JOIN(LEAVE)" } else { "MEMB_JOIN" };
            write!(out, "{kind} from={system_from} ring_seq={ring_seq:x} proc={proc_list:?}")?;
            if !failed_list.is_empty() {
                write!(out, " failed={failed_list:?}")?;
            }
            Ok(())
        }
        TotemBody::CommitToken {
            ring_id,
            token_seq,
            memb_index,
            addr,
            ..
        } => write!(
            out,
            "MEMB_COMMIT_TOKEN from={} ring={ring_id} token_seq={token_seq} memb_index={memb_index} members={addr:?}",
            t.nodeid
        ),
        TotemBody::TokenHoldCancel { ring_id } => {
            write!(out, "TOKEN_HOLD_CANCEL from={} ring={ring_id}", t.nodeid)
        }
        TotemBody::Unknown { body_len } => {
            write!(out, "{} from={} ({body_len}B)", t.message_type, t.nodeid)
        }
    }
}

/// A reassembled message in a summary line.
pub fn write_message(out: &mut dyn Write, m: &MessageRecord) -> io::Result<()> {
    out.write_all(m.name.as_bytes())?;
    for (key, value) in &m.detail.0 {
        write!(out, " {key}={value}")?;
    }
    if m.frames.len() > 1 {
        write!(out, " ({}B from {} frames)", m.len, m.frames.len())?;
    }
    if let Some(e) = &m.error {
        write!(
            out,
            " [error: {} at offset {}: {}]",
            e.layer, e.offset, e.reason
        )?;
    }
    Ok(())
}
