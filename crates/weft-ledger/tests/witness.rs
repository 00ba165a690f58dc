//! The witness (C2SP tlog-witness, tlog-cosignature): every answer the spec asks for, the
//! cosignature checked by a verifier written here from the spec, state kept across a reopen,
//! and contradicting requests kept as evidence.

mod common;

use base64ct::{Base64, Encoding as _};
use common::*;
use sha2::{Digest as _, Sha256};
use weft_core::{Hash32, SigningKey};
use weft_ledger::checkpoint::{self, Checkpoint, Note};
use weft_ledger::store::MemoryStore;
use weft_ledger::witness::{SIZE_CONTENT_TYPE, Witness, Witnessed};

fn chain() -> (World<MemoryStore>, Vec<Hash32>) {
    chain_of_claims()
}

/// A checkpoint of `size` with `root`, signed by `key` under the chain's origin.
fn note(w: &World<MemoryStore>, size: u64, root: Hash32, key: &SigningKey) -> Note {
    let origin = checkpoint::origin("test", &w.chain_id);
    let mut note = Note {
        text: Checkpoint {
            origin: origin.clone(),
            size,
            root,
        }
        .text(),
        signatures: Vec::new(),
    };
    note.sign(&origin, key).expect("sign");
    note
}

fn request(old: u64, proof: &[Hash32], note: &Note) -> Vec<u8> {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&Base64::encode_string(&hash.0));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(&note.to_text());
    body.into_bytes()
}

/// A cosignature line checked as the spec says, with nothing of weft's witness code.
fn check_cosignature(name: &str, key: &weft_core::PublicKey, text: &str, line: &str) -> u64 {
    let rest = line
        .strip_suffix('\n')
        .and_then(|line| line.strip_prefix("— "))
        .expect("a signature line");
    let (line_name, encoded) = rest.rsplit_once(' ').expect("name and signature");
    assert_eq!(line_name, name);
    let bytes = Base64::decode_vec(encoded).expect("base64");
    assert_eq!(
        bytes.len(),
        4 + 8 + 64,
        "key ID, timestamp, Ed25519 signature"
    );
    let mut id = Sha256::new();
    id.update(name.as_bytes());
    id.update(b"\n");
    id.update([0x04]);
    id.update(key.0);
    assert_eq!(
        bytes[..4],
        id.finalize()[..4],
        "the key ID of an Ed25519 cosigner"
    );
    let timestamp = u64::from_be_bytes(bytes[4..12].try_into().expect("8"));
    let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
    key.verify_note(
        &message,
        &weft_core::Signature(bytes[12..].try_into().expect("64")),
    )
    .expect("the cosignature verifies over the spec's message");
    timestamp
}

const NOW: u64 = 1_767_225_600;

