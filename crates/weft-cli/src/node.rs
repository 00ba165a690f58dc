//! `weft node …`: run the daemon on a home, ask a running node for its status.

use anyhow::{Context, Result};
use serde_json::json;

use crate::chain::LocalChain;
use crate::chain::register_resource;
use crate::context::Globals;
use std::path::PathBuf;
use weft_client::home::Home;
use weft_core::model::{Address, Organization, Resource};
use weft_core::{ResourceId, SigningKey};
use weft_ledger::Signer;
use weft_ledger::state::StateView;
use weft_ledger::store::Store;

/// `weft node run [--api ADDR] [--watch DIR…]`: serves the home until SIGTERM/SIGINT.
pub fn run(
    ctx: &Globals,
    api: Option<String>,
    watch: Vec<PathBuf>,
    tcp: Option<String>,
) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let file_config = home.config()?;
    let mut config = file_config.clone();
    if let Some(tcp) = tcp {
        config.ingest.tcp.listen = tcp;
        config.validate().context("--tcp")?;
    }
    if let Some(api) = api {
        config.api.listen = api;
        config.validate().context("--api")?;
    }
    for dir in watch {
        let dir = std::fs::canonicalize(&dir)
            .with_context(|| format!("--watch {}: no such directory", dir.display()))?;
        config
            .ingest
            .watch
            .push(weft_node::config::WatchSource::with_defaults(dir));
        config.validate().context("--watch")?;
    }
    home.ensure_trust()?;
    init_logging();
    let ingest_identity = ingest_identity(&home, &config)?;
    let in_home = |path: &str| {
        let path = PathBuf::from(path.trim());
        if path.is_absolute() {
            path
        } else {
            home.dir().join(path)
        }
    };
    let tls_files = config
        .tls_enabled()
        .then(|| (in_home(&config.tls.cert), in_home(&config.tls.key)));
    let options = weft_node::NodeOptions {
        db_path: home.db_path(),
        producer_key: home.producer_key()?,
        config,
        addr_file: home.dir().join("node.addr"),
        config_path: Some(home.dir().join("config.toml")),
        admin_token: weft_node::secret_token(&home.dir().join("admin.token"))?,
        authority_key: home.authority_key().ok(),
        ingest_identity,
        ingest_token: weft_node::secret_token(&home.dir().join("ingest.token"))?,
        tls_files,
        file_config,
    };
    let out = ctx.out;
    weft_node::run(options, |listening| {
        let scheme = if listening.tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", listening.api);
        let tcp = listening.tcp.map(|address| address.to_string());
        out.announce(
            json!({"api": url, "tcp": tcp, "tls": listening.tls}),
            || {
                let mut text = format!("weft node: API on {url}");
                if let Some(tcp) = &tcp {
                    text.push_str(&format!(", TCP ingest on {tcp}"));
                }
                if listening.tls {
                    text.push_str(" (TLS)");
                }
                text
            },
        );
    })
}

/// The resource directory ingest signs as: `ingest.identity`, or the node's own organisation
/// (registered on first use with the home's authority key, its id in keys/node-identity.id).
/// Runs before the node opens the ledger.
fn ingest_identity(
    home: &Home,
    config: &weft_node::NodeConfig,
) -> Result<Option<(ResourceId, SigningKey)>> {
    if config.ingest.watch.is_empty() && config.ingest.tcp.listen.trim().is_empty() {
        return Ok(None);
    }
    if !config.ingest.identity.is_empty() {
        let id = ResourceId::from_hex(config.ingest.identity.trim()).context("ingest.identity")?;
        let key = home.resource_key(&id).context("ingest.identity")?;
        return Ok(Some((id, key)));
    }
    let id_path = home.keys_dir().join("node-identity.id");
    let ledger = home.ledger()?;
    if let Ok(text) = std::fs::read_to_string(&id_path) {
        let id =
            ResourceId::from_hex(text.trim()).with_context(|| format!("{}", id_path.display()))?;
        if ledger.store().snapshot()?.resource(&id)?.is_some() {
            return Ok(Some((id, home.resource_key(&id)?)));
        }
    }
    let authority = home.authority_key().context(
        "directory and TCP ingest sign as the node's own organisation, which is registered with the \
         home's authority key; this home has none: set ingest.identity to a resource whose key \
         is in the home",
    )?;
    let label = home.producer_key()?.public_key().to_hex();
    let resource = Resource::Organization(Organization {
        name: Some(format!("weft node {}", &label[..12])),
        website: None,
        address: Address {
            town: "unknown".into(),
            country: "ZZ".into(),
            ..Address::default()
        },
    });
    // The id file is written with the key, before the registration is submitted: a
    // registration that committed is always found again at the next start.
    let mut chain = LocalChain::new(ledger, home.dir.clone());
    let (id, _) = register_resource(
        home,
        &mut chain,
        Signer::Authority,
        &authority,
        resource,
        |id| {
            let temporary = id_path.with_extension("tmp");
            std::fs::write(&temporary, format!("{id}\n"))?;
            std::fs::rename(&temporary, &id_path)?;
            Ok(())
        },
    )
    .context("cannot register the node's ingest identity")?;
    eprintln!("registered the node's ingest identity {id}");
    Ok(Some((id, home.resource_key(&id)?)))
}

