//! The witness's endpoints (docs/anchoring.md): `POST /add-checkpoint` as C2SP tlog-witness
//! says, and `GET /v1/witness`, what it witnesses and the latest checkpoint it cosigned of each.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use weft_ledger::witness::{Witness, Witnessed};

use super::error::ApiError;
use super::state::AppState;
use crate::config::WitnessSection;

/// Opens the witness of a home: its key (`keys/witness.key`, made owner-only at first start),
/// the trust roots of the chains it witnesses, and its state (`witness.redb`).
pub(crate) fn open(home: &Path, config: &WitnessSection) -> Result<Witness> {
    let key_path = home.join("keys").join("witness.key");
    let key = if key_path.exists() {
        let text = weft_ledger::files::read_secret(&key_path, "witness key")?;
        weft_core::SigningKey::from_text(&text)
            .with_context(|| format!("{} is not a key file", key_path.display()))?
    } else {
        let key = weft_core::SigningKey::generate()?;
        weft_ledger::files::create_private_dir_all(&home.join("keys"))
            .with_context(|| format!("cannot create {}", home.join("keys").display()))?;
        weft_ledger::files::write_private_atomically(&key_path, key.to_text().as_bytes(), true)
            .with_context(|| format!("cannot write {}", key_path.display()))?;
        key
    };
    let origins = config
        .origins
        .iter()
        .map(|file| {
            let path = home.join(file);
            let size = std::fs::metadata(&path)
                .with_context(|| format!("witness.origins: cannot read {}", path.display()))?
                .len();
            if size > weft_ledger::trust::MAX_TRUST_BYTES as u64 {
                anyhow::bail!(
                    "witness.origins: {} is {size} bytes, larger than a trust root",
                    path.display()
                );
            }
            let bytes = std::fs::read(&path)
                .with_context(|| format!("witness.origins: cannot read {}", path.display()))?;
            let root = weft_ledger::trust::TrustRoot::parse(&bytes)
                .with_context(|| format!("witness.origins: {}", path.display()))?;
            Ok(Witnessed::from_root(root))
        })
        .collect::<Result<Vec<_>>>()?;
    let witness = Witness::open(&home.join("witness.redb"), &config.name, key, origins)?;
    tracing::info!(
        name = witness.name(),
        key = %witness.public_key(),
        chains = config.origins.len(),
        "witnessing"
    );
    Ok(witness)
}

/// `POST /add-checkpoint` (C2SP tlog-witness).
#[utoipa::path(post, path = "/add-checkpoint", tag = "witness",
    request_body(content = String, content_type = "text/plain", description = "`old SIZE`, the consistency proof lines, an empty line, the signed checkpoint"),
    responses(
        (status = 200, description = "A cosignature/v1 line", body = String, content_type = "text/plain"),
        (status = 400, description = "Malformed request", body = String, content_type = "text/plain"),
        (status = 403, description = "No quorum of the chain's validators signed it", body = String, content_type = "text/plain"),
        (status = 404, description = "A chain this node does not witness, or no witness here", body = String, content_type = "text/plain"),
        (status = 409, description = "The old size is not the size cosigned (body: that size), or the same size with another root", body = String, content_type = "text/x.tlog.size"),
        (status = 422, description = "The consistency proof does not hold", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn add_checkpoint(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(witness) = state.witness.as_ref() else {
        // As the protocol answers an unknown origin: plain text.
        return Ok((
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "this node witnesses no chain ([witness] in config.toml)\n",
        )
            .into_response());
    };
    // The check and the write of the new state are one durable write transaction (shared with
    // the requests that arrive meanwhile), committed before the answer.
    let (reply, answer) = tokio::sync::oneshot::channel();
    let failed = || {
        ApiError::from(weft_ledger::LedgerError::Storage(
            "the witness has stopped".into(),
        ))
    };
    let queue = witness.queue.clone();
    tokio::task::spawn_blocking(move || queue.send((body, reply)))
        .await
        .map_err(|_| failed())?
        .map_err(|_| failed())?;
    let answer = answer.await.map_err(|_| failed())?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = answer.content_type.unwrap_or("text/plain; charset=utf-8");
    Ok((status, [(header::CONTENT_TYPE, content_type)], answer.body).into_response())
}

/// `GET /v1/witness`: the witness's name and verifier key, and per chain the latest checkpoint
/// it cosigned.
#[utoipa::path(get, path = "/v1/witness", tag = "witness",
    responses(
        (status = 200, description = "Name, key, verifier key, and per chain its origin and the size and root last cosigned", body = Object),
        (status = 404, description = "This node witnesses no chain", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let Some(witness) = state
        .witness
        .as_ref()
        .map(|service| service.witness.clone())
    else {
        return Err(ApiError::not_found(
            "this node witnesses no chain ([witness] in config.toml)",
        ));
    };
    let origins: Vec<serde_json::Value> = witness
        .origins()
        .into_iter()
        .map(|origin| {
            let latest = witness.latest(&origin)?;
            Ok(serde_json::json!({
                "origin": origin,
                "size": latest.map(|(size, _)| size),
                "root": latest.map(|(_, root)| root.to_hex()),
            }))
        })
        .collect::<Result<_, weft_ledger::LedgerError>>()?;
    Ok(axum::Json(serde_json::json!({
        "name": witness.name(),
        "key": witness.public_key().to_hex(),
        "verifier_key": weft_ledger::witness::verifier_key(witness.name(), &witness.public_key()),
        "origins": origins,
    }))
    .into_response())
}
