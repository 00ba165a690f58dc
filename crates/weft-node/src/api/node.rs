//! The node itself: health, readiness, metrics, status, the network's status and the join
//! document.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use weft_api::{JoinDocument, NetStatus, Status};
use weft_ledger::LedgerError;
use weft_ledger::store::Store;

use super::error::ApiError;
use super::state::{AppState, read};

#[utoipa::path(get, path = "/health", tag = "node",
    responses((status = 200, description = "The process serves", body = String, content_type = "text/plain")))]
pub(crate) async fn health() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/ready", tag = "node",
    responses((status = 200, description = "The node takes submissions", body = String, content_type = "text/plain")))]
pub(crate) async fn ready() -> &'static str {
    "ready\n"
}

#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if let Some(status) = &state.net_status
        && let Ok(status) = status.lock()
    {
        state.metrics.update_net(&status);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.encode(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/status", tag = "node",
    responses((status = 200, description = "Height, head, type, peers, mempool", body = weft_api::Status)))]
pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Result<Json<Status>, ApiError> {
    let node_type = state.config.node.node_type.name();
    let chain = state.chain_name.clone();
    let pending = state.metrics.pending.get();
    let peers = state.net_status.as_ref().map_or(0, |status| {
        status.lock().map_or(0, |status| status.peers.len())
    });
    read(&state, move |ledger| {
        let head = &ledger.head().header;
        Ok(Json(Status {
            chain,
            chain_id: ledger.chain_id(),
            head: head.hash(),
            height: head.height,
            mempool: pending,
            node_type: node_type.to_string(),
            peers: peers as u64,
            time: head.timestamp,
        }))
    })
    .await
}

#[utoipa::path(get, path = "/v1/net/status", tag = "node",
    responses(
        (status = 200, description = "Peers, validators, height, sync state (docs/network.md)", body = weft_api::NetStatus),
        (status = 404, description = "The node is not part of a network", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn net_status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<NetStatus>, ApiError> {
    let Some(status) = &state.net_status else {
        return Err(ApiError::not_found(
            "this node runs on its own (network.enabled = false in its config.toml)",
        ));
    };
    let status = status
        .lock()
        .map_err(|_| ApiError::not_found("the network status is not available"))?
        .clone();
    Ok(Json(status))
}

#[utoipa::path(get, path = "/v1/net/join", tag = "node",
    responses(
        (status = 200, description = "The join document: block 0, seeds, followers (docs/network.md, \"Joining a network\")", body = weft_api::JoinDocument),
        (status = 404, description = "The node is not part of a network", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn net_join(
    State(state): State<Arc<AppState>>,
) -> Result<Json<JoinDocument>, ApiError> {
    let Some(status) = &state.net_status else {
        return Err(ApiError::not_found(
            "this node runs on its own (network.enabled = false in its config.toml): there is \
             no network to join",
        ));
    };
    let key = status
        .lock()
        .map_err(|_| ApiError::not_found("the network status is not available"))?
        .key
        .clone();
    let key = weft_core::PublicKey::from_hex(&key)
        .map_err(|error| ApiError::from(LedgerError::Corrupt(error.to_string())))?;
    let chain = state.chain_name.clone();
    let network = state.config.network.clone();
    read(&state, move |ledger| {
        let block0 = ledger
            .store()
            .block(0)?
            .ok_or_else(|| LedgerError::Corrupt("the ledger has no block 0".into()))?;
        let document = crate::net::join::join_document(&chain, &block0, &key, &network)
            .map_err(|error| LedgerError::Invalid(format!("{error:#}")))?;
        Ok(Json(document))
    })
    .await
}
