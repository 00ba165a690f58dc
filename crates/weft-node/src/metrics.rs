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

/// Labels of a push of a checkpoint to a witness: the witness's name and how it went
/// (`cosigned` or `failed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    pub witness: String,
    pub result: &'static str,
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
    /// Rounds of directory ingest skipped because a directory the node writes into was a
    /// symbolic link or not the node's own.
    pub ingest_unsafe: Counter,
    /// TCP ingest: open connections, frames received, error frames sent.
    pub tcp_connections: Gauge,
    pub tcp_frames: Counter,
    pub tcp_error_frames: Counter,
    /// Times a TCP connection's budget of unanswered bytes was spent and its reading paused.
    pub tcp_backpressure: Counter,
    /// TCP ingest connections closed before they authenticated (out of time, or room made for
    /// a newer one), and connections refused outright.
    pub tcp_unauthenticated_closed: Counter,
    pub tcp_refused: Counter,
    /// API connections open, and those closed to keep within the connection caps.
    pub http_connections: Gauge,
    pub http_closed: Counter,
    /// GraphQL requests refused: not runnable (400) or while others ran (503).
    pub graphql_refused: Counter,
    /// Requests refused by the per-client rate limit.
    pub rate_limited: Counter,
    pub requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// Publishing to witnesses (`[publish]`): the size of the latest witnessed checkpoint,
    /// the blocks committed since, and the pushes by witness and result.
    pub witnessed_size: Gauge,
    pub witness_lag_blocks: Gauge,
    pub witness_pushes: Family<PushLabels, Counter>,
    /// A networked node's view of its network, taken from its status when scraped.
    net: Option<NetMetrics>,
    last_block: Mutex<Option<Instant>>,
}

/// `weft_net_*`: what `GET /v1/net/status` shows, for a node in a network.
#[derive(Debug, Default)]
struct NetMetrics {
    validator: Gauge,
    epoch: Gauge,
    peers: Gauge,
    online: Gauge,
    dialed: Gauge,
    dialed_connected: Gauge,
    picked: Gauge,
    cut_off: Gauge,
    addresses: Gauge,
    finalized_height: Gauge,
    view: Gauge,
    notarized_view: Gauge,
    synced: Gauge,
    nullified_views: Counter,
    evidence: Counter,
    refused_blocks: Counter,
}

