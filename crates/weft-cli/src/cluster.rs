//! `weft cluster up|restart|down` and `weft net status`: a real multi-process network on
//! loopback, for trying weft out and for the network tests (docs/network.md).
//!
//! `up` makes one home per node under `--dir` (`node0` … validators, then `thin0` …,
//! `archive0` …) with generated keys, one genesis naming every validator, and a `[network]`
//! section naming every other node; it starts `weft node run` for each, detached, and writes
//! `DIR/cluster.json`, which `restart` and `down` read.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_core::SigningKey;

use crate::context::Globals;
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

fn cluster_file(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

fn read_cluster(dir: &Path) -> Result<Cluster> {
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

fn write_cluster(dir: &Path, cluster: &Cluster) -> Result<()> {
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
pub(crate) fn free_port() -> Result<u16> {
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
    if validators == 0 || validators > MAX_NODES {
        bail!("--nodes must be between 1 and {MAX_NODES}, got {validators}");
    }
    if thin > MAX_NODES || archive > MAX_NODES {
        bail!("--thin and --archive must be at most {MAX_NODES}");
    }
    if cluster_file(dir).exists() {
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
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let chain = format!(
        "cluster-{}",
        dir.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("local")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect::<String>()
    );
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

    // The homes are written before any node starts; if one cannot be, none is left behind
    // (the directory was new or empty).
    let written = (|| -> Result<()> {
        // The first validator's home makes block 0; every other home starts from a copy of it.
        let first = dir.join(&plans[0].name);
        {
            let (_home, ledger) =
                Home::init_network(&first, &chain, 3600, &authority, &plans[0].key, producers)?;
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
        Ok(())
    })();
    if let Err(error) = written {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        return Err(error);
    }
    let mut cluster = Cluster {
        chain,
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
    };
    // Every node is started before any is waited for: the validators need each other.
    for node in &mut cluster.nodes {
        node.pid = spawn(&node.home)?;
    }
    write_cluster(&dir, &cluster)?;
    let started = cluster
        .nodes
        .iter()
        .try_for_each(wait_listening)
        .and_then(|()| wait_first_block(&cluster, timeout));
    if let Err(error) = started {
        // Nothing is left running half-started.
        for node in &cluster.nodes {
            stop(node.pid);
        }
        return Err(error);
    }
    ctx.out
        .emit(cluster_json(&cluster), || cluster_text(&cluster));
    Ok(())
}

/// Starts `weft node run` on `home`, detached (its own process group, output to
/// HOME/node.log); returns its pid.
fn spawn(home: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("node.log"))
        .with_context(|| format!("cannot open {}", home.join("node.log").display()))?;
    let _ = std::fs::remove_file(home.join("node.addr"));
    let child = Command::new(std::env::current_exe().context("cannot find the weft binary")?)
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

fn alive(pid: u32) -> bool {
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

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Waits until `node` listens (its node.addr is written), or fails if it exited.
fn wait_listening(node: &ClusterNode) -> Result<()> {
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
            let height = crate::client::NodeClient::with_timeout(&node.api, None, STATUS_TIMEOUT)
                .and_then(|client| client.get("/v1/status"))
                .ok()
                .and_then(|status| status["height"].as_u64());
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
fn stop(pid: u32) -> bool {
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

pub fn restart(ctx: &Globals, dir: &Path, wanted: &str) -> Result<()> {
    let mut cluster = read_cluster(dir)?;
    let node = find(&mut cluster, wanted)?;
    let was_running = stop(node.pid);
    node.pid = spawn(&node.home)?;
    let node = node.clone();
    write_cluster(dir, &cluster)?;
    wait_listening(&node)?;
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
    let cluster = read_cluster(dir)?;
    // SIGTERM to all first, so they stop together, then wait for each (those that were
    // running are the ones stopped, however fast they went).
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
    ctx.out.emit(json!({"stopped": stopped}), || {
        format!(
            "stopped {} node(s); their homes stay in {}",
            stopped.len(),
            dir.display()
        )
    });
    Ok(())
}

/// How long `cluster status` waits for one node's answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// What `cluster status` found of one node.
#[derive(Debug, Default, Serialize)]
struct NodeReport {
    name: String,
    #[serde(rename = "type")]
    node_type: String,
    api: String,
    pid: u32,
    /// The process is alive.
    running: bool,
    /// It answered its API (within [`STATUS_TIMEOUT`]).
    answering: bool,
    height: Option<u64>,
    head: Option<String>,
    sync: Option<String>,
    /// Peers heard from in the last 5 s.
    peers: Option<u64>,
    validator: Option<bool>,
    epoch: Option<u64>,
    /// Misbehaviour this node recorded.
    evidence: Option<u64>,
    /// The hash of the block at the height every answering node has.
    common_hash: Option<String>,
    /// Why a running node did not answer.
    error: Option<String>,
}

/// Asks one node for its height, head and network state.
fn report(node: &ClusterNode) -> NodeReport {
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
        let client = crate::client::NodeClient::with_timeout(&node.api, None, STATUS_TIMEOUT)?;
        let status = client.typed().status()?;
        let net = client.typed().net_status()?;
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

/// `weft cluster status`: every node of the cluster, whether it runs and answers, its height
/// and sync state, and whether the nodes hold the same block at the highest height all of them
/// have. A node down or not answering, or nodes that disagree, make it a negative verdict.
pub fn show(ctx: &Globals, dir: &Path) -> Result<()> {
    let cluster = read_cluster(dir)?;
    let mut reports: Vec<NodeReport> = cluster.nodes.iter().map(report).collect();
    let common = reports
        .iter()
        .filter(|report| report.answering)
        .filter_map(|report| report.height)
        .min();
    if let Some(height) = common {
        for report in reports.iter_mut().filter(|report| report.answering) {
            let block = crate::client::NodeClient::with_timeout(&report.api, None, STATUS_TIMEOUT)
                .and_then(|client| client.get(&format!("/v1/blocks/{height}")));
            match block {
                Ok(block) => report.common_hash = block["hash"].as_str().map(str::to_string),
                Err(error) => {
                    report.answering = false;
                    report.error = Some(format!("{error:#}"));
                }
            }
        }
    }
    let hashes: std::collections::BTreeSet<&str> = reports
        .iter()
        .filter_map(|report| report.common_hash.as_deref())
        .collect();
    let agree = hashes.len() <= 1;
    let running = reports.iter().filter(|report| report.running).count();
    let answering = reports.iter().filter(|report| report.answering).count();
    let healthy = running == reports.len() && answering == running && agree;
    let value = json!({
        "chain": cluster.chain,
        "nodes": reports,
        "running": running,
        "answering": answering,
        "common_height": common,
        "common_hash": if agree { hashes.iter().next().copied() } else { None },
        "agree": agree,
        "healthy": healthy,
    });
    let human = || {
        let mut text = format!(
            "cluster of chain {:?}: {running} of {} nodes running, {answering} answering\n",
            cluster.chain,
            reports.len()
        );
        for report in &reports {
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
                hashes.iter().next().copied().unwrap_or("?")
            )),
            (Some(height), false) => {
                text.push_str(&format!("  THE NODES DISAGREE on block {height}:"));
                for report in &reports {
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
