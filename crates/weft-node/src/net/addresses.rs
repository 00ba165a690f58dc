//! The address book: where each peer is dialled, as it said over its own connection or in an
//! address it signed, so that a restarted node finds the validators and its other peers even
//! when its configured seeds are gone (docs/network.md, "Connections"). It is the only thing a
//! network node keeps outside its ledger, in `HOME/network/addresses.redb`: the certificates
//! that finalized its blocks and the admitted peers are written with each block, in the
//! ledger's own transaction (`weft_ledger::store::network`).
//!
//! Nodes of earlier versions kept the certificates and the admitted peers beside the address
//! book, in `HOME/network/finality.redb`, written after the ledger's commit. [`migrate`] hands
//! them to the ledger and the addresses to the book, once, and removes that file.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition, TableHandle as _,
};
use weft_ledger::store::Store as _;
use weft_ledger::store::network::{NetworkRecord, apply_peer_changes, peer_changes};

use crate::submission::SharedLedger;

/// Peer key → the address (`IP:PORT`) it was last known to be dialled at.
const ADDRESSES: TableDefinition<&[u8; 32], &str> = TableDefinition::new("addresses");
/// Most peers in the address book (a learnt address is replaced, never added beyond this).
pub(crate) const MAX_ADDRESSES: usize = 256;

pub(crate) struct AddressBook {
    db: Database,
}

impl AddressBook {
    pub fn open(path: &Path) -> Result<Self> {
        weft_ledger::files::create_private(path)
            .with_context(|| format!("cannot create the address book {}", path.display()))?;
        let db = Database::create(path)
            .with_context(|| format!("cannot open the address book {}", path.display()))?;
        let write = db.begin_write()?;
        write.open_table(ADDRESSES)?;
        write.commit()?;
        Ok(AddressBook { db })
    }

    /// Each peer's key and the address it last gave.
    pub fn addresses(&self) -> Result<Vec<(weft_core::PublicKey, String)>> {
        let read = self.db.begin_read()?;
        let mut addresses = Vec::new();
        for entry in read.open_table(ADDRESSES)?.iter()? {
            let (key, address) = entry?;
            addresses.push((
                weft_core::PublicKey(*key.value()),
                address.value().to_string(),
            ));
        }
        Ok(addresses)
    }

    /// Records that `key` is dialled at `address`. Returns whether the book changed; a new
    /// peer is not added to a full book ([`MAX_ADDRESSES`]).
    pub fn learn_address(&self, key: &weft_core::PublicKey, address: &str) -> Result<bool> {
        let write = self.db.begin_write()?;
        let changed = {
            let mut table = write.open_table(ADDRESSES)?;
            let known = table.get(&key.0)?.map(|value| value.value().to_string());
            match known {
                Some(known) if known == address => false,
                None if table.len()? >= MAX_ADDRESSES as u64 => false,
                _ => {
                    table.insert(&key.0, address)?;
                    true
                }
            }
        };
        if changed {
            write.commit()?;
        } else {
            write.abort()?;
        }
        Ok(changed)
    }

    /// Drops `key` from the address book (a peer removed from the network).
    pub fn forget_address(&self, key: &weft_core::PublicKey) -> Result<()> {
        let write = self.db.begin_write()?;
        write.open_table(ADDRESSES)?.remove(&key.0)?;
        write.commit()?;
        Ok(())
    }
}

/// The tables of the earlier side file.
const LEGACY_CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("finalizations");
const LEGACY_MEMBERS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("members");
const LEGACY_META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Opens the address book in `dir`, first taking over an earlier node's `finality.redb` if one
/// is there, and makes sure the ledger keeps a record of the network's peers: the certificates
/// and peers of the side file go to the ledger (with the peers of blocks committed after the
/// side file's last write, read again from the ledger), the addresses to the book; then the side
/// file is removed. Each step can be repeated: a crash part-way is finished at the next start.
pub(crate) fn open_and_migrate(dir: &Path, ledger: &SharedLedger) -> Result<AddressBook> {
    let book = AddressBook::open(&dir.join("addresses.redb"))?;
    let legacy_path = dir.join("finality.redb");
    let legacy = if legacy_path.exists() {
        Some(
            Database::open(&legacy_path)
                .with_context(|| format!("cannot open {}", legacy_path.display()))?,
        )
    } else {
        None
    };
    adopt(legacy.as_ref(), ledger)?;
    if let Some(legacy) = legacy {
        let read = legacy.begin_read()?;
        if table_names(&read)?
            .iter()
            .any(|name| name == ADDRESSES.name())
        {
            for entry in read.open_table(ADDRESSES)?.iter()? {
                let (key, address) = entry?;
                book.learn_address(&weft_core::PublicKey(*key.value()), address.value())?;
            }
        }
        drop(read);
        drop(legacy);
        std::fs::remove_file(&legacy_path)
            .with_context(|| format!("cannot remove {}", legacy_path.display()))?;
        tracing::info!(
            "the certificates and admitted peers of {} now live in the ledger, its addresses in \
             addresses.redb",
            legacy_path.display()
        );
    }
    Ok(book)
}

