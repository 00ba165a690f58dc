//! Rule tables: every clause of rules 1–3, the Type C rule, keys, acting-for and the time window,
//! positive and negative.

mod common;

use common::*;
use weft_core::model::*;
use weft_core::{ChainId, ResourceId, SigningKey};
use weft_ledger::state::StateView as _;
use weft_ledger::store::{MemoryStore, Store};
use weft_ledger::{RuleError, Signer, Transaction};

fn rule_of(result: Result<weft_core::TxId, RuleError>) -> (&'static str, String) {
    let error = result.expect_err("must be rejected");
    (error.rule(), error.to_string())
}

#[test]
fn rule1_owner_may_send_only_strictly_after_its_claim() {
    let mut w = World::new();
    let designer = w.org("designer");
    let maker = w.org("maker");
    w.submit(designer, T0 + 10, claim(designer, b"design"))
        .expect("claim");

    let (rule, message) =
        rule_of(w.submit(designer, T0 + 10, send(designer, maker, false, b"design")));
    assert_eq!(rule, "rule-1");
    assert!(message.starts_with("rule 1c:"), "{message}");
    let (rule, _) = rule_of(w.submit(designer, T0 + 5, send(designer, maker, false, b"design")));
    assert_eq!(rule, "rule-1");
    w.submit(designer, T0 + 11, send(designer, maker, false, b"design"))
        .expect("strictly later send is valid");
}

#[test]
fn rule1_send_of_unclaimed_data_is_refused() {
    let mut w = World::new();
    let designer = w.org("designer");
    let maker = w.org("maker");
    let (rule, message) = rule_of(w.submit(
        designer,
        T0 + 1,
        send(designer, maker, true, b"never claimed"),
    ));
    assert_eq!(rule, "rule-1");
    assert!(
        message.contains("rule 1a") && message.contains("no RecordOwnership"),
        "{message}"
    );
}

#[test]
fn rule2_three_hop_forward_chain_then_forward_false_stops_it() {
    let mut w = World::new();
    let designer = w.org("designer");
    let m1 = w.org("m1");
    let m2 = w.org("m2");
    let m3 = w.org("m3");
    let m4 = w.org("m4");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    w.submit(designer, T0 + 2, send(designer, m1, true, b"d"))
        .expect("hop 1");
    w.submit(m1, T0 + 3, send(m1, m2, true, b"d"))
        .expect("hop 2 by forward right");
    w.submit(m2, T0 + 4, send(m2, m3, false, b"d"))
        .expect("hop 3 by forward right");
    let (rule, message) = rule_of(w.submit(m3, T0 + 5, send(m3, m4, false, b"d")));
    assert_eq!(rule, "rule-2");
    assert_eq!(
        message,
        "rule 2b: sender received this data without the right to forward it (forward = false)"
    );
}

#[test]
fn rule2_forward_false_in_the_middle_of_a_chain() {
    let mut w = World::new();
    let designer = w.org("designer");
    let m1 = w.org("m1");
    let m2 = w.org("m2");
    let m3 = w.org("m3");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    w.submit(designer, T0 + 2, send(designer, m1, false, b"d"))
        .expect("send without forward");
    let (rule, _) = rule_of(w.submit(m1, T0 + 3, send(m1, m2, true, b"d")));
    assert_eq!(rule, "rule-2");
    // m2 never got a valid copy, so its own forward fails too.
    let (rule, _) = rule_of(w.submit(m2, T0 + 4, send(m2, m3, true, b"d")));
    assert_eq!(rule, "rule-1-2");
}

#[test]
fn rule2_forward_needs_a_strictly_earlier_receipt() {
    let mut w = World::new();
    let designer = w.org("designer");
    let m1 = w.org("m1");
    let m2 = w.org("m2");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    w.submit(designer, T0 + 5, send(designer, m1, true, b"d"))
        .expect("send");
    let (rule, message) = rule_of(w.submit(m1, T0 + 5, send(m1, m2, false, b"d")));
    assert_eq!(rule, "rule-2");
    assert!(message.starts_with("rule 2d:"), "{message}");
    w.submit(m1, T0 + 6, send(m1, m2, false, b"d"))
        .expect("later forward is valid");
}

