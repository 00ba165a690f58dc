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

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, mpsc};

use borsh::BorshDeserialize;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};
use weft_core::encoding::encode;
use weft_core::model::Genesis;
use weft_core::{BlockHash, Fingerprint, Hash32, PublicKey, ResourceId, TxId};

use super::{
    BlockCommit, Inclusion, MergeStep, Store, index_keys, missing_block_part, receipt_key,
};
use crate::block::{MerkleLevels, SignedHeader, TileKey};
use crate::error::{LedgerError, Result};
use crate::state::{
    KeyStatus, OwnerEntry, PartEntry, Position, ReceiptEntry, ResourceEntry, StateDelta, StateView,
    ValidatorChange,
};
use crate::tx::Transaction;

const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
/// Height ‖ tier ‖ tile (big-endian) → one tile of the block's Merkle tree
/// ([`MerkleLevels::tiles`]).
const TREES: TableDefinition<&[u8; 13], &[u8]> = TableDefinition::new("merkle_tiles");

fn tile_key(height: u64, key: TileKey) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..8].copy_from_slice(&height.to_be_bytes());
    out[8] = key.tier;
    out[9..].copy_from_slice(&key.tile.to_be_bytes());
    out
}
const HASHES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_hashes");
const TXS: TableDefinition<&[u8; 12], &[u8]> = TableDefinition::new("transactions");
const TX_POSITIONS: TableDefinition<&[u8; 32], &[u8; 12]> = TableDefinition::new("tx_positions");
/// Fingerprint key bytes ‖ position → transaction id: a lookup is one range scan.
const BY_FINGERPRINT: TableDefinition<&[u8; 45], &[u8; 32]> =
    TableDefinition::new("fingerprint_index");
/// Resource id ‖ position → transaction id.
const BY_RESOURCE: TableDefinition<&[u8; 44], &[u8; 32]> = TableDefinition::new("resource_index");

/// The layout of the tables; a file with another is refused with a clear message.
const STORAGE_VERSION: &[u8] = b"4";

fn index_key<const N: usize, const K: usize>(prefix: &[u8; N], position: Position) -> [u8; K] {
    debug_assert_eq!(N + 12, K);
    let mut key = [0u8; K];
    key[..N].copy_from_slice(prefix);
    key[N..].copy_from_slice(&position.to_key());
    key
}

/// The keys of a table of 32-byte keys that start with `prefix`, in order (at most `limit`).
fn keys_with_prefix<V: redb::Value + 'static>(
    table: &ReadOnlyTable<&'static [u8; 32], V>,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<[u8; 32]>> {
    let mut start = [0u8; 32];
    let take = prefix.len().min(32);
    start[..take].copy_from_slice(&prefix[..take]);
    let mut out = Vec::new();
    for entry in table.range::<&[u8; 32]>(&start..).map_err(storage)? {
        let (key, _) = entry.map_err(storage)?;
        let id = *key.value();
        if !id.starts_with(prefix) || out.len() >= limit {
            break;
        }
        out.push(id);
    }
    Ok(out)
}

/// `stored` and the keys among `waiting` (changes not merged yet) that start with `prefix`:
/// sorted, each once, at most `limit`.
fn with_waiting_keys(
    mut stored: Vec<[u8; 32]>,
    waiting: impl Iterator<Item = [u8; 32]>,
    prefix: &[u8],
    limit: usize,
) -> Vec<[u8; 32]> {
    stored.extend(waiting.filter(|id| id.starts_with(prefix)));
    stored.sort();
    stored.dedup();
    stored.truncate(limit);
    stored
}

/// Every `(position, id)` whose key starts with `prefix`, in ledger order.
fn scan_index<const N: usize, const K: usize>(
    table: &ReadOnlyTable<&'static [u8; K], &'static [u8; 32]>,
    prefix: &[u8; N],
) -> Result<Vec<(Position, TxId)>> {
    let start: [u8; K] = index_key(
        prefix,
        Position {
            height: 0,
            index: 0,
        },
    );
    let end: [u8; K] = index_key(
        prefix,
        Position {
            height: u64::MAX,
            index: u32::MAX,
        },
    );
    let mut out = Vec::new();
    for row in table.range::<&[u8; K]>(&start..=&end).map_err(storage)? {
        let (key, id) = row.map_err(storage)?;
        let position = Position::from_key(&key.value()[N..])
            .ok_or_else(|| LedgerError::Corrupt("index entry".into()))?;
        out.push((position, TxId(Hash32(*id.value()))));
    }
    Ok(out)
}
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RESOURCES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("resources");
const KEYS: TableDefinition<&[u8; 64], &[u8]> = TableDefinition::new("keys");
const OWNERS: TableDefinition<&[u8; 33], &[u8]> = TableDefinition::new("owners");
const RECEIPTS: TableDefinition<&[u8; 65], &[u8]> = TableDefinition::new("receipts");
const PARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("parts");
/// Height → Borsh `StateDelta` of each block whose changes are not merged into the tables yet.
const PENDING_DELTAS: TableDefinition<u64, &[u8]> = TableDefinition::new("pending_deltas");

