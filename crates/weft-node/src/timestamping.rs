//! Time-stamping the chain's checkpoints (`[timestamp]`, docs/anchoring.md, "Public
//! timestamps"): on an interval, when the chain has grown, the node takes its latest checkpoint
//! (the witnessed one when it publishes; else its own), asks the RFC 3161 time-stamping authority
//! for a token over the checkpoint's text with a fresh random nonce, checks the token against the
//! TSA's CA (imprint, nonce, signature and chain), and records it in a `Timestamp` transaction
//! signed with the home's authority key. The rules check imprint and nonce again; anyone checks
//! the whole token offline (`weft anchor timestamp`).

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use weft_api::TimestampingStatus;
use weft_api::client::NodeClient;
use weft_core::model::{Payload, Timestamp};
use weft_core::{ChainId, SigningKey};
use weft_ledger::checkpoint::{Checkpoint, Note};

use crate::checkpoints::BlockLog;
use crate::config::TimestampSection;
use crate::publish::Published;
use crate::submission::{SharedLedger, Submission};

/// How long the TSA may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the API shows of the time-stamping.
pub(crate) type Shown = Arc<Mutex<TimestampingStatus>>;

pub(crate) struct Timestamper {
    ledger: SharedLedger,
    queue: SyncSender<Submission>,
    key: SigningKey,
    note_key: Arc<SigningKey>,
    chain_id: ChainId,
    block_log: Arc<BlockLog>,
    published: Option<Arc<Published>>,
    client: NodeClient,
    path: String,
    /// The TSA's CA certificates (DER).
    roots: Vec<Vec<u8>>,
    interval: Duration,
    pub(crate) shown: Shown,
}

/// The parts a timestamper needs of the node.
pub(crate) struct Parts {
    pub ledger: SharedLedger,
    pub queue: SyncSender<Submission>,
    pub authority: Option<SigningKey>,
    pub note_key: Arc<SigningKey>,
    pub chain_id: ChainId,
    pub block_log: Arc<BlockLog>,
    pub published: Option<Arc<Published>>,
}

impl Timestamper {
    pub(crate) fn new(home: &Path, config: &TimestampSection, parts: Parts) -> Result<Self> {
        let key = parts.authority.context(
            "[timestamp] signs its Timestamp transactions with the home's authority key, and this \
             home has no keys/authority.key: time-stamp from the home of a network authority",
        )?;
        let roots: Vec<Vec<u8>> = crate::tls::read_certificates(&home.join(&config.ca))
            .context("timestamp.ca")?
            .into_iter()
            .map(|certificate| certificate.to_vec())
            .collect();
        let scheme_end = config.url.find("://").map_or(0, |at| at + 3);
        let (base, path) = match config.url[scheme_end..].find('/') {
            Some(at) => config.url.split_at(scheme_end + at),
            None => (config.url.as_str(), "/"),
        };
        let trusted = base.starts_with("https://").then(|| {
            roots
                .iter()
                .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
                .collect()
        });
        let client = NodeClient::new(base, trusted, REQUEST_TIMEOUT)
            .with_context(|| format!("timestamp.url {}", config.url))?;
        Ok(Timestamper {
            ledger: parts.ledger,
            queue: parts.queue,
            key,
            note_key: parts.note_key,
            chain_id: parts.chain_id,
            block_log: parts.block_log,
            published: parts.published,
            client,
            path: path.to_string(),
            roots,
            interval: Duration::from_millis(config.interval_ms),
            shown: Arc::new(Mutex::new(TimestampingStatus {
                url: config.url.clone(),
                size: 0,
                time_ms: 0,
                tx: None,
                failures: 0,
                last_error: None,
            })),
        })
    }

    /// Time-stamps until the node stops: a round every interval.
    pub(crate) async fn run(self, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let interval = self.interval;
        let timestamper = Arc::new(self);
        loop {
            let worker = timestamper.clone();
            let _ = tokio::task::spawn_blocking(move || worker.round()).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stopping.changed() => return,
            }
        }
    }

    fn round(&self) {
        let outcome = self.step();
        let mut shown = self
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok(Some((size, time_ms, tx))) => {
                shown.size = size;
                shown.time_ms = time_ms;
                shown.tx = Some(tx);
                shown.last_error = None;
            }
            Ok(None) => shown.last_error = None,
            Err(error) => {
                tracing::warn!(%error, "cannot time-stamp the chain's checkpoint");
                shown.failures += 1;
                shown.last_error = Some(error);
            }
        }
    }

    /// The checkpoint to time-stamp: the witnessed one when the chain publishes, else this
    /// node's own of its head.
    fn note(&self) -> Result<Note, String> {
        if let Some(text) = self
            .published
            .as_ref()
            .and_then(|published| published.witnessed())
        {
            return Note::parse(text.as_bytes()).map_err(|error| error.to_string());
        }
        let ledger = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.block_log
            .checkpoint(&ledger, None, &self.note_key)
            .map(|signed| signed.note)
            .map_err(|error| error.to_string())
    }

    /// One round: a token for the latest checkpoint, if it is larger than the one time-stamped
    /// last; its size, signed time and transaction.
    fn step(&self) -> Result<Option<(u64, u64, String)>, String> {
        let note = self.note()?;
        let size = Checkpoint::parse(&note.text)
            .map_err(|error| error.to_string())?
            .size;
        let done = self
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .size;
        if size <= done {
            return Ok(None);
        }
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|error| format!("no randomness: {error}"))?;
        let nonce = u64::from_le_bytes(bytes);
        let request = weft_ledger::timestamp::request(note.text.as_bytes(), nonce);
        let (status, content_type, body) = self
            .client
            .post_bytes(
                &self.path,
                "application/timestamp-query",
                &request,
                weft_ledger::timestamp::MAX_TOKEN_BYTES as u64 + 1024,
            )
            .map_err(|error| format!("the TSA: {error}"))?;
        if status != 200 {
            return Err(format!(
                "the TSA answered {status} ({content_type}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        let token = weft_ledger::timestamp::token_of(&body).map_err(|error| error.to_string())?;
        let verified =
            weft_ledger::timestamp::verify(&token, note.text.as_bytes(), nonce, &self.roots)
                .map_err(|error| format!("the TSA's token does not check: {error}"))?;
        let tx = crate::anchor::submit_as_authority(
            &self.queue,
            self.chain_id,
            &self.key,
            Payload::Timestamp(Timestamp {
                note: note.to_text(),
                nonce,
                token,
            }),
        )?;
        tracing::info!(size, tx = %tx, tsa_time_ms = verified.time_ms, "checkpoint time-stamped");
        Ok(Some((size, verified.time_ms, tx.to_hex())))
    }
}
