//! Several companies' networks on loopback that keep each other honest (docs/anchoring.md):
//! `weft cluster up --networks N`. Each network is a cluster of its own (`DIR/a`, `DIR/b`, …,
//! each with its cluster.json, so `weft cluster status|restart|down --dir DIR/a` work on one);
//! `DIR/networks.json` lists them. The first validator of each network (`node0`):
//!
//! - witnesses every other network (`[witness]`, with a key made here so the others can name it);
//! - publishes its own chain's checkpoints to the other networks' witnesses, all of which must
//!   cosign (`[publish]`, with its network's other validators' signatures gathered for the
//!   quorum);
//! - anchors every other network on its own chain (`[anchor]`), comparing what it anchored with
//!   the third networks' anchors of the same chain (`peers`), so a split view is caught.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use weft_core::SigningKey;

use crate::cluster::{self, Cluster, Spec};
use crate::home::write_key;

/// Most networks in one directory.
pub const MAX_NETWORKS: usize = 8;
/// How often each `node0` publishes, fetches the others' checkpoints to anchor, ms.
const INTERVAL_MS: u64 = 1000;

/// `DIR/networks.json`: the networks' directories, relative to DIR.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Listing {
    networks: Vec<String>,
}

fn listing(dir: &Path) -> PathBuf {
    dir.join(cluster::NETWORKS_FILE)
}

/// Does `dir` hold networks made by [`up`]?
pub fn listed(dir: &Path) -> bool {
    listing(dir).exists()
}

/// The directories of the networks in `dir`.
pub fn read(dir: &Path) -> Result<Vec<PathBuf>> {
    let path = listing(dir);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let listed: Listing = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a list of networks", path.display()))?;
    Ok(listed.networks.iter().map(|name| dir.join(name)).collect())
}

/// What each network's `node0` needs to be named by the others.
struct Member {
    chain: String,
    /// `node0`'s home.
    home: PathBuf,
    /// Every validator's API, `node0`'s first.
    apis: Vec<String>,
    /// The trust root document (JSON).
    root: String,
    witness_name: String,
    witness_key: String,
}

/// Makes and starts `specs.len()` networks (2 to [`MAX_NETWORKS`]) in `dir` (new or empty),
/// entangled with each other; returns once every node of every network has committed a block,
/// or fails having stopped every node it started and left nothing half-written.
pub fn up(weft: &Path, dir: &Path, specs: &[Spec], timeout: Duration) -> Result<Vec<Cluster>> {
    if specs.len() < 2 || specs.len() > MAX_NETWORKS {
        bail!(
            "--networks must be between 2 and {MAX_NETWORKS}, got {}",
            specs.len()
        );
    }
    for spec in specs {
        spec.check()?;
    }
    let dir = cluster::new_dir(dir)?;
    let names: Vec<String> = (0..specs.len())
        .map(|index| char::from(b'a' + index as u8).to_string())
        .collect();
    let made = (|| -> Result<Vec<Cluster>> {
        let mut clusters = Vec::new();
        for (name, spec) in names.iter().zip(specs) {
            let sub = dir.join(name);
            std::fs::create_dir_all(&sub)?;
            let chain = cluster::chain_name(&format!("company-{name}-"), &dir);
            clusters.push(cluster::make(&sub, &chain, spec)?);
        }
        entangle(&clusters)?;
        Ok(clusters)
    })();
    let mut clusters = made.inspect_err(|_| cluster::empty(&dir))?;
    let text = serde_json::to_string_pretty(&Listing {
        networks: names.clone(),
    })?;
    std::fs::write(listing(&dir), text)?;
    for index in 0..clusters.len() {
        let sub = dir.join(&names[index]);
        if let Err(error) = cluster::start(weft, &sub, &mut clusters[index], timeout) {
            // The networks started before are stopped too: nothing is left running.
            for started in &clusters[..index] {
                for node in &started.nodes {
                    cluster::stop(node.pid);
                }
            }
            return Err(error);
        }
    }
    Ok(clusters)
}

/// Writes each network's `node0` configuration: witness, publish to and anchor every other.
fn entangle(clusters: &[Cluster]) -> Result<()> {
    let members = clusters
        .iter()
        .map(|cluster| {
            let validators: Vec<&cluster::ClusterNode> = cluster
                .nodes
                .iter()
                .filter(|node| node.node_type == "validator")
                .collect();
            let home = validators[0].home.clone();
            let pinned = crate::trust::pinned(&home)?;
            let root = pinned
                .first()
                .context("a network's first home pins its own trust root")?;
            let witness_name = format!("witness.{}", cluster.chain);
            let key = SigningKey::generate()?;
            write_key(&home.join("keys").join("witness.key"), &key)?;
            Ok(Member {
                chain: cluster.chain.clone(),
                home,
                apis: validators.iter().map(|node| node.api.clone()).collect(),
                root: serde_json::to_string_pretty(&root.root.document())?,
                witness_key: weft_ledger::cosigned::verifier_key(&witness_name, &key.public_key()),
                witness_name,
            })
        })
        .collect::<Result<Vec<Member>>>()?;
    for (index, member) in members.iter().enumerate() {
        let others: Vec<&Member> = members
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, other)| other)
            .collect();
        let dir = member.home.join("others");
        std::fs::create_dir_all(&dir)?;
        for other in &others {
            std::fs::write(dir.join(format!("{}.json", other.chain)), &other.root)?;
        }
        let trust = |other: &Member| format!("others/{}.json", other.chain);
        let path = member.home.join("config.toml");
        let text = std::fs::read_to_string(&path)?;
        let (comment, _) = text.split_once('\n').unwrap_or_default();
        let mut config: weft_node::NodeConfig =
            toml::from_str(&text).with_context(|| format!("{} as written", path.display()))?;
        config.witness.enabled = true;
        config.witness.name = member.witness_name.clone();
        config.witness.origins = others.iter().map(|other| trust(other)).collect();
        config.publish.enabled = true;
        config.publish.witnesses = others
            .iter()
            .map(|other| weft_node::config::PublishWitness {
                url: other.apis[0].clone(),
                key: other.witness_key.clone(),
                ca: None,
            })
            .collect();
        config.publish.policy = 0;
        config.publish.interval_ms = INTERVAL_MS;
        config.publish.validators = member.apis[1..].to_vec();
        config.anchor.enabled = true;
        config.anchor.interval_ms = INTERVAL_MS;
        config.anchor.chains = others
            .iter()
            .map(|other| weft_node::config::AnchoredChainConfig {
                trust: trust(other),
                urls: other.apis.clone(),
                // The third networks, which anchor the same chain.
                peers: others
                    .iter()
                    .filter(|third| third.chain != other.chain)
                    .map(|third| third.apis[0].clone())
                    .collect(),
                ca: None,
            })
            .collect();
        config.validate()?;
        std::fs::write(
            &path,
            format!(
                "{comment}\n# Entangled with {} by `weft cluster up --networks`.\n{}",
                others
                    .iter()
                    .map(|other| other.chain.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                toml::to_string(&config)?
            ),
        )?;
    }
    Ok(())
}
