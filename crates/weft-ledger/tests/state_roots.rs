//! State roots: every block header commits to the rule state after it; a store's proofs of
//! entries and of absences check against the header; a block with a wrong root, or a store whose
//! state tables were edited apart from the blocks, is refused.

mod common;

use common::*;
use weft_core::model::{Payload, Record};
use weft_core::{Fingerprint, HashAlgo, SigningKey};
use weft_ledger::commitment::{StateKey, verify_entry};
use weft_ledger::ledger::{Admitted, assemble};
use weft_ledger::state::{HistoryEntry, StateView as _};
use weft_ledger::store::{MemoryStore, RedbStore, Store};
use weft_ledger::{Ledger, Transaction};

/// Organisations, claims, sends with and without the right to forward, and a record.
fn populate<S: Store>(w: &mut World<S>) -> Vec<Fingerprint> {
    let designer = w.org("Designer");
    let maker = w.org("Maker");
    let printer = w.person(maker);
    let mut fingerprints = Vec::new();
    for i in 0..4u64 {
        let content = format!("design {i}");
        w.submit(designer, T0 + 10 * i, claim(designer, content.as_bytes()))
            .expect("claim");
        w.submit(
            designer,
            T0 + 10 * i + 1,
            send(designer, maker, i % 2 == 0, content.as_bytes()),
        )
        .expect("send");
        fingerprints.push(asset(content.as_bytes()).fingerprint);
    }
    let body = b"machine log".to_vec();
    w.submit(
        printer,
        T0 + 50,
        Payload::Record(Record {
            issuer: printer,
            content_type: "text/plain".into(),
            product_code: None,
            body: body.clone(),
        }),
    )
    .expect("record");
    fingerprints.push(Fingerprint::of_bytes(HashAlgo::Sha256, &body));
    fingerprints
}

/// Every entry a fingerprint has is proven against the head's state root, with the value the
/// store reads; a fingerprint nobody named is proven absent.
fn check_proofs<S: Store>(ledger: &Ledger<S>, fingerprints: &[Fingerprint]) {
    let root = ledger.head().header.state_root.expect("a version 2 header");
    assert_eq!(ledger.store().state_root().expect("root"), root);
    let snapshot = ledger.store().snapshot().expect("snapshot");
    for fingerprint in fingerprints {
        let ids: Vec<_> = ledger
            .store()
            .by_fingerprint(fingerprint)
            .expect("index")
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert!(!ids.is_empty());
        let owner = snapshot.owner(fingerprint).expect("read");
        let history = HistoryEntry::of(&ids, owner);
        assert_eq!(snapshot.history(fingerprint).expect("read"), Some(history));
        let key = StateKey::History(*fingerprint);
        let proof = ledger.store().state_proof(&key).expect("proof");
        verify_entry(&root, &key, Some(&history), &proof).expect("the history is proven");
        // One transaction left out, or another owner, is not the proven history.
        let shorter = HistoryEntry::of(&ids[1..], owner);
        assert!(verify_entry(&root, &key, Some(&shorter), &proof).is_err());
        let unowned = HistoryEntry::of(&ids, None);
        if owner.is_some() {
            assert!(verify_entry(&root, &key, Some(&unowned), &proof).is_err());
        }
    }
    let nobody = StateKey::History(Fingerprint::of_bytes(HashAlgo::Sha256, b"never named"));
    let proof = ledger.store().state_proof(&nobody).expect("proof");
    verify_entry::<HistoryEntry>(&root, &nobody, None, &proof).expect("absent");
    let claimed = HistoryEntry::default().then(&weft_core::TxId(Default::default()));
    assert!(verify_entry(&root, &nobody, Some(&claimed), &proof).is_err());
}

#[test]
fn every_block_commits_to_the_state_in_memory_and_on_disk_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut memory = World::new();
    let mut disk = World::with_store(RedbStore::open(&dir.path().join("l.redb")).expect("open"));
    // Merge a step after every block: the tree must see the tables, the generation under merge
    // and the newest changes as one state.
    disk.merge_step = Some((3, 2));
    let fingerprints = populate(&mut memory);
    assert_eq!(populate(&mut disk), fingerprints);
    let height = memory.ledger.head().header.height;
    assert!(height > 10);
    for h in 0..=height {
        let a = memory
            .ledger
            .store()
            .signed_header(h)
            .expect("read")
            .expect("header");
        let b = disk
            .ledger
            .store()
            .signed_header(h)
            .expect("read")
            .expect("header");
        assert!(a.header.state_root.is_some(), "block {h}");
        assert_eq!(a, b, "block {h}");
    }
    // The state changes with every block that changes it.
    let roots: std::collections::HashSet<_> = (0..=height)
        .map(|h| {
            memory
                .ledger
                .store()
                .signed_header(h)
                .expect("read")
                .expect("header")
                .header
                .state_root
        })
        .collect();
    assert_eq!(roots.len() as u64, height + 1);
    check_proofs(&memory.ledger, &fingerprints);
    check_proofs(&disk.ledger, &fingerprints);
}

