//! Anchoring other companies' chains (`[anchor]`, docs/anchoring.md): on an interval, for each
//! chain configured, the node fetches its latest checkpoint (its witnessed one when it publishes
//! one, else its head with the signatures of its other nodes), checks it here against the trust
//! root registered on this ledger, and records it as an `Anchor` transaction with the consistency
//! proof from the size anchored before, signed with the home's authority key. A chain not yet
//! registered is registered first (`RegisterChain`).
//!
//! The node also takes the checkpoints of the chain that other companies anchoring it (`peers`)
//! anchored last. A checkpoint that is not shown to extend the one anchored is compared with
//! what the chain signs at its size and at the anchored size: two checkpoints of one size with
//! different roots, each signed by a quorum, are recorded as `AnchorEvidence`, which anyone can
//! check offline — a rewritten history, or a split view (the chain showing one company one head
//! and another a different one). The rules check everything again: the
//! node's own checks only keep it from submitting what they would refuse.

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use weft_api::AnchoringStatus;
use weft_api::client::NodeClient;
use weft_core::model::{Anchor, AnchorEvidence, Payload, RegisterChain};
use weft_core::{ChainId, Hash32, SigningKey, TxId};
use weft_ledger::checkpoint::Note;
use weft_ledger::rules::anchors::check_note;
use weft_ledger::state::{AnchorEntry, Anchors, StateView as _};
use weft_ledger::store::Store as _;
use weft_ledger::{Signer, Transaction};

use crate::config::AnchorSection;
use crate::submission::{SharedLedger, Submission, TxResult};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a checkpoint read from another chain's node.
const MAX_NOTE_BYTES: u64 = weft_ledger::checkpoint::MAX_NOTE_BYTES as u64;

/// One chain anchored here.
struct Source {
    origin: String,
    genesis: Vec<u8>,
    clients: Vec<NodeClient>,
    /// Other companies' nodes that anchor the same chain.
    peers: Vec<NodeClient>,
}

/// What the API shows of the anchoring.
pub(crate) type Shown = Arc<Mutex<Vec<AnchoringStatus>>>;

pub(crate) struct Anchorer {
    ledger: SharedLedger,
    queue: SyncSender<Submission>,
    key: SigningKey,
    chain_id: ChainId,
    sources: Vec<Source>,
    interval: Duration,
    pub(crate) shown: Shown,
}

