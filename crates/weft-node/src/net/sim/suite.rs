//! The seeded suite: schedules that must keep the network safe and live. A failing schedule
//! names its seed; `WEFT_SIM_SEED=N cargo test -p weft-node --lib net::sim::suite::replay --
//! --ignored --nocapture` runs it again, step for step.

use super::*;

/// How many seeded schedules [`every_seeded_schedule_is_safe_and_live`] runs
/// (`WEFT_SIM_SCHEDULES` to change it).
const SCHEDULES: u64 = 200;

/// The schedule of seed `seed`: 4 to 7 validators, maybe an archive and a thin node, latency
/// from 5 to 120 ms with jitter, up to 5 % of messages lost, 5 to 30 transactions, a third of
/// schedules with a partition that heals, and half with one Byzantine validator.
pub(super) fn plan_of(seed: u64) -> Plan {
    let mut choices = Choices(seed);
    let validators = 4 + choices.below(4);
    // Half of the schedules have one Byzantine validator (a network of 4 or more tolerates 1).
    const KINDS: [Byzantine; 6] = [
        Byzantine::Equivocator,
        Byzantine::Withholder,
        Byzantine::Forger,
        Byzantine::Replayer,
        Byzantine::BadBodies,
        Byzantine::AddressLiar,
    ];
    let byzantine = match choices.below(2 * KINDS.len()) {
        kind if kind < KINDS.len() => vec![(choices.below(validators), KINDS[kind])],
        _ => Vec::new(),
    };
    let partition = (choices.below(3) == 0).then(|| Partition {
        split: 1 + choices.below(validators - 1),
        at: Duration::from_millis(200 + 100 * choices.below(10) as u64),
        lasting: Duration::from_millis(500 + 500 * choices.below(10) as u64),
    });
    Plan {
        seed,
        validators,
        archives: choices.below(2),
        thins: choices.below(2),
        latency: Duration::from_millis(5 + choices.below(116) as u64),
        jitter: Duration::from_millis(choices.below(30) as u64),
        delivered: 1.0 - choices.below(6) as f64 / 100.0,
        transactions: 5 + choices.below(26),
        partition,
        byzantine,
        idle_block_ms: NetworkSection::default().idle_block_ms,
        honest_after: None,
        // Drawn last, so the draws above stay those of each seed before there were any.
        proof_thins: choices.below(2),
    }
}

fn run_or_name_seed(plan: &Plan) -> Outcome {
    match run(plan) {
        Ok(outcome) => outcome,
        Err(error) => panic!(
            "seed {} failed: {error:#}\nplan: {plan:?}\nreplay: WEFT_SIM_SEED={} cargo test -p \
             weft-node --lib net::sim::suite::replay -- --ignored --nocapture",
            plan.seed, plan.seed
        ),
    }
}

#[test]
fn every_seeded_schedule_is_safe_and_live() {
    let schedules = std::env::var("WEFT_SIM_SCHEDULES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(SCHEDULES);
    let mut committed = 0;
    for seed in 0..schedules {
        let outcome = run_or_name_seed(&plan_of(seed));
        committed += outcome.committed.len();
    }
    assert!(committed > 0);
}

/// Replays one schedule (`WEFT_SIM_SEED`), printing the plan and what it ended with.
#[test]
#[ignore = "replays the seed WEFT_SIM_SEED names"]
fn replay() {
    let seed: u64 = std::env::var("WEFT_SIM_SEED")
        .expect("WEFT_SIM_SEED names the seed to replay")
        .parse()
        .expect("WEFT_SIM_SEED is a number");
    let plan = plan_of(seed);
    eprintln!("{plan:?}");
    let outcome = run_or_name_seed(&plan);
    eprintln!("{outcome:#?}");
}

#[test]
fn the_same_seed_gives_the_same_final_state() {
    for seed in [3, 11, 12] {
        let plan = plan_of(seed);
        let first = run_or_name_seed(&plan);
        let again = run_or_name_seed(&plan);
        assert_eq!(first.state(), again.state(), "seed {seed}");
        assert_eq!(first, again, "seed {seed}");
    }
    // And another seed another schedule.
    assert_ne!(
        run_or_name_seed(&plan_of(3)).runtime,
        run_or_name_seed(&plan_of(11)).runtime
    );
}

#[test]
fn a_network_cut_in_two_halves_commits_nothing_and_goes_on_once_healed() {
    let mut plan = Plan::honest(7, 4);
    plan.transactions = 20;
    plan.partition = Some(Partition {
        split: 2,
        at: Duration::from_millis(300),
        lasting: Duration::from_secs(8),
    });
    let outcome = run_or_name_seed(&plan);
    let (at_cut, at_heal) = outcome.partitioned.expect("the partition happened");
    // Two validators of four on each side: no quorum anywhere, no block final while cut
    // (at most one that was already on its way when the links went down).
    assert!(at_heal <= at_cut + 1, "{at_cut} → {at_heal}");
    assert!(outcome.heads[0].0 > at_heal);
    assert_eq!(outcome.committed.len(), 20);
}

#[test]
fn archive_and_thin_nodes_follow_the_validators_to_the_same_head() {
    let mut plan = Plan::honest(5, 4);
    plan.archives = 1;
    plan.thins = 1;
    plan.transactions = 15;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.heads.len(), 6);
    assert!(
        outcome.heads.iter().all(|head| *head == outcome.heads[0]),
        "{:?}",
        outcome.heads
    );
}

