//! A small blocking client of a node's REST API (docs/api.md), for `--node URL`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// The node refused a transaction under a business rule (exit code 3, like the embedded mode).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RemoteRule {
    pub rule: String,
    pub message: String,
}

/// The node answered, with an error of another kind (exit code 1).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the node refused the request ({code}, HTTP {status}): {message}")]
pub struct RemoteError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
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
        let base = url.trim().trim_end_matches('/').to_string();
        let (rest, tls) = if let Some(rest) = base.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = base.strip_prefix("https://") {
            (rest, true)
        } else {
            bail!(
                "--node {url:?} is not an API address: give http://HOST:PORT or https://HOST:PORT"
            );
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            bail!("--node {url:?} is not an API address: give http://HOST:PORT, without a path");
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .timeout_global(Some(timeout));
        if tls {
            let Some(ca) = ca else {
                bail!(
                    "--node {url}: a TLS node is trusted through its certificate: give --ca FILE \
                     (the node's certificate, or the CA that issued it, PEM)"
                );
            };
            config = config.tls_config(tls_config(ca)?);
        }
        Ok(NodeClient {
            base,
            agent: config.build().into(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        answer(response)
    }

    /// `GET`, with `None` for 404.
    pub fn get_optional(&self, path: &str) -> Result<Option<Value>> {
        match self.get(path) {
            Ok(value) => Ok(Some(value)),
            Err(error) => match error.downcast_ref::<RemoteError>() {
                Some(remote) if remote.status == 404 => Ok(None),
                _ => Err(error),
            },
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .post(&url)
            .send_json(body)
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        answer(response)
    }
}

/// Trust exactly the certificates in the PEM file `ca`.
fn tls_config(ca: &Path) -> Result<ureq::tls::TlsConfig> {
    let certs = crate::tls::certificates(ca)?
        .into_iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect::<Vec<_>>();
    Ok(ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build())
}

/// A node's JSON answer: the value for a 2xx, else the error it names.
pub(crate) fn answer(mut response: ureq::http::Response<ureq::Body>) -> Result<Value> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .context("cannot read the node's answer")?;
    let value: Value = serde_json::from_str(&text).map_err(|_| {
        anyhow!(
            "the node answered HTTP {status} with a body that is not JSON: {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let error = &value["error"];
    let message = error["message"]
        .as_str()
        .unwrap_or("(no message)")
        .to_string();
    if let Some(rule) = error["rule"].as_str() {
        return Err(RemoteRule {
            rule: rule.to_string(),
            message,
        }
        .into());
    }
    Err(RemoteError {
        status,
        code: error["code"].as_str().unwrap_or("unknown").to_string(),
        message,
    }
    .into())
}
