//! The state the business rules read: who is registered, which keys are valid, who owns which
//! fingerprint, who may forward what, who owns which part. Storage implements [`StateView`];
//! [`Overlay`] stacks the effects of the transactions of the block being built on top of it and
//! yields a [`StateDelta`] that storage writes atomically with the block.

use std::collections::{HashMap, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::model::{Genesis, Resource};
use weft_core::{Fingerprint, PublicKey, ResourceId, TxId};

use crate::error::Result;

/// Where a transaction sits in canonical ledger order.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
)]
pub struct Position {
    pub height: u64,
    pub index: u32,
}

impl Position {
    /// Big-endian bytes, so byte order is ledger order.
    pub fn to_key(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.height.to_be_bytes());
        out[8..].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    pub fn from_key(bytes: &[u8]) -> Option<Self> {
        Some(Position {
            height: u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?),
            index: u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?),
        })
    }
}

/// A registered resource.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ResourceEntry {
    pub resource: Resource,
    pub registered_at: Position,
    pub time: u64,
}

impl ResourceEntry {
    /// The organisation a person belongs to, or `None` for an organisation.
    pub fn organization(&self) -> Option<ResourceId> {
        match &self.resource {
            Resource::PersonInOrganization(person) => Some(person.belongs_to),
            Resource::Organization(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum KeyStatus {
    Active,
    Revoked { at: Position },
}

/// The ownership record of a fingerprint (rule 3 allows one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OwnerEntry {
    pub issuer: ResourceId,
    pub time: u64,
    pub tx_id: TxId,
}

/// A resource received a fingerprint through at least one valid send. `first_forwardable` is
/// the earliest `timeOfTx` of a valid *forwardable* send to it (rule 2 needs a strictly earlier
/// one); `None` when every send to it had `forward = false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ReceiptEntry {
    pub first_forwardable: Option<u64>,
}

/// The current owner of a physical part.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PartEntry {
    pub owner: ResourceId,
    pub time: u64,
    pub tx_id: TxId,
}

/// Every transaction that names a fingerprint as its content (claims, sends, records of it), as
/// a count and a hash chain over their ids in ledger order — `head_0` is 32 zero bytes,
/// `head_n = SHA-256("weft history v1\0" || head_(n-1) || id_n)` — and who owns it (the claim
/// among them, rule 3). The state root commits to it, so a client given a fingerprint's
/// transactions can tell that none was left out and who owns it (docs/state-proofs.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HistoryEntry {
    pub count: u64,
    pub head: weft_core::Hash32,
    pub owner: Option<OwnerEntry>,
}

impl HistoryEntry {
    pub const DOMAIN: &'static [u8] = b"weft history v1\0";

    /// This history with `id` appended (the owner unchanged).
    pub fn then(self, id: &TxId) -> HistoryEntry {
        HistoryEntry {
            count: self.count + 1,
            head: weft_core::Hash32::sha256(&[Self::DOMAIN, &self.head.0, &id.0.0]),
            owner: self.owner,
        }
    }

    /// The history of exactly `ids`, in this order, owned by `owner`.
    pub fn of<'a>(
        ids: impl IntoIterator<Item = &'a TxId>,
        owner: Option<OwnerEntry>,
    ) -> HistoryEntry {
        let history = ids
            .into_iter()
            .fold(HistoryEntry::default(), |history, id| history.then(id));
        HistoryEntry { owner, ..history }
    }
}

/// A checkpoint of another chain anchored here: its size and root, and the anchor transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AnchorEntry {
    pub size: u64,
    pub root: weft_core::Hash32,
    pub tx_id: TxId,
}

/// Another company's chain registered here (`RegisterChain`), and what is anchored of it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AnchoredChain {
    /// Its checkpoints' origin (`weft/<name>/<chain id>`).
    pub origin: String,
    /// Its block 0, canonical encoding: the trust root (recomputed from it when needed).
    pub genesis: Vec<u8>,
    pub registered_at: Position,
    /// The latest checkpoint anchored, if any.
    pub latest: Option<AnchorEntry>,
    /// `AnchorEvidence` transactions recorded against it: it signed two histories.
    pub evidence: Vec<TxId>,
}

