//! knet crypto against real corosync 3.1.7 / libknet 1.25 traffic: every packet of each
//! knet-crypto capture verifies and decrypts with the capture's authkey into a knet packet
//! whose totem messages parse; re-encrypting the plaintext with the packet's own salt
//! gives the captured bytes back; a wrong key fails every packet on the HMAC.

mod common;

use std::collections::BTreeMap;

use common::{Capture, CAPTURES};
use totem_knet::crypto::{looks_encrypted, CryptoCipher, CryptoError, KnetCrypto, SALT_SIZE};
use totem_wire::knet::{DefragLimits, Defragmented, Defragmenter, KnetBody, KnetPacket};
use totem_wire::srp::Message;

/// The conf beside each capture names the settings this test assumes.
#[test]
fn each_capture_was_recorded_with_the_settings_assumed_here() {
    for c in &CAPTURES {
        let conf = c.conf();
        for line in [
            format!("crypto_model: {}", c.model),
            format!("crypto_cipher: {}", c.cipher),
            format!("crypto_hash: {}", c.hash),
            format!("keyfile: {}.authkey", c.name),
        ] {
            assert!(conf.contains(&line), "{}: no `{line}`", c.name);
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    datagrams: usize,
    by_type: BTreeMap<String, usize>,
    totem_messages: usize,
    reassembled: usize,
    fragments: usize,
}

fn decrypt_all(c: &Capture) -> Tally {
    let crypto = c.crypto();
    let mut tally = Tally::default();
    let mut defrag = Defragmenter::new(DefragLimits::default());
    for d in c.datagrams() {
        let what = format!("{} frame {} ({} bytes)", c.name, d.frame, d.payload.len());
        tally.datagrams += 1;
        assert_eq!(
            looks_encrypted(&d.payload),
            c.cipher != CryptoCipher::None,
            "{what}"
        );
        let plain = crypto
            .decrypt(&d.payload)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(d.payload.len(), crypto.encrypted_len(plain.len()), "{what}");
        // encrypt is decrypt's exact inverse: the packet's own salt gives its bytes back.
        let salt: [u8; SALT_SIZE] = match c.cipher {
            CryptoCipher::None => [0; SALT_SIZE],
            _ => d.payload[..SALT_SIZE].try_into().unwrap(),
        };
        assert_eq!(crypto.encrypt(&plain, &salt).unwrap(), d.payload, "{what}");
        let packet = KnetPacket::parse(&plain).unwrap_or_else(|e| panic!("{what}: knet: {e}"));
        assert_eq!(
            u32::from(packet.header.node),
            u32::from(d.src.ip().octets()[3]) - 10,
            "{what}: kh_node is the sender's nodeid"
        );
        *tally
            .by_type
            .entry(packet.header.packet_type.to_string())
            .or_default() += 1;
        if let KnetBody::Data(data) = &packet.body {
            let message = match defrag.feed((packet.header.node, *d.dst.ip()), data, d.frame) {
                Defragmented::Whole => data.payload.to_vec(),
                Defragmented::Complete { data, sources } => {
                    tally.reassembled += 1;
                    tally.fragments += sources.len();
                    data
                }
                Defragmented::Pending => continue,
                Defragmented::Dropped(why) => panic!("{what}: fragment dropped: {why}"),
            };
            Message::parse(&message).unwrap_or_else(|e| panic!("{what}: totem: {e}"));
            tally.totem_messages += 1;
        }
    }
    tally
}

#[test]
fn every_packet_of_every_capture_verifies_decrypts_and_parses() {
    for c in &CAPTURES {
        let t = decrypt_all(c);
        eprintln!("{}: {t:?}", c.name);
        // Formation, heartbeat, PMTUd and CPG traffic are all there.
        for ty in ["DATA", "PING", "PONG", "PMTUD", "PMTUD_REPLY"] {
            assert!(
                t.by_type.get(ty).copied().unwrap_or(0) > 0,
                "{}: no {ty}",
                c.name
            );
        }
        assert!(t.totem_messages > 100, "{}: {t:?}", c.name);
        // The 3000-byte CPG messages exceed the data MTU: knet fragments them.
        assert!(t.reassembled > 0, "{}: {t:?}", c.name);
    }
}

#[test]
fn a_wrong_key_fails_every_packet_on_the_hmac() {
    for c in &CAPTURES {
        let mut key = c.key();
        // A byte past every AES key: only the HMAC key differs.
        key[100] ^= 0x01;
        let wrong = KnetCrypto::new(c.model, c.cipher, c.hash, &key).unwrap();
        // And a whole other key.
        let other: Vec<u8> = c.key().iter().map(|b| b.wrapping_add(1)).collect();
        let other = KnetCrypto::new(c.model, c.cipher, c.hash, &other).unwrap();
        for d in c.datagrams() {
            assert_eq!(
                wrong.decrypt(&d.payload),
                Err(CryptoError::BadHmac),
                "{}",
                d.frame
            );
            assert_eq!(
                other.decrypt(&d.payload),
                Err(CryptoError::BadHmac),
                "{}",
                d.frame
            );
        }
    }
}

/// The models cannot be told apart on the wire: each capture decrypts under the other model.
#[test]
fn the_other_model_reads_the_same_packets() {
    for c in &CAPTURES {
        let other = match c.model {
            totem_knet::crypto::CryptoModel::Nss => totem_knet::crypto::CryptoModel::Openssl,
            totem_knet::crypto::CryptoModel::Openssl => totem_knet::crypto::CryptoModel::Nss,
        };
        let crypto = KnetCrypto::new(other, c.cipher, c.hash, &c.key()).unwrap();
        for d in c.datagrams() {
            assert!(crypto.decrypt(&d.payload).is_ok(), "{} {}", c.name, d.frame);
        }
    }
}

/// Cipher and hash are found from the key and one packet (the first few of each capture).
#[test]
fn cipher_and_hash_are_detected_from_the_key() {
    for c in &CAPTURES {
        for d in c.datagrams().iter().take(20) {
            assert_eq!(
                KnetCrypto::detect(c.model, &c.key(), &d.payload),
                Some((c.cipher, c.hash)),
                "{} frame {}",
                c.name,
                d.frame
            );
        }
    }
}

/// A corrupted packet fails the HMAC whichever byte is hit (salt, ciphertext or HMAC).
#[test]
fn any_corrupted_byte_fails_the_hmac() {
    let c = &CAPTURES[0];
    let crypto = c.crypto();
    let d = &c.datagrams()[0];
    for at in 0..d.payload.len() {
        let mut bad = d.payload.clone();
        bad[at] ^= 0x40;
        assert_eq!(crypto.decrypt(&bad), Err(CryptoError::BadHmac), "byte {at}");
    }
    // Cut short: still an HMAC failure while something precedes the HMAC, then too short.
    let len = d.payload.len();
    assert_eq!(
        crypto.decrypt(&d.payload[..len - 1]),
        Err(CryptoError::BadHmac)
    );
    assert!(matches!(
        crypto.decrypt(&d.payload[..32]),
        Err(CryptoError::TooShort { len: 32, min: 33 })
    ));
}
