//! TLS for the API and TCP ingest (rustls with the aws-lc-rs provider, ADR 0008).
//!
//! With `[tls] cert` and `key` set, every connection of both listeners is TLS. The handshake
//! runs in the connection's own task once the connection was admitted ([`crate::gate`]), bounded
//! in time (the API's `api.header_timeout_ms`, TCP ingest's `ingest.tcp.auth_timeout_s`), so a
//! client that stalls its handshake holds no one up and counts like any other.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The certificates of a PEM file: those a server's certificate must chain to.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

/// The server side of TLS from a PEM certificate chain and its private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("tls.cert: cannot read {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "tls.cert: {} is not a PEM certificate chain",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        bail!("tls.cert: {} holds no certificate", cert.display());
    }
    // The private key is a secret: refused if other users may read it.
    let pem = weft_ledger::files::read_secret(key, "tls.key")?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).with_context(|| {
        format!(
            "tls.key: {} is not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("no TLS protocol version available")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("tls.key does not belong to tls.cert, or the key type is not supported")?;
    Ok(Arc::new(config))
}

/// Runs the server side of a TLS handshake on `stream`, dropping the connection if it has not
/// finished `within`. Called in a connection's own task, after the connection was admitted, so
/// handshakes count against the connection caps like any connection, and a slow one holds up
/// no one else.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    within: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
