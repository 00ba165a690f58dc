//! What a network node keeps with each committed block, written by the store in the block's own
//! write transaction so that no crash can leave one without the other:
//! - the consensus certificate that finalized the block, when the node has it (opaque bytes to
//!   the ledger; the node serves them with the blocks a peer catches up on, so that the peer can
//!   check the blocks are final without trusting the sender — docs/network.md, "Catch-up");
//! - the peers admitted to the network by the block's `NetworkPeer` transactions.
//!
//! Ledgers written before stores kept the peers have no record of them: [`NetworkRecord`] is how a
//! node hands the store what it kept elsewhere, once; from then on every commit keeps it.

use std::collections::BTreeMap;

use weft_core::PublicKey;
use weft_core::model::{NetworkPeer, Payload};

use crate::block::SignedHeader;
use crate::error::{LedgerError, Result};
use crate::tx::Transaction;

/// The admitted peers, by key, with the names the authority gave them.
pub type NetworkPeers = BTreeMap<PublicKey, String>;

/// The admissions and removals of peers among `transactions`, in order.
pub fn peer_changes(transactions: &[Transaction]) -> Vec<NetworkPeer> {
    transactions
        .iter()
        .filter_map(|tx| match &tx.payload {
            Some(Payload::NetworkPeer(change)) => Some(change.clone()),
            _ => None,
        })
        .collect()
}

/// Applies `changes` to `peers` in order: an admission adds or renames, a removal drops.
pub fn apply_peer_changes(peers: &mut NetworkPeers, changes: &[NetworkPeer]) {
    for change in changes {
        if change.admitted {
            peers.insert(change.key, change.name.clone());
        } else {
            peers.remove(&change.key);
        }
    }
}

/// A network record taken over from outside the store (a node's side file from before stores
/// kept one): the peers as of block `through`, and the certificates that came with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRecord {
    pub through: u64,
    pub peers: NetworkPeers,
    pub certificates: Vec<(u64, Vec<u8>)>,
}

/// Where the store's record of peers stands after committing block `height`, given where it
/// stood before (`None`: no record). A record is started by the genesis block and kept by each
/// following block; a ledger without one keeps none until it adopts a [`NetworkRecord`].
pub(crate) fn tracks(through: Option<u64>, height: u64) -> bool {
    match through {
        None => height == 0,
        Some(through) => through + 1 == height,
    }
}

/// A record is adopted only as of the head: the peers of every block up to it.
pub(crate) fn check_adoption(head: Option<&SignedHeader>, record: &NetworkRecord) -> Result<()> {
    let head = head.map(|signed| signed.header.height);
    if head != Some(record.through) {
        return Err(LedgerError::Invalid(format!(
            "a network record read through block {} cannot be adopted by a ledger whose head is {}",
            record.through,
            head.map_or_else(|| "missing".to_string(), |height| height.to_string())
        )));
    }
    Ok(())
}