/// Every chain registered for anchoring, by origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Anchors {
    /// Sorted by origin.
    pub chains: Vec<AnchoredChain>,
}

impl Anchors {
    pub fn get(&self, origin: &str) -> Option<&AnchoredChain> {
        self.chains
            .binary_search_by(|chain| chain.origin.as_str().cmp(origin))
            .ok()
            .map(|index| &self.chains[index])
    }

    pub fn get_mut(&mut self, origin: &str) -> Option<&mut AnchoredChain> {
        self.chains
            .binary_search_by(|chain| chain.origin.as_str().cmp(origin))
            .ok()
            .map(|index| &mut self.chains[index])
    }

    /// Adds `chain` in its place (by origin); false if one of that origin is there.
    pub fn insert(&mut self, chain: AnchoredChain) -> bool {
        match self
            .chains
            .binary_search_by(|held| held.origin.as_str().cmp(&chain.origin))
        {
            Ok(_) => false,
            Err(index) => {
                self.chains.insert(index, chain);
                true
            }
        }
    }
}

/// Read access to rule state.
pub trait StateView {
    fn genesis(&self) -> Result<Option<Genesis>>;
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceEntry>>;
    fn key_status(&self, id: &ResourceId, key: &PublicKey) -> Result<Option<KeyStatus>>;
    fn owner(&self, fingerprint: &Fingerprint) -> Result<Option<OwnerEntry>>;
    fn receipt(
        &self,
        fingerprint: &Fingerprint,
        resource: &ResourceId,
    ) -> Result<Option<ReceiptEntry>>;
    fn part(&self, code: &str) -> Result<Option<PartEntry>>;
    /// The history of the transactions naming `fingerprint` as their content.
    fn history(&self, fingerprint: &Fingerprint) -> Result<Option<HistoryEntry>>;
    /// The state root of this state with `pending` on top (see [`crate::commitment`]).
    fn state_update(&self, pending: &StateDelta) -> Result<weft_core::smt::Prepared>;
    /// Is a transaction with this id already on the ledger?
    fn contains_tx(&self, id: &TxId) -> Result<bool>;
    /// The validator changes scheduled by `SetValidators` transactions, oldest first.
    fn validator_changes(&self) -> Result<Vec<ValidatorChange>>;
    /// The other chains registered for anchoring, and what is anchored of each.
    fn anchors(&self) -> Result<Anchors>;

    /// The chain's validator schedule: genesis producers, then every change.
    fn schedule(&self) -> Result<Schedule> {
        let genesis = self.genesis()?.map(|genesis| genesis.producers);
        Ok(Schedule {
            genesis: genesis.unwrap_or_default(),
            changes: self.validator_changes()?,
        })
    }
}

/// A change of the chain's validators, from a height on (a `SetValidators` transaction).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
pub struct ValidatorChange {
    pub from_height: u64,
    pub validators: Vec<PublicKey>,
    /// Where the transaction that scheduled it is.
    pub scheduled_at: Position,
}

/// Adds `change` to `changes` (increasing heights): a change already scheduled at or after
/// its height is replaced, with every one after it. Such a change is never in effect yet (a
/// change starts after the block that schedules it): this is how an authority withdraws or
/// corrects a scheduled change (scheduling the validators in effect, or others, at its height).
pub fn schedule_change(changes: &mut Vec<ValidatorChange>, change: ValidatorChange) {
    let keep = changes.partition_point(|scheduled| scheduled.from_height < change.from_height);
    changes.truncate(keep);
    changes.push(change);
}

/// Who produces which block: the genesis producers, then each change from its height on. The
/// changes' heights increase; epoch `n` is the span of change `n` (epoch 0: genesis), and every
/// node switches at the same block.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Schedule {
    pub genesis: Vec<PublicKey>,
    pub changes: Vec<ValidatorChange>,
}

impl Schedule {
    /// The epoch `height` is in.
    pub fn epoch_of(&self, height: u64) -> u64 {
        self.changes
            .iter()
            .take_while(|change| change.from_height <= height)
            .count() as u64
    }

