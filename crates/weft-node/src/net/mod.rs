//! Networks of nodes (docs/network.md, ADR 0010): validators agree on blocks with commonware's
//! Simplex BFT consensus over commonware's authenticated, encrypted peer-to-peer network.
//!
//! This module starts both on commonware's tokio runtime, in a thread of their own, and bridges
//! them to [`core::Core`], a plain thread that owns everything weft decides: which transactions
//! go into a proposal, whether a proposed block is valid, and committing finalized blocks to
//! the ledger. The engine reaches the core through [`Mailbox`] (its `Automaton`, `Relay` and
//! `Reporter`); peers' messages reach it through forwarding tasks; the node's submission queue
//! reaches it through a forwarding thread.

mod addresses;
mod core;
pub mod join;
pub(crate) mod status;
pub mod wire;

use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use commonware_codec::DecodeExt;
use commonware_consensus::simplex::{self, Plan, config as simplex_config, elector::RoundRobin};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::{ChaCha20Poly1305, Sha256, Signer as _, ed25519, sha256};
use commonware_p2p::Recipients;
use commonware_p2p::authenticated::lookup;
use commonware_p2p::utils::mux::Muxer;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock as _, Quota, Runner as _, Spawner as _, Supervisor as _};
use commonware_stream::{cups, sake};
use commonware_utils::channel::oneshot;
use commonware_utils::ordered::Set;
use weft_core::SigningKey;

use weft_ledger::state::{Schedule, StateView as _};
use weft_ledger::store::Store as _;
use weft_ledger::store::network::NetworkPeers;

use crate::config::NetworkSection;
use crate::metrics::Metrics;
use crate::submission::{SharedLedger, Submission};
pub use status::{CutOff, Member, NetStatus, NextValidators};

pub(crate) type Digest = sha256::Digest;
pub(crate) type Key = ed25519::PublicKey;
pub(crate) type Scheme = simplex::scheme::ed25519::Scheme;
pub(crate) type Ctx = simplex::types::Context<Digest, Key>;
pub(crate) type Activity = simplex::types::Activity<Scheme, Digest>;
pub(crate) type Finalization = simplex::types::Finalization<Scheme, Digest>;

/// Most peers admitted by transactions that the network keeps connections with. commonware's
/// p2p sizes every channel's inbound mailbox for a burst from each peer it may retain, so this
/// bounds memory: 1,024 made a node reserve 12 GB.
const MAX_MEMBERS: usize = 32;

/// Room for validators in the peer set beyond those of the current and the next epoch when the
/// node starts (a change that adds more takes a restart to connect them all).
const SPARE_VALIDATOR_SLOTS: usize = 8;

/// The peers admitted to the network, as the ledger records them with each block.
pub(crate) fn admitted_peers(ledger: &SharedLedger) -> Result<NetworkPeers> {
    let ledger = ledger
        .lock()
        .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
    ledger
        .store()
        .network_peers()?
        .ok_or_else(|| anyhow::anyhow!("the ledger keeps no record of the network's peers"))
}

/// The validators of `epoch` as the engine's keys.
pub(crate) fn key_set(keys: &[weft_core::PublicKey]) -> Result<Set<Key>> {
    Ok(Set::from_iter_dedup(
        keys.iter().map(engine_key).collect::<Result<Vec<_>>>()?,
    ))
}

/// The peers a node keeps connections with first: the validators of `epoch`, then those of the
/// next one if a change is scheduled (so that the next engine finds its peers connected).
pub(crate) fn primary_peers(schedule: &Schedule, epoch: u64) -> Result<Vec<Key>> {
    let mut keys = schedule.validators(epoch).to_vec();
    if schedule.changes.len() > epoch as usize {
        keys.extend_from_slice(schedule.validators(epoch + 1));
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|key| seen.insert(*key));
    keys.iter().map(engine_key).collect()
}

/// The peer set to give the p2p network: `primary` (dialled: the validators, then the peers
/// picked besides them) and `secondary` (accepted when they dial), this node and duplicates
/// left out (a peer in both is primary), and at most `capacity` identities with this node:
/// commonware refuses a larger set by panicking, so the last ones are left out; returns how
/// many were.
pub(crate) fn peer_set(
    primary: Vec<(Key, commonware_p2p::Address)>,
    secondary: Vec<(Key, commonware_p2p::Address)>,
    me: &Key,
    capacity: usize,
) -> ((core::PeerMap, core::PeerMap), usize) {
    let mut room = capacity.saturating_sub(1);
    let mut left_out = 0;
    let (mut dialled, mut accepted) = (core::PeerMap::new(), core::PeerMap::new());
    let all = primary
        .into_iter()
        .map(|peer| (true, peer))
        .chain(secondary.into_iter().map(|peer| (false, peer)));
    for (dial, (key, address)) in all {
        if key == *me || dialled.contains_key(&key) || accepted.contains_key(&key) {
            continue;
        }
        if room == 0 {
            left_out += 1;
            continue;
        }
        room -= 1;
        if dial {
            dialled.insert(key, address);
        } else {
            accepted.insert(key, address);
        }
    }
    ((dialled, accepted), left_out)
}

