//! weft-api: the REST API's bodies, one set of types for every side of it.
//!
//! The node serves these types (`weft-node`'s handlers and its query layer build them), the
//! OpenAPI document at `/openapi.json` describes them (each derives `utoipa::ToSchema`), and the
//! CLI and tests read a node's answers into them. So no request or answer is built from loose
//! JSON, and the document cannot describe a shape nobody sends: the node's tests validate real
//! answers against it.
//!
//! - [`error`]: [`ErrorBody`], `{"error": {"code", "message"[, "rule"]}}`, and its stable
//!   [`ErrorCode`]s.
//! - `submit`: [`SubmitOne`], [`SubmitBatch`] and their answers ([`Committed`], [`Queued`],
//!   [`BatchAnswer`], [`BatchQueued`]).
//! - `reads`: [`TransactionAnswer`], [`ChainInfo`], [`Block`], [`ResourceAnswer`],
//!   [`KeyStatus`], [`AssetReport`] (with its [`Verdict`] and [`HistoryEntry`]s),
//!   [`ClaimAnswer`].
//! - `node`: [`Status`]; `admin`: [`RegisterBody`], [`Registered`], [`Reloaded`].
//! - `net`: a node in a network: [`NetStatus`] (with [`NextValidators`], [`CutOff`] and
//!   [`Member`]) and the [`JoinDocument`].
//! - `client` (feature `client`): a blocking client that returns these types.
//!
//! The crate does no I/O without the `client` feature, and depends only on `weft-core` (for the
//! identity newtypes, which travel as lowercase hex, and the information model), serde,
//! serde_json (for the proof document, which `weft-ledger` types) and utoipa.
//!
//! Wire format: fields are declared in alphabetical order, the order the answers had when they
//! were JSON maps, so the bytes on the wire did not change when the types replaced them. The
//! exception is `net`: its two bodies were already structs (in `weft-node`), so their fields
//! keep the order they were declared and sent in. An `Option` field is `null` when empty unless
//! it says `skip_serializing_if`, in which case it is absent.

pub mod error;

mod admin;
mod anchor;
mod net;
mod node;
mod reads;
mod submit;

#[cfg(feature = "client")]
pub mod client;

pub use admin::{RegisterBody, Registered, Reloaded};
pub use anchor::{
    AnchoredChainAnswer, AnchoringStatus, AnchorsAnswer, PublishStatus, PublishWitnessStatus,
    TimestampingStatus,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use net::{CutOff, JOIN_FORMAT, JoinDocument, Member, NetStatus, NextValidators};
pub use node::Status;
pub use reads::{
    AssetReport, Block, ChainInfo, CheckpointAnswer, ClaimAnswer, ConsistencyAnswer, HistoryEntry,
    HistoryState, KeyState, KeyStatus, Position, ResourceAnswer, ResourceIds, ResourceRef,
    ScheduledChange, TlogProofAnswer, TransactionAnswer, TxIds, Verdict,
};
pub use submit::{
    BatchAnswer, BatchQueued, BatchResult, Committed, Queued, QueuedState, SubmitBatch, SubmitOne,
};
