//! [`Ledger`]: a chain on a [`Store`], with block production (proof of authority: this node
//! seals blocks with its producer key) and block validation shared by production, import and
//! audit.

use std::collections::HashSet;

use weft_core::model::Genesis;
use weft_core::{BlockHash, ChainId, Hash32, SigningKey, TxId};

use crate::block::{
    Block, BlockHeader, ConsensusData, HEADER_VERSION, MerkleLevels, SignedHeader, merkle_levels,
};
use crate::commitment::StateUpdate;
use crate::error::{LedgerError, Result, RuleError};
use crate::rules::{RuleContext, apply};
use crate::state::{Overlay, Position, StateDelta, StateView};
use crate::store::{BlockCommit, MergeStep, Store};
use crate::tx::{Transaction, verify_many};

/// What happened to a batch of submitted transactions.
#[derive(Debug)]
pub struct BlockOutcome {
    /// The block committed, if any transaction was accepted.
    pub header: Option<SignedHeader>,
    /// Accepted transactions and where they are.
    pub accepted: Vec<(TxId, Position)>,
    /// Rejected transactions: index in the submitted batch, id, reason.
    pub rejected: Vec<(usize, TxId, RuleError)>,
}

/// A batch of submitted transactions after the checks that need no ledger state: well-formed,
/// id computed, signature verified (in parallel batches). Making one is most of the CPU cost of
/// accepting a transaction, so a producer makes the next batch's while it commits the current
/// block ([`Ledger::produce_admitted`]).
#[derive(Debug)]
pub struct Admitted {
    transactions: Vec<Transaction>,
    ids: Vec<TxId>,
    /// Per transaction: why it failed the stateless checks, if it did.
    failures: Vec<Option<RuleError>>,
}

