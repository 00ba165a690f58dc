//! Finality and commits: a finalization makes its block and every ancestor final; they are
//! committed in order, each with its certificate, through the node's one commit tail.

use super::*;

impl Core {
    pub(super) fn finalized(&mut self, finalization: &Finalization) {
        use commonware_consensus::{Epochable as _, Viewable as _};
        let hash = block_hash(&finalization.proposal.payload);
        let round = (finalization.epoch().get(), finalization.view().get());
        if self.target.is_none_or(|(latest, _)| round > latest) {
            self.target = Some((round, hash));
        }
        self.certificates
            .insert(hash, (round, finalization.encode().to_vec()));
        // Certificates of blocks that never arrive are not kept for ever.
        if self.certificates.len() > 4096
            && let Some(((epoch, view), _)) = self.target
        {
            self.certificates
                .retain(|_, (round, _)| *round > (epoch, view.saturating_sub(4096)));
        }
    }

    /// Commits every block up to the latest finalized one that is here; asks a peer for the
    /// rest.
    pub(super) fn try_commit(&mut self) -> Result<()> {
        if self.halted {
            return Ok(());
        }
        let Some((_, target)) = self.target else {
            return Ok(());
        };
        if target == self.head_hash {
            self.set_sync("synced");
            return Ok(());
        }
        let chain = match self.chain_to(target) {
            Ok(chain) => chain,
            Err(Lookup::Missing(_)) => {
                self.set_sync("catching up");
                self.request_sync();
                return Ok(());
            }
            Err(Lookup::Stale) => {
                let committed = self
                    .p
                    .ledger
                    .lock()
                    .ok()
                    .and_then(|ledger| ledger.store().height_of(&target).ok().flatten());
                if committed.is_none() {
                    tracing::error!(
                        block = %target,
                        "a finalized block does not extend the committed chain: more validators \
                         are faulty than the network tolerates; this node stops committing"
                    );
                    self.halted = true;
                }
                return Ok(());
            }
            Err(Lookup::Invalid(_)) => return Ok(()),
        };
        self.commit_chain(chain)?;
        if self.head_hash == target {
            self.set_sync("synced");
        }
        Ok(())
    }

    /// Commits final blocks in order, the first a child of the committed head; stops if the
    /// node halts.
    pub(super) fn commit_chain(&mut self, chain: Vec<BlockHash>) -> Result<()> {
        for hash in chain {
            self.commit(hash)?;
            if self.halted {
                break;
            }
        }
        Ok(())
    }

    /// Commits one final block, the child of the committed head: validated on the committed
    /// state, or, on a node that follows on proofs, taken on its certificate.
    pub(super) fn commit(&mut self, hash: BlockHash) -> Result<()> {
        // How long the commit took, for the metrics: wall time.
        let started = Instant::now();
        let written = if self.p.follow_proofs {
            self.write_certified(hash)?
        } else {
            self.write_validated(hash)?
        };
        let Some((block, ids, schedule)) = written else {
            return Ok(());
        };
        self.committed(hash, &block, &ids, schedule, started)
    }

    /// Writes a final block taken on its certificate (a node that follows on proofs: its body
    /// may be filtered, the rules are not replayed). A block that does not hold together halts
    /// the node, as a finalized block that breaks a rule does on the others.
    fn write_certified(&mut self, hash: BlockHash) -> Result<Option<Written>> {
        let Some((known, mask, certificate)) = self.take_final(hash) else {
            return Ok(None);
        };
        let mut ledger = self
            .p
            .ledger
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
        let has_change = known.block.transactions.iter().any(|tx| {
            matches!(
                tx.payload,
                Some(weft_core::model::Payload::SetValidators(_))
            )
        });
        match ledger.commit_certified(&known.block, mask.as_deref(), certificate.as_deref()) {
            Ok(ids) => {
                let schedule = if has_change {
                    use weft_ledger::state::StateView as _;
                    Some(ledger.store().snapshot()?.validator_changes()?)
                } else {
                    None
                };
                Ok(Some((known.block.clone(), ids, schedule)))
            }
            Err(weft_ledger::LedgerError::BadBlock { reason, .. }) => {
                tracing::error!(
                    block = %hash,
                    reason,
                    "a finalized block does not hold together: more validators are faulty than \
                     the network tolerates; this node stops committing"
                );
                self.halted = true;
                Ok(None)
            }
            Err(error) => bail!("cannot commit final block {hash}: {error}"),
        }
    }

