//! The ledger home directory: configuration, keys and the database.
//!
//! ```text
//! HOME/                  created mode 0700
//!   config.toml          node-local settings (weft_node::NodeConfig); the chain's parameters are in its genesis
//!   node.addr            while a node runs: its API address, then `tcp ADDR` and `tls` lines   0600
//!   admin.token          the node's admin token                         secret, 0600
//!   ingest.token         the token TCP ingest clients show for RECORD frames   secret, 0600
//!   ledger.redb          the chain (redb)                               0600
//!   queue.log            the node's `wait=false` journal                0600
//!   evidence.jsonl       in a network: misbehaviour seen                0600
//!   network/             in a network: address book, engine state       0700
//!   keys/                                                               0700
//!   keys/authority.key   network authority (registers organisations)   secret, 0600
//!   keys/producer.key    block producer (seals blocks)                  secret, 0600
//!   keys/<resource>.key  one per registered organisation or person      secret, 0600
//! ```
//!
//! A secret that other users may read is refused (`weft_ledger::files::read_secret`, the message
//! says `chmod 600 FILE`); the other files and directories of the list, if made readable by
//! others (by an earlier weft, or by hand), are tightened by [`Home::open`], which says so on
//! standard error (README, "Files and permissions").

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use weft_core::{ResourceId, SigningKey};
use weft_ledger::Ledger;
use weft_ledger::store::RedbStore;

/// Default of `weft init --time-window-secs`.
pub const DEFAULT_TIME_WINDOW_SECS: u64 = 300;

pub struct Home {
    pub dir: PathBuf,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Home").field("dir", &self.dir).finish()
    }
}

/// The wall clock in milliseconds, strictly increasing within this process, so two
/// transactions made in the same millisecond still have ordered `timeOfTx` (rules 1 and 2 need
/// a strictly later time).
pub fn now_ms() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut previous = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(previous + 1);
        match LAST.compare_exchange_weak(previous, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => previous = actual,
        }
    }
}