    /// The validators of `epoch` (the last known ones beyond the schedule).
    pub fn validators(&self, epoch: u64) -> &[PublicKey] {
        match epoch.checked_sub(1) {
            None => &self.genesis,
            Some(index) => self
                .changes
                .get(index as usize)
                .or(self.changes.last())
                .map_or(&self.genesis[..], |change| &change.validators[..]),
        }
    }

    /// The producers of the block at `height`.
    pub fn producers_at(&self, height: u64) -> &[PublicKey] {
        self.validators(self.epoch_of(height))
    }

    /// The first height of `epoch` (1 for epoch 0: block 0 is the genesis block).
    pub fn start(&self, epoch: u64) -> u64 {
        match epoch.checked_sub(1) {
            None => 1,
            Some(index) => self
                .changes
                .get(index as usize)
                .map_or(u64::MAX, |change| change.from_height),
        }
    }

    /// The last height of `epoch`, once the next change is scheduled.
    pub fn end(&self, epoch: u64) -> Option<u64> {
        self.changes
            .get(epoch as usize)
            .map(|change| change.from_height - 1)
    }
}

/// Changes to rule state made by one block, written atomically with it. Its Borsh encoding (maps
/// sorted by key, `tx_ids` left out) is how a store keeps a block's changes until it merges them
/// into its tables.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StateDelta {
    pub genesis: Option<Genesis>,
    pub resources: HashMap<ResourceId, ResourceEntry>,
    pub keys: HashMap<(ResourceId, PublicKey), KeyStatus>,
    pub owners: HashMap<Fingerprint, OwnerEntry>,
    pub receipts: HashMap<(Fingerprint, ResourceId), ReceiptEntry>,
    pub parts: HashMap<String, PartEntry>,
    /// Every validator change scheduled so far, when this delta schedules one (the whole list:
    /// the later delta's wins).
    pub validators: Option<Vec<ValidatorChange>>,
    /// Last, so that a delta written before histories were kept (storage layout 5) reads as
    /// one without them.
    pub histories: HashMap<Fingerprint, HistoryEntry>,
    /// Every chain registered for anchoring, when this delta changes one (the whole list: the
    /// later delta's wins). Last, so that a delta written before anchoring reads as one without.
    pub anchors: Option<Anchors>,
    /// Ids of the transactions this delta comes from.
    #[borsh(skip)]
    pub tx_ids: HashSet<TxId>,
}

impl StateDelta {
    /// Applies `later` on top of this delta: where both set a key, `later` wins. Transaction ids
    /// are added too.
    pub fn merge(&mut self, later: &StateDelta) {
        self.merge_state(later);
        self.tx_ids.extend(later.tx_ids.iter().copied());
    }

    /// [`StateDelta::merge`] without the transaction ids, for holders that index ids elsewhere.
    pub fn merge_state(&mut self, later: &StateDelta) {
        if let Some(genesis) = &later.genesis {
            self.genesis = Some(genesis.clone());
        }
        if let Some(validators) = &later.validators {
            self.validators = Some(validators.clone());
        }
        if let Some(anchors) = &later.anchors {
            self.anchors = Some(anchors.clone());
        }
        self.resources
            .extend(later.resources.iter().map(|(k, v)| (*k, v.clone())));
        self.keys.extend(later.keys.iter().map(|(k, v)| (*k, *v)));
        self.owners
            .extend(later.owners.iter().map(|(k, v)| (*k, *v)));
        self.receipts
            .extend(later.receipts.iter().map(|(k, v)| (*k, *v)));
        self.parts
            .extend(later.parts.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.histories
            .extend(later.histories.iter().map(|(k, v)| (*k, *v)));
    }
}

/// A [`StateView`] with pending changes on top.
#[derive(Debug)]
pub struct Overlay<'a, S: StateView + ?Sized> {
    base: &'a S,
    pub delta: StateDelta,
}

impl<'a, S: StateView + ?Sized> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            delta: StateDelta::default(),
        }
    }

    pub fn into_delta(self) -> StateDelta {
        self.delta
    }
}

