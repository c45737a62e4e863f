//! knet's packet crypto as libknet 1.25 does it under corosync 3.1.7 (`crypto_model`,
//! `crypto_cipher`, `crypto_hash` of corosync.conf), sans-IO: the caller supplies the salt
//! of each packet it encrypts; nothing here draws random numbers.
//!
//! What goes on the wire (`crypto.c::crypto_encrypt_and_sign`, the models'
//! `*crypto_encrypt_and_signv`), for every knet packet, DATA, PING, PONG, PMTUD and
//! PMTUD_REPLY alike, header included:
//!
//! ```text
//! cipher on:   salt[16] | AES-CBC(key[..K], iv = salt, PKCS#7 padding)(packet) | HMAC[H]
//! cipher none: packet                                                          | HMAC[H]
//! ```
//!
//! * The 16-byte salt is random per packet (`PK11_GenerateRandom` / `RAND_bytes`,
//!   `SALT_SIZE`) and is the CBC IV.
//! * The AES key is the first K bytes of the private key (32, 24, 16 for aes256, aes192,
//!   aes128): nss imports `nsscipher_key_len` bytes of the zero-padded key
//!   (`nssimport_symmetric_key`, `SYM_KEY_TYPE_CRYPT`); openssl hands the key to
//!   `EVP_EncryptInit_ex`, which reads the cipher's key length.
//! * The HMAC key is the whole private key (`SYM_KEY_TYPE_HASH` with `private_key_len`;
//!   `EVP_MAC_init(..., private_key, private_key_len, ...)`), and the HMAC covers
//!   everything before it: salt and ciphertext, or the clear packet.
//! * Receiving (`*crypto_authenticate_and_decrypt`): the HMAC is checked first over
//!   `len - H` bytes (which must be in `1..=KNET_MAX_PACKET_SIZE`), then the rest is
//!   decrypted; either failing drops the packet.
//!
//! The two models put the same bytes on the wire (same cipher mode, padding, IV, key bytes
//! and HMAC): a packet cannot tell which model its sender ran, and a node of one model
//! reads the other's. Both are kept as a setting because corosync.conf names one.

use std::fmt;

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut};
use hmac::{Hmac, Mac};
use totem_wire::knet::{looks_like_knet, KNET_MAX_PACKET_SIZE};

/// `SALT_SIZE` of both models: the per-packet IV in front of the ciphertext.
pub const SALT_SIZE: usize = 16;
/// `AES_BLOCK_SIZE`: the block size of every cipher corosync offers.
pub const AES_BLOCK_SIZE: usize = 16;
/// `KNET_MIN_KEY_LEN` (= corosync's `TOTEM_PRIVATE_KEY_LEN_MIN`): a shorter key is
/// refused by corosync (`read_keyfile`) and by libknet.
pub const MIN_KEY_LEN: usize = 128;
/// `KNET_MAX_KEY_LEN` (= `TOTEM_PRIVATE_KEY_LEN_MAX`): corosync reads at most this many
/// bytes of the key file and uses them all.
pub const MAX_KEY_LEN: usize = 4096;
/// `KNET_HEADER_ALL_SIZE`: what libknet keeps free for its own header in the data MTU.
const KNET_HEADER_ALL_SIZE: usize = 26;
/// IPv4 + UDP headers (`KNET_PMTUD_OVERHEAD_V4` + the UDP `proto_overhead`).
const IPV4_UDP_OVERHEAD: usize = 20 + 8;

/// `totem.crypto_model` (corosync's default: nss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CryptoModel {
    /// libknet's `crypto_nss.so`.
    #[default]
    Nss,
    /// libknet's `crypto_openssl.so`.
    Openssl,
}

/// `totem.crypto_cipher` (corosync's default: none; `secauth: on` means aes256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CryptoCipher {
    /// No encryption (the packet travels in clear, followed by its HMAC).
    #[default]
    None,
    /// AES-256-CBC.
    Aes256,
    /// AES-192-CBC.
    Aes192,
    /// AES-128-CBC.
    Aes128,
}

/// `totem.crypto_hash` (corosync's default: none; `secauth: on` means sha256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CryptoHash {
    /// No HMAC.
    #[default]
    None,
    /// HMAC-MD5.
    Md5,
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA384.
    Sha384,
    /// HMAC-SHA512.
    Sha512,
}

