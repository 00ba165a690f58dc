//! The canonical binary encoding: Borsh (<https://borsh.io>), which is deterministic and
//! strict — booleans must be 0/1, `Option` tags 0/1, enum tags must name a variant, strings
//! must be UTF-8, and [`decode`] refuses trailing bytes — so one value has exactly one encoding
//! and one encoding decodes to at most one value. Every top-level hashed or signed structure
//! starts with a format version byte. The full specification and golden vectors are in
//! `docs/encoding.md`.
//!
//! Untrusted bytes are decoded in three steps: the byte length is checked against the type's
//! [`Canonical::MAX_ENCODED`] before anything is read (so no allocation can exceed it), the
//! bytes are decoded, then [`Canonical::validate`] checks the semantic limits (string lengths,
//! list counts) that Borsh itself does not know about.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::CoreError;

/// Current version of every versioned weft structure.
pub const FORMAT_VERSION: u8 = 1;

/// A type with a canonical encoding and decoding limits.
pub trait Canonical: BorshSerialize + BorshDeserialize {
    /// Name used in error messages.
    const WHAT: &'static str;
    /// Largest accepted encoding, in bytes.
    const MAX_ENCODED: usize;
    /// Checks field limits after decoding (and before encoding something built locally).
    fn validate(&self) -> Result<(), CoreError> {
        Ok(())
    }
}

/// The canonical bytes of `value`.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("serialising into a Vec<u8> cannot fail")
}

/// Decodes untrusted bytes: size limit first, then strict decoding without trailing bytes,
/// then field limits.
pub fn decode<T: Canonical>(bytes: &[u8]) -> Result<T, CoreError> {
    if bytes.len() > T::MAX_ENCODED {
        return Err(CoreError::TooLarge {
            what: T::WHAT,
            len: bytes.len(),
            max: T::MAX_ENCODED,
        });
    }
    let value: T = borsh::from_slice(bytes).map_err(|error| CoreError::Malformed {
        what: T::WHAT,
        reason: error.to_string(),
    })?;
    value.validate()?;
    Ok(value)
}

/// Checks a string field: at most `max` bytes and no control characters (which would let a
/// record spoof lines in human output).
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), CoreError> {
    if value.len() > max {
        return Err(CoreError::InvalidField {
            field,
            reason: format!("{} bytes, at most {max} allowed", value.len()),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::InvalidField {
            field,
            reason: "contains control characters".into(),
        });
    }
    Ok(())
}

/// Checks a mandatory string field: non-empty, then as [`check_text`].
pub fn check_required_text(field: &'static str, value: &str, max: usize) -> Result<(), CoreError> {
    if value.trim().is_empty() {
        return Err(CoreError::InvalidField {
            field,
            reason: "must not be empty".into(),
        });
    }
    check_text(field, value, max)
}

/// Checks an optional string field.
pub fn check_optional_text(
    field: &'static str,
    value: &Option<String>,
    max: usize,
) -> Result<(), CoreError> {
    match value {
        Some(text) => check_required_text(field, text, max),
        None => Ok(()),
    }
}

/// Checks the number of entries in a list.
pub fn check_count(
    field: &'static str,
    count: usize,
    min: usize,
    max: usize,
) -> Result<(), CoreError> {
    if count < min || count > max {
        return Err(CoreError::InvalidField {
            field,
            reason: format!("{count} entries, between {min} and {max} allowed"),
        });
    }
    Ok(())
}

/// Checks a version byte.
pub fn check_version(field: &'static str, version: u8) -> Result<(), CoreError> {
    if version != FORMAT_VERSION {
        return Err(CoreError::InvalidField {
            field,
            reason: format!(
                "format version {version} is not supported (this build reads version {FORMAT_VERSION})"
            ),
        });
    }
    Ok(())
}
