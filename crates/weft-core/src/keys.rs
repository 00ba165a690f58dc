//! Ed25519 identities and namespaced signatures.
//!
//! Every signed message is `len(namespace) as u8 || namespace || message`, where the namespace
//! names the message type ([`Namespace`]). A transaction signature therefore never verifies as a
//! block signature, a checkpoint or a manifest, even if the bytes happened to coincide.
//!
//! Verification follows ZIP 215 (ed25519-zebra), one rule for a single signature and for a batch:
//! `s` must be canonical, `R` and `A` must be points, and the cofactored equation
//! `[8][s]B = [8]R + [8][k]A` must hold. A ledger needs that agreement: with ed25519-dalek's
//! `verify_strict` for single signatures and its batch verification for blocks, a signer could
//! craft a signature that a producer accepts in a batch and an auditor refuses alone (see
//! `single_and_batch_agree_on_torsion_in_r`). On top of ZIP 215, a key must be the canonical
//! encoding of a point that is not of small order ([`PublicKey::check_usable`]): a small-order
//! key would accept one forged signature for every message. Batches coalesce the terms of each
//! signer's key, so a block from few signers costs about two thirds of dalek's batch.

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
    /// Where a network node says it is dialled (passed on by other nodes).
    PeerAddress,
    /// A sealed message between companies' nodes through a broker.
    Envelope,
}

impl Namespace {
    pub fn tag(self) -> &'static [u8] {
        match self {
            Namespace::Transaction => b"weft/transaction/v1",
            Namespace::Block => b"weft/block/v1",
            Namespace::Checkpoint => b"weft/checkpoint/v1",
            Namespace::Manifest => b"weft/manifest/v1",
            Namespace::PeerAddress => b"weft/peer-address/v1",
            Namespace::Envelope => b"weft/envelope/v1",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Namespace::Transaction => "transaction",
            Namespace::Block => "block",
            Namespace::Checkpoint => "checkpoint",
            Namespace::Manifest => "manifest",
            Namespace::PeerAddress => "peer address",
            Namespace::Envelope => "envelope",
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

    /// Checks that the key can sign: the canonical encoding of a curve point that is not of small
    /// order. Registration and rotation refuse other keys, and verification fails under them.
    pub fn check_usable(&self) -> Result<(), CoreError> {
        let refuse = |reason: &str| CoreError::Parse {
            what: "public key",
            input: self.to_hex(),
            reason: reason.into(),
        };
        // y (the low 255 bits) must be below p = 2^255 - 19. With a reduced y, the only other
        // unreduced form is a negative zero x, which only the two small-order points y = ±1 have.
        let unreduced = self.0[0] >= 0xed
            && self.0[1..31].iter().all(|&byte| byte == 0xff)
            && self.0[31] & 0x7f == 0x7f;
        if unreduced {
            return Err(refuse(
                "not in canonical form (its y coordinate is not reduced)",
            ));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.0)
            .map_err(|_| refuse("not the encoding of a point on the Ed25519 curve"))?;
        if key.is_weak() {
            return Err(refuse(
                "a point of small order, under which forged signatures would verify",
            ));
        }
        Ok(())
    }

    /// Verifies `signature` over `message` in `namespace` (ZIP 215, usable keys only).
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
        self.check_usable().map_err(|_| bad())?;
        let key = ed25519_zebra::VerificationKey::try_from(self.0).map_err(|_| bad())?;
        key.verify(
            &ed25519_zebra::Signature::from_bytes(&signature.0),
            &namespace.signed_bytes(message),
        )
        .map_err(|_| bad())
    }
}

impl PublicKey {
    /// Verifies a plain Ed25519 signature over a C2SP note's text ([`SigningKey::sign_note`]).
    pub fn verify_note(&self, text: &str, signature: &Signature) -> Result<(), CoreError> {
        let bad = || CoreError::BadSignature {
            namespace: Namespace::Checkpoint.name(),
            key: self.to_hex(),
        };
        if note_text_problem(text).is_some() {
            return Err(bad());
        }
        self.check_usable().map_err(|_| bad())?;
        let key = ed25519_zebra::VerificationKey::try_from(self.0).map_err(|_| bad())?;
        key.verify(
            &ed25519_zebra::Signature::from_bytes(&signature.0),
            text.as_bytes(),
        )
        .map_err(|_| bad())
    }
}

