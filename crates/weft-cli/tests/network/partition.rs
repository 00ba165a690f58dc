//! A real partition, in network namespaces.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Cluster, claims, queue, submit};
use crate::common::node::http;
use crate::{DEADLINE, one_network_at_a_time};

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
