//! Anchoring another company's chain (docs/anchoring.md): registered by an authority with its
//! block 0, its checkpoints anchored only when a quorum of its validators signed them and each
//! extends the one before; a rewritten history refused, and two contradicting checkpoints
//! recorded as evidence. On a redb store, reopened and audited.

mod common;

use common::*;
use weft_core::model::{Anchor, AnchorEvidence, Payload, RegisterChain};
use weft_core::{Hash32, SigningKey};
use weft_ledger::checkpoint::{self, Checkpoint, Note};
use weft_ledger::state::StateView as _;
use weft_ledger::store::{MemoryStore, RedbStore, Store as _};
use weft_ledger::{Ledger, RuleError, Signer};

/// A chain and the leaves of its log.
type History = (World<MemoryStore>, Vec<Hash32>);

/// Chain "test" and its log's leaves; another history of the same chain (the same block 0 and
/// keys, other claims): what a company that rewrites its chain would sign.
fn two_histories() -> (History, History) {
    let honest = chain_of_claims();
    let mut rewritten = World::new();
    let designer = rewritten.org("designer");
    for i in 0..25u64 {
        rewritten
            .submit(
                designer,
                T0 + 10 + i,
                claim(designer, format!("rewritten {i}").as_bytes()),
            )
            .expect("claim");
    }
    let leaves = leaves_of(&rewritten);
    (honest, (rewritten, leaves))
}

/// The checkpoint of the first `size` leaves, signed by `key` under chain "test"'s origin.
fn note(w: &World<MemoryStore>, leaves: &[Hash32], size: usize, key: &SigningKey) -> String {
    let origin = checkpoint::origin("test", &w.chain_id);
    let mut note = Note {
        text: Checkpoint {
            origin: origin.clone(),
            size: size as u64,
            root: weft_core::merkle::root(&leaves[..size]),
        }
        .text(),
        signatures: Vec::new(),
    };
    note.sign(&origin, key).expect("sign");
    note.to_text()
}

fn anchor(note: String, old_size: u64, proof: Vec<Hash32>) -> Payload {
    Payload::Anchor(Anchor {
        note,
        old_size,
        proof,
    })
}

fn refused_with(result: Result<weft_core::TxId, RuleError>, says: &str) {
    match result {
        Err(error) => assert!(error.to_string().contains(says), "{error}"),
        Ok(_) => panic!("accepted; expected a refusal saying {says:?}"),
    }
}

