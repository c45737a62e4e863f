//! The sort queue (`include/corosync/sq.h`): messages of one ring by sequence number, in a
//! window of `QUEUE_RTR_ITEMS_SIZE_MAX` numbers starting at `head_seqid`, with a miss count
//! per missing number so that a gap is only requested after `miss_count_const` tokens.

use std::collections::{BTreeMap, HashMap};

use crate::seq::seq_lt;

/// `QUEUE_RTR_ITEMS_SIZE_MAX`.
pub const QUEUE_RTR_ITEMS_SIZE_MAX: u32 = 16384;
/// `ADJUST_ROLLOVER_POINT` / `ADJUST_ROLLOVER_VALUE`, as `sq_in_range` uses them.
const ROLLOVER_POINT: u32 = 0x8000_0000;
const ROLLOVER_VALUE: u32 = 0x1_0000;

/// Messages by sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortQueue {
    head_seqid: u32,
    items: BTreeMap<u32, Vec<u8>>,
    miss_counts: HashMap<u32, u32>,
}

impl SortQueue {
    /// An empty queue whose window starts at `head_seqid` (`sq_init`, `sq_reinit`).
    pub fn new(head_seqid: u32) -> SortQueue {
        SortQueue {
            head_seqid,
            items: BTreeMap::new(),
            miss_counts: HashMap::new(),
        }
    }

    /// `sq_in_range`: is `seq` inside the window?
    pub fn in_range(&self, seq: u32) -> bool {
        let (s, h) = if self.head_seqid > ROLLOVER_POINT {
            (
                seq.wrapping_sub(ROLLOVER_VALUE),
                self.head_seqid.wrapping_sub(ROLLOVER_VALUE),
            )
        } else {
            (seq, self.head_seqid)
        };
        s >= h && u64::from(s) < u64::from(h) + u64::from(QUEUE_RTR_ITEMS_SIZE_MAX)
    }

    /// `sq_item_inuse`.
    pub fn contains(&self, seq: u32) -> bool {
        self.items.contains_key(&seq)
    }

    /// `sq_item_get`.
    pub fn get(&self, seq: u32) -> Option<&[u8]> {
        self.items.get(&seq).map(Vec::as_slice)
    }

    /// `sq_item_add`: stores `message` at `seq` (the caller checked range and absence).
    pub fn insert(&mut self, seq: u32, message: Vec<u8>) {
        self.miss_counts.remove(&seq);
        self.items.insert(seq, message);
    }

    /// `sq_item_miss_count`: one more token saw `seq` missing; returns the new count.
    pub fn miss(&mut self, seq: u32) -> u32 {
        let count = self.miss_counts.entry(seq).or_insert(0);
        *count += 1;
        *count
    }

    /// `sq_items_release`: forgets everything up to and including `seq`.
    pub fn release_to(&mut self, seq: u32) {
        let keep = self.items.split_off(&seq.wrapping_add(1));
        // After a wrap the split above keeps everything; drop what the window left behind.
        self.items = keep
            .into_iter()
            .filter(|(s, _)| !seq_lt(*s, seq.wrapping_add(1)))
            .collect();
        self.miss_counts
            .retain(|s, _| !seq_lt(*s, seq.wrapping_add(1)));
        self.head_seqid = seq.wrapping_add(1);
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_moves_with_releases() {
        let mut q = SortQueue::new(0);
        assert!(q.in_range(0) && q.in_range(16383) && !q.in_range(16384));
        q.insert(1, vec![1]);
        q.insert(2, vec![2]);
        assert_eq!(q.get(2), Some(&[2u8][..]));
        assert_eq!(q.miss(3), 1);
        assert_eq!(q.miss(3), 2);
        q.release_to(2);
        assert!(!q.contains(1) && !q.contains(2));
        assert!(!q.in_range(2) && q.in_range(16386) && !q.in_range(16387));
        q.insert(3, vec![3]);
        assert_eq!(q.miss(3), 1, "adding a message resets its miss count");
    }

    #[test]
    fn the_window_survives_the_rollover() {
        let mut q = SortQueue::new(0xFFFF_FFF0);
        assert!(q.in_range(0xFFFF_FFF0) && q.in_range(5));
        q.insert(0xFFFF_FFFF, vec![1]);
        q.insert(3, vec![2]);
        q.release_to(0xFFFF_FFFF);
        assert!(q.contains(3));
        assert!(!q.contains(0xFFFF_FFFF));
        assert!(q.in_range(0) && !q.in_range(0xFFFF_FFFF));
    }
}
