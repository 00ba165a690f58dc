//! The full audit names the first bad block or transaction; inclusion proofs verify offline and
//! any altered element is rejected; the durable store behaves like the in-memory one.

mod common;

use common::*;
use weft_core::{BlockHash, SigningKey};
use weft_ledger::audit::audit;
use weft_ledger::block::{
    Block, BlockHeader, ConsensusData, HEADER_VERSION, SignedHeader, merkle_levels,
};
use weft_ledger::proof::{self, SealsOnly};
use weft_ledger::store::{BlockCommit, MemoryStore, RedbStore, Store};
use weft_ledger::{Ledger, Signer, Transaction};

fn populated<S: Store>(store: S) -> (World<S>, Vec<weft_core::TxId>) {
    let mut w = World::with_store(store);
    let designer = w.org("designer");
    let maker = w.org("maker");
    let mut ids = Vec::new();
    for i in 0..20u64 {
        let content = format!("design {i}");
        ids.push(
            w.submit(designer, T0 + 10 + i, claim(designer, content.as_bytes()))
                .expect("claim"),
        );
        ids.push(
            w.submit(
                designer,
                T0 + 100 + i,
                send(designer, maker, i % 2 == 0, content.as_bytes()),
            )
            .expect("send"),
        );
    }
    (w, ids)
}

/// Appends a block to the store *without* validation, as tampering would.
fn force_block<S: Store>(w: &mut World<S>, transactions: Vec<Transaction>) -> u64 {
    let head = w.ledger.store().head().expect("read").expect("head");
    let ids: Vec<_> = transactions.iter().map(Transaction::id).collect();
    let levels = merkle_levels(&transactions, &ids);
    let header = BlockHeader {
        version: HEADER_VERSION,
        chain_id: w.chain_id,
        height: head.header.height + 1,
        timestamp: head.header.timestamp + 1,
        previous_digest: head.header.hash(),
        merkle_root: levels.root(),
        tx_count: transactions.len() as u32,
        consensus: ConsensusData::default(),
        producer: w.producer.public_key(),
        state_root: head.header.state_root,
    };
    let block = Block {
        signed: SignedHeader::seal(header, &w.producer),
        transactions,
    };
    let delta = Default::default();
    w.ledger
        .store_mut_for_tests()
        .commit_block(BlockCommit {
            block: &block,
            ids: &ids,
            levels: &levels,
            delta: &delta,
            state: Some(&Default::default()),
            keep: None,
            certificate: None,
        })
        .expect("raw commit");
    block.signed.header.height
}

#[test]
fn audit_passes_on_a_valid_chain_and_counts_everything() {
    let (w, ids) = populated(MemoryStore::new());
    let mut calls = 0;
    let report = audit(w.ledger.store(), &mut |_, _| calls += 1).expect("audit runs");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.transactions, 1 + 2 + ids.len() as u64);
    assert_eq!(report.blocks, w.ledger.head().header.height + 1);
    assert_eq!(calls as u64, report.blocks);
}

#[test]
fn audit_names_the_first_rule_breaking_transaction() {
    let (mut w, _) = populated(MemoryStore::new());
    let designer = *w.keys.keys().next().expect("an org");
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    // A valid record, then a duplicate claim of "design 3": rule 3 must catch it at index 1.
    let fine = Transaction::sign(
        w.chain_id,
        T0 + 500,
        Signer::Resource(designer),
        &key,
        claim(designer, b"fresh"),
    )
    .expect("tx");
    let duplicate = Transaction::sign(
        w.chain_id,
        T0 + 501,
        Signer::Resource(designer),
        &key,
        claim(designer, b"design 3"),
    )
    .expect("tx");
    let height = force_block(&mut w, vec![fine, duplicate.clone()]);
    let report = audit(w.ledger.store(), &mut |_, _| {}).expect("audit runs");
    assert!(!report.ok);
    let bad = report.first_bad.expect("names the culprit");
    assert_eq!(bad.height, height);
    assert_eq!(bad.index, Some(1));
    assert_eq!(bad.tx_id, Some(duplicate.id().to_hex()));
    assert!(bad.reason.starts_with("rule 3"), "{}", bad.reason);
}

