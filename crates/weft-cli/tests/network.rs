//! Networks of real node processes on loopback, started with `weft cluster up`: validators
//! agree on blocks by BFT consensus (docs/network.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::node::*;
use common::{run, weft};

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
        }
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
        run(
            &self.members[0].home,
            &[
                "org",
                "add",
                "Acme",
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
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["cluster", "down", "--dir"])
            .arg(&self.dir)
            .output();
    }
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
    let transactions: Vec<String> = (0..count)
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
        .collect();
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

#[test]
fn validators_agree_survive_a_crash_and_stop_without_a_quorum() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--archive", "1"]);
    assert_eq!(cluster.members.len(), 5);
    let home0 = cluster.members[0].home.clone();
    // An organisation registered through one validator is known to all of them.
    let org = cluster.org();

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
    cluster.converge(&[0, 1, 2, 3, 4], top);
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

    // One validator of four killed: the other three keep committing (f = 1).
    cluster.kill(3);
    let api0 = cluster.members[0].api.clone();
    let during = submit(&cluster, &api0, &home0, &org, "one-down", 30);
    let top = during
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2, 4], top);
    // Restarted, it catches up with what it missed.
    cluster.restart(3);
    cluster.converge(&[0, 1, 2, 3, 4], top);
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
    let queued: Vec<String> = (0..5)
        .map(|i| {
            let content = format!("no-quorum-{i}");
            encoded(&claim_tx_on(
                &cluster.chain,
                &home0,
                &org,
                content.as_bytes(),
                &content,
            ))
        })
        .collect();
    let (code, body) = post_json(
        &format!("{api0}/v1/transactions/batch?wait=false"),
        &json!({ "transactions": queued }),
    );
    assert_eq!(code, 202, "{body}");
    let queued_ids: Vec<String> = body["tx_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_string())
        .collect();
    // Absence cannot be waited for: watch over several leader timeouts that none commits.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(6) {
        for index in [0, 1, 4] {
            let (code, tx) = http(
                "GET",
                &format!(
                    "{}/v1/transactions/{}",
                    cluster.members[index].api, queued_ids[0]
                ),
                None,
                b"",
            );
            assert_ne!(
                code, 200,
                "final without a quorum on {}: {tx}",
                cluster.members[index].name
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // One of them back: three of four, commits resume and the queued transactions are final.
    cluster.restart(2);
    let started = Instant::now();
    for id in &queued_ids {
        loop {
            let (code, _) = http("GET", &format!("{api0}/v1/transactions/{id}"), None, b"");
            if code == 200 {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "commits did not resume: {id} is not final"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let top = cluster.height(0);
    cluster.converge(&[0, 1, 2, 4], top);
}

/// A node that was not there from the start: it joins from a validator's join document once
/// an authority admits its key, syncs every block from the seeds, and is cut off when removed.
#[test]
fn a_late_node_joins_syncs_100000_transactions_and_is_cut_off_when_removed() {
    const TXS: u64 = 100_000;
    let _network = one_network_at_a_time();
    let cluster = Cluster::up(&["--nodes", "4"]);
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

    let joiner_home = cluster._dir.path().join("late");
    let joined = run(
        &joiner_home,
        &["init", "--join", &api0, "--api", "127.0.0.1:0"],
        0,
    );
    let key = joined["key"].as_str().expect("key").to_string();
    let block0 = http("GET", &format!("{api0}/v1/blocks/0"), None, b"").1;
    assert_eq!(joined["block0_hash"], block0["hash"], "{joined}");
    let admitted = run(
        &home0,
        &["net", "admit", &key, "--name", "late", "--node", &api0],
        0,
    );
    assert!(admitted["height"].as_u64().is_some(), "{admitted}");

    let joiner = Node::start(&joiner_home);
    let started = Instant::now();
    let synced_to = loop {
        let (code, status) = http("GET", &format!("{}/v1/status", joiner.url), None, b"");
        assert_eq!(code, 200, "{status}");
        let height = status["height"].as_u64().expect("height");
        if height >= loaded_to {
            break height;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the late node is at height {height} of {loaded_to}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The same chain: the same block at the height it reached (blocks are hash-linked), and
    // every transaction of the load is in it.
    let theirs = http("GET", &format!("{api0}/v1/blocks/{synced_to}"), None, b"").1;
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

    // Removed: the validators cut it off in the block that removes it, so it never gets that
    // block or any later one.
    let removed = run(&home0, &["net", "remove", &key, "--node", &api0], 0);
    let removed_at = removed["height"].as_u64().expect("height");
    let started = Instant::now();
    while cluster.height(0) < removed_at + 5 {
        assert!(started.elapsed() < DEADLINE, "the validators stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, status) = http("GET", &format!("{}/v1/status", joiner.url), None, b"");
    let height = status["height"].as_u64().expect("height");
    assert!(
        height < removed_at,
        "the removed node still follows: at {height}, removed at {removed_at}"
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
    let key_of = |cluster: &Cluster, index: usize| -> String {
        let (_, status) = http(
            "GET",
            &format!("{}/v1/net/status", cluster.members[index].api),
            None,
            b"",
        );
        status["key"].as_str().expect("key").to_string()
    };
    let forger = key_of(&cluster, 2);
    let replayer = key_of(&cluster, 3);
    for (index, fault) in [(2, "forged-signature"), (3, "replay")] {
        cluster.kill(index);
        cluster.restart_with(index, &[("WEFT_FAULT", fault)]);
    }

    // Transactions keep coming until both have led a view with something to propose, and
    // been refused by both honest validators.
    let evidence = |index: usize| -> Vec<Value> {
        std::fs::read_to_string(cluster.members[index].home.join("evidence.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an evidence line is JSON"))
            .collect()
    };
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
    for h in 1..=height {
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
    // Nothing was started or written.
    assert!(!cluster.join("cluster.json").exists());
    assert!(!cluster.join("node0").exists());
}
