//! Cross-chain proofs (docs/anchoring.md, "Anchored proofs"): a transaction's C2SP tlog-proof on
//! its own chain, with the checkpoint that covers it (signed by a quorum of that chain's
//! validators, cosigned by its witnesses), and the `Anchor` transactions on other companies'
//! chains that recorded a checkpoint of it at least as large, each with its own inclusion proof
//! and the RFC 6962 consistency proof between the two checkpoints. [`verify`] needs only the
//! trust roots of the chains involved (and, for the witnesses, their keys): a company that
//! rewrote the transaction away would have to have rewritten the other companies' chains too.

use serde::{Deserialize, Serialize};
use weft_core::model::Payload;
use weft_core::{Hash32, TxId};

use crate::checkpoint::{self, Checkpoint, Note, TlogProof, VerifiedTlogProof};
use crate::cosigned::{self, Policy};
use crate::error::{LedgerError, Result};
use crate::proof::{CertificateCheck, Finality, InclusionProof};
use crate::trust::TrustRoot;

pub const ANCHORED_PROOF_FORMAT: &str = "weft-anchored-proof/v1";
/// Most anchors one bundle carries (as many chains as one chain may register).
pub const MAX_ANCHORS: usize = 64;
/// Largest bundle accepted, in bytes.
pub const MAX_ANCHORED_PROOF_BYTES: usize = 16 << 20;

/// The bundle, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchoredProof {
    pub format: String,
    /// The transaction's C2SP tlog-proof: its inclusion proof (extra data), its block's place in
    /// the checkpoint's tree, and the checkpoint note with the witnesses' cosignatures.
    pub tlog_proof: String,
    pub anchors: Vec<AnchorProof>,
}

/// One `Anchor` transaction on another chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorProof {
    /// The transaction's inclusion proof on the anchoring chain (its payload carried whole).
    pub proof: InclusionProof,
    /// The consistency proof (hex hashes) between the tlog-proof's checkpoint and the anchored
    /// one, from the smaller to the larger; empty when they are the same size.
    pub consistency: Vec<String>,
}

/// What a valid bundle proves.
#[derive(Debug, Clone)]
pub struct VerifiedAnchored {
    pub tlog: VerifiedTlogProof,
    /// The witnesses of the policy given whose cosignatures on the checkpoint hold.
    pub cosigners: Vec<(String, u64)>,
    pub anchors: Vec<VerifiedAnchor>,
}

/// One anchor that holds.
#[derive(Debug, Clone)]
pub struct VerifiedAnchor {
    /// The anchoring chain's trust root (its index in the roots given).
    pub root: usize,
    pub tx_id: TxId,
    pub height: u64,
    pub finality: Finality,
    /// The size and root of the checkpoint it anchored.
    pub size: u64,
    pub anchored_root: Hash32,
}

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

/// Reads a bundle from untrusted bytes.
pub fn parse(bytes: &[u8]) -> Result<AnchoredProof> {
    if bytes.len() > MAX_ANCHORED_PROOF_BYTES {
        return Err(invalid(format!(
            "the anchored proof is {} bytes; at most {MAX_ANCHORED_PROOF_BYTES} are accepted",
            bytes.len()
        )));
    }
    let proof: AnchoredProof = serde_json::from_slice(bytes)
        .map_err(|error| invalid(format!("not an anchored proof: {error}")))?;
    if proof.format != ANCHORED_PROOF_FORMAT {
        return Err(invalid(format!(
            "the format is {:?}, not {ANCHORED_PROOF_FORMAT:?}",
            proof.format
        )));
    }
    if proof.anchors.len() > MAX_ANCHORS {
        return Err(invalid(format!(
            "{} anchors; at most {MAX_ANCHORS} are accepted",
            proof.anchors.len()
        )));
    }
    Ok(proof)
}

/// The chain id a tlog-proof's transaction names (in its extra data), to choose its trust root.
pub fn chain_of(tlog: &TlogProof) -> Result<String> {
    let extra = tlog
        .extra
        .as_deref()
        .ok_or_else(|| invalid("the tlog-proof carries no transaction proof in its extra data"))?;
    let inclusion: InclusionProof = serde_json::from_slice(extra)
        .map_err(|error| invalid(format!("the extra data is not an inclusion proof: {error}")))?;
    Ok(inclusion.chain_id)
}

