//! Storage filters: which transactions a node that does not keep every payload (a thin or a
//! producer node, DESIGN.md "Node types") stores whole. The others are stored stripped: their
//! signed header and signature stay, so their id, signature and place in the block's Merkle tree
//! still verify, and a whole copy can be fetched from a peer and checked against them.
//!
//! The genesis, the network's peer admissions and its validator changes are always kept: a node
//! reads them again when it starts, and follows who may produce which block from them. So are
//! the other chains registered, anchored and caught (docs/anchoring.md): the entanglement
//! between companies and its evidence are on every node.

use weft_core::ResourceId;
use weft_core::model::PayloadKind;

use crate::tx::{Signer, Transaction};

/// Kinds every node keeps whole, whatever its filter says.
pub const ALWAYS_KEPT: [PayloadKind; 7] = [
    PayloadKind::Genesis,
    PayloadKind::NetworkPeer,
    PayloadKind::SetValidators,
    PayloadKind::RegisterChain,
    PayloadKind::Anchor,
    PayloadKind::AnchorEvidence,
    PayloadKind::Timestamp,
];

/// What a node keeps whole: transactions of one of `kinds`, and transactions that name one of
/// `resources` (as signer, issuer, sender, recipient, owner or subject).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageFilter {
    pub kinds: Vec<PayloadKind>,
    pub resources: Vec<ResourceId>,
}

impl StorageFilter {
    /// Is `tx` stored whole? A transaction that is already stripped is not.
    pub fn keeps(&self, tx: &Transaction) -> bool {
        let Some(payload) = &tx.payload else {
            return false;
        };
        let kind = tx.header.kind;
        if ALWAYS_KEPT.contains(&kind) || self.kinds.contains(&kind) {
            return true;
        }
        if self.resources.is_empty() {
            return false;
        }
        if let Signer::Resource(signer) = tx.header.signer
            && self.resources.contains(&signer)
        {
            return true;
        }
        payload
            .resources()
            .iter()
            .any(|resource| self.resources.contains(resource))
    }

    /// Which of `transactions` are stored whole; `None` when all of them are.
    pub fn mask(&self, transactions: &[Transaction]) -> Option<Vec<bool>> {
        let mask: Vec<bool> = transactions.iter().map(|tx| self.keeps(tx)).collect();
        if mask.iter().all(|keep| *keep) {
            None
        } else {
            Some(mask)
        }
    }
}