    /// Writes a final block validated on the committed state.
    fn write_validated(&mut self, hash: BlockHash) -> Result<Option<Written>> {
        if let Err(Lookup::Invalid(reason)) = self.validate_chain(&[hash]) {
            tracing::error!(
                block = %hash,
                reason,
                "a finalized block breaks a rule: more validators are faulty than the network \
                 tolerates; this node stops committing"
            );
            self.halted = true;
            return Ok(None);
        }
        let Some((known, mask, certificate)) = self.take_final(hash) else {
            return Ok(None);
        };
        let Some(validated) = known.validated else {
            return Ok(None);
        };
        {
            let mut ledger = self
                .p
                .ledger
                .lock()
                .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
            // The block, the certificate that finalized it and its changes to the peers are
            // written in one durable transaction.
            if let Err(error) = ledger.commit_final(
                &known.block,
                &validated,
                mask.as_deref(),
                certificate.as_deref(),
            ) {
                bail!("cannot commit final block {hash}: {error}");
            }
        }
        Ok(Some((
            known.block,
            validated.ids.clone(),
            validated.delta.validators.clone(),
        )))
    }

    /// Takes a final block out of those held above the head, with what it is stored with:
    /// which of its transactions are kept whole, and the certificate that finalized it.
    fn take_final(&mut self, hash: BlockHash) -> Option<FinalBlock> {
        let known = self.known.remove(&hash)?;
        self.known_bytes -= known.bytes;
        let mask = self
            .p
            .filter
            .as_ref()
            .and_then(|filter| filter.mask(&known.block.transactions));
        let certificate = self.certificates.remove(&hash).map(|(_, bytes)| bytes);
        Some((known, mask, certificate))
    }

    /// What follows a block's commit: the head moves, waiting headers and dead branches are
    /// let go, the schedule and the peers follow the block, submitters are answered.
    fn committed(
        &mut self,
        hash: BlockHash,
        block: &Block,
        ids: &[TxId],
        schedule: Option<Vec<weft_ledger::state::ValidatorChange>>,
        started: Instant,
    ) -> Result<()> {
        let header = &block.signed.header;
        let height = header.height;
        self.head = block.signed.clone();
        self.head_hash = hash;
        // Catch-up headers at or below the new head are done with; one that is not the block
        // committed at its height would mean conflicting final blocks: start again from the head.
        while let Some((header, header_hash)) = self.headers.front() {
            if header.header.height > height {
                break;
            }
            if header.header.height == height && *header_hash != hash {
                tracing::error!(
                    height,
                    "a catch-up header is not the committed block; dropped"
                );
                self.headers.clear();
                break;
            }
            self.headers.pop_front();
        }
        let schedule_changed = schedule.is_some();
        if let Some(schedule) = &schedule {
            self.p.schedule.changes = schedule.clone();
            if let Some(change) = schedule.last() {
                tracing::info!(
                    from_height = change.from_height,
                    validators = change.validators.len(),
                    "a validator change is scheduled"
                );
            }
        }
        let epoch_over = self.p.schedule.end(self.epoch.number) == Some(height);
        let changes = peer_changes(&block.transactions);
        self.last_commit = self.now();
        if epoch_over {
            self.switch_epoch()?;
        }
        if schedule_changed {
            // A validator change was scheduled (or replaced): the next epoch's validators are
            // dialled too.
            self.schedule_changed();
        }
        if !changes.is_empty() {
            self.members_changed(height, &changes);
        }
        for (index, id) in ids.iter().enumerate() {
            self.pool.remove(id);
            self.decide(
                id,
                TxResult::Committed {
                    id: *id,
                    position: Position {
                        height,
                        index: index as u32,
                    },
                },
            );
        }
        // Blocks at or below the new head that are not it lost: their branch is dead.
        let head_height = height;
        let mut dropped = 0;
        self.known.retain(|_, known| {
            let keep = known.block.signed.header.height > head_height;
            if !keep {
                dropped += known.bytes;
            }
            keep
        });
        self.known_bytes -= dropped;
        self.p
            .tail
            .committed(Some(height), ids.len(), 0, started.elapsed());
        Ok(())
    }
}

/// A final block taken out of those above the head: it, which of its transactions are kept
/// whole (`None`: all), and its certificate, if this node has it.
type FinalBlock = (Known, Option<Vec<bool>>, Option<Vec<u8>>);

/// A block written: the block, its transaction ids, and the validator schedule when it changed
/// it.
type Written = (
    Arc<Block>,
    Vec<TxId>,
    Option<Vec<weft_ledger::state::ValidatorChange>>,
);
