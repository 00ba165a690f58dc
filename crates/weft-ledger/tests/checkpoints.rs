//! Checkpoints (docs/checkpoints.md): weft's signed checkpoints, consistency proofs and
//! tlog-proofs are checked by an independent implementation of the C2SP formats and of RFC 6962
//! (`signed_note`, `tlog_tiles`: the Go checksum database's algorithms), and refused by both
//! when altered. The golden vectors in docs/checkpoints.md are the ones built here.

mod common;

use base64ct::{Base64, Encoding as _};
use common::*;
use weft_core::{Hash32, SigningKey};
use weft_ledger::checkpoint::{self, Checkpoint, Note, TlogProof, leaf, verifier_key};
use weft_ledger::proof::{self, SealsOnly};
use weft_ledger::state::Schedule;
use weft_ledger::store::{MemoryStore, Store};

fn chain() -> (World<MemoryStore>, Vec<Hash32>) {
    chain_of_claims()
}

fn signed(w: &World<MemoryStore>, leaves: &[Hash32], size: usize) -> Note {
    let origin = checkpoint::origin("test", &w.chain_id);
    let body = Checkpoint {
        origin: origin.clone(),
        size: size as u64,
        root: weft_core::merkle::root(&leaves[..size]),
    };
    let mut note = Note {
        text: body.text(),
        signatures: Vec::new(),
    };
    note.sign(&origin, &w.producer).expect("sign");
    note
}

fn independent_verifiers(w: &World<MemoryStore>) -> signed_note::VerifierList {
    let origin = checkpoint::origin("test", &w.chain_id);
    let key = verifier_key(&origin, &w.producer.public_key());
    signed_note::VerifierList::new(vec![Box::new(
        signed_note::StandardVerifier::new(&key).expect("a verifier key"),
    )])
}

fn hashes(proof: &[Hash32]) -> Vec<tlog_tiles::Hash> {
    proof.iter().map(|hash| tlog_tiles::Hash(hash.0)).collect()
}

#[test]
fn an_independent_implementation_verifies_checkpoints_and_proofs() {
    let (w, leaves) = chain();
    assert_eq!(leaves.len(), 20);
    let root = w.ledger.trust_root().expect("root");
    let schedule = Schedule {
        genesis: root.validators.clone(),
        changes: Vec::new(),
    };
    let verifiers = independent_verifiers(&w);
    for (old, new) in [(1, 20), (7, 20), (8, 20), (13, 19), (20, 20)] {
        let (old_note, new_note) = (signed(&w, &leaves, old), signed(&w, &leaves, new));
        for note in [&old_note, &new_note] {
            let bytes = note.to_text().into_bytes();
            // weft's own check, and the independent one: note signature, then checkpoint body.
            checkpoint::verify(&Note::parse(&bytes).expect("parses"), &root, &schedule)
                .expect("weft verifies");
            let parsed = signed_note::Note::from_bytes(&bytes).expect("a C2SP note");
            let (verified, _) = parsed.verify(&verifiers).expect("the producer's signature");
            assert_eq!(verified.len(), 1);
            let body = tlog_tiles::Checkpoint::from_bytes(parsed.text()).expect("a checkpoint");
            assert_eq!(body.origin(), checkpoint::origin("test", &w.chain_id));
        }
        let old_root = weft_core::merkle::root(&leaves[..old]);
        let new_root = weft_core::merkle::root(&leaves[..new]);
        let proof = weft_core::merkle::consistency_proof(&leaves[..new], old).expect("sizes");
        tlog_tiles::check_tree(
            &hashes(&proof),
            new as u64,
            tlog_tiles::Hash(new_root.0),
            old as u64,
            tlog_tiles::Hash(old_root.0),
        )
        .expect("the independent consistency check");
        // Every block's inclusion in the new tree.
        for index in 0..new {
            let path = weft_core::merkle::inclusion_proof(&leaves[..new], index).expect("index");
            tlog_tiles::check_record(
                &hashes(&path),
                new as u64,
                tlog_tiles::Hash(new_root.0),
                index as u64,
                tlog_tiles::Hash(leaves[index].0),
            )
            .expect("the independent inclusion check");
        }
    }

    // Altered: a size, a root, a signature. Both implementations refuse.
    let good = signed(&w, &leaves, 20).to_text();
    let altered = [
        good.replacen("\n20\n", "\n21\n", 1),
        {
            let root_line = Base64::encode_string(&weft_core::merkle::root(&leaves).0);
            let other = Base64::encode_string(&weft_core::merkle::root(&leaves[..19]).0);
            good.replacen(&root_line, &other, 1)
        },
        {
            let (text, signature) = good.rsplit_once(' ').expect("a signature line");
            let mut bytes = Base64::decode_vec(signature.trim()).expect("base64");
            bytes[10] ^= 1;
            format!("{text} {}\n", Base64::encode_string(&bytes))
        },
    ];
    for bad in &altered {
        let refused = Note::parse(bad.as_bytes())
            .and_then(|note| checkpoint::verify(&note, &root, &schedule));
        assert!(refused.is_err(), "weft accepted {bad}");
        let independent = signed_note::Note::from_bytes(bad.as_bytes())
            .ok()
            .and_then(|note| note.verify(&verifiers).ok());
        assert!(
            independent.is_none(),
            "the independent verifier accepted {bad}"
        );
    }
    // A consistency proof from a rewritten history: block 5 replaced.
    let mut rewritten = leaves.clone();
    rewritten[5] = leaf(&weft_core::BlockHash(Hash32([5; 32])));
    let proof = weft_core::merkle::consistency_proof(&rewritten, 7).expect("sizes");
    assert!(!weft_core::merkle::verify_consistency(
        7,
        20,
        &weft_core::merkle::root(&leaves[..7]),
        &weft_core::merkle::root(&rewritten),
        &proof
    ));
}

