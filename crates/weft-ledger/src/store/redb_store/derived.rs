//! The audit's check of the derived tables: every row of the rule state (resources, keys,
//! histories with their owners, receipts, parts, genesis, validator schedule) and of the indexes (transaction ids,
//! fingerprints, resources, block hashes) must be what replaying the blocks gives — no row
//! missing, none different, none extra. `weft verify` and `weft history` read these rows, not
//! the blocks: an edit here would otherwise go unseen.
//!
//! Both sides are reduced to a multiset hash per table — the count of rows and the sum (mod
//! 2^256) of `SHA-256(secret ‖ table ‖ key ‖ value)` over them, the secret drawn afresh for each
//! audit (a sum of unkeyed hashes could be matched by a prepared edit) — so the audit keeps no copy of the rows:
//! the index rows are hashed as the blocks are replayed, the state rows from the replayed state
//! at the end, and the store's rows as its tables are read in order. A difference names the
//! table.

use std::collections::{BTreeMap, HashSet};

use redb::ReadableTable as _;
use sha2::{Digest as _, Sha256};
use weft_core::encoding::encode;
use weft_core::{BlockHash, TxId};

use super::super::receipt_key;
use super::RedbStore;
use super::merge::MergeWork;
use super::pending::{IndexEntries, Pending};
use super::tables::{
    BY_FINGERPRINT, BY_RESOURCE, HASHES, HISTORIES, KEYS, META, PARTS, RECEIPTS, RESOURCES,
    TX_POSITIONS, index_key, key_key, storage,
};
use crate::error::Result;
use crate::state::StateDelta;
use crate::tx::Transaction;

/// The derived tables, in the order differences are reported.
const TABLES: [&str; 12] = [
    "tx_positions",
    "fingerprint_index",
    "resource_index",
    "block_hashes",
    "resources",
    "keys",
    "histories",
    "receipts",
    "parts",
    "meta.genesis",
    "meta.validators",
    "meta.anchors",
];

/// A multiset hash of a table's rows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Rows {
    count: u64,
    sum: [u64; 4],
}

impl Rows {
    fn add(&mut self, salt: &[u8; 32], table: usize, key: &[u8], value: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update([table as u8]);
        hasher.update((key.len() as u32).to_be_bytes());
        hasher.update(key);
        hasher.update(value);
        let digest: [u8; 32] = hasher.finalize().into();
        let mut carry = 0u128;
        for (limb, chunk) in self.sum.iter_mut().zip(digest.chunks_exact(8)) {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let total = u128::from(*limb) + u128::from(word) + carry;
            *limb = total as u64;
            carry = total >> 64;
        }
        self.count += 1;
    }
}

/// The rows of every derived table, as multiset hashes keyed by a secret of this audit (so that
/// no edit can be made to sum to the same value in advance).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tables {
    salt: [u8; 32],
    rows: [Rows; TABLES.len()],
}

impl Tables {
    fn new(salt: [u8; 32]) -> Self {
        Tables {
            salt,
            rows: [Rows::default(); TABLES.len()],
        }
    }

    fn add(&mut self, table: usize, key: &[u8], value: &[u8]) {
        self.rows[table].add(&self.salt, table, key, value);
    }

    /// The rows of an index entry list.
    fn add_index(&mut self, entries: &IndexEntries) {
        for (id, position) in &entries.positions {
            self.add(0, id.as_bytes(), &position.to_key());
        }
        for (fingerprint, position, id) in &entries.by_fingerprint {
            let key: [u8; 45] = index_key(fingerprint, *position);
            self.add(1, &key, id.as_bytes());
        }
        for (resource, position, id) in &entries.by_resource {
            let key: [u8; 44] = index_key(&resource.0.0, *position);
            self.add(2, &key, id.as_bytes());
        }
    }

    /// The state rows of `state`, encoded as the tables hold them.
    fn add_state(&mut self, state: &StateDelta) {
        for (id, entry) in &state.resources {
            self.add(4, id.as_bytes(), &encode(entry));
        }
        for ((resource, key), status) in &state.keys {
            self.add(5, &key_key(resource, key), &encode(status));
        }
        for (fingerprint, entry) in &state.histories {
            self.add(6, &fingerprint.key_bytes(), &encode(entry));
        }
        for ((fingerprint, resource), entry) in &state.receipts {
            self.add(7, &receipt_key(fingerprint, resource), &encode(entry));
        }
        for (code, entry) in &state.parts {
            self.add(8, code.as_bytes(), &encode(entry));
        }
        if let Some(genesis) = &state.genesis {
            self.add(9, b"genesis", &encode(genesis));
        }
        let validators = state.validators.clone().unwrap_or_default();
        self.add(10, b"validators", &encode(&validators));
        if let Some(anchors) = &state.anchors {
            self.add(11, b"anchors", &encode(anchors));
        }
    }

    /// The first table that differs from `other`, with its row counts.
    fn difference(&self, stored: &Tables) -> Option<String> {
        (0..TABLES.len()).find_map(|table| {
            let (given, held) = (self.rows[table], stored.rows[table]);
            (given != held).then(|| {
                format!(
                    "{}: its rows are not what the blocks give ({} stored, {} given{})",
                    TABLES[table],
                    held.count,
                    given.count,
                    if held.count == given.count {
                        ", some changed"
                    } else {
                        ""
                    }
                )
            })
        })
    }
}

/// What replaying the blocks gives, gathered block by block by the audit: the index rows as
/// they come, the state rows from the replayed state at the end.
#[derive(Debug)]
pub struct Derived {
    tables: Tables,
}

