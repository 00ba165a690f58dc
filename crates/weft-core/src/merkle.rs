//! RFC 6962 (and RFC 9162 §2.1) Merkle trees.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)`, interior nodes as `SHA-256(0x01 || left ||
//! right)`, and the tree over `n` leaves splits at the largest power of two below `n`. Building
//! level by level and promoting an unpaired last node unchanged gives exactly that tree, which is
//! what [`root`] and [`inclusion_proof`] do. [`verify_inclusion`] is RFC 9162's algorithm and
//! needs nothing but the leaf, its index, the tree size, the path and the root;
//! [`consistency_proof`] and [`verify_consistency`] show that one tree is a prefix of another
//! (RFC 9162 §2.1.4), as a chain's checkpoints need.

use sha2::{Digest, Sha256};

use crate::Hash32;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    Hash32(hasher.finalize().into())
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash32(hasher.finalize().into())
}

/// The root of an empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash32 {
    Hash32(Sha256::digest([]).into())
}

fn next_level(level: &[Hash32]) -> Vec<Hash32> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// Every level of the tree, leaves first, root last (a single empty level for no leaves).
pub fn levels(leaf_hashes: Vec<Hash32>) -> Vec<Vec<Hash32>> {
    let mut levels = vec![leaf_hashes];
    while levels.last().is_some_and(|level| level.len() > 1) {
        let next = next_level(levels.last().expect("checked non-empty"));
        levels.push(next);
    }
    levels
}

/// The tree head over the given leaf hashes.
pub fn root(leaf_hashes: &[Hash32]) -> Hash32 {
    match levels(leaf_hashes.to_vec())
        .last()
        .and_then(|top| top.first())
    {
        Some(head) => *head,
        None => empty_root(),
    }
}

/// The audit path for leaf `index`, bottom to top, or `None` if `index` is out of range.
pub fn inclusion_proof(leaf_hashes: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= leaf_hashes.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut level = leaf_hashes.to_vec();
    let mut position = index;
    while level.len() > 1 {
        let sibling = position ^ 1;
        if sibling < level.len() {
            path.push(level[sibling]);
        }
        level = next_level(&level);
        position /= 2;
    }
    Some(path)
}

