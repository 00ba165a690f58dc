//! Publishing to witnesses (docs/anchoring.md): `GET /v1/publish`, how the pushes fare, and
//! `GET /v1/checkpoint/witnessed`, the latest checkpoint the witnesses cosigned.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

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
