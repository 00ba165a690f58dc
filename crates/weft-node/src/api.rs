//! The REST API (docs/api.md). One listener; JSON in and out; every client mistake is a 4xx
//! with `{"error": {"code", "message"[, "rule"]}}`.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use weft_core::{Fingerprint, ResourceId, TxId};
use weft_ledger::store::Store;
use weft_ledger::{Ledger, LedgerError, Transaction};

use crate::config::NodeConfig;
use crate::metrics::{Metrics, RequestLabels};
use crate::producer::{SharedLedger, Submission, TxResult};
use crate::query;

/// What every handler shares.
pub(crate) struct AppState {
    pub ledger: SharedLedger,
    pub queue: SyncSender<Submission>,
    pub metrics: Arc<Metrics>,
    /// The configuration the node started with.
    pub config: NodeConfig,
    /// The settings a reload may change.
    pub live: Arc<crate::admin::Live>,
    pub config_path: Option<std::path::PathBuf>,
    /// The configuration file as it was at start (before command-line overrides).
    pub file_config: NodeConfig,
    /// Requests per client address, if `api.rate_per_s` is set.
    pub rate_limit: Option<RateLimit>,
    pub chain_name: String,
    pub chain_id: weft_core::ChainId,
    pub admin_token: String,
    pub authority_key: Option<weft_core::SigningKey>,
    /// The GraphQL schema (its resolvers get this state with each request).
    pub graphql: crate::graphql::WeftSchema,
    /// One permit per GraphQL query that may run at once (`api.graphql_concurrent`).
    pub graphql_running: Arc<tokio::sync::Semaphore>,
    /// One permit per open GraphQL subscription socket (`api.graphql_sockets`).
    pub sockets: Arc<tokio::sync::Semaphore>,
    /// The head's height, updated by the producer after each commit.
    pub head: tokio::sync::watch::Receiver<u64>,
    /// Becomes true when the node starts shutting down.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Where `wait=false` submissions are journaled before they are answered.
    pub durable: crate::queue::DurableQueue,
    /// The network's status, when the node is part of one.
    pub net_status: Option<crate::net::SharedStatus>,
    /// Fetches whole copies of stripped transactions from peers, when the node is in a network.
    pub fetcher: Option<crate::net::Fetcher>,
}

/// An API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    rule: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            rule: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Code, message and rule, for another error format (GraphQL's).
    pub(crate) fn parts(self) -> (&'static str, String, Option<&'static str>) {
        (self.code, self.message, self.rule)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Rule(rule) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "rule",
                rule: Some(rule.rule()),
                message: rule.to_string(),
            },
            other => {
                tracing::error!(error = %other, "ledger error while answering a request");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the node could not read its ledger: {other}"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(rule) = self.rule {
            error["rule"] = json!(rule);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body never came: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request("bad_query", rejection.body_text())),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if stalled(&rejection) {
        return body_timeout();
    }
    let text = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is larger than this node accepts (api.max_body_bytes)",
        );
    }
    match rejection {
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("malformed_json", text),
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text)
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "send the body as JSON with `content-type: application/json`",
        ),
        _ => ApiError::bad_request("bad_body", text),
    }
}

/// Whether reading the body failed because the client stopped sending it (`crate::http`).
fn stalled(rejection: &JsonRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// 408 for a request body that stalled, and the connection closes.
fn body_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        "the request body stopped arriving for longer than api.header_timeout_ms",
    )
}

/// The client's address, for plain and TLS connections alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::SocketAddr);

/// The per-client-address request limit (a keyed token bucket).
pub(crate) type RateLimit = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// `api.rate_per_s` and `api.rate_burst` as a limiter; `None` when there is no limit.
pub(crate) fn rate_limiter(config: &NodeConfig) -> Option<RateLimit> {
    let rate = std::num::NonZeroU32::new(config.api.rate_per_s)?;
    let burst = std::num::NonZeroU32::new(config.api.rate_burst).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

/// Answers 429, with the seconds to wait, to a client address over its rate.
async fn limit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(limiter) = &state.rate_limit else {
        return next.run(request).await;
    };
    let Some(peer) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|info| info.0.0.ip())
    else {
        return next.run(request).await;
    };
    if let Err(not_until) = limiter.check_key(&peer) {
        use governor::clock::Clock;
        state.metrics.rate_limited.inc();
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this client made more than api.rate_per_s = {} requests per second; retry in {seconds} s",
                state.config.api.rate_per_s
            ),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    // Addresses whose bucket is full again are forgotten, so the table stays small.
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    next.run(request).await
}

