//! The core of a networked node: one thread that owns the pool of waiting transactions, the
//! blocks proposed above the committed head, and the commit of finalized blocks.
//!
//! - **Propose**: when this validator leads a view, it builds a block on the parent the engine
//!   names, from pooled transactions that the parent's chain does not hold yet, checked against
//!   the state after that parent (committed state plus the not-yet-final blocks above it).
//! - **Verify**: every transaction of another leader's block is checked again (signature, every
//!   rule) on the state after its parent; a block that breaks any rule is refused and recorded
//!   as evidence.
//! - **Commit**: a finalization certificate makes its block and every ancestor final; they are
//!   committed in order and their submitters answered. Missing blocks are fetched from a peer
//!   (catch-up), with the certificate that makes them final.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use commonware_codec::{Decode as _, Encode as _};
use commonware_p2p::{
    Address, AddressableManager, AddressableTrackedPeers, Blocker, CheckedSender as _, Ingress,
    Recipients, Sender,
};
use commonware_utils::ordered::{Map, Set};
use weft_core::encoding::{decode, encode};
use weft_core::{BlockHash, Hash32, SigningKey, TxId};
use weft_ledger::block::{Block, SignedHeader};
use weft_ledger::ledger::{Assembled, Signatures, ValidatedBlock, assemble, validate_block_with};
use weft_ledger::state::{Overlay, Position, Schedule, StateDelta};
use weft_ledger::store::network::{NetworkPeers, peer_changes};
use weft_ledger::store::Store as _;
use weft_ledger::{Admitted, RuleError, Transaction};

use super::addresses::AddressBook;
use super::wire::{self, Proposal, Sync, TxBatch};
use super::{
    Ctx, Digest, Event, FETCH_TIMEOUT, Fetched, Finalization, Key, Scheme, SharedStatus, key_set,
    weft_key,
};
use crate::config::NetworkSection;
use crate::metrics::Metrics;
use crate::submission::{SharedLedger, Submission, TxResult, now_ms};

/// How often the core looks at waiting proposals, flooding and catch-up.
pub(crate) const TICK: Duration = Duration::from_millis(5);
/// A catch-up request unanswered this long goes to another peer.
const SYNC_RETRY: Duration = Duration::from_millis(1_000);
/// How many times a block this node lacks is asked of every validator before it gives up
/// (once a second).
const WHOLE_TRIES: u32 = 10;
/// A node that does not vote asks for new blocks this often.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// A node that does not vote floods again the submissions made to it that are still waiting
/// this long (their first flood may have found no peer connected, or a connection that dropped).
const REFLOOD_EVERY: Duration = Duration::from_millis(2_000);
/// A peer heard from within this long counts as connected.
const PEER_SEEN: Duration = Duration::from_secs(5);
/// How often a node tells its peers whom it heard from ([`Sync::Online`]).
const ONLINE_EVERY: Duration = Duration::from_secs(2);
/// How often a node sends its peers the signed addresses it holds ([`Sync::Addresses`]; a peer
/// heard from anew gets them at once).
const ADDRESSES_EVERY: Duration = Duration::from_secs(10);
/// A signed address dated further than this ahead of this node's clock is refused.
const ADDRESS_SKEW_MS: u64 = 60_000;
/// How often the core looks at the connections it keeps besides the validators'.
const CONNECTIONS_EVERY: Duration = Duration::from_millis(250);
/// A peer picked to connect with that is still not connected after this long is passed over,
/// and another picked in its place.
const PICK_GRACE: Duration = Duration::from_secs(3);
/// A pick whose connection dropped, or that never connected, is not picked again for this long
/// (unless no other candidate is left).
const PASSED_OVER_FOR: Duration = Duration::from_secs(30);
/// Most bytes of blocks held above the committed head.
const MAX_KNOWN_BYTES: usize = 512 << 20;
/// Most bytes of transactions in one proposal (half the largest message).
const PROPOSAL_BYTES: usize = (wire::MAX_MESSAGE_BYTES / 2) as usize;
/// A validator that has committed nothing for this long asks a peer for blocks.
const STALLED: Duration = Duration::from_secs(2);
/// Most headers asked for at once while catching up.
const SYNC_HEADERS: u32 = wire::MAX_SYNC_HEADERS;
/// A peer that had no headers to give: the next is asked after this long.
const EMPTY_RETRY: Duration = Duration::from_millis(100);
/// Most block bodies asked of one peer at once while catching up.
const SYNC_BODIES: u32 = 64;
/// Most body requests out at once, each to a different peer.
const BODY_REQUESTS: usize = 4;
/// How often a validator whose engine waits to start asks the validators that have not
/// answered yet ([`StartGate`]).
const GATE_PROBE: Duration = Duration::from_millis(100);

/// A validator's engine starts once every other validator of the epoch has answered a
/// headers request (a round trip over the connection), or after `network.start_wait_ms`. At start
/// two nodes often dial each other at once; commonware keeps one of the two connections, and
/// the side whose connection was refused learns of it only later. A vote sent in that window
/// is lost, and a lost leader's vote in the first view cost a view (4 s: the validators that
/// had it wait for the certification timeout before they nullify). The epoch's channels are
/// open while the engine waits, so the votes of engines that started earlier wait for it.
struct StartGate {
    since: Instant,
    probed: Option<Instant>,
    /// The validators that have not answered yet.
    waiting: HashSet<Key>,
    open: tokio::sync::oneshot::Sender<()>,
}

pub(crate) struct CoreParams<S, B> {
    pub ledger: SharedLedger,
    pub key: SigningKey,
    /// Who validates which block, as committed.
    pub schedule: Schedule,
    /// Peers named in `network.followers` (tracked whatever the chain says).
    pub followers: Set<Key>,
    /// Most identities in the tracked peer set (fixed when the p2p network starts).
    pub peers_per_set: usize,
    /// The chain's consensus namespace (certificates are verified in it).
    pub namespace: Vec<u8>,
    /// Where the core names each epoch's engine to run.
    pub epochs: tokio::sync::mpsc::UnboundedSender<super::EpochStart>,
    pub blocks_out: S,
    pub txs_out: S,
    pub sync_out: S,
    pub blocker: B,
    pub status: SharedStatus,
    pub metrics: Arc<Metrics>,
    /// What follows each commit: the head announced, the metrics, the merge policy.
    pub tail: crate::commit::CommitTail,
    pub addresses: AddressBook,
    pub evidence_path: PathBuf,
    pub config: NetworkSection,
    pub max_txs: usize,
    /// What this node stores whole (`None`: everything).
    pub filter: Option<weft_ledger::filter::StorageFilter>,
    /// Debug builds only: how this node misbehaves, for tests ([`Fault`]).
    pub fault: Option<Fault>,
}

/// The consensus epoch this node is in: the one of the block after its committed head.
struct EpochState {
    number: u64,
    validators: Set<Key>,
    /// Checks this epoch's certificates.
    verifier: Scheme,
}

/// A block above the committed head.
struct Known {
    block: Arc<Block>,
    bytes: usize,
    /// Its state changes, once validated on its parent's state.
    validated: Option<Arc<ValidatedBlock>>,
    /// Rebuilt from pooled transactions, whose signatures this node verified when it pooled
    /// them: validating it verifies only the producer's seal, not each transaction again.
    from_pool: bool,
}

/// One submission's answers, filled as its transactions are decided.
struct Waiting {
    /// The submission's transaction ids, in order.
    ids: Vec<TxId>,
    results: Vec<Option<TxResult>>,
    left: usize,
    reply: Option<tokio::sync::oneshot::Sender<Vec<TxResult>>>,
}

/// A fetch of whole transactions, waiting for the peers' proofs.
struct PendingFetch {
    wanted: HashSet<TxId>,
    found: Vec<Fetched>,
    reply: Option<tokio::sync::oneshot::Sender<Vec<Fetched>>>,
    deadline: Instant,
}

/// Why a block's state cannot be had.
enum Lookup {
    /// A block on the way is not here (yet): this one.
    Missing(BlockHash),
    /// The block is at or below the committed head, or on a branch the head does not extend.
    Stale,
    /// A block on the way breaks a rule.
    Invalid(String),
}

pub(crate) struct Core<S, B> {
    p: CoreParams<S, B>,
    chain_id: weft_core::ChainId,
    head: SignedHeader,
    head_hash: BlockHash,
    known: HashMap<BlockHash, Known>,
    known_bytes: usize,
    verifying: Vec<(
        Ctx,
        BlockHash,
        commonware_utils::channel::oneshot::Sender<bool>,
    )>,
    proposing: Vec<(
        Ctx,
        Instant,
        commonware_utils::channel::oneshot::Sender<Digest>,
    )>,
    /// The latest finalization heard of: its epoch and view, and its block.
    target: Option<((u64, u64), BlockHash)>,
    /// The (epoch, view) of the latest notarization the engine reported.
    notarized: Option<(u64, u64)>,
    /// Encoded finalizations of blocks not committed yet, with their epoch and view.
    certificates: HashMap<BlockHash, ((u64, u64), Vec<u8>)>,
    pool: HashMap<TxId, Transaction>,
    order: VecDeque<TxId>,
    waiting: Vec<Option<Waiting>>,
    free: Vec<usize>,
    by_tx: HashMap<TxId, (usize, usize)>,
    outbox: Vec<Transaction>,
    outbox_bytes: usize,
    /// When the last headers request went out (unanswered).
    sync_sent: Option<Instant>,
    sync_turn: usize,
    /// Catch-up: final headers above the committed head whose blocks are not committed yet,
    /// oldest first, each the child of the one before (the first, of the head), with their
    /// hashes. A certificate covers the last one.
    headers: VecDeque<(SignedHeader, BlockHash)>,
    /// Body requests out: first height → who was asked, for how many, when.
    bodies_asked: std::collections::BTreeMap<u64, (Key, u32, Instant)>,
    /// Blocks above the head this node needs whole and lacks (a proposal whose transactions
    /// were not all in the pool, a proposal or parent that never came): when it last asked,
    /// and how many times.
    wanted_blocks: HashMap<BlockHash, (Instant, u32)>,
    /// Peers not to ask while catching up, and until when: one that left a body request
    /// unanswered (for a while), one that sent invalid data (while it is blocked).
    avoid: HashMap<Key, Instant>,
    last_follow: Instant,
    seen: HashMap<Key, Instant>,
    me: Key,
    epoch: EpochState,
    /// Does this node vote in the current epoch?
    is_validator: bool,
    /// While this validator's engine waits for the other validators to answer.
    gate: Option<StartGate>,
    /// The peers this node dials: the validators of this epoch and the next, and the
    /// [`Core::picks`], but itself.
    dialed: Vec<Key>,
    /// Peers besides the validators this node keeps connections with (`network.connections`
    /// of them), and when each was picked.
    picks: HashMap<Key, Instant>,
    /// Former picks not to pick again before the time given.
    passed_over: HashMap<Key, Instant>,
    /// The peers the p2p network had connections with at the last look.
    connected: HashSet<Key>,
    last_connections: Instant,
    /// The peer set last given to the p2p network (primary: dialled; secondary: accepted),
    /// and its id (this node's own: it only grows).
    tracked: Option<(PeerMap, PeerMap)>,
    track_id: u64,
    /// This node's own signed address, and the newest signed address of each other peer.
    own_address: wire::PeerAddress,
    signed_addresses: HashMap<Key, wire::PeerAddress>,
    last_addresses: Instant,
    /// Every validator of every epoch the committed schedule names.
    validator_keys: Vec<Key>,
    /// The configured seeds (picked first among the peers besides the validators; asked for
    /// blocks whatever their type: an archive node a joiner was told of is asked like a
    /// validator).
    seed_keys: Vec<Key>,
    /// `synced`, or `catching up` while final blocks are missing.
    sync_state: &'static str,
    /// When the last block was committed (a validator that hears of none asks its peers).
    last_commit: Instant,
    halted: bool,
    fetching: Vec<PendingFetch>,
    /// Non-voting nodes: the submissions made here still pooled at the last re-flood check, and
    /// when it was.
    waited: HashSet<TxId>,
    last_reflood: Instant,
    /// When this node last told its peers whom it heard from.
    last_online: Instant,
    /// What each peer last said it heard from, and when it said so.
    reported: HashMap<Key, (Instant, Vec<Key>)>,
    /// The peers admitted by `NetworkPeer` transactions.
    member_keys: Vec<Key>,
    /// Peers this node disconnected: why, and until when (ms since the epoch).
    cut_off: HashMap<Key, (String, u64)>,
    /// Where each peer is dialled, as far as this node knows: the configured seeds, the finality
    /// store's address book, what peers said of themselves and signed addresses passed on.
    addresses: HashMap<Key, String>,
    /// Debug builds only: how this node misbehaves (its proposals, its votes), for tests.
    fault: Option<Fault>,
    /// With [`Fault::Equivocate`]: sends this validator's double votes.
    equivocator: Option<super::Equivocator>,
}

