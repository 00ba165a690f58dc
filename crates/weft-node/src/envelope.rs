//! Envelopes for messages between companies' nodes that travel through a broker nobody trusts
//! (docs/anchoring.md, "Envelopes"; the broker transport itself is not built yet). An envelope
//! is sealed with HPKE (RFC 9180: X25519, HKDF-SHA256, ChaCha20-Poly1305, base mode) to the
//! receiving node's X25519 key and signed with the sending node's Ed25519 key over everything
//! it carries and the topic it is published on: the broker can neither read it, nor forge one,
//! nor move one to another topic. Each message carries a random id and its time; [`Replay`]
//! refuses one seen before or outside a time window, so a recorded envelope cannot be played
//! again. A broker that drops or reorders envelopes delays the exchange; it cannot change it.
//!
//! ```text
//! Envelope = version:u8 (1)  sender:[32] (Ed25519)  recipient:[32] (X25519)  enc:[32]
//!            ciphertext:Vec<u8> (u32 LE length, at most 1 MiB + 16)  signature:[64]
//! signature: Ed25519 in the namespace weft/envelope/v1 over every byte before it, then the topic
//! HPKE:      info = "weft envelope v1" || sender, aad = topic
//! plaintext: id:[16]  time_ms:u64 (LE)  body (the rest)
//! ```

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use weft_core::keys::Namespace;
use weft_core::{PublicKey, Signature, SigningKey};

pub const VERSION: u8 = 1;
/// Largest body an envelope carries.
pub const MAX_BODY: usize = 1 << 20;
/// How far a message's time may be from the receiver's clock, ms.
pub const WINDOW_MS: u64 = 120_000;
const INFO: &[u8] = b"weft envelope v1";
/// version, sender, recipient, enc, the ciphertext's length.
const HEAD: usize = 1 + 32 + 32 + 32 + 4;
const TAG: usize = 16;

type Kem = X25519HkdfSha256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("an envelope for another node (X25519 key {0})")]
    NotForUs(String),
    #[error("an envelope from a node not among the peers (Ed25519 key {0})")]
    UnknownSender(String),
    #[error("the sender's signature does not verify: forged, altered or moved to another topic")]
    BadSignature,
    #[error("the envelope does not open with this node's key")]
    Undecryptable,
    #[error("a message seen before: replayed")]
    Replayed,
    #[error("a message of {0} ms ago (or ahead): outside the window of {WINDOW_MS} ms")]
    Stale(i128),
    #[error("{0}")]
    Crypto(String),
}

/// A node's X25519 key pair for receiving envelopes.
pub struct Receiver {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: <Kem as hpke::Kem>::PublicKey,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Receiver")
            .field("public", &hex::encode(self.public()))
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// The key pair derived from 32 secret bytes (RFC 9180 `DeriveKeyPair`).
    pub fn from_seed(seed: &[u8; 32]) -> Receiver {
        let (secret, public) = Kem::derive_keypair(seed);
        Receiver { secret, public }
    }

    pub fn public(&self) -> [u8; 32] {
        self.public
            .to_bytes()
            .as_slice()
            .try_into()
            .expect("X25519 keys are 32 bytes")
    }
}

/// A message opened: who sent it, its id and time, its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub sender: PublicKey,
    pub id: [u8; 16],
    pub time_ms: u64,
    pub body: Vec<u8>,
}

/// Seals `body` for the node whose X25519 key is `recipient`, signed by `sender`, for `topic`;
/// `id` and `time_ms` are what the receiver checks against replay.
pub fn seal(
    sender: &SigningKey,
    recipient: &[u8; 32],
    topic: &str,
    id: [u8; 16],
    time_ms: u64,
    body: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if body.len() > MAX_BODY {
        return Err(EnvelopeError::Malformed(format!(
            "a body of {} bytes; at most {MAX_BODY}",
            body.len()
        )));
    }
    let public = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|error| EnvelopeError::Crypto(format!("the recipient's key: {error}")))?;
    let from = sender.public_key();
    let mut info = INFO.to_vec();
    info.extend_from_slice(&from.0);
    let mut plain = Vec::with_capacity(24 + body.len());
    plain.extend_from_slice(&id);
    plain.extend_from_slice(&time_ms.to_le_bytes());
    plain.extend_from_slice(body);
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &public,
        &info,
        &plain,
        topic.as_bytes(),
    )
    .map_err(|error| EnvelopeError::Crypto(error.to_string()))?;
    let mut out = Vec::with_capacity(HEAD + ciphertext.len() + 64);
    out.push(VERSION);
    out.extend_from_slice(&from.0);
    out.extend_from_slice(recipient);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&(ciphertext.len() as u32).to_le_bytes());
    out.extend_from_slice(&ciphertext);
    let signature = sender.sign(Namespace::Envelope, &signed(&out, topic));
    out.extend_from_slice(&signature.0);
    Ok(out)
}