fn member_list(members: &NetworkPeers) -> Vec<Member> {
    members
        .iter()
        .map(|(key, name)| Member {
            key: key.to_string(),
            name: name.clone(),
        })
        .collect()
}

/// Shared view of [`NetStatus`].
pub type SharedStatus = Arc<Mutex<NetStatus>>;

/// What [`start`] needs.
pub(crate) struct NetParams {
    pub ledger: SharedLedger,
    pub key: SigningKey,
    pub config: NetworkSection,
    /// Where the consensus engine keeps its journal and weft its address book.
    pub dir: PathBuf,
    /// Where evidence of misbehaviour is appended (JSON lines).
    pub evidence_path: PathBuf,
    /// What follows each commit: the head announced, the metrics, the merge policy.
    pub tail: crate::commit::CommitTail,
    pub metrics: Arc<Metrics>,
    /// Most transactions in one block.
    pub max_txs: usize,
    /// What this node stores whole (`None`: everything).
    pub filter: Option<weft_ledger::filter::StorageFilter>,
}

/// A started network: its status, the handle that fetches stripped transactions, and the thread
/// to join at shutdown (it ends once every sender of the submission queue is gone and the core
/// has answered what it holds).
pub(crate) struct Started {
    pub status: SharedStatus,
    pub fetcher: Fetcher,
    pub thread: std::thread::JoinHandle<Result<()>>,
}

/// A transaction fetched whole from a peer, with the inclusion proof it came in (checked against
/// this node's own copy of its block header).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub tx: weft_ledger::Transaction,
    pub proof: weft_ledger::proof::InclusionProof,
    /// The peer's key.
    pub from: String,
}

/// How long a fetch waits for the peers' answers.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a peer that sent invalid data stays disconnected (and is not asked for blocks).
pub(crate) const BLOCKED_FOR: Duration = Duration::from_secs(3600);
/// Least time between two connection attempts with one peer (commonware's
/// `peer_connection_cooldown`, 1 s in its local defaults). When two nodes dial each other at
/// once, both attempts can be refused, and neither is tried again before this has passed: with
/// 1 s, a validator of a network of four often waited 1.3-2 s at start for every pair to connect.
const PEER_COOLDOWN: Duration = Duration::from_millis(200);

/// Fetches whole copies of stripped transactions from the network's peers (thin and producer
/// nodes; DESIGN.md "Node types").
#[derive(Clone)]
pub(crate) struct Fetcher {
    events: Sender<Event>,
}

