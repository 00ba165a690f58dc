//! Checkpoints in the transparency logs' standard format (docs/checkpoints.md): a chain's head
//! as a C2SP `tlog-checkpoint`, signed as a C2SP `signed-note` by the keys that make its blocks
//! final, with RFC 6962 consistency proofs between any two sizes and C2SP `tlog-proof` offline
//! proofs.
//!
//! The log is the chain's blocks: leaf `i` is the hash of block `i` (`SHA-256(0x00 ‖ block
//! hash)`), so a checkpoint of size `n` commits to blocks `0..n` in height order. The origin is
//! `weft/<chain name>/<chain id hex>`; every signature line names it, with the signing key's
//! C2SP key ID (`SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ public key)[..4]`). A checkpoint counts once a
//! quorum of the validators of its last block's epoch signed it (its producer, on a single
//! node).

use base64ct::{Base64, Encoding as _};
use sha2::{Digest as _, Sha256};
use weft_core::{ChainId, Hash32, PublicKey, Signature, SigningKey};

use crate::error::{LedgerError, Result};
use crate::state::Schedule;
use crate::trust::TrustRoot;

/// Largest signed note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 64 << 10;
/// Most signature lines accepted in a note (C2SP asks for at least 16).
pub const MAX_NOTE_SIGNATURES: usize = 128;
/// The first line of a C2SP `tlog-proof`.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The C2SP signature type of Ed25519 note signatures.
const ED25519_TYPE: u8 = 0x01;

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

/// The origin line of a chain's checkpoints.
pub fn origin(chain: &str, chain_id: &ChainId) -> String {
    format!("weft/{chain}/{}", chain_id.to_hex())
}

/// A checkpoint's body: the log's origin, its size, and the root of its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash32,
}

impl Checkpoint {
    /// The note text: three lines, each ending in a newline.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root.0)
        )
    }

    /// Reads a checkpoint from a note's text (extension lines after the third are ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.split_terminator('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(invalid("the checkpoint has no origin line"));
        }
        let size_text = lines
            .next()
            .ok_or_else(|| invalid("the checkpoint has no size line"))?;
        let canonical = size_text == "0" || !size_text.starts_with('0');
        let size = size_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical && size_text.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| {
                invalid(format!(
                    "the checkpoint size {size_text:?} is not a decimal"
                ))
            })?;
        let root_text = lines
            .next()
            .ok_or_else(|| invalid("the checkpoint has no root hash line"))?;
        let root: [u8; 32] = Base64::decode_vec(root_text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| invalid("the checkpoint's root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root: Hash32(root),
        })
    }
}

/// The C2SP key ID of an Ed25519 key under `name`.
pub fn key_id(name: &str, key: &PublicKey) -> [u8; 4] {
    typed_key_id(name, ED25519_TYPE, key)
}

/// A C2SP verifier key for `key` under `name`: `name+hex key ID+base64(0x01 ‖ key)`, as Go's
/// `note` package and its ports read them.
pub fn verifier_key(name: &str, key: &PublicKey) -> String {
    typed_verifier_key(name, ED25519_TYPE, key)
}

