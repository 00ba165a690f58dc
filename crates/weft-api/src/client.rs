//! A small blocking client of a node's REST API (docs/api.md), returning the typed bodies of
//! this crate. The CLI's `--node URL` goes through it, and so can tests.
//!
//! Behind the `client` feature: it brings ureq and rustls, which the node (serving the same
//! types) does not need.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_core::{Fingerprint, PublicKey, ResourceId, TxId};

use crate::{
    AssetReport, BatchAnswer, Block, ChainInfo, CheckpointAnswer, ClaimAnswer, Committed,
    ConsistencyAnswer, ErrorBody, ErrorCode, JoinDocument, KeyStatus, NetStatus, ResourceAnswer,
    ResourceIds, Status, SubmitBatch, SubmitOne, TlogProofAnswer, TransactionAnswer, TxIds,
};

/// The largest answer read (a block of many transactions, a long history).
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address is not `http://HOST:PORT` or `https://HOST:PORT`.
    #[error("{url:?} is not an API address: {why}")]
    Address { url: String, why: &'static str },
    /// An `https://` node without the certificate to trust it through.
    #[error("{url}: a TLS node is trusted through its certificate (the node's, or its CA's)")]
    Untrusted { url: String },
    /// The request did not reach the node, or its answer did not come back.
    #[error("cannot reach the node at {base}")]
    Unreachable {
        base: String,
        #[source]
        source: ureq::Error,
    },
    /// The answer could not be read.
    #[error("cannot read the node's answer")]
    Read(#[source] ureq::Error),
    /// The node answered with something that is not JSON.
    #[error("the node answered HTTP {status} with a body that is not JSON: {start}")]
    NotJson { status: u16, start: String },
    /// The node answered JSON of another shape than the endpoint's body.
    #[error("the answer to {path} is not what this version of weft expects")]
    Shape {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The node refused a transaction under a business rule.
    #[error(transparent)]
    Rule(#[from] RemoteRule),
    /// The node answered with an error of another kind.
    #[error(transparent)]
    Refused(#[from] RemoteError),
}

/// The node refused a transaction under a business rule (`code = "rule"`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RemoteRule {
    pub rule: String,
    pub message: String,
}

/// The node answered, with an error that is not a rule's.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the node refused the request ({code}, HTTP {status}): {message}")]
pub struct RemoteError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
}

impl ClientError {
    /// Did the node certainly not act on the request: it answered with an error of the client
    /// (4xx) or a rule's refusal? (Not a lost connection, after which it may have.)
    pub fn certainly_refused(&self) -> bool {
        match self {
            ClientError::Rule(_) => true,
            ClientError::Refused(remote) => (400..500).contains(&remote.status),
            _ => false,
        }
    }

    /// The node answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Refused(remote) if remote.status == 404)
    }
}

/// A node's API.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

impl NodeClient {
    /// `url` is the node's API, e.g. `http://127.0.0.1:7460`, or `https://…` with `trusted`:
    /// the certificates (the node's, or its CA's) the node's certificate must chain to. Every
    /// request is bounded by `timeout`.
    pub fn new(
        url: &str,
        trusted: Option<Vec<CertificateDer<'static>>>,
        timeout: Duration,
    ) -> Result<NodeClient, ClientError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let address = |why| ClientError::Address {
            url: url.to_string(),
            why,
        };
        let (rest, tls) = if let Some(rest) = base.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = base.strip_prefix("https://") {
            (rest, true)
        } else {
            return Err(address("give http://HOST:PORT or https://HOST:PORT"));
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            return Err(address("give http://HOST:PORT, without a path"));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .timeout_global(Some(timeout));
        if tls {
            let Some(trusted) = trusted else {
                return Err(ClientError::Untrusted {
                    url: url.to_string(),
                });
            };
            config = config.tls_config(tls_config(&trusted));
        }
        Ok(NodeClient {
            base,
            agent: config.build().into(),
        })
    }

    /// The API's address, e.g. `http://127.0.0.1:7460`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<Status, ClientError> {
        self.get("/v1/status")
    }

    /// `GET /v1/net/status`: the node's view of its network. A node of its own answers 404
    /// (`ClientError::is_not_found`).
    pub fn net_status(&self) -> Result<NetStatus, ClientError> {
        self.get("/v1/net/status")
    }

    /// `GET /v1/net/join`: the join document of the node's network (404 on a node of its own).
    /// As the node sent it: block 0 is not checked here.
    pub fn join_document(&self) -> Result<JoinDocument, ClientError> {
        self.get("/v1/net/join")
    }

    /// `GET /v1/chain`.
    pub fn chain(&self) -> Result<ChainInfo, ClientError> {
        self.get("/v1/chain")
    }

    /// `GET /v1/blocks/{height}`; `None` if there is no such block yet.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ClientError> {
        self.get_optional(&format!("/v1/blocks/{height}"))
    }

    /// `GET /v1/transactions/{id}`; `None` if it is not on the chain (also while it is only
    /// queued: the node answers that with 202).
    pub fn transaction(&self, id: &TxId) -> Result<Option<TransactionAnswer>, ClientError> {
        let path = format!("/v1/transactions/{id}");
        match self.request(&path, None::<&()>) {
            Ok((202, _)) => Ok(None),
            Ok((_, value)) => shape(&path, value).map(Some),
            Err(error) => not_found(error),
        }
    }

    /// `GET /v1/transactions?prefix=`.
    pub fn transactions_with_prefix(&self, prefix: &str) -> Result<TxIds, ClientError> {
        self.get(&format!("/v1/transactions?prefix={prefix}"))
    }

    /// `GET /v1/resources?prefix=`.
    pub fn resources_with_prefix(&self, prefix: &str) -> Result<ResourceIds, ClientError> {
        self.get(&format!("/v1/resources?prefix={prefix}"))
    }

    /// `GET /v1/resources/{id}`; `None` if it is not registered.
    pub fn resource(&self, id: &ResourceId) -> Result<Option<ResourceAnswer>, ClientError> {
        self.get_optional(&format!("/v1/resources/{id}"))
    }

    /// `GET /v1/resources/{id}/keys/{key}`.
    pub fn key_status(
        &self,
        resource: &ResourceId,
        key: &PublicKey,
    ) -> Result<KeyStatus, ClientError> {
        self.get(&format!("/v1/resources/{resource}/keys/{key}"))
    }

    /// `GET /v1/assets/{fingerprint}[?recipient=ID]`.
    pub fn asset(
        &self,
        fingerprint: &Fingerprint,
        recipient: Option<&ResourceId>,
    ) -> Result<AssetReport, ClientError> {
        let query = recipient.map_or(String::new(), |id| format!("?recipient={id}"));
        self.get(&format!("/v1/assets/{fingerprint}{query}"))
    }

    /// `GET /v1/claims/{fingerprint}`; `None` if nobody claimed it.
    pub fn claim(&self, fingerprint: &Fingerprint) -> Result<Option<ClaimAnswer>, ClientError> {
        self.get_optional(&format!("/v1/claims/{fingerprint}"))
    }

    /// `POST /v1/transactions`, waiting for the block.
    pub fn submit(&self, body: &SubmitOne) -> Result<Committed, ClientError> {
        self.post("/v1/transactions", body)
    }

    /// `POST /v1/transactions/batch`, waiting for the block.
    pub fn submit_batch(&self, body: &SubmitBatch) -> Result<BatchAnswer, ClientError> {
        self.post("/v1/transactions/batch", body)
    }

    /// `GET /v1/checkpoint[?size=N]`: a signed checkpoint of the chain.
    pub fn checkpoint(&self, size: Option<u64>) -> Result<CheckpointAnswer, ClientError> {
        match size {
            Some(size) => self.get(&format!("/v1/checkpoint?size={size}")),
            None => self.get("/v1/checkpoint"),
        }
    }

    /// `GET /v1/checkpoint/consistency?old=M&new=N`.
    pub fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyAnswer, ClientError> {
        self.get(&format!("/v1/checkpoint/consistency?old={old}&new={new}"))
    }

    /// `GET /v1/transactions/{id}/tlog-proof[?size=N]`; `None` if the transaction is not on
    /// the chain.
    pub fn tlog_proof(
        &self,
        id: &TxId,
        size: Option<u64>,
    ) -> Result<Option<TlogProofAnswer>, ClientError> {
        match size {
            Some(size) => {
                self.get_optional(&format!("/v1/transactions/{id}/tlog-proof?size={size}"))
            }
            None => self.get_optional(&format!("/v1/transactions/{id}/tlog-proof")),
        }
    }

    /// `GET path`, the answer as `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (_, value) = self.request(path, None::<&()>)?;
        shape(&format!("{}{path}", self.base), value)
    }

    /// `GET path`, with `None` for 404.
    pub fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ClientError> {
        self.get(path).map(Some).or_else(not_found)
    }

    /// `POST path` with `body` as JSON, the answer as `T`.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let (_, value) = self.request(path, Some(body))?;
        shape(&format!("{}{path}", self.base), value)
    }

    /// `POST path` with a text body (as C2SP tlog-witness asks): the status, the answer's
    /// `Content-Type` and its text (at most `limit` bytes read), whatever the status.
    pub fn post_text(
        &self,
        path: &str,
        body: &str,
        limit: u64,
    ) -> Result<(u16, String, String), ClientError> {
        let (status, content_type, bytes) =
            self.post_bytes(path, "text/plain; charset=utf-8", body.as_bytes(), limit)?;
        // Not UTF-8: the text shows where, and whoever parses it refuses it.
        Ok((
            status,
            content_type,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    /// `POST path` with `body` of `content_type`: the status, the answer's content type and its
    /// bytes (at most `limit`).
    pub fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        limit: u64,
    ) -> Result<(u16, String, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |source| ClientError::Unreachable {
            base: self.base.clone(),
            source,
        };
        let mut response = self
            .agent
            .post(&url)
            .content_type(content_type)
            .send(body)
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(ClientError::Read)?;
        Ok((status, content_type, bytes))
    }

    /// `GET path`, the answer's text (at most `limit` bytes) for a 200, else the error the node
    /// named.
    pub fn get_text(&self, path: &str, limit: u64) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |source| ClientError::Unreachable {
            base: self.base.clone(),
            source,
        };
        let mut response = self.agent.get(&url).call().map_err(unreachable)?;
        if response.status().as_u16() != 200 {
            return answer(response).map(|_| String::new());
        }
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(ClientError::Read)
    }

    /// A request (`GET`, or `POST` with a body): the status and JSON of a 2xx answer, else the
    /// error the node named.
    fn request<B: Serialize>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some(body) => self.agent.post(&url).send_json(body),
            None => self.agent.get(&url).call(),
        };
        let response = sent.map_err(|source| ClientError::Unreachable {
            base: self.base.clone(),
            source,
        })?;
        answer(response)
    }
}

