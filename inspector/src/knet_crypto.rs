//! knet crypto for the decoder (`--authkey`, `--keyfile`, `--crypto-*`): libknet's
//! framing (`totem_knet::crypto`) opened before the knet layer is decoded, and encrypted
//! packets recognised as such when no key is given.
//!
//! What a packet shows, and so what is detected and what must be given:
//! * Without a key: only that a datagram is probably encrypted knet: it is not a clear
//!   knet packet (version 1, known type, zero pads) and its length is 16 (salt) + whole AES
//!   blocks + an HMAC length. Nothing else is visible.
//! * With the key: the hash (the one whose HMAC verifies) and the cipher (the AES key
//!   length whose padding is valid and whose plaintext is a knet packet) are found from
//!   the first packet that verifies. The model (nss or openssl) is never visible: both put
//!   the same bytes on the wire, so it is not needed to decode.
//! * `crypto_cipher: none` with a hash: packets are clear knet followed by their HMAC.
//!   Without a key they decode as knet, the HMAC showing as 16–64 extra bytes (totempg
//!   length errors); with the key it is verified and stripped.

use std::path::{Path, PathBuf};

use totem_knet::crypto::{
    looks_encrypted, CryptoCipher, CryptoError, CryptoHash, CryptoModel, KnetCrypto,
};
use totem_wire::knet::looks_like_knet;

use crate::model::ErrorRecord;

/// The layer name of crypto errors in frame records and stats.
pub const LAYER: &str = "knet-crypto";

/// What the crypto options resolved to: the key, and whatever of cipher and hash was
/// given (the rest is detected from the packets).
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoSetting {
    /// The key as corosync passes it to libknet (the key file's first 4096 bytes).
    pub key: Vec<u8>,
    /// `crypto_model`: recorded for the notes only, it does not change the bytes.
    pub model: CryptoModel,
    /// `crypto_cipher`, if given.
    pub cipher: Option<CryptoCipher>,
    /// `crypto_hash`, if given.
    pub hash: Option<CryptoHash>,
}

impl std::fmt::Debug for CryptoSetting {
    // The key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoSetting")
            .field("key_len", &self.key.len())
            .field("model", &self.model)
            .field("cipher", &self.cipher)
            .field("hash", &self.hash)
            .finish()
    }
}

/// The crypto options as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct CryptoOptions {
    /// `--authkey FILE`.
    pub authkey: Option<PathBuf>,
    /// `--keyfile CONF`: a corosync.conf.
    pub conf: Option<PathBuf>,
    /// `--crypto-model`.
    pub model: Option<String>,
    /// `--crypto-cipher`.
    pub cipher: Option<String>,
    /// `--crypto-hash`.
    pub hash: Option<String>,
}

/// The crypto keys of corosync.conf's `totem` section (`totemconfig.c::totem_get_crypto`,
/// `totem_set_keyfile`).
#[derive(Debug, Default, PartialEq, Eq)]
struct ConfCrypto {
    keyfile: Option<String>,
    model: Option<String>,
    cipher: Option<String>,
    hash: Option<String>,
    secauth: Option<String>,
}

/// Reads `key: value` lines of the top-level `totem { }` section (corosync.conf's
/// grammar: `#` comments, `name {` opens a section, `}` closes one).
fn parse_conf(text: &str) -> Result<ConfCrypto, String> {
    let mut path: Vec<String> = Vec::new();
    let mut found_totem = false;
    let mut c = ConfCrypto::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_suffix('{') {
            path.push(name.trim().to_string());
            found_totem |= path.len() == 1 && path[0] == "totem";
            continue;
        }
        if line == "}" {
            path.pop();
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if path.len() != 1 || path[0] != "totem" {
            continue;
        }
        let value = Some(value.trim().to_string());
        match key.trim() {
            "keyfile" => c.keyfile = value,
            "crypto_model" => c.model = value,
            "crypto_cipher" => c.cipher = value,
            "crypto_hash" => c.hash = value,
            "secauth" => c.secauth = value,
            _ => {}
        }
    }
    if !found_totem {
        return Err("no `totem {` section: --keyfile takes a corosync.conf (the key itself goes to --authkey)".into());
    }
    Ok(c)
}