impl CryptoModel {
    /// Every model.
    pub const ALL: [CryptoModel; 2] = [CryptoModel::Nss, CryptoModel::Openssl];
    /// The corosync.conf spelling.
    pub fn name(self) -> &'static str {
        match self {
            CryptoModel::Nss => "nss",
            CryptoModel::Openssl => "openssl",
        }
    }
    /// From the corosync.conf spelling.
    pub fn from_name(name: &str) -> Option<CryptoModel> {
        CryptoModel::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl CryptoCipher {
    /// Every cipher corosync accepts.
    pub const ALL: [CryptoCipher; 4] = [
        CryptoCipher::None,
        CryptoCipher::Aes256,
        CryptoCipher::Aes192,
        CryptoCipher::Aes128,
    ];
    /// The corosync.conf spelling.
    pub fn name(self) -> &'static str {
        match self {
            CryptoCipher::None => "none",
            CryptoCipher::Aes256 => "aes256",
            CryptoCipher::Aes192 => "aes192",
            CryptoCipher::Aes128 => "aes128",
        }
    }
    /// From the corosync.conf spelling.
    pub fn from_name(name: &str) -> Option<CryptoCipher> {
        CryptoCipher::ALL.into_iter().find(|c| c.name() == name)
    }
    /// AES key length (`nsscipher_key_len`), 0 for none.
    pub fn key_len(self) -> usize {
        match self {
            CryptoCipher::None => 0,
            CryptoCipher::Aes256 => 32,
            CryptoCipher::Aes192 => 24,
            CryptoCipher::Aes128 => 16,
        }
    }
}

impl CryptoHash {
    /// Every hash corosync accepts.
    pub const ALL: [CryptoHash; 6] = [
        CryptoHash::None,
        CryptoHash::Md5,
        CryptoHash::Sha1,
        CryptoHash::Sha256,
        CryptoHash::Sha384,
        CryptoHash::Sha512,
    ];
    /// The corosync.conf spelling.
    pub fn name(self) -> &'static str {
        match self {
            CryptoHash::None => "none",
            CryptoHash::Md5 => "md5",
            CryptoHash::Sha1 => "sha1",
            CryptoHash::Sha256 => "sha256",
            CryptoHash::Sha384 => "sha384",
            CryptoHash::Sha512 => "sha512",
        }
    }
    /// From the corosync.conf spelling.
    pub fn from_name(name: &str) -> Option<CryptoHash> {
        CryptoHash::ALL.into_iter().find(|h| h.name() == name)
    }
    /// HMAC length on the wire (`nsshash_len`, `EVP_MD_size`), 0 for none.
    pub fn tag_len(self) -> usize {
        match self {
            CryptoHash::None => 0,
            CryptoHash::Md5 => 16,
            CryptoHash::Sha1 => 20,
            CryptoHash::Sha256 => 32,
            CryptoHash::Sha384 => 48,
            CryptoHash::Sha512 => 64,
        }
    }
}

impl fmt::Display for CryptoModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
impl fmt::Display for CryptoCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
impl fmt::Display for CryptoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A crypto configuration libknet would refuse (or that turns crypto off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoConfigError {
    /// Cipher and hash both none: libknet runs without crypto (`crypto_fini`), packets
    /// are clear.
    Disabled,
    /// A cipher without a hash ("crypto_cipher requires crypto_hash with value other than
    /// none" in corosync, EINVAL in `*crypto_init`).
    CipherWithoutHash,
    /// Key shorter than [`MIN_KEY_LEN`] (bytes given).
    KeyTooShort(usize),
    /// Key longer than [`MAX_KEY_LEN`] (bytes given).
    KeyTooLong(usize),
    /// The AES or HMAC implementation refused the key (never seen: the bounds above
    /// leave enough bytes for every AES key, and HMAC takes any length).
    KeyRejected,
}

impl fmt::Display for CryptoConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoConfigError::Disabled => {
                f.write_str("crypto_cipher and crypto_hash are both none: knet crypto is off")
            }
            CryptoConfigError::CipherWithoutHash => {
                f.write_str("crypto_cipher requires crypto_hash with value other than none")
            }
            CryptoConfigError::KeyTooShort(n) => {
                write!(f, "key is {n} bytes, knet needs at least {MIN_KEY_LEN}")
            }
            CryptoConfigError::KeyTooLong(n) => {
                write!(f, "key is {n} bytes, knet takes at most {MAX_KEY_LEN}")
            }
            CryptoConfigError::KeyRejected => f.write_str("the cipher or HMAC refused the key"),
        }
    }
}

