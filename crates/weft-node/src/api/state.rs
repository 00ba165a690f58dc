//! What every handler shares: the ledger, the queue to the producer, the settings, the
//! metrics; and `read`, which runs a read against the ledger on a blocking thread.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use axum::http::StatusCode;
use weft_ledger::Ledger;

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::submission::{SharedLedger, Submission};

use weft_api::ErrorCode;

use super::error::ApiError;

/// What every handler shares.
pub(crate) struct AppState {
    pub ledger: SharedLedger,
    pub queue: SyncSender<Submission>,
    pub metrics: Arc<Metrics>,
    /// The configuration the node started with.
    pub config: NodeConfig,
    /// The settings a reload may change.
    pub live: Arc<crate::live::Live>,
    pub config_path: Option<std::path::PathBuf>,
    /// The configuration file as it was at start (before command-line overrides).
    pub file_config: NodeConfig,
    /// Requests per client address, if `api.rate_per_s` is set.
    pub rate_limit: Option<RateLimit>,
    pub chain_name: String,
    pub chain_id: weft_core::ChainId,
    pub admin_token: String,
    pub authority_key: Option<weft_core::SigningKey>,
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
    /// The chain's log of blocks, for checkpoints and their proofs.
    pub block_log: Arc<crate::checkpoints::BlockLog>,
    /// The key this node signs checkpoints with (its producer or validator key).
    pub note_key: Arc<weft_core::SigningKey>,
    /// The witness of other chains, when `[witness]` is enabled.
    pub witness: Option<crate::witnessing::WitnessService>,
    /// What publishing to witnesses shows, when `[publish]` is enabled.
    pub published: Option<Arc<crate::publish::Published>>,
    /// How anchoring other chains fares, when `[anchor]` is enabled.
    pub anchoring: Option<crate::anchor::Shown>,
    /// How time-stamping the chain's checkpoints fares, when `[timestamp]` is enabled.
    pub timestamping: Option<crate::timestamping::Shown>,
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
            ErrorCode::Internal,
            format!("the read failed: {error}"),
        )
    })?
}

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
