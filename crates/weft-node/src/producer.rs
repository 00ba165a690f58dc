//! The block producer: one thread that gathers submitted transactions into blocks.
//!
//! A block is sealed `interval` after its first transaction arrived, or as soon as it holds
//! `max_txs`. Signatures are checked before the ledger is locked (readers keep reading
//! meanwhile); the rules, the seal and the durable commit happen under the lock. Every
//! submitter is answered only after the commit returned, so an acknowledged transaction is on
//! disk. The thread ends when every sender is gone, after the block in hand.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_core::{SigningKey, TxId};
use weft_ledger::state::Position;
use weft_ledger::store::RedbStore;
use weft_ledger::{Admitted, Ledger, RuleError, Transaction};

use crate::metrics::Metrics;

/// What happened to one submitted transaction.
#[derive(Debug, Clone)]
pub enum TxResult {
    Committed {
        id: TxId,
        position: Position,
    },
    Rejected {
        id: TxId,
        error: RuleError,
    },
    /// The node could not commit (storage failure): nothing about the transaction is known to
    /// be durable; submit it again.
    Failed {
        id: TxId,
        message: String,
    },
}

/// Transactions from one request, and where to send their results (in the same order).
#[derive(Debug)]
pub struct Submission {
    pub transactions: Vec<Transaction>,
    pub reply: tokio::sync::oneshot::Sender<Vec<TxResult>>,
}

/// The ledger as the node shares it between the producer and the readers.
pub type SharedLedger = Arc<Mutex<Ledger<RedbStore>>>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

pub(crate) struct Producer {
    pub ledger: SharedLedger,
    pub key: SigningKey,
    /// Block interval and size, which a configuration reload may change.
    pub live: Arc<crate::admin::Live>,
    pub metrics: Arc<Metrics>,
}

impl Producer {
    /// Runs until every sender of `queue` is dropped.
    pub fn run(self, queue: Receiver<Submission>) {
        while let Ok(first) = queue.recv() {
            let interval = Duration::from_millis(self.live.interval_ms.load(Ordering::Relaxed));
            let max_txs = self.live.max_txs.load(Ordering::Relaxed);
            let deadline = Instant::now() + interval;
            let mut count = first.transactions.len();
            let mut batch = vec![first];
            while count < max_txs {
                let left = deadline.saturating_duration_since(Instant::now());
                match queue.recv_timeout(left) {
                    Ok(next) => {
                        count += next.transactions.len();
                        batch.push(next);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.produce(batch, max_txs);
            self.metrics
                .pending
                .dec_by(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Seals `batch` into blocks of at most `max_txs` and answers every submitter.
    fn produce(&self, batch: Vec<Submission>, max_txs: usize) {
        let mut transactions = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for submission in batch {
            replies.push((submission.transactions.len(), submission.reply));
            transactions.extend(submission.transactions);
        }
        let mut results: Vec<TxResult> = Vec::with_capacity(transactions.len());
        let mut rest = transactions;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(max_txs));
            let chunk = std::mem::replace(&mut rest, tail);
            results.extend(self.produce_one(chunk));
        }
        let mut results = results.into_iter();
        for (count, reply) in replies {
            // A submitter that gave up (closed its connection) is no error.
            let _ = reply.send(results.by_ref().take(count).collect());
        }
    }

    /// One block: results in the order of `chunk`.
    fn produce_one(&self, chunk: Vec<Transaction>) -> Vec<TxResult> {
        let started = Instant::now();
        let admitted = Admitted::check(chunk);
        let ids = admitted.ids().to_vec();
        let outcome = {
            let mut ledger = match self.ledger.lock() {
                Ok(ledger) => ledger,
                Err(poisoned) => poisoned.into_inner(),
            };
            ledger.produce_admitted(admitted, &self.key, now_ms())
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "block production failed");
                let message = format!("the node could not commit the block: {error}");
                return ids
                    .into_iter()
                    .map(|id| TxResult::Failed {
                        id,
                        message: message.clone(),
                    })
                    .collect();
            }
        };
        let mut results: Vec<Option<TxResult>> = vec![None; ids.len()];
        let rejected = outcome.rejected.len();
        for (index, id, error) in outcome.rejected {
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(TxResult::Rejected { id, error });
            }
        }
        let mut accepted = outcome.accepted.into_iter();
        for slot in results.iter_mut().filter(|slot| slot.is_none()) {
            *slot = accepted
                .next()
                .map(|(id, position)| TxResult::Committed { id, position });
        }
        self.metrics.record_block(
            outcome.header.as_ref().map(|signed| signed.header.height),
            ids.len() - rejected,
            rejected,
            started.elapsed(),
        );
        results
            .into_iter()
            .zip(ids)
            .map(|(result, id)| {
                result.unwrap_or_else(|| TxResult::Failed {
                    id,
                    message: "the ledger reported no result for this transaction".into(),
                })
            })
            .collect()
    }
}
