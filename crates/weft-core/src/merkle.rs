//! RFC 6962 (and RFC 9162 §2.1) Merkle trees.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)`, interior nodes as `SHA-256(0x01 || left ||
//! right)`, and the tree over `n` leaves splits at the largest power of two below `n`. Building
//! level by level and promoting an unpaired last node unchanged gives exactly that tree, which is
//! what [`root`] and [`inclusion_proof`] do. [`verify_inclusion`] is RFC 9162's algorithm and
//! needs nothing but the leaf, its index, the tree size, the path and the root.

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
