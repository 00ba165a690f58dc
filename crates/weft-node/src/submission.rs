//! What every way into the ledger shares: a submission of transactions waiting for a block,
//! what happened to each, the ledger as the node shares it, and the clock blocks are stamped
//! with. The block producer, the network, the API, both kinds of ingest and the durable queue
//! all speak these; none of them owns them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use weft_core::TxId;
use weft_ledger::state::Position;
use weft_ledger::store::RedbStore;
use weft_ledger::{Ledger, RuleError, Transaction};

/// What happened to one submitted transaction.
#[derive(Debug, Clone)]
pub enum TxResult {
    Committed {
        id: TxId,
        position: Position,
    },
    Rejected {
        id: TxId,
        error: RuleError,
    },
    /// The node could not commit (storage failure): nothing about the transaction is known to
    /// be durable; submit it again.
    Failed {
        id: TxId,
        message: String,
    },
}

/// Transactions from one request, and where to send their results (in the same order).
#[derive(Debug)]
pub struct Submission {
    pub transactions: Vec<Transaction>,
    /// When the node received them: a block is sealed `interval` after its first one.
    pub received: Instant,
    pub reply: tokio::sync::oneshot::Sender<Vec<TxResult>>,
}

/// The ledger as the node shares it between the producer and the readers.
pub type SharedLedger = Arc<Mutex<Ledger<RedbStore>>>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
