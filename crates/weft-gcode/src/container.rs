//! The sealed container: a header, then one block per segment, each chained to the one before.
//! The format is specified in docs/gcode.md; this module is its only reader and writer.
//!
//! ```text
//! container := MAGIC header block*
//! header    := u32 length (LE) ‖ Borsh(ContainerHeader)
//! block     := u32 length (LE) ‖ Borsh(StoredBlock)
//! ```
//!
//! A block's hash covers its body *as stored* (ciphertext when encrypted), so tampering is found
//! without a key. Block 0's `previous` is the header's hash, which binds the receivers' wrapped
//! keys to the chain.

use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hpke::aead::ChaCha20Poly1305 as HpkeChaCha;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};

use crate::error::{GcodeError, Result, malformed};
use crate::keys::{ReceiverPublic, ReceiverSecret, rsa_decrypt};
use crate::segment::{Segment, SegmentKind};

pub const MAGIC: &[u8; 8] = b"WEFTGC\x00\x01";
pub const CONTAINER_VERSION: u8 = 1;
/// Largest header: up to [`MAX_RECIPIENTS`] receivers with their wrapped keys.
pub const MAX_HEADER_BYTES: u32 = 1 << 20;
/// Largest stored block (one segment of G-code, plus its AEAD tag and fields).
pub const MAX_BLOCK_BYTES: u32 = 256 << 20;
pub const MAX_RECIPIENTS: usize = 256;
/// Largest number of segments a container may declare.
pub const MAX_SEGMENTS: u32 = 10_000_000;

const HEADER_TAG: &[u8] = b"weft/gcode/header/v1";
const BLOCK_TAG: &[u8] = b"weft/gcode/block/v1";
const HPKE_INFO: &[u8] = b"weft/gcode/content-key/v1";

/// How a receiver's copy of the content key is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum WrapScheme {
    /// HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
    HpkeX25519 = 1,
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017), label `weft/gcode/content-key/v1`
    /// followed by the key id; `encapsulated` is empty.
    RsaOaepSha256 = 2,
}

/// One receiver of an encrypted container.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Recipient {
    pub scheme: WrapScheme,
    /// SHA-256 of the receiver's public key bytes.
    pub key_id: [u8; 32],
    /// The HPKE encapsulated key (empty for RSA-OAEP).
    pub encapsulated: Vec<u8>,
    /// The content key, sealed to the receiver.
    pub wrapped_key: Vec<u8>,
}

/// The container's header.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ContainerHeader {
    pub version: u8,
    /// Number of blocks that follow.
    pub segments: u32,
    /// Bytes of the original G-code.
    pub plain_bytes: u64,
    /// Empty: bodies are plain G-code. Otherwise: bodies are ChaCha20-Poly1305 ciphertexts under
    /// one random content key, wrapped for each receiver.
    pub recipients: Vec<Recipient>,
}

impl ContainerHeader {
    pub fn hash(&self) -> [u8; 32] {
        tagged_hash(HEADER_TAG, &borsh::to_vec(self).unwrap_or_default())
    }

    pub fn encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }
}

/// One block: a segment of the file, chained to the block before.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StoredBlock {
    pub index: u32,
    pub kind: SegmentKind,
    /// 1-based layer number; 0 for the preamble and the postamble.
    pub layer: u32,
    /// Height in micrometres, if known.
    pub z_um: Option<i64>,
    /// Bytes of the plain segment.
    pub plain_bytes: u64,
    /// Hash of the previous block (block 0: of the header).
    pub previous: [u8; 32],
    /// The segment's bytes: plain, or its ciphertext with tag.
    pub body: Vec<u8>,
}

/// The fields that bind a body to its place: the AEAD's associated data.
#[derive(BorshSerialize)]
struct BlockPlace<'a> {
    index: u32,
    kind: SegmentKind,
    layer: u32,
    z_um: Option<i64>,
    plain_bytes: u64,
    previous: &'a [u8; 32],
}

impl StoredBlock {
    pub fn hash(&self) -> [u8; 32] {
        tagged_hash(BLOCK_TAG, &borsh::to_vec(self).unwrap_or_default())
    }

