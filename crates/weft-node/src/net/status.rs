//! What a node knows about its network, as `GET /v1/net/status`, `weft net status` and the
//! metrics show it. Plain data: the network fills it in, the API and metrics read it.

use serde::Serialize;
use weft_ledger::state::Schedule;

/// What a node knows about its network, for `GET /v1/net/status` and `weft net status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetStatus {
    /// This node's key: its identity on the network.
    pub key: String,
    /// Does this node vote?
    pub validator: bool,
    /// The consensus epoch: 0 from genesis, one more at each validator change.
    pub epoch: u64,
    /// The validators of this epoch, in the consensus engine's order.
    pub validators: Vec<String>,
    /// A validator change scheduled and not yet in effect.
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
    pub addresses: usize,
    /// The peers this node dials and keeps connections with: the validators of this epoch and
    /// of the next, and the peers it picked besides them (itself left out).
    pub dialed: usize,
    /// The peers besides the validators this node keeps connections with: its seeds first,
    /// then others known to be online; one whose connection drops is replaced at once.
    pub picked: Vec<String>,
    /// How many it keeps (`network.connections`).
    pub connections_wanted: usize,
    /// How many of those were heard from in the last 5 s.
    pub dialed_connected: usize,
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
    pub sync: &'static str,
    /// This node's consensus engine: `running`, `waiting for validators` (at start, until every
    /// other validator of the epoch answered, at most `network.start_wait_ms`), or `not voting`.
    pub engine: &'static str,
    /// The validators the engine waits for (empty unless `waiting for validators`).
    pub waiting_for: Vec<String>,
    /// Transactions waiting to be proposed.
    pub mempool: usize,
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

/// A peer disconnected by this node.
#[derive(Debug, Clone, Serialize)]
pub struct CutOff {
    pub key: String,
    /// What it did: the invalid data it sent, or its removal.
    pub reason: String,
    /// When it may connect again, ms since the Unix epoch.
    pub until_ms: u64,
}

/// Validators that take over from a height on.
#[derive(Debug, Clone, Serialize)]
pub struct NextValidators {
    pub from_height: u64,
    pub validators: Vec<String>,
}

impl NextValidators {
    pub(super) fn of(schedule: &Schedule, epoch: u64) -> Option<NextValidators> {
        let change = schedule.changes.get(epoch as usize)?;
        Some(NextValidators {
            from_height: change.from_height,
            validators: change.validators.iter().map(ToString::to_string).collect(),
        })
    }
}

/// A peer admitted to the network.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub key: String,
    pub name: String,
}