fn model_of(name: &str) -> Result<CryptoModel, String> {
    CryptoModel::from_name(name)
        .ok_or_else(|| format!("unknown crypto model {name:?}: nss or openssl"))
}
fn cipher_of(name: &str) -> Result<CryptoCipher, String> {
    CryptoCipher::from_name(name)
        .ok_or_else(|| format!("unknown crypto cipher {name:?}: aes256, aes192, aes128 or none"))
}
fn hash_of(name: &str) -> Result<CryptoHash, String> {
    CryptoHash::from_name(name).ok_or_else(|| {
        format!("unknown crypto hash {name:?}: sha1, sha256, sha384, sha512, md5 or none")
    })
}

impl CryptoSetting {
    /// Resolves the options: `None` when no key was asked for. From a corosync.conf:
    /// its `keyfile` (relative paths from the conf's directory; corosync's default
    /// /etc/corosync/authkey when absent) and its crypto keys with corosync's defaults
    /// (model nss, `secauth: on` = aes256/sha256); `--crypto-*` win over the file.
    pub fn resolve(opts: &CryptoOptions) -> Result<Option<CryptoSetting>, String> {
        let mut conf = ConfCrypto::default();
        let mut key_path = opts.authkey.clone();
        if let Some(path) = &opts.conf {
            let bytes =
                std::fs::read(path).map_err(|e| format!("--keyfile {}: {e}", path.display()))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                format!(
                    "--keyfile {}: not text, so not a corosync.conf (the key itself goes to --authkey)",
                    path.display()
                )
            })?;
            conf = parse_conf(&text).map_err(|e| format!("--keyfile {}: {e}", path.display()))?;
            if key_path.is_none() {
                let file = conf.keyfile.as_deref().unwrap_or("/etc/corosync/authkey");
                let dir = path.parent().unwrap_or(Path::new("."));
                key_path = Some(dir.join(file));
            }
        }
        let Some(key_path) = key_path else {
            if opts.model.is_some() || opts.cipher.is_some() || opts.hash.is_some() {
                return Err(
                    "--crypto-model/--crypto-cipher/--crypto-hash need --authkey or --keyfile"
                        .into(),
                );
            }
            return Ok(None);
        };
        let bytes =
            std::fs::read(&key_path).map_err(|e| format!("authkey {}: {e}", key_path.display()))?;
        let key = KnetCrypto::key_from_file_bytes(&bytes)
            .map_err(|e| format!("authkey {}: {e}", key_path.display()))?
            .to_vec();
        let model = match opts.model.as_deref().or(conf.model.as_deref()) {
            Some(m) => model_of(m)?,
            None => CryptoModel::Nss,
        };
        let secauth = conf.secauth.as_deref() == Some("on");
        let from_conf = opts.conf.is_some();
        let cipher = match (opts.cipher.as_deref(), conf.cipher.as_deref()) {
            (Some(c), _) | (None, Some(c)) => Some(cipher_of(c)?),
            (None, None) if from_conf && secauth => Some(CryptoCipher::Aes256),
            (None, None) if from_conf => Some(CryptoCipher::None),
            (None, None) => None,
        };
        let hash = match (opts.hash.as_deref(), conf.hash.as_deref()) {
            (Some(h), _) | (None, Some(h)) => Some(hash_of(h)?),
            (None, None) if from_conf && secauth => Some(CryptoHash::Sha256),
            (None, None) if from_conf => Some(CryptoHash::None),
            (None, None) => None,
        };
        if let (Some(c), Some(h)) = (cipher, hash) {
            KnetCrypto::new(model, c, h, &key)
                .map_err(|e| format!("crypto {model}/{c}/{h}: {e}"))?;
        }
        Ok(Some(CryptoSetting {
            key,
            model,
            cipher,
            hash,
        }))
    }
}

/// Opens a capture's packets: the configuration once known (given, or detected from the
/// first packet that verifies), and how many packets verified (a packet that fails after
/// others verified is corrupted, or from a node with another key).
#[derive(Debug)]
pub struct KnetDecryptor {
    setting: CryptoSetting,
    crypto: Option<KnetCrypto>,
    verified: u64,
}

impl KnetDecryptor {
    /// A decryptor for one capture.
    pub fn new(setting: CryptoSetting) -> KnetDecryptor {
        let crypto = match (setting.cipher, setting.hash) {
            (Some(c), Some(h)) => KnetCrypto::new(setting.model, c, h, &setting.key).ok(),
            _ => None,
        };
        KnetDecryptor {
            setting,
            crypto,
            verified: 0,
        }
    }