impl<S: StateView + ?Sized> StateView for Overlay<'_, S> {
    fn genesis(&self) -> Result<Option<Genesis>> {
        match &self.delta.genesis {
            Some(genesis) => Ok(Some(genesis.clone())),
            None => self.base.genesis(),
        }
    }
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceEntry>> {
        match self.delta.resources.get(id) {
            Some(entry) => Ok(Some(entry.clone())),
            None => self.base.resource(id),
        }
    }
    fn key_status(&self, id: &ResourceId, key: &PublicKey) -> Result<Option<KeyStatus>> {
        match self.delta.keys.get(&(*id, *key)) {
            Some(status) => Ok(Some(*status)),
            None => self.base.key_status(id, key),
        }
    }
    fn owner(&self, fingerprint: &Fingerprint) -> Result<Option<OwnerEntry>> {
        match self.delta.owners.get(fingerprint) {
            Some(entry) => Ok(Some(*entry)),
            None => self.base.owner(fingerprint),
        }
    }
    fn receipt(
        &self,
        fingerprint: &Fingerprint,
        resource: &ResourceId,
    ) -> Result<Option<ReceiptEntry>> {
        match self.delta.receipts.get(&(*fingerprint, *resource)) {
            Some(entry) => Ok(Some(*entry)),
            None => self.base.receipt(fingerprint, resource),
        }
    }
    fn part(&self, code: &str) -> Result<Option<PartEntry>> {
        match self.delta.parts.get(code) {
            Some(entry) => Ok(Some(entry.clone())),
            None => self.base.part(code),
        }
    }
    fn history(&self, fingerprint: &Fingerprint) -> Result<Option<HistoryEntry>> {
        match self.delta.histories.get(fingerprint) {
            Some(entry) => Ok(Some(*entry)),
            None => self.base.history(fingerprint),
        }
    }
    fn state_update(&self, pending: &StateDelta) -> Result<weft_core::smt::Prepared> {
        let mut merged = self.delta.clone();
        merged.merge_state(pending);
        self.base.state_update(&merged)
    }
    fn contains_tx(&self, id: &TxId) -> Result<bool> {
        Ok(self.delta.tx_ids.contains(id) || self.base.contains_tx(id)?)
    }
    fn validator_changes(&self) -> Result<Vec<ValidatorChange>> {
        match &self.delta.validators {
            Some(changes) => Ok(changes.clone()),
            None => self.base.validator_changes(),
        }
    }
    fn anchors(&self) -> Result<Anchors> {
        match &self.delta.anchors {
            Some(anchors) => Ok(anchors.clone()),
            None => self.base.anchors(),
        }
    }
}

impl<T: StateView + ?Sized> StateView for &T {
    fn genesis(&self) -> Result<Option<Genesis>> {
        (**self).genesis()
    }
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceEntry>> {
        (**self).resource(id)
    }
    fn key_status(&self, id: &ResourceId, key: &PublicKey) -> Result<Option<KeyStatus>> {
        (**self).key_status(id, key)
    }
    fn owner(&self, fingerprint: &Fingerprint) -> Result<Option<OwnerEntry>> {
        (**self).owner(fingerprint)
    }
    fn receipt(
        &self,
        fingerprint: &Fingerprint,
        resource: &ResourceId,
    ) -> Result<Option<ReceiptEntry>> {
        (**self).receipt(fingerprint, resource)
    }
    fn part(&self, code: &str) -> Result<Option<PartEntry>> {
        (**self).part(code)
    }
    fn history(&self, fingerprint: &Fingerprint) -> Result<Option<HistoryEntry>> {
        (**self).history(fingerprint)
    }
    fn state_update(&self, pending: &StateDelta) -> Result<weft_core::smt::Prepared> {
        (**self).state_update(pending)
    }
    fn contains_tx(&self, id: &TxId) -> Result<bool> {
        (**self).contains_tx(id)
    }
    fn validator_changes(&self) -> Result<Vec<ValidatorChange>> {
        (**self).validator_changes()
    }
    fn anchors(&self) -> Result<Anchors> {
        (**self).anchors()
    }
}