#[test]
fn audit_catches_a_forged_signature_and_a_broken_link() {
    let (mut w, _) = populated(MemoryStore::new());
    let designer = *w.keys.keys().next().expect("an org");
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    let mut forged = Transaction::sign(
        w.chain_id,
        T0 + 500,
        Signer::Resource(designer),
        &key,
        claim(designer, b"forged"),
    )
    .expect("tx");
    forged.signature.0[0] ^= 1;
    let height = force_block(&mut w, vec![forged]);
    let bad = audit(w.ledger.store(), &mut |_, _| {})
        .expect("runs")
        .first_bad
        .expect("bad");
    assert_eq!((bad.height, bad.index), (height, Some(0)));
    assert!(bad.reason.starts_with("signature"), "{}", bad.reason);

    // A block whose previous_digest does not link.
    let (mut w, _) = populated(MemoryStore::new());
    let head = w.ledger.head().clone();
    let mut header = head.header.clone();
    header.height += 1;
    header.previous_digest = BlockHash::default();
    header.tx_count = 0;
    header.merkle_root = merkle_levels(&[], &[]).root();
    let block = Block {
        signed: SignedHeader::seal(header, &w.producer),
        transactions: vec![],
    };
    let delta = Default::default();
    let levels = merkle_levels(&[], &[]);
    w.ledger
        .store_mut_for_tests()
        .commit_block(BlockCommit {
            block: &block,
            ids: &[],
            levels: &levels,
            delta: &delta,
            state: Some(&Default::default()),
            keep: None,
            certificate: None,
        })
        .expect("raw");
    let bad = audit(w.ledger.store(), &mut |_, _| {})
        .expect("runs")
        .first_bad
        .expect("bad");
    assert_eq!(bad.height, head.header.height + 1);
    assert!(bad.reason.contains("previous_digest"), "{}", bad.reason);
}

