//! Receiver keys, as small text files: X25519 key pairs for HPKE (RFC 9180) by default, and
//! RSA key pairs (3072 to 8192 bits) for RSA-OAEP at sites that already run an RSA PKI.
//!
//! - X25519: `NAME.pub` holds `weft-x25519-public <hex>`, `NAME.key` `weft-x25519-secret <hex>`.
//! - RSA: standard PEM, so keys from an existing PKI work as they are: `NAME.pub` is a
//!   `PUBLIC KEY` (X.509 SubjectPublicKeyInfo), `NAME.key` a `PRIVATE KEY` (unencrypted PKCS#8),
//!   what `openssl genpkey -algorithm RSA` and `openssl pkey -pubout` write.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use base64ct::{Base64, Encoding};
use hpke::kem::{Kem as _, X25519HkdfSha256};
use hpke::{Deserializable, Serializable};
use sha2::{Digest, Sha256};

use crate::error::{GcodeError, Result, malformed};

type Kem = X25519HkdfSha256;
const PUBLIC_TAG: &str = "weft-x25519-public";
const SECRET_TAG: &str = "weft-x25519-secret";
/// Smallest RSA modulus accepted for a receiver.
pub const MIN_RSA_BITS: usize = 3072;
/// Largest RSA modulus accepted (the largest the RSA library handles).
pub const MAX_RSA_BITS: usize = 8192;
/// Largest key file read: an 8192-bit PKCS#8 key in PEM is under 7 KiB.
pub const MAX_KEY_TEXT: usize = 64 << 10;

/// An RSA receiver's public key, with its SubjectPublicKeyInfo DER (what its id hashes).
#[derive(Clone, Debug)]
pub struct RsaPublic {
    key: PublicEncryptingKey,
    der: Vec<u8>,
}

/// A receiver's public key.
#[derive(Clone)]
pub enum ReceiverPublic {
    X25519(<Kem as hpke::Kem>::PublicKey),
    Rsa(Box<RsaPublic>),
}

/// A receiver's secret key.
pub enum ReceiverSecret {
    X25519(<Kem as hpke::Kem>::PrivateKey),
    Rsa(Box<(PrivateDecryptingKey, RsaPublic)>),
}

impl std::fmt::Debug for ReceiverPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReceiverPublic({} {})",
            self.scheme_name(),
            hex::encode(self.key_id())
        )
    }
}

impl std::fmt::Debug for ReceiverSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiverSecret(…)")
    }
}

/// A new random X25519 key pair.
pub fn generate() -> (ReceiverSecret, ReceiverPublic) {
    let (secret, public) = Kem::gen_keypair();
    (
        ReceiverSecret::X25519(secret),
        ReceiverPublic::X25519(public),
    )
}

/// A new random RSA key pair of `bits` (3072, 4096 or 8192).
pub fn generate_rsa(bits: usize) -> Result<(ReceiverSecret, ReceiverPublic)> {
    let size = match bits {
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        8192 => KeySize::Rsa8192,
        _ => {
            return Err(malformed(
                "RSA key size",
                format!("{bits} bits; choose 3072, 4096 or 8192"),
            ));
        }
    };
    let private = PrivateDecryptingKey::generate(size)
        .map_err(|_| GcodeError::Crypto("RSA key generation failed".into()))?;
    let secret = rsa_secret(private)?;
    let public = secret.public();
    Ok((secret, public))
}

fn rsa_public(key: PublicEncryptingKey) -> Result<RsaPublic> {
    let bits = key.key_size_bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(malformed(
            "receiver public key",
            format!("an RSA key of {bits} bits; receivers need {MIN_RSA_BITS} to {MAX_RSA_BITS}"),
        ));
    }
    let der = key
        .as_der()
        .map_err(|_| malformed("receiver public key", "the RSA key does not encode"))?
        .as_ref()
        .to_vec();
    Ok(RsaPublic { key, der })
}

