//! libevs: corosync 1.4.10's EVS API (`evs.h`, docs/evs.md §1, §2) as a C library,
//! `libevs.so`, over [`totem_client::evs`] and the `evs` IPC service of totemd
//! (docs/evs.md §9). C programs include `include/corosync/evs.h` of this crate and link
//! `-levs`; corosync's own EVS test programs (`fixtures/evs/`) build unchanged against
//! them (tests/fixtures.rs).
//!
//! Where ours differs from 1.4's library, on purpose: the confchg callback gets the real
//! ring id (1.4 passed NULL, EVS-CODE-3); the handle table has no wildcard handle
//! (EVS-INIT-3); more than [`ffi::EVS_IOV_MAX`] iovecs, a NULL `member_list_entries` and
//! NULL arrays with a non-zero count are CS_ERR_INVALID_PARAM instead of memory errors; a
//! dispatching thread does not block the other calls on its handle while it waits.

pub mod ffi;
mod instance;
mod table;