#[test]
fn a_witness_cosigns_what_extends_what_it_cosigned_and_nothing_else() {
    let (w, leaves) = chain();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("witness.redb");
    let key = SigningKey::from_seed(&[42; 32]);
    let name = "witness.example/w1";
    let root = w.ledger.trust_root().expect("root");
    let open = || {
        Witness::open(
            &path,
            name,
            SigningKey::from_seed(&[42; 32]),
            vec![Witnessed::from_root(root.clone())],
        )
        .expect("open")
    };
    let witness = open();
    let origin = checkpoint::origin("test", &w.chain_id);
    let at = |size: usize| weft_core::merkle::root(&leaves[..size]);
    let proof = |old: usize, new: usize| {
        weft_core::merkle::consistency_proof(&leaves[..new], old).expect("a proof")
    };

    // The first checkpoint: old size 0, no proof.
    let first = note(&w, 5, at(5), &w.producer);
    let answer = witness.add_checkpoint(&request(0, &[], &first), NOW);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        check_cosignature(name, &key.public_key(), &first.text, &answer.body),
        NOW
    );
    // weft's own reader agrees.
    weft_ledger::witness::verify_cosignature(name, &key.public_key(), &first.text, &answer.body)
        .expect("verifies");
    assert_eq!(witness.latest(&origin).expect("read"), Some((5, at(5))));

    // An extension, with the consistency proof from the size it holds.
    let second = note(&w, 12, at(12), &w.producer);
    let answer = witness.add_checkpoint(&request(5, &proof(5, 12), &second), NOW + 1);
    assert_eq!(answer.status, 200, "{}", answer.body);
    check_cosignature(name, &key.public_key(), &second.text, &answer.body);
    // The same checkpoint again: cosigned again (same size, same root, empty proof).
    let answer = witness.add_checkpoint(&request(12, &[], &second), NOW + 2);
    assert_eq!(answer.status, 200, "{}", answer.body);

    // A client behind: 409 with the size held.
    let third = note(&w, 15, at(15), &w.producer);
    let answer = witness.add_checkpoint(&request(5, &proof(5, 15), &third), NOW);
    assert_eq!(answer.status, 409);
    assert_eq!(answer.content_type, Some(SIZE_CONTENT_TYPE));
    assert_eq!(answer.body, "12\n");
    // A rollback: an old size above the checkpoint's.
    let smaller = note(&w, 8, at(8), &w.producer);
    assert_eq!(
        witness
            .add_checkpoint(&request(12, &[], &smaller), NOW)
            .status,
        400
    );

    // A rewritten history, signed by the chain's own key: the proof from 12 does not reach its
    // root (422), and the same size with another root (409); both kept as evidence.
    let rewritten = note(&w, 15, Hash32([9; 32]), &w.producer);
    let answer = witness.add_checkpoint(&request(12, &proof(12, 15), &rewritten), NOW + 3);
    assert_eq!(answer.status, 422, "{}", answer.body);
    let forked = note(&w, 12, Hash32([8; 32]), &w.producer);
    let answer = witness.add_checkpoint(&request(12, &[], &forked), NOW + 4);
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(answer.body.contains("another root"), "{}", answer.body);
    let evidence = witness.evidence(&origin).expect("read");
    assert_eq!(evidence.len(), 2);
    assert!(evidence[0].1.contains(&rewritten.text), "{evidence:?}");
    assert_eq!(witness.latest(&origin).expect("read"), Some((12, at(12))));

    // Reopened (a restarted witness): it holds 12 still, and goes on from there.
    drop(witness);
    let witness = open();
    let answer = witness.add_checkpoint(&request(0, &[], &third), NOW);
    assert_eq!((answer.status, answer.body.as_str()), (409, "12\n"));
    let answer = witness.add_checkpoint(&request(12, &proof(12, 15), &third), NOW + 5);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(witness.evidence(&origin).expect("read").len(), 2);
    // Evidence kept after the restart, in the same second as earlier evidence: nothing
    // overwritten.
    let split = note(&w, 15, Hash32([7; 32]), &w.producer);
    assert_eq!(
        witness
            .add_checkpoint(&request(15, &[], &split), NOW + 3)
            .status,
        409
    );
    let evidence = witness.evidence(&origin).expect("read");
    assert_eq!(evidence.len(), 3, "{evidence:?}");
    assert!(evidence.iter().any(|(_, body)| body.contains(&split.text)));
    assert!(
        evidence
            .iter()
            .any(|(_, body)| body.contains(&rewritten.text))
    );
}

#[test]
fn a_witness_refuses_unknown_chains_untrusted_signatures_and_malformed_requests() {
    let (w, leaves) = chain();
    let dir = tempfile::tempdir().expect("tempdir");
    let witness = Witness::open(
        &dir.path().join("witness.redb"),
        "witness.example/w1",
        SigningKey::from_seed(&[42; 32]),
        vec![Witnessed::from_root(w.ledger.trust_root().expect("root"))],
    )
    .expect("open");
    let root = weft_core::merkle::root(&leaves[..5]);
    let good = note(&w, 5, root, &w.producer);
    // Another chain's origin: 404.
    let mut elsewhere = Note {
        text: Checkpoint {
            origin: "weft/elsewhere/00".into(),
            size: 5,
            root,
        }
        .text(),
        signatures: Vec::new(),
    };
    elsewhere
        .sign("weft/elsewhere/00", &w.producer)
        .expect("sign");
    assert_eq!(
        witness
            .add_checkpoint(&request(0, &[], &elsewhere), NOW)
            .status,
        404
    );
    // The chain's origin, signed by a key that is not its producer's: 403.
    let stranger = note(&w, 5, root, &SigningKey::from_seed(&[66; 32]));
    let answer = witness.add_checkpoint(&request(0, &[], &stranger), NOW);
    assert_eq!(answer.status, 403, "{}", answer.body);
    // Malformed: 400, each saying what.
    let text = |body: &str| {
        let answer = witness.add_checkpoint(body.as_bytes(), NOW);
        assert_eq!(answer.status, 400, "{body:?}: {}", answer.body);
        answer.body
    };
    let note_text = good.to_text();
    // Without the empty line, the checkpoint's lines are read as proof lines.
    assert!(text(&format!("old 0\n{note_text}")).contains("proof line"));
    assert!(text("old 0\n").contains("empty line"));
    assert!(text(&format!("old 05\n\n{note_text}")).contains("not a decimal"));
    assert!(text(&format!("new 0\n\n{note_text}")).contains("\"old SIZE\""));
    assert!(text(&format!("old 0\nnot-base64!\n\n{note_text}")).contains("32-byte"));
    let too_long: String = (0..64)
        .map(|_| format!("{}\n", Base64::encode_string(&[1u8; 32])))
        .collect();
    assert!(text(&format!("old 3\n{too_long}\n{note_text}")).contains("at most 63"));
    let hash = Base64::encode_string(&[1u8; 32]);
    assert!(text(&format!("old 0\n{hash}\n\n{note_text}")).contains("must be empty"));
    assert!(text("old 0\n\nnot a note").len() > 1);
    let huge = vec![b'a'; weft_ledger::witness::MAX_REQUEST_BYTES + 1];
    assert_eq!(witness.add_checkpoint(&huge, NOW).status, 400);
    // Nothing of that changed what it holds.
    let origin = checkpoint::origin("test", &w.chain_id);
    assert_eq!(witness.latest(&origin).expect("read"), None);
    assert!(witness.evidence(&origin).expect("read").is_empty());
}