/// The router with every route, limit and metric.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.api.max_body_bytes;
    Router::new()
        .route("/v1/transactions", post(submit_one))
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/transactions/{id}", get(transaction))
        .route("/v1/status", get(status))
        .route("/v1/net/status", get(net_status))
        .route("/v1/net/join", get(net_join))
        .route("/v1/chain", get(chain))
        .route("/v1/blocks/{block}", get(block))
        .route("/v1/resources", get(resources_by_prefix))
        .route("/v1/resources/{id}", get(resource))
        .route("/v1/resources/{id}/keys/{key}", get(resource_key))
        .route("/v1/assets/{fingerprint}", get(asset))
        .route("/v1/claims/{fingerprint}", get(claim))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .route(
            "/graphql",
            get(crate::graphql::get)
                .post(crate::graphql::post)
                .layer(DefaultBodyLimit::max(state.config.api.graphql_max_bytes)),
        )
        .route("/graphql/schema", get(crate::graphql::sdl))
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes(state.clone()))
        .fallback(|| async { ApiError::not_found("no such endpoint; see docs/api.md") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), self::limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

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

#[utoipa::path(get, path = "/openapi.json", tag = "node",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub(crate) async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.get_or_init(crate::openapi::document).clone(),
    )
        .into_response()
}

/// Times every request into the latency histogram, by route and status.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
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

/// Runs `read` against the ledger on a blocking thread.
pub(crate) async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    read: impl FnOnce(&Ledger<weft_ledger::store::RedbStore>) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let ledger = state.ledger.clone();
    tokio::task::spawn_blocking(move || {
        let ledger = match ledger.lock() {
            Ok(ledger) => ledger,
            Err(poisoned) => poisoned.into_inner(),
        };
        read(&ledger)
    })
    .await
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the read failed: {error}"),
        )
    })?
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitOne {
    /// The canonical encoding of a signed transaction, hex.
    pub(crate) transaction: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBatch {
    /// Canonical encodings of signed transactions, hex.
    pub(crate) transactions: Vec<String>,
}

pub(crate) fn decode_transaction(
    index: Option<usize>,
    text: &str,
) -> Result<Transaction, ApiError> {
    let at = index.map_or(String::new(), |index| format!("transactions[{index}]: "));
    let bytes = hex::decode(text.trim()).map_err(|error| {
        ApiError::bad_request(
            "bad_transaction",
            format!("{at}not hex-encoded bytes: {error}"),
        )
    })?;
    weft_core::encoding::decode::<Transaction>(&bytes).map_err(|error| {
        ApiError::bad_request(
            "bad_transaction",
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
            "busy",
            "the node's submission queue is full (api.queue); retry shortly",
        ),
        TrySendError::Disconnected(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
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
                "shutting_down",
                "the node stopped before the block was committed; submit again",
            )
        }),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "not_final",
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

fn result_json(result: &TxResult) -> Value {
    match result {
        TxResult::Committed { id, position } => {
            json!({"tx_id": id.to_hex(), "height": position.height, "index": position.index})
        }
        TxResult::Rejected { id, error } => json!({
            "tx_id": id.to_hex(),
            "error": {"code": "rule", "rule": error.rule(), "message": error.to_string()},
        }),
        TxResult::Failed { id, message } => json!({
            "tx_id": id.to_hex(),
            "error": {"code": "internal", "message": message},
        }),
    }
}

#[utoipa::path(post, path = "/v1/transactions", tag = "transactions",
    params(("wait" = Option<bool>, Query, description = "false: answer 202 once durably queued, before the block (default true: once committed)"),
        ("timeout_ms" = Option<u64>, Query, description = "when waiting: answer 504 after this many ms (1 to api.wait_timeout_ms, the default); the transaction stays queued")),
    request_body(content = SubmitOne, description = "A signed transaction"),
    responses(
        (status = 200, description = "Durably committed", body = crate::openapi::Committed),
        (status = 202, description = "wait=false: durably queued", body = crate::openapi::Queued),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::openapi::ErrorBody),
        (status = 422, description = "Wrong field type, unknown field, or refused by a rule", body = crate::openapi::ErrorBody),
        (status = 503, description = "Queue full or shutting down; submit again", body = crate::openapi::ErrorBody),
        (status = 504, description = "Not committed within the wait (api.wait_timeout_ms or timeout_ms); still queued", body = crate::openapi::ErrorBody),
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
        let id = ids.first().map(TxId::to_hex);
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"tx_id": id, "state": "queued"})),
        )
            .into_response());
    }
    let (id, position) = submit_single(&state, tx, timeout).await?;
    Ok(
        Json(json!({"tx_id": id.to_hex(), "height": position.height, "index": position.index}))
            .into_response(),
    )
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
                "timeout_ms",
                "timeout_ms applies only to a submission that waits for its block (not with \
                 wait=false)",
            )),
            Some(ms) if (1..=most).contains(&ms) => Ok(Duration::from_millis(ms)),
            Some(ms) => Err(ApiError::bad_request(
                "timeout_ms",
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
            "internal",
            format!("the check failed: {error}"),
        )
    })?;
    if let Some((index, error)) = failure {
        let mut refused = ApiError::from(LedgerError::Rule(error));
        if batch {
            refused.message = format!(
                "transactions[{index}]: {}; nothing was queued",
                refused.message
            );
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
            "busy",
            "the node's queue journal is behind; retry shortly",
        )),
        Err(crate::queue::NotQueued::Stopping) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is shutting down",
        )),
        Err(crate::queue::NotQueued::Failed(message)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_queued",
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
            "not_committed",
            message,
        )),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_committed",
            "the node returned no result; submit again",
        )),
    }
}

