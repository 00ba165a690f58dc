//! A node in a network (docs/network.md): its view of the network, `GET /v1/net/status`, and
//! the join document a new node starts from, `GET /v1/net/join`.
//!
//! Both were structs in `weft-node` before they moved here, answered as such: their fields keep
//! that declaration order, which is the order on the wire (not alphabetical, as in the bodies
//! that replaced JSON maps). Keys travel as hex text, as the node wrote them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `format` of a join document.
pub const JOIN_FORMAT: &str = "weft-join-v1";

/// `GET /v1/net/status`: what a node knows about its network (`weft net status`; the metrics
/// `weft_net_*` show the same values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NetStatus {
    /// This node's key (hex): its identity on the network.
    pub key: String,
    /// Does this node vote?
    pub validator: bool,
    /// The consensus epoch: 0 from genesis, one more at each validator change.
    pub epoch: u64,
    /// The validators of this epoch (keys, hex), in the consensus engine's order.
    pub validators: Vec<String>,
    /// A validator change scheduled and not yet in effect; null if none is.
    pub next_validators: Option<NextValidators>,
    /// Peers heard from in the last 5 s.
    pub peers: Vec<String>,
    /// Every peer known to be online: heard from here, or reported heard from by a peer in
    /// the last 5 s (each node tells its peers whom it hears from every 2 s).
    pub online: Vec<String>,
    /// Peers this node disconnected for sending invalid data, or because they were removed
    /// from the network, until the block lapses.
    pub cut_off: Vec<CutOff>,
    /// Peers whose address this node knows: its seeds, its address book (kept across restarts),
    /// what peers said of themselves and the signed addresses peers passed on.
    pub addresses: u64,
    /// The peers this node dials and keeps connections with: the validators of this epoch and
    /// of the next, and the peers it picked besides them (itself left out).
    pub dialed: u64,
    /// The peers besides the validators this node keeps connections with: its seeds first,
    /// then others known to be online; one whose connection drops is replaced at once.
    pub picked: Vec<String>,
    /// How many it keeps (`network.connections`).
    pub connections_wanted: u64,
    /// How many of those were heard from in the last 5 s.
    pub dialed_connected: u64,
    /// Height of the last committed (final) block.
    pub height: u64,
    /// Highest finalized height this node has heard of (above `height` while it catches up).
    pub finalized_height: u64,
    /// The consensus view of the last finalization seen.
    pub view: u64,
    /// Validators: the consensus view of the last notarization seen in this epoch. Ahead of
    /// `view` while blocks are notarized and none is finalized (finality lags).
    pub notarized_view: u64,
    /// `synced`, `catching up` while finalized blocks are missing, or `no peers` when no peer
    /// was heard from in the last 5 s.
    pub sync: String,
    /// This node's consensus engine: `running`, `waiting for validators` (at start, until every
    /// other validator of the epoch answered, at most `network.start_wait_ms`), or `not voting`;
    /// empty in the moment after the node started, before its network reported.
    pub engine: String,
    /// The validators the engine waits for (empty unless `waiting for validators`).
    pub waiting_for: Vec<String>,
    /// Transactions waiting to be proposed.
    pub mempool: u64,
    /// Misbehaviour seen and recorded (HOME/evidence.jsonl).
    pub evidence: u64,
    /// Blocks this node refused as a validator.
    pub refused_blocks: u64,
    /// Views this validator's engine saw end without a block (a nullification certificate:
    /// the leader was down, slow or refused), since the node started.
    pub nullified_views: u64,
    /// Peers admitted to the network by `NetworkPeer` transactions.
    pub members: Vec<Member>,
}

/// A peer disconnected by this node (`NetStatus.cut_off`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CutOff {
    /// The peer's key, hex.
    pub key: String,
    /// What it did: the invalid data it sent, or its removal.
    pub reason: String,
    /// When it may connect again, ms since the Unix epoch.
    pub until_ms: u64,
}

/// Validators that take over from a height on (`NetStatus.next_validators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextValidators {
    /// The first block they produce.
    pub from_height: u64,
    /// Their keys, hex.
    pub validators: Vec<String>,
}

/// A peer admitted to the network (`NetStatus.members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// The peer's key, hex.
    pub key: String,
    /// The name its `NetworkPeer` transaction gave it.
    pub name: String,
}

/// `GET /v1/net/join`: what a node needs to join a network, as one JSON file (docs/network.md,
/// "Joining a network"); `weft net genesis` writes it, `weft init --join URL` or
/// `weft init --genesis FILE` reads it. Nothing in it is trusted beyond what it proves: the
/// joiner checks block 0 in full, and can pin its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinDocument {
    /// Always `weft-join-v1`.
    pub format: String,
    /// The chain's name.
    pub chain: String,
    /// The chain id (hex), derived from the name.
    pub chain_id: String,
    /// Hash of block 0 (hex): what a joiner compares with the one it was told out of band.
    pub block0_hash: String,
    /// Block 0, canonical encoding, hex.
    pub block0: String,
    /// Peers to dial first: `PUBLIC_KEY@IP:PORT`.
    pub seeds: Vec<String>,
    /// The network's configured followers (public keys, hex).
    pub followers: Vec<String>,
}