#[test]
fn rule2_rights_are_per_fingerprint() {
    let mut w = World::new();
    let designer = w.org("designer");
    let m1 = w.org("m1");
    let m2 = w.org("m2");
    w.submit(designer, T0 + 1, claim(designer, b"a"))
        .expect("claim a");
    w.submit(designer, T0 + 1, claim(designer, b"b"))
        .expect("claim b");
    w.submit(designer, T0 + 2, send(designer, m1, true, b"a"))
        .expect("send a with forward");
    let (rule, message) = rule_of(w.submit(m1, T0 + 3, send(m1, m2, false, b"b")));
    assert_eq!(rule, "rule-1-2", "{message}");
}

#[test]
fn rule3_duplicate_and_conflicting_claims() {
    let mut w = World::new();
    let designer = w.org("designer");
    let thief = w.org("thief");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    let (rule, message) = rule_of(w.submit(designer, T0 + 2, claim(designer, b"d")));
    assert_eq!(rule, "rule-3");
    assert!(message.contains("duplicate claim"), "{message}");
    let (rule, message) = rule_of(w.submit(thief, T0 + 2, claim(thief, b"d")));
    assert_eq!(rule, "rule-3");
    assert!(message.contains("conflicting claim"), "{message}");
    // Equal timestamp, or an older timestamp that arrives later, must not create a second owner.
    let (rule, _) = rule_of(w.submit(thief, T0 + 1, claim(thief, b"d")));
    assert_eq!(rule, "rule-3");
    let (rule, _) = rule_of(w.submit(thief, T0, claim(thief, b"d")));
    assert_eq!(rule, "rule-3");
}

#[test]
fn rule3_same_content_under_another_algorithm_is_another_fingerprint() {
    let mut w = World::new();
    let designer = w.org("designer");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    let mut other = asset(b"d");
    other.fingerprint = weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Blake3, b"d");
    w.submit(
        designer,
        T0 + 2,
        Payload::RecordOwnership(RecordOwnership {
            issuer: designer,
            product_data: other,
        }),
    )
    .expect("distinct fingerprint");
}

#[test]
fn person_acts_for_its_organisation_but_not_for_another() {
    let mut w = World::new();
    let designer = w.org("designer");
    let maker = w.org("maker");
    let alice = w.person(designer);
    let bob = w.person(maker);
    w.submit(alice, T0 + 1, claim(designer, b"d"))
        .expect("alice claims for designer");
    // The organisation is the owner: the organisation itself (or another of its people) can send.
    w.submit(designer, T0 + 2, send(designer, maker, true, b"d"))
        .expect("organisation sends");
    w.submit(bob, T0 + 3, send(maker, designer, false, b"d"))
        .expect("bob forwards for maker");
    let (rule, message) = rule_of(w.submit(bob, T0 + 4, claim(designer, b"other")));
    assert_eq!(rule, "acting");
    assert!(message.contains("neither the issuer"), "{message}");
    // A person claiming in its own name is the issuer itself.
    w.submit(alice, T0 + 5, claim(alice, b"alice's own"))
        .expect("person as issuer");
}

#[test]
fn revoked_and_rotated_keys() {
    let mut w = World::new();
    let designer = w.org("designer");
    let alice = w.person(designer);
    let alice_key = w.keys[&alice].public_key();
    w.submit(
        designer,
        T0 + 1,
        Payload::RevokeKey(RevokeKey {
            resource: alice,
            key: alice_key,
        }),
    )
    .expect("org revokes alice's key");
    let (rule, message) = rule_of(w.submit(alice, T0 + 2, claim(designer, b"d")));
    assert_eq!(rule, "key");
    assert!(message.contains("revoked"), "{message}");

    let new_key = w.fresh_key();
    w.submit(
        designer,
        T0 + 3,
        Payload::RotateKey(RotateKey {
            resource: designer,
            new_key: new_key.public_key(),
        }),
    )
    .expect("rotate");
    let (rule, _) = rule_of(w.submit(designer, T0 + 4, claim(designer, b"d")));
    assert_eq!(rule, "key", "the old key is revoked by the rotation");
    w.keys.insert(designer, new_key);
    w.submit(designer, T0 + 5, claim(designer, b"d"))
        .expect("new key works");
}

