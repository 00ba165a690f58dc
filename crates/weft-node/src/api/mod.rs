//! The REST API (docs/api.md). One listener; JSON in and out; every client mistake is a 4xx
//! with `{"error": {"code", "message"[, "rule"]}}`.
//!
//! `error` (what a client sees when something is wrong), `state` (what handlers share),
//! `submit`, `reads` and `node` (the handlers, by resource); the router, the rate limit and
//! the request metrics are here.

pub(crate) mod anchor;
pub(crate) mod checkpoints;
pub(crate) mod error;
pub(crate) mod node;
pub(crate) mod reads;
pub(crate) mod state;
pub(crate) mod submit;
pub(crate) mod witness;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::metrics::RequestLabels;
use weft_api::ErrorCode;

use error::ApiError;
use node::*;
use reads::*;
use state::AppState;
use submit::*;

/// The client's address, for plain and TLS connections alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::SocketAddr);

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
            ErrorCode::RateLimited,
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

/// The router with every route, limit and metric: the REST API's own routes and `others` (the
/// OpenAPI document, GraphQL and the administrative endpoints, which build on this module and
/// are given by the caller above them).
pub(crate) fn router(state: Arc<AppState>, others: Router<Arc<AppState>>) -> Router {
    let limit = state.config.api.max_body_bytes;
    Router::new()
        .route(
            "/v1/transactions",
            get(transactions_by_prefix).post(submit_one),
        )
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/transactions/{id}", get(transaction))
        .route(
            "/v1/transactions/{id}/tlog-proof",
            get(checkpoints::tlog_proof),
        )
        .route("/checkpoint", get(checkpoints::checkpoint_note))
        .route("/add-checkpoint", post(witness::add_checkpoint))
        .route("/v1/witness", get(witness::status))
        .route("/v1/publish", get(anchor::status))
        .route("/v1/checkpoint/witnessed", get(anchor::witnessed))
        .route("/v1/anchors", get(anchor::anchors))
        .route("/v1/checkpoint", get(checkpoints::checkpoint))
        .route("/v1/checkpoint/consistency", get(checkpoints::consistency))
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
        .route("/metrics", get(metrics))
        .merge(others)
        .fallback(|| async { ApiError::not_found("no such endpoint; see docs/api.md") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), self::limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
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
