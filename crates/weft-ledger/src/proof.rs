//! Inclusion proofs: a self-contained JSON document (format `weft-inclusion-proof/v1`, see
//! docs/proofs.md) holding the signed block header, the transaction and its RFC 6962 audit path.
//! [`verify`] needs nothing else: no node, no database. Whoever checks it decides which producer
//! keys they trust (by default, the key named in the header, which must have sealed it).

use serde::{Deserialize, Serialize};
use weft_core::encoding::{decode, encode};
use weft_core::{BlockHash, Hash32, PublicKey, Signature, TxId};

use crate::block::SignedHeader;
use crate::error::{LedgerError, Result};
use crate::store::{Inclusion, Store};
use crate::tx::Transaction;

pub const PROOF_FORMAT: &str = "weft-inclusion-proof/v1";
/// Largest proof document accepted, in bytes.
pub const MAX_PROOF_BYTES: usize = 4 << 20;

/// The proof document. `signed_header` and `transaction` are canonical bytes in hex; the other
/// fields repeat what they contain for readers, and are checked against them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub format: String,
    pub chain_id: String,
    pub height: u64,
    pub block_hash: String,
    pub tx_id: String,
    pub index: u32,
    pub tree_size: u32,
    pub signed_header: String,
    pub transaction: String,
    pub audit_path: Vec<String>,
}

/// What a valid proof proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedInclusion {
    pub tx_id: TxId,
    pub block_hash: BlockHash,
    pub height: u64,
    pub index: u32,
    pub producer: PublicKey,
    pub transaction: Transaction,
}

/// Builds the proof for `tx_id`.
pub fn build<S: Store>(store: &S, tx_id: &TxId) -> Result<InclusionProof> {
    let Inclusion {
        tx,
        position,
        signed,
        path,
    } = store.inclusion(tx_id)?.ok_or_else(|| {
        LedgerError::NotFound(format!("transaction {tx_id} is not on this ledger"))
    })?;
    Ok(InclusionProof {
        format: PROOF_FORMAT.into(),
        chain_id: signed.header.chain_id.to_hex(),
        height: position.height,
        block_hash: signed.header.hash().to_hex(),
        tx_id: tx_id.to_hex(),
        index: position.index,
        tree_size: signed.header.tx_count,
        signed_header: hex::encode(encode(&signed)),
        transaction: hex::encode(encode(&tx)),
        audit_path: path.iter().map(Hash32::to_hex).collect(),
    })
}

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

fn hex_field(name: &str, value: &str, max: usize) -> Result<Vec<u8>> {
    if value.len() > max * 2 {
        return Err(invalid(format!("{name} is longer than {max} bytes")));
    }
    hex::decode(value).map_err(|error| invalid(format!("{name} is not hex: {error}")))
}

/// A proof whose structure and Merkle path are checked; its two signatures are not yet.
struct Structured {
    signed: SignedHeader,
    seal: Signature,
    verified: VerifiedInclusion,
}