#[test]
fn keys_that_cannot_sign_are_not_registered_or_rotated_in() {
    let mut w = World::new();
    let designer = w.org("designer");
    // The identity point: of small order, it would accept a forged signature on every message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = weft_core::PublicKey(identity);
    let person = PersonInOrganization {
        first_name: None,
        last_name: None,
        email: None,
        belongs_to: designer,
    };
    let (rule, message) = rule_of(w.submit(
        designer,
        T0 + 1,
        Payload::RegisterResource(RegisterResource {
            resource: Resource::PersonInOrganization(person),
            key: weak,
        }),
    ));
    assert_eq!(rule, "key");
    assert!(message.contains("small order"), "{message}");
    let not_a_point = (2u8..=255)
        .map(|y| {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            weft_core::PublicKey(bytes)
        })
        .find(|key| {
            key.check_usable()
                .is_err_and(|error| error.to_string().contains("not the encoding of a point"))
        })
        .expect("some small y is not on the curve");
    let (rule, message) = rule_of(w.submit(
        designer,
        T0 + 2,
        Payload::RotateKey(RotateKey {
            resource: designer,
            new_key: not_a_point,
        }),
    ));
    assert_eq!(rule, "key");
    assert!(message.contains("not the encoding of a point"), "{message}");
    w.submit(designer, T0 + 3, claim(designer, b"d"))
        .expect("the old key still signs: nothing was rotated");
}

#[test]
fn unregistered_signer_key_and_recipient() {
    let mut w = World::new();
    let designer = w.org("designer");
    let stranger = SigningKey::from_seed(&[99; 32]);
    let (rule, _) = rule_of(w.submit_as(
        Signer::Resource(designer),
        &stranger,
        T0 + 1,
        claim(designer, b"d"),
    ));
    assert_eq!(rule, "key");
    let ghost = ResourceId(weft_core::Hash32([7; 32]));
    let (rule, _) = rule_of(w.submit_as(
        Signer::Resource(ghost),
        &stranger,
        T0 + 1,
        claim(ghost, b"d"),
    ));
    assert_eq!(rule, "resource");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    let (rule, message) = rule_of(w.submit(designer, T0 + 2, send(designer, ghost, false, b"d")));
    assert_eq!(rule, "resource");
    assert!(message.contains("recipient"), "{message}");
    let (rule, _) =
        rule_of(w.submit_as(Signer::Authority, &stranger, T0 + 1, claim(designer, b"e")));
    assert_eq!(rule, "key");
}

#[test]
fn type_c_parts_transfer_once_per_owner() {
    let mut w = World::new();
    let a = w.org("a");
    let b = w.org("b");
    let c = w.org("c");
    let register = Payload::RegisterPart(RegisterPart {
        owner: a,
        code: "SN-001".into(),
        description: None,
    });
    w.submit(a, T0 + 1, register.clone()).expect("register");
    let (rule, _) = rule_of(w.submit(a, T0 + 2, register));
    assert_eq!(rule, "type-c");
    let transfer = |from, to| {
        Payload::TransferPart(TransferPart {
            code: "SN-001".into(),
            from,
            to,
        })
    };
    w.submit(a, T0 + 3, transfer(a, b))
        .expect("a transfers to b");
    let (rule, message) = rule_of(w.submit(a, T0 + 4, transfer(a, c)));
    assert_eq!(rule, "type-c");
    assert!(message.contains("not the current owner"), "{message}");
    w.submit(b, T0 + 5, transfer(b, c))
        .expect("b transfers to c");
    let (rule, _) = rule_of(w.submit(c, T0 + 5, transfer(c, a)));
    assert_eq!(rule, "type-c", "equal timestamp is not later");
    let (rule, _) = rule_of(w.submit(
        a,
        T0 + 6,
        Payload::TransferPart(TransferPart {
            code: "SN-404".into(),
            from: a,
            to: b,
        }),
    ));
    assert_eq!(rule, "type-c");
}

