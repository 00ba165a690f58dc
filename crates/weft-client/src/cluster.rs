//! Local networks of real node processes on loopback: made, started, waited for, surveyed,
//! restarted and stopped. `weft cluster` is these functions with output; the multi-process
//! network tests call them directly.
//!
//! [`up`] makes one home per node under a directory (`node0` … validators, then `thin0` …,
//! `archive0` …) with generated keys, one genesis naming every validator, and a `[network]`
//! section naming every other node; it starts `weft node run` for each, detached, and writes
//! `DIR/cluster.json`, which [`restart`], [`down`] and [`survey`] read.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use weft_core::SigningKey;

use crate::home::{Home, write_key};

/// Most nodes of each kind in one local cluster.
const MAX_NODES: usize = 32;
/// How long a started node may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// One node of a cluster, as `cluster.json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterNode {
    pub name: String,
    /// `validator`, `thin` or `archive`.
    #[serde(rename = "type")]
    pub node_type: String,
    pub api: String,
    pub pid: u32,
    pub home: PathBuf,
    /// Peer-to-peer address.
    pub p2p: String,
    /// The node's public key (its identity on the network).
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub chain: String,
    pub nodes: Vec<ClusterNode>,
}

/// The file that lists the networks of `weft cluster up --networks` (`crate::networks`).
pub(crate) const NETWORKS_FILE: &str = "networks.json";

/// The file that lists a cluster's nodes.
fn cluster_file(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

/// The cluster `dir` holds.
pub fn read_cluster(dir: &Path) -> Result<Cluster> {
    let path = cluster_file(dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no cluster at {} (no cluster.json): start one with `weft cluster up --dir {}`",
            dir.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a cluster file", path.display()))
}

/// Writes `cluster` to `dir`'s cluster.json (whole: a temporary file renamed over it).
pub fn write_cluster(dir: &Path, cluster: &Cluster) -> Result<()> {
    let path = cluster_file(dir);
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_string_pretty(cluster)?)?;
    std::fs::rename(&temporary, &path)?;
    Ok(())
}

/// A free loopback port (bound, then released for the node to take), below the kernel's range
/// of ports for outgoing connections when it can: a port from that range (what binding port 0
/// gives) can be taken by a connection one node makes before the node it was meant for binds it
/// (a cluster's first nodes dial the others as they start: `weft cluster up` failed so about
/// once in 45 starts, "Address already in use"). No port is given twice by one process.
pub fn free_port() -> Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let outgoing_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    const LOWEST: u16 = 10_000;
    if outgoing_from > LOWEST + 1_000 {
        for _ in 0..200 {
            let mut bytes = [0u8; 2];
            getrandom::fill(&mut bytes)
                .map_err(|error| anyhow::anyhow!("no randomness from the system: {error}"))?;
            let port = LOWEST + u16::from_le_bytes(bytes) % (outgoing_from - LOWEST);
            if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.push(port);
                return Ok(port);
            }
        }
    }
    for _ in 0..100 {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
        let port = listener.local_addr()?.port();
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    bail!("no free loopback port found in 300 tries")
}

/// What [`up`] makes: how many nodes of each kind, and how long the network may take to commit
/// its first block.
#[derive(Debug, Clone)]
pub struct Spec {
    pub validators: usize,
    pub thin: usize,
    pub archive: usize,
    pub timeout: Duration,
}

