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

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use commonware_codec::{Decode as _, Encode as _};
use commonware_p2p::{Address, AddressableTrackedPeers, Recipients};
use commonware_utils::ordered::{Map, Set};
use weft_core::encoding::{decode, encode};
use weft_core::{BlockHash, Hash32, SigningKey, TxId};
use weft_ledger::block::{Block, SignedHeader};
use weft_ledger::ledger::{Assembled, Signatures, ValidatedBlock, assemble, validate_block_with};
use weft_ledger::state::{Overlay, Position, Schedule, StateDelta};
use weft_ledger::store::Store as _;
use weft_ledger::store::network::{NetworkPeers, peer_changes};
use weft_ledger::{Admitted, RuleError, Transaction};

pub(crate) use self::effect::{Channel, CoreIo, Effect};
use self::hashing::{HashMap, HashSet};
use super::addresses::AddressBook;
use super::wire::{self, Proposal, Sync, TxBatch};
use super::{
    Ctx, Digest, Event, FETCH_TIMEOUT, Fetched, Finalization, Key, PeerMap, Scheme, SharedStatus,
    key_set, unknown_address, weft_key,
};
use crate::config::NetworkSection;
use crate::metrics::Metrics;
use crate::submission::{SharedLedger, Submission, TxResult};

mod blocks;
mod catchup;
pub(crate) mod clock;
mod commit;
mod connections;
pub(crate) mod effect;
mod epochs;
mod fetch;
pub(crate) mod hashing;
mod history;
mod peers;
mod pool;
mod publish;

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

/// What the core is made of: its ledger, key, chain and settings.
pub(crate) struct CoreParams {
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
    pub status: SharedStatus,
    pub metrics: Arc<Metrics>,
    /// Where the core reads the time.
    pub clock: Box<dyn clock::Clock>,
    /// What follows each commit: the head announced, the metrics, the merge policy.
    pub tail: crate::commit::CommitTail,
    pub addresses: AddressBook,
    pub config: NetworkSection,
    pub max_txs: usize,
    /// What this node stores whole (`None`: everything).
    pub filter: Option<weft_ledger::filter::StorageFilter>,
    /// Does it follow its chain on proofs: bodies filtered by `filter`, final blocks taken on
    /// their certificates, no rule state (see [`history`])?
    pub follow_proofs: bool,
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

pub(crate) struct Core {
    p: CoreParams,
    /// What the core asks of its driver, in order, since the driver last took them.
    effects: Vec<Effect>,
    /// Asks the driver which peers the p2p network is connected with.
    connected_now: Box<dyn FnMut() -> Option<Vec<Key>> + Send>,
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
    /// History requests answered per peer in the current second, and when it began.
    history_answers: HashMap<Key, (Instant, u32)>,
    /// Peers that follow on proofs and asked for no floods or proposals ([`Sync::Quiet`]).
    quiet: HashSet<Key>,
    /// History fetches waiting for a peer's answer that checks out.
    histories: Vec<history::PendingHistory>,
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
}

impl Core {
    /// A core on `p`'s ledger and settings; `connected_now` tells it which peers the p2p
    /// network is connected with.
    pub fn new(
        p: CoreParams,
        connected_now: Box<dyn FnMut() -> Option<Vec<Key>> + Send>,
    ) -> Result<Self> {
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
        let own_address = wire::PeerAddress::sign(chain_id, &p.key, dialable, p.clock.unix_ms());
        let now = p.clock.now();
        Ok(Core {
            chain_id,
            head_hash: head.header.hash(),
            head,
            known: HashMap::default(),
            known_bytes: 0,
            verifying: Vec::new(),
            proposing: Vec::new(),
            target: None,
            notarized: None,
            certificates: HashMap::default(),
            pool: HashMap::default(),
            order: VecDeque::new(),
            waiting: Vec::new(),
            free: Vec::new(),
            by_tx: HashMap::default(),
            outbox: Vec::new(),
            outbox_bytes: 0,
            sync_sent: None,
            sync_turn: 0,
            headers: VecDeque::new(),
            bodies_asked: std::collections::BTreeMap::new(),
            avoid: HashMap::default(),
            wanted_blocks: HashMap::default(),
            last_follow: now,
            seen: HashMap::default(),
            me,
            dialed: Vec::new(),
            picks: HashMap::default(),
            passed_over: HashMap::default(),
            connected: HashSet::default(),
            last_connections: now,
            tracked: None,
            track_id: 0,
            own_address,
            signed_addresses: HashMap::default(),
            last_addresses: now,
            validator_keys: all_validators(&p.schedule),
            seed_keys,
            sync_state: "synced",
            epoch,
            is_validator,
            gate: None,
            last_commit: now,
            halted: false,
            fetching: Vec::new(),
            histories: Vec::new(),
            quiet: HashSet::default(),
            history_answers: HashMap::default(),
            waited: HashSet::default(),
            last_reflood: now,
            last_online: now,
            reported: HashMap::default(),
            member_keys: member_keys(&super::admitted_peers(&p.ledger).unwrap_or_default()),
            cut_off: HashMap::default(),
            addresses,
            p,
            effects: Vec::new(),
            connected_now,
        })
    }