    fn place(&self) -> Vec<u8> {
        borsh::to_vec(&BlockPlace {
            index: self.index,
            kind: self.kind,
            layer: self.layer,
            z_um: self.z_um,
            plain_bytes: self.plain_bytes,
            previous: &self.previous,
        })
        .unwrap_or_default()
    }
}

pub(crate) fn tagged_hash(tag: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((tag.len() as u32).to_le_bytes());
    hasher.update(tag);
    hasher.update(bytes);
    hasher.finalize().into()
}

fn nonce(index: u32) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[8..].copy_from_slice(&index.to_be_bytes());
    Nonce::from(bytes)
}

/// What sealing produced, for the manifest.
#[derive(Clone, Debug)]
pub struct Sealed {
    pub header_hash: [u8; 32],
    /// SHA-256 of the whole plain file.
    pub file_sha256: [u8; 32],
    /// Per segment: the stored block's hash and the plain bytes' SHA-256.
    pub blocks: Vec<([u8; 32], [u8; 32])>,
    pub chain_head: [u8; 32],
}

/// The content key sealed to one receiver.
fn wrap(key: &[u8; 32], receiver: &ReceiverPublic) -> Result<Recipient> {
    let key_id = receiver.key_id();
    let failed = |error: String| GcodeError::Crypto(format!("wrapping the content key: {error}"));
    match receiver {
        ReceiverPublic::X25519(public) => {
            let (encapsulated, wrapped_key) = hpke::single_shot_seal::<
                HpkeChaCha,
                HkdfSha256,
                X25519HkdfSha256,
            >(
                &OpModeS::Base, public, HPKE_INFO, key, &key_id
            )
            .map_err(|error| failed(error.to_string()))?;
            Ok(Recipient {
                scheme: WrapScheme::HpkeX25519,
                key_id,
                encapsulated: encapsulated.to_bytes().to_vec(),
                wrapped_key,
            })
        }
        ReceiverPublic::Rsa(public) => Ok(Recipient {
            scheme: WrapScheme::RsaOaepSha256,
            key_id,
            encapsulated: Vec::new(),
            wrapped_key: public.encrypt(key, &rsa_label(&key_id))?,
        }),
    }
}

fn rsa_label(key_id: &[u8; 32]) -> Vec<u8> {
    [HPKE_INFO, key_id].concat()
}

fn write_frame(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(bytes)?;
    Ok(())
}

/// Writes the container of `plain`, cut into `segments`, encrypted for `receivers` (plain if
/// there are none).
pub fn seal(
    plain: &[u8],
    segments: &[Segment],
    receivers: &[ReceiverPublic],
    out: &mut impl Write,
) -> Result<Sealed> {
    if receivers.len() > MAX_RECIPIENTS {
        return Err(malformed(
            "receivers",
            format!("{} given, at most {MAX_RECIPIENTS}", receivers.len()),
        ));
    }
    if segments.len() as u64 > u64::from(MAX_SEGMENTS) {
        return Err(GcodeError::TooLarge {
            what: "segment list",
            size: segments.len() as u64,
            max: u64::from(MAX_SEGMENTS),
        });
    }
    let mut cipher = None;
    let mut recipients = Vec::with_capacity(receivers.len());
    if !receivers.is_empty() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|error| GcodeError::Crypto(error.to_string()))?;
        cipher = Some(
            ChaCha20Poly1305::new_from_slice(&key)
                .map_err(|error| GcodeError::Crypto(format!("content key: {error}")))?,
        );
        for receiver in receivers {
            recipients.push(wrap(&key, receiver)?);
        }
        key.fill(0);
    }
    let header = ContainerHeader {
        version: CONTAINER_VERSION,
        segments: segments.len() as u32,
        plain_bytes: plain.len() as u64,
        recipients,
    };
    out.write_all(MAGIC)?;
    write_frame(out, &borsh::to_vec(&header).map_err(GcodeError::Io)?)?;
    let header_hash = header.hash();
    // The plain hashes (each segment's, and the whole file's) are computed on a second thread
    // while this one encrypts, hashes and writes the stored blocks.
    let (stored, plain_hashes, file_sha256) = std::thread::scope(|scope| {
        let plain_side = scope.spawn(|| {
            let hashes: Vec<[u8; 32]> = segments
                .iter()
                .map(|segment| {
                    plain
                        .get(segment.start as usize..segment.end as usize)
                        .map_or([0; 32], |bytes| Sha256::digest(bytes).into())
                })
                .collect();
            (hashes, <[u8; 32]>::from(Sha256::digest(plain)))
        });
        let stored = write_blocks(plain, segments, cipher.as_ref(), header_hash, out);
        let (hashes, file) = plain_side
            .join()
            .map_err(|_| GcodeError::Crypto("the hashing thread failed".into()))?;
        Ok::<_, GcodeError>((stored?, hashes, file))
    })?;
    let chain_head = stored.last().copied().unwrap_or(header_hash);
    Ok(Sealed {
        header_hash,
        file_sha256,
        blocks: stored.into_iter().zip(plain_hashes).collect(),
        chain_head,
    })
}

