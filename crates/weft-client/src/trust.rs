//! The trust roots a home pins (docs/proofs.md, "Trust roots"): `HOME/trust/*.json`, one
//! `weft-trust-root/v1` document per chain the user believes answers about. The home's own
//! chain is pinned when its ledger is first opened; others are added with `weft trust add`, from
//! a trust root or a join document whose block 0 hash the user confirms.
//!
//! A root is pinned once: a file is written whole (a temporary file renamed into place) and
//! never replaced by one of another genesis; a second chain of the same name gets a file of its
//! own (names carry the genesis hash).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use weft_ledger::trust::{MAX_TRUST_BYTES, TrustRoot};

/// Where a home keeps its trust roots.
pub fn dir(home: &Path) -> PathBuf {
    home.join("trust")
}

/// The file a root is pinned in: the chain's name and the first 16 digits of its genesis hash.
pub fn file_of(home: &Path, root: &TrustRoot) -> PathBuf {
    let hash = root.genesis_hash.to_hex();
    dir(home).join(format!("{}-{}.json", root.chain, &hash[..16]))
}

/// A trust root and where it came from (for messages and JSON: the file).
#[derive(Debug, Clone)]
pub struct Pinned {
    pub root: TrustRoot,
    pub source: PathBuf,
}

/// Reads a trust root file, refusing an oversized one before reading it.
pub fn read(path: &Path) -> Result<TrustRoot> {
    let metadata =
        fs::metadata(path).with_context(|| format!("cannot read trust root {}", path.display()))?;
    if metadata.len() > MAX_TRUST_BYTES as u64 {
        bail!(
            "{} is {} bytes; a trust root is at most {MAX_TRUST_BYTES}",
            path.display(),
            metadata.len()
        );
    }
    let bytes =
        fs::read(path).with_context(|| format!("cannot read trust root {}", path.display()))?;
    TrustRoot::parse(&bytes).with_context(|| format!("trust root {}", path.display()))
}

/// Every root pinned in `home` (none if it has no `trust/`), in file name order.
pub fn pinned(home: &Path) -> Result<Vec<Pinned>> {
    let dir = dir(home);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            Ok(Pinned {
                root: read(&path)?,
                source: path,
            })
        })
        .collect()
}

/// Pins `root` in `home`. Returns the file and whether it was new (a root already pinned is
/// left as it is).
pub fn pin(home: &Path, root: &TrustRoot) -> Result<(PathBuf, bool)> {
    let path = file_of(home, root);
    if path.exists() {
        let existing = read(&path)?;
        if existing != *root {
            bail!(
                "{} pins another root for chain {:?}; remove it first if you mean to replace it",
                path.display(),
                root.chain
            );
        }
        return Ok((path, false));
    }
    let dir = dir(home);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text =
        serde_json::to_string_pretty(&root.document()).expect("a trust root serialises") + "\n";
    let temporary = path.with_extension("json.tmp");
    fs::write(&temporary, text).with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((path, true))
}
