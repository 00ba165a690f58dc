//! The full audit: replay the chain from genesis, re-checking every block hash link, Merkle
//! root, producer seal, transaction signature and business rule, and name the first bad block
//! or transaction. Rule state is rebuilt in memory (it grows with the number of owners,
//! receipts and parts, not with the ledger's bytes); blocks are streamed from storage one at a
//! time.

use crate::error::{LedgerError, Result};
use crate::ledger::validate_block;
use crate::store::{MemoryState, Store};

/// Where the audit stopped.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditFailure {
    pub height: u64,
    pub index: Option<u32>,
    pub tx_id: Option<String>,
    pub reason: String,
}

/// The result of an audit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub blocks: u64,
    pub transactions: u64,
    pub first_bad: Option<AuditFailure>,
}

/// Audits the whole chain in `store`. `progress(done, total)` is called after every block.
pub fn audit<S: Store>(store: &S, progress: &mut dyn FnMut(u64, u64)) -> Result<AuditReport> {
    let Some(head) = store.head()? else {
        return Err(LedgerError::NotFound("the store holds no chain".into()));
    };
    let total = head.header.height + 1;
    let chain_id = head.header.chain_id;
    let mut state = MemoryState::default();
    let mut previous = None;
    let mut transactions = 0u64;
    for height in 0..total {
        let failure = |index: Option<u32>, tx_id: Option<String>, reason: String| AuditReport {
            ok: false,
            blocks: height,
            transactions,
            first_bad: Some(AuditFailure {
                height,
                index,
                tx_id,
                reason,
            }),
        };
        let block = match store.block(height) {
            Ok(Some(block)) => block,
            Ok(None) => return Ok(failure(None, None, format!("block {height} is missing"))),
            Err(LedgerError::Corrupt(reason)) => {
                return Ok(failure(
                    None,
                    None,
                    format!("stored data does not decode: {reason}"),
                ));
            }
            Err(other) => return Err(other),
        };
        if block.signed.header.height != height {
            return Ok(failure(
                None,
                None,
                format!(
                    "block stored at height {height} says height {}",
                    block.signed.header.height
                ),
            ));
        }
        match validate_block(&state, chain_id, previous.as_ref(), &block) {
            Ok(validated) => state.apply(&validated.delta),
            Err(LedgerError::BadBlock { reason, .. }) => return Ok(failure(None, None, reason)),
            Err(LedgerError::BadTransaction {
                index,
                tx_id,
                source,
                ..
            }) => {
                return Ok(failure(
                    Some(index),
                    Some(tx_id.to_hex()),
                    source.to_string(),
                ));
            }
            Err(other) => return Err(other),
        }
        transactions += block.transactions.len() as u64;
        previous = Some(block.signed);
        progress(height + 1, total);
    }
    Ok(AuditReport {
        ok: true,
        blocks: total,
        transactions,
        first_bad: None,
    })
}