impl Admitted {
    /// Runs the stateless checks on `transactions`, on all cores.
    pub fn check(transactions: Vec<Transaction>) -> Self {
        use weft_core::encoding::Canonical;
        let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
        let mut failures: Vec<Option<RuleError>> = transactions
            .iter()
            .map(|tx| {
                tx.validate().err().map(|error| RuleError::Format {
                    message: error.to_string(),
                })
            })
            .collect();
        for index in verify_many(&transactions, &ids) {
            if failures[index].is_none() {
                failures[index] = Some(RuleError::Signature {
                    message: format!(
                        "the signature of transaction {} does not verify under key {}",
                        ids[index], transactions[index].header.key
                    ),
                });
            }
        }
        Admitted {
            transactions,
            ids,
            failures,
        }
    }

    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// The transaction ids, in submitted order.
    pub fn ids(&self) -> &[TxId] {
        &self.ids
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The first transaction that failed the stateless checks: its index and why.
    pub fn first_failure(&self) -> Option<(usize, &RuleError)> {
        self.failures
            .iter()
            .enumerate()
            .find_map(|(index, failure)| failure.as_ref().map(|failure| (index, failure)))
    }

    /// The transactions, in submitted order.
    pub fn into_transactions(self) -> Vec<Transaction> {
        self.transactions
    }

    /// The transactions, their ids and why each failed the stateless checks, if it did.
    pub fn into_parts(self) -> (Vec<Transaction>, Vec<TxId>, Vec<Option<RuleError>>) {
        (self.transactions, self.ids, self.failures)
    }

    /// Transactions whose stateless checks passed earlier (a node's pool of waiting
    /// transactions, each checked when it arrived), with their ids.
    pub fn checked_earlier(transactions: Vec<Transaction>, ids: Vec<TxId>) -> Self {
        assert_eq!(transactions.len(), ids.len(), "one id per transaction");
        let failures = vec![None; transactions.len()];
        Admitted {
            transactions,
            ids,
            failures,
        }
    }
}

/// A validated block, ready to commit.
#[derive(Debug)]
pub struct ValidatedBlock {
    pub ids: Vec<TxId>,
    pub levels: MerkleLevels,
    pub delta: StateDelta,
    /// The state root after the block, as computed on the state it was validated on.
    pub state: StateUpdate,
}

/// One chain on one store.
#[derive(Debug)]
pub struct Ledger<S: Store> {
    store: S,
    chain_id: ChainId,
    genesis: Genesis,
    head: SignedHeader,
}

impl<S: Store> Ledger<S> {
    /// Starts a new chain on an empty store: block 0 holds the genesis transaction.
    pub fn create(
        mut store: S,
        genesis_tx: Transaction,
        producer: &SigningKey,
        timestamp: u64,
    ) -> Result<Self> {
        if store.head()?.is_some() {
            return Err(LedgerError::Invalid(
                "the store already holds a chain".into(),
            ));
        }
        let chain_id = genesis_tx.header.chain_id;
        let ids = vec![genesis_tx.id()];
        let levels = merkle_levels(std::slice::from_ref(&genesis_tx), &ids);
        // The state root block 0 commits to: the genesis applied to the empty state.
        let state_root = {
            let snapshot = store.snapshot()?;
            let mut overlay = Overlay::new(&snapshot);
            let context = RuleContext {
                chain_id,
                reference_time: timestamp,
                time_window_ms: None,
            };
            apply(
                &mut overlay,
                &genesis_tx,
                ids[0],
                Position {
                    height: 0,
                    index: 0,
                },
                &context,
            )?;
            snapshot.state_update(&overlay.delta)?.root
        };
        let header = BlockHeader {
            version: HEADER_VERSION,
            chain_id,
            height: 0,
            timestamp,
            previous_digest: BlockHash::default(),
            merkle_root: levels.root(),
            tx_count: 1,
            consensus: ConsensusData::default(),
            producer: producer.public_key(),
            state_root: Some(state_root),
        };
        let block = Block {
            signed: SignedHeader::seal(header, producer),
            transactions: vec![genesis_tx],
        };
        let validated = {
            let snapshot = store.snapshot()?;
            validate_block(&snapshot, chain_id, None, &block)?
        };
        store.commit_block(BlockCommit {
            block: &block,
            ids: &validated.ids,
            levels: &validated.levels,
            delta: &validated.delta,
            state: Some(&validated.state),
            keep: None,
            certificate: None,
        })?;
        Self::open(store)
    }

    /// Starts a copy of an existing chain on an empty store from its block 0 (a node joining a
    /// network): the block is checked in full, as any other, before it is committed.
    pub fn from_genesis_block(mut store: S, block: &Block) -> Result<Self> {
        if store.head()?.is_some() {
            return Err(LedgerError::Invalid(
                "the store already holds a chain".into(),
            ));
        }
        let chain_id = block.signed.header.chain_id;
        let validated = {
            let snapshot = store.snapshot()?;
            validate_block(&snapshot, chain_id, None, block)?
        };
        store.commit_block(BlockCommit {
            block,
            ids: &validated.ids,
            levels: &validated.levels,
            delta: &validated.delta,
            state: Some(&validated.state),
            keep: None,
            certificate: None,
        })?;
        Self::open(store)
    }

    /// Opens an existing chain.
    pub fn open(store: S) -> Result<Self> {
        let head = store.head()?.ok_or_else(|| {
            LedgerError::NotFound("the store holds no chain (no genesis block)".into())
        })?;
        let genesis = store.snapshot()?.genesis()?.ok_or_else(|| {
            LedgerError::Corrupt("the chain has blocks but no genesis state".into())
        })?;
        let chain_id = head.header.chain_id;
        // A store that follows on certificates holds no state to compare (its head's root
        // answers for what its peers prove, see `commit_certified`).
        if let Some(committed) = head.header.state_root.filter(|_| store.keeps_rule_state()) {
            let held = store.state_root()?;
            if held != committed {
                return Err(LedgerError::Corrupt(format!(
                    "the rule state held here has root {held}, but the head (block {}) commits to \
                     {committed}: the state tables were changed apart from the blocks \
                     (`weft chain verify` names the table)",
                    head.header.height
                )));
            }
        }
        Ok(Ledger {
            store,
            chain_id,
            genesis,
            head,
        })
    }

