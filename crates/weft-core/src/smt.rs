//! A sparse Merkle tree over 256-bit keys: what a block's state root commits to
//! (docs/state-proofs.md, docs/adr/0024-state-roots.md).
//!
//! The tree has a leaf position for every 256-bit key (bit 0 is the most significant bit of the
//! key's first byte; 0 goes left). A subtree holding no key is *empty* and hashes to 32 zero
//! bytes; a subtree holding exactly one key is that key's leaf, placed as high as it can go (the
//! jellyfish / Diem layout); any other subtree is an interior node. So the tree over `n` keys has
//! `n` leaves and `n - 1` interior nodes (plus one for every bit two keys share beyond the point
//! where they part from all others), and a key's path is about `log2(n)` nodes long.
//!
//! - leaf: `SHA-256(0x00 || key || value)` (the value is itself a 32-byte hash);
//! - interior node: `SHA-256(0x01 || left || right)`;
//! - empty subtree: 32 zero bytes.
//!
//! A [`Proof`] of a key holds the sibling hashes from the root down to where the key's path ends,
//! and what it ends at: the key's own leaf (membership), nothing (non-membership), or the one
//! other key in that subtree (non-membership). [`verify`] needs nothing but the root, the key and
//! the proof.
//!
//! [`Tree`] keeps every node in memory (two arenas, no deletions: state keys are never removed),
//! updates a batch of keys in one pass that hashes every touched node once
//! ([`Tree::update`]), and computes the root a batch *would* give without changing anything
//! ([`Tree::prepare`]), for blocks that are proposed but not yet final.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use crate::{CoreError, Hash32};

/// The hash of an empty subtree.
pub const EMPTY: Hash32 = Hash32([0; 32]);

/// Batches of at least this many keys are hashed on two threads ([`Tree::root_with_trace`]).
pub const PARALLEL_FROM: usize = 1024;

/// Deepest a path can go: one level per key bit.
pub const MAX_DEPTH: usize = 256;

/// `SHA-256(0x00 || key || value)`.
pub fn leaf_hash(key: &Hash32, value: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(key.0);
    hasher.update(value.0);
    Hash32(hasher.finalize().into())
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    crate::merkle::node_hash(left, right)
}

/// Bit `depth` of `key`, most significant bit of the first byte first.
pub fn bit(key: &Hash32, depth: usize) -> bool {
    (key.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Do `a` and `b` agree on their first `depth` bits?
fn share_prefix(a: &Hash32, b: &Hash32, depth: usize) -> bool {
    let bytes = depth / 8;
    if a.0[..bytes] != b.0[..bytes] {
        return false;
    }
    let rest = depth % 8;
    rest == 0 || (a.0[bytes] ^ b.0[bytes]) >> (8 - rest) == 0
}

/// What a key's path ends at, below the siblings of a [`Proof`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PathEnd {
    /// An empty subtree: the key is absent.
    Empty,
    /// A leaf: the key's own (membership) or the one other key of that subtree (absence).
    Leaf { key: Hash32, value: Hash32 },
}

/// The path of one key: sibling hashes from the root down, and what the path ends at.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proof {
    pub siblings: Vec<Hash32>,
    pub end: PathEnd,
}

impl crate::encoding::Canonical for Proof {
    const WHAT: &'static str = "state proof";
    const MAX_ENCODED: usize = 4 + 32 * MAX_DEPTH + 1 + 64;
    fn validate(&self) -> Result<(), CoreError> {
        crate::encoding::check_count("state proof siblings", self.siblings.len(), 0, MAX_DEPTH)
    }
}

impl Proof {
    /// Bytes on the wire (Borsh).
    pub fn encoded_len(&self) -> usize {
        4 + 32 * self.siblings.len()
            + 1
            + if matches!(self.end, PathEnd::Empty) {
                0
            } else {
                64
            }
    }
}

