//! knet crypto on totemd's socket: every knet datagram sent is encrypted and signed with a
//! salt from the OS random source, every one received is verified and decrypted before
//! `totem_knet` sees it (libknet's `crypto_encrypt_and_sign` in `threads_tx.c` and
//! `crypto_authenticate_and_decrypt` in `threads_rx.c`, with clear traffic refused:
//! `KNET_CRYPTO_RX_DISALLOW_CLEAR_TRAFFIC`, as corosync sets it when crypto is on). The
//! framing is `totem_knet::crypto`'s; only the randomness and the accounting are here.

use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;

use totem_knet::crypto::{CryptoError, KnetCrypto, SALT_SIZE};
use totem_srp::Instant;

use crate::logf;

/// Refused datagrams are reported at most this often (ms): libknet logs every one, which a
/// node with the wrong key would turn into thousands of lines a minute.
const REPORT_MS: i64 = 10_000;

/// Random bytes read from the kernel at a time: 256 salts.
const POOL: usize = 4096;

/// Counters of the crypto layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CryptoStats {
    /// Datagrams encrypted and sent.
    pub encrypted: u64,
    /// Datagrams that verified and decrypted.
    pub decrypted: u64,
    /// Datagrams dropped because their HMAC does not verify (another key or hash, or
    /// corrupted).
    pub bad_hmac: u64,
    /// Datagrams dropped for another reason (too short or long, HMAC right but not the
    /// cipher's framing or padding).
    pub malformed: u64,
}

impl CryptoStats {
    /// Every datagram dropped.
    pub fn dropped(&self) -> u64 {
        self.bad_hmac + self.malformed
    }
}

/// The OS random source, read in blocks (libknet takes each salt from NSS's or OpenSSL's
/// generator, `PK11_GenerateRandom` / `RAND_bytes`).
struct Salts {
    urandom: File,
    pool: Vec<u8>,
    used: usize,
}

impl Salts {
    fn open() -> io::Result<Salts> {
        Ok(Salts {
            urandom: File::open("/dev/urandom")?,
            pool: vec![0; POOL],
            used: POOL,
        })
    }

    fn next(&mut self) -> io::Result<[u8; SALT_SIZE]> {
        if self.used + SALT_SIZE > self.pool.len() {
            self.urandom.read_exact(&mut self.pool)?;
            self.used = 0;
        }
        let mut salt = [0; SALT_SIZE];
        salt.copy_from_slice(&self.pool[self.used..self.used + SALT_SIZE]);
        self.used += SALT_SIZE;
        Ok(salt)
    }
}

/// One node's knet crypto: the configuration, the salt source, the counters.
pub struct LinkCrypto {
    crypto: KnetCrypto,
    salts: Salts,
    /// Counters.
    pub stats: CryptoStats,
    reported_drops: u64,
    reported_at: Option<Instant>,
    salt_failures: u64,
}

impl LinkCrypto {
    /// Opens the random source; logs what corosync and libknet log when they set crypto up
    /// (`totemknet_set_knet_crypto`, `crypto_init`, `knet_handle_crypto_rx_clear_traffic`).
    pub fn new(crypto: KnetCrypto) -> io::Result<LinkCrypto> {
        let salts = Salts::open()?;
        let name = format!("{}/{}/{}", crypto.model(), crypto.cipher(), crypto.hash());
        logf!(Totem, Debug, "Configuring crypto {name} on index 1");
        logf!(Knet, Debug, "crypto: Initializing crypto module [{name}]");
        logf!(Knet, Debug, "crypto: Only crypto traffic allowed for RX");
        Ok(LinkCrypto {
            crypto,
            salts,
            stats: CryptoStats::default(),
            reported_drops: 0,
            reported_at: None,
            salt_failures: 0,
        })
    }

    /// The configuration.
    pub fn crypto(&self) -> &KnetCrypto {
        &self.crypto
    }

    /// One knet packet encrypted and signed for the wire; `None` (logged) when the random
    /// source or the packet's length refuses, which drops the packet as a failed send.
    pub fn seal(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let salt = match self.salts.next() {
            Ok(s) => s,
            Err(e) => {
                self.salt_failures += 1;
                if self.salt_failures == 1 {
                    logf!(
                        Knet,
                        Error,
                        "crypto: cannot read a salt from /dev/urandom: {e}; datagrams are not sent"
                    );
                }
                return None;
            }
        };
        match self.crypto.encrypt(packet, &salt) {
            Ok(wire) => {
                self.stats.encrypted += 1;
                Some(wire)
            }
            Err(e) => {
                logf!(Knet, Error, "crypto: packet not sent: {e}");
                None
            }
        }
    }

    /// One received datagram verified and decrypted; `None` when it does not verify: it is
    /// counted, reported at most every [`REPORT_MS`] with the count since the last report,
    /// and goes no further.
    pub fn open(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Option<Vec<u8>> {
        match self.crypto.decrypt(datagram) {
            Ok(plain) => {
                self.stats.decrypted += 1;
                Some(plain)
            }
            Err(e) => {
                if matches!(e, CryptoError::BadHmac) {
                    self.stats.bad_hmac += 1;
                } else {
                    self.stats.malformed += 1;
                }
                self.report(now, from, datagram.len(), &e);
                None
            }
        }
    }

    fn report(&mut self, now: Instant, from: SocketAddr, len: usize, e: &CryptoError) {
        let due = self
            .reported_at
            .is_none_or(|at| (now - at).total_millis() as i64 >= REPORT_MS);
        if !due {
            return;
        }
        let total = self.stats.dropped();
        // libknet's words (threads_rx.c, crypto_nss.c), then how many this line stands for.
        logf!(
            Knet,
            Error,
            "rx: Unable to decrypt packet from {}:{} (size {len})! {e}. {} datagrams dropped since the last report, {total} in all ({} bad HMAC)",
            from.ip(),
            from.port(),
            total - self.reported_drops,
            self.stats.bad_hmac
        );
        self.reported_drops = total;
        self.reported_at = Some(now);
    }
}
