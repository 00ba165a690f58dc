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

use weft_core::model::{Payload, Resource};
use weft_core::{ChainId, Fingerprint, ResourceId, TxId};

use crate::error::{Result, RuleError};
use crate::state::{
    KeyStatus, Overlay, OwnerEntry, PartEntry, Position, ReceiptEntry, ResourceEntry, StateView,
    ValidatorChange,
};
use crate::tx::{Signer, Transaction};

/// What the rules need besides the state.
#[derive(Clone, Copy, Debug)]
pub struct RuleContext {
    pub chain_id: ChainId,
    /// The node's clock (at submission) or the block timestamp (inside a block), in ms.
    pub reference_time: u64,
    /// Overrides the genesis window (used before genesis exists).
    pub time_window_ms: Option<u64>,
}

fn short(id: &ResourceId) -> String {
    id.to_hex()[..16].to_string()
}

fn fmt_ms(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
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

    // May the signer act for `actor`? Itself, or a person acting for its organisation.
    let acts_for = |actor: &ResourceId, role: &str| -> Result<()> {
        match &signer_entry {
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
    };
    let must_exist =
        |state: &Overlay<'_, S>, id: &ResourceId, role: &str| -> Result<ResourceEntry> {
            state.resource(id)?.ok_or_else(|| {
                RuleError::Resource {
                    message: format!("{role} {id} is not a registered resource"),
                }
                .into()
            })
        };

    let time = header.time_of_tx;
    match payload {
        Payload::Genesis(_) => unreachable!("handled above"),
        Payload::RegisterResource(register) => {
            usable_key(&register.key)?;
            match &register.resource {
                Resource::Organization(_) => {
                    if header.signer != Signer::Authority {
                        return Err(RuleError::Acting {
                            message: "only a network authority registers organizations".into(),
                        }
                        .into());
                    }
                }
                Resource::PersonInOrganization(person) => {
                    let organization =
                        must_exist(state, &person.belongs_to, "belongsTo organization")?;
                    if organization.organization().is_some() {
                        return Err(RuleError::Resource {
                            message: format!(
                                "belongsTo {} is a person, not an organization",
                                person.belongs_to
                            ),
                        }
                        .into());
                    }
                    let signed_by_org =
                        matches!(&signer_entry, Some((signer, _)) if *signer == person.belongs_to);
                    if !signed_by_org && header.signer != Signer::Authority {
                        return Err(RuleError::Acting {
                            message: "a person is registered by its organization's key (or a network authority)".into(),
                        }
                        .into());
                    }
                }
            }
            let new_id = ResourceId(id.0);
            state.delta.resources.insert(
                new_id,
                ResourceEntry {
                    resource: register.resource.clone(),
                    registered_at: position,
                    time,
                },
            );
            state
                .delta
                .keys
                .insert((new_id, register.key), KeyStatus::Active);
        }
        Payload::RotateKey(rotate) => {
            if header.signer != Signer::Resource(rotate.resource) {
                return Err(RuleError::Acting {
                    message:
                        "a key is rotated by the resource itself, signing with its current key"
                            .into(),
                }
                .into());
            }
            usable_key(&rotate.new_key)?;
            if state
                .key_status(&rotate.resource, &rotate.new_key)?
                .is_some()
            {
                return Err(RuleError::Key {
                    message: format!(
                        "key {} was already registered to this resource",
                        rotate.new_key
                    ),
                }
                .into());
            }
            state.delta.keys.insert(
                (rotate.resource, header.key),
                KeyStatus::Revoked { at: position },
            );
            state
                .delta
                .keys
                .insert((rotate.resource, rotate.new_key), KeyStatus::Active);
        }
        Payload::RevokeKey(revoke) => {
            let target = must_exist(state, &revoke.resource, "resource")?;
            let allowed = header.signer == Signer::Authority
                || header.signer == Signer::Resource(revoke.resource)
                || target
                    .organization()
                    .is_some_and(|organization| header.signer == Signer::Resource(organization));
            if !allowed {
                return Err(RuleError::Acting {
                    message: "a key is revoked by its resource, the person's organization, or a network authority".into(),
                }
                .into());
            }
            if state.key_status(&revoke.resource, &revoke.key)? != Some(KeyStatus::Active) {
                return Err(RuleError::Key {
                    message: format!(
                        "key {} is not an active key of {}",
                        revoke.key,
                        short(&revoke.resource)
                    ),
                }
                .into());
            }
            state.delta.keys.insert(
                (revoke.resource, revoke.key),
                KeyStatus::Revoked { at: position },
            );
        }
        Payload::RecordOwnership(claim) => {
            acts_for(&claim.issuer, "issuer")?;
            let fingerprint = &claim.product_data.fingerprint;
            if let Some(existing) = state.owner(fingerprint)? {
                let duplicate = existing.issuer == claim.issuer;
                let message = if duplicate {
                    format!(
                        "duplicate claim: {} already recorded ownership of {fingerprint} (transaction {})",
                        short(&claim.issuer),
                        existing.tx_id
                    )
                } else {
                    format!(
                        "conflicting claim: {fingerprint} is already owned by {} (transaction {}); no other resource may claim it",
                        short(&existing.issuer),
                        existing.tx_id
                    )
                };
                return Err(RuleError::Rule3 { duplicate, message }.into());
            }
            state.delta.owners.insert(
                *fingerprint,
                OwnerEntry {
                    issuer: claim.issuer,
                    time,
                    tx_id: id,
                },
            );
        }
        Payload::SendProductData(send) => {
            acts_for(&send.from, "sender")?;
            must_exist(state, &send.to, "recipient")?;
            let fingerprint = &send.product_data.fingerprint;
            check_right_to_send(state, fingerprint, &send.from, time)?;
            let previous = state.receipt(fingerprint, &send.to)?;
            let forwardable_time = send.forward.then_some(time);
            let first_forwardable = match (
                previous.and_then(|old| old.first_forwardable),
                forwardable_time,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let entry = ReceiptEntry { first_forwardable };
            state.delta.receipts.insert((*fingerprint, send.to), entry);
        }
        Payload::Record(record) => {
            acts_for(&record.issuer, "issuer")?;
        }
        Payload::RegisterPart(part) => {
            acts_for(&part.owner, "owner")?;
            if let Some(existing) = state.part(&part.code)? {
                return Err(RuleError::TypeC {
                    message: format!(
                        "part {:?} is already registered (owner {}, transaction {})",
                        part.code,
                        short(&existing.owner),
                        existing.tx_id
                    ),
                }
                .into());
            }
            state.delta.parts.insert(
                part.code.clone(),
                PartEntry {
                    owner: part.owner,
                    time,
                    tx_id: id,
                },
            );
        }
        Payload::TransferPart(transfer) => {
            acts_for(&transfer.from, "sender")?;
            must_exist(state, &transfer.to, "recipient")?;
            let current = state
                .part(&transfer.code)?
                .ok_or_else(|| RuleError::TypeC {
                    message: format!("part {:?} is not registered", transfer.code),
                })?;
            if current.owner != transfer.from {
                return Err(RuleError::TypeC {
                    message: format!(
                        "{} is not the current owner of part {:?} (the owner is {}); only the current owner can transfer it",
                        short(&transfer.from),
                        transfer.code,
                        short(&current.owner)
                    ),
                }
                .into());
            }
            if time <= current.time {
                return Err(RuleError::TypeC {
                    message: format!(
                        "the transfer's timeOfTx must be later than the part's last change ({} ms)",
                        current.time
                    ),
                }
                .into());
            }
            state.delta.parts.insert(
                transfer.code.clone(),
                PartEntry {
                    owner: transfer.to,
                    time,
                    tx_id: id,
                },
            );
        }
        Payload::NetworkPeer(peer) => {
            if header.signer != Signer::Authority {
                return Err(RuleError::Acting {
                    message: "only a network authority admits or removes network peers".into(),
                }
                .into());
            }
            usable_key(&peer.key)?;
        }
        Payload::SetValidators(set) => {
            if header.signer != Signer::Authority {
                return Err(RuleError::Acting {
                    message: "only a network authority changes the validators".into(),
                }
                .into());
            }
            for key in &set.validators {
                usable_key(key)?;
            }
            if set.from_height <= position.height {
                return Err(RuleError::Chain {
                    message: format!(
                        "the change takes effect at height {}, not later than the block holding \
                         it ({}); it must start at a later height",
                        set.from_height, position.height
                    ),
                }
                .into());
            }
            if set.from_height - position.height > MAX_SCHEDULE_AHEAD {
                return Err(RuleError::Chain {
                    message: format!(
                        "the change takes effect at height {}, more than {MAX_SCHEDULE_AHEAD} \
                         blocks after this one ({})",
                        set.from_height, position.height
                    ),
                }
                .into());
            }
            // A change scheduled at or after this one's height (not in effect yet) is replaced.
            let mut changes = state.validator_changes()?;
            crate::state::schedule_change(
                &mut changes,
                ValidatorChange {
                    from_height: set.from_height,
                    validators: set.validators.clone(),
                    scheduled_at: position,
                },
            );
            state.delta.validators = Some(changes);
        }
    }
    state.delta.tx_ids.insert(id);
    Ok(())
}

/// Rules 1 and 2 for a send of `fingerprint` by `from` at `time`.
/// A key that is registered or rotated in must be able to sign (see `PublicKey::check_usable`).
fn usable_key(key: &weft_core::PublicKey) -> Result<(), RuleError> {
    key.check_usable().map_err(|error| RuleError::Key {
        message: format!("the new key cannot be registered: {error}"),
    })
}

fn check_right_to_send<S: StateView + ?Sized>(
    state: &Overlay<'_, S>,
    fingerprint: &Fingerprint,
    from: &ResourceId,
    time: u64,
) -> Result<()> {
    let owner = state.owner(fingerprint)?;
    if let Some(owner) = &owner
        && owner.issuer == *from
    {
        if owner.time < time {
            return Ok(());
        }
        return Err(RuleError::Rule1 {
            clause: "c",
            message: format!(
                "the send's timeOfTx ({time} ms) must be strictly later than the ownership record's ({} ms)",
                owner.time
            ),
        }
        .into());
    }
    match state.receipt(fingerprint, from)? {
        Some(ReceiptEntry { first_forwardable: Some(received), .. }) if received < time => Ok(()),
        Some(ReceiptEntry { first_forwardable: Some(received), .. }) => Err(RuleError::Rule2 {
            clause: "d",
            message: format!(
                "the send's timeOfTx ({time} ms) must be strictly later than the forwardable send to the sender ({received} ms)"
            ),
        }
        .into()),
        Some(ReceiptEntry { first_forwardable: None, .. }) => Err(RuleError::Rule2 {
            clause: "b",
            message: "sender received this data without the right to forward it (forward = false)".into(),
        }
        .into()),
        None if owner.is_none() => Err(RuleError::Rule1 {
            clause: "a",
            message: format!("no RecordOwnership of {fingerprint} exists, so nobody may send it"),
        }
        .into()),
        None => Err(RuleError::NoRightToSend {
            message: "sender neither owns this data (rule 1) nor has a forwardable copy of it (rule 2)".into(),
        }
        .into()),
    }
}