/// The C2SP key ID of `key` under `name` for signatures of type `kind` (0x01 a note signature,
/// 0x04 a `cosignature/v1`): the first 4 bytes of `SHA-256(name ‖ "\n" ‖ kind ‖ key)`.
pub(crate) fn typed_key_id(name: &str, kind: u8, key: &PublicKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', kind]);
    hasher.update(key.0);
    let digest: [u8; 32] = hasher.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The C2SP verifier key of `key` under `name` for signatures of type `kind`.
pub(crate) fn typed_verifier_key(name: &str, kind: u8, key: &PublicKey) -> String {
    let mut encoded = vec![kind];
    encoded.extend_from_slice(&key.0);
    format!(
        "{name}+{}+{}",
        hex::encode(typed_key_id(name, kind, key)),
        Base64::encode_string(&encoded)
    )
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

impl NoteSignature {
    fn line(&self) -> String {
        let mut bytes = self.key_id.to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("— {} {}\n", self.name, Base64::encode_string(&bytes))
    }
}

/// A signed note: its text and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// The note as it travels: the text, a blank line, the signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.line());
        }
        out
    }

    /// Adds `key`'s signature under `name` (replacing one by the same name and key ID).
    pub fn sign(&mut self, name: &str, key: &SigningKey) -> Result<()> {
        let signature = key
            .sign_note(&self.text)
            .map_err(|error| invalid(error.to_string()))?;
        let id = key_id(name, &key.public_key());
        self.signatures
            .retain(|existing| !(existing.name == name && existing.key_id == id));
        self.signatures.push(NoteSignature {
            name: name.to_string(),
            key_id: id,
            signature: signature.0.to_vec(),
        });
        Ok(())
    }

    /// Adds the signatures of `other`, a note of the same text, that this one lacks.
    pub fn merge(&mut self, other: &Note) -> Result<()> {
        if other.text != self.text {
            return Err(invalid("the notes to merge have different texts"));
        }
        for signature in &other.signatures {
            if !self.signatures.iter().any(|existing| {
                existing.name == signature.name && existing.key_id == signature.key_id
            }) {
                self.signatures.push(signature.clone());
            }
        }
        if self.signatures.len() > MAX_NOTE_SIGNATURES {
            return Err(invalid(format!(
                "more than {MAX_NOTE_SIGNATURES} signatures"
            )));
        }
        Ok(())
    }

    /// Reads a signed note from untrusted bytes (C2SP signed-note): UTF-8, no control characters
    /// but newlines, the text separated from one or more signature lines by the last blank line.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(invalid(format!(
                "the note is {} bytes; at most {MAX_NOTE_BYTES} are accepted",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("the note is not UTF-8"))?;
        if text.bytes().any(|byte| byte < 0x20 && byte != b'\n') {
            return Err(invalid("the note holds a control character"));
        }
        if !text.ends_with('\n') {
            return Err(invalid("the note does not end in a newline"));
        }
        let split = text
            .rfind("\n\n")
            .ok_or_else(|| invalid("the note has no blank line before its signatures"))?;
        let (body, signatures) = (&text[..=split], &text[split + 2..]);
        if let Some(problem) = weft_core::keys::note_text_problem(body) {
            return Err(invalid(problem));
        }
        let signatures = signatures
            .split_terminator('\n')
            .map(parse_signature_line)
            .collect::<Result<Vec<_>>>()?;
        if signatures.is_empty() {
            return Err(invalid("the note has no signature line"));
        }
        if signatures.len() > MAX_NOTE_SIGNATURES {
            return Err(invalid(format!(
                "the note has more than {MAX_NOTE_SIGNATURES} signatures"
            )));
        }
        Ok(Note {
            text: body.to_string(),
            signatures,
        })
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature> {
    let rest = line
        .strip_prefix("— ")
        .ok_or_else(|| invalid("a signature line does not start with an em dash and a space"))?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| invalid("a signature line has no key name and signature"))?;
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(invalid(format!("the key name {name:?} is not valid")));
    }
    let bytes = Base64::decode_vec(encoded)
        .map_err(|_| invalid(format!("the signature of {name:?} is not base64")))?;
    if bytes.len() < 5 {
        return Err(invalid(format!("the signature of {name:?} is too short")));
    }
    Ok(NoteSignature {
        name: name.to_string(),
        key_id: [bytes[0], bytes[1], bytes[2], bytes[3]],
        signature: bytes[4..].to_vec(),
    })
}

/// How many of `n` validators make a quorum: all but the `(n - 1) / 3` that may fail.
pub fn quorum(n: usize) -> usize {
    n - n.saturating_sub(1) / 3
}

/// A checkpoint whose signatures hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The validators whose signatures verified.
    pub signers: Vec<PublicKey>,
    /// Of how many validators (of the epoch of the checkpoint's last block).
    pub of: usize,
}

/// Checks a signed checkpoint of the chain of `root`: the origin is the chain's, and a quorum of
/// the validators of the epoch of its last block (by `schedule`: the root's validators and the
/// certified changes, see [`crate::proof::checked_changes`]) signed it. Signatures of other
/// keys are ignored; one of a validator that does not verify refuses the whole note.
pub fn verify(note: &Note, root: &TrustRoot, schedule: &Schedule) -> Result<VerifiedCheckpoint> {
    let checkpoint = Checkpoint::parse(&note.text)?;
    let expected = origin(&root.chain, &root.chain_id);
    if checkpoint.origin != expected {
        return Err(invalid(format!(
            "the checkpoint's origin is {:?}, not {expected:?} of the trust root",
            checkpoint.origin
        )));
    }
    if checkpoint.size == 0 {
        return Err(invalid(
            "a checkpoint of no blocks: every chain has block 0",
        ));
    }
    let last = checkpoint.size - 1;
    let mut validators = schedule.producers_at(last).to_vec();
    validators.sort();
    validators.dedup();
    if validators.is_empty() {
        return Err(invalid(format!("no validators are known for block {last}")));
    }
    let validators = &validators[..];
    let mut signers = Vec::new();
    for validator in validators {
        let id = key_id(&expected, validator);
        let Some(line) = note
            .signatures
            .iter()
            .find(|signature| signature.name == expected && signature.key_id == id)
        else {
            continue;
        };
        let signature: [u8; 64] = line.signature.as_slice().try_into().map_err(|_| {
            invalid(format!(
                "the signature of validator {validator} is not 64 bytes"
            ))
        })?;
        validator
            .verify_note(&note.text, &Signature(signature))
            .map_err(|_| {
                invalid(format!(
                    "the signature of validator {validator} does not verify"
                ))
            })?;
        signers.push(*validator);
    }
    let needed = quorum(validators.len());
    if signers.len() < needed {
        return Err(invalid(format!(
            "{} of the {} validators of block {last} signed the checkpoint; {needed} are needed",
            signers.len(),
            validators.len()
        )));
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        signers,
        of: validators.len(),
    })
}

