//! The NIST AMS 300-6 information model, with the paper's names (JSON uses the paper's
//! camelCase field names), and weft's additions.
//!
//! - Data package: [`DataType`], [`File`], [`DigitalAsset`].
//! - Provenance package: [`Resource`] = [`Organization`] (mandatory [`Address`]) or
//!   [`PersonInOrganization`] (mandatory `belongsTo`).
//! - Transaction package: [`RecordOwnership`] (`issuer`) and [`SendProductData`] (`from`, `to`,
//!   `forward`). `txId` and `timeOfTx` live in the signed transaction header (`weft-ledger`).
//! - Beyond the paper: [`Genesis`], [`RegisterResource`], [`RotateKey`], [`RevokeKey`],
//!   [`Record`] (machine / process / quality data), and physical parts ([`RegisterPart`],
//!   [`TransferPart`], the paper's "Type C" products).
//!
//! Every type checks its own field limits in `validate`, so a decoded value is always within
//! bounds.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::encoding::{
    Canonical, check_count, check_optional_text, check_required_text, check_text,
};
use crate::{CoreError, Fingerprint, PublicKey, ResourceId};

/// Longest short text field (names, ids, address parts), in bytes.
pub const MAX_SHORT_TEXT: usize = 256;
/// Longest long text field (descriptions, URLs), in bytes.
pub const MAX_LONG_TEXT: usize = 4096;
/// Most entries in a list field (`versionIds`, `descriptions`).
pub const MAX_LIST: usize = 64;
/// Largest body of a generic [`Record`].
pub const MAX_RECORD_BODY: usize = 1 << 20;
/// Most authorities / producers in a genesis.
pub const MAX_AUTHORITIES: usize = 64;

/// `DataType`: what kind of product data an asset is. Extensible with [`DataType::Other`].
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub enum DataType {
    #[serde(rename = "GEOMETRY_3D")]
    Geometry3d,
    #[serde(rename = "GEOMETRY_SLICED")]
    GeometrySliced,
    #[serde(rename = "CONFIGURATION")]
    Configuration,
    #[serde(rename = "CONTROL_DATA")]
    ControlData,
    #[serde(rename = "INSPECTION_RESULTS")]
    InspectionResults,
    #[serde(rename = "PROCESS_DATA")]
    ProcessData,
    /// Any other type, by name (upper case letters, digits, `_`).
    #[serde(rename = "OTHER")]
    Other(String),
}

impl DataType {
    pub fn name(&self) -> &str {
        match self {
            DataType::Geometry3d => "GEOMETRY_3D",
            DataType::GeometrySliced => "GEOMETRY_SLICED",
            DataType::Configuration => "CONFIGURATION",
            DataType::ControlData => "CONTROL_DATA",
            DataType::InspectionResults => "INSPECTION_RESULTS",
            DataType::ProcessData => "PROCESS_DATA",
            DataType::Other(name) => name,
        }
    }

    fn validate(&self) -> Result<(), CoreError> {
        if let DataType::Other(name) = self {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(CoreError::InvalidField {
                    field: "dataType",
                    reason: "a custom data type is 1-64 characters of A-Z, 0-9 and '_'".into(),
                });
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for DataType {
    type Err = CoreError;
    fn from_str(input: &str) -> Result<Self, CoreError> {
        let upper = input.to_ascii_uppercase().replace('-', "_");
        let data_type = match upper.as_str() {
            "GEOMETRY_3D" => DataType::Geometry3d,
            "GEOMETRY_SLICED" => DataType::GeometrySliced,
            "CONFIGURATION" => DataType::Configuration,
            "CONTROL_DATA" => DataType::ControlData,
            "INSPECTION_RESULTS" => DataType::InspectionResults,
            "PROCESS_DATA" => DataType::ProcessData,
            _ => DataType::Other(upper),
        };
        data_type.validate()?;
        Ok(data_type)
    }
}

/// `File`: the product data file, by `id`, one or more `versionIds` and `descriptions`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    pub id: String,
    pub version_ids: Vec<String>,
    pub descriptions: Vec<String>,
}

impl File {
    fn validate(&self) -> Result<(), CoreError> {
        check_required_text("file id", &self.id, MAX_SHORT_TEXT)?;
        check_count("versionIds", self.version_ids.len(), 1, MAX_LIST)?;
        for version in &self.version_ids {
            check_required_text("versionIds entry", version, MAX_SHORT_TEXT)?;
        }
        check_count("descriptions", self.descriptions.len(), 0, MAX_LIST)?;
        for description in &self.descriptions {
            check_text("descriptions entry", description, MAX_LONG_TEXT)?;
        }
        Ok(())
    }
}

/// `DigitalAsset`: the data being manipulated, identified by its fingerprint. The fingerprint
/// carries `hashAlgo`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigitalAsset {
    pub fingerprint: Fingerprint,
    pub public: bool,
    /// A DOI for the content; only meaningful when `public`.
    pub doi: Option<String>,
    /// A DOI for more metadata; only meaningful when `public`.
    pub doi_no_redirect: Option<String>,
    pub file: File,
    pub data_type: DataType,
}

impl DigitalAsset {
    pub fn hash_algo(&self) -> crate::HashAlgo {
        self.fingerprint.algo
    }

