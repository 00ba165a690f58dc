//! Networks of weft nodes simulated in one process (ADR 0020): validators, archive and thin
//! nodes, each with its real ledger (redb in a temporary directory), its real core and its
//! real consensus engines, wired by the node's own [`super::start::run_node`], on commonware's
//! deterministic runtime and its simulated peer-to-peer network (seeded latency, jitter, loss
//! and partitions). Everything — the schedule of messages, the clock, the order of the core's
//! maps — follows from the seed, so a seed that fails replays.
//!
//! Byzantine validators are actors of this test code ([`byzantine`]) wrapped around an honest
//! node's peer-to-peer channels; nothing in the production core knows of them.

mod byzantine;
mod node;
mod suite;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::Result;
use commonware_p2p::simulated::{self, Link};
use commonware_runtime::{Clock as _, Runner as _, Spawner as _, Supervisor as _, deterministic};
use commonware_utils::channel::oneshot;
use weft_core::model::{Address, Genesis, Organization, Payload, RegisterResource, Resource};
use weft_core::{BlockHash, ChainId, SigningKey, TxId};
use weft_ledger::store::RedbStore;
use weft_ledger::store::Store as _;
use weft_ledger::{Ledger, Signer, Transaction};

use super::core::{self, Core};
use super::start::{NodeParts, Registered, node_parts, prepare, run_node};
use super::{Event, Key, NetParams, engine_key};
use crate::config::NetworkSection;
use crate::submission::{SharedLedger, Submission, TxResult};

pub(super) use byzantine::Byzantine;
use node::{Role, params_of, start_node};

/// Where simulated time starts: 2026-01-01T00:00:00Z.
const START_MS: u64 = 1_767_225_600_000;
/// Most simulated time one schedule may take before it counts as a failure (liveness).
const DEADLINE: Duration = Duration::from_secs(180);

type Context = deterministic::Context;
type P2pSender = simulated::Sender<Key, Context>;

/// One simulated network and what happens to it.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub seed: u64,
    pub validators: usize,
    /// Nodes that follow and store everything.
    pub archives: usize,
    /// Nodes that follow and store whole only what their storage filter keeps.
    pub thins: usize,
    /// Thin nodes that follow on proofs (filtered bodies, blocks taken on certificates). At
    /// the end the first is asked for the history of a fingerprint nobody named
    /// ([`Outcome::history`]).
    pub proof_thins: usize,
    /// Every link's mean latency, its jitter and the share of messages delivered.
    pub latency: Duration,
    pub jitter: Duration,
    pub delivered: f64,
    /// Transactions submitted, in rounds, to nodes picked by the seed (some twice, to two
    /// nodes).
    pub transactions: usize,
    /// Cut the network in two (validators `0..split` and the rest) from `at` for `lasting`.
    pub partition: Option<Partition>,
    /// Validators that misbehave, by index.
    pub byzantine: Vec<(usize, Byzantine)>,
    /// `network.idle_block_ms`: how often the validators finalize an empty block.
    pub idle_block_ms: u64,
    /// The Byzantine validators behave from this much simulated time on (`None`: never).
    pub honest_after: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Partition {
    pub split: usize,
    pub at: Duration,
    pub lasting: Duration,
}

impl Plan {
    pub fn honest(seed: u64, validators: usize) -> Plan {
        Plan {
            seed,
            validators,
            archives: 0,
            thins: 0,
            proof_thins: 0,
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            delivered: 1.0,
            transactions: 12,
            partition: None,
            byzantine: Vec::new(),
            idle_block_ms: NetworkSection::default().idle_block_ms,
            honest_after: None,
        }
    }
}

/// What a schedule ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outcome {
    /// Every node's committed head: height and block hash.
    pub heads: Vec<(u64, BlockHash)>,
    /// The transactions the network acknowledged as committed.
    pub committed: Vec<TxId>,
    /// The runtime's digest of everything that happened (tasks, messages, time).
    pub runtime: String,
    /// The evidence each node recorded (docs/network.md, "Evidence"), by node.
    pub evidence: Vec<Vec<serde_json::Value>>,
    /// The peers each node's status lists as cut off at the end: key, reason, until (ms).
    pub cut_off: Vec<Vec<(String, String, u64)>>,
    /// With a partition: the highest head when the network was cut, and when it healed.
    pub partitioned: Option<(u64, u64)>,
    /// Simulated time the schedule took.
    pub took: Duration,
    /// Every 50 ms of simulated time until the last answer: the time (ms), the highest
    /// committed height and the highest notarized view among the honest nodes.
    pub trace: Vec<(u64, u64, u64)>,
    /// With a thin node on proofs: what it got when asked for a history at the end (the
    /// number of transactions, or why it took none).
    pub history: Option<Result<usize, String>>,
}

