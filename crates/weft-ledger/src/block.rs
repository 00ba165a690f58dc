//! Blocks: a header with the safe-UR-chain fields (`timestamp`, `previous_digest`,
//! difficulty/nonce consensus data, `height`, `merkle_root`) plus chain id, version, transaction
//! count and producer; the producer's signature over the block hash; and the ordered
//! transactions, whose RFC 6962 tree gives `merkle_root`.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::encoding::{Canonical, encode};
use weft_core::{
    BlockHash, ChainId, CoreError, Hash32, MerkleRoot, Namespace, PublicKey, Signature, SigningKey,
    TxId,
};

use crate::tx::Transaction;

/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 100_000;
/// Largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 128 << 20;

/// Consensus data of the header. Proof of authority leaves both zero; they are kept so the
/// header has the seed's layout and other engines can use them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize,
)]
pub struct ConsensusData {
    pub difficulty: u32,
    pub nonce: u64,
}

/// The header version that commits to the rule state (`state_root`); version 1 headers (written
/// before state roots) have none and are still read.
pub const HEADER_VERSION: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub version: u8,
    pub chain_id: ChainId,
    pub height: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub previous_digest: BlockHash,
    pub merkle_root: MerkleRoot,
    pub tx_count: u32,
    pub consensus: ConsensusData,
    pub producer: PublicKey,
    /// The root of the rule state after this block ([`crate::commitment`]); present from
    /// version 2 on, encoded after every other field.
    pub state_root: Option<Hash32>,
}

impl BorshSerialize for BlockHeader {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.version.serialize(writer)?;
        self.chain_id.serialize(writer)?;
        self.height.serialize(writer)?;
        self.timestamp.serialize(writer)?;
        self.previous_digest.serialize(writer)?;
        self.merkle_root.serialize(writer)?;
        self.tx_count.serialize(writer)?;
        self.consensus.serialize(writer)?;
        self.producer.serialize(writer)?;
        if let Some(root) = &self.state_root {
            root.serialize(writer)?;
        }
        Ok(())
    }
}

impl BorshDeserialize for BlockHeader {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let version = u8::deserialize_reader(reader)?;
        let chain_id = ChainId::deserialize_reader(reader)?;
        let height = u64::deserialize_reader(reader)?;
        let timestamp = u64::deserialize_reader(reader)?;
        let previous_digest = BlockHash::deserialize_reader(reader)?;
        let merkle_root = MerkleRoot::deserialize_reader(reader)?;
        let tx_count = u32::deserialize_reader(reader)?;
        let consensus = ConsensusData::deserialize_reader(reader)?;
        let producer = PublicKey::deserialize_reader(reader)?;
        let state_root = if version >= HEADER_VERSION {
            Some(Hash32::deserialize_reader(reader)?)
        } else {
            None
        };
        Ok(BlockHeader {
            version,
            chain_id,
            height,
            timestamp,
            previous_digest,
            merkle_root,
            tx_count,
            consensus,
            producer,
            state_root,
        })
    }
}

impl Canonical for BlockHeader {
    const WHAT: &'static str = "block header";
    const MAX_ENCODED: usize = 256;
    fn validate(&self) -> Result<(), CoreError> {
        match (self.version, &self.state_root) {
            (1, None) | (HEADER_VERSION, Some(_)) => Ok(()),
            (1 | HEADER_VERSION, _) => Err(CoreError::InvalidField {
                field: "block header",
                reason: format!(
                    "a version {} header {} a state root",
                    self.version,
                    if self.state_root.is_some() {
                        "cannot have"
                    } else {
                        "must have"
                    }
                ),
            }),
            (version, _) => Err(CoreError::InvalidField {
                field: "block header version",
                reason: format!(
                    "format version {version} is not supported (this build reads versions 1 and {HEADER_VERSION})"
                ),
            }),
        }
    }
}

impl BlockHeader {
    pub fn hash(&self) -> BlockHash {
        BlockHash::of_header_bytes(&encode(self))
    }
}

/// One signature over the block hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockSignature {
    pub key: PublicKey,
    pub signature: Signature,
}

/// A header with its signatures: what a thin node keeps, and what an inclusion proof carries.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedHeader {
    pub header: BlockHeader,
    pub signatures: Vec<BlockSignature>,
}

impl Canonical for SignedHeader {
    const WHAT: &'static str = "signed block header";
    const MAX_ENCODED: usize = 256 + 4 + 96 * 64;
    fn validate(&self) -> Result<(), CoreError> {
        self.header.validate()?;
        weft_core::encoding::check_count("block signatures", self.signatures.len(), 1, 64)
    }
}

