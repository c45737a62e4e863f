//! The handle table: what corosync 1.4's `hdb` did for libevs (`hdb_handle_create`,
//! `hdb_handle_get`, `hdb_handle_destroy`), without its wildcard. A handle is
//! `check << 32 | index`: `index` names a slot, `check` is a random 32-bit value stored in
//! the slot when it was filled. An unknown, finalized or forged handle finds no slot with
//! its check and is CS_ERR_BAD_HANDLE (EVS-INIT-3, EVS-FIN-2); a slot reused after a
//! finalize gets a new check, so a stale handle does not reach the new connection.
//!
//! 1.4's hdb let a handle whose check is `0xffffffff` pass without a check (its wildcard);
//! ours never hands out that check nor 0, and accepts no wildcard.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

/// One slot: empty, or a value with its check.
type Slot<V> = Option<(u32, Arc<V>)>;

/// A table of `Arc<V>` behind 64-bit handles.
pub(crate) struct HandleTable<V> {
    slots: Mutex<Vec<Slot<V>>>,
}

/// 32 random bits for a check: the kernel's, else std's per-process random hash keys
/// (only if /dev/urandom cannot be read).
fn random_check() -> u32 {
    let mut bytes = [0u8; 4];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if from_kernel {
        return u32::from_ne_bytes(bytes);
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// A check that is neither 0 (an all-zero handle is what an uninitialised variable holds)
/// nor hdb's wildcard.
fn fresh_check() -> u32 {
    loop {
        let c = random_check();
        if c != 0 && c != u32::MAX {
            return c;
        }
    }
}

impl<V> HandleTable<V> {
    /// An empty table (usable in a `static`).
    pub(crate) const fn new() -> Self {
        HandleTable {
            slots: Mutex::new(Vec::new()),
        }
    }

    /// A panic elsewhere while the table was locked leaves it consistent (every update
    /// is one assignment), so a poisoned lock is taken as it is.
    fn slots(&self) -> MutexGuard<'_, Vec<Slot<V>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `value`; its handle. `None` when the table is full (2^32 slots), which
    /// libevs answers with CS_ERR_NO_MEMORY as 1.4 did.
    pub(crate) fn insert(&self, value: Arc<V>) -> Option<u64> {
        let check = fresh_check();
        let mut slots = self.slots();
        let index = match slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                if slots.len() > u32::MAX as usize {
                    return None;
                }
                slots.push(None);
                slots.len() - 1
            }
        };
        slots[index] = Some((check, value));
        Some((u64::from(check) << 32) | index as u64)
    }

    fn split(handle: u64) -> (u32, usize) {
        ((handle >> 32) as u32, (handle & 0xffff_ffff) as usize)
    }

    /// The value behind `handle`, if the handle is live.
    pub(crate) fn get(&self, handle: u64) -> Option<Arc<V>> {
        let (check, index) = Self::split(handle);
        match self.slots().get(index) {
            Some(Some((c, v))) if *c == check => Some(Arc::clone(v)),
            _ => None,
        }
    }

    /// Takes the value out: the handle is dead from now on. `None` if it was not live
    /// (a second finalize, or one that lost a race with another: CS_ERR_BAD_HANDLE).
    pub(crate) fn remove(&self, handle: u64) -> Option<Arc<V>> {
        let (check, index) = Self::split(handle);
        let mut slots = self.slots();
        match slots.get(index) {
            Some(Some((c, _))) if *c == check => slots[index].take().map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_found_until_removed() {
        let t = HandleTable::new();
        let a = t.insert(Arc::new("a")).unwrap();
        let b = t.insert(Arc::new("b")).unwrap();
        assert_ne!(a, b);
        assert_eq!(*t.get(a).unwrap(), "a");
        assert_eq!(*t.get(b).unwrap(), "b");
        assert_eq!(*t.remove(a).unwrap(), "a");
        assert!(t.get(a).is_none());
        assert!(t.remove(a).is_none(), "a second remove finds nothing");
        assert_eq!(*t.get(b).unwrap(), "b");
    }

    #[test]
    fn a_reused_slot_does_not_answer_the_old_handle() {
        let t = HandleTable::new();
        let a = t.insert(Arc::new(1)).unwrap();
        t.remove(a).unwrap();
        let b = t.insert(Arc::new(2)).unwrap();
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the slot is reused");
        assert_ne!(a, b, "with a new check");
        assert!(t.get(a).is_none());
        assert_eq!(*t.get(b).unwrap(), 2);
    }

    #[test]
    fn forged_and_wildcard_handles_are_refused() {
        let t = HandleTable::new();
        let a = t.insert(Arc::new(1)).unwrap();
        let index = a & 0xffff_ffff;
        assert!(t.get(index).is_none(), "check 0");
        assert!(
            t.get(0xffff_ffff_0000_0000 | index).is_none(),
            "hdb's wildcard"
        );
        assert!(t.get(a ^ (1 << 40)).is_none(), "another check");
        assert!(t.get(a + 1).is_none(), "an empty index");
        assert!(t.get(0).is_none());
        assert!(t.get(u64::MAX).is_none());
    }

    #[test]
    fn checks_are_neither_zero_nor_the_wildcard_and_vary() {
        let checks: Vec<u32> = (0..64).map(|_| fresh_check()).collect();
        assert!(checks.iter().all(|&c| c != 0 && c != u32::MAX));
        let mut distinct = checks.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // 64 draws of 32 random bits: a repeat has probability below 1e-6.
        assert_eq!(distinct.len(), checks.len());
    }
}
