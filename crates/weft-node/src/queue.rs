//! The durable queue behind `wait=false` (docs/api.md, "Queued submissions").
//!
//! A submitter that does not want to wait for the block is answered as soon as its
//! transactions are on disk in `HOME/queue.log`, not yet in a block. One thread, the journal,
//! appends every waiting request's transactions in one write, syncs the file once for all of
//! them (group commit), answers them, and hands the transactions to the block producer. A
//! second thread, the settler, takes the producer's results in the same order and records
//! which were committed and which a rule refused, so that `GET /v1/transactions/{id}` can say
//! "queued" or name the refusal.
//!
//! At start, before the node serves, the journal is read back: every transaction in it that is
//! not on the chain is handed to the producer again, so a crash at any moment loses no queued
//! transaction. A record cut short by a crash belongs to a group that was never acknowledged
//! (its sync had not returned), and so does everything after it: the file is cut there. Once
//! every journaled transaction has settled, the journal thread empties the file before its
//! next append (when it has grown past [`EMPTY_AFTER_BYTES`]).
//!
//! Record: `len: u32 LE | check: first 8 bytes of SHA-256(tx) | tx (canonical encoding)`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use weft_core::TxId;
use weft_core::hash::Hash32;
use weft_ledger::store::Store;
use weft_ledger::{RuleError, Transaction};

use crate::metrics::Metrics;
use crate::submission::{SharedLedger, Submission, TxResult};

/// The journal is emptied, once everything in it has settled, when it is larger than this.
pub(crate) const EMPTY_AFTER_BYTES: u64 = 16 << 20;
/// Refusals remembered for `GET /v1/transactions/{id}`.
const REMEMBERED_REFUSALS: usize = 100_000;
/// Requests waiting for the journal thread before `wait=false` answers 503.
const WAITING_REQUESTS: usize = 1024;

/// What the node knows of a transaction that was queued with `wait=false`.
#[derive(Debug, Clone)]
pub(crate) enum QueuedState {
    /// On disk, not yet in a block.
    Queued,
    /// A rule refused it when its block was made.
    Refused(RuleError),
    /// Not queued in this run (or settled and committed, or long forgotten).
    Unknown,
}

/// Transactions queued and not settled, and refusals of queued ones.
#[derive(Default)]
struct Tracked {
    queued: HashSet<TxId>,
    refused: HashMap<TxId, RuleError>,
    refusal_order: VecDeque<TxId>,
}

/// The state shared by the API, the journal thread and the settler.
pub(crate) struct Tracker {
    tracked: Mutex<Tracked>,
    /// Journaled transactions whose result has not come back.
    outstanding: AtomicUsize,
    /// A result came back `Failed` (storage failure) or never came: the journal must be read
    /// back at the next start, so it is not emptied in this run.
    keep: AtomicBool,
}

