//! TCP ingest (docs/ingest-tcp.md): framed, versioned, pipelined.
//!
//! A connection's reader takes frames as they come and hands every run of frames that arrived
//! together to the block producer as one submission; its writer answers each frame, in order,
//! once its block is durably committed. A bad frame gets an error frame and the connection
//! goes on; only a connection that stays silent past `idle_timeout_s` is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};
use weft_core::{ChainId, ResourceId, SigningKey};
use weft_ledger::Transaction;

use crate::metrics::Metrics;
use crate::producer::{Submission, TxResult};
use crate::wire;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct TcpIngest {
    pub queue: SyncSender<Submission>,
    pub metrics: Arc<Metrics>,
    pub chain_id: ChainId,
    /// The resource that signs `RECORD` frames, and its key.
    pub identity: Option<(ResourceId, Arc<SigningKey>)>,
    /// The token a `HELLO` must carry before `RECORD` frames are taken.
    pub token: String,
    pub max_frame: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    /// Most frames handed to the producer in one submission.
    pub live: Arc<crate::admin::Live>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves `listener` until `shutdown` turns true; then every connection stops reading,
/// answers what it took, and closes. Returns once all connections are closed.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Arc<TcpIngest>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let mut listener = match &ingest.tls {
        Some(config) => match crate::tls::TlsListener::new(listener, config.clone()) {
            Ok(tls) => Either::Tls(tls),
            Err(error) => {
                tracing::error!(%error, "TCP ingest cannot start TLS");
                return;
            }
        },
        None => Either::Plain(listener),
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            (stream, peer) = listener.accept() => {
                if connections.len() >= ingest.max_connections {
                    tracing::warn!(%peer, "TCP ingest: too many connections (ingest.tcp.max_connections)");
                    continue;
                }
                ingest.metrics.tcp_connections.inc();
                let (ingest, shutdown) = (ingest.clone(), shutdown.clone());
                connections.spawn(async move {
                    let outcome = match stream {
                        Stream::Plain(stream) => connection(stream, peer, &ingest, shutdown).await,
                        Stream::Tls(stream) => connection(*stream, peer, &ingest, shutdown).await,
                    };
                    if let Err(error) = outcome {
                        tracing::debug!(%peer, %error, "TCP ingest connection ended");
                    }
                    ingest.metrics.tcp_connections.dec();
                });
            }
            // Finished connections are reaped at once, so `len` counts the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

enum Either {
    Plain(tokio::net::TcpListener),
    Tls(crate::tls::TlsListener),
}

enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl Either {
    /// The next connection (both listeners retry failed accepts themselves).
    async fn accept(&mut self) -> (Stream, SocketAddr) {
        use axum::serve::Listener;
        match self {
            Either::Plain(listener) => {
                let (stream, peer) = Listener::accept(listener).await;
                let _ = stream.set_nodelay(true);
                (Stream::Plain(stream), peer)
            }
            Either::Tls(listener) => {
                let (stream, peer) = Listener::accept(listener).await;
                (Stream::Tls(Box::new(stream)), peer)
            }
        }
    }
}

/// A frame's content, waiting to be submitted.
enum Item {
    Tx(Box<Transaction>),
    Record { content_type: String, body: Vec<u8> },
}

/// What the writer sends, in order.
enum Outgoing {
    Frame(Vec<u8>),
    /// The results of one submission, for these request numbers, once committed.
    Results {
        requests: Vec<u64>,
        results: oneshot::Receiver<Result<Vec<TxResult>, (&'static str, String)>>,
    },
}

async fn connection<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    ingest: &Arc<TcpIngest>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let (reader, writer) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(256 << 10, reader);
    let (outgoing, queued) = mpsc::channel(64);
    let writer = tokio::spawn(write_answers(
        BufWriter::with_capacity(64 << 10, writer),
        queued,
        ingest.metrics.clone(),
    ));
    let mut authorized = false;
    let mut batch: Vec<(u64, Item)> = Vec::new();
    let mut batch_started = Instant::now();
    let outcome = loop {
        if !batch.is_empty()
            && (reader.buffer().is_empty()
                || batch.len() >= ingest.live.max_batch.load(Ordering::Relaxed))
        {
            submit(ingest, std::mem::take(&mut batch), batch_started, &outgoing).await?;
        }
        let frame = tokio::select! {
            _ = shutdown.changed() => break Ok(()),
            frame = tokio::time::timeout(ingest.idle_timeout, read_frame(&mut reader, ingest.max_frame)) => frame,
        };
        let frame = match frame {
            Err(_) => {
                tracing::debug!(%peer, "TCP ingest: idle connection closed");
                break Ok(());
            }
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => break Ok(()),
            Ok(Err(error)) => break Err(error.into()),
            Ok(Ok(frame)) => frame,
        };
        ingest.metrics.tcp_frames.inc();
        let taken = match frame {
            Ok(frame) => {
                if batch.is_empty() {
                    batch_started = Instant::now();
                }
                take(frame, &mut authorized, ingest)
            }
            Err((request, code, message)) => Taken::Refused(request, code, message),
        };
        match taken {
            Taken::Queued(request, item) => batch.push((request, item)),
            Taken::Answer(frame) => {
                flush_then(&outgoing, &mut batch, batch_started, ingest, frame).await?;
            }
            Taken::Refused(request, code, message) => {
                ingest.metrics.tcp_error_frames.inc();
                let frame = wire::encode(wire::ERROR, request, &wire::error_body(code, &message));
                flush_then(&outgoing, &mut batch, batch_started, ingest, frame).await?;
            }
        }
    };
    if !batch.is_empty() {
        submit(ingest, batch, batch_started, &outgoing).await?;
    }
    drop(outgoing);
    // Every frame taken is answered before the connection closes.
    writer.await??;
    outcome
}

/// What one frame comes to.
enum Taken {
    /// A transaction to submit with the next batch.
    Queued(u64, Item),
    /// An answer to send at once (after the batch before it).
    Answer(Vec<u8>),
    /// An error frame: request number, code, message.
    Refused(u64, &'static str, String),
}

/// Decides what a frame comes to; a `HELLO` with the right token authorises the connection.
fn take(frame: wire::Frame, authorized: &mut bool, ingest: &TcpIngest) -> Taken {
    let request = frame.request;
    if frame.version != wire::VERSION {
        let message = format!(
            "protocol version {} is not spoken here; this node speaks version {}",
            frame.version,
            wire::VERSION
        );
        return Taken::Refused(request, "version", message);
    }
    match frame.kind {
        wire::HELLO => {
            let token = String::from_utf8_lossy(&frame.body);
            let token = token.trim();
            if token.is_empty() {
                // No token: TX frames only.
            } else if bool::from(subtle::ConstantTimeEq::ct_eq(
                token.as_bytes(),
                ingest.token.as_bytes(),
            )) {
                *authorized = true;
            } else {
                return Taken::Refused(
                    request,
                    "unauthorized",
                    "the token is not this node's ingest token (HOME/ingest.token); RECORD \
                     frames stay refused"
                        .into(),
                );
            }
            let flags = if *authorized && ingest.identity.is_some() {
                wire::FLAG_RECORDS
            } else {
                0
            };
            let body = wire::welcome_body(
                &ingest.chain_id,
                ingest.identity.as_ref().map(|(id, _)| id),
                u32::try_from(ingest.max_frame).unwrap_or(u32::MAX),
                flags,
            );
            Taken::Answer(wire::encode(wire::WELCOME, request, &body))
        }
        wire::PING => Taken::Answer(wire::encode(wire::PONG, request, &[])),
        wire::TX => match weft_core::encoding::decode::<Transaction>(&frame.body) {
            Ok(tx) => Taken::Queued(request, Item::Tx(Box::new(tx))),
            Err(error) => Taken::Refused(
                request,
                "bad_transaction",
                format!("the body is not a canonical weft transaction: {error}"),
            ),
        },
        wire::RECORD if !*authorized => Taken::Refused(
            request,
            "unauthorized",
            "RECORD frames are signed by the node: send HELLO with the node's ingest token \
             (HOME/ingest.token) first"
                .into(),
        ),
        wire::RECORD if ingest.identity.is_none() => Taken::Refused(
            request,
            "no_identity",
            "this node has no ingest identity to sign records with".into(),
        ),
        wire::RECORD => match wire::parse_record(&frame.body) {
            Err(message) => Taken::Refused(request, "malformed", format!("RECORD body: {message}")),
            Ok((_, body)) if body.len() > weft_core::model::MAX_RECORD_BODY => Taken::Refused(
                request,
                "too_large",
                format!(
                    "a record body is at most {} bytes, got {}",
                    weft_core::model::MAX_RECORD_BODY,
                    body.len()
                ),
            ),
            Ok((content_type, body)) => Taken::Queued(
                request,
                Item::Record {
                    content_type: content_type.to_string(),
                    body: body.to_vec(),
                },
            ),
        },
        kind => Taken::Refused(
            request,
            "kind",
            format!(
                "frame kind 0x{kind:02x} is not one a client sends (HELLO 0x01, TX 0x02, \
                 RECORD 0x03, PING 0x04)"
            ),
        ),
    }
}

/// A frame's bytes, or what to answer if it cannot be a frame: request number, code, message.
type Read = Result<wire::Frame, (u64, &'static str, String)>;

/// Reads one frame. Oversized and short frames are skipped whole, so the stream stays in step.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Read> {
    let length = reader.read_u32().await? as usize;
    if length < wire::HEADER_LEN {
        let mut skip = vec![0u8; length];
        reader.read_exact(&mut skip).await?;
        return Ok(Err((
            0,
            "malformed",
            format!(
                "a frame is at least {} bytes after its length, got {length}",
                wire::HEADER_LEN
            ),
        )));
    }
    if length > max + wire::HEADER_LEN {
        let mut header = [0u8; wire::HEADER_LEN];
        reader.read_exact(&mut header).await?;
        let request = u64::from_be_bytes(header[2..10].try_into().unwrap_or_default());
        let rest = (length - wire::HEADER_LEN) as u64;
        let skipped =
            tokio::io::copy(&mut (&mut *reader).take(rest), &mut tokio::io::sink()).await?;
        if skipped < rest {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Err((
            request,
            "too_large",
            format!(
                "the frame body is {} bytes; this node takes at most {max} (ingest.tcp.max_frame_bytes)",
                length - wire::HEADER_LEN
            ),
        )));
    }
    let mut bytes = vec![0u8; length];
    reader.read_exact(&mut bytes).await?;
    Ok(wire::parse_frame(bytes).ok_or((0, "malformed", "a frame shorter than its header".into())))
}

/// Submits what is pending, then queues `frame`: answers keep the frames' order.
async fn flush_then(
    outgoing: &mpsc::Sender<Outgoing>,
    batch: &mut Vec<(u64, Item)>,
    started: Instant,
    ingest: &Arc<TcpIngest>,
    frame: Vec<u8>,
) -> Result<()> {
    if !batch.is_empty() {
        submit(ingest, std::mem::take(batch), started, outgoing).await?;
    }
    outgoing
        .send(Outgoing::Frame(frame))
        .await
        .map_err(|_| anyhow::anyhow!("the connection's writer stopped"))
}

/// Signs the records of `batch` and hands everything to the block producer, off the async
/// threads (signing takes CPU; the producer's queue may be full and block).
async fn submit(
    ingest: &Arc<TcpIngest>,
    batch: Vec<(u64, Item)>,
    received: Instant,
    outgoing: &mpsc::Sender<Outgoing>,
) -> Result<()> {
    let requests: Vec<u64> = batch.iter().map(|(request, _)| *request).collect();
    let (done, results) = oneshot::channel();
    let shared = ingest.clone();
    tokio::spawn(async move {
        let answer = tokio::task::spawn_blocking(move || {
            let count = batch.len();
            let mut transactions = Vec::with_capacity(count);
            for (_, item) in batch {
                transactions.push(match item {
                    Item::Tx(tx) => *tx,
                    Item::Record { content_type, body } => {
                        let Some((identity, key)) = &shared.identity else {
                            return Err(("no_identity", "this node has no ingest identity".into()));
                        };
                        crate::ingest::sign_as(
                            shared.chain_id,
                            *identity,
                            key,
                            weft_core::model::Payload::Record(weft_core::model::Record {
                                issuer: *identity,
                                content_type,
                                product_code: None,
                                body,
                            }),
                        )
                        .map_err(|error| ("malformed", error.to_string()))?
                    }
                });
            }
            let (reply, answer) = oneshot::channel();
            shared
                .queue
                .send(Submission {
                    transactions,
                    received,
                    reply,
                })
                .map_err(|_| ("shutting_down", "the node is shutting down".to_string()))?;
            shared
                .metrics
                .pending
                .inc_by(i64::try_from(count).unwrap_or(i64::MAX));
            Ok(answer)
        })
        .await;
        let results = match answer {
            Ok(Ok(answer)) => answer.await.map_err(|_| {
                (
                    "not_committed",
                    "the node stopped before the block was committed; send again".to_string(),
                )
            }),
            Ok(Err(error)) => Err(error),
            Err(error) => Err(("internal", format!("the submission failed: {error}"))),
        };
        let _ = done.send(results);
    });
    outgoing
        .send(Outgoing::Results { requests, results })
        .await
        .map_err(|_| anyhow::anyhow!("the connection's writer stopped"))
}

/// Writes answers in the order their frames came, each once its block is committed.
async fn write_answers<W: AsyncWrite + Unpin>(
    mut writer: BufWriter<W>,
    mut queued: mpsc::Receiver<Outgoing>,
    metrics: Arc<Metrics>,
) -> Result<()> {
    while let Some(next) = queued.recv().await {
        let mut next = Some(next);
        while let Some(outgoing) = next.take() {
            match outgoing {
                Outgoing::Frame(frame) => writer.write_all(&frame).await?,
                Outgoing::Results {
                    requests,
                    mut results,
                } => {
                    // Answers already written go out before waiting for a later block: under
                    // steady load the next results are always queued, and waiting for them
                    // with a full buffer held every answer back by one block.
                    let ready = match results.try_recv() {
                        Err(oneshot::error::TryRecvError::Empty) => {
                            writer.flush().await?;
                            results.await
                        }
                        Ok(ready) => Ok(ready),
                        Err(oneshot::error::TryRecvError::Closed) => results.await,
                    };
                    let results = ready.unwrap_or_else(|_| {
                        Err(("internal", "the submission was lost; send again".into()))
                    });
                    match results {
                        Ok(results) => {
                            for (request, result) in requests.iter().zip(&results) {
                                writer.write_all(&result_frame(*request, result)).await?;
                            }
                        }
                        Err((code, message)) => {
                            for request in &requests {
                                metrics.tcp_error_frames.inc();
                                let body = wire::error_body(code, &message);
                                writer
                                    .write_all(&wire::encode(wire::ERROR, *request, &body))
                                    .await?;
                            }
                        }
                    }
                }
            }
            next = queued.try_recv().ok();
        }
        writer.flush().await?;
    }
    writer.flush().await?;
    writer.shutdown().await.ok();
    Ok(())
}

fn result_frame(request: u64, result: &TxResult) -> Vec<u8> {
    match result {
        TxResult::Committed { id, position } => wire::encode(
            wire::COMMITTED,
            request,
            &wire::committed_body(id, position.height, position.index),
        ),
        TxResult::Rejected { id, error } => wire::encode(
            wire::REJECTED,
            request,
            &wire::rejected_body(id, error.rule(), &error.to_string()),
        ),
        TxResult::Failed { message, .. } => wire::encode(
            wire::ERROR,
            request,
            &wire::error_body("not_committed", message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use weft_core::TxId;
    use weft_ledger::state::Position;

    use super::*;

    fn committed(n: u8) -> Vec<TxResult> {
        vec![TxResult::Committed {
            id: TxId(weft_core::Hash32([n; 32])),
            position: Position {
                height: u64::from(n),
                index: 0,
            },
        }]
    }

    /// The answer of a committed submission goes out while a later submission still waits
    /// for its block (a writer that waited for it first held every answer back one block).
    #[tokio::test]
    async fn answers_go_out_before_the_writer_waits_for_a_later_block() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let (outgoing, queued) = mpsc::channel(8);
        let writer = tokio::spawn(write_answers(
            BufWriter::new(ours),
            queued,
            Arc::new(Metrics::new(0)),
        ));
        let (first_done, first) = oneshot::channel();
        let (second_done, second) = oneshot::channel();
        outgoing
            .send(Outgoing::Results {
                requests: vec![7],
                results: first,
            })
            .await
            .expect("queued");
        outgoing
            .send(Outgoing::Results {
                requests: vec![8],
                results: second,
            })
            .await
            .expect("queued");
        first_done.send(Ok(committed(1))).expect("sent");
        let expected = result_frame(7, &committed(1)[0]);
        let mut answer = vec![0u8; expected.len()];
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            theirs.read_exact(&mut answer),
        )
        .await
        .expect("the first answer arrives while the second block is pending")
        .expect("read");
        assert_eq!(answer, expected);
        second_done.send(Ok(committed(2))).expect("sent");
        drop(outgoing);
        writer
            .await
            .expect("joined")
            .expect("the writer ends cleanly");
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, result_frame(8, &committed(2)[0]));
    }
}
