//! What both channel types (libqb's socket datagrams in `conn`, its shm rings in `shm`)
//! share: the limits on what may queue for a client, and why a send ends the connection.
//! A leaf module, so neither type depends on the other for it.

use std::io;

use super::DisconnectReason;

/// Limits on what may wait in user space for one connection (both channels together).
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueLimits {
    pub(super) max_msgs: usize,
    pub(super) max_bytes: usize,
}

/// Why a send cannot go on; each ends the connection.
pub(super) enum ChannelError {
    Overflow,
    Io(io::Error),
}

impl From<ChannelError> for DisconnectReason {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Overflow => DisconnectReason::QueueOverflow,
            ChannelError::Io(e) => DisconnectReason::PeerUnreachable(e.to_string()),
        }
    }
}