impl Fetcher {
    /// The transactions among `ids` some peer holds whole and proved, within [`FETCH_TIMEOUT`];
    /// those nobody answered for are left out.
    pub async fn fetch(&self, ids: Vec<weft_core::TxId>) -> Vec<Fetched> {
        if ids.is_empty() {
            return Vec::new();
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.events.send(Event::Fetch { ids, reply }).is_err() {
            return Vec::new();
        }
        tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

/// Everything that reaches the core.
pub(crate) enum Event {
    Propose {
        context: Ctx,
        response: oneshot::Sender<Digest>,
    },
    Verify {
        context: Ctx,
        digest: Digest,
        response: oneshot::Sender<bool>,
    },
    Broadcast {
        digest: Digest,
        recipients: Recipients<Key>,
    },
    Finalized(Box<Finalization>),
    /// A block was notarized in this view of this epoch (it is final once finalized, or once a
    /// block after it is).
    Notarized {
        epoch: u64,
        view: u64,
    },
    /// A view ended without a block: its leader's proposal was not notarized in time.
    Nullified,
    Evidence {
        kind: &'static str,
        epoch: u64,
        validator: usize,
        view: u64,
    },
    /// With [`core::Fault::Equivocate`]: how this validator double-votes in the engine just
    /// started.
    Equivocation(Equivocator),
    Block {
        from: Key,
        bytes: Vec<u8>,
    },
    Txs {
        from: Key,
        bytes: Vec<u8>,
    },
    Sync {
        from: Key,
        bytes: Vec<u8>,
    },
    Submit(Submission),
    /// Whole copies of transactions this node stores stripped, asked of its peers.
    Fetch {
        ids: Vec<weft_core::TxId>,
        reply: tokio::sync::oneshot::Sender<Vec<Fetched>>,
    },
    Tick,
    /// The node is stopping: answer what is held and end.
    Stop,
}

/// Sends a second, conflicting notarize vote for a view this validator leads (tests only).
pub(crate) type Equivocator = Box<dyn FnMut(&Ctx, &Digest) + Send>;

/// Tells every validator this engine is about to vote: a signed nullify vote for the epoch's
/// view 0 (its genesis, which no engine tracks or votes in, so the vote is dropped unused and
/// commits its signer to nothing). commonware's engine counts any vote of the epoch from a
/// validator as activity before it looks at the view, and with its skip policy it nullifies at
/// once a view whose leader it has not heard from lately. At start no validator has heard
/// from any other yet: a leader whose vote in the first view came after the others had their
/// quorum was skipped by some validators and voted for by others, and the view then waited
/// for the certification timeout (docs/network.md, "Starting").
fn hello<S>(votes: &mut S, signer: &Scheme, epoch: u64)
where
    S: commonware_p2p::Sender<PublicKey = Key>,
{
    if let Some(vote) = hello_vote(signer, epoch) {
        votes.send(Recipients::All, vote, true);
    }
}

/// The encoded vote [`hello`] sends: `None` when `signer` cannot sign.
fn hello_vote(signer: &Scheme, epoch: u64) -> Option<Vec<u8>> {
    use commonware_codec::Encode as _;
    use commonware_consensus::simplex::types::{Nullify, Vote};
    use commonware_consensus::types::{Round, View};
    let round = Round::new(Epoch::new(epoch), View::zero());
    let vote: Vote<Scheme, Digest> = Vote::Nullify(Nullify::sign::<Digest>(signer, round)?);
    Some(vote.encode().to_vec())
}

/// Tells the network thread to run the consensus engine of `epoch` (stopping the one before):
/// its validators, and the block it starts on (the last of the epoch before; block 0 for
/// epoch 0).
pub(crate) struct EpochStart {
    pub epoch: u64,
    pub validators: Set<Key>,
    pub floor: Digest,
    /// Sent (or dropped) by the core when the engine may start: its channels are opened
    /// first, so votes from engines that started earlier are kept for it (core's `StartGate`).
    pub ready: tokio::sync::oneshot::Receiver<()>,
}

/// The consensus engine's handle on the core.
#[derive(Clone)]
pub(crate) struct Mailbox {
    events: Sender<Event>,
}

impl Automaton for Mailbox {
    type Context = Ctx;
    type Digest = Digest;

    async fn propose(&mut self, context: Ctx) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        let _ = self.events.send(Event::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Ctx, digest: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _ = self.events.send(Event::Verify {
            context,
            digest,
            response,
        });
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = Key;
    type Plan = Plan<Key>;

    fn broadcast(&mut self, digest: Digest, plan: Plan<Key>) -> commonware_actor::Feedback {
        let recipients = match plan {
            Plan::Prepare { .. } | Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
        };
        match self.events.send(Event::Broadcast { digest, recipients }) {
            Ok(()) => commonware_actor::Feedback::Ok,
            Err(_) => commonware_actor::Feedback::Closed,
        }
    }
}

impl Reporter for Mailbox {
    type Activity = Activity;

    fn report(&mut self, activity: Activity) -> commonware_actor::Feedback {
        use commonware_consensus::simplex::types::Attributable as _;
        use commonware_consensus::{Epochable as _, Viewable as _};
        let event = match activity {
            Activity::Finalization(finalization) => Event::Finalized(Box::new(finalization)),
            Activity::Notarization(notarization) => Event::Notarized {
                epoch: notarization.epoch().get(),
                view: notarization.view().get(),
            },
            Activity::Nullification(_) => Event::Nullified,
            Activity::ConflictingNotarize(evidence) => Event::Evidence {
                kind: "conflicting_notarize",
                epoch: evidence.epoch().get(),
                validator: evidence.signer().into(),
                view: evidence.view().get(),
            },
            Activity::ConflictingFinalize(evidence) => Event::Evidence {
                kind: "conflicting_finalize",
                epoch: evidence.epoch().get(),
                validator: evidence.signer().into(),
                view: evidence.view().get(),
            },
            Activity::NullifyFinalize(evidence) => Event::Evidence {
                kind: "nullify_finalize",
                epoch: evidence.epoch().get(),
                validator: evidence.signer().into(),
                view: evidence.view().get(),
            },
            _ => return commonware_actor::Feedback::Ok,
        };
        match self.events.send(event) {
            Ok(()) => commonware_actor::Feedback::Ok,
            Err(_) => commonware_actor::Feedback::Closed,
        }
    }
}

/// The namespace every consensus and peer-to-peer signature of a chain is made in, so that no
/// signature can be replayed on another chain or in another protocol.
fn namespace(chain_id: weft_core::ChainId) -> Vec<u8> {
    let mut namespace = b"weft-network-v1/".to_vec();
    namespace.extend_from_slice(chain_id.to_string().as_bytes());
    namespace
}

/// A weft key as the consensus engine's key type.
pub(crate) fn engine_key(key: &weft_core::PublicKey) -> Result<Key> {
    Key::decode(commonware_codec::Copying(&key.0[..]))
        .map_err(|error| anyhow::anyhow!("public key {key}: {error}"))
}

/// The consensus engine's key as weft's.
pub(crate) fn weft_key(key: &Key) -> weft_core::PublicKey {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(key.as_ref());
    weft_core::PublicKey(bytes)
}

/// Starts the network and consensus for a node whose submissions arrive on `submissions`.
pub(crate) fn start(params: NetParams, submissions: Receiver<Submission>) -> Result<Started> {
    let (chain_id, genesis, schedule, head_height) = {
        let ledger = params
            .ledger
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger lock"))?;
        let schedule = ledger.store().snapshot()?.schedule()?;
        (
            ledger.chain_id(),
            ledger.genesis().clone(),
            schedule,
            ledger.head().header.height,
        )
    };
    let epoch = schedule.epoch_of(head_height + 1);
    let validators = key_set(schedule.validators(epoch))?;
    let followers = params
        .config
        .follower_keys()?
        .iter()
        .map(engine_key)
        .collect::<Result<Vec<_>>>()?;
    let followers = Set::from_iter_dedup(followers);
    let private = ed25519::PrivateKey::decode(commonware_codec::Copying(&params.key.seed()[..]))
        .map_err(|error| anyhow::anyhow!("producer key: {error}"))?;
    let me = private.public_key();
    let is_validator = validators.position(&me).is_some();
    let validates_later = (epoch..=schedule.changes.len() as u64).any(|later| {
        schedule
            .validators(later)
            .contains(&params.key.public_key())
    });
    // Owner-only, like the rest of the home's ledger files (weft_ledger::files).
    weft_ledger::files::create_private_dir_all(&params.dir)
        .with_context(|| format!("cannot create {}", params.dir.display()))?;
    let addresses = addresses::open_and_migrate(&params.dir, &params.ledger)?;
    let members = admitted_peers(&params.ledger)?;
    let admitted = members.contains_key(&params.key.public_key());
    if !validates_later && followers.position(&me).is_none() && !admitted {
        bail!(
            "this node's key {} is not a validator of chain {:?} (now or in a scheduled \
             change), not listed in network.followers and not admitted by a NetworkPeer \
             transaction this node has seen: the other nodes would not let it connect (an \
             authority admits it with `weft net admit {}`)",
            params.key.public_key(),
            genesis.chain_name,
            params.key.public_key(),
        );
    }
    let most_validators = (epoch..=schedule.changes.len() as u64)
        .map(|epoch| primary_peers(&schedule, epoch).map_or(0, |keys| keys.len()))
        .max()
        .unwrap_or(0);
    let seeds = params.config.seed_list()?.len();
    // Every identity a node may hold a connection with: the validators of this epoch and the
    // next (and room for more), the configured followers and seeds, the admitted peers, and
    // itself. The validators' addresses come from the seeds, the address book, and the signed
    // addresses peers pass on (the core gives the p2p network its peer set).
    let peers_per_set =
        most_validators + SPARE_VALIDATOR_SLOTS + followers.len() + seeds + MAX_MEMBERS + 1;
    if members.len() > MAX_MEMBERS {
        tracing::error!(
            admitted = members.len(),
            "more peers are admitted than a node keeps room for ({MAX_MEMBERS}); some are \
             left out of its peer set"
        );
    }
    let listen = params.config.listen_addr()?;
    let dial_interval_ms = params.config.dial_interval_ms;
    let status = Arc::new(Mutex::new(NetStatus {
        key: params.key.public_key().to_string(),
        validator: is_validator,
        epoch,
        validators: validators
            .iter()
            .map(|key| weft_key(key).to_string())
            .collect(),
        next_validators: NextValidators::of(&schedule, epoch),
        // Until the core has heard from a peer.
        sync: "no peers",
        members: member_list(&members),
        ..NetStatus::default()
    }));
    let namespace = namespace(chain_id);
    let (events, inbox) = std::sync::mpsc::channel::<Event>();
    let (epochs_out, mut epochs_in) = tokio::sync::mpsc::unbounded_channel::<EpochStart>();
    let fetcher = Fetcher {
        events: events.clone(),
    };
    let filter = params.filter.clone();

    // Submissions reach the core through its own inbox; when the node stops (every sender of
    // the queue gone), the core is told to stop.
    let submit = events.clone();
    std::thread::Builder::new()
        .name("net-submit".into())
        .spawn(move || {
            for submission in submissions {
                if submit.send(Event::Submit(submission)).is_err() {
                    return;
                }
            }
            let _ = submit.send(Event::Stop);
        })
        .context("cannot start the submission thread")?;

    let thread_status = status.clone();
    let thread = std::thread::Builder::new()
        .name("network".into())
        .spawn(move || {
            let runtime = commonware_runtime::tokio::Config::new()
                .with_worker_threads(2)
                .with_storage_directory(params.dir.join("engine"))
                .with_catch_panics(false);
            commonware_runtime::tokio::Runner::new(runtime).start(|context| async move {
                let handshake = cups::Cups::<_, ChaCha20Poly1305>::new(
                    sake::Sake {
                        signer: private.clone(),
                        synchrony_bound: Duration::from_secs(5),
                        max_handshake_age: Duration::from_secs(10),
                        version: sake::Version::V1,
                    },
                    cups::Version::V1,
                );
                let peers_per_set = NonZeroUsize::new(peers_per_set).unwrap_or(NonZeroUsize::MIN);
                // commonware's `lookup` network: it dials the peers the core names, at the
                // addresses the core gives (weft's own peer exchange finds them: signed
                // addresses passed on by peers, docs/network.md "Connections"), so each node
                // keeps a set of its own: the validators and `network.connections` others.
                let mut p2p = lookup::Config::local(
                    handshake,
                    &namespace,
                    listen,
                    peers_per_set,
                    wire::MAX_MESSAGE_BYTES,
                    NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
                );
                // A peer of the set may connect from any address (behind NAT, say): its key is
                // what the handshake authenticates.
                p2p.bypass_ip_check = true;
                // Addresses are IP:PORT; a peer whose address is not known is given a host
                // name, which is then never dialled.
                p2p.allow_dns = false;
                // One tracked peer set: a peer removed from the network is cut off at once.
                p2p.tracked_peer_sets = NonZeroUsize::MIN;
                p2p.dial_frequency = Duration::from_millis(dial_interval_ms);
                p2p.block_duration = BLOCKED_FOR;
                p2p.peer_connection_cooldown = PEER_COOLDOWN;
                let (mut network, oracle) = lookup::Network::new(context.child("p2p"), p2p);
                // Messages per second one peer may send on a channel. Each channel's inbound
                // mailbox is sized from these (a burst from every peer), so they are kept to
                // what the protocol needs: a few votes per view, a block per view.
                let quota = |per_second: u32| {
                    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
                };
                let (votes_out, votes_in) = network.register(wire::CHANNEL_VOTES, quota(2_000));
                let fault = core::Fault::from_env();
                let (certificates_out, certificates_in) =
                    network.register(wire::CHANNEL_CERTIFICATES, quota(2_000));
                let (resolver_out, resolver_in) =
                    network.register(wire::CHANNEL_RESOLVER, quota(2_000));
                let (blocks_out, blocks_in) = network.register(wire::CHANNEL_BLOCKS, quota(200));
                let (txs_out, txs_in) = network.register(wire::CHANNEL_TXS, quota(500));
                let (sync_out, sync_in) = network.register(wire::CHANNEL_SYNC, quota(200));
                let network_handle = network.start();
                // The engine's channels carry one subchannel per epoch: the engine of a new
                // epoch starts on fresh ones while messages of the old one are dropped.
                let (votes_mux, mut votes) =
                    Muxer::new(context.child("votes_mux"), votes_out, votes_in);
                let (certificates_mux, mut certificates) = Muxer::new(
                    context.child("certificates_mux"),
                    certificates_out,
                    certificates_in,
                );
                let (resolver_mux, mut resolver) =
                    Muxer::new(context.child("resolver_mux"), resolver_out, resolver_in);
                let muxers = [
                    votes_mux.start(),
                    certificates_mux.start(),
                    resolver_mux.start(),
                ];

                forward(&context, blocks_in, events.clone(), |from, bytes| {
                    Event::Block { from, bytes }
                });
                forward(&context, txs_in, events.clone(), |from, bytes| Event::Txs {
                    from,
                    bytes,
                });
                forward(&context, sync_in, events.clone(), |from, bytes| {
                    Event::Sync { from, bytes }
                });
                let ticks = events.clone();
                context.child("tick").spawn(move |context| async move {
                    loop {
                        context.sleep(core::TICK).await;
                        if ticks.send(Event::Tick).is_err() {
                            return;
                        }
                    }
                });
                let mailbox = Mailbox {
                    events: events.clone(),
                };

                let core = core::Core::new(core::CoreParams {
                    ledger: params.ledger,
                    key: params.key,
                    schedule,
                    followers,
                    peers_per_set: peers_per_set.get(),
                    namespace: namespace.clone(),
                    epochs: epochs_out,
                    blocks_out,
                    txs_out,
                    sync_out,
                    blocker: oracle.clone(),
                    status: thread_status,
                    metrics: params.metrics,
                    tail: params.tail,
                    clock: Box::new(core::clock::SystemClock),
                    addresses,
                    evidence_path: params.evidence_path,
                    config: params.config.clone(),
                    max_txs: params.max_txs,
                    filter,
                    fault,
                })?;
                let (done, mut finished) = oneshot::channel::<Result<()>>();
                std::thread::Builder::new()
                    .name("net-core".into())
                    .spawn(move || {
                        let _ = done.send(core.run(inbox));
                    })
                    .context("cannot start the network core thread")?;

                // Runs the engine of each epoch the core names, until the core ends.
                let leader_timeout = Duration::from_millis(params.config.leader_timeout_ms);
                let mut engine: Option<commonware_runtime::Handle<()>> = None;
                let result = loop {
                    let start = tokio::select! {
                        result = &mut finished => break result
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("the network core thread failed"))),
                        start = epochs_in.recv() => start,
                    };
                    let Some(EpochStart {
                        epoch,
                        validators,
                        floor,
                        ready,
                    }) = start
                    else {
                        continue;
                    };
                    if let Some(engine) = engine.take() {
                        engine.abort();
                    }
                    let Some(scheme) = Scheme::signer(&namespace, validators.clone(), private.clone())
                    else {
                        tracing::info!(epoch, "this node does not vote in this epoch");
                        continue;
                    };
                    let channels = async {
                        Ok::<_, commonware_p2p::utils::mux::Error>((
                            votes.register(epoch).await?,
                            certificates.register(epoch).await?,
                            resolver.register(epoch).await?,
                        ))
                    };
                    let (epoch_votes, epoch_certificates, epoch_resolver) = match channels.await {
                        Ok(channels) => channels,
                        Err(error) => {
                            tracing::error!(%error, epoch, "cannot open the epoch's channels");
                            continue;
                        }
                    };
                    if fault == Some(core::Fault::Equivocate)
                        && let Some(signer) =
                            Scheme::signer(&namespace, validators.clone(), private.clone())
                    {
                        let _ = events.send(Event::Equivocation(core::equivocator(
                            epoch_votes.0.clone(),
                            signer,
                        )));
                    }
                    let config = simplex_config::Config {
                        scheme,
                        elector: RoundRobin::<Sha256>::default(),
                        blocker: oracle.clone(),
                        automaton: mailbox.clone(),
                        relay: mailbox.clone(),
                        reporter: mailbox.clone(),
                        strategy: commonware_parallel::Sequential,
                        // Epoch 0 keeps the name it had before epochs existed.
                        partition: if epoch == 0 {
                            "simplex".into()
                        } else {
                            format!("simplex_epoch_{epoch}")
                        },
                        mailbox_size: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
                        epoch: Epoch::new(epoch),
                        floor: simplex_config::Floor::Genesis(floor),
                        leader_timeout,
                        certification_timeout: leader_timeout * 2,
                        timeout_retry: leader_timeout * 5,
                        fetch_timeout: commonware_utils::NZDuration!(Duration::from_secs(1)),
                        fetch_retry_delay: Duration::from_millis(100),
                        view_retention: ViewDelta::new(10),
                        skip: simplex_config::SkipPolicy::Enabled {
                            timeout: leader_timeout * 6,
                            budget: simplex_config::SkipBudget::Participants,
                        },
                        replay_buffer: NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN),
                        write_buffer: NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN),
                        page_cache: CacheRef::new(
                            NonZeroU16::new(1024).unwrap_or(NonZeroU16::MIN),
                            NonZeroUsize::new(10).unwrap_or(NonZeroUsize::MIN),
                        ),
                        forward: simplex_config::ForwardPolicy::Disabled,
                        track_historical_votes: false,
                    };
                    let started = simplex::Engine::new(
                        context.child("simplex").with_attribute("epoch", epoch),
                        config,
                    );
                    // The core says when: once the other validators answered, or after a
                    // bounded wait. A dropped sender (the core ended) starts it too; the loop
                    // then sees the core's end.
                    let _ = ready.await;
                    tracing::info!(epoch, validators = validators.len(), "starting the consensus engine");
                    let (mut votes_sender, votes_receiver) = epoch_votes;
                    if let Some(signer) =
                        Scheme::signer(&namespace, validators.clone(), private.clone())
                    {
                        hello(&mut votes_sender, &signer, epoch);
                    }
                    let withhold_finalize = fault == Some(core::Fault::WithholdFinalize);
                    let votes_sender = Votes {
                        inner: votes_sender,
                        withhold_finalize,
                    };
                    let votes_receiver = VotesIn {
                        inner: votes_receiver,
                        withhold_finalize,
                    };
                    engine = Some(started.start(
                        (votes_sender, votes_receiver),
                        epoch_certificates,
                        epoch_resolver,
                    ));
                };
                if let Some(engine) = engine {
                    engine.abort();
                }
                for muxer in muxers {
                    muxer.abort();
                }
                network_handle.abort();
                let _ = context.stop(0, Some(Duration::from_secs(5))).await;
                result
            })
        })
        .context("cannot start the network thread")?;
    Ok(Started {
        status,
        fetcher,
        thread,
    })
}

