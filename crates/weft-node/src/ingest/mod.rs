//! Directory ingest (docs/ingest.md): files that appear in a watched directory become signed
//! transactions from the node's identity — a `Record` with the file as body, or an ownership
//! claim of its fingerprint — and then move to `done/`, or to `failed/` with a `.error` file
//! saying why.
//!
//! Exactly once, whatever moment the node is killed at. Each round:
//! 1. the matching files are renamed into `.weft-ingest/` (the work directory: a rename is
//!    atomic, so a file is either waiting or claimed);
//! 2. their transactions are signed and written, name and transaction per line, to
//!    `.weft-ingest/journal`, which is synced before anything is submitted;
//! 3. the transactions are submitted to the block producer, which answers after the commit;
//! 4. committed files move to `done/` (and a line to `done/ingested.tsv`), refused ones to
//!    `failed/` with a `.error` file; then the journal is removed.
//!
//! On start, a journal left by a killed node is settled against the ledger: a file whose
//! transaction is on the ledger moves to `done/`; any other file in the work directory is
//! signed afresh in the next round (nothing else can commit it meanwhile: the node was down).

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weft_core::model::{
    DataType, DigitalAsset, File, MAX_RECORD_BODY, Payload, Record, RecordOwnership,
};
use weft_core::{ChainId, Fingerprinter, HashAlgo, ResourceId, SigningKey, TxId};
use weft_ledger::store::Store;
use weft_ledger::{Signer, Transaction};

use crate::config::{IngestAction, WatchSource};
use crate::metrics::Metrics;
use crate::producer::{SharedLedger, Submission, TxResult, now_ms};

const WORK: &str = ".weft-ingest";
/// In done/: one line per recorded file.
const LOG: &str = "ingested.tsv";
/// In the watched directory: a hidden name, which no pattern takes.
const JOURNAL: &str = ".weft-ingest.journal";

/// Everything one directory's ingest thread needs.
pub(crate) struct Watcher {
    pub source: WatchSource,
    pub pattern: glob::Pattern,
    pub identity: ResourceId,
    pub key: Arc<SigningKey>,
    pub chain_id: ChainId,
    pub poll: Duration,
    pub batch: usize,
    pub min_age: Duration,
    pub queue: SyncSender<Submission>,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
}

/// The directories of one watched directory.
struct Dirs {
    watched: PathBuf,
    work: PathBuf,
    done: PathBuf,
    failed: PathBuf,
}

impl Dirs {
    fn of(watched: &Path) -> Result<Dirs> {
        let dirs = Dirs {
            watched: watched.to_path_buf(),
            work: watched.join(WORK),
            done: watched.join("done"),
            failed: watched.join("failed"),
        };
        if !watched.is_dir() {
            bail!(
                "the watched directory {} does not exist (ingest.watch.dir / --watch)",
                watched.display()
            );
        }
        for dir in [&dirs.work, &dirs.done, &dirs.failed] {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(dirs)
    }
}

/// Checks a watched directory and settles what a killed node left in it; run before the
/// node serves, so a bad directory stops the start with a clear message.
pub(crate) fn prepare(source: &WatchSource, ledger: &SharedLedger) -> Result<()> {
    let dirs = Dirs::of(&source.dir)?;
    settle_journal(&dirs, ledger)
}

impl Watcher {
    /// Scans the directory every `poll` until `stop`; the round in hand is finished first.
    pub fn run(self) {
        let dirs = match Dirs::of(&self.source.dir) {
            Ok(dirs) => dirs,
            Err(error) => {
                tracing::error!(%error, "directory ingest stopped");
                return;
            }
        };
        while !self.stop.load(Ordering::Relaxed) {
            match self.round(&dirs) {
                Ok(0) => std::thread::sleep(self.poll),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(dir = %dirs.watched.display(), error = %format!("{error:#}"), "ingest round failed; retrying");
                    std::thread::sleep(self.poll.max(Duration::from_millis(500)));
                }
            }
        }
    }

