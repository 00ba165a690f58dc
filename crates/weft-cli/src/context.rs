//! What every command gets ([`Globals`]), and where the node it talks to is: `--node URL`, or the
//! address a node running on the home wrote to `HOME/node.addr`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::client::NodeClient;
use crate::output::Output;

/// What every command gets: the global options (`--home`, `--node`, `--ca`) and the output
/// (`--json`).
#[derive(Debug, Clone)]
pub struct Globals {
    pub home: PathBuf,
    /// The home was named (`--home` or `WEFT_HOME`), or the default home (`./.weft`) exists:
    /// commands whose ledger use is optional (`weft gcode seal`, `verify`, `open`) then use it.
    pub home_given: bool,
    /// `--node URL`: act through a running node's API instead of the home's ledger (the home
    /// still holds the keys that sign).
    pub node: Option<String>,
    /// `--ca FILE`: the certificate a TLS node must present (or its CA's).
    pub ca: Option<PathBuf>,
    pub out: Output,
}

/// What a node running on the home wrote to HOME/node.addr: the API address, then `tcp ADDR`
/// and `tls` lines.
struct Written {
    api: String,
    tcp: Option<String>,
    tls: bool,
}

fn written(ctx: &Globals) -> Result<Written> {
    let path = ctx.home.join("node.addr");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no --node URL given and no node running on {} ({} is missing): start one with \
             `weft node run`",
            ctx.home.display(),
            path.display()
        ),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut lines = text.lines().map(str::trim);
    let api = lines.next().unwrap_or_default().to_string();
    let (mut tcp, mut tls) = (None, false);
    for line in lines {
        if let Some(address) = line.strip_prefix("tcp ") {
            tcp = Some(address.trim().to_string());
        }
        tls |= line == "tls";
    }
    Ok(Written { api, tcp, tls })
}

/// The node to talk to: `--node URL`, else the address a node running on the home wrote.
pub fn node_client(ctx: &Globals) -> Result<NodeClient> {
    if let Some(url) = &ctx.node {
        return NodeClient::new(url, ctx.ca.as_deref());
    }
    let written = written(ctx)?;
    let scheme = if written.tls { "https" } else { "http" };
    NodeClient::new(&format!("{scheme}://{}", written.api), ctx.ca.as_deref())
}

/// The TCP ingest address of the node running on the home.
pub fn tcp_address(ctx: &Globals) -> Result<String> {
    written(ctx)?.tcp.ok_or_else(|| {
        anyhow::anyhow!(
            "the node on {} does not listen for TCP ingest: give --to HOST:PORT, or start it \
             with --tcp ADDR (or ingest.tcp.listen)",
            ctx.home.display()
        )
    })
}