/// RFC 9162 §2.1.3.2: does `path` prove that `leaf` is at `index` in the tree of `size` leaves
/// with head `root`?
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    size: u64,
    path: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= size {
        return false;
    }
    let mut node_index = index;
    let mut last_index = size - 1;
    let mut running = *leaf;
    for sibling in path {
        if last_index == 0 {
            return false;
        }
        if node_index & 1 == 1 || node_index == last_index {
            running = node_hash(sibling, &running);
            if node_index & 1 == 0 {
                while node_index & 1 == 0 && node_index != 0 {
                    node_index >>= 1;
                    last_index >>= 1;
                }
            }
        } else {
            running = node_hash(&running, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    last_index == 0 && running == *root
}

/// RFC 9162 §2.1.4.1 (RFC 6962 §2.1.2): the consistency proof from the tree of the first
/// `old_size` leaves to the tree of all of `leaf_hashes`; `None` if `old_size` is 0 or larger
/// than the tree. Hashes O(n) nodes.
pub fn consistency_proof(leaf_hashes: &[Hash32], old_size: usize) -> Option<Vec<Hash32>> {
    if old_size == 0 || old_size > leaf_hashes.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(old_size, leaf_hashes, true, &mut proof);
    Some(proof)
}

/// RFC 6962's SUBPROOF(m, D[n], b), appended to `proof`.
fn subproof(m: usize, leaves: &[Hash32], complete: bool, proof: &mut Vec<Hash32>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    // The largest power of two smaller than n.
    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `old_size` leaves with head
/// `old_root` is a prefix of the tree of `new_size` leaves with head `new_root`?
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash32,
    new_root: &Hash32,
    proof: &[Hash32],
) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash32> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

/// An append-only RFC 6962 tree that keeps the hash of every complete subtree (`levels[j][i]`
/// covers leaves `i·2^j .. (i+1)·2^j`), so that the head of any prefix, an inclusion proof and a
/// consistency proof take O(log² n) hashes, not O(n): what a node serving a growing log's
/// checkpoints needs. Memory: about two hashes per leaf.
#[derive(Debug, Default, Clone)]
pub struct CompactLog {
    levels: Vec<Vec<Hash32>>,
}

impl CompactLog {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash32) {
        let mut node = leaf;
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(node);
            let len = self.levels[level].len();
            if len % 2 == 1 {
                break;
            }
            node = node_hash(&self.levels[level][len - 2], &self.levels[level][len - 1]);
        }
    }

    /// How many leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The head of the leaves `start .. start + size` (a range the RFC's recursion reaches:
    /// `start` a multiple of the largest power of two below `size`, or of `size` itself).
    fn subtree(&self, start: u64, size: u64) -> Hash32 {
        if size.is_power_of_two() && start.is_multiple_of(size) {
            return self.levels[size.trailing_zeros() as usize][(start / size) as usize];
        }
        let k = 1u64 << (63 - (size - 1).leading_zeros());
        node_hash(&self.subtree(start, k), &self.subtree(start + k, size - k))
    }

    /// The head of the first `size` leaves; `None` beyond the log.
    pub fn root(&self, size: u64) -> Option<Hash32> {
        match size {
            0 => Some(empty_root()),
            _ if size > self.len() => None,
            _ => Some(self.subtree(0, size)),
        }
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves, as
    /// [`inclusion_proof`] gives it.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash32>> {
        if index >= size || size > self.len() {
            return None;
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Some(path)
    }

    /// RFC 6962's PATH(m, D[start .. start + n]), bottom to top.
    fn path(&self, m: u64, start: u64, n: u64, path: &mut Vec<Hash32>) {
        if n <= 1 {
            return;
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m < k {
            self.path(m, start, k, path);
            path.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, path);
            path.push(self.subtree(start, k));
        }
    }

    /// The consistency proof from the first `old` leaves to the first `new`, as
    /// [`consistency_proof`] gives it.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash32>> {
        if old == 0 || old > new || new > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        self.subproof(old, 0, new, true, &mut proof);
        Some(proof)
    }

    /// RFC 6962's SUBPROOF(m, D[start .. start + n], b).
    fn subproof(&self, m: u64, start: u64, n: u64, complete: bool, proof: &mut Vec<Hash32>) {
        if m == n {
            if !complete {
                proof.push(self.subtree(start, n));
            }
            return;
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m <= k {
            self.subproof(m, start, k, complete, proof);
            proof.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, proof);
            proof.push(self.subtree(start, k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The leaves and roots of the certificate-transparency reference tests.
    fn reference_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    const REFERENCE_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn reference_roots() {
        let leaves: Vec<Hash32> = reference_leaves()
            .iter()
            .map(|data| leaf_hash(data))
            .collect();
        for size in 1..=8 {
            assert_eq!(
                root(&leaves[..size]).to_hex(),
                REFERENCE_ROOTS[size - 1],
                "tree of {size}"
            );
        }
        assert_eq!(
            root(&[]).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// RFC 6962's definition, straight: MTH over slices, no levels.
    fn reference_subproof(m: usize, leaves: &[Hash32], complete: bool) -> Vec<Hash32> {
        let n = leaves.len();
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![root(leaves)]
            };
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m <= k {
            let mut proof = reference_subproof(m, &leaves[..k], complete);
            proof.push(root(&leaves[k..]));
            proof
        } else {
            let mut proof = reference_subproof(m - k, &leaves[k..], false);
            proof.push(root(&leaves[..k]));
            proof
        }
    }

    #[test]
    fn a_compact_log_answers_as_the_whole_tree_for_every_size() {
        let leaves: Vec<Hash32> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut log = CompactLog::default();
        assert_eq!(log.root(0), Some(empty_root()));
        for (count, leaf) in leaves.iter().enumerate() {
            log.push(*leaf);
            let size = count as u64 + 1;
            assert_eq!(log.len(), size);
            let tree = &leaves[..=count];
            assert_eq!(log.root(size), Some(root(tree)), "root of {size}");
            for index in 0..=count {
                assert_eq!(
                    log.inclusion_proof(index as u64, size),
                    inclusion_proof(tree, index),
                    "path of {index} in {size}"
                );
            }
            for old in 1..=size {
                assert_eq!(
                    log.consistency_proof(old, size),
                    consistency_proof(tree, old as usize),
                    "{old} → {size}"
                );
            }
        }
        // Every prefix of the final log too.
        for size in 1..=70u64 {
            assert_eq!(log.root(size), Some(root(&leaves[..size as usize])));
        }
        assert_eq!(log.root(71), None);
        assert_eq!(log.inclusion_proof(70, 70), None);
        assert_eq!(log.consistency_proof(0, 5), None);
    }

    #[test]
    fn consistency_proofs_are_rfc_6962_subproofs_for_every_pair_of_sizes() {
        let leaves: Vec<Hash32> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for new_size in 1..=leaves.len() {
            let tree = &leaves[..new_size];
            for old_size in 1..=new_size {
                let proof = consistency_proof(tree, old_size).expect("in range");
                assert_eq!(
                    proof,
                    reference_subproof(old_size, tree, true),
                    "{old_size}→{new_size}"
                );
                assert!(verify_consistency(
                    old_size as u64,
                    new_size as u64,
                    &root(&tree[..old_size]),
                    &root(tree),
                    &proof
                ));
            }
        }
        assert!(consistency_proof(&leaves, 0).is_none());
        assert!(consistency_proof(&leaves, 71).is_none());
        assert!(!verify_consistency(
            0,
            5,
            &empty_root(),
            &root(&leaves[..5]),
            &[]
        ));
    }

    fn leaves_strategy() -> impl Strategy<Value = Vec<Hash32>> {
        // Distinct leaves: with repeated leaves a proof for another position can be genuinely valid.
        prop::collection::vec(any::<[u8; 32]>(), 1..200).prop_map(|seeds| {
            seeds
                .iter()
                .enumerate()
                .map(|(i, seed)| leaf_hash(&[&(i as u64).to_le_bytes()[..], seed].concat()))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_prefix_is_consistent_and_any_altered_element_is_refused(
            leaves in leaves_strategy(),
            pick in any::<prop::sample::Index>(),
            which in 0usize..3,
            flip in any::<prop::sample::Index>(),
        ) {
            let new_size = leaves.len();
            let old_size = 1 + pick.index(new_size);
            let (old_root, new_root) = (root(&leaves[..old_size]), root(&leaves));
            let proof = consistency_proof(&leaves, old_size).expect("in range");
            prop_assert!(verify_consistency(
                old_size as u64, new_size as u64, &old_root, &new_root, &proof
            ));
            // Any change of a head or of a proof element is refused. (Like an inclusion path, a
            // consistency proof does not bind the sizes by itself: they come from the signed
            // checkpoints, whose tampering their signatures catch.)
            let (mut old_used, mut new_used) = (old_root, new_root);
            let mut altered = proof.clone();
            match which {
                0 => old_used.0[flip.index(32)] ^= 1,
                1 => new_used.0[flip.index(32)] ^= 1,
                _ if !altered.is_empty() => {
                    let at = flip.index(altered.len());
                    altered[at].0[flip.index(32)] ^= 1;
                }
                _ => altered.push(old_root),
            }
            prop_assert!(!verify_consistency(
                old_size as u64, new_size as u64, &old_used, &new_used, &altered
            ));
        }

        #[test]
        fn every_leaf_proves(leaves in leaves_strategy(), pick in any::<prop::sample::Index>()) {
            let index = pick.index(leaves.len());
            let head = root(&leaves);
            let path = inclusion_proof(&leaves, index).expect("index in range");
            prop_assert!(verify_inclusion(&leaves[index], index as u64, leaves.len() as u64, &path, &head));
        }

        #[test]
        fn any_altered_element_is_rejected(
            leaves in leaves_strategy(),
            pick in any::<prop::sample::Index>(),
            which in 0usize..5,
            flip in any::<prop::sample::Index>(),
        ) {
            let index = pick.index(leaves.len());
            let size = leaves.len() as u64;
            let head = root(&leaves);
            let mut path = inclusion_proof(&leaves, index).expect("index in range");
            let mut leaf = leaves[index];
            let mut head_used = head;
            let mut index_used = index as u64;
            let size_used = size;
            match which {
                0 => leaf.0[flip.index(32)] ^= 1,
                1 => head_used.0[flip.index(32)] ^= 1,
                2 if !path.is_empty() => { let at = flip.index(path.len()); path[at].0[0] ^= 0x80; }
                2 => path.push(Hash32([0; 32])),
                3 => index_used = (index_used + 1 + flip.index(10) as u64) % (size + 1),
                // The tree size is not bound by the path (RFC 9162): it comes from the signed
                // block header, whose tampering the header signature catches.
                _ if !path.is_empty() => { path.pop(); }
                _ => path.push(leaf),
            }
            let original = inclusion_proof(&leaves, index).expect("in range");
            let changed = (leaf, head_used, index_used, size_used) != (leaves[index], head, index as u64, size)
                || path != original;
            prop_assume!(changed);
            prop_assert!(!verify_inclusion(&leaf, index_used, size_used, &path, &head_used));
        }
    }

    #[test]
    fn out_of_range() {
        let leaves = vec![leaf_hash(b"a")];
        assert!(inclusion_proof(&leaves, 1).is_none());
        assert!(!verify_inclusion(&leaves[0], 1, 1, &[], &root(&leaves)));
        assert!(verify_inclusion(&leaves[0], 0, 1, &[], &root(&leaves)));
    }
}
