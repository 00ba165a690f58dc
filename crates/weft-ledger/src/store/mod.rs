//! Storage behind a trait. [`RedbStore`] is the durable embedded default (one ACID write
//! transaction per block: the block, its transactions, every index and the rule state commit
//! together or not at all); [`MemoryStore`] keeps everything in memory, for tests.
//!
//! Indexes: transaction id → position, fingerprint → every transaction mentioning it,
//! resource → every transaction naming it, height → block, block hash → height. Transactions are
//! keyed by their position (height, index) so appends are sequential.

mod memory;
pub use memory::MemoryState;
pub mod network;
mod redb_store;

pub use memory::MemoryStore;
pub use redb_store::{
    DEFAULT_CACHE_BYTES, DEFAULT_MERGE_AFTER_TXS, Derived, RedbOptions, RedbStore,
};

use weft_core::{BlockHash, Fingerprint, Hash32, ResourceId, TxId};

use crate::block::{Block, MerkleLevels, SignedHeader};
use crate::error::Result;
use crate::state::{Position, StateDelta, StateView};
use crate::tx::Transaction;
use network::{NetworkPeers, NetworkRecord};

/// Everything a block commit writes, prepared by the ledger.
#[derive(Debug)]
pub struct BlockCommit<'a> {
    pub block: &'a Block,
    pub ids: &'a [TxId],
    pub levels: &'a MerkleLevels,
    pub delta: &'a StateDelta,
    /// The state root after the block, with what the state tree needs to get there; `None`
    /// for a block taken on its certificate without replaying the rules (a node that follows
    /// on proofs): from then on the store keeps no rule state ([`Store::keeps_rule_state`]).
    pub state: Option<&'a crate::commitment::StateUpdate>,
    /// Which transactions are stored whole (`true`) and which stripped of their payload; `None`
    /// keeps every one. Indexes are built from the whole transactions either way, so a stripped
    /// transaction is still found by fingerprint and resource (see [`crate::filter`]).
    pub keep: Option<&'a [bool]>,
    /// The consensus certificate that finalized the block (a network node's; opaque to the
    /// ledger), stored with it in the same write. See [`network`].
    pub certificate: Option<&'a [u8]>,
}

impl BlockCommit<'_> {
    /// Is transaction `index` stored whole?
    pub fn keeps(&self, index: usize) -> bool {
        self.keep
            .is_none_or(|keep| keep.get(index).copied().unwrap_or(true))
    }
}

/// What an inclusion proof is made of, read together.
#[derive(Debug)]
pub struct Inclusion {
    pub tx: Transaction,
    pub position: Position,
    pub signed: SignedHeader,
    pub path: Vec<Hash32>,
}

/// What one [`Store::merge_some`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeStep {
    /// Nothing to merge: not enough changes wait, or the store defers none.
    Idle,
    /// A generation of changes waits for its rows to be sorted (on a thread of their own);
    /// nothing was written. Call again later.
    Sorting,
    /// One step was written.
    Wrote,
}

/// Durable (or not) storage of one chain.
pub trait Store {
    /// A consistent read-only view of rule state, valid until dropped.
    type Snapshot<'a>: StateView
    where
        Self: 'a;