    fn validate(&self) -> Result<(), CoreError> {
        check_optional_text("doi", &self.doi, MAX_SHORT_TEXT)?;
        check_optional_text("doiNoRedirect", &self.doi_no_redirect, MAX_SHORT_TEXT)?;
        if !self.public && (self.doi.is_some() || self.doi_no_redirect.is_some()) {
            return Err(CoreError::InvalidField {
                field: "doi",
                reason: "a DOI can only be given for public data (set public)".into(),
            });
        }
        self.file.validate()?;
        self.data_type.validate()
    }
}

/// `Address`: a physical location. Town and country are mandatory.
#[derive(
    Clone, Debug, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: Option<String>,
    pub street_number: Option<String>,
    pub town: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub postal_box: Option<String>,
    pub country: String,
}

impl Address {
    fn validate(&self) -> Result<(), CoreError> {
        check_optional_text("street", &self.street, MAX_SHORT_TEXT)?;
        check_optional_text("streetNumber", &self.street_number, MAX_SHORT_TEXT)?;
        check_required_text("town", &self.town, MAX_SHORT_TEXT)?;
        check_optional_text("region", &self.region, MAX_SHORT_TEXT)?;
        check_optional_text("postalCode", &self.postal_code, MAX_SHORT_TEXT)?;
        check_optional_text("postalBox", &self.postal_box, MAX_SHORT_TEXT)?;
        check_required_text("country", &self.country, MAX_SHORT_TEXT)
    }
}

/// `Organization`: optional name and website, mandatory address.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub name: Option<String>,
    pub website: Option<String>,
    pub address: Address,
}

/// `PersonInOrganization`: optional names and email, mandatory `belongsTo`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonInOrganization {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub belongs_to: ResourceId,
}

/// `Resource`: who issues transactions. Its `orgOrPersId` is the id of the transaction that
/// registered it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Resource {
    Organization(Organization),
    PersonInOrganization(PersonInOrganization),
}

impl Resource {
    fn validate(&self) -> Result<(), CoreError> {
        match self {
            Resource::Organization(organization) => {
                check_optional_text("name", &organization.name, MAX_SHORT_TEXT)?;
                check_optional_text("website", &organization.website, MAX_LONG_TEXT)?;
                organization.address.validate()
            }
            Resource::PersonInOrganization(person) => {
                check_optional_text("firstName", &person.first_name, MAX_SHORT_TEXT)?;
                check_optional_text("lastName", &person.last_name, MAX_SHORT_TEXT)?;
                check_optional_text("email", &person.email, MAX_SHORT_TEXT)
            }
        }
    }

    /// A short human label: the organisation's name or the person's full name.
    pub fn label(&self) -> String {
        match self {
            Resource::Organization(organization) => organization
                .name
                .clone()
                .unwrap_or_else(|| "(unnamed organization)".into()),
            Resource::PersonInOrganization(person) => {
                let names: Vec<&str> = [&person.first_name, &person.last_name]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if names.is_empty() {
                    "(unnamed person)".into()
                } else {
                    names.join(" ")
                }
            }
        }
    }
}

/// The first transaction of every chain: who may register organisations and who produces blocks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Genesis {
    pub chain_name: String,
    /// Keys that may register organisations (network administration).
    pub authorities: Vec<PublicKey>,
    /// Keys that may seal blocks (proof of authority).
    pub producers: Vec<PublicKey>,
    /// How far `timeOfTx` may be from the node's clock (and from its block's timestamp), in ms.
    pub time_window_ms: u64,
}

/// Registers an organisation (signed by a network authority) or a person (signed by its
/// organisation) with its first key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResource {
    pub resource: Resource,
    pub key: PublicKey,
}