/// The tables a file holds (an earlier side file may lack some).
fn table_names(read: &redb::ReadTransaction) -> Result<Vec<String>> {
    Ok(read
        .list_tables()?
        .map(|table| table.name().to_string())
        .collect())
}

/// Gives the ledger a record of the network's peers if it keeps none: the side file's, brought
/// up to the head, or (no side file) one read from every committed block.
fn adopt(legacy: Option<&Database>, ledger: &SharedLedger) -> Result<()> {
    let mut ledger = ledger.lock().map_err(|_| anyhow::anyhow!("ledger lock"))?;
    if ledger.store().network_peers()?.is_some() {
        return Ok(());
    }
    let mut record = NetworkRecord::default();
    let mut scanned = 0;
    if let Some(legacy) = legacy {
        let read = legacy.begin_read()?;
        let tables = table_names(&read)?;
        let has = |name: &str| tables.iter().any(|table| table == name);
        if has(LEGACY_CERTIFICATES.name()) {
            for entry in read.open_table(LEGACY_CERTIFICATES)?.iter()? {
                let (height, bytes) = entry?;
                record
                    .certificates
                    .push((height.value(), bytes.value().to_vec()));
            }
        }
        if has(LEGACY_MEMBERS.name()) {
            for entry in read.open_table(LEGACY_MEMBERS)?.iter()? {
                let (key, name) = entry?;
                record
                    .peers
                    .insert(weft_core::PublicKey(*key.value()), name.value().to_string());
            }
        }
        if has(LEGACY_META.name()) {
            scanned = read
                .open_table(LEGACY_META)?
                .get("scanned")?
                .map_or(0, |value| value.value());
        }
    }
    let head = ledger.head().header.height;
    if scanned > head {
        bail!(
            "the network's side file was read through block {scanned}, beyond the ledger's head \
             {head}: it belongs to another ledger"
        );
    }
    for height in scanned + 1..=head {
        let Some(block) = ledger.store().block(height)? else {
            bail!("block {height} is missing from the ledger");
        };
        apply_peer_changes(&mut record.peers, &peer_changes(&block.transactions));
    }
    record.through = head;
    ledger.adopt_network_record(&record)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_book_keeps_the_last_address_survives_a_reopen_and_is_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("addresses.redb");
        let a = weft_core::PublicKey([1; 32]);
        let b = weft_core::PublicKey([2; 32]);
        {
            let book = AddressBook::open(&path).expect("open");
            assert!(book.learn_address(&a, "127.0.0.1:1").expect("learn"));
            assert!(!book.learn_address(&a, "127.0.0.1:1").expect("same"));
            assert!(book.learn_address(&a, "127.0.0.1:2").expect("moved"));
            assert!(book.learn_address(&b, "127.0.0.2:3").expect("learn"));
            book.forget_address(&b).expect("forget");
        }
        let book = AddressBook::open(&path).expect("reopen");
        assert_eq!(
            book.addresses().expect("read"),
            vec![(a, "127.0.0.1:2".to_string())]
        );
        for i in 0..MAX_ADDRESSES as u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&(i + 10).to_be_bytes());
            book.learn_address(&weft_core::PublicKey(key), "127.0.0.1:9")
                .expect("learn");
        }
        assert_eq!(book.addresses().expect("read").len(), MAX_ADDRESSES);
        assert!(
            book.learn_address(&a, "127.0.0.1:4").expect("known"),
            "a known peer's address is replaced in a full book"
        );
    }
}

#[cfg(test)]
mod migration {
    use std::sync::{Arc, Mutex};

    use weft_core::model::{Genesis, NetworkPeer, Payload};
    use weft_core::{ChainId, SigningKey};
    use weft_ledger::store::RedbStore;
    use weft_ledger::{Ledger, Signer, Transaction};

    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn peer(
        authority: &SigningKey,
        chain: ChainId,
        time: u64,
        key: u8,
        admitted: bool,
    ) -> Transaction {
        Transaction::sign(
            chain,
            time,
            Signer::Authority,
            authority,
            Payload::NetworkPeer(NetworkPeer {
                key: SigningKey::from_seed(&[key; 32]).public_key(),
                admitted,
                name: format!("peer-{key}"),
            }),
        )
        .expect("tx")
    }