impl RsaPublic {
    /// RSA-OAEP (SHA-256, MGF1 with SHA-256) of `message` under this key, with `label`.
    pub(crate) fn encrypt(&self, message: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        let key = OaepPublicEncryptingKey::new(self.key.clone())
            .map_err(|_| GcodeError::Crypto("the RSA key is not usable for OAEP".into()))?;
        let mut out = vec![0u8; key.ciphertext_size()];
        let length = key
            .encrypt(&OAEP_SHA256_MGF1SHA256, message, &mut out, Some(label))
            .map_err(|_| GcodeError::Crypto("RSA-OAEP encryption failed".into()))?
            .len();
        out.truncate(length);
        Ok(out)
    }
}

/// RSA-OAEP decryption of `ciphertext` with `label`; `None` when it does not open.
pub(crate) fn rsa_decrypt(
    key: &PrivateDecryptingKey,
    ciphertext: &[u8],
    label: &[u8],
) -> Option<Vec<u8>> {
    let key = OaepPrivateDecryptingKey::new(key.clone()).ok()?;
    let mut out = vec![0u8; key.min_output_size()];
    let length = key
        .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, Some(label))
        .ok()?
        .len();
    out.truncate(length);
    Some(out)
}

fn rsa_secret(private: PrivateDecryptingKey) -> Result<ReceiverSecret> {
    let public = rsa_public(private.public_key())?;
    Ok(ReceiverSecret::Rsa(Box::new((private, public))))
}

