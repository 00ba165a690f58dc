//! The manifest (the paper's "benchmark"): for every segment the hash of its stored block and of
//! its plain bytes, the chain heads, signed with an Ed25519 identity key. JSON on disk; the
//! signature covers the Borsh encoding of everything but the signature (docs/gcode.md).

use borsh::BorshSerialize;
use serde::{Deserialize, Serialize};
use weft_core::{Namespace, PublicKey, Signature, SigningKey};

use crate::container::{Sealed, tagged_hash};
use crate::error::{Result, malformed};
use crate::segment::{Segment, SegmentKind};

pub const MANIFEST_FORMAT: &str = "weft-gcode-manifest/1";
/// Largest manifest file read.
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;
const PLAIN_TAG: &[u8] = b"weft/gcode/plain/v1";

/// One segment as the manifest records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, BorshSerialize)]
pub struct ManifestSegment {
    pub kind: SegmentKind,
    /// 1-based layer number; absent for the preamble and postamble.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
    /// Height in micrometres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_um: Option<i64>,
    pub bytes: u64,
    /// SHA-256 of the plain segment (hex).
    pub plain: String,
    /// Hash of the stored container block (hex).
    pub block: String,
}

/// The signed content of a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, BorshSerialize)]
pub struct ManifestBody {
    pub format: String,
    /// The original file's name (informative).
    pub file_name: String,
    pub file_bytes: u64,
    /// SHA-256 of the whole original file (hex).
    pub file_sha256: String,
    /// How the layers were found (informative).
    pub method: String,
    /// Hash of the container header (hex): binds receivers and wrapped keys.
    pub header_hash: String,
    /// Hash of the container's last block (hex).
    pub chain_head: String,
    /// Head of the chain over the plain segment hashes (hex).
    pub plain_head: String,
    pub segments: Vec<ManifestSegment>,
}

/// A manifest: its body and, if signed, the signer and signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub body: ManifestBody,
    #[serde(default)]
    pub signer: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
}

/// The chain over plain segment hashes: `h_i = H(tag ‖ h_{i-1} ‖ i ‖ plain_i)`, `h_{-1} = 0`.
pub fn plain_head<'a>(plain_hashes: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut head = [0u8; 32];
    for (index, hash) in plain_hashes.into_iter().enumerate() {
        let mut bytes = Vec::with_capacity(68);
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&(index as u32).to_le_bytes());
        bytes.extend_from_slice(hash);
        head = tagged_hash(PLAIN_TAG, &bytes);
    }
    head
}

/// Parses 64 hex digits.
pub fn parse_hash(what: &'static str, text: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(text).map_err(|error| malformed(what, error.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| malformed(what, "expected 32 bytes (64 hex digits)"))
}

impl Manifest {
    /// The manifest of a sealed file.
    pub fn new(
        file_name: &str,
        plain: &[u8],
        method: &str,
        segments: &[Segment],
        sealed: &Sealed,
    ) -> Self {
        let records = segments
            .iter()
            .zip(&sealed.blocks)
            .map(|(segment, (block, plain_hash))| ManifestSegment {
                kind: segment.kind,
                layer: segment.layer,
                z_um: segment.z_um(),
                bytes: segment.end - segment.start,
                plain: hex::encode(plain_hash),
                block: hex::encode(block),
            })
            .collect();
        Manifest {
            body: ManifestBody {
                format: MANIFEST_FORMAT.into(),
                file_name: file_name.into(),
                file_bytes: plain.len() as u64,
                file_sha256: hex::encode(sealed.file_sha256),
                method: method.into(),
                header_hash: hex::encode(sealed.header_hash),
                chain_head: hex::encode(sealed.chain_head),
                plain_head: hex::encode(plain_head(sealed.blocks.iter().map(|(_, p)| p))),
                segments: records,
            },
            signer: None,
            signature: None,
        }
    }

    fn signed_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&self.body).unwrap_or_default()
    }

    pub fn sign(&mut self, key: &SigningKey) {
        let signature = key.sign(Namespace::Manifest, &self.signed_bytes());
        self.signer = Some(key.public_key().to_hex());
        self.signature = Some(hex::encode(signature.0));
    }

    /// `None` if unsigned; otherwise whether the signature is valid, and the signer.
    pub fn check_signature(&self) -> Option<(bool, Option<PublicKey>)> {
        let (signer, signature) = match (&self.signer, &self.signature) {
            (None, None) => return None,
            (Some(signer), Some(signature)) => (signer, signature),
            _ => return Some((false, None)),
        };
        let Ok(key) = PublicKey::from_hex(signer) else {
            return Some((false, None));
        };
        let valid = hex::decode(signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .is_some_and(|bytes| {
                key.verify(Namespace::Manifest, &self.signed_bytes(), &Signature(bytes))
                    .is_ok()
            });
        Some((valid, Some(key)))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Parses and checks the structure (format, hex fields, layer numbering).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(crate::error::GcodeError::TooLarge {
                what: "manifest",
                size: bytes.len() as u64,
                max: MAX_MANIFEST_BYTES,
            });
        }
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|error| malformed("manifest", error.to_string()))?;
        if manifest.body.format != MANIFEST_FORMAT {
            return Err(malformed(
                "manifest",
                format!(
                    "format is {:?}, expected {MANIFEST_FORMAT:?}",
                    manifest.body.format
                ),
            ));
        }
        parse_hash("manifest header_hash", &manifest.body.header_hash)?;
        parse_hash("manifest chain_head", &manifest.body.chain_head)?;
        parse_hash("manifest plain_head", &manifest.body.plain_head)?;
        for (index, segment) in manifest.body.segments.iter().enumerate() {
            parse_hash("manifest segment plain hash", &segment.plain)?;
            parse_hash("manifest segment block hash", &segment.block)?;
            if (segment.kind == SegmentKind::Layer) != segment.layer.is_some() {
                return Err(malformed(
                    "manifest",
                    format!("segment {index}: only layers carry a layer number"),
                ));
            }
        }
        Ok(manifest)
    }

    /// How the manifest names segment `index`: `layer n`, `preamble` or `postamble`.
    pub fn name_of(&self, index: usize) -> String {
        match self.body.segments.get(index) {
            Some(segment) => match segment.layer {
                Some(layer) => format!("layer {layer}"),
                None => segment.kind.name().to_string(),
            },
            None => format!("segment {index}"),
        }
    }
}