/// Refuses a `dir` that holds a cluster or anything else; creates it and returns it resolved.
pub(crate) fn new_dir(dir: &Path) -> Result<PathBuf> {
    if cluster_file(dir).exists() || dir.join(NETWORKS_FILE).exists() {
        bail!(
            "{} already holds a cluster: `weft cluster down --dir {}` stops it; remove the \
             directory for a new one",
            dir.display(),
            dir.display()
        );
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: choose a new directory for the cluster",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

/// A chain name from a directory's name: `prefix` and its letters, digits and dashes.
pub(crate) fn chain_name(prefix: &str, dir: &Path) -> String {
    format!(
        "{prefix}{}",
        dir.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("local")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect::<String>()
    )
}

/// Makes and starts a cluster in `dir` (new or empty), its nodes run by `weft` (the binary's
/// path); returns once every node has committed a block, or fails having stopped every node it
/// started (nothing half-started is left running).
pub fn up(weft: &Path, dir: &Path, spec: &Spec) -> Result<Cluster> {
    spec.check()?;
    let dir = new_dir(dir)?;
    let chain = chain_name("cluster-", &dir);
    let mut cluster = make(&dir, &chain, spec).inspect_err(|_| empty(&dir))?;
    start(weft, &dir, &mut cluster, spec.timeout)?;
    Ok(cluster)
}

/// Removes everything in `dir` (which was new or empty): nothing half-written is left.
pub(crate) fn empty(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Spec {
    pub(crate) fn check(&self) -> Result<()> {
        if self.validators == 0 || self.validators > MAX_NODES {
            bail!(
                "--nodes must be between 1 and {MAX_NODES}, got {}",
                self.validators
            );
        }
        if self.thin > MAX_NODES || self.archive > MAX_NODES {
            bail!("--thin and --archive must be at most {MAX_NODES}");
        }
        Ok(())
    }
}

/// Writes the homes of a cluster of chain `chain` in `dir` (each node's keys, block 0, config);
/// starts nothing. The nodes' pids are 0.
pub(crate) fn make(dir: &Path, chain: &str, spec: &Spec) -> Result<Cluster> {
    let Spec {
        validators,
        thin,
        archive,
        ..
    } = *spec;
    struct Plan {
        name: String,
        kind: &'static str,
        key: SigningKey,
        api: u16,
        p2p: u16,
    }
    let mut plans = Vec::new();
    for (kind, count, prefix) in [
        ("validator", validators, "node"),
        ("thin", thin, "thin"),
        ("archive", archive, "archive"),
    ] {
        for index in 0..count {
            plans.push(Plan {
                name: format!("{prefix}{index}"),
                kind,
                key: SigningKey::generate()?,
                api: free_port()?,
                p2p: free_port()?,
            });
        }
    }
    let authority = SigningKey::generate()?;
    let producers: Vec<_> = plans
        .iter()
        .filter(|plan| plan.kind == "validator")
        .map(|plan| plan.key.public_key())
        .collect();
    let seeds: Vec<String> = plans
        .iter()
        .filter(|plan| plan.kind == "validator")
        .map(|plan| format!("{}@127.0.0.1:{}", plan.key.public_key(), plan.p2p))
        .collect();
    // Nodes that do not vote also dial the archive nodes: a thin node fetches whole
    // transactions from them, and any follower can catch up from them.
    let archive_seeds: Vec<String> = plans
        .iter()
        .filter(|plan| plan.kind == "archive")
        .map(|plan| format!("{}@127.0.0.1:{}", plan.key.public_key(), plan.p2p))
        .collect();
    let followers: Vec<String> = plans
        .iter()
        .filter(|plan| plan.kind != "validator")
        .map(|plan| plan.key.public_key().to_string())
        .collect();

    // The homes are written before any node starts.
    // The first validator's home makes block 0; every other home starts from a copy of it.
    let first = dir.join(&plans[0].name);
    {
        let (_home, ledger) =
            Home::init_network(&first, chain, 3600, &authority, &plans[0].key, producers)?;
        drop(ledger);
    }
    for plan in &plans {
        let home = dir.join(&plan.name);
        if plan.name != plans[0].name {
            weft_ledger::files::create_private_dir_all(&home.join("keys"))?;
            write_key(&home.join("keys").join("authority.key"), &authority)?;
            write_key(&home.join("keys").join("producer.key"), &plan.key)?;
            std::fs::copy(first.join("ledger.redb"), home.join("ledger.redb"))
                .context("cannot copy the genesis ledger")?;
        }
        let mut config = weft_node::NodeConfig::default();
        config.node.node_type = match plan.kind {
            "thin" => weft_node::NodeType::Thin,
            "archive" => weft_node::NodeType::Archive,
            _ => weft_node::NodeType::Full,
        };
        config.api.listen = format!("127.0.0.1:{}", plan.api);
        config.network.enabled = true;
        config.network.listen = format!("127.0.0.1:{}", plan.p2p);
        config.network.seeds = seeds.clone();
        if plan.kind != "validator" {
            let own = plan.key.public_key().to_string();
            config.network.seeds.extend(
                archive_seeds
                    .iter()
                    .filter(|seed| !seed.starts_with(&own))
                    .cloned(),
            );
        }
        config.network.followers = followers.clone();
        config.validate()?;
        let text = format!(
            "# weft cluster node {} ({}): written by `weft cluster up`.\n{}",
            plan.name,
            plan.kind,
            toml::to_string(&config)?
        );
        std::fs::write(home.join("config.toml"), text)?;
    }
    Ok(Cluster {
        chain: chain.to_string(),
        nodes: plans
            .iter()
            .map(|plan| ClusterNode {
                name: plan.name.clone(),
                node_type: plan.kind.to_string(),
                api: format!("http://127.0.0.1:{}", plan.api),
                pid: 0,
                home: dir.join(&plan.name),
                p2p: format!("127.0.0.1:{}", plan.p2p),
                key: plan.key.public_key().to_string(),
            })
            .collect(),
    })
}

/// Starts every node of `cluster` (its homes made in `dir`) and waits until each has committed
/// a block; on failure stops every node it started.
pub(crate) fn start(
    weft: &Path,
    dir: &Path,
    cluster: &mut Cluster,
    timeout: Duration,
) -> Result<()> {
    // Every node is started before any is waited for: the validators need each other.
    for node in &mut cluster.nodes {
        node.pid = spawn(weft, &node.home)?;
    }
    write_cluster(dir, cluster)?;
    let started = cluster
        .nodes
        .iter()
        .try_for_each(wait_listening)
        .and_then(|()| wait_first_block(cluster, timeout));
    if let Err(error) = started {
        // Nothing is left running half-started.
        for node in &cluster.nodes {
            stop(node.pid);
        }
        return Err(error);
    }
    Ok(())
}

/// Starts `weft node run` on `home`, detached (its own process group, output to
/// HOME/node.log); returns its pid.
fn spawn(weft: &Path, home: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("node.log"))
        .with_context(|| format!("cannot open {}", home.join("node.log").display()))?;
    let _ = std::fs::remove_file(home.join("node.addr"));
    let child = Command::new(weft)
        .arg("--home")
        .arg(home)
        .args(["node", "run"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start a node")?;
    Ok(child.id())
}

/// Is process `pid` alive (not gone, not a zombie whose threads are all gone)?
pub fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // A zombie (exited, not yet reaped) is not alive: read its state. Its main thread turns
    // zombie before its other threads are gone, and those still hold its files (the ledger's
    // lock): it is gone only when no thread is left but the zombie.
    let proc = format!("/proc/{}", pid.as_raw_nonzero());
    if let Ok(stat) = std::fs::read_to_string(format!("{proc}/stat")) {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        let threads = std::fs::read_dir(format!("{proc}/task")).map_or(0, Iterator::count);
        if state == Some("Z") && threads <= 1 {
            return false;
        }
    }
    rustix::process::test_kill_process(pid).is_ok()
}

/// Sends `signal` to process `pid`, if there is one.
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Waits until `node` listens (its node.addr is written), or fails if it exited.
/// Waits until `node` listens (its node.addr is written), or fails if it exited.
pub fn wait_listening(node: &ClusterNode) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if node.home.join("node.addr").exists() {
            return Ok(());
        }
        if !alive(node.pid) {
            bail!(
                "node {} exited at start; see {}",
                node.name,
                node.home.join("node.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "node {} did not listen within {} s; see {}",
        node.name,
        START_TIMEOUT.as_secs(),
        node.home.join("node.log").display()
    )
}

/// Waits until every node has committed a block: the validators agree and the others follow
/// them, so the network answers a submission at once. Fails after `timeout`, naming the nodes
/// still without one, or as soon as a node exited.
fn wait_first_block(cluster: &Cluster, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut behind = Vec::new();
        for node in &cluster.nodes {
            if !alive(node.pid) {
                bail!(
                    "node {} exited before the network committed its first block; see {}",
                    node.name,
                    node.home.join("node.log").display()
                );
            }
            let height = weft_api::client::NodeClient::new(&node.api, None, STATUS_TIMEOUT)
                .and_then(|client| client.status())
                .ok()
                .map(|status| status.height);
            if height.is_none_or(|height| height == 0) {
                behind.push(node.name.as_str());
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            bail!(
                "the nodes started but {} committed no block within {} s: the validators did \
                 not agree on one (are they connected? see each node's node.log under {}); \
                 every node is stopped",
                behind.join(", "),
                timeout.as_secs(),
                cluster
                    .nodes
                    .first()
                    .and_then(|node| node.home.parent())
                    .map_or_else(
                        || "the cluster directory".into(),
                        |dir| dir.display().to_string()
                    )
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops `pid` with SIGTERM (the node commits and flushes), or SIGKILL after [`STOP_TIMEOUT`].
/// Stops `pid` with SIGTERM (the node commits and flushes), or SIGKILL after a minute; `false`
/// if it was not running.
pub fn stop(pid: u32) -> bool {
    if !alive(pid) {
        return false;
    }
    signal(pid, rustix::process::Signal::TERM);
    let started = Instant::now();
    while started.elapsed() < STOP_TIMEOUT {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, rustix::process::Signal::KILL);
    true
}

fn find<'a>(cluster: &'a mut Cluster, wanted: &str) -> Result<&'a mut ClusterNode> {
    let names: Vec<String> = cluster.nodes.iter().map(|node| node.name.clone()).collect();
    let index = match wanted.parse::<usize>() {
        Ok(index) if index < cluster.nodes.len() => Some(index),
        _ => cluster.nodes.iter().position(|node| node.name == wanted),
    };
    match index {
        Some(index) => Ok(&mut cluster.nodes[index]),
        None => bail!(
            "no node {wanted:?} in this cluster: give an index (0 to {}) or a name ({})",
            names.len().saturating_sub(1),
            names.join(", ")
        ),
    }
}

/// Restarts node `wanted` (an index or a name) of the cluster in `dir` with `weft`: stopped if it
/// runs, started, waited for until it listens. Returns the node and whether it was running.
pub fn restart(weft: &Path, dir: &Path, wanted: &str) -> Result<(ClusterNode, bool)> {
    let mut cluster = read_cluster(dir)?;
    let node = find(&mut cluster, wanted)?;
    let was_running = stop(node.pid);
    node.pid = spawn(weft, &node.home)?;
    let node = node.clone();
    write_cluster(dir, &cluster)?;
    wait_listening(&node)?;
    Ok((node, was_running))
}

/// Stops every running node of the cluster in `dir` (SIGTERM to all first, so they stop
/// together, then waits for each); returns the names of those that were running.
pub fn down(dir: &Path) -> Result<Vec<String>> {
    let cluster = read_cluster(dir)?;
    let running: Vec<&ClusterNode> = cluster
        .nodes
        .iter()
        .filter(|node| alive(node.pid))
        .collect();
    for node in &running {
        signal(node.pid, rustix::process::Signal::TERM);
    }
    let mut stopped = Vec::new();
    for node in running {
        stop(node.pid);
        stopped.push(node.name.clone());
    }
    Ok(stopped)
}

/// How long `cluster status` waits for one node's answer.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// What `cluster status` found of one node.
#[derive(Debug, Default, Serialize)]
pub struct NodeReport {
    pub name: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub api: String,
    pub pid: u32,
    /// The process is alive.
    pub running: bool,
    /// It answered its API (within [`STATUS_TIMEOUT`]).
    pub answering: bool,
    pub height: Option<u64>,
    pub head: Option<String>,
    pub sync: Option<String>,
    /// Peers heard from in the last 5 s.
    pub peers: Option<u64>,
    pub validator: Option<bool>,
    pub epoch: Option<u64>,
    /// Misbehaviour this node recorded.
    pub evidence: Option<u64>,
    /// The hash of the block at the height every answering node has.
    pub common_hash: Option<String>,
    /// Why a running node did not answer.
    pub error: Option<String>,
}

/// Asks one node for its height, head and network state.
pub fn report(node: &ClusterNode) -> NodeReport {
    let mut report = NodeReport {
        name: node.name.clone(),
        node_type: node.node_type.clone(),
        api: node.api.clone(),
        pid: node.pid,
        running: alive(node.pid),
        ..NodeReport::default()
    };
    if !report.running {
        return report;
    }
    let asked = (|| -> Result<()> {
        let client = weft_api::client::NodeClient::new(&node.api, None, STATUS_TIMEOUT)?;
        let status = client.status()?;
        let net = client.net_status()?;
        report.height = Some(status.height);
        report.head = Some(status.head.to_hex());
        report.sync = Some(net.sync);
        report.peers = Some(net.peers.len() as u64);
        report.validator = Some(net.validator);
        report.epoch = Some(net.epoch);
        report.evidence = Some(net.evidence);
        Ok(())
    })();
    match asked {
        Ok(()) => report.answering = true,
        Err(error) => report.error = Some(format!("{error:#}")),
    }
    report
}

/// What [`survey`] found of a cluster: each node, and whether those answering hold the same
/// block at the highest height all of them have.
#[derive(Debug, Serialize)]
pub struct Survey {
    pub chain: String,
    pub nodes: Vec<NodeReport>,
    pub running: usize,
    pub answering: usize,
    pub common_height: Option<u64>,
    pub common_hash: Option<String>,
    pub agree: bool,
    /// Every node runs and answers, and they agree.
    pub healthy: bool,
}

/// Asks every node of the cluster in `dir` for its state, and the answering ones for their
/// block at the highest height all of them have.
pub fn survey(dir: &Path) -> Result<Survey> {
    let cluster = read_cluster(dir)?;
    let mut nodes: Vec<NodeReport> = cluster.nodes.iter().map(report).collect();
    let common_height = nodes
        .iter()
        .filter(|report| report.answering)
        .filter_map(|report| report.height)
        .min();
    if let Some(height) = common_height {
        for report in nodes.iter_mut().filter(|report| report.answering) {
            let block = weft_api::client::NodeClient::new(&report.api, None, STATUS_TIMEOUT)
                .and_then(|client| client.block(height));
            match block {
                Ok(block) => report.common_hash = block.map(|block| block.hash.to_string()),
                Err(error) => {
                    report.answering = false;
                    report.error = Some(format!("{error:#}"));
                }
            }
        }
    }
    let hashes: std::collections::BTreeSet<&str> = nodes
        .iter()
        .filter_map(|report| report.common_hash.as_deref())
        .collect();
    let agree = hashes.len() <= 1;
    let common_hash = if agree {
        hashes.iter().next().map(|hash| hash.to_string())
    } else {
        None
    };
    let running = nodes.iter().filter(|report| report.running).count();
    let answering = nodes.iter().filter(|report| report.answering).count();
    let healthy = running == nodes.len() && answering == running && agree;
    Ok(Survey {
        chain: cluster.chain,
        nodes,
        running,
        answering,
        common_height,
        common_hash,
        agree,
        healthy,
    })
}
