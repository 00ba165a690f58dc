//! Prometheus metrics, served at `/metrics` in the text exposition format.

use std::sync::Mutex;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an API request: the route (as declared, not the raw path) and the status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 6.5 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub committed: Counter,
    pub rejected: Counter,
    /// Transactions accepted by the API and not yet answered by the producer.
    pub pending: Gauge,
    /// Committed transactions per second over the last block interval.
    pub tx_per_s: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub block_seconds: Histogram,
    /// Merges of waiting index changes into the tables, after the blocks' answers went out.
    pub merge_seconds: Histogram,
    /// Files waiting in watched directories.
    pub ingest_backlog: Gauge,
    pub ingested: Counter,
    pub ingest_failed: Counter,
    /// TCP ingest: open connections, frames received, error frames sent.
    pub tcp_connections: Gauge,
    pub tcp_frames: Counter,
    pub tcp_error_frames: Counter,
    /// Times a TCP connection's budget of unanswered bytes was spent and its reading paused.
    pub tcp_backpressure: Counter,
    /// Requests refused by the per-client rate limit.
    pub rate_limited: Counter,
    pub requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    last_block: Mutex<Option<Instant>>,
}

impl Metrics {
    pub fn new(height: u64) -> Metrics {
        let mut registry = Registry::with_prefix("weft");
        let height_gauge = Gauge::<i64, AtomicI64>::default();
        height_gauge.set(i64::try_from(height).unwrap_or(i64::MAX));
        let metrics = Metrics {
            registry: Registry::default(),
            height: height_gauge,
            committed: Counter::default(),
            rejected: Counter::default(),
            pending: Gauge::default(),
            tx_per_s: Gauge::default(),
            block_seconds: latency_histogram(),
            merge_seconds: latency_histogram(),
            ingest_backlog: Gauge::default(),
            ingested: Counter::default(),
            ingest_failed: Counter::default(),
            tcp_connections: Gauge::default(),
            tcp_frames: Counter::default(),
            tcp_error_frames: Counter::default(),
            tcp_backpressure: Counter::default(),
            rate_limited: Counter::default(),
            requests: Family::new_with_constructor(latency_histogram),
            last_block: Mutex::new(None),
        };
        let m = &metrics;
        registry.register("chain_height", "Height of the chain head", m.height.clone());
        registry.register(
            "transactions_committed",
            "Transactions committed in blocks",
            m.committed.clone(),
        );
        registry.register(
            "transactions_rejected",
            "Submitted transactions refused by a rule or a check",
            m.rejected.clone(),
        );
        registry.register(
            "mempool_transactions",
            "Transactions waiting for the block producer",
            m.pending.clone(),
        );
        registry.register(
            "tx_per_second",
            "Committed transactions per second, over the time since the previous block",
            m.tx_per_s.clone(),
        );
        registry.register(
            "block_production_seconds",
            "Time to check, seal and durably commit one block",
            m.block_seconds.clone(),
        );
        registry.register(
            "storage_merge_seconds",
            "Time to merge waiting index and state changes into the tables",
            m.merge_seconds.clone(),
        );
        registry.register(
            "ingest_backlog_files",
            "Files waiting in watched directories (at the last scan)",
            m.ingest_backlog.clone(),
        );
        registry.register(
            "ingest_files",
            "Files recorded by directory ingest",
            m.ingested.clone(),
        );
        registry.register(
            "ingest_failed_files",
            "Files directory ingest moved to failed/",
            m.ingest_failed.clone(),
        );
        registry.register(
            "ingest_tcp_connections",
            "Open TCP ingest connections",
            m.tcp_connections.clone(),
        );
        registry.register(
            "ingest_tcp_frames",
            "Frames received by TCP ingest",
            m.tcp_frames.clone(),
        );
        registry.register(
            "ingest_tcp_error_frames",
            "Error frames TCP ingest answered with",
            m.tcp_error_frames.clone(),
        );
        registry.register(
            "ingest_tcp_backpressure",
            "Times a TCP ingest connection spent its unanswered-bytes budget and was not read until answers went out",
            m.tcp_backpressure.clone(),
        );
        registry.register(
            "api_rate_limited",
            "API requests refused by the per-client rate limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "api_request_seconds",
            "API request latency by route and status",
            m.requests.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Notes one produced block (`height` is `None` when every transaction was refused).
    pub fn record_block(
        &self,
        height: Option<u64>,
        committed: usize,
        rejected: usize,
        took: Duration,
    ) {
        self.committed.inc_by(committed as u64);
        self.rejected.inc_by(rejected as u64);
        self.block_seconds.observe(took.as_secs_f64());
        if let Some(height) = height {
            self.height.set(i64::try_from(height).unwrap_or(i64::MAX));
            let now = Instant::now();
            let mut last = match self.last_block.lock() {
                Ok(last) => last,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(previous) = *last {
                let seconds = now.duration_since(previous).as_secs_f64().max(1e-3);
                self.tx_per_s.set(committed as f64 / seconds);
            }
            *last = Some(now);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
