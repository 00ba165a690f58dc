//! Networks of nodes (docs/network.md, ADR 0010): validators agree on blocks with commonware's
//! Simplex BFT consensus over commonware's authenticated, encrypted peer-to-peer network.
//!
//! [`start`] starts both on commonware's tokio runtime, in a thread of their own, and bridges
//! them to [`core::Core`], a plain thread that owns everything weft decides: which transactions
//! go into a proposal, whether a proposed block is valid, and committing finalized blocks to
//! the ledger. The engine of each epoch ([`engine`]) reaches the core through [`Mailbox`] (its
//! `Automaton`, `Relay` and `Reporter`); peers' messages reach it through forwarding tasks; the
//! node's submission queue reaches it through a forwarding thread.

mod addresses;
mod core;
mod driver;
mod engine;
pub mod finality;
pub mod join;
#[cfg(test)]
mod sim;
pub(crate) mod start;
pub(crate) mod status;
pub mod wire;

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use commonware_codec::DecodeExt;
use commonware_consensus::simplex;
use commonware_cryptography::{ed25519, sha256};
use commonware_p2p::Recipients;
use commonware_utils::channel::oneshot;
use commonware_utils::ordered::Set;
use weft_core::SigningKey;
use weft_ledger::state::Schedule;
use weft_ledger::store::Store as _;
use weft_ledger::store::network::NetworkPeers;

use crate::config::NetworkSection;
use crate::metrics::Metrics;
use crate::submission::{SharedLedger, Submission};
pub use status::{CutOff, Member, NetStatus};

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
) -> ((PeerMap, PeerMap), usize) {
    let mut room = capacity.saturating_sub(1);
    let mut left_out = 0;
    let (mut dialled, mut accepted) = (PeerMap::new(), PeerMap::new());
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

/// The peers a node gives the p2p network: each one's address (primary: dialled; secondary:
/// accepted when it dials).
pub(crate) type PeerMap = std::collections::BTreeMap<Key, commonware_p2p::Address>;

/// The address given for a peer whose address this node does not know: a host name, which the
/// p2p network (not allowed DNS) never dials.
pub(crate) fn unknown_address() -> commonware_p2p::Address {
    commonware_p2p::Address::Asymmetric {
        ingress: commonware_p2p::Ingress::Dns {
            host: commonware_utils::Hostname::new("address.unknown")
                .expect("a valid constant host name"),
            port: 0,
        },
        egress: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
    }
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
    /// Does it follow its chain on proofs (`node.follow`)?
    pub follow_proofs: bool,
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

/// A checked history and the peer it came from (its key), or why none was had.
pub(crate) type HistoryResult = Result<Box<(weft_ledger::history::CheckedHistory, String)>, String>;
/// Where a history fetch is answered.
pub(crate) type HistoryReply = tokio::sync::oneshot::Sender<HistoryResult>;

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

    /// `fingerprint`'s whole history (and `recipient`'s registration) from a peer, checked
    /// against this node's own headers ([`weft_ledger::history::check`]), within
    /// [`FETCH_TIMEOUT`]: for a node that follows on proofs. The error says why none was had,
    /// naming the peers whose answers did not check out.
    pub async fn history(
        &self,
        fingerprint: weft_core::Fingerprint,
        recipient: Option<weft_core::ResourceId>,
    ) -> HistoryResult {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let event = Event::History {
            fingerprint,
            recipient,
            reply,
        };
        if self.events.send(event).is_err() {
            return Err("the node's network has stopped".into());
        }
        tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), answer)
            .await
            .map_err(|_| "no peer answered in time".to_string())?
            .map_err(|_| "the node's network has stopped".to_string())?
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
    /// An asset's history, asked of the peers by a node that follows on proofs.
    History {
        fingerprint: weft_core::Fingerprint,
        recipient: Option<weft_core::ResourceId>,
        reply: HistoryReply,
    },
    Tick,
    /// The node is stopping: answer what is held and end.
    Stop,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            .map(|seed| (engine(*seed), unknown_address()))
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
