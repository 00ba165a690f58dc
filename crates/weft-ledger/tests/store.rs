//! The durable store keeps recent index and state changes in memory and merges them into its
//! tables later: every read must be the same before and after the merge, after a reopen, and
//! after a crash (the changes are rebuilt from the file), and the same as the in-memory store.

mod common;

use common::*;
use weft_core::model::{NetworkPeer, Payload};
use weft_core::{Fingerprint, HashAlgo, PublicKey, ResourceId, SigningKey, TxId};
use weft_ledger::state::StateView;
use weft_ledger::store::{MergeStep, RedbStore, Store};
use weft_ledger::{Ledger, RuleError, Signer, Transaction};

/// A chain with claims, sends, a person and a forward chain over several blocks.
fn populate<S: Store>(w: &mut World<S>) -> (Vec<TxId>, Vec<ResourceId>) {
    let designer = w.org("designer");
    let maker = w.org("maker");
    let second = w.org("second maker");
    let person = w.person(designer);
    let mut ids = Vec::new();
    for i in 0..12u64 {
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
        if i % 2 == 0 {
            ids.push(
                w.submit(
                    maker,
                    T0 + 200 + i,
                    send(maker, second, false, content.as_bytes()),
                )
                .expect("forward"),
            );
        }
    }
    // A validator change, scheduled once half the blocks are in (the schedule is rule state).
    let authority = weft_core::SigningKey::from_text(&w.authority.to_text()).expect("key");
    let producer = w.producer.public_key();
    let from_height = w.ledger.head().header.height + 1_000;
    ids.push(
        w.submit_as(
            weft_ledger::Signer::Authority,
            &authority,
            T0 + 300,
            weft_core::model::Payload::SetValidators(weft_core::model::SetValidators {
                validators: vec![producer],
                from_height,
            }),
        )
        .expect("validators"),
    );
    (ids, vec![designer, maker, second, person])
}

/// Everything a reader can ask, as one comparable value.
fn observe<S: Store>(store: &S, ids: &[TxId], resources: &[ResourceId]) -> String {
    let snapshot = store.snapshot().expect("snapshot");
    let mut out = String::new();
    for id in ids {
        out += &format!(
            "{id}: {:?} {}\n",
            store.tx_position(id).expect("read"),
            snapshot.contains_tx(id).expect("read")
        );
    }
    for i in 0..13u64 {
        let fingerprint = Fingerprint::of_bytes(HashAlgo::Sha256, format!("design {i}").as_bytes());
        out += &format!(
            "{i}: {:?} owner {:?}\n",
            store.by_fingerprint(&fingerprint).expect("read"),
            snapshot.owner(&fingerprint).expect("read")
        );
        for resource in resources {
            out += &format!(
                "  receipt {:?}\n",
                snapshot.receipt(&fingerprint, resource).expect("read")
            );
        }
    }
    for resource in resources {
        out += &format!(
            "{resource}: {:?} {:?}\n",
            store.by_resource(resource).expect("read"),
            snapshot.resource(resource).expect("read")
        );
    }
    // Transaction ids by prefix: all of them, and those sharing each id's first byte.
    out += &format!("{:?}\n", store.txs_with_prefix(&[], 1000).expect("read"));
    for id in ids {
        let found = store
            .txs_with_prefix(&id.as_bytes()[..1], 1000)
            .expect("read");
        assert!(found.contains(id), "{id} is found by its first byte");
        out += &format!("{found:?}\n");
    }
    out += &format!(
        "{:?} {:?}\n",
        store.resources_with_prefix(&[], 100).expect("read"),
        snapshot.genesis().expect("read")
    );
    out += &format!("{:?}\n", snapshot.schedule().expect("read"));
    out
}

