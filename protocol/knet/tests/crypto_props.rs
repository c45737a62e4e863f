//! Bad input never panics the knet crypto: random datagrams of any length, under every
//! configuration, give an error or (never, in practice) a packet; round trips hold for
//! random packets, keys and salts.

use proptest::prelude::*;
use totem_knet::crypto::{
    looks_encrypted, CryptoCipher, CryptoError, CryptoHash, CryptoModel, KnetCrypto,
};

fn config() -> impl Strategy<Value = (CryptoModel, CryptoCipher, CryptoHash)> {
    (
        prop::sample::select(CryptoModel::ALL.to_vec()),
        prop::sample::select(CryptoCipher::ALL.to_vec()),
        prop::sample::select(CryptoHash::ALL.to_vec()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_datagrams_never_panic(
        (model, cipher, hash) in config(),
        key in prop::collection::vec(any::<u8>(), 0..300),
        datagram in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        let _ = looks_encrypted(&datagram);
        let _ = KnetCrypto::detect(model, &key, &datagram);
        if let Ok(c) = KnetCrypto::new(model, cipher, hash, &key) {
            match c.decrypt(&datagram) {
                // Random bytes carry a valid HMAC only by accident (2^-128 and less).
                Err(CryptoError::BadHmac | CryptoError::TooShort { .. }) => {}
                other => prop_assert!(false, "{c:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn round_trip_for_random_packets_keys_and_salts(
        (model, cipher, hash) in config(),
        key in prop::collection::vec(any::<u8>(), 128..=600),
        packet in prop::collection::vec(any::<u8>(), 1..3000),
        salt in any::<[u8; 16]>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let Ok(c) = KnetCrypto::new(model, cipher, hash, &key) else { return Ok(()); };
        let wire = c.encrypt(&packet, &salt).unwrap();
        prop_assert_eq!(wire.len(), c.encrypted_len(packet.len()));
        prop_assert_eq!(c.decrypt(&wire).unwrap(), packet);
        let mut bad = wire.clone();
        let at = flip.index(bad.len());
        bad[at] ^= 0x80;
        prop_assert_eq!(c.decrypt(&bad), Err(CryptoError::BadHmac));
    }
}
