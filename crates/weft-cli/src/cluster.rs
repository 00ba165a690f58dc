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
    validators: &[usize],
    networks: usize,
    (thin, archive): (usize, usize),
    dir: &Path,
    timeout: Duration,
) -> Result<()> {
    let spec = |validators: usize| launcher::Spec {
        validators,
        thin,
        archive,
        timeout,
    };
    if networks == 1 {
        let [validators] = validators else {
            anyhow::bail!("--nodes gives one count per network: one network, one count");
        };
        let cluster = launcher::up(&weft()?, dir, &spec(*validators))?;
        ctx.out
            .emit(cluster_json(&cluster), || cluster_text(&cluster));
        return Ok(());
    }
    let specs: Vec<launcher::Spec> = match validators {
        [each] => vec![spec(*each); networks],
        counts if counts.len() == networks => counts.iter().map(|count| spec(*count)).collect(),
        counts => anyhow::bail!(
            "--nodes gives one count for every network or one per network: {} counts for {networks} \
             networks",
            counts.len()
        ),
    };
    let clusters = weft_client::networks::up(&weft()?, dir, &specs, timeout)?;
    ctx.out.emit(
        json!({"networks": clusters.iter().map(cluster_json).collect::<Vec<_>>()}),
        || {
            let mut text = clusters
                .iter()
                .map(cluster_text)
                .collect::<Vec<_>>()
                .join("\n");
            text.push_str(&format!(
                "\neach network's node0 witnesses the others, publishes to them and anchors them \
                 (`weft cluster status --dir {}`)",
                dir.display()
            ));
            text
        },
    );
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
    let stopped = if weft_client::networks::listed(dir) {
        let mut stopped = Vec::new();
        for network in weft_client::networks::read(dir)? {
            let name = network
                .file_name()
                .map(|name| name.to_string_lossy().to_string())
                .unwrap_or_default();
            for node in launcher::down(&network)? {
                stopped.push(format!("{name}/{node}"));
            }
        }
        stopped
    } else {
        launcher::down(dir)?
    };
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
    if weft_client::networks::listed(dir) {
        return show_networks(ctx, dir);
    }
    let survey = launcher::survey(dir)?;
    let value = serde_json::to_value(&survey)?;
    ctx.out.emit(value, || survey_text(&survey));
    if survey.healthy {
        Ok(())
    } else {
        Err(crate::output::Negative.into())
    }
}

/// `weft cluster status` of networks made with `--networks`: each network as above, and what
/// its `node0` says of its publishing and of the other chains it anchors. A network caught
/// signing two histories makes it a negative verdict too.
fn show_networks(ctx: &Globals, dir: &Path) -> Result<()> {
    let mut all = Vec::new();
    let mut texts = Vec::new();
    let mut healthy = true;
    for network in weft_client::networks::read(dir)? {
        let survey = launcher::survey(&network)?;
        let first = launcher::read_cluster(&network)?
            .nodes
            .first()
            .map(|node| node.api.clone())
            .unwrap_or_default();
        let asked = weft_api::client::NodeClient::new(&first, None, launcher::STATUS_TIMEOUT)
            .and_then(|client| {
                let publish: weft_api::PublishStatus = client.get("/v1/publish")?;
                let anchors: weft_api::AnchorsAnswer = client.get("/v1/anchors")?;
                Ok((publish, anchors))
            });
        let mut text = survey_text(&survey);
        let entangled = match &asked {
            Ok((publish, anchors)) => {
                text.push_str(&format!(
                    "\n  node0 says: {} of {} blocks witnessed by all of its {} witnesses",
                    publish.witnessed_size,
                    publish.head_size,
                    publish.witnesses.len()
                ));
                for chain in &anchors.chains {
                    healthy &= chain.evidence.is_empty();
                    text.push_str(&format!(
                        "\n    anchors {}: {} blocks{}",
                        chain.chain,
                        chain.size.unwrap_or(0),
                        if chain.evidence.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; CAUGHT signing two histories ({} pieces of evidence)",
                                chain.evidence.len()
                            )
                        }
                    ));
                }
                json!({"publish": publish, "anchors": anchors.chains})
            }
            Err(error) => {
                healthy = false;
                text.push_str(&format!(
                    "\n  node0 did not say how it is entangled: {error}"
                ));
                json!({"error": error.to_string()})
            }
        };
        healthy &= survey.healthy;
        let mut value = serde_json::to_value(&survey)?;
        value["entangled"] = entangled;
        all.push(value);
        texts.push(text);
    }
    ctx.out
        .emit(json!({"networks": all, "healthy": healthy}), || {
            texts.join("\n")
        });
    if healthy {
        Ok(())
    } else {
        Err(crate::output::Negative.into())
    }
}

/// One cluster's survey, for people.
fn survey_text(survey: &launcher::Survey) -> String {
    let launcher::Survey {
        ref chain,
        nodes: ref reports,
        running,
        answering,
        common_height: common,
        ref common_hash,
        agree,
        ..
    } = *survey;
    {
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
