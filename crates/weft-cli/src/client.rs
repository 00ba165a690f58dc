//! `--node URL [--ca FILE]`: weft-api's typed client of a node's REST API (docs/api.md), opened
//! with the CLI's flags and named in their terms.
//!
//! Commands read typed bodies through [`NodeClient::typed`] (mostly via
//! [`crate::chain::RemoteChain`]). The untyped [`NodeClient::get`] and [`NodeClient::post`] stay
//! for the benchmark commands.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
pub use weft_api::client::{ClientError, RemoteRule};

#[derive(Debug, Clone)]
pub struct NodeClient {
    typed: weft_api::client::NodeClient,
}

impl NodeClient {
    /// `url` is the node's API, e.g. `http://127.0.0.1:7460`, or `https://…` with `ca`: the
    /// PEM certificate (or CA certificate) the node's certificate must chain to.
    pub fn new(url: &str, ca: Option<&Path>) -> Result<NodeClient> {
        NodeClient::with_timeout(url, ca, Duration::from_secs(120))
    }

    /// As [`NodeClient::new`], with every request bounded by `timeout` (status checks that must
    /// not hang on a stopped node).
    pub fn with_timeout(url: &str, ca: Option<&Path>, timeout: Duration) -> Result<NodeClient> {
        let trusted = ca.map(crate::tls::certificates).transpose()?;
        match weft_api::client::NodeClient::new(url, trusted, timeout) {
            Ok(typed) => Ok(NodeClient { typed }),
            Err(error @ ClientError::Address { .. }) => Err(anyhow!("--node {error}")),
            Err(ClientError::Untrusted { .. }) => bail!(
                "--node {}: a TLS node is trusted through its certificate: give --ca FILE \
                 (the node's certificate, or the CA that issued it, PEM)",
                url.trim().trim_end_matches('/')
            ),
            Err(error) => Err(error.into()),
        }
    }

    pub fn base(&self) -> &str {
        self.typed.base()
    }

    /// The typed client: answers as weft-api's bodies.
    pub fn typed(&self) -> &weft_api::client::NodeClient {
        &self.typed
    }

    /// `GET path`, the answer as loose JSON (for the benchmark commands).
    pub fn get(&self, path: &str) -> Result<Value> {
        Ok(self.typed.get(path)?)
    }

    /// `POST path` with a JSON body, the answer as loose JSON (for the benchmarks).
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        Ok(self.typed.post(path, body)?)
    }
}

impl From<NodeClient> for weft_api::client::NodeClient {
    fn from(client: NodeClient) -> Self {
        client.typed
    }
}

/// A node's JSON answer: the value for a 2xx, else the error it names (for the benchmarks,
/// which send their own requests).
pub(crate) fn answer(response: ureq::http::Response<ureq::Body>) -> Result<Value> {
    let (_, value) = weft_api::client::answer(response)?;
    Ok(value)
}

/// The business rule a node refused a transaction under, if that is what `error` is.
pub fn remote_rule(error: &anyhow::Error) -> Option<&RemoteRule> {
    match error.downcast_ref::<ClientError>()? {
        ClientError::Rule(rule) => Some(rule),
        _ => None,
    }
}