fn parse_tagged(text: &str, tag: &str, what: &'static str) -> Result<Vec<u8>> {
    let Some(rest) = text.strip_prefix(tag) else {
        return Err(malformed(
            what,
            format!("expected a line starting with {tag:?} or an RSA key in PEM"),
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

/// The DER inside a PEM block labelled `label`; a clear error for PEM blocks of other kinds.
fn pem_body(text: &str, label: &str, what: &'static str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        let found = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("-----BEGIN "))
            .map(|rest| rest.trim_end_matches('-').to_string());
        let hint = match found.as_deref() {
            Some("RSA PRIVATE KEY") => {
                ": a PKCS#1 key; convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY`".into()
            }
            Some("RSA PUBLIC KEY") => {
                ": a PKCS#1 key; convert it with `openssl rsa -RSAPublicKey_in -pubout -in KEY`"
                    .into()
            }
            Some("ENCRYPTED PRIVATE KEY") => {
                ": a passphrase-protected key; store it unencrypted with restrictive permissions"
                    .into()
            }
            Some(other) => format!(": found a PEM {other:?} block"),
            None => String::new(),
        };
        return Err(malformed(what, format!("expected a PEM {label:?}{hint}")));
    };
    let body_start = start + begin.len();
    let Some(length) = text[body_start..].find(&end) else {
        return Err(malformed(
            what,
            format!("the PEM block has no {end:?} line"),
        ));
    };
    let body: String = text[body_start..body_start + length]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Base64::decode_vec(&body).map_err(|error| malformed(what, format!("bad PEM base64: {error}")))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = Base64::encode_string(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn check_size(text: &str, what: &'static str) -> Result<()> {
    if text.len() > MAX_KEY_TEXT {
        return Err(GcodeError::TooLarge {
            what,
            size: text.len() as u64,
            max: MAX_KEY_TEXT as u64,
        });
    }
    Ok(())
}

impl ReceiverPublic {
    pub fn to_text(&self) -> String {
        match self {
            ReceiverPublic::X25519(key) => {
                format!("{PUBLIC_TAG} {}\n", hex::encode(key.to_bytes()))
            }
            ReceiverPublic::Rsa(key) => pem("PUBLIC KEY", &key.der),
        }
    }

    /// Reads `weft-x25519-public <hex>` or an RSA `PUBLIC KEY` in PEM.
    pub fn from_text(text: &str) -> Result<Self> {
        const WHAT: &str = "receiver public key";
        check_size(text, WHAT)?;
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let der = pem_body(text, "PUBLIC KEY", WHAT)?;
            let key = PublicEncryptingKey::from_der(&der).map_err(|error| {
                malformed(
                    WHAT,
                    format!("not an RSA public key ({})", error.description_()),
                )
            })?;
            return Ok(ReceiverPublic::Rsa(Box::new(rsa_public(key)?)));
        }
        let bytes = parse_tagged(text, PUBLIC_TAG, WHAT)?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map(ReceiverPublic::X25519)
            .map_err(|error| malformed(WHAT, error.to_string()))
    }

    /// SHA-256 of the public key's bytes (X25519: the 32-byte key; RSA: its
    /// SubjectPublicKeyInfo DER): how a container names its receivers.
    pub fn key_id(&self) -> [u8; 32] {
        match self {
            ReceiverPublic::X25519(key) => Sha256::digest(key.to_bytes()).into(),
            ReceiverPublic::Rsa(key) => Sha256::digest(&key.der).into(),
        }
    }

    /// "x25519" or "rsa-3072" (the modulus size).
    pub fn scheme_name(&self) -> String {
        match self {
            ReceiverPublic::X25519(_) => "x25519".into(),
            ReceiverPublic::Rsa(key) => format!("rsa-{}", key.key.key_size_bits()),
        }
    }
}

impl ReceiverSecret {
    pub fn to_text(&self) -> Result<String> {
        match self {
            ReceiverSecret::X25519(key) => {
                Ok(format!("{SECRET_TAG} {}\n", hex::encode(key.to_bytes())))
            }
            ReceiverSecret::Rsa(pair) => {
                let der = pair
                    .0
                    .as_der()
                    .map_err(|_| GcodeError::Crypto("the RSA secret key does not encode".into()))?;
                Ok(pem("PRIVATE KEY", der.as_ref()))
            }
        }
    }

    /// Reads `weft-x25519-secret <hex>` or an RSA `PRIVATE KEY` (PKCS#8) in PEM.
    pub fn from_text(text: &str) -> Result<Self> {
        const WHAT: &str = "receiver secret key";
        check_size(text, WHAT)?;
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let der = pem_body(text, "PRIVATE KEY", WHAT)?;
            let key = PrivateDecryptingKey::from_pkcs8(&der).map_err(|error| {
                malformed(
                    WHAT,
                    format!("not an RSA private key ({})", error.description_()),
                )
            })?;
            return rsa_secret(key);
        }
        let bytes = parse_tagged(text, SECRET_TAG, WHAT)?;
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&bytes)
            .map(ReceiverSecret::X25519)
            .map_err(|error| malformed(WHAT, error.to_string()))
    }

    pub fn public(&self) -> ReceiverPublic {
        match self {
            ReceiverSecret::X25519(key) => ReceiverPublic::X25519(Kem::sk_to_pk(key)),
            ReceiverSecret::Rsa(pair) => ReceiverPublic::Rsa(Box::new(pair.1.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_round_trip_through_pem_and_small_keys_are_refused() {
        let (secret, public) = generate_rsa(3072).expect("generate");
        assert_eq!(public.scheme_name(), "rsa-3072");
        let public_text = public.to_text();
        assert!(public_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let again = ReceiverPublic::from_text(&public_text).expect("public PEM");
        assert_eq!(again.key_id(), public.key_id());
        let secret_text = secret.to_text().expect("encode");
        let secret_again = ReceiverSecret::from_text(&secret_text).expect("secret PEM");
        assert_eq!(secret_again.public().key_id(), public.key_id());

        // A 2048-bit key (valid for the RSA library) is refused by size.
        let small = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("2048");
        let small_public = pem(
            "PUBLIC KEY",
            small.public_key().as_der().expect("der").as_ref(),
        );
        let error = ReceiverPublic::from_text(&small_public).expect_err("2048 bits refused");
        assert!(error.to_string().contains("2048 bits"), "{error}");

        let pkcs1 = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let error = ReceiverSecret::from_text(pkcs1).expect_err("PKCS#1 refused");
        assert!(error.to_string().contains("openssl pkcs8"), "{error}");
        assert!(generate_rsa(1024).is_err());
    }
}