/// Replaces the signing key of a resource: the new key is active, the signing key is revoked.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateKey {
    pub resource: ResourceId,
    pub new_key: PublicKey,
}

/// Revokes a key of a resource (for example a lost or compromised one).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeKey {
    pub resource: ResourceId,
    pub key: PublicKey,
}

/// `RecordOwnership`: `issuer` claims ownership of `productData`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordOwnership {
    pub issuer: ResourceId,
    pub product_data: DigitalAsset,
}

/// `SendProductData`: `from` sends `productData` to `to`, with the right to forward it or not.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendProductData {
    pub from: ResourceId,
    pub to: ResourceId,
    pub forward: bool,
    pub product_data: DigitalAsset,
}

/// A generic signed data record: machine, process or quality data.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub issuer: ResourceId,
    /// A media type such as `application/json` or `text/csv`.
    pub content_type: String,
    /// The code applied to the physical part this record is about, if any.
    pub product_code: Option<String>,
    #[serde(with = "hex_bytes")]
    pub body: Vec<u8>,
}

/// Registers a physical part by the code applied to it (serial number, DataMatrix content).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterPart {
    pub owner: ResourceId,
    pub code: String,
    pub description: Option<String>,
}

/// Transfers a physical part to a new owner. Only the current owner can do this, once.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferPart {
    pub code: String,
    pub from: ResourceId,
    pub to: ResourceId,
}

/// Admits a node's key to the chain's peer-to-peer network, or removes it. A network's nodes
/// accept connections only from its validators (named at genesis) and the keys admitted this
/// way, so a new node joins once an authority has admitted its key. Signed by a network
/// authority. Setting the same state twice changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPeer {
    /// The node's key (the one in its home's `keys/producer.key`).
    pub key: PublicKey,
    /// `true` admits the key, `false` removes it.
    pub admitted: bool,
    /// What the operators call the node.
    pub name: String,
}

/// Replaces the chain's validators — the producers that propose, vote on and seal blocks — from
/// `from_height` on. Signed by a network authority. The change takes effect at a later height
/// than the block that holds it, and after every change already scheduled, so every node switches
/// at the same block (docs/network.md, "Changing the validators").
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetValidators {
    /// The validators from `from_height` on, in the order the consensus engine uses (1 to 64,
    /// no key twice).
    pub validators: Vec<PublicKey>,
    /// The first height they produce.
    pub from_height: u64,
}

/// Registers another company's chain, by its trust root, so that its checkpoints can be
/// anchored here (docs/anchoring.md). Signed by a network authority. `genesis` is that chain's
/// block 0 (canonical encoding): the chain's name, id and validators are recomputed from it, as
/// from a trust root document. Registering the same chain again changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterChain {
    #[serde(with = "hex_bytes")]
    pub genesis: Vec<u8>,
}

/// Records another company's checkpoint on this chain (docs/anchoring.md): `note` is the signed
/// checkpoint (C2SP signed note: a quorum of that chain's validators, and any witnesses'
/// cosignatures), `proof` the RFC 6962 consistency proof from `old_size`, the size anchored
/// last for that chain (0 for the first). The rules check both against the chain's registered
/// trust root and refuse anything else.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    pub note: String,
    pub old_size: u64,
    #[serde(with = "hex_hashes")]
    pub proof: Vec<crate::Hash32>,
}

/// Evidence that a registered chain signed two histories: two checkpoints of the same size
/// with different roots, each signed by a quorum of its validators (docs/anchoring.md). The
/// rules accept it only if that holds; anyone can check it again offline.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorEvidence {
    pub first: String,
    pub second: String,
}

/// A checkpoint of this chain time-stamped by an RFC 3161 time-stamping authority
/// (docs/anchoring.md, "Public timestamps"): `note` the signed checkpoint, `nonce` the one the
/// request carried, `token` the TSA's token (DER CMS SignedData over a TSTInfo whose message
/// imprint is the SHA-256 of the checkpoint's text).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timestamp {
    pub note: String,
    pub nonce: u64,
    #[serde(with = "hex_bytes")]
    pub token: Vec<u8>,
}

/// Most bytes of a [`Timestamp`]'s token.
pub const MAX_TIMESTAMP_TOKEN: usize = 32 * 1024;

/// Most bytes of a note in an [`Anchor`] or [`AnchorEvidence`].
pub const MAX_ANCHOR_NOTE: usize = 64 * 1024;
/// Most hashes of an [`Anchor`]'s consistency proof.
pub const MAX_ANCHOR_PROOF: usize = 63;
/// Most bytes of a registered chain's block 0.
pub const MAX_CHAIN_GENESIS: usize = 64 * 1024;

