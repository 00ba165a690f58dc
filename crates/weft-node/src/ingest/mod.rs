//! Directory ingest (docs/ingest.md): files that appear in a watched directory become signed
//! transactions from the node's identity — a `Record` with the file as body, or an ownership
//! claim of its fingerprint — and then move to `done/`, or to `failed/` with a `.error` file
//! saying why.
//!
//! Exactly once, whatever moment the node is killed at. Each round:
//! 1. the matching files are renamed into `.weft-ingest/` (the work directory: a rename is
//!    atomic, so a file is either waiting or claimed);
//! 2. each is read, and read again if it changed while it was read or within `min_age` before
//!    (it stays claimed for the next round); their transactions are signed and written, name and
//!    transaction per line, to `.weft-ingest/.journal`, which is synced before anything is
//!    submitted;
//! 3. the transactions are submitted to the block producer, which answers after the commit;
//! 4. committed files move to `done/` (and a line to `done/ingested.tsv`) if they are still
//!    the bytes that were recorded, refused ones and changed ones to `failed/` with a `.error`
//!    file; then the journal is removed.
//!
//! A watched directory may be writable by other users: every file below it is reached through
//! directory handles that follow no link (`dirs.rs`), file names with control characters are
//! refused, and `done/`, `failed/`, `.weft-ingest/` must be the node's own directories.
//!
//! On start, a journal left by a killed node is settled against the ledger: a file whose
//! transaction is on the ledger moves to `done/`; any other file in the work directory is
//! signed afresh in the next round (nothing else can commit it meanwhile: the node was down).

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
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
use crate::submission::{SharedLedger, Submission, TxResult, now_ms};

mod dirs;

use dirs::{Dirs, Version};

/// In done/: one line per recorded file.
const LOG: &str = "ingested.tsv";
/// In the work directory: hidden, so it is never taken for a claimed file.
const JOURNAL: &str = ".journal";
/// Where a node before this version kept the journal: in the watched directory itself.
const OLD_JOURNAL: &str = ".weft-ingest.journal";

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
    pub ledger: SharedLedger,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
}

/// Checks a watched directory and settles what a killed node left in it; run before the
/// node serves, so a missing directory stops the start with a clear message. A directory the
/// node must not write into is reported, and settled by the watcher once it is safe.
pub(crate) fn prepare(
    source: &WatchSource,
    ledger: &SharedLedger,
    metrics: &Metrics,
) -> Result<()> {
    match open_dirs(&source.dir)? {
        Ok(dirs) => settle_journal(&dirs, ledger, metrics),
        Err(refused) => {
            metrics.ingest_unsafe.inc();
            tracing::error!(dir = %source.dir.display(), reason = %refused, "directory ingest will not write here until this is mended");
            Ok(())
        }
    }
}

fn open_dirs(watched: &Path) -> Result<Result<Dirs, dirs::Unsafe>> {
    if !watched.is_dir() {
        bail!(
            "the watched directory {} does not exist (ingest.watch.dir / --watch)",
            watched.display()
        );
    }
    Dirs::open(watched).with_context(|| format!("cannot open {}", watched.display()))
}

/// What became of one claimed file this round.
enum Prepared {
    /// Its transaction, and the state of the file it was made from.
    Signed(Box<Transaction>, Version),
    /// It changed while it was read, or too recently: it stays claimed for the next round.
    Later,
    /// It cannot be recorded: the reason, for `failed/`.
    Refused(String),
}

