//! One line per frame, like tshark's summary: number, relative time, addresses, length,
//! the totem message and what it carried. Built in a reused buffer with [`Line`]: this view
//! is what people run over a whole capture, so it avoids `core::fmt` on the hot path.

use std::io::{self, Write};

use crate::model::{FrameRecord, MessageRecord, TotemBody, TotemRecord, Value};
use crate::render::fast::{hex16, Line};

/// Writes summary lines, reusing one buffer.
#[derive(Debug, Default)]
pub struct SummaryWriter {
    line: Line,
}

impl SummaryWriter {
    /// Writes the summary line of `frame`; `t0` is the capture's first timestamp.
    pub fn write_frame(
        &mut self,
        out: &mut dyn Write,
        frame: &FrameRecord,
        t0: f64,
    ) -> io::Result<()> {
        let l = &mut self.line;
        l.buf.clear();
        l.u_width(frame.frame, 6)
            .s(" ")
            .seconds(frame.ts - t0, 11)
            .s(" ");
        match (&frame.src, &frame.dst) {
            (Some(src), Some(dst)) => {
                l.addr(src).s(" \u{2192} ").addr(dst).s(" ");
            }
            _ => {
                l.s("- ");
            }
        }
        l.s(frame.transport).s(" ");
        l.u(frame.udp_len.unwrap_or(frame.caplen) as u64).s("B");
        if let Some(knet) = &frame.knet {
            if knet.packet_type != "DATA" || frame.totem.is_none() {
                l.s(" knet ")
                    .s(&knet.packet_type)
                    .s(" node=")
                    .u(knet.node.into());
                if let Some(seq) = knet.seq_num {
                    l.s(" seq=").u(seq.into());
                }
                if let Some(frag) = &knet.frag {
                    l.s(" frag=").s(frag);
                }
                if let Some(size) = knet.pmtud_size {
                    l.s(" size=").u(size.into());
                }
            }
        }
        if let Some(totem) = &frame.totem {
            l.s(" ");
            write_totem(l, totem);
        }
        for message in &frame.messages {
            l.s(" | ");
            write_message(l, message);
        }
        for note in &frame.notes {
            l.s(" (").s(note).s(")");
        }
        if let Some(e) = &frame.error {
            l.s(" [error: ")
                .s(e.layer)
                .s(" at offset ")
                .u(e.offset as u64)
                .s(": ")
                .s(&e.reason)
                .s("]");
        }
        l.s("\n");
        out.write_all(&l.buf)
    }
}

fn write_totem(l: &mut Line, t: &TotemRecord) {
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
            l.s("ORF_TOKEN from=").u(t.nodeid.into());
            l.s(" ring=").x(ring_id.rep.into()).s(".").x(ring_id.seq);
            l.s(" token_seq=")
                .u((*token_seq).into())
                .s(" seq=")
                .u((*seq).into());
            l.s(" aru=").u((*aru).into());
            if *aru_addr != 0 {
                l.s(" aru_addr=").u((*aru_addr).into());
            }
            if *retrans_flg != 0 {
                l.s(" retrans_flg=").i((*retrans_flg).into());
            }
            if !rtr.is_empty() {
                l.s(" rtr=[");
                for (i, r) in rtr.iter().enumerate() {
                    if i > 0 {
                        l.s(",");
                    }
                    l.u(r.seq.into());
                }
                l.s("]");
            }
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
            l.s("MCAST from=").u(t.nodeid.into());
            l.s(" ring=").x(ring_id.rep.into()).s(".").x(ring_id.seq);
            l.s(" seq=").u((*seq).into());
            if *encapsulated {
                l.s(" encapsulated");
                if let Some(inner) = inner {
                    if let TotemBody::Mcast { ring_id, seq, .. } = &inner.body {
                        l.s("(from=").u(inner.nodeid.into());
                        l.s(" ring=").x(ring_id.rep.into()).s(".").x(ring_id.seq);
                        l.s(" seq=").u((*seq).into()).s(")");
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
                l.s(" pg[").u(pg.lens.len() as u64).s("]");
                if pg.continuation != 0 {
                    l.s(" cont=").u(pg.continuation.into());
                }
                if pg.fragmented != 0 {
                    l.s(" frag=").u(pg.fragmented.into());
                }
            }
            if let Some(first) = duplicate_of {
                l.s(" dup-of=").u(*first);
            }
        }
        TotemBody::MergeDetect { ring_id, .. } => {
            l.s("MEMB_MERGE_DETECT from=").u(t.nodeid.into());
            l.s(" ring=").x(ring_id.rep.into()).s(".").x(ring_id.seq);
        }
        TotemBody::Join {
            system_from,
            ring_seq,
            proc_list,
            failed_list,
            leave,
        } => {
            l.s(if *leave {
                "MEMB_JOIN(LEAVE)"
            } else {
                "MEMB_JOIN"
            });
            l.s(" from=")
                .u((*system_from).into())
                .s(" ring_seq=")
                .x(*ring_seq);
            l.s(" proc=").list(proc_list);
            if !failed_list.is_empty() {
                l.s(" failed=").list(failed_list);
            }
        }
        TotemBody::CommitToken {
            ring_id,
            token_seq,
            memb_index,
            addr,
            ..
        } => {
            l.s("MEMB_COMMIT_TOKEN from=").u(t.nodeid.into());
            l.s(" ring=").x(ring_id.rep.into()).s(".").x(ring_id.seq);
            l.s(" token_seq=").u((*token_seq).into());
            l.s(" memb_index=").i((*memb_index).into());
            l.s(" members=").list(addr);
        }
        TotemBody::TokenHoldCancel { ring_id } => {
            l.s("TOKEN_HOLD_CANCEL from=").u(t.nodeid.into());
            l.s(" ring=").x(ring_id.rep.into()).s(".").x(ring_id.seq);
        }
        TotemBody::Unknown { body_len } => {
            l.s(&t.message_type).s(" from=").u(t.nodeid.into());
            l.s(" (").u(*body_len as u64).s("B)");
        }
    }
}

fn write_message(l: &mut Line, m: &MessageRecord) {
    l.s(&m.name);
    for (key, value) in &m.detail.0 {
        l.s(" ").s(key).s("=");
        match value {
            Value::U(n) => {
                l.u(*n);
            }
            Value::Str(s) => {
                l.s(s);
            }
            Value::Static(s) => {
                l.s(s);
            }
            Value::Shared(s) => {
                l.s(s);
            }
            Value::Digest(d) => {
                let mut buf = [0u8; 16];
                l.s(hex16(*d, &mut buf));
            }
            other => {
                let _ = write!(l.buf, "{other}");
            }
        }
    }
    if m.frames.len() > 1 {
        l.s(" (")
            .u(m.len as u64)
            .s("B from ")
            .u(m.frames.len() as u64)
            .s(" frames)");
    }
    if let Some(e) = &m.error {
        l.s(" [error: ")
            .s(e.layer)
            .s(" at offset ")
            .u(e.offset as u64)
            .s(": ")
            .s(&e.reason)
            .s("]");
    }
}
