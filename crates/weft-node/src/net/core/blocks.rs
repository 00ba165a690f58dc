//! Blocks above the committed head: received whole or compact (rebuilt from the pool), asked
//! for when missing, validated on their parent's state, verified for the engine, and proposed.

use super::*;

impl Core {
    pub(super) fn received_block(&mut self, from: Key, bytes: &[u8]) {
        self.heard(&from);
        let proposal = match decode::<Proposal>(bytes) {
            Ok(proposal) => proposal,
            Err(error) => {
                self.misbehaved(from, &format!("bad proposal: {error}"));
                return;
            }
        };
        // Any peer may ask for a block whole (a follower lacking a transaction, too).
        if let Proposal::Request { hash } = proposal {
            self.send_whole(from, hash);
            return;
        }
        if self.p.follow_proofs {
            // It takes final blocks on their certificates, never a proposal.
            return;
        }
        if !self.validator_keys.contains(&from) {
            // Not a validator this node knows of: perhaps one of an epoch it has not reached.
            tracing::debug!(peer = %weft_key(&from), "a block from a peer that is no validator here; dropped");
            return;
        }
        match proposal {
            Proposal::Whole(block) => {
                self.wanted_blocks.remove(&block.signed.header.hash());
                self.remember(block, bytes.len(), false);
            }
            Proposal::Compact { signed, ids } => self.received_compact(from, signed, ids),
            Proposal::Request { .. } => {}
        }
    }

    /// A proposal by transaction id: rebuilt from the pool when every transaction is there and
    /// the copies give the header's Merkle root (the leaf commits to the signature too); else
    /// the sender is asked for the whole block.
    pub(super) fn received_compact(&mut self, from: Key, signed: SignedHeader, ids: Vec<TxId>) {
        let hash = signed.header.hash();
        if signed.header.height <= self.head.header.height || self.known.contains_key(&hash) {
            return;
        }
        let transactions: Option<Vec<Transaction>> =
            ids.iter().map(|id| self.pool.get(id).cloned()).collect();
        let rebuilt = transactions.filter(|transactions| {
            weft_ledger::block::merkle_levels(transactions, &ids).root()
                == signed.header.merkle_root
        });
        match rebuilt {
            Some(transactions) => {
                let block = Block {
                    signed,
                    transactions,
                };
                let size = encoded_len(&block);
                self.remember(block, size, true);
            }
            None => {
                // Asked of the leader at once, unless it was asked for already (a block the
                // engine wanted before it came is noted, not yet asked for).
                let asked = self
                    .wanted_blocks
                    .get(&hash)
                    .is_some_and(|(_, tries)| *tries > 0);
                if !asked {
                    tracing::debug!(peer = %weft_key(&from), block = %hash, "asking for a proposal whole");
                    self.send(
                        Channel::Blocks,
                        Recipients::One(from),
                        encode(&Proposal::Request { hash }),
                        true,
                    );
                    self.note_wanted(hash, 1);
                }
            }
        }
    }

    /// A block this node needs (to verify a proposal or build on a parent) and lacks: asked of
    /// every validator of the epoch if it has not come within [`SYNC_RETRY`]. Its leader may
    /// have crashed after others notarized it; then only they hold it, and without it this
    /// validator could vote on nothing that follows.
    pub(super) fn want_block(&mut self, hash: BlockHash) {
        if !self.known.contains_key(&hash) && !self.wanted_blocks.contains_key(&hash) {
            self.note_wanted(hash, 0);
        }
    }

    pub(super) fn note_wanted(&mut self, hash: BlockHash, tries: u32) {
        if self.wanted_blocks.len() >= 1024 {
            self.wanted_blocks.clear();
        }
        self.wanted_blocks.insert(hash, (self.now(), tries));
    }

    /// Asks every other validator of the epoch for each wanted block that has not come since
    /// the last ask ([`SYNC_RETRY`]), up to [`WHOLE_TRIES`] times.
    pub(super) fn ask_wanted(&mut self) {
        if self.wanted_blocks.is_empty() {
            return;
        }
        let known = &self.known;
        let now = self.now();
        let mut ask = Vec::new();
        self.wanted_blocks.retain(|hash, (asked, tries)| {
            if known.contains_key(hash) || *tries >= WHOLE_TRIES {
                return false;
            }
            if now.saturating_duration_since(*asked) >= SYNC_RETRY {
                *asked = now;
                *tries += 1;
                ask.push(*hash);
            }
            true
        });
        if ask.is_empty() {
            return;
        }
        let peers: Vec<Key> = self.other_validators().collect();
        for hash in ask {
            tracing::info!(block = %hash, "asking every validator for a block it lacks");
            self.send(
                Channel::Blocks,
                Recipients::Some(peers.clone()),
                encode(&Proposal::Request { hash }),
                true,
            );
        }
    }

