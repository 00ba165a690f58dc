//! Publishing the chain's checkpoints to witnesses (`[publish]`, docs/anchoring.md): on an
//! interval, and as soon as the chain has grown by `every_blocks`, the node signs the checkpoint
//! of its head, adds the other validators' signatures of the same checkpoint until a quorum
//! signed it, and pushes it to every witness by C2SP tlog-witness (`POST /add-checkpoint`, with
//! the consistency proof from the size the witness holds; a `409` with that size teaches it).
//! Each cosignature is checked against the witness's configured key before it is kept. Once
//! `policy` witnesses cosigned one checkpoint, it is the node's witnessed checkpoint: kept in
//! `witnessed.note` and served at `GET /v1/checkpoint/witnessed`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use weft_api::client::NodeClient;
use weft_api::{PublishStatus, PublishWitnessStatus};
use weft_core::{Hash32, SigningKey};
use weft_ledger::checkpoint::Note;
use weft_ledger::cosigned::{Policy, WitnessKey};
use weft_ledger::state::StateView as _;
use weft_ledger::store::Store as _;
use weft_ledger::trust::TrustRoot;

use crate::checkpoints::BlockLog;
use crate::config::PublishSection;
use crate::metrics::{Metrics, PushLabels};
use crate::submission::SharedLedger;

/// How long one request to a witness or a validator may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes read of a witness's answer (a cosignature line, or an error).
const MAX_ANSWER_BYTES: u64 = 4096;

/// What the API shows of the publishing: its status and the witnessed checkpoint.
#[derive(Debug)]
pub(crate) struct Published {
    state: Mutex<(PublishStatus, Option<String>)>,
}

impl Published {
    /// The status, with the lag behind `head_size` blocks.
    pub(crate) fn status(&self, head_size: u64) -> PublishStatus {
        let mut status = self.lock().0.clone();
        status.head_size = head_size;
        status.lag_blocks = head_size.saturating_sub(status.witnessed_size);
        status
    }

