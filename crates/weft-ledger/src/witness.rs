//! A witness of other chains (C2SP `tlog-witness`, `tlog-cosignature`): for each origin it is
//! configured with — another company's chain, by its trust root — it keeps the latest checkpoint
//! it cosigned, and cosigns a new one only if a quorum of that chain's validators signed it and
//! it extends the one before by an RFC 6962 consistency proof. It never cosigns two checkpoints
//! of one chain that contradict each other, nor a smaller one after a larger one, across
//! restarts too: the check and the new state are one durable write transaction, made before the
//! cosignature is given (docs/anchoring.md).
//!
//! [`Witness::add_checkpoint`] takes the body of `POST /add-checkpoint` and gives the answer the
//! spec asks for: `200` with a cosignature line, `400` a malformed request, `403` no trusted
//! signature, `404` an unknown origin, `409` (with the size it holds, `text/x.tlog.size`) an old
//! size that is not that, or the same size with another root, `422` a consistency proof that
//! does not hold. A request whose signatures hold but which contradicts what was cosigned is
//! kept as evidence ([`Witness::evidence`]).

use std::collections::HashMap;
use std::path::Path;

use base64ct::{Base64, Encoding as _};
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};
use weft_core::{Hash32, PublicKey, SigningKey};

use crate::checkpoint::{self, Checkpoint, Note};
// The cosignature format, shared with the verifiers of cosigned checkpoints.
pub use crate::cosigned::{cosigned_message, cosigner_key_id, verifier_key, verify_cosignature};
use crate::error::{LedgerError, Result};
use crate::state::Schedule;
use crate::trust::TrustRoot;

/// Most consistency proof lines in a request (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;
/// Largest request body: a note, the old size line and 63 proof lines.
pub const MAX_REQUEST_BYTES: usize = checkpoint::MAX_NOTE_BYTES + 64 * 46;
/// The `Content-Type` of a 409 answer's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Origin → Borsh of (size, root, the cosigned note's text).
const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("witness_latest");
/// (origin, when in s, sequence: the number of rows before it) → a request that contradicts
/// what was cosigned.
const EVIDENCE: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("witness_evidence");

/// What the witness answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `Some` for a 409 (the size it holds).
    pub content_type: Option<&'static str>,
    pub body: String,
}

impl Answer {
    fn refuse(status: u16, why: impl Into<String>) -> Self {
        let mut body = why.into();
        body.push('\n');
        Answer {
            status,
            content_type: None,
            body,
        }
    }
}

/// A chain this witness cosigns for.
#[derive(Debug, Clone)]
pub struct Witnessed {
    pub root: TrustRoot,
    /// Who makes its blocks final (its trust root's validators; later certified changes).
    pub schedule: Schedule,
}

impl Witnessed {
    /// From a trust root alone: its genesis validators.
    pub fn from_root(root: TrustRoot) -> Self {
        let schedule = Schedule {
            genesis: root.validators.clone(),
            changes: Vec::new(),
        };
        Witnessed { root, schedule }
    }
}

/// A witness: its name and key, the chains it cosigns for, and its durable state.
pub struct Witness {
    name: String,
    key: SigningKey,
    origins: HashMap<String, Witnessed>,
    db: Database,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("name", &self.name)
            .field("key", &self.key.public_key())
            .field("origins", &self.origins.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn storage(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(error.to_string())
}

impl Witness {
    /// A witness named `name` (a schema-less URL, by convention) signing with `key`, for the
    /// chains of `origins`, its state in the file at `path` (created, owner-only, if missing).
    pub fn open(path: &Path, name: &str, key: SigningKey, origins: Vec<Witnessed>) -> Result<Self> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(LedgerError::Invalid(format!(
                "a witness name is a non-empty string without spaces or '+': {name:?}"
            )));
        }
        crate::files::create_private(path).map_err(|error| {
            LedgerError::Storage(format!("cannot create {}: {error}", path.display()))
        })?;
        let db = Database::create(path).map_err(|error| {
            LedgerError::Storage(format!("cannot open {}: {error}", path.display()))
        })?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(LATEST).map_err(storage)?;
        txn.open_table(EVIDENCE).map_err(storage)?;
        txn.commit().map_err(storage)?;
        let origins = origins
            .into_iter()
            .map(|witnessed| {
                (
                    checkpoint::origin(&witnessed.root.chain, &witnessed.root.chain_id),
                    witnessed,
                )
            })
            .collect();
        Ok(Witness {
            name: name.to_string(),
            key,
            origins,
            db,
        })
    }

