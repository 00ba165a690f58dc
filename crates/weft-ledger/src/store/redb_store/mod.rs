//! The durable embedded store, on redb (see docs/adr/0001-storage-redb.md).
//!
//! One redb write transaction per block, committed with `Durability::Immediate`: when
//! [`RedbStore::commit_block`] returns, the block, its transactions and its rule-state changes
//! are on disk together; a crash before that leaves none of them. redb's copy-on-write B-trees
//! and checksummed commit slots make the file recover to the last commit on open.
//!
//! Tables keyed by ledger position (blocks, transactions, Merkle trees) are appended to. Tables
//! keyed by a hash (transaction id, fingerprint, resource, and the rule state) take random
//! keys, and a copy-on-write B-tree rewrites a whole page for each key it touches: written per
//! block, they cost about one 4 KiB page per transaction once the ledger is large. So a block
//! commits its rule-state changes as one sequential record (`pending_deltas`), the store keeps
//! the changes of recent blocks in memory ([`Pending`]), and merges them into the hash-keyed
//! tables, in key order, in the same write transaction as every `merge_after_txs`-th
//! transaction's block (and on [`RedbStore::flush`] or drop) — or, as a node does it, frozen as
//! a generation whose rows are sorted on a thread of their own and written a step at a time
//! between blocks ([`RedbStore::merge_some`]), each step committed without a sync of its own.
//! Everything is derived from durable data: on open, the rows of `pending_deltas` and their
//! blocks rebuild [`Pending`] exactly, so a process killed at any moment loses nothing that was
//! committed.

mod derived;
mod merge;
mod network;
mod pending;
mod state_tree;
mod tables;

use std::path::Path;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata,
};
use weft_core::encoding::encode;
use weft_core::model::Genesis;
use weft_core::{BlockHash, Fingerprint, Hash32, PublicKey, ResourceId, TxId};

pub use self::derived::Derived;
use self::merge::{Merging, forget_deltas, merge_into_tables};
use self::pending::{IndexEntries, Pending};
use self::tables::{
    BY_FINGERPRINT, BY_RESOURCE, HASHES, HEADERS, HISTORIES, KEYS, META, PARTS, PENDING_DELTAS,
    RECEIPTS, RESOURCES, STORAGE_VERSION, TREES, TX_POSITIONS, TXS, decode_stored, key_key,
    keys_with_prefix, scan_index, storage, tile_key, with_waiting_keys,
};
use super::{BlockCommit, Inclusion, MergeStep, Store, missing_block_part, receipt_key};
use crate::block::{MerkleLevels, SignedHeader};
use crate::error::{LedgerError, Result};
use crate::state::{
    KeyStatus, OwnerEntry, PartEntry, Position, ReceiptEntry, ResourceEntry, StateDelta, StateView,
    ValidatorChange,
};
use crate::tx::Transaction;

/// Default number of transactions whose index and state changes wait in memory before they are
/// merged into the hash-keyed tables (about 0.5 KiB of memory each, so about 50 MiB). Raised
/// from 50,000: rules then read recent state from memory, and merges happen half as often
/// (docs/benchmarks.md has both).
pub const DEFAULT_MERGE_AFTER_TXS: usize = 100_000;

/// Most bytes of the file's pages redb keeps in memory, by default: at a million claims and
/// sends a 256 MiB cache made every merge read pages back (docs/benchmarks.md, "Page cache").
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// How a [`RedbStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbOptions {
    /// Index and state changes wait in memory until this many transactions have them (0:
    /// merge with every block).
    pub merge_after_txs: usize,
    /// Most bytes of pages held in memory (an upper bound: a small ledger takes less).
    pub cache_bytes: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            merge_after_txs: DEFAULT_MERGE_AFTER_TXS,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// `meta` `rule_state` of a store that took a block on its certificate alone.
const RULE_STATE_CERTIFIED: &[u8] = b"certified";

