//! Golden vectors: the canonical encoding, ids and signatures of fixed inputs. If one of these
//! changes, the format changed: bump the version and update docs/encoding.md, which must carry
//! the same values. On a mismatch the failure message lists every current value, ready to copy.

use weft_core::encoding::{decode, encode};
use weft_core::model::*;
use weft_core::{ChainId, Fingerprint, Hash32, HashAlgo, ResourceId, SigningKey};
use weft_ledger::block::{BlockHeader, ConsensusData, SignedHeader};
use weft_ledger::{Signer, Transaction};

fn vector_transaction() -> Transaction {
    let key = SigningKey::from_seed(&[0x42; 32]);
    let issuer = ResourceId(Hash32([0x11; 32]));
    let payload = Payload::RecordOwnership(RecordOwnership {
        issuer,
        product_data: DigitalAsset {
            fingerprint: Fingerprint::of_bytes(HashAlgo::Sha256, b"abc"),
            public: false,
            doi: None,
            doi_no_redirect: None,
            file: File {
                id: "bracket".into(),
                version_ids: vec!["C".into()],
                descriptions: vec!["rev C".into()],
            },
            data_type: DataType::Geometry3d,
        },
    });
    Transaction::sign(
        ChainId::from_name("vectors").expect("name"),
        1_700_000_000_000,
        Signer::Resource(issuer),
        &key,
        payload,
    )
    .expect("valid")
}

fn vector_header(tx: &Transaction) -> SignedHeader {
    let ids = vec![tx.id()];
    let levels = weft_ledger::block::merkle_levels(std::slice::from_ref(tx), &ids);
    let producer = SigningKey::from_seed(&[0x07; 32]);
    SignedHeader::seal(
        BlockHeader {
            version: 1,
            chain_id: ChainId::from_name("vectors").expect("name"),
            height: 1,
            timestamp: 1_700_000_000_500,
            previous_digest: weft_core::BlockHash(Hash32([0x22; 32])),
            merkle_root: levels.root(),
            tx_count: 1,
            consensus: ConsensusData::default(),
            producer: producer.public_key(),
            state_root: None,
        },
        &producer,
    )
}

#[test]
fn golden_vectors() {
    let tx = vector_transaction();
    let header = vector_header(&tx);
    // The same block at header version 2, committing to the state root 0x33…33.
    let v2 = {
        let mut header = header.header.clone();
        header.version = weft_ledger::block::HEADER_VERSION;
        header.state_root = Some(Hash32([0x33; 32]));
        SignedHeader::seal(header, &SigningKey::from_seed(&[0x07; 32]))
    };
    let values = [
        (
            "chain id",
            ChainId::from_name("vectors").expect("name").to_hex(),
        ),
        (
            "payload",
            hex::encode(encode(tx.payload.as_ref().expect("payload"))),
        ),
        ("transaction header", hex::encode(encode(&tx.header))),
        ("transaction id", tx.id().to_hex()),
        ("transaction signature", tx.signature.to_hex()),
        ("block header", hex::encode(encode(&header.header))),
        ("block hash", header.header.hash().to_hex()),
        ("block header v2", hex::encode(encode(&v2.header))),
        ("block hash v2", v2.header.hash().to_hex()),
        ("merkle root", header.header.merkle_root.to_hex()),
        ("signer public key", tx.header.key.to_hex()),
        ("producer public key", header.header.producer.to_hex()),
        (
            "network peer payload",
            hex::encode(encode(&Payload::NetworkPeer(NetworkPeer {
                key: header.header.producer,
                admitted: true,
                name: "archive-1".into(),
            }))),
        ),
        (
            "validator change payload",
            hex::encode(encode(&Payload::SetValidators(SetValidators {
                validators: vec![header.header.producer],
                from_height: 1_000,
            }))),
        ),
        (
            "anchor payload",
            hex::encode(encode(&Payload::Anchor(weft_core::model::Anchor {
                note: "n\n".into(),
                old_size: 3,
                proof: vec![weft_core::Hash32([0x44; 32])],
            }))),
        ),
        (
            "anchor evidence payload",
            hex::encode(encode(&Payload::AnchorEvidence(
                weft_core::model::AnchorEvidence {
                    first: "a\n".into(),
                    second: "b\n".into(),
                },
            ))),
        ),
        (
            "timestamp payload",
            hex::encode(encode(&Payload::Timestamp(weft_core::model::Timestamp {
                note: "n\n".into(),
                nonce: 7,
                token: vec![0x30, 0x00],
            }))),
        ),
    ];
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/encoding.md"
    ))
    .expect("docs/encoding.md");
    let missing = values
        .iter()
        .filter(|(_, value)| !docs.contains(value.as_str()))
        .count();
    let listing: Vec<String> = values
        .iter()
        .map(|(name, value)| {
            let mark = if docs.contains(value.as_str()) {
                "  "
            } else {
                "✘ "
            };
            format!("{mark}{name}: {value}")
        })
        .collect();
    assert!(
        missing == 0,
        "docs/encoding.md lacks {missing} current value(s), marked ✘; all current values:\n{}",
        listing.join("\n")
    );
    // The encoding round-trips byte for byte.
    let decoded: Transaction = decode(&encode(&tx)).expect("decodes");
    assert_eq!(encode(&decoded), encode(&tx));
}
