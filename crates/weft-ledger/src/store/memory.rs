//! In-memory storage for tests and for replaying state during an audit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use weft_core::model::Genesis;
use weft_core::{BlockHash, Fingerprint, Hash32, PublicKey, ResourceId, TxId};

use super::network::{self, NetworkPeers, NetworkRecord};
use super::{BlockCommit, Store, index_keys};

use crate::block::{MerkleLevels, SignedHeader};
use crate::error::Result;
use crate::state::{
    KeyStatus, OwnerEntry, PartEntry, Position, ReceiptEntry, ResourceEntry, StateDelta, StateView,
    ValidatorChange,
};
use crate::tx::Transaction;

/// Rule state only, in memory: every block's changes merged into one, and the state tree over
/// them; and whether a block was taken on its certificate alone (then only the genesis, the
/// validator schedule and the transaction ids are kept, see [`Store::keeps_rule_state`]).
#[derive(Debug, Default, Clone)]
pub struct MemoryState(StateDelta, weft_core::smt::Tree, bool);

impl MemoryState {
    /// Rule state, unless a block was taken on its certificate alone.
    fn kept<T>(&self, what: &str, read: impl FnOnce() -> T) -> Result<T> {
        if self.2 {
            return Err(super::not_kept(what));
        }
        Ok(read())
    }

    pub fn apply(&mut self, delta: &StateDelta) {
        self.0.merge(delta);
        self.1
            .update_sorted(&crate::commitment::leaf_updates(delta));
    }

    /// [`MemoryState::apply`] with the state update computed for `delta` on this state.
    pub fn apply_update(&mut self, delta: &StateDelta, update: &weft_core::smt::Prepared) {
        self.0.merge(delta);
        crate::commitment::apply(&mut self.1, update, delta);
    }

    /// The root of the state tree.
    pub fn state_root(&self) -> Hash32 {
        self.1.root()
    }

    /// The proof of `key`'s entry (or absence) in the state tree.
    pub fn prove(&self, key: &crate::commitment::StateKey) -> weft_core::smt::Proof {
        self.1.prove(&key.hash())
    }

    /// Every change applied, merged: the whole rule state.
    pub fn delta(&self) -> &StateDelta {
        &self.0
    }
}

impl StateView for MemoryState {
    fn genesis(&self) -> Result<Option<Genesis>> {
        Ok(self.0.genesis.clone())
    }
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceEntry>> {
        self.kept("who a resource is", || self.0.resources.get(id).cloned())
    }
    fn key_status(&self, id: &ResourceId, key: &PublicKey) -> Result<Option<KeyStatus>> {
        self.kept("a key's status", || self.0.keys.get(&(*id, *key)).copied())
    }
    fn owner(&self, fingerprint: &Fingerprint) -> Result<Option<OwnerEntry>> {
        self.kept("who owns an asset", || {
            self.0.owners.get(fingerprint).copied()
        })
    }
    fn receipt(
        &self,
        fingerprint: &Fingerprint,
        resource: &ResourceId,
    ) -> Result<Option<ReceiptEntry>> {
        self.kept("who received an asset", || {
            self.0.receipts.get(&(*fingerprint, *resource)).copied()
        })
    }
    fn part(&self, code: &str) -> Result<Option<PartEntry>> {
        self.kept("a part", || self.0.parts.get(code).cloned())
    }
    fn history(&self, fingerprint: &Fingerprint) -> Result<Option<crate::state::HistoryEntry>> {
        self.kept("an asset's history", || {
            self.0.histories.get(fingerprint).copied()
        })
    }
    fn state_update(&self, pending: &StateDelta) -> Result<weft_core::smt::Prepared> {
        self.kept("the state after a block", || {
            crate::commitment::prepare(&self.1, pending)
        })
    }
    fn contains_tx(&self, id: &TxId) -> Result<bool> {
        Ok(self.0.tx_ids.contains(id))
    }
    fn validator_changes(&self) -> Result<Vec<ValidatorChange>> {
        Ok(self.0.validators.clone().unwrap_or_default())
    }
    fn anchors(&self) -> Result<crate::state::Anchors> {
        self.kept("the chains anchored here", || {
            self.0.anchors.clone().unwrap_or_default()
        })
    }
}

