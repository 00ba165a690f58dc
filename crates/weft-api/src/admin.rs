//! The administrative endpoints (they need the node's admin token): registering a resource
//! with the node's authority key, reloading the configuration.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_core::model::Resource;
use weft_core::{ResourceId, TxId};

/// `POST /v1/admin/resources`: the resource to register and its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The resource, as in `GET /v1/resources/{id}` (`{"kind": "organization", …}`).
    #[schema(value_type = Object)]
    pub resource: Resource,
    /// The resource's public key (hex); its private key never reaches the node. Text rather
    /// than a key, so a malformed key is answered `bad_key` naming this field.
    pub key: String,
}

/// The answer to `POST /v1/admin/resources`: registered and committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub height: u64,
    /// The new resource's id (the id of its registration transaction).
    #[schema(value_type = String)]
    pub id: ResourceId,
    pub index: u32,
    #[schema(value_type = String)]
    pub tx_id: TxId,
}

/// The answer to `POST /v1/admin/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reloaded {
    /// Settings now in effect.
    pub applied: Vec<String>,
    /// Settings changed in the file that take effect at the next start.
    pub restart_needed: Vec<String>,
}
