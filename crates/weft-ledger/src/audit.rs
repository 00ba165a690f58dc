//! The full audit: replay the chain from genesis, re-checking every block hash link, Merkle
//! root, producer seal, transaction signature and business rule, and name the first bad block
//! or transaction. Rule state is rebuilt in memory (it grows with the number of owners,
//! receipts and parts, not with the ledger's bytes); blocks are streamed from storage one at a
//! time.
//!
//! Every block's state root is recomputed from the replayed state and compared with its header.
//!
//! Then every row the answers are read from — rule state and the indexes by transaction id,
//! fingerprint, resource and block hash ([`crate::store::Derived`]) — must be what the blocks
//! give: an index edited apart from the blocks is named.
//!
//! On a node that stores transactions stripped (a thin or producer node), the rules can be
//! replayed only up to the first stripped transaction (every later rule check may depend on its
//! payload). From there on every block's links, Merkle root, seal and producer and every
//! transaction's signature are still checked; the report says how far the rules were.

use crate::error::{LedgerError, Result};
use crate::ledger::{check_block, validate_block};
use crate::state::StateView as _;
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
    /// Transactions stored stripped of their payload (0 on archive and full nodes).
    pub stripped: u64,
    /// The last block up to which every business rule was replayed (the block before the first
    /// stripped transaction's; the head when none is stripped).
    pub rules_checked_through: Option<u64>,
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
    let mut stripped = 0u64;
    // `Some(last)` once a stripped transaction was met: rules were replayed through `last`.
    let mut rules_through: Option<Option<u64>> = None;
    // The validator schedule, followed from the blocks once rules are no longer replayed.
    let mut schedule: Option<crate::state::Schedule> = None;
    // The derived rows (rule state, indexes) the blocks give, while the rules are replayed.
    let mut derived = crate::store::Derived::new()?;
    for height in 0..total {
        let failure =
            move |index: Option<u32>, tx_id: Option<String>, reason: String| AuditReport {
                ok: false,
                blocks: height,
                transactions,
                stripped,
                rules_checked_through: rules_through.unwrap_or(height.checked_sub(1)),
                first_bad: Some(AuditFailure {
                    height,
                    index,
                    tx_id,
                    reason,
                }),
            };
        let failed = |error: LedgerError| match error {
            LedgerError::BadBlock { reason, .. } => Ok(failure(None, None, reason)),
            LedgerError::BadTransaction {
                index,
                tx_id,
                source,
                ..
            } => Ok(failure(
                Some(index),
                Some(tx_id.to_hex()),
                source.to_string(),
            )),
            other => Err(other),
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
        let block_stripped = block
            .transactions
            .iter()
            .filter(|tx| tx.payload.is_none())
            .count() as u64;
        if block_stripped > 0 && rules_through.is_none() {
            rules_through = Some(height.checked_sub(1));
        }
        if rules_through.is_none() {
            match validate_block(&state, chain_id, previous.as_ref(), &block) {
                Ok(validated) => {
                    derived.add_block(
                        height,
                        &block.signed.header.hash(),
                        &block.transactions,
                        &validated.ids,
                    );
                    // `validate_block` recomputed the block's state root and compared it with
                    // the header's.
                    state.apply_update(&validated.delta, &validated.state);
                }
                Err(error) => return failed(error),
            }
        } else {
            match check_block(chain_id, previous.as_ref(), &block) {
                Ok(checked) => {
                    if let Some(index) = checked.bad_signatures.iter().min() {
                        return Ok(failure(
                            Some(*index as u32),
                            Some(checked.ids[*index].to_hex()),
                            "the transaction signature does not verify".into(),
                        ));
                    }
                }
                Err(error) => return failed(error),
            }
            // Rules are not replayed from here on, but `SetValidators` transactions are always
            // kept whole (filter::ALWAYS_KEPT): the schedule is followed from them.
            let schedule = match &mut schedule {
                Some(schedule) => schedule,
                None => schedule.insert(state.schedule()?),
            };
            let producers = schedule.producers_at(height).to_vec();
            for (index, tx) in block.transactions.iter().enumerate() {
                if let Some(weft_core::model::Payload::SetValidators(set)) = &tx.payload {
                    crate::state::schedule_change(
                        &mut schedule.changes,
                        crate::state::ValidatorChange {
                            from_height: set.from_height,
                            validators: set.validators.clone(),
                            scheduled_at: crate::state::Position {
                                height,
                                index: index as u32,
                            },
                        },
                    );
                }
            }
            if !producers.contains(&block.signed.header.producer) {
                return Ok(failure(
                    None,
                    None,
                    format!(
                        "producer {} is not one of the chain's producers",
                        block.signed.header.producer
                    ),
                ));
            }
        }
        stripped += block_stripped;
        transactions += block.transactions.len() as u64;
        previous = Some(block.signed);
        progress(height + 1, total);
    }
    // What `verify` and `history` read are the derived rows, not the blocks: each must be what
    // the blocks give (when every rule was replayed: a stripped store's rows come from payloads
    // it does not keep).
    if rules_through.is_none() {
        derived.add_state(state.delta());
    }
    // A store that follows on certificates keeps no rows to compare (nor a state tree).
    let difference = match rules_through.is_none() && store.keeps_rule_state() {
        false => None,
        true => match store.derived_difference(&derived)? {
            Some(reason) => Some(reason),
            None => {
                let held_root = store.state_root()?;
                (held_root != state.state_root()).then(|| {
                    format!(
                        "its state tree has root {held_root}, the blocks give {}",
                        state.state_root()
                    )
                })
            }
        },
    };
    if let Some(reason) = difference {
        return Ok(AuditReport {
            ok: false,
            blocks: total,
            transactions,
            stripped,
            rules_checked_through: Some(total - 1),
            first_bad: Some(AuditFailure {
                height: total - 1,
                index: None,
                tx_id: None,
                reason: format!("the store's derived rows disagree with its blocks: {reason}"),
            }),
        });
    }
    Ok(AuditReport {
        ok: true,
        blocks: total,
        transactions,
        stripped,
        rules_checked_through: rules_through.unwrap_or(Some(total - 1)),
        first_bad: None,
    })
}