    /// Merges what the store keeps aside into its tables (for a fast next open); committed
    /// blocks are durable without it.
    pub fn flush(&mut self) -> Result<()> {
        self.store.flush()
    }

    /// Merges one step of what the store keeps aside (see [`RedbStore::merge_some`]): for a
    /// node, between blocks, so that no block waits for a whole merge.
    ///
    /// [`RedbStore::merge_some`]: crate::store::RedbStore::merge_some
    pub fn merge_some(&mut self, start_at: usize, budget_txs: usize) -> Result<MergeStep> {
        self.store.merge_some(start_at, budget_txs)
    }

    /// Takes over a record of the network's peers and certificates kept outside the store, if
    /// the store keeps none (see [`crate::store::network`]).
    pub fn adopt_network_record(
        &mut self,
        record: &crate::store::network::NetworkRecord,
    ) -> Result<()> {
        self.store.adopt_network_record(record)
    }

    /// Gives the store back (for closing it in a particular way).
    pub fn into_store(self) -> S {
        self.store
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Raw store access, bypassing validation: only for tests that simulate tampering.
    #[doc(hidden)]
    pub fn store_mut_for_tests(&mut self) -> &mut S {
        &mut self.store
    }
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain's trust root, from its block 0 (docs/proofs.md, "Trust roots").
    pub fn trust_root(&self) -> Result<crate::trust::TrustRoot> {
        let genesis = self
            .store
            .block(0)?
            .ok_or_else(|| LedgerError::Corrupt("block 0 is missing".into()))?;
        crate::trust::TrustRoot::from_genesis(&genesis)
    }
    pub fn head(&self) -> &SignedHeader {
        &self.head
    }

    /// Checks one transaction against the current state and the node's clock, without
    /// committing anything.
    pub fn check(&self, tx: &Transaction, now: u64) -> Result<()> {
        use weft_core::encoding::Canonical;
        tx.validate().map_err(|error| RuleError::Format {
            message: error.to_string(),
        })?;
        tx.verify_signature()
            .map_err(|error| RuleError::Signature {
                message: error.to_string(),
            })?;
        let snapshot = self.store.snapshot()?;
        let mut overlay = Overlay::new(&snapshot);
        let context = RuleContext {
            chain_id: self.chain_id,
            reference_time: now,
            time_window_ms: None,
        };
        apply(
            &mut overlay,
            tx,
            tx.id(),
            Position {
                height: self.head.header.height + 1,
                index: 0,
            },
            &context,
        )
    }

    /// Validates `transactions` in order against the current state (signatures in parallel
    /// batches, then the rules one by one), seals the valid ones into the next block with
    /// `producer`, and commits it durably. Invalid transactions are reported, not committed.
    pub fn produce_block(
        &mut self,
        transactions: Vec<Transaction>,
        producer: &SigningKey,
        now: u64,
    ) -> Result<BlockOutcome> {
        self.produce_admitted(Admitted::check(transactions), producer, now)
    }

    /// [`Ledger::produce_block`] for a batch whose stateless checks are done.
    pub fn produce_admitted(
        &mut self,
        admitted: Admitted,
        producer: &SigningKey,
        now: u64,
    ) -> Result<BlockOutcome> {
        let height = self.head.header.height + 1;
        let schedule = self.store.snapshot()?.schedule()?;
        if !schedule
            .producers_at(height)
            .contains(&producer.public_key())
        {
            return Err(LedgerError::Invalid(format!(
                "key {} is not a producer of this chain at height {height}",
                producer.public_key()
            )));
        }
        let assembled = {
            let snapshot = self.store.snapshot()?;
            assemble(
                &snapshot,
                self.chain_id,
                &self.head,
                admitted,
                producer,
                now,
            )?
        };
        let Assembled {
            block,
            validated,
            accepted,
            rejected,
        } = assembled;
        if accepted.is_empty() {
            return Ok(BlockOutcome {
                header: None,
                accepted,
                rejected,
            });
        };
        self.commit_validated(&block, &validated)?;
        Ok(BlockOutcome {
            header: Some(block.signed),
            accepted,
            rejected,
        })
    }

    /// Commits a block that was validated on top of this ledger's head (by [`validate_block`] or
    /// [`assemble`] against the head's state), without checking its transactions again.
    pub fn commit_validated(&mut self, block: &Block, validated: &ValidatedBlock) -> Result<()> {
        self.commit_validated_keeping(block, validated, None)
    }

    /// [`Ledger::commit_validated`], storing whole only the transactions `keep` marks (the
    /// others stripped of their payload; see [`crate::filter::StorageFilter`]). The rule state
    /// and the indexes are those of the whole block.
    pub fn commit_validated_keeping(
        &mut self,
        block: &Block,
        validated: &ValidatedBlock,
        keep: Option<&[bool]>,
    ) -> Result<()> {
        self.commit_final(block, validated, keep, None)
    }

    /// [`Ledger::commit_validated_keeping`] for a block a network finalized, with the consensus
    /// `certificate` that finalized it, if this node has it: the block, the certificate and the
    /// block's changes to the network's peers are written in one durable transaction (see
    /// [`crate::store::network`]).
    pub fn commit_final(
        &mut self,
        block: &Block,
        validated: &ValidatedBlock,
        keep: Option<&[bool]>,
        certificate: Option<&[u8]>,
    ) -> Result<()> {
        if keep.is_some_and(|keep| keep.len() != block.transactions.len()) {
            return Err(LedgerError::Invalid(
                "the keep mask does not cover the block's transactions".into(),
            ));
        }
        let header = &block.signed.header;
        if header.height != self.head.header.height + 1
            || header.previous_digest != self.head.header.hash()
        {
            return Err(LedgerError::Invalid(format!(
                "block {} at height {} does not follow the head {} at height {}",
                header.hash(),
                header.height,
                self.head.header.hash(),
                self.head.header.height
            )));
        }
        // `validate_block` (or `assemble`) compared the header's state root with the state the
        // block leaves; the store applies the update (again from the block's own changes if it
        // was computed under blocks that were not final then) and checks its tree gives that root.
        self.store.commit_block(BlockCommit {
            block,
            ids: &validated.ids,
            levels: &validated.levels,
            delta: &validated.delta,
            state: Some(&validated.state),
            keep,
            certificate,
        })?;
        self.head = block.signed.clone();
        Ok(())
    }

    /// Commits a final block without replaying the rules: a node that follows its chain on
    /// proofs takes it on the finalization certificate of its validators, which the caller
    /// checked (or on being an ancestor of a block so certified). Its transactions may come
    /// stripped (a filtered body); `keep` strips more. From this block on, the store keeps no
    /// rule state ([`Store::keeps_rule_state`]): this node's answers about assets come from its
    /// peers, each checked against the state root of one of its own headers
    /// ([`crate::commitment::check_history`]).
    ///
    /// Still checked here: the block follows the head; its transactions are as many as its
    /// header says and give its Merkle root (ids and signatures: a stripped transaction still
    /// has both); the kinds every node keeps whole ([`crate::filter::ALWAYS_KEPT`]) are whole.
    /// The validator schedule is followed from its `SetValidators` transactions. Returns the
    /// block's transaction ids.
    pub fn commit_certified(
        &mut self,
        block: &Block,
        keep: Option<&[bool]>,
        certificate: Option<&[u8]>,
    ) -> Result<Vec<TxId>> {
        let header = &block.signed.header;
        let invalid = |reason: String| LedgerError::BadBlock {
            height: header.height,
            hash: header.hash(),
            reason,
        };
        if header.height != self.head.header.height + 1
            || header.previous_digest != self.head.header.hash()
        {
            return Err(invalid(format!(
                "it does not follow the head {} at height {}",
                self.head.header.hash(),
                self.head.header.height
            )));
        }
        if keep.is_some_and(|keep| keep.len() != block.transactions.len()) {
            return Err(LedgerError::Invalid(
                "the keep mask does not cover the block's transactions".into(),
            ));
        }
        if let Some(index) = block.transactions.iter().position(|tx| {
            tx.payload.is_none() && crate::filter::ALWAYS_KEPT.contains(&tx.header.kind)
        }) {
            return Err(invalid(format!(
                "transaction {index} is a {} and comes stripped: every node keeps those whole",
                block.transactions[index].header.kind.name()
            )));
        }
        let ids: Vec<TxId> = block.transactions.iter().map(Transaction::id).collect();
        let levels = crate::block::merkle_levels(&block.transactions, &ids);
        if ids.len() as u64 != u64::from(header.tx_count) || levels.root() != header.merkle_root {
            return Err(invalid(
                "its transactions do not give its header's count and Merkle root".into(),
            ));
        }
        let mut delta = StateDelta::default();
        for (index, tx) in block.transactions.iter().enumerate() {
            if let Some(weft_core::model::Payload::SetValidators(set)) = &tx.payload {
                let changes = match &mut delta.validators {
                    Some(changes) => changes,
                    None => delta
                        .validators
                        .insert(self.store.snapshot()?.validator_changes()?),
                };
                crate::state::schedule_change(
                    changes,
                    crate::state::ValidatorChange {
                        from_height: set.from_height,
                        validators: set.validators.clone(),
                        scheduled_at: Position {
                            height: header.height,
                            index: index as u32,
                        },
                    },
                );
            }
        }
        delta.tx_ids = ids.iter().copied().collect();
        self.store.commit_block(BlockCommit {
            block,
            ids: &ids,
            levels: &levels,
            delta: &delta,
            state: None,
            keep,
            certificate,
        })?;
        self.head = block.signed.clone();
        Ok(ids)
    }

    /// Validates a block produced elsewhere and commits it.
    pub fn import_block(&mut self, block: &Block) -> Result<()> {
        let validated = {
            let snapshot = self.store.snapshot()?;
            validate_block(&snapshot, self.chain_id, Some(&self.head), block)?
        };
        self.commit_validated(block, &validated)
    }
}

/// A block built by [`assemble`], and what happened to each offered transaction.
#[derive(Debug)]
pub struct Assembled {
    /// The sealed block; it has no transactions if none was accepted.
    pub block: Block,
    /// The block's state changes, Merkle levels and ids: what [`Ledger::commit_validated`] needs.
    pub validated: ValidatedBlock,
    pub accepted: Vec<(TxId, Position)>,
    /// Index in the offered batch, id, reason.
    pub rejected: Vec<(usize, TxId, RuleError)>,
}

/// Builds the block that follows `parent` from `admitted`, against `state` (the state after
/// `parent`): applies the rules in order, keeps the transactions that pass (at most
/// [`crate::block::MAX_BLOCK_TXS`]) and seals the block with `producer`. Nothing is committed.
pub fn assemble<V: StateView + ?Sized>(
    state: &V,
    chain_id: ChainId,
    parent: &SignedHeader,
    admitted: Admitted,
    producer: &SigningKey,
    now: u64,
) -> Result<Assembled> {
    let height = parent.header.height + 1;
    let timestamp = now.max(parent.header.timestamp);
    let Admitted {
        transactions,
        ids,
        failures,
    } = admitted;
    let mut overlay = Overlay::new(state);
    let context = RuleContext {
        chain_id,
        reference_time: timestamp,
        time_window_ms: None,
    };
    let mut accepted_txs = Vec::with_capacity(transactions.len());
    let mut accepted = Vec::with_capacity(transactions.len());
    let mut rejected = Vec::new();
    for (submitted, ((tx, id), failure)) in
        transactions.into_iter().zip(ids).zip(failures).enumerate()
    {
        if let Some(failure) = failure {
            rejected.push((submitted, id, failure));
            continue;
        }
        if accepted_txs.len() >= crate::block::MAX_BLOCK_TXS {
            rejected.push((
                submitted,
                id,
                RuleError::Format {
                    message: "the block is full; submit again".into(),
                },
            ));
            continue;
        }
        let position = Position {
            height,
            index: accepted_txs.len() as u32,
        };
        match apply(&mut overlay, &tx, id, position, &context) {
            Ok(()) => {
                accepted.push((id, position));
                accepted_txs.push(tx);
            }
            Err(LedgerError::Rule(rule)) => rejected.push((submitted, id, rule)),
            Err(other) => return Err(other),
        }
    }
    let delta = overlay.into_delta();
    let ids: Vec<TxId> = accepted.iter().map(|(id, _)| *id).collect();
    let levels = merkle_levels(&accepted_txs, &ids);
    let state_update = state.state_update(&delta)?;
    let block = {
        let header = BlockHeader {
            version: HEADER_VERSION,
            chain_id,
            height,
            timestamp,
            previous_digest: parent.header.hash(),
            merkle_root: levels.root(),
            tx_count: accepted_txs.len() as u32,
            consensus: ConsensusData::default(),
            producer: producer.public_key(),
            state_root: Some(state_update.root),
        };
        Block {
            signed: SignedHeader::seal(header, producer),
            transactions: accepted_txs,
        }
    };
    Ok(Assembled {
        block,
        validated: ValidatedBlock {
            ids,
            levels,
            delta,
            state: state_update,
        },
        accepted,
        rejected,
    })
}

/// The error for `block` breaking a block-level rule, with the reason.
fn bad_block(block: &Block) -> impl Fn(String) -> LedgerError {
    let height = block.signed.header.height;
    let hash = block.signed.header.hash();
    move |reason| LedgerError::BadBlock {
        height,
        hash,
        reason,
    }
}

/// A block whose form, links, Merkle root and seal are checked, with the transactions whose
/// signature does not verify.
#[derive(Debug)]
pub struct Checked {
    pub ids: Vec<TxId>,
    pub levels: MerkleLevels,
    pub bad_signatures: HashSet<usize>,
}

/// Whether a block's transaction signatures are verified when it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Verify every one (a block as received from elsewhere).
    Verify,
    /// Every transaction is a copy this process verified before (`Admitted::check`), and the
    /// block's Merkle root, which commits to each signature, was computed from these copies:
    /// verifying them again would find nothing new. The producer's seal is still verified.
    CheckedEarlier,
}

/// Checks everything about `block` as the successor of `previous` (or as block 0) that needs no
/// rule state: header fields, linkage, Merkle root, the producer's seal, and every transaction's
/// signature (returned, not failed on, so the caller names the first bad one in order). What a
/// node that keeps transactions stripped can still check.
pub fn check_block(
    chain_id: ChainId,
    previous: Option<&SignedHeader>,
    block: &Block,
) -> Result<Checked> {
    check_block_with(chain_id, previous, block, Signatures::Verify)
}

/// [`check_block`], verifying the transactions' signatures or not (see [`Signatures`]).
fn check_block_with(
    chain_id: ChainId,
    previous: Option<&SignedHeader>,
    block: &Block,
    signatures: Signatures,
) -> Result<Checked> {
    use weft_core::encoding::Canonical;
    let header = &block.signed.header;
    let bad = bad_block(block);
    block.validate().map_err(|error| bad(error.to_string()))?;
    if header.chain_id != chain_id {
        return Err(bad(format!(
            "chain id {} is not this chain's {chain_id}",
            header.chain_id
        )));
    }
    match previous {
        Some(previous) => {
            if header.height != previous.header.height + 1 {
                return Err(bad(format!(
                    "height {} does not follow {}",
                    header.height, previous.header.height
                )));
            }
            if header.previous_digest != previous.header.hash() {
                return Err(bad(format!(
                    "previous_digest {} is not the hash of block {}",
                    header.previous_digest, previous.header.height
                )));
            }
            if header.timestamp < previous.header.timestamp {
                return Err(bad("timestamp is earlier than the previous block's".into()));
            }
            if header.state_root.is_none() && previous.header.state_root.is_some() {
                return Err(bad(
                    "a block without a state root cannot follow one with a state root".into(),
                ));
            }
        }
        None => {
            if header.height != 0 || header.previous_digest != BlockHash(Hash32::default()) {
                return Err(bad(
                    "the first block must have height 0 and an all-zero previous_digest".into(),
                ));
            }
        }
    }
    let ids: Vec<TxId> = block.transactions.iter().map(Transaction::id).collect();
    let levels = merkle_levels(&block.transactions, &ids);
    if levels.root() != header.merkle_root {
        return Err(bad(format!(
            "merkle_root {} does not match the transactions (computed {})",
            header.merkle_root,
            levels.root()
        )));
    }
    block
        .signed
        .verify_producer()
        .map_err(|error| bad(format!("producer seal: {error}")))?;
    let bad_signatures: HashSet<usize> = match signatures {
        Signatures::Verify => verify_many(&block.transactions, &ids).into_iter().collect(),
        Signatures::CheckedEarlier => HashSet::new(),
    };
    Ok(Checked {
        ids,
        levels,
        bad_signatures,
    })
}

/// Checks everything about `block` as the successor of `previous` (or as block 0): header
/// fields, linkage, Merkle root, producer and its seal, every transaction's signature and every
/// rule, in order. Returns the state changes to commit.
pub fn validate_block<V: StateView + ?Sized>(
    state: &V,
    chain_id: ChainId,
    previous: Option<&SignedHeader>,
    block: &Block,
) -> Result<ValidatedBlock> {
    validate_block_with(state, chain_id, previous, block, Signatures::Verify)
}

/// [`validate_block`], verifying the transactions' signatures or not (see [`Signatures`]).
pub fn validate_block_with<V: StateView + ?Sized>(
    state: &V,
    chain_id: ChainId,
    previous: Option<&SignedHeader>,
    block: &Block,
    signatures: Signatures,
) -> Result<ValidatedBlock> {
    let header = &block.signed.header;
    let bad = bad_block(block);
    let Checked {
        ids,
        levels,
        bad_signatures,
    } = check_block_with(chain_id, previous, block, signatures)?;
    let mut overlay = Overlay::new(state);
    let context = RuleContext {
        chain_id,
        reference_time: header.timestamp,
        time_window_ms: None,
    };
    for (index, (tx, id)) in block.transactions.iter().zip(&ids).enumerate() {
        let position = Position {
            height: header.height,
            index: index as u32,
        };
        let outcome = if bad_signatures.contains(&index) {
            Err(RuleError::Signature {
                message: "the transaction signature does not verify".into(),
            }
            .into())
        } else {
            apply(&mut overlay, tx, *id, position, &context)
        };
        if let Err(error) = outcome {
            return Err(match error {
                LedgerError::Rule(rule) => LedgerError::BadTransaction {
                    height: header.height,
                    index: index as u32,
                    tx_id: *id,
                    source: rule,
                },
                other => other,
            });
        }
    }
    // The producer must be one of the chain's producers at this height: the genesis producers
    // (for block 0, those of the genesis inside it), or the validators of a later change.
    if overlay.genesis()?.is_none() {
        return Err(bad("no genesis".into()));
    }
    if !overlay
        .schedule()?
        .producers_at(header.height)
        .contains(&header.producer)
    {
        return Err(bad(format!(
            "producer {} is not one of the chain's producers at height {}",
            header.producer, header.height
        )));
    }
    let delta = overlay.into_delta();
    let state_update = state.state_update(&delta)?;
    if let Some(root) = header.state_root
        && root != state_update.root
    {
        return Err(bad(format!(
            "state_root {root} is not the state after the block (computed {})",
            state_update.root
        )));
    }
    Ok(ValidatedBlock {
        ids,
        levels,
        delta,
        state: state_update,
    })
}
