//! Submitting transactions: `POST /v1/transactions` and `/v1/transactions/batch`, waiting for
//! the block (or queued durably with `wait=false`), and the hand-over to the block producer.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use weft_api::{
    BatchAnswer, BatchQueued, BatchResult, Committed, ErrorDetail, Queued, QueuedState,
    SubmitBatch, SubmitOne,
};
use weft_core::TxId;
use weft_ledger::{LedgerError, Transaction};

use crate::submission::{Submission, TxResult};
use weft_api::ErrorCode;

use super::error::{ApiError, ApiJson, ApiQuery};
use super::state::AppState;

pub(crate) fn decode_transaction(
    index: Option<usize>,
    text: &str,
) -> Result<Transaction, ApiError> {
    let at = index.map_or(String::new(), |index| format!("transactions[{index}]: "));
    let bytes = hex::decode(text.trim()).map_err(|error| {
        ApiError::bad_request(
            ErrorCode::BadTransaction,
            format!("{at}not hex-encoded bytes: {error}"),
        )
    })?;
    weft_core::encoding::decode::<Transaction>(&bytes).map_err(|error| {
        ApiError::bad_request(
            ErrorCode::BadTransaction,
            format!("{at}not a canonical weft transaction: {error}"),
        )
    })
}

/// Hands a submission to the block producer without waiting: `503 busy` when `api.queue`
/// submissions already wait for it, `503 shutting_down` once it is gone.
fn hand_over(queue: &SyncSender<Submission>, submission: Submission) -> Result<(), ApiError> {
    queue.try_send(submission).map_err(|error| match error {
        TrySendError::Full(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "the node's submission queue is full (api.queue); retry shortly",
        ),
        TrySendError::Disconnected(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "the node is shutting down",
        ),
    })
}

/// Hands transactions to the producer and waits for their block's commit, at most `timeout`:
/// then 504, and the transactions stay queued (they may still be committed).
async fn submit(
    state: &Arc<AppState>,
    transactions: Vec<Transaction>,
    timeout: Duration,
) -> Result<Vec<TxResult>, ApiError> {
    let count = transactions.len();
    let (reply, answer) = tokio::sync::oneshot::channel();
    hand_over(
        &state.queue,
        Submission {
            transactions,
            received: Instant::now(),
            reply,
        },
    )?;
    state
        .metrics
        .pending
        .inc_by(i64::try_from(count).unwrap_or(i64::MAX));
    match tokio::time::timeout(timeout, answer).await {
        Ok(answer) => answer.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                "the node stopped before the block was committed; submit again",
            )
        }),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::NotFinal,
            format!(
                "not committed within {} ms (in a network, too few validators may be up to \
                 finalize blocks); {} and may still be committed: look up each with \
                 GET /v1/transactions/ID",
                timeout.as_millis(),
                if count == 1 {
                    "the transaction stays queued".to_string()
                } else {
                    format!("the {count} transactions stay queued")
                }
            ),
        )),
    }
}

/// One transaction's result in a batch's answer.
fn batch_result(result: &TxResult) -> BatchResult {
    let refused = |id: &TxId, error| BatchResult {
        error: Some(error),
        height: None,
        index: None,
        tx_id: *id,
    };
    match result {
        TxResult::Committed { id, position } => BatchResult {
            error: None,
            height: Some(position.height),
            index: Some(position.index),
            tx_id: *id,
        },
        TxResult::Rejected { id, error } => refused(
            id,
            ErrorDetail {
                code: ErrorCode::Rule,
                message: error.to_string(),
                rule: Some(error.rule().to_string()),
            },
        ),
        TxResult::Failed { id, message } => refused(
            id,
            ErrorDetail {
                code: ErrorCode::Internal,
                message: message.clone(),
                rule: None,
            },
        ),
    }
}

