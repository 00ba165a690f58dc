//! Resources and their keys: registering organisations and people, rotating and revoking keys.

use weft_core::ResourceId;
use weft_core::model::{RegisterResource, Resource, RevokeKey, RotateKey};

use super::{Checked, must_exist, short, usable_key};
use crate::error::{Result, RuleError};
use crate::state::{KeyStatus, Overlay, ResourceEntry, StateView};
use crate::tx::Signer;

pub(super) fn register<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    register: &RegisterResource,
) -> Result<()> {
    let (header, id, position, time) = (tx.header, tx.id, tx.position, tx.time);
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
            let organization = must_exist(state, &person.belongs_to, "belongsTo organization")?;
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
                matches!(&tx.signer, Some((signer, _)) if *signer == person.belongs_to);
            if !signed_by_org && header.signer != Signer::Authority {
                return Err(RuleError::Acting {
                    message:
                        "a person is registered by its organization's key (or a network authority)"
                            .into(),
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
    Ok(())
}

pub(super) fn rotate_key<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    rotate: &RotateKey,
) -> Result<()> {
    let (header, position) = (tx.header, tx.position);
    if header.signer != Signer::Resource(rotate.resource) {
        return Err(RuleError::Acting {
            message: "a key is rotated by the resource itself, signing with its current key".into(),
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
    Ok(())
}

pub(super) fn revoke_key<S: StateView + ?Sized>(
    state: &mut Overlay<'_, S>,
    tx: &Checked<'_>,
    revoke: &RevokeKey,
) -> Result<()> {
    let (header, position) = (tx.header, tx.position);
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
    Ok(())
}
