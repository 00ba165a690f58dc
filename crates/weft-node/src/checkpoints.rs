//! The chain's checkpoints as a node (or the CLI on its home) gives them (docs/checkpoints.md):
//! a C2SP signed checkpoint of any size up to the head, signed with the node's key; RFC 6962
//! consistency proofs between two sizes; C2SP tlog-proofs of transactions.
//!
//! [`BlockLog`] keeps the log in memory as a [`CompactLog`] (the hash of every complete subtree,
//! about two hashes a block), read from the store as blocks are added: a checkpoint of any size or
//! a proof hashes O(log² blocks) nodes, without reading the headers again.

use std::sync::Mutex;

use weft_core::merkle::CompactLog;
use weft_core::{Hash32, SigningKey, TxId};
use weft_ledger::checkpoint::{Checkpoint, Note, TlogProof, leaf, origin};
use weft_ledger::proof::ValidatorChangeProof;
use weft_ledger::state::StateView as _;
use weft_ledger::store::Store;
use weft_ledger::{Ledger, LedgerError, Result};

/// The leaves of the chain's log, block by block.
#[derive(Debug, Default)]
pub struct BlockLog {
    log: Mutex<CompactLog>,
}

/// A signed checkpoint and the validator changes a verifier needs to know who signs it.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    pub note: Note,
    pub size: u64,
    pub validator_changes: Vec<ValidatorChangeProof>,
    /// The last block (`size - 1`): its signed header, finality (when this node holds a
    /// certificate for it) and inclusion path in the tree.
    pub last_header: weft_ledger::block::SignedHeader,
    pub last_finality: Option<weft_ledger::proof::FinalityProof>,
    pub last_path: Vec<Hash32>,
}

impl SignedCheckpoint {
    /// The answer of `GET /v1/checkpoint` (and of the CLI on its home).
    pub fn answer(&self) -> weft_api::CheckpointAnswer {
        weft_api::CheckpointAnswer {
            note: self.note.to_text(),
            size: self.size,
            last_hash: self.last_header.header.hash(),
            last_header: hex::encode(weft_core::encoding::encode(&self.last_header)),
            last_finality: serde_json::to_value(&self.last_finality).expect("finality serialises"),
            last_path: base64_hashes(&self.last_path),
            validator_changes: serde_json::to_value(&self.validator_changes)
                .expect("proofs serialise"),
        }
    }
}

/// Hashes as base64, as the checkpoint answers carry them.
fn base64_hashes(hashes: &[Hash32]) -> Vec<String> {
    use base64ct::Encoding as _;
    hashes
        .iter()
        .map(|hash| base64ct::Base64::encode_string(&hash.0))
        .collect()
}

/// The answer of `GET /v1/checkpoint/consistency`.
pub fn consistency_answer(old: u64, new: u64, proof: &[Hash32]) -> weft_api::ConsistencyAnswer {
    weft_api::ConsistencyAnswer {
        new_size: new,
        old_size: old,
        proof: base64_hashes(proof),
    }
}

impl BlockLog {
    /// The log of every block up to the head, reading the blocks added since the last call.
    fn leaves<S: Store>(
        &self,
        ledger: &Ledger<S>,
    ) -> Result<std::sync::MutexGuard<'_, CompactLog>> {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let head = ledger.head().header.height;
        while log.len() <= head {
            let height = log.len();
            let header = ledger
                .store()
                .signed_header(height)?
                .ok_or_else(|| LedgerError::Corrupt(format!("block header {height} is missing")))?;
            log.push(leaf(&header.header.hash()));
        }
        Ok(log)
    }

    /// The checkpoint of the first `size` blocks (the whole chain when `None`), signed with
    /// `key`, and the validator changes in effect at its last block.
    pub fn checkpoint<S: Store>(
        &self,
        ledger: &Ledger<S>,
        size: Option<u64>,
        key: &SigningKey,
    ) -> Result<SignedCheckpoint> {
        let log = self.leaves(ledger)?;
        let size = size.unwrap_or(log.len());
        check_size(size, log.len())?;
        let name = origin(&ledger.genesis().chain_name, &ledger.chain_id());
        let checkpoint = Checkpoint {
            origin: name.clone(),
            size,
            root: log.root(size).expect("size checked"),
        };
        let last_path = log.inclusion_proof(size - 1, size).expect("size checked");
        drop(log);
        let last_header = ledger
            .store()
            .signed_header(size - 1)?
            .ok_or_else(|| LedgerError::Corrupt(format!("block header {} is missing", size - 1)))?;
        let mut note = Note {
            text: checkpoint.text(),
            signatures: Vec::new(),
        };
        note.sign(&name, key)?;
        let schedule = ledger.store().snapshot()?.schedule()?;
        let validator_changes =
            weft_ledger::proof::changes_through(ledger.store(), &schedule, size - 1)?;
        let last_finality =
            match weft_ledger::proof::finality_of(ledger.store(), &schedule, size - 1) {
                Ok(finality) => Some(finality),
                Err(LedgerError::NotFound(_)) => None,
                Err(other) => return Err(other),
            };
        Ok(SignedCheckpoint {
            note,
            size,
            validator_changes,
            last_header,
            last_finality,
            last_path,
        })
    }

    /// The RFC 6962 consistency proof from the first `old` blocks to the first `new`.
    pub fn consistency<S: Store>(
        &self,
        ledger: &Ledger<S>,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash32>> {
        let log = self.leaves(ledger)?;
        check_size(new, log.len())?;
        if old == 0 || old > new {
            return Err(LedgerError::Invalid(format!(
                "a consistency proof goes from a size of at least 1 to one at least as large; \
                 {old} to {new} does not"
            )));
        }
        Ok(log.consistency_proof(old, new).expect("sizes checked"))
    }

    /// A C2SP tlog-proof of transaction `id`: its block's place in the checkpoint of the first
    /// `size` blocks (the whole chain when `None`), signed with `key`; the extra data is the
    /// transaction's inclusion proof (JSON), carrying the validator changes up to the
    /// checkpoint.
    pub fn tlog_proof<S: Store>(
        &self,
        ledger: &Ledger<S>,
        id: &TxId,
        size: Option<u64>,
        key: &SigningKey,
    ) -> Result<TlogProof> {
        let signed = self.checkpoint(ledger, size, key)?;
        let mut proof = weft_ledger::proof::build(ledger.store(), id)?;
        if proof.height >= signed.size {
            return Err(LedgerError::Invalid(format!(
                "transaction {id} is in block {}, past the checkpoint of {} blocks",
                proof.height, signed.size
            )));
        }
        if signed.validator_changes.len() > proof.validator_changes.len() {
            proof.validator_changes = signed.validator_changes.clone();
        }
        let path = self
            .leaves(ledger)?
            .inclusion_proof(proof.height, signed.size)
            .ok_or_else(|| LedgerError::Corrupt("the block is past the checkpoint".into()))?;
        let extra = serde_json::to_vec(&proof)
            .map_err(|error| LedgerError::Invalid(format!("the inclusion proof: {error}")))?;
        Ok(TlogProof {
            extra: Some(extra),
            index: proof.height,
            path,
            note: signed.note,
        })
    }
}

fn check_size(size: u64, blocks: u64) -> Result<()> {
    if size == 0 {
        return Err(LedgerError::Invalid(
            "a checkpoint holds at least block 0: size 0 has none".into(),
        ));
    }
    if size > blocks {
        return Err(LedgerError::NotFound(format!(
            "the chain has {blocks} blocks, not {size} (yet)"
        )));
    }
    Ok(())
}