#[utoipa::path(post, path = "/v1/transactions", tag = "transactions",
    params(("wait" = Option<bool>, Query, description = "false: answer 202 once durably queued, before the block (default true: once committed)"),
        ("timeout_ms" = Option<u64>, Query, description = "when waiting: answer 504 after this many ms (1 to api.wait_timeout_ms, the default); the transaction stays queued")),
    request_body(content = SubmitOne, description = "A signed transaction"),
    responses(
        (status = 200, description = "Durably committed", body = weft_api::Committed),
        (status = 202, description = "wait=false: durably queued", body = weft_api::Queued),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 413, description = "Body too large", body = weft_api::ErrorBody),
        (status = 415, description = "Not JSON", body = weft_api::ErrorBody),
        (status = 422, description = "Wrong field type, unknown field, or refused by a rule", body = weft_api::ErrorBody),
        (status = 503, description = "Queue full or shutting down; submit again", body = weft_api::ErrorBody),
        (status = 504, description = "Not committed within the wait (api.wait_timeout_ms or timeout_ms); still queued", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn submit_one(
    State(state): State<Arc<AppState>>,
    ApiQuery(wait): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<SubmitOne>,
) -> Result<Response, ApiError> {
    // The query first: a bad `timeout_ms` is named whatever the body holds.
    let timeout = wait.timeout(&state)?;
    let tx = decode_transaction(None, &body.transaction)?;
    if !wait.wait() {
        let ids = queue_without_waiting(&state, vec![tx], false).await?;
        let Some(&tx_id) = ids.first() else {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the queue took the transaction and named no id",
            ));
        };
        return Ok((
            StatusCode::ACCEPTED,
            Json(Queued {
                state: QueuedState::Queued,
                tx_id,
            }),
        )
            .into_response());
    }
    let (tx_id, position) = submit_single(&state, tx, timeout).await?;
    Ok(Json(Committed {
        height: position.height,
        index: position.index,
        tx_id,
    })
    .into_response())
}

/// `?wait=false`: answer once the transactions are durably queued, before their block;
/// `?timeout_ms=N`: when waiting, wait at most N ms (at most `api.wait_timeout_ms`, the default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitQuery {
    wait: Option<bool>,
    timeout_ms: Option<u64>,
}

impl WaitQuery {
    fn wait(&self) -> bool {
        self.wait.unwrap_or(true)
    }

    /// How long to wait for the block, or why the request's `timeout_ms` is refused.
    fn timeout(&self, state: &AppState) -> Result<Duration, ApiError> {
        let most = state.config.api.wait_timeout_ms;
        match self.timeout_ms {
            None => Ok(Duration::from_millis(most)),
            Some(_) if !self.wait() => Err(ApiError::bad_request(
                ErrorCode::TimeoutMs,
                "timeout_ms applies only to a submission that waits for its block (not with \
                 wait=false)",
            )),
            Some(ms) if (1..=most).contains(&ms) => Ok(Duration::from_millis(ms)),
            Some(ms) => Err(ApiError::bad_request(
                ErrorCode::TimeoutMs,
                format!("timeout_ms must be 1 to {most} (api.wait_timeout_ms), got {ms}"),
            )),
        }
    }
}

/// `wait=false`: the stateless checks (format, chain, signature), then the durable queue.
/// Nothing is queued if any transaction fails them; the error names its index in a batch.
async fn queue_without_waiting(
    state: &Arc<AppState>,
    transactions: Vec<Transaction>,
    batch: bool,
) -> Result<Vec<TxId>, ApiError> {
    let chain_id = state.chain_id;
    let (admitted, failure) = tokio::task::spawn_blocking(move || {
        let other_chain = transactions
            .iter()
            .position(|tx| tx.header.chain_id != chain_id)
            .map(|index| {
                let message = format!(
                    "transaction is for chain {}, this node serves chain {chain_id}",
                    transactions[index].header.chain_id
                );
                (index, weft_ledger::RuleError::Chain { message })
            });
        let admitted = weft_ledger::Admitted::check(transactions);
        let failure = admitted
            .first_failure()
            .map(|(index, error)| (index, error.clone()));
        // Of the two, the failure of the lower index is named.
        let failure = match (failure, other_chain) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        (admitted, failure)
    })
    .await
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("the check failed: {error}"),
        )
    })?;
    if let Some((index, error)) = failure {
        let refused = ApiError::from(LedgerError::Rule(error));
        if batch {
            return Err(refused.reworded(|message| {
                format!("transactions[{index}]: {message}; nothing was queued")
            }));
        }
        return Err(refused);
    }
    let ids = admitted.ids().to_vec();
    let count = ids.len();
    match state.durable.queue(admitted.into_transactions()).await {
        Ok(()) => {
            tracing::debug!(count, "queued without waiting");
            Ok(ids)
        }
        Err(crate::queue::NotQueued::Busy) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "the node's queue journal is behind; retry shortly",
        )),
        Err(crate::queue::NotQueued::Stopping) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "the node is shutting down",
        )),
        Err(crate::queue::NotQueued::Failed(message)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotQueued,
            message,
        )),
    }
}