#[test]
fn a_thin_node_on_proofs_follows_on_filtered_bodies_and_takes_a_history_that_checks_out() {
    let mut plan = Plan::honest(29, 4);
    plan.proof_thins = 1;
    plan.transactions = 15;
    let outcome = run_or_name_seed(&plan);
    // The same head as the validators (its ledger audited with theirs, check_safety): blocks
    // taken on their certificates, registrations stored stripped.
    assert_eq!(outcome.heads.len(), 5);
    assert!(
        outcome.heads.iter().all(|head| *head == outcome.heads[0]),
        "{:?}",
        outcome.heads
    );
    // A fingerprint nobody named: an empty history, proven against its own state root.
    assert_eq!(outcome.history, Some(Ok(0)), "{:?}", outcome.history);
}

#[test]
fn a_thin_node_on_proofs_refuses_histories_that_do_not_check_out_and_names_the_peers() {
    let mut plan = Plan::honest(31, 4);
    plan.proof_thins = 1;
    plan.transactions = 10;
    // Every validator adds a transaction to the histories it gives (they vote honestly).
    plan.byzantine = (0..4)
        .map(|index| (index, Byzantine::HistoryLiar))
        .collect();
    let outcome = run_or_name_seed(&plan);
    let why = match &outcome.history {
        Some(Err(why)) => why.clone(),
        other => panic!("a history that does not check out was taken: {other:?}"),
    };
    for validator in 0..4 {
        assert!(
            why.contains(&format!("peer {} ", key_of(validator))),
            "{validator} not named: {why}"
        );
    }
    assert!(why.contains("not on this chain"), "{why}");
    // Each liar is cut off by the thin node, with the reason.
    let thin = outcome.cut_off.len() - 1;
    for validator in 0..4 {
        assert!(
            outcome.cut_off[thin]
                .iter()
                .any(|(key, reason, _)| *key == key_of(validator)
                    && reason.contains("history that does not check out")),
            "{:?}",
            outcome.cut_off[thin]
        );
    }
}

#[test]
fn an_equivocating_validator_is_reported_and_the_others_stay_safe() {
    let mut plan = Plan::honest(9, 4);
    plan.byzantine = vec![(1, Byzantine::Equivocator)];
    plan.transactions = 15;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.committed.len(), 15);
    let equivocator = key_of(1);
    let reported = outcome
        .evidence
        .iter()
        .filter(|records| {
            records.iter().any(|record| {
                record["kind"] == "conflicting_notarize" && record["validator"] == equivocator
            })
        })
        .count();
    assert!(
        reported >= 2,
        "honest validators holding evidence of the double votes: {:?}",
        outcome.evidence
    );
    // Each names a view it led (view 0 is the epoch's genesis, where no one votes).
    for records in &outcome.evidence {
        for record in records {
            if record["kind"] == "conflicting_notarize" {
                assert!(record["view"].as_u64() > Some(0), "{record}");
            }
        }
    }
}

#[test]
fn a_validator_withholding_finalize_votes_does_not_stop_the_network() {
    let mut plan = Plan::honest(13, 4);
    plan.byzantine = vec![(2, Byzantine::Withholder)];
    plan.transactions = 15;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.committed.len(), 15);
}

