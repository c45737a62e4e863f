//! The IPC server's system calls: those of libqb's socket type live in `totem-unix`,
//! shared with the client; this module names them for the server.

pub use totem_unix::poll;
pub(super) use totem_unix::{
    geteuid, peer_creds, recv_with_creds, send_nosignal, set_buffer_sizes, set_passcred,
};