    /// The latest witnessed checkpoint: the note with its validators' signatures and its
    /// witnesses' cosignatures.
    pub(crate) fn witnessed(&self) -> Option<String> {
        self.lock().1.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (PublishStatus, Option<String>)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One witness pushed to.
struct Target {
    key: WitnessKey,
    client: NodeClient,
    /// The size it holds for this chain, as far as this node knows.
    known: Option<u64>,
}

/// The publisher: what a round needs.
pub(crate) struct Publisher {
    ledger: SharedLedger,
    block_log: Arc<BlockLog>,
    key: Arc<SigningKey>,
    root: TrustRoot,
    validators: Vec<NodeClient>,
    targets: Vec<Target>,
    policy: Policy,
    config: PublishSection,
    note_path: PathBuf,
    metrics: Arc<Metrics>,
    pub(crate) published: Arc<Published>,
}

fn now_ms() -> u64 {
    crate::submission::now_ms()
}

impl Publisher {
    /// The publisher of the home at `home` by `config`; the witnessed checkpoint kept from
    /// before is taken again if it still checks out.
    pub(crate) fn new(
        home: &Path,
        config: &PublishSection,
        ledger: SharedLedger,
        block_log: Arc<BlockLog>,
        key: Arc<SigningKey>,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let root = {
            let ledger = ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let genesis = ledger
                .store()
                .block(0)?
                .context("the ledger has no block 0")?;
            TrustRoot::from_genesis(&genesis)?
        };
        let mut targets = Vec::new();
        for witness in &config.witnesses {
            let key = WitnessKey::parse(&witness.key).context("publish.witnesses.key")?;
            let trusted = match &witness.ca {
                Some(file) => Some(crate::tls::read_certificates(&home.join(file))?),
                None => None,
            };
            let client = NodeClient::new(&witness.url, trusted, REQUEST_TIMEOUT)
                .with_context(|| format!("publish.witnesses.url {}", witness.url))?;
            targets.push(Target {
                key,
                client,
                known: None,
            });
        }
        let policy = Policy::new(
            targets.iter().map(|target| target.key.clone()).collect(),
            config.k(),
        )?;
        let validators = config
            .validators
            .iter()
            .map(|url| {
                NodeClient::new(url, None, REQUEST_TIMEOUT)
                    .with_context(|| format!("publish.validators {url}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let status = PublishStatus {
            head_size: 0,
            published_size: 0,
            witnessed_size: 0,
            witnessed_at_ms: 0,
            lag_blocks: 0,
            policy: policy.k,
            last_error: None,
            witnesses: config
                .witnesses
                .iter()
                .zip(&targets)
                .map(|(witness, target)| PublishWitnessStatus {
                    name: target.key.name.clone(),
                    url: witness.url.clone(),
                    key: witness.key.clone(),
                    cosigned_size: 0,
                    cosigned_at_ms: 0,
                    failures: 0,
                    last_error: None,
                })
                .collect(),
        };
        let publisher = Publisher {
            ledger,
            block_log,
            key,
            root,
            validators,
            targets,
            policy,
            config: config.clone(),
            note_path: home.join("witnessed.note"),
            metrics,
            published: Arc::new(Published {
                state: Mutex::new((status, None)),
            }),
        };
        publisher.take_kept();
        Ok(publisher)
    }

    /// Takes the witnessed checkpoint kept in `witnessed.note`, if it checks out.
    fn take_kept(&self) {
        let Ok(bytes) = std::fs::read(&self.note_path) else {
            return;
        };
        match Note::parse(&bytes).and_then(|note| {
            let verified =
                weft_ledger::cosigned::verify(&note, &self.root, &self.schedule()?, &self.policy)?;
            Ok((note, verified))
        }) {
            Ok((note, verified)) => {
                let mut state = self.published.lock();
                state.0.witnessed_size = verified.checkpoint.checkpoint.size;
                state.0.witnessed_at_ms = verified
                    .cosigners
                    .iter()
                    .map(|(_, time)| time.saturating_mul(1000))
                    .max()
                    .unwrap_or(0);
                state.1 = Some(note.to_text());
                self.metrics
                    .witnessed_size
                    .set(i64::try_from(state.0.witnessed_size).unwrap_or(i64::MAX));
            }
            Err(error) => tracing::warn!(
                file = %self.note_path.display(),
                %error,
                "the witnessed checkpoint kept from before does not check out; not served"
            ),
        }
    }

    fn schedule(&self) -> weft_ledger::Result<weft_ledger::state::Schedule> {
        let ledger = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ledger.store().snapshot()?.schedule()
    }

    /// Publishes until the node stops: a round when the chain has grown (or a witness has yet
    /// to cosign) and the interval has passed, or as soon as `every_blocks` were added.
    pub(crate) async fn run(
        self,
        mut head: tokio::sync::watch::Receiver<u64>,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) {
        let interval = Duration::from_millis(self.config.interval_ms);
        let every = self.config.every_blocks;
        let publisher = Arc::new(Mutex::new(self));
        let mut last_round: Option<(Instant, u64, bool)> = None;
        loop {
            let size = *head.borrow_and_update() + 1;
            let (due, grown) = match last_round {
                None => (true, true),
                Some((at, round_size, complete)) => (
                    at.elapsed() >= interval && (size > round_size || !complete),
                    every > 0 && size >= round_size + every,
                ),
            };
            if due || grown {
                let worker = publisher.clone();
                let complete = tokio::task::spawn_blocking(move || {
                    worker
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .round(size)
                })
                .await
                .unwrap_or(false);
                last_round = Some((Instant::now(), size, complete));
                continue;
            }
            // Nothing left to push (every witness cosigned the head): wait for a new block only,
            // not on a timer that would wake the loop every few ms for nothing.
            let pending =
                last_round.is_none_or(|(_, round_size, complete)| size > round_size || !complete);
            let wait = last_round
                .map_or(interval, |(at, ..)| interval.saturating_sub(at.elapsed()))
                .max(Duration::from_millis(10));
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait), if pending => {}
                _ = stopping.changed() => return,
            }
        }
    }

    /// One round at `size`: gathers a quorum's signatures and pushes to every witness. True
    /// when every witness cosigned.
    fn round(&mut self, size: u64) -> bool {
        let note = match self.gather(size) {
            Ok(note) => note,
            Err(error) => {
                tracing::warn!(size, %error, "cannot publish the checkpoint");
                self.published.lock().0.last_error = Some(error);
                return false;
            }
        };
        self.published.lock().0.last_error = None;
        let ledger = &self.ledger;
        let block_log = &self.block_log;
        let proof = |old: u64| -> Result<Vec<Hash32>, String> {
            let ledger = ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            block_log
                .consistency(&ledger, old, size)
                .map_err(|error| error.to_string())
        };
        let results: Vec<Result<weft_ledger::checkpoint::NoteSignature, String>> =
            std::thread::scope(|scope| {
                let pushes: Vec<_> = self
                    .targets
                    .iter_mut()
                    .map(|target| scope.spawn(|| target.push(&note, size, &proof)))
                    .collect();
                pushes
                    .into_iter()
                    .map(|push| {
                        push.join()
                            .unwrap_or_else(|_| Err("the push panicked".to_string()))
                    })
                    .collect()
            });
        let mut cosigned = note.clone();
        let now = now_ms();
        let mut state = self.published.lock();
        state.0.published_size = size;
        for ((result, target), shown) in results
            .into_iter()
            .zip(&self.targets)
            .zip(state.0.witnesses.iter_mut())
        {
            let labels = |result| PushLabels {
                witness: target.key.name.clone(),
                result,
            };
            match result {
                Ok(signature) => {
                    cosigned.signatures.push(signature);
                    shown.cosigned_size = size;
                    shown.cosigned_at_ms = now;
                    shown.last_error = None;
                    self.metrics
                        .witness_pushes
                        .get_or_create(&labels("cosigned"))
                        .inc();
                }
                Err(error) => {
                    tracing::warn!(witness = %target.key.name, size, %error, "a witness did not cosign");
                    shown.failures += 1;
                    shown.last_error = Some(error);
                    self.metrics
                        .witness_pushes
                        .get_or_create(&labels("failed"))
                        .inc();
                }
            }
        }
        let count = cosigned.signatures.len() - note.signatures.len();
        let complete = count == self.targets.len();
        if count >= self.policy.k && size > state.0.witnessed_size {
            let text = cosigned.to_text();
            if let Err(error) =
                weft_ledger::files::write_private_atomically(&self.note_path, text.as_bytes(), true)
            {
                tracing::error!(file = %self.note_path.display(), %error, "cannot keep the witnessed checkpoint");
            }
            state.0.witnessed_size = size;
            state.0.witnessed_at_ms = now;
            state.1 = Some(text);
            self.metrics
                .witnessed_size
                .set(i64::try_from(size).unwrap_or(i64::MAX));
            tracing::debug!(size, cosigned = count, "checkpoint witnessed");
        }
        self.metrics
            .witness_lag_blocks
            .set(i64::try_from(size.saturating_sub(state.0.witnessed_size)).unwrap_or(i64::MAX));
        complete
    }

    /// The checkpoint of `size` blocks, signed by this node and by as many of the other
    /// validators as answer with the same text; refused without a quorum.
    fn gather(&self, size: u64) -> Result<Note, String> {
        let mut note = {
            let ledger = self
                .ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.block_log
                .checkpoint(&ledger, Some(size), &self.key)
                .map_err(|error| error.to_string())?
                .note
        };
        let mut problems = Vec::new();
        for validator in &self.validators {
            let answer = match validator.checkpoint(Some(size)) {
                Ok(answer) => answer,
                Err(error) => {
                    problems.push(format!("{}: {error}", validator.base()));
                    continue;
                }
            };
            match Note::parse(answer.note.as_bytes()) {
                Ok(other) if other.text == note.text => {
                    if let Err(error) = note.merge(&other) {
                        problems.push(format!("{}: {error}", validator.base()));
                    }
                }
                Ok(_) => problems.push(format!(
                    "{}: signs another checkpoint of {size} blocks",
                    validator.base()
                )),
                Err(error) => problems.push(format!("{}: {error}", validator.base())),
            }
        }
        let schedule = self.schedule().map_err(|error| error.to_string())?;
        weft_ledger::checkpoint::verify(&note, &self.root, &schedule).map_err(|error| {
            if problems.is_empty() {
                error.to_string()
            } else {
                format!("{error} ({})", problems.join("; "))
            }
        })?;
        Ok(note)
    }
}

impl Target {
    /// Pushes `note` (of `size` blocks) to this witness: its cosignature, checked, or why not.
    fn push(
        &mut self,
        note: &Note,
        size: u64,
        proof: &dyn Fn(u64) -> Result<Vec<Hash32>, String>,
    ) -> Result<weft_ledger::checkpoint::NoteSignature, String> {
        let mut old = self.known.unwrap_or(0);
        // The first try from the size it is known to hold; a 409 gives the size it holds.
        for _ in 0..2 {
            if old > size {
                return Err(format!(
                    "it holds a checkpoint of {old} blocks, later than this node's {size}"
                ));
            }
            let hashes = if old == 0 || old == size {
                Vec::new()
            } else {
                proof(old)?
            };
            let body = weft_ledger::witness::request_body(old, &hashes, note);
            let (status, content_type, text) = self
                .client
                .post_text("/add-checkpoint", &body, MAX_ANSWER_BYTES)
                .map_err(|error| error.to_string())?;
            match status {
                200 => {
                    let signed = Note::parse(format!("{}\n{}", note.text, text).as_bytes())
                        .map_err(|error| format!("its answer is not a cosignature: {error}"))?;
                    let checked = self
                        .key
                        .cosignature(&signed)
                        .map_err(|error| error.to_string())?;
                    if signed.signatures.len() != 1 || checked.is_none() {
                        return Err(
                            "its answer is not one cosignature by its configured key".into()
                        );
                    }
                    self.known = Some(size);
                    return Ok(signed.signatures[0].clone());
                }
                409 if content_type.starts_with(weft_ledger::witness::SIZE_CONTENT_TYPE) => {
                    old = text.trim().parse().map_err(|_| {
                        format!("409 with a size that is not a number: {:?}", text.trim())
                    })?;
                    self.known = Some(old);
                }
                _ => {
                    return Err(format!(
                        "{status}: {}",
                        text.lines().next().unwrap_or_default()
                    ));
                }
            }
        }
        Err("the size it holds changed while this node pushed".into())
    }
}
