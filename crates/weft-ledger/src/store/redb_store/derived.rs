//! The audit's check of the derived tables: every row of the rule state (resources, keys,
//! owners, receipts, parts, genesis, validator schedule) and of the indexes (transaction ids,
//! fingerprints, resources, block hashes) must be what replaying the blocks gives — no row
//! missing, none different, none extra. `weft verify` and `weft history` read these rows, not
//! the blocks: an edit here would otherwise go unseen.

use std::collections::BTreeMap;

use redb::ReadableTable as _;

use super::RedbStore;
use super::merge::MergeWork;
use super::pending::{IndexEntries, Pending};
use super::tables::{
    BY_FINGERPRINT, BY_RESOURCE, HASHES, KEYS, META, OWNERS, PARTS, RECEIPTS, RESOURCES,
    TX_POSITIONS, storage,
};
use crate::error::Result;
use crate::state::StateDelta;
use crate::tx::Transaction;
use weft_core::{BlockHash, TxId};

/// What replaying the blocks gives, gathered block by block by the audit.
#[derive(Debug, Default)]
pub struct Derived {
    changes: Pending,
    hashes: BTreeMap<[u8; 32], u64>,
}

impl Derived {
    /// Adds block `height` (its hash, transactions and ids) and its state changes.
    pub fn add(
        &mut self,
        height: u64,
        hash: &BlockHash,
        transactions: &[Transaction],
        ids: &[TxId],
        delta: &StateDelta,
    ) {
        self.changes.add(
            height,
            IndexEntries::of_block(height, transactions, ids),
            delta,
        );
        self.hashes.insert(hash.0.0, height);
    }
}

/// Reads every row of `table` into a map.
macro_rules! rows {
    ($txn:expr, $table:expr, |$key:ident, $value:ident| ($k:expr, $v:expr)) => {{
        let table = $txn.open_table($table).map_err(storage)?;
        let mut rows = BTreeMap::new();
        for row in table.iter().map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            let ($key, $value) = (key.value(), value.value());
            rows.insert($k, $v);
        }
        rows
    }};
}

/// The first row where `want` (sorted) and `have` differ, named.
fn difference<K: Ord + AsRef<[u8]>, V: PartialEq>(
    table: &str,
    want: &[(K, V)],
    have: &BTreeMap<K, V>,
) -> Option<String> {
    let name = |key: &K| hex::encode(key.as_ref());
    for (key, value) in want {
        match have.get(key) {
            None => return Some(format!("{table}: the row {} is missing", name(key))),
            Some(stored) if stored != value => {
                return Some(format!(
                    "{table}: the row {} differs from what the blocks give",
                    name(key)
                ));
            }
            Some(_) => {}
        }
    }
    if have.len() != want.len() {
        let extra = have.keys().find(|key| {
            want.binary_search_by(|(wanted, _)| wanted.cmp(key))
                .is_err()
        })?;
        return Some(format!(
            "{table}: the row {} is not given by any block",
            name(extra)
        ));
    }
    None
}

/// Overwrites (or adds) `rows` in `into`.
fn overlay<K: Ord + Clone, V: Clone>(into: &mut BTreeMap<K, V>, rows: &[(K, V)]) {
    for (key, value) in rows {
        into.insert(key.clone(), value.clone());
    }
}

impl RedbStore {
    /// Compares every derived row this store reads (its tables, overlaid with the changes not
    /// merged into them yet) with `expected`. The first difference, named; `None` if they agree.
    pub(super) fn compare_derived(&self, expected: &Derived) -> Result<Option<String>> {
        let want = MergeWork::of(&expected.changes, None);
        let txn = self.read()?;
        let mut positions = rows!(txn, TX_POSITIONS, |k, v| (*k, *v));
        let mut by_fingerprint = rows!(txn, BY_FINGERPRINT, |k, v| (*k, *v));
        let mut by_resource = rows!(txn, BY_RESOURCE, |k, v| (*k, *v));
        let mut resources = rows!(txn, RESOURCES, |k, v| (*k, v.to_vec()));
        let mut keys = rows!(txn, KEYS, |k, v| (*k, v.to_vec()));
        let mut owners = rows!(txn, OWNERS, |k, v| (*k, v.to_vec()));
        let mut receipts = rows!(txn, RECEIPTS, |k, v| (*k, v.to_vec()));
        let mut parts = rows!(txn, PARTS, |k, v| (k.to_string(), v.to_vec()));
        let hashes = rows!(txn, HASHES, |k, v| (*k, v));
        let meta = txn.open_table(META).map_err(storage)?;
        let mut genesis = meta
            .get("genesis")
            .map_err(storage)?
            .map(|value| value.value().to_vec());
        let mut validators = meta
            .get("validators")
            .map_err(storage)?
            .map(|value| value.value().to_vec());
        // Older changes first: the generation under merge, then the newest.
        let waiting = self
            .merging
            .as_ref()
            .map(|merging| &*merging.changes)
            .into_iter()
            .chain(std::iter::once(&self.pending));
        for changes in waiting {
            let rows = MergeWork::of(changes, None);
            overlay(&mut positions, &rows.positions);
            overlay(&mut by_fingerprint, &rows.by_fingerprint);
            overlay(&mut by_resource, &rows.by_resource);
            overlay(&mut resources, &rows.resources);
            overlay(&mut keys, &rows.keys);
            overlay(&mut owners, &rows.owners);
            overlay(&mut receipts, &rows.receipts);
            overlay(&mut parts, &rows.parts);
            genesis = rows.genesis.clone().or(genesis);
            validators = rows.validators.clone().or(validators);
        }
        let want_hashes: Vec<([u8; 32], u64)> = expected
            .hashes
            .iter()
            .map(|(hash, height)| (*hash, *height))
            .collect();
        let want_parts: Vec<(Vec<u8>, Vec<u8>)> = want
            .parts
            .iter()
            .map(|(code, value)| (code.as_bytes().to_vec(), value.clone()))
            .collect();
        let parts: BTreeMap<Vec<u8>, Vec<u8>> = parts
            .into_iter()
            .map(|(code, value)| (code.into_bytes(), value))
            .collect();
        let found = difference("tx_positions", &want.positions, &positions)
            .or_else(|| difference("fingerprint_index", &want.by_fingerprint, &by_fingerprint))
            .or_else(|| difference("resource_index", &want.by_resource, &by_resource))
            .or_else(|| difference("block_hashes", &want_hashes, &hashes))
            .or_else(|| difference("resources", &want.resources, &resources))
            .or_else(|| difference("keys", &want.keys, &keys))
            .or_else(|| difference("owners", &want.owners, &owners))
            .or_else(|| difference("receipts", &want.receipts, &receipts))
            .or_else(|| difference("parts", &want_parts, &parts));
        if found.is_some() {
            return Ok(found);
        }
        if genesis != want.genesis {
            return Ok(Some("meta: the genesis differs from block 0's".into()));
        }
        let no_changes = weft_core::encoding::encode(&Vec::<crate::state::ValidatorChange>::new());
        if validators.unwrap_or_else(|| no_changes.clone())
            != want.validators.clone().unwrap_or(no_changes)
        {
            return Ok(Some(
                "meta: the validator schedule differs from what the blocks give".into(),
            ));
        }
        Ok(None)
    }
}
