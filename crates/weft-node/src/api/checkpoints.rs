//! The chain's checkpoints (docs/checkpoints.md): `GET /checkpoint` (the C2SP tlog-tiles path,
//! a signed note as text), `GET /v1/checkpoint` (a checkpoint of any size, with the validator
//! changes that say who signs it), `GET /v1/checkpoint/consistency` (RFC 6962) and
//! `GET /v1/transactions/{id}/tlog-proof` (C2SP tlog-proof).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use weft_api::{CheckpointAnswer, ConsistencyAnswer, ErrorCode, TlogProofAnswer};
use weft_core::TxId;
use weft_ledger::LedgerError;

use super::error::{ApiError, ApiQuery};
use super::state::{AppState, read};

/// A size out of range is the asker's mistake, not the node's.
fn asked(error: LedgerError) -> ApiError {
    match error {
        LedgerError::NotFound(message) => ApiError::not_found(message),
        LedgerError::Invalid(message) => ApiError::bad_request(ErrorCode::BadQuery, message),
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/checkpoint", tag = "chain",
    responses(
        (status = 200, description = "The chain's head as a C2SP signed checkpoint (text/plain), signed with this node's key", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn checkpoint_note(
    State(state): State<Arc<AppState>>,
) -> Result<Response, ApiError> {
    let log = state.block_log.clone();
    let key = state.note_key.clone();
    let signed = read(&state, move |ledger| {
        log.checkpoint(ledger, None, &key).map_err(asked)
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        signed.note.to_text(),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SizeQuery {
    size: Option<u64>,
}

#[utoipa::path(get, path = "/v1/checkpoint", tag = "chain",
    params(("size" = Option<u64>, Query, description = "How many blocks from block 0 (default: all)")),
    responses(
        (status = 200, description = "A signed checkpoint and the validator changes in effect at its last block", body = weft_api::CheckpointAnswer),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "The chain has fewer blocks", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn checkpoint(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<SizeQuery>,
) -> Result<Json<CheckpointAnswer>, ApiError> {
    let log = state.block_log.clone();
    let key = state.note_key.clone();
    let signed = read(&state, move |ledger| {
        log.checkpoint(ledger, query.size, &key).map_err(asked)
    })
    .await?;
    Ok(Json(signed.answer()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    old: u64,
    new: u64,
}

#[utoipa::path(get, path = "/v1/checkpoint/consistency", tag = "chain",
    params(
        ("old" = u64, Query, description = "The smaller size (at least 1)"),
        ("new" = u64, Query, description = "The larger size (at most the number of blocks)"),
    ),
    responses(
        (status = 200, description = "The RFC 6962 consistency proof between the two trees", body = weft_api::ConsistencyAnswer),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "The chain has fewer blocks", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn consistency(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyAnswer>, ApiError> {
    let log = state.block_log.clone();
    let (old, new) = (query.old, query.new);
    let proof = read(&state, move |ledger| {
        log.consistency(ledger, old, new).map_err(asked)
    })
    .await?;
    Ok(Json(crate::checkpoints::consistency_answer(
        old, new, &proof,
    )))
}

#[utoipa::path(get, path = "/v1/transactions/{id}/tlog-proof", tag = "transactions",
    params(
        ("id" = String, Path, description = "Transaction id, 64 hex digits"),
        ("size" = Option<u64>, Query, description = "Against the checkpoint of the first SIZE blocks (default: all); it must hold the transaction's block"),
    ),
    responses(
        (status = 200, description = "The transaction's C2SP tlog-proof against the head's checkpoint (or that of SIZE blocks)", body = weft_api::TlogProofAnswer),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "Not on this chain", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn tlog_proof(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SizeQuery>,
) -> Result<Json<TlogProofAnswer>, ApiError> {
    let id = TxId::from_hex(id.trim())
        .map_err(|error| ApiError::bad_request(ErrorCode::BadId, error.to_string()))?;
    let log = state.block_log.clone();
    let key = state.note_key.clone();
    let proof = read(&state, move |ledger| {
        log.tlog_proof(ledger, &id, query.size, &key).map_err(asked)
    })
    .await?;
    Ok(Json(TlogProofAnswer {
        tlog_proof: proof.to_text(),
    }))
}
