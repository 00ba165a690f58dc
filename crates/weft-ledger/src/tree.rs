//! The block tree (safe-UR-chain §II-D): every known block header, the canonical chain chosen by
//! a [`ForkChoice`], side forks, and orphans that wait for their parent. Pure, in memory, no I/O:
//! the node feeds it headers as they arrive and asks which chain is canonical.
//!
//! The single-node default is [`ProofOfAuthority`]: a header is acceptable only if sealed by one
//! of the chain's producers; the longest chain wins, ties broken by the lower block hash so every
//! node picks the same head.

use std::collections::HashMap;

use weft_core::{BlockHash, PublicKey};

use crate::block::SignedHeader;

/// Decides which headers are acceptable and which of two tips is preferred.
pub trait ForkChoice {
    /// Is this header acceptable at all (seal, producer)? Returns the reason if not.
    fn accept(&self, header: &SignedHeader) -> Result<(), String>;
    /// Is tip `candidate` (with its height) preferred over `current`?
    fn prefer(&self, candidate: (&BlockHash, u64), current: (&BlockHash, u64)) -> bool;
}

/// Proof of authority over a known producer set.
#[derive(Debug, Clone)]
pub struct ProofOfAuthority {
    pub producers: Vec<PublicKey>,
}

impl ForkChoice for ProofOfAuthority {
    fn accept(&self, signed: &SignedHeader) -> Result<(), String> {
        if !self.producers.contains(&signed.header.producer) {
            return Err(format!(
                "producer {} is not an authority of this chain",
                signed.header.producer
            ));
        }
        signed.verify_producer().map_err(|error| error.to_string())
    }

    fn prefer(&self, candidate: (&BlockHash, u64), current: (&BlockHash, u64)) -> bool {
        candidate.1 > current.1 || (candidate.1 == current.1 && candidate.0 < current.0)
    }
}

/// What inserting a header did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Already known.
    Duplicate,
    /// Parent unknown: kept as an orphan until the parent arrives.
    Orphan,
    /// Connected, but the canonical head did not change.
    SideFork,
    /// The canonical head changed. `reverted` lists blocks that left the canonical chain (newest
    /// first), `applied` those that joined it (oldest first); both empty-ended for a plain
    /// extension except `applied`.
    NewHead {
        reverted: Vec<BlockHash>,
        applied: Vec<BlockHash>,
    },
}

#[derive(Debug, Clone)]
struct Node {
    header: SignedHeader,
    parent: BlockHash,
    height: u64,
}

/// All known headers of one chain.
#[derive(Debug)]
pub struct BlockTree<F: ForkChoice> {
    fork_choice: F,
    nodes: HashMap<BlockHash, Node>,
    /// Orphans by the parent hash they wait for.
    orphans: HashMap<BlockHash, Vec<SignedHeader>>,
    genesis: BlockHash,
    head: BlockHash,
    /// Bound on orphans kept, so a peer cannot fill memory with headers that never connect.
    max_orphans: usize,
}

impl<F: ForkChoice> BlockTree<F> {
    /// A tree rooted at a trusted genesis header.
    pub fn new(genesis: SignedHeader, fork_choice: F) -> Self {
        let hash = genesis.header.hash();
        let mut nodes = HashMap::new();
        nodes.insert(
            hash,
            Node {
                parent: genesis.header.previous_digest,
                height: genesis.header.height,
                header: genesis,
            },
        );
        BlockTree {
            fork_choice,
            nodes,
            orphans: HashMap::new(),
            genesis: hash,
            head: hash,
            max_orphans: 10_000,
        }
    }

    pub fn head(&self) -> (BlockHash, u64) {
        (self.head, self.nodes[&self.head].height)
    }

    pub fn header(&self, hash: &BlockHash) -> Option<&SignedHeader> {
        self.nodes.get(hash).map(|node| &node.header)
    }

    pub fn orphan_count(&self) -> usize {
        self.orphans.values().map(Vec::len).sum()
    }

    /// The canonical chain, genesis first.
    pub fn canonical_chain(&self) -> Vec<BlockHash> {
        let mut chain = self.ancestry(self.head);
        chain.reverse();
        chain
    }