/// Default number of transactions whose index and state changes wait in memory before they are
/// merged into the hash-keyed tables (about 0.5 KiB of memory each, so about 50 MiB). Raised
/// from 50,000: rules then read recent state from memory, and merges happen half as often
/// (docs/benchmarks.md has both).
pub const DEFAULT_MERGE_AFTER_TXS: usize = 100_000;

fn storage(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(error.to_string())
}

fn decode_stored<T: BorshDeserialize>(what: &str, bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).map_err(|error| LedgerError::Corrupt(format!("{what}: {error}")))
}

fn key_key(resource: &ResourceId, key: &PublicKey) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(resource.as_bytes());
    out[32..].copy_from_slice(&key.0);
    out
}

/// The index entries of a run of blocks, in commit order.
#[derive(Debug, Default)]
struct IndexEntries {
    positions: Vec<(TxId, Position)>,
    by_fingerprint: Vec<([u8; 33], Position, TxId)>,
    by_resource: Vec<(ResourceId, Position, TxId)>,
}

impl IndexEntries {
    fn of_block(height: u64, transactions: &[Transaction], ids: &[TxId]) -> Self {
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
struct Pending {
    heights: Vec<u64>,
    txs: usize,
    positions: HashMap<TxId, Position>,
    by_fingerprint: HashMap<[u8; 33], Vec<(Position, TxId)>>,
    by_resource: HashMap<ResourceId, Vec<(Position, TxId)>>,
    state: StateDelta,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.heights.is_empty()
    }

    fn add(&mut self, height: u64, entries: IndexEntries, delta: &StateDelta) {
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

/// Sorts `(key, value)` pairs by key; of equal keys the last one given wins.
fn sorted_last_wins<K: Ord, V>(mut items: Vec<(K, V)>) -> Vec<(K, V)> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(K, V)> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => out.push(item),
        }
    }
    out
}

/// Where a step that writes `fraction` of a list of `len` rows (at least one) ends, when
/// `written` rows are written.
fn end_after(written: usize, len: usize, fraction: f64) -> usize {
    let count = (len as f64 * fraction).ceil() as usize;
    (written + count.max(1)).min(len)
}

/// Index entries and state changes to write into the hash-keyed tables, each list sorted by key
/// (redb then walks each B-tree left to right; of equal state keys the later change wins).
/// Written all at once, or a slice of every list at a time ([`RedbStore::merge_some`]): the
/// lists advance together, so each step touches one key range of each table.
#[derive(Debug)]
struct MergeWork {
    positions: Vec<([u8; 32], [u8; 12])>,
    by_fingerprint: Vec<([u8; 45], [u8; 32])>,
    by_resource: Vec<([u8; 44], [u8; 32])>,
    genesis: Option<Vec<u8>>,
    /// The whole validator schedule, when these changes scheduled a change.
    validators: Option<Vec<u8>>,
    resources: Vec<([u8; 32], Vec<u8>)>,
    keys: Vec<([u8; 64], Vec<u8>)>,
    owners: Vec<([u8; 33], Vec<u8>)>,
    receipts: Vec<([u8; 65], Vec<u8>)>,
    parts: Vec<(String, Vec<u8>)>,
    /// Rows of each list already written, in the order of [`Step::ends`].
    written: [usize; 8],
}

/// Where one step of a [`MergeWork`] ends in each list.
#[derive(Debug, Clone, Copy)]
struct Step {
    ends: [usize; 8],
    /// Does this step write the meta rows (genesis, validator schedule)?
    meta: bool,
}

/// Writes `rows` into `table` (one `insert` per row).
macro_rules! write_rows {
    ($txn:expr, $table:expr, $rows:expr, |$key:ident, $value:ident| ($k:expr, $v:expr)) => {{
        let rows = $rows;
        if !rows.is_empty() {
            let mut table = $txn.open_table($table).map_err(storage)?;
            for ($key, $value) in rows {
                table.insert($k, $v).map_err(storage)?;
            }
        }
    }};
}

