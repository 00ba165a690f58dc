//! weft-core: the vocabulary every other weft crate speaks.
//!
//! This crate does no I/O (no files, no sockets, no clock). It holds:
//!
//! - [`hash`]: 32-byte identity newtypes ([`TxId`], [`BlockHash`], [`ResourceId`], [`ChainId`],
//!   [`MerkleRoot`]) that cannot be mixed up with one another.
//! - [`fingerprint`]: streaming, constant-memory fingerprints of product data with the algorithm
//!   recorded next to the digest (SHA-256 default, SHA3-256, BLAKE3).
//! - [`encoding`]: the canonical binary encoding (Borsh, see `docs/encoding.md`) with bounded
//!   decoding of untrusted bytes: a size limit checked before decoding, semantic limits checked
//!   after, trailing bytes refused.
//! - [`keys`]: Ed25519 identities; every signature is bound to a [`keys::Namespace`] so a
//!   signature over one kind of message can never be replayed as another.
//! - [`merkle`]: RFC 6962 Merkle trees (0x00 leaf / 0x01 node prefixes) and inclusion proofs.
//! - [`model`]: the NIST AMS 300-6 information model (Data, Provenance, Transaction packages)
//!   and weft's additions (resources and keys, generic records, physical parts).

pub mod encoding;
pub mod error;
pub mod fingerprint;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod model;
pub mod smt;

pub use error::CoreError;
pub use fingerprint::{Fingerprint, Fingerprinter, HashAlgo};
pub use hash::{BlockHash, ChainId, Hash32, MerkleRoot, ResourceId, TxId};
pub use keys::{Namespace, PublicKey, Signature, SigningKey};
