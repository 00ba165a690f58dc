//! The consensus certificates that finalized a node's blocks, by height: a node serves them
//! with the blocks it sends a peer that catches up, so that the peer can check the blocks are
//! final without trusting the sender (docs/network.md, "Catch-up").

use std::path::Path;

use anyhow::{Context as _, Result};
use redb::{Database, ReadableDatabase as _, TableDefinition};

const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("finalizations");

pub(crate) struct Finality {
    db: Database,
}

impl Finality {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)
            .with_context(|| format!("cannot open the finality store {}", path.display()))?;
        let write = db.begin_write()?;
        write.open_table(CERTIFICATES)?;
        write.commit()?;
        Ok(Finality { db })
    }

    /// Records the certificate that finalized the block at `height`.
    pub fn put(&self, height: u64, certificate: &[u8]) -> Result<()> {
        let write = self.db.begin_write()?;
        write
            .open_table(CERTIFICATES)?
            .insert(height, certificate)?;
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
    fn the_last_certificate_in_a_range_is_found_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("finality.redb");
        {
            let finality = Finality::open(&path).expect("open");
            finality.put(3, b"three").expect("put");
            finality.put(9, b"nine").expect("put");
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
    }
}
