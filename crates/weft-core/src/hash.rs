//! 32-byte hash newtypes. Each identity gets its own type so a transaction id can never be
//! passed where a block hash is expected (the rust-bitcoin approach).

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use crate::CoreError;

/// A raw SHA-256 output. Prefer the typed wrappers below at API boundaries.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// SHA-256 of `parts`, concatenated.
    pub fn sha256(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash32(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 hex digits.
    pub fn from_hex(what: &'static str, input: &str) -> Result<Self, CoreError> {
        let parse_error = |reason: &str| CoreError::Parse {
            what,
            input: truncate_for_message(input),
            reason: reason.to_string(),
        };
        if input.len() != 64 {
            return Err(parse_error(&format!(
                "expected 64 hex digits, got {} characters",
                input.len()
            )));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(input, &mut out).map_err(|error| parse_error(&error.to_string()))?;
        Ok(Hash32(out))
    }
}

/// Keeps error messages short when someone passes a megabyte as an id.
pub(crate) fn truncate_for_message(input: &str) -> String {
    if input.chars().count() > 80 {
        format!("{}…", input.chars().take(80).collect::<String>())
    } else {
        input.to_string()
    }
}

impl std::fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl std::fmt::Display for Hash32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub Hash32);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0 .0
            }
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            pub fn from_hex(input: &str) -> Result<Self, CoreError> {
                Hash32::from_hex($what, input).map($name)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = CoreError;
            fn from_str(input: &str) -> Result<Self, CoreError> {
                Self::from_hex(input)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_newtype!(
    /// A transaction id: SHA-256 of the canonical transaction header (which commits to the payload).
    TxId, "transaction id"
);
hash_newtype!(
    /// A block hash: SHA-256 of the canonical block header.
    BlockHash, "block hash"
);
hash_newtype!(
    /// A resource (organisation or person) id, `orgOrPersId` in NIST AMS 300-6: the id of the
    /// transaction that registered it.
    ResourceId, "resource id"
);
hash_newtype!(
    /// A chain id: SHA-256 of a domain tag and the chain's human name (see [`ChainId::from_name`]).
    ChainId, "chain id"
);
hash_newtype!(
    /// The RFC 6962 Merkle tree head over a block's transactions.
    MerkleRoot, "merkle root"
);

impl ChainId {
    /// Maximum length of a chain name.
    pub const MAX_NAME: usize = 64;

    /// Derives the chain id from its name, after checking the name is 1–64 characters of
    /// `a-z A-Z 0-9 . _ -`.
    pub fn from_name(name: &str) -> Result<Self, CoreError> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(CoreError::InvalidField {
                field: "chain name",
                reason: format!(
                    "{:?} must be 1-{} characters of letters, digits, '.', '_' or '-'",
                    truncate_for_message(name),
                    Self::MAX_NAME
                ),
            });
        }
        Ok(ChainId(Hash32::sha256(&[
            b"weft chain id v1\0",
            name.as_bytes(),
        ])))
    }
}

impl TxId {
    /// Domain tag hashed in front of a transaction header.
    pub const DOMAIN: &'static [u8] = b"weft tx id v1\0";
    pub fn of_header_bytes(header: &[u8]) -> Self {
        TxId(Hash32::sha256(&[Self::DOMAIN, header]))
    }
}

impl BlockHash {
    /// Domain tag hashed in front of a block header.
    pub const DOMAIN: &'static [u8] = b"weft block hash v1\0";
    pub fn of_header_bytes(header: &[u8]) -> Self {
        BlockHash(Hash32::sha256(&[Self::DOMAIN, header]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = TxId(Hash32::sha256(&[b"x"]));
        assert_eq!(TxId::from_hex(&id.to_hex()).expect("valid hex"), id);
        let short = TxId::from_hex("abcd").expect_err("too short");
        assert!(
            short.to_string().contains("expected 64 hex digits"),
            "{short}"
        );
        let bad = TxId::from_hex(&"zz".repeat(32)).expect_err("not hex");
        assert!(bad.to_string().contains("transaction id"), "{bad}");
    }

    #[test]
    fn chain_name_rules() {
        assert!(ChainId::from_name("acme-main_1.0").is_ok());
        assert!(ChainId::from_name("").is_err());
        assert!(ChainId::from_name("has space").is_err());
        assert!(ChainId::from_name(&"a".repeat(65)).is_err());
        assert_ne!(
            ChainId::from_name("a").expect("ok"),
            ChainId::from_name("b").expect("ok")
        );
    }
}
