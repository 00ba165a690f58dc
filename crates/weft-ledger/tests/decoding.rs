//! Untrusted bytes: decoders never panic, refuse truncations, trailing bytes and oversized input
//! with a message that says what was wrong.

use proptest::prelude::*;
use weft_core::CoreError;
use weft_core::encoding::{Canonical, decode, encode};
use weft_core::model::*;
use weft_core::{ChainId, Hash32, ResourceId, SigningKey};
use weft_ledger::block::{Block, SignedHeader};
use weft_ledger::{Signer, Transaction};

fn sample(seed: u8, body: Vec<u8>) -> Transaction {
    let key = SigningKey::from_seed(&[seed; 32]);
    let issuer = ResourceId(Hash32([seed; 32]));
    let payload = Payload::Record(Record {
        issuer,
        content_type: "text/csv".into(),
        product_code: Some(format!("SN-{seed}")),
        body,
    });
    Transaction::sign(
        ChainId::from_name("decode").expect("name"),
        5,
        Signer::Resource(issuer),
        &key,
        payload,
    )
    .expect("valid")
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode::<Transaction>(&bytes);
        let _ = decode::<Block>(&bytes);
        let _ = decode::<SignedHeader>(&bytes);
        let _ = decode::<Payload>(&bytes);
    }

    #[test]
    fn transactions_round_trip(seed in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        let tx = sample(seed, body);
        let bytes = encode(&tx);
        let decoded: Transaction = decode(&bytes).expect("round trip");
        prop_assert_eq!(&decoded, &tx);
        prop_assert_eq!(encode(&decoded), bytes);
        let stripped = tx.stripped();
        prop_assert_eq!(decode::<Transaction>(&encode(&stripped)).expect("stripped round trip"), stripped);
    }

    #[test]
    fn every_truncation_and_any_flip_is_caught(seed in any::<u8>(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        let tx = sample(seed, vec![seed; 40]);
        let bytes = encode(&tx);
        let at = cut.index(bytes.len());
        prop_assert!(decode::<Transaction>(&bytes[..at]).is_err());
        // A flipped byte either fails to decode or yields a transaction whose signature or id differs.
        let mut flipped = bytes.clone();
        flipped[flip.index(bytes.len())] ^= 0x01;
        if let Ok(decoded) = decode::<Transaction>(&flipped) {
            prop_assert!(decoded.verify_signature().is_err() || decoded.id() != tx.id() || decoded.signature != tx.signature);
        }
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let huge = vec![0u8; Transaction::MAX_ENCODED + 1];
    match decode::<Transaction>(&huge) {
        Err(CoreError::TooLarge { len, max, .. }) => {
            assert_eq!((len, max), (huge.len(), Transaction::MAX_ENCODED))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // A length prefix claiming 4 GiB in a tiny input fails cleanly (no allocation of 4 GiB).
    let mut lying = encode(&sample(1, vec![]));
    let length_at = lying.len() - 4;
    lying[length_at..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode::<Transaction>(&lying).is_err());
}

#[test]
fn trailing_bytes_and_bad_versions_are_refused_with_reasons() {
    let mut bytes = encode(&sample(3, vec![1, 2, 3]));
    bytes.push(0);
    let error = decode::<Transaction>(&bytes).expect_err("trailing byte");
    assert!(
        error.to_string().contains("not a valid canonical encoding"),
        "{error}"
    );
    let mut tx = sample(3, vec![]);
    tx.header.version = 9;
    let error = decode::<Transaction>(&encode(&tx)).expect_err("unknown version");
    assert!(
        error
            .to_string()
            .contains("format version 9 is not supported"),
        "{error}"
    );
    let mut tx = sample(3, vec![]);
    tx.header.kind = PayloadKind::Genesis;
    let error = decode::<Transaction>(&encode(&tx)).expect_err("kind mismatch");
    assert!(error.to_string().contains("header says Genesis"), "{error}");
}

#[test]
fn invalid_bool_and_enum_tags_are_refused() {
    let payload = Payload::SendProductData(SendProductData {
        from: ResourceId(Hash32([1; 32])),
        to: ResourceId(Hash32([2; 32])),
        forward: true,
        product_data: DigitalAsset {
            fingerprint: weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, b"x"),
            public: false,
            doi: None,
            doi_no_redirect: None,
            file: File {
                id: "f".into(),
                version_ids: vec!["1".into()],
                descriptions: vec![],
            },
            data_type: DataType::ControlData,
        },
    });
    let bytes = encode(&payload);
    let mut bad_bool = bytes.clone();
    bad_bool[65] = 2; // `forward`
    assert!(decode::<Payload>(&bad_bool).is_err());
    let mut bad_tag = bytes;
    bad_tag[0] = 200;
    assert!(decode::<Payload>(&bad_tag).is_err());
}
