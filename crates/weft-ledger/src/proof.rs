//! Inclusion proofs: a self-contained JSON document (format `weft-inclusion-proof/v2`, see
//! docs/proofs.md) holding the signed block header, the transaction, its RFC 6962 audit path,
//! and what makes the block final: the seal of the chain's single producer, or the finalization
//! certificate of a quorum of the network's validators in effect at that height (with the
//! headers from the block to the certified one), plus every change of validators from genesis
//! to it, each with its own proof. [`verify`] needs nothing else but the verifier's
//! [`TrustRoot`]: no node, no database.

use serde::{Deserialize, Serialize};
use weft_core::encoding::{decode, encode};
use weft_core::model::Payload;
use weft_core::{BlockHash, ChainId, Hash32, PublicKey, Signature, TxId};

use crate::block::SignedHeader;
use crate::error::{LedgerError, Result};
use crate::state::{Schedule, StateView as _, ValidatorChange, schedule_change};
use crate::store::{Inclusion, Store};
use crate::trust::TrustRoot;
use crate::tx::{Signer, Transaction};

pub const PROOF_FORMAT: &str = "weft-inclusion-proof/v2";
/// The first format: no finality beyond the producer's seal. Still read, and valid only for a
/// block of an epoch with a single producer.
pub const PROOF_FORMAT_V1: &str = "weft-inclusion-proof/v1";
/// Largest proof document accepted, in bytes.
pub const MAX_PROOF_BYTES: usize = 4 << 20;
/// Most headers between a proof's block and the block its certificate finalizes.
pub const MAX_FINALITY_HEADERS: u64 = 4096;
/// Most validator changes a proof carries.
pub const MAX_VALIDATOR_CHANGES: usize = 256;
/// Largest finalization certificate, in bytes.
const MAX_CERTIFICATE_BYTES: usize = 64 << 10;

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
    /// What makes the block final (absent in v1 documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finality: Option<FinalityProof>,
    /// Every change of validators in effect at `finality.certified_height`, oldest first, each
    /// proven final by the validators before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validator_changes: Vec<ValidatorChangeProof>,
}

/// What makes a proof's block final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalityProof {
    /// The consensus epoch of the block (0 from genesis, one more at each validator change).
    pub epoch: u64,
    /// The height of the block the certificate finalizes: the proof's, or a later one of the
    /// same epoch (a block is final when a block after it is).
    pub certified_height: u64,
    /// The signed headers after the proof's block, up to `certified_height`, hex.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// The finalization certificate of `certified_height`, hex; empty when the epoch has one
    /// producer, whose seal makes its blocks final.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate: String,
}

/// A change of validators, with the proof of the transaction that scheduled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorChangeProof {
    pub from_height: u64,
    pub validators: Vec<String>,
    pub proof: InclusionProof,
}

/// Checks a consensus finalization certificate. weft-ledger knows no consensus engine: the
/// node's network code implements this (`weft_node::net::finality`).
pub trait CertificateCheck {
    /// Does `certificate` finalize `block` in `epoch` of chain `chain_id`, signed by a quorum of
    /// `validators`? The error says why not.
    fn check(
        &self,
        chain_id: &ChainId,
        epoch: u64,
        validators: &[PublicKey],
        block: &BlockHash,
        certificate: &[u8],
    ) -> std::result::Result<(), String>;
}

/// A verifier that checks producer seals only: any block that needs a certificate is refused.
#[derive(Debug, Clone, Copy)]
pub struct SealsOnly;

impl CertificateCheck for SealsOnly {
    fn check(
        &self,
        _: &ChainId,
        _: u64,
        _: &[PublicKey],
        _: &BlockHash,
        _: &[u8],
    ) -> std::result::Result<(), String> {
        Err("this verifier cannot check consensus certificates".into())
    }
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
    /// The epoch of the block, and how it is final.
    pub epoch: u64,
    pub finality: Finality,
}

/// How a verified block is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finality {
    /// Sealed by the single producer of its epoch.
    Sealed { producer: PublicKey },
    /// A quorum of the epoch's `validators` finalized the block at `certified_height`.
    Certified {
        certified_height: u64,
        validators: usize,
    },
}

impl Finality {
    /// For reports: `sealed` or `certified`.
    pub fn kind(&self) -> &'static str {
        match self {
            Finality::Sealed { .. } => "sealed",
            Finality::Certified { .. } => "certified",
        }
    }
}