/// Checks everything but the signatures: the format, the decoding, the fields against the
/// signed header and transaction, the trusted producer, and the audit path to `merkle_root`.
fn check_structure(proof: &InclusionProof, trusted: Option<&[PublicKey]>) -> Result<Structured> {
    use weft_core::encoding::Canonical;
    if proof.format != PROOF_FORMAT {
        return Err(invalid(format!(
            "format is {:?}, expected {PROOF_FORMAT:?}",
            proof.format
        )));
    }
    let signed: SignedHeader = decode(&hex_field(
        "signed_header",
        &proof.signed_header,
        SignedHeader::MAX_ENCODED,
    )?)
    .map_err(|error| invalid(format!("signed_header: {error}")))?;
    let tx: Transaction = decode(&hex_field(
        "transaction",
        &proof.transaction,
        Transaction::MAX_ENCODED,
    )?)
    .map_err(|error| invalid(format!("transaction: {error}")))?;
    let header = &signed.header;
    let tx_id = tx.id();
    let block_hash = header.hash();
    let claims = [
        ("tx_id", proof.tx_id == tx_id.to_hex()),
        ("block_hash", proof.block_hash == block_hash.to_hex()),
        ("height", proof.height == header.height),
        ("chain_id", proof.chain_id == header.chain_id.to_hex()),
        ("tree_size", proof.tree_size == header.tx_count),
    ];
    if let Some((field, _)) = claims.iter().find(|(_, matches)| !matches) {
        return Err(invalid(format!(
            "{field} does not match the signed header and transaction"
        )));
    }
    if tx.header.chain_id != header.chain_id {
        return Err(invalid(
            "the transaction is for another chain than the block",
        ));
    }
    let seal = signed
        .producer_seal()
        .map_err(|error| invalid(format!("block seal: {error}")))?
        .signature;
    if let Some(trusted) = trusted
        && !trusted.contains(&header.producer)
    {
        return Err(invalid(format!(
            "block producer {} is not among the trusted keys",
            header.producer
        )));
    }
    if proof.audit_path.len() > 64 {
        return Err(invalid("audit_path has more than 64 entries"));
    }
    let path = proof
        .audit_path
        .iter()
        .map(|entry| {
            Hash32::from_hex("audit_path entry", entry).map_err(|error| invalid(error.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let leaf = tx.leaf_hash(&tx_id);
    if !weft_core::merkle::verify_inclusion(
        &leaf,
        u64::from(proof.index),
        u64::from(header.tx_count),
        &path,
        &header.merkle_root.0,
    ) {
        return Err(invalid(
            "the audit path does not lead from the transaction to the block's merkle_root",
        ));
    }
    let verified = VerifiedInclusion {
        tx_id,
        block_hash,
        height: header.height,
        index: proof.index,
        producer: header.producer,
        transaction: tx,
    };
    Ok(Structured {
        signed,
        seal,
        verified,
    })
}

/// Checks both signatures of one structured proof, one by one, naming the one that fails.
fn check_signatures(structured: &Structured) -> Result<()> {
    structured
        .verified
        .transaction
        .verify_signature()
        .map_err(|error| invalid(format!("transaction signature: {error}")))?;
    structured
        .signed
        .verify_producer()
        .map_err(|error| invalid(format!("block seal: {error}")))
}

/// Checks a proof offline. With `trusted`, the block producer must be one of those keys.
pub fn verify(proof: &InclusionProof, trusted: Option<&[PublicKey]>) -> Result<VerifiedInclusion> {
    let structured = check_structure(proof, trusted)?;
    check_signatures(&structured)?;
    Ok(structured.verified)
}

/// Checks only the inclusion itself: that the audit path leads from the transaction to the
/// header's `merkle_root` (and the fields agree), without the two signature checks. For
/// measuring, and for callers that verified the header and transaction signatures already.
pub fn verify_inclusion_only(
    proof: &InclusionProof,
    trusted: Option<&[PublicKey]>,
) -> Result<VerifiedInclusion> {
    check_structure(proof, trusted).map(|structured| structured.verified)
}

/// Checks many proofs, with the same verdicts as [`verify`] on each, but the signatures of all
/// of them in Ed25519 batches, and each distinct block header's seal once: several times faster
/// per proof for an auditor checking a stack of them.
pub fn verify_many(
    proofs: &[InclusionProof],
    trusted: Option<&[PublicKey]>,
) -> Vec<Result<VerifiedInclusion>> {
    use weft_core::keys::{BatchItem, Namespace, verify_batch};
    const CHUNK: usize = 1024;
    let structured: Vec<Result<Structured>> = proofs
        .iter()
        .map(|proof| check_structure(proof, trusted))
        .collect();
    let good: Vec<usize> = (0..structured.len())
        .filter(|&index| structured[index].is_ok())
        .collect();
    // Signature batches of CHUNK proofs, spread over the cores.
    let check_chunk = |chunk: &[usize]| -> Vec<(usize, LedgerError)> {
        let parts: Vec<&Structured> = chunk
            .iter()
            .filter_map(|&index| structured[index].as_ref().ok())
            .collect();
        // A header is checked once per distinct (header, seal) pair: two proofs may carry the
        // same header with different seal bytes, and each seal must verify.
        let mut seen_headers = std::collections::HashSet::new();
        let mut items: Vec<BatchItem<'_>> = Vec::with_capacity(parts.len() * 2);
        for part in &parts {
            items.push(BatchItem {
                key: &part.verified.transaction.header.key,
                namespace: Namespace::Transaction,
                message: part.verified.tx_id.as_bytes(),
                signature: &part.verified.transaction.signature,
            });
            if seen_headers.insert((part.verified.block_hash, part.seal.0)) {
                items.push(BatchItem {
                    key: &part.signed.header.producer,
                    namespace: Namespace::Block,
                    message: part.verified.block_hash.as_bytes(),
                    signature: &part.seal,
                });
            }
        }
        if verify_batch(&items).is_ok() {
            return Vec::new();
        }
        // Name the culprits one by one.
        chunk
            .iter()
            .zip(&parts)
            .filter_map(|(&index, part)| check_signatures(part).err().map(|error| (index, error)))
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8);
    let per_thread = good.len().div_ceil(threads).max(1);
    let check_chunk = &check_chunk;
    let mut failed: std::collections::HashMap<usize, LedgerError> = std::thread::scope(|scope| {
        let handles: Vec<_> = good
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || part.chunks(CHUNK).flat_map(check_chunk).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("signature checks do not panic"))
            .collect()
    });
    structured
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            let structured = result?;
            match failed.remove(&index) {
                Some(error) => Err(error),
                None => Ok(structured.verified),
            }
        })
        .collect()
}

/// Parses a proof document from untrusted bytes.
pub fn parse(bytes: &[u8]) -> Result<InclusionProof> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(invalid(format!(
            "proof is {} bytes, more than the limit of {MAX_PROOF_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|error| invalid(format!("not a proof document: {error}")))
}
