//! The business-rule state machine: pure functions over a [`StateView`].
//!
//! "Prior" (DESIGN.md) means earlier in canonical ledger order **and** strictly smaller
//! `timeOfTx`. Because transactions are applied in ledger order, everything already in the state
//! is earlier in order; the time comparisons below supply the second half.
//!
//! - Rule 1: a send is valid if its sender recorded ownership of the fingerprint with a strictly
//!   earlier `timeOfTx`.
//! - Rule 2: or if a valid forwardable send of the fingerprint *to* the sender has a strictly
//!   earlier `timeOfTx`.
//! - Rule 3: a claim is valid only if no claim of the fingerprint exists earlier in ledger order,
//!   whatever its timestamp (a later-ordered claim with an older timestamp must not create a
//!   second owner); the error says whether it is a duplicate (same issuer) or a conflict.
//! - Type C: a part is registered once; only its current owner transfers it.
//! - Every transaction: right chain, `timeOfTx` within the window of the reference time (the
//!   node's clock at submission, the block timestamp inside a block), an active key registered to
//!   the signer, and a signer that is the acting resource or a person of that organisation.

use weft_core::model::Payload;
use weft_core::{ChainId, ResourceId, TxId};

use crate::error::{Result, RuleError};
use crate::state::{KeyStatus, Overlay, Position, ResourceEntry, StateView};
use crate::tx::{Signer, Transaction, TxHeader};

pub mod anchors;
mod assets;
mod network;
mod parts;
mod resources;

/// What the rules need besides the state.
#[derive(Clone, Copy, Debug)]
pub struct RuleContext {
    pub chain_id: ChainId,
    /// The node's clock (at submission) or the block timestamp (inside a block), in ms.
    pub reference_time: u64,
    /// Overrides the genesis window (used before genesis exists).
    pub time_window_ms: Option<u64>,
}

pub(super) fn short(id: &ResourceId) -> String {
    id.to_hex()[..16].to_string()
}

fn fmt_ms(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// One transaction as the handler of its payload sees it, its signature and signer checked.
pub(super) struct Checked<'t> {
    pub header: &'t TxHeader,
    pub id: TxId,
    pub position: Position,
    /// Its `timeOfTx`.
    pub time: u64,
    /// The signing resource and its entry; `None` for a network authority.
    pub signer: Option<(ResourceId, ResourceEntry)>,
}

impl Checked<'_> {
    /// May the signer act for `actor`? Itself, or a person acting for its organisation.
    pub fn acts_for(&self, actor: &ResourceId, role: &str) -> Result<()> {
        match &self.signer {
            Some((signer, _)) if signer == actor => Ok(()),
            Some((_, entry)) if entry.organization() == Some(*actor) => Ok(()),
            Some((signer, _)) => Err(RuleError::Acting {
                message: format!(
                    "signer {} is neither the {role} {} nor a person of that organization",
                    short(signer),
                    short(actor)
                ),
            }
            .into()),
            None => Err(RuleError::Acting {
                message: format!("a network authority cannot act as the {role}"),
            }
            .into()),
        }
    }
}

/// The entry of `id`, which must be a registered resource (`role` names it in the error).
pub(super) fn must_exist<S: StateView + ?Sized>(
    state: &Overlay<'_, S>,
    id: &ResourceId,
    role: &str,
) -> Result<ResourceEntry> {
    state.resource(id)?.ok_or_else(|| {
        RuleError::Resource {
            message: format!("{role} {id} is not a registered resource"),
        }
        .into()
    })
}

/// How far ahead of the block holding it a `SetValidators` change may take effect (a mistyped
/// height would otherwise block every later change).
pub const MAX_SCHEDULE_AHEAD: u64 = 1_000_000;

