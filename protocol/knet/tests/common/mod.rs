//! The knet-crypto captures (fixtures/pcap/corosync-3.1.7/knet-crypto): what each was
//! recorded with, and their knet datagrams read straight from the classic pcap files
//! (Ethernet, IPv4, UDP; tcpdump on the lab bridge), without the inspector.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use totem_knet::crypto::{CryptoCipher, CryptoHash, CryptoModel, KnetCrypto};

/// One capture: file stem and the crypto settings of its corosync.conf.
pub struct Capture {
    pub name: &'static str,
    pub model: CryptoModel,
    pub cipher: CryptoCipher,
    pub hash: CryptoHash,
}

pub const CAPTURES: [Capture; 5] = [
    Capture {
        name: "knet-crypto-nss-aes256-sha256",
        model: CryptoModel::Nss,
        cipher: CryptoCipher::Aes256,
        hash: CryptoHash::Sha256,
    },
    Capture {
        name: "knet-crypto-openssl-aes256-sha256",
        model: CryptoModel::Openssl,
        cipher: CryptoCipher::Aes256,
        hash: CryptoHash::Sha256,
    },
    Capture {
        name: "knet-crypto-nss-aes128-sha1",
        model: CryptoModel::Nss,
        cipher: CryptoCipher::Aes128,
        hash: CryptoHash::Sha1,
    },
    Capture {
        name: "knet-crypto-openssl-aes192-sha512",
        model: CryptoModel::Openssl,
        cipher: CryptoCipher::Aes192,
        hash: CryptoHash::Sha512,
    },
    Capture {
        name: "knet-crypto-nss-none-sha256",
        model: CryptoModel::Nss,
        cipher: CryptoCipher::None,
        hash: CryptoHash::Sha256,
    },
];

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pcap/corosync-3.1.7/knet-crypto")
}

/// One UDP datagram of a capture.
pub struct Datagram {
    pub frame: usize,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

impl Capture {
    pub fn key(&self) -> Vec<u8> {
        std::fs::read(dir().join(format!("{}.authkey", self.name))).expect("authkey")
    }

    pub fn crypto(&self) -> KnetCrypto {
        let bytes = self.key();
        let key = KnetCrypto::key_from_file_bytes(&bytes).expect("key length");
        KnetCrypto::new(self.model, self.cipher, self.hash, key).expect("valid config")
    }

    pub fn conf(&self) -> String {
        std::fs::read_to_string(dir().join(format!("{}.corosync.conf", self.name))).expect("conf")
    }

    /// Every UDP datagram to or from knet's port 5405.
    pub fn datagrams(&self) -> Vec<Datagram> {
        let bytes = std::fs::read(dir().join(format!("{}.pcap", self.name))).expect("pcap");
        read_pcap(&bytes)
            .into_iter()
            .filter(|d| d.src.port() == 5405 || d.dst.port() == 5405)
            .collect()
    }
}

fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Classic little-endian microsecond pcap, link type Ethernet: the UDP/IPv4 datagrams.
/// Panics on anything else (these are our own fixtures).
pub fn read_pcap(bytes: &[u8]) -> Vec<Datagram> {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut out = Vec::new();
    let mut at = 24;
    let mut frame = 0;
    while at + 16 <= bytes.len() {
        frame += 1;
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let wirelen = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap()) as usize;
        let f = &bytes[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        assert_eq!(caplen, wirelen, "frame {frame} truncated by the capture");
        if u16be(f, 12) != 0x0800 {
            continue;
        }
        let ip = &f[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        assert_eq!(u16be(ip, 6) & 0x3fff, 0, "frame {frame}: IP fragment");
        if ip[9] != 17 {
            continue;
        }
        let total = usize::from(u16be(ip, 2));
        let udp = &ip[ihl..total];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        out.push(Datagram {
            frame,
            src: SocketAddrV4::new(src, u16be(udp, 0)),
            dst: SocketAddrV4::new(dst, u16be(udp, 2)),
            payload: udp[8..usize::from(u16be(udp, 4))].to_vec(),
        });
    }
    out
}