impl Watcher {
    /// Scans the directory every `poll` until `stop`; the round in hand is finished first.
    /// The directories are opened and checked afresh every round: one found unsafe is
    /// skipped (logged once, counted every round) until it is mended.
    pub fn run(self) {
        let mut settled = false;
        let mut problem: Option<String> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let dirs = match open_dirs(&self.source.dir) {
                Ok(Ok(dirs)) => {
                    if problem.take().is_some() {
                        tracing::info!(dir = %self.source.dir.display(), "directory ingest resumes");
                    }
                    dirs
                }
                Ok(Err(refused)) => {
                    self.metrics.ingest_unsafe.inc();
                    self.skip(&mut problem, refused.to_string());
                    continue;
                }
                Err(error) => {
                    self.skip(&mut problem, format!("{error:#}"));
                    continue;
                }
            };
            // A journal the node could not settle at start (its directory was unsafe then) is
            // settled before any new round, as at start.
            if !settled {
                if let Err(error) = settle_journal(&dirs, &self.ledger, &self.metrics) {
                    self.skip(&mut problem, format!("{error:#}"));
                    continue;
                }
                settled = true;
            }
            match self.round(&dirs) {
                Ok(0) => std::thread::sleep(self.poll),
                Ok(_) => {}
                Err(error) => {
                    // The round may have failed after its block committed: its journal is
                    // settled before anything is signed again, or committed files would be
                    // recorded twice.
                    settled = false;
                    tracing::error!(dir = %dirs.watched_path.display(), error = %format!("{error:#}"), "ingest round failed; retrying");
                    std::thread::sleep(self.poll.max(Duration::from_millis(500)));
                }
            }
        }
    }

    /// Logs why this round is skipped, once until the reason changes, and waits.
    fn skip(&self, problem: &mut Option<String>, reason: String) {
        if problem.as_deref() != Some(reason.as_str()) {
            tracing::error!(dir = %self.source.dir.display(), %reason, "directory ingest skips this directory");
            *problem = Some(reason);
        }
        std::thread::sleep(self.poll.max(Duration::from_millis(500)));
    }

    /// One round: claims up to `batch` files, commits them, moves them. Returns how many files
    /// reached `done/` or `failed/`.
    fn round(&self, dirs: &Dirs) -> Result<usize> {
        // Files claimed earlier and not journaled (a crash between claim and journal, a settled
        // journal whose transactions never committed, or a file that was still changing) go
        // first.
        let mut names =
            dirs::regular_files(&dirs.work).context("cannot list the work directory")?;
        // Files still claimed (one that keeps changing stays so) take at most half a round, so
        // they cannot keep new files from being taken.
        names.truncate((self.batch / 2).max(1));
        let room = self.batch.saturating_sub(names.len());
        let now = now_ms();
        let min_age = u64::try_from(self.min_age.as_millis()).unwrap_or(u64::MAX);
        let mut waiting = Vec::new();
        for name in dirs::regular_files(dirs.watched())
            .with_context(|| format!("cannot list {}", dirs.watched_path.display()))?
        {
            if !self.pattern.matches(&name) {
                continue;
            }
            if min_age > 0 {
                match dirs::version(dirs.watched(), &name)? {
                    Some((version, _)) if now.saturating_sub(version.modified_ms()) >= min_age => {}
                    _ => continue,
                }
            }
            waiting.push(name);
        }
        self.metrics
            .ingest_backlog
            .set(i64::try_from(waiting.len() + names.len()).unwrap_or(i64::MAX));
        for name in waiting.into_iter().take(room) {
            match dirs::rename(dirs.watched(), &name, &dirs.work, &name) {
                Ok(()) => names.push(name),
                // Gone meanwhile (another process took it): not ours.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot claim {name}"));
                }
            }
        }
        if names.is_empty() {
            return Ok(0);
        }
        // Sign every file's transaction; a file that cannot become one fails at once.
        let mut finished = 0;
        let mut signed: Vec<(String, Transaction, Version)> = Vec::with_capacity(names.len());
        for name in names {
            match self.prepare_file(dirs, &name) {
                Prepared::Signed(tx, version) => signed.push((name, *tx, version)),
                Prepared::Later => {}
                Prepared::Refused(reason) => {
                    fail(dirs, &self.metrics, &name, &reason)?;
                    finished += 1;
                }
            }
        }
        if signed.is_empty() {
            return Ok(finished);
        }
        write_journal(dirs, &signed)?;
        let count = signed.len();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let mut names = Vec::with_capacity(count);
        let mut transactions = Vec::with_capacity(count);
        for (name, tx, version) in signed {
            names.push((name, version));
            transactions.push(tx);
        }
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
        for ((name, read), result) in names.iter().zip(&results) {
            match result {
                TxResult::Committed { id, position } => {
                    // The file in done/ must be the bytes on the ledger: one that changed after
                    // it was read (its writer still had it open) goes to failed/ instead.
                    let now = dirs::version(&dirs.work, name)?.map(|(version, _)| version);
                    if now != Some(*read) {
                        let reason = changed_after_recording(id);
                        self.metrics.ingested.inc();
                        if now.is_some() {
                            fail(dirs, &self.metrics, name, &reason)?;
                        }
                        continue;
                    }
                    let target = dirs::free_name(&dirs.done, name, &planned)?;
                    log.push_str(&log_line(id, *position, &target));
                    planned.insert(target.clone());
                    moves.push((name, target));
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
                    tracing::warn!(file = %dirs::escaped(name), %message, "not committed; will retry");
                }
            }
        }
        dirs::append(&dirs.done, LOG, &log)
            .with_context(|| format!("cannot write {}", dirs.shown("done", LOG).display()))?;
        for (name, target) in moves {
            dirs::rename(&dirs.work, name, &dirs.done, &target).with_context(|| {
                format!(
                    "cannot move {} to {}",
                    dirs.shown(dirs::WORK, name).display(),
                    dirs.shown("done", &target).display()
                )
            })?;
        }
        remove_journal(dirs)?;
        Ok(finished + count)
    }

    /// Reads a claimed file and signs its transaction, if it is a file that may be recorded
    /// and it held still while it was read.
    fn prepare_file(&self, dirs: &Dirs, name: &str) -> Prepared {
        if let Some(reason) = dirs::unusable_name(name) {
            return Prepared::Refused(reason);
        }
        let (mut file, before) = match dirs::open_regular(&dirs.work, name) {
            Ok(opened) => opened,
            Err(reason) => return Prepared::Refused(reason),
        };
        let min_age = u64::try_from(self.min_age.as_millis()).unwrap_or(u64::MAX);
        if now_ms().saturating_sub(before.modified_ms()) < min_age {
            return Prepared::Later;
        }
        let payload = match self.source.action {
            IngestAction::Record => {
                if before.size() > MAX_RECORD_BODY as u64 {
                    return Prepared::Refused(format!(
                        "it is {} bytes; a record body is at most {MAX_RECORD_BODY} bytes (set action = \
                         \"claim\" to record large files by fingerprint)",
                        before.size()
                    ));
                }
                let mut body = Vec::with_capacity(before.size() as usize);
                if let Err(error) = (&mut file)
                    .take(MAX_RECORD_BODY as u64 + 1)
                    .read_to_end(&mut body)
                {
                    return Prepared::Refused(format!("cannot read it: {error}"));
                }
                if body.len() as u64 != before.size() {
                    return Prepared::Later;
                }
                Payload::Record(Record {
                    issuer: self.identity,
                    content_type: self.source.content_type.clone(),
                    product_code: None,
                    body,
                })
            }
            IngestAction::Claim => {
                let mut fingerprinter = Fingerprinter::new(HashAlgo::Sha256);
                let mut buffer = vec![0u8; 1 << 16];
                let mut read_bytes = 0u64;
                loop {
                    match file.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(read) => {
                            fingerprinter.update(&buffer[..read]);
                            read_bytes += read as u64;
                        }
                        Err(error) => return Prepared::Refused(format!("cannot read it: {error}")),
                    }
                }
                if read_bytes != before.size() {
                    return Prepared::Later;
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
        // What was read is the file only if nothing wrote to it meanwhile.
        match rustix::fs::fstat(&file) {
            Ok(stat) if Version::of(&stat) == before => {}
            Ok(_) => return Prepared::Later,
            Err(error) => return Prepared::Refused(format!("cannot read it: {error}")),
        }
        match sign_as(self.chain_id, self.identity, &self.key, payload) {
            Ok(tx) => Prepared::Signed(Box::new(tx), before),
            Err(error) => Prepared::Refused(format!("it cannot become a transaction: {error}")),
        }
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

/// Writes and syncs the journal: name, tab, transaction (hex), per line. The names were
/// checked to hold no control character, so a line is always one file.
fn write_journal(dirs: &Dirs, signed: &[(String, Transaction, Version)]) -> Result<()> {
    let mut text = String::new();
    for (name, tx, _) in signed {
        text.push_str(name);
        text.push('\t');
        text.push_str(&hex::encode(weft_core::encoding::encode(tx)));
        text.push('\n');
    }
    let temporary = format!("{JOURNAL}.tmp");
    dirs::remove(&dirs.work, &temporary)?;
    dirs::create_new(&dirs.work, &temporary, text.as_bytes(), true).with_context(|| {
        format!(
            "cannot write {}",
            dirs.shown(dirs::WORK, &temporary).display()
        )
    })?;
    dirs::rename(&dirs.work, &temporary, &dirs.work, JOURNAL)?;
    // The claims (renames into the work directory) and the journal are durable before any
    // transaction is submitted.
    dirs::sync(&dirs.work).context("cannot sync the work directory")?;
    dirs::sync(dirs.watched()).context("cannot sync the watched directory")
}

fn remove_journal(dirs: &Dirs) -> Result<()> {
    dirs::remove(&dirs.work, JOURNAL).context("cannot remove the ingest journal")
}

/// Settles a journal a killed node left: files whose transaction committed move to `done/`
/// (or to `failed/`, if the file is no longer what was recorded).
fn settle_journal(dirs: &Dirs, ledger: &SharedLedger, metrics: &Metrics) -> Result<()> {
    let mut settled = 0usize;
    let mut found = false;
    // A journal left by an older node lies in the watched directory; it is read only if it is
    // a regular file of the node's user (checked on the opened file).
    let old = dirs::read_own_text(dirs.watched(), OLD_JOURNAL)?;
    let current = dirs::read_text(&dirs.work, JOURNAL)?;
    for text in [old, current].into_iter().flatten() {
        found = true;
        settled += settle_lines(dirs, ledger, metrics, &text)?;
    }
    if !found {
        return Ok(());
    }
    remove_journal(dirs)?;
    dirs::remove(dirs.watched(), OLD_JOURNAL)?;
    tracing::info!(dir = %dirs.watched_path.display(), settled, "settled the ingest journal of the last run");
    Ok(())
}

fn settle_lines(
    dirs: &Dirs,
    ledger: &SharedLedger,
    metrics: &Metrics,
    text: &str,
) -> Result<usize> {
    let logged: HashSet<String> = dirs::read_text(&dirs.done, LOG)?
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split('\t').next().map(str::to_string))
        .collect();
    let mut settled = 0;
    for line in text.lines() {
        let Some((name, encoded)) = line.split_once('\t') else {
            continue;
        };
        if dirs::unusable_name(name).is_some() || name.contains('/') || name.starts_with('.') {
            continue;
        }
        if dirs::version(&dirs.work, name)?.is_none() {
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
        let Some(position) = position else {
            continue;
        };
        settled += 1;
        if !still_recorded(dirs, name, &tx) {
            fail(dirs, metrics, name, &changed_after_recording(&id))?;
            continue;
        }
        let target = dirs::free_name(&dirs.done, name, &HashSet::new())?;
        if !logged.contains(&id.to_hex()) {
            dirs::append(&dirs.done, LOG, &log_line(&id, position, &target))?;
        }
        dirs::rename(&dirs.work, name, &dirs.done, &target).with_context(|| {
            format!(
                "cannot move {} to done/{target}",
                dirs.shown(dirs::WORK, name).display()
            )
        })?;
    }
    Ok(settled)
}

/// Is the claimed file `name` still what `tx` recorded (the body of a record, the fingerprint
/// of a claim)? A file that cannot be read is not.
fn still_recorded(dirs: &Dirs, name: &str, tx: &Transaction) -> bool {
    let Ok((mut file, _)) = dirs::open_regular(&dirs.work, name) else {
        return false;
    };
    match &tx.payload {
        Some(Payload::Record(record)) => {
            let mut body = Vec::with_capacity(record.body.len());
            (&mut file)
                .take(MAX_RECORD_BODY as u64 + 1)
                .read_to_end(&mut body)
                .is_ok_and(|_| body == record.body)
        }
        Some(Payload::RecordOwnership(claim)) => {
            let fingerprint = &claim.product_data.fingerprint;
            let mut fingerprinter = Fingerprinter::new(fingerprint.algo);
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => fingerprinter.update(&buffer[..read]),
                    Err(_) => return false,
                }
            }
            &fingerprinter.finish() == fingerprint
        }
        _ => false,
    }
}

/// The reason in `failed/` of a file that changed after its transaction committed.
fn changed_after_recording(id: &TxId) -> String {
    format!(
        "it changed after it was recorded as transaction {id}: the ledger holds that record, and \
         this is the file as it is now; move it back into the watched directory to record it \
         again, and let writers finish a file before it is taken (ingest.min_age_ms, or write \
         it under a hidden name and rename it)"
    )
}

/// A line of done/ingested.tsv: transaction id, height, index, file name in done/.
fn log_line(id: &TxId, position: weft_ledger::state::Position, target: &str) -> String {
    format!("{id}\t{}\t{}\t{target}\n", position.height, position.index)
}

/// Moves a claimed file to `failed/` with a `.error` file saying why.
fn fail(dirs: &Dirs, metrics: &Metrics, name: &str, reason: &str) -> Result<()> {
    // The reason is written first, so a failed file never lacks its `.error`.
    // A name free in failed/ with its `.error` free too (one may be left behind alone).
    let mut taken = HashSet::new();
    let target = loop {
        let target = dirs::free_name(&dirs.failed, name, &taken)?;
        if dirs::version(&dirs.failed, &format!("{target}.error"))?.is_none() {
            break target;
        }
        taken.insert(target);
    };
    let error_name = format!("{target}.error");
    dirs::create_new(
        &dirs.failed,
        &error_name,
        format!("{reason}\n").as_bytes(),
        false,
    )
    .with_context(|| {
        format!(
            "cannot write {}",
            dirs.shown("failed", &dirs::escaped(&error_name)).display()
        )
    })?;
    dirs::rename(&dirs.work, name, &dirs.failed, &target).with_context(|| {
        format!(
            "cannot move {} to failed/",
            dirs.shown(dirs::WORK, &dirs::escaped(name)).display()
        )
    })?;
    tracing::warn!(file = %dirs::escaped(name), %reason, "ingest refused a file");
    metrics.ingest_failed.inc();
    Ok(())
}
