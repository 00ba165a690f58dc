//! TCP ingest (docs/ingest-tcp.md): framed, versioned, pipelined.
//!
//! A connection's reader takes frames as they come and hands every run of frames that arrived
//! together to the block producer as one submission; its writer answers each frame, in order,
//! once its block is durably committed. A bad frame gets an error frame and the connection
//! goes on; only a connection that stays silent past `idle_timeout_s` is closed.
//!
//! A connection starts unauthenticated, in a small pool of its own ([`crate::gate`]: a cap in
//! total and per address, a newcomer displacing the oldest connection of the address holding
//! the most), and must authenticate within `auth_timeout_s` — a `HELLO` with the ingest token,
//! or a `TX` frame that commits (proof of a registered key). Authenticated connections are
//! counted against `max_connections`. So idle or PING-only connections can neither stay nor
//! keep a client with the token out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use weft_core::{ChainId, ResourceId, SigningKey};
use weft_ledger::Transaction;

use crate::gate::{Admission, Gate, Ticket};
use crate::metrics::Metrics;
use crate::submission::{Submission, TxResult};
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
    /// Authenticated connections at once.
    pub max_connections: usize,
    /// Connections not yet authenticated.
    pub unauthenticated: Arc<Gate>,
    /// How long a connection has to authenticate.
    pub auth_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes of frames one connection may have taken and not yet answered; past that the node
    /// reads no further from it until answers go out (TCP back-pressure).
    pub max_unanswered_bytes: usize,
    /// Most frames handed to the producer in one submission.
    pub live: Arc<crate::live::Live>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves `listener` until `shutdown` turns true; then every connection stops reading,
/// answers what it took, and closes. Returns once all connections are closed.
pub(crate) async fn serve(
    mut listener: tokio::net::TcpListener,
    ingest: Arc<TcpIngest>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let authenticated = Arc::new(Semaphore::new(ingest.max_connections));
    let acceptor = ingest.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            (stream, peer) = async { ingest.unauthenticated.room().await; axum::serve::Listener::accept(&mut listener).await } => {
                let ticket = match ingest.unauthenticated.admit(peer.ip()) {
                    Admission::In(ticket, displaced) => {
                        ingest.metrics.tcp_unauthenticated_closed.inc_by(displaced as u64);
                        ticket
                    }
                    Admission::Full => {
                        ingest.metrics.tcp_refused.inc();
                        tracing::debug!(%peer, "TCP ingest: too many connections still closing; refused");
                        continue;
                    }
                };
                ingest.metrics.tcp_connections.inc();
                let (ingest, shutdown) = (ingest.clone(), shutdown.clone());
                let authenticated = authenticated.clone();
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let standing = Standing { ticket: Some(ticket), permit: None, authenticated };
                    let admitted = tokio::time::Instant::now();
                    let _ = stream.set_nodelay(true);
                    // The handshake runs here, once admitted: it counts against the
                    // unauthenticated connections like any connection, and within the
                    // deadline to authenticate, which runs from admission.
                    let outcome = match acceptor {
                        None => connection(stream, peer, &ingest, shutdown, standing, admitted).await,
                        Some(acceptor) => match crate::tls::handshake(&acceptor, stream, peer, ingest.auth_timeout).await {
                            Some(stream) => connection(stream, peer, &ingest, shutdown, standing, admitted).await,
                            None => Ok(()),
                        },
                    };
                    if let Err(error) = outcome {
                        tracing::debug!(%peer, %error, "TCP ingest connection ended");
                    }
                    ingest.metrics.tcp_connections.dec();
                });
            }
            // Finished connections are reaped at once.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

/// A frame's content, waiting to be submitted.
enum Item {
    Tx(Box<Transaction>),
    Record { content_type: String, body: Vec<u8> },
}

/// What the writer sends, in order. Each holds its frames' share of the connection's budget
/// of unanswered bytes until it is written.
enum Outgoing {
    Frame {
        frame: Vec<u8>,
        _held: OwnedSemaphorePermit,
    },
    /// The results of one submission, for these request numbers, once committed.
    Results {
        requests: Vec<u64>,
        results: Result<Pending, Refusal>,
        _held: OwnedSemaphorePermit,
    },
}

/// What a taken frame costs of its connection's budget besides its body: its request number,
/// the submission's bookkeeping and its answer.
const FRAME_OVERHEAD: usize = 256;

