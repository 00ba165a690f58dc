//! The administrative endpoints (docs/api.md, "Administration"): they act with the node's own
//! authority and need the node's admin token (`Authorization: Bearer TOKEN`, the token in
//! `HOME/admin.token`). Everything else is authenticated by transaction signatures alone.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Json, Router, routing::post};
use subtle::ConstantTimeEq;
use weft_api::{RegisterBody, Registered, Reloaded};
use weft_core::model::{Payload, RegisterResource};
use weft_core::{PublicKey, ResourceId, TxId};
use weft_ledger::{Signer, Transaction};

use crate::api::error::{ApiError, ApiJson};
use crate::api::state::AppState;
use crate::api::submit::submit_single;
use crate::config::NodeConfig;
use crate::submission::now_ms;
use weft_api::ErrorCode;

/// Reads a token file of a home (the admin token, the ingest token), creating it (32 random
/// bytes, hex, mode 0600) if absent; refuses one that other users may read
/// ([`weft_ledger::files::read_secret`]).
pub fn secret_token(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    match weft_ledger::files::read_secret(path, "token file") {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().to_string()),
        Ok(_) => anyhow::bail!(
            "{} holds no usable token (at least 32 characters): remove it and a new one \
             is made at the next start",
            path.display()
        ),
        Err(error) if error.is_missing() => {}
        Err(error) => return Err(error.into()),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let token = hex::encode(bytes);
    weft_ledger::files::write_private_atomically(path, format!("{token}\n").as_bytes(), true)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// The admin routes, behind the token check.
pub(crate) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/admin/resources", post(register))
        .route("/v1/admin/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(state, require_token))
}

async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "administrative endpoints need `Authorization: Bearer TOKEN` with the node's admin \
             token (HOME/admin.token)",
        ));
    };
    if !bool::from(given.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "the admin token is not this node's",
        ));
    }
    Ok(next.run(request).await)
}

/// `POST /v1/admin/resources`: registers a resource signed by the node's authority key.
#[utoipa::path(post, path = "/v1/admin/resources", tag = "admin",
    security(("admin_token" = [])),
    request_body(content = RegisterBody, description = "The resource and its public key"),
    responses(
        (status = 200, description = "Registered and committed", body = weft_api::Registered),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody),
        (status = 401, description = "No admin token", body = weft_api::ErrorBody),
        (status = 403, description = "Not this node's admin token", body = weft_api::ErrorBody),
        (status = 409, description = "The home holds no authority key", body = weft_api::ErrorBody),
        (status = 422, description = "Refused by a rule, or a wrong field", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn register(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Json<Registered>, ApiError> {
    let Some(authority) = &state.authority_key else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NoAuthority,
            "this node's home holds no authority key, so it cannot register resources",
        ));
    };
    let key = PublicKey::from_hex(body.key.trim())
        .map_err(|error| ApiError::bad_request(ErrorCode::BadKey, format!("key: {error}")))?;
    let payload = Payload::RegisterResource(RegisterResource {
        resource: body.resource,
        key,
    });
    let tx = Transaction::sign(
        state.chain_id,
        now_ms(),
        Signer::Authority,
        authority,
        payload,
    )
    .map_err(|error| ApiError::bad_request(ErrorCode::BadResource, error.to_string()))?;
    let id = ResourceId(tx.id().0);
    let timeout = std::time::Duration::from_millis(state.config.api.wait_timeout_ms);
    let (_, position) = submit_single(&state, tx, timeout).await?;
    Ok(Json(Registered {
        height: position.height,
        id,
        index: position.index,
        tx_id: TxId(id.0),
    }))
}

/// `POST /v1/admin/reload`: re-reads `config.toml`; applies the settings that can change
/// while running and names those that take a restart.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "What was applied, and what needs a restart", body = weft_api::Reloaded),
        (status = 401, description = "No admin token", body = weft_api::ErrorBody),
        (status = 403, description = "Not this node's admin token", body = weft_api::ErrorBody),
        (status = 409, description = "No configuration file to reload", body = weft_api::ErrorBody),
        (status = 422, description = "The file is invalid; nothing changed", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn reload(State(state): State<Arc<AppState>>) -> Result<Json<Reloaded>, ApiError> {
    let Some(path) = &state.config_path else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NoConfigFile,
            "this node was started without a configuration file to reload",
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|error| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::BadConfig,
            format!("cannot read {}: {error}", path.display()),
        )
    })?;
    let new = NodeConfig::parse(&text).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::BadConfig,
            format!("{}: {error}; nothing was changed", path.display()),
        )
    })?;
    let (applied, restart) = state.live.apply(&state.file_config, &new);
    tracing::info!(?applied, ?restart, "configuration reloaded");
    Ok(Json(Reloaded {
        applied: applied.into_iter().map(str::to_string).collect(),
        restart_needed: restart.into_iter().map(str::to_string).collect(),
    }))
}