/// The redb-backed store.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    pending: Pending,
    /// An older generation of waiting changes, being merged a step at a time.
    merging: Option<Merging>,
    merge_after_txs: usize,
    /// The state tree of the head (derived: built on open, see [`state_tree`]).
    tree: weft_core::smt::Tree,
    /// `false` once a block was taken on its certificate alone (`meta` `rule_state` =
    /// `certified`): see [`Store::keeps_rule_state`].
    rule_state: bool,
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`, merging index and state changes every
    /// [`DEFAULT_MERGE_AFTER_TXS`] transactions.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, DEFAULT_MERGE_AFTER_TXS)
    }

    /// Opens (or creates, mode 0600) the database file at `path`; index and state changes wait
    /// in memory until `merge_after_txs` transactions have them (0: merge with every block).
    pub fn open_with(path: &Path, merge_after_txs: usize) -> Result<Self> {
        Self::open_with_options(
            path,
            RedbOptions {
                merge_after_txs,
                ..RedbOptions::default()
            },
        )
    }

    /// [`RedbStore::open_with`], every option given.
    pub fn open_with_options(path: &Path, options: RedbOptions) -> Result<Self> {
        let merge_after_txs = options.merge_after_txs;
        // redb would create the file readable by everyone (umask permitting).
        crate::files::create_private(path).map_err(|error| {
            LedgerError::Storage(format!("cannot create {}: {error}", path.display()))
        })?;
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(|error| match error {
                redb::DatabaseError::DatabaseAlreadyOpen => LedgerError::Storage(format!(
                    "{} is in use by another weft process",
                    path.display()
                )),
                other => LedgerError::Storage(format!("cannot open {}: {other}", path.display())),
            })?;
        // Check the layout, and create every table up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(storage)?;
        let mut upgrade_histories = false;
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let stored = meta
                .get("storage_version")
                .map_err(storage)?
                .map(|value| value.value().to_vec());
            match stored {
                Some(version) if version == STORAGE_VERSION => {}
                Some(version) if version == b"4" || version == b"5" => {
                    // Layout 5 also finds a record by its body's fingerprint; layout 6 keeps
                    // every fingerprint's history (written once the store is open, below).
                    drop(meta);
                    if version == b"4" {
                        tables::index_records(&txn)?;
                    }
                    upgrade_histories = true;
                    meta = txn.open_table(META).map_err(storage)?;
                    meta.insert("storage_version", STORAGE_VERSION)
                        .map_err(storage)?;
                }
                Some(version) => {
                    return Err(LedgerError::Storage(format!(
                        "{} has storage layout {}, this weft reads layout {}",
                        path.display(),
                        String::from_utf8_lossy(&version),
                        String::from_utf8_lossy(STORAGE_VERSION)
                    )));
                }
                None => {
                    let headers = txn.open_table(HEADERS).map_err(storage)?;
                    if !headers.is_empty().map_err(storage)? {
                        return Err(LedgerError::Storage(format!(
                            "{} was written by an earlier weft (storage layout 1); this weft reads layout {}",
                            path.display(),
                            String::from_utf8_lossy(STORAGE_VERSION)
                        )));
                    }
                    meta.insert("storage_version", STORAGE_VERSION)
                        .map_err(storage)?;
                }
            }
            drop(meta);
            txn.open_table(HEADERS).map_err(storage)?;
            txn.open_table(TREES).map_err(storage)?;
            txn.open_table(HASHES).map_err(storage)?;
            txn.open_table(TXS).map_err(storage)?;
            txn.open_table(TX_POSITIONS).map_err(storage)?;
            txn.open_table(BY_FINGERPRINT).map_err(storage)?;
            txn.open_table(BY_RESOURCE).map_err(storage)?;
            txn.open_table(META).map_err(storage)?;
            txn.open_table(RESOURCES).map_err(storage)?;
            txn.open_table(KEYS).map_err(storage)?;
            txn.open_table(RECEIPTS).map_err(storage)?;
            txn.open_table(PARTS).map_err(storage)?;
            txn.open_table(HISTORIES).map_err(storage)?;
            txn.open_table(PENDING_DELTAS).map_err(storage)?;
            network::create_tables(&txn)?;
        }
        txn.commit().map_err(storage)?;
        let mut store = RedbStore {
            db,
            pending: Pending::default(),
            merging: None,
            merge_after_txs,
            tree: weft_core::smt::Tree::new(),
            rule_state: true,
        };
        store.rule_state = store
            .read()?
            .open_table(META)
            .map_err(storage)?
            .get("rule_state")
            .map_err(storage)?
            .is_none_or(|value| value.value() != RULE_STATE_CERTIFIED);
        // The rebuilt changes may be partly in the tables already (a merge step was under way
        // at the crash): they become the generation under merge, whose lookups drop doubles.
        let rebuilt = store.load_pending()?;
        if !rebuilt.is_empty() {
            store.merging = Some(Merging::rebuilt(rebuilt));
        }
        if upgrade_histories && store.rule_state {
            store.write_histories()?;
        }
        if store.rule_state {
            store.tree = store.build_state_tree()?;
        }
        Ok(store)
    }

    /// Rebuilds the in-memory changes of the blocks listed in `pending_deltas`.
    fn load_pending(&self) -> Result<Pending> {
        let txn = self.read()?;
        let deltas = txn.open_table(PENDING_DELTAS).map_err(storage)?;
        let mut pending = Pending::default();
        for row in deltas.iter().map_err(storage)? {
            let (height, bytes) = row.map_err(storage)?;
            let height = height.value();
            let delta = state_tree::decode_delta(bytes.value())?;
            let transactions = self.block_transactions(height)?;
            let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
            pending.add(
                height,
                IndexEntries::of_block(height, &transactions, &ids),
                &delta,
            );
        }
        Ok(pending)
    }

    /// Blocks whose changes wait in memory (or are being merged), and their transaction count.
    pub fn pending(&self) -> (usize, usize) {
        let merging = self.merging.as_ref().map(|merging| &*merging.changes);
        (
            self.pending.heights.len() + merging.map_or(0, |changes| changes.heights.len()),
            self.pending.txs + merging.map_or(0, |changes| changes.txs),
        )
    }

    /// Merges one step of the waiting changes into the tables, in a write transaction of its
    /// own: a node calls this after each block, between blocks, so that no block waits for a
    /// whole merge. When no merge is under way and at least `start_at` transactions wait, their
    /// changes are frozen as the generation to merge (newer blocks gather beside it). Each step
    /// writes the share of every sorted list that `budget_txs` transactions are of the
    /// generation; if newer changes have grown past three times `start_at`, the step finishes
    /// the generation. Returns whether anything was written.
    ///
    /// A generation's rows are sorted on a thread of their own (`merge::Work`): the call that
    /// freezes it, and those made before its rows are ready, write nothing (unless newer
    /// changes are that far behind). A step is committed without a sync of its own
    /// (`Durability::None`): the next block's durable commit makes it durable with the block,
    /// and a crash before that finds the file as it was before the step, with every
    /// `pending_deltas` row still there to rebuild the generation from.
    pub fn merge_some(&mut self, start_at: usize, budget_txs: usize) -> Result<MergeStep> {
        if self.merging.is_none() {
            if self.pending.is_empty() || self.pending.txs < start_at {
                return Ok(MergeStep::Idle);
            }
            self.merging = Some(Merging::start(std::mem::take(&mut self.pending)));
        }
        let behind = self.pending.txs >= start_at.max(1).saturating_mul(3);
        let Some(merging) = &mut self.merging else {
            return Ok(MergeStep::Idle);
        };
        let changes = merging.changes.clone();
        let Some(work) = merging.work(behind) else {
            return Ok(MergeStep::Sorting);
        };
        let fraction = if behind {
            1.0
        } else {
            budget_txs.max(1) as f64 / changes.txs.max(1) as f64
        };
        let step = work.step(fraction);
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(redb::Durability::None)
            .map_err(storage)?;
        work.write(&txn, step)?;
        if step.ends == work.lens() {
            forget_deltas(&txn, &changes.heights)?;
        }
        txn.commit().map_err(storage)?;
        if work.advance(step) {
            self.merging = None;
        }
        Ok(MergeStep::Wrote)
    }

    /// Writes what is left of a generation under merge, in `txn` (waiting for its rows to be
    /// sorted if they are not yet).
    fn finish_merging(&mut self, txn: &redb::WriteTransaction) -> Result<()> {
        if let Some(merging) = &mut self.merging {
            let changes = merging.changes.clone();
            if let Some(work) = merging.work(true) {
                work.write(txn, work.step(1.0))?;
            }
            forget_deltas(txn, &changes.heights)?;
        }
        Ok(())
    }

    /// Closes the store without merging, leaving the file as a killed process would.
    #[doc(hidden)]
    pub fn abandon_for_tests(mut self) {
        self.pending = Pending::default();
        self.merging = None;
    }

    /// Writes a block and everything with it in one durable write transaction.
    fn write_block(&mut self, commit: &BlockCommit<'_>) -> Result<()> {
        let signed = &commit.block.signed;
        let height = signed.header.height;
        let entries = IndexEntries::of_block(height, &commit.block.transactions, commit.ids);
        let merge = self.pending().1 + commit.ids.len() >= self.merge_after_txs;
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut headers = txn.open_table(HEADERS).map_err(storage)?;
            if headers.get(height).map_err(storage)?.is_some() {
                return Err(LedgerError::Invalid(format!(
                    "block {height} is already stored"
                )));
            }
            headers
                .insert(height, encode(signed).as_slice())
                .map_err(storage)?;
            let mut trees = txn.open_table(TREES).map_err(storage)?;
            for (key, bytes) in commit.levels.tiles() {
                trees
                    .insert(&tile_key(height, key), bytes.as_slice())
                    .map_err(storage)?;
            }
            drop(trees);
            txn.open_table(HASHES)
                .map_err(storage)?
                .insert(signed.header.hash().as_bytes(), height)
                .map_err(storage)?;
            let mut txs = txn.open_table(TXS).map_err(storage)?;
            let mut buffer = Vec::with_capacity(1024);
            for (index, tx) in commit.block.transactions.iter().enumerate() {
                let key = Position {
                    height,
                    index: index as u32,
                }
                .to_key();
                buffer.clear();
                if commit.keeps(index) {
                    borsh::to_writer(&mut buffer, tx).map_err(storage)?;
                } else {
                    borsh::to_writer(&mut buffer, &tx.stripped()).map_err(storage)?;
                }
                txs.insert(&key, buffer.as_slice()).map_err(storage)?;
            }
        }
        network::commit(&txn, height, commit.certificate, &commit.block.transactions)?;
        if commit.state.is_none() {
            txn.open_table(META)
                .map_err(storage)?
                .insert("rule_state", RULE_STATE_CERTIFIED)
                .map_err(storage)?;
        }
        if merge {
            self.finish_merging(&txn)?;
            merge_into_tables(&txn, &self.pending, Some((&entries, commit.delta)))?;
        } else {
            txn.open_table(PENDING_DELTAS)
                .map_err(storage)?
                .insert(height, encode(commit.delta).as_slice())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        if merge {
            self.pending = Pending::default();
            self.merging = None;
        } else {
            self.pending.add(height, entries, commit.delta);
        }
        Ok(())
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(storage)
    }

    /// Index entries from the tables, with the waiting ones of both generations added, in
    /// ledger order. An entry of the generation under merge may already be in the tables:
    /// it is kept once.
    fn with_waiting(
        &self,
        mut out: Vec<(Position, TxId)>,
        get: impl Fn(&Pending) -> Option<&Vec<(Position, TxId)>>,
    ) -> Vec<(Position, TxId)> {
        if let Some(merging) = &self.merging
            && let Some(entries) = get(&merging.changes)
        {
            out.extend_from_slice(entries);
            out.sort_unstable_by_key(|(position, _)| *position);
            out.dedup_by_key(|(position, _)| *position);
        }
        if let Some(entries) = get(&self.pending) {
            out.extend_from_slice(entries);
        }
        out
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Best effort: what is not merged here is rebuilt from `pending_deltas` on the next open.
        let _ = self.flush();
    }
}

/// The audit path of leaf `index` of block `height` (of `size` leaves), from its tiles.
fn path_in(
    txn: &ReadTransaction,
    height: u64,
    size: u32,
    index: u32,
) -> Result<Option<Vec<Hash32>>> {
    let trees = txn.open_table(TREES).map_err(storage)?;
    MerkleLevels::path_from_tiles(size as usize, index as usize, |key| {
        Ok(trees
            .get(&tile_key(height, key))
            .map_err(storage)?
            .map(|bytes| bytes.value().to_vec()))
    })
}

/// A read snapshot with the state tables open, and the changes not merged into them yet.
#[derive(Debug)]
pub struct RedbSnapshot<'a> {
    pending: &'a Pending,
    /// The generation under merge, if any: older than `pending`, newer than the tables.
    merging: Option<&'a Pending>,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    resources: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    keys: ReadOnlyTable<&'static [u8; 64], &'static [u8]>,
    receipts: ReadOnlyTable<&'static [u8; 65], &'static [u8]>,
    parts: ReadOnlyTable<&'static str, &'static [u8]>,
    histories: ReadOnlyTable<&'static [u8; 33], &'static [u8]>,
    positions: ReadOnlyTable<&'static [u8; 32], &'static [u8; 12]>,
    tree: &'a weft_core::smt::Tree,
    /// See [`Store::keeps_rule_state`].
    rule_state: bool,
}

impl RedbSnapshot<'_> {
    /// Refuses `what` when the store keeps no rule state.
    fn kept(&self, what: &str) -> Result<()> {
        if self.rule_state {
            Ok(())
        } else {
            Err(super::not_kept(what))
        }
    }

    /// The newest waiting change that `get` finds: in `pending`, else in the generation under
    /// merge.
    fn waiting<T>(&self, get: impl Fn(&Pending) -> Option<T>) -> Option<T> {
        get(self.pending).or_else(|| self.merging.and_then(&get))
    }
}

impl StateView for RedbSnapshot<'_> {
    fn anchors(&self) -> Result<crate::state::Anchors> {
        self.kept("the chains anchored here")?;
        if let Some(anchors) = self.waiting(|changes| changes.state.anchors.clone()) {
            return Ok(anchors);
        }
        match self.meta.get("anchors").map_err(storage)? {
            Some(bytes) => decode_stored("anchored chains", bytes.value()),
            None => Ok(crate::state::Anchors::default()),
        }
    }
    fn validator_changes(&self) -> Result<Vec<ValidatorChange>> {
        if let Some(changes) = self.waiting(|changes| changes.state.validators.clone()) {
            return Ok(changes);
        }
        match self.meta.get("validators").map_err(storage)? {
            Some(bytes) => decode_stored("validator schedule", bytes.value()),
            None => Ok(Vec::new()),
        }
    }
    fn genesis(&self) -> Result<Option<Genesis>> {
        if let Some(genesis) = self.waiting(|changes| changes.state.genesis.clone()) {
            return Ok(Some(genesis));
        }
        match self.meta.get("genesis").map_err(storage)? {
            Some(bytes) => Ok(Some(decode_stored("genesis", bytes.value())?)),
            None => Ok(None),
        }
    }
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceEntry>> {
        self.kept("who a resource is")?;
        if let Some(entry) = self.waiting(|changes| changes.state.resources.get(id).cloned()) {
            return Ok(Some(entry));
        }
        self.resources
            .get(id.as_bytes())
            .map_err(storage)?
            .map(|bytes| decode_stored("resource", bytes.value()))
            .transpose()
    }
    fn key_status(&self, id: &ResourceId, key: &PublicKey) -> Result<Option<KeyStatus>> {
        self.kept("a key's status")?;
        if let Some(status) = self.waiting(|changes| changes.state.keys.get(&(*id, *key)).copied())
        {
            return Ok(Some(status));
        }
        self.keys
            .get(&key_key(id, key))
            .map_err(storage)?
            .map(|bytes| decode_stored("key", bytes.value()))
            .transpose()
    }
    fn owner(&self, fingerprint: &Fingerprint) -> Result<Option<OwnerEntry>> {
        self.kept("who owns an asset")?;
        if let Some(entry) = self.waiting(|changes| changes.state.owners.get(fingerprint).copied())
        {
            return Ok(Some(entry));
        }
        // An owner is kept in its fingerprint's history (there is no table of owners apart).
        Ok(self.history(fingerprint)?.and_then(|history| history.owner))
    }
    fn receipt(
        &self,
        fingerprint: &Fingerprint,
        resource: &ResourceId,
    ) -> Result<Option<ReceiptEntry>> {
        self.kept("who received an asset")?;
        if let Some(entry) = self.waiting(|changes| {
            changes
                .state
                .receipts
                .get(&(*fingerprint, *resource))
                .copied()
        }) {
            return Ok(Some(entry));
        }
        self.receipts
            .get(&receipt_key(fingerprint, resource))
            .map_err(storage)?
            .map(|bytes| decode_stored("receipt", bytes.value()))
            .transpose()
    }
    fn part(&self, code: &str) -> Result<Option<PartEntry>> {
        self.kept("a part")?;
        if let Some(entry) = self.waiting(|changes| changes.state.parts.get(code).cloned()) {
            return Ok(Some(entry));
        }
        self.parts
            .get(code)
            .map_err(storage)?
            .map(|bytes| decode_stored("part", bytes.value()))
            .transpose()
    }
    fn history(&self, fingerprint: &Fingerprint) -> Result<Option<crate::state::HistoryEntry>> {
        self.kept("an asset's history")?;
        if let Some(entry) =
            self.waiting(|changes| changes.state.histories.get(fingerprint).copied())
        {
            return Ok(Some(entry));
        }
        self.histories
            .get(&fingerprint.key_bytes())
            .map_err(storage)?
            .map(|bytes| decode_stored("history", bytes.value()))
            .transpose()
    }
    fn state_update(&self, pending: &StateDelta) -> Result<weft_core::smt::Prepared> {
        self.kept("the state after a block")?;
        Ok(crate::commitment::prepare(self.tree, pending))
    }
    fn contains_tx(&self, id: &TxId) -> Result<bool> {
        if self
            .waiting(|changes| changes.positions.get(id).copied())
            .is_some()
        {
            return Ok(true);
        }
        Ok(self
            .positions
            .get(id.as_bytes())
            .map_err(storage)?
            .is_some())
    }
}

impl Store for RedbStore {
    type Snapshot<'a> = RedbSnapshot<'a>;

    fn snapshot(&self) -> Result<RedbSnapshot<'_>> {
        let txn = self.read()?;
        Ok(RedbSnapshot {
            pending: &self.pending,
            merging: self.merging.as_ref().map(|merging| &*merging.changes),
            meta: txn.open_table(META).map_err(storage)?,
            resources: txn.open_table(RESOURCES).map_err(storage)?,
            keys: txn.open_table(KEYS).map_err(storage)?,
            receipts: txn.open_table(RECEIPTS).map_err(storage)?,
            parts: txn.open_table(PARTS).map_err(storage)?,
            histories: txn.open_table(HISTORIES).map_err(storage)?,
            positions: txn.open_table(TX_POSITIONS).map_err(storage)?,
            tree: &self.tree,
            rule_state: self.rule_state,
        })
    }

    fn keeps_rule_state(&self) -> bool {
        self.rule_state
    }

    fn commit_block(&mut self, commit: BlockCommit<'_>) -> Result<()> {
        let Some(state) = commit.state else {
            // Taken on its certificate: no state tree to follow; the flag is written with
            // the block.
            self.write_block(&commit)?;
            self.rule_state = false;
            self.tree = weft_core::smt::Tree::new();
            return Ok(());
        };
        if !self.rule_state {
            return Err(super::not_kept("the state after a block"));
        }
        // The state tree follows the block on a thread of its own while the block is written
        // and synced (the sync leaves this thread idle). A write that fails leaves the tree
        // built again from the tables, as they are.
        let mut tree = std::mem::take(&mut self.tree);
        let delta = commit.delta;
        let (tree, written) = std::thread::scope(|scope| {
            let follower = scope.spawn(move || {
                crate::commitment::apply(&mut tree, state, delta);
                tree
            });
            let written = self.write_block(&commit);
            (follower.join(), written)
        });
        match written {
            Ok(()) => {
                self.tree = tree.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                super::check_state_root(&commit, self.tree.root())
            }
            Err(error) => {
                self.tree = self.build_state_tree()?;
                Err(error)
            }
        }
    }

    /// Merges the changes waiting in memory into the tables (one write transaction).
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.merging.is_none() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(storage)?;
        self.finish_merging(&txn)?;
        merge_into_tables(&txn, &self.pending, None)?;
        txn.commit().map_err(storage)?;
        self.pending = Pending::default();
        self.merging = None;
        Ok(())
    }

    fn merge_some(&mut self, start_at: usize, budget_txs: usize) -> Result<MergeStep> {
        RedbStore::merge_some(self, start_at, budget_txs)
    }

    fn state_root(&self) -> Result<Hash32> {
        if !self.rule_state {
            return Err(super::not_kept("the state root"));
        }
        Ok(self.tree.root())
    }
    fn state_proof(&self, key: &crate::commitment::StateKey) -> Result<weft_core::smt::Proof> {
        if !self.rule_state {
            return Err(super::not_kept("a state proof"));
        }
        Ok(self.tree.prove(&key.hash()))
    }
    fn head(&self) -> Result<Option<SignedHeader>> {
        let table = self.read()?.open_table(HEADERS).map_err(storage)?;
        match table.last().map_err(storage)? {
            Some((_, bytes)) => Ok(Some(decode_stored("block header", bytes.value())?)),
            None => Ok(None),
        }
    }

    fn signed_header(&self, height: u64) -> Result<Option<SignedHeader>> {
        let table = self.read()?.open_table(HEADERS).map_err(storage)?;
        table
            .get(height)
            .map_err(storage)?
            .map(|bytes| decode_stored("block header", bytes.value()))
            .transpose()
    }

    fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>> {
        let table = self.read()?.open_table(HASHES).map_err(storage)?;
        Ok(table
            .get(hash.as_bytes())
            .map_err(storage)?
            .map(|guard| guard.value()))
    }

    fn block_transactions(&self, height: u64) -> Result<Vec<Transaction>> {
        let table = self.read()?.open_table(TXS).map_err(storage)?;
        let start = Position { height, index: 0 }.to_key();
        let end = Position {
            height,
            index: u32::MAX,
        }
        .to_key();
        let mut out = Vec::new();
        for entry in table.range::<&[u8; 12]>(&start..=&end).map_err(storage)? {
            let (_, bytes) = entry.map_err(storage)?;
            out.push(decode_stored("transaction", bytes.value())?);
        }
        Ok(out)
    }

    fn tx_position(&self, id: &TxId) -> Result<Option<Position>> {
        let merging = self.merging.as_ref().map(|merging| &*merging.changes);
        if let Some(position) = self
            .pending
            .positions
            .get(id)
            .or_else(|| merging.and_then(|changes| changes.positions.get(id)))
        {
            return Ok(Some(*position));
        }
        let table = self.read()?.open_table(TX_POSITIONS).map_err(storage)?;
        match table.get(id.as_bytes()).map_err(storage)? {
            Some(bytes) => Ok(Some(
                Position::from_key(bytes.value())
                    .ok_or_else(|| LedgerError::Corrupt("tx position".into()))?,
            )),
            None => Ok(None),
        }
    }

    fn tx_at(&self, position: Position) -> Result<Option<Transaction>> {
        let table = self.read()?.open_table(TXS).map_err(storage)?;
        table
            .get(&position.to_key())
            .map_err(storage)?
            .map(|bytes| decode_stored("transaction", bytes.value()))
            .transpose()
    }

    fn merkle_path(&self, height: u64, index: u32) -> Result<Option<Vec<Hash32>>> {
        let txn = self.read()?;
        let Some(header) = txn
            .open_table(HEADERS)
            .map_err(storage)?
            .get(height)
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let header: SignedHeader = decode_stored("block header", header.value())?;
        path_in(&txn, height, header.header.tx_count, index)
    }

    /// One read transaction for the whole proof, and each record read once.
    fn inclusion(&self, id: &TxId) -> Result<Option<Inclusion>> {
        let Some(position) = self.tx_position(id)? else {
            return Ok(None);
        };
        let txn = self.read()?;
        let Some(tx) = txn
            .open_table(TXS)
            .map_err(storage)?
            .get(&position.to_key())
            .map_err(storage)?
            .map(|bytes| decode_stored::<Transaction>("transaction", bytes.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let signed: SignedHeader = txn
            .open_table(HEADERS)
            .map_err(storage)?
            .get(position.height)
            .map_err(storage)?
            .map(|bytes| decode_stored("block header", bytes.value()))
            .transpose()?
            .ok_or_else(|| missing_block_part("block", id, position.height))?;
        let path = path_in(
            &txn,
            position.height,
            signed.header.tx_count,
            position.index,
        )?
        .ok_or_else(|| missing_block_part("merkle tree of block", id, position.height))?;
        Ok(Some(Inclusion {
            tx,
            position,
            signed,
            path,
        }))
    }

    fn by_fingerprint(&self, fingerprint: &Fingerprint) -> Result<Vec<(Position, TxId)>> {
        let table = self.read()?.open_table(BY_FINGERPRINT).map_err(storage)?;
        let key = fingerprint.key_bytes();
        let out = scan_index(&table, &key)?;
        Ok(self.with_waiting(out, |changes| changes.by_fingerprint.get(&key)))
    }

    fn by_resource(&self, resource: &ResourceId) -> Result<Vec<(Position, TxId)>> {
        let table = self.read()?.open_table(BY_RESOURCE).map_err(storage)?;
        let out = scan_index(&table, &resource.0.0)?;
        Ok(self.with_waiting(out, |changes| changes.by_resource.get(resource)))
    }

    fn txs_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<TxId>> {
        let table = self.read()?.open_table(TX_POSITIONS).map_err(storage)?;
        let stored = keys_with_prefix(&table, prefix, limit)?;
        // Positions still waiting to be merged into the table.
        let merging = self.merging.as_ref().map(|merging| &*merging.changes);
        let waiting = std::iter::once(&self.pending)
            .chain(merging)
            .flat_map(|changes| changes.positions.keys().map(|id| id.0.0));
        Ok(with_waiting_keys(stored, waiting, prefix, limit)
            .into_iter()
            .map(|id| TxId(Hash32(id)))
            .collect())
    }

    fn certificate_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>> {
        network::certificate_in(&self.read()?, from, to, true)
    }

    fn derived_difference(&self, expected: &Derived) -> Result<Option<String>> {
        self.compare_derived(expected)
    }

    fn first_certificate_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>> {
        network::certificate_in(&self.read()?, from, to, false)
    }

    fn network_peers(&self) -> Result<Option<crate::store::network::NetworkPeers>> {
        network::peers(&self.read()?)
    }

    fn adopt_network_record(
        &mut self,
        record: &crate::store::network::NetworkRecord,
    ) -> Result<()> {
        crate::store::network::check_adoption(self.head()?.as_ref(), record)?;
        let txn = self.db.begin_write().map_err(storage)?;
        if network::adopt(&txn, record)? {
            txn.commit().map_err(storage)?;
        } else {
            txn.abort().map_err(storage)?;
        }
        Ok(())
    }

    fn resources_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<ResourceId>> {
        let table = self.read()?.open_table(RESOURCES).map_err(storage)?;
        let stored = keys_with_prefix(&table, prefix, limit)?;
        let merging = self.merging.as_ref().map(|merging| &*merging.changes);
        let waiting = std::iter::once(&self.pending)
            .chain(merging)
            .flat_map(|changes| changes.state.resources.keys().map(|id| id.0.0));
        Ok(with_waiting_keys(stored, waiting, prefix, limit)
            .into_iter()
            .map(|id| ResourceId(Hash32(id)))
            .collect())
    }
}