#[test]
fn time_window_is_enforced_both_ways() {
    let mut w = World::new();
    let designer = w.org("designer");
    let now = T0 + 1_000;
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    let future = Transaction::sign(
        w.chain_id,
        now + WINDOW + 1,
        Signer::Resource(designer),
        &key,
        claim(designer, b"f"),
    )
    .expect("tx");
    let (rule, message) = rule_of(w.submit_tx(future, now));
    assert_eq!(rule, "time-window");
    assert!(message.contains("ahead of"), "{message}");
    let past = Transaction::sign(
        w.chain_id,
        now - WINDOW - 1,
        Signer::Resource(designer),
        &key,
        claim(designer, b"p"),
    )
    .expect("tx");
    let (rule, message) = rule_of(w.submit_tx(past, now));
    assert_eq!(rule, "time-window");
    assert!(message.contains("behind"), "{message}");
    let edge = Transaction::sign(
        w.chain_id,
        now + WINDOW,
        Signer::Resource(designer),
        &key,
        claim(designer, b"e"),
    )
    .expect("tx");
    w.submit_tx(edge, now).expect("the window is inclusive");
}

#[test]
fn bad_signature_replay_and_wrong_chain() {
    let mut w = World::new();
    let designer = w.org("designer");
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    let mut forged = Transaction::sign(
        w.chain_id,
        T0 + 1,
        Signer::Resource(designer),
        &key,
        claim(designer, b"d"),
    )
    .expect("tx");
    forged.signature.0[10] ^= 1;
    let (rule, _) = rule_of(w.submit_tx(forged, T0 + 1));
    assert_eq!(rule, "signature");

    let good = Transaction::sign(
        w.chain_id,
        T0 + 1,
        Signer::Resource(designer),
        &key,
        claim(designer, b"d"),
    )
    .expect("tx");
    w.submit_tx(good.clone(), T0 + 1).expect("first time");
    let (rule, message) = rule_of(w.submit_tx(good, T0 + 2));
    assert_eq!(rule, "format");
    assert!(message.contains("replay"), "{message}");

    let other_chain = ChainId::from_name("other").expect("name");
    let foreign = Transaction::sign(
        other_chain,
        T0 + 1,
        Signer::Resource(designer),
        &key,
        claim(designer, b"x"),
    )
    .expect("tx");
    let (rule, _) = rule_of(w.submit_tx(foreign, T0 + 1));
    assert_eq!(rule, "chain");
}

#[test]
fn claim_and_send_in_one_block_follow_block_order() {
    let mut w = World::new();
    let designer = w.org("designer");
    let maker = w.org("maker");
    let key = SigningKey::from_text(&w.keys[&designer].to_text()).expect("key");
    let sign = |time, payload| {
        Transaction::sign(w.chain_id, time, Signer::Resource(designer), &key, payload).expect("tx")
    };
    // The send comes first in the batch: at that point no claim exists, so it is refused even
    // though its timestamp is later than the claim's.
    let batch = vec![
        sign(T0 + 2, send(designer, maker, false, b"d")),
        sign(T0 + 1, claim(designer, b"d")),
        sign(T0 + 3, send(designer, maker, true, b"d")),
    ];
    let outcome = w
        .ledger
        .produce_block(batch, &w.producer, T0 + 3)
        .expect("storage");
    assert_eq!(outcome.accepted.len(), 2);
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(outcome.rejected[0].0, 0);
    assert_eq!(outcome.rejected[0].2.rule(), "rule-1");
}

#[test]
fn organisations_are_registered_by_authorities_and_people_by_their_organisation() {
    let mut w = World::new();
    let designer = w.org("designer");
    let maker = w.org("maker");
    let key = w.fresh_key();
    let org = Organization {
        name: None,
        website: None,
        address: Address {
            town: "T".into(),
            country: "C".into(),
            ..Address::default()
        },
    };
    let (rule, _) = rule_of(w.submit(
        designer,
        T0 + 1,
        Payload::RegisterResource(RegisterResource {
            resource: Resource::Organization(org),
            key: key.public_key(),
        }),
    ));
    assert_eq!(rule, "acting");
    let person = PersonInOrganization {
        first_name: None,
        last_name: None,
        email: None,
        belongs_to: designer,
    };
    let (rule, _) = rule_of(w.submit(
        maker,
        T0 + 1,
        Payload::RegisterResource(RegisterResource {
            resource: Resource::PersonInOrganization(person),
            key: key.public_key(),
        }),
    ));
    assert_eq!(rule, "acting");
}

