//! Fingerprints of product data (`fingerprint` + `hashAlgo` in NIST AMS 300-6).
//!
//! A fingerprint records its algorithm next to its digest, so two fingerprints of the same file
//! under different algorithms are different values, and a reader always knows how to recompute
//! one. Hashing is streaming: [`Fingerprinter`] takes chunks, so files of any size are
//! fingerprinted in constant memory. SHA-256 uses the CPU's SHA extensions when present.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::Digest;

use crate::CoreError;
use crate::hash::truncate_for_message;

/// The fingerprint algorithm (`hashAlgo`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum HashAlgo {
    #[default]
    Sha256 = 0,
    Sha3_256 = 1,
    Blake3 = 2,
}

impl HashAlgo {
    pub const ALL: [HashAlgo; 3] = [HashAlgo::Sha256, HashAlgo::Sha3_256, HashAlgo::Blake3];

    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha3_256 => "sha3-256",
            HashAlgo::Blake3 => "blake3",
        }
    }
}

impl std::str::FromStr for HashAlgo {
    type Err = CoreError;
    fn from_str(input: &str) -> Result<Self, CoreError> {
        HashAlgo::ALL
            .into_iter()
            .find(|algo| algo.name().eq_ignore_ascii_case(input))
            .ok_or_else(|| CoreError::Parse {
                what: "hash algorithm",
                input: truncate_for_message(input),
                reason: "expected sha256, sha3-256 or blake3".into(),
            })
    }
}

impl std::fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest together with the algorithm that produced it. Text form: `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Fingerprint {
    pub algo: HashAlgo,
    pub digest: [u8; 32],
}

impl Fingerprint {
    /// Fingerprints bytes already in memory.
    pub fn of_bytes(algo: HashAlgo, bytes: &[u8]) -> Self {
        let mut fingerprinter = Fingerprinter::new(algo);
        fingerprinter.update(bytes);
        fingerprinter.finish()
    }

    /// 33 bytes: the algorithm tag and the digest. Used as a storage key.
    pub fn key_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.algo as u8;
        out[1..].copy_from_slice(&self.digest);
        out
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algo, hex::encode(self.digest))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = CoreError;
    /// Accepts `algo:hex` or bare hex (then SHA-256).
    fn from_str(input: &str) -> Result<Self, CoreError> {
        let (algo, digest_hex) = match input.split_once(':') {
            Some((algo, rest)) => (algo.parse()?, rest),
            None => (HashAlgo::Sha256, input),
        };
        let digest = crate::Hash32::from_hex("fingerprint", digest_hex)?.0;
        Ok(Fingerprint { algo, digest })
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental fingerprinting: feed chunks with [`update`](Self::update), then
/// [`finish`](Self::finish).
#[derive(Clone)]
pub struct Fingerprinter {
    state: State,
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha3(sha3::Sha3_256),
    Blake3(Box<blake3::Hasher>),
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("algo", &self.algo())
            .finish()
    }
}

impl Fingerprinter {
    pub fn new(algo: HashAlgo) -> Self {
        let state = match algo {
            HashAlgo::Sha256 => State::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha3_256 => State::Sha3(sha3::Sha3_256::new()),
            HashAlgo::Blake3 => State::Blake3(Box::new(blake3::Hasher::new())),
        };
        Fingerprinter { state }
    }

    pub fn algo(&self) -> HashAlgo {
        match self.state {
            State::Sha256(_) => HashAlgo::Sha256,
            State::Sha3(_) => HashAlgo::Sha3_256,
            State::Blake3(_) => HashAlgo::Blake3,
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        match &mut self.state {
            State::Sha256(hasher) => hasher.update(chunk),
            State::Sha3(hasher) => hasher.update(chunk),
            State::Blake3(hasher) => {
                hasher.update(chunk);
            }
        }
    }

    pub fn finish(self) -> Fingerprint {
        let algo = self.algo();
        let digest: [u8; 32] = match self.state {
            State::Sha256(hasher) => hasher.finalize().into(),
            State::Sha3(hasher) => hasher.finalize().into(),
            State::Blake3(hasher) => *hasher.finalize().as_bytes(),
        };
        Fingerprint { algo, digest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer tests for "abc" from FIPS 180-2, FIPS 202 and the BLAKE3 reference.
    #[test]
    fn known_answers() {
        let cases = [
            (
                HashAlgo::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgo::Sha3_256,
                "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
            ),
            (
                HashAlgo::Blake3,
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
        ];
        for (algo, expected) in cases {
            assert_eq!(
                hex::encode(Fingerprint::of_bytes(algo, b"abc").digest),
                expected,
                "{algo}"
            );
        }
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for algo in HashAlgo::ALL {
            let mut fingerprinter = Fingerprinter::new(algo);
            for chunk in data.chunks(777) {
                fingerprinter.update(chunk);
            }
            assert_eq!(fingerprinter.finish(), Fingerprint::of_bytes(algo, &data));
        }
    }

    #[test]
    fn text_form() {
        let fingerprint = Fingerprint::of_bytes(HashAlgo::Blake3, b"x");
        let text = fingerprint.to_string();
        assert!(text.starts_with("blake3:"));
        assert_eq!(
            text.parse::<Fingerprint>().expect("round trip"),
            fingerprint
        );
        let bare = Fingerprint::of_bytes(HashAlgo::Sha256, b"x");
        assert_eq!(
            hex::encode(bare.digest)
                .parse::<Fingerprint>()
                .expect("bare hex"),
            bare
        );
        assert!("md5:00".parse::<Fingerprint>().is_err());
    }
}
