//! Networks of real node processes on loopback, started with `weft cluster up`: validators
//! agree on blocks by BFT consensus (docs/network.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::node::*;
use common::{json_of, run, weft};

/// How long the network may take to reach a state a test waits for.
const DEADLINE: Duration = Duration::from_secs(120);

/// The networks of these tests share two cores: one runs at a time, so that leader timeouts
/// measure the protocol, not the machine.
static ONE_NETWORK_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_NETWORK_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Member {
    name: String,
    api: String,
    pid: u32,
    home: PathBuf,
}

/// A cluster that is stopped (`weft cluster down`) when the test ends, however it ends.
struct Cluster {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    chain: String,
    members: Vec<Member>,
    /// Nodes this test started itself (not through `weft cluster`), reaped when it ends.
    spawned: Vec<std::process::Child>,
}

impl Cluster {
    fn up(args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster");
        let mut all = vec!["cluster", "up", "--dir", path.to_str().expect("utf-8")];
        all.extend(args);
        let out = run(dir.path(), &all, 0);
        let members = out["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| Member {
                name: node["name"].as_str().expect("name").to_string(),
                api: node["api"].as_str().expect("api").to_string(),
                pid: node["pid"].as_u64().expect("pid") as u32,
                home: PathBuf::from(node["home"].as_str().expect("home")),
            })
            .collect();
        Cluster {
            chain: out["chain"].as_str().expect("chain").to_string(),
            _dir: dir,
            dir: path,
            members,
            spawned: Vec::new(),
        }
    }

    /// `weft cluster status --dir`, expecting exit code `code`.
    fn cluster_status(&self, code: i32) -> Value {
        run(
            &self.dir,
            &[
                "cluster",
                "status",
                "--dir",
                self.dir.to_str().expect("utf-8"),
            ],
            code,
        )
    }

    fn status(&self, index: usize) -> Value {
        let (code, status) = http(
            "GET",
            &format!("{}/v1/status", self.members[index].api),
            None,
            b"",
        );
        assert_eq!(code, 200, "{status}");
        status
    }

    /// Registers an organisation through node 0, with node 0's authority key.
    fn org(&self) -> String {
        self.org_named("Acme")
    }

    fn org_named(&self, name: &str) -> String {
        run(
            &self.members[0].home,
            &[
                "org",
                "add",
                name,
                "--country",
                "DE",
                "--town",
                "Aachen",
                "--node",
                &self.members[0].api,
            ],
            0,
        )["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Waits until transaction `id` is final on node `index`.
    fn wait_final(&self, index: usize, id: &str, why: &str) {
        let path = format!("{}/v1/transactions/{id}", self.members[index].api);
        wait_for(|| match http("GET", &path, None, b"") {
            (200, _) => Ok(()),
            (_, body) => Err(format!("{why}: {id} is not final: {body}")),
        });
    }

    /// Watches for `secs` that transaction `id` becomes final on none of `nodes` (absence
    /// cannot be waited for: this spans several leader timeouts).
    fn never_final(&self, nodes: &[usize], id: &str, secs: u64, why: &str) {
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_secs(secs) {
            for index in nodes {
                let (code, tx) = http(
                    "GET",
                    &format!("{}/v1/transactions/{id}", self.members[*index].api),
                    None,
                    b"",
                );
                assert_ne!(code, 200, "{why} on {}: {tx}", self.members[*index].name);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The node's key, from its network status.
    fn key(&self, index: usize) -> String {
        let (_, status) = http(
            "GET",
            &format!("{}/v1/net/status", self.members[index].api),
            None,
            b"",
        );
        status["key"].as_str().expect("key").to_string()
    }

    /// What the node recorded in its `evidence.jsonl`.
    fn evidence(&self, index: usize) -> Vec<Value> {
        evidence_in(&self.members[index].home)
    }

    fn height(&self, index: usize) -> u64 {
        self.status(index)["height"].as_u64().expect("height")
    }

    /// SIGKILL, and waits until the process is gone: no thread left but, maybe, its zombie
    /// main thread (the others hold its files, such as the ledger's lock, until they exit).
    fn kill(&self, index: usize) {
        let pid = self.members[index].pid;
        let raw = rustix::process::Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(raw, rustix::process::Signal::KILL).expect("SIGKILL");
        let gone = || {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return true;
            };
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'));
            let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
            zombie && threads <= 1
        };
        let started = Instant::now();
        while !gone() {
            assert!(
                started.elapsed() < DEADLINE,
                "the killed node is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart(&mut self, index: usize) {
        self.restart_with(index, &[]);
    }

    /// `weft cluster restart` of one node, with these environment variables.
    fn restart_with(&mut self, index: usize, env: &[(&str, &str)]) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .envs(env.iter().copied())
            .args(["cluster", "restart", "--json", "--node"])
            .arg(&self.members[index].name)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .expect("weft runs");
        assert!(
            output.status.success(),
            "{output:?}; the node's log:\n{}",
            std::fs::read_to_string(self.members[index].home.join("node.log")).unwrap_or_default()
        );
        let out: Value = serde_json::from_slice(&output.stdout).expect("json");
        self.members[index].pid = out["pid"].as_u64().expect("pid") as u32;
        self.members[index].api = out["api"].as_str().expect("api").to_string();
    }

    /// Waits until every node in `nodes` is at least at `height` with one head hash.
    fn converge(&self, nodes: &[usize], height: u64) {
        let started = Instant::now();
        loop {
            let statuses: Vec<Value> = nodes.iter().map(|index| self.status(*index)).collect();
            let heads: Vec<(u64, &str)> = statuses
                .iter()
                .map(|status| {
                    (
                        status["height"].as_u64().expect("height"),
                        status["head"].as_str().expect("head"),
                    )
                })
                .collect();
            if heads
                .iter()
                .all(|(h, head)| *h >= height && *head == heads[0].1)
            {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the nodes did not agree on a head at height {height} or above: {heads:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failed test shows what each node logged last.
        if std::thread::panicking() {
            for member in &self.members {
                let log = std::fs::read_to_string(member.home.join("node.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!("---- {} (last 40 lines of node.log)", member.name);
                for line in &lines[lines.len().saturating_sub(40)..] {
                    eprintln!("{line}");
                }
            }
        }
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["cluster", "down", "--dir"])
            .arg(&self.dir)
            .output();
        for child in &mut self.spawned {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `count` claims by `org` (its key on `home`) of the contents `TAG-0`, `TAG-1`, …, encoded.
fn claims(cluster: &Cluster, home: &Path, org: &str, tag: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let content = format!("{tag}-{i}");
            encoded(&claim_tx_on(
                &cluster.chain,
                home,
                org,
                content.as_bytes(),
                &content,
            ))
        })
        .collect()
}

/// What the node of `home` recorded in its `evidence.jsonl`.
fn evidence_in(home: &Path) -> Vec<Value> {
    std::fs::read_to_string(home.join("evidence.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an evidence line is JSON"))
        .collect()
}

/// Queues `transactions` at `api` without waiting for them to be final; returns their ids.
fn queue(api: &str, transactions: &[String]) -> Vec<String> {
    let (code, body) = post_json(
        &format!("{api}/v1/transactions/batch?wait=false"),
        &json!({ "transactions": transactions }),
    );
    assert_eq!(code, 202, "{body}");
    body["tx_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_string())
        .collect()
}

/// Submits `count` claims by `org` (registered on `home`) to `api`; returns (tx id, height).
fn submit(
    cluster: &Cluster,
    api: &str,
    home: &Path,
    org: &str,
    tag: &str,
    count: usize,
) -> Vec<(String, u64)> {
    let transactions = claims(cluster, home, org, tag, count);
    let (code, body) = post_json(
        &format!("{api}/v1/transactions/batch"),
        &json!({ "transactions": transactions }),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["committed"], count, "{body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            (
                result["tx_id"].as_str().expect("id").to_string(),
                result["height"].as_u64().expect("height"),
            )
        })
        .collect()
}

/// Every transaction id on the chain of the node at `api`, block by block.
fn chain_tx_ids(api: &str, height: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for h in 1..=height {
        let (code, block) = http("GET", &format!("{api}/v1/blocks/{h}"), None, b"");
        assert_eq!(code, 200, "{block}");
        for id in block["transactions"].as_array().expect("transactions") {
            ids.push(id.as_str().expect("id").to_string());
        }
    }
    ids
}

const THIN: usize = 4;
/// A second thin node: neither thin node dials the other, so each knows the other is online
/// only from what their common peers report.
const THIN2: usize = 5;
const ARCHIVE: usize = 6;

#[test]
fn validators_agree_survive_a_crash_and_stop_without_a_quorum() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--thin", "2", "--archive", "1"]);
    assert_eq!(cluster.members.len(), 7);
    assert!(cluster.members[THIN].name.starts_with("thin"));
    assert!(cluster.members[THIN2].name.starts_with("thin"));
    assert!(cluster.members[ARCHIVE].name.starts_with("archive"));
    // `up` returned once the network formed: every node has committed a block.
    for index in 0..cluster.members.len() {
        assert!(cluster.height(index) >= 1, "{}", cluster.status(index));
    }
    let home0 = cluster.members[0].home.clone();
    // An organisation registered through one validator is known to all of them.
    let org = cluster.org();
    // The thin node keeps whole only the transactions naming Acme (restarted to read it).
    let config_path = cluster.members[THIN].home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    assert!(config.contains("keep_resources = []"), "{config}");
    std::fs::write(
        &config_path,
        config.replace(
            "keep_resources = []",
            &format!("keep_resources = [\"{org}\"]"),
        ),
    )
    .expect("config written");
    cluster.restart(THIN);

    // Submissions round-robin to every node (the archive node too): each is acknowledged
    // once final.
    let mut acknowledged = Vec::new();
    for round in 0..2 {
        for index in 0..cluster.members.len() {
            let api = cluster.members[index].api.clone();
            acknowledged.extend(submit(
                &cluster,
                &api,
                &home0,
                &org,
                &format!("r{round}n{index}"),
                40,
            ));
        }
    }
    let top = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    // Another organisation's claims, which the thin node stores stripped.
    let other = cluster.org_named("Beta");
    let others = submit(
        &cluster,
        &cluster.members[1].api,
        &home0,
        &other,
        "beta",
        20,
    );
    let top = others
        .iter()
        .map(|(_, height)| *height)
        .max()
        .unwrap_or(top)
        .max(top);
    cluster.converge(&[0, 1, 2, 3, THIN, THIN2, ARCHIVE], top);
    // Besides the validators, the thin node keeps connections with the other followers (the
    // default `network.connections` is 8): the archive node, its seed, and the other thin node,
    // which it learnt of from its peers. It lists every other node online.
    let thin2_key = cluster.key(THIN2);
    let archive_key = cluster.key(ARCHIVE);
    let net = wait_net_status(
        &cluster.members[THIN].api,
        "the thin node connected with the other followers",
        |net| {
            let picked = keys_in(net, "picked");
            let peers = keys_in(net, "peers");
            [&thin2_key, &archive_key]
                .iter()
                .all(|key| picked.contains(key) && peers.contains(key))
                && keys_in(net, "online").len() == 6
        },
    );
    assert_eq!(net["dialed"], 6, "4 validators and 2 followers: {net}");
    // Every acknowledged transaction is on the chain exactly once, at the same place on
    // every node.
    let height = cluster.height(0);
    let on_chain = chain_tx_ids(&cluster.members[0].api, height);
    let unique: std::collections::HashSet<&String> = on_chain.iter().collect();
    assert_eq!(
        unique.len(),
        on_chain.len(),
        "a transaction is on the chain twice"
    );
    for (id, committed_at) in &acknowledged {
        assert!(unique.contains(id), "acknowledged {id} is not on the chain");
        for member in &cluster.members {
            let (code, tx) = http(
                "GET",
                &format!("{}/v1/transactions/{id}", member.api),
                None,
                b"",
            );
            assert_eq!(code, 200, "{} lacks {id}: {tx}", member.name);
            assert_eq!(tx["height"].as_u64(), Some(*committed_at), "{tx}");
        }
    }
    thin_node_keeps_what_its_filter_selects_and_fetches_the_rest(&cluster, &acknowledged, &others);
    // A directory without a cluster is an error that says how to make one.
    let missing = cluster.dir.join("no-such-cluster");
    let error = run(
        &cluster.dir,
        &[
            "cluster",
            "status",
            "--dir",
            missing.to_str().expect("utf-8"),
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("weft cluster up")),
        "{error}"
    );
    // `weft cluster status`: all six running, answering, and holding the same block at the
    // height they share.
    let status = cluster.cluster_status(0);
    assert_eq!(status["running"], 7, "{status}");
    assert_eq!(status["answering"], 7, "{status}");
    assert_eq!(status["agree"], true, "{status}");
    assert!(status["common_height"].as_u64() >= Some(top), "{status}");
    let (code, block) = http(
        "GET",
        &format!(
            "{}/v1/blocks/{}",
            cluster.members[0].api, status["common_height"]
        ),
        None,
        b"",
    );
    assert_eq!(code, 200, "{block}");
    assert_eq!(status["common_hash"], block["hash"], "{status}");
    for node in status["nodes"].as_array().expect("nodes") {
        assert_eq!(node["common_hash"], block["hash"], "{node}");
        assert!(node["sync"].is_string(), "{node}");
        assert!(node["peers"].as_u64() >= Some(1), "{node}");
    }
    // The validators' engines run; the followers have none.
    for (index, member) in cluster.members.iter().enumerate() {
        let (_, net) = http("GET", &format!("{}/v1/net/status", member.api), None, b"");
        let engine = if index < 4 { "running" } else { "not voting" };
        assert_eq!(
            (net["engine"].as_str(), net["waiting_for"].clone()),
            (Some(engine), json!([])),
            "{}: {net}",
            member.name
        );
    }

    // One validator of four killed: the other three keep committing (f = 1).
    let stopped = cluster.key(3);
    let nullified_before = http(
        "GET",
        &format!("{}/v1/net/status", cluster.members[0].api),
        None,
        b"",
    )
    .1["nullified_views"]
        .as_u64()
        .expect("nullified_views");
    cluster.kill(3);
    let api0 = cluster.members[0].api.clone();
    let during = submit(&cluster, &api0, &home0, &org, "one-down", 30);
    let top = during
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2, THIN, THIN2, ARCHIVE], top);
    // The views the stopped validator leads end without a block: counted.
    wait_net_status(
        &cluster.members[0].api,
        "views led by the stopped validator are counted as nullified",
        |net| net["nullified_views"].as_u64() > Some(nullified_before),
    );
    // Gone from every list of who is online within a few seconds, on validators and followers.
    for index in [0, THIN2] {
        wait_net_status(
            &cluster.members[index].api,
            "the stopped validator dropped from online",
            |net| {
                net["online"]
                    .as_array()
                    .is_some_and(|keys| !keys.contains(&json!(stopped)) && keys.len() == 5)
            },
        );
    }
    // The status names the stopped node, and its exit code says the cluster is not whole.
    let status = cluster.cluster_status(4);
    assert_eq!(
        (status["running"].as_u64(), status["answering"].as_u64()),
        (Some(6), Some(6)),
        "{status}"
    );
    assert_eq!(status["nodes"][3]["running"], false, "{status}");
    assert_eq!(status["nodes"][3]["height"], Value::Null, "{status}");
    assert_eq!(status["agree"], true, "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    // Restarted, it catches up with what it missed.
    cluster.restart(3);
    cluster.converge(&[0, 1, 2, 3, THIN, THIN2, ARCHIVE], top);
    let (code, tx) = http(
        "GET",
        &format!("{}/v1/transactions/{}", cluster.members[3].api, during[0].0),
        None,
        b"",
    );
    assert_eq!(
        code, 200,
        "the restarted validator lacks what it missed: {tx}"
    );

    // Two of four down: no quorum, so nothing submitted from now on becomes final, on any
    // node. (A block finalized just before the kill may still be committed: its certificate
    // was made with four.)
    cluster.kill(2);
    cluster.kill(3);
    let mut queued_ids = queue(&api0, &claims(&cluster, &home0, &org, "no-quorum", 5));
    // A submission that waits for its block is answered when the wait runs out (the request's
    // `timeout_ms`; `api.wait_timeout_ms` otherwise): 504, and it stays queued.
    let waiting_tx = claim_tx_on(
        &cluster.chain,
        &home0,
        &org,
        b"no-quorum-waiting",
        "no-quorum-waiting",
    );
    let waiting = [encoded(&waiting_tx)];
    let (code, body) = post_json(
        &format!(
            "{}/v1/transactions/batch?timeout_ms=1500",
            cluster.members[1].api
        ),
        &json!({ "transactions": waiting }),
    );
    assert_eq!(code, 504, "{body}");
    assert_eq!(body["error"]["code"], "not_final", "{body}");
    let (code, body) = post_json(
        &format!("{api0}/v1/transactions?wait=false&timeout_ms=1500"),
        &json!({ "transaction": waiting[0] }),
    );
    assert_eq!(code, 400, "a wait limit without waiting: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("timeout_ms")),
        "{body}"
    );
    let (code, body) = post_json(
        &format!("{api0}/v1/transactions?timeout_ms=0"),
        &json!({ "transaction": waiting[0] }),
    );
    assert_eq!(code, 400, "{body}");
    queued_ids.push(waiting_tx.id().to_hex());
    cluster.never_final(
        &[0, 1, THIN, ARCHIVE],
        &queued_ids[0],
        6,
        "final without a quorum",
    );
    // One of them back: three of four, commits resume and the queued transactions are final.
    cluster.restart(2);
    for id in &queued_ids {
        cluster.wait_final(0, id, "commits did not resume");
    }
    let top = cluster.height(0);
    cluster.converge(&[0, 1, 2, THIN, THIN2, ARCHIVE], top);

    // With every validator down, the thin node still gets whole copies of what it stores
    // stripped: from the archive node, which it dials as a seed.
    let archive_key = cluster.key(ARCHIVE);
    for index in 0..3 {
        cluster.kill(index);
    }
    let (id, _) = &others[others.len() - 1];
    let (code, here) = http(
        "GET",
        &format!("{}/v1/transactions/{id}", cluster.members[THIN].api),
        None,
        b"",
    );
    assert_eq!(code, 200, "{here}");
    assert_eq!(here["stripped"], true, "{here}");
    assert_eq!(here["fetched_from"], archive_key.as_str(), "{here}");
    assert!(here["payload"].is_object(), "{here}");

    // The thin node's own audit, once stopped: every link, root, seal and signature holds;
    // the rules were replayed up to its first stripped transaction.
    cluster.kill(THIN);
    let audit = run(&cluster.members[THIN].home, &["chain", "verify"], 0);
    assert_eq!(audit["ok"], true, "{audit}");
    assert!(
        audit["stripped"].as_u64() >= Some(others.len() as u64),
        "{audit}"
    );
    assert!(
        audit["rules_checked_through"].as_u64() < Some(top),
        "{audit}"
    );

    // `weft cluster down` stops (and names) the nodes still running: the second thin node and
    // the archive node; then none runs.
    let dir = cluster.dir.to_str().expect("utf-8").to_string();
    let down = run(&cluster.dir, &["cluster", "down", "--dir", &dir], 0);
    assert_eq!(down["stopped"], json!(["thin1", "archive0"]), "{down}");
    let status = cluster.cluster_status(4);
    assert_eq!(
        (status["running"].as_u64(), status["answering"].as_u64()),
        (Some(0), Some(0)),
        "{status}"
    );
    assert_eq!(status["common_height"], Value::Null, "{status}");
}

/// A node dials, besides its configured seeds, the peers it heard from before at the addresses
/// they gave it (its address book, kept across restarts): restarted when its only seed is gone,
/// it still finds the network and follows it.
/// Rewrites a node's configuration to name validator `seed` alone as its seed.
fn only_seed(cluster: &Cluster, node: usize, seed: usize) {
    let only = cluster.key(seed);
    let config_path = cluster.members[node].home.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .expect("config")
        .parse()
        .expect("TOML");
    let network = config
        .get_mut("network")
        .and_then(toml::Value::as_table_mut)
        .expect("[network]");
    let seeds: Vec<toml::Value> = network["seeds"]
        .as_array()
        .expect("seeds")
        .iter()
        .filter(|entry| entry.as_str().is_some_and(|entry| entry.starts_with(&only)))
        .cloned()
        .collect();
    assert_eq!(seeds.len(), 1, "{network:?}");
    network.insert("seeds".into(), toml::Value::Array(seeds));
    std::fs::write(&config_path, toml::to_string(&config).expect("TOML")).expect("written");
}

#[test]
fn a_node_finds_the_network_from_one_seed_or_through_the_addresses_it_learnt() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--thin", "1"]);
    let thin_api = cluster.members[THIN].api.clone();
    let validators: Vec<String> = (0..4).map(|index| cluster.key(index)).collect();
    // Restarted knowing validator 0 alone, with no address book: it learns where the other
    // validators are from that seed (the signed addresses it passes on) and connects to every
    // one.
    wait_net_status(&thin_api, "the thin node follows the chain", |net| {
        net["height"].as_u64() >= Some(3)
    });
    cluster.kill(THIN);
    only_seed(&cluster, THIN, 0);
    std::fs::remove_file(cluster.members[THIN].home.join("network/addresses.redb"))
        .expect("address book removed");
    cluster.restart(THIN);
    wait_net_status(
        &thin_api,
        "the thin node, given one seed, connected to every validator",
        |net| {
            let peers = net["peers"].as_array().cloned().unwrap_or_default();
            validators.iter().all(|key| peers.contains(&json!(key)))
        },
    );
    // Its one seed stops: it keeps following the blocks of the other three.
    cluster.kill(0);
    let before = cluster.height(1);
    wait_net_status(&thin_api, "the thin node follows without its seed", |net| {
        net["height"].as_u64() > Some(before)
    });
    cluster.restart(0);
    // It learns where each validator is from the validators themselves.
    wait_net_status(
        &thin_api,
        "the thin node learnt the validators' addresses",
        |net| net["addresses"].as_u64() >= Some(4),
    );
    // Stopped, and its configuration names validator 0 alone as its seed; then validator 0
    // goes too (the other three keep committing): only the address book knows where the others
    // are.
    cluster.kill(THIN);
    only_seed(&cluster, THIN, 0);
    let only = cluster.key(0);
    cluster.kill(0);
    let before = cluster.height(1);
    cluster.restart(THIN);
    // It reaches validators 1 to 3 through its address book, and follows their new blocks.
    let others: Vec<String> = (1..4).map(|index| cluster.key(index)).collect();
    let net = wait_net_status(
        &thin_api,
        "the restarted thin node found the others",
        |net| {
            let peers = net["peers"].as_array().cloned().unwrap_or_default();
            others.iter().all(|key| peers.contains(&json!(key)))
                && net["height"].as_u64() > Some(before)
        },
    );
    assert!(
        !net["peers"]
            .as_array()
            .expect("peers")
            .contains(&json!(only)),
        "{net}"
    );
    let top = cluster.height(1);
    cluster.converge(&[1, 2, 3, THIN], top);
}

/// Sets `network.connections` in a node's configuration (applied at its next start).
fn set_connections(cluster: &Cluster, node: usize, connections: i64) {
    let config_path = cluster.members[node].home.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .expect("config")
        .parse()
        .expect("TOML");
    config
        .get_mut("network")
        .and_then(toml::Value::as_table_mut)
        .expect("[network]")
        .insert("connections".into(), toml::Value::Integer(connections));
    std::fs::write(&config_path, toml::to_string(&config).expect("TOML")).expect("written");
}

fn keys_in(net: &Value, field: &str) -> Vec<String> {
    net[field]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|key| key.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Besides the validators, a node keeps `network.connections` peers connected: its seeds first,
/// then peers it learnt of (where they are from the signed addresses its peers pass on, that
/// they are online from the peers' `Online` lists). When the connection of one drops, another
/// takes its place (docs/network.md, "Connections").
#[test]
fn a_node_keeps_its_configured_number_of_connections_and_replaces_one_that_drops() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--thin", "1", "--archive", "3"]);
    let thin_api = cluster.members[THIN].api.clone();
    let validators: Vec<String> = (0..4).map(|index| cluster.key(index)).collect();
    let archives: Vec<String> = (5..8).map(|index| cluster.key(index)).collect();
    wait_net_status(&thin_api, "the thin node follows the chain", |net| {
        net["height"].as_u64() >= Some(3)
    });
    // The archive nodes dial nobody but the validators; the thin node knows validator 0
    // alone (no address book), and keeps one connection besides the validators.
    for index in 5..8 {
        cluster.kill(index);
        set_connections(&cluster, index, 0);
        cluster.restart(index);
    }
    cluster.kill(THIN);
    only_seed(&cluster, THIN, 0);
    set_connections(&cluster, THIN, 1);
    std::fs::remove_file(cluster.members[THIN].home.join("network/addresses.redb"))
        .expect("address book removed");
    cluster.restart(THIN);
    let picked_one = |net: &Value| {
        let picked = keys_in(net, "picked");
        let peers = keys_in(net, "peers");
        picked.len() == 1
            && archives.contains(&picked[0])
            && peers.contains(&picked[0])
            && validators.iter().all(|key| peers.contains(key))
    };
    let net = wait_net_status(
        &thin_api,
        "the thin node connected to every validator and to one archive node it learnt of",
        |net| picked_one(net),
    );
    assert_eq!(net["connections_wanted"], 1, "{net}");
    assert_eq!(net["dialed"], 5, "the validators and one other: {net}");
    let first = keys_in(&net, "picked")[0].clone();
    assert_eq!(metrics_of(&thin_api)("weft_net_picked_peers"), 1);
    let shown = weft(
        &cluster.members[THIN].home,
        &["net", "status", "--node", &thin_api],
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("the validators and 1 of 1 others picked") && shown.contains(&first),
        "{shown}"
    );
    let peers = keys_in(&net, "peers");
    assert_eq!(
        peers.iter().filter(|key| archives.contains(key)).count(),
        1,
        "no other archive node is connected: {net}"
    );
    // Yet it knows every archive node is online: the validators, which hear from them all,
    // list them in their `Online` messages.
    wait_net_status(&thin_api, "every archive node listed online", |net| {
        let online = keys_in(net, "online");
        archives.iter().all(|key| online.contains(key))
    });
    // The archive node it picked stops: another one takes its place.
    let gone = 5 + archives
        .iter()
        .position(|key| *key == first)
        .expect("an archive");
    cluster.kill(gone);
    wait_net_status(
        &thin_api,
        "the thin node replaced the archive node that stopped",
        |net| picked_one(net) && keys_in(net, "picked")[0] != first,
    );
    // It goes on following the chain.
    let before = cluster.height(0);
    wait_net_status(&thin_api, "the thin node follows the chain", |net| {
        net["height"].as_u64() > Some(before)
    });
}

/// Two single-validator networks of different chains listed as one cluster: `weft cluster
/// status` finds their blocks at the common height differ, says so, and exits 4.
#[test]
fn cluster_status_reports_nodes_that_disagree() {
    let _network = one_network_at_a_time();
    let first = Cluster::up(&["--nodes", "1"]);
    let second = Cluster::up(&["--nodes", "1"]);
    for cluster in [&first, &second] {
        wait_net_status(&cluster.members[0].api, "a block past genesis", |net| {
            net["height"].as_u64() >= Some(1)
        });
    }
    let node = |cluster: &Cluster, name: &str| -> Value {
        let file: Value = serde_json::from_str(
            &std::fs::read_to_string(cluster.dir.join("cluster.json")).expect("cluster.json"),
        )
        .expect("JSON");
        let mut node = file["nodes"][0].clone();
        node["name"] = json!(name);
        node
    };
    let mixed = first._dir.path().join("mixed");
    std::fs::create_dir_all(&mixed).expect("dir");
    let file = json!({
        "chain": "mixed",
        "nodes": [node(&first, "ours"), node(&second, "theirs")],
    });
    std::fs::write(mixed.join("cluster.json"), file.to_string()).expect("written");
    let dir = mixed.to_str().expect("utf-8");
    let status = run(&mixed, &["cluster", "status", "--dir", dir], 4);
    assert_eq!(status["agree"], false, "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    assert_eq!(status["common_hash"], Value::Null, "{status}");
    assert_eq!(status["answering"], 2, "{status}");
    let hashes: Vec<&Value> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| &node["common_hash"])
        .collect();
    assert!(hashes.iter().all(|hash| hash.is_string()), "{status}");
    assert_ne!(hashes[0], hashes[1], "{status}");
    let text = weft(&mixed, &["cluster", "status", "--dir", dir]);
    assert_eq!(text.status.code(), Some(4));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("THE NODES DISAGREE on block"), "{text}");
    // Each cluster on its own agrees with itself.
    let alone = first.cluster_status(0);
    assert_eq!(alone["agree"], true, "{alone}");
}

/// The thin node holds Acme's transactions whole and Beta's stripped; asked for a stripped one
/// (or to verify a file only a stripped one claims) it fetches the whole transaction with its
/// inclusion proof from a peer.
fn thin_node_keeps_what_its_filter_selects_and_fetches_the_rest(
    cluster: &Cluster,
    kept: &[(String, u64)],
    stripped: &[(String, u64)],
) {
    let thin = &cluster.members[THIN];
    let archive = &cluster.members[ARCHIVE];
    let get = |api: &str, path: &str| {
        let (code, body) = http("GET", &format!("{api}{path}"), None, b"");
        assert_eq!(code, 200, "{path}: {body}");
        body
    };
    let whole = get(&thin.api, &format!("/v1/transactions/{}", kept[0].0));
    assert_eq!(whole["stripped"], false, "{whole}");
    assert!(whole.get("fetched_from").is_none(), "{whole}");
    for (id, _) in stripped.iter().take(3) {
        let here = get(&thin.api, &format!("/v1/transactions/{id}"));
        assert_eq!(here["stripped"], true, "{here}");
        assert!(
            here["fetched_from"].is_string(),
            "fetched from a peer: {here}"
        );
        let there = get(&archive.api, &format!("/v1/transactions/{id}"));
        assert_eq!(
            there["stripped"], false,
            "the archive keeps everything: {there}"
        );
        assert_eq!(
            here["payload"], there["payload"],
            "the same whole transaction"
        );
        assert_eq!(here["proof"], there["proof"], "the same proof");
    }
    // `weft verify` through the thin node, of a file only a stripped claim names: the verdict
    // and the history are the archive's.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("beta-0");
    std::fs::write(&file, b"beta-0").expect("file");
    let file = file.to_str().expect("utf-8");
    let on_thin = run(&thin.home, &["verify", file, "--node", &thin.api], 0);
    let on_archive = run(&thin.home, &["verify", file, "--node", &archive.api], 0);
    assert_eq!(on_thin["verdict"], "valid", "{on_thin}");
    assert_eq!(on_thin["owner"], on_archive["owner"]);
    let history = on_thin["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{on_thin}");
    assert!(history[0]["fetched_from"].is_string(), "{on_thin}");
    assert_eq!(history[0]["issuer"], on_archive["history"][0]["issuer"]);
    assert!(
        on_thin.get("stripped").is_none(),
        "nothing left stripped: {on_thin}"
    );
    // A proof out of the thin node verifies offline like any other.
    let proof = dir.path().join("proof.json");
    run(
        &thin.home,
        &[
            "proof",
            &stripped[0].0,
            "--out",
            proof.to_str().expect("utf-8"),
            "--node",
            &thin.api,
        ],
        0,
    );
    let checked = run(
        &thin.home,
        &["proof", "verify", proof.to_str().expect("utf-8")],
        0,
    );
    assert!(checked.to_string().contains(&stripped[0].0), "{checked}");
}

/// A node that was not there from the start: it joins from the archive node's join document
/// once an authority admits its key, takes headers from a lying validator but none of its
/// bodies, syncs every block from the archive node alone (no validator up), and is cut off when
/// removed.
#[test]
fn a_late_node_joins_syncs_100000_transactions_and_is_cut_off_when_removed() {
    const TXS: u64 = 100_000;
    const ARCHIVE: usize = 4;
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--archive", "1"]);
    assert!(cluster.members[ARCHIVE].name.starts_with("archive"));
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    // 100,000 claims through the load generator, each acknowledged once final.
    let load = run(
        &home0,
        &[
            "bench",
            "node",
            "--node",
            &api0,
            "--txs",
            &TXS.to_string(),
            "--batch",
            "1000",
            "--concurrency",
            "8",
        ],
        0,
    );
    assert_eq!(load["committed"].as_u64(), Some(TXS), "{load}");
    let loaded_to = cluster.height(0);
    // Joined from the archive node: it is the document's first seed.
    let archive_api = cluster.members[ARCHIVE].api.clone();
    let archive_key = cluster.key(ARCHIVE);
    let joiner_home = cluster._dir.path().join("late");
    let joined = run(
        &joiner_home,
        &["init", "--join", &archive_api, "--api", "127.0.0.1:0"],
        0,
    );
    let key = joined["key"].as_str().expect("key").to_string();
    let block0 = http("GET", &format!("{api0}/v1/blocks/0"), None, b"").1;
    assert_eq!(joined["block0_hash"], block0["hash"], "{joined}");
    assert!(
        joined["seeds"][0]
            .as_str()
            .is_some_and(|seed| seed.starts_with(&archive_key)),
        "{joined}"
    );
    let admitted = run(
        &home0,
        &["net", "admit", &key, "--name", "late", "--node", &api0],
        0,
    );
    let admitted_at = admitted["height"].as_u64().expect("height");
    cluster.converge(&[0, 1, 2, 3, ARCHIVE], admitted_at);

    // First only validator 3 is up, and it lies: it votes and proposes honestly, but answers
    // requests for block bodies with a tampered body (debug builds read `WEFT_FAULT`). The late
    // node takes its headers (the certificate proves them final), refuses every body, which
    // does not match its header, records the liar and disconnects it: it commits nothing.
    let liar = cluster.key(3);
    for index in 0..=ARCHIVE {
        cluster.kill(index);
    }
    cluster.restart_with(3, &[("WEFT_FAULT", "bad-bodies")]);
    let joiner = Node::start(&joiner_home);
    let caught = wait_for(|| {
        let caught: Vec<Value> = evidence_in(&joiner_home)
            .into_iter()
            .filter(|record| record["kind"] == "invalid_message" && record["peer"] == liar.as_str())
            .collect();
        if caught.is_empty() {
            Err("the late node never caught the liar".into())
        } else {
            Ok(caught)
        }
    });
    assert!(
        caught[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("does not match its header")),
        "{caught:?}"
    );
    let net = http("GET", &format!("{}/v1/net/status", joiner.url), None, b"").1;
    assert_eq!(
        net["height"], 0,
        "nothing of the liar's is committed: {net}"
    );
    // The status names the peer it cut off, why, and until when.
    let cut_off = net["cut_off"].as_array().expect("cut_off");
    assert!(
        cut_off.iter().any(|peer| peer["key"] == liar.as_str()
            && peer["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("does not match its header"))
            && peer["until_ms"].as_u64() > Some(0)),
        "{net}"
    );
    assert!(
        net["finalized_height"].as_u64() >= Some(loaded_to),
        "the headers were taken: {net}"
    );

    // No validator is up, only the archive node, which does not vote: the late node catches up
    // from it alone.
    cluster.kill(3);
    cluster.restart(ARCHIVE);
    let archive_height = cluster.height(ARCHIVE);
    assert!(archive_height >= admitted_at);
    let synced_to = wait_for(|| {
        let (code, status) = http("GET", &format!("{}/v1/status", joiner.url), None, b"");
        assert_eq!(code, 200, "{status}");
        match status["height"].as_u64().expect("height") {
            height if height >= archive_height => Ok(height),
            height => Err(format!(
                "the late node is at height {height} of the archive's {archive_height}"
            )),
        }
    });
    assert_eq!(
        cluster.height(ARCHIVE),
        archive_height,
        "nothing was finalized meanwhile"
    );
    wait_net_status(&joiner.url, "the archive node is the only peer", |status| {
        status["peers"] == json!([archive_key])
    });
    // The same chain: the same block at the height it reached (blocks are hash-linked), and
    // every transaction of the load is in it.
    let theirs = http(
        "GET",
        &format!("{archive_api}/v1/blocks/{synced_to}"),
        None,
        b"",
    )
    .1;
    let ours = http(
        "GET",
        &format!("{}/v1/blocks/{synced_to}", joiner.url),
        None,
        b"",
    )
    .1;
    assert_eq!(ours["hash"], theirs["hash"], "{ours}");
    let synced = chain_tx_ids(&joiner.url, synced_to);
    assert!(
        synced.len() as u64 > TXS,
        "the late node holds {} transactions",
        synced.len()
    );
    let net = http("GET", &format!("{}/v1/net/status", joiner.url), None, b"").1;
    assert_eq!(net["validator"], false, "{net}");
    assert!(
        net["members"]
            .as_array()
            .expect("members")
            .iter()
            .any(|member| member["key"] == key.as_str() && member["name"] == "late"),
        "{net}"
    );

    // The honest validators come back (a quorum of three): the late node follows them.
    for index in 0..3 {
        cluster.restart(index);
    }
    let api0 = cluster.members[0].api.clone();
    let registered = run(
        &home0,
        &[
            "org",
            "add",
            "Late",
            "--country",
            "DE",
            "--town",
            "Aachen",
            "--node",
            &api0,
        ],
        0,
    );
    let registered_at = registered["height"].as_u64().expect("height");
    assert!(registered_at > archive_height, "{registered}");
    let path = format!(
        "{}/v1/transactions/{}",
        joiner.url,
        registered["tx_id"].as_str().expect("tx_id")
    );
    wait_for(|| match http("GET", &path, None, b"") {
        (200, _) => Ok(()),
        (_, body) => Err(format!("the late node does not follow: {body}")),
    });

    // Removed: the validators cut it off in the block that removes it, so it never gets that
    // block or any later one.
    let removed = run(&home0, &["net", "remove", &key, "--node", &api0], 0);
    let removed_at = removed["height"].as_u64().expect("height");
    wait_for(|| match cluster.height(0) {
        height if height >= removed_at + 5 => Ok(()),
        height => Err(format!("the validators stopped at {height}")),
    });
    let (_, status) = http("GET", &format!("{}/v1/status", joiner.url), None, b"");
    let height = status["height"].as_u64().expect("height");
    assert!(
        height < removed_at,
        "the removed node still follows: at {height}, removed at {removed_at}"
    );
    // The validators list it as cut off, with the height that removed it.
    let status = http("GET", &format!("{api0}/v1/net/status"), None, b"").1;
    assert!(
        status["cut_off"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|peer| {
                peer["key"] == key.as_str()
                    && peer["reason"]
                        .as_str()
                        .is_some_and(|reason| reason.contains(&format!("at height {removed_at}")))
            })),
        "{status}"
    );
    // And no longer online for them once the last report of it lapses.
    wait_net_status(&api0, "the removed node dropped from online", |status| {
        status["online"]
            .as_array()
            .is_some_and(|online| !online.contains(&json!(key)))
    });
    // And it says so: it hears from no peer, so it does not claim to be in sync.
    let status = wait_net_status(
        &joiner.url,
        "the removed node knows it is cut off",
        |status| status["sync"] == "no peers",
    );
    assert_eq!(status["dialed_connected"], 0, "{status}");
    // `weft net status` tells the operator what to check.
    let shown = weft(&joiner_home, &["net", "status", "--node", &joiner.url]);
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("no peers") && shown.contains(&format!("weft net admit {key}")),
        "{shown}"
    );
}

/// Two validators propose only blocks that break the rules (debug builds read `WEFT_FAULT`):
/// one with a forged transaction signature, one with a transaction twice. Every honest
/// validator refuses each such block and records evidence naming its producer; the network
/// keeps committing, and no block of theirs with transactions becomes final.
#[test]
fn byzantine_proposals_are_refused_and_recorded_as_evidence() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let forger = cluster.key(2);
    let replayer = cluster.key(3);
    for (index, fault) in [(2, "forged-signature"), (3, "replay")] {
        cluster.kill(index);
        cluster.restart_with(index, &[("WEFT_FAULT", fault)]);
    }
    // The organisation's registration was final before the faults began (either of the two
    // may have led that block honestly).
    let honest_until = cluster.height(0);

    // Transactions keep coming until both have led a view with something to propose, and
    // been refused by both honest validators.
    let evidence = |index: usize| cluster.evidence(index);
    let refused = |records: &[Value], key: &str| -> Vec<String> {
        records
            .iter()
            .filter(|record| record["kind"] == "invalid_block" && record["validator"] == key)
            .map(|record| record["reason"].as_str().expect("reason").to_string())
            .collect()
    };
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    for round in 0.. {
        acknowledged.extend(submit(
            &cluster,
            &api0,
            &home0,
            &org,
            &format!("b{round}"),
            10,
        ));
        let done = [0, 1].iter().all(|index| {
            let records = evidence(*index);
            !refused(&records, &forger).is_empty() && !refused(&records, &replayer).is_empty()
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not both Byzantine proposers were refused: {:?} {:?}",
            evidence(0),
            evidence(1)
        );
    }
    for index in [0, 1] {
        let records = evidence(index);
        assert!(
            refused(&records, &forger)
                .iter()
                .all(|reason| reason.contains("signature does not verify")),
            "{records:?}"
        );
        assert!(
            refused(&records, &replayer)
                .iter()
                .all(|reason| reason.contains("replay")),
            "{records:?}"
        );
        let (_, status) = http(
            "GET",
            &format!("{}/v1/net/status", cluster.members[index].api),
            None,
            b"",
        );
        assert!(status["refused_blocks"].as_u64() >= Some(2), "{status}");
    }

    // Every acknowledged transaction is final once, on all four, and none came in a block of
    // theirs.
    let top = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2, 3], top);
    let height = cluster.height(0);
    let on_chain = chain_tx_ids(&api0, height);
    let unique: std::collections::HashSet<&String> = on_chain.iter().collect();
    assert_eq!(
        unique.len(),
        on_chain.len(),
        "a transaction is on the chain twice"
    );
    for (id, _) in &acknowledged {
        assert!(unique.contains(id), "acknowledged {id} is not on the chain");
    }
    for h in honest_until + 1..=height {
        let (_, block) = http("GET", &format!("{api0}/v1/blocks/{h}"), None, b"");
        if block["tx_count"].as_u64() > Some(0) {
            let producer = block["producer"].as_str().expect("producer");
            assert!(
                producer != forger && producer != replayer,
                "block {h} with transactions by a Byzantine proposer is final: {block}"
            );
        }
    }
}

/// A join document that is not one, or not the network expected, makes no home.
#[test]
fn joining_refuses_a_bad_document_or_an_unexpected_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("join.json");
    std::fs::write(&file, b"{\"format\": \"weft-join-v1\"}").expect("write");
    let home = dir.path().join("home");
    let out = run(
        &home,
        &["init", "--genesis", file.to_str().expect("utf-8")],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("join document"), "{message}");
    assert!(!home.exists(), "a refused join left {}", home.display());

    // A real document (from a home that is part of a network), but another block 0 expected.
    let (_source_dir, source) = new_home(&[]);
    let path = source.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path)
        .expect("config")
        .parse()
        .expect("toml");
    config["network"]["enabled"] = toml::Value::Boolean(true);
    // Only written into the document: nothing listens here.
    config["network"]["listen"] = toml::Value::String("127.0.0.1:9".into());
    std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("config");
    let document = weft(
        &source,
        &["net", "genesis", "--out", file.to_str().expect("utf-8")],
    );
    assert!(document.status.success(), "{document:?}");
    let out = run(
        &home,
        &[
            "init",
            "--genesis",
            file.to_str().expect("utf-8"),
            "--block0-hash",
            &"ab".repeat(32),
        ],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("not the network you meant"), "{message}");
    assert!(!home.exists());
    // Joining flags without anything to join.
    let out = run(&home, &["init", "--type", "thin"], 1);
    let message = out["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("--join URL or --genesis FILE"),
        "{message}"
    );
    assert!(!home.exists());

    // The document as it is: a home that holds the network's block 0, and checks.
    let joined = run(
        &home,
        &["init", "--genesis", file.to_str().expect("utf-8")],
        0,
    );
    let original = run(&source, &["chain", "info"], 0);
    let copy = run(&home, &["chain", "info"], 0);
    assert_eq!(joined["block0_hash"], copy["head_hash"], "{copy}");
    assert_eq!(copy["height"], 0, "{copy}");
    assert_eq!(original["chain_id"], copy["chain_id"], "{copy}");
    run(&home, &["chain", "verify"], 0);
}

