//! The state root: every block header (version 2 on) commits to the rule state after the block,
//! as the root of a sparse Merkle tree ([`weft_core::smt`]) with one leaf per state entry
//! (docs/state-proofs.md; the choice and its measured costs in docs/adr/0024-state-roots.md).
//!
//! | leaf | key | value |
//! |---|---|---|
//! | a registered resource | `1 ‖ resource id` | [`ResourceEntry`] |
//! | a resource's key and its status | `2 ‖ resource id ‖ public key` | [`KeyStatus`] |
//! | who owns a fingerprint (rule 3), and every transaction naming it as its content | `4 ‖ fingerprint` | [`HistoryEntry`] |
//! | a physical part's owner | `5 ‖ part code` | [`PartEntry`] |
//! | the validator changes | `6` | the list of [`ValidatorChange`]s |
//!
//! The tree key is `SHA-256("weft state key v1\0" ‖ key)`, the leaf value
//! `SHA-256("weft state value v1\0" ‖ tag ‖ Borsh(value))`. A fingerprint is encoded as its
//! algorithm tag and digest (33 bytes). Who received a fingerprint from whom, with or without the
//! right to forward, and the records of a content fingerprint are the sends and records in the
//! fingerprint's history: the history leaf proves that list complete, so a client recomputes the
//! NIST verdict from it (the receipt rows a node keeps are derived from those sends).

use borsh::BorshSerialize;
use weft_core::smt::{self, Proof};
use weft_core::{CoreError, Fingerprint, Hash32, PublicKey, ResourceId};

use crate::state::{
    HistoryEntry, KeyStatus, PartEntry, ResourceEntry, StateDelta, ValidatorChange,
};

const KEY_DOMAIN: &[u8] = b"weft state key v1\0";
const VALUE_DOMAIN: &[u8] = b"weft state value v1\0";

/// Which state entry a leaf holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateKey {
    Resource(ResourceId),
    Key(ResourceId, PublicKey),
    History(Fingerprint),
    Part(String),
    Validators,
    Anchors,
}

impl StateKey {
    pub fn tag(&self) -> u8 {
        match self {
            StateKey::Resource(_) => tag::RESOURCE,
            StateKey::Key(..) => tag::KEY,
            StateKey::History(_) => tag::HISTORY,
            StateKey::Part(_) => tag::PART,
            StateKey::Validators => tag::VALIDATORS,
            StateKey::Anchors => tag::ANCHORS,
        }
    }

    /// The key bytes this entry is stored under (as a store's tables key it).
    pub fn raw(&self) -> Vec<u8> {
        match self {
            StateKey::Resource(id) => id.as_bytes().to_vec(),
            StateKey::Key(id, key) => [&id.as_bytes()[..], &key.0].concat(),
            StateKey::History(fingerprint) => fingerprint.key_bytes().to_vec(),
            StateKey::Part(code) => code.as_bytes().to_vec(),
            StateKey::Validators | StateKey::Anchors => Vec::new(),
        }
    }

    /// The tree key of this entry.
    pub fn hash(&self) -> Hash32 {
        key_hash(self.tag(), &self.raw())
    }

    /// The leaf value of `value` stored under this key.
    pub fn value_hash(&self, value: &impl BorshSerialize) -> Hash32 {
        let bytes = borsh::to_vec(value).expect("encoding into memory cannot fail");
        value_hash(self.tag(), &bytes)
    }

    /// The tree key and leaf value of `value` under this key.
    pub fn leaf<V: BorshSerialize>(&self, value: &V) -> (Hash32, Hash32) {
        (self.hash(), self.value_hash(value))
    }
}

/// Tags of the leaf kinds, as [`StateKey`] numbers them.
pub mod tag {
    pub const RESOURCE: u8 = 1;
    pub const KEY: u8 = 2;
    // 3 is not used: an owner is part of its fingerprint's history leaf.
    pub const HISTORY: u8 = 4;
    pub const PART: u8 = 5;
    pub const VALIDATORS: u8 = 6;
    pub const ANCHORS: u8 = 7;
}