/// Checks `proof` for `key` against `root`: `Ok(Some(value))` when the key is in the tree with
/// that value, `Ok(None)` when it is proven absent, an error naming what does not hold otherwise.
pub fn verify(root: &Hash32, key: &Hash32, proof: &Proof) -> Result<Option<Hash32>, CoreError> {
    let invalid = |reason: String| CoreError::InvalidField {
        field: "state proof",
        reason,
    };
    let depth = proof.siblings.len();
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "{depth} siblings; a path has at most {MAX_DEPTH}"
        )));
    }
    let (mut hash, value) = match &proof.end {
        PathEnd::Empty => (EMPTY, None),
        PathEnd::Leaf {
            key: leaf_key,
            value,
        } => {
            if leaf_key != key && !share_prefix(leaf_key, key, depth) {
                return Err(invalid(format!(
                    "the leaf of key {leaf_key} cannot sit on the path of key {key} at depth {depth}"
                )));
            }
            let proven = (leaf_key == key).then_some(*value);
            (leaf_hash(leaf_key, value), proven)
        }
    };
    for (depth, sibling) in proof.siblings.iter().enumerate().rev() {
        hash = if bit(key, depth) {
            node_hash(sibling, &hash)
        } else {
            node_hash(&hash, sibling)
        };
    }
    if hash != *root {
        return Err(invalid(format!(
            "the path of key {key} gives root {hash}, not {root}"
        )));
    }
    Ok(value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ref {
    Empty,
    Leaf(u32),
    Inner(u32),
}

#[derive(Clone, Debug)]
struct Leaf {
    key: Hash32,
    value: Hash32,
    hash: Hash32,
}

#[derive(Clone, Debug)]
struct Inner {
    left: Ref,
    right: Ref,
    hash: Hash32,
}

/// The root a batch gives, computed on a tree as it was (`base`), with the batch (sorted by key)
/// and every hash computed on the way: a tree whose root is still `base` applies it without
/// hashing again ([`Tree::apply_prepared`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    pub base: Hash32,
    pub root: Hash32,
    pub updates: Vec<(Hash32, Hash32)>,
    pub trace: Vec<Hash32>,
}

/// Sorts `updates` by key; of equal keys the last one given wins.
pub fn sorted_updates(updates: Vec<(Hash32, Hash32)>) -> Vec<(Hash32, Hash32)> {
    sorted_last_wins(updates)
}

/// Sorts `(key, value)` pairs by key; of equal keys the last one given wins (a stable sort keeps
/// equal keys in the order given, so the last one is the later change).
pub fn sorted_last_wins<K: Ord, V>(mut items: Vec<(K, V)>) -> Vec<(K, V)> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(K, V)> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => out.push(item),
        }
    }
    out
}

/// Where the updates of a sorted slice part at `depth`: the first index whose key has bit 1.
fn split(updates: &[(Hash32, Hash32)], depth: usize) -> usize {
    updates.partition_point(|(key, _)| !bit(key, depth))
}

