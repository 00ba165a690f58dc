//! `weft ingest …`: the TCP ingest client (docs/ingest-tcp.md) and second-tier sealing.
//!
//! The client pipelines: it keeps up to `window` frames unanswered, writes on one task and
//! reads answers on another, so a node that commits blocks of thousands of frames is kept
//! busy over a single connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use weft_core::model::{MAX_RECORD_BODY, Payload};
use weft_node::{sealed, wire};

use crate::context::Globals;

/// The node's answer to one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Committed {
        tx_id: String,
        height: u64,
        index: u32,
    },
    Rejected {
        tx_id: String,
        rule: String,
        message: String,
    },
    Error {
        code: String,
        message: String,
    },
    Welcome(wire::Welcome),
    Pong,
}

impl Answer {
    pub fn to_json(&self) -> Value {
        match self {
            Answer::Committed {
                tx_id,
                height,
                index,
            } => json!({"tx_id": tx_id, "height": height, "index": index}),
            Answer::Rejected {
                tx_id,
                rule,
                message,
            } => {
                json!({"tx_id": tx_id, "error": {"code": "rule", "rule": rule, "message": message}})
            }
            Answer::Error { code, message } => json!({"error": {"code": code, "message": message}}),
            Answer::Welcome(welcome) => json!({
                "welcome": {
                    "version": welcome.version,
                    "chain_id": hex::encode(welcome.chain),
                    "identity": hex::encode(welcome.identity),
                    "max_frame": welcome.max_frame,
                    "records": welcome.flags & wire::FLAG_RECORDS != 0,
                }
            }),
            Answer::Pong => json!({"pong": true}),
        }
    }

    fn parse(frame: &wire::Frame) -> Result<Answer, String> {
        Ok(match frame.kind {
            wire::COMMITTED => {
                let (id, height, index) = wire::parse_committed(&frame.body)?;
                Answer::Committed {
                    tx_id: hex::encode(id),
                    height,
                    index,
                }
            }
            wire::REJECTED => {
                let (id, rule, message) = wire::parse_rejected(&frame.body)?;
                Answer::Rejected {
                    tx_id: hex::encode(id),
                    rule,
                    message,
                }
            }
            wire::ERROR => {
                let (code, message) = wire::parse_error(&frame.body)?;
                Answer::Error { code, message }
            }
            wire::WELCOME => Answer::Welcome(wire::parse_welcome(&frame.body)?),
            wire::PONG => Answer::Pong,
            kind => return Err(format!("the node sent an unknown frame kind 0x{kind:02x}")),
        })
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: String,
    /// Trust this PEM certificate file and speak TLS.
    pub ca: Option<PathBuf>,
}

/// A frame to send: kind and body (the request number is given by position).
pub type Outgoing = (u8, Vec<u8>);

/// Sends `frames` over one connection with at most `window` unanswered, numbering them from
/// 1, and calls `on_answer(request, answer)` for each answer as it arrives. Returns once every
/// frame is answered.
pub fn session(
    target: &Target,
    frames: impl Iterator<Item = Outgoing> + Send + 'static,
    window: usize,
    on_answer: impl FnMut(u64, Answer) -> Result<()>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let address: SocketAddr = tokio::net::lookup_host(&target.address)
            .await
            .with_context(|| format!("{}: not a HOST:PORT address", target.address))?
            .next()
            .ok_or_else(|| anyhow!("{}: no address found", target.address))?;
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot connect to TCP ingest at {}", target.address))?;
        stream.set_nodelay(true)?;
        match &target.ca {
            None => run(stream, frames, window, on_answer).await,
            Some(ca) => {
                let config = crate::tls::client_config(ca)?;
                let host = target
                    .address
                    .rsplit_once(':')
                    .map_or(target.address.as_str(), |(host, _)| host)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .with_context(|| format!("{host:?} is not a host name or IP address"))?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .with_context(|| format!("TLS handshake with {} failed", target.address))?;
                run(stream, frames, window, on_answer).await
            }
        }
    })
}

async fn run<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    frames: impl Iterator<Item = Outgoing> + Send + 'static,
    window: usize,
    mut on_answer: impl FnMut(u64, Answer) -> Result<()>,
) -> Result<()> {
    let (reader, writer) = tokio::io::split(stream);
    let permits = Arc::new(tokio::sync::Semaphore::new(window.max(1)));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (done_writing, mut writing_done) = tokio::sync::watch::channel(false);
    let writer_permits = permits.clone();
    let writer_sent = sent.clone();
    // Frames are made on a thread of their own (reading files or standard input may block),
    // and written as they come: the buffer is flushed whenever no frame is ready, so a slow
    // source's frames go out at once and a fast one's in large writes.
    let (made, mut ready) = tokio::sync::mpsc::channel::<Outgoing>(1024);
    let maker = std::thread::Builder::new()
        .name("frames".into())
        .spawn(move || {
            for frame in frames {
                if made.blocking_send(frame).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the frame thread")?;
    let writer = tokio::spawn(async move {
        let mut writer = BufWriter::with_capacity(256 << 10, writer);
        let mut request = 0u64;
        loop {
            let (kind, body) = match ready.try_recv() {
                Ok(frame) => frame,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    writer.flush().await?;
                    match ready.recv().await {
                        Some(frame) => frame,
                        None => break,
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            };
            let permit = match writer_permits.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    writer.flush().await?;
                    writer_permits.acquire().await?
                }
            };
            permit.forget();
            request += 1;
            writer
                .write_all(&wire::encode(kind, request, &body))
                .await?;
            writer_sent.store(request, std::sync::atomic::Ordering::Release);
        }
        writer.flush().await?;
        let _ = done_writing.send(true);
        anyhow::Ok(writer)
    });
    let mut reader = BufReader::with_capacity(256 << 10, reader);
    let mut answered = 0u64;
    let mut all_sent = false;
    loop {
        all_sent = all_sent || *writing_done.borrow();
        if all_sent && answered >= sent.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        let length = if all_sent {
            reader.read_u32().await
        } else {
            tokio::select! {
                length = reader.read_u32() => length,
                changed = writing_done.changed() => {
                    // A writer that failed drops its end: the read below then reports why.
                    all_sent = changed.is_err();
                    continue;
                }
            }
        };
        let length = match length {
            Ok(length) => length as usize,
            Err(error) => {
                if writer.is_finished()
                    && let Ok(Err(write_error)) = writer.await
                {
                    return Err(write_error.context("cannot send to the node"));
                }
                return Err(anyhow!(error)).context("the node closed the connection");
            }
        };
        if !(wire::HEADER_LEN..=(16 << 20)).contains(&length) {
            bail!("the node sent a frame of {length} bytes, which no answer is");
        }
        let mut bytes = vec![0u8; length];
        reader.read_exact(&mut bytes).await?;
        let frame =
            wire::parse_frame(bytes).ok_or_else(|| anyhow!("a short frame from the node"))?;
        let answer = Answer::parse(&frame).map_err(|error| anyhow!("a bad answer: {error}"))?;
        answered += 1;
        permits.add_permits(1);
        on_answer(frame.request, answer)?;
    }
    let mut writer = writer.await??;
    writer.shutdown().await.ok();
    let _ = maker.join();
    Ok(())
}

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
