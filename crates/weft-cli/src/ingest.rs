//! `weft ingest …`: records sent over TCP ingest (weft-client's pipelined client,
//! docs/ingest-tcp.md) and second-tier sealing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use weft_core::model::{MAX_RECORD_BODY, Payload};
use weft_node::{sealed, wire};

pub use weft_client::tcp::{Answer, Outgoing, Target, session};

use crate::context::Globals;

/// The ingest token of a home, if it has one.
pub(crate) fn token(home: &Path, file: Option<&Path>) -> Result<String> {
    let path = file.map_or_else(|| home.join("ingest.token"), Path::to_path_buf);
    match weft_ledger::files::read_secret(&path, "token file") {
        Ok(text) => Ok(text.trim().to_string()),
        Err(error) if file.is_none() && error.is_missing() => Ok(String::new()),
        Err(error) => Err(error.into()),
    }
}

/// What `weft ingest tcp` records: files, or lines of standard input.
pub struct IngestArgs {
    pub to: String,
    pub ca: Option<PathBuf>,
    pub files: Vec<PathBuf>,
    pub lines: bool,
    pub content_type: String,
    pub token_file: Option<PathBuf>,
    pub seal_key: Option<PathBuf>,
    pub window: usize,
}

/// `weft ingest tcp`: every file (or line of standard input) becomes a record, signed by the
/// node; prints each one's transaction id once it is committed.
pub fn tcp(ctx: &Globals, args: IngestArgs) -> Result<()> {
    if args.files.is_empty() != args.lines {
        bail!("give FILES to record, or --lines to record each line of standard input");
    }
    if args.content_type.trim().is_empty() || args.content_type.len() > 255 {
        bail!("--content-type must be a media type of 1 to 255 characters");
    }
    let token = token(&ctx.home, args.token_file.as_deref())?;
    let seal = args.seal_key.as_deref().map(SealKey::read).transpose()?;
    let content_type = args.content_type.clone();
    let names: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    // Bodies are read (and sealed) as the writer needs them, so memory stays flat.
    let files = args.files.clone();
    let body = move |bytes: Vec<u8>| -> Result<(String, Vec<u8>)> {
        match &seal {
            Some(key) => Ok((SEALED_TYPE.to_string(), key.seal(&content_type, &bytes)?)),
            None => Ok((content_type.clone(), bytes)),
        }
    };
    let problems = Arc::new(std::sync::Mutex::new(Vec::<(usize, String)>::new()));
    let noted = problems.clone();
    let source: Box<dyn Iterator<Item = Result<Vec<u8>>> + Send> = if args.lines {
        use std::io::BufRead;
        Box::new(
            std::io::BufReader::new(std::io::stdin())
                .lines()
                .map(|line| Ok(line.context("cannot read standard input")?.into_bytes())),
        )
    } else {
        Box::new(files.into_iter().map(|path| {
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        }))
    };
    let frames = std::iter::once((wire::HELLO, token.into_bytes())).chain(source.enumerate().map(
        move |(index, read)| {
            let frame = read.and_then(|bytes| {
                if bytes.len() > MAX_RECORD_BODY {
                    bail!(
                        "{} bytes; a record body is at most {MAX_RECORD_BODY}",
                        bytes.len()
                    );
                }
                body(bytes)
            });
            match frame {
                Ok((content_type, bytes)) => {
                    (wire::RECORD, wire::record_body(&content_type, &bytes))
                }
                Err(error) => {
                    // Sent as a ping, so numbering stays in step; reported as this item's error.
                    if let Ok(mut problems) = noted.lock() {
                        problems.push((index, format!("{error:#}")));
                    }
                    (wire::PING, Vec::new())
                }
            }
        },
    ));
    let target = Target {
        address: args.to.clone(),
        ca: args.ca.clone(),
    };
    let mut results: Vec<Value> = Vec::new();
    let mut failures = 0usize;
    let out = ctx.out;
    session(&target, frames, args.window, |request, answer| {
        if request == 1 {
            return match answer {
                Answer::Welcome(welcome) if welcome.flags & wire::FLAG_RECORDS != 0 => Ok(()),
                Answer::Welcome(_) => Err(anyhow!(
                    "the node does not take records from this client: give its ingest token \
                     (--token-file, default HOME/ingest.token)"
                )),
                Answer::Error { code, message } => Err(anyhow!(
                    "the node refused the connection ({code}): {message}"
                )),
                other => Err(anyhow!("unexpected first answer {other:?}")),
            };
        }
        let index = (request - 2) as usize;
        let item = if args.lines {
            format!("line {}", index + 1)
        } else {
            names.get(index).cloned().unwrap_or_default()
        };
        let mut value = answer.to_json();
        // Committed, or why not: (code, message).
        let outcome = match &answer {
            Answer::Committed { tx_id, height, .. } => Ok((tx_id.clone(), *height)),
            Answer::Rejected { message, .. } => Err(("rule".to_string(), message.clone())),
            Answer::Error { code, message } => Err((code.clone(), message.clone())),
            // The item could not be sent (a ping stood in for it): the problem noted then.
            Answer::Pong => {
                let message = problems
                    .lock()
                    .ok()
                    .and_then(|problems| problems.iter().find(|(i, _)| *i == index).cloned())
                    .map_or(String::new(), |problem| problem.1);
                value = json!({"error": {"code": "local", "message": message}});
                Err(("local".to_string(), message))
            }
            Answer::Welcome(_) => Err(("?".to_string(), "?".to_string())),
        };
        failures += usize::from(outcome.is_err());
        if let Some(object) = value.as_object_mut() {
            object.insert("item".into(), json!(item));
        }
        if !out.json {
            match &outcome {
                Ok((tx_id, height)) => {
                    crate::output::outln!("{item}: committed {tx_id} at height {height}")
                }
                Err((code, message)) => eprintln!("{item}: not recorded ({code}): {message}"),
            }
        }
        results.push(value);
        Ok(())
    })?;
    if out.json {
        crate::output::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "recorded": results.len() - failures,
                "failed": failures,
                "results": results,
            }))?
        );
    } else {
        eprintln!("{} recorded, {failures} not", results.len() - failures);
    }
    if failures > 0 {
        return Err(crate::output::Negative.into());
    }
    Ok(())
}