    /// Sends a block above the head, or a committed one, whole to a peer that asked.
    pub(super) fn send_whole(&mut self, to: Key, hash: BlockHash) {
        let block = match self.known.get(&hash) {
            Some(known) => Some(known.block.as_ref().clone()),
            None => self.p.ledger.lock().ok().and_then(|ledger| {
                let height = ledger.store().height_of(&hash).ok().flatten()?;
                // A node that strips payloads has no whole block to give.
                self.p.filter.is_none().then_some(())?;
                ledger.store().block(height).ok().flatten()
            }),
        };
        if let Some(block) = block {
            self.send(
                Channel::Blocks,
                Recipients::One(to),
                encode(&Proposal::Whole(block)),
                true,
            );
        }
    }

    /// Keeps a block above the committed head (unvalidated until something needs it).
    pub(super) fn remember(&mut self, block: Block, bytes: usize, from_pool: bool) {
        let hash = block.signed.header.hash();
        if block.signed.header.height <= self.head.header.height || self.known.contains_key(&hash) {
            return;
        }
        if self.known_bytes + bytes > MAX_KNOWN_BYTES {
            tracing::warn!(%hash, "too many blocks above the head; dropping one");
            return;
        }
        self.known_bytes += bytes;
        self.known.insert(
            hash,
            Known {
                block: Arc::new(block),
                bytes,
                validated: None,
                from_pool,
            },
        );
    }

    /// Sends this leader's proposal by transaction id (peers ask for what they lack).
    pub(super) fn broadcast(&mut self, digest: &Digest, recipients: Recipients<Key>) {
        // Not to the peers that follow on proofs.
        let recipients = match recipients {
            Recipients::All => self.all_but_quiet(),
            Recipients::Some(peers) => Recipients::Some(
                peers
                    .into_iter()
                    .filter(|peer| !self.quiet.contains(peer))
                    .collect(),
            ),
            one => one,
        };
        if let Some(known) = self.known.get(&block_hash(digest)) {
            let block = known.block.as_ref();
            let ids = match &known.validated {
                Some(validated) => validated.ids.clone(),
                None => block.transactions.iter().map(Transaction::id).collect(),
            };
            let compact = Proposal::Compact {
                signed: block.signed.clone(),
                ids,
            };
            self.send(Channel::Blocks, recipients, encode(&compact), true);
        }
    }

    /// The blocks from the committed head (exclusive) to `hash` (inclusive), oldest first.
    pub(super) fn chain_to(&self, hash: BlockHash) -> Result<Vec<BlockHash>, Lookup> {
        let mut chain = Vec::new();
        let mut cursor = hash;
        for _ in 0..=self.known.len() {
            if cursor == self.head_hash {
                chain.reverse();
                return Ok(chain);
            }
            match self.known.get(&cursor) {
                Some(known) => {
                    chain.push(cursor);
                    cursor = known.block.signed.header.previous_digest;
                }
                None => {
                    let committed = self
                        .p
                        .ledger
                        .lock()
                        .ok()
                        .and_then(|ledger| ledger.store().height_of(&cursor).ok().flatten());
                    return Err(if committed.is_some() {
                        Lookup::Stale
                    } else {
                        Lookup::Missing(cursor)
                    });
                }
            }
        }
        Err(Lookup::Stale)
    }

    /// Validates the blocks of `chain` that are not yet, each on the state its parent left;
    /// returns the state changes of the whole chain.
    pub(super) fn validate_chain(&mut self, chain: &[BlockHash]) -> Result<StateDelta, Lookup> {
        let ledger = self.p.ledger.clone();
        let ledger = ledger
            .lock()
            .map_err(|_| Lookup::Invalid("ledger lock poisoned".into()))?;
        let snapshot = ledger
            .store()
            .snapshot()
            .map_err(|error| Lookup::Invalid(error.to_string()))?;
        let mut state = Overlay::new(&snapshot);
        let mut parent = self.head.clone();
        for hash in chain {
            let Some(known) = self.known.get_mut(hash) else {
                return Err(Lookup::Missing(*hash));
            };
            let validated = match &known.validated {
                Some(validated) => validated.clone(),
                None => {
                    let signatures = if known.from_pool {
                        Signatures::CheckedEarlier
                    } else {
                        Signatures::Verify
                    };
                    let validated = validate_block_with(
                        &state,
                        self.chain_id,
                        Some(&parent),
                        &known.block,
                        signatures,
                    )
                    .map_err(|error| Lookup::Invalid(error.to_string()))?;
                    let validated = Arc::new(validated);
                    known.validated = Some(validated.clone());
                    validated
                }
            };
            state.delta.merge(&validated.delta);
            parent = known.block.signed.clone();
        }
        Ok(state.into_delta())
    }

