use crate::codec::ByteOrder;
use crate::error::{Error, ErrorKind, Layer, Result};
use crate::legacy::header::detect_order;
use crate::legacy::{LegacyVersion, Message};

/// `struct crypto_config_header` (`exec/totemcrypto.c`, v2.0.0 to v2.4.6): 4 bytes, packed,
/// `{ uint8_t crypto_cipher_type; uint8_t crypto_hash_type; uint8_t __pad0; uint8_t __pad1; }`.
/// corosync 2.x writes it in front of every datagram (`crypto_encrypt_and_sign` is called
/// unconditionally by `totemudp.c` / `totemudpu.c`), even with `secauth: off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CryptoConfigHeader {
    /// `crypto_cipher_type`: 2.0/2.1 the real cipher (0 none, 1 aes256); 2.2 `0xFF`
    /// (`CRYPTO_CIPHER_TYPE_2_2`); 2.3+ `0xFE` (`CRYPTO_CIPHER_TYPE_2_3`).
    pub cipher_type: u8,
    /// `crypto_hash_type`: 2.0/2.1 the real hash (0 none, 1 md5, 2 sha1, 3 sha256,
    /// 4 sha384, 5 sha512); 2.2 `0xFF`; 2.3+ `0xFE`.
    pub hash_type: u8,
    /// `__pad0`: 0 (a receiver drops anything else).
    pub pad0: u8,
    /// `__pad1`: 0.
    pub pad1: u8,
}

/// Which on-wire crypto format a [`CryptoConfigHeader`] announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoCompat {
    /// corosync 2.0/2.1 (and 2.2 with `crypto_compat: 2.0`): header with the real types, then
    /// the HMAC (`hash_len[hash]` bytes), then salt + ciphertext or, with cipher none, the
    /// plain totem message (`encrypt_and_sign_nss` at v2.0.0).
    Corosync20,
    /// corosync 2.2 (`crypto_compat: 2.2`, its default): `FF FF 00 00`, then plain text or
    /// salt + ciphertext, then the HMAC at the end (`encrypt_and_sign_nss_2_2` at v2.2.0).
    Corosync22,
    /// corosync 2.3 to 2.4.x: `FE FE 00 00`, same layout as 2.2 (`encrypt_and_sign_nss_2_3`
    /// at v2.4.6). These are the `0xFEFE` / `0xFFFF` "magics" that corosync 3's
    /// `check_message_header_validity` names.
    Corosync23,
}

impl CryptoConfigHeader {
    /// Size on the wire.
    pub const LEN: usize = 4;

    /// The header a corosync 2.3+ node with `secauth: off` (cipher and hash none) sends.
    pub const COROSYNC_23: CryptoConfigHeader = CryptoConfigHeader {
        cipher_type: 0xFE,
        hash_type: 0xFE,
        pad0: 0,
        pad1: 0,
    };

    /// The header a corosync 2.2 node sends (`crypto_compat` 2.2).
    pub const COROSYNC_22: CryptoConfigHeader = CryptoConfigHeader {
        cipher_type: 0xFF,
        hash_type: 0xFF,
        pad0: 0,
        pad1: 0,
    };

    /// The header a corosync 2.0/2.1 node with cipher and hash none sends: four zeros.
    pub const COROSYNC_20_NONE: CryptoConfigHeader = CryptoConfigHeader {
        cipher_type: 0,
        hash_type: 0,
        pad0: 0,
        pad1: 0,
    };

    /// Reads the first four bytes, if there are four.
    pub fn parse(bytes: &[u8]) -> Option<CryptoConfigHeader> {
        match bytes {
            [cipher_type, hash_type, pad0, pad1, ..] => Some(CryptoConfigHeader {
                cipher_type: *cipher_type,
                hash_type: *hash_type,
                pad0: *pad0,
                pad1: *pad1,
            }),
            _ => None,
        }
    }

    /// Which crypto format this is; `None` when the type bytes fit none of them.
    pub fn compat(&self) -> Option<CryptoCompat> {
        match (self.cipher_type, self.hash_type) {
            (0xFE, 0xFE) => Some(CryptoCompat::Corosync23),
            (0xFF, 0xFF) => Some(CryptoCompat::Corosync22),
            (0..=1, 0..=5) => Some(CryptoCompat::Corosync20),
            _ => None,
        }
    }

    /// Bytes between this header and the plain totem message when the cipher is none
    /// (`None` when it is not: the message is encrypted). In 2.0/2.1 the HMAC comes first
    /// (`hash_len[]` of v2.0.0: 0, 16, 20, 32, 48, 64); from 2.2 on it trails the message.
    pub fn plaintext_offset(&self) -> Option<usize> {
        match self.compat()? {
            CryptoCompat::Corosync20 if self.cipher_type == 0 => {
                const HASH_LEN: [usize; 6] = [0, 16, 20, 32, 48, 64];
                Some(Self::LEN + HASH_LEN[usize::from(self.hash_type)])
            }
            CryptoCompat::Corosync20 => None,
            // Whether a 2.2+ message is encrypted shows only in what follows; the caller
            // checks for a totem header there.
            CryptoCompat::Corosync22 | CryptoCompat::Corosync23 => Some(Self::LEN),
        }
    }