impl Tracker {
    fn new() -> Self {
        Tracker {
            tracked: Mutex::new(Tracked::default()),
            outstanding: AtomicUsize::new(0),
            keep: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        match self.tracked.lock() {
            Ok(tracked) => tracked,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn state(&self, id: &TxId) -> QueuedState {
        let tracked = self.lock();
        if tracked.queued.contains(id) {
            QueuedState::Queued
        } else if let Some(error) = tracked.refused.get(id) {
            QueuedState::Refused(error.clone())
        } else {
            QueuedState::Unknown
        }
    }

    fn queue(&self, ids: &[TxId]) {
        self.outstanding.fetch_add(ids.len(), Ordering::SeqCst);
        self.lock().queued.extend(ids.iter().copied());
    }

    fn settle(&self, ids: &[TxId], results: Option<Vec<TxResult>>) {
        let mut tracked = self.lock();
        match &results {
            Some(results) => {
                for result in results {
                    match result {
                        TxResult::Committed { .. } => {}
                        TxResult::Rejected { id, error } => {
                            tracked.refused.insert(*id, error.clone());
                            tracked.refusal_order.push_back(*id);
                            if tracked.refusal_order.len() > REMEMBERED_REFUSALS
                                && let Some(oldest) = tracked.refusal_order.pop_front()
                            {
                                tracked.refused.remove(&oldest);
                            }
                        }
                        TxResult::Failed { .. } => self.keep.store(true, Ordering::SeqCst),
                    }
                }
            }
            None => self.keep.store(true, Ordering::SeqCst),
        }
        for id in ids {
            tracked.queued.remove(id);
        }
        drop(tracked);
        self.outstanding.fetch_sub(ids.len(), Ordering::SeqCst);
    }
}

/// A `wait=false` request on its way to the journal.
struct Request {
    transactions: Vec<Transaction>,
    reply: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The API's handle on the durable queue.
pub(crate) struct DurableQueue {
    requests: SyncSender<Request>,
    pub tracker: Arc<Tracker>,
}

/// Why a `wait=false` request was not queued.
pub(crate) enum NotQueued {
    /// Too many requests wait for the journal.
    Busy,
    /// The node is shutting down.
    Stopping,
    /// The journal could not be written: nothing was queued.
    Failed(String),
}

impl DurableQueue {
    /// Queues `transactions`: returns once they are durably journaled.
    pub(crate) async fn queue(&self, transactions: Vec<Transaction>) -> Result<(), NotQueued> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.requests.try_send(Request {
            transactions,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(NotQueued::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(NotQueued::Stopping),
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(NotQueued::Failed(message)),
            Err(_) => Err(NotQueued::Stopping),
        }
    }
}

/// The running queue: the API's handle and the two threads, to join at shutdown.
pub(crate) struct Started {
    pub queue: DurableQueue,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// Opens (or creates, mode 0600) the journal at `path`, hands every transaction in it that is not on the
/// chain to the producer again, and starts the journal and settler threads.
pub(crate) fn start(
    path: &Path,
    ledger: &SharedLedger,
    producer: SyncSender<Submission>,
    metrics: Arc<Metrics>,
) -> Result<Started> {
    let (records, good_len) = read_journal(path)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(weft_ledger::files::FILE_MODE)
        .open(path)
        .with_context(|| format!("cannot open the queue journal {}", path.display()))?;
    if file.metadata()?.len() != good_len {
        tracing::warn!(
            path = %path.display(),
            kept = good_len,
            "the queue journal ends in a record cut short by a crash (never acknowledged); cut"
        );
        file.set_len(good_len)?;
        file.sync_all()?;
    }
    let pending: Vec<Transaction> = {
        let ledger = match ledger.lock() {
            Ok(ledger) => ledger,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut pending = Vec::new();
        for tx in records {
            if ledger.store().tx_position(&tx.id())?.is_none() {
                pending.push(tx);
            }
        }
        pending
    };
    let tracker = Arc::new(Tracker::new());
    let (to_settler, settling) = std::sync::mpsc::channel();
    if !pending.is_empty() {
        tracing::info!(
            transactions = pending.len(),
            "handing the queued transactions of the last run to the producer again"
        );
        let ids = track(&pending, &tracker, &metrics);
        hand_over(pending, ids, &producer, &to_settler);
    }
    let (requests, incoming) = std::sync::mpsc::sync_channel(WAITING_REQUESTS);
    let journal = Journal {
        path: path.to_path_buf(),
        file,
        tracker: tracker.clone(),
        producer,
        to_settler,
        metrics,
    };
    let settler_tracker = tracker.clone();
    let threads = vec![
        std::thread::Builder::new()
            .name("queue-journal".into())
            .spawn(move || journal.run(incoming))
            .context("cannot start the queue journal thread")?,
        std::thread::Builder::new()
            .name("queue-settler".into())
            .spawn(move || settle(&settler_tracker, settling))
            .context("cannot start the queue settler thread")?,
    ];
    Ok(Started {
        queue: DurableQueue { requests, tracker },
        threads,
    })
}

/// Results to wait for: the ids of one submission and its reply.
type Settling = (Vec<TxId>, tokio::sync::oneshot::Receiver<Vec<TxResult>>);

/// Counts journaled transactions as queued (for `GET /v1/transactions/{id}` and the mempool
/// gauge): done before the submitters are answered, so nothing answered looks settled.
fn track(transactions: &[Transaction], tracker: &Tracker, metrics: &Metrics) -> Vec<TxId> {
    let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
    tracker.queue(&ids);
    metrics
        .pending
        .inc_by(i64::try_from(ids.len()).unwrap_or(i64::MAX));
    ids
}

/// Hands tracked transactions to the producer; the settler will wait for their results.
fn hand_over(
    transactions: Vec<Transaction>,
    ids: Vec<TxId>,
    producer: &SyncSender<Submission>,
    to_settler: &std::sync::mpsc::Sender<Settling>,
) {
    let (reply, results) = tokio::sync::oneshot::channel();
    // Blocks while the producer's queue is full: the journal then stops taking requests,
    // and `wait=false` answers 503 once its own queue is full too.
    let sent = producer.send(Submission {
        transactions,
        received: Instant::now(),
        reply,
    });
    if sent.is_err() {
        // The producer stopped: the transactions stay in the journal for the next start.
        tracing::warn!("the producer stopped before queued transactions reached it");
    }
    // The settler sees a closed reply as "never came" and keeps the journal.
    let _ = to_settler.send((ids, results));
}

fn settle(tracker: &Tracker, settling: Receiver<Settling>) {
    for (ids, results) in settling {
        let results = results.blocking_recv().ok();
        tracker.settle(&ids, results);
    }
}

struct Journal {
    path: PathBuf,
    file: File,
    tracker: Arc<Tracker>,
    producer: SyncSender<Submission>,
    to_settler: std::sync::mpsc::Sender<Settling>,
    metrics: Arc<Metrics>,
}

impl Journal {
    /// Until every sender of `incoming` is gone: take every waiting request, append them in
    /// one write, sync once, answer them, hand their transactions to the producer.
    fn run(mut self, incoming: Receiver<Request>) {
        while let Ok(first) = incoming.recv() {
            let mut group = vec![first];
            while let Ok(next) = incoming.try_recv() {
                group.push(next);
            }
            if let Err(error) = self.empty_if_settled() {
                tracing::error!(%error, path = %self.path.display(), "cannot empty the queue journal");
            }
            // Where the file ends before this group: a failed write is cut back to here.
            let before = self.file.metadata().map(|meta| meta.len());
            let mut bytes = Vec::new();
            for request in &group {
                for tx in &request.transactions {
                    append_record(&mut bytes, &weft_core::encoding::encode(tx));
                }
            }
            let written = self
                .file
                .write_all(&bytes)
                .and_then(|()| self.file.sync_data());
            if let Err(error) = written {
                // Nothing of this group is acknowledged. What may have reached the file is
                // cut away so the next start does not queue it behind the submitters' backs.
                tracing::error!(%error, path = %self.path.display(), "cannot write the queue journal");
                let message = format!("the node could not write its queue journal: {error}");
                self.cut_back(before);
                for request in group {
                    let _ = request.reply.send(Err(message.clone()));
                }
                continue;
            }
            let mut transactions = Vec::new();
            let mut replies = Vec::with_capacity(group.len());
            for request in group {
                transactions.extend(request.transactions);
                replies.push(request.reply);
            }
            let ids = track(&transactions, &self.tracker, &self.metrics);
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
            hand_over(transactions, ids, &self.producer, &self.to_settler);
        }
    }

    /// Empties the journal when it is large and every transaction in it has settled.
    fn empty_if_settled(&mut self) -> std::io::Result<()> {
        if self.tracker.outstanding.load(Ordering::SeqCst) != 0
            || self.tracker.keep.load(Ordering::SeqCst)
            || self.file.metadata()?.len() <= EMPTY_AFTER_BYTES
        {
            return Ok(());
        }
        self.file.set_len(0)?;
        self.file.sync_all()
    }

    fn cut_back(&mut self, to: std::io::Result<u64>) {
        let cut = to
            .and_then(|len| self.file.set_len(len))
            .and_then(|()| self.file.sync_all());
        if let Err(error) = cut {
            tracing::error!(%error, "cannot cut the failed write from the queue journal");
            self.tracker.keep.store(true, Ordering::SeqCst);
        }
    }
}

/// At a clean shutdown: empties the journal if every transaction in it has settled.
pub(crate) fn finish(path: &Path, tracker: &Tracker) {
    if tracker.outstanding.load(Ordering::SeqCst) != 0 || tracker.keep.load(Ordering::SeqCst) {
        tracing::warn!(path = %path.display(), "queued transactions remain; they go first at the next start");
        return;
    }
    let emptied = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(0).and_then(|()| file.sync_all()));
    if let Err(error) = emptied {
        tracing::error!(%error, path = %path.display(), "cannot empty the queue journal");
    }
}

fn append_record(out: &mut Vec<u8>, tx: &[u8]) {
    out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
    out.extend_from_slice(&Hash32::sha256(&[tx]).0[..8]);
    out.extend_from_slice(tx);
}

/// The transactions in the journal at `path`, and the length of its intact part.
fn read_journal(path: &Path) -> Result<(Vec<Transaction>, u64)> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .with_context(|| format!("cannot read the queue journal {}", path.display()))?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot read the queue journal {}", path.display()));
        }
    }
    Ok(parse_journal(&bytes))
}

/// Records up to the first one that is cut short or does not check.
fn parse_journal(bytes: &[u8]) -> (Vec<Transaction>, u64) {
    let mut transactions = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 12) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(body) = bytes.get(at + 12..at + 12 + len) else {
            break;
        };
        if Hash32::sha256(&[body]).0[..8] != head[4..12] {
            break;
        }
        let Ok(tx) = weft_core::encoding::decode::<Transaction>(body) else {
            break;
        };
        transactions.push(tx);
        at += 12 + len;
    }
    (transactions, at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: u8) -> Transaction {
        let key = weft_core::SigningKey::from_seed(&[n; 32]);
        let chain = weft_core::ChainId::from_name("queue-test").expect("chain");
        let payload = weft_core::model::Payload::Record(weft_core::model::Record {
            issuer: weft_core::ResourceId::from_hex(&"11".repeat(32)).expect("id"),
            content_type: "text/plain".into(),
            product_code: None,
            body: vec![n; 10],
        });
        Transaction::sign(
            chain,
            1_700_000_000_000,
            weft_ledger::Signer::Authority,
            &key,
            payload,
        )
        .expect("sign")
    }

    #[test]
    fn a_journal_is_read_back_up_to_its_first_broken_record() {
        let mut bytes = Vec::new();
        for n in 1..=3 {
            append_record(&mut bytes, &weft_core::encoding::encode(&tx(n)));
        }
        let whole = bytes.len() as u64;
        let (read, len) = parse_journal(&bytes);
        assert_eq!(len, whole);
        assert_eq!(
            read.iter().map(Transaction::id).collect::<Vec<_>>(),
            (1..=3).map(|n| tx(n).id()).collect::<Vec<_>>()
        );
        // Cut anywhere inside the third record: the first two stay.
        let second_end = {
            let mut two = Vec::new();
            for n in 1..=2 {
                append_record(&mut two, &weft_core::encoding::encode(&tx(n)));
            }
            two.len()
        };
        for cut in [second_end + 1, second_end + 11, bytes.len() - 1] {
            let (read, len) = parse_journal(&bytes[..cut]);
            assert_eq!((read.len(), len), (2, second_end as u64), "cut at {cut}");
        }
        // A changed byte in the second record stops the reading there.
        let mut changed = bytes.clone();
        changed[second_end - 1] ^= 1;
        let (read, len) = parse_journal(&changed);
        assert_eq!(read.len(), 1);
        assert!(len < second_end as u64);
        assert_eq!(parse_journal(&[]), (Vec::new(), 0));
    }
}