    pub(super) fn try_verifications(&mut self) {
        use commonware_consensus::Epochable as _;
        let pending = std::mem::take(&mut self.verifying);
        for (context, hash, response) in pending {
            // A request of an engine that is stopping (its epoch is over) goes unanswered.
            if response.is_closed() || context.epoch().get() != self.epoch.number {
                continue;
            }
            match self.verify(&context, hash) {
                Some(verdict) => {
                    let _ = response.send(verdict);
                }
                None => self.verifying.push((context, hash, response)),
            }
        }
    }

    /// Is `hash` a valid block for `context`? `None` while its block or an ancestor is missing.
    ///
    /// A leader may propose its view's parent again (a re-proposal): valid only for the last
    /// block of the epoch, which then gets a view of its own to be finalized in, since no block
    /// may follow it in this epoch.
    pub(super) fn verify(&mut self, context: &Ctx, hash: BlockHash) -> Option<bool> {
        let reproposal = block_hash(&context.parent.1) == hash;
        let (parent, producer, height) = {
            // A proposal of the committed head itself is only ever a re-proposal; any other
            // waits for a block above the head, as before.
            let header = if reproposal && hash == self.head_hash {
                &self.head.header
            } else if let Some(known) = self.known.get(&hash) {
                &known.block.signed.header
            } else {
                self.want_block(hash);
                return None;
            };
            (header.previous_digest, header.producer, header.height)
        };
        let refuse = |core: &mut Self, reason: String| {
            core.refused(hash, height, producer, &reason);
            Some(false)
        };
        if !reproposal && parent != block_hash(&context.parent.1) {
            return refuse(
                self,
                format!("it names parent {parent}, the view's parent is another block"),
            );
        }
        if !reproposal && producer != weft_key(&context.leader) {
            return refuse(
                self,
                format!("it is sealed by {producer}, not by the view's leader"),
            );
        }
        let chain = match self.chain_to(hash) {
            Ok(chain) => chain,
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                self.request_sync();
                return None;
            }
            Err(Lookup::Stale) => return Some(false),
            Err(Lookup::Invalid(reason)) => return refuse(self, reason),
        };
        match self.validate_chain(&chain) {
            Ok(delta) => match self.epoch_end(&delta) {
                end if reproposal && end != Some(height) => refuse(
                    self,
                    "it is proposed again, and only the last block of an epoch may be".into(),
                ),
                Some(end) if height > end => refuse(
                    self,
                    format!(
                        "it is at height {height}, after the last block ({end}) of epoch {}: \
                         the next validators produce it",
                        self.epoch.number
                    ),
                ),
                _ => Some(true),
            },
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                None
            }
            Err(Lookup::Stale) => Some(false),
            Err(Lookup::Invalid(reason)) => refuse(self, reason),
        }
    }

    /// The last height of the current epoch, with `delta` (the changes of the blocks above the
    /// committed head) on top of the committed schedule; `None` while no change is scheduled.
    pub(super) fn epoch_end(&self, delta: &StateDelta) -> Option<u64> {
        match &delta.validators {
            Some(changes) => changes
                .get(self.epoch.number as usize)
                .map(|change| change.from_height - 1),
            None => self.p.schedule.end(self.epoch.number),
        }
    }

    /// [`Core::epoch_end`] from the blocks of `chain` already validated (no state is read).
    pub(super) fn chain_end(&self, chain: &[BlockHash]) -> Option<u64> {
        let latest = chain
            .iter()
            .rev()
            .filter_map(|hash| self.known.get(hash)?.validated.clone())
            .find(|validated| validated.delta.validators.is_some());
        match latest {
            Some(validated) => self.epoch_end(&validated.delta),
            None => self.p.schedule.end(self.epoch.number),
        }
    }

    /// Notes a refused block: logged, counted and recorded as evidence against its producer.
    pub(super) fn refused(
        &mut self,
        hash: BlockHash,
        height: u64,
        producer: weft_core::PublicKey,
        reason: &str,
    ) {
        tracing::warn!(%hash, height, %producer, reason, "refused a proposed block");
        if let Ok(mut status) = self.p.status.lock() {
            status.refused_blocks += 1;
        }
        self.evidence(serde_json::json!({
            "kind": "invalid_block",
            "validator": producer.to_string(),
            "block": hash.to_string(),
            "height": height,
            "reason": reason,
        }));
    }

    pub(super) fn try_proposals(&mut self) {
        use commonware_consensus::Epochable as _;
        let pending = std::mem::take(&mut self.proposing);
        for (context, asked, response) in pending {
            if response.is_closed() || context.epoch().get() != self.epoch.number {
                continue;
            }
            match self.propose(&context, asked) {
                Some(Some(digest)) => {
                    let _ = response.send(digest);
                }
                // Declined: the engine moves on.
                Some(None) => {}
                None => self.proposing.push((context, asked, response)),
            }
        }
    }

    /// Builds this leader's block for `context`: `None` to wait (missing parent, or letting
    /// transactions gather), `Some(None)` to decline.
    pub(super) fn propose(&mut self, context: &Ctx, asked: Instant) -> Option<Option<Digest>> {
        let parent_hash = block_hash(&context.parent.1);
        let reproposal = Some(Some(context.parent.1));
        let chain = match self.chain_to(parent_hash) {
            Ok(chain) => chain,
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                self.request_sync();
                return None;
            }
            Err(Lookup::Stale | Lookup::Invalid(_)) => return Some(None),
        };
        let parent = match chain.last() {
            Some(hash) => self.known.get(hash)?.block.signed.clone(),
            None => self.head.clone(),
        };
        // The epoch's last block is proposed again until it is final: nothing follows it here.
        if self.chain_end(&chain) == Some(parent.header.height) {
            tracing::info!(
                height = parent.header.height,
                "proposing the epoch's last block again"
            );
            return reproposal;
        }
        // Cheap checks first (this runs every tick while a proposal waits): let transactions
        // gather for `block_interval_ms` after the parent unless a block's worth waits.
        let idle_over = self.since(asked) >= Duration::from_millis(self.p.config.idle_block_ms);
        let since_parent = self
            .p
            .clock
            .unix_ms()
            .saturating_sub(parent.header.timestamp);
        if self.pool.is_empty() && !idle_over {
            return None;
        }
        if !self.pool.is_empty()
            && self.pool.len() < self.p.max_txs
            && since_parent < self.p.config.block_interval_ms
        {
            return None;
        }
        // Every block of the chain is validated first: their transactions are not offered again.
        let state = match self.validate_chain(&chain) {
            Ok(state) => state,
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                return None;
            }
            Err(_) => return Some(None),
        };
        match self.epoch_end(&state) {
            Some(end) if parent.header.height == end => {
                tracing::info!(height = end, "proposing the epoch's last block again");
                return reproposal;
            }
            Some(end) if parent.header.height > end => return Some(None),
            _ => {}
        }
        let in_chain: HashSet<TxId> = chain
            .iter()
            .filter_map(|hash| self.known.get(hash)?.validated.clone())
            .flat_map(|validated| validated.ids.clone())
            .collect();
        // Drop what was decided since it was pooled.
        while let Some(front) = self.order.front() {
            if self.pool.contains_key(front) {
                break;
            }
            self.order.pop_front();
        }
        let mut ids = Vec::new();
        let mut bytes = 0;
        for id in &self.order {
            if ids.len() >= self.p.max_txs || bytes >= PROPOSAL_BYTES {
                break;
            }
            if in_chain.contains(id) {
                continue;
            }
            if let Some(tx) = self.pool.get(id) {
                bytes += encoded_len(tx);
                ids.push(*id);
            }
        }
        // Everything pooled is already in the chain: wait for more, or the idle block.
        if ids.is_empty() && !idle_over {
            return None;
        }
        let transactions: Vec<Transaction> = ids
            .iter()
            .filter_map(|id| self.pool.get(id).cloned())
            .collect();
        let assembled = {
            let ledger = self.p.ledger.clone();
            let ledger = ledger.lock().ok()?;
            let snapshot = ledger.store().snapshot().ok()?;
            let mut view = Overlay::new(&snapshot);
            view.delta = state;
            assemble(
                &view,
                self.chain_id,
                &parent,
                Admitted::checked_earlier(transactions, ids),
                &self.p.key,
                self.p.clock.unix_ms(),
            )
        };
        let Assembled {
            block,
            validated,
            rejected,
            ..
        } = match assembled {
            Ok(assembled) => assembled,
            Err(error) => {
                tracing::error!(%error, "cannot build a proposal");
                return Some(None);
            }
        };
        for (_, id, error) in rejected {
            self.pool.remove(&id);
            self.decide(&id, TxResult::Rejected { id, error });
        }
        let validated = Some(Arc::new(validated));
        let hash = block.signed.header.hash();
        let size = encoded_len(&block);
        self.known_bytes += size;
        self.known.insert(
            hash,
            Known {
                block: Arc::new(block),
                bytes: size,
                validated,
                from_pool: false,
            },
        );
        Some(Some(commonware_cryptography::sha256::Digest(hash.0.0)))
    }
}