impl NetMetrics {
    fn register(&self, registry: &mut Registry) {
        let gauges: [(&str, &str, &Gauge); 13] = [
            (
                "validator",
                "1 if this node votes in the current epoch, else 0",
                &self.validator,
            ),
            (
                "epoch",
                "The consensus epoch (one more at each validator change)",
                &self.epoch,
            ),
            ("peers", "Peers heard from in the last 5 s", &self.peers),
            (
                "online_peers",
                "Peers known to be online (heard from here or by a peer)",
                &self.online,
            ),
            (
                "dialed_peers",
                "Peers this node dials and keeps connections with (the validators, and the peers picked besides them)",
                &self.dialed,
            ),
            (
                "dialed_connected_peers",
                "Dialed peers heard from in the last 5 s",
                &self.dialed_connected,
            ),
            (
                "picked_peers",
                "Peers besides the validators this node keeps connections with (network.connections at most)",
                &self.picked,
            ),
            (
                "cut_off_peers",
                "Peers disconnected for invalid data or removal, until their block lapses",
                &self.cut_off,
            ),
            (
                "address_book_peers",
                "Peers whose address this node knows (seeds, address book, signed addresses)",
                &self.addresses,
            ),
            (
                "finalized_height",
                "Highest final block heard of (above weft_chain_height while catching up)",
                &self.finalized_height,
            ),
            (
                "view",
                "Consensus view of the last finalization in this epoch",
                &self.view,
            ),
            (
                "notarized_view",
                "Validators: consensus view of the last notarization in this epoch (ahead of weft_net_view while finality lags)",
                &self.notarized_view,
            ),
            (
                "synced",
                "1 when synced, 0 while catching up or hearing from no peer",
                &self.synced,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(format!("net_{name}"), help, gauge.clone());
        }
        let counters: [(&str, &str, &Counter); 3] = [
            (
                "nullified_views",
                "Validators: views that ended without a block since the node started",
                &self.nullified_views,
            ),
            (
                "evidence",
                "Misbehaviour recorded in evidence.jsonl since the node started",
                &self.evidence,
            ),
            (
                "refused_blocks",
                "Proposals this validator refused since the node started",
                &self.refused_blocks,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(format!("net_{name}"), help, counter.clone());
        }
    }

    fn update(&self, status: &weft_api::NetStatus) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.validator.set(i64::from(status.validator));
        self.epoch.set(number(status.epoch));
        self.peers.set(count(status.peers.len()));
        self.online.set(count(status.online.len()));
        self.dialed.set(number(status.dialed));
        self.dialed_connected.set(number(status.dialed_connected));
        self.picked.set(count(status.picked.len()));
        self.cut_off.set(count(status.cut_off.len()));
        self.addresses.set(number(status.addresses));
        self.finalized_height.set(number(status.finalized_height));
        self.view.set(number(status.view));
        self.notarized_view.set(number(status.notarized_view));
        self.synced.set(i64::from(status.sync == "synced"));
        // The status holds totals since the node started; the counters catch up to them.
        for (counter, total) in [
            (&self.nullified_views, status.nullified_views),
            (&self.evidence, status.evidence),
            (&self.refused_blocks, status.refused_blocks),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }
}

impl Metrics {
    /// The metrics of a node at `height`; with `networked`, the `weft_net_*` ones too.
    pub fn new(height: u64, networked: bool) -> Metrics {
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
            ingest_unsafe: Counter::default(),
            tcp_connections: Gauge::default(),
            tcp_frames: Counter::default(),
            tcp_error_frames: Counter::default(),
            tcp_backpressure: Counter::default(),
            tcp_unauthenticated_closed: Counter::default(),
            tcp_refused: Counter::default(),
            http_connections: Gauge::default(),
            http_closed: Counter::default(),
            graphql_refused: Counter::default(),
            rate_limited: Counter::default(),
            requests: Family::new_with_constructor(latency_histogram),
            witnessed_size: Gauge::default(),
            witness_lag_blocks: Gauge::default(),
            witness_pushes: Family::default(),
            net: networked.then(NetMetrics::default),
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
            "ingest_unsafe_rounds",
            "Directory ingest rounds skipped because done/, failed/ or .weft-ingest/ was a symbolic link or not the node's own",
            m.ingest_unsafe.clone(),
        );
        registry.register(
            "ingest_tcp_unauthenticated_closed",
            "TCP ingest connections closed before they authenticated (out of time, or making room for newer ones)",
            m.tcp_unauthenticated_closed.clone(),
        );
        registry.register(
            "ingest_tcp_refused",
            "TCP ingest connections refused: authenticated connections at ingest.tcp.max_connections",
            m.tcp_refused.clone(),
        );
        registry.register(
            "api_connections",
            "Open API connections",
            m.http_connections.clone(),
        );
        registry.register(
            "api_connections_closed",
            "API connections closed to keep within api.max_connections and api.max_connections_per_address",
            m.http_closed.clone(),
        );
        registry.register(
            "graphql_refused",
            "GraphQL requests refused: 400 (does not parse, too deep, too complex, too large, too many fields) or 503 (api.graphql_concurrent others running)",
            m.graphql_refused.clone(),
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
        registry.register(
            "publish_witnessed_size",
            "Size of the latest checkpoint of this chain its witnesses cosigned ([publish])",
            m.witnessed_size.clone(),
        );
        registry.register(
            "publish_lag_blocks",
            "Blocks committed since the latest witnessed checkpoint",
            m.witness_lag_blocks.clone(),
        );
        registry.register(
            "publish_pushes",
            "Checkpoints pushed to witnesses, by witness and result (cosigned, failed)",
            m.witness_pushes.clone(),
        );
        if let Some(net) = &m.net {
            net.register(&mut registry);
        }
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Takes the `weft_net_*` values from a networked node's status (before a scrape).
    pub fn update_net(&self, status: &weft_api::NetStatus) {
        if let Some(net) = &self.net {
            net.update(status);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> Option<String> {
        text.lines().find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.to_string())
        })
    }

    #[test]
    fn a_networked_node_exports_its_network_status_and_a_node_on_its_own_does_not() {
        let alone = Metrics::new(3, false);
        alone.update_net(&weft_api::NetStatus::default());
        assert!(!alone.encode().contains("weft_net_"));

        let metrics = Metrics::new(3, true);
        let mut status = weft_api::NetStatus {
            validator: true,
            epoch: 2,
            peers: vec!["a".into(), "b".into(), "c".into()],
            finalized_height: 40,
            view: 17,
            notarized_view: 21,
            sync: "synced".into(),
            evidence: 2,
            nullified_views: 5,
            ..weft_api::NetStatus::default()
        };
        metrics.update_net(&status);
        let text = metrics.encode();
        for (name, expected) in [
            ("weft_net_validator", "1"),
            ("weft_net_epoch", "2"),
            ("weft_net_peers", "3"),
            ("weft_net_finalized_height", "40"),
            ("weft_net_view", "17"),
            ("weft_net_notarized_view", "21"),
            ("weft_net_synced", "1"),
            ("weft_net_evidence_total", "2"),
            ("weft_net_nullified_views_total", "5"),
            ("weft_net_refused_blocks_total", "0"),
        ] {
            assert_eq!(
                value(&text, name).as_deref(),
                Some(expected),
                "{name} in {text}"
            );
        }
        // Counters follow the status's totals; gauges its latest values.
        status.evidence = 3;
        status.sync = "catching up".into();
        metrics.update_net(&status);
        metrics.update_net(&status);
        let text = metrics.encode();
        assert_eq!(
            value(&text, "weft_net_evidence_total").as_deref(),
            Some("3")
        );
        assert_eq!(value(&text, "weft_net_synced").as_deref(), Some("0"));
    }
}