/// What the signature covers: the envelope before it, then the topic.
fn signed(envelope: &[u8], topic: &str) -> Vec<u8> {
    let mut bytes = envelope.to_vec();
    bytes.extend_from_slice(topic.as_bytes());
    bytes
}

/// Opens an envelope received on `topic` by `receiver`, from one of `peers` (their Ed25519
/// keys): the format, the recipient, the sender, the signature (before any decryption), then
/// the ciphertext. Replay is [`Replay::check`]'s to refuse.
pub fn open(
    receiver: &Receiver,
    peers: &[PublicKey],
    topic: &str,
    envelope: &[u8],
) -> Result<Opened, EnvelopeError> {
    let malformed = |why: &str| EnvelopeError::Malformed(why.to_string());
    if envelope.len() < HEAD + TAG + 24 + 64 {
        return Err(malformed("too short"));
    }
    if envelope[0] != VERSION {
        return Err(malformed(&format!(
            "version {}, not {VERSION}",
            envelope[0]
        )));
    }
    let sender = PublicKey(envelope[1..33].try_into().expect("32 bytes"));
    let recipient: [u8; 32] = envelope[33..65].try_into().expect("32 bytes");
    let length = u32::from_le_bytes(envelope[97..101].try_into().expect("4 bytes")) as usize;
    if length > MAX_BODY + 24 + TAG || envelope.len() != HEAD + length + 64 {
        return Err(malformed("its length is not the one it states"));
    }
    if recipient != receiver.public() {
        return Err(EnvelopeError::NotForUs(hex::encode(recipient)));
    }
    if !peers.contains(&sender) {
        return Err(EnvelopeError::UnknownSender(sender.to_hex()));
    }
    let (body, signature) = envelope.split_at(envelope.len() - 64);
    let signature = Signature(signature.try_into().expect("64 bytes"));
    sender
        .verify(Namespace::Envelope, &signed(body, topic), &signature)
        .map_err(|_| EnvelopeError::BadSignature)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&envelope[65..97])
        .map_err(|_| malformed("its encapsulated key"))?;
    let mut info = INFO.to_vec();
    info.extend_from_slice(&sender.0);
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &receiver.secret,
        &enc,
        &info,
        &envelope[HEAD..HEAD + length],
        topic.as_bytes(),
    )
    .map_err(|_| EnvelopeError::Undecryptable)?;
    if plain.len() < 24 {
        return Err(malformed("no id and time"));
    }
    Ok(Opened {
        sender,
        id: plain[..16].try_into().expect("16 bytes"),
        time_ms: u64::from_le_bytes(plain[16..24].try_into().expect("8 bytes")),
        body: plain[24..].to_vec(),
    })
}

/// The messages a node has accepted within the window: a message seen before, or whose time is
/// outside the window, is refused. Bounded: entries older than the window are forgotten (their
/// messages are refused as stale anyway), and at most `capacity` are kept — when full, a new
/// message is refused until older ones leave the window.
#[derive(Debug)]
pub struct Replay {
    seen: std::collections::HashMap<(PublicKey, [u8; 16]), u64>,
    capacity: usize,
}

impl Replay {
    pub fn new(capacity: usize) -> Replay {
        Replay {
            seen: std::collections::HashMap::new(),
            capacity,
        }
    }