    /// The time, as the core's clock tells it.
    fn now(&self) -> Instant {
        self.p.clock.now()
    }

    /// This epoch's validators but this node.
    fn other_validators(&self) -> impl Iterator<Item = Key> + '_ {
        self.epoch
            .validators
            .iter()
            .filter(|key| **key != self.me)
            .cloned()
    }

    /// How long ago `earlier` was, by the core's clock.
    fn since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }

    /// What the core asked of its driver since the driver last took it, in order.
    pub(in crate::net) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// A message to peers on one of weft's channels.
    fn send(&mut self, channel: Channel, to: Recipients<Key>, message: Vec<u8>, priority: bool) {
        self.effects.push(Effect::Send {
            channel,
            to,
            message,
            priority,
        });
    }

    /// What the core does before its first event: names the peers to connect with, starts the
    /// engine of its epoch and publishes its status.
    pub(in crate::net) fn start(&mut self) -> Result<()> {
        self.maintain_connections();
        self.start_epoch()?;
        self.publish();
        Ok(())
    }

    /// What the core does when it ends: answers every waiting submitter (their transactions are
    /// not final, so not acknowledged).
    pub(in crate::net) fn finish(&mut self) {
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
    }

    /// Handles one event; `false` when the core should stop.
    pub(in crate::net) fn handle(&mut self, event: Event) -> Result<bool> {
        match event {
            Event::Stop => return Ok(false),
            Event::Submit(submission) => self.submit(submission),
            Event::Fetch { ids, reply } => self.fetch(ids, reply),
            Event::History {
                fingerprint,
                recipient,
                reply,
            } => self.fetch_history(fingerprint, recipient, reply),
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
                self.proposing.push((context, self.now(), response));
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
            Event::Tick => self.tick()?,
        }
        Ok(true)
    }

    fn tick(&mut self) -> Result<()> {
        self.gate_tick();
        self.flood();
        self.try_proposals();
        self.try_verifications();
        if !self.is_validator && self.since(self.last_reflood) >= REFLOOD_EVERY {
            self.last_reflood = self.now();
            self.reflood();
        }
        if !self.is_validator && self.since(self.last_follow) >= FOLLOW_EVERY {
            self.last_follow = self.now();
            self.request_sync();
        }
        // A validator that has committed nothing for a while may have missed the end of its
        // epoch (its peers moved on to the next engine) or be behind: it asks a peer.
        if self.is_validator && self.since(self.last_commit) >= STALLED {
            self.request_sync();
        }
        if self.since(self.last_online) >= ONLINE_EVERY {
            self.last_online = self.now();
            self.tell_online();
        }
        if self.since(self.last_addresses) >= ADDRESSES_EVERY {
            self.last_addresses = self.now();
            self.tell_addresses(Recipients::All);
        }
        if self.since(self.last_connections) >= CONNECTIONS_EVERY {
            self.maintain_connections();
        }
        self.ask_wanted();
        self.try_commit()?;
        self.p.tail.merge_step();
        self.expire_fetches();
        self.recheck_histories();
        self.publish();
        Ok(())
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

fn block_hash(digest: &Digest) -> BlockHash {
    BlockHash(Hash32(digest.0))
}

fn encoded_len<T: borsh::BorshSerialize>(value: &T) -> usize {
    borsh::object_length(value).unwrap_or(usize::MAX / 4)
}
