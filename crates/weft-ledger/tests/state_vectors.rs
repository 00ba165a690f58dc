//! The state-proof vectors of docs/state-proofs.md: a tree of three keys, its root, a proof of
//! membership and one of absence, each encoded. If one changes, the format changed.

use weft_core::Hash32;
use weft_core::encoding::encode;
use weft_core::smt::{Tree, verify};
use weft_ledger::commitment::StateKey;
use weft_ledger::state::HistoryEntry;

fn sha(text: &str) -> Hash32 {
    Hash32::sha256(&[text.as_bytes()])
}

#[test]
fn state_vectors_match_the_documentation() {
    let entries: Vec<_> = (0..3)
        .map(|n| (sha(&format!("k{n}")), sha(&format!("v{n}"))))
        .collect();
    let tree = Tree::from_entries(entries.clone());
    let root = tree.root();
    let member = tree.prove(&entries[1].0);
    let absent_key = sha("k3");
    let absent = tree.prove(&absent_key);
    assert_eq!(
        verify(&root, &entries[1].0, &member).expect("valid"),
        Some(entries[1].1)
    );
    assert_eq!(verify(&root, &absent_key, &absent).expect("valid"), None);

    // A history leaf: the asset SHA-256("bracket") named by two transactions.
    let fingerprint = weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, b"bracket");
    let history = HistoryEntry::of(
        &[weft_core::TxId(sha("tx1")), weft_core::TxId(sha("tx2"))],
        None,
    );
    let key = StateKey::History(fingerprint);
    let current = format!(
        "root of k0..k2: {}\nproof of k1: {}\nproof that k3 is absent: {}\n\
         history of sha256(\"bracket\") after tx1, tx2, unowned: count {}, head {}\n\
         its tree key: {}\nits leaf value: {}\n",
        root.to_hex(),
        hex::encode(encode(&member)),
        hex::encode(encode(&absent)),
        history.count,
        history.head.to_hex(),
        key.hash().to_hex(),
        key.value_hash(&history).to_hex(),
    );
    // A second implementation, from docs/state-proofs.md alone.
    let spec: Vec<([u8; 32], [u8; 32])> = entries.iter().map(|(k, v)| (k.0, v.0)).collect();
    assert_eq!(spec::root(&spec, 0), root.0);
    let proof_bytes = encode(&member);
    assert_eq!(
        spec::verify(&root.0, &entries[1].0.0, &proof_bytes),
        Some(Some(entries[1].1.0))
    );
    assert_eq!(
        spec::verify(&root.0, &absent_key.0, &encode(&absent)),
        Some(None)
    );
    let mut altered = proof_bytes.clone();
    altered[10] ^= 1;
    assert_eq!(spec::verify(&root.0, &entries[1].0.0, &altered), None);
    let spec_head = [sha("tx1"), sha("tx2")].iter().fold([0u8; 32], |head, id| {
        spec::sha(&[b"weft history v1\0", &head, &id.0])
    });
    assert_eq!(spec_head, history.head.0);
    assert_eq!(
        spec::sha(&[b"weft state key v1\0", &[4], &fingerprint.key_bytes()]),
        key.hash().0
    );
    // count (u64 LE) ‖ head ‖ owner (0: none).
    let mut value = history.count.to_le_bytes().to_vec();
    value.extend_from_slice(&spec_head);
    value.push(0);
    assert_eq!(
        spec::sha(&[b"weft state value v1\0", &[4], &value]),
        key.value_hash(&history).0
    );

    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/state-proofs.md"
    ))
    .expect("docs/state-proofs.md");
    assert!(
        docs.contains(&current),
        "docs/state-proofs.md does not carry the current vectors; they are:\n\n{current}"
    );
}

/// The tree and its proofs as docs/state-proofs.md defines them, written apart from weft's code.
mod spec {
    use sha2::{Digest, Sha256};

    pub fn sha(parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    fn bit(key: &[u8; 32], i: usize) -> u8 {
        (key[i / 8] >> (7 - i % 8)) & 1
    }

    /// The root of the subtree at `depth` holding `entries`.
    pub fn root(entries: &[([u8; 32], [u8; 32])], depth: usize) -> [u8; 32] {
        match entries {
            [] => [0; 32],
            [(key, value)] => sha(&[&[0], key, value]),
            _ => {
                let left: Vec<_> = entries
                    .iter()
                    .copied()
                    .filter(|(k, _)| bit(k, depth) == 0)
                    .collect();
                let right: Vec<_> = entries
                    .iter()
                    .copied()
                    .filter(|(k, _)| bit(k, depth) == 1)
                    .collect();
                sha(&[&[1], &root(&left, depth + 1), &root(&right, depth + 1)])
            }
        }
    }

    /// `Some(Some(value))` for a member, `Some(None)` for an absent key, `None` for a proof that
    /// does not give `root`.
    pub fn verify(root: &[u8; 32], key: &[u8; 32], bytes: &[u8]) -> Option<Option<[u8; 32]>> {
        let count = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let siblings: Vec<[u8; 32]> = (0..count)
            .map(|i| {
                bytes
                    .get(4 + 32 * i..4 + 32 * (i + 1))
                    .map(|s| s.try_into().expect("32 bytes"))
            })
            .collect::<Option<_>>()?;
        let rest = &bytes[4 + 32 * count..];
        let (mut hash, found) = match rest {
            [0] => ([0u8; 32], None),
            [1, leaf @ ..] if leaf.len() == 64 => {
                let (leaf_key, value): ([u8; 32], [u8; 32]) = (
                    leaf[..32].try_into().expect("32 bytes"),
                    leaf[32..].try_into().expect("32 bytes"),
                );
                if leaf_key != *key && (0..count).any(|i| bit(&leaf_key, i) != bit(key, i)) {
                    return None;
                }
                (
                    sha(&[&[0], &leaf_key, &value]),
                    (leaf_key == *key).then_some(value),
                )
            }
            _ => return None,
        };
        for depth in (0..count).rev() {
            hash = if bit(key, depth) == 0 {
                sha(&[&[1], &hash, &siblings[depth]])
            } else {
                sha(&[&[1], &siblings[depth], &hash])
            };
        }
        (hash == *root).then_some(found)
    }
}