impl std::error::Error for CryptoConfigError {}

/// Why a datagram did not decrypt. Only [`CryptoError::BadHmac`] can come from a wrong key;
/// from one packet, a wrong key (or hash) and a packet corrupted in flight look the same
/// (both fail the HMAC). Over several packets they differ: with a wrong key none verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Shorter than the crypto framing needs (bytes given, bytes needed at least).
    TooShort {
        /// Datagram length.
        len: usize,
        /// Smallest length this configuration can produce.
        min: usize,
    },
    /// Longer than libknet accepts (`temp_buf_len > KNET_MAX_PACKET_SIZE`).
    TooLong(usize),
    /// The HMAC does not verify: another key or hash, or a corrupted packet.
    BadHmac,
    /// The HMAC verified but what follows the salt is not one or more whole AES blocks
    /// (bytes after the salt): signed with our key, yet not libknet's framing for this
    /// cipher (the sender ran without a cipher, or is not libknet).
    Misaligned(usize),
    /// The HMAC verified (so the key is right) but the PKCS#7 padding is not: the
    /// sender used another cipher (AES key length) than configured.
    BadPadding,
    /// Encrypting: the packet is empty or longer than [`KNET_MAX_PACKET_SIZE`].
    PlainLength(usize),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::TooShort { len, min } => write!(
                f,
                "malformed: {len} bytes, the crypto framing needs at least {min}"
            ),
            CryptoError::TooLong(len) => {
                write!(f, "malformed: {len} bytes, more than knet ever sends")
            }
            CryptoError::BadHmac => {
                f.write_str("HMAC does not verify: wrong key or hash, or a corrupted packet")
            }
            CryptoError::Misaligned(n) => write!(
                f,
                "malformed: HMAC verifies but the {n}-byte ciphertext is not whole AES blocks"
            ),
            CryptoError::BadPadding => f.write_str(
                "HMAC verifies (the key is right) but the padding does not: wrong cipher",
            ),
            CryptoError::PlainLength(n) => {
                write!(
                    f,
                    "cannot encrypt a {n}-byte packet (1..={KNET_MAX_PACKET_SIZE})"
                )
            }
        }
    }
}

impl std::error::Error for CryptoError {}

impl CryptoError {
    /// Could a wrong key (or wrong hash) explain this error? Only a failed HMAC can.
    pub fn is_wrong_key(&self) -> bool {
        matches!(self, CryptoError::BadHmac)
    }
}

/// What crypto adds to a packet (`struct crypto_instance`'s `sec_*_size`, copied to the
/// handle by `crypto_use_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overhead {
    /// `sec_block_size`: the cipher's block (padding granularity), 0 without a cipher.
    pub block_size: usize,
    /// `sec_hash_size`: the HMAC length, 0 without a hash.
    pub hash_size: usize,
    /// `sec_salt_size`: the IV in front, 0 without a cipher.
    pub salt_size: usize,
}

/// One node's knet crypto configuration: model, cipher, hash and the private key as
/// corosync hands it to libknet (`totemknet_set_knet_crypto`: the key file's first
/// [`MAX_KEY_LEN`] bytes, `private_key_len` = how many were read). The AES key schedule and
/// the keyed HMAC state are prepared once, as libknet's models do at init.
#[derive(Clone)]
pub struct KnetCrypto {
    model: CryptoModel,
    cipher: CryptoCipher,
    hash: CryptoHash,
    key: Vec<u8>,
    aes: Aes,
    mac: Keyed,
}

impl PartialEq for KnetCrypto {
    fn eq(&self, other: &Self) -> bool {
        (self.model, self.cipher, self.hash, &self.key)
            == (other.model, other.cipher, other.hash, &other.key)
    }
}
impl Eq for KnetCrypto {}