/// Every kind of transaction payload. The variant order is part of the canonical encoding:
/// append, never reorder.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Payload {
    Genesis(Genesis),
    RegisterResource(RegisterResource),
    RotateKey(RotateKey),
    RevokeKey(RevokeKey),
    RecordOwnership(RecordOwnership),
    SendProductData(SendProductData),
    Record(Record),
    RegisterPart(RegisterPart),
    TransferPart(TransferPart),
    NetworkPeer(NetworkPeer),
    SetValidators(SetValidators),
    RegisterChain(RegisterChain),
    Anchor(Anchor),
    AnchorEvidence(AnchorEvidence),
    Timestamp(Timestamp),
}

impl Payload {
    /// The stable name of the payload kind (used in JSON and errors).
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Genesis(_) => PayloadKind::Genesis,
            Payload::RegisterResource(_) => PayloadKind::RegisterResource,
            Payload::RotateKey(_) => PayloadKind::RotateKey,
            Payload::RevokeKey(_) => PayloadKind::RevokeKey,
            Payload::RecordOwnership(_) => PayloadKind::RecordOwnership,
            Payload::SendProductData(_) => PayloadKind::SendProductData,
            Payload::Record(_) => PayloadKind::Record,
            Payload::RegisterPart(_) => PayloadKind::RegisterPart,
            Payload::TransferPart(_) => PayloadKind::TransferPart,
            Payload::NetworkPeer(_) => PayloadKind::NetworkPeer,
            Payload::SetValidators(_) => PayloadKind::SetValidators,
            Payload::RegisterChain(_) => PayloadKind::RegisterChain,
            Payload::Anchor(_) => PayloadKind::Anchor,
            Payload::AnchorEvidence(_) => PayloadKind::AnchorEvidence,
            Payload::Timestamp(_) => PayloadKind::Timestamp,
        }
    }

    /// The fingerprint this payload is about, if any.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        match self {
            Payload::RecordOwnership(claim) => Some(&claim.product_data.fingerprint),
            Payload::SendProductData(send) => Some(&send.product_data.fingerprint),
            _ => None,
        }
    }

    /// The fingerprint the ledger finds this payload by: a claim's or a send's, or a record's
    /// body (SHA-256), so a file recorded as a record is found by its content.
    pub fn content_fingerprint(&self) -> Option<Fingerprint> {
        match self {
            Payload::Record(record) => Some(Fingerprint::of_bytes(
                crate::fingerprint::HashAlgo::Sha256,
                &record.body,
            )),
            other => other.fingerprint().copied(),
        }
    }

    /// Every resource this payload names (for the by-resource index).
    pub fn resources(&self) -> Vec<ResourceId> {
        match self {
            Payload::Genesis(_) => vec![],
            Payload::RegisterResource(register) => match &register.resource {
                Resource::Organization(_) => vec![],
                Resource::PersonInOrganization(person) => vec![person.belongs_to],
            },
            Payload::RotateKey(rotate) => vec![rotate.resource],
            Payload::RevokeKey(revoke) => vec![revoke.resource],
            Payload::RecordOwnership(claim) => vec![claim.issuer],
            Payload::SendProductData(send) => vec![send.from, send.to],
            Payload::Record(record) => vec![record.issuer],
            Payload::RegisterPart(part) => vec![part.owner],
            Payload::TransferPart(transfer) => vec![transfer.from, transfer.to],
            Payload::NetworkPeer(_)
            | Payload::SetValidators(_)
            | Payload::RegisterChain(_)
            | Payload::Anchor(_)
            | Payload::AnchorEvidence(_)
            | Payload::Timestamp(_) => vec![],
        }
    }
}

/// The kind of a payload, as a plain tag (also recorded in the transaction header so a stripped
/// transaction still says what it was).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum PayloadKind {
    Genesis = 0,
    RegisterResource = 1,
    RotateKey = 2,
    RevokeKey = 3,
    RecordOwnership = 4,
    SendProductData = 5,
    Record = 6,
    RegisterPart = 7,
    TransferPart = 8,
    NetworkPeer = 9,
    SetValidators = 10,
    RegisterChain = 11,
    Anchor = 12,
    AnchorEvidence = 13,
    Timestamp = 14,
}

