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