impl SignedHeader {
    /// Seals a header with the producer's key.
    pub fn seal(header: BlockHeader, producer: &SigningKey) -> Self {
        let signature = producer.sign(Namespace::Block, header.hash().as_bytes());
        SignedHeader {
            header,
            signatures: vec![BlockSignature {
                key: producer.public_key(),
                signature,
            }],
        }
    }

    /// Checks that the producer named in the header signed the block hash.
    /// The producer's signature among the header's signatures.
    pub fn producer_seal(&self) -> Result<&BlockSignature, CoreError> {
        self.signatures
            .iter()
            .find(|signature| signature.key == self.header.producer)
            .ok_or_else(|| CoreError::InvalidField {
                field: "block signatures",
                reason: "no signature by the producer".into(),
            })
    }

    pub fn verify_producer(&self) -> Result<(), CoreError> {
        let hash = self.header.hash();
        let seal = self.producer_seal()?;
        seal.key
            .verify(Namespace::Block, hash.as_bytes(), &seal.signature)
    }
}

/// A complete block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    pub signed: SignedHeader,
    pub transactions: Vec<Transaction>,
}

impl Canonical for Block {
    const WHAT: &'static str = "block";
    const MAX_ENCODED: usize = MAX_BLOCK_BYTES;
    fn validate(&self) -> Result<(), CoreError> {
        self.signed.validate()?;
        weft_core::encoding::check_count(
            "block transactions",
            self.transactions.len(),
            0,
            MAX_BLOCK_TXS,
        )?;
        if self.transactions.len() as u64 != u64::from(self.signed.header.tx_count) {
            return Err(CoreError::InvalidField {
                field: "block transactions",
                reason: format!(
                    "{} present but the header says {}",
                    self.transactions.len(),
                    self.signed.header.tx_count
                ),
            });
        }
        self.transactions.iter().try_for_each(Canonical::validate)
    }
}

/// Levels of the tree per storage tile. Six levels make a tile of at most 126 hashes, which
/// fits one storage page; measured against eight (docs/benchmarks.md).
pub const TILE_LEVELS: usize = 6;
/// Nodes of a tile's lowest level.
pub const TILE_WIDTH: usize = 1 << TILE_LEVELS;

/// Where a tile sits in a block's tree: its tier (levels `L·tier..L·tier+L`) and its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileKey {
    pub tier: u8,
    pub tile: u32,
}

/// All levels of a block's Merkle tree, leaves first, so proofs are read, not recomputed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleLevels {
    pub levels: Vec<Vec<Hash32>>,
}

impl MerkleLevels {
    pub fn build(leaves: Vec<Hash32>) -> Self {
        MerkleLevels {
            levels: weft_core::merkle::levels(leaves),
        }
    }

    pub fn root(&self) -> MerkleRoot {
        match self.levels.last() {
            Some(top) if top.len() == 1 => MerkleRoot(top[0]),
            _ => MerkleRoot(weft_core::merkle::empty_root()),
        }
    }

