//! Product data: claims of ownership (rule 3), sends (rules 1 and 2), records.

use weft_core::model::{Record, RecordOwnership, SendProductData};
use weft_core::{Fingerprint, ResourceId};

use super::{Checked, must_exist, short};
use crate::error::{Result, RuleError};
use crate::state::{Overlay, OwnerEntry, ReceiptEntry, StateView};

pub(super) fn claim<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    claim: &RecordOwnership,
) -> Result<()> {
    let (id, time) = (tx.id, tx.time);
    tx.acts_for(&claim.issuer, "issuer")?;
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
    Ok(())
}

pub(super) fn send<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    send: &SendProductData,
) -> Result<()> {
    let time = tx.time;
    tx.acts_for(&send.from, "sender")?;
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
    Ok(())
}

pub(super) fn record<S: StateView + ?Sized>(
    _state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    record: &Record,
) -> Result<()> {
    tx.acts_for(&record.issuer, "issuer")?;
    Ok(())
}

/// Rules 1 and 2 for a send of `fingerprint` by `from` at `time`.
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
