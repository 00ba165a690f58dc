//! Errors of weft-ledger: rule violations (what a user did wrong) and everything else.

use weft_core::{BlockHash, CoreError, TxId};

/// A transaction broke a business rule. `rule()` is a stable short code (`rule-1`, `rule-2`,
/// `rule-3`, `type-c`, `time-window`, `signature`, `key`, `resource`, `acting`, `chain`,
/// `format`); the message names the rule and the clause that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    #[error("rule 1{clause}: {message}")]
    Rule1 {
        clause: &'static str,
        message: String,
    },
    #[error("rule 2{clause}: {message}")]
    Rule2 {
        clause: &'static str,
        message: String,
    },
    /// Neither rule 1 nor rule 2 lets the sender send this data.
    #[error("rules 1 and 2: {message}")]
    NoRightToSend { message: String },
    #[error("rule 3: {message}")]
    Rule3 { duplicate: bool, message: String },
    #[error("type C: {message}")]
    TypeC { message: String },
    #[error("time window: {message}")]
    TimeWindow { message: String },
    #[error("signature: {message}")]
    Signature { message: String },
    #[error("key: {message}")]
    Key { message: String },
    #[error("resource: {message}")]
    Resource { message: String },
    #[error("acting: {message}")]
    Acting { message: String },
    #[error("chain: {message}")]
    Chain { message: String },
    #[error("format: {message}")]
    Format { message: String },
    /// Another chain's checkpoint or evidence that does not check against its registered trust
    /// root, or does not extend what is anchored of it.
    #[error("anchor: {message}")]
    Anchor { message: String },
}

impl RuleError {
    /// The stable rule code, as in `{"error": {"rule": …}}`.
    pub fn rule(&self) -> &'static str {
        match self {
            RuleError::Rule1 { .. } => "rule-1",
            RuleError::Rule2 { .. } => "rule-2",
            RuleError::NoRightToSend { .. } => "rule-1-2",
            RuleError::Rule3 { .. } => "rule-3",
            RuleError::TypeC { .. } => "type-c",
            RuleError::TimeWindow { .. } => "time-window",
            RuleError::Signature { .. } => "signature",
            RuleError::Key { .. } => "key",
            RuleError::Resource { .. } => "resource",
            RuleError::Acting { .. } => "acting",
            RuleError::Chain { .. } => "chain",
            RuleError::Format { .. } => "format",
            RuleError::Anchor { .. } => "anchor",
        }
    }
}

/// Any error of weft-ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A block failed validation (during audit, or when received).
    #[error("block {height} ({hash}): {reason}")]
    BadBlock {
        height: u64,
        hash: BlockHash,
        reason: String,
    },
    /// A transaction inside a block failed validation.
    #[error("block {height}, transaction {index} ({tx_id}): {source}")]
    BadTransaction {
        height: u64,
        index: u32,
        tx_id: TxId,
        source: RuleError,
    },
    #[error("storage: {0}")]
    Storage(String),
    /// Stored bytes did not decode: the database was damaged or written by something else.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// What was asked is not kept here: a store that follows its chain on the validators'
    /// certificates keeps no rule state (see [`crate::ledger::Ledger::commit_certified`]).
    #[error("{0}")]
    NotKept(String),
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
