//! The seeded suite: schedules that must keep the network safe and live. A failing schedule
//! names its seed; `WEFT_SIM_SEED=N cargo test -p weft-node --lib net::sim::suite::replay --
//! --ignored --nocapture` runs it again, step for step.

use super::*;

/// How many seeded schedules [`every_seeded_schedule_is_safe_and_live`] runs
/// (`WEFT_SIM_SCHEDULES` to change it).
const SCHEDULES: u64 = 200;

/// The schedule of seed `seed`: 4 to 7 validators, maybe an archive and a thin node, latency
/// from 5 to 120 ms with jitter, up to 5 % of messages lost, 5 to 30 transactions, a third of
/// schedules with a partition that heals, and some with one Byzantine validator.
pub(super) fn plan_of(seed: u64) -> Plan {
    let mut choices = Choices(seed);
    let validators = 4 + choices.below(4);
    let byzantine = match choices.below(6) {
        0 => vec![(choices.below(validators), Byzantine::Equivocator)],
        1 => vec![(choices.below(validators), Byzantine::Withholder)],
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
fn an_equivocating_validator_is_reported_and_the_others_stay_safe() {
    let mut plan = Plan::honest(9, 4);
    plan.byzantine = vec![(1, Byzantine::Equivocator)];
    plan.transactions = 15;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.committed.len(), 15);
    let reported = outcome
        .evidence
        .iter()
        .filter(|kinds| kinds.iter().any(|kind| kind == "conflicting_notarize"))
        .count();
    assert!(
        reported >= 2,
        "honest validators holding evidence of the double votes: {:?}",
        outcome.evidence
    );
}

#[test]
fn a_validator_withholding_finalize_votes_does_not_stop_the_network() {
    let mut plan = Plan::honest(13, 4);
    plan.byzantine = vec![(2, Byzantine::Withholder)];
    plan.transactions = 15;
    let outcome = run_or_name_seed(&plan);
    assert_eq!(outcome.committed.len(), 15);
}