#[test]
fn check_answers_like_commit_but_writes_nothing() {
    let mut w = World::new();
    let designer = w.org("designer");
    let thief = w.org("thief");
    w.submit(designer, T0 + 1, claim(designer, b"d"))
        .expect("claim");
    let head = w.ledger.head().clone();
    let key = SigningKey::from_text(&w.keys[&thief].to_text()).expect("key");
    let steal = Transaction::sign(
        w.chain_id,
        T0 + 2,
        Signer::Resource(thief),
        &key,
        claim(thief, b"d"),
    )
    .expect("tx");
    let error = w.ledger.check(&steal, T0 + 2).expect_err("rule 3 conflict");
    assert!(
        error.to_string().starts_with("rule 3: conflicting claim"),
        "{error}"
    );
    let fine = Transaction::sign(
        w.chain_id,
        T0 + 2,
        Signer::Resource(thief),
        &key,
        claim(thief, b"own"),
    )
    .expect("tx");
    w.ledger.check(&fine, T0 + 2).expect("valid");
    let mut forged = fine.clone();
    forged.signature.0[1] ^= 1;
    let error = w.ledger.check(&forged, T0 + 2).expect_err("bad signature");
    assert!(error.to_string().starts_with("signature:"), "{error}");
    assert_eq!(w.ledger.head(), &head, "check commits nothing");
    assert!(w.ledger.store().tx(&fine.id()).expect("read").is_none());
    // The checked transaction can still be committed afterwards.
    w.submit_tx(fine, T0 + 2).expect("commits");
}

#[test]
fn only_an_authority_admits_or_removes_network_peers() {
    let mut w = World::new();
    let designer = w.org("designer");
    let node = w.fresh_key();
    let admit = |admitted| {
        Payload::NetworkPeer(NetworkPeer {
            key: node.public_key(),
            admitted,
            name: "archive-1".into(),
        })
    };
    let (rule, message) = rule_of(w.submit(designer, T0 + 1, admit(true)));
    assert_eq!(rule, "acting");
    assert!(message.contains("network authority"), "{message}");

    let authority = SigningKey::from_text(&w.authority.to_text()).expect("key");
    w.submit_as(Signer::Authority, &authority, T0 + 2, admit(true))
        .expect("an authority admits a peer");
    w.submit_as(Signer::Authority, &authority, T0 + 3, admit(false))
        .expect("and removes it");

    let empty_name = Payload::NetworkPeer(NetworkPeer {
        key: node.public_key(),
        admitted: true,
        name: String::new(),
    });
    let refused = Transaction::sign(
        w.chain_id,
        T0 + 4,
        Signer::Authority,
        &authority,
        empty_name,
    )
    .expect_err("a peer needs a name");
    assert!(refused.to_string().contains("peer name"), "{refused}");
}

/// The validator schedule on `w`'s ledger.
fn schedule_of(w: &World<MemoryStore>) -> weft_ledger::state::Schedule {
    w.ledger
        .store()
        .snapshot()
        .expect("snapshot")
        .schedule()
        .expect("schedule")
}

fn set_validators(validators: &[&SigningKey], from_height: u64) -> Payload {
    Payload::SetValidators(SetValidators {
        validators: validators.iter().map(|key| key.public_key()).collect(),
        from_height,
    })
}

