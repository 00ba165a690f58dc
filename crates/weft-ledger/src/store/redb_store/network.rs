//! The network record of [`crate::store::network`] in redb tables, written inside the block's write
//! transaction.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use weft_core::PublicKey;

use crate::error::{LedgerError, Result};
use crate::store::network::{NetworkPeers, NetworkRecord, peer_changes, tracks};
use crate::tx::Transaction;

/// Height → the consensus certificate that finalized the block at that height.
pub(super) const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("finalizations");
/// Admitted peer key → the name the authority gave it.
pub(super) const PEERS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("network_peers");
/// `peers_through` → the height through which [`PEERS`] is read; absent when the store keeps no
/// record of peers.
pub(super) const NETWORK_META: TableDefinition<&str, u64> = TableDefinition::new("network_meta");
const THROUGH: &str = "peers_through";

fn storage(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(error.to_string())
}

/// Creates the tables (at open, so that readers never meet a missing one).
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(CERTIFICATES).map_err(storage)?;
    txn.open_table(PEERS).map_err(storage)?;
    txn.open_table(NETWORK_META).map_err(storage)?;
    Ok(())
}

/// Writes what block `height` brings to the record: its certificate, its peer changes.
pub(super) fn commit(
    txn: &WriteTransaction,
    height: u64,
    certificate: Option<&[u8]>,
    transactions: &[Transaction],
) -> Result<()> {
    if let Some(certificate) = certificate {
        txn.open_table(CERTIFICATES)
            .map_err(storage)?
            .insert(height, certificate)
            .map_err(storage)?;
    }
    let mut meta = txn.open_table(NETWORK_META).map_err(storage)?;
    let through = meta.get(THROUGH).map_err(storage)?.map(|v| v.value());
    if !tracks(through, height) {
        return Ok(());
    }
    let mut peers = txn.open_table(PEERS).map_err(storage)?;
    for change in peer_changes(transactions) {
        if change.admitted {
            peers
                .insert(&change.key.0, change.name.as_str())
                .map_err(storage)?;
        } else {
            peers.remove(&change.key.0).map_err(storage)?;
        }
    }
    meta.insert(THROUGH, height).map_err(storage)?;
    Ok(())
}

/// The certificate of the highest (`last`) or lowest height in `from..=to` that has one.
pub(super) fn certificate_in(
    txn: &ReadTransaction,
    from: u64,
    to: u64,
    last: bool,
) -> Result<Option<(u64, Vec<u8>)>> {
    if from > to {
        return Ok(None);
    }
    let table = txn.open_table(CERTIFICATES).map_err(storage)?;
    let mut range = table.range(from..=to).map_err(storage)?;
    let found = if last {
        range.next_back()
    } else {
        range.next()
    };
    let found = found.transpose().map_err(storage)?;
    Ok(found.map(|(height, bytes)| (height.value(), bytes.value().to_vec())))
}

pub(super) fn peers(txn: &ReadTransaction) -> Result<Option<NetworkPeers>> {
    let meta = txn.open_table(NETWORK_META).map_err(storage)?;
    if meta.get(THROUGH).map_err(storage)?.is_none() {
        return Ok(None);
    }
    let mut peers = NetworkPeers::new();
    for entry in txn
        .open_table(PEERS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (key, name) = entry.map_err(storage)?;
        peers.insert(PublicKey(*key.value()), name.value().to_string());
    }
    Ok(Some(peers))
}

/// Writes `record` unless the store keeps a record already. Returns whether it wrote.
pub(super) fn adopt(txn: &WriteTransaction, record: &NetworkRecord) -> Result<bool> {
    let mut meta = txn.open_table(NETWORK_META).map_err(storage)?;
    if meta.get(THROUGH).map_err(storage)?.is_some() {
        return Ok(false);
    }
    let mut certificates = txn.open_table(CERTIFICATES).map_err(storage)?;
    for (height, bytes) in &record.certificates {
        certificates
            .insert(*height, bytes.as_slice())
            .map_err(storage)?;
    }
    let mut peers = txn.open_table(PEERS).map_err(storage)?;
    for (key, name) in &record.peers {
        peers.insert(&key.0, name.as_str()).map_err(storage)?;
    }
    meta.insert(THROUGH, record.through).map_err(storage)?;
    Ok(true)
}