/// Byzantine behaviour, for tests of the network's defences: set with the environment variable
/// `WEFT_FAULT` on a debug build (release builds never read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The first transaction's signature has a bit flipped.
    ForgedSignature,
    /// The first transaction appears twice (a replay, which the rules refuse).
    Replay,
    /// Besides its own vote for the block it proposes as leader, a second notarize vote in the
    /// same view for another block: a double vote.
    Equivocate,
    /// Proposes honestly, but answers catch-up requests for block bodies with the first
    /// transaction's signature altered, or one added to an empty block: the body no longer
    /// matches its header.
    BadBodies,
    /// Votes to notarize and nullify as usual but sends no finalize vote and ignores those of
    /// the others: with two such validators of four, blocks are notarized and none is finalized
    /// until one of them votes honestly again.
    WithholdFinalize,
}

impl Fault {
    pub(crate) fn from_env() -> Option<Fault> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let fault = match std::env::var("WEFT_FAULT").ok()?.as_str() {
            "forged-signature" => Fault::ForgedSignature,
            "replay" => Fault::Replay,
            "equivocate" => Fault::Equivocate,
            "bad-bodies" => Fault::BadBodies,
            "withhold-finalize" => Fault::WithholdFinalize,
            other => {
                tracing::error!(fault = other, "unknown WEFT_FAULT; proposing honestly");
                return None;
            }
        };
        tracing::warn!(?fault, "this node misbehaves on purpose (WEFT_FAULT)");
        Some(fault)
    }

    /// The proposal broken this way, its Merkle root and seal made again so that only the fault
    /// is wrong; `None` for a fault that leaves proposals alone, or with nothing to break.
    fn broken(self, block: &Block, key: &SigningKey) -> Option<Block> {
        let first = block.transactions.first()?.clone();
        let mut block = block.clone();
        match self {
            Fault::ForgedSignature => block.transactions[0].signature.0[0] ^= 1,
            Fault::Replay => block.transactions.push(first),
            Fault::Equivocate | Fault::BadBodies | Fault::WithholdFinalize => return None,
        }
        let ids: Vec<TxId> = block.transactions.iter().map(Transaction::id).collect();
        let mut header = block.signed.header.clone();
        header.merkle_root = weft_ledger::block::merkle_levels(&block.transactions, &ids).root();
        header.tx_count = block.transactions.len() as u32;
        block.signed = SignedHeader::seal(header, key);
        Some(block)
    }
}

