//! `cpg_iteration_*` state: the snapshots clients walk through, keyed by handle. A leaf
//! module: the node owns one table, the service fills and reads it.

use std::collections::BTreeMap;

use totem_wire::exec::cpg::CpgName;

use crate::cpg::ConnId;

/// One `cpg_iteration_initialize` snapshot.
#[derive(Debug)]
struct Iteration {
    conn: ConnId,
    items: Vec<(CpgName, u32, u32)>,
    next: usize,
}

/// Iterations live across requests; the handle table is global like corosync's
/// `cpg_iteration_handle_t_db`.
#[derive(Debug, Default)]
pub(crate) struct Iterations {
    by_handle: BTreeMap<u64, Iteration>,
    counter: u32,
}

/// Iterations one connection may hold open (corosync has no bound; a client that never
/// finalizes would grow the daemon without one).
const ITERATIONS_PER_CONN_MAX: usize = 1024;

impl Iterations {
    /// A handle shaped like an hdb handle (check value high, index low), never 0; `None`
    /// when the connection holds [`ITERATIONS_PER_CONN_MAX`] already.
    pub(crate) fn create(&mut self, conn: ConnId, items: Vec<(CpgName, u32, u32)>) -> Option<u64> {
        if self.by_handle.values().filter(|i| i.conn == conn).count() >= ITERATIONS_PER_CONN_MAX {
            return None;
        }
        self.counter = self.counter.wrapping_add(1).max(1);
        let check = (conn as u32).wrapping_mul(0x9e37_79b9) | 1;
        let handle = (u64::from(check) << 32) | u64::from(self.counter);
        self.by_handle.insert(
            handle,
            Iteration {
                conn,
                items,
                next: 0,
            },
        );
        Some(handle)
    }

    /// The next item of `handle`'s snapshot: `None` for an unknown handle, `Some(None)`
    /// past the end.
    pub(crate) fn next(&mut self, handle: u64) -> Option<Option<(CpgName, u32, u32)>> {
        let it = self.by_handle.get_mut(&handle)?;
        let item = it.items.get(it.next).copied();
        if item.is_some() {
            it.next += 1;
        }
        Some(item)
    }

    /// Ends `handle`'s iteration; false when there was none.
    pub(crate) fn finalize(&mut self, handle: u64) -> bool {
        self.by_handle.remove(&handle).is_some()
    }

    /// Drops every iteration of a connection that went away.
    pub(crate) fn release(&mut self, conn: ConnId) {
        self.by_handle.retain(|_, i| i.conn != conn);
    }
}
