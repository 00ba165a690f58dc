//! Submissions and the pool: transactions waiting for a block, flooded to the validators,
//! and the submitters answered once their transactions are final.

use super::*;

impl Core {
    pub(super) fn submit(&mut self, submission: Submission) {
        let Submission {
            transactions,
            reply,
            ..
        } = submission;
        let (transactions, ids, failures) = Admitted::check(transactions).into_parts();
        let count = transactions.len();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.waiting.push(None);
            self.waiting.len() - 1
        });
        let mut waiting = Waiting {
            ids: ids.clone(),
            results: vec![None; count],
            left: count,
            reply: Some(reply),
        };
        for (index, ((tx, id), failure)) in
            transactions.into_iter().zip(ids).zip(failures).enumerate()
        {
            let decided = if let Some(error) = failure {
                Some(TxResult::Rejected { id, error })
            } else if self.by_tx.contains_key(&id) {
                Some(TxResult::Rejected {
                    id,
                    error: RuleError::Format {
                        message: format!(
                            "transaction {id} was submitted twice and is already waiting to be \
                             committed"
                        ),
                    },
                })
            } else if !self.pool.contains_key(&id) && self.pool.len() >= self.p.config.mempool_max {
                Some(TxResult::Failed {
                    id,
                    message: format!(
                        "the node holds {} transactions waiting to be proposed \
                         (network.mempool_max); submit again later",
                        self.pool.len()
                    ),
                })
            } else {
                self.by_tx.insert(id, (slot, index));
                if !self.pool.contains_key(&id) {
                    self.outbox_bytes += encoded_len(&tx);
                    self.outbox.push(tx.clone());
                    self.pool.insert(id, tx);
                    self.order.push_back(id);
                }
                None
            };
            if let Some(result) = decided {
                waiting.results[index] = Some(result);
                waiting.left -= 1;
            }
        }
        if waiting.left == 0 {
            self.free.push(slot);
            self.answer(waiting);
        } else {
            self.waiting[slot] = Some(waiting);
        }
        if self.outbox_bytes >= wire::TX_BATCH_BYTES || self.outbox.len() >= wire::MAX_TX_BATCH {
            self.flood();
        }
    }

    /// Sends one submission's answers.
    pub(super) fn answer(&mut self, mut waiting: Waiting) {
        let results: Vec<TxResult> = waiting.results.into_iter().flatten().collect();
        self.p
            .metrics
            .pending
            .dec_by(i64::try_from(results.len()).unwrap_or(i64::MAX));
        if let Some(reply) = waiting.reply.take() {
            self.effects.push(Effect::Answer { reply, results });
        }
    }

    /// Decides one pooled transaction for its submitter, if this node holds one.
    pub(super) fn decide(&mut self, id: &TxId, result: TxResult) {
        let Some((slot, index)) = self.by_tx.remove(id) else {
            return;
        };
        let Some(waiting) = self.waiting.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        waiting.results[index] = Some(result);
        waiting.left -= 1;
        if waiting.left == 0
            && let Some(waiting) = self.waiting[slot].take()
        {
            self.free.push(slot);
            self.answer(waiting);
        }
    }

    /// Floods the transactions submitted here since the last flood to every peer (but those
    /// that follow on proofs).
    pub(super) fn flood(&mut self) {
        while !self.outbox.is_empty() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(tx) = self.outbox.pop() {
                bytes += encoded_len(&tx);
                batch.push(tx);
                if batch.len() >= wire::MAX_TX_BATCH || bytes >= wire::TX_BATCH_BYTES {
                    break;
                }
            }
            let message = encode(&TxBatch {
                transactions: batch,
            });
            // Not to the peers that follow on proofs: they take blocks on certificates.
            let recipients = self.all_but_quiet();
            self.send(Channel::Txs, recipients, message, false);
        }
        self.outbox_bytes = 0;
    }

    /// Floods again the submissions made here that were already waiting at the last check (a
    /// node that does not vote relies on flooding alone to get them to a leader). Transactions
    /// that other peers flooded to this node are theirs to send again, not this node's.
    pub(super) fn reflood(&mut self) {
        let again: Vec<Transaction> = self
            .waited
            .iter()
            .filter(|id| self.by_tx.contains_key(*id))
            .filter_map(|id| self.pool.get(id))
            .take(wire::MAX_TX_BATCH)
            .cloned()
            .collect();
        self.waited = self
            .by_tx
            .keys()
            .filter(|id| self.pool.contains_key(*id))
            .copied()
            .collect();
        if again.is_empty() {
            return;
        }
        tracing::debug!(
            transactions = again.len(),
            "flooding waiting transactions again"
        );
        for tx in again {
            self.outbox_bytes += encoded_len(&tx);
            self.outbox.push(tx);
        }
        self.flood();
    }

    pub(super) fn received_txs(&mut self, from: Key, bytes: &[u8]) {
        self.heard(&from);
        if self.p.follow_proofs {
            // It takes final blocks on their certificates and proposes nothing: a peer that
            // has not had its `Quiet` yet.
            return;
        }
        let batch = match decode::<TxBatch>(bytes) {
            Ok(batch) => batch,
            Err(error) => return self.misbehaved(from, &format!("bad transaction batch: {error}")),
        };
        let fresh: Vec<Transaction> = batch
            .transactions
            .into_iter()
            .filter(|tx| !self.pool.contains_key(&tx.id()))
            .collect();
        let (transactions, ids, failures) = Admitted::check(fresh).into_parts();
        let mut bad = 0;
        for ((tx, id), failure) in transactions.into_iter().zip(ids).zip(failures) {
            if failure.is_some() {
                bad += 1;
                continue;
            }
            if self.pool.len() >= self.p.config.mempool_max {
                break;
            }
            self.pool.insert(id, tx);
            self.order.push_back(id);
        }
        if bad > 0 {
            // An honest node floods only transactions it checked.
            self.misbehaved(
                from,
                &format!("{bad} flooded transactions failed their checks"),
            );
        }
    }
}