/// The consensus engine's sender of votes. With [`core::Fault::WithholdFinalize`] (debug builds,
/// tests only) it drops this validator's finalize votes and sends the others.
#[derive(Clone)]
struct Votes<S> {
    inner: S,
    withhold_finalize: bool,
}

/// The consensus engine's receiver of votes. With [`core::Fault::WithholdFinalize`] it drops
/// the finalize votes of the others: the engine could otherwise assemble a finalization from
/// theirs and its own, unsent, vote, and send it.
#[derive(Debug)]
struct VotesIn<R> {
    inner: R,
    withhold_finalize: bool,
}

impl<R: commonware_p2p::Receiver> commonware_p2p::Receiver for VotesIn<R> {
    type Error = R::Error;
    type PublicKey = R::PublicKey;

    async fn recv(&mut self) -> Result<commonware_p2p::Message<Self::PublicKey>, Self::Error> {
        loop {
            let (from, message) = self.inner.recv().await?;
            if !(self.withhold_finalize && message.as_ref().first() == Some(&FINALIZE_VOTE)) {
                return Ok((from, message));
            }
        }
    }

    fn capacity(&self) -> NonZeroUsize {
        self.inner.capacity()
    }
}

/// [`Votes`] after its recipients were checked against their rate limits.
struct CheckedVotes<C> {
    inner: C,
    withhold_finalize: bool,
}