/// The test vector of docs/anchoring.md: a cosignature of the spec's example checkpoint by the
/// key of seed 42…42 named `witness.example/w1`, at the spec's example time.
#[test]
fn the_documented_cosignature_vector() {
    let key = SigningKey::from_seed(&[42; 32]);
    let name = "witness.example/w1";
    let text =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let message = format!("cosignature/v1\ntime 1679315147\n{text}");
    let signature = key.sign_note(&message).expect("a note text");
    let mut id = Sha256::new();
    id.update(name.as_bytes());
    id.update(b"\n");
    id.update([0x04]);
    id.update(key.public_key().0);
    let mut bytes = id.finalize()[..4].to_vec();
    bytes.extend_from_slice(&1_679_315_147u64.to_be_bytes());
    bytes.extend_from_slice(&signature.0);
    let line = format!("— {name} {}\n", Base64::encode_string(&bytes));
    assert_eq!(
        weft_ledger::witness::verifier_key(name, &key.public_key()),
        "witness.example/w1+18041f2a+BBl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h"
    );
    assert_eq!(line, VECTOR_LINE, "docs/anchoring.md");
    assert_eq!(
        weft_ledger::witness::verify_cosignature(name, &key.public_key(), text, &line)
            .expect("verifies"),
        1_679_315_147
    );
}

const VECTOR_LINE: &str = "— witness.example/w1 GAQfKgAAAABkGFDLO3QHuVkoSLXBTFXEZirSXMcqft7KH9IJ/9dNoJmEuYKyHYdwR8Hl82lSBc3HRuL0pix1dLkwMzmSzwYLULbTBA==\n";