/// The leaf hash of block `hash` in the chain's log.
pub fn leaf(hash: &weft_core::BlockHash) -> Hash32 {
    weft_core::merkle::leaf_hash(hash.as_bytes())
}

/// A C2SP tlog-proof: the entry's index, its inclusion path in the checkpoint's tree, the
/// checkpoint note, and optional extra data (for weft: the inclusion proof of a transaction in
/// the block at `index`, JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<Hash32>,
    pub note: Note,
}

impl TlogProof {
    pub fn to_text(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", Base64::encode_string(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.path {
            out.push_str(&Base64::encode_string(&hash.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note.to_text());
        out
    }

    /// Reads a tlog-proof from untrusted bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > crate::proof::MAX_PROOF_BYTES {
            return Err(invalid("the tlog-proof is larger than a proof may be"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("the proof is not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| invalid("the tlog-proof has no blank line before its checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(invalid(format!(
                "the proof does not start with {TLOG_PROOF_HEADER}"
            )));
        }
        let mut line = lines.next().unwrap_or_default();
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            extra = Some(
                Base64::decode_vec(encoded).map_err(|_| invalid("the extra data is not base64"))?,
            );
            line = lines.next().unwrap_or_default();
        }
        let index_text = line
            .strip_prefix("index ")
            .ok_or_else(|| invalid("the proof has no index line"))?;
        let canonical = index_text == "0" || !index_text.starts_with('0');
        let index = index_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical && index_text.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| invalid("the proof's index is not a decimal"))?;
        let path = lines
            .map(|line| {
                Base64::decode_vec(line)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .map(Hash32)
                    .ok_or_else(|| invalid("an inclusion proof line is not a base64 SHA-256 hash"))
            })
            .collect::<Result<Vec<_>>>()?;
        if path.len() > 64 {
            return Err(invalid("the inclusion proof has more than 64 hashes"));
        }
        Ok(TlogProof {
            extra,
            index,
            path,
            note: Note::parse(note.as_bytes())?,
        })
    }
}

/// What a valid tlog-proof proves: the transaction is in the block at `index`, final there, and
/// the block is in the checkpoint a quorum signed.
#[derive(Debug, Clone)]
pub struct VerifiedTlogProof {
    pub inclusion: crate::proof::VerifiedInclusion,
    pub checkpoint: VerifiedCheckpoint,
    /// Who signs the chain's checkpoints: the root's validators and the certified changes the
    /// proof carries, checked.
    pub schedule: crate::state::Schedule,
}

/// Checks a weft tlog-proof offline against `root`: its extra data is the transaction's
/// inclusion proof (docs/proofs.md), checked with the validator changes it carries; the block
/// at `index` is in the checkpoint's tree by the inclusion path; the checkpoint is signed by a
/// quorum of the validators of its last block.
pub fn verify_tlog_proof(
    proof: &TlogProof,
    root: &TrustRoot,
    certificates: &dyn crate::proof::CertificateCheck,
) -> Result<VerifiedTlogProof> {
    let extra = proof
        .extra
        .as_deref()
        .ok_or_else(|| invalid("the tlog-proof carries no transaction proof in its extra data"))?;
    let inclusion: crate::proof::InclusionProof = serde_json::from_slice(extra)
        .map_err(|error| invalid(format!("the extra data is not an inclusion proof: {error}")))?;
    let schedule = crate::proof::checked_changes(&inclusion.validator_changes, root, certificates)?;
    let verified = crate::proof::verify_under(&inclusion, root, &schedule, certificates)?;
    if verified.height != proof.index {
        return Err(invalid(format!(
            "the proof's index is {}, but its transaction is in block {}",
            proof.index, verified.height
        )));
    }
    let checkpoint = verify(&proof.note, root, &schedule)?;
    let size = checkpoint.checkpoint.size;
    if proof.index >= size {
        return Err(invalid(format!(
            "block {} is not in the checkpoint of {size} blocks",
            proof.index
        )));
    }
    if !weft_core::merkle::verify_inclusion(
        &leaf(&verified.block_hash),
        proof.index,
        size,
        &proof.path,
        &checkpoint.checkpoint.root,
    ) {
        return Err(invalid(format!(
            "the inclusion path does not lead from block {} to the checkpoint's root",
            proof.index
        )));
    }
    Ok(VerifiedTlogProof {
        inclusion: verified,
        checkpoint,
        schedule,
    })
}