impl Outcome {
    /// The final state every node agrees on: the head's hash (it commits to every block, so
    /// to every transaction and so to the whole state).
    pub fn state(&self) -> BlockHash {
        self.heads[0].1
    }
}

/// A node of the simulation.
struct SimNode {
    status: super::SharedStatus,
    ledger: SharedLedger,
    events: Sender<Event>,
    evidence_path: PathBuf,
    /// Its ledger, address book and evidence.
    _dir: tempfile::TempDir,
    /// Ends with the node's core.
    finished: oneshot::Receiver<Result<()>>,
}

/// The chain every node of a simulation starts from.
struct Chain {
    authority: SigningKey,
    genesis: Transaction,
    id: ChainId,
}

impl Chain {
    fn new(validators: &[SigningKey]) -> Chain {
        let authority = SigningKey::from_seed(&[0xa0; 32]);
        let id = ChainId::from_name("simulation").expect("a valid name");
        let genesis = Transaction::sign(
            id,
            START_MS,
            Signer::Authority,
            &authority,
            Payload::Genesis(Genesis {
                chain_name: "simulation".into(),
                authorities: vec![authority.public_key()],
                producers: validators.iter().map(SigningKey::public_key).collect(),
                time_window_ms: 300_000,
            }),
        )
        .expect("genesis");
        Chain {
            authority,
            genesis,
            id,
        }
    }

    /// The `n`th organisation the workload registers.
    fn register(&self, n: usize, time: u64) -> Transaction {
        registration(&self.authority, self.id, n as u64, time)
    }
}

/// A registration of organisation `n` by the authority, at `time`.
fn registration(authority: &SigningKey, chain: ChainId, n: u64, time: u64) -> Transaction {
    Transaction::sign(
        chain,
        time,
        Signer::Authority,
        authority,
        Payload::RegisterResource(RegisterResource {
            resource: Resource::Organization(Organization {
                name: Some(format!("Organisation {n}")),
                website: None,
                address: Address {
                    town: "Gaithersburg".into(),
                    country: "US".into(),
                    ..Address::default()
                },
            }),
            key: SigningKey::from_seed(&seed_bytes(0x5000 + n)).public_key(),
        }),
    )
    .expect("a valid registration")
}

fn copy(key: &SigningKey) -> SigningKey {
    SigningKey::from_seed(&key.seed())
}

fn seed_bytes(n: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[31] = 0x51;
    bytes
}

/// SplitMix64: the workload's own choices, from the plan's seed.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs `plan` to its end and checks safety on the way out: the same block at every height on
/// every node, every acknowledged transaction exactly once, the same head everywhere. An error
/// says which property broke.
pub(super) fn run(plan: &Plan) -> Result<Outcome> {
    core::hashing::seed_this_thread(plan.seed);
    let config = deterministic::Config::new()
        .with_seed(plan.seed)
        .with_start_time(UNIX_EPOCH + Duration::from_millis(START_MS))
        .with_timeout(Some(DEADLINE + Duration::from_secs(60)));
    deterministic::Runner::new(config).start(|context| async move { simulate(context, plan).await })
}

