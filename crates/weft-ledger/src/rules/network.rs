//! The network: admitting and removing peers, scheduling validator changes.

use weft_core::model::{NetworkPeer, SetValidators};

use super::{Checked, MAX_SCHEDULE_AHEAD, usable_key};
use crate::error::{Result, RuleError};
use crate::state::{Overlay, StateView, ValidatorChange};
use crate::tx::Signer;

pub(super) fn network_peer<S: StateView + ?Sized>(
    _state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    peer: &NetworkPeer,
) -> Result<()> {
    let header = tx.header;
    if header.signer != Signer::Authority {
        return Err(RuleError::Acting {
            message: "only a network authority admits or removes network peers".into(),
        }
        .into());
    }
    usable_key(&peer.key)?;
    Ok(())
}

pub(super) fn set_validators<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    set: &SetValidators,
) -> Result<()> {
    let (header, position) = (tx.header, tx.position);
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
    Ok(())
}