impl Derived {
    /// An empty gathering, its row hashes keyed by a fresh random secret.
    pub fn new() -> Result<Self> {
        let salt = weft_core::SigningKey::generate()
            .map_err(|error| crate::error::LedgerError::Storage(error.to_string()))?
            .seed();
        Ok(Derived {
            tables: Tables::new(salt),
        })
    }

    /// Adds block `height` (its hash, transactions and ids).
    pub fn add_block(
        &mut self,
        height: u64,
        hash: &BlockHash,
        transactions: &[Transaction],
        ids: &[TxId],
    ) {
        self.tables
            .add_index(&IndexEntries::of_block(height, transactions, ids));
        self.tables.add(3, hash.as_bytes(), &height.to_be_bytes());
    }

    /// Adds the rule state the whole chain gives.
    pub fn add_state(&mut self, state: &StateDelta) {
        self.tables.add_state(state);
    }
}

/// The rows waiting to be merged (the generation under merge, then the newest), by table and
/// key, the later winning: what readers see over the tables.
fn waiting_rows(changes: &[&Pending]) -> BTreeMap<(usize, Vec<u8>), Vec<u8>> {
    let mut rows = BTreeMap::new();
    for changes in changes {
        let work = MergeWork::of(changes, None);
        for (id, position) in &work.positions {
            rows.insert((0, id.to_vec()), position.to_vec());
        }
        for (key, id) in &work.by_fingerprint {
            rows.insert((1, key.to_vec()), id.to_vec());
        }
        for (key, id) in &work.by_resource {
            rows.insert((2, key.to_vec()), id.to_vec());
        }
        for (key, value) in &work.resources {
            rows.insert((4, key.to_vec()), value.clone());
        }
        for (key, value) in &work.keys {
            rows.insert((5, key.to_vec()), value.clone());
        }
        for (key, value) in &work.histories {
            rows.insert((6, key.to_vec()), value.clone());
        }
        for (key, value) in &work.receipts {
            rows.insert((7, key.to_vec()), value.clone());
        }
        for (key, value) in &work.parts {
            rows.insert((8, key.as_bytes().to_vec()), value.clone());
        }
        if let Some(genesis) = &work.genesis {
            rows.insert((9, b"genesis".to_vec()), genesis.clone());
        }
        if let Some(validators) = &work.validators {
            rows.insert((10, b"validators".to_vec()), validators.clone());
        }
        if let Some(anchors) = &work.anchors {
            rows.insert((11, b"anchors".to_vec()), anchors.clone());
        }
    }
    rows
}

/// Hashes every row of `table` (number `index`) but those `waiting` overrides.
macro_rules! hash_rows {
    ($txn:expr, $tables:expr, $waiting_keys:expr, $index:expr, $table:expr, |$key:ident, $value:ident| ($k:expr, $v:expr)) => {{
        let table = $txn.open_table($table).map_err(storage)?;
        for row in table.iter().map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            let ($key, $value) = (key.value(), value.value());
            let (k, v) = ($k, $v);
            if !$waiting_keys.contains(&($index, k.to_vec())) {
                $tables.add($index, &k, &v);
            }
        }
    }};
}

impl RedbStore {
    /// Compares every derived row this store reads (its tables, overlaid with the changes not
    /// merged into them yet) with `expected`. The first table that differs, named; `None` if
    /// they agree.
    pub(super) fn compare_derived(&self, expected: &Derived) -> Result<Option<String>> {
        let waiting: Vec<&Pending> = self
            .merging
            .as_ref()
            .map(|merging| &*merging.changes)
            .into_iter()
            .chain(std::iter::once(&self.pending))
            .collect();
        let waiting = waiting_rows(&waiting);
        let waiting_keys: HashSet<(usize, Vec<u8>)> = waiting.keys().cloned().collect();
        let mut stored = Tables::new(expected.tables.salt);
        let txn = self.read()?;
        hash_rows!(txn, stored, waiting_keys, 0, TX_POSITIONS, |k, v| (*k, *v));
        hash_rows!(txn, stored, waiting_keys, 1, BY_FINGERPRINT, |k, v| (
            *k, *v
        ));
        hash_rows!(txn, stored, waiting_keys, 2, BY_RESOURCE, |k, v| (*k, *v));
        hash_rows!(txn, stored, waiting_keys, 3, HASHES, |k, v| (
            *k,
            v.to_be_bytes()
        ));
        hash_rows!(txn, stored, waiting_keys, 4, RESOURCES, |k, v| (
            *k,
            v.to_vec()
        ));
        hash_rows!(txn, stored, waiting_keys, 5, KEYS, |k, v| (*k, v.to_vec()));
        hash_rows!(txn, stored, waiting_keys, 6, HISTORIES, |k, v| (
            *k,
            v.to_vec()
        ));
        hash_rows!(txn, stored, waiting_keys, 7, RECEIPTS, |k, v| (
            *k,
            v.to_vec()
        ));
        hash_rows!(txn, stored, waiting_keys, 8, PARTS, |k, v| (
            k.as_bytes().to_vec(),
            v.to_vec()
        ));
        let meta = txn.open_table(META).map_err(storage)?;
        for (index, name) in [(9usize, "genesis"), (10, "validators"), (11, "anchors")] {
            if waiting_keys.contains(&(index, name.as_bytes().to_vec())) {
                continue;
            }
            match meta.get(name).map_err(storage)? {
                Some(value) => stored.add(index, name.as_bytes(), value.value()),
                // A chain that never scheduled a change holds no schedule: the empty one.
                None if index == 10 => stored.add(
                    index,
                    name.as_bytes(),
                    &encode(&Vec::<crate::state::ValidatorChange>::new()),
                ),
                None => {}
            }
        }
        for ((index, key), value) in &waiting {
            stored.add(*index, key, value);
        }
        Ok(expected.tables.difference(&stored))
    }
}