#[test]
fn proofs_verify_offline_and_reject_alterations() {
    let (w, ids) = populated(MemoryStore::new());
    let root = w.ledger.trust_root().expect("root");
    let impostor = {
        let authority = SigningKey::from_seed(&[1; 32]);
        let producer = SigningKey::from_seed(&[77; 32]);
        Ledger::create(
            MemoryStore::new(),
            genesis_tx("test", &authority, &producer),
            &producer,
            T0,
        )
        .and_then(|ledger| ledger.trust_root())
        .expect("another chain of the same name")
    };
    assert_eq!(impostor.chain_id, root.chain_id);
    for id in ids.iter().step_by(7) {
        let document = proof::build(w.ledger.store(), id).expect("proof");
        let text = serde_json::to_string(&document).expect("json");
        let parsed = proof::parse(text.as_bytes()).expect("parses");
        let verified = proof::verify(&parsed, &root, &SealsOnly).expect("valid");
        assert_eq!(verified.tx_id, *id);
        // The same chain name and id, another genesis and producer: not this chain's root.
        let error = proof::verify(&parsed, &impostor, &SealsOnly).expect_err("another root");
        assert!(error.to_string().contains("not a validator"), "{error}");
    }
    // A block with several transactions, so the path is non-trivial.
    let mut w = w;
    let designer = *w.keys.keys().next().expect("org");
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    let batch: Vec<Transaction> = (0..13u8)
        .map(|i| {
            Transaction::sign(
                w.chain_id,
                T0 + 900,
                Signer::Resource(designer),
                &key,
                claim(designer, &[i, 1, 2]),
            )
            .expect("tx")
        })
        .collect();
    let outcome = w
        .ledger
        .produce_block(batch, &w.producer, T0 + 900)
        .expect("block");
    assert_eq!(outcome.accepted.len(), 13);
    let (id, _) = outcome.accepted[6];
    let good = proof::build(w.ledger.store(), &id).expect("proof");
    assert_eq!(good.audit_path.len(), 4);
    proof::verify(&good, &root, &SealsOnly).expect("valid");

    let flip_hex = |text: &str, at: usize| -> String {
        let mut chars: Vec<char> = text.chars().collect();
        chars[at] = if chars[at] == '0' { '1' } else { '0' };
        chars.into_iter().collect()
    };
    let mut cases: Vec<(String, proof::InclusionProof)> = Vec::new();
    for at in [0, 5, 31, 63] {
        let mut altered = good.clone();
        altered.audit_path[at % 4] = flip_hex(&altered.audit_path[at % 4], at);
        cases.push((format!("audit path {at}"), altered));
    }
    let mut altered = good.clone();
    altered.index += 1;
    cases.push(("index".into(), altered));
    let mut altered = good.clone();
    altered.tree_size += 1;
    cases.push(("tree size".into(), altered));
    let mut altered = good.clone();
    altered.audit_path.pop();
    cases.push(("short path".into(), altered));
    for at in [10, 200, good.transaction.len() - 3] {
        let mut altered = good.clone();
        altered.transaction = flip_hex(&altered.transaction, at);
        cases.push((format!("transaction byte {at}"), altered));
    }
    for at in [4, 90, 150, good.signed_header.len() - 3] {
        let mut altered = good.clone();
        altered.signed_header = flip_hex(&altered.signed_header, at);
        cases.push((format!("header byte {at}"), altered));
    }
    let mut altered = good.clone();
    altered.tx_id = ids[0].to_hex();
    cases.push(("tx id".into(), altered));
    for (what, case) in &cases {
        assert!(
            proof::verify(case, &root, &SealsOnly).is_err(),
            "altered {what} must be rejected"
        );
    }
    // Checked together, each proof gets the verdict it gets alone. The seal-only alteration
    // shares its header (and so its block hash) with the good proofs: its seal must still be
    // checked, not skipped as an already verified header.
    let mut together = vec![good.clone()];
    together.extend(cases.iter().map(|(_, case)| case.clone()));
    together.push(good.clone());
    let verdicts = proof::verify_many(&together, &root, &SealsOnly);
    assert_eq!(verdicts.len(), together.len());
    assert!(verdicts[0].is_ok() && verdicts[together.len() - 1].is_ok());
    for ((what, _), verdict) in cases.iter().zip(&verdicts[1..]) {
        assert!(
            verdict.is_err(),
            "altered {what} must be rejected in a batch too"
        );
    }
    let mut seal_flipped = good.clone();
    let end = seal_flipped.signed_header.len() - 3;
    seal_flipped.signed_header = flip_hex(&seal_flipped.signed_header, end);
    let verdicts = proof::verify_many(
        &[good.clone(), seal_flipped, good.clone()],
        &root,
        &SealsOnly,
    );
    assert!(verdicts[0].is_ok() && verdicts[2].is_ok());
    let error = verdicts[1]
        .as_ref()
        .expect_err("a bad seal on a known header");
    assert!(error.to_string().contains("block seal"), "{error}");
    // Many good proofs from several blocks pass together.
    let many: Vec<_> = ids
        .iter()
        .map(|id| proof::build(w.ledger.store(), id).expect("proof"))
        .collect();
    assert!(
        proof::verify_many(&many, &root, &SealsOnly)
            .iter()
            .all(Result::is_ok)
    );
    assert!(proof::parse(b"{not json").is_err());
    assert!(proof::parse(&vec![b' '; proof::MAX_PROOF_BYTES + 1]).is_err());
}