    fn snapshot(&self) -> Result<Self::Snapshot<'_>>;
    /// Does the store keep the rule state? Not once it took a block on its certificate alone
    /// (`BlockCommit::state` `None`): then its snapshots answer the genesis and the validator
    /// schedule (followed from transactions every node keeps whole) and refuse everything else
    /// with [`crate::LedgerError::NotKept`], and it has no state root of its own.
    fn keeps_rule_state(&self) -> bool;
    /// Commits a block with its indexes and state changes atomically.
    fn commit_block(&mut self, commit: BlockCommit<'_>) -> Result<()>;
    /// Merges changes a store keeps aside into its tables (see [`RedbStore`]); a no-op for
    /// stores that defer nothing. Committed data is durable either way.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// Merges one step of the changes a store keeps aside (see [`RedbStore::merge_some`]);
    /// says what it did. A no-op for stores that defer nothing.
    fn merge_some(&mut self, start_at: usize, budget_txs: usize) -> Result<MergeStep> {
        let _ = (start_at, budget_txs);
        Ok(MergeStep::Idle)
    }
    fn head(&self) -> Result<Option<SignedHeader>>;
    /// The root of the rule state after the head (see [`crate::commitment`]).
    fn state_root(&self) -> Result<Hash32>;
    /// The proof of `key`'s entry, or of its absence, under [`Store::state_root`].
    fn state_proof(&self, key: &crate::commitment::StateKey) -> Result<weft_core::smt::Proof>;
    fn signed_header(&self, height: u64) -> Result<Option<SignedHeader>>;
    fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>>;
    /// Transactions of block `height`, in order.
    fn block_transactions(&self, height: u64) -> Result<Vec<Transaction>>;
    fn tx_position(&self, id: &TxId) -> Result<Option<Position>>;
    fn tx_at(&self, position: Position) -> Result<Option<Transaction>>;
    fn merkle_path(&self, height: u64, index: u32) -> Result<Option<Vec<Hash32>>>;
    /// Every transaction mentioning `fingerprint`, in ledger order.
    fn by_fingerprint(&self, fingerprint: &Fingerprint) -> Result<Vec<(Position, TxId)>>;
    /// Every transaction naming `resource`, in ledger order.
    fn by_resource(&self, resource: &ResourceId) -> Result<Vec<(Position, TxId)>>;
    /// Registered resources whose id starts with `prefix` (at most `limit`).
    fn resources_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<ResourceId>>;
    /// Transactions on the chain whose id starts with `prefix` (at most `limit`, in id order).
    fn txs_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<TxId>>;
    /// The highest height in `from..=to` whose finality certificate is stored, with the
    /// certificate.
    fn certificate_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>>;
    /// The lowest height in `from..=to` whose finality certificate is stored, with the
    /// certificate: what makes the block at `from` final soonest (a proof's).
    fn first_certificate_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>>;
    /// The peers admitted to the network, read through the head, or `None` when the store keeps
    /// no record of them (a ledger written before stores kept one; see [`network`]).
    fn network_peers(&self) -> Result<Option<NetworkPeers>>;
    /// Takes over a record of peers and certificates kept outside the store, in one write, if
    /// the store keeps none of its own (it is ignored otherwise). `record.through` must be the
    /// head's height: the peers are those of every block up to it.
    fn adopt_network_record(&mut self, record: &NetworkRecord) -> Result<()>;

    /// Compares the derived rows this store reads — rule state and the indexes by transaction
    /// id, fingerprint, resource and block hash — with what replaying the blocks gives; the first
    /// difference, named (the audit's last check). A store that keeps no such rows apart from
    /// what it reads its answers from says `None`.
    fn derived_difference(&self, expected: &Derived) -> Result<Option<String>> {
        let _ = expected;
        Ok(None)
    }

    fn block(&self, height: u64) -> Result<Option<Block>> {
        let Some(signed) = self.signed_header(height)? else {
            return Ok(None);
        };
        Ok(Some(Block {
            signed,
            transactions: self.block_transactions(height)?,
        }))
    }

    fn tx(&self, id: &TxId) -> Result<Option<(Transaction, Position)>> {
        let Some(position) = self.tx_position(id)? else {
            return Ok(None);
        };
        Ok(self.tx_at(position)?.map(|tx| (tx, position)))
    }

    /// The transaction `id`, its block header and its audit path, or `None` if `id` is not on
    /// this chain. A transaction without its header or tree is corruption.
    fn inclusion(&self, id: &TxId) -> Result<Option<Inclusion>> {
        let Some((tx, position)) = self.tx(id)? else {
            return Ok(None);
        };
        let signed = self
            .signed_header(position.height)?
            .ok_or_else(|| missing_block_part("block", id, position.height))?;
        let path = self
            .merkle_path(position.height, position.index)?
            .ok_or_else(|| missing_block_part("merkle tree of block", id, position.height))?;
        Ok(Some(Inclusion {
            tx,
            position,
            signed,
            path,
        }))
    }
}

/// After a block is committed: the state tree must give the root its header commits to (the
/// block was validated against it; a difference is a fault of this process, named).
pub(crate) fn check_state_root(commit: &BlockCommit<'_>, held: Hash32) -> Result<()> {
    let header = &commit.block.signed.header;
    match header.state_root {
        Some(root) if root != held => Err(crate::LedgerError::Corrupt(format!(
            "after block {} the state tree has root {held}, but the block commits to {root}",
            header.height
        ))),
        _ => Ok(()),
    }
}

/// The refusal of a store that keeps no rule state, asked for `what`.
pub(crate) fn not_kept(what: &str) -> crate::LedgerError {
    crate::LedgerError::NotKept(format!(
        "this node follows its chain on the validators' certificates and keeps no rule state, \
         so it cannot answer {what}: ask a full node (an asset's history and verdict, \
         GET /v1/assets/FINGERPRINT, it fetches from a peer and checks against its own headers)"
    ))
}

pub(crate) fn missing_block_part(what: &str, id: &TxId, height: u64) -> crate::LedgerError {
    crate::LedgerError::Corrupt(format!("{what} {height} of transaction {id} is missing"))
}

pub(crate) fn receipt_key(fingerprint: &Fingerprint, resource: &ResourceId) -> [u8; 65] {
    let mut key = [0u8; 65];
    key[..33].copy_from_slice(&fingerprint.key_bytes());
    key[33..].copy_from_slice(resource.as_bytes());
    key
}

/// The index entries of one transaction: fingerprint and resources it names.
pub(crate) fn index_keys(tx: &Transaction) -> (Option<[u8; 33]>, Vec<ResourceId>) {
    let Some(payload) = &tx.payload else {
        return (None, Vec::new());
    };
    let mut resources = payload.resources();
    if let crate::tx::Signer::Resource(signer) = tx.header.signer
        && !resources.contains(&signer)
    {
        resources.push(signer);
    }
    resources.sort();
    resources.dedup();
    (
        payload
            .content_fingerprint()
            .map(|fingerprint| fingerprint.key_bytes()),
        resources,
    )
}