    /// Flattened for storage: every level, leaves first.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.levels
            .iter()
            .flatten()
            .flat_map(|hash| hash.0)
            .collect()
    }

    /// The tree cut into tiles for storage, so that a proof reads a few small rows instead of
    /// the whole tree. With `L` = [`TILE_LEVELS`], tier `t` holds levels `Lt..Lt+L`; its tile
    /// `i` holds, from each of those levels in turn, the nodes under node `i` of level `Lt+L`
    /// (at most 64 + 32 + … + 2 hashes, about one 4 KiB page). Siblings always share a tile,
    /// so a path reads one tile per tier: three for a block of 10,000 transactions.
    pub fn tiles(&self) -> Vec<(TileKey, Vec<u8>)> {
        let mut out = Vec::new();
        for (tier, levels) in self.levels.chunks(TILE_LEVELS).enumerate() {
            // The top level of the tree (the root alone) is never part of a path.
            let base_len = levels[0].len();
            if base_len < 2 {
                break;
            }
            for tile in 0..base_len.div_ceil(TILE_WIDTH) {
                let mut bytes = Vec::new();
                for (depth, level) in levels.iter().enumerate() {
                    let width = TILE_WIDTH >> depth;
                    let start = (tile * width).min(level.len());
                    let end = ((tile + 1) * width).min(level.len());
                    bytes.extend(level[start..end].iter().flat_map(|hash| hash.0));
                }
                out.push((
                    TileKey {
                        tier: tier as u8,
                        tile: tile as u32,
                    },
                    bytes,
                ));
            }
        }
        out
    }

    /// The audit path of leaf `index` in a tree of `size` leaves stored as [`tiles`]; `tile`
    /// fetches one tile's bytes, or `None` if it is missing (then so is the path).
    ///
    /// [`tiles`]: MerkleLevels::tiles
    pub fn path_from_tiles<E>(
        size: usize,
        index: usize,
        mut tile: impl FnMut(TileKey) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Option<Vec<Hash32>>, E> {
        if index >= size {
            return Ok(None);
        }
        let mut path = Vec::new();
        let mut level_len = size;
        let mut position = index;
        let mut tier = 0u8;
        while level_len > 1 {
            let tile_index = position / TILE_WIDTH;
            let Some(bytes) = tile(TileKey {
                tier,
                tile: tile_index as u32,
            })?
            else {
                return Ok(None);
            };
            let mut offset = 0usize;
            for depth in 0..TILE_LEVELS {
                if level_len <= 1 {
                    break;
                }
                let width = TILE_WIDTH >> depth;
                let start = (tile_index * width).min(level_len);
                let end = ((tile_index + 1) * width).min(level_len);
                let sibling = position ^ 1;
                if sibling < level_len {
                    let at = offset + (sibling - start) * 32;
                    let Some(hash) = bytes.get(at..at + 32) else {
                        return Ok(None);
                    };
                    path.push(Hash32(hash.try_into().expect("32 bytes")));
                }
                offset += (end - start) * 32;
                level_len = level_len.div_ceil(2);
                position /= 2;
            }
            tier += 1;
        }
        Ok(Some(path))
    }

    /// The audit path of leaf `index` in a stored, flattened tree of `size` leaves.
    pub fn path_from_bytes(bytes: &[u8], size: usize, index: usize) -> Option<Vec<Hash32>> {
        if index >= size {
            return None;
        }
        let mut path = Vec::new();
        let mut level_start = 0usize;
        let mut level_len = size;
        let mut position = index;
        while level_len > 1 {
            let sibling = position ^ 1;
            if sibling < level_len {
                let offset = (level_start + sibling) * 32;
                let mut hash = [0u8; 32];
                hash.copy_from_slice(bytes.get(offset..offset + 32)?);
                path.push(Hash32(hash));
            }
            level_start += level_len;
            level_len = level_len.div_ceil(2);
            position /= 2;
        }
        Some(path)
    }
}

/// Builds the tree of `transactions` (with precomputed ids).
pub fn merkle_levels(transactions: &[Transaction], ids: &[TxId]) -> MerkleLevels {
    MerkleLevels::build(
        transactions
            .iter()
            .zip(ids)
            .map(|(tx, id)| tx.leaf_hash(id))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_equal_computed_paths() {
        for size in (1..40usize).chain([
            TILE_WIDTH - 1,
            TILE_WIDTH,
            TILE_WIDTH + 1,
            2 * TILE_WIDTH + 1,
            1000,
            TILE_WIDTH * TILE_WIDTH + 1,
        ]) {
            let leaves: Vec<Hash32> = (0..size)
                .map(|i| weft_core::merkle::leaf_hash(&i.to_le_bytes()))
                .collect();
            let levels = MerkleLevels::build(leaves.clone());
            assert_eq!(levels.root().0, weft_core::merkle::root(&leaves));
            let bytes = levels.to_bytes();
            let tiles: std::collections::HashMap<TileKey, Vec<u8>> =
                levels.tiles().into_iter().collect();
            // Every leaf of the smaller trees; a spread of leaves (and the last) of the largest.
            let step = if size > 5000 { 61 } else { 1 };
            for index in (0..size).step_by(step).chain([size - 1]) {
                let tiled = MerkleLevels::path_from_tiles::<()>(size, index, |key| {
                    Ok(tiles.get(&key).cloned())
                })
                .expect("a map lookup cannot fail");
                let flat = MerkleLevels::path_from_bytes(&bytes, size, index);
                assert_eq!(tiled, flat, "tiles: size {size} index {index}");
                // The reference recomputes the tree per leaf: every leaf of small trees, a few
                // of the large ones.
                if size < 64 || index % 997 == 0 || index == size - 1 {
                    assert_eq!(
                        flat,
                        weft_core::merkle::inclusion_proof(&leaves, index),
                        "size {size} index {index}"
                    );
                }
            }
            assert_eq!(
                MerkleLevels::path_from_tiles::<()>(size, size, |key| Ok(tiles.get(&key).cloned())),
                Ok(None),
                "a leaf past the end has no path"
            );
        }
    }
}
