//! What a network node keeps beside its ledger:
//! - the consensus certificates that finalized its blocks, by height: a node serves them with
//!   the blocks it sends a peer that catches up, so that the peer can check the blocks are final
//!   without trusting the sender (docs/network.md, "Catch-up");
//! - the peers admitted to the network by `NetworkPeer` transactions, and the height up to
//!   which the ledger was read for them (docs/network.md, "Joining a network");
//! - the address book: where each peer is dialled, as it said over its own connection or in an
//!   address it signed, so that a restarted node finds the validators and its other peers even
//!   when its configured seeds are gone (docs/network.md, "Connections").
//!
//! Certificates and admissions are written in one transaction per committed block. A crash between the ledger's commit
//! and this one loses at most a certificate; the admissions are read again from the ledger.

use std::path::Path;

use anyhow::{Context as _, Result};
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};
use weft_core::model::NetworkPeer;

const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("finalizations");
/// Admitted peer key → the name the authority gave it.
const MEMBERS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("members");
/// `"scanned"`: the height up to which the ledger was read for admissions. (Files written
/// before peers kept sets of their own also hold `"changed"`, no longer read.)
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Peer key → the address (`IP:PORT`) it was last known to be dialled at.
const ADDRESSES: TableDefinition<&[u8; 32], &str> = TableDefinition::new("addresses");
/// Most peers in the address book (a learnt address is replaced, never added beyond this).
pub(crate) const MAX_ADDRESSES: usize = 256;

/// The admitted peers, with the names the authority gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Members {
    pub peers: Vec<(weft_core::PublicKey, String)>,
}

pub(crate) struct Finality {
    db: Database,
}

impl Finality {
    pub fn open(path: &Path) -> Result<Self> {
        weft_ledger::files::create_private(path)
            .with_context(|| format!("cannot create the finality store {}", path.display()))?;
        let db = Database::create(path)
            .with_context(|| format!("cannot open the finality store {}", path.display()))?;
        let write = db.begin_write()?;
        write.open_table(CERTIFICATES)?;
        write.open_table(MEMBERS)?;
        write.open_table(META)?;
        write.open_table(ADDRESSES)?;
        write.commit()?;
        Ok(Finality { db })
    }

    /// Records what the committed block at `height` brings: the certificate that finalized it,
    /// if this node has it, and its admissions and removals of peers, in block order.
    pub fn record(
        &self,
        height: u64,
        certificate: Option<&[u8]>,
        changes: &[NetworkPeer],
    ) -> Result<()> {
        self.write(height, certificate, changes)
    }

    /// Records the admissions and removals of blocks read again from the ledger, up to
    /// `scanned`, in one write, in ledger order.
    pub fn record_scanned(&self, scanned: u64, changes: &[NetworkPeer]) -> Result<()> {
        self.write(scanned, None, changes)
    }

    fn write(
        &self,
        scanned: u64,
        certificate: Option<&[u8]>,
        changes: &[NetworkPeer],
    ) -> Result<()> {
        let write = self.db.begin_write()?;
        if let Some(certificate) = certificate {
            write
                .open_table(CERTIFICATES)?
                .insert(scanned, certificate)?;
        }
        {
            let mut members = write.open_table(MEMBERS)?;
            for change in changes {
                let key = change.key.0;
                if change.admitted {
                    members.insert(&key, change.name.as_str())?;
                } else {
                    members.remove(&key)?;
                }
            }
            write.open_table(META)?.insert("scanned", scanned)?;
        }
        write.commit()?;
        Ok(())
    }

    /// The height up to which committed blocks were read for admissions.
    pub fn scanned(&self) -> Result<u64> {
        let read = self.db.begin_read()?;
        let meta = read.open_table(META)?;
        Ok(meta.get("scanned")?.map_or(0, |value| value.value()))
    }

    pub fn members(&self) -> Result<Members> {
        let read = self.db.begin_read()?;
        let mut peers = Vec::new();
        for entry in read.open_table(MEMBERS)?.iter()? {
            let (key, name) = entry?;
            peers.push((weft_core::PublicKey(*key.value()), name.value().to_string()));
        }
        Ok(Members { peers })
    }