#[test]
fn redb_store_survives_reopen_and_matches_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let (w, ids) = populated(RedbStore::open(&path).expect("open"));
    let head = w.ledger.head().clone();
    drop(w);
    let reopened = Ledger::open(RedbStore::open(&path).expect("reopen")).expect("chain");
    assert_eq!(reopened.head(), &head);
    for id in &ids {
        assert!(reopened.store().tx(id).expect("read").is_some());
    }
    let report = audit(reopened.store(), &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");

    let (memory, _) = populated(MemoryStore::new());
    assert_eq!(
        memory.ledger.head().header.hash(),
        head.header.hash(),
        "same inputs, same chain"
    );
    let fingerprint = weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, b"design 4");
    assert_eq!(
        reopened
            .store()
            .by_fingerprint(&fingerprint)
            .expect("index"),
        memory
            .ledger
            .store()
            .by_fingerprint(&fingerprint)
            .expect("index")
    );
    assert_eq!(
        reopened
            .store()
            .by_fingerprint(&fingerprint)
            .expect("index")
            .len(),
        2
    );
    let proof = proof::build(reopened.store(), &ids[5]).expect("proof");
    let root = reopened.trust_root().expect("root");
    proof::verify(&proof, &root, &SealsOnly).expect("valid");
    let error = RedbStore::open(&path).expect_err("a database in use is not opened twice");
    assert!(
        error.to_string().contains("in use by another weft process"),
        "{error}"
    );
    drop(reopened);
    assert!(
        RedbStore::open(&path).is_ok(),
        "a closed database opens again"
    );
}

#[test]
fn import_refuses_a_block_from_an_unknown_producer() {
    let (mut w, _) = populated(MemoryStore::new());
    let head = w.ledger.head().clone();
    let intruder = SigningKey::from_seed(&[200; 32]);
    let levels = merkle_levels(&[], &[]);
    let header = BlockHeader {
        version: HEADER_VERSION,
        chain_id: w.chain_id,
        height: head.header.height + 1,
        timestamp: head.header.timestamp,
        previous_digest: head.header.hash(),
        merkle_root: levels.root(),
        tx_count: 0,
        consensus: ConsensusData::default(),
        producer: intruder.public_key(),
        state_root: head.header.state_root,
    };
    let block = Block {
        signed: SignedHeader::seal(header, &intruder),
        transactions: vec![],
    };
    let error = w.ledger.import_block(&block).expect_err("unknown producer");
    assert!(
        error
            .to_string()
            .contains("not one of the chain's producers"),
        "{error}"
    );
}

