use std::borrow::Cow;
use std::collections::HashMap;

use crate::pg::PgPacket;

/// Bounds on what an [`Assembler`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerLimits {
    /// Largest message kept across packets. corosync's assembly buffer holds
    /// `MESSAGE_SIZE_MAX` (1 MiB) + `KNET_MAX_PACKET_SIZE` (64 KiB).
    pub message_len_max: usize,
    /// Most senders tracked at once.
    pub senders_max: usize,
}

impl Default for AssemblerLimits {
    fn default() -> Self {
        AssemblerLimits {
            message_len_max: (1 << 20) + (1 << 16),
            senders_max: 4096,
        }
    }
}

/// How an [`Assembler`] treats a continuation that does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Salvage {
    /// Exactly what corosync delivers (`totempg_deliver_fn`), quirks included: after a
    /// continuation that does not match, the sender's packets are thrown away until one
    /// ends complete (`fragmented` 0, which frees the assembly) or a fragmenting packet with
    /// tag 1 comes, which itself delivers nothing.
    Corosync,
    /// For an observer: drop only the pieces that cannot be completed and deliver every
    /// whole message, so a capture that starts mid-message loses as little as possible.
    Observer,
}

/// A message put back together, with the tags of the packets it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled<'a, T> {
    /// Sending nodeid (the totemsrp header nodeid).
    pub sender: u32,
    /// The whole message: group prefix and payload. Borrowed when it lay in one packet.
    pub data: Cow<'a, [u8]>,
    /// Tags of the packets it spans, in order (one tag for an unfragmented message).
    pub sources: Vec<T>,
}

/// Something fed to the assembler that did not become a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded<T> {
    /// Sending nodeid.
    pub sender: u32,
    /// Bytes thrown away.
    pub len: usize,
    /// Why.
    pub reason: &'static str,
    /// Tags of the packets the bytes came from.
    pub sources: Vec<T>,
}

/// What one packet produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed<'a, T> {
    /// Complete messages, in order.
    pub delivered: Vec<Assembled<'a, T>>,
    /// Pieces dropped.
    pub discarded: Vec<Discarded<T>>,
}

#[derive(Debug)]
struct SenderAssembly<T> {
    partial: Vec<u8>,
    sources: Vec<T>,
    last_frag_num: u8,
    throw_away: bool,
}

impl<T> Default for SenderAssembly<T> {
    fn default() -> Self {
        SenderAssembly {
            partial: Vec::new(),
            sources: Vec::new(),
            last_frag_num: 0,
            throw_away: false,
        }
    }
}

/// Per-sender reassembly of totempg messages across packets (spec §3.3).
///
/// Packets must be fed in delivery order (totemsrp's agreed order, or capture order for an
/// observer). `T` tags each packet (a frame number in the inspector, `()` in the daemon) so
/// that a message can say where it came from.
#[derive(Debug)]
pub struct Assembler<T> {
    senders: HashMap<u32, SenderAssembly<T>>,
    limits: AssemblerLimits,
    salvage: Salvage,
}

impl<T: Clone> Assembler<T> {
    /// An assembler that delivers exactly what corosync 3.1.7 delivers.
    pub fn corosync(limits: AssemblerLimits) -> Self {
        Assembler {
            senders: HashMap::new(),
            limits,
            salvage: Salvage::Corosync,
        }
    }

    /// An assembler for a passive observer: every complete message is delivered.
    pub fn observer(limits: AssemblerLimits) -> Self {
        Assembler {
            senders: HashMap::new(),
            limits,
            salvage: Salvage::Observer,
        }
    }

    /// Forgets a sender's partial message: corosync does this for the nodes in a
    /// configuration change's left list (`totempg.c::app_confchg_fn`).
    pub fn reset(&mut self, sender: u32) -> Option<Discarded<T>> {
        let assembly = self.senders.remove(&sender)?;
        (!assembly.partial.is_empty()).then_some(Discarded {
            sender,
            len: assembly.partial.len(),
            reason: "sender left the configuration",
            sources: assembly.sources,
        })
    }

    /// Bytes held for `sender`'s unfinished message.
    pub fn pending_len(&self, sender: u32) -> usize {
        self.senders.get(&sender).map_or(0, |a| a.partial.len())
    }

