//! The shapes of the API's answers, for the OpenAPI document. Answers are built as JSON by
//! [`crate::query`] (shared with the CLI); these types describe them, and the node's tests
//! validate real answers against the document.

#![allow(dead_code)] // The schema types exist for the document; no code builds them.

use serde::Serialize;
use utoipa::ToSchema;

/// Every answer that is not a success.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `code` is stable and machine-readable; `message` says what was wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// e.g. `malformed_json`, `invalid_body`, `too_large`, `bad_transaction`, `rule`,
    /// `not_found`, `busy`, `rate_limited`, `unauthorized`.
    pub code: String,
    pub message: String,
    /// With `code = "rule"`: the business rule that refused the transaction.
    #[schema(nullable = false)]
    pub rule: Option<String>,
}

/// A transaction's place on the chain once durably committed.
#[derive(Serialize, ToSchema)]
pub struct Committed {
    /// Transaction id (SHA-256 of its canonical encoding), hex.
    pub tx_id: String,
    pub height: u64,
    pub index: u32,
}

/// `wait=false`: the transaction is durably queued, not yet in a block.
#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub tx_id: String,
    /// Always `queued`.
    pub state: String,
}

/// `wait=false` for a batch: every transaction is durably queued, not yet in a block.
#[derive(Serialize, ToSchema)]
pub struct BatchQueued {
    pub queued: u64,
    /// The ids of the queued transactions, in the order sent.
    pub tx_ids: Vec<String>,
}

/// One result of a batch: committed (`height`, `index`) or refused (`error`).
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub tx_id: String,
    #[schema(nullable = false)]
    pub height: Option<u64>,
    #[schema(nullable = false)]
    pub index: Option<u32>,
    #[schema(nullable = false)]
    pub error: Option<ErrorDetail>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    pub committed: u64,
    pub rejected: u64,
    /// In the order of the request's transactions.
    pub results: Vec<BatchResult>,
}

/// A committed transaction with its inclusion proof.
#[derive(Serialize, ToSchema)]
pub struct TransactionAnswer {
    pub tx_id: String,
    pub height: u64,
    pub index: u32,
    /// `RegisterResource`, `RecordOwnership`, `SendProductData`, `Record`, …
    pub kind: String,
    /// `timeOfTx`, milliseconds since the Unix epoch.
    pub time: u64,
    /// The signing public key, hex.
    pub key: String,
    /// Is it stored stripped on this node (a thin or producer node whose filter dropped it)?
    pub stripped: bool,
    /// `{"type": KIND, "body": {…}}` (docs/encoding.md); for a transaction stored stripped,
    /// the whole copy a peer sent (null if no peer did within 5 s).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The inclusion proof (docs/proofs.md, `weft-inclusion-proof/v1`).
    #[schema(value_type = Object)]
    pub proof: serde_json::Value,
    /// The key of the peer the whole copy came from (only for a transaction stored stripped).
    #[schema(value_type = Option<String>)]
    pub fetched_from: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub chain: String,
    pub chain_id: String,
    pub height: u64,
    pub head: String,
    /// The head block's timestamp, ms since the Unix epoch.
    pub time: u64,
    /// `thin`, `producer`, `archive` or `full`.
    pub node_type: String,
    pub peers: u64,
    /// Transactions waiting for the block producer.
    pub mempool: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ChainInfo {
    pub chain_name: String,
    pub chain_id: String,
    pub time_window_secs: u64,
    pub authorities: Vec<String>,
    /// The genesis producers.
    pub producers: Vec<String>,
    /// The validator epoch of the next block: 0 from genesis, one more at each change.
    pub epoch: u64,
    /// Who produces (validates) the next block.
    pub validators: Vec<String>,
    /// Validator changes scheduled and not yet in effect, by height.
    pub scheduled: Vec<ScheduledChange>,
    pub height: u64,
    pub head_hash: String,
    /// RFC 3339, UTC.
    pub head_time: String,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduledChange {
    /// The first block the validators produce.
    pub from_height: u64,
    pub validators: Vec<String>,
    /// The block holding the `SetValidators` transaction.
    pub scheduled_at: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Block {
    pub height: u64,
    pub hash: String,
    pub previous: String,
    pub timestamp: u64,
    pub time_utc: String,
    pub merkle_root: String,
    pub tx_count: u64,
    /// The producer's public key, hex.
    pub producer: String,
    pub version: u64,
    /// The block's transaction ids, in order.
    pub transactions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TxIds {
    /// At most 1,000, in id order.
    pub ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ResourceIds {
    pub ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Position {
    pub height: u64,
    pub index: u32,
}

#[derive(Serialize, ToSchema)]
pub struct ResourceAnswer {
    pub id: String,
    /// The display name (organisation name, person's name, machine label).
    #[schema(value_type = Option<String>)]
    pub name: Option<String>,
    /// The registered resource (`{"kind": "organization", …}`, docs/encoding.md).
    #[schema(value_type = Object)]
    pub resource: serde_json::Value,
    pub registered_at: Position,
    /// For a person, the organisation it acts for.
    #[schema(value_type = Option<String>)]
    pub organization: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyStatus {
    pub resource: String,
    pub key: String,
    /// `active`, `revoked`, or null: never a key of this resource.
    #[schema(value_type = Option<String>)]
    pub status: Option<String>,
}

/// The validation verdict of an asset (DESIGN.md, rules).
#[derive(Serialize, ToSchema)]
pub struct AssetReport {
    /// `unknown`, `owned`, `sent_to_you`, `not_sent_to_you`, …
    pub verdict: String,
    /// `algo:hex`.
    pub fingerprint: String,
    #[schema(value_type = Option<Object>)]
    pub owner: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub owner_label: Option<String>,
    /// Every transaction that names the asset, in ledger order.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub product_data: Option<serde_json::Value>,
    /// Ids of transactions the report needed that this node stores stripped and no peer sent
    /// whole (absent when there are none). Their history entries say `"stripped": true`;
    /// entries fetched from a peer name it in `"fetched_from"`.
    #[schema(value_type = Option<Vec<String>>)]
    pub stripped: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct ClaimAnswer {
    #[schema(value_type = Object)]
    pub issuer: serde_json::Value,
    pub issuer_label: String,
    #[schema(value_type = Option<Object>)]
    pub signer: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub signer_label: Option<String>,
    pub time: u64,
    pub height: u64,
    pub tx_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    /// The new resource's id (the id of its registration transaction).
    pub id: String,
    pub tx_id: String,
    pub height: u64,
    pub index: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Reloaded {
    /// Settings now in effect.
    pub applied: Vec<String>,
    /// Settings changed in the file that take effect at the next start.
    pub restart_needed: Vec<String>,
}