    /// Verifies and decrypts one knet datagram. `Ok` carries the clear packet and, on the
    /// packet that revealed the configuration, a note saying what was detected.
    pub fn open(&mut self, datagram: &[u8]) -> Result<(Vec<u8>, Option<String>), ErrorRecord> {
        if let Some(crypto) = &self.crypto {
            return match crypto.decrypt(datagram) {
                Ok(plain) => {
                    self.verified += 1;
                    Ok((plain, None))
                }
                Err(e) => Err(self.error(datagram, &e)),
            };
        }
        let ciphers = self
            .setting
            .cipher
            .map_or(CryptoCipher::ALL.to_vec(), |c| vec![c]);
        let hashes = self
            .setting
            .hash
            .map_or(CryptoHash::ALL[1..].to_vec(), |h| vec![h]);
        let mut last = CryptoError::BadHmac;
        for &hash in &hashes {
            for &cipher in &ciphers {
                let Ok(crypto) =
                    KnetCrypto::new(self.setting.model, cipher, hash, &self.setting.key)
                else {
                    continue;
                };
                match crypto.decrypt(datagram) {
                    Ok(plain) if looks_like_knet(&plain) => {
                        let note = format!(
                            "knet crypto detected from this packet: cipher {cipher}, hash {hash} (the model, nss or openssl, is not visible on the wire)"
                        );
                        self.crypto = Some(crypto);
                        self.verified += 1;
                        return Ok((plain, Some(note)));
                    }
                    Ok(_) => last = CryptoError::BadPadding,
                    Err(e @ (CryptoError::BadPadding | CryptoError::Misaligned(_))) => last = e,
                    Err(_) => {}
                }
            }
        }
        Err(self.error(datagram, &last))
    }

    fn error(&self, datagram: &[u8], e: &CryptoError) -> ErrorRecord {
        let given = match (self.setting.cipher, self.setting.hash) {
            (Some(c), Some(h)) => format!("{c}/{h}"),
            _ => "any cipher and hash".to_string(),
        };
        // Where the HMAC starts, once the hash is known.
        let hmac_at = self
            .crypto
            .as_ref()
            .map_or(0, |c| datagram.len().saturating_sub(c.hash().tag_len()));
        let (kind, offset, reason) = match e {
            CryptoError::BadHmac if self.verified == 0 => (
                "bad_hmac",
                hmac_at,
                format!("HMAC does not verify with this key ({given}): wrong key (no packet has verified so far), or a corrupted packet"),
            ),
            CryptoError::BadHmac => (
                "bad_hmac",
                hmac_at,
                format!("HMAC does not verify ({given}) although {} earlier packets did: a corrupted packet, or a sender with another key", self.verified),
            ),
            CryptoError::BadPadding => (
                "bad_padding",
                0,
                format!("{e} ({given})"),
            ),
            _ => ("malformed", 0, format!("{e} ({given})")),
        };
        ErrorRecord {
            layer: LAYER,
            offset,
            kind,
            reason,
        }
    }
}

/// Without a key: the error of a datagram on a corosync port that is no clear knet or
/// totem packet but has the shape of an encrypted knet one; `None` otherwise.
pub fn encrypted_without_key(datagram: &[u8]) -> Option<ErrorRecord> {
    looks_encrypted(datagram).then(|| ErrorRecord {
        layer: LAYER,
        offset: 0,
        kind: "encrypted",
        reason: format!(
            "encrypted knet packet ({} bytes: 16-byte salt, AES blocks, HMAC): use --authkey or --keyfile to decrypt",
            datagram.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_keys_are_read_from_the_totem_section_only() {
        let c = parse_conf(
            "# x\ntotem {\n\tcrypto_cipher: aes128\n\tinterface {\n\t\tcrypto_hash: md5\n\t}\n\tcrypto_hash: sha1\n\tkeyfile: /k\n}\nlogging {\n\tcrypto_model: openssl\n}\n",
        )
        .unwrap();
        assert_eq!(c.cipher.as_deref(), Some("aes128"));
        assert_eq!(c.hash.as_deref(), Some("sha1"));
        assert_eq!(c.keyfile.as_deref(), Some("/k"));
        assert_eq!(c.model, None);
        assert!(parse_conf("\u{1}\u{2}binary key").is_err());
    }
}