/// Builds the proof for `tx_id`: the transaction's inclusion, its block's finality, and the
/// validator changes in effect up to the certified block.
pub fn build<S: Store>(store: &S, tx_id: &TxId) -> Result<InclusionProof> {
    let schedule = store.snapshot()?.schedule()?;
    let mut proof = build_one(store, &schedule, tx_id)?;
    let certified = proof
        .finality
        .as_ref()
        .map_or(proof.height, |finality| finality.certified_height);
    proof.validator_changes = changes_through(store, &schedule, certified)?;
    Ok(proof)
}

/// Every validator change in effect at `height`, each with the proof of the transaction that
/// scheduled it: what a verifier who holds only the trust root needs to know the validators of
/// `height` ([`checked_changes`]).
pub fn changes_through<S: Store>(
    store: &S,
    schedule: &Schedule,
    height: u64,
) -> Result<Vec<ValidatorChangeProof>> {
    schedule
        .changes
        .iter()
        .take_while(|change| change.from_height <= height)
        .map(|change| {
            let scheduling = store.tx_at(change.scheduled_at)?.ok_or_else(|| {
                LedgerError::Corrupt(format!(
                    "the transaction at {:?} that scheduled validators from height {} is missing",
                    change.scheduled_at, change.from_height
                ))
            })?;
            Ok(ValidatorChangeProof {
                from_height: change.from_height,
                validators: change.validators.iter().map(PublicKey::to_hex).collect(),
                proof: build_one(store, schedule, &scheduling.id())?,
            })
        })
        .collect()
}

/// One transaction's inclusion and its block's finality, without validator changes.
fn build_one<S: Store>(store: &S, schedule: &Schedule, tx_id: &TxId) -> Result<InclusionProof> {
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
        finality: Some(finality_of(store, schedule, position.height)?),
        validator_changes: Vec::new(),
    })
}

