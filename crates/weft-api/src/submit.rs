//! Submitting transactions: `POST /v1/transactions` and `POST /v1/transactions/batch`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_core::TxId;

use crate::ErrorDetail;

/// `POST /v1/transactions`: one signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitOne {
    /// The canonical encoding of a signed transaction, hex.
    pub transaction: String,
}

/// `POST /v1/transactions/batch`: signed transactions, committed in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    /// Canonical encodings of signed transactions, hex.
    pub transactions: Vec<String>,
}

/// A transaction's place on the chain once durably committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Committed {
    pub height: u64,
    pub index: u32,
    /// Transaction id (SHA-256 of its canonical encoding), hex.
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// `wait=false`: the transaction is durably queued, not yet in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Queued {
    /// Always `queued`.
    pub state: QueuedState,
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// The state of a queued transaction: `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueuedState {
    Queued,
}

/// `wait=false` for a batch: every transaction is durably queued, not yet in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchQueued {
    pub queued: u64,
    /// The ids of the queued transactions, in the order sent.
    #[schema(value_type = Vec<String>)]
    pub tx_ids: Vec<TxId>,
}

/// One result of a batch: committed (`height`, `index`) or refused (`error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub index: Option<u32>,
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// Each transaction's result, in order (`wait=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    pub committed: u64,
    pub rejected: u64,
    /// In the order of the request's transactions.
    pub results: Vec<BatchResult>,
}
