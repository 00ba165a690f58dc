//! Reading the chain and its state: transactions with their proofs, the chain's parameters,
//! blocks, id lookups by prefix, resources and their keys, assets and claims.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_core::model::{DigitalAsset, Payload, Resource};
use weft_core::{BlockHash, ChainId, Fingerprint, MerkleRoot, PublicKey, ResourceId, TxId};

/// `GET /v1/transactions/{id}`: a committed transaction with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransactionAnswer {
    /// The key of the peer the whole copy came from (only for a transaction stored stripped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fetched_from: Option<String>,
    pub height: u64,
    pub index: u32,
    /// The signing public key, hex.
    #[schema(value_type = String)]
    pub key: PublicKey,
    /// `RegisterResource`, `RecordOwnership`, `SendProductData`, `Record`, …
    pub kind: String,
    /// `{"type": KIND, "body": {…}}` (docs/encoding.md); for a transaction stored stripped,
    /// the whole copy a peer sent (null if no peer did within 5 s).
    #[schema(value_type = Object)]
    pub payload: Option<Payload>,
    /// The inclusion proof (docs/proofs.md, `weft-inclusion-proof/v2`). Its type lives with
    /// the code that builds and checks it (`weft_ledger::proof::InclusionProof`), a layer above
    /// this crate.
    #[schema(value_type = Object)]
    pub proof: serde_json::Value,
    /// Is it stored stripped on this node (a thin or producer node whose filter dropped it)?
    pub stripped: bool,
    /// `timeOfTx`, milliseconds since the Unix epoch.
    pub time: u64,
    /// Transaction id, hex.
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// `GET /v1/chain`: the chain's genesis parameters, its validators, and its head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainInfo {
    #[schema(value_type = Vec<String>)]
    pub authorities: Vec<PublicKey>,
    #[schema(value_type = String)]
    pub chain_id: ChainId,
    pub chain_name: String,
    /// The validator epoch of the next block: 0 from genesis, one more at each change.
    pub epoch: u64,
    #[schema(value_type = String)]
    pub head_hash: BlockHash,
    /// RFC 3339, UTC.
    pub head_time: String,
    pub height: u64,
    /// The genesis producers.
    #[schema(value_type = Vec<String>)]
    pub producers: Vec<PublicKey>,
    /// Validator changes scheduled and not yet in effect, by height.
    pub scheduled: Vec<ScheduledChange>,
    pub time_window_secs: u64,
    /// Who produces (validates) the next block.
    #[schema(value_type = Vec<String>)]
    pub validators: Vec<PublicKey>,
}

/// A validator change scheduled and not yet in effect (`ChainInfo.scheduled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduledChange {
    /// The first block the validators produce.
    pub from_height: u64,
    /// The block holding the `SetValidators` transaction.
    pub scheduled_at: u64,
    #[schema(value_type = Vec<String>)]
    pub validators: Vec<PublicKey>,
}

/// `GET /v1/blocks/{block}`: a block's header and its transaction ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Block {
    #[schema(value_type = String)]
    pub hash: BlockHash,
    pub height: u64,
    #[schema(value_type = String)]
    pub merkle_root: MerkleRoot,
    #[schema(value_type = String)]
    pub previous: BlockHash,
    /// The producer's public key, hex.
    #[schema(value_type = String)]
    pub producer: PublicKey,
    /// RFC 3339, UTC.
    pub time_utc: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The block's transaction ids, in order.
    #[schema(value_type = Vec<String>)]
    pub transactions: Vec<TxId>,
    pub tx_count: u64,
    pub version: u64,
}

/// `GET /v1/transactions?prefix=`: ids of transactions on the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxIds {
    /// At most 1,000, in id order.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<TxId>,
}

/// `GET /v1/resources?prefix=`: ids of registered resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceIds {
    /// At most 1,000, in id order.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<ResourceId>,
}

/// A transaction's place: block height and index in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    pub height: u64,
    pub index: u32,
}

/// `GET /v1/resources/{id}`: a registered resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceAnswer {
    #[schema(value_type = String)]
    pub id: ResourceId,
    /// The display name (organisation name, person's name, machine label).
    #[schema(value_type = Option<String>)]
    pub name: Option<String>,
    /// For a person, the organisation it acts for; null otherwise.
    #[schema(value_type = Option<String>)]
    pub organization: Option<ResourceId>,
    pub registered_at: Position,
    /// The registered resource (`{"kind": "organization", …}`, docs/encoding.md).
    #[schema(value_type = Object)]
    pub resource: Resource,
}

/// A resource named in another answer (an asset's owner, a claim's issuer): its id, its display
/// name (null if it is not registered), and the resource itself when it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceRef {
    #[schema(value_type = String)]
    pub id: ResourceId,
    #[schema(value_type = Option<String>)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, nullable = false)]
    pub resource: Option<Resource>,
}

/// `GET /v1/resources/{id}/keys/{key}`: whether `key` is, was, or never was a key of `resource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyStatus {
    #[schema(value_type = String)]
    pub key: PublicKey,
    #[schema(value_type = String)]
    pub resource: ResourceId,
    /// `active`, `revoked`, or null: never a key of this resource.
    #[schema(value_type = Option<String>)]
    pub status: Option<KeyState>,
}

/// Whether a key is a resource's (`KeyStatus.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    Revoked,
}