    /// This witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The origins it witnesses, sorted.
    pub fn origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self.origins.keys().cloned().collect();
        origins.sort();
        origins
    }

    /// The latest checkpoint cosigned for `origin`: its size and root.
    pub fn latest(&self, origin: &str) -> Result<Option<(u64, Hash32)>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(LATEST).map_err(storage)?;
        table
            .get(origin)
            .map_err(storage)?
            .map(|bytes| decode_latest(bytes.value()).map(|(size, root, _)| (size, root)))
            .transpose()
    }

    /// The requests kept as evidence for `origin`: when (s) and the request body.
    pub fn evidence(&self, origin: &str) -> Result<Vec<(u64, String)>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(EVIDENCE).map_err(storage)?;
        let mut found = Vec::new();
        for row in table
            .range((origin, 0, 0)..=(origin, u64::MAX, u64::MAX))
            .map_err(storage)?
        {
            let (key, value) = row.map_err(storage)?;
            found.push((
                key.value().1,
                String::from_utf8_lossy(value.value()).into_owned(),
            ));
        }
        Ok(found)
    }

    /// Answers `POST /add-checkpoint` with `body`, at `now` (POSIX seconds): see the module.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Answer {
        self.add_checkpoints(&[body], now)
            .pop()
            .expect("one answer a request")
    }

    /// Answers several requests as [`Witness::add_checkpoint`] would one after the other, with
    /// one durable write transaction for all (group commit): each is checked against the state
    /// the ones before it left, and no cosignature is given before the commit.
    pub fn add_checkpoints(&self, bodies: &[&[u8]], now: u64) -> Vec<Answer> {
        let checked: Vec<Result<(Request, Checkpoint), Answer>> =
            bodies.iter().map(|body| self.check(body)).collect();
        let written = (|| -> Result<Vec<Result<String, Answer>>> {
            let txn = self.db.begin_write().map_err(storage)?;
            let mut results = Vec::with_capacity(bodies.len());
            for (body, item) in bodies.iter().zip(checked) {
                results.push(match item {
                    Err(answer) => Err(answer),
                    Ok((request, new)) => self.advance(&txn, request, &new, body, now)?,
                });
            }
            txn.commit().map_err(storage)?;
            Ok(results)
        })();
        let results = match written {
            Ok(results) => results,
            Err(error) => {
                let answer = Answer::refuse(
                    500,
                    format!("the witness could not read or write its state: {error}"),
                );
                return vec![answer; bodies.len()];
            }
        };
        results
            .into_iter()
            .map(|result| match result {
                Ok(text) => match self.cosign(&text, now) {
                    Ok(line) => Answer {
                        status: 200,
                        content_type: None,
                        body: line,
                    },
                    Err(error) => Answer::refuse(500, format!("cannot cosign: {error}")),
                },
                Err(answer) => answer,
            })
            .collect()
    }

    /// What needs no state: the request is well formed, for a chain witnessed here, signed by a
    /// quorum of its validators.
    fn check(&self, body: &[u8]) -> Result<(Request, Checkpoint), Answer> {
        let request = Request::parse(body).map_err(|why| Answer::refuse(400, why))?;
        let parsed = Checkpoint::parse(&request.note.text)
            .map_err(|error| Answer::refuse(400, error.to_string()))?;
        let Some(witnessed) = self.origins.get(&parsed.origin) else {
            return Err(Answer::refuse(
                404,
                format!("this witness does not witness {:?}", parsed.origin),
            ));
        };
        let verified = checkpoint::verify(&request.note, &witnessed.root, &witnessed.schedule)
            .map_err(|error| {
                Answer::refuse(
                    403,
                    format!("no quorum of the chain's validators signed it: {error}"),
                )
            })?;
        let new = verified.checkpoint;
        if request.old > new.size {
            return Err(Answer::refuse(
                400,
                format!(
                    "old size {} is larger than the checkpoint's {}",
                    request.old, new.size
                ),
            ));
        }
        if request.old == 0 && !request.proof.is_empty() {
            return Err(Answer::refuse(
                400,
                "a consistency proof from size 0 must be empty",
            ));
        }
        Ok((request, new))
    }

    /// Checks `request` against the state in `txn` and writes the new state there (or keeps a
    /// contradiction as evidence): the text to cosign once `txn` is committed, or the refusal.
    fn advance(
        &self,
        txn: &redb::WriteTransaction,
        request: Request,
        new: &Checkpoint,
        body: &[u8],
        now: u64,
    ) -> Result<Result<String, Answer>> {
        let mut latest = txn.open_table(LATEST).map_err(storage)?;
        let held = latest
            .get(new.origin.as_str())
            .map_err(storage)?
            .map(|bytes| decode_latest(bytes.value()))
            .transpose()?;
        let held_size = held.as_ref().map_or(0, |(size, _, _)| *size);
        if request.old != held_size {
            return Ok(Err(Answer {
                status: 409,
                content_type: Some(SIZE_CONTENT_TYPE),
                body: format!("{held_size}\n"),
            }));
        }
        if let Some((size, root, _)) = &held {
            let contradiction = if *size == new.size {
                (*root != new.root).then(|| {
                    (
                        409,
                        format!(
                            "a checkpoint of size {size} with another root was cosigned: a \
                             split view or a rewritten history"
                        ),
                    )
                })
            } else {
                (!weft_core::merkle::verify_consistency(
                    *size,
                    new.size,
                    root,
                    &new.root,
                    &request.proof,
                ))
                .then(|| {
                    (
                        422,
                        format!(
                            "the consistency proof from size {size} to {} does not hold: the \
                             chain is not an extension of what was cosigned",
                            new.size
                        ),
                    )
                })
            };
            if let Some((status, why)) = contradiction {
                drop(latest);
                self.keep_evidence(txn, &new.origin, now, body)?;
                return Ok(Err(Answer::refuse(status, why)));
            }
        }
        latest
            .insert(
                new.origin.as_str(),
                encode_latest(new.size, &new.root, &request.note.text).as_slice(),
            )
            .map_err(storage)?;
        Ok(Ok(request.note.text))
    }

    /// A `cosignature/v1` line over `note_text` at `timestamp`.
    fn cosign(&self, note_text: &str, timestamp: u64) -> Result<String> {
        let signature = self
            .key
            .sign_note(&cosigned_message(timestamp, note_text))?;
        let mut bytes = cosigner_key_id(&self.name, &self.key.public_key()).to_vec();
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(&signature.0);
        Ok(format!(
            "— {} {}\n",
            self.name,
            Base64::encode_string(&bytes)
        ))
    }

    fn keep_evidence(
        &self,
        txn: &redb::WriteTransaction,
        origin: &str,
        now: u64,
        body: &[u8],
    ) -> Result<()> {
        let mut table = txn.open_table(EVIDENCE).map_err(storage)?;
        // Rows are never removed: their count orders them, across restarts too.
        let sequence = table.len().map_err(storage)?;
        table
            .insert((origin, now, sequence), body)
            .map_err(storage)?;
        Ok(())
    }
}

