//! Reading the chain and its state: blocks, transactions with their proofs, the chain's
//! parameters, resources and their keys, assets and claims.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use weft_api::ErrorCode;
use weft_api::{AssetReport, Block, ChainInfo, ClaimAnswer, KeyStatus, ResourceAnswer, TxIds};
use weft_api::{Queued, QueuedState, ResourceIds};
use weft_core::{Fingerprint, ResourceId, TxId};
use weft_ledger::LedgerError;
use weft_ledger::store::Store;

use crate::query;

use super::error::{ApiError, ApiQuery};
use super::state::{AppState, read};

/// A block's header and the ids of its transactions.
fn block_answer(signed: &weft_ledger::block::SignedHeader, transactions: Vec<TxId>) -> Block {
    let header = &signed.header;
    Block {
        hash: header.hash(),
        height: header.height,
        merkle_root: header.merkle_root,
        previous: header.previous_digest,
        producer: header.producer,
        time_utc: query::format_time(header.timestamp),
        timestamp: header.timestamp,
        transactions,
        tx_count: u64::from(header.tx_count),
        version: u64::from(header.version),
    }
}

#[utoipa::path(get, path = "/v1/blocks/{block}", tag = "chain",
    params(("block" = String, Path, description = "Block height (genesis is 0), or block hash (64 hex digits)")),
    responses(
        (status = 200, description = "The block header and its transaction ids", body = weft_api::Block),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "No such block (yet)", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn block(
    State(state): State<Arc<AppState>>,
    Path(block): Path<String>,
) -> Result<Json<Block>, ApiError> {
    let block = block.trim().to_string();
    let wanted = if block.len() == 64 {
        Err(weft_core::BlockHash::from_hex(&block).map_err(|error| {
            ApiError::bad_request(
                ErrorCode::BadBlock,
                format!("{block:?} is not a block hash: {error}"),
            )
        })?)
    } else {
        Ok(block.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                ErrorCode::BadBlock,
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
        let ids = store
            .block_transactions(height)?
            .iter()
            .map(|tx| tx.id())
            .collect();
        Ok(Json(block_answer(&signed, ids)))
    })
    .await
}

#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "transactions",
    params(("id" = String, Path, description = "Transaction id, 64 hex digits")),
    responses(
        (status = 200, description = "The transaction and its inclusion proof", body = weft_api::TransactionAnswer),
        (status = 202, description = "Queued with wait=false, not yet in a block", body = weft_api::Queued),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "Not on this ledger", body = weft_api::ErrorBody),
        (status = 422, description = "Queued with wait=false, then refused by a rule when its block was made", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn transaction(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = TxId::from_hex(id.trim())
        .map_err(|error| ApiError::bad_request(ErrorCode::BadId, error.to_string()))?;
    // Asked before the ledger is read: a transaction that commits in between is found there.
    let queued = state.durable.tracker.state(&id);
    let mut found = read(&state, move |ledger| {
        Ok(query::transaction(ledger.store(), &id)?)
    })
    .await?;
    // Stored stripped here: a peer that holds it whole sends it with its proof, checked
    // against this node's own header of the block.
    if let Some(answer) = &mut found
        && answer.stripped
        && let Some(fetcher) = &state.fetcher
        && let Some(fetched) = fetcher.fetch(vec![id]).await.into_iter().next()
    {
        answer.payload = fetched.tx.payload;
        answer.proof = query::proof_json(&fetched.proof)?;
        answer.fetched_from = Some(fetched.from);
    }
    match (found, queued) {
        (Some(answer), _) => Ok(Json(answer).into_response()),
        (None, crate::queue::QueuedState::Queued) => Ok((
            StatusCode::ACCEPTED,
            Json(Queued {
                state: QueuedState::Queued,
                tx_id: id,
            }),
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
    responses((status = 200, description = "Genesis parameters and head", body = weft_api::ChainInfo)))]
pub(crate) async fn chain(State(state): State<Arc<AppState>>) -> Result<Json<ChainInfo>, ApiError> {
    read(&state, |ledger| Ok(Json(query::chain_info(ledger)?))).await
}

fn parse_resource(text: &str) -> Result<ResourceId, ApiError> {
    ResourceId::from_hex(text.trim())
        .map_err(|error| ApiError::bad_request(ErrorCode::BadId, error.to_string()))
}

#[utoipa::path(get, path = "/v1/resources/{id}", tag = "state",
    params(("id" = String, Path, description = "Resource id, 64 hex digits")),
    responses(
        (status = 200, description = "The registered resource", body = weft_api::ResourceAnswer),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "Not registered", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn resource(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ResourceAnswer>, ApiError> {
    let id = parse_resource(&id)?;
    read(&state, move |ledger| {
        let snapshot = ledger.store().snapshot()?;
        query::resource_answer(&snapshot, &id)?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("no resource {id} is registered")))
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
        (status = 200, description = "Ids of the transactions on the chain with the prefix (at most 1000)", body = weft_api::TxIds),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn transactions_by_prefix(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<PrefixQuery>,
) -> Result<Json<TxIds>, ApiError> {
    ids_with_prefix(&state, &query, "transaction", |store, prefix| {
        Ok(TxIds {
            ids: query::txs_with_prefix(store, prefix)?,
        })
    })
    .await
}

/// The ids of a `kind` that start with the query's prefix, found by `lookup`.
async fn ids_with_prefix<T: Send + 'static>(
    state: &Arc<AppState>,
    query: &PrefixQuery,
    kind: &'static str,
    lookup: impl FnOnce(&weft_ledger::store::RedbStore, &str) -> Result<T, ApiError> + Send + 'static,
) -> Result<Json<T>, ApiError> {
    let prefix = query.prefix.trim().to_ascii_lowercase();
    if !query::is_id_prefix(&prefix) {
        return Err(ApiError::bad_request(
            ErrorCode::BadPrefix,
            format!("{prefix:?} is not a {kind} id prefix (6 to 64 hex digits)"),
        ));
    }
    read(state, move |ledger| {
        Ok(Json(lookup(ledger.store(), &prefix)?))
    })
    .await
}

#[utoipa::path(get, path = "/v1/resources", tag = "state",
    params(("prefix" = String, Query, description = "6 to 64 hex digits")),
    responses(
        (status = 200, description = "Ids of registered resources with the prefix (at most 1000)", body = weft_api::ResourceIds),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn resources_by_prefix(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<PrefixQuery>,
) -> Result<Json<ResourceIds>, ApiError> {
    ids_with_prefix(&state, &query, "resource", |store, prefix| {
        Ok(ResourceIds {
            ids: query::resources_with_prefix(store, prefix)?,
        })
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
        (status = 200, description = "Owner, every send, and the verdict", body = weft_api::AssetReport),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 502, description = "A node that follows on proofs: no peer gave a history that checks out", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn asset(
    State(state): State<Arc<AppState>>,
    Path(fingerprint): Path<String>,
    ApiQuery(query): ApiQuery<AssetQuery>,
) -> Result<Json<AssetReport>, ApiError> {
    let fingerprint = parse_fingerprint(&fingerprint)?;
    let recipient = query.recipient.as_deref().map(parse_resource).transpose()?;
    // A node on proofs answers from its peers (one that follows by the rules keeps the rule
    // state: it refuses to start on a store that does not).
    if state.config.node.follow == crate::config::Follow::Proofs {
        return asset_from_peers(&state, fingerprint, recipient)
            .await
            .map(Json);
    }
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
    let stripped = report.stripped.clone().unwrap_or_default();
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

/// The asset report of a node that follows on proofs: the history from a peer, checked against
/// this node's own headers (docs/network.md, "Thin nodes on proofs").
async fn asset_from_peers(
    state: &Arc<AppState>,
    fingerprint: Fingerprint,
    recipient: Option<weft_core::ResourceId>,
) -> Result<AssetReport, ApiError> {
    let Some(fetcher) = state.fetcher.as_ref() else {
        return Err(weft_ledger::LedgerError::NotKept(
            "this node keeps no rule state and has no network to ask".into(),
        )
        .into());
    };
    let (checked, from) = *fetcher
        .history(fingerprint, recipient)
        .await
        .map_err(|why| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                ErrorCode::NoPeerAnswer,
                format!(
                    "this node follows its chain on proofs and asked its peers for the history \
                     of {fingerprint}: none gave one that checks out against its headers ({why})"
                ),
            )
        })?;
    read(state, move |ledger| {
        Ok(query::checked_asset_report(
            ledger.store(),
            &checked,
            &from,
            recipient,
        )?)
    })
    .await
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, ApiError> {
    text.parse().map_err(|error: weft_core::CoreError| {
        ApiError::bad_request(ErrorCode::BadFingerprint, error.to_string())
    })
}

#[utoipa::path(get, path = "/v1/claims/{fingerprint}", tag = "state",
    params(("fingerprint" = String, Path, description = "`algo:hex`, or bare SHA-256 hex")),
    responses(
        (status = 200, description = "Who claimed the asset, when", body = weft_api::ClaimAnswer),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 404, description = "Nobody claimed it", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn claim(
    State(state): State<Arc<AppState>>,
    Path(fingerprint): Path<String>,
) -> Result<Json<ClaimAnswer>, ApiError> {
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
        (status = 200, description = "Whether the key is, was, or never was the resource's", body = weft_api::KeyStatus),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn resource_key(
    State(state): State<Arc<AppState>>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<KeyStatus>, ApiError> {
    let id = parse_resource(&id)?;
    let key = weft_core::PublicKey::from_hex(&key)
        .map_err(|error| ApiError::bad_request(ErrorCode::BadKey, error.to_string()))?;
    read(&state, move |ledger| {
        Ok(Json(query::key_status(ledger.store(), &id, &key)?))
    })
    .await
}
