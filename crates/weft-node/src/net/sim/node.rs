//! One simulated node: its parameters, its clock and peer manager, how it starts
//! ([`super::super::start::run_node`] on the simulated network) and the task that drives its
//! core.

use super::*;

/// The core's clock in a simulation: the runtime's.
pub(super) struct SimClock {
    context: Context,
    base: Instant,
}

impl core::clock::Clock for SimClock {
    fn now(&self) -> Instant {
        let since = self
            .context
            .current()
            .duration_since(UNIX_EPOCH + Duration::from_millis(START_MS))
            .unwrap_or_default();
        self.base + since
    }

    fn unix_ms(&self) -> u64 {
        self.context
            .current()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64)
    }
}

/// The peer manager a simulated node's core names its peers to and blocks them with. The
/// simulated network keeps one peer set for everyone (the harness tracks every node at the
/// start), so a node's own peer sets are taken and not applied; blocking is real.
#[derive(Clone)]
pub(super) struct SimPeers {
    control: simulated::Control<Key, Context>,
    manager: simulated::SocketManager<Key, Context>,
}

impl std::fmt::Debug for SimPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPeers").finish_non_exhaustive()
    }
}

impl commonware_p2p::Blocker for SimPeers {
    type PublicKey = Key;

    fn block(&mut self, peer: Key) -> commonware_actor::Feedback {
        self.control.block(peer)
    }

    fn blocked(&mut self) -> commonware_p2p::BlockedSubscription<Key> {
        self.control.blocked()
    }
}

impl commonware_p2p::Provider for SimPeers {
    type PublicKey = Key;

    async fn peer_set(&mut self, id: u64) -> Option<commonware_p2p::TrackedPeers<Key>> {
        commonware_p2p::Provider::peer_set(&mut self.manager, id).await
    }

    async fn subscribe(&mut self) -> commonware_p2p::PeerSetSubscription<Key> {
        commonware_p2p::Provider::subscribe(&mut self.manager).await
    }
}

impl commonware_p2p::AddressableManager for SimPeers {
    fn track<R>(&mut self, _id: u64, _peers: R) -> commonware_actor::Feedback
    where
        R: Into<commonware_p2p::AddressableTrackedPeers<Key>> + Send,
    {
        commonware_actor::Feedback::Ok
    }