/// The whole tree, in memory.
#[derive(Clone, Debug)]
pub struct Tree {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    root: Ref,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            leaves: Vec::new(),
            inners: Vec::new(),
            root: Ref::Empty,
        }
    }
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `entries` (any order; of equal keys the last wins).
    pub fn from_entries(entries: Vec<(Hash32, Hash32)>) -> Self {
        let mut tree = Tree::new();
        tree.update(entries);
        tree
    }

    /// How many keys the tree holds.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    pub fn root(&self) -> Hash32 {
        self.hash_of(self.root)
    }

    fn hash_of(&self, node: Ref) -> Hash32 {
        match node {
            Ref::Empty => EMPTY,
            Ref::Leaf(index) => self.leaves[index as usize].hash,
            Ref::Inner(index) => self.inners[index as usize].hash,
        }
    }

    /// The value of `key`, if the tree holds it.
    pub fn get(&self, key: &Hash32) -> Option<Hash32> {
        let mut node = self.root;
        let mut depth = 0;
        loop {
            match node {
                Ref::Empty => return None,
                Ref::Leaf(index) => {
                    let leaf = &self.leaves[index as usize];
                    return (leaf.key == *key).then_some(leaf.value);
                }
                Ref::Inner(index) => {
                    let inner = &self.inners[index as usize];
                    node = if bit(key, depth) {
                        inner.right
                    } else {
                        inner.left
                    };
                    depth += 1;
                }
            }
        }
    }

    /// The proof of `key`'s value or absence.
    pub fn prove(&self, key: &Hash32) -> Proof {
        let mut siblings = Vec::new();
        let mut node = self.root;
        let mut depth = 0;
        loop {
            match node {
                Ref::Empty => {
                    return Proof {
                        siblings,
                        end: PathEnd::Empty,
                    };
                }
                Ref::Leaf(index) => {
                    let leaf = &self.leaves[index as usize];
                    return Proof {
                        siblings,
                        end: PathEnd::Leaf {
                            key: leaf.key,
                            value: leaf.value,
                        },
                    };
                }
                Ref::Inner(index) => {
                    let inner = &self.inners[index as usize];
                    let (next, sibling) = if bit(key, depth) {
                        (inner.right, inner.left)
                    } else {
                        (inner.left, inner.right)
                    };
                    siblings.push(self.hash_of(sibling));
                    node = next;
                    depth += 1;
                }
            }
        }
    }

    /// Sets every `(key, value)` of `updates` (any order; of equal keys the last wins), hashing
    /// each touched node once.
    pub fn update(&mut self, updates: Vec<(Hash32, Hash32)>) {
        let updates = sorted_updates(updates);
        self.update_sorted(&updates);
    }

    /// [`Tree::update`] for updates already sorted by key, without repeats.
    pub fn update_sorted(&mut self, updates: &[(Hash32, Hash32)]) {
        debug_assert!(updates.windows(2).all(|pair| pair[0].0 < pair[1].0));
        self.root = self.apply(self.root, 0, updates, &mut Replay(None));
    }

    /// The root the tree would have with `updates` set (sorted by key, no repeats), with every
    /// hash computed on the way, in the order [`Tree::update_replaying`] needs them; the tree
    /// does not change.
    ///
    /// A batch of at least [`PARALLEL_FROM`] keys is hashed on two threads, one per half of the
    /// tree; the trace is the same.
    pub fn root_with_trace(&self, updates: &[(Hash32, Hash32)]) -> (Hash32, Vec<Hash32>) {
        debug_assert!(updates.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let mut trace = Vec::new();
        let root = match self.root {
            Ref::Inner(index) if updates.len() >= PARALLEL_FROM => {
                let Inner { left, right, .. } = self.inners[index as usize];
                let middle = split(updates, 0);
                let (mut left_trace, mut right_trace) = (Vec::new(), Vec::new());
                let (left_hash, right_hash) = std::thread::scope(|scope| {
                    let right_half = scope
                        .spawn(|| self.hash_with(right, 1, &updates[middle..], &mut right_trace));
                    let left_hash = self.hash_with(left, 1, &updates[..middle], &mut left_trace);
                    // A panic in the other half is a bug here: passed on as one.
                    let right_hash = right_half
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (left_hash, right_hash)
                });
                trace = left_trace;
                trace.append(&mut right_trace);
                recorded(&mut trace, node_hash(&left_hash, &right_hash))
            }
            _ => self.hash_with(self.root, 0, updates, &mut trace),
        };
        (root, trace)
    }

    /// `updates` (sorted by key, no repeats) prepared on this tree as it is.
    pub fn prepare(&self, updates: Vec<(Hash32, Hash32)>) -> Prepared {
        let (root, trace) = self.root_with_trace(&updates);
        Prepared {
            base: self.root(),
            root,
            updates,
            trace,
        }
    }

    /// Applies `prepared` if this tree still has the root it was prepared on (and says so);
    /// otherwise changes nothing and returns `false`.
    pub fn apply_prepared(&mut self, prepared: &Prepared) -> bool {
        if self.root() != prepared.base {
            return false;
        }
        self.update_replaying(&prepared.updates, &prepared.trace);
        true
    }

    /// [`Tree::update_sorted`] taking its hashes from `trace`, which [`Tree::root_with_trace`]
    /// gave for the same `updates` on this tree as it is now (same root): the update then only
    /// links nodes. A trace that runs short is made up by hashing.
    pub fn update_replaying(&mut self, updates: &[(Hash32, Hash32)], trace: &[Hash32]) {
        debug_assert!(updates.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let mut replay = Replay(Some(trace.iter()));
        self.root = self.apply(self.root, 0, updates, &mut replay);
        debug_assert!(replay.0.is_none_or(|mut rest| rest.next().is_none()));
    }

    fn apply(
        &mut self,
        node: Ref,
        depth: usize,
        updates: &[(Hash32, Hash32)],
        replay: &mut Replay<'_>,
    ) -> Ref {
        if updates.is_empty() {
            return node;
        }
        match node {
            Ref::Empty => self.build(depth, updates, None, replay),
            Ref::Leaf(index) => {
                let leaf_key = self.leaves[index as usize].key;
                if let [(key, value)] = updates
                    && *key == leaf_key
                {
                    let leaf = &mut self.leaves[index as usize];
                    leaf.value = *value;
                    leaf.hash = replay.next(|| leaf_hash(key, value));
                    return node;
                }
                self.build(depth, updates, Some(index), replay)
            }
            Ref::Inner(index) => {
                let Inner { left, right, .. } = self.inners[index as usize];
                let middle = split(updates, depth);
                let left = self.apply(left, depth + 1, &updates[..middle], replay);
                let right = self.apply(right, depth + 1, &updates[middle..], replay);
                let hash = replay.next(|| node_hash(&self.hash_of(left), &self.hash_of(right)));
                self.inners[index as usize] = Inner { left, right, hash };
                node
            }
        }
    }

    /// The subtree at `depth` holding `updates` and, unless one of them replaces it, the leaf
    /// `existing`.
    fn build(
        &mut self,
        depth: usize,
        updates: &[(Hash32, Hash32)],
        existing: Option<u32>,
        replay: &mut Replay<'_>,
    ) -> Ref {
        // The leaf `existing` joins the subtree, or gives its slot to the update of its key.
        let replaced = existing.is_some_and(|index| {
            let key = self.leaves[index as usize].key;
            updates.binary_search_by(|(k, _)| k.cmp(&key)).is_ok()
        });
        match (updates, existing) {
            ([], None) => Ref::Empty,
            ([], Some(index)) => Ref::Leaf(index),
            ([(key, value)], None) => {
                let hash = replay.next(|| leaf_hash(key, value));
                self.leaves.push(Leaf {
                    key: *key,
                    value: *value,
                    hash,
                });
                // Leaves are pushed, never moved or dropped: an index stays valid.
                Ref::Leaf(self.leaves.len() as u32 - 1)
            }
            ([(key, value)], Some(index)) if replaced => {
                let hash = replay.next(|| leaf_hash(key, value));
                let leaf = &mut self.leaves[index as usize];
                leaf.value = *value;
                leaf.hash = hash;
                Ref::Leaf(index)
            }
            _ => {
                let middle = split(updates, depth);
                let (left_existing, right_existing) = match existing {
                    Some(index) if bit(&self.leaves[index as usize].key, depth) => {
                        (None, Some(index))
                    }
                    other => (other, None),
                };
                let left = self.build(depth + 1, &updates[..middle], left_existing, replay);
                let right = self.build(depth + 1, &updates[middle..], right_existing, replay);
                let hash = replay.next(|| node_hash(&self.hash_of(left), &self.hash_of(right)));
                self.inners.push(Inner { left, right, hash });
                Ref::Inner(self.inners.len() as u32 - 1)
            }
        }
    }

    fn hash_with(
        &self,
        node: Ref,
        depth: usize,
        updates: &[(Hash32, Hash32)],
        trace: &mut Vec<Hash32>,
    ) -> Hash32 {
        if updates.is_empty() {
            return self.hash_of(node);
        }
        match node {
            Ref::Empty => hash_built(depth, updates, None, trace),
            Ref::Leaf(index) => {
                let leaf = &self.leaves[index as usize];
                hash_built(depth, updates, Some((&leaf.key, &leaf.hash)), trace)
            }
            Ref::Inner(index) => {
                let inner = &self.inners[index as usize];
                let middle = split(updates, depth);
                let left = self.hash_with(inner.left, depth + 1, &updates[..middle], trace);
                let right = self.hash_with(inner.right, depth + 1, &updates[middle..], trace);
                recorded(trace, node_hash(&left, &right))
            }
        }
    }
}

fn recorded(trace: &mut Vec<Hash32>, hash: Hash32) -> Hash32 {
    trace.push(hash);
    hash
}

/// Hashes for [`Tree::apply`]: taken in order from a trace of [`Tree::root_with_trace`], or
/// computed.
struct Replay<'a>(Option<std::slice::Iter<'a, Hash32>>);