/// `Ok(None)` for a 404, else the error.
fn not_found<T>(error: ClientError) -> Result<Option<T>, ClientError> {
    if error.is_not_found() {
        Ok(None)
    } else {
        Err(error)
    }
}

fn shape<T: DeserializeOwned>(path: &str, value: serde_json::Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|source| ClientError::Shape {
        path: path.to_string(),
        source,
    })
}

/// Trust exactly `trusted`.
fn tls_config(trusted: &[CertificateDer<'static>]) -> ureq::tls::TlsConfig {
    let certs = trusted
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect::<Vec<_>>();
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build()
}

/// A node's JSON answer: its status and value for a 2xx, else the error its [`ErrorBody`]
/// names.
pub fn answer(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<(u16, serde_json::Value), ClientError> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(ClientError::Read)?;
    let not_json = || ClientError::NotJson {
        status,
        start: text.chars().take(200).collect(),
    };
    if (200..300).contains(&status) {
        let value = serde_json::from_str(&text).map_err(|_| not_json())?;
        return Ok((status, value));
    }
    let body: ErrorBody = match serde_json::from_str(&text) {
        Ok(body) => body,
        // JSON, but not an error body (a proxy's answer, say): still the node's refusal.
        Err(_) if serde_json::from_str::<serde_json::Value>(&text).is_ok() => ErrorBody {
            error: crate::ErrorDetail {
                code: ErrorCode::Other("unknown".into()),
                message: "(no message)".into(),
                rule: None,
            },
        },
        Err(_) => return Err(not_json()),
    };
    let error = body.error;
    if let Some(rule) = error.rule {
        return Err(RemoteRule {
            rule,
            message: error.message,
        }
        .into());
    }
    Err(RemoteError {
        status,
        code: error.code,
        message: error.message,
    }
    .into())
}
