//! A store that follows its chain on certificates (a thin node on proofs): blocks taken with
//! filtered bodies and no rule replay, no rule state kept (and none answered), and asset
//! histories from a peer checked against its own headers — a history with a send left out, an
//! extra transaction, an altered payload, a reordering or a missing registration is refused.

mod common;

use common::*;
use weft_core::model::{Payload, SetValidators};
use weft_core::{Fingerprint, ResourceId, SigningKey, TxId};
use weft_ledger::block::Block;
use weft_ledger::history::{self, HistoryAnswer, Refused};
use weft_ledger::state::StateView as _;
use weft_ledger::store::{MemoryStore, RedbStore, Store};
use weft_ledger::{Ledger, LedgerError, Signer};

/// A chain with claims, sends, a person of the receiving organisation and a validator change.
struct Chain {
    w: World<MemoryStore>,
    maker: ResourceId,
    person: ResourceId,
    outsider: ResourceId,
    sent: Fingerprint,
    sent_twice: Fingerprint,
    validator: weft_core::PublicKey,
}

fn chain() -> Chain {
    let mut w = World::new();
    let designer = w.org("Designer");
    let maker = w.org("Maker");
    let outsider = w.org("Outsider");
    let person = w.person(maker);
    w.submit(designer, T0 + 10, claim(designer, b"bracket"))
        .expect("claim");
    w.submit(designer, T0 + 11, send(designer, maker, true, b"bracket"))
        .expect("send");
    w.submit(designer, T0 + 12, claim(designer, b"housing"))
        .expect("claim");
    w.submit(designer, T0 + 13, send(designer, maker, true, b"housing"))
        .expect("send");
    w.submit(maker, T0 + 14, send(maker, outsider, false, b"housing"))
        .expect("forwarded");
    let authority = SigningKey::from_text(&w.authority.to_text()).expect("key");
    let validator = SigningKey::from_seed(&[91; 32]).public_key();
    w.submit_as(
        Signer::Authority,
        &authority,
        T0 + 20,
        Payload::SetValidators(SetValidators {
            validators: vec![w.producer.public_key(), validator],
            from_height: 40,
        }),
    )
    .expect("scheduled");
    Chain {
        w,
        maker,
        person,
        outsider,
        sent: asset(b"bracket").fingerprint,
        sent_twice: asset(b"housing").fingerprint,
        validator,
    }
}

/// Block `height` of `ledger` as a filtered body gives it: every transaction stripped but the
/// kinds every node keeps.
fn filtered(ledger: &Ledger<MemoryStore>, height: u64) -> Block {
    let mut block = ledger.store().block(height).expect("read").expect("block");
    for tx in &mut block.transactions {
        if !weft_ledger::filter::ALWAYS_KEPT.contains(&tx.header.kind) {
            *tx = tx.stripped();
        }
    }
    block
}

/// A follower of `chain` on a redb store, through `through` (every block when `None`).
fn follower(chain: &Chain, dir: &std::path::Path, through: Option<u64>) -> Ledger<RedbStore> {
    let full = &chain.w.ledger;
    let block0 = full.store().block(0).expect("read").expect("block 0");
    let mut thin = Ledger::from_genesis_block(
        RedbStore::open(&dir.join("ledger.redb")).expect("store"),
        &block0,
    )
    .expect("block 0 checked like any other");
    let last = through.unwrap_or(full.head().header.height);
    for height in 1..=last {
        let ids = thin
            .commit_certified(&filtered(full, height), None, Some(b"certificate"))
            .expect("taken on its certificate");
        assert_eq!(
            ids.len() as u32,
            full.store()
                .signed_header(height)
                .expect("read")
                .expect("header")
                .header
                .tx_count
        );
    }
    thin
}