    fn overwrite(
        &mut self,
        _peers: commonware_utils::ordered::Map<Key, commonware_p2p::Address>,
    ) -> commonware_actor::Feedback {
        commonware_actor::Feedback::Ok
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Role {
    Validator,
    Archive,
    Thin,
    /// A thin node that follows on proofs (`node.follow = "proofs"`).
    ProofThin,
}

/// The parameters of node `index`, its ledger made from the chain's block 0 in `dir`.
pub(super) fn params_of(
    dir: &std::path::Path,
    chain: &Chain,
    keys: &[SigningKey],
    plan: &Plan,
    index: usize,
    role: Role,
) -> Result<(NetParams, SharedLedger)> {
    let validators = plan.validators;
    let ledger = Ledger::create(
        RedbStore::open(&dir.join("ledger.redb"))?,
        chain.genesis.clone(),
        &keys[0],
        START_MS,
    )?;
    let height = ledger.head().header.height;
    let ledger: SharedLedger = Arc::new(Mutex::new(ledger));
    let metrics = Arc::new(crate::metrics::Metrics::new(height, true));
    let (head, _) = tokio::sync::watch::channel(height);
    let address = |index: usize| format!("127.0.0.1:{}", 20_000 + index);
    let config = NetworkSection {
        enabled: true,
        listen: address(index),
        seeds: (0..validators)
            .filter(|seed| *seed != index)
            .map(|seed| format!("{}@{}", keys[seed].public_key(), address(seed)))
            .collect(),
        followers: keys[validators..]
            .iter()
            .map(|key| key.public_key().to_string())
            .collect(),
        idle_block_ms: plan.idle_block_ms,
        ..NetworkSection::default()
    };
    let filter =
        matches!(role, Role::Thin | Role::ProofThin).then(|| weft_ledger::filter::StorageFilter {
            kinds: Vec::new(),
            resources: Vec::new(),
        });
    let params = NetParams {
        ledger: ledger.clone(),
        key: copy(&keys[index]),
        config,
        dir: dir.join("network"),
        evidence_path: dir.join("evidence.jsonl"),
        tail: crate::commit::CommitTail::new(
            ledger.clone(),
            metrics.clone(),
            head,
            weft_ledger::store::DEFAULT_MERGE_AFTER_TXS,
        ),
        metrics,
        max_txs: 10_000,
        filter,
        follow_proofs: role == Role::ProofThin,
    };
    Ok((params, ledger))
}

/// Starts node `index`: its ledger from the chain's block 0, its channels on the simulated
/// network, and the node itself ([`run_node`]) with its core driven by a task of the runtime.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start_node(
    context: &Context,
    oracle: &simulated::Oracle<Key, Context>,
    chain: &Chain,
    keys: &[SigningKey],
    plan: &Plan,
    index: usize,
    role: Role,
    byzantine: Option<Byzantine>,
) -> Result<SimNode> {
    let validators = plan.validators;
    let dir = tempfile::tempdir()?;
    let (params, ledger) = params_of(dir.path(), chain, keys, plan, index, role)?;
    let evidence_path = params.evidence_path.clone();
    let prepared = prepare(&params)?;
    let (events, inbox) = std::sync::mpsc::channel::<Event>();
    let clock = SimClock {
        context: context.child("clock"),
        base: Instant::now(),
    };
    let mut parts: NodeParts = node_parts(params, prepared, Box::new(clock), events.clone(), inbox);
    let status = parts.core.status.clone();
    // The nodes share the runtime's storage: each names its engine's partitions its own.
    parts.partition_prefix = format!("node{index}_");
    let me = engine_key(&keys[index].public_key())?;
    let control = oracle.control(me.clone());
    let registered: Registered<P2pSender, simulated::Receiver<Key>> =
        Registered::register(|channel, quota| {
            let control = control.clone();
            async move {
                control
                    .register(channel, quota)
                    .await
                    .map_err(|error| anyhow::anyhow!("register channel {channel}: {error}"))
            }
        })
        .await?;
    let honest_from = plan
        .honest_after
        .map(|after| UNIX_EPOCH + Duration::from_millis(START_MS) + after);
    let registered = byzantine::wrap(
        byzantine,
        registered,
        &keys[index],
        &parts,
        &keys[..validators],
        honest_from.map(|from| (context.child("honest"), from)),
    );
    if let Some(how @ (Byzantine::Forger | Byzantine::Replayer | Byzantine::StateLiar)) = byzantine
    {
        // It stands between the engine and its core.
        let (to_proposer, proposer_inbox) = std::sync::mpsc::channel::<Event>();
        let to_core = std::mem::replace(&mut parts.events, to_proposer);
        let authority = copy(&chain.authority);
        let chain_id = chain.id;
        let proposer = byzantine::InvalidProposer {
            how,
            ledger: ledger.clone(),
            key: copy(&keys[index]),
            blocks: registered.blocks.0.clone(),
            make_tx: Box::new(move |n, time| {
                registration(&authority, chain_id, 1_000_000 + n, time)
            }),
        };
        context
            .child("byzantine")
            .spawn(move |context| proposer.run(proposer_inbox, to_core, context));
    }
    let peers = SimPeers {
        control,
        manager: oracle.socket_manager(),
    };
    let (done, finished) = oneshot::channel::<Result<()>>();
    let driver = context.child("core");
    context
        .child("node")
        .with_attribute("index", index)
        .spawn(move |context| async move {
            let ended = run_node(context, registered, peers, parts, move |core, io, inbox| {
                let (core_done, core_finished) = oneshot::channel::<Result<()>>();
                driver.spawn(move |context| async move {
                    let _ = core_done.send(drive(core, io, inbox, context).await);
                });
                Ok(core_finished)
            })
            .await;
            let _ = done.send(ended);
        });
    Ok(SimNode {
        status,
        ledger,
        events,
        evidence_path,
        _dir: dir,
        finished,
    })
}

/// The core's driver in a simulation: a task of the runtime that hands it every event waiting
/// in its inbox and performs what it asks, then sleeps a simulated millisecond (the node's
/// driver, [`super::super::driver::run_blocking`], is a thread that blocks on the inbox instead).
async fn drive(
    mut core: Core,
    mut io: SimIo,
    inbox: Receiver<Event>,
    context: Context,
) -> Result<()> {
    let result = feed(&mut core, &mut io, inbox, context).await;
    core.finish();
    super::super::driver::perform_all(&mut core, &mut io);
    result
}

/// The simulated node's handles on the world beyond its core.
type SimIo = core::CoreIo<byzantine::TapSender, SimPeers>;

async fn feed(
    core: &mut Core,
    io: &mut SimIo,
    inbox: Receiver<Event>,
    context: Context,
) -> Result<()> {
    core.start()?;
    super::super::driver::perform_all(core, io);
    loop {
        loop {
            match inbox.try_recv() {
                Ok(event) => {
                    let go_on = core.handle(event)?;
                    super::super::driver::perform_all(core, io);
                    if !go_on {
                        return Ok(());
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        }
        context.sleep(Duration::from_millis(1)).await;
    }
}
