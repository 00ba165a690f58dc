//! weft-node: the daemon. A ledger home served over a REST API (docs/api.md), with a block
//! producer that seals submitted transactions into blocks on an interval or when a block is
//! full, Prometheus metrics, and graceful shutdown on SIGTERM/SIGINT.
//!
//! The CLI (`weft node run`) opens the home and calls [`run`]; the read-side JSON the API
//! serves comes from [`query`], which the CLI uses too, so `--node` and embedded output agree.

pub mod checkpoints;
pub mod config;
pub mod envelope;
pub mod query;

mod admin;
mod anchor;
mod api;
mod commit;
/// Entry points of the fuzz targets (fuzz/) and of the replay of their corpora in the tests.
#[doc(hidden)]
pub mod fuzz;
mod gate;
mod graphql;
mod http;
mod ingest;
mod live;
mod metrics;
pub mod net;
mod openapi;
mod producer;
mod publish;
mod queue;
pub mod sealed;
mod submission;
mod tcp;
mod timestamping;
mod tls;
pub mod wire;
mod witnessing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use weft_core::SigningKey;
use weft_ledger::Ledger;
use weft_ledger::store::RedbStore;

pub use admin::secret_token;
pub use config::{ConfigError, Follow, NodeConfig, NodeType};
pub use net::join::{MAX_JOIN_BYTES, join_document, parse_join_document};
pub use submission::now_ms;

/// What `run` needs: the home's database, its producer key and its settings.
#[derive(Debug)]
pub struct NodeOptions {
    pub db_path: PathBuf,
    pub producer_key: SigningKey,
    pub config: NodeConfig,
    /// Where the bound API address is written once the node listens (removed at exit).
    pub addr_file: PathBuf,
    /// The file `config` came from, re-read by `POST /v1/admin/reload`.
    pub config_path: Option<PathBuf>,
    /// The bearer token of the administrative endpoints.
    pub admin_token: String,
    /// The home's authority key, if it holds one: the admin endpoints register resources with it.
    pub authority_key: Option<SigningKey>,
    /// The resource, and its key, that signs what directory and TCP ingest record (needed
    /// when `config.ingest.watch` names directories or TCP ingest takes records).
    pub ingest_identity: Option<(weft_core::ResourceId, SigningKey)>,
    /// The token a TCP ingest client shows before it may send records for the node to sign.
    pub ingest_token: String,
    /// `[tls] cert` and `key`, resolved against the home.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// The configuration as its file said at start, before command-line overrides: a reload
    /// compares the file with this, so an override is not taken for a change of the file.
    pub file_config: NodeConfig,
}

/// Where a started node listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub api: SocketAddr,
    /// Do the API and TCP ingest speak TLS?
    pub tls: bool,
    /// The TCP ingest address, if TCP ingest is on.
    pub tcp: Option<SocketAddr>,
}