/// Node `index`'s key, as evidence names it.
fn key_of(index: usize) -> String {
    SigningKey::from_seed(&seed_bytes(index as u64 + 1))
        .public_key()
        .to_string()
}

/// The evidence node `by` holds against `key` of `kind` (`validator` or `peer` names it).
fn evidence_against<'a>(
    outcome: &'a Outcome,
    by: usize,
    kind: &str,
    key: &str,
) -> Vec<&'a serde_json::Value> {
    outcome.evidence[by]
        .iter()
        .filter(|record| {
            record["kind"] == kind && (record["validator"] == key || record["peer"] == key)
        })
        .collect()
}

#[test]
fn blocks_that_break_the_rules_are_refused_recorded_and_never_final() {
    // Two of four validators lead with invalid blocks: one with a forged signature, one with a
    // transaction twice. They vote honestly otherwise, so the network goes on.
    let mut plan = Plan::honest(17, 4);
    plan.byzantine = vec![(2, Byzantine::Forger), (3, Byzantine::Replayer)];
    plan.transactions = 20;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.committed.len(), 20);
    for honest in [0, 1] {
        for (byzantine, reason) in [(2, "signature"), (3, "replay")] {
            let refused = evidence_against(&outcome, honest, "invalid_block", &key_of(byzantine));
            assert!(
                !refused.is_empty(),
                "node {honest} holds no evidence against node {byzantine}: {:?}",
                outcome.evidence[honest]
            );
            assert!(
                refused.iter().all(|record| record["reason"]
                    .as_str()
                    .is_some_and(|why| why.contains(reason))),
                "{refused:?}"
            );
        }
    }
}

#[test]
fn a_block_whose_state_root_lies_is_refused_and_never_final() {
    // One of four validators leads with blocks whose transactions are valid but whose header
    // commits to another state than the one they leave.
    let mut plan = Plan::honest(23, 4);
    plan.byzantine = vec![(3, Byzantine::StateLiar)];
    plan.transactions = 20;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.committed.len(), 20);
    for honest in [0, 1, 2] {
        let refused = evidence_against(&outcome, honest, "invalid_block", &key_of(3));
        assert!(
            !refused.is_empty(),
            "node {honest} holds no evidence against node 3: {:?}",
            outcome.evidence[honest]
        );
        assert!(
            refused.iter().all(|record| record["reason"]
                .as_str()
                .is_some_and(|why| why.contains("state_root"))),
            "{refused:?}"
        );
    }
}

#[test]
fn a_node_catching_up_cuts_off_a_validator_that_sends_altered_bodies() {
    // The archive node is cut off while the validators go on, then catches up, asking the
    // validators for bodies: one answers with altered ones.
    let mut plan = Plan::honest(19, 4);
    plan.archives = 1;
    plan.transactions = 60;
    plan.byzantine = vec![(3, Byzantine::BadBodies)];
    // An empty block every 50 ms: some 600 blocks to catch up with, asked of every validator
    // at once (64 per request).
    plan.idle_block_ms = 50;
    plan.partition = Some(Partition {
        split: 4,
        at: Duration::from_millis(200),
        lasting: Duration::from_secs(30),
    });
    let outcome = run_or_name_seed(&plan);
    let cut = evidence_against(&outcome, 4, "invalid_message", &key_of(3));
    assert!(
        cut.iter().any(|record| record["reason"]
            .as_str()
            .is_some_and(|why| why.contains("does not match its header"))),
        "{:?}",
        outcome.evidence[4]
    );
    // Its status names the validator it cut off, why, and until when.
    assert!(
        outcome.cut_off[4]
            .iter()
            .any(|(key, reason, until)| *key == key_of(3)
                && reason.contains("does not match its header")
                && *until > START_MS),
        "{:?}",
        outcome.cut_off[4]
    );
    let (_, at_heal) = outcome.partitioned.expect("partitioned");
    assert!(at_heal > 0);
}

#[test]
fn a_peer_passing_on_altered_addresses_is_cut_off() {
    let mut plan = Plan::honest(23, 4);
    plan.byzantine = vec![(2, Byzantine::AddressLiar)];
    let outcome = run_or_name_seed(&plan);
    for honest in [0, 1, 3] {
        let cut = evidence_against(&outcome, honest, "invalid_message", &key_of(2));
        assert!(
            cut.iter().any(|record| record["reason"]
                .as_str()
                .is_some_and(|why| why.contains("forged address"))),
            "node {honest}: {:?}",
            outcome.evidence[honest]
        );
    }
}

