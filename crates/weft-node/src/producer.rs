//! The block producer: one thread that gathers submitted transactions into blocks.
//!
//! A block is sealed `interval` after its first transaction arrived, or as soon as it holds
//! `max_txs`. Signatures are checked before the ledger is locked (readers keep reading
//! meanwhile); the rules, the seal and the durable commit happen under the lock. Every
//! submitter is answered only after the commit returned, so an acknowledged transaction is on
//! disk. The thread ends when every sender is gone, after the block in hand.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use weft_core::SigningKey;
use weft_ledger::Admitted;

use crate::commit::CommitTail;
use crate::submission::{Submission, TxResult, now_ms};

pub(crate) struct Producer {
    pub key: SigningKey,
    /// Block interval and size, which a configuration reload may change.
    pub live: Arc<crate::live::Live>,
    /// The ledger, and what follows each commit (head, metrics, merge).
    pub tail: CommitTail,
}

/// One gathered batch, its signatures checked, on its way to the commit.
struct Checked {
    /// Blocks of at most `max_txs` transactions, in order.
    blocks: Vec<Admitted>,
    /// Each submitter's reply and how many of the results are its.
    replies: Vec<(usize, tokio::sync::oneshot::Sender<Vec<TxResult>>)>,
    count: usize,
}

impl Producer {
    /// Runs until every sender of `queue` is dropped. Two stages: this thread gathers a block
    /// and checks its signatures while a second thread applies the rules to the previous one
    /// and commits it.
    pub fn run(self, queue: Receiver<Submission>) {
        let (to_commit, checked) = std::sync::mpsc::sync_channel::<Checked>(1);
        std::thread::scope(|scope| {
            let committer = std::thread::Builder::new()
                .name("committer".into())
                .spawn_scoped(scope, || {
                    for batch in checked {
                        self.commit(batch);
                    }
                });
            if let Err(error) = committer {
                tracing::error!(%error, "cannot start the commit thread");
                return;
            }
            while let Ok(first) = queue.recv() {
                let interval = Duration::from_millis(self.live.interval_ms.load(Ordering::Relaxed));
                let max_txs = self.live.max_txs.load(Ordering::Relaxed);
                // The interval counts from when the first transaction reached the node, not
                // from when this thread got to it.
                let deadline = first.received + interval;
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
                let mut transactions = Vec::with_capacity(count);
                let mut replies = Vec::with_capacity(batch.len());
                for submission in batch {
                    replies.push((submission.transactions.len(), submission.reply));
                    transactions.extend(submission.transactions);
                }
                let mut blocks = Vec::new();
                let mut rest = transactions;
                while !rest.is_empty() {
                    let tail = rest.split_off(rest.len().min(max_txs));
                    blocks.push(Admitted::check(std::mem::replace(&mut rest, tail)));
                }
                if to_commit
                    .send(Checked {
                        blocks,
                        replies,
                        count,
                    })
                    .is_err()
                {
                    break;
                }
            }
            drop(to_commit);
        });
    }

    /// Commits a checked batch and answers every submitter.
    fn commit(&self, batch: Checked) {
        let mut results: Vec<TxResult> = Vec::with_capacity(batch.count);
        for admitted in batch.blocks {
            results.extend(self.produce_one(admitted));
        }
        let mut results = results.into_iter();
        for (count, reply) in batch.replies {
            // A submitter that gave up (closed its connection) is no error.
            let _ = reply.send(results.by_ref().take(count).collect());
        }
        self.tail
            .metrics()
            .pending
            .dec_by(i64::try_from(batch.count).unwrap_or(i64::MAX));
        // After the block's answers went out and while the next block is being gathered, so
        // no submitter waits for a merge.
        self.tail.merge_step();
    }

    /// One block: results in the order of its transactions.
    fn produce_one(&self, admitted: Admitted) -> Vec<TxResult> {
        let started = Instant::now();
        let ids = admitted.ids().to_vec();
        let outcome = {
            let mut ledger = match self.tail.ledger().lock() {
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
        self.tail.committed(
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