/// Writes one chained block per segment; returns the stored blocks' hashes.
fn write_blocks(
    plain: &[u8],
    segments: &[Segment],
    cipher: Option<&ChaCha20Poly1305>,
    header_hash: [u8; 32],
    out: &mut impl Write,
) -> Result<Vec<[u8; 32]>> {
    let mut previous = header_hash;
    let mut hashes = Vec::with_capacity(segments.len());
    let mut buffer = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let bytes = plain
            .get(segment.start as usize..segment.end as usize)
            .ok_or_else(|| malformed("segments", "a segment lies outside the file"))?;
        let mut block = StoredBlock {
            index: index as u32,
            kind: segment.kind,
            layer: segment.layer.unwrap_or(0),
            z_um: segment.z_um(),
            plain_bytes: bytes.len() as u64,
            previous,
            body: Vec::new(),
        };
        block.body = match cipher {
            Some(cipher) => cipher
                .encrypt(
                    &nonce(block.index),
                    Payload {
                        msg: bytes,
                        aad: &block.place(),
                    },
                )
                .map_err(|error| {
                    GcodeError::Crypto(format!("encrypting block {index}: {error}"))
                })?,
            None => bytes.to_vec(),
        };
        buffer.clear();
        block.serialize(&mut buffer)?;
        if buffer.len() as u64 > u64::from(MAX_BLOCK_BYTES) {
            return Err(GcodeError::TooLarge {
                what: "segment",
                size: buffer.len() as u64,
                max: u64::from(MAX_BLOCK_BYTES),
            });
        }
        write_frame(out, &buffer)?;
        // The block's hash is over its encoding, which is `buffer`: no second encoding.
        previous = tagged_hash(BLOCK_TAG, &buffer);
        hashes.push(previous);
    }
    out.flush()?;
    Ok(hashes)
}

/// Reads a container block by block, in bounded memory.
#[derive(Debug)]
pub struct ContainerReader<R> {
    input: R,
    pub header: ContainerHeader,
    read: u32,
}

fn read_frame(input: &mut impl Read, what: &'static str, max: u32) -> Result<Option<Vec<u8>>> {
    let mut length = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = input.read(&mut length[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(malformed(what, "the container ends inside a length prefix"))
            };
        }
        got += n;
    }
    let length = u32::from_le_bytes(length);
    if length > max {
        return Err(GcodeError::TooLarge {
            what,
            size: u64::from(length),
            max: u64::from(max),
        });
    }
    let mut bytes = vec![0u8; length as usize];
    input.read_exact(&mut bytes).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed(
                what,
                format!("truncated: {length} bytes announced, fewer present"),
            )
        } else {
            GcodeError::Io(error)
        }
    })?;
    Ok(Some(bytes))
}