impl PayloadKind {
    /// Every kind, in tag order.
    pub const ALL: [PayloadKind; 15] = [
        PayloadKind::Genesis,
        PayloadKind::RegisterResource,
        PayloadKind::RotateKey,
        PayloadKind::RevokeKey,
        PayloadKind::RecordOwnership,
        PayloadKind::SendProductData,
        PayloadKind::Record,
        PayloadKind::RegisterPart,
        PayloadKind::TransferPart,
        PayloadKind::NetworkPeer,
        PayloadKind::SetValidators,
        PayloadKind::RegisterChain,
        PayloadKind::Anchor,
        PayloadKind::AnchorEvidence,
        PayloadKind::Timestamp,
    ];

    /// The kind called `name` (as [`PayloadKind::name`] spells it, any case).
    pub fn from_name(name: &str) -> Option<PayloadKind> {
        PayloadKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::Genesis => "Genesis",
            PayloadKind::RegisterResource => "RegisterResource",
            PayloadKind::RotateKey => "RotateKey",
            PayloadKind::RevokeKey => "RevokeKey",
            PayloadKind::RecordOwnership => "RecordOwnership",
            PayloadKind::SendProductData => "SendProductData",
            PayloadKind::Record => "Record",
            PayloadKind::RegisterPart => "RegisterPart",
            PayloadKind::TransferPart => "TransferPart",
            PayloadKind::NetworkPeer => "NetworkPeer",
            PayloadKind::SetValidators => "SetValidators",
            PayloadKind::RegisterChain => "RegisterChain",
            PayloadKind::Anchor => "Anchor",
            PayloadKind::AnchorEvidence => "AnchorEvidence",
            PayloadKind::Timestamp => "Timestamp",
        }
    }
}

impl Canonical for Payload {
    const WHAT: &'static str = "transaction payload";
    const MAX_ENCODED: usize = MAX_RECORD_BODY + 64 * 1024;

    fn validate(&self) -> Result<(), CoreError> {
        match self {
            Payload::Genesis(genesis) => {
                crate::ChainId::from_name(&genesis.chain_name)?;
                check_count("authorities", genesis.authorities.len(), 1, MAX_AUTHORITIES)?;
                check_count("producers", genesis.producers.len(), 1, MAX_AUTHORITIES)
            }
            Payload::RegisterResource(register) => register.resource.validate(),
            Payload::RotateKey(_) | Payload::RevokeKey(_) => Ok(()),
            Payload::RecordOwnership(claim) => claim.product_data.validate(),
            Payload::SendProductData(send) => {
                if send.from == send.to {
                    return Err(CoreError::InvalidField {
                        field: "to",
                        reason: "a resource cannot send product data to itself".into(),
                    });
                }
                send.product_data.validate()
            }
            Payload::Record(record) => {
                check_required_text("contentType", &record.content_type, MAX_SHORT_TEXT)?;
                check_optional_text("productCode", &record.product_code, MAX_SHORT_TEXT)?;
                if record.body.len() > MAX_RECORD_BODY {
                    return Err(CoreError::InvalidField {
                        field: "record body",
                        reason: format!(
                            "{} bytes, at most {MAX_RECORD_BODY} allowed",
                            record.body.len()
                        ),
                    });
                }
                Ok(())
            }
            Payload::RegisterPart(part) => {
                check_required_text("part code", &part.code, MAX_SHORT_TEXT)?;
                check_optional_text("part description", &part.description, MAX_LONG_TEXT)
            }
            Payload::TransferPart(transfer) => {
                check_required_text("part code", &transfer.code, MAX_SHORT_TEXT)?;
                if transfer.from == transfer.to {
                    return Err(CoreError::InvalidField {
                        field: "to",
                        reason: "a part cannot be transferred to its current owner".into(),
                    });
                }
                Ok(())
            }
            Payload::NetworkPeer(peer) => {
                check_required_text("peer name", &peer.name, MAX_SHORT_TEXT)
            }
            Payload::SetValidators(set) => {
                check_count("validators", set.validators.len(), 1, MAX_AUTHORITIES)?;
                let distinct: std::collections::HashSet<&PublicKey> =
                    set.validators.iter().collect();
                if distinct.len() != set.validators.len() {
                    return Err(CoreError::InvalidField {
                        field: "validators",
                        reason: "a key is named twice".into(),
                    });
                }
                if set.from_height == 0 {
                    return Err(CoreError::InvalidField {
                        field: "fromHeight",
                        reason: "block 0 is the genesis block; a change starts at height 1 or \
                                 later"
                            .into(),
                    });
                }
                Ok(())
            }
            Payload::RegisterChain(register) => {
                if register.genesis.is_empty() || register.genesis.len() > MAX_CHAIN_GENESIS {
                    return Err(CoreError::InvalidField {
                        field: "genesis",
                        reason: format!(
                            "{} bytes; a chain's block 0 is 1 to {MAX_CHAIN_GENESIS}",
                            register.genesis.len()
                        ),
                    });
                }
                Ok(())
            }
            Payload::Anchor(anchor) => {
                check_note("note", &anchor.note)?;
                check_count("proof", anchor.proof.len(), 0, MAX_ANCHOR_PROOF)
            }
            Payload::AnchorEvidence(evidence) => {
                check_note("first", &evidence.first)?;
                check_note("second", &evidence.second)?;
                if evidence.first == evidence.second {
                    return Err(CoreError::InvalidField {
                        field: "second",
                        reason: "the same note twice is no evidence".into(),
                    });
                }
                Ok(())
            }
            Payload::Timestamp(timestamp) => {
                check_note("note", &timestamp.note)?;
                check_count("token", timestamp.token.len(), 1, MAX_TIMESTAMP_TOKEN)
            }
        }
    }
}

