//! The framing of a second-tier sealed record (docs/ingest-tcp.md, "Encryption: two tiers"):
//!
//! ```text
//! magic "weftseal" (8) | version u8 | key id (8) | nonce (12) | AES-256-GCM ciphertext ‖ tag (16)
//! ```
//!
//! The first [`HEADER_LEN`] bytes are the associated data of the AEAD. Only the framing is
//! here, pure and fuzzed (`fuzz/fuzz_targets/sealed_record.rs`): the key and the decryption
//! stay with the submitter's CLI, since the node never holds the key.

/// First bytes of every sealed record.
pub const MAGIC: &[u8; 8] = b"weftseal";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// The key id: the first bytes of SHA-256("weft seal key" ‖ key).
pub const KEY_ID_LEN: usize = 8;
/// The AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Magic, version, key id and nonce: the associated data of the AEAD.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN + NONCE_LEN;
/// The AES-256-GCM tag that ends the ciphertext.
pub const TAG_LEN: usize = 16;

const VERSION_AT: usize = MAGIC.len();
const KEY_ID_AT: usize = VERSION_AT + 1;
const NONCE_AT: usize = KEY_ID_AT + KEY_ID_LEN;

/// A sealed record split into its parts (nothing decrypted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub key_id: [u8; KEY_ID_LEN],
    pub nonce: [u8; NONCE_LEN],
    /// The first [`HEADER_LEN`] bytes: the associated data.
    pub header: &'a [u8],
    /// The ciphertext and its tag: at least [`TAG_LEN`] bytes.
    pub ciphertext: &'a [u8],
}

/// Why bytes are not a sealed record this build reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealedError {
    #[error("the record is not sealed (no weftseal header)")]
    NotSealed,
    #[error("sealed with format version {0}, this build reads {VERSION}")]
    Version(u8),
}

/// The header of a record sealed with `key_id` and `nonce`.
pub fn header(key_id: &[u8; KEY_ID_LEN], nonce: &[u8; NONCE_LEN]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..VERSION_AT].copy_from_slice(MAGIC);
    header[VERSION_AT] = VERSION;
    header[KEY_ID_AT..NONCE_AT].copy_from_slice(key_id);
    header[NONCE_AT..].copy_from_slice(nonce);
    header
}

/// Splits untrusted bytes into header and ciphertext, checking the magic, the version and that
/// a tag's worth of ciphertext follows.
pub fn parse(bytes: &[u8]) -> Result<Sealed<'_>, SealedError> {
    if bytes.len() < HEADER_LEN + TAG_LEN || !bytes.starts_with(MAGIC) {
        return Err(SealedError::NotSealed);
    }
    let (header, ciphertext) = bytes.split_at(HEADER_LEN);
    if header[VERSION_AT] != VERSION {
        return Err(SealedError::Version(header[VERSION_AT]));
    }
    let mut key_id = [0u8; KEY_ID_LEN];
    key_id.copy_from_slice(&header[KEY_ID_AT..NONCE_AT]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[NONCE_AT..]);
    Ok(Sealed {
        key_id,
        nonce,
        header,
        ciphertext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_parses_back_into_its_parts() {
        let header = header(&[1; KEY_ID_LEN], &[2; NONCE_LEN]);
        assert_eq!(HEADER_LEN, 29, "docs/ingest-tcp.md's layout");
        assert_eq!(&header[..8], b"weftseal");
        assert_eq!(header[8], 1);
        let mut bytes = header.to_vec();
        bytes.extend([3; TAG_LEN + 5]);
        let sealed = parse(&bytes).expect("parses");
        assert_eq!(sealed.key_id, [1; KEY_ID_LEN]);
        assert_eq!(sealed.nonce, [2; NONCE_LEN]);
        assert_eq!(sealed.header, &header[..]);
        assert_eq!(sealed.ciphertext, &[3; TAG_LEN + 5][..]);
    }

    #[test]
    fn short_foreign_or_newer_records_are_refused() {
        let mut bytes = header(&[1; KEY_ID_LEN], &[2; NONCE_LEN]).to_vec();
        bytes.extend([0; TAG_LEN - 1]);
        assert_eq!(
            parse(&bytes),
            Err(SealedError::NotSealed),
            "no room for a tag"
        );
        bytes.push(0);
        assert!(parse(&bytes).is_ok(), "an empty plaintext's tag alone");
        assert_eq!(parse(b"plain text"), Err(SealedError::NotSealed));
        let mut other = bytes.clone();
        other[0] = b'W';
        assert_eq!(parse(&other), Err(SealedError::NotSealed));
        let mut newer = bytes;
        newer[8] = 2;
        assert_eq!(parse(&newer), Err(SealedError::Version(2)));
        assert_eq!(
            SealedError::Version(2).to_string(),
            "sealed with format version 2, this build reads 1"
        );
    }
}
