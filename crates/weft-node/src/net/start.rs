//! Starting a node's network: what is checked first ([`prepare`]), then commonware's
//! authenticated peer-to-peer network and the consensus engines on its tokio runtime, in a
//! thread of their own, and the core in another.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use commonware_codec::DecodeExt;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::utils::mux::Muxer;
use commonware_runtime::{Quota, Runner as _, Spawner as _, Supervisor as _};
use commonware_stream::{cups, sake};
use commonware_utils::channel::oneshot;
use commonware_utils::ordered::Set;
use weft_ledger::state::{Schedule, StateView as _};
use weft_ledger::store::Store as _;

use super::addresses::{self, AddressBook};
use super::engine::Mailbox;
use super::*;
use crate::submission::Submission;

/// What a node checks and reads before its network starts.
pub(super) struct Prepared {
    chain_id: weft_core::ChainId,
    schedule: Schedule,
    followers: Set<Key>,
    private: ed25519::PrivateKey,
    addresses: AddressBook,
    peers_per_set: usize,
    status: SharedStatus,
}

/// Reads the chain's validators and the admitted peers, checks this node may connect at all,
/// opens the address book (taking over an earlier node's side file) and sizes the peer set.
pub(super) fn prepare(params: &NetParams) -> Result<Prepared> {
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
    let status = Arc::new(Mutex::new(NetStatus {
        key: params.key.public_key().to_string(),
        validator: is_validator,
        epoch,
        validators: validators
            .iter()
            .map(|key| weft_key(key).to_string())
            .collect(),
        next_validators: status::next_validators(&schedule, epoch),
        // Until the core has heard from a peer.
        sync: "no peers".into(),
        members: member_list(&members),
        ..NetStatus::default()
    }));
    Ok(Prepared {
        chain_id,
        schedule,
        followers,
        private,
        addresses,
        peers_per_set,
        status,
    })
}

/// The parts of a node that do not depend on its runtime or network, from what [`prepare`]
/// read: the core's parameters (reading the time from `clock`) and its inbox.
pub(super) fn node_parts(
    params: NetParams,
    prepared: Prepared,
    clock: Box<dyn core::clock::Clock>,
    events: Sender<Event>,
    inbox: Receiver<Event>,
) -> NodeParts {
    let leader_timeout = Duration::from_millis(params.config.leader_timeout_ms);
    NodeParts {
        core: core::CoreParams {
            ledger: params.ledger,
            key: params.key,
            schedule: prepared.schedule,
            followers: prepared.followers,
            peers_per_set: prepared.peers_per_set,
            namespace: namespace(prepared.chain_id),
            status: prepared.status,
            metrics: params.metrics,
            tail: params.tail,
            clock,
            addresses: prepared.addresses,
            config: params.config,
            max_txs: params.max_txs,
            filter: params.filter,
            follow_proofs: params.follow_proofs,
        },
        evidence_path: params.evidence_path,
        private: prepared.private,
        leader_timeout,
        partition_prefix: String::new(),
        events,
        inbox,
    }
}

/// Starts the network and consensus for a node whose submissions arrive on `submissions`.
pub(crate) fn start(params: NetParams, submissions: Receiver<Submission>) -> Result<Started> {
    let prepared = prepare(&params)?;
    let status = prepared.status.clone();
    let private = prepared.private.clone();
    let peers_per_set = prepared.peers_per_set;
    let listen = params.config.listen_addr()?;
    let dial_interval_ms = params.config.dial_interval_ms;
    let namespace = namespace(prepared.chain_id);
    let (events, inbox) = std::sync::mpsc::channel::<Event>();
    let fetcher = Fetcher {
        events: events.clone(),
    };

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
                let registered = Registered::register(|channel, quota| {
                    std::future::ready(Ok(network.register(channel, quota)))
                })
                .await?;
                let network_handle = network.start();
                let parts = node_parts(
                    params,
                    prepared,
                    Box::new(core::clock::SystemClock),
                    events,
                    inbox,
                );
                // The core runs in a thread of its own, blocking on its inbox.
                let result = run_node(
                    context.child("node"),
                    registered,
                    oracle,
                    parts,
                    |core, io, inbox| {
                        let (done, finished) = oneshot::channel::<Result<()>>();
                        std::thread::Builder::new()
                            .name("net-core".into())
                            .spawn(move || {
                                let _ = done.send(super::driver::run_blocking(core, io, inbox));
                            })
                            .context("cannot start the network core thread")?;
                        Ok(finished)
                    },
                )
                .await;
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

/// A node's peer-to-peer channels, as its network registered them: a sender and a receiver
/// for each of weft's channels ([`wire`]).
pub(super) struct Registered<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub blocks: (S, R),
    pub txs: (S, R),
    pub sync: (S, R),
}