/// The first byte of commonware's encoding of a finalize vote (`Vote::Finalize`; notarize is 0,
/// nullify 1).
const FINALIZE_VOTE: u8 = 2;

impl<S: commonware_p2p::LimitedSender> commonware_p2p::LimitedSender for Votes<S> {
    type PublicKey = S::PublicKey;
    type Checked<'a>
        = CheckedVotes<S::Checked<'a>>
    where
        Self: 'a;

    fn check(
        &mut self,
        recipients: Recipients<Self::PublicKey>,
    ) -> Result<Self::Checked<'_>, std::time::SystemTime> {
        let withhold_finalize = self.withhold_finalize;
        self.inner.check(recipients).map(|inner| CheckedVotes {
            inner,
            withhold_finalize,
        })
    }
}

impl<C: commonware_p2p::CheckedSender> commonware_p2p::CheckedSender for CheckedVotes<C> {
    type PublicKey = C::PublicKey;

    fn recipients(&self) -> Vec<Self::PublicKey> {
        self.inner.recipients()
    }

    fn send(
        self,
        message: impl Into<commonware_runtime::IoBufs> + Send,
        priority: bool,
    ) -> commonware_actor::Unreliable<commonware_actor::Feedback> {
        let message: commonware_runtime::IoBufs = message.into();
        if self.withhold_finalize
            && message.chunk_at(0).and_then(<[u8]>::first) == Some(&FINALIZE_VOTE)
        {
            tracing::warn!("withholding a finalize vote (WEFT_FAULT)");
            return commonware_actor::Unreliable::new(commonware_actor::Feedback::Ok);
        }
        self.inner.send(message, priority)
    }
}