#[test]
fn a_chain_anchors_another_only_as_it_grows_and_records_a_rewrite_as_evidence() {
    let ((a, leaves), (rewritten, rewritten_leaves)) = two_histories();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let mut b = World::named("other", RedbStore::open(&path).expect("store"));
    let member = b.org("member");
    let authority = SigningKey::from_seed(&[1; 32]);
    let as_authority =
        |b: &mut World<RedbStore>, payload| b.submit_as(Signer::Authority, &authority, T0, payload);
    let a_genesis =
        weft_core::encoding::encode(&a.ledger.store().block(0).expect("read").expect("block 0"));
    let proof = |leaves: &[Hash32], old: usize, new: usize| {
        weft_core::merkle::consistency_proof(&leaves[..new], old).expect("a proof")
    };

    // Nothing is anchored of a chain that is not registered.
    refused_with(
        b.submit(
            member,
            T0,
            anchor(note(&a, &leaves, 5, &a.producer), 0, vec![]),
        ),
        "is not registered here",
    );
    // Only an authority registers, with a real block 0, and never its own chain.
    refused_with(
        b.submit(
            member,
            T0,
            Payload::RegisterChain(RegisterChain {
                genesis: a_genesis.clone(),
            }),
        ),
        "only a network authority",
    );
    refused_with(
        as_authority(
            &mut b,
            Payload::RegisterChain(RegisterChain {
                genesis: vec![1, 2, 3],
            }),
        ),
        "genesis is not a block",
    );
    let own = weft_core::encoding::encode(&b.ledger.store().block(0).expect("read").expect("0"));
    refused_with(
        as_authority(
            &mut b,
            Payload::RegisterChain(RegisterChain { genesis: own }),
        ),
        "does not anchor itself",
    );
    as_authority(
        &mut b,
        Payload::RegisterChain(RegisterChain {
            genesis: a_genesis.clone(),
        }),
    )
    .expect("registers");
    // Again (another transaction): nothing changes.
    b.submit_as(
        Signer::Authority,
        &authority,
        T0 + 1,
        Payload::RegisterChain(RegisterChain {
            genesis: a_genesis.clone(),
        }),
    )
    .expect("the same registration again");

    // Signed by a key that is not A's validator: refused.
    let stranger = SigningKey::from_seed(&[77; 32]);
    refused_with(
        b.submit(
            member,
            T0,
            anchor(note(&a, &leaves, 5, &stranger), 0, vec![]),
        ),
        "0 of the 1 validators",
    );
    // The first anchor: old size 0, no proof.
    refused_with(
        b.submit(
            member,
            T0,
            anchor(note(&a, &leaves, 5, &a.producer), 3, proof(&leaves, 3, 5)),
        ),
        "old size 0",
    );
    let first = b
        .submit(
            member,
            T0,
            anchor(note(&a, &leaves, 5, &a.producer), 0, vec![]),
        )
        .expect("anchored");
    // The same size again, or a smaller one: nothing new.
    refused_with(
        b.submit(
            member,
            T0,
            anchor(note(&a, &leaves, 4, &a.producer), 5, vec![]),
        ),
        "not beyond",
    );
    // Growing, with the proof from the size anchored (and only from it).
    refused_with(
        b.submit(
            member,
            T0,
            anchor(note(&a, &leaves, 12, &a.producer), 4, proof(&leaves, 4, 12)),
        ),
        "the proof is from size 4",
    );
    refused_with(
        b.submit(
            member,
            T0,
            anchor(note(&a, &leaves, 12, &a.producer), 5, proof(&leaves, 6, 12)),
        ),
        "does not hold",
    );
    let second = b
        .submit(
            member,
            T0,
            anchor(note(&a, &leaves, 12, &a.producer), 5, proof(&leaves, 5, 12)),
        )
        .expect("anchored");
    let anchors = b
        .ledger
        .store()
        .snapshot()
        .expect("read")
        .anchors()
        .expect("anchors");
    let held = anchors.chains[0].latest.expect("anchored");
    assert_eq!((held.size, held.tx_id), (12, second));
    assert_ne!(first, second);

    // A rewrites its history from block 3 on and publishes the new head: its checkpoint of 20
    // blocks does not extend the 12 anchored, whatever proof comes with it.
    let rewritten_20 = note(&rewritten, &rewritten_leaves, 20, &a.producer);
    refused_with(
        b.submit(
            member,
            T0,
            anchor(rewritten_20.clone(), 12, proof(&rewritten_leaves, 12, 20)),
        ),
        "does not extend",
    );
    refused_with(
        b.submit(
            member,
            T0,
            anchor(rewritten_20.clone(), 12, proof(&leaves, 12, 20)),
        ),
        "does not extend",
    );
    // Its own checkpoint of 12 blocks, of the rewritten history, contradicts the one anchored:
    // as an anchor it is refused, as evidence (with the one anchored) it is recorded.
    let rewritten_12 = note(&rewritten, &rewritten_leaves, 12, &a.producer);
    refused_with(
        b.submit(member, T0, anchor(rewritten_12.clone(), 12, vec![])),
        "signed two histories",
    );
    let honest_12 = note(&a, &leaves, 12, &a.producer);
    let evidence = |first: &str, second: &str| {
        Payload::AnchorEvidence(AnchorEvidence {
            first: first.to_string(),
            second: second.to_string(),
        })
    };
    // No evidence: the same root twice, two sizes, a forged side.
    assert!(
        weft_ledger::Transaction::sign(
            b.chain_id,
            T0,
            Signer::Authority,
            &authority,
            evidence(&honest_12, &honest_12),
        )
        .is_err(),
        "the same note twice is refused before any rule"
    );
    let mut also_signed = Note::parse(honest_12.as_bytes()).expect("note");
    also_signed
        .sign("someone.example/else", &stranger)
        .expect("sign");
    refused_with(
        b.submit(member, T0, evidence(&honest_12, &also_signed.to_text())),
        "same root",
    );
    refused_with(
        b.submit(member, T0, evidence(&honest_12, &rewritten_20)),
        "the same size",
    );
    refused_with(
        b.submit(
            member,
            T0,
            evidence(
                &honest_12,
                &note(&rewritten, &rewritten_leaves, 12, &stranger),
            ),
        ),
        "0 of the 1 validators",
    );
    let caught = b
        .submit(member, T0, evidence(&honest_12, &rewritten_12))
        .expect("evidence recorded");

    // Reopened: the same anchors, the state root agrees, and the audit replays every rule.
    let head = b.ledger.head().clone();
    drop(b);
    let reopened = Ledger::open(RedbStore::open(&path).expect("store")).expect("reopens");
    assert_eq!(reopened.head(), &head);
    let anchors = reopened
        .store()
        .snapshot()
        .expect("read")
        .anchors()
        .expect("anchors");
    assert_eq!(anchors.chains.len(), 1);
    assert_eq!(anchors.chains[0].latest.map(|held| held.size), Some(12));
    assert_eq!(anchors.chains[0].evidence, vec![caught]);
    assert_eq!(
        anchors.chains[0].origin,
        checkpoint::origin("test", &a.chain_id)
    );
    let report = weft_ledger::audit::audit(reopened.store(), &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");
}

/// An anchored proof's link between the transaction's checkpoint and an anchored one
/// (docs/anchoring.md, "Anchored proofs"): either may be the larger; the anchored one must
/// reach the block; a rewritten history does not link.
#[test]
fn an_anchored_checkpoint_covers_a_block_only_in_the_same_history() {
    let ((honest, leaves), (_, rewritten)) = two_histories();
    let at = |leaves: &[Hash32], size: usize| Checkpoint {
        origin: checkpoint::origin("test", &honest.chain_id),
        size: size as u64,
        root: weft_core::merkle::root(&leaves[..size]),
    };
    let hex = |proof: Vec<Hash32>| proof.iter().map(Hash32::to_hex).collect::<Vec<_>>();
    let proof = |old: usize, new: usize| {
        hex(weft_core::merkle::consistency_proof(&leaves[..new], old).expect("a proof"))
    };
    use weft_ledger::anchored::check_covers;
    // Anchored further than the transaction's checkpoint, or less far, or at the same size.
    check_covers(&at(&leaves, 8), &at(&leaves, 15), 5, &proof(8, 15)).expect("larger");
    check_covers(&at(&leaves, 15), &at(&leaves, 8), 5, &proof(8, 15)).expect("smaller");
    check_covers(&at(&leaves, 8), &at(&leaves, 8), 5, &[]).expect("same");
    // Not reaching the block.
    let short = check_covers(&at(&leaves, 15), &at(&leaves, 5), 5, &proof(5, 15));
    assert!(
        format!("{short:?}").contains("do not reach block 5"),
        "{short:?}"
    );
    // Another history of the same size, or a proof of other sizes.
    let other = check_covers(&at(&leaves, 8), &at(&rewritten, 15), 5, &proof(8, 15));
    assert!(
        format!("{other:?}").contains("not one history"),
        "{other:?}"
    );
    let same_size = check_covers(&at(&leaves, 8), &at(&rewritten, 8), 5, &[]);
    assert!(
        format!("{same_size:?}").contains("not one history"),
        "{same_size:?}"
    );
    let wrong = check_covers(&at(&leaves, 8), &at(&leaves, 15), 5, &proof(9, 15));
    assert!(
        format!("{wrong:?}").contains("not one history"),
        "{wrong:?}"
    );
    let garbage = check_covers(&at(&leaves, 8), &at(&leaves, 15), 5, &["zz".to_string()]);
    assert!(
        format!("{garbage:?}").contains("consistency"),
        "{garbage:?}"
    );
}