/// What makes block `height` final: nothing beyond its seal in an epoch of one producer; else
/// the first certificate this node holds at or after it within its epoch, with the headers
/// between.
pub fn finality_of<S: Store>(store: &S, schedule: &Schedule, height: u64) -> Result<FinalityProof> {
    let epoch = schedule.epoch_of(height);
    if schedule.validators(epoch).len() <= 1 {
        return Ok(FinalityProof {
            epoch,
            certified_height: height,
            headers: Vec::new(),
            certificate: String::new(),
        });
    }
    let last = schedule
        .end(epoch)
        .unwrap_or(u64::MAX)
        .min(height.saturating_add(MAX_FINALITY_HEADERS));
    let (certified, certificate) = store.first_certificate_in(height, last)?.ok_or_else(|| {
        LedgerError::NotFound(format!(
            "no finality certificate of block {height} (or of a block after it in its epoch) is \
             kept on this node yet; ask a validator, or again once the next block is final"
        ))
    })?;
    let headers = (height + 1..=certified)
        .map(|at| {
            store
                .signed_header(at)?
                .map(|signed| hex::encode(encode(&signed)))
                .ok_or_else(|| LedgerError::Corrupt(format!("block header {at} is missing")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FinalityProof {
        epoch,
        certified_height: certified,
        headers,
        certificate: hex::encode(certificate),
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

/// Checks everything but the signatures and the finality: the format, the decoding, the fields
/// against the signed header and transaction, the chain (the trust root's), that the producer
/// is a validator of the block's epoch, and the audit path to `merkle_root`.
fn check_structure(
    proof: &InclusionProof,
    root: &TrustRoot,
    schedule: &Schedule,
) -> Result<Structured> {
    use weft_core::encoding::Canonical;
    if proof.format != PROOF_FORMAT && proof.format != PROOF_FORMAT_V1 {
        return Err(invalid(format!(
            "format is {:?}, expected {PROOF_FORMAT:?}",
            proof.format
        )));
    }
    if proof.chain_id != root.chain_id.to_hex() {
        return Err(invalid(format!(
            "the proof is for chain {}, not chain {:?} ({}) of the trust root",
            proof.chain_id, root.chain, root.chain_id
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
    if header.height == 0 && block_hash != root.genesis_hash {
        return Err(invalid(format!(
            "block 0 has hash {block_hash}, not the trust root's {}",
            root.genesis_hash
        )));
    }
    let seal = signed
        .producer_seal()
        .map_err(|error| invalid(format!("block seal: {error}")))?
        .signature;
    let epoch = schedule.epoch_of(header.height);
    if header.height > 0 && !schedule.validators(epoch).contains(&header.producer) {
        return Err(invalid(format!(
            "block producer {} is not a validator of chain {:?} at height {} (epoch {epoch} of \
             the trust root and the proof's validator changes)",
            header.producer, root.chain, header.height
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
        epoch,
        finality: Finality::Sealed {
            producer: header.producer,
        },
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

/// Checks that the proof's block is final ([`check_block_final`]) and records how.
fn check_finality(
    proof: &InclusionProof,
    structured: &mut Structured,
    root: &TrustRoot,
    schedule: &Schedule,
    certificates: &dyn CertificateCheck,
) -> Result<()> {
    if let Some(finality) = check_block_final(
        &structured.signed,
        proof.finality.as_ref(),
        true,
        root,
        schedule,
        certificates,
    )? {
        structured.verified.finality = finality;
    }
    Ok(())
}

/// Checks that the block of `signed` is final on the chain of `root`: linked by `finality`'s
/// headers to the certified block, which a quorum of its epoch's validators finalized (or, in
/// an epoch of one producer, which that producer sealed). Block 0 is final by the trust root
/// itself (`None`). `seal_checked`: the block's own producer seal was verified already.
pub fn check_block_final(
    signed: &SignedHeader,
    finality: Option<&FinalityProof>,
    seal_checked: bool,
    root: &TrustRoot,
    schedule: &Schedule,
    certificates: &dyn CertificateCheck,
) -> Result<Option<Finality>> {
    use weft_core::encoding::Canonical;
    let height = signed.header.height;
    if signed.header.chain_id != root.chain_id {
        return Err(invalid(
            "the block is of another chain than the trust root's",
        ));
    }
    if height == 0 {
        return if signed.header.hash() == root.genesis_hash {
            Ok(None)
        } else {
            Err(invalid("block 0 is not the trust root's"))
        };
    }
    let epoch = schedule.epoch_of(height);
    let empty = FinalityProof {
        epoch,
        certified_height: height,
        headers: Vec::new(),
        certificate: String::new(),
    };
    let finality = finality.unwrap_or(&empty);
    if finality.epoch != epoch {
        return Err(invalid(format!(
            "finality names epoch {}, but block {height} is in epoch {epoch}",
            finality.epoch
        )));
    }
    let certified = finality.certified_height;
    if certified < height || certified - height > MAX_FINALITY_HEADERS {
        return Err(invalid(format!(
            "certified_height {certified} is not within {MAX_FINALITY_HEADERS} blocks after \
             block {height}"
        )));
    }
    if schedule.epoch_of(certified) != epoch {
        return Err(invalid(format!(
            "the certified block {certified} is not in epoch {epoch} of block {height}"
        )));
    }
    if finality.headers.len() as u64 != certified - height {
        return Err(invalid(format!(
            "finality carries {} headers; from block {height} to {certified} takes {}",
            finality.headers.len(),
            certified - height
        )));
    }
    // The chain of headers from the block to the certified one.
    let mut last = signed.clone();
    for (offset, text) in finality.headers.iter().enumerate() {
        let next: SignedHeader = decode(&hex_field(
            "finality header",
            text,
            SignedHeader::MAX_ENCODED,
        )?)
        .map_err(|error| invalid(format!("finality header: {error}")))?;
        let expected = height + 1 + offset as u64;
        if next.header.height != expected
            || next.header.chain_id != root.chain_id
            || next.header.previous_digest != last.header.hash()
        {
            return Err(invalid(format!(
                "finality header {offset} is not block {expected} of this chain following \
                 block {}",
                expected - 1
            )));
        }
        last = next;
    }
    let validators = schedule.validators(epoch);
    let certified_hash = last.header.hash();
    if let [producer] = validators {
        if last.header.producer != *producer {
            return Err(invalid(format!(
                "block {certified} is sealed by {}, not by {producer}, the producer of epoch \
                 {epoch}",
                last.header.producer
            )));
        }
        if certified != height || !seal_checked {
            last.verify_producer()
                .map_err(|error| invalid(format!("seal of block {certified}: {error}")))?;
        }
        return Ok(Some(Finality::Sealed {
            producer: *producer,
        }));
    }
    if finality.certificate.is_empty() {
        return Err(invalid(format!(
            "block {height} is in epoch {epoch} of {} validators: a finalization certificate by \
             a quorum of them is needed, and the proof carries none (one validator's seal is \
             not enough)",
            validators.len()
        )));
    }
    let certificate = hex_field("certificate", &finality.certificate, MAX_CERTIFICATE_BYTES)?;
    certificates
        .check(
            &root.chain_id,
            epoch,
            validators,
            &certified_hash,
            &certificate,
        )
        .map_err(|reason| {
            invalid(format!(
                "the finalization certificate of block {certified} (epoch {epoch}): {reason}"
            ))
        })?;
    Ok(Some(Finality::Certified {
        certified_height: certified,
        validators: validators.len(),
    }))
}

/// The validators of every epoch the changes reach: the trust root's from genesis, then each
/// change, whose own proof must be final under the validators before it and show a network
/// authority scheduling exactly that change.
pub fn checked_changes(
    changes: &[ValidatorChangeProof],
    root: &TrustRoot,
    certificates: &dyn CertificateCheck,
) -> Result<Schedule> {
    if changes.len() > MAX_VALIDATOR_CHANGES {
        return Err(invalid(format!(
            "more than {MAX_VALIDATOR_CHANGES} validator changes"
        )));
    }
    let mut schedule = Schedule {
        genesis: root.validators.clone(),
        changes: Vec::new(),
    };
    let mut last_position: Option<(u64, u32)> = None;
    for (number, change) in changes.iter().enumerate() {
        let fail = |reason: String| invalid(format!("validator change {number}: {reason}"));
        if !change.proof.validator_changes.is_empty() {
            return Err(fail("its proof carries changes of its own".into()));
        }
        let verified = verify_under(&change.proof, root, &schedule, certificates)
            .map_err(|error| fail(error.to_string()))?;
        let header = &verified.transaction.header;
        if header.signer != Signer::Authority || !root.authorities.contains(&header.key) {
            return Err(fail(
                "not signed by a network authority of the trust root".into(),
            ));
        }
        let Some(Payload::SetValidators(set)) = &verified.transaction.payload else {
            return Err(fail("its transaction does not set validators".into()));
        };
        let listed: Vec<String> = set.validators.iter().map(PublicKey::to_hex).collect();
        if set.from_height != change.from_height || listed != change.validators {
            return Err(fail(
                "from_height or validators differ from its transaction's".into(),
            ));
        }
        if set.from_height <= verified.height {
            return Err(fail("it takes effect before the block holding it".into()));
        }
        // In ledger order, each applied as the ledger applies it: a change replaces any
        // scheduled at or after its height, so a change the chain withdrew cannot stand.
        let position = (verified.height, verified.index);
        if last_position.is_some_and(|last| last >= position) {
            return Err(fail(
                "changes are not in the order of the blocks that scheduled them".into(),
            ));
        }
        last_position = Some(position);
        schedule_change(
            &mut schedule.changes,
            ValidatorChange {
                from_height: set.from_height,
                validators: set.validators.clone(),
                scheduled_at: crate::state::Position {
                    height: verified.height,
                    index: verified.index,
                },
            },
        );
    }
    Ok(schedule)
}

/// Checks one proof under a known schedule (from [`checked_changes`]): structure, signatures,
/// finality.
pub fn verify_under(
    proof: &InclusionProof,
    root: &TrustRoot,
    schedule: &Schedule,
    certificates: &dyn CertificateCheck,
) -> Result<VerifiedInclusion> {
    let mut structured = check_structure(proof, root, schedule)?;
    check_signatures(&structured)?;
    check_finality(proof, &mut structured, root, schedule, certificates)?;
    Ok(structured.verified)
}

/// Checks a proof offline against `root`: the transaction is in a block of that chain, and the
/// block is final there (sealed by its epoch's single producer, or certified by a quorum of its
/// epoch's validators, reached through certified validator changes from genesis).
pub fn verify(
    proof: &InclusionProof,
    root: &TrustRoot,
    certificates: &dyn CertificateCheck,
) -> Result<VerifiedInclusion> {
    let schedule = checked_changes(&proof.validator_changes, root, certificates)?;
    verify_under(proof, root, &schedule, certificates)
}

/// Checks only the inclusion itself: that the audit path leads from the transaction to the
/// header's `merkle_root` (and the fields agree), without the signature and finality checks.
/// For measuring, and for callers that verified the rest already.
pub fn verify_inclusion_only(
    proof: &InclusionProof,
    root: &TrustRoot,
) -> Result<VerifiedInclusion> {
    let schedule = Schedule {
        genesis: root.validators.clone(),
        changes: Vec::new(),
    };
    check_structure(proof, root, &schedule).map(|structured| structured.verified)
}

/// Checks many proofs, with the same verdicts as [`verify`] on each, but the signatures of all
/// of them in Ed25519 batches, each distinct block header's seal once, and each distinct set of
/// validator changes and certificate once: several times faster per proof for an auditor
/// checking a stack of them.
pub fn verify_many(
    proofs: &[InclusionProof],
    root: &TrustRoot,
    certificates: &dyn CertificateCheck,
) -> Vec<Result<VerifiedInclusion>> {
    use std::collections::HashMap;
    use weft_core::keys::{BatchItem, Namespace, verify_batch};
    const CHUNK: usize = 1024;
    let memo = Memo {
        inner: certificates,
        seen: std::cell::RefCell::new(HashMap::new()),
    };
    // The schedule each proof's changes give, computed once per distinct list of changes.
    let mut schedules: HashMap<Vec<String>, std::result::Result<Schedule, String>> = HashMap::new();
    let structured: Vec<Result<(Structured, Schedule)>> = proofs
        .iter()
        .map(|proof| {
            let changes: Vec<String> = proof
                .validator_changes
                .iter()
                .map(|change| change.proof.signed_header.clone() + &change.proof.transaction)
                .collect();
            let schedule = schedules
                .entry(changes)
                .or_insert_with(|| {
                    checked_changes(&proof.validator_changes, root, &memo)
                        .map_err(|error| error.to_string())
                })
                .clone()
                .map_err(LedgerError::Invalid)?;
            let structured = check_structure(proof, root, &schedule)?;
            Ok((structured, schedule))
        })
        .collect();
    let good: Vec<usize> = (0..structured.len())
        .filter(|&index| structured[index].is_ok())
        .collect();
    // Signature batches of CHUNK proofs, spread over the cores.
    let check_chunk = |chunk: &[usize]| -> Vec<(usize, LedgerError)> {
        let parts: Vec<&Structured> = chunk
            .iter()
            .filter_map(|&index| structured[index].as_ref().ok().map(|(part, _)| part))
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
    let mut failed: HashMap<usize, LedgerError> = std::thread::scope(|scope| {
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
    // Finality, each distinct certificate checked once.
    structured
        .into_iter()
        .zip(proofs)
        .enumerate()
        .map(|(index, (result, proof))| {
            let (mut structured, schedule) = result?;
            if let Some(error) = failed.remove(&index) {
                return Err(error);
            }
            check_finality(proof, &mut structured, root, &schedule, &memo)?;
            Ok(structured.verified)
        })
        .collect()
}

/// What a certificate's verdict depends on: chain, epoch, validators, block, certificate.
type MemoKey = (ChainId, u64, Vec<PublicKey>, BlockHash, Vec<u8>);

/// A certificate check that remembers its verdicts: many proofs share a certificate.
struct Memo<'a> {
    inner: &'a dyn CertificateCheck,
    seen: std::cell::RefCell<std::collections::HashMap<MemoKey, std::result::Result<(), String>>>,
}

impl CertificateCheck for Memo<'_> {
    fn check(
        &self,
        chain_id: &ChainId,
        epoch: u64,
        validators: &[PublicKey],
        block: &BlockHash,
        certificate: &[u8],
    ) -> std::result::Result<(), String> {
        let key = (
            *chain_id,
            epoch,
            validators.to_vec(),
            *block,
            certificate.to_vec(),
        );
        if let Some(verdict) = self.seen.borrow().get(&key) {
            return verdict.clone();
        }
        let verdict = self
            .inner
            .check(chain_id, epoch, validators, block, certificate);
        self.seen.borrow_mut().insert(key, verdict.clone());
        verdict
    }
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