/// Frames taken, not yet submitted, and the budget they hold.
struct Batch {
    frames: Vec<(u64, Item)>,
    held: Option<OwnedSemaphorePermit>,
    /// When its first frame was read: a block is sealed an interval after that.
    started: Instant,
    /// Closed once the connection's last submission made on a blocking thread is in the
    /// producer's queue: a later one waits for it, so a connection's frames keep their order
    /// on the chain.
    handing: Option<oneshot::Receiver<()>>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            frames: Vec::new(),
            held: None,
            started: Instant::now(),
            handing: None,
        }
    }

    fn push(&mut self, request: u64, item: Item, held: OwnedSemaphorePermit) {
        if self.frames.is_empty() {
            self.started = Instant::now();
        }
        self.frames.push((request, item));
        match &mut self.held {
            Some(all) => all.merge(held),
            None => self.held = Some(held),
        }
    }
}

/// A connection's standing, shared by its reader and its writer: its place among the
/// unauthenticated connections until it authenticates, then a permit of `max_connections`.
struct Standing {
    ticket: Option<Ticket>,
    permit: Option<OwnedSemaphorePermit>,
    authenticated: Arc<Semaphore>,
}

impl Standing {
    fn lock(standing: &std::sync::Mutex<Standing>) -> std::sync::MutexGuard<'_, Standing> {
        match standing.lock() {
            Ok(standing) => standing,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Moves the connection to the authenticated ones; false if they are all taken.
    fn authenticate(&mut self) -> bool {
        if self.permit.is_some() {
            return true;
        }
        match self.authenticated.clone().try_acquire_owned() {
            Ok(permit) => {
                self.permit = Some(permit);
                self.ticket = None;
                true
            }
            Err(_) => false,
        }
    }
}

/// Resolves at `deadline` if the connection has not authenticated by then; never otherwise.
async fn unauthenticated_at(standing: &std::sync::Mutex<Standing>, deadline: tokio::time::Instant) {
    tokio::time::sleep_until(deadline).await;
    if Standing::lock(standing).permit.is_some() {
        std::future::pending::<()>().await;
    }
}

/// Resolves if the gate asks this connection to close to make room (only ever while it is
/// unauthenticated); never otherwise.
async fn displaced(asked: Option<watch::Receiver<bool>>) {
    if let Some(mut asked) = asked
        && asked.wait_for(|close| *close).await.is_ok()
    {
        return;
    }
    std::future::pending::<()>().await
}

/// Says why the connection closes, in an error frame with request 0 (it answers no frame).
fn send_close(
    outgoing: &mpsc::UnboundedSender<Outgoing>,
    budget: &Arc<Semaphore>,
    code: &'static str,
    message: String,
) {
    if let Ok(held) = budget.clone().try_acquire_many_owned(0) {
        let frame = wire::encode(wire::ERROR, 0, &wire::error_body(code, &message));
        let _ = outgoing.send(Outgoing::Frame { frame, _held: held });
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    ingest: &Arc<TcpIngest>,
    mut shutdown: watch::Receiver<bool>,
    standing: Standing,
    admitted: tokio::time::Instant,
) -> Result<()> {
    let (reader, writer) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(256 << 10, reader);
    // The budget, not this channel, bounds what a connection has in flight: it holds at most
    // one entry per frame, and a frame is only taken with its share of the budget.
    let (outgoing, queued) = mpsc::unbounded_channel();
    let budget = Arc::new(Semaphore::new(ingest.max_unanswered_bytes));
    let asked = standing.ticket.as_ref().map(Ticket::asked);
    let standing = Arc::new(std::sync::Mutex::new(standing));
    let writer = tokio::spawn(write_answers(
        BufWriter::with_capacity(64 << 10, writer),
        queued,
        ingest.metrics.clone(),
        Some(standing.clone()),
    ));
    let mut authorized = false;
    let mut batch = Batch::new();
    let auth_deadline = admitted + ingest.auth_timeout;
    let displaced = displaced(asked);
    tokio::pin!(displaced);
    // Once authenticated (by a HELLO here, or a commit seen by the writer) the deadline and
    // displacement no longer apply: their branches are not polled, so no timer is set per frame.
    let mut authenticated = false;
    let outcome = loop {
        if !authenticated {
            authenticated = Standing::lock(&standing).permit.is_some();
        }
        if !batch.frames.is_empty()
            && (reader.buffer().is_empty()
                || batch.frames.len() >= ingest.live.max_batch.load(Ordering::Relaxed))
        {
            submit(ingest, &mut batch, &outgoing)?;
        }
        let frame = tokio::select! {
            _ = shutdown.changed() => break Ok(()),
            frame = tokio::time::timeout(ingest.idle_timeout, read_frame(&mut reader, ingest.max_frame)) => frame,
            _ = unauthenticated_at(&standing, auth_deadline), if !authenticated => {
                ingest.metrics.tcp_unauthenticated_closed.inc();
                tracing::debug!(%peer, "TCP ingest: closed, not authenticated in time");
                send_close(
                    &outgoing,
                    &budget,
                    "auth_timeout",
                    format!(
                        "this connection did not authenticate within {} s \
                         (ingest.tcp.auth_timeout_s): send HELLO with the node's ingest token \
                         first, or a TX frame that commits; or the node already serves \
                         ingest.tcp.max_connections = {} authenticated connections",
                        ingest.auth_timeout.as_secs(),
                        ingest.max_connections
                    ),
                );
                break Ok(());
            }
            _ = &mut displaced, if !authenticated => {
                tracing::debug!(%peer, "TCP ingest: unauthenticated connection closed to make room");
                send_close(
                    &outgoing,
                    &budget,
                    "displaced",
                    "closed to make room for a newer connection: too many connections have not \
                     authenticated (ingest.tcp.max_unauthenticated); send HELLO with the \
                     node's ingest token at once"
                        .into(),
                );
                break Ok(());
            }
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
        // A frame is taken only with its share of the budget. When the budget is spent, what
        // is pending goes to the producer first (its answers are what frees the budget).
        let cost = frame
            .as_ref()
            .map_or(0, |frame| frame.body.len())
            .saturating_add(FRAME_OVERHEAD)
            .min(ingest.max_unanswered_bytes);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let held = match budget.clone().try_acquire_many_owned(cost) {
            Ok(held) => held,
            Err(_) => {
                if !batch.frames.is_empty() {
                    submit(ingest, &mut batch, &outgoing)?;
                }
                ingest.metrics.tcp_backpressure.inc();
                // Answers free the budget only as the client reads them: one that stops reading
                // is closed after idle_timeout_s, and an unauthenticated one at its deadline.
                tokio::select! {
                    _ = shutdown.changed() => break Ok(()),
                    held = tokio::time::timeout(ingest.idle_timeout, budget.clone().acquire_many_owned(cost)) => match held {
                        Ok(held) => held?,
                        Err(_) => {
                            tracing::debug!(%peer, "TCP ingest: the client read no answers for idle_timeout_s; closed");
                            break Ok(());
                        }
                    },
                    _ = unauthenticated_at(&standing, auth_deadline), if !authenticated => break Ok(()),
                    _ = &mut displaced, if !authenticated => break Ok(()),
                }
            }
        };
        let taken = match frame {
            Ok(frame) => take(frame, &mut authorized, ingest),
            Err((request, code, message)) => Taken::Refused(request, code, message),
        };
        if authorized && !authenticated && !Standing::lock(&standing).authenticate() {
            ingest.metrics.tcp_refused.inc();
            send_close(
                &outgoing,
                &budget,
                "busy",
                format!(
                    "this node serves {} authenticated connections at once \
                     (ingest.tcp.max_connections); try again later",
                    ingest.max_connections
                ),
            );
            break Ok(());
        }
        match taken {
            Taken::Queued(request, item) => batch.push(request, item, held),
            Taken::Answer(frame) => {
                answer_after(&outgoing, &mut batch, ingest, frame, held)?;
            }
            Taken::Refused(request, code, message) => {
                ingest.metrics.tcp_error_frames.inc();
                let frame = wire::encode(wire::ERROR, request, &wire::error_body(code, &message));
                answer_after(&outgoing, &mut batch, ingest, frame, held)?;
            }
        }
    };
    if !batch.frames.is_empty() {
        submit(ingest, &mut batch, &outgoing)?;
    }
    drop(outgoing);
    // Every frame taken is answered before the connection closes, if the client reads them: a
    // client that does not is given up on after the connection's own bound (its
    // authentication deadline, else idle_timeout_s), so it cannot hold its place for ever.
    let bound = if authenticated || Standing::lock(&standing).permit.is_some() {
        ingest.idle_timeout
    } else {
        ingest.auth_timeout
    };
    let aborter = writer.abort_handle();
    match tokio::time::timeout(bound, writer).await {
        Ok(written) => written??,
        Err(_) => {
            aborter.abort();
            tracing::debug!(%peer, "TCP ingest: the client does not read its answers; closed");
        }
    }
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
fn answer_after(
    outgoing: &mpsc::UnboundedSender<Outgoing>,
    batch: &mut Batch,
    ingest: &Arc<TcpIngest>,
    frame: Vec<u8>,
    held: OwnedSemaphorePermit,
) -> Result<()> {
    if !batch.frames.is_empty() {
        submit(ingest, batch, outgoing)?;
    }
    outgoing
        .send(Outgoing::Frame { frame, _held: held })
        .map_err(|_| anyhow::anyhow!("the connection's writer stopped"))
}

/// Why frames got no result: an error code and a message.
type Refusal = (&'static str, String);

/// Where a submission's results will come from.
enum Pending {
    /// Handed to the producer: its reply, once the block is committed.
    Queued(oneshot::Receiver<Vec<TxResult>>),
    /// Still being signed or queued, off the async threads.
    Handing(tokio::task::JoinHandle<Result<oneshot::Receiver<Vec<TxResult>>, Refusal>>),
}

/// Up to this many records are signed on the connection's own task (about 20 µs each); a
/// larger batch is signed on a blocking thread, so no async thread is held for long.
const SIGN_INLINE: usize = 16;

/// Signs the records of `batch` and hands everything to the block producer; empties `batch`.
/// A small batch goes straight to the producer's queue; a large one, or one that finds the
/// queue full, is finished on a blocking thread. Answers are queued for the writer in order.
fn submit(
    ingest: &Arc<TcpIngest>,
    batch: &mut Batch,
    outgoing: &mpsc::UnboundedSender<Outgoing>,
) -> Result<()> {
    let received = batch.started;
    let held = batch
        .held
        .take()
        .expect("a batch with frames holds their budget");
    let frames = std::mem::take(&mut batch.frames);
    let requests: Vec<u64> = frames.iter().map(|(request, _)| *request).collect();
    let records = frames
        .iter()
        .filter(|(_, item)| matches!(item, Item::Record { .. }))
        .count();
    let earlier = batch
        .handing
        .take()
        .and_then(|mut handing| match handing.try_recv() {
            Err(oneshot::error::TryRecvError::Closed) => None,
            _ => Some(handing),
        });
    let results = if records <= SIGN_INLINE && earlier.is_none() {
        match signed(ingest, frames) {
            Err(refusal) => Err(refusal),
            Ok(transactions) => {
                let (submission, answer) = new_submission(transactions, received);
                match ingest.queue.try_send(submission) {
                    Ok(()) => {
                        queued(ingest, requests.len());
                        Ok(Pending::Queued(answer))
                    }
                    Err(std::sync::mpsc::TrySendError::Full(submission)) => {
                        let (handed, handing) = oneshot::channel::<()>();
                        batch.handing = Some(handing);
                        let shared = ingest.clone();
                        Ok(Pending::Handing(tokio::task::spawn_blocking(move || {
                            hand_over(&shared, submission)?;
                            drop(handed);
                            Ok(answer)
                        })))
                    }
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(shutting_down()),
                }
            }
        }
    } else {
        let (handed, handing) = oneshot::channel::<()>();
        batch.handing = Some(handing);
        let shared = ingest.clone();
        Ok(Pending::Handing(tokio::task::spawn_blocking(move || {
            let transactions = signed(&shared, frames)?;
            if let Some(earlier) = earlier {
                // Closed, never sent to, once the earlier submission is queued or failed.
                let _ = earlier.blocking_recv();
            }
            let (submission, answer) = new_submission(transactions, received);
            hand_over(&shared, submission)?;
            drop(handed);
            Ok(answer)
        })))
    };
    outgoing
        .send(Outgoing::Results {
            requests,
            results,
            _held: held,
        })
        .map_err(|_| anyhow::anyhow!("the connection's writer stopped"))
}

/// The frames' transactions, the records signed by the node's identity.
fn signed(ingest: &TcpIngest, frames: Vec<(u64, Item)>) -> Result<Vec<Transaction>, Refusal> {
    let mut transactions = Vec::with_capacity(frames.len());
    for (_, item) in frames {
        transactions.push(match item {
            Item::Tx(tx) => *tx,
            Item::Record { content_type, body } => {
                let Some((identity, key)) = &ingest.identity else {
                    return Err(("no_identity", "this node has no ingest identity".into()));
                };
                crate::ingest::sign_as(
                    ingest.chain_id,
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
    Ok(transactions)
}

fn new_submission(
    transactions: Vec<Transaction>,
    received: Instant,
) -> (Submission, oneshot::Receiver<Vec<TxResult>>) {
    let (reply, answer) = oneshot::channel();
    let submission = Submission {
        transactions,
        received,
        reply,
    };
    (submission, answer)
}

/// Hands `submission` to the producer, waiting while its queue is full (blocking threads only).
fn hand_over(ingest: &TcpIngest, submission: Submission) -> Result<(), Refusal> {
    let count = submission.transactions.len();
    ingest.queue.send(submission).map_err(|_| shutting_down())?;
    queued(ingest, count);
    Ok(())
}

fn queued(ingest: &TcpIngest, count: usize) {
    ingest
        .metrics
        .pending
        .inc_by(i64::try_from(count).unwrap_or(i64::MAX));
}

fn shutting_down() -> Refusal {
    ("shutting_down", "the node is shutting down".to_string())
}

/// A submission's results once they are in. If they are not in yet, what `writer` holds goes
/// out first: under steady load the next results are always queued, and waiting for them with
/// a full buffer would hold every answer already in it back by one block.
async fn results_of<W: AsyncWrite + Unpin>(
    pending: Result<Pending, Refusal>,
    writer: &mut BufWriter<W>,
) -> std::io::Result<Result<Vec<TxResult>, Refusal>> {
    let mut answer = match pending {
        Err(refusal) => return Ok(Err(refusal)),
        Ok(Pending::Queued(answer)) => answer,
        Ok(Pending::Handing(handing)) => {
            if !handing.is_finished() {
                writer.flush().await?;
            }
            match handing.await {
                Ok(Ok(answer)) => answer,
                Ok(Err(refusal)) => return Ok(Err(refusal)),
                Err(error) => {
                    return Ok(Err(("internal", format!("the submission failed: {error}"))));
                }
            }
        }
    };
    let answer = match answer.try_recv() {
        Ok(results) => Ok(results),
        Err(oneshot::error::TryRecvError::Empty) => {
            writer.flush().await?;
            answer.await
        }
        Err(oneshot::error::TryRecvError::Closed) => answer.await,
    };
    Ok(answer.map_err(|_| {
        (
            "not_committed",
            "the node stopped before the block was committed; send again".to_string(),
        )
    }))
}

/// Writes answers in the order their frames came, each once its block is committed.
/// The first `COMMITTED` answer authenticates the connection (`standing`): its client holds a
/// registered key.
async fn write_answers<W: AsyncWrite + Unpin>(
    mut writer: BufWriter<W>,
    mut queued: mpsc::UnboundedReceiver<Outgoing>,
    metrics: Arc<Metrics>,
    mut standing: Option<Arc<std::sync::Mutex<Standing>>>,
) -> Result<()> {
    while let Some(next) = queued.recv().await {
        let mut next = Some(next);
        while let Some(outgoing) = next.take() {
            match outgoing {
                Outgoing::Frame { frame, _held } => writer.write_all(&frame).await?,
                Outgoing::Results {
                    requests,
                    results,
                    _held,
                } => {
                    let results = results_of(results, &mut writer).await?;
                    match results {
                        Ok(results) => {
                            for (request, result) in requests.iter().zip(&results) {
                                writer.write_all(&result_frame(*request, result)).await?;
                            }
                            if standing.is_some()
                                && results
                                    .iter()
                                    .any(|result| matches!(result, TxResult::Committed { .. }))
                                && let Some(standing) = standing.take()
                            {
                                // Refused when every place is taken: then the connection is
                                // closed at its deadline.
                                Standing::lock(&standing).authenticate();
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
        let (outgoing, queued) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(2));
        let held = || budget.clone().try_acquire_owned().expect("a permit");
        let writer = tokio::spawn(write_answers(
            BufWriter::new(ours),
            queued,
            Arc::new(Metrics::new(0, false)),
            None,
        ));
        let (first_done, first) = oneshot::channel();
        let (second_done, second) = oneshot::channel();
        outgoing
            .send(Outgoing::Results {
                requests: vec![7],
                results: Ok(Pending::Queued(first)),
                _held: held(),
            })
            .expect("queued");
        outgoing
            .send(Outgoing::Results {
                requests: vec![8],
                results: Ok(Pending::Queued(second)),
                _held: held(),
            })
            .expect("queued");
        first_done.send(committed(1)).expect("sent");
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
        second_done.send(committed(2)).expect("sent");
        drop(outgoing);
        writer
            .await
            .expect("joined")
            .expect("the writer ends cleanly");
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, result_frame(8, &committed(2)[0]));
        assert_eq!(
            budget.available_permits(),
            2,
            "written answers give their budget back"
        );
    }
}