#[test]
fn validators_change_by_an_authority_at_a_later_height_and_only_from_then() {
    let mut w = World::new();
    let designer = w.org("designer");
    let (old, new) = (
        SigningKey::from_text(&w.producer.to_text()).expect("key"),
        w.fresh_key(),
    );
    let authority = SigningKey::from_text(&w.authority.to_text()).expect("key");
    let head = w.ledger.head().header.height;

    let (rule, message) = rule_of(w.submit(designer, T0 + 1, set_validators(&[&new], head + 5)));
    assert_eq!(rule, "acting");
    assert!(message.contains("network authority"), "{message}");
    // The transaction lands in block head + 1: taking effect there or earlier is refused, and
    // so is a height too far ahead to be meant.
    for (from, expected) in [
        (head + 1, "not later than the block holding it"),
        (head, "not later than the block holding it"),
        (
            head + 2 + weft_ledger::rules::MAX_SCHEDULE_AHEAD,
            "more than 1000000 blocks",
        ),
    ] {
        let (rule, message) = rule_of(w.submit_as(
            Signer::Authority,
            &authority,
            T0 + 2,
            set_validators(&[&new], from),
        ));
        assert_eq!(rule, "chain", "{message}");
        assert!(message.contains(expected), "{from}: {message}");
    }
    // Stateless checks: no validators, a key twice, height 0.
    for (payload, expected) in [
        (set_validators(&[], head + 5), "validators"),
        (set_validators(&[&new, &new], head + 5), "named twice"),
        (set_validators(&[&new], 0), "height 1 or later"),
    ] {
        let error = Transaction::sign(w.chain_id, T0 + 3, Signer::Authority, &authority, payload)
            .expect_err("refused before signing");
        assert!(error.to_string().contains(expected), "{error}");
    }

    let head = w.ledger.head().header.height;
    let from = head + 4;
    w.submit_as(
        Signer::Authority,
        &authority,
        T0 + 4,
        set_validators(&[&new], from),
    )
    .expect("an authority schedules a change");
    let schedule = schedule_of(&w);
    assert_eq!(schedule.epoch_of(from - 1), 0);
    assert_eq!(schedule.epoch_of(from), 1);
    assert_eq!(schedule.end(0), Some(from - 1));
    assert_eq!(schedule.start(1), from);
    assert_eq!(schedule.producers_at(from), &[new.public_key()]);
    assert_eq!(schedule.producers_at(from - 1), &[old.public_key()]);

    // The old producer seals every block up to the change, and no block after it.
    while w.ledger.head().header.height + 1 < from {
        w.submit(
            designer,
            T0 + 10,
            claim(designer, &w.ledger.head().header.height.to_be_bytes()),
        )
        .expect("the old producer still seals");
    }
    let tx = Transaction::sign(
        w.chain_id,
        T0 + 20,
        Signer::Resource(designer),
        &w.keys[&designer],
        claim(designer, b"after"),
    )
    .expect("tx");
    let refused = w
        .ledger
        .produce_block(vec![tx.clone()], &old, T0 + 20)
        .expect_err("the old producer is no longer one");
    assert!(
        refused.to_string().contains(&format!("at height {from}")),
        "{refused}"
    );
    // A block it seals anyway is refused by every validator.
    let snapshot = w.ledger.store().snapshot().expect("snapshot");
    let assembled = weft_ledger::ledger::assemble(
        &snapshot,
        w.chain_id,
        w.ledger.head(),
        weft_ledger::Admitted::check(vec![tx.clone()]),
        &old,
        T0 + 20,
    )
    .expect("assembled");
    let error = weft_ledger::ledger::validate_block(
        &snapshot,
        w.chain_id,
        Some(w.ledger.head()),
        &assembled.block,
    )
    .expect_err("sealed by a producer that no longer is one");
    assert!(
        error
            .to_string()
            .contains("not one of the chain's producers at height"),
        "{error}"
    );
    let outcome = w
        .ledger
        .produce_block(vec![tx], &new, T0 + 20)
        .expect("the new one seals");
    assert_eq!(outcome.accepted.len(), 1);
    let report = weft_ledger::audit::audit(w.ledger.store(), &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");
}

#[test]
fn a_scheduled_validator_change_is_replaced_or_withdrawn_until_it_takes_effect() {
    let mut w = World::new();
    let designer = w.org("designer");
    let old = SigningKey::from_text(&w.producer.to_text()).expect("key");
    let (a, b) = (w.fresh_key(), w.fresh_key());
    let authority = SigningKey::from_text(&w.authority.to_text()).expect("key");
    let head = w.ledger.head().header.height;
    let scheduled = |w: &World<MemoryStore>| -> Vec<(u64, Vec<weft_core::PublicKey>)> {
        schedule_of(w)
            .changes
            .iter()
            .map(|change| (change.from_height, change.validators.clone()))
            .collect()
    };
    let change = |w: &mut World<MemoryStore>, time: u64, keys: &[&SigningKey], from: u64| {
        w.submit_as(
            Signer::Authority,
            &authority,
            time,
            set_validators(keys, from),
        )
    };
    change(&mut w, T0 + 1, &[&a], head + 10).expect("scheduled");
    change(&mut w, T0 + 2, &[&b], head + 20).expect("a later one");
    assert_eq!(scheduled(&w).len(), 2);
    // A change at the height of the first replaces it and the one after it.
    change(&mut w, T0 + 3, &[&b], head + 10).expect("replaces both");
    assert_eq!(scheduled(&w), vec![(head + 10, vec![b.public_key()])]);
    // One after it is added, then withdrawn: the validators in effect before it, at its height.
    change(&mut w, T0 + 4, &[&a], head + 15).expect("added");
    assert_eq!(scheduled(&w).len(), 2);
    change(&mut w, T0 + 5, &[&b], head + 15).expect("withdrawn");
    assert_eq!(
        scheduled(&w),
        vec![
            (head + 10, vec![b.public_key()]),
            (head + 15, vec![b.public_key()])
        ]
    );
    // And the first withdrawn too: the producer in effect stays, whatever was scheduled.
    change(&mut w, T0 + 6, &[&old], head + 10).expect("withdrawn");
    assert_eq!(scheduled(&w), vec![(head + 10, vec![old.public_key()])]);
    while w.ledger.head().header.height < head + 12 {
        let height = w.ledger.head().header.height;
        w.submit(designer, T0 + 10, claim(designer, &height.to_be_bytes()))
            .expect("the old producer seals on");
    }
    // In effect now: too late to replace (a change starts after the block holding it).
    let (rule, message) = rule_of(change(&mut w, T0 + 20, &[&a], head + 10));
    assert_eq!(rule, "chain", "{message}");
    assert!(
        message.contains("not later than the block holding it"),
        "{message}"
    );
    // The audit follows the replacements: every block's producer checks out.
    let report = weft_ledger::audit::audit(w.ledger.store(), &mut |_, _| {}).expect("audit");
    assert!(report.ok, "{report:?}");
}

/// A block rebuilt from transactions this process verified before skips only their signatures:
/// the producer's seal, the Merkle root and every rule are still checked.
#[test]
fn a_block_of_transactions_checked_earlier_skips_only_their_signatures() {
    use weft_ledger::ledger::{Signatures, validate_block_with};
    let mut w = World::new();
    let designer = w.org("designer");
    let producer = SigningKey::from_text(&w.producer.to_text()).expect("key");
    let tx = Transaction::sign(
        w.chain_id,
        T0 + 20,
        Signer::Resource(designer),
        &w.keys[&designer],
        claim(designer, b"checked earlier"),
    )
    .expect("tx");
    let snapshot = w.ledger.store().snapshot().expect("snapshot");
    let block = weft_ledger::ledger::assemble(
        &snapshot,
        w.chain_id,
        w.ledger.head(),
        weft_ledger::Admitted::check(vec![tx]),
        &producer,
        T0 + 20,
    )
    .expect("assembled")
    .block;
    let validate = |block: &weft_ledger::block::Block, signatures| {
        validate_block_with(
            &snapshot,
            w.chain_id,
            Some(w.ledger.head()),
            block,
            signatures,
        )
    };
    for signatures in [Signatures::Verify, Signatures::CheckedEarlier] {
        validate(&block, signatures).expect("a valid block");
    }

    // The transaction's signature broken, Merkle root and seal made again.
    let mut forged = block.clone();
    forged.transactions[0].signature.0[0] ^= 1;
    let ids: Vec<_> = forged.transactions.iter().map(Transaction::id).collect();
    let mut header = forged.signed.header.clone();
    header.merkle_root = weft_ledger::block::merkle_levels(&forged.transactions, &ids).root();
    forged.signed = weft_ledger::block::SignedHeader::seal(header, &producer);
    let refused = validate(&forged, Signatures::Verify).expect_err("a forged signature");
    assert!(
        refused.to_string().contains("signature does not verify"),
        "{refused}"
    );
    validate(&forged, Signatures::CheckedEarlier)
        .expect("not verified again: the caller vouches for each signature");

    // Still checked: the seal, and the Merkle root.
    let mut unsealed = block.clone();
    unsealed.signed.signatures[0].signature.0[0] ^= 1;
    let refused = validate(&unsealed, Signatures::CheckedEarlier).expect_err("a broken seal");
    assert!(refused.to_string().contains("producer seal"), "{refused}");
    let mut other_root = block.clone();
    other_root.transactions[0].signature.0[0] ^= 1;
    let refused = validate(&other_root, Signatures::CheckedEarlier).expect_err("another root");
    assert!(refused.to_string().contains("merkle_root"), "{refused}");
}