/// A note in an anchor payload: not empty, at most [`MAX_ANCHOR_NOTE`] bytes.
fn check_note(field: &'static str, note: &str) -> Result<(), CoreError> {
    if note.is_empty() || note.len() > MAX_ANCHOR_NOTE {
        return Err(CoreError::InvalidField {
            field,
            reason: format!(
                "{} bytes; a signed note is 1 to {MAX_ANCHOR_NOTE}",
                note.len()
            ),
        });
    }
    Ok(())
}

/// Hashes as a JSON list of hex strings.
mod hex_hashes {
    use crate::Hash32;

    pub fn serialize<S: serde::Serializer>(
        hashes: &[Hash32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(hashes.iter().map(Hash32::to_hex))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Hash32>, D::Error> {
        let texts = <Vec<String> as serde::Deserialize>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| Hash32::from_hex("proof hash", text).map_err(serde::de::Error::custom))
            .collect()
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        hex::decode(text.as_ref()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{decode, encode};
    use crate::{Hash32, HashAlgo};

    fn asset() -> DigitalAsset {
        DigitalAsset {
            fingerprint: Fingerprint::of_bytes(HashAlgo::Sha256, b"design"),
            public: false,
            doi: None,
            doi_no_redirect: None,
            file: File {
                id: "bracket".into(),
                version_ids: vec!["A".into()],
                descriptions: vec![],
            },
            data_type: DataType::Geometry3d,
        }
    }

    #[test]
    fn round_trip_and_limits() {
        let payload = Payload::RecordOwnership(RecordOwnership {
            issuer: ResourceId(Hash32([1; 32])),
            product_data: asset(),
        });
        let bytes = encode(&payload);
        assert_eq!(decode::<Payload>(&bytes).expect("round trip"), payload);

        let mut no_versions = asset();
        no_versions.file.version_ids.clear();
        let bad = Payload::RecordOwnership(RecordOwnership {
            issuer: ResourceId(Hash32([1; 32])),
            product_data: no_versions,
        });
        let error = decode::<Payload>(&encode(&bad)).expect_err("versionIds is mandatory");
        assert!(error.to_string().contains("versionIds"), "{error}");

        let mut doi_private = asset();
        doi_private.doi = Some("10.1/x".into());
        assert!(doi_private.validate().is_err());
    }

    #[test]
    fn trailing_and_truncated_bytes_are_refused() {
        let payload = Payload::RegisterPart(RegisterPart {
            owner: ResourceId(Hash32([2; 32])),
            code: "SN-1".into(),
            description: None,
        });
        let mut bytes = encode(&payload);
        bytes.push(0);
        assert!(decode::<Payload>(&bytes).is_err());
        bytes.truncate(bytes.len() - 3);
        assert!(decode::<Payload>(&bytes).is_err());
    }

    #[test]
    fn data_type_parsing() {
        assert_eq!(
            "geometry_3d".parse::<DataType>().expect("known"),
            DataType::Geometry3d
        );
        assert_eq!(
            "CONTROL_DATA".parse::<DataType>().expect("known"),
            DataType::ControlData
        );
        assert_eq!(
            "melt-pool".parse::<DataType>().expect("custom"),
            DataType::Other("MELT_POOL".into())
        );
        assert!("bad type!".parse::<DataType>().is_err());
    }
}