/// Why `text` cannot be a signed note's text (C2SP signed-note): it must be non-empty, end in
/// a newline, and hold no control character but newline — so its first byte is at least 0x20.
pub fn note_text_problem(text: &str) -> Option<&'static str> {
    if !text.ends_with('\n') {
        return Some("a note's text ends in a newline");
    }
    if text.starts_with('\n') {
        return Some("a note's text starts with a line of its own");
    }
    if text.bytes().any(|byte| byte < 0x20 && byte != b'\n') {
        return Some("a note holds no control characters but newlines");
    }
    None
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

    /// The 32-byte seed, for handing the same key to another Ed25519 implementation (the
    /// consensus engine's). Never written anywhere but a key file.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, namespace: Namespace, message: &[u8]) -> Signature {
        Signature(self.0.sign(&namespace.signed_bytes(message)).to_bytes())
    }

    /// A plain Ed25519 signature (RFC 8032) over the text of a C2SP signed note (a chain's
    /// checkpoint), as every note verifier expects. It cannot be taken for a namespaced
    /// signature, nor one for it: every namespaced message starts with its tag's length, a byte
    /// below 0x20, and a note's text starts with a printable character ([`note_text_problem`]).
    pub fn sign_note(&self, text: &str) -> Result<Signature, CoreError> {
        if let Some(problem) = note_text_problem(text) {
            return Err(CoreError::InvalidField {
                field: "note text",
                reason: problem.into(),
            });
        }
        Ok(Signature(self.0.sign(text.as_bytes()).to_bytes()))
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

/// Verifies many signatures at once, under the same rules as [`PublicKey::verify`]. Fails if
/// any is invalid, without saying which: callers that need the culprit re-check one by one (see
/// `weft-ledger`).
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let bad = || CoreError::BadBatch { count: items.len() };
    // A batch usually carries few distinct signers: each key is checked once.
    let mut checked: std::collections::HashSet<[u8; 32]> = std::collections::HashSet::new();
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    for item in items {
        if checked.insert(item.key.0) {
            item.key.check_usable().map_err(|_| bad())?;
        }
        let message = item.namespace.signed_bytes(item.message);
        verifier.queue((
            ed25519_zebra::VerificationKeyBytes::from(item.key.0),
            ed25519_zebra::Signature::from_bytes(&item.signature.0),
            message.as_slice(),
        ));
    }
    verifier.verify(rand::rng()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_signatures_and_namespaced_ones_never_stand_for_each_other() {
        let key = SigningKey::from_seed(&[9; 32]);
        let text = "weft/acme/00\n7\nAAAA\n";
        let signature = key.sign_note(text).expect("a note text");
        key.public_key()
            .verify_note(text, &signature)
            .expect("verifies");
        assert!(
            key.public_key()
                .verify_note("weft/acme/00\n8\nAAAA\n", &signature)
                .is_err()
        );
        // Every namespaced message starts with a byte below 0x20; a note text never does.
        for namespace in [
            Namespace::Transaction,
            Namespace::Block,
            Namespace::Checkpoint,
            Namespace::Manifest,
            Namespace::PeerAddress,
        ] {
            assert!(
                namespace.signed_bytes(b"")[0] < 0x20,
                "{}",
                namespace.name()
            );
            let namespaced = key.sign(namespace, text.as_bytes());
            assert!(key.public_key().verify_note(text, &namespaced).is_err());
        }
        for bad in ["", "no newline", "\nstarts empty\n", "a\tb\n"] {
            assert!(key.sign_note(bad).is_err(), "{bad:?}");
        }
    }

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

    /// The canonical encoding of the identity, a point of small order.
    const IDENTITY: [u8; 32] = {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes
    };

    #[test]
    fn small_order_key_is_refused_though_zip215_alone_would_accept_it() {
        let key = PublicKey(IDENTITY);
        // R = identity, s = 0 satisfies [8][s]B = [8]R + [8][k]A for every message under A = 0.
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&IDENTITY);
        let forged = Signature(forged);
        let message = Namespace::Transaction.signed_bytes(b"anything at all");
        assert!(
            ed25519_zebra::VerificationKey::try_from(IDENTITY)
                .expect("a point")
                .verify(&ed25519_zebra::Signature::from_bytes(&forged.0), &message)
                .is_ok(),
            "the forgery must be one that plain ZIP 215 accepts, or this test proves nothing"
        );
        let error = key.check_usable().expect_err("small order");
        assert!(error.to_string().contains("small order"), "{error}");
        assert!(
            key.verify(Namespace::Transaction, b"anything at all", &forged)
                .is_err()
        );
        let batch = [BatchItem {
            key: &key,
            namespace: Namespace::Transaction,
            message: b"anything at all",
            signature: &forged,
        }];
        assert!(verify_batch(&batch).is_err());
    }

    #[test]
    fn non_canonical_key_encoding_is_refused() {
        // p + y for small y: the same point as y, written unreduced. p = 2^255 - 19.
        let mut found = 0;
        for y in 2u8..=18 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let mut unreduced = [0xffu8; 32];
            unreduced[0] = 0xed + y;
            unreduced[31] = 0x7f;
            let Ok(point) = ed25519_dalek::VerifyingKey::from_bytes(&canonical) else {
                continue;
            };
            if point.is_weak() {
                continue;
            }
            assert!(PublicKey(canonical).check_usable().is_ok());
            let error = PublicKey(unreduced)
                .check_usable()
                .expect_err("unreduced encoding");
            assert!(error.to_string().contains("canonical"), "{error}");
            found += 1;
        }
        assert!(found > 0, "no y in 2..=18 gave a usable point to test with");
        let not_points = (2u8..=255)
            .filter(|&y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_err()
            })
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                PublicKey(bytes).check_usable().expect_err("not a point")
            })
            .inspect(|error| assert!(error.to_string().contains("not the encoding of a point")))
            .count();
        assert!(not_points > 0);
    }

    proptest::proptest! {
        /// The byte test for a reduced y agrees with decoding and re-encoding the point.
        #[test]
        fn usable_keys_are_exactly_their_own_encoding(
            mut bytes in proptest::array::uniform32(proptest::num::u8::ANY),
            near_p in proptest::bool::ANY,
        ) {
            if near_p {
                bytes[1..31].fill(0xff);
                bytes[31] |= 0x7f;
            }
            let usable = PublicKey(bytes).check_usable().is_ok();
            let round_trip = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .is_ok_and(|key| !key.is_weak() && key.to_edwards().compress().to_bytes() == bytes);
            proptest::prop_assert_eq!(usable, round_trip);
        }
    }

    /// A signature whose R carries a torsion component: valid under the cofactored equation of
    /// ZIP 215, invalid under the cofactorless one (`verify_strict`). Single and batch
    /// verification must give the same answer, or a producer and an auditor would disagree.
    #[test]
    fn single_and_batch_agree_on_torsion_in_r() {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        use curve25519_dalek::scalar::{Scalar, clamp_integer};
        use sha2::{Digest, Sha512};

        let seed = [3u8; 32];
        let expanded = Sha512::digest(seed);
        let secret_half: [u8; 32] = expanded[..32].try_into().expect("32 bytes");
        let a = Scalar::from_bytes_mod_order(clamp_integer(secret_half));
        let public = (ED25519_BASEPOINT_POINT * a).compress().to_bytes();
        assert_eq!(PublicKey(public), SigningKey::from_seed(&seed).public_key());

        let message = b"a transaction header";
        let signed = Namespace::Transaction.signed_bytes(message);
        let r = Scalar::from_bytes_mod_order([42; 32]);
        let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(
            &Sha512::new()
                .chain_update(big_r)
                .chain_update(public)
                .chain_update(&signed)
                .finalize(),
        );
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&big_r);
        bytes[32..].copy_from_slice(s.as_bytes());
        let signature = Signature(bytes);

        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public).expect("key");
        assert!(
            dalek
                .verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&bytes))
                .is_err(),
            "the signature must be one that the cofactorless check refuses"
        );

        let key = PublicKey(public);
        let single = key.verify(Namespace::Transaction, message, &signature);
        let other = SigningKey::from_seed(&[4; 32]);
        let other_key = other.public_key();
        let other_signature = other.sign(Namespace::Transaction, b"an ordinary one");
        let batch = verify_batch(&[
            BatchItem {
                key: &other_key,
                namespace: Namespace::Transaction,
                message: b"an ordinary one",
                signature: &other_signature,
            },
            BatchItem {
                key: &key,
                namespace: Namespace::Transaction,
                message,
                signature: &signature,
            },
        ]);
        assert!(single.is_ok(), "single: {single:?}");
        assert!(batch.is_ok(), "batch: {batch:?}");
        // The same signature over another message fails both ways.
        assert!(
            key.verify(Namespace::Transaction, b"other", &signature)
                .is_err()
        );
        assert!(
            verify_batch(&[BatchItem {
                key: &key,
                namespace: Namespace::Transaction,
                message: b"other",
                signature: &signature,
            }])
            .is_err()
        );
    }
}
