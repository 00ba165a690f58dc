//! Other companies' chains (docs/anchoring.md): registering one by its trust root, anchoring its
//! checkpoints — each signed by a quorum of its validators and extending the one anchored before
//! by a consistency proof — and recording evidence that it signed two histories; and keeping
//! the RFC 3161 time-stamps of this chain's own checkpoints.

use weft_core::model::{Anchor, AnchorEvidence, RegisterChain, Timestamp};

use super::Checked;
use crate::checkpoint::{self, Checkpoint, Note, VerifiedCheckpoint};
use crate::error::{Result, RuleError};
use crate::state::{AnchorEntry, AnchoredChain, Anchors, Overlay, Schedule, StateView};
use crate::trust::TrustRoot;
use crate::tx::Signer;

/// Most chains registered on one chain.
pub const MAX_CHAINS: usize = 64;
/// Most evidence transactions recorded against one chain.
pub const MAX_EVIDENCE: usize = 16;

fn refused(message: impl Into<String>) -> crate::LedgerError {
    RuleError::Anchor {
        message: message.into(),
    }
    .into()
}

/// The trust root of a registered chain's block 0.
pub fn root_of(chain: &AnchoredChain) -> Result<TrustRoot> {
    let block: crate::block::Block =
        weft_core::encoding::decode(&chain.genesis).map_err(|error| {
            refused(format!(
                "the block 0 of {} held here: {error}",
                chain.origin
            ))
        })?;
    TrustRoot::from_genesis(&block)
}

/// Checks `note` as a checkpoint of a registered chain: its origin is registered here, and a
/// quorum of that chain's validators (its trust root's) signed it.
pub fn check_note<'a>(
    anchors: &'a Anchors,
    note: &str,
) -> Result<(&'a AnchoredChain, Note, VerifiedCheckpoint)> {
    let note = Note::parse(note.as_bytes())
        .map_err(|error| refused(format!("the checkpoint is not a signed note: {error}")))?;
    let parsed = Checkpoint::parse(&note.text).map_err(|error| refused(error.to_string()))?;
    let chain = anchors.get(&parsed.origin).ok_or_else(|| {
        refused(format!(
            "chain {} is not registered here (an authority registers it with RegisterChain)",
            parsed.origin
        ))
    })?;
    let root = root_of(chain)?;
    let schedule = Schedule {
        genesis: root.validators.clone(),
        changes: Vec::new(),
    };
    let verified = checkpoint::verify(&note, &root, &schedule)
        .map_err(|error| refused(format!("checkpoint of {}: {error}", parsed.origin)))?;
    Ok((chain, note, verified))
}

pub(super) fn register_chain<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    register: &RegisterChain,
) -> Result<()> {
    if tx.header.signer != Signer::Authority {
        return Err(RuleError::Acting {
            message: "only a network authority registers another chain".into(),
        }
        .into());
    }
    let block: crate::block::Block = weft_core::encoding::decode(&register.genesis)
        .map_err(|error| refused(format!("genesis is not a block: {error}")))?;
    let root = TrustRoot::from_genesis(&block)
        .map_err(|error| refused(format!("genesis is not a chain's block 0: {error}")))?;
    if root.chain_id == tx.header.chain_id {
        return Err(refused("a chain does not anchor itself"));
    }
    let origin = checkpoint::origin(&root.chain, &root.chain_id);
    let mut anchors = state.anchors()?;
    if let Some(held) = anchors.get(&origin) {
        if held.genesis == register.genesis {
            return Ok(());
        }
        return Err(refused(format!(
            "chain {origin} is registered already, with another block 0"
        )));
    }
    if anchors.chains.len() >= MAX_CHAINS {
        return Err(refused(format!(
            "{MAX_CHAINS} chains are registered; no more"
        )));
    }
    anchors.insert(AnchoredChain {
        origin,
        genesis: register.genesis.clone(),
        registered_at: tx.position,
        latest: None,
        evidence: Vec::new(),
    });
    state.delta.anchors = Some(anchors);
    Ok(())
}

