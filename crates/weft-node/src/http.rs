//! Serving the API's connections: HTTP/1.1 (hyper) with a header timeout that also closes idle
//! kept-alive connections and bounds a stalled request body or TLS handshake, and the
//! connection caps of [`crate::gate`].
//!
//! axum's own `serve` sets no timer, so hyper's header timeout never fired there and a client
//! could keep a half-sent request open as long as it liked; and it accepted every connection,
//! so idle sockets could take every file descriptor the process had.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::Peer;
use crate::gate::{Admission, Gate};
use crate::metrics::Metrics;

/// File descriptors kept for everything but client connections: the ledger's files, the queue
/// journal, directory ingest (four per watched directory and round), the consensus network's
/// peers, the runtime.
pub(crate) const RESERVED_FDS: u64 = 384;

/// What the API's connections are held to.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub gate: Arc<Gate>,
    pub header_timeout: Duration,
    /// At shutdown, how long a connection may take to finish the request in hand.
    pub drain: Duration,
}

/// Raises the soft limit of open files to the hard one and returns it: the caps of the API
/// and TCP ingest are fitted below it.
pub(crate) fn descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_some_and(|soft| soft < hard)
    {
        limit.current = Some(hard);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "cannot raise the open-file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Serves `listener` until `stopping` turns true; then every connection finishes the request in
/// hand and closes. Returns once all are closed.
pub(crate) async fn serve(
    mut listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stopping) => break,
            // Nothing is accepted while the gate has no room: new connections wait in the
            // kernel's queue instead of taking descriptors.
            (io, peer) = async { limits.gate.room().await; axum::serve::Listener::accept(&mut listener).await } => {
                let ticket = match limits.gate.admit(peer.ip()) {
                    Admission::In(ticket, evicted) => {
                        metrics.http_closed.inc_by(evicted as u64);
                        ticket
                    }
                    Admission::Full => {
                        metrics.http_closed.inc();
                        tracing::debug!(%peer, "API: too many connections still closing; refused");
                        continue;
                    }
                };
                metrics.http_connections.inc();
                let router = router.clone();
                let metrics = metrics.clone();
                let stopping = stopping.clone();
                let (header_timeout, drain) = (limits.header_timeout, limits.drain);
                let tls = tls.clone();
                connections.spawn(async move {
                    let _ = io.set_nodelay(true);
                    match tls {
                        None => serve_one(io, peer, router, ticket, header_timeout, drain, stopping).await,
                        Some(acceptor) => {
                            if let Some(io) = crate::tls::handshake(&acceptor, io, peer, header_timeout).await {
                                serve_one(io, peer, router, ticket, header_timeout, drain, stopping).await;
                            }
                        }
                    }
                    metrics.http_connections.dec();
                });
            }
            // Finished connections are reaped at once.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Serves one admitted connection until it ends, or until it is asked to close (displaced, or
/// the node stopping) and has finished the request in hand.
async fn serve_one<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    mut ticket: crate::gate::Ticket,
    header_timeout: Duration,
    drain: Duration,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A body that stalls longer than the header timeout between two pieces ends in an error,
    // which the handlers answer with 408 (`api::error`), and the connection closes.
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(Peer(peer)));
        router.clone().oneshot(request.map(|body| {
            axum::body::Body::new(tower_http::timeout::TimeoutBody::new(header_timeout, body))
        }))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    // Asked to close, a connection finishes the request in hand, within a
    // bound: one whose client sends its body slowly or does not read the answer
    // is dropped then, so closing connections cannot pile up.
    let outcome = tokio::select! {
        outcome = connection.as_mut() => Some(outcome),
        _ = ticket.closing() => {
            connection.as_mut().graceful_shutdown();
            tokio::time::timeout(header_timeout, connection).await.ok()
        }
        _ = stopped(&mut stopping) => {
            connection.as_mut().graceful_shutdown();
            tokio::time::timeout(drain, connection).await.ok()
        }
    };
    match outcome {
        Some(Err(error)) => tracing::debug!(%peer, %error, "API connection ended"),
        None => tracing::debug!(%peer, "API connection dropped: it did not finish in time"),
        Some(Ok(())) => {}
    }
    drop(ticket);
}

/// Resolves once the node is stopping.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