    /// Accepts `opened` once, if its time is within the window of `now_ms`.
    pub fn check(&mut self, opened: &Opened, now_ms: u64) -> Result<(), EnvelopeError> {
        let age = i128::from(now_ms) - i128::from(opened.time_ms);
        if age.unsigned_abs() > u128::from(WINDOW_MS) {
            return Err(EnvelopeError::Stale(age));
        }
        self.seen
            .retain(|_, time| now_ms.saturating_sub(*time) <= WINDOW_MS);
        let key = (opened.sender, opened.id);
        if self.seen.contains_key(&key) {
            return Err(EnvelopeError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(EnvelopeError::Crypto(format!(
                "{} messages within the window: no more until older ones leave it",
                self.capacity
            )));
        }
        self.seen.insert(key, opened.time_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "weft/v1/supplier/in";

    fn parties() -> (SigningKey, Receiver, PublicKey) {
        let sender = SigningKey::from_seed(&[1; 32]);
        let receiver = Receiver::from_seed(&[2; 32]);
        let public = sender.public_key();
        (sender, receiver, public)
    }

    #[test]
    fn an_envelope_opens_once_for_its_recipient_from_a_known_peer() {
        let (sender, receiver, from) = parties();
        let body = b"old 3\n\nweft/customer/...\n";
        let sealed =
            seal(&sender, &receiver.public(), TOPIC, [9; 16], 1_000_000, body).expect("sealed");
        let opened = open(&receiver, &[from], TOPIC, &sealed).expect("opens");
        assert_eq!(opened.body, body);
        assert_eq!(
            (opened.id, opened.time_ms, opened.sender),
            ([9; 16], 1_000_000, from)
        );
        let mut replay = Replay::new(8);
        replay.check(&opened, 1_050_000).expect("first time");
        // The same envelope again, later: refused.
        assert_eq!(
            replay.check(&opened, 1_060_000),
            Err(EnvelopeError::Replayed)
        );
        // Too old or from the future.
        let late = Opened {
            id: [8; 16],
            ..opened.clone()
        };
        assert!(matches!(
            replay.check(&late, 1_000_000 + WINDOW_MS + 1),
            Err(EnvelopeError::Stale(_))
        ));
        assert!(matches!(
            replay.check(&late, 1_000_000 - WINDOW_MS - 1),
            Err(EnvelopeError::Stale(_))
        ));
        // Once it left the window, its id is forgotten (and it is refused as stale anyway).
        replay.check(&late, 1_000_000).expect("another id");
        assert_eq!(replay.seen.len(), 2);
    }

    #[test]
    fn the_broker_can_neither_read_nor_forge_nor_redirect_an_envelope() {
        let (sender, receiver, from) = parties();
        let sealed = seal(
            &sender,
            &receiver.public(),
            TOPIC,
            [9; 16],
            7,
            b"a checkpoint",
        )
        .expect("sealed");
        // The body is not readable in the envelope.
        assert!(!sealed.windows(12).any(|window| window == b"a checkpoint"));
        // Any byte changed: the signature fails before any decryption.
        for at in [0usize, 1, 40, 70, 98, 110, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[at] ^= 1;
            let refused = open(&receiver, &[from], TOPIC, &altered).expect_err("altered");
            assert!(
                matches!(
                    refused,
                    EnvelopeError::BadSignature
                        | EnvelopeError::Malformed(_)
                        | EnvelopeError::NotForUs(_)
                        | EnvelopeError::UnknownSender(_)
                ),
                "byte {at}: {refused}"
            );
        }
        // Moved to another topic.
        assert_eq!(
            open(&receiver, &[from], "weft/v1/other/in", &sealed),
            Err(EnvelopeError::BadSignature)
        );
        // Re-signed by the broker's own key, claiming to be the sender: not a peer.
        let broker = SigningKey::from_seed(&[3; 32]);
        let forged =
            seal(&broker, &receiver.public(), TOPIC, [9; 16], 7, b"forged").expect("sealed");
        assert_eq!(
            open(&receiver, &[from], TOPIC, &forged),
            Err(EnvelopeError::UnknownSender(broker.public_key().to_hex()))
        );
        // The broker swaps in its own ciphertext and signs with its key under the sender's
        // name: the signature does not verify.
        let mut swapped = forged.clone();
        swapped[1..33].copy_from_slice(&from.0);
        assert_eq!(
            open(&receiver, &[from], TOPIC, &swapped),
            Err(EnvelopeError::BadSignature)
        );
        // Another node's key cannot open it.
        let other = Receiver::from_seed(&[4; 32]);
        assert!(matches!(
            open(&other, &[from], TOPIC, &sealed),
            Err(EnvelopeError::NotForUs(_))
        ));
        // Short, oversized, or of another version.
        assert!(matches!(
            open(&receiver, &[from], TOPIC, &sealed[..50]),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(
            seal(
                &sender,
                &receiver.public(),
                TOPIC,
                [0; 16],
                0,
                &vec![0; MAX_BODY + 1]
            )
            .is_err()
        );
    }

    /// docs/anchoring.md, "Envelopes": an envelope made once with these keys, opened here.
    #[test]
    fn the_documented_envelope_opens() {
        let (_, receiver, from) = parties();
        let documented = include_str!("../../../docs/anchoring.md")
            .split("<!-- envelope vector -->")
            .nth(1)
            .and_then(|rest| rest.split("```text\n").nth(1))
            .and_then(|rest| rest.split("\n```").next())
            .expect("the vector in docs/anchoring.md")
            .replace('\n', "");
        let bytes = hex::decode(documented).expect("hex");
        let opened = open(&receiver, &[from], TOPIC, &bytes).expect("opens");
        assert_eq!(opened.body, b"old 0\n");
        assert_eq!((opened.id, opened.time_ms), ([9; 16], 1_765_000_000_000));
        assert_eq!(
            hex::encode(receiver.public()),
            include_str!("../../../docs/anchoring.md")
                .split("recipient X25519 public key `")
                .nth(1)
                .and_then(|rest| rest.split('`').next())
                .expect("the key in docs/anchoring.md")
        );
    }
}