    /// One round: claims up to `batch` files, commits them, moves them. Returns how many.
    fn round(&self, dirs: &Dirs) -> Result<usize> {
        // Files claimed earlier and not journaled (a crash between claim and journal, or a
        // settled journal whose transactions never committed) go first.
        let mut names = matching(&dirs.work, Duration::ZERO, |_| true)?;
        let waiting = matching(&dirs.watched, self.min_age, |name| {
            self.pattern.matches(name)
        })?;
        self.metrics
            .ingest_backlog
            .set(i64::try_from(waiting.len() + names.len()).unwrap_or(i64::MAX));
        for name in waiting {
            if names.len() >= self.batch {
                break;
            }
            match fs::rename(dirs.watched.join(&name), dirs.work.join(&name)) {
                Ok(()) => names.push(name),
                // Gone meanwhile (another process took it): not ours.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot claim {name}"));
                }
            }
        }
        names.truncate(self.batch);
        if names.is_empty() {
            return Ok(0);
        }
        // Sign every file's transaction; a file that cannot become one fails at once.
        let mut signed: Vec<(String, Transaction)> = Vec::with_capacity(names.len());
        for name in names {
            match self.transaction(&dirs.work.join(&name), &name) {
                Ok(tx) => signed.push((name, tx)),
                Err(error) => fail(dirs, &self.metrics, &name, &format!("{error:#}"))?,
            }
        }
        if signed.is_empty() {
            return Ok(1);
        }
        write_journal(dirs, &signed)?;
        let count = signed.len();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let (names, transactions): (Vec<String>, Vec<Transaction>) = signed.into_iter().unzip();
        self.metrics
            .pending
            .inc_by(i64::try_from(count).unwrap_or(i64::MAX));
        self.queue
            .send(Submission {
                transactions,
                received: Instant::now(),
                reply,
            })
            .context("the block producer has stopped")?;
        let results = answer
            .blocking_recv()
            .context("the block producer stopped before answering")?;
        // The lines of done/ingested.tsv are written before the files move, so a crash between
        // leaves a line too many (settled by its transaction id), never one too few.
        let mut log = String::new();
        let mut moves = Vec::new();
        let mut planned = HashSet::new();
        for (name, result) in names.iter().zip(&results) {
            match result {
                TxResult::Committed { id, position } => {
                    let target = free_name(&dirs.done, name, &planned);
                    log.push_str(&log_line(id, *position, &target));
                    planned.insert(target.clone());
                    moves.push((dirs.work.join(name), target));
                    self.metrics.ingested.inc();
                }
                TxResult::Rejected { error, .. } => {
                    fail(
                        dirs,
                        &self.metrics,
                        name,
                        &format!("refused by rule {}: {error}", error.rule()),
                    )?;
                }
                // Not committed for a reason of the node's: the file stays claimed and is
                // tried again in the next round.
                TxResult::Failed { message, .. } => {
                    tracing::warn!(file = %name, %message, "not committed; will retry");
                }
            }
        }
        append(&dirs.done.join(LOG), &log)?;
        for (source, target) in moves {
            fs::rename(&source, &target).with_context(|| {
                format!("cannot move {} to {}", source.display(), target.display())
            })?;
        }
        remove_journal(dirs)?;
        Ok(count)
    }

    fn transaction(&self, path: &Path, name: &str) -> Result<Transaction> {
        let payload = match self.source.action {
            IngestAction::Record => {
                let size = fs::metadata(path)?.len();
                if size > MAX_RECORD_BODY as u64 {
                    bail!(
                        "{name} is {size} bytes; a record body is at most {MAX_RECORD_BODY} \
                         bytes (set action = \"claim\" to record large files by fingerprint)"
                    );
                }
                Payload::Record(Record {
                    issuer: self.identity,
                    content_type: self.source.content_type.clone(),
                    product_code: None,
                    body: fs::read(path).with_context(|| format!("cannot read {name}"))?,
                })
            }
            IngestAction::Claim => {
                let mut file =
                    fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
                let mut fingerprinter = Fingerprinter::new(HashAlgo::Sha256);
                let mut buffer = vec![0u8; 1 << 16];
                loop {
                    let read = file.read(&mut buffer)?;
                    if read == 0 {
                        break;
                    }
                    fingerprinter.update(&buffer[..read]);
                }
                Payload::RecordOwnership(RecordOwnership {
                    issuer: self.identity,
                    product_data: DigitalAsset {
                        fingerprint: fingerprinter.finish(),
                        public: false,
                        doi: None,
                        doi_no_redirect: None,
                        file: File {
                            id: name.chars().take(256).collect(),
                            version_ids: vec!["1".into()],
                            descriptions: vec![],
                        },
                        data_type: DataType::Geometry3d,
                    },
                })
            }
        };
        sign_as(self.chain_id, self.identity, &self.key, payload)
            .map_err(|error| anyhow::anyhow!("{name} cannot become a transaction: {error}"))
    }
}

/// `payload` signed by the node's ingest identity at the node's current time.
pub(crate) fn sign_as(
    chain_id: weft_core::ChainId,
    identity: ResourceId,
    key: &SigningKey,
    payload: Payload,
) -> Result<Transaction, weft_core::CoreError> {
    Transaction::sign(chain_id, now_ms(), Signer::Resource(identity), key, payload)
}