/// Runs the node until SIGTERM or SIGINT: then stops taking requests, answers those in
/// flight, commits the block in hand, flushes the ledger and returns. `on_listen` is called
/// with the bound addresses once the API accepts connections. The addresses are also
/// written to `addr_file`: the API's on the first line, then `tcp ADDR` and `tls` lines.
pub fn run(options: NodeOptions, on_listen: impl FnOnce(Listening)) -> Result<()> {
    let NodeOptions {
        db_path,
        producer_key,
        config,
        addr_file,
        config_path,
        admin_token,
        authority_key,
        ingest_identity,
        ingest_token,
        tls_files,
        file_config,
    } = options;
    // Checkpoints are signed with the key that seals (or votes on) this node's blocks.
    let note_key = Arc::new(weft_core::SigningKey::from_seed(&producer_key.seed()));
    config.validate()?;
    if !config.network.enabled && !config.node.node_type.produces() {
        bail!(
            "node.type = \"{}\" follows other nodes' blocks and needs a network \
             (network.enabled = true, or `weft init --join URL`): use \"full\" or \"producer\" \
             for a node on its own",
            config.node.node_type.name()
        );
    }
    if !config.network.enabled && !config.node.node_type.keeps_all() {
        tracing::warn!(
            node_type = config.node.node_type.name(),
            "a node on its own holds the only copy of every payload: it stores them all whole \
             (node.keep_kinds and node.keep_resources apply in a network)"
        );
    }
    let listen = config.listen_addr()?;
    let tcp_listen = config.tcp_ingest_addr()?;
    let tls = match &tls_files {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    // The producer merges waiting index changes itself, after a block's answers went out, so
    // no submitter waits for a merge: the store never merges inside a block's commit.
    let ledger = Ledger::open(RedbStore::open_with_options(
        &db_path,
        weft_ledger::store::RedbOptions {
            merge_after_txs: usize::MAX,
            cache_bytes: config.storage.cache_mib << 20,
        },
    )?)?;
    {
        use weft_ledger::state::StateView as _;
        use weft_ledger::store::Store as _;
        let proofs = config.node.follow == config::Follow::Proofs;
        if !proofs && !ledger.store().keeps_rule_state() {
            bail!(
                "this ledger was followed on proofs (node.follow = \"proofs\") and holds no rule \
                 state: it cannot follow by the rules again; set node.follow back, or start a \
                 fresh home with `weft init --join`"
            );
        }
        let schedule = ledger.store().snapshot()?.schedule()?;
        if proofs
            && schedule
                .changes
                .iter()
                .flat_map(|change| &change.validators)
                .chain(&schedule.genesis)
                .any(|key| *key == producer_key.public_key())
        {
            bail!(
                "this node's key {} is a validator of the chain, and a validator must check every \
                 block by the rules: node.follow = \"proofs\" is for thin nodes that do not vote",
                producer_key.public_key()
            );
        }
    }
    // In a network, non-validators are let in by their key (network.followers), checked by
    // the network itself.
    if !config.network.enabled {
        use weft_ledger::state::StateView as _;
        use weft_ledger::store::Store as _;
        let next = ledger.head().header.height + 1;
        let schedule = ledger.store().snapshot()?.schedule()?;
        if !schedule
            .producers_at(next)
            .contains(&producer_key.public_key())
        {
            bail!(
                "this home's producer key {} is not a producer of chain {:?} at height {next}",
                producer_key.public_key(),
                ledger.genesis().chain_name
            );
        }
    }
    let chain_name = ledger.genesis().chain_name.clone();
    let chain_id = ledger.chain_id();
    let live = Arc::new(live::Live::new(&config));
    let metrics = Arc::new(metrics::Metrics::new(
        ledger.head().header.height,
        config.network.enabled,
    ));
    let (head_sender, head) = tokio::sync::watch::channel(ledger.head().header.height);
    let ledger = Arc::new(Mutex::new(ledger));
    let (queue, submissions) = std::sync::mpsc::sync_channel(config.api.queue);
    // On its own a node seals blocks itself (proof of authority); in a network, blocks are
    // agreed by the validators (BFT consensus) and every node commits the final ones.
    let (producer, network) = if config.network.enabled {
        let started = net::start::start(
            net::NetParams {
                ledger: ledger.clone(),
                key: producer_key,
                config: config.network.clone(),
                dir: db_path.with_file_name("network"),
                evidence_path: db_path.with_file_name("evidence.jsonl"),
                tail: commit::CommitTail::new(
                    ledger.clone(),
                    metrics.clone(),
                    head_sender,
                    config.storage.merge_after_txs,
                ),
                metrics: metrics.clone(),
                max_txs: config.blocks.max_txs,
                filter: config.node.storage_filter()?,
                follow_proofs: config.node.follow == config::Follow::Proofs,
            },
            submissions,
        )?;
        (None, Some(started))
    } else {
        let producer = producer::Producer {
            key: producer_key,
            live: live.clone(),
            tail: commit::CommitTail::new(
                ledger.clone(),
                metrics.clone(),
                head_sender,
                config.storage.merge_after_txs,
            ),
        };
        let producer = std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || producer.run(submissions))
            .context("cannot start the block producer thread")?;
        (Some(producer), None)
    };
    let net_status = network.as_ref().map(|started| started.status.clone());
    let fetcher = network.as_ref().map(|started| started.fetcher.clone());
    // The `wait=false` journal: what a killed node had queued goes to the producer first.
    let journal_path = db_path.with_file_name("queue.log");
    let queue::Started {
        queue: durable,
        threads: queue_threads,
    } = queue::start(&journal_path, &ledger, queue.clone(), metrics.clone())?;
    let queue_tracker = durable.tracker.clone();

    // Directory ingest: every watched directory is checked, and what a killed node left in it
    // settled, before the node serves.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watchers = Vec::new();
    let ingest_identity = ingest_identity.map(|(id, key)| (id, Arc::new(key)));
    if !config.ingest.watch.is_empty() {
        let Some((identity, identity_key)) = ingest_identity.clone() else {
            bail!("directory ingest needs an identity to sign with (ingest.identity)");
        };
        for source in &config.ingest.watch {
            ingest::prepare(source, &ledger, &metrics)?;
            let watcher = ingest::Watcher {
                pattern: glob::Pattern::new(&source.pattern).context("ingest.watch.pattern")?,
                source: source.clone(),
                identity,
                key: identity_key.clone(),
                chain_id,
                poll: Duration::from_millis(config.ingest.poll_ms),
                batch: config.ingest.batch,
                min_age: Duration::from_millis(config.ingest.min_age_ms),
                queue: queue.clone(),
                ledger: ledger.clone(),
                metrics: metrics.clone(),
                stop: stop.clone(),
            };
            tracing::info!(dir = %source.dir.display(), pattern = %source.pattern, "watching");
            watchers.push(
                std::thread::Builder::new()
                    .name("ingest".into())
                    .spawn(move || watcher.run())
                    .context("cannot start a directory ingest thread")?,
            );
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Set when a signal asks the node to stop: the API, TCP ingest and GraphQL subscriptions end.
    let (stop_serving, stopping) = tokio::sync::watch::channel(false);
    // Connections are capped below the process's file-descriptor limit, with descriptors kept
    // for the ledger, directory ingest and consensus, so no flood of sockets starves them.
    let descriptors = http::descriptor_limit();
    let tcp_unauthenticated = gate::Gate::new(
        config.ingest.tcp.max_unauthenticated,
        config.ingest.tcp.max_unauthenticated_per_address,
    );
    let tcp_sockets = if tcp_listen.is_some() {
        (config.ingest.tcp.max_connections + tcp_unauthenticated.ceiling()) as u64
    } else {
        0
    };
    let room = descriptors
        .saturating_sub(http::RESERVED_FDS)
        .saturating_sub(config.api.graphql_sockets as u64)
        .saturating_sub(tcp_sockets);
    // The API's gate lets a quarter more sockets be open than its cap while displaced ones close.
    let api_cap = usize::try_from(room.saturating_mul(4) / 5)
        .unwrap_or(usize::MAX)
        .min(config.api.max_connections);
    if api_cap < 16 {
        bail!(
            "this process may open {descriptors} files (ulimit -n): too few for {} TCP ingest \
             connections, {} GraphQL subscription sockets, the API and {} kept for the \
             ledger; raise the limit or lower ingest.tcp.max_connections or \
             api.graphql_sockets",
            tcp_sockets,
            config.api.graphql_sockets,
            http::RESERVED_FDS
        );
    }
    if api_cap < config.api.max_connections {
        tracing::warn!(
            descriptors,
            api_max_connections = api_cap,
            "api.max_connections lowered to fit the open-file limit (ulimit -n)"
        );
    }
    let http_limits = http::Limits {
        gate: gate::Gate::new(api_cap, config.api.max_connections_per_address),
        header_timeout: Duration::from_millis(config.api.header_timeout_ms),
        // A submission waiting for its block is answered within api.wait_timeout_ms.
        drain: Duration::from_millis(config.api.wait_timeout_ms + config.api.header_timeout_ms),
    };
    let api_metrics = metrics.clone();
    let tcp_ingest = Arc::new(tcp::TcpIngest {
        queue: queue.clone(),
        metrics: metrics.clone(),
        chain_id,
        identity: ingest_identity,
        token: ingest_token,
        max_frame: config.ingest.tcp.max_frame_bytes,
        max_connections: config.ingest.tcp.max_connections,
        unauthenticated: tcp_unauthenticated,
        auth_timeout: Duration::from_secs(config.ingest.tcp.auth_timeout_s),
        idle_timeout: Duration::from_secs(config.ingest.tcp.idle_timeout_s),
        max_unanswered_bytes: config.ingest.tcp.max_unanswered_bytes,
        live: live.clone(),
        tls: tls.clone(),
    });
    let witness = if config.witness.enabled {
        let home = db_path.parent().unwrap_or(std::path::Path::new("."));
        Some(witnessing::WitnessService::start(api::witness::open(
            home,
            &config.witness,
        )?)?)
    } else {
        None
    };
    let block_log = Arc::new(checkpoints::BlockLog::default());
    let publisher = if config.publish.enabled {
        let home = db_path.parent().unwrap_or(std::path::Path::new("."));
        Some(publish::Publisher::new(
            home,
            &config.publish,
            ledger.clone(),
            block_log.clone(),
            note_key.clone(),
            metrics.clone(),
        )?)
    } else {
        None
    };
    let published = publisher
        .as_ref()
        .map(|publisher| publisher.published.clone());
    let publisher_head = head.clone();
    let anchorer = if config.anchor.enabled {
        let home = db_path.parent().unwrap_or(std::path::Path::new("."));
        Some(anchor::Anchorer::new(
            home,
            &config.anchor,
            ledger.clone(),
            queue.clone(),
            authority_key.as_ref(),
            chain_id,
        )?)
    } else {
        None
    };
    let anchoring = anchorer.as_ref().map(|anchorer| anchorer.shown.clone());
    let timestamper = if config.timestamp.enabled {
        let home = db_path.parent().unwrap_or(std::path::Path::new("."));
        Some(timestamping::Timestamper::new(
            home,
            &config.timestamp,
            timestamping::Parts {
                ledger: ledger.clone(),
                queue: queue.clone(),
                authority: authority_key
                    .as_ref()
                    .map(|key| weft_core::SigningKey::from_seed(&key.seed())),
                note_key: note_key.clone(),
                chain_id,
                block_log: block_log.clone(),
                published: published.clone(),
            },
        )?)
    } else {
        None
    };
    let timestamping = timestamper
        .as_ref()
        .map(|timestamper| timestamper.shown.clone());
    let graphql_running = Arc::new(tokio::sync::Semaphore::new(config.api.graphql_concurrent));
    let graphql = graphql::schema(
        config.api.graphql_max_bytes,
        config.api.graphql_max_fields,
        graphql_running.clone(),
        config.api.graphql_concurrent,
    );
    let graphql_sockets = config.api.graphql_sockets;
    let sockets = Arc::new(tokio::sync::Semaphore::new(graphql_sockets));
    let open_sockets = sockets.clone();
    let state = Arc::new(api::state::AppState {
        ledger: ledger.clone(),
        queue,
        metrics,
        rate_limit: api::state::rate_limiter(&config),
        config,
        live,
        config_path,
        file_config,
        chain_name,
        chain_id,
        admin_token,
        authority_key,
        graphql_running,
        sockets,
        head,
        stopping: stopping.clone(),
        durable,
        net_status,
        fetcher,
        block_log,
        note_key,
        witness,
        published,
        anchoring,
        timestamping,
    });
    let written_addr = addr_file.clone();
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (api.listen / --api)"))?;
        let bound = listener.local_addr()?;
        let tcp_server = match tcp_listen {
            Some(address) => {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| {
                        format!("cannot listen on {address} (ingest.tcp.listen / --tcp)")
                    })?;
                let tcp_bound = listener.local_addr()?;
                tracing::info!(%tcp_bound, tls = tls.is_some(), "TCP ingest listening");
                Some((
                    tcp_bound,
                    tokio::spawn(tcp::serve(listener, tcp_ingest, stopping.clone())),
                ))
            }
            None => None,
        };
        // The stop signals are caught before anyone learns the node listens.
        let stop_signal = shutdown_signal()?;
        let mut written = format!("{bound}\n");
        if let Some((tcp_bound, _)) = &tcp_server {
            written.push_str(&format!("tcp {tcp_bound}\n"));
        }
        if tls.is_some() {
            written.push_str("tls\n");
        }
        weft_ledger::files::write_private_atomically(&written_addr, written.as_bytes(), false)
            .with_context(|| format!("cannot write {}", written_addr.display()))?;
        tracing::info!(%bound, tls = tls.is_some(), "API listening");
        on_listen(Listening {
            api: bound,
            tls: tls.is_some(),
            tcp: tcp_server.as_ref().map(|(address, _)| *address),
        });
        tokio::spawn(async move {
            stop_signal.await;
            let _ = stop_serving.send(true);
        });
        if let Some(publisher) = publisher {
            tokio::spawn(publisher.run(publisher_head, stopping.clone()));
        }
        if let Some(anchorer) = anchorer {
            tokio::spawn(anchorer.run(stopping.clone()));
        }
        if let Some(timestamper) = timestamper {
            tokio::spawn(timestamper.run(stopping.clone()));
        }
        let others = axum::Router::new()
            .route("/openapi.json", axum::routing::get(openapi::openapi))
            .merge(graphql::routes(graphql, state.config.api.graphql_max_bytes))
            .merge(admin::routes(state.clone()));
        let app = api::router(state, others);
        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
        http::serve(
            listener,
            acceptor,
            app,
            http_limits,
            api_metrics,
            stopping.clone(),
        )
        .await;
        // Subscription sockets end at the stop signal with a `complete` message: wait for
        // them (bounded) before the runtime goes.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            open_sockets.acquire_many(u32::try_from(graphql_sockets).unwrap_or(u32::MAX)),
        )
        .await;
        if let Some((_, server)) = tcp_server {
            // Each connection answers the frames it took, then closes.
            let _ = server.await;
        }
        tracing::info!("API stopped; committing the last block");
        anyhow::Ok(())
    });
    // Ingest finishes the round in hand; then every sender of the queue is gone (the router's
    // with the runtime): the producer answers what it holds and ends.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for watcher in watchers {
        if watcher.join().is_err() {
            tracing::error!("a directory ingest thread failed");
        }
    }
    drop(runtime);
    // The journal thread ends with the API, then the producer with its last sender; the
    // settler takes the producer's last results.
    for thread in queue_threads {
        if thread.join().is_err() {
            tracing::error!("a queue journal thread failed");
        }
    }
    if let Some(producer) = producer
        && producer.join().is_err()
    {
        bail!("the block producer thread failed");
    }
    if let Some(network) = network {
        match network.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the network stopped with an error"),
            Err(_) => tracing::error!("the network thread failed"),
        }
    }
    queue::finish(&journal_path, &queue_tracker);
    let _ = std::fs::remove_file(&addr_file);
    let mut ledger = match ledger.lock() {
        Ok(ledger) => ledger,
        Err(poisoned) => poisoned.into_inner(),
    };
    ledger.flush()?;
    tracing::info!(height = ledger.head().header.height, "node stopped");
    served
}

/// Listens for SIGTERM and SIGINT from now on: the handlers are installed when this returns
/// (before the node says it listens), so a signal sent as soon as the node answers stops it
/// gracefully instead of killing it. The future resolves at the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}