#[test]
fn a_follower_on_certificates_keeps_headers_and_the_schedule_and_refuses_rule_questions() {
    let chain = chain();
    let dir = tempfile::tempdir().expect("tempdir");
    let thin = follower(&chain, dir.path(), None);
    let full = &chain.w.ledger;
    assert_eq!(thin.head(), full.head());
    assert!(!thin.store().keeps_rule_state());
    // The transactions are there, stripped (their ids and places still answer).
    let claim_id = full
        .store()
        .snapshot()
        .expect("snapshot")
        .owner(&chain.sent)
        .expect("read")
        .expect("claimed")
        .tx_id;
    let (stored, position) = thin.store().tx(&claim_id).expect("read").expect("indexed");
    assert!(stored.payload.is_none(), "stored as it came: stripped");
    assert_eq!(
        Some(position),
        full.store().tx_position(&claim_id).expect("read")
    );
    // The validator change, from the one kind of transaction every node keeps whole.
    let schedule = thin
        .store()
        .snapshot()
        .expect("snapshot")
        .schedule()
        .expect("schedule");
    assert_eq!(
        schedule,
        full.store()
            .snapshot()
            .expect("snapshot")
            .schedule()
            .expect("schedule")
    );
    assert!(
        schedule
            .validators(schedule.epoch_of(40))
            .contains(&chain.validator)
    );
    // Rule state is refused, not answered from the genesis-only tables.
    let snapshot = thin.store().snapshot().expect("snapshot");
    for refused in [
        snapshot.owner(&chain.sent).map(|_| ()),
        snapshot.resource(&chain.maker).map(|_| ()),
        snapshot.history(&chain.sent).map(|_| ()),
        thin.store().state_root().map(|_| ()),
    ] {
        match refused {
            Err(LedgerError::NotKept(message)) => {
                assert!(message.contains("keeps no rule state"), "{message}")
            }
            other => panic!("a store on certificates answered rule state: {other:?}"),
        }
    }
    drop(snapshot);
    // Reopened, it is the same: no state root to compare, still no rule state.
    let head = thin.head().clone();
    drop(thin);
    let reopened = Ledger::open(RedbStore::open(&dir.path().join("ledger.redb")).expect("store"))
        .expect("a store on certificates opens");
    assert_eq!(reopened.head(), &head);
    assert!(!reopened.store().keeps_rule_state());
    // Its audit checks every link, root, seal and signature it can; the rules it cannot replay.
    let report = weft_ledger::audit::audit(reopened.store(), &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");
    assert!(report.stripped > 0, "{report:?}");
}

#[test]
fn a_block_that_does_not_hold_together_is_not_taken_on_a_certificate() {
    let chain = chain();
    let full = &chain.w.ledger;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut thin = follower(&chain, dir.path(), Some(3));
    let bad = |thin: &mut Ledger<RedbStore>, block: Block, says: &str| match thin
        .commit_certified(&block, None, None)
    {
        Err(LedgerError::BadBlock { reason, .. }) => {
            assert!(reason.contains(says), "{reason}")
        }
        other => panic!("taken: {other:?}"),
    };
    // A transaction left out of the body: the header's Merkle root is not given.
    let mut short = filtered(full, 4);
    short.transactions.pop();
    bad(&mut thin, short, "Merkle root");
    // The validator change stripped: every node keeps those whole.
    let change = (1..=full.head().header.height)
        .find(|height| {
            full.store()
                .block(*height)
                .expect("read")
                .expect("block")
                .transactions
                .iter()
                .any(|tx| matches!(tx.payload, Some(Payload::SetValidators(_))))
        })
        .expect("a block with the change");
    let mut stripped = full.store().block(change).expect("read").expect("block");
    for tx in &mut stripped.transactions {
        *tx = tx.stripped();
    }
    let mut behind = follower(
        &chain,
        tempfile::tempdir().expect("tempdir").path(),
        Some(change - 1),
    );
    bad(&mut behind, stripped, "SetValidators");
    // A block that does not follow the head.
    bad(&mut thin, filtered(full, 6), "does not follow the head");
    // Once on certificates, a store does not take rule state again.
    let block = full.store().block(4).expect("read").expect("block");
    match thin.import_block(&block) {
        Err(LedgerError::NotKept(_)) => {}
        other => panic!("a store on certificates replayed rules on its stale state: {other:?}"),
    }
    assert_eq!(thin.head().header.height, 3, "nothing was written");
}

#[test]
fn a_history_from_a_peer_is_taken_only_if_it_is_the_one_the_state_root_commits_to() {
    let chain = chain();
    let full = &chain.w.ledger;
    let dir = tempfile::tempdir().expect("tempdir");
    let thin = follower(&chain, dir.path(), None);
    let ask = |fingerprint: &Fingerprint, recipient: Option<ResourceId>| {
        history::answer(full.store(), fingerprint, recipient)
            .expect("read")
            .expect("a full store answers")
    };
    let check =
        |fingerprint: &Fingerprint, recipient: Option<ResourceId>, answer: HistoryAnswer| {
            history::check(thin.store(), fingerprint, recipient, answer)
        };
    let lie = |result: Result<history::CheckedHistory, Refused>, says: &str| match result {
        Err(Refused::Lie(reason)) => assert!(reason.contains(says), "{reason}"),
        other => panic!("taken: {other:?}"),
    };
    // The honest answers check out: every transaction naming the asset, with its place.
    for (fingerprint, count) in [(chain.sent, 2), (chain.sent_twice, 3)] {
        let checked = check(
            &fingerprint,
            Some(chain.person),
            ask(&fingerprint, Some(chain.person)),
        )
        .expect("an honest history");
        assert_eq!(checked.transactions.len(), count);
        let positions: Vec<_> = full
            .store()
            .by_fingerprint(&fingerprint)
            .expect("index")
            .into_iter()
            .map(|(position, _)| position)
            .collect();
        assert_eq!(
            checked
                .transactions
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>(),
            positions
        );
        assert!(checked.registration.is_some(), "the person's registration");
    }
    // Nobody named this: an empty history, proven absent.
    let nobody = asset(b"never made").fingerprint;
    let checked = check(&nobody, None, ask(&nobody, None)).expect("proven absent");
    assert!(checked.transactions.is_empty());

    // A send left out (the forward to the outsider): not the committed history.
    let mut answer = ask(&chain.sent_twice, None);
    answer.transactions.pop();
    lie(check(&chain.sent_twice, None, answer), "left out or added");
    // Everything left out, a claimed asset said to be unknown.
    let mut answer = ask(&chain.sent, None);
    answer.transactions.clear();
    lie(check(&chain.sent, None, answer), "left out or added");
    // A transaction about another asset slipped in.
    let mut answer = ask(&chain.sent, None);
    let other = ask(&chain.sent_twice, None).transactions.remove(2);
    answer.transactions.push(other);
    lie(check(&chain.sent, None, answer), "not about");
    // The order changed.
    let mut answer = ask(&chain.sent, None);
    answer.transactions.swap(0, 1);
    lie(check(&chain.sent, None, answer), "not in ledger order");
    // A payload altered (the send now names the outsider): not the signed one.
    let mut answer = ask(&chain.sent, None);
    if let Some(Payload::SendProductData(send)) = &mut answer.transactions[1].payload {
        send.to = chain.outsider;
    }
    lie(check(&chain.sent, None, answer), "not the signed one");
    // Sent stripped: nothing to recompute a verdict from.
    let mut answer = ask(&chain.sent, None);
    answer.transactions[0] = answer.transactions[0].stripped();
    lie(check(&chain.sent, None, answer), "stripped");
    // The proof of another asset's leaf.
    let mut answer = ask(&chain.sent, None);
    answer.proof = ask(&chain.sent_twice, None).proof;
    lie(check(&chain.sent, None, answer), "left out or added");
    // The recipient's registration left out although it is on the chain, or another one sent.
    let mut answer = ask(&chain.sent, Some(chain.person));
    answer.registration = None;
    lie(
        check(&chain.sent, Some(chain.person), answer),
        "left out the registration",
    );
    let mut answer = ask(&chain.sent, Some(chain.person));
    answer.registration = full
        .store()
        .tx(&TxId(chain.outsider.0))
        .expect("read")
        .map(|(tx, _)| tx);
    lie(
        check(&chain.sent, Some(chain.person), answer),
        "not the one of",
    );
    // Read at a block this follower has not taken yet: checked again later, not refused.
    let behind = follower(
        &chain,
        tempfile::tempdir().expect("tempdir").path(),
        Some(4),
    );
    match history::check(behind.store(), &chain.sent, None, ask(&chain.sent, None)) {
        Err(Refused::Ahead(height)) => assert_eq!(height, full.head().header.height),
        other => panic!("{other:?}"),
    }
    // A store on certificates has no history to give.
    assert!(
        history::answer(thin.store(), &chain.sent, None)
            .expect("read")
            .is_none()
    );
}

#[test]
fn a_store_holding_a_history_stripped_gives_no_part_of_it() {
    // A thin node by the rules: the whole rule state, the claims and sends stored stripped.
    let chain = chain();
    let full = &chain.w.ledger;
    let block0 = full.store().block(0).expect("read").expect("block 0");
    let mut thin = Ledger::from_genesis_block(MemoryStore::new(), &block0).expect("block 0");
    for height in 1..=full.head().header.height {
        let block = full.store().block(height).expect("read").expect("block");
        let validated = {
            let snapshot = thin.store().snapshot().expect("snapshot");
            weft_ledger::ledger::validate_block(
                &snapshot,
                thin.chain_id(),
                Some(thin.head()),
                &block,
            )
            .expect("valid")
        };
        let keep = vec![false; block.transactions.len()];
        thin.commit_validated_keeping(&block, &validated, Some(&keep))
            .expect("committed");
    }
    assert!(thin.store().keeps_rule_state());
    // It knows the history is there, but cannot send it whole: it sends nothing, not a part.
    assert!(
        thin.store()
            .snapshot()
            .expect("snapshot")
            .history(&chain.sent)
            .expect("read")
            .is_some()
    );
    assert!(
        history::answer(thin.store(), &chain.sent, None)
            .expect("read")
            .is_none()
    );
    // Nobody named this one: an empty history it can prove.
    let nobody = asset(b"never made").fingerprint;
    let answer = history::answer(thin.store(), &nobody, None)
        .expect("read")
        .expect("an empty history needs no payload");
    assert!(answer.transactions.is_empty());
}
