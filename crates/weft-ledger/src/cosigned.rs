//! Witnessed checkpoints, as their verifiers check them (docs/anchoring.md): a chain's signed
//! checkpoint that also carries the `cosignature/v1` lines of witnesses — what a network
//! publishes once its witnesses cosigned it, and what other companies anchor. It counts as
//! witnessed when a quorum of the chain's validators signed it and at least `policy` of the
//! witnesses the verifier trusts (by their verifier keys) cosigned it. The `cosignature/v1`
//! format itself (C2SP tlog-cosignature) is here too; the witness ([`crate::witness`]) signs it.

use base64ct::{Base64, Encoding as _};
use weft_core::{PublicKey, Signature};

use crate::checkpoint::{self, Note, VerifiedCheckpoint};
use crate::error::{LedgerError, Result};
use crate::state::Schedule;
use crate::trust::TrustRoot;

/// The key type byte of an Ed25519 cosignature key (C2SP tlog-cosignature).
const COSIGNATURE_TYPE: u8 = 0x04;

/// The C2SP key ID of an Ed25519 cosigner key under `name`.
pub fn cosigner_key_id(name: &str, key: &PublicKey) -> [u8; 4] {
    checkpoint::typed_key_id(name, COSIGNATURE_TYPE, key)
}

/// The verifier key of a cosigner (C2SP signed-note vkey): `name+hex key ID+base64(0x04 ‖
/// key)`.
pub fn verifier_key(name: &str, key: &PublicKey) -> String {
    checkpoint::typed_verifier_key(name, COSIGNATURE_TYPE, key)
}

/// The message a `cosignature/v1` signs: its header and time lines, then the note's text.
pub fn cosigned_message(timestamp: u64, note_text: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{note_text}")
}

/// Checks a `cosignature/v1` line (as a witness answers, `— NAME base64`) of `name`'s `key`
/// over `note_text`; returns its timestamp.
pub fn verify_cosignature(name: &str, key: &PublicKey, note_text: &str, line: &str) -> Result<u64> {
    let bad = |why: String| LedgerError::Invalid(format!("the cosignature of {name}: {why}"));
    let line = line.trim_end_matches('\n');
    let note = Note::parse(format!("{note_text}\n{line}\n").as_bytes())
        .map_err(|error| bad(error.to_string()))?;
    let witness = WitnessKey {
        name: name.to_string(),
        key: *key,
    };
    witness
        .cosignature(&note)?
        .ok_or_else(|| bad("not this witness's name and key".into()))
}

/// Most witnesses in one policy.
pub const MAX_WITNESSES: usize = 32;

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

/// A witness as its verifiers know it: its name and Ed25519 cosigning key, from its C2SP
/// verifier key (`name+hex key ID+base64(0x04 ‖ key)`, as `GET /v1/witness` gives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    pub name: String,
    pub key: PublicKey,
}

