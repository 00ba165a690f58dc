//! Publishing to witnesses and anchoring (docs/anchoring.md): what `GET /v1/publish` reports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/publish`: how this node's pushes of the chain's checkpoints to its witnesses fare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishStatus {
    /// Blocks on this node's chain now.
    pub head_size: u64,
    /// The size of the last checkpoint pushed (0: none yet).
    pub published_size: u64,
    /// The size of the latest checkpoint the policy's witnesses cosigned (0: none yet).
    pub witnessed_size: u64,
    /// When it was (ms since the Unix epoch; 0: never).
    pub witnessed_at_ms: u64,
    /// Blocks committed since the latest witnessed checkpoint.
    pub lag_blocks: u64,
    /// How many witnesses must cosign.
    pub policy: usize,
    /// Why the last round, if it failed before reaching the witnesses (no quorum of
    /// validators' signatures, say).
    pub last_error: Option<String>,
    pub witnesses: Vec<PublishWitnessStatus>,
}

/// One witness in [`PublishStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishWitnessStatus {
    pub name: String,
    pub url: String,
    /// Its verifier key, as this node's configuration gives it.
    pub key: String,
    /// The size it cosigned last for this node (0: none yet).
    pub cosigned_size: u64,
    /// When (ms since the Unix epoch; 0: never).
    pub cosigned_at_ms: u64,
    /// Pushes that failed since the node started.
    pub failures: u64,
    /// Why the last push failed, if it did.
    pub last_error: Option<String>,
}

/// `GET /v1/anchors`: the other chains registered on this one and what is anchored of each (the
/// ledger's state), and, on a node that anchors them, how its fetching fares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AnchorsAnswer {
    pub chains: Vec<AnchoredChainAnswer>,
    /// `None` on a node without `[anchor]`.
    pub anchoring: Option<Vec<AnchoringStatus>>,
    /// `None` on a node without `[timestamp]`.
    #[serde(default)]
    pub timestamping: Option<TimestampingStatus>,
}

/// How a node's time-stamping of its checkpoints by an RFC 3161 TSA fares (`[timestamp]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TimestampingStatus {
    pub url: String,
    /// The size of the checkpoint time-stamped last (0: none yet).
    pub size: u64,
    /// The time the TSA signed for it (ms since the Unix epoch; 0: none yet).
    pub time_ms: u64,
    /// Its `Timestamp` transaction.
    pub tx: Option<String>,
    /// Rounds that failed since the node started, and why the last one did.
    pub failures: u64,
    pub last_error: Option<String>,
}

/// A chain registered for anchoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AnchoredChainAnswer {
    /// Its checkpoints' origin.
    pub origin: String,
    pub chain: String,
    pub chain_id: String,
    /// The hash of its block 0, as registered.
    pub genesis_hash: String,
    /// The block of its `RegisterChain` transaction.
    pub registered_at: u64,
    /// The latest checkpoint anchored: its size, root (hex) and `Anchor` transaction.
    pub size: Option<u64>,
    pub root: Option<String>,
    pub anchor_tx: Option<String>,
    /// `AnchorEvidence` transactions recorded against it.
    pub evidence: Vec<String>,
    /// The signed checkpoint anchored last (from its `Anchor` transaction): what other companies
    /// anchoring the same chain compare theirs with, to catch a split view.
    pub note: Option<String>,
}

/// How a node's anchoring of one chain fares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AnchoringStatus {
    pub origin: String,
    pub urls: Vec<String>,
    /// The size of the chain's latest checkpoint this node saw (0: none yet).
    pub seen_size: u64,
    /// When this node last anchored one (ms since the Unix epoch; 0: never).
    pub anchored_at_ms: u64,
    /// Rounds that failed since the node started, and why the last one did.
    pub failures: u64,
    pub last_error: Option<String>,
}