#[test]
fn cluster_commands_refuse_bad_arguments_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("c");
    let path = cluster.to_str().expect("utf-8");
    let out = run(
        dir.path(),
        &["cluster", "up", "--nodes", "0", "--dir", path],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("--nodes must be between 1"), "{message}");
    std::fs::create_dir_all(&cluster).expect("dir");
    std::fs::write(cluster.join("something"), b"x").expect("file");
    let out = run(dir.path(), &["cluster", "up", "--dir", path], 1);
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("is not empty"), "{message}");
    let out = run(
        dir.path(),
        &["cluster", "restart", "--dir", path, "--node", "0"],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("no cluster at"), "{message}");
    // A timeout of 0 s is a usage error.
    let output = weft(
        dir.path(),
        &["cluster", "up", "--timeout", "0", "--dir", path],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--timeout"),
        "{output:?}"
    );
    // Nothing was started or written.
    assert!(!cluster.join("cluster.json").exists());
    assert!(!cluster.join("node0").exists());
}

/// `weft cluster up` returns a network that has formed, or stops every node it started: here
/// no validator sends finalize votes, so no block is ever committed.
#[test]
fn cluster_up_stops_every_node_when_the_network_commits_no_block() {
    let _network = one_network_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("c");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .env("WEFT_FAULT", "withhold-finalize")
        .args([
            "cluster",
            "up",
            "--nodes",
            "2",
            "--timeout",
            "5",
            "--json",
            "--dir",
        ])
        .arg(&cluster)
        .output()
        .expect("weft runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let message = json_of(&output)["error"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert!(
        message.contains("node0, node1 committed no block within 5 s")
            && message.contains("every node is stopped"),
        "{message}"
    );
    // The nodes it started are gone (their homes and logs stay, to see why).
    let file: Value =
        serde_json::from_slice(&std::fs::read(cluster.join("cluster.json")).expect("cluster.json"))
            .expect("json");
    for node in file["nodes"].as_array().expect("nodes") {
        let pid = node["pid"].as_u64().expect("pid");
        // Gone, or a zombie nobody reaped yet (the process that started it has exited).
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z') && !rest.is_empty());
        assert!(!running, "{} (pid {pid}) still runs: {state}", node["name"]);
    }
    assert!(cluster.join("node0").join("node.log").exists());
}