impl WitnessKey {
    /// Reads a verifier key: the name, the key ID (which must be the key's), the typed key.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |why: &str| invalid(format!("the witness key {text:?}: {why}"));
        // The base64 key may hold '+' itself: the name and key ID end at the first two.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not NAME+KEYID+KEY (C2SP verifier key)"));
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("the name is empty or holds a space"));
        }
        let bytes = Base64::decode_vec(encoded).map_err(|_| bad("the key is not base64"))?;
        if bytes.len() != 33 || bytes[0] != COSIGNATURE_TYPE {
            return Err(bad(
                "not an Ed25519 cosignature/v1 key (type 0x04 and 32 bytes)",
            ));
        }
        let key = PublicKey(bytes[1..].try_into().expect("32 bytes"));
        if hex::encode(cosigner_key_id(name, &key)) != id {
            return Err(bad("the key ID is not this name's and key's"));
        }
        Ok(WitnessKey {
            name: name.to_string(),
            key,
        })
    }

    /// Its verifier key.
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.key)
    }

    /// The timestamp of this witness's cosignature on `note`, if it carries one; a line that
    /// claims to be this witness's (its name and key ID) and does not verify is an error.
    pub fn cosignature(&self, note: &Note) -> Result<Option<u64>> {
        let id = cosigner_key_id(&self.name, &self.key);
        let Some(line) = note
            .signatures
            .iter()
            .find(|signature| signature.name == self.name && signature.key_id == id)
        else {
            return Ok(None);
        };
        let bad = |why: &str| invalid(format!("the cosignature of witness {}: {why}", self.name));
        if line.signature.len() != 8 + 64 {
            return Err(bad("not a cosignature/v1 (8-byte time and a signature)"));
        }
        let timestamp = u64::from_be_bytes(line.signature[..8].try_into().expect("8 bytes"));
        if timestamp > i64::MAX as u64 {
            return Err(bad("a timestamp beyond 2^63 - 1"));
        }
        let signature = Signature(line.signature[8..].try_into().expect("64 bytes"));
        self.key
            .verify_note(&cosigned_message(timestamp, &note.text), &signature)
            .map_err(|_| bad("the signature does not verify"))?;
        Ok(Some(timestamp))
    }
}

/// A witness policy: at least `k` of `witnesses` cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub witnesses: Vec<WitnessKey>,
    pub k: usize,
}

impl Policy {
    /// `k` of `witnesses`: 1 ≤ k ≤ n ≤ [`MAX_WITNESSES`], no witness twice.
    pub fn new(witnesses: Vec<WitnessKey>, k: usize) -> Result<Self> {
        if witnesses.is_empty() || witnesses.len() > MAX_WITNESSES {
            return Err(invalid(format!(
                "{} witnesses; a policy names 1 to {MAX_WITNESSES}",
                witnesses.len()
            )));
        }
        if k == 0 || k > witnesses.len() {
            return Err(invalid(format!(
                "a policy of {k} of {} witnesses: k is 1 to the number of witnesses",
                witnesses.len()
            )));
        }
        for (index, witness) in witnesses.iter().enumerate() {
            if witnesses[..index]
                .iter()
                .any(|other| other.name == witness.name || other.key == witness.key)
            {
                return Err(invalid(format!(
                    "witness {} is named twice (by name or key)",
                    witness.name
                )));
            }
        }
        Ok(Policy { witnesses, k })
    }
}

/// A witnessed checkpoint whose signatures hold.
#[derive(Debug, Clone)]
pub struct VerifiedWitnessed {
    pub checkpoint: VerifiedCheckpoint,
    /// The witnesses whose cosignatures hold, and the time each gave.
    pub cosigners: Vec<(String, u64)>,
}

/// Checks a witnessed checkpoint of `root`'s chain: a quorum of its validators (by `schedule`)
/// signed it and at least `policy.k` of the policy's witnesses cosigned it. Signatures of other
/// keys are ignored.
pub fn verify(
    note: &Note,
    root: &TrustRoot,
    schedule: &Schedule,
    policy: &Policy,
) -> Result<VerifiedWitnessed> {
    let checkpoint = checkpoint::verify(note, root, schedule)?;
    let cosigners = cosigners(note, &policy.witnesses)?;
    if cosigners.len() < policy.k {
        return Err(invalid(format!(
            "{} of the {} witnesses cosigned checkpoint {} of {}; the policy asks for {}",
            cosigners.len(),
            policy.witnesses.len(),
            checkpoint.checkpoint.size,
            checkpoint.checkpoint.origin,
            policy.k
        )));
    }
    Ok(VerifiedWitnessed {
        checkpoint,
        cosigners,
    })
}

/// The witnesses among `witnesses` whose cosignatures on `note` hold, with their times.
pub fn cosigners(note: &Note, witnesses: &[WitnessKey]) -> Result<Vec<(String, u64)>> {
    let mut found = Vec::new();
    for witness in witnesses {
        if let Some(time) = witness.cosignature(note)? {
            found.push((witness.name.clone(), time));
        }
    }
    Ok(found)
}