#[utoipa::path(post, path = "/v1/transactions/batch", tag = "transactions",
    params(("wait" = Option<bool>, Query, description = "false: answer 202 once all are durably queued, before their block; a transaction failing the format, chain or signature check then refuses the whole batch (422, its index named)"),
        ("timeout_ms" = Option<u64>, Query, description = "when waiting: answer 504 after this many ms (1 to api.wait_timeout_ms, the default); the transactions stay queued")),
    request_body(content = SubmitBatch, description = "1 to api.max_batch signed transactions"),
    responses(
        (status = 200, description = "Each transaction's result, in order", body = crate::openapi::BatchAnswer),
        (status = 202, description = "wait=false: all durably queued", body = crate::openapi::BatchQueued),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = crate::openapi::ErrorBody),
        (status = 422, description = "Wrong field type or unknown field; with wait=false, a transaction refused by a stateless check", body = crate::openapi::ErrorBody),
        (status = 503, description = "Queue full or shutting down; submit again", body = crate::openapi::ErrorBody),
        (status = 504, description = "Not committed within the wait (api.wait_timeout_ms or timeout_ms); still queued", body = crate::openapi::ErrorBody),
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
            "batch_size",
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
            Json(json!({
                "queued": ids.len(),
                "tx_ids": ids.iter().map(TxId::to_hex).collect::<Vec<_>>(),
            })),
        )
            .into_response());
    }
    let results = submit(&state, transactions, timeout).await?;
    let committed = results
        .iter()
        .filter(|result| matches!(result, TxResult::Committed { .. }))
        .count();
    Ok(Json(json!({
        "committed": committed,
        "rejected": results.len() - committed,
        "results": results.iter().map(result_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[utoipa::path(get, path = "/v1/status", tag = "node",
    responses((status = 200, description = "Height, head, type, peers, mempool", body = crate::openapi::Status)))]
pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let node_type = state.config.node.node_type.name();
    let chain = state.chain_name.clone();
    let pending = state.metrics.pending.get();
    let peers = state.net_status.as_ref().map_or(0, |status| {
        status.lock().map_or(0, |status| status.peers.len())
    });
    read(&state, move |ledger| {
        let head = &ledger.head().header;
        Ok(Json(json!({
            "chain": chain,
            "chain_id": ledger.chain_id().to_hex(),
            "height": head.height,
            "head": ledger.head().header.hash().to_hex(),
            "time": head.timestamp,
            "node_type": node_type,
            "peers": peers,
            "mempool": pending,
        })))
    })
    .await
}

#[utoipa::path(get, path = "/v1/net/status", tag = "node",
    responses(
        (status = 200, description = "Peers, validators, height, sync state (docs/network.md)"),
        (status = 404, description = "The node is not part of a network", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn net_status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Value>, ApiError> {
    let Some(status) = &state.net_status else {
        return Err(ApiError::not_found(
            "this node runs on its own (network.enabled = false in its config.toml)",
        ));
    };
    let status = status
        .lock()
        .map_err(|_| ApiError::not_found("the network status is not available"))?
        .clone();
    Ok(Json(json!(status)))
}

#[utoipa::path(get, path = "/v1/net/join", tag = "node",
    responses(
        (status = 200, description = "The join document: block 0, seeds, followers (docs/network.md, \"Joining a network\")"),
        (status = 404, description = "The node is not part of a network", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn net_join(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
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
        let document = crate::net::join::JoinDocument::new(&chain, &block0, &key, &network)
            .map_err(|error| LedgerError::Invalid(format!("{error:#}")))?;
        Ok(Json(json!(document)))
    })
    .await
}

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
        (status = 200, description = "The block header and its transaction ids", body = crate::openapi::Block),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such block (yet)", body = crate::openapi::ErrorBody),
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
        (status = 200, description = "The transaction and its inclusion proof", body = crate::openapi::TransactionAnswer),
        (status = 202, description = "Queued with wait=false, not yet in a block", body = crate::openapi::Queued),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
        (status = 404, description = "Not on this ledger", body = crate::openapi::ErrorBody),
        (status = 422, description = "Queued with wait=false, then refused by a rule when its block was made", body = crate::openapi::ErrorBody),
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
        (None, crate::queue::QueuedState::Refused(error)) => {
            let mut refused = ApiError::from(LedgerError::Rule(error));
            refused.message = format!(
                "transaction {id} was queued and then refused when its block was made: {}",
                refused.message
            );
            Err(refused)
        }
        (None, crate::queue::QueuedState::Unknown) => Err(ApiError::not_found(format!(
            "transaction {id} is not on this ledger"
        ))),
    }
}

#[utoipa::path(get, path = "/v1/chain", tag = "chain",
    responses((status = 200, description = "Genesis parameters and head", body = crate::openapi::ChainInfo)))]
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
        (status = 200, description = "The registered resource", body = crate::openapi::ResourceAnswer),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
        (status = 404, description = "Not registered", body = crate::openapi::ErrorBody),
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

#[utoipa::path(get, path = "/v1/resources", tag = "state",
    params(("prefix" = String, Query, description = "6 to 64 hex digits")),
    responses(
        (status = 200, description = "Ids of registered resources with the prefix (at most 1000)", body = crate::openapi::ResourceIds),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn resources_by_prefix(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<PrefixQuery>,
) -> Result<Json<Value>, ApiError> {
    let prefix = query.prefix.trim().to_ascii_lowercase();
    if !query::is_id_prefix(&prefix) {
        return Err(ApiError::bad_request(
            "bad_prefix",
            format!("{prefix:?} is not a resource id prefix (6 to 64 hex digits)"),
        ));
    }
    read(&state, move |ledger| {
        let ids = query::resources_with_prefix(ledger.store(), &prefix)?;
        Ok(Json(
            json!({ "ids": ids.iter().map(|id| id.to_hex()).collect::<Vec<_>>() }),
        ))
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
        (status = 200, description = "Owner, every send, and the verdict", body = crate::openapi::AssetReport),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
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
        (status = 200, description = "Who claimed the asset, when", body = crate::openapi::ClaimAnswer),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
        (status = 404, description = "Nobody claimed it", body = crate::openapi::ErrorBody),
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
        (status = 200, description = "Whether the key is, was, or never was the resource's", body = crate::openapi::KeyStatus),
        (status = 400, description = "Malformed request", body = crate::openapi::ErrorBody), (status = 429, description = "Over the request rate", body = crate::openapi::ErrorBody),
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
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, "busy");
        producer.recv().expect("the producer takes one");
        hand_over(&queue, submission()).expect("room again");
        drop(producer);
        let gone = hand_over(&queue, submission()).expect_err("no producer");
        assert_eq!(gone.code, "shutting_down");
    }
}