impl<S, B> Core<S, B>
where
    S: Sender<PublicKey = Key>,
    B: Blocker<PublicKey = Key> + AddressableManager<PublicKey = Key>,
{
    pub fn new(p: CoreParams<S, B>) -> Result<Self> {
        let (head, chain_id) = {
            let ledger = p
                .ledger
                .lock()
                .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
            (ledger.head().clone(), ledger.chain_id())
        };
        let me = super::engine_key(&p.key.public_key())?;
        let epoch = epoch_state(&p.schedule, &p.namespace, head.header.height + 1)?;
        let is_validator = epoch.validators.position(&me).is_some();
        let seeds = p.config.seed_list()?;
        let seed_keys = seeds
            .iter()
            .map(|seed| super::engine_key(&seed.key))
            .collect::<Result<Vec<_>>>()?;
        // The address book first, the configured seeds over it.
        let mut addresses: HashMap<Key, String> = p
            .addresses
            .addresses()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, address)| Some((super::engine_key(&key).ok()?, address)))
            .collect();
        for (seed, key) in seeds.iter().zip(&seed_keys) {
            addresses.insert(key.clone(), seed.addr.to_string());
        }
        let dialable = p.config.dialable_addr()?.to_string();
        let own_address = wire::PeerAddress::sign(chain_id, &p.key, dialable, now_ms());
        Ok(Core {
            chain_id,
            head_hash: head.header.hash(),
            head,
            known: HashMap::new(),
            known_bytes: 0,
            verifying: Vec::new(),
            proposing: Vec::new(),
            target: None,
            notarized: None,
            certificates: HashMap::new(),
            pool: HashMap::new(),
            order: VecDeque::new(),
            waiting: Vec::new(),
            free: Vec::new(),
            by_tx: HashMap::new(),
            outbox: Vec::new(),
            outbox_bytes: 0,
            sync_sent: None,
            sync_turn: 0,
            headers: VecDeque::new(),
            bodies_asked: std::collections::BTreeMap::new(),
            avoid: HashMap::new(),
            wanted_blocks: HashMap::new(),
            last_follow: Instant::now(),
            seen: HashMap::new(),
            me,
            dialed: Vec::new(),
            picks: HashMap::new(),
            passed_over: HashMap::new(),
            connected: HashSet::new(),
            last_connections: Instant::now(),
            tracked: None,
            track_id: 0,
            own_address,
            signed_addresses: HashMap::new(),
            last_addresses: Instant::now(),
            validator_keys: all_validators(&p.schedule),
            seed_keys,
            sync_state: "synced",
            epoch,
            is_validator,
            gate: None,
            last_commit: Instant::now(),
            halted: false,
            fetching: Vec::new(),
            waited: HashSet::new(),
            last_reflood: Instant::now(),
            last_online: Instant::now(),
            reported: HashMap::new(),
            member_keys: member_keys(&super::admitted_peers(&p.ledger).unwrap_or_default()),
            cut_off: HashMap::new(),
            addresses,
            fault: p.fault,
            equivocator: None,
            p,
        })
    }

    /// Runs until told to stop; then answers every waiting submitter (their transactions are
    /// not final, so not acknowledged) and returns. A storage failure ends it with the error.
    pub fn run(mut self, inbox: Receiver<Event>) -> Result<()> {
        self.maintain_connections();
        self.start_epoch()?;
        self.publish();
        let result = loop {
            let Ok(event) = inbox.recv() else {
                break Ok(());
            };
            match self.handle(event) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        for slot in 0..self.waiting.len() {
            if let Some(mut waiting) = self.waiting[slot].take() {
                for (result, id) in waiting.results.iter_mut().zip(&waiting.ids) {
                    if result.is_some() {
                        continue;
                    }
                    *result = Some(TxResult::Failed {
                        id: *id,
                        message: "the node stopped before the transaction was final; submit it \
                                  again"
                            .into(),
                    });
                }
                self.answer(waiting);
            }
        }
        result
    }

    /// Handles one event; `false` when the core should stop.
    fn handle(&mut self, event: Event) -> Result<bool> {
        match event {
            Event::Stop => return Ok(false),
            Event::Submit(submission) => self.submit(submission),
            Event::Fetch { ids, reply } => self.fetch(ids, reply),
            Event::Txs { from, bytes } => self.received_txs(from, &bytes),
            Event::Block { from, bytes } => {
                self.received_block(from, &bytes);
                self.try_verifications();
                self.try_commit()?;
            }
            Event::Sync { from, bytes } => {
                self.heard(&from);
                self.received_sync(from, &bytes)?;
            }
            Event::Propose { context, response } => {
                self.proposing.push((context, Instant::now(), response));
                self.try_proposals();
            }
            Event::Verify {
                context,
                digest,
                response,
            } => {
                self.verifying
                    .push((context, block_hash(&digest), response));
                self.try_verifications();
            }
            Event::Broadcast { digest, recipients } => self.broadcast(&digest, recipients),
            Event::Finalized(finalization) => {
                self.finalized(&finalization);
                self.try_commit()?;
            }
            Event::Notarized { epoch, view } => {
                if self.notarized.is_none_or(|latest| (epoch, view) > latest) {
                    self.notarized = Some((epoch, view));
                }
            }
            Event::Nullified => {
                if let Ok(mut status) = self.p.status.lock() {
                    status.nullified_views += 1;
                }
            }
            Event::Evidence {
                kind,
                epoch,
                validator,
                view,
            } => {
                let key = key_set(self.p.schedule.validators(epoch))
                    .ok()
                    .and_then(|validators| validators.get(validator).cloned())
                    .map(|key| weft_key(&key).to_string())
                    .unwrap_or_default();
                self.evidence(serde_json::json!({
                    "kind": kind,
                    "validator": key,
                    "epoch": epoch,
                    "view": view,
                }));
            }
            Event::Equivocation(equivocator) => self.equivocator = Some(equivocator),
            Event::Tick => self.tick()?,
        }
        Ok(true)
    }

    fn tick(&mut self) -> Result<()> {
        self.gate_tick();
        self.flood();
        self.try_proposals();
        self.try_verifications();
        if !self.is_validator && self.last_reflood.elapsed() >= REFLOOD_EVERY {
            self.last_reflood = Instant::now();
            self.reflood();
        }
        if !self.is_validator && self.last_follow.elapsed() >= FOLLOW_EVERY {
            self.last_follow = Instant::now();
            self.request_sync();
        }
        // A validator that has committed nothing for a while may have missed the end of its
        // epoch (its peers moved on to the next engine) or be behind: it asks a peer.
        if self.is_validator && self.last_commit.elapsed() >= STALLED {
            self.request_sync();
        }
        if self.last_online.elapsed() >= ONLINE_EVERY {
            self.last_online = Instant::now();
            self.tell_online();
        }
        if self.last_addresses.elapsed() >= ADDRESSES_EVERY {
            self.last_addresses = Instant::now();
            self.tell_addresses(Recipients::All);
        }
        if self.last_connections.elapsed() >= CONNECTIONS_EVERY {
            self.maintain_connections();
        }
        self.ask_wanted();
        self.try_commit()?;
        self.p.tail.merge_step();
        self.expire_fetches();
        self.publish();
        Ok(())
    }

    /// [`Fault::Equivocate`]: a notarize vote, validly signed, for a block other than the one
    /// this leader proposes in the view; the engine sends its own vote for the real one.
    fn double_vote(&mut self, context: &Ctx, digest: &Digest) {
        if let Some(equivocator) = &mut self.equivocator {
            equivocator(context, digest);
        }
    }

    // ---- submissions and the pool ----

    fn submit(&mut self, submission: Submission) {
        let Submission {
            transactions,
            reply,
            ..
        } = submission;
        let (transactions, ids, failures) = Admitted::check(transactions).into_parts();
        let count = transactions.len();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.waiting.push(None);
            self.waiting.len() - 1
        });
        let mut waiting = Waiting {
            ids: ids.clone(),
            results: vec![None; count],
            left: count,
            reply: Some(reply),
        };
        for (index, ((tx, id), failure)) in
            transactions.into_iter().zip(ids).zip(failures).enumerate()
        {
            let decided = if let Some(error) = failure {
                Some(TxResult::Rejected { id, error })
            } else if self.by_tx.contains_key(&id) {
                Some(TxResult::Rejected {
                    id,
                    error: RuleError::Format {
                        message: format!(
                            "transaction {id} was submitted twice and is already waiting to be \
                             committed"
                        ),
                    },
                })
            } else if !self.pool.contains_key(&id) && self.pool.len() >= self.p.config.mempool_max {
                Some(TxResult::Failed {
                    id,
                    message: format!(
                        "the node holds {} transactions waiting to be proposed \
                         (network.mempool_max); submit again later",
                        self.pool.len()
                    ),
                })
            } else {
                self.by_tx.insert(id, (slot, index));
                if !self.pool.contains_key(&id) {
                    self.outbox_bytes += encoded_len(&tx);
                    self.outbox.push(tx.clone());
                    self.pool.insert(id, tx);
                    self.order.push_back(id);
                }
                None
            };
            if let Some(result) = decided {
                waiting.results[index] = Some(result);
                waiting.left -= 1;
            }
        }
        if waiting.left == 0 {
            self.free.push(slot);
            self.answer(waiting);
        } else {
            self.waiting[slot] = Some(waiting);
        }
        if self.outbox_bytes >= wire::TX_BATCH_BYTES || self.outbox.len() >= wire::MAX_TX_BATCH {
            self.flood();
        }
    }

    /// Sends one submission's answers.
    fn answer(&self, mut waiting: Waiting) {
        let results: Vec<TxResult> = waiting.results.into_iter().flatten().collect();
        self.p
            .metrics
            .pending
            .dec_by(i64::try_from(results.len()).unwrap_or(i64::MAX));
        if let Some(reply) = waiting.reply.take() {
            // A submitter that gave up is no error.
            let _ = reply.send(results);
        }
    }

    /// Decides one pooled transaction for its submitter, if this node holds one.
    fn decide(&mut self, id: &TxId, result: TxResult) {
        let Some((slot, index)) = self.by_tx.remove(id) else {
            return;
        };
        let Some(waiting) = self.waiting.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        waiting.results[index] = Some(result);
        waiting.left -= 1;
        if waiting.left == 0
            && let Some(waiting) = self.waiting[slot].take()
        {
            self.free.push(slot);
            self.answer(waiting);
        }
    }

    /// Floods the transactions submitted here since the last flood to every peer.
    fn flood(&mut self) {
        while !self.outbox.is_empty() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(tx) = self.outbox.pop() {
                bytes += encoded_len(&tx);
                batch.push(tx);
                if batch.len() >= wire::MAX_TX_BATCH || bytes >= wire::TX_BATCH_BYTES {
                    break;
                }
            }
            let message = encode(&TxBatch {
                transactions: batch,
            });
            self.p.txs_out.send(Recipients::All, message, false);
        }
        self.outbox_bytes = 0;
    }

    /// Floods again the submissions made here that were already waiting at the last check (a
    /// node that does not vote relies on flooding alone to get them to a leader). Transactions
    /// that other peers flooded to this node are theirs to send again, not this node's.
    fn reflood(&mut self) {
        let again: Vec<Transaction> = self
            .waited
            .iter()
            .filter(|id| self.by_tx.contains_key(*id))
            .filter_map(|id| self.pool.get(id))
            .take(wire::MAX_TX_BATCH)
            .cloned()
            .collect();
        self.waited = self
            .by_tx
            .keys()
            .filter(|id| self.pool.contains_key(*id))
            .copied()
            .collect();
        if again.is_empty() {
            return;
        }
        tracing::debug!(
            transactions = again.len(),
            "flooding waiting transactions again"
        );
        for tx in again {
            self.outbox_bytes += encoded_len(&tx);
            self.outbox.push(tx);
        }
        self.flood();
    }

    fn received_txs(&mut self, from: Key, bytes: &[u8]) {
        self.heard(&from);
        let batch = match decode::<TxBatch>(bytes) {
            Ok(batch) => batch,
            Err(error) => return self.misbehaved(from, &format!("bad transaction batch: {error}")),
        };
        let fresh: Vec<Transaction> = batch
            .transactions
            .into_iter()
            .filter(|tx| !self.pool.contains_key(&tx.id()))
            .collect();
        let (transactions, ids, failures) = Admitted::check(fresh).into_parts();
        let mut bad = 0;
        for ((tx, id), failure) in transactions.into_iter().zip(ids).zip(failures) {
            if failure.is_some() {
                bad += 1;
                continue;
            }
            if self.pool.len() >= self.p.config.mempool_max {
                break;
            }
            self.pool.insert(id, tx);
            self.order.push_back(id);
        }
        if bad > 0 {
            // An honest node floods only transactions it checked.
            self.misbehaved(
                from,
                &format!("{bad} flooded transactions failed their checks"),
            );
        }
    }

    // ---- blocks ----

    fn received_block(&mut self, from: Key, bytes: &[u8]) {
        self.heard(&from);
        let proposal = match decode::<Proposal>(bytes) {
            Ok(proposal) => proposal,
            Err(error) => {
                self.misbehaved(from, &format!("bad proposal: {error}"));
                return;
            }
        };
        // Any peer may ask for a block whole (a follower lacking a transaction, too).
        if let Proposal::Request { hash } = proposal {
            self.send_whole(from, hash);
            return;
        }
        if !self.validator_keys.contains(&from) {
            // Not a validator this node knows of: perhaps one of an epoch it has not reached.
            tracing::debug!(peer = %weft_key(&from), "a block from a peer that is no validator here; dropped");
            return;
        }
        match proposal {
            Proposal::Whole(block) => {
                self.wanted_blocks.remove(&block.signed.header.hash());
                self.remember(block, bytes.len(), false);
            }
            Proposal::Compact { signed, ids } => self.received_compact(from, signed, ids),
            Proposal::Request { .. } => {}
        }
    }

    /// A proposal by transaction id: rebuilt from the pool when every transaction is there and
    /// the copies give the header's Merkle root (the leaf commits to the signature too); else
    /// the sender is asked for the whole block.
    fn received_compact(&mut self, from: Key, signed: SignedHeader, ids: Vec<TxId>) {
        let hash = signed.header.hash();
        if signed.header.height <= self.head.header.height || self.known.contains_key(&hash) {
            return;
        }
        let transactions: Option<Vec<Transaction>> =
            ids.iter().map(|id| self.pool.get(id).cloned()).collect();
        let rebuilt = transactions.filter(|transactions| {
            weft_ledger::block::merkle_levels(transactions, &ids).root()
                == signed.header.merkle_root
        });
        match rebuilt {
            Some(transactions) => {
                let block = Block {
                    signed,
                    transactions,
                };
                let size = encoded_len(&block);
                self.remember(block, size, true);
            }
            None => {
                // Asked of the leader at once, unless it was asked for already (a block the
                // engine wanted before it came is noted, not yet asked for).
                let asked = self
                    .wanted_blocks
                    .get(&hash)
                    .is_some_and(|(_, tries)| *tries > 0);
                if !asked {
                    tracing::debug!(peer = %weft_key(&from), block = %hash, "asking for a proposal whole");
                    self.p.blocks_out.send(
                        Recipients::One(from),
                        encode(&Proposal::Request { hash }),
                        true,
                    );
                    self.note_wanted(hash, 1);
                }
            }
        }
    }

    /// A block this node needs (to verify a proposal or build on a parent) and lacks: asked of
    /// every validator of the epoch if it has not come within [`SYNC_RETRY`]. Its leader may
    /// have crashed after others notarized it; then only they hold it, and without it this
    /// validator could vote on nothing that follows.
    fn want_block(&mut self, hash: BlockHash) {
        if !self.known.contains_key(&hash) && !self.wanted_blocks.contains_key(&hash) {
            self.note_wanted(hash, 0);
        }
    }

    fn note_wanted(&mut self, hash: BlockHash, tries: u32) {
        if self.wanted_blocks.len() >= 1024 {
            self.wanted_blocks.clear();
        }
        self.wanted_blocks.insert(hash, (Instant::now(), tries));
    }

    /// Asks every other validator of the epoch for each wanted block that has not come since
    /// the last ask ([`SYNC_RETRY`]), up to [`WHOLE_TRIES`] times.
    fn ask_wanted(&mut self) {
        if self.wanted_blocks.is_empty() {
            return;
        }
        let known = &self.known;
        let mut ask = Vec::new();
        self.wanted_blocks.retain(|hash, (asked, tries)| {
            if known.contains_key(hash) || *tries >= WHOLE_TRIES {
                return false;
            }
            if asked.elapsed() >= SYNC_RETRY {
                *asked = Instant::now();
                *tries += 1;
                ask.push(*hash);
            }
            true
        });
        if ask.is_empty() {
            return;
        }
        let peers: Vec<Key> = self
            .epoch
            .validators
            .iter()
            .filter(|key| **key != self.me)
            .cloned()
            .collect();
        for hash in ask {
            tracing::info!(block = %hash, "asking every validator for a block it lacks");
            self.p.blocks_out.send(
                Recipients::Some(peers.clone()),
                encode(&Proposal::Request { hash }),
                true,
            );
        }
    }

    /// Sends a block above the head, or a committed one, whole to a peer that asked.
    fn send_whole(&mut self, to: Key, hash: BlockHash) {
        let block = match self.known.get(&hash) {
            Some(known) => Some(known.block.as_ref().clone()),
            None => self.p.ledger.lock().ok().and_then(|ledger| {
                let height = ledger.store().height_of(&hash).ok().flatten()?;
                // A node that strips payloads has no whole block to give.
                self.p.filter.is_none().then_some(())?;
                ledger.store().block(height).ok().flatten()
            }),
        };
        if let Some(block) = block {
            self.p
                .blocks_out
                .send(Recipients::One(to), encode(&Proposal::Whole(block)), true);
        }
    }

    /// Keeps a block above the committed head (unvalidated until something needs it).
    fn remember(&mut self, block: Block, bytes: usize, from_pool: bool) {
        let hash = block.signed.header.hash();
        if block.signed.header.height <= self.head.header.height || self.known.contains_key(&hash) {
            return;
        }
        if self.known_bytes + bytes > MAX_KNOWN_BYTES {
            tracing::warn!(%hash, "too many blocks above the head; dropping one");
            return;
        }
        self.known_bytes += bytes;
        self.known.insert(
            hash,
            Known {
                block: Arc::new(block),
                bytes,
                validated: None,
                from_pool,
            },
        );
    }

    /// Sends this leader's proposal by transaction id (peers ask for what they lack).
    fn broadcast(&mut self, digest: &Digest, recipients: Recipients<Key>) {
        if let Some(known) = self.known.get(&block_hash(digest)) {
            let block = known.block.as_ref();
            let ids = match &known.validated {
                Some(validated) => validated.ids.clone(),
                None => block.transactions.iter().map(Transaction::id).collect(),
            };
            let compact = Proposal::Compact {
                signed: block.signed.clone(),
                ids,
            };
            self.p.blocks_out.send(recipients, encode(&compact), true);
        }
    }

    /// The blocks from the committed head (exclusive) to `hash` (inclusive), oldest first.
    fn chain_to(&self, hash: BlockHash) -> Result<Vec<BlockHash>, Lookup> {
        let mut chain = Vec::new();
        let mut cursor = hash;
        for _ in 0..=self.known.len() {
            if cursor == self.head_hash {
                chain.reverse();
                return Ok(chain);
            }
            match self.known.get(&cursor) {
                Some(known) => {
                    chain.push(cursor);
                    cursor = known.block.signed.header.previous_digest;
                }
                None => {
                    let committed = self
                        .p
                        .ledger
                        .lock()
                        .ok()
                        .and_then(|ledger| ledger.store().height_of(&cursor).ok().flatten());
                    return Err(if committed.is_some() {
                        Lookup::Stale
                    } else {
                        Lookup::Missing(cursor)
                    });
                }
            }
        }
        Err(Lookup::Stale)
    }

    /// Validates the blocks of `chain` that are not yet, each on the state its parent left;
    /// returns the state changes of the whole chain.
    fn validate_chain(&mut self, chain: &[BlockHash]) -> Result<StateDelta, Lookup> {
        let ledger = self.p.ledger.clone();
        let ledger = ledger
            .lock()
            .map_err(|_| Lookup::Invalid("ledger lock poisoned".into()))?;
        let snapshot = ledger
            .store()
            .snapshot()
            .map_err(|error| Lookup::Invalid(error.to_string()))?;
        let mut state = Overlay::new(&snapshot);
        let mut parent = self.head.clone();
        for hash in chain {
            let Some(known) = self.known.get_mut(hash) else {
                return Err(Lookup::Missing(*hash));
            };
            let validated = match &known.validated {
                Some(validated) => validated.clone(),
                None => {
                    let signatures = if known.from_pool {
                        Signatures::CheckedEarlier
                    } else {
                        Signatures::Verify
                    };
                    let validated = validate_block_with(
                        &state,
                        self.chain_id,
                        Some(&parent),
                        &known.block,
                        signatures,
                    )
                    .map_err(|error| Lookup::Invalid(error.to_string()))?;
                    let validated = Arc::new(validated);
                    known.validated = Some(validated.clone());
                    validated
                }
            };
            state.delta.merge(&validated.delta);
            parent = known.block.signed.clone();
        }
        Ok(state.into_delta())
    }

    fn try_verifications(&mut self) {
        use commonware_consensus::Epochable as _;
        let pending = std::mem::take(&mut self.verifying);
        for (context, hash, response) in pending {
            // A request of an engine that is stopping (its epoch is over) goes unanswered.
            if response.is_closed() || context.epoch().get() != self.epoch.number {
                continue;
            }
            match self.verify(&context, hash) {
                Some(verdict) => {
                    let _ = response.send(verdict);
                }
                None => self.verifying.push((context, hash, response)),
            }
        }
    }

    /// Is `hash` a valid block for `context`? `None` while its block or an ancestor is missing.
    ///
    /// A leader may propose its view's parent again (a re-proposal): valid only for the last
    /// block of the epoch, which then gets a view of its own to be finalized in, since no block
    /// may follow it in this epoch.
    fn verify(&mut self, context: &Ctx, hash: BlockHash) -> Option<bool> {
        let reproposal = block_hash(&context.parent.1) == hash;
        let (parent, producer, height) = {
            // A proposal of the committed head itself is only ever a re-proposal; any other
            // waits for a block above the head, as before.
            let header = if reproposal && hash == self.head_hash {
                &self.head.header
            } else if let Some(known) = self.known.get(&hash) {
                &known.block.signed.header
            } else {
                self.want_block(hash);
                return None;
            };
            (header.previous_digest, header.producer, header.height)
        };
        let refuse = |core: &mut Self, reason: String| {
            core.refused(hash, height, producer, &reason);
            Some(false)
        };
        if !reproposal && parent != block_hash(&context.parent.1) {
            return refuse(
                self,
                format!("it names parent {parent}, the view's parent is another block"),
            );
        }
        if !reproposal && producer != weft_key(&context.leader) {
            return refuse(
                self,
                format!("it is sealed by {producer}, not by the view's leader"),
            );
        }
        let chain = match self.chain_to(hash) {
            Ok(chain) => chain,
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                self.request_sync();
                return None;
            }
            Err(Lookup::Stale) => return Some(false),
            Err(Lookup::Invalid(reason)) => return refuse(self, reason),
        };
        match self.validate_chain(&chain) {
            Ok(delta) => match self.epoch_end(&delta) {
                end if reproposal && end != Some(height) => refuse(
                    self,
                    "it is proposed again, and only the last block of an epoch may be".into(),
                ),
                Some(end) if height > end => refuse(
                    self,
                    format!(
                        "it is at height {height}, after the last block ({end}) of epoch {}: \
                         the next validators produce it",
                        self.epoch.number
                    ),
                ),
                _ => Some(true),
            },
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                None
            }
            Err(Lookup::Stale) => Some(false),
            Err(Lookup::Invalid(reason)) => refuse(self, reason),
        }
    }

    /// The last height of the current epoch, with `delta` (the changes of the blocks above the
    /// committed head) on top of the committed schedule; `None` while no change is scheduled.
    fn epoch_end(&self, delta: &StateDelta) -> Option<u64> {
        match &delta.validators {
            Some(changes) => changes
                .get(self.epoch.number as usize)
                .map(|change| change.from_height - 1),
            None => self.p.schedule.end(self.epoch.number),
        }
    }

    /// [`Core::epoch_end`] from the blocks of `chain` already validated (no state is read).
    fn chain_end(&self, chain: &[BlockHash]) -> Option<u64> {
        let latest = chain
            .iter()
            .rev()
            .filter_map(|hash| self.known.get(hash)?.validated.clone())
            .find(|validated| validated.delta.validators.is_some());
        match latest {
            Some(validated) => self.epoch_end(&validated.delta),
            None => self.p.schedule.end(self.epoch.number),
        }
    }

    /// Notes a refused block: logged, counted and recorded as evidence against its producer.
    fn refused(
        &mut self,
        hash: BlockHash,
        height: u64,
        producer: weft_core::PublicKey,
        reason: &str,
    ) {
        tracing::warn!(%hash, height, %producer, reason, "refused a proposed block");
        if let Ok(mut status) = self.p.status.lock() {
            status.refused_blocks += 1;
        }
        self.evidence(serde_json::json!({
            "kind": "invalid_block",
            "validator": producer.to_string(),
            "block": hash.to_string(),
            "height": height,
            "reason": reason,
        }));
    }

    fn try_proposals(&mut self) {
        use commonware_consensus::Epochable as _;
        let pending = std::mem::take(&mut self.proposing);
        for (context, asked, response) in pending {
            if response.is_closed() || context.epoch().get() != self.epoch.number {
                continue;
            }
            match self.propose(&context, asked) {
                Some(Some(digest)) => {
                    if self.fault == Some(Fault::Equivocate) {
                        // With the leader's own vote for its block on the way, a second one
                        // for another block: whichever a validator receives second, it holds
                        // both, signed, before the view has a certificate.
                        self.double_vote(&context, &digest);
                    }
                    let _ = response.send(digest);
                }
                // Declined: the engine moves on.
                Some(None) => {}
                None => self.proposing.push((context, asked, response)),
            }
        }
    }

    /// Builds this leader's block for `context`: `None` to wait (missing parent, or letting
    /// transactions gather), `Some(None)` to decline.
    fn propose(&mut self, context: &Ctx, asked: Instant) -> Option<Option<Digest>> {
        let parent_hash = block_hash(&context.parent.1);
        let reproposal = Some(Some(context.parent.1));
        let chain = match self.chain_to(parent_hash) {
            Ok(chain) => chain,
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                self.request_sync();
                return None;
            }
            Err(Lookup::Stale | Lookup::Invalid(_)) => return Some(None),
        };
        let parent = match chain.last() {
            Some(hash) => self.known.get(hash)?.block.signed.clone(),
            None => self.head.clone(),
        };
        // The epoch's last block is proposed again until it is final: nothing follows it here.
        if self.chain_end(&chain) == Some(parent.header.height) {
            tracing::info!(
                height = parent.header.height,
                "proposing the epoch's last block again"
            );
            return reproposal;
        }
        // Cheap checks first (this runs every tick while a proposal waits): let transactions
        // gather for `block_interval_ms` after the parent unless a block's worth waits.
        let idle_over = asked.elapsed() >= Duration::from_millis(self.p.config.idle_block_ms);
        let since_parent = now_ms().saturating_sub(parent.header.timestamp);
        if self.pool.is_empty() && !idle_over {
            return None;
        }
        if !self.pool.is_empty()
            && self.pool.len() < self.p.max_txs
            && since_parent < self.p.config.block_interval_ms
        {
            return None;
        }
        // Every block of the chain is validated first: their transactions are not offered again.
        let state = match self.validate_chain(&chain) {
            Ok(state) => state,
            Err(Lookup::Missing(missing)) => {
                self.want_block(missing);
                return None;
            }
            Err(_) => return Some(None),
        };
        match self.epoch_end(&state) {
            Some(end) if parent.header.height == end => {
                tracing::info!(height = end, "proposing the epoch's last block again");
                return reproposal;
            }
            Some(end) if parent.header.height > end => return Some(None),
            _ => {}
        }
        let in_chain: HashSet<TxId> = chain
            .iter()
            .filter_map(|hash| self.known.get(hash)?.validated.clone())
            .flat_map(|validated| validated.ids.clone())
            .collect();
        // Drop what was decided since it was pooled.
        while let Some(front) = self.order.front() {
            if self.pool.contains_key(front) {
                break;
            }
            self.order.pop_front();
        }
        let mut ids = Vec::new();
        let mut bytes = 0;
        for id in &self.order {
            if ids.len() >= self.p.max_txs || bytes >= PROPOSAL_BYTES {
                break;
            }
            if in_chain.contains(id) {
                continue;
            }
            if let Some(tx) = self.pool.get(id) {
                bytes += encoded_len(tx);
                ids.push(*id);
            }
        }
        // Everything pooled is already in the chain: wait for more, or the idle block.
        if ids.is_empty() && !idle_over {
            return None;
        }
        let transactions: Vec<Transaction> = ids
            .iter()
            .filter_map(|id| self.pool.get(id).cloned())
            .collect();
        let assembled = {
            let ledger = self.p.ledger.clone();
            let ledger = ledger.lock().ok()?;
            let snapshot = ledger.store().snapshot().ok()?;
            let mut view = Overlay::new(&snapshot);
            view.delta = state;
            assemble(
                &view,
                self.chain_id,
                &parent,
                Admitted::checked_earlier(transactions, ids),
                &self.p.key,
                now_ms(),
            )
        };
        let Assembled {
            block,
            validated,
            rejected,
            ..
        } = match assembled {
            Ok(assembled) => assembled,
            Err(error) => {
                tracing::error!(%error, "cannot build a proposal");
                return Some(None);
            }
        };
        for (_, id, error) in rejected {
            self.pool.remove(&id);
            self.decide(&id, TxResult::Rejected { id, error });
        }
        // A test fault changes the block after it was built: its state changes and ids are then
        // not those of the block, so none are kept with it.
        let broken = self
            .fault
            .and_then(|fault| fault.broken(&block, &self.p.key));
        let (block, validated) = match broken {
            Some(broken) => (broken, None),
            None => (block, Some(Arc::new(validated))),
        };
        let hash = block.signed.header.hash();
        let size = encoded_len(&block);
        self.known_bytes += size;
        self.known.insert(
            hash,
            Known {
                block: Arc::new(block),
                bytes: size,
                validated,
                // A block a test fault altered is validated like any other received.
                from_pool: false,
            },
        );
        Some(Some(commonware_cryptography::sha256::Digest(hash.0.0)))
    }

    // ---- finality and commits ----

    fn finalized(&mut self, finalization: &Finalization) {
        use commonware_consensus::{Epochable as _, Viewable as _};
        let hash = block_hash(&finalization.proposal.payload);
        let round = (finalization.epoch().get(), finalization.view().get());
        if self.target.is_none_or(|(latest, _)| round > latest) {
            self.target = Some((round, hash));
        }
        self.certificates
            .insert(hash, (round, finalization.encode().to_vec()));
        // Certificates of blocks that never arrive are not kept for ever.
        if self.certificates.len() > 4096
            && let Some(((epoch, view), _)) = self.target
        {
            self.certificates
                .retain(|_, (round, _)| *round > (epoch, view.saturating_sub(4096)));
        }
    }

    /// Commits every block up to the latest finalized one that is here; asks a peer for the
    /// rest.
    fn try_commit(&mut self) -> Result<()> {
        if self.halted {
            return Ok(());
        }
        let Some((_, target)) = self.target else {
            return Ok(());
        };
        if target == self.head_hash {
            self.set_sync("synced");
            return Ok(());
        }
        let chain = match self.chain_to(target) {
            Ok(chain) => chain,
            Err(Lookup::Missing(_)) => {
                self.set_sync("catching up");
                self.request_sync();
                return Ok(());
            }
            Err(Lookup::Stale) => {
                let committed = self
                    .p
                    .ledger
                    .lock()
                    .ok()
                    .and_then(|ledger| ledger.store().height_of(&target).ok().flatten());
                if committed.is_none() {
                    tracing::error!(
                        block = %target,
                        "a finalized block does not extend the committed chain: more validators \
                         are faulty than the network tolerates; this node stops committing"
                    );
                    self.halted = true;
                }
                return Ok(());
            }
            Err(Lookup::Invalid(_)) => return Ok(()),
        };
        self.commit_chain(chain)?;
        if self.head_hash == target {
            self.set_sync("synced");
        }
        Ok(())
    }

    /// Commits final blocks in order, the first a child of the committed head; stops if the
    /// node halts.
    fn commit_chain(&mut self, chain: Vec<BlockHash>) -> Result<()> {
        for hash in chain {
            self.commit(hash)?;
            if self.halted {
                break;
            }
        }
        Ok(())
    }

    /// Commits one final block, the child of the committed head.
    fn commit(&mut self, hash: BlockHash) -> Result<()> {
        let started = Instant::now();
        if let Err(Lookup::Invalid(reason)) = self.validate_chain(&[hash]) {
            tracing::error!(
                block = %hash,
                reason,
                "a finalized block breaks a rule: more validators are faulty than the network \
                 tolerates; this node stops committing"
            );
            self.halted = true;
            return Ok(());
        }
        let Some(known) = self.known.remove(&hash) else {
            return Ok(());
        };
        self.known_bytes -= known.bytes;
        let Some(validated) = known.validated else {
            return Ok(());
        };
        {
            let mut ledger = self
                .p
                .ledger
                .lock()
                .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
            let mask = self
                .p
                .filter
                .as_ref()
                .and_then(|filter| filter.mask(&known.block.transactions));
            // The block, the certificate that finalized it and its changes to the peers are
            // written in one durable transaction.
            let certificate = self.certificates.remove(&hash).map(|(_, bytes)| bytes);
            if let Err(error) = ledger.commit_final(
                &known.block,
                &validated,
                mask.as_deref(),
                certificate.as_deref(),
            ) {
                bail!("cannot commit final block {hash}: {error}");
            }
        }
        let header = &known.block.signed.header;
        let height = header.height;
        self.head = known.block.signed.clone();
        self.head_hash = hash;
        // Catch-up headers at or below the new head are done with; one that is not the block
        // committed at its height would mean conflicting final blocks: start again from the head.
        while let Some((header, header_hash)) = self.headers.front() {
            if header.header.height > height {
                break;
            }
            if header.header.height == height && *header_hash != hash {
                tracing::error!(
                    height,
                    "a catch-up header is not the committed block; dropped"
                );
                self.headers.clear();
                break;
            }
            self.headers.pop_front();
        }
        if let Some(schedule) = &validated.delta.validators {
            self.p.schedule.changes = schedule.clone();
            if let Some(change) = schedule.last() {
                tracing::info!(
                    from_height = change.from_height,
                    validators = change.validators.len(),
                    "a validator change is scheduled"
                );
            }
        }
        let epoch_over = self.p.schedule.end(self.epoch.number) == Some(height);
        let changes = peer_changes(&known.block.transactions);
        self.last_commit = Instant::now();
        if epoch_over {
            self.switch_epoch()?;
        }
        if validated.delta.validators.is_some() {
            // A validator change was scheduled (or replaced): the next epoch's validators are
            // dialled too.
            self.schedule_changed();
        }
        if !changes.is_empty() {
            self.members_changed(height, &changes);
        }
        for (index, id) in validated.ids.iter().enumerate() {
            self.pool.remove(id);
            self.decide(
                id,
                TxResult::Committed {
                    id: *id,
                    position: Position {
                        height,
                        index: index as u32,
                    },
                },
            );
        }
        // Blocks at or below the new head that are not it lost: their branch is dead.
        let head_height = height;
        let mut dropped = 0;
        self.known.retain(|_, known| {
            let keep = known.block.signed.header.height > head_height;
            if !keep {
                dropped += known.bytes;
            }
            keep
        });
        self.known_bytes -= dropped;
        self.p
            .tail
            .committed(Some(height), validated.ids.len(), 0, started.elapsed());
        Ok(())
    }

    // ---- catch-up: headers first, then bodies ----

    /// The peers to ask for headers and bodies, any that may hold the chain: the validators of
    /// every epoch, the seeds (an archive node, say) and every other peer heard from lately
    /// (connected), but this node and those to avoid (unless no other is left). Those heard
    /// from lately come first.
    fn sync_peers(&self) -> Vec<Key> {
        let mut all: Vec<Key> = self
            .validator_keys
            .iter()
            .chain(&self.seed_keys)
            .chain(self.seen.keys())
            .filter(|key| **key != self.me)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        let now = Instant::now();
        let mut peers: Vec<Key> = all
            .iter()
            .filter(|key| self.avoid.get(*key).is_none_or(|until| *until <= now))
            .cloned()
            .collect();
        if peers.is_empty() {
            peers = all;
        }
        peers.sort_by_key(|key| !self.seen.contains_key(key));
        peers
    }

    /// [`Core::sync_peers`], only those heard from lately when there are any: a request to a
    /// peer that is not connected goes nowhere.
    fn connected_sync_peers(&self) -> Vec<Key> {
        let mut peers = self.sync_peers();
        if peers
            .first()
            .is_some_and(|first| self.seen.contains_key(first))
        {
            peers.retain(|key| self.seen.contains_key(key));
        }
        peers
    }

    /// A request for the headers after the committed head (catch-up, and the start gate's probe).
    fn headers_request(&self) -> Vec<u8> {
        encode(&Sync::HeadersRequest {
            from_height: self.head.header.height + 1,
            max_headers: SYNC_HEADERS,
        })
    }

    /// Moves catch-up on: asks for the bodies of the final headers that are here, or, when
    /// none wait, one peer (a different one each time) for the headers after the head — every
    /// candidate at once when none was heard from lately.
    fn request_sync(&mut self) {
        if !self.headers.is_empty() {
            self.request_bodies();
            return;
        }
        if self
            .sync_sent
            .is_some_and(|sent| sent.elapsed() < SYNC_RETRY)
        {
            return;
        }
        let candidates = self.connected_sync_peers();
        if candidates.is_empty() {
            return;
        }
        let from_height = self.head.header.height + 1;
        let request = self.headers_request();
        if self.seen.contains_key(&candidates[0]) {
            self.sync_turn = self.sync_turn.wrapping_add(1);
            let peer = candidates[self.sync_turn % candidates.len()].clone();
            tracing::debug!(
                peer = %weft_key(&peer),
                from_height,
                "asking for the headers after the head"
            );
            self.p.sync_out.send(Recipients::One(peer), request, false);
        } else {
            // No peer heard from lately (just started, say): all are asked at once, as only
            // those connected receive it; the first answer that follows the head is taken, the
            // others are let go.
            tracing::debug!(
                peers = candidates.len(),
                from_height,
                "asking every peer for the headers after the head"
            );
            self.p
                .sync_out
                .send(Recipients::Some(candidates), request, false);
        }
        self.sync_sent = Some(Instant::now());
    }

    /// Asks for the bodies of waiting headers that are neither here nor asked for: runs of up
    /// to [`SYNC_BODIES`] blocks, each to a different peer, at most [`BODY_REQUESTS`] out.
    /// A request unanswered for [`SYNC_RETRY`] goes to another peer.
    fn request_bodies(&mut self) {
        let now = Instant::now();
        let head = self.head.header.height;
        let mut unanswered = Vec::new();
        self.bodies_asked.retain(|first, (peer, count, sent)| {
            let late = now.duration_since(*sent) >= SYNC_RETRY;
            if late {
                unanswered.push(peer.clone());
            }
            *first + u64::from(*count) > head + 1 && !late
        });
        for peer in unanswered {
            tracing::debug!(peer = %weft_key(&peer), "a body request went unanswered; asking another peer");
            self.avoid.insert(peer, now + PEER_SEEN);
        }
        let candidates = self.connected_sync_peers();
        if candidates.is_empty() {
            return;
        }
        let mut height = head + 1;
        let last = self
            .headers
            .back()
            .map_or(head, |(header, _)| header.header.height);
        let mut tries = 0;
        while height <= last
            && self.bodies_asked.len() < BODY_REQUESTS.min(candidates.len())
            && tries < candidates.len() * 2
        {
            if let Some((first, (_, count, _))) = self.bodies_asked.range(..=height).next_back()
                && first + u64::from(*count) > height
            {
                height = first + u64::from(*count);
                continue;
            }
            let here = |core: &Self, height: u64| {
                core.known
                    .contains_key(&core.headers[(height - head - 1) as usize].1)
            };
            if here(self, height) {
                height += 1;
                continue;
            }
            // The rest of the run is shared among the peers that can still be asked.
            let free = (BODY_REQUESTS.min(candidates.len()) - self.bodies_asked.len()).max(1);
            let share = (last - height + 1).div_ceil(free as u64);
            let most = u32::try_from(share)
                .unwrap_or(SYNC_BODIES)
                .clamp(1, SYNC_BODIES);
            let mut count = 1;
            while count < most
                && height + u64::from(count) <= last
                && !here(self, height + u64::from(count))
                && !self.bodies_asked.contains_key(&(height + u64::from(count)))
            {
                count += 1;
            }
            // A peer with no request out, in turn.
            tries += 1;
            self.sync_turn = self.sync_turn.wrapping_add(1);
            let peer = candidates[self.sync_turn % candidates.len()].clone();
            if self.bodies_asked.values().any(|(asked, ..)| *asked == peer) {
                continue;
            }
            tracing::debug!(peer = %weft_key(&peer), from_height = height, count, "asking for block bodies");
            self.p.sync_out.send(
                Recipients::One(peer.clone()),
                encode(&Sync::BodiesRequest {
                    from_height: height,
                    count,
                }),
                false,
            );
            self.bodies_asked.insert(height, (peer, count, now));
            height += u64::from(count);
        }
    }

    fn received_sync(&mut self, from: Key, bytes: &[u8]) -> Result<()> {
        let message = match decode::<Sync>(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.misbehaved(from, &format!("bad sync message: {error}"));
                return Ok(());
            }
        };
        match message {
            Sync::HeadersRequest {
                from_height,
                max_headers,
            } => self.answer_headers(from, from_height, max_headers),
            Sync::Headers {
                headers,
                finalization,
            } => {
                self.sync_sent = None;
                self.answered(&from);
                self.take_headers(from, headers, &finalization)?;
            }
            Sync::BodiesRequest { from_height, count } => {
                self.answer_bodies(from, from_height, count)
            }
            Sync::Bodies {
                from_height,
                bodies,
            } => self.take_bodies(from, from_height, bodies)?,
            Sync::ProofRequest { ids } => self.answer_proofs(from, &ids),
            Sync::Proofs { proofs } => self.take_proofs(from, &proofs),
            Sync::Online { dialable, peers } => self.take_online(from, dialable, &peers),
            Sync::Addresses { records } => self.take_addresses(from, records),
        }
        Ok(())
    }

    /// `from` was heard from: a peer not heard from lately (new, or back) is sent the signed
    /// addresses this node holds at once, so that it can dial the peers it lacks.
    fn heard(&mut self, from: &Key) {
        if self.seen.insert(from.clone(), Instant::now()).is_none() {
            self.tell_addresses(Recipients::One(from.clone()));
        }
    }

    // ---- connections ----

    /// Every [`CONNECTIONS_EVERY`]: notes which peers the p2p network is connected with, drops
    /// the picks whose connection dropped (or that did not connect within [`PICK_GRACE`]),
    /// picks others in their place until `network.connections` are picked, and gives the p2p
    /// network the peer set if it changed (docs/network.md, "Connections").
    fn maintain_connections(&mut self) {
        self.last_connections = Instant::now();
        // The router's list of connections (commonware's `Recipients::All`); nothing is sent.
        if let Ok(checked) = self.p.sync_out.check(Recipients::All) {
            self.connected = checked.recipients().into_iter().collect();
        }
        let now = Instant::now();
        self.passed_over.retain(|_, until| *until > now);
        let primary: HashSet<Key> = super::primary_peers(&self.p.schedule, self.epoch.number)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let lost: Vec<Key> = self
            .picks
            .iter()
            .filter(|(key, picked)| {
                primary.contains(*key)
                    || !self.may_pick(key)
                    || (!self.connected.contains(*key) && picked.elapsed() >= PICK_GRACE)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in lost {
            self.picks.remove(&key);
            if !primary.contains(&key) {
                tracing::info!(peer = %weft_key(&key), "a peer picked to connect with is not connected; picking another");
                self.passed_over.insert(key, now + PASSED_OVER_FOR);
            }
        }
        let wanted = self.p.config.connections;
        if self.picks.len() < wanted {
            for key in self.pick_candidates(&primary) {
                if self.picks.len() >= wanted {
                    break;
                }
                tracing::debug!(peer = %weft_key(&key), "picked a peer to connect with");
                self.picks.insert(key, now);
            }
        }
        self.retrack();
    }

    /// May `key` be picked as one of the peers besides the validators: a peer this network
    /// knows (a configured follower or seed, or an admitted peer), not this node, not cut off,
    /// with an address to dial.
    fn may_pick(&self, key: &Key) -> bool {
        *key != self.me
            && (self.p.followers.position(key).is_some()
                || self.seed_keys.contains(key)
                || self.member_keys.contains(key))
            && !self.cut_off.contains_key(key)
            && self.known_address(key).is_some()
    }

    /// The peers that may be picked and are not, best first: the configured seeds, then peers
    /// online (heard from here or reported by a peer) this node has no connection with, then
    /// the others, then those passed over lately. Within each group the order is this node's
    /// own (a hash of both keys), so that many nodes do not all pick the same peer.
    fn pick_candidates(&self, primary: &HashSet<Key>) -> Vec<Key> {
        use std::hash::{Hash as _, Hasher as _};
        let online: HashSet<&Key> = self
            .reported
            .values()
            .flat_map(|(_, keys)| keys)
            .chain(self.seen.keys())
            .collect();
        let mut candidates: Vec<(u8, u64, Key)> = self
            .p
            .followers
            .iter()
            .chain(&self.seed_keys)
            .chain(&self.member_keys)
            .filter(|key| {
                !primary.contains(*key) && !self.picks.contains_key(*key) && self.may_pick(key)
            })
            .map(|key| {
                let group = if self.passed_over.contains_key(key) {
                    4
                } else if self.seed_keys.contains(key) {
                    0
                } else if self.connected.contains(key) {
                    2
                } else if online.contains(key) {
                    1
                } else {
                    3
                };
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (self.me.as_ref(), key.as_ref()).hash(&mut hasher);
                (group, hasher.finish(), key.clone())
            })
            .collect();
        candidates.sort();
        candidates.dedup_by(|a, b| a.2 == b.2);
        candidates.into_iter().map(|(_, _, key)| key).collect()
    }

    /// Where `key` is dialled, as far as this node knows.
    fn known_address(&self, key: &Key) -> Option<std::net::SocketAddr> {
        self.addresses.get(key)?.parse().ok()
    }

    /// The address to give the p2p network for `key`. commonware drops a live connection
    /// when a peer's address changes, so a connected peer keeps the one it was given; else
    /// the address this node knows, or none ([`unknown_address`]: never dialled).
    fn address_for(&self, key: &Key) -> Address {
        if self.connected.contains(key)
            && let Some((primary, secondary)) = &self.tracked
            && let Some(given) = primary.get(key).or_else(|| secondary.get(key))
        {
            return given.clone();
        }
        self.known_address(key)
            .map_or_else(unknown_address, Address::Symmetric)
    }

    /// Gives the p2p network the peers to dial — the validators of this epoch and the next,
    /// then the picks — and those to accept — the configured followers and seeds, then the
    /// admitted peers (those beyond the room reserved at start are left out, the last by key
    /// first) — when that changed since the last time (under a new id of this node's own).
    fn retrack(&mut self) {
        let validators =
            super::primary_peers(&self.p.schedule, self.epoch.number).unwrap_or_default();
        let mut picks: Vec<Key> = self.picks.keys().cloned().collect();
        picks.sort();
        let primary: Vec<(Key, Address)> = validators
            .iter()
            .chain(&picks)
            .map(|key| (key.clone(), self.address_for(key)))
            .collect();
        let secondary: Vec<(Key, Address)> = self
            .p
            .followers
            .iter()
            .chain(&self.seed_keys)
            .chain(&self.member_keys)
            .map(|key| (key.clone(), self.address_for(key)))
            .collect();
        let (set, left_out) = super::peer_set(primary, secondary, &self.me, self.p.peers_per_set);
        if self.tracked.as_ref() == Some(&set) {
            return;
        }
        if left_out > 0 {
            tracing::error!(
                left_out,
                capacity = self.p.peers_per_set,
                "more peers than this node reserved room for at start; restart it to connect \
                 them all"
            );
        }
        self.track_id += 1;
        let (primary, secondary) = &set;
        self.dialed = primary.keys().cloned().collect();
        let peers = AddressableTrackedPeers::new(
            Map::from_iter_dedup(primary.clone()),
            Map::from_iter_dedup(secondary.clone()),
        );
        let _ = self.p.blocker.track(self.track_id, peers);
        self.tracked = Some(set);
    }

    /// Sends `to` this node's own signed address and those it holds of other peers.
    fn tell_addresses(&mut self, to: Recipients<Key>) {
        let mut records = vec![self.own_address.clone()];
        records.extend(
            self.signed_addresses
                .values()
                .take(wire::MAX_PEER_ADDRESSES - 1)
                .cloned(),
        );
        self.p
            .sync_out
            .send(to, encode(&Sync::Addresses { records }), false);
    }

    /// Signed addresses from a peer: each one of a peer this network knows, newer than the one
    /// held and dated no further ahead than [`ADDRESS_SKEW_MS`], is checked and kept (and
    /// passed on). A signature that does not verify gets the sender cut off: an honest node
    /// passes on only addresses it checked.
    fn take_addresses(&mut self, from: Key, records: Vec<wire::PeerAddress>) {
        let latest = now_ms() + ADDRESS_SKEW_MS;
        for record in records {
            let Ok(key) = super::engine_key(&record.key) else {
                continue;
            };
            if key == self.me
                || !self.is_identity(&key)
                || record.time_ms > latest
                || self
                    .signed_addresses
                    .get(&key)
                    .is_some_and(|held| held.time_ms >= record.time_ms)
            {
                continue;
            }
            if let Err(error) = record.verify(self.chain_id) {
                self.misbehaved(
                    from,
                    &format!("a forged address of peer {}: {error}", record.key),
                );
                return;
            }
            self.learn_address(&key, &record.address);
            self.signed_addresses.insert(key, record);
        }
    }

    /// Notes where `key` is dialled, in memory and in the address book.
    fn learn_address(&mut self, key: &Key, address: &str) {
        if self.addresses.get(key).map(String::as_str) == Some(address) {
            return;
        }
        tracing::info!(peer = %weft_key(key), address, "learnt a peer's address");
        self.addresses.insert(key.clone(), address.to_string());
        if let Err(error) = self.p.addresses.learn_address(&weft_key(key), address) {
            tracing::warn!(%error, "cannot write the address book");
        }
    }

    // ---- who is online ----

    /// Tells every peer whom this node heard from lately.
    fn tell_online(&mut self) {
        let peers: Vec<weft_core::PublicKey> = self
            .seen
            .iter()
            .filter(|(_, when)| when.elapsed() < PEER_SEEN)
            .map(|(key, _)| weft_key(key))
            .take(wire::MAX_ONLINE_PEERS)
            .collect();
        let message = Sync::Online {
            dialable: self.own_address.address.clone(),
            peers,
        };
        self.p
            .sync_out
            .send(Recipients::All, encode(&message), false);
    }

    /// A peer's address and list of whom it heard from. The address goes into the address book
    /// (the message came over the connection its key authenticated: only a peer itself says
    /// where it is); the list is kept for [`PEER_SEEN`], only the identities this network
    /// knows (a peer cannot make others list keys that are not part of it).
    fn take_online(&mut self, from: Key, dialable: String, peers: &[weft_core::PublicKey]) {
        if self.is_identity(&from) {
            self.learn_address(&from, &dialable);
        }
        let known: Vec<Key> = peers
            .iter()
            .filter_map(|key| super::engine_key(key).ok())
            .filter(|key| *key != self.me && self.is_identity(key))
            .collect();
        self.reported.insert(from, (Instant::now(), known));
    }

    /// Is `key` a validator of some epoch, a configured follower or seed, or an admitted peer?
    fn is_identity(&self, key: &Key) -> bool {
        self.validator_keys.contains(key)
            || self.p.followers.position(key).is_some()
            || self.seed_keys.contains(key)
            || self.member_keys.contains(key)
    }

    // ---- whole copies of stripped transactions ----

    /// Asks every peer for proofs of `ids` (the first good answer for each wins).
    fn fetch(&mut self, ids: Vec<TxId>, reply: tokio::sync::oneshot::Sender<Vec<Fetched>>) {
        let wanted: HashSet<TxId> = ids.into_iter().take(wire::MAX_PROOF_REQUEST).collect();
        let mut peers: Vec<Key> = self
            .validator_keys
            .iter()
            .chain(self.p.followers.iter())
            .chain(&self.seed_keys)
            .filter(|key| **key != self.me)
            .cloned()
            .collect();
        peers.sort();
        peers.dedup();
        if let Ok(members) = super::admitted_peers(&self.p.ledger) {
            for key in members.keys() {
                if let Ok(key) = super::engine_key(key)
                    && key != self.me
                    && !peers.contains(&key)
                {
                    peers.push(key);
                }
            }
        }
        if wanted.is_empty() || peers.is_empty() {
            let _ = reply.send(Vec::new());
            return;
        }
        tracing::debug!(
            transactions = wanted.len(),
            peers = peers.len(),
            "asking peers for whole transactions"
        );
        let request = encode(&Sync::ProofRequest {
            ids: wanted.iter().copied().collect(),
        });
        self.p
            .sync_out
            .send(Recipients::Some(peers), request, false);
        self.fetching.push(PendingFetch {
            wanted,
            found: Vec::new(),
            reply: Some(reply),
            deadline: Instant::now() + FETCH_TIMEOUT,
        });
    }

    /// Answers a proof request with the proofs of the transactions held whole here.
    fn answer_proofs(&mut self, to: Key, ids: &[TxId]) {
        let mut proofs = Vec::new();
        let mut bytes = 0;
        if let Ok(ledger) = self.p.ledger.lock() {
            for id in ids {
                let whole = matches!(
                    ledger.store().tx(id),
                    Ok(Some((ref tx, _))) if tx.payload.is_some()
                );
                if !whole {
                    continue;
                }
                match weft_ledger::proof::build(ledger.store(), id)
                    .map_err(anyhow::Error::from)
                    .and_then(|proof| Ok(serde_json::to_string(&proof)?))
                {
                    Ok(proof) => {
                        bytes += proof.len();
                        proofs.push(proof);
                        if bytes >= wire::PROOF_ANSWER_BYTES {
                            break;
                        }
                    }
                    Err(error) => tracing::error!(%error, tx = %id, "cannot build a proof"),
                }
            }
        }
        tracing::debug!(peer = %weft_key(&to), asked = ids.len(), proofs = proofs.len(), "answering a proof request");
        self.p
            .sync_out
            .send(Recipients::One(to), encode(&Sync::Proofs { proofs }), false);
    }

    /// Takes proofs from a peer: each must verify, be of a block this node holds (the same
    /// block: same hash at that height) and carry the whole transaction.
    fn take_proofs(&mut self, from: Key, proofs: &[String]) {
        for text in proofs {
            let checked = serde_json::from_str::<weft_ledger::proof::InclusionProof>(text)
                .map_err(|error| error.to_string())
                .and_then(|proof| {
                    weft_ledger::proof::verify(&proof, None)
                        .map(|verified| (proof, verified))
                        .map_err(|error| error.to_string())
                });
            let (proof, verified) = match checked {
                Ok(checked) => checked,
                Err(error) => {
                    self.misbehaved(from, &format!("a proof that does not verify: {error}"));
                    return;
                }
            };
            if !self
                .fetching
                .iter()
                .any(|fetch| fetch.wanted.contains(&verified.tx_id))
            {
                continue;
            }
            let mine = self.p.ledger.lock().ok().and_then(|ledger| {
                ledger
                    .store()
                    .signed_header(verified.height)
                    .ok()
                    .flatten()
                    .map(|signed| signed.header.hash())
            });
            match mine {
                Some(hash) if hash == verified.block_hash => {}
                // Not final here yet: nothing to compare it with.
                None => continue,
                Some(hash) => {
                    self.evidence(serde_json::json!({
                        "kind": "conflicting_block_in_proof",
                        "peer": weft_key(&from).to_string(),
                        "height": verified.height,
                        "block": verified.block_hash.to_hex(),
                        "final_here": hash.to_hex(),
                    }));
                    self.misbehaved(from, "a proof from a block that is not final here");
                    return;
                }
            }
            if verified.transaction.payload.is_none() {
                continue;
            }
            let fetched = Fetched {
                tx: verified.transaction,
                proof,
                from: weft_key(&from).to_string(),
            };
            for fetch in &mut self.fetching {
                if fetch.wanted.remove(&verified.tx_id) {
                    fetch.found.push(fetched.clone());
                }
            }
        }
        self.expire_fetches();
    }

    /// Answers the fetches that have everything, or whose time is up.
    fn expire_fetches(&mut self) {
        let now = Instant::now();
        self.fetching.retain_mut(|fetch| {
            let done = fetch.wanted.is_empty() || now >= fetch.deadline;
            if done && let Some(reply) = fetch.reply.take() {
                let _ = reply.send(std::mem::take(&mut fetch.found));
            }
            !done
        });
    }

    /// Answers a headers request: the headers from `from_height` on, up to the last one this
    /// node holds the certificate of, within one epoch (its certificate is checked against
    /// that epoch's validators). Nothing when no certificate covers any of them.
    fn answer_headers(&mut self, to: Key, from_height: u64, max_headers: u32) {
        let mut headers = Vec::new();
        let mut certificate = Vec::new();
        if from_height <= self.head.header.height {
            let epoch_last = self
                .p
                .schedule
                .end(self.p.schedule.epoch_of(from_height))
                .unwrap_or(u64::MAX);
            let last = self
                .head
                .header
                .height
                .min(from_height + u64::from(max_headers.max(1)) - 1)
                .min(epoch_last);
            if let Ok(ledger) = self.p.ledger.lock()
                && let Ok(Some((certified, bytes))) =
                    ledger.store().certificate_in(from_height, last)
            {
                for height in from_height..=certified {
                    match ledger.store().signed_header(height) {
                        Ok(Some(header)) => headers.push(header),
                        other => {
                            if let Err(error) = other {
                                tracing::error!(%error, height, "cannot read a header to answer a peer");
                            }
                            headers.clear();
                            break;
                        }
                    }
                }
                if !headers.is_empty() {
                    certificate = bytes;
                }
            }
        }
        tracing::debug!(
            peer = %weft_key(&to),
            from_height,
            headers = headers.len(),
            "answering a headers request"
        );
        let answer = encode(&Sync::Headers {
            headers,
            finalization: certificate,
        });
        self.p.sync_out.send(Recipients::One(to), answer, false);
    }

    /// Answers a bodies request: the transactions of the blocks from `from_height` on, whole,
    /// up to about [`wire::SYNC_ANSWER_BYTES`]. A node that strips payloads has no whole bodies
    /// to give: its answer is empty, and the asker turns to another peer.
    fn answer_bodies(&mut self, to: Key, from_height: u64, count: u32) {
        let mut bodies = Vec::new();
        if self.p.filter.is_none() && from_height <= self.head.header.height {
            let last = self
                .head
                .header
                .height
                .min(from_height + u64::from(count.max(1)) - 1);
            let Ok(ledger) = self.p.ledger.lock() else {
                return;
            };
            let mut bytes = 0;
            for height in from_height..=last {
                match ledger.store().block_transactions(height) {
                    Ok(transactions) => {
                        bytes += encoded_len(&transactions);
                        bodies.push(transactions);
                        if bytes >= wire::SYNC_ANSWER_BYTES {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, height, "cannot read a block to answer a peer");
                        break;
                    }
                }
            }
        }
        if self.fault == Some(Fault::BadBodies)
            && let Some(body) = bodies.first_mut()
        {
            match body.first_mut() {
                Some(tx) => tx.signature.0[0] ^= 1,
                // An empty block gets a transaction it does not hold (the genesis).
                None => body.extend(
                    self.p
                        .ledger
                        .lock()
                        .ok()
                        .and_then(|ledger| ledger.store().block_transactions(0).ok())
                        .unwrap_or_default()
                        .into_iter()
                        .take(1),
                ),
            }
        }
        tracing::debug!(
            peer = %weft_key(&to),
            from_height,
            bodies = bodies.len(),
            "answering a bodies request"
        );
        let answer = encode(&Sync::Bodies {
            from_height,
            bodies,
        });
        self.p.sync_out.send(Recipients::One(to), answer, false);
    }

    /// Takes a headers answer: they must follow the head, link by hash, be sealed by a
    /// producer of their height, and end with the block the certificate finalizes, verified
    /// against this node's epoch. Then every one of them is final, and their bodies are asked for.
    fn take_headers(
        &mut self,
        from: Key,
        headers: Vec<SignedHeader>,
        finalization: &[u8],
    ) -> Result<()> {
        tracing::debug!(
            peer = %weft_key(&from),
            first = headers.first().map(|header| header.header.height),
            headers = headers.len(),
            head = self.head.header.height,
            "headers answer"
        );
        // Nothing to give, or an answer to an older request (the head moved on since).
        if headers.is_empty()
            || !self.headers.is_empty()
            || headers[0].header.height != self.head.header.height + 1
        {
            if headers.is_empty() {
                // Another peer is asked shortly (not at once: none may have what is missing).
                self.sync_sent = Instant::now().checked_sub(SYNC_RETRY - EMPTY_RETRY);
            }
            return Ok(());
        }
        if finalization.is_empty() {
            self.misbehaved(from, "headers without the certificate of the last one");
            return Ok(());
        }
        let hashes = match self.check_headers(&headers) {
            Ok(hashes) => hashes,
            Err(problem) => {
                self.misbehaved(from, &problem);
                return Ok(());
            }
        };
        let Some(decoded) = self.certificate(&from, finalization) else {
            return Ok(());
        };
        if hashes.last() != Some(&block_hash(&decoded.proposal.payload)) {
            self.misbehaved(from, "a certificate for another block than its last header");
            return Ok(());
        }
        self.finalized(&decoded);
        self.headers = headers.into_iter().zip(hashes).collect();
        self.set_sync("catching up");
        self.commit_fetched()?;
        self.request_sync();
        Ok(())
    }

    /// Checks a run of headers after the head: same chain, each the child of the one before,
    /// not older, sealed by a producer of its height (the seals verified as one batch).
    /// Returns their hashes.
    fn check_headers(&self, headers: &[SignedHeader]) -> Result<Vec<BlockHash>, String> {
        use weft_core::keys::{BatchItem, verify_batch};
        let mut parent = (
            self.head.header.height,
            self.head_hash,
            self.head.header.timestamp,
        );
        let mut hashes = Vec::with_capacity(headers.len());
        let mut seals = Vec::with_capacity(headers.len());
        for signed in headers {
            let header = &signed.header;
            if header.chain_id != self.chain_id {
                return Err(format!("header {} is of another chain", header.height));
            }
            if header.height != parent.0 + 1 || header.previous_digest != parent.1 {
                return Err(format!(
                    "header {} does not follow the one before",
                    header.height
                ));
            }
            if header.timestamp < parent.2 {
                return Err(format!(
                    "header {} is older than the one before",
                    header.height
                ));
            }
            if !self
                .p
                .schedule
                .producers_at(header.height)
                .contains(&header.producer)
            {
                return Err(format!(
                    "header {} names a producer that is not a validator of its height",
                    header.height
                ));
            }
            let seal = signed
                .producer_seal()
                .map_err(|error| format!("header {}: {error}", header.height))?;
            let hash = header.hash();
            hashes.push(hash);
            seals.push((seal, hash));
            parent = (header.height, hash, header.timestamp);
        }
        let items: Vec<BatchItem<'_>> = seals
            .iter()
            .map(|(seal, hash)| BatchItem {
                key: &seal.key,
                namespace: weft_core::Namespace::Block,
                message: hash.as_bytes(),
                signature: &seal.signature,
            })
            .collect();
        verify_batch(&items).map_err(|_| "a header's producer seal does not verify".to_string())?;
        Ok(hashes)
    }

    /// Decodes a catch-up certificate and verifies it against this node's epoch (the one of
    /// the block after its head: the blocks it covers are of that epoch); `None`, with the
    /// sender blocked, if it does not hold.
    fn certificate(&mut self, from: &Key, bytes: &[u8]) -> Option<Finalization> {
        use commonware_consensus::Epochable as _;
        let participants = self.epoch.validators.len();
        let Ok(decoded) = Finalization::decode_cfg(commonware_codec::Copying(bytes), &participants)
        else {
            self.misbehaved(from.clone(), "an undecodable finalization certificate");
            return None;
        };
        if decoded.epoch().get() != self.epoch.number {
            self.misbehaved(
                from.clone(),
                &format!(
                    "a certificate of epoch {} for blocks of epoch {}",
                    decoded.epoch().get(),
                    self.epoch.number
                ),
            );
            return None;
        }
        let mut rng = rand::rng();
        if !decoded.verify(
            &mut rng,
            &self.epoch.verifier,
            &commonware_parallel::Sequential,
        ) {
            self.misbehaved(
                from.clone(),
                "a finalization certificate that does not verify",
            );
            return None;
        }
        Some(decoded)
    }

    /// Takes a bodies answer: each body must be whole and match its final header (number of
    /// transactions, Merkle root over their ids and signatures); then it is that very block.
    fn take_bodies(
        &mut self,
        from: Key,
        from_height: u64,
        bodies: Vec<Vec<Transaction>>,
    ) -> Result<()> {
        if self
            .bodies_asked
            .get(&from_height)
            .is_some_and(|(asked, ..)| *asked == from)
        {
            self.bodies_asked.remove(&from_height);
        }
        if bodies.is_empty() {
            // It has no whole bodies to give (it stores transactions stripped, or is behind):
            // the others are asked for a while.
            if !self.avoid.contains_key(&from) {
                self.avoid.insert(from.clone(), Instant::now() + PEER_SEEN);
            }
        } else if self
            .avoid
            .get(&from)
            .is_some_and(|until| *until <= Instant::now() + PEER_SEEN)
        {
            // It answers after all.
            self.avoid.remove(&from);
        }
        tracing::debug!(
            peer = %weft_key(&from),
            from_height,
            bodies = bodies.len(),
            head = self.head.header.height,
            "bodies answer"
        );
        let head = self.head.header.height;
        for (offset, transactions) in bodies.into_iter().enumerate() {
            let height = from_height + offset as u64;
            let Some(index) = height.checked_sub(head + 1) else {
                continue;
            };
            let Some((header, hash)) = self.headers.get(index as usize) else {
                break;
            };
            if self.known.contains_key(hash) {
                continue;
            }
            if transactions.iter().any(|tx| tx.payload.is_none()) {
                self.misbehaved(
                    from,
                    &format!("a stripped transaction in the body of block {height}"),
                );
                break;
            }
            let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
            if transactions.len() as u64 != u64::from(header.header.tx_count)
                || weft_ledger::block::merkle_levels(&transactions, &ids).root()
                    != header.header.merkle_root
            {
                self.misbehaved(
                    from,
                    &format!("the body of block {height} does not match its header"),
                );
                break;
            }
            let block = Block {
                signed: header.clone(),
                transactions,
            };
            let size = encoded_len(&block);
            self.remember(block, size, false);
        }
        self.commit_fetched()?;
        self.request_sync();
        Ok(())
    }

    /// Commits the blocks of the waiting final headers whose bodies are here, in order.
    fn commit_fetched(&mut self) -> Result<()> {
        while let Some((_, hash)) = self.headers.front() {
            let hash = *hash;
            if !self.known.contains_key(&hash) {
                break;
            }
            self.commit(hash)?;
            if self.head_hash != hash {
                break;
            }
        }
        if self.headers.is_empty()
            && self
                .target
                .is_none_or(|(_, target)| target == self.head_hash)
        {
            self.set_sync("synced");
        }
        Ok(())
    }

    // ---- status, evidence, peers ----

    /// A committed block admitted or removed peers: the network now accepts exactly the
    /// validators, the configured followers and seeds and the admitted peers; removed ones are
    /// cut off.
    fn members_changed(&mut self, height: u64, changes: &[weft_core::model::NetworkPeer]) {
        let members = match super::admitted_peers(&self.p.ledger) {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(%error, "cannot read the admitted peers");
                return;
            }
        };
        self.member_keys = member_keys(&members);
        // Keys removed by this block and not admitted again after (in the same block).
        let still_admitted = |key: &weft_core::PublicKey| members.contains_key(key);
        for change in changes.iter().filter(|change| !change.admitted) {
            let Ok(key) = super::engine_key(&change.key) else {
                continue;
            };
            if still_admitted(&change.key)
                || self.validator_keys.contains(&key)
                || self.p.followers.position(&key).is_some()
            {
                continue;
            }
            tracing::info!(peer = %change.key, name = change.name, "peer removed from the network");
            self.addresses.remove(&key);
            self.signed_addresses.remove(&key);
            self.picks.remove(&key);
            if let Err(error) = self.p.addresses.forget_address(&change.key) {
                tracing::warn!(%error, "cannot write the address book");
            }
            self.cut(key, format!("removed from the network at height {height}"));
        }
        self.retrack();
        tracing::info!(
            height,
            admitted = members.len(),
            "the network's peers changed"
        );
        if let Ok(mut status) = self.p.status.lock() {
            status.members = super::member_list(&members);
            status.next_validators = super::NextValidators::of(&self.p.schedule, self.epoch.number);
        }
    }

    /// Tells the network thread to run the current epoch's engine (from the block before the
    /// epoch's first).
    fn start_epoch(&mut self) -> Result<()> {
        let before = self.p.schedule.start(self.epoch.number) - 1;
        let floor = if before == self.head.header.height {
            self.head_hash
        } else {
            let ledger = self
                .p
                .ledger
                .lock()
                .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
            match ledger.store().signed_header(before)? {
                Some(signed) => signed.header.hash(),
                None => bail!(
                    "block {before}, the last before epoch {}, is missing",
                    self.epoch.number
                ),
            }
        };
        let (open, ready) = tokio::sync::oneshot::channel();
        let _ = self.p.epochs.send(super::EpochStart {
            epoch: self.epoch.number,
            validators: self.epoch.validators.clone(),
            floor: commonware_cryptography::sha256::Digest(floor.0.0),
            ready,
        });
        let waiting: HashSet<Key> = self
            .epoch
            .validators
            .iter()
            .filter(|key| **key != self.me)
            .cloned()
            .collect();
        if !self.is_validator || waiting.is_empty() {
            let _ = open.send(());
            self.gate = None;
            return Ok(());
        }
        self.gate = Some(StartGate {
            since: Instant::now(),
            probed: None,
            waiting,
            open,
        });
        self.gate_tick();
        Ok(())
    }

    /// While the engine waits ([`StartGate`]): asks the validators that have not answered
    /// yet, every [`GATE_PROBE`]; starts the engine once the wait is over.
    fn gate_tick(&mut self) {
        let Some(gate) = &mut self.gate else {
            return;
        };
        let wait = Duration::from_millis(self.p.config.start_wait_ms);
        if gate.since.elapsed() >= wait {
            self.open_gate();
            return;
        }
        if gate
            .probed
            .is_some_and(|probed| probed.elapsed() < GATE_PROBE)
        {
            return;
        }
        gate.probed = Some(Instant::now());
        let peers: Vec<Key> = gate.waiting.iter().cloned().collect();
        let request = self.headers_request();
        self.p
            .sync_out
            .send(Recipients::Some(peers), request, false);
    }

    /// A validator answered a headers request: if the engine waits, one fewer to wait for.
    fn answered(&mut self, from: &Key) {
        if let Some(gate) = &mut self.gate
            && gate.waiting.remove(from)
            && gate.waiting.is_empty()
        {
            self.open_gate();
        }
    }

    fn open_gate(&mut self) {
        let Some(gate) = self.gate.take() else {
            return;
        };
        let waited_ms = gate.since.elapsed().as_millis() as u64;
        if gate.waiting.is_empty() {
            tracing::info!(
                epoch = self.epoch.number,
                waited_ms,
                "every validator answered: the consensus engine starts"
            );
        } else {
            let silent: Vec<String> = gate
                .waiting
                .iter()
                .map(|key| weft_key(key).to_string())
                .collect();
            tracing::warn!(
                epoch = self.epoch.number,
                waited_ms,
                ?silent,
                "validators did not answer: the consensus engine starts without hearing from them"
            );
        }
        let _ = gate.open.send(());
    }

    /// The committed head is the last block of its epoch: the next validators take over, with
    /// an engine of their own.
    fn switch_epoch(&mut self) -> Result<()> {
        let next = epoch_state(
            &self.p.schedule,
            &self.p.namespace,
            self.head.header.height + 1,
        )?;
        tracing::info!(
            epoch = next.number,
            from_height = self.head.header.height + 1,
            validators = next.validators.len(),
            votes = next.validators.position(&self.me).is_some(),
            "the validators change"
        );
        self.epoch = next;
        self.is_validator = self.epoch.validators.position(&self.me).is_some();
        // The old engine's requests die with it.
        self.proposing.clear();
        self.verifying.clear();
        self.equivocator = None;
        self.start_epoch()?;
        self.schedule_changed();
        if let Ok(mut status) = self.p.status.lock() {
            status.epoch = self.epoch.number;
            status.validator = self.is_validator;
            status.validators = self
                .epoch
                .validators
                .iter()
                .map(|key| weft_key(key).to_string())
                .collect();
        }
        Ok(())
    }

    /// The validator schedule or the epoch changed: what follows from them (every validator's
    /// key, the change shown as next, the peers to dial).
    fn schedule_changed(&mut self) {
        self.validator_keys = all_validators(&self.p.schedule);
        if let Ok(mut status) = self.p.status.lock() {
            status.next_validators = super::NextValidators::of(&self.p.schedule, self.epoch.number);
        }
        self.retrack();
    }

    /// A peer sent something invalid: it is recorded as evidence and disconnected.
    fn misbehaved(&mut self, peer: Key, what: &str) {
        tracing::warn!(peer = %weft_key(&peer), what, "peer sent invalid data; disconnecting it");
        // Cut off (and listed in the status) before the evidence is written: whoever reads the
        // evidence finds the peer cut off.
        self.avoid
            .insert(peer.clone(), Instant::now() + super::BLOCKED_FOR);
        self.cut(peer.clone(), what.to_string());
        self.evidence(serde_json::json!({
            "kind": "invalid_message",
            "peer": weft_key(&peer).to_string(),
            "reason": what,
        }));
    }

    /// Disconnects `peer` for [`super::BLOCKED_FOR`] (commonware's blocker) and lists it, with
    /// `reason`, in the status's `cut_off`.
    fn cut(&mut self, peer: Key, reason: String) {
        let until = now_ms() + super::BLOCKED_FOR.as_millis() as u64;
        self.cut_off.insert(peer.clone(), (reason, until));
        let _ = self.p.blocker.block(peer);
        self.publish_cut_off();
    }

    fn evidence(&mut self, mut record: serde_json::Value) {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        record["time_ms"] = now_ms().into();
        tracing::warn!(%record, "evidence of misbehaviour");
        let line = format!("{record}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(weft_ledger::files::FILE_MODE)
            .open(&self.p.evidence_path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            tracing::error!(%error, "cannot record evidence");
        }
        if let Ok(mut status) = self.p.status.lock() {
            status.evidence += 1;
        }
    }

    fn set_sync(&mut self, state: &'static str) {
        self.sync_state = state;
    }

    fn publish(&mut self) {
        self.seen.retain(|_, seen| seen.elapsed() < PEER_SEEN);
        let Ok(mut status) = self.p.status.lock() else {
            return;
        };
        status.height = self.head.header.height;
        // A node that hears from no peer (cut off, or removed from the network) cannot know
        // whether it is behind.
        status.sync = if self.seen.is_empty() {
            "no peers"
        } else {
            self.sync_state
        };
        status.finalized_height = self
            .target
            .and_then(|(_, hash)| self.known.get(&hash))
            .map_or(status.height, |known| known.block.signed.header.height)
            .max(status.height)
            .max(
                self.headers
                    .back()
                    .map_or(0, |(header, _)| header.header.height),
            );
        status.view = self
            .target
            .filter(|((epoch, _), _)| *epoch == self.epoch.number)
            .map_or(0, |((_, view), _)| view);
        status.notarized_view = self
            .notarized
            .filter(|(epoch, _)| *epoch == self.epoch.number)
            .map_or(0, |(_, view)| view);
        status.mempool = self.pool.len();
        (status.engine, status.waiting_for) = match &self.gate {
            _ if !self.is_validator => ("not voting", Vec::new()),
            None => ("running", Vec::new()),
            Some(gate) => {
                let mut waiting: Vec<String> = gate
                    .waiting
                    .iter()
                    .map(|key| weft_key(key).to_string())
                    .collect();
                waiting.sort();
                ("waiting for validators", waiting)
            }
        };
        status.dialed = self.dialed.len();
        status.picked = sorted_keys(self.picks.keys());
        status.connections_wanted = self.p.config.connections;
        status.dialed_connected = self
            .dialed
            .iter()
            .filter(|key| self.seen.contains_key(*key))
            .count();
        status.peers = sorted_keys(self.seen.keys());
        // Online: heard from here, or by a peer heard from here that reported lately.
        self.reported
            .retain(|peer, (when, _)| when.elapsed() < PEER_SEEN && self.seen.contains_key(peer));
        let mut online: Vec<String> = self
            .seen
            .keys()
            .chain(self.reported.values().flat_map(|(_, keys)| keys))
            .filter(|key| **key != self.me)
            .map(|key| weft_key(key).to_string())
            .collect();
        online.sort();
        online.dedup();
        status.online = online;
        status.addresses = self.addresses.len();
        drop(status);
        self.publish_cut_off();
    }

    /// The peers cut off, into the status (at once when one is cut: a reader who saw the
    /// evidence finds the peer listed).
    fn publish_cut_off(&mut self) {
        let now = now_ms();
        self.cut_off.retain(|_, (_, until)| *until > now);
        let mut cut_off: Vec<super::CutOff> = self
            .cut_off
            .iter()
            .map(|(key, (reason, until))| super::CutOff {
                key: weft_key(key).to_string(),
                reason: reason.clone(),
                until_ms: *until,
            })
            .collect();
        cut_off.sort_by(|a, b| a.key.cmp(&b.key));
        if let Ok(mut status) = self.p.status.lock() {
            status.cut_off = cut_off;
        }
    }
}

/// `keys` in weft's text form, sorted.
fn sorted_keys<'a>(keys: impl Iterator<Item = &'a Key>) -> Vec<String> {
    let mut keys: Vec<String> = keys.map(|key| weft_key(key).to_string()).collect();
    keys.sort();
    keys
}

