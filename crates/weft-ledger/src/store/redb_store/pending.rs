//! The changes of committed blocks kept in memory until they are merged into the hash-keyed
//! tables, rebuilt on open from the `pending_deltas` rows and their blocks.

use std::collections::HashMap;

use weft_core::{ResourceId, TxId};

use super::super::index_keys;
use crate::state::{Position, StateDelta};
use crate::tx::Transaction;

/// The index entries of a run of blocks, in commit order.
#[derive(Debug, Default)]
pub(super) struct IndexEntries {
    pub(super) positions: Vec<(TxId, Position)>,
    pub(super) by_fingerprint: Vec<([u8; 33], Position, TxId)>,
    pub(super) by_resource: Vec<(ResourceId, Position, TxId)>,
}

impl IndexEntries {
    pub(super) fn of_block(height: u64, transactions: &[Transaction], ids: &[TxId]) -> Self {
        let mut entries = IndexEntries {
            positions: Vec::with_capacity(ids.len()),
            by_fingerprint: Vec::with_capacity(ids.len()),
            by_resource: Vec::with_capacity(ids.len() * 2),
        };
        for (index, (tx, id)) in transactions.iter().zip(ids).enumerate() {
            let position = Position {
                height,
                index: index as u32,
            };
            entries.positions.push((*id, position));
            let (fingerprint, resources) = index_keys(tx);
            if let Some(fingerprint) = fingerprint {
                entries.by_fingerprint.push((fingerprint, position, *id));
            }
            for resource in resources {
                entries.by_resource.push((resource, position, *id));
            }
        }
        entries
    }
}

/// Changes of committed blocks that are not merged into the hash-keyed tables yet: their
/// transactions' index entries and their combined rule-state changes. Readers look here first.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) heights: Vec<u64>,
    pub(super) txs: usize,
    pub(super) positions: HashMap<TxId, Position>,
    pub(super) by_fingerprint: HashMap<[u8; 33], Vec<(Position, TxId)>>,
    pub(super) by_resource: HashMap<ResourceId, Vec<(Position, TxId)>>,
    pub(super) state: StateDelta,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.heights.is_empty()
    }

    pub(super) fn add(&mut self, height: u64, entries: IndexEntries, delta: &StateDelta) {
        self.heights.push(height);
        self.txs += entries.positions.len();
        self.positions.extend(entries.positions);
        for (fingerprint, position, id) in entries.by_fingerprint {
            self.by_fingerprint
                .entry(fingerprint)
                .or_default()
                .push((position, id));
        }
        for (resource, position, id) in entries.by_resource {
            self.by_resource
                .entry(resource)
                .or_default()
                .push((position, id));
        }
        self.state.merge_state(delta);
    }
}