#[test]
fn tlog_proofs_take_a_transaction_to_a_signed_checkpoint() {
    let (w, leaves) = chain();
    let root = w.ledger.trust_root().expect("root");
    let id = w
        .ledger
        .store()
        .tx_at(weft_ledger::state::Position {
            height: 9,
            index: 0,
        })
        .expect("read")
        .expect("a transaction")
        .id();
    let inclusion = proof::build(w.ledger.store(), &id).expect("proof");
    let tlog = TlogProof {
        extra: Some(serde_json::to_vec(&inclusion).expect("json")),
        index: 9,
        path: weft_core::merkle::inclusion_proof(&leaves, 9).expect("index"),
        note: signed(&w, &leaves, 20),
    };
    let text = tlog.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
    let parsed = TlogProof::parse(text.as_bytes()).expect("parses");
    assert_eq!(parsed, tlog);
    let verified = checkpoint::verify_tlog_proof(&parsed, &root, &SealsOnly).expect("valid");
    assert_eq!(verified.inclusion.tx_id, id);
    assert_eq!(verified.checkpoint.checkpoint.size, 20);

    // Another index, a shortened path, a checkpoint the block is not in: refused.
    let mut other_index = parsed.clone();
    other_index.index = 10;
    let mut short = parsed.clone();
    short.path.pop();
    let mut small = parsed.clone();
    small.note = signed(&w, &leaves, 9);
    let mut other_key = parsed.clone();
    other_key.note.signatures.clear();
    other_key
        .note
        .sign(
            &checkpoint::origin("test", &w.chain_id),
            &SigningKey::from_seed(&[66; 32]),
        )
        .expect("sign");
    for (what, bad) in [
        ("index", other_index),
        ("path", short),
        ("checkpoint", small),
        ("signer", other_key),
    ] {
        assert!(
            checkpoint::verify_tlog_proof(&bad, &root, &SealsOnly).is_err(),
            "{what}"
        );
    }
    for garbage in [
        &b"c2sp.org/tlog-proof@v1\nindex 01\n\nx\n"[..],
        b"not a proof",
        b"c2sp.org/tlog-proof@v1\nindex 3\nnot base64\n\nweft/x\n1\nAAAA\n\n- x y\n",
    ] {
        assert!(TlogProof::parse(garbage).is_err());
    }
}

