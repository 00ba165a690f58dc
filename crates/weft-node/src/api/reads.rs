//! Reading the chain and its state: blocks, transactions with their proofs, the chain's
//! parameters, resources and their keys, assets and claims.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use weft_core::{Fingerprint, ResourceId, TxId};
use weft_ledger::LedgerError;
use weft_ledger::store::Store;

use crate::query;

use super::error::{ApiError, ApiQuery};
use super::state::{AppState, read};

fn header_json(signed: &weft_ledger::block::SignedHeader) -> Value {
    let header = &signed.header;
    json!({
        "height": header.height,
        "hash": header.hash().to_hex(),
        "previous": header.previous_digest.to_hex(),
        "timestamp": header.timestamp,
        "time_utc": query::format_time(header.timestamp),
        "merkle_root": header.merkle_root.to_hex(),
        "tx_count": header.tx_count,
        "producer": header.producer.to_hex(),
        "version": header.version,
    })
}

#[utoipa::path(get, path = "/v1/blocks/{block}", tag = "chain",
    params(("block" = String, Path, description = "Block height (genesis is 0), or block hash (64 hex digits)")),
    responses(
        (status = 200, description = "The block header and its transaction ids", body = crate::openapi::schemas::Block),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such block (yet)", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn block(
    State(state): State<Arc<AppState>>,
    Path(block): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let block = block.trim().to_string();
    let wanted = if block.len() == 64 {
        Err(weft_core::BlockHash::from_hex(&block).map_err(|error| {
            ApiError::bad_request(
                "bad_block",
                format!("{block:?} is not a block hash: {error}"),
            )
        })?)
    } else {
        Ok(block.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "bad_block",
                format!(
                    "{block:?} is neither a block height (a whole number) nor a block hash \
                     (64 hex digits)"
                ),
            )
        })?)
    };
    read(&state, move |ledger| {
        let store = ledger.store();
        // A height, or the hash of a block to find the height of.
        let height = match wanted {
            Ok(height) => height,
            Err(hash) => store
                .height_of(&hash)?
                .ok_or_else(|| ApiError::not_found(format!("no block has hash {hash}")))?,
        };
        let signed = store
            .signed_header(height)?
            .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?;
        let ids: Vec<String> = store
            .block_transactions(height)?
            .iter()
            .map(|tx| tx.id().to_hex())
            .collect();
        let mut value = header_json(&signed);
        value["transactions"] = json!(ids);
        Ok(Json(value))
    })
    .await
}

#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "transactions",
    params(("id" = String, Path, description = "Transaction id, 64 hex digits")),
    responses(
        (status = 200, description = "The transaction and its inclusion proof", body = crate::openapi::schemas::TransactionAnswer),
        (status = 202, description = "Queued with wait=false, not yet in a block", body = crate::openapi::schemas::Queued),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Not on this ledger", body = crate::openapi::schemas::ErrorBody),
        (status = 422, description = "Queued with wait=false, then refused by a rule when its block was made", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn transaction(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = TxId::from_hex(id.trim())
        .map_err(|error| ApiError::bad_request("bad_id", error.to_string()))?;
    // Asked before the ledger is read: a transaction that commits in between is found there.
    let queued = state.durable.tracker.state(&id);
    let mut found = read(&state, move |ledger| {
        let store = ledger.store();
        let Some(mut value) = query::transaction_json(store, &id)? else {
            return Ok(None);
        };
        value["proof"] = json!(weft_ledger::proof::build(store, &id)?);
        Ok(Some(value))
    })
    .await?;
    // Stored stripped here: a peer that holds it whole sends it with its proof, checked
    // against this node's own header of the block.
    if let Some(value) = &mut found
        && value["stripped"] == json!(true)
        && let Some(fetcher) = &state.fetcher
        && let Some(fetched) = fetcher.fetch(vec![id]).await.into_iter().next()
    {
        value["payload"] = json!(fetched.tx.payload);
        value["proof"] = json!(fetched.proof);
        value["fetched_from"] = json!(fetched.from);
    }
    match (found, queued) {
        (Some(value), _) => Ok(Json(value).into_response()),
        (None, crate::queue::QueuedState::Queued) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"tx_id": id.to_hex(), "state": "queued"})),
        )
            .into_response()),
        (None, crate::queue::QueuedState::Refused(error)) => Err(ApiError::from(
            LedgerError::Rule(error),
        )
        .reworded(|message| {
            format!(
                "transaction {id} was queued and then refused when its block was made: \
                         {message}"
            )
        })),
        (None, crate::queue::QueuedState::Unknown) => Err(ApiError::not_found(format!(
            "transaction {id} is not on this ledger"
        ))),
    }
}