/// A block larger than one Merkle tile: the durable store keeps the tree in tiles, and every
/// proof it builds is the one the in-memory store (one flat tree) builds, and verifies.
#[test]
fn proofs_from_tiled_trees_match_the_memory_store_for_every_leaf() {
    fn big_block<S: Store>(store: S) -> (World<S>, Vec<weft_core::TxId>) {
        let mut w = World::with_store(store);
        let designer = w.org("designer");
        let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
        let transactions: Vec<Transaction> = (0..130u64)
            .map(|i| {
                let content = format!("tiled design {i}");
                Transaction::sign(
                    w.chain_id,
                    T0 + 10,
                    Signer::Resource(designer),
                    &key,
                    claim(designer, content.as_bytes()),
                )
                .expect("valid payload")
            })
            .collect();
        let outcome = w
            .ledger
            .produce_block(transactions, &w.producer, T0 + 10)
            .expect("storage works");
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        let ids = outcome.accepted.iter().map(|(id, ..)| *id).collect();
        (w, ids)
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (durable, ids) = big_block(RedbStore::open(&dir.path().join("ledger.redb")).expect("open"));
    let (memory, memory_ids) = big_block(MemoryStore::new());
    assert_eq!(ids, memory_ids, "same inputs, same transactions");
    let root = durable.ledger.trust_root().expect("root");
    let mut longest = 0;
    for id in &ids {
        let from_tiles = proof::build(durable.ledger.store(), id).expect("proof from tiles");
        let flat = proof::build(memory.ledger.store(), id).expect("proof from the flat tree");
        assert_eq!(from_tiles.audit_path, flat.audit_path, "{id}");
        assert_eq!(from_tiles.tree_size, 130, "{id}");
        longest = longest.max(from_tiles.audit_path.len());
        proof::verify(&from_tiles, &root, &SealsOnly).expect("verifies");
    }
    assert_eq!(
        longest, 8,
        "130 leaves: paths reach the second tier of tiles"
    );
}

/// A node joining a network starts from the network's block 0: the copy has the same head and
/// genesis, imports the next blocks, and a tampered block 0 is refused.
#[test]
fn a_chain_copied_from_its_block_0_follows_the_original() {
    let (w, _) = populated(MemoryStore::new());
    let block0 = w.ledger.store().block(0).expect("read").expect("block 0");
    let mut copy = Ledger::from_genesis_block(MemoryStore::new(), &block0).expect("block 0");
    assert_eq!(copy.head().header.hash(), block0.signed.header.hash());
    assert_eq!(copy.genesis(), w.ledger.genesis());
    for height in 1..=w.ledger.head().header.height {
        let block = w
            .ledger
            .store()
            .block(height)
            .expect("read")
            .expect("block");
        copy.import_block(&block)
            .expect("the original's blocks follow");
    }
    assert_eq!(copy.head(), w.ledger.head());

    let mut tampered = block0.clone();
    tampered.signed.header.timestamp += 1;
    let error = Ledger::from_genesis_block(MemoryStore::new(), &tampered)
        .expect_err("a changed block 0 breaks its seal");
    assert!(error.to_string().contains("seal"), "{error}");
    let error = Ledger::from_genesis_block(copy.into_store(), &block0)
        .expect_err("a store with a chain is not overwritten");
    assert!(
        error.to_string().contains("already holds a chain"),
        "{error}"
    );
}

/// A thin node's copy: it validates the original's blocks in full but stores whole only what
/// its filter keeps. Stripped transactions are still indexed, still proven, still audited
/// (links, roots, seals, signatures); the rules are replayed up to the first stripped one.
#[test]
fn a_copy_that_strips_what_its_filter_drops_still_indexes_proves_and_audits() {
    use weft_ledger::filter::StorageFilter;
    use weft_ledger::ledger::validate_block;
    let (w, ids) = populated(MemoryStore::new());
    let designer = w
        .ledger
        .store()
        .tx(&ids[0])
        .expect("read")
        .map(|(tx, _)| match tx.header.signer {
            Signer::Resource(id) => id,
            Signer::Authority => panic!("a claim is signed by its issuer's key"),
        })
        .expect("first claim");
    let block0 = w.ledger.store().block(0).expect("read").expect("block 0");
    let mut thin = Ledger::from_genesis_block(MemoryStore::new(), &block0).expect("block 0");
    // Keeps every claim; sends only if they name a resource it watches (none here).
    let filter = StorageFilter {
        kinds: vec![weft_core::model::PayloadKind::RecordOwnership],
        resources: Vec::new(),
    };
    let mut kept = 0;
    for height in 1..=w.ledger.head().header.height {
        let block = w
            .ledger
            .store()
            .block(height)
            .expect("read")
            .expect("block");
        let validated = {
            let snapshot = thin.store().snapshot().expect("snapshot");
            validate_block(&snapshot, thin.chain_id(), Some(thin.head()), &block).expect("valid")
        };
        let mask = filter.mask(&block.transactions);
        kept += mask.as_ref().map_or(block.transactions.len(), |mask| {
            mask.iter().filter(|k| **k).count()
        });
        thin.commit_validated_keeping(&block, &validated, mask.as_deref())
            .expect("commit");
        assert!(
            thin.commit_validated_keeping(&block, &validated, Some(&[]))
                .is_err(),
            "a mask of the wrong length is refused"
        );
    }
    assert_eq!(thin.head(), w.ledger.head());
    let (claim, _) = thin.store().tx(&ids[0]).expect("read").expect("claim");
    assert!(claim.payload.is_some(), "claims are kept whole");
    let (sent, _) = thin.store().tx(&ids[1]).expect("read").expect("send");
    assert!(sent.payload.is_none(), "sends are stripped");
    assert_eq!(sent.id(), ids[1], "a stripped transaction keeps its id");
    assert_eq!(kept, 20, "the 20 claims");
    // Indexes come from the whole transactions: the stripped send is still found.
    let fingerprint = asset(b"design 0").fingerprint;
    let found: Vec<_> = thin
        .store()
        .by_fingerprint(&fingerprint)
        .expect("index")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(found, vec![ids[0], ids[1]]);
    assert_eq!(
        thin.store().by_resource(&designer).expect("index").len(),
        w.ledger
            .store()
            .by_resource(&designer)
            .expect("index")
            .len()
    );
    // A proof of a stripped transaction verifies; the archive's whole copy has the same id.
    let stripped_proof = proof::build(thin.store(), &ids[1]).expect("proof");
    let root = thin.trust_root().expect("root");
    let verified = proof::verify(&stripped_proof, &root, &SealsOnly).expect("verifies");
    assert!(verified.transaction.payload.is_none());

    let report = audit(thin.store(), &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.stripped, 22,
        "20 sends and the 2 organisations' registrations"
    );
    let first_stripped = (1..=thin.head().header.height)
        .find(|height| {
            let block = thin.store().block(*height).expect("read").expect("block");
            block.transactions.iter().any(|tx| tx.payload.is_none())
        })
        .expect("a stripped block");
    assert_eq!(report.rules_checked_through, Some(first_stripped - 1));
    let full = audit(w.ledger.store(), &mut |_, _| {}).expect("audit");
    assert_eq!(
        (full.stripped, full.rules_checked_through),
        (0, Some(w.ledger.head().header.height))
    );

    // Past the first stripped transaction the audit still catches a forged signature.
    let mut forged = w
        .ledger
        .store()
        .tx(&ids[3])
        .expect("read")
        .expect("send")
        .0
        .stripped();
    forged.signature.0[0] ^= 1;
    let height = {
        let head = thin.store().head().expect("read").expect("head");
        let transactions = vec![forged];
        let tx_ids: Vec<_> = transactions.iter().map(Transaction::id).collect();
        let levels = merkle_levels(&transactions, &tx_ids);
        let header = BlockHeader {
            version: HEADER_VERSION,
            chain_id: thin.chain_id(),
            height: head.header.height + 1,
            timestamp: head.header.timestamp + 1,
            previous_digest: head.header.hash(),
            merkle_root: levels.root(),
            tx_count: 1,
            consensus: ConsensusData::default(),
            producer: w.producer.public_key(),
            state_root: head.header.state_root,
        };
        let block = Block {
            signed: SignedHeader::seal(header, &w.producer),
            transactions,
        };
        thin.store_mut_for_tests()
            .commit_block(BlockCommit {
                block: &block,
                ids: &tx_ids,
                levels: &levels,
                delta: &Default::default(),
                state: Some(&Default::default()),
                keep: None,
                certificate: None,
            })
            .expect("raw commit");
        block.signed.header.height
    };
    let report = audit(thin.store(), &mut |_, _| {}).expect("audit");
    let bad = report.first_bad.expect("caught");
    assert_eq!((bad.height, bad.index), (height, Some(0)));
    assert!(bad.reason.contains("signature"), "{}", bad.reason);
}

/// The index copies of a claim's fingerprint overwritten with an altered file's fingerprint, on
/// a closed ledger file: `verify` would find the altered file owned. The blocks are untouched;
/// the audit compares every derived row with what they give, and names the table.
#[test]
fn audit_catches_an_index_edited_apart_from_the_blocks() {
    use redb::ReadableTable as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let (mut w, _) = populated(RedbStore::open(&path).expect("open"));
    // The rows agree while changes wait to be merged, part way through a merge, and after.
    let waiting = audit(w.ledger.store(), &mut |_, _| {}).expect("audit");
    assert!(waiting.ok, "{waiting:?}");
    w.ledger
        .store_mut_for_tests()
        .merge_some(1, 16)
        .expect("a step");
    let stepped = audit(w.ledger.store(), &mut |_, _| {}).expect("audit");
    assert!(stepped.ok, "{stepped:?}");
    w.ledger
        .flush()
        .expect("merge every change into the tables");
    let clean = audit(w.ledger.store(), &mut |_, _| {}).expect("audit");
    assert!(clean.ok, "{clean:?}");
    drop(w);

    let original = asset(b"design 3").fingerprint.key_bytes();
    let altered = asset(b"design 3, altered").fingerprint.key_bytes();
    for table_name in ["histories", "fingerprint_index"] {
        let copy = dir.path().join(format!("tampered-{table_name}.redb"));
        std::fs::copy(&path, &copy).expect("copy");
        {
            let db = redb::Database::open(&copy).expect("open the copy");
            let txn = db.begin_write().expect("write");
            let moved = if table_name == "histories" {
                // The history with its owner, moved to the altered file's fingerprint.
                let definition: redb::TableDefinition<&[u8; 33], &[u8]> =
                    redb::TableDefinition::new("histories");
                let mut table = txn.open_table(definition).expect("histories");
                let value = table
                    .remove(&original)
                    .expect("remove")
                    .map(|value| value.value().to_vec())
                    .expect("the claim's history row");
                table.insert(&altered, value.as_slice()).expect("insert");
                1
            } else {
                let definition: redb::TableDefinition<&[u8; 45], &[u8; 32]> =
                    redb::TableDefinition::new("fingerprint_index");
                let mut table = txn.open_table(definition).expect("index");
                let rows: Vec<([u8; 45], [u8; 32])> = table
                    .iter()
                    .expect("iterate")
                    .map(|row| {
                        let (key, value) = row.expect("row");
                        (*key.value(), *value.value())
                    })
                    .filter(|(key, _)| key[..33] == original)
                    .collect();
                for (key, value) in &rows {
                    table.remove(key).expect("remove");
                    let mut moved = *key;
                    moved[..33].copy_from_slice(&altered);
                    table.insert(&moved, value).expect("insert");
                }
                rows.len()
            };
            assert!(moved > 0, "{table_name}");
            txn.commit().expect("commit");
        }
        let store = RedbStore::open(&copy).expect("reopen the copy");
        let report = audit(&store, &mut |_, _| {}).expect("audit");
        assert!(!report.ok, "{table_name}: {report:?}");
        let reason = report.first_bad.expect("named").reason;
        assert!(reason.contains(table_name), "{table_name}: {reason}");
    }
}

/// A trust root is block 0 itself: a document that keeps block 0's header and seal but swaps
/// the genesis transaction's producers (the hash covers the header only) is refused.
#[test]
fn a_trust_root_with_another_genesis_payload_under_the_real_header_is_refused() {
    use weft_core::model::{Genesis, Payload};
    use weft_ledger::trust::TrustRoot;
    let w = World::new();
    let genesis = w.ledger.store().block(0).expect("read").expect("block 0");
    let root = TrustRoot::from_genesis(&genesis).expect("the real root");
    assert_eq!(root.validators, vec![w.producer.public_key()]);
    let attacker = SigningKey::from_seed(&[66; 32]);
    let mut forged = genesis.clone();
    let Some(Payload::Genesis(Genesis { producers, .. })) = &mut forged.transactions[0].payload
    else {
        panic!("block 0 holds the genesis")
    };
    *producers = vec![attacker.public_key()];
    let error = TrustRoot::from_genesis(&forged).expect_err("a forged payload");
    assert!(error.to_string().contains("genesis transaction"), "{error}");
    // The document form is refused the same way, with the real genesis hash confirmed.
    let mut document = root.document();
    document.genesis = hex::encode(weft_core::encoding::encode(&forged));
    document.validators = vec![attacker.public_key().to_hex()];
    let text = serde_json::to_vec(&document).expect("json");
    assert!(TrustRoot::parse(&text).is_err());
}