pub(super) fn anchor<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    anchor: &Anchor,
) -> Result<()> {
    let mut anchors = state.anchors()?;
    let (chain, _, verified) = check_note(&anchors, &anchor.note)?;
    let origin = chain.origin.clone();
    let new = verified.checkpoint;
    let (size, root) = match chain.latest {
        None => {
            if anchor.old_size != 0 || !anchor.proof.is_empty() {
                return Err(refused(format!(
                    "nothing of {origin} is anchored yet: the first anchor has old size 0 and no \
                     proof"
                )));
            }
            (0, None)
        }
        Some(latest) => (latest.size, Some(latest.root)),
    };
    if let Some(held_root) = root {
        if anchor.old_size != size {
            return Err(refused(format!(
                "the proof is from size {}, but {size} blocks of {origin} are anchored",
                anchor.old_size
            )));
        }
        if new.size == size && new.root != held_root {
            return Err(refused(format!(
                "a checkpoint of {size} blocks of {origin} with another root than the one \
                 anchored: the chain signed two histories (record both as AnchorEvidence)"
            )));
        }
        if new.size <= size {
            return Err(refused(format!(
                "{} blocks of {origin} is not beyond the {size} anchored",
                new.size
            )));
        }
        if !weft_core::merkle::verify_consistency(
            size,
            new.size,
            &held_root,
            &new.root,
            &anchor.proof,
        ) {
            return Err(refused(format!(
                "the consistency proof from {size} to {} blocks of {origin} does not hold: the \
                 checkpoint does not extend the one anchored (a rewritten history or a split view)",
                new.size
            )));
        }
    }
    let chain = anchors.get_mut(&origin).expect("found above");
    chain.latest = Some(AnchorEntry {
        size: new.size,
        root: new.root,
        tx_id: tx.id,
    });
    state.delta.anchors = Some(anchors);
    Ok(())
}

pub(super) fn evidence<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    evidence: &AnchorEvidence,
) -> Result<()> {
    let mut anchors = state.anchors()?;
    let (first_chain, _, first) = check_note(&anchors, &evidence.first)?;
    let origin = first_chain.origin.clone();
    let (second_chain, _, second) = check_note(&anchors, &evidence.second)?;
    if second_chain.origin != origin {
        return Err(refused(format!(
            "the checkpoints are of two chains ({origin} and {})",
            second_chain.origin
        )));
    }
    check_conflict(&first, &second)?;
    let chain = anchors.get_mut(&origin).expect("found above");
    if chain.evidence.len() >= MAX_EVIDENCE {
        return Err(refused(format!(
            "{MAX_EVIDENCE} pieces of evidence against {origin} are recorded already"
        )));
    }
    chain.evidence.push(tx.id);
    state.delta.anchors = Some(anchors);
    Ok(())
}

/// Do two checkpoints of one chain, each signed by a quorum, contradict each other? Two of the
/// same size with different roots do; anything else is no evidence a third party can check.
pub fn check_conflict(first: &VerifiedCheckpoint, second: &VerifiedCheckpoint) -> Result<()> {
    let (a, b) = (&first.checkpoint, &second.checkpoint);
    if a.size != b.size {
        return Err(refused(format!(
            "checkpoints of {} and {} blocks: evidence is two checkpoints of the same size",
            a.size, b.size
        )));
    }
    if a.root == b.root {
        return Err(refused(format!(
            "both checkpoints of {} blocks have the same root: no contradiction",
            a.size
        )));
    }
    Ok(())
}

/// A time-stamp of one of this chain's checkpoints: recorded by a network authority, of a
/// checkpoint of this chain (its origin names this chain's id) of blocks before the one holding
/// it, with a token whose message imprint is the SHA-256 of that checkpoint's text and whose nonce
/// is the one recorded. The TSA's signature and certificate chain are the verifier's to check,
/// against the TSA's CA it holds (`weft_ledger::timestamp::verify`); the validators' signatures
/// on the note too. No state changes.
pub(super) fn timestamp(tx: &Checked<'_>, timestamp: &Timestamp) -> Result<()> {
    if tx.header.signer != Signer::Authority {
        return Err(RuleError::Acting {
            message: "only a network authority records a time-stamp".into(),
        }
        .into());
    }
    let note = Note::parse(timestamp.note.as_bytes())
        .map_err(|error| refused(format!("the checkpoint is not a signed note: {error}")))?;
    let parsed = Checkpoint::parse(&note.text).map_err(|error| refused(error.to_string()))?;
    let own = tx.header.chain_id.to_hex();
    if parsed.origin.rsplit('/').next() != Some(own.as_str()) {
        return Err(refused(format!(
            "the checkpoint is of {}, not of this chain: a time-stamp is of this chain's own \
             checkpoints",
            parsed.origin
        )));
    }
    if parsed.size == 0 || parsed.size > tx.position.height {
        return Err(refused(format!(
            "a checkpoint of {} blocks is not of the {} blocks before this one",
            parsed.size, tx.position.height
        )));
    }
    let token = crate::timestamp::parse(&timestamp.token)
        .map_err(|error| refused(format!("the time-stamp token: {error}")))?;
    token
        .check_imprint(note.text.as_bytes(), timestamp.nonce)
        .map_err(|error| refused(format!("the time-stamp token: {error}")))?;
    Ok(())
}
