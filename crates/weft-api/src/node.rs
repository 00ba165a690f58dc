//! The node itself: `GET /v1/status`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_core::{BlockHash, ChainId};

/// `GET /v1/status`: height, head, type, peers and mempool of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The chain's name.
    pub chain: String,
    #[schema(value_type = String)]
    pub chain_id: ChainId,
    /// The head block's hash.
    #[schema(value_type = String)]
    pub head: BlockHash,
    pub height: u64,
    /// Transactions waiting for the block producer.
    pub mempool: i64,
    /// `thin`, `producer`, `archive` or `full`.
    pub node_type: String,
    pub peers: u64,
    /// The head block's timestamp, ms since the Unix epoch.
    pub time: u64,
}