    /// `hash` and its ancestors back to genesis, newest first.
    fn ancestry(&self, mut hash: BlockHash) -> Vec<BlockHash> {
        let mut out = vec![hash];
        while hash != self.genesis {
            hash = self.nodes[&hash].parent;
            out.push(hash);
        }
        out
    }

    /// Is `hash` on the canonical chain?
    pub fn is_canonical(&self, hash: &BlockHash) -> bool {
        let Some(node) = self.nodes.get(hash) else {
            return false;
        };
        let mut cursor = self.head;
        loop {
            let current = &self.nodes[&cursor];
            if current.height == node.height {
                return cursor == *hash;
            }
            if current.height < node.height || cursor == self.genesis {
                return false;
            }
            cursor = current.parent;
        }
    }

    /// Adds a header. Invalid headers (per the fork choice, or with a height that does not follow
    /// the parent) are refused with the reason.
    pub fn insert(&mut self, header: SignedHeader) -> Result<Inserted, String> {
        let hash = header.header.hash();
        if self.nodes.contains_key(&hash) {
            return Ok(Inserted::Duplicate);
        }
        self.fork_choice.accept(&header)?;
        let parent = header.header.previous_digest;
        if !self.nodes.contains_key(&parent) {
            let waiting = self.orphans.entry(parent).or_default();
            if waiting.iter().any(|orphan| orphan.header.hash() == hash) {
                return Ok(Inserted::Duplicate);
            }
            if self.orphan_count() >= self.max_orphans {
                return Err(format!(
                    "too many orphan blocks waiting (limit {})",
                    self.max_orphans
                ));
            }
            self.orphans.entry(parent).or_default().push(header);
            return Ok(Inserted::Orphan);
        }
        let old_head = self.head;
        self.connect(header)?;
        if self.head == old_head {
            return Ok(Inserted::SideFork);
        }
        // Compute the reorganisation between the old and the new head.
        let old_chain = self.ancestry(old_head);
        let new_chain = self.ancestry(self.head);
        let common = new_chain
            .iter()
            .find(|hash| old_chain.contains(hash))
            .copied()
            .unwrap_or(self.genesis);
        let reverted: Vec<BlockHash> = old_chain
            .iter()
            .take_while(|hash| **hash != common)
            .copied()
            .collect();
        let mut applied: Vec<BlockHash> = new_chain
            .iter()
            .take_while(|hash| **hash != common)
            .copied()
            .collect();
        applied.reverse();
        Ok(Inserted::NewHead { reverted, applied })
    }

