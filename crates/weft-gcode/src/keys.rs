//! Receiver keys: X25519 key pairs for HPKE (RFC 9180), as small text files.
//!
//! `NAME.pub` holds `weft-x25519-public <hex>`; `NAME.key` holds `weft-x25519-secret <hex>`.

use hpke::kem::{Kem as _, X25519HkdfSha256};
use hpke::{Deserializable, Serializable};
use sha2::{Digest, Sha256};

use crate::error::{Result, malformed};

type Kem = X25519HkdfSha256;
const PUBLIC_TAG: &str = "weft-x25519-public";
const SECRET_TAG: &str = "weft-x25519-secret";

/// A receiver's public key.
#[derive(Clone)]
pub struct ReceiverPublic(pub(crate) <Kem as hpke::Kem>::PublicKey);

/// A receiver's secret key.
pub struct ReceiverSecret(pub(crate) <Kem as hpke::Kem>::PrivateKey);

impl std::fmt::Debug for ReceiverPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiverPublic({})", hex::encode(self.key_id()))
    }
}

impl std::fmt::Debug for ReceiverSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiverSecret(…)")
    }
}

/// A new random key pair.
pub fn generate() -> (ReceiverSecret, ReceiverPublic) {
    let (secret, public) = Kem::gen_keypair();
    (ReceiverSecret(secret), ReceiverPublic(public))
}

fn parse_tagged(text: &str, tag: &str, what: &'static str) -> Result<Vec<u8>> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix(tag) else {
        return Err(malformed(
            what,
            format!("expected a line starting with {tag:?}"),
        ));
    };
    let bytes = hex::decode(rest.trim()).map_err(|error| malformed(what, error.to_string()))?;
    if bytes.len() != 32 {
        return Err(malformed(
            what,
            format!("expected 32 bytes, got {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

impl ReceiverPublic {
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_TAG} {}\n", hex::encode(self.0.to_bytes()))
    }

    pub fn from_text(text: &str) -> Result<Self> {
        let bytes = parse_tagged(text, PUBLIC_TAG, "receiver public key")?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map(ReceiverPublic)
            .map_err(|error| malformed("receiver public key", error.to_string()))
    }

    /// SHA-256 of the public key bytes: how a container names its receivers.
    pub fn key_id(&self) -> [u8; 32] {
        Sha256::digest(self.0.to_bytes()).into()
    }
}

impl ReceiverSecret {
    pub fn to_text(&self) -> String {
        format!("{SECRET_TAG} {}\n", hex::encode(self.0.to_bytes()))
    }

    pub fn from_text(text: &str) -> Result<Self> {
        let bytes = parse_tagged(text, SECRET_TAG, "receiver secret key")?;
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&bytes)
            .map(ReceiverSecret)
            .map_err(|error| malformed("receiver secret key", error.to_string()))
    }

    pub fn public(&self) -> ReceiverPublic {
        ReceiverPublic(Kem::sk_to_pk(&self.0))
    }
}
