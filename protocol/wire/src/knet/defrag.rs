use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::knet::{KnetData, KNET_MAX_PACKET_SIZE};

/// Bounds on what a [`Defragmenter`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragLimits {
    /// Messages being reassembled per sender at once (libknet keeps a small ring of them,
    /// `KNET_DEFRAG_BUFFERS`); the oldest is dropped beyond this.
    pub pending_per_sender_max: usize,
    /// Senders tracked.
    pub senders_max: usize,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            pending_per_sender_max: 32,
            senders_max: 4096,
        }
    }
}

/// The outcome of feeding one DATA packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defragmented<T> {
    /// The packet was not fragmented: its payload is the message.
    Whole,
    /// The last missing fragment arrived: the whole message and the fragments' tags.
    Complete {
        /// Reassembled user data.
        data: Vec<u8>,
        /// Tags of the fragments, in `frag_seq` order.
        sources: Vec<T>,
    },
    /// Stored; more fragments are needed.
    Pending,
    /// The fragment was refused.
    Dropped(&'static str),
}

#[derive(Debug)]
struct Pending<T> {
    frag_num: u8,
    fragments: BTreeMap<u8, (Vec<u8>, T)>,
    len: usize,
    age: u64,
}

/// knet's own reassembly, per (stream, seq_num) (`knet: threads_rx.c::pckt_defrag`).
///
/// A receiver keys by sending host; an observer on a shared link sees every receiver's copy
/// of a broadcast with the same seq_num, so it keys by (sender, receiver): `K` is that key.
#[derive(Debug)]
pub struct Defragmenter<K, T> {
    senders: HashMap<K, HashMap<u16, Pending<T>>>,
    limits: DefragLimits,
    clock: u64,
}

impl<K: Hash + Eq + Clone, T: Clone> Defragmenter<K, T> {
    /// A defragmenter with these bounds.
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter {
            senders: HashMap::new(),
            limits,
            clock: 0,
        }
    }

    /// Feeds one DATA packet of stream `key` (the sending host, for a receiver).
    pub fn feed(&mut self, key: K, data: &KnetData<'_>, tag: T) -> Defragmented<T> {
        if data.frag_num <= 1 {
            return Defragmented::Whole;
        }
        if data.frag_seq == 0 || data.frag_seq > data.frag_num {
            return Defragmented::Dropped("frag_seq outside 1..=frag_num");
        }
        if !self.senders.contains_key(&key) && self.senders.len() >= self.limits.senders_max {
            return Defragmented::Dropped("too many senders tracked");
        }
        self.clock += 1;
        let clock = self.clock;
        let per_sender = self.senders.entry(key).or_default();
        if !per_sender.contains_key(&data.seq_num)
            && per_sender.len() >= self.limits.pending_per_sender_max
        {
            // Like libknet's defrag ring: the oldest unfinished message gives way.
            if let Some(oldest) = per_sender
                .iter()
                .min_by_key(|(_, p)| p.age)
                .map(|(k, _)| *k)
            {
                per_sender.remove(&oldest);
            }
        }
        let pending = per_sender.entry(data.seq_num).or_insert_with(|| Pending {
            frag_num: data.frag_num,
            fragments: BTreeMap::new(),
            len: 0,
            age: clock,
        });
        if pending.frag_num != data.frag_num {
            return Defragmented::Dropped("frag_num differs from earlier fragments");
        }
        if pending.fragments.contains_key(&data.frag_seq) {
            return Defragmented::Dropped("duplicate fragment");
        }
        if pending.len + data.payload.len() > KNET_MAX_PACKET_SIZE {
            per_sender.remove(&data.seq_num);
            return Defragmented::Dropped("reassembled message above KNET_MAX_PACKET_SIZE");
        }
        pending.len += data.payload.len();
        pending
            .fragments
            .insert(data.frag_seq, (data.payload.to_vec(), tag));
        if pending.fragments.len() < usize::from(pending.frag_num) {
            return Defragmented::Pending;
        }
        let Some(done) = per_sender.remove(&data.seq_num) else {
            return Defragmented::Pending;
        };
        let mut bytes = Vec::with_capacity(done.len);
        let mut sources = Vec::with_capacity(done.fragments.len());
        for (_, (piece, tag)) in done.fragments {
            bytes.extend_from_slice(&piece);
            sources.push(tag);
        }
        Defragmented::Complete {
            data: bytes,
            sources,
        }
    }
}