impl fmt::Debug for KnetCrypto {
    // The key stays out of logs and test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnetCrypto")
            .field("model", &self.model)
            .field("cipher", &self.cipher)
            .field("hash", &self.hash)
            .field("key_len", &self.key.len())
            .finish()
    }
}

type HmacMd5 = Hmac<md5::Md5>;
type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;
type HmacSha384 = Hmac<sha2::Sha384>;
type HmacSha512 = Hmac<sha2::Sha512>;

/// The HMAC keyed once (a long key hashed down, the pads applied), cloned per packet.
#[derive(Clone)]
enum Keyed {
    None,
    Md5(HmacMd5),
    Sha1(HmacSha1),
    Sha256(HmacSha256),
    Sha384(HmacSha384),
    Sha512(HmacSha512),
}

fn tag_of<M: Mac + Clone>(mac: &M, data: &[u8]) -> Vec<u8> {
    let mut mac = mac.clone();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn verify_with<M: Mac + Clone>(mac: &M, data: &[u8], tag: &[u8]) -> bool {
    let mut mac = mac.clone();
    mac.update(data);
    // Constant-time (libknet uses memcmp; this costs nothing here).
    mac.verify_slice(tag).is_ok()
}

impl Keyed {
    /// `None` only if the HMAC refused the key, which HMAC (any key length) never does.
    fn new(hash: CryptoHash, key: &[u8]) -> Option<Keyed> {
        Some(match hash {
            CryptoHash::None => Keyed::None,
            CryptoHash::Md5 => Keyed::Md5(<HmacMd5 as Mac>::new_from_slice(key).ok()?),
            CryptoHash::Sha1 => Keyed::Sha1(<HmacSha1 as Mac>::new_from_slice(key).ok()?),
            CryptoHash::Sha256 => Keyed::Sha256(<HmacSha256 as Mac>::new_from_slice(key).ok()?),
            CryptoHash::Sha384 => Keyed::Sha384(<HmacSha384 as Mac>::new_from_slice(key).ok()?),
            CryptoHash::Sha512 => Keyed::Sha512(<HmacSha512 as Mac>::new_from_slice(key).ok()?),
        })
    }

    /// The HMAC of `data`; empty without a hash.
    fn tag(&self, data: &[u8]) -> Vec<u8> {
        match self {
            Keyed::None => Vec::new(),
            Keyed::Md5(m) => tag_of(m, data),
            Keyed::Sha1(m) => tag_of(m, data),
            Keyed::Sha256(m) => tag_of(m, data),
            Keyed::Sha384(m) => tag_of(m, data),
            Keyed::Sha512(m) => tag_of(m, data),
        }
    }

    fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        match self {
            Keyed::None => tag.is_empty(),
            Keyed::Md5(m) => verify_with(m, data, tag),
            Keyed::Sha1(m) => verify_with(m, data, tag),
            Keyed::Sha256(m) => verify_with(m, data, tag),
            Keyed::Sha384(m) => verify_with(m, data, tag),
            Keyed::Sha512(m) => verify_with(m, data, tag),
        }
    }
}

/// The HMAC of `data` under `key`, for tests that build datagrams by hand.
#[cfg(test)]
fn hmac_of(hash: CryptoHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    Keyed::new(hash, key).map_or(Vec::new(), |k| k.tag(data))
}

