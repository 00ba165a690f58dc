//! The seeded suite: schedules that must keep the network safe and live.

use super::*;

#[test]
fn four_honest_validators_commit_every_transaction_once() {
    let outcome = run(&Plan::honest(1, 4)).unwrap_or_else(|error| panic!("seed 1: {error:#}"));
    assert!(!outcome.committed.is_empty());
    eprintln!("{outcome:?}");
}
