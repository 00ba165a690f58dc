//! The durable embedded store, on redb (see docs/adr/0001-storage-redb.md).
//!
//! One redb write transaction per block, committed with `Durability::Immediate`: when
//! [`RedbStore::commit_block`] returns, the block, its transactions, all indexes and the rule
//! state are on disk together; a crash before that leaves none of them. redb's copy-on-write
//! B-trees and checksummed commit slots make the file recover to the last commit on open.

use std::path::Path;

use borsh::BorshDeserialize;
use redb::{
    Database, MultimapTableDefinition, ReadOnlyMultimapTable, ReadOnlyTable, ReadTransaction,
    ReadableDatabase, ReadableTable, TableDefinition,
};
use weft_core::encoding::encode;
use weft_core::model::Genesis;
use weft_core::{BlockHash, Fingerprint, Hash32, PublicKey, ResourceId, TxId};

use super::{BlockCommit, Store, index_keys, index_value, parse_index_value, receipt_key};
use crate::block::{MerkleLevels, SignedHeader};
use crate::error::{LedgerError, Result};
use crate::state::{
    KeyStatus, OwnerEntry, PartEntry, Position, ReceiptEntry, ResourceEntry, StateView,
};
use crate::tx::Transaction;

const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
const TREES: TableDefinition<u64, &[u8]> = TableDefinition::new("merkle_trees");
const HASHES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_hashes");
const TXS: TableDefinition<&[u8; 12], &[u8]> = TableDefinition::new("transactions");
const TX_POSITIONS: TableDefinition<&[u8; 32], &[u8; 12]> = TableDefinition::new("tx_positions");
const BY_FINGERPRINT: MultimapTableDefinition<&[u8; 33], &[u8; 44]> =
    MultimapTableDefinition::new("by_fingerprint");
const BY_RESOURCE: MultimapTableDefinition<&[u8; 32], &[u8; 44]> =
    MultimapTableDefinition::new("by_resource");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RESOURCES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("resources");
const KEYS: TableDefinition<&[u8; 64], &[u8]> = TableDefinition::new("keys");
const OWNERS: TableDefinition<&[u8; 33], &[u8]> = TableDefinition::new("owners");
const RECEIPTS: TableDefinition<&[u8; 65], &[u8]> = TableDefinition::new("receipts");
const PARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("parts");

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

/// The redb-backed store.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
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
        // Create every table up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(storage)?;
        {
            txn.open_table(HEADERS).map_err(storage)?;
            txn.open_table(TREES).map_err(storage)?;
            txn.open_table(HASHES).map_err(storage)?;
            txn.open_table(TXS).map_err(storage)?;
            txn.open_table(TX_POSITIONS).map_err(storage)?;
            txn.open_multimap_table(BY_FINGERPRINT).map_err(storage)?;
            txn.open_multimap_table(BY_RESOURCE).map_err(storage)?;
            txn.open_table(META).map_err(storage)?;
            txn.open_table(RESOURCES).map_err(storage)?;
            txn.open_table(KEYS).map_err(storage)?;
            txn.open_table(OWNERS).map_err(storage)?;
            txn.open_table(RECEIPTS).map_err(storage)?;
            txn.open_table(PARTS).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(RedbStore { db })
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(storage)
    }
}

/// A read snapshot with the state tables open.
#[derive(Debug)]
pub struct RedbSnapshot {
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    resources: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    keys: ReadOnlyTable<&'static [u8; 64], &'static [u8]>,
    owners: ReadOnlyTable<&'static [u8; 33], &'static [u8]>,
    receipts: ReadOnlyTable<&'static [u8; 65], &'static [u8]>,
    parts: ReadOnlyTable<&'static str, &'static [u8]>,
    positions: ReadOnlyTable<&'static [u8; 32], &'static [u8; 12]>,
}

impl StateView for RedbSnapshot {
    fn genesis(&self) -> Result<Option<Genesis>> {
        match self.meta.get("genesis").map_err(storage)? {
            Some(bytes) => Ok(Some(decode_stored("genesis", bytes.value())?)),
            None => Ok(None),
        }
    }
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceEntry>> {
        self.resources
            .get(id.as_bytes())
            .map_err(storage)?
            .map(|bytes| decode_stored("resource", bytes.value()))
            .transpose()
    }
    fn key_status(&self, id: &ResourceId, key: &PublicKey) -> Result<Option<KeyStatus>> {
        self.keys
            .get(&key_key(id, key))
            .map_err(storage)?
            .map(|bytes| decode_stored("key", bytes.value()))
            .transpose()
    }
    fn owner(&self, fingerprint: &Fingerprint) -> Result<Option<OwnerEntry>> {
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
        self.receipts
            .get(&receipt_key(fingerprint, resource))
            .map_err(storage)?
            .map(|bytes| decode_stored("receipt", bytes.value()))
            .transpose()
    }
    fn part(&self, code: &str) -> Result<Option<PartEntry>> {
        self.parts
            .get(code)
            .map_err(storage)?
            .map(|bytes| decode_stored("part", bytes.value()))
            .transpose()
    }
    fn contains_tx(&self, id: &TxId) -> Result<bool> {
        Ok(self
            .positions
            .get(id.as_bytes())
            .map_err(storage)?
            .is_some())
    }
}