/// The AES key schedule of the first `cipher.key_len()` key bytes.
#[derive(Clone)]
enum Aes {
    None,
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

fn cbc_enc<C>(aes: &C, iv: &[u8], plain: &[u8]) -> Vec<u8>
where
    C: Clone + aes::cipher::BlockCipher + aes::cipher::BlockEncryptMut,
    cbc::Encryptor<C>: aes::cipher::InnerIvInit<Inner = C> + BlockEncryptMut,
{
    use aes::cipher::InnerIvInit;
    match cbc::Encryptor::<C>::inner_iv_slice_init(aes.clone(), iv) {
        Ok(enc) => enc.encrypt_padded_vec_mut::<Pkcs7>(plain),
        Err(_) => Vec::new(),
    }
}

fn cbc_dec<C>(aes: &C, iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    C: Clone + aes::cipher::BlockCipher + aes::cipher::BlockDecryptMut,
    cbc::Decryptor<C>: aes::cipher::InnerIvInit<Inner = C> + BlockDecryptMut,
{
    use aes::cipher::InnerIvInit;
    let dec = cbc::Decryptor::<C>::inner_iv_slice_init(aes.clone(), iv).ok()?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(data).ok()
}

impl Aes {
    /// `None` when the key is shorter than the cipher's, which [`KnetCrypto::new`] rules out.
    fn new(cipher: CryptoCipher, key: &[u8]) -> Option<Aes> {
        use aes::cipher::KeyInit;
        let k = key.get(..cipher.key_len())?;
        Some(match cipher {
            CryptoCipher::None => Aes::None,
            CryptoCipher::Aes256 => Aes::A256(aes::Aes256::new_from_slice(k).ok()?),
            CryptoCipher::Aes192 => Aes::A192(aes::Aes192::new_from_slice(k).ok()?),
            CryptoCipher::Aes128 => Aes::A128(aes::Aes128::new_from_slice(k).ok()?),
        })
    }

    /// AES-CBC with PKCS#7 padding (`CKM_AES_CBC_PAD`, `EVP_aes_*_cbc` with its default
    /// padding); the packet unchanged without a cipher.
    fn encrypt(&self, iv: &[u8], plain: &[u8]) -> Vec<u8> {
        match self {
            Aes::None => plain.to_vec(),
            Aes::A128(a) => cbc_enc(a, iv, plain),
            Aes::A192(a) => cbc_enc(a, iv, plain),
            Aes::A256(a) => cbc_enc(a, iv, plain),
        }
    }

    /// The inverse; `None` when the padding is not PKCS#7.
    fn decrypt(&self, iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Aes::None => Some(data.to_vec()),
            Aes::A128(a) => cbc_dec(a, iv, data),
            Aes::A192(a) => cbc_dec(a, iv, data),
            Aes::A256(a) => cbc_dec(a, iv, data),
        }
    }
}

impl KnetCrypto {
    /// A configuration as libknet accepts it (`_knet_handle_crypto_set_config`,
    /// `*crypto_init`): key of [`MIN_KEY_LEN`]..=[`MAX_KEY_LEN`] bytes, a hash whenever
    /// there is a cipher, not both none.
    pub fn new(
        model: CryptoModel,
        cipher: CryptoCipher,
        hash: CryptoHash,
        key: &[u8],
    ) -> Result<KnetCrypto, CryptoConfigError> {
        if cipher == CryptoCipher::None && hash == CryptoHash::None {
            return Err(CryptoConfigError::Disabled);
        }
        if key.len() < MIN_KEY_LEN {
            return Err(CryptoConfigError::KeyTooShort(key.len()));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(CryptoConfigError::KeyTooLong(key.len()));
        }
        if cipher != CryptoCipher::None && hash == CryptoHash::None {
            return Err(CryptoConfigError::CipherWithoutHash);
        }
        let aes = Aes::new(cipher, key).ok_or(CryptoConfigError::KeyRejected)?;
        let mac = Keyed::new(hash, key).ok_or(CryptoConfigError::KeyRejected)?;
        Ok(KnetCrypto {
            model,
            cipher,
            hash,
            key: key.to_vec(),
            aes,
            mac,
        })
    }

    /// The key as corosync takes it from a key file's contents (`read_keyfile`): the first
    /// [`MAX_KEY_LEN`] bytes, at least [`MIN_KEY_LEN`].
    pub fn key_from_file_bytes(bytes: &[u8]) -> Result<&[u8], CryptoConfigError> {
        let key = &bytes[..bytes.len().min(MAX_KEY_LEN)];
        if key.len() < MIN_KEY_LEN {
            return Err(CryptoConfigError::KeyTooShort(key.len()));
        }
        Ok(key)
    }

    /// The model.
    pub fn model(&self) -> CryptoModel {
        self.model
    }
    /// The cipher.
    pub fn cipher(&self) -> CryptoCipher {
        self.cipher
    }
    /// The hash.
    pub fn hash(&self) -> CryptoHash {
        self.hash
    }