impl<S, R> Registered<S, R> {
    /// Registers weft's channels with `register`, each with how many messages per second one
    /// peer may send on it. Each channel's inbound mailbox is sized from these (a burst from
    /// every peer), so they are kept to what the protocol needs: a few votes per view, a block
    /// per view.
    pub(super) async fn register<F, O>(mut register: F) -> Result<Self>
    where
        F: FnMut(u64, Quota) -> O,
        O: std::future::Future<Output = Result<(S, R)>>,
    {
        let quota = |per_second: u32| {
            Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
        };
        Ok(Registered {
            votes: register(wire::CHANNEL_VOTES, quota(2_000)).await?,
            certificates: register(wire::CHANNEL_CERTIFICATES, quota(2_000)).await?,
            resolver: register(wire::CHANNEL_RESOLVER, quota(2_000)).await?,
            blocks: register(wire::CHANNEL_BLOCKS, quota(200)).await?,
            txs: register(wire::CHANNEL_TXS, quota(500)).await?,
            sync: register(wire::CHANNEL_SYNC, quota(200)).await?,
        })
    }
}

/// What a node is made of besides its runtime and its peer-to-peer network.
pub(super) struct NodeParts {
    pub core: core::CoreParams,
    /// Where the core's evidence of misbehaviour is appended.
    pub evidence_path: PathBuf,
    /// The key the node votes with.
    pub private: ed25519::PrivateKey,
    pub leader_timeout: Duration,
    /// Put before the engine's storage partitions' names ([`engine::Engines`]).
    pub partition_prefix: String,
    /// The core's inbox, and a sender into it.
    pub events: Sender<Event>,
    pub inbox: Receiver<Event>,
}

/// Runs a node on any commonware runtime and peer-to-peer network: the engine's channels
/// multiplexed by epoch, the peers' messages and a tick forwarded to the core, the core started
/// by `drive` (which says where its result arrives), and the consensus engine of each epoch the
/// core names, until the core ends; returns the core's result.
pub(super) async fn run_node<E, S, R, B, D>(
    context: E,
    registered: Registered<S, R>,
    blocker: B,
    parts: NodeParts,
    drive: D,
) -> Result<()>
where
    E: commonware_runtime::Clock
        + rand::CryptoRng
        + commonware_runtime::Spawner
        + commonware_runtime::Storage
        + commonware_runtime::Metrics
        + commonware_runtime::Supervisor,
    S: commonware_p2p::Sender<PublicKey = Key>,
    R: commonware_p2p::Receiver<PublicKey = Key>,
    B: commonware_p2p::Blocker<PublicKey = Key>
        + commonware_p2p::AddressableManager<PublicKey = Key>
        + Clone,
    D: FnOnce(
        core::Core,
        core::CoreIo<S, B>,
        Receiver<Event>,
    ) -> Result<oneshot::Receiver<Result<()>>>,
{
    let NodeParts {
        core: core_params,
        evidence_path,
        private,
        leader_timeout,
        partition_prefix,
        events,
        inbox,
    } = parts;
    let namespace = core_params.namespace.clone();
    let (epochs_out, epochs_in) = tokio::sync::mpsc::unbounded_channel::<EpochStart>();
    // The engine's channels carry one subchannel per epoch: the engine of a new epoch starts on
    // fresh ones while messages of the old one are dropped.
    let (votes_out, votes_in) = registered.votes;
    let (certificates_out, certificates_in) = registered.certificates;
    let (resolver_out, resolver_in) = registered.resolver;
    let (votes_mux, votes) = Muxer::new(context.child("votes_mux"), votes_out, votes_in);
    let (certificates_mux, certificates) = Muxer::new(
        context.child("certificates_mux"),
        certificates_out,
        certificates_in,
    );
    let (resolver_mux, resolver) =
        Muxer::new(context.child("resolver_mux"), resolver_out, resolver_in);
    let muxers = [
        votes_mux.start(),
        certificates_mux.start(),
        resolver_mux.start(),
    ];
    let (blocks_out, blocks_in) = registered.blocks;
    let (txs_out, txs_in) = registered.txs;
    let (sync_out, sync_in) = registered.sync;
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
    let core = core::Core::new(core_params, core::effect::connected_probe(sync_out.clone()))?;
    let io = core::CoreIo {
        epochs: epochs_out,
        blocks_out,
        txs_out,
        sync_out,
        blocker: blocker.clone(),
        evidence_path,
    };
    let finished = drive(core, io, inbox)?;
    let result = engine::run_epochs(
        context.child("engines"),
        engine::Engines {
            namespace,
            private,
            blocker,
            mailbox: Mailbox {
                events: events.clone(),
            },
            leader_timeout,
            partition_prefix,
        },
        engine::Channels {
            votes,
            certificates,
            resolver,
        },
        epochs_in,
        finished,
    )
    .await;
    for muxer in muxers {
        muxer.abort();
    }
    result
}

/// Forwards what a peer-to-peer channel receives to the core.
fn forward<E, R>(
    context: &E,
    mut receiver: R,
    events: Sender<Event>,
    make: fn(Key, Vec<u8>) -> Event,
) where
    E: commonware_runtime::Spawner + commonware_runtime::Supervisor,
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