fn index_entries(
    table: &ReadOnlyMultimapTable<&'static [u8; 33], &'static [u8; 44]>,
    key: &[u8; 33],
) -> Result<Vec<(Position, TxId)>> {
    let mut out = Vec::new();
    for value in table.get(key).map_err(storage)? {
        let value = value.map_err(storage)?;
        out.push(
            parse_index_value(value.value())
                .ok_or_else(|| LedgerError::Corrupt("fingerprint index entry".into()))?,
        );
    }
    Ok(out)
}

impl Store for RedbStore {
    type Snapshot<'a> = RedbSnapshot;

    fn snapshot(&self) -> Result<RedbSnapshot> {
        let txn = self.read()?;
        Ok(RedbSnapshot {
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
            txn.open_table(TREES)
                .map_err(storage)?
                .insert(height, commit.levels.to_bytes().as_slice())
                .map_err(storage)?;
            txn.open_table(HASHES)
                .map_err(storage)?
                .insert(signed.header.hash().as_bytes(), height)
                .map_err(storage)?;

            let mut txs = txn.open_table(TXS).map_err(storage)?;
            let mut positions = txn.open_table(TX_POSITIONS).map_err(storage)?;
            let mut by_fingerprint = txn.open_multimap_table(BY_FINGERPRINT).map_err(storage)?;
            let mut by_resource = txn.open_multimap_table(BY_RESOURCE).map_err(storage)?;
            let mut buffer = Vec::with_capacity(1024);
            for (index, (tx, id)) in commit.block.transactions.iter().zip(commit.ids).enumerate() {
                let position = Position {
                    height,
                    index: index as u32,
                };
                let key = position.to_key();
                buffer.clear();
                borsh::to_writer(&mut buffer, tx).map_err(storage)?;
                txs.insert(&key, buffer.as_slice()).map_err(storage)?;
                positions.insert(id.as_bytes(), &key).map_err(storage)?;
                let value = index_value(position, id);
                let (fingerprint, resources) = index_keys(tx);
                if let Some(fingerprint) = fingerprint {
                    by_fingerprint
                        .insert(&fingerprint, &value)
                        .map_err(storage)?;
                }
                for resource in resources {
                    by_resource
                        .insert(resource.as_bytes(), &value)
                        .map_err(storage)?;
                }
            }

            let delta = commit.delta;
            if let Some(genesis) = &delta.genesis {
                txn.open_table(META)
                    .map_err(storage)?
                    .insert("genesis", encode(genesis).as_slice())
                    .map_err(storage)?;
            }
            let mut resources = txn.open_table(RESOURCES).map_err(storage)?;
            for (id, entry) in &delta.resources {
                resources
                    .insert(id.as_bytes(), encode(entry).as_slice())
                    .map_err(storage)?;
            }
            let mut keys = txn.open_table(KEYS).map_err(storage)?;
            for ((resource, key), status) in &delta.keys {
                keys.insert(&key_key(resource, key), encode(status).as_slice())
                    .map_err(storage)?;
            }
            let mut owners = txn.open_table(OWNERS).map_err(storage)?;
            for (fingerprint, entry) in &delta.owners {
                owners
                    .insert(&fingerprint.key_bytes(), encode(entry).as_slice())
                    .map_err(storage)?;
            }
            let mut receipts = txn.open_table(RECEIPTS).map_err(storage)?;
            for ((fingerprint, resource), entry) in &delta.receipts {
                receipts
                    .insert(
                        &receipt_key(fingerprint, resource),
                        encode(entry).as_slice(),
                    )
                    .map_err(storage)?;
            }
            let mut parts = txn.open_table(PARTS).map_err(storage)?;
            for (code, entry) in &delta.parts {
                parts
                    .insert(code.as_str(), encode(entry).as_slice())
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
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
        let trees = txn.open_table(TREES).map_err(storage)?;
        let Some(bytes) = trees.get(height).map_err(storage)? else {
            return Ok(None);
        };
        Ok(MerkleLevels::path_from_bytes(
            bytes.value(),
            header.header.tx_count as usize,
            index as usize,
        ))
    }

    fn by_fingerprint(&self, fingerprint: &Fingerprint) -> Result<Vec<(Position, TxId)>> {
        let table = self
            .read()?
            .open_multimap_table(BY_FINGERPRINT)
            .map_err(storage)?;
        index_entries(&table, &fingerprint.key_bytes())
    }

    fn by_resource(&self, resource: &ResourceId) -> Result<Vec<(Position, TxId)>> {
        let table = self
            .read()?
            .open_multimap_table(BY_RESOURCE)
            .map_err(storage)?;
        let mut out = Vec::new();
        for value in table.get(resource.as_bytes()).map_err(storage)? {
            let value = value.map_err(storage)?;
            out.push(
                parse_index_value(value.value())
                    .ok_or_else(|| LedgerError::Corrupt("resource index entry".into()))?,
            );
        }
        Ok(out)
    }

    fn resources_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<ResourceId>> {
        let table = self.read()?.open_table(RESOURCES).map_err(storage)?;
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
            out.push(ResourceId(Hash32(id)));
        }
        Ok(out)
    }
}