#[test]
fn a_witnessed_checkpoint_counts_only_with_the_policys_cosignatures() {
    use weft_ledger::cosigned::{Policy, WitnessKey, verify};
    let (w, leaves) = chain();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = w.ledger.trust_root().expect("root");
    let schedule = weft_ledger::state::Schedule {
        genesis: root.validators.clone(),
        changes: Vec::new(),
    };
    let witnesses: Vec<(Witness, WitnessKey)> = (1..=3u8)
        .map(|n| {
            let name = format!("witness.example/w{n}");
            let key = SigningKey::from_seed(&[n; 32]);
            let vkey = weft_ledger::witness::verifier_key(&name, &key.public_key());
            let witness = Witness::open(
                &dir.path().join(format!("w{n}.redb")),
                &name,
                key,
                vec![Witnessed::from_root(root.clone())],
            )
            .expect("open");
            (
                witness,
                WitnessKey::parse(&vkey).expect("its own verifier key"),
            )
        })
        .collect();
    let size = leaves.len();
    let mut note = note(
        &w,
        size as u64,
        weft_core::merkle::root(&leaves),
        &w.producer,
    );
    let policy = |k| {
        Policy::new(witnesses.iter().map(|(_, key)| key.clone()).collect(), k).expect("a policy")
    };
    // Cosigned by two of the three.
    for (witness, _) in &witnesses[..2] {
        let answer = witness.add_checkpoint(&request(0, &[], &note), NOW);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let with = Note::parse(format!("{}\n{}", note.text, answer.body).as_bytes()).expect("line");
        note.signatures.extend(with.signatures);
    }
    let verified = verify(&note, &root, &schedule, &policy(2)).expect("2 of 3");
    assert_eq!(verified.cosigners.len(), 2);
    assert_eq!(verified.cosigners[0], ("witness.example/w1".into(), NOW));
    let error = verify(&note, &root, &schedule, &policy(3)).expect_err("3 of 3");
    assert!(
        error.to_string().contains("2 of the 3 witnesses"),
        "{error}"
    );
    // The validators' quorum is still needed: a note with cosignatures only is refused.
    let mut unsigned = note.clone();
    unsigned
        .signatures
        .retain(|line| line.name.starts_with("witness."));
    assert!(verify(&unsigned, &root, &schedule, &policy(1)).is_err());
    // A cosignature line under a trusted witness's name and key ID that does not verify
    // refuses the note; a time changed after signing does too.
    let mut forged = note.clone();
    forged.signatures[1].signature[20] ^= 1;
    let error = verify(&forged, &root, &schedule, &policy(1)).expect_err("forged");
    assert!(error.to_string().contains("does not verify"), "{error}");
    let mut retimed = note.clone();
    retimed.signatures[1].signature[7] ^= 1;
    assert!(verify(&retimed, &root, &schedule, &policy(1)).is_err());

    // Verifier keys: read back whatever their base64 holds ('+' too), refused when the key ID
    // is not the name's and key's, when the type is not a cosignature key, and when a policy
    // names a witness twice or asks for more than it names.
    for seed in 0..64u8 {
        let key = SigningKey::from_seed(&[seed; 32]).public_key();
        let vkey = weft_ledger::witness::verifier_key("w.example/x", &key);
        assert_eq!(WitnessKey::parse(&vkey).expect("parses").key, key, "{vkey}");
    }
    let vkey = witnesses[0].1.verifier_key();
    assert!(WitnessKey::parse(&vkey.replacen("w1+", "w9+", 1)).is_err());
    let note_key = checkpoint::verifier_key("witness.example/w1", &witnesses[0].1.key);
    assert!(WitnessKey::parse(&note_key).is_err(), "a type 0x01 key");
    assert!(Policy::new(vec![witnesses[0].1.clone(), witnesses[0].1.clone()], 1).is_err());
    assert!(Policy::new(vec![witnesses[0].1.clone()], 2).is_err());
    assert!(Policy::new(vec![witnesses[0].1.clone()], 0).is_err());
}

#[test]
fn requests_answered_together_are_checked_one_after_the_other() {
    let (w, leaves) = chain();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = w.ledger.trust_root().expect("root");
    let witness = Witness::open(
        &dir.path().join("witness.redb"),
        "witness.example/w1",
        SigningKey::from_seed(&[42; 32]),
        vec![Witnessed::from_root(root)],
    )
    .expect("open");
    let at = |size: usize| weft_core::merkle::root(&leaves[..size]);
    let proof = |old: usize, new: usize| {
        weft_core::merkle::consistency_proof(&leaves[..new], old).expect("a proof")
    };
    let first = request(0, &[], &note(&w, 5, at(5), &w.producer));
    let second = request(5, &proof(5, 9), &note(&w, 9, at(9), &w.producer));
    // Against the state before it: still at 0, so 409.
    let stale = request(0, &[], &note(&w, 7, at(7), &w.producer));
    // Extends the second, in the same commit.
    let third = request(9, &proof(9, 12), &note(&w, 12, at(12), &w.producer));
    let answers = witness.add_checkpoints(&[&first, &second, &stale, &third], NOW);
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, [200, 200, 409, 200], "{answers:?}");
    assert_eq!(answers[2].body, "9\n");
    let origin = checkpoint::origin("test", &w.chain_id);
    assert_eq!(witness.latest(&origin).expect("read"), Some((12, at(12))));
    // A rewrite in a group is kept as evidence, the others answered all the same.
    let forked = request(12, &[], &note(&w, 12, at(11), &w.producer));
    let fourth = request(12, &proof(12, 15), &note(&w, 15, at(15), &w.producer));
    let answers = witness.add_checkpoints(&[&forked, &fourth], NOW + 1);
    assert_eq!((answers[0].status, answers[1].status), (409, 200));
    assert_eq!(witness.evidence(&origin).expect("read").len(), 1);
}