/// Two network namespaces made by this test: `a` and `b`, each with its own address on its
/// loopback device (10.201.0.1 and 10.201.0.2), joined by one veth pair. Cutting the pair
/// partitions them (packets to the other side find no route); healing puts the routes back.
/// Needs what creating network namespaces needs: root and `ip` (iproute2).
struct Split {
    a: String,
    b: String,
    veth_a: String,
    /// This thread's network namespace before [`Split::enter`], to go back to.
    home: std::fs::File,
}

const SIDE_A: &str = "10.201.0.1";
const SIDE_B: &str = "10.201.0.2";

fn ip(args: &[&str]) {
    let output = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` (iproute2) runs: the partition test makes network namespaces with it");
    assert!(
        output.status.success(),
        "ip {args:?}: {} (the partition test needs root to make network namespaces)",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Split {
    fn new() -> Split {
        let id = std::process::id();
        let split = Split {
            a: format!("weft-{id}-a"),
            b: format!("weft-{id}-b"),
            veth_a: format!("wa{id}"),
            home: std::fs::File::open("/proc/thread-self/ns/net").expect("this thread's netns"),
        };
        let veth_b = format!("wb{id}");
        ip(&["netns", "add", &split.a]);
        ip(&["netns", "add", &split.b]);
        ip(&[
            "-n",
            &split.a,
            "link",
            "add",
            &split.veth_a,
            "type",
            "veth",
            "peer",
            "name",
            &veth_b,
            "netns",
            &split.b,
        ]);
        for (ns, address, veth) in [
            (&split.a, SIDE_A, &split.veth_a),
            (&split.b, SIDE_B, &veth_b),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{address}/32"),
                "dev",
                "lo",
            ]);
            ip(&["-n", ns, "link", "set", veth, "up"]);
        }
        split.heal();
        split
    }

    fn veth_b(&self) -> String {
        self.veth_a.replacen("wa", "wb", 1)
    }

    /// No packet crosses between the sides any more.
    fn cut(&self) {
        ip(&["-n", &self.a, "link", "set", &self.veth_a, "down"]);
    }

    /// The pair is up and each side routes the other's address over it.
    fn heal(&self) {
        ip(&["-n", &self.a, "link", "set", &self.veth_a, "up"]);
        let veth_b = self.veth_b();
        ip(&[
            "-n",
            &self.a,
            "route",
            "replace",
            &format!("{SIDE_B}/32"),
            "dev",
            &self.veth_a,
        ]);
        ip(&[
            "-n",
            &self.b,
            "route",
            "replace",
            &format!("{SIDE_A}/32"),
            "dev",
            &veth_b,
        ]);
    }

    /// Moves this thread (its sockets and the processes it starts) into namespace `ns`.
    fn enter(&self, ns: &str) {
        let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("the namespace");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        let _ = rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&self.home),
            Some(rustix::thread::LinkNameSpaceType::Network),
        );
        for ns in [&self.a, &self.b] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .output();
        }
    }
}

impl Cluster {
    /// Moves the stopped-and-restarted nodes into the two sides of `split`: node 3 alone on side
    /// `b`, the others on side `a`; this thread goes to side `a`.
    fn move_into(&mut self, split: &Split) {
        let down = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["cluster", "down", "--dir"])
            .arg(&self.dir)
            .output()
            .expect("weft runs");
        assert!(down.status.success(), "{down:?}");
        let listing_path = self.dir.join("cluster.json");
        let mut listing: Value =
            serde_json::from_slice(&std::fs::read(&listing_path).expect("cluster.json"))
                .expect("json");
        let side = |index: usize| if index == 3 { SIDE_B } else { SIDE_A };
        let port = |address: &str| address.rsplit(':').next().expect("port").to_string();
        let ports: Vec<(String, String)> = listing["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| {
                (
                    port(node["api"].as_str().expect("api")),
                    port(node["p2p"].as_str().expect("p2p")),
                )
            })
            .collect();
        for member in &self.members {
            let path = member.home.join("config.toml");
            let mut config = std::fs::read_to_string(&path).expect("config");
            for (index, (api, p2p)) in ports.iter().enumerate() {
                for port in [api, p2p] {
                    config = config.replace(
                        &format!("127.0.0.1:{port}\""),
                        &format!("{}:{port}\"", side(index)),
                    );
                }
            }
            std::fs::write(&path, config).expect("config written");
        }
        let mut spawned = Vec::new();
        for (index, member) in self.members.iter_mut().enumerate() {
            let ns = if index == 3 { &split.b } else { &split.a };
            let log = std::fs::OpenOptions::new()
                .append(true)
                .open(member.home.join("node.log"))
                .expect("log");
            let _ = std::fs::remove_file(member.home.join("node.addr"));
            let child = std::process::Command::new("ip")
                .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_weft"), "--home"])
                .arg(&member.home)
                .args(["node", "run"])
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("node starts");
            member.pid = child.id();
            spawned.push(child);
            member.api = format!("http://{}:{}", side(index), ports[index].0);
            let node = &mut listing["nodes"][index];
            node["pid"] = json!(member.pid);
            node["api"] = json!(member.api);
            node["p2p"] = json!(format!("{}:{}", side(index), ports[index].1));
        }
        self.spawned.extend(spawned);
        std::fs::write(&listing_path, listing.to_string()).expect("cluster.json written");
        for member in &self.members {
            let started = Instant::now();
            while !member.home.join("node.addr").exists() {
                assert!(
                    started.elapsed() < DEADLINE,
                    "{} did not start in its namespace:\n{}",
                    member.name,
                    std::fs::read_to_string(member.home.join("node.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        split.enter(&split.a);
    }

    fn block_hashes(&self, index: usize, height: u64) -> Vec<String> {
        (1..=height)
            .map(|h| {
                let (code, block) = http(
                    "GET",
                    &format!("{}/v1/blocks/{h}", self.members[index].api),
                    None,
                    b"",
                );
                assert_eq!(code, 200, "{block}");
                block["hash"].as_str().expect("hash").to_string()
            })
            .collect()
    }
}

/// A real partition, in network namespaces this test makes: one validator of four is cut
/// away. The three keep finalizing; the one finalizes nothing on its own; after the heal it
/// catches up, what was submitted to it alone becomes final, and every node holds the same
/// block at every height: no two final blocks conflict.
#[test]
fn a_partitioned_minority_finalizes_nothing_and_converges_after_the_heal() {
    let _network = one_network_at_a_time();
    let split = Split::new();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    cluster.move_into(&split);
    let home0 = cluster.members[0].home.clone();
    let org = cluster.org();
    let api0 = cluster.members[0].api.clone();
    let before = submit(&cluster, &api0, &home0, &org, "joined", 20);
    let top = before
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2, 3], top);

    split.cut();
    // The majority side keeps finalizing.
    let during = submit(&cluster, &api0, &home0, &org, "majority", 30);
    let top = during
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2], top);
    // The minority side, seen from inside: a transaction submitted to it stays unfinal.
    split.enter(&split.b);
    let alone = claims(&cluster, &home0, &org, "minority", 1);
    let alone_id = queue(&cluster.members[3].api, &alone).remove(0);
    cluster.never_final(&[3], &alone_id, 5, "final on a minority of one");
    let minority_height = cluster.height(3);
    assert!(
        minority_height < top,
        "the minority has the majority's new blocks"
    );
    let minority_blocks = cluster.block_hashes(3, minority_height);
    split.enter(&split.a);

    split.heal();
    // After the heal the minority catches up, and what it held alone becomes final.
    cluster.wait_final(
        0,
        &alone_id,
        "after the heal, the transaction submitted to the minority",
    );
    let top = cluster.height(0);
    cluster.converge(&[0, 1, 2, 3], top);
    let majority_blocks = cluster.block_hashes(0, top);
    assert_eq!(
        &majority_blocks[..minority_blocks.len()],
        &minority_blocks[..],
        "a block final on the minority side conflicts with the majority's"
    );
    for index in 1..4 {
        assert_eq!(cluster.block_hashes(index, top), majority_blocks);
    }
}

/// A validator that votes twice in a view (for the leader's block and for another): the honest
/// validators detect the double vote, record it as evidence against it, and keep finalizing.
#[test]
fn a_double_vote_is_detected_and_recorded_as_evidence() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let equivocator = cluster.key(3);
    cluster.kill(3);
    cluster.restart_with(3, &[("WEFT_FAULT", "equivocate")]);
    let double_votes = |index: usize| -> Vec<Value> {
        cluster
            .evidence(index)
            .into_iter()
            .filter(|record| record["kind"] == "conflicting_notarize")
            .collect()
    };
    let started = Instant::now();
    let mut acknowledged = Vec::new();
    for round in 0.. {
        acknowledged.extend(submit(
            &cluster,
            &api0,
            &home0,
            &org,
            &format!("e{round}"),
            10,
        ));
        if (0..3).any(|index| !double_votes(index).is_empty()) {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no honest validator recorded the double vote: {:?}",
            cluster.evidence(0)
        );
    }
    for index in 0..3 {
        for record in double_votes(index) {
            assert_eq!(record["validator"], equivocator, "{record}");
            assert!(record["view"].as_u64() > Some(0), "{record}");
        }
    }
    // The three honest validators keep finalizing, and agree.
    acknowledged.extend(submit(&cluster, &api0, &home0, &org, "after", 10));
    let top = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2], top);
}

/// Two validators of four never send a finalize vote (debug builds read `WEFT_FAULT`): blocks
/// are still notarized — `notarized_view` runs ahead of `view` — but none is finalized, so
/// nothing is committed and no submitter is answered. Once one of them votes honestly again, the
/// next finalization makes the blocks notarized during the stall final with it: every node
/// commits them, with what was submitted meanwhile, each transaction once.
#[test]
fn notarized_blocks_wait_for_a_finalization_and_are_committed_with_it() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let before = submit(&cluster, &api0, &home0, &org, "before", 10);
    for index in [2, 3] {
        cluster.kill(index);
        cluster.restart_with(index, &[("WEFT_FAULT", "withhold-finalize")]);
    }
    // Two finalize votes a view at most, below the quorum of three: views go on with notarized
    // blocks (an empty one every `idle_block_ms` at least) and no finalization.
    let stalled = wait_net_status(
        &api0,
        "blocks notarized past the last finalization",
        |net| net["notarized_view"].as_u64() >= net["view"].as_u64().map(|view| view + 3),
    );
    let stalled_height = stalled["height"].as_u64().expect("height");
    let stalled_view = stalled["view"].as_u64().expect("view");
    let transactions = claims(&cluster, &home0, &org, "stalled", 20);
    let queued = queue(&cluster.members[1].api, &transactions);
    let queued_at = wait_net_status(&api0, "notarized view", |net| {
        net["notarized_view"].is_u64()
    })["notarized_view"]
        .as_u64()
        .expect("view");
    // Five more views: the transactions, flooded to every validator at once, are in one of
    // their notarized blocks.
    wait_net_status(&api0, "five more notarized views", |net| {
        net["notarized_view"].as_u64() >= Some(queued_at + 5)
    });
    let healed_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    for index in 0..4 {
        let net = wait_net_status(&cluster.members[index].api, "net status", |_| true);
        assert_eq!(
            net["height"].as_u64(),
            Some(stalled_height),
            "{} committed a block without a finalization: {net}",
            cluster.members[index].name
        );
        if index < 2 {
            assert_eq!(net["view"].as_u64(), Some(stalled_view), "{net}");
        }
    }
    for id in &queued {
        let (code, tx) = http("GET", &format!("{api0}/v1/transactions/{id}"), None, b"");
        assert_ne!(code, 200, "final without a finalization: {tx}");
    }
    // What an operator's monitoring sees: finality lags behind notarization.
    let metric = metrics_of(&api0);
    assert_eq!(metric("weft_net_validator"), 1);
    // Whom it heard from in the last 5 s moves with timing; whom it dials, and that it cut
    // nobody off, do not.
    assert_eq!(metric("weft_net_dialed_peers"), 3);
    assert_eq!(metric("weft_net_cut_off_peers"), 0);
    assert_eq!(metric("weft_net_view"), stalled_view);
    assert!(metric("weft_net_notarized_view") >= queued_at + 5);
    assert_eq!(metric("weft_net_finalized_height"), stalled_height);

    // One withholder votes honestly again: three finalize votes make a finalization, and every
    // block notarized before it becomes final with it.
    cluster.kill(3);
    cluster.restart(3);
    for index in 0..4 {
        for id in &queued {
            cluster.wait_final(
                index,
                id,
                "after the heal, a transaction submitted in the stall",
            );
        }
    }
    let top = cluster.height(0);
    cluster.converge(&[0, 1, 2, 3], top);
    let ids = chain_tx_ids(&api0, top);
    for id in before.iter().map(|(id, _)| id).chain(&queued) {
        assert_eq!(
            ids.iter().filter(|held| *held == id).count(),
            1,
            "{id} is not on the chain exactly once"
        );
    }
    // The block holding them was proposed (and notarized) during the stall, and committed
    // only after it: not proposed again.
    let holder = (stalled_height + 1..=top)
        .map(|height| {
            let (code, block) = http("GET", &format!("{api0}/v1/blocks/{height}"), None, b"");
            assert_eq!(code, 200, "{block}");
            block
        })
        .find(|block| {
            block["transactions"]
                .as_array()
                .expect("transactions")
                .iter()
                .any(|id| id.as_str() == Some(queued[0].as_str()))
        })
        .expect("a block holds the first transaction submitted in the stall");
    assert!(
        holder["timestamp"].as_u64() < Some(healed_at_ms),
        "the block was made after the heal, not during the stall: {holder}"
    );
}

/// The node's Prometheus metrics (`GET /metrics`): the value of a metric by name (a metric
/// missing fails the test).
fn metrics_of(api: &str) -> impl Fn(&str) -> u64 {
    let (code, text) = http("GET", &format!("{api}/metrics"), None, b"");
    assert_eq!(code, 200, "{text}");
    let text = text.as_str().expect("text").to_string();
    move |name: &str| {
        text.lines()
            .find_map(|line| {
                let (metric, value) = line.split_once(' ')?;
                (metric == name).then(|| value.parse().expect("a number"))
            })
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }
}

/// The producer of the block at `height` on the node at `api`.
fn producer_at(api: &str, height: u64) -> String {
    let (code, block) = http("GET", &format!("{api}/v1/blocks/{height}"), None, b"");
    assert_eq!(code, 200, "{block}");
    block["producer"].as_str().expect("producer").to_string()
}

/// Polls `GET /v1/net/status` of `api` until `done` holds.
fn wait_net_status(api: &str, why: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(|| {
        let (code, status) = http("GET", &format!("{api}/v1/net/status"), None, b"");
        if code == 200 && done(&status) {
            Ok(status)
        } else {
            Err(format!("{why}: {status}"))
        }
    })
}

/// Polls `probe` every 50 ms until it gives `Ok`; after [`DEADLINE`] fails with its last
/// `Err`, which says what it saw.
fn wait_for<T>(mut probe: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(why) if started.elapsed() >= DEADLINE => panic!("{why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A validator's consensus engine starts once every other validator of its epoch has answered
/// it, so that its first votes do not go down a connection the other side has refused
/// (docs/network.md, "Starting"). Until then its status names whom it waits for.
#[test]
fn a_validator_starts_voting_once_the_other_validators_answer() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "2"]);
    for index in 0..2 {
        wait_net_status(&cluster.members[index].api, "both engines run", |net| {
            net["engine"] == "running" && net["waiting_for"] == json!([])
        });
    }
    let key1 = cluster.key(1);
    cluster.kill(1);
    cluster.kill(0);
    // Node 0 would wait for node 1 for up to `start_wait_ms`: made longer than this test.
    let config_path = cluster.members[0].home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    assert!(config.contains("start_wait_ms = 2000"), "{config}");
    std::fs::write(
        &config_path,
        config.replace("start_wait_ms = 2000", "start_wait_ms = 600000"),
    )
    .expect("config written");
    cluster.restart(0);
    let api0 = cluster.members[0].api.clone();
    let waiting = wait_net_status(&api0, "node 0's engine waits for node 1", |net| {
        net["engine"] == "waiting for validators"
    });
    assert_eq!(waiting["waiting_for"], json!([key1]), "{waiting}");
    let shown = weft(
        &cluster.members[0].home,
        &["net", "status", "--node", &api0],
    );
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("engine       waiting for validators ({key1}")),
        "{shown}"
    );
    // Node 1 back: it answers, and node 0's engine starts long before its wait would end.
    cluster.restart(1);
    wait_net_status(
        &api0,
        "node 0's engine starts once node 1 answered",
        |net| net["engine"] == "running" && net["waiting_for"] == json!([]),
    );
    let height = cluster.height(0);
    cluster.converge(&[0, 1], height + 2);
}

/// A signed transaction replaces a validator with a newcomer from a later height on: every node
/// switches at that block, the blocks after it are sealed by the new validators only (the
/// newcomer among them), the retired validator keeps following, and a validator that was down
/// during the switch catches up across it (checking each epoch's certificates) and votes again.
#[test]
fn the_validators_change_by_transaction_at_a_later_height() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let keys: Vec<String> = (0..4).map(|index| cluster.key(index)).collect();

    // A newcomer joins as a follower; validator 3, to be retired, is admitted as a peer so that
    // the network keeps its connections once it no longer votes.
    let newcomer_home = cluster._dir.path().join("newcomer");
    let joined = run(
        &newcomer_home,
        &["init", "--join", &api0, "--api", "127.0.0.1:0"],
        0,
    );
    let newcomer_key = joined["key"].as_str().expect("key").to_string();
    for (key, name) in [(&newcomer_key, "newcomer"), (&keys[3], "retired")] {
        run(
            &home0,
            &["net", "admit", key, "--name", name, "--node", &api0],
            0,
        );
    }
    let newcomer = Node::start(&newcomer_home);

    // A change must start after the block holding it.
    let refused = run(
        &home0,
        &[
            "net",
            "validators",
            &keys[0],
            "--from-height",
            "1",
            "--node",
            &api0,
        ],
        3,
    );
    assert_eq!(refused["error"]["rule"], "chain", "{refused}");
    let refused = run(
        &home0,
        &["net", "validators", "not-a-key", "--node", &api0],
        1,
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("not-a-key")),
        "{refused}"
    );

    // A change far ahead, withdrawn through the node: what stays scheduled at its height is the
    // validators in effect (and the change below, at an earlier height, replaces even that).
    let far = (cluster.height(0) + 100_000).to_string();
    let mut args = vec!["net", "validators"];
    args.extend([&keys[0], &keys[1], &keys[2], &newcomer_key].map(String::as_str));
    args.extend(["--from-height", &far, "--node", &api0]);
    run(&home0, &args, 0);
    wait_net_status(&api0, "node 0 knows of the far change", |status| {
        status["next_validators"]["validators"]
            .as_array()
            .is_some_and(|next| next.contains(&json!(newcomer_key)))
    });
    run(
        &home0,
        &["net", "validators", "--withdraw", "--node", &api0],
        0,
    );
    let chain = http("GET", &format!("{api0}/v1/chain"), None, b"").1;
    assert_eq!(
        chain["scheduled"].as_array().map(Vec::len),
        Some(1),
        "{chain}"
    );
    assert_eq!(
        chain["scheduled"][0]["from_height"].to_string(),
        far,
        "{chain}"
    );
    assert_eq!(
        chain["scheduled"][0]["validators"], chain["validators"],
        "{chain}"
    );
    let next = wait_net_status(&api0, "node 0 sees the change withdrawn", |status| {
        status["next_validators"]["validators"]
            .as_array()
            .is_some_and(|next| !next.contains(&json!(newcomer_key)))
    });
    let sorted = |keys: &Value| {
        let mut keys: Vec<String> = keys
            .as_array()
            .expect("keys")
            .iter()
            .map(|key| key.as_str().expect("key").to_string())
            .collect();
        keys.sort();
        keys
    };
    // The same set (net status lists this epoch's in the engine's order, by key).
    assert_eq!(
        sorted(&next["next_validators"]["validators"]),
        sorted(&next["validators"]),
        "{next}"
    );

    // Validator 1 is down while the change takes effect.
    cluster.kill(1);
    let from = cluster.height(0) + 20;
    let new_set = [&keys[0], &keys[1], &keys[2], &newcomer_key];
    let mut args = vec!["net", "validators"];
    args.extend(new_set.iter().map(|key| key.as_str()));
    let from_arg = from.to_string();
    args.extend(["--from-height", &from_arg, "--node", &api0]);
    let scheduled = run(&home0, &args, 0);
    assert!(
        scheduled["height"].as_u64().expect("height") < from,
        "{scheduled}"
    );
    let status = wait_net_status(&api0, "node 0 knows of the change", |status| {
        status["next_validators"]["from_height"] == from || status["epoch"] == 1
    });
    assert_eq!(
        status["validators"].as_array().map(Vec::len),
        Some(4),
        "{status}"
    );

    // Past the switch: the newcomer votes, the retired validator follows.
    let newcomer_status = wait_net_status(&newcomer.url, "the newcomer votes", |status| {
        status["epoch"] == 1
            && status["validator"] == true
            && status["height"].as_u64() >= Some(from + 2)
    });
    let validators = newcomer_status["validators"]
        .as_array()
        .expect("validators");
    assert_eq!(validators.len(), 4, "{newcomer_status}");
    assert!(
        validators
            .iter()
            .all(|key| new_set.iter().any(|new| *key == new.as_str()))
    );
    let retired = wait_net_status(
        &cluster.members[3].api,
        "the retired node follows",
        |status| status["epoch"] == 1 && status["height"].as_u64() >= Some(from + 2),
    );
    assert_eq!(retired["validator"], false, "{retired}");

    // Every block before the switch is sealed by a genesis validator, every one from it on by a
    // new one; the newcomer leads views in turn and seals some.
    let started = Instant::now();
    let mut height = 1;
    let mut newcomer_sealed = false;
    while !newcomer_sealed {
        assert!(started.elapsed() < DEADLINE, "the newcomer sealed no block");
        let top = cluster.height(0);
        while height <= top {
            let producer = producer_at(&api0, height);
            if height < from {
                assert!(
                    keys.contains(&producer),
                    "block {height} sealed by {producer}"
                );
            } else {
                assert!(
                    new_set.iter().any(|key| **key == producer),
                    "block {height}, after the switch, sealed by {producer}"
                );
                newcomer_sealed |= producer == newcomer_key;
            }
            height += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // A submission to the retired validator reaches the new ones.
    let after = submit(&cluster, &cluster.members[3].api, &home0, &org, "after", 10);
    assert!(after.iter().all(|(_, height)| *height >= from), "{after:?}");

    // The validator that was down catches up across the switch and votes in the new epoch:
    // with the newcomer killed, validators 0, 1 and 2 are the quorum.
    cluster.restart(1);
    let top = after.iter().map(|(_, height)| *height).max().expect("some");
    cluster.converge(&[0, 1, 2, 3], top);
    // It dials the other three validators of its epoch and its seed node 3 (retired, still a
    // seed), and hears from the validators again.
    wait_net_status(&cluster.members[1].api, "node 1 votes again", |status| {
        status["epoch"] == 1
            && status["validator"] == true
            && status["dialed"] == 4
            && status["dialed_connected"].as_u64() >= Some(3)
    });
    newcomer.kill();
    let last = submit(
        &cluster,
        &cluster.members[1].api,
        &home0,
        &org,
        "quorum",
        10,
    );
    let top = last.iter().map(|(_, height)| *height).max().expect("some");
    cluster.converge(&[0, 1, 2, 3], top);
}
