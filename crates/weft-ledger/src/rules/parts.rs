//! Physical parts (type C): registered once, transferred only by their current owner.

use weft_core::model::{RegisterPart, TransferPart};

use super::{Checked, must_exist, short};
use crate::error::{Result, RuleError};
use crate::state::{Overlay, PartEntry, StateView};

pub(super) fn register_part<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    part: &RegisterPart,
) -> Result<()> {
    let (id, time) = (tx.id, tx.time);
    tx.acts_for(&part.owner, "owner")?;
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
    Ok(())
}

pub(super) fn transfer_part<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    transfer: &TransferPart,
) -> Result<()> {
    let (id, time) = (tx.id, tx.time);
    tx.acts_for(&transfer.from, "sender")?;
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
    Ok(())
}
