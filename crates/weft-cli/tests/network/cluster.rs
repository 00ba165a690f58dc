//! The networks the scenarios run: `Cluster` (made and started by weft-client's launcher, what
//! `weft cluster up` runs; stopped when the test ends), what they submit, and how they wait
//! for a state of the network.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use weft_client::cluster as launcher;

use crate::DEADLINE;

/// The binary the nodes run.
fn weft() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_weft"))
}
use crate::common::node::{claim_tx_on, encoded, http, post_json};
use crate::common::run;

pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) api: String,
    pub(crate) pid: u32,
    pub(crate) home: PathBuf,
}

/// A cluster that is stopped (`weft cluster down`) when the test ends, however it ends.
pub(crate) struct Cluster {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) dir: PathBuf,
    pub(crate) chain: String,
    pub(crate) members: Vec<Member>,
    /// Nodes this test started itself (not through `weft cluster`), reaped when it ends.
    pub(crate) spawned: Vec<std::process::Child>,
}

impl Cluster {
    /// A cluster made and started by weft-client's launcher (what `weft cluster up` runs):
    /// `args` as `weft cluster up` takes them (`--nodes N`, `--thin N`, `--archive N`).
    pub(crate) fn up(args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster");
        let mut spec = launcher::Spec {
            validators: 4,
            thin: 0,
            archive: 0,
            timeout: Duration::from_secs(120),
        };
        for pair in args.chunks(2) {
            let count = || pair[1].parse::<usize>().expect("a count");
            match pair[0] {
                "--nodes" => spec.validators = count(),
                "--thin" => spec.thin = count(),
                "--archive" => spec.archive = count(),
                other => panic!("Cluster::up takes --nodes, --thin, --archive; not {other}"),
            }
        }
        let cluster = launcher::up(weft(), &path, &spec).expect("the cluster is up");
        let members = cluster
            .nodes
            .iter()
            .map(|node| Member {
                name: node.name.clone(),
                api: node.api.clone(),
                pid: node.pid,
                home: node.home.clone(),
            })
            .collect();
        Cluster {
            chain: cluster.chain,
            _dir: dir,
            dir: path,
            members,
            spawned: Vec::new(),
        }
    }

    /// `weft cluster status --dir`, expecting exit code `code`.
    pub(crate) fn cluster_status(&self, code: i32) -> Value {
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

    pub(crate) fn status(&self, index: usize) -> Value {
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
    pub(crate) fn org(&self) -> String {
        self.org_named("Acme")
    }

    pub(crate) fn org_named(&self, name: &str) -> String {
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
    pub(crate) fn wait_final(&self, index: usize, id: &str, why: &str) {
        let path = format!("{}/v1/transactions/{id}", self.members[index].api);
        wait_for(|| match http("GET", &path, None, b"") {
            (200, _) => Ok(()),
            (_, body) => Err(format!("{why}: {id} is not final: {body}")),
        });
    }

    /// Watches for `secs` that transaction `id` becomes final on none of `nodes` (absence
    /// cannot be waited for: this spans several leader timeouts).
    pub(crate) fn never_final(&self, nodes: &[usize], id: &str, secs: u64, why: &str) {
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
    pub(crate) fn key(&self, index: usize) -> String {
        let (_, status) = http(
            "GET",
            &format!("{}/v1/net/status", self.members[index].api),
            None,
            b"",
        );
        status["key"].as_str().expect("key").to_string()
    }

    pub(crate) fn height(&self, index: usize) -> u64 {
        self.status(index)["height"].as_u64().expect("height")
    }

    /// SIGKILL, and waits until the process is gone: no thread left but, maybe, its zombie
    /// main thread (the others hold its files, such as the ledger's lock, until they exit).
    pub(crate) fn kill(&self, index: usize) {
        let pid = self.members[index].pid;
        launcher::signal(pid, rustix::process::Signal::KILL);
        let started = Instant::now();
        while launcher::alive(pid) {
            assert!(
                started.elapsed() < DEADLINE,
                "the killed node is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts one node (what `weft cluster restart` runs).
    pub(crate) fn restart(&mut self, index: usize) {
        let name = self.members[index].name.clone();
        let restarted = launcher::restart(weft(), &self.dir, &name);
        let (node, _) = restarted.unwrap_or_else(|error| {
            panic!(
                "{error:#}; the node's log:\n{}",
                std::fs::read_to_string(self.members[index].home.join("node.log"))
                    .unwrap_or_default()
            )
        });
        self.members[index].pid = node.pid;
        self.members[index].api = node.api;
    }

    /// Waits until every node in `nodes` is at least at `height` with one head hash.
    pub(crate) fn converge(&self, nodes: &[usize], height: u64) {
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
        let _ = launcher::down(&self.dir);
        for child in &mut self.spawned {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `count` claims by `org` (its key on `home`) of the contents `TAG-0`, `TAG-1`, …, encoded.
pub(crate) fn claims(
    cluster: &Cluster,
    home: &Path,
    org: &str,
    tag: &str,
    count: usize,
) -> Vec<String> {
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

/// Queues `transactions` at `api` without waiting for them to be final; returns their ids.
pub(crate) fn queue(api: &str, transactions: &[String]) -> Vec<String> {
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
pub(crate) fn submit(
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
pub(crate) fn chain_tx_ids(api: &str, height: u64) -> Vec<String> {
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

pub(crate) fn keys_in(net: &Value, field: &str) -> Vec<String> {
    net[field]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|key| key.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The node's Prometheus metrics (`GET /metrics`): the value of a metric by name (a metric
/// missing fails the test).
pub(crate) fn metrics_of(api: &str) -> impl Fn(&str) -> u64 {
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

/// Polls `GET /v1/net/status` of `api` until `done` holds.
pub(crate) fn wait_net_status(api: &str, why: &str, done: impl Fn(&Value) -> bool) -> Value {
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
pub(crate) fn wait_for<T>(mut probe: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(why) if started.elapsed() >= DEADLINE => panic!("{why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