/// Checks `tx` against the rules and, if valid, records its effects in `state`.
/// Signatures are checked by the caller (in batches) before this is called.
pub fn apply<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Transaction,
    id: TxId,
    position: Position,
    context: &RuleContext,
) -> Result<()> {
    let header = &tx.header;
    let payload = tx.payload.as_ref().ok_or_else(|| RuleError::Format {
        message: "the payload is stripped; rules can only be checked on a full transaction".into(),
    })?;
    if state.contains_tx(&id)? {
        return Err(RuleError::Format {
            message: format!("transaction {id} is already on the ledger (replay)"),
        }
        .into());
    }
    if header.chain_id != context.chain_id {
        return Err(RuleError::Chain {
            message: format!(
                "transaction is for chain {}, this ledger is chain {}",
                header.chain_id, context.chain_id
            ),
        }
        .into());
    }

    let genesis = state.genesis()?;
    let window = context
        .time_window_ms
        .or(genesis.as_ref().map(|genesis| genesis.time_window_ms))
        .unwrap_or(u64::MAX);
    let distance = header.time_of_tx.abs_diff(context.reference_time);
    if distance > window {
        let direction = if header.time_of_tx > context.reference_time {
            "ahead of"
        } else {
            "behind"
        };
        return Err(RuleError::TimeWindow {
            message: format!(
                "timeOfTx is {} {direction} the reference clock; the window is ±{}",
                fmt_ms(distance),
                fmt_ms(window)
            ),
        }
        .into());
    }

    if let Payload::Genesis(new_genesis) = payload {
        if position
            != (Position {
                height: 0,
                index: 0,
            })
            || genesis.is_some()
        {
            return Err(RuleError::Chain {
                message: "a genesis transaction is only valid as the first transaction of block 0"
                    .into(),
            }
            .into());
        }
        if header.signer != Signer::Authority || !new_genesis.authorities.contains(&header.key) {
            return Err(RuleError::Key {
                message: "the genesis must be signed by one of its own authorities".into(),
            }
            .into());
        }
        if ChainId::from_name(&new_genesis.chain_name)? != context.chain_id {
            return Err(RuleError::Chain {
                message: "the genesis chain name does not give this chain id".into(),
            }
            .into());
        }
        state.delta.genesis = Some(new_genesis.clone());
        state.delta.tx_ids.insert(id);
        return Ok(());
    }
    let genesis = genesis.ok_or_else(|| RuleError::Chain {
        message: "the chain has no genesis yet".into(),
    })?;

    // Who signed, and with which key.
    let signer_entry = match header.signer {
        Signer::Authority => {
            if !genesis.authorities.contains(&header.key) {
                return Err(RuleError::Key {
                    message: format!("key {} is not a network authority", header.key),
                }
                .into());
            }
            None
        }
        Signer::Resource(signer) => {
            let entry = state
                .resource(&signer)?
                .ok_or_else(|| RuleError::Resource {
                    message: format!("signer {signer} is not a registered resource"),
                })?;
            match state.key_status(&signer, &header.key)? {
                Some(KeyStatus::Active) => {}
                Some(KeyStatus::Revoked { at }) => {
                    return Err(RuleError::Key {
                        message: format!(
                            "key {} of {} was revoked at block {}, transaction {}",
                            header.key,
                            short(&signer),
                            at.height,
                            at.index
                        ),
                    }
                    .into());
                }
                None => {
                    return Err(RuleError::Key {
                        message: format!(
                            "key {} is not registered to signer {}",
                            header.key,
                            short(&signer)
                        ),
                    }
                    .into());
                }
            }
            Some((signer, entry))
        }
    };

    let tx = Checked {
        header,
        id,
        position,
        time: header.time_of_tx,
        signer: signer_entry,
    };
    match payload {
        Payload::Genesis(_) => unreachable!("handled above"),
        Payload::RegisterResource(register) => resources::register(state, &tx, register)?,
        Payload::RotateKey(rotate) => resources::rotate_key(state, &tx, rotate)?,
        Payload::RevokeKey(revoke) => resources::revoke_key(state, &tx, revoke)?,
        Payload::RecordOwnership(claim) => assets::claim(state, &tx, claim)?,
        Payload::SendProductData(send) => assets::send(state, &tx, send)?,
        Payload::Record(record) => assets::record(state, &tx, record)?,
        Payload::RegisterPart(part) => parts::register_part(state, &tx, part)?,
        Payload::TransferPart(transfer) => parts::transfer_part(state, &tx, transfer)?,
        Payload::NetworkPeer(peer) => network::network_peer(state, &tx, peer)?,
        Payload::SetValidators(set) => network::set_validators(state, &tx, set)?,
        Payload::RegisterChain(register) => anchors::register_chain(state, &tx, register)?,
        Payload::Anchor(anchor) => anchors::anchor(state, &tx, anchor)?,
        Payload::AnchorEvidence(evidence) => anchors::evidence(state, &tx, evidence)?,
        Payload::Timestamp(timestamp) => anchors::timestamp(&tx, timestamp)?,
    }
    if let Some(fingerprint) = payload.content_fingerprint() {
        let mut history = state.history(&fingerprint)?.unwrap_or_default().then(&id);
        if let Payload::RecordOwnership(_) = payload {
            // The owner entry the claim just recorded.
            history.owner = state.owner(&fingerprint)?;
        }
        state.delta.histories.insert(fingerprint, history);
    }
    state.delta.tx_ids.insert(id);
    Ok(())
}

/// A key that is registered or rotated in must be able to sign (see `PublicKey::check_usable`).
pub(super) fn usable_key(key: &weft_core::PublicKey) -> Result<(), RuleError> {
    key.check_usable().map_err(|error| RuleError::Key {
        message: format!("the new key cannot be registered: {error}"),
    })
}
