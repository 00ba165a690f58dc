//! The state tree of a redb store: built in memory when the store opens, from the rule-state
//! tables and the changes waiting over them (it is derived data, like every index), and kept up
//! to date block by block ([`crate::commitment::apply`]). The ledger compares
//! its root with the head's state root when it opens.
//!
//! Also the upgrade of layout 5 to 6, which adds the table of fingerprint histories (each with
//! its owner, taking the place of the table of owners).

use std::collections::BTreeMap;

use redb::ReadableTable as _;
use weft_core::encoding::encode;
use weft_core::smt::Tree;
use weft_core::{Hash32, TxId};

use super::RedbStore;
use super::pending::Pending;
use super::tables::{
    BY_FINGERPRINT, HISTORIES, KEYS, META, OWNERS, PARTS, RESOURCES, decode_stored, storage,
};
use crate::commitment::{key_hash, leaf_updates, tag, value_hash};
use crate::error::{LedgerError, Result};
use crate::state::{HistoryEntry, Position, StateDelta};

/// Adds a leaf for every row of `table` (kind `tag`) whose key bytes `raw` gives.
macro_rules! leaves_of {
    ($txn:expr, $leaves:expr, $table:expr, $tag:expr, |$key:ident| $raw:expr) => {{
        let table = $txn.open_table($table).map_err(storage)?;
        for row in table.iter().map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            let $key = key.value();
            $leaves.push((key_hash($tag, $raw), value_hash($tag, value.value())));
        }
    }};
}

impl RedbStore {
    /// The changes waiting over the tables, oldest first.
    fn waiting_changes(&self) -> Vec<&Pending> {
        self.merging
            .as_ref()
            .map(|merging| &*merging.changes)
            .into_iter()
            .chain(std::iter::once(&self.pending))
            .collect()
    }

    /// The state tree of everything this store holds.
    pub(super) fn build_state_tree(&self) -> Result<Tree> {
        let txn = self.read()?;
        let mut leaves = Vec::new();
        leaves_of!(txn, leaves, RESOURCES, tag::RESOURCE, |key| &key[..]);
        leaves_of!(txn, leaves, KEYS, tag::KEY, |key| &key[..]);
        leaves_of!(txn, leaves, HISTORIES, tag::HISTORY, |key| &key[..]);
        leaves_of!(txn, leaves, PARTS, tag::PART, |key| key.as_bytes());
        let meta = txn.open_table(META).map_err(storage)?;
        for (name, kind) in [("validators", tag::VALIDATORS), ("anchors", tag::ANCHORS)] {
            if let Some(value) = meta.get(name).map_err(storage)? {
                leaves.push((key_hash(kind, &[]), value_hash(kind, value.value())));
            }
        }
        // The waiting changes win over the tables (a stable sort keeps them after).
        for changes in self.waiting_changes() {
            leaves.extend(leaf_updates(&changes.state));
        }
        Ok(Tree::from_entries(leaves))
    }

    /// Layout 5 to 6: writes the history of every fingerprint from the index by fingerprint
    /// (its rows and the waiting ones), in one write transaction.
    pub(super) fn write_histories(&self) -> Result<()> {
        let mut entries: BTreeMap<[u8; 33], Vec<(Position, TxId)>> = BTreeMap::new();
        {
            let txn = self.read()?;
            let index = txn.open_table(BY_FINGERPRINT).map_err(storage)?;
            for row in index.iter().map_err(storage)? {
                let (key, id) = row.map_err(storage)?;
                let key = key.value();
                let fingerprint: [u8; 33] = key[..33].try_into().expect("33 bytes");
                let position = Position::from_key(&key[33..])
                    .ok_or_else(|| LedgerError::Corrupt("index entry".into()))?;
                entries
                    .entry(fingerprint)
                    .or_default()
                    .push((position, TxId(Hash32(*id.value()))));
            }
        }
        for changes in self.waiting_changes() {
            for (fingerprint, waiting) in &changes.by_fingerprint {
                entries
                    .entry(*fingerprint)
                    .or_default()
                    .extend_from_slice(waiting);
            }
        }
        // Who owns each: the waiting changes, else the table.
        let mut owners: BTreeMap<[u8; 33], crate::state::OwnerEntry> = BTreeMap::new();
        {
            let txn = self.read()?;
            let table = txn.open_table(OWNERS).map_err(storage)?;
            for row in table.iter().map_err(storage)? {
                let (key, value) = row.map_err(storage)?;
                owners.insert(*key.value(), decode_stored("owner", value.value())?);
            }
        }
        for changes in self.waiting_changes() {
            for (fingerprint, owner) in &changes.state.owners {
                owners.insert(fingerprint.key_bytes(), *owner);
            }
        }
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut histories = txn.open_table(HISTORIES).map_err(storage)?;
            for (fingerprint, mut list) in entries {
                // A row of a generation under merge may be in the table already: once each.
                list.sort_unstable_by_key(|(position, _)| *position);
                list.dedup_by_key(|(position, _)| *position);
                let history = HistoryEntry::of(
                    list.iter().map(|(_, id)| id),
                    owners.get(&fingerprint).copied(),
                );
                histories
                    .insert(&fingerprint, encode(&history).as_slice())
                    .map_err(storage)?;
            }
        }
        // Owners live in the histories from layout 6 on.
        txn.delete_table(OWNERS).map_err(storage)?;
        txn.commit().map_err(storage)
    }
}

/// A waiting delta as stored: one written before anchoring lacks the last field (no change of
/// the anchored chains), one written before histories were kept (layout 5) the one before too
/// (an empty map).
pub(super) fn decode_delta(bytes: &[u8]) -> Result<StateDelta> {
    if let Ok(delta) = borsh::from_slice(bytes) {
        return Ok(delta);
    }
    let mut upgraded = bytes.to_vec();
    upgraded.push(0);
    if let Ok(delta) = borsh::from_slice(&upgraded) {
        return Ok(delta);
    }
    let mut upgraded = bytes.to_vec();
    upgraded.extend_from_slice(&0u32.to_le_bytes());
    upgraded.push(0);
    super::tables::decode_stored("pending state changes", &upgraded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_written_by_layout_5_reads_as_one_without_histories() {
        let mut delta = StateDelta::default();
        delta.parts.insert(
            "P-1".into(),
            crate::state::PartEntry {
                owner: weft_core::ResourceId(Hash32([1; 32])),
                time: 5,
                tx_id: TxId(Hash32([2; 32])),
            },
        );
        let bytes = encode(&delta);
        // Before anchoring, deltas lacked the last field (no change of the anchored chains: one
        // zero byte); layout 5 also the one before it, an empty map of four zero bytes.
        let before_anchoring = &bytes[..bytes.len() - 1];
        assert_eq!(decode_delta(before_anchoring).expect("reads"), delta);
        let layout_5 = &bytes[..bytes.len() - 5];
        assert_eq!(decode_delta(layout_5).expect("reads"), delta);
        assert_eq!(decode_delta(&bytes).expect("reads"), delta);
        assert!(decode_delta(&bytes[..bytes.len() - 7]).is_err());
    }
}