/// The tree key of the entry of kind `tag` stored under `raw` ([`StateKey::raw`]).
pub fn key_hash(tag: u8, raw: &[u8]) -> Hash32 {
    Hash32::sha256(&[KEY_DOMAIN, &[tag], raw])
}

/// The leaf value of an entry of kind `tag` whose Borsh encoding is `bytes`.
pub fn value_hash(tag: u8, bytes: &[u8]) -> Hash32 {
    Hash32::sha256(&[VALUE_DOMAIN, &[tag], bytes])
}

/// The leaves `delta` sets, sorted by tree key.
pub fn leaf_updates(delta: &StateDelta) -> Vec<(Hash32, Hash32)> {
    let mut leaves = Vec::with_capacity(
        delta.resources.len() + delta.keys.len() + delta.histories.len() + delta.parts.len() + 1,
    );
    leaves.extend(
        delta
            .resources
            .iter()
            .map(|(id, entry)| StateKey::Resource(*id).leaf::<ResourceEntry>(entry)),
    );
    leaves.extend(
        delta
            .keys
            .iter()
            .map(|((id, key), status)| StateKey::Key(*id, *key).leaf::<KeyStatus>(status)),
    );
    leaves.extend(
        delta.histories.iter().map(|(fingerprint, entry)| {
            StateKey::History(*fingerprint).leaf::<HistoryEntry>(entry)
        }),
    );
    leaves.extend(
        delta
            .parts
            .iter()
            .map(|(code, entry)| StateKey::Part(code.clone()).leaf::<PartEntry>(entry)),
    );
    if let Some(changes) = &delta.validators {
        leaves.push(StateKey::Validators.leaf::<Vec<ValidatorChange>>(changes));
    }
    if let Some(anchors) = &delta.anchors {
        leaves.push(StateKey::Anchors.leaf::<crate::state::Anchors>(anchors));
    }
    // Keys are distinct hashes of distinct entries: no repeats to drop.
    leaves.sort_unstable_by_key(|leaf| leaf.0);
    leaves
}

/// The state root a block gives, computed on the state tree as it was, with the leaves it sets
/// and every hash computed on the way ([`smt::Prepared`]).
pub type StateUpdate = smt::Prepared;

/// The state update of `pending` on top of `tree`.
pub fn prepare(tree: &smt::Tree, pending: &StateDelta) -> StateUpdate {
    tree.prepare(leaf_updates(pending))
}

/// Applies `update` to `tree`: replaying its hashes if `tree` is still the one it was computed
/// on, else setting `delta`'s leaves (the block's own changes, when the update was computed on an
/// older tree under blocks that are final now).
pub fn apply(tree: &mut smt::Tree, update: &StateUpdate, delta: &StateDelta) {
    if !tree.apply_prepared(update) {
        tree.update_sorted(&leaf_updates(delta));
    }
}

/// Checks that `key` has the leaf value of `value` under `root` (or, for `None`, that it is
/// absent); an error names what does not hold.
pub fn verify_entry<V: BorshSerialize>(
    root: &Hash32,
    key: &StateKey,
    value: Option<&V>,
    proof: &Proof,
) -> Result<(), CoreError> {
    let proven = smt::verify(root, &key.hash(), proof)?;
    let expected = value.map(|value| key.value_hash(value));
    if proven != expected {
        return Err(CoreError::InvalidField {
            field: "state proof",
            reason: match (expected, proven) {
                (Some(_), None) => format!("{key:?} is absent from the state"),
                (None, Some(_)) => format!("{key:?} is in the state"),
                _ => format!("{key:?} has another value in the state"),
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_of_distinct_kinds_never_share_a_key() {
        let fingerprint = Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, b"x");
        let resource = ResourceId(Hash32(fingerprint.digest));
        assert_ne!(
            StateKey::Resource(resource).hash(),
            StateKey::History(fingerprint).hash()
        );
        let history = HistoryEntry::default().then(&weft_core::TxId(Hash32([1; 32])));
        // The same bytes under another kind give another leaf value.
        let bytes = borsh::to_vec(&history).expect("encode");
        assert_ne!(
            value_hash(tag::PART, &bytes),
            StateKey::History(fingerprint).value_hash(&history)
        );
    }
}