/// Writes a secret key file that only the owner can read; refuses to overwrite.
pub fn write_key(path: &Path, key: &SigningKey) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(key.to_text().as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Reads a secret key file's text, refusing one that others can read or that is too large to
/// be a key.
pub fn read_private_text(path: &Path) -> Result<String> {
    Ok(weft_ledger::files::read_secret(path, "key file")?)
}

/// Reads a secret signing key file, refusing one that others can read.
pub fn read_key(path: &Path) -> Result<SigningKey> {
    let text = read_private_text(path)?;
    SigningKey::from_text(&text).with_context(|| format!("key file {}", path.display()))
}

impl Home {
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    pub fn resource_key_path(&self, id: &ResourceId) -> PathBuf {
        self.keys_dir().join(format!("{id}.key"))
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("ledger.redb")
    }

    /// Creates a new home with a genesis block. Refuses an existing ledger; on failure removes
    /// what it created, so nothing half-written is left.
    pub fn init(
        dir: &Path,
        chain_name: &str,
        time_window_secs: u64,
    ) -> Result<(Home, Ledger<RedbStore>)> {
        weft_core::ChainId::from_name(chain_name).context("--chain-id")?;
        if time_window_secs == 0 || time_window_secs > 7 * 24 * 3600 {
            bail!(
                "--time-window-secs must be between 1 and 604800 (one week), got {time_window_secs}"
            );
        }
        if dir.join("config.toml").exists() || dir.join("ledger.redb").exists() {
            bail!(
                "{} already holds a weft ledger; choose another --home or remove it",
                dir.display()
            );
        }
        let created_dir = !dir.exists();
        weft_ledger::files::create_private_dir_all(dir)
            .with_context(|| format!("cannot create home directory {}", dir.display()))?;
        let result = SigningKey::generate()
            .and_then(|authority| Ok((authority, SigningKey::generate()?)))
            .map_err(anyhow::Error::from)
            .and_then(|(authority, producer)| {
                let producers = vec![producer.public_key()];
                Self::init_inner(
                    dir,
                    chain_name,
                    time_window_secs,
                    &authority,
                    &producer,
                    producers,
                )
            });
        if result.is_err() {
            let _ = fs::remove_file(dir.join("config.toml"));
            let _ = fs::remove_file(dir.join("ledger.redb"));
            let _ = fs::remove_dir_all(dir.join("keys"));
            if created_dir {
                let _ = fs::remove_dir(dir);
            }
        }
        result
    }

    /// Creates the first home of a network: its genesis names `producers` (the validators),
    /// and its block 0 is sealed by `producer`, which must be one of them. The other members'
    /// homes start from a copy of this home's ledger file.
    pub fn init_network(
        dir: &Path,
        chain_name: &str,
        time_window_secs: u64,
        authority: &SigningKey,
        producer: &SigningKey,
        producers: Vec<weft_core::PublicKey>,
    ) -> Result<(Home, Ledger<RedbStore>)> {
        if dir.join("ledger.redb").exists() {
            bail!("{} already holds a weft ledger", dir.display());
        }
        weft_ledger::files::create_private_dir_all(dir)
            .with_context(|| format!("cannot create home directory {}", dir.display()))?;
        Self::init_inner(
            dir,
            chain_name,
            time_window_secs,
            authority,
            producer,
            producers,
        )
    }

    fn init_inner(
        dir: &Path,
        chain_name: &str,
        time_window_secs: u64,
        authority: &SigningKey,
        producer: &SigningKey,
        producers: Vec<weft_core::PublicKey>,
    ) -> Result<(Home, Ledger<RedbStore>)> {
        let home = Home {
            dir: dir.to_path_buf(),
        };
        fs::create_dir(home.keys_dir())
            .with_context(|| format!("cannot create {}", home.keys_dir().display()))?;
        fs::set_permissions(
            home.keys_dir(),
            fs::Permissions::from_mode(weft_ledger::files::DIR_MODE),
        )?;
        write_key(&home.keys_dir().join("authority.key"), authority)?;
        write_key(&home.keys_dir().join("producer.key"), producer)?;
        let genesis = weft_core::model::Genesis {
            chain_name: chain_name.to_string(),
            authorities: vec![authority.public_key()],
            producers,
            time_window_ms: time_window_secs * 1000,
        };
        let chain_id = weft_core::ChainId::from_name(chain_name)?;
        let now = now_ms();
        let genesis_tx = weft_ledger::Transaction::sign(
            chain_id,
            now,
            weft_ledger::Signer::Authority,
            authority,
            weft_core::model::Payload::Genesis(genesis),
        )?;
        let store = RedbStore::open(&home.db_path())?;
        let ledger = Ledger::create(store, genesis_tx, producer, now)?;
        crate::trust::pin(dir, &ledger.trust_root()?)?;
        let config_text = weft_node::NodeConfig::default_toml();
        let config_path = dir.join("config.toml");
        let temporary = dir.join("config.toml.tmp");
        fs::write(&temporary, config_text)?;
        fs::rename(&temporary, &config_path)?;
        Ok((home, ledger))
    }

    /// Opens an existing home.
    pub fn open(dir: &Path) -> Result<Home> {
        let config_path = dir.join("config.toml");
        if !dir.exists() {
            bail!(
                "no weft ledger at {}: run `weft init --home {}` first",
                dir.display(),
                dir.display()
            );
        }
        if !dir.is_dir() {
            bail!(
                "{} is a file, not a directory: not a weft ledger home",
                dir.display()
            );
        }
        let text = match fs::read_to_string(&config_path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "{} is not a weft ledger home (no config.toml): run `weft init --home {}` first",
                    dir.display(),
                    dir.display()
                )
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot read {}", config_path.display()));
            }
        };
        weft_node::NodeConfig::parse(&text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", config_path.display()))?;
        let home = Home {
            dir: dir.to_path_buf(),
        };
        home.tighten();
        Ok(home)
    }

    /// Takes group and other permissions off the home's ledger files and directories (the
    /// module's list, secrets aside: they are refused instead). Homes made by an earlier weft
    /// have them readable by everyone; each one changed is named on standard error, and one
    /// that cannot be changed (another user's home) is only named.
    fn tighten(&self) {
        const LEDGER_FILES: [&str; 7] = [
            "ledger.redb",
            "queue.log",
            "node.addr",
            "evidence.jsonl",
            "network",
            "network/addresses.redb",
            "keys",
        ];
        for name in LEDGER_FILES {
            let path = self.dir.join(name);
            match weft_ledger::files::restrict(&path) {
                Ok(None) => {}
                Ok(Some(mode)) => eprintln!(
                    "weft: {} was open to other users (mode {mode:03o}); made it {:03o}",
                    path.display(),
                    mode & 0o700
                ),
                Err(error) => eprintln!(
                    "weft: {} is open to other users and cannot be made private: {error}",
                    path.display()
                ),
            }
        }
    }

    /// The node settings of `config.toml`.
    pub fn config(&self) -> Result<weft_node::NodeConfig> {
        let path = self.dir.join("config.toml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        weft_node::NodeConfig::parse(&text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The home's ledger, opened for this process alone. While a node runs on the home it holds
    /// the ledger: the error then says where the node serves, and what to do instead.
    pub fn ledger(&self) -> Result<Ledger<RedbStore>> {
        let store = match RedbStore::open(&self.db_path()) {
            Ok(store) => store,
            Err(error) => {
                let serving = fs::read_to_string(self.dir.join("node.addr"))
                    .ok()
                    .and_then(|text| text.lines().next().map(str::trim).map(str::to_string))
                    .filter(|address| !address.is_empty());
                return Err(match serving {
                    Some(address) if error.to_string().contains("in use") => anyhow::anyhow!(
                        "{error}: a node runs on this home, its API at {address} ({}); this \
                         command reads the ledger file itself, so stop the node (SIGTERM) \
                         first, or ask the node instead (--node URL)",
                        self.dir.join("node.addr").display()
                    ),
                    _ => error.into(),
                });
            }
        };
        let ledger = Ledger::open(store)?;
        // The home's own chain is one its user trusts: pin it once.
        let root = ledger.trust_root()?;
        if !crate::trust::file_of(&self.dir, &root).exists() {
            crate::trust::pin(&self.dir, &root)?;
        }
        Ok(ledger)
    }

    /// Pins the home's own trust root if no root is pinned yet (a home made by an earlier
    /// weft): opens the ledger once, so call it before a node holds it.
    pub fn ensure_trust(&self) -> Result<()> {
        if crate::trust::pinned(&self.dir)?.is_empty() {
            drop(self.ledger()?);
        }
        Ok(())
    }

    pub fn authority_key(&self) -> Result<SigningKey> {
        read_key(&self.keys_dir().join("authority.key"))
    }

    pub fn producer_key(&self) -> Result<SigningKey> {
        read_key(&self.keys_dir().join("producer.key"))
    }

    pub fn resource_key(&self, id: &ResourceId) -> Result<SigningKey> {
        let path = self.resource_key_path(id);
        if !path.exists() {
            bail!(
                "no key for resource {id} in {}: this home cannot sign for it",
                self.keys_dir().display()
            );
        }
        read_key(&path)
    }
}

/// A full resource id, or the unique registered resource whose id starts with a hex prefix (at
/// least 6 digits), the ids with the prefix found by `candidates` (the home's ledger, or a node).
pub fn resolve_with(
    input: &str,
    role: &str,
    candidates: impl FnOnce(&str) -> Result<Vec<ResourceId>>,
) -> Result<ResourceId> {
    resolve_id(
        input,
        role,
        ["resource", "registered resource", "resources"],
        |hex| Ok(ResourceId::from_hex(hex)?),
        candidates,
    )
}

/// A transaction id: 64 hex digits, or a unique prefix of at least 6 of a transaction on the
/// chain, found by `candidates` (the home's ledger, or a node).
pub fn resolve_tx_with(
    input: &str,
    role: &str,
    candidates: impl FnOnce(&str) -> Result<Vec<weft_core::TxId>>,
) -> Result<weft_core::TxId> {
    resolve_id(
        input,
        role,
        ["transaction", "transaction on the chain", "transactions"],
        |hex| Ok(weft_core::TxId::from_hex(hex)?),
        candidates,
    )
}

/// An id of 64 hex digits, or the one id that starts with a prefix of at least 6; `names` are
/// the kind of id, what holds one, and the plural, for the messages.
fn resolve_id<T: Copy>(
    input: &str,
    role: &str,
    [kind, holder, plural]: [&str; 3],
    parse: impl FnOnce(&str) -> Result<T>,
    candidates: impl FnOnce(&str) -> Result<Vec<T>>,
) -> Result<T> {
    let input = input.trim().to_ascii_lowercase();
    if input.len() == 64 {
        return parse(&input).with_context(|| role.to_string());
    }
    if !weft_node::query::is_id_prefix(&input) {
        bail!(
            "{role} {input:?} is not a {kind} id (64 hex digits, or a unique prefix of at least 6)"
        );
    }
    match candidates(&input)?.as_slice() {
        [] => bail!("{role} {input}: no {holder} has this id"),
        [one] => Ok(*one),
        many => bail!(
            "{role} {input} is ambiguous: {} {plural} start with it; give more digits",
            many.len()
        ),
    }
}