/// The content type of a sealed record: what it really is travels inside the ciphertext.
pub const SEALED_TYPE: &str = "application/vnd.weft.sealed";

/// A second-tier key: AES-256-GCM, known only to the submitter (docs/ingest-tcp.md).
pub struct SealKey {
    key: [u8; 32],
}

impl SealKey {
    /// The key's public name: the first 8 bytes of SHA-256("weft seal key" ‖ key).
    fn id(&self) -> [u8; sealed::KEY_ID_LEN] {
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &[b"weft seal key".as_slice(), &self.key].concat(),
        );
        digest.as_ref()[..sealed::KEY_ID_LEN]
            .try_into()
            .unwrap_or([0; sealed::KEY_ID_LEN])
    }

    pub fn read(path: &Path) -> Result<SealKey> {
        // A secret: refused if other users may read it.
        let text = weft_ledger::files::read_secret(path, "seal key").map_err(|error| {
            if error.is_missing() {
                anyhow!("{error} (make one with `weft ingest seal-key FILE`)")
            } else {
                error.into()
            }
        })?;
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| anyhow!("{} is not a seal key (64 hex digits)", path.display()))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(SealKey { key })
    }

    fn cipher(&self) -> Result<aws_lc_rs::aead::LessSafeKey> {
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &self.key)
            .map_err(|_| anyhow!("the seal key is not an AES-256 key"))?;
        Ok(aws_lc_rs::aead::LessSafeKey::new(key))
    }

    /// `magic ‖ version ‖ key id ‖ nonce ‖ AES-256-GCM(content type ‖ body)`, the header as
    /// associated data (`weft_node::sealed`).
    pub fn seal(&self, content_type: &str, body: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; sealed::NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|error| anyhow!("no randomness: {error}"))?;
        let header = sealed::header(&self.id(), &nonce);
        let mut plain = Vec::with_capacity(1 + content_type.len() + body.len() + sealed::TAG_LEN);
        plain.push(u8::try_from(content_type.len()).context("content type too long")?);
        plain.extend_from_slice(content_type.as_bytes());
        plain.extend_from_slice(body);
        self.cipher()?
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(&header[..]),
                &mut plain,
            )
            .map_err(|_| anyhow!("sealing failed"))?;
        let mut record = Vec::with_capacity(header.len() + plain.len());
        record.extend_from_slice(&header);
        record.extend_from_slice(&plain);
        Ok(record)
    }

    /// The content type and body of a sealed record.
    pub fn open(&self, bytes: &[u8]) -> Result<(String, Vec<u8>)> {
        let sealed = sealed::parse(bytes)?;
        if sealed.key_id != self.id() {
            bail!(
                "sealed with another key (key id {}, this key is {})",
                hex::encode(sealed.key_id),
                hex::encode(self.id())
            );
        }
        let mut data = sealed.ciphertext.to_vec();
        let plain = self
            .cipher()?
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(sealed.nonce),
                aws_lc_rs::aead::Aad::from(sealed.header),
                &mut data,
            )
            .map_err(|_| {
                anyhow!("the sealed record does not authenticate: altered, or not this key's")
            })?;
        let (&length, rest) = plain
            .split_first()
            .ok_or_else(|| anyhow!("empty plaintext"))?;
        let length = usize::from(length);
        if rest.len() < length {
            bail!("the plaintext is shorter than its content type");
        }
        let content_type = String::from_utf8(rest[..length].to_vec())
            .map_err(|_| anyhow!("the content type is not UTF-8"))?;
        Ok((content_type, rest[length..].to_vec()))
    }
}