    /// The address book: each peer's key and the address it last gave.
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

    /// The highest height in `from..=to` with a certificate, and the certificate.
    pub fn last_in(&self, from: u64, to: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let read = self.db.begin_read()?;
        let table = read.open_table(CERTIFICATES)?;
        let last = table.range(from..=to)?.next_back().transpose()?;
        Ok(last.map(|(height, bytes)| (height.value(), bytes.value().to_vec())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_book_keeps_the_last_address_survives_a_reopen_and_is_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("finality.redb");
        let a = weft_core::PublicKey([1; 32]);
        let b = weft_core::PublicKey([2; 32]);
        {
            let finality = Finality::open(&path).expect("open");
            assert!(finality.learn_address(&a, "127.0.0.1:1").expect("learn"));
            assert!(!finality.learn_address(&a, "127.0.0.1:1").expect("same"));
            assert!(finality.learn_address(&a, "127.0.0.1:2").expect("moved"));
            assert!(finality.learn_address(&b, "127.0.0.2:3").expect("learn"));
            finality.forget_address(&b).expect("forget");
        }
        let finality = Finality::open(&path).expect("reopen");
        assert_eq!(
            finality.addresses().expect("read"),
            vec![(a, "127.0.0.1:2".to_string())]
        );
        for i in 0..MAX_ADDRESSES as u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&(i + 10).to_be_bytes());
            finality
                .learn_address(&weft_core::PublicKey(key), "127.0.0.1:9")
                .expect("learn");
        }
        assert_eq!(finality.addresses().expect("read").len(), MAX_ADDRESSES);
        assert!(
            finality.learn_address(&a, "127.0.0.1:4").expect("known"),
            "a known peer's address is replaced in a full book"
        );
    }

    #[test]
    fn the_last_certificate_in_a_range_is_found_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("finality.redb");
        {
            let finality = Finality::open(&path).expect("open");
            finality.record(3, Some(b"three"), &[]).expect("put");
            finality.record(5, None, &[]).expect("no certificate");
            finality.record(9, Some(b"nine"), &[]).expect("put");
        }
        let finality = Finality::open(&path).expect("reopen");
        assert_eq!(
            finality.last_in(1, 8).expect("read"),
            Some((3, b"three".to_vec()))
        );
        assert_eq!(
            finality.last_in(1, 100).expect("read"),
            Some((9, b"nine".to_vec()))
        );
        assert_eq!(finality.last_in(4, 8).expect("read"), None);
        assert_eq!(finality.scanned().expect("read"), 9);
    }

    #[test]
    fn admissions_and_removals_apply_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("finality.redb");
        let a = weft_core::SigningKey::from_seed(&[1; 32]).public_key();
        let b = weft_core::SigningKey::from_seed(&[2; 32]).public_key();
        let change = |key, admitted, name: &str| NetworkPeer {
            key,
            admitted,
            name: name.into(),
        };
        {
            let finality = Finality::open(&path).expect("open");
            assert_eq!(finality.members().expect("read"), Members::default());
            finality
                .record(4, None, &[change(a, true, "a"), change(b, true, "b")])
                .expect("admit");
            finality
                .record(6, None, &[change(a, false, "a"), change(b, true, "b2")])
                .expect("remove a, rename b");
            finality.record(7, None, &[]).expect("nothing");
        }
        let finality = Finality::open(&path).expect("reopen");
        assert_eq!(
            finality.members().expect("read"),
            Members {
                peers: vec![(b, "b2".to_string())],
            }
        );
        assert_eq!(finality.scanned().expect("read"), 7);
        // Blocks read again after a crash, in order: a is admitted again.
        finality
            .record_scanned(12, &[change(a, true, "a"), change(b, true, "b3")])
            .expect("scan");
        let mut peers = finality.members().expect("read").peers;
        peers.sort();
        let mut expected = vec![(a, "a".to_string()), (b, "b3".to_string())];
        expected.sort();
        assert_eq!(peers, expected);
        assert_eq!(finality.scanned().expect("read"), 12);
    }
}