/// Logs to standard error; `WEFT_LOG` = error | warn | info (default) | debug | trace.
fn init_logging() {
    let level = std::env::var("WEFT_LOG")
        .ok()
        .and_then(|text| text.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// `weft tail`: prints each new block as it is committed, polling the node's head.
pub fn tail(
    ctx: &Globals,
    from: Option<u64>,
    count: Option<u64>,
    poll_ms: u64,
    trust: &[PathBuf],
) -> Result<()> {
    if !(10..=60_000).contains(&poll_ms) {
        anyhow::bail!("--poll-ms must be between 10 and 60000, got {poll_ms}");
    }
    let roots = crate::commands::roots(ctx, trust)?;
    let client = crate::context::node_client(ctx)?;
    let node = client.typed();
    let place = node.base().to_string();
    let pinned = crate::commands::root_for(&roots, &node.status()?.chain_id.to_hex())?;
    let mut next = match from {
        Some(height) => height,
        None => node.status()?.height + 1,
    };
    let mut shown = 0u64;
    while count.is_none_or(|count| shown < count) {
        match node.block(next)? {
            Some(block) => {
                // Shown only once the block is final on the chain of the trust root, and is the
                // one the node described.
                let lie = |what: String| -> anyhow::Error {
                    crate::output::Untrusted(format!(
                        "{place} gave block {next} that does not check against the trust root: {what}"
                    ))
                    .into()
                };
                let answer = node.checkpoint(Some(next + 1))?;
                let (signed, _, finality) =
                    crate::commands::final_block(answer, &pinned.root).map_err(lie)?;
                let header = &signed.header;
                if header.hash() != block.hash
                    || header.height != block.height
                    || header.timestamp != block.timestamp
                    || header.previous_digest != block.previous
                    || header.merkle_root != block.merkle_root
                    || u64::from(header.tx_count) != block.tx_count
                    || header.producer != block.producer
                {
                    return Err(lie("its fields are not those of its final header".into()));
                }
                let text = format!(
                    "block {:>8}  {}  {:>6} tx  {}  {finality}",
                    block.height, block.time_utc, block.tx_count, block.hash,
                );
                let mut value = serde_json::to_value(&block)?;
                if let Some(object) = value.as_object_mut() {
                    // One line per block: the ids are a `GET /v1/blocks/H` away.
                    object.remove("transactions");
                    object.insert("finality".into(), serde_json::Value::from(finality));
                }
                if ctx.out.json {
                    crate::output::outln!("{}", serde_json::to_string(&value)?);
                } else {
                    crate::output::outln!("{text}");
                }
                shown += 1;
                next += 1;
            }
            None => std::thread::sleep(std::time::Duration::from_millis(poll_ms)),
        }
    }
    Ok(())
}

/// `weft node status`.
pub fn status(ctx: &Globals) -> Result<()> {
    let node = crate::context::node_client(ctx)?;
    let status = node.typed().status()?;
    let text = format!(
        "node {}\n  chain      {}\n  type       {}\n  height     {}\n  head       {}\n  peers      {}\n  mempool    {}",
        node.base(),
        status.chain,
        status.node_type,
        status.height,
        status.head,
        status.peers,
        status.mempool,
    );
    ctx.out.emit(serde_json::to_value(&status)?, || text);
    Ok(())
}