/// The body of an `add-checkpoint` request: `old SIZE`, the consistency proof from that size
/// (one base64 hash a line), an empty line, the signed checkpoint.
pub fn request_body(old: u64, proof: &[Hash32], note: &Note) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&Base64::encode_string(&hash.0));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(&note.to_text());
    body
}

/// An `add-checkpoint` request body.
struct Request {
    old: u64,
    proof: Vec<Hash32>,
    note: Note,
}

impl Request {
    fn parse(body: &[u8]) -> Result<Self, String> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(format!(
                "the request is {} bytes; at most {MAX_REQUEST_BYTES}",
                body.len()
            ));
        }
        let text = std::str::from_utf8(body).map_err(|_| "the request is not UTF-8".to_string())?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or("no empty line between the old size and proof and the checkpoint")?;
        let mut lines = head.split('\n');
        let old_line = lines.next().unwrap_or_default();
        let old_text = old_line
            .strip_prefix("old ")
            .ok_or_else(|| format!("the first line is {old_line:?}, not \"old SIZE\""))?;
        let canonical = old_text == "0" || !old_text.starts_with('0');
        let old = old_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical && old_text.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| format!("the old size {old_text:?} is not a decimal"))?;
        let proof = lines
            .map(|line| {
                Base64::decode_vec(line)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .map(Hash32)
                    .ok_or_else(|| format!("the proof line {line:?} is not a 32-byte base64 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(format!(
                "{} consistency proof lines; at most {MAX_PROOF_LINES}",
                proof.len()
            ));
        }
        let note = Note::parse(note.as_bytes()).map_err(|error| error.to_string())?;
        Ok(Request { old, proof, note })
    }
}

fn encode_latest(size: u64, root: &Hash32, text: &str) -> Vec<u8> {
    borsh::to_vec(&(size, root.0, text)).expect("encoding into memory cannot fail")
}

fn decode_latest(bytes: &[u8]) -> Result<(u64, Hash32, String)> {
    let (size, root, text): (u64, [u8; 32], String) = borsh::from_slice(bytes)
        .map_err(|error| LedgerError::Corrupt(format!("a witness state row: {error}")))?;
    Ok((size, Hash32(root), text))
}