/// `weft ingest seal-key FILE`: a new second-tier key (mode 0600; never leaves this machine).
pub fn seal_key_new(ctx: &Globals, path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|error| anyhow!("no randomness: {error}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
    file.sync_all()?;
    let id = hex::encode(SealKey { key }.id());
    ctx.out.emit(json!({"file": path, "key_id": id}), || {
        format!(
            "wrote seal key {} (key id {id}); keep it: without it no one can read what it sealed",
            path.display()
        )
    });
    Ok(())
}

/// `weft ingest open TX_ID --seal-key FILE [--out FILE]`: the plaintext of a sealed record.
pub fn open(ctx: &Globals, tx_id: &str, seal_key: &Path, out: Option<&Path>) -> Result<()> {
    let key = SealKey::read(seal_key)?;
    let chain = crate::chain::open(ctx)?;
    let id = chain.resolve_tx(tx_id, "TX_ID")?;
    let answer = chain
        .transaction(&id)?
        .ok_or_else(|| anyhow!("transaction {id} is not on this ledger"))?;
    let payload = answer
        .payload
        .ok_or_else(|| anyhow!("transaction {id} carries no record"))?;
    let Payload::Record(record) = payload else {
        bail!("transaction {id} is not a record");
    };
    if record.content_type != SEALED_TYPE {
        bail!(
            "record {id} is not sealed (content type {}); `weft tx show` shows it",
            record.content_type
        );
    }
    let (content_type, body) = key.open(&record.body)?;
    match out {
        Some(path) => std::fs::write(path, &body)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None if !ctx.out.json => crate::output::print_bytes(&body),
        None => {}
    }
    if ctx.out.json {
        ctx.out.emit(
            json!({
                "tx_id": id.to_hex(),
                "content_type": content_type,
                "bytes": body.len(),
                "body_hex": if out.is_none() { json!(hex::encode(&body)) } else { Value::Null },
            }),
            String::new,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_with_their_key_only() {
        let key = SealKey { key: [3; 32] };
        let sealed = key.seal("text/csv", b"spindle,42\n").expect("seals");
        assert!(
            !sealed.windows(10).any(|w| w == b"spindle,42"),
            "plaintext visible"
        );
        assert_eq!(
            key.open(&sealed).expect("opens"),
            ("text/csv".to_string(), b"spindle,42\n".to_vec())
        );
        let other = SealKey { key: [4; 32] };
        let error = other.open(&sealed).expect_err("another key");
        assert!(error.to_string().contains("another key"), "{error}");
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let error = key.open(&altered).expect_err("altered");
        assert!(
            error.to_string().contains("does not authenticate"),
            "{error}"
        );
        assert!(key.open(b"plain text").is_err());
        // Two seals of the same body differ (fresh nonces).
        assert_ne!(
            sealed,
            key.seal("text/csv", b"spindle,42\n").expect("seals")
        );
    }
}