/// Submits one transaction: its place on the chain, or the error to answer with.
pub(crate) async fn submit_single(
    state: &Arc<AppState>,
    tx: Transaction,
    timeout: Duration,
) -> Result<(TxId, weft_ledger::state::Position), ApiError> {
    match submit(state, vec![tx], timeout).await?.into_iter().next() {
        Some(TxResult::Committed { id, position }) => Ok((id, position)),
        Some(TxResult::Rejected { error, .. }) => Err(LedgerError::Rule(error).into()),
        Some(TxResult::Failed { message, .. }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotCommitted,
            message,
        )),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotCommitted,
            "the node returned no result; submit again",
        )),
    }
}

#[utoipa::path(post, path = "/v1/transactions/batch", tag = "transactions",
    params(("wait" = Option<bool>, Query, description = "false: answer 202 once all are durably queued, before their block; a transaction failing the format, chain or signature check then refuses the whole batch (422, its index named)"),
        ("timeout_ms" = Option<u64>, Query, description = "when waiting: answer 504 after this many ms (1 to api.wait_timeout_ms, the default); the transactions stay queued")),
    request_body(content = SubmitBatch, description = "1 to api.max_batch signed transactions"),
    responses(
        (status = 200, description = "Each transaction's result, in order", body = weft_api::BatchAnswer),
        (status = 202, description = "wait=false: all durably queued", body = weft_api::BatchQueued),
        (status = 400, description = "Malformed request", body = weft_api::ErrorBody), (status = 429, description = "Over the request rate", body = weft_api::ErrorBody),
        (status = 413, description = "Body too large", body = weft_api::ErrorBody),
        (status = 422, description = "Wrong field type or unknown field; with wait=false, a transaction refused by a stateless check", body = weft_api::ErrorBody),
        (status = 503, description = "Queue full or shutting down; submit again", body = weft_api::ErrorBody),
        (status = 504, description = "Not committed within the wait (api.wait_timeout_ms or timeout_ms); still queued", body = weft_api::ErrorBody),
    ))]
pub(crate) async fn submit_batch(
    State(state): State<Arc<AppState>>,
    ApiQuery(wait): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<SubmitBatch>,
) -> Result<Response, ApiError> {
    let timeout = wait.timeout(&state)?;
    let max = state
        .live
        .max_batch
        .load(std::sync::atomic::Ordering::Relaxed);
    if body.transactions.is_empty() || body.transactions.len() > max {
        return Err(ApiError::bad_request(
            ErrorCode::BatchSize,
            format!(
                "a batch holds 1 to {max} transactions (api.max_batch), got {}",
                body.transactions.len()
            ),
        ));
    }
    let transactions = body
        .transactions
        .iter()
        .enumerate()
        .map(|(index, text)| decode_transaction(Some(index), text))
        .collect::<Result<Vec<_>, _>>()?;
    if !wait.wait() {
        let ids = queue_without_waiting(&state, transactions, true).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(BatchQueued {
                queued: ids.len() as u64,
                tx_ids: ids,
            }),
        )
            .into_response());
    }
    let results = submit(&state, transactions, timeout).await?;
    let committed = results
        .iter()
        .filter(|result| matches!(result, TxResult::Committed { .. }))
        .count();
    Ok(Json(BatchAnswer {
        committed: committed as u64,
        rejected: (results.len() - committed) as u64,
        results: results.iter().map(batch_result).collect(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission() -> Submission {
        Submission {
            transactions: Vec::new(),
            received: Instant::now(),
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    /// With `api.queue` submissions waiting for the producer, one more is refused with 503
    /// `busy` at once; once the producer takes one, there is room again; once it is gone, 503
    /// `shutting_down`.
    #[test]
    fn a_full_producer_queue_is_answered_503_busy() {
        let (queue, producer) = std::sync::mpsc::sync_channel(2);
        hand_over(&queue, submission()).expect("room");
        hand_over(&queue, submission()).expect("room");
        let refused = hand_over(&queue, submission()).expect_err("full");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code(), "busy");
        producer.recv().expect("the producer takes one");
        hand_over(&queue, submission()).expect("room again");
        drop(producer);
        let gone = hand_over(&queue, submission()).expect_err("no producer");
        assert_eq!(gone.code(), "shutting_down");
    }
}
