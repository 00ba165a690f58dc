//! Networks of real node processes on loopback, started with `weft cluster up`: validators
//! agree on blocks by BFT consensus (docs/network.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::node::*;
use common::run;

/// How long the network may take to reach a state a test waits for.
const DEADLINE: Duration = Duration::from_secs(120);

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

    fn height(&self, index: usize) -> u64 {
        self.status(index)["height"].as_u64().expect("height")
    }

    /// SIGKILL, and waits until the process is gone.
    fn kill(&self, index: usize) {
        let pid = rustix::process::Pid::from_raw(self.members[index].pid as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
        let started = Instant::now();
        while std::fs::read_to_string(format!("/proc/{}/stat", self.members[index].pid)).is_ok_and(
            |stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            },
        ) {
            assert!(
                started.elapsed() < DEADLINE,
                "the killed node is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart(&mut self, index: usize) {
        let out = run(
            self.dir.parent().expect("parent"),
            &[
                "cluster",
                "restart",
                "--dir",
                self.dir.to_str().expect("utf-8"),
                "--node",
                &self.members[index].name,
            ],
            0,
        );
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
    let mut cluster = Cluster::up(&["--nodes", "4", "--archive", "1"]);
    assert_eq!(cluster.members.len(), 5);
    let home0 = cluster.members[0].home.clone();
    // An organisation registered through one validator is known to all of them.
    let org = run(
        &home0,
        &[
            "org",
            "add",
            "Acme",
            "--country",
            "DE",
            "--town",
            "Aachen",
            "--node",
            &cluster.members[0].api.clone(),
        ],
        0,
    )["id"]
        .as_str()
        .expect("id")
        .to_string();

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
