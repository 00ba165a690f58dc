//! `weft node …`: run the daemon on a home, ask a running node for its status.

use anyhow::{Context, Result};
use serde_json::json;

use crate::client::NodeClient;
use crate::commands::Context_;
use crate::commands::{Chain, register_resource};
use crate::home::Home;
use std::path::PathBuf;
use weft_core::model::{Address, Organization, Resource};
use weft_core::{ResourceId, SigningKey};
use weft_ledger::Signer;
use weft_ledger::state::StateView;
use weft_ledger::store::Store;

/// `weft node run [--api ADDR] [--watch DIR…]`: serves the home until SIGTERM/SIGINT.
pub fn run(ctx: &Context_, api: Option<String>, watch: Vec<PathBuf>) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut config = home.config()?;
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
    init_logging();
    let ingest_identity = ingest_identity(&home, &config)?;
    let options = weft_node::NodeOptions {
        db_path: home.db_path(),
        producer_key: home.producer_key()?,
        config,
        addr_file: home.dir().join("node.addr"),
        config_path: Some(home.dir().join("config.toml")),
        admin_token: weft_node::admin_token(&home.dir().join("admin.token"))?,
        authority_key: home.authority_key().ok(),
        ingest_identity,
    };
    let out = ctx.out;
    weft_node::run(options, |bound| {
        let url = format!("http://{bound}");
        out.emit(json!({"api": url}), || format!("weft node: API on {url}"));
    })
}

/// The resource directory ingest signs as: `ingest.identity`, or the node's own organisation
/// (registered on first use with the home's authority key, its id in keys/node-identity.id).
/// Runs before the node opens the ledger.
fn ingest_identity(
    home: &Home,
    config: &weft_node::NodeConfig,
) -> Result<Option<(ResourceId, SigningKey)>> {
    if config.ingest.watch.is_empty() {
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
        "directory ingest signs as the node's own organisation, which is registered with the \
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
    let mut chain = Chain::Local(Box::new(ledger));
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

/// The node to talk to: `--node URL`, else the address a node running on the home wrote.
pub fn client(ctx: &Context_) -> Result<NodeClient> {
    if let Some(url) = &ctx.node {
        return NodeClient::new(url);
    }
    let path = ctx.home.join("node.addr");
    let address = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no --node URL given and no node running on {} ({} is missing): start one with \
             `weft node run`",
            ctx.home.display(),
            path.display()
        )
    })?;
    NodeClient::new(&format!("http://{}", address.trim()))
}

/// `weft node status`.
pub fn status(ctx: &Context_) -> Result<()> {
    let node = client(ctx)?;
    let status = node.get("/v1/status")?;
    let text = format!(
        "node {}\n  chain      {}\n  type       {}\n  height     {}\n  head       {}\n  peers      {}\n  mempool    {}",
        node.base(),
        status["chain"].as_str().unwrap_or("?"),
        status["node_type"].as_str().unwrap_or("?"),
        status["height"],
        status["head"].as_str().unwrap_or("?"),
        status["peers"],
        status["mempool"],
    );
    ctx.out.emit(status, || text);
    Ok(())
}