#[test]
fn every_merge_interval_reads_like_the_memory_store() {
    let mut reference = World::new();
    let (ids, resources) = populate(&mut reference);
    let expected = observe(reference.ledger.store(), &ids, &resources);
    assert!(expected.contains("owner Some"), "the fixture has owners");
    assert!(
        expected.contains("from_height"),
        "the fixture has a validator change"
    );

    for merge_after in [0, 1, 5, 1_000_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.redb");
        let mut w = World::with_store(RedbStore::open_with(&path, merge_after).expect("open"));
        let (ids_here, _) = populate(&mut w);
        assert_eq!(ids_here, ids, "same inputs, same transactions");
        let (blocks, txs) = w.ledger.store().pending();
        match merge_after {
            0 => assert_eq!(
                (blocks, txs),
                (0, 0),
                "nothing waits when merging every block"
            ),
            1_000_000 => assert!(blocks > 30 && txs > 30, "everything waits: {blocks} {txs}"),
            _ => assert!(txs < merge_after, "at most one interval waits: {txs}"),
        }
        assert_eq!(
            observe(w.ledger.store(), &ids, &resources),
            expected,
            "merge_after {merge_after}: before merging"
        );
        w.ledger.flush().expect("flush");
        assert_eq!(w.ledger.store().pending(), (0, 0));
        assert_eq!(
            observe(w.ledger.store(), &ids, &resources),
            expected,
            "merge_after {merge_after}: after merging"
        );
        drop(w);
        let reopened =
            Ledger::open(RedbStore::open_with(&path, merge_after).expect("reopen")).expect("chain");
        assert_eq!(
            observe(reopened.store(), &ids, &resources),
            expected,
            "merge_after {merge_after}: after reopening"
        );
    }
}

#[test]
fn changes_waiting_at_a_crash_are_rebuilt_and_the_rules_still_see_them() {
    let mut reference = World::new();
    let (ids, resources) = populate(&mut reference);
    let expected = observe(reference.ledger.store(), &ids, &resources);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let mut w = World::with_store(RedbStore::open_with(&path, 1_000_000).expect("open"));
    populate(&mut w);
    let waiting = w.ledger.store().pending();
    let World {
        ledger,
        producer,
        keys,
        chain_id,
        ..
    } = w;
    // Close as a killed process would: nothing merged, the file as the last commit left it.
    ledger.into_store().abandon_for_tests();

    let store = RedbStore::open_with(&path, 1_000_000).expect("reopen");
    assert_eq!(store.pending(), waiting, "the waiting changes are rebuilt");
    let ledger = Ledger::open(store).expect("chain");
    assert_eq!(observe(ledger.store(), &ids, &resources), expected);

    // The rules read the rebuilt state: a second claim on design 3 is refused (rule 3), and
    // the maker, who got design 0 with the right to forward, may forward it again.
    let mut w = World {
        ledger,
        authority: weft_core::SigningKey::from_seed(&[1; 32]),
        producer,
        chain_id,
        keys,
        seed: 200,
        merge_step: None,
    };
    let (designer, maker, second) = (resources[0], resources[1], resources[2]);
    let error = w
        .submit(maker, T0 + 5000, claim(maker, b"design 3"))
        .expect_err("design 3 has an owner");
    assert!(matches!(error, RuleError::Rule3 { .. }), "{error}");
    w.submit(maker, T0 + 5001, send(maker, designer, false, b"design 0"))
        .expect("the maker holds a forwardable copy of design 0");
    let error = w
        .submit(
            second,
            T0 + 5002,
            send(second, designer, false, b"design 0"),
        )
        .expect_err("the second maker got design 0 without the right to forward");
    assert!(error.to_string().contains("rule 2"), "{error}");
}

