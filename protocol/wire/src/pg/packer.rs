use crate::codec::ByteOrder;
use crate::pg::{PgPacket, PG_HEADER_LEN};

/// The sending half of totempg (`exec/totempg.c::mcast_msg` and
/// `::callback_token_received_fn`): messages are staged in one packet until the token
/// arrives; a message that does not fit is cut, and its pieces go out at once, tagged so
/// that the receiver's [`Assembler`](crate::pg::Assembler) joins them.
///
/// corosync's rules, kept exactly because they decide the bytes on the wire:
/// * a message is a list of iovecs (group header, group names, then the service's own
///   iovecs); an iovec is staged whole only if `staged + iovec_len < max_packet_size - 2`;
/// * otherwise as much as fits goes into the packet, which is sent at once — with
///   `fragmented = tag` unless that exhausted the last iovec;
/// * the data of the first packet of a call may hold `TOTEMPG_PACKET_SIZE − 2·(count + 1)`
///   bytes, every later one `TOTEMPG_PACKET_SIZE − 2`;
/// * fragment tags come from one u8 counter that restarts at 1 whenever an iovec is staged
///   whole and skips 0 on wrap.
#[derive(Debug, Clone)]
pub struct Packer {
    packet_size: usize,
    order: ByteOrder,
    staged: Vec<u8>,
    staged_lens: Vec<u16>,
    /// Length of the message being staged (the entry after `staged_lens`), 0 if none.
    open_len: usize,
    fragment_continuation: u8,
    next_fragment: u8,
}

impl Packer {
    /// `TOTEMPG_PACKET_SIZE` for a transport's `net_mtu` after totemsrp's adjustment:
    /// `net_mtu − 90 − 8` (`totemsrp_net_mtu_adjust`, spec §1.1).
    pub fn for_net_mtu(net_mtu: usize, order: ByteOrder) -> Packer {
        Packer {
            packet_size: net_mtu.saturating_sub(90 + PG_HEADER_LEN),
            order,
            staged: Vec::new(),
            staged_lens: Vec::new(),
            open_len: 0,
            fragment_continuation: 0,
            next_fragment: 1,
        }
    }

    /// udpu's packer: netmtu 1500, so 1402-byte packets.
    pub fn udpu() -> Packer {
        Packer::for_net_mtu(1500, ByteOrder::Little)
    }

    /// knet's packer: netmtu `KNET_MAX_PACKET_SIZE` (65536); knet fragments below us.
    pub fn knet() -> Packer {
        Packer::for_net_mtu(65536, ByteOrder::Little)
    }

    /// `TOTEMPG_PACKET_SIZE`.
    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// Messages staged for the next token.
    pub fn staged_messages(&self) -> usize {
        self.staged_lens.len()
    }

    /// Adds one message (`mcast_msg`). Packets that had to go out at once (the message did
    /// not fit) are appended to `out` as complete totempg packets, in order; the rest stays
    /// staged until [`Packer::flush`].
    pub fn submit(&mut self, iovecs: &[&[u8]], out: &mut Vec<Vec<u8>>) {
        // Zero-length iovecs are removed first.
        let iovecs: Vec<&[u8]> = iovecs.iter().copied().filter(|i| !i.is_empty()).collect();
        let mut max_packet_size = self
            .packet_size
            .saturating_sub(2 * (self.staged_lens.len() + 1));
        self.open_len = 0;
        let mut i = 0;
        let mut copy_base = 0;
        while i < iovecs.len() {
            let iovec = iovecs[i];
            let continuation = self.fragment_continuation;
            if iovec.len() + self.staged.len() < max_packet_size.saturating_sub(2) {
                self.staged.extend_from_slice(&iovec[copy_base..]);
                self.open_len += iovec.len() - copy_base;
                self.next_fragment = 1;
                copy_base = 0;
                i += 1;
                continue;
            }
            let copy_len =
                (iovec.len() - copy_base).min(max_packet_size.saturating_sub(self.staged.len()));
            self.staged
                .extend_from_slice(&iovec[copy_base..copy_base + copy_len]);
            self.open_len += copy_len;
            let more = i + 1 < iovecs.len() || copy_base + copy_len < iovec.len();
            let fragmented = if more {
                if self.next_fragment == 0 {
                    self.next_fragment = 1;
                }
                let tag = self.next_fragment;
                self.fragment_continuation = tag;
                self.next_fragment = self.next_fragment.wrapping_add(1);
                tag
            } else {
                self.fragment_continuation = 0;
                0
            };
            self.staged_lens.push(self.open_len as u16);
            out.push(self.packet(fragmented, continuation));
            self.open_len = 0;
            max_packet_size = self.packet_size.saturating_sub(2);
            if copy_base + copy_len == iovec.len() {
                copy_base = 0;
                i += 1;
            } else {
                copy_base += copy_len;
            }
        }
        if self.open_len > 0 {
            self.staged_lens.push(self.open_len as u16);
            self.open_len = 0;
        }
    }

    /// The staged packet, when the token arrives (`callback_token_received_fn`): its
    /// `fragmented` is 0 and its `continuation` says whether its first message continues a
    /// piece sent earlier.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.staged_lens.is_empty() {
            return None;
        }
        let continuation = std::mem::take(&mut self.fragment_continuation);
        Some(self.packet(0, continuation))
    }

    fn packet(&mut self, fragmented: u8, continuation: u8) -> Vec<u8> {
        let mut entries = Vec::with_capacity(self.staged_lens.len());
        let mut at = 0;
        for len in &self.staged_lens {
            let end = (at + usize::from(*len)).min(self.staged.len());
            entries.push(&self.staged[at..end]);
            at = end;
        }
        let packet = PgPacket {
            order: self.order,
            version: 0,
            pg_type: 0,
            fragmented,
            continuation,
            entries,
        };
        let mut bytes = Vec::with_capacity(packet.buffer_len());
        packet.emit(&mut bytes);
        self.staged.clear();
        self.staged_lens.clear();
        bytes
    }
}
