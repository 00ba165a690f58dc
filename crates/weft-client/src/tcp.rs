//! The TCP ingest client (docs/ingest-tcp.md), pipelined: it keeps up to `window` frames
//! unanswered, frames are made on a thread of their own, written on one task and the answers
//! read as they come, so a node that commits blocks of thousands of frames is kept busy over a
//! single connection. Plain TCP, or TLS trusting exactly the certificates of a PEM file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use weft_node::wire;

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