#[utoipa::path(get, path = "/v1/chain", tag = "chain",
    responses((status = 200, description = "Genesis parameters and head", body = crate::openapi::schemas::ChainInfo)))]
pub(crate) async fn chain(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    read(&state, |ledger| Ok(Json(query::chain_json(ledger)?))).await
}

fn parse_resource(text: &str) -> Result<ResourceId, ApiError> {
    ResourceId::from_hex(text.trim())
        .map_err(|error| ApiError::bad_request("bad_id", error.to_string()))
}

#[utoipa::path(get, path = "/v1/resources/{id}", tag = "state",
    params(("id" = String, Path, description = "Resource id, 64 hex digits")),
    responses(
        (status = 200, description = "The registered resource", body = crate::openapi::schemas::ResourceAnswer),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Not registered", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn resource(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_resource(&id)?;
    read(&state, move |ledger| {
        let snapshot = ledger.store().snapshot()?;
        let entry = weft_ledger::state::StateView::resource(&snapshot, &id)?
            .ok_or_else(|| ApiError::not_found(format!("no resource {id} is registered")))?;
        let mut value = query::resource_json(&snapshot, &id);
        value["registered_at"] =
            json!({"height": entry.registered_at.height, "index": entry.registered_at.index});
        value["organization"] = json!(entry.organization().map(|org| org.to_hex()));
        Ok(Json(value))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrefixQuery {
    prefix: String,
}

#[utoipa::path(get, path = "/v1/transactions", tag = "transactions",
    params(("prefix" = String, Query, description = "6 to 64 hex digits")),
    responses(
        (status = 200, description = "Ids of the transactions on the chain with the prefix (at most 1000)", body = crate::openapi::schemas::TxIds),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn transactions_by_prefix(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<PrefixQuery>,
) -> Result<Json<Value>, ApiError> {
    ids_with_prefix(&state, &query, "transaction", |store, prefix| {
        Ok(query::txs_with_prefix(store, prefix)?
            .iter()
            .map(|id| id.to_hex())
            .collect())
    })
    .await
}

/// `{"ids": [...]}`: the ids of a `kind` that start with the query's prefix, found by `lookup`.
async fn ids_with_prefix(
    state: &Arc<AppState>,
    query: &PrefixQuery,
    kind: &'static str,
    lookup: impl FnOnce(&weft_ledger::store::RedbStore, &str) -> Result<Vec<String>, ApiError>
    + Send
    + 'static,
) -> Result<Json<Value>, ApiError> {
    let prefix = query.prefix.trim().to_ascii_lowercase();
    if !query::is_id_prefix(&prefix) {
        return Err(ApiError::bad_request(
            "bad_prefix",
            format!("{prefix:?} is not a {kind} id prefix (6 to 64 hex digits)"),
        ));
    }
    read(state, move |ledger| {
        Ok(Json(json!({ "ids": lookup(ledger.store(), &prefix)? })))
    })
    .await
}

#[utoipa::path(get, path = "/v1/resources", tag = "state",
    params(("prefix" = String, Query, description = "6 to 64 hex digits")),
    responses(
        (status = 200, description = "Ids of registered resources with the prefix (at most 1000)", body = crate::openapi::schemas::ResourceIds),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn resources_by_prefix(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<PrefixQuery>,
) -> Result<Json<Value>, ApiError> {
    ids_with_prefix(&state, &query, "resource", |store, prefix| {
        Ok(query::resources_with_prefix(store, prefix)?
            .iter()
            .map(|id| id.to_hex())
            .collect())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssetQuery {
    recipient: Option<String>,
}

#[utoipa::path(get, path = "/v1/assets/{fingerprint}", tag = "state",
    params(
        ("fingerprint" = String, Path, description = "`algo:hex`, or bare SHA-256 hex"),
        ("recipient" = Option<String>, Query, description = "Resource id: the verdict is for this recipient"),
    ),
    responses(
        (status = 200, description = "Owner, every send, and the verdict", body = crate::openapi::schemas::AssetReport),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn asset(
    State(state): State<Arc<AppState>>,
    Path(fingerprint): Path<String>,
    ApiQuery(query): ApiQuery<AssetQuery>,
) -> Result<Json<Value>, ApiError> {
    let fingerprint = parse_fingerprint(&fingerprint)?;
    let recipient = query.recipient.as_deref().map(parse_resource).transpose()?;
    let report = read(&state, move |ledger| {
        Ok(query::asset_report(
            ledger.store(),
            &query::Whole::new(),
            &fingerprint,
            recipient,
        )?)
    })
    .await?;
    // Transactions the report needs that this node stores stripped: fetched whole from peers,
    // and the report made again with them.
    let stripped = query::stripped_ids(&report);
    let Some(fetcher) = state.fetcher.as_ref().filter(|_| !stripped.is_empty()) else {
        return Ok(Json(report));
    };
    let whole: query::Whole = fetcher
        .fetch(stripped)
        .await
        .into_iter()
        .map(|fetched| (fetched.tx.id(), (fetched.tx, fetched.from)))
        .collect();
    if whole.is_empty() {
        return Ok(Json(report));
    }
    read(&state, move |ledger| {
        Ok(Json(query::asset_report(
            ledger.store(),
            &whole,
            &fingerprint,
            recipient,
        )?))
    })
    .await
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, ApiError> {
    text.parse().map_err(|error: weft_core::CoreError| {
        ApiError::bad_request("bad_fingerprint", error.to_string())
    })
}

#[utoipa::path(get, path = "/v1/claims/{fingerprint}", tag = "state",
    params(("fingerprint" = String, Path, description = "`algo:hex`, or bare SHA-256 hex")),
    responses(
        (status = 200, description = "Who claimed the asset, when", body = crate::openapi::schemas::ClaimAnswer),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Nobody claimed it", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn claim(
    State(state): State<Arc<AppState>>,
    Path(fingerprint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let fingerprint = parse_fingerprint(&fingerprint)?;
    read(&state, move |ledger| {
        query::claim_record(ledger.store(), &fingerprint)?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("nobody claimed {fingerprint}")))
    })
    .await
}

#[utoipa::path(get, path = "/v1/resources/{id}/keys/{key}", tag = "state",
    params(("id" = String, Path, description = "Resource id"), ("key" = String, Path, description = "Public key, hex")),
    responses(
        (status = 200, description = "Whether the key is, was, or never was the resource's", body = crate::openapi::schemas::KeyStatus),
        (status = 400, description = "Malformed request", body = crate::openapi::schemas::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::schemas::ErrorBody),
    ))]
pub(crate) async fn resource_key(
    State(state): State<Arc<AppState>>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_resource(&id)?;
    let key = weft_core::PublicKey::from_hex(&key)
        .map_err(|error| ApiError::bad_request("bad_key", error.to_string()))?;
    read(&state, move |ledger| {
        Ok(Json(query::key_status(ledger.store(), &id, &key)?))
    })
    .await
}