#[test]
fn a_reopened_store_rebuilds_the_same_state_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.redb");
    let mut w = World::with_store(RedbStore::open(&path).expect("open"));
    let fingerprints = populate(&mut w);
    let root = w.ledger.head().header.state_root;
    // Killed with every change still waiting in memory: rebuilt from the waiting rows.
    w.ledger.into_store().abandon_for_tests();
    let ledger = Ledger::open(RedbStore::open(&path).expect("reopen")).expect("opens");
    assert_eq!(ledger.head().header.state_root, root);
    check_proofs(&ledger, &fingerprints);
    // Merged into the tables: rebuilt from them.
    let mut ledger = ledger;
    ledger.flush().expect("flush");
    drop(ledger);
    let ledger = Ledger::open(RedbStore::open(&path).expect("reopen")).expect("opens");
    check_proofs(&ledger, &fingerprints);
}

#[test]
fn a_block_with_a_wrong_state_root_is_refused() {
    let mut w = World::new();
    let designer = w.org("Designer");
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    let tx = Transaction::sign(
        w.chain_id,
        T0,
        weft_ledger::Signer::Resource(designer),
        &key,
        claim(designer, b"bracket"),
    )
    .expect("valid");
    let build = |w: &World<MemoryStore>| {
        let snapshot = w.ledger.store().snapshot().expect("snapshot");
        assemble(
            &snapshot,
            w.chain_id,
            w.ledger.head(),
            Admitted::check(vec![tx.clone()]),
            &w.producer,
            T0,
        )
        .expect("assembled")
        .block
    };
    let good = build(&w);
    let mut wrong = good.clone();
    let mut root = wrong.signed.header.state_root.expect("root");
    root.0[0] ^= 1;
    wrong.signed.header.state_root = Some(root);
    wrong.signed = weft_ledger::block::SignedHeader::seal(wrong.signed.header, &w.producer);
    let error = w.ledger.import_block(&wrong).expect_err("wrong root");
    assert!(error.to_string().contains("state_root"), "{error}");

    // A block that commits to no state cannot follow one that does.
    let mut none = good.clone();
    none.signed.header.version = 1;
    none.signed.header.state_root = None;
    none.signed = weft_ledger::block::SignedHeader::seal(none.signed.header, &w.producer);
    let error = w.ledger.import_block(&none).expect_err("no root");
    assert!(error.to_string().contains("state root"), "{error}");

    w.ledger
        .import_block(&good)
        .expect("the right root is accepted");
}

/// A history row edited on a closed ledger file: the ledger refuses to open (its state does not
/// give the head's root), and the audit names the table.
#[test]
fn a_state_row_edited_apart_from_the_blocks_stops_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.redb");
    let mut w = World::with_store(RedbStore::open(&path).expect("open"));
    let fingerprints = populate(&mut w);
    w.ledger.flush().expect("flush");
    drop(w);
    {
        let db = redb::Database::open(&path).expect("open the file");
        let txn = db.begin_write().expect("write");
        {
            let definition: redb::TableDefinition<&[u8; 33], &[u8]> =
                redb::TableDefinition::new("histories");
            let mut table = txn.open_table(definition).expect("histories");
            // The history of design 0 without its send: as if the send had never happened.
            let fingerprint = fingerprints[0].key_bytes();
            let shorter = HistoryEntry::default().then(&weft_core::TxId(Default::default()));
            table
                .insert(
                    &fingerprint,
                    borsh::to_vec(&shorter).expect("encode").as_slice(),
                )
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("the file opens");
    let report = weft_ledger::audit::audit(&store, &mut |_, _| {}).expect("audit");
    let reason = report.first_bad.expect("caught").reason;
    assert!(reason.contains("histories"), "{reason}");
    let error = Ledger::open(store).expect_err("refused");
    assert!(
        error.to_string().contains("state tables were changed"),
        "{error}"
    );
}

/// A commit that fails (here: a block stored twice) leaves the state tree as the tables are,
/// though the tree follows each block on a thread of its own while the block is written.
#[test]
fn a_failed_commit_leaves_the_state_tree_as_the_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = World::with_store(RedbStore::open(&dir.path().join("l.redb")).expect("open"));
    let fingerprints = populate(&mut w);
    let head = w.ledger.head().header.height;
    let block = w
        .ledger
        .store()
        .block(head)
        .expect("read")
        .expect("head block");
    let ids: Vec<_> = block.transactions.iter().map(Transaction::id).collect();
    let levels = weft_ledger::block::merkle_levels(&block.transactions, &ids);
    // Changes that would move the tree, were they committed.
    let mut delta = weft_ledger::state::StateDelta::default();
    delta.histories.insert(
        Fingerprint::of_bytes(HashAlgo::Sha256, b"never committed"),
        HistoryEntry::default().then(&ids[0]),
    );
    let update = {
        let snapshot = w.ledger.store().snapshot().expect("snapshot");
        snapshot.state_update(&delta).expect("update")
    };
    assert_ne!(update.root, update.base);
    let error = w
        .ledger
        .store_mut_for_tests()
        .commit_block(weft_ledger::store::BlockCommit {
            block: &block,
            ids: &ids,
            levels: &levels,
            delta: &delta,
            state: Some(&update),
            keep: None,
            certificate: None,
        })
        .expect_err("stored twice");
    assert!(error.to_string().contains("already stored"), "{error}");
    check_proofs(&w.ledger, &fingerprints);
}
