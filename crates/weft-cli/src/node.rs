//! `weft node …`: run the daemon on a home, ask a running node for its status.

use anyhow::{Context, Result};
use serde_json::json;

use crate::client::NodeClient;
use crate::commands::Context_;
use crate::home::Home;

/// `weft node run [--api ADDR]`: serves the home until SIGTERM/SIGINT.
pub fn run(ctx: &Context_, api: Option<String>) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut config = home.config()?;
    if let Some(api) = api {
        config.api.listen = api;
        config.validate().context("--api")?;
    }
    init_logging();
    let options = weft_node::NodeOptions {
        db_path: home.db_path(),
        producer_key: home.producer_key()?,
        config,
        addr_file: home.dir().join("node.addr"),
        config_path: Some(home.dir().join("config.toml")),
        admin_token: weft_node::admin_token(&home.dir().join("admin.token"))?,
        authority_key: home.authority_key().ok(),
    };
    let out = ctx.out;
    weft_node::run(options, |bound| {
        let url = format!("http://{bound}");
        out.emit(json!({"api": url}), || format!("weft node: API on {url}"));
    })
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
