//! Trust roots (docs/proofs.md, "Trust roots"): what a verifier pins before it believes any
//! answer about a chain — the chain's name and id, the hash of its block 0, and the keys that
//! make its blocks final from genesis on (the producer of a single node, or the validators of a
//! network). Later changes of validators are not part of the root: each one travels with the
//! proofs that need it, certified by the validators in effect before it (see [`crate::proof`]).
//!
//! The document (`weft-trust-root/v1`, JSON) carries block 0 itself, so every field is
//! recomputed from it when the root is read: a hand-edited key or hash is refused, and a root is
//! as good as the genesis hash its holder confirmed out of band.

use serde::{Deserialize, Serialize};
use weft_core::encoding::{decode, encode};
use weft_core::model::{Genesis, Payload};
use weft_core::{BlockHash, ChainId, PublicKey};

use crate::block::Block;
use crate::error::{LedgerError, Result};

pub const TRUST_FORMAT: &str = "weft-trust-root/v1";
/// Largest trust root document accepted, in bytes.
pub const MAX_TRUST_BYTES: usize = 64 << 10;

/// A trust root as it travels (`weft trust export`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustDocument {
    pub format: String,
    /// The chain's name.
    pub chain: String,
    pub chain_id: String,
    /// Hash of block 0: what a holder confirms out of band.
    pub genesis_hash: String,
    /// The keys that make blocks final from genesis on: one producer, or the validators of a
    /// network (a quorum of them certifies each block).
    pub validators: Vec<String>,
    /// The keys that may register organisations and change the validators.
    pub authorities: Vec<String>,
    /// Block 0, canonical encoding, hex: every field above is recomputed from it.
    pub genesis: String,
}

/// A checked trust root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    pub chain: String,
    pub chain_id: ChainId,
    pub genesis_hash: BlockHash,
    pub validators: Vec<PublicKey>,
    pub authorities: Vec<PublicKey>,
    /// How far a transaction's time may be from its block's, in ms (the genesis's).
    pub time_window_ms: u64,
    genesis: Block,
}

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

impl TrustRoot {
    /// The trust root of the chain whose block 0 is `genesis`: its single transaction must be
    /// the genesis payload, at height 0, on the chain its name gives.
    pub fn from_genesis(genesis: &Block) -> Result<Self> {
        let header = &genesis.signed.header;
        if header.height != 0 {
            return Err(invalid(format!(
                "block 0 is at height {}, not 0",
                header.height
            )));
        }
        let Some(Payload::Genesis(payload)) = genesis
            .transactions
            .first()
            .and_then(|tx| tx.payload.as_ref())
        else {
            return Err(invalid(
                "block 0 does not begin with the chain's genesis transaction",
            ));
        };
        let Genesis {
            chain_name,
            authorities,
            producers,
            time_window_ms,
        } = payload;
        let chain_id = ChainId::from_name(chain_name)
            .map_err(|error| invalid(format!("the genesis chain name: {error}")))?;
        if header.chain_id != chain_id {
            return Err(invalid(format!(
                "block 0 is on chain {}, but its genesis names {chain_name:?} ({chain_id})",
                header.chain_id
            )));
        }
        if producers.is_empty() {
            return Err(invalid("the genesis names no producer or validator"));
        }
        genesis
            .signed
            .verify_producer()
            .map_err(|error| invalid(format!("block 0's seal: {error}")))?;
        // The hash covers the header only: the transactions must be the ones it commits to, and
        // the genesis transaction signed by one of the authorities it names.
        let ids: Vec<weft_core::TxId> = genesis.transactions.iter().map(|tx| tx.id()).collect();
        if crate::block::merkle_levels(&genesis.transactions, &ids).root() != header.merkle_root
            || genesis.transactions.len() as u64 != u64::from(header.tx_count)
        {
            return Err(invalid(
                "block 0's transactions are not the ones its header commits to",
            ));
        }
        let genesis_tx = &genesis.transactions[0];
        {
            use weft_core::encoding::Canonical as _;
            genesis_tx
                .validate()
                .map_err(|error| invalid(format!("block 0's genesis transaction: {error}")))?;
        }
        if genesis_tx.header.chain_id != chain_id
            || genesis_tx.header.signer != crate::tx::Signer::Authority
            || !authorities.contains(&genesis_tx.header.key)
            || genesis_tx.verify_signature().is_err()
        {
            return Err(invalid(
                "block 0's genesis transaction is not signed by an authority it names",
            ));
        }
        Ok(TrustRoot {
            chain: chain_name.clone(),
            chain_id,
            genesis_hash: header.hash(),
            validators: producers.clone(),
            authorities: authorities.clone(),
            time_window_ms: *time_window_ms,
            genesis: genesis.clone(),
        })
    }

    /// Reads a trust root from untrusted bytes: every field must equal what block 0 gives.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_TRUST_BYTES {
            return Err(invalid(format!(
                "a trust root is at most {MAX_TRUST_BYTES} bytes; this one is {}",
                bytes.len()
            )));
        }
        let document: TrustDocument = serde_json::from_slice(bytes)
            .map_err(|error| invalid(format!("not a trust root document: {error}")))?;
        if document.format != TRUST_FORMAT {
            return Err(invalid(format!(
                "format is {:?}, expected {TRUST_FORMAT:?}",
                document.format
            )));
        }
        let block = genesis_block(&document.genesis)?;
        let root = TrustRoot::from_genesis(&block)?;
        let derived = root.document();
        let fields = [
            ("chain", document.chain == derived.chain),
            ("chain_id", document.chain_id == derived.chain_id),
            (
                "genesis_hash",
                document.genesis_hash == derived.genesis_hash,
            ),
            ("validators", document.validators == derived.validators),
            ("authorities", document.authorities == derived.authorities),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, same)| !same) {
            return Err(invalid(format!(
                "{field} does not match block 0 of the trust root"
            )));
        }
        Ok(root)
    }

    /// The document form (`weft trust export`).
    pub fn document(&self) -> TrustDocument {
        TrustDocument {
            format: TRUST_FORMAT.into(),
            chain: self.chain.clone(),
            chain_id: self.chain_id.to_hex(),
            genesis_hash: self.genesis_hash.to_hex(),
            validators: self.validators.iter().map(PublicKey::to_hex).collect(),
            authorities: self.authorities.iter().map(PublicKey::to_hex).collect(),
            genesis: hex::encode(encode(&self.genesis)),
        }
    }

    /// Checks that `hash` (hex, as a holder was told it) is block 0's hash.
    pub fn confirm(&self, hash: &str) -> Result<()> {
        if hash
            .trim()
            .eq_ignore_ascii_case(&self.genesis_hash.to_hex())
        {
            Ok(())
        } else {
            Err(invalid(format!(
                "block 0 of chain {:?} has hash {}, not the {} given",
                self.chain,
                self.genesis_hash,
                hash.trim()
            )))
        }
    }
}

/// Block 0 from its hex encoding (a trust root's or a join document's).
pub fn genesis_block(hex_text: &str) -> Result<Block> {
    use weft_core::encoding::Canonical as _;
    if hex_text.len() > 2 * MAX_TRUST_BYTES {
        return Err(invalid("block 0 is larger than a trust root may be"));
    }
    let bytes =
        hex::decode(hex_text).map_err(|error| invalid(format!("block 0 is not hex: {error}")))?;
    let block: Block = decode(&bytes).map_err(|error| invalid(format!("block 0: {error}")))?;
    block
        .validate()
        .map_err(|error| invalid(format!("block 0: {error}")))?;
    Ok(block)
}
