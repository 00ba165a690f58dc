//! What nodes send each other on weft's own peer-to-peer channels (the consensus engine's
//! channels carry its own messages). Borsh, like everything else weft signs or stores; every
//! message is checked against its limits when decoded (docs/network.md, "Messages").

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::CoreError;
use weft_core::TxId;
use weft_core::encoding::{Canonical, check_count};
use weft_ledger::Transaction;
use weft_ledger::block::Block;

/// The consensus engine's votes.
pub const CHANNEL_VOTES: u64 = 0;
/// The consensus engine's certificates.
pub const CHANNEL_CERTIFICATES: u64 = 1;
/// The consensus engine's requests for certificates it missed.
pub const CHANNEL_RESOLVER: u64 = 2;
/// Proposed blocks, whole ([`Block`] encoding).
pub const CHANNEL_BLOCKS: u64 = 3;
/// Submitted transactions, flooded to every peer ([`TxBatch`]).
pub const CHANNEL_TXS: u64 = 4;
/// Catch-up: finalized blocks on request ([`Sync`]).
pub const CHANNEL_SYNC: u64 = 5;

/// Largest message on any channel: a whole block, with room for its framing.
pub const MAX_MESSAGE_BYTES: u32 = 32 << 20;
/// Most blocks in one catch-up answer.
pub const MAX_SYNC_BLOCKS: u32 = 256;
/// Most bytes of blocks in one catch-up answer (a single larger block still goes alone).
pub const SYNC_ANSWER_BYTES: usize = 8 << 20;
/// Most transactions asked for in one proof request.
pub const MAX_PROOF_REQUEST: usize = 256;
/// Most bytes of proofs in one answer (a single larger proof still goes alone).
pub const PROOF_ANSWER_BYTES: usize = 8 << 20;
/// Most transactions in one flooded batch.
pub const MAX_TX_BATCH: usize = 20_000;
/// Most bytes of transactions in one flooded batch.
pub const TX_BATCH_BYTES: usize = 4 << 20;

/// Transactions flooded to peers.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct TxBatch {
    pub transactions: Vec<Transaction>,
}

impl Canonical for TxBatch {
    const WHAT: &'static str = "transaction batch";
    const MAX_ENCODED: usize = MAX_MESSAGE_BYTES as usize;
    fn validate(&self) -> Result<(), CoreError> {
        check_count(
            "batch transactions",
            self.transactions.len(),
            1,
            MAX_TX_BATCH,
        )?;
        self.transactions.iter().try_for_each(Canonical::validate)
    }
}

/// Catch-up: a node that is behind asks a peer for the finalized blocks after its head.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Sync {
    /// Blocks from `from_height` on, at most `max_blocks`.
    Request { from_height: u64, max_blocks: u32 },
    /// Consecutive finalized blocks starting at the requested height (none if the peer has
    /// none), and the consensus certificate that finalized the last of them, if the peer holds
    /// it (empty otherwise): with it the blocks are final by their hash links alone.
    Answer {
        blocks: Vec<Block>,
        finalization: Vec<u8>,
    },
    /// A node that stores transactions stripped asks for whole copies of these.
    ProofRequest { ids: Vec<TxId> },
    /// Inclusion proofs (docs/proofs.md, JSON) of the requested transactions the peer holds
    /// whole; those it does not hold are left out.
    Proofs { proofs: Vec<String> },
}

impl Canonical for Sync {
    const WHAT: &'static str = "sync message";
    const MAX_ENCODED: usize = MAX_MESSAGE_BYTES as usize;
    fn validate(&self) -> Result<(), CoreError> {
        match self {
            Sync::Request { max_blocks, .. } => check_count(
                "requested blocks",
                *max_blocks as usize,
                1,
                MAX_SYNC_BLOCKS as usize,
            ),
            Sync::Answer {
                blocks,
                finalization,
            } => {
                check_count("answer blocks", blocks.len(), 0, MAX_SYNC_BLOCKS as usize)?;
                check_count("finalization bytes", finalization.len(), 0, 64 << 10)?;
                blocks.iter().try_for_each(Canonical::validate)
            }
            Sync::ProofRequest { ids } => {
                check_count("requested proofs", ids.len(), 1, MAX_PROOF_REQUEST)
            }
            Sync::Proofs { proofs } => {
                check_count("answer proofs", proofs.len(), 0, MAX_PROOF_REQUEST)?;
                proofs.iter().try_for_each(|proof| {
                    check_count(
                        "proof bytes",
                        proof.len(),
                        2,
                        weft_ledger::proof::MAX_PROOF_BYTES,
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::encoding::{decode, encode};

    #[test]
    fn oversized_or_empty_messages_are_refused_with_their_field_named() {
        let error = decode::<TxBatch>(&encode(&TxBatch {
            transactions: Vec::new(),
        }))
        .expect_err("an empty batch");
        assert!(error.to_string().contains("batch transactions"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Request {
            from_height: 1,
            max_blocks: MAX_SYNC_BLOCKS + 1,
        }))
        .expect_err("too many blocks asked for");
        assert!(error.to_string().contains("requested blocks"), "{error}");
        let request = Sync::Request {
            from_height: 7,
            max_blocks: 3,
        };
        let decoded = decode::<Sync>(&encode(&request)).expect("a good request");
        assert!(matches!(
            decoded,
            Sync::Request {
                from_height: 7,
                max_blocks: 3
            }
        ));
        assert!(decode::<Sync>(&[9, 1, 2]).is_err(), "no such variant");
        let error =
            decode::<Sync>(&encode(&Sync::ProofRequest { ids: Vec::new() })).expect_err("no ids");
        assert!(error.to_string().contains("requested proofs"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::ProofRequest {
            ids: vec![TxId::default(); MAX_PROOF_REQUEST + 1],
        }))
        .expect_err("too many ids");
        assert!(error.to_string().contains("requested proofs"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Proofs {
            proofs: vec![String::new()],
        }))
        .expect_err("an empty proof");
        assert!(error.to_string().contains("proof bytes"), "{error}");
    }
}
