//! What a node knows about its network, as `GET /v1/net/status`, `weft net status` and the
//! metrics show it: weft-api's [`NetStatus`], plain data that the network fills in and the API
//! and metrics read.

use weft_ledger::state::Schedule;

pub use weft_api::{CutOff, Member, NetStatus, NextValidators};

/// The validator change after `epoch` in `schedule`, if one is scheduled.
pub(super) fn next_validators(schedule: &Schedule, epoch: u64) -> Option<NextValidators> {
    let change = schedule.changes.get(epoch as usize)?;
    Some(NextValidators {
        from_height: change.from_height,
        validators: change.validators.iter().map(ToString::to_string).collect(),
    })
}