impl MergeWork {
    /// The rows of `earlier`, then of `later` (which wins).
    fn of(earlier: &Pending, later: Option<(&IndexEntries, &StateDelta)>) -> Self {
        let extra = later.map(|(entries, _)| entries);
        let mut positions: Vec<([u8; 32], [u8; 12])> = earlier
            .positions
            .iter()
            .map(|(id, position)| (id.0.0, position.to_key()))
            .chain(
                extra
                    .into_iter()
                    .flat_map(|entries| entries.positions.iter())
                    .map(|(id, position)| (id.0.0, position.to_key())),
            )
            .collect();
        positions.sort_unstable();
        let mut by_fingerprint: Vec<([u8; 45], [u8; 32])> = earlier
            .by_fingerprint
            .iter()
            .flat_map(|(key, values)| {
                values
                    .iter()
                    .map(|(position, id)| (index_key(key, *position), id.0.0))
            })
            .chain(
                extra
                    .into_iter()
                    .flat_map(|entries| entries.by_fingerprint.iter())
                    .map(|(key, position, id)| (index_key(key, *position), id.0.0)),
            )
            .collect();
        by_fingerprint.sort_unstable();
        let mut by_resource: Vec<([u8; 44], [u8; 32])> = earlier
            .by_resource
            .iter()
            .flat_map(|(key, values)| {
                values
                    .iter()
                    .map(|(position, id)| (index_key(&key.0.0, *position), id.0.0))
            })
            .chain(
                extra
                    .into_iter()
                    .flat_map(|entries| entries.by_resource.iter())
                    .map(|(key, position, id)| (index_key(&key.0.0, *position), id.0.0)),
            )
            .collect();
        by_resource.sort_unstable();

        let deltas: Vec<&StateDelta> = std::iter::once(&earlier.state)
            .chain(later.map(|(_, delta)| delta))
            .collect();
        let genesis = deltas
            .iter()
            .rev()
            .find_map(|delta| delta.genesis.as_ref())
            .map(encode);
        let validators = deltas
            .iter()
            .rev()
            .find_map(|delta| delta.validators.as_ref())
            .map(encode);
        MergeWork {
            positions,
            by_fingerprint,
            by_resource,
            genesis,
            validators,
            resources: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.resources.iter())
                    .map(|(id, entry)| (id.0.0, encode(entry)))
                    .collect(),
            ),
            keys: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.keys.iter())
                    .map(|((resource, key), status)| (key_key(resource, key), encode(status)))
                    .collect(),
            ),
            owners: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.owners.iter())
                    .map(|(fingerprint, entry)| (fingerprint.key_bytes(), encode(entry)))
                    .collect(),
            ),
            receipts: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.receipts.iter())
                    .map(|((fingerprint, resource), entry)| {
                        (receipt_key(fingerprint, resource), encode(entry))
                    })
                    .collect(),
            ),
            parts: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.parts.iter())
                    .map(|(code, entry)| (code.clone(), encode(entry)))
                    .collect(),
            ),
            written: [0; 8],
        }
    }

    /// The next step: `fraction` of every list (1.0: all that is left).
    fn step(&self, fraction: f64) -> Step {
        let lens = self.lens();
        Step {
            ends: std::array::from_fn(|list| end_after(self.written[list], lens[list], fraction)),
            meta: self.genesis.is_some() || self.validators.is_some(),
        }
    }

    /// Writes `step` in `txn`. Nothing advances until [`MergeWork::advance`], after the commit:
    /// a step whose transaction fails is written again by the next one.
    fn write(&self, txn: &redb::WriteTransaction, step: Step) -> Result<()> {
        let [from, to] = [self.written, step.ends];
        write_rows!(
            txn,
            TX_POSITIONS,
            &self.positions[from[0]..to[0]],
            |k, v| (k, v)
        );
        write_rows!(
            txn,
            BY_FINGERPRINT,
            &self.by_fingerprint[from[1]..to[1]],
            |k, v| (k, v)
        );
        write_rows!(
            txn,
            BY_RESOURCE,
            &self.by_resource[from[2]..to[2]],
            |k, v| (k, v)
        );
        if step.meta {
            for (key, value) in [("genesis", &self.genesis), ("validators", &self.validators)] {
                if let Some(value) = value {
                    txn.open_table(META)
                        .map_err(storage)?
                        .insert(key, value.as_slice())
                        .map_err(storage)?;
                }
            }
        }
        write_rows!(txn, RESOURCES, &self.resources[from[3]..to[3]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, KEYS, &self.keys[from[4]..to[4]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, OWNERS, &self.owners[from[5]..to[5]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, RECEIPTS, &self.receipts[from[6]..to[6]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, PARTS, &self.parts[from[7]..to[7]], |k, v| (
            k.as_str(),
            v.as_slice()
        ));
        Ok(())
    }

    /// Records a committed step; true once every list is written.
    fn advance(&mut self, step: Step) -> bool {
        self.written = step.ends;
        if step.meta {
            self.genesis = None;
            self.validators = None;
        }
        self.genesis.is_none() && self.validators.is_none() && self.written == self.lens()
    }

    /// The length of each list, in the order of [`Step::ends`].
    fn lens(&self) -> [usize; 8] {
        [
            self.positions.len(),
            self.by_fingerprint.len(),
            self.by_resource.len(),
            self.resources.len(),
            self.keys.len(),
            self.owners.len(),
            self.receipts.len(),
            self.parts.len(),
        ]
    }
}

/// Forgets the `pending_deltas` rows of merged blocks.
fn forget_deltas(txn: &redb::WriteTransaction, heights: &[u64]) -> Result<()> {
    let mut table = txn.open_table(PENDING_DELTAS).map_err(storage)?;
    for height in heights {
        table.remove(height).map_err(storage)?;
    }
    Ok(())
}

/// Writes index entries and state changes into the hash-keyed tables at once, `later` winning
/// over `earlier`, and forgets the deltas of `earlier`'s blocks.
fn merge_into_tables(
    txn: &redb::WriteTransaction,
    earlier: &Pending,
    later: Option<(&IndexEntries, &StateDelta)>,
) -> Result<()> {
    let work = MergeWork::of(earlier, later);
    work.write(txn, work.step(1.0))?;
    forget_deltas(txn, &earlier.heights)
}

/// A generation of waiting changes frozen for merging, written into the tables a step at a
/// time while newer blocks gather in [`Pending`]. Readers look at the newer changes first,
/// then at these, then at the tables; index lookups drop the entries they find twice (a row
/// of this generation may already be in the tables). Its blocks' `pending_deltas` rows are
/// removed in the transaction that writes its last step, so a crash before that rebuilds it.
#[derive(Debug)]
struct Merging {
    changes: Arc<Pending>,
    work: Work,
}

/// The sorted rows of a generation under merge. Sorting and encoding a generation of 100,000
/// transactions' changes takes about a quarter of a second, so it is done on a thread of its
/// own: the node's thread goes on with its blocks (readers use `Merging::changes` meanwhile),
/// and the steps start once the rows are ready.
#[derive(Debug)]
enum Work {
    Building(mpsc::Receiver<MergeWork>),
    Ready(Box<MergeWork>),
}

impl Merging {
    /// Freezes `changes` and starts sorting their rows on a thread of their own (here, if no
    /// thread can be started).
    fn start(changes: Pending) -> Merging {
        let changes = Arc::new(changes);
        let (done, building) = mpsc::sync_channel(1);
        let frozen = changes.clone();
        let spawned = std::thread::Builder::new()
            .name("weft-merge-sort".into())
            .spawn(move || {
                // The receiver is gone only if the store was dropped meanwhile.
                let _ = done.send(MergeWork::of(&frozen, None));
            });
        let work = match spawned {
            Ok(_) => Work::Building(building),
            Err(_) => Work::Ready(Box::new(MergeWork::of(&changes, None))),
        };
        Merging { changes, work }
    }

    /// Made at open from the changes rebuilt from `pending_deltas` (nothing else waits then).
    fn rebuilt(changes: Pending) -> Merging {
        let work = Work::Ready(Box::new(MergeWork::of(&changes, None)));
        Merging {
            changes: Arc::new(changes),
            work,
        }
    }

    /// The rows to write, once sorted; with `wait`, waits for the sorting thread.
    fn work(&mut self, wait: bool) -> Option<&mut MergeWork> {
        if let Work::Building(building) = &self.work {
            let built = if wait {
                building
                    .recv()
                    .map_err(|_| mpsc::TryRecvError::Disconnected)
            } else {
                building.try_recv()
            };
            match built {
                Ok(work) => self.work = Work::Ready(Box::new(work)),
                Err(mpsc::TryRecvError::Empty) => return None,
                // The sorting thread died (it cannot, short of running out of memory): sort here.
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.work = Work::Ready(Box::new(MergeWork::of(&self.changes, None)));
                }
            }
        }
        match &mut self.work {
            Work::Ready(work) => Some(work),
            Work::Building(_) => None,
        }
    }
}

/// The redb-backed store.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    pending: Pending,
    /// An older generation of waiting changes, being merged a step at a time.
    merging: Option<Merging>,
    merge_after_txs: usize,
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
        // redb would create the file readable by everyone (umask permitting).
        crate::files::create_private(path).map_err(|error| {
            LedgerError::Storage(format!("cannot create {}: {error}", path.display()))
        })?;
        let db = Database::builder()
            .set_cache_size(256 << 20)
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
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let stored = meta
                .get("storage_version")
                .map_err(storage)?
                .map(|value| value.value().to_vec());
            match stored {
                Some(version) if version == STORAGE_VERSION => {}
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
            txn.open_table(OWNERS).map_err(storage)?;
            txn.open_table(RECEIPTS).map_err(storage)?;
            txn.open_table(PARTS).map_err(storage)?;
            txn.open_table(PENDING_DELTAS).map_err(storage)?;
            super::redb_network::create_tables(&txn)?;
        }
        txn.commit().map_err(storage)?;
        let mut store = RedbStore {
            db,
            pending: Pending::default(),
            merging: None,
            merge_after_txs,
        };
        // The rebuilt changes may be partly in the tables already (a merge step was under way
        // at the crash): they become the generation under merge, whose lookups drop doubles.
        let rebuilt = store.load_pending()?;
        if !rebuilt.is_empty() {
            store.merging = Some(Merging::rebuilt(rebuilt));
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
            let delta: StateDelta = decode_stored("pending state changes", bytes.value())?;
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
    /// A generation's rows are sorted on a thread of their own ([`Work`]): the call that
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
    owners: ReadOnlyTable<&'static [u8; 33], &'static [u8]>,
    receipts: ReadOnlyTable<&'static [u8; 65], &'static [u8]>,
    parts: ReadOnlyTable<&'static str, &'static [u8]>,
    positions: ReadOnlyTable<&'static [u8; 32], &'static [u8; 12]>,
}

impl RedbSnapshot<'_> {
    /// The newest waiting change that `get` finds: in `pending`, else in the generation under
    /// merge.
    fn waiting<T>(&self, get: impl Fn(&Pending) -> Option<T>) -> Option<T> {
        get(self.pending).or_else(|| self.merging.and_then(&get))
    }
}

impl StateView for RedbSnapshot<'_> {
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
        if let Some(entry) = self.waiting(|changes| changes.state.owners.get(fingerprint).copied())
        {
            return Ok(Some(entry));
        }
        self.owners
            .get(&fingerprint.key_bytes())
            .map_err(storage)?
            .map(|bytes| decode_stored("owner", bytes.value()))
            .transpose()
    }
    fn receipt(
        &self,
        fingerprint: &Fingerprint,
        resource: &ResourceId,
    ) -> Result<Option<ReceiptEntry>> {
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
        if let Some(entry) = self.waiting(|changes| changes.state.parts.get(code).cloned()) {
            return Ok(Some(entry));
        }
        self.parts
            .get(code)
            .map_err(storage)?
            .map(|bytes| decode_stored("part", bytes.value()))
            .transpose()
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
            owners: txn.open_table(OWNERS).map_err(storage)?,
            receipts: txn.open_table(RECEIPTS).map_err(storage)?,
            parts: txn.open_table(PARTS).map_err(storage)?,
            positions: txn.open_table(TX_POSITIONS).map_err(storage)?,
        })
    }

    fn commit_block(&mut self, commit: BlockCommit<'_>) -> Result<()> {
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
        super::redb_network::commit(&txn, height, commit.certificate, &commit.block.transactions)?;
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
        super::redb_network::certificate_in(&self.read()?, from, to)
    }

    fn network_peers(&self) -> Result<Option<super::network::NetworkPeers>> {
        super::redb_network::peers(&self.read()?)
    }

    fn adopt_network_record(&mut self, record: &super::network::NetworkRecord) -> Result<()> {
        super::network::check_adoption(self.head()?.as_ref(), record)?;
        let txn = self.db.begin_write().map_err(storage)?;
        if super::redb_network::adopt(&txn, record)? {
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