/// The NIST verdict on an asset for a recipient (DESIGN.md, rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The recipient (or its organisation) owns it or was sent it; or no recipient was named
    /// and somebody claimed it.
    Valid,
    /// Nobody claimed it: never recorded, or altered.
    Unknown,
    /// Claimed, but never validly sent to the recipient.
    NotRecipient,
    /// Not claimed, but recorded as a `Record` whose body is the file (machine, process or
    /// quality data): the history names who recorded it, when, and which key signed.
    Recorded,
}

impl Verdict {
    /// `valid`, `unknown`, `not_recipient` or `recorded`, as it travels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Unknown => "unknown",
            Verdict::NotRecipient => "not_recipient",
            Verdict::Recorded => "recorded",
        }
    }
}

/// `GET /v1/assets/{fingerprint}`: the validation verdict of an asset, with its owner and
/// history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssetReport {
    /// `algo:hex`.
    #[schema(value_type = String)]
    pub fingerprint: Fingerprint,
    /// Every transaction that names the asset, in ledger order.
    pub history: Vec<HistoryEntry>,
    #[schema(value_type = Option<Object>)]
    pub owner: Option<ResourceRef>,
    #[schema(value_type = Option<String>)]
    pub owner_label: Option<String>,
    /// The asset as its owner claimed it.
    #[schema(value_type = Option<Object>)]
    pub product_data: Option<DigitalAsset>,
    /// Ids of transactions the report needed that this node stores stripped and no peer sent
    /// whole (absent when there are none). Their history entries say `"stripped": true`;
    /// entries fetched from a peer name it in `"fetched_from"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub stripped: Option<Vec<TxId>>,
    /// `unknown`, `valid` or `not_recipient`.
    pub verdict: Verdict,
    /// What shows the history complete: the proof of the asset's history entry under the state
    /// root of the block the history is read at (docs/state-proofs.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub state: Option<HistoryState>,
}

/// The state proof that comes with an asset's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryState {
    /// The block whose state root the proof is under: the history is every transaction that
    /// names the asset up to it.
    pub height: u64,
    /// Hex of the Borsh-encoded sparse Merkle proof of the asset's history leaf.
    pub history_proof: String,
}

/// One transaction of an asset's history, with the labels of the resources it names. The
/// fields of a claim (`issuer…`) or a send (`from…`, `to…`, `forward`) are present only for
/// that kind, and only when the transaction is whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// The key of the peer a whole copy came from (only for a transaction stored stripped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fetched_from: Option<String>,
    /// A send: may the recipient forward it?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub forward: Option<bool>,
    /// A send: the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub from: Option<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub from_label: Option<String>,
    pub height: u64,
    pub index: u32,
    /// A claim: the resource that claimed the asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub issuer: Option<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub issuer_label: Option<String>,
    /// `RecordOwnership`, `SendProductData`, …
    pub kind: String,
    /// `authority`, or the id of the resource whose key signed.
    pub signer: String,
    /// Stored stripped on this node and no peer sent it whole: it names nobody (absent
    /// otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stripped: bool,
    /// `timeOfTx`, milliseconds since the Unix epoch.
    pub time: u64,
    /// RFC 3339, UTC.
    pub time_utc: String,
    /// A send: the recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub to: Option<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub to_label: Option<String>,
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// `GET /v1/claims/{fingerprint}`: who claimed an asset, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimAnswer {
    /// The block of the claim.
    pub height: u64,
    pub issuer: ResourceRef,
    pub issuer_label: String,
    /// The resource whose key signed: the issuer, or a person of it; null when the network's
    /// authority signed.
    #[schema(value_type = Option<Object>)]
    pub signer: Option<ResourceRef>,
    #[schema(value_type = Option<String>)]
    pub signer_label: Option<String>,
    /// `timeOfTx`, milliseconds since the Unix epoch.
    pub time: u64,
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// `GET /v1/checkpoint[?size=N]`: a C2SP signed checkpoint of the chain's first `size` blocks
/// (all of them by default), signed by the answering node (docs/checkpoints.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointAnswer {
    /// The hash of the checkpoint's last block (`size - 1`), hex.
    #[schema(value_type = String)]
    pub last_hash: BlockHash,
    /// Its signed header, canonical encoding, hex.
    pub last_header: String,
    /// What makes it final (docs/proofs.md, the `finality` of a proof); null when this node
    /// holds no certificate for it yet.
    #[schema(value_type = Object)]
    pub last_finality: serde_json::Value,
    /// Its RFC 6962 inclusion path in the checkpoint's tree, base64 hashes.
    pub last_path: Vec<String>,
    /// The signed note, as `GET /checkpoint` serves it.
    pub note: String,
    pub size: u64,
    /// The validator changes in effect at block `size - 1`, each with its proof
    /// (docs/proofs.md): what a verifier holding only the trust root needs to know who signs.
    #[schema(value_type = Vec<Object>)]
    pub validator_changes: serde_json::Value,
}

/// `GET /v1/checkpoint/consistency?old=M&new=N`: the RFC 6962 consistency proof from the tree
/// of the first `old_size` blocks to that of the first `new_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyAnswer {
    pub new_size: u64,
    pub old_size: u64,
    /// The proof's hashes, base64.
    pub proof: Vec<String>,
}

/// `GET /v1/transactions/{id}/tlog-proof`: the transaction's C2SP tlog-proof (docs/proofs.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TlogProofAnswer {
    /// The proof's text (`c2sp.org/tlog-proof@v1` …).
    pub tlog_proof: String,
}