async fn simulate(context: Context, plan: &Plan) -> Result<Outcome> {
    let started = context.current();
    let nodes_total = plan.validators + plan.archives + plan.thins + plan.proof_thins;
    let keys: Vec<SigningKey> = (0..nodes_total)
        .map(|index| SigningKey::from_seed(&seed_bytes(index as u64 + 1)))
        .collect();
    let engine_keys: Vec<Key> = keys
        .iter()
        .map(|key| engine_key(&key.public_key()))
        .collect::<Result<_>>()?;
    let chain = Chain::new(&keys[..plan.validators]);

    let (network, oracle) = simulated::Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: super::wire::MAX_MESSAGE_BYTES,
            max_peers_per_set: std::num::NonZeroUsize::new(nodes_total.max(1))
                .expect("at least one node"),
            disconnect_on_block: true,
            tracked_peer_sets: std::num::NonZeroUsize::MIN,
        },
        engine_keys.clone(),
    )
    .await;
    let network = network.start();
    let link = Link {
        latency: plan.latency,
        jitter: plan.jitter,
        success_rate: commonware_utils::Probability::from_f64(plan.delivered)
            .expect("a probability"),
    };
    link_all(&oracle, &engine_keys, &link, |_, _| true).await;

    let mut nodes = Vec::with_capacity(nodes_total);
    for index in 0..nodes_total {
        let role = if index < plan.validators {
            Role::Validator
        } else if index < plan.validators + plan.archives {
            Role::Archive
        } else if index < plan.validators + plan.archives + plan.thins {
            Role::Thin
        } else {
            Role::ProofThin
        };
        let byzantine = plan
            .byzantine
            .iter()
            .find(|(at, _)| *at == index)
            .map(|(_, how)| *how);
        nodes.push(
            start_node(
                &context, &oracle, &chain, &keys, plan, index, role, byzantine,
            )
            .await?,
        );
    }

    // The workload: rounds of registrations, each to a node picked by the seed (a third also
    // to a second node: the network must commit it once).
    let mut choices = Choices(plan.seed ^ 0x5eed);
    let mut answers: Vec<tokio::sync::oneshot::Receiver<Vec<TxResult>>> = Vec::new();
    let mut submitted = 0;
    let honest: Vec<usize> = (0..nodes_total)
        .filter(|index| plan.byzantine.iter().all(|(at, _)| at != index))
        .collect();
    let mut partition = plan.partition.map(|partition| (partition, false, false));
    let (mut at_cut, mut at_heal) = (0, 0);
    let mut trace = Vec::new();
    let mut results: Vec<TxResult> = Vec::new();
    let deadline = started + DEADLINE;
    loop {
        let now = context.current();
        if now > deadline {
            anyhow::bail!(
                "liveness: after {:?} of simulated time {} of {} transactions were answered; \
                 heads {:?}",
                DEADLINE,
                results.len(),
                plan.transactions,
                heads(&nodes)
            );
        }
        let elapsed = now.duration_since(started).unwrap_or_default();
        trace.push((
            elapsed.as_millis() as u64,
            highest(&nodes, &honest),
            honest
                .iter()
                .filter_map(|index| nodes[*index].status.lock().ok().map(|s| s.notarized_view))
                .max()
                .unwrap_or(0),
        ));
        if let Some((cut, applied, healed)) = &mut partition {
            if !*applied && elapsed >= cut.at {
                let split = cut.split;
                unlink_all(&oracle, &engine_keys, |a, b| (a < split) != (b < split)).await;
                *applied = true;
                at_cut = highest(&nodes, &honest);
            } else if *applied && !*healed && elapsed >= cut.at + cut.lasting {
                let split = cut.split;
                link_all(&oracle, &engine_keys, &link, |a, b| {
                    (a < split) != (b < split)
                })
                .await;
                *healed = true;
                at_heal = highest(&nodes, &honest);
            }
        }
        if submitted < plan.transactions {
            let batch = (1 + choices.below(3)).min(plan.transactions - submitted);
            let time = context
                .current()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64);
            let transactions: Vec<Transaction> = (submitted..submitted + batch)
                .map(|n| chain.register(n, time))
                .collect();
            submitted += batch;
            let first = honest[choices.below(honest.len())];
            let mut targets = vec![first];
            if choices.below(3) == 0 && honest.len() > 1 {
                let second = honest[choices.below(honest.len())];
                if second != first {
                    targets.push(second);
                }
            }
            for target in targets {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let _ = nodes[target].events.send(Event::Submit(Submission {
                    transactions: transactions.clone(),
                    received: Instant::now(),
                    reply,
                }));
                answers.push(answer);
            }
        }
        answers.retain_mut(|answer| match answer.try_recv() {
            Ok(answered) => {
                results.extend(answered);
                false
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => true,
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => false,
        });
        let partition_over = partition.is_none_or(|(_, _, healed)| healed);
        if submitted == plan.transactions && answers.is_empty() && partition_over {
            break;
        }
        context.sleep(Duration::from_millis(50)).await;
    }

    for result in &results {
        if let TxResult::Failed { id, message } = result {
            anyhow::bail!("transaction {id} failed: {message}");
        }
    }
    let committed: Vec<TxId> = {
        let mut ids: Vec<TxId> = results
            .iter()
            .filter_map(|result| match result {
                TxResult::Committed { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let distinct = {
        let mut ids: Vec<TxId> = results.iter().map(result_id).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    if committed.len() != distinct {
        anyhow::bail!(
            "{} distinct transactions were answered, {} of them committed: {:?}",
            distinct,
            committed.len(),
            results
                .iter()
                .filter(|result| !matches!(result, TxResult::Committed { .. }))
                .collect::<Vec<_>>()
        );
    }

    // Every honest node catches up with the highest head (bounded).
    let target = heads(&nodes)
        .iter()
        .map(|(height, _)| *height)
        .max()
        .unwrap_or(0);
    let caught_up_by = context.current() + Duration::from_secs(60);
    while honest.iter().any(|index| heads(&nodes)[*index].0 < target) {
        if context.current() > caught_up_by {
            anyhow::bail!(
                "liveness: the nodes did not all reach height {target} within 60 s: {:?}",
                heads(&nodes)
            );
        }
        context.sleep(Duration::from_millis(50)).await;
    }

    // A thin node on proofs asked for a history (bounded: the fetch answers within its
    // timeout).
    let history = if plan.proof_thins > 0 {
        let thin = &nodes[nodes_total - plan.proof_thins];
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let _ = thin.events.send(Event::History {
            fingerprint: weft_core::Fingerprint::of_bytes(
                weft_core::HashAlgo::Sha256,
                b"nobody named this",
            ),
            recipient: None,
            reply,
        });
        let asked_by = context.current() + super::FETCH_TIMEOUT + Duration::from_secs(2);
        loop {
            match answer.try_recv() {
                Ok(result) => {
                    break Some(result.map(|checked| checked.0.transactions.len()));
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                    if context.current() <= asked_by =>
                {
                    context.sleep(Duration::from_millis(50)).await;
                }
                Err(_) => break Some(Err("no answer".into())),
            }
        }
    } else {
        None
    };

    for node in &nodes {
        let _ = node.events.send(Event::Stop);
    }
    let mut ended = Vec::new();
    for node in &mut nodes {
        ended.push((&mut node.finished).await);
    }
    network.abort();
    for (index, end) in ended.into_iter().enumerate() {
        match end {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(error)) => anyhow::bail!("node {index} ended with an error: {error:#}"),
        }
    }

    check_safety(&nodes, &honest, &committed)?;
    let took = context
        .current()
        .duration_since(started)
        .unwrap_or_default();
    Ok(Outcome {
        heads: honest.iter().map(|index| heads(&nodes)[*index]).collect(),
        committed,
        runtime: context.auditor().state(),
        evidence: nodes.iter().map(evidence_of).collect(),
        cut_off: nodes
            .iter()
            .map(|node| {
                node.status
                    .lock()
                    .map(|status| {
                        status
                            .cut_off
                            .iter()
                            .map(|cut| (cut.key.clone(), cut.reason.clone(), cut.until_ms))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect(),
        partitioned: plan.partition.map(|_| (at_cut, at_heal)),
        took,
        trace,
        history,
    })
}

fn result_id(result: &TxResult) -> TxId {
    match result {
        TxResult::Committed { id, .. }
        | TxResult::Rejected { id, .. }
        | TxResult::Failed { id, .. } => *id,
    }
}

/// Safety, on the honest nodes: one block per height, every ledger audited from genesis, every
/// acknowledged transaction in the chain exactly once and nothing else in it.
fn check_safety(nodes: &[SimNode], honest: &[usize], committed: &[TxId]) -> Result<()> {
    let chains: Vec<Vec<BlockHash>> = honest
        .iter()
        .map(|index| chain_of(&nodes[*index].ledger))
        .collect::<Result<_>>()?;
    let longest = chains.iter().map(Vec::len).max().unwrap_or(0);
    for height in 0..longest {
        let at: Vec<Option<&BlockHash>> = chains.iter().map(|chain| chain.get(height)).collect();
        let first = at.iter().flatten().next();
        if let Some(first) = first
            && at.iter().flatten().any(|hash| hash != first)
        {
            anyhow::bail!("safety: two different final blocks at height {height}: {at:?}");
        }
    }
    // The nodes were stopped while the validators went on finalizing empty blocks: a node may
    // end a block or two behind another (every one reached the height of the last
    // acknowledged transaction, checked before), never on another branch (checked above).
    // Every honest node's ledger replays from genesis: links, Merkle roots, seals, signatures
    // and (where nothing is stripped) every rule.
    for index in honest {
        let ledger = nodes[*index]
            .ledger
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let report = weft_ledger::audit::audit(ledger.store(), &mut |_, _| {})?;
        if !report.ok {
            anyhow::bail!(
                "node {index}'s ledger fails its audit: {:?}",
                report.first_bad
            );
        }
    }
    let ledger = nodes[honest[0]]
        .ledger
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut seen: std::collections::BTreeMap<TxId, usize> = std::collections::BTreeMap::new();
    for height in 1..longest as u64 {
        for tx in ledger.store().block_transactions(height)? {
            *seen.entry(tx.id()).or_default() += 1;
        }
    }
    for id in committed {
        match seen.get(id) {
            Some(1) => {}
            Some(times) => anyhow::bail!("safety: transaction {id} is in the chain {times} times"),
            None => anyhow::bail!("safety: acknowledged transaction {id} is not in the chain"),
        }
    }
    if let Some((id, times)) = seen.iter().find(|(_, times)| **times > 1) {
        anyhow::bail!("safety: transaction {id} is in the chain {times} times");
    }
    // Every transaction submitted was answered: one in the chain that was not acknowledged
    // came from elsewhere (a Byzantine block made final).
    if let Some(id) = seen.keys().find(|id| committed.binary_search(id).is_err()) {
        anyhow::bail!("safety: transaction {id} is in the chain but was never acknowledged");
    }
    Ok(())
}

/// The hashes of a node's committed blocks, from block 0.
fn chain_of(ledger: &SharedLedger) -> Result<Vec<BlockHash>> {
    let ledger = ledger.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let head = ledger.head().header.height;
    (0..=head)
        .map(|height| {
            ledger
                .store()
                .signed_header(height)?
                .map(|signed| signed.header.hash())
                .ok_or_else(|| anyhow::anyhow!("no block {height} below the head {head}"))
        })
        .collect()
}

/// The highest head among the honest nodes.
fn highest(nodes: &[SimNode], honest: &[usize]) -> u64 {
    let heads = heads(nodes);
    honest
        .iter()
        .map(|index| heads[*index].0)
        .max()
        .unwrap_or(0)
}

fn heads(nodes: &[SimNode]) -> Vec<(u64, BlockHash)> {
    nodes
        .iter()
        .map(|node| {
            let ledger = node.ledger.lock().expect("ledger");
            (ledger.head().header.height, ledger.head().header.hash())
        })
        .collect()
}

fn evidence_of(node: &SimNode) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&node.evidence_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Links (both ways) every pair of nodes `which` names.
async fn link_all(
    oracle: &simulated::Oracle<Key, Context>,
    keys: &[Key],
    link: &Link,
    which: impl Fn(usize, usize) -> bool,
) {
    for (a, from) in keys.iter().enumerate() {
        for (b, to) in keys.iter().enumerate() {
            if a != b && which(a, b) {
                oracle
                    .add_link(from.clone(), to.clone(), link.clone())
                    .await
                    .expect("link");
            }
        }
    }
}

/// Removes the links (both ways) between every pair of nodes `which` names.
async fn unlink_all(
    oracle: &simulated::Oracle<Key, Context>,
    keys: &[Key],
    which: impl Fn(usize, usize) -> bool,
) {
    for (a, from) in keys.iter().enumerate() {
        for (b, to) in keys.iter().enumerate() {
            if a != b && which(a, b) {
                let _ = oracle.remove_link(from.clone(), to.clone()).await;
            }
        }
    }
}