impl Anchorer {
    pub(crate) fn new(
        home: &Path,
        config: &AnchorSection,
        ledger: SharedLedger,
        queue: SyncSender<Submission>,
        key: Option<&SigningKey>,
        chain_id: ChainId,
    ) -> Result<Self> {
        let key = key.context(
            "[anchor] signs its anchor transactions with the home's authority key, and this home \
             has no keys/authority.key: anchor from the home of a network authority",
        )?;
        let mut sources = Vec::new();
        for chain in &config.chains {
            let path = home.join(&chain.trust);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("anchor.chains.trust: cannot read {}", path.display()))?;
            let root = weft_ledger::trust::TrustRoot::parse(&bytes)
                .with_context(|| format!("anchor.chains.trust: {}", path.display()))?;
            if root.chain_id == chain_id {
                anyhow::bail!(
                    "anchor.chains.trust: {} is this chain's own trust root",
                    path.display()
                );
            }
            let trusted = match &chain.ca {
                Some(file) => Some(crate::tls::read_certificates(&home.join(file))?),
                None => None,
            };
            let clients = chain
                .urls
                .iter()
                .map(|url| {
                    NodeClient::new(url, trusted.clone(), REQUEST_TIMEOUT)
                        .with_context(|| format!("anchor.chains.urls {url}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let peers = chain
                .peers
                .iter()
                .map(|url| {
                    NodeClient::new(url, trusted.clone(), REQUEST_TIMEOUT)
                        .with_context(|| format!("anchor.chains.peers {url}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let genesis = weft_ledger::trust::genesis_block(&root.document().genesis)?;
            sources.push(Source {
                origin: weft_ledger::checkpoint::origin(&root.chain, &root.chain_id),
                genesis: weft_core::encoding::encode(&genesis),
                clients,
                peers,
            });
        }
        let shown = sources
            .iter()
            .zip(&config.chains)
            .map(|(source, chain)| AnchoringStatus {
                origin: source.origin.clone(),
                urls: chain.urls.clone(),
                seen_size: 0,
                anchored_at_ms: 0,
                failures: 0,
                last_error: None,
            })
            .collect();
        Ok(Anchorer {
            ledger,
            queue,
            key: SigningKey::from_seed(&key.seed()),
            chain_id,
            sources,
            interval: Duration::from_millis(config.interval_ms),
            shown: Arc::new(Mutex::new(shown)),
        })
    }

    /// Anchors until the node stops: a round every interval.
    pub(crate) async fn run(self, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let interval = self.interval;
        let anchorer = Arc::new(self);
        loop {
            let started = Instant::now();
            let worker = anchorer.clone();
            let _ = tokio::task::spawn_blocking(move || worker.round()).await;
            let wait = interval.saturating_sub(started.elapsed());
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
                _ = stopping.changed() => return,
            }
        }
    }

    fn round(&self) {
        for (index, source) in self.sources.iter().enumerate() {
            let outcome = self.step(source);
            let mut shown = self
                .shown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let status = &mut shown[index];
            match outcome {
                Ok(step) => {
                    status.seen_size = status.seen_size.max(step.seen);
                    if step.anchored {
                        status.anchored_at_ms = crate::submission::now_ms();
                    }
                    status.last_error = None;
                }
                Err(error) => {
                    tracing::warn!(origin = %source.origin, %error, "cannot anchor");
                    status.failures += 1;
                    status.last_error = Some(error);
                }
            }
        }
    }

    fn anchors(&self) -> Result<Anchors, String> {
        let ledger = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ledger
            .store()
            .snapshot()
            .and_then(|snapshot| snapshot.anchors())
            .map_err(|error| error.to_string())
    }

    /// One chain: registers it if it is not, then considers its latest checkpoint as the chain
    /// shows it, and the ones the other companies anchoring it (`peers`) anchored last.
    fn step(&self, source: &Source) -> Result<Step, String> {
        if self.anchors()?.get(&source.origin).is_none() {
            self.submit(Payload::RegisterChain(RegisterChain {
                genesis: source.genesis.clone(),
            }))?;
            tracing::info!(origin = %source.origin, "registered another chain for anchoring");
        }
        let mut candidates = vec![fetch_note(source, None)?];
        for peer in &source.peers {
            // A peer that cannot be asked delays the comparison; it cannot corrupt it.
            let Ok(answer) = peer.get::<weft_api::AnchorsAnswer>("/v1/anchors") else {
                continue;
            };
            if let Some(note) = answer
                .chains
                .into_iter()
                .find(|chain| chain.origin == source.origin)
                .and_then(|chain| chain.note)
            {
                candidates.push(note);
            }
        }
        let mut step = Step {
            seen: 0,
            anchored: false,
        };
        for note in candidates {
            let anchors = self.anchors()?;
            let (seen, anchored) = self.consider(source, &anchors, note)?;
            step.seen = step.seen.max(seen);
            step.anchored |= anchored;
        }
        Ok(step)
    }

    /// One checkpoint of the chain: anchored if it extends what is anchored (by the chain's own
    /// consistency proof); otherwise compared with what the chain signs at its size and at the
    /// size anchored, and two of them that contradict each other recorded as evidence.
    fn consider(
        &self,
        source: &Source,
        anchors: &Anchors,
        note: String,
    ) -> Result<(u64, bool), String> {
        let (chain, _, verified) = check_note(anchors, &note).map_err(|error| error.to_string())?;
        let new = verified.checkpoint;
        let caught = !chain.evidence.is_empty();
        let Some(latest) = chain.latest else {
            self.submit(Payload::Anchor(Anchor {
                note,
                old_size: 0,
                proof: Vec::new(),
            }))?;
            return Ok((new.size, true));
        };
        let evidence = |first: String, second: String| -> Result<(u64, bool), String> {
            if caught {
                return Err(format!(
                    "chain {} signed two histories; the evidence is on this ledger",
                    source.origin
                ));
            }
            let id = self.submit(Payload::AnchorEvidence(AnchorEvidence { first, second }))?;
            tracing::error!(origin = %source.origin, evidence = %id, "another chain signed two histories: evidence recorded");
            Err(format!(
                "chain {} signed two histories; evidence recorded in transaction {id}",
                source.origin
            ))
        };
        if new.size == latest.size {
            if new.root == latest.root {
                return Ok((new.size, false));
            }
            return evidence(self.anchored_note(&latest)?, note);
        }
        if new.size > latest.size
            && let Ok(proof) = consistency(&source.clients[0], latest.size, new.size)
            && weft_core::merkle::verify_consistency(
                latest.size,
                new.size,
                &latest.root,
                &new.root,
                &proof,
            )
        {
            self.submit(Payload::Anchor(Anchor {
                note,
                old_size: latest.size,
                proof,
            }))?;
            return Ok((new.size, true));
        }
        // Not shown to extend what is anchored: what does the chain sign at this size, and at
        // the size anchored?
        if let Ok(then) = fetch_note(source, Some(new.size)) {
            let (_, _, at) = check_note(anchors, &then).map_err(|error| error.to_string())?;
            if at.checkpoint.root != new.root {
                return evidence(then, note);
            }
        }
        let then = fetch_note(source, Some(latest.size)).map_err(|error| {
            format!(
                "a checkpoint of {} blocks that is not shown to extend the {} anchored, and {error}",
                new.size, latest.size
            )
        })?;
        let (_, _, at) = check_note(anchors, &then).map_err(|error| error.to_string())?;
        if at.checkpoint.root != latest.root {
            return evidence(self.anchored_note(&latest)?, then);
        }
        if new.size > latest.size {
            return Err(format!(
                "its checkpoint of {} blocks agrees with the {} anchored, but its consistency \
                 proof does not hold: a faulty node, not a rewrite",
                new.size, latest.size
            ));
        }
        // A checkpoint from before the one anchored, of the same history.
        Ok((new.size, false))
    }

    /// The note of the `Anchor` transaction that anchored `latest`.
    fn anchored_note(&self, latest: &AnchorEntry) -> Result<String, String> {
        let ledger = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        anchored_note(ledger.store(), &latest.tx_id)
            .map_err(|error| error.to_string())?
            .ok_or_else(|| {
                format!(
                    "the anchor transaction {} is not held whole here",
                    latest.tx_id
                )
            })
    }

    fn submit(&self, payload: Payload) -> Result<TxId, String> {
        submit_as_authority(&self.queue, self.chain_id, &self.key, payload)
    }
}

/// Signs `payload` with the authority `key`, submits it and waits until it is committed (from
/// a blocking thread).
pub(crate) fn submit_as_authority(
    queue: &SyncSender<Submission>,
    chain_id: ChainId,
    key: &SigningKey,
    payload: Payload,
) -> Result<TxId, String> {
    let tx = Transaction::sign(
        chain_id,
        crate::submission::now_ms(),
        Signer::Authority,
        key,
        payload,
    )
    .map_err(|error| error.to_string())?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    queue
        .send(Submission {
            transactions: vec![tx],
            received: Instant::now(),
            reply,
        })
        .map_err(|_| "the node is stopping".to_string())?;
    let results = answer
        .blocking_recv()
        .map_err(|_| "the node stopped before committing".to_string())?;
    match results.into_iter().next() {
        Some(TxResult::Committed { id, .. }) => Ok(id),
        Some(TxResult::Rejected { error, .. }) => Err(format!("refused by the rules: {error}")),
        Some(TxResult::Failed { message, .. }) => Err(message),
        None => Err("no answer for the transaction".into()),
    }
}

/// The note of the `Anchor` transaction `id`, if it is one held whole.
pub(crate) fn anchored_note(
    store: &impl weft_ledger::store::Store,
    id: &TxId,
) -> weft_ledger::Result<Option<String>> {
    let Some(position) = store.tx_position(id)? else {
        return Ok(None);
    };
    Ok(match store.tx_at(position)?.and_then(|tx| tx.payload) {
        Some(Payload::Anchor(anchor)) => Some(anchor.note),
        _ => None,
    })
}

/// What one step saw and did.
struct Step {
    seen: u64,
    anchored: bool,
}

/// The chain's checkpoint of `size` blocks (its latest when `None`: the witnessed one when its
/// node publishes one, else its head), with the signatures of its other nodes added.
fn fetch_note(source: &Source, size: Option<u64>) -> Result<String, String> {
    let first = &source.clients[0];
    let at = |client: &NodeClient| -> Result<Note, String> {
        let place = client.base().to_string();
        let answer = client
            .checkpoint(size)
            .map_err(|error| format!("{place}: {error}"))?;
        Note::parse(answer.note.as_bytes()).map_err(|error| format!("{place}: {error}"))
    };
    let mut note = if size.is_none() {
        match first.get_text("/v1/checkpoint/witnessed", MAX_NOTE_BYTES) {
            Ok(text) => Note::parse(text.as_bytes())
                .map_err(|error| format!("{}: {error}", first.base()))?,
            Err(error) if error.is_not_found() => at(first)?,
            Err(error) => return Err(format!("{}: {error}", first.base())),
        }
    } else {
        at(first)?
    };
    let size = weft_ledger::checkpoint::Checkpoint::parse(&note.text)
        .map_err(|error| error.to_string())?
        .size;
    for client in &source.clients[1..] {
        let place = client.base().to_string();
        let Ok(answer) = client.checkpoint(Some(size)) else {
            continue;
        };
        if let Ok(other) = Note::parse(answer.note.as_bytes())
            && other.text == note.text
        {
            note.merge(&other)
                .map_err(|error| format!("{place}: {error}"))?;
        }
    }
    Ok(note.to_text())
}

/// The consistency proof between two sizes, as the chain's node gives it.
fn consistency(client: &NodeClient, old: u64, new: u64) -> Result<Vec<Hash32>, String> {
    use base64ct::Encoding as _;
    let answer = client
        .consistency(old, new)
        .map_err(|error| format!("{}: {error}", client.base()))?;
    answer
        .proof
        .iter()
        .map(|text| {
            base64ct::Base64::decode_vec(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(Hash32)
                .ok_or_else(|| format!("{}: a malformed consistency proof", client.base()))
        })
        .collect()
}