    /// Feeds one packet of `sender`.
    pub fn feed<'a>(&mut self, sender: u32, packet: &PgPacket<'a>, tag: T) -> Fed<'a, T> {
        let mut fed = Fed {
            delivered: Vec::new(),
            discarded: Vec::new(),
        };
        if !self.senders.contains_key(&sender) && self.senders.len() >= self.limits.senders_max {
            fed.discarded.push(Discarded {
                sender,
                len: packet.entries.iter().map(|e| e.len()).sum(),
                reason: "too many senders tracked",
                sources: vec![tag],
            });
            return fed;
        }
        let limits = self.limits;
        let salvage = self.salvage;
        let assembly = self.senders.entry(sender).or_default();
        let entries = &packet.entries;
        let fragmented = packet.fragmented != 0;
        // Entries [first, complete_end) are whole messages (the first may finish a piece held
        // from earlier packets); with `fragmented`, the last entry starts the next piece.
        let complete_end = if fragmented {
            entries.len().saturating_sub(1)
        } else {
            entries.len()
        };
        let mut first = 0;
        let mut deliver = true;

        if assembly.throw_away {
            if salvage == Salvage::Corosync {
                // totempg_deliver_fn: throw-away ends on fragmented 0 or 1, skipping entry 0,
                // and nothing of this packet is delivered.
                deliver = false;
                if packet.fragmented <= 1 {
                    assembly.throw_away = false;
                }
            } else {
                assembly.throw_away = false;
                if packet.continuation != 0 {
                    first = 1;
                }
            }
            if first == 1 || !deliver {
                if let Some(entry) = entries.first() {
                    fed.discarded.push(Discarded {
                        sender,
                        len: entry.len(),
                        reason: "continuation of a message whose start was lost",
                        sources: vec![tag.clone()],
                    });
                }
                first = 1;
            }
            assembly.partial.clear();
            assembly.sources.clear();
        } else if packet.continuation != assembly.last_frag_num {
            // A piece that does not continue what we hold (or continues nothing we hold).
            if !assembly.partial.is_empty() {
                fed.discarded.push(Discarded {
                    sender,
                    len: assembly.partial.len(),
                    reason: "message never completed: next packet did not continue it",
                    sources: std::mem::take(&mut assembly.sources),
                });
                assembly.partial.clear();
            }
            if let Some(entry) = entries.first().filter(|_| packet.continuation != 0) {
                fed.discarded.push(Discarded {
                    sender,
                    len: entry.len(),
                    reason: "continuation of a message whose start was lost",
                    sources: vec![tag.clone()],
                });
            }
            match salvage {
                Salvage::Corosync => {
                    assembly.throw_away = true;
                    deliver = false;
                }
                Salvage::Observer => first = usize::from(packet.continuation != 0),
            }
        }

        if deliver {
            for (index, entry) in entries.iter().enumerate().take(complete_end).skip(first) {
                if index == 0 && !assembly.partial.is_empty() {
                    let mut data = std::mem::take(&mut assembly.partial);
                    let mut sources = std::mem::take(&mut assembly.sources);
                    data.extend_from_slice(entry);
                    sources.push(tag.clone());
                    fed.delivered.push(Assembled {
                        sender,
                        data: Cow::Owned(data),
                        sources,
                    });
                } else {
                    fed.delivered.push(Assembled {
                        sender,
                        data: Cow::Borrowed(entry),
                        sources: vec![tag.clone()],
                    });
                }
            }
            assembly.last_frag_num = packet.fragmented;
        }

        if fragmented {
            if let Some(last) = entries.last() {
                // A single entry that is both continuation and fragment extends what we hold.
                let extends = entries.len() == 1 && first == 0 && deliver;
                if !extends {
                    assembly.partial.clear();
                    assembly.sources.clear();
                }
                if assembly.partial.len() + last.len() > limits.message_len_max {
                    fed.discarded.push(Discarded {
                        sender,
                        len: assembly.partial.len() + last.len(),
                        reason: "message longer than the assembly buffer",
                        sources: std::mem::take(&mut assembly.sources),
                    });
                    assembly.partial.clear();
                    assembly.throw_away = true;
                } else {
                    assembly.partial.extend_from_slice(last);
                    assembly.sources.push(tag);
                }
            }
        } else {
            // A packet that ends complete ends the assembly: corosync puts it back on the
            // free list (`assembly_deref`) and the next packet of this sender starts from a
            // fresh one (`assembly_ref`), throw-away mode included. The entry is kept and
            // cleared here instead of re-created: most packets are unfragmented, and
            // re-creating it each time was measurable.
            assembly.last_frag_num = 0;
            assembly.throw_away = false;
            assembly.partial.clear();
            assembly.sources.clear();
        }
        fed
    }
}