/// Regular files in `dir` unmodified for `min_age` whose names pass `keep`, never hidden
/// ones, sorted.
fn matching(dir: &Path, min_age: Duration, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let now = std::time::SystemTime::now();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if !min_age.is_zero() {
            let modified = entry.metadata()?.modified()?;
            if now.duration_since(modified).unwrap_or_default() < min_age {
                continue;
            }
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.starts_with('.') && keep(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Writes and syncs the journal: name, tab, transaction (hex), per line.
fn write_journal(dirs: &Dirs, signed: &[(String, Transaction)]) -> Result<()> {
    let mut text = String::new();
    for (name, tx) in signed {
        text.push_str(name);
        text.push('\t');
        text.push_str(&hex::encode(weft_core::encoding::encode(tx)));
        text.push('\n');
    }
    let temporary = dirs.watched.join(format!("{JOURNAL}.tmp"));
    let mut file = fs::File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, dirs.watched.join(JOURNAL))?;
    // The claims (renames into the work directory) and the journal are durable before any
    // transaction is submitted.
    sync_dir(&dirs.work)?;
    sync_dir(&dirs.watched)
}

fn remove_journal(dirs: &Dirs) -> Result<()> {
    match fs::remove_file(dirs.watched.join(JOURNAL)) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).context("cannot remove the ingest journal"),
    }
}

/// Settles a journal a killed node left: files whose transaction committed move to `done/`.
fn settle_journal(dirs: &Dirs, ledger: &SharedLedger) -> Result<()> {
    let path = dirs.watched.join(JOURNAL);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let logged: HashSet<String> = fs::read_to_string(dirs.done.join(LOG))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split('\t').next().map(str::to_string))
        .collect();
    let mut settled = 0usize;
    for line in text.lines() {
        let Some((name, encoded)) = line.split_once('\t') else {
            continue;
        };
        let source = dirs.work.join(name);
        if !source.exists() {
            // Moved before the crash, after its line was written.
            continue;
        }
        let Ok(bytes) = hex::decode(encoded) else {
            continue;
        };
        let Ok(tx) = weft_core::encoding::decode::<Transaction>(&bytes) else {
            continue;
        };
        let id: TxId = tx.id();
        let position = {
            let ledger = match ledger.lock() {
                Ok(ledger) => ledger,
                Err(poisoned) => poisoned.into_inner(),
            };
            ledger.store().tx(&id)?.map(|(_, position)| position)
        };
        if let Some(position) = position {
            let target = free_name(&dirs.done, name, &HashSet::new());
            if !logged.contains(&id.to_hex()) {
                append(&dirs.done.join(LOG), &log_line(&id, position, &target))?;
            }
            fs::rename(&source, &target).with_context(|| {
                format!("cannot move {} to {}", source.display(), target.display())
            })?;
            settled += 1;
        }
    }
    remove_journal(dirs)?;
    tracing::info!(dir = %dirs.watched.display(), settled, "settled the ingest journal of the last run");
    Ok(())
}

/// `dir/name`, or `dir/name.N` if that is taken (on disk or by `planned` moves).
fn free_name(dir: &Path, name: &str, planned: &HashSet<PathBuf>) -> PathBuf {
    let taken = |path: &Path| planned.contains(path) || path.exists();
    let mut target = dir.join(name);
    let mut n = 1u32;
    while taken(&target) {
        target = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    target
}

/// A line of done/ingested.tsv: transaction id, height, index, file name in done/.
fn log_line(id: &TxId, position: weft_ledger::state::Position, target: &Path) -> String {
    format!(
        "{id}\t{}\t{}\t{}\n",
        position.height,
        position.index,
        target
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
    )
}

/// Moves a claimed file to `failed/` with a `.error` file saying why.
fn fail(dirs: &Dirs, metrics: &Metrics, name: &str, reason: &str) -> Result<()> {
    // The reason is written first, so a failed file never lacks its `.error`.
    let target = free_name(&dirs.failed, name, &HashSet::new());
    let mut error_path = target.clone().into_os_string();
    error_path.push(".error");
    fs::write(&error_path, format!("{reason}\n"))
        .with_context(|| format!("cannot write {}", PathBuf::from(&error_path).display()))?;
    let source = dirs.work.join(name);
    fs::rename(&source, &target)
        .with_context(|| format!("cannot move {} to {}", source.display(), target.display()))?;
    tracing::warn!(file = %name, %reason, "ingest refused a file");
    metrics.ingest_failed.inc();
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}
