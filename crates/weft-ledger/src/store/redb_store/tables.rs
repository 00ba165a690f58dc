//! The tables of the file and how their keys are made: the layout that `STORAGE_VERSION`
//! names, and the range scans and decoding that every reader of them shares.

use borsh::BorshDeserialize;
use redb::{ReadOnlyTable, TableDefinition};
use weft_core::{Hash32, PublicKey, ResourceId, TxId};

use crate::block::TileKey;
use crate::error::{LedgerError, Result};
use crate::state::Position;

pub(super) const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
/// Height ‖ tier ‖ tile (big-endian) → one tile of the block's Merkle tree
/// ([`MerkleLevels::tiles`](crate::block::MerkleLevels::tiles)).
pub(super) const TREES: TableDefinition<&[u8; 13], &[u8]> = TableDefinition::new("merkle_tiles");

pub(super) fn tile_key(height: u64, key: TileKey) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..8].copy_from_slice(&height.to_be_bytes());
    out[8] = key.tier;
    out[9..].copy_from_slice(&key.tile.to_be_bytes());
    out
}
pub(super) const HASHES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_hashes");
pub(super) const TXS: TableDefinition<&[u8; 12], &[u8]> = TableDefinition::new("transactions");
pub(super) const TX_POSITIONS: TableDefinition<&[u8; 32], &[u8; 12]> =
    TableDefinition::new("tx_positions");
/// Fingerprint key bytes ‖ position → transaction id: a lookup is one range scan.
pub(super) const BY_FINGERPRINT: TableDefinition<&[u8; 45], &[u8; 32]> =
    TableDefinition::new("fingerprint_index");
/// Resource id ‖ position → transaction id.
pub(super) const BY_RESOURCE: TableDefinition<&[u8; 44], &[u8; 32]> =
    TableDefinition::new("resource_index");

/// The layout of the tables; a file with another is refused with a clear message (but layout 4,
/// which it upgrades in place: [`index_records`]).
pub(super) const STORAGE_VERSION: &[u8] = b"6";

/// Upgrades layout 4 to 5: every `Record` already stored is indexed under its body's
/// fingerprint, as layout 5 indexes new ones. One pass over the stored transactions, in the
/// write transaction that records the new layout.
pub(super) fn index_records(txn: &redb::WriteTransaction) -> Result<()> {
    use redb::ReadableTable as _;
    let transactions = txn.open_table(TXS).map_err(storage)?;
    let mut index = txn.open_table(BY_FINGERPRINT).map_err(storage)?;
    for row in transactions.iter().map_err(storage)? {
        let (key, value) = row.map_err(storage)?;
        let tx: crate::tx::Transaction = decode_stored("transaction", value.value())?;
        if let Some(weft_core::model::Payload::Record(_)) = &tx.payload
            && let Some(fingerprint) = tx.payload.as_ref().and_then(|p| p.content_fingerprint())
        {
            let position = Position::from_key(key.value()).ok_or_else(|| {
                LedgerError::Corrupt("a transaction key is not a position".into())
            })?;
            let entry: [u8; 45] = index_key(&fingerprint.key_bytes(), position);
            index.insert(&entry, &tx.id().0.0).map_err(storage)?;
        }
    }
    Ok(())
}

pub(super) fn index_key<const N: usize, const K: usize>(
    prefix: &[u8; N],
    position: Position,
) -> [u8; K] {
    debug_assert_eq!(N + 12, K);
    let mut key = [0u8; K];
    key[..N].copy_from_slice(prefix);
    key[N..].copy_from_slice(&position.to_key());
    key
}

/// The keys of a table of 32-byte keys that start with `prefix`, in order (at most `limit`).
pub(super) fn keys_with_prefix<V: redb::Value + 'static>(
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
pub(super) fn with_waiting_keys(
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
pub(super) fn scan_index<const N: usize, const K: usize>(
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
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const RESOURCES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("resources");
pub(super) const KEYS: TableDefinition<&[u8; 64], &[u8]> = TableDefinition::new("keys");
/// Layout 5's owners, read once by the upgrade to 6 (which keeps them in `HISTORIES`).
pub(super) const OWNERS: TableDefinition<&[u8; 33], &[u8]> = TableDefinition::new("owners");
pub(super) const RECEIPTS: TableDefinition<&[u8; 65], &[u8]> = TableDefinition::new("receipts");
pub(super) const PARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("parts");
/// Fingerprint key bytes → Borsh [`HistoryEntry`](crate::state::HistoryEntry), with the owner
/// (layout 6).
pub(super) const HISTORIES: TableDefinition<&[u8; 33], &[u8]> = TableDefinition::new("histories");
/// Height → Borsh `StateDelta` of each block whose changes are not merged into the tables yet.
pub(super) const PENDING_DELTAS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("pending_deltas");

pub(super) fn storage(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(error.to_string())
}

pub(super) fn decode_stored<T: BorshDeserialize>(what: &str, bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).map_err(|error| LedgerError::Corrupt(format!("{what}: {error}")))
}

pub(super) fn key_key(resource: &ResourceId, key: &PublicKey) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(resource.as_bytes());
    out[32..].copy_from_slice(&key.0);
    out
}