/// Forwards what a peer-to-peer channel receives to the core.
fn forward<R>(
    context: &commonware_runtime::tokio::Context,
    mut receiver: R,
    events: Sender<Event>,
    make: fn(Key, Vec<u8>) -> Event,
) where
    R: commonware_p2p::Receiver<PublicKey = Key>,
{
    context.child("forward").spawn(move |_| async move {
        while let Ok((from, message)) = receiver.recv().await {
            if events.send(make(from, message.as_ref().to_vec())).is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a validator sends when its engine starts: a vote every peer's engine decodes (one
    /// it could not decode would get the sender blocked), a nullify of the epoch's view 0 that
    /// no engine tracks, signed by this validator.
    #[test]
    fn the_hello_is_a_signed_nullify_of_the_epochs_view_zero() {
        use commonware_consensus::simplex::types::Vote;
        use commonware_consensus::types::{Round, View};
        use commonware_cryptography::Signer as _;
        let privates: Vec<ed25519::PrivateKey> =
            (1..=4).map(ed25519::PrivateKey::from_seed).collect();
        let validators = Set::from_iter_dedup(privates.iter().map(|key| key.public_key()));
        let signer =
            Scheme::signer(b"weft-test", validators.clone(), privates[2].clone()).expect("signer");
        let bytes = hello_vote(&signer, 3).expect("signed");
        let vote =
            Vote::<Scheme, Digest>::decode(commonware_codec::Copying(&bytes[..])).expect("decodes");
        let Vote::Nullify(nullify) = vote else {
            panic!("not a nullify: {vote:?}");
        };
        assert_eq!(nullify.round(), Round::new(Epoch::new(3), View::zero()));
        let mut rng = rand::rng();
        let strategy = commonware_parallel::Sequential;
        let verifier = Scheme::verifier(b"weft-test", validators.clone());
        assert!(nullify.verify::<_, Digest>(&mut rng, &verifier, &strategy));
        // Signed under this network's namespace: another network's engines refuse it.
        let elsewhere = Scheme::verifier(b"weft-other", validators);
        assert!(!nullify.verify::<_, Digest>(&mut rng, &elsewhere, &strategy));
    }

    fn key(seed: u8) -> weft_core::PublicKey {
        SigningKey::from_seed(&[seed; 32]).public_key()
    }

    #[test]
    fn the_peer_set_dials_validators_then_picks_and_never_exceeds_its_capacity() {
        let schedule = Schedule {
            genesis: vec![key(1), key(2), key(3), key(4)],
            changes: vec![weft_ledger::state::ValidatorChange {
                from_height: 50,
                validators: vec![key(2), key(3), key(4), key(5)],
                scheduled_at: weft_ledger::state::Position {
                    height: 10,
                    index: 0,
                },
            }],
        };
        // Epoch 0 with a change scheduled: this epoch's validators, then the newcomer.
        let primary = primary_peers(&schedule, 0).expect("keys");
        let expected: Vec<Key> = [1, 2, 3, 4, 5]
            .iter()
            .map(|seed| engine_key(&key(*seed)).expect("key"))
            .collect();
        assert_eq!(primary, expected);
        assert_eq!(primary_peers(&schedule, 1).expect("keys").len(), 4);

        let at = |port: u16| commonware_p2p::Address::Symmetric(([127, 0, 0, 1], port).into());
        let engine = |seed: u8| engine_key(&key(seed)).expect("key");
        let me = engine(1);
        // Dialled: the validators (this node left out), then a pick (key 30); accepted: the
        // others, a pick listed again among them counted once, as dialled.
        let dialled: Vec<(Key, commonware_p2p::Address)> = primary
            .iter()
            .cloned()
            .chain([engine(30)])
            .map(|key| (key, at(1)))
            .collect();
        let accepted: Vec<(Key, commonware_p2p::Address)> = [20, 30, 31, 1]
            .iter()
            .map(|seed| (engine(*seed), core::unknown_address()))
            .collect();
        let ((primary_set, secondary_set), left_out) =
            peer_set(dialled.clone(), accepted.clone(), &me, 100);
        assert_eq!(
            (primary_set.len(), secondary_set.len(), left_out),
            (5, 2, 0)
        );
        assert!(!primary_set.contains_key(&me) && !secondary_set.contains_key(&me));
        assert!(primary_set.contains_key(&engine(30)) && !secondary_set.contains_key(&engine(30)));
        // Room for 7 identities, this node included: the validators and the pick, then one
        // other; one left out.
        let ((primary_set, secondary_set), left_out) =
            peer_set(dialled.clone(), accepted.clone(), &me, 7);
        assert_eq!(
            (primary_set.len(), secondary_set.len(), left_out),
            (5, 1, 1)
        );
        // Room for 3: the first validators only.
        let ((primary_set, secondary_set), left_out) = peer_set(dialled, accepted, &me, 3);
        assert_eq!(
            (primary_set.len(), secondary_set.len(), left_out),
            (2, 0, 6)
        );
        assert!(primary_set.contains_key(&engine(2)) && primary_set.contains_key(&engine(3)));
    }
}