    /// Connects a header whose parent is known, then any orphans waiting for it.
    fn connect(&mut self, header: SignedHeader) -> Result<(), String> {
        let mut queue = vec![header];
        let mut first = true;
        while let Some(header) = queue.pop() {
            let hash = header.header.hash();
            let parent = header.header.previous_digest;
            let parent_height = self.nodes[&parent].height;
            if header.header.height != parent_height + 1 {
                if first {
                    return Err(format!(
                        "height {} does not follow its parent's height {parent_height}",
                        header.header.height
                    ));
                }
                continue; // a bad orphan is dropped silently; it was never accepted
            }
            first = false;
            let height = header.header.height;
            self.nodes.insert(
                hash,
                Node {
                    header,
                    parent,
                    height,
                },
            );
            if self
                .fork_choice
                .prefer((&hash, height), (&self.head, self.nodes[&self.head].height))
            {
                self.head = hash;
            }
            if let Some(waiting) = self.orphans.remove(&hash) {
                queue.extend(waiting);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockHeader, ConsensusData};
    use weft_core::{ChainId, MerkleRoot, SigningKey};

    fn producer() -> SigningKey {
        SigningKey::from_seed(&[3; 32])
    }

    fn child(parent: &SignedHeader, salt: u64) -> SignedHeader {
        let header = BlockHeader {
            version: 1,
            chain_id: parent.header.chain_id,
            height: parent.header.height + 1,
            timestamp: parent.header.timestamp + salt,
            previous_digest: parent.header.hash(),
            merkle_root: MerkleRoot::default(),
            tx_count: 0,
            consensus: ConsensusData::default(),
            producer: producer().public_key(),
            state_root: None,
        };
        SignedHeader::seal(header, &producer())
    }

    fn genesis() -> SignedHeader {
        let header = BlockHeader {
            version: 1,
            chain_id: ChainId::from_name("tree").expect("name"),
            height: 0,
            timestamp: 0,
            previous_digest: BlockHash::default(),
            merkle_root: MerkleRoot::default(),
            tx_count: 0,
            consensus: ConsensusData::default(),
            producer: producer().public_key(),
            state_root: None,
        };
        SignedHeader::seal(header, &producer())
    }

    fn tree() -> BlockTree<ProofOfAuthority> {
        BlockTree::new(
            genesis(),
            ProofOfAuthority {
                producers: vec![producer().public_key()],
            },
        )
    }

    #[test]
    fn extends_forks_and_reorganises() {
        let mut tree = tree();
        let g = genesis();
        let a1 = child(&g, 1);
        let a2 = child(&a1, 1);
        let b1 = child(&g, 2);
        let b2 = child(&b1, 2);
        let b3 = child(&b2, 2);
        assert!(matches!(
            tree.insert(a1.clone()),
            Ok(Inserted::NewHead { .. })
        ));
        assert!(matches!(
            tree.insert(a2.clone()),
            Ok(Inserted::NewHead { .. })
        ));
        assert_eq!(tree.insert(b1.clone()), Ok(Inserted::SideFork));
        // b3 arrives before its parent: an orphan; b2 then connects both at once.
        assert_eq!(tree.insert(b3.clone()), Ok(Inserted::Orphan));
        let outcome = tree.insert(b2.clone()).expect("valid");
        assert_eq!(
            outcome,
            Inserted::NewHead {
                reverted: vec![a2.header.hash(), a1.header.hash()],
                applied: vec![b1.header.hash(), b2.header.hash(), b3.header.hash()]
            }
        );
        assert_eq!(tree.head(), (b3.header.hash(), 3));
        assert!(tree.is_canonical(&b1.header.hash()));
        assert!(!tree.is_canonical(&a1.header.hash()));
        assert_eq!(tree.canonical_chain().len(), 4);
        assert_eq!(tree.insert(b3), Ok(Inserted::Duplicate));
    }

    #[test]
    fn orphans_wait_for_their_parent() {
        let mut tree = tree();
        let g = genesis();
        let a1 = child(&g, 1);
        let a2 = child(&a1, 1);
        let a3 = child(&a2, 1);
        assert_eq!(tree.insert(a3.clone()), Ok(Inserted::Orphan));
        assert_eq!(tree.insert(a2.clone()), Ok(Inserted::Orphan));
        assert_eq!(tree.orphan_count(), 2);
        let outcome = tree.insert(a1.clone()).expect("valid");
        assert!(matches!(outcome, Inserted::NewHead { .. }));
        assert_eq!(tree.head(), (a3.header.hash(), 3));
        assert_eq!(tree.orphan_count(), 0);
    }

    #[test]
    fn refuses_unknown_producer_and_bad_height() {
        let mut tree = tree();
        let g = genesis();
        let stranger = SigningKey::from_seed(&[4; 32]);
        let mut header = child(&g, 1).header;
        header.producer = stranger.public_key();
        let error = tree
            .insert(SignedHeader::seal(header, &stranger))
            .expect_err("not a producer");
        assert!(error.contains("not an authority"), "{error}");

        let mut skipping = child(&g, 1).header;
        skipping.height = 5;
        let error = tree
            .insert(SignedHeader::seal(skipping, &producer()))
            .expect_err("height gap");
        assert!(error.contains("does not follow"), "{error}");

        let mut forged = child(&g, 1);
        forged.header.timestamp += 1; // seal no longer matches
        assert!(tree.insert(forged).is_err());
    }

    #[test]
    fn equal_height_tie_breaks_on_lower_hash() {
        let mut tree = tree();
        let g = genesis();
        let a = child(&g, 1);
        let b = child(&g, 2);
        tree.insert(a.clone()).expect("valid");
        tree.insert(b.clone()).expect("valid");
        let lower = a.header.hash().min(b.header.hash());
        assert_eq!(tree.head().0, lower);
    }
}