#[test]
fn notarized_blocks_wait_for_a_finalization_and_are_committed_with_it() {
    // Two validators of four send no finalize vote for 6 s: blocks are notarized (views go on)
    // but none is finalized, so nothing is committed and no submitter is answered. Once they
    // vote honestly, the next finalization makes the blocks notarized meanwhile final with
    // it: every transaction submitted during the stall is committed, once.
    let mut plan = Plan::honest(29, 4);
    plan.byzantine = vec![(2, Byzantine::Withholder), (3, Byzantine::Withholder)];
    plan.honest_after = Some(Duration::from_secs(6));
    plan.transactions = 20;
    let outcome = run_or_name_seed(&plan);
    let stalled: Vec<&(u64, u64, u64)> = outcome
        .trace
        .iter()
        .filter(|(ms, _, _)| *ms < 6_000)
        .collect();
    assert!(
        stalled.iter().all(|(_, height, _)| *height == 0),
        "a block was committed without a finalization: {stalled:?}"
    );
    let views = stalled.last().map_or(0, |(_, _, view)| *view);
    assert!(
        views >= 3,
        "views went on with notarized blocks: {stalled:?}"
    );
    assert_eq!(outcome.committed.len(), 20);
    assert!(outcome.heads[0].0 >= 1);
}

/// A clock that stands still, for a core driven by hand.
struct Still(Instant);

impl core::clock::Clock for Still {
    fn now(&self) -> Instant {
        self.0
    }

    fn unix_ms(&self) -> u64 {
        START_MS
    }
}

/// The core without a network or a runtime: an input in, the effects out.
#[test]
fn the_core_takes_an_input_and_returns_what_to_do() {
    let plan = Plan::honest(1, 4);
    let keys: Vec<SigningKey> = (0..4)
        .map(|index| SigningKey::from_seed(&seed_bytes(index + 1)))
        .collect();
    let chain = Chain::new(&keys);
    let dir = tempfile::tempdir().expect("tempdir");
    let (params, _ledger) =
        params_of(dir.path(), &chain, &keys, &plan, 0, Role::Validator).expect("params");
    let prepared = prepare(&params).expect("prepared");
    let (events, inbox) = std::sync::mpsc::channel::<Event>();
    let parts = node_parts(
        params,
        prepared,
        Box::new(Still(Instant::now())),
        events,
        inbox,
    );
    let mut core = Core::new(parts.core, Box::new(|| Some(Vec::new()))).expect("core");

    // A validator starting names the peers to connect with and its epoch's engine to run.
    core.start().expect("start");
    let started = core.take_effects();
    assert!(
        started
            .iter()
            .any(|effect| matches!(effect, core::Effect::Track { .. }))
    );
    assert!(
        started
            .iter()
            .any(|effect| matches!(effect, core::Effect::StartEpoch(start) if start.epoch == 0))
    );

    // A peer asks for the headers above block 0: it is sent this node's signed addresses (heard
    // from for the first time) and an answer with none, both to it alone, on the sync channel.
    let peer = engine_key(&keys[1].public_key()).expect("key");
    let request = weft_core::encoding::encode(&super::super::wire::Sync::HeadersRequest {
        from_height: 1,
        max_headers: 8,
    });
    assert!(
        core.handle(Event::Sync {
            from: peer.clone(),
            bytes: request,
        })
        .expect("handled")
    );
    let mut answers = Vec::new();
    for effect in core.take_effects() {
        match effect {
            core::Effect::Send {
                channel: core::Channel::Sync,
                to: commonware_p2p::Recipients::One(to),
                message,
                ..
            } if to == peer => answers.push(
                weft_core::encoding::decode::<super::super::wire::Sync>(&message)
                    .expect("a sync message"),
            ),
            _ => panic!("an effect other than an answer to the peer"),
        }
    }
    assert!(
        answers.iter().any(|answer| matches!(
            answer,
            super::super::wire::Sync::Headers { headers, finalization }
                if headers.is_empty() && finalization.is_empty()
        )),
        "{answers:?}"
    );
    assert!(answers.iter().any(|answer| matches!(
        answer,
        super::super::wire::Sync::Addresses { records } if !records.is_empty()
    )));
    // Nothing asked of it twice.
    assert!(core.take_effects().is_empty());
    assert!(!core.handle(Event::Stop).expect("stopped"));
}