    /// `sec_block_size`, `sec_hash_size`, `sec_salt_size` as the model's init sets them:
    /// block and salt only with a cipher, hash only with a hash.
    pub fn overhead(&self) -> Overhead {
        let ciphered = self.cipher != CryptoCipher::None;
        Overhead {
            block_size: if ciphered { AES_BLOCK_SIZE } else { 0 },
            hash_size: self.hash.tag_len(),
            salt_size: if ciphered { SALT_SIZE } else { 0 },
        }
    }

    /// Length on the wire of a `plain_len`-byte knet packet (`onwire.c::calc_data_outlen`:
    /// PKCS#7 always adds 1..=16 bytes, then salt and HMAC).
    pub fn encrypted_len(&self, plain_len: usize) -> usize {
        let o = self.overhead();
        let padded = if o.block_size > 0 {
            plain_len + (o.block_size - plain_len % o.block_size)
        } else {
            plain_len
        };
        padded + o.salt_size + o.hash_size
    }

    /// The data MTU libknet reports for a path MTU (`calc_max_data_outlen` of
    /// `path_mtu - IPv4 - UDP`): the largest user payload of one DATA packet whose
    /// encrypted form fits. 1500 with aes256/sha256 gives 1397. `None` when the path
    /// cannot carry even an empty packet.
    pub fn data_mtu(&self, path_mtu: usize) -> Option<usize> {
        let o = self.overhead();
        let mut out = path_mtu.checked_sub(IPV4_UDP_OVERHEAD)?;
        if o.block_size > 0 {
            // What is left for ciphertext, cut to whole blocks minus one byte, so that
            // the padding (at least one byte) still fits.
            let crypt = out.checked_sub(o.salt_size + o.hash_size)?;
            out = (crypt - crypt % o.block_size).checked_sub(1)? + o.salt_size + o.hash_size;
        }
        out.checked_sub(KNET_HEADER_ALL_SIZE + o.salt_size + o.hash_size)
    }

    /// Authenticates and decrypts one datagram as `*crypto_authenticate_and_decrypt` does,
    /// in its order: something must precede the HMAC (`temp_buf_len > 0`, at most
    /// `KNET_MAX_PACKET_SIZE`), the HMAC over it must verify, then salt and ciphertext
    /// (whole AES blocks, valid padding) are read. Returns the clear knet packet.
    pub fn decrypt(&self, datagram: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let hash_len = self.hash.tag_len();
        let min = hash_len + 1;
        if datagram.len() < min {
            return Err(CryptoError::TooShort {
                len: datagram.len(),
                min,
            });
        }
        let signed_len = datagram.len() - hash_len;
        if signed_len > KNET_MAX_PACKET_SIZE {
            return Err(CryptoError::TooLong(datagram.len()));
        }
        let (signed, tag) = datagram.split_at(signed_len);
        if !self.mac.verify(signed, tag) {
            return Err(CryptoError::BadHmac);
        }
        if self.cipher == CryptoCipher::None {
            return Ok(signed.to_vec());
        }
        let data = signed.get(SALT_SIZE..).unwrap_or(&[]);
        if data.is_empty() || data.len() % AES_BLOCK_SIZE != 0 {
            return Err(CryptoError::Misaligned(data.len()));
        }
        self.aes
            .decrypt(&signed[..SALT_SIZE], data)
            .ok_or(CryptoError::BadPadding)
    }

