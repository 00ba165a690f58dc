//! Between companies (docs/anchoring.md): `GET /v1/publish`, how the pushes of this chain's
//! checkpoints to its witnesses fare; `GET /v1/checkpoint/witnessed`, the latest checkpoint they
//! cosigned; `GET /v1/anchors`, the other chains anchored on this one.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::{AppState, read};

fn not_publishing() -> ApiError {
    ApiError::not_found("this node publishes to no witness ([publish] in config.toml)")
}

#[utoipa::path(get, path = "/v1/publish", tag = "witness",
    responses(
        (status = 200, description = "The sizes pushed and witnessed, the lag, and each witness's last cosignature and failures", body = weft_api::PublishStatus),
        (status = 404, description = "This node publishes to no witness", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<weft_api::PublishStatus>, ApiError> {
    let published = state.published.clone().ok_or_else(not_publishing)?;
    let head_size = *state.head.borrow() + 1;
    Ok(Json(published.status(head_size)))
}

#[utoipa::path(get, path = "/v1/checkpoint/witnessed", tag = "witness",
    responses(
        (status = 200, description = "The latest checkpoint the policy's witnesses cosigned: a C2SP signed note with the validators' signatures and the witnesses' cosignature/v1 lines", body = String, content_type = "text/plain"),
        (status = 404, description = "This node publishes to no witness, or none cosigned yet", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn witnessed(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let published = state.published.clone().ok_or_else(not_publishing)?;
    let note = published.witnessed().ok_or_else(|| {
        ApiError::not_found("no checkpoint of this chain has been witnessed yet (GET /v1/publish)")
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[utoipa::path(get, path = "/v1/anchors", tag = "witness",
    responses(
        (status = 200, description = "The chains registered for anchoring, what is anchored of each and the evidence against it; with [anchor], how the fetching fares", body = weft_api::AnchorsAnswer),
        (status = 409, description = "This node keeps no rule state (it follows on proofs)", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn anchors(
    State(state): State<Arc<AppState>>,
) -> Result<Json<weft_api::AnchorsAnswer>, ApiError> {
    use weft_ledger::state::StateView as _;
    use weft_ledger::store::Store as _;
    let (anchors, notes) = read(&state, |ledger| {
        let anchors = ledger.store().snapshot()?.anchors()?;
        let notes = anchors
            .chains
            .iter()
            .map(|chain| match &chain.latest {
                Some(latest) => crate::anchor::anchored_note(ledger.store(), &latest.tx_id),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>, weft_ledger::LedgerError>>()?;
        Ok((anchors, notes))
    })
    .await?;
    let chains = anchors
        .chains
        .iter()
        .zip(notes)
        .map(|(chain, note)| {
            let root = weft_ledger::rules::anchors::root_of(chain)?;
            Ok(weft_api::AnchoredChainAnswer {
                origin: chain.origin.clone(),
                chain: root.chain.clone(),
                chain_id: root.chain_id.to_hex(),
                genesis_hash: root.genesis_hash.to_hex(),
                registered_at: chain.registered_at.height,
                size: chain.latest.map(|latest| latest.size),
                root: chain.latest.map(|latest| latest.root.to_hex()),
                anchor_tx: chain.latest.map(|latest| latest.tx_id.to_hex()),
                evidence: chain.evidence.iter().map(|id| id.to_hex()).collect(),
                note,
            })
        })
        .collect::<Result<Vec<_>, weft_ledger::LedgerError>>()?;
    let anchoring = state.anchoring.as_ref().map(|shown| {
        shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    let timestamping = state.timestamping.as_ref().map(|shown| {
        shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    Ok(Json(weft_api::AnchorsAnswer {
        chains,
        anchoring,
        timestamping,
    }))
}