fn root_index(roots: &[&TrustRoot], chain_id: &str, what: &str) -> Result<usize> {
    roots
        .iter()
        .position(|root| root.chain_id.to_hex() == chain_id)
        .ok_or_else(|| {
            invalid(format!(
                "no trust root is given for chain {chain_id}, {what}"
            ))
        })
}

/// Checks a bundle offline. `roots` are the trust roots the verifier holds (the transaction's
/// chain and the anchoring chains); `policy`, if given, the witnesses whose cosignatures the
/// checkpoint must carry. Every anchor must hold and there must be at least one: a bundle with
/// one bad anchor is refused whole, not believed in part.
pub fn verify(
    bundle: &AnchoredProof,
    roots: &[&TrustRoot],
    certificates: &dyn CertificateCheck,
    policy: Option<&Policy>,
) -> Result<VerifiedAnchored> {
    let tlog = TlogProof::parse(bundle.tlog_proof.as_bytes())?;
    let home = root_index(roots, &chain_of(&tlog)?, "the transaction's chain")?;
    let home_root = roots[home];
    let verified = checkpoint::verify_tlog_proof(&tlog, home_root, certificates)?;
    let ours = verified.checkpoint.checkpoint.clone();
    // Who signs the chain's checkpoints, as the transaction's proof showed it.
    let schedule = &verified.schedule;
    let cosigners = match policy {
        Some(policy) => cosigned::verify(&tlog.note, home_root, schedule, policy)?.cosigners,
        None => Vec::new(),
    };
    if bundle.anchors.is_empty() {
        return Err(invalid(
            "the bundle holds no anchor on another chain: it proves no more than a tlog-proof",
        ));
    }
    let mut anchors = Vec::with_capacity(bundle.anchors.len());
    for (number, anchor) in bundle.anchors.iter().enumerate() {
        let which = || format!("anchor {} (on chain {})", number + 1, anchor.proof.chain_id);
        let index = root_index(roots, &anchor.proof.chain_id, &format!("of {}", which()))?;
        if index == home {
            return Err(invalid(format!(
                "{} is on the transaction's own chain: an anchor is another company's record",
                which()
            )));
        }
        let on = crate::proof::verify(&anchor.proof, roots[index], certificates)
            .map_err(|error| invalid(format!("{}: {error}", which())))?;
        let Some(Payload::Anchor(recorded)) = &on.transaction.payload else {
            return Err(invalid(format!(
                "{}: transaction {} is a {}, not an Anchor with its payload",
                which(),
                on.tx_id,
                on.transaction.header.kind.name()
            )));
        };
        let note = Note::parse(recorded.note.as_bytes())
            .map_err(|error| invalid(format!("{}: the anchored note: {error}", which())))?;
        let theirs = checkpoint::verify(&note, home_root, schedule)
            .map_err(|error| invalid(format!("{}: the anchored checkpoint: {error}", which())))?
            .checkpoint;
        check_covers(
            &ours,
            &theirs,
            verified.inclusion.height,
            &anchor.consistency,
        )
        .map_err(|error| invalid(format!("{}: {error}", which())))?;
        anchors.push(VerifiedAnchor {
            root: index,
            tx_id: on.tx_id,
            height: on.height,
            finality: on.finality,
            size: theirs.size,
            anchored_root: theirs.root,
        });
    }
    Ok(VerifiedAnchored {
        tlog: verified,
        cosigners,
        anchors,
    })
}

/// Does the anchored checkpoint `theirs` hold block `height`, in the same history as `ours`
/// (one a prefix of the other, by `consistency`)?
pub fn check_covers(
    ours: &Checkpoint,
    theirs: &Checkpoint,
    height: u64,
    consistency: &[String],
) -> Result<()> {
    if theirs.size <= height {
        return Err(invalid(format!(
            "it anchored {} blocks, which do not reach block {height}",
            theirs.size
        )));
    }
    let proof = consistency
        .iter()
        .map(|hex| Hash32::from_hex("consistency", hex))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| invalid(format!("the consistency proof: {error}")))?;
    if proof.len() > 64 {
        return Err(invalid("the consistency proof has more than 64 hashes"));
    }
    let (old, new) = if theirs.size >= ours.size {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    if !weft_core::merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
        return Err(invalid(format!(
            "the checkpoints of {} and {} blocks are not one history (the consistency proof \
             does not hold)",
            old.size, new.size
        )));
    }
    Ok(())
}
