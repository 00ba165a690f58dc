//! Ed25519 identities and namespaced signatures.
//!
//! Every signed message is `len(namespace) as u8 || namespace || message`, where the namespace
//! names the message type ([`Namespace`]). A transaction signature therefore never verifies as a
//! block signature, a checkpoint or a manifest, even if the bytes happened to coincide.
//! Verification uses `verify_strict` (no small-order keys, no malleable signatures); batches use
//! ed25519-dalek's randomised batch verification, about twice as fast per signature.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::Signer;

use crate::CoreError;
use crate::hash::truncate_for_message;

/// What a signature is for. The tag is part of the signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Namespace {
    /// A transaction header.
    Transaction,
    /// A block header (the producer's seal).
    Block,
    /// A signed checkpoint of a chain head.
    Checkpoint,
    /// A G-code manifest.
    Manifest,
}

impl Namespace {
    pub fn tag(self) -> &'static [u8] {
        match self {
            Namespace::Transaction => b"weft/transaction/v1",
            Namespace::Block => b"weft/block/v1",
            Namespace::Checkpoint => b"weft/checkpoint/v1",
            Namespace::Manifest => b"weft/manifest/v1",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Namespace::Transaction => "transaction",
            Namespace::Block => "block",
            Namespace::Checkpoint => "checkpoint",
            Namespace::Manifest => "manifest",
        }
    }

    /// The exact bytes that are signed for `message` in this namespace.
    pub fn signed_bytes(self, message: &[u8]) -> Vec<u8> {
        let tag = self.tag();
        let mut out = Vec::with_capacity(1 + tag.len() + message.len());
        out.push(u8::try_from(tag.len()).expect("namespace tags are short constants"));
        out.extend_from_slice(tag);
        out.extend_from_slice(message);
        out
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(input: &str) -> Result<Self, CoreError> {
        crate::Hash32::from_hex("public key", input.trim()).map(|hash| PublicKey(hash.0))
    }

    fn dalek(&self) -> Result<ed25519_dalek::VerifyingKey, CoreError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|error| CoreError::Parse {
            what: "public key",
            input: self.to_hex(),
            reason: error.to_string(),
        })
    }

    /// Verifies `signature` over `message` in `namespace`.
    pub fn verify(
        &self,
        namespace: Namespace,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), CoreError> {
        let bad = || CoreError::BadSignature {
            namespace: namespace.name(),
            key: self.to_hex(),
        };
        let key = self.dalek().map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(&namespace.signed_bytes(message), &signature)
            .map_err(|_| bad())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        PublicKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

impl Signature {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(input: &str) -> Result<Self, CoreError> {
        let mut out = [0u8; 64];
        hex::decode_to_slice(input, &mut out).map_err(|error| CoreError::Parse {
            what: "signature",
            input: truncate_for_message(input),
            reason: error.to_string(),
        })?;
        Ok(Signature(out))
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// A secret Ed25519 key. Not `Clone` on purpose; zeroised on drop by ed25519-dalek.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public: {})", self.public_key())
    }
}

/// First line of the text form of a secret key file.
const SECRET_KEY_HEADER: &str = "weft ed25519 secret key v1";

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, CoreError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| CoreError::Randomness(error.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// A key from its 32-byte seed (deterministic; for tests and vectors).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, namespace: Namespace, message: &[u8]) -> Signature {
        Signature(self.0.sign(&namespace.signed_bytes(message)).to_bytes())
    }

    /// The text form written to key files: a header line, then the seed in hex.
    pub fn to_text(&self) -> String {
        format!("{SECRET_KEY_HEADER}\n{}\n", hex::encode(self.0.to_bytes()))
    }

    /// Parses [`to_text`](Self::to_text) output.
    pub fn from_text(text: &str) -> Result<Self, CoreError> {
        let parse_error = |reason: &str| CoreError::Parse {
            what: "secret key file",
            input: String::from("(secret key contents not shown)"),
            reason: reason.into(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(SECRET_KEY_HEADER) {
            return Err(parse_error(&format!(
                "first line must be {SECRET_KEY_HEADER:?}"
            )));
        }
        let seed_hex = lines
            .next()
            .ok_or_else(|| parse_error("missing key line"))?
            .trim();
        let mut seed = [0u8; 32];
        hex::decode_to_slice(seed_hex, &mut seed)
            .map_err(|_| parse_error("key line must be 64 hex digits"))?;
        Ok(Self::from_seed(&seed))
    }
}

/// One signature to check in a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    pub key: &'a PublicKey,
    pub namespace: Namespace,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verifies many signatures at once. Fails if any is invalid, without saying which: callers that
/// need the culprit re-check one by one (see `weft-ledger`).
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let bad = || CoreError::BadBatch { count: items.len() };
    let messages: Vec<Vec<u8>> = items
        .iter()
        .map(|item| item.namespace.signed_bytes(item.message))
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<ed25519_dalek::Signature> = items
        .iter()
        .map(|item| ed25519_dalek::Signature::from_bytes(&item.signature.0))
        .collect();
    // A batch usually carries few distinct signers: decompress each key once (a point
    // decompression costs about a fifth of a batched verification).
    let mut decompressed: std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey> =
        std::collections::HashMap::new();
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        let key = match decompressed.get(&item.key.0) {
            Some(key) => *key,
            None => {
                let key = item.key.dalek().map_err(|_| bad())?;
                decompressed.insert(item.key.0, key);
                key
            }
        };
        keys.push(key);
    }
    ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_separate_signatures() {
        let key = SigningKey::from_seed(&[7; 32]);
        let signature = key.sign(Namespace::Transaction, b"hello");
        assert!(
            key.public_key()
                .verify(Namespace::Transaction, b"hello", &signature)
                .is_ok()
        );
        assert!(
            key.public_key()
                .verify(Namespace::Block, b"hello", &signature)
                .is_err()
        );
        assert!(
            key.public_key()
                .verify(Namespace::Transaction, b"hellp", &signature)
                .is_err()
        );
    }

    #[test]
    fn batch_detects_one_bad_signature() {
        let keys: Vec<SigningKey> = (0..8u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut signatures: Vec<Signature> = keys
            .iter()
            .zip(&messages)
            .map(|(key, message)| key.sign(Namespace::Transaction, message))
            .collect();
        let items = |signatures: &[Signature]| -> Vec<(PublicKey, Vec<u8>, Signature)> {
            (0..8)
                .map(|i| (publics[i], messages[i].clone(), signatures[i]))
                .collect()
        };
        let check = |triples: &[(PublicKey, Vec<u8>, Signature)]| {
            let batch: Vec<BatchItem<'_>> = triples
                .iter()
                .map(|(key, message, signature)| BatchItem {
                    key,
                    namespace: Namespace::Transaction,
                    message,
                    signature,
                })
                .collect();
            verify_batch(&batch)
        };
        assert!(check(&items(&signatures)).is_ok());
        signatures[5].0[3] ^= 1;
        assert!(check(&items(&signatures)).is_err());
    }

    #[test]
    fn secret_key_text_round_trip() {
        let key = SigningKey::from_seed(&[9; 32]);
        let parsed = SigningKey::from_text(&key.to_text()).expect("round trip");
        assert_eq!(parsed.public_key(), key.public_key());
        assert!(SigningKey::from_text("garbage").is_err());
        let error = SigningKey::from_text("weft ed25519 secret key v1\nzz\n").expect_err("bad hex");
        assert!(
            !error.to_string().contains("zz"),
            "must not echo secret material: {error}"
        );
    }
}