/// The admitted peers' keys, as the engine's.
fn member_keys(members: &NetworkPeers) -> Vec<Key> {
    members
        .keys()
        .filter_map(|key| super::engine_key(key).ok())
        .collect()
}

/// Every validator of every epoch `schedule` names.
pub(super) fn all_validators(schedule: &Schedule) -> Vec<Key> {
    let mut keys: Vec<Key> = schedule
        .genesis
        .iter()
        .chain(
            schedule
                .changes
                .iter()
                .flat_map(|change| &change.validators),
        )
        .filter_map(|key| super::engine_key(key).ok())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The peers a node gives the p2p network: each one's address (primary: dialled; secondary:
/// accepted when it dials).
pub(super) type PeerMap = std::collections::BTreeMap<Key, Address>;

/// The address given for a peer whose address this node does not know: a host name, which the
/// p2p network (not allowed DNS) never dials.
pub(super) fn unknown_address() -> Address {
    Address::Asymmetric {
        ingress: Ingress::Dns {
            host: commonware_utils::Hostname::new("address.unknown")
                .expect("a valid constant host name"),
            port: 0,
        },
        egress: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// The epoch of the block at `height`: its number, validators and certificate verifier.
fn epoch_state(schedule: &Schedule, namespace: &[u8], height: u64) -> Result<EpochState> {
    let number = schedule.epoch_of(height);
    let validators = key_set(schedule.validators(number))?;
    Ok(EpochState {
        number,
        verifier: Scheme::verifier(namespace, validators.clone()),
        validators,
    })
}

/// [`Fault::Equivocate`]: sends, with `signer`, a notarize vote for another block than the one
/// the leader proposes.
pub(crate) fn equivocator<V>(mut votes: V, signer: Scheme) -> super::Equivocator
where
    V: Sender<PublicKey = Key> + Send + 'static,
{
    Box::new(move |context: &Ctx, digest: &Digest| {
        use commonware_consensus::simplex::types::{Notarize, Proposal, Vote};
        let mut other = digest.0;
        other[0] ^= 0xff;
        let proposal = Proposal::new(
            context.round,
            context.parent.0,
            commonware_cryptography::sha256::Digest(other),
        );
        let Some(notarize) = Notarize::sign(&signer, proposal) else {
            return;
        };
        let vote: Vote<Scheme, Digest> = Vote::Notarize(notarize);
        tracing::warn!(
            view = context.round.view().get(),
            "sending a double vote (WEFT_FAULT)"
        );
        votes.send(Recipients::All, vote.encode().to_vec(), true);
    })
}

fn block_hash(digest: &Digest) -> BlockHash {
    BlockHash(Hash32(digest.0))
}

fn encoded_len<T: borsh::BorshSerialize>(value: &T) -> usize {
    borsh::object_length(value).unwrap_or(usize::MAX / 4)
}
