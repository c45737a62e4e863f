//! Writes simulated traffic as a classic pcap (Ethernet, IPv4, UDP to port 5405; node N is
//! 10.0.0.N), so that `totem-inspect` decodes a failing seed's run like a real capture.

use totem_srp::Instant;

/// A pcap file being built in memory.
#[derive(Debug, Clone)]
pub struct PcapWriter {
    bytes: Vec<u8>,
    ip_id: u16,
}

impl Default for PcapWriter {
    fn default() -> Self {
        PcapWriter::new()
    }
}

impl PcapWriter {
    /// An empty capture (global header only).
    pub fn new() -> PcapWriter {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        PcapWriter { bytes, ip_id: 0 }
    }

    /// Appends one datagram from node `from` to node `to` at virtual time `now`.
    pub fn datagram(&mut self, now: Instant, from: u32, to: u32, payload: &[u8]) {
        // IPv4 total length is 16 bits: larger datagrams are truncated in the capture.
        let payload = &payload[..payload.len().min(65_535 - 28)];
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[
            2, 0, 0, 0, 0, to as u8, 2, 0, 0, 0, 0, from as u8, 0x08, 0x00,
        ]);
        self.ip_id = self.ip_id.wrapping_add(1);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, from as u8]);
        ip[16..20].copy_from_slice(&[10, 0, 0, to as u8]);
        let mut sum: u32 = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&5405u16.to_be_bytes());
        frame.extend_from_slice(&5405u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(payload);
        let micros = now.total_micros().max(0);
        // Virtual time starts at the epoch; place it at a fixed, recognisable date.
        let sec = 1_700_000_000 + (micros / 1_000_000) as u32;
        let usec = (micros % 1_000_000) as u32;
        self.bytes.extend_from_slice(&sec.to_le_bytes());
        self.bytes.extend_from_slice(&usec.to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&frame);
    }

    /// The file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}