    /// Encrypts and signs one knet packet as `*crypto_encrypt_and_signv` does, with the
    /// given salt (libknet draws it at random for every packet; a sender must too).
    pub fn encrypt(&self, packet: &[u8], salt: &[u8; SALT_SIZE]) -> Result<Vec<u8>, CryptoError> {
        if packet.is_empty() || packet.len() > KNET_MAX_PACKET_SIZE {
            return Err(CryptoError::PlainLength(packet.len()));
        }
        let mut out = Vec::with_capacity(self.encrypted_len(packet.len()));
        if self.cipher == CryptoCipher::None {
            out.extend_from_slice(packet);
        } else {
            out.extend_from_slice(salt);
            out.extend_from_slice(&self.aes.encrypt(salt, packet));
        }
        let tag = self.mac.tag(&out);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Which (cipher, hash) a datagram was sent with, for this key: the hash is the one
    /// whose HMAC verifies (certain), the cipher the one whose padding is valid and whose
    /// plaintext is a knet packet (a wrong AES key passes both with a chance below
    /// 2^-36). The model cannot be told: both put the same bytes on the wire.
    /// `None` when nothing verifies (another key, or a corrupted packet).
    pub fn detect(
        model: CryptoModel,
        key: &[u8],
        datagram: &[u8],
    ) -> Option<(CryptoCipher, CryptoHash)> {
        for hash in CryptoHash::ALL.into_iter().skip(1) {
            for cipher in CryptoCipher::ALL {
                let Ok(c) = KnetCrypto::new(model, cipher, hash, key) else {
                    continue;
                };
                match c.decrypt(datagram) {
                    Ok(plain) if looks_like_knet(&plain) => return Some((cipher, hash)),
                    // The HMAC verified with this hash: only the cipher is left to find.
                    Ok(_) | Err(CryptoError::BadPadding | CryptoError::Misaligned(_)) => {}
                    Err(_) => break,
                }
            }
        }
        None
    }
}

/// Could this datagram be a knet packet under crypto, judged without a key? A clear
/// knet packet starts with version 1, a known type and zero pads ([`looks_like_knet`]);
/// an encrypted one starts with a random salt and has a length of
/// `16 + 16·n + H` for one of the HMAC lengths H (16, 20, 32, 48, 64), n ≥ 1. The
/// salt looks like a knet header about once in 2^30 packets; then this says no.
pub fn looks_encrypted(datagram: &[u8]) -> bool {
    if looks_like_knet(datagram) {
        return false;
    }
    CryptoHash::ALL.into_iter().skip(1).any(|h| {
        datagram
            .len()
            .checked_sub(SALT_SIZE + h.tag_len())
            .is_some_and(|c| c >= AES_BLOCK_SIZE && c % AES_BLOCK_SIZE == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn config_bounds_follow_libknet() {
        let k = key(256);
        let new = |c, h, k: &[u8]| KnetCrypto::new(CryptoModel::Nss, c, h, k);
        assert_eq!(
            new(CryptoCipher::None, CryptoHash::None, &k),
            Err(CryptoConfigError::Disabled)
        );
        assert_eq!(
            new(CryptoCipher::Aes256, CryptoHash::None, &k),
            Err(CryptoConfigError::CipherWithoutHash)
        );
        assert_eq!(
            new(CryptoCipher::Aes256, CryptoHash::Sha256, &key(127)),
            Err(CryptoConfigError::KeyTooShort(127))
        );
        assert_eq!(
            new(CryptoCipher::Aes256, CryptoHash::Sha256, &key(4097)),
            Err(CryptoConfigError::KeyTooLong(4097))
        );
        assert!(new(CryptoCipher::Aes256, CryptoHash::Sha256, &key(128)).is_ok());
        assert!(new(CryptoCipher::None, CryptoHash::Sha1, &key(4096)).is_ok());
        assert_eq!(
            KnetCrypto::key_from_file_bytes(&key(5000)).map(<[u8]>::len),
            Ok(4096)
        );
        assert_eq!(
            KnetCrypto::key_from_file_bytes(&key(100)),
            Err(CryptoConfigError::KeyTooShort(100))
        );
    }

    #[test]
    fn data_mtu_is_what_corosync_logs() {
        // "Global data MTU changed to: 1397" and "from 469" (576-byte minimum path) in
        // node 1's log of the aes256/sha256 captures; 1446 without crypto.
        let c = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::Aes256,
            CryptoHash::Sha256,
            &key(256),
        )
        .unwrap();
        assert_eq!(c.data_mtu(1500), Some(1397));
        assert_eq!(c.data_mtu(576), Some(469));
        assert_eq!(c.data_mtu(60), None);
        let o = c.overhead();
        assert_eq!((o.block_size, o.hash_size, o.salt_size), (16, 32, 16));
        // The largest packet fits the path: 26-byte header reserve + data MTU.
        assert!(c.encrypted_len(1397 + KNET_HEADER_ALL_SIZE) + 28 <= 1500);
        let h = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::None,
            CryptoHash::Sha1,
            &key(256),
        )
        .unwrap();
        assert_eq!(h.data_mtu(1500), Some(1500 - 28 - 26 - 20));
        assert_eq!(h.encrypted_len(100), 120);
    }

    #[test]
    fn round_trip_with_fixed_salt_every_combination() {
        let k = key(300);
        let salt = [0x5a; SALT_SIZE];
        let packet: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for model in CryptoModel::ALL {
            for cipher in CryptoCipher::ALL {
                for hash in CryptoHash::ALL {
                    let Ok(c) = KnetCrypto::new(model, cipher, hash, &k) else {
                        continue;
                    };
                    for len in [1, 15, 16, 17, 1000] {
                        let wire = c.encrypt(&packet[..len], &salt).unwrap();
                        assert_eq!(wire.len(), c.encrypted_len(len), "{c:?} {len}");
                        assert_eq!(c.decrypt(&wire).unwrap(), &packet[..len]);
                        // Any flipped bit fails the HMAC.
                        let mut bad = wire.clone();
                        let at = len / 2;
                        bad[at] ^= 1;
                        assert_eq!(c.decrypt(&bad), Err(CryptoError::BadHmac));
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_key_cipher_and_hash_are_told_apart() {
        let k = key(256);
        let salt = [7; SALT_SIZE];
        let packet = [[1u8, 0x81, 0, 2, 0, 0].as_slice(), &[9; 60]].concat();
        let c = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::Aes256,
            CryptoHash::Sha256,
            &k,
        )
        .unwrap();
        let wire = c.encrypt(&packet, &salt).unwrap();
        let mut other = k.clone();
        other[200] ^= 0x80; // beyond the AES key: only the HMAC key differs
        let wrong_key = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::Aes256,
            CryptoHash::Sha256,
            &other,
        )
        .unwrap();
        assert_eq!(wrong_key.decrypt(&wire), Err(CryptoError::BadHmac));
        let wrong_hash = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::Aes256,
            CryptoHash::Sha512,
            &k,
        )
        .unwrap();
        assert_eq!(wrong_hash.decrypt(&wire), Err(CryptoError::BadHmac));
        // Same key and hash, another AES key length: the HMAC verifies, the padding
        // (almost always) does not.
        let wrong_cipher = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::Aes128,
            CryptoHash::Sha256,
            &k,
        )
        .unwrap();
        assert!(matches!(
            wrong_cipher.decrypt(&wire),
            Err(CryptoError::BadPadding) | Ok(_)
        ));
        assert_ne!(wrong_cipher.decrypt(&wire).ok(), Some(packet.to_vec()));
        assert_eq!(
            KnetCrypto::detect(CryptoModel::Openssl, &k, &wire),
            Some((CryptoCipher::Aes256, CryptoHash::Sha256))
        );
        assert_eq!(KnetCrypto::detect(CryptoModel::Nss, &other, &wire), None);
        assert!(looks_encrypted(&wire));
        assert!(!looks_encrypted(&packet));
    }

    #[test]
    fn short_and_long_inputs_are_malformed_not_hmac() {
        let c = KnetCrypto::new(
            CryptoModel::Nss,
            CryptoCipher::Aes128,
            CryptoHash::Sha1,
            &key(128),
        )
        .unwrap();
        for len in 0..=20 {
            assert!(matches!(
                c.decrypt(&vec![0; len]),
                Err(CryptoError::TooShort { .. })
            ));
        }
        assert_eq!(
            c.decrypt(&vec![0; KNET_MAX_PACKET_SIZE + 21]),
            Err(CryptoError::TooLong(KNET_MAX_PACKET_SIZE + 21))
        );
        assert_eq!(c.encrypt(&[], &[0; 16]), Err(CryptoError::PlainLength(0)));
        // Long enough to carry an HMAC, too short for the cipher: the HMAC is checked first.
        assert_eq!(c.decrypt(&[0; 40]), Err(CryptoError::BadHmac));
        // Signed datagrams whose ciphertext is not whole blocks.
        for (len, rest) in [(36, 20), (10, 0), (16, 0)] {
            let mut wire = vec![0u8; len];
            let tag = hmac_of(CryptoHash::Sha1, &key(128), &wire);
            wire.extend_from_slice(&tag);
            assert_eq!(c.decrypt(&wire), Err(CryptoError::Misaligned(rest)));
        }
    }
}