/// Everything in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: MemoryState,
    headers: BTreeMap<u64, SignedHeader>,
    hashes: HashMap<BlockHash, u64>,
    txs: BTreeMap<Position, Transaction>,
    positions: HashMap<TxId, Position>,
    trees: HashMap<u64, (usize, Vec<u8>)>,
    by_fingerprint: HashMap<[u8; 33], BTreeSet<(Position, TxId)>>,
    by_resource: HashMap<ResourceId, BTreeSet<(Position, TxId)>>,
    certificates: BTreeMap<u64, Vec<u8>>,
    /// The admitted peers and the height they are read through (see [`super::network`]).
    peers: Option<(u64, NetworkPeers)>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    type Snapshot<'a> = &'a MemoryState;

    fn snapshot(&self) -> Result<&MemoryState> {
        Ok(&self.state)
    }

    fn keeps_rule_state(&self) -> bool {
        !self.state.2
    }

    fn commit_block(&mut self, commit: BlockCommit<'_>) -> Result<()> {
        let header = &commit.block.signed.header;
        let height = header.height;
        if commit.state.is_some() && self.state.2 {
            return Err(super::not_kept("the state after a block"));
        }
        for (index, (tx, id)) in commit.block.transactions.iter().zip(commit.ids).enumerate() {
            let position = Position {
                height,
                index: index as u32,
            };
            let stored = if commit.keeps(index) {
                tx.clone()
            } else {
                tx.stripped()
            };
            self.txs.insert(position, stored);
            self.positions.insert(*id, position);
            let (fingerprint, resources) = index_keys(tx);
            if let Some(fingerprint) = fingerprint {
                self.by_fingerprint
                    .entry(fingerprint)
                    .or_default()
                    .insert((position, *id));
            }
            for resource in resources {
                self.by_resource
                    .entry(resource)
                    .or_default()
                    .insert((position, *id));
            }
        }
        self.trees
            .insert(height, (commit.ids.len(), commit.levels.to_bytes()));
        self.hashes.insert(header.hash(), height);
        self.headers.insert(height, commit.block.signed.clone());
        match commit.state {
            Some(update) => {
                self.state.apply_update(commit.delta, update);
                super::check_state_root(&commit, self.state.state_root())?;
            }
            None => {
                // Only what a certified delta holds: the schedule, the transaction ids.
                self.state.0.merge(commit.delta);
                self.state.2 = true;
            }
        }
        if let Some(certificate) = commit.certificate {
            self.certificates.insert(height, certificate.to_vec());
        }
        if network::tracks(self.peers.as_ref().map(|(through, _)| *through), height) {
            let (through, peers) = self.peers.get_or_insert_with(Default::default);
            network::apply_peer_changes(peers, &network::peer_changes(&commit.block.transactions));
            *through = height;
        }
        Ok(())
    }

    fn certificate_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>> {
        if from > to {
            return Ok(None);
        }
        Ok(self
            .certificates
            .range(from..=to)
            .next_back()
            .map(|(height, bytes)| (*height, bytes.clone())))
    }

    fn first_certificate_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>> {
        if from > to {
            return Ok(None);
        }
        Ok(self
            .certificates
            .range(from..=to)
            .next()
            .map(|(height, bytes)| (*height, bytes.clone())))
    }

    fn network_peers(&self) -> Result<Option<NetworkPeers>> {
        Ok(self.peers.as_ref().map(|(_, peers)| peers.clone()))
    }

    fn adopt_network_record(&mut self, record: &NetworkRecord) -> Result<()> {
        network::check_adoption(self.head()?.as_ref(), record)?;
        if self.peers.is_none() {
            self.certificates
                .extend(record.certificates.iter().cloned());
            self.peers = Some((record.through, record.peers.clone()));
        }
        Ok(())
    }

    fn head(&self) -> Result<Option<SignedHeader>> {
        Ok(self
            .headers
            .last_key_value()
            .map(|(_, header)| header.clone()))
    }
    fn state_root(&self) -> Result<Hash32> {
        self.state
            .kept("the state root", || self.state.state_root())
    }
    fn state_proof(&self, key: &crate::commitment::StateKey) -> Result<weft_core::smt::Proof> {
        self.state.kept("a state proof", || self.state.prove(key))
    }
    fn signed_header(&self, height: u64) -> Result<Option<SignedHeader>> {
        Ok(self.headers.get(&height).cloned())
    }
    fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>> {
        Ok(self.hashes.get(hash).copied())
    }
    fn block_transactions(&self, height: u64) -> Result<Vec<Transaction>> {
        let range = Position { height, index: 0 }..=Position {
            height,
            index: u32::MAX,
        };
        Ok(self.txs.range(range).map(|(_, tx)| tx.clone()).collect())
    }
    fn tx_position(&self, id: &TxId) -> Result<Option<Position>> {
        Ok(self.positions.get(id).copied())
    }
    fn tx_at(&self, position: Position) -> Result<Option<Transaction>> {
        Ok(self.txs.get(&position).cloned())
    }
    fn merkle_path(&self, height: u64, index: u32) -> Result<Option<Vec<Hash32>>> {
        Ok(self
            .trees
            .get(&height)
            .and_then(|(size, bytes)| MerkleLevels::path_from_bytes(bytes, *size, index as usize)))
    }
    fn by_fingerprint(&self, fingerprint: &Fingerprint) -> Result<Vec<(Position, TxId)>> {
        Ok(self
            .by_fingerprint
            .get(&fingerprint.key_bytes())
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default())
    }
    fn by_resource(&self, resource: &ResourceId) -> Result<Vec<(Position, TxId)>> {
        Ok(self
            .by_resource
            .get(resource)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default())
    }
    fn txs_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<TxId>> {
        Ok(with_prefix(
            self.positions.keys(),
            |id| id.as_bytes(),
            prefix,
            limit,
        ))
    }
    fn resources_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<ResourceId>> {
        Ok(with_prefix(
            self.state.0.resources.keys(),
            |id| id.as_bytes(),
            prefix,
            limit,
        ))
    }
}

/// The ids among `ids` whose bytes start with `prefix`: sorted, at most `limit`.
fn with_prefix<'a, T: Copy + Ord + 'a>(
    ids: impl Iterator<Item = &'a T>,
    bytes: impl Fn(&T) -> &[u8],
    prefix: &[u8],
    limit: usize,
) -> Vec<T> {
    let mut found: Vec<T> = ids
        .filter(|id| bytes(id).starts_with(prefix))
        .copied()
        .collect();
    found.sort();
    found.truncate(limit);
    found
}
