//! What follows every durable block commit, the same on a node that seals its own blocks
//! ([`crate::producer`]) and on a node of a network that commits the blocks its validators
//! finalized (`net::core`): the head is announced (GraphQL subscriptions wait on it), the block
//! is counted in the metrics, and — between blocks, after the submitters were answered — one
//! step of the store's waiting index changes is merged, by one policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weft_ledger::store::MergeStep;

use crate::metrics::Metrics;
use crate::submission::SharedLedger;

/// The smallest merge step, in transactions' worth of index changes: a step of a few
/// milliseconds, so that neither a validator's consensus thread nor the next block of a
/// standalone node waits long behind one (docs/benchmarks.md, "Index merges off the consensus
/// thread": steps of 4,096 transactions' worth took 20–30 ms on every validator at once).
pub(crate) const MIN_MERGE_STEP_TXS: usize = 256;

/// How large a merge step is once `merge_after_txs` transactions wait: as many transactions'
/// worth as twice those committed since the last step, at least [`MIN_MERGE_STEP_TXS`], so the
/// merge keeps ahead of the blocks that arrive.
pub(crate) fn merge_budget(committed_since_last_step: usize) -> usize {
    committed_since_last_step
        .saturating_mul(2)
        .max(MIN_MERGE_STEP_TXS)
}

pub(crate) struct CommitTail {
    ledger: SharedLedger,
    metrics: Arc<Metrics>,
    head: tokio::sync::watch::Sender<u64>,
    /// Merge the store's waiting index changes once this many transactions have them.
    merge_after_txs: usize,
    /// Transactions committed since the last merge step.
    since_merge: AtomicUsize,
}

impl CommitTail {
    pub fn new(
        ledger: SharedLedger,
        metrics: Arc<Metrics>,
        head: tokio::sync::watch::Sender<u64>,
        merge_after_txs: usize,
    ) -> Self {
        CommitTail {
            ledger,
            metrics,
            head,
            merge_after_txs,
            since_merge: AtomicUsize::new(0),
        }
    }

    pub fn ledger(&self) -> &SharedLedger {
        &self.ledger
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A block at `height` was durably committed with `committed` transactions (`rejected` were
    /// refused by the rules on their way into it), `took` after its commit began. `None`: no
    /// block, every offered transaction was refused.
    pub fn committed(
        &self,
        height: Option<u64>,
        committed: usize,
        rejected: usize,
        took: Duration,
    ) {
        if let Some(height) = height {
            self.head.send_replace(height);
        }
        self.since_merge.fetch_add(committed, Ordering::Relaxed);
        self.metrics.record_block(height, committed, rejected, took);
    }

    /// Merges one step of the store's waiting index changes ([`merge_budget`]). Nothing is lost
    /// when it fails: the changes stay logged and in memory, and the next step retries.
    pub fn merge_step(&self) {
        let since = self.since_merge.swap(0, Ordering::Relaxed);
        if since == 0 {
            return;
        }
        let budget = merge_budget(since);
        let mut ledger = match self.ledger.lock() {
            Ok(ledger) => ledger,
            Err(poisoned) => poisoned.into_inner(),
        };
        let started = Instant::now();
        match ledger.merge_some(self.merge_after_txs, budget) {
            Ok(MergeStep::Wrote) => {
                let seconds = started.elapsed().as_secs_f64();
                self.metrics.merge_seconds.observe(seconds);
                tracing::debug!(
                    ms = seconds * 1000.0,
                    budget,
                    "merged a step of index changes"
                );
            }
            Ok(MergeStep::Idle | MergeStep::Sorting) => {}
            Err(error) => tracing::error!(%error, "merging index changes failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_step_keeps_ahead_of_the_blocks_and_is_never_tiny() {
        assert_eq!(merge_budget(0), MIN_MERGE_STEP_TXS);
        assert_eq!(merge_budget(10), MIN_MERGE_STEP_TXS);
        assert_eq!(merge_budget(200), 400);
        assert_eq!(merge_budget(5_000), 10_000);
        assert_eq!(merge_budget(usize::MAX), usize::MAX);
    }
}