#[test]
fn a_file_with_another_storage_layout_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
            .expect("table")
            .insert("storage_version", b"9".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    let error = RedbStore::open(&path).expect_err("layout 9 is not read");
    assert!(error.to_string().contains("storage layout 9"), "{error}");

    let path = dir.path().join("old.redb");
    {
        let db = redb::Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(redb::TableDefinition::<u64, &[u8]>::new("headers"))
            .expect("table")
            .insert(0, b"a block".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    let error = RedbStore::open(&path).expect_err("an unversioned file with blocks is old");
    assert!(error.to_string().contains("earlier weft"), "{error}");

    let fresh = dir.path().join("fresh.redb");
    drop(RedbStore::open(&fresh).expect("a new file gets the current layout"));
    drop(RedbStore::open(&fresh).expect("and opens again"));
}

#[test]
fn merging_a_step_at_a_time_between_blocks_reads_like_the_memory_store() {
    let mut reference = World::new();
    let (ids, resources) = populate(&mut reference);
    let expected = observe(reference.ledger.store(), &ids, &resources);

    // Blocks and merge steps interleaved: the rules (which read state while a generation is
    // half written) accept the same transactions, and every read agrees.
    for (start_at, budget) in [(1, 1), (4, 1), (6, 3), (20, 2), (1, 1_000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.redb");
        let mut w = World::with_store(RedbStore::open_with(&path, usize::MAX).expect("open"));
        w.merge_step = Some((start_at, budget));
        let (ids_here, _) = populate(&mut w);
        assert_eq!(
            ids_here, ids,
            "{start_at}/{budget}: the same transactions are accepted"
        );
        assert_eq!(
            observe(w.ledger.store(), &ids, &resources),
            expected,
            "{start_at}/{budget}: while merging"
        );
        w.ledger.flush().expect("flush");
        assert_eq!(w.ledger.store().pending(), (0, 0));
        assert_eq!(observe(w.ledger.store(), &ids, &resources), expected);
    }

    // Everything waiting, then merged in small steps with a read after each one; a crash
    // half-way rebuilds the generation under merge, and merging it again changes nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let mut w = World::with_store(RedbStore::open_with(&path, usize::MAX).expect("open"));
    populate(&mut w);
    let waiting = w.ledger.store().pending();
    let mut steps = 0;
    let mut ledger = w.ledger;
    let sorting_until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match ledger.merge_some(1, 3).expect("step") {
            MergeStep::Idle => break,
            MergeStep::Sorting => {
                // The generation's rows are sorted on a thread of their own: wait for them.
                assert!(
                    std::time::Instant::now() < sorting_until,
                    "the rows get sorted"
                );
                std::thread::yield_now();
                continue;
            }
            MergeStep::Wrote => {}
        }
        steps += 1;
        assert_eq!(
            observe(ledger.store(), &ids, &resources),
            expected,
            "after step {steps}"
        );
        assert!(steps < 1_000, "the merge ends");
        if steps == 4 {
            assert_eq!(
                ledger.store().pending(),
                waiting,
                "a generation under merge still counts as waiting"
            );
            ledger.into_store().abandon_for_tests();
            let store = RedbStore::open_with(&path, usize::MAX).expect("reopen");
            assert_eq!(
                store.pending(),
                waiting,
                "the half-merged generation is rebuilt"
            );
            ledger = Ledger::open(store).expect("chain");
            assert_eq!(observe(ledger.store(), &ids, &resources), expected);
        }
    }
    assert!(steps > 4, "small steps: {steps}");
    assert_eq!(ledger.store().pending(), (0, 0));
    assert_eq!(observe(ledger.store(), &ids, &resources), expected);
    drop(ledger);
    let reopened = RedbStore::open_with(&path, usize::MAX).expect("reopen");
    assert_eq!(reopened.pending(), (0, 0), "nothing left to rebuild");
    assert_eq!(
        observe(
            Ledger::open(reopened).expect("chain").store(),
            &ids,
            &resources
        ),
        expected
    );
}

/// Admits or removes `key` as a network peer named `name`, signed by the authority.
fn peer_change<S: Store>(w: &mut World<S>, time: u64, key: PublicKey, admitted: bool, name: &str) {
    let authority = SigningKey::from_text(&w.authority.to_text()).expect("key");
    w.submit_as(
        Signer::Authority,
        &authority,
        time,
        Payload::NetworkPeer(NetworkPeer {
            key,
            admitted,
            name: name.into(),
        }),
    )
    .expect("an authority changes the peers");
}

/// Commits the next block holding one claim, as a network node commits a final block: with the
/// certificate that finalized it.
fn commit_with_certificate<S: Store>(w: &mut World<S>, time: u64, certificate: &[u8]) {
    let org = w.org(&format!("org-{time}"));
    let key = SigningKey::from_text(&w.keys[&org].to_text()).expect("key");
    let tx = Transaction::sign(
        w.chain_id,
        time,
        Signer::Resource(org),
        &key,
        claim(org, &time.to_be_bytes()),
    )
    .expect("tx");
    let assembled = {
        let snapshot = w.ledger.store().snapshot().expect("snapshot");
        weft_ledger::ledger::assemble(
            &snapshot,
            w.chain_id,
            w.ledger.head(),
            weft_ledger::Admitted::check(vec![tx]),
            &w.producer,
            time,
        )
        .expect("assembled")
    };
    assert!(assembled.rejected.is_empty(), "{:?}", assembled.rejected);
    w.ledger
        .commit_final(
            &assembled.block,
            &assembled.validated,
            None,
            Some(certificate),
        )
        .expect("committed");
}

/// The admitted peers (by key, with their names) and the certificates (by height), read back.
type NetworkOf = (Option<Vec<(PublicKey, String)>>, Vec<(u64, Vec<u8>)>);

fn network_of<S: Store>(store: &S) -> NetworkOf {
    let peers = store
        .network_peers()
        .expect("read")
        .map(|peers| peers.into_iter().collect());
    let head = store.head().expect("read").expect("head").header.height;
    let mut certificates = Vec::new();
    let mut to = head;
    while let Some((height, bytes)) = store.certificate_in(0, to).expect("read") {
        certificates.push((height, bytes));
        if height == 0 {
            break;
        }
        to = height - 1;
    }
    certificates.reverse();
    (peers, certificates)
}

#[test]
fn certificates_and_admitted_peers_are_kept_with_their_blocks_and_survive_a_reopen() {
    fn run<S: Store>(w: &mut World<S>) {
        let a = SigningKey::from_seed(&[71; 32]).public_key();
        let b = SigningKey::from_seed(&[72; 32]).public_key();
        peer_change(w, T0 + 1, a, true, "archive-a");
        peer_change(w, T0 + 2, b, true, "archive-b");
        commit_with_certificate(w, T0 + 3, b"certificate of the first final block");
        peer_change(w, T0 + 4, a, false, "archive-a");
        peer_change(w, T0 + 5, b, true, "archive-b2");
        commit_with_certificate(w, T0 + 6, b"certificate of the second");
    }
    let b = SigningKey::from_seed(&[72; 32]).public_key();
    let mut memory = World::new();
    run(&mut memory);
    let expected = network_of(memory.ledger.store());
    assert_eq!(expected.0, Some(vec![(b, "archive-b2".to_string())]));
    let heights: Vec<u64> = expected.1.iter().map(|(height, _)| *height).collect();
    assert_eq!(heights.len(), 2, "two blocks came with a certificate");
    assert_eq!(
        expected.1[1].1,
        b"certificate of the second".to_vec(),
        "the last certificate is the second block's"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let mut w = World::with_store(RedbStore::open(&path).expect("open"));
    run(&mut w);
    assert_eq!(network_of(w.ledger.store()), expected, "redb as memory");
    drop(w);
    let reopened = Ledger::open(RedbStore::open(&path).expect("reopen")).expect("chain");
    assert_eq!(network_of(reopened.store()), expected, "after a reopen");
    assert_eq!(
        reopened
            .store()
            .certificate_in(heights[0] + 1, heights[1] - 1)
            .expect("read"),
        None,
        "no certificate between the two"
    );
}

#[test]
fn a_ledger_without_a_network_record_adopts_one_as_of_its_head_then_keeps_it() {
    let a = SigningKey::from_seed(&[81; 32]).public_key();
    let b = SigningKey::from_seed(&[82; 32]).public_key();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let mut w = World::with_store(RedbStore::open(&path).expect("open"));
    peer_change(&mut w, T0 + 1, a, true, "a");
    let head = w.ledger.head().header.height;
    drop(w);
    // A ledger written before stores kept a network record: no `peers_through`.
    {
        let db = redb::Database::open(&path).expect("raw open");
        let txn = db.begin_write().expect("write");
        txn.delete_table(redb::TableDefinition::<&str, u64>::new("network_meta"))
            .expect("delete");
        txn.commit().expect("commit");
    }
    let mut ledger = Ledger::open(RedbStore::open(&path).expect("reopen")).expect("chain");
    assert_eq!(ledger.store().network_peers().expect("read"), None);

    let mut record = weft_ledger::store::network::NetworkRecord {
        through: head + 1,
        ..Default::default()
    };
    record.peers.insert(a, "a".into());
    record.certificates.push((head, b"kept beside".to_vec()));
    let refused = ledger
        .adopt_network_record(&record)
        .expect_err("not as of the head");
    assert!(refused.to_string().contains("whose head is"), "{refused}");
    record.through = head;
    ledger.adopt_network_record(&record).expect("adopted");
    let mut other = record.clone();
    other.peers.clear();
    ledger
        .adopt_network_record(&other)
        .expect("a second record is ignored");
    assert_eq!(
        ledger.store().certificate_in(0, head).expect("read"),
        Some((head, b"kept beside".to_vec()))
    );

    // From now on each block keeps it.
    let mut w = World {
        ledger,
        authority: SigningKey::from_seed(&[1; 32]),
        producer: SigningKey::from_seed(&[2; 32]),
        chain_id: weft_core::ChainId::from_name("test").expect("name"),
        keys: Default::default(),
        seed: 90,
        merge_step: None,
    };
    peer_change(&mut w, T0 + 2, b, true, "b");
    let peers: Vec<_> = w
        .ledger
        .store()
        .network_peers()
        .expect("read")
        .expect("kept")
        .into_iter()
        .collect();
    let mut expected = vec![(a, "a".to_string()), (b, "b".to_string())];
    expected.sort();
    assert_eq!(peers, expected);
}

/// A record is found by its body's fingerprint (layout 5); a file of layout 4, which did not
/// index records so, is upgraded in place when opened, and audits clean.
#[test]
fn records_are_found_by_content_and_layout_4_is_upgraded() {
    use redb::ReadableTable as _;
    use weft_core::model::{Payload, Record};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let body = b"spindle load 41 %, 2026-12-07T10:00Z".to_vec();
    let fingerprint = weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, &body);
    {
        let mut w = World::with_store(RedbStore::open(&path).expect("open"));
        let machine = w.org("machine");
        // A claim too: its owner moves from the owners table into its history.
        w.submit(machine, T0 + 1, claim(machine, b"the machine's drawing"))
            .expect("claim");
        let id = w
            .submit(
                machine,
                T0 + 5,
                Payload::Record(Record {
                    issuer: machine,
                    content_type: "text/plain".into(),
                    product_code: None,
                    body: body.clone(),
                }),
            )
            .expect("record");
        let found = w
            .ledger
            .store()
            .by_fingerprint(&fingerprint)
            .expect("index");
        assert_eq!(
            found.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            vec![id]
        );
        w.ledger.flush().expect("merge");
    }
    // As layout 4 left it: no row for the record's body, version "4", owners in a table of
    // their own and no histories (layout 6 keeps each owner in its fingerprint's history).
    {
        let db = redb::Database::open(&path).expect("open");
        let txn = db.begin_write().expect("write");
        {
            let histories: redb::TableDefinition<&[u8; 33], &[u8]> =
                redb::TableDefinition::new("histories");
            let owners: Vec<([u8; 33], Vec<u8>)> = txn
                .open_table(histories)
                .expect("histories")
                .iter()
                .expect("iterate")
                .filter_map(|row| {
                    let (key, value) = row.expect("row");
                    let history: weft_ledger::state::HistoryEntry =
                        borsh::from_slice(value.value()).expect("history");
                    history
                        .owner
                        .map(|owner| (*key.value(), borsh::to_vec(&owner).expect("encode")))
                })
                .collect();
            assert!(!owners.is_empty());
            txn.delete_table(histories).expect("drop histories");
            let definition: redb::TableDefinition<&[u8; 33], &[u8]> =
                redb::TableDefinition::new("owners");
            let mut table = txn.open_table(definition).expect("owners");
            for (key, value) in &owners {
                table.insert(key, value.as_slice()).expect("insert");
            }
        }
        {
            let definition: redb::TableDefinition<&[u8; 45], &[u8; 32]> =
                redb::TableDefinition::new("fingerprint_index");
            let mut table = txn.open_table(definition).expect("index");
            let keys: Vec<[u8; 45]> = table
                .iter()
                .expect("iterate")
                .map(|row| *row.expect("row").0.value())
                .filter(|key| key[..33] == fingerprint.key_bytes())
                .collect();
            assert_eq!(keys.len(), 1);
            table.remove(&keys[0]).expect("remove");
            let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            txn.open_table(meta)
                .expect("meta")
                .insert("storage_version", b"4".as_slice())
                .expect("version");
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("layout 4 is upgraded");
    assert_eq!(store.by_fingerprint(&fingerprint).expect("index").len(), 1);
    // The histories and owners written by the upgrade are what the blocks give, and give the
    // head's state root.
    let report = weft_ledger::audit::audit(&store, &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");
    Ledger::open(store).expect("the upgraded state gives the head's root");
}