impl<R: Read> ContainerReader<R> {
    /// Reads and checks the magic and the header.
    pub fn new(mut input: R) -> Result<Self> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| malformed("container", "too short to be a weft G-code container"))?;
        if &magic != MAGIC {
            return Err(malformed(
                "container",
                "not a weft G-code container (wrong magic bytes)",
            ));
        }
        let bytes = read_frame(&mut input, "container header", MAX_HEADER_BYTES)?
            .ok_or_else(|| malformed("container header", "missing"))?;
        let header = ContainerHeader::try_from_slice(&bytes)
            .map_err(|error| malformed("container header", error.to_string()))?;
        if header.version != CONTAINER_VERSION {
            return Err(malformed(
                "container header",
                format!(
                    "version {}, this weft reads version {CONTAINER_VERSION}",
                    header.version
                ),
            ));
        }
        if header.segments > MAX_SEGMENTS || header.recipients.len() > MAX_RECIPIENTS {
            return Err(malformed(
                "container header",
                "declares more segments or receivers than allowed",
            ));
        }
        Ok(ContainerReader {
            input,
            header,
            read: 0,
        })
    }

    /// The next block, or `None` at the end of the container.
    pub fn next_block(&mut self) -> Result<Option<StoredBlock>> {
        let Some(bytes) = read_frame(&mut self.input, "container block", MAX_BLOCK_BYTES)? else {
            return Ok(None);
        };
        let block = StoredBlock::try_from_slice(&bytes).map_err(|error| {
            malformed(
                "container block",
                format!("block {} does not decode: {error}", self.read),
            )
        })?;
        self.read += 1;
        Ok(Some(block))
    }

    /// The content key for `secret`, if this container was sealed for it.
    pub fn content_key(&self, secret: &ReceiverSecret) -> Result<ContentKey> {
        if !self.header.encrypted() {
            return Err(GcodeError::Crypto(
                "this container is not encrypted; no key is needed".into(),
            ));
        }
        let key_id = secret.public().key_id();
        let recipient = self
            .header
            .recipients
            .iter()
            .find(|recipient| recipient.key_id == key_id)
            .ok_or_else(|| {
                GcodeError::Crypto(format!(
                    "this container was not sealed for key {} (its receivers: {})",
                    hex::encode(&key_id[..8]),
                    self.header
                        .recipients
                        .iter()
                        .map(|r| hex::encode(&r.key_id[..8]))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let refused = || GcodeError::Crypto("the content key does not open with this key".into());
        let mut key = match (secret, recipient.scheme) {
            (ReceiverSecret::X25519(secret), WrapScheme::HpkeX25519) => {
                let encapsulated = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(
                    &recipient.encapsulated,
                )
                .map_err(|error| malformed("receiver entry", error.to_string()))?;
                hpke::single_shot_open::<HpkeChaCha, HkdfSha256, X25519HkdfSha256>(
                    &OpModeR::Base,
                    secret,
                    &encapsulated,
                    HPKE_INFO,
                    &recipient.wrapped_key,
                    &key_id,
                )
                .map_err(|_| refused())?
            }
            (ReceiverSecret::Rsa(pair), WrapScheme::RsaOaepSha256) => {
                rsa_decrypt(&pair.0, &recipient.wrapped_key, &rsa_label(&key_id))
                    .ok_or_else(refused)?
            }
            (_, scheme) => {
                return Err(malformed(
                    "receiver entry",
                    format!("wrapped with {scheme:?}, which does not match this key's kind"),
                ));
            }
        };
        let cipher = ChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| malformed("receiver entry", "the content key has the wrong length"));
        key.fill(0);
        Ok(ContentKey(cipher?))
    }
}

/// An opened content key.
pub struct ContentKey(ChaCha20Poly1305);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(…)")
    }
}

impl ContentKey {
    /// The plain bytes of `block`.
    pub fn decrypt(&self, block: &StoredBlock) -> Result<Vec<u8>> {
        self.0
            .decrypt(
                &nonce(block.index),
                Payload {
                    msg: &block.body,
                    aad: &block.place(),
                },
            )
            .map_err(|_| {
                GcodeError::Crypto(format!(
                    "block {} does not decrypt: altered, or sealed under another key",
                    block.index
                ))
            })
    }
}