    /// An earlier node's home: a ledger with no network record of its own and a side file
    /// `finality.redb` read through block 1, then block 2 committed after it (the crash window
    /// of the earlier two-commit design).
    fn earlier_home(dir: &Path) -> SharedLedger {
        let authority = SigningKey::from_seed(&[1; 32]);
        let producer = SigningKey::from_seed(&[2; 32]);
        let genesis = Transaction::sign(
            ChainId::from_name("migration").expect("name"),
            T0,
            Signer::Authority,
            &authority,
            Payload::Genesis(Genesis {
                chain_name: "migration".into(),
                authorities: vec![authority.public_key()],
                producers: vec![producer.public_key()],
                time_window_ms: 300_000,
            }),
        )
        .expect("genesis");
        let chain = genesis.header.chain_id;
        let path = dir.join("ledger.redb");
        let mut ledger = Ledger::create(
            RedbStore::open(&path).expect("open"),
            genesis,
            &producer,
            T0,
        )
        .expect("chain");
        for (time, changes) in [
            (T0 + 1, vec![(7, true)]),
            (T0 + 2, vec![(7, false), (8, true)]),
        ] {
            let txs = changes
                .into_iter()
                .map(|(key, admitted)| peer(&authority, chain, time, key, admitted))
                .collect();
            let outcome = ledger.produce_block(txs, &producer, time).expect("block");
            assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        }
        drop(ledger);
        {
            let db = Database::open(&path).expect("raw open");
            let txn = db.begin_write().expect("write");
            txn.delete_table(TableDefinition::<&str, u64>::new("network_meta"))
                .expect("no record");
            txn.commit().expect("commit");
        }
        let side = Database::create(dir.join("finality.redb")).expect("side file");
        let txn = side.begin_write().expect("write");
        txn.open_table(LEGACY_CERTIFICATES)
            .expect("table")
            .insert(1, b"certificate of block 1".as_slice())
            .expect("insert");
        let seven = SigningKey::from_seed(&[7; 32]).public_key();
        txn.open_table(LEGACY_MEMBERS)
            .expect("table")
            .insert(&seven.0, "peer-7")
            .expect("insert");
        txn.open_table(LEGACY_META)
            .expect("table")
            .insert("scanned", 1)
            .expect("insert");
        txn.open_table(ADDRESSES)
            .expect("table")
            .insert(&seven.0, "127.0.0.1:7000")
            .expect("insert");
        txn.commit().expect("commit");
        drop(side);
        let ledger = Ledger::open(RedbStore::open(&path).expect("reopen")).expect("chain");
        assert_eq!(ledger.store().network_peers().expect("read"), None);
        Arc::new(Mutex::new(ledger))
    }

    #[test]
    fn an_earlier_side_file_moves_into_the_ledger_and_the_book_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = earlier_home(dir.path());
        let book = open_and_migrate(dir.path(), &ledger).expect("migrated");
        assert!(
            !dir.path().join("finality.redb").exists(),
            "the side file is removed"
        );
        let seven = SigningKey::from_seed(&[7; 32]).public_key();
        let eight = SigningKey::from_seed(&[8; 32]).public_key();
        assert_eq!(
            book.addresses().expect("read"),
            vec![(seven, "127.0.0.1:7000".to_string())]
        );
        drop(book);
        let check = |ledger: &SharedLedger| {
            let ledger = ledger.lock().expect("lock");
            // Block 2, committed after the side file's last write, removed 7 and admitted 8.
            let peers: Vec<_> = ledger
                .store()
                .network_peers()
                .expect("read")
                .expect("a record")
                .into_iter()
                .collect();
            assert_eq!(peers, vec![(eight, "peer-8".to_string())]);
            assert_eq!(
                ledger.store().certificate_in(0, 2).expect("read"),
                Some((1, b"certificate of block 1".to_vec()))
            );
        };
        check(&ledger);
        // Again: nothing left to take over, nothing changes.
        let book = open_and_migrate(dir.path(), &ledger).expect("again");
        assert_eq!(book.addresses().expect("read").len(), 1);
        check(&ledger);
    }

    #[test]
    fn a_side_file_read_beyond_the_head_belongs_to_another_ledger_and_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = earlier_home(dir.path());
        {
            let side = Database::open(dir.path().join("finality.redb")).expect("open");
            let txn = side.begin_write().expect("write");
            txn.open_table(LEGACY_META)
                .expect("table")
                .insert("scanned", 9)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let error = open_and_migrate(dir.path(), &ledger)
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("beyond the ledger's head 2"), "{error}");
        assert!(
            dir.path().join("finality.redb").exists(),
            "nothing is removed when refused"
        );
    }
}
