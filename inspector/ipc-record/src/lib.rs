//! `totem-ipc-record`: an `LD_PRELOAD` library that records the libqb IPC of an unmodified
//! libcpg client into pcapng (the README's "IPC recording format"; the bytes are defined in
//! `totem_wire::ipc::record`).
//!
//! libcpg.so.4 reaches libqb through exactly these imports (`nm -D libcpg.so.4 | grep qb_`):
//! `qb_ipcc_connect, qb_ipcc_disconnect, qb_ipcc_send, qb_ipcc_sendv, qb_ipcc_sendv_recv,
//! qb_ipcc_recv, qb_ipcc_event_recv, qb_ipcc_fd_get, qb_ipcc_fc_enable_max_set` (plus
//! `qb_hdb_*` and `qb_to_cs_error`, which carry no traffic). The first seven carry or
//! frame messages and are interposed in [`hooks`]: each calls the real function (found
//! with `dlsym(RTLD_NEXT)` at run time, so nothing links libqb) and then hands a copy of the
//! message to [`sink`], which queues it for a writer thread. The connection handshake
//! happens inside `qb_ipcc_connect` (libqb `qb_ipcc_us_setup_connect`: one `send` of the
//! request, one `recvmsg` of the response), so `send` and `recvmsg` are interposed too and
//! record only while that thread is inside `qb_ipcc_connect`.
//!
//! What the recorded program sees does not change: every hook returns the real call's
//! result with the real call's `errno`, recording never fails a call, and a full queue or a
//! failing disk drops records (counted in every later record header) instead of blocking.
//! Processes forked by the client record into the same file (`pthread_atfork` resets the
//! child's queue); records still queued when a process leaves by `_exit`, `exec` or a
//! signal are lost.

// This crate exists to interpose C functions: it exports `#[no_mangle] extern "C"` symbols,
// calls the real ones through pointers from dlsym, reads the caller's buffers and reads and
// writes errno. None of that can be written without `unsafe`, so the workspace's
// `deny(unsafe_code)` is lifted here, and only here; each unsafe block is small and says
// why it holds.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, unreachable_pub)]

pub mod hooks;
mod process;
mod sink;

/// The environment variable naming the output file. Without it every hook only forwards.
pub const OUTPUT_ENV: &str = "TOTEM_IPC_RECORD_OUT";
