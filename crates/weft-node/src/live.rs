//! The settings a running node takes over from a reloaded `config.toml` (`POST
//! /v1/admin/reload`), read by the block producer and the API as they go, and the list of
//! those that need a restart instead.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::config::NodeConfig;

/// The settings a running node takes over from a reloaded `config.toml`.
#[derive(Debug)]
pub(crate) struct Live {
    pub interval_ms: AtomicU64,
    pub max_txs: AtomicUsize,
    pub max_batch: AtomicUsize,
}

impl Live {
    pub fn new(config: &NodeConfig) -> Live {
        Live {
            interval_ms: AtomicU64::new(config.blocks.interval_ms),
            max_txs: AtomicUsize::new(config.blocks.max_txs),
            max_batch: AtomicUsize::new(config.api.max_batch),
        }
    }

    /// Takes over the reloadable settings of `new`; returns the keys that changed and those
    /// that changed but take a restart.
    pub fn apply(
        &self,
        old: &NodeConfig,
        new: &NodeConfig,
    ) -> (Vec<&'static str>, Vec<&'static str>) {
        let mut applied = Vec::new();
        let mut restart = Vec::new();
        let previous = self
            .interval_ms
            .swap(new.blocks.interval_ms, Ordering::Relaxed);
        if previous != new.blocks.interval_ms {
            applied.push("blocks.interval_ms");
        }
        if self.max_txs.swap(new.blocks.max_txs, Ordering::Relaxed) != new.blocks.max_txs {
            applied.push("blocks.max_txs");
        }
        if self.max_batch.swap(new.api.max_batch, Ordering::Relaxed) != new.api.max_batch {
            applied.push("api.max_batch");
        }
        // Each `api` setting that takes a restart, named as in config.toml.
        macro_rules! api_changed {
            ($($key:ident),+ $(,)?) => {
                [$((concat!("api.", stringify!($key)), old.api.$key != new.api.$key)),+]
            };
        }
        let api = api_changed!(
            listen,
            max_body_bytes,
            queue,
            rate_per_s,
            rate_burst,
            wait_timeout_ms,
            max_connections,
            max_connections_per_address,
            header_timeout_ms,
            graphql_max_bytes,
            graphql_max_fields,
            graphql_concurrent,
            graphql_sockets,
            graphql_socket_operations,
        );
        let fixed = [
            ("node.type", old.node.node_type != new.node.node_type),
            ("tls", old.tls != new.tls),
            ("storage.merge_after_txs", old.storage != new.storage),
            ("ingest", old.ingest != new.ingest),
        ]
        .into_iter()
        .chain(api);
        restart.extend(fixed.filter(|(_, changed)| *changed).map(|(key, _)| key));
        (applied, restart)
    }
}