/// The vectors of docs/checkpoints.md: the checkpoint of the 20 blocks of `chain()`, and the
/// consistency proof from its first 7.
#[test]
fn golden_vectors_match_the_documentation() {
    let (w, leaves) = chain();
    let note = signed(&w, &leaves, 20).to_text();
    let old = signed(&w, &leaves, 7).to_text();
    let proof: Vec<String> = weft_core::merkle::consistency_proof(&leaves, 7)
        .expect("sizes")
        .iter()
        .map(|hash| Base64::encode_string(&hash.0))
        .collect();
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/checkpoints.md"),
    )
    .expect("docs/checkpoints.md");
    let current = format!(
        "checkpoint of 7 blocks:\n{old}\ncheckpoint of 20 blocks:\n{note}\nconsistency 7 → 20:\n{}\n",
        proof.join("\n")
    );
    assert!(
        docs.contains(&current),
        "docs/checkpoints.md does not carry the current vectors; they are:\n\n{current}"
    );
}

/// Validator changes are applied in the order of the blocks that scheduled them, each replacing
/// those at or after its height, as the ledger does: a change the chain withdrew cannot be
/// slipped back in by listing it after the one that replaced it.
#[test]
fn a_withdrawn_validator_change_cannot_be_slipped_back_in() {
    use weft_core::model::{Payload, SetValidators};
    let mut w = World::new();
    let root = w.ledger.trust_root().expect("root");
    let authority = SigningKey::from_text(&w.authority.to_text()).expect("key");
    let producer = w.producer.public_key();
    let intruder = SigningKey::from_seed(&[77; 32]).public_key();
    let mut set = |validators: Vec<weft_core::PublicKey>, time: u64| {
        w.submit_as(
            weft_ledger::Signer::Authority,
            &authority,
            time,
            Payload::SetValidators(SetValidators {
                validators,
                from_height: 100,
            }),
        )
        .expect("scheduled")
    };
    let withdrawn = set(vec![intruder], T0 + 10);
    let replacing = set(vec![producer], T0 + 20);
    let change =
        |id: &weft_core::TxId, validators: &[weft_core::PublicKey]| proof::ValidatorChangeProof {
            from_height: 100,
            validators: validators
                .iter()
                .map(weft_core::PublicKey::to_hex)
                .collect(),
            proof: proof::build(w.ledger.store(), id).expect("proof"),
        };
    let (a, b) = (
        change(&withdrawn, &[intruder]),
        change(&replacing, &[producer]),
    );
    // In ledger order, the later change replaces the withdrawn one.
    let schedule = proof::checked_changes(&[a.clone(), b.clone()], &root, &SealsOnly)
        .expect("in ledger order");
    assert_eq!(schedule.producers_at(100), &[producer]);
    // Listed the other way round, to make the withdrawn one the last word: refused.
    let error = proof::checked_changes(&[b, a], &root, &SealsOnly).expect_err("out of order");
    assert!(error.to_string().contains("order"), "{error}");
}

/// A checkpoint counts each validator once: a schedule that names a key twice does not let
/// one signature count double.
#[test]
fn a_repeated_validator_key_counts_once_toward_a_quorum() {
    let (w, leaves) = chain();
    let root = w.ledger.trust_root().expect("root");
    let other = SigningKey::from_seed(&[88; 32]).public_key();
    let schedule = Schedule {
        genesis: vec![w.producer.public_key(), w.producer.public_key(), other],
        changes: Vec::new(),
    };
    // Two distinct validators: a quorum is both, and only the producer signed.
    let error = checkpoint::verify(&signed(&w, &leaves, 20), &root, &schedule)
        .expect_err("one of two distinct validators");
    assert!(error.to_string().contains("1 of the 2"), "{error}");
}