impl Replay<'_> {
    fn next(&mut self, compute: impl FnOnce() -> Hash32) -> Hash32 {
        match self.0.as_mut().and_then(Iterator::next) {
            Some(hash) => *hash,
            None => compute(),
        }
    }
}

/// The hash [`Tree::build`] would give, building nothing: `existing` is a leaf's key and hash.
fn hash_built(
    depth: usize,
    updates: &[(Hash32, Hash32)],
    existing: Option<(&Hash32, &Hash32)>,
    trace: &mut Vec<Hash32>,
) -> Hash32 {
    let existing =
        existing.filter(|(key, _)| updates.binary_search_by(|(k, _)| k.cmp(key)).is_err());
    match (updates, existing) {
        ([], None) => EMPTY,
        ([], Some((_, hash))) => *hash,
        ([(key, value)], None) => recorded(trace, leaf_hash(key, value)),
        _ => {
            let middle = split(updates, depth);
            let (left_existing, right_existing) = match existing {
                Some(leaf) if bit(leaf.0, depth) => (None, Some(leaf)),
                other => (other, None),
            };
            let left = hash_built(depth + 1, &updates[..middle], left_existing, trace);
            let right = hash_built(depth + 1, &updates[middle..], right_existing, trace);
            recorded(trace, node_hash(&left, &right))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(n: u64) -> Hash32 {
        Hash32::sha256(&[b"key", &n.to_be_bytes()])
    }

    fn value(n: u64) -> Hash32 {
        Hash32::sha256(&[b"value", &n.to_be_bytes()])
    }

    /// The root of the tree holding `entries`, computed from scratch.
    fn reference_root(entries: &[(Hash32, Hash32)]) -> Hash32 {
        hash_built(0, &sorted_updates(entries.to_vec()), None, &mut Vec::new())
    }

    #[test]
    fn empty_and_single_trees() {
        let tree = Tree::new();
        assert_eq!(tree.root(), EMPTY);
        let proof = tree.prove(&key(1));
        assert_eq!(verify(&EMPTY, &key(1), &proof).expect("valid"), None);

        let tree = Tree::from_entries(vec![(key(1), value(1))]);
        assert_eq!(tree.root(), leaf_hash(&key(1), &value(1)));
        assert_eq!(
            verify(&tree.root(), &key(1), &tree.prove(&key(1))).expect("valid"),
            Some(value(1))
        );
        // Absence shown by the one other leaf.
        assert_eq!(
            verify(&tree.root(), &key(2), &tree.prove(&key(2))).expect("valid"),
            None
        );
    }

    #[test]
    fn two_keys_sharing_a_long_prefix_go_deep() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a[31] = 0b10;
        b[31] = 0b11;
        let (a, b) = (Hash32(a), Hash32(b));
        let tree = Tree::from_entries(vec![(a, value(1)), (b, value(2))]);
        let proof = tree.prove(&a);
        assert_eq!(proof.siblings.len(), 256);
        assert_eq!(
            verify(&tree.root(), &a, &proof).expect("valid"),
            Some(value(1))
        );
        assert_eq!(tree.root(), reference_root(&[(a, value(1)), (b, value(2))]));
        let absent = Hash32([0u8; 32]);
        assert_eq!(
            verify(&tree.root(), &absent, &tree.prove(&absent)).expect("valid"),
            None
        );
    }

    #[test]
    fn a_leaf_from_elsewhere_does_not_prove_absence() {
        let entries: Vec<_> = (0..64).map(|n| (key(n), value(n))).collect();
        let tree = Tree::from_entries(entries);
        // The proof of key 0 ends at its own leaf; passed off for a key on another path it must
        // not show that key absent.
        let proof = tree.prove(&key(0));
        let other = (1..)
            .map(key)
            .find(|candidate| bit(candidate, 0) != bit(&key(0), 0))
            .expect("valid");
        assert!(verify(&tree.root(), &other, &proof).is_err());
    }

    #[test]
    fn a_batch_hashed_on_two_threads_gives_the_same_root_and_trace() {
        let mut tree = Tree::from_entries((0..5_000).map(|n| (key(n), value(n))).collect());
        let updates = sorted_updates(
            (0..3 * PARALLEL_FROM as u64)
                .map(|n| (key(n * 3), value(n + 7)))
                .collect(),
        );
        let (root, trace) = tree.root_with_trace(&updates);
        let mut sequential = Vec::new();
        assert_eq!(
            tree.hash_with(tree.root, 0, &updates, &mut sequential),
            root
        );
        assert_eq!(sequential, trace);
        let mut hashed = tree.clone();
        hashed.update_sorted(&updates);
        tree.update_replaying(&updates, &trace);
        assert_eq!(tree.root(), root);
        assert_eq!(hashed.root(), root);
    }

    #[test]
    fn too_long_a_path_is_refused() {
        let proof = Proof {
            siblings: vec![EMPTY; MAX_DEPTH + 1],
            end: PathEnd::Empty,
        };
        let error = verify(&EMPTY, &key(1), &proof).expect_err("invalid");
        assert!(error.to_string().contains("at most 256"), "{error}");
    }

    fn altered(proof: &Proof, choice: usize, byte: usize) -> Proof {
        let mut proof = proof.clone();
        let places = proof.siblings.len() + 3;
        match choice % places {
            0 => proof.siblings.push(EMPTY),
            1 if !proof.siblings.is_empty() => {
                proof.siblings.pop();
            }
            2 => {
                proof.end = match proof.end {
                    PathEnd::Empty => PathEnd::Leaf {
                        key: key(9_999),
                        value: value(9_999),
                    },
                    PathEnd::Leaf { key, mut value } => {
                        value.0[byte % 32] ^= 1;
                        PathEnd::Leaf { key, value }
                    }
                }
            }
            index => {
                let index = index.saturating_sub(3) % proof.siblings.len().max(1);
                if let Some(sibling) = proof.siblings.get_mut(index) {
                    sibling.0[byte % 32] ^= 0x80;
                } else {
                    proof.siblings.push(key(1));
                }
            }
        }
        proof
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Batches applied one after another give the tree built from scratch, `root_with_trace`
        /// predicts each batch, every key proves its value and every absent key its absence.
        #[test]
        fn membership_and_absence_over_random_batches(
            batches in proptest::collection::vec(
                proptest::collection::vec((0u64..400, 0u64..1_000), 0..60), 1..6),
            absent in proptest::collection::vec(400u64..100_000, 1..20),
        ) {
            let mut tree = Tree::new();
            let mut all = std::collections::BTreeMap::new();
            for batch in &batches {
                let updates: Vec<_> = batch.iter().map(|(k, v)| (key(*k), value(*v))).collect();
                let sorted = sorted_updates(updates.clone());
                let (predicted, trace) = tree.root_with_trace(&sorted);
                let mut replayed = tree.clone();
                tree.update(updates);
                prop_assert_eq!(predicted, tree.root());
                replayed.update_replaying(&sorted, &trace);
                prop_assert_eq!(replayed.root(), tree.root());
                prop_assert_eq!(replayed.prove(&sorted.first().map_or(EMPTY, |u| u.0)), tree.prove(&sorted.first().map_or(EMPTY, |u| u.0)));
                for (k, v) in batch {
                    all.insert(key(*k), value(*v));
                }
                let entries: Vec<_> = all.iter().map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(tree.root(), reference_root(&entries));
                prop_assert_eq!(tree.len(), all.len());
            }
            let root = tree.root();
            for (k, v) in &all {
                prop_assert_eq!(tree.get(k), Some(*v));
                prop_assert_eq!(verify(&root, k, &tree.prove(k)).expect("valid"), Some(*v));
            }
            for n in absent {
                let k = key(n);
                prop_assert_eq!(tree.get(&k), None);
                prop_assert_eq!(verify(&root, &k, &tree.prove(&k)).expect("valid"), None);
            }
        }

        /// Any altered element of a proof — a sibling, the leaf, one sibling more or fewer — is
        /// refused.
        #[test]
        fn altered_proofs_are_refused(
            size in 1u64..300,
            probe in 0u64..600,
            choice in 0usize..1_000,
            byte in 0usize..32,
        ) {
            let tree = Tree::from_entries((0..size).map(|n| (key(n), value(n))).collect());
            let proof = tree.prove(&key(probe));
            let changed = altered(&proof, choice, byte);
            prop_assume!(changed != proof);
            prop_assert!(verify(&tree.root(), &key(probe), &changed).is_err());
        }
    }
}