    /// Appends the four bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.cipher_type, self.hash_type, self.pad0, self.pad1]);
    }
}

/// What precedes the totemsrp message in a 1.x/2.x udp/udpu datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportHeader {
    /// corosync 1.x with `secauth: off`: nothing (`net_deliver_fn` of `exec/totemudp.c` /
    /// `exec/totemudpu.c` at v1.4.10 hands the datagram over as it is). With `secauth: on`
    /// 1.x sends `struct security_header` (20-byte HMAC-SHA1 digest + 16-byte salt), the
    /// encrypted message and one trailing crypto-type byte: not readable without the key.
    None,
    /// corosync 2.x: a [`CryptoConfigHeader`], plus any leading HMAC (2.0/2.1 only).
    Crypto(CryptoConfigHeader),
}

/// How a 1.x/2.x datagram is framed, learnt from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegacyFraming {
    /// Which totemsrp grammar the message follows.
    pub version: LegacyVersion,
    /// The sender's byte order, from the endian detector.
    pub order: ByteOrder,
    /// Offset of the totemsrp message in the datagram.
    pub offset: usize,
    /// What precedes it.
    pub transport: TransportHeader,
}

/// Is there a plausible 1.x/2.x message header at the start of `bytes`? Type 0..=7 and the
/// endian detector in either order. `encapsulated` is not checked: the `*_endian_convert`
/// functions of `exec/totemsrp.c` do not copy it, so a token forwarded in a mixed-endian
/// cluster carries whatever was on the receiver's stack there.
fn plausible_header(bytes: &[u8]) -> Option<ByteOrder> {
    match bytes {
        [t, _, _, _, _, _, _, _, ..] if *t <= 7 => detect_order(bytes),
        _ => None,
    }
}

impl LegacyFraming {
    /// Classifies a UDP payload of a corosync 1.x or 2.x node with encryption off:
    ///
    /// * a message header right at offset 0 is 1.x (2.x always prefixes a crypto header);
    /// * `FE FE 00 00`, `FF FF 00 00` or `00 hh 00 00` followed (after the 2.0 leading HMAC,
    ///   if any) by a message header is 2.x.
    ///
    /// Returns `None` for anything else: corosync 3 (`70 C0` magic), knet, encrypted traffic.
    pub fn detect(payload: &[u8]) -> Option<LegacyFraming> {
        if let Some(order) = plausible_header(payload) {
            return Some(LegacyFraming {
                version: LegacyVersion::Corosync1,
                order,
                offset: 0,
                transport: TransportHeader::None,
            });
        }
        let crypto = CryptoConfigHeader::parse(payload)?;
        if crypto.pad0 != 0 || crypto.pad1 != 0 {
            return None;
        }
        let offset = crypto.plaintext_offset()?;
        let order = plausible_header(payload.get(offset..)?)?;
        Some(LegacyFraming {
            version: LegacyVersion::Corosync2,
            order,
            offset,
            transport: TransportHeader::Crypto(crypto),
        })
    }

    /// The framing a 1.x node with `secauth: off` uses.
    pub fn corosync1(order: ByteOrder) -> LegacyFraming {
        LegacyFraming {
            version: LegacyVersion::Corosync1,
            order,
            offset: 0,
            transport: TransportHeader::None,
        }
    }

    /// The framing a 2.3/2.4 node with `secauth: off` uses (`FE FE 00 00`).
    pub fn corosync23(order: ByteOrder) -> LegacyFraming {
        LegacyFraming {
            version: LegacyVersion::Corosync2,
            order,
            offset: CryptoConfigHeader::LEN,
            transport: TransportHeader::Crypto(CryptoConfigHeader::COROSYNC_23),
        }
    }

    /// Detects the framing and parses the message after it. Errors count offsets from the
    /// start of `payload`. A payload that is not recognised, including one too short to hold
    /// the 8-byte message header after its framing, is a [`ErrorKind::BadMagic`] at 0
    /// holding its first two bytes.
    pub fn parse(payload: &[u8]) -> Result<(LegacyFraming, Message<'_>, &[u8])> {
        let Some(framing) = LegacyFraming::detect(payload) else {
            let magic = match payload {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                [a] => u16::from(*a) << 8,
                [] => 0,
            };
            return Err(Error::new(
                Layer::LegacyTotem,
                0,
                ErrorKind::BadMagic(magic.into()),
            ));
        };
        let (message, rest) = Message::parse(&payload[framing.offset..], framing.version)
            .map_err(|e| e.add_offset(framing.offset))?;
        Ok((framing, message, rest))
    }

    /// Appends the bytes that go before the message (none for 1.x; for a 2.0 header with a
    /// hash, the HMAC bytes are not known here and are written as zeros).
    pub fn emit_prefix(&self, out: &mut Vec<u8>) {
        if let TransportHeader::Crypto(crypto) = self.transport {
            crypto.emit(out);
            let hmac = self.offset.saturating_sub(CryptoConfigHeader::LEN);
            out.resize(out.len() + hmac, 0);
        }
    }
}

/// [`LegacyFraming::detect`]: version, byte order and offset of the totemsrp message.
pub fn detect(payload: &[u8]) -> Option<LegacyFraming> {
    LegacyFraming::detect(payload)
}
