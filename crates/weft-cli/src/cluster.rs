//! `weft cluster up|restart|down|status` and `weft net status`: weft-client's launcher of local
//! networks (`weft_client::cluster`), with the command line's output.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::json;
use weft_client::cluster::{self as launcher, Cluster};

use crate::context::Globals;

/// The binary the nodes run: this one.
fn weft() -> Result<std::path::PathBuf> {
    std::env::current_exe().context("cannot find the weft binary")
}

fn cluster_json(cluster: &Cluster) -> serde_json::Value {
    json!({
        "chain": cluster.chain,
        "nodes": cluster.nodes.iter().map(|node| json!({
            "name": node.name,
            "type": node.node_type,
            "api": node.api,
            "pid": node.pid,
            "home": node.home,
            "p2p": node.p2p,
            "key": node.key,
        })).collect::<Vec<_>>(),
    })
}

fn cluster_text(cluster: &Cluster) -> String {
    let mut text = format!("cluster of chain {:?}\n", cluster.chain);
    for node in &cluster.nodes {
        text.push_str(&format!(
            "  {:<10} {:<9} {}  pid {}\n",
            node.name, node.node_type, node.api, node.pid
        ));
    }
    text.trim_end().to_string()
}

pub fn up(
    ctx: &Globals,
    validators: usize,
    thin: usize,
    archive: usize,
    dir: &Path,
    timeout: Duration,
) -> Result<()> {
    let cluster = launcher::up(
        &weft()?,
        dir,
        &launcher::Spec {
            validators,
            thin,
            archive,
            timeout,
        },
    )?;
    ctx.out
        .emit(cluster_json(&cluster), || cluster_text(&cluster));
    Ok(())
}

pub fn restart(ctx: &Globals, dir: &Path, wanted: &str) -> Result<()> {
    let (node, was_running) = launcher::restart(&weft()?, dir, wanted)?;
    ctx.out.emit(
        json!({"name": node.name, "type": node.node_type, "api": node.api, "pid": node.pid,
               "was_running": was_running}),
        || {
            format!(
                "{} {} at {} (pid {})",
                if was_running { "restarted" } else { "started" },
                node.name,
                node.api,
                node.pid
            )
        },
    );
    Ok(())
}

pub fn down(ctx: &Globals, dir: &Path) -> Result<()> {
    let stopped = launcher::down(dir)?;
    ctx.out.emit(json!({"stopped": stopped}), || {
        format!(
            "stopped {} node(s); their homes stay in {}",
            stopped.len(),
            dir.display()
        )
    });
    Ok(())
}

/// `weft cluster status`: every node of the cluster, whether it runs and answers, its height
/// and sync state, and whether the nodes hold the same block at the highest height all of them
/// have. A node down or not answering, or nodes that disagree, make it a negative verdict.
pub fn show(ctx: &Globals, dir: &Path) -> Result<()> {
    let survey = launcher::survey(dir)?;
    let launcher::Survey {
        ref chain,
        nodes: ref reports,
        running,
        answering,
        common_height: common,
        ref common_hash,
        agree,
        healthy,
    } = survey;
    let value = serde_json::to_value(&survey)?;
    let human = || {
        let mut text = format!(
            "cluster of chain {:?}: {running} of {} nodes running, {answering} answering\n",
            chain,
            reports.len()
        );
        for report in reports {
            let state = if !report.running {
                "stopped".to_string()
            } else if !report.answering {
                format!(
                    "not answering: {}",
                    report.error.as_deref().unwrap_or("no answer")
                )
            } else {
                format!(
                    "height {:<7} {:<12} peers {}",
                    report.height.unwrap_or(0),
                    report.sync.as_deref().unwrap_or("?"),
                    report.peers.unwrap_or(0)
                )
            };
            text.push_str(&format!(
                "  {:<10} {:<9} pid {:<8} {}  {state}\n",
                report.name, report.node_type, report.pid, report.api
            ));
        }
        match (common, agree) {
            (None, _) => text.push_str("  no node answered"),
            (Some(height), true) => text.push_str(&format!(
                "  every answering node holds block {height} {}",
                common_hash.as_deref().unwrap_or("?")
            )),
            (Some(height), false) => {
                text.push_str(&format!("  THE NODES DISAGREE on block {height}:"));
                for report in reports {
                    if let Some(hash) = &report.common_hash {
                        text.push_str(&format!("\n    {:<10} {hash}", report.name));
                    }
                }
            }
        }
        text
    };
    ctx.out.emit(value, human);
    if healthy {
        Ok(())
    } else {
        Err(crate::output::Negative.into())
    }
}

pub fn status(ctx: &Globals) -> Result<()> {
    let node = crate::context::node_client(ctx)?;
    let status = node.typed().net_status()?;
    let list = |keys: &[String]| keys.join("\n               ");
    let next = match &status.next_validators {
        None => String::new(),
        Some(next) => format!(
            "\n  from height {} the validators are\n               {}",
            next.from_height,
            list(&next.validators)
        ),
    };
    let key = &status.key;
    // Nobody heard from: the likely causes, in the order an operator checks them.
    let hint = if status.sync == "no peers" {
        format!(
            "\n  hint         no peer was heard from in the last 5 s: are the seeds in config.toml \
             up and reachable? Peers refuse a key that is not admitted: an authority admits \
             this one with `weft net admit {key} --name NAME`."
        )
    } else {
        String::new()
    };
    let cut_off: String = status
        .cut_off
        .iter()
        .map(|peer| {
            format!(
                "\n  cut off      {} until {}: {}",
                peer.key,
                crate::commands::format_time(peer.until_ms),
                peer.reason
            )
        })
        .collect();
    let online = status.online.len();
    let engine = if status.waiting_for.is_empty() {
        status.engine.clone()
    } else {
        format!(
            "{} ({}: it starts once they answer, at most network.start_wait_ms after start)",
            status.engine,
            status.waiting_for.join(", ")
        )
    };
    let text = format!(
        "network of {}\n  key          {key}\n  validator    {}\n  engine       {engine}\n  height       {} (finalized {}, epoch {}, view {}, notarized view {})\n  sync         {}\n  connections  {} of {} dialed peers heard from (the validators and {} of {} others picked)\n  picked       {}\n  online       {online} peers (heard from here or by a peer)\n  addresses    {} peers whose address is known\n  mempool      {}\n  evidence     {}\n  peers        {}\n  validators   {}{next}{cut_off}{hint}",
        node.base(),
        status.validator,
        status.height,
        status.finalized_height,
        status.epoch,
        status.view,
        status.notarized_view,
        status.sync,
        status.dialed_connected,
        status.dialed,
        status.picked.len(),
        status.connections_wanted,
        list(&status.picked),
        status.addresses,
        status.mempool,
        status.evidence,
        list(&status.peers),
        list(&status.validators),
    );
    ctx.out.emit(serde_json::to_value(&status)?, || text);
    Ok(())
}
